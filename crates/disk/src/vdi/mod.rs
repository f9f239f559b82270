//! The VDI format of VirtualBox (also what Vagrant boxes and Packer's VirtualBox builders
//! ship): a header, a block map, and the blocks.
//!
//! - [`header`]: the pre-header and the version 1.1 header, every field, checked against the
//!   file.
//! - [`block_map`]: one 32-bit entry per block: a data-block slot, or "unallocated" or
//!   "zero" (both read as zeros).
//! - [`reader`]: [`VdiDisk`], the virtual disk read through the block map.
//!
//! Static (`fixed`), dynamic (`normal`) and differencing (VirtualBox snapshots: blocks never
//! written read the parent's) images are read; undo images (VirtualBox 1.x) are refused by
//! name. A differencing image names its parent only by UUID (VirtualBox keeps the paths in
//! its media registry); [`parent`] gives the one path VirtualBox's naming implies and checks
//! a candidate's UUIDs.

pub mod block_map;
pub mod header;
pub mod parent;
pub mod reader;

pub use block_map::{BlockMap, BLOCK_FREE, BLOCK_ZERO};
pub use header::{VdiGeometry, VdiHeader, VdiImageType, VDI_SIGNATURE, VDI_VERSION_1_1};
pub use reader::VdiDisk;

use std::io;

/// Largest block size accepted. VirtualBox and qemu-img write 1 MiB blocks (qemu reads only
/// those); VirtualBox's `AllocationBlockSize` option allows other powers of two. 256 MiB is
/// the same bound as for VHD blocks.
pub const MAX_BLOCK_SIZE: u32 = 256 << 20;
/// Most block-map entries read (4 bytes each in memory, so 128 MiB at most): 32 TiB in the
/// 1 MiB blocks every VDI writer uses, the size of Azure's largest managed disk. A larger
/// map only comes from a sparse or hostile file.
pub const MAX_BLOCKS: u64 = 1 << 25;

/// Why a VDI image cannot be read. One line, with the offset where it applies; the caller
/// adds the file name.
#[derive(Debug, thiserror::Error)]
pub enum VdiError {
    /// An I/O error while reading the file; the kind is kept.
    #[error("{op}: {source}")]
    Io {
        /// What was being read.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file is shorter than a VDI header.
    #[error("the {len}-byte file is too small for a VDI header (456 bytes)")]
    TooSmall {
        /// File length.
        len: u64,
    },
    /// No `0xbeda107f` at offset 64.
    #[error("no VDI signature at offset 64 (found {0:#010x}, expected 0xbeda107f)")]
    BadSignature(u32),
    /// A version other than 1.1.
    #[error("VDI version {}.{} at offset 68 is not read (only 1.1, written since VirtualBox 1.x)", .0 >> 16, .0 & 0xffff)]
    UnsupportedVersion(u32),
    /// A header smaller than version 1.1's.
    #[error(
        "VDI header size {0} at offset 72 is smaller than the 384 bytes of a version 1.1 header"
    )]
    BadHeaderSize(u32),
    /// Differencing, undo or unknown image types.
    #[error("VDI image type {} at offset 76 is not read (only static, dynamic and differencing); flatten it first, e.g. `VBoxManage clonemedium`", .0.name())]
    UnsupportedType(VdiImageType),
    /// A sector size other than 512.
    #[error("VDI sector size {0} at offset 360 is not 512")]
    BadSectorSize(u32),
    /// A block size that is not a power of two in range.
    #[error(
        "VDI block size {0} at offset 376 is not a power of two between 512 bytes and 256 MiB"
    )]
    BadBlockSize(u32),
    /// Block extra bytes not a whole number of sectors, or more than a block.
    #[error(
        "VDI block extra size {0} at offset 380 is not a multiple of 512 up to the block size"
    )]
    BadBlockExtra(u32),
    /// Fewer blocks than the disk size needs.
    #[error("VDI header has {blocks} blocks at offset 384 but the {disk_size}-byte disk size needs {needed}")]
    BlockCount {
        /// Blocks in the image.
        blocks: u32,
        /// Blocks the disk size needs.
        needed: u64,
        /// Disk size.
        disk_size: u64,
    },
    /// More blocks than [`MAX_BLOCKS`].
    #[error(
        "VDI header claims {0} blocks at offset 384, more than the {MAX_BLOCKS} vhdprep reads"
    )]
    TooManyBlocks(u32),
    /// The block map overlaps the header, the data or the end of the file.
    #[error("VDI block map ({len} bytes at offset {offset}) does not lie between the header and the data offset {data_offset} inside the {file_len}-byte file")]
    BadBlockMapPlace {
        /// Map offset.
        offset: u64,
        /// Map length.
        len: u64,
        /// Data offset.
        data_offset: u32,
        /// File length.
        file_len: u64,
    },
    /// The data offset lies past the end of the file.
    #[error("VDI data offset {offset} lies outside the {file_len}-byte file")]
    DataOffsetOutsideFile {
        /// Data offset.
        offset: u32,
        /// File length.
        file_len: u64,
    },
    /// A block-map entry names a slot beyond the image's blocks.
    #[error("VDI block map entry {index} (at offset {at}) names data block {entry}, but the image has only {blocks} blocks")]
    EntryOutOfRange {
        /// Block index.
        index: u64,
        /// File offset of the entry.
        at: u64,
        /// The entry.
        entry: u32,
        /// Blocks in the image.
        blocks: u32,
    },
    /// A block's data lies past the end of the file.
    #[error("VDI block {index} at offset {offset} lies past the end of the {file_len}-byte file (truncated image?)")]
    BlockOutsideFile {
        /// Block index.
        index: u64,
        /// Where its data starts.
        offset: u64,
        /// File length.
        file_len: u64,
    },
    /// A differencing image opened without its parent.
    #[error("differencing VDI image needs its parent (UUID {0}, at offset 424); give its path with --parent PATH")]
    MissingParent(uuid::Uuid),
    /// A candidate parent whose UUID is not the one the child records.
    #[error("{} is not the parent: its UUID is {found}, the differencing VDI expects {expected}", path.display())]
    ParentMismatch {
        /// The candidate.
        path: std::path::PathBuf,
        /// The child's link UUID.
        expected: uuid::Uuid,
        /// The candidate's image UUID.
        found: uuid::Uuid,
    },
    /// A parent given for an image that has none.
    #[error("a parent disk was given for a {} VDI image, which has none", .0.name())]
    UnexpectedParent(VdiImageType),
}

impl VdiError {
    pub(crate) fn io(op: &'static str, source: io::Error) -> Self {
        VdiError::Io { op, source }
    }
}
