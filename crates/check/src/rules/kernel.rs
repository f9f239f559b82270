//! KRN-xxx: kernels, initramfs images, kernel modules and the kernel command line, judged from
//! the kernel facts (`ctx.kernel`) of every installed kernel that has an image in `/boot` (the
//! ones a boot loader can start).

use super::Collector;
use crate::catalogue::{rule, RuleInfo};
use crate::context::Context;
use crate::policy::Generation;
use vhdprep_finding::{Finding, Severity};
use vhdprep_guest::elf::Architecture;
use vhdprep_guest::facts::kernel::cmdline::Cmdline;
use vhdprep_guest::facts::kernel::modules::WANTED;
use vhdprep_guest::facts::kernel::modules::{BlacklistKind, ModulePresence};
use vhdprep_guest::facts::kernel::{InstalledKernel, KernelFacts};
use vhdprep_guest::Family;

/// This area's catalogue entries.
pub const RULES: &[RuleInfo] = &[
    rule("KRN-001", Severity::Error, "Hyper-V storage drivers at boot", "hv_vmbus and hv_storvsc must be in the initramfs (or built in) of every bootable kernel, or the root disk is not found; hv_netvsc is recommended there too (warning).", "[GENERIC]; [SUSE]; [RHEL]").deviating("An initramfs that could not be read to the end is a warning, not an error: the drivers may be in the part not read."),
    rule("KRN-002", Severity::Error, "UDF available", "The udf filesystem must be available and not blacklisted: the provisioning ISO is UDF. A warning when cloud-init 21.2 or later provisions (it then needs UDF only for custom data and password logins).", "[GENERIC]; [RHEL]; [ORACLE]; [AGENT-DOC]"),
    rule("KRN-003", Severity::Error, "vfat available", "The vfat filesystem must be available and not blacklisted: disabling it breaks provisioning and booting from the ESP.", "[GENERIC]; [SUSE]; [RHEL]"),
    rule("KRN-004", Severity::Warning, "Other Hyper-V drivers", "hv_utils (KVP, shutdown, time sync), hv_balloon, hyperv_keyboard, hid_hyperv, hyperv_fb or hyperv_drm, and pci_hyperv (SR-IOV, accelerated networking) should be available.", "[CIV-AZURE]; [TIMESYNC]"),
    rule("KRN-005", Severity::Warning, "Kernel 2.6.37 or later", "Kernels older than 2.6.37 (RHEL: 2.6.32-504) need numa=off on the command line.", "[GENERIC]; [ORACLE]"),
    rule("KRN-006", Severity::Error, "NVMe readiness", "Images tagged with the NVMe disk controller need nvme and nvme_core at boot, nvme_core.io_timeout=240, Generation 2, and fstab by UUID. Information when not tagged.", "[UBUNTU]; [RHEL]; [DEBIAN]; [SUSE]; [ORACLE]; [NVME-OS]"),
    rule("KRN-007", Severity::Warning, "Accelerated networking drivers", "Images declaring accelerated networking need the Mellanox (mlx4_en, mlx4_core, mlx5_core) and MANA (mana) VF drivers: the hardware varies.", "[MANA]").deviating("When accelerated networking is not declared, missing drivers are information (do not declare it) rather than a warning."),
    rule("KRN-008", Severity::Warning, "Kernel command line for Azure", "x64: console=ttyS0, earlyprintk=ttyS0 and rootdelay=300 (missing console=ttyS0 is an error for the Marketplace); recommended net.ifnames=0, no rhgb/quiet/crashkernel=auto. Arm64: console=ttyAMA0 instead.", "[GENERIC]; [MKT-CERT]; [MKT-TEST]; [UBUNTU]; [ISSUE-IB-1455]; [PR-IB-1457]").deviating("The recommendations (net.ifnames=0; no rhgb, quiet, crashkernel=auto) are information, not warnings. On Arm64 a missing console=ttyAMA0 is a warning, also for the Marketplace (whose error is about x64's ttyS0)."),
    rule("KRN-009", Severity::Warning, "Initramfs builder keeps Hyper-V drivers", "dracut hostonly=yes (or initramfs-tools MODULES=dep) built on a non-Hyper-V host drops the hv drivers unless add_drivers (or /etc/initramfs-tools/modules) lists them.", "[GENERIC]").deviating("Also warns for initramfs-tools MODULES=dep, the Debian counterpart of dracut's hostonly, when /etc/initramfs-tools/modules does not list the drivers."),
    rule("KRN-010", Severity::Error, "64-bit OS", "Only 64-bit operating systems (x86_64, aarch64) are supported.", "[MKT-TEST]; [MKT-VHD-FAQ]"),
];

/// Kernel modules KRN-001 requires early (error) and recommends early (warning).
pub const STORAGE_MODULES: [&str; 2] = ["hv_vmbus", "hv_storvsc"];
/// Modules KRN-004 asks for; an inner list is satisfied by any one of its members.
pub const OTHER_HYPERV_MODULES: &[&[&str]] = &[
    &["hv_utils"],
    &["hv_balloon"],
    &["hyperv_keyboard"],
    &["hid_hyperv"],
    &["hyperv_fb", "hyperv_drm"],
    &["pci_hyperv"],
];
/// KRN-007's VF drivers.
pub const ACCELERATED_NETWORKING_MODULES: [&str; 4] = ["mlx4_en", "mlx4_core", "mlx5_core", "mana"];
/// cloud-init from this version provisions without the UDF ISO (SSH keys, no custom data).
pub const CLOUD_INIT_NO_UDF: [u64; 2] = [21, 2];

/// Evaluates KRN-001..010.
pub fn evaluate(ctx: &Context, out: &mut Collector) {
    architecture(ctx, out);
    let Some(k) = &ctx.kernel else {
        out.skip_all(RULES, "the guest was not examined");
        return;
    };
    let bootable: Vec<&InstalledKernel> =
        k.kernels.iter().filter(|k| k.vmlinuz.is_some()).collect();
    storage_drivers(ctx, k, &bootable, out);
    if bootable.is_empty() {
        for id in [
            "KRN-002", "KRN-003", "KRN-004", "KRN-005", "KRN-006", "KRN-007",
        ] {
            out.skip(id, "no kernel image in /boot");
        }
    } else {
        filesystems(ctx, k, &bootable, out);
        other_drivers(&bootable, out);
        old_kernels(k, &bootable, out);
        nvme(ctx, k, &bootable, out);
        accelerated_networking(ctx, &bootable, out);
    }
    command_line(ctx, k, out);
    builder(ctx, k, out);
}

// ------------------------------------------------------------------------------ helpers

fn module<'a>(k: &'a InstalledKernel, name: &str) -> Option<&'a ModulePresence> {
    k.module(name)
}

/// Available to the kernel at all: built in, `=y`, a module file, or in the initramfs.
fn available(k: &InstalledKernel, name: &str) -> bool {
    module(k, name)
        .is_some_and(|p| p.available() || p.config.as_ref().is_some_and(|c| c.value == "y"))
}

/// Usable before the root filesystem is mounted.
fn early(k: &InstalledKernel, name: &str) -> bool {
    module(k, name).is_some_and(ModulePresence::early)
}

/// Where a module stands for one kernel, in words (for evidence).
fn describe(k: &InstalledKernel, name: &str) -> String {
    let Some(p) = module(k, name) else {
        return format!("{name}: not looked for");
    };
    let mut parts = Vec::new();
    if let Some(c) = &p.config {
        let file = k.config.as_deref().unwrap_or("config");
        parts.push(format!("{file} line {}: {}={}", c.line, c.option, c.value));
    } else if let Some(w) = WANTED.iter().find(|w| w.name == name) {
        parts.push(format!(
            "{} not set in the kernel config",
            w.kconfig.join("/")
        ));
    }
    if p.builtin {
        parts.push("listed in modules.builtin".into());
    }
    match &p.on_disk {
        Some(path) => parts.push(format!("module file {path}")),
        None => parts.push("no module file".into()),
    }
    match (&p.in_initramfs, &k.initramfs) {
        (Some(m), Some(i)) => parts.push(format!("in {} as {m}", i.path)),
        (None, Some(i)) => parts.push(format!("not in {}", i.path)),
        _ => {}
    }
    format!("{name}: {}", parts.join(", "))
}

/// The command that rebuilds the initramfs of kernel `v` with `modules`, for the guest's
/// builder.
fn rebuild_command(ctx: &Context, v: &str, modules: &[&str]) -> String {
    let exists = |p: &str| ctx.tree().is_some_and(|t| t.exists(p.as_bytes()));
    let itools = exists("/usr/sbin/mkinitramfs") || exists("/etc/initramfs-tools");
    let dracut = exists("/usr/bin/dracut") || exists("/etc/dracut.conf");
    let it = format!(
        "printf '%s\\n' {} >> /etc/initramfs-tools/modules && update-initramfs -u -k {v}",
        modules.join(" ")
    );
    let dr = format!(
        "echo 'add_drivers+=\" {} \"' > /etc/dracut.conf.d/azure.conf && dracut -f --kver {v}",
        modules.join(" ")
    );
    // The rpm families build their initramfs with dracut only.
    if ctx.family().uses_rpm() {
        return dr;
    }
    match (itools, dracut) {
        (true, false) => it,
        (false, true) => dr,
        _ => format!("initramfs-tools: `{it}`; dracut: `{dr}`"),
    }
}

/// How the guest's family installs its Azure/cloud kernel.
fn kernel_install(ctx: &Context) -> String {
    match ctx.family() {
        Family::RedHat => "install the distribution's kernel (`dnf install kernel`)".into(),
        Family::Suse => "install the distribution's Azure kernel (`zypper install kernel-azure`)".into(),
        Family::AzureLinux => "install the distribution's kernel (`tdnf install kernel`)".into(),
        Family::Debian | Family::Unknown => {
            "install the distribution's cloud kernel (Debian: `apt install linux-image-cloud-amd64`)".into()
        }
    }
}

fn initramfs_evidence(k: &InstalledKernel) -> String {
    match (&k.initramfs, &k.initramfs_error) {
        (Some(i), _) => {
            let segs: Vec<String> = i
                .listing
                .segments
                .iter()
                .map(|s| format!("{:?}", s.compression).to_lowercase())
                .collect();
            let mut e = format!(
                "{} ({} bytes, {} members in {} segment(s): {})",
                i.path,
                i.size,
                i.listing.member_count,
                segs.len(),
                segs.join(", ")
            );
            if let Some(err) = &i.listing.error {
                e.push_str(&format!("; listing stopped: {err}"));
            }
            e
        }
        (None, Some(err)) => format!("initramfs unreadable: {err}"),
        (None, None) => format!(
            "no initramfs for {} (looked for /boot/initrd.img-{v}, /boot/initramfs-{v}.img, /boot/initrd-{v}[.img])",
            k.version,
            v = k.version
        ),
    }
}

/// Compares dotted numeric versions (`22.4.2-1+deb12u4`, `1:2.6.32-504.el6`): the leading
/// numbers of `v` against `min`; `None` when `v` does not start with a number.
pub fn version_at_least(v: &str, min: &[u64]) -> Option<bool> {
    let v = v.rsplit(':').next().unwrap_or(v);
    let core = v.split(['-', '+', '~', '_']).next()?;
    let mut parts = Vec::new();
    for p in core.split('.') {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            break;
        }
        parts.push(digits.parse::<u64>().ok()?);
    }
    if parts.is_empty() {
        return None;
    }
    for (i, m) in min.iter().enumerate() {
        let a = parts.get(i).copied().unwrap_or(0);
        if a != *m {
            return Some(a > *m);
        }
    }
    Some(true)
}

// ------------------------------------------------------------------------------ KRN-001

fn storage_drivers(
    ctx: &Context,
    k: &KernelFacts,
    bootable: &[&InstalledKernel],
    out: &mut Collector,
) {
    out.evaluated("KRN-001");
    if bootable.is_empty() {
        let dirs: Vec<&str> = k
            .kernels
            .iter()
            .filter_map(|k| k.modules_dir.as_deref())
            .collect();
        out.push(
            Finding::new(
                "KRN-001",
                Severity::Error,
                "no kernel image was found in /boot: the image cannot boot",
            )
            .with_evidence(if dirs.is_empty() {
                "no /boot/vmlinuz-*, vmlinux-* or Image-*, and no /lib/modules/<version>"
                    .to_string()
            } else {
                format!("module trees without a kernel image: {}", dirs.join(", "))
            })
            .with_remediation(kernel_install(ctx))
            .at_guest("/boot", None),
        );
        return;
    }
    for kern in bootable {
        let missing: Vec<&str> = STORAGE_MODULES
            .iter()
            .copied()
            .filter(|m| !early(kern, m))
            .collect();
        if !missing.is_empty() {
            out.push(storage_finding(ctx, kern, &missing));
        }
        if !early(kern, "hv_netvsc") {
            let mut f = Finding::new(
                "KRN-001",
                Severity::Warning,
                format!(
                    "hv_netvsc is not in the initramfs of kernel {} (nor built in): networking in the initramfs (network root, early provisioning) would fail",
                    kern.version
                ),
            )
            .with_evidence(format!("{}; {}", initramfs_evidence(kern), describe(kern, "hv_netvsc")))
            .with_remediation(rebuild_command(ctx, &kern.version, &["hv_netvsc"]));
            let at = kern
                .initramfs
                .as_ref()
                .map(|i| &i.path)
                .or(kern.vmlinuz.as_ref());
            if let Some(p) = at {
                f = f.at_guest(p.clone(), None);
            }
            out.push(f);
        }
    }
}

fn storage_finding(ctx: &Context, kern: &InstalledKernel, missing: &[&str]) -> Finding {
    let list = missing.join(" and ");
    let incomplete = kern
        .initramfs
        .as_ref()
        .and_then(|i| i.listing.error.as_ref())
        .is_some();
    let (severity, message) = match (&kern.initramfs, incomplete) {
        (None, _) => (
            Severity::Error,
            format!(
                "kernel {} has no initramfs and {list} {} not built in: the root disk on the Hyper-V SCSI controller is not found at boot",
                kern.version,
                if missing.len() > 1 { "are" } else { "is" }
            ),
        ),
        (Some(i), true) => (
            Severity::Warning,
            format!(
                "{list} not found in {}, which could not be read to the end: check that the initramfs holds them",
                i.path
            ),
        ),
        (Some(i), false) => (
            Severity::Error,
            format!(
                "the initramfs {} of kernel {} lacks {list} (and {} not built in): the root disk on the Hyper-V SCSI controller is not found at boot",
                i.path,
                kern.version,
                if missing.len() > 1 { "they are" } else { "it is" }
            ),
        ),
    };
    let details: Vec<String> = missing.iter().map(|m| describe(kern, m)).collect();
    let mut f = Finding::new("KRN-001", severity, message)
        .with_evidence(format!(
            "{}; {}",
            initramfs_evidence(kern),
            details.join("; ")
        ))
        .with_remediation(rebuild_command(
            ctx,
            &kern.version,
            &["hv_vmbus", "hv_storvsc", "hv_netvsc"],
        ));
    f = match (&kern.initramfs, &kern.vmlinuz) {
        (Some(i), _) => f.at_guest(i.path.clone(), None),
        (None, Some(v)) => f.at_guest(v.clone(), None),
        _ => f,
    };
    f
}

// ---------------------------------------------------------------------- KRN-002, KRN-003

/// cloud-init provisions and is 21.2 or later: its version, if so.
fn modern_cloud_init(ctx: &Context) -> Option<String> {
    if ctx.derived.provisioning.agent != "cloud-init" {
        return None;
    }
    let v = ctx.agents.as_ref()?.cloud_init.version.as_ref()?;
    version_at_least(&v.version, &CLOUD_INIT_NO_UDF)
        .filter(|ok| *ok)
        .map(|_| v.version.clone())
}

/// KRN-002's severity: a warning when cloud-init ≥ 21.2 provisions, an error otherwise.
pub fn udf_severity(modern_cloud_init: bool) -> Severity {
    if modern_cloud_init {
        Severity::Warning
    } else {
        Severity::Error
    }
}

fn filesystems(ctx: &Context, k: &KernelFacts, bootable: &[&InstalledKernel], out: &mut Collector) {
    let ci = modern_cloud_init(ctx);
    let why_udf = match &ci {
        Some(v) => {
            format!(" (cloud-init {v} provisions without it only with SSH keys and no custom data)")
        }
        None => ": the provisioning ISO (ovf-env.xml, custom data) cannot be mounted".to_string(),
    };
    fs_module(
        k,
        bootable,
        "KRN-002",
        "udf",
        udf_severity(ci.is_some()),
        &why_udf,
        out,
    );
    fs_module(
        k,
        bootable,
        "KRN-003",
        "vfat",
        Severity::Error,
        ": provisioning and boot fail (the ESP and provisioning media are FAT)",
        out,
    );
}

fn fs_module(
    k: &KernelFacts,
    bootable: &[&InstalledKernel],
    id: &'static str,
    name: &str,
    severity: Severity,
    why: &str,
    out: &mut Collector,
) {
    out.evaluated(id);
    for b in k.blacklisted(name) {
        let how = match b.kind {
            BlacklistKind::Blacklist => "blacklisted",
            BlacklistKind::InstallNoop => "disabled (install → no-op)",
            BlacklistKind::Cmdline => "blacklisted on the kernel command line",
        };
        out.push(
            Finding::new(id, severity, format!("the {name} module is {how} by `{}`{why}", b.text))
                .with_evidence(format!("{} line {}: {}", b.file, b.line, b.text))
                .with_remediation(format!(
                    "delete that line from {} (CIS hardening lists `install {name} /bin/true`), then rebuild the initramfs",
                    b.file
                ))
                .at_guest(b.file.clone(), Some(b.line)),
        );
    }
    for kern in bootable {
        if available(kern, name) {
            continue;
        }
        let mut f = Finding::new(
            id,
            severity,
            format!("kernel {} has no {name} filesystem support{why}", kern.version),
        )
        .with_evidence(describe(kern, name))
        .with_remediation(format!(
            "install the kernel's full module package (e.g. linux-modules-extra-<version> on Ubuntu, kernel-modules on RHEL) so that {name}.ko exists"
        ));
        if let Some(c) = &kern.config {
            f = f.at_guest(c.clone(), None);
        }
        out.push(f);
    }
}

// ---------------------------------------------------------------------- KRN-004, KRN-005

fn other_drivers(bootable: &[&InstalledKernel], out: &mut Collector) {
    out.evaluated("KRN-004");
    for kern in bootable {
        let missing: Vec<String> = OTHER_HYPERV_MODULES
            .iter()
            .filter(|any| !any.iter().any(|m| available(kern, m)))
            .map(|any| any.join(" or "))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let details: Vec<String> = OTHER_HYPERV_MODULES
            .iter()
            .filter(|any| !any.iter().any(|m| available(kern, m)))
            .flat_map(|any| any.iter().map(|m| describe(kern, m)))
            .collect();
        let mut f = Finding::new(
            "KRN-004",
            Severity::Warning,
            format!(
                "kernel {} lacks Hyper-V drivers: {} (KVP/shutdown/time sync, memory balloon, console input, video, SR-IOV)",
                kern.version,
                missing.join(", ")
            ),
        )
        .with_evidence(details.join("; "))
        .with_remediation("use the distribution's Azure/cloud kernel, or build these as modules (CONFIG_HYPERV_UTILS, CONFIG_HYPERV_BALLOON, CONFIG_HYPERV_KEYBOARD, CONFIG_HID_HYPERV_MOUSE, CONFIG_DRM_HYPERV, CONFIG_PCI_HYPERV)");
        if let Some(d) = &kern.modules_dir {
            f = f.at_guest(d.clone(), None);
        }
        out.push(f);
    }
}

/// True when a kernel version needs `numa=off`: older than 2.6.37, except RHEL 2.6.32-504+.
pub fn needs_numa_off(version: &str) -> bool {
    if version_at_least(version, &[2, 6, 37]) != Some(false) {
        return false;
    }
    if let Some(rel) = version.strip_prefix("2.6.32-") {
        let n: String = rel.chars().take_while(char::is_ascii_digit).collect();
        if n.parse::<u64>().is_ok_and(|n| n >= 504) {
            return false;
        }
    }
    true
}

fn old_kernels(k: &KernelFacts, bootable: &[&InstalledKernel], out: &mut Collector) {
    out.evaluated("KRN-005");
    let numa_off = k
        .cmdlines
        .effective
        .as_ref()
        .is_some_and(|c| c.value("numa").contains(&"off"));
    if numa_off {
        return;
    }
    for kern in bootable.iter().filter(|k| needs_numa_off(&k.version)) {
        let (file, line) = effective_place(k);
        out.push(
            Finding::new(
                "KRN-005",
                Severity::Warning,
                format!(
                    "kernel {} is older than 2.6.37 and the command line lacks numa=off: it may hang at boot on Azure",
                    kern.version
                ),
            )
            .with_evidence(format!(
                "{}; effective command line in {file}",
                kern.vmlinuz.as_deref().unwrap_or(&kern.version)
            ))
            .with_remediation("add numa=off to GRUB_CMDLINE_LINUX and regenerate the boot menu, or install a newer kernel")
            .at_guest(file, line),
        );
    }
}

// ---------------------------------------------------------------------- KRN-006, KRN-007

fn effective_place(k: &KernelFacts) -> (String, Option<usize>) {
    match k.cmdlines.effective_source() {
        Some(s) => (s.file.clone(), Some(s.line)),
        None => ("/etc/default/grub".to_string(), None),
    }
}

/// What stands in the way of NVMe, one sentence each (empty: ready).
fn nvme_gaps(ctx: &Context, k: &KernelFacts, bootable: &[&InstalledKernel]) -> Vec<String> {
    let mut gaps = Vec::new();
    for kern in bootable {
        for m in ["nvme", "nvme_core"] {
            if !early(kern, m) {
                gaps.push(format!(
                    "kernel {}: {m} is neither built in nor in the initramfs ({})",
                    kern.version,
                    describe(kern, m)
                ));
            }
        }
    }
    let timeout = k.cmdlines.effective.as_ref().map(|c| {
        c.value("nvme_core.io_timeout")
            .last()
            .map(|v| v.to_string())
    });
    match timeout {
        Some(Some(v)) if v == "240" => {}
        Some(Some(v)) => gaps.push(format!(
            "nvme_core.io_timeout={v} on the command line (240 wanted)"
        )),
        _ => gaps.push("no nvme_core.io_timeout=240 on the effective command line".into()),
    }
    if !ctx.derived.generation.contains(&Generation::V2) {
        gaps.push("the disk does not boot as Generation 2 (NVMe is Gen2 only)".into());
    }
    if let Some(g) = &ctx.guest {
        for m in &g.fstab {
            let s = &m.entry.spec;
            if ["/dev/sd", "/dev/hd", "/dev/vd", "/dev/xvd", "/dev/nvme"]
                .iter()
                .any(|p| s.starts_with(p))
            {
                gaps.push(format!(
                    "/etc/fstab line {} mounts {} by device name {s}",
                    m.entry.line, m.entry.mountpoint
                ));
            }
        }
    }
    gaps
}

fn nvme(ctx: &Context, k: &KernelFacts, bootable: &[&InstalledKernel], out: &mut Collector) {
    out.evaluated("KRN-006");
    let gaps = nvme_gaps(ctx, k, bootable);
    let (file, line) = effective_place(k);
    if ctx.policy.nvme {
        for g in &gaps {
            out.push(
                Finding::new(
                    "KRN-006",
                    Severity::Error,
                    format!("the image is tagged for the NVMe disk controller but {g}"),
                )
                .with_evidence(format!("{g}; effective command line in {file}"))
                .with_remediation("add nvme and nvme_core to the initramfs (`echo nvme >> /etc/initramfs-tools/modules` / dracut `add_drivers+=\" nvme nvme_core \"`), add nvme_core.io_timeout=240 to GRUB_CMDLINE_LINUX and regenerate grub.cfg, mount by UUID; or do not tag the image with NVMe")
                .at_guest(file.clone(), line),
            );
        }
        return;
    }
    let msg = if gaps.is_empty() {
        "the image is ready for the NVMe disk controller (DiskControllerTypes SCSI, NVMe)"
            .to_string()
    } else {
        "the image is not ready for the NVMe disk controller: tag it SCSI only".to_string()
    };
    let ev = if gaps.is_empty() {
        "nvme and nvme_core at boot, nvme_core.io_timeout=240, Generation 2, fstab without device names".to_string()
    } else {
        gaps.join("; ")
    };
    out.push(Finding::new("KRN-006", Severity::Info, msg).with_evidence(ev));
}

fn accelerated_networking(ctx: &Context, bootable: &[&InstalledKernel], out: &mut Collector) {
    out.evaluated("KRN-007");
    let declared = ctx.policy.accelerated_networking;
    for kern in bootable {
        let missing: Vec<&str> = ACCELERATED_NETWORKING_MODULES
            .iter()
            .copied()
            .filter(|m| !available(kern, m))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let details: Vec<String> = missing.iter().map(|m| describe(kern, m)).collect();
        let (severity, msg) = if declared {
            (
                Severity::Warning,
                format!(
                    "the image declares accelerated networking but kernel {} lacks {}: VMs on hardware with that NIC get no VF (Mellanox and MANA must both be supported)",
                    kern.version,
                    missing.join(", ")
                ),
            )
        } else {
            (
                Severity::Info,
                format!(
                    "kernel {} lacks {}: do not declare accelerated networking for this image",
                    kern.version,
                    missing.join(", ")
                ),
            )
        };
        let mut f = Finding::new("KRN-007", severity, msg)
            .with_evidence(details.join("; "))
            .with_remediation("use a kernel with CONFIG_MLX4_EN, CONFIG_MLX5_CORE and CONFIG_MICROSOFT_MANA (Debian/Ubuntu cloud kernels have them), or declare IsAcceleratedNetworkSupported=False");
        if let Some(d) = &kern.modules_dir {
            f = f.at_guest(d.clone(), None);
        }
        out.push(f);
    }
}

// ------------------------------------------------------------------------------ KRN-008

fn console_is(c: &Cmdline, tty: &str) -> bool {
    c.value("console")
        .iter()
        .any(|v| v.split(',').next() == Some(tty))
}

fn command_line(ctx: &Context, k: &KernelFacts, out: &mut Collector) {
    let Some(c) = &k.cmdlines.effective else {
        out.skip("KRN-008", "no kernel command line was found");
        return;
    };
    out.evaluated("KRN-008");
    let src = k.cmdlines.effective_source();
    let arm64 = matches!(ctx.architecture, Some((Architecture::Arm64, _)));
    let place = match src {
        Some(s) => format!("{} line {}", s.file, s.line),
        None => "/etc/default/grub (no generated boot menu found)".to_string(),
    };
    let at = |f: Finding| match src {
        Some(s) => f.at_guest(s.file.clone(), Some(s.line)),
        None => f.at_guest("/etc/default/grub", None),
    };
    let evidence = format!("{place}: {}", c.raw);
    let stale = |tty: &str| -> &'static str {
        match &k.cmdlines.intent {
            Some(i) if src.is_some() && console_is(i, tty) => {
                " (/etc/default/grub has it: the boot menu was not regenerated)"
            }
            _ => "",
        }
    };
    let family = ctx.family();
    let fix = |args: &str| family.kernel_args_command(args);
    if arm64 {
        if !console_is(c, "ttyAMA0") {
            out.push(at(Finding::new(
                "KRN-008",
                Severity::Warning,
                format!("the Arm64 kernel command line lacks console=ttyAMA0: the serial console and boot diagnostics stay empty{}", stale("ttyAMA0")),
            )
            .with_evidence(evidence.clone())
            .with_remediation(fix("console=ttyAMA0"))));
        }
        return x64_recommendations(c, &evidence, true, out, &at);
    }
    if !console_is(c, "ttyS0") {
        let severity = if ctx.policy.marketplace {
            Severity::Error
        } else {
            Severity::Warning
        };
        out.push(at(Finding::new(
            "KRN-008",
            severity,
            format!("the kernel command line lacks console=ttyS0: the serial console and boot diagnostics stay empty, and Marketplace certification fails{}", stale("ttyS0")),
        )
        .with_evidence(evidence.clone())
        .with_remediation(fix("console=ttyS0"))));
    }
    let mut missing = Vec::new();
    if !c
        .value("earlyprintk")
        .iter()
        .any(|v| v.starts_with("ttyS0"))
    {
        missing.push("earlyprintk=ttyS0");
    }
    if !c.value("rootdelay").contains(&"300") {
        missing.push("rootdelay=300");
    }
    if !missing.is_empty() {
        out.push(at(Finding::new(
            "KRN-008",
            Severity::Warning,
            format!(
                "the kernel command line lacks {} (cert test 40 warns)",
                missing.join(" and ")
            ),
        )
        .with_evidence(evidence.clone())
        .with_remediation(fix(&missing.join(" ")))));
    }
    x64_recommendations(c, &evidence, false, out, &at);
}

fn x64_recommendations(
    c: &Cmdline,
    evidence: &str,
    arm64: bool,
    out: &mut Collector,
    at: &dyn Fn(Finding) -> Finding,
) {
    let mut notes = Vec::new();
    if !arm64 && !c.has("net.ifnames=0") {
        notes.push("net.ifnames=0 is recommended (interface named eth0)".to_string());
    }
    for a in ["rhgb", "quiet"] {
        if c.has(a) {
            notes.push(format!(
                "{a} hides boot messages from the serial console log"
            ));
        }
    }
    if c.has("crashkernel=auto") {
        notes.push("crashkernel=auto reserves memory on every VM size".to_string());
    }
    if arm64 {
        for a in ["earlyprintk", "rootdelay"] {
            if c.has(a) {
                notes.push(format!("{a} is an x64 setting, not used on Arm64"));
            }
        }
        if console_is(c, "ttyS0") {
            notes.push("console=ttyS0 is the x64 serial console; Arm64 uses ttyAMA0".to_string());
        }
    }
    if notes.is_empty() {
        return;
    }
    out.push(at(Finding::new(
        "KRN-008",
        Severity::Info,
        format!("kernel command line recommendations: {}", notes.join("; ")),
    )
    .with_evidence(evidence.to_string())));
}

// ------------------------------------------------------------------------------ KRN-009

fn builder(ctx: &Context, k: &KernelFacts, out: &mut Collector) {
    out.evaluated("KRN-009");
    let b = &k.builder;
    let not_added: Vec<&str> = ["hv_vmbus", "hv_storvsc", "hv_netvsc"]
        .into_iter()
        .filter(|m| !b.adds(m))
        .collect();
    if not_added.is_empty() {
        return;
    }
    let today = k
        .kernels
        .iter()
        .filter(|k| k.vmlinuz.is_some())
        .all(|k| STORAGE_MODULES.iter().all(|m| early(k, m)));
    let now = if today {
        "today's initramfs has the storage drivers, but a rebuild on a host without Hyper-V drops them"
    } else {
        "KRN-001 shows the effect"
    };
    if let Some(h) = b.dracut_hostonly.as_ref().filter(|h| {
        matches!(
            h.value.to_ascii_lowercase().as_str(),
            "yes" | "y" | "1" | "true"
        )
    }) {
        out.push(
            Finding::new(
                "KRN-009",
                Severity::Warning,
                format!(
                    "dracut builds host-only images (hostonly=\"{}\") without add_drivers for {}: {now}",
                    h.value,
                    not_added.join(", ")
                ),
            )
            .with_evidence(format!("{} line {}: hostonly=\"{}\"", h.file, h.line, h.value))
            .with_remediation(format!(
                "echo 'add_drivers+=\" hv_vmbus hv_netvsc hv_storvsc \"' > /etc/dracut.conf.d/azure.conf && dracut -f --regenerate-all{}",
                if ctx.os_is("suse") { " (SUSE: /etc/dracut.conf.d/azure.conf)" } else { "" }
            ))
            .at_guest(h.file.clone(), Some(h.line)),
        );
    }
    if let Some(p) = b
        .initramfs_tools_policy
        .as_ref()
        .filter(|p| p.value.eq_ignore_ascii_case("dep"))
    {
        out.push(
            Finding::new(
                "KRN-009",
                Severity::Warning,
                format!(
                    "initramfs-tools includes only the modules of the build host (MODULES=dep) and /etc/initramfs-tools/modules does not list {}: {now}",
                    not_added.join(", ")
                ),
            )
            .with_evidence(format!("{} line {}: MODULES={}", p.file, p.line, p.value))
            .with_remediation("printf '%s\\n' hv_vmbus hv_storvsc hv_netvsc >> /etc/initramfs-tools/modules && update-initramfs -u -k all (or set MODULES=most)")
            .at_guest(p.file.clone(), Some(p.line)),
        );
    }
}

// ------------------------------------------------------------------------------ KRN-010

fn architecture(ctx: &Context, out: &mut Collector) {
    let Some((arch, path)) = &ctx.architecture else {
        out.skip("KRN-010", "the guest architecture could not be read");
        return;
    };
    out.evaluated("KRN-010");
    if matches!(arch, Architecture::X64 | Architecture::Arm64) {
        return;
    }
    out.push(
        Finding::new(
            "KRN-010",
            Severity::Error,
            format!(
                "the guest is {} ({}): Azure supports only 64-bit operating systems (x86_64, aarch64)",
                arch.azure_name(),
                arch.uname_name()
            ),
        )
        .with_evidence(format!("ELF header of {path}: machine {}", arch.uname_name()))
        .with_remediation("build the image from the distribution's amd64 or arm64 release")
        .at_guest(path.clone(), None),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(version_at_least("22.4.2-1+deb12u4", &[21, 2]), Some(true));
        assert_eq!(version_at_least("21.2", &[21, 2]), Some(true));
        assert_eq!(version_at_least("21.1.19", &[21, 2]), Some(false));
        assert_eq!(version_at_least("20.4", &[21, 2]), Some(false));
        assert_eq!(version_at_least("1:23.1-0ubuntu1", &[21, 2]), Some(true));
        assert_eq!(version_at_least("x", &[21, 2]), None);
        assert_eq!(
            version_at_least("6.1.0-28-cloud-amd64", &[2, 6, 37]),
            Some(true)
        );
    }

    #[test]
    fn numa_off_only_for_old_kernels() {
        assert!(needs_numa_off("2.6.32-431.el6.x86_64"));
        assert!(!needs_numa_off("2.6.32-504.el6.x86_64"));
        assert!(!needs_numa_off("2.6.32-754.35.1.el6.x86_64"));
        assert!(needs_numa_off("2.6.36"));
        assert!(!needs_numa_off("2.6.37"));
        assert!(!needs_numa_off("3.10.0-1160.el7.x86_64"));
        assert!(!needs_numa_off("6.1.0-28-cloud-amd64"));
        assert!(!needs_numa_off("not-a-version"));
    }

    #[test]
    fn udf_is_a_warning_only_with_modern_cloud_init() {
        assert_eq!(udf_severity(true), Severity::Warning);
        assert_eq!(udf_severity(false), Severity::Error);
    }

    #[test]
    fn every_rule_is_in_the_table_once() {
        let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        for n in 1..=10 {
            let id = format!("KRN-{n:03}");
            assert_eq!(ids.iter().filter(|i| **i == id).count(), 1, "{id}");
        }
    }
}
