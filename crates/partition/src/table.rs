//! The unified result: [`PartitionTable`] and [`Partition`], whatever the table type.

use crate::gpt::header::GptHeader;
use crate::gpt::{GptCopy, GptDefect, NumberedEntry};
use crate::guid::Guid;
use crate::mbr::MbrEntry;
use crate::rules::{self, finding};
use crate::types::{PartitionKind, PartitionType};
use serde::Serialize;
use std::ops::Range;
use vhdprep_disk::{ReadAt, Slice};
use vhdprep_finding::{Finding, Severity};

/// Which partition table a disk carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// MBR (DOS) partitioning, possibly with logical partitions.
    Mbr,
    /// GUID Partition Table (with a protective or hybrid MBR).
    Gpt,
    /// No partition table Linux would recognise.
    None,
}

/// One partition, in Linux's numbering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// Linux partition number: GPT slot + 1; MBR primaries 1-4, logicals from 5.
    pub number: u32,
    /// First sector.
    pub start_lba: u64,
    /// Last sector (inclusive).
    pub end_lba: u64,
    /// First byte (`start_lba × sector size`).
    pub start_bytes: u64,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Type GUID or type byte.
    #[serde(rename = "type")]
    pub partition_type: PartitionType,
    /// Catalogue name of the type, `"unknown"` if not catalogued.
    pub type_name: &'static str,
    /// Classification of the type.
    pub kind: PartitionKind,
    /// Linux PARTUUID, lowercase as `blkid` prints it: the GPT unique GUID, or for MBR
    /// `<disk signature as 8 hex digits>-<number as 2 hex digits>` (`12345678-05`).
    pub partuuid: String,
    /// GPT unique partition GUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_guid: Option<Guid>,
    /// GPT partition name (PARTLABEL); `None` for MBR and for empty names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// MBR boot indicator 0x80, or GPT attribute bit 2 (legacy BIOS bootable).
    pub bootable: bool,
    /// GPT attribute bits; for MBR the boot indicator byte.
    pub attributes: u64,
    /// An MBR logical partition (inside the extended partition).
    pub logical: bool,
}

impl Partition {
    /// Byte range on the virtual disk.
    pub fn byte_range(&self) -> Range<u64> {
        self.start_bytes..self.start_bytes.saturating_add(self.size_bytes)
    }

    /// Number of sectors.
    pub fn sectors(&self) -> u64 {
        self.end_lba
            .saturating_sub(self.start_lba)
            .saturating_add(1)
    }

    /// A reader for the partition's bytes.
    pub fn slice<R: ReadAt>(&self, disk: R) -> Slice<R> {
        Slice::new(disk, self.start_bytes, self.size_bytes)
    }

    fn build(
        number: u32,
        start_lba: u64,
        sectors: u64,
        sector_size: u32,
        partition_type: PartitionType,
        partuuid: String,
    ) -> Option<Partition> {
        let ss = u64::from(sector_size);
        let end_lba = start_lba.checked_add(sectors.checked_sub(1)?)?;
        let start_bytes = start_lba.checked_mul(ss)?;
        let size_bytes = sectors.checked_mul(ss)?;
        start_bytes.checked_add(size_bytes)?;
        Some(Partition {
            number,
            start_lba,
            end_lba,
            start_bytes,
            size_bytes,
            partition_type,
            type_name: partition_type.name(),
            kind: partition_type.kind(),
            partuuid,
            unique_guid: None,
            name: None,
            bootable: false,
            attributes: 0,
            logical: false,
        })
    }

    /// From a used GPT entry. `None` if its range cannot be expressed in bytes.
    pub(crate) fn from_gpt(ne: &NumberedEntry, sector_size: u32) -> Option<Partition> {
        let e = &ne.entry;
        let mut p = Partition::build(
            ne.number,
            e.first_lba,
            e.sectors()?,
            sector_size,
            PartitionType::Gpt(e.type_guid),
            e.unique_guid.to_lowercase_string(),
        )?;
        p.unique_guid = Some(e.unique_guid);
        p.name = (!e.name.is_empty()).then(|| e.name.clone());
        p.attributes = e.attributes;
        p.bootable = e.attributes & crate::gpt::entry::attr::LEGACY_BIOS_BOOTABLE != 0;
        Some(p)
    }

    /// From a used MBR entry whose absolute first LBA is `start_lba`.
    pub(crate) fn from_mbr(
        number: u32,
        start_lba: u64,
        e: &MbrEntry,
        disk_signature: u32,
        sector_size: u32,
        logical: bool,
    ) -> Option<Partition> {
        let mut p = Partition::build(
            number,
            start_lba,
            u64::from(e.sectors),
            sector_size,
            PartitionType::Mbr(e.type_byte),
            mbr_partuuid(disk_signature, number),
        )?;
        p.bootable = e.is_bootable();
        p.attributes = u64::from(e.status);
        p.logical = logical;
        Some(p)
    }
}

/// The Linux PARTUUID of MBR partition `number`: `ssssssss-nn`, lowercase hex.
pub fn mbr_partuuid(disk_signature: u32, number: u32) -> String {
    format!("{disk_signature:08x}-{number:02x}")
}

/// What the MBR (LBA 0) holds, for MBR disks and for the protective/hybrid MBR of GPT disks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MbrInfo {
    /// Bytes 0..440 are not all zero (BIOS boot code is installed).
    pub boot_code_present: bool,
    /// The disk signature (offset 440).
    pub disk_signature: u32,
    /// An 0xEE entry is present (the disk is GPT).
    pub protective: bool,
    /// 0xEE plus other typed entries: a hybrid MBR.
    pub hybrid: bool,
    /// The used primary entries as partitions (numbers 1-4), including 0xEE and extended
    /// entries. For MBR disks they are also in [`PartitionTable::partitions`].
    pub primaries: Vec<Partition>,
}

/// GPT details: which copy was used and the state of both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptInfo {
    /// The copy the partitions come from.
    pub used: GptCopy,
    /// Its header.
    pub header: GptHeader,
    /// Why the primary copy is unusable, if it is.
    pub primary_defect: Option<GptDefect>,
    /// Why the backup copy is unusable, if it is.
    pub backup_defect: Option<GptDefect>,
    /// Where the backup header was found (or last looked for).
    pub backup_lba: u64,
    /// Last LBA of the disk.
    pub last_lba: u64,
}

/// A disk's partition table, unified over MBR and GPT, with the findings about it.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionTable {
    /// MBR, GPT or none.
    pub kind: TableKind,
    /// Logical sector size the table was read with.
    pub sector_size: u32,
    /// Size of the virtual disk in bytes.
    pub disk_size: u64,
    /// GPT disk GUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_guid: Option<Guid>,
    /// MBR disk signature (also present on GPT disks, in the protective MBR).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mbr_signature: Option<u32>,
    /// The partitions, by number.
    pub partitions: Vec<Partition>,
    /// LBA 0 details, when it holds an MBR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mbr: Option<MbrInfo>,
    /// GPT details, for GPT disks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpt: Option<GptInfo>,
    /// Problems and facts seen while reading.
    pub findings: Vec<Finding>,
}

impl PartitionTable {
    /// The disk identifier as `sfdisk` prints it: the GPT disk GUID (uppercase) or the MBR
    /// signature as `0x` + 8 hex digits.
    pub fn disk_id(&self) -> Option<String> {
        match self.kind {
            TableKind::Gpt => self.disk_guid.map(|g| g.to_string()),
            TableKind::Mbr => self.mbr_signature.map(|s| format!("{s:#010x}")),
            TableKind::None => None,
        }
    }

    /// The partition with Linux number `number`.
    pub fn partition(&self, number: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.number == number)
    }

    /// Partitions of a kind.
    pub fn partitions_of_kind(&self, kind: PartitionKind) -> impl Iterator<Item = &Partition> {
        self.partitions.iter().filter(move |p| p.kind == kind)
    }
}

/// At most this many overlap findings are listed; the rest are summed up.
const MAX_OVERLAP_FINDINGS: usize = 16;

/// Findings for every pair of partitions in `parts` whose sector ranges overlap (sweep over
/// the start-sorted list against the furthest end seen, so O(n log n)).
pub(crate) fn overlap_findings(parts: &[&Partition], table: &str) -> Vec<Finding> {
    let mut sorted: Vec<&Partition> = parts.to_vec();
    sorted.sort_by_key(|p| (p.start_lba, p.number));
    let mut out = Vec::new();
    let mut extra = 0usize;
    let mut furthest: Option<&Partition> = None;
    for p in sorted {
        if let Some(f) = furthest {
            if p.start_lba <= f.end_lba {
                if out.len() < MAX_OVERLAP_FINDINGS {
                    out.push(
                        finding(
                            rules::PARTITION_LAYOUT,
                            Severity::Error,
                            format!(
                                "{table} partitions {} and {} overlap: writing one corrupts the \
                                 other.",
                                f.number, p.number
                            ),
                            format!(
                                "partition {} LBA {}..={}, partition {} LBA {}..={}",
                                f.number, f.start_lba, f.end_lba, p.number, p.start_lba, p.end_lba
                            ),
                        )
                        .with_remediation("Fix the partition table (sgdisk/sfdisk) before use."),
                    );
                } else {
                    extra += 1;
                }
            }
        }
        if furthest.is_none_or(|f| p.end_lba > f.end_lba) {
            furthest = Some(p);
        }
    }
    if extra > 0 {
        out.push(finding(
            rules::PARTITION_LAYOUT,
            Severity::Error,
            format!("{extra} more overlapping {table} partition pairs were not listed."),
            "partition table",
        ));
    }
    out
}
