//! NET, AGENT and SYS rules on Red Hat and SUSE layouts: the Debian fixture changed with
//! debugfs into what Azure's RHEL 9 and SLES 15 guides prepare (os-release, ifcfg or a
//! NetworkManager keyfile written by nmcli, /etc/sysconfig/network, the SR-IOV udev rule,
//! the upstream waagent.conf, unit and cloud.cfg the rpm packages install with the guides'
//! edits, SELinux, chrony with the Hyper-V PTP clock), then broken one thing at a time.
//!
//! The upstream files are the copies in crates/guest/tests/data/upstream (see its README).

mod common;

use common::*;
use std::process::Command;
use vhdprep_check::{Report, Severity};

const UPSTREAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest/tests/data/upstream");

fn upstream(path: &str) -> String {
    std::fs::read_to_string(format!("{UPSTREAM}/{path}"))
        .unwrap_or_else(|e| panic!("{UPSTREAM}/{path}: {e}"))
}

/// `sed -i 's/A/B/'` as the guides run it; the pattern must be in the file.
fn sed(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from} is not in the upstream file");
    text.replacen(from, to, 1)
}

const RHEL_OS_RELEASE: &str = "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.4 (Plow)\"\nANSI_COLOR=\"0;31\"\n";
const SLES_OS_RELEASE: &str = "NAME=\"SLES\"\nVERSION=\"15-SP5\"\nVERSION_ID=\"15.5\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP5\"\nID=\"sles\"\nID_LIKE=\"suse\"\nANSI_COLOR=\"0;32\"\nCPE_NAME=\"cpe:/o:suse:sles:15:sp5\"\n";

/// The ifcfg-eth0 of Azure's RHEL guide.
const IFCFG_ETH0: &str = "DEVICE=eth0\nONBOOT=yes\nBOOTPROTO=dhcp\nTYPE=Ethernet\nUSERCTL=no\nPEERDNS=yes\nIPV6INIT=no\nPERSISTENT_DHCLIENT=yes\nNM_CONTROLLED=yes\n";
/// The udev rule of Azure's RHEL guide that keeps NetworkManager off the VF.
const SRIOV: &str = "# Accelerated Networking on Azure exposes a new SRIOV interface to the VM.\n# This interface is transparently bonded to the synthetic interface,\n# so NetworkManager should just ignore any SRIOV interfaces.\nSUBSYSTEM==\"net\", DRIVERS==\"hv_pci\", ACTION==\"add\", ENV{NM_UNMANAGED}=\"1\"\n";
/// The guides' cloud-init datasource file.
const AZURE_DATASOURCE: &str =
    "datasource_list: [ Azure ]\ndatasource:\n    Azure:\n        apply_network_config: False\n";
const CHRONY: &str = "pool 2.rhel.pool.ntp.org iburst\nsourcedir /run/chrony-dhcp\ndriftfile /var/lib/chrony/drift\nmakestep 1.0 3\nrtcsync\nkeyfile /etc/chrony.keys\nntsdumpdir /var/lib/chrony\nleapsectz right/UTC\nlogdir /var/log/chrony\nrefclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0\n";
/// A stand-in for the NetworkManager daemon: only its presence is judged.
const NM_BINARY: &[u8] = b"\x7fELF\x02\x01\x01\x00NetworkManager";

/// A keyfile written by NetworkManager's nmcli (`--offline`, NetworkManager >= 1.40).
fn nmcli(args: &[&str]) -> String {
    run(
        Command::new("nmcli")
            .args(["--offline", "connection", "add"])
            .args(args),
        "network-manager",
    )
}

/// The parts common to both families: the agents as the rpm packages install them (the
/// Debian package's unit removed), chrony with the PTP clock, and no Debian network file.
fn rpm_agents(v: &mut Variant, conf: &str, unit: &str, cloud_cfg: &str) {
    v.write("/etc/network/interfaces", "")
        .write("/etc/waagent.conf", conf)
        .write("/usr/lib/systemd/system/waagent.service", unit)
        .remove("/etc/systemd/system/multi-user.target.wants/walinuxagent.service")
        .remove("/lib/systemd/system/walinuxagent.service")
        .symlink(
            "/etc/systemd/system/multi-user.target.wants/waagent.service",
            "/usr/lib/systemd/system/waagent.service",
        )
        .write("/etc/cloud/cloud.cfg", cloud_cfg)
        .write("/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg", AZURE_DATASOURCE)
        .write("/etc/chrony.conf", CHRONY)
        .write("/usr/lib/systemd/system/chronyd.service", "[Unit]\nDescription=NTP client/server\n[Service]\nExecStart=/usr/sbin/chronyd\n[Install]\nWantedBy=multi-user.target\n")
        .symlink(
            "/etc/systemd/system/multi-user.target.wants/chronyd.service",
            "/usr/lib/systemd/system/chronyd.service",
        );
}

/// RHEL 9 as Azure's guide prepares it; `keyfile`: eth0 by a NetworkManager keyfile (RHEL
/// 9's default) rather than an ifcfg file.
fn rhel(keyfile: bool) -> Variant {
    let mut v = Variant::of("gen2-gpt-ext4");
    let conf = upstream("WALinuxAgent-2.9.1.1/config/waagent.conf");
    let conf = sed(
        &conf,
        "Provisioning.Agent=auto",
        "Provisioning.Agent=cloud-init",
    );
    let conf = sed(&conf, "ResourceDisk.Format=y", "ResourceDisk.Format=n");
    rpm_agents(
        &mut v,
        &conf,
        &upstream("WALinuxAgent-2.9.1.1/init/redhat/waagent.service"),
        &upstream("cloud-init-23.4-rhel/cloud.cfg"),
    );
    v.write("/etc/os-release", RHEL_OS_RELEASE)
        .write("/usr/sbin/NetworkManager", NM_BINARY)
        .write("/etc/udev/rules.d/68-azure-sriov-nm-unmanaged.rules", SRIOV)
        .write(
            "/etc/sysconfig/network",
            "NETWORKING=yes\nHOSTNAME=localhost.localdomain\n",
        )
        .write(
            "/etc/selinux/config",
            include_str!("../../guest/tests/data/distro/rhel9-selinux-config"),
        )
        .write(
            "/etc/selinux/targeted/policy/policy.33",
            b"\x8c\xff\x7c\xf9SE Linux",
        )
        .write(
            "/etc/cloud/cloud.cfg.d/05_logging.cfg",
            upstream("cloud-init-23.4-rhel/cloud.cfg.d/05_logging.cfg"),
        );
    if keyfile {
        let k = nmcli(&[
            "type",
            "ethernet",
            "con-name",
            "eth0",
            "ifname",
            "eth0",
            "ipv4.method",
            "auto",
        ]);
        v.write(
            "/etc/NetworkManager/system-connections/eth0.nmconnection",
            k,
        );
    } else {
        v.write("/etc/sysconfig/network-scripts/ifcfg-eth0", IFCFG_ETH0);
    }
    v
}

/// SLES 15 SP5 as Azure's guide prepares it (wicked, python3-azure-agent, cloud-init).
fn sles() -> Variant {
    let mut v = Variant::of("gen2-gpt-ext4");
    let conf = upstream("WALinuxAgent-2.9.1.1/config/suse/waagent.conf");
    let conf = sed(&conf, "ResourceDisk.Format=y", "ResourceDisk.Format=n");
    rpm_agents(
        &mut v,
        &conf,
        &upstream("WALinuxAgent-2.9.1.1/init/sles/waagent.service"),
        &upstream("cloud-init-23.3-suse/cloud.cfg"),
    );
    v.write("/etc/os-release", SLES_OS_RELEASE)
        .write(
            "/etc/sysconfig/network/ifcfg-eth0",
            "BOOTPROTO='dhcp'\nSTARTMODE='auto'\n",
        )
        .write(
            "/etc/sysconfig/network/dhcp",
            "## Type:        yesno\n## Default:     yes\nDHCLIENT_SET_HOSTNAME=\"no\"\n",
        );
    v
}

/// Findings of the NET, AGENT and SYS areas at warning or above.
fn loud(r: &Report) -> Vec<String> {
    ours(r)
        .filter(|f| f.severity > Severity::Info)
        .map(|f| format!("{} {:?}: {}", f.id, f.severity, f.message))
        .collect()
}

fn ours(r: &Report) -> impl Iterator<Item = &vhdprep_check::Finding> {
    r.findings.iter().filter(|f| {
        ["NET-", "AGENT-", "SYS-"]
            .iter()
            .any(|p| f.id.starts_with(p))
    })
}

/// What the guides also ask and the Debian fixture lacks: ClientAliveInterval 180 and
/// net.ifnames=0 on the command line.
fn guide_extras(v: &mut Variant) -> &mut Variant {
    v.edit("/etc/ssh/sshd_config", |t| {
        format!("ClientAliveInterval 180\n{t}")
    })
    .edit("/boot/grub/grub.cfg", |t| {
        t.lines()
            .map(|l| {
                if l.trim_start().starts_with("linux") {
                    format!("{l} net.ifnames=0")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// No remediation of the NET, AGENT and SYS areas names Debian's tools or files.
fn no_debian_fixes(r: &Report) {
    for f in ours(r) {
        let fix = f.remediation.as_deref().unwrap_or("");
        for w in [
            "apt-get",
            "apt install",
            "update-grub",
            "update-initramfs",
            "dpkg-reconfigure",
            "/etc/network/interfaces",
            "netplan",
            "/etc/chrony/chrony.conf",
        ] {
            assert!(!fix.contains(w), "{} names {w}: {fix}", f.id);
        }
    }
}

#[test]
fn rhel9_prepared_as_the_guide_says_is_quiet() {
    for keyfile in [false, true] {
        let mut v = rhel(keyfile);
        guide_extras(&mut v);
        if keyfile {
            // A disabled profile for eth0 beside the active keyfile is harmless.
            v.write(
                "/etc/sysconfig/network-scripts/ifcfg-eth0",
                IFCFG_ETH0.replace("ONBOOT=yes", "ONBOOT=no"),
            );
        }
        let r = v.check(&vhdprep_check::Policy::default());
        assert!(loud(&r).is_empty(), "keyfile {keyfile}: {:#?}", loud(&r));
        for id in [
            "NET-001",
            "NET-003",
            "NET-004",
            "SYS-006",
            "SYS-013",
            "AGENT-002",
            "AGENT-005",
            "AGENT-006",
        ] {
            assert_quiet(&r, id);
            assert!(findings(&r, id).is_empty(), "{id}: {:#?}", findings(&r, id));
        }
        no_debian_fixes(&r);
    }
}

#[test]
fn sles15_prepared_as_the_guide_says_is_quiet() {
    let mut v = sles();
    guide_extras(&mut v);
    let r = v.check(&vhdprep_check::Policy::default());
    assert!(loud(&r).is_empty(), "{:#?}", loud(&r));
    for id in ["NET-001", "NET-003", "SYS-011", "AGENT-002", "AGENT-005"] {
        assert_quiet(&r, id);
    }
    assert!(findings(&r, "NET-001").is_empty());
    no_debian_fixes(&r);
}

#[test]
fn rhel_ifcfg_not_started_sriov_missing_selinux_without_policy() {
    let mut v = rhel(false);
    v.write(
        "/etc/sysconfig/network-scripts/ifcfg-eth0",
        IFCFG_ETH0.replace("ONBOOT=yes", "ONBOOT=no"),
    )
    .remove("/etc/udev/rules.d/68-azure-sriov-nm-unmanaged.rules")
    .remove("/etc/selinux/targeted/policy/policy.33")
    .write("/.autorelabel", "");
    let policies = [
        vhdprep_check::Policy::default(),
        vhdprep_check::Policy {
            accelerated_networking: true,
            ..Default::default()
        },
    ];
    let rs = reports(&v.path, &policies);
    let r = &rs[0];
    let net = assert_fires(r, "NET-001", Severity::Error);
    assert_eq!(net.len(), 1, "{net:#?}");
    assert!(net[0].message.contains("ONBOOT=no"), "{}", net[0].message);
    assert!(net[0]
        .remediation
        .as_deref()
        .unwrap()
        .contains("ONBOOT=yes"));
    assert_fires(r, "NET-004", Severity::Info);
    assert_fires(&rs[1], "NET-004", Severity::Warning);
    let se = findings(r, "SYS-013");
    assert_eq!(se.len(), 2, "{se:#?}");
    assert_eq!(se[0].severity, Severity::Error);
    assert!(
        se[0].message.contains("no compiled policy"),
        "{}",
        se[0].message
    );
    assert!(se[0]
        .remediation
        .as_deref()
        .unwrap()
        .starts_with("dnf install selinux-policy-targeted"));
    assert_eq!(se[1].severity, Severity::Info);
    assert!(se[1].message.contains("/.autorelabel"));
    no_debian_fixes(r);
}

#[test]
fn rhel_static_keyfile_unmanaged_ifcfg_and_unknown_selinux_mode() {
    let mut v = rhel(true);
    let fixed = nmcli(&[
        "type",
        "ethernet",
        "con-name",
        "eth0",
        "ifname",
        "eth0",
        "ipv4.method",
        "manual",
        "ipv4.addresses",
        "10.0.0.4/24",
        "ipv4.gateway",
        "10.0.0.1",
    ]);
    v.write(
        "/etc/NetworkManager/system-connections/eth0.nmconnection",
        &fixed,
    )
    .write(
        "/etc/sysconfig/network-scripts/ifcfg-eth0",
        IFCFG_ETH0.replace("NM_CONTROLLED=yes", "NM_CONTROLLED=no"),
    )
    .edit("/etc/selinux/config", |t| {
        t.replace("SELINUX=enforcing", "SELINUX=enforcin")
    })
    .write(
        "/etc/NetworkManager/conf.d/90-quiet.conf",
        "[keyfile]\nunmanaged-devices=interface-name:eth*\n",
    );
    let r = v.check(&vhdprep_check::Policy::default());
    let all = assert_fires(&r, "NET-001", Severity::Error);
    let (unmanaged, net): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|f| f.severity == Severity::Warning);
    assert_eq!(unmanaged.len(), 1, "{unmanaged:#?}");
    assert!(unmanaged[0].message.contains("interface-name:eth*"));
    assert_eq!(net.len(), 2, "{net:#?}");
    let line = fixed.lines().position(|l| l == "method=manual").unwrap() + 1;
    assert!(net[0].message.contains("static IPv4"), "{}", net[0].message);
    assert!(net[0].evidence.as_deref().unwrap().starts_with(&format!(
        "/etc/NetworkManager/system-connections/eth0.nmconnection:{line}:"
    )));
    assert!(
        net[1].message.contains("NM_CONTROLLED=no"),
        "{}",
        net[1].message
    );
    let se = assert_fires(&r, "SYS-013", Severity::Warning);
    assert!(se[0].message.contains("enforcin"));
    no_debian_fixes(&r);
}

#[test]
fn rhel_static_ifcfg_and_sles_manual_start() {
    let mut v = rhel(false);
    v.write(
        "/etc/sysconfig/network-scripts/ifcfg-eth0",
        IFCFG_ETH0.replace(
            "BOOTPROTO=dhcp",
            "BOOTPROTO=static\nIPADDR=10.0.0.4\nNETMASK=255.255.255.0",
        ),
    );
    let r = v.check(&vhdprep_check::Policy::default());
    let net = assert_fires(&r, "NET-001", Severity::Error);
    assert_eq!(net.len(), 1, "{net:#?}");
    assert!(net[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("BOOTPROTO=static IPADDR=10.0.0.4"));

    let mut s = sles();
    s.write(
        "/etc/sysconfig/network/ifcfg-eth0",
        "BOOTPROTO='dhcp'\nSTARTMODE='manual'\n",
    )
    .write(
        "/etc/sysconfig/network/dhcp",
        "DHCLIENT_SET_HOSTNAME=\"yes\"\n",
    );
    let r = s.check(&vhdprep_check::Policy::default());
    let net = assert_fires(&r, "NET-001", Severity::Error);
    assert!(
        net[0].message.contains("STARTMODE=manual"),
        "{}",
        net[0].message
    );
    assert!(net[0]
        .remediation
        .as_deref()
        .unwrap()
        .contains("STARTMODE='auto'"));
    assert_fires(&r, "SYS-011", Severity::Warning);
    no_debian_fixes(&r);
}

const AZURELINUX_OS_RELEASE: &str = "NAME=\"Microsoft Azure Linux\"\nVERSION=\"3.0.20240727\"\nID=azurelinux\nVERSION_ID=\"3.0\"\nPRETTY_NAME=\"Microsoft Azure Linux 3.0\"\nANSI_COLOR=\"1;34\"\n";
/// What Azure Linux's (CBL-Mariner's) systemd package installs for networkd.
const DHCP_EN: &str = "[Match]\nName=e*\n\n[Network]\nDHCP=yes\n";

#[test]
fn azure_linux_networkd() {
    let mut v = Variant::of("gen2-gpt-ext4");
    v.write("/etc/os-release", AZURELINUX_OS_RELEASE)
        .write("/etc/systemd/network/99-dhcp-en.network", DHCP_EN)
        // An image builder's way of turning a file off: networkd skips empty files.
        .write("/etc/systemd/network/98-off.network", "")
        .write(
            "/etc/cloud/cloud.cfg.d/99-no-net.cfg",
            "network: {config: disabled}\n",
        );
    guide_extras(&mut v);
    let r = v.check(&vhdprep_check::Policy::default());
    assert!(
        findings(&r, "NET-001").is_empty(),
        "{:#?}",
        findings(&r, "NET-001")
    );
    assert_quiet(&r, "NET-003");
    // cloud-init's networking is off, but the image's own networkd file does DHCP.
    let ci = findings(&r, "AGENT-011");
    assert!(ci.iter().all(|f| f.severity == Severity::Info), "{ci:#?}");

    v.write(
        "/etc/systemd/network/99-dhcp-en.network",
        "[Match]\nName=e*\n\n[Network]\nDHCP=no\nAddress=10.0.0.4/24\nGateway=10.0.0.1\n",
    );
    let r = v.check(&vhdprep_check::Policy::default());
    let net = assert_fires(&r, "NET-001", Severity::Error);
    assert_eq!(net.len(), 1, "{net:#?}");
    assert!(net[0].message.contains("static IPv4"));
    assert!(net[0].remediation.as_deref().unwrap().contains("DHCP=yes"));
    no_debian_fixes(&r);
}

#[test]
fn rhel_server_no_auto_default_without_a_configuration() {
    let mut v = rhel(false);
    v.remove("/etc/sysconfig/network-scripts/ifcfg-eth0")
        .write(
            "/usr/lib/NetworkManager/conf.d/00-server.conf",
            "# This configuration file changes NetworkManager's behavior to\n# what's expected on \"traditional UNIX server\" type deployments.\n#\n# See \"man NetworkManager.conf\" for more information about these\n# and other keys.\n\n[main]\nno-auto-default=*\nignore-carrier=*\n",
        )
        .write(
            "/etc/cloud/cloud.cfg.d/99-disable-network-config.cfg",
            "network: {config: disabled}\n",
        );
    let r = v.check(&vhdprep_check::Policy::default());
    let net = assert_fires(&r, "NET-001", Severity::Warning);
    assert_eq!(net.len(), 1, "{net:#?}");
    assert!(
        net[0].message.contains("no-auto-default=*"),
        "{}",
        net[0].message
    );
    assert!(net[0]
        .evidence
        .as_deref()
        .unwrap()
        .contains("/usr/lib/NetworkManager/conf.d/00-server.conf:8"));
    assert!(net[0]
        .remediation
        .as_deref()
        .unwrap()
        .contains("nmcli --offline"));
}
