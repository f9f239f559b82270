//! ext2/ext3/ext4 through the `ext4-view` crate (pure Rust, no unsafe, no panics on bad input
//! by design; it also reads ext2 and ext3, which are ext4 without the newer features).
//!
//! `ext4_view::Ext4` is reference-counted with `Rc`, so it can live on one thread only: each
//! [`Ext4Fs`] owns a small worker thread that loads the filesystem once and answers requests
//! in order; the thread ends when the `Ext4Fs` is dropped. Each request still runs under
//! `catch_unwind`, so even an unexpected panic inside `ext4-view` becomes
//! [`FsError::Corrupt`].
//!
//! `ext4-view` resolves symbolic links inside paths; this module never lets it: the final
//! component is looked at with `symlink_metadata` (lstat), and a parent path is accepted only
//! when its canonical form is itself, i.e. it contains no symbolic link.

use crate::{split_path, DirEntry, FileKind, FileSystem, FsError, FsResult, Metadata, Volume};
use ext4_view::{Ext4, Ext4Error, Ext4Read, FileType};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

const FS: &str = "ext4";

type Job = Box<dyn FnOnce(&Ext4) + Send>;

/// An ext2/3/4 filesystem opened read-only.
#[derive(Debug)]
pub struct Ext4Fs {
    jobs: mpsc::Sender<Job>,
    label: Option<String>,
    uuid: String,
}

/// `Ext4Read` over a volume.
struct VolReader(Volume);

impl Ext4Read for VolReader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.0.read_exact_at(dst, start_byte).map_err(|e| e.into())
    }
}

fn corrupt(what: impl Into<String>) -> FsError {
    FsError::Corrupt {
        fs: FS,
        what: what.into(),
    }
}

fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// Maps an `ext4-view` error met while working on `path`.
fn map_err(e: Ext4Error, path: &[u8]) -> FsError {
    let path = lossy(path);
    match e {
        Ext4Error::NotFound => FsError::NotFound { path },
        Ext4Error::NotADirectory => FsError::NotADirectory { path },
        Ext4Error::IsADirectory => FsError::IsADirectory { path },
        Ext4Error::NotASymlink => FsError::NotASymlink { path },
        Ext4Error::Io(inner) => match inner.downcast::<std::io::Error>() {
            // A read past the end of the volume means the filesystem points outside it.
            Ok(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                corrupt(format!("{path}: {io} (truncated volume?)"))
            }
            Ok(io) => FsError::Io(*io),
            Err(other) => FsError::Io(std::io::Error::other(other)),
        },
        Ext4Error::Incompatible(i) => FsError::Unsupported {
            fs: FS,
            what: format!("{path}: {i}"),
        },
        Ext4Error::Encrypted => FsError::Unsupported {
            fs: FS,
            what: format!("{path}: encrypted file"),
        },
        Ext4Error::IsASpecialFile => FsError::Unsupported {
            fs: FS,
            what: format!("{path}: not a regular file"),
        },
        other => corrupt(format!("{path}: {other}")),
    }
}

/// Reader threads per filesystem, each with its own `Ext4` (which is not `Sync`): callers on
/// several threads (check gathers kernel facts beside the others) are not serialised on one.
const WORKERS: usize = 2;

/// Opens the ext2/3/4 filesystem of `vol`, read-only (the journal is read, never replayed
/// onto the volume).
pub fn open(vol: Volume) -> FsResult<Ext4Fs> {
    let (jobs, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let (ready_tx, ready_rx) = mpsc::sync_channel::<FsResult<(Option<String>, String)>>(WORKERS);
    for _ in 0..WORKERS {
        let (vol, rx, ready_tx) = (vol.clone(), rx.clone(), ready_tx.clone());
        thread::Builder::new()
            .name("vhdprep-ext4".into())
            .spawn(move || worker(vol, &rx, &ready_tx))?;
    }
    drop(ready_tx);
    let mut first = None;
    for _ in 0..WORKERS {
        let loaded = ready_rx
            .recv()
            .map_err(|_| corrupt("ext4 reader thread ended while loading"))??;
        first.get_or_insert(loaded);
    }
    let (label, uuid) = first.ok_or_else(|| corrupt("no ext4 reader thread"))?;
    Ok(Ext4Fs { jobs, label, uuid })
}

/// One reader thread: loads the filesystem, reports (label, UUID) or the error, then runs jobs
/// until every sender is gone.
fn worker(
    vol: Volume,
    rx: &Mutex<mpsc::Receiver<Job>>,
    ready_tx: &mpsc::SyncSender<FsResult<(Option<String>, String)>>,
) {
    let loaded = panic::catch_unwind(AssertUnwindSafe(|| Ext4::load(Box::new(VolReader(vol)))));
    let fs = match loaded {
        Ok(Ok(fs)) => fs,
        Ok(Err(e)) => {
            let _ = ready_tx.send(Err(map_err(e, b"/")));
            return;
        }
        Err(p) => {
            let _ = ready_tx.send(Err(corrupt(format!(
                "ext4-view panicked while loading: {}",
                crate::api::panic_text(&*p)
            ))));
            return;
        }
    };
    let label = fs.label().to_str().ok().and_then(|l| {
        let l = l.trim_end();
        (!l.is_empty()).then(|| l.to_string())
    });
    let _ = ready_tx.send(Ok((label, fs.uuid().to_string())));
    loop {
        // The lock is held only to take the next job; nothing can panic while it is held.
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A panicking job drops its reply channel: the caller sees Corrupt.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| job(&fs)));
    }
}

impl Ext4Fs {
    /// The volume label, if any.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The filesystem UUID, lower-case hyphenated.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// Runs `f` on the worker thread with the normalised path and waits for its answer.
    fn call<R: Send + 'static>(
        &self,
        path: &[u8],
        f: impl FnOnce(&Ext4, &[u8]) -> FsResult<R> + Send + 'static,
    ) -> FsResult<R> {
        let norm = normalise(path)?;
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |fs: &Ext4| {
                let _ = tx.send(f(fs, &norm));
            }))
            .map_err(|_| corrupt("ext4 reader thread has stopped"))?;
        rx.recv()
            .map_err(|_| corrupt(format!("{}: ext4-view panicked", lossy(path))))?
    }
}

/// `/a/b` from the components of `path`; `.`, `..` and NUL are refused (callers pass
/// normalised paths), as are paths longer than Linux allows.
fn normalise(path: &[u8]) -> FsResult<Vec<u8>> {
    let mut out = Vec::with_capacity(path.len() + 1);
    for c in split_path(path) {
        if c == b"." || c == b".." || c.contains(&0) || c.len() > 255 {
            return Err(FsError::NotFound { path: lossy(path) });
        }
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    if out.len() > 4095 {
        return Err(FsError::NotFound { path: lossy(path) });
    }
    Ok(out)
}

/// lstat of a normalised path whose parents must be real directories, not symbolic links.
fn lstat(fs: &Ext4, path: &[u8]) -> FsResult<ext4_view::Metadata> {
    let cut = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
    if cut > 0 {
        let parent = &path[..cut];
        match fs.canonicalize(parent) {
            Ok(canon) if AsRef::<[u8]>::as_ref(&canon) == parent => {}
            Ok(_) | Err(Ext4Error::TooManySymlinks) => {
                return Err(FsError::NotADirectory {
                    path: lossy(parent),
                })
            }
            Err(e) => return Err(map_err(e, parent)),
        }
    }
    fs.symlink_metadata(path).map_err(|e| map_err(e, path))
}

fn kind(t: FileType) -> FileKind {
    match t {
        FileType::Regular => FileKind::File,
        FileType::Directory => FileKind::Dir,
        FileType::Symlink => FileKind::Symlink,
        FileType::CharacterDevice => FileKind::CharDevice,
        FileType::BlockDevice => FileKind::BlockDevice,
        FileType::Fifo => FileKind::Fifo,
        FileType::Socket => FileKind::Socket,
    }
}

fn metadata(m: &ext4_view::Metadata) -> Metadata {
    Metadata {
        kind: kind(m.file_type()),
        mode: u32::from(m.mode()),
        uid: m.uid(),
        gid: m.gid(),
        size: m.len(),
        mtime: Some(m.modified().seconds()),
        inode: None,
    }
}

impl FileSystem for Ext4Fs {
    fn fs_type(&self) -> &'static str {
        FS
    }

    fn metadata(&self, path: &[u8]) -> FsResult<Metadata> {
        self.call(path, |fs, p| Ok(metadata(&lstat(fs, p)?)))
    }

    fn read_dir(&self, path: &[u8]) -> FsResult<Vec<DirEntry>> {
        self.call(path, |fs, p| {
            if !lstat(fs, p)?.is_dir() {
                return Err(FsError::NotADirectory { path: lossy(p) });
            }
            let mut out = Vec::new();
            for e in fs.read_dir(p).map_err(|e| map_err(e, p))? {
                let e = e.map_err(|e| map_err(e, p))?;
                let name = e.file_name();
                let name = name.as_ref();
                if name == b"." || name == b".." {
                    continue;
                }
                if out.len() >= crate::MAX_DIR_ENTRIES {
                    return Err(corrupt(format!(
                        "{}: more than {} directory entries",
                        lossy(p),
                        crate::MAX_DIR_ENTRIES
                    )));
                }
                let k = e.file_type().map(kind).unwrap_or(FileKind::Unknown);
                out.push(DirEntry {
                    name: name.to_vec(),
                    kind: k,
                });
            }
            Ok(out)
        })
    }

    fn read_link(&self, path: &[u8]) -> FsResult<Vec<u8>> {
        self.call(path, |fs, p| {
            if !lstat(fs, p)?.is_symlink() {
                return Err(FsError::NotASymlink { path: lossy(p) });
            }
            let target = fs.read_link(p).map_err(|e| map_err(e, p))?;
            Ok(AsRef::<[u8]>::as_ref(&target).to_vec())
        })
    }

    fn read_file(&self, path: &[u8], limit: u64) -> FsResult<Vec<u8>> {
        self.call(path, move |fs, p| {
            let size = regular_size(fs, p)?;
            if size > limit {
                return Err(FsError::TooLarge {
                    path: lossy(p),
                    size,
                    limit,
                });
            }
            read_at(fs, p, 0, size)
        })
    }

    fn read_range(&self, path: &[u8], offset: u64, len: u64) -> FsResult<Vec<u8>> {
        self.call(path, move |fs, p| {
            let size = regular_size(fs, p)?;
            let start = offset.min(size);
            let n = len.min(size - start);
            if n > crate::api::MAX_RANGE_FALLBACK {
                return Err(FsError::TooLarge {
                    path: lossy(p),
                    size: n,
                    limit: crate::api::MAX_RANGE_FALLBACK,
                });
            }
            read_at(fs, p, start, n)
        })
    }
}

/// Size of the regular file at `p`; an error for anything else (links are not followed).
fn regular_size(fs: &Ext4, p: &[u8]) -> FsResult<u64> {
    let m = lstat(fs, p)?;
    match m.file_type() {
        FileType::Regular => Ok(m.len()),
        FileType::Directory => Err(FsError::IsADirectory { path: lossy(p) }),
        FileType::Symlink => Err(FsError::Unsupported {
            fs: FS,
            what: format!(
                "{}: a symbolic link (read_file does not follow links)",
                lossy(p)
            ),
        }),
        _ => Err(FsError::Unsupported {
            fs: FS,
            what: format!("{}: not a regular file", lossy(p)),
        }),
    }
}

/// `len` bytes of the regular file `p` from `start` (the caller keeps them inside the file).
/// Stops the panic hook from printing the panics of `ext4-view` that this module catches.
///
/// Every call into `ext4-view` runs under `catch_unwind`, and a panic there becomes
/// [`FsError::Corrupt`] naming the file. But `ext4-view` 1.0.0 (the newest) has reachable
/// `unwrap`s on damaged inodes (`File::read_bytes` after a seek into a file whose size exceeds
/// its mapped blocks), and the process's panic hook runs before the unwinding is caught: the
/// CLI would print a "panicked at" message above its one-line error, and a fuzzer would
/// abort. This wraps the current hook (install it once, early, from a binary; a library must
/// not change a process-wide hook on its own): a panic located in `ext4-view`'s source is
/// silent; every other panic, vhdprep's own included, still reaches the previous hook.
pub fn quiet_contained_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let in_ext4_view = info
                .location()
                .is_some_and(|l| l.file().contains("ext4-view-"));
            if !in_ext4_view {
                previous(info);
            }
        }));
    });
}

fn read_at(fs: &Ext4, p: &[u8], start: u64, len: u64) -> FsResult<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| corrupt("file size beyond memory"))?;
    let mut file = fs.open(p).map_err(|e| map_err(e, p))?;
    if start > 0 {
        file.seek_to(start).map_err(|e| map_err(e, p))?;
    }
    let mut out = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_bytes(&mut out[got..]) {
            Ok(0) => {
                return Err(corrupt(format!(
                    "{}: data ends after {} of {} bytes",
                    lossy(p),
                    start + got as u64,
                    start + len as u64
                )))
            }
            Ok(n) => got += n,
            Err(e) => return Err(map_err(e, p)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn normalise_paths() {
        assert_eq!(normalise(b"/").unwrap(), b"/");
        assert_eq!(normalise(b"//etc//fstab").unwrap(), b"/etc/fstab");
        assert!(normalise(b"/etc/../x").is_err());
        assert!(normalise(b"/a\0b").is_err());
        assert!(normalise(&[b'a'; 300]).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let vol: Volume = Arc::new(vec![0x5Au8; 8192]);
        assert!(open(vol).is_err());
        let vol: Volume = Arc::new(Vec::new());
        assert!(open(vol).is_err());
    }
}
