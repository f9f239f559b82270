//! Kernels that live on the ESP, on real parts: a unified kernel image built with `objcopy
//! --add-section` over systemd's own stub (Debian `systemd-boot-efi`) from the Debian
//! fixture's real kernel and initrd, compared with `objdump -h`; systemd-boot itself
//! (`systemd-bootx64.efi`) as the removable-media loader with `loader.conf`, Type #1 and
//! Type #2 entries, compared with `bootctl list`; a mkosi-like layout (grub.cfg, kernel and
//! initrd on the ESP, the root's `/boot` emptied); and the root found by its discoverable GPT
//! type with no fstab. Each is a copy of the `gen2-gpt-ext4` fixture changed with debugfs,
//! mtools and sgdisk; `check` must find the kernel (no KRN-001 error) and the command line
//! (BOOT-014 from the boot loader's entry), and add no error the fixture does not have.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use vhdprep_check::report::Report;
use vhdprep_check::{Policy, Severity};
use vhdprep_guest::facts::boot::uki::{self, EfiKind};

const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
const SD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
/// Root partition type for x86-64 of the Discoverable Partitions Specification.
const ROOT_X86_64: &str = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
const CMDLINE: &str =
    "root=UUID=0b3cf3a2-6f4f-4c1e-9d55-2a1f5e6c0e01 ro console=ttyS0,115200 earlyprintk=ttyS0,115200 rootdelay=300";

fn need(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install Debian package systemd-boot-efi (scripts/test.sh does)"
    );
}

/// The fixture's kernel, initrd and os-release, dumped from its root with debugfs.
struct Parts {
    vmlinuz: PathBuf,
    initrd: PathBuf,
    osrel: PathBuf,
}

fn dump(v: &Variant, guest: &str, host: &Path) {
    v.debugfs("/", &[format!("dump \"{guest}\" \"{}\"", host.display())]);
    assert!(
        host.metadata().is_ok_and(|m| m.len() > 0),
        "{guest} not dumped"
    );
}

fn parts(v: &Variant) -> Parts {
    let k = v.kernel();
    let d = v.dir.path();
    let p = Parts {
        vmlinuz: d.join("vmlinuz"),
        initrd: d.join("initrd"),
        osrel: d.join("os-release"),
    };
    dump(v, &format!("/boot/vmlinuz-{k}"), &p.vmlinuz);
    dump(v, &format!("/boot/initrd.img-{k}"), &p.initrd);
    dump(v, "/usr/lib/os-release", &p.osrel);
    p
}

/// A UKI from systemd's stub and the fixture's parts, the way the Arch wiki and systemd's
/// own documentation build one without ukify (not in bookworm).
fn build_uki(v: &Variant, p: &Parts, out: &Path) {
    need(STUB);
    let d = v.dir.path();
    std::fs::write(d.join("cmdline"), CMDLINE).unwrap();
    std::fs::write(d.join("uname"), v.kernel()).unwrap();
    let add = |name: &str, file: &Path, vma: &str| {
        [
            "--add-section".to_string(),
            format!("{name}={}", file.display()),
            "--change-section-vma".to_string(),
            format!("{name}={vma}"),
        ]
    };
    let mut cmd = Command::new("objcopy");
    cmd.args(add(".osrel", &p.osrel, "0x20000"))
        .args(add(".cmdline", &d.join("cmdline"), "0x30000"))
        .args(add(".uname", &d.join("uname"), "0x40000"))
        .args(add(".linux", &p.vmlinuz, "0x2000000"))
        .args(add(".initrd", &p.initrd, "0x3000000"))
        .arg(STUB)
        .arg(out);
    run(&mut cmd, "binutils");
}

/// `objdump -h`: name → (size, file offset).
fn objdump_sections(path: &Path) -> Vec<(String, u64, u64)> {
    let out = run(Command::new("objdump").arg("-h").arg(path), "binutils");
    out.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 7 && w[0].parse::<u32>().is_ok()).then(|| {
                (
                    w[1].to_string(),
                    u64::from_str_radix(w[2], 16).unwrap(),
                    u64::from_str_radix(w[5], 16).unwrap(),
                )
            })
        })
        .collect()
}

/// The errors of the unchanged fixture, judged once per test binary.
fn fixture_errors() -> &'static BTreeSet<String> {
    static BASE: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| errors(&check_path(&fixture("gen2-gpt-ext4").0, &Policy::default())))
}

fn errors(r: &Report) -> BTreeSet<String> {
    r.findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.id.to_string())
        .collect()
}

/// No error the unchanged fixture does not have, no KRN-001 at all above information, and
/// the effective command line from `expect_kind`'s source.
fn assert_boots_like_the_fixture(r: &Report, expect_source: &str) {
    let new: Vec<_> = errors(r).difference(fixture_errors()).cloned().collect();
    assert!(
        new.is_empty(),
        "errors the fixture does not have: {new:?}\n{:#?}",
        r.findings
    );
    assert_quiet(r, "KRN-001");
    let b14 = assert_fires(r, "BOOT-014", Severity::Info);
    assert!(
        b14[0].message.contains(expect_source),
        "BOOT-014 should name {expect_source}: {}",
        b14[0].message
    );
    assert!(
        findings(r, "BOOT-013")
            .iter()
            .all(|f| f.severity == Severity::Info),
        "{:#?}",
        findings(r, "BOOT-013")
    );
}

/// The fixture with the kernel and initrd gone from the root's `/boot` (and its grub.cfg).
fn empty_boot(v: &mut Variant) {
    let k = v.kernel();
    v.remove(&format!("/boot/vmlinuz-{k}"))
        .remove(&format!("/boot/initrd.img-{k}"))
        .remove("/boot/grub/grub.cfg");
}

#[test]
fn uki_sections_read_as_objdump_reads_them() {
    let v = Variant::of("gen2-gpt-ext4");
    let p = parts(&v);
    let uki_path = v.dir.path().join("uki.efi");
    build_uki(&v, &p, &uki_path);
    let bytes = std::fs::read(&uki_path).unwrap();
    let s = uki::read_bytes(&bytes).unwrap();
    assert_eq!(s.kind, EfiKind::Uki);
    let theirs = objdump_sections(&uki_path);
    assert_eq!(theirs.len(), s.sections.len(), "{theirs:?}");
    for (name, size, off) in &theirs {
        let ours = s.section(name).unwrap_or_else(|| panic!("{name} not read"));
        assert_eq!(ours.payload(), (*off, *size), "{name}");
    }
    let l = s.linux.unwrap();
    let vmlinuz = std::fs::read(&p.vmlinuz).unwrap();
    assert_eq!(
        &bytes[l.offset as usize..(l.offset + l.len) as usize],
        &vmlinuz[..]
    );
    let i = s.initrd.unwrap();
    assert_eq!(i.len, p.initrd.metadata().unwrap().len());
    assert_eq!(s.cmdline.as_deref(), Some(CMDLINE));
    assert_eq!(s.uname.as_deref(), Some(v.kernel().as_str()));
    assert_eq!(
        uki::bzimage_release(&vmlinuz).as_deref(),
        Some(v.kernel().as_str())
    );
    assert_eq!(s.os_release.as_ref().unwrap().id.as_deref(), Some("debian"));
    // systemd-boot is recognised by its .sdmagic; the bare stub is no UKI.
    need(SD_BOOT);
    let sd = uki::read_bytes(&std::fs::read(SD_BOOT).unwrap()).unwrap();
    assert_eq!(sd.kind, EfiKind::SystemdBoot, "{:?}", sd.sdmagic);
    let stub = uki::read_bytes(&std::fs::read(STUB).unwrap()).unwrap();
    assert_eq!(stub.kind, EfiKind::Other);
    assert!(stub.section(".sdmagic").is_some());
}

/// systemd-boot as `EFI/BOOT/BOOTX64.EFI` and `EFI/systemd/`, `loader/loader.conf`.
fn install_systemd_boot(v: &Variant, loader_conf: &str) {
    need(SD_BOOT);
    let conf = v.dir.path().join("loader.conf");
    std::fs::write(&conf, loader_conf).unwrap();
    v.mtools("mmd", &["::/EFI/systemd", "::/loader", "::/loader/entries"])
        .mtools("mcopy", &[SD_BOOT, "::/EFI/systemd/systemd-bootx64.efi"])
        .mtools("mcopy", &["-o", SD_BOOT, "::/EFI/BOOT/BOOTX64.EFI"])
        .mtools("mcopy", &[conf.to_str().unwrap(), "::/loader/loader.conf"]);
}

/// `bootctl list` on a copy of the ESP (bootctl wants the ESP to be a mount point: a bind
/// mount in a private mount namespace): (id, sort-key, version, options, default).
fn bootctl_list(v: &Variant) -> Vec<(String, String, String, String, bool)> {
    let dir = v.dir.path().join("esp");
    std::fs::create_dir_all(&dir).unwrap();
    v.mtools("mcopy", &["-s", "::/", dir.to_str().unwrap()]);
    let d = dir.display();
    let out = run(
        Command::new("unshare").args([
            "-m",
            "sh",
            "-c",
            &format!("mount --bind {d} {d} && SYSTEMD_RELAX_ESP_CHECKS=1 bootctl --esp-path={d} --no-variables --no-pager list"),
        ]),
        "systemd-boot (bootctl), util-linux (unshare), mount",
    );
    let mut entries = Vec::new();
    let mut cur: Option<(String, String, String, String, bool)> = None;
    for l in out.lines() {
        let Some((k, val)) = l.trim().split_once(": ") else {
            continue;
        };
        match k {
            "type" => {
                if let Some(c) = cur.take() {
                    entries.push(c);
                }
                cur = Some(Default::default());
            }
            "title" => {
                if let Some(c) = cur.as_mut() {
                    c.4 = val.contains("(default)");
                }
            }
            "id" | "sort-key" | "version" | "options" => {
                if let Some(c) = cur.as_mut() {
                    let slot = match k {
                        "id" => &mut c.0,
                        "sort-key" => &mut c.1,
                        "version" => &mut c.2,
                        _ => &mut c.3,
                    };
                    *slot = val.to_string();
                }
            }
            _ => {}
        }
    }
    entries.extend(cur);
    entries
}

#[test]
fn systemd_boot_with_a_uki_and_a_type1_entry_boots_like_the_fixture() {
    let mut v = Variant::of("gen2-gpt-ext4");
    let p = parts(&v);
    let k = v.kernel();
    let uki_path = v.dir.path().join("uki.efi");
    build_uki(&v, &p, &uki_path);
    // An older-looking Type #1 entry as kernel-install writes it (entry token "debian"),
    // with the kernel and initrd beside it on the ESP.
    let entry = v.dir.path().join("entry.conf");
    std::fs::write(
        &entry,
        format!("title      Debian GNU/Linux 12 (bookworm)\nversion    {k}\nsort-key   debian\noptions    {CMDLINE} quiet\nlinux      /debian/{k}/linux\ninitrd     /debian/{k}/initrd\n"),
    )
    .unwrap();
    install_systemd_boot(&v, "timeout 3\ndefault debian-*.efi\n");
    v.mtools(
        "mmd",
        &["::/EFI/Linux", "::/debian", &format!("::/debian/{k}")],
    )
    .mtools(
        "mcopy",
        &[
            uki_path.to_str().unwrap(),
            &format!("::/EFI/Linux/debian-{k}.efi"),
        ],
    )
    .mtools(
        "mcopy",
        &[p.vmlinuz.to_str().unwrap(), &format!("::/debian/{k}/linux")],
    )
    .mtools(
        "mcopy",
        &[p.initrd.to_str().unwrap(), &format!("::/debian/{k}/initrd")],
    )
    .mtools(
        "mcopy",
        &[
            entry.to_str().unwrap(),
            &format!("::/loader/entries/debian-{k}.conf"),
        ],
    );
    empty_boot(&mut v);
    let image = vhdprep_disk::DiskImage::open(&v.path).unwrap();
    let policy = Policy::default();
    let ctx = vhdprep_check::Context::gather(&image, &[], &policy).unwrap();
    assert_boots_like_the_fixture(&Report::build(&ctx), "unified kernel image");

    // What bootctl lists is what we read: ids, sort keys, versions, options, the default.
    let guest = &ctx.guest.as_ref().unwrap().tree;
    let ours = vhdprep_guest::facts::boot::esp_kernel::gather(guest);
    let theirs = bootctl_list(&v);
    assert_eq!(theirs.len(), ours.entries.len(), "bootctl: {theirs:#?}");
    for (i, (t, o)) in theirs.iter().zip(&ours.entries).enumerate() {
        assert_eq!(t.0, o.id, "entry {i}");
        assert_eq!(t.1, o.sort_key.clone().unwrap_or_default(), "entry {i}");
        assert_eq!(t.2, o.version.clone().unwrap_or_default(), "entry {i}");
        assert_eq!(t.3, o.cmdline, "entry {i}");
        assert_eq!(t.4, ours.default == Some(i), "default, entry {i}");
    }
    assert!(ours.fallback_boots_entries);
}

#[test]
fn discoverable_root_without_fstab_and_the_esp_found_by_type() {
    let mut v = Variant::of("gen2-gpt-ext4");
    let p = parts(&v);
    let uki_path = v.dir.path().join("uki.efi");
    build_uki(&v, &p, &uki_path);
    install_systemd_boot(&v, "timeout 0\n");
    v.mtools("mmd", &["::/EFI/Linux"]).mtools(
        "mcopy",
        &[uki_path.to_str().unwrap(), "::/EFI/Linux/debian.efi"],
    );
    empty_boot(&mut v);
    v.remove("/etc/fstab");
    run(
        Command::new("sgdisk")
            .arg(format!("--typecode=2:{ROOT_X86_64}"))
            .arg(&v.path),
        "gdisk",
    );
    let image = vhdprep_disk::DiskImage::open(&v.path).unwrap();
    let policy = Policy::default();
    let ctx = vhdprep_check::Context::gather(&image, &[], &policy).unwrap();
    let g = ctx.guest.as_ref().unwrap();
    assert!(g.fstab.is_empty());
    // /boot still holds config-<v> and grub/: the ESP goes to /efi.
    assert_eq!(g.discovered.len(), 1, "{:?}", g.discovered);
    assert_eq!(g.discovered[0].mountpoint, "/efi");
    assert!(g.tree.exists(b"/efi/EFI/Linux/debian.efi"));
    let r = Report::build(&ctx);
    let new: Vec<_> = errors(&r).difference(fixture_errors()).cloned().collect();
    assert!(new.is_empty(), "new errors {new:?}: {:#?}", r.findings);
    assert_quiet(&r, "KRN-001");
}

#[test]
fn mkosi_like_grub_cfg_kernel_and_initrd_on_the_esp() {
    let mut v = Variant::of("gen2-gpt-ext4");
    let p = parts(&v);
    let k = v.kernel();
    // The fixture's own generated grub.cfg, its paths made relative to the ESP, replacing
    // the ESP's configfile stub; the kernel and initrd at the ESP's top.
    let cfg = v
        .read("/boot/grub/grub.cfg")
        .replace("/boot/vmlinuz-", "/vmlinuz-")
        .replace("/boot/initrd.img-", "/initrd.img-");
    assert!(
        cfg.contains(&format!("linux\t/vmlinuz-{k}"))
            || cfg.contains(&format!("linux /vmlinuz-{k}"))
    );
    let host_cfg = v.dir.path().join("grub.cfg");
    std::fs::write(&host_cfg, cfg).unwrap();
    v.mtools(
        "mcopy",
        &["-o", host_cfg.to_str().unwrap(), "::/EFI/debian/grub.cfg"],
    )
    .mtools(
        "mcopy",
        &[p.vmlinuz.to_str().unwrap(), &format!("::/vmlinuz-{k}")],
    )
    .mtools(
        "mcopy",
        &[p.initrd.to_str().unwrap(), &format!("::/initrd.img-{k}")],
    );
    empty_boot(&mut v);
    let image = vhdprep_disk::DiskImage::open(&v.path).unwrap();
    let policy = Policy::default();
    let ctx = vhdprep_check::Context::gather(&image, &[], &policy).unwrap();
    assert_boots_like_the_fixture(&Report::build(&ctx), "/boot/efi/EFI/debian/grub.cfg");
    // The hv drivers were judged from the initrd on the ESP.
    let kern = ctx.kernel.as_ref().unwrap();
    let kk = kern.kernels.iter().find(|x| x.version == k).unwrap();
    assert_eq!(
        kk.vmlinuz.as_deref(),
        Some(format!("/boot/efi/vmlinuz-{k}").as_str())
    );
    let ir = kk.initramfs.as_ref().unwrap();
    assert_eq!(ir.path, format!("/boot/efi/initrd.img-{k}"));
    assert!(ir.listing.error.is_none() && ir.listing.member_count > 100);
}

#[test]
fn a_missing_linux_of_the_default_entry_is_reported() {
    let mut v = Variant::of("gen2-gpt-ext4");
    let k = v.kernel();
    let entry = v.dir.path().join("entry.conf");
    std::fs::write(
        &entry,
        format!("title Debian\nversion {k}\noptions {CMDLINE}\nlinux /debian/{k}/linux\ninitrd /debian/{k}/initrd\n"),
    )
    .unwrap();
    install_systemd_boot(&v, "default debian*\n");
    v.mtools(
        "mcopy",
        &[entry.to_str().unwrap(), "::/loader/entries/debian.conf"],
    );
    empty_boot(&mut v);
    let r = v.check(&Policy::default());
    let f = assert_fires(&r, "BOOT-013", Severity::Warning);
    assert!(
        f.iter()
            .any(|f| f.message.contains(&format!("/debian/{k}/linux"))),
        "{f:#?}"
    );
    let b14 = assert_fires(&r, "BOOT-014", Severity::Info);
    assert!(
        b14[0].message.contains("systemd-boot entry"),
        "{}",
        b14[0].message
    );
    // Nothing to boot: KRN-001 says so.
    assert_fires(&r, "KRN-001", Severity::Error);
}
