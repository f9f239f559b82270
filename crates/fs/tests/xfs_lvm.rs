//! XFS reader and LVM2 volume layer, cross-checked against the real tools: images are built
//! by `mkfs.xfs -p protofile` and checked against `xfs_db`; LVM PVs are built with
//! `pvcreate`/`vgcreate`/`lvcreate` on loop devices and checked against `lvs`/`pvs`.
//!
//! Needs the Debian packages `xfsprogs` and `lvm2` (and `mount` for `losetup`); the LVM
//! tests need root and loop devices. A missing tool fails the test with the package name.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, FileExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use vhdprep_disk::{FileReader, ReadAt};
use vhdprep_fs::{lvm, xfs, FileKind, FileSystem, FsError, Volume};

// ---------------------------------------------------------------------------------------------
// helpers

fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || ["/sbin", "/usr/sbin"]
            .iter()
            .any(|d| Path::new(d).join(tool).is_file());
    assert!(
        found,
        "`{tool}` not found: install the Debian package `{package}` (apt-get install {package})"
    );
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn open_vol(path: &Path) -> Volume {
    Arc::new(FileReader::new(fs::File::open(path).unwrap()).unwrap())
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// XFS fixtures

/// Special files for the protofile (cannot be created without root on the host tree).
const DEVICES: &[(&str, &str)] = &[
    ("null", "c--666 0 0 1 3"),
    ("sda", "b--660 0 6 8 0"),
    ("fifo", "p--644 0 0"),
];

/// Builds a source tree and returns its root.
fn build_tree(root: &Path) {
    let w = |p: &str, data: &[u8]| fs::write(root.join(p), data).unwrap();
    for d in ["etc", "d5", "d100", "d2000", "d20000", "dev", "empty"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    w("etc/hostname", b"vhdprep-test\n");
    w("etc/zero", b"");
    w("big.bin", &pattern(1, (3 << 20) + 123));
    w("small.bin", &pattern(2, 5000));
    for i in 0..5 {
        w(&format!("d5/f{i}"), format!("file {i}\n").as_bytes());
    }
    for (dir, n) in [("d100", 100), ("d2000", 2000), ("d20000", 20000)] {
        for i in 0..n {
            fs::write(
                root.join(dir)
                    .join(format!("entry_with_a_longish_name_{i:06}")),
                b"",
            )
            .unwrap();
        }
    }
    symlink("/etc/hostname", root.join("short-link")).unwrap();
    let long = format!("/{}", "long_component/".repeat(40));
    symlink(&long, root.join("long-link")).unwrap();
}

/// Writes a protofile for `root`; returns its path. Modes/owners: dirs 755 0 0, files 644
/// 1000 100, except `small.bin` (setuid 4755, 1234:5678).
fn protofile(root: &Path, out: &Path) {
    fn walk(dir: &Path, lines: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let md = fs::symlink_metadata(&p).unwrap();
            if md.file_type().is_symlink() {
                let t = fs::read_link(&p).unwrap();
                lines.push(format!("{name} l--777 0 0 {}", t.display()));
            } else if md.is_dir() {
                lines.push(format!("{name} d--755 0 0"));
                if name == "dev" {
                    for (n, spec) in DEVICES {
                        lines.push(format!("{n} {spec}"));
                    }
                }
                walk(&p, lines);
                lines.push("$".into());
            } else if name == "small.bin" {
                lines.push(format!("{name} -u-755 1234 5678 {}", p.display()));
            } else {
                lines.push(format!("{name} ---644 1000 100 {}", p.display()));
            }
        }
    }
    let mut lines = vec!["/dev/null".to_string(), "0 0".into(), "d--755 0 0".into()];
    walk(root, &mut lines);
    lines.push("$".into());
    fs::write(out, lines.join("\n") + "\n").unwrap();
}

struct XfsImage {
    _dir: tempfile::TempDir,
    src: PathBuf,
    img: PathBuf,
}

fn make_xfs(opts: &[&str]) -> XfsImage {
    require("mkfs.xfs", "xfsprogs");
    require("xfs_db", "xfsprogs");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    build_tree(&src);
    let proto = dir.path().join("proto");
    protofile(&src, &proto);
    let img = dir.path().join("xfs.img");
    fs::File::create(&img).unwrap().set_len(320 << 20).unwrap();
    let mut args = vec!["-q", "-f", "-p", proto.to_str().unwrap()];
    args.extend_from_slice(opts);
    args.push(img.to_str().unwrap());
    run("mkfs.xfs", &args);
    XfsImage {
        _dir: dir,
        src,
        img,
    }
}

fn xfs_db(img: &Path, cmds: &[&str]) -> String {
    let mut args = vec!["-r"];
    for c in cmds {
        args.push("-c");
        args.push(c);
    }
    args.push(img.to_str().unwrap());
    run("xfs_db", &args)
}

/// `xfs_db ls` of a directory: name → (inode, type word), without `.`/`..`.
fn db_ls(img: &Path, dir: &str) -> BTreeMap<Vec<u8>, (u64, String)> {
    let out = xfs_db(img, &[&format!("path {dir}"), "ls"]);
    let mut m = BTreeMap::new();
    for line in out.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let name = f[5].as_bytes().to_vec();
        if name == b"." || name == b".." {
            continue;
        }
        m.insert(name, (f[1].parse().unwrap(), f[2].to_string()));
    }
    m
}

fn db_field(img: &Path, ino: u64, field: &str) -> String {
    let out = xfs_db(img, &[&format!("inode {ino}"), &format!("print {field}")]);
    out.split_once(" = ")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

fn kind_word(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "regular",
        FileKind::Dir => "directory",
        FileKind::Symlink => "symlink",
        FileKind::CharDevice => "chardev",
        FileKind::BlockDevice => "blkdev",
        FileKind::Fifo => "fifo",
        FileKind::Socket => "socket",
        FileKind::Unknown => "unknown",
    }
}

fn check_xfs_image(im: &XfsImage) {
    let fsys = xfs::open(open_vol(&im.img)).expect("open xfs");
    assert_eq!(fsys.fs_type(), "xfs");
    // Directory formats actually exercised, according to xfs_db.
    let fmt = |p: &str| xfs_db(&im.img, &[&format!("path {p}"), "print core.format"]);
    assert!(fmt("/d5").contains("local"), "{}", fmt("/d5"));
    assert!(!fmt("/d100").contains("local"));
    assert!(
        fmt("/d20000").contains("btree"),
        "d20000 is {}",
        fmt("/d20000")
    );

    for dir in [
        "/", "/etc", "/d5", "/d100", "/d2000", "/d20000", "/dev", "/empty",
    ] {
        let ours = fsys
            .read_dir(dir.as_bytes())
            .unwrap_or_else(|e| panic!("read_dir {dir}: {e}"));
        let theirs = db_ls(&im.img, dir);
        assert_eq!(ours.len(), theirs.len(), "{dir}: entry count vs xfs_db ls");
        // Every entry by name and type; inode numbers and kinds by lookup for a sample (a
        // lookup scans the directory, so all 20000 would be quadratic).
        for (i, e) in ours.iter().enumerate() {
            let (ino, word) = theirs
                .get(&e.name)
                .unwrap_or_else(|| panic!("{dir}: {} not in xfs_db ls", e.name_lossy()));
            if word != "unknown" {
                // xfs_db says "unknown" where the entry has no ftype (v4 ftype=0).
                assert_eq!(kind_word(e.kind), word, "{dir}/{}", e.name_lossy());
            }
            if i >= 150 && i % 997 != 0 {
                continue;
            }
            let path = format!("{}/{}", dir.trim_end_matches('/'), e.name_lossy());
            let md = fsys.metadata(path.as_bytes()).unwrap();
            assert_eq!(md.inode, Some(*ino), "{path}");
            assert_eq!(md.kind, e.kind, "{path}: ftype vs inode");
        }
    }
    // Inode fields against xfs_db for a sample of objects.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for p in [
        "/",
        "/etc/hostname",
        "/small.bin",
        "/big.bin",
        "/long-link",
        "/dev/sda",
        "/d20000",
    ] {
        let md = fsys.metadata(p.as_bytes()).unwrap();
        let ino = md.inode.unwrap();
        let mode = u32::from_str_radix(
            db_field(&im.img, ino, "core.mode").trim_start_matches('0'),
            8,
        )
        .unwrap();
        assert_eq!(md.mode, mode & 0o7777, "{p} mode");
        assert_eq!(
            md.uid.to_string(),
            db_field(&im.img, ino, "core.uid"),
            "{p} uid"
        );
        assert_eq!(
            md.gid.to_string(),
            db_field(&im.img, ino, "core.gid"),
            "{p} gid"
        );
        assert_eq!(
            md.size.to_string(),
            db_field(&im.img, ino, "core.size"),
            "{p} size"
        );
        let mt = md.mtime.unwrap();
        assert!(
            (now - 3600..now + 3600).contains(&mt),
            "{p} mtime {mt} vs now {now}"
        );
    }
    let small = fsys.metadata(b"/small.bin").unwrap();
    assert_eq!((small.mode, small.uid, small.gid), (0o4755, 1234, 5678));
    // File contents against the sources.
    for p in ["etc/hostname", "etc/zero", "big.bin", "small.bin", "d5/f3"] {
        let ours = fsys
            .read_file(format!("/{p}").as_bytes(), 64 << 20)
            .unwrap();
        assert_eq!(ours, fs::read(im.src.join(p)).unwrap(), "{p} content");
    }
    let v5 = fsys.superblock().version == 5;
    if v5 {
        // mkfs.xfs 6.1 writes remote symlink blocks without their v5 header: xfs_db reports a
        // CRC error there, and so must we.
        let ino = fsys.metadata(b"/long-link").unwrap().inode.unwrap();
        let out = Command::new("xfs_db")
            .args([
                "-r",
                "-c",
                &format!("inode {ino}"),
                "-c",
                "dblock 0",
                im.img.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let all = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if all.contains("CRC error") {
            assert_corrupt(fsys.read_link(b"/long-link"), "magic");
        } else {
            let ours = fsys.read_link(b"/long-link").unwrap();
            assert_eq!(
                ours,
                fs::read_link(im.src.join("long-link"))
                    .unwrap()
                    .as_os_str()
                    .as_encoded_bytes()
            );
        }
    }
    for p in ["short-link", "long-link"] {
        if v5 && p == "long-link" {
            continue;
        }
        let ours = fsys.read_link(format!("/{p}").as_bytes()).unwrap();
        let theirs = fs::read_link(im.src.join(p)).unwrap();
        assert_eq!(ours, theirs.as_os_str().as_encoded_bytes(), "{p}");
    }
    // Error cases of the contract.
    assert!(matches!(
        fsys.metadata(b"/nope"),
        Err(FsError::NotFound { .. })
    ));
    assert!(matches!(
        fsys.read_dir(b"/etc/hostname/x"),
        Err(FsError::NotADirectory { .. })
    ));
    assert!(matches!(
        fsys.read_file(b"/etc", 100),
        Err(FsError::IsADirectory { .. })
    ));
    assert!(matches!(
        fsys.read_file(b"/big.bin", 100),
        Err(FsError::TooLarge { .. })
    ));
    assert!(matches!(
        fsys.read_link(b"/etc"),
        Err(FsError::NotASymlink { .. })
    ));
}

#[test]
fn xfs_v5_matches_xfs_db() {
    let im = make_xfs(&["-m", "bigtime=1", "-i", "nrext64=1"]);
    check_xfs_image(&im);
}

#[test]
fn xfs_v5_dirblock_8k_matches_xfs_db() {
    let im = make_xfs(&["-n", "size=8192"]);
    check_xfs_image(&im);
}

#[test]
fn xfs_v4_without_ftype_matches_xfs_db() {
    let im = make_xfs(&["-m", "crc=0", "-n", "ftype=0"]);
    check_xfs_image(&im);
}

// ---------------------------------------------------------------------------------------------
// XFS negative tests

fn xfs_db_write(img: &Path, cmds: &[&str]) {
    let mut args = vec!["-x"];
    for c in cmds {
        args.push("-c");
        args.push(c);
    }
    args.push(img.to_str().unwrap());
    run("xfs_db", &args);
}

fn assert_corrupt<T: std::fmt::Debug>(r: Result<T, FsError>, needle: &str) {
    match r {
        Err(FsError::Corrupt { what, .. }) => {
            assert!(what.contains(needle), "expected {needle:?} in {what:?}")
        }
        other => panic!("expected a Corrupt error containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn xfs_damage_is_reported_not_panicked() {
    let im = make_xfs(&[]);
    let fsys = xfs::open(open_vol(&im.img)).unwrap();
    let big_ino = fsys.metadata(b"/big.bin").unwrap().inode.unwrap();
    let host_ino = fsys.metadata(b"/etc/hostname").unwrap().inode.unwrap();
    let inode_byte = fsys.superblock().inode_to_byte(host_ino).unwrap();
    drop(fsys);

    // Superblock CRC: flip a byte of the label.
    let sb_damaged = im.img.with_extension("sb");
    fs::copy(&im.img, &sb_damaged).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&sb_damaged)
        .unwrap()
        .write_all_at(b"X", 110)
        .unwrap();
    assert_corrupt(xfs::open(open_vol(&sb_damaged)).map(|_| ()), "CRC");

    // Inode CRC: flip the uid of /etc/hostname behind xfs_db's back.
    let ino_damaged = im.img.with_extension("ino");
    fs::copy(&im.img, &ino_damaged).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&ino_damaged)
        .unwrap()
        .write_all_at(&[0x55], inode_byte + 9)
        .unwrap();
    let f = xfs::open(open_vol(&ino_damaged)).unwrap();
    assert_corrupt(f.metadata(b"/etc/hostname"), "CRC");
    assert!(f.metadata(b"/big.bin").is_ok());

    // An extent pointing past the volume (xfs_db rewrites the CRC, so only the extent is bad).
    let ext_damaged = im.img.with_extension("ext");
    fs::copy(&im.img, &ext_damaged).unwrap();
    xfs_db_write(
        &ext_damaged,
        &[
            &format!("inode {big_ino}"),
            "write u3.bmx[0].startblock 4000000000",
        ],
    );
    let f = xfs::open(open_vol(&ext_damaged)).unwrap();
    assert_corrupt(f.read_file(b"/big.bin", 64 << 20), "outside");

    // A directory whose second extent maps the same directory block again.
    let loop_damaged = im.img.with_extension("loop");
    fs::copy(&im.img, &loop_damaged).unwrap();
    let d100 = xfs::open(open_vol(&im.img))
        .unwrap()
        .metadata(b"/d100")
        .unwrap()
        .inode
        .unwrap();
    let nex = db_field(&im.img, d100, "core.nextents");
    assert!(nex.parse::<u32>().unwrap() >= 2, "d100 has {nex} extents");
    xfs_db_write(
        &loop_damaged,
        &[&format!("inode {d100}"), "write u3.bmx[1].startoff 0"],
    );
    let f = xfs::open(open_vol(&loop_damaged)).unwrap();
    assert_corrupt(f.read_dir(b"/d100"), "overlap");
}

/// Random byte damage in the metadata of a real image: every operation returns, none panics.
#[test]
fn xfs_random_damage_never_panics() {
    let im = make_xfs(&[]);
    let base = open_vol(&im.img);
    // Metadata lives in the first few MiB (AG 0 headers, inodes, directory blocks).
    let mut head = vec![0u8; 4 << 20];
    base.read_exact_at(&mut head, 0).unwrap();
    let hot: Vec<u64> = (0..head.len())
        .filter(|&i| head[i] != 0)
        .step_by(7)
        .map(|i| i as u64)
        .collect();
    let rng = pattern(99, 4 * 300 * 8);
    for round in 0..300 {
        let mut patches = Vec::new();
        for k in 0..4 {
            let r = u64::from_le_bytes(rng[(round * 4 + k) * 8..][..8].try_into().unwrap());
            patches.push((hot[(r as usize) % hot.len()], (r >> 32) as u8 | 1));
        }
        let vol: Volume = Arc::new(Patched {
            base: base.clone(),
            patches,
        });
        if let Ok(f) = xfs::open(vol) {
            for d in ["/", "/d100", "/d2000", "/etc"] {
                let _ = f.read_dir(d.as_bytes());
            }
            let _ = f.read_file(b"/big.bin", 64 << 20);
            let _ = f.read_link(b"/long-link");
            let _ = f.metadata(b"/d20000/entry_with_a_longish_name_019999");
        }
    }
}

/// A volume with a few bytes XORed.
struct Patched {
    base: Volume,
    patches: Vec<(u64, u8)>,
}

impl ReadAt for Patched {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let n = self.base.read_at(buf, offset)?;
        for &(at, x) in &self.patches {
            if at >= offset && at < offset + n as u64 {
                buf[(at - offset) as usize] ^= x;
            }
        }
        Ok(n)
    }
    fn len(&self) -> u64 {
        self.base.len()
    }
}

// ---------------------------------------------------------------------------------------------
// LVM fixtures

/// Loop devices attached by a test; detached on drop, even when the test fails.
struct Loops(Vec<String>);

impl Loops {
    fn attach(&mut self, file: &Path) -> String {
        let dev = run("losetup", &["-f", "--show", file.to_str().unwrap()])
            .trim()
            .to_string();
        self.0.push(dev.clone());
        dev
    }
}

impl Drop for Loops {
    fn drop(&mut self) {
        for d in self.0.drain(..) {
            let _ = Command::new("losetup").args(["-d", &d]).status();
        }
    }
}

fn lvm_tools() {
    require("losetup", "mount");
    for t in [
        "pvcreate", "vgcreate", "lvcreate", "lvextend", "lvchange", "lvs", "pvs",
    ] {
        require(t, "lvm2");
    }
}

fn unique_vg(tag: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("vhdprep-{tag}-{}-{t}", std::process::id())
}

/// `lvm` without device-mapper (the kernel here has none): metadata is written, nothing
/// activated.
fn lvm(cmd: &str, args: &[&str]) -> String {
    let mut a = vec!["--driverloaded", "n"];
    a.extend_from_slice(args);
    run(cmd, &a)
}

/// A row of `lvs --units b -o lv_name,lv_uuid,lv_size,seg_start,seg_size,stripes,stripe_size,seg_pe_ranges`.
#[derive(Debug)]
struct LvsRow {
    name: String,
    uuid: String,
    size: u64,
    seg_start: u64,
    seg_size: u64,
    stripes: u64,
    stripe_size: u64,
    /// (device, first PE, last PE) per stripe.
    ranges: Vec<(String, u64, u64)>,
}

fn lvs_rows(vg: &str) -> Vec<LvsRow> {
    let out = run(
        "lvs",
        &[
            "--units",
            "b",
            "--nosuffix",
            "--noheadings",
            "--separator",
            "|",
            "-o",
            "lv_name,lv_uuid,lv_size,seg_start,seg_size,stripes,stripe_size,seg_pe_ranges",
            vg,
        ],
    );
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.trim().split('|').collect();
            let ranges = f[7]
                .split_whitespace()
                .map(|r| {
                    let (dev, pes) = r.rsplit_once(':').unwrap();
                    let (a, b) = pes.split_once('-').unwrap();
                    (dev.to_string(), a.parse().unwrap(), b.parse().unwrap())
                })
                .collect();
            LvsRow {
                name: f[0].into(),
                uuid: f[1].into(),
                size: f[2].parse().unwrap(),
                seg_start: f[3].parse().unwrap(),
                seg_size: f[4].parse().unwrap(),
                stripes: f[5].parse().unwrap(),
                stripe_size: f[6].parse().unwrap(),
                ranges,
            }
        })
        .collect()
}

/// dev → (pe_start bytes, PV uuid) from `pvs`.
fn pvs_info(vg: &str) -> BTreeMap<String, (u64, String)> {
    let out = run(
        "pvs",
        &[
            "--units",
            "b",
            "--nosuffix",
            "--noheadings",
            "--separator",
            "|",
            "-o",
            "pv_name,pe_start,pv_uuid,vg_name",
        ],
    );
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split('|').collect();
            (f.len() == 4 && f[3] == vg)
                .then(|| (f[0].to_string(), (f[1].parse().unwrap(), f[2].to_string())))
        })
        .collect()
}

/// The 16 bytes a test writes at every 512-byte sector of an LV: LV name hash + sector.
fn stamp(lv: &str, sector: u64) -> [u8; 16] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in lv.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&h.to_le_bytes());
    s[8..].copy_from_slice(&sector.to_le_bytes());
    s
}

#[test]
fn lvm_linear_multisegment_and_striped_lvs_match_lvs() {
    lvm_tools();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("pv{i}.img")))
        .collect();
    for f in &files {
        fs::File::create(f).unwrap().set_len(64 << 20).unwrap();
    }
    let vg = unique_vg("lin");
    let (rows, pvinfo, dev_to_file);
    {
        let mut loops = Loops(Vec::new());
        let devs: Vec<String> = files.iter().map(|f| loops.attach(f)).collect();
        dev_to_file = devs
            .iter()
            .cloned()
            .zip(files.iter().cloned())
            .collect::<BTreeMap<_, _>>();
        lvm("pvcreate", &[&devs[0], &devs[1]]);
        lvm("vgcreate", &["-s", "1m", &vg, &devs[0], &devs[1]]);
        lvm(
            "lvcreate",
            &["-an", "-Zn", "-L", "4m", "-n", "lva", &vg, &devs[0]],
        );
        lvm(
            "lvcreate",
            &["-an", "-Zn", "-L", "3m", "-n", "lvb", &vg, &devs[0]],
        );
        lvm("lvextend", &["-L", "+5m", &format!("{vg}/lva"), &devs[0]]);
        lvm(
            "lvcreate",
            &[
                "-an", "-Zn", "-i", "2", "-I", "64k", "-L", "8m", "-n", "striped", &vg,
            ],
        );
        lvm("lvcreate", &["-an", "-Zn", "-L", "70m", "-n", "lv-c", &vg]);
        rows = lvs_rows(&vg);
        pvinfo = pvs_info(&vg);
        // loops detached here (Drop), before we write the image files directly.
    }
    assert_eq!(pvinfo.len(), 2, "pvs: {pvinfo:?}");
    let extent = 1u64 << 20;
    // Stamp every sector of every LV at the PV offsets LVM reports.
    let handles: BTreeMap<String, fs::File> = dev_to_file
        .iter()
        .map(|(d, f)| {
            (
                d.clone(),
                fs::OpenOptions::new().write(true).open(f).unwrap(),
            )
        })
        .collect();
    for r in &rows {
        assert_eq!(r.ranges.len() as u64, r.stripes);
        let ss = if r.stripes > 1 {
            r.stripe_size
        } else {
            r.seg_size
        };
        let mut off = 0;
        while off < r.seg_size {
            let chunk = off / ss;
            let within = off % ss;
            let (dev, pe0, _) = &r.ranges[(chunk % r.stripes) as usize];
            let pv_off = pvinfo[dev].0 + pe0 * extent + (chunk / r.stripes) * ss + within;
            let lv_sector = (r.seg_start + off) / 512;
            handles[dev]
                .write_all_at(&stamp(&r.name, lv_sector), pv_off)
                .unwrap();
            off += 512;
        }
    }
    drop(handles);

    let pvs: Vec<_> = files
        .iter()
        .map(|f| lvm::read_pv(open_vol(f)).unwrap().expect("LVM label"))
        .collect();
    for pv in &pvs {
        assert!(
            pvinfo.values().any(|(_, u)| *u == pv.uuid()),
            "PV uuid {} not in pvs",
            pv.uuid()
        );
    }
    let lvs = lvm::assemble(pvs.clone()).unwrap();
    let mut names: Vec<&str> = lvs.iter().map(|l| l.lv_name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["lv-c", "lva", "lvb", "striped"]);
    assert!(
        rows.iter().any(|r| r.name == "lva" && r.seg_start > 0),
        "lva has two segments"
    );
    let c_devs: std::collections::BTreeSet<_> = rows
        .iter()
        .filter(|r| r.name == "lv-c")
        .map(|r| r.ranges[0].0.clone())
        .collect();
    assert_eq!(c_devs.len(), 2, "lv-c spans both PVs: {rows:?}");
    for lv in &lvs {
        let row = rows.iter().find(|r| r.name == lv.lv_name).unwrap();
        assert_eq!(lv.vg_name, vg);
        assert_eq!(lv.size, row.size, "{} size", lv.lv_name);
        assert_eq!(lv.uuid, row.uuid, "{} uuid", lv.lv_name);
        assert_eq!(lv.volume.len(), lv.size);
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0;
        while off < lv.size {
            let n = buf.len().min((lv.size - off) as usize);
            lv.volume.read_exact_at(&mut buf[..n], off).unwrap();
            for s in (0..n).step_by(512) {
                let sector = (off + s as u64) / 512;
                assert_eq!(
                    buf[s..s + 16],
                    stamp(&lv.lv_name, sector),
                    "{} sector {sector}",
                    lv.lv_name
                );
            }
            off += n as u64;
        }
    }
    let c = lvs.iter().find(|l| l.lv_name == "lv-c").unwrap();
    assert_eq!(c.dm_name(), format!("{}-lv--c", vg.replace('-', "--")));

    // Only the first PV: LVs wholly on it still map; the others are reported with the reason.
    let vgs = lvm::assemble_vgs(vec![pvs[0].clone()]).unwrap();
    assert_eq!(vgs.len(), 1);
    assert_eq!(vgs[0].missing_pvs.len(), 1);
    let un: Vec<_> = vgs[0]
        .unavailable
        .iter()
        .map(|u| u.lv_name.as_str())
        .collect();
    assert!(un.contains(&"striped"), "{un:?}");
    for u in &vgs[0].unavailable {
        assert!(u.error.to_string().contains("missing"), "{}", u.error);
    }
    assert!(vgs[0].lvs.iter().any(|l| l.lv_name == "lva"));
}

#[test]
fn lvm_wrapped_metadata_area_reads_newest_text() {
    lvm_tools();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pv.img");
    fs::File::create(&file).unwrap().set_len(32 << 20).unwrap();
    let vg = unique_vg("wrap");
    let seqno;
    {
        let mut loops = Loops(Vec::new());
        let dev = loops.attach(&file);
        lvm("pvcreate", &["--metadatasize", "64k", &dev]);
        lvm("vgcreate", &["-s", "1m", &vg, &dev]);
        lvm("lvcreate", &["-an", "-Zn", "-L", "4m", "-n", "lv0", &vg]);
        let mut wrapped = false;
        for i in 0..400 {
            let tag = format!("tag_{i:04}_{}", "x".repeat(40));
            lvm("lvchange", &["--addtag", &tag, &format!("{vg}/lv0")]);
            // Stop once the committed text wraps around the end of the area.
            let pv = lvm::read_pv(open_vol(&file)).unwrap().unwrap();
            let mda = pv.header.metadata_areas[0];
            let loc = lvm::label::read_mda_header(&pv.volume, mda)
                .unwrap()
                .unwrap();
            if loc.offset + loc.size > mda.size && i > 5 {
                wrapped = true;
                break;
            }
        }
        assert!(wrapped, "metadata never wrapped around the 64 KiB area");
        let out = run("vgs", &["--noheadings", "-o", "vg_seqno", &vg]);
        seqno = out.trim().parse::<i64>().unwrap();
    }
    let pv = lvm::read_pv(open_vol(&file)).unwrap().unwrap();
    let m = pv.metadata.as_ref().unwrap();
    assert_eq!(m.vg_name, vg);
    assert_eq!(m.seqno, seqno, "seqno vs vgs");
    let lv =
        m.vg.section("logical_volumes")
            .unwrap()
            .section("lv0")
            .unwrap();
    let tags = lv.list("tags").unwrap();
    assert_eq!(
        tags.len() as i64,
        seqno - 2,
        "one tag per update after vgcreate+lvcreate"
    );
    let lvs = lvm::assemble(vec![pv]).unwrap();
    assert_eq!(lvs.len(), 1);
    assert_eq!(lvs[0].size, 4 << 20);
}

#[test]
fn lvm_hostile_metadata_is_rejected() {
    use lvm::metadata::parse;
    assert!(parse("vg { ".repeat(100).as_bytes()).is_err());
    assert!(parse(format!("a = {}", "[".repeat(1 << 16)).as_bytes()).is_err());
    assert!(parse(b"vg { extent_size = 184467440737095516160 }").is_err());
    assert!(parse(&vec![b'a'; 17 << 20]).is_err());
    // Not an LVM PV: no label, no error.
    let blank: Volume = Arc::new(vec![0u8; 1 << 20]);
    assert!(lvm::read_pv(blank).unwrap().is_none());
    // A label with a bad CRC.
    let mut bad = vec![0u8; 1 << 20];
    bad[512..520].copy_from_slice(b"LABELONE");
    bad[520..528].copy_from_slice(&1u64.to_le_bytes());
    bad[536..544].copy_from_slice(b"LVM2 001");
    assert!(matches!(
        lvm::read_pv(Arc::new(bad)),
        Err(FsError::Corrupt { .. })
    ));
}
