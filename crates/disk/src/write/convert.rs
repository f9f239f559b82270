//! `convert`: any readable image in, a fixed VHD out, virtual size rounded up to a whole MiB.
//!
//! The output is built under a temporary name in the destination's folder (sparse: holes where
//! the source is zero or unallocated), flushed, then renamed over the destination. A failure or
//! a kill at any point leaves the destination absent (or, with `force`, the old destination
//! untouched), never half written. The source is only read.

use super::copy::{copy_sparse, CopyStats};
use super::{fault, sync_parent_dir};
use crate::error::{DiskError, Result};
use crate::image::DiskImage;
use crate::vhd::{Footer, FOOTER_SIZE};
use crate::{round_up_to_mib, Format};
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
}

impl Default for ConvertOptions<'_> {
    fn default() -> Self {
        ConvertOptions {
            force: false,
            creator_app: crate::vhd::footer::VHDPREP_CREATOR,
            progress: None,
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
}

/// Converts `src` to a fixed VHD at `dst`.
pub fn convert(src: &DiskImage, dst: &Path, mut opts: ConvertOptions<'_>) -> Result<ConvertReport> {
    let disk = src.disk().map_err(|e| DiskError::Refused {
        path: src.path().to_owned(),
        why: format!("cannot convert: {e}"),
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
    let virtual_size = round_up_to_mib(source_size);
    let dir = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out.vhd".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".vhdprep-tmp")
        .tempfile_in(&dir)
        .map_err(|e| DiskError::io(&dir, "cannot create a temporary file in", e))?;
    let tmp_path = tmp.path().to_owned();
    let io_err = |op: &'static str| {
        let p = tmp_path.clone();
        move |e| DiskError::io(p, op, e)
    };
    let file = tmp.as_file();
    file.set_len(virtual_size + FOOTER_SIZE as u64)
        .map_err(io_err("cannot size the output"))?;
    fault::step("sized output");
    let mut noop = |_: u64, _: u64| {};
    let progress: &mut dyn FnMut(u64, u64) = match opts.progress.as_mut() {
        Some(p) => *p,
        None => &mut noop,
    };
    let stats =
        copy_sparse(disk.as_ref(), file, progress).map_err(io_err("cannot copy data into"))?;
    let mut footer = Footer::new_fixed(virtual_size);
    footer.creator_app = opts.creator_app;
    file.write_all_at(&footer.to_bytes(), virtual_size)
        .map_err(io_err("cannot write the footer of"))?;
    file.sync_all().map_err(io_err("cannot flush"))?;
    fault::step("footer written and flushed");
    let persisted = if opts.force {
        tmp.persist(dst).map_err(|e| e.error)
    } else {
        tmp.persist_noclobber(dst).map_err(|e| e.error)
    };
    persisted.map_err(|e| DiskError::io(dst, "cannot rename the finished output to", e))?;
    sync_parent_dir(dst);
    fault::step("renamed");
    Ok(ConvertReport {
        source_format: src.format(),
        source_size,
        virtual_size,
        stats,
        footer,
    })
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
