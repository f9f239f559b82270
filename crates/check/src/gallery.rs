//! The Azure Compute Gallery image definition a disk calls for (catalogue section 6, GAL-xxx):
//! osType, osState, hyperVGeneration, architecture and the features SecurityType,
//! IsAcceleratedNetworkSupported and DiskControllerTypes, each derived from the gathered
//! [`Context`] with its evidence, and overridden by what the user declared in the
//! [`Policy`](crate::Policy). Rendered as `az sig image-definition create` (and
//! `az sig image-version create`) commands and as an ARM template.
//!
//! The GAL rules ([`crate::rules::gallery`]) judge the declared values against the derived
//! ones; [`GalleryReport::build`] puts definition, findings and renderings together for
//! `vhdprep gallery`.

use crate::context::Context;
use crate::policy::{Generation, SecurityType};
use crate::report::{Tool, TOOL};
use crate::rules::{self, Collector};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use vhdprep_finding::Finding;
use vhdprep_guest::facts::kernel::cmdline::RootRefKind;
use vhdprep_guest::facts::kernel::InstalledKernel;
use vhdprep_guest::facts::system::services::unit_state;

/// Longest image definition name Azure accepts (GAL-009).
pub const MAX_DEFINITION_NAME: usize = 80;
/// ARM API version of the `Microsoft.Compute/galleries/images` resource written by
/// [`ImageDefinition::arm_template`] (the newest in the ARM template reference).
pub const ARM_API_VERSION: &str = "2023-07-03";
/// The VF drivers accelerated networking needs (KRN-007): Mellanox ConnectX-3/4/5 and MANA.
pub const ACCELERATED_NETWORKING_MODULES: [&str; 4] = ["mlx4_en", "mlx4_core", "mlx5_core", "mana"];
/// The NVMe drivers an NVMe-tagged image needs early (KRN-006).
pub const NVME_MODULES: [&str; 2] = ["nvme", "nvme_core"];
/// The I/O timeout Azure's NVMe guidance sets (`nvme_core.io_timeout=240`).
pub const NVME_IO_TIMEOUT: u64 = 240;
/// Version of the `vhdprep gallery --format json` layout.
pub const SCHEMA_VERSION: u32 = 1;

/// Checks an image definition name (GAL-009): 1–80 characters of ASCII letters, digits, `_`,
/// `-` and `.`, starting and ending with a letter or digit. The error names the problem.
pub fn check_definition_name(name: &str) -> Result<(), String> {
    let shown = format!("image definition name {name:?}");
    if name.is_empty() {
        return Err(format!("{shown} is empty; it needs 1 to 80 characters"));
    }
    let len = name.chars().count();
    if len > MAX_DEFINITION_NAME {
        return Err(format!(
            "{shown} has {len} characters; at most {MAX_DEFINITION_NAME} are allowed"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "{shown} contains {c:?}; only letters, digits, '_', '-' and '.' are allowed"
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(name.chars().next()) || !alnum(name.chars().last()) {
        return Err(format!("{shown} must start and end with a letter or digit"));
    }
    Ok(())
}

/// Checks an image version name (GAL-010): `Major.Minor.Patch`, three groups of digits, each
/// within a 32-bit integer (0..=2147483647). The error names the problem.
pub fn check_version_name(version: &str) -> Result<(), String> {
    let shown = format!("image version {version:?}");
    let parts: Vec<&str> = version.split('.').collect();
    if parts.len() != 3 {
        return Err(format!(
            "{shown} must be MajorVersion.MinorVersion.Patch (three numbers separated by '.'), not {} part(s)",
            parts.len()
        ));
    }
    for (part, what) in parts.iter().zip(["major", "minor", "patch"]) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{shown}: the {what} version {part:?} must be digits only"
            ));
        }
        if part.parse::<i32>().is_err() {
            return Err(format!(
                "{shown}: the {what} version {part} exceeds a 32-bit integer (2147483647)"
            ));
        }
    }
    Ok(())
}

/// Whether a prerequisite of a gallery feature holds, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Prerequisite {
    /// Everything needed is there.
    pub holds: bool,
    /// What was found.
    pub evidence: Vec<String>,
    /// What is missing, one item each.
    pub missing: Vec<String>,
}

impl Prerequisite {
    fn finish(mut self) -> Prerequisite {
        self.holds = self.missing.is_empty();
        self
    }
}

/// Whether `module` can be loaded for kernel `k`: present (built in, a module file, or in the
/// initramfs; `early` asks for built in or initramfs) and not blacklisted.
fn module_state(
    ctx: &Context,
    k: &InstalledKernel,
    module: &str,
    early: bool,
) -> Result<String, String> {
    let Some(p) = k.module(module) else {
        return Err(format!("{module}: not looked for in kernel {}", k.version));
    };
    // Blacklists and `install X /bin/true` only stop loadable modules.
    let black = ctx
        .kernel
        .as_ref()
        .map(|f| f.blacklisted(module))
        .unwrap_or_default();
    if let (false, Some(b)) = (p.builtin, black.first()) {
        return Err(format!(
            "{module} is disabled by {}:{} ({})",
            b.file, b.line, b.text
        ));
    }
    let ok = if early { p.early() } else { p.available() };
    let place = if p.builtin {
        "built in".to_string()
    } else if let Some(i) = &p.in_initramfs {
        format!("in the initramfs ({i})")
    } else if let Some(d) = &p.on_disk {
        d.clone()
    } else if let Some(c) = &p.config {
        format!("{}={}", c.option, c.value)
    } else {
        String::new()
    };
    if ok {
        Ok(format!("{module} {place}"))
    } else if early && p.available() {
        Err(format!(
            "{module} of kernel {} is not in its initramfs nor built in ({place})",
            k.version
        ))
    } else {
        Err(format!("{module} is missing from kernel {}", k.version))
    }
}

/// Whether NetworkManager manages the NICs (its service is enabled).
fn network_manager_in_use(ctx: &Context) -> Option<String> {
    let tree = ctx.tree()?;
    let u = unit_state(tree, "NetworkManager.service");
    u.enabled().then(|| {
        format!(
            "NetworkManager.service is enabled ({})",
            u.wanted_by.join(", ")
        )
    })
}

/// The accelerated-networking prerequisites (GAL-006): every installed kernel has the VF
/// drivers `mlx4_en`, `mlx4_core`, `mlx5_core` and `mana`, none blacklisted (KRN-007), and on a
/// NetworkManager system the VF is left unmanaged by `68-azure-sriov-nm-unmanaged.rules` or an
/// `unmanaged-devices=driver:mlx4_core,driver:mlx5_core` setting (NET-004). `None` when the
/// guest was not examined.
pub fn accelerated_networking(ctx: &Context) -> Option<Prerequisite> {
    let kernel = ctx.kernel.as_ref()?;
    let sys = ctx.system.as_ref()?;
    let mut p = Prerequisite::default();
    if kernel.kernels.is_empty() {
        p.missing.push("no installed kernel was found".into());
    }
    for k in &kernel.kernels {
        for m in ACCELERATED_NETWORKING_MODULES {
            match module_state(ctx, k, m, false) {
                Ok(e) => p.evidence.push(format!("kernel {}: {e}", k.version)),
                Err(e) => p.missing.push(e),
            }
        }
    }
    let net = &sys.network;
    match network_manager_in_use(ctx) {
        None => p
            .evidence
            .push("NetworkManager is not enabled (no SR-IOV unmanaged rule needed)".into()),
        Some(nm) => {
            let conf_mlx = |d: &str| net.nm_unmanaged_devices.iter().any(|l| l.text.contains(d));
            if net.sriov_nm_unmanaged {
                p.evidence.push(format!(
                    "{nm}; {} sets NM_UNMANAGED=1",
                    vhdprep_guest::facts::system::network::SRIOV_RULE
                ));
            } else if conf_mlx("mlx4_core") && conf_mlx("mlx5_core") {
                let l = &net.nm_unmanaged_devices[0];
                p.evidence
                    .push(format!("{nm}; {}:{} {}", l.path, l.line, l.text));
            } else {
                p.missing.push(format!(
                    "{nm} but nothing keeps it off the VF: no {} with NM_UNMANAGED=1 and no unmanaged-devices=driver:mlx4_core,driver:mlx5_core",
                    vhdprep_guest::facts::system::network::SRIOV_RULE
                ));
            }
        }
    }
    Some(p.finish())
}

/// The NVMe prerequisites (GAL-007, KRN-006): Generation 2, `nvme` and `nvme_core` built in or
/// in the initramfs of every installed kernel and not blacklisted, `nvme_core.io_timeout=240`
/// on the effective command line, and the root and fstab referring to filesystems by UUID,
/// LABEL or PARTUUID rather than device names that change with the controller. `None` when
/// the guest was not examined.
pub fn nvme(ctx: &Context, generation: Option<Generation>) -> Option<Prerequisite> {
    let kernel = ctx.kernel.as_ref()?;
    let guest = ctx.guest.as_ref()?;
    let mut p = Prerequisite::default();
    match generation {
        Some(Generation::V2) => p.evidence.push("Generation 2".into()),
        Some(Generation::V1) => p
            .missing
            .push("NVMe disk controllers need Generation 2; the image is Generation 1".into()),
        None => p
            .missing
            .push("NVMe needs Generation 2, but the disk boots neither generation".into()),
    }
    if kernel.kernels.is_empty() {
        p.missing.push("no installed kernel was found".into());
    }
    for k in &kernel.kernels {
        for m in NVME_MODULES {
            match module_state(ctx, k, m, true) {
                Ok(e) => p.evidence.push(format!("kernel {}: {e}", k.version)),
                Err(e) => p.missing.push(e),
            }
        }
    }
    nvme_cmdline(ctx, &mut p);
    for m in &guest.fstab {
        let spec = &m.entry.spec;
        if device_name(spec) && !m.entry.options.iter().any(|o| o == "nofail") {
            p.missing.push(format!(
                "/etc/fstab line {} mounts {spec} by device name, which changes on NVMe",
                m.entry.line
            ));
        }
    }
    Some(p.finish())
}

fn nvme_cmdline(ctx: &Context, p: &mut Prerequisite) {
    let Some(k) = ctx.kernel.as_ref() else { return };
    let Some(cmd) = &k.cmdlines.effective else {
        p.missing
            .push("no kernel command line was found to carry nvme_core.io_timeout=240".into());
        return;
    };
    let at = k.cmdlines.effective_source().map_or_else(
        || "/etc/default/grub".to_string(),
        |s| format!("{}:{}", s.file, s.line),
    );
    let timeout = cmd
        .value("nvme_core.io_timeout")
        .last()
        .and_then(|v| v.parse::<u64>().ok());
    match timeout {
        Some(t) if t >= NVME_IO_TIMEOUT => {
            p.evidence.push(format!("{at}: nvme_core.io_timeout={t}"))
        }
        Some(t) => p.missing.push(format!(
            "{at} sets nvme_core.io_timeout={t}; Azure needs {NVME_IO_TIMEOUT}"
        )),
        None => p
            .missing
            .push(format!("{at} lacks nvme_core.io_timeout={NVME_IO_TIMEOUT}")),
    }
    if let Some(r) = k.cmdlines.effective_source().and_then(|s| s.root.as_ref()) {
        if r.kind == RootRefKind::DeviceName && device_name(&r.value) {
            p.missing.push(format!(
                "{at}: root={} is a device name, which changes on NVMe",
                r.value
            ));
        }
    }
}

/// A kernel device name that depends on the disk controller (`/dev/sda1`, `/dev/nvme0n1p1`).
fn device_name(spec: &str) -> bool {
    ["/dev/sd", "/dev/hd", "/dev/vd", "/dev/xvd", "/dev/nvme"]
        .iter()
        .any(|p| spec.starts_with(p))
}

/// One top-level field of the definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Field {
    /// The value the definition uses: the declared one, else the derived one; `None` when
    /// neither is known (renderings then carry a placeholder).
    pub value: Option<String>,
    /// What the disk shows.
    pub derived: Option<String>,
    /// What the user declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared: Option<String>,
    /// Every value the disk allows (both generations of a hybrid disk).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub possible: Vec<String>,
    /// Why: what was found where.
    pub evidence: Vec<String>,
}

/// One entry of `features`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feature {
    /// `SecurityType`, `IsAcceleratedNetworkSupported`, `DiskControllerTypes`.
    pub name: &'static str,
    /// The value used (declared, else derived), as the ARM API spells it.
    pub value: String,
    /// What the disk supports.
    pub derived: String,
    /// What the user declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared: Option<String>,
    /// Why.
    pub evidence: Vec<String>,
}

/// A feature left out of the definition, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Omitted {
    /// Feature name.
    pub name: &'static str,
    /// Why it is not set.
    pub reason: &'static str,
}

/// The image definition for a disk, with the evidence of every field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageDefinition {
    /// `--gallery-image-definition`, when given.
    pub name: Option<String>,
    /// The image version to create, when given.
    pub version: Option<String>,
    /// `osType` (GAL-001).
    pub os_type: Field,
    /// `osState` (GAL-002).
    pub os_state: Field,
    /// `hyperVGeneration` (GAL-003).
    pub hyper_v_generation: Field,
    /// `architecture` (GAL-004).
    pub architecture: Field,
    /// `features` (GAL-005..007).
    pub features: Vec<Feature>,
    /// Features deliberately left unset (GAL-008).
    pub omitted: Vec<Omitted>,
}

/// Placeholders written where the user must fill in a value.
pub mod placeholder {
    /// Resource group.
    pub const RESOURCE_GROUP: &str = "RG";
    /// Gallery.
    pub const GALLERY: &str = "GALLERY";
    /// Definition name, when `--name` is not given.
    pub const DEFINITION: &str = "IMAGE_DEFINITION";
    /// Publisher of the identifier triple.
    pub const PUBLISHER: &str = "PUBLISHER";
    /// Offer of the identifier triple.
    pub const OFFER: &str = "OFFER";
    /// SKU of the identifier triple.
    pub const SKU: &str = "SKU";
    /// The uploaded VHD's blob URI.
    pub const VHD_URI: &str = "VHD_BLOB_URI";
    /// The storage account holding it.
    pub const STORAGE_ACCOUNT: &str = "STORAGE_ACCOUNT_ID";
}

fn field(derived: Option<String>, declared: Option<String>, evidence: Vec<String>) -> Field {
    Field {
        value: declared.clone().or_else(|| derived.clone()),
        derived,
        declared,
        possible: Vec::new(),
        evidence,
    }
}

impl ImageDefinition {
    /// Derives the definition from the gathered facts; values the policy declares win over
    /// derived ones (the GAL rules report where they contradict the disk).
    pub fn derive(ctx: &Context, name: Option<&str>, version: Option<&str>) -> ImageDefinition {
        let policy = ctx.policy;
        let d = &ctx.derived;
        let os_type = field(
            Some("Linux".into()),
            None,
            vec![match &ctx.os {
                Some(o) => format!(
                    "/etc/os-release: {}",
                    o.pretty_name
                        .as_deref()
                        .or(o.name.as_deref())
                        .unwrap_or("Linux")
                ),
                None => {
                    "vhdprep prepares Linux (and BSD) images, which Azure registers as Linux".into()
                }
            }],
        );
        let os_evidence = if d.os_state.specialized_evidence.is_empty() {
            d.os_state.generalized_evidence.clone()
        } else {
            d.os_state.specialized_evidence.clone()
        };
        let os_state = field(
            d.os_state.value.map(|s| s.to_string()),
            policy.os_state.map(|s| s.to_string()),
            os_evidence,
        );
        let mut hyper_v_generation = field(
            recommended_generation(ctx).map(|g| g.to_string()),
            policy.generation.map(|g| g.to_string()),
            d.generation_evidence.clone(),
        );
        hyper_v_generation.possible = d.generation.iter().map(|g| g.to_string()).collect();
        if d.generation.len() > 1 {
            hyper_v_generation.evidence.insert(
                0,
                "hybrid disk: V2 recommended (UEFI, Trusted Launch, NVMe); V1 also boots".into(),
            );
        }
        let mut arch_ev: Vec<String> = d
            .architecture_evidence
            .iter()
            .map(|p| format!("ELF header of {p}"))
            .collect();
        if let Some(b) = &ctx.boot {
            if !b.architectures.is_empty() {
                arch_ev.push(format!(
                    "UEFI fallback loader: {}",
                    b.architectures.join(", ")
                ));
            }
        }
        let architecture = field(d.architecture.clone(), None, arch_ev);
        let generation = policy.generation.or_else(|| recommended_generation(ctx));
        let features = vec![
            security_type(ctx, generation),
            accelerated_networking_feature(ctx),
            disk_controllers(ctx, generation),
        ];
        ImageDefinition {
            name: name.map(str::to_string),
            version: version.map(str::to_string),
            os_type,
            os_state,
            hyper_v_generation,
            architecture,
            features,
            omitted: vec![Omitted {
                name: "IsHibernateSupported",
                reason: "not derivable offline (GAL-008); hibernation of Linux VMs is unsupported with Trusted Launch, so it is left unset",
            }],
        }
    }

    /// The feature named `name`.
    pub fn feature(&self, name: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.name == name)
    }

    /// The `az sig image-definition create` command, and `az sig image-version create` when a
    /// version was given; placeholders (`RG`, `GALLERY`, `PUBLISHER` ...) where the disk cannot
    /// tell. `--features` is one space-separated argument, so DiskControllerTypes is written
    /// `SCSI,NVMe` there.
    pub fn az_commands(&self) -> Vec<String> {
        use placeholder as ph;
        let name = shell_word(self.name.as_deref().unwrap_or(ph::DEFINITION));
        let features = self
            .features
            .iter()
            .map(|f| format!("{}={}", f.name, f.value.replace(", ", ",")))
            .collect::<Vec<_>>()
            .join(" ");
        let def = [
            "az sig image-definition create".to_string(),
            format!("--resource-group {}", ph::RESOURCE_GROUP),
            format!("--gallery-name {}", ph::GALLERY),
            format!("--gallery-image-definition {name}"),
            format!("--publisher {}", ph::PUBLISHER),
            format!("--offer {}", ph::OFFER),
            format!("--sku {}", ph::SKU),
            format!(
                "--os-type {}",
                self.os_type.value.as_deref().unwrap_or("Linux")
            ),
            format!(
                "--os-state {}",
                self.os_state.value.as_deref().unwrap_or("OS_STATE")
            ),
            format!(
                "--hyper-v-generation {}",
                self.hyper_v_generation
                    .value
                    .as_deref()
                    .unwrap_or("HYPER_V_GENERATION")
            ),
            format!(
                "--architecture {}",
                self.architecture.value.as_deref().unwrap_or("ARCHITECTURE")
            ),
            format!("--features \"{features}\""),
        ];
        let mut out = vec![def.join(" \\\n    ")];
        if let Some(v) = &self.version {
            out.push(
                [
                    "az sig image-version create".to_string(),
                    format!("--resource-group {}", ph::RESOURCE_GROUP),
                    format!("--gallery-name {}", ph::GALLERY),
                    format!("--gallery-image-definition {name}"),
                    format!("--gallery-image-version {}", shell_word(v)),
                    format!("--os-vhd-uri {}", ph::VHD_URI),
                    format!("--os-vhd-storage-account {}", ph::STORAGE_ACCOUNT),
                ]
                .join(" \\\n    "),
            );
        }
        out
    }

    /// An ARM deployment template creating the definition as a
    /// `Microsoft.Compute/galleries/images` resource; gallery, identifier and location are
    /// template parameters.
    pub fn arm_template(&self) -> ArmTemplate {
        let p = |name: &str, default: Option<&str>| {
            (
                name.to_string(),
                ArmParameter {
                    kind: "string",
                    default_value: default.map(str::to_string),
                },
            )
        };
        let parameters: BTreeMap<String, ArmParameter> = [
            p("galleryName", None),
            p(
                "imageDefinitionName",
                Some(self.name.as_deref().unwrap_or(placeholder::DEFINITION)),
            ),
            p("location", Some("[resourceGroup().location]")),
            p("publisher", None),
            p("offer", None),
            p("sku", None),
        ]
        .into_iter()
        .collect();
        let value = |f: &Field, ph: &str| f.value.clone().unwrap_or_else(|| ph.to_string());
        ArmTemplate {
            schema: "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            content_version: "1.0.0.0",
            parameters,
            resources: vec![ArmResource {
                kind: "Microsoft.Compute/galleries/images",
                api_version: ARM_API_VERSION,
                name: "[format('{0}/{1}', parameters('galleryName'), parameters('imageDefinitionName'))]",
                location: "[parameters('location')]",
                properties: ArmProperties {
                    os_type: value(&self.os_type, "Linux"),
                    os_state: value(&self.os_state, "OS_STATE"),
                    hyper_v_generation: value(&self.hyper_v_generation, "HYPER_V_GENERATION"),
                    architecture: value(&self.architecture, "ARCHITECTURE"),
                    features: self
                        .features
                        .iter()
                        .map(|f| ArmFeature {
                            name: f.name,
                            value: f.value.clone(),
                        })
                        .collect(),
                    identifier: ArmIdentifier {
                        publisher: "[parameters('publisher')]",
                        offer: "[parameters('offer')]",
                        sku: "[parameters('sku')]",
                    },
                },
            }],
        }
    }
}

/// `s` as one shell word: unchanged when it holds only safe characters, else single-quoted
/// (names reach here unvalidated through the library API).
pub fn shell_word(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_.,=/:-".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The generation a definition should declare: V2 when the disk boots it (also for hybrid
/// disks), else V1 when it boots that.
pub fn recommended_generation(ctx: &Context) -> Option<Generation> {
    let g = &ctx.derived.generation;
    if g.contains(&Generation::V2) {
        Some(Generation::V2)
    } else {
        g.first().copied()
    }
}

fn security_type(ctx: &Context, generation: Option<Generation>) -> Feature {
    let tl = &ctx.derived.trusted_launch;
    let ready = tl.supported && generation == Some(Generation::V2);
    let derived = if ready {
        SecurityType::TrustedLaunchSupported
    } else {
        SecurityType::Standard
    };
    let mut evidence = tl.reasons.clone();
    if tl.supported && generation != Some(Generation::V2) {
        evidence.insert(
            0,
            "Trusted Launch needs Generation 2; the definition is Generation 1".into(),
        );
    }
    if !ready {
        evidence.push("Standard is set explicitly: API versions from 2025-03-03 default new definitions to TrustedLaunchSupported".into());
    }
    let declared = ctx.policy.security_type.map(|s| s.to_string());
    Feature {
        name: "SecurityType",
        value: declared.clone().unwrap_or_else(|| derived.to_string()),
        derived: derived.to_string(),
        declared,
        evidence,
    }
}

fn bool_value(b: bool) -> String {
    if b { "True" } else { "False" }.to_string()
}

fn accelerated_networking_feature(ctx: &Context) -> Feature {
    let (derived, evidence) = match accelerated_networking(ctx) {
        Some(p) => {
            let mut ev = p.missing.clone();
            ev.extend(p.evidence);
            (p.holds, ev)
        }
        None => (false, vec!["the guest was not examined".into()]),
    };
    let declared = ctx.policy.accelerated_networking.then(|| bool_value(true));
    Feature {
        name: "IsAcceleratedNetworkSupported",
        value: declared.clone().unwrap_or_else(|| bool_value(derived)),
        derived: bool_value(derived),
        declared,
        evidence,
    }
}

/// `SCSI` or `SCSI, NVMe`, as the ARM API spells DiskControllerTypes.
fn controllers(nvme: bool) -> String {
    if nvme { "SCSI, NVMe" } else { "SCSI" }.to_string()
}

fn disk_controllers(ctx: &Context, generation: Option<Generation>) -> Feature {
    let (derived, evidence) = match nvme(ctx, generation) {
        Some(p) => {
            let mut ev = p.missing.clone();
            ev.extend(p.evidence);
            (p.holds, ev)
        }
        None => (false, vec!["the guest was not examined".into()]),
    };
    let declared = ctx.policy.nvme.then(|| controllers(true));
    Feature {
        name: "DiskControllerTypes",
        value: declared.clone().unwrap_or_else(|| controllers(derived)),
        derived: controllers(derived),
        declared,
        evidence,
    }
}

/// An ARM deployment template (only the parts vhdprep writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArmTemplate {
    /// Template schema.
    #[serde(rename = "$schema")]
    pub schema: &'static str,
    /// `1.0.0.0`.
    #[serde(rename = "contentVersion")]
    pub content_version: &'static str,
    /// Parameters, by name.
    pub parameters: BTreeMap<String, ArmParameter>,
    /// The image definition resource.
    pub resources: Vec<ArmResource>,
}

/// A template parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArmParameter {
    /// `string`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Default, if any (parameters without one must be passed).
    #[serde(rename = "defaultValue", skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

/// The `Microsoft.Compute/galleries/images` resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArmResource {
    /// Resource type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// [`ARM_API_VERSION`].
    #[serde(rename = "apiVersion")]
    pub api_version: &'static str,
    /// `gallery/definition` expression.
    pub name: &'static str,
    /// Location expression.
    pub location: &'static str,
    /// The definition.
    pub properties: ArmProperties,
}

/// `properties` of the image definition resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArmProperties {
    /// `Linux`.
    pub os_type: String,
    /// `Generalized` / `Specialized`.
    pub os_state: String,
    /// `V1` / `V2`.
    #[serde(rename = "hyperVGeneration")]
    pub hyper_v_generation: String,
    /// `x64` / `Arm64`.
    pub architecture: String,
    /// Features.
    pub features: Vec<ArmFeature>,
    /// Publisher/offer/SKU (template parameters).
    pub identifier: ArmIdentifier,
}

/// One feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArmFeature {
    /// Name.
    pub name: &'static str,
    /// Value.
    pub value: String,
}

/// The identifier triple.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArmIdentifier {
    /// Publisher.
    pub publisher: &'static str,
    /// Offer.
    pub offer: &'static str,
    /// SKU.
    pub sku: &'static str,
}

/// Everything `vhdprep gallery` says about one image.
#[derive(Debug, Clone, Serialize)]
pub struct GalleryReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The producing tool.
    pub tool: Tool,
    /// The image, as given.
    pub image: String,
    /// The definition.
    pub definition: ImageDefinition,
    /// GAL findings, most severe first.
    pub findings: Vec<Finding>,
    /// GAL rules not evaluated, and why.
    pub skipped: BTreeMap<&'static str, String>,
    /// A declared value contradicts the disk (exit status 1).
    pub contradicts_disk: bool,
    /// The az CLI commands.
    pub az: Vec<String>,
    /// The ARM template.
    pub arm: ArmTemplate,
}

impl GalleryReport {
    /// Derives the definition and runs the GAL rules (GAL-009/010 on the given name and
    /// version) under the context's policy.
    pub fn build(ctx: &Context, name: Option<&str>, version: Option<&str>) -> GalleryReport {
        let definition = ImageDefinition::derive(ctx, name, version);
        let mut out = Collector::default();
        rules::gallery::evaluate(ctx, &mut out);
        rules::gallery::evaluate_names(name, version, &mut out);
        let mut findings = out.findings;
        findings.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.id));
        let contradicts_disk = findings
            .iter()
            .any(|f| rules::gallery::contradicts_declaration(f, ctx.policy));
        GalleryReport {
            schema_version: SCHEMA_VERSION,
            tool: TOOL,
            image: ctx.file.clone(),
            az: definition.az_commands(),
            arm: definition.arm_template(),
            definition,
            findings,
            skipped: out.skipped,
            contradicts_disk,
        }
    }

    /// Exit status: 1 when a declared value contradicts the disk, else 0.
    pub fn exit_status(&self) -> i32 {
        i32::from(self.contradicts_disk)
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The ARM template as pretty JSON.
    pub fn arm_json(&self) -> String {
        serde_json::to_string_pretty(&self.arm)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The report for a person: every field with its evidence, the findings, the az
    /// commands and the ARM template.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let d = &self.definition;
        let _ = writeln!(s, "vhdprep gallery {}", self.image);
        let _ = writeln!(
            s,
            "Image definition {}",
            d.name.as_deref().unwrap_or("(no --name given)")
        );
        text_field(&mut s, "osType", &d.os_type);
        text_field(&mut s, "osState", &d.os_state);
        text_field(&mut s, "hyperVGeneration", &d.hyper_v_generation);
        text_field(&mut s, "architecture", &d.architecture);
        for f in &d.features {
            let _ = writeln!(
                s,
                "  {:<31} {}{}",
                f.name,
                f.value,
                origin(f.declared.is_some(), &f.derived, &f.value)
            );
            for e in &f.evidence {
                let _ = writeln!(s, "      {e}");
            }
        }
        for o in &d.omitted {
            let _ = writeln!(s, "  {:<31} (not set) {}", o.name, o.reason);
        }
        if self.findings.is_empty() {
            let _ = writeln!(s, "\nNo declared value contradicts the disk.");
        } else {
            let _ = writeln!(s, "\nFindings:");
            for f in &self.findings {
                let _ = writeln!(
                    s,
                    "  {:<7} {} {}",
                    f.severity.as_str().to_ascii_uppercase(),
                    f.id,
                    f.message
                );
                if let Some(e) = &f.evidence {
                    let _ = writeln!(s, "          evidence: {e}");
                }
                if let Some(r) = &f.remediation {
                    let _ = writeln!(s, "          fix: {r}");
                }
            }
        }
        let _ = writeln!(s, "\naz CLI (replace the upper-case placeholders):");
        for c in &self.az {
            let _ = writeln!(s, "{c}\n");
        }
        let _ = writeln!(s, "ARM template:\n{}", self.arm_json());
        s
    }
}

fn origin(declared: bool, derived: &str, value: &str) -> String {
    match (declared, derived == value) {
        (false, _) => String::new(),
        (true, true) => "  (declared; the disk agrees)".into(),
        (true, false) => format!("  (declared; the disk shows {derived})"),
    }
}

fn text_field(s: &mut String, name: &str, f: &Field) {
    let value = f.value.as_deref().unwrap_or("(unknown)");
    let mut line = format!("  {name:<31} {value}");
    if f.possible.len() > 1 {
        let _ = write!(line, " (possible: {})", f.possible.join(", "));
    }
    if let Some(d) = &f.declared {
        line.push_str(&origin(true, f.derived.as_deref().unwrap_or("nothing"), d));
    }
    let _ = writeln!(s, "{line}");
    for e in &f.evidence {
        let _ = writeln!(s, "      {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_names_follow_gal_009() {
        for ok in [
            "a",
            "Z9",
            "debian-12_gen2.x64",
            &"a".repeat(80),
            "1.0",
            "a-b",
        ] {
            assert_eq!(check_definition_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            (&"a".repeat(81) as &str, "81 characters"),
            ("-a", "start and end"),
            ("a.", "start and end"),
            ("_", "start and end"),
            ("a b", "' '"),
            ("a/b", "'/'"),
            ("débian", "'é'"),
            ("a\u{0}b", "'\\0'"),
        ] {
            let e = check_definition_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(e.contains("image definition name"), "{e}");
            assert!(!e.contains('\n'));
        }
        // 80 multi-byte characters would be refused for the character, not the length.
        assert!(check_definition_name(&"é".repeat(80))
            .unwrap_err()
            .contains("'é'"));
    }

    #[test]
    fn version_names_follow_gal_010() {
        for ok in [
            "0.0.0",
            "1.0.0",
            "2147483647.2147483647.2147483647",
            "01.002.3",
        ] {
            assert_eq!(check_version_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "not 1 part"),
            ("1", "not 1 part"),
            ("1.0", "not 2 part"),
            ("1.0.0.0", "not 4 part"),
            ("1..0", "minor version \"\" must be digits"),
            ("1.0.", "patch version \"\" must be digits"),
            ("v1.0.0", "major version \"v1\""),
            ("1.0.0-beta", "patch version \"0-beta\""),
            ("+1.0.0", "major version \"+1\""),
            ("-1.0.0", "major version \"-1\""),
            (" 1.0.0", "major version \" 1\""),
            ("2147483648.0.0", "exceeds a 32-bit integer"),
            (
                "1.99999999999999999999.0",
                "minor version 99999999999999999999 exceeds",
            ),
            ("1.0.٣", "digits only"),
        ] {
            let e = check_version_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn device_names_are_recognised() {
        for d in [
            "/dev/sda1",
            "/dev/nvme0n1p2",
            "/dev/vdb",
            "/dev/xvda1",
            "/dev/hda",
        ] {
            assert!(device_name(d), "{d}");
        }
        for d in [
            "UUID=x",
            "/dev/mapper/rootvg-rootlv",
            "/dev/disk/by-uuid/x",
            "LABEL=root",
        ] {
            assert!(!device_name(d), "{d}");
        }
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("debian-12_gen2.x64"), "debian-12_gen2.x64");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("$(rm -rf ~)"), "'$(rm -rf ~)'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn controllers_are_spelled_as_the_api_does() {
        assert_eq!(controllers(true), "SCSI, NVMe");
        assert_eq!(controllers(false), "SCSI");
        assert_eq!(bool_value(true), "True");
    }
}
