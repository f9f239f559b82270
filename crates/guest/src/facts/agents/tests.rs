//! Agent facts on small in-memory guests shaped like Debian, Ubuntu and RHEL images.

use super::*;
use crate::tree::memfs::MemFs;
use std::sync::Arc;

/// The facts with the guest's own package databases, as `check` gathers them.
fn agent_facts(g: &GuestTree, cmdline: &[String]) -> AgentFacts {
    super::agent_facts(g, cmdline, &Packages::gather(g, crate::Family::Unknown))
}

const SVC: &str = "[Unit]\nDescription=agent\n[Service]\nExecStart=/usr/sbin/waagent -daemon\n\
                   [Install]\nWantedBy=multi-user.target\n";
const CI_UNIT: &str = "[Unit]\nDescription=ci\n[Install]\nWantedBy=cloud-init.target\n";

/// A merged-/usr tree with the usual directories.
fn base() -> MemFs {
    let mut m = MemFs::default();
    for d in [
        "/",
        "/etc",
        "/etc/systemd",
        "/etc/systemd/system",
        "/etc/systemd/system/multi-user.target.wants",
        "/etc/systemd/system/cloud-init.target.wants",
        "/etc/cloud",
        "/etc/cloud/cloud.cfg.d",
        "/usr",
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib",
        "/usr/lib/systemd",
        "/usr/lib/systemd/system",
        "/usr/lib/systemd/system-generators",
        "/usr/lib/python3",
        "/usr/lib/python3/dist-packages",
        "/var",
        "/var/lib",
        "/var/lib/dpkg",
        "/var/lib/waagent",
        "/dev",
    ] {
        m = m.dir(d);
    }
    m.link("/lib", "usr/lib")
}

fn with_waagent(m: MemFs, unit: &str, conf: &str, enabled: bool) -> MemFs {
    let m = m
        .file("/usr/sbin/waagent", "#!/usr/bin/python3\n")
        .dir("/usr/lib/python3/dist-packages/azurelinuxagent")
        .dir("/usr/lib/python3/dist-packages/azurelinuxagent/common")
        .file(
            "/usr/lib/python3/dist-packages/azurelinuxagent/common/version.py",
            "AGENT_NAME = \"WALinuxAgent\"\nAGENT_VERSION = '2.9.1.1'\n",
        )
        .dir("/usr/lib/python3/dist-packages/WALinuxAgent-2.9.1.1.egg-info")
        .dir("/var/lib/waagent/WALinuxAgent-2.12.0.2")
        .file(&format!("/usr/lib/systemd/system/{unit}"), SVC)
        .file("/etc/waagent.conf", conf);
    if enabled {
        m.link(
            &format!("/etc/systemd/system/multi-user.target.wants/{unit}"),
            &format!("/lib/systemd/system/{unit}"),
        )
    } else {
        m
    }
}

fn with_cloud_init(mut m: MemFs, enabled: bool) -> MemFs {
    m = m
        .file("/usr/bin/cloud-init", "#!/usr/bin/python3\n")
        .dir("/usr/lib/python3/dist-packages/cloudinit")
        .file(
            "/usr/lib/python3/dist-packages/cloudinit/version.py",
            "__VERSION__ = \"24.4\"\n",
        )
        .file(
            "/usr/lib/systemd/system-generators/cloud-init-generator",
            "#!/bin/sh\n",
        )
        .file("/usr/lib/systemd/system/cloud-init.target", "[Unit]\n")
        .file(
            "/etc/cloud/cloud.cfg",
            "datasource_list: [ NoCloud, Azure ]\nusers: [default]\n",
        );
    for u in [
        "cloud-init-local.service",
        "cloud-init-network.service",
        "cloud-init-main.service",
        "cloud-config.service",
        "cloud-final.service",
    ] {
        m = m.file(&format!("/usr/lib/systemd/system/{u}"), CI_UNIT);
        if enabled {
            m = m.link(
                &format!("/etc/systemd/system/cloud-init.target.wants/{u}"),
                &format!("/usr/lib/systemd/system/{u}"),
            );
        }
    }
    m
}

fn guest(m: MemFs) -> GuestTree {
    GuestTree::new(Arc::new(m), "mem")
}

fn kinds(f: &AgentFacts) -> Vec<ConflictKind> {
    f.provisioning.conflicts.iter().map(|c| c.kind).collect()
}

#[test]
fn ubuntu_walinuxagent_auto_with_cloud_init() {
    let conf = "Provisioning.Agent=auto\nResourceDisk.Format=n\n";
    let m = with_cloud_init(
        with_waagent(base(), "walinuxagent.service", conf, true),
        true,
    )
    .file(
        "/etc/cloud/cloud.cfg.d/90_dpkg.cfg",
        "datasource_list: [ Azure ]\n",
    )
    .file(
        "/etc/cloud/cloud.cfg.d/10-azure-kvp.cfg",
        "reporting:\n  logging:\n    type: log\n  telemetry:\n    type: hyperv\n",
    );
    let f = agent_facts(&guest(m), &[]);
    assert!(f.waagent.installed && f.waagent.enabled);
    assert_eq!(f.waagent.service.systemd.name, "walinuxagent.service");
    assert_eq!(
        f.waagent.service.systemd.path.as_deref(),
        Some("/usr/lib/systemd/system/walinuxagent.service")
    );
    assert_eq!(f.waagent.version.as_ref().unwrap().version, "2.9.1.1");
    assert_eq!(f.waagent.versions.len(), 2);
    assert_eq!(f.waagent.auto_updated[0].version, "2.12.0.2");
    assert!(f.cloud_init.enabled_per_waagent && f.cloud_init.runs_at_boot);
    assert_eq!(f.cloud_init.version.as_ref().unwrap().version, "24.4");
    assert_eq!(f.provisioning.provisioner, Provisioner::CloudInit);
    assert!(
        f.provisioning.conflicts.is_empty(),
        "{:?}",
        f.provisioning.conflicts
    );
    let cfg = &f.cloud_init.config;
    let dl = cfg.datasource_list.as_ref().unwrap();
    assert_eq!(dl.value, vec!["Azure"]);
    assert_eq!(dl.evidence.path, "/etc/cloud/cloud.cfg.d/90_dpkg.cfg");
    assert_eq!(dl.evidence.line, Some(1));
    assert_eq!(
        cfg.ds_identify_datasource_list.as_ref().unwrap().list,
        Some(vec!["Azure".into()])
    );
    assert_eq!(
        cfg.telemetry_hyperv.as_ref().unwrap().path,
        "/etc/cloud/cloud.cfg.d/10-azure-kvp.cfg"
    );
    assert!(cfg.allows_azure());
}

#[test]
fn rhel_waagent_service_cloud_init_mode() {
    let conf = "Provisioning.Agent=cloud-init\nResourceDisk.Format=y\nResourceDisk.EnableSwap=n\n";
    let m = with_cloud_init(with_waagent(base(), "waagent.service", conf, true), true).file(
        "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg",
        "datasource_list: [ Azure ]\ndatasource:\n  Azure:\n    apply_network_config: False\n",
    );
    let f = agent_facts(&guest(m), &[]);
    assert_eq!(f.waagent.service.systemd.name, "waagent.service");
    assert_eq!(f.waagent.service.systemd.enablement, Enablement::Enabled);
    assert_eq!(f.provisioning.provisioner, Provisioner::CloudInit);
    assert_eq!(
        kinds(&f),
        vec![ConflictKind::WaagentOwnsResourceDiskUnderCloudInit]
    );
    assert_eq!(f.provisioning.conflicts[0].evidence[0].line, Some(2));
    let anc = f
        .cloud_init
        .config
        .azure_apply_network_config
        .as_ref()
        .unwrap();
    assert!(!anc.value);
    assert_eq!(anc.evidence.line, Some(2));
    assert_eq!(f.cloud_init.config.azure_keys, vec!["apply_network_config"]);
}

#[test]
fn disabled_marker_and_cmdline() {
    let conf = "Provisioning.Agent=cloud-init\n";
    let m = with_cloud_init(with_waagent(base(), "waagent.service", conf, true), true)
        .file("/etc/cloud/cloud-init.disabled", "");
    let f = agent_facts(&guest(m), &[]);
    assert!(f.cloud_init.disabled_marker.is_some() && !f.cloud_init.runs_at_boot);
    assert_eq!(
        kinds(&f),
        vec![ConflictKind::CloudInitRequestedButNotRunning]
    );

    let m = with_cloud_init(with_waagent(base(), "waagent.service", conf, true), true);
    let f = agent_facts(
        &guest(m),
        &[
            "ro".into(),
            "cloud-init=disabled".into(),
            "ci.ds=Azure".into(),
        ],
    );
    assert!(f.cloud_init.disabled_on_cmdline && !f.cloud_init.runs_at_boot);
    assert_eq!(f.cloud_init.cmdline_datasource.as_deref(), Some("Azure"));
    assert_eq!(
        kinds(&f),
        vec![ConflictKind::CloudInitRequestedButNotRunning]
    );
}

#[test]
fn later_file_drops_azure() {
    let m = with_cloud_init(base(), true)
        .file(
            "/etc/cloud/cloud.cfg.d/90_dpkg.cfg",
            "datasource_list: [ Azure ]\n",
        )
        .file(
            "/etc/cloud/cloud.cfg.d/99-installer.cfg",
            "datasource_list: [ NoCloud, None ]\nnetwork: {config: disabled}\n",
        )
        .file("/etc/cloud/ds-identify.cfg", "policy: search\n");
    let f = agent_facts(&guest(m), &[]);
    let cfg = &f.cloud_init.config;
    assert!(!cfg.allows_azure());
    assert_eq!(
        cfg.datasource_list.as_ref().unwrap().evidence.path,
        "/etc/cloud/cloud.cfg.d/99-installer.cfg"
    );
    assert_eq!(
        cfg.ds_identify_datasource_list.as_ref().unwrap().list,
        Some(vec!["NoCloud".into(), "None".into()])
    );
    assert_eq!(
        cfg.installer_leftovers,
        vec!["/etc/cloud/cloud.cfg.d/99-installer.cfg"]
    );
    assert!(cfg.network_config_disabled.is_some());
    assert!(cfg.ds_identify_cfg.is_some());
    // No waagent: cloud-init provisions alone.
    assert_eq!(f.provisioning.provisioner, Provisioner::CloudInit);
    assert!(f.provisioning.waagent_mode.is_none());
}

#[test]
fn waagent_mode_with_cloud_init_enabled_conflicts() {
    let conf = "Provisioning.Agent=waagent\n";
    let m = with_cloud_init(with_waagent(base(), "waagent.service", conf, true), true);
    let f = agent_facts(&guest(m), &[]);
    assert_eq!(f.provisioning.provisioner, Provisioner::Waagent);
    assert_eq!(kinds(&f), vec![ConflictKind::WaagentWithCloudInitEnabled]);
    assert_eq!(
        f.provisioning.conflicts[0].evidence[0].path,
        "/etc/waagent.conf"
    );
}

#[test]
fn auto_with_generator_only_cloud_init_and_ephemeral0() {
    let conf = "Provisioning.Agent=auto\n";
    let m = with_cloud_init(with_waagent(base(), "waagent.service", conf, true), false).file(
        "/etc/cloud/cloud.cfg.d/00-azure-swap.cfg",
        "fs_setup:\n  - label: ephemeral0\n    filesystem: ext4\n    device: ephemeral0.1\n\
         mounts:\n  - [\"ephemeral0.1\", \"/mnt\"]\n",
    );
    let f = agent_facts(&guest(m), &[]);
    assert!(!f.cloud_init.enabled_per_waagent);
    assert!(f.cloud_init.runs_at_boot, "generator present");
    assert_eq!(f.cloud_init.units[0].enablement, Enablement::Disabled);
    assert_eq!(f.provisioning.provisioner, Provisioner::Waagent);
    assert_eq!(
        kinds(&f),
        vec![
            ConflictKind::BothMayProvision,
            ConflictKind::CloudInitOwnsResourceDiskUnderWaagent
        ]
    );
    assert_eq!(f.cloud_init.config.ephemeral0.len(), 2);
}

#[test]
fn disabled_mode_without_cloud_init() {
    let m = with_waagent(
        base(),
        "waagent.service",
        "Provisioning.Agent=disabled\n",
        true,
    );
    let f = agent_facts(&guest(m), &[]);
    assert_eq!(f.provisioning.provisioner, Provisioner::Disabled);
    assert_eq!(kinds(&f), vec![ConflictKind::NobodyProvisions]);
}

#[test]
fn legacy_keys_for_old_agents() {
    let conf = "Provisioning.Enabled=n\nProvisioning.UseCloudInit=y\nProvisioning.Agent=waagent\n";
    let m = with_waagent(base(), "waagent.service", conf, true).file(
        "/usr/lib/python3/dist-packages/azurelinuxagent/common/version.py",
        "AGENT_VERSION = '2.2.32'\n",
    );
    let f = agent_facts(&guest(with_cloud_init(m, true)), &[]);
    assert!(f.provisioning.legacy_keys_used);
    assert_eq!(f.provisioning.waagent_mode.as_deref(), Some("cloud-init"));
    assert_eq!(f.provisioning.provisioner, Provisioner::CloudInit);
    assert!(f.waagent.settings.legacy_use_cloud_init.is_some());
    // A current agent ignores them.
    let m = with_waagent(base(), "waagent.service", conf, true);
    let f = agent_facts(&guest(m), &[]);
    assert!(!f.provisioning.legacy_keys_used);
    assert_eq!(f.provisioning.waagent_mode.as_deref(), Some("waagent"));
    assert!(f.waagent.settings.legacy_provisioning_enabled.is_some());
}

#[test]
fn masked_and_disabled_units() {
    let m = with_waagent(base(), "waagent.service", "Provisioning.Agent=auto\n", true)
        .link("/etc/systemd/system/waagent.service", "/dev/null");
    let f = agent_facts(&guest(m), &[]);
    assert_eq!(f.waagent.service.systemd.enablement, Enablement::Masked);
    assert!(!f.waagent.enabled);
    assert_eq!(f.provisioning.provisioner, Provisioner::None);

    let m = with_waagent(base(), "waagent.service", "", false);
    let f = agent_facts(&guest(m), &[]);
    assert_eq!(f.waagent.service.systemd.enablement, Enablement::Disabled);
    assert_eq!(
        f.waagent.service.systemd.wanted_by,
        vec!["multi-user.target"]
    );
    assert_eq!(f.provisioning.provisioner, Provisioner::None);
}

#[test]
fn sysv_and_rc_conf_and_dpkg() {
    let m = base()
        .file("/usr/sbin/waagent", "x")
        .dir("/etc/init.d")
        .file("/etc/init.d/walinuxagent", "#!/bin/sh\n")
        .dir("/etc/rc2.d")
        .link("/etc/rc2.d/S01walinuxagent", "../init.d/walinuxagent")
        .file(
            "/etc/rc.conf",
            "waagent_enable=\"YES\" # on\nwaagent_enable=NO\n",
        )
        .file("/etc/waagent.conf", "Provisioning.Agent=waagent\n")
        .file(
            "/var/lib/dpkg/status",
            "Package: foo\nStatus: install ok installed\nVersion: 1\n\n\
             Package: walinuxagent\nStatus: install ok installed\nVersion: 2.9.0.4-1\n",
        );
    let f = agent_facts(&guest(m), &[]);
    assert!(f.waagent.service.sysv.enabled());
    assert!(f.waagent.enabled);
    let rc = f.waagent.service.rc_conf.as_ref().unwrap();
    assert!(!rc.enabled && rc.evidence.line == Some(2));
    let v = f.waagent.version.as_ref().unwrap();
    assert_eq!(
        (v.version.as_str(), v.source),
        ("2.9.0.4-1", VersionSource::Dpkg)
    );
    assert_eq!(v.evidence.line, Some(5));
    assert_eq!(f.provisioning.provisioner, Provisioner::Waagent);
}

#[test]
fn versions_from_an_rpm_database() {
    use crate::packages::rpm::{RpmBackend, RpmDatabase, RpmPackage};
    let pkg = |name: &str, version: &str, release: &str| RpmPackage {
        name: name.into(),
        epoch: None,
        version: version.into(),
        release: release.into(),
        arch: Some("noarch".into()),
        install_time: None,
        files: vec![],
    };
    let db = RpmDatabase {
        backend: RpmBackend::Sqlite,
        path: "/var/lib/rpm/rpmdb.sqlite".into(),
        packages: vec![
            pkg("cloud-init", "23.4", "7.el9_4"),
            pkg("WALinuxAgent", "2.7.0.6", "9.el9"),
        ],
        skipped: 0,
        notes: vec![],
    };
    let packages = Packages::from_databases(None, Some(Ok(db)), crate::Family::RedHat);
    // Only the packages' own binaries: the python trees are elsewhere on this layout.
    let m = base()
        .file("/usr/sbin/waagent", "#!/usr/bin/python3\n")
        .file("/usr/bin/cloud-init", "#!/usr/bin/python3\n");
    let f = super::agent_facts(&guest(m), &[], &packages);
    let w = f.waagent.version.as_ref().unwrap();
    assert_eq!(
        (w.version.as_str(), w.source, w.evidence.line),
        ("2.7.0.6-9.el9", VersionSource::Rpm, None)
    );
    assert_eq!(w.evidence.path, "/var/lib/rpm/rpmdb.sqlite");
    assert_eq!(w.evidence.detail, "WALinuxAgent 2.7.0.6-9.el9");
    let c = f.cloud_init.version.as_ref().unwrap();
    assert_eq!(
        (c.version.as_str(), c.source),
        ("23.4-7.el9_4", VersionSource::Rpm)
    );
    assert_eq!(version_below(&c.version, &[23, 4]), Some(false));
}

#[test]
fn malformed_inputs_never_panic() {
    let junk = "\u{0}\u{ff}==#\n[[[\n: - {\n&a *a *b\n\"\n";
    let deep = "[".repeat(5000);
    let m = with_cloud_init(with_waagent(base(), "waagent.service", junk, true), true)
        .file("/etc/cloud/cloud.cfg.d/bad.cfg", junk)
        .file("/etc/cloud/cloud.cfg.d/list.cfg", "- a\n- b\n")
        .file("/etc/cloud/cloud.cfg.d/deep.cfg", &deep)
        .file(
            "/etc/cloud/cloud.cfg.d/types.cfg",
            "datasource_list: 7\ndatasource: [1]\nnetwork: 3\nreporting: [x]\nmounts: {a: b}\n",
        )
        .file("/var/lib/dpkg/status", junk)
        .link(
            "/etc/systemd/system/loop.service",
            "/etc/systemd/system/loop.service",
        )
        .file(
            "/usr/lib/python3/dist-packages/azurelinuxagent/common/version.py",
            junk,
        )
        .file(
            "/usr/lib/python3/dist-packages/cloudinit/version.py",
            "__VERSION__ = \"",
        )
        .link("/etc/systemd/system/cloud-final.service", "/nonexistent");
    let g = guest(m);
    let f = agent_facts(&g, &["cloud-init=".into(), String::new()]);
    let bad: Vec<_> = f
        .cloud_init
        .config
        .files
        .iter()
        .filter(|x| x.error.is_some())
        .map(|x| x.path.clone())
        .collect();
    assert!(
        bad.iter().any(|p| p.ends_with("bad.cfg")),
        "{bad:?} {:?}",
        f.cloud_init.config.files
    );
    assert!(bad.iter().any(|p| p.ends_with("deep.cfg")));
    assert!(bad.iter().any(|p| p.ends_with("list.cfg")));
    assert_eq!(
        f.cloud_init.config.datasource_list.as_ref().unwrap().value,
        vec!["7"]
    );
    assert_eq!(
        unit_state(&g, "loop.service").enablement,
        Enablement::NotFound
    );
    assert_eq!(
        unit_state(&g, "cloud-final.service").path.as_deref(),
        Some("/usr/lib/systemd/system/cloud-final.service")
    );
    assert_eq!(unit_state(&g, "../x").enablement, Enablement::NotFound);
    // An empty guest.
    let f = agent_facts(&guest(MemFs::default().dir("/")), &[]);
    assert!(!f.waagent.installed && !f.cloud_init.installed);
    assert_eq!(f.provisioning.provisioner, Provisioner::None);
}

#[test]
fn versions_compare() {
    assert_eq!(version_below("2.2.44", &[2, 2, 45]), Some(true));
    assert_eq!(version_below("2.2.45", &[2, 2, 45]), Some(false));
    assert_eq!(version_below("1:2.10.0.8-1", &[2, 2, 45]), Some(false));
    assert_eq!(version_below("x", &[2, 2, 45]), None);
}

#[test]
fn host_key_regeneration() {
    let regen = |conf: &str, ci: bool, ci_disabled: bool| {
        let mut m = with_waagent(base(), "waagent.service", conf, true);
        if ci {
            m = with_cloud_init(m, true);
        }
        if ci_disabled {
            m = m.file("/etc/cloud/cloud-init.disabled", "");
        }
        agent_facts(&guest(m), &[]).host_key_regeneration()
    };
    let keep = "Provisioning.Agent=waagent\nProvisioning.RegenerateSshHostKeyPair=n\n";
    let redo = "Provisioning.Agent=waagent\nProvisioning.RegenerateSshHostKeyPair=y\n";
    assert!(regen("", true, false).unwrap().starts_with("cloud-init"));
    assert_eq!(regen(keep, false, false), None);
    assert_eq!(regen(keep, true, true), None);
    let w = regen(redo, true, true).unwrap();
    assert!(w.contains("/etc/waagent.conf:2"), "{w}");
    // waagent does not provision: its switch does not matter.
    let off = "Provisioning.Agent=disabled\nProvisioning.RegenerateSshHostKeyPair=y\n";
    assert_eq!(regen(off, false, false), None);
}
