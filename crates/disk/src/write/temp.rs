//! The hidden temporary files `convert` builds its output in, `.NAME.XXXXXX.vhdprep-tmp` next
//! to the destination `NAME`: their names, the lock that marks one as in use, and the removal
//! of those a killed run left behind.
//!
//! A running `convert` holds an exclusive advisory lock (`flock`) on its temporary file from
//! the moment it creates it until the file is renamed into place or removed. The kernel drops
//! the lock when the process ends, however it ends (SIGKILL included), so a temporary file of
//! the destination that nobody holds locked belongs to no running conversion: [`sweep`] removes
//! it. One that is locked belongs to a conversion to the same destination that is still
//! running: [`sweep`] leaves it alone and refuses to start a second one (see [`sweep`] for why).
//!
//! Only names of exactly the form this module creates are considered, only regular files are
//! removed, symlinks are never followed, and every check is made on the open file and then
//! again on the name just before it is removed (`openat`/`unlinkat` relative to the folder).

use crate::error::{DiskError, Result};
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, Stat};
use rustix::io::Errno;
use std::ffi::{CStr, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The end of every temporary file's name.
const SUFFIX: &str = ".vhdprep-tmp";
/// How many random characters (ASCII letters and digits) sit between `.NAME.` and [`SUFFIX`].
const RANDOM_CHARS: usize = 6;
/// How long [`create_locked`] waits for a lock that another process's [`sweep`] holds for the
/// moment it takes to look at the new file (microseconds), before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// A temporary file that an interrupted `convert` left behind and a later one removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleTemp {
    /// The file that was removed (the destination's folder joined with its name).
    pub path: PathBuf,
    /// The space it held on disk, in bytes (its allocated blocks: what removing it gave back,
    /// less than its length when it was sparse).
    pub bytes_on_disk: u64,
}

/// The folder the destination is in (`.` for a bare file name).
pub(crate) fn folder_of(dst: &Path) -> PathBuf {
    match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The destination's file name as bytes (`out.vhd` when it has none, e.g. `..`: such a
/// destination fails at the rename anyway).
fn dst_name(dst: &Path) -> Vec<u8> {
    dst.file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_else(|| b"out.vhd".to_vec())
}

/// Whether `name` is exactly the name of one of this module's temporary files for a
/// destination named `dst_name`: `.`, the name, `.`, six ASCII letters or digits, [`SUFFIX`].
pub(crate) fn is_temp_name_of(name: &[u8], dst_name: &[u8]) -> bool {
    let Some(rest) = name
        .strip_prefix(b".")
        .and_then(|r| r.strip_prefix(dst_name))
        .and_then(|r| r.strip_prefix(b"."))
        .and_then(|r| r.strip_suffix(SUFFIX.as_bytes()))
    else {
        return false;
    };
    rest.len() == RANDOM_CHARS && rest.iter().all(u8::is_ascii_alphanumeric)
}

/// The error of a conversion that found another one to the same destination running.
fn busy(dst: &Path, what: &str) -> DiskError {
    DiskError::Refused {
        path: dst.to_owned(),
        why: format!(
            "another vhdprep convert to this destination is running ({what}); wait for it to finish, or end it, and run again"
        ),
    }
}

/// The (device, inode) of a stat: what says two names are one file.
fn id(st: &Stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

fn is_regular(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
}

/// The (device, inode) the name `name` in `dir` has now, without following a symlink.
fn id_of_name(dir: impl AsFd, name: impl rustix::path::Arg) -> Option<(u64, u64)> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .ok()
        .map(|st| id(&st))
}

/// Creates the temporary file the output of a conversion to `dst` is built in, in `dst`'s
/// folder (so that the final rename stays on one filesystem), and locks it (see the module
/// documentation). Dropped, it is removed.
///
/// On a filesystem without `flock` the file is used unlocked; [`sweep`] then removes nothing
/// there, since it removes only files it can lock.
pub(crate) fn create_locked(dst: &Path) -> Result<tempfile::NamedTempFile> {
    let mut prefix = OsString::from(".");
    prefix.push(OsStr::from_bytes(&dst_name(dst)));
    prefix.push(".");
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(SUFFIX)
        .rand_bytes(RANDOM_CHARS)
        .tempfile_in(folder_of(dst))
        .map_err(|e| {
            DiskError::io(
                dst,
                "cannot create the temporary file in the destination's folder",
                os_error_only(e),
            )
        })?;
    // Between the creation and the lock, another conversion's sweep may have found the file
    // unlocked, and removed it; it holds the lock while it looks, so wait for it, then check
    // that the name is still this file.
    let waited_out = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match rustix::fs::flock(tmp.as_file(), FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => break,
            Err(Errno::WOULDBLOCK) if std::time::Instant::now() < waited_out => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(Errno::WOULDBLOCK) => {
                discard(tmp);
                return Err(busy(dst, "it holds the lock on a new temporary file"));
            }
            // No locks on this filesystem: used unlocked (see above).
            Err(_) => return Ok(tmp),
        }
    }
    let mine = rustix::fs::fstat(tmp.as_file())
        .map(|st| id(&st))
        .map_err(|e| DiskError::io(dst, "cannot stat the temporary file", e.into()))?;
    if id_of_name(rustix::fs::CWD, tmp.path()) != Some(mine) {
        discard(tmp);
        return Err(busy(
            dst,
            "it started at the same moment and removed this run's temporary file",
        ));
    }
    Ok(tmp)
}

/// Drops a temporary file that may no longer be under its name: removes the name only while
/// it is still this file, so that nothing else of that name is ever removed.
fn discard(tmp: tempfile::NamedTempFile) {
    let mine = rustix::fs::fstat(tmp.as_file()).ok().map(|st| id(&st));
    if mine.is_some() && id_of_name(rustix::fs::CWD, tmp.path()) == mine {
        let _ = tmp.close();
    } else {
        // Disarmed: dropping it removes nothing.
        let _ = tmp.keep();
    }
}

/// Removes the temporary files of the destination `dst` that interrupted conversions left in
/// its folder, calling `removed` for each, and fails if one belongs to a conversion that is
/// still running. `own` is this conversion's temporary file once it has one (locked, never
/// touched).
///
/// A conversion sweeps twice: before it creates its own file, so that on a disk a killed
/// run filled up the space is back before any is needed, and again once its own file is
/// locked, so that of two conversions to one destination started at the same moment (each
/// sweeping before the other's file existed) never both go on: each sees the other's lock,
/// and at least the later one refuses.
///
/// A file is removed only if its name is exactly that of a temporary file of `dst` (not of
/// another destination), it is a regular file (a symlink, a directory or anything else of that
/// name is left alone, and no symlink is followed), and this process can lock it without
/// waiting, which no running conversion allows. The lock is held while the name is checked to
/// still be that file, and then removed. A file that cannot be opened, locked or removed
/// (another user's, a filesystem without locks) is left where it is. Best effort: a folder
/// that cannot be listed is not swept.
///
/// A file locked by another process means another conversion to the same destination is
/// running. This one then refuses to start, rather than build a second copy beside it: two
/// conversions to one destination would take twice the space, and one of them would either
/// fail at the end after all its work (without `--force`: the destination exists by then) or,
/// with `--force`, silently replace the other's output after both reported success.
pub(crate) fn sweep(
    dst: &Path,
    own: Option<&File>,
    removed: &mut dyn FnMut(&StaleTemp),
) -> Result<()> {
    let folder = folder_of(dst);
    let Ok(dir) = rustix::fs::open(
        &folder,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return Ok(());
    };
    let Ok(entries) = rustix::fs::Dir::read_from(&dir) else {
        return Ok(());
    };
    let own = own
        .and_then(|f| rustix::fs::fstat(f).ok())
        .map(|st| id(&st));
    let target = dst_name(dst);
    let mut running = None;
    for entry in entries {
        let Ok(entry) = entry else { break };
        let name = entry.file_name();
        if !is_temp_name_of(name.to_bytes(), &target) {
            continue;
        }
        match judge(&dir, name, own) {
            Verdict::Stale(bytes_on_disk) => removed(&StaleTemp {
                path: folder.join(OsStr::from_bytes(name.to_bytes())),
                bytes_on_disk,
            }),
            Verdict::Running => running = Some(OsString::from_vec(name.to_bytes().to_vec())),
            Verdict::LeftAlone => {}
        }
    }
    match running {
        None => Ok(()),
        Some(name) => Err(busy(
            dst,
            &format!(
                "it holds the lock on its temporary file {}",
                Path::new(&name).display()
            ),
        )),
    }
}

/// What [`judge`] found and did.
enum Verdict {
    /// A stale temporary file, removed; the bytes it held on disk.
    Stale(u64),
    /// Locked by a running conversion.
    Running,
    /// Not ours to remove, gone meanwhile, or not removable: left alone.
    LeftAlone,
}

/// Looks at the entry `name` of `dir` (whose name is a temporary file's) and removes it if it
/// is a stale temporary file; `own` is this conversion's file, never touched.
fn judge(dir: &OwnedFd, name: &CStr, own: Option<(u64, u64)>) -> Verdict {
    let Ok(before) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
        return Verdict::LeftAlone;
    };
    if !is_regular(&before) || Some(id(&before)) == own {
        return Verdict::LeftAlone;
    }
    // Read-write: NFS emulates flock with POSIX locks, which lock exclusively only a file open
    // for writing. NOFOLLOW and NONBLOCK: a symlink or a FIFO put there since the stat is
    // neither followed nor waited on.
    let flags =
        OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let Ok(file) = rustix::fs::openat(dir, name, flags, Mode::empty()) else {
        return Verdict::LeftAlone;
    };
    let Ok(opened) = rustix::fs::fstat(&file) else {
        return Verdict::LeftAlone;
    };
    if !is_regular(&opened) || id(&opened) != id(&before) {
        return Verdict::LeftAlone;
    }
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => return Verdict::Running,
        Err(_) => return Verdict::LeftAlone,
    }
    // Locked: no conversion is using the file. Its name must still be this file (a conversion
    // that just finished has renamed it to the destination, then let go of the lock).
    if id_of_name(dir, name) != Some(id(&opened)) {
        return Verdict::LeftAlone;
    }
    if rustix::fs::unlinkat(dir, name, AtFlags::empty()).is_err() {
        return Verdict::LeftAlone;
    }
    // st_blocks counts 512-byte units whatever the filesystem's block size.
    Verdict::Stale((opened.st_blocks as u64).saturating_mul(512))
}

/// The operating system's error without the random name tempfile appends to its text
/// (` at path "..."`: a file that never existed, which would only confuse the message).
/// tempfile's wrapper hides the error code (which is what says "disk full"), but keeps its
/// text, `... (os error N)`: the code is taken back from there.
fn os_error_only(e: std::io::Error) -> std::io::Error {
    if e.raw_os_error().is_some() {
        return e;
    }
    let text = e.to_string();
    let code = text.rfind("(os error ").and_then(|at| {
        let digits = &text[at + "(os error ".len()..];
        digits[..digits.find(')')?].parse::<i32>().ok()
    });
    if let Some(code) = code {
        return std::io::Error::from_raw_os_error(code);
    }
    match text.find(" at path \"") {
        Some(cut) => std::io::Error::new(e.kind(), &text[..cut]),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_temp_names_of_the_destination_match() {
        let d = b"out.vhd";
        assert!(is_temp_name_of(b".out.vhd.Ab12Cd.vhdprep-tmp", d));
        for other in [
            &b".out.vhd.Ab12C.vhdprep-tmp"[..], // five random characters
            b".out.vhd.Ab12Cde.vhdprep-tmp",    // seven
            b".out.vhd.Ab-2Cd.vhdprep-tmp",     // not a letter or digit
            b".out.vhd.Ab12Cd.vhdprep-tmp.x",   // something after
            b"out.vhd.Ab12Cd.vhdprep-tmp",      // not hidden
            b".out.vhdx.Ab12Cd.vhdprep-tmp",    // another destination
            b".ut.vhd.Ab12Cd.vhdprep-tmp",      // another destination
            b".out.vhd.x.Ab12Cd.vhdprep-tmp",   // a temp of `out.vhd.x`
            b".out.vhd.Ab12Cd.vhdprep-tmp.Qw34Er.vhdprep-tmp",
            b".out.vhd",
            b"",
        ] {
            assert!(
                !is_temp_name_of(other, d),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        // The name of a temp of destination `out.vhd.Ab12Cd.vhdprep-tmp` is not one of `out.vhd`.
        assert!(!is_temp_name_of(
            b".out.vhd.Ab12Cd.vhdprep-tmp.Qw34Er.vhdprep-tmp",
            b"out.vhd"
        ));
    }

    #[test]
    fn the_files_created_have_names_the_sweep_recognises() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            &b"out.vhd"[..],
            b"a b.vhd",
            "\u{fc}n\u{ef}.vhd".as_bytes(),
            b"\xff.vhd",
        ] {
            let dst = dir.path().join(OsStr::from_bytes(name));
            let tmp = create_locked(&dst).unwrap();
            let file_name = tmp.path().file_name().unwrap().as_bytes().to_vec();
            assert!(
                is_temp_name_of(&file_name, name),
                "{}",
                tmp.path().display()
            );
        }
    }

    /// The sweep in one process: flock locks belong to an open file, so a file this process
    /// holds locked through another descriptor is as locked to the sweep as another
    /// process's. (tests/writer_faults_fs.rs does the same with real processes.)
    #[test]
    fn the_sweep_removes_only_unlocked_regular_files_of_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let at = |n: &str| dir.path().join(n);
        let dst = at("out.vhd");
        let stale = at(".out.vhd.Ab12Cd.vhdprep-tmp");
        std::fs::write(&stale, vec![7u8; 64 << 10]).unwrap();
        let outside = at("precious");
        std::fs::write(&outside, b"keep me").unwrap();
        std::os::unix::fs::symlink(&outside, at(".out.vhd.Sym123.vhdprep-tmp")).unwrap();
        std::fs::create_dir(at(".out.vhd.Dir123.vhdprep-tmp")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            at(".out.vhd.Fifo12.vhdprep-tmp"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let near_misses = [
            ".out.vhd.Ab12C.vhdprep-tmp",
            ".other.vhd.Ab12Cd.vhdprep-tmp",
            "out.vhd.Ab12Cd.vhdprep-tmp",
        ];
        for n in near_misses {
            std::fs::write(at(n), b"x").unwrap();
        }
        // A conversion that is running (its file locked), and this one.
        let (running, running_path) = create_locked(&dst).unwrap().keep().unwrap();
        let own = create_locked(&dst).unwrap();
        let mut removed = Vec::new();
        let err = sweep(&dst, Some(own.as_file()), &mut |s| removed.push(s.clone())).unwrap_err();
        let running_name = running_path.file_name().unwrap().to_str().unwrap();
        let text = err.to_string();
        assert!(
            text.contains("another vhdprep convert to this destination is running"),
            "{text}"
        );
        assert!(text.contains(running_name), "{text}");
        // The stale file went anyway, with the space it held.
        assert_eq!(removed.len(), 1, "{removed:?}");
        assert_eq!(removed[0].path, stale);
        assert!(removed[0].bytes_on_disk >= 64 << 10, "{removed:?}");
        assert!(!stale.exists());
        // Everything else is where it was.
        assert!(running_path.exists() && own.path().exists());
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep me");
        for n in [
            ".out.vhd.Sym123.vhdprep-tmp",
            ".out.vhd.Dir123.vhdprep-tmp",
            ".out.vhd.Fifo12.vhdprep-tmp",
        ]
        .into_iter()
        .chain(near_misses)
        {
            assert!(at(n).symlink_metadata().is_ok(), "{n} was removed");
        }
        // Once the running one ends without cleaning up (killed), its file is stale.
        drop(running);
        removed.clear();
        sweep(&dst, Some(own.as_file()), &mut |s| removed.push(s.clone())).unwrap();
        assert_eq!(
            removed.iter().map(|s| &s.path).collect::<Vec<_>>(),
            [&running_path]
        );
        assert!(!running_path.exists() && own.path().exists());
    }
}
