//! Byte-level tests of the backup GPT move (the comparisons with sgdisk and sfdisk are in
//! crates/partition/tests/relocate_tools.rs and the writers' tests).

use super::*;
use crate::gpt::read_gpt;
use crate::mbr::MbrEntry;
use crate::testutil::{mbr_sector, patch_header, put, set_u32, GptBuilder};
use crate::types::gpt as types;
use vhdprep_disk::write::TableUpdate;

fn two_parts(ss: u32, sectors: u64) -> GptBuilder {
    GptBuilder::new(ss, sectors)
        .part(0, types::EFI_SYSTEM, 40, 59, "esp")
        .part(2, types::LINUX_ROOT_X86_64, 60, 99, "root")
}

/// `disk` padded with zeros to `new_sectors` and the update written in.
fn apply(disk: &[u8], update: &TableUpdate, new_len: usize) -> Vec<u8> {
    let mut out = disk.to_vec();
    out.resize(new_len, 0);
    for w in update.writes() {
        put(&mut out, w.offset, &w.bytes);
    }
    out
}

fn moved(plan: RelocationPlan) -> Relocation {
    match plan {
        RelocationPlan::Move(r) => *r,
        other => panic!("expected a move, got {other:?}"),
    }
}

fn left_alone(plan: RelocationPlan) -> String {
    match plan {
        RelocationPlan::LeftAlone(why) => why,
        other => panic!("expected the table left alone, got {other:?}"),
    }
}

#[test]
fn moves_the_backup_to_the_new_end_512_and_4096() {
    for ss in [512u32, 4096] {
        let b = two_parts(ss, 200);
        let disk = b.build();
        let new_sectors = 300u64;
        let new_len = (new_sectors * u64::from(ss)) as usize;
        let r = moved(plan_relocation(&disk, new_len as u64).unwrap());
        let array_sectors = b.array_sectors();
        assert_eq!(r.old_backup_lba, 199);
        assert_eq!(r.new_backup_lba, 299);
        assert_eq!(r.new_array_lba, 299 - array_sectors);
        assert_eq!(r.new_last_usable_lba, 298 - array_sectors);
        assert_eq!(r.old_backup_defect, None);
        let update = GptRelocator.plan(&disk, new_len as u64).unwrap();
        let out = apply(&disk, &update, new_len);
        // The grown disk reads cleanly: primary and backup agree, backup on the last LBA,
        // same partitions, same disk GUID.
        let g = read_gpt(&out, ss).unwrap();
        assert!(g.findings.is_empty(), "{ss}: {:?}", g.findings);
        assert_eq!(g.backup_lba, 299);
        assert_eq!(g.backup_defect, None);
        assert_eq!(g.header.alternate_lba, 299);
        assert_eq!(g.header.last_usable_lba, 298 - array_sectors);
        assert_eq!(
            g.header.first_usable_lba,
            b.primary_header().first_usable_lba
        );
        assert_eq!(g.header.disk_guid, b.disk_guid);
        assert_eq!(g.entries, read_gpt(&disk, ss).unwrap().entries);
        // The same layout a fresh table of that size has.
        let fresh = two_parts(ss, new_sectors);
        assert_eq!(
            g.header.last_usable_lba,
            fresh.primary_header().last_usable_lba
        );
        // The protective MBR covers the new disk.
        let m = Mbr::parse(&out).unwrap();
        assert_eq!(m.entries[0].sectors, 299);
        // Nothing but LBA 0, LBA 1 and the new backup changed; the old backup is still there.
        let ssz = ss as usize;
        assert_eq!(out[2 * ssz..disk.len()], disk[2 * ssz..]);
        // And moving again has nothing to do.
        assert_eq!(
            plan_relocation(&out, new_len as u64).unwrap(),
            RelocationPlan::AtEnd
        );
    }
}

#[test]
fn writes_come_in_the_order_the_writers_need() {
    let disk = two_parts(512, 200).build();
    let u = GptRelocator.plan(&disk, 300 * 512).unwrap();
    // The array and header outside the old disk, then one 1024-byte write of LBA 0 and 1.
    assert_eq!(u.stage.len(), 2);
    assert!(u.stage.iter().all(|w| w.offset >= 200 * 512));
    assert_eq!(u.repoint.len(), 1);
    assert_eq!((u.repoint[0].offset, u.repoint[0].bytes.len()), (0, 1024));
    assert_eq!(u.repoint[0].old, disk[..1024]);
    assert!(u.notes.is_empty());
    assert_eq!(u.changes.len(), 2, "{:?}", u.changes);
    // With 4096-byte sectors LBA 0 and LBA 1 are 4 KiB apart: the MBR goes first, then the
    // first 512 bytes of the primary header sector (all that changes).
    let disk = two_parts(4096, 200).build();
    let u = GptRelocator.plan(&disk, 300 * 4096).unwrap();
    let places: Vec<_> = u
        .repoint
        .iter()
        .map(|w| (w.offset, w.bytes.len()))
        .collect();
    assert_eq!(places, [(0, 512), (4096, 512)]);
}

#[test]
fn a_backup_already_at_the_end_is_untouched() {
    let disk = two_parts(512, 2048).build();
    assert_eq!(
        plan_relocation(&disk, 2048 * 512).unwrap(),
        RelocationPlan::AtEnd
    );
    assert_eq!(
        GptRelocator.plan(&disk, 2048 * 512).unwrap(),
        TableUpdate::default()
    );
}

#[test]
fn a_damaged_or_missing_backup_is_rebuilt_from_the_primary() {
    let b = two_parts(512, 200);
    // Backup header CRC broken.
    let mut disk = b.build();
    patch_header(&mut disk, 512, 199, false, |s| s[60] ^= 1);
    let r = moved(plan_relocation(&disk, 300 * 512).unwrap());
    assert!(matches!(
        r.old_backup_defect,
        Some(GptDefect::HeaderCrc { .. })
    ));
    let u = GptRelocator.plan(&disk, 300 * 512).unwrap();
    assert!(
        u.notes[0].contains("rebuilt from the primary"),
        "{:?}",
        u.notes
    );
    let g = read_gpt(&apply(&disk, &u, 300 * 512), 512).unwrap();
    assert!(g.findings.is_empty(), "{:?}", g.findings);
    // Backup array zeroed (missing): rebuilt as well.
    let mut disk = b.build();
    let arr = b.backup_header().partition_entry_lba as usize * 512;
    disk[arr..arr + 16384].fill(0);
    let r = moved(plan_relocation(&disk, 300 * 512).unwrap());
    assert!(matches!(
        r.old_backup_defect,
        Some(GptDefect::ArrayCrc { .. })
    ));
}

#[test]
fn a_backup_that_disagrees_is_left_alone() {
    let b = two_parts(512, 200);
    let mut disk = b.build();
    // A valid backup with another disk GUID.
    patch_header(&mut disk, 512, 199, true, |s| s[56] ^= 0xff);
    let why = left_alone(plan_relocation(&disk, 300 * 512).unwrap());
    assert!(
        why.contains("disagree") && why.contains("disk GUID"),
        "{why}"
    );
    let u = GptRelocator.plan(&disk, 300 * 512).unwrap();
    assert!(u.is_empty());
    assert!(u.notes[0].contains("left as it is"), "{:?}", u.notes);
}

#[test]
fn a_table_that_does_not_read_strictly_is_left_alone() {
    let b = two_parts(512, 200);
    // Primary damaged (the reader falls back to the backup).
    let mut disk = b.build();
    patch_header(&mut disk, 512, 1, false, |s| s[60] ^= 1);
    let why = left_alone(plan_relocation(&disk, 300 * 512).unwrap());
    assert!(why.contains("primary GPT is unusable"), "{why}");
    // Neither copy usable.
    patch_header(&mut disk, 512, 199, false, |s| s[60] ^= 1);
    let why = left_alone(plan_relocation(&disk, 300 * 512).unwrap());
    assert!(why.contains("cannot be read"), "{why}");
    // A GPT without a protective MBR.
    let mut disk = b.build();
    disk[510] = 0;
    let why = left_alone(plan_relocation(&disk, 300 * 512).unwrap());
    assert!(why.contains("no protective MBR"), "{why}");
    // A 0xEE entry not at LBA 1 (the kernel rejects the protective MBR).
    let mut disk = b.build();
    set_u32(&mut disk, 446 + 8, 2);
    let why = left_alone(plan_relocation(&disk, 300 * 512).unwrap());
    assert!(why.contains("LBA 1"), "{why}");
    // A primary pointing past the end (its usable range still inside): a truncated image.
    let mut disk = b.build();
    disk.truncate(190 * 512);
    let why = left_alone(plan_relocation(&disk, 300 * 512).unwrap());
    assert!(why.contains("truncated"), "{why}");
}

#[test]
fn mbr_only_and_empty_disks_have_nothing_to_move() {
    let part = MbrEntry {
        type_byte: 0x83,
        start_lba: 2048,
        sectors: 1000,
        ..Default::default()
    };
    let mut disk = vec![0u8; 4096 * 512];
    put(&mut disk, 0, &mbr_sector(0x1234_5678, true, &[part]));
    assert_eq!(
        plan_relocation(&disk, 8192 * 512).unwrap(),
        RelocationPlan::NotGpt
    );
    let zeros = vec![0u8; 4096 * 512];
    assert_eq!(
        plan_relocation(&zeros, 8192 * 512).unwrap(),
        RelocationPlan::NotGpt
    );
}

#[test]
fn headers_keep_every_other_byte_and_their_crcs() {
    let b = two_parts(4096, 200);
    let disk = b.build();
    let mut sector = disk[4096..8192].to_vec();
    // A header size of 512 on a 4 KiB sector, with bytes in the (reserved) tail it covers.
    set_u32(&mut sector, 12, 512);
    sector[400] = 0x5a;
    sector[3000] = 0x77; // not covered by the CRC, kept anyway
    let crc = header::header_crc32(&sector, 512).unwrap();
    set_u32(&mut sector, 16, crc);
    let m = relocate_headers(&sector, 1000).unwrap();
    for s in [&m.primary, &m.backup] {
        let h = GptHeader::parse(s).unwrap();
        assert_eq!(h.header_size, 512);
        assert_eq!((s[400], s[3000]), (0x5a, 0x77));
    }
    let p = GptHeader::parse(&m.primary).unwrap();
    let bk = GptHeader::parse(&m.backup).unwrap();
    assert_eq!((p.my_lba, p.alternate_lba), (1, 999));
    assert_eq!((bk.my_lba, bk.alternate_lba), (999, 1));
    assert_eq!(bk.partition_entry_lba, 999 - 4);
    assert_eq!((p.last_usable_lba, bk.last_usable_lba), (994, 994));
    assert_eq!(p.partition_entry_lba, 2);
    // Only bytes 16..20 (CRC), 32..40 (alternate) and 48..56 (last usable) differ.
    let changed: Vec<usize> = (0..4096).filter(|&i| m.primary[i] != sector[i]).collect();
    assert!(
        changed
            .iter()
            .all(|&i| (16..20).contains(&i) || (32..40).contains(&i) || (48..56).contains(&i)),
        "{changed:?}"
    );
    // No entries, a header that does not parse, and a disk too small for the table.
    let mut empty = GptHeader::parse(&sector).unwrap();
    empty.num_entries = 0;
    assert_eq!(
        relocate_headers(&empty.to_sector(4096), 1000),
        Err(RelocateError::NoEntries)
    );
    assert!(matches!(
        relocate_headers(&[0u8; 512], 1000),
        Err(RelocateError::Header(_))
    ));
    assert!(matches!(
        relocate_headers(&sector, 100),
        Err(RelocateError::Shrinks { .. })
    ));
}

#[test]
fn chs_as_sgdisk_writes_it() {
    // Values read from sgdisk 1.0.9's own protective MBRs (1185.5 and 1186 MiB disks).
    assert_eq!(chs_of(2_427_903), [0x21, 0x0a, 0x97]);
    assert_eq!(chs_of(2_428_927), [0x31, 0x1a, 0x97]);
    assert_eq!(chs_of(1), [0, 2, 0]);
    assert_eq!(chs_of(0), [0, 0, 0]);
    assert_eq!(chs_of(255 * 63 * 1024), [254, 255, 255]);
    assert_eq!(chs_of(u64::MAX), [254, 255, 255]);
}

fn protective(sectors: u32, chs_last: [u8; 3]) -> MbrEntry {
    MbrEntry {
        type_byte: 0xEE,
        start_lba: 1,
        sectors,
        chs_first: [0, 2, 0],
        chs_last,
        ..Default::default()
    }
}

#[test]
fn protective_mbr_follows_the_disk_as_sgdisk_makes_it() {
    // sgdisk's CHS form is recomputed; any other (sfdisk's FF FF FF) is kept; boot code and
    // signature stay.
    let old = mbr_sector(
        0xdead_beef,
        true,
        &[protective(2_427_903, chs_of(2_427_903))],
    );
    let r = resize_protective_mbr(&old, 2_427_904, 2_428_928).unwrap();
    assert_eq!(r.sizes, [(0, 2_427_903, 2_428_927)]);
    let m = Mbr::parse(&r.new).unwrap();
    assert_eq!(m.entries[0].sectors, 2_428_927);
    assert_eq!(m.entries[0].chs_last, chs_of(2_428_927));
    assert_eq!(
        r.new[..446],
        old[..446],
        "boot code and disk signature kept"
    );
    let sfdisk = mbr_sector(0, false, &[protective(2_427_903, [0xff; 3])]);
    let r = resize_protective_mbr(&sfdisk, 2_427_904, 2_428_928).unwrap();
    assert_eq!(Mbr::parse(&r.new).unwrap().entries[0].chs_last, [0xff; 3]);
    // Over 2 TiB the size is capped at 0xFFFFFFFF: from just under ...
    let under = (1u64 << 32) - 1024;
    let small = mbr_sector(
        0,
        false,
        &[protective((under - 1) as u32, [0xfe, 0xff, 0xff])],
    );
    let r = resize_protective_mbr(&small, under, 1 << 32).unwrap();
    assert_eq!(Mbr::parse(&r.new).unwrap().entries[0].sectors, u32::MAX);
    // ... and a disk already over it stays capped: nothing to write.
    let big = mbr_sector(0, false, &[protective(u32::MAX, [0xfe, 0xff, 0xff])]);
    assert_eq!(
        resize_protective_mbr(&big, (1 << 32) + 1024, (1 << 32) + 2048),
        None
    );
    // A size that is already right: nothing to write.
    let right = mbr_sector(0, false, &[protective(2_428_927, chs_of(2_428_927))]);
    assert_eq!(resize_protective_mbr(&right, 2_427_904, 2_428_928), None);
}

#[test]
fn hybrid_mbr_extends_only_a_0xee_entry_that_reached_the_old_end() {
    // sgdisk -h's layout: 0xEE over LBA 1..2047, a FAT partition, and (added by hand, as gdisk
    // offers) a second 0xEE from after it to the end of the disk.
    let fat = MbrEntry {
        type_byte: 0xEF,
        start_lba: 2048,
        sectors: 204_800,
        ..Default::default()
    };
    let head = MbrEntry {
        type_byte: 0xEE,
        start_lba: 1,
        sectors: 2047,
        chs_last: chs_of(2047),
        ..Default::default()
    };
    let tail = MbrEntry {
        type_byte: 0xEE,
        start_lba: 206_848,
        sectors: 2_427_904 - 206_848,
        chs_last: chs_of(2_427_903),
        ..Default::default()
    };
    let old = mbr_sector(0, true, &[head, fat, tail]);
    let r = resize_protective_mbr(&old, 2_427_904, 2_428_928).unwrap();
    // The values sgdisk -e writes on the same disk.
    assert_eq!(r.sizes, [(2, 2_221_056, 2_222_080)]);
    let m = Mbr::parse(&r.new).unwrap();
    assert_eq!(
        (m.entries[0].sectors, m.entries[1].sectors),
        (2047, 204_800)
    );
    assert_eq!(m.entries[2].chs_last, [0x31, 0x1a, 0x97]);
    // Without the tail entry nothing changes.
    let old = mbr_sector(0, true, &[head, fat]);
    assert_eq!(resize_protective_mbr(&old, 2_427_904, 2_428_928), None);
}

#[test]
fn a_move_never_shrinks_the_usable_range_or_cuts_a_partition() {
    // A primary whose last usable LBA is higher than the grown disk allows (a table made for
    // a larger disk, then copied): left alone.
    let b = two_parts(512, 200);
    let mut disk = b.build();
    patch_header(&mut disk, 512, 1, true, |s| {
        s[48..56].copy_from_slice(&190u64.to_le_bytes())
    });
    patch_header(&mut disk, 512, 199, true, |s| {
        s[48..56].copy_from_slice(&190u64.to_le_bytes())
    });
    let why = left_alone(plan_relocation(&disk, 210 * 512).unwrap());
    assert!(why.contains("below the current"), "{why}");
}
