//! Benchmark: `vhdprep inspect` versus `qemu-img info` on a 30 GiB sparse image with a real
//! Debian root, side by side in one run: wall time (median of 5) and bytes read (every
//! `read`/`pread64` return value, counted with strace).
//!
//! `cargo bench --bench inspect`. Needs the fixture images (`fixtures/build-images.sh`), strace
//! and sgdisk; the image used is `gen2-gpt-ext4.raw` grown to 30 GiB (backup GPT moved with
//! `sgdisk -e`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn fixture_dir() -> PathBuf {
    std::env::var_os("VHDPREP_FIXTURE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cache"))
}

fn must(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn time(cmd: &str, args: &[&str]) -> Duration {
    let mut v: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            must(Command::new(cmd).args(args));
            t.elapsed()
        })
        .collect();
    v.sort();
    v[2]
}

/// Bytes returned by read/pread64 syscalls of the process tree, from an strace log.
fn bytes_read(cmd: &str, args: &[&str], log: &Path) -> u64 {
    must(
        Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-e",
                "trace=read,pread64,preadv,preadv2",
                "-e",
                "signal=none",
                "-o",
            ])
            .arg(log)
            .arg(cmd)
            .args(args),
    );
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.rsplit_once("= ")
                .and_then(|(_, n)| n.split_whitespace().next()?.parse::<i64>().ok())
        })
        .filter(|&n| n > 0)
        .map(|n| n as u64)
        .sum()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let src = fixture_dir().join("gen2-gpt-ext4.raw");
    assert!(
        src.exists(),
        "{} missing: run fixtures/build-images.sh first",
        src.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("big.raw");
    must(
        Command::new("cp")
            .args(["--sparse=always"])
            .arg(&src)
            .arg(&img),
    );
    must(Command::new("truncate").args(["-s", "30G"]).arg(&img));
    must(Command::new("sgdisk").arg("-e").arg(&img));
    let img_s = img.to_str().unwrap();
    let vhdprep = env!("CARGO_BIN_EXE_vhdprep");
    // Warm the cache for both.
    must(Command::new(vhdprep).args(["inspect", img_s]));
    let t_ours = time(vhdprep, &["inspect", "--json", img_s]);
    let t_qemu = time("qemu-img", &["info", img_s]);
    let log = dir.path().join("strace.log");
    let b_ours = bytes_read(vhdprep, &["inspect", "--json", img_s], &log);
    let b_qemu = bytes_read("qemu-img", &["info", img_s], &log);
    let out = must(Command::new(vhdprep).args(["inspect", "--json", img_s]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["os"]["id"], "debian",
        "the benchmark image must have a real root"
    );
    println!(
        "| 30 GiB sparse image, Debian root (median of 5) | vhdprep inspect | qemu-img info |"
    );
    println!("|---|---|---|");
    println!(
        "| wall time | {:.1} ms | {:.1} ms |",
        t_ours.as_secs_f64() * 1e3,
        t_qemu.as_secs_f64() * 1e3
    );
    println!(
        "| bytes read (read/pread syscalls, incl. shared libraries) | {:.2} MiB | {:.2} MiB |",
        b_ours as f64 / 1048576.0,
        b_qemu as f64 / 1048576.0
    );
    println!("| what it tells | partitions, filesystems, mounts, OS, architecture | container format and size |");
}
