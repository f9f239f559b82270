//! The rule catalogue: every rule vhdprep evaluates, with its title, the most severe level it
//! reports, what it checks, and its sources in the shared Azure rule catalogue. Used for SARIF
//! `tool.driver.rules`, JUnit test cases, `--allow` validation and docs/rules.md.

use crate::rules;
use serde::Serialize;
use std::fmt;
use vhdprep_finding::Severity;

/// One rule of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    /// Stable ID, e.g. `VHD-004`.
    pub id: &'static str,
    /// A few words naming the rule.
    pub title: &'static str,
    /// The most severe level the rule reports with the default policy.
    pub severity: Severity,
    /// What is checked and why, one or two sentences.
    pub description: &'static str,
    /// Source keys of the shared catalogue (`[GENERIC]`, `[WALA] conf.py`, ...).
    pub source: &'static str,
    /// Only evaluated with `--marketplace`.
    pub marketplace_only: bool,
    /// Where vhdprep deviates from the shared catalogue, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deviation: Option<&'static str>,
}

/// The catalogue's areas, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    /// VHD-xxx: the container.
    Container,
    /// BOOT-xxx: partitions, boot chain, generation.
    Boot,
    /// KRN-xxx: kernel, initramfs, command line.
    Kernel,
    /// SYS-xxx: system configuration.
    System,
    /// NET-xxx: networking.
    Network,
    /// AGENT-xxx: provisioning agents.
    Agent,
    /// GEN-xxx: generalization.
    Generalization,
    /// GAL-xxx: gallery image definition.
    Gallery,
    /// CERT-xxx: Marketplace certification.
    Marketplace,
}

impl Area {
    /// The area a rule ID belongs to, by its prefix.
    pub fn of(id: &str) -> Area {
        match id.split('-').next().unwrap_or("") {
            "VHD" => Area::Container,
            "BOOT" => Area::Boot,
            "KRN" => Area::Kernel,
            "SYS" => Area::System,
            "NET" => Area::Network,
            "AGENT" => Area::Agent,
            "GEN" => Area::Generalization,
            "GAL" => Area::Gallery,
            _ => Area::Marketplace,
        }
    }

    /// Heading used in the text report.
    pub fn title(self) -> &'static str {
        match self {
            Area::Container => "Container (VHD)",
            Area::Boot => "Boot and partitions",
            Area::Kernel => "Kernel and initramfs",
            Area::System => "System",
            Area::Network => "Network",
            Area::Agent => "Provisioning agents",
            Area::Generalization => "Generalization",
            Area::Gallery => "Gallery image definition",
            Area::Marketplace => "Marketplace certification",
        }
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// Every rule, in catalogue order.
pub fn all() -> impl Iterator<Item = &'static RuleInfo> {
    rules::CATALOGUE.iter().flat_map(|area| area.iter())
}

/// The rule with this ID (exact, upper case).
pub fn find(id: &str) -> Option<&'static RuleInfo> {
    all().find(|r| r.id == id)
}

/// A catalogue entry (for the `RULES` tables of the rule modules).
pub const fn rule(
    id: &'static str,
    severity: Severity,
    title: &'static str,
    description: &'static str,
    source: &'static str,
) -> RuleInfo {
    RuleInfo {
        id,
        title,
        severity,
        description,
        source,
        marketplace_only: false,
        deviation: None,
    }
}

impl RuleInfo {
    /// The same entry, evaluated only with `--marketplace`.
    pub const fn marketplace(mut self) -> RuleInfo {
        self.marketplace_only = true;
        self
    }

    /// The same entry, noting where vhdprep deviates from the shared catalogue.
    pub const fn deviating(mut self, why: &'static str) -> RuleInfo {
        self.deviation = Some(why);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ids_are_unique_well_formed_and_documented() {
        let mut seen = BTreeSet::new();
        for r in all() {
            assert!(seen.insert(r.id), "duplicate {}", r.id);
            let (prefix, num) = r.id.split_once('-').expect("ID has a dash");
            assert!(
                ["VHD", "BOOT", "KRN", "SYS", "NET", "AGENT", "GEN", "GAL", "CERT"]
                    .contains(&prefix),
                "{}",
                r.id
            );
            assert!(
                num.len() == 3 && num.bytes().all(|b| b.is_ascii_digit()),
                "{}",
                r.id
            );
            assert!(!r.title.is_empty() && !r.description.is_empty(), "{}", r.id);
            assert!(r.source.contains('['), "{} needs a source key", r.id);
            assert_eq!(r.marketplace_only, prefix == "CERT", "{}", r.id);
        }
    }
}
