//! Helpers shared by the integration tests: run vhdprep and the peer tools, make test data.
//!
//! Peer tools (qemu-img, ...) are required: a missing tool fails the test with a message
//! naming the package, never a silent skip. `scripts/test.sh` installs them.
#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The vhdprep binary under test.
pub fn vhdprep() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vhdprep"))
}

/// Runs vhdprep with `args`, returns the output.
pub fn run(args: &[&str]) -> Output {
    vhdprep().args(args).output().expect("run vhdprep")
}

/// Runs a peer tool; panics with an install hint when it is missing.
pub fn tool(name: &str, package: &str, args: &[&str]) -> Output {
    match Command::new(name).args(args).output() {
        Ok(o) => o,
        Err(e) => panic!(
            "required tool `{name}` could not be run ({e}); install Debian package `{package}` (scripts/test.sh does)"
        ),
    }
}

/// Runs qemu-img and asserts success; returns stdout.
pub fn qemu_img(args: &[&str]) -> String {
    let out = tool("qemu-img", "qemu-utils", args);
    assert!(
        out.status.success(),
        "qemu-img {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `qemu-img info --output=json` as a JSON value.
pub fn qemu_info(path: &Path, format: &str) -> serde_json::Value {
    let text = qemu_img(&[
        "info",
        "-f",
        format,
        "--output=json",
        path.to_str().unwrap(),
    ]);
    serde_json::from_str(&text).expect("qemu-img info JSON")
}

/// `qemu-img compare -f FA -F FB A B`: true when the contents are identical (a shorter image
/// counts as zero-padded, as qemu-img does).
pub fn qemu_identical(a: &Path, fa: &str, b: &Path, fb: &str) -> bool {
    let out = tool(
        "qemu-img",
        "qemu-utils",
        &[
            "compare",
            "-f",
            fa,
            "-F",
            fb,
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
    );
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "qemu-img compare failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures reproduce.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A sparse raw image of `len` bytes with pseudo-random data in the given `(offset, len)`
/// extents; the rest is holes.
pub fn sparse_raw(path: &Path, len: u64, extents: &[(u64, usize)]) {
    let f = File::create(path).expect("create raw");
    f.set_len(len).unwrap();
    for (i, &(off, n)) in extents.iter().enumerate() {
        f.write_all_at(&pattern(i as u64 + off, n), off).unwrap();
    }
}

/// Writes `bytes` to a new file.
pub fn write_file(path: &Path, bytes: &[u8]) {
    File::create(path).unwrap().write_all(bytes).unwrap();
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vhdprep-test")
        .tempdir()
        .unwrap()
}

/// `vhdprep info --json` as a value, with the exit code.
pub fn info_json(path: &Path) -> (serde_json::Value, i32) {
    let out = run(&["info", "--json", path.to_str().unwrap()]);
    let code = out.status.code().expect("exited");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "info --json output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (v, code)
}

/// The IDs of the findings in an `info --json` value.
pub fn finding_ids(v: &serde_json::Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .expect("findings list")
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

/// Path helper: `dir/name`.
pub fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// The whole content of a file.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Copies a file keeping its holes (`cp --sparse=always`).
pub fn sparse_copy(from: &Path, to: &Path) {
    let out = tool(
        "cp",
        "coreutils",
        &[
            "--sparse=always",
            from.to_str().unwrap(),
            to.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "cp failed");
}

/// `qemu-img convert -f raw -O vpc [-o OPTS] src dst`: a VHD written by qemu-img (the
/// reference writer). `opts` empty means qemu-img's default (dynamic, CHS-rounded size).
pub fn qemu_vhd_from_raw(src: &Path, dst: &Path, opts: &str) {
    let mut args = vec!["convert", "-f", "raw", "-O", "vpc"];
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    args.extend([src.to_str().unwrap(), dst.to_str().unwrap()]);
    qemu_img(&args);
}

/// The path of fixture image `name` (`<name>.raw` in `$VHDPREP_FIXTURE_CACHE`, built by
/// fixtures/build-images.sh); a missing fixture fails the test with how to build it.
pub fn fixture_raw(name: &str) -> String {
    let dir = std::env::var_os("VHDPREP_FIXTURE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/cache"));
    let p = dir.join(format!("{name}.raw"));
    assert!(
        p.exists(),
        "fixture {} missing: build it with fixtures/build-images.sh",
        p.display()
    );
    p.display().to_string()
}

/// Runs `vhdprep check --format json` on a disk the writers produced and asserts that vhdprep
/// would not warn about what it wrote: no container finding the writers decide (VHD-001 to
/// VHD-006, VHD-014, VHD-015), and on a disk with a partition table (LBA 0 ends in `55 AA`) no
/// BOOT-001 finding but the information that an MBR is hybrid (the source's design); a disk of
/// test data without a table has exactly BOOT-001's "no partition table". The size and sector-size rules (VHD-007 to VHD-013, VHD-016) judge what
/// the source is, not how it was written. Returns the report.
pub fn assert_own_check_clean(path: &Path) -> serde_json::Value {
    let out = run(&["check", "--format", "json", path.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --format json on {} is not JSON ({e}): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut lba0 = [0u8; 512];
    File::open(path)
        .unwrap()
        .read_exact_at(&mut lba0, 0)
        .unwrap();
    let has_table = lba0[510..] == [0x55, 0xAA];
    let writers = [
        "VHD-001", "VHD-002", "VHD-003", "VHD-004", "VHD-005", "VHD-006", "VHD-014", "VHD-015",
    ];
    let bad: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| {
            let id = f["id"].as_str().unwrap_or("");
            let msg = f["message"].as_str().unwrap_or("");
            let fact = msg.starts_with("Hybrid MBR:");
            writers.contains(&id)
                || (id == "BOOT-001" && !fact && (has_table || !msg.contains("no partition table")))
        })
        .map(|f| format!("{} {}: {}", f["id"], f["severity"], f["message"]))
        .collect();
    assert!(
        bad.is_empty(),
        "vhdprep check warns about what vhdprep wrote in {}:\n{}",
        path.display(),
        bad.join("\n")
    );
    report
}

/// What `sgdisk -v` says about a disk (a raw file or a block device): the number of problems
/// it counts, the first line of each `Problem:` paragraph, and whether it found every CRC
/// right (a damaged backup header is no "problem" to sgdisk -v, which rebuilds it in memory,
/// but it says "One or more CRCs don't match" on stderr). sgdisk exits 0 either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgdiskVerdict {
    /// "Identified N problems!" (0 for "No problems found").
    pub problems: usize,
    /// First lines of the `Problem:` paragraphs.
    pub lines: Vec<String>,
    /// No "CRCs don't match" warning.
    pub crcs_match: bool,
}

impl SgdiskVerdict {
    /// No problem and every CRC right: a disk sgdisk accepts as it is.
    pub fn is_clean(&self) -> bool {
        self.problems == 0 && self.crcs_match
    }

    /// The one problem of a disk whose backup GPT is not on its last LBA.
    pub fn is_only_misplaced_backup(&self) -> bool {
        self.crcs_match
            && self.problems == 1
            && self.lines.len() == 1
            && self.lines[0].contains("secondary header's self-pointer")
    }
}

/// Runs `sgdisk -v` on `disk`.
pub fn sgdisk_verify(disk: &Path) -> SgdiskVerdict {
    let out = tool("sgdisk", "gdisk", &["-v", disk.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let problems = if text.contains("No problems found") {
        0
    } else {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("Identified ")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or_else(|| panic!("sgdisk -v said neither: {text}"))
    };
    let lines = text
        .lines()
        .filter(|l| l.starts_with("Problem:"))
        .map(str::to_string)
        .collect();
    let crcs_match = !String::from_utf8_lossy(&out.stderr).contains("CRCs don't match");
    SgdiskVerdict {
        problems,
        lines,
        crcs_match,
    }
}

/// Runs sgdisk with `args` on `disk`, asserting success.
pub fn sgdisk(disk: &Path, args: &[&str]) {
    let mut all: Vec<&str> = args.to_vec();
    all.push(disk.to_str().unwrap());
    let out = tool("sgdisk", "gdisk", &all);
    assert!(
        out.status.success(),
        "sgdisk {all:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The virtual disk of a fixed VHD of `size` bytes as a sparse raw file (the file minus its
/// footer), for tools that read raw disks (sgdisk, sfdisk, cmp).
pub fn virtual_raw(vhd: &Path, size: u64, out: &Path) {
    sparse_copy(vhd, out);
    File::options()
        .write(true)
        .open(out)
        .unwrap()
        .set_len(size)
        .unwrap();
}
