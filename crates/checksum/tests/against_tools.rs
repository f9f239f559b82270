//! The values of a pass against other programs: `md5sum`, `sha256sum`, `b3sum`, Python's
//! `zlib.crc32` and `hashlib.md5`, the official BLAKE3 test vectors, and a plain zero scan
//! written here independently of the crate. Inputs: empty, 1 byte, sizes around every buffer
//! boundary, only holes, data mixed with holes, dynamic and fixed VHDs made by qemu-img.
//!
//! A missing tool fails the test with the Debian package to install; nothing is skipped.

use std::fs::File;
use std::io::{Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};
use vhdprep_checksum::{
    checksum, checksum_path, Digests, Observer, Options, Scope, CHUNK, PIECE, PUT_PAGE_MAX,
};

const MIB: u64 = 1 << 20;

/// Runs a tool, failing with the package to install when it is missing.
fn tool(name: &str, package: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new(name);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("required tool `{name}` could not be run ({e}); install Debian package `{package}`")
    });
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The first word of a `*sum` tool's output.
fn sum(name: &str, package: &str, path: &Path) -> String {
    tool(name, package, &[path.to_str().unwrap()], None)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Python: zlib.crc32 of the file, and hashlib.md5 (base64) of each given range.
fn python(path: &Path, ranges: &[(u64, u64)]) -> (String, Vec<String>) {
    let script = r#"
import base64, hashlib, json, sys, zlib
path = sys.argv[1]
ranges = json.load(sys.stdin)
crc = 0
with open(path, 'rb') as f:
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        crc = zlib.crc32(b, crc)
    md5s = []
    for off, length in ranges:
        f.seek(off)
        md5s.append(base64.b64encode(hashlib.md5(f.read(length)).digest()).decode())
print(json.dumps({"crc32": "%08x" % crc, "md5s": md5s}))
"#;
    let input = serde_json::to_string(ranges).unwrap();
    let out = tool(
        "python3",
        "python3",
        &["-c", script, path.to_str().unwrap()],
        Some(&input),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let md5s = v["md5s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    (v["crc32"].as_str().unwrap().to_string(), md5s)
}

/// The zero map computed the plain way: read every 512-byte page, merge the non-zero ones.
fn plain_zero_map(path: &Path) -> Vec<(u64, u64)> {
    let mut f = File::open(path).unwrap();
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut page = [0u8; 512];
    let mut off = 0u64;
    loop {
        let mut n = 0;
        while n < 512 {
            let k = f.read(&mut page[n..]).unwrap();
            if k == 0 {
                break;
            }
            n += k;
        }
        if n == 0 {
            break;
        }
        if page[..n].iter().any(|&b| b != 0) {
            match out.last_mut() {
                Some((o, l)) if *o + *l == off => *l += n as u64,
                _ => out.push((off, n as u64)),
            }
        }
        off += n as u64;
    }
    out
}

/// The zero map cut at every multiple of 4 MiB: the per-range MD5 pieces.
fn cut(map: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(o, l) in map {
        let mut at = o;
        while at < o + l {
            let e = ((at / PUT_PAGE_MAX + 1) * PUT_PAGE_MAX).min(o + l);
            out.push((at, e - at));
            at = e;
        }
    }
    out
}

/// Records what an observer sees.
#[derive(Default)]
struct Seen {
    ranges: Vec<(Range<u64>, bool)>,
    last_progress: Option<(u64, u64)>,
}

impl Observer for Seen {
    fn range(&mut self, range: Range<u64>, is_zero: bool) {
        self.ranges.push((range, is_zero));
    }
    fn progress(&mut self, done: u64, total: u64) {
        if let Some((d, _)) = self.last_progress {
            assert!(done >= d, "progress went back from {d} to {done}");
        }
        assert!(done <= total);
        self.last_progress = Some((done, total));
    }
}

fn pairs(d: &Digests) -> Vec<(u64, u64)> {
    d.zero_map
        .as_ref()
        .unwrap()
        .ranges()
        .iter()
        .map(|r| (r.start, r.end - r.start))
        .collect()
}

/// Checks every value of `path` (blob scope) against the tools and the plain scan.
fn check_file(path: &Path) {
    let mut seen = Seen::default();
    let d = checksum_path(path, Scope::Blob, &Options::all(), &mut seen).unwrap();
    let len = std::fs::metadata(path).unwrap().len();
    let what = format!("{} ({len} bytes)", path.display());
    assert_eq!(d.size, len, "{what}");
    assert_eq!(
        d.md5_hex().unwrap(),
        sum("md5sum", "coreutils", path),
        "md5 {what}"
    );
    assert_eq!(
        d.sha256_hex().unwrap(),
        sum("sha256sum", "coreutils", path),
        "sha256 {what}"
    );
    assert_eq!(
        d.blake3_hex().unwrap(),
        sum("b3sum", "b3sum", path),
        "blake3 {what}"
    );
    let map = plain_zero_map(path);
    assert_eq!(pairs(&d), map, "zero map {what}");
    assert_eq!(
        d.zero_map.as_ref().unwrap().nonzero_bytes(),
        map.iter().map(|r| r.1).sum::<u64>(),
        "nonzero_bytes {what}"
    );
    let pieces = cut(&map);
    let (crc, md5s) = python(path, &pieces);
    assert_eq!(d.crc32_hex().unwrap(), crc, "crc32 {what}");
    let got: Vec<(u64, u64, String)> = d
        .range_md5
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| (r.offset, r.length, r.md5_base64()))
        .collect();
    let want: Vec<(u64, u64, String)> = pieces
        .iter()
        .zip(md5s)
        .map(|(&(o, l), m)| (o, l, m))
        .collect();
    assert_eq!(got, want, "range md5 {what}");
    // The observer saw the same map, piece by piece, in order.
    let mut at = 0;
    let mut nonzero: Vec<(u64, u64)> = Vec::new();
    for (i, (r, z)) in seen.ranges.iter().enumerate() {
        assert_eq!(r.start, at, "{what}: observer ranges contiguous");
        assert!(r.end > r.start);
        if *z {
            assert!(
                i == 0 || !seen.ranges[i - 1].1,
                "{what}: zero ranges merged"
            );
        } else {
            assert_eq!(
                r.start / PUT_PAGE_MAX,
                (r.end - 1) / PUT_PAGE_MAX,
                "{what}: non-zero piece {r:?} crosses 4 MiB"
            );
            nonzero.push((r.start, r.end - r.start));
        }
        at = r.end;
    }
    assert_eq!(at, len, "{what}: observer covered the input");
    assert_eq!(nonzero, pieces, "{what}: observer pieces");
    assert_eq!(seen.last_progress, Some((len, len)), "{what}: progress");
    // Subsets give the same values; the CRC-only pass has no hashing thread at all.
    let crc_only = Options {
        crc32: true,
        ..Options::none()
    };
    let c = checksum_path(path, Scope::Blob, &crc_only, &mut ()).unwrap();
    assert_eq!(c.crc32, d.crc32, "{what}");
    assert!(c.md5.is_none() && c.zero_map.is_none() && c.range_md5.is_none());
    let map_only = Options {
        zero_map: true,
        ..Options::none()
    };
    let m = checksum_path(path, Scope::Blob, &map_only, &mut ()).unwrap();
    assert_eq!(m.zero_map, d.zero_map, "{what}");
    let md5_only = Options {
        md5: true,
        ..Options::none()
    };
    let m = checksum_path(path, Scope::Blob, &md5_only, &mut ()).unwrap();
    assert_eq!(m.md5, d.md5, "{what}");
}

/// Deterministic pseudo-random bytes, with some zero pages mixed in.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = vec![0u8; len];
    for w in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        w.copy_from_slice(&b[..w.len()]);
    }
    // Zero some 512-byte pages (and a few unaligned stretches) so the map has structure.
    let mut p = 3;
    while p * 512 < len {
        let end = ((p + 1 + p % 5) * 512).min(len);
        v[p * 512..end].fill(0);
        p += 7 + p % 11;
    }
    v
}

fn write(path: &Path, data: &[u8]) {
    let mut f = File::create(path).unwrap();
    f.write_all(data).unwrap();
}

#[test]
fn sizes_around_every_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [
        0usize,
        1,
        511,
        512,
        513,
        4095,
        4097,
        PIECE - 1,
        PIECE,
        PIECE + 1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        2 * CHUNK + 512 + 3,
    ];
    for (i, &n) in sizes.iter().enumerate() {
        let p = dir.path().join(format!("f{n}"));
        write(&p, &pattern(n, i as u64 + 7));
        check_file(&p);
    }
    // One non-zero byte, all zeros, and a lone non-zero last byte.
    let p = dir.path().join("one");
    write(&p, &[0x42]);
    check_file(&p);
    let p = dir.path().join("zeros");
    write(&p, &vec![0u8; CHUNK + 1000]);
    check_file(&p);
    let mut v = vec![0u8; CHUNK + 1000];
    *v.last_mut().unwrap() = 1;
    let p = dir.path().join("last");
    write(&p, &v);
    check_file(&p);
}

#[test]
fn only_holes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("holes");
    File::create(&p).unwrap().set_len(64 * MIB + 100).unwrap();
    check_file(&p);
    let d = checksum_path(&p, Scope::Blob, &Options::default(), &mut ()).unwrap();
    assert_eq!(d.bytes_read, 0, "holes are not read");
    assert_eq!(d.zero_map.unwrap().nonzero_bytes(), 0);
}

/// A sparse file: data extents at unaligned places, crossing 4 MiB boundaries, holding zero
/// pages themselves, and a data tail that ends mid-page.
fn mixed_file(path: &Path) -> u64 {
    let f = File::create(path).unwrap();
    let len = 40 * MIB + 777;
    f.set_len(len).unwrap();
    let pieces: [(u64, usize); 6] = [
        (0, 8192),
        (MIB + 4096, 3 * MIB as usize),
        (4 * MIB - 8192, 3 * 8192),
        (13 * MIB, 9 * MIB as usize),
        (30 * MIB + 512, 4096),
        (len - 1500, 1500),
    ];
    for (i, (off, n)) in pieces.iter().enumerate() {
        f.write_all_at(&pattern(*n, i as u64 + 100), *off).unwrap();
    }
    f.sync_all().unwrap();
    len
}

#[test]
fn data_mixed_with_holes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mixed");
    let len = mixed_file(&p);
    check_file(&p);
    let d = checksum_path(&p, Scope::Blob, &Options::default(), &mut ()).unwrap();
    assert!(
        d.bytes_read < len / 2,
        "holes skipped: read {} of {len}",
        d.bytes_read
    );
}

#[test]
fn blake3_official_test_vectors() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/blake3_test_vectors.json"),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    let opts = Options {
        blake3: true,
        ..Options::none()
    };
    for case in cases {
        let n = case["input_len"].as_u64().unwrap() as usize;
        let input: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let d = checksum(&input, Path::new("vector"), &opts, &mut ()).unwrap();
        let want = &case["hash"].as_str().unwrap()[..64];
        assert_eq!(d.blake3_hex().unwrap(), want, "input_len {n}");
    }
}

fn qemu_img(args: &[&str]) {
    tool("qemu-img", "qemu-utils", args, None);
}

#[test]
fn dynamic_and_fixed_vhds_made_by_qemu_img() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("src.raw");
    mixed_file(&raw);
    // A whole number of MiB, so the VHD's disk is exactly the raw file.
    File::options()
        .write(true)
        .open(&raw)
        .unwrap()
        .set_len(41 * MIB)
        .unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let dynamic = dir.path().join("dyn.vhd");
    let fixed = dir.path().join("fixed.vhd");
    for (out, sub) in [(&dynamic, "dynamic"), (&fixed, "fixed")] {
        qemu_img(&[
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            &format!("subformat={sub},force_size=on"),
            &s(&raw),
            &s(out),
        ]);
    }
    let raw_sums = checksum_path(&raw, Scope::Blob, &Options::all(), &mut ()).unwrap();
    assert_eq!(
        raw_sums.md5_hex().unwrap(),
        sum("md5sum", "coreutils", &raw)
    );
    for vhd in [&dynamic, &fixed] {
        let disk = checksum_path(vhd, Scope::Disk, &Options::all(), &mut ()).unwrap();
        let what = vhd.display();
        assert_eq!(disk.size, raw_sums.size, "{what}");
        assert_eq!(disk.md5, raw_sums.md5, "{what}");
        assert_eq!(disk.sha256, raw_sums.sha256, "{what}");
        assert_eq!(disk.crc32, raw_sums.crc32, "{what}");
        assert_eq!(disk.blake3, raw_sums.blake3, "{what}");
        assert_eq!(disk.zero_map, raw_sums.zero_map, "{what}");
        assert_eq!(disk.range_md5, raw_sums.range_md5, "{what}");
        // The blob is the file as uploaded, footer included.
        check_file(vhd);
    }
    let dyn_disk = checksum_path(&dynamic, Scope::Disk, &Options::default(), &mut ()).unwrap();
    assert!(
        dyn_disk.bytes_read < 30 * MIB,
        "unallocated blocks not read: {}",
        dyn_disk.bytes_read
    );
}
