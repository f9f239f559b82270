//! Resource bounds (issue 6): images that claim absurd sizes — 2^63-byte disks, block tables
//! and GPT arrays of 2^32 entries, a 4 GiB cpio member, a gzip bomb, extent trees that loop,
//! directories of 2^41 bytes or 200 000 entries — and symlinks that point at the host.
//!
//! Every image starts as a real one (mkfs.ext4 -d, mkfs.xfs -p, mkfs.btrfs --rootdir,
//! sgdisk, qemu-img) and is then made hostile with the tools' own editors (debugfs, xfs_db)
//! or byte patches whose checksums are recomputed, so that the structure is believed. Each
//! is run through the CLI under `timeout`, `/usr/bin/time` and an address-space limit: it
//! must end within [`TIME_LIMIT_S`] with exit 0, 1 or 2, a finding or a one-line error
//! naming the problem, no panic, and peak RSS below [`RSS_LIMIT_KIB`].

mod common;

use common::*;
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const MIB: u64 = 1 << 20;
/// Seconds one command may take (debug build, shared CI machine) before it counts as a hang.
const TIME_LIMIT_S: u64 = 30;
/// Peak RSS one command may reach: the images are tens of MiB, whatever they claim.
const RSS_LIMIT_KIB: u64 = 200 * 1024;
/// Address space given to vhdprep, so that a runaway allocation aborts the command (and
/// fails the test) instead of exhausting the test machine.
const AS_LIMIT: u64 = 4 << 30;

/// What one bounded run produced.
struct Run {
    code: i32,
    stdout: String,
    /// stderr without the `/usr/bin/time` line.
    stderr: String,
}

impl Run {
    /// stdout and stderr together, for "the output names X" assertions.
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The stdout as JSON.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("output is not JSON ({e}): {}", self.all()))
    }
}

/// Runs `vhdprep args` under the time, memory and address-space limits and asserts the
/// common contract: ends in time, no panic, exit 0/1/2, RSS under the bound, and on exit 2
/// exactly one line on stderr that names `image`.
fn bounded(image: &Path, args: &[&str]) -> Run {
    bounded_rss(image, args, RSS_LIMIT_KIB)
}

/// [`bounded`] with another peak-RSS bound.
fn bounded_rss(image: &Path, args: &[&str], rss_limit_kib: u64) -> Run {
    let start = Instant::now();
    let out = Command::new("timeout")
        .args(["-s", "KILL", &TIME_LIMIT_S.to_string()])
        .args(["/usr/bin/time", "-f", "maxrss=%M"])
        .args(["prlimit", &format!("--as={AS_LIMIT}"), "--"])
        .arg(env!("CARGO_BIN_EXE_vhdprep"))
        .args(args)
        .output()
        .expect("run timeout, /usr/bin/time and prlimit (coreutils, time, util-linux)");
    let secs = start.elapsed().as_secs_f64();
    let what = format!("vhdprep {}", args.join(" "));
    let raw_err = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code();
    assert!(
        code.is_some() && code != Some(137),
        "{what}: killed after {TIME_LIMIT_S} s (hang?)\n{raw_err}"
    );
    assert!(!raw_err.contains("panicked"), "{what}: panic\n{raw_err}");
    assert!(
        !raw_err.contains("memory allocation"),
        "{what}: allocation beyond {AS_LIMIT} bytes\n{raw_err}"
    );
    let rss_kib: u64 = raw_err
        .lines()
        .filter_map(|l| l.strip_prefix("maxrss="))
        .next_back()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{what}: no maxrss from /usr/bin/time\n{raw_err}"));
    let stderr: String = raw_err
        .lines()
        .filter(|l| !l.starts_with("maxrss=") && !l.starts_with("Command exited"))
        .map(|l| format!("{l}\n"))
        .collect();
    let code = code.unwrap();
    assert!((0..=2).contains(&code), "{what}: exit {code}\n{stderr}");
    assert!(
        rss_kib < rss_limit_kib,
        "{what}: peak RSS {rss_kib} KiB over {rss_limit_kib}"
    );
    if code == 2 {
        let name = image.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{what}: exit 2 must print one line\n{stderr}"
        );
        assert!(
            stderr.contains(name),
            "{what}: error names the image\n{stderr}"
        );
    }
    eprintln!(
        "{what}: exit {code}, {secs:.2} s, peak RSS {} MiB",
        rss_kib / 1024
    );
    Run {
        code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    }
}

/// `bounded` with the image path appended to `args`.
fn on(image: &Path, args: &[&str]) -> Run {
    let mut a = args.to_vec();
    a.push(image.to_str().unwrap());
    bounded(image, &a)
}

/// `bounded` on `vhdprep ARGS IMAGE PATH` (ls, cat).
fn at(image: &Path, args: &[&str], path: &str) -> Run {
    let mut a = args.to_vec();
    a.extend([image.to_str().unwrap(), path]);
    bounded(image, &a)
}

/// `info`, `inspect` and `check --format json` on `image`; the check report must be JSON
/// whenever check could read the container. Returns (info, inspect, check).
fn survey(image: &Path) -> (Run, Run, Run) {
    let info = on(image, &["info"]);
    let inspect = on(image, &["inspect"]);
    let check = on(image, &["check", "--format", "json"]);
    if check.code != 2 {
        assert_eq!(check.json()["schema_version"], 1, "{}", check.stdout);
    }
    (info, inspect, check)
}

/// Runs a tool and asserts success.
fn must(name: &str, package: &str, args: &[&str]) -> String {
    let out = tool(name, package, args);
    assert!(
        out.status.success(),
        "{name} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn open_rw(p: &Path) -> File {
    OpenOptions::new().read(true).write(true).open(p).unwrap()
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A minimal guest tree: os-release and an fstab mounting LABEL=root.
fn base_tree(dir: &Path) -> PathBuf {
    let t = dir.join("tree");
    std::fs::create_dir_all(t.join("etc")).unwrap();
    std::fs::create_dir_all(t.join("usr/lib")).unwrap();
    std::fs::write(t.join("usr/lib/os-release"), "ID=testos\nVERSION_ID=1\n").unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", t.join("etc/os-release")).unwrap();
    std::fs::write(t.join("etc/fstab"), "LABEL=root / ext4 defaults 0 1\n").unwrap();
    t
}

/// A GPT disk of `fs_mib` + 8 MiB (sgdisk) whose one partition, at 1 MiB, holds `fs` (a
/// filesystem image file).
fn gpt_disk(dir: &Path, name: &str, fs: &Path, fs_mib: u64) -> PathBuf {
    let img = dir.join(name);
    let f = File::create(&img).unwrap();
    f.set_len((fs_mib + 8) * MIB).unwrap();
    must(
        "sgdisk",
        "gdisk",
        &["-n", &format!("1:2048:+{fs_mib}M"), "-t", "1:8304", s(&img)],
    );
    let mut buf = vec![0u8; MIB as usize];
    let src = File::open(fs).unwrap();
    let len = src.metadata().unwrap().len();
    let mut at = 0;
    while at < len {
        let n = src.read_at(&mut buf, at).unwrap();
        if buf[..n].iter().any(|&b| b != 0) {
            f.write_all_at(&buf[..n], MIB + at).unwrap();
        }
        at += n as u64;
    }
    img
}

/// `mkfs.ext4 -d tree` into a file of `mib` MiB with the extra options.
fn mkfs_ext4(dir: &Path, tree: &Path, mib: u64, extra: &[&str]) -> PathBuf {
    let part = dir.join("part.ext4");
    let _ = std::fs::remove_file(&part);
    let mut args = vec!["-q", "-F", "-L", "root", "-b", "4096"];
    args.extend_from_slice(extra);
    let size = format!("{mib}M");
    args.extend(["-d", s(tree), s(&part), &size]);
    must("mkfs.ext4", "e2fsprogs", &args);
    part
}

/// `debugfs -w -R req fs`.
fn debugfs_w(fs: &Path, req: &str) {
    must("debugfs", "e2fsprogs", &["-w", "-R", req, s(fs)]);
}

// ---------------------------------------------------------------------------------------------
// 1. Sizes of 2^63 bytes: VHD footers, dynamic headers, a sparse raw file of terabytes.

/// Rewrites the footer at `at` (current and original size, creator application "win " so
/// that the current size is believed, not the CHS geometry) and its checksum.
fn patch_footer(f: &File, at: u64, size: u64) {
    let mut ft = [0u8; 512];
    f.read_exact_at(&mut ft, at).unwrap();
    assert_eq!(&ft[..8], b"conectix", "a footer at {at}");
    ft[28..32].copy_from_slice(b"win ");
    ft[40..48].copy_from_slice(&size.to_be_bytes());
    ft[48..56].copy_from_slice(&size.to_be_bytes());
    ft[64..68].fill(0);
    let sum = !ft.iter().map(|&b| u32::from(b)).sum::<u32>();
    ft[64..68].copy_from_slice(&sum.to_be_bytes());
    f.write_all_at(&ft, at).unwrap();
}

/// Rewrites the dynamic header's table entries and block size, and its checksum.
fn patch_dynamic_header(f: &File, entries: Option<u32>, block: Option<u32>) {
    let mut ft = [0u8; 512];
    f.read_exact_at(&mut ft, 0).unwrap();
    let off = u64::from_be_bytes(ft[16..24].try_into().unwrap());
    let mut h = [0u8; 1024];
    f.read_exact_at(&mut h, off).unwrap();
    assert_eq!(&h[..8], b"cxsparse");
    if let Some(e) = entries {
        h[28..32].copy_from_slice(&e.to_be_bytes());
    }
    if let Some(b) = block {
        h[32..36].copy_from_slice(&b.to_be_bytes());
    }
    h[36..40].fill(0);
    let sum = !h.iter().map(|&b| u32::from(b)).sum::<u32>();
    h[36..40].copy_from_slice(&sum.to_be_bytes());
    f.write_all_at(&h, off).unwrap();
    assert_eq!(be32(&h, 28), entries.unwrap_or(be32(&h, 28)));
}

#[test]
fn vhd_footers_claiming_2_pow_63_bytes() {
    let d = tempdir();
    let part = mkfs_ext4(d.path(), &base_tree(d.path()), 24, &[]);
    let raw = gpt_disk(d.path(), "disk.raw", &part, 24);
    for (name, size) in [("pow63.vhd", 1u64 << 63), ("max.vhd", u64::MAX)] {
        let vhd = d.path().join(name);
        qemu_vhd_from_raw(&raw, &vhd, "subformat=fixed");
        let f = open_rw(&vhd);
        let len = f.metadata().unwrap().len();
        patch_footer(&f, len - 512, size);
        let (info, inspect, check) = survey(&vhd);
        assert_eq!(info.code, 1, "{}", info.all());
        assert!(
            info.stdout.contains(&size.to_string()) && info.stdout.contains("VHD-0"),
            "info shows the claimed size with a VHD finding: {}",
            info.stdout
        );
        // The guest is still read through what the file holds, or refused in one line.
        assert!(inspect.code == 0 || inspect.code == 2, "{}", inspect.all());
        assert!(check.code >= 1, "{}", check.stdout);
        for scope in ["blob", "disk"] {
            on(
                &vhd,
                &["checksum", "--crc32", "--zero-map", "-q", "--scope", scope],
            );
        }
    }
}

#[test]
fn dynamic_vhd_block_tables_of_2_pow_32_entries() {
    let d = tempdir();
    let base = d.path().join("base.vhd");
    qemu_img(&["create", "-f", "vpc", s(&base), "32M"]);
    let variant = |name: &str| {
        let p = d.path().join(name);
        std::fs::copy(&base, &p).unwrap();
        p
    };
    // 2^32-1 entries on a 32 MiB disk: only the entries the size needs are read.
    let many = variant("many.vhd");
    patch_dynamic_header(&open_rw(&many), Some(u32::MAX), None);
    let (_, inspect, _) = survey(&many);
    assert_eq!(inspect.code, 0, "{}", inspect.all());
    // A 2 GiB block: refused, naming the block size.
    let huge_block = variant("block.vhd");
    patch_dynamic_header(&open_rw(&huge_block), None, Some(1 << 31));
    let (info, inspect, check) = survey(&huge_block);
    assert!(
        inspect.stderr.contains("block size 2147483648"),
        "{}",
        inspect.all()
    );
    assert!(info.stdout.contains("VHD-"), "{}", info.stdout);
    assert!(check.stdout.contains("block size"), "{}", check.stdout);
    // 512-byte blocks and a 2 TiB size: a 16 GiB block table, in a sparse file that holds
    // it (zeros), with both footers claiming the size.
    let sparse = variant("table16g.vhd");
    let f = open_rw(&sparse);
    patch_dynamic_header(&f, Some(u32::MAX), Some(512));
    let size = (1u64 << 41) - 512;
    patch_footer(&f, 0, size);
    let mut ft = [0u8; 512];
    f.read_exact_at(&mut ft, 0).unwrap();
    let len = 17u64 << 30;
    f.set_len(len).unwrap();
    f.write_all_at(&ft, len - 512).unwrap();
    drop(f);
    let (info, inspect, check) = survey(&sparse);
    let named = "block table of 4294967295 entries";
    assert!(inspect.stderr.contains(named), "{}", inspect.all());
    assert!(info.stdout.contains(named), "{}", info.stdout);
    assert!(check.stdout.contains(named), "{}", check.stdout);
    let sum = on(&sparse, &["checksum", "--crc32", "-q", "--scope", "disk"]);
    assert_eq!(sum.code, 2);
    // A real table at the limit: 60 TiB in 2 MiB blocks, 30 Mi entries (120 MiB), none
    // allocated. Read once; the disk checksum skips unallocated blocks instead of reading
    // 60 TiB of zeros.
    let wide = variant("table120m.vhd");
    let f = open_rw(&wide);
    let size = 60u64 << 40;
    let entries = size / (2 * MIB);
    patch_dynamic_header(&f, Some(entries as u32), None);
    patch_footer(&f, 0, size);
    let mut ft = [0u8; 512];
    f.read_exact_at(&mut ft, 0).unwrap();
    let table = vec![0xFFu8; (entries * 4) as usize];
    f.write_all_at(&table, 1536).unwrap();
    let end = (1536 + entries * 4).div_ceil(512) * 512;
    f.set_len(end).unwrap();
    f.write_all_at(&ft, end).unwrap();
    drop((f, table));
    let inspect = on(&wide, &["inspect"]);
    assert_eq!(inspect.code, 0, "{}", inspect.all());
    let sum = on(
        &wide,
        &[
            "checksum",
            "--crc32",
            "--zero-map",
            "--json",
            "-q",
            "--scope",
            "disk",
        ],
    );
    assert_eq!(sum.json()["size"].as_u64(), Some(size), "{}", sum.all());
    assert_eq!(sum.json()["nonzero_bytes"].as_u64(), Some(0));
}

/// The largest sparse file this filesystem allows, from 8 EiB down.
fn largest_sparse(path: &Path) -> u64 {
    let f = File::create(path).unwrap();
    for size in [
        i64::MAX as u64,
        1 << 62,
        1 << 60,
        1 << 50,
        (16 << 40) - 4096,
        8 << 40,
        1 << 40,
    ] {
        if f.set_len(size).is_ok() {
            return size;
        }
    }
    panic!("{}: no sparse file of 1 TiB or more", path.display());
}

#[test]
fn sparse_raw_of_terabytes_with_a_real_gpt() {
    let d = tempdir();
    let part = mkfs_ext4(d.path(), &base_tree(d.path()), 24, &[]);
    let img = d.path().join("huge.raw");
    let size = largest_sparse(&img);
    eprintln!("sparse raw image of {size} bytes");
    must(
        "sgdisk",
        "gdisk",
        &["-n", "1:2048:+24M", "-t", "1:8304", s(&img)],
    );
    let f = open_rw(&img);
    f.write_all_at(&read(&part), MIB).unwrap();
    let (info, inspect, check) = survey(&img);
    assert!(info.stdout.contains(&size.to_string()), "{}", info.stdout);
    assert_eq!(inspect.code, 0, "{}", inspect.all());
    assert!(inspect.stdout.contains("testos"), "{}", inspect.stdout);
    // Larger than Azure accepts: a container finding.
    assert_eq!(check.code, 1, "{}", check.stdout);
    // Holes are skipped, not read one by one: the whole file is hashed within the limit.
    let sum = on(&img, &["checksum", "--crc32", "--zero-map", "--json", "-q"]);
    assert_eq!(sum.code, 0, "{}", sum.all());
    let v = sum.json();
    assert_eq!(v["size"].as_u64(), Some(size));
    assert!(v["nonzero_bytes"].as_u64().unwrap() < 64 * MIB);
}

// ---------------------------------------------------------------------------------------------
// 2. GPTs with 2^32-1 entries, huge and tiny entries, a partition of 2^63 bytes.

/// Edits both GPT headers (and the first entry of both arrays) of `img`, recomputing the
/// array CRC over what the header now claims (when that fits the file) and the header CRC.
fn patch_gpt(img: &Path, entries: Option<u32>, entry_size: Option<u32>, first: Option<(u64, u64)>) {
    let f = open_rw(img);
    let len = f.metadata().unwrap().len();
    for lba in [1, len / 512 - 1] {
        let mut h = [0u8; 512];
        f.read_exact_at(&mut h, lba * 512).unwrap();
        assert_eq!(&h[..8], b"EFI PART");
        let header_size = le32(&h, 12) as usize;
        let array = le64(&h, 72) * 512;
        if let Some((start, end)) = first {
            let mut e = [0u8; 16];
            e[..8].copy_from_slice(&start.to_le_bytes());
            e[8..].copy_from_slice(&end.to_le_bytes());
            f.write_all_at(&e, array + 32).unwrap();
        }
        if let Some(n) = entries {
            h[80..84].copy_from_slice(&n.to_le_bytes());
        }
        if let Some(sz) = entry_size {
            h[84..88].copy_from_slice(&sz.to_le_bytes());
        }
        let claimed = u64::from(le32(&h, 80)) * u64::from(le32(&h, 84));
        if array + claimed <= len && claimed <= 64 * MIB {
            let mut a = vec![0u8; claimed as usize];
            f.read_exact_at(&mut a, array).unwrap();
            h[88..92].copy_from_slice(&crc32fast::hash(&a).to_le_bytes());
        }
        h[16..20].fill(0);
        let crc = crc32fast::hash(&h[..header_size]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        f.write_all_at(&h, lba * 512).unwrap();
    }
}

#[test]
fn gpt_arrays_of_2_pow_32_entries_and_a_partition_of_2_pow_63_bytes() {
    let d = tempdir();
    let part = mkfs_ext4(d.path(), &base_tree(d.path()), 24, &[]);
    let base = gpt_disk(d.path(), "base.raw", &part, 24);
    let cases: [(&str, Option<u32>, Option<u32>, &str); 4] = [
        (
            "entries.raw",
            Some(u32::MAX),
            None,
            "4294967295 partition entries",
        ),
        (
            "hugeentry.raw",
            None,
            Some(1 << 31),
            "entries of 2147483648 bytes",
        ),
        (
            "bothhuge.raw",
            Some(u32::MAX),
            Some(1 << 31),
            "4294967295 partition entries",
        ),
        ("tinyentry.raw", None, Some(8), "entry size 8"),
    ];
    for (name, n, size, named) in cases {
        let img = d.path().join(name);
        std::fs::copy(&base, &img).unwrap();
        patch_gpt(&img, n, size, None);
        let (_, inspect, check) = survey(&img);
        assert_eq!(inspect.code, 2, "{name}: {}", inspect.all());
        assert!(inspect.stderr.contains(named), "{name}: {}", inspect.stderr);
        assert!(
            check.stdout.contains("BOOT-001"),
            "{name}: {}",
            check.stdout
        );
        let ls = at(&img, &["ls"], "/");
        assert_eq!(ls.code, 2, "{name}");
    }
    // Partition 1 claims LBAs 2048..=2^54: 2^63 bytes on a 32 MiB disk.
    let img = d.path().join("lba.raw");
    std::fs::copy(&base, &img).unwrap();
    patch_gpt(&img, None, None, Some((2048, 1 << 54)));
    let (_, inspect, check) = survey(&img);
    assert_eq!(inspect.code, 0, "{}", inspect.all());
    assert!(
        inspect.stdout.contains("extends past the end"),
        "{}",
        inspect.stdout
    );
    assert!(
        check.stdout.contains("extends past the end"),
        "{}",
        check.stdout
    );
    let ls = at(&img, &["ls", "-l"], "/");
    assert!(ls.stdout.contains("usr"), "{}", ls.all());
}

// ---------------------------------------------------------------------------------------------
// 3. Initramfs: a cpio member of 4 GiB, a name of 4 GiB, a gzip bomb.

const KERNELS: [&str; 3] = [
    "6.1.0-1-cloud-amd64",
    "6.1.0-2-cloud-amd64",
    "6.1.0-3-cloud-amd64",
];
/// Further kernels whose initramfs are all the same gzip bomb: together they claim 24 GiB.
const BOMBED_KERNELS: usize = 16;

/// A newc header (`070701`) for `name` with the given file size and name size fields,
/// followed by the name and its padding.
fn newc(name: &str, filesize: u32, namesize: u32) -> Vec<u8> {
    let fields = [1, 0o100644, 0, 0, 1, 0, filesize, 0, 0, 0, 0, namesize, 0];
    let mut b = b"070701".to_vec();
    for v in fields {
        b.extend_from_slice(format!("{v:08X}").as_bytes());
    }
    b.extend_from_slice(name.as_bytes());
    b.push(0);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    b
}

/// gzip of 64 MiB of zeros, repeated: `members` gzip members that inflate to 64 MiB each.
fn gzip_bomb(dir: &Path, members: usize) -> Vec<u8> {
    let zeros = dir.join("zeros");
    File::create(&zeros).unwrap().set_len(64 * MIB).unwrap();
    let out = tool("gzip", "gzip", &["-9", "-c", s(&zeros)]);
    assert!(out.status.success());
    std::fs::remove_file(&zeros).unwrap();
    out.stdout.repeat(members)
}

#[test]
fn initramfs_with_a_4_gib_member_a_4_gib_name_and_a_gzip_bomb() {
    let d = tempdir();
    let t = base_tree(d.path());
    let boot = t.join("boot");
    std::fs::create_dir_all(&boot).unwrap();
    for v in KERNELS {
        std::fs::write(boot.join(format!("vmlinuz-{v}")), pattern(1, 64 << 10)).unwrap();
    }
    // 1: a member claiming 0xFFFFFFFF bytes, followed by 256 KiB of real data.
    let mut a = newc("usr/lib/modules/huge.ko", u32::MAX, 24);
    a.extend_from_slice(&pattern(2, 256 << 10));
    std::fs::write(boot.join(format!("initrd.img-{}", KERNELS[0])), a).unwrap();
    // 2: 24 gzip members of 64 MiB of zeros each: 1.5 GiB from 1.5 MiB.
    let bomb = gzip_bomb(d.path(), 24);
    assert!(bomb.len() < 4 << 20, "bomb is {} bytes", bomb.len());
    std::fs::write(boot.join(format!("initrd.img-{}", KERNELS[1])), bomb).unwrap();
    for i in 0..BOMBED_KERNELS {
        let v = format!("6.1.0-{}-bomb-amd64", 900 + i); // listed after KERNELS
        std::fs::write(boot.join(format!("vmlinuz-{v}")), pattern(1, 4096)).unwrap();
        std::fs::hard_link(
            boot.join(format!("initrd.img-{}", KERNELS[1])),
            boot.join(format!("initrd.img-{v}")),
        )
        .unwrap();
    }
    // 3: a name size of 0xFFFFFFFF.
    let mut c = newc("x", 0, u32::MAX);
    c.extend_from_slice(&[b'a'; 4096]);
    std::fs::write(boot.join(format!("initrd.img-{}", KERNELS[2])), c).unwrap();
    let part = mkfs_ext4(d.path(), &t, 32, &[]);
    let img = gpt_disk(d.path(), "initrd.raw", &part, 32);
    let check = on(&img, &["check", "--format", "json"]);
    assert_eq!(check.code, 1, "{}", check.all());
    let text = check.stdout;
    for (v, why) in [
        (KERNELS[0], "truncated"),
        (KERNELS[1], "decompressed size limit reached"),
        (KERNELS[2], "name size 4294967295"),
    ] {
        let hit = text
            .lines()
            .any(|l| l.contains(&format!("initrd.img-{v}")) && l.contains(why));
        assert!(
            hit,
            "no finding says initrd.img-{v} is unreadable ({why}):\n{text}"
        );
    }
    // The bombs after the first ones are not inflated: the guest's initramfs budget is spent.
    let skipped = text
        .lines()
        .filter(|l| l.contains("-bomb-amd64") && l.contains("not examined"))
        .count();
    assert!(
        skipped >= BOMBED_KERNELS / 2,
        "{skipped} bombs skipped:\n{text}"
    );
    let inspect = on(&img, &["inspect"]);
    assert_eq!(inspect.code, 0, "{}", inspect.all());
}

/// Peak RSS allowed when the guest holds sparse initramfs files: each is read whole (up to
/// vhdprep's 512 MiB `MAX_INITRAMFS_FILE`) before it is listed, so a 500 MiB file of holes,
/// 4 KiB on disk, costs its size in memory. Streaming the listing through `read_range` would
/// lift this; until then the bound is the cap plus the usual margin.
const SPARSE_INITRAMFS_RSS_KIB: u64 = (512 + 100) * 1024;

#[test]
fn sparse_initramfs_files_of_500_mib_and_1_tib() {
    let d = tempdir();
    let t = base_tree(d.path());
    let boot = t.join("boot");
    std::fs::create_dir_all(&boot).unwrap();
    for (v, size) in [
        ("6.1.0-1-cloud-amd64", 500 * MIB),
        ("6.1.0-2-cloud-amd64", 1 << 40),
    ] {
        std::fs::write(boot.join(format!("vmlinuz-{v}")), pattern(1, 4096)).unwrap();
        let f = File::create(boot.join(format!("initrd.img-{v}"))).unwrap();
        f.write_all_at(&newc("usr/lib/modules/huge.ko", u32::MAX, 24), 0)
            .unwrap();
        f.set_len(size).unwrap();
    }
    let part = mkfs_ext4(d.path(), &t, 32, &[]);
    let img = gpt_disk(d.path(), "sparse-initrd.raw", &part, 32);
    let check = bounded_rss(
        &img,
        &["check", "--format", "json", s(&img)],
        SPARSE_INITRAMFS_RSS_KIB,
    );
    assert_eq!(check.code, 1, "{}", check.all());
    let text = check.stdout;
    // The 500 MiB one is listed (a member claiming 4 GiB: truncated); the 1 TiB one is
    // refused by its size, not read.
    let said = |v: &str, why: &str| {
        text.lines()
            .any(|l| l.contains(&format!("initrd.img-{v}")) && l.contains(why))
    };
    assert!(said("6.1.0-1-cloud-amd64", "truncated"), "{text}");
    assert!(
        said("6.1.0-2-cloud-amd64", "1099511627776 bytes is more than"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Extent trees that loop: ext4 extent index, XFS bmbt, btrfs tree node.

/// A file of twelve 4 KiB runs 64 KiB apart: twelve extents, so mkfs.ext4 gives it an
/// extent index block (depth 1).
fn fragmented(path: &Path) {
    let f = File::create(path).unwrap();
    for i in 0..12u64 {
        f.write_all_at(&pattern(i, 4096), i * 65536).unwrap();
    }
}

/// The first physical block of `file`'s extent tree (the index block), from debugfs.
fn ext4_index_block(fs: &Path, file: &str) -> u64 {
    let out = must(
        "debugfs",
        "e2fsprogs",
        &["-R", &format!("ex {file}"), s(fs)],
    );
    // " 0/ 1   1/  1     0 -   176  1555            177"
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("0/ 1"))
        .unwrap_or_else(|| panic!("{file} has no depth-1 extent tree:\n{out}"));
    let w: Vec<&str> = row.split_whitespace().collect();
    w[w.len() - 2].parse().unwrap()
}

#[test]
fn ext4_extent_index_pointing_to_itself() {
    let d = tempdir();
    let t = base_tree(d.path());
    std::fs::create_dir_all(t.join("data")).unwrap();
    fragmented(&t.join("data/frag"));
    fragmented(&t.join("etc/waagent.conf"));
    // No metadata_csum: the edited blocks need no checksum to be believed.
    let part = mkfs_ext4(d.path(), &t, 32, &["-O", "^metadata_csum"]);
    for file in ["/data/frag", "/etc/waagent.conf"] {
        let blk = ext4_index_block(&part, file);
        // The leaf becomes an index node (depth 1) whose one entry points at itself; the
        // root in the inode claims depth 2 (i_block[1] = max 4 | depth 2 << 16).
        let mut node = vec![0u8; 4096];
        node[0..2].copy_from_slice(&0xF30Au16.to_le_bytes());
        node[2..4].copy_from_slice(&1u16.to_le_bytes());
        node[4..6].copy_from_slice(&340u16.to_le_bytes());
        node[6..8].copy_from_slice(&1u16.to_le_bytes());
        node[16..20].copy_from_slice(&(blk as u32).to_le_bytes());
        open_rw(&part).write_all_at(&node, blk * 4096).unwrap();
        debugfs_w(&part, &format!("sif {file} block[1] 0x00020004"));
    }
    let img = gpt_disk(d.path(), "extloop.raw", &part, 32);
    let cat = at(&img, &["cat"], "/data/frag");
    assert_eq!(cat.code, 2);
    assert!(
        cat.stderr.contains("/data/frag") && cat.stderr.contains("depth"),
        "{}",
        cat.stderr
    );
    let ls = at(&img, &["ls", "-l"], "/data");
    assert!(ls.stdout.contains("frag"), "{}", ls.all());
    let (_, inspect, check) = survey(&img);
    assert_eq!(inspect.code, 0, "{}", inspect.all());
    assert!(check.code <= 1, "{}", check.all());
}

/// A protofile for mkfs.xfs: /etc/os-release, and /big with `n` empty files (all copies of
/// /dev/null, so nothing is created on the host).
fn xfs_proto(dir: &Path, n: usize) -> PathBuf {
    let osr = dir.join("os-release");
    std::fs::write(&osr, "ID=testos\nVERSION_ID=1\n").unwrap();
    let mut p = String::from("/dev/null\n0 0\nd--755 0 0\netc d--755 0 0\n");
    p += &format!(
        "os-release ---644 0 0 {}\n$\nbig d--755 0 0\n",
        osr.display()
    );
    for i in 0..n {
        p += &format!("f{i:07} ---644 0 0 /dev/null\n");
    }
    p += "$\n$\n";
    let proto = dir.join("proto");
    std::fs::write(&proto, p).unwrap();
    proto
}

/// An XFS image (mkfs.xfs -p) of `mib` MiB with `n` entries in /big.
fn mkfs_xfs(dir: &Path, n: usize, mib: u64) -> PathBuf {
    let proto = xfs_proto(dir, n);
    let fs = dir.join("part.xfs");
    File::create(&fs).unwrap().set_len(mib * MIB).unwrap();
    must(
        "mkfs.xfs",
        "xfsprogs",
        &["-q", "-f", "-p", s(&proto), s(&fs)],
    );
    fs
}

fn xfs_db(fs: &Path, cmds: &[&str]) -> String {
    let mut args = vec!["-x"];
    for c in cmds {
        args.extend(["-c", c]);
    }
    args.push(s(fs));
    must("xfs_db", "xfsprogs", &args)
}

#[test]
fn xfs_bmbt_block_pointing_to_itself() {
    let d = tempdir();
    let fs = mkfs_xfs(d.path(), 6000, 300);
    let root = xfs_db(
        &fs,
        &[
            "path /big",
            "print core.format u3.bmbt.level u3.bmbt.ptrs[1]",
        ],
    );
    assert!(
        root.contains("btree") && root.contains("u3.bmbt.level = 1"),
        "{root}"
    );
    let leaf: u64 = root
        .lines()
        .find_map(|l| l.strip_prefix("u3.bmbt.ptrs[1] = "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The leaf becomes a level-1 node whose one pointer is itself (xfs_db recomputes the
    // block CRC); the root in the inode claims level 2.
    xfs_db(
        &fs,
        &[
            &format!("fsblock {leaf}"),
            "type bmapbta",
            "write level 1",
            "write numrecs 1",
            "type bmapbta",
            &format!("write ptrs[1] {leaf}"),
        ],
    );
    xfs_db(&fs, &["path /big", "write u3.bmbt.level 2"]);
    let img = gpt_disk(d.path(), "bmbtloop.raw", &fs, 300);
    let ls = at(&img, &["ls"], "/big");
    assert_eq!(ls.code, 2);
    assert!(
        ls.stderr.contains("/big") && ls.stderr.contains("referenced twice"),
        "{}",
        ls.stderr
    );
    let (_, inspect, check) = survey(&img);
    assert_eq!(inspect.code, 0, "{}", inspect.all());
    assert!(check.code <= 1);
}

/// Castagnoli CRC (btrfs tree block checksums), bitwise: a few KiB per call here.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[test]
fn btrfs_tree_node_pointing_to_itself() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283, "CRC-32C check value");
    let d = tempdir();
    let t = base_tree(d.path());
    std::fs::create_dir_all(t.join("many")).unwrap();
    for i in 0..1000 {
        File::create(t.join(format!("many/file-with-a-long-name-{i:05}"))).unwrap();
    }
    let fs = d.path().join("part.btrfs");
    File::create(&fs).unwrap().set_len(160 * MIB).unwrap();
    must(
        "mkfs.btrfs",
        "btrfs-progs",
        &[
            "-q",
            "-f",
            "-L",
            "root",
            "-m",
            "single",
            "--rootdir",
            s(&t),
            s(&fs),
        ],
    );
    let dump = must(
        "btrfs",
        "btrfs-progs",
        &["inspect-internal", "dump-tree", "-t", "5", s(&fs)],
    );
    let line = dump
        .lines()
        .find(|l| l.starts_with("node "))
        .expect("FS tree root is a node");
    let logical: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let map = must(
        "btrfs-map-logical",
        "btrfs-progs",
        &["-l", &logical.to_string(), s(&fs)],
    );
    let phys: Vec<u64> = map
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "physical")?;
            w.get(i + 1)?.parse().ok()
        })
        .collect();
    assert!(!phys.is_empty(), "{map}");
    let f = open_rw(&fs);
    for p in phys {
        let mut block = vec![0u8; 16384];
        f.read_exact_at(&mut block, p).unwrap();
        let n = le32(&block, 0x60) as usize;
        for i in 0..n {
            let at = 0x65 + i * 33 + 17;
            block[at..at + 8].copy_from_slice(&logical.to_le_bytes());
        }
        let crc = crc32c(&block[0x20..]);
        block[0..4].copy_from_slice(&crc.to_le_bytes());
        f.write_all_at(&block, p).unwrap();
    }
    drop(f);
    let img = gpt_disk(d.path(), "btrfsloop.raw", &fs, 160);
    for (cmd, path) in [("ls", "/many"), ("cat", "/etc/fstab")] {
        let r = at(&img, &[cmd, "--partition", "1"], path);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(r.stderr.contains("btrfs"), "{}", r.stderr);
    }
    let (_, inspect, check) = survey(&img);
    assert_eq!(inspect.code, 0, "{}", inspect.all());
    assert!(check.code <= 1);
}

// ---------------------------------------------------------------------------------------------
// 5. Directories of 2^41 bytes, 2^32 extents, and one of 200 000 real entries.

#[test]
fn ext4_directories_claiming_2_pow_41_bytes() {
    let d = tempdir();
    let t = base_tree(d.path());
    std::fs::create_dir_all(t.join("data/sub")).unwrap();
    let part = mkfs_ext4(d.path(), &t, 24, &[]);
    debugfs_w(&part, "sif /data size 0x20000000000");
    debugfs_w(&part, "sif /etc size 0xFFFFFFFFFFFF");
    let img = gpt_disk(d.path(), "bigdir.raw", &part, 24);
    for dir in ["/data", "/etc"] {
        let ls = at(&img, &["ls", "--partition", "1"], dir);
        assert_eq!(ls.code, 2, "{}", ls.all());
        assert!(ls.stderr.contains(dir), "{}", ls.stderr);
    }
    let (_, _, check) = survey(&img);
    assert!(check.code <= 1);
}

#[test]
fn xfs_directories_claiming_2_pow_41_bytes_and_2_pow_32_extents() {
    let d = tempdir();
    let base = mkfs_xfs(d.path(), 6000, 300);
    for (name, field) in [
        ("size.raw", "core.size 0x20000000000"),
        ("nextents.raw", "core.nextents 4294967295"),
    ] {
        let fs = d.path().join("edited.xfs");
        std::fs::copy(&base, &fs).unwrap();
        for dir in ["/big", "/etc"] {
            xfs_db(&fs, &[&format!("path {dir}"), &format!("write {field}")]);
        }
        let img = gpt_disk(d.path(), name, &fs, 300);
        for dir in ["/big", "/etc"] {
            let ls = at(&img, &["ls", "--partition", "1"], dir);
            if ls.code == 0 {
                // Read through the extents the fork really holds.
                assert!(ls.stdout.lines().count() >= 1, "{}", ls.all());
            } else {
                assert!(ls.stderr.contains(dir), "{}", ls.stderr);
            }
        }
        let (_, _, check) = survey(&img);
        assert!(check.code <= 1);
    }
}

/// One directory of 200 000 entries, built by mkfs.xfs from a protofile (about 2 s; mkfs.ext4 -d
/// is quadratic in a directory's size: 30 000 entries take it 85 s). `ls` lists them all with
/// memory proportional to the listing; inspect and check do not walk it.
#[test]
fn xfs_directory_of_200000_real_entries() {
    let d = tempdir();
    let fs = mkfs_xfs(d.path(), 200_000, 600);
    let img = gpt_disk(d.path(), "wide.raw", &fs, 600);
    let ls = at(&img, &["ls"], "/big");
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    assert_eq!(ls.stdout.lines().count(), 200_000);
    assert!(ls.stdout.contains("f0199999"));
    let (_, inspect, check) = survey(&img);
    assert_eq!(inspect.code, 0);
    assert!(check.code <= 1);
}

// ---------------------------------------------------------------------------------------------
// 6. Symlinks in the files check reads, pointing at the host: never followed there.

/// Runs `vhdprep args` under `strace -f -e trace=%file` (every syscall that takes a path)
/// with `marker` in its environment; returns the run and the trace.
fn traced(args: &[&str], marker: &str, trace: &Path) -> (Run, String) {
    let out = Command::new("timeout")
        .args(["-s", "KILL", &TIME_LIMIT_S.to_string()])
        .args(["strace", "-f", "-qq", "-e", "trace=%file", "-o", s(trace)])
        .arg(env!("CARGO_BIN_EXE_vhdprep"))
        .args(args)
        .env("VHDPREP_TEST_MARKER", marker)
        .output()
        .expect("run strace (Debian package strace; scripts/test.sh installs it)");
    let code = out.status.code().expect("exited");
    assert!(code != 137, "{args:?}: killed after {TIME_LIMIT_S} s");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{args:?}: panic\n{stderr}");
    assert!((0..=2).contains(&code), "{args:?}: exit {code}\n{stderr}");
    let text = std::fs::read_to_string(trace).expect("strace wrote its trace");
    let run = Run {
        code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    };
    (run, text)
}

#[test]
fn symlinks_in_files_check_reads_never_touch_the_host() {
    let d = tempdir();
    // The host side: a directory whose name and content are unique to this run.
    let tag = format!("{:016x}", std::process::id() as u64 * 0x9E37_79B9 + 17);
    let sentinel = d.path().join(format!("host-sentinel-{tag}"));
    std::fs::create_dir(&sentinel).unwrap();
    let content = format!("HOST-SECRET-{tag}");
    std::fs::write(sentinel.join("secret"), &content).unwrap();
    let env_marker = format!("HOST-ENVIRON-{tag}");
    let secret = sentinel.join("secret");
    let secret = s(&secret);
    let climb = format!("../../../../../../../..{secret}");
    let via_proc = format!("/proc/self/root{secret}");
    let t = base_tree(d.path());
    for dir in [
        "etc/ssh",
        "etc/default",
        "etc/cloud",
        "boot/grub",
        "var/lib/waagent",
    ] {
        std::fs::create_dir_all(t.join(dir)).unwrap();
    }
    let links: [(&str, &str); 12] = [
        ("etc/waagent.conf", "/proc/self/environ"),
        ("etc/resolv.conf", secret),
        ("etc/hostname", &climb),
        ("etc/machine-id", &via_proc),
        ("etc/ssh/sshd_config", "/etc/ssh/sshd_config"),
        ("etc/fstab", "fstab.d/../fstab2"),
        ("etc/fstab2", "/etc/fstab"),
        ("etc/default/grub", s(&sentinel)),
        ("boot/grub/grub.cfg", &climb),
        ("etc/cloud/cloud.cfg", "/proc/self/cwd/secret"),
        ("etc/sudoers", "/proc/self/fd/0"),
        ("var/lib/waagent/ovf-env.xml", &via_proc),
    ];
    std::fs::remove_file(t.join("etc/fstab")).unwrap();
    std::fs::create_dir_all(t.join("etc/fstab.d")).unwrap();
    for (path, target) in links {
        std::os::unix::fs::symlink(target, t.join(path)).unwrap();
    }
    let part = mkfs_ext4(d.path(), &t, 24, &[]);
    let img = gpt_disk(d.path(), "links.raw", &part, 24);
    let trace = d.path().join("trace");
    let mut runs = vec![
        (vec!["check", "--format", "json"], None),
        (vec!["inspect"], None),
    ];
    for (path, _) in links {
        runs.push((vec!["cat"], Some(format!("/{path}"))));
    }
    runs.push((vec!["ls", "-l"], Some("/etc".to_string())));
    for (args, path) in runs {
        let mut a: Vec<&str> = args.clone();
        a.push(s(&img));
        a.extend(path.as_deref());
        let (run, text) = traced(&a, &env_marker, &trace);
        let what = format!("{args:?} {path:?}");
        assert!(
            text.contains("links.raw"),
            "{what}: strace saw the image open:\n{text}"
        );
        assert!(
            !text.contains(&format!("host-sentinel-{tag}")),
            "{what}: a syscall named the host sentinel:\n{}",
            text.lines()
                .filter(|l| l.contains("sentinel"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            !text.contains("/proc/self/environ") && !text.contains("/proc/self/cwd"),
            "{what}: a syscall followed a guest link into /proc:\n{text}"
        );
        for marker in [&content, &env_marker] {
            assert!(
                !run.all().contains(marker.as_str()),
                "{what}: host data in the output"
            );
        }
        if args[0] == "check" {
            assert!(run.code <= 1, "{what}: {}", run.all());
            run.json();
        }
        if args[0] == "cat" {
            // Every link ends outside the guest or in a loop: one error line, exit 2.
            assert_eq!(run.code, 2, "{what}: {}", run.all());
            assert_eq!(
                run.stderr.trim_end().lines().count(),
                1,
                "{what}: {}",
                run.stderr
            );
        }
    }
}
