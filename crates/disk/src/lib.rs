//! The disk layer of vhdprep: everything about the *container* of a disk image.
//!
//! - [`ReadAt`]: positional reads, the primitive every later layer reads through, with
//!   [`Slice`] windows and hole hints.
//! - [`detect`]: what a file is (raw, fixed/dynamic/differencing VHD, VHDX, qcow2, VMDK), by
//!   content, never by name.
//! - [`vhd`]: the VHD footer codec (every field, checksum, CHS geometry), the dynamic-disk
//!   header and block table, and the readers.
//! - [`DiskImage`]: open a file, learn its format and read its virtual disk.
//! - [`write`]: the writers: `convert` to a fixed VHD and the crash-safe in-place `fix`.
#![forbid(unsafe_code)]

mod read_at;
pub mod vhd;

pub use read_at::{FileReader, ReadAt, Slice, ZeroPadded};
