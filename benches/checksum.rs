//! Benchmark: `vhdprep checksum` against the single-purpose tools, side by side in one run.
//!
//! `cargo bench --bench checksum` (`VHDPREP_BENCH_GIB` changes the 4 GiB default,
//! `VHDPREP_BENCH_ROUNDS` the 3 rounds, `VHDPREP_BENCH_DIR` the /tmp directory).
//!
//! 1. A 4 GiB file, pseudo-random and zero 4 MiB blocks alternating, page cache warm:
//!    `vhdprep checksum` (MD5 + SHA-256 + CRC32 + zero map, the default) against `md5sum`
//!    alone; `--crc32 --zero-map` against `cksum` and Python's `zlib.crc32`.
//! 2. A 30 GiB sparse file holding 1 GiB of data: `--crc32 --zero-map`.
//! 3. The reading strategy, measured standalone on the 4 GiB file: CRC32 + zero scan on two
//!    threads over `pread` into page-aligned 256 KiB pieces (what the engine does), `pread`
//!    into unaligned buffers, `mmap`, and `mmap` with `MAP_POPULATE`.
//!
//! Runs are interleaved round by round so that a burst of other load on the machine hits
//! every contender alike; the table gives the median and the best round. Prints Markdown.

use rayon::prelude::*;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use vhdprep::checksum::zero_map;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn vhdprep() -> &'static str {
    env!("CARGO_BIN_EXE_vhdprep")
}

/// Runs a command, returns its wall time and stdout.
fn run(cmd: &str, args: &[&str]) -> (Duration, String) {
    let t = Instant::now();
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} ({e}); install it"));
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (elapsed, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Pseudo-random 4 MiB block.
fn noise(x: &mut u64, block: &mut [u8]) {
    for w in block.chunks_exact_mut(8) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        w.copy_from_slice(&x.to_le_bytes());
    }
}

/// Half data, half zeros, alternating 4 MiB blocks (real zero bytes, not holes).
fn make_half(path: &Path, gib: u64) {
    let mut f = std::io::BufWriter::with_capacity(8 << 20, File::create(path).unwrap());
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut data = vec![0u8; 4 * MIB as usize];
    let zeros = vec![0u8; 4 * MIB as usize];
    for i in 0..(gib * 1024 / 4) {
        if i % 2 == 0 {
            noise(&mut x, &mut data);
            f.write_all(&data).unwrap();
        } else {
            f.write_all(&zeros).unwrap();
        }
    }
    f.flush().unwrap();
    f.get_ref().sync_all().unwrap();
}

/// `total` bytes of holes with `data` bytes of pseudo-random 4 MiB blocks spread evenly.
fn make_sparse(path: &Path, total: u64, data: u64) {
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.set_len(total).unwrap();
    let blocks = data / (4 * MIB);
    let stride = total / blocks / (4 * MIB) * (4 * MIB);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut block = vec![0u8; 4 * MIB as usize];
    for i in 0..blocks {
        noise(&mut x, &mut block);
        f.write_all_at(&block, i * stride).unwrap();
    }
    f.sync_all().unwrap();
    // Warm the data only: reading the holes would fill the page cache with zero pages.
    for i in 0..blocks {
        f.read_exact_at(&mut block, i * stride).unwrap();
    }
}

fn warm(path: &Path) {
    let mut f = File::open(path).unwrap();
    std::io::copy(&mut f, &mut std::io::sink()).unwrap();
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

struct Series {
    name: String,
    times: Vec<Duration>,
}

impl Series {
    fn new(name: &str) -> Self {
        Series {
            name: name.into(),
            times: Vec::new(),
        }
    }
    fn median(&self) -> Duration {
        let mut v = self.times.clone();
        v.sort();
        v[v.len() / 2]
    }
    fn best(&self) -> Duration {
        self.times.iter().copied().min().unwrap()
    }
}

const PY_CRC: &str = "import sys,zlib\nc=0\nf=open(sys.argv[1],'rb',buffering=0)\nb=bytearray(1<<20)\nwhile True:\n n=f.readinto(b)\n if not n: break\n c=zlib.crc32(memoryview(b)[:n],c)\nprint('%08x'%c)";

/// The CRC32 + zero scan of the engine over `[0, len)`, in 4 MiB segments on the rayon pool,
/// each segment read with `pread` in 256 KiB pieces into a buffer `skew` bytes past a page
/// boundary.
fn pread_pass(file: &File, len: u64, skew: usize) -> (u32, u64) {
    const PIECE: usize = 256 << 10;
    let seg = 4 * MIB;
    let parts: Vec<(crc32fast::Hasher, u64)> = (0..len.div_ceil(seg))
        .into_par_iter()
        .map_init(
            || vec![0u8; PIECE + 8192],
            |v, i| {
                let k = v.as_ptr().align_offset(4096) + skew;
                let buf = &mut v[k..k + PIECE];
                let mut h = crc32fast::Hasher::new();
                let mut bits = [0u64; PIECE / 512 / 64];
                let mut nz = 0;
                let (mut at, end) = (i * seg, ((i + 1) * seg).min(len));
                while at < end {
                    let n = ((end - at) as usize).min(PIECE);
                    file.read_exact_at(&mut buf[..n], at).unwrap();
                    zero_map::scan(&buf[..n], &mut bits);
                    nz += bits.iter().map(|w| w.count_ones() as u64).sum::<u64>();
                    h.update(&buf[..n]);
                    at += n as u64;
                }
                (h, nz)
            },
        )
        .collect();
    fold(parts)
}

/// The same computation over a memory map of the file.
fn mmap_pass(file: &File, populate: bool) -> (u32, u64) {
    const PIECE: usize = 256 << 10;
    // SAFETY (benchmark only): nothing truncates the file while it is mapped; the engine
    // itself does not map files (see the README's "checksum" section for the measurement).
    let map = unsafe {
        let mut o = memmap2::MmapOptions::new();
        if populate {
            o.populate();
        }
        o.map(file).unwrap()
    };
    let parts: Vec<(crc32fast::Hasher, u64)> = map
        .par_chunks(4 * MIB as usize)
        .map(|seg| {
            let mut h = crc32fast::Hasher::new();
            let mut bits = [0u64; PIECE / 512 / 64];
            let mut nz = 0;
            for piece in seg.chunks(PIECE) {
                zero_map::scan(piece, &mut bits);
                nz += bits.iter().map(|w| w.count_ones() as u64).sum::<u64>();
                h.update(piece);
            }
            (h, nz)
        })
        .collect();
    fold(parts)
}

fn fold(parts: Vec<(crc32fast::Hasher, u64)>) -> (u32, u64) {
    let mut h = crc32fast::Hasher::new();
    let mut nz = 0;
    for (p, n) in parts {
        h.combine(&p);
        nz += n;
    }
    (h.finalize(), nz)
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(key)).then(|| w.next().unwrap_or(""))
        })
        .unwrap_or("")
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let gib = env("VHDPREP_BENCH_GIB", 4);
    let rounds = env("VHDPREP_BENCH_ROUNDS", 3) as usize;
    let dir = tempfile::Builder::new()
        .prefix("vhdprep-bench")
        .tempdir_in(std::env::var("VHDPREP_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
        .unwrap();
    let half = dir.path().join("half.raw");
    eprintln!("building a {gib} GiB file (half data, half zeros, 4 MiB blocks) ...");
    make_half(&half, gib);
    warm(&half);
    let bytes = (gib * GIB) as f64;

    // 1. Side by side, interleaved.
    let mut full = Series::new("`vhdprep checksum` (MD5 + SHA-256 + CRC32 + zero map)");
    let mut md5sum = Series::new("`md5sum`");
    let mut ours_md5 = Series::new("`vhdprep checksum --md5`");
    let mut crc_map = Series::new("`vhdprep checksum --crc32 --zero-map`");
    let mut cksum = Series::new("`cksum` (POSIX CRC)");
    let mut python = Series::new("Python `zlib.crc32` (1 MiB reads)");
    let mut md5_ours = String::new();
    let mut md5_theirs = String::new();
    let mut crc_ours = String::new();
    let mut crc_py = String::new();
    for r in 0..rounds {
        eprintln!("round {} of {rounds} ...", r + 1);
        let (t, out) = run(vhdprep(), &["checksum", "-q", s(&half)]);
        full.times.push(t);
        md5_ours = field(&out, "md5").to_string();
        let (t, out) = run("md5sum", &[s(&half)]);
        md5sum.times.push(t);
        md5_theirs = out.split_whitespace().next().unwrap_or("").to_string();
        ours_md5
            .times
            .push(run(vhdprep(), &["checksum", "-q", "--md5", s(&half)]).0);
        let (t, out) = run(
            vhdprep(),
            &["checksum", "-q", "--crc32", "--zero-map", s(&half)],
        );
        crc_map.times.push(t);
        crc_ours = field(&out, "crc32").to_string();
        cksum.times.push(run("cksum", &[s(&half)]).0);
        let (t, out) = run("python3", &["-c", PY_CRC, s(&half)]);
        python.times.push(t);
        crc_py = out.trim().to_string();
    }
    assert_eq!(md5_ours, md5_theirs, "MD5 differs from md5sum");
    assert_eq!(crc_ours, crc_py, "CRC32 differs from zlib");

    // 3. Reading strategies, standalone.
    let file = File::open(&half).unwrap();
    let len = file.metadata().unwrap().len();
    let mut strategies = [
        (
            Series::new("pread, page-aligned 256 KiB pieces (the engine)"),
            0u8,
        ),
        (
            Series::new("pread, buffers 16 bytes past a page boundary"),
            1,
        ),
        (Series::new("mmap"), 2),
        (Series::new("mmap + MAP_POPULATE"), 3),
    ];
    let mut results = Vec::new();
    warm(&half);
    for r in 0..rounds {
        // A different strategy goes first in each round.
        strategies.rotate_left(r % 4);
        for (series, kind) in strategies.iter_mut() {
            let t = Instant::now();
            let r = match kind {
                0 => pread_pass(&file, len, 0),
                1 => pread_pass(&file, len, 16),
                2 => mmap_pass(&file, false),
                _ => mmap_pass(&file, true),
            };
            series.times.push(t.elapsed());
            results.push(r);
        }
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]), "strategies agree");
    strategies.sort_by_key(|(_, kind)| *kind);
    drop(file);
    let _ = std::fs::remove_file(&half);

    // 2. The sparse file.
    let sparse = dir.path().join("sparse.raw");
    eprintln!("building a 30 GiB sparse file with 1 GiB of data ...");
    make_sparse(&sparse, 30 * GIB, GIB);
    let mut sparse_ours =
        Series::new("`vhdprep checksum --crc32 --zero-map`, 30 GiB sparse, 1 GiB data");
    let mut sparse_nz = String::new();
    for _ in 0..rounds {
        let (t, out) = run(
            vhdprep(),
            &["checksum", "-q", "--crc32", "--zero-map", s(&sparse)],
        );
        sparse_ours.times.push(t);
        sparse_nz = field(&out, "nonzero_bytes").to_string();
    }
    assert_eq!(sparse_nz, GIB.to_string(), "sparse file: 1 GiB non-zero");
    eprintln!("python zlib.crc32 over the 30 GiB sparse file (reads every zero) ...");
    let sparse_py = run("python3", &["-c", PY_CRC, s(&sparse)]).0;
    let _ = std::fs::remove_file(&sparse);

    let gbps = |d: Duration| bytes / secs(d) / 1e9;
    println!();
    println!("{gib} GiB file, half pseudo-random, half zero (4 MiB blocks), page cache warm, 2 cores; median and best of {rounds} interleaved rounds.");
    println!();
    println!("| command | median | best | throughput (median) | vs `md5sum` (median time ratio) |");
    println!("|---|---|---|---|---|");
    for series in [&full, &ours_md5, &md5sum] {
        println!(
            "| {} | {:.2} s | {:.2} s | {:.2} GB/s | {:.2}x |",
            series.name,
            secs(series.median()),
            secs(series.best()),
            gbps(series.median()),
            secs(md5sum.median()) / secs(series.median())
        );
    }
    println!();
    println!("| command | median | best | throughput (median) | vs `vhdprep checksum --crc32 --zero-map` |");
    println!("|---|---|---|---|---|");
    for series in [&crc_map, &cksum, &python] {
        println!(
            "| {} | {:.3} s | {:.3} s | {:.2} GB/s | {:.1}x slower |",
            series.name,
            secs(series.median()),
            secs(series.best()),
            gbps(series.median()),
            secs(series.median()) / secs(crc_map.median())
        );
    }
    println!(
        "| {} | {:.3} s | {:.3} s | {:.1} GB/s of disk | Python `zlib.crc32` on it: {:.1} s |",
        sparse_ours.name,
        secs(sparse_ours.median()),
        secs(sparse_ours.best()),
        (30 * GIB) as f64 / secs(sparse_ours.median()) / 1e9,
        secs(sparse_py)
    );
    println!();
    println!("Reading strategy, CRC32 + zero scan on 2 threads over the {gib} GiB file (in-process, no exec):");
    println!();
    println!("| strategy | median | best | throughput (median) |");
    println!("|---|---|---|---|");
    for (series, _) in &strategies {
        println!(
            "| {} | {:.3} s | {:.3} s | {:.2} GB/s |",
            series.name,
            secs(series.median()),
            secs(series.best()),
            gbps(series.median())
        );
    }
}
