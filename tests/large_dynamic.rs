//! Dynamic VHDs above qemu-img's 2040 GiB limit (Azure data disks go to 32 TiB). qemu-img
//! cannot write one, so the test lays one out byte by byte per the VHD specification: footer
//! copy, dynamic header, block table, two allocated blocks (first and last), footer.

mod common;
use common::*;
use std::os::unix::fs::FileExt;
use vhdprep::disk::vhd::{DiskType, Footer, Geometry};

const MIB: u64 = 1 << 20;
const BLOCK: u64 = 2 * MIB;

fn write_dynamic(path: &std::path::Path, size: u64, first: &[u8], last: &[u8]) {
    let entries = size.div_ceil(BLOCK);
    let bat_at = 1536u64;
    let bat_len = (entries * 4).div_ceil(512) * 512;
    let block0_at = bat_at + bat_len;
    let bitmap = 512u64; // 4096 sectors per block -> 512 bitmap bytes
    let block_last_at = block0_at + bitmap + BLOCK;
    let footer_at = block_last_at + bitmap + BLOCK;
    let f = std::fs::File::create(path).unwrap();
    f.set_len(footer_at + 512).unwrap();
    let mut footer = Footer::new_fixed(size);
    footer.disk_type = DiskType::Dynamic;
    footer.data_offset = 512;
    footer.geometry = Geometry::MAX;
    let fb = footer.to_bytes();
    f.write_all_at(&fb, 0).unwrap();
    f.write_all_at(&fb, footer_at).unwrap();
    let mut h = [0u8; 1024];
    h[0..8].copy_from_slice(b"cxsparse");
    h[8..16].fill(0xff);
    h[16..24].copy_from_slice(&bat_at.to_be_bytes());
    h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    h[28..32].copy_from_slice(&(entries as u32).to_be_bytes());
    h[32..36].copy_from_slice(&(BLOCK as u32).to_be_bytes());
    let sum = h.iter().fold(0u32, |a, &b| a.wrapping_add(u32::from(b)));
    h[36..40].copy_from_slice(&(!sum).to_be_bytes());
    f.write_all_at(&h, 512).unwrap();
    let mut bat = vec![0xffu8; bat_len as usize];
    bat[0..4].copy_from_slice(&((block0_at / 512) as u32).to_be_bytes());
    let li = ((entries - 1) * 4) as usize;
    bat[li..li + 4].copy_from_slice(&((block_last_at / 512) as u32).to_be_bytes());
    f.write_all_at(&bat, bat_at).unwrap();
    f.write_all_at(&[0xffu8; 512], block0_at).unwrap();
    f.write_all_at(first, block0_at + bitmap).unwrap();
    f.write_all_at(&[0xffu8; 512], block_last_at).unwrap();
    let last_in_block = (size - last.len() as u64) % BLOCK;
    f.write_all_at(last, block_last_at + bitmap + last_in_block)
        .unwrap();
}

#[test]
fn three_tib_dynamic_vhd_reads_and_converts() {
    let d = tempdir();
    let size = 3 * (1u64 << 40) + 7 * MIB;
    let first = pattern(1, 4096);
    let last = pattern(2, 1000);
    let dynamic = p(d.path(), "big-dyn.vhd");
    write_dynamic(&dynamic, size, &first, &last);

    let (v, code) = info_json(&dynamic);
    assert_eq!(v["format"], "vhd-dynamic");
    assert_eq!(v["virtual_size"].as_u64(), Some(size));
    assert_eq!(v["dynamic_header"]["checksum_valid"], true);
    assert!(v.get("unreadable").is_none(), "{v}");
    assert_eq!(code, 1, "dynamic is an Azure error (VHD-002)");

    let fixed = p(d.path(), "big-fixed.vhd");
    let out = run(&[
        "convert",
        "-q",
        dynamic.to_str().unwrap(),
        fixed.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = std::fs::File::open(&fixed).unwrap();
    assert_eq!(f.metadata().unwrap().len(), size + 512);
    let mut a = vec![0u8; first.len()];
    f.read_exact_at(&mut a, 0).unwrap();
    assert_eq!(a, first);
    let mut b = vec![0u8; last.len()];
    f.read_exact_at(&mut b, size - last.len() as u64).unwrap();
    assert_eq!(b, last);
    let mut mid = vec![1u8; 4096];
    f.read_exact_at(&mut mid, size / 2).unwrap();
    assert!(mid.iter().all(|&x| x == 0));
    use std::os::unix::fs::MetadataExt;
    assert!(
        f.metadata().unwrap().blocks() * 512 < 64 * MIB,
        "output must stay sparse"
    );
    let (v, code) = info_json(&fixed);
    assert_eq!(v["format"], "vhd-fixed");
    assert_eq!(finding_ids(&v), Vec::<String>::new());
    assert_eq!(code, 0);
}
