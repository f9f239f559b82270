//! VMDK: VMware's virtual disk, as described by "Virtual Disk Format 1.1" and written by
//! VMware, qemu-img, VirtualBox and ovftool.
//!
//! A VMDK is a text [`descriptor`] listing extents, plus the extents:
//! - monolithicSparse / streamOptimized: one file, a hosted sparse extent (`KDMV`
//!   [`sparse_header`]) with the descriptor embedded; streamOptimized grains are
//!   deflate-compressed behind markers and its grain directory may sit in a footer at the end;
//! - twoGbMaxExtentSparse / twoGbMaxExtentFlat / monolithicFlat / vmfs: a descriptor file and
//!   extent files next to it, named relative to it.
//!
//! The reader never opens files itself: [`Vmdk::read_header`] parses the file it is given,
//! [`VmdkHeader::extent_files`] lists the files the caller must open (see [`extent_path`] for
//! confined name resolution), and [`VmdkDisk::open`] takes them, plus the parent of a delta
//! disk (`parentCID`, `parentFileNameHint`).

pub mod descriptor;
pub mod disk;
pub mod extent_path;
pub mod sparse;
pub mod sparse_header;

pub use descriptor::{Access, Descriptor, ExtentDesc, ExtentType};
pub use disk::VmdkDisk;
pub use extent_path::{resolve_extent, ExtentPathError};
pub use sparse::SparseExtent;
pub use sparse_header::{SparseHeader, GD_AT_END};

use crate::read_at::ReadAt;
use sparse_header::{Marker, MarkerType, SECTOR, SPARSE_MAGIC_BYTES};
use std::io;

/// Why a VMDK cannot be read. One line, with the file offset where it applies; no path (the
/// caller names the file).
#[derive(Debug, thiserror::Error)]
pub enum VmdkError {
    /// An I/O error, its kind kept.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Neither a `KDMV` sparse extent nor a descriptor file.
    #[error("not a VMDK: neither a sparse extent (KDMV) nor a descriptor file (\"# Disk DescriptorFile\")")]
    NotVmdk,
    /// A sparse header without its magic.
    #[error("sparse extent header at offset {offset} lacks its KDMV magic")]
    BadMagic {
        /// Header offset.
        offset: u64,
    },
    /// An unknown header version.
    #[error("sparse extent header at offset {offset} has version {version}; vhdprep reads 1 to 3")]
    BadVersion {
        /// Header offset.
        offset: u64,
        /// Version found.
        version: u32,
    },
    /// Grain size not a power of two, or too large.
    #[error("sparse extent header at offset {offset}: grain size of {sectors} sectors is not a power of two of at most 4096")]
    BadGrainSize {
        /// Header offset.
        offset: u64,
        /// Grain size in sectors.
        sectors: u64,
    },
    /// Grain-table size 0 or too large.
    #[error("sparse extent header at offset {offset}: {entries} entries per grain table (vhdprep reads 1 to 4096)")]
    BadGtesPerGt {
        /// Header offset.
        offset: u64,
        /// Entries per table.
        entries: u32,
    },
    /// A capacity over [`sparse_header::MAX_CAPACITY_SECTORS`].
    #[error("sparse extent header at offset {offset} claims {sectors} sectors, more than the 64 TiB vhdprep reads")]
    CapacityTooLarge {
        /// Header offset.
        offset: u64,
        /// Capacity in sectors.
        sectors: u64,
    },
    /// A compression other than deflate.
    #[error("sparse extent header at offset {offset}: unknown compression algorithm {algorithm}")]
    BadCompression {
        /// Header offset.
        offset: u64,
        /// Algorithm number.
        algorithm: u16,
    },
    /// A grain directory or table outside the file.
    #[error("{what} ({len} bytes at offset {offset}) lies outside the {file_len}-byte file")]
    TableOutsideFile {
        /// "grain directory", "grain table N".
        what: &'static str,
        /// Its offset.
        offset: u64,
        /// Its length.
        len: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The footer of a stream-optimized extent is missing or wrong.
    #[error("stream-optimized footer at offset {offset}: {why}")]
    BadFooter {
        /// Where it was looked for.
        offset: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// A descriptor over [`descriptor::MAX_DESCRIPTOR_BYTES`].
    #[error("descriptor at offset {offset} is {len} bytes, more than the 1 MiB vhdprep reads")]
    DescriptorTooLarge {
        /// Its offset.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// An embedded descriptor outside the file.
    #[error("embedded descriptor ({len} bytes at offset {offset}) lies outside the {file_len}-byte file")]
    DescriptorOutsideFile {
        /// Its offset.
        offset: u64,
        /// Its length.
        len: u64,
        /// The file's length.
        file_len: u64,
    },
    /// A descriptor line that cannot be parsed.
    #[error("descriptor at offset {offset}, line {line}: {why}")]
    BadDescriptor {
        /// Descriptor offset.
        offset: u64,
        /// Line number (from 1).
        line: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// A descriptor without extents.
    #[error("descriptor at offset {offset} lists no extents")]
    NoExtents {
        /// Descriptor offset.
        offset: u64,
    },
    /// An extent type vhdprep does not read.
    #[error("extent {index} is of type {kind}, which vhdprep does not read (convert it with qemu-img or vmkfstools first)")]
    UnsupportedExtent {
        /// Extent index (from 0).
        index: usize,
        /// Its type.
        kind: &'static str,
    },
    /// The caller gave a different number of extent files than the descriptor needs.
    #[error("the descriptor needs {expected} extent files, {given} were given")]
    ExtentCount {
        /// Files needed.
        expected: usize,
        /// Files given.
        given: usize,
    },
    /// A flat extent file shorter than its descriptor line says.
    #[error("extent {index} ({name}) holds {len} bytes, the descriptor needs {needed}")]
    ExtentTooShort {
        /// Extent index.
        index: usize,
        /// File name.
        name: String,
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        len: u64,
    },
    /// A sparse extent smaller than its descriptor line says.
    #[error("extent {index} ({name}) has a capacity of {capacity} sectors, the descriptor says {sectors}")]
    ExtentCapacity {
        /// Extent index.
        index: usize,
        /// File name.
        name: String,
        /// Capacity in the extent's header.
        capacity: u64,
        /// Sectors in the descriptor.
        sectors: u64,
    },
    /// An error inside an extent file.
    #[error("extent {index} ({name}): {source}")]
    InExtent {
        /// Extent index.
        index: usize,
        /// File name.
        name: String,
        /// The error.
        source: Box<VmdkError>,
    },
    /// A delta disk opened without its parent.
    #[error("delta VMDK whose unallocated grains come from its parent {hint:?} (parentCID {parent_cid:08x}); open the parent first")]
    MissingParent {
        /// `parentFileNameHint`, or "" when none.
        hint: String,
        /// `parentCID`.
        parent_cid: u32,
    },
    /// The parent given is not the one the delta was made over.
    #[error("the parent given for this delta VMDK ({hint:?}) has CID {}, the delta expects parentCID {parent_cid:08x}", found.map_or("none".to_owned(), |c| format!("{c:08x}")))]
    ParentCidMismatch {
        /// `parentFileNameHint`.
        hint: String,
        /// `parentCID` of the delta.
        parent_cid: u32,
        /// `CID` of the parent given.
        found: Option<u32>,
    },
    /// The extents add up to more than 64 TiB (or overflow).
    #[error("the extents add up to more than the 64 TiB vhdprep reads")]
    VirtualSizeTooLarge,
    /// A grain outside the file.
    #[error("grain {grain} at offset {offset} lies outside the {file_len}-byte file")]
    GrainOutsideFile {
        /// Grain index within the extent.
        grain: u64,
        /// Its offset.
        offset: u64,
        /// The file's length.
        file_len: u64,
    },
    /// A compressed grain that cannot be inflated, or whose marker is wrong.
    #[error("compressed grain {grain} at offset {offset}: {why}")]
    BadGrain {
        /// Grain index within the extent.
        grain: u64,
        /// Offset of its marker.
        offset: u64,
        /// What is wrong.
        why: String,
    },
}

impl VmdkError {
    /// This error as an `io::Error` (kind `InvalidData`; I/O errors keep theirs), for the
    /// `ReadAt` methods, which find damaged tables and grains lazily.
    pub fn into_io(self) -> io::Error {
        match self {
            VmdkError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// What [`Vmdk::read_header`] found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmdkHeader {
    /// The header of the sparse extent, when the file is one (monolithicSparse,
    /// streamOptimized, or an extent of a twoGbMaxExtentSparse disk). For a stream-optimized
    /// extent whose header says [`GD_AT_END`], this is the footer.
    pub sparse: Option<SparseHeader>,
    /// The header at offset 0 when `sparse` was taken from the footer.
    pub initial_sparse: Option<SparseHeader>,
    /// The descriptor: embedded, or the whole file. A bare sparse extent (as in
    /// twoGbMaxExtentSparse) has none.
    pub descriptor: Option<Descriptor>,
}

impl VmdkHeader {
    /// Virtual size in bytes: the capacity of a sparse file, or the sum of the descriptor's
    /// extents.
    pub fn virtual_size(&self) -> Option<u64> {
        match (&self.sparse, &self.descriptor) {
            (Some(s), _) => Some(s.capacity * SECTOR),
            (None, Some(d)) => d.virtual_size(),
            (None, None) => None,
        }
    }

    /// The files the caller must open and hand to [`VmdkDisk::open`], in order: the extent
    /// file names of a descriptor file (relative to its folder), nothing for a sparse file
    /// (it holds its own data).
    pub fn extent_files(&self) -> Vec<&str> {
        match (&self.sparse, &self.descriptor) {
            (None, Some(d)) => d.extents.iter().filter_map(|e| e.file.as_deref()).collect(),
            _ => Vec::new(),
        }
    }

    /// The `createType` of the descriptor.
    pub fn create_type(&self) -> Option<&str> {
        self.descriptor.as_ref()?.create_type.as_deref()
    }

    /// `(parentCID, parentFileNameHint)` of a delta disk.
    pub fn parent(&self) -> Option<(u32, Option<&str>)> {
        let d = self.descriptor.as_ref()?;
        d.has_parent().then(|| {
            (
                d.parent_cid.unwrap_or(0),
                d.parent_file_name_hint.as_deref(),
            )
        })
    }

    /// Checks that `parent` is the disk this delta was made over: its `CID` must equal this
    /// descriptor's `parentCID` (a parent written since has a new CID, and the delta's data
    /// no longer fits it). Fine for a disk without a parent.
    pub fn check_parent(&self, parent: &VmdkHeader) -> Result<(), VmdkError> {
        let Some((parent_cid, hint)) = self.parent() else {
            return Ok(());
        };
        let found = parent.descriptor.as_ref().and_then(|d| d.cid);
        if found == Some(parent_cid) {
            return Ok(());
        }
        Err(VmdkError::ParentCidMismatch {
            hint: hint.unwrap_or("").to_owned(),
            parent_cid,
            found,
        })
    }
}

/// The VMDK format: entry point of the header reader.
pub struct Vmdk;

impl Vmdk {
    /// Reads what the file is: a sparse extent (header, footer, embedded descriptor) or a
    /// descriptor file. Reads at most the first sector, the footer, and 1 MiB of descriptor.
    pub fn read_header(file: &dyn ReadAt) -> Result<VmdkHeader, VmdkError> {
        let len = file.len();
        let mut first = [0u8; 512];
        let n = read_up_to(file, &mut first, 0)?;
        if n >= 4 && first[..4] == SPARSE_MAGIC_BYTES[..] {
            if n < 512 {
                return Err(VmdkError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the file ends after {n} bytes, inside the sparse extent header"),
                )));
            }
            return read_sparse(file, &first, len);
        }
        if n >= 4 && &first[..4] == b"COWD" {
            return Err(VmdkError::UnsupportedExtent {
                index: 0,
                kind: "VMFSSPARSE",
            });
        }
        let text = String::from_utf8_lossy(&first[..n]);
        if !text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with(descriptor::DESCRIPTOR_SIGNATURE)
        {
            return Err(VmdkError::NotVmdk);
        }
        if len > descriptor::MAX_DESCRIPTOR_BYTES {
            return Err(VmdkError::DescriptorTooLarge { offset: 0, len });
        }
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, 0)?;
        Ok(VmdkHeader {
            sparse: None,
            initial_sparse: None,
            descriptor: Some(Descriptor::parse(&buf, 0)?),
        })
    }
}

/// Reads as much as the file holds into `buf` at `offset`.
fn read_up_to(file: &dyn ReadAt, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn read_sparse(file: &dyn ReadAt, first: &[u8; 512], len: u64) -> Result<VmdkHeader, VmdkError> {
    let initial = SparseHeader::parse(first, 0)?;
    let (sparse, initial_sparse) = if initial.gd_offset == GD_AT_END {
        (read_footer(file, len)?, Some(initial.clone()))
    } else {
        (initial.clone(), None)
    };
    sparse.check_layout(len)?;
    // The embedded descriptor, described by the header at offset 0.
    let descriptor = if initial.descriptor_offset != 0 && initial.descriptor_size != 0 {
        let off = initial.descriptor_offset.saturating_mul(SECTOR);
        let dlen = initial.descriptor_size.saturating_mul(SECTOR);
        if dlen > descriptor::MAX_DESCRIPTOR_BYTES {
            return Err(VmdkError::DescriptorTooLarge {
                offset: off,
                len: dlen,
            });
        }
        match off.checked_add(dlen) {
            Some(end) if end <= len => {}
            _ => {
                return Err(VmdkError::DescriptorOutsideFile {
                    offset: off,
                    len: dlen,
                    file_len: len,
                })
            }
        }
        let mut buf = vec![0u8; dlen as usize];
        file.read_exact_at(&mut buf, off)?;
        // qemu-img reserves an empty (all-NUL) descriptor area in the extents of a
        // twoGbMaxExtentSparse disk: no descriptor.
        if buf.iter().all(|&b| b == 0 || b.is_ascii_whitespace()) {
            None
        } else {
            Some(Descriptor::parse(&buf, off)?)
        }
    } else {
        None
    };
    Ok(VmdkHeader {
        sparse: Some(sparse),
        initial_sparse,
        descriptor,
    })
}

/// The footer of a stream-optimized extent: a footer marker, the footer (a header whose
/// `gdOffset` is real) and an end-of-stream marker, the last three sectors of the file.
fn read_footer(file: &dyn ReadAt, len: u64) -> Result<SparseHeader, VmdkError> {
    let Some(at) = len.checked_sub(3 * SECTOR).filter(|&a| a >= SECTOR) else {
        return Err(VmdkError::BadFooter {
            offset: 0,
            why: "the file is too short to end in a footer",
        });
    };
    let mut b = [0u8; 1536];
    file.read_exact_at(&mut b, at)?;
    let mut m = [0u8; 16];
    m.copy_from_slice(&b[..16]);
    let marker = Marker::parse(&m);
    if marker.size != 0 || marker.kind != MarkerType::Footer {
        return Err(VmdkError::BadFooter {
            offset: at,
            why: "no footer marker in the third sector from the end",
        });
    }
    m.copy_from_slice(&b[1024..1040]);
    let eos = Marker::parse(&m);
    if eos.size != 0 || eos.kind != MarkerType::EndOfStream {
        return Err(VmdkError::BadFooter {
            offset: at + 1024,
            why: "no end-of-stream marker in the last sector",
        });
    }
    let mut h = [0u8; 512];
    h.copy_from_slice(&b[512..1024]);
    let footer = SparseHeader::parse(&h, at + SECTOR)?;
    if footer.gd_offset == GD_AT_END {
        return Err(VmdkError::BadFooter {
            offset: at + SECTOR,
            why: "the footer, too, says the grain directory is at the end",
        });
    }
    Ok(footer)
}

#[cfg(test)]
mod tests {
    use super::sparse_header::tests::header_bytes;
    use super::sparse_header::*;
    use super::*;

    #[test]
    fn short_and_foreign_files() {
        assert!(matches!(
            Vmdk::read_header(&b"KDMV\x01".to_vec()),
            Err(VmdkError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof
        ));
        assert!(matches!(
            Vmdk::read_header(&b"hello".to_vec()),
            Err(VmdkError::NotVmdk)
        ));
        assert!(matches!(
            Vmdk::read_header(&Vec::new()),
            Err(VmdkError::NotVmdk)
        ));
        let mut big = b"# Disk DescriptorFile\n".to_vec();
        big.resize(2 << 20, b' ');
        assert!(matches!(
            Vmdk::read_header(&big),
            Err(VmdkError::DescriptorTooLarge { .. })
        ));
    }

    #[test]
    fn footer_checks() {
        // A header saying GD_AT_END on a file without a footer.
        let mut f = header_bytes(128, GD_AT_END, FLAG_COMPRESSED | FLAG_MARKERS).to_vec();
        f.resize(4096, 0);
        assert!(matches!(
            Vmdk::read_header(&f),
            Err(VmdkError::BadFooter { .. })
        ));
        // Add a footer marker, a footer whose GD is at sector 1, and an EOS marker.
        let n = f.len();
        f[n - 1536 + 12..n - 1536 + 16].copy_from_slice(&3u32.to_le_bytes());
        let footer = header_bytes(128, 1, FLAG_COMPRESSED | FLAG_MARKERS);
        f[n - 1024..n - 512].copy_from_slice(&footer);
        let h = Vmdk::read_header(&f).unwrap();
        assert_eq!(h.sparse.unwrap().gd_offset, 1);
        assert_eq!(h.initial_sparse.unwrap().gd_offset, GD_AT_END);
        // A footer that itself says GD_AT_END would loop: refused.
        let footer = header_bytes(128, GD_AT_END, FLAG_COMPRESSED | FLAG_MARKERS);
        f[n - 1024..n - 512].copy_from_slice(&footer);
        assert!(matches!(
            Vmdk::read_header(&f),
            Err(VmdkError::BadFooter { .. })
        ));
    }

    #[test]
    fn embedded_descriptor_outside_the_file() {
        let mut h = header_bytes(128, 1, 0);
        h[28..36].copy_from_slice(&(u64::MAX / 256).to_le_bytes());
        h[36..44].copy_from_slice(&2u64.to_le_bytes());
        let mut f = h.to_vec();
        f.resize(4096, 0);
        assert!(matches!(
            Vmdk::read_header(&f),
            Err(VmdkError::DescriptorOutsideFile { .. })
        ));
    }
}
