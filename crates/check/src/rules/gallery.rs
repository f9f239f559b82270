//! GAL-xxx: the Compute Gallery image definition. The fields are derived in
//! [`crate::gallery`]; these rules state the derived ones worth stating (osType,
//! architecture) and judge what the user declared (`--os-state`, `--generation`,
//! `--security-type`, `--accelerated-networking`, `--nvme`) against what the disk shows.
//! GAL-009/010 need a definition name and version, which only `vhdprep gallery` knows
//! ([`evaluate_names`]).

use super::Collector;
use crate::catalogue::{rule, RuleInfo};
use crate::context::Context;
use crate::gallery::{self, check_definition_name, check_version_name, recommended_generation};
use crate::policy::{Generation, OsState, Policy, SecurityType};
use vhdprep_finding::{Finding, Severity};

const GIB: u64 = 1 << 30;
/// Gallery image versions above this total need shallow replication (GAL-011).
pub const GALLERY_IMAGE_MAX: u64 = 2048 * GIB;

/// This area's catalogue entries.
pub const RULES: &[RuleInfo] = &[
    rule("GAL-001", Severity::Info, "osType", "The definition's osType: Linux for Linux and BSD guests.", "[SIG]; [OPENBSD]"),
    rule("GAL-002", Severity::Error, "osState", "The declared osState must match the disk's generalization verdict: a generalized image declared Specialized times out at provisioning; a specialized one declared Generalized fails provisioning.", "[SIG]; [SUP-PROV-ERR]; [IMG-VERSION]"),
    rule("GAL-003", Severity::Error, "hyperVGeneration", "The declared hyperVGeneration must be one the disk boots: V1 needs BIOS boot code, V2 a UEFI fallback loader; hybrid disks boot both (V2 recommended); Arm64 is V2 only.", "[GEN2]; [DIRECT-UPLOAD]; [DEBIAN]"),
    rule("GAL-004", Severity::Info, "architecture", "The definition's architecture: x64 or Arm64, from the ELF header of the init binary and the UEFI fallback loader.", "[SIG]; [TL-FAQ]"),
    rule("GAL-005", Severity::Warning, "SecurityType", "TrustedLaunchSupported only for a Generation 2 image whose fallback loader is a Microsoft-signed shim with a signed GRUB; otherwise declare Standard explicitly, since API versions from 2025-03-03 default new definitions to TrustedLaunchSupported.", "[ACG]; [SIG]; [TL-FAQ]"),
    rule("GAL-006", Severity::Warning, "IsAcceleratedNetworkSupported", "Accelerated networking may be declared only when every kernel has the mlx4, mlx5 and MANA VF drivers (KRN-007) and NetworkManager leaves the VF unmanaged (NET-004).", "[SIG]; [MANA]; [RHEL]"),
    rule("GAL-007", Severity::Error, "DiskControllerTypes", "NVMe may be declared only for Generation 2 images with nvme and nvme_core in the initramfs (or built in), nvme_core.io_timeout=240 on the command line, and filesystems referenced by UUID (KRN-006).", "[SIG]; [NVME-OS]; [UBUNTU]; [RHEL]; [DEBIAN]"),
    rule("GAL-008", Severity::Info, "IsHibernateSupported", "Hibernation support cannot be derived offline (and Linux hibernation is unsupported with Trusted Launch); vhdprep leaves it unset.", "[TL]"),
    rule("GAL-009", Severity::Error, "Image definition name", "1 to 80 characters: letters, digits, '_', '-' and '.', starting and ending with a letter or digit.", "[TMPL-GALIMG]; [IMG-VERSION]; [SDK-GALIMG]"),
    rule("GAL-010", Severity::Error, "Image version name", "MajorVersion.MinorVersion.Patch: digits and periods only, each number within a 32-bit integer.", "[IMG-VERSION]; [SIG]"),
    rule("GAL-011", Severity::Info, "Gallery limits", "At most 1,000 definitions and 10,000 versions per subscription and region; images under 2 TB unless shallow replication (up to 32 TB); data disks up to 1 TB.", "[ACG]; [IMG-VERSION]"),
];

/// Why GAL-009/010 are not evaluated by `vhdprep check`.
pub const NO_NAME: &str =
    "no image definition name is known here; `vhdprep gallery --name N` validates it";
/// Why GAL-010 is not evaluated without `--version`.
pub const NO_VERSION: &str =
    "no image version is known here; `vhdprep gallery --version X.Y.Z` validates it";

/// Evaluates GAL-001..008 and GAL-011; GAL-009/010 are skipped (see [`evaluate_names`]).
pub fn evaluate(ctx: &Context, out: &mut Collector) {
    let why = ctx.not_examined_reason();
    os_type(ctx, out, &why);
    os_state(ctx, out, &why);
    generation(ctx, out);
    architecture(ctx, out, &why);
    security_type(ctx, out);
    accelerated_networking(ctx, out, &why);
    nvme(ctx, out, &why);
    out.skip(
        "GAL-008",
        "IsHibernateSupported is not derivable offline; vhdprep leaves it unset",
    );
    out.skip("GAL-009", NO_NAME);
    out.skip("GAL-010", NO_VERSION);
    limits(ctx, out);
}

/// Evaluates GAL-009 on `name` and GAL-010 on `version`, when given.
pub fn evaluate_names(name: Option<&str>, version: Option<&str>, out: &mut Collector) {
    match name {
        Some(n) => match check_definition_name(n) {
            Ok(()) => out.evaluated("GAL-009"),
            Err(e) => out.push(
                Finding::new("GAL-009", Severity::Error, e)
                    .with_evidence(format!("--name {n:?}"))
                    .with_remediation("use 1-80 letters, digits, '_', '-' or '.', starting and ending with a letter or digit"),
            ),
        },
        None => out.skip("GAL-009", "no --name given"),
    }
    match version {
        Some(v) => match check_version_name(v) {
            Ok(()) => out.evaluated("GAL-010"),
            Err(e) => out.push(
                Finding::new("GAL-010", Severity::Error, e)
                    .with_evidence(format!("--version {v:?}"))
                    .with_remediation("use MajorVersion.MinorVersion.Patch, e.g. 1.0.0"),
            ),
        },
        None => out.skip("GAL-010", "no --version given"),
    }
}

/// Whether `f` says a value the user declared contradicts the disk (the definition would be
/// wrong as declared). GAL-005 counts only when a SecurityType was declared.
pub fn contradicts_declaration(f: &Finding, policy: &Policy) -> bool {
    if f.severity < Severity::Warning {
        return false;
    }
    match f.id {
        "GAL-002" | "GAL-003" | "GAL-006" | "GAL-007" => true,
        "GAL-005" => policy.security_type.is_some(),
        _ => false,
    }
}

fn os_type(ctx: &Context, out: &mut Collector, why: &str) {
    let Some(os) = &ctx.os else {
        out.skip("GAL-001", why);
        return;
    };
    let name = os
        .pretty_name
        .as_deref()
        .or(os.name.as_deref())
        .unwrap_or("a Linux distribution");
    out.push(
        Finding::new(
            "GAL-001",
            Severity::Info,
            format!("osType is Linux ({name})"),
        )
        .with_evidence(format!(
            "/etc/os-release: ID={}",
            os.id.as_deref().unwrap_or("?")
        ))
        .at_guest("/etc/os-release", None),
    );
}

fn os_state(ctx: &Context, out: &mut Collector, why: &str) {
    let Some(declared) = ctx.policy.os_state else {
        out.evaluated("GAL-002");
        return;
    };
    let v = &ctx.derived.os_state;
    let Some(derived) = v.value else {
        out.skip("GAL-002", format!("osState cannot be derived: {why}"));
        return;
    };
    out.evaluated("GAL-002");
    if declared == derived {
        return;
    }
    let (consequence, evidence, fix) = match declared {
        OsState::Specialized => (
            "its provisioning agent waits for provisioning data that a Specialized definition never sends: VM creation times out",
            v.generalized_evidence.join("; "),
            "declare --os-state Generalized (Specialized suits only disks captured without deprovisioning)",
        ),
        OsState::Generalized => (
            "VMs from it keep the original host name, users and keys and report a provisioning failure",
            v.specialized_evidence.join("; "),
            "deprovision it (`waagent -deprovision+user`, `cloud-init clean --logs --seed`) or declare --os-state Specialized",
        ),
    };
    out.push(
        Finding::new(
            "GAL-002",
            Severity::Error,
            format!("osState {declared} is declared but the disk is {derived}: {consequence}"),
        )
        .with_evidence(if evidence.is_empty() {
            format!("generalization verdict: {derived}")
        } else {
            evidence
        })
        .with_remediation(fix),
    );
}

fn generation(ctx: &Context, out: &mut Collector) {
    let Some(declared) = ctx.policy.generation else {
        out.evaluated("GAL-003");
        return;
    };
    if ctx.boot.is_none() {
        out.skip(
            "GAL-003",
            "no partition table was read, so the boot chain is unknown",
        );
        return;
    }
    out.evaluated("GAL-003");
    let d = &ctx.derived;
    if d.generation.contains(&declared) {
        return;
    }
    let boots = match d.generation.as_slice() {
        [] => "neither generation".to_string(),
        g => g
            .iter()
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
            .join(" and "),
    };
    let arm = d.architecture.as_deref() == Some("Arm64");
    let message = if arm && declared == Generation::V1 {
        "hyperVGeneration V1 is declared but Arm64 VMs are Generation 2 only".to_string()
    } else {
        format!("hyperVGeneration {declared} is declared but the disk boots {boots}: VMs will not find a boot loader")
    };
    let fix = match (declared, recommended_generation(ctx)) {
        (_, Some(g)) => format!("declare --hyper-v-generation {g} (az disk create / image definition)"),
        (Generation::V2, None) => "install a UEFI fallback loader as \\EFI\\BOOT\\BOOTX64.EFI on an ESP (grub-install --removable)".into(),
        (Generation::V1, None) => "install GRUB for BIOS (grub-install --target=i386-pc)".into(),
    };
    out.push(
        Finding::new("GAL-003", Severity::Error, message)
            .with_evidence(d.generation_evidence.join("; "))
            .with_remediation(fix),
    );
}

fn architecture(ctx: &Context, out: &mut Collector, why: &str) {
    let Some(a) = &ctx.derived.architecture else {
        out.skip("GAL-004", why);
        return;
    };
    let from = ctx
        .derived
        .architecture_evidence
        .as_deref()
        .unwrap_or("the UEFI loader");
    out.push(
        Finding::new("GAL-004", Severity::Info, format!("architecture is {a}"))
            .with_evidence(format!("ELF header of {from}"))
            .at_guest(from, None),
    );
}

fn security_type(ctx: &Context, out: &mut Collector) {
    if ctx.boot.is_none() {
        out.skip(
            "GAL-005",
            "no partition table was read, so the boot chain is unknown",
        );
        return;
    }
    out.evaluated("GAL-005");
    let tl = &ctx.derived.trusted_launch;
    let generation = ctx
        .policy
        .generation
        .or_else(|| recommended_generation(ctx));
    let ready = tl.supported && generation == Some(Generation::V2);
    if ready {
        return;
    }
    let mut reasons = Vec::new();
    if generation != Some(Generation::V2) {
        reasons.push(match generation {
            Some(g) => format!("the definition is {g}; Trusted Launch needs Generation 2"),
            None => "the disk boots neither generation; Trusted Launch needs Generation 2".into(),
        });
    }
    if !tl.supported {
        reasons.extend(tl.reasons.iter().cloned());
    }
    let evidence = reasons.join("; ");
    let f = match ctx.policy.security_type {
        Some(SecurityType::Standard) => return,
        Some(SecurityType::TrustedLaunchSupported) => Finding::new(
            "GAL-005",
            Severity::Warning,
            "SecurityType TrustedLaunchSupported is declared but the image cannot boot with Secure Boot: Trusted Launch VMs from it will not boot",
        )
        .with_remediation("declare --features SecurityType=Standard, or make \\EFI\\BOOT\\BOOTX64.EFI a Microsoft-signed shim with a signed GRUB (shim-signed, grub-efi-amd64-signed; grub-install --uefi-secure-boot --removable)"),
        None => Finding::new(
            "GAL-005",
            Severity::Warning,
            "no SecurityType is declared and the image is not ready for Trusted Launch: API versions from 2025-03-03 create definitions as TrustedLaunchSupported (and V2) by default",
        )
        .with_remediation("declare --features SecurityType=Standard on the image definition"),
    };
    out.push(f.with_evidence(evidence));
}

fn accelerated_networking(ctx: &Context, out: &mut Collector, why: &str) {
    if !ctx.policy.accelerated_networking {
        out.evaluated("GAL-006");
        return;
    }
    let Some(p) = gallery::accelerated_networking(ctx) else {
        out.skip("GAL-006", why);
        return;
    };
    out.evaluated("GAL-006");
    if p.holds {
        return;
    }
    out.push(
        Finding::new(
            "GAL-006",
            Severity::Warning,
            "IsAcceleratedNetworkSupported=True is declared but the accelerated-networking prerequisites are missing: VMs lose networking or fall back to the synthetic NIC",
        )
        .with_evidence(p.missing.join("; "))
        .with_remediation("keep the mlx4_en, mlx4_core, mlx5_core and mana drivers (no blacklist); with NetworkManager add /etc/udev/rules.d/68-azure-sriov-nm-unmanaged.rules: SUBSYSTEM==\"net\", DRIVERS==\"hv_pci\", ACTION!=\"remove\", ENV{NM_UNMANAGED}=\"1\"; or declare IsAcceleratedNetworkSupported=False"),
    );
}

fn nvme(ctx: &Context, out: &mut Collector, why: &str) {
    if !ctx.policy.nvme {
        out.evaluated("GAL-007");
        return;
    }
    let generation = ctx
        .policy
        .generation
        .or_else(|| recommended_generation(ctx));
    let Some(p) = gallery::nvme(ctx, generation) else {
        out.skip("GAL-007", why);
        return;
    };
    out.evaluated("GAL-007");
    if p.holds {
        return;
    }
    out.push(
        Finding::new(
            "GAL-007",
            Severity::Error,
            "DiskControllerTypes lists NVMe but the NVMe prerequisites are missing: VMs on NVMe sizes will not find their root disk",
        )
        .with_evidence(p.missing.join("; "))
        .with_remediation(match ctx.family() {
            vhdprep_guest::Family::Debian => "add nvme and nvme_core to the initramfs (printf '%s\\n' nvme nvme_core >> /etc/initramfs-tools/modules; update-initramfs -u -k all), add nvme_core.io_timeout=240 to GRUB_CMDLINE_LINUX in /etc/default/grub and run update-grub, mount by UUID; or declare DiskControllerTypes=SCSI".to_string(),
            vhdprep_guest::Family::Unknown => "add nvme and nvme_core to the initramfs (echo nvme >> /etc/initramfs-tools/modules; update-initramfs -u, or dracut --add-drivers \"nvme nvme_core\"), add nvme_core.io_timeout=240 to GRUB_CMDLINE_LINUX and run update-grub, mount by UUID; or declare DiskControllerTypes=SCSI".to_string(),
            f => format!("add nvme and nvme_core to the initramfs (echo 'add_drivers+=\" nvme nvme_core \"' > /etc/dracut.conf.d/azure-nvme.conf; {}), {}, mount by UUID; or declare DiskControllerTypes=SCSI", f.initramfs_rebuild_command(), f.kernel_args_command("nvme_core.io_timeout=240")),
        }),
    );
}

fn limits(ctx: &Context, out: &mut Collector) {
    out.evaluated("GAL-011");
    // Saturating: sizes come from (possibly hostile) footers.
    let total = ctx
        .data_disks
        .iter()
        .map(|d| d.image.virtual_size())
        .fold(ctx.image.virtual_size(), u64::saturating_add);
    if total > GALLERY_IMAGE_MAX {
        out.push(
            Finding::new(
                "GAL-011",
                Severity::Info,
                format!(
                    "the image totals {:.1} GiB: a gallery image version above 2 TB needs shallow replication (up to 32 TB)",
                    total as f64 / GIB as f64
                ),
            )
            .with_evidence("OS disk plus data disks, virtual sizes")
            .with_remediation("az sig image-version create ... --replication-mode Shallow"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_judged_only_when_given() {
        let mut out = Collector::default();
        evaluate_names(Some("debian 12"), Some("1.0"), &mut out);
        let ids: Vec<_> = out.findings.iter().map(|f| (f.id, f.severity)).collect();
        assert_eq!(
            ids,
            [("GAL-009", Severity::Error), ("GAL-010", Severity::Error)]
        );
        assert!(out.findings[0].message.contains("' '"));
        let mut out = Collector::default();
        evaluate_names(Some("debian-12"), None, &mut out);
        assert!(out.findings.is_empty());
        assert!(out.evaluated.contains("GAL-009"));
        assert_eq!(out.skipped["GAL-010"], "no --version given");
    }

    #[test]
    fn only_declared_values_count_as_contradictions() {
        let declared = Policy {
            security_type: Some(SecurityType::TrustedLaunchSupported),
            ..Policy::default()
        };
        let f = |id, sev| Finding::new(id, sev, "x");
        let none = Policy::default();
        assert!(contradicts_declaration(
            &f("GAL-003", Severity::Error),
            &none
        ));
        assert!(contradicts_declaration(
            &f("GAL-006", Severity::Warning),
            &none
        ));
        assert!(!contradicts_declaration(
            &f("GAL-005", Severity::Warning),
            &none
        ));
        assert!(contradicts_declaration(
            &f("GAL-005", Severity::Warning),
            &declared
        ));
        assert!(!contradicts_declaration(
            &f("GAL-001", Severity::Info),
            &declared
        ));
        assert!(!contradicts_declaration(
            &f("GAL-009", Severity::Error),
            &declared
        ));
    }
}
