//! The guest layer of vhdprep: the installed system inside a disk image, assembled the way
//! the guest's own boot would assemble it (root filesystem, then `/etc/fstab` mounts), read
//! without mounting anything.
#![forbid(unsafe_code)]

pub mod fstab;
pub mod tree;

pub use tree::{GuestPathError, GuestTree, Mount, Resolved, MAX_SYMLINKS};
pub mod elf;
pub mod os_release;
