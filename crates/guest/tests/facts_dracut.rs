//! dracut initramfs images (the Red Hat, SUSE and Azure Linux builder) made by the real
//! `dracut` (Debian package dracut-core) from the fixture's Debian cloud kernel modules, read
//! by [`initramfs`] and compared with dracut's own `lsinitrd`:
//!
//! - zstd, as dracut writes it (`--compress zstd`);
//! - xz as dracut compresses (`xz --check=crc32 --lzma2=dict=1MiB`), after an uncompressed
//!   early cpio (what `--early-microcode` puts first), made by `cpio -o -H newc`.
//!
//! Also the dracut configuration as `/etc/dracut.conf.d/*.conf` is written (bash-like
//! `add_drivers+=" ... "`), and BLS entries with a GRUB environment block written by the real
//! `grub-editenv` (grub2-common). A missing tool fails the test naming its package.

mod fixture_images;
use fixture_images::fixture_dir;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use vhdprep_guest::facts::kernel::cmdline::{self, SourceKind};
use vhdprep_guest::facts::kernel::decompress::Compression;
use vhdprep_guest::facts::kernel::{initramfs, modules};

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

fn filter(prog: &str, package: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool(prog, package))
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

/// The member names `lsinitrd` lists (its `ls -l`-style lines, symlink targets dropped).
fn lsinitrd(img: &Path) -> BTreeSet<String> {
    let out = run(Command::new(tool("lsinitrd", "dracut-core")).arg(img));
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| {
            let b = l.as_bytes();
            b.len() > 10
                && b"-dlcbps".contains(&b[0])
                && b[1..10].iter().all(|c| b"rwxsStT-".contains(c))
        })
        .filter_map(|l| {
            let name = l.split_whitespace().nth(8)?;
            Some(name.trim_start_matches("./").to_string())
        })
        .filter(|n| n != ".")
        .collect()
}

fn ours(data: &[u8]) -> (initramfs::Listing, BTreeSet<String>) {
    let l = initramfs::list(data);
    let set = l
        .members
        .iter()
        .map(|m| m.name.trim_start_matches("./").to_string())
        .filter(|n| n != "." && !n.is_empty())
        .collect();
    (l, set)
}

/// The fixture's kernel package, unpacked into `dir` with its modules indexed by `depmod`;
/// returns the kernel release.
fn kernel_modules(dir: &Path) -> String {
    let archives = fixture_dir().join("apt-archives");
    let deb = std::fs::read_dir(&archives)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: build the fixtures (fixtures/build-images.sh)",
                archives.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("linux-image-")
                && n.contains("-cloud-amd64_")
                && !n.starts_with("linux-image-cloud-")
        })
        .expect("a linux-image-*-cloud-amd64 .deb in the fixtures' apt-archives");
    run(Command::new(tool("dpkg-deb", "dpkg"))
        .arg("-x")
        .arg(&deb)
        .arg(dir));
    let kver = std::fs::read_dir(dir.join("lib/modules"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    run(Command::new(tool("depmod", "kmod"))
        .arg("-b")
        .arg(dir)
        .arg(&kver));
    kver
}

#[test]
fn dracut_images_match_lsinitrd() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("kernel");
    let kver = kernel_modules(&root);
    let zst = tmp.path().join(format!("initramfs-{kver}.img"));
    run(Command::new(tool("dracut", "dracut-core"))
        .args([
            "--quiet",
            "--force",
            "--no-hostonly",
            "--no-early-microcode",
        ])
        .args(["--modules", "base"])
        .args(["--drivers", "hv_vmbus hv_storvsc hv_netvsc"])
        .args(["--compress", "zstd", "--kver", &kver, "--kmoddir"])
        .arg(root.join("lib/modules").join(&kver))
        .arg(&zst));
    let data = std::fs::read(&zst).unwrap();
    let (l, set) = ours(&data);
    assert_eq!(l.error, None);
    assert_eq!(l.segments.len(), 1);
    assert_eq!(l.segments[0].compression, Compression::Zstd);
    assert_eq!(set, lsinitrd(&zst), "zstd image");
    let mods: BTreeSet<String> = l
        .members
        .iter()
        .filter_map(|m| modules::module_of_path(&m.name))
        .collect();
    for m in ["hv_vmbus", "hv_storvsc", "hv_netvsc"] {
        assert!(mods.contains(m), "{m} in {mods:?}");
    }

    // Early uncompressed cpio, then the same archive as dracut compresses with xz.
    let cpio = filter("zstd", "zstd", &["-dc"], &data);
    let early_root = tmp.path().join("early");
    std::fs::create_dir_all(early_root.join("kernel/x86/microcode")).unwrap();
    std::fs::write(
        early_root.join("kernel/x86/microcode/GenuineIntel.bin"),
        b"microcode",
    )
    .unwrap();
    std::fs::write(early_root.join("early_cpio"), b"1\n").unwrap();
    let find = run(Command::new("find").arg(".").current_dir(&early_root));
    let mut child = Command::new(tool("cpio", "cpio"))
        .args(["-o", "-H", "newc", "--quiet"])
        .current_dir(&early_root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&find).unwrap();
    let mut img = child.wait_with_output().unwrap().stdout;
    let early: BTreeSet<String> =
        String::from_utf8_lossy(&filter("cpio", "cpio", &["-t", "--quiet"], &img))
            .lines()
            .map(|l| l.trim_start_matches("./").to_string())
            .filter(|n| n != "." && !n.is_empty())
            .collect();
    img.extend(filter(
        "xz",
        "xz-utils",
        &["--check=crc32", "--lzma2=dict=1MiB", "-c"],
        &cpio,
    ));
    let xz = tmp.path().join("initramfs-xz.img");
    std::fs::write(&xz, &img).unwrap();
    let (l, set) = ours(&img);
    assert_eq!(l.error, None);
    let kinds: Vec<Compression> = l.segments.iter().map(|s| s.compression).collect();
    assert_eq!(kinds, [Compression::None, Compression::Xz]);
    // lsinitrd lists the main archive (after the early one, which it skips with skipcpio).
    let theirs = lsinitrd(&xz);
    assert!(
        theirs.is_subset(&set),
        "{:?}",
        theirs.difference(&set).collect::<Vec<_>>()
    );
    assert!(early.contains("kernel/x86/microcode/GenuineIntel.bin"));
    let want: BTreeSet<String> = theirs.union(&early).cloned().collect();
    assert_eq!(set, want, "early cpio + xz image");
}

#[test]
fn bls_entries_with_a_grub_editenv_block() {
    let editenv = tool("grub-editenv", "grub2-common");
    let tmp = tempfile::tempdir().unwrap();
    let guest = tmp.path();
    for d in ["boot/grub2", "boot/loader/entries"] {
        std::fs::create_dir_all(guest.join(d)).unwrap();
    }
    let env = guest.join("boot/grub2/grubenv");
    run(Command::new(&editenv).arg(&env).arg("create"));
    run(Command::new(&editenv).arg(&env).args([
        "set",
        "kernelopts=root=/dev/mapper/rhel-root ro crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root console=ttyS0,115200n8",
        "tuned_params=skew_tick=1",
    ]));
    assert_eq!(std::fs::metadata(&env).unwrap().len(), 1024);
    // RHEL 8's grub.cfg: blscfg, default from saved_entry.
    std::fs::write(
        guest.join("boot/grub2/grub.cfg"),
        "set default=\"${saved_entry}\"\nload_env -f ${config_directory}/grubenv\ninsmod blscfg\nblscfg\n",
    )
    .unwrap();
    let mid = "0123456789abcdef0123456789abcdef";
    for (v, opts) in [
        ("4.18.0-80.el8.x86_64", "$kernelopts $tuned_params"),
        ("4.18.0-513.5.1.el8_9.x86_64", "$kernelopts $tuned_params"),
        ("0-rescue-0123", "$kernelopts"),
    ] {
        std::fs::write(
            guest.join(format!("boot/loader/entries/{mid}-{v}.conf")),
            format!("title Red Hat Enterprise Linux ({v}) 8.9 (Ootpa)\nversion {v}\nlinux /vmlinuz-{v}\ninitrd /initramfs-{v}.img $tuned_initrd\noptions {opts}\nid rhel-20231101-{v}\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class kernel\n"),
        )
        .unwrap();
        std::fs::write(guest.join(format!("boot/vmlinuz-{v}")), b"k").unwrap();
        std::fs::write(guest.join(format!("boot/initramfs-{v}.img")), b"i").unwrap();
    }
    let gather = |root: &Path| {
        let read = |p: &str| std::fs::read_to_string(root.join(p.trim_start_matches('/'))).ok();
        let list = |d: &str| -> Vec<String> {
            std::fs::read_dir(root.join(d.trim_start_matches('/')))
                .map(|r| {
                    r.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let exists = |p: &str| {
            [p.to_string(), format!("/boot{p}")]
                .into_iter()
                .find(|c| root.join(c.trim_start_matches('/')).is_file())
        };
        cmdline::gather(&read, &list, &exists)
    };
    // No saved_entry: the newest version (513 > 80, which a name sort gets wrong).
    let c = gather(guest);
    let s = c.effective_source().unwrap();
    assert_eq!(s.kind, SourceKind::Bls);
    assert!(
        s.file.ends_with("4.18.0-513.5.1.el8_9.x86_64.conf"),
        "{}",
        s.file
    );
    assert!(s.cmdline.has("console=ttyS0,115200n8") && s.cmdline.has("skew_tick=1"));
    assert_eq!(
        s.kernel.as_ref().unwrap().found.as_deref(),
        Some("/boot/vmlinuz-4.18.0-513.5.1.el8_9.x86_64")
    );
    assert_eq!(
        s.initrd.len(),
        1,
        "an unset $tuned_initrd expands to nothing"
    );
    // saved_entry (what grub2-set-default writes) picks the older one.
    run(Command::new(&editenv)
        .arg(&env)
        .args(["set", &format!("saved_entry={mid}-4.18.0-80.el8.x86_64")]));
    let c = gather(guest);
    let s = c.effective_source().unwrap();
    assert!(s.file.ends_with("4.18.0-80.el8.x86_64.conf"), "{}", s.file);
    let grubenv: Vec<_> = c
        .sources
        .iter()
        .filter(|s| s.kind == SourceKind::Grubenv)
        .collect();
    assert_eq!(grubenv.len(), 1);
    assert!(grubenv[0].cmdline.has("rd.lvm.lv=rhel/root"));
}
