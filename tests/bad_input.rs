//! Bad input: every case gets one clear line naming the file, the right exit status, no panic,
//! and nothing written.

mod common;
use common::*;
use std::os::unix::fs::FileExt;
use vhdprep::disk::vhd::{DiskType, Footer};

const MIB: u64 = 1 << 20;

/// Asserts exit status `code`, no panic, and (for status 2) a single stderr line naming `name`.
fn expect(out: &std::process::Output, code: i32, name: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    if code == 2 {
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "one line expected: {err}"
        );
        assert!(err.contains(name), "message must name {name}: {err}");
    }
}

#[test]
fn missing_path_directory_empty_and_tiny_files() {
    let d = tempdir();
    let missing = p(d.path(), "nope.vhd");
    let out = run(&["info", missing.to_str().unwrap()]);
    expect(&out, 2, "nope.vhd");
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such file"));

    let out = run(&["info", d.path().to_str().unwrap()]);
    expect(&out, 2, d.path().to_str().unwrap());
    assert!(String::from_utf8_lossy(&out.stderr).contains("directory"));

    let empty = p(d.path(), "empty.img");
    write_file(&empty, b"");
    let out = run(&["info", empty.to_str().unwrap()]);
    expect(&out, 2, "empty.img");
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));

    let tiny = p(d.path(), "tiny.img");
    write_file(&tiny, &[7u8; 511]);
    let out = run(&["info", tiny.to_str().unwrap()]);
    expect(&out, 2, "tiny.img");
    assert!(String::from_utf8_lossy(&out.stderr).contains("511 bytes"));
    for cmd in [
        &["convert", "tiny.img", "o.vhd"][..],
        &["fix", "--in-place", "tiny.img"][..],
    ] {
        let out = vhdprep().current_dir(d.path()).args(cmd).output().unwrap();
        expect(&out, 2, "tiny.img");
    }
    assert_eq!(read(&tiny), vec![7u8; 511]);
    assert!(!p(d.path(), "o.vhd").exists());
}

#[test]
fn random_bytes_are_a_raw_disk_with_a_finding() {
    let d = tempdir();
    let f = p(d.path(), "noise.bin");
    write_file(&f, &pattern(42, 3 * MIB as usize + 17));
    let (v, code) = info_json(&f);
    assert_eq!(v["format"], "raw");
    assert_eq!(v["probes"]["matched"], serde_json::Value::Null);
    // Not a VHD, and no partition table or filesystem: maybe garbage (VHD-017).
    assert_eq!(finding_ids(&v), vec!["VHD-001", "VHD-017"]);
    assert_eq!(v["findings"][1]["severity"], "warning");
    assert_eq!(code, 1);
}

#[test]
fn unreadable_file_is_a_clear_error() {
    // Root reads through permissions, so make it unreadable by being a socket-less fifo instead.
    let d = tempdir();
    let fifo = p(d.path(), "pipe");
    let st = tool("mkfifo", "coreutils", &[fifo.to_str().unwrap()]);
    assert!(st.status.success());
    let out = run(&["info", fifo.to_str().unwrap()]);
    expect(&out, 2, "pipe");
}

#[test]
fn footer_with_a_bad_checksum() {
    let d = tempdir();
    let f = p(d.path(), "bad.vhd");
    let mut bytes = vec![0u8; 20 * MIB as usize];
    bytes.extend_from_slice(&Footer::new_fixed(20 * MIB).to_bytes_with_checksum(1234));
    write_file(&f, &bytes);
    let (v, code) = info_json(&f);
    assert_eq!(v["format"], "vhd-fixed");
    assert_eq!(v["footer"]["checksum_valid"], false);
    assert_eq!(finding_ids(&v), vec!["VHD-003"]);
    assert_eq!(code, 1);
    // qemu-img also notices (it warns) but still reads it; so do we.
    let r = run(&[
        "convert",
        "-q",
        f.to_str().unwrap(),
        p(d.path(), "o.vhd").to_str().unwrap(),
    ]);
    assert!(r.status.success());
}

#[test]
fn footer_claiming_more_than_the_file_holds() {
    let d = tempdir();
    let f = p(d.path(), "short.vhd");
    let mut bytes = vec![1u8; 4 * MIB as usize];
    bytes.extend_from_slice(&Footer::new_fixed(100 * MIB).to_bytes());
    write_file(&f, &bytes);
    let before = read(&f);
    let (v, code) = info_json(&f);
    assert!(finding_ids(&v).contains(&"VHD-005".to_string()));
    assert!(v["unreadable"].as_str().unwrap().contains("truncated"));
    assert_eq!(code, 1);
    let out = run(&[
        "convert",
        f.to_str().unwrap(),
        p(d.path(), "o.vhd").to_str().unwrap(),
    ]);
    expect(&out, 2, "short.vhd");
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    let out = run(&["fix", "--in-place", f.to_str().unwrap()]);
    expect(&out, 2, "short.vhd");
    assert_eq!(read(&f), before, "a refused fix writes nothing");
}

#[test]
fn convert_refuses_to_overwrite_or_to_target_the_source() {
    let d = tempdir();
    let raw = p(d.path(), "a.raw");
    sparse_raw(&raw, 2 * MIB, &[(0, 100)]);
    let dst = p(d.path(), "exists.vhd");
    write_file(&dst, b"keep me");
    let out = run(&["convert", raw.to_str().unwrap(), dst.to_str().unwrap()]);
    expect(&out, 2, "exists.vhd");
    assert_eq!(read(&dst), b"keep me");
    let out = run(&[
        "convert",
        "-q",
        "--force",
        raw.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]);
    expect(&out, 0, "");
    assert!(qemu_identical(&raw, "raw", &dst, "vpc"));
    let out = run(&[
        "convert",
        "--force",
        raw.to_str().unwrap(),
        raw.to_str().unwrap(),
    ]);
    expect(&out, 2, "a.raw");
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), 2 * MIB);
}

/// Turns a qemu-written dynamic VHD into a differencing one: disk type 4, a parent name and
/// a W2ru locator, checksums fixed. (qemu-img cannot create differencing VHDs.)
fn make_differencing(path: &std::path::Path) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let len = f.metadata().unwrap().len();
    let mut foot = [0u8; 512];
    f.read_exact_at(&mut foot, len - 512).unwrap();
    let mut footer = Footer::parse(&foot);
    footer.disk_type = DiskType::Differencing;
    let fb = footer.to_bytes();
    f.write_all_at(&fb, 0).unwrap();
    f.write_all_at(&fb, len - 512).unwrap();
    let hdr_at = footer.data_offset;
    let mut h = [0u8; 1024];
    f.read_exact_at(&mut h, hdr_at).unwrap();
    for (i, u) in "base-image.vhd".encode_utf16().enumerate() {
        h[64 + 2 * i..66 + 2 * i].copy_from_slice(&u.to_be_bytes());
    }
    // Locator data in the (zero) sector right after the header.
    let loc: Vec<u8> = ".\\base-image.vhd"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let loc_at = hdr_at + 1024;
    h[576..580].copy_from_slice(b"W2ru");
    h[580..584].copy_from_slice(&512u32.to_be_bytes());
    h[584..588].copy_from_slice(&(loc.len() as u32).to_be_bytes());
    h[592..600].copy_from_slice(&loc_at.to_be_bytes());
    h[36..40].fill(0);
    let sum = h.iter().fold(0u32, |a, &b| a.wrapping_add(u32::from(b)));
    h[36..40].copy_from_slice(&(!sum).to_be_bytes());
    f.write_all_at(&h, hdr_at).unwrap();
    f.write_all_at(&loc, loc_at).unwrap();
}

#[test]
fn differencing_disk_names_its_parent() {
    let d = tempdir();
    let raw = p(d.path(), "a.raw");
    sparse_raw(&raw, 8 * MIB, &[(0, 4096)]);
    let vhd = p(d.path(), "child.vhd");
    qemu_vhd_from_raw(&raw, &vhd, "");
    make_differencing(&vhd);
    let (v, code) = info_json(&vhd);
    assert_eq!(v["format"], "vhd-differencing");
    assert_eq!(v["dynamic_header"]["parent_name"], "base-image.vhd");
    assert!(finding_ids(&v).contains(&"VHD-002".to_string()));
    assert_eq!(code, 1);
    let out = run(&[
        "convert",
        vhd.to_str().unwrap(),
        p(d.path(), "o.vhd").to_str().unwrap(),
    ]);
    expect(&out, 2, "child.vhd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("parent 'base-image.vhd'")
            && err.contains("base-image.vhd (W2ru locator: no such file)")
            && err.contains("--parent PATH"),
        "{err}"
    );
    assert!(!p(d.path(), "o.vhd").exists());
}

#[test]
fn corrupt_dynamic_header_is_reported_not_read() {
    let d = tempdir();
    let raw = p(d.path(), "a.raw");
    sparse_raw(&raw, 8 * MIB, &[(0, 4096)]);
    let vhd = p(d.path(), "dyn.vhd");
    qemu_vhd_from_raw(&raw, &vhd, "");
    // Block size field (header offset 32) set to a non-power of two.
    let f = std::fs::OpenOptions::new().write(true).open(&vhd).unwrap();
    f.write_all_at(&3000u32.to_be_bytes(), 512 + 32).unwrap();
    let (v, code) = info_json(&vhd);
    assert!(
        v["unreadable"].as_str().unwrap().contains("block size"),
        "{v}"
    );
    assert_eq!(code, 1);
    let out = run(&[
        "convert",
        vhd.to_str().unwrap(),
        p(d.path(), "o.vhd").to_str().unwrap(),
    ]);
    expect(&out, 2, "dyn.vhd");
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    for args in [
        &["convert", "only-one-arg"][..],
        &["no-such-command"][..],
        &["convert", "--creator", "toolong", "a", "b"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error:") && !err.contains("panicked"),
            "{err}"
        );
    }
}
