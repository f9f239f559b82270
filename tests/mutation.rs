//! Mutation test: seeded random byte flips in the metadata regions of the real fixture images
//! (partition tables, the first MiBs of every partition: superblocks, group descriptors, inode
//! tables, directories, FAT tables and the ESP's root), then `vhdprep check` on each mutant.
//! Every run must end within the time limit with exit 0, 1 or 2, never a panic, with bounded
//! peak memory. The flipped bytes are put back after each run, so one sparse copy per image
//! serves every mutant.

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Mutants per fixture image.
const MUTANTS: usize = 40;
/// Seconds one check may take (debug build, loaded CI machine) before it counts as a hang.
const TIME_LIMIT_S: u32 = 60;
/// Peak RSS one check may reach.
const RSS_LIMIT_KIB: u64 = 512 * 1024;

fn fixture(name: &str) -> (PathBuf, Value) {
    let dir = std::env::var_os("VHDPREP_FIXTURE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cache"));
    let img = dir.join(format!("{name}.raw"));
    let man = dir.join(format!("{name}.json"));
    assert!(
        img.exists() && man.exists(),
        "fixture {name} missing in {}: build it with fixtures/build-images.sh",
        dir.display()
    );
    (img, serde_json::from_slice(&read(&man)).unwrap())
}

/// xorshift64*: a small seeded generator, so that a failing mutant can be reproduced.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Metadata regions of an image: the primary and backup GPT (or MBR), the first 4 MiB of
/// every partition, and for ext4 the inodes and directory blocks the check walks through
/// (`/`, `/etc`, `/boot`, `/usr/lib`), located with debugfs.
fn regions(img: &Path, m: &Value) -> Vec<(u64, u64)> {
    let size = m["virtual_size"].as_u64().unwrap();
    let mut r = vec![(0, 34 * 512), (size - 33 * 512, 33 * 512)];
    for p in m["partitions"].as_array().unwrap() {
        let start = p["start"].as_u64().unwrap();
        let len = p["size"].as_u64().unwrap().min(4 << 20);
        r.push((start, len));
        if p["filesystem"]["type"] == "ext4" {
            for (at, len) in ext4_hot_spots(img, start, p["mountpoint"].as_str().unwrap_or("")) {
                r.push((start + at, len));
            }
        }
    }
    r
}

/// (offset in the filesystem, length) of the inodes and first directory blocks of the
/// directories every check reads, for an ext4 filesystem mounted at `mountpoint`.
fn ext4_hot_spots(img: &Path, start: u64, mountpoint: &str) -> Vec<(u64, u64)> {
    const BLOCK: u64 = 4096;
    let dev = format!("{}?offset={start}", img.display());
    let debugfs = |req: &str| {
        let out = tool("debugfs", "e2fsprogs", &["-R", req, &dev]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dirs: &[&str] = if mountpoint == "/" {
        &["/", "/etc", "/boot", "/usr/lib", "/etc/systemd/system"]
    } else {
        &["/"]
    };
    let mut out = Vec::new();
    for d in dirs {
        // "located at block 565, offset 0x0500"
        let imap = debugfs(&format!("imap {d}"));
        if let Some(rest) = imap.split("located at block ").nth(1) {
            let mut it = rest.split(", offset 0x");
            let block: Option<u64> = it.next().and_then(|b| b.trim().parse().ok());
            let off = it
                .next()
                .and_then(|o| u64::from_str_radix(o.trim(), 16).ok());
            if let (Some(b), Some(o)) = (block, off) {
                out.push((b * BLOCK + o, 256));
            }
        }
        if let Some(b) = debugfs(&format!("blocks {d}"))
            .split_whitespace()
            .next()
            .and_then(|b| b.parse::<u64>().ok())
        {
            out.push((b * BLOCK, BLOCK));
        }
    }
    assert!(!out.is_empty(), "debugfs found none of {dirs:?} in {dev}");
    out
}

fn run_mutants(name: &str, seed: u64) {
    let (src, m) = fixture(name);
    let dir = tempdir();
    let img = dir.path().join(format!("{name}.raw"));
    sparse_copy(&src, &img);
    let regions = regions(&img, &m);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    let baseline = summary(&img);
    let mut rng = Rng(seed);
    let mut codes = [0usize; 3];
    let mut changed = 0usize;
    let mut peak = 0u64;
    for i in 0..MUTANTS {
        let (start, len) = regions[rng.below(regions.len() as u64) as usize];
        let flips = 1 + rng.below(16);
        let mut saved = Vec::new();
        for _ in 0..flips {
            let at = start + rng.below(len);
            let mut b = [0u8; 1];
            file.read_exact_at(&mut b, at).unwrap();
            saved.push((at, b[0]));
            let x = (rng.next() as u8) | 1;
            file.write_all_at(&[b[0] ^ x], at).unwrap();
        }
        let out = Command::new("timeout")
            .args(["-s", "KILL", &TIME_LIMIT_S.to_string()])
            .args(["/usr/bin/time", "-f", "maxrss=%M"])
            .arg(env!("CARGO_BIN_EXE_vhdprep"))
            .args(["check", "--format", "json"])
            .arg(&img)
            .output()
            .expect("run timeout and /usr/bin/time (packages coreutils, time)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!(
            "{name} mutant {i} (seed {seed:#x}, bytes {:?})",
            saved.iter().map(|(a, _)| *a).collect::<Vec<_>>()
        );
        let code = out.status.code();
        assert!(
            code != Some(137) && code.is_some(),
            "{what}: killed after {TIME_LIMIT_S} s (hang?)\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{what}: panic\n{stderr}");
        let rss: u64 = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("maxrss="))
            .next_back()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{what}: no maxrss from /usr/bin/time\n{stderr}"));
        assert!(rss < RSS_LIMIT_KIB, "{what}: peak RSS {rss} KiB");
        peak = peak.max(rss);
        // /usr/bin/time passes the exit status through.
        let code = code.unwrap();
        assert!(
            (0..=2).contains(&code),
            "{what}: exit status {code}\n{stderr}"
        );
        codes[code as usize] += 1;
        if code != 2 {
            let v: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{what}: report is not JSON: {e}"));
            assert_eq!(v["schema_version"], 1, "{what}");
            if summarise(&v) != baseline {
                changed += 1;
            }
        } else {
            assert_eq!(
                stderr.lines().filter(|l| !l.starts_with("maxrss=")).count(),
                1,
                "{what}: exit 2 must print one line\n{stderr}"
            );
        }
        for (at, b) in saved.into_iter().rev() {
            file.write_all_at(&[b], at).unwrap();
        }
    }
    eprintln!(
        "{name}: {MUTANTS} mutants, exit 0/1/2: {codes:?}, {changed} changed the report, peak RSS {} MiB",
        peak / 1024
    );
    // The flips land in metadata that matters: a fair share of mutants change what check sees.
    assert!(
        changed + codes[2] >= MUTANTS / 10,
        "{name}: only {changed} of {MUTANTS} mutants changed the report: are the regions right?"
    );
}

/// What a report says, minus the image path: verdicts and finding IDs with severities.
fn summarise(v: &Value) -> String {
    let mut ids: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}:{}", f["id"], f["severity"]))
        .collect();
    ids.sort();
    format!(
        "{} {} {} {} {}",
        v["generation"],
        v["os_state"],
        v["architecture"],
        v["guest_not_examined"],
        ids.join(",")
    )
}

fn summary(img: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vhdprep"))
        .args(["check", "--format", "json"])
        .arg(img)
        .output()
        .unwrap();
    summarise(&serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn gen2_gpt_ext4_mutants() {
    run_mutants("gen2-gpt-ext4", 0x5eed_0001);
}

#[test]
fn gen1_mbr_ext4_mutants() {
    run_mutants("gen1-mbr-ext4", 0x5eed_0002);
}

#[test]
fn gen2_gpt_xfs_mutants() {
    run_mutants("gen2-gpt-xfs", 0x5eed_0003);
}

#[test]
fn gen2_gpt_btrfs_mutants() {
    run_mutants("gen2-gpt-btrfs", 0x5eed_0004);
}

#[test]
fn rhel_lvm_mutants() {
    run_mutants("rhel-lvm", 0x5eed_0005);
}
