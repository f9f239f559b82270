//! Unit tests of the ESP boot-entry gathering on in-memory guests (the real layout, with
//! systemd's own stub and boot loader, is in `crates/check/tests/check_uki.rs`).

use super::*;
use crate::facts::boot::uki::tests::build;
use crate::tree::memfs::MemFs;
use std::sync::Arc;

fn guest(fs: MemFs) -> GuestTree {
    GuestTree::new(Arc::new(fs), "mem")
}

fn esp() -> MemFs {
    MemFs::default()
        .dir("/")
        .dir("/efi")
        .dir("/efi/EFI")
        .dir("/efi/EFI/systemd")
        .file_bytes(
            "/efi/EFI/systemd/systemd-bootx64.efi",
            &build(&[(".sdmagic", b"#### LoaderInfo: systemd-boot 252 ####\0")]),
        )
        .dir("/efi/EFI/BOOT")
        .file_bytes(
            "/efi/EFI/BOOT/BOOTX64.EFI",
            &build(&[(".sdmagic", b"#### LoaderInfo: systemd-boot 252 ####\0")]),
        )
        .dir("/efi/loader")
        .dir("/efi/loader/entries")
}

#[test]
fn type1_entries_and_ukis_in_menu_order_with_the_configured_default() {
    let fs = esp()
        .file("/efi/loader/loader.conf", "timeout 3\ndefault old*\n")
        .file(
            "/efi/loader/entries/old.conf",
            "title Old\nversion 6.1.0-9-amd64\nlinux /vmlinuz-6.1.0-9-amd64\ninitrd /ucode.img\ninitrd /initrd.img-6.1.0-9-amd64\noptions root=UUID=1\noptions console=ttyS0\n",
        )
        .file("/efi/vmlinuz-6.1.0-9-amd64", "k")
        .file("/efi/initrd.img-6.1.0-9-amd64", "i")
        .dir("/efi/EFI/Linux")
        .file_bytes(
            "/efi/EFI/Linux/debian-6.1.0-13-amd64.efi",
            &build(&[
                (".osrel", b"ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian 12\"\n"),
                (".cmdline", b"console=ttyS0 rootdelay=300"),
                (".uname", b"6.1.0-13-amd64"),
                (".initrd", b"07070100"),
                (".linux", b"MZ"),
            ]),
        );
    let fs = fs.file(
        "/efi/loader/entries/zz-empty.conf",
        "title nothing to boot\n",
    );
    let l = gather(&guest(fs));
    assert_eq!(l.boot_roots, ["/efi"]);
    assert!(l.problems.iter().any(|p| p.contains("zz-empty.conf")));
    assert!(l.fallback_boots_entries);
    assert_eq!(l.systemd_boot.len(), 2);
    assert_eq!(l.entries.len(), 2);
    // The UKI has a sort key (ID=debian): it comes first.
    assert_eq!(l.entries[0].kind, EntryKind::Uki);
    assert_eq!(l.entries[0].release.as_deref(), Some("6.1.0-13-amd64"));
    assert_eq!(l.entries[0].title.as_deref(), Some("Debian 12"));
    let d = l.default_entry().unwrap();
    assert_eq!(d.id, "old.conf");
    assert_eq!(d.cmdline, "root=UUID=1 console=ttyS0");
    assert_eq!(d.cmdline_line, 6);
    assert_eq!(
        d.kernel.as_ref().unwrap().file.as_deref(),
        Some("/efi/vmlinuz-6.1.0-9-amd64")
    );
    assert_eq!(d.initrd[0].file, None, "the missing /ucode.img");
    assert!(d.initrd[1].file.is_some());

    let mut lines = CommandLines::default();
    add_sources(&l, &mut lines);
    let eff = lines.effective_source().unwrap();
    assert_eq!(eff.kind, SourceKind::SystemdBoot);
    assert_eq!(eff.line, 6);
    assert!(eff.initrd.iter().any(|i| i.found.is_none()));
    let uki = lines
        .sources
        .iter()
        .find(|s| s.kind == SourceKind::Uki)
        .unwrap();
    assert_eq!(uki.cmdline.raw, "console=ttyS0 rootdelay=300");
    assert!(uki
        .kernel
        .as_ref()
        .unwrap()
        .found
        .as_deref()
        .unwrap()
        .ends_with("(.linux)"));
}

#[test]
fn without_systemd_boot_type1_entries_are_left_to_grub() {
    let fs = MemFs::default()
        .dir("/")
        .dir("/boot")
        .dir("/boot/loader")
        .dir("/boot/loader/entries")
        .file("/boot/loader/entries/a.conf", "linux /vmlinuz-1\n");
    let l = gather(&guest(fs));
    assert!(l.entries.is_empty() && l.systemd_boot.is_empty() && l.default.is_none());
}

#[test]
fn a_uki_as_the_removable_media_loader_is_the_default() {
    let fs = MemFs::default()
        .dir("/")
        .dir("/boot")
        .dir("/boot/efi")
        .dir("/boot/efi/EFI")
        .dir("/boot/efi/EFI/BOOT")
        .file_bytes(
            "/boot/efi/EFI/BOOT/BOOTX64.EFI",
            &build(&[(".cmdline", b"console=ttyS0"), (".linux", b"MZ")]),
        );
    let l = gather(&guest(fs));
    assert!(l.fallback_boots_entries);
    let d = l.default_entry().unwrap();
    assert_eq!(d.kind, EntryKind::Uki);
    assert_eq!(d.cmdline, "console=ttyS0");
}

#[test]
fn grub_cfg_on_an_esp_at_efi_resolves_its_paths_there() {
    let fs = MemFs::default()
        .dir("/")
        .dir("/boot")
        .dir("/efi")
        .dir("/efi/EFI")
        .dir("/efi/EFI/debian")
        .file(
            "/efi/EFI/debian/grub.cfg",
            "menuentry 'Debian' {\n linux /vmlinuz-6.1 root=UUID=1 console=ttyS0\n initrd /initrd.img-6.1\n}\n",
        )
        .file("/efi/vmlinuz-6.1", "k")
        .file("/efi/initrd.img-6.1", "i");
    let l = gather(&guest(fs));
    assert_eq!(l.esp_grub.len(), 1);
    let mut lines = CommandLines::default();
    add_sources(&l, &mut lines);
    let eff = lines.effective_source().unwrap();
    assert_eq!(eff.kind, SourceKind::GrubCfg);
    assert_eq!(
        eff.kernel.as_ref().unwrap().found.as_deref(),
        Some("/efi/vmlinuz-6.1")
    );
    assert_eq!(eff.initrd[0].found.as_deref(), Some("/efi/initrd.img-6.1"));
}

#[test]
fn hostile_entries_are_bounded() {
    let mut fs = esp();
    for i in 0..(MAX_ENTRIES + 10) {
        fs = fs.file(&format!("/efi/loader/entries/e{i}.conf"), "linux /nope\n");
    }
    fs = fs
        .dir("/efi/EFI/Linux")
        .file("/efi/EFI/Linux/broken.efi", "MZ not really");
    let l = gather(&guest(fs));
    assert_eq!(l.entries.len(), MAX_ENTRIES + 1);
    assert!(l.problems.iter().any(|p| p.contains("only the first")));
    let broken = l.entries.iter().find(|e| e.kind == EntryKind::Uki).unwrap();
    assert!(broken.kernel.is_none() && !broken.problems.is_empty());
}

#[test]
fn xbootldr_at_boot_holds_entries_and_ukis_for_the_esp_at_efi() {
    let fs = esp()
        .dir("/boot")
        .dir("/boot/loader")
        .dir("/boot/loader/entries")
        .file(
            "/boot/loader/entries/fedora-6.5.conf",
            "title Fedora\nversion 6.5.6\nlinux /8a1b/6.5.6/linux\ninitrd /8a1b/6.5.6/initrd\noptions root=UUID=2\n",
        )
        .dir("/boot/8a1b")
        .dir("/boot/8a1b/6.5.6")
        .file("/boot/8a1b/6.5.6/linux", "k")
        .file("/boot/8a1b/6.5.6/initrd", "i")
        .dir("/boot/EFI")
        .dir("/boot/EFI/Linux")
        .file_bytes(
            "/boot/EFI/Linux/fedora-6.6.efi",
            &build(&[(".uname", b"6.6.1"), (".linux", b"MZ")]),
        );
    let l = gather(&guest(fs));
    assert_eq!(l.boot_roots, ["/efi", "/boot"]);
    let ids: Vec<&str> = l.entries.iter().map(|e| e.id.as_str()).collect();
    // No sort key on either: decreasing file name order.
    assert_eq!(ids, ["fedora-6.6.efi", "fedora-6.5.conf"]);
    let t1 = &l.entries[1];
    assert_eq!(t1.boot_root, "/boot");
    assert_eq!(
        t1.kernel.as_ref().unwrap().file.as_deref(),
        Some("/boot/8a1b/6.5.6/linux")
    );
    assert_eq!(l.default, Some(0));
    assert_eq!(l.entries[0].release.as_deref(), Some("6.6.1"));
}

#[test]
fn the_esp_mount_point_is_not_the_efi_directory_of_boot() {
    // Debian: the ESP at /boot/efi holds EFI/BOOT/BOOTX64.EFI = systemd-boot; /boot itself
    // (ext4) has no EFI directory, only the mount point `efi`.
    let sd = build(&[(".sdmagic", b"#### LoaderInfo: systemd-boot 252 ####\0")]);
    let fs = MemFs::default()
        .dir("/")
        .dir("/boot")
        .dir("/boot/efi")
        .dir("/boot/efi/EFI")
        .dir("/boot/efi/EFI/BOOT")
        .file_bytes("/boot/efi/EFI/BOOT/BOOTX64.EFI", &sd);
    let l = gather(&guest(fs));
    assert_eq!(l.boot_roots, ["/boot/efi", "/boot"]);
    assert_eq!(l.systemd_boot, ["/boot/efi/EFI/BOOT/BOOTX64.EFI"]);
}
