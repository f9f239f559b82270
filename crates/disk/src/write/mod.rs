//! The writers: `convert` (copy into a new fixed VHD) and `fix` (in place, crash-safe).
//! Neither ever writes to a source it was not asked to change.
//!
//! # Guarantees under faults
//!
//! What holds when the disk fills up (ENOSPC or EDQUOT at any write or at the final fsync,
//! EFBIG under a file-size limit), a device fails (EIO on a read of the source or a write of
//! the destination), the destination is read-only or its folder disappears, the process is
//! killed at any moment (SIGKILL, SIGXFSZ, power loss after a flushed step), or another
//! process changes the file being read or fixed. `tests/writer_faults.rs`,
//! `tests/writer_faults_fs.rs` and `tests/kill.rs` check each of these on real processes:
//! full tmpfs, ext4 and XFS mounts (loop devices), and a FUSE filesystem that injects EIO and
//! a late ENOSPC (`tests/faultfs.py`).
//!
//! - **Every run ends.** The copy under `convert` is a reader thread and a writer that follow
//!   the rules of [`crate::pipeline`]: whichever side fails first, the other stops at once
//!   (the writer owns every channel end the reader can wait on) and the first error is the
//!   one reported. A full disk or a failing device makes `convert` return an error, never
//!   wait forever (issue 17: a 100 MiB source onto a 64 MiB ext4 used to hang with both
//!   threads waiting on each other).
//! - **`convert`** only reads the source (a moved backup GPT and the rewritten primary header
//!   go into the output, before its flush). The output is built in a hidden temporary file next
//!   to the destination, flushed, then renamed into place: the destination is either absent
//!   (with `--force`: the old one, untouched) or a complete, flushed VHD. On an error the
//!   temporary file is removed, so the space it took is given back; if it cannot be removed
//!   the error names it. Only a kill or a power loss can leave one behind
//!   (`.NAME.XXXXXX.vhdprep-tmp`): the next `convert` to the same destination removes it.
//!   A running `convert` holds an exclusive `flock` on its temporary file, which the kernel
//!   drops however the process ends; before the copy, `convert` removes each temporary file
//!   of its destination (exactly that name pattern, a regular file, no symlink followed) that
//!   it can lock without waiting, reporting each to
//!   [`ConvertOptions::on_stale_removed`](convert::ConvertOptions::on_stale_removed), and
//!   refuses to start while one is locked: another conversion to the same destination is
//!   running, and two would take twice the space and race for the rename. Where `flock` is
//!   missing nothing is removed; where locks are not shared between machines (some NFS and
//!   SMB mounts) a run on another machine is not seen. `tests/writer_faults_fs.rs` kills a
//!   conversion on ext4 and checks that the re-run gives the space back, and stops one to
//!   check that a second leaves it alone.
//!   The source's length and modification time are taken when the copy starts and compared
//!   before the rename: a source that shrank, grew or was written to fails the conversion
//!   (a shrink can otherwise read as a trailing hole, i.e. zeros where the data was).
//! - **`fix --in-place`** orders its steps so the file reads as the old image until a
//!   single-sector (or single `ftruncate`) commit, and as the new one after it; each step is
//!   flushed. A GPT disk that grows adds one write after the commit, pointing the primary
//!   header at the backup GPT moved to the new end: until it, the file is the new container
//!   with the old, intact backup in use (the kernel reads it; `sgdisk -v` counts one problem;
//!   a re-run finishes it). See the crash-safety section of `fix.rs` for why that window
//!   cannot be closed. A step that fails (full disk) before the commit stops the fix with the
//!   file reading as the old image; the blocks the steps will write are reserved
//!   (`fallocate`) before the first one, so where writes in place need no new space (tmpfs,
//!   ext4, XFS: not btrfs) a full disk fails before anything is written, the file byte for
//!   byte as it was. A flush that fails after the commit's write leaves the file reading as
//!   the new image (not yet known to be durable) and the fix reports the failure; running it
//!   again completes it. Before each step the file's length and modification time must be
//!   what vhdprep's last step left, and after the last step the file must be `V + 512` bytes
//!   ending in the new footer, with the partition-table writes in place; otherwise the fix
//!   stops with an error, never reporting success on a file someone else changed.
//!   What cannot be seen: a change by another process in the microseconds between that check
//!   and the next write, or one that leaves length and timestamp alone. Advisory locks would
//!   not help (`truncate` and most writers ignore them): do not fix an image another program
//!   is writing.
//! - **Errors** are one line naming the file at fault (the source for a failed read or a
//!   change underneath, the destination for a failed write), the disk offset where a copy
//!   failed, and the cause in plain words before the system's own text ([`crate::reason`]):
//!   `out.vhd: cannot write the converted disk (disk offset 54525952): the disk holding it is
//!   full (No space left on device, os error 28)`; likewise "the device holding it reported
//!   an I/O error" for EIO and the file-size limit for EFBIG. The command exits 2.

mod convert;
mod copy;
pub mod fault;
mod fix;
pub mod table;
mod temp;

pub use convert::{convert, ConvertOptions, ConvertReport};
pub use copy::{copy_sparse, is_zero, CopyError, CopyStats, CHUNK};
pub use fix::{apply_fix, plan_fix, FixPlan, FixStep};
pub use table::{TablePlanner, TableUpdate, TableWrite};
pub use temp::StaleTemp;

use std::fs::File;
use std::path::Path;

/// What the writers remember of a file to notice another process changing it: its length and
/// modification time. Only regular files have one (a block device reports neither).
///
/// The modification time catches a same-length rewrite only as finely as the filesystem's
/// timestamps go (nanoseconds on ext4, XFS, btrfs and tmpfs; 2 s on FAT); a length change is
/// always seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Length in bytes.
    pub len: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, i64),
}

impl Stamp {
    /// The stamp of an open file, or `None` when it is not a regular file.
    pub fn of(file: &File) -> std::io::Result<Option<Stamp>> {
        Ok(Stamp::from_metadata(&file.metadata()?))
    }

    /// The stamp of the file at `path` (through symlinks, as opening it would).
    pub fn of_path(path: &std::path::Path) -> std::io::Result<Option<Stamp>> {
        Ok(Stamp::from_metadata(&std::fs::metadata(path)?))
    }

    fn from_metadata(m: &std::fs::Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        m.is_file().then(|| Stamp {
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        })
    }

    /// How `now` differs from `self`, in words, or `None` when it does not.
    pub fn change(&self, now: &Stamp) -> Option<String> {
        if now.len != self.len {
            Some(format!(
                "its length went from {} to {} bytes",
                self.len, now.len
            ))
        } else if now.mtime != self.mtime {
            Some(format!(
                "it was written to (same length, {} bytes)",
                now.len
            ))
        } else {
            None
        }
    }
}

/// Flushes the directory holding `path`, so that a rename in it survives a power loss.
/// Best effort: some filesystems refuse to open directories for this.
pub(crate) fn sync_parent_dir(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
