//! Kernel facts cross-checked against real tools:
//!
//! 1. The fixture images (fixtures/build-images.sh: Debian bookworm with
//!    linux-image-cloud-amd64 and its initramfs-tools initrd): the initramfs member list
//!    against `lsinitramfs` (Debian package initramfs-tools-core) run on the same initrd bytes,
//!    the module findings against `lsinitramfs | grep`, modules.builtin and /boot/config-<v>
//!    against the files, and the grub.cfg `linux` line against the manifest's kernel version.
//! 2. Archives made by real tools: `cpio -o -H newc` (package cpio) of a test tree, compressed
//!    by gzip, zstd (zstd), xz --check=crc32 (xz-utils), `lz4 -l` (lz4), bzip2 (bzip2), and an
//!    uncompressed early cpio followed by a compressed one, compared with `cpio -t`.
//!
//! A missing tool or fixture fails the test naming the Debian package or build script.

mod fixture_images;
use fixture_images::fixture_dir;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use vhdprep_disk::DiskImage;
use vhdprep_guest::facts::kernel::cmdline::{RootRefKind, SourceKind};
use vhdprep_guest::facts::kernel::decompress::Compression;
use vhdprep_guest::facts::kernel::{initramfs, kernel_facts, modules::WANTED};

fn tool(name: &str, package: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "`{name}` not found: install the Debian package `{package}` (apt-get install {package})"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn norm(name: &str) -> String {
    let n = name.trim_start_matches("./").trim_start_matches('/');
    if n.is_empty() { "." } else { n }.to_string()
}

fn lines_set(out: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(norm)
        .collect()
}

fn ours(data: &[u8]) -> (initramfs::Listing, BTreeSet<String>) {
    let l = initramfs::list(data);
    let set = l.members.iter().map(|m| norm(&m.name)).collect();
    (l, set)
}

const IMAGES: [&str; 7] = [
    "gen1-mbr-ext4",
    "gen2-gpt-ext4",
    "gen2-gpt-xfs",
    "gen2-gpt-btrfs",
    "hybrid-gpt",
    "rhel-lvm",
    "separate-var",
];

#[test]
fn fixture_images_match_lsinitramfs_and_files() {
    let lsinitramfs = tool("lsinitramfs", "initramfs-tools-core");
    tool("cpio", "cpio");
    tool("zstd", "zstd");
    let dir = fixture_dir();
    let tmp = tempfile::tempdir().unwrap();
    for name in IMAGES {
        let img = dir.join(format!("{name}.raw"));
        let man = dir.join(format!("{name}.json"));
        assert!(
            img.exists() && man.exists(),
            "fixture {name} missing in {}: build it with `fixtures/build-images.sh` (scripts/test.sh does)",
            dir.display()
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&man).unwrap()).unwrap();
        let version = manifest["boot"]["kernel"].as_str().expect("boot.kernel");
        let grub_cfg = manifest["boot"]["grub_cfg"]
            .as_str()
            .expect("boot.grub_cfg");

        let image = DiskImage::open(&img).unwrap();
        let (_, _, guest) = vhdprep_guest::inspect(&image).unwrap();
        let guest = guest.unwrap_or_else(|| panic!("{name}: no guest"));
        let tree = &guest.tree;
        let facts = kernel_facts(tree);
        serde_json::to_string(&facts).unwrap();

        let k = facts
            .kernels
            .iter()
            .find(|k| k.version == version)
            .unwrap_or_else(|| panic!("{name}: kernel {version} not found"));
        assert_eq!(
            k.vmlinuz.as_deref(),
            Some(format!("/boot/vmlinuz-{version}").as_str())
        );
        assert_eq!(
            k.config.as_deref(),
            Some(format!("/boot/config-{version}").as_str())
        );
        assert!(k.modules_dir.is_some(), "{name}: modules dir");

        // Initramfs listing vs lsinitramfs on the same bytes.
        let ir = k
            .initramfs
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no initramfs ({:?})", k.initramfs_error));
        assert_eq!(ir.path, format!("/boot/initrd.img-{version}"));
        let bytes = tree.read_file(ir.path.as_bytes(), 1 << 30).unwrap();
        let (listing, our_set) = ours(&bytes);
        assert_eq!(listing.error, None, "{name}: {:?}", listing.segments);
        let f = tmp.path().join(format!("{name}.initrd"));
        std::fs::write(&f, &bytes).unwrap();
        let theirs = lines_set(&run(Command::new(&lsinitramfs).arg(&f)));
        assert!(
            theirs.len() > 100,
            "{name}: lsinitramfs listed {}",
            theirs.len()
        );
        let only_ours: Vec<_> = our_set.difference(&theirs).take(10).collect();
        let only_theirs: Vec<_> = theirs.difference(&our_set).take(10).collect();
        assert!(
            only_ours.is_empty() && only_theirs.is_empty(),
            "{name}: only ours {only_ours:?}, only lsinitramfs {only_theirs:?}"
        );
        assert_eq!(ir.listing.member_count, listing.member_count);

        // Module findings vs `lsinitramfs | grep`.
        for w in WANTED {
            let in_theirs = theirs.iter().any(|p| {
                let base = p.rsplit('/').next().unwrap_or("");
                [".ko", ".ko.xz", ".ko.zst", ".ko.gz"].iter().any(|s| {
                    base.strip_suffix(s)
                        .is_some_and(|m| m.replace('-', "_") == w.name)
                })
            });
            let p = k.module(w.name).unwrap();
            assert_eq!(
                p.in_initramfs.is_some(),
                in_theirs,
                "{name}: {} in initramfs",
                w.name
            );
        }

        // modules.builtin and config vs the files.
        let mdir = k.modules_dir.as_ref().unwrap();
        let builtin = String::from_utf8(
            tree.read_file(format!("{mdir}/modules.builtin").as_bytes(), 1 << 24)
                .unwrap(),
        )
        .unwrap();
        let expect: Vec<String> = builtin
            .lines()
            .filter_map(|l| l.rsplit('/').next()?.strip_suffix(".ko"))
            .map(|m| m.replace('-', "_"))
            .collect();
        assert_eq!(k.builtin, expect, "{name}: modules.builtin");
        let config = String::from_utf8(
            tree.read_file(format!("/boot/config-{version}").as_bytes(), 1 << 24)
                .unwrap(),
        )
        .unwrap();
        for p in &k.modules {
            let w = WANTED.iter().find(|w| w.name == p.name).unwrap();
            let expect = w.kconfig.iter().find_map(|opt| {
                config.lines().enumerate().find_map(|(n, l)| {
                    let v = l.strip_prefix(&format!("{opt}="))?;
                    (v == "y" || v == "m").then(|| (opt.to_string(), v.to_string(), n + 1))
                })
            });
            let got = p
                .config
                .as_ref()
                .map(|c| (c.option.clone(), c.value.clone(), c.line));
            assert_eq!(got, expect, "{name}: config for {}", p.name);
            let in_builtin = expect_builtin(&builtin, &p.name);
            assert_eq!(p.builtin, in_builtin, "{name}: builtin {}", p.name);
        }
        // Debian cloud kernel: the Hyper-V storage path is there before root is mounted.
        assert!(k.module("hv_vmbus").unwrap().early(), "{name}: hv_vmbus");
        assert!(
            k.module("hv_storvsc").unwrap().early(),
            "{name}: hv_storvsc"
        );

        // grub.cfg linux line vs the manifest, and vs the file's own text.
        let cfg_text =
            String::from_utf8(tree.read_file(grub_cfg.as_bytes(), 1 << 24).unwrap()).unwrap();
        let first_linux = cfg_text
            .lines()
            .enumerate()
            .find(|(_, l)| l.trim_start().starts_with("linux"))
            .expect("a linux line");
        let eff = facts
            .cmdlines
            .effective_source()
            .unwrap_or_else(|| panic!("{name}: no effective command line"));
        assert_eq!(eff.kind, SourceKind::GrubCfg);
        assert_eq!(eff.file, grub_cfg);
        assert_eq!(eff.line, first_linux.0 + 1, "{name}: default entry line");
        assert!(eff.default);
        let kernel = eff.kernel.as_ref().unwrap();
        assert!(
            kernel.path.ends_with(&format!("/vmlinuz-{version}")),
            "{name}: {}",
            kernel.path
        );
        assert!(kernel.found.is_some(), "{name}: kernel file exists");
        assert!(
            eff.initrd.iter().all(|i| i.found.is_some()),
            "{name}: initrd"
        );
        let words: Vec<&str> = first_linux.1.split_whitespace().collect();
        assert_eq!(eff.cmdline.args, words[2..], "{name}: args");
        let root = eff.root.as_ref().expect("root=");
        assert!(
            matches!(
                root.kind,
                RootRefKind::Uuid | RootRefKind::Mapper | RootRefKind::PartUuid
            ),
            "{name}: root {root:?}"
        );
        // /etc/default/grub intent is recorded with its line.
        assert!(facts
            .cmdlines
            .sources
            .iter()
            .any(|s| s.kind == SourceKind::DefaultGrub && s.file == "/etc/default/grub"));
        eprintln!(
            "{name}: {} initramfs members ({:?}), effective {:?}",
            listing.member_count,
            listing
                .segments
                .iter()
                .map(|s| s.compression)
                .collect::<Vec<_>>(),
            eff.cmdline.raw
        );
    }
}

fn expect_builtin(builtin: &str, module: &str) -> bool {
    builtin.lines().any(|l| {
        l.rsplit('/')
            .next()
            .and_then(|b| b.strip_suffix(".ko"))
            .is_some_and(|b| b.replace('-', "_") == module)
    })
}

/// A test tree: dirs, files with data of awkward lengths, a symlink, a module-looking file.
fn make_tree(root: &Path) {
    let d = root.join("usr/lib/modules/6.1.0-1/kernel/drivers/hv");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("hv_vmbus.ko"), vec![7u8; 12345]).unwrap();
    std::fs::write(d.join("hv_storvsc.ko.xz"), b"x").unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/a"), b"").unwrap();
    std::fs::write(root.join("etc/bb"), b"12").unwrap();
    std::fs::write(root.join("init"), b"#!/bin/sh\nexec /sbin/init\n").unwrap();
    let long = "n".repeat(200);
    std::fs::write(
        root.join(&long),
        (0..70_000u32).map(|x| x as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
}

fn cpio_newc(root: &Path) -> Vec<u8> {
    let cpio = tool("cpio", "cpio");
    let find = run(Command::new("find").arg(".").current_dir(root));
    let mut child = Command::new(cpio)
        .args(["-o", "-H", "newc", "--quiet"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&find).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn filter(prog: &str, package: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let p = tool(prog, package);
    let mut child = Command::new(p)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    assert!(out.status.success(), "{prog} {args:?}");
    out.stdout
}

fn cpio_t(archive: &[u8]) -> BTreeSet<String> {
    lines_set(&filter("cpio", "cpio", &["-t", "--quiet"], archive))
}

#[test]
fn crafted_archives_match_cpio_t() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    make_tree(&root);
    let archive = cpio_newc(&root);
    let expect = cpio_t(&archive);
    assert!(expect.contains("usr/lib/modules/6.1.0-1/kernel/drivers/hv/hv_vmbus.ko"));
    assert!(expect.len() >= 12);

    let (l, set) = ours(&archive);
    assert_eq!(l.error, None);
    assert_eq!(set, expect, "uncompressed");

    let variants: [(&str, &str, &[&str], Compression); 5] = [
        ("gzip", "gzip", &["-9", "-c"], Compression::Gzip),
        ("zstd", "zstd", &["-19", "-q", "-c"], Compression::Zstd),
        ("xz", "xz-utils", &["--check=crc32", "-c"], Compression::Xz),
        ("lz4", "lz4", &["-l", "-9", "-c"], Compression::Lz4Legacy),
        ("bzip2", "bzip2", &["-c"], Compression::Bzip2),
    ];
    for (prog, package, args, comp) in variants {
        let c = filter(prog, package, args, &archive);
        let (l, set) = ours(&c);
        assert_eq!(l.error, None, "{prog}");
        assert_eq!(l.segments.len(), 1, "{prog}");
        assert_eq!(l.segments[0].compression, comp, "{prog}");
        assert_eq!(set, expect, "{prog}");
        // truncated: an error, members seen so far kept, no panic
        let (l, _) = ours(&c[..c.len() * 2 / 3]);
        assert!(l.error.is_some(), "{prog} truncated");
        // early uncompressed cpio then this compressed one (the kernel's layout)
        let early_root = tmp.path().join(format!("early-{prog}"));
        std::fs::create_dir_all(early_root.join("kernel/x86/microcode")).unwrap();
        std::fs::write(
            early_root.join("kernel/x86/microcode/GenuineIntel.bin"),
            b"ucode",
        )
        .unwrap();
        let early = cpio_newc(&early_root);
        let mut both = early.clone();
        both.extend_from_slice(&c);
        let (l, set) = ours(&both);
        assert_eq!(l.error, None, "early+{prog}");
        assert_eq!(l.segments.len(), 2, "early+{prog}");
        assert_eq!(l.segments[0].compression, Compression::None);
        assert_eq!(l.segments[1].compression, comp);
        let mut want = cpio_t(&early);
        want.extend(expect.iter().cloned());
        assert_eq!(set, want, "early+{prog}");
    }
}

#[test]
fn crafted_early_and_gzip_match_lsinitramfs() {
    let lsinitramfs = tool("lsinitramfs", "initramfs-tools-core");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    make_tree(&root);
    let early_root = tmp.path().join("early");
    std::fs::create_dir_all(early_root.join("kernel/x86/microcode")).unwrap();
    std::fs::write(
        early_root.join("kernel/x86/microcode/AuthenticAMD.bin"),
        b"u",
    )
    .unwrap();
    let mut img = cpio_newc(&early_root);
    img.extend(filter("gzip", "gzip", &["-c"], &cpio_newc(&root)));
    let f = tmp.path().join("initrd.img");
    std::fs::write(&f, &img).unwrap();
    let theirs = lines_set(&run(Command::new(lsinitramfs).arg(&f)));
    let (l, set) = ours(&img);
    assert_eq!(l.error, None);
    assert_eq!(set, theirs);
}
