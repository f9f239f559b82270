//! The qcow2 format (QEMU copy-on-write, versions 2 and 3): header, snapshot list, L1/L2
//! tables, compressed clusters and the reader.
//!
//! Read what qemu reads: any cluster size from 512 bytes to 2 MiB, zero clusters, extended L2
//! entries (subclusters), compressed clusters (deflate and zstd) and backing files (the caller
//! opens the backing disk and hands it to [`Qcow2Disk::open`]). Internal snapshots are listed,
//! never read: the active state is the disk. Refcounts are not needed to read and are not
//! read. Refused with a clear error: encryption, external data files, unknown incompatible
//! features. The dirty and corrupt bits are reported by the header
//! ([`Qcow2Header::is_dirty`], [`Qcow2Header::is_corrupt`]) for the caller's findings.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use vhdprep_disk::{FileReader, SharedDisk, qcow2};
//! let file: SharedDisk = Arc::new(FileReader::new(std::fs::File::open("disk.qcow2")?)?);
//! let header = qcow2::read_header(&*file)?;
//! let disk = qcow2::Qcow2Disk::open(file, header, None)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod compressed;
pub mod error;
pub mod header;
pub mod l2;
pub mod reader;
pub mod snapshot;

use std::path::{Path, PathBuf};

pub use error::Qcow2Error;
pub use header::{read_header, CompressionType, HeaderExtension, Qcow2Header};
pub use reader::Qcow2Disk;
pub use snapshot::Snapshot;

/// Where the backing file `name` (as the header stores it) is looked for: its file name in the
/// directory of `image`. A name with directories, relative or absolute, is not followed as
/// written, so that an image cannot make vhdprep open a host file of its choosing (README,
/// "Hostile input"); a chain copied together into one directory, the usual case for images
/// made elsewhere, resolves. `None` when the name has no file name (empty, `..`, `/`).
pub fn backing_path_next_to(image: &Path, name: &str) -> Option<PathBuf> {
    let file = Path::new(name).file_name()?;
    Some(image.parent().unwrap_or(Path::new("")).join(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backing_names_resolve_next_to_the_image() {
        let img = Path::new("/images/top.qcow2");
        let p = |n| backing_path_next_to(img, n);
        assert_eq!(p("base.qcow2"), Some(PathBuf::from("/images/base.qcow2")));
        assert_eq!(
            p("/var/lib/libvirt/base.qcow2"),
            Some(PathBuf::from("/images/base.qcow2"))
        );
        assert_eq!(p("../../etc/shadow"), Some(PathBuf::from("/images/shadow")));
        assert_eq!(p(".."), None);
        assert_eq!(p(""), None);
        assert_eq!(
            backing_path_next_to(Path::new("top.qcow2"), "b.qcow2"),
            Some(PathBuf::from("b.qcow2"))
        );
    }
}
