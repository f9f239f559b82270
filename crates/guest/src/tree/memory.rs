//! An in-memory [`FileSystem`]: the guest layer's unit tests and the fuzz targets build small
//! guest trees with it (real filesystems are tested against real images).
//!
//! Compiled for this crate's tests and with the `memory-fs` feature (which `vhdprep-fuzz`
//! enables); the `vhdprep` binary does not contain it.

use std::collections::BTreeMap;
use vhdprep_fs::{split_path, DirEntry, FileKind, FileSystem, FsError, FsResult, Metadata};

/// A filesystem held in a map from absolute path (`/etc/fstab`) to kind and content (a
/// file's bytes, a link's target; empty for a directory).
///
/// It checks the [`FileSystem`] contract: every parent of a path asked for must be a
/// directory in the map. Asking *through* a symbolic link is a caller bug (the guest tree
/// resolves links itself) and panics, so that tests and fuzzing catch it.
#[derive(Default)]
pub struct MemoryFs {
    /// Path → (kind, content). Parents are not created implicitly; add them with
    /// [`MemoryFs::dir`].
    pub nodes: BTreeMap<Vec<u8>, (FileKind, Vec<u8>)>,
}

impl MemoryFs {
    /// Adds the directory `p` (`/` is the root).
    pub fn dir(mut self, p: &str) -> Self {
        self.nodes
            .insert(p.as_bytes().to_vec(), (FileKind::Dir, vec![]));
        self
    }

    /// Adds the regular file `p` holding the text `content`.
    pub fn file(self, p: &str, content: &str) -> Self {
        self.file_bytes(p, content.as_bytes())
    }

    /// Adds the regular file `p` holding `content`.
    pub fn file_bytes(mut self, p: &str, content: &[u8]) -> Self {
        self.nodes
            .insert(p.as_bytes().to_vec(), (FileKind::File, content.to_vec()));
        self
    }

    /// Adds the symbolic link `p` pointing to `target`.
    pub fn link(mut self, p: &str, target: &str) -> Self {
        self.nodes.insert(
            p.as_bytes().to_vec(),
            (FileKind::Symlink, target.as_bytes().to_vec()),
        );
        self
    }

    fn get(&self, path: &[u8]) -> FsResult<&(FileKind, Vec<u8>)> {
        let parts: Vec<&[u8]> = split_path(path).collect();
        for i in 0..parts.len().saturating_sub(1) {
            let parent: Vec<u8> = parts[..=i]
                .iter()
                .flat_map(|c| [&b"/"[..], c].concat())
                .collect();
            match self.nodes.get(&parent) {
                Some((FileKind::Dir, _)) => {}
                Some((FileKind::Symlink, _)) => {
                    panic!("FileSystem contract broken: asked through a symlink {parent:?}")
                }
                Some(_) => return Err(not_a_directory(&parent)),
                None => return Err(not_found(&parent)),
            }
        }
        self.nodes.get(path).ok_or_else(|| not_found(path))
    }
}

fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

fn not_found(path: &[u8]) -> FsError {
    FsError::NotFound { path: lossy(path) }
}

fn not_a_directory(path: &[u8]) -> FsError {
    FsError::NotADirectory { path: lossy(path) }
}

impl FileSystem for MemoryFs {
    fn fs_type(&self) -> &'static str {
        "mem"
    }

    fn metadata(&self, path: &[u8]) -> FsResult<Metadata> {
        let (kind, data) = self.get(path)?;
        Ok(Metadata {
            kind: *kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: data.len() as u64,
            mtime: None,
            inode: None,
        })
    }

    fn read_dir(&self, path: &[u8]) -> FsResult<Vec<DirEntry>> {
        match self.get(path)? {
            (FileKind::Dir, _) => {}
            _ => return Err(not_a_directory(path)),
        }
        let prefix = if path == b"/" {
            b"/".to_vec()
        } else {
            [path, b"/"].concat()
        };
        Ok(self
            .nodes
            .iter()
            .filter(|(k, _)| {
                k.starts_with(&prefix)
                    && k.len() > prefix.len()
                    && !k[prefix.len()..].contains(&b'/')
            })
            .map(|(k, (kind, _))| DirEntry {
                name: k[prefix.len()..].to_vec(),
                kind: *kind,
            })
            .collect())
    }

    fn read_link(&self, path: &[u8]) -> FsResult<Vec<u8>> {
        match self.get(path)? {
            (FileKind::Symlink, t) => Ok(t.clone()),
            _ => Err(FsError::NotASymlink { path: lossy(path) }),
        }
    }

    fn read_file(&self, path: &[u8], limit: u64) -> FsResult<Vec<u8>> {
        match self.get(path)? {
            (FileKind::File, d) if d.len() as u64 > limit => Err(FsError::TooLarge {
                path: lossy(path),
                size: d.len() as u64,
                limit,
            }),
            (FileKind::File, d) => Ok(d.clone()),
            _ => Err(FsError::IsADirectory { path: lossy(path) }),
        }
    }
}
