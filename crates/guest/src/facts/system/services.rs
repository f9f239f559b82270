//! Systemd enablement (a small local helper), time sync (SYS-006) and Hyper-V daemons
//! (SYS-007).

use super::{glob_dir, line_ref, list, numbered, read_text, stat, LineRef, PathFact};
use crate::tree::GuestTree;
use serde::Serialize;
use vhdprep_fs::FileKind;

/// Where administrators enable units (`systemctl enable` writes here).
pub const SYSTEMD_ETC: &str = "/etc/systemd/system";
/// Where units are installed, in systemd's precedence order.
pub const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// How a systemd unit is set up in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitState {
    /// Unit name (`ssh.service`).
    pub unit: String,
    /// Where its file is (first of [`UNIT_DIRS`] that has it, links followed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `/etc/systemd/system/<target>.wants/<unit>` (and `.requires`) links enabling it.
    pub wanted_by: Vec<String>,
    /// `/etc/systemd/system/<unit>` is a link to `/dev/null` or an empty file.
    pub masked: bool,
    /// `/etc/systemd/system/<unit>` is a link to another unit file (an alias such as
    /// Debian's `sshd.service` → `ssh.service`): its target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias_of: Option<String>,
}

impl UnitState {
    /// Enabled: wanted by some target and not masked.
    pub fn enabled(&self) -> bool {
        !self.wanted_by.is_empty() && !self.masked
    }
}

/// The enablement of `unit`.
pub fn unit_state(g: &GuestTree, unit: &str) -> UnitState {
    let mut wanted_by = Vec::new();
    for (name, kind) in list(g, SYSTEMD_ETC) {
        if !(name.ends_with(".wants") || name.ends_with(".requires")) {
            continue;
        }
        if !matches!(kind, FileKind::Dir | FileKind::Unknown | FileKind::Symlink) {
            continue;
        }
        let p = format!("{SYSTEMD_ETC}/{name}/{unit}");
        if g.symlink_metadata(p.as_bytes()).is_ok() {
            wanted_by.push(p);
        }
    }
    let etc = format!("{SYSTEMD_ETC}/{unit}");
    let etc_fact = stat(g, &etc);
    let alias_of = match &etc_fact {
        Some(PathFact {
            kind: FileKind::Symlink,
            target: Some(t),
            ..
        }) if t != "/dev/null" => Some(t.clone()),
        _ => None,
    };
    let masked = etc_fact.as_ref().is_some_and(PathFact::is_mask);
    let file = UNIT_DIRS
        .iter()
        .map(|d| format!("{d}/{unit}"))
        .find(|p| g.exists(p.as_bytes()));
    UnitState {
        unit: unit.to_string(),
        file,
        wanted_by,
        masked,
        alias_of,
    }
}

/// Time sync and Hyper-V integration evidence.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServicesFacts {
    /// chrony configuration files read.
    pub chrony_files: Vec<String>,
    /// `refclock` lines in them.
    pub chrony_refclocks: Vec<LineRef>,
    /// A `refclock PHC /dev/ptp_hyperv` line exists.
    pub ptp_hyperv_refclock: bool,
    /// A `refclock PHC /dev/ptp0` line exists (the Hyper-V clock on VMs whose only PTP device
    /// it is; Azure's older guidance).
    pub ptp0_refclock: bool,
    /// `/etc/ntp.conf` (or `/etc/ntpsec/ntp.conf`), if present.
    pub ntp_conf: Vec<PathFact>,
    /// chrony/ntp/timesyncd units that exist or are enabled.
    pub time_units: Vec<UnitState>,
    /// udev rule lines naming `ptp_hyperv`.
    pub ptp_hyperv_udev_rules: Vec<LineRef>,
    /// Hyper-V daemon binaries present (`hv_kvp_daemon`, `hypervkvpd` ...).
    pub hyperv_daemons: Vec<PathFact>,
    /// Hyper-V daemon units that exist or are enabled.
    pub hyperv_units: Vec<UnitState>,
}

const HYPERV_BINARIES: [&str; 10] = [
    "/usr/sbin/hv_kvp_daemon",
    "/usr/sbin/hv_vss_daemon",
    "/usr/sbin/hv_fcopy_daemon",
    "/usr/sbin/hv_fcopy_uio_daemon",
    "/usr/sbin/hypervkvpd",
    "/usr/sbin/hypervvssd",
    "/usr/sbin/hypervfcopyd",
    "/sbin/hv_kvp_daemon",
    "/usr/bin/hv_kvp_daemon",
    "/usr/libexec/hypervkvpd/hv_get_dhcp_info",
];
const HYPERV_UNITS: [&str; 7] = [
    "hv-kvp-daemon.service",
    "hv-vss-daemon.service",
    "hv-fcopy-daemon.service",
    "hypervkvpd.service",
    "hypervvssd.service",
    "hypervfcopyd.service",
    "hv_kvp_daemon.service",
];
const TIME_UNITS: [&str; 6] = [
    "chrony.service",
    "chronyd.service",
    "ntp.service",
    "ntpd.service",
    "ntpsec.service",
    "systemd-timesyncd.service",
];

/// Gathers [`ServicesFacts`].
pub fn gather(g: &GuestTree) -> ServicesFacts {
    let mut f = ServicesFacts::default();
    let mut files: Vec<String> = vec!["/etc/chrony.conf".into(), "/etc/chrony/chrony.conf".into()];
    for d in [
        "/etc/chrony/conf.d",
        "/etc/chrony.d",
        "/etc/chrony/sources.d",
    ] {
        files.extend(glob_dir(g, d, "*"));
    }
    for p in files {
        let Some(text) = read_text(g, &p) else {
            continue;
        };
        for (n, l) in numbered(&text) {
            let mut w = l.split_whitespace();
            if w.next() == Some("refclock") {
                let rest: Vec<&str> = w.collect();
                if rest.first().is_some_and(|d| d.eq_ignore_ascii_case("PHC")) {
                    match rest.get(1).copied() {
                        Some("/dev/ptp_hyperv") => f.ptp_hyperv_refclock = true,
                        Some("/dev/ptp0") => f.ptp0_refclock = true,
                        _ => {}
                    }
                }
                f.chrony_refclocks.push(line_ref(&p, n, l));
            }
        }
        f.chrony_files.push(p);
    }
    for p in ["/etc/ntp.conf", "/etc/ntpsec/ntp.conf"] {
        f.ntp_conf.extend(stat(g, p));
    }
    for u in TIME_UNITS {
        let s = unit_state(g, u);
        if s.file.is_some() || !s.wanted_by.is_empty() {
            f.time_units.push(s);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for d in [
        "/etc/udev/rules.d",
        "/usr/lib/udev/rules.d",
        "/lib/udev/rules.d",
    ] {
        let Ok(canon) = g.canonical(d.as_bytes()) else {
            continue;
        };
        if !seen.insert(canon) {
            continue;
        }
        for p in glob_dir(g, d, "*.rules") {
            if let Some(text) = read_text(g, &p) {
                for (n, l) in numbered(&text) {
                    if l.contains("ptp_hyperv") && !l.trim_start().starts_with('#') {
                        f.ptp_hyperv_udev_rules.push(line_ref(&p, n, l));
                    }
                }
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for b in HYPERV_BINARIES {
        // /sbin and /usr/sbin are one directory on merged-/usr systems.
        let canon = g.canonical(b.as_bytes()).unwrap_or_else(|_| b.to_string());
        if seen.insert(canon) {
            f.hyperv_daemons.extend(stat(g, b));
        }
    }
    for u in HYPERV_UNITS {
        let s = unit_state(g, u);
        if s.file.is_some() || !s.wanted_by.is_empty() {
            f.hyperv_units.push(s);
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::super::testutil::tree;
    use super::*;

    #[test]
    fn units_chrony_hyperv() {
        let g = tree(
            &[
                ("/lib/systemd/system/ssh.service", "[Unit]"),
                ("/lib/systemd/system/chrony.service", "[Unit]"),
                ("/etc/systemd/system/chrony.service", ""),
                (
                    "/etc/chrony/chrony.conf",
                    "pool x\nrefclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0\n",
                ),
                ("/usr/sbin/hv_kvp_daemon", "\x7fELF"),
            ],
            &[
                (
                    "/etc/systemd/system/multi-user.target.wants/ssh.service",
                    "/lib/systemd/system/ssh.service",
                ),
                (
                    "/etc/systemd/system/sshd.service",
                    "/lib/systemd/system/ssh.service",
                ),
                (
                    "/etc/systemd/system/multi-user.target.wants/chrony.service",
                    "/lib/systemd/system/chrony.service",
                ),
            ],
        );
        let s = unit_state(&g, "ssh.service");
        assert!(s.enabled() && s.alias_of.is_none());
        let a = unit_state(&g, "sshd.service");
        assert_eq!(
            a.alias_of.as_deref(),
            Some("/lib/systemd/system/ssh.service")
        );
        assert!(!a.masked);
        assert_eq!(s.file.as_deref(), Some("/lib/systemd/system/ssh.service"));
        let c = unit_state(&g, "chrony.service");
        assert!(c.masked && !c.enabled(), "an empty file in /etc masks");
        assert!(!unit_state(&g, "nope.service").enabled());
        let f = gather(&g);
        assert!(f.ptp_hyperv_refclock);
        assert_eq!(f.chrony_refclocks[0].line, 2);
        assert_eq!(f.hyperv_daemons.len(), 1);
    }
}
