//! Errors of a checksum pass. Each names the file and says the problem in one line.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use vhdprep_disk::DiskError;

/// Why a checksum pass or a verification could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ChecksumError {
    /// The file cannot be opened or is not a disk image vhdprep reads.
    #[error(transparent)]
    Open(#[from] DiskError),
    /// The virtual disk of the image cannot be read (`--scope disk` on VHDX, a differencing
    /// VHD, a truncated file ...).
    #[error("{0}")]
    Disk(Arc<DiskError>),
    /// A read failed.
    #[error("{}: cannot read at offset {offset}: {}{}", path.display(), vhdprep_disk::reason(source), shrink_hint(source))]
    Read {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Asking where data and holes are failed.
    #[error("{}: cannot find its data and holes: {source}", path.display())]
    Holes {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file was written to, grown or shrunk while it was being hashed: the values would
    /// describe neither its old nor its new content.
    #[error(
        "{}: changed while it was being read (length {before} bytes at the start, {after} at the end{}); hash it again once nothing writes to it",
        path.display(),
        if before == after { ", and modified" } else { "" }
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// Its length when the pass started.
        before: u64,
        /// Its length when the pass ended.
        after: u64,
    },
    /// A hashing thread could not be started.
    #[error("{}: cannot start a hashing thread: {source}", path.display())]
    Thread {
        /// The file being hashed.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The observer of the pass could not go on (see [`crate::Observer::failure`]).
    #[error("{}: the pass stopped: {what}", path.display())]
    Observer {
        /// The file being hashed.
        path: PathBuf,
        /// What failed.
        what: String,
    },
    /// A bug in vhdprep: reported, never a panic.
    #[error("{}: internal error: {what}", path.display())]
    Internal {
        /// The file being hashed.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// A manifest cannot be read or parsed.
    #[error("{}: {what}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
}

fn shrink_hint(e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        " (the file shrank while it was being read)"
    } else {
        ""
    }
}
