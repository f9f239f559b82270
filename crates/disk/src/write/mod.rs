//! The writers: `convert` (copy into a new fixed VHD) and `fix` (in place, crash-safe).
//! Neither ever writes to a source it was not asked to change.

mod convert;
mod copy;
pub mod fault;
mod fix;

pub use convert::{convert, ConvertOptions, ConvertReport};
pub use copy::{is_zero, CopyStats, CHUNK};
pub use fix::{apply_fix, plan_fix, FixPlan, FixStep};

use std::path::Path;

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
