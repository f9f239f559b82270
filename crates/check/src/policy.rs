//! What the user declares about the image and how strict the gate is: the target generation,
//! osState, security type and gallery features, the Marketplace profile, the failing severity and
//! the allowed rules. Read from a TOML `--config` file, then overridden by command-line flags.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use vhdprep_finding::Severity;

/// Hyper-V generation of the VMs an image is registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Generation {
    /// BIOS boot (PCAT), IDE boot controller.
    #[serde(rename = "V1", alias = "v1")]
    V1,
    /// UEFI boot, SCSI or NVMe controller.
    #[serde(rename = "V2", alias = "v2")]
    V2,
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Generation::V1 => "V1",
            Generation::V2 => "V2",
        })
    }
}

/// Whether VMs made from the image are provisioned (Generalized) or boot as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OsState {
    /// Deprovisioned; an agent creates the user, host name and keys at first boot.
    #[serde(rename = "Generalized", alias = "generalized")]
    Generalized,
    /// A copy of one machine; nothing is provisioned.
    #[serde(rename = "Specialized", alias = "specialized")]
    Specialized,
}

impl fmt::Display for OsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OsState::Generalized => "Generalized",
            OsState::Specialized => "Specialized",
        })
    }
}

/// The gallery `SecurityType` the image will be declared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SecurityType {
    /// No Secure Boot, no vTPM.
    #[serde(rename = "Standard", alias = "standard")]
    Standard,
    /// VMs may be created with Trusted Launch (Secure Boot + vTPM).
    #[serde(rename = "TrustedLaunchSupported", alias = "trusted-launch-supported")]
    TrustedLaunchSupported,
}

impl fmt::Display for SecurityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecurityType::Standard => "Standard",
            SecurityType::TrustedLaunchSupported => "TrustedLaunchSupported",
        })
    }
}

/// How the check is run. `Policy::default()` is the plain pre-upload check: nothing declared,
/// fail on errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// The generation the image will be registered as; `None`: judge what the disk can boot.
    pub generation: Option<Generation>,
    /// The osState the image will be registered with; `None`: derived from the disk.
    pub os_state: Option<OsState>,
    /// Add the Marketplace certification rules (CERT-xxx) and their stricter severities.
    pub marketplace: bool,
    /// The security type the definition will declare; `None`: not declared.
    pub security_type: Option<SecurityType>,
    /// The definition will list NVMe among its disk controllers.
    pub nvme: bool,
    /// The definition will declare accelerated networking.
    pub accelerated_networking: bool,
    /// The least severity that fails the check.
    pub fail_on: Severity,
    /// Rule IDs whose findings are reported as allowed and never fail the check.
    pub allow: BTreeSet<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            generation: None,
            os_state: None,
            marketplace: false,
            security_type: None,
            nvme: false,
            accelerated_networking: false,
            fail_on: Severity::Error,
            allow: BTreeSet::new(),
        }
    }
}

/// The `--config` file: every field optional; flags given on the command line win.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    /// `"v1"` or `"v2"`.
    pub generation: Option<Generation>,
    /// `"generalized"` or `"specialized"`.
    pub os_state: Option<OsState>,
    /// Marketplace profile.
    pub marketplace: Option<bool>,
    /// `"standard"` or `"trusted-launch-supported"`.
    pub security_type: Option<SecurityType>,
    /// NVMe disk controller declared.
    pub nvme: Option<bool>,
    /// Accelerated networking declared.
    pub accelerated_networking: Option<bool>,
    /// `"error"` or `"warning"` (`"info"` fails on anything).
    pub fail_on: Option<String>,
    /// Rule IDs to allow.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Data disks, relative to the config file's directory.
    #[serde(default)]
    pub data_disks: Vec<PathBuf>,
}

/// A `--config` file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or values.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's one-line message.
        message: String,
    },
}

impl ConfigFile {
    /// Reads and parses a TOML config file; data-disk paths become relative to its directory.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut cfg: ConfigFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: shown.clone(),
            message: one_line(&e.to_string()),
        })?;
        if let Some(s) = &cfg.fail_on {
            parse_severity(s).map_err(|message| ConfigError::Parse {
                path: shown.clone(),
                message,
            })?;
        }
        for id in &cfg.allow {
            check_rule_id(id).map_err(|message| ConfigError::Parse {
                path: shown.clone(),
                message,
            })?;
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for d in &mut cfg.data_disks {
            if d.is_relative() {
                *d = base.join(&*d);
            }
        }
        Ok(cfg)
    }

    /// The policy this file describes, before command-line overrides.
    pub fn policy(&self) -> Policy {
        Policy {
            generation: self.generation,
            os_state: self.os_state,
            marketplace: self.marketplace.unwrap_or(false),
            security_type: self.security_type,
            nvme: self.nvme.unwrap_or(false),
            accelerated_networking: self.accelerated_networking.unwrap_or(false),
            fail_on: self.fail_on.as_deref().map_or(Severity::Error, |s| {
                parse_severity(s).unwrap_or(Severity::Error)
            }),
            allow: self.allow.iter().map(|s| s.to_ascii_uppercase()).collect(),
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `error`, `warning` or `info` (any case).
pub fn parse_severity(s: &str) -> Result<Severity, String> {
    match s.to_ascii_lowercase().as_str() {
        "error" => Ok(Severity::Error),
        "warning" => Ok(Severity::Warning),
        "info" => Ok(Severity::Info),
        _ => Err(format!("fail-on must be error, warning or info, not {s:?}")),
    }
}

/// Accepts IDs of the catalogue only, so that a typo in `--allow` does not silently allow
/// nothing.
pub fn check_rule_id(id: &str) -> Result<(), String> {
    let upper = id.to_ascii_uppercase();
    if crate::catalogue::find(&upper).is_some() {
        Ok(())
    } else {
        Err(format!(
            "unknown rule ID {id:?} (see `vhdprep rules` or docs/rules.md)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_parses_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vhdprep.toml");
        std::fs::write(
            &p,
            "generation = \"v2\"\nos-state = \"generalized\"\nmarketplace = true\n\
             security-type = \"trusted-launch-supported\"\nnvme = true\n\
             accelerated-networking = true\nfail-on = \"warning\"\nallow = [\"vhd-010\"]\n\
             data-disks = [\"data.vhd\"]\n",
        )
        .unwrap();
        let c = ConfigFile::load(&p).unwrap();
        let pol = c.policy();
        assert_eq!(pol.generation, Some(Generation::V2));
        assert_eq!(pol.os_state, Some(OsState::Generalized));
        assert!(pol.marketplace && pol.nvme && pol.accelerated_networking);
        assert_eq!(
            pol.security_type,
            Some(SecurityType::TrustedLaunchSupported)
        );
        assert_eq!(pol.fail_on, Severity::Warning);
        assert!(pol.allow.contains("VHD-010"));
        assert_eq!(c.data_disks, vec![dir.path().join("data.vhd")]);
    }

    #[test]
    fn config_file_rejects_unknown_keys_values_and_rules() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        for (text, needle) in [
            ("genration = \"v2\"", "unknown field"),
            ("generation = \"v3\"", "unknown variant"),
            ("fail-on = \"fatal\"", "fail-on must be"),
            ("allow = [\"NOPE-1\"]", "unknown rule ID"),
            ("allow = 3", "invalid type"),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = ConfigFile::load(&p).unwrap_err().to_string();
            assert!(e.starts_with(&p.display().to_string()), "{e}");
            assert!(e.contains(needle), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let e = ConfigFile::load(&dir.path().join("missing.toml")).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
