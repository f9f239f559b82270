//! The partition layer of vhdprep: what partitions the *virtual* disk holds, read strictly and
//! without panicking on any input.
//!
//! - [`read_partitions`]: one call from a [`ReadAt`] (the virtual disk, i.e. the image minus
//!   any VHD footer) to a [`PartitionTable`]: GPT when LBA 0 holds a protective (or hybrid) MBR,
//!   MBR otherwise, [`TableKind::None`] when there is no table (not an error).
//! - [`mbr`]: the MBR, protective/hybrid detection and the bounded EBR chain.
//! - [`gpt`]: the GPT header, entries, both copies with their CRCs, sector-size detection.
//! - [`types`]: the partition-type catalogue and [`PartitionKind`].
//! - [`guid`]: mixed-endian GUIDs; uppercase text like sgdisk/sfdisk, lowercase on request.
//! - [`rules`]: the rule IDs and severities of the findings this crate reports.
//!
//! Problems that leave a usable table are [`Finding`]s in
//! [`PartitionTable::findings`]; only an unreadable disk or a GPT with no usable copy is a
//! [`PartitionError`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod gpt;
pub mod guid;
pub mod mbr;
pub mod rules;
mod table;
#[cfg(test)]
mod testutil;
pub mod types;

pub use error::PartitionError;
pub use gpt::{GptCopy, GptDefect};
pub use guid::Guid;
pub use table::{mbr_partuuid, GptInfo, MbrInfo, Partition, PartitionTable, TableKind};
pub use types::{Architecture, PartitionKind, PartitionType};

use error::read_exact;
use mbr::Mbr;
use rules::finding;
use vhdprep_disk::ReadAt;
use vhdprep_finding::{Finding, Severity};

/// Options for [`read_partitions_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// The logical sector size. `None` (the default) detects it: 512 or 4096 for GPT (where the
    /// `EFI PART` signature is), 512 for MBR (as `sfdisk` assumes for image files).
    pub sector_size: Option<u32>,
}

/// Reads the partition table of a virtual disk, detecting the sector size.
pub fn read_partitions(disk: &dyn ReadAt) -> Result<PartitionTable, PartitionError> {
    read_partitions_with(disk, ReadOptions::default())
}

/// Reads the partition table of a virtual disk with explicit options.
pub fn read_partitions_with(
    disk: &dyn ReadAt,
    options: ReadOptions,
) -> Result<PartitionTable, PartitionError> {
    if let Some(ss) = options.sector_size {
        if !is_supported_sector_size(ss) {
            return Err(PartitionError::UnsupportedSectorSize(ss));
        }
    }
    let disk_size = disk.len();
    let gpt_signature = gpt::locate_signature(disk)?;
    let gpt_sector_size = gpt_signature.map(|(ss, _)| ss);
    let mut findings = Vec::new();

    let mbr = if disk_size >= 512 {
        let mut sector = [0u8; 512];
        read_exact(disk, &mut sector, 0, "MBR")?;
        Mbr::parse(&sector)
    } else {
        None
    };

    match mbr {
        Some(m) if m.has_protective_entry() => {
            let ss = options.sector_size.or(gpt_sector_size).unwrap_or(512);
            read_gpt_table(disk, ss, m, findings)
        }
        Some(m) if m.has_valid_boot_indicators() => {
            let ss = options.sector_size.unwrap_or(512);
            if let Some((gss, lba)) = gpt_signature {
                findings.push(finding(
                    rules::MBR_STRUCTURE,
                    Severity::Warning,
                    "A GPT header is present but the MBR has no protective (0xEE) entry: Linux \
                     and sfdisk use the MBR and ignore the GPT (a leftover from an earlier \
                     table?).",
                    format!("EFI PART signature at LBA {lba} (sector size {gss}); MBR at LBA 0"),
                ));
            }
            read_mbr_table(disk, ss, m, findings)
        }
        other => {
            let ss = options.sector_size.or(gpt_sector_size).unwrap_or(512);
            let (what, evidence) = match (&other, gpt_signature) {
                (_, Some((gss, lba))) => (
                    "A GPT header is present, but LBA 0 holds no protective MBR, so Linux does \
                     not recognise the table (it would need the `gpt` boot parameter)."
                        .to_string(),
                    format!("EFI PART signature at LBA {lba} (sector size {gss}); no valid MBR at LBA 0"),
                ),
                (Some(_), None) => (
                    "Sector 0 ends in 55AA but has boot indicators other than 0x00/0x80: it is \
                     not a partition table (probably a filesystem boot sector)."
                        .to_string(),
                    "LBA 0 bytes 446..510".to_string(),
                ),
                (None, None) if disk_size < 512 => (
                    format!("The disk ({disk_size} bytes) is smaller than one sector."),
                    format!("disk size {disk_size}"),
                ),
                (None, None) => (
                    "The disk has no partition table (no 55AA signature at LBA 0, no GPT)."
                        .to_string(),
                    "LBA 0 bytes 510..512".to_string(),
                ),
            };
            findings.push(
                finding(rules::TABLE_UNREADABLE, Severity::Error, what, evidence)
                    .with_remediation("Partition the image (GPT for Gen2, MBR or GPT with a BIOS boot partition for Gen1)."),
            );
            Ok(PartitionTable {
                kind: TableKind::None,
                sector_size: ss,
                disk_size,
                disk_guid: None,
                mbr_signature: None,
                partitions: Vec::new(),
                mbr: None,
                gpt: None,
                findings,
            })
        }
    }
}

/// Sector sizes the readers accept: powers of two from 512 to 65536.
pub(crate) fn is_supported_sector_size(ss: u32) -> bool {
    (512..=65536).contains(&ss) && ss.is_power_of_two()
}

fn mbr_primaries(m: &Mbr, ss: u32) -> Vec<Partition> {
    m.entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_used())
        .filter_map(|(i, e)| {
            Partition::from_mbr(
                i as u32 + 1,
                u64::from(e.start_lba),
                e,
                m.disk_signature,
                ss,
                false,
            )
        })
        .collect()
}

fn read_gpt_table(
    disk: &dyn ReadAt,
    ss: u32,
    m: Mbr,
    mut findings: Vec<Finding>,
) -> Result<PartitionTable, PartitionError> {
    let g = gpt::read_gpt(disk, ss)?;
    let disk_sectors = disk.len() / u64::from(ss);

    if !m.has_kernel_valid_protective_entry() {
        findings.push(finding(
            rules::MBR_STRUCTURE,
            Severity::Error,
            "The protective MBR's 0xEE entry does not start at LBA 1: the Linux kernel rejects \
             such a protective MBR and would see no partitions.",
            "MBR at LBA 0, 0xEE entry StartingLBA",
        ));
    }
    if m.is_hybrid() {
        let others: Vec<String> = m
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.type_byte != 0 && e.type_byte != mbr::PROTECTIVE_TYPE)
            .map(|(i, e)| {
                format!(
                    "{}: type {:#04x} LBA {}+{}",
                    i + 1,
                    e.type_byte,
                    e.start_lba,
                    e.sectors
                )
            })
            .collect();
        findings.push(finding(
            rules::MBR_STRUCTURE,
            Severity::Info,
            "Hybrid MBR: besides the 0xEE entry, the MBR describes partitions of its own. BIOS \
             boot code and MBR-only tools use those; Linux uses the GPT. Both must agree.",
            format!("MBR at LBA 0: {}", others.join("; ")),
        ));
    } else if let Some(e) = m
        .entries
        .iter()
        .find(|e| e.type_byte == mbr::PROTECTIVE_TYPE)
    {
        let expected = u32::try_from(disk_sectors.saturating_sub(1)).unwrap_or(u32::MAX);
        if e.sectors != expected && e.sectors != u32::MAX {
            findings.push(finding(
                rules::MBR_STRUCTURE,
                Severity::Info,
                format!(
                    "The protective MBR covers {} sectors, not the whole disk ({expected}); \
                     harmless for Linux, but the disk was probably resized.",
                    e.sectors
                ),
                "MBR at LBA 0, 0xEE entry SizeInLBA",
            ));
        }
    }
    findings.extend(g.findings.iter().cloned());

    let mut partitions: Vec<Partition> = g
        .entries
        .iter()
        .filter_map(|ne| Partition::from_gpt(ne, ss))
        .collect();
    partitions.sort_by_key(|p| p.number);
    let refs: Vec<&Partition> = partitions.iter().collect();
    findings.extend(table::overlap_findings(&refs, "GPT"));

    Ok(PartitionTable {
        kind: TableKind::Gpt,
        sector_size: ss,
        disk_size: disk.len(),
        disk_guid: Some(g.header.disk_guid),
        mbr_signature: Some(m.disk_signature),
        partitions,
        mbr: Some(MbrInfo {
            boot_code_present: m.boot_code_present,
            disk_signature: m.disk_signature,
            protective: true,
            hybrid: m.is_hybrid(),
            primaries: mbr_primaries(&m, ss),
        }),
        gpt: Some(GptInfo {
            used: g.used,
            header: g.header,
            primary_defect: g.primary_defect,
            backup_defect: g.backup_defect,
            backup_lba: g.backup_lba,
            last_lba: g.last_lba,
        }),
        findings,
    })
}

fn read_mbr_table(
    disk: &dyn ReadAt,
    ss: u32,
    m: Mbr,
    mut findings: Vec<Finding>,
) -> Result<PartitionTable, PartitionError> {
    let disk_sectors = disk.len() / u64::from(ss);
    let primaries = mbr_primaries(&m, ss);
    let mut partitions = primaries.clone();

    for p in &primaries {
        if p.start_lba == 0 {
            findings.push(finding(
                rules::PARTITION_LAYOUT,
                Severity::Error,
                format!(
                    "MBR partition {} starts at LBA 0, over the MBR itself.",
                    p.number
                ),
                format!("MBR entry {}", p.number),
            ));
        }
    }

    let mut extended = m
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_used() && e.is_extended());
    let mut logicals = Vec::new();
    if let Some((idx, ext)) = extended.next() {
        for (other, _) in extended {
            findings.push(finding(
                rules::MBR_STRUCTURE,
                Severity::Warning,
                format!(
                    "MBR entries {} and {} are both extended partitions; only the first is \
                     followed (as sfdisk does).",
                    idx + 1,
                    other + 1
                ),
                "MBR at LBA 0",
            ));
        }
        let ext_start = u64::from(ext.start_lba);
        let ext_end = ext_start + u64::from(ext.sectors) - 1;
        for l in mbr::read_logicals(disk, ss, ext, &mut findings)? {
            let Some(p) =
                Partition::from_mbr(l.number, l.start_lba, &l.entry, m.disk_signature, ss, true)
            else {
                continue;
            };
            if p.start_lba <= l.ebr_lba || p.end_lba > ext_end {
                findings.push(finding(
                    rules::PARTITION_LAYOUT,
                    Severity::Warning,
                    format!(
                        "Logical partition {} (LBA {}..={}) is not inside its part of the extended \
                         partition (EBR at LBA {}, extended LBA {ext_start}..={ext_end}).",
                        p.number, p.start_lba, p.end_lba, l.ebr_lba
                    ),
                    format!("EBR at LBA {}", l.ebr_lba),
                ));
            }
            logicals.push(p);
        }
    }
    partitions.extend(logicals.iter().cloned());

    for p in &partitions {
        if p.end_lba >= disk_sectors {
            findings.push(finding(
                rules::PARTITION_LAYOUT,
                Severity::Error,
                format!(
                    "MBR partition {} (LBA {}..={}) extends past the end of the disk ({} sectors).",
                    p.number, p.start_lba, p.end_lba, disk_sectors
                ),
                format!("partition {}", p.number),
            ));
        }
    }

    // The extended container overlaps its logicals by design: check primaries among
    // themselves, and data partitions (non-extended primaries + logicals) among themselves.
    let prim_refs: Vec<&Partition> = primaries.iter().collect();
    findings.extend(table::overlap_findings(&prim_refs, "MBR"));
    let data_refs: Vec<&Partition> = primaries
        .iter()
        .filter(|p| p.kind != PartitionKind::Extended)
        .chain(logicals.iter())
        .collect();
    if !logicals.is_empty() {
        let more: Vec<Finding> = table::overlap_findings(&data_refs, "MBR")
            .into_iter()
            .filter(|f| !findings.contains(f))
            .collect();
        findings.extend(more);
    }

    Ok(PartitionTable {
        kind: TableKind::Mbr,
        sector_size: ss,
        disk_size: disk.len(),
        disk_guid: None,
        mbr_signature: Some(m.disk_signature),
        partitions,
        mbr: Some(MbrInfo {
            boot_code_present: m.boot_code_present,
            disk_signature: m.disk_signature,
            protective: false,
            hybrid: false,
            primaries,
        }),
        gpt: None,
        findings,
    })
}

#[cfg(test)]
mod tests;
