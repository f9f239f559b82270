//! `convert`: any readable image in, a fixed VHD out, virtual size rounded up to a whole MiB.
//!
//! The output is built under a temporary name in the destination's folder (sparse: holes where
//! the source is zero or unallocated), flushed, then renamed over the destination. A failure or
//! a kill at any point leaves the destination absent (or, with `force`, the old destination
//! untouched), never half written. The temporary file is locked while the conversion runs; a
//! conversion first removes the unlocked ones a killed run left for the same destination, and
//! refuses to start while another conversion to it is running (see [`super::temp`]). The source is only read; if another process changes its
//! length or writes to it during the copy, the conversion fails instead of renaming a copy
//! that is neither the old nor the new content.

use super::copy::{copy_sparse, CopyError, CopyStats};
use super::table::{self, TablePlanner, TableUpdate};
use super::temp::{self, StaleTemp};
use super::{fault, sync_parent_dir, Stamp};
use crate::error::{DiskError, Result};
use crate::image::DiskImage;
use crate::vhd::{Footer, FOOTER_SIZE};
use crate::Format;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

/// Options of [`convert`].
pub struct ConvertOptions<'a> {
    /// Replace an existing destination.
    pub force: bool,
    /// Creator application code for the footer (default `vhdp`).
    pub creator_app: [u8; 4],
    /// Called with (bytes done, bytes total) as the copy goes.
    pub progress: Option<&'a mut dyn FnMut(u64, u64)>,
    /// Called for each temporary file of the destination that an interrupted conversion left
    /// behind and this one removed, as it removes it (before the copy starts, so also when the
    /// conversion then fails). The library never prints; a command line says what was removed.
    pub on_stale_removed: Option<&'a mut dyn FnMut(&StaleTemp)>,
    /// Fits the partition table to the padded disk (`vhdprep_partition::gpt::GptRelocator`
    /// moves the backup GPT to the new end). `None`: the table is copied as it is.
    pub table: Option<&'a dyn TablePlanner>,
}

impl Default for ConvertOptions<'_> {
    fn default() -> Self {
        ConvertOptions {
            force: false,
            creator_app: crate::vhd::footer::VHDPREP_CREATOR,
            progress: None,
            on_stale_removed: None,
            table: None,
        }
    }
}

/// What [`convert`] did.
#[derive(Debug, Clone)]
pub struct ConvertReport {
    /// Format of the source.
    pub source_format: Format,
    /// Size of the source's virtual disk.
    pub source_size: u64,
    /// Virtual size of the output (a whole MiB).
    pub virtual_size: u64,
    /// Bytes read and written.
    pub stats: CopyStats,
    /// The footer written.
    pub footer: Footer,
    /// What was changed in the partition table (empty when nothing was).
    pub table_changes: Vec<String>,
    /// What the partition table planner left alone, and why.
    pub table_notes: Vec<String>,
}

/// Converts `src` to a fixed VHD at `dst`.
///
/// Errors name the file at fault: the source for a failed read or a source that another
/// process changed during the copy, the destination for a failed write (a full disk, a
/// read-only place, a folder that disappeared). In every error case the temporary file is
/// removed and the destination is left as it was.
///
/// Before the copy, the temporary files of `dst` that interrupted conversions left in its
/// folder are removed (each reported to `opts.on_stale_removed`), and the conversion is
/// refused, naming `dst`, if another conversion to `dst` is running.
pub fn convert(src: &DiskImage, dst: &Path, mut opts: ConvertOptions<'_>) -> Result<ConvertReport> {
    let disk = src.disk().map_err(|e| DiskError::Refused {
        path: src.path().to_owned(),
        why: format!("cannot convert: {}", e.detail()),
    })?;
    let source_size = disk.len();
    if source_size == 0 {
        return Err(DiskError::Refused {
            path: src.path().to_owned(),
            why: "the virtual disk is empty; nothing to convert".into(),
        });
    }
    refuse_same_file(src.path(), dst)?;
    if !opts.force && dst.symlink_metadata().is_ok() {
        return Err(DiskError::Refused {
            path: dst.to_owned(),
            why: "already exists; pass --force to replace it".into(),
        });
    }
    let watch = SourceWatch::start(src)?;
    let (virtual_size, update) = table::grow(disk.as_ref(), opts.table, src.path())?;
    let mut ignore = |_: &StaleTemp| {};
    let on_stale: &mut dyn FnMut(&StaleTemp) = match opts.on_stale_removed.as_mut() {
        Some(f) => *f,
        None => &mut ignore,
    };
    // What killed runs left goes first (its space may be what this run needs); the second
    // sweep catches a conversion to `dst` that started at the same moment.
    temp::sweep(dst, None, on_stale)?;
    let tmp = temp::create_locked(dst)?;
    if let Err(e) = temp::sweep(dst, Some(tmp.as_file()), on_stale) {
        return Err(remove_temp(tmp, e));
    }
    let mut noop = |_: u64, _: u64| {};
    let progress: &mut dyn FnMut(u64, u64) = match opts.progress.as_mut() {
        Some(p) => *p,
        None => &mut noop,
    };
    let built = build(
        disk.as_ref(),
        tmp.as_file(),
        virtual_size,
        &update,
        opts.creator_app,
        progress,
        &watch,
        dst,
    );
    let (stats, footer) = match built {
        Ok(done) => done,
        Err(e) => return Err(remove_temp(tmp, e)),
    };
    let persisted = if opts.force {
        tmp.persist(dst).map_err(|e| e.error)
    } else {
        tmp.persist_noclobber(dst).map_err(|e| e.error)
    };
    // (A failed persist hands the temporary file back inside the error; dropping it here
    // removes it.)
    persisted.map_err(|e| {
        DiskError::io(
            dst,
            "cannot put the finished disk in place (rename of the temporary file)",
            e,
        )
    })?;
    sync_parent_dir(dst);
    fault::step("renamed");
    Ok(ConvertReport {
        source_format: src.format(),
        source_size,
        virtual_size,
        stats,
        footer,
        table_changes: update.changes,
        table_notes: update.notes,
    })
}

/// Writes the whole converted disk into the temporary file `out`: sized, data copied, footer
/// written, flushed; then checks that the source did not change meanwhile.
#[allow(clippy::too_many_arguments)]
fn build(
    disk: &dyn crate::read_at::ReadAt,
    out: &std::fs::File,
    virtual_size: u64,
    update: &TableUpdate,
    creator_app: [u8; 4],
    progress: &mut dyn FnMut(u64, u64),
    watch: &SourceWatch<'_>,
    dst: &Path,
) -> Result<(CopyStats, Footer)> {
    let write_err = |op: &'static str| move |e| DiskError::io(dst, op, e);
    out.set_len(virtual_size + FOOTER_SIZE as u64)
        .map_err(write_err("cannot size the converted disk"))?;
    fault::step("sized output");
    let stats = copy_data(disk, out, progress, watch, dst)?;
    // The moved partition-table structures, into the output only (the source is never
    // written); all before the footer and the flush that precede the rename.
    for w in update.writes() {
        out.write_all_at(&w.bytes, w.offset).map_err(write_err(
            "cannot write the partition table of the converted disk",
        ))?;
    }
    let mut footer = Footer::new_fixed(virtual_size);
    footer.creator_app = creator_app;
    out.write_all_at(&footer.to_bytes(), virtual_size)
        .map_err(write_err("cannot write the footer of the converted disk"))?;
    out.sync_all()
        .map_err(write_err("cannot flush the converted disk"))?;
    fault::step("footer written and flushed");
    // The copy is only the source's content if nothing changed the source meanwhile.
    watch.check()?;
    Ok((stats, footer))
}

/// Removes the temporary file after `error`, giving its space back, and returns `error`; if
/// the file cannot be removed, the error says so and names it (the user must delete it).
fn remove_temp(tmp: tempfile::NamedTempFile, error: DiskError) -> DiskError {
    let name = tmp.path().to_owned();
    match tmp.close() {
        Ok(()) => error,
        Err(e) => DiskError::Refused {
            path: name,
            why: format!(
                "could not be removed after the conversion failed ({}); delete it by hand. The failure: {error}",
                crate::error::reason(&e)
            ),
        },
    }
}

/// The copy of the source's disk into the output, with errors naming the side at fault: a
/// failed write names the destination, a failed read the source (and says so when the source
/// shrank, since that is why reads end early).
fn copy_data(
    disk: &dyn crate::read_at::ReadAt,
    out: &std::fs::File,
    progress: &mut dyn FnMut(u64, u64),
    watch: &SourceWatch<'_>,
    dst: &Path,
) -> Result<CopyStats> {
    match copy_sparse(disk, out, progress) {
        Ok(stats) => Ok(stats),
        Err(CopyError::Write { offset, source }) => Err(DiskError::IoAt {
            path: dst.to_owned(),
            op: "cannot write the converted disk",
            offset,
            source,
        }),
        Err(CopyError::Read { offset, source }) => {
            watch.check()?;
            Err(DiskError::IoAt {
                path: watch.image.path().to_owned(),
                op: "cannot read",
                offset,
                source,
            })
        }
        Err(CopyError::Panicked { what }) => Err(DiskError::Corrupt {
            path: watch.image.path().to_owned(),
            what: format!("internal error: the reader thread of the copy panicked: {what}"),
        }),
    }
}

/// Notices another process changing the source during a conversion: its length and
/// modification time when the copy starts, compared with what they are when it ends. The
/// length is also checked against the one the image was opened with, since everything read
/// (footer, block table) was sized by it.
struct SourceWatch<'a> {
    image: &'a DiskImage,
    start: Option<Stamp>,
}

impl<'a> SourceWatch<'a> {
    fn start(image: &'a DiskImage) -> Result<Self> {
        let start = stamp_of(image)?.map(|s| Stamp {
            len: image.file_size(),
            ..s
        });
        let watch = SourceWatch { image, start };
        watch.check()?;
        Ok(watch)
    }

    /// Fails, naming the source and what changed, if it is not as it was at the start.
    fn check(&self) -> Result<()> {
        let Some(start) = &self.start else {
            return Ok(());
        };
        let now = stamp_of(self.image)?;
        let change = match now {
            Some(now) => start.change(&now),
            None => Some("it is no longer a regular file".into()),
        };
        match change {
            None => Ok(()),
            Some(what) => Err(DiskError::Refused {
                path: self.image.path().to_owned(),
                why: format!(
                    "changed while it was being converted ({what}); no destination was written: run convert again once nothing else writes to it"
                ),
            }),
        }
    }
}

/// The stamp of the image's file, as it is now.
fn stamp_of(image: &DiskImage) -> Result<Option<Stamp>> {
    Stamp::of_path(image.path()).map_err(|e| DiskError::io(image.path(), "cannot stat", e))
}

fn refuse_same_file(src: &Path, dst: &Path) -> Result<()> {
    let (Ok(a), Ok(b)) = (std::fs::metadata(src), std::fs::metadata(dst)) else {
        return Ok(());
    };
    if a.dev() == b.dev() && a.ino() == b.ino() {
        return Err(DiskError::Refused {
            path: dst.to_owned(),
            why: "is the source itself; use `vhdprep fix --in-place` to change a file in place"
                .into(),
        });
    }
    Ok(())
}
