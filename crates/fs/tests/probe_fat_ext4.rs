//! The probe, FAT and ext4 readers against the real tools: images built with mkfs.*,
//! mtools, mkswap, pvcreate, cryptsetup, mksquashfs, xorriso, mkudffs, mkntfs; answers
//! compared with `blkid -p`, `debugfs`, `mdir`/`mtype` and the source trees, never with
//! ourselves. A missing tool fails the test with the Debian package to install.

mod common_pfe;

use common_pfe::{blkid, noise, run, run_env, sparse, tool, volume, Loop};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhdprep_fs::probe::{probe, Probe};
use vhdprep_fs::{ext4, fat, FileKind, FileSystem, FsError, Volume};

const E2FS: &str = "e2fsprogs";
const DOSFS: &str = "dosfstools";
const MTOOLS: &str = "mtools";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Probes `img` and checks TYPE, UUID and LABEL against `blkid -p -o export`.
fn check_probe(img: &Path, want: &str) -> Probe {
    let b = blkid(img);
    let p = probe(&*volume(img))
        .unwrap()
        .unwrap_or_else(|| panic!("probe found nothing in {img:?}; blkid says {b:?}"));
    assert_eq!(
        Some(p.fs_type),
        b.get("TYPE").map(String::as_str),
        "TYPE; blkid {b:?}"
    );
    assert_eq!(p.fs_type, want);
    assert_eq!(
        p.uuid.as_deref(),
        b.get("UUID").map(String::as_str),
        "UUID; blkid {b:?}"
    );
    assert_eq!(
        p.label.as_deref(),
        b.get("LABEL").map(String::as_str),
        "LABEL; blkid {b:?}"
    );
    p
}

#[test]
fn probe_ext2_ext3_ext4_like_blkid() {
    let d = tempfile::tempdir().unwrap();
    for (mkfs, extra, want) in [
        ("mkfs.ext2", "", "ext2"),
        ("mkfs.ext3", "", "ext3"),
        ("mkfs.ext4", "", "ext4"),
        ("mkfs.ext4", "^has_journal", "ext4"),
        ("mkfs.ext4", "^metadata_csum,^64bit", "ext4"),
    ] {
        let img = d.path().join(format!("{want}.img"));
        sparse(&img, 4 << 20);
        let label = format!("lbl-{want}");
        let mut args = vec!["-q", "-F", "-L", &label, s(&img)];
        if !extra.is_empty() {
            args.splice(0..0, ["-O", extra]);
        }
        run(mkfs, E2FS, &args);
        let p = check_probe(&img, want);
        assert_eq!(p.size, Some(4 << 20), "{mkfs} {extra}");
        assert!(
            matches!(p.block_size, Some(1024 | 4096)),
            "{:?}",
            p.block_size
        );
    }
}

#[test]
fn probe_xfs_btrfs_like_blkid() {
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("xfs.img");
    sparse(&img, 300 << 20);
    run("mkfs.xfs", "xfsprogs", &["-q", "-L", "xfslbl", s(&img)]);
    let p = check_probe(&img, "xfs");
    assert_eq!(p.size, Some(300 << 20));
    assert_eq!(p.block_size, Some(4096));

    let img = d.path().join("btrfs.img");
    sparse(&img, 128 << 20);
    run(
        "mkfs.btrfs",
        "btrfs-progs",
        &["-q", "-L", "btr lbl", s(&img)],
    );
    let p = check_probe(&img, "btrfs");
    assert_eq!(p.size, Some(128 << 20));
}

#[test]
fn probe_vfat_12_16_32_like_blkid() {
    let d = tempfile::tempdir().unwrap();
    for (bits, mib, label) in [
        ("12", 4u64, Some("ESP12")),
        ("16", 20, Some("DATA 16")),
        ("32", 40, Some("EFISYS")),
        ("12", 2, None),
        ("32", 40, None),
    ] {
        let img = d.path().join(format!("fat{bits}-{}.img", label.is_some()));
        sparse(&img, mib << 20);
        let mut args = vec!["-F", bits, "-i", "1234ABCD"];
        if let Some(l) = label {
            args.extend(["-n", l]);
        }
        args.push(s(&img));
        run("mkfs.vfat", DOSFS, &args);
        let p = check_probe(&img, "vfat");
        assert_eq!(p.uuid.as_deref(), Some("1234-ABCD"));
        assert_eq!(p.label.as_deref(), label);
        assert_eq!(p.size, Some(mib << 20));
        // And the reader agrees on the variant blkid reports.
        let fs = fat::open(volume(&img)).unwrap();
        assert_eq!(
            fs.fat_variant(),
            blkid(&img)["VERSION"].as_str(),
            "FAT variant"
        );
    }
}

#[test]
fn probe_swap_lvm_luks_like_blkid() {
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("swap.img");
    sparse(&img, 1 << 20);
    run(
        "mkswap",
        "util-linux (mkswap)",
        &[
            "-L",
            "swaplbl",
            "-U",
            "0b6c1e5e-8a3a-4c1e-9a51-3d1f3c2b4a11",
            s(&img),
        ],
    );
    let p = check_probe(&img, "swap");
    assert_eq!(
        p.uuid.as_deref(),
        Some("0b6c1e5e-8a3a-4c1e-9a51-3d1f3c2b4a11")
    );
    assert_eq!(p.size, Some(1 << 20));

    // LVM refuses plain files: attach a loop device for pvcreate only.
    let img = d.path().join("pv.img");
    sparse(&img, 8 << 20);
    {
        let lo = Loop::attach(&img);
        run("pvcreate", "lvm2", &["-ff", "-y", "-q", &lo.0]);
    }
    let p = check_probe(&img, "LVM2_member");
    assert_eq!(p.uuid.as_ref().map(String::len), Some(38));
    assert_eq!(p.size, Some(8 << 20));

    let key = d.path().join("key");
    std::fs::write(&key, b"not a secret").unwrap();
    for (ty, label) in [("luks2", Some("cryptroot")), ("luks1", None)] {
        let img = d.path().join(format!("{ty}.img"));
        sparse(&img, 20 << 20);
        let mut args = vec![
            "luksFormat",
            "--batch-mode",
            "--type",
            ty,
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            s(&key),
        ];
        if let Some(l) = label {
            args.extend(["--label", l]);
        }
        args.push(s(&img));
        run("cryptsetup", "cryptsetup-bin", &args);
        let p = check_probe(&img, "crypto_LUKS");
        assert_eq!(p.label.as_deref(), label);
        assert!(p.uuid.is_some());
    }
}

#[test]
fn probe_squashfs_iso_udf_ntfs_like_blkid() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("dir")).unwrap();
    std::fs::write(src.join("dir/file.txt"), b"hello").unwrap();

    let img = d.path().join("sq.img");
    run(
        "mksquashfs",
        "squashfs-tools",
        &[s(&src), s(&img), "-quiet", "-noappend"],
    );
    let p = check_probe(&img, "squashfs");
    assert_eq!(
        p.size.map(|x| x <= std::fs::metadata(&img).unwrap().len()),
        Some(true)
    );

    for (name, joliet) in [("plain", false), ("joliet", true)] {
        let img = d.path().join(format!("{name}.iso"));
        let mut args = vec![
            "-as",
            "mkisofs",
            "-quiet",
            "-V",
            "CIDATA_VOLUME_LABEL_X",
            "-o",
            s(&img),
        ];
        if joliet {
            args.insert(2, "-J");
        }
        args.push(s(&src));
        run("xorriso", "xorriso", &args);
        check_probe(&img, "iso9660");
    }

    let img = d.path().join("udf.img");
    sparse(&img, 8 << 20);
    run(
        "mkudffs",
        "udftools",
        &[
            "--media-type=hd",
            "--blocksize=2048",
            "--label=udflabel",
            s(&img),
        ],
    );
    check_probe(&img, "udf");

    let img = d.path().join("ntfs.img");
    sparse(&img, 16 << 20);
    run(
        "mkfs.ntfs",
        "ntfs-3g",
        &["-F", "-Q", "-q", "-L", "Windows Data", s(&img)],
    );
    let p = check_probe(&img, "ntfs");
    assert_eq!(p.label.as_deref(), Some("Windows Data"));
}

#[test]
fn probe_garbage_zeros_and_truncation_find_nothing() {
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("garbage.img");
    std::fs::write(&img, noise(2 << 20, 7)).unwrap();
    assert_eq!(
        blkid(&img).get("TYPE"),
        None,
        "blkid sees something in noise"
    );
    assert_eq!(probe(&*volume(&img)).unwrap(), None);
    assert!(fat::open(volume(&img)).is_err());
    assert!(ext4::open(volume(&img)).is_err());
    let zeros: Volume = Arc::new(vec![0u8; 1 << 20]);
    assert_eq!(probe(&*zeros).unwrap(), None);
    // A superblock cut in half.
    let img = d.path().join("ext4.img");
    sparse(&img, 4 << 20);
    run("mkfs.ext4", E2FS, &["-q", "-F", s(&img)]);
    let mut bytes = std::fs::read(&img).unwrap();
    bytes.truncate(1500);
    let v: Volume = Arc::new(bytes);
    assert_eq!(probe(&*v).unwrap(), None);
    assert!(ext4::open(v).is_err());
}

// ---------------------------------------------------------------------------------------
// ext4

/// A source tree with the awkward cases: nested dirs, absolute/relative/dangling/dir
/// symlinks, a 1 MiB file, a non-UTF-8 name, hard links, owners, set-uid, a FIFO, a big dir.
fn make_tree(root: &Path) {
    use std::os::unix::fs::symlink;
    let w = |p: &str, data: &[u8]| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    w("etc/hosts", b"127.0.0.1 localhost\n");
    w("etc/fstab", b"UUID=x / ext4 defaults 0 1\n");
    w("etc/ssh/sshd_config", b"PasswordAuthentication no\n");
    std::fs::set_permissions(
        root.join("etc/ssh/sshd_config"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    w("home/user/.profile", b"export X=1\n");
    std::os::unix::fs::chown(root.join("home/user"), Some(1000), Some(1000)).unwrap();
    std::os::unix::fs::chown(root.join("home/user/.profile"), Some(1000), Some(1001)).unwrap();
    w("big.bin", &noise(1 << 20, 42));
    w("a/b/c/d/deep.txt", b"deep\n");
    symlink("/etc/hosts", root.join("abs_link")).unwrap();
    symlink("etc/hosts", root.join("rel_link")).unwrap();
    symlink("../../etc/hosts", root.join("a/b/up_link")).unwrap();
    symlink("etc", root.join("dir_link")).unwrap();
    symlink("/nonexistent/target", root.join("dangling")).unwrap();
    let long_target = "x".repeat(200);
    symlink(&long_target, root.join("slow_link")).unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(root.join(odd), b"latin-1 name\n").unwrap();
    w("hard1", b"hard linked\n");
    std::fs::hard_link(root.join("hard1"), root.join("a/hard2")).unwrap();
    w("usr/bin/su", b"#!/bin/false\n");
    std::fs::set_permissions(
        root.join("usr/bin/su"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::create_dir(root.join("empty")).unwrap();
    for i in 0..300 {
        w(&format!("many/file-{i:03}"), format!("{i}\n").as_bytes());
    }
    run("mkfifo", "coreutils", &[s(&root.join("fifo"))]);
}

fn kind_of(m: &std::fs::Metadata) -> FileKind {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_dir() {
        FileKind::Dir
    } else if t.is_file() {
        FileKind::File
    } else if t.is_fifo() {
        FileKind::Fifo
    } else {
        FileKind::Unknown
    }
}

/// Walks the source tree and checks every object against the image.
fn compare_with_source(fs: &dyn FileSystem, src: &Path, guest: &[u8], count: &mut usize) {
    let mut names: BTreeSet<Vec<u8>> = BTreeSet::new();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().as_bytes().to_vec();
        names.insert(name.clone());
        let mut gp = guest.to_vec();
        if gp != b"/" {
            gp.push(b'/');
        }
        gp.extend_from_slice(&name);
        let shown = String::from_utf8_lossy(&gp).into_owned();
        let sm = std::fs::symlink_metadata(e.path()).unwrap();
        let m = fs.metadata(&gp).unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert_eq!(m.kind, kind_of(&sm), "{shown}");
        assert_eq!(m.mode, sm.mode() & 0o7777, "{shown}");
        assert_eq!((m.uid, m.gid), (sm.uid(), sm.gid()), "{shown}");
        assert_eq!(m.mtime, Some(sm.mtime()), "{shown}");
        *count += 1;
        match m.kind {
            FileKind::File => {
                assert_eq!(m.size, sm.len(), "{shown}");
                assert_eq!(
                    fs.read_file(&gp, u64::MAX).unwrap(),
                    std::fs::read(e.path()).unwrap(),
                    "{shown}"
                );
            }
            FileKind::Symlink => {
                let t = std::fs::read_link(e.path()).unwrap();
                assert_eq!(
                    fs.read_link(&gp).unwrap(),
                    t.as_os_str().as_bytes(),
                    "{shown}"
                );
                assert_eq!(m.size, t.as_os_str().len() as u64, "{shown}");
            }
            FileKind::Dir => compare_with_source(fs, &e.path(), &gp, count),
            _ => {}
        }
    }
    let ours: BTreeSet<Vec<u8>> = fs
        .read_dir(guest)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .filter(|n| !(guest == b"/" && n == b"lost+found"))
        .collect();
    assert_eq!(ours, names, "listing of {}", String::from_utf8_lossy(guest));
}

/// `debugfs -R 'ls -p DIR'`: name → (mode with type bits, uid, gid, size).
fn debugfs_ls(img: &Path, dir: &[u8]) -> BTreeMap<Vec<u8>, (u32, u32, u32, Option<u64>)> {
    let mut req = b"ls -p ".to_vec();
    req.extend_from_slice(dir);
    let req = std::ffi::OsString::from(std::ffi::OsStr::from_bytes(&req));
    let out = std::process::Command::new(tool("debugfs", E2FS))
        .arg("-R")
        .arg(req)
        .arg(img)
        .output()
        .unwrap();
    let mut map = BTreeMap::new();
    for line in out.stdout.split(|&b| b == b'\n') {
        // /inode/mode/uid/gid/name/size/
        let f: Vec<&[u8]> = line.split(|&b| b == b'/').collect();
        if f.len() < 7 || f[5].is_empty() || f[5] == b"." || f[5] == b".." || f[1] == b"0" {
            continue;
        }
        let num = |x: &[u8]| String::from_utf8_lossy(x).trim().to_string();
        map.insert(
            f[5].to_vec(),
            (
                u32::from_str_radix(&num(f[2]), 8).unwrap(),
                num(f[3]).parse().unwrap(),
                num(f[4]).parse().unwrap(),
                // Empty for directories.
                num(f[6]).parse().ok(),
            ),
        );
    }
    map
}

fn compare_with_debugfs(fs: &dyn FileSystem, img: &Path, dir: &[u8]) -> usize {
    let want = debugfs_ls(img, dir);
    assert!(
        dir != b"/" || !want.is_empty(),
        "debugfs listed nothing in /"
    );
    let ours = fs.read_dir(dir).unwrap();
    let names: BTreeSet<_> = ours.iter().map(|e| e.name.clone()).collect();
    assert_eq!(
        names,
        want.keys().cloned().collect(),
        "names in {}",
        String::from_utf8_lossy(dir)
    );
    let mut n = 0;
    for e in ours {
        let mut p = dir.to_vec();
        if p != b"/" {
            p.push(b'/');
        }
        p.extend_from_slice(&e.name);
        let m = fs.metadata(&p).unwrap();
        let (mode, uid, gid, size) = want[&e.name];
        let shown = String::from_utf8_lossy(&p).into_owned();
        assert_eq!(m.mode, mode & 0o7777, "{shown}");
        let ty = match mode & 0o170000 {
            0o040000 => FileKind::Dir,
            0o100000 => FileKind::File,
            0o120000 => FileKind::Symlink,
            0o010000 => FileKind::Fifo,
            _ => FileKind::Unknown,
        };
        assert_eq!((m.kind, e.kind), (ty, ty), "{shown}");
        assert_eq!((m.uid, m.gid), (uid, gid), "{shown}");
        if let Some(size) = size {
            assert_eq!(m.size, size, "{shown}");
        }
        n += 1;
        if ty == FileKind::Dir {
            n += compare_with_debugfs(fs, img, &p);
        }
    }
    n
}

fn ext_image(mkfs: &str, dir: &Path, src: &Path) -> std::path::PathBuf {
    let img = dir.join(format!("{mkfs}.img"));
    sparse(&img, 16 << 20);
    run(
        mkfs,
        E2FS,
        &["-q", "-F", "-L", "root", "-d", s(src), s(&img)],
    );
    img
}

#[test]
fn ext2_ext3_ext4_match_source_tree_and_debugfs() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("tree");
    make_tree(&src);
    for mkfs in ["mkfs.ext4", "mkfs.ext3", "mkfs.ext2"] {
        let img = ext_image(mkfs, d.path(), &src);
        let fs = ext4::open(volume(&img)).unwrap_or_else(|e| panic!("{mkfs}: {e}"));
        assert_eq!(fs.label(), Some("root"));
        assert_eq!(Some(fs.uuid()), blkid(&img).get("UUID").map(String::as_str));
        let mut n = 0;
        compare_with_source(&fs, &src, b"/", &mut n);
        assert!(n > 320, "{mkfs}: compared only {n} objects");
        let m = compare_with_debugfs(&fs, &img, b"/");
        assert!(m > 320, "{mkfs}: debugfs compared only {m}");
        let root = fs.metadata(b"/").unwrap();
        assert_eq!(root.kind, FileKind::Dir);
    }
}

#[test]
fn ext4_never_follows_symlinks_and_maps_errors() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("tree");
    make_tree(&src);
    let img = ext_image("mkfs.ext4", d.path(), &src);
    let fs = ext4::open(volume(&img)).unwrap();
    assert_eq!(fs.metadata(b"/abs_link").unwrap().kind, FileKind::Symlink);
    assert_eq!(fs.metadata(b"/dir_link").unwrap().kind, FileKind::Symlink);
    assert_eq!(fs.metadata(b"/dangling").unwrap().kind, FileKind::Symlink);
    assert_eq!(fs.read_link(b"/a/b/up_link").unwrap(), b"../../etc/hosts");
    assert!(matches!(
        fs.read_dir(b"/dir_link"),
        Err(FsError::NotADirectory { .. })
    ));
    assert!(matches!(
        fs.metadata(b"/dir_link/hosts"),
        Err(FsError::NotADirectory { .. })
    ));
    assert!(matches!(
        fs.read_file(b"/dir_link/hosts", 100),
        Err(FsError::NotADirectory { .. })
    ));
    assert!(matches!(
        fs.read_file(b"/abs_link", 100),
        Err(FsError::Unsupported { .. })
    ));
    assert!(matches!(
        fs.read_file(b"/big.bin", 1000),
        Err(FsError::TooLarge { size: 1048576, .. })
    ));
    assert!(matches!(
        fs.read_file(b"/etc", 1000),
        Err(FsError::IsADirectory { .. })
    ));
    assert!(matches!(
        fs.read_link(b"/etc/hosts"),
        Err(FsError::NotASymlink { .. })
    ));
    assert!(matches!(
        fs.metadata(b"/nope"),
        Err(FsError::NotFound { .. })
    ));
    assert!(matches!(
        fs.metadata(b"/etc/hosts/x"),
        Err(FsError::NotADirectory { .. })
    ));
    assert!(matches!(
        fs.read_dir(b"/etc/hosts"),
        Err(FsError::NotADirectory { .. })
    ));
    assert!(matches!(
        fs.read_file(b"/fifo", 100),
        Err(FsError::Unsupported { .. })
    ));
    // Hostile paths.
    let deep = b"/a".repeat(3000);
    let t = Instant::now();
    assert!(fs.metadata(&deep).is_err());
    assert!(fs.metadata(b"/etc/../etc/hosts").is_err());
    assert!(fs.metadata(b"/etc/\0").is_err());
    assert!(fs.metadata(&[b'x'; 5000]).is_err());
    assert!(t.elapsed() < Duration::from_secs(5));
    // Usable from several threads at once.
    let fs = Arc::new(fs);
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let fs = fs.clone();
            std::thread::spawn(move || fs.read_file(b"/etc/hosts", 100).unwrap())
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), b"127.0.0.1 localhost\n");
    }
}

// ---------------------------------------------------------------------------------------
// FAT

struct FatImage {
    img: std::path::PathBuf,
    src: std::path::PathBuf,
}

fn fat_image(d: &Path, bits: &str, mib: u64, extra: &[&str]) -> FatImage {
    let img = d.join(format!("fat{bits}.img"));
    let src = d.join(format!("src{bits}"));
    std::fs::create_dir_all(&src).unwrap();
    sparse(&img, mib << 20);
    let mut args = vec!["-F", bits, "-n", "ESP"];
    args.extend_from_slice(extra);
    args.push(s(&img));
    run("mkfs.vfat", DOSFS, &args);
    let i = s(&img);
    for dir in ["::/EFI", "::/EFI/BOOT", "::/EFI/debian", "::/MixedCase"] {
        run("mmd", MTOOLS, &["-i", i, dir]);
    }
    let files: [(&str, Vec<u8>); 6] = [
        ("EFI/BOOT/BOOTX64.EFI", noise(100_000, 1)),
        ("EFI/debian/grubx64.efi", noise(3000, 2)),
        ("EFI/debian/grub.cfg", b"search.fs_uuid x root\n".to_vec()),
        (
            "MixedCase/A Long File Name With Spaces.txt",
            b"long\n".to_vec(),
        ),
        ("lower.txt", b"lower\n".to_vec()),
        ("ReadOnly.TXT", b"ro\n".to_vec()),
    ];
    for (p, data) in &files {
        let sp = src.join(p.replace('/', "_"));
        std::fs::write(&sp, data).unwrap();
        run_env(
            "mcopy",
            MTOOLS,
            &["-m", "-i", i, s(&sp), &format!("::/{p}")],
            &[],
        );
    }
    run("mattrib", MTOOLS, &["-i", i, "+r", "::/ReadOnly.TXT"]);
    FatImage { img, src }
}

/// `mdir -b` of a directory: names (long where there is one) with a trailing `/` on dirs.
fn mdir(img: &Path, dir: &str) -> BTreeSet<(Vec<u8>, bool)> {
    let out = run("mdir", MTOOLS, &["-b", "-i", s(img), &format!("::{dir}")]);
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let rest = l.rsplit_once('/').map_or(l, |_| l);
            let is_dir = rest.ends_with('/');
            let trimmed = rest.trim_end_matches('/');
            let name = trimmed.rsplit('/').next().unwrap();
            (name.as_bytes().to_vec(), is_dir)
        })
        .collect()
}

fn check_fat_tree(fs: &dyn FileSystem, img: &Path, dir: &str) -> usize {
    let want = mdir(img, dir);
    let ours: BTreeSet<(Vec<u8>, bool)> = fs
        .read_dir(dir.as_bytes())
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.kind == FileKind::Dir))
        .collect();
    assert_eq!(ours, want, "listing of {dir}");
    let mut n = 0;
    for (name, is_dir) in want {
        let p = format!(
            "{}/{}",
            dir.trim_end_matches('/'),
            String::from_utf8(name).unwrap()
        );
        let m = fs.metadata(p.as_bytes()).unwrap();
        n += 1;
        if is_dir {
            assert_eq!((m.kind, m.mode), (FileKind::Dir, 0o755), "{p}");
            n += check_fat_tree(fs, img, &p);
        } else {
            let mtype = run("mtype", MTOOLS, &["-i", s(img), &format!("::{p}")]);
            let ours = fs.read_file(p.as_bytes(), 1 << 20).unwrap();
            assert_eq!(ours, mtype, "{p}");
            assert_eq!(m.size, ours.len() as u64, "{p}");
            assert_eq!(m.kind, FileKind::File);
        }
    }
    n
}

#[test]
fn fat_12_16_32_match_mtools_and_source() {
    let d = tempfile::tempdir().unwrap();
    for (bits, mib) in [("12", 4u64), ("16", 20), ("32", 40)] {
        let f = fat_image(d.path(), bits, mib, &[]);
        let fs = fat::open(volume(&f.img)).unwrap();
        assert_eq!(fs.fs_type(), "vfat");
        let n = check_fat_tree(&fs, &f.img, "/");
        assert_eq!(n, 10, "FAT{bits}: objects compared");
        // Case-insensitive lookup, on-disk names in listings.
        let boot = std::fs::read(f.src.join("EFI_BOOT_BOOTX64.EFI")).unwrap();
        assert_eq!(
            fs.read_file(b"/efi/boot/bootx64.efi", 1 << 20).unwrap(),
            boot
        );
        assert_eq!(
            fs.read_file(b"/EFI/BOOT/BOOTX64.EFI", 1 << 20).unwrap(),
            boot
        );
        assert_eq!(
            fs.read_file(b"/EFI/DEBIAN/GRUBX64.EFI", 1 << 20).unwrap(),
            std::fs::read(f.src.join("EFI_debian_grubx64.efi")).unwrap()
        );
        assert_eq!(
            fs.metadata(b"/mixedcase/a long file name with spaces.TXT")
                .unwrap()
                .size,
            5
        );
        // Synthesised attributes and times (mcopy -m kept the source mtime; FAT has 2 s).
        let m = fs.metadata(b"/ReadOnly.TXT").unwrap();
        assert_eq!((m.mode, m.uid, m.gid), (0o444, 0, 0));
        let m = fs.metadata(b"/EFI/BOOT/BOOTX64.EFI").unwrap();
        assert_eq!(m.mode, 0o644);
        let src_mtime = std::fs::metadata(f.src.join("EFI_BOOT_BOOTX64.EFI"))
            .unwrap()
            .mtime();
        assert!(
            (m.mtime.unwrap() - src_mtime).abs() <= 2,
            "{:?} vs {src_mtime}",
            m.mtime
        );
        // Errors.
        assert!(matches!(
            fs.read_link(b"/lower.txt"),
            Err(FsError::NotASymlink { .. })
        ));
        assert!(matches!(
            fs.metadata(b"/missing"),
            Err(FsError::NotFound { .. })
        ));
        assert!(matches!(
            fs.metadata(b"/lower.txt/x"),
            Err(FsError::NotADirectory { .. })
        ));
        assert!(matches!(
            fs.read_dir(b"/lower.txt"),
            Err(FsError::NotADirectory { .. })
        ));
        assert!(matches!(
            fs.read_file(b"/EFI", 10),
            Err(FsError::IsADirectory { .. })
        ));
        assert!(matches!(
            fs.read_file(b"/", 10),
            Err(FsError::IsADirectory { .. })
        ));
        assert!(matches!(
            fs.read_file(b"/EFI/BOOT/BOOTX64.EFI", 10),
            Err(FsError::TooLarge { size: 100_000, .. })
        ));
        assert!(fs.metadata(&b"/EFI".repeat(4000)).is_err());
        assert!(fs.metadata(b"/EFI/../lower.txt").is_err());
    }
}

/// Geometry of a FAT16 image with 512-byte sectors, read by hand from the boot sector.
struct Geo {
    reserved: u64,
    fats: u64,
    fat_len: u64,
    first_data: u64,
    spc: u64,
}

fn geo(b: &[u8]) -> Geo {
    let le16 = |o: usize| u64::from(u16::from_le_bytes([b[o], b[o + 1]]));
    let reserved = le16(14);
    let fats = u64::from(b[16]);
    let fat_len = le16(22);
    let root_sectors = (le16(17) * 32).div_ceil(512);
    Geo {
        reserved,
        fats,
        fat_len,
        first_data: reserved + fats * fat_len + root_sectors,
        spc: u64::from(b[13]),
    }
}

impl Geo {
    fn set_fat(&self, b: &mut [u8], cluster: u64, value: u16) {
        for copy in 0..self.fats {
            let o = ((self.reserved + copy * self.fat_len) * 512 + cluster * 2) as usize;
            b[o..o + 2].copy_from_slice(&value.to_le_bytes());
        }
    }
    fn fat(&self, b: &[u8], cluster: u64) -> u64 {
        let o = (self.reserved * 512 + cluster * 2) as usize;
        u64::from(u16::from_le_bytes([b[o], b[o + 1]]))
    }
    fn cluster_off(&self, cluster: u64) -> usize {
        ((self.first_data + (cluster - 2) * self.spc) * 512) as usize
    }
    /// First cluster of the root-directory entry with this 11-byte short name.
    fn root_entry_cluster(&self, b: &[u8], short: &[u8; 11]) -> u64 {
        let root = ((self.reserved + self.fats * self.fat_len) * 512) as usize;
        let e = b[root..root + 512 * 32]
            .chunks(32)
            .find(|e| &e[..11] == short)
            .expect("entry in the root directory");
        u64::from(u16::from_le_bytes([e[26], e[27]]))
    }
    fn chain(&self, b: &[u8], first: u64) -> Vec<u64> {
        let mut c = vec![first];
        while c.len() < 1000 {
            let n = self.fat(b, *c.last().unwrap());
            if !(2..0xFFF0).contains(&n) {
                break;
            }
            c.push(n);
        }
        c
    }
}

#[test]
fn fat_cluster_loops_end_in_errors_not_hangs() {
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("loop.img");
    sparse(&img, 20 << 20);
    run(
        "mkfs.vfat",
        DOSFS,
        &["-F", "16", "-s", "1", "-S", "512", s(&img)],
    );
    let i = s(&img);
    run("mmd", MTOOLS, &["-i", i, "::/LOOPDIR"]);
    let f = d.path().join("f");
    std::fs::write(&f, b"x").unwrap();
    for n in 0..40 {
        run(
            "mcopy",
            MTOOLS,
            &["-i", i, s(&f), &format!("::/LOOPDIR/F{n:02}")],
        );
    }
    std::fs::write(&f, noise(2000, 3)).unwrap();
    run("mcopy", MTOOLS, &["-i", i, s(&f), "::/BIGFILE"]);
    let clean = std::fs::read(&img).unwrap();
    let g = geo(&clean);
    let dir = g.chain(&clean, g.root_entry_cluster(&clean, b"LOOPDIR    "));
    assert_eq!(dir.len(), 3, "42 entries of 32 bytes in 512-byte clusters");
    let file = g.chain(&clean, g.root_entry_cluster(&clean, b"BIGFILE    "));
    assert_eq!(file.len(), 4);
    let fs_of = |b: Vec<u8>| fat::open(Arc::new(b) as Volume).unwrap();

    // 1. The directory's second (full) cluster points back to its first: an endless listing
    //    (the third cluster, which holds the end marker, is never reached).
    let mut b = clean.clone();
    g.set_fat(&mut b, dir[1], dir[0] as u16);
    let fs = fs_of(b.clone());
    let t = Instant::now();
    assert!(matches!(
        fs.read_dir(b"/LOOPDIR"),
        Err(FsError::Corrupt { .. })
    ));
    assert!(matches!(
        fs.metadata(b"/LOOPDIR/NOSUCH"),
        Err(FsError::Corrupt { .. })
    ));
    assert!(fs.metadata(b"/LOOPDIR/F01").is_ok());

    // 2. Same loop, every entry deleted: fatfs would spin inside one iterator step.
    for c in &dir[..2] {
        let o = g.cluster_off(*c);
        for e in b[o..o + 512].chunks_mut(32) {
            if e[0] != b'.' {
                e[0] = 0xE5;
            }
        }
    }
    let fs = fs_of(b);
    assert!(matches!(
        fs.read_dir(b"/LOOPDIR"),
        Err(FsError::Corrupt { .. })
    ));
    assert!(matches!(
        fs.metadata(b"/LOOPDIR/X"),
        Err(FsError::Corrupt { .. })
    ));

    // 3. A file whose chain loops: bounded by its size, no hang.
    let mut b = clean.clone();
    g.set_fat(&mut b, file[1], file[0] as u16);
    let fs = fs_of(b);
    let _ = fs.read_file(b"/BIGFILE", 1 << 20);
    // 4. A chain ending early: corrupt, not short data.
    let mut b = clean.clone();
    g.set_fat(&mut b, file[1], 0xFFFF);
    let fs = fs_of(b);
    assert!(matches!(
        fs.read_file(b"/BIGFILE", 1 << 20),
        Err(FsError::Corrupt { .. })
    ));
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );

    // 5. A truncated image is refused at open.
    let cut: Volume = Arc::new(clean[..5 << 20].to_vec());
    assert!(matches!(fat::open(cut), Err(FsError::Corrupt { .. })));
    // 6. A FAT too small for its clusters, a zero sector size: refused before fatfs sees them.
    let mut b = clean.clone();
    b[22..24].copy_from_slice(&1u16.to_le_bytes());
    assert!(fat::open(Arc::new(b) as Volume).is_err());
    let mut b = clean.clone();
    b[11..13].copy_from_slice(&0u16.to_le_bytes());
    assert!(fat::open(Arc::new(b) as Volume).is_err());
}

/// Reads everything reachable, ignoring errors, with bounds: what a caller walking a hostile
/// image does.
fn walk(fs: &dyn FileSystem, path: &[u8], depth: usize, budget: &mut usize) {
    if depth > 6 || *budget == 0 {
        return;
    }
    let _ = fs.metadata(path);
    let Ok(entries) = fs.read_dir(path) else {
        let _ = fs.read_file(path, 1 << 20);
        let _ = fs.read_link(path);
        return;
    };
    for e in entries.into_iter().take(50) {
        *budget = budget.saturating_sub(1);
        let mut p = path.to_vec();
        if p != b"/" {
            p.push(b'/');
        }
        p.extend_from_slice(&e.name);
        walk(fs, &p, depth + 1, budget);
    }
}

#[test]
fn mutated_fat_and_ext4_images_never_panic_or_hang() {
    let d = tempfile::tempdir().unwrap();
    let f = fat_image(d.path(), "16", 20, &["-s", "1"]);
    let fat_img = std::fs::read(&f.img).unwrap();
    let src = d.path().join("tree");
    make_tree(&src);
    let ext_img = std::fs::read(ext_image("mkfs.ext4", d.path(), &src)).unwrap();
    let t = Instant::now();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..120 {
        for (clean, meta_end) in [(&fat_img, 64 << 10), (&ext_img, 96 << 10)] {
            let mut b = clean.clone();
            for _ in 0..1 + round % 16 {
                let at = (rnd() % meta_end) as usize;
                b[at] = rnd() as u8;
            }
            let v: Volume = Arc::new(b);
            let _ = probe(&*v);
            let mut budget = 400;
            if let Ok(fs) = fat::open(v.clone()) {
                walk(&fs, b"/", 0, &mut budget);
            }
            let mut budget = 400;
            if let Ok(fs) = ext4::open(v) {
                walk(&fs, b"/", 0, &mut budget);
            }
        }
    }
    assert!(
        t.elapsed() < Duration::from_secs(120),
        "took {:?}",
        t.elapsed()
    );
}
