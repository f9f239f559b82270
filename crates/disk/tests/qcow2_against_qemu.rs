//! The qcow2 reader against qemu-img (the writer and first judge) and libqcow (a second,
//! independent reader): images written by qemu-img and qemu-io in every form issue 12 names
//! (compat 0.10 and 1.1, cluster sizes 4 KiB..2 MiB, zlib and zstd compression, extended L2
//! entries, preallocation modes, backing chains of 3, snapshots), read whole through
//! [`Qcow2Disk`] and compared byte for byte with the raw source and with `qemu-img convert -O
//! raw`; virtual sizes equal `qemu-img info`'s; `next_data` hides no data and skips what
//! `qemu-img map` reports as holes or zeros. Peer tools are required: a missing one fails the
//! test naming its Debian package.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use vhdprep_disk::qcow2::{self, Qcow2Disk, Qcow2Error};
use vhdprep_disk::{FileReader, ReadAt, SharedDisk};

const MIB: u64 = 1 << 20;
/// The source disk: not a whole number of clusters, so the last cluster is partial.
const SIZE: u64 = 24 * MIB + 1536;
/// Longest backing chain the test helper follows.
const MAX_CHAIN: usize = 8;

fn tool(name: &str, package: &str, args: &[&str]) -> Output {
    match Command::new(name).args(args).output() {
        Ok(o) => o,
        Err(e) => panic!(
            "required tool `{name}` could not be run ({e}); install Debian package `{package}` (scripts/test.sh does)"
        ),
    }
}

fn ok(name: &str, package: &str, args: &[&str]) -> String {
    let out = tool(name, package, args);
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn qemu_img(args: &[&str]) -> String {
    ok("qemu-img", "qemu-utils", args)
}

fn qemu_io(img: &Path, cmds: &[&str]) {
    let mut args = vec!["-f", "qcow2"];
    for c in cmds {
        args.push("-c");
        args.push(c);
    }
    args.push(img.to_str().unwrap());
    ok("qemu-io", "qemu-utils", &args);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn info(img: &Path) -> serde_json::Value {
    serde_json::from_str(&qemu_img(&["info", "--output=json", s(img)])).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn random(seed: u64, len: usize) -> Vec<u8> {
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

/// Text-like bytes that compress well.
fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!("line {i}: the quick brown fox {}\n", i * 7919 % 1000).as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

/// The raw source: random data, compressible text, written zeros, small unaligned writes,
/// holes, and data in the partial last cluster.
fn make_source(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("src.raw");
    let f = File::create(&path).unwrap();
    f.set_len(SIZE).unwrap();
    let put = |off: u64, b: &[u8]| f.write_all_at(b, off).unwrap();
    put(0, &random(1, MIB as usize));
    put(MIB, &text(2 * MIB as usize));
    put(3 * MIB, &vec![0u8; MIB as usize]);
    put(4 * MIB + 4096, &random(2, 4096));
    put(5 * MIB + 512, &random(3, 512));
    put(7 * MIB, &random(4, 5 * MIB as usize / 2));
    put(16 * MIB - 100, &text(300));
    put(SIZE - 4096, &random(5, 4096));
    drop(f);
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// Opens `path` as a raw disk.
fn open_raw(path: &Path) -> SharedDisk {
    Arc::new(FileReader::new(File::open(path).unwrap()).unwrap())
}

/// Opens a qcow2 image the way the caller of the reader must: the backing file named in the
/// header is resolved next to the image, and opened first (recursively: for a chain of 3 the
/// grandparent, then the parent with it, then the child with the parent).
fn open_chain(path: &Path) -> Qcow2Disk {
    open_chain_depth(path, 0)
}

fn open_chain_depth(path: &Path, depth: usize) -> Qcow2Disk {
    assert!(depth < MAX_CHAIN, "backing chain longer than {MAX_CHAIN}");
    let file = open_raw(path);
    let header = qcow2::read_header(&*file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let parent = header.backing_file.as_ref().map(|name| {
        let p = qcow2::backing_path_next_to(path, name).unwrap();
        match header.backing_format.as_deref() {
            Some("raw") => open_raw(&p),
            _ => Arc::new(open_chain_depth(&p, depth + 1)) as SharedDisk,
        }
    });
    Qcow2Disk::open(file, header, parent).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The whole virtual disk, read 4 MiB at a time as `convert` does.
fn read_all(d: &dyn ReadAt) -> Vec<u8> {
    let mut out = vec![0u8; d.len() as usize];
    for (i, chunk) in out.chunks_mut(4 << 20).enumerate() {
        d.read_exact_at(chunk, i as u64 * (4 << 20)).unwrap();
    }
    out
}

/// Every `next_data` range from 0.
fn data_ranges(d: &dyn ReadAt) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(r) = d.next_data(at).unwrap() {
        assert!(
            r.start >= at && r.end > r.start && r.end <= d.len(),
            "{r:?} from {at}"
        );
        out.push((r.start, r.end));
        at = r.end;
    }
    out
}

/// `qemu-img map` ranges that hold data (allocated somewhere in the chain, not known zero).
fn qemu_data(img: &Path) -> Vec<(u64, u64)> {
    let v: serde_json::Value =
        serde_json::from_str(&qemu_img(&["map", "--output=json", s(img)])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"] == true && e["zero"] == false)
        .map(|e| {
            let start = e["start"].as_u64().unwrap();
            (start, start + e["length"].as_u64().unwrap())
        })
        .collect()
}

fn within(ranges: &[(u64, u64)], a: u64, b: u64) -> bool {
    // Ranges are sorted; joins neighbours.
    let mut at = a;
    for &(s, e) in ranges {
        if s <= at && at < e {
            at = e;
        }
        if at >= b {
            return true;
        }
    }
    at >= b
}

/// Reads `img` whole and checks it: virtual size as qemu-img says, bytes equal to `expected`
/// and to qemu-img's own raw conversion, `next_data` hides no byte and reports nothing qemu-img
/// maps as a hole or zeros.
fn check(dir: &Path, img: &Path, expected: &[u8]) -> Qcow2Disk {
    let label = img.display().to_string();
    let d = open_chain(img);
    assert_eq!(
        d.len(),
        info(img)["virtual-size"].as_u64().unwrap(),
        "{label}: virtual size"
    );
    let got = read_all(&d);
    assert_eq!(got.len(), expected.len(), "{label}: length");
    if got != expected {
        let i = (0..got.len()).find(|&i| got[i] != expected[i]).unwrap();
        panic!("{label}: first difference at byte {i}");
    }
    // qemu-img compare: our bytes as a raw file against the image read by qemu.
    let ours = dir.join("ours.raw");
    std::fs::write(&ours, &got).unwrap();
    let out = tool(
        "qemu-img",
        "qemu-utils",
        &["compare", "-f", "raw", "-F", "qcow2", s(&ours), s(img)],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{label}: qemu-img compare: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Odd-sized reads at odd offsets, across cluster and table boundaries.
    for &(off, len) in &[
        (4 * MIB - 500, 1000usize),
        (MIB + 3, 70_000),
        (SIZE - 10, 10),
        (0, 1),
    ] {
        if off + len as u64 <= d.len() {
            let mut b = vec![0u8; len];
            d.read_exact_at(&mut b, off).unwrap();
            assert_eq!(
                b,
                got[off as usize..off as usize + len],
                "{label}: read at {off}"
            );
        }
    }
    let ranges = data_ranges(&d);
    // No data hidden: every non-zero byte lies in a reported range.
    let mut r = ranges.iter().peekable();
    let zeros = [0u8; 512];
    for (i, chunk) in got.chunks(512).enumerate() {
        // A slice comparison (memcmp), fast in the unoptimised test build.
        if chunk != &zeros[..chunk.len()] {
            let at = i as u64 * 512;
            while r.peek().is_some_and(|&&(_, e)| e <= at) {
                r.next();
            }
            let hit = r.peek().is_some_and(|&&(s, e)| s <= at && at < e);
            assert!(hit, "{label}: data at {at} outside next_data ranges");
        }
    }
    // Nothing reported that qemu-img maps as unallocated or zero.
    let q = qemu_data(img);
    for &(a, b) in &ranges {
        assert!(
            within(&q, a, b),
            "{label}: next_data {a}..{b} is not data for qemu-img map {q:?}"
        );
    }
    d
}

/// libqcow's reading of `img` (media size and bytes), through its Python binding.
fn libqcow_read(img: &Path, out: &Path) -> u64 {
    let script = "import pyqcow,sys\nf=pyqcow.file()\nf.open(sys.argv[1])\nn=f.get_media_size()\nw=open(sys.argv[2],'wb')\nwhile f.get_offset()<n:\n  w.write(f.read_buffer(min(4<<20,n-f.get_offset())))\nw.close()\nprint(n)\n";
    let text = ok(
        "/usr/bin/python3",
        "python3-libqcow",
        &["-c", script, s(img), s(out)],
    );
    text.trim().parse().unwrap()
}

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vhdprep-qcow2")
        .tempdir()
        .unwrap()
}

fn convert(src: &Path, img: &Path, opts: &str, compress: bool) {
    let mut args = vec!["convert", "-q", "-f", "raw", "-O", "qcow2"];
    if compress {
        args.push("-c");
    }
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    args.extend([s(src), s(img)]);
    qemu_img(&args);
}

#[test]
fn compat_versions_and_cluster_sizes() {
    let dir = tmp();
    let (src, bytes) = make_source(dir.path());
    for (compat, cluster) in [
        ("0.10", "4k"),
        ("0.10", "64k"),
        ("1.1", "512"),
        ("1.1", "4k"),
        ("1.1", "16k"),
        ("1.1", "64k"),
        ("1.1", "256k"),
        ("1.1", "1M"),
        ("1.1", "2M"),
    ] {
        let img = dir.path().join(format!("c{compat}-{cluster}.qcow2"));
        convert(
            &src,
            &img,
            &format!("compat={compat},cluster_size={cluster}"),
            false,
        );
        let d = check(dir.path(), &img, &bytes);
        let h = d.header();
        assert_eq!(h.version, if compat == "0.10" { 2 } else { 3 });
        assert_eq!(h.compat(), info(&img)["format-specific"]["data"]["compat"]);
        assert_eq!(
            h.cluster_size(),
            info(&img)["cluster-size"].as_u64().unwrap()
        );
        // The second reader agrees on size and bytes (on three of the forms, to keep the
        // test short: libqcow reads through Python).
        if !matches!(cluster, "4k" | "2M") {
            continue;
        }
        let theirs = dir.path().join("libqcow.raw");
        assert_eq!(libqcow_read(&img, &theirs), d.len(), "{compat} {cluster}");
        assert!(
            std::fs::read(&theirs).unwrap() == bytes,
            "libqcow differs on {compat} {cluster}"
        );
    }
}

#[test]
fn compressed_zlib_and_zstd() {
    let dir = tmp();
    let (src, bytes) = make_source(dir.path());
    for (opts, libqcow) in [
        ("compression_type=zlib,cluster_size=64k", true),
        ("compression_type=zlib,cluster_size=4k", true),
        ("compression_type=zlib,cluster_size=2M", true),
        ("compat=0.10,cluster_size=64k", true),
        ("compression_type=zstd,cluster_size=64k", false),
        ("compression_type=zstd,cluster_size=2M", false),
        (
            "compression_type=zstd,cluster_size=64k,extended_l2=on",
            false,
        ),
    ] {
        let img = dir.path().join("c.qcow2");
        convert(&src, &img, opts, true);
        let d = check(dir.path(), &img, &bytes);
        // Two threads reading odd-sized pieces at once share the decoders and the cached
        // cluster; each still gets its own bytes.
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let (d, bytes) = (&d, &bytes);
                s.spawn(move || {
                    let piece = 100_000 + t as usize * 777;
                    let mut b = vec![0u8; piece];
                    let mut at = t * 5000;
                    while at + piece as u64 <= SIZE {
                        d.read_exact_at(&mut b, at).unwrap();
                        assert!(
                            b[..] == bytes[at as usize..at as usize + piece],
                            "{opts} at {at}"
                        );
                        at += 2 * piece as u64 + 12_345;
                    }
                });
            }
        });
        let want = if opts.contains("zstd") {
            "zstd"
        } else {
            "zlib"
        };
        assert_eq!(
            info(&img)["format-specific"]["data"]["compression-type"],
            want
        );
        if libqcow {
            let theirs = dir.path().join("libqcow.raw");
            assert_eq!(libqcow_read(&img, &theirs), d.len(), "{opts}");
            assert!(
                std::fs::read(&theirs).unwrap() == bytes,
                "libqcow differs on {opts}"
            );
        }
        // qemu-img maps compressed clusters: the reader really decompressed some.
        let map = qemu_img(&["map", "--output=json", s(&img)]);
        assert!(map.contains("\"compressed\": true"), "{opts}: {map}");
    }
}

#[test]
fn extended_l2_subclusters() {
    let dir = tmp();
    let (src, bytes) = make_source(dir.path());
    for cluster in ["16k", "64k", "2M"] {
        let img = dir.path().join(format!("x{cluster}.qcow2"));
        convert(
            &src,
            &img,
            &format!("extended_l2=on,cluster_size={cluster}"),
            false,
        );
        let d = check(dir.path(), &img, &bytes);
        assert!(d.header().has_extended_l2());
        assert_eq!(info(&img)["format-specific"]["data"]["extended-l2"], true);
    }
    // Subclusters allocated one by one over a backing file: with 64 KiB clusters a subcluster
    // is 2 KiB; writes of 2 KiB, 512 bytes (copy-on-write of the rest of its subcluster) and
    // zero writes leave clusters partly allocated, partly zero, partly from the backing file.
    let base = dir.path().join("base.qcow2");
    convert(&src, &base, "", false);
    let top = dir.path().join("top.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "base.qcow2",
        "-F",
        "qcow2",
        "-o",
        "extended_l2=on,cluster_size=64k",
        s(&top),
    ]);
    qemu_io(
        &top,
        &[
            "write -P 0x11 2k 2k",
            "write -P 0x22 70000 512",
            "write -z 8k 4k",
            "write -z 7M 6k",
            "write -P 0x33 4194304 131072",
            "write -z 9M 64k",
        ],
    );
    let expected = std::fs::read(convert_raw(dir.path(), &top)).unwrap();
    assert_ne!(expected, bytes, "the writes changed the disk");
    check(dir.path(), &top, &expected);
}

/// `qemu-img convert -O raw` of `img`: qemu's reading of it.
fn convert_raw(dir: &Path, img: &Path) -> PathBuf {
    let out = dir.join("qemu.raw");
    qemu_img(&["convert", "-q", "-O", "raw", s(img), s(&out)]);
    out
}

#[test]
fn preallocation_modes() {
    let dir = tmp();
    let (src, bytes) = make_source(dir.path());
    for mode in ["off", "metadata", "falloc", "full"] {
        let img = dir.path().join(format!("p-{mode}.qcow2"));
        convert(&src, &img, &format!("preallocation={mode}"), false);
        check(dir.path(), &img, &bytes);
    }
    // Preallocated images written afterwards by qemu-io, with zero clusters in them.
    let img = dir.path().join("p-meta-io.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        "preallocation=metadata",
        s(&img),
        "24M",
    ]);
    qemu_io(
        &img,
        &[
            "write -P 0x44 1M 3M",
            "write -z 2M 64k",
            "write -P 0x45 20M 100k",
        ],
    );
    let expected = std::fs::read(convert_raw(dir.path(), &img)).unwrap();
    check(dir.path(), &img, &expected);
}

#[test]
fn backing_chain_of_three() {
    let dir = tmp();
    let (src, bytes) = make_source(dir.path());
    let base = dir.path().join("base.qcow2");
    convert(&src, &base, "cluster_size=64k", false);
    let mid = dir.path().join("mid.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "base.qcow2",
        "-F",
        "qcow2",
        "-o",
        "cluster_size=4k",
        s(&mid),
    ]);
    // Over the base's data: new data, a partial-cluster write (copy-on-write), whole zero
    // clusters (the zero flag: they must not read the base's data).
    qemu_io(
        &mid,
        &[
            "write -P 0x66 100k 8k",
            "write -P 0x67 9437284 1000",
            "write -z 7M 1M",
            "write -z 0 4k",
        ],
    );
    let top = dir.path().join("top.qcow2");
    // Larger than its backing: past the base's end the disk reads zeros or its own data.
    // Its 2 MiB clusters leave 0..2M and 6M..8M to the parent; partial writes copy the
    // parent's data into the rest of their cluster; a whole zero cluster at 8M hides both.
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "mid.qcow2",
        "-F",
        "qcow2",
        "-o",
        "cluster_size=2M",
        s(&top),
        "40M",
    ]);
    qemu_io(
        &top,
        &[
            "write -P 0x77 2101248 4k",
            "write -z 16M 64k",
            "write -P 0x78 30M 1M",
            "write -z 8M 2M",
        ],
    );
    let expected = std::fs::read(convert_raw(dir.path(), &top)).unwrap();
    assert_eq!(expected.len() as u64, 40 * MIB);
    let range = |a: u64, b: u64| a as usize..b as usize;
    for r in [range(0, 4096), range(7 * MIB, 10 * MIB)] {
        assert!(
            expected[r.clone()].iter().all(|&b| b == 0),
            "{r:?} reads zeros"
        );
        assert!(bytes[r.clone()].iter().any(|&b| b != 0), "{r:?} over data");
    }
    assert_eq!(
        expected[range(4 * MIB, 6 * MIB)],
        bytes[range(4 * MIB, 6 * MIB)]
    );
    let d = check(dir.path(), &top, &expected);
    assert_eq!(d.header().backing_file.as_deref(), Some("mid.qcow2"));
    assert_eq!(d.header().backing_format.as_deref(), Some("qcow2"));
    // The zero writes in the child hide the parent's data.
    assert!(expected[(8 * MIB) as usize..(9 * MIB) as usize]
        .iter()
        .all(|&b| b == 0));
    // A backing file named but not given: a typed error naming it.
    let file = open_raw(&top);
    let header = qcow2::read_header(&*file).unwrap();
    let e = Qcow2Disk::open(file, header, None).unwrap_err();
    assert!(
        matches!(e, Qcow2Error::MissingBacking(ref n) if n == "mid.qcow2"),
        "{e}"
    );
    assert!(e.to_string().contains("\"mid.qcow2\""), "{e}");
    // A raw grandparent.
    let over_raw = dir.path().join("over-raw.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "src.raw",
        "-F",
        "raw",
        s(&over_raw),
    ]);
    qemu_io(&over_raw, &["write -P 0x99 5M 64k"]);
    let expected = std::fs::read(convert_raw(dir.path(), &over_raw)).unwrap();
    check(dir.path(), &over_raw, &expected);
}

#[test]
fn snapshots_listed_active_state_read() {
    let dir = tmp();
    let (src, _) = make_source(dir.path());
    let img = dir.path().join("snap.qcow2");
    convert(&src, &img, "", false);
    qemu_img(&["snapshot", "-c", "first", s(&img)]);
    qemu_io(&img, &["write -P 0x55 0 1M", "write -z 7M 1M"]);
    qemu_img(&["snapshot", "-c", "second one", s(&img)]);
    qemu_io(&img, &["write -P 0x56 2M 64k"]);
    let expected = std::fs::read(convert_raw(dir.path(), &img)).unwrap();
    let d = check(dir.path(), &img, &expected);
    let h = d.header();
    let theirs = info(&img)["snapshots"].as_array().unwrap().clone();
    assert_eq!(h.nb_snapshots, 2);
    assert_eq!(h.snapshots.len(), theirs.len());
    for (ours, q) in h.snapshots.iter().zip(&theirs) {
        assert_eq!(ours.name, q["name"].as_str().unwrap());
        assert_eq!(ours.id, q["id"].as_str().unwrap());
        assert_eq!(ours.vm_state_size, q["vm-state-size"].as_u64().unwrap());
        assert_eq!(u64::from(ours.date_sec), q["date-sec"].as_u64().unwrap());
        assert_eq!(ours.disk_size, Some(SIZE));
    }
}

#[test]
fn refused_features_and_reported_flags() {
    let dir = tmp();
    let p = |n: &str| dir.path().join(n);
    let open = |img: &Path| {
        let file = open_raw(img);
        let header = qcow2::read_header(&*file).unwrap();
        Qcow2Disk::open(file, header, None).map(|_| ())
    };
    // Encrypted, by name.
    for (fmt, name) in [("luks", "LUKS"), ("aes", "AES")] {
        let img = p(&format!("{fmt}.qcow2"));
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "--object",
            "secret,id=s0,data=pw",
            "-o",
            &format!(
                "encrypt.format={fmt},encrypt.key-secret=s0{}",
                if fmt == "luks" {
                    ",encrypt.iter-time=10"
                } else {
                    ""
                }
            ),
            s(&img),
            "8M",
        ]);
        let e = open(&img).unwrap_err();
        assert!(
            matches!(e, Qcow2Error::Encrypted { method, .. } if method == name),
            "{e}"
        );
        assert!(e.to_string().contains(&format!("encrypted ({name}")), "{e}");
        assert_eq!(info(&img)["encrypted"], true);
    }
    // External data file, named.
    let img = p("ext.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        "data_file=ext.data",
        s(&img),
        "8M",
    ]);
    let e = open(&img).unwrap_err();
    assert!(
        e.to_string().contains("external data file (\"ext.data\")"),
        "{e}"
    );
    // qemu-img made the data file relative to the working directory (this crate's folder).
    let _ = std::fs::remove_file("ext.data");
    // Dirty: lazy refcounts and a process killed before closing the image.
    let img = p("dirty.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        "lazy_refcounts=on",
        s(&img),
        "8M",
    ]);
    let _ = tool(
        "qemu-io",
        "qemu-utils",
        &["-c", "write -P 0x12 0 64k", "-c", "sigraise 9", s(&img)],
    );
    assert_eq!(info(&img)["dirty-flag"], true);
    let h = qcow2::read_header(&*open_raw(&img)).unwrap();
    assert!(h.is_dirty() && h.has_lazy_refcounts() && !h.is_corrupt());
    // Still read: the data is fine, only refcounts may be stale.
    let d = open_chain(&img);
    let mut b = vec![0u8; 65536];
    d.read_exact_at(&mut b, 0).unwrap();
    assert!(b.iter().all(|&x| x == 0x12));
    // Corrupt: qemu-img info shows the bit we read.
    let img = p("corrupt.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", s(&img), "8M"]);
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(&[2], 79).unwrap();
    drop(f);
    assert_eq!(info(&img)["format-specific"]["data"]["corrupt"], true);
    let h = qcow2::read_header(&*open_raw(&img)).unwrap();
    assert!(h.is_corrupt() && !h.is_dirty());
    // An unknown incompatible bit.
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(&[0x80], 78).unwrap();
    drop(f);
    let e = open(&img).unwrap_err();
    assert!(matches!(e, Qcow2Error::UnknownFeatures(0x8000)), "{e}");
}

/// A file that counts what its reader asks of it: the `pread`s (offset, length) and the
/// `next_data` calls (each a `SEEK_DATA` and a `SEEK_HOLE`, which on tmpfs walk the file's
/// pages).
struct Counting {
    inner: FileReader,
    reads: std::sync::Mutex<Vec<(u64, usize)>>,
    next_data: std::sync::atomic::AtomicUsize,
}

impl ReadAt for Counting {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.reads.lock().unwrap().push((offset, buf.len()));
        self.inner.read_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn next_data(&self, offset: u64) -> std::io::Result<Option<std::ops::Range<u64>>> {
        self.next_data
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.next_data(offset)
    }
}

/// What `convert` asks of a qemu-img-made qcow2 whose data clusters lie one after another in
/// the file: one `pread` per 4 MiB buffer of the copy (not per cluster, nor per L2 table:
/// with 4 KiB clusters a table covers 2 MiB, so each buffer spans two), besides one read per
/// L2 table, and the file asked for its holes once for the whole copy (not once per L2 table
/// as well). Two layouts: 64 KiB clusters, the zero blocks unallocated (`qemu-img convert`
/// writes the data clusters in order); 4 KiB clusters with `preallocation=full` (all L2
/// tables first, then every cluster in order, the zero blocks as written zeros). Counts, not
/// times: they do not depend on the machine's load.
#[test]
fn convert_reads_whole_buffers_of_a_contiguous_image() {
    use std::sync::atomic::Ordering;
    use vhdprep_disk::write::{copy_sparse, CHUNK};
    let dir = tmp();
    // 64 MiB: 4 MiB of data, then 4 MiB of written zeros, and so on.
    let size = 64 * MIB;
    let raw = dir.path().join("blocks.raw");
    let mut bytes = vec![0u8; size as usize];
    for (i, block) in bytes.chunks_mut(4 * MIB as usize).enumerate() {
        if i % 2 == 0 {
            block.copy_from_slice(&random(100 + i as u64, block.len()));
        }
    }
    std::fs::write(&raw, &bytes).unwrap();
    for (cluster, prealloc, stored) in [(65536u64, "off", size / 2), (4096, "full", size)] {
        let img = dir.path().join(format!("blocks-{cluster}.qcow2"));
        let opts = format!("cluster_size={cluster},preallocation={prealloc}");
        convert(&raw, &img, &opts, false);
        let file = Arc::new(Counting {
            inner: FileReader::new(File::open(&img).unwrap()).unwrap(),
            reads: Default::default(),
            next_data: Default::default(),
        });
        let header = qcow2::read_header(&*file).unwrap();
        let disk = Qcow2Disk::open(file.clone(), header, None).unwrap();
        file.reads.lock().unwrap().clear();
        file.next_data.store(0, Ordering::SeqCst);
        let out = tempfile::tempfile_in(dir.path()).unwrap();
        out.set_len(size).unwrap();
        let stats = copy_sparse(&disk, &out, &mut |_, _| {}).unwrap();
        let mut back = vec![0u8; size as usize];
        out.read_exact_at(&mut back, 0).unwrap();
        assert!(
            back == bytes,
            "cluster {cluster}: the copy differs from the disk"
        );
        assert_eq!(
            stats.bytes_read, stored,
            "cluster {cluster}: only what is stored read"
        );
        let reads = file.reads.lock().unwrap().clone();
        let whole = reads.iter().filter(|&&(_, n)| n == CHUNK).count();
        assert_eq!(
            whole,
            stored as usize / CHUNK,
            "cluster {cluster}: one pread per buffer of data: {reads:?}"
        );
        // The rest are L2 tables, one cluster each, at most one per table of the disk.
        let tables = size.div_ceil(cluster * cluster / 8) as usize;
        let rest: Vec<_> = reads.iter().filter(|&&(_, n)| n != CHUNK).collect();
        assert!(
            rest.len() <= tables && rest.iter().all(|&&(_, n)| n as u64 == cluster),
            "cluster {cluster}: reads besides the data: {rest:?}"
        );
        assert_eq!(
            file.next_data.load(Ordering::SeqCst),
            1,
            "cluster {cluster}: the file's holes asked for more than once"
        );
    }
}
