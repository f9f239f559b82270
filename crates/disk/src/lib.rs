//! The disk layer of vhdprep: everything about the *container* of a disk image.
//!
//! - [`ReadAt`]: positional reads, the primitive every later layer reads through, with
//!   [`Slice`] windows and hole hints.
//! - [`detect()`]: what a file is, by content, never by name: the [`probe`]s of every
//!   container qemu-img knows (VHD, VHDX, qcow2, qcow, QED, VDI, VMDK, Parallels, Bochs,
//!   cloop, DMG, LUKS), BitLocker, compressed streams and tar run in order; a file none of
//!   them recognises is raw.
//! - [`format`](mod@format): the formats, their names, and whether vhdprep reads each; [`refusal`]: the
//!   one-line refusal and the command that makes a disk vhdprep reads of the others.
//! - [`vhd`]: the VHD footer codec (every field, checksum, CHS geometry), the dynamic-disk
//!   header and block table, and the readers.
//! - [`DiskImage`]: open a file, learn its format and read its virtual disk.
//! - [`findings`]: the VHD-xxx rules a container can be judged by on its own.
//! - [`mod@write`]: the writers: `convert` to a fixed VHD and the crash-safe in-place `fix`.
//! - [`pipeline`]: how the threads of a copy or a checksum pass stop when any of them fails.
#![forbid(unsafe_code)]

pub mod container;
pub mod detect;
mod error;
pub mod findings;
pub mod format;
mod image;
pub mod ova;
pub mod pipeline;
pub mod probe;
pub mod qcow2;
mod read_at;
pub mod refusal;
mod report;
pub mod report_formats;
pub mod vdi;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;
pub mod write;

pub use container::{ChainLink, ContainerHeader, OpenOptions};
pub use detect::{detect, FooterPlace};
pub use error::{reason, DiskError, Result};
pub use format::{Encryption, Format};
pub use image::{open_file, DiskImage, SharedDisk};
pub use read_at::{FileReader, ReadAt, Slice, ZeroPadded};
pub use report::{rfc3339_utc, ContainerReport, DynamicReport, FooterReport, ProbeReport};

/// One mebibyte: Azure wants virtual sizes in whole multiples of it.
pub const MIB: u64 = 1 << 20;

/// `size` rounded up to a whole MiB.
pub fn round_up_to_mib(size: u64) -> u64 {
    size.div_ceil(MIB) * MIB
}
