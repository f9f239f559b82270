//! vhdprep: prepare and validate Linux disk images for Azure, offline.
//!
//! This crate is the facade over the layer crates; the `vhdprep` binary is built on it.
#![forbid(unsafe_code)]

pub use vhdprep_check as check;
pub use vhdprep_checksum as checksum;
pub use vhdprep_disk as disk;
pub use vhdprep_finding as finding;
pub use vhdprep_fs as fs;
pub use vhdprep_guest as guest;
pub use vhdprep_partition as partition;
