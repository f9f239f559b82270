//! The 512-byte header of a hosted sparse extent (`KDMV`, VMware Virtual Disk Format 1.1,
//! "Hosted Sparse Extent Header"), and the 512-byte markers of stream-optimized extents.
//!
//! All fields are little-endian. Sizes and offsets are in 512-byte sectors. A
//! stream-optimized extent may say its grain directory is at the end ([`GD_AT_END`]): the real
//! header is then the footer, a copy of this structure near the end of the file.

use super::VmdkError;

/// `KDMV` read as a little-endian u32.
pub const SPARSE_MAGIC: u32 = 0x564d_444b;
/// The magic as it appears in the file.
pub const SPARSE_MAGIC_BYTES: &[u8; 4] = b"KDMV";
/// Size of the header, the footer and each marker.
pub const SECTOR: u64 = 512;
/// `gdOffset` of a stream-optimized header whose grain directory follows the data.
pub const GD_AT_END: u64 = u64::MAX;
/// Flag: the newline-detection characters are valid.
pub const FLAG_VALID_NEWLINE: u32 = 1;
/// Flag: a redundant grain directory and tables exist.
pub const FLAG_REDUNDANT_GT: u32 = 1 << 1;
/// Flag: GTE 1 means "grain reads as zeros" (version 2+).
pub const FLAG_ZERO_GRAIN: u32 = 1 << 2;
/// Flag: grains are compressed.
pub const FLAG_COMPRESSED: u32 = 1 << 16;
/// Flag: grains and metadata are preceded by markers (stream-optimized).
pub const FLAG_MARKERS: u32 = 1 << 17;
/// `compressAlgorithm` for deflate (a zlib stream, RFC 1950).
pub const COMPRESSION_DEFLATE: u16 = 1;
/// Largest virtual size accepted: 64 TiB, twice Azure's largest data disk (as for VHD).
pub const MAX_CAPACITY_SECTORS: u64 = (64 << 40) / SECTOR;
/// Largest grain accepted: 2 MiB (4096 sectors). VMware and qemu write 64 KiB; a compressed
/// grain is inflated into a buffer of this size, so the cap bounds that memory.
pub const MAX_GRAIN_SECTORS: u64 = 4096;
/// Most grain-table entries per table: 4096 (VMware and qemu use 512; qemu refuses more
/// than 512). Bounds one cached table to 16 KiB.
pub const MAX_GTES_PER_GT: u32 = 4096;

/// The header (or footer) of a hosted sparse extent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseHeader {
    /// Format version: 1, 2 (zeroed grains) or 3 (stream-optimized as written by ESXi).
    pub version: u32,
    /// Flags (`FLAG_*`).
    pub flags: u32,
    /// Size of the extent in sectors.
    pub capacity: u64,
    /// Size of a grain in sectors.
    pub grain_size: u64,
    /// Where the embedded descriptor starts (sectors; 0 if none).
    pub descriptor_offset: u64,
    /// Size of the embedded descriptor (sectors).
    pub descriptor_size: u64,
    /// Entries per grain table (512).
    pub gtes_per_gt: u32,
    /// Redundant grain directory (sectors).
    pub rgd_offset: u64,
    /// Grain directory (sectors), or [`GD_AT_END`].
    pub gd_offset: u64,
    /// Sectors of metadata before the first grain.
    pub overhead: u64,
    /// The extent was not closed cleanly.
    pub unclean_shutdown: bool,
    /// `compressAlgorithm`: 0 none, 1 deflate.
    pub compress_algorithm: u16,
}

fn u32_at(b: &[u8; 512], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8; 512], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

impl SparseHeader {
    /// Parses the 512 bytes of a header found at `offset` of the file, checking the magic,
    /// the version and that the sizes are usable (not yet the offsets: see
    /// [`SparseHeader::check_layout`]).
    pub fn parse(b: &[u8; 512], offset: u64) -> Result<SparseHeader, VmdkError> {
        if u32_at(b, 0) != SPARSE_MAGIC {
            return Err(VmdkError::BadMagic { offset });
        }
        let h = SparseHeader {
            version: u32_at(b, 4),
            flags: u32_at(b, 8),
            capacity: u64_at(b, 12),
            grain_size: u64_at(b, 20),
            descriptor_offset: u64_at(b, 28),
            descriptor_size: u64_at(b, 36),
            gtes_per_gt: u32_at(b, 44),
            rgd_offset: u64_at(b, 48),
            gd_offset: u64_at(b, 56),
            overhead: u64_at(b, 64),
            unclean_shutdown: b[72] != 0,
            compress_algorithm: u16::from_le_bytes([b[77], b[78]]),
        };
        if !(1..=3).contains(&h.version) {
            return Err(VmdkError::BadVersion {
                offset,
                version: h.version,
            });
        }
        if !h.grain_size.is_power_of_two() || h.grain_size > MAX_GRAIN_SECTORS {
            return Err(VmdkError::BadGrainSize {
                offset,
                sectors: h.grain_size,
            });
        }
        if h.gtes_per_gt == 0 || h.gtes_per_gt > MAX_GTES_PER_GT {
            return Err(VmdkError::BadGtesPerGt {
                offset,
                entries: h.gtes_per_gt,
            });
        }
        if h.capacity > MAX_CAPACITY_SECTORS {
            return Err(VmdkError::CapacityTooLarge {
                offset,
                sectors: h.capacity,
            });
        }
        if h.compressed() && h.compress_algorithm != COMPRESSION_DEFLATE {
            return Err(VmdkError::BadCompression {
                offset,
                algorithm: h.compress_algorithm,
            });
        }
        Ok(h)
    }

    /// Grains are compressed (stream-optimized).
    pub fn compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }

    /// Grains carry markers.
    pub fn has_markers(&self) -> bool {
        self.flags & FLAG_MARKERS != 0
    }

    /// Bytes in one grain.
    pub fn grain_bytes(&self) -> u64 {
        self.grain_size * SECTOR
    }

    /// Virtual bytes one grain table covers.
    pub fn gt_coverage(&self) -> u64 {
        u64::from(self.gtes_per_gt) * self.grain_bytes()
    }

    /// Number of grain tables, i.e. entries of the grain directory, the capacity needs.
    pub fn gd_entries(&self) -> u64 {
        // capacity < 2^38 sectors, grain_size * gtes <= 2^24: no overflow.
        self.capacity
            .div_ceil(self.grain_size * u64::from(self.gtes_per_gt))
    }

    /// Checks that the grain directory lies inside a file of `file_len` bytes.
    pub fn check_layout(&self, file_len: u64) -> Result<(), VmdkError> {
        let len = self.gd_entries() * 4;
        let at = self.gd_offset.checked_mul(SECTOR);
        match at.and_then(|a| a.checked_add(len)) {
            Some(end) if end <= file_len && self.gd_offset != 0 => Ok(()),
            _ => Err(VmdkError::TableOutsideFile {
                what: "grain directory",
                offset: self.gd_offset.saturating_mul(SECTOR),
                len,
                file_len,
            }),
        }
    }
}

/// Type of a metadata marker (a marker whose `size` field is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerType {
    /// End of stream.
    EndOfStream,
    /// A grain table follows.
    GrainTable,
    /// The grain directory follows.
    GrainDirectory,
    /// The footer follows.
    Footer,
    /// Anything else.
    Other(u32),
}

/// A 512-byte stream-optimized marker: `val` (u64), `size` (u32), `type` (u32). A grain
/// marker (size != 0) is only 12 bytes long, its compressed data follows at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Sectors of metadata that follow (metadata marker), or the grain's LBA (grain marker).
    pub val: u64,
    /// Compressed bytes (grain marker), or 0 for a metadata marker.
    pub size: u32,
    /// Metadata type (only meaningful when `size == 0`).
    pub kind: MarkerType,
}

impl Marker {
    /// Parses the first 16 bytes of a marker.
    pub fn parse(b: &[u8; 16]) -> Marker {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[0..8]);
        let size = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        let t = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        Marker {
            val: u64::from_le_bytes(v),
            size,
            kind: match t {
                0 => MarkerType::EndOfStream,
                1 => MarkerType::GrainTable,
                2 => MarkerType::GrainDirectory,
                3 => MarkerType::Footer,
                o => MarkerType::Other(o),
            },
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header as qemu-img writes it for a 10 MiB monolithicSparse image.
    pub(crate) fn header_bytes(capacity: u64, gd_offset: u64, flags: u32) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[0..4].copy_from_slice(SPARSE_MAGIC_BYTES);
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b[12..20].copy_from_slice(&capacity.to_le_bytes());
        b[20..28].copy_from_slice(&128u64.to_le_bytes());
        b[44..48].copy_from_slice(&512u32.to_le_bytes());
        b[56..64].copy_from_slice(&gd_offset.to_le_bytes());
        b[73..77].copy_from_slice(b"\n \r\n");
        if flags & FLAG_COMPRESSED != 0 {
            b[77..79].copy_from_slice(&1u16.to_le_bytes());
        }
        b
    }

    #[test]
    fn parses_a_qemu_header() {
        let b = header_bytes(20480, 21, FLAG_VALID_NEWLINE);
        let h = SparseHeader::parse(&b, 0).unwrap();
        assert_eq!(h.capacity, 20480);
        assert_eq!(h.grain_bytes(), 65536);
        assert_eq!(h.gd_entries(), 1);
        assert_eq!(h.gt_coverage(), 32 << 20);
        h.check_layout(21 * 512 + 4).unwrap();
        assert!(matches!(
            h.check_layout(21 * 512 + 3),
            Err(VmdkError::TableOutsideFile { .. })
        ));
    }

    #[test]
    fn rejects_bad_magic_version_and_sizes() {
        let mut b = header_bytes(20480, 21, 0);
        b[0] = b'X';
        assert!(matches!(
            SparseHeader::parse(&b, 7),
            Err(VmdkError::BadMagic { offset: 7 })
        ));
        let mut b = header_bytes(20480, 21, 0);
        b[4..8].copy_from_slice(&9u32.to_le_bytes());
        assert!(matches!(
            SparseHeader::parse(&b, 0),
            Err(VmdkError::BadVersion { version: 9, .. })
        ));
        let mut b = header_bytes(20480, 21, 0);
        b[20..28].copy_from_slice(&100u64.to_le_bytes());
        assert!(matches!(
            SparseHeader::parse(&b, 0),
            Err(VmdkError::BadGrainSize { sectors: 100, .. })
        ));
        b[20..28].copy_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(SparseHeader::parse(&b, 0).is_err());
        let b = header_bytes(u64::MAX, 21, 0);
        assert!(matches!(
            SparseHeader::parse(&b, 0),
            Err(VmdkError::CapacityTooLarge { .. })
        ));
        let mut b = header_bytes(20480, 21, 0);
        b[44..48].copy_from_slice(&0u32.to_le_bytes());
        assert!(SparseHeader::parse(&b, 0).is_err());
        let mut b = header_bytes(20480, 21, FLAG_COMPRESSED);
        b[77..79].copy_from_slice(&7u16.to_le_bytes());
        assert!(matches!(
            SparseHeader::parse(&b, 0),
            Err(VmdkError::BadCompression { algorithm: 7, .. })
        ));
    }

    #[test]
    fn grain_directory_near_2_64_is_outside() {
        let h = SparseHeader::parse(&header_bytes(20480, u64::MAX / 2, 0), 0).unwrap();
        assert!(h.check_layout(1 << 40).is_err());
        let h = SparseHeader::parse(&header_bytes(20480, 0, 0), 0).unwrap();
        assert!(h.check_layout(1 << 40).is_err(), "offset 0 is the header");
    }

    #[test]
    fn markers() {
        let mut m = [0u8; 16];
        m[0..8].copy_from_slice(&4u64.to_le_bytes());
        m[12..16].copy_from_slice(&3u32.to_le_bytes());
        let mk = Marker::parse(&m);
        assert_eq!(mk.kind, MarkerType::Footer);
        assert_eq!(mk.size, 0);
        m[8..12].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(Marker::parse(&m).size, 100);
    }
}
