//! Tests of the unified reader ([`read_partitions`]) on byte-built disks.

use super::*;
use crate::mbr::MbrEntry;
use crate::testutil::{mbr_sector, protective_entry, put, GptBuilder};
use crate::types::gpt as types;
use std::io;

fn entry(status: u8, type_byte: u8, start: u32, sectors: u32) -> MbrEntry {
    MbrEntry {
        status,
        type_byte,
        start_lba: start,
        sectors,
        ..Default::default()
    }
}

fn severities(t: &PartitionTable) -> Vec<Severity> {
    t.findings.iter().map(|f| f.severity).collect()
}

#[test]
fn gpt_disk_unified() {
    let mut b = GptBuilder::new(512, 2048)
        .part(0, types::EFI_SYSTEM, 40, 139, "EFI system")
        .part(1, types::BIOS_BOOT, 140, 149, "")
        .part(3, types::LINUX_ROOT_X86_64, 150, 1999, "root");
    b.entries[2].1.attributes = gpt::entry::attr::LEGACY_BIOS_BOOTABLE;
    let disk = b.build();
    let t = read_partitions(&disk).unwrap();
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    assert_eq!(t.kind, TableKind::Gpt);
    assert_eq!(t.sector_size, 512);
    assert_eq!(t.disk_size, 2048 * 512);
    assert_eq!(t.disk_guid, Some(b.disk_guid));
    assert_eq!(t.disk_id().unwrap(), "11111111-2222-3333-4444-555555555555");
    assert_eq!(t.mbr_signature, Some(0xCAFE_F00D));
    let m = t.mbr.as_ref().unwrap();
    assert!(m.protective && !m.hybrid && !m.boot_code_present);
    assert_eq!(m.primaries.len(), 1);
    assert_eq!(m.primaries[0].kind, PartitionKind::GptProtective);
    let g = t.gpt.as_ref().unwrap();
    assert_eq!(g.used, GptCopy::Primary);

    let numbers: Vec<_> = t.partitions.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 2, 4]);
    let esp = t.partition(1).unwrap();
    assert_eq!(esp.kind, PartitionKind::Esp);
    assert_eq!(esp.type_name, "EFI System");
    assert_eq!(esp.start_bytes, 40 * 512);
    assert_eq!(esp.size_bytes, 100 * 512);
    assert_eq!(esp.byte_range(), 40 * 512..140 * 512);
    assert_eq!(esp.sectors(), 100);
    assert_eq!(esp.name.as_deref(), Some("EFI system"));
    assert_eq!(esp.partuuid, esp.unique_guid.unwrap().to_lowercase_string());
    assert!(!esp.bootable);
    assert_eq!(t.partition(2).unwrap().name, None);
    let root = t.partition(4).unwrap();
    assert_eq!(root.kind, PartitionKind::LinuxRoot);
    assert_eq!(
        root.partition_type.architecture(),
        Some(Architecture::X86_64)
    );
    assert!(root.bootable);
    assert_eq!(root.attributes, 4);
    assert_eq!(t.partitions_of_kind(PartitionKind::BiosBoot).count(), 1);

    // The partition slice reads the partition's bytes.
    let mut disk2 = disk.clone();
    put(&mut disk2, 150 * 512, b"ROOTDATA");
    let t2 = read_partitions(&disk2).unwrap();
    let s = t2.partition(4).unwrap().slice(&disk2);
    let mut buf = [0u8; 8];
    s.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"ROOTDATA");
}

#[test]
fn serializes_to_json() {
    let disk = GptBuilder::new(512, 400)
        .part(0, types::LINUX_FILESYSTEM, 40, 99, "data")
        .build();
    let t = read_partitions(&disk).unwrap();
    let v: serde_json::Value = serde_json::to_value(&t).unwrap();
    assert_eq!(v["kind"], "gpt");
    assert_eq!(v["disk_guid"], "11111111-2222-3333-4444-555555555555");
    let p = &v["partitions"][0];
    assert_eq!(p["type"], "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
    assert_eq!(p["kind"], "linux_data");
    assert_eq!(p["type_name"], "Linux filesystem");
    assert_eq!(p["name"], "data");
    assert_eq!(v["gpt"]["used"], "primary");
    assert_eq!(v["gpt"]["header"]["num_entries"], 128);
    assert!(v["findings"].as_array().unwrap().is_empty());

    let m = mbr_disk(&[entry(0x80, 0x83, 2048, 100)], 4096);
    let t = read_partitions(&m).unwrap();
    let v: serde_json::Value = serde_json::to_value(&t).unwrap();
    assert_eq!(v["kind"], "mbr");
    assert_eq!(v["partitions"][0]["type"], "0x83");
    assert_eq!(v["partitions"][0]["partuuid"], "12345678-01");
    assert!(v["partitions"][0].get("unique_guid").is_none());
}

#[test]
fn gpt_4096_detected() {
    let disk = GptBuilder::new(4096, 256)
        .part(0, types::EFI_SYSTEM, 10, 19, "esp")
        .part(1, types::LINUX_ROOT_AARCH64, 20, 200, "root")
        .build();
    let t = read_partitions(&disk).unwrap();
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    assert_eq!(t.sector_size, 4096);
    assert_eq!(t.partition(2).unwrap().start_bytes, 20 * 4096);
    assert_eq!(t.partition(2).unwrap().size_bytes, 181 * 4096);
    // Explicit sector size gives the same.
    let t2 = read_partitions_with(
        &disk,
        ReadOptions {
            sector_size: Some(4096),
        },
    )
    .unwrap();
    assert_eq!(t2.partitions, t.partitions);
}

#[test]
fn unsupported_sector_size_option() {
    for ss in [0u32, 100, 513, 1 << 20] {
        let err = read_partitions_with(
            &vec![0u8; 4096],
            ReadOptions {
                sector_size: Some(ss),
            },
        )
        .unwrap_err();
        assert!(matches!(err, PartitionError::UnsupportedSectorSize(s) if s == ss));
    }
}

fn mbr_disk(entries: &[MbrEntry], sectors: u64) -> Vec<u8> {
    let mut disk = vec![0u8; (sectors * 512) as usize];
    put(&mut disk, 0, &mbr_sector(0x1234_5678, true, entries));
    disk
}

#[test]
fn mbr_with_logicals() {
    let mut disk = mbr_disk(
        &[
            entry(0x80, 0x83, 2048, 2048),
            entry(0, 0x0c, 4096, 2048),
            entry(0, 0x05, 8192, 8192),
        ],
        16384,
    );
    put(
        &mut disk,
        8192 * 512,
        &mbr_sector(
            0,
            false,
            &[entry(0, 0x82, 2048, 1024), entry(0, 0x05, 3072, 4096)],
        ),
    );
    put(
        &mut disk,
        (8192 + 3072) * 512,
        &mbr_sector(0, false, &[entry(0, 0x8e, 2048, 1024)]),
    );
    let t = read_partitions(&disk).unwrap();
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    assert_eq!(t.kind, TableKind::Mbr);
    assert_eq!(t.disk_id().unwrap(), "0x12345678");
    assert!(t.mbr.as_ref().unwrap().boot_code_present);
    let got: Vec<_> = t
        .partitions
        .iter()
        .map(|p| {
            (
                p.number,
                p.start_lba,
                p.end_lba,
                p.kind,
                p.logical,
                p.partuuid.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                1,
                2048,
                4095,
                PartitionKind::LinuxData,
                false,
                "12345678-01"
            ),
            (
                2,
                4096,
                6143,
                PartitionKind::MicrosoftData,
                false,
                "12345678-02"
            ),
            (
                3,
                8192,
                16383,
                PartitionKind::Extended,
                false,
                "12345678-03"
            ),
            (5, 10240, 11263, PartitionKind::Swap, true, "12345678-05"),
            (6, 13312, 14335, PartitionKind::Lvm, true, "12345678-06"),
        ]
    );
    assert!(t.partition(1).unwrap().bootable);
    assert_eq!(t.partition(1).unwrap().attributes, 0x80);
    assert!(!t.partition(2).unwrap().bootable);
    assert_eq!(t.partition(1).unwrap().type_name, "Linux");
}

#[test]
fn mbr_overlaps_and_past_end() {
    let t = read_partitions(&mbr_disk(
        &[
            entry(0, 0x83, 2048, 4096),
            entry(0, 0x83, 4000, 100),
            entry(0, 0x83, 8000, 100_000),
        ],
        16384,
    ))
    .unwrap();
    assert_eq!(t.partitions.len(), 3);
    let msgs: Vec<_> = t.findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        severities(&t),
        [Severity::Error, Severity::Error],
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("past the end")), "{msgs:?}");
    assert!(
        msgs.iter().any(|m| m.contains("1 and 2 overlap")),
        "{msgs:?}"
    );
}

#[test]
fn logical_overlapping_a_primary() {
    let mut disk = mbr_disk(
        &[entry(0, 0x83, 2048, 8192), entry(0, 0x05, 8192, 4096)],
        16384,
    );
    // The logical starts at 8192 + 1 = 8193: inside partition 1 (2048..=10239).
    put(
        &mut disk,
        8192 * 512,
        &mbr_sector(0, false, &[entry(0, 0x83, 1, 100)]),
    );
    let t = read_partitions(&disk).unwrap();
    let msgs: Vec<_> = t.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.contains("1 and 2 overlap")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("1 and 5 overlap")),
        "{msgs:?}"
    );
}

#[test]
fn mbr_partition_at_lba_0() {
    let t = read_partitions(&mbr_disk(&[entry(0, 0x83, 0, 100)], 1000)).unwrap();
    assert_eq!(severities(&t), [Severity::Error]);
    assert!(t.findings[0].message.contains("LBA 0"));
}

#[test]
fn gpt_overlapping_entries() {
    let disk = GptBuilder::new(512, 400)
        .part(0, types::LINUX_FILESYSTEM, 40, 200, "a")
        .part(1, types::LINUX_FILESYSTEM, 100, 150, "b")
        .part(2, types::LINUX_FILESYSTEM, 150, 250, "c")
        .part(3, types::LINUX_FILESYSTEM, 251, 300, "d")
        .build();
    let t = read_partitions(&disk).unwrap();
    let msgs: Vec<_> = t.findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        msgs.len(),
        2,
        "a/b and a/c overlap (and b/c is hidden behind a): {msgs:?}"
    );
    assert!(msgs[0].contains("1 and 2 overlap"), "{msgs:?}");
    assert!(msgs[1].contains("1 and 3 overlap"), "{msgs:?}");
    assert!(t.findings.iter().all(|f| f.severity == Severity::Error));
    // All four are still listed.
    assert_eq!(t.partitions.len(), 4);
}

#[test]
fn many_overlaps_are_summed_up() {
    let mut b = GptBuilder::new(512, 400);
    for slot in 0..40 {
        b = b.part(slot, types::LINUX_FILESYSTEM, 40, 300, "same");
    }
    let t = read_partitions(&b.build()).unwrap();
    assert_eq!(t.findings.len(), 17);
    assert!(
        t.findings[16].message.contains("23 more"),
        "{:?}",
        t.findings[16]
    );
}

#[test]
fn hybrid_mbr() {
    let mut b = GptBuilder::new(512, 4096)
        .part(0, types::EFI_SYSTEM, 2048, 2559, "esp")
        .part(1, types::LINUX_FILESYSTEM, 2560, 4000, "root");
    b.mbr = vec![
        entry(0, 0xEE, 1, 2047),
        entry(0x80, 0xEF, 2048, 512),
        entry(0, 0x83, 2560, 1441),
    ];
    let t = read_partitions(&b.build()).unwrap();
    assert_eq!(t.kind, TableKind::Gpt);
    let m = t.mbr.as_ref().unwrap();
    assert!(m.hybrid && m.protective);
    let prim: Vec<_> = m
        .primaries
        .iter()
        .map(|p| (p.number, p.partition_type, p.start_lba, p.bootable))
        .collect();
    assert_eq!(
        prim,
        [
            (1, PartitionType::Mbr(0xEE), 1, false),
            (2, PartitionType::Mbr(0xEF), 2048, true),
            (3, PartitionType::Mbr(0x83), 2560, false)
        ]
    );
    assert_eq!(severities(&t), [Severity::Info]);
    assert!(t.findings[0].message.contains("Hybrid"));
    // The partitions are the GPT's.
    assert_eq!(
        t.partition(2).unwrap().partition_type,
        PartitionType::Gpt(types::LINUX_FILESYSTEM)
    );
}

#[test]
fn protective_entry_not_at_lba_1() {
    let mut b = GptBuilder::new(512, 400).part(0, types::LINUX_FILESYSTEM, 40, 99, "x");
    b.mbr = vec![entry(0, 0xEE, 2, 398)];
    let t = read_partitions(&b.build()).unwrap();
    assert_eq!(t.kind, TableKind::Gpt);
    let msgs: Vec<_> = t
        .findings
        .iter()
        .map(|f| (f.severity, f.message.as_str()))
        .collect();
    assert!(
        msgs.iter()
            .any(|(s, m)| *s == Severity::Error && m.contains("does not start at LBA 1")),
        "{msgs:?}"
    );
}

#[test]
fn protective_size_mismatch_is_info() {
    let mut b = GptBuilder::new(512, 400).part(0, types::LINUX_FILESYSTEM, 40, 99, "x");
    b.mbr = vec![protective_entry(300)];
    let t = read_partitions(&b.build()).unwrap();
    assert_eq!(severities(&t), [Severity::Info]);
}

#[test]
fn no_table() {
    for len in [0usize, 100, 511, 512, 1 << 20] {
        let t = read_partitions(&vec![0u8; len]).unwrap();
        assert_eq!(t.kind, TableKind::None, "{len}");
        assert!(t.partitions.is_empty());
        assert_eq!(severities(&t), [Severity::Error]);
        assert_eq!(t.findings[0].id, rules::TABLE_UNREADABLE);
        assert_eq!(t.disk_id(), None);
    }
}

#[test]
fn filesystem_boot_sector_is_not_a_table() {
    // A FAT boot sector: 55AA, and "entries" made of boot code with bad indicators.
    let mut disk = vec![0u8; 4096];
    disk[..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
    for (i, b) in disk[446..510].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(1);
    }
    disk[510] = 0x55;
    disk[511] = 0xAA;
    let t = read_partitions(&disk).unwrap();
    assert_eq!(t.kind, TableKind::None);
    assert!(t.findings[0].message.contains("boot indicators"));
}

#[test]
fn gpt_without_protective_mbr() {
    // Plain MBR with a Linux partition, and a GPT header at LBA 1: MBR wins, with a warning.
    let mut disk = GptBuilder::new(512, 400)
        .part(0, types::LINUX_FILESYSTEM, 40, 99, "x")
        .build();
    put(
        &mut disk,
        0,
        &mbr_sector(9, false, &[entry(0, 0x83, 40, 60)]),
    );
    let t = read_partitions(&disk).unwrap();
    assert_eq!(t.kind, TableKind::Mbr);
    assert_eq!(severities(&t), [Severity::Warning]);

    // No MBR at all: no table Linux recognises.
    disk[..512].fill(0);
    let t = read_partitions(&disk).unwrap();
    assert_eq!(t.kind, TableKind::None);
    assert_eq!(severities(&t), [Severity::Error]);
    assert!(t.findings[0].message.contains("GPT header is present"));
}

#[test]
fn gpt_unreadable_through_read_partitions() {
    let mut disk = GptBuilder::new(512, 400)
        .part(0, types::LINUX_FILESYSTEM, 40, 99, "x")
        .build();
    disk[512 + 100 - 30] ^= 1;
    disk[399 * 512 + 70] ^= 1;
    let err = read_partitions(&disk).unwrap_err();
    assert!(matches!(err, PartitionError::GptUnreadable { .. }), "{err}");
}

#[test]
fn protective_mbr_with_no_gpt_at_all() {
    let mut disk = vec![0u8; 400 * 512];
    put(
        &mut disk,
        0,
        &mbr_sector(0, false, &[protective_entry(400)]),
    );
    match read_partitions(&disk).unwrap_err() {
        PartitionError::GptUnreadable {
            primary, backup, ..
        } => {
            assert_eq!(primary, GptDefect::BadSignature);
            assert_eq!(backup, GptDefect::BadSignature);
        }
        e => panic!("{e}"),
    }
}

/// A disk whose reads fail.
struct Broken;
impl ReadAt for Broken {
    fn read_at(&self, _buf: &mut [u8], _offset: u64) -> io::Result<usize> {
        Err(io::Error::other("media error"))
    }
    fn len(&self) -> u64 {
        1 << 20
    }
}

#[test]
fn io_errors_carry_context() {
    let err = read_partitions(&Broken).unwrap_err();
    match &err {
        PartitionError::Io { what, offset, .. } => {
            assert_eq!(*what, "GPT signature");
            assert_eq!(*offset, 512);
        }
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains("media error") || std::error::Error::source(&err).is_some());
}

/// A disk that claims more bytes than it has (a lying `len`).
struct Short(Vec<u8>);
impl ReadAt for Short {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.0.len() as u64 * 4
    }
}

#[test]
fn a_lying_length_is_an_error_not_a_panic() {
    let mut disk = GptBuilder::new(512, 400)
        .part(0, types::LINUX_FILESYSTEM, 40, 99, "x")
        .build();
    // Primary damaged, so the backup is looked for at the claimed last LBA, past the real
    // end: an I/O error (EOF), reported with context.
    disk[512 + 60] ^= 1;
    let err = read_partitions(&Short(disk)).unwrap_err();
    assert!(matches!(err, PartitionError::Io { .. }), "{err}");
}

#[test]
fn mutated_mbr_chains_never_panic() {
    let mut clean = mbr_disk(&[entry(0x80, 0x83, 64, 64), entry(0, 0x0f, 256, 700)], 1024);
    for (i, ebr) in [256u64, 400, 600].iter().enumerate() {
        let link = (i < 2).then(|| entry(0, 0x05, (144 + 200 * i) as u32, 100));
        let mut es = vec![entry(0, 0x83, 2, 50)];
        es.extend(link);
        put(&mut clean, ebr * 512, &mbr_sector(0, false, &es));
    }
    assert_eq!(read_partitions(&clean).unwrap().partitions.len(), 5);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let hot: [u64; 4] = [0, 256, 400, 600];
    for _ in 0..3000 {
        let mut disk = clean.clone();
        for _ in 0..1 + next() % 6 {
            let sector = hot[(next() % 4) as usize];
            // Mostly the entry area and the signature.
            let off = sector * 512 + 440 + next() % 72;
            disk[off as usize] = next() as u8;
        }
        let _ = read_partitions(&disk);
        let _ = read_partitions_with(
            &disk,
            ReadOptions {
                sector_size: Some(4096),
            },
        );
    }
}
