//! FAT12/16/32 through the `fatfs` crate, hardened.
//!
//! `fatfs` 0.3.6 can panic on arithmetic overflow and loops forever on a cyclic cluster chain.
//! So: the boot sector is validated here first ([`bpb`]) with checked arithmetic; every call
//! into `fatfs` runs under `catch_unwind` (a panic becomes [`FsError::Corrupt`]); every
//! operation has a read budget enforced by the I/O adapter ([`io`]), which ends any loop
//! inside `fatfs` with an error; directory listings are capped at the 65536 entries FAT allows
//! and file reads at the size the directory entry declares.
//!
//! Names match case-insensitively (ASCII), as firmware matches `\EFI\BOOT\BOOTX64.EFI`;
//! listings give the on-disk long name (else the short name, with its case flags). Unix
//! attributes are synthesised: directories 0755, files 0644 (0444 when read-only), owner
//! root, modification time from the FAT timestamp taken as UTC.

pub(crate) mod bpb;
mod io;

use crate::{split_path, DirEntry, FileKind, FileSystem, FsError, FsResult, Metadata, Volume};
use bpb::{Bpb, FatKind};
use io::{Budget, VolIo};
use std::io::Read;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

const FS: &str = "vfat";
/// Bytes one metadata operation (a lookup, a listing) may read.
const OP_BUDGET: u64 = 64 << 20;
/// Most entries (`.` and `..` included) a FAT directory may have: 65536 by the specification.
const MAX_FAT_DIR_ENTRIES: usize = 65536;

type Fat = fatfs::FileSystem<VolIo>;
type FatEntry<'a> = fatfs::DirEntry<'a, VolIo>;

/// A FAT filesystem opened read-only.
///
/// `fatfs::FileSystem` is neither `Send` nor `Sync`, and mounting costs two sector reads, so
/// each operation mounts its own instance over the shared volume.
pub struct FatFs {
    vol: Volume,
    bpb: Bpb,
}

impl std::fmt::Debug for FatFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatFs").field("bpb", &self.bpb).finish()
    }
}

fn corrupt(what: impl Into<String>) -> FsError {
    FsError::Corrupt {
        fs: FS,
        what: what.into(),
    }
}

/// Maps an error out of `fatfs`: operating-system errors of the volume stay I/O errors,
/// everything `fatfs` made up itself means a damaged filesystem.
fn map_io(e: std::io::Error, budget: &Budget) -> FsError {
    if budget.was_spent() {
        corrupt(io::BUDGET_SPENT)
    } else if e.raw_os_error().is_some() {
        FsError::Io(e)
    } else {
        corrupt(e.to_string())
    }
}

/// Opens the FAT filesystem of `vol`, read-only: validates the boot sector and mounts once
/// to check that `fatfs` accepts it.
pub fn open(vol: Volume) -> FsResult<FatFs> {
    let mut bs = [0u8; 512];
    vol.read_exact_at(&mut bs, 0).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            corrupt("volume shorter than a boot sector")
        } else {
            FsError::Io(e)
        }
    })?;
    let bpb = Bpb::parse(&bs).map_err(|w| corrupt(format!("not a FAT boot sector: {w}")))?;
    bpb.check_for_reader(vol.len())
        .map_err(|w| corrupt(format!("boot sector: {w}")))?;
    let fat = FatFs { vol, bpb };
    fat.run(OP_BUDGET, |_, _| Ok(()))?;
    Ok(fat)
}

/// What a path names: the root (which has no directory entry) or an entry.
enum Node<'a> {
    Root,
    Entry(Box<FatEntry<'a>>),
}

impl FatFs {
    /// `FAT12`, `FAT16` or `FAT32`.
    pub fn fat_variant(&self) -> &'static str {
        match self.bpb.kind() {
            FatKind::Fat12 => "FAT12",
            FatKind::Fat16 => "FAT16",
            FatKind::Fat32 => "FAT32",
        }
    }

    /// Mounts the filesystem and runs `f` on it with a read budget of `budget` bytes,
    /// turning a panic or a spent budget into [`FsError::Corrupt`].
    fn run<R>(&self, budget: u64, f: impl FnOnce(&Fat, &Budget) -> FsResult<R>) -> FsResult<R> {
        let budget_cell = Arc::new(Budget::default());
        budget_cell.reset(budget);
        let io = VolIo::new(self.vol.clone(), budget_cell.clone());
        let b = &*budget_cell;
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            let fs =
                fatfs::FileSystem::new(io, fatfs::FsOptions::new()).map_err(|e| map_io(e, b))?;
            f(&fs, b)
        }));
        match result {
            Ok(Err(_)) if b.was_spent() => Err(corrupt(io::BUDGET_SPENT)),
            Ok(r) => r,
            Err(p) => Err(corrupt(format!(
                "fatfs panicked: {}",
                crate::api::panic_text(&*p)
            ))),
        }
    }
}

/// Calls `each` on every entry of `dir` but `.` and `..`, in on-disk order, until it returns
/// true; at most [`MAX_FAT_DIR_ENTRIES`] entries.
fn for_each_entry<'a>(
    dir: &fatfs::Dir<'a, VolIo>,
    budget: &Budget,
    mut each: impl FnMut(FatEntry<'a>) -> bool,
) -> FsResult<()> {
    let cap = MAX_FAT_DIR_ENTRIES.min(crate::MAX_DIR_ENTRIES);
    for (n, e) in dir.iter().enumerate() {
        if n >= cap {
            return Err(corrupt(format!("directory with more than {cap} entries")));
        }
        let e = e.map_err(|e| map_io(e, budget))?;
        let short = e.short_file_name_as_bytes();
        if short == b"." || short == b".." {
            continue;
        }
        if each(e) {
            break;
        }
    }
    Ok(())
}

fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// Finds `path`, matching each component case-insensitively (ASCII) against the long name or
/// the short name; an exact match wins over a case-folded one.
fn lookup<'a>(fs: &'a Fat, path: &[u8], budget: &Budget) -> FsResult<Node<'a>> {
    let mut node = Node::Root;
    let mut walked = 0usize;
    for comp in split_path(path) {
        if comp == b"." || comp == b".." || comp.len() > 255 * 4 {
            return Err(FsError::NotFound { path: lossy(path) });
        }
        let dir = match &node {
            Node::Root => fs.root_dir(),
            Node::Entry(e) if e.is_dir() => e.to_dir(),
            Node::Entry(_) => {
                return Err(FsError::NotADirectory {
                    path: lossy(&path[..walked]),
                })
            }
        };
        let mut exact = None;
        let mut folded = None;
        for_each_entry(&dir, budget, |e| {
            let long = e.file_name();
            if long.as_bytes() == comp {
                exact = Some(e);
                return true;
            }
            if folded.is_none()
                && (long.as_bytes().eq_ignore_ascii_case(comp)
                    || e.short_file_name_as_bytes().eq_ignore_ascii_case(comp))
            {
                folded = Some(e);
            }
            false
        })?;
        match exact.or(folded) {
            Some(e) => node = Node::Entry(Box::new(e)),
            None => return Err(FsError::NotFound { path: lossy(path) }),
        }
        walked = path
            .windows(comp.len())
            .position(|w| std::ptr::eq(w.as_ptr(), comp.as_ptr()))
            .map_or(path.len(), |p| p + comp.len());
    }
    Ok(node)
}

/// Seconds since the Unix epoch of a FAT timestamp read as UTC; `None` when out of range.
fn fat_time(t: fatfs::DateTime) -> Option<i64> {
    let (y, m, d) = (
        i64::from(t.date.year),
        i64::from(t.date.month),
        i64::from(t.date.day),
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || t.time.hour > 23 || t.time.min > 59 {
        return None;
    }
    // Days from civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(
        days * 86400
            + i64::from(t.time.hour) * 3600
            + i64::from(t.time.min) * 60
            + i64::from(t.time.sec.min(59)),
    )
}

fn entry_metadata(e: &FatEntry<'_>) -> Metadata {
    let dir = e.is_dir();
    let read_only = e.attributes().contains(fatfs::FileAttributes::READ_ONLY);
    Metadata {
        kind: if dir { FileKind::Dir } else { FileKind::File },
        mode: match (dir, read_only) {
            (true, _) => 0o755,
            (false, true) => 0o444,
            (false, false) => 0o644,
        },
        uid: 0,
        gid: 0,
        size: if dir { 0 } else { e.len() },
        mtime: fat_time(e.modified()),
        inode: None,
    }
}

const ROOT_METADATA: Metadata = Metadata {
    kind: FileKind::Dir,
    mode: 0o755,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: None,
    inode: None,
};

impl FileSystem for FatFs {
    fn fs_type(&self) -> &'static str {
        FS
    }

    fn metadata(&self, path: &[u8]) -> FsResult<Metadata> {
        self.run(OP_BUDGET, |fs, budget| {
            Ok(match lookup(fs, path, budget)? {
                Node::Root => ROOT_METADATA,
                Node::Entry(e) => entry_metadata(&e),
            })
        })
    }

    fn read_dir(&self, path: &[u8]) -> FsResult<Vec<DirEntry>> {
        self.run(OP_BUDGET, |fs, budget| {
            let dir = match lookup(fs, path, budget)? {
                Node::Root => fs.root_dir(),
                Node::Entry(e) if e.is_dir() => e.to_dir(),
                Node::Entry(_) => return Err(FsError::NotADirectory { path: lossy(path) }),
            };
            let mut out = Vec::new();
            for_each_entry(&dir, budget, |e| {
                out.push(DirEntry {
                    name: e.file_name().into_bytes(),
                    kind: if e.is_dir() {
                        FileKind::Dir
                    } else {
                        FileKind::File
                    },
                });
                false
            })?;
            Ok(out)
        })
    }

    fn read_link(&self, path: &[u8]) -> FsResult<Vec<u8>> {
        self.metadata(path)?;
        Err(FsError::NotASymlink { path: lossy(path) })
    }

    fn read_file(&self, path: &[u8], limit: u64) -> FsResult<Vec<u8>> {
        let budget = OP_BUDGET.saturating_add(limit.min(u64::MAX / 2));
        self.run(budget, |fs, budget| {
            let e = file_entry(fs, path, budget)?;
            let size = e.len();
            if size > limit {
                return Err(FsError::TooLarge {
                    path: lossy(path),
                    size,
                    limit,
                });
            }
            read_entry(&e, path, 0, size, budget)
        })
    }

    fn read_range(&self, path: &[u8], offset: u64, len: u64) -> FsResult<Vec<u8>> {
        let len = len.min(crate::api::MAX_RANGE_FALLBACK);
        // Seeking follows the cluster chain through the FAT: budget for that walk too.
        let budget = OP_BUDGET
            .saturating_add(len)
            .saturating_add(offset.min(u64::MAX / 4) / 8);
        self.run(budget, |fs, budget| {
            let e = file_entry(fs, path, budget)?;
            let size = e.len();
            let start = offset.min(size);
            read_entry(&e, path, start, len.min(size - start), budget)
        })
    }
}

/// The regular file at `path`.
fn file_entry<'a>(fs: &'a Fat, path: &[u8], budget: &Budget) -> FsResult<FatEntry<'a>> {
    match lookup(fs, path, budget)? {
        Node::Root => Err(FsError::IsADirectory { path: lossy(path) }),
        Node::Entry(e) if e.is_dir() => Err(FsError::IsADirectory { path: lossy(path) }),
        Node::Entry(e) => Ok(*e),
    }
}

/// `len` bytes of file `e` from `start` (inside the file).
fn read_entry(
    e: &FatEntry<'_>,
    path: &[u8],
    start: u64,
    len: u64,
    budget: &Budget,
) -> FsResult<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| corrupt("file size beyond memory"))?;
    let mut out = vec![0u8; len];
    let mut got = 0;
    let mut file = e.to_file();
    if start > 0 {
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))
            .map_err(|e| map_io(e, budget))?;
    }
    while got < len {
        match file.read(&mut out[got..]) {
            Ok(0) => {
                return Err(corrupt(format!(
                    "{}: cluster chain ends after {} of {} bytes",
                    lossy(path),
                    start + got as u64,
                    start + len as u64
                )))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(map_io(e, budget)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat_time_is_unix_time() {
        let t = fatfs::DateTime {
            date: fatfs::Date {
                year: 2024,
                month: 2,
                day: 29,
            },
            time: fatfs::Time {
                hour: 12,
                min: 34,
                sec: 56,
                millis: 0,
            },
        };
        assert_eq!(fat_time(t), Some(1_709_210_096));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let vol: Volume = Arc::new(vec![0xA5u8; 4096]);
        assert!(matches!(open(vol), Err(FsError::Corrupt { .. })));
        let vol: Volume = Arc::new(vec![0u8; 10]);
        assert!(matches!(open(vol), Err(FsError::Corrupt { .. })));
    }
}
