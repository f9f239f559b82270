//! Benchmark: vhdprep versus qemu-img, side by side in one run.
//!
//! `cargo bench --bench convert` (set `VHDPREP_BENCH_GIB` to change the 4 GiB default).
//!
//! 1. `vhdprep convert` vs `qemu-img convert -O vpc -o subformat=fixed,force_size=on` on a raw
//!    image that is half pseudo-random data, half zeros, in alternating 4 MiB blocks (the zeros
//!    are real zero bytes, not holes), page cache warm.
//! 2. `vhdprep fix --in-place` on the same raw image (unaligned by 12345 bytes), and on a
//!    1 TiB sparse raw: in-place fixing must not depend on the disk size.
//!
//! Prints a Markdown table with the medians and the ratios; the README quotes it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn vhdprep() -> &'static str {
    env!("CARGO_BIN_EXE_vhdprep")
}

fn run(cmd: &str, args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} ({e}); install it (qemu-utils for qemu-img)"));
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Half data, half zeros, alternating 4 MiB blocks, plus `tail` extra bytes of data.
fn make_raw(path: &Path, gib: u64, tail: usize) {
    let mut f = std::io::BufWriter::with_capacity(8 << 20, File::create(path).unwrap());
    let block = 4 * MIB as usize;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut data = vec![0u8; block];
    let zeros = vec![0u8; block];
    for i in 0..(gib * 1024 / 4) {
        if i % 2 == 0 {
            for w in data.chunks_exact_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                w.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&data).unwrap();
        } else {
            f.write_all(&zeros).unwrap();
        }
    }
    f.write_all(&data[..tail]).unwrap();
    f.flush().unwrap();
    f.get_ref().sync_all().unwrap();
}

fn warm(path: &Path) {
    let mut f = File::open(path).unwrap();
    std::io::copy(&mut f, &mut std::io::sink()).unwrap();
}

fn rm(p: &Path) {
    let _ = std::fs::remove_file(p);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let gib: u64 = std::env::var("VHDPREP_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let dir = tempfile::Builder::new()
        .prefix("vhdprep-bench")
        .tempdir_in(std::env::var("VHDPREP_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
        .unwrap();
    let raw: PathBuf = dir.path().join("src.raw");
    eprintln!("building a {gib} GiB raw image (half data, half zeros) ...");
    make_raw(&raw, gib, 12_345);
    warm(&raw);
    let ours = dir.path().join("ours.vhd");
    let theirs = dir.path().join("qemu.vhd");
    let rounds = 3;
    let (mut t_ours, mut t_qemu) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        rm(&ours);
        rm(&theirs);
        t_ours.push(run(vhdprep(), &["convert", "-q", s(&raw), s(&ours)]));
        t_qemu.push(run(
            "qemu-img",
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "vpc",
                "-o",
                "subformat=fixed,force_size=on",
                s(&raw),
                s(&theirs),
            ],
        ));
    }
    let same = Command::new("qemu-img")
        .args(["compare", "-f", "vpc", "-F", "vpc", s(&ours), s(&theirs)])
        .status()
        .unwrap()
        .success();
    assert!(same, "outputs differ");
    rm(&ours);
    rm(&theirs);
    let (mo, mq) = (median(t_ours), median(t_qemu));

    // In-place fix: the same raw image (copy made outside the timing), then a 1 TiB sparse one.
    let mut t_fix = Vec::new();
    for _ in 0..rounds {
        let work = dir.path().join("work.raw");
        let st = Command::new("cp")
            .args(["--sparse=always", s(&raw), s(&work)])
            .status()
            .unwrap();
        assert!(st.success());
        // Flush the copy first: fix ends with an fsync, which would otherwise time the
        // write-back of cp's dirty pages instead of vhdprep's own work.
        File::open(&work).unwrap().sync_all().unwrap();
        t_fix.push(run(vhdprep(), &["fix", "--in-place", s(&work)]));
        rm(&work);
    }
    let huge = dir.path().join("huge.raw");
    let mut t_fix_huge = Vec::new();
    for _ in 0..rounds {
        let f = File::create(&huge).unwrap();
        f.set_len((1 << 40) + 12_345).unwrap();
        drop(f);
        t_fix_huge.push(run(vhdprep(), &["fix", "--in-place", s(&huge)]));
        rm(&huge);
    }
    let (mf, mh) = (median(t_fix), median(t_fix_huge));
    let secs = |d: Duration| d.as_secs_f64();
    let gbps = |d: Duration| (gib << 30) as f64 / secs(d) / 1e9;
    println!("| operation ({gib} GiB raw, half data, page cache warm, median of {rounds}) | vhdprep | qemu-img | ratio (qemu-img time / vhdprep time) |");
    println!("|---|---|---|---|");
    println!(
        "| raw -> fixed VHD | {:.2} s ({:.2} GB/s) | {:.2} s ({:.2} GB/s) | {:.2}x |",
        secs(mo),
        gbps(mo),
        secs(mq),
        gbps(mq),
        secs(mq) / secs(mo)
    );
    println!(
        "| `fix --in-place` ({gib} GiB raw) | {:.1} ms | n/a (qemu-img must copy: {:.2} s) | {:.0}x |",
        secs(mf) * 1e3,
        secs(mq),
        secs(mq) / secs(mf)
    );
    println!(
        "| `fix --in-place` (1 TiB sparse raw) | {:.1} ms | n/a (qemu-img refuses > 2040 GiB) | - |",
        secs(mh) * 1e3
    );
}
