//! Benchmark: `vhdprep check` versus `qemu-img info` on the real Debian fixture images, side by
//! side in one run: wall time (median of 5), peak memory (max RSS from wait4) and bytes read
//! (every read/pread return value, counted with strace, shared libraries included).
//!
//! `cargo bench --bench check`. Needs the fixture images (`fixtures/build-images.sh`) and
//! strace. The images are 4 GiB virtual disks holding a ~540 MiB Debian bookworm system
//! (kernel, 18 MiB gzip initramfs, ESP with shim and GRUB), converted to fixed VHDs in place.

mod common;

use common::{bytes_read, fixture_dir, must_run};
use std::process::Command;
use std::time::{Duration, Instant};

/// Median wall time of 5 runs, and the largest max RSS (KiB) seen, via GNU time.
fn measure(cmd: &str, args: &[&str], ok: &[i32]) -> (Duration, u64) {
    let mut times = Vec::new();
    let mut rss = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let out = must_run(
            Command::new("/usr/bin/time")
                .args(["-f", "maxrss=%M"])
                .arg(cmd)
                .args(args),
            ok,
        );
        times.push(t.elapsed());
        let err = String::from_utf8_lossy(&out.stderr);
        let kb = err
            .lines()
            .filter_map(|l| l.strip_prefix("maxrss="))
            .filter_map(|v| v.trim().parse::<u64>().ok())
            .next_back()
            .expect("GNU time output (install package time)");
        rss = rss.max(kb);
    }
    times.sort();
    (times[2], rss)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let vhdprep = env!("CARGO_BIN_EXE_vhdprep");
    let dir = tempfile::tempdir().unwrap();
    println!("| image (4 GiB fixed VHD, Debian bookworm) | vhdprep check: wall | peak RSS | bytes read | qemu-img info: wall | peak RSS | bytes read |");
    println!("|---|---|---|---|---|---|---|");
    for name in [
        "gen2-gpt-ext4",
        "gen1-mbr-ext4",
        "hybrid-gpt",
        "gen2-gpt-xfs",
        "gen2-gpt-btrfs",
        "rhel-lvm",
    ] {
        let src = fixture_dir().join(format!("{name}.raw"));
        assert!(
            src.exists(),
            "{} missing: run fixtures/build-images.sh first",
            src.display()
        );
        let img = dir.path().join(format!("{name}.vhd"));
        must_run(
            Command::new("cp")
                .arg("--sparse=always")
                .arg(&src)
                .arg(&img),
            &[0],
        );
        must_run(
            Command::new(vhdprep).args(["fix", "--in-place"]).arg(&img),
            &[0],
        );
        let img_s = img.to_str().unwrap();
        // The check must have looked at the guest (kernel, initramfs, agents).
        let out = must_run(
            Command::new(vhdprep).args(["check", "--format", "json", img_s]),
            &[0, 1],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["os"]["id"], "debian",
            "{name}: the benchmark image must have a real root"
        );
        let check_args = ["check", "--format", "json", img_s];
        let (t_ours, rss_ours) = measure(vhdprep, &check_args, &[0, 1]);
        let (t_qemu, rss_qemu) = measure("qemu-img", &["info", "-f", "vpc", img_s], &[0]);
        let log = dir.path().join("strace.log");
        let b_ours = bytes_read(vhdprep, &check_args, &log, &[0, 1]);
        let b_qemu = bytes_read("qemu-img", &["info", "-f", "vpc", img_s], &log, &[0]);
        println!(
            "| {name} | {:.0} ms | {:.1} MiB | {:.1} MiB | {:.1} ms | {:.1} MiB | {:.2} MiB |",
            t_ours.as_secs_f64() * 1e3,
            rss_ours as f64 / 1024.0,
            b_ours as f64 / 1048576.0,
            t_qemu.as_secs_f64() * 1e3,
            rss_qemu as f64 / 1024.0,
            b_qemu as f64 / 1048576.0,
        );
        std::fs::remove_file(&img).unwrap();
    }
}
