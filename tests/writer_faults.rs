//! Writers under a file-size limit (RLIMIT_FSIZE, set with the shell's `ulimit -f`), which
//! stands in for a full disk without needing a mount: `convert` and `fix --in-place` fail with
//! one line and exit 2, the source is never changed, the destination is absent, and a re-run
//! without the limit completes the job.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};

/// Runs vhdprep with `args` under `ulimit -f` of `kib` KiB; with `ignore_signal` SIGXFSZ is
/// ignored so that writes fail with EFBIG instead of killing the process.
fn limited(dir: &Path, kib: u64, ignore_signal: bool, args: &[&str]) -> Output {
    let trap = if ignore_signal { "trap '' XFSZ; " } else { "" };
    Command::new("bash")
        .arg("-c")
        .arg(format!("{trap}ulimit -f {kib}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_vhdprep"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run bash")
}

fn sha(path: &Path) -> String {
    let out = tool("sha256sum", "coreutils", &[path.to_str().unwrap()]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("vhdprep-tmp"))
        .collect()
}

#[test]
fn convert_past_the_file_size_limit_fails_cleanly() {
    let dir = tempdir();
    let src = dir.path().join("src.raw");
    sparse_raw(&src, 64 << 20, &[(0, 8 << 20), (40 << 20, 4 << 20)]);
    let before = sha(&src);
    // EFBIG: an error naming the file, exit 2, no destination, no temporary file left.
    let out = limited(
        dir.path(),
        16 << 10,
        true,
        &["convert", "src.raw", "dst.vhd"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(!dir.path().join("dst.vhd").exists());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
    assert_eq!(sha(&src), before, "the source changed");
    // Killed by SIGXFSZ: no destination (only a temporary file a kill cannot remove).
    let out = limited(
        dir.path(),
        16 << 10,
        false,
        &["convert", "src.raw", "dst.vhd"],
    );
    assert_eq!(out.status.code(), None, "killed by SIGXFSZ");
    assert!(!dir.path().join("dst.vhd").exists());
    assert_eq!(sha(&src), before, "the source changed");
    // Without the limit the conversion completes and qemu-img reads the same disk.
    let out = run(&[
        "convert",
        src.to_str().unwrap(),
        dir.path().join("dst.vhd").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(qemu_identical(
        &src,
        "raw",
        &dir.path().join("dst.vhd"),
        "vpc"
    ));
}

#[test]
fn fix_in_place_past_the_file_size_limit_leaves_the_image_as_it_was() {
    let dir = tempdir();
    let img = dir.path().join("disk.raw");
    // 199.3 MiB: fixing it pads to 200 MiB and appends a footer, beyond a 199.5 MiB limit.
    sparse_raw(&img, 209_000_000, &[(0, 1 << 20), (100 << 20, 1 << 20)]);
    let before = sha(&img);
    let out = limited(
        dir.path(),
        204_000,
        true,
        &["fix", "--in-place", "disk.raw"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("disk.raw") && stderr.contains("File too large"),
        "{stderr}"
    );
    assert_eq!(sha(&img), before, "a failed fix changed the image");
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 209_000_000);
    // A re-run without the limit finishes the job.
    let out = run(&["fix", "--in-place", img.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (info, code) = info_json(&img);
    assert_eq!((info["format"].as_str(), code), (Some("vhd-fixed"), 0));
}
