//! The VDI reader against qemu-img: static and dynamic images qemu-img writes, and the same
//! images patched to VirtualBox's header variant (400-byte header with LCHS geometry, Oracle
//! text) and with a "zero" block-map entry. No program in Debian writes VDI besides qemu-img
//! (VirtualBox is not packaged), so the VirtualBox variants are patched by hand from
//! VirtualBox's `VDICore.h` layout and checked against qemu-img reading the same file.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use vhdprep_disk::vdi::{VdiDisk, VdiHeader, VdiImageType, BLOCK_ZERO};
use vhdprep_disk::{FileReader, ReadAt, SharedDisk};

#[path = "support/vdi_chain.rs"]
mod vdi_chain;

const MIB: u64 = 1 << 20;
/// 20 MiB and three sectors: the last block is partial.
const SIZE: u64 = 20 * MIB + 1536;

fn qemu_img(args: &[&str]) -> Vec<u8> {
    let out = Command::new("qemu-img").args(args).output().unwrap_or_else(|e| {
        panic!("qemu-img could not be run ({e}); install Debian package qemu-utils (scripts/test.sh does)")
    });
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A raw source: data, an explicit run of zeros, holes, a partial block, data in the tail.
fn source(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("src.raw");
    let f = File::create(&path).unwrap();
    f.set_len(SIZE).unwrap();
    let mut bytes = vec![0u8; SIZE as usize];
    let mut put = |at: u64, len: usize, seed: u8| {
        let data: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
            .collect();
        f.write_all_at(&data, at).unwrap();
        bytes[at as usize..at as usize + len].copy_from_slice(&data);
    };
    put(0, MIB as usize, 1);
    put(3 * MIB + 4096, 512, 2);
    put(7 * MIB - 100, 200, 3);
    put(12 * MIB, 3 * MIB as usize, 4);
    put(SIZE - 1000, 1000, 5);
    f.write_all_at(&vec![0u8; MIB as usize], 5 * MIB).unwrap();
    (path, bytes)
}

fn open(path: &Path) -> VdiDisk {
    let file: SharedDisk = Arc::new(FileReader::new(File::open(path).unwrap()).unwrap());
    let header = VdiHeader::read(file.as_ref()).unwrap();
    VdiDisk::open(file, header, None).unwrap()
}

fn read_all(d: &dyn ReadAt) -> Vec<u8> {
    let mut all = vec![0u8; d.len() as usize];
    // 4 MiB chunks, like `convert`, plus an odd first read to cross block boundaries.
    let mut at = 0usize;
    let mut chunk = 3 * MIB as usize + 7;
    while at < all.len() {
        let n = chunk.min(all.len() - at);
        d.read_exact_at(&mut all[at..at + n], at as u64).unwrap();
        at += n;
        chunk = 4 * MIB as usize;
    }
    all
}

fn virtual_size(path: &Path) -> u64 {
    let json = String::from_utf8(qemu_img(&[
        "info",
        "-f",
        "vdi",
        "--output=json",
        path.to_str().unwrap(),
    ]))
    .unwrap();
    // The top-level key (4 spaces in); nested children report their file's size.
    let line = json
        .lines()
        .find(|l| l.starts_with("    \"virtual-size\":"))
        .expect("virtual-size in qemu-img info");
    line.trim_end_matches(',')
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn qemu_raw(path: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("qemu.raw");
    qemu_img(&[
        "convert",
        "-f",
        "vdi",
        "-O",
        "raw",
        path.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    std::fs::read(out).unwrap()
}

/// Data ranges of `qemu-img map --output=json` (entries with `"data": true`).
fn qemu_data(path: &Path) -> Vec<(u64, u64)> {
    let json = String::from_utf8(qemu_img(&[
        "map",
        "-f",
        "vdi",
        "--output=json",
        path.to_str().unwrap(),
    ]))
    .unwrap();
    let num = |line: &str, key: &str| -> u64 {
        let at = line.find(key).unwrap() + key.len();
        line[at..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // qemu splits runs where the host offset jumps; adjacent runs are merged.
    let mut out: Vec<(u64, u64)> = Vec::new();
    for l in json.lines().filter(|l| l.contains("\"data\": true")) {
        let s = num(l, "\"start\":");
        let e = s + num(l, "\"length\":");
        match out.last_mut() {
            Some(last) if last.1 == s => last.1 = e,
            _ => out.push((s, e)),
        }
    }
    out
}

fn our_data(d: &dyn ReadAt) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut at = 0;
    while let Some(r) = d.next_data(at).unwrap() {
        assert!(r.start >= at && r.end > r.start, "{r:?} after {at}");
        match out.last_mut() {
            Some(last) if last.1 == r.start => last.1 = r.end,
            _ => out.push((r.start, r.end)),
        }
        at = r.end;
    }
    out
}

/// Every byte outside `ranges` is zero in `bytes`.
fn assert_hides_no_data(ranges: &[(u64, u64)], bytes: &[u8]) {
    let mut at = 0usize;
    for &(s, e) in ranges
        .iter()
        .chain(std::iter::once(&(bytes.len() as u64, bytes.len() as u64)))
    {
        assert!(
            bytes[at..s as usize].iter().all(|&b| b == 0),
            "data hidden in {at}..{s}"
        );
        at = e as usize;
    }
}

fn check(path: &Path, dir: &Path, src: &[u8], static_image: bool) -> VdiDisk {
    let d = open(path);
    assert_eq!(
        d.len(),
        virtual_size(path),
        "virtual size as qemu-img info says"
    );
    let ours = read_all(&d);
    assert_eq!(ours.len(), src.len());
    assert!(ours == src, "bytes differ from the raw source");
    assert!(
        ours == qemu_raw(path, dir),
        "bytes differ from qemu-img convert -O raw"
    );
    let data = our_data(&d);
    assert_hides_no_data(&data, src);
    assert_eq!(data, qemu_data(path), "next_data against qemu-img map");
    assert_eq!(d.is_static(), static_image);
    d
}

#[test]
fn dynamic_and_static_images_written_by_qemu_img() {
    let dir = tempfile::tempdir().unwrap();
    let (src, bytes) = source(dir.path());
    let dynamic = dir.path().join("d.vdi");
    let fixed = dir.path().join("s.vdi");
    let s = src.to_str().unwrap();
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vdi",
        s,
        dynamic.to_str().unwrap(),
    ]);
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vdi",
        "-o",
        "static=on",
        s,
        fixed.to_str().unwrap(),
    ]);

    let d = check(&dynamic, dir.path(), &bytes, false);
    let h = d.header();
    assert_eq!(h.image_type, VdiImageType::Dynamic);
    assert_eq!(h.block_size, 1 << 20);
    assert_eq!(h.blocks_in_image, 21);
    // Blocks 0, 3, 6-7, 12-14 and 20 hold data; the explicit zeros at 5 MiB are not allocated.
    assert_eq!(d.block_map().allocated(), 8);
    assert_eq!(u64::from(h.blocks_allocated), 8);

    let d = check(&fixed, dir.path(), &bytes, true);
    assert_eq!(d.header().image_type, VdiImageType::Static);
    assert_eq!(d.block_map().allocated(), 21);
    // A static image stores every block: next_data reports the whole disk, as qemu-img map.
    assert_eq!(our_data(&d), vec![(0, SIZE)]);
}

#[test]
fn virtualbox_header_variant_and_zero_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (src, mut bytes) = source(dir.path());
    let path = dir.path().join("vbox.vdi");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vdi",
        src.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let mut text = [0u8; 64];
    text[..40].copy_from_slice(b"<<< Oracle VM VirtualBox Disk Image >>>\n");
    f.write_all_at(&text, 0).unwrap();
    // VDIHEADER1PLUS: 400 bytes, LCHS geometry at 456.
    f.write_all_at(&400u32.to_le_bytes(), 72).unwrap();
    for (i, v) in [41u32, 16, 63, 512].iter().enumerate() {
        f.write_all_at(&v.to_le_bytes(), 456 + 4 * i as u64)
            .unwrap();
    }
    // Block 12 discarded: VDI_IMAGE_BLOCK_ZERO in the map (qemu reads it as zeros too).
    let map_at = {
        let mut b = [0u8; 4];
        std::fs::File::open(&path)
            .unwrap()
            .read_exact_at(&mut b, 340)
            .unwrap();
        u64::from(u32::from_le_bytes(b))
    };
    f.write_all_at(&BLOCK_ZERO.to_le_bytes(), map_at + 12 * 4)
        .unwrap();
    drop(f);
    bytes[12 * MIB as usize..13 * MIB as usize].fill(0);

    let d = open(&path);
    let h = d.header();
    assert_eq!(h.header_size, 400);
    assert_eq!(h.text, "<<< Oracle VM VirtualBox Disk Image >>>\n");
    assert_eq!(
        h.lchs_geometry.map(|g| (g.cylinders, g.heads, g.sectors)),
        Some((41, 16, 63))
    );
    assert_eq!(d.block_map().zero(), 1);
    let ours = read_all(&d);
    assert!(
        ours == bytes,
        "bytes differ from the source with block 12 zeroed"
    );
    assert!(
        ours == qemu_raw(&path, dir.path()),
        "bytes differ from qemu-img's reading"
    );
    assert_hides_no_data(&our_data(&d), &bytes);
    assert_eq!(our_data(&d), qemu_data(&path));
}

#[test]
fn truncated_and_corrupt_images_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = source(dir.path());
    let path = dir.path().join("t.vdi");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vdi",
        src.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 4096).unwrap();
    let file: SharedDisk = Arc::new(FileReader::new(File::open(&path).unwrap()).unwrap());
    let header = VdiHeader::read(file.as_ref()).unwrap();
    let e = VdiDisk::open(file, header, None).unwrap_err().to_string();
    assert!(
        e.starts_with("VDI block ") && e.contains("lies past the end of the") && !e.contains('\n'),
        "{e}"
    );
    // An entry naming the header's own slot range is impossible (slots start at the data
    // offset); an entry naming a slot past the image's blocks is refused.
    f.write_all_at(&1000u32.to_le_bytes(), 512).unwrap();
    let file: SharedDisk = Arc::new(FileReader::new(File::open(&path).unwrap()).unwrap());
    let header = VdiHeader::read(file.as_ref()).unwrap();
    let e = VdiDisk::open(file, header, None).unwrap_err().to_string();
    assert_eq!(e, "VDI block map entry 0 (at offset 512) names data block 1000, but the image has only 21 blocks");
}

/// A VirtualBox snapshot chain (see the support module) read as its layers combined.
#[test]
fn differencing_image_over_a_qemu_written_parent() {
    use vhdprep_disk::vdi::parent::{check_parent, parent_candidates, ModificationCheck};
    let dir = tempfile::tempdir().unwrap();
    let (src, parent_bytes) = source(dir.path());
    let vdi_chain::VdiChain {
        base,
        child,
        expected,
        ..
    } = vdi_chain::build(dir.path(), &src, &parent_bytes);
    let file: SharedDisk = Arc::new(FileReader::new(File::open(&child).unwrap()).unwrap());
    let header = VdiHeader::read(file.as_ref()).unwrap();
    assert_eq!(header.image_type, VdiImageType::Differencing);
    let parent_file: SharedDisk = Arc::new(FileReader::new(File::open(&base).unwrap()).unwrap());
    let parent_header = VdiHeader::read(parent_file.as_ref()).unwrap();
    assert_eq!(
        check_parent(&header, &base, &parent_header).unwrap(),
        ModificationCheck::Unchanged
    );
    assert_eq!(
        parent_candidates(&child, &header),
        [dir.path()
            .join(format!("{{{}}}.vdi", parent_header.uuid_image))]
    );
    let e = VdiDisk::open(file.clone(), header.clone(), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("differencing VDI image needs its parent (UUID "),
        "{e}"
    );
    let parent = VdiDisk::open(parent_file, parent_header, None).unwrap();
    let d = VdiDisk::open(file, header, Some(Arc::new(parent))).unwrap();
    assert_eq!(d.block_map().allocated(), 3);

    let ours = read_all(&d);
    assert!(
        ours == expected,
        "the chain differs from the layers combined"
    );
    assert_hides_no_data(&our_data(&d), &expected);
}
