//! A caching [`FileSystem`] wrapper. Guest facts probe thousands of paths (unit files, module
//! trees, config fragments), most of them absent, and every lookup in a reader walks the path
//! from the root again; images are read-only to vhdprep, so answers never change. The wrapper
//! remembers metadata, listings and link targets (bounded), and answers "not found" from a
//! cached listing of the parent directory without asking the reader.

use crate::api::{split_path, DirEntry, FileSystem, FsError, FsResult, Metadata};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Most directory entries kept over all cached listings; the cache starts afresh beyond.
pub const MAX_CACHED_ENTRIES: usize = 200_000;
/// Most metadata and link answers kept; the cache starts afresh beyond.
pub const MAX_CACHED_PATHS: usize = 100_000;

/// A cached directory listing and its names, for absent-name answers.
struct Listing {
    entries: Vec<DirEntry>,
    names: HashSet<Vec<u8>>,
}

#[derive(Default)]
struct State {
    meta: HashMap<Vec<u8>, Metadata>,
    links: HashMap<Vec<u8>, Vec<u8>>,
    dirs: HashMap<Vec<u8>, Listing>,
    dir_entries: usize,
}

/// Wraps a reader with a bounded, read-through cache.
pub struct CachedFs {
    inner: Arc<dyn FileSystem>,
    /// Names compare exactly (not FAT, whose lookups ignore case): absent names may be
    /// answered from the parent's listing.
    exact_names: bool,
    state: Mutex<State>,
}

impl CachedFs {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn FileSystem>) -> CachedFs {
        let exact_names = inner.fs_type() != "vfat";
        CachedFs {
            inner,
            exact_names,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves only a cache behind: keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `/a//b/` → `a/b`: the key of a path.
fn key(path: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(path.len());
    for (i, c) in split_path(path).enumerate() {
        if i > 0 {
            k.push(b'/');
        }
        k.extend_from_slice(c);
    }
    k
}

/// (parent key, last name) of a key; `None` for the root.
fn parent_and_name(k: &[u8]) -> Option<(&[u8], &[u8])> {
    if k.is_empty() {
        return None;
    }
    Some(match k.iter().rposition(|&b| b == b'/') {
        Some(i) => (&k[..i], &k[i + 1..]),
        None => (&k[..0], k),
    })
}

impl CachedFs {
    /// True when the parent's cached listing shows that `k` does not exist.
    fn known_absent(&self, k: &[u8]) -> bool {
        if !self.exact_names {
            return false;
        }
        let Some((parent, name)) = parent_and_name(k) else {
            return false;
        };
        let st = self.state();
        st.dirs.get(parent).is_some_and(|l| !l.names.contains(name))
    }
}

impl FileSystem for CachedFs {
    fn fs_type(&self) -> &'static str {
        self.inner.fs_type()
    }

    fn metadata(&self, path: &[u8]) -> FsResult<Metadata> {
        let k = key(path);
        if let Some(m) = self.state().meta.get(&k) {
            return Ok(m.clone());
        }
        if self.known_absent(&k) {
            return Err(FsError::NotFound {
                path: String::from_utf8_lossy(path).into_owned(),
            });
        }
        let m = self.inner.metadata(path)?;
        let mut st = self.state();
        if st.meta.len() >= MAX_CACHED_PATHS {
            st.meta.clear();
        }
        st.meta.insert(k, m.clone());
        Ok(m)
    }

    fn read_dir(&self, path: &[u8]) -> FsResult<Vec<DirEntry>> {
        let k = key(path);
        if let Some(l) = self.state().dirs.get(&k) {
            return Ok(l.entries.clone());
        }
        if self.known_absent(&k) {
            return Err(FsError::NotFound {
                path: String::from_utf8_lossy(path).into_owned(),
            });
        }
        let list = self.inner.read_dir(path)?;
        let names: HashSet<Vec<u8>> = list.iter().map(|e| e.name.clone()).collect();
        let mut st = self.state();
        if st.dir_entries + list.len() > MAX_CACHED_ENTRIES {
            st.dirs.clear();
            st.dir_entries = 0;
        }
        if list.len() <= MAX_CACHED_ENTRIES {
            st.dir_entries += list.len();
            st.dirs.insert(
                k,
                Listing {
                    entries: list.clone(),
                    names,
                },
            );
        }
        Ok(list)
    }

    fn read_link(&self, path: &[u8]) -> FsResult<Vec<u8>> {
        let k = key(path);
        if let Some(t) = self.state().links.get(&k) {
            return Ok(t.clone());
        }
        if self.known_absent(&k) {
            return Err(FsError::NotFound {
                path: String::from_utf8_lossy(path).into_owned(),
            });
        }
        let t = self.inner.read_link(path)?;
        let mut st = self.state();
        if st.links.len() >= MAX_CACHED_PATHS {
            st.links.clear();
        }
        st.links.insert(k, t.clone());
        Ok(t)
    }

    fn read_file(&self, path: &[u8], limit: u64) -> FsResult<Vec<u8>> {
        let k = key(path);
        if self.known_absent(&k) {
            return Err(FsError::NotFound {
                path: String::from_utf8_lossy(path).into_owned(),
            });
        }
        self.inner.read_file(path, limit)
    }

    fn read_range(&self, path: &[u8], offset: u64, len: u64) -> FsResult<Vec<u8>> {
        if self.known_absent(&key(path)) {
            return Err(FsError::NotFound {
                path: String::from_utf8_lossy(path).into_owned(),
            });
        }
        self.inner.read_range(path, offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FileKind;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A two-file filesystem that counts the calls reaching it.
    struct Counting {
        calls: AtomicUsize,
        fs_type: &'static str,
    }

    fn meta(kind: FileKind) -> Metadata {
        Metadata {
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 1,
            mtime: None,
            inode: None,
        }
    }

    impl FileSystem for Counting {
        fn fs_type(&self) -> &'static str {
            self.fs_type
        }
        fn metadata(&self, path: &[u8]) -> FsResult<Metadata> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            match key(path).as_slice() {
                b"" | b"etc" => Ok(meta(FileKind::Dir)),
                b"etc/hostname" => Ok(meta(FileKind::File)),
                b"etc/link" => Ok(meta(FileKind::Symlink)),
                _ => Err(FsError::NotFound {
                    path: String::from_utf8_lossy(path).into_owned(),
                }),
            }
        }
        fn read_dir(&self, path: &[u8]) -> FsResult<Vec<DirEntry>> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            match key(path).as_slice() {
                b"etc" => Ok(vec![
                    DirEntry {
                        name: b"hostname".to_vec(),
                        kind: FileKind::File,
                    },
                    DirEntry {
                        name: b"link".to_vec(),
                        kind: FileKind::Symlink,
                    },
                ]),
                _ => Err(FsError::NotFound {
                    path: String::from_utf8_lossy(path).into_owned(),
                }),
            }
        }
        fn read_link(&self, _path: &[u8]) -> FsResult<Vec<u8>> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            Ok(b"hostname".to_vec())
        }
        fn read_file(&self, _path: &[u8], _limit: u64) -> FsResult<Vec<u8>> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            Ok(b"x".to_vec())
        }
    }

    fn cached(fs_type: &'static str) -> (Arc<Counting>, CachedFs) {
        let inner = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            fs_type,
        });
        (inner.clone(), CachedFs::new(inner))
    }

    #[test]
    fn answers_repeat_lookups_and_absent_names_from_the_cache() {
        let (inner, fs) = cached("ext4");
        assert_eq!(fs.metadata(b"/etc/hostname").unwrap().kind, FileKind::File);
        assert_eq!(
            fs.metadata(b"//etc/hostname/").unwrap().kind,
            FileKind::File
        );
        assert_eq!(inner.calls.load(Ordering::Relaxed), 1);
        // Before the listing is known, an absent name asks the reader ...
        assert!(matches!(
            fs.metadata(b"/etc/nope"),
            Err(FsError::NotFound { .. })
        ));
        assert_eq!(inner.calls.load(Ordering::Relaxed), 2);
        assert_eq!(fs.read_dir(b"/etc").unwrap().len(), 2);
        assert_eq!(fs.read_dir(b"/etc").unwrap().len(), 2);
        assert_eq!(inner.calls.load(Ordering::Relaxed), 3);
        // ... afterwards the listing answers.
        assert!(matches!(
            fs.metadata(b"/etc/other"),
            Err(FsError::NotFound { .. })
        ));
        assert!(matches!(
            fs.read_file(b"/etc/other", 10),
            Err(FsError::NotFound { .. })
        ));
        assert!(matches!(
            fs.read_link(b"/etc/other"),
            Err(FsError::NotFound { .. })
        ));
        assert_eq!(inner.calls.load(Ordering::Relaxed), 3);
        assert_eq!(fs.read_link(b"/etc/link").unwrap(), b"hostname");
        assert_eq!(fs.read_link(b"/etc/link").unwrap(), b"hostname");
        assert_eq!(inner.calls.load(Ordering::Relaxed), 4);
        // Files are always read from the reader.
        fs.read_file(b"/etc/hostname", 10).unwrap();
        fs.read_file(b"/etc/hostname", 10).unwrap();
        assert_eq!(inner.calls.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn fat_names_are_never_declared_absent_from_a_listing() {
        let (inner, fs) = cached("vfat");
        fs.read_dir(b"/etc").unwrap();
        // FAT matches names case-insensitively: the reader must decide.
        let _ = fs.metadata(b"/etc/HOSTNAME");
        assert_eq!(inner.calls.load(Ordering::Relaxed), 2);
    }
}
