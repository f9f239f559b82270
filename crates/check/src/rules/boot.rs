//! BOOT-xxx: partition table, boot chain and generation. The partition-table findings
//! (BOOT-001, and BOOT-012 for LVM that cannot be read) come from the discovery layer and
//! BOOT-010 (several roots) from the guest assembly; they are reported here as they are.
//! Everything else is judged from the boot facts (`ctx.boot`), the derived generation, the
//! partition table and the kernel command lines.

use super::Collector;
use crate::catalogue::{rule, RuleInfo};
use crate::context::Context;
use crate::policy::{Generation, SecurityType};
use vhdprep_finding::{Finding, Severity};
use vhdprep_fs::FileKind;
use vhdprep_guest::elf::Architecture;
use vhdprep_guest::facts::boot::{pe, BootFacts, EspFacts, LoaderRole};
use vhdprep_guest::facts::kernel::cmdline::{CmdlineSource, RootRefKind, SourceKind};
use vhdprep_guest::volumes::VolumeSource;
use vhdprep_guest::Family;
use vhdprep_partition::{Partition, PartitionKind, PartitionTable, TableKind};

/// One MiB: the first partition should start at or after it (LBA 2048).
pub const FIRST_PARTITION_MIN: u64 = 1 << 20;
/// Marketplace: "the first 2048 KB of the VHD is empty".
pub const MARKETPLACE_FIRST_PARTITION_MIN: u64 = 2048 << 10;
/// MBR sector addresses are 32 bits: nothing may start or end at or beyond sector 2^32.
pub const MBR_MAX_SECTORS: u64 = 1 << 32;
/// Largest kernel image read to look for its Authenticode signature.
pub const MAX_KERNEL_IMAGE: u64 = 64 << 20;
/// Most kernel images read for their signature (the newest ones).
pub const MAX_KERNELS_READ: usize = 4;
/// Most DKMS modules listed in evidence.
const MAX_LISTED: usize = 8;
/// Most directory entries looked at in one DKMS directory.
const MAX_DKMS_ENTRIES: usize = 4096;

/// This area's catalogue entries.
pub const RULES: &[RuleInfo] = &[
    rule("BOOT-001", Severity::Error, "Valid partition table", "The disk must carry a valid partition table: MBR signature 0x55AA at LBA 0 and/or a GPT header at LBA 1 with valid CRCs, its backup at the last LBA of the virtual disk.", "UEFI/GPT spec (general knowledge); [GEN2]"),
    rule("BOOT-002", Severity::Error, "Generation 1 (BIOS) boot", "Gen1 needs BIOS boot code in LBA 0 and a stage 2 it reaches: GRUB core.img in the post-MBR gap (MBR) or in a BIOS boot partition (GPT). Error when the image is declared V1 (or boots neither generation); otherwise information.", "[GEN2]; [LIVECD-UEFI]; [ISSUE-DOCS-38348]").deviating("The catalogue reports information unless V1 is declared; vhdprep also makes it an error when nothing is declared and the disk boots neither generation."),
    rule("BOOT-003", Severity::Error, "Generation 2 (UEFI) boot", "Gen2 needs an ESP (FAT) holding the removable-media loader \\EFI\\BOOT\\BOOTX64.EFI (BOOTAA64.EFI on Arm64); a loader only under \\EFI\\<distro>\\ relies on NVRAM entries that do not travel with a VHD. Error when declared V2 (or booting neither); otherwise information.", "[UBUNTU]; [LIVECD-UEFI]").deviating("The catalogue reports information unless V2 is declared; vhdprep also makes it an error when nothing is declared and the disk boots neither generation."),
    rule("BOOT-004", Severity::Warning, "GPT for Gen2", "An ESP on an MBR disk is not documented by Azure: Gen2 disks should be GPT.", "[GEN2]; [ISSUE-DOCS-38348]"),
    rule("BOOT-005", Severity::Info, "Hybrid image", "A disk that boots both under BIOS and UEFI may be registered as V1 or V2.", "[LIVECD-UEFI]; [EXPAND-DISKS]"),
    rule("BOOT-006", Severity::Error, "MBR within 2 TiB", "On an MBR disk no partition may start or extend beyond 2 TiB (2^32 sectors).", "[EXPAND-DISKS]"),
    rule("BOOT-007", Severity::Error, "Arm64 is Gen2 only", "Arm64 VMs are Generation 2 only: the image needs \\EFI\\BOOT\\BOOTAA64.EFI and must not be registered as V1.", "[DPSV5]; [TL-FAQ]"),
    rule("BOOT-008", Severity::Warning, "Secure Boot readiness", "For Trusted Launch (Secure Boot) the fallback loader must be a shim signed by the Microsoft UEFI CA, GRUB and the kernel signed by the distro key, and no unsigned out-of-tree (DKMS) modules needed. Error when the definition will be TrustedLaunchSupported.", "[TL]; [TL-FAQ]; [DEB-SHIM]").deviating("Only the presence of an Authenticode signature on GRUB and on a PE (EFI stub) kernel is checked, not that it chains to the key embedded in shim."),
    rule("BOOT-009", Severity::Warning, "First partition at 1 MiB", "The first partition should start at 1 MiB (LBA 2048) or later; the Marketplace asks for the first 2048 KB to be empty.", "[MKT-CERT]"),
    rule("BOOT-010", Severity::Warning, "One root partition", "Exactly one filesystem on the OS disk should be a Linux root (cert test 42).", "[MKT-TEST]; [MKT-CERT]").deviating("Also warns when no filesystem looks like a Linux root at all."),
    rule("BOOT-011", Severity::Error, "No swap partition", "The OS disk must not carry a swap partition (MBR 0x82, GPT swap type, or a SWAPSPACE2 signature); use the resource disk.", "[GENERIC]; [MKT-TEST]"),
    rule("BOOT-012", Severity::Warning, "No LVM on the OS disk", "Standard partitions are preferred over LVM on the OS disk: VG names clash when the disk is attached to a clone. Information on RHEL-family guests, where LVM is supported.", "[GENERIC]; [UBUNTU]; [DEBIAN]; [ORACLE]; [RHEL]"),
    rule("BOOT-013", Severity::Warning, "Stable root= and boot files", "The default boot entry must reference the root filesystem by UUID, LABEL or PARTUUID (not /dev/sdX or /dev/nvmeXnY), and the kernel and initrd it loads must exist. Error for NVMe-tagged images.", "[UBUNTU]; [RHEL]; [SUSE]; [ORACLE]"),
    rule("BOOT-014", Severity::Info, "Kernel command line source", "Where the effective kernel command line comes from (generated grub.cfg, BLS entry, grubenv, /etc/kernel/cmdline, menu.lst) and what /etc/default/grub intends.", "[GENERIC]; [RHEL]; [ORACLE]; [OPENBSD]"),
];

/// Evaluates BOOT-001..014.
pub fn evaluate(ctx: &Context, out: &mut Collector) {
    partition_table(ctx, out);
    if let Some(boot) = &ctx.boot {
        let g = GenView::of(ctx, boot);
        bios(boot, &g, out);
        uefi(ctx, boot, &g, out);
        hybrid(&g, out);
        arm64(ctx, boot, &g, out);
        secure_boot(ctx, boot, &g, out);
    } else {
        for id in ["BOOT-002", "BOOT-003", "BOOT-005", "BOOT-007", "BOOT-008"] {
            out.skip(id, "no partition table was read");
        }
    }
    if let Some(table) = ctx.discovery.as_ref().and_then(|d| d.table.as_ref()) {
        mbr_esp(ctx, table, out);
        mbr_limit(table, out);
        first_partition(ctx, table, out);
    }
    roots(ctx, out);
    swap(ctx, out);
    lvm(ctx, out);
    command_line(ctx, out);
}

// ------------------------------------------------------------------------------ BOOT-001

fn partition_table(ctx: &Context, out: &mut Collector) {
    if let Some(e) = &ctx.table_error {
        out.push(
            Finding::new(
                "BOOT-001",
                Severity::Error,
                format!("the partition table is unusable: {e}"),
            )
            .with_evidence("LBA 0 (MBR) and LBA 1 / last LBA (GPT header copies)")
            .with_remediation(
                "repair the table from its good copy (`sgdisk -e` / `gdisk` recovery), or repartition the image",
            )
            .at_disk(0, Some(1024)),
        );
        return;
    }
    let Some(d) = &ctx.discovery else {
        out.skip("BOOT-001", "the virtual disk cannot be read");
        return;
    };
    out.evaluated("BOOT-001");
    for f in &d.findings {
        out.push(f.clone());
    }
}

// ------------------------------------------------------------------------- generations

/// The generation facts the rules share.
struct GenView {
    arch: Option<Architecture>,
    v1: bool,
    /// UEFI boot with a fallback loader for the guest's architecture.
    v2: bool,
    declared: Option<Generation>,
}

impl GenView {
    fn of(ctx: &Context, boot: &BootFacts) -> GenView {
        let arch = ctx
            .architecture
            .as_ref()
            .map(|(a, _)| *a)
            .or_else(|| (boot.architectures == ["arm64"]).then_some(Architecture::Arm64));
        let v2_any = ctx.derived.generation.contains(&Generation::V2);
        let v2 = v2_any
            && match arch.and_then(efi_arch) {
                Some(a) => boot.architectures.contains(&a.pe),
                None => true,
            };
        GenView {
            arch,
            v1: ctx.derived.generation.contains(&Generation::V1),
            v2,
            declared: ctx.policy.generation,
        }
    }

    fn arm64(&self) -> bool {
        self.arch == Some(Architecture::Arm64)
    }

    fn neither(&self) -> bool {
        !self.v1 && !self.v2
    }
}

/// Names of the UEFI files of one architecture.
#[derive(Clone, Copy)]
struct EfiArch {
    pe: &'static str,
    fallback: &'static str,
    shim: &'static str,
    grub: &'static str,
    target: &'static str,
}

const EFI_X64: EfiArch = EfiArch {
    pe: "x64",
    fallback: "BOOTX64.EFI",
    shim: "shimx64.efi",
    grub: "grubx64.efi",
    target: "x86_64-efi",
};
const EFI_AA64: EfiArch = EfiArch {
    pe: "arm64",
    fallback: "BOOTAA64.EFI",
    shim: "shimaa64.efi",
    grub: "grubaa64.efi",
    target: "arm64-efi",
};

fn efi_arch(a: Architecture) -> Option<EfiArch> {
    match a {
        Architecture::X64 => Some(EFI_X64),
        Architecture::Arm64 => Some(EFI_AA64),
        _ => None,
    }
}

fn partition_of<'a>(ctx: &'a Context, number: u32) -> Option<&'a Partition> {
    ctx.discovery.as_ref()?.table.as_ref()?.partition(number)
}

fn at_partition(f: Finding, p: Option<&Partition>) -> Finding {
    match p {
        Some(p) => f.at_disk(p.start_bytes, Some(p.size_bytes)),
        None => f,
    }
}

fn bios(boot: &BootFacts, g: &GenView, out: &mut Collector) {
    out.evaluated("BOOT-002");
    if g.arm64() {
        return; // BOOT-007 judges Arm64 against Generation 1
    }
    let why = boot.bios_reasons.join("; ");
    let (severity, message) = match g.declared {
        Some(Generation::V1) if !g.v1 => (
            Severity::Error,
            "the image is declared Generation 1 but the disk cannot boot under BIOS".to_string(),
        ),
        Some(_) => return,
        None if g.neither() => (
            Severity::Error,
            "the disk boots neither generation: it has no working BIOS boot chain".to_string(),
        ),
        None if g.v1 => (
            Severity::Info,
            "the disk boots under BIOS: it can be registered as Generation 1 (V1)".to_string(),
        ),
        None => (
            Severity::Info,
            "the disk does not boot under BIOS: register it as Generation 2 (V2), not V1"
                .to_string(),
        ),
    };
    let mut f = Finding::new("BOOT-002", severity, message)
        .with_evidence(format!("LBA 0 and the stage 2: {why}"))
        .at_disk(0, Some(512));
    if severity == Severity::Error {
        f = f.with_remediation(match boot.table {
            TableKind::Gpt => "add a BIOS boot partition (`sgdisk -a 1 -n 0:34:2047 -t 0:ef02 /dev/sdX`) and run `grub-install --target=i386-pc /dev/sdX`, or register the image as V2",
            _ => "install GRUB for BIOS: `grub-install --target=i386-pc /dev/sdX` (needs the post-MBR gap below the first partition at 1 MiB), or register the image as V2",
        });
    }
    out.push(f);
}

/// An ESP whose loaders live only under `\EFI\<distro>\`: (ESP, shim or grub path, the
/// distro directory).
fn distro_only_loader(boot: &BootFacts, arch: EfiArch) -> Option<(&EspFacts, String, String)> {
    boot.uefi.esps.iter().find_map(|esp| {
        let has_fallback = match arch.pe {
            "arm64" => esp.fallback_aa64.is_some(),
            _ => esp.fallback_x64.is_some(),
        };
        if has_fallback {
            return None;
        }
        let pick = |role: LoaderRole| {
            esp.loaders.iter().find(|l| {
                l.role == role
                    && !l.path.to_ascii_lowercase().starts_with("/efi/boot/")
                    && l.arch.is_none_or(|a| a == arch.pe)
            })
        };
        let l = pick(LoaderRole::Shim).or_else(|| pick(LoaderRole::Grub))?;
        let dir = l.path.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        Some((esp, l.path.clone(), dir))
    })
}

fn esp_mountpoint(ctx: &Context, number: u32) -> String {
    ctx.guest
        .as_ref()
        .and_then(|g| {
            g.fstab.iter().find(|m| {
                m.volume.as_ref() == Some(&VolumeSource::Partition { number })
                    && m.entry.mountpoint.starts_with('/')
            })
        })
        .map_or_else(|| "/boot/efi".to_string(), |m| m.entry.mountpoint.clone())
}

fn uefi(ctx: &Context, boot: &BootFacts, g: &GenView, out: &mut Collector) {
    out.evaluated("BOOT-003");
    let arch = g.arch.and_then(efi_arch).unwrap_or(EFI_X64);
    let why = boot.uefi_reasons.join("; ");
    let declared_v2 = g.declared == Some(Generation::V2);
    let severity = if g.v2 {
        if declared_v2 {
            return;
        }
        Severity::Info
    } else if declared_v2 || g.neither() {
        Severity::Error
    } else {
        Severity::Info
    };
    let distro_only = distro_only_loader(boot, arch);
    let message = match (&distro_only, g.v2) {
        (_, true) => {
            "the disk boots under UEFI: it can be registered as Generation 2 (V2)".to_string()
        }
        (Some((_, loader, _)), false) => format!(
            "the UEFI loader exists only as {} on the ESP, not at the removable-media path \\EFI\\BOOT\\{}: firmware finds a loader outside that path only through NVRAM boot entries, which do not travel with a VHD, so the disk does not boot as Generation 2",
            loader.replace('/', "\\"),
            arch.fallback
        ),
        (None, false) if declared_v2 => format!(
            "the image is declared Generation 2 but the disk has no UEFI loader \\EFI\\BOOT\\{} on an ESP",
            arch.fallback
        ),
        (None, false) => format!(
            "the disk does not boot under UEFI (no \\EFI\\BOOT\\{} on an ESP): it is not a Generation 2 image",
            arch.fallback
        ),
    };
    let mut f = Finding::new("BOOT-003", severity, message).with_evidence(why);
    let esp = distro_only.as_ref().map(|d| d.0).or(boot.uefi.esps.first());
    f = at_partition(f, esp.and_then(|e| partition_of(ctx, e.number)));
    if !g.v2 {
        f = f.with_remediation(match &distro_only {
            Some((esp, loader, dir)) => {
                let mp = esp_mountpoint(ctx, esp.number);
                let is_shim = loader.to_ascii_lowercase().ends_with(arch.shim);
                let mut copy = format!(
                    "mkdir -p {mp}/EFI/BOOT && cp {mp}{loader} {mp}/EFI/BOOT/{}",
                    arch.fallback
                );
                if is_shim {
                    copy.push_str(&format!(" && cp {mp}{dir}/{} {mp}/EFI/BOOT/", arch.grub));
                }
                if esp.configs.iter().any(|c| c.eq_ignore_ascii_case(&format!("{dir}/grub.cfg"))) {
                    copy.push_str(&format!(" && cp {mp}{dir}/grub.cfg {mp}/EFI/BOOT/"));
                }
                format!(
                    "create the fallback path: `{copy}` ({} becomes {}, {} and grub.cfg go alongside); or reinstall with `grub-install --target={} --removable` (Debian/Ubuntu: `--force-extra-removable` keeps both)",
                    if is_shim { arch.shim } else { arch.grub },
                    arch.fallback,
                    arch.grub,
                    arch.target
                )
            }
            None => format!(
                "create an ESP (GPT type EF00, FAT32) and install the loader at the removable path: `grub-install --target={} --efi-directory=/boot/efi --removable` (with shim: copy {} to EFI/BOOT/{} and {} beside it); or register the image as V1",
                arch.target, arch.shim, arch.fallback, arch.grub
            ),
        });
    }
    out.push(f);
}

fn hybrid(g: &GenView, out: &mut Collector) {
    out.evaluated("BOOT-005");
    if g.v1 && g.v2 {
        out.push(
            Finding::new(
                "BOOT-005",
                Severity::Info,
                "hybrid disk: it boots under BIOS and UEFI, so it may be registered as V1 or V2 (V2 recommended: Trusted Launch, NVMe and larger disks need it)",
            )
            .with_evidence("BOOT-002 and BOOT-003 both pass"),
        );
    }
}

fn arm64(ctx: &Context, boot: &BootFacts, g: &GenView, out: &mut Collector) {
    let Some(arch) = g.arch else {
        out.skip("BOOT-007", "the guest architecture is unknown");
        return;
    };
    out.evaluated("BOOT-007");
    if arch != Architecture::Arm64 {
        return;
    }
    let evidence = format!(
        "architecture Arm64 ({}); {}",
        ctx.derived
            .architecture_evidence
            .as_deref()
            .unwrap_or("from the ESP loaders"),
        boot.uefi_reasons.join("; ")
    );
    if g.declared == Some(Generation::V1) {
        out.push(
            Finding::new(
                "BOOT-007",
                Severity::Error,
                "the image is Arm64 but declared Generation 1: Arm64 VMs are Generation 2 only",
            )
            .with_evidence(evidence.clone())
            .with_remediation("register the image as V2 (`--hyper-v-generation V2`)"),
        );
    }
    if !g.v2 {
        out.push(
            Finding::new(
                "BOOT-007",
                Severity::Error,
                "the image is Arm64 but has no \\EFI\\BOOT\\BOOTAA64.EFI on an ESP: Arm64 VMs boot only as Generation 2 (UEFI)",
            )
            .with_evidence(evidence)
            .with_remediation("install the loader at the removable path: `grub-install --target=arm64-efi --removable` (with shim: copy shimaa64.efi to EFI/BOOT/BOOTAA64.EFI and grubaa64.efi beside it)"),
        );
    }
}

// ------------------------------------------------------------------------------ BOOT-008

/// Out-of-tree modules built by DKMS: `/lib/modules/*/updates/dkms/*` and `/var/lib/dkms/*/`.
fn dkms_modules(ctx: &Context) -> Vec<String> {
    let Some(t) = ctx.tree() else {
        return Vec::new();
    };
    let names = |dir: &str| -> Vec<(String, FileKind)> {
        t.read_dir(dir.as_bytes())
            .map(|v| {
                v.into_iter()
                    .take(MAX_DKMS_ENTRIES)
                    .map(|e| (String::from_utf8_lossy(&e.name).into_owned(), e.kind))
                    .filter(|(n, _)| n != "." && n != "..")
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut found = Vec::new();
    for (v, _) in names("/lib/modules") {
        let dir = format!("/lib/modules/{v}/updates/dkms");
        for (n, _) in names(&dir) {
            if n.contains(".ko") {
                found.push(format!("{dir}/{n}"));
            }
        }
    }
    for (n, k) in names("/var/lib/dkms") {
        if k == FileKind::Dir {
            found.push(format!("/var/lib/dkms/{n}"));
        }
    }
    found
}

/// Kernels whose `/boot` image is a PE (EFI stub) without an Authenticode signature (the
/// [`MAX_KERNELS_READ`] last in version order, each up to [`MAX_KERNEL_IMAGE`] bytes).
fn unsigned_kernels(ctx: &Context) -> Vec<String> {
    let (Some(t), Some(k)) = (ctx.tree(), &ctx.kernel) else {
        return Vec::new();
    };
    let images: Vec<&String> = k
        .kernels
        .iter()
        .filter_map(|k| k.vmlinuz.as_ref())
        .collect();
    let newest = images.len().saturating_sub(MAX_KERNELS_READ);
    images[newest..]
        .iter()
        .copied()
        .filter(|p| {
            let Ok(m) = t.metadata(p.as_bytes()) else {
                return false;
            };
            if m.size > MAX_KERNEL_IMAGE {
                return false;
            }
            // Headers and certificate table only: kilobytes, not the whole kernel.
            let mut read = |offset: u64, len: u64| t.read_range(p.as_bytes(), offset, len).ok();
            pe::sparse_image(m.size, &mut read)
                .is_some_and(|b| pe::parse(&b).is_ok_and(|img| img.certificates.is_empty()))
        })
        .cloned()
        .collect()
}

/// How a family installs its signed shim + GRUB chain on the ESP, removable path included.
fn signed_chain_fix(family: Family) -> &'static str {
    match family {
        Family::RedHat => "Red Hat family: `dnf reinstall shim-x64 grub2-efi-x64` (Arm64: shim-aa64 grub2-efi-aa64) restores \\EFI\\BOOT\\BOOTX64.EFI, fbx64.efi and \\EFI\\<vendor>\\{shimx64.efi,grubx64.efi,BOOTX64.CSV}",
        Family::Suse => "SUSE: `zypper install shim grub2-x86_64-efi && shim-install --config-file=/boot/grub2/grub.cfg` puts shim.efi, grub.efi and boot.csv in \\EFI\\sles (or opensuse) and shim at \\EFI\\boot\\bootx64.efi",
        Family::AzureLinux => "Azure Linux: `tdnf reinstall shim grub2-efi-binary`",
        Family::Debian | Family::Unknown => "Debian: `apt install shim-signed grub-efi-amd64-signed && grub-install --uefi-secure-boot --force-extra-removable`",
    }
}

fn secure_boot(ctx: &Context, boot: &BootFacts, g: &GenView, out: &mut Collector) {
    out.evaluated("BOOT-008");
    let tl = ctx.policy.security_type == Some(SecurityType::TrustedLaunchSupported);
    let severity = if tl {
        Severity::Error
    } else {
        Severity::Warning
    };
    let fix_or_standard = "or declare the image definition with `--security-type Standard` (VMs then run without Secure Boot)";
    if !g.v2 {
        if tl {
            out.push(
                Finding::new(
                    "BOOT-008",
                    Severity::Error,
                    "the definition is declared TrustedLaunchSupported but the disk does not boot under UEFI: Trusted Launch is Generation 2 only",
                )
                .with_evidence(ctx.derived.trusted_launch.reasons.join("; "))
                .with_remediation(format!("make the disk boot as Generation 2 (BOOT-003), {fix_or_standard}")),
            );
        }
        return;
    }
    let sb = &boot.secure_boot;
    if !sb.ready {
        let what = if !sb.fallback_microsoft_signed {
            format!(
                "the UEFI fallback loader {} is not a shim signed by the Microsoft UEFI CA: VMs with Secure Boot (Trusted Launch) will refuse to boot it",
                sb.fallback_loader.as_deref().unwrap_or("(none)")
            )
        } else if let Some(missing) = sb.chain.as_ref().and_then(|c| c.missing.as_deref()) {
            format!(
                "shim's chain to GRUB is broken: {missing} is missing, so the VM stops before GRUB (with or without Secure Boot)"
            )
        } else {
            format!(
                "shim will not load {}: it carries no signature of the distribution key shim embeds, so VMs with Secure Boot (Trusted Launch) stop at GRUB",
                sb.grub.as_deref().unwrap_or("the GRUB beside it (missing)")
            )
        };
        let mut f = Finding::new("BOOT-008", severity, what)
            .with_evidence(sb.reasons.join("; "))
            .with_remediation(format!(
                "install the distribution's signed chain at the removable path ({}), {fix_or_standard}",
                signed_chain_fix(ctx.family())
            ));
        if let Some(esp) = boot.uefi.esps.iter().find(|e| {
            e.loaders
                .iter()
                .any(|l| Some(&l.path) == sb.fallback_loader.as_ref())
        }) {
            f = at_partition(f, partition_of(ctx, esp.number));
        }
        out.push(f);
    }
    let kernels = unsigned_kernels(ctx);
    if !kernels.is_empty() {
        out.push(
            Finding::new(
                "BOOT-008",
                severity,
                "the kernel image carries no Authenticode signature: shim/GRUB refuse it under Secure Boot",
            )
            .with_evidence(format!("PE images without a certificate table entry: {}", kernels.join(", ")))
            .with_remediation(format!("install the distribution's signed kernel (Debian: linux-image-cloud-amd64 from linux-signed-*), {fix_or_standard}"))
            .at_guest(kernels[0].clone(), None),
        );
    }
    let dkms = dkms_modules(ctx);
    if !dkms.is_empty() {
        let shown: Vec<&str> = dkms.iter().take(MAX_LISTED).map(String::as_str).collect();
        out.push(
            Finding::new(
                "BOOT-008",
                severity,
                "out-of-tree (DKMS) kernel modules are installed: unless signed with a key enrolled in MOK they are refused under Secure Boot",
            )
            .with_evidence(format!(
                "{}{}",
                shown.join(", "),
                if dkms.len() > MAX_LISTED { format!(" and {} more", dkms.len() - MAX_LISTED) } else { String::new() }
            ))
            .with_remediation(format!("sign the modules with a MOK key enrolled at first boot (`mokutil --import`), use distribution-signed drivers, {fix_or_standard}"))
            .at_guest(dkms[0].clone(), None),
        );
    }
}

// ------------------------------------------------------------------ partition layout

/// Where the table entry of `p` lies on the disk: (offset, length). MBR primaries are at
/// 446 + 16 (n - 1); GPT entries in the array of the copy that was used; logical MBR
/// partitions (in EBRs) point at the partition itself.
pub fn entry_location(table: &PartitionTable, p: &Partition) -> (u64, u64) {
    match (&table.gpt, table.kind) {
        (Some(g), TableKind::Gpt) => {
            let ss = u64::from(table.sector_size);
            let size = u64::from(g.header.entry_size);
            let at = g
                .header
                .partition_entry_lba
                .saturating_mul(ss)
                .saturating_add(u64::from(p.number.saturating_sub(1)).saturating_mul(size));
            (at, size)
        }
        _ if !p.logical && (1..=4).contains(&p.number) => (446 + 16 * u64::from(p.number - 1), 16),
        _ => (p.start_bytes, 512),
    }
}

fn mbr_esp(ctx: &Context, table: &PartitionTable, out: &mut Collector) {
    out.evaluated("BOOT-004");
    if table.kind != TableKind::Mbr {
        return;
    }
    let Some(esp) = table.partitions_of_kind(PartitionKind::Esp).next() else {
        return;
    };
    let (at, len) = entry_location(table, esp);
    let declared = if ctx.policy.generation == Some(Generation::V2) {
        " and the image is declared V2"
    } else {
        ""
    };
    out.push(
        Finding::new(
            "BOOT-004",
            Severity::Warning,
            format!(
                "the disk is MBR with an EFI System Partition (partition {}){declared}: Azure documents Generation 2 with GPT only",
                esp.number
            ),
        )
        .with_evidence(format!(
            "MBR entry {} at byte {at}: type {}",
            esp.number, esp.type_name
        ))
        .with_remediation("convert the table to GPT (`sgdisk --mbrtogpt /dev/sdX`, then set the ESP type EF00 and reinstall the loader)")
        .at_disk(at, Some(len)),
    );
}

fn mbr_limit(table: &PartitionTable, out: &mut Collector) {
    out.evaluated("BOOT-006");
    if table.kind != TableKind::Mbr {
        return;
    }
    let ss = u64::from(table.sector_size);
    for p in &table.partitions {
        if p.end_lba < MBR_MAX_SECTORS {
            continue;
        }
        let (at, len) = entry_location(table, p);
        out.push(
            Finding::new(
                "BOOT-006",
                Severity::Error,
                format!(
                    "MBR partition {} extends beyond 2 TiB (sector 2^32): BIOS/MBR cannot address it",
                    p.number
                ),
            )
            .with_evidence(format!(
                "entry at byte {at}: LBA {}..={} ({} bytes per sector), limit LBA {}",
                p.start_lba,
                p.end_lba,
                ss,
                MBR_MAX_SECTORS - 1
            ))
            .with_remediation("shrink the partition below 2 TiB, or convert the disk to GPT and register it as Generation 2")
            .at_disk(at, Some(len)),
        );
    }
}

fn first_partition(ctx: &Context, table: &PartitionTable, out: &mut Collector) {
    let Some(first) = table
        .partitions
        .iter()
        .filter(|p| p.kind != PartitionKind::GptProtective)
        .min_by_key(|p| p.start_lba)
    else {
        out.skip("BOOT-009", "the disk has no partitions");
        return;
    };
    out.evaluated("BOOT-009");
    let (at, len) = entry_location(table, first);
    let evidence = format!(
        "partition {} (entry at byte {at}) starts at LBA {} = byte {}",
        first.number, first.start_lba, first.start_bytes
    );
    let finding = if first.start_bytes < FIRST_PARTITION_MIN {
        Finding::new(
            "BOOT-009",
            Severity::Warning,
            format!(
                "the first partition starts at {} KiB, before 1 MiB (LBA 2048): no room for boot code and misaligned for Azure storage",
                first.start_bytes >> 10
            ),
        )
    } else if ctx.policy.marketplace && first.start_bytes < MARKETPLACE_FIRST_PARTITION_MIN {
        Finding::new(
            "BOOT-009",
            Severity::Warning,
            format!(
                "the first partition starts at {} KiB: Marketplace certification asks for the first 2048 KB of the VHD to be empty",
                first.start_bytes >> 10
            ),
        )
    } else {
        return;
    };
    out.push(
        finding
            .with_evidence(evidence)
            .with_remediation("repartition so that the first partition starts at 2048 KiB (`sgdisk -a 4096`, or `parted ... mkpart ... 2MiB`), moving the data with `dd`/`partclone`")
            .at_disk(at, Some(len)),
    );
}

fn roots(ctx: &Context, out: &mut Collector) {
    let Some(d) = &ctx.discovery else {
        out.skip("BOOT-010", "no partition table was read");
        return;
    };
    out.evaluated("BOOT-010");
    if let Some(g) = &ctx.guest {
        for f in g.findings.iter().filter(|f| f.id.starts_with("BOOT-")) {
            out.push(f.clone());
        }
        return;
    }
    let fs: Vec<String> = d
        .volumes
        .iter()
        .filter_map(|v| {
            v.filesystem
                .as_ref()
                .map(|p| format!("{} {}", v.source, p.fs_type))
        })
        .collect();
    out.push(
        Finding::new(
            "BOOT-010",
            Severity::Warning,
            "no filesystem on the disk looks like a Linux root (/etc and /etc/os-release)",
        )
        .with_evidence(if fs.is_empty() {
            "no filesystem found on any volume".to_string()
        } else {
            format!("filesystems: {}", fs.join(", "))
        }),
    );
}

fn swap(ctx: &Context, out: &mut Collector) {
    let Some(d) = &ctx.discovery else {
        out.skip("BOOT-011", "no partition table was read");
        return;
    };
    out.evaluated("BOOT-011");
    for v in &d.volumes {
        let by_type = v
            .partition
            .as_ref()
            .filter(|p| p.kind == PartitionKind::Swap);
        let signature = v.filesystem.as_ref().is_some_and(|p| p.fs_type == "swap");
        if by_type.is_none() && !signature {
            continue;
        }
        let mut seen = Vec::new();
        if let Some(p) = by_type {
            seen.push(format!("partition type {}", p.type_name));
        }
        if signature {
            let at = v
                .start
                .map_or(String::new(), |s| format!(" at byte {}", s + 4086));
            seen.push(format!("swap signature SWAPSPACE2{at}"));
        }
        let mut f = Finding::new(
            "BOOT-011",
            Severity::Error,
            format!("{} is a swap area on the OS disk: Azure OS disks must not carry swap", v.source),
        )
        .with_evidence(format!("{}: {}", v.source, seen.join(", ")))
        .with_remediation("remove the swap partition (and its /etc/fstab line); put swap on the resource disk: waagent `ResourceDisk.EnableSwap=y` or cloud-init `mounts`/`swap`");
        if let Some(start) = v.start {
            f = f.at_disk(start, Some(v.size));
        }
        out.push(f);
    }
}

/// RHEL and its rebuilds (ID or ID_LIKE `rhel`, `fedora`, `centos`).
fn rhel_family(ctx: &Context) -> bool {
    ["rhel", "fedora", "centos"].iter().any(|f| ctx.os_is(f))
}

/// BOOT-012's severity: information on RHEL-family guests, a warning elsewhere.
pub fn lvm_severity(rhel_family: bool) -> Severity {
    if rhel_family {
        Severity::Info
    } else {
        Severity::Warning
    }
}

fn lvm(ctx: &Context, out: &mut Collector) {
    let Some(d) = &ctx.discovery else {
        out.skip("BOOT-012", "no partition table was read");
        return;
    };
    out.evaluated("BOOT-012");
    let pvs: Vec<&vhdprep_guest::volumes::GuestVolume> = d
        .volumes
        .iter()
        .filter(|v| {
            v.filesystem
                .as_ref()
                .is_some_and(|p| p.fs_type == "LVM2_member")
                || v.partition
                    .as_ref()
                    .is_some_and(|p| p.kind == PartitionKind::Lvm)
        })
        .collect();
    if pvs.is_empty() {
        return;
    }
    let lvs: Vec<String> = d
        .volumes
        .iter()
        .filter(|v| matches!(v.source, VolumeSource::LogicalVolume { .. }))
        .map(|v| {
            let fs = v.filesystem.as_ref().map_or("no filesystem", |p| p.fs_type);
            let root = ctx.guest.as_ref().is_some_and(|g| g.root == v.source);
            format!(
                "{} ({fs}{})",
                v.source,
                if root { ", the root" } else { "" }
            )
        })
        .collect();
    let rhel = rhel_family(ctx);
    let pv_text: Vec<String> = pvs
        .iter()
        .map(|v| {
            let label = if v
                .filesystem
                .as_ref()
                .is_some_and(|p| p.fs_type == "LVM2_member")
            {
                "LVM2 PV label"
            } else {
                "LVM partition type"
            };
            format!("{} ({label})", v.source)
        })
        .collect();
    let mut f = Finding::new(
        "BOOT-012",
        lvm_severity(rhel),
        if rhel {
            "the OS disk uses LVM (supported on RHEL-family images; keep the VG name unique per image so it does not clash when the disk is attached to a clone)".to_string()
        } else {
            "the OS disk uses LVM: prefer standard partitions, since a VM made from the image sees two VGs of the same name when its disk is attached to a clone".to_string()
        },
    )
    .with_evidence(format!(
        "physical volumes: {}; logical volumes: {}",
        pv_text.join(", "),
        if lvs.is_empty() { "none read".to_string() } else { lvs.join(", ") }
    ))
    .with_remediation("build the image on plain partitions (root on a GPT partition referenced by UUID); if LVM stays, give each image a unique VG name (`vgrename`) and reference filesystems by UUID");
    if let Some(start) = pvs[0].start {
        f = f.at_disk(start, Some(pvs[0].size));
    }
    out.push(f);
}

// ------------------------------------------------------------------ command line

fn source_place(s: &CmdlineSource) -> String {
    let mut p = format!("{} line {}", s.file, s.line);
    if let Some(e) = &s.entry {
        p.push_str(&format!(" (entry '{e}')"));
    }
    if let Some(v) = &s.variable {
        p.push_str(&format!(" ({v})"));
    }
    p
}

fn kind_name(k: SourceKind) -> &'static str {
    match k {
        SourceKind::DefaultGrub => "/etc/default/grub setting (intent)",
        SourceKind::GrubCfg => "generated grub.cfg",
        SourceKind::Bls => "BLS entry",
        SourceKind::Grubenv => "grubenv kernelopts",
        SourceKind::KernelCmdline => "/etc/kernel/cmdline",
        SourceKind::MenuLst => "legacy menu.lst",
        SourceKind::FreebsdLoader => "FreeBSD loader.conf",
        SourceKind::OpenbsdBoot => "OpenBSD boot.conf",
        SourceKind::SystemdBoot => "systemd-boot entry",
        SourceKind::Uki => ".cmdline section of the unified kernel image",
    }
}

fn command_line(ctx: &Context, out: &mut Collector) {
    let Some(k) = &ctx.kernel else {
        out.skip("BOOT-013", "the guest was not examined");
        out.skip("BOOT-014", "the guest was not examined");
        return;
    };
    out.evaluated("BOOT-014");
    let c = &k.cmdlines;
    let intent = c.intent.as_ref().map(|i| i.raw.clone());
    match c.effective_source() {
        Some(s) => {
            let mut ev = format!("{}: {}", source_place(s), s.cmdline.raw);
            if let Some(i) = &intent {
                ev.push_str(&format!("; /etc/default/grub intends: {i}"));
            }
            let others = c.sources.len().saturating_sub(1);
            if others > 0 {
                ev.push_str(&format!("; {others} other command line(s) found"));
            }
            out.push(
                Finding::new(
                    "BOOT-014",
                    Severity::Info,
                    format!(
                        "the effective kernel command line comes from the {} {}",
                        kind_name(s.kind),
                        s.file
                    ),
                )
                .with_evidence(ev)
                .at_guest(s.file.clone(), Some(s.line)),
            );
        }
        None => {
            let (msg, ev) = match &intent {
                Some(i) => (
                    "no generated boot loader configuration was found: the command line is only the /etc/default/grub intent",
                    format!("/etc/default/grub: {i}"),
                ),
                None => (
                    "no kernel command line was found (no grub.cfg, BLS entry, /etc/kernel/cmdline or /etc/default/grub)",
                    "looked at the BOOT-014 sources".to_string(),
                ),
            };
            out.push(Finding::new("BOOT-014", Severity::Info, msg).with_evidence(ev));
        }
    }
    boot_entry(ctx, out);
}

fn boot_entry(ctx: &Context, out: &mut Collector) {
    let Some(s) = ctx
        .kernel
        .as_ref()
        .and_then(|k| k.cmdlines.effective_source())
    else {
        out.skip("BOOT-013", "no boot loader entry was found");
        return;
    };
    out.evaluated("BOOT-013");
    let severity = if ctx.policy.nvme {
        Severity::Error
    } else {
        Severity::Warning
    };
    if let Some(r) = s
        .root
        .as_ref()
        .filter(|r| r.kind == RootRefKind::DeviceName)
    {
        out.push(
            Finding::new(
                "BOOT-013",
                severity,
                format!(
                    "the default boot entry names the root filesystem by device name (root={}): device names change with the disk controller (SCSI, NVMe) and the number of disks",
                    r.value
                ),
            )
            .with_evidence(format!("{}: root={}", source_place(s), r.value))
            .with_remediation("reference the root by UUID: set `GRUB_DISABLE_LINUX_UUID=false` (or remove it) in /etc/default/grub and run `update-grub` / `grub2-mkconfig -o /boot/grub2/grub.cfg`")
            .at_guest(s.file.clone(), Some(s.line)),
        );
    }
    let missing: Vec<String> = s
        .kernel
        .iter()
        .chain(s.initrd.iter())
        .filter(|b| b.found.is_none() && !b.path.contains('$'))
        .map(|b| b.path.clone())
        .collect();
    if !missing.is_empty() {
        out.push(
            Finding::new(
                "BOOT-013",
                severity,
                format!(
                    "the default boot entry loads {} which does not exist in the guest: the VM will not boot",
                    missing.join(" and ")
                ),
            )
            .with_evidence(format!(
                "{}: looked for each path as written and under /boot",
                source_place(s)
            ))
            .with_remediation(match ctx.family() {
                f @ (Family::RedHat | Family::Suse | Family::AzureLinux) => format!(
                    "regenerate the boot files and the menu: `{} && {}`{}",
                    f.initramfs_rebuild_command(),
                    f.grub_mkconfig_command(),
                    if s.kind == SourceKind::Bls { " (BLS entries: `kernel-install add <version> /lib/modules/<version>/vmlinuz` recreates one)" } else { "" }
                ),
                _ => "regenerate the boot files and the menu: `update-initramfs -c -k all && update-grub` (RHEL/SUSE: `dracut -f --regenerate-all && grub2-mkconfig -o /boot/grub2/grub.cfg`)".to_string(),
            })
            .at_guest(s.file.clone(), Some(s.line)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvm_is_information_on_rhel_only() {
        assert_eq!(lvm_severity(true), Severity::Info);
        assert_eq!(lvm_severity(false), Severity::Warning);
    }

    #[test]
    fn every_rule_is_in_the_table_once() {
        let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        for n in 1..=14 {
            let id = format!("BOOT-{n:03}");
            assert_eq!(ids.iter().filter(|i| **i == id).count(), 1, "{id}");
        }
    }
}
