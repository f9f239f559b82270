//! Generalization evidence (GEN-001..018): what `waagent -deprovision` and `cloud-init clean`
//! remove, found still present, plus the identity files (hostname, resolv.conf, machine-id)
//! and host keys. Each leftover carries the GEN rule it bears on.

use super::network::NetworkFacts;
use super::{glob_dir, join, line_ref, list, numbered, read_text, shell_vars, stat, var};
use super::{LineRef, PathFact};
use crate::tree::GuestTree;
use serde::Serialize;
use vhdprep_fs::FileKind;

/// waagent's state directory (`Lib.Dir`).
pub const WAAGENT_LIB: &str = "/var/lib/waagent";
/// cloud-init's state directory (`cloud_dir`).
pub const CLOUD_LIB: &str = "/var/lib/cloud";

/// Something a deprovision or clean would have removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leftover {
    /// The GEN rule it is evidence for (`GEN-001` ...).
    pub rule: &'static str,
    /// What it is (`waagent-provisioned`, `waagent-ovf-env`, `cloud-init-instance` ...).
    pub item: &'static str,
    /// The object.
    #[serde(flatten)]
    pub fact: PathFact,
    /// A detail (`3 entries`, `macaddress 00:0d:...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A hostname setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hostname {
    /// The name.
    pub value: String,
    /// Where.
    pub source: LineRef,
}

/// What `/etc/resolv.conf` is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ResolvConf {
    /// A regular file, with its `nameserver` lines.
    File {
        /// Size in bytes.
        size: u64,
        /// `nameserver` lines.
        nameservers: Vec<LineRef>,
    },
    /// A symbolic link (systemd-resolved, resolvconf).
    Symlink {
        /// Its target.
        target: String,
    },
    /// Something else.
    Other {
        /// What.
        file_kind: FileKind,
    },
}

/// What a machine-id file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum MachineIdValue {
    /// Empty (or only blanks).
    Empty,
    /// `uninitialized` (systemd's "not yet booted").
    Uninitialized,
    /// A 32-hex identity.
    Id {
        /// The value (lowercase).
        value: String,
    },
    /// Anything else (first 64 characters).
    Invalid {
        /// What is there.
        value: String,
    },
    /// Not a readable regular file of at most 4 KiB (links are followed).
    Unreadable,
}

impl MachineIdValue {
    /// Classifies machine-id file content.
    pub fn classify(content: &[u8]) -> MachineIdValue {
        let t = String::from_utf8_lossy(content);
        let t = t.trim();
        if t.is_empty() {
            MachineIdValue::Empty
        } else if t == "uninitialized" {
            MachineIdValue::Uninitialized
        } else if t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            MachineIdValue::Id {
                value: t.to_ascii_lowercase(),
            }
        } else {
            MachineIdValue::Invalid {
                value: t.chars().take(64).collect(),
            }
        }
    }
}

/// A machine-id file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineId {
    /// The object (a link is reported as such).
    pub file: PathFact,
    /// Its content.
    pub value: MachineIdValue,
}

/// Generalization evidence.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GeneralizationFacts {
    /// Leftovers, each tagged with its rule.
    pub leftovers: Vec<Leftover>,
    /// `/etc/ssh/ssh_host_*key*` (GEN-007).
    pub ssh_host_keys: Vec<PathFact>,
    /// Hostnames set (GEN-011): `/etc/hostname`, `/etc/HOSTNAME`, `/etc/myname`,
    /// `/etc/sysconfig/network` `HOSTNAME=`, `/etc/rc.conf` `hostname=`.
    pub hostnames: Vec<Hostname>,
    /// `/etc/resolv.conf` (GEN-012).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolv_conf: Option<ResolvConf>,
    /// `/etc/machine-id` (GEN-013).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<MachineId>,
    /// `/var/lib/dbus/machine-id` (GEN-013).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dbus_machine_id: Option<MachineId>,
    /// `/etc/udev/rules.d/75-persistent-net-generator.rules` masks the generator (link to
    /// `/dev/null` or empty file) (NET-002).
    pub persistent_net_generator_masked: bool,
}

/// Classifies a name in `/var/lib/waagent`: (rule, item).
fn waagent_item(name: &str, kind: FileKind) -> (&'static str, &'static str) {
    let is_ver = |s: &str| s.chars().next().is_some_and(|c| c.is_ascii_digit());
    match name {
        "provisioned" => ("GEN-001", "waagent-provisioned"),
        "disable_agent" => ("GEN-017", "waagent-disable-agent"),
        "ovf-env.xml" => ("GEN-002", "waagent-ovf-env"),
        "CustomData" => ("GEN-002", "waagent-custom-data"),
        "TransportCert.pem" | "TransportPrivate.pem" => ("GEN-002", "waagent-transport-cert"),
        "HostingEnvironmentConfig.xml"
        | "SharedConfig.xml"
        | "Incarnation"
        | "WireServerEndpoint"
        | "published_hostname"
        | "partition"
        | "Protocol"
        | "fast_track.json"
        | "initial_goal_state"
        | "waagent_rsm_update"
        | "waagent_initial_update"
        | "HandlerStatus"
        | "mrseq" => ("GEN-002", "waagent-goal-state"),
        "history" => ("GEN-002", "waagent-history"),
        "events" => ("GEN-002", "waagent-events"),
        "waagent-network-setup.py" => ("GEN-016", "waagent-network-setup"),
        _ if name.starts_with("Certificates.") => ("GEN-002", "waagent-certificates"),
        _ if name.starts_with("GoalState.")
            || name.starts_with("Extensions")
            || name.ends_with(".crt")
            || name.ends_with(".prv") =>
        {
            ("GEN-002", "waagent-goal-state")
        }
        _ if name.strip_prefix("WALinuxAgent-").is_some_and(is_ver) => {
            ("GEN-002", "waagent-agent-update")
        }
        _ if name.starts_with("Microsoft.")
            && name.rsplit_once('-').is_some_and(|(_, v)| is_ver(v))
            && kind != FileKind::File =>
        {
            ("GEN-002", "waagent-extension")
        }
        _ => ("GEN-002", "waagent-other"),
    }
}

struct Collector<'a> {
    g: &'a GuestTree,
    out: Vec<Leftover>,
}

impl Collector<'_> {
    fn add(&mut self, rule: &'static str, item: &'static str, path: &str, detail: Option<String>) {
        if let Some(fact) = stat(self.g, path) {
            self.out.push(Leftover {
                rule,
                item,
                fact,
                detail,
            });
        }
    }
    fn add_children(&mut self, rule: &'static str, item: &'static str, dir: &str) {
        for (n, _) in list(self.g, dir) {
            self.add(rule, item, &join(dir, &n), None);
        }
    }
    fn add_glob(&mut self, rule: &'static str, item: &'static str, dir: &str, pat: &str) {
        for p in glob_dir(self.g, dir, pat) {
            self.add(rule, item, &p, None);
        }
    }
}

fn machine_id(g: &GuestTree, path: &str) -> Option<MachineId> {
    let file = stat(g, path)?;
    let value = match g.metadata(path.as_bytes()) {
        Ok(m) if m.kind == FileKind::File && m.size <= 4096 => g
            .read_file(path.as_bytes(), 4096)
            .map_or(MachineIdValue::Unreadable, |b| MachineIdValue::classify(&b)),
        _ => MachineIdValue::Unreadable,
    };
    Some(MachineId { file, value })
}

/// Gathers [`GeneralizationFacts`]; `net` supplies the parsed netplan and NetworkManager
/// files (GEN-015).
pub fn gather(g: &GuestTree, net: &NetworkFacts) -> GeneralizationFacts {
    let mut c = Collector { g, out: Vec::new() };
    // GEN-001/002/016/017: /var/lib/waagent.
    for (name, kind) in list(g, WAAGENT_LIB) {
        let (rule, item) = waagent_item(&name, kind);
        c.add(rule, item, &join(WAAGENT_LIB, &name), None);
    }
    // GEN-003: agent and extension logs.
    c.add_glob("GEN-003", "waagent-log", "/var/log", "waagent.log*");
    let azure = list(g, "/var/log/azure");
    if !azure.is_empty() {
        let detail = Some(format!("{} entries", azure.len()));
        c.add("GEN-003", "azure-extension-logs", "/var/log/azure", detail);
    }
    // GEN-004/005: cloud-init state.
    c.add(
        "GEN-004",
        "cloud-init-instance-link",
        &join(CLOUD_LIB, "instance"),
        None,
    );
    c.add_children(
        "GEN-004",
        "cloud-init-instance",
        &join(CLOUD_LIB, "instances"),
    );
    let data = join(CLOUD_LIB, "data");
    for (n, _) in list(g, &data) {
        let item = match n.as_str() {
            "reported_ready" => "cloud-init-reported-ready",
            "instance-id" | "previous-instance-id" => "cloud-init-instance-id",
            "status.json" | "result.json" => "cloud-init-status",
            _ => "cloud-init-data",
        };
        c.add("GEN-004", item, &join(&data, &n), None);
    }
    c.add_children("GEN-004", "cloud-init-semaphore", &join(CLOUD_LIB, "sem"));
    let seed = join(CLOUD_LIB, "seed");
    for (n, k) in list(g, &seed) {
        let p = join(&seed, &n);
        let inner = if k == FileKind::Dir {
            list(g, &p)
        } else {
            Vec::new()
        };
        if inner.is_empty() {
            c.add("GEN-005", "cloud-init-seed", &p, None);
        }
        for (m, _) in inner {
            c.add("GEN-005", "cloud-init-seed", &join(&p, &m), None);
        }
    }
    // GEN-006: cloud-init logs (+ rotated).
    for (n, _) in list(g, "/var/log") {
        if n.starts_with("cloud-init") && n.contains(".log") {
            c.add("GEN-006", "cloud-init-log", &join("/var/log", &n), None);
        }
    }
    // GEN-010: DHCP leases.
    for d in [
        "/var/lib/dhclient",
        "/var/lib/dhcp",
        "/var/lib/dhcpcd",
        "/var/lib/dhcpcd5",
        "/run/systemd/netif/leases",
    ] {
        for (n, k) in list(g, d) {
            if k != FileKind::Dir {
                c.add("GEN-010", "dhcp-lease", &join(d, &n), None);
            }
        }
    }
    c.add_glob(
        "GEN-010",
        "dhcp-lease",
        "/var/lib/NetworkManager",
        "dhclient-*.lease",
    );
    c.add_glob(
        "GEN-010",
        "dhcp-lease",
        "/var/lib/NetworkManager",
        "internal-*.lease",
    );
    c.add_glob("GEN-010", "dhcp-lease", "/var/db", "dhclient.leases.*");
    // GEN-015: persistent net rules, cloud-init network files of a previous instance.
    for r in [
        "70-persistent-net.rules",
        "85-persistent-net-cloud-init.rules",
    ] {
        c.add(
            "GEN-015",
            "persistent-net-rules",
            &join("/etc/udev/rules.d", r),
            None,
        );
    }
    for np in &net.netplan {
        if np.path == "/etc/netplan/50-cloud-init.yaml" {
            let macs: Vec<&str> = np
                .interfaces
                .iter()
                .filter_map(|i| i.match_macaddress.as_deref())
                .collect();
            let detail = (!macs.is_empty()).then(|| format!("macaddress {}", macs.join(", ")));
            c.add("GEN-015", "cloud-init-netplan", &np.path, detail);
        }
    }
    for nm in net.nm_connections.iter().filter(|n| n.cloud_init) {
        let detail = nm
            .mac_address
            .as_ref()
            .map(|m| format!("mac-address {}", m.value));
        c.add("GEN-015", "cloud-init-nmconnection", &nm.path, detail);
    }
    c.add_glob(
        "GEN-015",
        "cloud-init-networkd",
        "/etc/systemd/network",
        "10-cloud-init-*.network",
    );
    for p in [
        "/etc/network/interfaces.d/50-cloud-init.cfg",
        "/etc/NetworkManager/conf.d/99-cloud-init.conf",
        "/etc/NetworkManager/conf.d/30-cloud-init-ip6-addr-gen-mode.conf",
    ] {
        c.add("GEN-015", "cloud-init-network-config", p, None);
    }
    c.add(
        "GEN-004",
        "cloud-init-sshd-config",
        "/etc/ssh/sshd_config.d/50-cloud-init.conf",
        None,
    );
    // GEN-016: waagent runtime artefacts in the unit directories.
    let mut seen = std::collections::BTreeSet::new();
    for d in [
        "/etc/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
    ] {
        let Ok(canon) = g.canonical(d.as_bytes()) else {
            continue;
        };
        if !seen.insert(canon) {
            continue; // /lib -> usr/lib
        }
        for u in [
            "waagent-network-setup.service",
            "walinuxagent-network-setup.service",
            "azure-walinuxagent-logcollector.slice",
        ] {
            c.add("GEN-016", "waagent-runtime-unit", &join(d, u), None);
        }
        for agent in ["walinuxagent.service.d", "waagent.service.d"] {
            // 10-Slice.conf .. 13-MemoryAccounting.conf
            for p in glob_dir(g, &join(d, agent), "1?-*.conf") {
                let name = p.rsplit('/').next().unwrap_or("");
                if matches!(name.as_bytes().get(1), Some(b'0'..=b'3')) {
                    c.add("GEN-016", "waagent-cgroup-dropin", &p, None);
                }
            }
        }
    }
    let mut f = GeneralizationFacts {
        leftovers: c.out,
        ..Default::default()
    };
    // GEN-007: host keys.
    for p in glob_dir(g, "/etc/ssh", "ssh_host_*key*") {
        f.ssh_host_keys.extend(stat(g, &p));
    }
    // GEN-011: hostnames.
    for p in ["/etc/hostname", "/etc/HOSTNAME", "/etc/myname"] {
        let Some(text) = read_text(g, p) else {
            continue;
        };
        let first = numbered(&text).find(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        });
        if let Some((n, l)) = first {
            f.hostnames.push(Hostname {
                value: l.trim().to_string(),
                source: line_ref(p, n, l),
            });
        }
    }
    for (p, key) in [
        ("/etc/sysconfig/network", "HOSTNAME"),
        ("/etc/rc.conf", "hostname"),
    ] {
        let Some(text) = read_text(g, p) else {
            continue;
        };
        let vars = shell_vars(&text);
        if let Some(v) = var(&vars, key) {
            let line = text.lines().nth(v.line - 1).unwrap_or("");
            f.hostnames.push(Hostname {
                value: v.value.clone(),
                source: line_ref(p, v.line, line),
            });
        }
    }
    // GEN-012: resolv.conf.
    f.resolv_conf = stat(g, "/etc/resolv.conf").map(|s| match s.kind {
        FileKind::Symlink => ResolvConf::Symlink {
            target: s.target.unwrap_or_default(),
        },
        FileKind::File => ResolvConf::File {
            size: s.size,
            nameservers: read_text(g, "/etc/resolv.conf")
                .map(|t| {
                    numbered(&t)
                        .filter(|(_, l)| l.split_whitespace().next() == Some("nameserver"))
                        .map(|(n, l)| line_ref("/etc/resolv.conf", n, l))
                        .collect()
                })
                .unwrap_or_default(),
        },
        k => ResolvConf::Other { file_kind: k },
    });
    // GEN-013: machine-id.
    f.machine_id = machine_id(g, "/etc/machine-id");
    f.dbus_machine_id = machine_id(g, "/var/lib/dbus/machine-id");
    // NET-002: generator masked.
    f.persistent_net_generator_masked =
        stat(g, "/etc/udev/rules.d/75-persistent-net-generator.rules").is_some_and(|p| p.is_mask());
    f
}

#[cfg(test)]
mod tests {
    use super::super::testutil::tree;
    use super::super::{network, system_facts};
    use super::*;

    fn run(files: &[(&str, &str)], links: &[(&str, &str)]) -> GeneralizationFacts {
        let g = tree(files, links);
        gather(&g, &network::gather(&g))
    }

    #[test]
    fn generalized_image() {
        let f = run(
            &[
                ("/var/lib/waagent/", ""),
                ("/var/lib/cloud/", ""),
                ("/var/log/azure/", ""),
                ("/etc/hostname", "localhost\n"),
                ("/etc/machine-id", "uninitialized\n"),
                ("/etc/ssh/sshd_config", ""),
                ("/etc/ssh/moduli", ""),
            ],
            &[
                (
                    "/etc/resolv.conf",
                    "../run/systemd/resolve/stub-resolv.conf",
                ),
                (
                    "/etc/udev/rules.d/75-persistent-net-generator.rules",
                    "/dev/null",
                ),
                ("/var/lib/dbus/machine-id", "/etc/machine-id"),
            ],
        );
        assert!(f.leftovers.is_empty(), "{:?}", f.leftovers);
        assert!(f.ssh_host_keys.is_empty());
        assert_eq!(f.hostnames[0].value, "localhost");
        assert!(matches!(f.resolv_conf, Some(ResolvConf::Symlink { .. })));
        assert_eq!(
            f.machine_id.as_ref().unwrap().value,
            MachineIdValue::Uninitialized
        );
        let dbus = f.dbus_machine_id.unwrap();
        assert_eq!(dbus.file.kind, FileKind::Symlink);
        assert_eq!(dbus.value, MachineIdValue::Uninitialized);
        assert!(f.persistent_net_generator_masked);
    }

    #[test]
    fn specialized_image() {
        let f = run(
            &[
                ("/var/lib/waagent/provisioned", "c0ffee"),
                ("/var/lib/waagent/ovf-env.xml", "<Environment/>"),
                ("/var/lib/waagent/Certificates.pem", "x"),
                ("/var/lib/waagent/GoalState.1.xml", "x"),
                ("/var/lib/waagent/Microsoft.Azure.Extensions.CustomScript-2.1.10/", ""),
                ("/var/lib/waagent/WALinuxAgent-2.9.1.1/", ""),
                ("/var/lib/waagent/history/", ""),
                ("/var/lib/waagent/disable_agent", ""),
                ("/var/log/waagent.log", "x"),
                ("/var/log/waagent.log.1.gz", "x"),
                ("/var/log/azure/Microsoft.Azure.Extensions.CustomScript/handler.log", "x"),
                ("/var/log/cloud-init.log", "x"),
                ("/var/log/cloud-init-output.log.1", "x"),
                ("/var/lib/cloud/instances/iid-1/boot-finished", "x"),
                ("/var/lib/cloud/data/instance-id", "iid-1"),
                ("/var/lib/cloud/data/reported_ready", ""),
                ("/var/lib/cloud/sem/config_scripts_per_once.once", ""),
                ("/var/lib/cloud/seed/azure/ovf-env.xml", "x"),
                ("/var/lib/dhcp/dhclient.eth0.leases", "lease {}"),
                ("/var/lib/NetworkManager/internal-abc-eth0.lease", "x"),
                ("/etc/udev/rules.d/70-persistent-net.rules", "SUBSYSTEM==\"net\""),
                ("/etc/netplan/50-cloud-init.yaml", "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n      match: {macaddress: '00:0d:3a:aa:bb:cc'}\n"),
                ("/lib/systemd/system/waagent-network-setup.service", "x"),
                ("/lib/systemd/system/walinuxagent.service.d/10-Slice.conf", "x"),
                ("/etc/ssh/ssh_host_ed25519_key", "x"),
                ("/etc/ssh/ssh_host_ed25519_key.pub", "x"),
                ("/etc/hostname", "# c\nmyvm01\n"),
                ("/etc/sysconfig/network", "NETWORKING=yes\nHOSTNAME=myvm01.example\n"),
                ("/etc/resolv.conf", "search x\nnameserver 168.63.129.16\n"),
                ("/etc/machine-id", "0123456789ABCDEF0123456789abcdef\n"),
                ("/var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef"),
            ],
            &[("/var/lib/cloud/instance", "/var/lib/cloud/instances/iid-1")],
        );
        let it: Vec<(&str, &str, &str)> = f
            .leftovers
            .iter()
            .map(|l| (l.rule, l.item, l.fact.path.as_str()))
            .collect();
        let has = |rule: &str, item: &str| it.iter().any(|(r, i, _)| *r == rule && *i == item);
        for (r, i) in [
            ("GEN-001", "waagent-provisioned"),
            ("GEN-002", "waagent-ovf-env"),
            ("GEN-002", "waagent-certificates"),
            ("GEN-002", "waagent-goal-state"),
            ("GEN-002", "waagent-extension"),
            ("GEN-002", "waagent-agent-update"),
            ("GEN-002", "waagent-history"),
            ("GEN-017", "waagent-disable-agent"),
            ("GEN-003", "waagent-log"),
            ("GEN-003", "azure-extension-logs"),
            ("GEN-004", "cloud-init-instance-link"),
            ("GEN-004", "cloud-init-instance"),
            ("GEN-004", "cloud-init-instance-id"),
            ("GEN-004", "cloud-init-reported-ready"),
            ("GEN-004", "cloud-init-semaphore"),
            ("GEN-005", "cloud-init-seed"),
            ("GEN-006", "cloud-init-log"),
            ("GEN-010", "dhcp-lease"),
            ("GEN-015", "persistent-net-rules"),
            ("GEN-015", "cloud-init-netplan"),
            ("GEN-016", "waagent-runtime-unit"),
            ("GEN-016", "waagent-cgroup-dropin"),
        ] {
            assert!(has(r, i), "{r} {i} missing in {it:?}");
        }
        assert_eq!(it.iter().filter(|x| x.1 == "waagent-log").count(), 2);
        assert_eq!(it.iter().filter(|x| x.1 == "cloud-init-log").count(), 2);
        assert_eq!(it.iter().filter(|x| x.1 == "dhcp-lease").count(), 2);
        assert!(it
            .iter()
            .any(|x| x.2 == "/var/lib/cloud/seed/azure/ovf-env.xml"));
        let np = f
            .leftovers
            .iter()
            .find(|l| l.item == "cloud-init-netplan")
            .unwrap();
        assert_eq!(np.detail.as_deref(), Some("macaddress 00:0d:3a:aa:bb:cc"));
        assert_eq!(f.ssh_host_keys.len(), 2);
        let hn: Vec<(&str, usize)> = f
            .hostnames
            .iter()
            .map(|h| (h.value.as_str(), h.source.line))
            .collect();
        assert_eq!(hn, vec![("myvm01", 2), ("myvm01.example", 2)]);
        match &f.resolv_conf {
            Some(ResolvConf::File { nameservers, .. }) => assert_eq!(nameservers[0].line, 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            f.machine_id.as_ref().unwrap().value,
            MachineIdValue::Id {
                value: "0123456789abcdef0123456789abcdef".into()
            }
        );
        assert!(matches!(
            f.dbus_machine_id.as_ref().unwrap().value,
            MachineIdValue::Id { .. }
        ));
        assert!(!f.persistent_net_generator_masked);
    }

    #[test]
    fn machine_id_forms_and_whole_facts() {
        use MachineIdValue::*;
        assert_eq!(MachineIdValue::classify(b""), Empty);
        assert_eq!(MachineIdValue::classify(b"\n"), Empty);
        assert_eq!(MachineIdValue::classify(b"uninitialized\n"), Uninitialized);
        assert!(matches!(MachineIdValue::classify(b"0123"), Invalid { .. }));
        assert!(matches!(
            MachineIdValue::classify(&[0xff; 40]),
            Invalid { .. }
        ));
        let f = run(
            &[("/etc/machine-id/", "")],
            &[("/etc/resolv.conf", "/etc/resolv.conf")],
        );
        assert_eq!(f.machine_id.unwrap().value, Unreadable);
        assert!(matches!(f.resolv_conf, Some(ResolvConf::Symlink { .. })));
        let g = tree(&[("/etc/", "")], &[]);
        let s = system_facts(&g, &[], &crate::packages::Packages::default());
        serde_json::to_string(&s).unwrap();
    }
}
