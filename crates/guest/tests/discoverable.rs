//! Partitions mounted by their GPT type (Discoverable Partitions Specification) on a small
//! disk made by real tools: `sgdisk` types (root x86-64, /home, /var, /srv with the `no-auto`
//! attribute bit 63, XBOOTLDR, ESP) and `mkfs.ext4 -d` / `mkfs.vfat` + `mcopy` filesystems
//! written at each partition's offset; no fstab.

use std::path::Path;
use std::process::Command;
use vhdprep_disk::DiskImage;
use vhdprep_guest::{assemble, discover};

const MIB: u64 = 1 << 20;

fn run(cmd: &mut Command, package: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}): install Debian package {package}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ext4 of `size` bytes at `offset` in `img`, holding the tree `dir`.
fn ext4_at(img: &Path, offset: u64, size: u64, dir: &Path, label: &str) {
    run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", label, "-E"])
            .arg(format!("offset={offset}"))
            .arg("-d")
            .arg(dir)
            .arg(img)
            .arg(format!("{}k", size / 1024)),
        "e2fsprogs",
    );
}

#[test]
fn partitions_are_mounted_by_type_when_there_is_no_fstab() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("dps.raw");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 * MIB)
        .unwrap();
    // 1: ESP, 2: XBOOTLDR, 3: root x86-64, 4: /home, 5: /var, 6: /srv with no-auto.
    let parts = [
        // sgdisk's own codes: EFI system, XBOOTLDR, Linux x86-64 root, /home, /var, /srv.
        ("ef00", 8),
        ("ea00", 8),
        ("8304", 16),
        ("8302", 8),
        ("8310", 8),
        ("8306", 8),
    ];
    let mut sg = Command::new("sgdisk");
    sg.arg("-o");
    let mut start = MIB;
    let mut offsets = Vec::new();
    for (i, (t, mib)) in parts.iter().enumerate() {
        let n = i + 1;
        let len = mib * MIB;
        sg.arg(format!(
            "--new={n}:{}:{}",
            start / 512,
            (start + len) / 512 - 1
        ))
        .arg(format!("--typecode={n}:{t}"));
        offsets.push((start, len));
        start += len;
    }
    sg.arg("--attributes=6:set:63").arg(&img);
    run(&mut sg, "gdisk");

    let tree = |name: &str, files: &[(&str, &str)]| {
        let d = tmp.path().join(name);
        for (p, text) in files {
            let f = d.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        }
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let root = tree(
        "root",
        &[
            ("etc/os-release", "ID=debian\nVERSION_ID=12\n"),
            ("boot/.keep", ""),
        ],
    );
    std::fs::remove_file(root.join("boot/.keep")).unwrap();
    for sub in ["home", "var", "srv", "efi"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    ext4_at(&img, offsets[2].0, offsets[2].1, &root, "root");
    let xbootldr = tree("xbootldr", &[("loader/entries/a.conf", "linux /a\n")]);
    ext4_at(&img, offsets[1].0, offsets[1].1, &xbootldr, "xbootldr");
    ext4_at(
        &img,
        offsets[3].0,
        offsets[3].1,
        &tree("home", &[("alice/x", "1")]),
        "home",
    );
    ext4_at(
        &img,
        offsets[4].0,
        offsets[4].1,
        &tree("var", &[("lib/x", "1")]),
        "var",
    );
    ext4_at(
        &img,
        offsets[5].0,
        offsets[5].1,
        &tree("srv", &[("www/x", "1")]),
        "srv",
    );
    // The ESP: FAT (mkfs.vfat picks FAT12 at this size) at its offset in sectors, a file
    // copied in by mtools.
    run(
        Command::new("mkfs.vfat")
            .args(["--offset"])
            .arg((offsets[0].0 / 512).to_string())
            .arg(&img)
            .arg((offsets[0].1 / 1024).to_string()),
        "dosfstools",
    );
    let marker = tmp.path().join("marker");
    std::fs::write(&marker, "esp").unwrap();
    run(
        Command::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(format!("{}@@{}", img.display(), offsets[0].0))
            .arg(&marker)
            .arg("::/MARKER"),
        "mtools",
    );

    let image = DiskImage::open(&img).unwrap();
    let d = discover(image.disk().unwrap()).unwrap();
    let g = assemble(&d.volumes).expect("root found");
    assert!(g.fstab.is_empty());
    let mut got: Vec<(String, String)> = g
        .discovered
        .iter()
        .map(|m| (m.volume.to_string(), m.mountpoint.clone()))
        .collect();
    got.sort();
    // XBOOTLDR takes /boot, so the ESP goes to /efi; /srv has no-auto.
    assert_eq!(
        got,
        [
            ("partition 1".to_string(), "/efi".to_string()),
            ("partition 2".to_string(), "/boot".to_string()),
            ("partition 4".to_string(), "/home".to_string()),
            ("partition 5".to_string(), "/var".to_string()),
        ]
    );
    assert!(g.discovered.iter().all(|m| m.problem.is_none()));
    let t = &g.tree;
    assert!(t.exists(b"/home/alice/x") && t.exists(b"/var/lib/x"));
    assert!(t.exists(b"/boot/loader/entries/a.conf"));
    assert!(t.exists(b"/efi/MARKER") || t.exists(b"/efi/marker"));
    assert!(!t.exists(b"/srv/www/x"));
}
