//! The report of one check: the verdicts up front, the findings (most severe first), the
//! findings allowed by policy, and the status of every rule evaluated. Serialises as the
//! documented JSON report (`schema_version` 1, docs/check-report.md).

use crate::catalogue::{self, Area};
use crate::context::Context;
use crate::policy::{Generation, OsState, Policy};
use crate::rules;
use crate::verdict::{OsStateVerdict, ProvisioningVerdict, TrustedLaunchVerdict};
use serde::Serialize;
use std::fmt;
use vhdprep_disk::Format;
use vhdprep_finding::{Finding, Severity};
use vhdprep_guest::inspect::OsReport;

/// Version of the JSON report layout; raised on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Pass or fail, against the policy's `fail_on` severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No finding at or above `fail_on` (allowed rules excepted).
    Pass,
    /// At least one such finding.
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        })
    }
}

/// The container at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSummary {
    /// No error-level VHD finding.
    pub ok: bool,
    /// `raw`, `vhd-fixed`, `vhd-dynamic`, ...
    pub format: Format,
    /// Virtual disk size in bytes.
    pub virtual_size: u64,
    /// File size in bytes.
    pub file_size: u64,
}

/// How one rule came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    /// Evaluated, no finding at warning or error.
    Pass,
    /// Evaluated, at least one finding at warning or error (allowed ones included).
    Fail,
    /// Evaluated, only information findings.
    Info,
    /// Not evaluated (see `reason`).
    Skipped,
}

/// One rule's outcome (for JUnit and the text summary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    /// Rule ID.
    pub id: &'static str,
    /// Outcome.
    pub status: RuleStatus,
    /// The most severe finding of this rule, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Counts of findings by severity (allowed ones excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Errors.
    pub error: usize,
    /// Warnings.
    pub warning: usize,
    /// Information.
    pub info: usize,
}

/// The evidence behind the up-front verdicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Details {
    /// Why each generation is or is not bootable.
    pub generation: Vec<String>,
    /// The generalization signals.
    pub os_state: OsStateVerdict,
    /// The binary the architecture was read from.
    pub architecture: Option<String>,
}

/// Everything `vhdprep check` says about one image.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `vhdprep` and its version.
    pub tool: Tool,
    /// The OS disk, as given.
    pub image: String,
    /// Data disks, as given.
    pub data_disks: Vec<String>,
    /// Pass or fail.
    pub verdict: Verdict,
    /// The severity that fails.
    pub fail_on: Severity,
    /// Container at a glance.
    pub container: ContainerSummary,
    /// Generations the disk can boot (`V1`, `V2`).
    pub generation: Vec<Generation>,
    /// osState the disk shows.
    pub os_state: Option<OsState>,
    /// `x64`, `Arm64`, or the name of an unsupported architecture.
    pub architecture: Option<String>,
    /// Who provisions, and conflicts.
    pub provisioning: ProvisioningVerdict,
    /// Trusted Launch readiness.
    pub trusted_launch: TrustedLaunchVerdict,
    /// The guest's os-release.
    pub os: Option<OsReport>,
    /// Why the guest was not examined, when it was not.
    pub guest_not_examined: Option<String>,
    /// Evidence for the verdicts.
    pub details: Details,
    /// The policy the check ran with.
    pub policy: Policy,
    /// Finding counts (allowed findings excluded).
    pub counts: Counts,
    /// Findings, most severe first, in catalogue order within a severity.
    pub findings: Vec<Finding>,
    /// Findings of rules allowed by `--allow`: reported, never failing.
    pub allowed: Vec<Finding>,
    /// Every rule of the catalogue (CERT only with `--marketplace`), with its outcome.
    pub rules: Vec<RuleResult>,
}

/// The producing tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tool {
    /// `vhdprep`.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
}

/// The tool block of every report.
pub const TOOL: Tool = Tool {
    name: "vhdprep",
    version: env!("CARGO_PKG_VERSION"),
};

/// Sort key: severity descending, then area, then ID.
fn order(f: &Finding) -> (std::cmp::Reverse<Severity>, Area, &'static str) {
    (std::cmp::Reverse(f.severity), Area::of(f.id), f.id)
}

impl Report {
    /// Runs every rule over the gathered context and builds the report.
    pub fn build(ctx: &Context) -> Report {
        let collected = rules::run_all(ctx);
        let policy = ctx.policy;
        let (mut allowed, mut findings): (Vec<Finding>, Vec<Finding>) = collected
            .findings
            .into_iter()
            .partition(|f| policy.allow.contains(f.id));
        findings.sort_by(|a, b| order(a).cmp(&order(b)));
        allowed.sort_by(|a, b| order(a).cmp(&order(b)));
        let mut counts = Counts::default();
        for f in &findings {
            match f.severity {
                Severity::Error => counts.error += 1,
                Severity::Warning => counts.warning += 1,
                Severity::Info => counts.info += 1,
            }
        }
        let verdict = if findings.iter().any(|f| f.severity >= policy.fail_on) {
            Verdict::Fail
        } else {
            Verdict::Pass
        };
        let all: Vec<&Finding> = findings.iter().chain(allowed.iter()).collect();
        let rules = catalogue::all()
            .filter(|r| policy.marketplace || !r.marketplace_only)
            .map(|r| {
                let worst = all
                    .iter()
                    .filter(|f| f.id == r.id)
                    .map(|f| f.severity)
                    .max();
                let (status, reason) = if let Some(why) = collected.skipped.get(r.id) {
                    (RuleStatus::Skipped, Some(why.clone()))
                } else {
                    match worst {
                        None => (RuleStatus::Pass, None),
                        Some(Severity::Info) => (RuleStatus::Info, None),
                        Some(_) => (RuleStatus::Fail, None),
                    }
                };
                RuleResult {
                    id: r.id,
                    status,
                    severity: worst,
                    reason,
                }
            })
            .collect();
        let d = &ctx.derived;
        Report {
            schema_version: SCHEMA_VERSION,
            tool: TOOL,
            image: ctx.file.clone(),
            data_disks: ctx.data_disks.iter().map(|d| d.file.clone()).collect(),
            verdict,
            fail_on: policy.fail_on,
            container: ContainerSummary {
                ok: d.container_ok,
                format: ctx.image.format(),
                virtual_size: ctx.image.virtual_size(),
                file_size: ctx.image.file_size(),
            },
            generation: d.generation.clone(),
            os_state: d.os_state.value,
            architecture: d.architecture.clone(),
            provisioning: d.provisioning.clone(),
            trusted_launch: d.trusted_launch.clone(),
            os: ctx.os.clone(),
            guest_not_examined: ctx.unexamined.clone(),
            details: Details {
                generation: d.generation_evidence.clone(),
                os_state: d.os_state.clone(),
                architecture: d.architecture_evidence.clone(),
            },
            policy: policy.clone(),
            counts,
            findings,
            allowed,
            rules,
        }
    }

    /// The process exit status for this report: 0 pass, 1 fail.
    pub fn exit_status(&self) -> i32 {
        match self.verdict {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
        }
    }
}
