//! Benchmark: vhdprep versus qemu-img, side by side in one run.
//!
//! `cargo bench --bench convert` (set `VHDPREP_BENCH_GIB` to change the 4 GiB default).
//!
//! 1. `vhdprep convert SRC out.vhd` vs `qemu-img convert -O vpc -o
//!    subformat=fixed,force_size=on SRC out.vhd && sync out.vhd` (vhdprep fsyncs before its
//!    rename, qemu-img leaves dirty pages: the flush is part of the fair comparison), for five
//!    sources of the same disk: a raw image that is half data, half zeros in alternating 4 MiB
//!    blocks (the zeros are real zero bytes, not holes), and qcow2, compressed qcow2 (zlib),
//!    dynamic VHDX and streamOptimized VMDK images qemu-img makes from it. Each data page is
//!    half pseudo-random, half repeated text, so the compressed formats really compress (about
//!    2:1, like a real root filesystem) instead of storing incompressible clusters raw. Page
//!    cache warm, outputs removed and the filesystem synced before each timed run, median of 3
//!    interleaved rounds (who goes first alternates); both outputs are checked once with
//!    `qemu-img compare` against the source.
//! 2. `vhdprep fix --in-place` on the raw image made unaligned by 12345 bytes, and on a 1 TiB
//!    sparse raw: in-place fixing must not depend on the disk size.
//!
//! Prints two Markdown tables with the medians and the ratios; the README quotes them.

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

/// `qemu-img compare` says the two images hold the same disk.
fn assert_same(a: &Path, a_fmt: &str, b: &Path, b_fmt: &str) {
    let out = Command::new("qemu-img")
        .args(["compare", "-f", a_fmt, "-F", b_fmt, s(a), s(b)])
        .output()
        .expect("qemu-img (qemu-utils)");
    assert!(
        out.status.success(),
        "{} and {} differ: {}{}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Half data, half zeros, alternating 4 MiB blocks. Each 4 KiB data page is 2 KiB of
/// xorshift output then 2 KiB of repeated text.
fn make_raw(path: &Path, gib: u64) {
    let mut f = std::io::BufWriter::with_capacity(8 << 20, File::create(path).unwrap());
    let block = 4 * MIB as usize;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut data = vec![0u8; block];
    let zeros = vec![0u8; block];
    let text = b"root:x:0:0:root:/root:/bin/bash daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin ";
    for i in 0..(gib * 1024 / 4) {
        if i % 2 == 0 {
            for page in data.chunks_exact_mut(4096) {
                let (random, repeated) = page.split_at_mut(2048);
                for w in random.chunks_exact_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    w.copy_from_slice(&x.to_le_bytes());
                }
                for (j, b) in repeated.iter_mut().enumerate() {
                    *b = text[(j + x as usize % 7) % text.len()];
                }
            }
            f.write_all(&data).unwrap();
        } else {
            f.write_all(&zeros).unwrap();
        }
    }
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

/// One source format of the convert table: its name, qemu-img format, `qemu-img convert`
/// options that make it from the raw image, and file name.
struct Source {
    label: &'static str,
    fmt: &'static str,
    make: &'static [&'static str],
    file: &'static str,
}

const SOURCES: [Source; 5] = [
    Source {
        label: "raw",
        fmt: "raw",
        make: &[],
        file: "src.raw",
    },
    Source {
        label: "qcow2",
        fmt: "qcow2",
        make: &["-O", "qcow2"],
        file: "src.qcow2",
    },
    Source {
        label: "qcow2, compressed (zlib)",
        fmt: "qcow2",
        make: &["-O", "qcow2", "-c"],
        file: "src-c.qcow2",
    },
    Source {
        label: "VHDX (dynamic)",
        fmt: "vhdx",
        make: &["-O", "vhdx", "-o", "subformat=dynamic"],
        file: "src.vhdx",
    },
    Source {
        label: "VMDK (streamOptimized)",
        fmt: "vmdk",
        make: &["-O", "vmdk", "-o", "subformat=streamOptimized"],
        file: "src.vmdk",
    },
];

/// Writes back everything dirty on the filesystem of `dir` (untimed).
fn settle(dir: &Path) {
    run("sync", &["-f", s(dir)]);
}

/// `qemu-img convert -O vpc -o subformat=fixed,force_size=on` then `sync` of its output, timed
/// together.
fn qemu_convert(src: &Path, fmt: &str, out: &Path) -> Duration {
    let t = run(
        "qemu-img",
        &[
            "convert",
            "-f",
            fmt,
            "-O",
            "vpc",
            "-o",
            "subformat=fixed,force_size=on",
            s(src),
            s(out),
        ],
    );
    t + run("sync", &[s(out)])
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
    let raw: PathBuf = dir.path().join(SOURCES[0].file);
    eprintln!("building a {gib} GiB raw image (half data, half zeros) and its qemu-img copies ...");
    make_raw(&raw, gib);
    for src in &SOURCES[1..] {
        let path = dir.path().join(src.file);
        let mut args = vec!["convert", "-f", "raw"];
        args.extend_from_slice(src.make);
        args.extend_from_slice(&[s(&raw), s(&path)]);
        run("qemu-img", &args);
        File::open(&path).unwrap().sync_all().unwrap();
    }
    for src in &SOURCES {
        warm(&dir.path().join(src.file));
    }
    let ours = dir.path().join("ours.vhd");
    let theirs = dir.path().join("qemu.vhd");
    let rounds = 3;
    let mut times = vec![(Vec::new(), Vec::new()); SOURCES.len()];
    for round in 0..rounds {
        for (src, (t_ours, t_qemu)) in SOURCES.iter().zip(&mut times) {
            let path = dir.path().join(src.file);
            eprintln!("round {}/{rounds}: {}", round + 1, src.label);
            rm(&ours);
            rm(&theirs);
            // Alternate who goes first, and commit the filesystem (with this mount's
            // `discard`, the blocks of the removed outputs) before each timed run, so that
            // neither tool's flush pays for the other's leftovers.
            let ours_first = round % 2 == 0;
            for turn in 0..2 {
                settle(dir.path());
                if (turn == 0) == ours_first {
                    t_ours.push(run(vhdprep(), &["convert", "-q", s(&path), s(&ours)]));
                } else {
                    t_qemu.push(qemu_convert(&path, src.fmt, &theirs));
                }
            }
            if round == 0 {
                assert_same(&path, src.fmt, &ours, "vpc");
                assert_same(&path, src.fmt, &theirs, "vpc");
            }
        }
    }
    rm(&ours);
    rm(&theirs);
    let sizes: Vec<u64> = SOURCES
        .iter()
        .map(|src| std::fs::metadata(dir.path().join(src.file)).unwrap().len())
        .collect();
    for src in &SOURCES[1..] {
        rm(&dir.path().join(src.file));
    }

    // In-place fix: the raw image made unaligned (copy made outside the timing), then a 1 TiB
    // sparse one.
    let mut t_fix = Vec::new();
    for _ in 0..rounds {
        let work = dir.path().join("work.raw");
        let st = Command::new("cp")
            .args(["--sparse=always", s(&raw), s(&work)])
            .status()
            .unwrap();
        assert!(st.success());
        let f = std::fs::OpenOptions::new().write(true).open(&work).unwrap();
        f.set_len((gib << 30) + 12_345).unwrap();
        // Flush the copy first: fix ends with an fsync, which would otherwise time the
        // write-back of cp's dirty pages instead of vhdprep's own work.
        f.sync_all().unwrap();
        drop(f);
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
    println!("| source ({gib} GiB disk, half data; median of {rounds}) | source file | vhdprep convert | qemu-img convert + sync | ratio (vhdprep / qemu-img; goal <= 0.8) |");
    println!("|---|---|---|---|---|");
    let mut raw_qemu = Duration::ZERO;
    for ((src, (t_ours, t_qemu)), size) in SOURCES.iter().zip(times).zip(sizes) {
        let (mo, mq) = (median(t_ours), median(t_qemu));
        if src.fmt == "raw" {
            raw_qemu = mq;
        }
        println!(
            "| {} | {:.2} GiB | {:.2} s | {:.2} s | {:.2}x |",
            src.label,
            size as f64 / (1u64 << 30) as f64,
            secs(mo),
            secs(mq),
            secs(mo) / secs(mq)
        );
    }
    println!();
    println!("| operation (median of {rounds}) | vhdprep | qemu-img |");
    println!("|---|---|---|");
    println!(
        "| `fix --in-place` ({gib} GiB raw) | {:.1} ms | n/a (must copy: raw -> VHD + sync {:.2} s) |",
        secs(mf) * 1e3,
        secs(raw_qemu),
    );
    println!(
        "| `fix --in-place` (1 TiB sparse raw) | {:.1} ms | n/a (qemu-img refuses > 2040 GiB) |",
        secs(mh) * 1e3
    );
}
