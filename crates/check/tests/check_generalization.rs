//! GEN-xxx on real images: the generalized Debian fixture, then the traces a VM leaves when
//! it is captured without `waagent -deprovision+user` and `cloud-init clean` — written into a
//! copy with debugfs, with host and user keys made by ssh-keygen and the password hash by
//! openssl.

mod common;

use common::*;
use std::process::Command;
use vhdprep_check::{OsState, Policy, Report, Severity};

const GEN: [&str; 18] = [
    "GEN-001", "GEN-002", "GEN-003", "GEN-004", "GEN-005", "GEN-006", "GEN-007", "GEN-008",
    "GEN-009", "GEN-010", "GEN-011", "GEN-012", "GEN-013", "GEN-014", "GEN-015", "GEN-016",
    "GEN-017", "GEN-018",
];

const VM_ID: &str = "5c3c1f7e-2b9d-4a61-9b0e-3f4d2a1c8e77";

/// What the Azure fabric hands a Linux VM (ovf-env.xml as waagent stores it).
const OVF_ENV: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <wa:ProvisioningSection>
    <wa:Version>1.0</wa:Version>
    <LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
      <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>
      <HostName>web01</HostName>
      <UserName>azureuser</UserName>
      <DisableSshPasswordAuthentication>true</DisableSshPasswordAuthentication>
      <SSH>
        <PublicKeys>
          <PublicKey>
            <Fingerprint>8A1E36E5BD2D1E8B4C3A1D5F7E9B2C4D6F8A0B1C</Fingerprint>
            <Path>/home/azureuser/.ssh/authorized_keys</Path>
          </PublicKey>
        </PublicKeys>
      </SSH>
    </LinuxProvisioningConfigurationSet>
  </wa:ProvisioningSection>
  <wa:PlatformSettingsSection>
    <PlatformSettings xmlns="http://schemas.microsoft.com/windowsazure" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
      <KmsServerHostname>kms.core.windows.net</KmsServerHostname>
      <ProvisionGuestAgent>true</ProvisionGuestAgent>
      <GuestAgentPackageName i:nil="true" />
      <PreprovisionedVm>false</PreprovisionedVm>
    </PlatformSettings>
  </wa:PlatformSettingsSection>
</Environment>
"#;

fn declared(state: OsState) -> Policy {
    Policy {
        os_state: Some(state),
        ..Policy::default()
    }
}

fn message<'a>(r: &'a Report, id: &str, sev: Severity) -> &'a str {
    &assert_fires(r, id, sev)
        .into_iter()
        .find(|f| f.severity == sev)
        .unwrap()
        .message
}

fn loud(r: &Report) -> Vec<&'static str> {
    r.findings
        .iter()
        .filter(|f| f.id.starts_with("GEN-") && f.severity > Severity::Info)
        .map(|f| f.id)
        .collect()
}

/// A key pair made by ssh-keygen: (private, public).
fn keygen(v: &Variant, name: &str, kind: &str, comment: &str) -> (Vec<u8>, Vec<u8>) {
    let p = v.dir.path().join(name);
    run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", comment, "-f"])
            .arg(&p),
        "openssh-client",
    );
    let private = std::fs::read(&p).unwrap();
    let public = std::fs::read(p.with_extension("pub")).unwrap();
    (private, public)
}

#[test]
fn clean_fixture_is_generalized() {
    let (img, _) = fixture("gen2-gpt-ext4");
    let r = check_path(&img, &declared(OsState::Generalized));
    for id in GEN {
        assert_quiet(&r, id);
    }
    assert_eq!(r.os_state, Some(OsState::Generalized));
    assert!(r.details.os_state.specialized_evidence.is_empty());
    // The Debian image names itself "debian": a weak signal, stated only.
    assert!(message(&r, "GEN-011", Severity::Info).contains("\"debian\""));
}

#[test]
fn captured_waagent_state() {
    let mut v = Variant::of("gen2-gpt-ext4");

    // 1. waagent's marker alone: hard evidence, the disk reads as Specialized.
    v.write("/var/lib/waagent/provisioned", VM_ID);
    let r = v.check(&Policy::default());
    let m = message(&r, "GEN-001", Severity::Error);
    assert!(m.contains("register it Specialized"), "{m}");
    assert_eq!(r.os_state, Some(OsState::Specialized));
    assert!(r.details.os_state.specialized_evidence[0].contains("/var/lib/waagent/provisioned"));
    let f = &assert_fires(&r, "GEN-001", Severity::Error)[0];
    assert!(f
        .remediation
        .as_deref()
        .unwrap()
        .contains("waagent -deprovision+user -force"));
    assert_eq!(loud(&r), ["GEN-001"]);
    let r = v.check(&declared(OsState::Specialized));
    assert_fires(&r, "GEN-001", Severity::Info);
    assert_quiet(&r, "GEN-001");

    // 2. The rest of /var/lib/waagent and the agent's logs (with the fixture's own version).
    let waagent = v.agent_version("waagent");
    v.write("/var/lib/waagent/ovf-env.xml", OVF_ENV)
        .write("/var/lib/waagent/GoalState.1.xml", "<GoalState/>\n")
        .write("/var/lib/waagent/Incarnation", "1")
        .write(
            "/var/lib/waagent/history/2025-01-02T10-00-00__1/GoalState.xml",
            "<GoalState/>\n",
        )
        .write("/var/lib/waagent/disable_agent", "")
        .write(
            "/var/log/waagent.log",
            format!("2025-01-02T10:00:00.000000Z INFO Daemon Azure Linux Agent Version: {waagent}\n"),
        )
        .write(
            "/var/log/azure/Microsoft.Azure.Extensions.CustomScript/handler.log",
            "+ /var/lib/waagent/Microsoft.Azure.Extensions.CustomScript-2.1.10/bin/custom-script-shim enable\n",
        )
        .write(
            "/usr/lib/systemd/system/walinuxagent.service.d/10-Slice.conf",
            "[Service]\nSlice=azure.slice\n",
        );
    let r = v.check(&declared(OsState::Generalized));
    assert!(message(&r, "GEN-001", Severity::Error).contains("declared Generalized"));
    let errors: Vec<&str> = findings(&r, "GEN-002")
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("UserName azureuser, HostName web01"),
        "{}",
        errors[0]
    );
    let w = message(&r, "GEN-002", Severity::Warning);
    assert!(w.contains("3 items"), "{w}");
    assert_fires(&r, "GEN-003", Severity::Warning);
    assert_fires(&r, "GEN-016", Severity::Info);
    assert_fires(&r, "GEN-017", Severity::Warning);
}

#[test]
fn captured_cloud_init_state_and_identity() {
    let mut v = Variant::of("gen2-gpt-ext4");
    // 1. cloud-init's instance state, seed, logs and network files (in the logs, the version
    // of the fixture's own cloud-init).
    let ci = v.agent_version("cloud-init");
    let inst = format!("/var/lib/cloud/instances/{VM_ID}");
    v.write(&format!("{inst}/boot-finished"), format!("12.34 - Thu, 02 Jan 2025 10:00:00 +0000 - v. {ci}\n"))
        .write(&format!("{inst}/user-data.txt"), "")
        .symlink("/var/lib/cloud/instance", &inst)
        .write("/var/lib/cloud/data/instance-id", VM_ID)
        .write("/var/lib/cloud/data/reported_ready", "")
        .write("/var/lib/cloud/seed/azure/ovf-env.xml", OVF_ENV)
        .write(
            "/var/log/cloud-init.log",
            format!("2025-01-02 10:00:00,000 - util.py[DEBUG]: Cloud-init v. {ci} running 'init-local'\n"),
        )
        .write("/var/log/cloud-init-output.log", format!("Cloud-init v. {ci} finished\n"))
        .write(
            "/etc/udev/rules.d/70-persistent-net.rules",
            "SUBSYSTEM==\"net\", ACTION==\"add\", ATTR{address}==\"00:0d:3a:12:34:56\", NAME=\"eth0\"\n",
        );
    let r = v.check(&declared(OsState::Generalized));
    assert!(message(&r, "GEN-005", Severity::Error).contains("declared Generalized"));
    assert_eq!(
        r.os_state,
        Some(OsState::Specialized),
        "a seed is hard evidence"
    );
    assert!(message(&r, "GEN-004", Severity::Error).contains("reported_ready"));
    let w = &assert_fires(&r, "GEN-004", Severity::Warning)
        .into_iter()
        .find(|f| f.severity == Severity::Warning)
        .unwrap();
    assert!(w.message.contains("3 items"), "{}", w.message);
    let ev = w.evidence.as_deref().unwrap();
    for p in [
        "/var/lib/cloud/instance (link to",
        "/var/lib/cloud/instances/",
        "/var/lib/cloud/data/instance-id",
    ] {
        assert!(ev.contains(p), "{ev}");
    }
    assert!(message(&r, "GEN-005", Severity::Error).contains("seed"));
    assert!(message(&r, "GEN-006", Severity::Warning).contains("2 items"));
    assert_fires(&r, "GEN-015", Severity::Warning);
    assert!(r
        .details
        .os_state
        .specialized_evidence
        .iter()
        .any(|e| e.contains("/var/lib/cloud/seed/azure/ovf-env.xml")));

    // 2. The machine's identity: host keys, the admin user, root password, history; and the
    // marker a VM deployed with provisionVMAgent=false leaves.
    let (host, host_pub) = keygen(&v, "ssh_host_ed25519_key", "ed25519", "root@web01");
    let (_, user_pub) = keygen(&v, "id_ed25519", "ed25519", "azureuser@laptop");
    let hash = run(
        Command::new("openssl").args(["passwd", "-6", "Passw0rd!"]),
        "openssl",
    );
    v.write("/etc/ssh/ssh_host_ed25519_key", host)
        .write("/etc/ssh/ssh_host_ed25519_key.pub", host_pub)
        .edit("/etc/passwd", |t| {
            format!("{t}azureuser:x:1000:1000:,,,:/home/azureuser:/bin/bash\n")
        })
        .edit("/etc/shadow", |t| {
            let t = t.replace("root:*:", &format!("root:{}:", hash.trim()));
            format!("{t}azureuser:!:20100:0:99999:7:::\n")
        })
        .write("/home/azureuser/.ssh/authorized_keys", user_pub)
        .write(
            "/home/azureuser/.bash_history",
            "sudo apt-get update\nsudo systemctl status walinuxagent\n".repeat(30),
        )
        .write(
            "/etc/sudoers.d/waagent",
            "azureuser ALL=(ALL) ALL\nolduser ALL=(ALL) NOPASSWD: ALL\n",
        )
        .write("/etc/machine-id", "3f9a1c0e7b2d4e6f8a0b1c2d3e4f5a6b\n")
        .write("/etc/hostname", "web01\n")
        .write(
            "/etc/resolv.conf",
            "domain abc.internal.cloudapp.net\nsearch abc.internal.cloudapp.net\nnameserver 168.63.129.16\n",
        )
        .write(
            "/var/lib/dhcp/dhclient.eth0.leases",
            "lease {\n  interface \"eth0\";\n  fixed-address 10.0.0.4;\n}\n",
        )
        .write("/var/lib/waagent/disable_agent", "");
    let r = v.check(&Policy::default());
    // cloud-init regenerates host keys per instance.
    assert!(message(&r, "GEN-007", Severity::Info).contains("cloud-init"));
    assert_quiet(&r, "GEN-007");
    let m = message(&r, "GEN-008", Severity::Warning);
    assert!(m.contains("azureuser"), "{m}");
    let ev = assert_fires(&r, "GEN-008", Severity::Warning)[0]
        .evidence
        .clone()
        .unwrap();
    assert!(
        ev.contains("uid 1000")
            && ev.contains("/etc/sudoers.d/waagent:1")
            && ev.contains("authorized_keys (1 key)"),
        "{ev}"
    );
    assert!(message(&r, "GEN-009", Severity::Warning).contains("$6$"));
    assert_fires(&r, "GEN-010", Severity::Warning);
    assert!(message(&r, "GEN-011", Severity::Info).contains("web01"));
    assert!(message(&r, "GEN-012", Severity::Info).contains("1 nameserver line"));
    assert!(message(&r, "GEN-013", Severity::Warning).contains("/etc/machine-id"));
    assert!(message(&r, "GEN-014", Severity::Warning).contains("1 history file"));
    assert!(message(&r, "GEN-018", Severity::Info).contains("olduser"));
    let json = serde_json::to_string(&r).unwrap();
    assert!(
        !json.contains(hash.trim()) && !json.contains("AAAAC3Nza"),
        "no secrets in the report"
    );

    // Marketplace: a shipped account is a default credential.
    let r = v.check(&Policy {
        marketplace: true,
        ..Policy::default()
    });
    assert_fires(&r, "GEN-008", Severity::Error);

    // Declared Specialized: all of it is expected; only disable_agent still turns the agent
    // off on the new VM, and an agent that would provision is AGENT-014's business.
    let r = v.check(&declared(OsState::Specialized));
    assert_eq!(loud(&r), ["GEN-017"]);
    for id in [
        "GEN-004", "GEN-005", "GEN-008", "GEN-009", "GEN-013", "GEN-014",
    ] {
        assert_fires(&r, id, Severity::Info);
    }
    assert!(message(&r, "AGENT-014", Severity::Warning).contains("cloud-init"));
}

#[test]
fn host_keys_without_regeneration() {
    let mut v = Variant::of("gen2-gpt-ext4");
    let (host, host_pub) = keygen(&v, "ssh_host_ed25519_key", "ed25519", "root@old");
    let (_, admin_pub) = keygen(&v, "admin", "ed25519", "admin@laptop");
    // waagent alone: cloud-init disabled the way `systemctl disable` + the marker do.
    v.remove("/etc/systemd/system/cloud-init.target.wants/cloud-init-local.service")
        .write("/etc/cloud/cloud-init.disabled", "")
        .edit("/etc/waagent.conf", |t| {
            t.replace("Provisioning.Agent=cloud-init", "Provisioning.Agent=auto")
                .replace(
                    "Provisioning.RegenerateSshHostKeyPair=y",
                    "Provisioning.RegenerateSshHostKeyPair=n",
                )
        })
        .write("/etc/ssh/ssh_host_ed25519_key", host)
        .write("/etc/ssh/ssh_host_ed25519_key.pub", host_pub)
        // A dbus machine-id copied as a file, and waagent's root lock (DeleteRootPassword=y).
        .write(
            "/var/lib/dbus/machine-id",
            "0123456789abcdef0123456789abcdef\n",
        )
        .edit("/etc/shadow", |t| {
            let rest: Vec<&str> = t.lines().filter(|l| !l.starts_with("root:")).collect();
            format!("root:*LOCK*:14600::::::\n{}\n", rest.join("\n"))
        });
    let r = v.check(&Policy::default());
    assert_eq!(r.provisioning.agent, "waagent");
    assert!(message(&r, "GEN-007", Severity::Warning).contains("nothing regenerates"));
    assert_eq!(r.os_state, Some(OsState::Generalized));
    let f = assert_fires(&r, "GEN-013", Severity::Warning);
    assert_eq!(f.len(), 1, "/etc/machine-id is uninitialized: {f:#?}");
    assert!(f[0].message.contains("/var/lib/dbus/machine-id"));
    assert!(message(&r, "GEN-009", Severity::Info).contains("root:*LOCK*"));
    assert!(r
        .details
        .os_state
        .generalized_evidence
        .iter()
        .any(|e| e.contains("*LOCK*")));

    // A key to log in as root on top: a copy of one machine.
    v.write("/root/.ssh/authorized_keys", admin_pub);
    let r = v.check(&Policy::default());
    assert_eq!(r.os_state, Some(OsState::Specialized));
    assert!(message(&r, "GEN-008", Severity::Warning).starts_with("root has SSH authorized_keys"));

    // waagent regenerates the keys when it provisions: information only.
    v.edit("/etc/waagent.conf", |t| {
        t.replace(
            "Provisioning.RegenerateSshHostKeyPair=n",
            "Provisioning.RegenerateSshHostKeyPair=y",
        )
    });
    let r = v.check(&Policy::default());
    assert!(message(&r, "GEN-007", Severity::Info).contains("RegenerateSshHostKeyPair=y"));
    assert_quiet(&r, "GEN-007");
    assert_eq!(r.os_state, Some(OsState::Generalized));
    assert_fires(&r, "GEN-008", Severity::Warning);
}
