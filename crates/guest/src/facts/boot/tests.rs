//! Unit tests of the boot facts on synthetic disks and an in-memory ESP (the real images are
//! compared with real tools in `crates/guest/tests/facts_boot.rs`).

use super::authenticode::tests::signed_data;
use super::grub_pc::tests::{fake_boot_img, fake_diskboot};
use super::pe::tests::build_pe;
use super::*;
use crate::tree::memfs::MemFs;
use std::sync::Arc;
use vhdprep_partition::read_partitions;

fn put(fs: &mut MemFs, path: &str, data: Vec<u8>) {
    fs.nodes
        .insert(path.as_bytes().to_vec(), (FileKind::File, data));
}

fn shim() -> Vec<u8> {
    let sig = signed_data(
        &[
            (
                "Microsoft Windows UEFI Driver Publisher",
                "Microsoft Corporation UEFI CA 2011",
                1,
            ),
            (
                "Microsoft Corporation UEFI CA 2011",
                "Microsoft Corporation Third Party Marketplace Root",
                2,
            ),
        ],
        ("Microsoft Corporation UEFI CA 2011", 1),
    );
    build_pe(pe::MACHINE_X64, &[(0x200, 2, sig)])
}

fn grub() -> Vec<u8> {
    let sig = signed_data(
        &[(
            "Debian Secure Boot Signer 2022 - grub2",
            "Debian Secure Boot CA",
            5,
        )],
        ("Debian Secure Boot CA", 5),
    );
    build_pe(pe::MACHINE_X64, &[(0x200, 2, sig)])
}

fn esp_facts_of(fs: &MemFs) -> EspFacts {
    let mut esp = EspFacts {
        source: "partition 1".into(),
        number: 1,
        filesystem: Some("vfat".into()),
        problems: vec![],
        fallback_x64: None,
        fallback_aa64: None,
        loaders: vec![],
        configs: vec![],
        boot_csvs: vec![],
    };
    let mut budget = MAX_LOADER_BYTES;
    scan_esp(fs, &mut esp, &mut budget);
    esp
}

#[test]
fn debian_like_esp() {
    let mut fs = MemFs::default()
        .dir("/")
        .dir("/efi")
        .dir("/efi/Boot")
        .dir("/efi/debian")
        .file("/efi/debian/grub.cfg", "configfile x");
    put(&mut fs, "/efi/Boot/bootx64.efi", shim());
    put(&mut fs, "/efi/Boot/grubx64.efi", grub());
    put(&mut fs, "/efi/debian/shimx64.efi", shim());
    put(&mut fs, "/efi/debian/mmx64.efi", b"MZ".to_vec());
    let esp = esp_facts_of(&fs);
    assert_eq!(esp.fallback_x64.as_deref(), Some("/efi/Boot/bootx64.efi"));
    assert_eq!(esp.configs, vec!["/efi/debian/grub.cfg".to_string()]);
    assert_eq!(esp.loaders.len(), 4);
    let roles: Vec<_> = esp.loaders.iter().map(|l| l.role).collect();
    assert!(roles.contains(&LoaderRole::Fallback) && roles.contains(&LoaderRole::Shim));
    let mm = esp
        .loaders
        .iter()
        .find(|l| l.role == LoaderRole::MokManager)
        .unwrap();
    assert!(mm.error.is_some() && mm.machine.is_none());

    let u = UefiFacts { esps: vec![esp] };
    let (ok, reasons, archs) = judge_uefi(&u);
    assert!(ok, "{reasons:?}");
    assert_eq!(archs, vec!["x64"]);
    let sb = secure_boot(&u);
    assert!(sb.ready, "{:?}", sb.reasons);
    assert!(sb.fallback_microsoft_signed && sb.grub_signed);
    assert_eq!(
        sb.grub_signers,
        vec!["Debian Secure Boot Signer 2022 - grub2"]
    );
    assert_eq!(sb.grub.as_deref(), Some("/efi/Boot/grubx64.efi"));
}

#[test]
fn loader_only_under_distro_dir_is_not_bootable() {
    let mut fs = MemFs::default().dir("/").dir("/EFI").dir("/EFI/debian");
    put(&mut fs, "/EFI/debian/shimx64.efi", shim());
    let u = UefiFacts {
        esps: vec![esp_facts_of(&fs)],
    };
    let (ok, reasons, archs) = judge_uefi(&u);
    assert!(!ok);
    assert!(reasons[0].contains("NVRAM"), "{reasons:?}");
    assert!(archs.is_empty());
    assert!(!secure_boot(&u).ready);
}

#[test]
fn wrong_machine_unsigned_and_arm64() {
    let mut fs = MemFs::default().dir("/").dir("/EFI").dir("/EFI/BOOT");
    put(
        &mut fs,
        "/EFI/BOOT/BOOTX64.EFI",
        build_pe(pe::MACHINE_ARM64, &[]),
    );
    put(
        &mut fs,
        "/EFI/BOOT/BOOTAA64.EFI",
        build_pe(pe::MACHINE_ARM64, &[]),
    );
    let u = UefiFacts {
        esps: vec![esp_facts_of(&fs)],
    };
    let (ok, reasons, archs) = judge_uefi(&u);
    assert!(ok);
    assert!(reasons.iter().any(|r| r.contains("not x64")), "{reasons:?}");
    assert_eq!(archs, vec!["arm64"]);
    let sb = secure_boot(&u);
    assert!(!sb.ready && !sb.fallback_microsoft_signed);
    assert!(
        sb.reasons[0].contains("no Authenticode"),
        "{:?}",
        sb.reasons
    );
}

#[test]
fn hostile_certificate_entries_are_reported() {
    let mut fs = MemFs::default().dir("/").dir("/EFI").dir("/EFI/BOOT");
    let pe_bytes = build_pe(
        pe::MACHINE_X64,
        &[
            (0x100, 2, vec![1, 2, 3]),
            (0x200, 2, vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
        ],
    );
    put(&mut fs, "/EFI/BOOT/BOOTX64.EFI", pe_bytes);
    let esp = esp_facts_of(&fs);
    let l = &esp.loaders[0];
    assert!(l.signatures.is_empty());
    assert_eq!(l.signature_problems.len(), 2, "{:?}", l.signature_problems);
    assert_eq!(l.arch, Some("x64"));
}

#[test]
fn no_efi_dir() {
    let fs = MemFs::default().dir("/");
    let esp = esp_facts_of(&fs);
    assert_eq!(esp.problems, vec!["no \\EFI directory".to_string()]);
    let (ok, _, _) = judge_uefi(&UefiFacts { esps: vec![esp] });
    assert!(!ok);
}

/// An MBR disk of 4 MiB with one Linux partition at LBA `start` and `boot` as LBA 0 code.
fn mbr_disk(start: u32, boot: Option<Vec<u8>>) -> Vec<u8> {
    let mut d = vec![0u8; 4 << 20];
    if let Some(b) = boot {
        d[..440].copy_from_slice(&b[..440]);
    }
    let e = 446;
    d[e + 4] = 0x83;
    d[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
    d[e + 12..e + 16].copy_from_slice(&(8192 - start).to_le_bytes());
    d[510] = 0x55;
    d[511] = 0xaa;
    d
}

#[test]
fn bios_mbr_with_core_img_in_gap() {
    let mut d = mbr_disk(2048, Some(fake_boot_img(1)));
    d[512..1024].copy_from_slice(&fake_diskboot(1, 54));
    let t = read_partitions(&d).unwrap();
    assert_eq!(t.kind, TableKind::Mbr);
    let f = boot_facts(&d, &t, &[], None);
    assert!(f.bios.boot_code.grub_boot_img);
    let gap = f.bios.post_mbr_gap.as_ref().unwrap();
    assert_eq!((gap.start_lba, gap.end_lba), (1, 2048));
    assert_eq!(
        gap.core_img.as_ref().map(|c| (c.lba, c.sectors)),
        Some((1, 55))
    );
    assert!(f.bios_bootable, "{:?}", f.bios_reasons);
    assert!(!f.uefi_bootable);
    let json = serde_json::to_string(&f).unwrap();
    assert!(json.contains("\"bios_bootable\":true"), "{json}");
}

#[test]
fn bios_negative_cases() {
    // no boot code
    let d = mbr_disk(2048, None);
    let t = read_partitions(&d).unwrap();
    let f = boot_facts(&d, &t, &[], None);
    assert!(!f.bios_bootable && !f.bios.boot_code.present);
    // GRUB boot.img pointing at an empty gap
    let d = mbr_disk(2048, Some(fake_boot_img(1)));
    let t = read_partitions(&d).unwrap();
    let f = boot_facts(&d, &t, &[], None);
    assert!(!f.bios_bootable);
    assert!(f
        .bios_reasons
        .iter()
        .any(|r| r.contains("no GRUB core.img is there")));
    // /boot/grub/i386-pc in the guest does not help when boot.img points at nothing
    let g = GuestTree::new(
        Arc::new(
            MemFs::default()
                .dir("/")
                .dir("/boot")
                .dir("/boot/grub")
                .dir("/boot/grub/i386-pc"),
        ),
        "mem",
    );
    let f = boot_facts(&d, &t, &[], Some(&g));
    assert_eq!(
        f.bios.grub_i386_pc_dir.as_deref(),
        Some("/boot/grub/i386-pc")
    );
    assert!(!f.bios_bootable);
    // non-GRUB boot code with /boot/grub/i386-pc in the guest (BOOT-002's alternative)
    let mut other = vec![0u8; 512];
    other[0] = 0xfa;
    let d = mbr_disk(2048, Some(other));
    let t = read_partitions(&d).unwrap();
    let f = boot_facts(&d, &t, &[], Some(&g));
    assert!(f.bios_bootable, "{:?}", f.bios_reasons);
    // a partition at LBA 1 leaves no gap; a hostile pointer past the end of the disk
    let d = mbr_disk(1, Some(fake_boot_img(u64::MAX)));
    let t = read_partitions(&d).unwrap();
    let f = boot_facts(&d, &t, &[], None);
    assert!(!f.bios_bootable);
    assert_eq!(
        f.bios.post_mbr_gap.as_ref().map(|g| g.non_zero),
        Some(false)
    );
}

#[test]
fn empty_disk() {
    let d = vec![0u8; 1 << 20];
    let t = read_partitions(&d).unwrap();
    let f = boot_facts(&d, &t, &[], None);
    assert!(!f.bios_bootable && !f.uefi_bootable);
    assert_eq!(f.uefi_reasons, vec!["no EFI System Partition".to_string()]);
}

#[test]
fn read_budget_is_respected() {
    let mut fs = MemFs::default().dir("/").dir("/EFI").dir("/EFI/BOOT");
    put(&mut fs, "/EFI/BOOT/BOOTX64.EFI", shim());
    let mut esp = esp_facts_of(&MemFs::default().dir("/"));
    esp.problems.clear();
    let mut budget = 100;
    scan_esp(&fs, &mut esp, &mut budget);
    assert_eq!(budget, 100, "nothing read");
    let l = &esp.loaders[0];
    assert!(l.error.as_deref().unwrap().contains("read limit"), "{l:?}");
    // present but unexamined still counts as the fallback loader (BOOT-003 is about presence)
    let (ok, reasons, archs) = judge_uefi(&UefiFacts { esps: vec![esp] });
    assert!(ok, "{reasons:?}");
    assert_eq!(archs, vec!["x64"]);
}

/// The fake shim with the UTF-16 literals a real build embeds (upstream names for `sfx`, or
/// SUSE's `fallback.efi`/`grub.efi`).
fn named_shim(sfx: &str, suse: bool) -> Vec<u8> {
    let mut b = shim();
    let names = if suse {
        vec![
            "\\fallback.efi".to_string(),
            "\\EFI\\BOOT\\fallback.efi".into(),
            "\\MokManager.efi".into(),
            "\\\\grub.efi".into(),
        ]
    } else {
        vec![
            format!("\\fb{sfx}.efi"),
            format!("\\EFI\\BOOT\\fb{sfx}.efi"),
            format!("\\mm{sfx}.efi"),
            format!("\\\\grub{sfx}.efi"),
        ]
    };
    for n in names {
        b.extend(super::shim::tests::lit(&n));
    }
    b
}

fn ucs2(s: &str) -> Vec<u8> {
    let mut v = vec![0xff, 0xfe];
    v.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
    v
}

/// Red Hat's ESP: shim and fbx64.efi alone in EFI/BOOT, the rest in EFI/redhat.
fn red_hat_esp() -> MemFs {
    let mut fs = MemFs::default()
        .dir("/")
        .dir("/EFI")
        .dir("/EFI/BOOT")
        .dir("/EFI/redhat")
        .file("/EFI/redhat/grub.cfg", "search --no-floppy --fs-uuid --set=dev 1234\nset prefix=($dev)/grub2\nexport $prefix\nconfigfile $prefix/grub.cfg\n");
    put(&mut fs, "/EFI/BOOT/BOOTX64.EFI", named_shim("x64", false));
    put(&mut fs, "/EFI/BOOT/fbx64.efi", b"MZ fallback".to_vec());
    put(&mut fs, "/EFI/redhat/shimx64.efi", named_shim("x64", false));
    put(&mut fs, "/EFI/redhat/grubx64.efi", grub());
    put(&mut fs, "/EFI/redhat/mmx64.efi", b"MZ".to_vec());
    put(
        &mut fs,
        "/EFI/redhat/BOOTX64.CSV",
        ucs2("shimx64.efi,Red Hat Enterprise Linux,,This is the boot entry for Red Hat Enterprise Linux\n"),
    );
    fs
}

fn sb_of(fs: &MemFs) -> SecureBootEvidence {
    secure_boot(&UefiFacts {
        esps: vec![esp_facts_of(fs)],
    })
}

#[test]
fn red_hat_fallback_chain_reaches_grub_in_the_vendor_directory() {
    let sb = sb_of(&red_hat_esp());
    assert!(sb.ready, "{:?}", sb.reasons);
    assert_eq!(sb.grub.as_deref(), Some("/EFI/redhat/grubx64.efi"));
    let chain = sb.chain.unwrap();
    assert_eq!(
        chain.loaders,
        [
            "/EFI/BOOT/BOOTX64.EFI",
            "/EFI/BOOT/fbx64.efi",
            "/EFI/redhat/shimx64.efi",
            "/EFI/redhat/grubx64.efi"
        ]
    );
    assert!(chain.missing.is_none());
}

#[test]
fn broken_fallback_chains_name_what_is_missing() {
    // the CSV names a loader that is not there
    let mut fs = red_hat_esp();
    put(
        &mut fs,
        "/EFI/redhat/BOOTX64.CSV",
        ucs2("shim.efi,Red Hat Enterprise Linux,,\n"),
    );
    let sb = sb_of(&fs);
    assert!(!sb.ready);
    assert_eq!(
        sb.chain.unwrap().missing.as_deref(),
        Some("/EFI/redhat/shim.efi")
    );
    // GRUB missing beside the vendor shim
    let mut fs = red_hat_esp();
    fs.nodes.remove(b"/EFI/redhat/grubx64.efi".as_slice());
    let sb = sb_of(&fs);
    assert!(!sb.ready && sb.grub.is_none());
    assert_eq!(
        sb.chain.unwrap().missing.as_deref(),
        Some("/EFI/redhat/grubx64.efi")
    );
    // no CSV at all: the fallback creates nothing
    let mut fs = red_hat_esp();
    fs.nodes.remove(b"/EFI/redhat/BOOTX64.CSV".as_slice());
    let sb = sb_of(&fs);
    assert!(!sb.ready);
    assert!(sb.chain.unwrap().missing.unwrap().contains("BOOTX64.CSV"));
    // without fbx64.efi shim loads the GRUB beside itself, which EFI/BOOT lacks
    let mut fs = red_hat_esp();
    fs.nodes.remove(b"/EFI/BOOT/fbx64.efi".as_slice());
    let sb = sb_of(&fs);
    assert_eq!(
        sb.chain.unwrap().missing.as_deref(),
        Some("/EFI/BOOT/grubx64.efi")
    );
    // a CSV argument names the second stage
    let mut fs = red_hat_esp();
    put(
        &mut fs,
        "/EFI/redhat/BOOTX64.CSV",
        ucs2("shimx64.efi,RHEL,\\grubx64-alt.efi ,c\n"),
    );
    assert_eq!(
        sb_of(&fs).chain.unwrap().missing.as_deref(),
        Some("/EFI/redhat/grubx64-alt.efi")
    );
}

#[test]
fn suse_chain_uses_its_builds_names() {
    let mut fs = MemFs::default()
        .dir("/")
        .dir("/EFI")
        .dir("/EFI/boot")
        .dir("/EFI/sles");
    put(&mut fs, "/EFI/boot/bootx64.efi", named_shim("x64", true));
    put(&mut fs, "/EFI/boot/fallback.efi", b"MZ".to_vec());
    put(&mut fs, "/EFI/boot/MokManager.efi", b"MZ".to_vec());
    put(&mut fs, "/EFI/sles/shim.efi", named_shim("x64", true));
    put(&mut fs, "/EFI/sles/grub.efi", grub());
    put(
        &mut fs,
        "/EFI/sles/boot.csv",
        ucs2("shim.efi,sles-secureboot\n")[2..].to_vec(),
    );
    let sb = sb_of(&fs);
    assert!(sb.ready, "{:?}", sb.reasons);
    assert_eq!(sb.grub.as_deref(), Some("/EFI/sles/grub.efi"));
    // on Azure shim-install removes fallback.efi: shim then loads grub.efi beside itself
    fs.nodes.remove(b"/EFI/boot/fallback.efi".as_slice());
    let sb = sb_of(&fs);
    assert_eq!(
        sb.chain.unwrap().missing.as_deref(),
        Some("/EFI/boot/grub.efi")
    );
    put(&mut fs, "/EFI/boot/grub.efi", grub());
    assert!(sb_of(&fs).ready);
}

#[test]
fn arm64_fallback_chain() {
    let mut fs = MemFs::default()
        .dir("/")
        .dir("/EFI")
        .dir("/EFI/BOOT")
        .dir("/EFI/almalinux");
    let mut aa = named_shim("aa64", false);
    aa[0..2].copy_from_slice(b"MZ");
    put(&mut fs, "/EFI/BOOT/BOOTAA64.EFI", aa.clone());
    put(&mut fs, "/EFI/BOOT/fbaa64.efi", b"MZ".to_vec());
    put(&mut fs, "/EFI/almalinux/shimaa64.efi", aa);
    put(&mut fs, "/EFI/almalinux/grubaa64.efi", grub());
    // a BOOTX64.CSV does not count for arm64; BOOT.CSV does
    put(
        &mut fs,
        "/EFI/almalinux/BOOTX64.CSV",
        ucs2("nothere.efi,x\n"),
    );
    put(
        &mut fs,
        "/EFI/almalinux/BOOT.CSV",
        ucs2("shimaa64.efi,AlmaLinux,,\n"),
    );
    let sb = sb_of(&fs);
    assert_eq!(
        sb.grub.as_deref(),
        Some("/EFI/almalinux/grubaa64.efi"),
        "{:?}",
        sb.reasons
    );
}
