//! Moving the backup GPT to the end of a grown disk, as `sfdisk --relocate gpt-bak-std` and
//! `sgdisk -e` do.
//!
//! When the writers pad a disk to a whole MiB, its last LBA moves; the backup GPT must move
//! with it, or the disk has its backup in the middle (`sgdisk -v`: "The secondary header's
//! self-pointer indicates that it doesn't reside at the end of the disk"; vhdprep `check`:
//! BOOT-001). The new layout is the standard one, as `sfdisk` writes it and `sgdisk` writes it
//! for its own tables: the backup header on the last LBA, the entry array right before it, the
//! last usable LBA right before the array. (`sgdisk -e` computes the last usable LBA as
//! `disk sectors - first usable LBA`; for a table made by sgdisk that is the same value, but
//! for one made by libfdisk (first usable LBA 2048: sfdisk, systemd-repart, mkosi) it would
//! shrink the usable range by a MiB and place the array there, which sgdisk then refuses when a
//! partition reaches the old last usable LBA: vhdprep follows sfdisk there.)
//!
//! - [`relocate_headers`] and [`resize_protective_mbr`]: pure functions from the old sectors
//!   to the new ones.
//! - [`plan_relocation`]: reads a disk, decides whether moving is right, and gives the sectors.
//! - [`GptRelocator`]: the [`TablePlanner`] the writers of `vhdprep_disk` call.
//!
//! What is moved and what is left alone (never silently: a note says why):
//!
//! - a GPT whose primary header points at a backup that is not on the new last LBA is moved;
//!   the new backup is built from the primary (header fields and entry array), which is what
//!   the Linux kernel uses. A backup that is damaged or missing is thereby rebuilt (with a
//!   note); the old backup's sectors are left as they were (as sfdisk and sgdisk leave them),
//!   outside every partition;
//! - a GPT whose backup is already on the last LBA is not touched;
//! - MBR disks and disks without a table have nothing at their end: nothing to do;
//! - left alone, with a note: a GPT that does not read strictly (primary damaged, neither copy
//!   usable, no protective MBR, a 0xEE entry the kernel rejects), a backup that is valid but
//!   disagrees with the primary (moving it would discard a table someone may need), a primary
//!   pointing past the end of the disk (a truncated image), and a move that would shrink the
//!   usable range or cut into a partition.
//!
//! The protective MBR follows, as sgdisk does it: a pure protective 0xEE entry covers the new
//! disk (`sectors - 1`, at most `0xFFFFFFFF`); in a hybrid MBR a 0xEE entry that reached the old
//! end of the disk is extended to the new end, other entries are kept. Only the size field
//! changes (and the CHS end address when it was sgdisk's 255-head, 63-sector form); boot code,
//! disk signature and the other entries stay.

use super::header::{self, GptHeader};
use super::{read_copy, GptDefect};
use crate::error::{read_exact, PartitionError};
use crate::mbr::{Mbr, ENTRIES_OFFSET, PROTECTIVE_TYPE};
use crate::TableKind;
use vhdprep_disk::write::{TablePlanner, TableUpdate, TableWrite};
use vhdprep_disk::ReadAt;

/// The new sectors of a moved GPT, and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relocation {
    /// The logical sector size.
    pub sector_size: u32,
    /// Where the primary header placed the backup header.
    pub old_backup_lba: u64,
    /// The new backup header LBA: the last LBA of the grown disk.
    pub new_backup_lba: u64,
    /// The new backup entry array's first LBA (right before the backup header).
    pub new_array_lba: u64,
    /// The primary header's last usable LBA before.
    pub old_last_usable_lba: u64,
    /// And after (right before the backup array).
    pub new_last_usable_lba: u64,
    /// The new backup entry array: the primary's array sectors, byte for byte.
    pub backup_array: Vec<u8>,
    /// The new backup header sector (one logical sector).
    pub backup_header: Vec<u8>,
    /// The first 512 bytes of the primary header sector, as they were ...
    pub old_primary: Vec<u8>,
    /// ... and as they become (alternate LBA, last usable LBA, header CRC32: all that changes,
    /// and all within these bytes).
    pub new_primary: Vec<u8>,
    /// The protective MBR's change, when it changes.
    pub mbr: Option<MbrResize>,
    /// Why the old backup was unusable, when it was: the new one is rebuilt from the primary.
    pub old_backup_defect: Option<GptDefect>,
}

/// A resized 0xEE entry in LBA 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MbrResize {
    /// LBA 0's first 512 bytes before ...
    pub old: Vec<u8>,
    /// ... and after.
    pub new: Vec<u8>,
    /// The 0xEE entries' sector counts before and after, by entry slot (0..4).
    pub sizes: Vec<(usize, u32, u32)>,
}

/// What [`plan_relocation`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelocationPlan {
    /// No GPT: an MBR disk or no table; nothing lies at the end of the disk.
    NotGpt,
    /// The primary header already places the backup on the last LBA of the new disk.
    AtEnd,
    /// Move it.
    Move(Box<Relocation>),
    /// A GPT that is not changed, and why (for a note).
    LeftAlone(String),
}

/// Why [`relocate_headers`] cannot move a GPT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelocateError {
    /// The primary header does not parse.
    #[error("the primary GPT header is unusable: {0}")]
    Header(GptDefect),
    /// The header sector given is shorter than the header says it is.
    #[error("the primary GPT header sector is {got} bytes, shorter than {want}")]
    ShortSector {
        /// Bytes given.
        got: usize,
        /// Bytes needed (at least 512 and the header size).
        want: usize,
    },
    /// A table without entries: no array to move (no tool writes one).
    #[error("the GPT has no partition entries")]
    NoEntries,
    /// The new layout would leave fewer usable sectors than the old one.
    #[error(
        "on a disk of {new_sectors} sectors the last usable LBA would be {new_last_usable}, \
         below the current {old_last_usable}"
    )]
    Shrinks {
        /// The new disk's sectors.
        new_sectors: u64,
        /// The current last usable LBA.
        old_last_usable: u64,
        /// The one the new layout allows.
        new_last_usable: u64,
    },
}

/// The headers of a moved GPT, from [`relocate_headers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedHeaders {
    /// The primary header sector, rewritten (same length as given).
    pub primary: Vec<u8>,
    /// The new backup header sector.
    pub backup: Vec<u8>,
    /// The backup header's LBA (the new last LBA).
    pub backup_lba: u64,
    /// The backup entry array's first LBA.
    pub array_lba: u64,
    /// The new last usable LBA.
    pub last_usable_lba: u64,
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes the header CRC32 of a header sector in place (over its header-size bytes).
fn seal(sector: &mut [u8], header_size: u32) {
    let crc = header::header_crc32(sector, header_size).unwrap_or(0);
    sector[16..20].copy_from_slice(&crc.to_le_bytes());
}

/// The sectors that move the backup of the GPT whose primary header sector (one whole logical
/// sector, as read from LBA 1) is `primary` to the end of a disk of `new_sectors` sectors:
/// the primary with the new alternate and last usable LBAs, and the backup header (a copy of
/// the primary's sector with its own LBA, alternate LBA 1 and the new array LBA). Every other
/// byte of the sector is kept, including any past the 92 defined ones; both CRC32s cover the
/// header size the header states.
pub fn relocate_headers(primary: &[u8], new_sectors: u64) -> Result<MovedHeaders, RelocateError> {
    let h = GptHeader::parse(primary).map_err(RelocateError::Header)?;
    let want = (h.header_size as usize).max(512);
    if primary.len() < want {
        return Err(RelocateError::ShortSector {
            got: primary.len(),
            want,
        });
    }
    let ss = u32::try_from(primary.len()).unwrap_or(u32::MAX);
    let array_sectors = h.array_sectors(ss);
    if array_sectors == 0 {
        return Err(RelocateError::NoEntries);
    }
    let backup_lba = new_sectors.saturating_sub(1);
    let array_lba = backup_lba.saturating_sub(array_sectors);
    let last_usable = array_lba.saturating_sub(1);
    if last_usable < h.last_usable_lba || array_lba <= 1 {
        return Err(RelocateError::Shrinks {
            new_sectors,
            old_last_usable: h.last_usable_lba,
            new_last_usable: last_usable,
        });
    }
    let mut p = primary.to_vec();
    put_u64(&mut p, 32, backup_lba);
    put_u64(&mut p, 48, last_usable);
    seal(&mut p, h.header_size);
    let mut b = p.clone();
    put_u64(&mut b, 24, backup_lba);
    put_u64(&mut b, 32, 1);
    put_u64(&mut b, 72, array_lba);
    seal(&mut b, h.header_size);
    Ok(MovedHeaders {
        primary: p,
        backup: b,
        backup_lba,
        array_lba,
        last_usable_lba: last_usable,
    })
}

/// The CHS address sgdisk writes for `lba` (255 heads, 63 sectors per track, saturated at
/// cylinder 1023 as `FE FF FF`).
pub fn chs_of(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    if lba == 0 {
        return [0, 0, 0];
    }
    if lba >= HEADS * SECTORS * 1024 {
        return [254, 255, 255];
    }
    let cylinder = lba / (HEADS * SECTORS);
    let rest = lba % (HEADS * SECTORS);
    let head = rest / SECTORS;
    let sector = rest % SECTORS + 1;
    [
        head as u8,
        (sector | ((cylinder >> 8) << 6)) as u8,
        (cylinder & 0xff) as u8,
    ]
}

/// LBA 0 with its 0xEE entries fitted to a disk grown to `new_sectors` sectors, or `None` when
/// nothing changes (or `mbr` is not an MBR). `table_sectors` is the size the GPT was made for
/// (its primary's alternate LBA + 1): in a hybrid MBR, a 0xEE entry reaching that far is
/// extended to the new end. A pure protective MBR's 0xEE entry starting at LBA 1 always covers
/// the whole disk afterwards, capped at `0xFFFFFFFF`, as sgdisk makes it.
pub fn resize_protective_mbr(
    mbr: &[u8],
    table_sectors: u64,
    new_sectors: u64,
) -> Option<MbrResize> {
    let m = Mbr::parse(mbr)?;
    let hybrid = m.is_hybrid();
    let small = new_sectors < u64::from(u32::MAX);
    let mut new = mbr[..512].to_vec();
    let mut sizes = Vec::new();
    for (i, e) in m.entries.iter().enumerate() {
        if e.type_byte != PROTECTIVE_TYPE {
            continue;
        }
        let start = u64::from(e.start_lba);
        let size = if hybrid {
            let reaches = start + u64::from(e.sectors) >= table_sectors.min(u64::from(u32::MAX));
            if !reaches || start >= new_sectors {
                continue;
            }
            if small {
                (new_sectors - start) as u32
            } else {
                u32::MAX - e.start_lba
            }
        } else {
            if e.start_lba != 1 {
                continue;
            }
            if small {
                (new_sectors - 1) as u32
            } else {
                u32::MAX
            }
        };
        if size == e.sectors {
            continue;
        }
        let off = ENTRIES_OFFSET + 16 * i;
        new[off + 12..off + 16].copy_from_slice(&size.to_le_bytes());
        let old_end = start + u64::from(e.sectors).saturating_sub(1);
        if e.chs_last == chs_of(old_end) {
            new[off + 5..off + 8].copy_from_slice(&chs_of(start + u64::from(size) - 1));
        }
        sizes.push((i, e.sectors, size));
    }
    (!sizes.is_empty()).then(|| MbrResize {
        old: mbr[..512].to_vec(),
        new,
        sizes,
    })
}

/// Decides what to do with the partition table of `disk` (the old virtual disk) when it grows
/// to `new_size` bytes (the extra bytes reading as zeros), and computes the new sectors.
/// Only a failed read is an error.
pub fn plan_relocation(disk: &dyn ReadAt, new_size: u64) -> Result<RelocationPlan, PartitionError> {
    use RelocationPlan::LeftAlone;
    let table = match crate::read_partitions(disk) {
        Ok(t) => t,
        Err(e @ PartitionError::Io { .. }) => return Err(e),
        Err(e) => return Ok(LeftAlone(format!("the GPT cannot be read ({e})"))),
    };
    if table.kind != TableKind::Gpt {
        return Ok(match super::locate_signature(disk)? {
            Some((ss, lba)) => LeftAlone(format!(
                "a GPT header is present (LBA {lba}, sector size {ss}) but LBA 0 holds no protective MBR, so Linux does not use that GPT"
            )),
            None => RelocationPlan::NotGpt,
        });
    }
    let g = table.gpt.as_ref().expect("a GPT table has its GPT");
    let ss = table.sector_size;
    let ss64 = u64::from(ss);
    if let Some(d) = &g.primary_defect {
        return Ok(LeftAlone(format!(
            "the primary GPT is unusable ({d}); repair it first, e.g. `sgdisk -e` on the raw image"
        )));
    }
    let mut lba0 = [0u8; 512];
    read_exact(disk, &mut lba0, 0, "MBR")?;
    let mbr = Mbr::parse(&lba0).expect("a GPT table has an MBR");
    if !mbr.has_kernel_valid_protective_entry() {
        return Ok(LeftAlone(
            "the protective MBR's 0xEE entry does not start at LBA 1, so Linux ignores this GPT"
                .into(),
        ));
    }
    let h = &g.header;
    let old_last = g.last_lba;
    let new_sectors = new_size / ss64;
    let new_last = new_sectors.saturating_sub(1);
    if h.alternate_lba > old_last {
        return Ok(LeftAlone(format!(
            "the primary GPT places its backup at LBA {}, past the end of the disk (last LBA {old_last}): the image looks truncated",
            h.alternate_lba
        )));
    }
    if h.alternate_lba == new_last {
        return Ok(RelocationPlan::AtEnd);
    }
    // The copy the primary points at: good and in agreement, damaged (rebuilt), or valid but
    // different (left alone).
    let backup = read_copy(disk, ss, h.alternate_lba, old_last)?;
    let old_backup_defect = match (&backup.header, &backup.outcome) {
        (Some(b), Ok(_)) => {
            if let Some(diff) = disagreement(h, b) {
                return Ok(LeftAlone(format!(
                    "the primary GPT and its backup at LBA {} disagree ({diff}); moving the backup would discard its table: decide which is right (`sgdisk -v`) and repair the raw image first",
                    h.alternate_lba
                )));
            }
            None
        }
        (_, Err(d)) => Some(d.clone()),
        (None, Ok(_)) => Some(GptDefect::BadSignature),
    };
    let mut primary = vec![0u8; ss as usize];
    read_exact(disk, &mut primary, ss64, "GPT header")?;
    let moved = match relocate_headers(&primary, new_sectors) {
        Ok(m) => m,
        Err(e) => return Ok(LeftAlone(e.to_string())),
    };
    if let Some(p) = table
        .partitions
        .iter()
        .find(|p| p.end_lba > moved.last_usable_lba)
    {
        return Ok(LeftAlone(format!(
            "GPT partition {} ends at LBA {}, past the last usable LBA {} the moved backup leaves",
            p.number, p.end_lba, moved.last_usable_lba
        )));
    }
    let array_sectors = h.array_sectors(ss);
    let mut array = vec![0u8; (array_sectors * ss64) as usize];
    read_exact(
        disk,
        &mut array,
        h.partition_entry_lba * ss64,
        "GPT partition entry array",
    )?;
    Ok(RelocationPlan::Move(Box::new(Relocation {
        sector_size: ss,
        old_backup_lba: h.alternate_lba,
        new_backup_lba: moved.backup_lba,
        new_array_lba: moved.array_lba,
        old_last_usable_lba: h.last_usable_lba,
        new_last_usable_lba: moved.last_usable_lba,
        backup_array: array,
        backup_header: moved.backup,
        old_primary: primary[..512].to_vec(),
        new_primary: moved.primary[..512].to_vec(),
        mbr: resize_protective_mbr(&lba0, h.alternate_lba + 1, new_sectors),
        old_backup_defect,
    })))
}

/// How two good headers of one GPT differ in what both copies must share, in words.
fn disagreement(p: &GptHeader, b: &GptHeader) -> Option<String> {
    let mut d = Vec::new();
    if p.disk_guid != b.disk_guid {
        d.push("disk GUID");
    }
    if p.first_usable_lba != b.first_usable_lba || p.last_usable_lba != b.last_usable_lba {
        d.push("usable range");
    }
    if p.num_entries != b.num_entries || p.entry_size != b.entry_size {
        d.push("entry count or size");
    }
    if p.entries_crc32 != b.entries_crc32 {
        d.push("partition entries");
    }
    if b.alternate_lba != 1 {
        d.push("the backup's AlternateLBA");
    }
    (!d.is_empty()).then(|| d.join(", "))
}

/// The GPT's [`TablePlanner`]: give it to `vhdprep_disk::write::convert` and `plan_fix`, and
/// a GPT disk they pad keeps its backup GPT on its last LBA.
#[derive(Debug, Clone, Copy, Default)]
pub struct GptRelocator;

impl TablePlanner for GptRelocator {
    fn plan(&self, disk: &dyn ReadAt, new_size: u64) -> std::io::Result<TableUpdate> {
        let plan = plan_relocation(disk, new_size).map_err(|e| match e {
            PartitionError::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        })?;
        Ok(match plan {
            RelocationPlan::NotGpt | RelocationPlan::AtEnd => TableUpdate::default(),
            RelocationPlan::LeftAlone(why) => TableUpdate {
                notes: vec![format!("the partition table is left as it is: {why}")],
                ..TableUpdate::default()
            },
            RelocationPlan::Move(r) => update_of(&r),
        })
    }
}

/// The writes of a relocation, in the order the writers need: the backup array and header
/// (staged), then one write of the primary header, with LBA 0 when both lie in the first
/// 1024 bytes (512-byte sectors: one page, which a kill cannot split); with larger sectors
/// LBA 0 goes first, so that a re-run after a kill between the two still sees the backup
/// out of place and finishes both.
fn update_of(r: &Relocation) -> TableUpdate {
    let ss = u64::from(r.sector_size);
    let array_end = r.new_array_lba + r.backup_array.len() as u64 / ss - 1;
    let stage = vec![
        TableWrite {
            offset: r.new_array_lba * ss,
            bytes: r.backup_array.clone(),
            old: Vec::new(),
            what: format!(
                "the new backup GPT entry array (LBA {}..={array_end})",
                r.new_array_lba
            ),
        },
        TableWrite {
            offset: r.new_backup_lba * ss,
            bytes: r.backup_header.clone(),
            old: Vec::new(),
            what: format!("the new backup GPT header (LBA {})", r.new_backup_lba),
        },
    ];
    let primary_what = format!(
        "the primary GPT header (backup LBA {} -> {}, last usable LBA {} -> {})",
        r.old_backup_lba, r.new_backup_lba, r.old_last_usable_lba, r.new_last_usable_lba
    );
    let primary = TableWrite {
        offset: ss,
        bytes: r.new_primary.clone(),
        old: r.old_primary.clone(),
        what: primary_what.clone(),
    };
    let mut repoint = Vec::new();
    let mut changes = vec![format!(
        "GPT: the backup moves from LBA {} to LBA {}, the last LBA of the new disk (entry array at LBA {}..={array_end}); the primary header points at it, its last usable LBA {} -> {} (as `sfdisk --relocate gpt-bak-std` does)",
        r.old_backup_lba, r.new_backup_lba, r.new_array_lba, r.old_last_usable_lba, r.new_last_usable_lba
    )];
    match &r.mbr {
        Some(m) => {
            let sizes: Vec<String> = m
                .sizes
                .iter()
                .map(|(slot, a, b)| format!("entry {}: {a} -> {b} sectors", slot + 1))
                .collect();
            let mbr_what = format!("the protective MBR (0xEE {})", sizes.join(", "));
            changes.push(format!(
                "protective MBR: the 0xEE entry follows the disk ({})",
                sizes.join(", ")
            ));
            if ss == 512 {
                repoint.push(TableWrite {
                    offset: 0,
                    bytes: [m.new.as_slice(), &r.new_primary].concat(),
                    old: [m.old.as_slice(), &r.old_primary].concat(),
                    what: format!("{mbr_what} and {primary_what}"),
                });
            } else {
                repoint.push(TableWrite {
                    offset: 0,
                    bytes: m.new.clone(),
                    old: m.old.clone(),
                    what: mbr_what,
                });
                repoint.push(primary);
            }
        }
        None => repoint.push(primary),
    }
    let notes = r
        .old_backup_defect
        .iter()
        .map(|d| {
            format!(
                "the backup GPT at LBA {} is unusable ({d}); the new one is rebuilt from the primary",
                r.old_backup_lba
            )
        })
        .collect();
    TableUpdate {
        stage,
        repoint,
        changes,
        notes,
    }
}

#[cfg(test)]
mod tests;
