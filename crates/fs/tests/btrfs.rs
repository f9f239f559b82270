//! The btrfs reader against images made by btrfs-progs (`mkfs.btrfs --rootdir`,
//! `btrfs-convert`) and checked with the source tree, `btrfs restore`, `btrfs inspect-internal`
//! and `blkid`. Missing tools fail the tests with the Debian package to install.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhdprep_disk::FileReader;
use vhdprep_fs::btrfs::{self, BtrfsFs, Subvolume};
use vhdprep_fs::{FileKind, FileSystem, FsError, Volume, DEFAULT_READ_LIMIT};

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn tool(name: &str, package: &str) -> Command {
    let found = PATH.split(':').any(|d| Path::new(d).join(name).is_file());
    assert!(
        found,
        "`{name}` is missing: install the Debian package `{package}` (apt-get install -y {package})"
    );
    let mut c = Command::new(name);
    c.env("PATH", PATH);
    c
}

fn run(mut c: Command) -> String {
    let out = c.output().expect("spawn");
    assert!(
        out.status.success(),
        "{c:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn volume(img: &Path) -> Volume {
    Arc::new(FileReader::new(fs::File::open(img).unwrap()).unwrap())
}

fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A tree with every kind of thing the reader must handle.
fn populate(src: &Path) {
    fs::create_dir_all(src.join("etc/ssh")).unwrap();
    fs::create_dir_all(src.join("a/b/c/d/e")).unwrap();
    fs::write(src.join("a/b/c/d/e/deep.txt"), b"deep\n").unwrap();
    fs::write(src.join("etc/hostname"), b"azure-vm\n").unwrap();
    fs::write(src.join("etc/ssh/sshd_config"), b"PermitRootLogin no\n").unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    fs::create_dir(src.join("many")).unwrap();
    for i in 0..1000 {
        fs::write(src.join(format!("many/entry-{i:04}")), format!("{i}\n")).unwrap();
    }
    std::os::unix::fs::symlink("/etc/hostname", src.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../etc/ssh/sshd_config", src.join("a/rel-link")).unwrap();
    std::os::unix::fs::symlink("nowhere/at/all", src.join("dangling")).unwrap();
    fs::write(src.join("big.bin"), pseudo_random(5 << 20, 42)).unwrap();
    // Sparse: 8 MiB with data at 1 MiB and 6 MiB only.
    let f = fs::File::create(src.join("sparse.img")).unwrap();
    f.set_len(8 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&pseudo_random(4096, 7), 1 << 20).unwrap();
    f.write_all_at(&pseudo_random(10000, 9), 6 << 20).unwrap();
    drop(f);
    fs::hard_link(src.join("etc/hostname"), src.join("hostname-hardlink")).unwrap();
    fs::write(
        src.join(OsStr::from_bytes(b"caf\xe9-latin1")),
        b"latin1 name\n",
    )
    .unwrap();
    fs::write(src.join("suid"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(src.join("suid"), fs::Permissions::from_mode(0o4750)).unwrap();
    std::os::unix::fs::chown(src.join("suid"), Some(1234), Some(5678))
        .expect("chown needs root (the tests build images with owners)");
    fs::create_dir(src.join("tmp")).unwrap();
    fs::set_permissions(src.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    std::os::unix::fs::chown(src.join("a"), Some(1000), Some(1000)).unwrap();
    run({
        let mut c = tool("mkfifo", "coreutils");
        c.arg(src.join("fifo"));
        c
    });
}

/// A sparse image file of `size` bytes.
fn sparse_file(path: &Path, size: u64) {
    fs::File::create(path).unwrap().set_len(size).unwrap();
}

fn mkfs(img: &Path, src: &Path, extra: &[&str]) {
    sparse_file(img, 160 << 20);
    let mut c = tool("mkfs.btrfs", "btrfs-progs");
    c.args(["-q", "-f", "-L", "vhdprep-test"])
        .args(extra)
        .arg("--rootdir")
        .arg(src)
        .arg(img);
    run(c);
}

fn kind_of(m: &fs::Metadata) -> FileKind {
    let t = m.file_type();
    use std::os::unix::fs::FileTypeExt;
    if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_dir() {
        FileKind::Dir
    } else if t.is_file() {
        FileKind::File
    } else if t.is_fifo() {
        FileKind::Fifo
    } else if t.is_socket() {
        FileKind::Socket
    } else if t.is_char_device() {
        FileKind::CharDevice
    } else {
        FileKind::BlockDevice
    }
}

/// Every object of the source tree and of the image agree: listing, kind, mode, owner, size,
/// mtime, hard links, file bytes and link targets.
fn compare_tree(fs_: &BtrfsFs, src: &Path, rel: &[u8], inodes: &mut BTreeMap<u64, u64>) -> usize {
    let dir = src.join(OsStr::from_bytes(rel.strip_prefix(b"/").unwrap_or(rel)));
    let mut want: BTreeSet<Vec<u8>> = BTreeSet::new();
    for e in fs::read_dir(&dir).unwrap() {
        want.insert(e.unwrap().file_name().as_bytes().to_vec());
    }
    let list = fs_
        .read_dir(if rel.is_empty() { b"/" } else { rel })
        .unwrap();
    let got: BTreeSet<Vec<u8>> = list.iter().map(|e| e.name.clone()).collect();
    assert_eq!(got, want, "listing of {:?}", String::from_utf8_lossy(rel));
    let mut count = 0;
    for e in list {
        let mut p = rel.to_vec();
        p.push(b'/');
        p.extend_from_slice(&e.name);
        let host = src.join(OsStr::from_bytes(&p[1..]));
        let hm = fs::symlink_metadata(&host).unwrap();
        let m = fs_.metadata(&p).unwrap();
        let what = String::from_utf8_lossy(&p).into_owned();
        assert_eq!(m.kind, kind_of(&hm), "{what}");
        assert_eq!(e.kind, m.kind, "{what}: entry kind vs inode kind");
        assert_eq!(m.mode, hm.mode() & 0o7777, "{what}");
        assert_eq!((m.uid, m.gid), (hm.uid(), hm.gid()), "{what}");
        assert_eq!(m.mtime, Some(hm.mtime()), "{what}");
        // Hard links: same source inode ⇔ same image inode.
        let ino = m.inode.unwrap();
        if let Some(prev) = inodes.insert(hm.ino(), ino) {
            assert_eq!(prev, ino, "{what}: hard link");
        }
        count += 1;
        match m.kind {
            FileKind::Dir => count += compare_tree(fs_, src, &p, inodes),
            FileKind::File => {
                assert_eq!(m.size, hm.len(), "{what}");
                let data = fs_.read_file(&p, DEFAULT_READ_LIMIT).unwrap();
                assert!(data == fs::read(&host).unwrap(), "{what}: content differs");
            }
            FileKind::Symlink => {
                let target = fs::read_link(&host).unwrap();
                assert_eq!(
                    fs_.read_link(&p).unwrap(),
                    target.as_os_str().as_bytes(),
                    "{what}"
                );
                assert_eq!(m.size, target.as_os_str().len() as u64, "{what}");
            }
            _ => {}
        }
    }
    count
}

fn blkid(img: &Path) -> String {
    let mut c = tool("blkid", "util-linux");
    c.arg("-p").arg(img);
    run(c)
}

fn uuid_text(u: [u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Paths `btrfs restore -D -vv -S` would restore, relative to the root.
fn restore_paths(img: &Path, scratch: &Path) -> BTreeSet<String> {
    let mut c = tool("btrfs", "btrfs-progs");
    c.args(["restore", "-D", "-vv", "-S"]).arg(img).arg(scratch);
    let out = c.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let prefix = format!("Restoring {}/", scratch.display());
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

fn walk_all(fs_: &dyn FileSystem, p: &[u8], out: &mut BTreeSet<String>) {
    for e in fs_.read_dir(if p.is_empty() { b"/" } else { p }).unwrap() {
        let mut q = p.to_vec();
        q.push(b'/');
        q.extend_from_slice(&e.name);
        out.insert(String::from_utf8_lossy(&q[1..]).into_owned());
        if e.kind == FileKind::Dir {
            walk_all(fs_, &q, out);
        }
    }
}

#[test]
fn mkfs_rootdir_image_matches_source_tree_and_btrfs_progs() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    populate(&src);
    let img = t.path().join("fs.img");
    mkfs(&img, &src, &[]);

    let fs_ = btrfs::open(volume(&img)).unwrap();
    assert_eq!(fs_.fs_type(), "btrfs");
    assert_eq!(
        fs_.subvolume_id(),
        5,
        "mkfs's default subvolume is the top level"
    );
    assert_eq!(fs_.list_subvolumes().unwrap(), Vec::<Subvolume>::new());

    // Label and UUID as blkid sees them.
    let b = blkid(&img);
    assert!(b.contains("TYPE=\"btrfs\""), "{b}");
    assert!(
        b.contains(&format!(
            "LABEL=\"{}\"",
            String::from_utf8_lossy(fs_.label())
        )),
        "{b}"
    );
    assert!(
        b.contains(&format!(" UUID=\"{}\"", uuid_text(fs_.uuid()))),
        "{b}"
    );
    assert_eq!(fs_.label(), b"vhdprep-test");

    // Everything against the source tree.
    let root = fs_.metadata(b"/").unwrap();
    assert_eq!(root.kind, FileKind::Dir);
    assert_eq!(root.inode, Some(256));
    let mut inodes = BTreeMap::new();
    let n = compare_tree(&fs_, &src, b"", &mut inodes);
    assert!(n > 1000, "{n} objects compared");
    assert_eq!(fs_.read_dir(b"/many").unwrap().len(), 1000);
    assert_eq!(
        fs_.metadata(b"/hostname-hardlink").unwrap().inode,
        fs_.metadata(b"/etc/hostname").unwrap().inode
    );

    // The paths btrfs restore finds are ours too.
    let restored = restore_paths(&img, &t.path().join("restore"));
    assert!(
        restored.contains("big.bin") && restored.contains("many/entry-0999"),
        "{restored:?}"
    );
    let mut ours = BTreeSet::new();
    walk_all(&fs_, b"", &mut ours);
    let missing: Vec<_> = restored.difference(&ours).collect();
    assert!(
        missing.is_empty(),
        "btrfs restore lists paths we do not: {missing:?}"
    );

    // Errors of the contract.
    assert!(matches!(
        fs_.metadata(b"/nope"),
        Err(FsError::NotFound { .. })
    ));
    assert!(matches!(
        fs_.read_dir(b"/etc/hostname"),
        Err(FsError::NotADirectory { .. })
    ));
    assert!(matches!(
        fs_.metadata(b"/etc/hostname/x"),
        Err(FsError::NotADirectory { .. })
    ));
    assert!(matches!(
        fs_.read_file(b"/etc", 100),
        Err(FsError::IsADirectory { .. })
    ));
    assert!(matches!(
        fs_.read_link(b"/etc/hostname"),
        Err(FsError::NotASymlink { .. })
    ));
    assert!(matches!(
        fs_.read_file(b"/big.bin", 1 << 20),
        Err(FsError::TooLarge { size: 5242880, .. })
    ));
    // metadata does not follow symlinks.
    assert_eq!(fs_.metadata(b"/abs-link").unwrap().kind, FileKind::Symlink);

    // The top level by id and by path is the same view.
    let by_id = btrfs::open_subvolume_id(volume(&img), 5).unwrap();
    assert_eq!(
        by_id.read_dir(b"/etc").unwrap(),
        fs_.read_dir(b"/etc").unwrap()
    );
    let by_path = btrfs::open_subvolume(volume(&img), b"/").unwrap();
    assert_eq!(by_path.subvolume_id(), 5);
    assert!(matches!(
        btrfs::open_subvolume(volume(&img), b"/etc"),
        Err(FsError::NotFound { .. })
    ));
    assert!(btrfs::open_subvolume_id(volume(&img), 999).is_err());
}

#[test]
fn dup_metadata_survives_one_bad_copy_and_single_metadata_does_not() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    populate(&src);
    for (profile, survives) in [("dup", true), ("single", false)] {
        let img = t.path().join(format!("{profile}.img"));
        mkfs(&img, &src, &["-m", profile]);
        let copies = fs_tree_root_copies(&img);
        assert_eq!(copies.1.len(), if survives { 2 } else { 1 }, "{profile}");
        // Flip a byte inside the first copy of the FS tree's root block.
        let f = fs::OpenOptions::new()
            .write(true)
            .read(true)
            .open(&img)
            .unwrap();
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, copies.1[0] + 0x200).unwrap();
        f.write_all_at(&[b[0] ^ 0xff], copies.1[0] + 0x200).unwrap();
        f.sync_all().unwrap();
        let fs_ = btrfs::open(volume(&img)).unwrap();
        let r = fs_.read_dir(b"/many");
        if survives {
            assert_eq!(r.unwrap().len(), 1000);
        } else {
            let e = r.unwrap_err();
            assert!(
                matches!(&e, FsError::Corrupt { what, .. } if what.contains("checksum")),
                "{e}"
            );
        }
    }
}

/// Logical address, physical copies and level of the FS tree's root block, from btrfs-progs.
fn fs_tree_root_copies(img: &Path) -> (u64, Vec<u64>, u8) {
    let mut c = tool("btrfs", "btrfs-progs");
    c.args(["inspect-internal", "dump-tree", "-t", "5"])
        .arg(img);
    let out = run(c);
    let line = out
        .lines()
        .find(|l| l.starts_with("node ") || l.starts_with("leaf "))
        .expect("dump-tree shows the root block");
    let w: Vec<&str> = line.split_whitespace().collect();
    let logical: u64 = w[1].parse().unwrap();
    let level = if w[0] == "node" {
        w[3].parse().unwrap()
    } else {
        0
    };
    let mut c = tool("btrfs-map-logical", "btrfs-progs");
    c.arg("-l").arg(logical.to_string()).arg(img);
    let out = run(c);
    let phys = out
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "physical")?;
            w.get(i + 1)?.parse().ok()
        })
        .collect();
    (logical, phys, level)
}

#[test]
fn tree_block_pointing_to_itself_is_an_error_not_a_hang() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    populate(&src);
    let img = t.path().join("loop.img");
    mkfs(&img, &src, &["-m", "single"]);
    let (logical, phys, level) = fs_tree_root_copies(&img);
    assert!(
        level >= 1,
        "the 1000-entry directory makes the FS tree's root a node"
    );
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    for p in phys {
        let mut block = vec![0u8; 16384];
        f.read_exact_at(&mut block, p).unwrap();
        // Every key pointer of the root now points back at the root itself.
        let n = u32::from_le_bytes(block[0x60..0x64].try_into().unwrap()) as usize;
        for i in 0..n {
            let at = 0x65 + i * 33 + 17;
            block[at..at + 8].copy_from_slice(&logical.to_le_bytes());
        }
        let crc = crc32c::crc32c(&block[0x20..]);
        block[0..4].copy_from_slice(&crc.to_le_bytes());
        f.write_all_at(&block, p).unwrap();
    }
    f.sync_all().unwrap();
    let fs_ = btrfs::open(volume(&img)).unwrap();
    let start = Instant::now();
    for path in [&b"/"[..], b"/many", b"/etc/hostname"] {
        let e = fs_.read_dir(path).err().or(fs_.metadata(path).err());
        assert!(
            matches!(e, Some(FsError::Corrupt { .. })),
            "{path:?}: {e:?}"
        );
    }
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn corrupt_superblock_and_truncated_images_are_errors() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    populate(&src);
    let img = t.path().join("fs.img");
    mkfs(&img, &src, &[]);
    let bytes = fs::read(&img).unwrap();

    // Superblock checksum.
    let mut bad = bytes.clone();
    bad[0x10000 + 0x12b] ^= 0x20; // inside the label
    let e = btrfs::open(Arc::new(bad)).unwrap_err();
    assert!(
        matches!(&e, FsError::Corrupt { what, .. } if what.contains("superblock checksum")),
        "{e}"
    );

    // Truncated: before the superblock, inside the metadata, and half-way.
    for len in [0x10000 + 100, 1 << 20, 20 << 20] {
        let e = btrfs::open(Arc::new(bytes[..len].to_vec())).unwrap_err();
        assert!(matches!(e, FsError::Corrupt { .. }), "{len}: {e}");
    }
    // Cut so that some files are beyond the end: every operation returns, none panics.
    let used_end = bytes.iter().rposition(|&b| b != 0).unwrap();
    for cut in [used_end / 2, used_end * 3 / 4, used_end - 4096] {
        let Ok(fs_) = btrfs::open(Arc::new(bytes[..cut].to_vec())) else {
            continue;
        };
        let mut seen = BTreeSet::new();
        try_walk(&fs_, b"", &mut seen, 0);
    }
}

/// Walks everything, ignoring errors (the point is: no panic, no hang).
fn try_walk(fs_: &BtrfsFs, p: &[u8], seen: &mut BTreeSet<Vec<u8>>, depth: usize) {
    if depth > 16 || !seen.insert(p.to_vec()) {
        return;
    }
    let Ok(list) = fs_.read_dir(if p.is_empty() { b"/" } else { p }) else {
        return;
    };
    for e in list {
        let mut q = p.to_vec();
        q.push(b'/');
        q.extend_from_slice(&e.name);
        let _ = fs_.metadata(&q);
        let _ = fs_.read_file(&q, DEFAULT_READ_LIMIT);
        let _ = fs_.read_link(&q);
        if e.kind == FileKind::Dir {
            try_walk(fs_, &q, seen, depth + 1);
        }
    }
}

#[test]
fn btrfs_convert_nested_subvolume() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::create_dir_all(src.join("etc")).unwrap();
    fs::write(src.join("etc/fstab"), b"UUID=x / btrfs defaults 0 0\n").unwrap();
    fs::write(src.join("data.bin"), pseudo_random(300_000, 3)).unwrap();
    // A sparse file: mkfs.ext4 -d keeps its holes and btrfs-convert maps its extents as they
    // are, so the converted file has holes (mkfs.btrfs 6.2 --rootdir writes zeros instead).
    let f = fs::File::create(src.join("sparse.img")).unwrap();
    f.set_len(8 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&pseudo_random(4096, 7), 1 << 20).unwrap();
    f.write_all_at(&pseudo_random(10000, 9), 6 << 20).unwrap();
    drop(f);
    let sparse = fs::read(src.join("sparse.img")).unwrap();
    let img = t.path().join("conv.img");
    sparse_file(&img, 128 << 20);
    let mut c = tool("mkfs.ext4", "e2fsprogs");
    c.args(["-q", "-F", "-b", "4096", "-d"]).arg(&src).arg(&img);
    run(c);
    let original = fs::read(&img).unwrap();
    let mut c = tool("btrfs-convert", "btrfs-progs");
    c.arg(&img);
    run(c);

    // btrfs-progs' view of the subvolumes.
    let mut c = tool("btrfs", "btrfs-progs");
    c.args(["restore", "--list-roots"]).arg(&img);
    let roots = run(c);
    let ids: Vec<u64> = roots
        .lines()
        .filter_map(|l| {
            l.split_once("tree key (")?
                .1
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(ids, vec![256], "{roots}");

    let fs_ = btrfs::open(volume(&img)).unwrap();
    assert_eq!(fs_.subvolume_id(), 5);
    assert_eq!(
        fs_.list_subvolumes().unwrap(),
        vec![Subvolume {
            id: 256,
            path: b"ext2_saved".to_vec(),
            parent_id: 5
        }]
    );
    // The nested subvolume is a directory; its metadata is its root inode.
    let list = fs_.read_dir(b"/").unwrap();
    let e = list
        .iter()
        .find(|e| e.name == b"ext2_saved")
        .expect("ext2_saved listed");
    assert_eq!(e.kind, FileKind::Dir);
    let m = fs_.metadata(b"/ext2_saved").unwrap();
    assert_eq!((m.kind, m.inode), (FileKind::Dir, Some(256)));
    // Walking into it continues in its own tree: the saved image is the original ext4.
    let names: Vec<Vec<u8>> = fs_
        .read_dir(b"/ext2_saved")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec![b"image".to_vec()]);
    let image = fs_.read_file(b"/ext2_saved/image", 256 << 20).unwrap();
    assert_eq!(image.len(), original.len());
    assert!(
        image == original,
        "ext2_saved/image differs from the original ext4 image"
    );
    // Files of the converted filesystem.
    assert_eq!(
        fs_.read_file(b"/data.bin", 1 << 20).unwrap(),
        pseudo_random(300_000, 3)
    );
    assert_eq!(
        fs_.read_file(b"/etc/fstab", 1 << 20).unwrap(),
        b"UUID=x / btrfs defaults 0 0\n"
    );

    assert!(fs_.read_file(b"/sparse.img", 16 << 20).unwrap() == sparse);
    let mut c = tool("btrfs", "btrfs-progs");
    c.args(["inspect-internal", "dump-tree", "-t", "5"])
        .arg(&img);
    let dump = run(c);
    let ino = fs_.metadata(b"/sparse.img").unwrap().inode.unwrap();
    let extents = dump.matches(&format!("key ({ino} EXTENT_DATA ")).count();
    assert!(
        extents >= 2,
        "sparse.img should have separate extents around a hole:\n{dump}"
    );

    // subvol= and subvolid= open the nested subvolume itself.
    for sub in [
        btrfs::open_subvolume(volume(&img), b"ext2_saved").unwrap(),
        btrfs::open_subvolume(volume(&img), b"/ext2_saved").unwrap(),
        btrfs::open_subvolume_id(volume(&img), 256).unwrap(),
    ] {
        assert_eq!(sub.subvolume_id(), 256);
        let names: Vec<Vec<u8>> = sub
            .read_dir(b"/")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec![b"image".to_vec()]);
        assert_eq!(sub.metadata(b"/image").unwrap().size, original.len() as u64);
    }
}

/// A filesystem whose files the kernel's own btrfs wrote with `compress-force=ALG`, on a loop
/// mount in a private mount namespace (root, as CI is): zlib, LZO and zstd extents, regular
/// and inline, as a kernel writes them rather than as btrfs-progs does.
fn kernel_compressed_image(img: &Path, src: &Path, alg: &str) {
    sparse_file(img, 160 << 20);
    let mut c = tool("mkfs.btrfs", "btrfs-progs");
    c.args(["-q", "-f"]).arg(img);
    run(c);
    let mnt = img.with_extension("mnt");
    fs::create_dir(&mnt).unwrap();
    let mut c = tool("unshare", "util-linux");
    c.args(["--mount", "--propagation", "private", "sh", "-ec"])
        .arg(format!(
            "mount -o loop,compress-force={alg} \"$1\" \"$2\"; cp -a \"$3\"/. \"$2\"/; \
             umount \"$2\""
        ))
        .arg("sh")
        .args([img.as_os_str(), mnt.as_os_str(), src.as_os_str()]);
    run(c);
}

#[test]
fn extents_the_kernel_compressed_with_zlib_lzo_and_zstd_read_as_the_source_tree() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    populate(&src);
    // Compressible text spanning many sectors, an odd length, and a small file that the
    // kernel keeps inline (compressed).
    let text: String = (0..40_000)
        .map(|i| format!("line {i} the quick brown fox {}\n", i * 7))
        .collect();
    fs::write(src.join("text.txt"), &text[..text.len() - 3]).unwrap();
    fs::write(src.join("inline.txt"), "hello btrfs\n".repeat(25)).unwrap();
    for (alg, code) in [("lzo", 2), ("zlib", 1), ("zstd", 3)] {
        let img = t.path().join(format!("{alg}.img"));
        kernel_compressed_image(&img, &src, alg);
        // btrfs-progs sees extents of this compression, regular and inline.
        let mut c = tool("btrfs", "btrfs-progs");
        c.args(["inspect-internal", "dump-tree", "-t", "5"])
            .arg(&img);
        let dump = run(c);
        let regular = dump
            .matches(&format!("extent compression {code} ({alg})"))
            .count();
        let inline = dump
            .lines()
            .filter(|l| l.contains("inline extent") && l.contains(&format!("compression {code}")))
            .count();
        assert!(
            regular > 10 && inline > 0,
            "{alg}: {regular} regular, {inline} inline compressed extents"
        );
        let fs_ = btrfs::open(volume(&img)).unwrap();
        let mut inodes = BTreeMap::new();
        let n = compare_tree(&fs_, &src, b"", &mut inodes);
        assert!(n > 1000, "{alg}: {n} objects compared");
    }
}
