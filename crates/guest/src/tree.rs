//! The guest tree: filesystems joined at their mount points, and path resolution that stays
//! inside the guest.
//!
//! Paths are resolved component by component. `..` at the root stays at the root; a symbolic
//! link's target is resolved against the guest root when absolute and against the link's
//! folder otherwise, so nothing in an image can name a host path. At most [`MAX_SYMLINKS`]
//! links are followed per lookup (the kernel's limit), and a loop is reported as such.

use std::sync::Arc;
use vhdprep_fs::{split_path, DirEntry, FileKind, FileSystem, FsError, Metadata};

/// Most symbolic links followed in one lookup (Linux: 40).
pub const MAX_SYMLINKS: usize = 40;
/// Most components a path may have after link expansion.
const MAX_COMPONENTS: usize = 4096;

/// One filesystem attached to the guest tree.
#[derive(Clone)]
pub struct Mount {
    /// Where it is mounted, as components (`[]` is `/`).
    pub at: Vec<Vec<u8>>,
    /// The filesystem.
    pub fs: Arc<dyn FileSystem>,
    /// What it is (for reports): e.g. `partition 2`, `rootvg/rootlv`.
    pub source: String,
}

/// Why a guest path could not be resolved or read.
#[derive(Debug, thiserror::Error)]
pub enum GuestPathError {
    /// A component does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The guest path asked for.
        path: String,
    },
    /// A component that must be a directory is not one.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The guest path.
        path: String,
    },
    /// More than [`MAX_SYMLINKS`] links, or a cycle.
    #[error("{path}: too many levels of symbolic links (a loop?)")]
    SymlinkLoop {
        /// The guest path.
        path: String,
    },
    /// The filesystem failed.
    #[error("{path}: {source}")]
    Fs {
        /// The guest path.
        path: String,
        /// What the filesystem said.
        #[source]
        source: FsError,
    },
}

/// A path resolved to one filesystem and a path inside it.
#[derive(Clone)]
pub struct Resolved {
    /// The guest path after link resolution, as components.
    pub components: Vec<Vec<u8>>,
    /// Index of the mount holding it.
    pub mount: usize,
    /// The path inside that filesystem (`/` separated, starts with `/`).
    pub fs_path: Vec<u8>,
    /// The object's metadata (lstat when the final link was not followed).
    pub metadata: Metadata,
}

/// The assembled guest: mounts, deepest last.
#[derive(Clone, Default)]
pub struct GuestTree {
    mounts: Vec<Mount>,
}

fn display(components: &[Vec<u8>]) -> String {
    if components.is_empty() {
        return "/".into();
    }
    components
        .iter()
        .map(|c| format!("/{}", String::from_utf8_lossy(c)))
        .collect()
}

impl GuestTree {
    /// A tree with `root` at `/`.
    pub fn new(root: Arc<dyn FileSystem>, source: impl Into<String>) -> Self {
        GuestTree {
            mounts: vec![Mount {
                at: Vec::new(),
                fs: root,
                source: source.into(),
            }],
        }
    }

    /// Attaches `fs` at guest path `at` (a later mount at the same place hides the earlier).
    pub fn mount(&mut self, at: &[u8], fs: Arc<dyn FileSystem>, source: impl Into<String>) {
        let at: Vec<Vec<u8>> = split_path(at).map(<[u8]>::to_vec).collect();
        self.mounts.push(Mount {
            at,
            fs,
            source: source.into(),
        });
    }

    /// The mounts, in the order they were attached.
    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// The mount that holds `components`: the deepest (latest) whose mount point is a prefix.
    fn mount_for(&self, components: &[Vec<u8>]) -> Option<(usize, Vec<u8>)> {
        let (idx, m) = self
            .mounts
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, m)| components.starts_with(&m.at))
            .max_by_key(|(i, m)| (m.at.len(), *i))?;
        let mut fs_path = Vec::new();
        for c in &components[m.at.len()..] {
            fs_path.push(b'/');
            fs_path.extend_from_slice(c);
        }
        if fs_path.is_empty() {
            fs_path.push(b'/');
        }
        Some((idx, fs_path))
    }

    fn lstat(&self, components: &[Vec<u8>]) -> Result<(usize, Vec<u8>, Metadata), GuestPathError> {
        let (idx, fs_path) =
            self.mount_for(components)
                .ok_or_else(|| GuestPathError::NotFound {
                    path: display(components),
                })?;
        match self.mounts[idx].fs.metadata(&fs_path) {
            Ok(m) => Ok((idx, fs_path, m)),
            Err(FsError::NotFound { .. }) => Err(GuestPathError::NotFound {
                path: display(components),
            }),
            Err(FsError::NotADirectory { .. }) => Err(GuestPathError::NotADirectory {
                path: display(components),
            }),
            Err(e) => Err(GuestPathError::Fs {
                path: display(components),
                source: e,
            }),
        }
    }

    /// Resolves a guest path. `follow_final` follows a symlink in the last component (like
    /// `stat`); otherwise the link itself is returned (like `lstat`).
    pub fn resolve(&self, path: &[u8], follow_final: bool) -> Result<Resolved, GuestPathError> {
        let asked = String::from_utf8_lossy(path).into_owned();
        // Components still to walk, in reverse (a stack), and the resolved prefix.
        let mut todo: Vec<Vec<u8>> = split_path(path).rev().map(<[u8]>::to_vec).collect();
        let mut done: Vec<Vec<u8>> = Vec::new();
        let mut links = 0usize;
        let (mut idx, mut fs_path, mut meta) = self.lstat(&done)?;
        while let Some(c) = todo.pop() {
            if c == b"." {
                continue;
            }
            if c == b".." {
                done.pop();
                (idx, fs_path, meta) = self.lstat(&done)?;
                continue;
            }
            if meta.kind != FileKind::Dir {
                return Err(GuestPathError::NotADirectory {
                    path: display(&done),
                });
            }
            done.push(c);
            (idx, fs_path, meta) = self.lstat(&done)?;
            let is_last = todo.is_empty();
            if meta.kind == FileKind::Symlink && (!is_last || follow_final) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(GuestPathError::SymlinkLoop { path: asked });
                }
                let target =
                    self.mounts[idx]
                        .fs
                        .read_link(&fs_path)
                        .map_err(|e| GuestPathError::Fs {
                            path: display(&done),
                            source: e,
                        })?;
                done.pop();
                if target.first() == Some(&b'/') {
                    done.clear();
                }
                todo.extend(split_path(&target).rev().map(<[u8]>::to_vec));
                if todo.len() + done.len() > MAX_COMPONENTS {
                    return Err(GuestPathError::SymlinkLoop { path: asked });
                }
                (idx, fs_path, meta) = self.lstat(&done)?;
            }
        }
        Ok(Resolved {
            components: done,
            mount: idx,
            fs_path,
            metadata: meta,
        })
    }

    /// `stat`: metadata after following links.
    pub fn metadata(&self, path: &[u8]) -> Result<Metadata, GuestPathError> {
        Ok(self.resolve(path, true)?.metadata)
    }

    /// `lstat`: metadata of the last component itself.
    pub fn symlink_metadata(&self, path: &[u8]) -> Result<Metadata, GuestPathError> {
        Ok(self.resolve(path, false)?.metadata)
    }

    /// True when the path resolves (following links) to something.
    pub fn exists(&self, path: &[u8]) -> bool {
        self.resolve(path, true).is_ok()
    }

    /// The entries of a directory (following links to it), sorted by name. Mount points show
    /// as directories even where the underlying filesystem has no such entry.
    pub fn read_dir(&self, path: &[u8]) -> Result<Vec<DirEntry>, GuestPathError> {
        let r = self.resolve(path, true)?;
        let fs = &self.mounts[r.mount].fs;
        let mut entries = fs.read_dir(&r.fs_path).map_err(|e| GuestPathError::Fs {
            path: display(&r.components),
            source: e,
        })?;
        for m in &self.mounts {
            if m.at.len() == r.components.len() + 1 && m.at.starts_with(&r.components) {
                let name = m.at.last().expect("non-empty").clone();
                if !entries.iter().any(|e| e.name == name) {
                    entries.push(DirEntry {
                        name,
                        kind: FileKind::Dir,
                    });
                }
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// The target of a symbolic link (not followed).
    pub fn read_link(&self, path: &[u8]) -> Result<Vec<u8>, GuestPathError> {
        let r = self.resolve(path, false)?;
        self.mounts[r.mount]
            .fs
            .read_link(&r.fs_path)
            .map_err(|e| GuestPathError::Fs {
                path: display(&r.components),
                source: e,
            })
    }

    /// The content of a file (following links), refusing more than `limit` bytes.
    pub fn read_file(&self, path: &[u8], limit: u64) -> Result<Vec<u8>, GuestPathError> {
        let r = self.resolve(path, true)?;
        self.mounts[r.mount]
            .fs
            .read_file(&r.fs_path, limit)
            .map_err(|e| GuestPathError::Fs {
                path: display(&r.components),
                source: e,
            })
    }

    /// Up to `len` bytes of the file at `path` (links followed) from byte `offset`.
    pub fn read_range(
        &self,
        path: &[u8],
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, GuestPathError> {
        let r = self.resolve(path, true)?;
        self.mounts[r.mount]
            .fs
            .read_range(&r.fs_path, offset, len)
            .map_err(|e| GuestPathError::Fs {
                path: display(&r.components),
                source: e,
            })
    }

    /// The guest path a path resolves to, as text (for evidence in reports).
    pub fn canonical(&self, path: &[u8]) -> Result<String, GuestPathError> {
        Ok(display(&self.resolve(path, true)?.components))
    }
}

#[cfg(any(test, feature = "memory-fs"))]
pub mod memory;

/// The name the unit tests know the in-memory filesystem by.
#[cfg(test)]
pub(crate) mod memfs {
    pub use super::memory::MemoryFs as MemFs;
}

#[cfg(test)]
mod tests {
    use super::memfs::MemFs;
    use super::*;

    fn guest() -> GuestTree {
        let root = MemFs::default()
            .dir("/")
            .dir("/etc")
            .file("/etc/os-release", "ID=debian\n")
            .link("/etc/alt", "/usr/share/x")
            .link("/etc/rel", "../usr/share/x")
            .dir("/usr")
            .dir("/usr/share")
            .file("/usr/share/x", "payload")
            .link("/escape", "../../../../../etc/os-release")
            .link("/loop1", "/loop2")
            .link("/loop2", "/loop1")
            .link("/self", "self")
            .link("/proc-link", "/proc/self/root/etc/shadow")
            .link("/bin", "usr/bin")
            .dir("/boot")
            .link("/efi", "/boot/efi")
            .file("/plain", "p");
        let esp = MemFs::default()
            .dir("/")
            .dir("/EFI")
            .dir("/EFI/BOOT")
            .file("/EFI/BOOT/BOOTX64.EFI", "MZ")
            .link("/EFI/up", "../../../etc/os-release");
        let mut g = GuestTree::new(Arc::new(root), "root");
        g.mount(b"/boot/efi", Arc::new(esp), "esp");
        g
    }

    #[test]
    fn absolute_and_relative_links_resolve_inside_the_guest() {
        let g = guest();
        assert_eq!(g.read_file(b"/etc/alt", 100).unwrap(), b"payload");
        assert_eq!(g.read_file(b"/etc/rel", 100).unwrap(), b"payload");
        assert_eq!(g.canonical(b"/etc/alt").unwrap(), "/usr/share/x");
        assert_eq!(
            g.symlink_metadata(b"/etc/alt").unwrap().kind,
            FileKind::Symlink
        );
    }

    #[test]
    fn dotdot_clamps_at_the_guest_root() {
        let g = guest();
        assert_eq!(g.read_file(b"/escape", 100).unwrap(), b"ID=debian\n");
        assert_eq!(
            g.read_file(b"/../../etc/os-release", 100).unwrap(),
            b"ID=debian\n"
        );
    }

    #[test]
    fn crossing_into_and_out_of_a_mount() {
        let g = guest();
        assert_eq!(
            g.read_file(b"/boot/efi/EFI/BOOT/BOOTX64.EFI", 100).unwrap(),
            b"MZ"
        );
        assert_eq!(
            g.read_file(b"/efi/EFI/BOOT/BOOTX64.EFI", 100).unwrap(),
            b"MZ"
        );
        // ../../../ from /boot/efi/EFI climbs out of the ESP into the root filesystem.
        assert_eq!(
            g.read_file(b"/boot/efi/EFI/up", 100).unwrap(),
            b"ID=debian\n"
        );
        assert_eq!(g.resolve(b"/boot/efi/EFI", true).unwrap().mount, 1);
        let names: Vec<_> = g
            .read_dir(b"/boot")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec![b"efi".to_vec()], "mount point listed");
    }

    #[test]
    fn loops_and_host_paths_fail_cleanly() {
        let g = guest();
        assert!(matches!(
            g.read_file(b"/loop1", 10),
            Err(GuestPathError::SymlinkLoop { .. })
        ));
        assert!(matches!(
            g.metadata(b"/self"),
            Err(GuestPathError::SymlinkLoop { .. })
        ));
        // /proc does not exist in the guest: never the host's /proc.
        assert!(matches!(
            g.read_file(b"/proc-link", 10),
            Err(GuestPathError::NotFound { .. })
        ));
        assert!(matches!(
            g.read_file(b"/bin/sh", 10),
            Err(GuestPathError::NotFound { .. })
        ));
        assert!(matches!(
            g.read_file(b"/plain/x", 10),
            Err(GuestPathError::NotADirectory { .. })
        ));
        assert!(matches!(
            g.read_file(b"/nope", 10),
            Err(GuestPathError::NotFound { .. })
        ));
        assert!(!g.exists(b"/loop2"));
        assert!(g.exists(b"/loop2") == g.exists(b"/loop1"));
    }
}
