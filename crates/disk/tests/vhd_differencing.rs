//! Differencing VHD chains against libvhdi (vhdiinfo, vhdimount over FUSE) and qemu-img.
//!
//! qemu-img cannot write differencing VHDs, so the children here are made by hand from the
//! VHD specification (footer, dynamic header, BAT, sector bitmaps, parent locators W2ru,
//! W2ku and MacX, parent unique id and time stamp) over a parent dynamic VHD that qemu-img
//! writes. libvhdi is the second reader of the whole chain; qemu-img reads a child's own
//! layer (it does not follow VHD parents: it reads unallocated sectors as zeros).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhd_chain::{checksum, footer_of, make_child, Links};
use vhdprep_disk::vhd::parent::{resolve_parent, walk_chain, ParentError, TimestampCheck};
use vhdprep_disk::vhd::{
    DifferencingHeader, DifferencingVhd, DiskType, DynamicHeader, DynamicVhd, Footer,
    DYNAMIC_HEADER_SIZE, FOOTER_SIZE,
};
use vhdprep_disk::{FileReader, ReadAt, SharedDisk};

#[path = "support/vhd_chain.rs"]
mod vhd_chain;

const MIB: u64 = 1 << 20;
const SIZE: u64 = 24 * MIB;

fn run(name: &str, package: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name} could not be run ({e}); install Debian package {package} (scripts/test.sh does)")
    });
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i / 7) as u8).wrapping_mul(13).wrapping_add(seed) | 0x80)
        .collect()
}

/// The base: a raw source with data and holes, written by qemu-img as a dynamic VHD
/// (`force_size=on`, so the footer's current size is the disk size).
fn base(dir: &Path) -> (PathBuf, Vec<u8>) {
    let raw = dir.join("base.raw");
    let f = File::create(&raw).unwrap();
    f.set_len(SIZE).unwrap();
    let mut bytes = vec![0u8; SIZE as usize];
    for (at, len, seed) in [
        (0, 3 * MIB, 1u8),
        (5 * MIB + 512, 9000, 2),
        (16 * MIB, 4 * MIB, 3),
    ] {
        let d = pattern(len as usize, seed);
        f.write_all_at(&d, at).unwrap();
        bytes[at as usize..(at + len) as usize].copy_from_slice(&d);
    }
    let vhd = dir.join("base.vhd");
    run(
        "qemu-img",
        "qemu-utils",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            "subformat=dynamic,force_size=on",
            raw.to_str().unwrap(),
            vhd.to_str().unwrap(),
        ],
    );
    (vhd, bytes)
}

/// The footer and mtime of a candidate parent, as `resolve_parent` wants them.
fn probe(p: &Path) -> Result<(Footer, Option<std::time::SystemTime>), String> {
    let meta = std::fs::metadata(p).map_err(|e| e.to_string())?;
    let f = footer_of(p);
    if !f.has_cookie() {
        return Err("no VHD footer".into());
    }
    Ok((f, meta.modified().ok()))
}

enum Link {
    Dynamic(SharedDisk, DynamicHeader, Footer),
    Differencing(SharedDisk, DifferencingHeader),
}

/// Opens the chain from `top` the way the CLI will: walk_chain over resolve_parent, then
/// each disk over its parent, base first.
fn open_chain(top: &Path, user_parent: Option<&Path>) -> Result<(SharedDisk, usize), String> {
    let mut first = true;
    let links = walk_chain(top, |path| -> Result<(Link, Option<PathBuf>), String> {
        let file: SharedDisk =
            Arc::new(FileReader::new(File::open(path).map_err(|e| e.to_string())?).unwrap());
        let footer = footer_of(path);
        if footer.disk_type == DiskType::Dynamic {
            let mut raw = [0u8; DYNAMIC_HEADER_SIZE];
            file.read_exact_at(&mut raw, footer.data_offset).unwrap();
            return Ok((
                Link::Dynamic(file, DynamicHeader::parse(&raw), footer),
                None,
            ));
        }
        let h = DifferencingHeader::read(file.as_ref()).map_err(|e| e.to_string())?;
        let given = if first { user_parent } else { None };
        first = false;
        let (parent, ts) = resolve_parent(path, &h.dynamic, &h.locators, given, probe)
            .map_err(|e: ParentError| e.to_string())?;
        // The children record the parent footer's time stamp.
        assert_eq!(ts, TimestampCheck::MatchesFooter, "{}", path.display());
        Ok((Link::Differencing(file, h), Some(parent)))
    })
    .map_err(|e| e.to_string())?;
    let depth = links.len();
    let mut disk: Option<SharedDisk> = None;
    for link in links.into_iter().rev() {
        disk = Some(match link {
            Link::Dynamic(file, h, footer) => {
                let end = file.len() - FOOTER_SIZE as u64;
                Arc::new(
                    DynamicVhd::open(file, &h, footer.virtual_size(), end)
                        .unwrap()
                        .unwrap(),
                )
            }
            Link::Differencing(file, h) => Arc::new(
                DifferencingVhd::open(file, h, disk.take().unwrap()).map_err(|e| e.to_string())?,
            ),
        });
    }
    Ok((disk.unwrap(), depth))
}

fn read_all(d: &dyn ReadAt) -> Vec<u8> {
    let mut all = vec![0u8; d.len() as usize];
    for (i, chunk) in all.chunks_mut(4 * MIB as usize).enumerate() {
        d.read_exact_at(chunk, i as u64 * 4 * MIB).unwrap();
    }
    all
}

/// Every byte outside next_data's ranges is zero in `bytes`.
fn assert_hides_no_data(d: &dyn ReadAt, bytes: &[u8]) {
    let mut at = 0u64;
    loop {
        let next = d.next_data(at).unwrap();
        let stop = next.as_ref().map_or(bytes.len() as u64, |r| r.start);
        assert!(
            bytes[at as usize..stop as usize].iter().all(|&b| b == 0),
            "data hidden in {at}..{stop}"
        );
        match next {
            Some(r) => at = r.end,
            None => break,
        }
    }
}

/// libvhdi's reading of `image`, a chain of `depth` disks, through vhdimount (FUSE), and
/// vhdiinfo's text. vhdimount shows each disk of the chain, base first: `vhdi1` is the base,
/// `vhdi{depth}` the image itself.
fn libvhdi_read(image: &Path, depth: usize, dir: &Path) -> (Vec<u8>, String) {
    struct Mount(PathBuf, Child);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = Command::new("fusermount").arg("-u").arg(&self.0).status();
            let _ = self.1.kill();
            let _ = self.1.wait();
        }
    }
    let info = String::from_utf8_lossy(&run(
        "vhdiinfo",
        "libvhdi-utils",
        &[image.to_str().unwrap()],
    ))
    .into_owned();
    let mnt = dir.join(format!(
        "mnt-{}",
        image.file_name().unwrap().to_str().unwrap()
    ));
    std::fs::create_dir_all(&mnt).unwrap();
    let child = Command::new("vhdimount")
        .arg("-v")
        .arg(image)
        .arg(&mnt)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("vhdimount could not be run ({e}); install Debian package libvhdi-utils")
        });
    let mount = Mount(mnt.clone(), child);
    let disk = mnt.join(format!("vhdi{depth}"));
    let t = Instant::now();
    while !disk.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "vhdimount did not mount {}",
            image.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let bytes = std::fs::read(&disk).unwrap();
    assert!(
        !mnt.join(format!("vhdi{}", depth + 1)).exists(),
        "libvhdi sees a longer chain"
    );
    drop(mount);
    (bytes, info)
}

/// qemu-img's reading of `image` alone (it does not follow VHD parents).
fn qemu_read(image: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("qemu.raw");
    run(
        "qemu-img",
        "qemu-utils",
        &[
            "convert",
            "-f",
            "vpc",
            "-O",
            "raw",
            image.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    std::fs::read(out).unwrap()
}

/// Writes of a child: (virtual offset, bytes), sector-aligned.
type Writes = Vec<(u64, Vec<u8>)>;

/// Writes of a child, in sectors: runs of a few sectors, zeros over the parent's data,
/// across a block boundary, and in the last block.
fn writes(seed: u8, shift: u64) -> Writes {
    vec![
        (shift + 4096, pattern(1024, seed)),
        (MIB + shift, vec![0u8; 2048]),
        (2 * MIB - 1024 + shift, pattern(3072, seed + 1)),
        (9 * MIB + shift * 3, pattern(512 * 9, seed + 2)),
        (17 * MIB + 512, pattern(512, seed + 3)),
        (SIZE - 1024, pattern(1024, seed + 4)),
    ]
}

/// The same kinds of writes in whole 4 KiB pages (whole bitmap bytes), as guests write
/// through Hyper-V. libvhdi 20210425 (Debian's) misreads a bitmap byte with only some bits
/// set: from its first set bit to the end of the byte it reads the child, so sectors the
/// child never wrote read as the child's zeros instead of the parent's. Its comparison uses
/// these writes; the sector-level ones are checked against the model and qemu-img.
fn page_writes(seed: u8, shift: u64) -> Writes {
    vec![
        (shift + 4096, pattern(8192, seed)),
        (MIB + shift, vec![0u8; 4096]),
        (2 * MIB - 4096 + shift, pattern(12288, seed + 1)),
        (9 * MIB + shift * 3, pattern(4096 * 3, seed + 2)),
        (17 * MIB + 4096, pattern(4096, seed + 3)),
        (SIZE - 4096, pattern(4096, seed + 4)),
    ]
}

/// A chain base <- mid <- top with `w` writes in each child; returns the model.
fn chain(dir: &Path, w: fn(u8, u64) -> Writes) -> (PathBuf, PathBuf, Vec<u8>, Vec<u8>) {
    let (base, mut model) = base(dir);
    let mid = dir.join("mid.vhd");
    let top = dir.join("top.avhd");
    make_child(
        &mid,
        &base,
        &Links::to(&base),
        512 << 10,
        &w(10, 0),
        0x11,
        &mut model,
    );
    let mid_model = model.clone();
    make_child(
        &top,
        &mid,
        &Links::to(&mid),
        2 << 20,
        &w(40, 8192),
        0x22,
        &mut model,
    );
    (mid, top, mid_model, model)
}

#[test]
fn sector_writes_read_through_a_chain_of_three_like_the_model_and_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let (_, top, _, model) = chain(dir.path(), writes);
    let (disk, depth) = open_chain(&top, None).unwrap();
    assert_eq!(depth, 3);
    assert_eq!(disk.len(), SIZE);
    assert!(
        read_all(disk.as_ref()) == model,
        "the chain differs from the model"
    );
    assert_hides_no_data(disk.as_ref(), &model);
    // qemu-img reads the child's own layer (it ignores VHD parents and sector bitmaps: an
    // allocated block is read whole). Our reader over an all-zero parent must agree.
    let file: SharedDisk = Arc::new(FileReader::new(File::open(&top).unwrap()).unwrap());
    let h = DifferencingHeader::read(file.as_ref()).unwrap();
    let alone = DifferencingVhd::open(file, h, Arc::new(vec![0u8; SIZE as usize])).unwrap();
    assert!(
        read_all(&alone) == qemu_read(&top, dir.path()),
        "qemu-img reads the child's layer differently"
    );
}

#[test]
fn a_chain_of_three_reads_like_libvhdi() {
    let dir = tempfile::tempdir().unwrap();
    let (mid, top, mid_model, model) = chain(dir.path(), page_writes);

    let (disk, depth) = open_chain(&top, None).unwrap();
    assert_eq!(depth, 3);
    assert_eq!(disk.len(), SIZE);
    let ours = read_all(disk.as_ref());
    assert!(ours == model, "the chain differs from the model");
    assert_hides_no_data(disk.as_ref(), &model);

    let (theirs, info) = libvhdi_read(&top, 3, dir.path());
    assert!(
        info.contains("Differential") || info.contains("Differencing"),
        "{info}"
    );
    assert!(
        info.contains("25165824 bytes"),
        "vhdiinfo media size: {info}"
    );
    assert!(info.contains("mid.vhd"), "vhdiinfo parent name: {info}");
    assert_eq!(theirs.len(), ours.len());
    assert!(theirs == ours, "libvhdi reads the chain differently");
    let (theirs, _) = libvhdi_read(&mid, 2, dir.path());
    let (mid_disk, _) = open_chain(&mid, None).unwrap();
    assert!(theirs == read_all(mid_disk.as_ref()) && theirs == mid_model);
}

#[test]
fn a_moved_or_wrong_parent_is_named_with_where_it_was_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let (base, mut model) = base(dir.path());
    let kids = dir.path().join("kids");
    std::fs::create_dir(&kids).unwrap();
    let child = kids.join("child.vhd");
    // Locators point at ..\base.vhd (right) and a MacX URL; the name is base.vhd.
    let links = Links {
        w2ru: Some("..\\base.vhd".into()),
        w2ku: Some("C:\\vms\\base.vhd".into()),
        macx: Some(format!("file://localhost{}", base.display())),
        name: "base.vhd".into(),
    };
    make_child(
        &child,
        &base,
        &links,
        2 << 20,
        &writes(70, 0),
        0x33,
        &mut model,
    );
    assert!(read_all(open_chain(&child, None).unwrap().0.as_ref()) == model);

    // Move the parent away: not found, one line naming the parent and every place tried.
    let moved = dir.path().join("moved.vhd");
    std::fs::rename(&base, &moved).unwrap();
    let e = open_chain(&child, None).err().unwrap();
    let base_s = base.display().to_string();
    let expected = format!(
        "parent 'base.vhd' (unique id {}) not found: looked at {}/kids/../base.vhd (W2ru locator: No such file or directory (os error 2)), {base_s} (MacX locator: No such file or directory (os error 2)), {}/kids/base.vhd (name next to the child: No such file or directory (os error 2)); give its path with --parent PATH",
        uuid::Uuid::from_bytes(footer_of(&moved).unique_id),
        dir.path().display(),
        dir.path().display(),
    );
    assert_eq!(e, expected);
    assert!(!e.contains('\n'));
    // --parent finds it.
    assert!(read_all(open_chain(&child, Some(&moved)).unwrap().0.as_ref()) == model);
    // Another VHD in the parent's place: its unique id is named.
    let (other, _) = self::base(&kids);
    let e = open_chain(&child, Some(&other)).err().unwrap();
    assert!(
        e.contains(&format!(
            "looked at {} (--parent: unique id {})",
            other.display(),
            uuid::Uuid::from_bytes(footer_of(&other).unique_id)
        )),
        "{e}"
    );
}

#[test]
fn a_child_that_is_its_own_parent_ends_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (base, mut model) = base(dir.path());
    let child = dir.path().join("loop.vhd");
    // The child records its own name and unique id as its parent's.
    make_child(
        &child,
        &base,
        &Links::to(&base),
        2 << 20,
        &writes(1, 0),
        0x44,
        &mut model,
    );
    let mut bytes = std::fs::read(&child).unwrap();
    let f = footer_of(&child);
    let h0 = 512;
    bytes[h0 + 40..h0 + 56].copy_from_slice(&f.unique_id);
    let mut name = [0u8; 512];
    for (i, u) in "loop.vhd".encode_utf16().enumerate() {
        name[2 * i..2 * i + 2].copy_from_slice(&u.to_be_bytes());
    }
    bytes[h0 + 64..h0 + 576].copy_from_slice(&name);
    let sum = checksum(&bytes[h0..h0 + 1024], 36..40);
    bytes[h0 + 36..h0 + 40].copy_from_slice(&sum.to_be_bytes());
    // Its W2ru locator says .\base.vhd: point it at itself.
    let w2ru: Vec<u8> = ".\\loop.vhd"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let loc_at =
        u64::from_be_bytes(bytes[h0 + 576 + 16..h0 + 576 + 24].try_into().unwrap()) as usize;
    bytes[loc_at..loc_at + w2ru.len()].copy_from_slice(&w2ru);
    std::fs::write(&child, bytes).unwrap();
    let e = open_chain(&child, None).err().unwrap();
    assert_eq!(
        e,
        format!(
            "the parent chain loops: {} is its own ancestor",
            child.display()
        )
    );
}
