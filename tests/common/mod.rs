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
