//! The filesystem layer of vhdprep: read-only access to the filesystems inside a disk image,
//! without mounting.
//!
//! - [`probe`]: what a volume holds, by magic: ext2/3/4, XFS, btrfs, FAT12/16/32, Linux swap,
//!   LVM2 PV, UFS1/2, NTFS, ISO9660/UDF, LUKS, squashfs; with label, UUID and size.
//! - [`FileSystem`]: one read-only interface for every readable filesystem.
//! - Implementations: [`fat`] (the `fatfs` crate, hardened), [`ext4`] (`ext4-view`), [`xfs`]
//!   and [`btrfs`] (our own readers).
//! - [`lvm`]: LVM2 as a volume layer: PV label, metadata text, linear logical volumes exposed
//!   as byte ranges.
//!
//! Contract shared by every implementation (see [`FileSystem`]): paths are byte strings
//! starting with `/`, relative to the filesystem's own root; nothing ever follows a symbolic
//! link: the guest layer resolves links itself, component by component, so that absolute links
//! resolve against the *guest* root and can never reach a host path.
#![forbid(unsafe_code)]

mod api;
pub mod btrfs;
pub mod cache;
pub mod ext4;
pub mod fat;
pub mod lvm;
pub mod probe;
pub mod xfs;

pub use api::{
    split_path, DirEntry, FileKind, FileSystem, FsError, FsResult, Metadata, Volume,
    DEFAULT_READ_LIMIT, MAX_DIR_ENTRIES,
};
