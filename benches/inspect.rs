//! Benchmark: `vhdprep inspect` versus `qemu-img info` on a 30 GiB sparse image with a real
//! Debian root, side by side in one run: wall time (median of 5) and bytes read (every
//! `read`/`pread64` return value, counted with strace).
//!
//! `cargo bench --bench inspect`. Needs the fixture images (`fixtures/build-images.sh`), strace
//! and sgdisk; the image used is `gen2-gpt-ext4.raw` grown to 30 GiB (backup GPT moved with
//! `sgdisk -e`).

mod common;

use common::{bytes_read, fixture_dir, must_run};
use std::process::Command;
use std::time::{Duration, Instant};

fn time(cmd: &str, args: &[&str]) -> Duration {
    let mut v: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            must_run(Command::new(cmd).args(args), &[0]);
            t.elapsed()
        })
        .collect();
    v.sort();
    v[2]
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
    must_run(
        Command::new("cp")
            .args(["--sparse=always"])
            .arg(&src)
            .arg(&img),
        &[0],
    );
    must_run(Command::new("truncate").args(["-s", "30G"]).arg(&img), &[0]);
    must_run(Command::new("sgdisk").arg("-e").arg(&img), &[0]);
    let img_s = img.to_str().unwrap();
    let vhdprep = env!("CARGO_BIN_EXE_vhdprep");
    // Warm the cache for both.
    must_run(Command::new(vhdprep).args(["inspect", img_s]), &[0]);
    let t_ours = time(vhdprep, &["inspect", "--json", img_s]);
    let t_qemu = time("qemu-img", &["info", img_s]);
    let log = dir.path().join("strace.log");
    let b_ours = bytes_read(vhdprep, &["inspect", "--json", img_s], &log, &[0]);
    let b_qemu = bytes_read("qemu-img", &["info", img_s], &log, &[0]);
    let out = must_run(
        Command::new(vhdprep).args(["inspect", "--json", img_s]),
        &[0],
    );
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
