//! The partition table's share of growing a disk.
//!
//! The writers pad a disk to a whole MiB. A partition table with structures at the end of the
//! disk (the backup GPT) must then move them to the new end, or the output has its backup GPT
//! in the middle of the disk (`sgdisk -v`: "The secondary header's self-pointer indicates that
//! it doesn't reside at the end of the disk"). This crate knows containers, not partition
//! tables, and the partition crate depends on it; so the writers take a [`TablePlanner`] from
//! the layer above (`vhdprep_partition::gpt::GptRelocator`) and only carry out its
//! [`TableUpdate`], in an order that keeps `fix --in-place` crash-safe:
//!
//! - [`TableUpdate::stage`]: new structures that nothing points at yet (the new backup entry
//!   array and header). They are written before the container commit, outside the old disk, so
//!   the old reading does not change.
//! - [`TableUpdate::repoint`]: single writes, after the container commit, that make the table
//!   use them (the primary GPT header, with the protective MBR when both fit in one write).
//!
//! `grow` picks the new size: the next whole MiB, or one more when the new structures would
//! otherwise overlap the end of the old disk (where the old backup GPT lies, which must stay
//! whole until the primary header points away from it).

use crate::error::{DiskError, Result};
use crate::read_at::ReadAt;
use crate::{round_up_to_mib, MIB};
use std::path::Path;

/// Bytes to write at an offset of the virtual disk (a file offset in a fixed VHD or raw file).
#[derive(Clone, PartialEq, Eq)]
pub struct TableWrite {
    /// Offset on the virtual disk; a multiple of the table's sector size.
    pub offset: u64,
    /// The new bytes.
    pub bytes: Vec<u8>,
    /// For a [`TableUpdate::repoint`] write: the bytes it replaces, as read when planning (the
    /// writers refuse to overwrite anything else). Empty for staged writes.
    pub old: Vec<u8>,
    /// What it is, for plans and reports (e.g. "the new backup GPT header (LBA 2428927)").
    pub what: String,
}

impl std::fmt::Debug for TableWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWrite")
            .field("offset", &self.offset)
            .field("len", &self.bytes.len())
            .field("what", &self.what)
            .finish()
    }
}

impl TableWrite {
    /// The end offset (exclusive).
    pub fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }
}

/// What a partition table needs written when its disk grows, and what was noticed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableUpdate {
    /// New structures nothing points at yet, written first (before the container commit).
    pub stage: Vec<TableWrite>,
    /// Writes that make the table use them, in order, each one `pwrite` of at most one page,
    /// written after the container commit.
    pub repoint: Vec<TableWrite>,
    /// What the writes change, in words (e.g. "GPT: the backup moves from LBA 2427903 to the
    /// new last LBA 2428927 ..."); empty when nothing is written.
    pub changes: Vec<String>,
    /// What the user should know besides: a table left alone and why (one that cannot be read
    /// strictly is never changed), a damaged backup rebuilt from the primary.
    pub notes: Vec<String>,
}

impl TableUpdate {
    /// True when nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.stage.is_empty() && self.repoint.is_empty()
    }

    /// Every write, staged ones first.
    pub fn writes(&self) -> impl Iterator<Item = &TableWrite> {
        self.stage.iter().chain(self.repoint.iter())
    }

    /// Drops the writes, keeping the notes and adding `why`.
    fn abandon(&mut self, why: String) {
        self.stage.clear();
        self.repoint.clear();
        self.changes.clear();
        self.notes.clear();
        self.notes.push(why);
    }
}

/// Works out a partition table's [`TableUpdate`] for a grown disk: implemented by the partition
/// layer (`vhdprep_partition::gpt::GptRelocator` for GPT), passed to [`convert`](super::convert)
/// and [`plan_fix`](super::plan_fix).
pub trait TablePlanner {
    /// The update that fits the table of `disk` (the old virtual disk) to a disk of `new_size`
    /// bytes: `disk` padded with zeros. `new_size` is a whole MiB, at least `disk.len()`.
    /// Only a failed read is an error; a table that should not be changed is an empty update
    /// with a note saying why.
    fn plan(&self, disk: &dyn ReadAt, new_size: u64) -> std::io::Result<TableUpdate>;
}

/// The padded size of a disk of `old_size` bytes and the table update for it.
///
/// The size is the next whole MiB, or one more MiB when the update's staged writes would start
/// inside the old disk (a disk ending less than one backup GPT short of a MiB boundary): in
/// place, the old backup GPT must stay whole until the primary header points at the new one.
/// Staged writes inside the old disk happen only when the disk does not grow (its backup GPT
/// is not at its end); they may only replace zeros or the same bytes, otherwise the table is
/// left alone with a note.
pub(crate) fn grow(
    disk: &dyn ReadAt,
    planner: Option<&dyn TablePlanner>,
    path: &Path,
) -> Result<(u64, TableUpdate)> {
    let old_size = disk.len();
    let mut new_size = round_up_to_mib(old_size);
    let Some(planner) = planner else {
        return Ok((new_size, TableUpdate::default()));
    };
    let plan = |size: u64| {
        planner
            .plan(disk, size)
            .map_err(|e| DiskError::io(path, "cannot read the partition table", e))
    };
    let mut update = plan(new_size)?;
    let lowest = |u: &TableUpdate| u.stage.iter().map(|w| w.offset).min();
    if new_size > old_size {
        if let Some(low) = lowest(&update).filter(|&low| low < old_size) {
            new_size = round_up_to_mib(old_size + (new_size - low));
            update = plan(new_size)?;
            if let Some(low) = lowest(&update).filter(|&low| low < old_size) {
                update.abandon(format!(
                    "the partition table was left as it is: its new structures (from byte {low}) would overlap the old disk ({old_size} bytes)"
                ));
            }
        }
    }
    if let Some(why) = unsafe_inside(disk, &update, path)? {
        update.abandon(why);
    }
    debug_assert!(new_size % MIB == 0);
    Ok((new_size, update))
}

/// Why the staged writes may not go where they would, if they may not: inside the old disk, a
/// staged write may only replace sectors of zeros or sectors equal to its own.
fn unsafe_inside(disk: &dyn ReadAt, update: &TableUpdate, path: &Path) -> Result<Option<String>> {
    let len = disk.len();
    for w in &update.stage {
        if w.offset >= len {
            continue;
        }
        let n = (w.end().min(len) - w.offset) as usize;
        let mut now = vec![0u8; n];
        disk.read_exact_at(&mut now, w.offset)
            .map_err(|e| DiskError::io(path, "cannot read", e))?;
        // Sector by sector: zeros, or what this write puts there (a killed earlier run).
        let fine = now
            .chunks(512)
            .zip(w.bytes[..n].chunks(512))
            .all(|(now, new)| now == new || now.iter().all(|&b| b == 0));
        if fine {
            continue;
        }
        return Ok(Some(format!(
            "the partition table was left as it is: {} would go to bytes {}..{} of the disk, which hold other data",
            w.what,
            w.offset,
            w.offset + n as u64
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A planner that puts a 33-sector "backup" at the end of the new disk, like a GPT.
    struct Tail;

    impl TablePlanner for Tail {
        fn plan(&self, _disk: &dyn ReadAt, new_size: u64) -> std::io::Result<TableUpdate> {
            Ok(TableUpdate {
                stage: vec![TableWrite {
                    offset: new_size - 33 * 512,
                    bytes: vec![0xab; 33 * 512],
                    old: Vec::new(),
                    what: "the tail".into(),
                }],
                changes: vec!["moved".into()],
                ..TableUpdate::default()
            })
        }
    }

    fn grown(disk: &[u8], planner: Option<&dyn TablePlanner>) -> (u64, TableUpdate) {
        grow(&disk.to_vec(), planner, Path::new("d")).unwrap()
    }

    #[test]
    fn pads_to_the_next_mib_and_one_more_when_the_tail_would_overlap_the_old_disk() {
        // Without a planner: the next MiB, nothing else.
        let (size, u) = grown(&vec![1u8; 3 * 512], None);
        assert_eq!((size, u), (MIB, TableUpdate::default()));
        // 40 sectors short of a MiB: the 33-sector tail fits after the old end.
        let (size, u) = grown(&vec![1u8; (MIB - 40 * 512) as usize], Some(&Tail));
        assert_eq!(size, MIB);
        assert_eq!(u.stage[0].offset, MIB - 33 * 512);
        // 32 sectors short: it would overlap, so one more MiB.
        let (size, u) = grown(&vec![1u8; (MIB - 32 * 512) as usize], Some(&Tail));
        assert_eq!(size, 2 * MIB);
        assert_eq!(u.stage[0].offset, 2 * MIB - 33 * 512);
        assert!(u.notes.is_empty());
    }

    #[test]
    fn inside_a_disk_that_does_not_grow_the_tail_only_replaces_zeros_or_itself() {
        let mut disk = vec![0u8; MIB as usize];
        let (size, u) = grown(&disk, Some(&Tail));
        assert_eq!((size, u.stage.len()), (MIB, 1));
        disk[(MIB - 512) as usize..].fill(0xab);
        let (_, u) = grown(&disk, Some(&Tail));
        assert_eq!(u.stage.len(), 1, "its own bytes may be rewritten");
        disk[(MIB - 600) as usize] = 7;
        let (size, u) = grown(&disk, Some(&Tail));
        assert_eq!(size, MIB);
        assert!(u.is_empty() && u.changes.is_empty());
        assert!(u.notes[0].contains("hold other data"), "{:?}", u.notes);
    }
}
