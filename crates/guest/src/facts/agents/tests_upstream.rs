//! Agent facts on in-memory guests laid out as the Red Hat and SUSE packages install the
//! agents, with the upstream files those packages ship (tests/data/upstream: WALinuxAgent
//! 2.9.1.1 and 2.7.0.6, cloud-init 23.4 rendered for rhel and 23.3 for suse) and the Azure
//! edits each distribution's guide makes.

use super::*;
use crate::tree::memfs::MemFs;
use std::sync::Arc;

const WAAGENT_CONF: &str =
    include_str!("../../../tests/data/upstream/WALinuxAgent-2.9.1.1/config/waagent.conf");
const WAAGENT_CONF_2_7: &str =
    include_str!("../../../tests/data/upstream/WALinuxAgent-2.7.0.6/config/waagent.conf");
const WAAGENT_CONF_SUSE: &str =
    include_str!("../../../tests/data/upstream/WALinuxAgent-2.9.1.1/config/suse/waagent.conf");
const WAAGENT_SVC_REDHAT: &str =
    include_str!("../../../tests/data/upstream/WALinuxAgent-2.9.1.1/init/redhat/waagent.service");
const WAAGENT_SVC_SLES: &str =
    include_str!("../../../tests/data/upstream/WALinuxAgent-2.9.1.1/init/sles/waagent.service");
const CLOUD_CFG_RHEL: &str =
    include_str!("../../../tests/data/upstream/cloud-init-23.4-rhel/cloud.cfg");
const CLOUD_CFG_SUSE: &str =
    include_str!("../../../tests/data/upstream/cloud-init-23.3-suse/cloud.cfg");
const LOGGING_RHEL: &str =
    include_str!("../../../tests/data/upstream/cloud-init-23.4-rhel/cloud.cfg.d/05_logging.cfg");

/// cloud-init's units as the rpm installs them (rendered for the variant).
fn units(variant: &str) -> [(&'static str, &'static str); 5] {
    macro_rules! u {
        ($v:literal, $n:literal) => {
            (
                $n,
                include_str!(concat!(
                    "../../../tests/data/upstream/",
                    $v,
                    "/systemd/",
                    $n
                )),
            )
        };
    }
    if variant == "rhel" {
        [
            u!("cloud-init-23.4-rhel", "cloud-init-local.service"),
            u!("cloud-init-23.4-rhel", "cloud-init.service"),
            u!("cloud-init-23.4-rhel", "cloud-config.service"),
            u!("cloud-init-23.4-rhel", "cloud-final.service"),
            u!("cloud-init-23.4-rhel", "cloud-init.target"),
        ]
    } else {
        [
            u!("cloud-init-23.3-suse", "cloud-init-local.service"),
            u!("cloud-init-23.3-suse", "cloud-init.service"),
            u!("cloud-init-23.3-suse", "cloud-config.service"),
            u!("cloud-init-23.3-suse", "cloud-final.service"),
            u!("cloud-init-23.3-suse", "cloud-init.target"),
        ]
    }
}

/// The `91-azure_datasource.cfg` of Azure's RHEL and SUSE guides.
const AZURE_DATASOURCE: &str =
    "datasource_list: [ Azure ]\ndatasource:\n    Azure:\n        apply_network_config: False\n";

/// `sed -i 's/A/B/g'` as the guides run it: fails when the pattern is not in the file.
fn sed(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from} not in the upstream file");
    text.replace(from, to)
}

/// The RHEL guide's edits of waagent.conf.
fn rhel_edits(conf: &str) -> String {
    let c = sed(
        conf,
        "Provisioning.Agent=auto",
        "Provisioning.Agent=cloud-init",
    );
    sed(&c, "ResourceDisk.Format=y", "ResourceDisk.Format=n")
}

/// A merged-/usr root with an rpm-style Python 3 site-packages.
fn rpm_root(python: &str) -> MemFs {
    let mut m = MemFs::default();
    let site = format!("/usr/lib/{python}/site-packages");
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
        &format!("/usr/lib/{python}"),
        &site,
        "/var",
        "/var/lib",
        "/var/lib/waagent",
    ] {
        m = m.dir(d);
    }
    m.link("/lib", "usr/lib")
        .link("/bin", "usr/bin")
        .link("/sbin", "usr/sbin")
}

/// WALinuxAgent as its rpm installs it: the script, the Python package (egg-info named as
/// setuptools names it), the unit from `init/<init>/`, the config, and systemctl enable's link.
fn waagent(m: MemFs, python: &str, version: &str, unit: &str, conf: &str) -> MemFs {
    let site = format!("/usr/lib/{python}/site-packages");
    let py = python.trim_start_matches("python");
    m.file("/usr/sbin/waagent", "#!/usr/bin/python3 -u\n")
        .dir(&format!("{site}/azurelinuxagent"))
        .dir(&format!("{site}/azurelinuxagent/common"))
        .file(
            &format!("{site}/azurelinuxagent/common/version.py"),
            &format!("AGENT_NAME = \"WALinuxAgent\"\nAGENT_VERSION = '{version}'\n"),
        )
        .dir(&format!("{site}/WALinuxAgent-{version}-py{py}.egg-info"))
        .file("/usr/lib/systemd/system/waagent.service", unit)
        .file("/etc/waagent.conf", conf)
        .link(
            "/etc/systemd/system/multi-user.target.wants/waagent.service",
            "/usr/lib/systemd/system/waagent.service",
        )
}

/// cloud-init as its rpm installs it, enabled the way `systemctl enable` (the rpm's preset)
/// does it: links in cloud-init.target.wants from the units' WantedBy=.
fn cloud_init(mut m: MemFs, python: &str, variant: &str, cfg: &str, version: &str) -> MemFs {
    let site = format!("/usr/lib/{python}/site-packages");
    m = m
        .file("/usr/bin/cloud-init", "#!/usr/bin/python3\n")
        .dir(&format!("{site}/cloudinit"))
        .file(
            &format!("{site}/cloudinit/version.py"),
            &format!("__VERSION__ = \"{version}\"\n"),
        )
        .file(
            "/usr/lib/systemd/system-generators/cloud-init-generator",
            "#!/bin/sh\n",
        )
        .file("/etc/cloud/cloud.cfg", cfg)
        .file(
            "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg",
            AZURE_DATASOURCE,
        );
    for (name, text) in units(variant) {
        m = m.file(&format!("/usr/lib/systemd/system/{name}"), text);
        if name.ends_with(".service") {
            m = m.link(
                &format!("/etc/systemd/system/cloud-init.target.wants/{name}"),
                &format!("/usr/lib/systemd/system/{name}"),
            );
        }
    }
    m
}

fn facts(m: MemFs) -> AgentFacts {
    let g = GuestTree::new(Arc::new(m), "mem");
    let packages = crate::packages::Packages::gather(&g, crate::Family::Unknown);
    agent_facts(&g, &[], &packages)
}

#[test]
fn rhel9_as_the_guide_prepares_it() {
    let m = rpm_root("python3.9");
    let m = waagent(
        m,
        "python3.9",
        "2.9.1.1",
        WAAGENT_SVC_REDHAT,
        &rhel_edits(WAAGENT_CONF),
    );
    let m = cloud_init(m, "python3.9", "rhel", CLOUD_CFG_RHEL, "23.4")
        .file("/etc/cloud/cloud.cfg.d/05_logging.cfg", LOGGING_RHEL);
    let f = facts(m);
    let w = &f.waagent;
    assert!(w.installed && w.enabled);
    assert_eq!(
        w.python_packages,
        ["/usr/lib/python3.9/site-packages/azurelinuxagent"]
    );
    let versions: Vec<(&str, VersionSource)> = w
        .versions
        .iter()
        .map(|v| (v.version.as_str(), v.source))
        .collect();
    assert_eq!(
        versions,
        [
            ("2.9.1.1", VersionSource::PythonSource),
            ("2.9.1.1", VersionSource::PythonMetadata)
        ]
    );
    assert_eq!(w.service.systemd.name, "waagent.service");
    assert_eq!(
        w.service.systemd.path.as_deref(),
        Some("/usr/lib/systemd/system/waagent.service")
    );
    assert_eq!(w.service.systemd.enablement, Enablement::Enabled);
    let s = &w.settings;
    assert_eq!(s.provisioning_agent.value, "cloud-init");
    assert_eq!(
        s.provisioning_agent.evidence.as_ref().unwrap().line,
        Some(14)
    );
    assert!(!s.resource_disk_format.value && !s.resource_disk_enable_swap.value);
    assert!(s.extensions_enabled.value && s.auto_update_enabled.value);
    assert!(s.legacy_provisioning_enabled.is_none() && s.legacy_use_cloud_init.is_none());
    let c = &f.cloud_init;
    assert!(c.installed && c.runs_at_boot, "{:?}", c.units);
    assert_eq!(c.version.as_ref().unwrap().version, "23.4");
    assert!(c
        .units
        .iter()
        .any(|u| u.name == "cloud-init-local.service" && u.is_enabled()));
    assert_eq!(c.config.datasource_list.as_ref().unwrap().value, ["Azure"]);
    assert!(c.config.allows_azure());
    assert!(!c.config.azure_apply_network_config.as_ref().unwrap().value);
    assert!(c.config.network_config_disabled.is_none());
    assert_eq!(f.provisioning.provisioner, Provisioner::CloudInit);
    assert!(
        f.provisioning.conflicts.is_empty(),
        "{:?}",
        f.provisioning.conflicts
    );
}

#[test]
fn rhel9_without_the_guide_edits_conflicts_over_the_resource_disk() {
    // The upstream file as setup.py installs it: ResourceDisk.Format=y, Provisioning.Agent=auto.
    let m = rpm_root("python3.9");
    let m = waagent(m, "python3.9", "2.9.1.1", WAAGENT_SVC_REDHAT, WAAGENT_CONF);
    let m = cloud_init(m, "python3.9", "rhel", CLOUD_CFG_RHEL, "23.4");
    let f = facts(m);
    assert_eq!(f.waagent.settings.provisioning_agent.value, "auto");
    assert_eq!(f.provisioning.provisioner, Provisioner::CloudInit);
    let kinds: Vec<ConflictKind> = f.provisioning.conflicts.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [ConflictKind::WaagentOwnsResourceDiskUnderCloudInit]);
    assert_eq!(f.provisioning.conflicts[0].evidence[0].line, Some(48));
}

#[test]
fn rhel8_agent_2_7_on_python_3_6() {
    let m = rpm_root("python3.6");
    let m = waagent(
        m,
        "python3.6",
        "2.7.0.6",
        WAAGENT_SVC_REDHAT,
        &rhel_edits(WAAGENT_CONF_2_7),
    );
    let m = cloud_init(m, "python3.6", "rhel", CLOUD_CFG_RHEL, "23.4");
    let f = facts(m);
    assert_eq!(f.waagent.version.as_ref().unwrap().version, "2.7.0.6");
    assert_eq!(
        f.waagent
            .settings
            .provisioning_agent
            .evidence
            .as_ref()
            .unwrap()
            .line,
        Some(17)
    );
    assert_eq!(f.provisioning.provisioner, Provisioner::CloudInit);
    assert!(f.provisioning.conflicts.is_empty());
}

#[test]
fn sles15_python3_azure_agent_with_cloud_init() {
    // SUSE's guide: ResourceDisk.Format=n; its legacy Provisioning.* seds find nothing in
    // 2.9.1.1's config/suse/waagent.conf, which keeps Provisioning.Agent=auto.
    let conf = sed(
        WAAGENT_CONF_SUSE,
        "ResourceDisk.Format=y",
        "ResourceDisk.Format=n",
    );
    assert!(!conf.contains("Provisioning.UseCloudInit") && !conf.contains("Provisioning.Enabled"));
    let m = rpm_root("python3.6");
    let m = waagent(m, "python3.6", "2.9.1.1", WAAGENT_SVC_SLES, &conf);
    let m = cloud_init(m, "python3.6", "suse", CLOUD_CFG_SUSE, "23.3");
    let f = facts(m);
    assert!(f.waagent.installed && f.waagent.enabled);
    assert_eq!(f.waagent.settings.provisioning_agent.value, "auto");
    assert!(f.cloud_init.runs_at_boot);
    assert_eq!(f.provisioning.provisioner, Provisioner::CloudInit);
    assert!(
        f.provisioning.conflicts.is_empty(),
        "{:?}",
        f.provisioning.conflicts
    );
    assert!(f.cloud_init.config.allows_azure());
}

#[test]
fn of_two_agent_units_the_enabled_one_is_reported() {
    // A distribution unit left beside the one the agent's own setup.py installed and enabled.
    let both = || {
        let m = rpm_root("python3.9");
        waagent(m, "python3.9", "2.9.1.1", WAAGENT_SVC_REDHAT, &rhel_edits(WAAGENT_CONF)).file(
            "/usr/lib/systemd/system/walinuxagent.service",
            "[Service]\nExecStart=/usr/sbin/waagent -daemon\n[Install]\nWantedBy=multi-user.target\n",
        )
    };
    let f = facts(both());
    assert_eq!(f.waagent.service.systemd.name, "waagent.service");
    assert!(f.waagent.enabled);
    // waagent.service masked: neither starts, so the first candidate that exists is reported.
    let f = facts(both().file("/etc/systemd/system/waagent.service", ""));
    assert_eq!(f.waagent.service.systemd.name, "walinuxagent.service");
    assert!(!f.waagent.enabled);
}
