//! NET-xxx: networking — DHCP on the primary NIC, MAC-pinned and persistent naming artefacts,
//! interface names against `net.ifnames`, the SR-IOV VF kept away from NetworkManager,
//! Ubuntu installer leftovers, firewall rules against the platform addresses, and the old
//! waagent/NetworkManager package conflict. Judged on the network facts
//! (`vhdprep_guest::facts::system::network`), the cloud-init configuration and the effective
//! kernel command line.

use super::system::{os_name, read_small};
use super::Collector;
use crate::catalogue::{rule, RuleInfo};
use crate::context::Context;
use vhdprep_finding::{Finding, Severity};
use vhdprep_guest::facts::system::network::{NetworkFacts, IMDS, SRIOV_RULE, WIRESERVER};
use vhdprep_guest::facts::system::{LineRef, SystemFacts};

/// This area's catalogue entries.
pub const RULES: &[RuleInfo] = &[
    rule("NET-001", Severity::Error, "Primary NIC on DHCP", "The primary NIC (eth0, hn0, hvn0, or a configuration matching any NIC) must use DHCP and be brought up at boot: a static IPv4 configuration in ifcfg, NetworkManager, netplan, ifupdown, systemd-networkd or the BSD rc files, ONBOOT=no, STARTMODE=manual, autoconnect=false, or NM_CONTROLLED=no without the legacy network service leaves the VM unreachable. A warning when nothing configures the NIC and neither cloud-init nor NetworkManager (no-auto-default) will, or when unmanaged-devices takes in the NIC.", "[RHEL] ifcfg-eth0; [ORACLE]; [OPENBSD]; [NO-AGENT]")
        .deviating("The catalogue names static configurations (and ifcfg's ONBOOT=yes); vhdprep also reports NM_CONTROLLED=no without the legacy network service and NETWORKING=no without NetworkManager as errors, and warns when no DHCP configuration exists and neither cloud-init (networking enabled) nor NetworkManager (an automatic connection, unless no-auto-default covers the NIC) would bring the NIC up, or when unmanaged-devices takes in the synthetic NIC."),
    rule("NET-002", Severity::Warning, "No MAC-pinned NIC configuration", "No persistent-net udev rules (70-persistent-net.rules, 85-persistent-net-cloud-init.rules), an unmasked 75-persistent-net-generator.rules, HWADDR=/MACADDR= in ifcfg, or MAC matches in netplan, NetworkManager or networkd files not written by cloud-init: a VM's NIC has a new MAC.", "[SUSE] step 11; [ORACLE]; [WALA] osutil/default.py"),
    rule("NET-003", Severity::Warning, "Interface names match net.ifnames", "With net.ifnames=0 on the effective kernel command line the NIC is eth0; without it, configurations should not hard-code eth0. With it, configurations naming predictable names (ens*, enp*) never match.", "[GENERIC]; [RHEL]; [ORACLE]"),
    rule("NET-004", Severity::Info, "SR-IOV VF unmanaged by NetworkManager", "With NetworkManager, the accelerated-networking VF must be unmanaged: 68-azure-sriov-nm-unmanaged.rules (ENV{NM_UNMANAGED}=\"1\") or unmanaged-devices=driver:mlx4_core,driver:mlx5_core. A warning when accelerated networking is declared, information otherwise.", "[RHEL]; [CIV-AZURE] test_68_azure_sriov_nm_unmanaged_rules_file_content")
        .deviating("The catalogue warns whenever NetworkManager lacks the unmanaged-VF setting; vhdprep warns when accelerated networking is declared (--accelerated-networking) and states it as information otherwise."),
    rule("NET-005", Severity::Error, "No Ubuntu installer leftovers", "curtin/subiquity files in cloud.cfg.d, /etc/cloud/ds-identify.cfg and (on Ubuntu) /etc/netplan/*.yaml must be removed: a warning, an error when they disable cloud-init networking or leave Azure out of the datasource list.", "[UBUNTU]"),
    rule("NET-006", Severity::Warning, "Platform addresses not blocked", "No persistent firewall rule (iptables, nftables, firewalld) drops or rejects traffic to 168.63.129.16 (wire server) or 169.254.169.254 (IMDS); waagent's own rule pair (accept root, drop others) is allowed.", "[AGENT-DOC]; [NO-AGENT]"),
    rule("NET-007", Severity::Info, "waagent and NetworkManager", "On distributions older than RHEL/Oracle Linux 7 the waagent package conflicts with NetworkManager (the package may remove it).", "[GENERIC] Azure Linux Agent considerations; [ORACLE]"),
];

/// Names the primary Azure NIC has (Linux synthetic NIC, FreeBSD, OpenBSD).
const PRIMARY_NAMES: [&str; 3] = ["eth0", "hn0", "hvn0"];

/// What a configuration does with IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ipv4 {
    Dhcp,
    /// Static addresses.
    Static,
    /// No IPv4 address at all (disabled, or neither DHCP nor addresses).
    NoAddress,
    /// Something this module does not judge (ifupdown `manual`, unknown methods).
    Other,
}

/// One NIC configuration, in any format.
#[derive(Debug, Clone)]
struct NicConfig {
    /// The interface name or pattern it applies to; `None`: any NIC.
    iface: Option<String>,
    /// Bound to a MAC address (never matches a new VM's NIC).
    mac_pinned: bool,
    ipv4: Ipv4,
    /// What was seen (`iface eth0 inet static`).
    what: String,
    path: String,
    line: Option<usize>,
    /// How to make it DHCP.
    fix: &'static str,
    /// The configuration is not brought up at boot (`ONBOOT=no`, `STARTMODE=manual`,
    /// `autoconnect=false`): what says so, and its line.
    not_started: Option<(String, usize)>,
}

impl NicConfig {
    /// Applies to the primary NIC (its name, a pattern matching it, or any NIC).
    fn primary(&self) -> bool {
        !self.mac_pinned
            && self.iface.as_deref().is_none_or(|i| {
                i.split_whitespace()
                    .any(|p| PRIMARY_NAMES.iter().any(|n| glob(p, n)))
            })
    }
}

/// Shell-style glob with `*` and `?`.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    // Interface names are short; bound the recursion anyway.
    pattern.len() <= 64 && name.len() <= 64 && go(pattern.as_bytes(), name.as_bytes())
}

fn ifcfg_configs(n: &NetworkFacts, v: &mut Vec<NicConfig>) {
    // A port of a bond, bridge or team gets its address from that device's configuration.
    for f in n.ifcfg.iter().filter(|f| f.controller.is_none()) {
        let proto = f.bootproto.as_ref().map_or("none", |b| b.value.as_str());
        let proto_l = proto.to_ascii_lowercase();
        let ipv4 = if proto_l.starts_with("dhcp") || proto_l == "autoip" {
            Ipv4::Dhcp
        } else if f.ipaddr.is_some() {
            Ipv4::Static
        } else if matches!(proto_l.as_str(), "none" | "static" | "") {
            Ipv4::NoAddress
        } else {
            Ipv4::Other
        };
        let line = f.ipaddr.as_ref().or(f.bootproto.as_ref()).map(|x| x.line);
        let addr = f
            .ipaddr
            .as_ref()
            .map_or(String::new(), |a| format!(" IPADDR={}", a.value));
        // Red Hat: ONBOOT=no (initscripts and NetworkManager's ifcfg-rh: autoconnect off);
        // SUSE (wicked): STARTMODE=manual or off.
        let not_started = f.onboot.as_ref().and_then(|o| {
            let v = o.value.to_ascii_lowercase();
            let off = match f.flavor {
                "suse" => matches!(v.as_str(), "manual" | "off"),
                _ => matches!(v.as_str(), "no" | "false" | "n"),
            };
            let key = if f.flavor == "suse" {
                "STARTMODE"
            } else {
                "ONBOOT"
            };
            off.then(|| (format!("{key}={}", o.value), o.line))
        });
        v.push(NicConfig {
            iface: Some(f.interface.clone()),
            mac_pinned: false,
            ipv4,
            what: format!("BOOTPROTO={proto}{addr}"),
            path: f.path.clone(),
            line,
            fix: if f.flavor == "suse" {
                "set BOOTPROTO='dhcp' and STARTMODE='auto', and remove IPADDR/NETMASK"
            } else {
                "set BOOTPROTO=dhcp and ONBOOT=yes, and remove IPADDR/NETMASK/GATEWAY"
            },
            not_started,
        });
    }
}

/// The interface names a keyfile applies to: `[connection] interface-name`, else the
/// `[match] interface-name` list (`eth*;en*;`, negations `!x` left out), as one
/// blank-separated pattern list; `None`: any device of its type.
fn nm_interfaces(c: &vhdprep_guest::facts::system::network::NmConnection) -> Option<String> {
    if let Some(i) = &c.interface_name {
        return Some(i.value.clone());
    }
    let m = c.match_interface_name.as_ref()?;
    let pats: Vec<&str> = m
        .value
        .split(';')
        .map(|p| p.trim().trim_start_matches(['|', '&']))
        .filter(|p| !p.is_empty() && !p.starts_with('!'))
        .collect();
    // Only negations: any device but those, which still includes the primary NIC.
    (!pats.is_empty()).then(|| pats.join(" "))
}

fn nm_configs(n: &NetworkFacts, v: &mut Vec<NicConfig>) {
    for c in &n.nm_connections {
        // Only Ethernet profiles bring up the synthetic NIC (bond/bridge/vlan profiles name
        // their own devices; wifi, loopback and the like never match it).
        let ethernet = c
            .conn_type
            .as_ref()
            .is_none_or(|t| matches!(t.value.as_str(), "ethernet" | "802-3-ethernet"));
        if (!ethernet && c.interface_name.is_none()) || c.controller.is_some() {
            continue;
        }
        let method = c.ipv4_method.as_ref().map_or("auto", |m| m.value.as_str());
        let ipv4 = match method {
            "auto" => Ipv4::Dhcp,
            "manual" => Ipv4::Static,
            "disabled" | "link-local" => Ipv4::NoAddress,
            _ => Ipv4::Other,
        };
        let not_started = c.autoconnect.as_ref().and_then(|a| {
            matches!(
                a.value.to_ascii_lowercase().as_str(),
                "false" | "no" | "0" | "off"
            )
            .then(|| (format!("autoconnect={}", a.value), a.line))
        });
        v.push(NicConfig {
            iface: nm_interfaces(c),
            mac_pinned: c.mac_address.is_some(),
            ipv4,
            what: format!("[ipv4] method={method}"),
            path: c.path.clone(),
            line: c.ipv4_method.as_ref().map(|m| m.line),
            fix: "set method=auto in the [ipv4] section, remove the address lines and autoconnect=false (on a running build VM: nmcli connection modify <id> ipv4.method auto ipv4.addresses '' connection.autoconnect yes)",
            not_started,
        });
    }
}

fn netplan_configs(n: &NetworkFacts, v: &mut Vec<NicConfig>) {
    for f in &n.netplan {
        for i in f.interfaces.iter().filter(|i| i.kind == "ethernets") {
            let ipv4 = if i.dhcp4 == Some(true) {
                Ipv4::Dhcp
            } else if i.addresses > 0 {
                Ipv4::Static
            } else {
                Ipv4::NoAddress
            };
            let iface = i
                .match_name
                .clone()
                .or_else(|| (i.match_macaddress.is_none()).then(|| i.id.clone()));
            v.push(NicConfig {
                iface: iface.or_else(|| i.set_name.clone()),
                mac_pinned: i.match_macaddress.is_some(),
                ipv4,
                what: format!(
                    "ethernets.{}: dhcp4 {}, {} address(es)",
                    i.id,
                    i.dhcp4.map_or("unset".into(), |b| b.to_string()),
                    i.addresses
                ),
                path: f.path.clone(),
                line: None,
                fix: "set dhcp4: true and remove addresses/routes",
                not_started: None,
            });
        }
    }
}

fn ifupdown_configs(n: &NetworkFacts, v: &mut Vec<NicConfig>) {
    for s in n
        .interfaces
        .iter()
        .filter(|s| s.family == "inet" && s.method != "loopback")
    {
        let ipv4 = match s.method.as_str() {
            "dhcp" => Ipv4::Dhcp,
            "static" => Ipv4::Static,
            _ => Ipv4::Other,
        };
        v.push(NicConfig {
            iface: Some(s.interface.clone()),
            mac_pinned: false,
            ipv4,
            what: format!("iface {} inet {}", s.interface, s.method),
            path: s.path.clone(),
            line: Some(s.line),
            fix: "write `iface <nic> inet dhcp` and remove the address/netmask/gateway lines",
            not_started: None,
        });
    }
}

fn networkd_configs(n: &NetworkFacts, v: &mut Vec<NicConfig>) {
    for f in &n.networkd {
        // Files for other device types (wlan, containers' veth/host0) never match the NIC.
        let other_type = f
            .match_type
            .as_ref()
            .is_some_and(|t| !t.value.split_whitespace().any(|x| x == "ether"));
        if other_type || !f.match_other.is_empty() {
            continue;
        }
        let dhcp = f.dhcp.as_ref().map_or("no", |d| d.value.as_str());
        let ipv4 = if matches!(
            dhcp.to_ascii_lowercase().as_str(),
            "yes" | "true" | "ipv4" | "both" | "1" | "on"
        ) {
            Ipv4::Dhcp
        } else if f.addresses > 0 {
            Ipv4::Static
        } else {
            Ipv4::NoAddress
        };
        v.push(NicConfig {
            iface: f.match_name.as_ref().map(|m| m.value.clone()),
            mac_pinned: f.match_mac.is_some(),
            ipv4,
            what: format!("DHCP={dhcp}, {} Address=", f.addresses),
            path: f.path.clone(),
            line: f.dhcp.as_ref().map(|d| d.line),
            fix: "set DHCP=yes in [Network] and remove Address=",
            not_started: None,
        });
    }
}

fn bsd_configs(n: &NetworkFacts, v: &mut Vec<NicConfig>) {
    for l in &n.freebsd_ifconfig {
        let Some((key, value)) = l.text.split_once('=') else {
            continue;
        };
        let iface = key.trim().trim_start_matches("ifconfig_");
        if iface.contains('_') {
            continue; // ifconfig_hn0_ipv6, ifconfig_hn0_alias0
        }
        let value = value.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
        let ipv4 = if value.contains("dhcp") {
            Ipv4::Dhcp
        } else if value.contains("inet ") {
            Ipv4::Static
        } else {
            Ipv4::Other
        };
        v.push(NicConfig {
            iface: Some(iface.to_string()),
            mac_pinned: false,
            ipv4,
            what: l.text.clone(),
            path: l.path.clone(),
            line: Some(l.line),
            fix: "set ifconfig_<nic>=\"DHCP\" in /etc/rc.conf",
            not_started: None,
        });
    }
    for l in &n.openbsd_hostname_if {
        let iface = l.path.rsplit_once("hostname.").map_or("", |x| x.1);
        let first = l.text.to_ascii_lowercase();
        let ipv4 = if first.starts_with("dhcp") || first.starts_with("inet autoconf") {
            Ipv4::Dhcp
        } else if first.starts_with("inet ") {
            Ipv4::Static
        } else {
            Ipv4::Other
        };
        v.push(NicConfig {
            iface: Some(iface.to_string()),
            mac_pinned: false,
            ipv4,
            what: l.text.clone(),
            path: l.path.clone(),
            line: Some(l.line),
            fix: "write `dhcp` (or `inet autoconf`) as the only line of /etc/hostname.<nic>",
            not_started: None,
        });
    }
}

/// Every NIC configuration of the guest.
fn nic_configs(n: &NetworkFacts) -> Vec<NicConfig> {
    let mut v = Vec::new();
    ifcfg_configs(n, &mut v);
    nm_configs(n, &mut v);
    netplan_configs(n, &mut v);
    ifupdown_configs(n, &mut v);
    networkd_configs(n, &mut v);
    bsd_configs(n, &mut v);
    v
}

fn at(f: Finding, path: &str, line: Option<usize>) -> Finding {
    f.at_guest(path.to_string(), line)
}

fn place(path: &str, line: Option<usize>) -> String {
    line.map_or(path.to_string(), |l| format!("{path}:{l}"))
}

/// Evaluates NET-001..007.
pub fn evaluate(ctx: &Context, out: &mut Collector) {
    let Some(sys) = &ctx.system else {
        return;
    };
    let configs = nic_configs(&sys.network);
    dhcp(ctx, sys, &configs, out);
    mac_pinning(sys, out);
    naming(ctx, &configs, out);
    sriov(ctx, sys, out);
    installer_leftovers(ctx, sys, out);
    firewall(sys, out);
    nm_conflict(ctx, sys, out);
}

// ---- NET-001 ------------------------------------------------------------------------------

fn dhcp(ctx: &Context, sys: &SystemFacts, configs: &[NicConfig], out: &mut Collector) {
    const ID: &str = "NET-001";
    out.evaluated(ID);
    let primary: Vec<&NicConfig> = configs.iter().filter(|c| c.primary()).collect();
    for c in primary
        .iter()
        .filter(|c| matches!(c.ipv4, Ipv4::Static | Ipv4::NoAddress))
    {
        let what = match c.ipv4 {
            Ipv4::Static => "a static IPv4 address",
            _ => "no IPv4 address",
        };
        let nic = c.iface.as_deref().unwrap_or("every NIC");
        out.push(at(
            Finding::new(ID, Severity::Error, format!("{} gives {nic} {what} instead of DHCP: Azure assigns the address by DHCP and the VM would be unreachable", c.path))
                .with_evidence(format!("{}: {}", place(&c.path, c.line), c.what))
                .with_remediation(c.fix),
            &c.path,
            c.line,
        ));
    }
    // A DHCP configuration that is not brought up at boot matters only when no other one
    // for the primary NIC is (a disabled profile beside the active one is harmless).
    let started_dhcp = primary
        .iter()
        .any(|c| c.ipv4 == Ipv4::Dhcp && c.not_started.is_none());
    for c in primary
        .iter()
        .filter(|c| c.ipv4 == Ipv4::Dhcp && !started_dhcp)
    {
        let Some((what, line)) = &c.not_started else {
            continue;
        };
        let nic = c.iface.as_deref().unwrap_or("every NIC");
        out.push(at(
            Finding::new(ID, Severity::Error, format!("{} configures DHCP for {nic} but does not bring it up at boot ({what}): the VM would be unreachable", c.path))
                .with_evidence(format!("{}: {what}; {}", place(&c.path, Some(*line)), c.what))
                .with_remediation(c.fix),
            &c.path,
            Some(*line),
        ));
    }
    redhat_service(sys, out);
    if started_dhcp {
        return;
    }
    let cloud_init_net = ctx.agents.as_ref().is_some_and(|a| {
        a.cloud_init.runs_at_boot && a.cloud_init.config.network_config_disabled.is_none()
    });
    // NetworkManager brings up an unconfigured Ethernet NIC with DHCP ("Wired connection 1")
    // unless no-auto-default covers it, as RHEL's 00-server.conf does with `*`.
    let n = &sys.network;
    let no_auto_default = nm_effective(&n.nm_no_auto_default, "no-auto-default")
        .unwrap_or_default()
        .into_iter()
        .find_map(|l| catches_primary(&l.text).map(|spec| (l, spec)));
    let nm_auto = n.network_manager.is_some() && no_auto_default.is_none();
    if primary.is_empty() && !cloud_init_net && !nm_auto {
        let (nm, mut evidence) = match no_auto_default.filter(|_| n.network_manager.is_some()) {
            Some((l, spec)) => (
                format!(
                    "NetworkManager makes no automatic connection for it (no-auto-default={spec})"
                ),
                format!("; {}:{}: {}", l.path, l.line, l.text),
            ),
            None => ("NetworkManager is not installed".to_string(), String::new()),
        };
        evidence.insert_str(0, "no ifcfg, netplan, ifupdown, systemd-networkd or NetworkManager configuration for eth0");
        out.push(
            Finding::new(ID, Severity::Warning, format!("nothing configures the primary NIC: no DHCP configuration for eth0, cloud-init does not write one (not running, or its networking is disabled) and {nm}"))
                .with_evidence(evidence)
                .with_remediation(format!("add a DHCP configuration for eth0: {}; or let cloud-init configure networking", ctx.family().dhcp_config_hint("eth0"))),
        );
    }
}

/// The lines that make up the effective value of a NetworkManager list key, given its lines in
/// the order NetworkManager reads them: the last plain `key=` and the `key+=` after it;
/// `None` when a `key-=` removes entries (not judged).
fn nm_effective<'a>(lines: &'a [LineRef], key: &str) -> Option<Vec<&'a LineRef>> {
    let mut out = Vec::new();
    for l in lines {
        let Some((k, _)) = l.text.split_once('=') else {
            continue;
        };
        match k.trim().strip_prefix(key).map(str::trim) {
            Some("") => out = vec![l],
            Some("+") => out.push(l),
            Some("-") => return None,
            _ => {}
        }
    }
    Some(out)
}

/// The entry of a NetworkManager device list (`unmanaged-devices=`, `no-auto-default=`) that
/// takes in the primary NIC (`*`, `interface-name:eth0` or a glob matching it, `driver:hv_netvsc`); `None`
/// when the list has `except:` entries (not judged) or nothing matching.
fn catches_primary(line: &str) -> Option<String> {
    let value = line.split_once('=')?.1;
    let specs: Vec<&str> = value
        .split([';', ','])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect();
    if specs.iter().any(|x| x.starts_with("except:")) {
        return None;
    }
    specs
        .iter()
        .find(|x| {
            let name = x
                .strip_prefix("interface-name:")
                .map(|n| n.trim_start_matches(['=', '~']));
            **x == "*"
                || **x == "driver:hv_netvsc"
                || name.is_some_and(|n| PRIMARY_NAMES.iter().any(|p| glob(n, p)))
        })
        .map(|x| x.to_string())
}

/// Red Hat's two network services: an ifcfg file NetworkManager is told to leave alone
/// (`NM_CONTROLLED=no`) with no legacy `network` service to bring it up, and
/// `NETWORKING=no` for the legacy service with no NetworkManager.
fn redhat_service(sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "NET-001";
    let n = &sys.network;
    if n.network_manager.is_some() {
        for l in nm_effective(&n.nm_unmanaged_devices, "unmanaged-devices").unwrap_or_default() {
            let Some(spec) = catches_primary(&l.text) else {
                continue;
            };
            out.push(at(
                Finding::new(ID, Severity::Warning, format!("{} tells NetworkManager to leave the synthetic NIC unmanaged ({spec}): unless another network service configures eth0, the VM is unreachable", l.path))
                    .with_evidence(format!("{}:{}: {}", l.path, l.line, l.text))
                    .with_remediation("unmanage only the accelerated-networking VF: unmanaged-devices=driver:mlx4_core;driver:mlx5_core (or the 68-azure-sriov-nm-unmanaged.rules udev rule)"),
                &l.path,
                Some(l.line),
            ));
        }
    }
    if n.network_manager.is_some() && n.network_scripts_service.is_none() {
        for f in n
            .ifcfg
            .iter()
            .filter(|f| f.flavor == "redhat" && PRIMARY_NAMES.contains(&f.interface.as_str()))
        {
            let Some(nm) = f
                .nm_controlled
                .as_ref()
                .filter(|v| matches!(v.value.to_ascii_lowercase().as_str(), "no" | "n" | "false"))
            else {
                continue;
            };
            out.push(at(
                Finding::new(ID, Severity::Error, format!("{} tells NetworkManager to leave {} unmanaged (NM_CONTROLLED={}), and the legacy network service that would bring it up is not installed: the VM would be unreachable", f.path, f.interface, nm.value))
                    .with_evidence(format!("{}:{}: NM_CONTROLLED={}; NetworkManager installed; no /etc/rc.d/init.d/network", f.path, nm.line, nm.value))
                    .with_remediation(format!("set NM_CONTROLLED=yes in {} (or delete the line)", f.path)),
                &f.path,
                Some(nm.line),
            ));
        }
    }
    if let (Some(sc), Some(svc), None) = (
        &n.sysconfig_network,
        &n.network_scripts_service,
        &n.network_manager,
    ) {
        if let Some(v) = sc
            .networking
            .as_ref()
            .filter(|v| v.value.eq_ignore_ascii_case("no"))
        {
            out.push(at(
                Finding::new(ID, Severity::Error, format!("{} sets NETWORKING=no: the network service ({}) brings no interface up and NetworkManager is not installed, so the VM would be unreachable", sc.path, svc.path))
                    .with_evidence(format!("{}:{}: NETWORKING={}", sc.path, v.line, v.value))
                    .with_remediation(format!("set NETWORKING=yes in {}", sc.path)),
                &sc.path,
                Some(v.line),
            ));
        }
    }
}

// ---- NET-002 ------------------------------------------------------------------------------

fn is_cloud_init_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "50-cloud-init.yaml"
        || name.starts_with("cloud-init-")
        || name.starts_with("10-cloud-init-")
}

/// MAC-address matches in NIC configurations not written by cloud-init: (path, line, what).
fn mac_matches(n: &NetworkFacts) -> Vec<(String, Option<usize>, String)> {
    let mut pinned = Vec::new();
    for f in &n.ifcfg {
        for (k, val) in [("HWADDR", &f.hwaddr), ("MACADDR", &f.macaddr)] {
            if let Some(x) = val {
                pinned.push((f.path.clone(), Some(x.line), format!("{k}={}", x.value)));
            }
        }
    }
    for f in n.netplan.iter().filter(|f| !is_cloud_init_file(&f.path)) {
        for i in &f.interfaces {
            if let Some(m) = &i.match_macaddress {
                pinned.push((
                    f.path.clone(),
                    None,
                    format!("{}: match: macaddress: {m}", i.id),
                ));
            }
        }
    }
    for c in n.nm_connections.iter().filter(|c| !c.cloud_init) {
        if let Some(m) = &c.mac_address {
            pinned.push((
                c.path.clone(),
                Some(m.line),
                format!("mac-address={}", m.value),
            ));
        }
    }
    for f in n.networkd.iter().filter(|f| !is_cloud_init_file(&f.path)) {
        if let Some(m) = &f.match_mac {
            pinned.push((
                f.path.clone(),
                Some(m.line),
                format!("[Match] MACAddress={}", m.value),
            ));
        }
    }
    pinned
}

fn mac_pinning(sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "NET-002";
    out.evaluated(ID);
    let n = &sys.network;
    for l in sys
        .generalization
        .leftovers
        .iter()
        .filter(|l| l.item == "persistent-net-rules")
    {
        out.push(
            Finding::new(ID, Severity::Warning, format!("{} pins interface names to the build machine's MAC addresses: a VM's NIC gets another name (eth1) and no configuration", l.fact.path))
                .with_evidence(format!("{}: {} bytes", l.fact.path, l.fact.size))
                .with_remediation(format!("rm -f {}", l.fact.path))
                .at_guest(l.fact.path.clone(), None),
        );
    }
    if let Some(g) = &n.persistent_net_generator {
        if !sys.generalization.persistent_net_generator_masked {
            out.push(
                Finding::new(ID, Severity::Warning, "udev's persistent-net generator is active: at first boot it writes 70-persistent-net.rules pinning eth0 to that VM's MAC, so images made from it lose their network")
                    .with_evidence(format!("{} present; /etc/udev/rules.d/75-persistent-net-generator.rules does not mask it", g.path))
                    .with_remediation("ln -s /dev/null /etc/udev/rules.d/75-persistent-net-generator.rules")
                    .at_guest(g.path.clone(), None),
            );
        }
    }
    for (path, line, what) in mac_matches(n) {
        out.push(at(
            Finding::new(ID, Severity::Warning, format!("{path} binds a NIC configuration to the build machine's MAC address, which no VM has"))
                .with_evidence(format!("{}: {what}", place(&path, line)))
                .with_remediation("remove the MAC address line (match the NIC by name, or not at all)"),
            &path,
            line,
        ));
    }
}

// ---- NET-003 ------------------------------------------------------------------------------

/// A predictable (systemd/udev) interface name: `ens3`, `enp0s3`, `eno1`, `enx...`.
fn predictable_name(name: &str) -> bool {
    ["ens", "enp", "eno", "enx"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_alphanumeric()))
    })
}

fn naming(ctx: &Context, configs: &[NicConfig], out: &mut Collector) {
    const ID: &str = "NET-003";
    let named: Vec<(&NicConfig, &str)> = configs
        .iter()
        .filter_map(|c| Some((c, c.iface.as_deref()?)))
        .filter(|(_, n)| !n.contains(['*', '?', ' ']))
        .collect();
    let eth: Vec<_> = named.iter().filter(|(_, n)| n.starts_with("eth")).collect();
    let pred: Vec<_> = named.iter().filter(|(_, n)| predictable_name(n)).collect();
    if eth.is_empty() && pred.is_empty() {
        out.evaluated(ID);
        return;
    }
    let Some(cmdline) = ctx
        .kernel
        .as_ref()
        .and_then(|k| k.cmdlines.effective.as_ref())
    else {
        out.skip(
            ID,
            "the kernel command line was not found, so the interface naming scheme is unknown",
        );
        return;
    };
    out.evaluated(ID);
    let ifnames0 = cmdline.value("net.ifnames").last() == Some(&"0");
    let add_ifnames = ctx.family().kernel_args_command("net.ifnames=0");
    let (hits, message, fix) = if ifnames0 {
        (pred, "the kernel command line sets net.ifnames=0, so the NIC is eth0, but this configuration names", "configure eth0 instead".to_string())
    } else {
        (eth, "the kernel command line does not set net.ifnames=0, so udev may give the NIC a predictable name, but this configuration hard-codes", add_ifnames)
    };
    for (c, name) in hits {
        out.push(at(
            Finding::new(
                ID,
                Severity::Warning,
                format!("{message} {name} ({})", c.path),
            )
            .with_evidence(format!(
                "{}: {}; kernel command line: {}",
                place(&c.path, c.line),
                c.what,
                cmdline.raw
            ))
            .with_remediation(fix.clone()),
            &c.path,
            c.line,
        ));
    }
}

// ---- NET-004 ------------------------------------------------------------------------------

fn sriov(ctx: &Context, sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "NET-004";
    out.evaluated(ID);
    let n = &sys.network;
    let Some(nm) = &n.network_manager else {
        return; // Nothing would manage the VF.
    };
    if n.sriov_udev_rule.is_some() && n.sriov_nm_unmanaged {
        return;
    }
    let drivers = |d: &str| {
        n.nm_unmanaged_devices
            .iter()
            .any(|l| l.text.contains(&format!("driver:{d}")))
    };
    let (mlx4, mlx5) = (drivers("mlx4_core"), drivers("mlx5_core"));
    if mlx4 && mlx5 {
        return;
    }
    let sev = if ctx.policy.accelerated_networking {
        Severity::Warning
    } else {
        Severity::Info
    };
    let declared = if ctx.policy.accelerated_networking {
        "accelerated networking is declared"
    } else {
        "if the image is used with accelerated networking"
    };
    let mut seen = vec![format!("{} installed", nm.path)];
    seen.push(match &n.sriov_udev_rule {
        Some(_) => format!("{SRIOV_RULE} lacks ENV{{NM_UNMANAGED}}=\"1\""),
        None => format!("no {SRIOV_RULE}"),
    });
    seen.extend(
        n.nm_unmanaged_devices
            .iter()
            .map(|l| format!("{}:{}: {}", l.path, l.line, l.text)),
    );
    out.push(
        Finding::new(ID, sev, format!("NetworkManager would manage the SR-IOV virtual function ({declared}): it must be left to the synthetic NIC it is bonded with"))
            .with_evidence(seen.join("; "))
            .with_remediation(format!("printf '%s\\n' 'SUBSYSTEM==\"net\", DRIVERS==\"hv_pci\", ACTION!=\"remove\", ENV{{NM_UNMANAGED}}=\"1\"' > {SRIOV_RULE}")),
    );
}

// ---- NET-005 ------------------------------------------------------------------------------

/// A `datasource`/`ci.ds` line of ds-identify.cfg that names datasources without Azure.
fn ds_identify_excludes_azure(text: &str) -> Option<(usize, String)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let t = l.trim();
        let value = ["datasource:", "ci.ds=", "ci.datasource="]
            .iter()
            .find_map(|k| t.strip_prefix(k))?;
        (!value.contains("Azure")).then(|| (i + 1, t.to_string()))
    })
}

fn installer_leftovers(ctx: &Context, sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "NET-005";
    let Some(a) = &ctx.agents else {
        return;
    };
    out.evaluated(ID);
    let cfg = &a.cloud_init.config;
    for p in &cfg.installer_leftovers {
        let disables = cfg
            .network_config_disabled
            .as_ref()
            .filter(|e| e.path == *p);
        let excludes = cfg
            .datasource_list
            .as_ref()
            .filter(|d| d.evidence.path == *p && !d.value.iter().any(|x| x == "Azure"))
            .map(|d| &d.evidence)
            .or_else(|| {
                cfg.ds_identify_datasource_list
                    .as_ref()
                    .filter(|d| {
                        d.evidence.path == *p
                            && d.list
                                .as_ref()
                                .is_some_and(|l| !l.iter().any(|x| x == "Azure"))
                    })
                    .map(|d| &d.evidence)
            });
        let (sev, effect, ev) = match (disables, excludes) {
            (Some(e), _) => (
                Severity::Error,
                "it disables cloud-init networking",
                Some(e),
            ),
            (None, Some(e)) => (
                Severity::Error,
                "it leaves Azure out of cloud-init's datasource list",
                Some(e),
            ),
            (None, None) => (
                Severity::Warning,
                "it carries the installer's view of the build machine",
                None,
            ),
        };
        let evidence = ev.map_or(format!("{p} exists"), |e| {
            format!(
                "{}{}: {}",
                e.path,
                e.line.map_or(String::new(), |l| format!(":{l}")),
                e.detail
            )
        });
        out.push(
            Finding::new(
                ID,
                sev,
                format!("the installer leftover {p} is still in the image: {effect}"),
            )
            .with_evidence(evidence)
            .with_remediation(format!("rm -f {p}"))
            .at_guest(p.clone(), ev.and_then(|e| e.line)),
        );
    }
    if let Some(p) = &cfg.ds_identify_cfg {
        let text = read_small(ctx, p).unwrap_or_default();
        let (sev, effect, line) = match ds_identify_excludes_azure(&text) {
            Some((l, t)) => (
                Severity::Error,
                format!("it restricts datasource detection to something other than Azure ({t})"),
                Some(l),
            ),
            None => (
                Severity::Warning,
                "it overrides cloud-init's datasource detection".to_string(),
                None,
            ),
        };
        out.push(
            Finding::new(ID, sev, format!("{p} is still in the image: {effect}"))
                .with_evidence(format!("{}: {} bytes", place(p, line), text.len()))
                .with_remediation(format!("rm -f {p}"))
                .at_guest(p.clone(), line),
        );
    }
    let ubuntu = ctx.os_is("ubuntu");
    for f in sys
        .network
        .netplan
        .iter()
        .filter(|f| f.path.starts_with("/etc/netplan/"))
    {
        let name = f.path.rsplit('/').next().unwrap_or("");
        if !(ubuntu || name.starts_with("00-installer-config")) {
            continue;
        }
        out.push(
            Finding::new(ID, Severity::Warning, format!("{} is a netplan file from the build (cloud-init writes the VM's own at first boot)", f.path))
                .with_evidence(format!("{}: {} interface(s)", f.path, f.interfaces.len()))
                .with_remediation(format!("rm -f {}", f.path))
                .at_guest(f.path.clone(), None),
        );
    }
}

// ---- NET-006 ------------------------------------------------------------------------------

/// The line drops or rejects (iptables `-j DROP`, nftables `drop`, firewalld `<drop/>`).
fn blocks(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == "drop" || w == "reject")
}

/// waagent's own pair: root may reach the address (`--uid-owner 0`, nft `skuid 0`), others not.
fn root_accepted(lines: &[&LineRef], addr: &str) -> bool {
    lines.iter().any(|l| {
        let t = l.text.to_ascii_lowercase();
        t.contains(addr)
            && (t.contains("accept"))
            && (t.contains("--uid-owner 0") || t.contains("skuid 0") || t.contains("skuid root"))
    })
}

fn firewall(sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "NET-006";
    out.evaluated(ID);
    let lines = &sys.network.firewall_mentions;
    for l in lines.iter().filter(|l| blocks(&l.text)) {
        let addr = if l.text.contains(WIRESERVER) {
            WIRESERVER
        } else {
            IMDS
        };
        let same_file: Vec<&LineRef> = lines.iter().filter(|x| x.path == l.path).collect();
        if root_accepted(&same_file, addr) {
            continue;
        }
        let what = if addr == WIRESERVER {
            "the wire server: the agent cannot report ready, and provisioning and extensions fail"
        } else {
            "the instance metadata service: cloud-init and the agent cannot read the VM's metadata"
        };
        out.push(
            Finding::new(ID, Severity::Warning, format!("{} blocks {addr}, {what}", l.path))
                .with_evidence(format!("{}:{}: {}", l.path, l.line, l.text))
                .with_remediation(format!("delete line {} of {} (allow {addr}; waagent's OS.EnableFirewall=y protects the wire server from non-root users itself)", l.line, l.path))
                .at_guest(l.path.clone(), Some(l.line)),
        );
    }
}

// ---- NET-007 ------------------------------------------------------------------------------

fn nm_conflict(ctx: &Context, sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "NET-007";
    let Some(a) = &ctx.agents else {
        return;
    };
    out.evaluated(ID);
    let Some(nm) = &sys.network.network_manager else {
        return;
    };
    if !a.waagent.installed {
        return;
    }
    let rhel_like = ["rhel", "centos", "ol", "fedora"]
        .iter()
        .any(|f| ctx.os_is(f));
    let Some(os) = ctx.os.as_ref().filter(|_| rhel_like) else {
        return;
    };
    let version = os.version_id.as_deref().unwrap_or("");
    let major: Option<u32> = version.split('.').next().and_then(|m| m.parse().ok());
    if ctx.os_is("fedora") || major.is_none_or(|m| m >= 7) {
        return;
    }
    out.push(
        Finding::new(ID, Severity::Info, format!("on {}, the WALinuxAgent package conflicts with NetworkManager (installing it may remove NetworkManager); RHEL and Oracle Linux 7 and later are fine", os_name(ctx)))
            .with_evidence(format!("{} installed; /etc/os-release VERSION_ID={version}", nm.path))
            .with_remediation("use the distribution's network service (network/ifcfg with BOOTPROTO=dhcp) and remove NetworkManager before installing WALinuxAgent"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_names() {
        assert!(glob("eth*", "eth0") && glob("e?h0", "eth0") && glob("*", "hn0"));
        assert!(!glob("en*", "eth0") && !glob("eth1", "eth0"));
        assert!(!glob(&"*".repeat(100), "eth0"), "bounded");
        assert!(
            predictable_name("ens3")
                && predictable_name("enp0s3")
                && predictable_name("enx001122334455")
        );
        assert!(
            !predictable_name("eth0") && !predictable_name("enP1s1") && !predictable_name("ens")
        );
    }

    #[test]
    fn later_nm_keys_override_earlier_ones() {
        let l = |t: &str, n| LineRef {
            path: "/x.conf".into(),
            line: n,
            text: t.into(),
        };
        let lines = [
            l("no-auto-default=*", 1),
            l("no-auto-default=", 2),
            l("no-auto-default+=mac:00:11:22:33:44:55", 3),
            l("no-auto-default-x=1", 4),
        ];
        let e = nm_effective(&lines, "no-auto-default").unwrap();
        assert_eq!(e.iter().map(|l| l.line).collect::<Vec<_>>(), [2, 3]);
        assert!(e.iter().all(|l| catches_primary(&l.text).is_none()));
        let lines = [l("unmanaged-devices=*", 1), l("unmanaged-devices-=*", 2)];
        assert!(nm_effective(&lines, "unmanaged-devices").is_none());
    }

    #[test]
    fn unmanaged_devices_that_catch_the_nic() {
        assert_eq!(catches_primary("unmanaged-devices=*").as_deref(), Some("*"));
        assert_eq!(
            catches_primary("unmanaged-devices=interface-name:eth*;mac:00:11:22:33:44:55")
                .as_deref(),
            Some("interface-name:eth*")
        );
        assert!(catches_primary("unmanaged-devices=driver:hv_netvsc").is_some());
        assert!(catches_primary("unmanaged-devices=interface-name:=eth0").is_some());
        assert!(catches_primary("unmanaged-devices=driver:mlx4_core;driver:mlx5_core").is_none());
        assert!(catches_primary("unmanaged-devices=*,except:interface-name:eth0").is_none());
        assert!(catches_primary("unmanaged-devices=interface-name:eth1").is_none());
    }

    #[test]
    fn keyfile_match_lists() {
        use vhdprep_guest::facts::system::network::parse_nm_keyfile;
        let k = |t: &str| nm_interfaces(&parse_nm_keyfile("/x.nmconnection", t));
        assert_eq!(
            k("[connection]\ninterface-name=eth0\n[match]\ninterface-name=x\n").as_deref(),
            Some("eth0")
        );
        assert_eq!(
            k("[match]\ninterface-name=eth*;en*;\n").as_deref(),
            Some("eth* en*")
        );
        assert_eq!(
            k("[match]\ninterface-name=eth*;!eth1;\n").as_deref(),
            Some("eth*")
        );
        assert_eq!(
            k("[match]\ninterface-name=!eth1;\n"),
            None,
            "any device but eth1"
        );
        assert_eq!(k("[connection]\ntype=ethernet\n"), None);
        // A wifi or loopback profile without a device name never brings up the NIC.
        let mut v = Vec::new();
        let mut n = NetworkFacts::default();
        n.nm_connections.push(parse_nm_keyfile(
            "/w",
            "[connection]\ntype=wifi\n[ipv4]\nmethod=disabled\n",
        ));
        n.nm_connections.push(parse_nm_keyfile(
            "/e",
            "[connection]\ntype=ethernet\nautoconnect=no\n",
        ));
        nm_configs(&n, &mut v);
        assert_eq!(v.len(), 1);
        assert!(v[0].primary() && v[0].ipv4 == Ipv4::Dhcp);
        assert_eq!(v[0].not_started, Some(("autoconnect=no".to_string(), 3)));
    }

    #[test]
    fn blocking_lines() {
        assert!(blocks(
            "-A OUTPUT -d 168.63.129.16/32 -p tcp -m conntrack --ctstate INVALID,NEW -j DROP"
        ));
        assert!(blocks("ip daddr 169.254.169.254 reject"));
        assert!(blocks(
            "<rule><destination address=\"169.254.169.254\"/><drop/></rule>"
        ));
        assert!(!blocks(
            "-A OUTPUT -d 168.63.129.16/32 -p tcp -m owner --uid-owner 0 -j ACCEPT"
        ));
        assert!(!blocks(
            "-A OUTPUT -d 168.63.129.16/32 -j ACCEPT -m comment --comment dropbox"
        ));
    }

    #[test]
    fn ds_identify() {
        assert_eq!(ds_identify_excludes_azure("policy: enabled\n"), None);
        assert_eq!(
            ds_identify_excludes_azure("datasource: NoCloud\n")
                .unwrap()
                .0,
            1
        );
        assert_eq!(ds_identify_excludes_azure("# x\ndatasource: Azure\n"), None);
    }
}
