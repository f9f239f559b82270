//! NIC configuration in every format the rules know (NET-001, NET-002), SR-IOV unmanaged
//! rules (NET-004) and firewall lines naming the platform addresses (NET-006).

use super::{glob_dir, join, line_ref, list, numbered, read_text, shell_vars, stat, unquote, var};
use super::{LineRef, PathFact, Value};
use crate::tree::GuestTree;
use serde::Serialize;
use yaml_rust2::{Yaml, YamlLoader};

/// The Azure wire server address.
pub const WIRESERVER: &str = "168.63.129.16";
/// The instance metadata service address.
pub const IMDS: &str = "169.254.169.254";
/// The SR-IOV udev rule Azure images ship.
pub const SRIOV_RULE: &str = "/etc/udev/rules.d/68-azure-sriov-nm-unmanaged.rules";

/// An `ifcfg-*` file (Red Hat `network-scripts` or SUSE `sysconfig/network`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IfcfgFile {
    /// Guest path.
    pub path: String,
    /// `redhat` or `suse`.
    pub flavor: &'static str,
    /// The interface the file name gives (`eth0`).
    pub interface: String,
    /// `BOOTPROTO=` (`dhcp`, `static`, `none` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootproto: Option<Value>,
    /// `ONBOOT=` (Red Hat) / `STARTMODE=` (SUSE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onboot: Option<Value>,
    /// `HWADDR=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hwaddr: Option<Value>,
    /// `MACADDR=` (SUSE: `LLADDR=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macaddr: Option<Value>,
    /// `DHCP_HOSTNAME=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcp_hostname: Option<Value>,
    /// `IPADDR=` (a static address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipaddr: Option<Value>,
}

/// A NetworkManager keyfile connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NmConnection {
    /// Guest path.
    pub path: String,
    /// `[connection] interface-name=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<Value>,
    /// `[ipv4] method=` (`auto`, `manual` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_method: Option<Value>,
    /// `[ethernet] mac-address=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<Value>,
    /// Written by cloud-init (`cloud-init-*.nmconnection`).
    pub cloud_init: bool,
}

/// One interface of a netplan file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetplanInterface {
    /// Section (`ethernets`, `bonds` ...).
    pub kind: String,
    /// Its id in the file.
    pub id: String,
    /// `dhcp4:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcp4: Option<bool>,
    /// `match: macaddress:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_macaddress: Option<String>,
    /// `match: name:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_name: Option<String>,
    /// `set-name:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_name: Option<String>,
    /// Number of `addresses:` (static addresses).
    pub addresses: usize,
}

/// A netplan YAML file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetplanFile {
    /// Guest path.
    pub path: String,
    /// Why it could not be parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `network: renderer:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renderer: Option<String>,
    /// Interfaces, in file order.
    pub interfaces: Vec<NetplanInterface>,
}

/// An `iface` stanza of ifupdown's `/etc/network/interfaces(.d)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IfaceStanza {
    /// Guest path.
    pub path: String,
    /// Line.
    pub line: usize,
    /// Interface.
    pub interface: String,
    /// `inet`, `inet6` ...
    pub family: String,
    /// `dhcp`, `static`, `loopback`, `manual` ...
    pub method: String,
}

/// A systemd-networkd `.network` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkdFile {
    /// Guest path.
    pub path: String,
    /// `[Match] Name=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_name: Option<Value>,
    /// `[Match] MACAddress=` (or `PermanentMACAddress=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_mac: Option<Value>,
    /// `[Network] DHCP=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<Value>,
    /// `Address=` lines (static addresses).
    pub addresses: usize,
}

/// Network evidence.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkFacts {
    /// `ifcfg-*` files (loopback excluded).
    pub ifcfg: Vec<IfcfgFile>,
    /// NetworkManager keyfiles.
    pub nm_connections: Vec<NmConnection>,
    /// netplan files.
    pub netplan: Vec<NetplanFile>,
    /// ifupdown stanzas.
    pub interfaces: Vec<IfaceStanza>,
    /// systemd-networkd files.
    pub networkd: Vec<NetworkdFile>,
    /// The SR-IOV udev rule file ([`SRIOV_RULE`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sriov_udev_rule: Option<PathFact>,
    /// That rule sets `ENV{NM_UNMANAGED}="1"`.
    pub sriov_nm_unmanaged: bool,
    /// `unmanaged-devices=` lines in `/etc/NetworkManager/conf.d/*.conf`.
    pub nm_unmanaged_devices: Vec<LineRef>,
    /// FreeBSD `ifconfig_*=` lines of `/etc/rc.conf`.
    pub freebsd_ifconfig: Vec<LineRef>,
    /// OpenBSD `/etc/hostname.<if>` first lines.
    pub openbsd_hostname_if: Vec<LineRef>,
    /// Firewall configuration lines naming [`WIRESERVER`] or [`IMDS`].
    pub firewall_mentions: Vec<LineRef>,
    /// The NetworkManager daemon binary, when installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_manager: Option<PathFact>,
    /// udev's shipped `75-persistent-net-generator.rules` (old udev writes
    /// `70-persistent-net.rules` from it), when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_net_generator: Option<PathFact>,
}

/// Where the NetworkManager daemon is installed.
pub const NETWORK_MANAGER: [&str; 3] = [
    "/usr/sbin/NetworkManager",
    "/usr/bin/NetworkManager",
    "/sbin/NetworkManager",
];
/// Where udev ships the persistent-net generator rule.
pub const PERSISTENT_NET_GENERATOR: [&str; 2] = [
    "/lib/udev/rules.d/75-persistent-net-generator.rules",
    "/usr/lib/udev/rules.d/75-persistent-net-generator.rules",
];

fn ifcfg_file(g: &GuestTree, path: &str, flavor: &'static str, iface: &str) -> Option<IfcfgFile> {
    let text = read_text(g, path)?;
    let v = shell_vars(&text);
    let get = |k: &str| var(&v, k).cloned();
    Some(IfcfgFile {
        path: path.to_string(),
        flavor,
        interface: iface.to_string(),
        bootproto: get("BOOTPROTO"),
        onboot: get(if flavor == "suse" {
            "STARTMODE"
        } else {
            "ONBOOT"
        }),
        hwaddr: get("HWADDR"),
        macaddr: get("MACADDR").or_else(|| get("LLADDR")),
        dhcp_hostname: get("DHCP_HOSTNAME"),
        ipaddr: get("IPADDR").or_else(|| get("IPADDR0")),
    })
}

/// Iterates `(section, key, value, line)` of an INI-style file (keyfile, .network).
fn ini(text: &str) -> impl Iterator<Item = (String, &str, &str, usize)> {
    let mut cur = String::new();
    numbered(text).filter_map(move |(n, l)| {
        let t = l.trim();
        if t.starts_with('#') || t.starts_with(';') || t.is_empty() {
            return None;
        }
        if t.starts_with('[') && t.ends_with(']') {
            cur = t[1..t.len() - 1].trim().to_string();
            return None;
        }
        let (k, v) = t.split_once('=')?;
        Some((cur.clone(), k.trim(), v.trim(), n))
    })
}

/// First value of `key` in `section`.
fn ini_get(text: &str, section: &str, key: &str) -> Option<Value> {
    ini(text)
        .find(|(s, k, _, _)| s == section && *k == key)
        .map(|(_, _, v, n)| Value {
            value: unquote(v),
            line: n,
        })
}

fn ini_count(text: &str, section: &str, key: &str) -> usize {
    ini(text)
        .filter(|(s, k, _, _)| s == section && *k == key)
        .count()
}

fn yaml_scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn yaml_bool(y: &Yaml) -> Option<bool> {
    match y {
        Yaml::Boolean(b) => Some(*b),
        Yaml::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "y" => Some(true),
            "false" | "no" | "off" | "n" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Deepest YAML nesting handed to the parser: yaml-rust2 recurses per level and overflows
/// the stack (an abort, not a panic) on a few thousand nested block sequences (`- - - ...`).
pub const MAX_YAML_DEPTH: usize = 128;

/// An upper bound of the nesting depth of YAML text: per line, the indentation plus the
/// compact block indicators (`- `, `? `) that open it, plus the open flow brackets.
fn yaml_depth_bound(text: &str) -> usize {
    let mut flow: usize = 0;
    let mut worst = 0;
    for line in text.lines() {
        let rest = line.trim_start_matches([' ', '\t']);
        let indent = line.len() - rest.len();
        let mut r = rest;
        let mut indicators = 0;
        while let Some(x) = r
            .strip_prefix("- ")
            .or_else(|| r.strip_prefix("? "))
            .or_else(|| r.strip_prefix("-\t"))
        {
            indicators += 1;
            r = x.trim_start_matches([' ', '\t']);
        }
        for c in line.bytes() {
            match c {
                b'[' | b'{' => flow += 1,
                b']' | b'}' => flow = flow.saturating_sub(1),
                _ => {}
            }
            worst = worst.max(flow);
        }
        worst = worst.max(indent + 2 * indicators + flow);
    }
    worst
}

/// Parses one netplan file's text (never panics; a parse failure is recorded in `error`).
pub fn parse_netplan(path: &str, text: &str) -> NetplanFile {
    let mut f = NetplanFile {
        path: path.to_string(),
        error: None,
        renderer: None,
        interfaces: Vec::new(),
    };
    let depth = yaml_depth_bound(text);
    if depth > MAX_YAML_DEPTH {
        f.error = Some(format!(
            "nested deeper than {MAX_YAML_DEPTH} levels (bound {depth}): not parsed"
        ));
        return f;
    }
    let docs = match YamlLoader::load_from_str(text) {
        Ok(d) => d,
        Err(e) => {
            f.error = Some(e.to_string());
            return f;
        }
    };
    let Some(doc) = docs.first() else {
        return f;
    };
    let net = &doc["network"];
    f.renderer = yaml_scalar(&net["renderer"]);
    let Some(h) = net.as_hash() else {
        if !matches!(net, Yaml::BadValue | Yaml::Null) {
            f.error = Some("`network` is not a mapping".into());
        }
        return f;
    };
    for (kind, section) in h {
        let Some(kind) = kind.as_str() else { continue };
        if !matches!(
            kind,
            "ethernets" | "bonds" | "bridges" | "vlans" | "wifis" | "vrfs" | "tunnels"
        ) {
            continue;
        }
        let Some(ifs) = section.as_hash() else {
            continue;
        };
        for (id, body) in ifs.iter().take(super::MAX_LISTED) {
            let Some(id) = yaml_scalar(id) else { continue };
            let m = &body["match"];
            f.interfaces.push(NetplanInterface {
                kind: kind.to_string(),
                id,
                dhcp4: yaml_bool(&body["dhcp4"]),
                match_macaddress: yaml_scalar(&m["macaddress"]),
                match_name: yaml_scalar(&m["name"]),
                set_name: yaml_scalar(&body["set-name"]),
                addresses: body["addresses"].as_vec().map_or(0, Vec::len),
            });
        }
    }
    f
}

/// Gathers [`NetworkFacts`].
pub fn gather(g: &GuestTree) -> NetworkFacts {
    let mut f = NetworkFacts::default();
    for (dir, flavor) in [
        ("/etc/sysconfig/network-scripts", "redhat"),
        ("/etc/sysconfig/network", "suse"),
    ] {
        for p in glob_dir(g, dir, "ifcfg-*") {
            let iface = p.rsplit_once("ifcfg-").map_or("", |x| x.1).to_string();
            if iface == "lo" || iface.ends_with(".bak") || iface.ends_with('~') {
                continue;
            }
            f.ifcfg.extend(ifcfg_file(g, &p, flavor, &iface));
        }
    }
    for dir in [
        "/etc/NetworkManager/system-connections",
        "/usr/lib/NetworkManager/system-connections",
    ] {
        for (name, _) in list(g, dir) {
            let p = join(dir, &name);
            let Some(text) = read_text(g, &p) else {
                continue;
            };
            f.nm_connections.push(NmConnection {
                interface_name: ini_get(&text, "connection", "interface-name"),
                ipv4_method: ini_get(&text, "ipv4", "method"),
                mac_address: ini_get(&text, "ethernet", "mac-address")
                    .or_else(|| ini_get(&text, "802-3-ethernet", "mac-address")),
                cloud_init: name.starts_with("cloud-init-"),
                path: p,
            });
        }
    }
    for dir in ["/etc/netplan", "/lib/netplan", "/run/netplan"] {
        for p in glob_dir(g, dir, "*.yaml") {
            match read_text(g, &p) {
                Some(text) => f.netplan.push(parse_netplan(&p, &text)),
                None => f.netplan.push(NetplanFile {
                    path: p,
                    error: Some("not a readable file (or over 4 MiB)".into()),
                    renderer: None,
                    interfaces: Vec::new(),
                }),
            }
        }
    }
    let mut ifupdown = vec!["/etc/network/interfaces".to_string()];
    ifupdown.extend(glob_dir(g, "/etc/network/interfaces.d", "*"));
    for p in ifupdown {
        let Some(text) = read_text(g, &p) else {
            continue;
        };
        for (n, l) in numbered(&text) {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() >= 4 && w[0] == "iface" {
                f.interfaces.push(IfaceStanza {
                    path: p.clone(),
                    line: n,
                    interface: w[1].to_string(),
                    family: w[2].to_string(),
                    method: w[3].to_string(),
                });
            }
        }
    }
    for dir in ["/etc/systemd/network", "/run/systemd/network"] {
        for p in glob_dir(g, dir, "*.network") {
            let Some(text) = read_text(g, &p) else {
                continue;
            };
            f.networkd.push(NetworkdFile {
                match_name: ini_get(&text, "Match", "Name"),
                match_mac: ini_get(&text, "Match", "MACAddress")
                    .or_else(|| ini_get(&text, "Match", "PermanentMACAddress")),
                dhcp: ini_get(&text, "Network", "DHCP"),
                addresses: ini_count(&text, "Network", "Address")
                    + ini_count(&text, "Address", "Address"),
                path: p,
            });
        }
    }
    f.sriov_udev_rule = stat(g, SRIOV_RULE);
    if let Some(text) = read_text(g, SRIOV_RULE) {
        f.sriov_nm_unmanaged = text
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("ENV{NM_UNMANAGED}=\"1\""));
    }
    for p in glob_dir(g, "/etc/NetworkManager/conf.d", "*.conf") {
        let Some(text) = read_text(g, &p) else {
            continue;
        };
        for (n, l) in numbered(&text) {
            if l.trim_start().starts_with("unmanaged-devices") {
                f.nm_unmanaged_devices.push(line_ref(&p, n, l));
            }
        }
    }
    if let Some(text) = read_text(g, "/etc/rc.conf") {
        for (n, l) in numbered(&text) {
            if l.trim_start().starts_with("ifconfig_") {
                f.freebsd_ifconfig.push(line_ref("/etc/rc.conf", n, l));
            }
        }
    }
    for p in glob_dir(g, "/etc", "hostname.*") {
        if let Some(text) = read_text(g, &p) {
            let first = text.lines().next().unwrap_or("");
            f.openbsd_hostname_if.push(line_ref(&p, 1, first));
        }
    }
    let mut fw: Vec<String> = [
        "/etc/iptables/rules.v4",
        "/etc/iptables/rules.v6",
        "/etc/sysconfig/iptables",
        "/etc/sysconfig/ip6tables",
        "/etc/nftables.conf",
        "/etc/sysconfig/nftables.conf",
        "/etc/firewalld/direct.xml",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for d in [
        "/etc/nftables.d",
        "/etc/nftables",
        "/etc/sysconfig/nftables.d",
        "/etc/firewalld/zones",
        "/etc/firewalld/policies",
    ] {
        fw.extend(glob_dir(g, d, "*"));
    }
    for p in fw {
        let Some(text) = read_text(g, &p) else {
            continue;
        };
        for (n, l) in numbered(&text) {
            if (l.contains(WIRESERVER) || l.contains(IMDS)) && !l.trim_start().starts_with('#') {
                f.firewall_mentions.push(line_ref(&p, n, l));
            }
        }
    }
    f.network_manager = NETWORK_MANAGER.iter().find_map(|p| {
        g.metadata(p.as_bytes())
            .is_ok_and(|m| m.kind == vhdprep_fs::FileKind::File)
            .then(|| stat(g, p))
            .flatten()
    });
    f.persistent_net_generator = PERSISTENT_NET_GENERATOR.iter().find_map(|p| stat(g, p));
    f
}

#[cfg(test)]
mod tests {
    use super::super::testutil::tree;
    use super::*;

    const NETPLAN_MAC: &str = "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      match:\n        macaddress: 00:0d:3a:12:34:56\n      set-name: eth0\n    eth1:\n      dhcp4: no\n      addresses: [10.0.0.5/24]\n";

    #[test]
    fn ifcfg_static_vs_dhcp_and_suse() {
        let g = tree(
            &[
                ("/etc/sysconfig/network-scripts/ifcfg-eth0", "DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\nDHCP_HOSTNAME=localhost.localdomain\n"),
                ("/etc/sysconfig/network-scripts/ifcfg-eth1", "DEVICE=eth1\nBOOTPROTO=\"static\"\nIPADDR=10.0.0.4\nHWADDR=00:0D:3A:00:00:01\nONBOOT=yes\n"),
                ("/etc/sysconfig/network-scripts/ifcfg-lo", "DEVICE=lo\n"),
                ("/etc/sysconfig/network/ifcfg-eth0", "BOOTPROTO='dhcp'\nSTARTMODE='auto'\n"),
            ],
            &[],
        );
        let f = gather(&g);
        assert_eq!(f.ifcfg.len(), 3);
        let e0 = &f.ifcfg[0];
        assert_eq!(e0.interface, "eth0");
        assert_eq!(e0.bootproto.as_ref().unwrap().value, "dhcp");
        assert_eq!(e0.dhcp_hostname.as_ref().unwrap().line, 4);
        let e1 = &f.ifcfg[1];
        assert_eq!(e1.bootproto.as_ref().unwrap().value, "static");
        assert_eq!(e1.hwaddr.as_ref().unwrap().line, 4);
        assert_eq!(e1.ipaddr.as_ref().unwrap().value, "10.0.0.4");
        assert_eq!(f.ifcfg[2].flavor, "suse");
        assert_eq!(f.ifcfg[2].onboot.as_ref().unwrap().value, "auto");
    }

    #[test]
    fn netplan_nm_ifupdown_networkd_firewall() {
        let g = tree(
            &[
                ("/etc/netplan/50-cloud-init.yaml", NETPLAN_MAC),
                ("/etc/netplan/99-bad.yaml", "network: [unclosed\n\t- :"),
                ("/etc/netplan/98-weird.yaml", "network: 5\n"),
                ("/etc/NetworkManager/system-connections/cloud-init-eth0.nmconnection", "[connection]\nid=cloud-init eth0\ninterface-name=eth0\n[ethernet]\nmac-address=00:0D:3A:00:00:02\n[ipv4]\nmethod=auto\n"),
                ("/etc/NetworkManager/system-connections/static.nmconnection", "[ipv4]\nmethod=manual\naddress1=10.0.0.9/24\n"),
                ("/etc/NetworkManager/conf.d/99-azure-unmanaged-devices.conf", "[keyfile]\nunmanaged-devices=driver:mlx4_core,driver:mlx5_core\n"),
                ("/etc/network/interfaces", "auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n"),
                ("/etc/network/interfaces.d/eth0", "auto eth0\niface eth0 inet dhcp\niface eth1 inet static\n  address 10.0.0.3\n"),
                ("/etc/systemd/network/10-eth0.network", "[Match]\nMACAddress=00:0d:3a:00:00:03\n[Network]\nDHCP=ipv4\nAddress=10.1.1.1/24\n"),
                (SRIOV_RULE, "SUBSYSTEM==\"net\", DRIVERS==\"hv_pci\", ACTION!=\"remove\", ENV{NM_UNMANAGED}=\"1\"\n"),
                ("/etc/iptables/rules.v4", "*filter\n-A OUTPUT -d 168.63.129.16/32 -p tcp -m owner --uid-owner 0 -j ACCEPT\n# 169.254.169.254 comment\nCOMMIT\n"),
                ("/etc/firewalld/zones/public.xml", "<rule><destination address=\"169.254.169.254\"/><drop/></rule>\n"),
                ("/etc/rc.conf", "ifconfig_hn0=\"DHCP\"\n"),
                ("/etc/hostname.hvn0", "dhcp\n"),
                ("/usr/sbin/NetworkManager", "\x7fELF"),
                ("/lib/udev/rules.d/75-persistent-net-generator.rules", "# gen\n"),
            ],
            &[],
        );
        let f = gather(&g);
        assert!(f.network_manager.is_some() && f.persistent_net_generator.is_some());
        assert_eq!(f.netplan.len(), 3);
        let np = &f.netplan[0];
        assert!(np.error.is_none());
        assert_eq!(np.interfaces.len(), 2);
        assert_eq!(np.interfaces[0].dhcp4, Some(true));
        assert_eq!(
            np.interfaces[0].match_macaddress.as_deref(),
            Some("00:0d:3a:12:34:56")
        );
        assert_eq!(np.interfaces[0].set_name.as_deref(), Some("eth0"));
        assert_eq!(np.interfaces[1].dhcp4, Some(false));
        assert_eq!(np.interfaces[1].addresses, 1);
        assert!(f
            .netplan
            .iter()
            .all(|n| n.path.ends_with("50-cloud-init.yaml") || n.error.is_some()));
        assert_eq!(f.nm_connections.len(), 2);
        assert!(f.nm_connections[0].cloud_init);
        assert_eq!(f.nm_connections[0].mac_address.as_ref().unwrap().line, 5);
        assert_eq!(
            f.nm_connections[1].ipv4_method.as_ref().unwrap().value,
            "manual"
        );
        assert_eq!(f.nm_unmanaged_devices.len(), 1);
        let st: Vec<(&str, &str)> = f
            .interfaces
            .iter()
            .map(|i| (i.interface.as_str(), i.method.as_str()))
            .collect();
        assert_eq!(
            st,
            vec![("lo", "loopback"), ("eth0", "dhcp"), ("eth1", "static")]
        );
        assert_eq!(f.networkd[0].dhcp.as_ref().unwrap().value, "ipv4");
        assert_eq!(f.networkd[0].match_mac.as_ref().unwrap().line, 2);
        assert_eq!(f.networkd[0].addresses, 1);
        assert!(f.sriov_udev_rule.is_some() && f.sriov_nm_unmanaged);
        assert_eq!(f.firewall_mentions.len(), 2);
        assert_eq!(f.firewall_mentions[0].line, 2);
        assert_eq!(f.freebsd_ifconfig.len(), 1);
        assert_eq!(f.openbsd_hostname_if[0].text, "dhcp");
    }

    #[test]
    fn netplan_malformed_inputs_never_panic() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let dashes = "- ".repeat(50_000);
        let indented: String = (0..5000)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        for t in [&deep, &dashes, &indented] {
            assert!(parse_netplan("/x.yaml", t)
                .error
                .unwrap()
                .contains("nested deeper"));
        }
        // Realistic files are well under the bound.
        assert!(yaml_depth_bound(NETPLAN_MAC) < 16);
        let alias = "a: &a [x]\nnetwork: *a\n";
        for t in [
            "",
            "---\n",
            "\u{0}\u{1}\u{2}",
            "network:\n  ethernets: [1,2]\n",
            "network:\n  ethernets:\n    ? [a]\n    : {dhcp4: maybe}\n",
            "network:\n  ethernets:\n    eth0: 7\n",
            alias,
            "network: {ethernets: {eth0: {match: 3, addresses: x}}}",
        ] {
            let _ = parse_netplan("/x.yaml", t);
        }
    }
}
