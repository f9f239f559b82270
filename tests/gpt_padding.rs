//! GPT disks whose size is not a whole MiB, padded by `convert` and `fix --in-place`: the
//! backup GPT moves to the new last LBA. Each output is compared with what the partitioning
//! tools make of the same disk grown the same way (`sgdisk -e` for tables sgdisk wrote,
//! `sfdisk --relocate gpt-bak-std` for tables libfdisk wrote), byte for byte, and checked with
//! `sgdisk -v`, qemu-img and vhdprep's own `check`; the partitions' bytes are unchanged.

mod common;
use common::*;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;

/// The partitions of a raw disk, as sfdisk reads them: byte ranges.
fn partitions(disk: &Path) -> Vec<(u64, u64)> {
    let out = tool("sfdisk", "fdisk", &["--json", disk.to_str().unwrap()]);
    assert!(out.status.success(), "sfdisk --json {}", disk.display());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &v["partitiontable"];
    let ss = t["sectorsize"].as_u64().unwrap_or(512);
    t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["start"].as_u64().unwrap() * ss,
                p["size"].as_u64().unwrap() * ss,
            )
        })
        .collect()
}

/// Writes pattern data at the start and the end of each partition (so that a change to the
/// partitions' bytes shows in their hashes).
fn fill(disk: &Path, parts: &[(u64, u64)]) {
    let f = std::fs::OpenOptions::new().write(true).open(disk).unwrap();
    for (i, &(start, len)) in parts.iter().enumerate() {
        let n = (len / 2).min(256 * 1024) as usize;
        f.write_all_at(&pattern(i as u64 * 2, n), start).unwrap();
        f.write_all_at(&pattern(i as u64 * 2 + 1, n), start + len - n as u64)
            .unwrap();
    }
}

/// SHA-256 of each byte range of a file.
fn hashes(file: &Path, ranges: &[(u64, u64)]) -> Vec<String> {
    let f = std::fs::File::open(file).unwrap();
    ranges
        .iter()
        .map(|&(start, len)| {
            let mut h = Sha256::new();
            let mut buf = vec![0u8; MIB as usize];
            let mut at = start;
            while at < start + len {
                let n = ((start + len - at) as usize).min(buf.len());
                f.read_exact_at(&mut buf[..n], at).unwrap();
                h.update(&buf[..n]);
                at += n as u64;
            }
            format!("{:x}", h.finalize())
        })
        .collect()
}

/// True when two files have the same bytes.
fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// A raw disk of `len` bytes partitioned by sgdisk (an ESP and a Linux partition filling the
/// rest), with data in both partitions.
fn sgdisk_disk(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
    sgdisk(path, &["-n1:2048:+8M", "-t1:ef00", "-n2:0:0", "-t2:8300"]);
    fill(path, &partitions(path));
}

/// The same, partitioned by sfdisk (libfdisk: first usable LBA 2048, as systemd-repart and
/// mkosi write it).
fn sfdisk_disk(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
    let mut child = std::process::Command::new("sfdisk")
        .args(["-q", path.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sfdisk (Debian package fdisk)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: gpt\nsize=8M, type=U\ntype=L\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    fill(path, &partitions(path));
}

/// What the partitioning tool makes of `src` grown to `size`: the expected virtual disk.
fn reference(src: &Path, size: u64, out: &Path, tool_args: &[&str]) {
    sparse_copy(src, out);
    std::fs::OpenOptions::new()
        .write(true)
        .open(out)
        .unwrap()
        .set_len(size)
        .unwrap();
    let (name, pkg) = if tool_args[0] == "-e" {
        ("sgdisk", "gdisk")
    } else {
        ("sfdisk", "fdisk")
    };
    let mut args = tool_args.to_vec();
    args.push(out.to_str().unwrap());
    let r = tool(name, pkg, &args);
    assert!(
        r.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// AlternateLBA and LastUsableLBA of the primary GPT header of a raw disk.
fn primary_fields(disk: &Path, ss: u64) -> (u64, u64) {
    let mut h = [0u8; 92];
    std::fs::File::open(disk)
        .unwrap()
        .read_exact_at(&mut h, ss)
        .unwrap();
    let u = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap());
    (u(32), u(48))
}

/// Both writers on `src` (raw, in `dir`), each output checked against `reference`: the same
/// virtual disk (qemu-img compare), which sgdisk -v accepts, with the same primary header
/// fields, and the bytes of `parts` (byte ranges: the partitions) unchanged.
fn convert_and_fix_like(
    dir: &Path,
    src: &Path,
    reference: &Path,
    parts: &[(u64, u64)],
) -> Vec<PathBuf> {
    let size = std::fs::metadata(reference).unwrap().len();
    let before = hashes(src, parts);
    let converted = p(dir, "converted.vhd");
    let r = run(&[
        "convert",
        "-q",
        src.to_str().unwrap(),
        converted.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let fixed = p(dir, "fixed.vhd");
    sparse_copy(src, &fixed);
    let r = run(&["fix", "--in-place", fixed.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for out in [&converted, &fixed] {
        let name = out.display();
        assert_eq!(std::fs::metadata(out).unwrap().len(), size + 512, "{name}");
        assert_eq!(
            qemu_info(out, "vpc")["virtual-size"].as_u64(),
            Some(size),
            "{name}"
        );
        assert!(qemu_identical(reference, "raw", out, "vpc"), "{name}");
        let virt = p(dir, "virtual.raw");
        virtual_raw(out, size, &virt);
        let verdict = sgdisk_verify(&virt);
        assert!(verdict.is_clean(), "{name}: {verdict:?}");
        assert_eq!(primary_fields(&virt, 512), primary_fields(reference, 512));
        assert_eq!(
            hashes(&virt, parts),
            before,
            "{name}: partition bytes changed"
        );
        std::fs::remove_file(&virt).unwrap();
        assert_own_check_clean(out);
    }
    assert_eq!(hashes(src, parts), before, "the source changed");
    vec![converted, fixed]
}

#[test]
fn an_odd_sized_sgdisk_disk_matches_sgdisk_e() {
    let d = tempdir();
    let src = p(d.path(), "src.raw");
    // 64.5 MiB, as mkosi sizes disks to their content.
    sgdisk_disk(&src, 64 * MIB + MIB / 2);
    assert!(sgdisk_verify(&src).is_clean());
    let reference_disk = p(d.path(), "ref.raw");
    reference(&src, 65 * MIB, &reference_disk, &["-e"]);
    // sgdisk -e's header: backup on the last LBA, last usable LBA 33 sectors before it.
    let last = 65 * MIB / 512 - 1;
    assert_eq!(primary_fields(&reference_disk, 512), (last, last - 33));
    let outs = convert_and_fix_like(d.path(), &src, &reference_disk, &partitions(&src));
    // Before vhdprep moved it, the padded disk had its backup in the middle: what sgdisk -v
    // and check said of convert's output until now.
    let stale = p(d.path(), "stale.raw");
    sparse_copy(&src, &stale);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_len(65 * MIB)
        .unwrap();
    assert!(sgdisk_verify(&stale).is_only_misplaced_backup());
    // A second fix has nothing to do.
    let again = run(&["fix", "--in-place", outs[1].to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
}

#[test]
fn an_odd_sized_sfdisk_disk_matches_sfdisk_relocate() {
    let d = tempdir();
    let src = p(d.path(), "src.raw");
    sfdisk_disk(&src, 64 * MIB + 3 * MIB / 4);
    let reference_disk = p(d.path(), "ref.raw");
    reference(
        &src,
        65 * MIB,
        &reference_disk,
        &["-q", "--relocate", "gpt-bak-std"],
    );
    convert_and_fix_like(d.path(), &src, &reference_disk, &partitions(&src));
    // sgdisk -e would place the array a MiB before the end (last usable = sectors - first
    // usable LBA 2048), shrinking the usable range: vhdprep follows sfdisk for such tables.
    let sg = p(d.path(), "sg.raw");
    reference(&src, 65 * MIB, &sg, &["-e"]);
    let sectors = 65 * MIB / 512;
    assert_eq!(primary_fields(&sg, 512), (sectors - 1, sectors - 2048));
    assert_eq!(
        primary_fields(&reference_disk, 512),
        (sectors - 1, sectors - 34)
    );
}

#[test]
fn a_disk_just_short_of_a_mib_grows_one_more_so_the_old_backup_stays_whole() {
    let d = tempdir();
    let src = p(d.path(), "src.raw");
    // 16 sectors short of 33 MiB: the new backup (33 sectors) would overlap the old one.
    sgdisk_disk(&src, 33 * MIB - 16 * 512);
    let reference_disk = p(d.path(), "ref.raw");
    reference(&src, 34 * MIB, &reference_disk, &["-e"]);
    convert_and_fix_like(d.path(), &src, &reference_disk, &partitions(&src));
}

#[test]
fn hybrid_mbrs_follow_sgdisk() {
    let d = tempdir();
    // sgdisk -h: 0xEE over LBA 1..2047, the ESP in the MBR too; the 0xEE entry does not reach
    // the end and stays as it is.
    let src = p(d.path(), "hybrid.raw");
    sgdisk_disk(&src, 40 * MIB + 100 * 512);
    sgdisk(&src, &["-h", "1"]);
    let reference_disk = p(d.path(), "ref.raw");
    reference(&src, 41 * MIB, &reference_disk, &["-e"]);
    convert_and_fix_like(d.path(), &src, &reference_disk, &partitions(&src));
    // A second 0xEE entry from after the ESP to the end of the disk (gdisk offers to add one
    // when making a hybrid MBR): sgdisk -e extends it to the new end, and so does vhdprep.
    let tail = p(d.path(), "tail.raw");
    sparse_copy(&src, &tail);
    let sectors = (40 * MIB + 100 * 512) / 512;
    let start = 2048u32 + 16384;
    let chs = vhdprep::partition::gpt::relocate::chs_of;
    let mut e = [0u8; 16];
    e[1..4].copy_from_slice(&chs(u64::from(start)));
    e[4] = 0xee;
    e[5..8].copy_from_slice(&chs(sectors - 1));
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&(sectors as u32 - start).to_le_bytes());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tail)
        .unwrap()
        .write_all_at(&e, 446 + 32)
        .unwrap();
    assert!(sgdisk_verify(&tail).is_clean());
    let reference_disk = p(d.path(), "ref-tail.raw");
    reference(&tail, 41 * MIB, &reference_disk, &["-e"]);
    let mut entry = [0u8; 16];
    std::fs::File::open(&reference_disk)
        .unwrap()
        .read_exact_at(&mut entry, 446 + 32)
        .unwrap();
    assert_eq!(
        u32::from_le_bytes(entry[12..16].try_into().unwrap()),
        (41 * MIB / 512) as u32 - start,
        "sgdisk -e extends the 0xEE entry that reached the end"
    );
    let outs = {
        let sub = p(d.path(), "tail-out");
        std::fs::create_dir(&sub).unwrap();
        let conv = p(&sub, "c.vhd");
        assert!(run(&[
            "convert",
            "-q",
            tail.to_str().unwrap(),
            conv.to_str().unwrap()
        ])
        .status
        .success());
        let fixed = p(&sub, "f.vhd");
        sparse_copy(&tail, &fixed);
        assert!(run(&["fix", "--in-place", fixed.to_str().unwrap()])
            .status
            .success());
        vec![conv, fixed]
    };
    for out in &outs {
        let virt = p(d.path(), "v.raw");
        virtual_raw(out, 41 * MIB, &virt);
        assert!(sgdisk_verify(&virt).is_clean());
        assert!(same_bytes(&virt, &reference_disk), "{}", out.display());
        assert_own_check_clean(out);
    }
}

#[test]
fn the_hybrid_gpt_fixture_keeps_its_boot_code() {
    // The Ubuntu-style fixture (protective MBR with GRUB's boot code, BIOS boot + ESP + root):
    // its first and last MiB (MBR, both GPTs; the filesystems are not needed here, and
    // copying 4 GiB would take a minute), made odd-sized by growing it half a MiB with
    // sgdisk -e.
    let d = tempdir();
    let fixture = PathBuf::from(fixture_raw("hybrid-gpt"));
    let flen = std::fs::metadata(&fixture).unwrap().len();
    let src = p(d.path(), "src.raw");
    let f = std::fs::File::create(&src).unwrap();
    f.set_len(flen + MIB / 2).unwrap();
    for at in [0, flen - MIB] {
        f.write_all_at(&read_bytes(&fixture, at, MIB as usize), at)
            .unwrap();
    }
    drop(f);
    sgdisk(&src, &["-e"]);
    assert!(sgdisk_verify(&src).is_clean());
    let boot_code = read_bytes(&src, 0, 440);
    assert_eq!(boot_code, read_bytes(&fixture, 0, 440));
    assert!(boot_code.iter().any(|&b| b != 0));
    let reference_disk = p(d.path(), "ref.raw");
    let size = (flen + MIB / 2).div_ceil(MIB) * MIB;
    reference(&src, size, &reference_disk, &["-e"]);
    // The partitions' first and last MiB: where the copied bytes are (the rest is holes).
    let ranges: Vec<(u64, u64)> = partitions(&src)
        .iter()
        .flat_map(|&(start, len)| {
            let n = len.min(MIB);
            [(start, n), (start + len - n, n)]
        })
        .collect();
    for out in convert_and_fix_like(d.path(), &src, &reference_disk, &ranges) {
        assert_eq!(read_bytes(&out, 0, 440), boot_code);
    }
}

fn read_bytes(path: &Path, at: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut b, at)
        .unwrap();
    b
}

/// A loop device over a file with 4096-byte logical sectors, detached when dropped: sgdisk
/// cannot be told a sector size for a file, but uses a block device's.
struct Loop(String);

impl Loop {
    fn new(file: &Path) -> Loop {
        let out = tool(
            "losetup",
            "mount",
            &["-f", "--show", "-b", "4096", file.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "losetup (needs root and loop devices): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Loop(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn path(&self) -> &Path {
        Path::new(&self.0)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.0])
            .status();
    }
}

#[test]
fn a_4096_byte_sector_gpt_matches_sgdisk_e_on_a_4kn_loop_device() {
    let d = tempdir();
    let src = p(d.path(), "src.raw");
    std::fs::File::create(&src)
        .unwrap()
        .set_len(40 * MIB + 37 * 4096)
        .unwrap();
    {
        let l = Loop::new(&src);
        sgdisk(l.path(), &["-n1:0:+8M", "-t1:ef00", "-n2:0:0"]);
        assert!(sgdisk_verify(l.path()).is_clean());
    }
    let reference_disk = p(d.path(), "ref.raw");
    sparse_copy(&src, &reference_disk);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&reference_disk)
        .unwrap()
        .set_len(41 * MIB)
        .unwrap();
    {
        let l = Loop::new(&reference_disk);
        sgdisk(l.path(), &["-e"]);
    }
    let last = 41 * MIB / 4096 - 1;
    assert_eq!(primary_fields(&reference_disk, 4096), (last, last - 5));
    for out in ["converted.vhd", "fixed.vhd"].map(|n| p(d.path(), n)) {
        if out.ends_with("converted.vhd") {
            assert!(run(&[
                "convert",
                "-q",
                src.to_str().unwrap(),
                out.to_str().unwrap()
            ])
            .status
            .success());
        } else {
            sparse_copy(&src, &out);
            assert!(run(&["fix", "--in-place", out.to_str().unwrap()])
                .status
                .success());
        }
        assert!(qemu_identical(&reference_disk, "raw", &out, "vpc"));
        let virt = p(d.path(), "virtual.raw");
        virtual_raw(&out, 41 * MIB, &virt);
        assert!(same_bytes(&virt, &reference_disk), "{}", out.display());
        let l = Loop::new(&virt);
        assert!(sgdisk_verify(l.path()).is_clean());
        drop(l);
        // VHD-016 (a VHD shows 512-byte sectors) describes the source, not the writer.
        let report = assert_own_check_clean(&out);
        assert!(report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "VHD-016"));
    }
}

#[test]
fn over_2_tib_the_protective_mbr_is_capped_at_0xffffffff() {
    const TIB: u64 = 1 << 40;
    let d = tempdir();
    // Just over 2 TiB (already capped) and just under it (crossing the cap when padded).
    for (name, len) in [("over", 2 * TIB + MIB / 2), ("under", 2 * TIB - MIB / 2)] {
        let src = p(d.path(), &format!("{name}.raw"));
        std::fs::File::create(&src).unwrap().set_len(len).unwrap();
        sgdisk(&src, &["-n1:2048:+8M", "-n2:0:0"]);
        let size = len.div_ceil(MIB) * MIB;
        let reference_disk = p(d.path(), &format!("{name}-ref.raw"));
        reference(&src, size, &reference_disk, &["-e"]);
        assert_eq!(read_bytes(&reference_disk, 446 + 12, 4), [0xff; 4]);
        let out = p(d.path(), &format!("{name}.vhd"));
        sparse_copy(&src, &out);
        assert!(run(&["fix", "--in-place", out.to_str().unwrap()])
            .status
            .success());
        let conv = p(d.path(), &format!("{name}-c.vhd"));
        assert!(run(&[
            "convert",
            "-q",
            src.to_str().unwrap(),
            conv.to_str().unwrap()
        ])
        .status
        .success());
        for o in [&out, &conv] {
            // qemu-img cannot open fixed VHDs over 2040 GiB: the virtual disk is the file
            // minus its footer, read by sgdisk; the sectors that can differ are compared.
            let virt = p(d.path(), "virtual.raw");
            virtual_raw(o, size, &virt);
            assert!(sgdisk_verify(&virt).is_clean(), "{name}");
            assert_eq!(
                read_bytes(&virt, 0, MIB as usize),
                read_bytes(&reference_disk, 0, MIB as usize)
            );
            assert_eq!(
                read_bytes(&virt, size - 2 * MIB, 2 * MIB as usize),
                read_bytes(&reference_disk, size - 2 * MIB, 2 * MIB as usize),
                "{name}"
            );
            assert_own_check_clean(o);
            std::fs::remove_file(&virt).unwrap();
        }
    }
}

#[test]
fn a_whole_mib_gpt_is_untouched_and_an_mbr_disk_needs_nothing() {
    let d = tempdir();
    let src = p(d.path(), "whole.raw");
    sgdisk_disk(&src, 48 * MIB);
    let orig = read(&src);
    let r = run(&["fix", "--in-place", src.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success() && !text.contains("GPT"), "{text}");
    let bytes = read(&src);
    assert_eq!(bytes.len() as u64, 48 * MIB + 512);
    assert_eq!(bytes[..orig.len()], orig[..], "the disk's bytes changed");
    assert_own_check_clean(&src);
    // An MBR disk of an odd size: the MBR describes its partitions by LBA and nothing lies at
    // the end of the disk, so padding needs nothing else and says nothing about the table.
    let mbr = p(d.path(), "mbr.raw");
    std::fs::File::create(&mbr)
        .unwrap()
        .set_len(30 * MIB + 5 * 512)
        .unwrap();
    let mut child = std::process::Command::new("sfdisk")
        .args(["-q", mbr.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\nsize=8M, type=83\ntype=83\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let orig = read(&mbr);
    let r = run(&["fix", "--in-place", mbr.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success() && !text.contains("note"), "{text}");
    assert_eq!(read(&mbr)[..orig.len()], orig[..]);
    assert_own_check_clean(&mbr);
}

/// Runs fix on a copy of `src`; returns the copy and fix's standard output.
fn fix_copy(dir: &Path, src: &Path, name: &str) -> (PathBuf, String) {
    let out = p(dir, name);
    sparse_copy(src, &out);
    let r = run(&["fix", "--in-place", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    (out, String::from_utf8_lossy(&r.stdout).into_owned())
}

#[test]
fn damaged_or_doubtful_gpts_are_rebuilt_or_left_alone_with_a_note() {
    let d = tempdir();
    let good = p(d.path(), "good.raw");
    let len = 30 * MIB + MIB / 2;
    sgdisk_disk(&good, len);
    let sectors = len / 512;
    let write = |path: &Path, at: u64, bytes: &[u8]| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .write_all_at(bytes, at)
            .unwrap()
    };

    // Backup header damaged (a byte of its disk GUID): the new backup is rebuilt from the
    // primary, and the result is clean.
    let damaged = p(d.path(), "damaged.raw");
    sparse_copy(&good, &damaged);
    let b = read_bytes(&damaged, (sectors - 1) * 512 + 60, 1);
    write(&damaged, (sectors - 1) * 512 + 60, &[b[0] ^ 1]);
    assert!(!sgdisk_verify(&damaged).crcs_match);
    let (out, text) = fix_copy(d.path(), &damaged, "damaged.vhd");
    assert!(text.contains("rebuilt from the primary"), "{text}");
    let virt = p(d.path(), "v.raw");
    virtual_raw(&out, 31 * MIB, &virt);
    assert!(sgdisk_verify(&virt).is_clean());
    assert_own_check_clean(&out);

    // A valid backup that disagrees with the primary (another table's backup spliced in):
    // moving would discard it, so the table stays as it is, with a note.
    let other = p(d.path(), "other.raw");
    std::fs::File::create(&other).unwrap().set_len(len).unwrap();
    sgdisk(&other, &["-n1:2048:+4M", "-n2:0:0"]);
    let doubt = p(d.path(), "doubt.raw");
    sparse_copy(&good, &doubt);
    let tail = read_bytes(&other, (sectors - 33) * 512, 33 * 512);
    write(&doubt, (sectors - 33) * 512, &tail);
    let before = read_bytes(&doubt, 0, 1024);
    let (out, text) = fix_copy(d.path(), &doubt, "doubt.vhd");
    assert!(
        text.contains("note:") && text.contains("disagree"),
        "{text}"
    );
    assert_eq!(read_bytes(&out, 0, 1024), before, "LBA 0 and 1 changed");
    // convert says the same, on stderr, even with -q.
    let conv = p(d.path(), "doubt-c.vhd");
    let r = run(&[
        "convert",
        "-q",
        doubt.to_str().unwrap(),
        conv.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("disagree"));
    assert_eq!(read_bytes(&conv, 0, 1024), before);

    // Primary damaged: Linux would not use the backup; left alone with a note.
    let broken = p(d.path(), "broken.raw");
    sparse_copy(&good, &broken);
    let b = read_bytes(&broken, 512 + 60, 1);
    write(&broken, 512 + 60, &[b[0] ^ 1]);
    let before = read_bytes(&broken, 0, 1024);
    let (out, text) = fix_copy(d.path(), &broken, "broken.vhd");
    assert!(text.contains("primary GPT is unusable"), "{text}");
    assert_eq!(read_bytes(&out, 0, 1024), before);

    // A GPT without a protective MBR: Linux does not read it; left alone with a note.
    let bare = p(d.path(), "bare.raw");
    sparse_copy(&good, &bare);
    write(&bare, 510, &[0, 0]);
    let (out, text) = fix_copy(d.path(), &bare, "bare.vhd");
    assert!(text.contains("no protective MBR"), "{text}");
    assert_eq!(read_bytes(&out, 512, 512), read_bytes(&bare, 512, 512));
}

#[test]
fn dry_run_lists_the_gpt_steps_and_writes_nothing() {
    let d = tempdir();
    let src = p(d.path(), "src.raw");
    sgdisk_disk(&src, 24 * MIB + 7 * 512);
    let before = read(&src);
    let r = run(&["fix", "--dry-run", src.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success());
    for needle in [
        "GPT: the backup moves from LBA 49158 to LBA 51199",
        "1. write a footer describing the old 25169408-byte disk at offset 26214400",
        "2. write the new backup GPT entry array (LBA 51167..=51198)",
        "3. write the new backup GPT header (LBA 51199)",
        "4. write the new footer at offset 26214400 [commit]",
        "5. rewrite the protective MBR (0xEE entry 1: 49158 -> 51199 sectors)",
        "and the primary GPT header (backup LBA 49158 -> 51199, last usable LBA 49125 -> 51166)",
        "dry run: nothing was written",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert_eq!(read(&src), before);
}
