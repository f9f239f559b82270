//! cloud-init: installation, version, units and generator, the disable switches, and the
//! effective configuration from `/etc/cloud/cloud.cfg` + `/etc/cloud/cloud.cfg.d/*.cfg`.
//!
//! Merging follows `util.read_conf_with_confd` with the default mergers: the `.cfg.d` files
//! (lexically later first) take precedence over `cloud.cfg`, mappings merge key by key and
//! the first (highest-priority) file that defines a leaf wins; lists are not merged. Custom
//! `merge_how` keys are not honoured.

use super::systemd::{unit_state, ServiceState, UnitState};
use super::{
    bounded_dir, package_version, python_packages, read_text, Evidence, VersionFact, VersionSource,
};
use crate::packages::Packages;
use crate::GuestTree;
use serde::Serialize;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::{Yaml, YamlLoader};

/// Largest YAML file parsed.
const YAML_LIMIT: u64 = 256 * 1024;
/// Most `.cfg` files read from cloud.cfg.d.
const MAX_CFG_FILES: usize = 256;
/// Deepest YAML nesting accepted (dropping a deep tree recurses).
const MAX_DEPTH: usize = 64;
/// Most nodes a document may expand to through aliases.
const MAX_NODES: usize = 200_000;

/// Unit names, old (≤ 24.2) and new (≥ 24.3); the first is the one waagent asks about.
pub const UNITS: [&str; 7] = [
    "cloud-init-local.service",
    "cloud-init.service",
    "cloud-init-network.service",
    "cloud-init-main.service",
    "cloud-config.service",
    "cloud-final.service",
    "cloud-init.target",
];
/// Leftovers of Ubuntu installers (curtin/subiquity) that change cloud-init's behaviour.
pub const INSTALLER_LEFTOVERS: [&str; 4] = [
    "50-curtin-networking.cfg",
    "curtin-preserve-sources.cfg",
    "99-installer.cfg",
    "subiquity-disable-cloudinit-networking.cfg",
];

/// One configuration file read.
#[derive(Debug, Clone, Serialize)]
pub struct CloudCfgFile {
    /// Guest path.
    pub path: String,
    /// Top-level keys it sets.
    pub keys: Vec<String>,
    /// Why it could not be used (cloud-init would skip or fail on it too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A value found in the effective configuration, with the file that set it.
#[derive(Debug, Clone, Serialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it was set.
    pub evidence: Evidence,
}

/// ds-identify's reading of `datasource_list` (the last matching line across the files).
#[derive(Debug, Clone, Serialize)]
pub struct DsIdentifyList {
    /// The text after `datasource_list:`.
    pub raw: String,
    /// The list, when written as a single-line flow sequence (`[ Azure ]`); `None` when
    /// ds-identify cannot read it (it then warns and uses its default search).
    pub list: Option<Vec<String>>,
    /// File and line.
    pub evidence: Evidence,
}

/// The effective configuration, as far as the rules need it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CloudConfig {
    /// Files read: cloud.cfg, then cloud.cfg.d/*.cfg in lexical order.
    pub files: Vec<CloudCfgFile>,
    /// Effective `datasource_list` (`None`: not set, the built-in list, which includes Azure).
    pub datasource_list: Option<Sourced<Vec<String>>>,
    /// ds-identify's view.
    pub ds_identify_datasource_list: Option<DsIdentifyList>,
    /// `datasource.Azure.apply_network_config`.
    pub azure_apply_network_config: Option<Sourced<bool>>,
    /// `datasource.Azure` keys set in any file.
    pub azure_keys: Vec<String>,
    /// `network: {config: disabled}`.
    pub network_config_disabled: Option<Evidence>,
    /// Effective `disk_setup.ephemeral0`, and `fs_setup`/`mounts` naming `ephemeral0*`, and
    /// `swap` (value: the key).
    pub ephemeral0: Vec<Sourced<String>>,
    /// A `reporting` handler of `type: hyperv` (KVP telemetry).
    pub telemetry_hyperv: Option<Evidence>,
    /// `/etc/cloud/ds-identify.cfg`, when present.
    pub ds_identify_cfg: Option<String>,
    /// Installer leftovers present in cloud.cfg.d.
    pub installer_leftovers: Vec<String>,
}

impl CloudConfig {
    /// True unless the effective list is set and lacks `Azure`.
    pub fn allows_azure(&self) -> bool {
        self.datasource_list
            .as_ref()
            .is_none_or(|l| l.value.iter().any(|d| d == "Azure"))
    }
}

/// Everything found about cloud-init.
#[derive(Debug, Clone, Serialize)]
pub struct CloudInitFacts {
    /// Binary, python package or package-database entry found.
    pub installed: bool,
    /// `/usr/bin/cloud-init`, when present.
    pub binary: Option<String>,
    /// `cloudinit` python package directories.
    pub python_packages: Vec<String>,
    /// Version: `cloudinit/version.py` `__VERSION__`, else egg/dist-info, else the package
    /// database.
    pub version: Option<VersionFact>,
    /// Every version source seen.
    pub versions: Vec<VersionFact>,
    /// The units of [`UNITS`], found or not, in that order.
    pub units: Vec<UnitState>,
    /// The SysV scripts (Devuan, old Debian): `cloud-init-local` or `cloud-init`.
    pub sysv: ServiceState,
    /// The systemd generator, when present.
    pub generator: Option<String>,
    /// `/etc/cloud/cloud-init.disabled`, when present.
    pub disabled_marker: Option<String>,
    /// `cloud-init=disabled` on the kernel command line.
    pub disabled_on_cmdline: bool,
    /// `ci.ds=`/`ci.datasource=` on the kernel command line.
    pub cmdline_datasource: Option<String>,
    /// waagent's `cloudinitdetect`: `systemctl is-enabled cloud-init-local.service` would
    /// print `enabled` (a real `[Install]` symlink; generator and static do not count), or
    /// on a non-systemd guest a SysV script that starts.
    pub enabled_per_waagent: bool,
    /// cloud-init would run at boot: installed, not disabled, and the generator or an
    /// enabled unit or SysV link starts it.
    pub runs_at_boot: bool,
    /// Effective configuration.
    pub config: CloudConfig,
}

/// Checks depth and alias expansion before handing text to the tree loader (which clones
/// aliased nodes and drops trees recursively).
fn yaml_guard(text: &str) -> Result<(), String> {
    let mut p = Parser::new_from_str(text);
    let mut sizes: std::collections::HashMap<usize, usize> = Default::default();
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut nodes = 0usize;
    loop {
        let (ev, _) = p.next_token().map_err(|e| e.to_string())?;
        match ev {
            Event::StreamEnd => return Ok(()),
            Event::Scalar(_, _, aid, _) => {
                nodes += 1;
                if aid > 0 {
                    sizes.insert(aid, 1);
                }
            }
            Event::Alias(id) => nodes = nodes.saturating_add(*sizes.get(&id).unwrap_or(&1)),
            Event::SequenceStart(aid, _) | Event::MappingStart(aid, _) => {
                stack.push((aid, nodes));
                if stack.len() > MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} levels"));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((aid, start)) = stack.pop() {
                    nodes += 1;
                    if aid > 0 {
                        sizes.insert(aid, nodes - start);
                    }
                }
            }
            _ => {}
        }
        if nodes > MAX_NODES {
            return Err(format!("expands to more than {MAX_NODES} nodes (aliases)"));
        }
    }
}

/// Parses one config file into a top-level mapping, never panicking.
fn load_yaml(text: &str) -> Result<Yaml, String> {
    // PyYAML refuses NUL; yaml-rust2 would stop reading there.
    if text.contains('\0') {
        return Err("NUL byte: not YAML".into());
    }
    yaml_guard(text)?;
    let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    match docs.into_iter().next() {
        None | Some(Yaml::Null) => Ok(Yaml::Hash(Default::default())),
        Some(h @ Yaml::Hash(_)) => Ok(h),
        Some(_) => Err("top level is not a mapping".into()),
    }
}

fn get<'a>(y: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    match y {
        Yaml::Hash(h) => h.get(&Yaml::String(key.to_string())),
        _ => None,
    }
}

fn lookup<'a>(y: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    path.iter().try_fold(y, |cur, k| get(cur, k))
}

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The first line that sets top-level `key` (for evidence).
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines().position(|l| {
        l.strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with(':'))
    })
}

struct Loaded {
    path: String,
    text: String,
    yaml: Yaml,
}

impl Loaded {
    fn evidence(&self, top: &str, detail: &str) -> Evidence {
        match key_line(&self.text, top) {
            Some(i) => Evidence::line(&self.path, i + 1, detail),
            None => Evidence {
                path: self.path.clone(),
                line: None,
                detail: detail.to_string(),
            },
        }
    }
}

/// The highest-priority file defining `path`, with the value.
fn effective<'a>(by_priority: &[&'a Loaded], path: &[&str]) -> Option<(&'a Loaded, &'a Yaml)> {
    by_priority
        .iter()
        .find_map(|l| lookup(&l.yaml, path).map(|v| (*l, v)))
}

/// ds-identify `check_config datasource_list` + `read_datasource_list`: lines are read with
/// `read` (blanks trimmed), cut at `#`, and must be `datasource_list:` or start with
/// `datasource_list: `; the last match across the files wins.
fn ds_identify_view(files: &[(String, String)]) -> Option<DsIdentifyList> {
    let mut last = None;
    for (path, text) in files {
        for (i, line) in text.lines().enumerate() {
            let l = line.split('#').next().unwrap_or("").trim();
            let Some(rest) = l.strip_prefix("datasource_list:") else {
                continue;
            };
            if !(rest.is_empty() || rest.starts_with(' ')) {
                continue;
            }
            let raw = rest.strip_prefix(' ').unwrap_or(rest).to_string();
            last = Some((path.clone(), i + 1, raw, line.to_string()));
        }
    }
    let (path, line, raw, text) = last?;
    let list = (raw.len() >= 2 && raw.starts_with('[') && raw.ends_with(']')).then(|| {
        raw[1..raw.len() - 1]
            .replace(['"', '\''], "")
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    });
    Some(DsIdentifyList {
        raw,
        list,
        evidence: Evidence::line(&path, line, text.trim_end()),
    })
}

fn touches_ephemeral0(y: &Yaml) -> bool {
    match y {
        Yaml::String(s) => s.starts_with("ephemeral0"),
        Yaml::Array(a) => a.iter().any(touches_ephemeral0),
        Yaml::Hash(h) => h
            .iter()
            .any(|(k, v)| touches_ephemeral0(k) || touches_ephemeral0(v)),
        _ => false,
    }
}

/// Reads cloud.cfg and cloud.cfg.d and works out the effective settings.
pub fn cloud_config(guest: &GuestTree) -> CloudConfig {
    let mut cfg = CloudConfig::default();
    let mut raw_files: Vec<(String, String)> = Vec::new();
    if let Some(t) = read_text(guest, "/etc/cloud/cloud.cfg", YAML_LIMIT) {
        raw_files.push(("/etc/cloud/cloud.cfg".into(), t));
    }
    let mut names: Vec<String> = bounded_dir(guest, "/etc/cloud/cloud.cfg.d")
        .into_iter()
        .map(|e| e.name_lossy())
        .collect();
    names.sort();
    for n in &names {
        if INSTALLER_LEFTOVERS.contains(&n.as_str()) {
            cfg.installer_leftovers
                .push(format!("/etc/cloud/cloud.cfg.d/{n}"));
        }
    }
    for n in names
        .iter()
        .filter(|n| n.ends_with(".cfg") && !n.starts_with('.'))
        .take(MAX_CFG_FILES)
    {
        let p = format!("/etc/cloud/cloud.cfg.d/{n}");
        match read_text(guest, &p, YAML_LIMIT) {
            Some(t) => raw_files.push((p, t)),
            None => {
                if guest
                    .metadata(p.as_bytes())
                    .is_ok_and(|m| m.kind == vhdprep_fs::FileKind::File)
                {
                    cfg.files.push(CloudCfgFile {
                        path: p,
                        keys: Vec::new(),
                        error: Some(format!("unreadable or larger than {YAML_LIMIT} bytes")),
                    })
                }
            }
        }
    }
    cfg.ds_identify_datasource_list = ds_identify_view(&raw_files);
    let mut loaded = Vec::new();
    for (path, text) in raw_files {
        match load_yaml(&text) {
            Ok(yaml) => {
                let keys = match &yaml {
                    Yaml::Hash(h) => h.keys().filter_map(scalar).collect(),
                    _ => Vec::new(),
                };
                cfg.files.push(CloudCfgFile {
                    path: path.clone(),
                    keys,
                    error: None,
                });
                loaded.push(Loaded { path, text, yaml });
            }
            Err(e) => cfg.files.push(CloudCfgFile {
                path,
                keys: Vec::new(),
                error: Some(e),
            }),
        }
    }
    // Priority: cloud.cfg.d lexically last first, cloud.cfg last.
    let is_main = |l: &&Loaded| l.path == "/etc/cloud/cloud.cfg";
    let mut prio: Vec<&Loaded> = loaded.iter().filter(|l| !is_main(l)).rev().collect();
    prio.extend(loaded.iter().filter(is_main));

    if let Some((l, v)) = effective(&prio, &["datasource_list"]) {
        let list: Vec<String> = match v {
            Yaml::Array(a) => a.iter().filter_map(scalar).collect(),
            other => scalar(other).into_iter().collect(),
        };
        cfg.datasource_list = Some(Sourced {
            evidence: l.evidence("datasource_list", &format!("datasource_list: {list:?}")),
            value: list,
        });
    }
    if let Some((l, v)) = effective(&prio, &["datasource", "Azure", "apply_network_config"]) {
        let b = match v {
            Yaml::Boolean(b) => Some(*b),
            other => scalar(other).map(|s| {
                !matches!(
                    s.to_ascii_lowercase().as_str(),
                    "false" | "no" | "off" | "0" | ""
                )
            }),
        };
        if let Some(b) = b {
            cfg.azure_apply_network_config = Some(Sourced {
                value: b,
                evidence: l.evidence(
                    "datasource",
                    &format!("datasource.Azure.apply_network_config: {b}"),
                ),
            });
        }
    }
    for l in &prio {
        if let Some(Yaml::Hash(h)) = lookup(&l.yaml, &["datasource", "Azure"]) {
            for k in h.keys().filter_map(scalar) {
                if !cfg.azure_keys.contains(&k) {
                    cfg.azure_keys.push(k);
                }
            }
        }
    }
    if let Some((l, v)) = effective(&prio, &["network", "config"]) {
        if scalar(v).as_deref() == Some("disabled") {
            cfg.network_config_disabled =
                Some(l.evidence("network", "network: {config: disabled}"));
        }
    }
    for (top, path) in [
        ("disk_setup", &["disk_setup", "ephemeral0"][..]),
        ("fs_setup", &["fs_setup"][..]),
        ("mounts", &["mounts"][..]),
        ("swap", &["swap"][..]),
    ] {
        if let Some((l, v)) = effective(&prio, path) {
            let detail = match top {
                "disk_setup" => "disk_setup: ephemeral0 partitioned",
                "swap" => "swap: configured",
                _ if touches_ephemeral0(v) => "names ephemeral0",
                _ => continue,
            };
            cfg.ephemeral0.push(Sourced {
                value: top.to_string(),
                evidence: l.evidence(top, &format!("{top}: {detail}")),
            });
        }
    }
    if let Some((l, Yaml::Hash(h))) = effective(&prio, &["reporting"]) {
        if h.values()
            .any(|v| get(v, "type").and_then(scalar).as_deref() == Some("hyperv"))
        {
            cfg.telemetry_hyperv = Some(l.evidence("reporting", "reporting handler type: hyperv"));
        }
    }
    if guest.exists(b"/etc/cloud/ds-identify.cfg") {
        cfg.ds_identify_cfg = Some("/etc/cloud/ds-identify.cfg".into());
    }
    cfg
}

/// Parses `__VERSION__ = "22.4.2"` from `cloudinit/version.py`.
fn ci_version_py(text: &str) -> Option<(usize, String)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let r = l.trim_start().strip_prefix("__VERSION__")?.trim_start();
        let r = r.strip_prefix('=')?.trim();
        let q = r.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let inner = &r[1..];
        Some((i + 1, inner[..inner.find(q)?].to_string()))
    })
}

/// Gathers the cloud-init facts; `kernel_cmdline` holds the guest's kernel arguments,
/// `packages` the guest's package database.
pub fn cloud_init_facts(
    guest: &GuestTree,
    kernel_cmdline: &[String],
    packages: &Packages,
) -> CloudInitFacts {
    let binary = guest
        .exists(b"/usr/bin/cloud-init")
        .then(|| "/usr/bin/cloud-init".to_string());
    let pkgs = python_packages(guest, "cloudinit", "cloud_init");
    let mut versions = Vec::new();
    for d in &pkgs.dirs {
        let p = format!("{d}/version.py");
        if let Some((line, v)) = read_text(guest, &p, 64 * 1024).and_then(|t| ci_version_py(&t)) {
            versions.push(VersionFact {
                evidence: Evidence::line(&p, line, &format!("__VERSION__ = \"{v}\"")),
                version: v,
                source: VersionSource::PythonSource,
            });
        }
    }
    versions.extend(pkgs.metadata_versions);
    versions.extend(package_version(packages, &["cloud-init"]));
    let units: Vec<UnitState> = UNITS.iter().map(|u| unit_state(guest, u)).collect();
    let sysv = ServiceState::lookup(guest, &[], &["cloud-init-local", "cloud-init"], "cloudinit");
    let generator = [
        "/lib/systemd/system-generators/cloud-init-generator",
        "/usr/lib/systemd/system-generators/cloud-init-generator",
    ]
    .iter()
    .find(|p| guest.exists(p.as_bytes()))
    .map(|p| p.to_string());
    let disabled_marker = guest
        .exists(b"/etc/cloud/cloud-init.disabled")
        .then(|| "/etc/cloud/cloud-init.disabled".to_string());
    let disabled_on_cmdline = kernel_cmdline.iter().any(|a| a == "cloud-init=disabled");
    let cmdline_datasource = kernel_cmdline.iter().find_map(|a| {
        a.strip_prefix("ci.ds=")
            .or_else(|| a.strip_prefix("ci.datasource="))
            .map(str::to_string)
    });
    let systemd_guest = units.iter().any(UnitState::found);
    let enabled_per_waagent = units[0].is_enabled() || (!systemd_guest && sysv.sysv.enabled());
    let installed = binary.is_some() || !pkgs.dirs.is_empty() || !versions.is_empty();
    let started = if systemd_guest {
        generator.is_some() || units.iter().any(UnitState::starts_at_boot)
    } else {
        sysv.sysv.enabled()
    };
    let runs_at_boot = installed && disabled_marker.is_none() && !disabled_on_cmdline && started;
    CloudInitFacts {
        installed,
        binary,
        python_packages: pkgs.dirs,
        version: versions.first().cloned(),
        versions,
        units,
        sysv,
        generator,
        disabled_marker,
        disabled_on_cmdline,
        cmdline_datasource,
        enabled_per_waagent,
        runs_at_boot,
        config: cloud_config(guest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_identify_takes_the_last_line_and_only_flow_lists() {
        let files = vec![
            (
                "/etc/cloud/cloud.cfg".to_string(),
                "datasource_list: [ NoCloud, Azure ]\n".to_string(),
            ),
            (
                "/etc/cloud/cloud.cfg.d/90.cfg".to_string(),
                "  datasource_list: ['Azure', \"None\"] # c\n".to_string(),
            ),
        ];
        let v = ds_identify_view(&files).unwrap();
        assert_eq!(v.list, Some(vec!["Azure".to_string(), "None".to_string()]));
        assert_eq!(v.evidence.path, "/etc/cloud/cloud.cfg.d/90.cfg");
        let files = vec![(
            "/a.cfg".to_string(),
            "datasource_list:\n  - Azure\n".to_string(),
        )];
        let v = ds_identify_view(&files).unwrap();
        assert_eq!(v.list, None);
        assert_eq!(v.raw, "");
        let files = vec![(
            "/a.cfg".to_string(),
            "datasource_list:[Azure]\n".to_string(),
        )];
        assert!(ds_identify_view(&files).is_none());
    }

    #[test]
    fn hostile_yaml_is_refused_not_fatal() {
        assert!(load_yaml(&"[".repeat(10_000)).is_err());
        assert!(load_yaml("a:\n ").is_ok());
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            };
            let refs = vec![format!("*{prev}"); 10].join(", ");
            bomb.push_str(&format!("b{i}: &b{i} [{refs}]\n"));
        }
        assert!(load_yaml(&bomb).unwrap_err().contains("aliases"));
        assert!(load_yaml(": : :\n\t- [").is_err());
        assert!(load_yaml("- a\n- b\n").is_err());
        assert!(load_yaml("").is_ok());
        assert!(load_yaml("a: 1\n\0b: 2\n").is_err());
        assert!(load_yaml("a: [1,\n").is_err());
        let _ = load_yaml("*nope");
        let _ = load_yaml("a: !!binary ~~~\nb: !!float x\n? [a]\n: b\n");
    }

    #[test]
    fn version_py() {
        assert_eq!(
            ci_version_py("x\n__VERSION__ = \"22.4.2\"\n"),
            Some((2, "22.4.2".into()))
        );
        assert_eq!(ci_version_py("__VERSION__ = '\n"), None);
    }
}
