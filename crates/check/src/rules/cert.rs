//! CERT-xxx: the Marketplace certification tests (Certification Test Tool for Azure Certified,
//! self-test API), judged offline with `--marketplace`. Each test is judged on the same facts
//! as its offline equivalent in the catalogue (SYS-009, AGENT-003, KRN-008, ...), directly,
//! with the Marketplace thresholds.
//!
//! Severity: a failing certification test is a warning (the catalogue's key), except where the
//! catalogue makes the equivalent rule an error outright or for Marketplace: VHD format
//! (VHD-001..005), swap partition (BOOT-011), 64-bit (KRN-010), agent version (AGENT-003),
//! `console=ttyS0` (KRN-008), default credentials (SYS-010) and a specialized image (GEN-001,
//! GAL-002).

use super::Collector;
use crate::catalogue::{rule, RuleInfo};
use crate::context::Context;
use crate::policy::OsState;
use vhdprep_finding::{Finding, Severity};
use vhdprep_fs::FileKind;
use vhdprep_guest::facts::system::users::PasswordField;
use vhdprep_guest::packages::version::Evr;
use vhdprep_guest::packages::{Package, Packages, Source};
use vhdprep_guest::{open_filesystem, GuestTree};
use vhdprep_partition::PartitionKind;

const KIB: u64 = 1024;
const GIB: u64 = 1 << 30;
/// CERT-001: history files above this fail (RequiredValue 1024).
pub const HISTORY_MAX: u64 = 1024;
/// CERT-002: the oldest waagent Marketplace accepts.
pub const MIN_WAAGENT: [u64; 3] = [2, 2, 41];
/// CERT-006: the oldest OpenSSL accepted.
pub const MIN_OPENSSL: [u64; 3] = [0, 9, 8];
/// CERT-007: the oldest Python accepted.
pub const MIN_PYTHON: [u64; 2] = [2, 6];
/// CERT-008: the ClientAliveInterval range accepted (180 recommended).
pub const CLIENT_ALIVE: std::ops::RangeInclusive<u64> = 30..=235;
/// CERT-003: the rootdelay required.
pub const ROOTDELAY: u64 = 300;
/// CERT-010: glibc releases before this are affected by GHOST (CVE-2015-0235).
pub const GHOST_FIXED: [u64; 2] = [2, 18];
/// CERT-015: the first partition should start at or after 2048 KiB.
pub const FIRST_PARTITION_MIN: u64 = 2048 * KIB;
/// CERT-017: recommended OS disk sizes.
pub const OS_DISK: std::ops::RangeInclusive<u64> = 30 * GIB..=1023 * GIB;
/// CERT-018: the largest data disk.
pub const DATA_DISK_MAX: u64 = 1023 * GIB;
/// CERT-006: the packages that tell the OpenSSL version, in order: dpkg's (Debian, Ubuntu),
/// then rpm's (Red Hat and Azure Linux `openssl-libs`/`openssl`, SUSE `libopenssl*`).
pub const OPENSSL_PACKAGES: [&str; 12] = [
    "openssl",
    "libssl3",
    "libssl1.1",
    "libssl1.0.2",
    "libssl1.0.0",
    "libssl0.9.8",
    "openssl-libs",
    "openssl-3",
    "openssl-1_1",
    "libopenssl3",
    "libopenssl1_1",
    "libopenssl1_0_0",
];
/// CERT-010: glibc's package: dpkg `libc6`, rpm `glibc`.
pub const GLIBC_PACKAGES: [&str; 3] = ["libc6", "libc6-arm64", "glibc"];
/// CERT-012: rpm's kernel packages (Red Hat 8+ `kernel-core`, Red Hat 7 and Azure Linux
/// `kernel`, SUSE `kernel-default`/`kernel-azure`, Oracle's UEK).
pub const RPM_KERNEL_PACKAGES: [&str; 6] = [
    "kernel-core",
    "kernel",
    "kernel-default",
    "kernel-azure",
    "kernel-uek-core",
    "kernel-uek",
];

/// This area's catalogue entries.
pub const RULES: &[RuleInfo] = &[
    rule("CERT-001", Severity::Warning, "Bash history (48)", "Every .bash_history must be at most 1 KB (RequiredValue 1024).", "[MKT-TEST]; [MKT-CERT]").marketplace(),
    rule("CERT-002", Severity::Error, "Linux Agent version (39)", "WALinuxAgent 2.2.41 or later must be installed.", "[MKT-TEST]; [MKT-CERT]").marketplace(),
    rule("CERT-003", Severity::Error, "Required kernel parameters (40)", "console=ttyS0 (error when missing), earlyprintk=ttyS0 and rootdelay=300 (warnings) on the effective kernel command line; console=ttyAMA0 on Arm64.", "[MKT-TEST]; [MKT-CERT]").marketplace().deviating("On Arm64 only console=ttyAMA0 is required (KRN-008, [PR-IB-1457]); the test tool's x64 values do not apply there."),
    rule("CERT-004", Severity::Error, "Swap partition on OS disk (41)", "No swap partition on the OS disk: no swap partition type, swap signature, or fstab swap entry on an OS-disk volume.", "[MKT-TEST]; [MKT-CERT]").marketplace(),
    rule("CERT-005", Severity::Warning, "Root partition on OS disk (42)", "A single root partition: one filesystem with /etc/os-release and at most one GPT root-type partition.", "[MKT-TEST]; [MKT-CERT]").marketplace(),
    rule("CERT-006", Severity::Warning, "OpenSSL version (44)", "OpenSSL 0.9.8 or later must be installed (the package database: openssl, libssl*, openssl-libs, libopenssl*; else the libssl soname).", "[MKT-TEST]; [MKT-CERT]").marketplace(),
    rule("CERT-007", Severity::Warning, "Python version (45)", "Python 2.6 or later must be installed (python interpreters in /usr/bin, /usr/local/bin, /usr/libexec).", "[MKT-TEST]; [MKT-CERT]").marketplace(),
    rule("CERT-008", Severity::Warning, "Client Alive Interval (46)", "sshd's effective ClientAliveInterval must be 30 to 235 seconds (180 recommended).", "[MKT-TEST]; [MKT-CERT]").marketplace(),
    rule("CERT-009", Severity::Error, "OS architecture (49)", "Only 64-bit operating systems: x86_64 (or Arm64).", "[MKT-TEST]; [MKT-VHD-FAQ]").marketplace(),
    rule("CERT-010", Severity::Info, "Security threats (50)", "The tool flags OSes affected by high-profile vulnerabilities such as GHOST (glibc before 2.18, CVE-2015-0235); vhdprep reports the glibc version.", "[MKT-TEST]").marketplace(),
    rule("CERT-011", Severity::Warning, "Auto Update (51)", "waagent.conf must enable AutoUpdate.Enabled (default y; AutoUpdate.UpdateToLatestVersion=y also counts).", "[MKT-TEST]; [MKT-CERT]").marketplace(),
    rule("CERT-012", Severity::Warning, "SACK vulnerability patch (52)", "The default kernel must carry the TCP SACK fixes (CVE-2019-11477/11478/11479): at least the version the Marketplace table lists for the distribution, else an upstream stable release with the fix.", "[MKT-CERT]").marketplace().deviating("The catalogue has no version table: vhdprep uses the table of [MKT-CERT] (Ubuntu, RHEL/CentOS, SLES, Oracle, CoreOS, Debian) and otherwise the upstream fixes 4.4.182, 4.9.182, 4.14.127, 4.19.52, 5.1.11 and 5.2; kernels in neither are reported as unconfirmed."),
    rule("CERT-013", Severity::Error, "VHD format", "A fixed VHD with a valid 'conectix' footer, a whole-MiB size and file length = size + 512 (VHD-001..005).", "[MKT-CERT]").marketplace(),
    rule("CERT-014", Severity::Error, "Generalized", "Marketplace images must be generalized (waagent -deprovision+user): no provisioning marker, ovf-env.xml, cloud-init seed or user keys of a previous VM.", "[MKT-CERT]").marketplace(),
    rule("CERT-015", Severity::Warning, "First 2048 KB empty", "The first partition should start at or after 2048 KiB.", "[MKT-CERT]").marketplace(),
    rule("CERT-016", Severity::Error, "Default credentials", "No usable or empty password for root or login users, and no authorized_keys shipped.", "[MKT-CERT]").marketplace(),
    rule("CERT-017", Severity::Warning, "OS disk size", "Linux OS disks of 30 to 1,023 GiB.", "[MKT-CERT]").marketplace(),
    rule("CERT-018", Severity::Warning, "Data disk size", "Data disks of at most 1,023 GiB.", "[MKT-CERT]").marketplace().deviating("The LUN order (0, 1, 2 ...) is a property of the offer, not of the disks: vhdprep checks only the sizes."),
    rule("CERT-019", Severity::Warning, "VM extension", "The Linux Diagnostic Extension must provision: waagent installed, its service enabled and Extensions.Enabled=y.", "[MKT-CERT]").marketplace(),
];

/// Evaluates CERT-001..019 (called only with `--marketplace`).
pub fn evaluate(ctx: &Context, out: &mut Collector) {
    let why = ctx.not_examined_reason();
    bash_history(ctx, out, &why);
    agent_version(ctx, out, &why);
    kernel_parameters(ctx, out, &why);
    swap_partitions(ctx, out);
    root_partitions(ctx, out);
    match (ctx.tree(), ctx.guest.as_ref()) {
        (Some(tree), Some(_)) => {
            openssl(tree, &ctx.packages, out);
            python(tree, out);
            glibc(tree, &ctx.packages, out);
            sack(ctx, &ctx.packages, out);
        }
        _ => {
            for id in ["CERT-006", "CERT-007", "CERT-010", "CERT-012"] {
                out.skip(id, why.clone());
            }
        }
    }
    client_alive(ctx, out, &why);
    architecture(ctx, out, &why);
    auto_update(ctx, out, &why);
    vhd_format(ctx, out);
    generalized(ctx, out, &why);
    first_partition(ctx, out);
    credentials(ctx, out, &why);
    disk_sizes(ctx, out);
    extensions(ctx, out, &why);
}

/// The numbers of a version, in order: `1:2.36-9+deb12u14` → `[2, 36, 9, 12, 14]` (the epoch
/// is dropped; every run of digits counts).
pub fn numbers(v: &str) -> Vec<u64> {
    let v = v.split_once(':').map_or(v, |(e, rest)| {
        if e.bytes().all(|b| b.is_ascii_digit()) {
            rest
        } else {
            v
        }
    });
    v.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

/// The numbers of the upstream part of a version (before the first `-`, epoch dropped):
/// `3.0.22-1~deb12u2` → `[3, 0, 22]`; `0.9.8zh-1` → `[0, 9, 8]`.
pub fn upstream(v: &str) -> Vec<u64> {
    let v = v.split_once(':').map_or(v, |(_, r)| r);
    let core = v.split('-').next().unwrap_or(v);
    let mut out = Vec::new();
    for part in core.split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        match digits.parse() {
            Ok(n) => out.push(n),
            Err(_) => break,
        }
        if digits.len() != part.len() {
            break;
        }
    }
    out
}

/// `a < b`, comparing number lists element by element (missing elements are 0).
pub fn below(a: &[u64], b: &[u64]) -> bool {
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x < y;
        }
    }
    false
}

fn dotted(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

fn bash_history(ctx: &Context, out: &mut Collector, why: &str) {
    let Some(sys) = &ctx.system else {
        out.skip("CERT-001", why);
        return;
    };
    out.evaluated("CERT-001");
    for h in &sys.users.histories {
        if h.path.ends_with("/.bash_history") && h.size > HISTORY_MAX {
            out.push(
                Finding::new(
                    "CERT-001",
                    Severity::Warning,
                    format!(
                        "{} holds {} bytes of shell history; certification fails above 1 KB",
                        h.path, h.size
                    ),
                )
                .with_evidence(format!("{}: {} bytes", h.path, h.size))
                .with_remediation(format!(
                    "rm -f {}; export HISTSIZE=0 before deprovisioning",
                    h.path
                ))
                .at_guest(h.path.clone(), None),
            );
        }
    }
}

fn agent_version(ctx: &Context, out: &mut Collector, why: &str) {
    let Some(a) = &ctx.agents else {
        out.skip("CERT-002", why);
        return;
    };
    out.evaluated("CERT-002");
    let w = &a.waagent;
    let fix = match ctx.family() {
        vhdprep_guest::Family::Unknown => "install WALinuxAgent 2.2.41 or later (apt install waagent / walinuxagent, dnf install WALinuxAgent, zypper install python3-azure-agent)".to_string(),
        f => format!("install WALinuxAgent 2.2.41 or later ({})", f.install_command(f.waagent_package())),
    };
    let fix = fix.as_str();
    match (&w.version, w.installed) {
        (_, false) => out.push(
            Finding::new(
                "CERT-002",
                Severity::Error,
                "WALinuxAgent is not installed; certification requires version 2.2.41 or later",
            )
            .with_evidence("no waagent binary, python package or package entry")
            .with_remediation(fix),
        ),
        (None, true) => out.push(
            Finding::new(
                "CERT-002",
                Severity::Error,
                "the installed WALinuxAgent's version cannot be read; certification requires 2.2.41 or later",
            )
            .with_evidence(w.binaries.join(", "))
            .with_remediation(fix),
        ),
        (Some(v), true) if below(&numbers(&v.version), &MIN_WAAGENT) => out.push(
            Finding::new(
                "CERT-002",
                Severity::Error,
                format!(
                    "WALinuxAgent {} is installed; certification requires 2.2.41 or later",
                    v.version
                ),
            )
            .with_evidence(format!("{}: {}", v.evidence.path, v.evidence.detail))
            .with_remediation(fix)
            .at_guest(v.evidence.path.clone(), v.evidence.line),
        ),
        _ => {}
    }
}

fn kernel_parameters(ctx: &Context, out: &mut Collector, why: &str) {
    let Some(k) = &ctx.kernel else {
        out.skip("CERT-003", why);
        return;
    };
    let Some(cmd) = &k.cmdlines.effective else {
        out.skip("CERT-003", "no kernel command line was found");
        return;
    };
    out.evaluated("CERT-003");
    let (file, line) = k
        .cmdlines
        .effective_source()
        .map_or(("/etc/default/grub".to_string(), None), |s| {
            (s.file.clone(), Some(s.line))
        });
    let evidence = format!(
        "{file}{}: {}",
        line.map(|l| format!(":{l}")).unwrap_or_default(),
        cmd.raw
    );
    let on = |key: &str, dev: &str| {
        cmd.value(key)
            .iter()
            .any(|v| v.split(',').next() == Some(dev))
    };
    let finding = |sev, msg: String, fix: &str| {
        let f = Finding::new("CERT-003", sev, msg)
            .with_evidence(evidence.clone())
            .with_remediation(ctx.family().kernel_args_command(fix));
        f.at_guest(file.clone(), line)
    };
    if ctx.derived.architecture.as_deref() == Some("Arm64") {
        if !on("console", "ttyAMA0") {
            out.push(finding(
                Severity::Error,
                "the kernel command line lacks console=ttyAMA0, the Arm64 serial console".into(),
                "console=ttyAMA0",
            ));
        }
        return;
    }
    if !on("console", "ttyS0") {
        out.push(finding(Severity::Error, "the kernel command line lacks console=ttyS0: the certification test fails without the serial console".into(), "console=ttyS0"));
    }
    let mut missing = Vec::new();
    if !on("earlyprintk", "ttyS0") {
        missing.push("earlyprintk=ttyS0");
    }
    let delay = cmd
        .value("rootdelay")
        .last()
        .and_then(|v| v.parse::<u64>().ok());
    if delay.is_none_or(|d| d < ROOTDELAY) {
        missing.push("rootdelay=300");
    }
    if !missing.is_empty() {
        let list = missing.join(" ");
        out.push(finding(
            Severity::Warning,
            format!("the kernel command line lacks {list} (certification warning)"),
            &list,
        ));
    }
}

fn swap_partitions(ctx: &Context, out: &mut Collector) {
    let Some(d) = &ctx.discovery else {
        out.skip("CERT-004", "no partition table was read");
        return;
    };
    out.evaluated("CERT-004");
    let mut seen = Vec::new();
    for v in &d.volumes {
        let typed = v
            .partition
            .as_ref()
            .is_some_and(|p| p.kind == PartitionKind::Swap);
        let signed = v.filesystem.as_ref().is_some_and(|f| f.fs_type == "swap");
        if !(typed || signed) {
            continue;
        }
        seen.push(v.source.clone());
        let what = match (typed, signed) {
            (true, true) => "swap partition type and swap signature",
            (true, false) => "swap partition type",
            _ => "swap signature",
        };
        let mut f = Finding::new(
            "CERT-004",
            Severity::Error,
            format!("{} of the OS disk is swap; certification requires 0 swap partitions", v.source),
        )
        .with_evidence(format!("{}: {what}", v.source))
        .with_remediation("remove the swap partition; let cloud-init or waagent (ResourceDisk.EnableSwap=y) create swap on the resource disk");
        if let Some(start) = v.start {
            f = f.at_disk(start, Some(v.size));
        }
        out.push(f);
    }
    let Some(sys) = &ctx.system else { return };
    for s in &sys.swap.fstab {
        let Some(vol) = &s.volume else { continue };
        if seen.contains(vol) {
            continue;
        }
        out.push(
            Finding::new(
                "CERT-004",
                Severity::Error,
                format!("/etc/fstab swaps on {vol} of the OS disk; certification requires no swap partition"),
            )
            .with_evidence(format!("/etc/fstab line {}: {}", s.line, s.spec))
            .with_remediation("remove the swap line from /etc/fstab and the swap volume")
            .at_guest("/etc/fstab", Some(s.line)),
        );
    }
}

/// Whether a volume other than the assembled root also holds a Linux root.
fn other_root(ctx: &Context, v: &vhdprep_guest::GuestVolume) -> bool {
    const ROOT_FS: [&str; 5] = ["ext2", "ext3", "ext4", "xfs", "btrfs"];
    let is_root = ctx.guest.as_ref().is_some_and(|g| g.root == v.source);
    if is_root
        || !v
            .filesystem
            .as_ref()
            .is_some_and(|f| ROOT_FS.contains(&f.fs_type))
    {
        return false;
    }
    open_filesystem(v, None).is_ok_and(|fs| {
        let t = GuestTree::new(fs, "candidate");
        t.exists(b"/etc/os-release") || t.exists(b"/usr/lib/os-release")
    })
}

fn root_partitions(ctx: &Context, out: &mut Collector) {
    let Some(d) = &ctx.discovery else {
        out.skip("CERT-005", "no partition table was read");
        return;
    };
    out.evaluated("CERT-005");
    let mut roots: Vec<String> = Vec::new();
    if let Some(g) = &ctx.guest {
        roots.push(format!("{} (the root filesystem)", g.root));
    }
    for v in &d.volumes {
        let typed = v
            .partition
            .as_ref()
            .is_some_and(|p| p.kind == PartitionKind::LinuxRoot);
        let counted = ctx.guest.as_ref().is_some_and(|g| g.root == v.source);
        if counted {
            continue;
        }
        if typed {
            roots.push(format!("{} (GPT Linux root type)", v.source));
        } else if other_root(ctx, v) {
            roots.push(format!("{} (holds /etc/os-release)", v.source));
        }
    }
    if roots.len() > 1 {
        out.push(
            Finding::new(
                "CERT-005",
                Severity::Warning,
                format!(
                    "the OS disk has {} root partitions; certification expects a single one",
                    roots.len()
                ),
            )
            .with_evidence(roots.join(", "))
            .with_remediation(
                "keep one root filesystem on the OS disk; move other systems to data disks",
            ),
        );
    }
}

fn version_finding(
    id: &'static str,
    what: &str,
    min: &[u64],
    found: Option<(String, Vec<u64>, String)>,
    fix: &str,
    out: &mut Collector,
) {
    out.evaluated(id);
    match found {
        None => out.push(
            Finding::new(
                id,
                Severity::Warning,
                format!(
                    "no {what} was found; certification requires {what} {} or later",
                    dotted(min)
                ),
            )
            .with_evidence(
                "nothing in the package database nor the usual library and binary directories",
            )
            .with_remediation(fix.to_string()),
        ),
        Some((text, v, ev)) if below(&v, min) => out.push(
            Finding::new(
                id,
                Severity::Warning,
                format!(
                    "{what} {text} is installed; certification requires {} or later",
                    dotted(min)
                ),
            )
            .with_evidence(ev)
            .with_remediation(fix.to_string()),
        ),
        _ => {}
    }
}

fn openssl(tree: &GuestTree, packages: &Packages, out: &mut Collector) {
    let from_packages = packages
        .first_of(&OPENSSL_PACKAGES)
        .map(|p| (p.version.clone(), upstream(&p.version), p.evidence()));
    let found = from_packages.or_else(|| libssl_soname(tree));
    version_finding(
        "CERT-006",
        "OpenSSL",
        &MIN_OPENSSL,
        found,
        "install OpenSSL 1.0 or later (openssl package)",
        out,
    );
}

/// The OpenSSL version told by the libssl soname (`libssl.so.3`, `.so.1.1`, `.so.10` = 1.0.2).
fn libssl_soname(tree: &GuestTree) -> Option<(String, Vec<u64>, String)> {
    const DIRS: [&str; 7] = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/lib64",
        "/usr/lib",
        "/lib",
    ];
    const SONAMES: [(&str, &[u64]); 6] = [
        ("libssl.so.3", &[3, 0, 0]),
        ("libssl.so.1.1", &[1, 1, 0]),
        ("libssl.so.10", &[1, 0, 2]),
        ("libssl.so.1.0.0", &[1, 0, 0]),
        ("libssl.so.1.0.2", &[1, 0, 2]),
        ("libssl.so.0.9.8", &[0, 9, 8]),
    ];
    DIRS.iter().find_map(|d| {
        SONAMES.iter().find_map(|(n, v)| {
            let p = format!("{d}/{n}");
            tree.exists(p.as_bytes())
                .then(|| (dotted(v), v.to_vec(), format!("{p} exists")))
        })
    })
}

/// Most directory entries looked at in one directory.
const MAX_LISTED: usize = 20_000;

/// Names in `dir` (links not followed), at most [`MAX_LISTED`].
fn names_in(tree: &GuestTree, dir: &str) -> Vec<String> {
    tree.read_dir(dir.as_bytes())
        .unwrap_or_default()
        .into_iter()
        .take(MAX_LISTED)
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect()
}

/// `[major, minor]` of an interpreter name `python3.11` / `platform-python3.6`.
pub fn python_version(name: &str) -> Option<Vec<u64>> {
    let v = name
        .strip_prefix("python")
        .or_else(|| name.strip_prefix("platform-python"))?;
    let (major, minor) = v.split_once('.')?;
    let num = |s: &str| {
        (!s.is_empty() && s.len() < 6 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    Some(vec![num(major)?, num(minor)?])
}

fn python(tree: &GuestTree, out: &mut Collector) {
    let mut best: Option<(String, Vec<u64>, String)> = None;
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/libexec"] {
        for name in names_in(tree, dir) {
            let Some(v) = python_version(&name) else {
                continue;
            };
            let p = format!("{dir}/{name}");
            // A versioned link must lead to an interpreter that exists.
            let real = tree
                .metadata(p.as_bytes())
                .is_ok_and(|m| m.kind == FileKind::File);
            if real && best.as_ref().is_none_or(|b| below(&b.1, &v)) {
                best = Some((dotted(&v), v, format!("{p} exists")));
            }
        }
    }
    version_finding(
        "CERT-007",
        "Python",
        &MIN_PYTHON,
        best,
        "install Python 3 (python3 package), which waagent and cloud-init need",
        out,
    );
}

fn glibc(tree: &GuestTree, packages: &Packages, out: &mut Collector) {
    // glibc 2.34 and later (RHEL 9) ship no libc-2.N.so: the package database tells.
    let found = packages
        .first_of(&GLIBC_PACKAGES)
        .map(|p| (p.version.clone(), p.evidence()))
        .or_else(|| glibc_file(tree));
    let Some((v, ev)) = found else {
        out.skip(
            "CERT-010",
            "the glibc version was not found (package libc6 or glibc, libc-2.N.so)",
        );
        return;
    };
    let n = upstream(&v);
    let msg = if below(&n, &GHOST_FIXED) {
        format!("glibc {v} predates 2.18: the certification tool flags GHOST (CVE-2015-0235) unless the distribution backported the fix")
    } else {
        format!("glibc {v} is not affected by GHOST (CVE-2015-0235); the tool's other vulnerability checks need the running VM")
    };
    out.push(Finding::new("CERT-010", Severity::Info, msg).with_evidence(ev));
}

/// glibc before 2.34 ships `libc-2.N.so`.
fn glibc_file(tree: &GuestTree) -> Option<(String, String)> {
    for d in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib/aarch64-linux-gnu",
    ] {
        let found = names_in(tree, d).into_iter().find_map(|n| {
            let minor = n.strip_prefix("libc-2.")?.strip_suffix(".so")?;
            let minor: u64 = minor.parse().ok()?;
            Some((format!("2.{minor}"), format!("{d}/{n} exists")))
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Marketplace SACK table ([MKT-CERT]): distribution family, release (`None`: any), first fixed
/// kernel of that kernel base.
pub const SACK_TABLE: &[(&str, Option<&str>, &str)] = &[
    ("ubuntu", None, "4.4.0-151"),
    ("ubuntu", None, "4.15.0-1049"),
    ("ubuntu", None, "4.18.0-1023"),
    ("ubuntu", Some("18.04"), "5.0.0-1025"),
    ("ubuntu", Some("19.04"), "5.0.0-1010"),
    ("ubuntu", None, "5.3.0-1004"),
    ("rhel", None, "2.6.32-754.15.3"),
    ("rhel", None, "3.10.0-327.79.2"),
    ("rhel", None, "3.10.0-514.66.2"),
    ("rhel", None, "3.10.0-693.50.3"),
    ("rhel", None, "3.10.0-862.34.2"),
    ("rhel", None, "3.10.0-957.21.3"),
    ("rhel", None, "3.10.0-1062.1.1"),
    ("rhel", None, "4.18.0-80.4.2"),
    ("rhel", None, "4.18.0-147"),
    ("suse", None, "3.0.101-108.95.2"),
    ("suse", None, "3.12.74-60.64.115.1"),
    ("suse", None, "4.4.121-92.114.1"),
    ("suse", None, "4.4.180-4.31.1"),
    ("suse", None, "4.4.180-94.97.1"),
    ("suse", None, "4.12.14-5.30.1"),
    ("suse", None, "4.12.14-6.15.2"),
    ("suse", None, "4.12.14-95.19.1"),
    ("ol", None, "2.6.39-400.312.2"),
    ("ol", None, "3.8.13-118.35.2"),
    ("ol", None, "4.1.12-124.28.3"),
    ("ol", None, "4.14.35-1902.2.0"),
    ("coreos", None, "4.19.43"),
    ("debian", None, "3.16.68-2"),
    ("debian", None, "4.9.168-1+deb9u3"),
    ("debian", None, "4.19.37-5"),
];

/// Upstream stable releases carrying the SACK fixes, by kernel line; 5.2 and later have them.
pub const SACK_UPSTREAM: &[[u64; 3]] = &[
    [4, 4, 182],
    [4, 9, 182],
    [4, 14, 127],
    [4, 19, 52],
    [5, 1, 11],
];

/// What [`sack_verdict`] concludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sack {
    /// The fixes are in; why.
    Fixed(String),
    /// They are not; why.
    Vulnerable(String),
    /// Neither table says; why.
    Unknown(String),
}

/// The distribution families of [`SACK_TABLE`] that apply to os-release `ids` (ID first, then
/// ID_LIKE).
pub fn sack_families(ids: &[String]) -> Vec<&'static str> {
    let map = |id: &str| -> Option<&'static [&'static str]> {
        Some(match id {
            "ubuntu" => &["ubuntu"],
            "debian" => &["debian"],
            "rhel" | "centos" | "almalinux" | "rocky" => &["rhel"],
            "ol" => &["ol", "rhel"],
            "sles" | "sled" | "suse" | "opensuse" | "opensuse-leap" => &["suse"],
            "coreos" | "flatcar" => &["coreos"],
            _ => return None,
        })
    };
    ids.iter()
        .find_map(|i| map(i))
        .map(<[_]>::to_vec)
        .unwrap_or_default()
}

/// Judges kernel `version` (a kernel release such as `3.10.0-957.27.2.el7.x86_64`, or for
/// Debian the kernel package version) against the Marketplace table for `families` (and the
/// distribution release `release`), else against the upstream stable fixes.
pub fn sack_verdict(families: &[&str], release: Option<&str>, version: &str) -> Sack {
    let n = numbers(version);
    if n.len() < 3 {
        return Sack::Unknown(format!("kernel version {version} cannot be read"));
    }
    let base = &n[..3];
    let candidates: Vec<&str> = SACK_TABLE
        .iter()
        .filter(|(f, r, v)| {
            families.contains(f)
                && r.is_none_or(|r| release.is_none_or(|rel| rel == r))
                && numbers(v).get(..3) == Some(base)
        })
        .map(|(_, _, v)| *v)
        .collect();
    if !candidates.is_empty() {
        return table_verdict(version, &n, &candidates);
    }
    if !below(base, &[5, 2, 0]) {
        return Sack::Fixed(format!("kernel {} is 5.2 or later", dotted(base)));
    }
    match SACK_UPSTREAM.iter().find(|f| f[..2] == base[..2]) {
        Some(f) if below(base, f) => Sack::Vulnerable(format!(
            "kernel {version} is older than upstream {}, the first {}.{} release with the fixes",
            dotted(f), f[0], f[1]
        )),
        Some(f) => Sack::Fixed(format!("kernel {} is at least upstream {}", dotted(base), dotted(f))),
        None => Sack::Unknown(format!(
            "kernel {version}: the {}.{} line got no upstream fix and the Marketplace table does not list it for this distribution",
            base[0], base[1]
        )),
    }
}

fn table_verdict(version: &str, n: &[u64], candidates: &[&str]) -> Sack {
    let release = |v: &[u64]| v.get(3).copied().unwrap_or(0);
    let same: Vec<&&str> = candidates
        .iter()
        .filter(|c| release(&numbers(c)) == release(n))
        .collect();
    if let Some(c) = same.first() {
        return if below(n, &numbers(c)) {
            Sack::Vulnerable(format!(
                "kernel {version} is older than {c} (Marketplace SACK table)"
            ))
        } else {
            Sack::Fixed(format!(
                "kernel {version} is at least {c} (Marketplace SACK table)"
            ))
        };
    }
    let newest = candidates
        .iter()
        .max_by_key(|c| release(&numbers(c)))
        .copied()
        .unwrap_or_default();
    if release(n) > release(&numbers(newest)) {
        Sack::Fixed(format!(
            "kernel {version} is a later build than {newest} (Marketplace SACK table)"
        ))
    } else {
        Sack::Vulnerable(format!(
            "kernel {version} is older than the fixed builds of its base ({}) in the Marketplace SACK table",
            candidates.join(", ")
        ))
    }
}

/// Whether the rpm kernel package `p` is the kernel of release `kv`: its version-release is
/// the release (Azure Linux), followed by the architecture (Red Hat `.x86_64`) or, with
/// the last release component dropped, by the flavour (SUSE: `5.14.21-150500.55.39-default`
/// from release `150500.55.39.1`).
pub fn rpm_kernel_matches(p: &Package, kv: &str) -> bool {
    let evr = Evr::parse(&p.version);
    let Some(release) = evr.release else {
        return false;
    };
    let full = format!("{}-{release}", evr.version);
    let exact = kv == full || kv.strip_prefix(&full).is_some_and(|r| r.starts_with('.'));
    let suse = release.rsplit_once('.').is_some_and(|(short, _)| {
        kv.strip_prefix(&format!("{}-{short}-", evr.version))
            .is_some_and(|flavour| !flavour.is_empty())
    });
    exact || suse
}

/// The installed package of kernel release `kv`: Debian's `linux-image-<kv>` (whose version
/// carries the patch level the release hides), or the rpm kernel package it came from.
fn kernel_package<'a>(packages: &'a Packages, families: &[&str], kv: &str) -> Option<&'a Package> {
    if families.contains(&"debian") {
        if let Some(p) = packages.get(&format!("linux-image-{kv}")) {
            return Some(p);
        }
    }
    RPM_KERNEL_PACKAGES.iter().find_map(|n| {
        packages
            .named(n)
            .find(|p| p.source != Source::Dpkg && rpm_kernel_matches(p, kv))
    })
}

fn sack(ctx: &Context, packages: &Packages, out: &mut Collector) {
    let Some(k) = &ctx.kernel else {
        out.skip("CERT-012", "no kernel facts");
        return;
    };
    let default = k
        .cmdlines
        .effective_source()
        .and_then(|s| s.kernel.as_ref())
        .and_then(|f| f.path.rsplit('/').next())
        .and_then(|n| {
            ["vmlinuz-", "vmlinux-", "Image-"]
                .iter()
                .find_map(|p| n.strip_prefix(p))
        })
        .map(str::to_string);
    let kernels: Vec<&str> = match &default {
        Some(d) if k.kernels.iter().any(|x| &x.version == d) => vec![d.as_str()],
        _ => k.kernels.iter().map(|x| x.version.as_str()).collect(),
    };
    if kernels.is_empty() {
        out.skip("CERT-012", "no installed kernel was found");
        return;
    }
    out.evaluated("CERT-012");
    let families = sack_families(&ctx.os_ids());
    let release = ctx.os.as_ref().and_then(|o| o.version_id.clone());
    for kv in kernels {
        // Debian's kernel release (4.19.0-5-amd64) hides the patch level, SUSE's the last
        // release number (4.12.14-95.19-default of 4.12.14-95.19.1): their packages have them.
        let (version, ev) = match kernel_package(packages, &families, kv) {
            Some(p) if p.source == Source::Dpkg => (p.version.clone(), p.evidence()),
            Some(p) => {
                let evr = Evr::parse(&p.version);
                let vr = format!("{}-{}", evr.version, evr.release.unwrap_or_default());
                (vr, p.evidence())
            }
            None => (kv.to_string(), format!("/lib/modules/{kv}")),
        };
        let (sev, why) = match sack_verdict(&families, release.as_deref(), &version) {
            Sack::Fixed(_) => continue,
            Sack::Vulnerable(w) => (
                Severity::Warning,
                format!("{w}: it lacks the TCP SACK fixes (CVE-2019-11477/11478/11479)"),
            ),
            Sack::Unknown(w) => (
                Severity::Warning,
                format!("{w}; the SACK fixes (CVE-2019-11477/11478/11479) cannot be confirmed"),
            ),
        };
        out.push(
            Finding::new("CERT-012", sev, why)
                .with_evidence(ev)
                .with_remediation(
                    "update the kernel to the distribution's current release and rebuild the image",
                ),
        );
    }
}

fn client_alive(ctx: &Context, out: &mut Collector, why: &str) {
    let Some(sys) = &ctx.system else {
        out.skip("CERT-008", why);
        return;
    };
    let ssh = &sys.ssh;
    if ssh.sshd_binary.is_none() && !ssh.config_read {
        out.skip("CERT-008", "no SSH server is installed");
        return;
    }
    out.evaluated("CERT-008");
    let secs = ssh.client_alive_interval_seconds;
    if secs.is_some_and(|s| CLIENT_ALIVE.contains(&s)) {
        return;
    }
    let set = &ssh.client_alive_interval;
    let (ev, at) = match &set.source {
        Some(l) => (
            format!("{}:{}: {}", l.path, l.line, l.text),
            Some((l.path.clone(), l.line)),
        ),
        None => (
            "not set: OpenSSH's default 0 (no keep-alive)".to_string(),
            None,
        ),
    };
    let mut f = Finding::new(
        "CERT-008",
        Severity::Warning,
        format!("sshd's ClientAliveInterval is {}; certification accepts 30 to 235 (180 recommended)", set.value),
    )
    .with_evidence(ev)
    .with_remediation("echo 'ClientAliveInterval 180' > /etc/ssh/sshd_config.d/50-azure.conf (or set it in /etc/ssh/sshd_config before any Match block)");
    if let Some((p, l)) = at {
        f = f.at_guest(p, Some(l));
    }
    out.push(f);
}

fn architecture(ctx: &Context, out: &mut Collector, why: &str) {
    let Some(a) = &ctx.derived.architecture else {
        out.skip("CERT-009", why);
        return;
    };
    out.evaluated("CERT-009");
    if a == "x64" || a == "Arm64" {
        return;
    }
    let from = ctx
        .derived
        .architecture_evidence
        .clone()
        .unwrap_or_default();
    out.push(
        Finding::new(
            "CERT-009",
            Severity::Error,
            format!("the OS is {a}; certification accepts 64-bit operating systems only"),
        )
        .with_evidence(format!("ELF header of {from}"))
        .with_remediation("build the image for x86_64 (or arm64)")
        .at_guest(from, None),
    );
}

fn auto_update(ctx: &Context, out: &mut Collector, why: &str) {
    let Some(a) = &ctx.agents else {
        out.skip("CERT-011", why);
        return;
    };
    let w = &a.waagent;
    if !w.installed {
        out.skip("CERT-011", "waagent is not installed (CERT-002)");
        return;
    }
    out.evaluated("CERT-011");
    let s = &w.settings;
    let latest =
        !s.auto_update_to_latest_version.from_default && s.auto_update_to_latest_version.value;
    if s.auto_update_enabled.value || latest {
        return;
    }
    let ev = s.auto_update_enabled.evidence.as_ref();
    let mut f = Finding::new(
        "CERT-011",
        Severity::Warning,
        "waagent's AutoUpdate.Enabled is off; certification requires agent auto-update",
    )
    .with_evidence(ev.map_or_else(
        || "AutoUpdate.Enabled=n".to_string(),
        |e| format!("{}:{}: {}", e.path, e.line.unwrap_or(0), e.detail),
    ))
    .with_remediation("sed -i 's/^AutoUpdate.Enabled=n/AutoUpdate.Enabled=y/' /etc/waagent.conf");
    if let Some(e) = ev {
        f = f.at_guest(e.path.clone(), e.line);
    }
    out.push(f);
}

fn vhd_format(ctx: &Context, out: &mut Collector) {
    out.evaluated("CERT-013");
    let bad: Vec<&Finding> = ctx
        .container
        .findings
        .iter()
        .filter(|f| {
            f.severity == Severity::Error
                && ["VHD-001", "VHD-002", "VHD-003", "VHD-004", "VHD-005"].contains(&f.id)
        })
        .collect();
    if bad.is_empty() {
        return;
    }
    out.push(
        Finding::new(
            "CERT-013",
            Severity::Error,
            format!("{} is not a valid fixed VHD: {}", ctx.file, bad[0].message),
        )
        .with_evidence(
            bad.iter()
                .map(|f| format!("{}: {}", f.id, f.message))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .with_remediation(format!(
            "vhdprep convert {} disk.vhd (or vhdprep fix --in-place)",
            ctx.file
        )),
    );
}

fn generalized(ctx: &Context, out: &mut Collector, why: &str) {
    let v = &ctx.derived.os_state;
    let declared = ctx.policy.os_state == Some(OsState::Specialized);
    let Some(state) = v.value else {
        if declared {
            out.push(Finding::new(
                "CERT-014",
                Severity::Error,
                "osState Specialized is declared; Marketplace images must be generalized",
            ));
        } else {
            out.skip("CERT-014", why);
        }
        return;
    };
    out.evaluated("CERT-014");
    let fix = "deprovision before capture: sudo waagent -deprovision+user (and cloud-init clean --logs --seed)";
    if state == OsState::Specialized {
        out.push(
            Finding::new(
                "CERT-014",
                Severity::Error,
                "the image is not generalized; Marketplace images must be deprovisioned",
            )
            .with_evidence(v.specialized_evidence.join("; "))
            .with_remediation(fix),
        );
    } else if declared {
        out.push(
            Finding::new(
                "CERT-014",
                Severity::Error,
                "osState Specialized is declared; Marketplace images must be generalized",
            )
            .with_evidence("--os-state specialized")
            .with_remediation("declare --os-state Generalized"),
        );
    }
}

fn first_partition(ctx: &Context, out: &mut Collector) {
    let Some(t) = ctx.discovery.as_ref().and_then(|d| d.table.as_ref()) else {
        out.skip("CERT-015", "no partition table was read");
        return;
    };
    let Some(first) = t.partitions.iter().min_by_key(|p| p.start_bytes) else {
        out.skip("CERT-015", "the disk has no partitions");
        return;
    };
    out.evaluated("CERT-015");
    if first.start_bytes >= FIRST_PARTITION_MIN {
        return;
    }
    out.push(
        Finding::new(
            "CERT-015",
            Severity::Warning,
            format!(
                "partition {} starts at {} KiB; Marketplace asks for the first 2048 KB of the disk to be free",
                first.number,
                first.start_bytes / KIB
            ),
        )
        .with_evidence(format!("partition {} starts at LBA {} (byte {})", first.number, first.start_lba, first.start_bytes))
        .with_remediation("create the first partition at 2 MiB or later (sgdisk -n 1:4096:... / parted mkpart ... 2MiB)")
        .at_disk(first.start_bytes, Some(first.size_bytes)),
    );
}

fn credentials(ctx: &Context, out: &mut Collector, why: &str) {
    let Some(sys) = &ctx.system else {
        out.skip("CERT-016", why);
        return;
    };
    let u = &sys.users;
    if !u.shadow_read {
        out.skip("CERT-016", "/etc/shadow could not be read");
        return;
    }
    out.evaluated("CERT-016");
    let login: Vec<&str> = u.login_users.iter().map(|l| l.name.as_str()).collect();
    for e in &u.shadow {
        if e.name != "root" && !login.contains(&e.name.as_str()) {
            continue;
        }
        let what = match &e.password {
            PasswordField::Usable { .. } => "a usable password",
            PasswordField::Empty => "an empty password",
            _ => continue,
        };
        out.push(
            Finding::new("CERT-016", Severity::Error, format!("{} has {what}: Marketplace images must not ship default credentials", e.name))
                .with_evidence(format!("/etc/shadow line {}: {}:<{what}>", e.line, e.name))
                .with_remediation(format!("passwd -l {} (waagent -deprovision+user locks root and removes the provisioned user)", e.name))
                .at_guest("/etc/shadow", Some(e.line)),
        );
    }
    for k in &u.authorized_keys {
        if k.keys.unwrap_or(1) == 0 {
            continue;
        }
        out.push(
            Finding::new(
                "CERT-016",
                Severity::Error,
                format!(
                    "{} ships SSH keys: Marketplace images must not ship default credentials",
                    k.path
                ),
            )
            .with_evidence(format!("{}: {} bytes", k.path, k.size))
            .with_remediation(format!("rm -f {}", k.path))
            .at_guest(k.path.clone(), None),
        );
    }
}

fn disk_sizes(ctx: &Context, out: &mut Collector) {
    out.evaluated("CERT-017");
    let v = ctx.image.virtual_size();
    if !OS_DISK.contains(&v) {
        out.push(
            Finding::new(
                "CERT-017",
                Severity::Warning,
                format!("the OS disk is {:.1} GiB; Marketplace recommends 30 to 1,023 GiB for Linux", v as f64 / GIB as f64),
            )
            .with_evidence(format!("virtual size {v} bytes"))
            .with_remediation("resize the image into 30..1023 GiB (qemu-img resize, then grow the partition), then vhdprep fix --in-place"),
        );
    }
    if ctx.data_disks.is_empty() {
        out.skip("CERT-018", "no data disk given");
        return;
    }
    out.evaluated("CERT-018");
    for d in &ctx.data_disks {
        let s = d.image.virtual_size();
        if s > DATA_DISK_MAX {
            out.push(
                Finding::new(
                    "CERT-018",
                    Severity::Warning,
                    format!(
                        "data disk {} is {:.1} GiB; Marketplace data disks are at most 1,023 GiB",
                        d.file,
                        s as f64 / GIB as f64
                    ),
                )
                .with_evidence(format!("virtual size {s} bytes")),
            );
        }
    }
}

fn extensions(ctx: &Context, out: &mut Collector, why: &str) {
    let Some(a) = &ctx.agents else {
        out.skip("CERT-019", why);
        return;
    };
    let w = &a.waagent;
    if !w.installed {
        out.skip("CERT-019", "waagent is not installed (CERT-002)");
        return;
    }
    out.evaluated("CERT-019");
    let mut problems = Vec::new();
    if !w.enabled {
        problems.push(format!(
            "its service {} is not enabled",
            w.service.systemd.name
        ));
    }
    let e = &w.settings.extensions_enabled;
    if !e.value {
        problems.push(match &e.evidence {
            Some(ev) => format!("{}:{}: {}", ev.path, ev.line.unwrap_or(0), ev.detail),
            None => "Extensions.Enabled=n".into(),
        });
    }
    if problems.is_empty() {
        return;
    }
    let mut f = Finding::new(
        "CERT-019",
        Severity::Warning,
        "waagent cannot run VM extensions, so the Linux Diagnostic Extension of the certification cannot provision",
    )
    .with_evidence(problems.join("; "))
    .with_remediation(format!("set Extensions.Enabled=y in /etc/waagent.conf and systemctl enable {}", w.service.systemd.name));
    if let Some(ev) = &e.evidence {
        if !e.value {
            f = f.at_guest(ev.path.clone(), ev.line);
        }
    }
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(numbers("1:2.36-9+deb12u14"), vec![2, 36, 9, 12, 14]);
        assert_eq!(upstream("3.0.22-1~deb12u2"), vec![3, 0, 22]);
        assert_eq!(upstream("0.9.8zh-1"), vec![0, 9, 8]);
        assert_eq!(upstream("1:9.2p1-2"), vec![9, 2]);
        assert_eq!(upstream("garbage"), Vec::<u64>::new());
        assert!(below(&upstream("0.9.7m-1"), &MIN_OPENSSL));
        assert!(!below(&upstream("0.9.8"), &MIN_OPENSSL));
        assert!(below(&numbers("2.2.40"), &MIN_WAAGENT));
        assert!(!below(&numbers("2.2.41"), &MIN_WAAGENT));
        assert!(!below(&numbers("2.7.3.0"), &MIN_WAAGENT));
        assert!(!below(&numbers("2.10.0.8"), &MIN_WAAGENT));
        assert!(below(&[2, 5], &MIN_PYTHON) && !below(&[3, 11], &MIN_PYTHON));
        // Absurdly long digit runs saturate instead of failing.
        assert_eq!(numbers("99999999999999999999999.1"), vec![u64::MAX, 1]);
    }

    #[test]
    fn python_interpreter_names() {
        assert_eq!(python_version("python3.11"), Some(vec![3, 11]));
        assert_eq!(python_version("platform-python3.6"), Some(vec![3, 6]));
        assert_eq!(python_version("python2.7"), Some(vec![2, 7]));
        for n in [
            "python3",
            "python3.11-config",
            "python",
            "python.1",
            "python3.",
            "pythonX.1",
            "python3.999999",
        ] {
            assert_eq!(python_version(n), None, "{n}");
        }
    }

    #[test]
    fn rpm_kernel_packages_match_their_release() {
        let p = |name: &str, version: &str| Package {
            name: name.into(),
            version: version.into(),
            arch: Some("x86_64".into()),
            source: Source::RpmSqlite,
            path: "/var/lib/rpm/rpmdb.sqlite".into(),
            line: None,
        };
        let rhel = p("kernel-core", "5.14.0-362.8.1.el9_3");
        assert!(rpm_kernel_matches(&rhel, "5.14.0-362.8.1.el9_3.x86_64"));
        assert!(!rpm_kernel_matches(&rhel, "5.14.0-362.8.1.el9_30.x86_64"));
        assert!(!rpm_kernel_matches(&rhel, "5.14.0-362.8.1"));
        let suse = p("kernel-default", "4.12.14-95.19.1");
        assert!(rpm_kernel_matches(&suse, "4.12.14-95.19-default"));
        assert!(!rpm_kernel_matches(&suse, "4.12.14-95.19"));
        assert!(!rpm_kernel_matches(&suse, "4.12.14-95.1-default"));
        let mariner = p("kernel", "5.15.153.1-2.cm2");
        assert!(rpm_kernel_matches(&mariner, "5.15.153.1-2.cm2"));
        assert!(!rpm_kernel_matches(&p("kernel", "1:5.15"), "5.15"));
        // The SUSE package's version is what the Marketplace table lists.
        let families = sack_families(&["sles".into()]);
        assert!(matches!(
            sack_verdict(&families, None, "4.12.14-95.19.1"),
            Sack::Fixed(_)
        ));
    }

    #[test]
    fn sack_uses_the_marketplace_table_then_upstream() {
        let rhel = sack_families(&["rhel".into(), "fedora".into()]);
        assert_eq!(rhel, vec!["rhel"]);
        let fixed = |f: &[&str], r, v| matches!(sack_verdict(f, r, v), Sack::Fixed(_));
        let vuln = |f: &[&str], r, v| matches!(sack_verdict(f, r, v), Sack::Vulnerable(_));
        // RHEL 7.6 before and after its fix; 7.9 is a later build line.
        assert!(vuln(&rhel, None, "3.10.0-957.10.1.el7.x86_64"));
        assert!(fixed(&rhel, None, "3.10.0-957.21.3.el7.x86_64"));
        assert!(fixed(&rhel, None, "3.10.0-1160.102.1.el7.x86_64"));
        assert!(vuln(&rhel, None, "3.10.0-229.1.2.el7.x86_64"));
        assert!(fixed(&rhel, None, "4.18.0-513.5.1.el8_9.x86_64"));
        // RHEL 9 and anything from 5.2 on.
        assert!(fixed(&rhel, None, "5.14.0-362.8.1.el9_3.x86_64"));
        // Ubuntu 18.04 and 19.04 differ for 5.0.0.
        let ubuntu = sack_families(&["ubuntu".into(), "debian".into()]);
        assert_eq!(ubuntu, vec!["ubuntu"]);
        assert!(vuln(&ubuntu, Some("18.04"), "5.0.0-1020-azure"));
        assert!(fixed(&ubuntu, Some("19.04"), "5.0.0-1020-azure"));
        // Debian package versions.
        let debian = sack_families(&["debian".into()]);
        assert!(fixed(&debian, None, "4.19.37-5"));
        assert!(vuln(&debian, None, "4.19.28-2"));
        // Upstream stable fixes for other distributions.
        assert!(vuln(&[], None, "4.19.51"));
        assert!(fixed(&[], None, "4.19.52-arch1"));
        assert!(fixed(&[], None, "5.1.11"));
        assert!(vuln(&[], None, "5.1.10"));
        assert!(fixed(&[], None, "6.1.0-56-cloud-amd64"));
        assert!(matches!(
            sack_verdict(&[], None, "4.18.0-1"),
            Sack::Unknown(_)
        ));
        assert!(matches!(sack_verdict(&[], None, "x"), Sack::Unknown(_)));
        // Debian without its package version falls back to upstream on the ABI name.
        assert!(vuln(&debian, None, "4.19.0-5-amd64"));
    }
}
