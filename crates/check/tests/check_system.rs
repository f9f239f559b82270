//! SYS-xxx on real images: the Debian fixtures, changed with debugfs, and given content made
//! by the real tools (mkswap, openssl passwd, ssh-keygen, sfdisk).
//!
//! A check gathers its facts once; the policies that only change severities (osState,
//! Marketplace, NVMe) are judged on the same gathered context, to keep the test fast.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use vhdprep_check::report::RuleStatus;
use vhdprep_check::{OsState, Policy, Report, Severity};

fn status(r: &Report, id: &str) -> (RuleStatus, Option<String>) {
    let x = r.rules.iter().find(|x| x.id == id).unwrap();
    (x.status, x.reason.clone())
}

const SLES_OS_RELEASE: &str = "NAME=\"SLES\"\nVERSION=\"15-SP5\"\nVERSION_ID=\"15.5\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP5\"\nID=\"sles\"\nID_LIKE=\"suse\"\nANSI_COLOR=\"0;32\"\nCPE_NAME=\"cpe:/o:suse:sles:15:sp5\"\n";

const CHRONY_UNIT: &str = "[Unit]\nDescription=chrony, an NTP client/server\nConflicts=systemd-timesyncd.service\n\n[Service]\nType=forking\nPIDFile=/run/chrony/chronyd.pid\nExecStart=/usr/sbin/chronyd $DAEMON_OPTS\n\n[Install]\nAlias=chronyd.service\nWantedBy=multi-user.target\n";

/// A well-prepared image: cloud-init owns the resource disk, sshd keeps clients alive 180 s,
/// chrony uses the Hyper-V PTP clock. It also calls itself SLES with SUSE's two settings
/// done, so SYS-011 is evaluated rather than skipped.
#[test]
fn prepared_image_passes_every_system_rule() {
    let mut v = Variant::of("gen2-gpt-ext4");
    v.edit("/etc/waagent.conf", |t| {
        t.replace("ResourceDisk.Format=y", "ResourceDisk.Format=n")
            .replace("ResourceDisk.EnableSwap=y", "ResourceDisk.EnableSwap=n")
    })
    .write("/etc/ssh/sshd_config.d/10-azure.conf", "ClientAliveInterval 180\n")
    .write("/lib/systemd/system/chrony.service", CHRONY_UNIT)
    .symlink(
        "/etc/systemd/system/multi-user.target.wants/chrony.service",
        "/lib/systemd/system/chrony.service",
    )
    .write(
        "/etc/chrony/chrony.conf",
        "pool 2.debian.pool.ntp.org iburst\nrefclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0\nmakestep 1.0 3\n",
    )
    .write("/etc/os-release", SLES_OS_RELEASE)
    .write(
        "/etc/sysconfig/network/dhcp",
        "## Type: yesno\nDHCLIENT_SET_HOSTNAME=\"no\"\nDHCLIENT_HOSTNAME_OPTION=\"AUTO\"\n",
    );
    assert!(v
        .read("/etc/waagent.conf")
        .contains("ResourceDisk.Format=n"));
    let r = &reports(&v.path, &[Policy::default()])[0];
    for id in [
        "SYS-001", "SYS-002", "SYS-003", "SYS-004", "SYS-005", "SYS-007", "SYS-008", "SYS-009",
        "SYS-010", "SYS-011",
    ] {
        assert_quiet(r, id);
    }
    assert!(
        findings(r, "SYS-006").is_empty(),
        "chrony with PTP: nothing to say"
    );
    let os = assert_fires(r, "SYS-012", Severity::Info);
    assert!(
        os[0]
            .message
            .contains("SUSE Linux Enterprise Server 15 SP5"),
        "{os:?}"
    );
}

/// Real tools' output for the leftover user.
fn password_hash() -> String {
    run(
        Command::new("openssl").args(["passwd", "-6", "-salt", "vhdprepsalt", "Passw0rd!"]),
        "openssl",
    )
    .trim()
    .to_string()
}

fn public_key(dir: &Path) -> String {
    let key = dir.join("id_ed25519");
    run(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "azureuser@build",
                "-f",
            ])
            .arg(&key),
        "openssh-client",
    );
    std::fs::read_to_string(key.with_extension("pub")).unwrap()
}

fn swap_file(dir: &Path) -> Vec<u8> {
    let p = dir.join("swapfile");
    std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
    run(Command::new("mkswap").arg(&p), "util-linux");
    std::fs::read(&p).unwrap()
}

/// The leftovers of a build that was never cleaned: swap file, a /dev/sda1 mount, a 2 KB
/// root history, the build user with a password and a key, a 600 s keep-alive, ssh
/// disabled, python3 and parted gone, the KVP daemon gone while cloud-init reports over KVP,
/// and SUSE's two settings left at their defaults.
#[test]
fn build_leftovers_fire_system_rules() {
    let mut v = Variant::of("gen2-gpt-ext4");
    let hash = password_hash();
    assert!(hash.starts_with("$6$vhdprepsalt$"), "{hash}");
    let key = public_key(v.dir.path());
    let swap = swap_file(v.dir.path());
    let history: String = (0..70)
        .map(|i| format!("sudo apt-get install -y pkg{i:03}\n"))
        .collect();
    assert!(history.len() > 2048);
    v.edit("/etc/fstab", |t| {
        format!("{t}/swapfile none swap sw 0 0\n/dev/sda1 /srv ext4 defaults 0 2\n")
    })
    .write("/swapfile", &swap)
    .write("/root/.bash_history", &history)
    .write("/root/.lesshst", ".less-history-file:\n.search\n\"error\n")
    .edit("/etc/passwd", |t| {
        format!("{t}azureuser:x:1000:1000:Azure User,,,:/home/azureuser:/bin/bash\n")
    })
    .edit("/etc/shadow", |t| format!("{t}azureuser:{hash}:20089:0:99999:7:::\n"))
    .write("/home/azureuser/.ssh/authorized_keys", &key)
    .write("/etc/ssh/sshd_config.d/50-build.conf", "ClientAliveInterval 600\n")
    .remove("/etc/systemd/system/multi-user.target.wants/ssh.service")
    .remove("/usr/bin/python3")
    .remove("/usr/sbin/parted")
    .remove("/usr/sbin/hv_kvp_daemon")
    .write(
        "/etc/cloud/cloud.cfg.d/10-azure-kvp.cfg",
        "reporting:\n  logging:\n    type: log\n  telemetry:\n    type: hyperv\n",
    )
    .write("/etc/os-release", SLES_OS_RELEASE)
    .write("/etc/sysconfig/network/dhcp", "DHCLIENT_SET_HOSTNAME=\"yes\"\n")
    .edit("/etc/sudoers", |t| {
        format!("{t}Defaults targetpw   # ask for the password of the target user i.e. root\nALL   ALL=(ALL) ALL   # WARNING! Only use this together with 'Defaults targetpw'!\n")
    });
    let specialized = Policy {
        os_state: Some(OsState::Specialized),
        ..Policy::default()
    };
    let strict = Policy {
        marketplace: true,
        nvme: true,
        ..Policy::default()
    };
    let rs = reports(&v.path, &[Policy::default(), specialized, strict]);
    let (r, spec, strict) = (&rs[0], &rs[1], &rs[2]);
    assert_eq!(r.os_state, Some(OsState::Generalized), "{:?}", r.os_state);

    let ssh = assert_fires(r, "SYS-001", Severity::Error);
    assert!(ssh[0].message.contains("not enabled"), "{ssh:?}");
    assert_fires(spec, "SYS-001", Severity::Warning);

    let alive = assert_fires(r, "SYS-002", Severity::Warning);
    assert!(alive[0].message.contains("600 seconds"), "{alive:?}");
    assert!(alive[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("50-build.conf:1"));

    let swap = assert_fires(r, "SYS-003", Severity::Warning);
    assert!(
        swap.iter().all(|f| f.severity == Severity::Warning),
        "a file, not a partition"
    );
    assert_eq!(
        swap.len(),
        1,
        "the fstab line and the file are one finding: {swap:?}"
    );
    assert!(swap[0].message.contains("/swapfile"));

    let sda = assert_fires(r, "SYS-004", Severity::Warning);
    assert_eq!(sda.len(), 1, "one finding for the /dev/sda1 line: {sda:?}");
    assert!(sda[0].message.contains("/dev/sda1"));
    assert_fires(strict, "SYS-004", Severity::Error);

    assert_fires(r, "SYS-005", Severity::Warning);
    assert_fires(r, "SYS-006", Severity::Info);
    let kvp = assert_fires(r, "SYS-007", Severity::Warning);
    assert!(kvp[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("10-azure-kvp.cfg"));

    let deps = assert_fires(r, "SYS-008", Severity::Error);
    assert!(
        deps.iter()
            .any(|f| f.message.contains("#!/usr/bin/python3")),
        "{deps:?}"
    );
    assert!(deps
        .iter()
        .any(|f| f.severity == Severity::Warning && f.message.contains("parted")));

    let hist = assert_fires(r, "SYS-009", Severity::Warning);
    assert!(hist
        .iter()
        .any(|f| f.message.contains("/root/.bash_history")));
    assert!(hist
        .iter()
        .any(|f| f.severity == Severity::Info && f.message.contains(".lesshst")));

    let creds = assert_fires(r, "SYS-010", Severity::Warning);
    assert_eq!(creds.len(), 2, "{creds:?}");
    assert!(creds
        .iter()
        .any(|f| f.message.starts_with("azureuser has a usable password")));
    assert!(creds
        .iter()
        .any(|f| f.message.contains("/home/azureuser/.ssh/authorized_keys")));
    assert!(
        creds
            .iter()
            .all(|f| !format!("{f:?}").contains("vhdprepsalt")),
        "no hash shown"
    );
    assert_fires(strict, "SYS-010", Severity::Error);
    assert_eq!(status(spec, "SYS-010").0, RuleStatus::Skipped);

    let suse = assert_fires(r, "SYS-011", Severity::Warning);
    assert_eq!(
        suse.len(),
        3,
        "DHCLIENT_SET_HOSTNAME and two sudoers lines: {suse:?}"
    );
}

/// A swap partition made with sfdisk and mkswap on an MBR disk, named by UUID in fstab, on
/// an image where waagent provisions.
#[test]
fn swap_partition_in_fstab_is_an_error() {
    let mut v = Variant::of("gen1-mbr-ext4");
    let size = std::fs::metadata(&v.path).unwrap().len();
    let swap_len: u64 = 64 << 20;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&v.path)
        .unwrap();
    f.set_len(size + swap_len).unwrap();
    drop(f);
    let mut sfdisk = Command::new("sfdisk");
    sfdisk
        .args(["--quiet", "--no-reread", "--no-tell-kernel", "--append"])
        .arg(&v.path);
    sfdisk.stdin(std::process::Stdio::piped());
    let mut child = sfdisk.spawn().expect("run sfdisk (install fdisk)");
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "start={}, type=82", size / 512).unwrap();
    assert!(child.wait().unwrap().success());
    let part = v.dir.path().join("swap.part");
    std::fs::write(&part, vec![0u8; swap_len as usize]).unwrap();
    let uuid = "5b5c9e1d-3f0a-4c55-9a77-0e1f2a3b4c5d";
    run(
        Command::new("mkswap").args(["-U", uuid]).arg(&part),
        "util-linux",
    );
    run(
        Command::new("dd")
            .arg(format!("if={}", part.display()))
            .arg(format!("of={}", v.path.display()))
            .args([
                "bs=1M",
                "conv=notrunc,sparse",
                "status=none",
                "oflag=seek_bytes",
            ])
            .arg(format!("seek={size}")),
        "coreutils",
    );
    v.edit("/etc/fstab", |t| {
        format!("{t}UUID={uuid} none swap sw 0 0\n")
    })
    // waagent provisions here (cloud-init disabled), so it owns the resource disk and
    // writes its own ClientAliveInterval into sshd_config.
    .edit("/etc/waagent.conf", |t| {
        format!(
            "{}OS.SshClientAliveInterval=300\n",
            t.replace(
                "Provisioning.Agent=cloud-init",
                "Provisioning.Agent=waagent"
            )
        )
    })
    .write("/etc/cloud/cloud-init.disabled", "");
    let r = &reports(&v.path, &[Policy::default()])[0];
    let swap = assert_fires(r, "SYS-003", Severity::Error);
    assert!(swap[0].message.contains("partition 2"), "{swap:?}");
    assert_eq!(r.provisioning.agent, "waagent", "{:?}", r.provisioning);
    let alive = assert_fires(r, "SYS-002", Severity::Warning);
    assert!(
        alive[0]
            .message
            .contains("waagent provisions and writes ClientAliveInterval 300"),
        "{alive:?}"
    );
    assert_quiet(r, "SYS-005");
    // Debian, not SUSE.
    let (st, why) = status(r, "SYS-011");
    assert_eq!(st, RuleStatus::Skipped);
    assert!(why.unwrap().contains("SUSE only"));
}
