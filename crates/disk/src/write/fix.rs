//! `fix --in-place`: make a file a valid fixed VHD with a whole-MiB virtual size, without
//! copying its data.
//!
//! Handles a raw image (append a footer, growing the file to the MiB boundary as a hole), a
//! fixed VHD with an unaligned size (realign), and a fixed VHD with a bad checksum or
//! inconsistent footer fields (rewrite the footer). Dynamic and differencing disks need their
//! data moved: use `convert`. With a [`TablePlanner`] (the CLI passes the GPT one), a GPT
//! whose backup is not on the new last LBA is moved there as part of the fix (see
//! [`super::table`]).
//!
//! # Crash safety
//!
//! The steps are ordered so that, until the *commit*, the file still reads as the old image,
//! and after it as the new container; each step is flushed (fsync) before the next. The commit
//! is a single 512-byte write of the new footer at a sector-aligned offset, or a single
//! `ftruncate`, so a kill cannot leave half of it:
//!
//! 1. A raw image whose partition table moves: write a **footer describing the old disk** at
//!    the new end `V`. The file reads as the old disk `[0, S)`, now as a fixed VHD.
//! 2. A VHD whose new end lies past its old footer: write a **copy of the old footer** at `V`.
//!    A VHD reader finds its footer at the end of the file and reads the old disk `[0, S)`;
//!    the file is merely longer.
//! 3. **Zero** the bytes between the old disk size `S` and the new size `V` (the old footer
//!    among them). They lie outside the old disk, so the old reading does not change.
//! 4. **Stage** the new partition-table structures (the new backup GPT: entry array, then
//!    header) at the end of the new disk: outside the old disk, pointed at by nothing.
//! 5. **Write the new footer** at `V`. If the file is already `V + 512` long this is the commit.
//! 6. Otherwise (the file was longer than needed) **truncate** to `V + 512`: the commit.
//! 7. **Repoint** the partition table: one write of the primary GPT header (alternate LBA, last
//!    usable LBA, CRC) together with the protective MBR (LBA 0 and 1 are one 1024-byte write
//!    within one page, which a kill cannot split). With 4096-byte sectors LBA 0 and LBA 1 are
//!    4 KiB apart: the MBR is written first, then the header's first 512 bytes.
//!
//! For a raw image without a table change only step 5 runs: one write that both extends the
//! file and puts the footer in place.
//!
//! Between the commit and step 7 (one step; two with 4096-byte sectors) the file is the new
//! fixed VHD whose primary GPT header still points at the old backup, intact in the middle of
//! the disk: the Linux kernel uses the valid primary and only warns (`block/partitions/efi.c`),
//! so it sees every partition; `sgdisk -v` reports
//! exactly one problem ("The secondary header's self-pointer indicates that it doesn't reside
//! at the end of the disk"); vhdprep `check` a BOOT-001 warning; a re-run of `fix` finishes
//! it. No order avoids this window: the disk size (the footer) and the header's alternate LBA
//! change in two writes at different places, and the other order (header first) leaves a
//! primary header whose usable range ends past the old disk, which the kernel rejects (it
//! reads the backup only when booted with `gpt`: no partitions) and `sgdisk -v` counts as four
//! problems. Neither write is torn by a kill;
//! after a power loss a 512-byte sector write is atomic on disks, and the 1024-byte one could
//! at worst leave one of its two sectors old, which is the window state or the finished one.
//!
//! # Other writers
//!
//! [`apply_fix`] refuses a file that changed since [`plan_fix`] read it (length, last sector,
//! modification time), stops before a step if the file is not as its previous step left it,
//! refuses to repoint a partition table whose sectors hold neither the bytes it planned from
//! nor its own, and fails after the last step unless the file is exactly `V + 512` bytes
//! ending in the new footer with every table write in place. Its own completed steps keep the
//! old reading, so a stopped fix can be re-run once the other writer is gone.

use super::table::{self, TablePlanner, TableWrite};
use super::{fault, Stamp};
use crate::detect::Format;
use crate::error::{DiskError, Result};
use crate::image::DiskImage;
use crate::read_at::ReadAt;
use crate::vhd::{footer, DiskType, Footer, FOOTER_SIZE};
use crate::{round_up_to_mib, MIB};
use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One durable step of an in-place fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixStep {
    /// Raw image whose partition table moves: write a footer describing the old disk at `at`
    /// (grows the file; it reads as the old disk, now as a fixed VHD).
    HoldingFooter {
        /// File offset.
        at: u64,
        /// The old disk's size, which the footer gives.
        size: u64,
    },
    /// Write the old footer, unchanged, at `at` (grows the file; the old reading holds).
    CopyOldFooter {
        /// File offset.
        at: u64,
    },
    /// Zero the bytes of `range` (outside the old disk).
    Zero {
        /// File byte range.
        range: Range<u64>,
    },
    /// Write the new footer at `at`.
    WriteFooter {
        /// File offset.
        at: u64,
    },
    /// Cut the file to `len` bytes.
    Truncate {
        /// New file length.
        len: u64,
    },
    /// Write new partition-table structures nothing points at yet (the new backup GPT),
    /// before the commit.
    StageTable(TableWrite),
    /// After the commit: one write that makes the partition table use them (the primary GPT
    /// header, with the protective MBR when both lie in one page).
    RepointTable(TableWrite),
}

impl std::fmt::Display for FixStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FixStep::HoldingFooter { at, size } => write!(f, "write a footer describing the old {size}-byte disk at offset {at} (the file reads as the old disk, as a fixed VHD)"),
            FixStep::CopyOldFooter { at } => write!(f, "write a copy of the old footer at offset {at} (the file still reads as the old image)"),
            FixStep::Zero { range } => write!(f, "zero bytes {}..{} (outside the old disk)", range.start, range.end),
            FixStep::WriteFooter { at } => write!(f, "write the new footer at offset {at}"),
            FixStep::Truncate { len } => write!(f, "truncate the file to {len} bytes"),
            FixStep::StageTable(w) => write!(f, "write {} at offset {} ({} bytes; nothing points at it yet)", w.what, w.offset, w.bytes.len()),
            FixStep::RepointTable(w) => write!(f, "rewrite {} at offset {} (one {}-byte write)", w.what, w.offset, w.bytes.len()),
        }
    }
}

/// What an in-place fix will do, computed without writing anything.
#[derive(Debug, Clone)]
pub struct FixPlan {
    /// The file.
    pub path: PathBuf,
    /// Its format before.
    pub format: Format,
    /// File length before.
    pub old_file_size: u64,
    /// Virtual disk size before.
    pub old_size: u64,
    /// Virtual disk size after (a whole MiB).
    pub new_size: u64,
    /// Why each change is needed; empty when there is nothing to do.
    pub reasons: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<FixStep>,
    /// The index in `steps` of the container commit (the new footer or the truncation), after
    /// which the file reads as the new disk; `None` when the container does not change. Only
    /// [`FixStep::RepointTable`] steps follow it.
    pub commit: Option<usize>,
    /// What the partition table planner noticed without changing it (a GPT left alone and
    /// why); printed with the plan.
    pub notes: Vec<String>,
    /// The footer the file ends with afterwards.
    pub new_footer: Footer,
    /// Its bytes.
    footer_bytes: Vec<u8>,
    /// For [`FixStep::HoldingFooter`]: the footer describing the old disk.
    holding_footer: Option<Footer>,
    /// The last 512 bytes of the file when planned (to detect a change before applying).
    old_tail: Vec<u8>,
    /// Length and modification time when planned (`None` for a block device).
    old_stamp: Option<Stamp>,
}

impl FixPlan {
    /// True when the file is already a valid, aligned fixed VHD.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }
}

fn refused(path: &Path, why: impl Into<String>) -> DiskError {
    DiskError::Refused {
        path: path.to_owned(),
        why: why.into(),
    }
}

/// Works out what `fix --in-place` would do to `image`. With a partition-table planner
/// (`vhdprep_partition::gpt::GptRelocator`), a GPT whose backup is not at the end of the new
/// disk is moved there too; without one, the partition table is not looked at.
pub fn plan_fix(image: &DiskImage, planner: Option<&dyn TablePlanner>) -> Result<FixPlan> {
    let path = image.path();
    let file_size = image.file_size();
    let file = image.file();
    let mut old_tail = vec![0u8; FOOTER_SIZE];
    file.read_exact_at(&mut old_tail, file_size - FOOTER_SIZE as u64)
        .map_err(|e| DiskError::io(path, "cannot read", e))?;
    let old_stamp = Stamp::of_path(path)
        .map_err(|e| DiskError::io(path, "cannot stat", e))?
        .map(|s| Stamp {
            len: file_size,
            ..s
        });
    let mut reasons = Vec::new();
    let (old_size, data_end, old_footer) = match image.format() {
        Format::Raw => (file_size, file_size, None),
        Format::VhdFixed => {
            let f = image.footer().expect("VHD has a footer").clone();
            let s = f.virtual_size();
            let data_end = file_size - FOOTER_SIZE as u64;
            if s > data_end {
                return Err(DiskError::Truncated {
                    path: path.to_owned(),
                    claimed: s,
                    available: data_end,
                });
            }
            (s, data_end, Some(f))
        }
        Format::VhdDynamic | Format::VhdDifferencing => {
            return Err(refused(
                path,
                format!(
                    "is a {} VHD; its data must be moved, which cannot be done in place: use `vhdprep convert {} OUT.vhd`",
                    if image.format() == Format::VhdDynamic { "dynamic" } else { "differencing" },
                    path.display()
                ),
            ))
        }
        other => {
            // What the reader itself refused (a VMDK extent kind it does not read) is said as
            // it said it.
            if let Err(e) = image.disk() {
                if let DiskError::Unsupported { path, what, hint } = &*e {
                    return Err(DiskError::Unsupported {
                        path: path.clone(),
                        what: what.clone(),
                        hint: hint.clone(),
                    });
                }
            }
            // A container vhdprep reads (qcow2, VHDX, VMDK, OVA, VDI): its data is laid out
            // in its own way, so only a copy makes a VHD of it.
            if other.is_read() && image.encryption().is_none() {
                return Err(refused(
                    path,
                    format!(
                        "is a {}; its data must be moved, which cannot be done in place: use `vhdprep convert {} OUT.vhd`",
                        crate::refusal::what(other, None),
                        path.display()
                    ),
                ));
            }
            return Err(crate::refusal::refusal(path, other, image.encryption()));
        }
    };
    if old_size == 0 {
        return Err(refused(
            path,
            "the disk is empty; there is nothing to make a VHD of",
        ));
    }
    let disk = image
        .disk()
        .map_err(|e| refused(path, format!("cannot read the disk: {e}")))?;
    let (new_size, update) = table::grow(&*disk, planner, path)?;
    let mut new_footer = Footer::new_fixed(new_size);
    if let Some(old) = &old_footer {
        if old.unique_id != [0u8; 16] {
            new_footer.unique_id = old.unique_id;
        }
        explain_footer(old, new_size, file_size, &mut reasons);
    } else {
        reasons.push("raw image: a footer is appended to make it a fixed VHD".to_string());
        if new_size != old_size {
            reasons.push(format!(
                "size {old_size} bytes is padded with {} zero bytes (a hole) to {new_size} = {} MiB",
                new_size - old_size,
                new_size / MIB
            ));
        }
    }
    if new_size > round_up_to_mib(old_size) {
        reasons.push(format!(
            "the disk ends less than one backup GPT short of a MiB boundary: it is padded to the MiB after ({} MiB), so that the new backup GPT does not overwrite the old one",
            new_size / MIB
        ));
    }
    let container_changes = !reasons.is_empty();
    reasons.extend(update.changes.iter().cloned());
    let notes = update.notes.clone();
    let new_len = new_size + FOOTER_SIZE as u64;

    let mut steps = Vec::new();
    if old_footer.is_none() && new_size > old_size && !update.is_empty() {
        // A raw image grows: a footer for the old disk at the new end first, so that the new
        // backup GPT, written past the old end, stays outside the disk until the commit.
        steps.push(FixStep::HoldingFooter {
            at: new_size,
            size: disk.len(),
        });
    }
    if old_footer.is_some() && data_end < new_size {
        steps.push(FixStep::CopyOldFooter { at: new_size });
    }
    let zero_end = new_size.min(file_size);
    let zeroed = old_size..zero_end.max(old_size);
    if old_size < zero_end {
        check_only_zeros_or_footer(&*file, zeroed.clone(), &old_tail, &update.stage, path)?;
        steps.push(FixStep::Zero {
            range: zeroed.clone(),
        });
    }
    for w in &update.stage {
        // Already in place (a re-run after a kill) and not about to be zeroed: nothing to do.
        let outside_zeroed = w.end() <= zeroed.start || w.offset >= zeroed.end;
        if outside_zeroed && w.end() <= data_end && holds(&*file, w, path)? {
            continue;
        }
        steps.push(FixStep::StageTable(w.clone()));
    }
    let mut commit = None;
    if container_changes {
        steps.push(FixStep::WriteFooter { at: new_size });
        commit = Some(steps.len() - 1);
        if file_size > new_len {
            steps.push(FixStep::Truncate { len: new_len });
            commit = Some(steps.len() - 1);
        }
    } else {
        new_footer = old_footer.clone().expect("a raw image always changes");
    }
    steps.extend(update.repoint.iter().cloned().map(FixStep::RepointTable));
    let footer_bytes = if container_changes {
        new_footer.to_bytes().to_vec()
    } else {
        old_tail.clone()
    };
    let holding_footer = matches!(steps.first(), Some(FixStep::HoldingFooter { .. })).then(|| {
        let mut f = Footer::new_fixed(disk.len());
        f.unique_id = new_footer.unique_id;
        f
    });
    if steps.is_empty() {
        reasons.clear();
    }
    Ok(FixPlan {
        path: path.to_owned(),
        format: image.format(),
        old_file_size: file_size,
        old_size,
        new_size,
        reasons,
        steps,
        commit,
        notes,
        new_footer,
        footer_bytes,
        holding_footer,
        old_tail,
        old_stamp,
    })
}

/// True when the file already holds `w`'s bytes.
fn holds(file: &dyn ReadAt, w: &TableWrite, path: &Path) -> Result<bool> {
    let mut now = vec![0u8; w.bytes.len()];
    file.read_exact_at(&mut now, w.offset)
        .map_err(|e| DiskError::io(path, "cannot read", e))?;
    Ok(now == w.bytes)
}

/// Lists what is wrong with an existing fixed-VHD footer.
fn explain_footer(old: &Footer, new_size: u64, file_size: u64, reasons: &mut Vec<String>) {
    let size = old.virtual_size();
    if new_size != size || old.current_size != size {
        reasons.push(format!(
            "virtual size {size} bytes is realigned to {new_size} = {} MiB",
            new_size / MIB
        ));
    }
    if file_size != new_size + FOOTER_SIZE as u64 && new_size == size {
        reasons.push(format!(
            "file length {file_size} becomes {} (virtual size + 512)",
            new_size + FOOTER_SIZE as u64
        ));
    }
    if !old.checksum_valid() {
        reasons.push(format!(
            "footer checksum 0x{:08x} is wrong (should be 0x{:08x})",
            old.checksum,
            old.expected_checksum()
        ));
    }
    if old.original_size != old.current_size {
        reasons.push("original size differs from current size".into());
    }
    if old.disk_type != DiskType::Fixed {
        reasons.push(format!("disk type {} becomes fixed", old.disk_type.name()));
    }
    if old.version != footer::VERSION_1_0
        || old.data_offset != footer::NO_DATA_OFFSET
        || old.features != footer::FEATURE_RESERVED
    {
        reasons.push("version, data offset or features field is not the standard value".into());
    }
    if old.saved_state != 0 {
        reasons.push("saved-state flag is cleared".into());
    }
}

/// Refuses to zero a range that holds data other than copies of the current footer: such
/// bytes lie past the size readers see (a geometry-sized footer) and dropping them silently
/// could lose data. Footer copies are expected there: the old footer itself, or the one a
/// killed earlier run left behind; so are the bytes of the `staged` partition-table writes
/// (the new backup GPT a killed earlier run wrote).
fn check_only_zeros_or_footer(
    file: &dyn ReadAt,
    range: Range<u64>,
    footer: &[u8],
    staged: &[TableWrite],
    path: &Path,
) -> Result<()> {
    let sector = FOOTER_SIZE as u64;
    // Work in whole file sectors around the range.
    let mut at = range.start / sector * sector;
    let mut buf = vec![0u8; MIB as usize];
    while at < range.end {
        let n = ((range.end.div_ceil(sector) * sector - at) as usize).min(buf.len());
        let got = file
            .read_at(&mut buf[..n], at)
            .map_err(|e| DiskError::io(path, "cannot read", e))?;
        if got == 0 {
            break;
        }
        for (i, s) in buf[..got].chunks(FOOTER_SIZE).enumerate() {
            let s_at = at + (i * FOOTER_SIZE) as u64;
            // Only the part of this sector inside the range matters.
            let lo = range.start.saturating_sub(s_at) as usize;
            let hi = ((range.end - s_at) as usize).min(s.len());
            if lo >= hi
                || s[lo..hi].iter().all(|&b| b == 0)
                || s == footer
                || is_staged(staged, s_at + lo as u64, &s[lo..hi])
            {
                continue;
            }
            let off = s_at + lo as u64 + s[lo..hi].iter().position(|&b| b != 0).unwrap_or(0) as u64;
            return Err(refused(
                path,
                format!(
                    "holds non-zero data at offset {off}, past the {}-byte disk its footer describes; refusing to drop it (use `vhdprep convert` to choose)",
                    range.start
                ),
            ));
        }
        at += got as u64;
    }
    Ok(())
}

/// True when `bytes`, found at file offset `at`, are what one of the `staged` writes puts
/// there.
fn is_staged(staged: &[TableWrite], at: u64, bytes: &[u8]) -> bool {
    let end = at + bytes.len() as u64;
    staged.iter().any(|w| {
        w.offset <= at && end <= w.end() && {
            let from = (at - w.offset) as usize;
            w.bytes[from..from + bytes.len()] == *bytes
        }
    })
}

/// Carries out `plan` on the file. Refuses if the file changed since it was planned, stops
/// if another process changes it between two steps, and fails if it is not as written after
/// the last step, so that it never reports success on a file someone else changed.
pub fn apply_fix(plan: &FixPlan) -> Result<()> {
    if plan.is_noop() {
        return Ok(());
    }
    let path = &plan.path;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| DiskError::io(path, "cannot open for writing", e))?;
    verify_unchanged(&file, plan)?;
    let io = |op| move |e| DiskError::io(path, op, e);
    reserve(&file, plan).map_err(io("cannot reserve space for the fix"))?;
    let footer_bytes = &plan.footer_bytes;
    let mut expected = plan.old_stamp;
    for (i, step) in plan.steps.iter().enumerate() {
        if i > 0 {
            check_stamp(&file, plan, expected.as_ref(), i + 1)?;
        }
        match step {
            FixStep::HoldingFooter { at, .. } => {
                let footer = plan.holding_footer.as_ref().expect("planned with the step");
                file.write_all_at(&footer.to_bytes(), *at)
                    .map_err(io("cannot write the footer"))?;
            }
            FixStep::CopyOldFooter { at } => {
                file.write_all_at(&plan.old_tail, *at)
                    .map_err(io("cannot write the footer copy"))?;
            }
            FixStep::Zero { range } => {
                zero_range(&file, range.clone()).map_err(io("cannot zero"))?
            }
            FixStep::WriteFooter { at } => {
                file.write_all_at(footer_bytes, *at)
                    .map_err(io("cannot write the footer"))?;
            }
            FixStep::Truncate { len } => file.set_len(*len).map_err(io("cannot truncate"))?,
            FixStep::StageTable(w) => file
                .write_all_at(&w.bytes, w.offset)
                .map_err(io("cannot write the partition table"))?,
            FixStep::RepointTable(w) => {
                if !table_is(&file, plan, w, &w.old, i + 1)? {
                    file.write_all_at(&w.bytes, w.offset)
                        .map_err(io("cannot write the partition table"))?;
                }
            }
        }
        file.sync_all().map_err(io("cannot flush"))?;
        expected = Stamp::of(&file).map_err(io("cannot stat"))?;
        fault::step("fix step");
    }
    verify_result(&file, plan, footer_bytes)
}

/// Before a [`FixStep::RepointTable`] (step `next`): true when the sectors already hold the
/// new bytes, false when they hold the `old` ones the plan was made from; anything else means
/// another program changed the partition table, and the fix stops.
fn table_is(file: &File, plan: &FixPlan, w: &TableWrite, old: &[u8], next: usize) -> Result<bool> {
    let mut now = vec![0u8; w.bytes.len()];
    file.read_exact_at(&mut now, w.offset)
        .map_err(|e| DiskError::io(&plan.path, "cannot read", e))?;
    if now == w.bytes {
        return Ok(true);
    }
    if now == old {
        return Ok(false);
    }
    Err(refused(
        &plan.path,
        format!(
            "another process changed its partition table while vhdprep was fixing it (bytes {}..{}); vhdprep stopped before step {next} of {}: check what else writes to the file and run fix again",
            w.offset,
            w.end(),
            plan.steps.len()
        ),
    ))
}

fn verify_unchanged(file: &File, plan: &FixPlan) -> Result<()> {
    let meta = file
        .metadata()
        .map_err(|e| DiskError::io(&plan.path, "cannot stat", e))?;
    let len = meta.len();
    let mut tail = vec![0u8; FOOTER_SIZE];
    if len == plan.old_file_size {
        file.read_exact_at(&mut tail, len - FOOTER_SIZE as u64)
            .map_err(|e| DiskError::io(&plan.path, "cannot read", e))?;
    }
    let stamp = Stamp::of(file).map_err(|e| DiskError::io(&plan.path, "cannot stat", e))?;
    if len != plan.old_file_size || tail != plan.old_tail || stamp != plan.old_stamp {
        return Err(refused(
            &plan.path,
            "changed while vhdprep was planning the fix; nothing was written, run it again",
        ));
    }
    Ok(())
}

/// Before step `next` (counted from 1): fails if the file is not as vhdprep's last step left
/// it, i.e. another process changed it.
fn check_stamp(file: &File, plan: &FixPlan, expected: Option<&Stamp>, next: usize) -> Result<()> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let now = Stamp::of(file).map_err(|e| DiskError::io(&plan.path, "cannot stat", e))?;
    let Some(what) = now.and_then(|now| expected.change(&now)) else {
        return Ok(());
    };
    Err(refused(
        &plan.path,
        format!(
            "another process changed it while vhdprep was fixing it ({what}); vhdprep stopped before step {next} of {} (its own steps so far keep the old reading), check what else writes to the file and run fix again",
            plan.steps.len()
        ),
    ))
}

/// After the last step: the file must be exactly `V + 512` bytes long and end with the new
/// footer; anything else means another process changed it at the last moment.
fn verify_result(file: &File, plan: &FixPlan, footer: &[u8]) -> Result<()> {
    let len = file
        .metadata()
        .map_err(|e| DiskError::io(&plan.path, "cannot stat", e))?
        .len();
    let want = plan.new_size + FOOTER_SIZE as u64;
    let mut tail = vec![0u8; FOOTER_SIZE];
    if len == want {
        file.read_exact_at(&mut tail, plan.new_size)
            .map_err(|e| DiskError::io(&plan.path, "cannot read", e))?;
    }
    let mut table_ok = true;
    for step in &plan.steps {
        if let FixStep::StageTable(w) | FixStep::RepointTable(w) = step {
            if len == want && w.end() <= plan.new_size {
                let mut now = vec![0u8; w.bytes.len()];
                file.read_exact_at(&mut now, w.offset)
                    .map_err(|e| DiskError::io(&plan.path, "cannot read", e))?;
                table_ok &= now == w.bytes;
            }
        }
    }
    if len == want && tail == footer && table_ok {
        return Ok(());
    }
    Err(refused(
        &plan.path,
        format!(
            "another process changed it as vhdprep finished fixing it (length {len} bytes, {}); it cannot be vouched for: check what else writes to the file",
            if len != want { format!("expected {want}") } else if tail != footer { "the footer is not the one written".to_string() } else { "its partition table is not the one written".to_string() }
        ),
    ))
}

/// Allocates, without changing the file's length or content, the blocks the steps will write
/// outside the file's allocated data (footers past the end, the new backup GPT), so that a full
/// disk fails the fix here, before its first step, with the file byte for byte as it was.
/// Where the filesystem cannot (no `fallocate`, or copy-on-write like btrfs, which allocates
/// again on every write) this is best effort; the steps keep the old reading either way.
fn reserve(file: &File, plan: &FixPlan) -> std::io::Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    for step in &plan.steps {
        let (at, len) = match step {
            FixStep::HoldingFooter { at, .. }
            | FixStep::CopyOldFooter { at }
            | FixStep::WriteFooter { at } => (*at, FOOTER_SIZE as u64),
            FixStep::StageTable(w) => (w.offset, w.bytes.len() as u64),
            _ => continue,
        };
        match fallocate(file, FallocateFlags::KEEP_SIZE, at, len) {
            Ok(()) => {}
            Err(e) if [rustix::io::Errno::NOSPC, rustix::io::Errno::DQUOT].contains(&e) => {
                return Err(e.into())
            }
            // Not supported here (EOPNOTSUPP, EINVAL ...): the writes allocate as they go.
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Zeros a byte range: punch a hole where the filesystem can, write zeros where it cannot.
fn zero_range(file: &File, range: Range<u64>) -> std::io::Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    let len = range.end - range.start;
    if fallocate(
        file,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        range.start,
        len,
    )
    .is_ok()
    {
        return Ok(());
    }
    let zeros = vec![0u8; MIB as usize];
    let mut at = range.start;
    while at < range.end {
        let n = ((range.end - at) as usize).min(zeros.len());
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}
