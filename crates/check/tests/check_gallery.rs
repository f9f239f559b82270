//! GAL-xxx and CERT-xxx on the real fixture images, and copies of them changed with debugfs;
//! small disks partitioned with sgdisk for the partition-layout certification tests.
//!
//! Gathering a fixture's facts is the expensive part, so each image is gathered once and its
//! rules re-run under several policies (the facts and verdicts do not depend on the policy).

mod common;

use common::*;
use std::process::Command;
use vhdprep_check::gallery::{GalleryReport, ImageDefinition};
use vhdprep_check::report::RuleStatus;
use vhdprep_check::{check, Context, Generation, OsState, Policy, Report, SecurityType, Severity};
use vhdprep_disk::DiskImage;

/// Gathers `path` once and builds one report and one image definition per policy.
fn judge(path: &std::path::Path, policies: &[Policy]) -> Vec<(Report, ImageDefinition)> {
    let image = DiskImage::open(path).unwrap();
    let base = Policy::default();
    let mut ctx = Context::gather(&image, &[], &base).unwrap();
    policies
        .iter()
        .map(|p| {
            ctx.policy = p;
            (
                Report::build(&ctx),
                GalleryReport::build(&ctx, None, None).definition,
            )
        })
        .collect()
}

fn policy(f: impl FnOnce(&mut Policy)) -> Policy {
    let mut p = Policy::default();
    f(&mut p);
    p
}

fn marketplace() -> Policy {
    policy(|p| p.marketplace = true)
}

fn skipped(r: &Report, id: &str) -> bool {
    r.rules
        .iter()
        .any(|x| x.id == id && x.status == RuleStatus::Skipped)
}

fn feature<'a>(d: &'a ImageDefinition, name: &str) -> &'a str {
    &d.feature(name).unwrap().value
}

#[test]
fn gen2_fixture_declarations_and_marketplace_baseline() {
    let (img, _) = fixture("gen2-gpt-ext4");
    let pols = [
        Policy::default(),
        policy(|p| p.os_state = Some(OsState::Specialized)),
        policy(|p| {
            p.os_state = Some(OsState::Generalized);
            p.generation = Some(Generation::V2);
            p.security_type = Some(SecurityType::TrustedLaunchSupported);
            p.accelerated_networking = true;
        }),
        policy(|p| p.generation = Some(Generation::V1)),
        policy(|p| p.nvme = true),
        marketplace(),
    ];
    let r = reports(&img, &pols);
    // Nothing declared: the derived fields are stated, nothing is judged.
    assert_fires(&r[0], "GAL-001", Severity::Info);
    assert!(assert_fires(&r[0], "GAL-004", Severity::Info)[0]
        .message
        .contains("x64"));
    for id in [
        "GAL-002", "GAL-003", "GAL-005", "GAL-006", "GAL-007", "GAL-011",
    ] {
        assert_quiet(&r[0], id);
    }
    for id in ["GAL-008", "GAL-009", "GAL-010"] {
        assert!(skipped(&r[0], id), "{id}");
    }
    assert!(!r[0].rules.iter().any(|x| x.id.starts_with("CERT")));
    // A generalized image declared Specialized: provisioning would time out.
    let f = assert_fires(&r[1], "GAL-002", Severity::Error);
    assert!(f[0].message.contains("Specialized is declared"), "{f:?}");
    // Declarations the disk agrees with.
    for id in ["GAL-002", "GAL-003", "GAL-005", "GAL-006"] {
        assert_quiet(&r[2], id);
    }
    // A UEFI-only disk declared V1.
    assert!(assert_fires(&r[3], "GAL-003", Severity::Error)[0]
        .message
        .contains("boots V2"));
    // NVMe declared without nvme_core.io_timeout=240.
    let f = assert_fires(&r[4], "GAL-007", Severity::Error);
    assert!(
        f[0].evidence
            .as_deref()
            .unwrap()
            .contains("lacks nvme_core.io_timeout=240"),
        "{f:?}"
    );
    // What the real Debian image lacks for the Marketplace.
    let m = &r[5];
    assert!(assert_fires(m, "CERT-008", Severity::Warning)[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("default 0"));
    assert_fires(m, "CERT-011", Severity::Warning);
    assert_fires(m, "CERT-013", Severity::Error);
    assert_fires(m, "CERT-015", Severity::Warning);
    assert_fires(m, "CERT-017", Severity::Warning);
    assert!(assert_fires(m, "CERT-010", Severity::Info)[0]
        .message
        .contains("not affected by GHOST"));
    for id in [
        "CERT-001", "CERT-002", "CERT-003", "CERT-004", "CERT-005", "CERT-006", "CERT-007",
        "CERT-009", "CERT-012", "CERT-014", "CERT-016", "CERT-019",
    ] {
        assert_quiet(m, id);
    }
    assert!(skipped(m, "CERT-018"));
}

#[test]
fn gen1_disk_declared_v2_and_security_type() {
    let (img, _) = fixture("gen1-mbr-ext4");
    let pols = [
        Policy::default(),
        policy(|p| p.generation = Some(Generation::V2)),
        policy(|p| {
            p.generation = Some(Generation::V1);
            p.security_type = Some(SecurityType::Standard);
        }),
        policy(|p| p.security_type = Some(SecurityType::TrustedLaunchSupported)),
        policy(|p| p.nvme = true),
    ];
    let r = reports(&img, &pols);
    // Nothing declared and not ready for Trusted Launch: the 2025-03-03 default would bite.
    assert!(assert_fires(&r[0], "GAL-005", Severity::Warning)[0]
        .message
        .contains("no SecurityType is declared"));
    let f = assert_fires(&r[1], "GAL-003", Severity::Error);
    assert!(
        f[0].message
            .contains("V2 is declared but the disk boots V1"),
        "{f:?}"
    );
    assert!(f[0].remediation.as_deref().unwrap().contains("V1"));
    assert_quiet(&r[2], "GAL-003");
    assert_quiet(&r[2], "GAL-005");
    assert!(assert_fires(&r[3], "GAL-005", Severity::Warning)[0]
        .message
        .contains("TrustedLaunchSupported is declared"));
    assert!(assert_fires(&r[4], "GAL-007", Severity::Error)[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("need Generation 2"));
}

#[test]
fn hybrid_disk_offers_both_generations() {
    let (img, _) = fixture("hybrid-gpt");
    let v1 = policy(|p| p.generation = Some(Generation::V1));
    let j = judge(&img, &[Policy::default(), v1]);
    let d = &j[0].1;
    let g = &d.hyper_v_generation;
    assert_eq!(g.possible, ["V1", "V2"]);
    assert_eq!(g.value.as_deref(), Some("V2"));
    assert!(g.evidence[0].contains("V2 recommended"));
    assert_eq!(feature(d, "SecurityType"), "TrustedLaunchSupported");
    assert_eq!(d.os_state.value.as_deref(), Some("Generalized"));
    // Declared V1 on a hybrid disk: accepted, but Trusted Launch no longer applies, so the
    // definition must say Standard.
    let (r, d) = &j[1];
    assert_quiet(r, "GAL-003");
    let f = assert_fires(r, "GAL-005", Severity::Warning);
    assert_eq!(
        f[0].evidence.as_deref(),
        Some("the definition is V1; Trusted Launch needs Generation 2")
    );
    assert_eq!(d.hyper_v_generation.value.as_deref(), Some("V1"));
    assert_eq!(d.hyper_v_generation.declared.as_deref(), Some("V1"));
    assert_eq!(feature(d, "SecurityType"), "Standard");
}

const SRIOV_RULE: &str =
    "SUBSYSTEM==\"net\", DRIVERS==\"hv_pci\", ACTION!=\"remove\", ENV{NM_UNMANAGED}=\"1\"\n";

#[test]
fn nvme_and_accelerated_networking_prerequisites() {
    let mut v = Variant::of("gen2-gpt-ext4");
    v.edit("/boot/grub/grub.cfg", |t| {
        t.replace("rootdelay=300", "rootdelay=300 nvme_core.io_timeout=240")
    })
    .write(
        "/usr/lib/systemd/system/NetworkManager.service",
        "[Unit]\nDescription=Network Manager\n[Install]\nWantedBy=multi-user.target\n",
    )
    .symlink(
        "/etc/systemd/system/multi-user.target.wants/NetworkManager.service",
        "/usr/lib/systemd/system/NetworkManager.service",
    );
    let declared = policy(|p| {
        p.nvme = true;
        p.accelerated_networking = true;
    });
    let j = judge(&v.path, &[declared.clone(), Policy::default()]);
    let r = &j[0].0;
    assert_quiet(r, "GAL-007");
    let f = assert_fires(r, "GAL-006", Severity::Warning);
    assert!(
        f[0].evidence.as_deref().unwrap().contains("NetworkManager"),
        "{f:?}"
    );
    // Derived: NVMe yes, accelerated networking no; declared: both as declared.
    let d = &j[1].1;
    assert_eq!(feature(d, "DiskControllerTypes"), "SCSI, NVMe");
    assert_eq!(feature(d, "IsAcceleratedNetworkSupported"), "False");
    let d = &j[0].1;
    assert_eq!(feature(d, "IsAcceleratedNetworkSupported"), "True");
    assert_eq!(
        d.feature("IsAcceleratedNetworkSupported").unwrap().derived,
        "False"
    );
    // The SR-IOV rule keeps NetworkManager off the VF; a blacklisted MANA driver still fails.
    v.write(
        "/etc/udev/rules.d/68-azure-sriov-nm-unmanaged.rules",
        SRIOV_RULE,
    )
    .write("/etc/modprobe.d/no-mana.conf", "blacklist mana\n");
    let r = reports(&v.path, std::slice::from_ref(&declared));
    let ev = assert_fires(&r[0], "GAL-006", Severity::Warning)[0]
        .evidence
        .clone()
        .unwrap();
    assert!(
        ev.contains("mana is disabled by /etc/modprobe.d/no-mana.conf:1"),
        "{ev}"
    );
    assert!(!ev.contains("NetworkManager"), "{ev}");
}

/// A 32-bit i386 ELF header (e_machine 3), enough for the architecture probe.
fn elf32_header() -> Vec<u8> {
    let mut h = vec![0u8; 52];
    h[..7].copy_from_slice(b"\x7fELF\x01\x01\x01");
    h[16] = 2; // ET_EXEC
    h[18] = 3; // EM_386
    h[20] = 1; // EV_CURRENT
    h
}

/// The kernel of the fixture's grub.cfg (the one the fixture was built with) switched to an
/// (empty) 4.19 Debian kernel.
fn switch_to_old_kernel(v: &mut Variant) {
    let kernel = v.kernel();
    v.edit("/boot/grub/grub.cfg", |t| {
        t.replace(&kernel, "4.19.0-5-cloud-amd64")
    })
    .write("/boot/vmlinuz-4.19.0-5-cloud-amd64", "not a kernel")
    .mkdir("/usr/lib/modules/4.19.0-5-cloud-amd64");
}

#[test]
fn marketplace_failures_on_a_changed_image() {
    let mut v = Variant::of("gen2-gpt-ext4");
    switch_to_old_kernel(&mut v);
    v.write("/root/.bash_history", "ls -l\n".repeat(400))
        .set_agent_version("waagent", "2.2.40")
        .edit("/boot/grub/grub.cfg", |t| {
            t.replace(" console=ttyS0,115200", "")
                .replace(" rootdelay=300", "")
        })
        .set_package_version("openssl", "0.9.7m-1")
        .set_package_version("libssl3", "0.9.7m-1")
        .set_package_version("libc6", "2.17-1")
        .remove("/usr/bin/python3.11")
        .write(
            "/etc/ssh/sshd_config.d/50-keepalive.conf",
            "ClientAliveInterval 300\n",
        )
        .write("/usr/sbin/init", elf32_header())
        .edit("/etc/waagent.conf", |t| {
            t.replace("Extensions.Enabled=y", "Extensions.Enabled=n")
        })
        .write(
            "/root/.ssh/authorized_keys",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB test@example\n",
        )
        .write("/var/lib/waagent/provisioned", "");
    assert!(v.read(WAAGENT_VERSION_PY).contains("2.2.40"));
    let declared = policy(|p| {
        p.marketplace = true;
        p.os_state = Some(OsState::Generalized);
    });
    let r = &reports(&v.path, &[declared])[0];
    assert_fires(r, "CERT-001", Severity::Warning);
    assert!(assert_fires(r, "CERT-002", Severity::Error)[0]
        .message
        .contains("2.2.40"));
    let f = assert_fires(r, "CERT-003", Severity::Error);
    let warn = f.iter().find(|f| f.severity == Severity::Warning).unwrap();
    assert!(warn.message.contains("rootdelay=300") && !warn.message.contains("earlyprintk"));
    assert!(assert_fires(r, "CERT-006", Severity::Warning)[0]
        .message
        .contains("0.9.7m-1"));
    assert!(assert_fires(r, "CERT-007", Severity::Warning)[0]
        .message
        .contains("no Python"));
    let f = assert_fires(r, "CERT-008", Severity::Warning);
    assert!(f[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("50-keepalive.conf:1"));
    assert!(assert_fires(r, "CERT-009", Severity::Error)[0]
        .message
        .contains("i686"));
    assert!(assert_fires(r, "CERT-010", Severity::Info)[0]
        .message
        .contains("GHOST"));
    let f = assert_fires(r, "CERT-012", Severity::Warning);
    assert!(f[0].message.contains("4.19.52"), "{f:?}");
    assert!(assert_fires(r, "CERT-014", Severity::Error)[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("provisioned"));
    assert!(assert_fires(r, "CERT-016", Severity::Error)[0]
        .message
        .contains("/root/.ssh/authorized_keys"));
    assert_fires(r, "CERT-019", Severity::Warning);
    // The same marker makes the declared Generalized a GAL-002 error.
    assert!(assert_fires(r, "GAL-002", Severity::Error)[0]
        .message
        .contains("the disk is Specialized"));
}

#[test]
fn marketplace_passes_on_a_fixed_image() {
    let mut v = Variant::of("gen2-gpt-ext4");
    // Debian's 4.19.37-5 is fixed per the Marketplace table although upstream 4.19.37 is not.
    switch_to_old_kernel(&mut v);
    v.edit("/var/lib/dpkg/status", |t| {
        format!(
            "{t}\nPackage: linux-image-4.19.0-5-cloud-amd64\nStatus: install ok installed\nVersion: 4.19.37-5\n"
        )
    })
    .write("/etc/ssh/sshd_config.d/50-azure.conf", "ClientAliveInterval 180\n")
    .edit("/etc/waagent.conf", |t| {
        t.replace("AutoUpdate.Enabled=n", "AutoUpdate.Enabled=y")
    })
    .make_vhd();
    let r = &reports(&v.path, &[marketplace()])[0];
    for id in [
        "CERT-001", "CERT-002", "CERT-003", "CERT-004", "CERT-005", "CERT-006", "CERT-007",
        "CERT-008", "CERT-009", "CERT-011", "CERT-012", "CERT-013", "CERT-014", "CERT-016",
        "CERT-019",
    ] {
        assert_quiet(r, id);
    }
    // The fixture's layout stays: 1 MiB alignment and a 4 GiB disk.
    assert_fires(r, "CERT-015", Severity::Warning);
    assert_fires(r, "CERT-017", Severity::Warning);
}

/// A sparse raw disk of `size` bytes partitioned by `sgdisk args` (none: no table).
fn disk(dir: &std::path::Path, name: &str, size: &str, sgdisk: &[&str]) -> std::path::PathBuf {
    let p = dir.join(name);
    run(
        Command::new("truncate").args(["-s", size]).arg(&p),
        "coreutils",
    );
    if !sgdisk.is_empty() {
        run(Command::new("sgdisk").args(sgdisk).arg(&p), "gdisk");
    }
    p
}

#[test]
fn partition_layout_and_size_certification_on_small_disks() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    // Two GPT root partitions and a swap partition (type and mkswap signature), from 2 MiB.
    let layered = disk(
        dir.path(),
        "layered.raw",
        "64M",
        &[
            "-n",
            "1:4096:20479",
            "-t",
            "1:8304",
            "-n",
            "2:20480:36863",
            "-t",
            "2:8304",
            "-n",
            "3:36864:53247",
            "-t",
            "3:8200",
        ],
    );
    let swap = dir.path().join("swap.img");
    run(
        Command::new("truncate").args(["-s", "8M"]).arg(&swap),
        "coreutils",
    );
    run(Command::new("mkswap").arg(&swap), "util-linux");
    let sig = std::fs::read(&swap).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&layered)
        .unwrap();
    f.write_all_at(&sig[..8192], 36864 * 512).unwrap();
    drop(f);
    let r = check_path(&layered, &marketplace());
    let sw = assert_fires(&r, "CERT-004", Severity::Error);
    assert!(sw[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("swap partition type and swap signature"));
    assert!(assert_fires(&r, "CERT-005", Severity::Warning)[0]
        .message
        .contains("2 root partitions"));
    assert_quiet(&r, "CERT-015");
    assert_fires(&r, "CERT-017", Severity::Warning);
    for id in ["CERT-001", "CERT-006", "CERT-012", "GAL-001", "GAL-004"] {
        assert!(skipped(&r, id), "{id}");
    }
    // A 30 GiB disk with its first partition at 1 MiB, and a data disk over 1,023 GiB.
    let os = disk(
        dir.path(),
        "os.raw",
        "30G",
        &["-n", "1:2048:+16M", "-t", "1:8300"],
    );
    let big = disk(dir.path(), "data-big.raw", "1100G", &[]);
    let image = DiskImage::open(&os).unwrap();
    let data = [
        DiskImage::open(&big).unwrap(),
        DiskImage::open(&layered).unwrap(),
    ];
    let r = check(&image, &data, &marketplace()).unwrap();
    assert!(assert_fires(&r, "CERT-015", Severity::Warning)[0]
        .message
        .contains("1024 KiB"));
    assert_quiet(&r, "CERT-017");
    assert_quiet(&r, "CERT-004");
    assert_quiet(&r, "CERT-005");
    let d = assert_fires(&r, "CERT-018", Severity::Warning);
    assert_eq!(d.len(), 1, "only the 1,024 GiB data disk: {d:?}");
    assert!(d[0].message.contains("data-big.raw"));
    assert_quiet(&r, "GAL-011");
    // The same OS disk with a small data disk only.
    let r = check(&image, &data[1..], &marketplace()).unwrap();
    assert_quiet(&r, "CERT-018");
    // A 1,100 GiB OS disk is above the recommended size; with its twin as a data disk the
    // image version needs shallow replication.
    let r = check_path(&big, &marketplace());
    assert_fires(&r, "CERT-017", Severity::Warning);
    assert!(skipped(&r, "CERT-015"));
    let twin = [DiskImage::open(&big).unwrap()];
    let r = check(&DiskImage::open(&big).unwrap(), &twin, &Policy::default()).unwrap();
    assert!(assert_fires(&r, "GAL-011", Severity::Info)[0]
        .message
        .contains("shallow replication"));
}
