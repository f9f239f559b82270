//! Boot facts on the real fixture images (fixtures/build-images.sh: GRUB's own boot.img and
//! core.img, Debian's Microsoft-signed shim and Debian-signed GRUB on a FAT ESP), compared with
//!
//! - the manifests' `boot` keys (Hyper-V generation, firmware, MBR boot code, core.img LBA and
//!   length, ESP loader path);
//! - GRUB's own images (`/usr/lib/grub/i386-pc/boot.img`, `diskboot.img`, package
//!   grub-pc-bin) and the guest's `/boot/grub/i386-pc/core.img`;
//! - `mdir` / `mcopy` (package mtools) for the ESP listing and the loader bytes,
//!   `sbverify --list` (package sbsigntool) for every loader's Authenticode signer and
//!   certificate names, and `objdump -f` (package binutils) for its PE machine.
//!
//! A missing image or tool fails the test, naming the build script or the Debian package.

mod fixture_images;
use fixture_images::fixture;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use vhdprep_disk::{DiskImage, ReadAt};
use vhdprep_guest::facts::boot::{boot_facts, BootFacts, LoaderRole};
use vhdprep_guest::{assemble, discover};

/// Fails unless `cmd` is on PATH, naming the Debian package that provides it.
fn need_tool(cmd: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{cmd}` not found: install the Debian package {package} (apt-get install {package})"
    );
}

fn need_file(path: &str, package: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!("{path}: {e}: install the Debian package {package} (apt-get install {package})")
    })
}

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn facts_of(img: &Path) -> (BootFacts, vhdprep_disk::SharedDisk, Option<Vec<u8>>) {
    let image = DiskImage::open(img).expect("open image");
    let disk = image.disk().expect("virtual disk");
    let d = discover(disk.clone()).expect("partitions");
    let table = d.table.as_ref().expect("table");
    let guest = assemble(&d.volumes);
    let f = boot_facts(
        disk.as_ref(),
        table,
        &d.volumes,
        guest.as_ref().map(|g| &g.tree),
    );
    // The ESP is read from its volume, not through the guest's fstab mounts: without a guest
    // tree the UEFI facts are the same.
    let without_guest = boot_facts(disk.as_ref(), table, &d.volumes, None);
    assert_eq!(
        serde_json::to_value(&without_guest.uefi).unwrap(),
        serde_json::to_value(&f.uefi).unwrap()
    );
    assert_eq!(without_guest.uefi_bootable, f.uefi_bootable);
    let core = guest.as_ref().and_then(|g| {
        g.tree
            .read_file(b"/boot/grub/i386-pc/core.img", 1 << 20)
            .ok()
    });
    (f, disk, core)
}

fn read(disk: &dyn ReadAt, off: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    disk.read_exact_at(&mut b, off).unwrap();
    b
}

/// `sbverify --list` output: per signature, (issuers, [(subject, issuer)]).
type SbSignatures = Vec<(Vec<String>, Vec<(String, String)>)>;

fn sbverify_list(file: &Path) -> SbSignatures {
    let (_, out) = run("sbverify", &["--list", file.to_str().unwrap()]);
    let mut sigs: SbSignatures = Vec::new();
    let mut section = "";
    for line in out.lines() {
        if line.starts_with("signature ") {
            sigs.push((vec![], vec![]));
        } else if line == "image signature issuers:" {
            section = "issuers";
        } else if line == "image signature certificates:" {
            section = "certs";
        } else if let Some(s) = line.strip_prefix(" - subject: ") {
            assert_eq!(section, "certs");
            sigs.last_mut()
                .unwrap()
                .1
                .push((s.to_string(), String::new()));
        } else if let Some(s) = line.strip_prefix("   issuer:  ") {
            sigs.last_mut().unwrap().1.last_mut().unwrap().1 = s.to_string();
        } else if let Some(s) = line.strip_prefix(" - ") {
            assert_eq!(section, "issuers");
            sigs.last_mut().unwrap().0.push(s.to_string());
        }
    }
    sigs
}

fn objdump_arch(file: &Path) -> &'static str {
    let (ok, out) = run("objdump", &["-f", file.to_str().unwrap()]);
    assert!(ok, "objdump -f {}", file.display());
    if out.contains("file format pei-x86-64") {
        "x64"
    } else if out.contains("file format pei-aarch64") {
        "arm64"
    } else {
        panic!("objdump -f {}: unexpected output {out}", file.display())
    }
}

fn check(name: &str) {
    let (img, m) = fixture(name);
    let boot = &m["boot"];
    let (f, disk, guest_core) = facts_of(&img);
    let gen = boot["hyperv_generation"].as_str().unwrap();
    let firmware = boot["firmware"].as_str().unwrap();

    // ---- generation verdicts (BOOT-002/003/005) against the manifest
    assert_eq!(
        f.bios_bootable,
        gen.contains("V1") && firmware.contains("bios"),
        "{name}: bios {:?}",
        f.bios_reasons
    );
    assert_eq!(
        f.uefi_bootable,
        gen.contains("V2") && firmware.contains("uefi"),
        "{name}: uefi {:?}",
        f.uefi_reasons
    );

    // ---- BIOS: boot.img against grub-pc-bin's, core.img against the manifest and the guest
    let lba0 = read(disk.as_ref(), 0, 512);
    assert_eq!(
        f.bios.boot_code.present,
        lba0[..440].iter().any(|&b| b != 0)
    );
    let grub_code = boot["mbr_boot_code"].as_str() == Some("grub-i386-pc");
    assert_eq!(f.bios.boot_code.grub_boot_img, grub_code, "{name}");
    if grub_code {
        let boot_img = need_file("/usr/lib/grub/i386-pc/boot.img", "grub-pc-bin");
        // grub-bios-setup patches the BPB, the core.img LBA, the boot drive and the drive
        // check (bytes < 0x68); the rest of the code area is boot.img verbatim.
        assert_eq!(lba0[0x68..0x1b8], boot_img[0x68..0x1b8], "{name}: boot.img");
        let lba = boot["core_img_lba"].as_u64().unwrap();
        let sectors = boot["core_img_sectors"].as_u64().unwrap();
        assert_eq!(f.bios.boot_code.core_img_lba, Some(lba), "{name}");
        let at_ptr = f.bios.core_img_at_boot_pointer.as_ref().expect("core.img");
        assert_eq!(
            (at_ptr.lba, at_ptr.sectors, at_ptr.contiguous),
            (lba, sectors, true)
        );
        let found = match f.table {
            vhdprep_partition::TableKind::Mbr => {
                f.bios.post_mbr_gap.as_ref().unwrap().core_img.clone()
            }
            _ => f.bios.bios_boot_partitions[0].core_img.clone(),
        };
        assert_eq!(found.as_ref(), Some(at_ptr), "{name}");
        let diskboot = need_file("/usr/lib/grub/i386-pc/diskboot.img", "grub-pc-bin");
        let first = read(disk.as_ref(), lba * 512, 512);
        assert_eq!(first[..0x1f4], diskboot[..0x1f4], "{name}: diskboot.img");
        let core = guest_core.expect("guest /boot/grub/i386-pc/core.img");
        assert_eq!(core.len().div_ceil(512) as u64, sectors, "{name}");
        // The embedded copy equals the guest's file except for the blocklist start, which
        // the installer points at the embedding location (LBA + 1).
        let mut embedded = read(disk.as_ref(), lba * 512, core.len());
        assert_eq!(
            u64::from_le_bytes(embedded[0x1f4..0x1fc].try_into().unwrap()),
            lba + 1
        );
        embedded[0x1f4..0x1fc].copy_from_slice(&core[0x1f4..0x1fc]);
        let diff = embedded.iter().zip(&core).position(|(a, b)| a != b);
        assert_eq!(
            diff, None,
            "{name}: embedded core.img differs from the guest's file"
        );
        assert!(f.bios.grub_i386_pc_dir.is_some(), "{name}");
    } else {
        assert!(f.bios.core_img_at_boot_pointer.is_none());
        assert!(f
            .bios
            .bios_boot_partitions
            .iter()
            .all(|p| p.core_img.is_none()));
    }

    // ---- UEFI: every ESP against mtools, sbverify and objdump
    let esp_parts: Vec<&Value> = m["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"].as_str() == Some("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"))
        .collect();
    assert_eq!(f.uefi.esps.len(), esp_parts.len(), "{name}: ESP count");
    if esp_parts.is_empty() {
        assert!(f.architectures.is_empty());
        assert!(!f.secure_boot.ready);
        return;
    }
    need_tool("mdir", "mtools");
    need_tool("mcopy", "mtools");
    need_tool("sbverify", "sbsigntool");
    need_tool("objdump", "binutils");
    let tmp = tempfile::tempdir().unwrap();
    for (esp, p) in f.uefi.esps.iter().zip(&esp_parts) {
        assert_eq!(u64::from(esp.number), p["number"].as_u64().unwrap());
        assert!(esp.problems.is_empty(), "{name}: {:?}", esp.problems);
        let at = format!("{}@@{}", img.display(), p["start"].as_u64().unwrap());
        let (ok, listing) = run("mdir", &["-i", &at, "-/", "-b", "::/"]);
        assert!(ok, "mdir on {at}");
        // files directly under ::/EFI/<dir>/
        let mut want_efi: Vec<String> = Vec::new();
        let mut want_cfg: Vec<String> = Vec::new();
        for l in listing.lines() {
            let Some(path) = l.strip_prefix("::") else {
                continue;
            };
            let depth = path.matches('/').count();
            let lower = path.to_ascii_lowercase();
            if depth != 3 || !lower.starts_with("/efi/") {
                continue;
            }
            if lower.ends_with(".efi") {
                want_efi.push(path.to_string());
            } else if lower.ends_with(".cfg") || lower.ends_with(".csv") {
                want_cfg.push(path.to_string());
            }
        }
        let mut ours: Vec<String> = esp.loaders.iter().map(|l| l.path.clone()).collect();
        ours.sort();
        want_efi.sort();
        assert_eq!(ours, want_efi, "{name}: loaders vs mdir");
        let mut cfg = esp.configs.clone();
        cfg.sort();
        want_cfg.sort();
        assert_eq!(cfg, want_cfg, "{name}: configs vs mdir");

        if let Some(loader) = boot["esp_loader"].as_str() {
            assert!(
                esp.fallback_x64
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(loader)),
                "{name}: {:?} vs {loader}",
                esp.fallback_x64
            );
        }

        for l in &esp.loaders {
            let out = tmp
                .path()
                .join(l.path.trim_start_matches('/').replace('/', "_"));
            let (ok, _) = run(
                "mcopy",
                &[
                    "-n",
                    "-i",
                    &at,
                    &format!("::{}", l.path),
                    out.to_str().unwrap(),
                ],
            );
            assert!(ok, "mcopy {}", l.path);
            let bytes = std::fs::read(&out).unwrap();
            assert_eq!(l.size, bytes.len() as u64, "{name}: {}", l.path);
            assert!(l.error.is_none(), "{name}: {}: {:?}", l.path, l.error);
            assert_eq!(l.arch, Some(objdump_arch(&out)), "{name}: {}", l.path);
            let sb = sbverify_list(&out);
            let ours: SbSignatures = l
                .signatures
                .iter()
                .map(|s| {
                    (
                        s.signer_issuer.iter().cloned().collect(),
                        s.certificates
                            .iter()
                            .map(|c| (c.subject.clone(), c.issuer.clone()))
                            .collect(),
                    )
                })
                .collect();
            assert_eq!(ours, sb, "{name}: {} signatures vs sbverify --list", l.path);
            assert!(
                l.signature_problems.is_empty(),
                "{:?}",
                l.signature_problems
            );
            // Debian's shim carries the 2011 and the 2023 Microsoft UEFI CA signatures;
            // GRUB, MokManager and fb are signed by Debian's key, which shim embeds.
            let ms = sb.iter().flat_map(|(i, _)| i).any(|i| {
                i.ends_with("CN=Microsoft Corporation UEFI CA 2011")
                    || i.ends_with("CN=Microsoft UEFI CA 2023")
            });
            assert_eq!(l.microsoft_uefi_ca, ms, "{name}: {}", l.path);
            match l.role {
                LoaderRole::Fallback | LoaderRole::Shim => assert!(ms, "{}", l.path),
                _ => assert!(!ms && l.signed(), "{}", l.path),
            }
        }
    }
    assert_eq!(f.architectures, vec!["x64"], "{name}: GAL-004");
    let sb = &f.secure_boot;
    assert!(sb.ready, "{name}: {:?}", sb.reasons);
    assert!(sb.fallback_microsoft_signed && sb.grub_signed);
    assert!(
        sb.grub_signers
            .iter()
            .all(|s| s.starts_with("Debian Secure Boot Signer")),
        "{:?}",
        sb.grub_signers
    );
    // the report serialises
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(json["uefi_bootable"], Value::Bool(true));
}

#[test]
fn gen2_gpt_ext4() {
    check("gen2-gpt-ext4");
}

#[test]
fn gen1_mbr_ext4() {
    check("gen1-mbr-ext4");
}

#[test]
fn hybrid_gpt() {
    check("hybrid-gpt");
}

#[test]
fn gen2_gpt_xfs() {
    check("gen2-gpt-xfs");
}

#[test]
fn gen2_gpt_btrfs() {
    check("gen2-gpt-btrfs");
}

#[test]
fn rhel_lvm() {
    check("rhel-lvm");
}

#[test]
fn separate_var() {
    check("separate-var");
}
