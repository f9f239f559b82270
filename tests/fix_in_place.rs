//! `fix --in-place`: raw to VHD without copying, realignment, footer repair, on small and on
//! multi-GiB and > 2 TiB sparse files; checked with qemu-img where it can read the result.

mod common;
use common::*;
use std::os::unix::fs::{FileExt, MetadataExt};
use vhdprep::disk::vhd::Footer;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn fix(path: &std::path::Path) -> std::process::Output {
    run(&["fix", "--in-place", path.to_str().unwrap()])
}

fn footer_of(path: &std::path::Path) -> Footer {
    let f = std::fs::File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    let mut b = [0u8; 512];
    f.read_exact_at(&mut b, len - 512).unwrap();
    Footer::parse(&b)
}

#[test]
fn raw_becomes_fixed_vhd_without_copying() {
    let d = tempdir();
    let raw = p(d.path(), "disk.raw");
    let len = 6 * GIB + 12_345;
    sparse_raw(
        &raw,
        len,
        &[(0, 1 << 20), (3 * GIB, 4096), (len - 1000, 1000)],
    );
    sparse_copy(&raw, &p(d.path(), "orig.raw"));
    let out = fix(&raw);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(&raw).unwrap();
    assert_eq!(meta.len(), 6 * GIB + MIB + 512);
    assert!(
        meta.blocks() * 512 < 64 * MIB,
        "the padding must be a hole, not written zeros"
    );
    assert_eq!(
        qemu_info(&raw, "vpc")["virtual-size"].as_u64(),
        Some(6 * GIB + MIB)
    );
    assert!(qemu_identical(&p(d.path(), "orig.raw"), "raw", &raw, "vpc"));
    let (v, code) = info_json(&raw);
    assert_eq!(v["format"], "vhd-fixed");
    assert_eq!(finding_ids(&v), Vec::<String>::new());
    assert_eq!(code, 0);
    assert_own_check_clean(&raw);
    // A second run has nothing to do and changes nothing.
    let mtime = std::fs::metadata(&raw).unwrap().mtime_nsec();
    let again = fix(&raw);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    assert_eq!(std::fs::metadata(&raw).unwrap().mtime_nsec(), mtime);
}

#[test]
fn aligned_raw_gets_only_a_footer() {
    let d = tempdir();
    let raw = p(d.path(), "disk.raw");
    sparse_raw(&raw, 64 * MIB, &[(0, 512), (64 * MIB - 512, 512)]);
    assert!(fix(&raw).status.success());
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), 64 * MIB + 512);
    let f = footer_of(&raw);
    assert_eq!(f.current_size, 64 * MIB);
    assert!(f.checksum_valid());
    assert_own_check_clean(&raw);
}

#[test]
fn huge_sparse_raw_above_2_tib() {
    // qemu-img refuses fixed VHDs over 2040 GiB; Azure takes data disks to 32 TiB.
    let d = tempdir();
    let raw = p(d.path(), "huge.raw");
    let len = 2 * 1024 * GIB + 5 * GIB + 777;
    sparse_raw(&raw, len, &[(0, 4096), (len - 777, 777)]);
    let tail = read_at(&raw, len - 777, 777);
    let out = fix(&raw);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_size = len.div_ceil(MIB) * MIB;
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), new_size + 512);
    // qemu-img sees the file (as raw) with our footer at its end; our footer parses and verifies.
    let f = footer_of(&raw);
    assert!(f.has_cookie() && f.checksum_valid());
    assert_eq!((f.current_size, f.original_size), (new_size, new_size));
    assert_eq!(f.geometry, vhdprep::disk::vhd::Geometry::MAX);
    assert_eq!(
        qemu_info(&raw, "raw")["virtual-size"].as_u64(),
        Some(new_size + 512)
    );
    let (v, code) = info_json(&raw);
    assert_eq!(v["format"], "vhd-fixed");
    assert_eq!(v["virtual_size"].as_u64(), Some(new_size));
    assert_eq!(code, 0, "{v}");
    // The data at the very end of the old raw is still there, the padding reads as zeros.
    assert_eq!(read_at(&raw, len - 777, 777), tail);
    assert!(read_at(&raw, len, (new_size - len) as usize)
        .iter()
        .all(|&b| b == 0));
    assert_own_check_clean(&raw);
}

fn read_at(path: &std::path::Path, off: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut b, off)
        .unwrap();
    b
}

#[test]
fn misaligned_qemu_vhd_is_realigned() {
    let d = tempdir();
    let raw = p(d.path(), "src.raw");
    sparse_raw(&raw, 3 * GIB + 4096, &[(0, 65536), (3 * GIB, 4096)]);
    let vhd = p(d.path(), "chs.vhd");
    qemu_vhd_from_raw(&raw, &vhd, "subformat=fixed");
    let orig = p(d.path(), "orig.vhd");
    sparse_copy(&vhd, &orig);
    let old_size = qemu_info(&vhd, "vpc")["virtual-size"].as_u64().unwrap();
    assert_ne!(
        old_size % MIB,
        0,
        "qemu-img without force_size should misalign"
    );
    let out = fix(&vhd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_size = qemu_info(&vhd, "vpc")["virtual-size"].as_u64().unwrap();
    assert_eq!(new_size, old_size.div_ceil(MIB) * MIB);
    assert!(qemu_identical(&orig, "vpc", &vhd, "vpc"));
    assert_eq!(finding_ids(&info_json(&vhd).0), Vec::<String>::new());
    assert_own_check_clean(&vhd);
}

#[test]
fn bad_checksum_and_odd_fields_are_rewritten() {
    let d = tempdir();
    let vhd = p(d.path(), "x.vhd");
    let raw = p(d.path(), "x.raw");
    sparse_raw(&raw, 32 * MIB, &[(0, 8192)]);
    qemu_vhd_from_raw(&raw, &vhd, "subformat=fixed,force_size=on");
    let mut f = footer_of(&vhd);
    let id = f.unique_id;
    f.original_size = 7;
    f.saved_state = 1;
    let bytes = f.to_bytes_with_checksum(0xdead_beef);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&vhd)
        .unwrap()
        .write_all_at(&bytes, 32 * MIB)
        .unwrap();
    let (v, code) = info_json(&vhd);
    let ids = finding_ids(&v);
    for id in ["VHD-003", "VHD-006", "VHD-015"] {
        assert!(ids.contains(&id.to_string()), "{id} missing from {ids:?}");
    }
    assert_eq!(code, 1);
    let out = fix(&vhd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fixed = footer_of(&vhd);
    assert!(fixed.checksum_valid());
    assert_eq!((fixed.original_size, fixed.saved_state), (32 * MIB, 0));
    assert_eq!(fixed.unique_id, id, "the disk keeps its identity");
    assert!(qemu_identical(&raw, "raw", &vhd, "vpc"));
    assert_eq!(info_json(&vhd).1, 0);
    assert_own_check_clean(&vhd);
}

#[test]
fn file_longer_than_its_footer_says_is_truncated_to_size() {
    let d = tempdir();
    let raw = p(d.path(), "x.raw");
    sparse_raw(&raw, 20 * MIB, &[(0, 4096)]);
    let vhd = p(d.path(), "long.vhd");
    // 20 MiB of disk, 3 MiB of zeros, then a footer that says 20 MiB.
    let mut bytes = read(&raw);
    bytes.extend(std::iter::repeat_n(0u8, 3 << 20));
    bytes.extend_from_slice(&Footer::new_fixed(20 * MIB).to_bytes());
    write_file(&vhd, &bytes);
    let ids = finding_ids(&info_json(&vhd).0);
    assert!(ids.contains(&"VHD-005".to_string()), "{ids:?}");
    assert!(fix(&vhd).status.success());
    assert_eq!(std::fs::metadata(&vhd).unwrap().len(), 20 * MIB + 512);
    assert!(qemu_identical(&raw, "raw", &vhd, "vpc"));
    assert_own_check_clean(&vhd);
}

#[test]
fn dry_run_writes_nothing_and_dynamic_is_refused() {
    let d = tempdir();
    let raw = p(d.path(), "x.raw");
    sparse_raw(&raw, 5 * MIB + 7, &[(0, 4096)]);
    let before = read(&raw);
    let out = run(&["fix", "--dry-run", raw.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("dry run"));
    assert_eq!(read(&raw), before);
    // Without --in-place, fix refuses to write.
    let out = run(&["fix", raw.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(read(&raw), before);
    let dynamic = p(d.path(), "d.vhd");
    qemu_vhd_from_raw(&raw, &dynamic, "");
    let before = read(&dynamic);
    let out = fix(&dynamic);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dynamic") && err.contains("vhdprep convert"),
        "{err}"
    );
    assert_eq!(read(&dynamic), before);
}
