//! WALinuxAgent (`waagent`): where it is installed, its version, its service, and
//! `waagent.conf` read the way the agent reads it (`azurelinuxagent/common/conf.py`
//! `ConfigurationProvider.load`), with the agent's code defaults for absent keys.

use super::systemd::ServiceState;
use super::{
    bounded_dir, package_version, python_packages, read_text, Evidence, Setting, VersionFact,
    VersionSource,
};
use crate::packages::Packages;
use crate::GuestTree;
use serde::Serialize;
use std::collections::BTreeMap;

/// Where distributions put the agent (osutil `get_agent_bin_path`).
pub const BINARIES: [&str; 4] = [
    "/usr/sbin/waagent",
    "/usr/bin/waagent",
    "/usr/share/oem/bin/waagent",
    "/usr/local/sbin/waagent",
];
/// Where distributions put its configuration (osutil `agent_conf_file_path`); the first that
/// exists is the one parsed.
pub const CONFIG_PATHS: [&str; 4] = [
    "/etc/waagent.conf",
    "/usr/local/etc/waagent.conf",
    "/usr/share/oem/waagent.conf",
    "/usr/share/defaults/waagent/waagent.conf",
];
/// Its package names: Ubuntu `walinuxagent`, Debian `waagent`, Red Hat and Azure Linux
/// `WALinuxAgent`, SUSE `python3-azure-agent` (SLES 12: `python-azure-agent`).
pub const PACKAGE_NAMES: [&str; 5] = [
    "walinuxagent",
    "waagent",
    "WALinuxAgent",
    "python3-azure-agent",
    "python-azure-agent",
];
/// Largest waagent.conf read.
const CONF_LIMIT: u64 = 1024 * 1024;
/// Largest version.py read.
const VERSION_PY_LIMIT: u64 = 512 * 1024;
/// Most keys kept from one waagent.conf.
const MAX_KEYS: usize = 4096;

/// One `key=value` assignment as the agent keeps it (the last one of a key wins).
#[derive(Debug, Clone, Serialize)]
pub struct ConfEntry {
    /// The value after the agent's trimming; `None` for the literal `None` (the agent
    /// treats it as unset, so the default applies).
    pub value: Option<String>,
    /// The file and line of the assignment that wins.
    pub evidence: Evidence,
    /// Earlier assignments of the same key that it overrides (line numbers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overridden_lines: Vec<usize>,
}

/// A parsed waagent.conf.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WaagentConf {
    /// The guest path parsed.
    pub path: String,
    /// Every key, as the agent's `ConfigurationProvider.values` would hold it.
    pub entries: BTreeMap<String, ConfEntry>,
}

impl WaagentConf {
    /// Parses waagent.conf text exactly as `ConfigurationProvider.load` does: lines split on
    /// `\n`; a line starting with `#` (no leading blanks allowed) or without `=` is ignored;
    /// key = text before the first `=`, trimmed; value = text after it, cut at the first `#`,
    /// stripped of `"` and blanks; the literal `None` means unset; later lines win.
    pub fn parse(path: &str, text: &str) -> WaagentConf {
        let mut conf = WaagentConf {
            path: path.to_string(),
            entries: BTreeMap::new(),
        };
        for (i, line) in text.split('\n').enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let key = k.trim().to_string();
            let v = v.split('#').next().unwrap_or("");
            let v = v
                .trim_matches(|c: char| c == '"' || c == ' ')
                .trim()
                .to_string();
            let value = (v != "None").then_some(v);
            let ev = Evidence::line(path, i + 1, line.trim_end());
            if let Some(old) = conf.entries.get_mut(&key) {
                old.overridden_lines.push(old.evidence.line.unwrap_or(0));
                old.value = value;
                old.evidence = ev;
            } else if conf.entries.len() < MAX_KEYS {
                conf.entries.insert(
                    key,
                    ConfEntry {
                        value,
                        evidence: ev,
                        overridden_lines: Vec::new(),
                    },
                );
            }
        }
        conf
    }

    fn raw(&self, key: &str) -> Option<(&str, &Evidence)> {
        let e = self.entries.get(key)?;
        Some((e.value.as_deref()?, &e.evidence))
    }

    /// `conf.get(key, default)`: the value, or the default when absent/`None`.
    pub fn get(&self, key: &str, default: &str) -> Setting<String> {
        match self.raw(key) {
            Some((v, ev)) => Setting::from_file(key, v.to_string(), v, ev),
            None => Setting::default_value(key, default.to_string()),
        }
    }

    /// `conf.get_switch(key, default)`: `y`/`n` (any case); anything else means the default
    /// (and is reported as ignored).
    pub fn get_switch(&self, key: &str, default: bool) -> Setting<bool> {
        match self.raw(key) {
            Some((v, ev)) if v.eq_ignore_ascii_case("y") => Setting::from_file(key, true, v, ev),
            Some((v, ev)) if v.eq_ignore_ascii_case("n") => Setting::from_file(key, false, v, ev),
            Some((v, ev)) => Setting::ignored(key, default, v, ev),
            None => Setting::default_value(key, default),
        }
    }

    /// `conf.get_int(key, default)`: Python `int()` of the value, else the default (values
    /// beyond i64 also fall back to the default).
    pub fn get_int(&self, key: &str, default: i64) -> Setting<i64> {
        match self.raw(key) {
            Some((v, ev)) => match python_int(v) {
                Some(n) => Setting::from_file(key, n, v, ev),
                None => Setting::ignored(key, default, v, ev),
            },
            None => Setting::default_value(key, default),
        }
    }
}

/// Python `int(str)` for the forms a config holds: optional sign, decimal digits,
/// underscores between digits, surrounding blanks.
fn python_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

/// The settings the rules look at, with the agent's code defaults (conf.py, 2.2.x–2.9.x).
#[derive(Debug, Clone, Serialize)]
pub struct WaagentSettings {
    /// `Provisioning.Agent` (default `auto`).
    pub provisioning_agent: Setting<String>,
    /// `Provisioning.RegenerateSshHostKeyPair` (default n).
    pub regenerate_ssh_host_key_pair: Setting<bool>,
    /// `Provisioning.SshHostKeyPairType` (default rsa), as written: `auto` means every key
    /// type (the agent's `get_ssh_host_keypair_mode`; its thumbprint type is then rsa).
    pub ssh_host_key_pair_type: Setting<String>,
    /// `Provisioning.DeleteRootPassword` (default n).
    pub delete_root_password: Setting<bool>,
    /// `ResourceDisk.Format` (default n).
    pub resource_disk_format: Setting<bool>,
    /// `ResourceDisk.EnableSwap` (default n).
    pub resource_disk_enable_swap: Setting<bool>,
    /// `ResourceDisk.SwapSizeMB` (default 0).
    pub resource_disk_swap_size_mb: Setting<i64>,
    /// `ResourceDisk.Filesystem` (default ext3).
    pub resource_disk_filesystem: Setting<String>,
    /// `ResourceDisk.MountPoint` (default /mnt/resource).
    pub resource_disk_mount_point: Setting<String>,
    /// `AutoUpdate.Enabled` (default y).
    pub auto_update_enabled: Setting<bool>,
    /// `AutoUpdate.UpdateToLatestVersion` (newer agents; defaults to `AutoUpdate.Enabled`).
    pub auto_update_to_latest_version: Setting<bool>,
    /// `Extensions.Enabled` (default y).
    pub extensions_enabled: Setting<bool>,
    /// `OS.SshClientAliveInterval` (default 180; the agent uses the raw text).
    pub ssh_client_alive_interval: Setting<String>,
    /// Legacy `Provisioning.Enabled` (ignored since 2.2.45), when present.
    pub legacy_provisioning_enabled: Option<Setting<String>>,
    /// Legacy `Provisioning.UseCloudInit` (ignored since 2.2.45), when present.
    pub legacy_use_cloud_init: Option<Setting<String>>,
}

impl WaagentSettings {
    /// The effective settings of `conf`.
    pub fn of(conf: &WaagentConf) -> WaagentSettings {
        let auto_update = conf.get_switch("AutoUpdate.Enabled", true);
        let latest = conf.get_switch("AutoUpdate.UpdateToLatestVersion", auto_update.value);
        let legacy = |k: &str| conf.raw(k).map(|_| conf.get(k, ""));
        WaagentSettings {
            provisioning_agent: conf.get("Provisioning.Agent", "auto"),
            regenerate_ssh_host_key_pair: conf
                .get_switch("Provisioning.RegenerateSshHostKeyPair", false),
            ssh_host_key_pair_type: conf.get("Provisioning.SshHostKeyPairType", "rsa"),
            delete_root_password: conf.get_switch("Provisioning.DeleteRootPassword", false),
            resource_disk_format: conf.get_switch("ResourceDisk.Format", false),
            resource_disk_enable_swap: conf.get_switch("ResourceDisk.EnableSwap", false),
            resource_disk_swap_size_mb: conf.get_int("ResourceDisk.SwapSizeMB", 0),
            resource_disk_filesystem: conf.get("ResourceDisk.Filesystem", "ext3"),
            resource_disk_mount_point: conf.get("ResourceDisk.MountPoint", "/mnt/resource"),
            auto_update_enabled: auto_update,
            auto_update_to_latest_version: latest,
            extensions_enabled: conf.get_switch("Extensions.Enabled", true),
            ssh_client_alive_interval: conf.get("OS.SshClientAliveInterval", "180"),
            legacy_provisioning_enabled: legacy("Provisioning.Enabled"),
            legacy_use_cloud_init: legacy("Provisioning.UseCloudInit"),
        }
    }
}

/// Everything found about WALinuxAgent.
#[derive(Debug, Clone, Serialize)]
pub struct WaagentFacts {
    /// Some binary, python package or package-database entry was found.
    pub installed: bool,
    /// Agent binaries found.
    pub binaries: Vec<String>,
    /// `azurelinuxagent` python package directories found.
    pub python_packages: Vec<String>,
    /// The installed version: version.py, else egg/dist-info, else the package database.
    pub version: Option<VersionFact>,
    /// Every version source seen (they should agree).
    pub versions: Vec<VersionFact>,
    /// Auto-updated agents unpacked under `/var/lib/waagent/WALinuxAgent-<ver>/`.
    pub auto_updated: Vec<VersionFact>,
    /// The service (`walinuxagent.service` on Debian/Ubuntu, `waagent.service` elsewhere).
    pub service: ServiceState,
    /// The service starts at boot.
    pub enabled: bool,
    /// Config files present, in [`CONFIG_PATHS`] order.
    pub config_paths: Vec<String>,
    /// The first config file, parsed.
    pub config: Option<WaagentConf>,
    /// Its effective settings (code defaults when the file is absent).
    pub settings: WaagentSettings,
}

/// Parses `AGENT_VERSION = '2.7.3.0'` out of `azurelinuxagent/common/version.py`.
fn agent_version_py(text: &str) -> Option<(usize, String)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let r = l.trim_start().strip_prefix("AGENT_VERSION")?.trim_start();
        let r = r.strip_prefix('=')?.trim();
        let q = r.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let inner = &r[1..];
        Some((i + 1, inner[..inner.find(q)?].to_string()))
    })
}

/// Gathers the WALinuxAgent facts (`packages`: the guest's package database).
pub fn waagent_facts(guest: &GuestTree, packages: &Packages) -> WaagentFacts {
    let binaries: Vec<String> = BINARIES
        .iter()
        .filter(|p| guest.exists(p.as_bytes()))
        .map(|p| p.to_string())
        .collect();
    let pkgs = python_packages(guest, "azurelinuxagent", "WALinuxAgent");
    let mut versions = Vec::new();
    for dir in &pkgs.dirs {
        let vp = format!("{dir}/common/version.py");
        if let Some((line, v)) =
            read_text(guest, &vp, VERSION_PY_LIMIT).and_then(|t| agent_version_py(&t))
        {
            versions.push(VersionFact {
                evidence: Evidence::line(&vp, line, &format!("AGENT_VERSION = '{v}'")),
                version: v,
                source: VersionSource::PythonSource,
            });
        }
    }
    versions.extend(pkgs.metadata_versions);
    versions.extend(package_version(packages, &PACKAGE_NAMES));
    let mut auto_updated = Vec::new();
    for e in bounded_dir(guest, "/var/lib/waagent") {
        let n = e.name_lossy();
        if let Some(v) = n.strip_prefix("WALinuxAgent-") {
            if !v.ends_with(".zip") && !v.is_empty() {
                auto_updated.push(VersionFact {
                    version: v.to_string(),
                    source: VersionSource::AutoUpdateDir,
                    evidence: Evidence::path(&format!("/var/lib/waagent/{n}")),
                });
            }
        }
    }
    let service = ServiceState::lookup(
        guest,
        &["walinuxagent.service", "waagent.service"],
        &["walinuxagent", "waagent"],
        "waagent",
    );
    let config_paths: Vec<String> = CONFIG_PATHS
        .iter()
        .filter(|p| guest.exists(p.as_bytes()))
        .map(|p| p.to_string())
        .collect();
    let config = config_paths.first().map(|p| {
        let text = read_text(guest, p, CONF_LIMIT).unwrap_or_default();
        WaagentConf::parse(p, &text)
    });
    let settings = WaagentSettings::of(config.as_ref().unwrap_or(&WaagentConf::default()));
    let installed = !binaries.is_empty() || !pkgs.dirs.is_empty() || !versions.is_empty();
    WaagentFacts {
        installed,
        binaries,
        python_packages: pkgs.dirs,
        version: versions.first().cloned(),
        versions,
        auto_updated,
        enabled: service.enabled(),
        service,
        config_paths,
        config,
        settings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_agent() {
        let text = "# Provisioning.Agent=waagent\n\
                    Provisioning.Agent=auto\n\
                    \x20 ResourceDisk.Format = y # comment\n\
                    ResourceDisk.EnableSwap=\"y\"\n\
                    Extensions.Enabled=None\n\
                    AutoUpdate.Enabled=maybe\n\
                    ResourceDisk.SwapSizeMB=2_048\n\
                    Provisioning.Agent=cloud-init\r\n\
                    no equals here\n\
                    =novalue\n";
        let c = WaagentConf::parse("/etc/waagent.conf", text);
        let s = WaagentSettings::of(&c);
        assert_eq!(s.provisioning_agent.value, "cloud-init");
        assert_eq!(
            s.provisioning_agent.evidence.as_ref().unwrap().line,
            Some(8)
        );
        assert_eq!(c.entries["Provisioning.Agent"].overridden_lines, vec![2]);
        assert!(s.resource_disk_format.value);
        assert!(s.resource_disk_enable_swap.value);
        assert!(s.extensions_enabled.value && s.extensions_enabled.from_default);
        assert!(s.auto_update_enabled.value && s.auto_update_enabled.ignored);
        assert!(s.auto_update_to_latest_version.value);
        assert_eq!(s.resource_disk_swap_size_mb.value, 2048);
        assert!(s.regenerate_ssh_host_key_pair.from_default);
        assert!(!s.regenerate_ssh_host_key_pair.value);
        assert_eq!(s.ssh_host_key_pair_type.value, "rsa");
        assert_eq!(s.ssh_client_alive_interval.value, "180");
        assert!(c.entries.contains_key(""));
    }

    #[test]
    fn python_int_forms() {
        assert_eq!(python_int(" 12 "), Some(12));
        assert_eq!(python_int("-3"), Some(-3));
        assert_eq!(python_int("1_0"), Some(10));
        assert_eq!(python_int("1__0"), None);
        assert_eq!(python_int("0x10"), None);
        assert_eq!(python_int(""), None);
        assert_eq!(python_int("99999999999999999999999"), None);
    }

    #[test]
    fn version_py() {
        let t = "AGENT_NAME = \"WALinuxAgent\"\nAGENT_VERSION = '2.7.3.0'\n";
        assert_eq!(agent_version_py(t), Some((2, "2.7.3.0".into())));
        assert_eq!(agent_version_py("AGENT_VERSION = get()\n"), None);
        assert_eq!(agent_version_py("AGENT_VERSION = '\n"), None);
    }
}
