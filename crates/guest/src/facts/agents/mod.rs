//! Provisioning agents: WALinuxAgent ([`waagent`]) and cloud-init ([`cloud_init`]) —
//! presence, version, enablement and configuration — and which of them provisions the VM
//! (rules AGENT-004/005 and SYS-005 of the catalogue). [`systemd`] holds the
//! service-enablement helper other facts modules can reuse.
//!
//! Everything is read offline from the [`GuestTree`]; facts carry [`Evidence`] (guest path,
//! line). Reads are bounded; malformed files give partial facts, never a panic.

pub mod cloud_init;
pub mod ready;
pub mod systemd;
pub mod waagent;

use crate::packages::Packages;
use crate::GuestTree;
use serde::Serialize;
use vhdprep_fs::DirEntry;

pub use cloud_init::{cloud_init_facts, CloudConfig, CloudInitFacts};
pub use ready::ready_reporters;
pub use systemd::{unit_state, Enablement, ServiceState, UnitState};
pub use waagent::{waagent_facts, WaagentConf, WaagentFacts, WaagentSettings};

/// Most directory entries looked at in one directory.
const MAX_DIR_ENTRIES: usize = 10_000;

/// Where a fact comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// Guest path.
    pub path: String,
    /// 1-based line, when the fact is one line of a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// What was seen (at most 200 characters).
    pub detail: String,
}

impl Evidence {
    /// A line of a file.
    pub fn line(path: &str, line: usize, text: &str) -> Evidence {
        Evidence {
            path: path.to_string(),
            line: Some(line),
            detail: text.chars().take(200).collect(),
        }
    }
    /// A file or directory that exists.
    pub fn path(path: &str) -> Evidence {
        Evidence {
            path: path.to_string(),
            line: None,
            detail: "exists".into(),
        }
    }
}

/// One effective configuration value.
#[derive(Debug, Clone, Serialize)]
pub struct Setting<T> {
    /// The key, e.g. `Provisioning.Agent`.
    pub key: String,
    /// The effective value.
    pub value: T,
    /// The text in the file, when the key is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// True when the value is the agent's code default.
    pub from_default: bool,
    /// True when the file sets the key to something the agent does not accept (so the
    /// default applies).
    pub ignored: bool,
    /// The line that set it, when the file does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

impl<T> Setting<T> {
    fn from_file(key: &str, value: T, raw: &str, ev: &Evidence) -> Self {
        Setting {
            key: key.into(),
            value,
            raw: Some(raw.into()),
            from_default: false,
            ignored: false,
            evidence: Some(ev.clone()),
        }
    }
    fn ignored(key: &str, default: T, raw: &str, ev: &Evidence) -> Self {
        Setting {
            key: key.into(),
            value: default,
            raw: Some(raw.into()),
            from_default: true,
            ignored: true,
            evidence: Some(ev.clone()),
        }
    }
    fn default_value(key: &str, value: T) -> Self {
        Setting {
            key: key.into(),
            value,
            raw: None,
            from_default: true,
            ignored: false,
            evidence: None,
        }
    }
}

/// Where a version was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionSource {
    /// The package's own `version.py`.
    PythonSource,
    /// An `*.egg-info` / `*.dist-info` directory name.
    PythonMetadata,
    /// `/var/lib/dpkg/status`.
    Dpkg,
    /// The rpm database (`rpmdb.sqlite`, `Packages`, `Packages.db`).
    Rpm,
    /// `/var/lib/waagent/WALinuxAgent-<ver>/` (auto-update).
    AutoUpdateDir,
}

/// A version and where it was read.
#[derive(Debug, Clone, Serialize)]
pub struct VersionFact {
    /// The version text (package versions keep epoch and revision/release, e.g. `2.7.3.0-1`,
    /// `2.7.0.6-9.el9`).
    pub version: String,
    /// Kind of source.
    pub source: VersionSource,
    /// The file or directory.
    pub evidence: Evidence,
}

/// Reads a whole file as (lossy) UTF-8; `None` when absent, not a file, or above `limit`.
pub(crate) fn read_text(guest: &GuestTree, path: &str, limit: u64) -> Option<String> {
    let m = guest.metadata(path.as_bytes()).ok()?;
    if m.kind != vhdprep_fs::FileKind::File || m.size > limit {
        return None;
    }
    let bytes = guest.read_file(path.as_bytes(), limit).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// A directory's entries (empty when absent), at most [`MAX_DIR_ENTRIES`].
pub(crate) fn bounded_dir(guest: &GuestTree, path: &str) -> Vec<DirEntry> {
    let mut v = guest.read_dir(path.as_bytes()).unwrap_or_default();
    v.truncate(MAX_DIR_ENTRIES);
    v
}

/// Python package directories of one distribution.
pub(crate) struct PythonPackages {
    pub dirs: Vec<String>,
    pub metadata_versions: Vec<VersionFact>,
}

/// Finds `<lib>/python*/{site,dist}-packages/<module>` and `<dist>-<ver>.{egg,dist}-info`.
pub(crate) fn python_packages(guest: &GuestTree, module: &str, dist: &str) -> PythonPackages {
    let mut out = PythonPackages {
        dirs: Vec::new(),
        metadata_versions: Vec::new(),
    };
    let prefix = format!("{dist}-");
    for lib in [
        "/usr/lib",
        "/usr/lib64",
        "/usr/local/lib",
        "/usr/share/oem/python/lib",
    ] {
        for py in bounded_dir(guest, lib) {
            let py = py.name_lossy();
            if !py.starts_with("python") {
                continue;
            }
            for sub in ["site-packages", "dist-packages"] {
                let base = format!("{lib}/{py}/{sub}");
                let m = format!("{base}/{module}");
                if guest
                    .metadata(m.as_bytes())
                    .is_ok_and(|m| m.kind == vhdprep_fs::FileKind::Dir)
                    && !out.dirs.contains(&m)
                {
                    out.dirs.push(m);
                }
                for e in bounded_dir(guest, &base) {
                    let n = e.name_lossy();
                    let Some(rest) = n.strip_prefix(&prefix) else {
                        continue;
                    };
                    let ver = rest
                        .strip_suffix(".egg-info")
                        .or_else(|| rest.strip_suffix(".dist-info"));
                    if let Some(ver) = ver {
                        // `X-1.0-py3.11.egg-info`: the version runs to the next `-`.
                        let ver = ver.split('-').next().unwrap_or(ver);
                        out.metadata_versions.push(VersionFact {
                            version: ver.to_string(),
                            source: VersionSource::PythonMetadata,
                            evidence: Evidence::path(&format!("{base}/{n}")),
                        });
                    }
                }
            }
        }
    }
    out
}

/// The version of the first of `names` installed in the guest's package database (dpkg or
/// rpm), if any.
pub(crate) fn package_version(packages: &Packages, names: &[&str]) -> Option<VersionFact> {
    let p = packages.first_of(names)?;
    let (source, evidence) = match p.line {
        Some(line) => (
            VersionSource::Dpkg,
            Evidence::line(&p.path, line, &format!("Package: {}", p.name)),
        ),
        None => (
            VersionSource::Rpm,
            Evidence {
                path: p.path.clone(),
                line: None,
                detail: format!("{} {}", p.name, p.version),
            },
        ),
    };
    Some(VersionFact {
        version: p.version.clone(),
        source,
        evidence,
    })
}

/// Who provisions the VM at first boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provisioner {
    /// cloud-init creates the user, keys, hostname (waagent, if present, waits for it).
    CloudInit,
    /// waagent provisions itself.
    Waagent,
    /// waagent runs with provisioning disabled: it reports Ready and touches nothing.
    Disabled,
    /// No agent would provision (none installed or started).
    None,
}

/// A conflict between the agents' configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    /// AGENT-005 (a): `Provisioning.Agent=waagent` while cloud-init-local is enabled:
    /// waagent stops ("cloud-init appears to be installed and enabled").
    WaagentWithCloudInitEnabled,
    /// AGENT-005 (b): waagent leaves provisioning to cloud-init, but cloud-init is absent or
    /// disabled: waagent waits 1800 s for ovf-env.xml and fails.
    CloudInitRequestedButNotRunning,
    /// AGENT-005 (c): waagent provisions (no enabled cloud-init-local) while cloud-init
    /// still runs (generator, other units): both may provision.
    BothMayProvision,
    /// AGENT-005 (d): provisioning disabled and cloud-init does not run: nobody creates
    /// the user (an error for a Generalized image).
    NobodyProvisions,
    /// SYS-005: cloud-init provisions but waagent formats the resource disk or makes swap.
    WaagentOwnsResourceDiskUnderCloudInit,
    /// SYS-005: waagent provisions but cloud-init's configuration sets up `ephemeral0`.
    CloudInitOwnsResourceDiskUnderWaagent,
}

/// One conflict with its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    /// Which.
    pub kind: ConflictKind,
    /// Catalogue rule (`AGENT-005`, `SYS-005`).
    pub rule: &'static str,
    /// Explanation.
    pub message: String,
    /// What it was decided on.
    pub evidence: Vec<Evidence>,
}

/// The derived provisioning path (AGENT-004).
#[derive(Debug, Clone, Serialize)]
pub struct Provisioning {
    /// Who provisions.
    pub provisioner: Provisioner,
    /// The mode waagent resolves to (`auto`, `waagent`, `cloud-init`, `disabled` or another
    /// value, which waagent treats as disabled; for agents older than 2.2.45 what the legacy
    /// keys mean); `None` when waagent does not run.
    pub waagent_mode: Option<String>,
    /// True when the legacy keys decided the mode (agent < 2.2.45).
    pub legacy_keys_used: bool,
    /// Why, in words.
    pub reason: String,
    /// Conflicts found.
    pub conflicts: Vec<Conflict>,
}

/// Facts about both agents and the provisioning path they give.
#[derive(Debug, Clone, Serialize)]
pub struct AgentFacts {
    /// WALinuxAgent.
    pub waagent: WaagentFacts,
    /// cloud-init.
    pub cloud_init: CloudInitFacts,
    /// Who provisions, and conflicts.
    pub provisioning: Provisioning,
}

impl AgentFacts {
    /// Who replaces the SSH host keys on a new VM, if anyone (GEN-007): cloud-init when it
    /// runs at boot (`cc_ssh` deletes and regenerates them once per instance, `ssh_deletekeys`
    /// defaults to true), or waagent when it provisions with
    /// `Provisioning.RegenerateSshHostKeyPair=y`.
    pub fn host_key_regeneration(&self) -> Option<String> {
        if self.cloud_init.runs_at_boot {
            return Some(
                "cloud-init runs at boot and regenerates them per instance (cc_ssh)".into(),
            );
        }
        let regen = &self.waagent.settings.regenerate_ssh_host_key_pair;
        if self.provisioning.provisioner == Provisioner::Waagent && regen.value {
            let at = regen
                .evidence
                .as_ref()
                .map(|e| format!(" ({}:{})", e.path, e.line.unwrap_or(0)))
                .unwrap_or_default();
            return Some(format!(
                "waagent provisions with Provisioning.RegenerateSshHostKeyPair=y{at}"
            ));
        }
        None
    }
}

/// Compares dotted numeric versions (`2.2.45` vs `1:2.7.3.0-1`): `Some(true)` when `v < min`,
/// `None` when `v` is not a dotted number (after dropping a dpkg epoch and revision).
pub fn version_below(v: &str, min: &[u64]) -> Option<bool> {
    let core = v.split(['-', '+', '~']).next()?;
    let core = core.rsplit(':').next()?;
    let parts: Vec<u64> = core
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    for i in 0..min.len().max(parts.len()) {
        let a = parts.get(i).copied().unwrap_or(0);
        let b = min.get(i).copied().unwrap_or(0);
        if a != b {
            return Some(a < b);
        }
    }
    Some(false)
}

/// AGENT-004/005 and SYS-005 from the two agents' facts, following waagent's
/// `pa/provision/factory.py` (cloud-init handler for `cloud-init`, or `auto` with
/// cloud-init-local enabled), `default.py` (refuses when cloud-init is enabled; any mode
/// other than auto/waagent means provisioning disabled).
fn derive(w: &WaagentFacts, c: &CloudInitFacts) -> Provisioning {
    let s = &w.settings;
    let mut conflicts = Vec::new();
    let mut ci_ev: Vec<Evidence> = Vec::new();
    ci_ev.extend(c.units[0].enabled_links.first().map(|l| Evidence::path(l)));
    ci_ev.extend(c.generator.as_deref().map(Evidence::path));
    ci_ev.extend(c.disabled_marker.as_deref().map(Evidence::path));
    if c.disabled_on_cmdline {
        ci_ev.push(Evidence {
            path: "kernel command line".into(),
            line: None,
            detail: "cloud-init=disabled".into(),
        });
    }
    let agent_ev: Vec<Evidence> = s.provisioning_agent.evidence.iter().cloned().collect();
    let waagent_runs = w.installed && w.enabled && w.config.is_some();
    if !waagent_runs {
        let why = if !w.installed {
            "waagent is not installed"
        } else if !w.enabled {
            "waagent's service is not enabled"
        } else {
            "waagent has no waagent.conf (its unit would not start)"
        };
        let (provisioner, reason) = if c.runs_at_boot {
            (
                Provisioner::CloudInit,
                format!("{why}; cloud-init runs at boot"),
            )
        } else {
            (
                Provisioner::None,
                format!("{why}; cloud-init does not run at boot"),
            )
        };
        return Provisioning {
            provisioner,
            waagent_mode: None,
            legacy_keys_used: false,
            reason,
            conflicts,
        };
    }
    let legacy = w
        .version
        .as_ref()
        .and_then(|v| version_below(&v.version, &[2, 2, 45]))
        .unwrap_or(false);
    let mode = if legacy {
        let yes =
            |o: &Option<Setting<String>>| o.as_ref().map(|x| x.value.eq_ignore_ascii_case("y"));
        if yes(&s.legacy_use_cloud_init) == Some(true) {
            "cloud-init".to_string()
        } else if yes(&s.legacy_provisioning_enabled) == Some(false) {
            "disabled".to_string()
        } else {
            "waagent".to_string()
        }
    } else {
        s.provisioning_agent.value.clone()
    };
    let (provisioner, reason) = match mode.as_str() {
        "cloud-init" => (
            Provisioner::CloudInit,
            "waagent mode cloud-init".to_string(),
        ),
        "auto" if c.enabled_per_waagent => (
            Provisioner::CloudInit,
            "Provisioning.Agent=auto and cloud-init-local.service is enabled".to_string(),
        ),
        "auto" => (
            Provisioner::Waagent,
            "Provisioning.Agent=auto and cloud-init-local.service is not enabled".to_string(),
        ),
        "waagent" => (Provisioner::Waagent, "waagent mode waagent".to_string()),
        other => (
            Provisioner::Disabled,
            format!("waagent mode {other:?}: waagent does not provision"),
        ),
    };
    let both = [agent_ev.clone(), ci_ev.clone()].concat();
    match provisioner {
        Provisioner::Waagent if c.enabled_per_waagent => conflicts.push(Conflict {
            kind: ConflictKind::WaagentWithCloudInitEnabled,
            rule: "AGENT-005",
            message: "waagent provisions but cloud-init-local.service is enabled: waagent \
                      refuses (\"cloud-init appears to be installed and enabled\")"
                .into(),
            evidence: both,
        }),
        Provisioner::Waagent if c.runs_at_boot => conflicts.push(Conflict {
            kind: ConflictKind::BothMayProvision,
            rule: "AGENT-005",
            message: "waagent provisions but cloud-init still runs at boot (generator or other \
                      units): both may provision; set Provisioning.Agent explicitly"
                .into(),
            evidence: both,
        }),
        Provisioner::CloudInit if !c.runs_at_boot => conflicts.push(Conflict {
            kind: ConflictKind::CloudInitRequestedButNotRunning,
            rule: "AGENT-005",
            message: "waagent leaves provisioning to cloud-init, but cloud-init is absent or \
                      disabled: waagent waits 1800 s for ovf-env.xml and fails"
                .into(),
            evidence: both,
        }),
        Provisioner::Disabled if !c.runs_at_boot => conflicts.push(Conflict {
            kind: ConflictKind::NobodyProvisions,
            rule: "AGENT-005",
            message: "waagent provisioning is disabled and cloud-init does not run: nobody \
                      creates the user (an error for a Generalized image)"
                .into(),
            evidence: both,
        }),
        _ => {}
    }
    let cloud_init_provisions =
        c.runs_at_boot && matches!(provisioner, Provisioner::CloudInit | Provisioner::Disabled);
    if cloud_init_provisions && (s.resource_disk_format.value || s.resource_disk_enable_swap.value)
    {
        conflicts.push(Conflict {
            kind: ConflictKind::WaagentOwnsResourceDiskUnderCloudInit,
            rule: "SYS-005",
            message: "cloud-init provisions but waagent.conf has ResourceDisk.Format=y or \
                      ResourceDisk.EnableSwap=y"
                .into(),
            evidence: [&s.resource_disk_format, &s.resource_disk_enable_swap]
                .iter()
                .filter(|x| x.value)
                .filter_map(|x| x.evidence.clone())
                .collect(),
        });
    }
    if provisioner == Provisioner::Waagent && c.runs_at_boot && !c.config.ephemeral0.is_empty() {
        conflicts.push(Conflict {
            kind: ConflictKind::CloudInitOwnsResourceDiskUnderWaagent,
            rule: "SYS-005",
            message: "waagent provisions but cloud-init's configuration sets up ephemeral0".into(),
            evidence: c
                .config
                .ephemeral0
                .iter()
                .map(|e| e.evidence.clone())
                .collect(),
        });
    }
    Provisioning {
        provisioner,
        waagent_mode: Some(mode),
        legacy_keys_used: legacy,
        reason,
        conflicts,
    }
}

/// Gathers WALinuxAgent and cloud-init facts and derives who provisions.
///
/// `kernel_cmdline` is the guest's kernel command line split into arguments (the caller
/// reads it from the boot configuration); `cloud-init=disabled` and `ci.ds=` matter here.
/// `packages` is the guest's package database (versions when the agents' own files give
/// none).
pub fn agent_facts(
    guest: &GuestTree,
    kernel_cmdline: &[String],
    packages: &Packages,
) -> AgentFacts {
    let waagent = waagent_facts(guest, packages);
    let cloud_init = cloud_init_facts(guest, kernel_cmdline, packages);
    let provisioning = derive(&waagent, &cloud_init);
    AgentFacts {
        waagent,
        cloud_init,
        provisioning,
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_upstream;
