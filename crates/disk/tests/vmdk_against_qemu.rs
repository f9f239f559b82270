//! The VMDK reader against qemu-img (the writer and first reader) and libvmdk (`vmdkinfo`,
//! `vmdkmount`: the second reader): every subformat qemu-img writes, a stream-optimized disk
//! with its grain directory in the footer (as VMware and ovftool write them), zeroed-grain
//! GTEs, a delta disk over its parent, and damaged files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use vhdprep_disk::vmdk::{resolve_extent, Vmdk, VmdkDisk};
use vhdprep_disk::{FileReader, ReadAt, SharedDisk};

const MIB: u64 = 1 << 20;

/// Runs a tool, failing with the package to install when it is missing.
fn tool(name: &str, package: &str, args: &[&str]) -> String {
    let out = Command::new(name)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "required tool `{name}` could not be run ({e}); install Debian package `{package}`"
            )
        });
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn qemu_img(args: &[&str]) -> String {
    tool("qemu-img", "qemu-utils", args)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A raw source of `size` bytes: random data, written zeros, text and holes, with data in
/// its last sector and around 32 MiB (the span of one grain table).
fn make_source(path: &Path, size: u64) {
    use std::os::unix::fs::FileExt;
    let f = fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    for (at, n) in [
        (0, 4096),
        (5 * 65536 + 512, 3 * 65536),
        (2 * MIB, 1500),
        (32 * MIB - 700, 1400),
        (size - 512, 512),
    ] {
        if at + n <= size {
            f.write_all_at(&random(n as usize), at).unwrap();
        }
    }
    // Explicit zeros (allocated in the raw file) and a text.
    f.write_all_at(&vec![0u8; 256 * 1024], 4 * MIB).unwrap();
    f.write_all_at(b"vhdprep vmdk test", 7 * MIB + 3).unwrap();
}

/// Opens a VMDK as vhdprep's DiskImage layer will: the file, its header, its extent files
/// resolved next to it, and its parent when the caller gives one.
fn open(path: &Path, parent: Option<SharedDisk>) -> VmdkDisk {
    let file: SharedDisk = Arc::new(FileReader::new(fs::File::open(path).unwrap()).unwrap());
    let header = Vmdk::read_header(file.as_ref()).unwrap();
    let extents = header
        .extent_files()
        .into_iter()
        .map(|name| {
            let p = resolve_extent(path, name).unwrap();
            Arc::new(FileReader::new(fs::File::open(p).unwrap()).unwrap()) as SharedDisk
        })
        .collect();
    VmdkDisk::open(file, &header, extents, parent).unwrap()
}

fn virtual_size(img: &Path) -> u64 {
    let j: serde_json::Value =
        serde_json::from_str(&qemu_img(&["info", "--output=json", s(img)])).unwrap();
    j["virtual-size"].as_u64().unwrap()
}

/// Compares `disk` with the file `raw`, 4 MiB at a time (as convert reads).
fn assert_same(disk: &dyn ReadAt, raw: &Path, what: &str) {
    let want = FileReader::new(fs::File::open(raw).unwrap()).unwrap();
    assert_eq!(disk.len(), want.len(), "{what}: length");
    let mut a = vec![0u8; 4 << 20];
    let mut b = vec![0u8; 4 << 20];
    let mut at = 0u64;
    while at < disk.len() {
        let n = ((disk.len() - at) as usize).min(a.len());
        disk.read_exact_at(&mut a[..n], at).unwrap();
        want.read_exact_at(&mut b[..n], at).unwrap();
        if a[..n] != b[..n] {
            let i = a[..n]
                .iter()
                .zip(&b[..n])
                .position(|(x, y)| x != y)
                .unwrap();
            panic!("{what}: first difference at offset {}", at + i as u64);
        }
        at += n as u64;
    }
}

/// The ranges `next_data` gives, walked from 0.
fn data_ranges(disk: &dyn ReadAt) -> Vec<(u64, u64)> {
    let mut v = Vec::new();
    let mut at = 0;
    while let Some(r) = disk.next_data(at).unwrap() {
        assert!(
            r.start >= at && r.end > r.start && r.end <= disk.len(),
            "{r:?}"
        );
        v.push((r.start, r.end));
        at = r.end;
    }
    v
}

/// Every byte of `src` outside `ranges` is zero. Holes of the source (SEEK_DATA) are zeros,
/// so only its data ranges are read.
fn assert_no_hidden_data(ranges: &[(u64, u64)], len: u64, src: &Path, what: &str) {
    let raw = FileReader::new(fs::File::open(src).unwrap()).unwrap();
    let mut at = 0u64;
    for &(a, b) in ranges.iter().chain([(len, len)].iter()) {
        // The gap at..a: every data range of the source inside it must be zeros.
        let mut p = at;
        while let Some(r) = raw.next_data(p).unwrap() {
            if r.start >= a {
                break;
            }
            let (s, e) = (r.start.max(p), r.end.min(a));
            let mut buf = vec![0u8; (e - s) as usize];
            raw.read_exact_at(&mut buf, s).unwrap();
            if let Some(i) = buf.iter().position(|&x| x != 0) {
                panic!("{what}: next_data hides data at {}", s + i as u64);
            }
            p = e;
            if p >= a {
                break;
            }
        }
        at = b;
    }
}

/// next_data never hides data (all bytes outside its ranges are zero in the source) and
/// skips what `qemu-img map` says is not present; where qemu says data, it says data too.
fn check_next_data(disk: &dyn ReadAt, img: &Path, src: &Path, what: &str) {
    let ranges = data_ranges(disk);
    assert_no_hidden_data(&ranges, disk.len(), src, what);
    let map: serde_json::Value =
        serde_json::from_str(&qemu_img(&["map", "--output=json", s(img)])).unwrap();
    let inside = |a: u64, b: u64| ranges.iter().any(|&(s, e)| s <= a && b <= e);
    let touches = |a: u64, b: u64| ranges.iter().any(|&(s, e)| s < b && a < e);
    for m in map.as_array().unwrap() {
        let a = m["start"].as_u64().unwrap();
        let b = a + m["length"].as_u64().unwrap();
        if !m["zero"].as_bool().unwrap() && !inside(a, b) {
            // A qemu range may span several of ours (they stop at grain-table ends).
            let mut p = a;
            while let Some(&(_, e)) = ranges.iter().find(|&&(s, e)| s <= p && p < e) {
                p = e;
                if p >= b {
                    break;
                }
            }
            assert!(
                p >= b,
                "{what}: qemu-img map says data at {a}..{b}, next_data not"
            );
        }
        if !m["present"].as_bool().unwrap()
            || m["zero"].as_bool().unwrap() && !m["data"].as_bool().unwrap()
        {
            assert!(
                !touches(a, b),
                "{what}: {a}..{b} is unallocated for qemu-img, next_data says data"
            );
        }
    }
}

/// Checks vmdkinfo's media size, and with `mount`, reads the image through libvmdk
/// (vmdkmount, FUSE) and compares with `disk`. libvmdk 20200926 (Debian 12) refuses to mount
/// monolithicFlat ("Unsupported disk type"), and it (and libvmdk 20260714 from PyPI) reads a
/// zeroed-grain GTE as data, not zeros: those are checked against qemu-img only.
fn check_with_libvmdk(disk: &dyn ReadAt, img: &Path, what: &str, mount: bool) {
    check_with_libvmdk_in(disk, img, what, mount, &[(0, disk.len())]);
}

/// [`check_with_libvmdk`] reading only `windows` through FUSE (a 2 GiB image otherwise
/// takes most of a minute through it).
fn check_with_libvmdk_in(
    disk: &dyn ReadAt,
    img: &Path,
    what: &str,
    mount: bool,
    windows: &[(u64, u64)],
) {
    let info = tool("vmdkinfo", "libvmdk-utils", &[s(img)]);
    let size = format!("({} bytes)", disk.len());
    assert!(
        info.lines()
            .any(|l| l.contains("Media size") && l.contains(&size)),
        "{what}: vmdkinfo says\n{info}"
    );
    if !mount {
        return;
    }
    let mnt = tempfile::tempdir().unwrap();
    tool("vmdkmount", "libvmdk-utils", &[s(img), s(mnt.path())]);
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("fusermount").arg("-uz").arg(self.0).status();
        }
    }
    let _guard = Unmount(mnt.path());
    let theirs = FileReader::new(fs::File::open(mnt.path().join("vmdk1")).unwrap()).unwrap();
    assert_eq!(theirs.len(), disk.len(), "{what}: libvmdk's size");
    for &(a, b) in windows {
        let mut at = a;
        while at < b {
            let n = (b - at).min(4 << 20) as usize;
            let mut x = vec![0u8; n];
            let mut y = vec![0u8; n];
            disk.read_exact_at(&mut x, at).unwrap();
            theirs.read_exact_at(&mut y, at).unwrap();
            if x != y {
                let i = x.iter().zip(&y).position(|(p, q)| p != q).unwrap();
                panic!(
                    "{what} vs libvmdk: first difference at offset {}",
                    at + i as u64
                );
            }
            at += n as u64;
        }
    }
}

fn convert(src: &Path, dir: &Path, name: &str, opts: &str) -> PathBuf {
    let img = dir.join(name);
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vmdk",
        "-o",
        opts,
        s(src),
        s(&img),
    ]);
    img
}

#[test]
fn every_qemu_subformat_reads_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    // 36 MiB + 20 KiB: two grain tables, a last grain cut short.
    make_source(&src, 36 * MIB + 20 * 1024);
    for sub in [
        "monolithicSparse",
        "streamOptimized",
        "monolithicFlat",
        "twoGbMaxExtentFlat",
        "twoGbMaxExtentSparse",
    ] {
        let img = convert(
            &src,
            dir.path(),
            &format!("{sub}.vmdk"),
            &format!("subformat={sub}"),
        );
        let disk = open(&img, None);
        assert_eq!(disk.len(), virtual_size(&img), "{sub}: virtual size");
        assert_same(&disk, &src, sub);
        let back = dir.path().join(format!("{sub}.back.raw"));
        qemu_img(&["convert", "-O", "raw", s(&img), s(&back)]);
        assert_same(&disk, &back, &format!("{sub} vs qemu-img convert"));
        check_next_data(&disk, &img, &src, sub);
        check_with_libvmdk(&disk, &img, sub, sub != "monolithicFlat");
        if sub.contains("Sparse") || sub == "streamOptimized" {
            let covered: u64 = data_ranges(&disk).iter().map(|(a, b)| b - a).sum();
            assert!(covered < 2 * MIB, "{sub}: next_data covers {covered} bytes");
        }
    }
}

#[test]
fn two_gb_extents_span_the_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    // Two extents of qemu's 2047 MiB, data across the boundary between them.
    let size = 2064 * MIB;
    make_source(&src, size);
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new().write(true).open(&src).unwrap();
        let b: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 1) as u8).collect();
        f.write_all_at(&b, 2047 * MIB - 4096).unwrap();
    }
    // (twoGbMaxExtentFlat takes the same multi-extent path; a 2 GiB flat copy would double
    // this test's time, so it is read in one extent by the test above.)
    let sub = "twoGbMaxExtentSparse";
    let img = convert(&src, dir.path(), "two.vmdk", &format!("subformat={sub}"));
    let disk = open(&img, None);
    assert_eq!(disk.extent_count(), 2, "{sub}");
    assert_eq!(disk.len(), virtual_size(&img), "{sub}");
    assert_same(&disk, &src, sub);
    check_next_data(&disk, &img, &src, sub);
    // libvmdk through FUSE: the first 40 MiB, 16 MiB around the extent boundary, the end.
    let windows = [
        (0, 40 * MIB),
        (2039 * MIB, 2055 * MIB),
        (size - 4 * MIB, size),
    ];
    check_with_libvmdk_in(&open(&img, None), &img, "two extents", true, &windows);
}

/// qemu-img writes stream-optimized files with the grain directory after the header; VMware
/// and ovftool put it at the end, behind a footer (header gdOffset = GD_AT_END). This takes
/// qemu-img's compressed grains and lays them out that way: header (GD_AT_END), descriptor,
/// grains, GT markers and tables, GD marker and directory, footer marker and footer,
/// end-of-stream marker. libvmdk reads the result too, which checks the layout.
#[test]
fn stream_optimized_with_the_footer_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    make_source(&src, 36 * MIB + 20 * 1024);
    let img = convert(&src, dir.path(), "q.vmdk", "subformat=streamOptimized");
    let q = fs::read(&img).unwrap();
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let le64 = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let capacity = le64(&q, 12);
    let grain = le64(&q, 20);
    let desc_off = le64(&q, 28) as usize * 512;
    let desc_len = le64(&q, 36) as usize * 512;
    let gtes = le32(&q, 44) as usize;
    let gd_off = le64(&q, 56) as usize * 512;
    let n_gt = capacity.div_ceil(grain * gtes as u64) as usize;
    let mut out = vec![0u8; 512];
    out[..512].copy_from_slice(&q[..512]);
    out[56..64].copy_from_slice(&u64::MAX.to_le_bytes());
    out.extend_from_slice(&q[desc_off..desc_off + desc_len]);
    let pad = |v: &mut Vec<u8>| v.resize(v.len().div_ceil(512) * 512, 0);
    let marker = |v: &mut Vec<u8>, sectors: u64, kind: u32| {
        let mut m = [0u8; 512];
        m[..8].copy_from_slice(&sectors.to_le_bytes());
        m[12..16].copy_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&m);
    };
    let mut gd = Vec::new();
    let mut new_gts = Vec::new();
    for t in 0..n_gt {
        let gt_at = le32(&q, gd_off + 4 * t) as usize * 512;
        let mut gt = vec![0u32; gtes];
        for (i, e) in gt.iter_mut().enumerate() {
            let old = le32(&q, gt_at + 4 * i) as usize;
            if old > 1 {
                let size = le32(&q, old * 512 + 8) as usize;
                *e = (out.len() / 512) as u32;
                out.extend_from_slice(&q[old * 512..old * 512 + 12 + size]);
                pad(&mut out);
            }
        }
        new_gts.push(gt);
    }
    for gt in new_gts {
        marker(&mut out, (gtes as u64 * 4).div_ceil(512), 1);
        gd.push((out.len() / 512) as u32);
        for e in gt {
            out.extend_from_slice(&e.to_le_bytes());
        }
        pad(&mut out);
    }
    marker(&mut out, (n_gt as u64 * 4).div_ceil(512), 2);
    let gd_sector = (out.len() / 512) as u64;
    for e in gd {
        out.extend_from_slice(&e.to_le_bytes());
    }
    pad(&mut out);
    marker(&mut out, 1, 3);
    let mut footer = q[..512].to_vec();
    footer[56..64].copy_from_slice(&gd_sector.to_le_bytes());
    footer[48..56].copy_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&footer);
    marker(&mut out, 0, 0);
    let at_end = dir.path().join("at-end.vmdk");
    fs::write(&at_end, &out).unwrap();

    let file: SharedDisk = Arc::new(FileReader::new(fs::File::open(&at_end).unwrap()).unwrap());
    let h = Vmdk::read_header(file.as_ref()).unwrap();
    assert_eq!(h.initial_sparse.as_ref().unwrap().gd_offset, u64::MAX);
    assert_eq!(h.sparse.as_ref().unwrap().gd_offset, gd_sector);
    let disk = open(&at_end, None);
    assert_eq!(disk.len(), virtual_size(&img));
    assert_same(&disk, &src, "GD_AT_END");
    check_with_libvmdk(&disk, &at_end, "GD_AT_END", true);
    // qemu-img reads it too.
    let back = dir.path().join("back.raw");
    qemu_img(&["convert", "-O", "raw", s(&at_end), s(&back)]);
    assert_same(&disk, &back, "GD_AT_END vs qemu-img");
}

fn qemu_io(img: &Path, cmd: &str) {
    tool("qemu-io", "qemu-utils", &["-f", "vmdk", "-c", cmd, s(img)]);
}

#[test]
fn zeroed_grains_and_a_delta_over_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    make_source(&src, 36 * MIB + 20 * 1024);
    let base = convert(&src, dir.path(), "base.vmdk", "zeroed_grain=on");
    // Zero the random data at 320 KiB: with zeroed_grain, qemu writes GTE 1.
    qemu_io(&base, "write -z 320k 192k");
    let disk = open(&base, None);
    let want = dir.path().join("base.raw");
    qemu_img(&["convert", "-O", "raw", s(&base), s(&want)]);
    assert_same(&disk, &want, "zeroed grains");
    check_next_data(&disk, &base, &want, "zeroed grains");
    check_with_libvmdk(&disk, &base, "zeroed grains", false);
    let gte1 = {
        let map = qemu_img(&["map", "--output=json", s(&base)]);
        map.contains("\"start\": 327680, \"length\": 196608, \"depth\": 0, \"present\": true, \"zero\": true, \"data\": false")
    };
    assert!(gte1, "qemu-img wrote zeroed GTEs");

    // A delta: new data, zeros over the parent's data (GTE 1), the rest from the parent.
    let child = dir.path().join("child.vmdk");
    qemu_img(&[
        "create",
        "-f",
        "vmdk",
        "-o",
        "zeroed_grain=on",
        "-b",
        "base.vmdk",
        "-F",
        "vmdk",
        s(&child),
    ]);
    qemu_io(&child, "write -P 0x5a 1M 64k");
    qemu_io(&child, "write -z 0 64k");
    qemu_io(&child, "write -P 0x33 32704k 128k");
    let file: SharedDisk = Arc::new(FileReader::new(fs::File::open(&child).unwrap()).unwrap());
    let h = Vmdk::read_header(file.as_ref()).unwrap();
    let (cid, hint) = h.parent().unwrap();
    assert_eq!(hint, Some("base.vmdk"));
    let base_h = {
        let f = FileReader::new(fs::File::open(&base).unwrap()).unwrap();
        Vmdk::read_header(&f).unwrap()
    };
    assert_eq!(
        Some(cid),
        base_h.descriptor.as_ref().unwrap().cid,
        "parentCID = the base's CID"
    );
    h.check_parent(&base_h).unwrap();
    // A parent written to since (qemu-io changes its CID) no longer fits the delta.
    let moved = dir.path().join("moved.vmdk");
    fs::copy(&base, &moved).unwrap();
    qemu_io(&moved, "write -P 0x01 0 512");
    let moved_f = FileReader::new(fs::File::open(&moved).unwrap()).unwrap();
    let moved_h = Vmdk::read_header(&moved_f).unwrap();
    let e = h.check_parent(&moved_h).unwrap_err();
    assert!(e.to_string().contains("expects parentCID"), "{e}");
    let e = VmdkDisk::open(file.clone(), &h, vec![], None).unwrap_err();
    assert!(e.to_string().contains("base.vmdk"), "{e}");
    let parent: SharedDisk = Arc::new(open(&base, None));
    let disk = VmdkDisk::open(file, &h, vec![], Some(parent)).unwrap();
    let want = dir.path().join("child.raw");
    qemu_img(&["convert", "-O", "raw", s(&child), s(&want)]);
    assert_same(&disk, &want, "delta");
    // next_data never hides data of the child or the parent.
    let ranges = data_ranges(&disk);
    assert_no_hidden_data(&ranges, disk.len(), &want, "delta");
    assert!(
        ranges.iter().all(|&(a, _)| a >= 65536),
        "the zeroed grain at 0 is skipped"
    );
}

#[test]
fn damaged_files_end_in_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    make_source(&src, 36 * MIB + 20 * 1024);
    for sub in ["monolithicSparse", "streamOptimized"] {
        let img = convert(
            &src,
            dir.path(),
            &format!("{sub}.vmdk"),
            &format!("subformat={sub}"),
        );
        let bytes = fs::read(&img).unwrap();
        // Cut in the grains: open works, reading the lost grains fails (never zeros).
        let cut: SharedDisk = Arc::new(bytes[..bytes.len() * 2 / 3].to_vec());
        let h = Vmdk::read_header(cut.as_ref()).unwrap();
        let d = VmdkDisk::open(cut, &h, vec![], None).unwrap();
        let mut buf = vec![0u8; 4 << 20];
        let mut errors = 0;
        for at in (0..d.len()).step_by(4 << 20) {
            let n = ((d.len() - at) as usize).min(buf.len());
            if let Err(e) = d.read_exact_at(&mut buf[..n], at) {
                assert!(e.to_string().contains("outside the"), "{sub}: {e}");
                errors += 1;
            }
        }
        assert!(errors > 0, "{sub}: a truncated file read without error");
        // Cut in the metadata: a clean error at open.
        let cut: SharedDisk = Arc::new(bytes[..1024].to_vec());
        let e = Vmdk::read_header(cut.as_ref()).unwrap_err();
        assert!(e.to_string().contains("outside"), "{sub}: {e}");
    }
    // A missing extent is named.
    let img = convert(&src, dir.path(), "flat.vmdk", "subformat=monolithicFlat");
    fs::remove_file(dir.path().join("flat-flat.vmdk")).unwrap();
    let e = resolve_extent(&img, "flat-flat.vmdk").unwrap_err();
    assert!(
        e.to_string().contains("\"flat-flat.vmdk\" is missing"),
        "{e}"
    );
}
