//! KRN-xxx on real images: the Debian fixtures (amd64 with mkinitramfs's initramfs, arm64
//! extracted without one) and copies changed with real tools: the initramfs unpacked with
//! gzip + cpio, a module deleted and repacked with `cpio -o -H newc` + gzip (checked with
//! `lsinitramfs`); grub.cfg, modprobe.d, dracut and initramfs-tools files written by debugfs.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use vhdprep_check::{Location, Policy, Severity};

fn kernel_version(v: &Variant) -> String {
    v.manifest["boot"]["kernel"].as_str().unwrap().to_string()
}

fn sh(script: &str, dir: &Path) -> String {
    run(
        Command::new("sh").arg("-ec").arg(script).current_dir(dir),
        "cpio gzip findutils initramfs-tools-core",
    )
}

/// Rebuilds the guest's gzip initramfs of kernel `kver` without `modules`, as someone who
/// unpacked and repacked it by hand (or a builder that left the drivers out) would.
fn initramfs_without(v: &mut Variant, kver: &str, modules: &[&str]) {
    let guest = format!("/boot/initrd.img-{kver}");
    let work = v.dir.path().join("initrd");
    std::fs::create_dir_all(work.join("tree")).unwrap();
    let dev = format!("{}?offset={}", v.path.display(), v.partition_offset("/"));
    run(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("dump -p {guest} {}", work.join("orig").display()))
            .arg(&dev),
        "e2fsprogs",
    );
    let orig = std::fs::read(work.join("orig")).unwrap();
    assert_eq!(
        &orig[..2],
        b"\x1f\x8b",
        "the fixture's initramfs is one gzip cpio"
    );
    sh(
        "gzip -dc ../orig | cpio -idm --quiet --no-absolute-filenames",
        &work.join("tree"),
    );
    for module in modules {
        let removed = sh(
            &format!("find . -name '{module}.ko*' -print -delete"),
            &work.join("tree"),
        );
        assert!(removed.contains(module), "{module} was in the initramfs");
    }
    sh(
        "find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet | gzip -n > ../new",
        &work.join("tree"),
    );
    let listing = sh("lsinitramfs new", &work);
    for module in modules {
        assert!(!listing.contains(&format!("/{module}.ko")), "{module} left");
    }
    assert!(listing.contains("hv_vmbus.ko"));
    let new = std::fs::read(work.join("new")).unwrap();
    v.write(&guest, new);
}

#[test]
fn debian_amd64_fixture_is_ready() {
    let (img, _) = fixture("gen2-gpt-ext4");
    let nvme = Policy {
        nvme: true,
        ..Policy::default()
    };
    let accel = Policy {
        accelerated_networking: true,
        marketplace: true,
        ..Policy::default()
    };
    let r = reports(&img, &[Policy::default(), nvme, accel]);
    for id in [
        "KRN-001", "KRN-002", "KRN-003", "KRN-004", "KRN-005", "KRN-007", "KRN-008", "KRN-009",
        "KRN-010",
    ] {
        assert_quiet(&r[0], id);
    }
    assert!(
        findings(&r[0], "KRN-001").is_empty(),
        "hv_netvsc is there too"
    );
    // not tagged NVMe: information only; tagged: the command line lacks the timeout
    let f = assert_fires(&r[0], "KRN-006", Severity::Info);
    assert!(f[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("nvme_core.io_timeout"));
    let f = assert_fires(&r[1], "KRN-006", Severity::Error);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(f[0].message.contains("nvme_core.io_timeout=240"));
    // Mellanox and MANA drivers ship with the cloud kernel; console=ttyS0 is there
    assert_quiet(&r[2], "KRN-007");
    assert_quiet(&r[2], "KRN-008");
    let f = assert_fires(&r[0], "KRN-008", Severity::Info);
    assert!(f[0].message.contains("net.ifnames=0"));
}

#[test]
fn storvsc_missing_console_missing_blacklists_and_builder_config() {
    let mut v = Variant::of("gen2-gpt-ext4");
    let kver = kernel_version(&v);
    initramfs_without(&mut v, &kver, &["hv_storvsc", "mana"]);
    v.edit("/boot/grub/grub.cfg", |t| {
        t.replace(
            "console=tty0 console=ttyS0,115200 earlyprintk",
            "console=tty0 nvme_core.io_timeout=240 earlyprintk",
        )
    })
    .write(
        "/etc/modprobe.d/cis.conf",
        "# CIS 1.1.1.x\ninstall udf /bin/true\nblacklist vfat\n",
    )
    .remove(&format!(
        "/usr/lib/modules/{kver}/kernel/drivers/net/ethernet/microsoft/mana/mana.ko"
    ))
    .write("/etc/dracut.conf.d/10-hostonly.conf", "hostonly=\"yes\"\n")
    .write("/etc/initramfs-tools/conf.d/modules-dep", "MODULES=dep\n");
    let tagged = Policy {
        nvme: true,
        accelerated_networking: true,
        ..Policy::default()
    };
    let mkt = Policy {
        marketplace: true,
        ..Policy::default()
    };
    let r = reports(&v.path, &[Policy::default(), mkt, tagged]);

    let f = assert_fires(&r[0], "KRN-001", Severity::Error);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(
        f[0].message.contains("lacks hv_storvsc") && !f[0].message.contains("hv_vmbus"),
        "{}",
        f[0].message
    );
    assert_eq!(
        f[0].location,
        Some(Location::Guest {
            path: format!("/boot/initrd.img-{kver}"),
            line: None
        })
    );
    assert!(f[0]
        .remediation
        .as_deref()
        .unwrap()
        .contains("update-initramfs -u -k"));

    let f = assert_fires(&r[0], "KRN-008", Severity::Warning);
    let console = f
        .iter()
        .find(|f| f.message.contains("console=ttyS0"))
        .unwrap();
    assert!(
        console.message.contains("not regenerated"),
        "/etc/default/grub still has it: {}",
        console.message
    );
    assert!(matches!(
        &console.location,
        Some(Location::Guest { path, line: Some(_) }) if path == "/boot/grub/grub.cfg"
    ));
    assert_fires(&r[1], "KRN-008", Severity::Error);

    // cloud-init 22.4 provisions: UDF is a warning; vfat always an error
    let f = assert_fires(&r[0], "KRN-002", Severity::Warning);
    assert_eq!(
        f[0].location,
        Some(Location::Guest {
            path: "/etc/modprobe.d/cis.conf".into(),
            line: Some(2)
        })
    );
    assert!(f[0].message.contains("cloud-init"), "{}", f[0].message);
    let f = assert_fires(&r[0], "KRN-003", Severity::Error);
    assert!(f[0].message.contains("blacklist vfat"), "{}", f[0].message);

    let f = assert_fires(&r[2], "KRN-007", Severity::Warning);
    assert!(f[0].message.contains("mana"), "{}", f[0].message);
    assert_fires(&r[0], "KRN-007", Severity::Info);
    // the timeout is on the command line now; nvme/nvme_core come with the initramfs
    assert_quiet(&r[2], "KRN-006");

    let f = assert_fires(&r[0], "KRN-009", Severity::Warning);
    assert_eq!(f.len(), 2, "{f:#?}");
    assert!(f.iter().any(|f| f.message.contains("hostonly")));
    assert!(f.iter().any(|f| f.message.contains("MODULES=dep")));
}

#[test]
fn old_kernel_32_bit_init_and_old_cloud_init() {
    let mut v = Variant::of("gen2-gpt-ext4");
    let old = "2.6.32-431.el6.x86_64";
    v.write(
        &format!("/boot/vmlinuz-{old}"),
        "left over from an old install",
    )
    .mkdir(&format!("/usr/lib/modules/{old}"))
    // GRUB's i386-pc modules are real 32-bit x86 ELF files: an init of the wrong class
    .symlink("/usr/sbin/init", "/usr/lib/grub/i386-pc/normal.mod")
    .set_agent_version("cloud-init", "20.4")
    .write("/etc/modprobe.d/cis.conf", "install udf /bin/true\n");
    let r = reports(&v.path, &[Policy::default()]);
    let r = &r[0];
    let f = assert_fires(r, "KRN-005", Severity::Warning);
    assert_eq!(f.len(), 1);
    assert!(f[0].message.contains(old), "{}", f[0].message);
    let f = assert_fires(r, "KRN-010", Severity::Error);
    assert!(f[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("i386-pc/normal.mod"));
    // cloud-init 20.4 still needs the UDF ISO
    let f = assert_fires(r, "KRN-002", Severity::Error);
    assert!(f
        .iter()
        .any(|f| f.message.contains("install udf /bin/true")));
}

#[test]
fn arm64_wants_tty_ama0() {
    let (img, _) = fixture("arm64-gpt-ext4");
    let mkt = Policy {
        marketplace: true,
        ..Policy::default()
    };
    let r = reports(&img, &[Policy::default(), mkt]);
    assert_quiet(&r[0], "KRN-008");
    assert_quiet(&r[1], "KRN-008");
    assert_quiet(&r[0], "KRN-010");
    assert_quiet(&r[0], "KRN-003");
    // extracted without maintainer scripts: no initramfs, and hv_vmbus/hv_storvsc are =m
    let f = assert_fires(&r[0], "KRN-001", Severity::Error);
    assert!(f[0].message.contains("no initramfs"), "{}", f[0].message);

    let mut v = Variant::of("arm64-gpt-ext4");
    v.edit("/boot/grub/grub.cfg", |t| {
        t.replace(" console=ttyAMA0,115200n8", " console=ttyS0,115200")
    });
    let r = reports(&v.path, &[Policy::default(), mkt_policy()]);
    let f = assert_fires(&r[0], "KRN-008", Severity::Warning);
    assert!(f.iter().any(|f| f.message.contains("console=ttyAMA0")));
    assert!(
        f.iter()
            .any(|f| f.severity == Severity::Info && f.message.contains("Arm64 uses ttyAMA0")),
        "{f:#?}"
    );
    // the Marketplace error is for x64's console=ttyS0 only
    assert!(findings(&r[1], "KRN-008")
        .iter()
        .all(|f| f.severity < Severity::Error));
}

fn mkt_policy() -> Policy {
    Policy {
        marketplace: true,
        ..Policy::default()
    }
}

#[test]
fn red_hat_bls_boot_and_dracut_remediation() {
    // The Debian fixture turned into a Red Hat layout: os-release, BLS entry, grubenv written
    // by the real grub-editenv (RHEL 8's `options $kernelopts`), grub.cfg that runs blscfg,
    // Debian's grub.cfg gone, and an initramfs without hv_storvsc.
    let mut v = Variant::of("gen2-gpt-ext4");
    let kver = kernel_version(&v);
    initramfs_without(&mut v, &kver, &["hv_storvsc"]);
    let env = v.dir.path().join("grubenv");
    let editenv = |args: &[&str]| {
        run(
            Command::new("grub-editenv").arg(&env).args(args),
            "grub2-common",
        )
    };
    editenv(&["create"]);
    editenv(&[
        "set",
        "kernelopts=root=/dev/sda2 ro earlyprintk=ttyS0 rootdelay=300",
    ]);
    let entry = format!("/boot/loader/entries/0123456789abcdef-{kver}.conf");
    v.write(
        "/etc/os-release",
        "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"8.9\"\n",
    )
    .write("/boot/grub2/grubenv", std::fs::read(&env).unwrap())
    .write(
        "/boot/grub2/grub.cfg",
        "set default=\"${saved_entry}\"\nload_env -f ${config_directory}/grubenv\ninsmod blscfg\nblscfg\n",
    )
    .write(
        &entry,
        format!("title Red Hat Enterprise Linux ({kver}) 8.9 (Ootpa)\nversion {kver}\nlinux /vmlinuz-{kver}\ninitrd /initrd.img-{kver} $tuned_initrd\noptions $kernelopts $tuned_params\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class kernel\n"),
    )
    .remove("/boot/grub/grub.cfg");
    let r = v.check(&Policy::default());
    let f = assert_fires(&r, "BOOT-014", Severity::Info);
    assert!(f[0].message.contains(&entry), "{}", f[0].message);
    let f = assert_fires(&r, "KRN-008", Severity::Warning);
    let console = f
        .iter()
        .find(|f| f.message.contains("console=ttyS0"))
        .unwrap();
    assert!(matches!(
        &console.location,
        Some(Location::Guest { path, .. }) if *path == entry
    ));
    assert!(console
        .evidence
        .as_deref()
        .unwrap()
        .contains("rootdelay=300"));
    let fix = console.remediation.as_deref().unwrap();
    assert!(fix.contains("grubby --update-kernel=ALL"), "{fix}");
    let f = assert_fires(&r, "KRN-001", Severity::Error);
    let fix = f[0].remediation.as_deref().unwrap();
    assert!(
        fix.contains("dracut -f --kver") && !fix.contains("update-initramfs"),
        "{fix}"
    );
}
