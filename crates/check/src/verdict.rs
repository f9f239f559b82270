//! The verdicts a report states up front, derived from the facts before any rule runs (rules
//! such as VHD-009, GAL-002 and AGENT-005 depend on them): container OK, the Hyper-V
//! generations the disk can boot, osState with its evidence, the provisioning path,
//! architecture, and Trusted Launch readiness.

use crate::context::Context;
use crate::policy::{Generation, OsState};
use serde::Serialize;
use vhdprep_finding::Severity;
use vhdprep_guest::elf::Architecture;
use vhdprep_guest::facts::agents::Provisioner;
use vhdprep_guest::facts::system::generalization::MachineIdValue;
use vhdprep_guest::facts::system::users::PasswordField;

/// Who provisions VMs made from the image, and what stands in the way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProvisioningVerdict {
    /// `cloud-init`, `waagent`, `disabled` (waagent reports ready without provisioning) or
    /// `none`; `unknown` when the guest was not examined.
    pub agent: String,
    /// Why, in one sentence.
    pub reason: String,
    /// Conflicts (AGENT-005, SYS-005), one sentence each.
    pub conflicts: Vec<String>,
}

/// The osState the disk's contents show, with the evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OsStateVerdict {
    /// `Generalized` or `Specialized`; `None` when the guest was not examined.
    pub value: Option<OsState>,
    /// Signals that make the image specialized (hard evidence first).
    pub specialized_evidence: Vec<String>,
    /// Signals that show deprovisioning happened.
    pub generalized_evidence: Vec<String>,
}

/// Whether VMs from the image can boot with Secure Boot (Trusted Launch).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrustedLaunchVerdict {
    /// Gen2, 64-bit, and the fallback loader is a Microsoft-signed shim.
    pub supported: bool,
    /// What was found, or what is missing.
    pub reasons: Vec<String>,
}

/// All up-front verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Derived {
    /// No error-level container finding (fixed VHD, aligned, footer valid, size window).
    pub container_ok: bool,
    /// The generations the disk can boot (both for a hybrid disk).
    pub generation: Vec<Generation>,
    /// Why each generation is or is not possible.
    pub generation_evidence: Vec<String>,
    /// osState from the generalization signals.
    pub os_state: OsStateVerdict,
    /// Provisioning path.
    pub provisioning: ProvisioningVerdict,
    /// Azure architecture name (`x64`, `Arm64`), or the `uname -m` name of an unsupported one.
    pub architecture: Option<String>,
    /// The binary the architecture was read from.
    pub architecture_evidence: Option<String>,
    /// Trusted Launch readiness.
    pub trusted_launch: TrustedLaunchVerdict,
}

/// Derives every verdict from the gathered facts.
pub fn derive(ctx: &Context) -> Derived {
    let container_ok = ctx.image.format().is_vhd()
        && !ctx
            .container
            .findings
            .iter()
            .any(|f| f.severity == Severity::Error);
    let (generation, generation_evidence) = generations(ctx);
    let trusted_launch = trusted_launch(ctx, &generation);
    Derived {
        container_ok,
        generation,
        generation_evidence,
        os_state: os_state(ctx),
        provisioning: provisioning(ctx),
        architecture: ctx.architecture.as_ref().map(|(a, _)| match a {
            Architecture::X64 | Architecture::Arm64 => a.azure_name(),
            other => other.uname_name(),
        }),
        architecture_evidence: ctx.architecture.as_ref().map(|(_, p)| p.clone()),
        trusted_launch,
    }
}

fn is_arm64(ctx: &Context) -> bool {
    matches!(ctx.architecture, Some((Architecture::Arm64, _)))
        || ctx
            .boot
            .as_ref()
            .is_some_and(|b| b.architectures == ["arm64"])
}

fn generations(ctx: &Context) -> (Vec<Generation>, Vec<String>) {
    let Some(boot) = &ctx.boot else {
        return (Vec::new(), vec!["no partition table was read".into()]);
    };
    let mut gens = Vec::new();
    let mut why = Vec::new();
    if boot.bios_bootable && !is_arm64(ctx) {
        gens.push(Generation::V1);
        why.push(format!("V1: {}", boot.bios_reasons.join("; ")));
    } else if boot.bios_bootable {
        why.push("V1: BIOS boot code found, but Arm64 VMs are Generation 2 only".into());
    } else {
        why.push(format!("not V1: {}", boot.bios_reasons.join("; ")));
    }
    if boot.uefi_bootable {
        gens.push(Generation::V2);
        why.push(format!("V2: {}", boot.uefi_reasons.join("; ")));
    } else {
        why.push(format!("not V2: {}", boot.uefi_reasons.join("; ")));
    }
    (gens, why)
}

fn trusted_launch(ctx: &Context, gens: &[Generation]) -> TrustedLaunchVerdict {
    let Some(boot) = &ctx.boot else {
        return TrustedLaunchVerdict::default();
    };
    let mut reasons = boot.secure_boot.reasons.clone();
    let v2 = gens.contains(&Generation::V2);
    if !v2 {
        reasons.insert(0, "the disk does not boot as Generation 2 (UEFI)".into());
    }
    TrustedLaunchVerdict {
        supported: v2 && boot.secure_boot.ready,
        reasons,
    }
}

fn provisioning(ctx: &Context) -> ProvisioningVerdict {
    let Some(a) = &ctx.agents else {
        return ProvisioningVerdict {
            agent: "unknown".into(),
            reason: "the guest was not examined".into(),
            conflicts: Vec::new(),
        };
    };
    let p = &a.provisioning;
    ProvisioningVerdict {
        agent: match p.provisioner {
            Provisioner::CloudInit => "cloud-init",
            Provisioner::Waagent => "waagent",
            Provisioner::Disabled => "disabled",
            Provisioner::None => "none",
        }
        .into(),
        reason: p.reason.clone(),
        conflicts: p
            .conflicts
            .iter()
            .map(|c| format!("{}: {}", c.rule, c.message))
            .collect(),
    }
}

/// Specialized if any hard signal of the catalogue's section 4.4 is present: the waagent
/// `provisioned` marker (GEN-001), ovf-env.xml, certificates or CustomData of a past VM
/// (GEN-002), a cloud-init seed (GEN-005), or users' authorized_keys while the host keys stay
/// and nothing regenerates them (GEN-008 with GEN-007). The generalized evidence lists what
/// deprovisioning leaves behind (root locked, machine-id reset, no host keys) and the agent
/// that will provision. The rules (GEN-xxx, AGENT-xxx) judge the same facts against what the
/// user declares.
fn os_state(ctx: &Context) -> OsStateVerdict {
    let (Some(sys), Some(agents)) = (&ctx.system, &ctx.agents) else {
        return OsStateVerdict::default();
    };
    let mut hard = Vec::new();
    let mut clean = Vec::new();
    for l in &sys.generalization.leftovers {
        let hard_item = matches!(
            l.item,
            "waagent-provisioned"
                | "waagent-ovf-env"
                | "waagent-certificates"
                | "waagent-transport-cert"
                | "waagent-custom-data"
                | "cloud-init-seed"
        );
        if hard_item {
            hard.push(format!("{} {} ({})", l.rule, l.fact.path, l.item));
        }
    }
    let host_keys = !sys.generalization.ssh_host_keys.is_empty();
    let regenerated = agents.host_key_regeneration();
    let user_keys: Vec<&str> = sys
        .users
        .authorized_keys
        .iter()
        .filter(|k| k.keys.unwrap_or(1) > 0)
        .map(|k| k.path.as_str())
        .collect();
    if host_keys && regenerated.is_none() && !user_keys.is_empty() {
        hard.push(format!(
            "GEN-008 authorized_keys {} with ssh host keys kept and nothing to regenerate them",
            user_keys.join(", ")
        ));
    }
    if sys.users.waagent_root_lock {
        clean.push("GEN-009 /etc/shadow starts with root:*LOCK* (waagent -deprovision)".into());
    } else if let Some(root) = &sys.users.root_password {
        if !matches!(root.password, PasswordField::Usable { .. }) {
            clean.push("GEN-009 root has no usable password".into());
        }
    }
    if let Some(m) = &sys.generalization.machine_id {
        if matches!(
            m.value,
            MachineIdValue::Empty | MachineIdValue::Uninitialized
        ) {
            clean.push(format!("GEN-013 {} is empty or uninitialized", m.file.path));
        }
    }
    if !host_keys {
        clean.push("GEN-007 no ssh host keys".into());
    } else if let Some(who) = regenerated {
        clean.push(format!(
            "GEN-007 ssh host keys are replaced at first boot: {who}"
        ));
    }
    match agents.provisioning.provisioner {
        Provisioner::CloudInit => clean.push("AGENT-001 cloud-init provisions".into()),
        Provisioner::Waagent => clean.push("AGENT-001 waagent provisions".into()),
        Provisioner::Disabled | Provisioner::None => {}
    }
    OsStateVerdict {
        value: Some(if hard.is_empty() {
            OsState::Generalized
        } else {
            OsState::Specialized
        }),
        specialized_evidence: hard,
        generalized_evidence: clean,
    }
}
