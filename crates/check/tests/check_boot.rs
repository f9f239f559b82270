//! BOOT-xxx on real images: the Debian fixtures as built (GPT/UEFI, MBR/BIOS, hybrid, LVM,
//! Arm64) and copies changed with the real tools (mtools on the ESP, debugfs in the root,
//! sgdisk/sfdisk/mkswap/mkfs.ext4/dd on the disk).

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use vhdprep_check::report::Report;
use vhdprep_check::{Generation, Policy, SecurityType, Severity};

fn declared(g: Generation) -> Policy {
    Policy {
        generation: Some(g),
        ..Policy::default()
    }
}

fn only_info(r: &Report, id: &str) -> String {
    let f = assert_fires(r, id, Severity::Info);
    assert!(f.iter().all(|f| f.severity == Severity::Info), "{f:#?}");
    f[0].message.clone()
}

#[test]
fn gen2_fixture_boots_uefi_only_and_is_secure_boot_ready() {
    let (img, _) = fixture("gen2-gpt-ext4");
    let tl = Policy {
        security_type: Some(SecurityType::TrustedLaunchSupported),
        ..Policy::default()
    };
    let mkt = Policy {
        marketplace: true,
        ..Policy::default()
    };
    let r = reports(
        &img,
        &[Policy::default(), declared(Generation::V1), tl, mkt],
    );
    for id in [
        "BOOT-001", "BOOT-004", "BOOT-005", "BOOT-006", "BOOT-007", "BOOT-008", "BOOT-009",
        "BOOT-010", "BOOT-011", "BOOT-012", "BOOT-013",
    ] {
        assert_quiet(&r[0], id);
    }
    assert!(findings(&r[0], "BOOT-005").is_empty());
    assert!(only_info(&r[0], "BOOT-002").contains("does not boot under BIOS"));
    assert!(only_info(&r[0], "BOOT-003").contains("boots under UEFI"));
    let src = only_info(&r[0], "BOOT-014");
    assert!(src.contains("/boot/grub/grub.cfg"), "{src}");
    // declared V1: the BIOS chain is missing
    let f = assert_fires(&r[1], "BOOT-002", Severity::Error);
    assert!(f[0].remediation.as_ref().unwrap().contains("ef02"));
    // Trusted Launch declared: the Microsoft-signed shim and signed GRUB pass
    assert_quiet(&r[2], "BOOT-008");
    // Marketplace: the first partition at 1 MiB is within the first 2048 KB
    let f = assert_fires(&r[3], "BOOT-009", Severity::Warning);
    assert!(f[0].message.contains("2048 KB"), "{}", f[0].message);
    assert!(matches!(
        f[0].location,
        Some(vhdprep_check::Location::Disk {
            offset: 1024,
            length: Some(128)
        })
    ));
}

#[test]
fn gen1_and_hybrid_fixtures() {
    let (mbr, _) = fixture("gen1-mbr-ext4");
    let r = reports(&mbr, &[Policy::default(), declared(Generation::V2)]);
    assert!(only_info(&r[0], "BOOT-002").contains("boots under BIOS"));
    assert!(only_info(&r[0], "BOOT-003").contains("does not boot under UEFI"));
    for id in ["BOOT-004", "BOOT-006", "BOOT-009", "BOOT-011", "BOOT-013"] {
        assert_quiet(&r[0], id);
    }
    let f = assert_fires(&r[1], "BOOT-003", Severity::Error);
    assert!(
        f[0].message.contains("declared Generation 2"),
        "{}",
        f[0].message
    );

    let (hybrid, _) = fixture("hybrid-gpt");
    let r = reports(&hybrid, &[Policy::default()]);
    assert!(only_info(&r[0], "BOOT-005").contains("hybrid"));
    assert!(only_info(&r[0], "BOOT-002").contains("boots under BIOS"));
    assert!(only_info(&r[0], "BOOT-003").contains("boots under UEFI"));
}

#[test]
fn loader_only_under_efi_debian_is_not_gen2_and_backup_gpt_damaged() {
    let v = Variant::of("gen2-gpt-ext4");
    for f in ["BOOTX64.EFI", "grubx64.efi", "mmx64.efi", "fbx64.efi"] {
        v.mtools("mdel", &[&format!("::/EFI/BOOT/{f}")]);
    }
    // and, independently, the backup GPT header is damaged (zeroed by dd)
    let len = std::fs::metadata(&v.path).unwrap().len();
    zero_sector(&v.path, len - 512);
    let r = reports(&v.path, &[Policy::default(), declared(Generation::V2)]);
    let f = findings(&r[0], "BOOT-001");
    assert!(!f.is_empty(), "a damaged backup GPT is reported");
    assert!(f.iter().all(|f| f.severity < Severity::Error), "{f:#?}");
    for r in &r {
        let f = assert_fires(r, "BOOT-003", Severity::Error);
        let m = &f[0].message;
        assert!(
            m.contains("\\EFI\\debian\\shimx64.efi") && m.contains("\\EFI\\BOOT\\BOOTX64.EFI"),
            "{m}"
        );
        let fix = f[0].remediation.as_deref().unwrap();
        assert!(
            fix.contains("cp /boot/efi/EFI/debian/shimx64.efi /boot/efi/EFI/BOOT/BOOTX64.EFI")
                && fix.contains("grubx64.efi")
                && fix.contains("grub.cfg")
                && fix.contains("--removable"),
            "{fix}"
        );
        assert!(matches!(
            f[0].location,
            Some(vhdprep_check::Location::Disk {
                offset: 1048576,
                ..
            })
        ));
    }
    // nothing declared and nothing boots: the BIOS side is an error too
    assert_fires(&r[0], "BOOT-002", Severity::Error);
}

#[test]
fn unsigned_fallback_and_kernel_dkms_device_root_and_missing_initrd() {
    let mut v = Variant::of("gen2-gpt-ext4");
    let kver = v.manifest["boot"]["kernel"].as_str().unwrap().to_string();
    // GRUB (signed by Debian, not by Microsoft) copied over the shim at the fallback path
    v.mtools("mdel", &["::/EFI/BOOT/BOOTX64.EFI"]);
    v.mtools(
        "mcopy",
        &["::/EFI/debian/grubx64.efi", "::/EFI/BOOT/BOOTX64.EFI"],
    );
    v.mkdir("/var/lib/dkms/nvidia/535.104.05")
        .write(
            &format!("/usr/lib/modules/{kver}/updates/dkms/nvidia.ko"),
            "not a real module",
        )
        .edit("/boot/grub/grub.cfg", |t| {
            t.replace(
                "root=UUID=0b3cf3a2-6f4f-4c1e-9d55-2a1f5e6c0e01",
                "root=/dev/sda2",
            )
        })
        .remove(&format!("/boot/initrd.img-{kver}"));
    // the kernel with its Authenticode signature removed by sbsigntool
    let vmlinuz = v.dir.path().join("vmlinuz");
    run(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!(
                "dump -p /boot/vmlinuz-{kver} {}",
                vmlinuz.display()
            ))
            .arg(format!(
                "{}?offset={}",
                v.path.display(),
                v.partition_offset("/")
            )),
        "e2fsprogs",
    );
    run(
        Command::new("sbattach").arg("--remove").arg(&vmlinuz),
        "sbsigntool",
    );
    v.write(
        &format!("/boot/vmlinuz-{kver}"),
        std::fs::read(&vmlinuz).unwrap(),
    );
    let tl = Policy {
        security_type: Some(SecurityType::TrustedLaunchSupported),
        nvme: true,
        ..Policy::default()
    };
    let r = reports(&v.path, &[Policy::default(), tl]);
    let f = assert_fires(&r[0], "BOOT-008", Severity::Warning);
    assert!(
        f.iter().any(|f| f
            .message
            .contains("not a shim signed by the Microsoft UEFI CA")),
        "{f:#?}"
    );
    assert!(
        f.iter().any(|f| f.message.contains("DKMS")
            && f.evidence
                .as_deref()
                .unwrap()
                .contains("/var/lib/dkms/nvidia")
            && f.evidence
                .as_deref()
                .unwrap()
                .contains("updates/dkms/nvidia.ko")),
        "{f:#?}"
    );
    let unsigned = f
        .iter()
        .find(|f| {
            f.message
                .contains("kernel image carries no Authenticode signature")
        })
        .expect("unsigned kernel reported");
    assert_eq!(
        unsigned.location,
        Some(vhdprep_check::Location::Guest {
            path: format!("/boot/vmlinuz-{kver}"),
            line: None
        })
    );
    assert!(f.iter().all(|f| f.severity == Severity::Warning));
    assert_fires(&r[1], "BOOT-008", Severity::Error);
    // still Gen2: GRUB is an x64 PE at the fallback path
    assert!(only_info(&r[0], "BOOT-003").contains("boots under UEFI"));

    let f = assert_fires(&r[0], "BOOT-013", Severity::Warning);
    assert!(f.iter().any(|f| f.message.contains("root=/dev/sda2")));
    let missing = f
        .iter()
        .find(|f| f.message.contains("does not exist"))
        .expect("missing initrd reported");
    assert!(missing
        .message
        .contains(&format!("/boot/initrd.img-{kver}")));
    assert!(matches!(
        &missing.location,
        Some(vhdprep_check::Location::Guest { path, line: Some(_) }) if path == "/boot/grub/grub.cfg"
    ));
    assert_fires(&r[1], "BOOT-013", Severity::Error);
}

/// Runs sgdisk on a disk image.
fn run_sgdisk(path: &Path, args: &[&str]) {
    run(Command::new("sgdisk").args(args).arg(path), "gdisk");
}

#[test]
fn swap_partition_early_partition_and_second_root() {
    let v = Variant::of("gen2-gpt-ext4");
    let disk = &v.path;
    // a second root in space added at the end: mkfs.ext4 -d with an os-release
    run(
        Command::new("truncate").args(["-s", "+64M"]).arg(disk),
        "coreutils",
    );
    run_sgdisk(disk, &["-e"]);
    run_sgdisk(disk, &["-a", "1", "-n", "3:34:2047", "-t", "3:8200"]);
    run_sgdisk(disk, &["-n", "4:0:0", "-t", "4:8300"]);
    let tree = v.dir.path().join("rescue");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("etc/os-release"), "ID=debian\nNAME=rescue\n").unwrap();
    let root2 = v.dir.path().join("p4.img");
    run(
        Command::new("truncate").args(["-s", "32M"]).arg(&root2),
        "coreutils",
    );
    run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(&tree)
            .arg(&root2),
        "e2fsprogs",
    );
    let swap = v.dir.path().join("p3.img");
    run(
        Command::new("truncate")
            .args(["-s", &((2048 - 34) * 512).to_string()])
            .arg(&swap),
        "coreutils",
    );
    run(Command::new("mkswap").arg(&swap), "util-linux");
    let p4 = run(Command::new("sgdisk").args(["-i", "4"]).arg(disk), "gdisk");
    let p4_start: u64 = p4
        .lines()
        .find_map(|l| l.strip_prefix("First sector: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    for (img, lba) in [(&swap, 34u64), (&root2, p4_start)] {
        run(
            Command::new("dd")
                .arg(format!("if={}", img.display()))
                .arg(format!("of={}", disk.display()))
                .args(["bs=512", "conv=notrunc,sparse", "status=none"])
                .arg(format!("seek={lba}")),
            "coreutils",
        );
    }
    let r = reports(disk, &[Policy::default()]);
    let r = &r[0];
    let f = assert_fires(r, "BOOT-011", Severity::Error);
    assert!(f[0].message.contains("partition 3"), "{}", f[0].message);
    let ev = f[0].evidence.as_deref().unwrap();
    assert!(ev.contains("swap") && ev.contains("SWAPSPACE2"), "{ev}");
    assert!(matches!(
        f[0].location,
        Some(vhdprep_check::Location::Disk { offset: 17408, .. })
    ));
    let f = assert_fires(r, "BOOT-009", Severity::Warning);
    assert!(f[0].message.contains("before 1 MiB"), "{}", f[0].message);
    let f = assert_fires(r, "BOOT-010", Severity::Warning);
    assert!(
        f[0].message.contains("look like a Linux root"),
        "{}",
        f[0].message
    );
    // the fixture's own root is still used
    assert!(r.os.as_ref().unwrap().pretty_name.is_some());
}

#[test]
fn lvm_root_on_the_os_disk() {
    let (img, _) = fixture("rhel-lvm");
    let r = reports(&img, &[Policy::default()]);
    let f = assert_fires(&r[0], "BOOT-012", Severity::Warning);
    let ev = f[0].evidence.as_deref().unwrap();
    assert!(
        ev.contains("partition 3") && ev.contains("rootvg/rootlv") && ev.contains("the root"),
        "{ev}"
    );
    // root=/dev/mapper/rootvg-rootlv is stable, and the grub paths are relative to /boot
    assert_quiet(&r[0], "BOOT-013");
    assert_quiet(&r[0], "BOOT-011");
}

#[test]
fn esp_on_mbr_and_mbr_partition_beyond_2_tib() {
    let v = Variant::of("gen1-mbr-ext4");
    run(
        Command::new("sfdisk")
            .args(["-q", "--part-type"])
            .arg(&v.path)
            .args(["1", "ef"]),
        "fdisk",
    );
    // libfdisk and parted refuse to write an MBR entry past 2 TiB (which is the point of the
    // rule): grow the file sparsely and write entry 2 the way `dd` of a bigger disk's table
    // would leave it: start LBA 2^32 - 2048, 2 MiB long (so it ends past sector 2^32 - 1).
    run(
        Command::new("truncate")
            .args(["-s", &((1u64 << 41) + (1 << 30)).to_string()])
            .arg(&v.path),
        "coreutils",
    );
    let mut entry = [0u8; 16];
    entry[4] = 0x83;
    entry[8..12].copy_from_slice(&(u32::MAX - 2047).to_le_bytes());
    entry[12..16].copy_from_slice(&4096u32.to_le_bytes());
    let e = v.dir.path().join("entry2");
    std::fs::write(&e, entry).unwrap();
    run(
        Command::new("dd")
            .arg(format!("if={}", e.display()))
            .arg(format!("of={}", v.path.display()))
            .args(["bs=1", "seek=462", "conv=notrunc", "status=none"]),
        "coreutils",
    );
    let dump = run(Command::new("sfdisk").arg("-d").arg(&v.path), "fdisk");
    assert!(dump.contains("start=  4294965248"), "{dump}");
    let r = reports(&v.path, &[Policy::default()]);
    let f = assert_fires(&r[0], "BOOT-004", Severity::Warning);
    assert!(matches!(
        f[0].location,
        Some(vhdprep_check::Location::Disk {
            offset: 446,
            length: Some(16)
        })
    ));
    let f = assert_fires(&r[0], "BOOT-006", Severity::Error);
    assert!(f[0].message.contains("partition 2"), "{}", f[0].message);
    assert!(matches!(
        f[0].location,
        Some(vhdprep_check::Location::Disk {
            offset: 462,
            length: Some(16)
        })
    ));
}

/// Zeroes the 512-byte sector at byte `at` of an image with dd.
fn zero_sector(path: &Path, at: u64) {
    run(
        Command::new("dd")
            .args([
                "if=/dev/zero",
                "bs=512",
                "count=1",
                "conv=notrunc",
                "status=none",
            ])
            .arg(format!("of={}", path.display()))
            .arg(format!("seek={}", at / 512)),
        "coreutils",
    );
}

#[test]
fn both_gpt_copies_broken() {
    let v = Variant::of("gen2-gpt-ext4");
    let len = std::fs::metadata(&v.path).unwrap().len();
    zero_sector(&v.path, len - 512);
    zero_sector(&v.path, 512);
    let r = reports(&v.path, &[Policy::default()]);
    let f = assert_fires(&r[0], "BOOT-001", Severity::Error);
    assert!(!f.is_empty());
    assert!(r[0].guest_not_examined.is_some());
}

#[test]
fn arm64_is_gen2_only() {
    let (img, _) = fixture("arm64-gpt-ext4");
    let r = reports(&img, &[Policy::default(), declared(Generation::V1)]);
    assert_eq!(r[0].architecture.as_deref(), Some("Arm64"));
    assert_eq!(r[0].generation, vec![Generation::V2]);
    assert_quiet(&r[0], "BOOT-007");
    assert_quiet(&r[0], "BOOT-008");
    assert!(only_info(&r[0], "BOOT-003").contains("boots under UEFI"));
    let f = assert_fires(&r[1], "BOOT-007", Severity::Error);
    assert!(
        f[0].message.contains("Generation 2 only"),
        "{}",
        f[0].message
    );
    // BOOT-007 speaks for Arm64; BOOT-002 does not repeat it
    assert!(findings(&r[1], "BOOT-002").is_empty());
}

/// A UCS-2LE fallback CSV as shim's Makefile writes it (`iconv -t UCS-2LE`), with the byte
/// order mark Fedora/RHEL's files carry; returned as a host file in `v`'s directory.
fn ucs2_csv(v: &Variant, name: &str, line: &str) -> std::path::PathBuf {
    let path = v.dir.path().join(name);
    let mut out = vec![0xff, 0xfe];
    let mut iconv = Command::new("iconv");
    iconv.args(["-f", "UTF-8", "-t", "UCS-2LE"]);
    let text = run_with_input(&mut iconv, line.as_bytes(), "libc-bin");
    out.extend(text);
    std::fs::write(&path, out).unwrap();
    path
}

fn run_with_input(cmd: &mut Command, input: &[u8], package: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (install the Debian package {package})"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed");
    out.stdout
}

#[test]
fn red_hat_esp_layout_follows_shims_fallback() {
    // Debian's real signed shim, fallback and GRUB, laid out as Red Hat's shim-x64 and
    // grub2-efi-x64 packages lay them out: EFI/BOOT holds only BOOTX64.EFI (shim) and
    // fbx64.efi; EFI/redhat holds shimx64.efi, grubx64.efi, mmx64.efi, BOOTX64.CSV, grub.cfg.
    let mut v = Variant::of("gen2-gpt-ext4");
    v.mtools(
        "mdel",
        &["::/EFI/BOOT/grubx64.efi", "::/EFI/BOOT/mmx64.efi"],
    );
    v.mtools(
        "mdel",
        &["::/EFI/debian/fbx64.efi", "::/EFI/debian/BOOTX64.CSV"],
    );
    v.mtools("mren", &["::/EFI/debian", "::/EFI/redhat"]);
    let csv = ucs2_csv(
        &v,
        "BOOTX64.CSV",
        "shimx64.efi,Red Hat Enterprise Linux,,This is the boot entry for Red Hat Enterprise Linux\n",
    );
    let csv_s = csv.to_str().unwrap().to_string();
    v.mtools("mcopy", &[&csv_s, "::/EFI/redhat/BOOTX64.CSV"]);
    v.write(
        "/etc/os-release",
        "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\n",
    );
    let tl = Policy {
        security_type: Some(SecurityType::TrustedLaunchSupported),
        generation: Some(Generation::V2),
        ..Policy::default()
    };
    let r = v.check(&tl);
    assert_quiet(&r, "BOOT-008");
    assert_quiet(&r, "GAL-005");
    assert!(findings(&r, "BOOT-003")
        .iter()
        .all(|f| f.severity == Severity::Info));

    // The CSV names a loader the ESP lacks: the chain is broken.
    let bad = ucs2_csv(&v, "BAD.CSV", "shim.efi,Red Hat Enterprise Linux,,\n");
    let bad_s = bad.to_str().unwrap().to_string();
    v.mtools("mcopy", &["-o", &bad_s, "::/EFI/redhat/BOOTX64.CSV"]);
    let r = v.check(&tl);
    let f = assert_fires(&r, "BOOT-008", Severity::Error);
    assert!(
        f[0].message.contains("/EFI/redhat/shim.efi is missing"),
        "{}",
        f[0].message
    );
    let fix = f[0].remediation.as_deref().unwrap();
    assert!(
        fix.contains("dnf reinstall shim-x64 grub2-efi-x64"),
        "{fix}"
    );
    assert_fires(&r, "GAL-005", Severity::Warning);

    // The CSV is right but GRUB is missing beside the vendor shim.
    v.mtools("mcopy", &["-o", &csv_s, "::/EFI/redhat/BOOTX64.CSV"]);
    v.mtools("mdel", &["::/EFI/redhat/grubx64.efi"]);
    let r = v.check(&tl);
    let f = assert_fires(&r, "BOOT-008", Severity::Error);
    assert!(
        f[0].message.contains("/EFI/redhat/grubx64.efi is missing"),
        "{}",
        f[0].message
    );
    assert_fires(&r, "GAL-005", Severity::Warning);
}

#[test]
fn arm64_almalinux_esp_layout_follows_the_fallback() {
    // Debian's real arm64 shim, fallback and GRUB in AlmaLinux's layout: EFI/BOOT holds only
    // BOOTAA64.EFI and fbaa64.efi; EFI/almalinux holds shimaa64.efi, grubaa64.efi and a
    // BOOTAA64.CSV (iconv UCS-2LE with a byte order mark).
    let v = Variant::of("arm64-gpt-ext4");
    v.mtools(
        "mdel",
        &["::/EFI/BOOT/grubaa64.efi", "::/EFI/BOOT/mmaa64.efi"],
    );
    v.mtools(
        "mdel",
        &["::/EFI/debian/fbaa64.efi", "::/EFI/debian/BOOTAA64.CSV"],
    );
    v.mtools("mren", &["::/EFI/debian", "::/EFI/almalinux"]);
    let csv = ucs2_csv(
        &v,
        "BOOTAA64.CSV",
        "shimaa64.efi,AlmaLinux,,This is the boot entry for AlmaLinux\n",
    );
    v.mtools(
        "mcopy",
        &[csv.to_str().unwrap(), "::/EFI/almalinux/BOOTAA64.CSV"],
    );
    let tl = Policy {
        security_type: Some(SecurityType::TrustedLaunchSupported),
        ..Policy::default()
    };
    let r = v.check(&tl);
    assert_quiet(&r, "BOOT-008");
    // an x64 CSV does not count for arm64: the fallback finds no entry
    v.mtools(
        "mren",
        &[
            "::/EFI/almalinux/BOOTAA64.CSV",
            "::/EFI/almalinux/BOOTX64.CSV",
        ],
    );
    let r = v.check(&tl);
    let f = assert_fires(&r, "BOOT-008", Severity::Error);
    assert!(
        f[0].message.contains("BOOTAA64.CSV entry is missing"),
        "{}",
        f[0].message
    );
}
