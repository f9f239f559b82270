//! The guest layer of vhdprep: the installed system inside a disk image, assembled the way
//! the guest's own boot would assemble it (root filesystem, then `/etc/fstab` mounts), read
//! without mounting anything.
//!
//! - [`volumes`]: partitions, LVM logical volumes, and what filesystem each holds.
//! - [`assemble`]: find the root (os-release + fstab), attach the fstab mounts.
//! - [`tree`]: the guest tree and confined path resolution.
//! - [`inspect`]: the whole picture as one serialisable report.
//! - [`family`]: the distribution family whose conventions the guest follows.
//! - [`packages`]: installed packages from dpkg and rpm databases.
//! - [`fstab`], [`os_release`], [`elf`]: the small parsers the above need.
#![forbid(unsafe_code)]

pub mod assemble;
pub mod discoverable;
pub mod elf;
pub mod facts;
pub mod family;
pub mod fstab;
pub mod inspect;
pub mod os_release;
pub mod packages;
pub mod tree;
pub mod volumes;

pub use assemble::{assemble, FstabMount, Guest};
pub use family::Family;
pub use inspect::{inspect, InspectReport};
pub use tree::{GuestPathError, GuestTree, Mount, Resolved, MAX_SYMLINKS};
pub use volumes::{discover, open_filesystem, Discovery, GuestVolume, VolumeSource};
