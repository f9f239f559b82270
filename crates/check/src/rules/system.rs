//! SYS-xxx: generic system configuration — the SSH server and its keep-alive, swap on the OS
//! disk, fstab device names, resource-disk ownership, time sync, Hyper-V daemons, the agents'
//! run-time dependencies, shell histories, shipped credentials, the SUSE specifics and the
//! Azure OS type. Judged on the system facts (`vhdprep_guest::facts::system`), the agent
//! facts and the assembled fstab.

use super::Collector;
use crate::catalogue::{rule, RuleInfo};
use crate::context::Context;
use crate::policy::OsState;
use std::collections::BTreeSet;
use vhdprep_finding::{Finding, Severity};
use vhdprep_guest::assemble::find_volume;
use vhdprep_guest::facts::agents::{ConflictKind, Evidence, Provisioner};
use vhdprep_guest::facts::system::ssh::{sshd_seconds, SshFacts, SSHD_CONFIG};
use vhdprep_guest::facts::system::swap::{FstabSwap, SwapUnit};
use vhdprep_guest::facts::system::users::PasswordField;
use vhdprep_guest::facts::system::SystemFacts;
use vhdprep_guest::fstab::{device_ref, DeviceRef, FstabEntry};
use vhdprep_guest::{Family, FstabMount};

/// This area's catalogue entries.
pub const RULES: &[RuleInfo] = &[
    rule("SYS-001", Severity::Error, "SSH server enabled", "An SSH server must be installed and enabled at boot (systemd unit or socket, SysV link, rc.conf): an error for a generalized image, a warning for a specialized one.", "[GENERIC] step 4; [SUSE]; [RHEL]"),
    rule("SYS-002", Severity::Warning, "ClientAliveInterval", "sshd's effective ClientAliveInterval (read as sshd -T reads sshd_config and its includes) should be 180; Marketplace certification accepts 30-235. waagent writes OS.SshClientAliveInterval into sshd_config when it provisions.", "[RHEL]; [MKT-CERT] test 8; [MKT-TEST] TestID 46; [WALA] osutil/default.py conf_sshd, conf.py"),
    rule("SYS-003", Severity::Error, "No swap on the OS disk", "No fstab swap on a partition or file of the OS disk, no swap files (/swap.img, /swapfile), no enabled systemd swap units: swap belongs on the resource disk (waagent ResourceDisk.EnableSwap or cloud-init). Error for a partition, warning for a file.", "[GENERIC] step 6; [UBUNTU]; [MKT-TEST] TestID 41")
        .deviating("fstab swap entries marked noauto are never activated; vhdprep reports them as information (BOOT-011 still judges a swap partition itself)."),
    rule("SYS-004", Severity::Warning, "fstab device names", "fstab must name filesystems by UUID=, LABEL=, PARTUUID= or /dev/disk/by-*, never by kernel names such as /dev/sda1 or /dev/nvme0n1p1 (they change with the disk controller); every entry without nofail must resolve to a filesystem of the image. Kernel names are an error for NVMe images.", "[UBUNTU]; [RHEL]; [SUSE]; [DEBIAN]"),
    rule("SYS-005", Severity::Warning, "One resource-disk owner", "Only one agent may own the resource disk: when cloud-init provisions, waagent.conf needs ResourceDisk.Format=n and ResourceDisk.EnableSwap=n; when waagent provisions, cloud-init must not set up ephemeral0.", "[GENERIC] steps 6-7; [RHEL]; [SUSE] step 9; [CIV-AZURE]"),
    rule("SYS-006", Severity::Info, "Time sync", "A time-sync service (chrony, ntpd, systemd-timesyncd) should be enabled; chrony should use the Hyper-V PTP clock (refclock PHC /dev/ptp_hyperv), which needs the ptp_hyperv udev link.", "[TIMESYNC]"),
    rule("SYS-007", Severity::Warning, "Hyper-V daemons", "The Hyper-V daemons (hv_kvp_daemon) should be installed: KVP carries the guest's name and addresses to the host, and cloud-init's Hyper-V telemetry needs it (a warning when that telemetry is configured, information otherwise).", "[GENERIC]; [RHEL]; [CIV-AZURE] test_services_running, test_pkg_wanted"),
    rule("SYS-008", Severity::Error, "Agent run-time dependencies", "When waagent or cloud-init is installed, the Python interpreter their scripts name must exist (error); OpenSSL (>= 1.0), OpenSSH (>= 5.3) and sfdisk, fdisk, mkfs, parted, chpasswd, sudo, sed, grep, ip, ssh-keygen should be present (warnings). Versions come from the package database (dpkg, or rpm's sqlite, Berkeley DB or ndb database).", "[AGENT-DOC] Requirements; [PROVISIONING]; [MKT-TEST] TestIDs 44/45")
        .deviating("Judged only when waagent or cloud-init is installed (without an agent AGENT-001 reports the image)."),
    rule("SYS-009", Severity::Warning, "Shell histories cleared", "Every /root and /home/* .bash_history must be at most 1 KB (Marketplace certification fails above); other history files (.zsh_history, .python_history, .mysql_history, .lesshst) are reported as information.", "[MKT-CERT]; [MKT-TEST] TestID 48; [GENERIC] step 8"),
    rule("SYS-010", Severity::Warning, "No default credentials", "A generalized image ships no usable password hash for root or login users and no authorized_keys: a warning, an error for the Marketplace.", "[MKT-CERT] Default credentials; [GENERIC]"),
    rule("SYS-011", Severity::Warning, "SUSE DHCP hostname and sudoers", "SUSE only: DHCLIENT_SET_HOSTNAME=\"no\" in /etc/sysconfig/network/dhcp, and no 'Defaults targetpw' or 'ALL ALL=(ALL) ALL' in /etc/sudoers.", "[SUSE] steps 12-13"),
    rule("SYS-012", Severity::Info, "Azure OS type", "Every Linux or BSD guest is registered with osType Linux.", "[OPENBSD]"),
    rule("SYS-013", Severity::Error, "SELinux configuration", "/etc/selinux/config must name a mode libselinux knows (enforcing, permissive, disabled) and, unless disabled, a policy that is installed: in enforcing mode systemd halts the boot when it cannot load the policy. A pending /.autorelabel (the first boot relabels every file and reboots) and SELinux turned off on the kernel command line are information.", "not in the shared catalogue: [SYSTEMD] src/core/selinux-setup.c (mac_selinux_setup); [SELINUX] selinux-policy's /etc/selinux/config")
        .deviating("Not in the shared catalogue: a Red Hat image whose enforcing policy is missing never reaches provisioning, and a pending relabel makes the first boot long and reboot once."),
];

/// Most bytes read of a small configuration file this module reads itself.
const SMALL_FILE: u64 = 1 << 20;
/// Marketplace certification: ClientAliveInterval range it accepts.
const CLIENT_ALIVE_RANGE: std::ops::RangeInclusive<u64> = 30..=235;
/// Marketplace certification: history files above this fail.
const HISTORY_LIMIT: u64 = 1024;

/// Evaluates SYS-001..012.
pub fn evaluate(ctx: &Context, out: &mut Collector) {
    let Some(sys) = &ctx.system else {
        return;
    };
    ssh_server(ctx, sys, out);
    client_alive(ctx, sys, out);
    swap(ctx, sys, out);
    fstab_names(ctx, out);
    resource_disk(ctx, out);
    time_sync(ctx, sys, out);
    hyperv_daemons(ctx, sys, out);
    runtime_deps(ctx, sys, out);
    histories(sys, out);
    credentials(ctx, sys, out);
    suse(ctx, out);
    os_type(ctx, out);
    selinux(ctx, sys, out);
}

fn evidence_text(e: &Evidence) -> String {
    match e.line {
        Some(l) => format!("{}:{l}: {}", e.path, e.detail),
        None => format!("{}: {}", e.path, e.detail),
    }
}

/// Reads a small guest file as text (links followed), `None` when absent or too big.
pub(crate) fn read_small(ctx: &Context, path: &str) -> Option<String> {
    let tree = ctx.tree()?;
    let m = tree.metadata(path.as_bytes()).ok()?;
    if m.kind != vhdprep_fs::FileKind::File || m.size > SMALL_FILE {
        return None;
    }
    tree.read_file(path.as_bytes(), SMALL_FILE)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

// ---- SYS-001 ------------------------------------------------------------------------------

/// Whether sshd is started at boot: an enabled unit or socket, a SysV start link (only when
/// no native unit exists: systemd ignores such scripts then), or `sshd_enable="YES"`.
fn ssh_enabled(ssh: &SshFacts) -> bool {
    if ssh.units.iter().any(|u| u.enabled()) {
        return true;
    }
    let native = ssh.units.iter().any(|u| u.file.is_some());
    if !native && !ssh.sysv_links.is_empty() {
        return true;
    }
    ssh.rc_conf_sshd_enable.as_ref().is_some_and(|rc| {
        rc.text.split_once('=').is_some_and(|(_, v)| {
            v.trim()
                .trim_matches(['"', '\''])
                .eq_ignore_ascii_case("yes")
        })
    })
}

fn ssh_server(ctx: &Context, sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "SYS-001";
    out.evaluated(ID);
    let ssh = &sys.ssh;
    let (state, how) = ctx.judged_os_state();
    let sev = match state {
        OsState::Generalized => Severity::Error,
        OsState::Specialized => Severity::Warning,
    };
    let why = format!("VMs of a {how} {state} image are reached over SSH");
    let Some(bin) = &ssh.sshd_binary else {
        out.push(
            Finding::new(ID, sev, format!("no SSH server is installed; {why}"))
                .with_evidence("no sshd in /usr/sbin, /usr/bin, /sbin or /usr/local/sbin")
                .with_remediation({
                    let f = ctx.family();
                    match f {
                        Family::Unknown => "install the SSH server (apt-get install openssh-server, dnf or zypper install openssh-server) and enable it (systemctl enable ssh.service, sshd.service on RHEL and SUSE)".to_string(),
                        f => format!("{} && systemctl enable {}", f.install_command("openssh-server"), f.ssh_unit()),
                    }
                }),
        );
        return;
    };
    if ssh_enabled(ssh) {
        return;
    }
    let unit = ssh
        .units
        .iter()
        .find(|u| u.file.is_some() && u.unit.ends_with(".service"))
        .map_or(ctx.family().ssh_unit(), |u| u.unit.as_str());
    let mut seen: Vec<String> = ssh
        .units
        .iter()
        .map(|u| {
            let state = if u.masked {
                "masked"
            } else {
                "not wanted by any target"
            };
            format!("{} ({})", u.unit, state)
        })
        .collect();
    if seen.is_empty() {
        seen.push("no ssh/sshd unit or start link".into());
    }
    out.push(
        Finding::new(
            ID,
            sev,
            format!("the SSH server is installed but not enabled at boot; {why}"),
        )
        .with_evidence(format!("{} exists; {}", bin.path, seen.join(", ")))
        .with_remediation(format!("systemctl unmask {unit}; systemctl enable {unit}"))
        .at_guest(bin.path.clone(), None),
    );
}

// ---- SYS-002 ------------------------------------------------------------------------------

fn client_alive(ctx: &Context, sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "SYS-002";
    let ssh = &sys.ssh;
    if ssh.sshd_binary.is_none() && !ssh.config_read {
        out.skip(ID, "no SSH server and no /etc/ssh/sshd_config in the image");
        return;
    }
    out.evaluated(ID);
    let setting = &ssh.client_alive_interval;
    let waagent = ctx
        .agents
        .as_ref()
        .filter(|a| a.provisioning.provisioner == Provisioner::Waagent && a.waagent.installed);
    // waagent rewrites the line of sshd_config itself; a drop-in read earlier still wins.
    let overwritten = setting
        .source
        .as_ref()
        .is_none_or(|s| s.path == SSHD_CONFIG);
    if let (Some(a), true) = (waagent, overwritten) {
        let w = &a.waagent.settings.ssh_client_alive_interval;
        let secs = sshd_seconds(&w.value);
        if secs.is_some_and(|s| CLIENT_ALIVE_RANGE.contains(&s)) {
            return;
        }
        let mut f = Finding::new(
            ID,
            Severity::Warning,
            format!(
                "waagent provisions and writes ClientAliveInterval {} into sshd_config; Marketplace certification accepts 30-235 seconds (180 recommended)",
                w.value
            ),
        )
        .with_evidence(format!("waagent.conf {} = {}", w.key, w.value))
        .with_remediation("sed -i 's/^OS.SshClientAliveInterval=.*/OS.SshClientAliveInterval=180/' /etc/waagent.conf");
        if let Some(e) = &w.evidence {
            f = f.at_guest(e.path.clone(), e.line);
        }
        out.push(f);
        return;
    }
    let remediation = "set `ClientAliveInterval 180` where sshd reads it first: the top of /etc/ssh/sshd_config, or a file in /etc/ssh/sshd_config.d/ when sshd_config includes that directory";
    let Some(src) = &setting.source else {
        out.push(
            Finding::new(
                ID,
                Severity::Warning,
                "ClientAliveInterval is not set (sshd's default 0 sends no keep-alives) and no waagent provisioning writes it; Marketplace certification expects 30-235 seconds (180 recommended)",
            )
            .with_evidence(format!("read {}; no ClientAliveInterval outside Match blocks", ssh.config_files.join(", ")))
            .with_remediation(remediation)
            .at_guest(SSHD_CONFIG, None),
        );
        return;
    };
    let message = match ssh.client_alive_interval_seconds {
        Some(s) if CLIENT_ALIVE_RANGE.contains(&s) => return,
        Some(0) => "ClientAliveInterval is 0: sshd sends no keep-alives; Marketplace certification expects 30-235 seconds (180 recommended)".to_string(),
        Some(s) => format!("ClientAliveInterval is {s} seconds; Marketplace certification accepts 30-235 (180 recommended)"),
        None => format!("ClientAliveInterval '{}' is not a valid time: sshd refuses to start with it", setting.value),
    };
    out.push(
        Finding::new(ID, Severity::Warning, message)
            .with_evidence(format!("{}:{}: {}", src.path, src.line, src.text))
            .with_remediation(remediation)
            .at_guest(src.path.clone(), Some(src.line)),
    );
}

// ---- SYS-003 ------------------------------------------------------------------------------

const SWAP_FIX: &str = "swap belongs on the resource disk: ResourceDisk.EnableSwap=y with ResourceDisk.SwapSizeMB in waagent.conf when waagent provisions, or cloud-init's mounts/swap on ephemeral0";

/// A swap file path (not a device).
fn is_file_path(spec: &str) -> bool {
    spec.starts_with('/') && !spec.starts_with("/dev/")
}

fn swap(ctx: &Context, sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "SYS-003";
    out.evaluated(ID);
    let mut files_done: BTreeSet<&str> = BTreeSet::new();
    for s in &sys.swap.fstab {
        if s.volume.is_none() && is_file_path(&s.spec) {
            files_done.insert(&s.spec);
        }
        if let Some(f) = fstab_swap(s) {
            out.push(f);
        }
    }
    for f in sys
        .swap
        .files
        .iter()
        .filter(|f| !files_done.contains(f.path.as_str()))
    {
        out.push(
            Finding::new(
                ID,
                Severity::Warning,
                format!("the swap file {} is on the OS disk", f.path),
            )
            .with_evidence(format!("{}: {} bytes", f.path, f.size))
            .with_remediation(format!("rm -f {}; {SWAP_FIX}", f.path))
            .at_guest(f.path.clone(), None),
        );
    }
    for u in sys.swap.units.iter().filter(|u| !u.wanted_by.is_empty()) {
        if let Some(f) = swap_unit(ctx, u) {
            out.push(f);
        }
    }
}

/// An fstab swap line: error on a volume of the image, warning for a file; entries marked
/// `noauto` are never activated and only reported. Devices outside the image are not judged.
fn fstab_swap(s: &FstabSwap) -> Option<Finding> {
    let noauto = if s.noauto { " (noauto)" } else { "" };
    let (sev, message, evidence, remediation) = if let Some(v) = &s.volume {
        (
            Severity::Error,
            format!(
                "fstab line {} puts swap on {v} of the OS disk ({})",
                s.line, s.spec
            ),
            format!("/etc/fstab line {}: {} swap{noauto}", s.line, s.spec),
            format!(
                "swapoff -a; delete line {} of /etc/fstab and the swap partition; {SWAP_FIX}",
                s.line
            ),
        )
    } else if is_file_path(&s.spec) {
        let present = s
            .file
            .as_ref()
            .map_or("not present in the image".to_string(), |f| {
                format!("{} bytes", f.size)
            });
        (
            Severity::Warning,
            format!(
                "fstab line {} activates the swap file {} on the OS disk",
                s.line, s.spec
            ),
            format!(
                "/etc/fstab line {}: {} swap{noauto}; {}: {present}",
                s.line, s.spec, s.spec
            ),
            format!(
                "swapoff -a; rm -f {}; delete line {} of /etc/fstab; {SWAP_FIX}",
                s.spec, s.line
            ),
        )
    } else {
        return None;
    };
    let sev = if s.noauto { Severity::Info } else { sev };
    Some(
        Finding::new("SYS-003", sev, message)
            .with_evidence(evidence)
            .with_remediation(remediation)
            .at_guest("/etc/fstab", Some(s.line)),
    )
}

/// An enabled `.swap` unit: error when it names a volume of the image, warning for a file or
/// an unknown device; the cloud resource-disk links are where swap belongs.
fn swap_unit(ctx: &Context, u: &SwapUnit) -> Option<Finding> {
    let what = u.what.as_deref().unwrap_or("");
    if what.starts_with("/dev/disk/cloud/azure_resource")
        || what.starts_with("/dev/disk/azure/resource")
    {
        return None;
    }
    let in_image = ctx.discovery.as_ref().and_then(|d| {
        find_volume(&d.volumes, &device_ref(what)).map(|i| d.volumes[i].source.to_string())
    });
    let (sev, what_is) = match in_image {
        Some(v) => (Severity::Error, format!("{v} of the OS disk")),
        None if what.starts_with('/') && !what.starts_with("/dev/") => {
            (Severity::Warning, format!("the swap file {what}"))
        }
        None => (Severity::Warning, format!("'{what}'")),
    };
    Some(
        Finding::new(
            "SYS-003",
            sev,
            format!(
                "the enabled swap unit {} activates swap on {what_is}",
                u.path
            ),
        )
        .with_evidence(format!(
            "{} What={what}; enabled by {}",
            u.path,
            u.wanted_by.join(", ")
        ))
        .with_remediation(format!(
            "systemctl disable {}; rm -f {}; {SWAP_FIX}",
            u.path.rsplit('/').next().unwrap_or(""),
            u.path
        ))
        .at_guest(u.path.clone(), None),
    )
}

// ---- SYS-004 ------------------------------------------------------------------------------

/// Kernel disk names that depend on the controller and probe order (`sd`, `nvme`, and names
/// no Azure controller produces at all: `hd`, `vd`, `xvd`).
fn kernel_disk_name(dev: &str) -> bool {
    let name = dev.strip_prefix("/dev/").unwrap_or(dev);
    ["sd", "nvme", "hd", "vd", "xvd"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_alphanumeric()))
    })
}

fn fstab_text(e: &FstabEntry) -> String {
    format!(
        "{} {} {} {}",
        e.spec,
        e.mountpoint,
        e.fstype,
        e.options.join(",")
    )
}

fn kernel_name_finding(ctx: &Context, m: &FstabMount) -> Option<Finding> {
    let e = &m.entry;
    let DeviceRef::Kernel(dev) = device_ref(&e.spec) else {
        return None;
    };
    if !kernel_disk_name(&dev) {
        return None;
    }
    let sev = if ctx.policy.nvme {
        Severity::Error
    } else {
        Severity::Warning
    };
    let nvme = if ctx.policy.nvme {
        " (on NVMe VMs disks are /dev/nvme*, never /dev/sd*)"
    } else {
        ""
    };
    let matched = m
        .volume
        .as_ref()
        .map_or(String::new(), |v| format!("; it matches {v} of the image"));
    Some(
        Finding::new(
            "SYS-004",
            sev,
            format!(
                "fstab line {} names {} by the kernel device name {dev}, which changes with the disk controller and probe order{nvme}",
                e.line, e.mountpoint
            ),
        )
        .with_evidence(format!("/etc/fstab line {}: {}{matched}", e.line, fstab_text(e)))
        .with_remediation(format!(
            "replace {dev} by UUID=<uuid> (blkid -s UUID -o value {dev} on the build machine), LABEL= or PARTUUID= in /etc/fstab"
        ))
        .at_guest("/etc/fstab", Some(e.line)),
    )
}

fn fstab_names(ctx: &Context, out: &mut Collector) {
    const ID: &str = "SYS-004";
    let Some(g) = &ctx.guest else {
        return;
    };
    out.evaluated(ID);
    let mut kernel_lines = BTreeSet::new();
    for m in &g.fstab {
        if let Some(f) = kernel_name_finding(ctx, m) {
            kernel_lines.insert(format!("/etc/fstab line {}", m.entry.line));
            out.push(f);
        }
    }
    // The assembler's SYS-004 findings (entries that resolve to nothing, filesystems that do
    // not open), except those the kernel-name findings above already state.
    for f in g.findings.iter().filter(|f| f.id == ID) {
        if f.evidence
            .as_ref()
            .is_some_and(|e| kernel_lines.contains(e))
        {
            continue;
        }
        let mut f = f.clone();
        if f.location.is_none() {
            f = f.at_guest("/etc/fstab", None);
        }
        out.push(f);
    }
}

// ---- SYS-005 ------------------------------------------------------------------------------

fn resource_disk(ctx: &Context, out: &mut Collector) {
    const ID: &str = "SYS-005";
    let Some(a) = &ctx.agents else {
        return;
    };
    out.evaluated(ID);
    for c in a.provisioning.conflicts.iter().filter(|c| c.rule == ID) {
        let (message, remediation) = match c.kind {
            ConflictKind::WaagentOwnsResourceDiskUnderCloudInit => (
                "cloud-init provisions, but waagent.conf also has waagent format the resource disk or make swap on it (ResourceDisk.Format/EnableSwap=y): two agents race for the same disk",
                "sed -i -e 's/^ResourceDisk.Format=y/ResourceDisk.Format=n/' -e 's/^ResourceDisk.EnableSwap=y/ResourceDisk.EnableSwap=n/' /etc/waagent.conf (cloud-init's mounts and disk_setup own ephemeral0)",
            ),
            ConflictKind::CloudInitOwnsResourceDiskUnderWaagent => (
                "waagent provisions, but cloud-init's configuration also sets up the resource disk (ephemeral0): two agents race for the same disk",
                "remove the ephemeral0 disk_setup/fs_setup/mounts/swap settings from /etc/cloud/cloud.cfg(.d), or let cloud-init provision (Provisioning.Agent=cloud-init, ResourceDisk.Format=n, ResourceDisk.EnableSwap=n)",
            ),
            _ => continue,
        };
        let mut f = Finding::new(ID, Severity::Warning, message)
            .with_evidence(
                c.evidence
                    .iter()
                    .map(evidence_text)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
            .with_remediation(remediation);
        if let Some(e) = c.evidence.first() {
            f = f.at_guest(e.path.clone(), e.line);
        }
        out.push(f);
    }
}

// ---- SYS-006 ------------------------------------------------------------------------------

fn time_sync(ctx: &Context, sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "SYS-006";
    out.evaluated(ID);
    let s = &sys.services;
    let enabled: Vec<&str> = s
        .time_units
        .iter()
        .filter(|u| u.enabled())
        .map(|u| u.unit.as_str())
        .collect();
    let refclock = "refclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0";
    let family = ctx.family();
    let (conf, unit) = match family {
        Family::Unknown => (
            "/etc/chrony/chrony.conf (/etc/chrony.conf on RHEL/SUSE)",
            "chrony (chronyd on RHEL/SUSE)",
        ),
        f => (f.chrony_conf(), f.chrony_unit()),
    };
    let install = match family {
        Family::Unknown => "install chrony".to_string(),
        f => f.install_command("chrony"),
    };
    let f = if enabled.is_empty() {
        Finding::new(ID, Severity::Info, "no time-sync service is enabled (chrony, ntpd, systemd-timesyncd); Azure recommends chrony with the Hyper-V PTP clock")
            .with_evidence(format!("time-sync units found: {}", list_or_none(s.time_units.iter().map(|u| u.unit.as_str()))))
            .with_remediation(format!("{install}, add `{refclock}` to {conf}, and systemctl enable {unit}"))
    } else if enabled.iter().any(|u| u.starts_with("chrony"))
        && !s.ptp_hyperv_refclock
        && s.ptp0_refclock
    {
        Finding::new(ID, Severity::Info, "chrony reads the PTP clock as /dev/ptp0, which is the Hyper-V clock only while no other PTP device (an accelerated-networking NIC's) is numbered first")
            .with_evidence(format!("refclock lines: {}", list_or_none(s.chrony_refclocks.iter().map(|l| l.text.as_str()))))
            .with_remediation(format!("use `{refclock}` in {conf} (the /dev/ptp_hyperv link names the Hyper-V clock whatever its number)"))
    } else if enabled.iter().any(|u| u.starts_with("chrony")) && !s.ptp_hyperv_refclock {
        Finding::new(
            ID,
            Severity::Info,
            "chrony is enabled but does not use the Hyper-V PTP clock",
        )
        .with_evidence(format!(
            "refclock lines: {}",
            list_or_none(s.chrony_refclocks.iter().map(|l| l.text.as_str()))
        ))
        .with_remediation(format!("add `{refclock}` to {conf}"))
    } else if s.ptp_hyperv_refclock && s.ptp_hyperv_udev_rules.is_empty() {
        Finding::new(ID, Severity::Info, "chrony reads /dev/ptp_hyperv, but no udev rule creates that link (systemd before v246 lacks it)")
            .with_evidence("no rule naming ptp_hyperv in /etc/udev/rules.d, /lib/udev/rules.d or /usr/lib/udev/rules.d")
            .with_remediation("echo 'SUBSYSTEM==\"ptp\", ATTR{clock_name}==\"hyperv\", SYMLINK += \"ptp_hyperv\"' > /etc/udev/rules.d/99-ptp_hyperv.rules")
    } else {
        return;
    };
    out.push(f);
}

fn list_or_none<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

// ---- SYS-007 ------------------------------------------------------------------------------

fn hyperv_daemons(ctx: &Context, sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "SYS-007";
    out.evaluated(ID);
    let s = &sys.services;
    let installed = s.hyperv_daemons.iter().any(|d| {
        let name = d.path.rsplit('/').next().unwrap_or("");
        name == "hv_kvp_daemon" || name == "hypervkvpd"
    });
    let kvp_units: Vec<_> = s
        .hyperv_units
        .iter()
        .filter(|u| u.unit.contains("kvp"))
        .collect();
    let masked = !kvp_units.is_empty() && kvp_units.iter().all(|u| u.masked);
    if installed && !masked {
        return;
    }
    let telemetry = ctx
        .agents
        .as_ref()
        .filter(|a| a.cloud_init.runs_at_boot)
        .and_then(|a| a.cloud_init.config.telemetry_hyperv.as_ref());
    let state = if masked {
        "the Hyper-V KVP daemon is masked"
    } else {
        "the Hyper-V KVP daemon (hv_kvp_daemon, hypervkvpd) is not installed"
    };
    let (sev, message) = match telemetry {
        Some(_) => (Severity::Warning, format!("{state}, but cloud-init reports its telemetry over Hyper-V KVP: nothing carries it to the host")),
        None => (Severity::Info, format!("{state}: the host sees no guest name or addresses over KVP")),
    };
    let mut evidence = format!(
        "daemons found: {}; KVP units: {}",
        list_or_none(s.hyperv_daemons.iter().map(|d| d.path.as_str())),
        list_or_none(kvp_units.iter().map(|u| u.unit.as_str()))
    );
    if let Some(t) = telemetry {
        evidence.push_str(&format!("; {}", evidence_text(t)));
    }
    let family = ctx.family();
    let remediation = match (masked, family) {
        (true, Family::Unknown) => {
            "systemctl unmask hv-kvp-daemon.service (hypervkvpd.service on RHEL)".to_string()
        }
        (true, _) => format!(
            "systemctl unmask {}",
            kvp_units.first().map_or("hv-kvp-daemon.service", |u| u.unit.as_str())
        ),
        (false, Family::Unknown) => "install the Hyper-V daemons: apt-get install hyperv-daemons, dnf install hyperv-daemons, zypper install hyper-v".to_string(),
        (false, f) => format!(
            "install the Hyper-V daemons: {}",
            f.install_command(f.hyperv_daemons_package())
        ),
    };
    out.push(
        Finding::new(ID, sev, message)
            .with_evidence(evidence)
            .with_remediation(remediation),
    );
}

// ---- SYS-008 ------------------------------------------------------------------------------

/// Compares the leading dotted numbers of a package version (`1:9.2p1-2` → 9.2) with `min`:
/// `Some(true)` when lower; `None` when no number can be read.
fn version_below(version: &str, min: &[u64]) -> Option<bool> {
    let v = version.split_once(':').map_or(version, |(_, r)| r);
    let end = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let parts: Vec<u64> = v[..end].split('.').map_while(|p| p.parse().ok()).collect();
    if parts.is_empty() {
        return None;
    }
    for (i, m) in min.iter().enumerate() {
        let p = parts.get(i).copied().unwrap_or(0);
        if p != *m {
            return Some(p < *m);
        }
    }
    Some(false)
}

fn runtime_deps(ctx: &Context, sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "SYS-008";
    let Some(a) = &ctx.agents else {
        return;
    };
    out.evaluated(ID);
    let mut agents = Vec::new();
    if a.waagent.installed {
        agents.push("waagent");
    }
    if a.cloud_init.installed {
        agents.push("cloud-init");
    }
    if agents.is_empty() {
        return; // AGENT-001 judges an image without a provisioning agent.
    }
    let agents = agents.join(" and ");
    interpreter(ctx.family(), sys, &agents, out);
    openssl_openssh(ctx.family(), sys, out);
    tools(sys, &agents, out);
}

fn interpreter(family: Family, sys: &SystemFacts, agents: &str, out: &mut Collector) {
    let install = match family {
        Family::Unknown => "install python3".to_string(),
        f => f.install_command("python3"),
    };
    let rt = &sys.runtime;
    let mut broken = false;
    for s in rt.shebangs.iter().filter(|s| s.found.is_none()) {
        broken = true;
        out.push(
            Finding::new("SYS-008", Severity::Error, format!("{} starts with #!{}, which is not in the image: the agent cannot start", s.script, s.interpreter))
                .with_evidence(format!("{}:1: {}", s.script, s.evidence.text))
                .with_remediation(match family {
                    Family::Unknown => "install the Python 3 interpreter the agent is packaged for (apt-get install python3, dnf install python3)".to_string(),
                    f => format!("install the Python 3 interpreter the agent is packaged for: {}", f.install_command("python3")),
                })
                .at_guest(s.script.clone(), Some(1)),
        );
    }
    if rt.interpreters.is_empty() && !broken {
        out.push(
            Finding::new("SYS-008", Severity::Error, format!("no Python interpreter is installed, but {agents} run on Python"))
                .with_evidence("none of /usr/bin/python3, /usr/bin/python, /usr/libexec/platform-python, /usr/local/bin/python3 exists")
                .with_remediation(install.clone()),
        );
    }
    for i in &rt.interpreters {
        if let Some(v) = i
            .version
            .as_deref()
            .filter(|v| version_below(v, &[2, 6]) == Some(true))
        {
            out.push(
                Finding::new("SYS-008", Severity::Warning, format!("{} is Python {v}; the agents need Python 2.6 or later (Python 3 in practice)", i.path.path))
                    .with_evidence(format!("{} -> {}", i.path.path, i.resolved))
                    .with_remediation(install.clone()),
            );
        }
    }
}

fn openssl_openssh(family: Family, sys: &SystemFacts, out: &mut Collector) {
    let rt = &sys.runtime;
    if rt.tool("openssl").is_none() {
        out.push(
            Finding::new("SYS-008", Severity::Warning, "openssl is not installed: waagent decrypts certificates and protected settings with it, and cloud-init reads the provisioning certificates with it")
                .with_evidence("no openssl in /usr/bin, /usr/sbin, /bin, /sbin, /usr/local/bin")
                .with_remediation(match family {
                    Family::Unknown => "install openssl".to_string(),
                    f => f.install_command("openssl"),
                }),
        );
    }
    for (pkg, min, shown) in [
        ("openssl", &[1u64, 0][..], "1.0"),
        ("openssh-server", &[5, 3][..], "5.3"),
    ] {
        let Some(p) = rt.package(pkg) else { continue };
        if version_below(&p.version, min) == Some(true) {
            out.push(
                Finding::new(
                    "SYS-008",
                    Severity::Warning,
                    format!(
                        "{} {} is older than the {shown} the Azure agents require",
                        p.package, p.version
                    ),
                )
                .with_evidence(p.evidence_text())
                .with_remediation(match family {
                    Family::Unknown => format!("upgrade {}", p.package),
                    f => f.upgrade_command(&p.package),
                })
                .at_guest(p.path.clone(), p.line),
            );
        }
    }
}

fn tools(sys: &SystemFacts, agents: &str, out: &mut Collector) {
    let missing: Vec<&str> = sys
        .runtime
        .tools
        .iter()
        .filter(|t| t.path.is_none() && t.name != "openssl")
        .map(|t| t.name.as_str())
        .collect();
    if missing.is_empty() {
        return;
    }
    out.push(
        Finding::new("SYS-008", Severity::Warning, format!("tools {agents} call are missing: {}", missing.join(", ")))
            .with_evidence("looked in /usr/sbin, /usr/bin, /sbin, /bin, /usr/local/sbin, /usr/local/bin")
            .with_remediation("install them (util-linux/fdisk for sfdisk, fdisk and mkfs, parted, passwd or shadow-utils for chpasswd, sudo, sed, grep, iproute2 for ip, openssh-client for ssh-keygen)"),
    );
}

// ---- SYS-009 ------------------------------------------------------------------------------

fn histories(sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "SYS-009";
    out.evaluated(ID);
    for h in sys.users.histories.iter().filter(|h| h.size > 0) {
        let bash = h.path.ends_with("/.bash_history");
        let (sev, message) = if bash && h.size > HISTORY_LIMIT {
            (Severity::Warning, format!("{} holds {} bytes of shell history; Marketplace certification fails history files over 1 KB", h.path, h.size))
        } else {
            (
                Severity::Info,
                format!(
                    "{} holds {} bytes of history from the build",
                    h.path, h.size
                ),
            )
        };
        out.push(
            Finding::new(ID, sev, message)
                .with_evidence(format!("{}: {} bytes", h.path, h.size))
                .with_remediation(format!("rm -f {} (and `export HISTSIZE=0` in the shell that runs the last build steps)", h.path))
                .at_guest(h.path.clone(), None),
        );
    }
}

// ---- SYS-010 ------------------------------------------------------------------------------

fn credentials(ctx: &Context, sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "SYS-010";
    let (state, how) = ctx.judged_os_state();
    if state == OsState::Specialized {
        out.skip(
            ID,
            format!("the image is {how} Specialized: its accounts and keys are kept on purpose"),
        );
        return;
    }
    out.evaluated(ID);
    let sev = if ctx.policy.marketplace {
        Severity::Error
    } else {
        Severity::Warning
    };
    let u = &sys.users;
    let login: BTreeSet<&str> = u.login_users.iter().map(|l| l.name.as_str()).collect();
    for e in u
        .shadow
        .iter()
        .filter(|e| e.name == "root" || login.contains(e.name.as_str()))
    {
        let PasswordField::Usable { scheme } = &e.password else {
            continue;
        };
        out.push(
            Finding::new(ID, sev, format!("{} has a usable password hash in a generalized image: every VM made from it accepts that password", e.name))
                .with_evidence(format!("/etc/shadow line {}: {}:{scheme}... (hash not shown)", e.line, e.name))
                .with_remediation(if e.name == "root" {
                    "passwd -l root (waagent -deprovision with Provisioning.DeleteRootPassword=y locks it too)".to_string()
                } else {
                    format!("userdel -r {} if it is a build user (waagent -deprovision+user removes the last provisioned one), else passwd -l {}", e.name, e.name)
                })
                .at_guest("/etc/shadow", Some(e.line)),
        );
    }
    for k in u.authorized_keys.iter().filter(|k| k.keys != Some(0)) {
        let count = k
            .keys
            .map_or("unreadable".to_string(), |n| format!("{n} key(s)"));
        out.push(
            Finding::new(ID, sev, format!("{} ships SSH public keys in a generalized image: whoever holds a private key logs in to every VM made from it", k.path))
                .with_evidence(format!("{}: {} bytes, {count}", k.path, k.size))
                .with_remediation(format!("rm -f {} (waagent -deprovision+user removes the last provisioned user)", k.path))
                .at_guest(k.path.clone(), None),
        );
    }
}

// ---- SYS-011 ------------------------------------------------------------------------------

fn is_suse(ctx: &Context) -> bool {
    ctx.os_ids()
        .iter()
        .any(|i| i == "suse" || i == "sles" || i == "sled" || i.starts_with("opensuse"))
}

/// The guest's PRETTY_NAME (else NAME, else ID).
pub(crate) fn os_name(ctx: &Context) -> String {
    ctx.os
        .as_ref()
        .and_then(|o| {
            o.pretty_name
                .clone()
                .or_else(|| o.name.clone())
                .or_else(|| o.id.clone())
        })
        .unwrap_or_else(|| "an unnamed Linux".into())
}

/// The last `KEY=value` of shell-style text, unquoted, with its 1-based line.
fn shell_value(text: &str, key: &str) -> Option<(String, usize)> {
    let mut found = None;
    for (i, l) in text.lines().enumerate() {
        let Some(rest) = l.trim().strip_prefix(key).and_then(|r| r.strip_prefix('=')) else {
            continue;
        };
        let v = rest.split(" #").next().unwrap_or(rest).trim();
        found = Some((v.trim_matches(['"', '\'']).to_string(), i + 1));
    }
    found
}

/// What a sudoers line does that provisioned users trip over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SudoersIssue {
    /// `Defaults targetpw`: sudo asks for root's password.
    TargetPw,
    /// `ALL ALL=(ALL) ALL`: every user may run anything, given the target's password.
    AllAll,
}

/// The sudoers lines SUSE's Azure guide removes, with their 1-based line numbers.
fn sudoers_targetpw(text: &str) -> Vec<(usize, SudoersIssue, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let words: Vec<&str> = l
                .split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let issue = if words.first() == Some(&"Defaults")
                && words
                    .iter()
                    .skip(1)
                    .any(|w| w.split(',').any(|o| o == "targetpw"))
            {
                SudoersIssue::TargetPw
            } else if words.concat() == "ALLALL=(ALL)ALL" {
                SudoersIssue::AllAll
            } else {
                return None;
            };
            Some((i + 1, issue, l.trim().to_string()))
        })
        .collect()
}

fn suse(ctx: &Context, out: &mut Collector) {
    const ID: &str = "SYS-011";
    if !is_suse(ctx) {
        out.skip(ID, format!("SUSE only; the guest is {}", os_name(ctx)));
        return;
    }
    out.evaluated(ID);
    const DHCP: &str = "/etc/sysconfig/network/dhcp";
    if let Some(text) = read_small(ctx, DHCP) {
        let v = shell_value(&text, "DHCLIENT_SET_HOSTNAME");
        if v.as_ref().is_none_or(|(v, _)| v != "no") {
            let (shown, line) = v.map_or(("not set (default yes)".to_string(), None), |(v, l)| {
                (format!("\"{v}\""), Some(l))
            });
            out.push(
                Finding::new(ID, Severity::Warning, format!("DHCLIENT_SET_HOSTNAME is {shown}: the DHCP client overwrites the host name Azure provisions"))
                    .with_evidence(format!("{DHCP}{}: DHCLIENT_SET_HOSTNAME {shown}", line.map_or(String::new(), |l| format!(":{l}"))))
                    .with_remediation(format!("sed -i 's/^DHCLIENT_SET_HOSTNAME=.*/DHCLIENT_SET_HOSTNAME=\"no\"/' {DHCP}"))
                    .at_guest(DHCP, line),
            );
        }
    }
    if let Some(text) = read_small(ctx, "/etc/sudoers") {
        for (line, issue, l) in sudoers_targetpw(&text) {
            let message = match issue {
                SudoersIssue::TargetPw => "/etc/sudoers makes sudo ask for the target user's (root's) password, which provisioned users do not have",
                SudoersIssue::AllAll => "/etc/sudoers lets every user run any command as any user given that user's password (SUSE's companion of 'Defaults targetpw')",
            };
            out.push(
                Finding::new(ID, Severity::Warning, message)
                    .with_evidence(format!("/etc/sudoers:{line}: {l}"))
                    .with_remediation(format!(
                        "comment out line {line} of /etc/sudoers with visudo"
                    ))
                    .at_guest("/etc/sudoers", Some(line)),
            );
        }
    }
}

// ---- SYS-012 ------------------------------------------------------------------------------

fn os_type(ctx: &Context, out: &mut Collector) {
    const ID: &str = "SYS-012";
    if ctx.guest.is_none() {
        return;
    }
    out.evaluated(ID);
    let evidence = ctx.os.as_ref().map_or(
        "/etc/os-release not readable; a Linux root filesystem was found".to_string(),
        |o| {
            format!(
                "/etc/os-release: ID={} VERSION_ID={}",
                o.id.as_deref().unwrap_or("?"),
                o.version_id.as_deref().unwrap_or("?")
            )
        },
    );
    out.push(
        Finding::new(
            ID,
            Severity::Info,
            format!("Azure osType: Linux ({})", os_name(ctx)),
        )
        .with_evidence(evidence)
        .with_remediation("register the image (definition) with --os-type Linux"),
    );
}

// ---- SYS-013 ------------------------------------------------------------------------------

fn selinux(ctx: &Context, sys: &SystemFacts, out: &mut Collector) {
    const ID: &str = "SYS-013";
    let se = &sys.selinux;
    const CONFIG: &str = vhdprep_guest::facts::system::selinux::CONFIG;
    if !se.config_read && se.autorelabel.is_none() {
        out.skip(ID, "no /etc/selinux/config in the image");
        return;
    }
    out.evaluated(ID);
    let cmdline = ctx
        .kernel
        .as_ref()
        .and_then(|k| k.cmdlines.effective.as_ref());
    let kernel_off = cmdline.and_then(|c| {
        (c.value("selinux").last() == Some(&"0"))
            .then(|| format!("selinux=0 on the kernel command line ({})", c.raw))
    });
    let kernel_permissive = cmdline.and_then(|c| {
        (c.value("enforcing").last() == Some(&"0"))
            .then(|| format!("enforcing=0 on the kernel command line ({})", c.raw))
    });
    let family = ctx.family();
    let relabel_fix = match family {
        Family::Debian => "touch /.autorelabel is what selinux-activate does; remove it only if the files are labelled",
        _ => "label the files at build time (`setfiles -F /etc/selinux/targeted/contexts/files/file_contexts /` or `fixfiles -F relabel` in the build VM), then rm -f /.autorelabel",
    };
    if let Some(mode) = &se.mode {
        let m = mode.value.to_ascii_lowercase();
        if !matches!(m.as_str(), "enforcing" | "permissive" | "disabled") {
            out.push(
                Finding::new(ID, Severity::Warning, format!("SELINUX={} in {CONFIG} is not a mode libselinux knows (enforcing, permissive, disabled): the boot falls back to what the kernel and policy default to", mode.value))
                    .with_evidence(format!("{CONFIG}:{}: SELINUX={}", mode.line, mode.value))
                    .with_remediation(format!("set SELINUX=enforcing (or permissive) in {CONFIG}"))
                    .at_guest(CONFIG, Some(mode.line)),
            );
        } else if m != "disabled" && kernel_off.is_none() && se.policy_files.is_empty() {
            let ty = se
                .policy_type
                .as_ref()
                .map_or("(SELINUXTYPE unset)".to_string(), |t| t.value.clone());
            let (sev, effect) = if m == "enforcing" && kernel_permissive.is_none() {
                (Severity::Error, "systemd cannot load a policy in enforcing mode and halts the boot (\"Failed to load SELinux policy. Freezing.\")")
            } else {
                (Severity::Warning, "the VM boots with no policy loaded")
            };
            let pkg = match ty.as_str() {
                "targeted" => "selinux-policy-targeted",
                "mls" => "selinux-policy-mls",
                "minimum" => "selinux-policy-minimum",
                _ => "the selinux-policy package of that type",
            };
            let mut f = Finding::new(ID, sev, format!("{CONFIG} sets SELINUX={} with policy type {ty}, but no compiled policy is installed for it: {effect}", mode.value))
                .with_evidence(format!("{CONFIG}:{}: SELINUX={}; no policy.N in /etc/selinux/{ty}/policy", mode.line, mode.value))
                .with_remediation(format!("{}, or set SELINUXTYPE to an installed policy", family.install_command(pkg)));
            f = f.at_guest(CONFIG, Some(mode.line));
            out.push(f);
        }
        if m != "disabled" {
            if let Some(k) = kernel_off.as_ref().or(kernel_permissive.as_ref()) {
                out.push(
                    Finding::new(ID, Severity::Info, format!("{CONFIG} sets SELINUX={}, but {k}", mode.value))
                        .with_evidence(format!("{CONFIG}:{}: SELINUX={}; {k}", mode.line, mode.value))
                        .with_remediation(match family {
                            Family::RedHat => "grubby --update-kernel=ALL --remove-args=\"selinux enforcing\" if SELinux should run as configured".to_string(),
                            f => format!("remove it from GRUB_CMDLINE_LINUX in /etc/default/grub and `{}` if SELinux should run as configured", f.grub_mkconfig_command()),
                        })
                        .at_guest(CONFIG, Some(mode.line)),
                );
            }
        }
    }
    if let Some(a) = &se.autorelabel {
        out.push(
            Finding::new(ID, Severity::Info, "/.autorelabel is present: the first boot of every VM relabels the whole filesystem and reboots before provisioning starts (minutes on a large root)")
                .with_evidence(format!("{}: {} bytes", a.path, a.size))
                .with_remediation(relabel_fix)
                .at_guest(a.path.clone(), None),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_disk_names() {
        for d in [
            "/dev/sda1",
            "/dev/sdb",
            "/dev/nvme0n1p2",
            "/dev/vda1",
            "/dev/xvda",
            "/dev/hda3",
        ] {
            assert!(kernel_disk_name(d), "{d}");
        }
        for d in [
            "/dev/md0",
            "/dev/dm-0",
            "/dev/sr0",
            "/dev/loop0",
            "/dev/sd",
            "/dev/nvme",
        ] {
            assert!(!kernel_disk_name(d), "{d}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(version_below("3.0.22-1~deb12u2", &[1, 0]), Some(false));
        assert_eq!(version_below("0.9.8zh-1", &[1, 0]), Some(true));
        assert_eq!(version_below("1:9.2p1-2+deb12u7", &[5, 3]), Some(false));
        assert_eq!(version_below("5.1p1", &[5, 3]), Some(true));
        assert_eq!(version_below("5.3p1", &[5, 3]), Some(false));
        assert_eq!(version_below("2.5", &[2, 6]), Some(true));
        assert_eq!(version_below("3.11", &[2, 6]), Some(false));
        assert_eq!(version_below("", &[1]), None);
        assert_eq!(version_below("abc", &[1]), None);
    }

    #[test]
    fn suse_files() {
        let dhcp = "# c\nDHCLIENT_SET_HOSTNAME=\"yes\"\nX=1\nDHCLIENT_SET_HOSTNAME='no' # later\n";
        assert_eq!(
            shell_value(dhcp, "DHCLIENT_SET_HOSTNAME"),
            Some(("no".into(), 4))
        );
        assert_eq!(shell_value("A=1\n", "DHCLIENT_SET_HOSTNAME"), None);
        let sudoers = "Defaults targetpw   # ask for the password of the target user\nDefaults !targetpw\nDefaults env_reset,targetpw\nALL   ALL=(ALL) ALL   # WARNING! Only use this together with 'Defaults targetpw'!\n# ALL ALL=(ALL) ALL\nroot ALL=(ALL) ALL\n";
        let hits: Vec<(usize, SudoersIssue)> = sudoers_targetpw(sudoers)
            .into_iter()
            .map(|(l, i, _)| (l, i))
            .collect();
        use SudoersIssue::*;
        assert_eq!(hits, vec![(1, TargetPw), (3, TargetPw), (4, AllAll)]);
    }
}
