//! AGENT-xxx on real images: the Debian fixture (cloud-init provisions, waagent 2.7.3 with
//! Provisioning.Agent=cloud-init) with its waagent.conf, cloud-init configuration, units and
//! packages changed by debugfs the way admins and installers change them.

mod common;

use common::*;
use vhdprep_check::report::RuleStatus;
use vhdprep_check::{OsState, Policy, Report, Severity};

const WAAGENT_CONF: &str = "/etc/waagent.conf";
const CI_LOCAL_LINK: &str = "/etc/systemd/system/cloud-init.target.wants/cloud-init-local.service";
const WAAGENT_LINK: &str = "/etc/systemd/system/multi-user.target.wants/walinuxagent.service";

/// Sets `key=value` in waagent.conf text: replaces the uncommented line, else appends.
fn set_key(text: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key}=");
    let mut found = false;
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                found = true;
                format!("{key}={value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    if !found {
        lines.push(format!("{key}={value}"));
    }
    lines.join("\n") + "\n"
}

fn conf(v: &mut Variant, pairs: &[(&str, &str)]) {
    v.edit(WAAGENT_CONF, |t| {
        pairs
            .iter()
            .fold(t.to_string(), |acc, (k, val)| set_key(&acc, k, val))
    });
}

fn declared(state: OsState) -> Policy {
    Policy {
        os_state: Some(state),
        ..Policy::default()
    }
}

fn status(r: &Report, id: &str) -> RuleStatus {
    r.rules.iter().find(|x| x.id == id).unwrap().status
}

fn message<'a>(r: &'a Report, id: &str, sev: Severity) -> &'a str {
    &assert_fires(r, id, sev)
        .into_iter()
        .find(|f| f.severity == sev)
        .unwrap()
        .message
}

/// Removes a directory tree from the root ext4 filesystem, the way `rm -r` would: debugfs
/// lists each level (one run per depth), then removes files and directories deepest first.
fn rm_tree(v: &Variant, path: &str) {
    let (mut level, mut files, mut dirs) = (vec![path.to_string()], Vec::new(), Vec::new());
    while !level.is_empty() {
        let reqs: Vec<String> = level.iter().map(|d| format!("ls -p \"{d}\"")).collect();
        let listing = v.debugfs("/", &reqs);
        let mut next = Vec::new();
        let mut current = String::new();
        for line in listing.lines() {
            if let Some(d) = line.strip_prefix("debugfs: ls -p \"") {
                current = d.trim_end_matches('"').to_string();
                continue;
            }
            let f: Vec<&str> = line.split('/').collect();
            if f.len() < 6 || f[5] == "." || f[5] == ".." {
                continue;
            }
            let p = format!("{current}/{}", f[5]);
            if f[2].starts_with("04") {
                next.push(p);
            } else {
                files.push(p);
            }
        }
        dirs.extend(level);
        level = next;
    }
    let mut reqs: Vec<String> = files.iter().map(|f| format!("rm \"{f}\"")).collect();
    reqs.extend(dirs.iter().rev().map(|d| format!("rmdir \"{d}\"")));
    v.debugfs("/", &reqs);
}

/// Drops a package's stanza from dpkg's status file (what `dpkg --purge` leaves).
fn dpkg_forget(v: &mut Variant, package: &str) {
    v.edit("/var/lib/dpkg/status", |t| {
        t.split("\n\n")
            .filter(|s| !s.starts_with(&format!("Package: {package}\n")))
            .collect::<Vec<_>>()
            .join("\n\n")
    });
}

#[test]
fn clean_fixture_provisions_with_cloud_init() {
    let (img, manifest) = fixture("gen2-gpt-ext4");
    let r = check_path(&img, &Policy::default());
    for id in [
        "AGENT-001",
        "AGENT-002",
        "AGENT-003",
        "AGENT-004",
        "AGENT-005",
        "AGENT-006",
        "AGENT-007",
        "AGENT-009",
        "AGENT-010",
        "AGENT-011",
        "AGENT-012",
        "AGENT-013",
        "AGENT-015",
    ] {
        assert_quiet(&r, id);
    }
    assert!(message(&r, "AGENT-004", Severity::Info).starts_with("cloud-init provisions"));
    let cloud_init = recorded(&manifest, &["agents", "cloud-init"]);
    let m = message(&r, "AGENT-012", Severity::Info);
    assert!(
        m.contains(&cloud_init),
        "{m} (fixture's cloud-init: {cloud_init})"
    );
    assert!(message(&r, "AGENT-015", Severity::Info).contains("ssh_host_rsa_key.pub"));
    assert!(message(&r, "AGENT-013", Severity::Info).contains("KVP"));
    // Debian's packaged waagent.conf turns auto-update off.
    let f = assert_fires(&r, "AGENT-008", Severity::Warning);
    assert!(f[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("/etc/waagent.conf:113"));
    assert_eq!(status(&r, "AGENT-014"), RuleStatus::Skipped);

    // Declared Specialized, cloud-init would still treat each VM as a new instance.
    let r = check_path(&img, &declared(OsState::Specialized));
    assert!(message(&r, "AGENT-014", Severity::Warning).contains("cloud-init runs at boot"));
    assert_quiet(&r, "AGENT-001");
    assert_quiet(&r, "AGENT-005");
}

#[test]
fn cloud_init_disabled_and_provisioning_disabled() {
    let mut v = Variant::of("gen2-gpt-ext4");
    // (b) waagent waits for cloud-init, which the marker disables.
    v.write("/etc/cloud/cloud-init.disabled", "");
    let r = v.check(&Policy::default());
    let m = message(&r, "AGENT-005", Severity::Error);
    assert!(m.contains("1800"), "{m}");
    assert_quiet(&r, "AGENT-002");

    // (d) Provisioning.Agent=disabled and cloud-init off: nobody creates the user.
    conf(&mut v, &[("Provisioning.Agent", "disabled")]);
    let r = v.check(&Policy::default());
    assert!(message(&r, "AGENT-005", Severity::Error).contains("nobody creates the user"));
    assert!(message(&r, "AGENT-004", Severity::Info).contains("without provisioning"));
    // ... which is what a Specialized image should do.
    let r = v.check(&declared(OsState::Specialized));
    assert_quiet(&r, "AGENT-005");
    assert_quiet(&r, "AGENT-014");
    assert!(findings(&r, "AGENT-014").is_empty());

    // cloud-init back on, waagent still disabled: not the documented combination.
    v.remove("/etc/cloud/cloud-init.disabled");
    let r = v.check(&Policy::default());
    assert_quiet(&r, "AGENT-005");
    assert!(message(&r, "AGENT-006", Severity::Warning).contains("without waiting"));
}

#[test]
fn waagent_alone() {
    let mut v = Variant::of("gen2-gpt-ext4");
    // `systemctl disable cloud-init-local` + the marker: waagent's cloud-init detection
    // (`systemctl is-enabled cloud-init-local.service`) says no, so auto means waagent.
    v.remove(CI_LOCAL_LINK);
    v.write("/etc/cloud/cloud-init.disabled", "");
    conf(&mut v, &[("Provisioning.Agent", "auto")]);
    let r = v.check(&Policy::default());
    assert!(message(&r, "AGENT-004", Severity::Info).starts_with("waagent provisions"));
    for id in ["AGENT-002", "AGENT-005", "AGENT-006"] {
        assert_quiet(&r, id);
    }
    assert_eq!(status(&r, "AGENT-010"), RuleStatus::Skipped);
    assert!(message(&r, "AGENT-015", Severity::Info).contains("thumbprint"));

    // The agent's script lost its execute bits (the unit's condition fails), and the
    // resource disk is left unformatted with swap on but no size.
    v.chmod("/usr/sbin/waagent", 0o100644);
    conf(
        &mut v,
        &[
            ("ResourceDisk.Format", "n"),
            ("ResourceDisk.EnableSwap", "y"),
        ],
    );
    let r = v.check(&Policy::default());
    assert!(message(&r, "AGENT-002", Severity::Error).contains("not executable"));
    let msgs: Vec<&str> = findings(&r, "AGENT-006")
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    assert!(
        msgs.iter().any(|m| m.contains("ResourceDisk.Format=n")),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("SwapSizeMB")), "{msgs:?}");
}

#[test]
fn waagent_service_not_enabled() {
    let mut v = Variant::of("gen2-gpt-ext4");
    v.remove(WAAGENT_LINK);
    // Auto-update on, but the newer key (which wins) off.
    conf(
        &mut v,
        &[
            ("AutoUpdate.Enabled", "y"),
            ("AutoUpdate.UpdateToLatestVersion", "n"),
        ],
    );
    // cloud-init still provisions, but extensions need the agent.
    let r = v.check(&Policy::default());
    let m = message(&r, "AGENT-002", Severity::Warning);
    assert!(m.contains("walinuxagent.service is not enabled"), "{m}");
    assert!(findings(&r, "AGENT-002")
        .iter()
        .all(|f| f.severity == Severity::Warning));
    assert!(message(&r, "AGENT-008", Severity::Warning).contains("UpdateToLatestVersion"));
    // And with cloud-init disabled nothing starts at all.
    v.write("/etc/cloud/cloud-init.disabled", "");
    let r = v.check(&Policy::default());
    let f = assert_fires(&r, "AGENT-002", Severity::Error);
    assert!(f[0]
        .remediation
        .as_deref()
        .unwrap()
        .contains("systemctl enable walinuxagent.service"));
    assert_eq!(r.provisioning.agent, "none");
}

#[test]
fn waagent_conf_switches_legacy_keys_and_unknown_mode() {
    let mut v = Variant::of("gen2-gpt-ext4");
    conf(
        &mut v,
        &[
            ("AutoUpdate.Enabled", "y"),
            ("Extensions.Enabled", "n"),
            ("Provisioning.Enabled", "n"),
            ("Provisioning.UseCloudInit", "y"),
            ("Provisioning.Agent", "cloudinit"),
        ],
    );
    let r = v.check(&Policy::default());
    assert_quiet(&r, "AGENT-008");
    assert!(message(&r, "AGENT-009", Severity::Warning).contains("40 minutes"));
    let legacy = findings(&r, "AGENT-007");
    assert_eq!(legacy.len(), 2, "{legacy:#?}");
    assert!(legacy
        .iter()
        .all(|f| f.severity == Severity::Info && f.message.contains("ignore")));
    // A typo silently disables waagent's provisioning.
    assert!(message(&r, "AGENT-004", Severity::Warning).contains("\"cloudinit\""));
}

#[test]
fn old_waagent_versions() {
    let mut v = Variant::of("gen2-gpt-ext4");
    v.set_agent_version("waagent", "2.2.44");
    let r = v.check(&Policy::default());
    assert!(message(&r, "AGENT-003", Severity::Warning).contains("older than 2.2.45"));
    // 2.2.44 does not read Provisioning.Agent=cloud-init: with no legacy key it provisions
    // itself, and (a) refuses because cloud-init-local is enabled.
    let m = message(&r, "AGENT-005", Severity::Error);
    assert!(m.contains("refuses"), "{m}");
    assert_quiet(&r, "AGENT-007");

    v.set_agent_version("waagent", "2.2.40");
    conf(&mut v, &[("Provisioning.UseCloudInit", "y")]);
    let r = v.check(&Policy {
        marketplace: true,
        ..Policy::default()
    });
    assert!(message(&r, "AGENT-003", Severity::Error).contains("2.2.41"));
    assert!(message(&r, "AGENT-007", Severity::Info).contains("honours"));
    assert_quiet(&r, "AGENT-005");
}

#[test]
fn cloud_init_configuration() {
    let mut v = Variant::of("gen2-gpt-ext4");
    // Ubuntu's installer leaves a datasource list for the install medium, and subiquity
    // turns cloud-init's networking off; the image has no DHCP of its own.
    let installer = "/etc/cloud/cloud.cfg.d/99-installer.cfg";
    v.write(installer, "datasource_list: [ NoCloud, None ]\n")
        .write(
            "/etc/cloud/cloud.cfg.d/subiquity-disable-cloudinit-networking.cfg",
            "network: {config: disabled}\n",
        );
    let r = v.check(&Policy::default());
    let f = assert_fires(&r, "AGENT-010", Severity::Error);
    assert!(f[0].message.contains("NoCloud"), "{}", f[0].message);
    assert_eq!(
        f[0].location,
        Some(vhdprep_check::Location::Guest {
            path: installer.into(),
            line: Some(1)
        })
    );
    assert!(message(&r, "AGENT-011", Severity::Warning).contains("no DHCP"));

    // Installer list gone, a ds-identify.cfg left; DHCP configured by the image itself; the
    // KVP telemetry file added. And (c): auto, with cloud-init-local no longer enabled
    // (started by its generator only), so waagent provisions while cloud-init also runs.
    v.remove(installer)
        .write(
            "/etc/cloud/ds-identify.cfg",
            "policy: search,found=all,maybe=all,notfound=disabled\n",
        )
        .write(
            "/etc/network/interfaces.d/eth0",
            "auto eth0\niface eth0 inet dhcp\n",
        )
        .write(
            "/etc/cloud/cloud.cfg.d/10-azure-kvp.cfg",
            "reporting:\n  logging:\n    type: log\n  telemetry:\n    type: hyperv\n",
        )
        .remove(CI_LOCAL_LINK);
    conf(&mut v, &[("Provisioning.Agent", "auto")]);
    let r = v.check(&Policy::default());
    assert!(message(&r, "AGENT-010", Severity::Warning).contains("ds-identify.cfg"));
    assert!(findings(&r, "AGENT-010")
        .iter()
        .all(|f| f.severity == Severity::Warning));
    assert_quiet(&r, "AGENT-011");
    assert!(message(&r, "AGENT-011", Severity::Info).contains("iface eth0 inet dhcp"));
    assert!(findings(&r, "AGENT-013").is_empty());
    assert!(message(&r, "AGENT-005", Severity::Warning).contains("both may provision"));
    assert!(findings(&r, "AGENT-005")
        .iter()
        .all(|f| f.severity == Severity::Warning));
}

#[test]
fn without_agents() {
    let mut v = Variant::of("gen2-gpt-ext4");
    let py = "/usr/lib/python3/dist-packages";
    // Uninstall waagent: cloud-init alone provisions, no extension support.
    v.remove("/usr/sbin/waagent");
    rm_tree(&v, &format!("{py}/azurelinuxagent"));
    let waagent = v.agent_version("waagent");
    rm_tree(&v, &format!("{py}/WALinuxAgent-{waagent}.egg-info"));
    dpkg_forget(&mut v, "waagent");
    let r = v.check(&Policy::default());
    assert!(message(&r, "AGENT-006", Severity::Warning).contains("waagent is not installed"));
    for id in [
        "AGENT-003",
        "AGENT-007",
        "AGENT-008",
        "AGENT-009",
        "AGENT-015",
    ] {
        assert_eq!(status(&r, id), RuleStatus::Skipped, "{id}");
    }
    assert_quiet(&r, "AGENT-001");
    assert_quiet(&r, "AGENT-002");

    // Uninstall cloud-init too: nothing provisions the Generalized image.
    v.remove("/usr/bin/cloud-init");
    rm_tree(&v, &format!("{py}/cloudinit"));
    let cloud_init = v.agent_version("cloud-init");
    rm_tree(&v, &format!("{py}/cloud_init-{cloud_init}.egg-info"));
    dpkg_forget(&mut v, "cloud-init");
    let r = v.check(&Policy::default());
    assert!(message(&r, "AGENT-001", Severity::Error).contains("neither cloud-init nor waagent"));
    assert_eq!(r.provisioning.agent, "none");

    // The documented no-agent setup: a oneshot unit posting the health report.
    v.write(
        "/usr/local/bin/azure-provisioning.sh",
        "#!/bin/bash\n# report ready to Azure (no provisioning agent)\n\
         attempts=1\nuntil [ \"$attempts\" -gt 5 ]; do\n\
         curl -X POST -H 'x-ms-agent-name: azure-vm-register' -H 'Content-Type: text/xml;charset=utf-8' \
         -H 'x-ms-version: 2012-11-30' -d \"$(cat /tmp/ready.xml)\" \
         http://168.63.129.16/machine?comp=health && break\n\
         attempts=$((attempts+1)); sleep 5\ndone\n",
    );
    v.write(
        "/etc/systemd/system/azure-provisioning.service",
        "[Unit]\nDescription=Azure Provisioning\n\n[Service]\nType=oneshot\n\
         ExecStart=/usr/local/bin/azure-provisioning.sh\n\n[Install]\nWantedBy=multi-user.target\n",
    );
    let r = v.check(&Policy::default());
    assert_quiet(&r, "AGENT-001");
    let f = assert_fires(&r, "AGENT-001", Severity::Info);
    assert!(f[0]
        .evidence
        .as_deref()
        .unwrap()
        .starts_with("/usr/local/bin/azure-provisioning.sh:"));
}
