//! Fuzz targets: volume probing, filesystem readers and LVM.
//!
//! The readers take a volume in the sparse input format of [`crate::container`] (a declared
//! size, then `(offset, length, bytes)` chunks; zeros elsewhere), so that a seed made from a
//! real 300 MiB XFS filesystem costs only its non-zero blocks. Each reader target opens the
//! filesystem and walks it as the guest layer does ([`walk`]): `read_dir` from `/` breadth
//! first (bounded in entries and depth), `metadata` of everything, `read_link` of symlinks, a
//! bounded prefix and a range of files, and a few paths made from the input's own bytes.

use crate::container::SparseDisk;
use crate::Target;
use std::collections::VecDeque;
use vhdprep_fs::{FileKind, FileSystem, Volume};

/// The filesystem targets.
pub const TARGETS: &[Target] = &[
    Target {
        name: "fs_probe",
        about: "the volume prober (ext, XFS, btrfs, FAT, swap, LVM2, LUKS, NTFS, ISO9660/UDF, \
                squashfs, UFS) over the input as a volume: vhdprep_fs::probe::probe",
        run: fs_probe,
    },
    Target {
        name: "ext4",
        about: "a volume (sparse format) opened with vhdprep_fs::ext4 and walked",
        run: ext4,
    },
    Target {
        name: "fat",
        about: "a volume (sparse format) opened with vhdprep_fs::fat and walked",
        run: fat,
    },
    Target {
        name: "xfs",
        about: "a volume (sparse format) opened with vhdprep_fs::xfs and walked",
        run: xfs,
    },
    Target {
        name: "btrfs",
        about: "a volume (sparse format) opened with vhdprep_fs::btrfs, its subvolumes listed, \
                the default and each listed subvolume walked",
        run: btrfs,
    },
    Target {
        name: "lvm_metadata",
        about: "LVM2 metadata text: vhdprep_fs::lvm::metadata::parse",
        run: lvm_metadata,
    },
    Target {
        name: "lvm_pv",
        about: "a volume (sparse format) as an LVM2 PV: label, PV header, metadata areas, \
                metadata text, volume groups and logical volumes mapped, read and probed",
        run: lvm_pv,
    },
];

/// The input is a volume (its first bytes: probers read at most the first few hundred KiB).
pub fn fs_probe(data: &[u8]) {
    if let Ok(Some(p)) = vhdprep_fs::probe::probe(&data) {
        let _ = format!("{p:?}");
    }
}

fn volume(data: &[u8]) -> Volume {
    SparseDisk::shared(data)
}

/// The input is a volume in the sparse format holding ext2/3/4.
pub fn ext4(data: &[u8]) {
    // libFuzzer aborts on any panic, even a caught one: let ext4-view's own (caught) panics
    // through, and only those.
    vhdprep_fs::ext4::quiet_contained_panics();
    if let Ok(fs) = vhdprep_fs::ext4::open(volume(data)) {
        let _ = fs.label();
        let _ = fs.uuid();
        walk(&fs, data);
    }
}

/// The input is a volume in the sparse format holding FAT12/16/32.
pub fn fat(data: &[u8]) {
    if let Ok(fs) = vhdprep_fs::fat::open(volume(data)) {
        let _ = fs.fat_variant();
        walk(&fs, data);
    }
}

/// The input is a volume in the sparse format holding XFS.
pub fn xfs(data: &[u8]) {
    if let Ok(fs) = vhdprep_fs::xfs::open(volume(data)) {
        let _ = fs.label();
        walk(&fs, data);
    }
}

/// Most subvolumes the btrfs target opens besides the default one.
const MAX_SUBVOLUMES: usize = 4;

/// The input is a volume in the sparse format holding btrfs.
pub fn btrfs(data: &[u8]) {
    let vol = volume(data);
    let Ok(fs) = vhdprep_fs::btrfs::open(vol.clone()) else {
        return;
    };
    let _ = (
        fs.label(),
        fs.generation(),
        fs.bytes_used(),
        fs.total_bytes(),
    );
    walk(&fs, data);
    let Ok(subvolumes) = fs.list_subvolumes() else {
        return;
    };
    for s in subvolumes.iter().take(MAX_SUBVOLUMES) {
        if let Ok(sub) = vhdprep_fs::btrfs::open_subvolume_id(vol.clone(), s.id) {
            walk(&sub, data);
        }
        let mut path = b"/".to_vec();
        path.extend_from_slice(&s.path);
        let _ = vhdprep_fs::btrfs::open_subvolume(vol.clone(), &path);
    }
}

/// The input is the metadata text of an LVM2 metadata area.
pub fn lvm_metadata(data: &[u8]) {
    use vhdprep_fs::lvm::metadata::{parse, Section};
    fn visit(s: &Section) {
        for (name, _) in &s.entries {
            let _ = (s.int(name), s.str(name), s.list(name), s.section(name));
        }
        s.sections().for_each(|(_, sub)| visit(sub));
    }
    if let Ok(top) = parse(data) {
        visit(&top);
    }
}

/// Bytes of each logical volume the lvm_pv target reads at its start and end.
const LV_READ: usize = 4096;

/// The input is a volume in the sparse format holding an LVM2 physical volume. Its volume
/// groups are assembled from it alone, and each logical volume is read and probed.
pub fn lvm_pv(data: &[u8]) {
    use vhdprep_fs::lvm::{assemble_vgs, read_pv};
    let Ok(Some(pv)) = read_pv(volume(data)) else {
        return;
    };
    let _ = pv.uuid();
    let Ok(vgs) = assemble_vgs(vec![pv]) else {
        return;
    };
    let mut buf = vec![0u8; LV_READ];
    for vg in &vgs {
        let _ = format!("{:?}", vg.unavailable);
        for lv in &vg.lvs {
            let _ = lv.dm_name();
            let v = &lv.volume;
            let _ = v.read_at(&mut buf, 0);
            let _ = v.read_at(&mut buf, v.len().saturating_sub(LV_READ as u64));
            let _ = vhdprep_fs::probe::probe(v.as_ref());
        }
    }
}

/// Most objects one walk visits.
const WALK_ENTRIES: usize = 512;
/// Deepest directory one walk descends into.
const WALK_DEPTH: usize = 8;
/// Largest file prefix one walk reads (with `read_file`'s limit and `read_range`).
const WALK_READ: u64 = 8192;
/// Paths tried that are made from the input's bytes.
const DERIVED_PATHS: usize = 4;

/// Walks `fs` as the guest layer reads a root filesystem: every directory from `/` down
/// (bounded), every object's metadata, symlink targets, file prefixes and ranges, then a few
/// paths made from the input (missing ones are the common case and must fail cleanly).
fn walk(fs: &dyn FileSystem, data: &[u8]) {
    let _ = fs.fs_type();
    let _ = fs.metadata(b"/");
    let mut queue = VecDeque::from([(b"/".to_vec(), 0usize)]);
    let mut visited = 0;
    let mut deepest = b"/".to_vec();
    while let Some((dir, depth)) = queue.pop_front() {
        let Ok(entries) = fs.read_dir(&dir) else {
            continue;
        };
        if dir.len() > deepest.len() {
            deepest = dir.clone();
        }
        // A hostile name with a `/` (or `.`, `..`, empty) is no path component: the guest
        // layer never asks for it, so neither does the walk.
        let valid = entries.into_iter().filter(|e| is_component(&e.name));
        for e in valid {
            if visited == WALK_ENTRIES {
                return derived_paths(fs, data, &deepest);
            }
            visited += 1;
            let path = join(&dir, &e.name);
            look_at(fs, &path, e.kind);
            if e.kind == FileKind::Dir && depth < WALK_DEPTH {
                queue.push_back((path, depth + 1));
            }
        }
    }
    derived_paths(fs, data, &deepest)
}

/// True for a name that can be one component of a normalised path.
fn is_component(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/')
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = dir.to_vec();
    if !path.ends_with(b"/") {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// Everything the guest asks of one object.
fn look_at(fs: &dyn FileSystem, path: &[u8], kind: FileKind) {
    let meta = fs.metadata(path);
    match kind {
        FileKind::Symlink => drop(fs.read_link(path)),
        FileKind::File => {
            let _ = fs.read_file(path, WALK_READ);
            if let Ok(m) = meta {
                let _ = fs.read_range(path, m.size.saturating_sub(100), 200);
                let _ = fs.read_range(path, m.size / 2, WALK_READ);
            }
            let _ = fs.read_range(path, u64::MAX - 1, 16);
        }
        _ => {}
    }
}

/// Paths the walk did not list: the input's last bytes as names, under `/` and under the
/// deepest directory listed, so that lookups of missing, odd and long names run through every
/// directory format.
fn derived_paths(fs: &dyn FileSystem, data: &[u8], deepest: &[u8]) {
    let tail = &data[data.len().saturating_sub(DERIVED_PATHS * 24)..];
    for (i, chunk) in tail.chunks(24).enumerate() {
        let name: Vec<u8> = chunk
            .iter()
            .copied()
            .filter(|&b| b != b'/' && b != 0)
            .collect();
        if !is_component(&name) {
            continue;
        }
        let dir: &[u8] = if i % 2 == 0 { b"/" } else { deepest };
        let path = join(dir, &name);
        let _ = fs.metadata(&path);
        let _ = fs.read_dir(&path);
        let _ = fs.read_link(&path);
        let _ = fs.read_range(&path, 0, 512);
    }
    let long = vec![b'a'; 300];
    let _ = fs.metadata(&join(b"/", &long));
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::seed;

    /// The populated seeds hold what fuzz/make-seeds/filesystem.sh put in them.
    fn has_the_tree(fs: &dyn FileSystem, symlinks: bool) {
        let root: Vec<String> = fs
            .read_dir(b"/")
            .unwrap()
            .iter()
            .map(|e| e.name_lossy().to_ascii_lowercase())
            .collect();
        for name in ["etc", "boot", "usr"] {
            assert!(root.contains(&name.to_string()), "{name} in {root:?}");
        }
        assert!(fs.read_file(b"/etc/hostname", 100).is_ok());
        let island = fs.read_range(b"/boot/sparse.img", 5 * 65536, 8).unwrap();
        assert_eq!(island, b"island 5");
        if symlinks {
            assert_eq!(
                fs.read_link(b"/etc/short-link").unwrap(),
                b"../usr/bin/hello"
            );
            assert_eq!(fs.read_dir(b"/var/many").unwrap().len(), 31);
        }
    }

    #[test]
    fn filesystem_seeds_are_the_populated_trees() {
        let v = |t, n| volume(&seed(t, n));
        has_the_tree(&vhdprep_fs::ext4::open(v("ext4", "mkfs-4k")).unwrap(), true);
        has_the_tree(&vhdprep_fs::ext4::open(v("ext4", "mkfs-1k")).unwrap(), true);
        has_the_tree(&vhdprep_fs::xfs::open(v("xfs", "mkfs-v5")).unwrap(), true);
        has_the_tree(
            &vhdprep_fs::btrfs::open(v("btrfs", "mkfs-holes")).unwrap(),
            true,
        );
        has_the_tree(
            &vhdprep_fs::fat::open(v("fat", "mkfs-fat32")).unwrap(),
            false,
        );
    }

    #[test]
    fn probe_seeds_are_recognised() {
        for (name, fs_type) in [
            ("ext4", "ext4"),
            ("xfs", "xfs"),
            ("btrfs", "btrfs"),
            ("vfat32", "vfat"),
            ("swap", "swap"),
            ("luks2", "crypto_LUKS"),
            ("lvm2-pv", "LVM2_member"),
            ("iso9660", "iso9660"),
        ] {
            let data = seed("fs_probe", name);
            let p = vhdprep_fs::probe::probe(&data).unwrap();
            assert_eq!(p.map(|p| p.fs_type), Some(fs_type), "{name}");
        }
    }

    #[test]
    fn lvm_seeds_hold_a_volume_group() {
        let top = vhdprep_fs::lvm::metadata::parse(&seed("lvm_metadata", "fixture-vg")).unwrap();
        assert!(top.sections().next().is_some());
        let pv = vhdprep_fs::lvm::read_pv(volume(&seed("lvm_pv", "fixture-pv")))
            .unwrap()
            .unwrap();
        let vgs = vhdprep_fs::lvm::assemble_vgs(vec![pv]).unwrap();
        assert!(!vgs[0].lvs.is_empty());
    }
}
