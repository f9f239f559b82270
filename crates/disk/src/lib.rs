//! The disk layer of vhdprep: everything about the *container* of a disk image.
//!
//! - [`ReadAt`]: positional reads, the primitive every later layer reads through, with
//!   [`Slice`] windows and hole hints.
//! - [`detect()`]: what a file is (raw, fixed/dynamic/differencing VHD, VHDX, qcow2, VMDK), by
//!   content, never by name.
//! - [`vhd`]: the VHD footer codec (every field, checksum, CHS geometry), the dynamic-disk
//!   header and block table, and the readers.
//! - [`DiskImage`]: open a file, learn its format and read its virtual disk.
//! - [`findings`]: the VHD-xxx rules a container can be judged by on its own.
//! - [`write`]: the writers: `convert` to a fixed VHD and the crash-safe in-place `fix`.
#![forbid(unsafe_code)]

pub mod detect;
mod error;
pub mod findings;
mod image;
mod read_at;
mod report;
pub mod vdi;
pub mod vhd;
pub mod write;

pub use detect::{detect, FooterPlace, Format};
pub use error::{DiskError, Result};
pub use image::{open_file, DiskImage, SharedDisk};
pub use read_at::{FileReader, ReadAt, Slice, ZeroPadded};
pub use report::{rfc3339_utc, ContainerReport, DynamicReport, FooterReport};

/// One mebibyte: Azure wants virtual sizes in whole multiples of it.
pub const MIB: u64 = 1 << 20;

/// `size` rounded up to a whole MiB.
pub fn round_up_to_mib(size: u64) -> u64 {
    size.div_ceil(MIB) * MIB
}
