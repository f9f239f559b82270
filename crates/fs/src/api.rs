//! The read-only filesystem interface every implementation provides.

use serde::Serialize;
use std::sync::Arc;
use vhdprep_disk::ReadAt;

/// The bytes of a volume (a partition, a logical volume, a whole disk), shared between threads.
pub type Volume = Arc<dyn ReadAt>;

/// Largest file `read_file` returns unless the caller asks for more (initramfs images are the
/// largest files the checks read).
pub const DEFAULT_READ_LIMIT: u64 = 256 << 20;

/// Most entries one `read_dir` returns; a directory claiming more is reported as corrupt
/// rather than exhausting memory.
pub const MAX_DIR_ENTRIES: usize = 1 << 20;

/// What kind of object a directory entry or inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Anything else (or not recorded in the directory entry).
    Unknown,
}

/// Metadata of one object, as `lstat` would give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    /// Kind of object.
    pub kind: FileKind,
    /// Permission bits and set-id/sticky bits (`mode & 0o7777`). FAT synthesises them.
    pub mode: u32,
    /// Owner (0 where the filesystem has none).
    pub uid: u32,
    /// Group (0 where the filesystem has none).
    pub gid: u32,
    /// Size in bytes (for a symlink: the length of its target).
    pub size: u64,
    /// Modification time, seconds since the Unix epoch, where known.
    pub mtime: Option<i64>,
    /// Inode number, where the filesystem has them.
    pub inode: Option<u64>,
}

/// One entry of a directory listing (never `.` or `..`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirEntry {
    /// The name, as bytes: Linux names need not be UTF-8.
    pub name: Vec<u8>,
    /// Kind, from the directory entry or the inode.
    pub kind: FileKind,
}

impl DirEntry {
    /// The name as text (lossy).
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// Why a filesystem operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// No such file or directory.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// A path component that must be a directory is not one.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The path.
        path: String,
    },
    /// `read_file` on a directory.
    #[error("{path}: is a directory")]
    IsADirectory {
        /// The path.
        path: String,
    },
    /// `read_link` on something that is not a symbolic link.
    #[error("{path}: not a symbolic link")]
    NotASymlink {
        /// The path.
        path: String,
    },
    /// The file is larger than the caller's limit.
    #[error("{path}: {size} bytes is more than the {limit}-byte limit for reading a whole file")]
    TooLarge {
        /// The path.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The on-disk structures are damaged (or hostile): what was wrong and where.
    #[error("corrupt {fs} filesystem: {what}")]
    Corrupt {
        /// Filesystem type.
        fs: &'static str,
        /// What is wrong, with the offset or inode where possible.
        what: String,
    },
    /// A feature the reader does not implement (e.g. an encrypted or compressed file).
    #[error("{fs}: unsupported: {what}")]
    Unsupported {
        /// Filesystem type.
        fs: &'static str,
        /// What.
        what: String,
    },
    /// An I/O error of the underlying volume.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias of the filesystem layer.
pub type FsResult<T> = Result<T, FsError>;

/// A read-only filesystem.
///
/// Paths are byte strings that start with `/` and are relative to this filesystem's root.
/// Callers pass normalised paths (no `.`/`..`/empty components) whose every component but the
/// last is a real directory (not a symlink): the guest layer guarantees it. Implementations
/// therefore never follow symbolic links, and `metadata` describes the last component itself
/// (`lstat`). Every implementation must be safe on hostile input: no panic, bounded memory
/// (respect [`MAX_DIR_ENTRIES`] and the read limit), no endless loop.
pub trait FileSystem: Send + Sync {
    /// Short type name: `ext4`, `xfs`, `btrfs`, `vfat`.
    fn fs_type(&self) -> &'static str;
    /// Metadata of the object at `path`, without following a final symlink.
    fn metadata(&self, path: &[u8]) -> FsResult<Metadata>;
    /// Entries of the directory at `path`, without `.` and `..`, in on-disk order.
    fn read_dir(&self, path: &[u8]) -> FsResult<Vec<DirEntry>>;
    /// Target of the symbolic link at `path`.
    fn read_link(&self, path: &[u8]) -> FsResult<Vec<u8>>;
    /// The whole content of the regular file at `path`, refusing files over `limit` bytes.
    fn read_file(&self, path: &[u8], limit: u64) -> FsResult<Vec<u8>>;
    /// Up to `len` bytes of the regular file at `path` from byte `offset` (fewer at its end,
    /// none past it), so that a PE signature at the end of a 14 MiB kernel costs kilobytes.
    /// The default reads the whole file (up to [`MAX_RANGE_FALLBACK`] bytes) and slices it;
    /// readers that can seek override it.
    fn read_range(&self, path: &[u8], offset: u64, len: u64) -> FsResult<Vec<u8>> {
        let whole = self.read_file(path, MAX_RANGE_FALLBACK)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(whole.len());
        let end = start
            .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
            .min(whole.len());
        Ok(whole[start..end].to_vec())
    }
}

/// Largest file the default [`FileSystem::read_range`] reads whole to slice it.
pub const MAX_RANGE_FALLBACK: u64 = 256 << 20;

/// The message of a caught panic (from third-party parsers run under `catch_unwind`).
pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Splits a normalised path into its components: `/a/b` → `["a", "b"]`; `/` → `[]`.
pub fn split_path(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_path_skips_empty_components() {
        let parts: Vec<&[u8]> = split_path(b"/etc//ssh/sshd_config").collect();
        assert_eq!(parts, vec![&b"etc"[..], b"ssh", b"sshd_config"]);
        assert_eq!(split_path(b"/").count(), 0);
    }
}
