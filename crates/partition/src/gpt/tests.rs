//! Byte-level tests of the GPT reader: both copies, CRCs, caps, placement.

use super::*;
use crate::testutil::{patch_header, set_u32, set_u64, GptBuilder};
use crate::types::gpt as types;

fn two_parts(ss: u32, sectors: u64) -> GptBuilder {
    GptBuilder::new(ss, sectors)
        .part(0, types::EFI_SYSTEM, 40, 59, "esp")
        .part(2, types::LINUX_ROOT_X86_64, 60, 99, "root")
}

fn severities(f: &[Finding]) -> Vec<Severity> {
    f.iter().map(|x| x.severity).collect()
}

#[test]
fn reads_a_clean_gpt_512() {
    let b = two_parts(512, 200);
    let disk = b.build();
    let g = read_gpt(&disk, 512).unwrap();
    assert!(g.findings.is_empty(), "{:?}", g.findings);
    assert_eq!(g.used, GptCopy::Primary);
    assert_eq!(g.primary_defect, None);
    assert_eq!(g.backup_defect, None);
    assert_eq!(g.backup_lba, 199);
    assert_eq!(g.last_lba, 199);
    assert_eq!(g.header.disk_guid, b.disk_guid);
    let got: Vec<_> = g
        .entries
        .iter()
        .map(|e| {
            (
                e.number,
                e.entry.first_lba,
                e.entry.last_lba,
                e.entry.name.as_str(),
            )
        })
        .collect();
    // Slot 2 is partition 3: Linux numbers by slot, gaps included.
    assert_eq!(got, [(1, 40, 59, "esp"), (3, 60, 99, "root")]);
}

#[test]
fn reads_a_clean_gpt_4096() {
    // 128 entries x 128 bytes = 4 sectors of 4096.
    let b = two_parts(4096, 200);
    let disk = b.build();
    assert_eq!(detect_sector_size(&disk).unwrap(), Some(4096));
    let g = read_gpt(&disk, 4096).unwrap();
    assert!(g.findings.is_empty(), "{:?}", g.findings);
    assert_eq!(g.header.first_usable_lba, 6);
    assert_eq!(g.entries.len(), 2);
    // Read with the wrong sector size, the disk has no GPT at LBA 1.
    let err = read_gpt(&disk, 512).unwrap_err();
    assert!(matches!(err, PartitionError::GptUnreadable { .. }), "{err}");
}

#[test]
fn detects_sector_size() {
    assert_eq!(
        detect_sector_size(&two_parts(512, 200).build()).unwrap(),
        Some(512)
    );
    assert_eq!(detect_sector_size(&vec![0u8; 64 * 1024]).unwrap(), None);
    assert_eq!(detect_sector_size(&vec![0u8; 10]).unwrap(), None);
    // Primary signature wiped: found at the last LBA.
    for ss in [512u32, 4096] {
        let mut disk = two_parts(ss, 100).build();
        disk[ss as usize..ss as usize + 8].fill(0);
        assert_eq!(detect_sector_size(&disk).unwrap(), Some(ss), "{ss}");
    }
}

#[test]
fn entries_of_256_bytes() {
    // 128 entries of 256 bytes take 64 sectors: first usable LBA 66.
    let mut b = GptBuilder::new(512, 300)
        .part(0, types::EFI_SYSTEM, 100, 119, "esp")
        .part(2, types::LINUX_ROOT_X86_64, 120, 199, "root");
    b.entry_size = 256;
    let disk = b.build();
    let g = read_gpt(&disk, 512).unwrap();
    assert_eq!(g.entries.len(), 2);
    assert_eq!(g.entries[1].entry.name, "root");
    assert_eq!(g.header.entry_size, 256);
    // Readable, but the Linux kernel would not read it: an error finding.
    assert_eq!(severities(&g.findings), [Severity::Error]);
    assert!(g.findings[0].message.contains("256 bytes"));
}

#[test]
fn primary_header_crc_bad_uses_backup() {
    let b = two_parts(512, 200);
    let mut disk = b.build();
    disk[512 + 60] ^= 0xff; // disk GUID byte, CRC not fixed
    let g = read_gpt(&disk, 512).unwrap();
    assert_eq!(g.used, GptCopy::Backup);
    assert!(matches!(
        g.primary_defect,
        Some(GptDefect::HeaderCrc { .. })
    ));
    assert_eq!(g.backup_defect, None);
    assert_eq!(g.entries.len(), 2);
    assert_eq!(g.header.my_lba, 199);
    assert_eq!(severities(&g.findings), [Severity::Error]);
    assert_eq!(g.findings[0].id, "BOOT-001");
    assert!(g.findings[0].message.contains("primary GPT is unusable"));
}

#[test]
fn primary_array_crc_bad_uses_backup() {
    let b = two_parts(512, 200);
    let mut disk = b.build();
    disk[2 * 512 + 56] ^= 1; // first entry's name
    let g = read_gpt(&disk, 512).unwrap();
    assert_eq!(g.used, GptCopy::Backup);
    assert!(matches!(g.primary_defect, Some(GptDefect::ArrayCrc { .. })));
    assert_eq!(g.entries[0].entry.name, "esp");
}

#[test]
fn backup_bad_uses_primary_with_a_warning() {
    let b = two_parts(512, 200);
    let mut disk = b.build();
    let backup_array = (b.backup_header().partition_entry_lba * 512) as usize;
    disk[backup_array + 1] ^= 1;
    let g = read_gpt(&disk, 512).unwrap();
    assert_eq!(g.used, GptCopy::Primary);
    assert!(matches!(g.backup_defect, Some(GptDefect::ArrayCrc { .. })));
    assert_eq!(severities(&g.findings), [Severity::Warning]);

    // Backup header signature gone.
    let mut disk = b.build();
    disk[199 * 512] = 0;
    let g = read_gpt(&disk, 512).unwrap();
    assert_eq!(g.backup_defect, Some(GptDefect::BadSignature));
    assert_eq!(severities(&g.findings), [Severity::Warning]);
}

#[test]
fn both_broken_is_a_typed_error() {
    let mut disk = two_parts(512, 200).build();
    disk[512 + 60] ^= 0xff;
    disk[199 * 512 + 60] ^= 0xff;
    match read_gpt(&disk, 512).unwrap_err() {
        PartitionError::GptUnreadable {
            sector_size,
            primary,
            backup_lba,
            backup,
        } => {
            assert_eq!(sector_size, 512);
            assert!(matches!(primary, GptDefect::HeaderCrc { .. }));
            assert_eq!(backup_lba, 199);
            assert!(matches!(backup, GptDefect::HeaderCrc { .. }));
        }
        e => panic!("{e}"),
    }
    // No GPT at all.
    let err = read_gpt(&vec![0u8; 512 * 100], 512).unwrap_err();
    assert!(
        matches!(
            err,
            PartitionError::GptUnreadable {
                primary: GptDefect::BadSignature,
                backup: GptDefect::BadSignature,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("neither copy is usable"), "{err}");
}

#[test]
fn unsupported_sector_sizes_are_refused() {
    let disk = two_parts(512, 200).build();
    for ss in [0u32, 1, 511, 1000, 1 << 17, u32::MAX] {
        assert!(matches!(
            read_gpt(&disk, ss),
            Err(PartitionError::UnsupportedSectorSize(s)) if s == ss
        ));
    }
}

#[test]
fn tiny_disks_are_errors_not_panics() {
    for len in [0usize, 1, 511, 512, 1024, 1536] {
        let err = read_gpt(&vec![0u8; len], 512).unwrap_err();
        assert!(matches!(err, PartitionError::GptUnreadable { .. }), "{len}");
    }
}

#[test]
fn huge_entry_counts_are_refused_before_reading() {
    let b = two_parts(512, 200);
    let mut disk = b.build();
    for lba in [1, 199] {
        patch_header(&mut disk, 512, lba, true, |s| set_u32(s, 80, u32::MAX));
    }
    match read_gpt(&disk, 512).unwrap_err() {
        PartitionError::GptUnreadable {
            primary, backup, ..
        } => {
            let want = GptDefect::TooManyEntries {
                count: u32::MAX,
                entry_size: 128,
            };
            assert_eq!(primary, want);
            assert_eq!(backup, want);
        }
        e => panic!("{e}"),
    }
}

#[test]
fn odd_entry_sizes_are_refused() {
    for size in [96u32, 129, 0, 100_000] {
        let mut disk = two_parts(512, 200).build();
        for lba in [1, 199] {
            patch_header(&mut disk, 512, lba, true, |s| set_u32(s, 84, size));
        }
        match read_gpt(&disk, 512).unwrap_err() {
            PartitionError::GptUnreadable {
                primary, backup, ..
            } => {
                assert_eq!(primary, GptDefect::EntrySize(size));
                assert_eq!(backup, GptDefect::EntrySize(size));
            }
            e => panic!("{e}"),
        }
    }
}

#[test]
fn my_lba_must_match() {
    let mut disk = two_parts(512, 200).build();
    patch_header(&mut disk, 512, 1, true, |s| set_u64(s, 24, 5));
    let g = read_gpt(&disk, 512).unwrap();
    assert_eq!(
        g.primary_defect,
        Some(GptDefect::MyLba {
            found: 5,
            expected: 1
        })
    );
    assert_eq!(g.used, GptCopy::Backup);
}

#[test]
fn header_size_field_is_bounded() {
    let mut disk = two_parts(512, 200).build();
    patch_header(&mut disk, 512, 1, false, |s| set_u32(s, 12, 0xFFFF_FFFF));
    let g = read_gpt(&disk, 512).unwrap();
    assert_eq!(
        g.primary_defect,
        Some(GptDefect::HeaderSize {
            size: u32::MAX,
            max: 512
        })
    );
}

#[test]
fn array_outside_the_disk() {
    let mut disk = two_parts(512, 200).build();
    patch_header(&mut disk, 512, 1, true, |s| set_u64(s, 72, u64::MAX - 1));
    let g = read_gpt(&disk, 512).unwrap();
    assert!(matches!(
        g.primary_defect,
        Some(GptDefect::ArrayPlacement { .. })
    ));
}

#[test]
fn backup_not_at_the_end_after_growing() {
    // The disk grew by 50 sectors (e.g. padded to a whole MiB) without moving the backup.
    let b = two_parts(512, 200);
    let mut disk = b.build();
    disk.resize(250 * 512, 0);
    let g = read_gpt(&disk, 512).unwrap();
    assert_eq!(g.used, GptCopy::Primary);
    // The backup is intact where the primary says it is.
    assert_eq!(g.backup_defect, None);
    assert_eq!(g.backup_lba, 199);
    assert_eq!(g.last_lba, 249);
    assert_eq!(severities(&g.findings), [Severity::Warning]);
    assert!(
        g.findings[0].message.contains("resized"),
        "{:?}",
        g.findings
    );
}

#[test]
fn truncated_below_the_usable_range_is_unreadable() {
    // Truncated: the backup is gone and the primary's usable range runs past the end. The
    // Linux kernel rejects such a primary too (last_usable_lba > last LBA).
    let b = two_parts(512, 200);
    let mut disk = b.build();
    disk.truncate(150 * 512);
    match read_gpt(&disk, 512).unwrap_err() {
        PartitionError::GptUnreadable {
            primary,
            backup_lba,
            backup,
            ..
        } => {
            assert_eq!(
                primary,
                GptDefect::UsableRange {
                    first: 34,
                    last: 166,
                    disk_last: 149
                }
            );
            assert_eq!(backup_lba, 149);
            assert_eq!(backup, GptDefect::BadSignature);
        }
        e => panic!("{e}"),
    }
}

#[test]
fn backup_header_gone_but_disk_intact() {
    let b = two_parts(512, 200);
    let mut disk = b.build();
    disk[199 * 512..].fill(0);
    let g = read_gpt(&disk, 512).unwrap();
    assert_eq!(g.used, GptCopy::Primary);
    assert_eq!(g.backup_defect, Some(GptDefect::BadSignature));
    assert_eq!(g.backup_lba, 199);
    assert_eq!(severities(&g.findings), [Severity::Warning]);
}

#[test]
fn copies_that_disagree() {
    let b = two_parts(512, 200);
    let mut disk = b.build();
    // Change the backup's disk GUID and re-sign it: both copies valid, but different.
    patch_header(&mut disk, 512, 199, true, |s| s[56] ^= 1);
    let g = read_gpt(&disk, 512).unwrap();
    assert_eq!(g.used, GptCopy::Primary);
    assert_eq!(severities(&g.findings), [Severity::Warning]);
    assert!(g.findings[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("disk GUID"));
}

#[test]
fn partition_past_the_end_and_inverted() {
    let b = GptBuilder::new(512, 200)
        .part(0, types::LINUX_FILESYSTEM, 40, 500, "past")
        .part(1, types::LINUX_FILESYSTEM, 90, 80, "inverted")
        .part(2, types::LINUX_FILESYSTEM, 10, 20, "in the gpt area");
    let g = read_gpt(&b.build(), 512).unwrap();
    let numbers: Vec<_> = g.entries.iter().map(|e| e.number).collect();
    // The inverted one is dropped; the others are kept and reported.
    assert_eq!(numbers, [1, 3]);
    assert_eq!(
        severities(&g.findings),
        [Severity::Error, Severity::Error, Severity::Warning],
        "{:?}",
        g.findings
    );
    assert!(g.findings[0].message.contains("invalid"));
    assert!(g.findings[1].message.contains("past the end"));
    assert!(g.findings[2].message.contains("usable range"));
}

#[test]
fn lba_overflow_in_entries() {
    let b = GptBuilder::new(4096, 100).part(
        0,
        types::LINUX_FILESYSTEM,
        u64::MAX - 1,
        u64::MAX - 1,
        "x",
    );
    let g = read_gpt(&b.build(), 4096).unwrap();
    assert!(g.entries.is_empty());
    assert_eq!(severities(&g.findings), [Severity::Error]);
}

#[test]
fn maximum_array_is_read() {
    // 4096 entries of 256 bytes: exactly the 1 MiB cap.
    let mut b = GptBuilder::new(512, 6000).part(4095, types::LINUX_SWAP, 4200, 4300, "last slot");
    b.num_entries = 4096;
    b.entry_size = 256;
    let g = read_gpt(&b.build(), 512).unwrap();
    assert_eq!(g.entries.len(), 1);
    assert_eq!(g.entries[0].number, 4096);
}

/// A tiny deterministic PRNG (xorshift64*), so the mutation test needs no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn mutated_tables_never_panic() {
    let b = two_parts(512, 128).part(5, types::LINUX_SWAP, 100, 120, "swap");
    let clean = b.build();
    let len = clean.len() as u64;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..3000 {
        let mut disk = clean.clone();
        let flips = 1 + rng.next() % 8;
        for _ in 0..flips {
            // Mostly the metadata: LBA 0..3 and the last 33 sectors.
            let r = rng.next();
            let off = if r % 2 == 0 {
                r / 2 % (4 * 512)
            } else {
                len - 1 - (r / 2 % (33 * 512))
            };
            disk[off as usize] = rng.next() as u8;
        }
        // Sometimes keep the CRCs valid so that the field checks are reached.
        if round % 3 == 0 {
            patch_header(&mut disk, 512, 1, true, |_| {});
            patch_header(&mut disk, 512, 127, true, |_| {});
        }
        let _ = read_gpt(&disk, 512);
        let _ = read_gpt(&disk, 4096);
        let _ = crate::read_partitions(&disk);
    }
}
