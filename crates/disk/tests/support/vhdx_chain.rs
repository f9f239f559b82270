//! A differencing VHDX chain built from the specification (no tool here writes one:
//! `qemu-img create -f vhdx -b` says "Backing file not supported for file format 'vhdx'").
//!
//! Shared by crates/disk/tests/vhdx_against_qemu.rs (the reader against libvhdi) and
//! tests/containers_cli.rs (the commands), each including it with `#[path]`.
//!
//! The child is a qemu-img/qemu-io VHDX patched as [MS-VHDX] says: the has-parent flag and a
//! parent locator in its metadata, a sector-bitmap block, and its blocks set to each state
//! (fully present, partially present with the sector bitmap choosing child or parent per
//! sector, zero, not present).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use vhdprep_disk::vhdx::metadata::{FILE_PARAMETERS, PARENT_LOCATOR, VHDX_PARENT_LOCATOR_TYPE};
use vhdprep_disk::vhdx::{Vhdx, VhdxHeader};
use vhdprep_disk::FileReader;

const MIB: u64 = 1 << 20;

/// The chain and what the specification says the child reads as.
pub struct VhdxChain {
    /// `parent.vhdx`, a dynamic VHDX made by qemu-img from `parent_raw`.
    pub parent: PathBuf,
    /// `child.vhdx`, next to the parent, naming it by `relative_path=.\parent.vhdx`.
    pub child: PathBuf,
    /// The parent's disk.
    pub parent_raw: Vec<u8>,
    /// The child's own blocks as qemu-img read them before it was made a child.
    pub child_raw: Vec<u8>,
    /// The chain's disk as [MS-VHDX] defines it.
    pub want: Vec<u8>,
    /// The parent's data write GUID as the child's `parent_linkage` holds it (`{...}`).
    pub linkage: String,
    /// The sectors of block 2 the child's sector bitmap marks present.
    pub present_sectors: Vec<u64>,
}

fn run(name: &str, package: &str, args: &[&str]) {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("required tool `{name}` could not be run ({e}); install Debian package `{package}`")
    });
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Deterministic pseudo-random bytes.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn header(path: &Path) -> VhdxHeader {
    let f = FileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    Vhdx::read_header(&f).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn patch(img: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// Where the metadata item whose GUID is `guid_le` (on-disk byte order) of `img` is (file
/// offset, length).
fn metadata_item(img: &Path, guid_le: [u8; 16]) -> Option<(u64, u32)> {
    let base = header(img).regions.metadata.start;
    let f = std::fs::read(img).unwrap();
    let t = &f[base as usize..][..65536];
    let count = u16::from_le_bytes([t[10], t[11]]) as usize;
    (0..count).find_map(|i| {
        let e = &t[32 + 32 * i..][..32];
        (e[..16] == guid_le).then(|| {
            let off = u32::from_le_bytes(e[16..20].try_into().unwrap());
            let len = u32::from_le_bytes(e[20..24].try_into().unwrap());
            (base + u64::from(off), len)
        })
    })
}

/// UTF-16LE bytes.
fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// A parent locator item ([MS-VHDX] 2.6.2.6) with the given pairs.
fn locator(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut b = vec![0u8; 20 + 12 * pairs.len()];
    b[..16].copy_from_slice(&VHDX_PARENT_LOCATOR_TYPE.to_bytes_le());
    b[18..20].copy_from_slice(&(pairs.len() as u16).to_le_bytes());
    for (i, (k, v)) in pairs.iter().enumerate() {
        let (k, v) = (utf16(k), utf16(v));
        let e = 20 + 12 * i;
        let ko = b.len() as u32;
        b.extend_from_slice(&k);
        let vo = b.len() as u32;
        b.extend_from_slice(&v);
        b[e..e + 4].copy_from_slice(&ko.to_le_bytes());
        b[e + 4..e + 8].copy_from_slice(&vo.to_le_bytes());
        b[e + 8..e + 10].copy_from_slice(&(k.len() as u16).to_le_bytes());
        b[e + 10..e + 12].copy_from_slice(&(v.len() as u16).to_le_bytes());
    }
    b
}

/// `qemu-img convert -O raw` of a VHDX, read back.
fn qemu_raw(path: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("qemu-chain-build.raw");
    run(
        "qemu-img",
        "qemu-utils",
        &["convert", "-f", "vhdx", "-O", "raw", s(path), s(&out)],
    );
    let v = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    v
}

/// Builds the 16 MiB chain in `dir` (1 MiB blocks: block 0 present, block 2 partially
/// present, block 5 zero, block 7 present, the rest from the parent, which has a hole at
/// 9 MiB).
pub fn build(dir: &Path) -> VhdxChain {
    let size = 16 * MIB;
    let parent_raw: Vec<u8> = {
        let mut v = pattern(99, size as usize);
        v[(9 * MIB) as usize..(10 * MIB) as usize].fill(0);
        v
    };
    let praw = dir.join("parent.raw");
    std::fs::write(&praw, &parent_raw).unwrap();
    let parent = dir.join("parent.vhdx");
    run(
        "qemu-img",
        "qemu-utils",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "vhdx",
            "-o",
            "block_size=1M",
            s(&praw),
            s(&parent),
        ],
    );
    std::fs::remove_file(&praw).unwrap();

    let child = dir.join("child.vhdx");
    run(
        "qemu-img",
        "qemu-utils",
        &[
            "create",
            "-q",
            "-f",
            "vhdx",
            "-o",
            "block_size=1M,block_state_zero=off",
            s(&child),
            "16M",
        ],
    );
    for cmd in [
        "write -P 0xC1 0 1M",
        "write -P 0xC2 2M 1M",
        "write -P 0xC3 5M 1M",
        "write -P 0xC4 7M 512k",
    ] {
        run(
            "qemu-io",
            "qemu-utils",
            &["-f", "vhdx", "-c", cmd, s(&child)],
        );
    }
    let child_raw = qemu_raw(&child, dir);

    // Metadata: has_parent, and a parent locator item after the last item.
    let h = header(&child);
    let (fp_at, _) = metadata_item(&child, FILE_PARAMETERS.to_bytes_le()).unwrap();
    let f = std::fs::read(&child).unwrap();
    let flags = u32::from_le_bytes(f[fp_at as usize + 4..][..4].try_into().unwrap());
    patch(&child, fp_at + 4, &(flags | 2).to_le_bytes());
    let base = h.regions.metadata.start;
    let t = &f[base as usize..][..65536];
    let count = u16::from_le_bytes([t[10], t[11]]) as usize;
    let items_end = (0..count)
        .map(|i| {
            let e = &t[32 + 32 * i..][..32];
            u32::from_le_bytes(e[16..20].try_into().unwrap())
                + u32::from_le_bytes(e[20..24].try_into().unwrap())
        })
        .max()
        .unwrap();
    let loc_off = items_end.div_ceil(4096) * 4096;
    let linkage = format!("{{{}}}", header(&parent).current().data_write_guid);
    let loc = locator(&[
        ("parent_linkage", &linkage),
        ("relative_path", ".\\parent.vhdx"),
        (
            "volume_path",
            "\\\\?\\Volume{9a3b4c5d-0000-0000-0000-100000000000}\\vhdx\\parent.vhdx",
        ),
        ("absolute_win32_path", "C:\\vhdx\\parent.vhdx"),
    ]);
    patch(&child, base + u64::from(loc_off), &loc);
    let mut entry = vec![0u8; 32];
    entry[..16].copy_from_slice(&PARENT_LOCATOR.to_bytes_le());
    entry[16..20].copy_from_slice(&loc_off.to_le_bytes());
    entry[20..24].copy_from_slice(&(loc.len() as u32).to_le_bytes());
    entry[24..28].copy_from_slice(&4u32.to_le_bytes()); // IsRequired
    patch(&child, base + 32 + 32 * count as u64, &entry);
    patch(&child, base + 10, &((count + 1) as u16).to_le_bytes());

    // BAT: block 2 partially present, block 5 zero; a sector bitmap block for chunk 0 (BAT
    // index chunk_ratio = 2^23 * 512 / 1 MiB = 4096) appended at the next MiB.
    let bat = h.regions.bat.start;
    let read_entry = |i: u64| {
        let f = std::fs::read(&child).unwrap();
        u64::from_le_bytes(f[(bat + 8 * i) as usize..][..8].try_into().unwrap())
    };
    assert_eq!(read_entry(2) & 7, 6);
    patch(&child, bat + 16, &((read_entry(2) & !7) | 7).to_le_bytes());
    patch(&child, bat + 40, &((read_entry(5) & !7) | 2).to_le_bytes());
    let flen = std::fs::metadata(&child).unwrap().len();
    let sb_at = flen.div_ceil(MIB) * MIB;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&child)
        .unwrap()
        .set_len(sb_at + MIB)
        .unwrap();
    let present_sectors: Vec<u64> = (0..8).chain(1000..1100).chain([2000, 2002, 2047]).collect();
    let mut bitmap = vec![0u8; 65536];
    for &sct in &present_sectors {
        let bit = 2 * 2048 + sct; // block 2's sectors within the chunk
        bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
    }
    patch(&child, sb_at, &bitmap);
    patch(
        &child,
        bat + 8 * 4096,
        &((sb_at / MIB) << 20 | 6).to_le_bytes(),
    );

    // What the specification says the child reads as.
    let mut want = parent_raw.clone();
    let blk = |b: u64| (b * MIB) as usize..((b + 1) * MIB) as usize;
    want[blk(0)].copy_from_slice(&child_raw[blk(0)]);
    for &sct in &present_sectors {
        let at = (2 * MIB + sct * 512) as usize;
        want[at..at + 512].copy_from_slice(&child_raw[at..at + 512]);
    }
    want[blk(5)].fill(0);
    want[blk(7)].copy_from_slice(&child_raw[blk(7)]);
    assert!(want[blk(2)].contains(&0xC2) && want[(2 * MIB + 4096) as usize] != 0xC2);
    VhdxChain {
        parent,
        child,
        parent_raw,
        child_raw,
        want,
        linkage,
        present_sectors,
    }
}
