//! The distribution family of a guest: which conventions (package database, network
//! configuration, boot loader paths, remediation commands) its files follow.
//!
//! Decided from os-release's `ID` first, then `ID_LIKE` in order, so a derivative that names
//! its parent (`ID_LIKE="rhel centos fedora"`) is judged by its parent's conventions. An ID
//! that names no known family stays [`Family::Unknown`]: rules then ask every family's files
//! rather than assume Debian's.

use crate::os_release::OsRelease;
use serde::Serialize;

/// A family of distributions sharing package manager and configuration layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Debian, Ubuntu and derivatives: dpkg/apt, initramfs-tools, netplan or ifupdown.
    Debian,
    /// RHEL, CentOS (Stream), Rocky, AlmaLinux, Oracle Linux, Fedora: rpm/dnf, dracut, BLS,
    /// NetworkManager or network-scripts.
    RedHat,
    /// SLES and openSUSE: rpm/zypper, dracut, wicked or NetworkManager, btrfs with snapper.
    Suse,
    /// Microsoft's Azure Linux (formerly CBL-Mariner): rpm/tdnf, dracut, systemd-networkd.
    AzureLinux,
    /// Anything else (or no os-release).
    Unknown,
}

impl Family {
    /// The family that os-release names (`ID`, then each `ID_LIKE` entry).
    pub fn of(os: &OsRelease) -> Family {
        os.id
            .iter()
            .chain(os.id_like.iter())
            .map(|id| Family::of_id(id))
            .find(|f| *f != Family::Unknown)
            .unwrap_or(Family::Unknown)
    }

    /// The family of one os-release `ID` value.
    pub fn of_id(id: &str) -> Family {
        match id.to_ascii_lowercase().as_str() {
            "debian" | "ubuntu" | "raspbian" | "linuxmint" | "pop" | "kali" | "devuan" => {
                Family::Debian
            }
            "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "ol" | "oracle"
            | "cloudlinux" | "eurolinux" | "virtuozzo" | "amzn" | "navy" | "circle" => {
                Family::RedHat
            }
            "sles"
            | "sles_sap"
            | "sled"
            | "suse"
            | "opensuse"
            | "opensuse-leap"
            | "opensuse-tumbleweed"
            | "opensuse-microos"
            | "sle-micro" => Family::Suse,
            "mariner" | "azurelinux" => Family::AzureLinux,
            _ => Family::Unknown,
        }
    }

    /// Whether the family's packages live in an rpm database.
    pub fn uses_rpm(self) -> bool {
        matches!(self, Family::RedHat | Family::Suse | Family::AzureLinux)
    }

    /// The command that installs a package, as the family's own guides write it.
    pub fn install_command(self, package: &str) -> String {
        match self {
            Family::Debian => format!("apt-get install {package}"),
            Family::RedHat => format!("dnf install {package}"),
            Family::Suse => format!("zypper install {package}"),
            Family::AzureLinux => format!("tdnf install {package}"),
            Family::Unknown => format!("install the package {package}"),
        }
    }

    /// The command that rebuilds the initramfs of every installed kernel.
    pub fn initramfs_rebuild_command(self) -> &'static str {
        match self {
            Family::Debian => "update-initramfs -u -k all",
            Family::RedHat | Family::Suse | Family::AzureLinux => "dracut -f --regenerate-all",
            Family::Unknown => "rebuild the initramfs of every installed kernel",
        }
    }

    /// The command that regenerates GRUB's configuration.
    pub fn grub_mkconfig_command(self) -> &'static str {
        match self {
            Family::Debian => "update-grub",
            Family::RedHat | Family::AzureLinux => "grub2-mkconfig -o /boot/grub2/grub.cfg",
            Family::Suse => "grub2-mkconfig -o /boot/grub2/grub.cfg",
            Family::Unknown => "regenerate GRUB's grub.cfg",
        }
    }
}

impl Family {
    /// The package of the Linux agent (WALinuxAgent) as the family names it.
    pub fn waagent_package(self) -> &'static str {
        match self {
            Family::Debian => "waagent",
            Family::Suse => "python3-azure-agent",
            Family::RedHat | Family::AzureLinux | Family::Unknown => "WALinuxAgent",
        }
    }

    /// The package of the Hyper-V daemons (KVP, VSS, file copy).
    pub fn hyperv_daemons_package(self) -> &'static str {
        match self {
            Family::Suse => "hyper-v",
            _ => "hyperv-daemons",
        }
    }

    /// The command that upgrades an installed package.
    pub fn upgrade_command(self, package: &str) -> String {
        match self {
            Family::Debian => format!("apt-get install --only-upgrade {package}"),
            Family::RedHat => format!("dnf upgrade {package}"),
            Family::Suse => format!("zypper update {package}"),
            Family::AzureLinux => format!("tdnf upgrade {package}"),
            Family::Unknown => format!("upgrade the package {package}"),
        }
    }

    /// The SSH server's systemd unit.
    pub fn ssh_unit(self) -> &'static str {
        match self {
            Family::Debian => "ssh.service",
            _ => "sshd.service",
        }
    }

    /// chrony's main configuration file.
    pub fn chrony_conf(self) -> &'static str {
        match self {
            Family::Debian => "/etc/chrony/chrony.conf",
            _ => "/etc/chrony.conf",
        }
    }

    /// chrony's systemd unit.
    pub fn chrony_unit(self) -> &'static str {
        match self {
            Family::Debian => "chrony.service",
            _ => "chronyd.service",
        }
    }

    /// How to add `args` to the command line of every installed kernel and keep them for
    /// future ones, as the family's Azure guide does it.
    pub fn kernel_args_command(self, args: &str) -> String {
        match self {
            Family::Debian => format!(
                "add {args} to GRUB_CMDLINE_LINUX in /etc/default/grub, then `update-grub`"
            ),
            Family::RedHat => format!(
                "`grubby --update-kernel=ALL --args=\"{args}\"` (BLS entries), and add {args} to GRUB_CMDLINE_LINUX in /etc/default/grub for future kernels"
            ),
            Family::Suse => format!(
                "add {args} to GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub, then `grub2-mkconfig -o /boot/grub2/grub.cfg`"
            ),
            Family::AzureLinux => format!(
                "add {args} to GRUB_CMDLINE_LINUX in /etc/default/grub, then `grub2-mkconfig -o /boot/grub2/grub.cfg`"
            ),
            Family::Unknown => format!(
                "add {args} to GRUB_CMDLINE_LINUX in /etc/default/grub, then regenerate grub.cfg (`update-grub`; RHEL/SUSE: `grub2-mkconfig -o /boot/grub2/grub.cfg`; BLS: `grubby --update-kernel=ALL --args=\"{args}\"`)"
            ),
        }
    }

    /// How to give `nic` a DHCP configuration with the family's own network stack.
    pub fn dhcp_config_hint(self, nic: &str) -> String {
        match self {
            Family::Debian => format!(
                "`auto {nic}` + `iface {nic} inet dhcp` in /etc/network/interfaces.d/{nic} (Ubuntu: `dhcp4: true` for {nic} in a netplan file)"
            ),
            Family::RedHat => format!(
                "`nmcli --offline connection add type ethernet con-name {nic} ifname {nic} ipv4.method auto > /etc/NetworkManager/system-connections/{nic}.nmconnection` (chmod 600), or /etc/sysconfig/network-scripts/ifcfg-{nic} with DEVICE={nic} BOOTPROTO=dhcp ONBOOT=yes"
            ),
            Family::Suse => format!(
                "/etc/sysconfig/network/ifcfg-{nic} with BOOTPROTO='dhcp' and STARTMODE='auto' (wicked)"
            ),
            Family::AzureLinux => format!(
                "/etc/systemd/network/10-{nic}.network with `[Match]` Name={nic} and `[Network]` DHCP=yes (systemd-networkd)"
            ),
            Family::Unknown => format!(
                "a DHCP configuration for {nic} in the distribution's network stack (ifcfg BOOTPROTO=dhcp, NetworkManager ipv4.method auto, netplan dhcp4: true, ifupdown `inet dhcp`, networkd DHCP=yes)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os_release::parse;

    #[test]
    fn id_then_id_like_decide() {
        assert_eq!(Family::of(&parse("ID=debian\n")), Family::Debian);
        assert_eq!(
            Family::of(&parse("ID=rhel\nID_LIKE=fedora\n")),
            Family::RedHat
        );
        assert_eq!(
            Family::of(&parse("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n")),
            Family::RedHat
        );
        assert_eq!(
            Family::of(&parse("ID=\"sles\"\nID_LIKE=\"suse\"\n")),
            Family::Suse
        );
        assert_eq!(Family::of(&parse("ID=azurelinux\n")), Family::AzureLinux);
        assert_eq!(Family::of(&parse("ID=mariner\n")), Family::AzureLinux);
        // A derivative known only through ID_LIKE.
        assert_eq!(
            Family::of(&parse("ID=myos\nID_LIKE=\"ubuntu debian\"\n")),
            Family::Debian
        );
        assert_eq!(Family::of(&parse("ID=nixos\n")), Family::Unknown);
        assert_eq!(Family::of(&parse("")), Family::Unknown);
        assert!(Family::Suse.uses_rpm() && !Family::Debian.uses_rpm());
    }

    #[test]
    fn each_family_names_its_own_tools() {
        use Family::*;
        assert_eq!(
            Suse.install_command(Suse.waagent_package()),
            "zypper install python3-azure-agent"
        );
        assert_eq!(
            RedHat.upgrade_command("WALinuxAgent"),
            "dnf upgrade WALinuxAgent"
        );
        assert_eq!(
            AzureLinux.install_command(AzureLinux.hyperv_daemons_package()),
            "tdnf install hyperv-daemons"
        );
        assert_eq!(Suse.hyperv_daemons_package(), "hyper-v");
        assert_eq!(
            (Debian.ssh_unit(), RedHat.ssh_unit()),
            ("ssh.service", "sshd.service")
        );
        assert_eq!(
            (Debian.chrony_conf(), Suse.chrony_conf()),
            ("/etc/chrony/chrony.conf", "/etc/chrony.conf")
        );
        assert_eq!(RedHat.chrony_unit(), "chronyd.service");
        assert!(RedHat
            .kernel_args_command("net.ifnames=0")
            .starts_with("`grubby --update-kernel=ALL --args=\"net.ifnames=0\"`"));
        assert!(Suse
            .kernel_args_command("x=1")
            .contains("grub2-mkconfig -o /boot/grub2/grub.cfg"));
        assert!(Debian.kernel_args_command("x=1").contains("update-grub"));
        assert!(RedHat.dhcp_config_hint("eth0").contains("nmcli --offline connection add type ethernet con-name eth0 ifname eth0 ipv4.method auto"));
        assert!(Suse.dhcp_config_hint("eth0").contains("STARTMODE='auto'"));
        assert!(AzureLinux.dhcp_config_hint("eth0").contains("DHCP=yes"));
        for f in [RedHat, Suse, AzureLinux] {
            for text in [
                f.install_command("x"),
                f.upgrade_command("x"),
                f.kernel_args_command("x=1"),
                f.dhcp_config_hint("eth0"),
            ] {
                for debian in ["apt", "update-grub", "/etc/network/interfaces", "netplan"] {
                    assert!(!text.contains(debian), "{f:?}: {text}");
                }
            }
        }
    }
}
