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
    /// `DEVICE=` (Red Hat: the interface the file configures, over the file name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<Value>,
    /// `TYPE=` (`Ethernet`, `Bond` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Value>,
    /// `NM_CONTROLLED=` (Red Hat; `no` leaves the device unmanaged by NetworkManager).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nm_controlled: Option<Value>,
    /// `IPV6INIT=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6init: Option<Value>,
    /// `PERSISTENT_DHCLIENT=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_dhclient: Option<Value>,
    /// `MASTER=`, `BRIDGE=` or `TEAM_MASTER=` (Red Hat): the device is enslaved, its
    /// addresses come from the bond, bridge or team it is part of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller: Option<Value>,
}

/// Red Hat's `/etc/sysconfig/network` (a file there; on SUSE the path is a directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SysconfigNetwork {
    /// Guest path.
    pub path: String,
    /// `NETWORKING=` (`no`: the legacy network service brings no interface up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking: Option<Value>,
    /// `HOSTNAME=` (a host name fixed at build time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Value>,
    /// `NOZEROCONF=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nozeroconf: Option<Value>,
}

/// A NetworkManager keyfile connection (`nm-settings-keyfile(5)`: a GLib key file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NmConnection {
    /// Guest path.
    pub path: String,
    /// `[connection] id=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// `[connection] type=` (`ethernet` or its alias `802-3-ethernet`, `bond`, `wifi` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_type: Option<Value>,
    /// `[connection] autoconnect=` (absent: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoconnect: Option<Value>,
    /// `[connection] interface-name=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<Value>,
    /// `[match] interface-name=` (a `;`-separated list of names or globs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_interface_name: Option<Value>,
    /// `[ipv4] address1=` ... lines (static addresses).
    pub ipv4_addresses: usize,
    /// `[connection] controller=` (or the older `master=`): a port of a bond, bridge or team,
    /// whose addresses come from that device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller: Option<Value>,
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
    /// `[Match] Type=` (`ether`, `wlan` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_type: Option<Value>,
    /// Other `[Match]` keys that narrow the file to devices no Azure NIC is
    /// (`Virtualization=`, `Kind=`, `WLANInterfaceType=`, `SSID=`).
    pub match_other: Vec<String>,
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
    /// Red Hat's `/etc/sysconfig/network`, when it is a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysconfig_network: Option<SysconfigNetwork>,
    /// The legacy `network` service script of Red Hat's network-scripts, when installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_scripts_service: Option<PathFact>,
    /// The SR-IOV udev rule file ([`SRIOV_RULE`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sriov_udev_rule: Option<PathFact>,
    /// That rule sets `ENV{NM_UNMANAGED}="1"`.
    pub sriov_nm_unmanaged: bool,
    /// `unmanaged-devices=` (and `+=`, `-=`) lines of NetworkManager.conf and the
    /// `conf.d/*.conf` files of `/usr/lib` and `/etc`, in the order NetworkManager reads them.
    pub nm_unmanaged_devices: Vec<LineRef>,
    /// `no-auto-default=` lines of the same files (devices NetworkManager makes no automatic
    /// "Wired connection" for; RHEL's 00-server.conf has `*`).
    pub nm_no_auto_default: Vec<LineRef>,
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
    // Red Hat's DEVICE= names the interface (initscripts and NetworkManager's ifcfg-rh);
    // wicked takes it from the file name.
    let device = get("DEVICE").filter(|d| flavor == "redhat" && !d.value.is_empty());
    Some(IfcfgFile {
        path: path.to_string(),
        flavor,
        interface: device.map_or_else(|| iface.to_string(), |d| d.value),
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
        device: get("DEVICE"),
        kind: get("TYPE"),
        nm_controlled: get("NM_CONTROLLED"),
        ipv6init: get("IPV6INIT"),
        persistent_dhclient: get("PERSISTENT_DHCLIENT"),
        controller: get("MASTER")
            .or_else(|| get("BRIDGE"))
            .or_else(|| get("TEAM_MASTER"))
            .filter(|v| flavor == "redhat" && !v.value.is_empty()),
    })
}

/// Where the legacy network-scripts `network` service lives.
pub const NETWORK_SCRIPTS_SERVICE: [&str; 2] = ["/etc/rc.d/init.d/network", "/etc/init.d/network"];

/// Whether NetworkManager's keyfile plugin reads a file of that name
/// (`nm_keyfile_utils_ignore_filename`): no hidden, backup, editor or certificate files; in
/// the directories other than `/etc` only `*.nmconnection`.
pub fn nm_keyfile_name_read(name: &str, require_extension: bool) -> bool {
    if name.starts_with('.') || name.ends_with('~') {
        return false;
    }
    if name.ends_with(".nmconnection") {
        return name.len() > ".nmconnection".len();
    }
    if require_extension {
        return false;
    }
    ![
        ".bak", ".orig", ".rej", ".swp", ".tmp", ".pem", ".der", ".key", ".nmmeta",
    ]
    .iter()
    .any(|x| name.ends_with(x))
}

/// Parses one NetworkManager keyfile's text.
pub fn parse_nm_keyfile(path: &str, text: &str) -> NmConnection {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ipv4_addresses = ini(text)
        .filter(|(s, k, _, _)| {
            s == "ipv4"
                && (k
                    .strip_prefix("address")
                    .is_some_and(|n| n.is_empty() || n.bytes().all(|b| b.is_ascii_digit()))
                    || *k == "addresses")
        })
        .count();
    NmConnection {
        id: ini_get(text, "connection", "id"),
        conn_type: ini_get(text, "connection", "type"),
        autoconnect: ini_get(text, "connection", "autoconnect"),
        interface_name: ini_get(text, "connection", "interface-name"),
        match_interface_name: ini_get(text, "match", "interface-name"),
        ipv4_addresses,
        controller: ini_get(text, "connection", "controller")
            .or_else(|| ini_get(text, "connection", "master"))
            .filter(|v| !v.value.is_empty()),
        ipv4_method: ini_get(text, "ipv4", "method"),
        mac_address: ini_get(text, "ethernet", "mac-address")
            .or_else(|| ini_get(text, "802-3-ethernet", "mac-address")),
        cloud_init: name.starts_with("cloud-init-"),
        path: path.to_string(),
    }
}

/// Parses one systemd-networkd `.network` file's text.
pub fn parse_networkd(path: &str, text: &str) -> NetworkdFile {
    let match_other = ini(text)
        .filter(|(s, k, v, _)| {
            s == "Match"
                && !v.is_empty()
                && matches!(
                    *k,
                    "Virtualization" | "Kind" | "WLANInterfaceType" | "SSID" | "Host"
                )
        })
        .map(|(_, k, v, _)| format!("{k}={v}"))
        .take(16)
        .collect();
    NetworkdFile {
        match_name: ini_get(text, "Match", "Name"),
        match_mac: ini_get(text, "Match", "MACAddress")
            .or_else(|| ini_get(text, "Match", "PermanentMACAddress")),
        match_type: ini_get(text, "Match", "Type"),
        match_other,
        dhcp: ini_get(text, "Network", "DHCP"),
        addresses: ini_count(text, "Network", "Address") + ini_count(text, "Address", "Address"),
        path: path.to_string(),
    }
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

/// Value of `key` in `section`: the last assignment wins, as GLib key files and systemd
/// read single-valued settings.
fn ini_get(text: &str, section: &str, key: &str) -> Option<Value> {
    ini(text)
        .filter(|(s, k, _, _)| s == section && *k == key)
        .last()
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
            // initscripts' and wicked's ignore list for backup and package-manager files.
            let ignored = [
                ".bak", ".old", ".orig", ".rpmnew", ".rpmorig", ".rpmsave", ".swp", "~",
            ]
            .iter()
            .any(|x| iface.ends_with(x));
            if iface == "lo" || ignored {
                continue;
            }
            f.ifcfg
                .extend(ifcfg_file(g, &p, flavor, &iface).filter(|c| c.interface != "lo"));
        }
    }
    for (dir, require_extension) in [
        ("/etc/NetworkManager/system-connections", false),
        ("/run/NetworkManager/system-connections", true),
        ("/usr/lib/NetworkManager/system-connections", true),
    ] {
        for (name, _) in list(g, dir) {
            if !nm_keyfile_name_read(&name, require_extension) {
                continue;
            }
            let p = join(dir, &name);
            let Some(text) = read_text(g, &p) else {
                continue;
            };
            if text.trim().is_empty() {
                continue; // No [connection]: NetworkManager loads no profile from it.
            }
            f.nm_connections.push(parse_nm_keyfile(&p, &text));
        }
    }
    if let Some(text) = read_text(g, "/etc/sysconfig/network") {
        let v = shell_vars(&text);
        f.sysconfig_network = Some(SysconfigNetwork {
            path: "/etc/sysconfig/network".into(),
            networking: var(&v, "NETWORKING").cloned(),
            hostname: var(&v, "HOSTNAME").cloned(),
            nozeroconf: var(&v, "NOZEROCONF").cloned(),
        });
    }
    f.network_scripts_service = NETWORK_SCRIPTS_SERVICE.iter().find_map(|p| stat(g, p));
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
            // networkd skips an empty file (`null_or_empty_path`), as it does a link to
            // /dev/null: image builders empty 99-dhcp-en.network to turn it off.
            if text.trim().is_empty() {
                continue;
            }
            f.networkd.push(parse_networkd(&p, &text));
        }
    }
    f.sriov_udev_rule = stat(g, SRIOV_RULE);
    if let Some(text) = read_text(g, SRIOV_RULE) {
        f.sriov_nm_unmanaged = text
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("ENV{NM_UNMANAGED}=\"1\""));
    }
    // NetworkManager.conf, then the conf.d files of /usr/lib and /etc in the order of their
    // names, a name in /etc hiding the same name in /usr/lib (NetworkManager.conf(5)); later
    // keys override earlier ones.
    let mut conf_d: std::collections::BTreeMap<String, String> = Default::default();
    for dir in [
        "/usr/lib/NetworkManager/conf.d",
        "/etc/NetworkManager/conf.d",
    ] {
        for p in glob_dir(g, dir, "*.conf") {
            let name = p.rsplit('/').next().unwrap_or("").to_string();
            conf_d.insert(name, p);
        }
    }
    let nm_conf = std::iter::once("/etc/NetworkManager/NetworkManager.conf".to_string())
        .chain(conf_d.into_values());
    for p in nm_conf {
        let Some(text) = read_text(g, &p) else {
            continue;
        };
        for (n, l) in numbered(&text) {
            if l.trim_start().starts_with("unmanaged-devices") {
                f.nm_unmanaged_devices.push(line_ref(&p, n, l));
            } else if l.trim_start().starts_with("no-auto-default") {
                f.nm_no_auto_default.push(line_ref(&p, n, l));
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
                ("/usr/lib/NetworkManager/conf.d/00-server.conf", "# This configuration file changes NetworkManager's behavior to\n# what's expected on \"traditional UNIX server\" type deployments.\n[main]\nno-auto-default=*\nignore-carrier=*\n"),
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
        assert_eq!(f.nm_no_auto_default[0].line, 4);
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

    /// A keyfile written by NetworkManager's own nmcli (`--offline` prints it, NM >= 1.40).
    fn nmcli_keyfile(args: &[&str]) -> String {
        let out = std::process::Command::new("nmcli")
            .args(["--offline", "connection", "add"])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run nmcli ({e}): install network-manager"));
        assert!(
            out.status.success(),
            "nmcli {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn nmcli_keyfiles_read_as_networkmanager_wrote_them() {
        let dhcp = nmcli_keyfile(&[
            "type",
            "ethernet",
            "con-name",
            "eth0",
            "ifname",
            "eth0",
            "ipv4.method",
            "auto",
        ]);
        let fixed = nmcli_keyfile(&[
            "type",
            "ethernet",
            "con-name",
            "System eth0",
            "ifname",
            "eth0",
            "ipv4.method",
            "manual",
            "ipv4.addresses",
            "10.0.0.4/24",
            "ipv4.gateway",
            "10.0.0.1",
            "connection.autoconnect",
            "no",
        ]);
        let matched = nmcli_keyfile(&[
            "type",
            "ethernet",
            "con-name",
            "cloud",
            "match.interface-name",
            "eth* en*",
            "ethernet.mac-address",
            "00:0D:3A:00:00:01",
        ]);
        let bond = nmcli_keyfile(&["type", "bond", "con-name", "bond0", "ifname", "bond0"]);
        let port = nmcli_keyfile(&[
            "type",
            "ethernet",
            "con-name",
            "bond0-port",
            "ifname",
            "eth0",
            "master",
            "bond0",
            "slave-type",
            "bond",
        ]);
        let dir = "/etc/NetworkManager/system-connections";
        let g = tree(
            &[
                (&format!("{dir}/eth0.nmconnection"), &dhcp),
                (&format!("{dir}/static.nmconnection"), &fixed),
                (&format!("{dir}/cloud.nmconnection"), &matched),
                (&format!("{dir}/bond0.nmconnection"), &bond),
                (&format!("{dir}/bond0-port.nmconnection"), &port),
                (&format!("{dir}/eth0.nmconnection.bak"), &fixed),
                (&format!("{dir}/.hidden.nmconnection"), &fixed),
                ("/usr/lib/NetworkManager/system-connections/legacy", &fixed),
            ],
            &[],
        );
        let f = gather(&g);
        let names: Vec<&str> = f.nm_connections.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            names,
            [
                "/etc/NetworkManager/system-connections/bond0-port.nmconnection",
                "/etc/NetworkManager/system-connections/bond0.nmconnection",
                "/etc/NetworkManager/system-connections/cloud.nmconnection",
                "/etc/NetworkManager/system-connections/eth0.nmconnection",
                "/etc/NetworkManager/system-connections/static.nmconnection",
            ],
            "backup and hidden files, and extension-less files outside /etc, are not read"
        );
        let by = |n: &str| {
            f.nm_connections
                .iter()
                .find(|c| c.path.ends_with(n))
                .unwrap()
        };
        let (b, c, e, s) = (
            by("bond0.nmconnection"),
            by("cloud.nmconnection"),
            by("eth0.nmconnection"),
            by("static.nmconnection"),
        );
        assert_eq!(b.conn_type.as_ref().unwrap().value, "bond");
        let p = by("bond0-port.nmconnection");
        assert_eq!(p.controller.as_ref().unwrap().value, "bond0");
        assert!(e.controller.is_none());
        assert_eq!(e.conn_type.as_ref().unwrap().value, "ethernet");
        assert_eq!(e.interface_name.as_ref().unwrap().value, "eth0");
        assert_eq!(e.ipv4_method.as_ref().unwrap().value, "auto");
        assert!(e.autoconnect.is_none() && e.ipv4_addresses == 0);
        assert_eq!(s.id.as_ref().unwrap().value, "System eth0");
        assert_eq!(s.autoconnect.as_ref().unwrap().value, "false");
        assert_eq!(s.ipv4_method.as_ref().unwrap().value, "manual");
        assert_eq!(s.ipv4_addresses, 1);
        assert!(c.interface_name.is_none());
        assert_eq!(c.match_interface_name.as_ref().unwrap().value, "eth*;en*;");
        assert_eq!(c.mac_address.as_ref().unwrap().value, "00:0D:3A:00:00:01");
        // The line numbers are those of the file nmcli wrote.
        let line = fixed.lines().position(|l| l == "method=manual").unwrap() + 1;
        assert_eq!(s.ipv4_method.as_ref().unwrap().line, line);
    }

    #[test]
    fn red_hat_suse_and_azure_linux_layouts() {
        // The ifcfg-eth0 of Azure's RHEL/CentOS/Oracle guides, with DEVICE naming the NIC.
        let rhel = "DEVICE=eth0\nONBOOT=yes\nBOOTPROTO=dhcp\nTYPE=Ethernet\nUSERCTL=no\nPEERDNS=yes\nIPV6INIT=no\nPERSISTENT_DHCLIENT=yes\nNM_CONTROLLED=yes\n";
        let g = tree(
            &[
                ("/etc/sysconfig/network-scripts/ifcfg-System_eth0", rhel),
                (
                    "/etc/sysconfig/network-scripts/ifcfg-eth0.rpmsave",
                    "BOOTPROTO=none\n",
                ),
                (
                    "/etc/sysconfig/network-scripts/ifcfg-loop",
                    "DEVICE=lo\nONBOOT=yes\n",
                ),
                (
                    "/etc/sysconfig/network",
                    "NETWORKING=yes\nHOSTNAME=localhost.localdomain\nNOZEROCONF=yes\n",
                ),
                ("/etc/rc.d/init.d/network", "#!/bin/bash\n"),
                (
                    "/etc/systemd/network/99-dhcp-en.network",
                    "[Match]\nName=e*\n\n[Network]\nDHCP=yes\nIPv6AcceptRA=no\n",
                ),
                (
                    "/etc/systemd/network/80-wifi.network",
                    "[Match]\nType=wlan\n[Network]\nDHCP=yes\n",
                ),
                ("/etc/systemd/network/90-emptied.network", ""),
                (
                    "/etc/systemd/network/80-container.network",
                    "[Match]\nVirtualization=container\nName=host0\n[Network]\nDHCP=no\nDHCP=yes\n",
                ),
            ],
            &[],
        );
        let f = gather(&g);
        assert_eq!(f.ifcfg.len(), 1, "{:?}", f.ifcfg);
        let e = &f.ifcfg[0];
        assert_eq!(e.interface, "eth0", "DEVICE= names the interface");
        assert_eq!(e.kind.as_ref().unwrap().value, "Ethernet");
        assert_eq!(e.nm_controlled.as_ref().unwrap().value, "yes");
        assert_eq!(e.ipv6init.as_ref().unwrap().value, "no");
        assert_eq!(e.persistent_dhclient.as_ref().unwrap().line, 8);
        let sc = f.sysconfig_network.as_ref().unwrap();
        assert_eq!(sc.networking.as_ref().unwrap().value, "yes");
        assert_eq!(sc.hostname.as_ref().unwrap().value, "localhost.localdomain");
        assert_eq!(sc.nozeroconf.as_ref().unwrap().line, 3);
        assert_eq!(
            f.network_scripts_service.as_ref().unwrap().path,
            "/etc/rc.d/init.d/network"
        );
        let nd: Vec<(&str, Option<&str>, usize)> = f
            .networkd
            .iter()
            .map(|n| {
                (
                    n.path.rsplit('/').next().unwrap(),
                    n.dhcp.as_ref().map(|d| d.value.as_str()),
                    n.match_other.len(),
                )
            })
            .collect();
        assert_eq!(
            nd,
            [
                ("80-container.network", Some("yes"), 1),
                ("80-wifi.network", Some("yes"), 0),
                ("99-dhcp-en.network", Some("yes"), 0),
            ],
            "the last DHCP= wins"
        );
        assert_eq!(f.networkd[1].match_type.as_ref().unwrap().value, "wlan");
        // SUSE: /etc/sysconfig/network is the directory of wicked's files.
        let suse = tree(
            &[
                (
                    "/etc/sysconfig/network/ifcfg-eth0",
                    "BOOTPROTO='dhcp'\nSTARTMODE='auto'\nDEVICE=ignored\n",
                ),
                ("/etc/sysconfig/network/ifcfg-lo", "STARTMODE=nfsroot\n"),
                (
                    "/etc/sysconfig/network/dhcp",
                    "DHCLIENT_SET_HOSTNAME=\"no\"\n",
                ),
            ],
            &[],
        );
        let f = gather(&suse);
        assert!(f.sysconfig_network.is_none());
        assert_eq!(f.ifcfg.len(), 1);
        assert_eq!(
            f.ifcfg[0].interface, "eth0",
            "wicked takes the name from the file"
        );
        assert_eq!(f.ifcfg[0].onboot.as_ref().unwrap().value, "auto");
    }

    #[test]
    fn ifcfg_ports_of_bonds_and_bridges() {
        let g = tree(
            &[
                (
                    "/etc/sysconfig/network-scripts/ifcfg-eth0",
                    "DEVICE=eth0\nMASTER=bond0\nSLAVE=yes\nBOOTPROTO=none\n",
                ),
                (
                    "/etc/sysconfig/network-scripts/ifcfg-eth1",
                    "DEVICE=eth1\nBRIDGE=br0\n",
                ),
                (
                    "/etc/sysconfig/network-scripts/ifcfg-bond0",
                    "DEVICE=bond0\nTYPE=Bond\nBOOTPROTO=dhcp\n",
                ),
            ],
            &[],
        );
        let f = gather(&g);
        let c: Vec<(&str, Option<&str>)> = f
            .ifcfg
            .iter()
            .map(|i| {
                (
                    i.interface.as_str(),
                    i.controller.as_ref().map(|v| v.value.as_str()),
                )
            })
            .collect();
        assert_eq!(
            c,
            [
                ("bond0", None),
                ("eth0", Some("bond0")),
                ("eth1", Some("br0"))
            ]
        );
    }

    #[test]
    fn keyfile_names_nm_reads() {
        assert!(nm_keyfile_name_read("eth0.nmconnection", true));
        assert!(nm_keyfile_name_read("System eth0", false));
        assert!(!nm_keyfile_name_read("System eth0", true));
        for n in [
            ".x.nmconnection",
            "x~",
            "x.bak",
            "x.rej",
            "x.nmmeta",
            ".nmconnection",
        ] {
            assert!(!nm_keyfile_name_read(n, false), "{n}");
        }
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
