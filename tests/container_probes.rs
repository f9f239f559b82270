//! Container probes against the programs on the other side: every format qemu-img creates is
//! named by vhdprep as `qemu-img info` names it; bochs, cloop, DMG and COWD files crafted from
//! their format descriptions are named the same by qemu-img (which opens them); LUKS1/2 volumes
//! made by cryptsetup and BitLocker headers are named as `blkid -p` names them; compressed
//! streams and tar archives as `file` names them. Each is refused by name (exit 2, one line
//! naming the file and the format, no destination, the file byte for byte unchanged), `info
//! --json` lists the probes that ran, and the command in the refusal is run and turns the file
//! back into its source. Raw disks (the fixture images, a bare ext4, a FAT volume with BitLocker
//! To Go's OEM name) stay raw; a raw file holding nothing recognisable gets VHD-017.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1 << 20;
const PASSPHRASE: &str = "correct horse battery staple";

/// A 4 MiB raw source with data at its start, middle and end.
fn source(dir: &Path) -> PathBuf {
    let src = p(dir, "src.raw");
    sparse_raw(
        &src,
        4 * MIB,
        &[(0, 5000), (MIB + 17, 70_000), (4 * MIB - 3000, 3000)],
    );
    src
}

/// The passphrase in a file, for `--object secret,file=` and `cryptsetup --key-file`.
fn passphrase_file(dir: &Path) -> PathBuf {
    let f = p(dir, "passphrase");
    write_file(&f, PASSPHRASE.as_bytes());
    f
}

/// `qemu-img info --output=json` without `-f`: the format qemu-img probes.
fn qemu_probed_format(path: &Path) -> String {
    let text = qemu_img(&["info", "--output=json", path.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&text).unwrap();
    v["format"].as_str().unwrap().to_string()
}

/// `blkid -p -o export` as `KEY=value` lines (empty when blkid finds nothing).
fn blkid(path: &Path) -> String {
    let out = tool(
        "blkid",
        "util-linux",
        &["-p", "-o", "export", path.to_str().unwrap()],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The probe names, in the order vhdprep runs them.
fn probe_order() -> Vec<&'static str> {
    vhdprep::disk::probe::PROBES
        .iter()
        .map(|p| p.name)
        .collect()
}

/// The refusal contract for `img`, which vhdprep must name `format` through `probe`:
/// `info --json` names it and lists the probes up to the matching one, with VHD-001 (exit 1);
/// `convert` exits 2 with one line naming the file and the format and writes no destination;
/// `fix --in-place` does the same and leaves the file byte for byte unchanged. Returns the
/// refusal line.
fn assert_refused(img: &Path, format: &str, probe: &str) -> String {
    let name = img.to_str().unwrap();
    let (v, code) = info_json(img);
    assert_eq!(v["format"], format, "{name}: {v}");
    assert_eq!(v["probes"]["matched"], probe, "{name}");
    let order = probe_order();
    let upto = order.iter().position(|n| *n == probe).unwrap();
    let ran: Vec<&str> = v["probes"]["ran"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(ran, order[..=upto], "{name}");
    assert!(v["unreadable"].as_str().is_some(), "{name}");
    assert_eq!(finding_ids(&v)[0], "VHD-001", "{name}");
    assert_eq!(code, 1, "{name}");

    let before = read(img);
    let dst = img.with_extension("out.vhd");
    let out = run(&["convert", "-q", name, dst.to_str().unwrap()]);
    let err = one_line_error(&out, name, format);
    assert!(!dst.exists(), "{name}: convert wrote a destination");
    let fix = run(&["fix", "--in-place", name]);
    let fix_err = one_line_error(&fix, name, format);
    assert_eq!(read(img), before, "{name}: fix --in-place changed the file");
    assert_eq!(
        err.split_once(": cannot convert: ").map(|(_, r)| r),
        fix_err.split_once(": ").map(|(_, r)| r),
        "{name}: convert and fix give the same reason"
    );
    fix_err
}

/// The contract for a container vhdprep reads (issue 12): `info --json` names it with the
/// probes up to the matching one and VHD-001 (exit 1) whose fix is `vhdprep convert`; the
/// virtual disk is readable; `convert` gives a VHD `qemu-img compare` finds equal to `src`;
/// `fix --in-place` refuses in one line (the data must move) and leaves the file unchanged.
fn assert_read(img: &Path, format: &str, probe: &str, src: &Path) {
    let name = img.to_str().unwrap();
    let (v, code) = info_json(img);
    assert_eq!(v["format"], format, "{name}: {v}");
    assert_eq!(v["probes"]["matched"], probe, "{name}");
    assert!(v["unreadable"].is_null(), "{name}: {v}");
    assert_eq!(finding_ids(&v)[0], "VHD-001", "{name}");
    assert_eq!(
        v["findings"][0]["remediation"],
        format!("vhdprep convert {name} OUT.vhd"),
        "{name}"
    );
    assert_eq!(code, 1, "{name}");
    let before = read(img);
    let dst = PathBuf::from(format!("{name}.out.vhd"));
    let out = run(&["convert", "-q", name, dst.to_str().unwrap()]);
    assert!(out.status.success(), "{name}: {out:?}");
    assert!(qemu_identical(src, "raw", &dst, "vpc"), "{name}");
    let fix = run(&["fix", "--in-place", name]);
    let err = one_line_error(&fix, name, format);
    assert!(err.contains("vhdprep convert"), "{err}");
    assert_eq!(read(img), before, "{name}: fix --in-place changed the file");
}

/// Exit 2, one stderr line naming the file and `(format`.
fn one_line_error(out: &std::process::Output, name: &str, format: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert_eq!(out.status.code(), Some(2), "{name}: {err}");
    assert_eq!(err.lines().count(), 1, "{name}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(name), "{err}");
    assert!(err.contains(&format!("({format}")), "{err}");
    err.trim_start_matches("vhdprep: ").to_string()
}

/// The first command quoted in a refusal (`...: `COMMAND`, then ...`).
fn suggested_command(refusal: &str) -> String {
    let start = refusal.find('`').expect("a command in backquotes") + 1;
    let len = refusal[start..].find('`').unwrap();
    refusal[start..start + len].to_string()
}

/// Runs the refusal's command in `dir` (with the real passphrase file) and returns the path
/// of what it wrote (`OUT.raw` or `OUT.img`).
fn run_suggested(refusal: &str, dir: &Path, pass: &Path) -> PathBuf {
    let cmd = suggested_command(refusal).replace("PASSPHRASE_FILE", pass.to_str().unwrap());
    let out = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made = ["OUT.raw", "OUT.img"]
        .iter()
        .map(|n| p(dir, n))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("`{cmd}` wrote neither OUT.raw nor OUT.img"));
    made
}

/// Removes what [`run_suggested`] made.
fn clean(dir: &Path) {
    for n in ["OUT.raw", "OUT.img"] {
        let _ = std::fs::remove_file(p(dir, n));
    }
}

#[test]
fn qemu_img_formats_are_named_as_qemu_names_them_read_or_refused_and_converted_back() {
    let d = tempdir();
    let src = source(d.path());
    let pass = passphrase_file(d.path());
    for (format, opts, probe) in [
        ("vdi", "", "vdi"),
        ("qed", "", "qed"),
        ("qcow", "", "qcow"),
        ("parallels", "", "parallels"),
        ("vhdx", "", "vhdx"),
        ("qcow2", "", "qcow2"),
        ("qcow2", "compat=0.10", "qcow2"),
        ("vmdk", "", "vmdk"),
        ("vmdk", "subformat=streamOptimized", "vmdk"),
        ("vmdk", "subformat=monolithicFlat", "vmdk"),
    ] {
        let img = p(d.path(), &format!("x-{format}-{}.{format}", opts.len()));
        let mut args = vec!["convert", "-f", "raw", "-O", format];
        if !opts.is_empty() {
            args.extend(["-o", opts]);
        }
        args.extend([src.to_str().unwrap(), img.to_str().unwrap()]);
        qemu_img(&args);
        assert_eq!(qemu_probed_format(&img), format, "{format} {opts}");
        if matches!(format, "vdi" | "vhdx" | "qcow2" | "vmdk") {
            assert_read(&img, format, probe, &src);
            continue;
        }
        let refusal = assert_refused(&img, format, probe);
        let out = run_suggested(&refusal, d.path(), &pass);
        assert!(
            qemu_identical(&src, "raw", &out, "raw"),
            "{format} {opts}: `{}` did not give back the source",
            suggested_command(&refusal)
        );
        clean(d.path());
    }
    // The extent of a monolithicFlat VMDK is the disk itself: raw, as qemu-img says too.
    let flat = p(d.path(), "x-vmdk-24-flat.vmdk");
    assert_eq!(qemu_probed_format(&flat), "raw");
    let (v, _) = info_json(&flat);
    assert_eq!(v["format"], "raw");
}

#[test]
fn encrypted_qemu_images_are_named_and_decrypted_by_the_suggested_command() {
    let d = tempdir();
    let src = source(d.path());
    let pass = passphrase_file(d.path());
    let secret = format!("secret,id=sec0,file={}", pass.display());
    for (format, opts, encryption) in [
        // A 10 ms key derivation instead of qemu's default 2 s: the test is about headers.
        ("luks", "key-secret=sec0,iter-time=10", "luks1"),
        (
            "qcow2",
            "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
            "luks",
        ),
        ("qcow2", "encrypt.format=aes,encrypt.key-secret=sec0", "aes"),
        ("qcow", "encrypt.format=aes,encrypt.key-secret=sec0", "aes"),
    ] {
        let img = p(d.path(), &format!("x-{encryption}.{format}"));
        qemu_img(&[
            "convert",
            "--object",
            &secret,
            "-f",
            "raw",
            "-O",
            format,
            "-o",
            opts,
            src.to_str().unwrap(),
            img.to_str().unwrap(),
        ]);
        let q: Value =
            serde_json::from_str(&qemu_img(&["info", "--output=json", img.to_str().unwrap()]))
                .unwrap();
        assert_eq!(q["format"], format);
        assert_eq!(q["encrypted"], true, "{format}");
        let (v, _) = info_json(&img);
        assert_eq!(v["encryption"], encryption, "{format} {opts}");
        let refusal = assert_refused(&img, format, format);
        assert!(refusal.contains("--object secret"), "{refusal}");
        let out = run_suggested(&refusal, d.path(), &pass);
        assert!(
            qemu_identical(&src, "raw", &out, "raw"),
            "{format} {opts}: the suggested command did not decrypt the source"
        );
        clean(d.path());
    }
}

/// `cryptsetup luksFormat` on a file (PBKDF2 at its minimum cost: the test is about headers).
fn luks_format(path: &Path, version: &str, pass: &Path) {
    sparse_raw(path, 20 * MIB, &[]);
    let out = tool(
        "cryptsetup",
        "cryptsetup-bin",
        &[
            "luksFormat",
            "-q",
            "--type",
            version,
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            pass.to_str().unwrap(),
            path.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "cryptsetup luksFormat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cryptsetup_luks1_and_luks2_are_named_as_blkid_names_them() {
    let d = tempdir();
    let pass = passphrase_file(d.path());
    for (version, qemu_says) in [("luks1", "luks"), ("luks2", "raw")] {
        let img = p(d.path(), &format!("c.{version}"));
        luks_format(&img, version, &pass);
        let b = blkid(&img);
        assert!(b.contains("TYPE=crypto_LUKS"), "{b}");
        assert!(b.contains(&format!("VERSION={}", &version[4..])), "{b}");
        // qemu's LUKS driver knows version 1 only: it calls a LUKS2 volume raw. vhdprep
        // refuses both.
        assert_eq!(qemu_probed_format(&img), qemu_says);
        let (v, _) = info_json(&img);
        assert_eq!(v["encryption"], version);
        let refusal = assert_refused(&img, "luks", "luks");
        if version == "luks1" {
            let out = run_suggested(&refusal, d.path(), &pass);
            let q = qemu_img(&[
                "info",
                "--output=json",
                "--object",
                &format!("secret,id=sec0,file={}", pass.display()),
                "--image-opts",
                &format!(
                    "driver=luks,file.filename={},key-secret=sec0",
                    img.display()
                ),
            ]);
            let q: Value = serde_json::from_str(&q).unwrap();
            assert_eq!(
                std::fs::metadata(&out).unwrap().len(),
                q["virtual-size"].as_u64().unwrap()
            );
            clean(d.path());
        } else {
            // Opening needs device-mapper, which the test machine's kernel lacks: the command
            // is checked for its shape only.
            assert!(
                refusal.contains(&format!("`cryptsetup open {} vhdprep-src`", img.display())),
                "{refusal}"
            );
            assert!(refusal.contains("`vhdprep convert /dev/mapper/vhdprep-src OUT.vhd`"));
        }
    }
    // A LUKS2 volume whose primary header was wiped: blkid and vhdprep find the secondary one.
    let img = p(d.path(), "c.luks2");
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[0u8; 4096], 0).unwrap();
    assert!(blkid(&img).contains("TYPE=crypto_LUKS"));
    let (v, _) = info_json(&img);
    assert_eq!(v["format"], "luks");
    assert!(v["probes"]["evidence"]
        .as_str()
        .unwrap()
        .contains("secondary header"));
}

/// A Bochs growing image of `disk` bytes, every extent unallocated (qemu `block/bochs.c`).
fn bochs(disk: u64) -> Vec<u8> {
    let extent = 64 * 1024u32;
    let catalog = (disk / u64::from(extent)) as u32;
    let mut h = vec![0u8; 512];
    h[..22].copy_from_slice(b"Bochs Virtual HD Image");
    h[32..39].copy_from_slice(b"Redolog");
    h[48..55].copy_from_slice(b"Growing");
    for (at, v) in [
        (64, 0x0002_0000),
        (68, 512),
        (72, catalog),
        (76, 512),
        (80, extent),
    ] {
        h[at..at + 4].copy_from_slice(&u32::to_le_bytes(v));
    }
    h[88..96].copy_from_slice(&disk.to_le_bytes());
    h.extend(std::iter::repeat_n(0xffu8, 4 * catalog as usize));
    h
}

/// A cloop V2.0 image of `blocks` zlib-compressed zero blocks of 64 KiB (qemu `block/cloop.c`).
fn cloop(blocks: u32) -> Vec<u8> {
    let block = 64 * 1024u32;
    let pre =
        b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";
    let mut v = vec![0u8; 128];
    v[..pre.len()].copy_from_slice(pre);
    v.extend_from_slice(&block.to_be_bytes());
    v.extend_from_slice(&blocks.to_be_bytes());
    // Each block as a zlib stream of stored (uncompressed) deflate blocks: valid zlib.
    let zeros = vec![0u8; block as usize];
    let comp = zlib_stored(&zeros);
    let first = 128 + 8 + 8 * (u64::from(blocks) + 1);
    for i in 0..=u64::from(blocks) {
        v.extend_from_slice(&(first + i * comp.len() as u64).to_be_bytes());
    }
    for _ in 0..blocks {
        v.extend_from_slice(&comp);
    }
    v
}

/// `data` as a zlib stream of stored deflate blocks (RFC 1950/1951), with its Adler-32.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let n = c.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// An Apple UDIF image of `sectors` zero sectors: an XML property list holding one `mish`
/// block with a zero-fill chunk, then the 512-byte `koly` trailer (qemu `block/dmg.c`).
fn dmg(sectors: u64) -> Vec<u8> {
    let mut mish = vec![0u8; 204 + 2 * 40];
    mish[..4].copy_from_slice(b"mish");
    mish[4..8].copy_from_slice(&1u32.to_be_bytes());
    mish[16..24].copy_from_slice(&sectors.to_be_bytes());
    mish[204..208].copy_from_slice(&2u32.to_be_bytes()); // zero fill
    mish[216..224].copy_from_slice(&sectors.to_be_bytes());
    mish[244..248].copy_from_slice(&0xffff_ffffu32.to_be_bytes()); // terminator
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict><key>resource-fork</key><dict><key>blkx</key><array><dict><key>Data</key><data>{}</data></dict></array></dict></dict></plist>\n",
        base64(&mish)
    );
    let mut v = xml.into_bytes();
    let mut koly = [0u8; 512];
    koly[..4].copy_from_slice(b"koly");
    koly[4..8].copy_from_slice(&4u32.to_be_bytes());
    koly[8..12].copy_from_slice(&512u32.to_be_bytes());
    koly[0xe0..0xe8].copy_from_slice(&(v.len() as u64).to_be_bytes()); // XML at offset 0
    koly[0x1ec..0x1f4].copy_from_slice(&sectors.to_be_bytes());
    v.extend_from_slice(&koly);
    v
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// A VMware ESX sparse extent (`COWD`, VMDK3) of `sectors` unallocated sectors, with the
/// descriptor text qemu reads its CID from at 0x200.
fn cowd(sectors: u32) -> Vec<u8> {
    let mut v = vec![0u8; 4096];
    v[..4].copy_from_slice(b"COWD");
    // version, flags, disk sectors, granularity, L1 dir offset (sectors), L1 dir size,
    // file sectors.
    for (i, x) in [1u32, 3, sectors, 8, 4, 1, 8].iter().enumerate() {
        v[4 + 4 * i..8 + 4 * i].copy_from_slice(&x.to_le_bytes());
    }
    let desc = b"CID=12345678\nparentCID=ffffffff\n";
    v[0x200..0x200 + desc.len()].copy_from_slice(desc);
    v
}

#[test]
fn crafted_bochs_cloop_dmg_and_cowd_are_named_as_qemu_names_them() {
    let d = tempdir();
    let pass = passphrase_file(d.path());
    for (name, bytes, format, size) in [
        ("x.bochs", bochs(MIB), "bochs", MIB),
        ("x.cloop", cloop(2), "cloop", 128 * 1024),
        // qemu-img probes DMG by its name only: the file must end in .dmg for it.
        ("x.dmg", dmg(2048), "dmg", MIB),
        ("x-cowd.vmdk", cowd(2048), "vmdk", MIB),
    ] {
        let img = p(d.path(), name);
        write_file(&img, &bytes);
        assert_eq!(qemu_probed_format(&img), format, "{name}");
        let refusal = assert_refused(&img, format, format);
        let out = run_suggested(&refusal, d.path(), &pass);
        assert_eq!(std::fs::metadata(&out).unwrap().len(), size, "{name}");
        assert!(
            read(&out).iter().all(|&b| b == 0),
            "{name}: zero disk expected"
        );
        clean(d.path());
    }
    // vhdprep decides by content: the same DMG under another name is still a DMG (qemu-img
    // calls it raw), and its refusal's `-f dmg` command converts it.
    let img = p(d.path(), "renamed.img");
    write_file(&img, &dmg(2048));
    assert_eq!(qemu_probed_format(&img), "raw");
    let refusal = assert_refused(&img, "dmg", "dmg");
    let out = run_suggested(&refusal, d.path(), &pass);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), MIB);
}

/// A 1 MiB volume starting with the BitLocker boot sector `jump` + `oem`, with FVE metadata
/// at `fve` (recorded at `fve_at`, when given).
fn bitlocker(jump: &[u8], oem: &[u8], fve_at: Option<usize>, fve: u64) -> Vec<u8> {
    let mut v = vec![0u8; MIB as usize];
    v[..3].copy_from_slice(jump);
    v[3..11].copy_from_slice(oem);
    if let Some(at) = fve_at {
        v[at..at + 8].copy_from_slice(&fve.to_le_bytes());
        let f = fve as usize;
        v[f..f + 8].copy_from_slice(b"-FVE-FS-");
        v[f + 8..f + 10].copy_from_slice(&48u16.to_le_bytes());
        v[f + 10..f + 12].copy_from_slice(&2u16.to_le_bytes());
    }
    v[510] = 0x55;
    v[511] = 0xaa;
    v
}

#[test]
fn bitlocker_volumes_are_named_as_blkid_names_them() {
    let d = tempdir();
    for (name, bytes) in [
        (
            "win7.img",
            bitlocker(b"\xeb\x58\x90", b"-FVE-FS-", Some(176), 0x1_0000),
        ),
        (
            "vista.img",
            bitlocker(b"\xeb\x52\x90", b"-FVE-FS-", None, 0),
        ),
        (
            "togo.img",
            bitlocker(b"\xeb\x58\x90", b"MSWIN4.1", Some(440), 0x2_0000),
        ),
    ] {
        let img = p(d.path(), name);
        write_file(&img, &bytes);
        assert!(
            blkid(&img).contains("TYPE=BitLocker"),
            "{name}: {}",
            blkid(&img)
        );
        assert_eq!(
            qemu_probed_format(&img),
            "raw",
            "qemu has no BitLocker driver"
        );
        let refusal = assert_refused(&img, "bitlocker", "bitlocker");
        assert!(
            refusal.contains("cryptsetup open --type bitlk"),
            "{refusal}"
        );
    }
    // A real FAT volume whose OEM name is BitLocker To Go's (Windows 9x wrote it too), without
    // FVE metadata: blkid says vfat, vhdprep says raw and finds the filesystem (no VHD-017).
    let fat = p(d.path(), "fat.img");
    sparse_raw(&fat, 8 * MIB, &[]);
    let out = tool("mkfs.vfat", "dosfstools", &[fat.to_str().unwrap()]);
    assert!(out.status.success());
    let f = std::fs::OpenOptions::new().write(true).open(&fat).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"MSWIN4.1", 3).unwrap();
    assert!(blkid(&fat).contains("TYPE=vfat"), "{}", blkid(&fat));
    let (v, _) = info_json(&fat);
    assert_eq!(v["format"], "raw");
    assert_eq!(finding_ids(&v), vec!["VHD-001"]);
}

#[test]
fn compressed_images_and_tar_archives_are_named_as_file_names_them() {
    let d = tempdir();
    let src = source(d.path());
    let pass = passphrase_file(d.path());
    for (format, program, package, args, file_says) in [
        ("gzip", "gzip", "gzip", &["-k", "-f"][..], "gzip compressed"),
        (
            "xz",
            "xz",
            "xz-utils",
            &["-k", "-f", "-0"][..],
            "XZ compressed",
        ),
        (
            "zstd",
            "zstd",
            "zstd",
            &["-q", "-f"][..],
            "Zstandard compressed",
        ),
        (
            "bzip2",
            "bzip2",
            "bzip2",
            &["-k", "-f"][..],
            "bzip2 compressed",
        ),
    ] {
        let mut a = args.to_vec();
        a.push(src.to_str().unwrap());
        assert!(tool(program, package, &a).status.success(), "{program}");
        let ext = match format {
            "gzip" => "gz",
            "bzip2" => "bz2",
            "zstd" => "zst",
            other => other,
        };
        let img = PathBuf::from(format!("{}.{ext}", src.display()));
        let file = tool("file", "file", &["-b", img.to_str().unwrap()]);
        assert!(String::from_utf8_lossy(&file.stdout).contains(file_says));
        let refusal = assert_refused(&img, format, format);
        let out = run_suggested(&refusal, d.path(), &pass);
        assert_eq!(read(&out), read(&src), "{format}: decompressed differs");
        clean(d.path());
    }
    // A tar archive without an OVF descriptor first is a tar (an OVA is one with it: see
    // tests/containers_cli.rs).
    let ova = p(d.path(), "appliance.ova");
    let out = tool(
        "tar",
        "tar",
        &[
            "-cf",
            ova.to_str().unwrap(),
            "-C",
            d.path().to_str().unwrap(),
            "src.raw",
        ],
    );
    assert!(out.status.success());
    let file = tool("file", "file", &["-b", ova.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&file.stdout).contains("tar archive"));
    let refusal = assert_refused(&ova, "tar", "tar");
    assert!(
        suggested_command(&refusal).starts_with("tar -xvf "),
        "{refusal}"
    );
}

#[test]
fn a_qcow2_wrapped_in_a_vhd_footer_is_a_qcow2() {
    // What `vhdprep fix --in-place` made of a qcow2 before the probes: its bytes and a footer.
    let d = tempdir();
    let img = p(d.path(), "wrapped.vhd");
    qemu_img(&["create", "-q", "-f", "qcow2", img.to_str().unwrap(), "64M"]);
    let mut bytes = read(&img);
    let len = bytes.len().next_multiple_of(MIB as usize);
    bytes.resize(len, 0);
    bytes.extend_from_slice(&vhdprep::disk::vhd::Footer::new_fixed(len as u64).to_bytes());
    write_file(&img, &bytes);
    assert_eq!(qemu_probed_format(&img), "qcow2");
    // Read as the qcow2 it is (issue 12), never as the raw disk the footer claims.
    let (v, code) = info_json(&img);
    assert_eq!((v["format"].as_str(), code), (Some("qcow2"), 1), "{v}");
    assert_eq!(v["virtual_size"], 64 * MIB);
    assert!(v["unreadable"].is_null(), "{v}");
    let msg = v["findings"][0]["message"].as_str().unwrap();
    assert!(msg.contains("also ends in a VHD footer"), "{msg}");
}

#[test]
fn every_command_that_reads_the_disk_refuses_an_unread_format() {
    let d = tempdir();
    let img = p(d.path(), "x.qed");
    qemu_img(&["create", "-q", "-f", "qed", img.to_str().unwrap(), "64M"]);
    let name = img.to_str().unwrap();
    for args in [
        &["inspect", name][..],
        &["ls", name, "/"],
        &["cat", name, "/etc/os-release"],
        &["checksum", "--scope", "disk", name],
        &["gallery", name],
    ] {
        one_line_error(&run(args), name, "qed");
    }
    // check judges it (VHD-001, exit 1) without taking it for raw: no guest is examined.
    let out = run(&["check", name, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["container"]["format"], "qed");
    assert_eq!(v["container"]["ok"], false);
    assert!(v["guest_not_examined"].as_str().unwrap().contains("(qed)"));
    // The file as uploaded can still be hashed.
    assert_eq!(run(&["checksum", "-q", name]).status.code(), Some(0));
}

#[test]
fn raw_disks_stay_raw_and_structureless_ones_are_reported() {
    // Every fixture image (GPT, MBR, hybrid, LVM, btrfs, XFS, Arm64): no probe fires.
    for name in [
        "gen2-gpt-ext4",
        "gen1-mbr-ext4",
        "hybrid-gpt",
        "gen2-gpt-xfs",
        "gen2-gpt-btrfs",
        "rhel-lvm",
        "separate-var",
        "arm64-gpt-ext4",
    ] {
        let (v, code) = info_json(Path::new(&fixture_raw(name)));
        assert_eq!(v["format"], "raw", "{name}");
        assert_eq!(v["probes"]["matched"], Value::Null, "{name}");
        assert_eq!(
            v["probes"]["ran"].as_array().unwrap().len(),
            probe_order().len()
        );
        assert_eq!(finding_ids(&v), vec!["VHD-001"], "{name}");
        assert_eq!(code, 1);
    }
    let d = tempdir();
    // A filesystem on the whole disk, no partition table: raw, and a disk.
    let ext4 = p(d.path(), "fs.img");
    sparse_raw(&ext4, 32 * MIB, &[]);
    let out = tool(
        "mkfs.ext4",
        "e2fsprogs",
        &["-q", "-F", ext4.to_str().unwrap()],
    );
    assert!(out.status.success());
    assert!(blkid(&ext4).contains("TYPE=ext4"));
    let (v, _) = info_json(&ext4);
    assert_eq!(
        (v["format"].as_str(), finding_ids(&v)),
        (Some("raw"), vec!["VHD-001".into()])
    );
    // Text: raw by elimination, but nothing says it is a disk.
    let text = p(d.path(), "notes.txt");
    write_file(
        &text,
        "Lorem ipsum dolor sit amet.\n".repeat(80_000).as_bytes(),
    );
    let (v, _) = info_json(&text);
    assert_eq!(v["format"], "raw");
    assert_eq!(finding_ids(&v), vec!["VHD-001", "VHD-017"]);
    assert_eq!(v["findings"][1]["severity"], "warning");
    // All zeros: a blank disk, information only.
    let blank = p(d.path(), "blank.raw");
    sparse_raw(&blank, 30 * MIB, &[]);
    let (v, _) = info_json(&blank);
    assert_eq!(finding_ids(&v), vec!["VHD-001", "VHD-017"]);
    assert_eq!(v["findings"][1]["severity"], "info");
    // After `fix` it is a VHD: a known format, no VHD-017.
    assert!(run(&["fix", "--in-place", blank.to_str().unwrap()])
        .status
        .success());
    let (v, code) = info_json(&blank);
    assert_eq!((v["format"].as_str(), code), (Some("vhd-fixed"), 0));
    assert!(finding_ids(&v).is_empty());
}
