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
}
