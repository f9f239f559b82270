//! Errors of the disk layer. Each names the file and says the problem in one line.

use std::io;
use std::path::PathBuf;

/// Why a disk image cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// An operating-system error, with the operation that failed.
    #[error("{}: {op}: {}", path.display(), reason(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (`open`, `read footer`, `write footer` ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An operating-system error at a known offset of the virtual disk (a read of the
    /// source or a write of the destination during a copy).
    #[error("{}: {op} (disk offset {offset}): {}", path.display(), reason(source))]
    IoAt {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Offset in the virtual disk.
        offset: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A directory, socket or other non-file.
    #[error("{}: not a disk image: it is a {kind}", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// A file too small to hold even one sector.
    #[error("{}: not a disk image: {}", path.display(), too_small(*size))]
    TooSmall {
        /// The file.
        path: PathBuf,
        /// Its length.
        size: u64,
    },
    /// A container vhdprep recognises but does not read (see [`crate::refusal`]).
    #[error("{}: {what}, which vhdprep does not read; {hint}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The format in words, with its name (`VirtualBox VDI image (vdi)`).
        what: String,
        /// What to do instead, with the command.
        hint: String,
    },
    /// A parent (backing file) that is missing, not the one the child names, or unreadable;
    /// or a chain that loops or is too long.
    #[error("{}: {what}", path.display())]
    Chain {
        /// The child.
        path: PathBuf,
        /// What was expected and where it was looked for.
        what: String,
    },
    /// The footer claims more data than the file holds.
    #[error("{}: truncated: the footer claims a {claimed}-byte disk but the file holds only {available} bytes of data", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Disk size the footer claims.
        claimed: u64,
        /// Data bytes present.
        available: u64,
    },
    /// A structure of the container is damaged beyond use.
    #[error("{}: {what}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the offset.
        what: String,
    },
    /// A writer refuses to run (destination exists, nothing to do on this format, ...).
    #[error("{}: {why}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

impl DiskError {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            DiskError::Io { path, .. }
            | DiskError::IoAt { path, .. }
            | DiskError::NotAFile { path, .. }
            | DiskError::TooSmall { path, .. }
            | DiskError::Unsupported { path, .. }
            | DiskError::Chain { path, .. }
            | DiskError::Truncated { path, .. }
            | DiskError::Corrupt { path, .. }
            | DiskError::Refused { path, .. } => path,
        }
    }

    /// The message without the file name it starts with, for an error about the same file that
    /// wraps this one (`SRC: cannot convert: <detail>`).
    pub fn detail(&self) -> String {
        let full = self.to_string();
        let prefix = format!("{}: ", self.path().display());
        match full.strip_prefix(&prefix) {
            Some(rest) => rest.to_string(),
            None => full,
        }
    }

    /// Wraps an I/O error with the file and operation.
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        DiskError::Io {
            path: path.into(),
            op,
            source,
        }
    }
}

/// The operating system's error in words a user can act on: a full disk, a file-size limit
/// and a failing device are said plainly, followed by the system's own text and code (which
/// scripts may look for); other errors are the system's text alone.
pub fn reason(e: &io::Error) -> String {
    use rustix::io::Errno;
    let Some(code) = e.raw_os_error() else {
        return e.to_string();
    };
    let plain = match Errno::from_raw_os_error(code) {
        Errno::NOSPC => "the disk holding it is full",
        Errno::DQUOT => "the disk holding it is full for this user (disk quota exceeded)",
        Errno::FBIG => {
            "it would grow past the largest file allowed here (the process's file-size limit, `ulimit -f`, or the filesystem's maximum file size)"
        }
        Errno::IO => "the device holding it reported an I/O error",
        _ => return e.to_string(),
    };
    let text = e.to_string();
    let system = text
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&text);
    format!("{plain} ({system}, os error {code})")
}

/// Result alias of the disk layer.
pub type Result<T, E = DiskError> = std::result::Result<T, E>;

fn too_small(size: u64) -> String {
    if size == 0 {
        "the file is empty".into()
    } else {
        format!("{size} bytes is less than one 512-byte sector")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_drops_the_leading_file_name_only() {
        let e = DiskError::Refused {
            path: "a/b.img".into(),
            why: "b.img: is odd".into(),
        };
        assert_eq!(e.path(), std::path::Path::new("a/b.img"));
        assert_eq!(e.detail(), "b.img: is odd");
        assert_eq!(e.to_string(), "a/b.img: b.img: is odd");
    }
}
