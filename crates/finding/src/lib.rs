//! Findings: what a vhdprep layer observed about an image, tied to a stable rule ID.
//!
//! Every layer (container, partition table, filesystem, guest, check) reports what it saw as
//! [`Finding`]s so that the CLI and the report renderers treat them the same way. Rule IDs are the
//! ones of the shared Azure rule catalogue (`VHD-004`, `BOOT-003`, ...).
#![forbid(unsafe_code)]

use serde::Serialize;
use std::fmt;

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A fact derived from the image; nothing to fix.
    Info,
    /// A documented recommendation is not met, or something often breaks deployments.
    Warning,
    /// Azure rejects the image, or VMs made from it fail to boot or provision.
    Error,
}

impl Severity {
    /// Lower-case name, as used in JSON and text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One observation about an image: which rule, how bad, what was seen and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable rule ID from the catalogue, e.g. `VHD-004`.
    pub id: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// One sentence saying what is wrong (or what was derived).
    pub message: String,
    /// Where it was seen: a disk offset or guest path and the value found there (`null` in
    /// JSON when there is nothing to show).
    pub evidence: Option<String>,
    /// How to fix it, as a command where one exists (`null` in JSON when there is none).
    pub remediation: Option<String>,
    /// Where it was seen, in a form reports can point at (SARIF regions, editors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// A place in an image that a finding points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// Bytes of the image file (container) or of the virtual disk.
    Disk {
        /// Byte offset from the start of the file.
        offset: u64,
        /// How many bytes, when a range is meant.
        #[serde(skip_serializing_if = "Option::is_none")]
        length: Option<u64>,
    },
    /// A path inside the guest (as the guest sees it, `/etc/waagent.conf`).
    Guest {
        /// Absolute guest path.
        path: String,
        /// 1-based line, when a line is meant.
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<usize>,
    },
}

impl Finding {
    /// A finding with just an ID, a severity and a message.
    pub fn new(id: &'static str, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            id,
            severity,
            message: message.into(),
            evidence: None,
            remediation: None,
            location: None,
        }
    }

    /// Adds where the problem was seen.
    pub fn with_evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence = Some(evidence.into());
        self
    }

    /// Points the finding at a byte range of the image.
    pub fn at_disk(mut self, offset: u64, length: Option<u64>) -> Self {
        self.location = Some(Location::Disk { offset, length });
        self
    }

    /// Points the finding at a guest path (and line).
    pub fn at_guest(mut self, path: impl Into<String>, line: Option<usize>) -> Self {
        self.location = Some(Location::Guest {
            path: path.into(),
            line,
        });
        self
    }

    /// Adds how to fix it.
    pub fn with_remediation(mut self, remediation: impl Into<String>) -> Self {
        self.remediation = Some(remediation.into());
        self
    }
}

/// The most severe finding in a list, if any.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_info_warning_error() {
        assert!(Severity::Info < Severity::Warning);
        assert!(Severity::Warning < Severity::Error);
    }

    #[test]
    fn worst_picks_the_most_severe() {
        let list = vec![
            Finding::new("VHD-006", Severity::Warning, "a"),
            Finding::new("VHD-004", Severity::Error, "b"),
            Finding::new("VHD-016", Severity::Info, "c"),
        ];
        assert_eq!(worst(&list), Some(Severity::Error));
        assert_eq!(worst(&[]), None);
    }

    #[test]
    fn serializes_lowercase_severity_and_null_for_missing_evidence_and_fix() {
        let f = Finding::new("VHD-004", Severity::Error, "not aligned");
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(
            json,
            r#"{"id":"VHD-004","severity":"error","message":"not aligned","evidence":null,"remediation":null}"#
        );
        let f = f.with_evidence("footer offset 48: 1000 bytes");
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.contains(r#""evidence":"footer offset 48: 1000 bytes""#));
    }
}
