//! Interoperability with qemu-img, the reference VHD implementation on Linux: qemu-img reads
//! what vhdprep writes, vhdprep reads what qemu-img writes, byte for byte.

mod common;
use common::*;
use vhdprep::disk::{DiskImage, ReadAt};

const MIB: u64 = 1 << 20;

/// Reads the whole virtual disk of an image through the library.
fn virtual_bytes(path: &std::path::Path) -> Vec<u8> {
    let img = DiskImage::open(path).expect("open");
    let disk = img.disk().expect("readable");
    let mut buf = vec![0u8; disk.len() as usize];
    disk.read_exact_at(&mut buf, 0).unwrap();
    buf
}

/// A raw source of an awkward size with data at the start, in the middle and at the very end.
fn awkward_raw(dir: &std::path::Path) -> std::path::PathBuf {
    let raw = p(dir, "src.raw");
    let len = 37 * MIB + 12_345;
    sparse_raw(
        &raw,
        len,
        &[(0, 70_000), (9 * MIB + 3, 5 << 20), (len - 4_000, 4_000)],
    );
    raw
}

#[test]
fn qemu_reads_our_fixed_vhd_from_raw() {
    let d = tempdir();
    let raw = awkward_raw(d.path());
    let out = p(d.path(), "out.vhd");
    let r = run(&[
        "convert",
        "-q",
        raw.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let info = qemu_info(&out, "vpc");
    assert_eq!(
        info["virtual-size"].as_u64(),
        Some(38 * MIB),
        "rounded up to a whole MiB"
    );
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 38 * MIB + 512);
    assert!(
        qemu_identical(&raw, "raw", &out, "vpc"),
        "qemu-img compare finds a difference"
    );
    // And our own info agrees that it is a clean fixed VHD.
    let (v, code) = info_json(&out);
    assert_eq!(v["format"], "vhd-fixed");
    assert_eq!(v["footer"]["creator_app"], "vhdp");
    assert_eq!(v["footer"]["checksum_valid"], true);
    assert_eq!(finding_ids(&v), Vec::<String>::new());
    assert_eq!(code, 0);
    assert_own_check_clean(&out);
}

#[test]
fn convert_output_is_sparse() {
    let d = tempdir();
    let raw = p(d.path(), "sparse.raw");
    sparse_raw(&raw, 512 * MIB, &[(100 * MIB, 4096)]);
    let out = p(d.path(), "out.vhd");
    assert!(run(&[
        "convert",
        "-q",
        raw.to_str().unwrap(),
        out.to_str().unwrap()
    ])
    .status
    .success());
    use std::os::unix::fs::MetadataExt;
    let allocated = std::fs::metadata(&out).unwrap().blocks() * 512;
    assert!(
        allocated < 16 * MIB,
        "output allocates {allocated} bytes for 4 KiB of data"
    );
    assert!(qemu_identical(&raw, "raw", &out, "vpc"));
    assert_own_check_clean(&out);
}

#[test]
fn qemu_reads_our_conversion_of_a_qemu_dynamic_vhd() {
    let d = tempdir();
    let raw = awkward_raw(d.path());
    let dynamic = p(d.path(), "dyn.vhd");
    qemu_vhd_from_raw(&raw, &dynamic, "subformat=dynamic");
    let (v, _) = info_json(&dynamic);
    assert_eq!(v["format"], "vhd-dynamic");
    assert!(finding_ids(&v).contains(&"VHD-002".to_string()));
    let out = p(d.path(), "fixed.vhd");
    let r = run(&[
        "convert",
        "-q",
        dynamic.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(qemu_identical(&dynamic, "vpc", &out, "vpc"));
    assert!(qemu_identical(&raw, "raw", &out, "vpc"));
    assert_eq!(
        qemu_info(&out, "vpc")["virtual-size"].as_u64().unwrap() % MIB,
        0
    );
    assert_own_check_clean(&out);
}

#[test]
fn qemu_reads_our_conversion_of_a_misaligned_qemu_fixed_vhd() {
    let d = tempdir();
    let raw = awkward_raw(d.path());
    let fixed = p(d.path(), "chs.vhd");
    // Without force_size qemu-img rounds the size to CHS geometry, not to a MiB.
    qemu_vhd_from_raw(&raw, &fixed, "subformat=fixed");
    let (v, code) = info_json(&fixed);
    assert_eq!(v["size_source"], "geometry");
    assert_eq!(v["virtual_size"], qemu_info(&fixed, "vpc")["virtual-size"]);
    assert!(finding_ids(&v).contains(&"VHD-004".to_string()));
    assert!(finding_ids(&v).contains(&"VHD-014".to_string()));
    assert_eq!(code, 1);
    let out = p(d.path(), "aligned.vhd");
    assert!(run(&[
        "convert",
        "-q",
        fixed.to_str().unwrap(),
        out.to_str().unwrap()
    ])
    .status
    .success());
    assert!(qemu_identical(&fixed, "vpc", &out, "vpc"));
    assert_eq!(
        qemu_info(&out, "vpc")["virtual-size"].as_u64().unwrap() % MIB,
        0
    );
    assert_own_check_clean(&out);
}

#[test]
fn we_read_qemu_fixed_vhds_byte_for_byte() {
    let d = tempdir();
    let raw = awkward_raw(d.path());
    let src = read(&raw);
    for (name, opts) in [
        ("force.vhd", "subformat=fixed,force_size=on"),
        ("chs.vhd", "subformat=fixed"),
        ("dyn.vhd", "subformat=dynamic"),
        ("dynforce.vhd", "subformat=dynamic,force_size=on"),
    ] {
        let vhd = p(d.path(), name);
        qemu_vhd_from_raw(&raw, &vhd, opts);
        let ours = virtual_bytes(&vhd);
        let qemu_size = qemu_info(&vhd, "vpc")["virtual-size"].as_u64().unwrap();
        assert_eq!(
            ours.len() as u64,
            qemu_size,
            "{name}: virtual size differs from qemu-img's"
        );
        assert!(ours.len() >= src.len(), "{name}");
        assert_eq!(
            &ours[..src.len()],
            &src[..],
            "{name}: content differs from the raw source"
        );
        assert!(
            ours[src.len()..].iter().all(|&b| b == 0),
            "{name}: padding not zero"
        );
    }
}

#[test]
fn other_containers_are_recognised_by_name() {
    let d = tempdir();
    let raw = p(d.path(), "small.raw");
    sparse_raw(&raw, 24 * MIB, &[(0, 4096)]);
    for (fmt, name) in [("vhdx", "vhdx"), ("qcow2", "qcow2"), ("vmdk", "vmdk")] {
        let out = p(d.path(), &format!("x.{fmt}"));
        qemu_img(&[
            "convert",
            "-f",
            "raw",
            "-O",
            fmt,
            raw.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        let (v, code) = info_json(&out);
        assert_eq!(v["format"], name, "{fmt}");
        assert_eq!(finding_ids(&v), vec!["VHD-001".to_string()], "{fmt}");
        assert_eq!(code, 1, "{fmt}");
        // vhdprep reads them (issue 12): the conversion is qemu-img's bytes.
        let o = p(d.path(), &format!("o-{fmt}.vhd"));
        let r = run(&["convert", "-q", out.to_str().unwrap(), o.to_str().unwrap()]);
        assert_ok(&r);
        assert!(qemu_identical(&raw, "raw", &o, "vpc"), "{fmt}");
    }
}

#[test]
fn info_matches_qemu_for_sizes_and_formats() {
    let d = tempdir();
    let raw = awkward_raw(d.path());
    let (v, code) = info_json(&raw);
    assert_eq!(v["format"], "raw");
    assert_eq!(v["virtual_size"], qemu_info(&raw, "raw")["virtual-size"]);
    // Pattern bytes with no partition table or filesystem: VHD-017 says it may be garbage.
    assert_eq!(
        finding_ids(&v),
        vec!["VHD-001".to_string(), "VHD-017".to_string()]
    );
    assert_eq!(code, 1);
}
