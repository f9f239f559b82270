//! The qcow2 header (first cluster): the fixed fields of versions 2 and 3, the header
//! extensions after them (backing format, feature names, external data file, ...) and the
//! backing file name.
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 4 | magic `QFI\xfb` |
//! | 4 | 4 | version (2 or 3) |
//! | 8 | 8 | backing file name offset (0: none) |
//! | 16 | 4 | backing file name length (at most 1023) |
//! | 20 | 4 | cluster_bits (cluster size = 1 << cluster_bits) |
//! | 24 | 8 | virtual size |
//! | 32 | 4 | crypt_method (0 none, 1 AES, 2 LUKS) |
//! | 36 | 4 | L1 entries |
//! | 40 | 8 | L1 table offset |
//! | 48 | 8 | refcount table offset |
//! | 56 | 4 | refcount table clusters |
//! | 60 | 4 | number of snapshots |
//! | 64 | 8 | snapshot table offset |
//! | 72 | 8 | incompatible features (v3) |
//! | 80 | 8 | compatible features (v3) |
//! | 88 | 8 | autoclear features (v3) |
//! | 96 | 4 | refcount order (v3; v2: 4) |
//! | 100 | 4 | header length (v3; v2: 72) |
//! | 104 | 1 | compression type (0 zlib, 1 zstd), when the header is long enough |
//!
//! Every header problem that makes the fields meaningless (magic, version, cluster size,
//! header length, extensions running past the header) fails [`read_header`]; features vhdprep
//! cannot read (encryption, external data file, unknown incompatible bits) parse fine, so
//! that `info` can show them, and are refused by [`super::Qcow2Disk::open`].

use super::error::Qcow2Error;
use super::snapshot::{read_snapshots, Snapshot};
use crate::read_at::ReadAt;
use std::io;

/// The magic at offset 0.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";
/// Smallest cluster: 512 bytes (the format's minimum).
pub const MIN_CLUSTER_BITS: u32 = 9;
/// Largest cluster: 2 MiB, qemu's implementation limit (it refuses larger ones, so no real
/// image has them).
pub const MAX_CLUSTER_BITS: u32 = 21;
/// Most L1 entries read: 2^22, qemu's own 32 MiB L1 limit (so no image qemu can open has
/// more); 32 MiB of memory at most.
pub const MAX_L1_ENTRIES: u64 = 1 << 22;
/// Largest virtual size accepted: 2^61 bytes (2 EiB), what qemu can address with 2 MiB
/// clusters and its L1 limit. Memory is bounded by [`MAX_L1_ENTRIES`], not by this.
pub const MAX_VIRTUAL_SIZE: u64 = 1 << 61;
/// Most header extensions kept for `info` (the first cluster could hold 2^18 of them).
pub const MAX_EXTENSIONS: usize = 64;
/// Longest backing file name (the format's limit).
pub const MAX_BACKING_NAME: u32 = 1023;

/// Incompatible feature bit 0: refcounts may be inconsistent (not cleanly closed).
pub const INCOMPAT_DIRTY: u64 = 1 << 0;
/// Incompatible feature bit 1: some structure may be corrupt.
pub const INCOMPAT_CORRUPT: u64 = 1 << 1;
/// Incompatible feature bit 2: guest data lives in an external data file.
pub const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Incompatible feature bit 3: the compression type field is not zlib.
pub const INCOMPAT_COMPRESSION: u64 = 1 << 3;
/// Incompatible feature bit 4: extended L2 entries (32 subclusters per cluster).
pub const INCOMPAT_EXTL2: u64 = 1 << 4;
/// Every incompatible bit this reader knows.
pub const INCOMPAT_KNOWN: u64 =
    INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
/// Compatible feature bit 0: lazy refcounts.
pub const COMPAT_LAZY_REFCOUNTS: u64 = 1 << 0;
/// Autoclear feature bit 0: the bitmaps extension is consistent.
pub const AUTOCLEAR_BITMAPS: u64 = 1 << 0;
/// Autoclear feature bit 1: the external data file is a consistent raw image.
pub const AUTOCLEAR_DATA_FILE_RAW: u64 = 1 << 1;

/// Header extension: end of the list.
pub const EXT_END: u32 = 0;
/// Header extension: backing file format name.
pub const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
/// Header extension: feature name table.
pub const EXT_FEATURE_NAMES: u32 = 0x6803_f857;
/// Header extension: persistent dirty bitmaps.
pub const EXT_BITMAPS: u32 = 0x2385_2875;
/// Header extension: full disk encryption (LUKS) header pointer.
pub const EXT_CRYPTO: u32 = 0x0537_be77;
/// Header extension: external data file name.
pub const EXT_DATA_FILE: u32 = 0x4441_5441;

/// How compressed clusters are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// Raw deflate (qemu's "zlib"), type 0, the default.
    Zlib,
    /// zstd, type 1.
    Zstd,
    /// Anything else (refused by `open`).
    Unknown(u8),
}

/// One header extension, as found (data not kept except for the ones decoded into fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderExtension {
    /// Extension type (see the `EXT_` constants).
    pub kind: u32,
    /// Where its data starts in the file.
    pub offset: u64,
    /// Length of its data.
    pub len: u32,
}

impl HeaderExtension {
    /// A short name for the type, for `info`.
    pub fn name(&self) -> &'static str {
        match self.kind {
            EXT_BACKING_FORMAT => "backing format",
            EXT_FEATURE_NAMES => "feature names",
            EXT_BITMAPS => "bitmaps",
            EXT_CRYPTO => "encryption header",
            EXT_DATA_FILE => "external data file",
            _ => "unknown",
        }
    }
}

/// A decoded qcow2 header with its extensions, backing file name and snapshot list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qcow2Header {
    /// 2 or 3.
    pub version: u32,
    /// Where the backing file name is (0: no backing file).
    pub backing_file_offset: u64,
    /// Length of the backing file name.
    pub backing_file_size: u32,
    /// Cluster size is `1 << cluster_bits`.
    pub cluster_bits: u32,
    /// Virtual disk size in bytes.
    pub size: u64,
    /// 0 none, 1 AES, 2 LUKS.
    pub crypt_method: u32,
    /// Entries in the active L1 table.
    pub l1_size: u32,
    /// Offset of the active L1 table.
    pub l1_table_offset: u64,
    /// Offset of the refcount table.
    pub refcount_table_offset: u64,
    /// Clusters the refcount table occupies.
    pub refcount_table_clusters: u32,
    /// Number of internal snapshots (from the header; [`Self::snapshots`] may list fewer).
    pub nb_snapshots: u32,
    /// Offset of the snapshot table.
    pub snapshots_offset: u64,
    /// Incompatible feature bits (0 for version 2).
    pub incompatible_features: u64,
    /// Compatible feature bits (0 for version 2).
    pub compatible_features: u64,
    /// Autoclear feature bits (0 for version 2).
    pub autoclear_features: u64,
    /// Refcount width is `1 << refcount_order` bits (4 for version 2).
    pub refcount_order: u32,
    /// Header length in bytes (72 for version 2).
    pub header_length: u32,
    /// Raw compression type byte (0 when absent).
    pub compression_type_raw: u8,
    /// Backing file name, as stored (lossy UTF-8).
    pub backing_file: Option<String>,
    /// Backing file format from its header extension ("qcow2", "raw", ...).
    pub backing_format: Option<String>,
    /// External data file name from its header extension.
    pub data_file: Option<String>,
    /// Header extensions in file order, at most [`MAX_EXTENSIONS`].
    pub extensions: Vec<HeaderExtension>,
    /// Internal snapshots, at most [`super::snapshot::MAX_SNAPSHOTS_LISTED`].
    pub snapshots: Vec<Snapshot>,
}

fn be32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_be_bytes(a)
}

fn be64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_be_bytes(a)
}

/// Reads exactly `buf.len()` bytes at `offset`, a short file becoming [`Qcow2Error::Truncated`].
fn read_header_bytes(file: &dyn ReadAt, buf: &mut [u8], offset: u64) -> Result<(), Qcow2Error> {
    match file.read_exact_at(buf, offset) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(Qcow2Error::Truncated {
            file_len: file.len(),
            need: offset + buf.len() as u64,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Reads and checks the header of the qcow2 image `file`, with its extensions, backing file
/// name and (bounded) snapshot list.
pub fn read_header(file: &dyn ReadAt) -> Result<Qcow2Header, Qcow2Error> {
    let mut fixed = [0u8; 104];
    read_header_bytes(file, &mut fixed[..72], 0)?;
    let mut magic = [0u8; 4];
    magic.copy_from_slice(&fixed[0..4]);
    if magic != MAGIC {
        return Err(Qcow2Error::BadMagic(magic));
    }
    let version = be32(&fixed, 4);
    if version != 2 && version != 3 {
        return Err(Qcow2Error::BadVersion(version));
    }
    let cluster_bits = be32(&fixed, 20);
    if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
        return Err(Qcow2Error::BadClusterBits(cluster_bits));
    }
    let cluster_size = 1u64 << cluster_bits;
    let size = be64(&fixed, 24);
    if size > MAX_VIRTUAL_SIZE {
        return Err(Qcow2Error::TooLarge(size));
    }
    let mut h = Qcow2Header {
        version,
        backing_file_offset: be64(&fixed, 8),
        backing_file_size: be32(&fixed, 16),
        cluster_bits,
        size,
        crypt_method: be32(&fixed, 32),
        l1_size: be32(&fixed, 36),
        l1_table_offset: be64(&fixed, 40),
        refcount_table_offset: be64(&fixed, 48),
        refcount_table_clusters: be32(&fixed, 56),
        nb_snapshots: be32(&fixed, 60),
        snapshots_offset: be64(&fixed, 64),
        incompatible_features: 0,
        compatible_features: 0,
        autoclear_features: 0,
        refcount_order: 4,
        header_length: 72,
        compression_type_raw: 0,
        backing_file: None,
        backing_format: None,
        data_file: None,
        extensions: Vec::new(),
        snapshots: Vec::new(),
    };
    if version == 3 {
        read_header_bytes(file, &mut fixed[72..104], 72)?;
        h.incompatible_features = be64(&fixed, 72);
        h.compatible_features = be64(&fixed, 80);
        h.autoclear_features = be64(&fixed, 88);
        h.refcount_order = be32(&fixed, 96);
        h.header_length = be32(&fixed, 100);
        let hl = u64::from(h.header_length);
        if hl < 104 || hl % 8 != 0 || hl > cluster_size {
            return Err(Qcow2Error::BadHeaderLength(h.header_length));
        }
        if h.refcount_order > 6 {
            return Err(Qcow2Error::BadRefcountOrder(h.refcount_order));
        }
        if hl > 104 {
            let mut b = [0u8; 1];
            read_header_bytes(file, &mut b, 104)?;
            h.compression_type_raw = b[0];
        }
    }
    // The header area: extensions from the end of the header up to the backing file name (or
    // the end of the first cluster).
    let bfo = h.backing_file_offset;
    if bfo > cluster_size {
        return Err(Qcow2Error::BadBackingName {
            offset: bfo,
            len: h.backing_file_size,
        });
    }
    let area_end = if bfo != 0 { bfo } else { cluster_size };
    let area_len = area_end.min(file.len()).max(u64::from(h.header_length));
    // At most one cluster (2 MiB), checked above.
    let mut area = vec![0u8; area_len as usize];
    read_header_bytes(file, &mut area, 0)?;
    read_extensions(&mut h, &area, area_end)?;
    if bfo != 0 {
        let len = h.backing_file_size;
        let end = bfo + u64::from(len);
        if len > MAX_BACKING_NAME || end > cluster_size {
            return Err(Qcow2Error::BadBackingName { offset: bfo, len });
        }
        let mut name = vec![0u8; len as usize];
        read_header_bytes(file, &mut name, bfo)?;
        h.backing_file = Some(String::from_utf8_lossy(&name).into_owned());
    }
    h.snapshots = read_snapshots(file, &h)?;
    Ok(h)
}

/// Walks the header extensions in `area` (the file from 0), ending at a zero type or at
/// `area_end`, as qemu does.
fn read_extensions(h: &mut Qcow2Header, area: &[u8], area_end: u64) -> Result<(), Qcow2Error> {
    let mut at = u64::from(h.header_length);
    while at < area_end {
        let Some(head) = area.get(at as usize..at as usize + 8) else {
            return Err(Qcow2Error::OutsideFile {
                what: "header extension",
                offset: at,
                len: 8,
                file_len: area.len() as u64,
            });
        };
        let kind = be32(head, 0);
        let len = be32(head, 4);
        let data_at = at + 8;
        if data_at > area_end || u64::from(len) > area_end - data_at {
            return Err(Qcow2Error::BadExtension {
                kind,
                offset: at,
                len,
                end: area_end,
            });
        }
        if kind == EXT_END {
            break;
        }
        let Some(data) = area.get(data_at as usize..(data_at + u64::from(len)) as usize) else {
            return Err(Qcow2Error::OutsideFile {
                what: "header extension",
                offset: at,
                len: u64::from(len) + 8,
                file_len: area.len() as u64,
            });
        };
        let text = || Some(String::from_utf8_lossy(data).into_owned());
        match kind {
            EXT_BACKING_FORMAT => h.backing_format = text(),
            EXT_DATA_FILE => h.data_file = text(),
            _ => {}
        }
        if h.extensions.len() < MAX_EXTENSIONS {
            h.extensions.push(HeaderExtension {
                kind,
                offset: data_at,
                len,
            });
        }
        at = data_at + u64::from(len).div_ceil(8) * 8;
    }
    Ok(())
}

impl Qcow2Header {
    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// True when the image was not closed cleanly (refcounts may be stale; data is fine).
    pub fn is_dirty(&self) -> bool {
        self.incompatible_features & INCOMPAT_DIRTY != 0
    }

    /// True when qemu found a corruption and marked the image.
    pub fn is_corrupt(&self) -> bool {
        self.incompatible_features & INCOMPAT_CORRUPT != 0
    }

    /// True when guest data lives in an external data file.
    pub fn has_external_data_file(&self) -> bool {
        self.incompatible_features & INCOMPAT_DATA_FILE != 0
    }

    /// True when L2 entries are extended (subclusters).
    pub fn has_extended_l2(&self) -> bool {
        self.incompatible_features & INCOMPAT_EXTL2 != 0
    }

    /// True when lazy refcounts are on.
    pub fn has_lazy_refcounts(&self) -> bool {
        self.compatible_features & COMPAT_LAZY_REFCOUNTS != 0
    }

    /// Incompatible bits this reader does not know.
    pub fn unknown_incompatible(&self) -> u64 {
        self.incompatible_features & !INCOMPAT_KNOWN
    }

    /// The compression type of compressed clusters.
    pub fn compression_type(&self) -> CompressionType {
        match self.compression_type_raw {
            0 => CompressionType::Zlib,
            1 => CompressionType::Zstd,
            n => CompressionType::Unknown(n),
        }
    }

    /// The encryption method's name, or `None` when the image is not encrypted.
    pub fn encryption(&self) -> Option<&'static str> {
        match self.crypt_method {
            0 => None,
            1 => Some("AES"),
            2 => Some("LUKS"),
            _ => Some("unknown method"),
        }
    }

    /// `compat` as `qemu-img info` shows it: "0.10" for version 2, "1.1" for version 3.
    pub fn compat(&self) -> &'static str {
        if self.version == 2 {
            "0.10"
        } else {
            "1.1"
        }
    }

    /// Bytes of virtual disk one L2 table maps.
    pub fn l2_coverage(&self) -> u64 {
        let entry = if self.has_extended_l2() { 16 } else { 8 };
        (self.cluster_size() / entry) * self.cluster_size()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal version-3 header cluster of 64 KiB clusters, 1 MiB virtual, L1 at 3 clusters.
    pub(crate) fn v3(cluster_bits: u32) -> Vec<u8> {
        let cs = 1usize << cluster_bits;
        let mut b = vec![0u8; cs];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..8].copy_from_slice(&3u32.to_be_bytes());
        b[20..24].copy_from_slice(&cluster_bits.to_be_bytes());
        b[24..32].copy_from_slice(&(1u64 << 20).to_be_bytes());
        b[36..40].copy_from_slice(&1u32.to_be_bytes());
        b[40..48].copy_from_slice(&(3 * cs as u64).to_be_bytes());
        b[48..56].copy_from_slice(&(cs as u64).to_be_bytes());
        b[56..60].copy_from_slice(&1u32.to_be_bytes());
        b[96..100].copy_from_slice(&4u32.to_be_bytes());
        b[100..104].copy_from_slice(&112u32.to_be_bytes());
        b
    }

    fn put_ext(b: &mut [u8], at: usize, kind: u32, data: &[u8]) -> usize {
        b[at..at + 4].copy_from_slice(&kind.to_be_bytes());
        b[at + 4..at + 8].copy_from_slice(&(data.len() as u32).to_be_bytes());
        b[at + 8..at + 8 + data.len()].copy_from_slice(data);
        at + 8 + data.len().div_ceil(8) * 8
    }

    #[test]
    fn parses_fields_extensions_and_backing_name() {
        let mut b = v3(16);
        b[72..80].copy_from_slice(&(INCOMPAT_DIRTY | INCOMPAT_COMPRESSION).to_be_bytes());
        b[104] = 1;
        let at = put_ext(&mut b, 112, EXT_BACKING_FORMAT, b"qcow2");
        let at = put_ext(&mut b, at, 0x1234_5678, &[1, 2, 3]);
        let at = put_ext(&mut b, at, EXT_END, &[]);
        b[8..16].copy_from_slice(&(at as u64).to_be_bytes());
        b[16..20].copy_from_slice(&8u32.to_be_bytes());
        b[at..at + 8].copy_from_slice(b"base.img");
        let h = read_header(&&b[..]).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.cluster_size(), 65536);
        assert_eq!(h.size, 1 << 20);
        assert!(h.is_dirty() && !h.is_corrupt());
        assert_eq!(h.compression_type(), CompressionType::Zstd);
        assert_eq!(h.backing_format.as_deref(), Some("qcow2"));
        assert_eq!(h.backing_file.as_deref(), Some("base.img"));
        assert_eq!(h.extensions.len(), 2);
        assert_eq!(h.extensions[1].name(), "unknown");
        assert_eq!(h.extensions[1].len, 3);
    }

    #[test]
    fn version_2_has_defaults() {
        let mut b = v3(16);
        b[4..8].copy_from_slice(&2u32.to_be_bytes());
        // Version 2 ignores bytes 72.. as header fields.
        b[72..80].copy_from_slice(&u64::MAX.to_be_bytes());
        b[72..80].fill(0);
        let h = read_header(&&b[..]).unwrap();
        assert_eq!(h.header_length, 72);
        assert_eq!(h.refcount_order, 4);
        assert_eq!(h.compat(), "0.10");
    }

    #[test]
    fn refuses_bad_magic_version_cluster_bits_and_lengths() {
        let mut b = v3(16);
        b[3] = 0xfa;
        assert!(matches!(read_header(&&b[..]), Err(Qcow2Error::BadMagic(_))));
        let mut b = v3(16);
        b[4..8].copy_from_slice(&4u32.to_be_bytes());
        assert!(matches!(
            read_header(&&b[..]),
            Err(Qcow2Error::BadVersion(4))
        ));
        for bits in [0u32, 8, 22, 63, u32::MAX] {
            let mut b = v3(16);
            b[20..24].copy_from_slice(&bits.to_be_bytes());
            assert!(
                matches!(read_header(&&b[..]), Err(Qcow2Error::BadClusterBits(x)) if x == bits)
            );
        }
        let mut b = v3(16);
        b[100..104].copy_from_slice(&100u32.to_be_bytes());
        assert!(matches!(
            read_header(&&b[..]),
            Err(Qcow2Error::BadHeaderLength(100))
        ));
        let mut b = v3(16);
        b[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(read_header(&&b[..]), Err(Qcow2Error::TooLarge(_))));
        let b = v3(16);
        assert!(matches!(
            read_header(&&b[..50]),
            Err(Qcow2Error::Truncated {
                file_len: 50,
                need: 72
            })
        ));
    }

    #[test]
    fn refuses_extensions_and_names_past_the_header() {
        let mut b = v3(16);
        put_ext(&mut b, 112, EXT_BACKING_FORMAT, b"qcow2");
        b[116..120].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read_header(&&b[..]),
            Err(Qcow2Error::BadExtension { .. })
        ));
        let mut b = v3(16);
        b[8..16].copy_from_slice(&65530u64.to_be_bytes());
        b[16..20].copy_from_slice(&100u32.to_be_bytes());
        assert!(matches!(
            read_header(&&b[..]),
            Err(Qcow2Error::BadBackingName { .. })
        ));
        let mut b = v3(16);
        b[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            read_header(&&b[..]),
            Err(Qcow2Error::BadBackingName { .. })
        ));
        // A header cluster cut short: the extension walk reaches the end of the file.
        let b = v3(16);
        let e = read_header(&&b[..112]).unwrap_err();
        assert!(matches!(e, Qcow2Error::OutsideFile { .. }), "{e}");
    }
}
