//! The GUID Partition Table, read strictly: both headers, both entry arrays, every CRC.
//!
//! - [`header`]: the header sector (fields, CRC, self-consistency, placement).
//! - [`entry`]: one partition entry (GUIDs, LBAs, attributes, UTF-16LE name), any
//!   128 × 2^n entry size.
//! - [`relocate`]: moving the backup GPT to the end of a grown disk (what the writers call,
//!   through [`GptRelocator`], when they pad a disk to a whole MiB).
//! - this module: [`read_gpt`] reads the primary copy (header at LBA 1 and its array) and the
//!   backup copy (header at the primary's `alternate_lba`, which must be the last LBA of the
//!   virtual disk, and its array), picks a good one, and reports every discrepancy as a
//!   finding; [`detect_sector_size`] finds the logical sector size (512 or 4096).
//!
//! How copies are chosen mirrors the Linux kernel (`block/partitions/efi.c`), which matters
//! because the guest's kernel is what has to find the root partition: the primary is used when
//! it is valid (header *and* array); otherwise the backup is used here, as `sfdisk`, `sgdisk`
//! and UEFI firmware do — but with an error finding, since the kernel itself only falls back
//! to the backup when booted with the `gpt` parameter.

pub mod entry;
pub mod header;
pub mod relocate;

pub use relocate::GptRelocator;

use crate::error::{read_exact, PartitionError};
use crate::rules::{self, finding};
use entry::GptEntry;
use header::GptHeader;
use serde::Serialize;
use vhdprep_disk::ReadAt;
use vhdprep_finding::{Finding, Severity};

/// Sector sizes [`detect_sector_size`] tries, in order.
pub const PROBED_SECTOR_SIZES: [u32; 2] = [512, 4096];

/// What makes one GPT copy (header + its entry array) unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GptDefect {
    /// The header location lies outside the disk.
    #[error("LBA {lba} is outside the disk (last LBA {last_lba})")]
    BeyondDisk {
        /// Where the header was looked for.
        lba: u64,
        /// The disk's last LBA.
        last_lba: u64,
    },
    /// Fewer than 92 bytes were given to the header decoder.
    #[error("header sector of {len} bytes is too short")]
    ShortSector {
        /// Bytes given.
        len: u64,
    },
    /// The first 8 bytes are not `EFI PART`.
    #[error("no \"EFI PART\" signature")]
    BadSignature,
    /// Header size outside 92 ..= sector size.
    #[error("header size {size} is outside 92..={max}")]
    HeaderSize {
        /// Header size found.
        size: u32,
        /// The sector size.
        max: u32,
    },
    /// Header CRC32 mismatch.
    #[error("header CRC32 is {stored:#010x} but the header hashes to {computed:#010x}")]
    HeaderCrc {
        /// Stored CRC.
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
    /// Entry size is not 128 × 2^n.
    #[error("partition entry size {0} is not 128 x 2^n")]
    EntrySize(u32),
    /// The array would exceed the caps.
    #[error(
        "{count} partition entries of {entry_size} bytes exceed the cap of {max} entries / {max_bytes} bytes",
        max = header::MAX_ENTRIES,
        max_bytes = header::MAX_ARRAY_BYTES
    )]
    TooManyEntries {
        /// Entries claimed.
        count: u32,
        /// Entry size claimed.
        entry_size: u32,
    },
    /// `my_lba` is not where the header was read from.
    #[error("header says it is at LBA {found} but was read from LBA {expected}")]
    MyLba {
        /// What the header says.
        found: u64,
        /// Where it was read.
        expected: u64,
    },
    /// The usable range is inverted or extends past the disk.
    #[error("usable LBA range {first}..={last} is inverted or past the last LBA {disk_last}")]
    UsableRange {
        /// First usable LBA.
        first: u64,
        /// Last usable LBA.
        last: u64,
        /// The disk's last LBA.
        disk_last: u64,
    },
    /// The entry array lies outside the disk, at LBA 0 or over its own header.
    #[error("partition entry array at LBA {lba} ({sectors} sectors) does not fit on the disk")]
    ArrayPlacement {
        /// Array start LBA.
        lba: u64,
        /// Sectors it covers.
        sectors: u64,
    },
    /// Entry array CRC32 mismatch.
    #[error(
        "partition entry array CRC32 is {stored:#010x} but the array hashes to {computed:#010x}"
    )]
    ArrayCrc {
        /// Stored CRC (in the header).
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
}

/// Which GPT copy a table was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GptCopy {
    /// Header at LBA 1.
    Primary,
    /// Header at the last LBA.
    Backup,
}

/// A used entry with its Linux partition number (its 1-based slot in the array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NumberedEntry {
    /// Slot + 1, as Linux numbers GPT partitions (`sda3` is the third slot).
    pub number: u32,
    /// The entry.
    pub entry: GptEntry,
}

/// A GPT as read from a disk.
#[derive(Debug, Clone, Serialize)]
pub struct Gpt {
    /// Logical sector size used.
    pub sector_size: u32,
    /// Last LBA of the disk.
    pub last_lba: u64,
    /// The copy the entries come from.
    pub used: GptCopy,
    /// The header of that copy.
    pub header: GptHeader,
    /// Why the primary copy is unusable, if it is.
    pub primary_defect: Option<GptDefect>,
    /// Why the backup copy is unusable, if it is.
    pub backup_defect: Option<GptDefect>,
    /// Where the backup header was found (or last looked for).
    pub backup_lba: u64,
    /// The used (non-nil type) entries, in slot order.
    pub entries: Vec<NumberedEntry>,
    /// Problems seen.
    pub findings: Vec<Finding>,
}

/// The logical sector size a GPT was written with: the first of 512 and 4096 at which an
/// `EFI PART` signature sits at LBA 1, or else at the last LBA (a damaged primary). `None` when
/// there is no GPT signature at any of those places.
pub fn detect_sector_size(disk: &dyn ReadAt) -> Result<Option<u32>, PartitionError> {
    Ok(locate_signature(disk)?.map(|(ss, _)| ss))
}

/// Like [`detect_sector_size`], also saying at which LBA the signature was seen (1 or the
/// last LBA).
pub fn locate_signature(disk: &dyn ReadAt) -> Result<Option<(u32, u64)>, PartitionError> {
    let len = disk.len();
    for ss in PROBED_SECTOR_SIZES {
        if has_signature_at(disk, u64::from(ss))? {
            return Ok(Some((ss, 1)));
        }
    }
    for ss in PROBED_SECTOR_SIZES {
        let ss64 = u64::from(ss);
        let sectors = len / ss64;
        if sectors >= 3 && has_signature_at(disk, (sectors - 1) * ss64)? {
            return Ok(Some((ss, sectors - 1)));
        }
    }
    Ok(None)
}

fn has_signature_at(disk: &dyn ReadAt, offset: u64) -> Result<bool, PartitionError> {
    match offset.checked_add(8) {
        Some(end) if end <= disk.len() => {
            let mut sig = [0u8; 8];
            read_exact(disk, &mut sig, offset, "GPT signature")?;
            Ok(sig == header::SIGNATURE)
        }
        _ => Ok(false),
    }
}

/// One copy as read: the header when it is good on its own (so its `alternate_lba` can be
/// trusted), and the array or the reason the copy is unusable.
struct CopyRead {
    header: Option<GptHeader>,
    outcome: Result<Vec<u8>, GptDefect>,
}

impl CopyRead {
    fn bad(defect: GptDefect) -> Self {
        CopyRead {
            header: None,
            outcome: Err(defect),
        }
    }

    fn good(&self) -> Option<(&GptHeader, &[u8])> {
        match (&self.header, &self.outcome) {
            (Some(h), Ok(a)) => Some((h, a)),
            _ => None,
        }
    }
}

fn read_copy(
    disk: &dyn ReadAt,
    ss: u32,
    lba: u64,
    last_lba: u64,
) -> Result<CopyRead, PartitionError> {
    let ss64 = u64::from(ss);
    let beyond = GptDefect::BeyondDisk { lba, last_lba };
    if lba == 0 || lba > last_lba {
        return Ok(CopyRead::bad(beyond));
    }
    let Some(offset) = lba.checked_mul(ss64) else {
        return Ok(CopyRead::bad(beyond));
    };
    let mut sector = vec![0u8; ss as usize];
    read_exact(disk, &mut sector, offset, "GPT header")?;
    let header = match GptHeader::parse(&sector)
        .and_then(|h| h.check_placement(lba, last_lba, ss).map(|()| h))
    {
        Ok(h) => h,
        Err(d) => return Ok(CopyRead::bad(d)),
    };
    // check_placement put the array inside the disk; parse capped it at MAX_ARRAY_BYTES.
    // parse() capped the array at MAX_ARRAY_BYTES and check_placement() put it inside the
    // disk; both are re-checked here so that this function stands on its own.
    let bytes = header.array_bytes();
    let array_offset = header.partition_entry_lba.checked_mul(ss64);
    let (Some(array_offset), Ok(bytes)) = (array_offset, usize::try_from(bytes)) else {
        return Ok(CopyRead::bad(GptDefect::ArrayPlacement {
            lba: header.partition_entry_lba,
            sectors: header.array_sectors(ss),
        }));
    };
    if bytes as u64 > header::MAX_ARRAY_BYTES {
        return Ok(CopyRead::bad(GptDefect::TooManyEntries {
            count: header.num_entries,
            entry_size: header.entry_size,
        }));
    }
    let mut array = vec![0u8; bytes];
    read_exact(disk, &mut array, array_offset, "GPT partition entry array")?;
    let computed = crc32fast::hash(&array);
    let outcome = if computed == header.entries_crc32 {
        Ok(array)
    } else {
        Err(GptDefect::ArrayCrc {
            stored: header.entries_crc32,
            computed,
        })
    };
    Ok(CopyRead {
        header: Some(header),
        outcome,
    })
}

fn defect_of(c: &CopyRead) -> Option<GptDefect> {
    c.outcome.as_ref().err().cloned()
}

/// Reads the GPT of `disk` with logical sector size `sector_size`.
///
/// Returns the table from the primary copy when it is valid, else from the backup, with
/// findings for everything wrong (see [`crate::rules`]). Fails with
/// [`PartitionError::GptUnreadable`] when neither copy is usable, and with
/// [`PartitionError::UnsupportedSectorSize`] unless `sector_size` is a power of two in
/// 512..=65536.
pub fn read_gpt(disk: &dyn ReadAt, sector_size: u32) -> Result<Gpt, PartitionError> {
    if !crate::is_supported_sector_size(sector_size) {
        return Err(PartitionError::UnsupportedSectorSize(sector_size));
    }
    let ss = sector_size;
    let ss64 = u64::from(ss);
    let sectors = disk.len() / ss64.max(1);
    let last_lba = sectors.saturating_sub(1);
    let mut findings = Vec::new();

    let primary = read_copy(disk, ss, 1, last_lba)?;

    // The backup is where the primary says, if the primary header can be trusted; else (or if
    // nothing good is there) at the last LBA, where it must be.
    let hinted = primary
        .header
        .as_ref()
        .map(|h| h.alternate_lba)
        .filter(|&a| a != 1 && a <= last_lba);
    let mut backup_lba = hinted.unwrap_or(last_lba);
    let mut backup = read_copy(disk, ss, backup_lba, last_lba)?;
    if backup.good().is_none() && backup_lba != last_lba {
        let at_end = read_copy(disk, ss, last_lba, last_lba)?;
        if at_end.good().is_some() {
            backup = at_end;
            backup_lba = last_lba;
        }
    }

    let (used, header, array) = match (primary.good(), backup.good()) {
        (Some((h, a)), _) => (GptCopy::Primary, h.clone(), a),
        (None, Some((h, a))) => (GptCopy::Backup, h.clone(), a),
        (None, None) => {
            return Err(PartitionError::GptUnreadable {
                sector_size: ss,
                primary: defect_of(&primary).unwrap_or(GptDefect::BadSignature),
                backup_lba,
                backup: defect_of(&backup).unwrap_or(GptDefect::BadSignature),
            })
        }
    };
    let primary_defect = defect_of(&primary);
    let backup_defect = defect_of(&backup);

    if let Some(d) = &primary_defect {
        findings.push(
            finding(
                rules::GPT_COPY_DAMAGED,
                Severity::Error,
                format!(
                    "The primary GPT is unusable ({d}); the backup at LBA {backup_lba} is good \
                     and was used. The Linux kernel does not fall back to the backup GPT unless \
                     booted with the `gpt` parameter, so the guest would see no partitions."
                ),
                format!("GPT header at LBA 1 (byte {ss64}), sector size {ss}"),
            )
            .with_remediation(
                "Rebuild the primary GPT from the backup, e.g. `sgdisk -e <disk>` \
                 (gdisk loads the good copy and rewrites both).",
            ),
        );
    }
    if let Some(d) = &backup_defect {
        findings.push(
            finding(
                rules::GPT_COPY_DAMAGED,
                Severity::Warning,
                format!(
                    "The backup GPT is unusable ({d}); the primary is good and was used, but \
                     nothing could recover the table if the primary were damaged."
                ),
                format!(
                    "backup GPT header at LBA {backup_lba} (byte {}), last LBA {last_lba}",
                    backup_lba.saturating_mul(ss64)
                ),
            )
            .with_remediation("Rewrite the backup GPT at the end of the disk: `sgdisk -e <disk>`."),
        );
    }

    placement_findings(&primary, &backup, backup_lba, last_lba, ss, &mut findings);

    if header.entry_size != header::BASE_ENTRY_SIZE {
        findings.push(finding(
            rules::GPT_COPY_DAMAGED,
            Severity::Error,
            format!(
                "GPT partition entries are {} bytes. The UEFI spec allows 128 x 2^n, but the \
                 Linux kernel and libblkid accept only 128-byte entries: the guest kernel would \
                 see no partitions (only libfdisk tools such as sfdisk read this table).",
                header.entry_size
            ),
            format!(
                "GPT header at LBA {} field SizeOfPartitionEntry",
                header.my_lba
            ),
        ));
    }

    let entry_size = header.entry_size as usize;
    let mut entries = Vec::new();
    for (slot, chunk) in array.chunks_exact(entry_size.max(1)).enumerate() {
        let Some(e) = GptEntry::parse(chunk) else {
            continue;
        };
        if !e.is_used() {
            continue;
        }
        let number = u32::try_from(slot).unwrap_or(u32::MAX).saturating_add(1);
        entries.push(NumberedEntry { number, entry: e });
    }
    entry_findings(&header, &mut entries, last_lba, ss, &mut findings);

    Ok(Gpt {
        sector_size: ss,
        last_lba,
        used,
        header,
        primary_defect,
        backup_defect,
        backup_lba,
        entries,
        findings,
    })
}

/// Where the copies are, and whether they agree.
fn placement_findings(
    primary: &CopyRead,
    backup: &CopyRead,
    backup_lba: u64,
    last_lba: u64,
    ss: u32,
    findings: &mut Vec<Finding>,
) {
    let p = primary.good().map(|(h, _)| h);
    let b = backup.good().map(|(h, _)| h);
    if let Some(p) = p {
        if p.alternate_lba != last_lba {
            findings.push(
                finding(
                    rules::GPT_COPY_DAMAGED,
                    Severity::Warning,
                    format!(
                        "The primary GPT header places the backup at LBA {}, but the last LBA \
                         of the virtual disk is {last_lba}: the disk was resized (or the table \
                         copied from another disk) without moving the backup GPT.",
                        p.alternate_lba
                    ),
                    format!("GPT header at LBA 1 field AlternateLBA, sector size {ss}"),
                )
                .with_remediation(
                    "Move the backup GPT to the end: `vhdprep fix --in-place <disk>` (raw image \
                     or fixed VHD), or `sgdisk -e <disk>` on a raw image (never on a VHD file: \
                     sgdisk takes its footer for the last sector and writes over it).",
                ),
            );
        }
    }
    if let Some(b) = b {
        if b.alternate_lba != 1 {
            findings.push(finding(
                rules::GPT_COPY_DAMAGED,
                Severity::Warning,
                format!(
                    "The backup GPT header's AlternateLBA is {}, not 1.",
                    b.alternate_lba
                ),
                format!("GPT header at LBA {backup_lba}"),
            ));
        }
        if backup_lba != last_lba && p.is_none_or(|p| p.alternate_lba == last_lba) {
            findings.push(finding(
                rules::GPT_COPY_DAMAGED,
                Severity::Warning,
                format!(
                    "The backup GPT header is at LBA {backup_lba}, not at the last LBA \
                     {last_lba} of the virtual disk."
                ),
                format!("GPT header at LBA {backup_lba}"),
            ));
        }
    }
    if let (Some(p), Some(b)) = (p, b) {
        let mut diffs = Vec::new();
        if p.disk_guid != b.disk_guid {
            diffs.push(format!("disk GUID {} vs {}", p.disk_guid, b.disk_guid));
        }
        if p.first_usable_lba != b.first_usable_lba || p.last_usable_lba != b.last_usable_lba {
            diffs.push(format!(
                "usable range {}..={} vs {}..={}",
                p.first_usable_lba, p.last_usable_lba, b.first_usable_lba, b.last_usable_lba
            ));
        }
        if p.num_entries != b.num_entries || p.entry_size != b.entry_size {
            diffs.push(format!(
                "entries {} x {} vs {} x {}",
                p.num_entries, p.entry_size, b.num_entries, b.entry_size
            ));
        }
        if p.entries_crc32 != b.entries_crc32 {
            diffs.push(format!(
                "entry array CRC32 {:#010x} vs {:#010x}",
                p.entries_crc32, b.entries_crc32
            ));
        }
        if !diffs.is_empty() {
            findings.push(
                finding(
                    rules::GPT_COPY_DAMAGED,
                    Severity::Warning,
                    "The primary and backup GPT disagree; the primary was used.",
                    format!("LBA 1 vs LBA {backup_lba}: {}", diffs.join("; ")),
                )
                .with_remediation(
                    "Rewrite the backup from the primary: `sgdisk -e <disk>` (check the \
                     partitions first).",
                ),
            );
        }
    }
}

/// Per-entry checks: inverted entries are dropped, entries past the disk or outside the
/// usable range are kept and reported. Overlaps are checked on the unified table.
fn entry_findings(
    header: &GptHeader,
    entries: &mut Vec<NumberedEntry>,
    last_lba: u64,
    ss: u32,
    findings: &mut Vec<Finding>,
) {
    entries.retain(|ne| {
        let e = &ne.entry;
        let fits_bytes = e
            .last_lba
            .checked_add(1)
            .and_then(|end| end.checked_mul(u64::from(ss)))
            .is_some();
        if e.sectors().is_none() || !fits_bytes {
            findings.push(finding(
                rules::PARTITION_LAYOUT,
                Severity::Error,
                format!(
                    "GPT partition {} is invalid: first LBA {} > last LBA {} (or out of range); \
                     it is ignored.",
                    ne.number, e.first_lba, e.last_lba
                ),
                format!(
                    "GPT entry {} in the array at LBA {}",
                    ne.number, header.partition_entry_lba
                ),
            ));
            return false;
        }
        true
    });
    for ne in entries.iter() {
        let e = &ne.entry;
        if e.last_lba > last_lba {
            findings.push(finding(
                rules::PARTITION_LAYOUT,
                Severity::Error,
                format!(
                    "GPT partition {} (LBA {}..={}) extends past the end of the disk (last LBA \
                     {last_lba}); the Linux kernel ignores such a partition.",
                    ne.number, e.first_lba, e.last_lba
                ),
                format!("GPT entry {}", ne.number),
            ));
        } else if e.first_lba < header.first_usable_lba || e.last_lba > header.last_usable_lba {
            findings.push(finding(
                rules::PARTITION_LAYOUT,
                Severity::Warning,
                format!(
                    "GPT partition {} (LBA {}..={}) lies outside the usable range {}..={} and \
                     may overlap the GPT structures.",
                    ne.number,
                    e.first_lba,
                    e.last_lba,
                    header.first_usable_lba,
                    header.last_usable_lba
                ),
                format!("GPT entry {}", ne.number),
            ));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
