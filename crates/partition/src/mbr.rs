//! The Master Boot Record (LBA 0) and the EBR chain of an extended partition.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 440 | boot code (all zero: no BIOS boot code) |
//! | 440 | 4 | disk signature (little-endian; the `label-id` of sfdisk, the first half of MBR PARTUUIDs) |
//! | 444 | 2 | reserved |
//! | 446 | 4 × 16 | primary partition entries |
//! | 510 | 2 | `55 AA` |
//!
//! Entry: status (0x80 bootable, 0x00 not, anything else: not a partition table), CHS of the
//! first sector (3), type byte, CHS of the last sector (3), first LBA (u32 LE), sector count
//! (u32 LE). An entry is in use when its sector count is not zero (as Linux and libfdisk).
//!
//! An extended partition (type 0x05, 0x0F or 0x85) holds a chain of EBRs, each an MBR-shaped
//! sector whose first data entry is a logical partition (start relative to that EBR) and whose
//! first extended entry links to the next EBR (start relative to the extended partition).
//! Logical partitions are numbered from 5 in chain order, as Linux does; EBRs without a data
//! entry take no number. The chain is bounded: [`MAX_LOGICAL`] partitions, and an EBR visited
//! twice ends it with a finding.
//!
//! The chain semantics follow libfdisk (`sfdisk`): one data entry and one link per EBR, extra
//! entries reported and ignored; only the first extended primary is followed.

use crate::error::{read_exact, PartitionError};
use crate::rules::{self, finding};
use crate::types::is_mbr_extended;
use serde::Serialize;
use vhdprep_disk::ReadAt;
use vhdprep_finding::{Finding, Severity};

/// Bytes of boot code at the start of the MBR.
pub const BOOT_CODE_LEN: usize = 440;
/// The boot signature at offset 510.
pub const BOOT_SIGNATURE: [u8; 2] = [0x55, 0xAA];
/// Most logical partitions followed in an EBR chain.
pub const MAX_LOGICAL: usize = 128;
/// The protective (GPT) type byte.
pub const PROTECTIVE_TYPE: u8 = 0xEE;
/// Offset of the first partition entry.
pub const ENTRIES_OFFSET: usize = 446;

/// One 16-byte MBR/EBR partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct MbrEntry {
    /// Boot indicator: 0x80 bootable, 0x00 not.
    pub status: u8,
    /// CHS address of the first sector (raw).
    pub chs_first: [u8; 3],
    /// Partition type byte.
    pub type_byte: u8,
    /// CHS address of the last sector (raw).
    pub chs_last: [u8; 3],
    /// First LBA (relative, inside EBRs).
    pub start_lba: u32,
    /// Number of sectors.
    pub sectors: u32,
}

impl MbrEntry {
    /// Decodes an entry.
    pub fn parse(b: &[u8; 16]) -> MbrEntry {
        MbrEntry {
            status: b[0],
            chs_first: [b[1], b[2], b[3]],
            type_byte: b[4],
            chs_last: [b[5], b[6], b[7]],
            start_lba: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            sectors: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        }
    }

    /// Encodes an entry (for tests and future writers).
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = self.status;
        b[1..4].copy_from_slice(&self.chs_first);
        b[4] = self.type_byte;
        b[5..8].copy_from_slice(&self.chs_last);
        b[8..12].copy_from_slice(&self.start_lba.to_le_bytes());
        b[12..16].copy_from_slice(&self.sectors.to_le_bytes());
        b
    }

    /// In use: a non-zero sector count.
    pub fn is_used(&self) -> bool {
        self.sectors != 0
    }

    /// Boot indicator 0x80.
    pub fn is_bootable(&self) -> bool {
        self.status == 0x80
    }

    /// An extended-partition container type.
    pub fn is_extended(&self) -> bool {
        is_mbr_extended(self.type_byte)
    }
}

/// A decoded MBR (or EBR) sector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mbr {
    /// Some byte of the 440-byte boot code area is non-zero.
    pub boot_code_present: bool,
    /// The disk signature at offset 440.
    pub disk_signature: u32,
    /// The four entries.
    pub entries: [MbrEntry; 4],
}

fn entries_of(sector: &[u8; 512]) -> [MbrEntry; 4] {
    let mut entries = [MbrEntry::default(); 4];
    for (i, e) in entries.iter_mut().enumerate() {
        let mut raw = [0u8; 16];
        let off = ENTRIES_OFFSET + 16 * i;
        raw.copy_from_slice(&sector[off..off + 16]);
        *e = MbrEntry::parse(&raw);
    }
    entries
}

impl Mbr {
    /// Decodes the first 512 bytes of `sector`. `None` when they do not end in `55 AA` (or
    /// fewer than 512 bytes are given).
    pub fn parse(sector: &[u8]) -> Option<Mbr> {
        let s: &[u8; 512] = sector.get(..512)?.try_into().ok()?;
        if s[510..512] != BOOT_SIGNATURE {
            return None;
        }
        Some(Mbr {
            boot_code_present: s[..BOOT_CODE_LEN].iter().any(|&b| b != 0),
            disk_signature: u32::from_le_bytes([s[440], s[441], s[442], s[443]]),
            entries: entries_of(s),
        })
    }

    /// Every boot indicator is 0x00 or 0x80. Linux does not take a sector with any other value
    /// for a partition table (it is more likely a filesystem boot sector).
    pub fn has_valid_boot_indicators(&self) -> bool {
        self.entries.iter().all(|e| matches!(e.status, 0x00 | 0x80))
    }

    /// Some entry has type 0xEE: the disk is GPT (protective or hybrid MBR).
    pub fn has_protective_entry(&self) -> bool {
        self.entries.iter().any(|e| e.type_byte == PROTECTIVE_TYPE)
    }

    /// A 0xEE entry starting at LBA 1, as the Linux kernel requires of a protective MBR.
    pub fn has_kernel_valid_protective_entry(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.type_byte == PROTECTIVE_TYPE && e.start_lba == 1)
    }

    /// A 0xEE entry plus entries of other non-zero types (a hybrid MBR; the kernel's and
    /// libfdisk's definition).
    pub fn is_hybrid(&self) -> bool {
        self.has_protective_entry()
            && self
                .entries
                .iter()
                .any(|e| e.type_byte != PROTECTIVE_TYPE && e.type_byte != 0)
    }
}

/// A logical partition found in an EBR chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogicalPartition {
    /// Linux number (5, 6, ...).
    pub number: u32,
    /// The EBR that holds it.
    pub ebr_lba: u64,
    /// The raw entry (its `start_lba` is relative to `ebr_lba`).
    pub entry: MbrEntry,
    /// Absolute first LBA.
    pub start_lba: u64,
}

/// Follows the EBR chain of `extended` (a primary entry of an extended type) and returns its
/// logical partitions. `disk_sectors` bounds every read; findings go to `findings`.
pub fn read_logicals(
    disk: &dyn ReadAt,
    sector_size: u32,
    extended: &MbrEntry,
    findings: &mut Vec<Finding>,
) -> Result<Vec<LogicalPartition>, PartitionError> {
    let ss = u64::from(sector_size);
    let disk_sectors = disk.len() / ss.max(1);
    let ext_start = u64::from(extended.start_lba);
    let ext_end = ext_start + u64::from(extended.sectors); // exclusive; u32 + u32 fits in u64
    let mut logicals = Vec::new();
    let mut visited: Vec<u64> = Vec::new();
    let mut ebr = ext_start;
    let mut number = 5u32;
    let chain_error = |msg: String, ebr: u64| {
        finding(
            rules::MBR_STRUCTURE,
            Severity::Error,
            msg,
            format!("EBR at LBA {ebr} (byte {})", ebr.saturating_mul(ss)),
        )
    };
    loop {
        if visited.contains(&ebr) {
            findings.push(chain_error(
                format!(
                    "The EBR chain loops back to LBA {ebr}; it was followed for {} logical \
                     partitions and stopped.",
                    logicals.len()
                ),
                ebr,
            ));
            break;
        }
        if visited.len() >= MAX_LOGICAL {
            findings.push(chain_error(
                format!("The EBR chain is longer than {MAX_LOGICAL} links; it was cut there."),
                ebr,
            ));
            break;
        }
        visited.push(ebr);
        if ebr >= disk_sectors {
            findings.push(chain_error(
                format!(
                    "An EBR is linked at LBA {ebr}, past the end of the disk ({disk_sectors} \
                     sectors); the chain ends there."
                ),
                ebr,
            ));
            break;
        }
        let mut sector = [0u8; 512];
        read_exact(disk, &mut sector, ebr * ss, "EBR")?;
        if sector[510..512] != BOOT_SIGNATURE {
            // An empty extended partition often has an all-zero first EBR.
            let empty_first = ebr == ext_start && sector.iter().all(|&b| b == 0);
            if !empty_first {
                findings.push(chain_error(
                    format!(
                        "The EBR at LBA {ebr} has no 55AA signature; the chain ends there \
                         (Linux stops there too)."
                    ),
                    ebr,
                ));
            }
            break;
        }
        let entries = entries_of(&sector);
        let mut data = None;
        let mut link = None;
        for e in entries.iter().filter(|e| e.is_used()) {
            if e.is_extended() {
                if link.is_none() {
                    link = Some(*e);
                } else {
                    findings.push(finding(
                        rules::MBR_STRUCTURE,
                        Severity::Warning,
                        format!(
                            "The EBR at LBA {ebr} has more than one link; the first is followed."
                        ),
                        format!("EBR at LBA {ebr}"),
                    ));
                }
            } else if e.type_byte != 0 {
                if data.is_none() {
                    data = Some(*e);
                } else {
                    findings.push(finding(
                        rules::MBR_STRUCTURE,
                        Severity::Warning,
                        format!(
                            "The EBR at LBA {ebr} has more than one data entry; only the first is \
                             a logical partition (as sfdisk reads it)."
                        ),
                        format!("EBR at LBA {ebr}"),
                    ));
                }
            }
        }
        if let Some(d) = data {
            logicals.push(LogicalPartition {
                number,
                ebr_lba: ebr,
                entry: d,
                start_lba: ebr + u64::from(d.start_lba),
            });
            number += 1;
        }
        let Some(l) = link else { break };
        let next = ext_start + u64::from(l.start_lba);
        // A link to offset 0 (the first EBR) stays inside and is caught as a loop.
        if next >= ext_end {
            findings.push(chain_error(
                format!(
                    "The EBR at LBA {ebr} links to LBA {next}, outside the extended partition \
                     (LBA {ext_start}..{ext_end}); the chain ends there."
                ),
                ebr,
            ));
            break;
        }
        ebr = next;
    }
    Ok(logicals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{mbr_sector, put};

    fn entry(status: u8, type_byte: u8, start: u32, sectors: u32) -> MbrEntry {
        MbrEntry {
            status,
            type_byte,
            start_lba: start,
            sectors,
            ..Default::default()
        }
    }

    #[test]
    fn entry_round_trip_and_offsets() {
        let e = MbrEntry {
            status: 0x80,
            chs_first: [1, 2, 3],
            type_byte: 0x83,
            chs_last: [4, 5, 6],
            start_lba: 2048,
            sectors: 0x0102_0304,
        };
        let b = e.to_bytes();
        assert_eq!(b[0], 0x80);
        assert_eq!(b[4], 0x83);
        assert_eq!(&b[8..12], &[0x00, 0x08, 0, 0]);
        assert_eq!(&b[12..16], &[0x04, 0x03, 0x02, 0x01]);
        assert_eq!(MbrEntry::parse(&b), e);
        assert!(e.is_bootable() && e.is_used() && !e.is_extended());
    }

    #[test]
    fn parse_needs_the_signature() {
        let mut s = mbr_sector(0x1234_5678, false, &[entry(0, 0x83, 2048, 100)]);
        let m = Mbr::parse(&s).unwrap();
        assert_eq!(m.disk_signature, 0x1234_5678);
        assert!(!m.boot_code_present);
        assert_eq!(m.entries[0].type_byte, 0x83);
        assert!(!m.entries[1].is_used());
        s[511] = 0;
        assert_eq!(Mbr::parse(&s), None);
        assert_eq!(Mbr::parse(&s[..100]), None);
    }

    #[test]
    fn boot_code_and_indicators() {
        let mut s = mbr_sector(1, true, &[entry(0x80, 0x83, 2048, 100)]);
        let m = Mbr::parse(&s).unwrap();
        assert!(m.boot_code_present);
        assert!(m.has_valid_boot_indicators());
        s[ENTRIES_OFFSET] = 0x12;
        assert!(!Mbr::parse(&s).unwrap().has_valid_boot_indicators());
    }

    #[test]
    fn protective_and_hybrid() {
        let p = Mbr::parse(&mbr_sector(0, false, &[entry(0, 0xEE, 1, u32::MAX)])).unwrap();
        assert!(p.has_protective_entry());
        assert!(p.has_kernel_valid_protective_entry());
        assert!(!p.is_hybrid());
        let h = Mbr::parse(&mbr_sector(
            0,
            false,
            &[entry(0, 0xEE, 1, 2047), entry(0x80, 0xEF, 2048, 2048)],
        ))
        .unwrap();
        assert!(h.is_hybrid());
        let off = Mbr::parse(&mbr_sector(0, false, &[entry(0, 0xEE, 63, 100)])).unwrap();
        assert!(off.has_protective_entry());
        assert!(!off.has_kernel_valid_protective_entry());
        let plain = Mbr::parse(&mbr_sector(0, false, &[entry(0, 0x83, 2048, 10)])).unwrap();
        assert!(!plain.has_protective_entry() && !plain.is_hybrid());
    }

    /// A disk with an extended partition at `ext` (sectors `ext_len`) and EBRs written by
    /// `ebrs`: (ebr lba, data entry, link entry).
    fn chain_disk(
        sectors: u64,
        ext: u32,
        ext_len: u32,
        ebrs: &[(u64, Option<MbrEntry>, Option<MbrEntry>)],
    ) -> (Vec<u8>, MbrEntry) {
        let mut disk = vec![0u8; (sectors * 512) as usize];
        let ext_entry = entry(0, 0x05, ext, ext_len);
        put(&mut disk, 0, &mbr_sector(7, false, &[ext_entry]));
        for (lba, data, link) in ebrs {
            let entries: Vec<MbrEntry> = [*data, *link]
                .iter()
                .map(|e| e.unwrap_or_default())
                .collect();
            put(&mut disk, *lba * 512, &mbr_sector(0, false, &entries));
        }
        (disk, ext_entry)
    }

    #[test]
    fn follows_a_chain_and_numbers_from_5() {
        let (disk, ext) = chain_disk(
            400,
            100,
            300,
            &[
                (
                    100,
                    Some(entry(0, 0x83, 2, 20)),
                    Some(entry(0, 0x05, 50, 40)),
                ),
                (
                    150,
                    Some(entry(0, 0x82, 2, 30)),
                    Some(entry(0, 0x05, 100, 40)),
                ),
                // An EBR with a link but no data takes no number.
                (200, None, Some(entry(0, 0x05, 150, 40))),
                (250, Some(entry(0, 0x8e, 2, 10)), None),
            ],
        );
        let mut f = Vec::new();
        let l = read_logicals(&disk, 512, &ext, &mut f).unwrap();
        assert!(f.is_empty(), "{f:?}");
        let got: Vec<_> = l
            .iter()
            .map(|p| (p.number, p.ebr_lba, p.start_lba, p.entry.type_byte))
            .collect();
        assert_eq!(
            got,
            [
                (5, 100, 102, 0x83),
                (6, 150, 152, 0x82),
                (7, 250, 252, 0x8e)
            ]
        );
    }

    #[test]
    fn ebr_loop_is_detected() {
        // 100 -> 150 -> 100 -> ...
        let (disk, ext) = chain_disk(
            400,
            100,
            300,
            &[
                (
                    100,
                    Some(entry(0, 0x83, 2, 20)),
                    Some(entry(0, 0x05, 50, 40)),
                ),
                (
                    150,
                    Some(entry(0, 0x83, 2, 20)),
                    Some(entry(0, 0x05, 0, 40)),
                ),
            ],
        );
        let mut f = Vec::new();
        let l = read_logicals(&disk, 512, &ext, &mut f).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains("loops back to LBA 100"), "{f:?}");

        // 100 -> 150 -> 200 -> 150: a true loop inside the extended partition.
        let (disk, ext) = chain_disk(
            400,
            100,
            300,
            &[
                (
                    100,
                    Some(entry(0, 0x83, 2, 20)),
                    Some(entry(0, 0x05, 50, 40)),
                ),
                (
                    150,
                    Some(entry(0, 0x83, 2, 20)),
                    Some(entry(0, 0x05, 100, 40)),
                ),
                (
                    200,
                    Some(entry(0, 0x83, 2, 20)),
                    Some(entry(0, 0x05, 50, 40)),
                ),
            ],
        );
        let mut f = Vec::new();
        let l = read_logicals(&disk, 512, &ext, &mut f).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("loops back to LBA 150"), "{f:?}");
    }

    #[test]
    fn self_link_is_a_loop_not_a_hang() {
        let (disk, ext) = chain_disk(
            400,
            100,
            300,
            &[
                (
                    100,
                    Some(entry(0, 0x83, 2, 20)),
                    Some(entry(0, 0x05, 50, 40)),
                ),
                (
                    150,
                    Some(entry(0, 0x83, 2, 20)),
                    Some(entry(0, 0x05, 50, 40)),
                ),
            ],
        );
        let mut f = Vec::new();
        let l = read_logicals(&disk, 512, &ext, &mut f).unwrap();
        assert_eq!(l.len(), 2);
        assert!(f[0].message.contains("loops"), "{f:?}");
    }

    #[test]
    fn chain_is_capped() {
        // 200 EBRs, each linking to the next one.
        let n = 200u64;
        let ebrs: Vec<_> = (0..n)
            .map(|i| {
                (
                    10 + 2 * i,
                    Some(entry(0, 0x83, 1, 1)),
                    (i + 1 < n).then(|| entry(0, 0x05, (2 * (i + 1)) as u32, 2)),
                )
            })
            .collect();
        let (disk, ext) = chain_disk(10 + 2 * n + 10, 10, (2 * n) as u32, &ebrs);
        let mut f = Vec::new();
        let l = read_logicals(&disk, 512, &ext, &mut f).unwrap();
        assert_eq!(l.len(), MAX_LOGICAL);
        assert_eq!(l.last().unwrap().number, 4 + MAX_LOGICAL as u32);
        assert!(f[0].message.contains("longer than 128"), "{f:?}");
    }

    #[test]
    fn broken_links() {
        // Link past the extended partition.
        let (disk, ext) = chain_disk(
            400,
            100,
            100,
            &[(
                100,
                Some(entry(0, 0x83, 2, 20)),
                Some(entry(0, 0x05, 150, 40)),
            )],
        );
        let mut f = Vec::new();
        assert_eq!(read_logicals(&disk, 512, &ext, &mut f).unwrap().len(), 1);
        assert!(f[0].message.contains("outside the extended"), "{f:?}");

        // Extended partition starting past the end of the disk.
        let (disk, _) = chain_disk(400, 100, 100, &[]);
        let far = entry(0, 0x05, 10_000, 100);
        let mut f = Vec::new();
        assert!(read_logicals(&disk, 512, &far, &mut f).unwrap().is_empty());
        assert!(f[0].message.contains("past the end"), "{f:?}");

        // Second EBR without a signature: error. Empty first EBR: nothing, no finding.
        let (mut disk, ext) = chain_disk(
            400,
            100,
            300,
            &[(
                100,
                Some(entry(0, 0x83, 2, 20)),
                Some(entry(0, 0x05, 50, 40)),
            )],
        );
        let mut f = Vec::new();
        assert_eq!(read_logicals(&disk, 512, &ext, &mut f).unwrap().len(), 1);
        assert!(f[0].message.contains("no 55AA"), "{f:?}");
        disk[100 * 512..101 * 512].fill(0);
        let mut f = Vec::new();
        assert!(read_logicals(&disk, 512, &ext, &mut f).unwrap().is_empty());
        assert!(f.is_empty());
    }

    #[test]
    fn extra_entries_are_reported() {
        let mut disk = vec![0u8; 400 * 512];
        let ext = entry(0, 0x05, 100, 300);
        put(
            &mut disk,
            100 * 512,
            &mbr_sector(
                0,
                false,
                &[
                    entry(0, 0x83, 2, 20),
                    entry(0, 0x83, 30, 20),
                    entry(0, 0x05, 60, 20),
                    entry(0, 0x05, 90, 20),
                ],
            ),
        );
        // The followed link (the first, +60) leads to an EBR with nothing in it.
        put(&mut disk, 160 * 512, &mbr_sector(0, false, &[]));
        let mut f = Vec::new();
        let l = read_logicals(&disk, 512, &ext, &mut f).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f.iter().all(|x| x.severity == Severity::Warning));
    }

    #[test]
    fn chain_on_4096_sectors() {
        let mut disk = vec![0u8; 64 * 4096];
        let ext = entry(0, 0x0f, 10, 50);
        put(
            &mut disk,
            10 * 4096,
            &mbr_sector(0, false, &[entry(0, 0x83, 1, 5), entry(0, 0x05, 10, 10)]),
        );
        put(
            &mut disk,
            20 * 4096,
            &mbr_sector(0, false, &[entry(0, 0x83, 1, 5)]),
        );
        let mut f = Vec::new();
        let l = read_logicals(&disk, 4096, &ext, &mut f).unwrap();
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(l.iter().map(|p| p.start_lba).collect::<Vec<_>>(), [11, 21]);
    }
}
