//! The rules, one module per area of the catalogue. Each module has `RULES` (its catalogue
//! entries) and `evaluate(ctx, out)`, which records every rule it evaluated in the
//! [`Collector`] (a rule with no finding has passed) and pushes a [`Finding`] per problem.
//! Rules read only the [`Context`]; their severities may depend on the [`crate::Policy`].

pub mod agent;
pub mod boot;
pub mod cert;
pub mod gallery;
pub mod generalization;
pub mod kernel;
pub mod network;
pub mod system;
pub mod vhd;

use crate::catalogue::RuleInfo;
use crate::context::Context;
use std::collections::{BTreeMap, BTreeSet};
use vhdprep_finding::Finding;

/// Every area's catalogue entries, in report order.
pub static CATALOGUE: &[&[RuleInfo]] = &[
    vhd::RULES,
    boot::RULES,
    kernel::RULES,
    system::RULES,
    network::RULES,
    agent::RULES,
    generalization::RULES,
    gallery::RULES,
    cert::RULES,
];

/// What the rules found, and which rules ran.
#[derive(Debug, Default)]
pub struct Collector {
    /// Findings in the order they were made.
    pub findings: Vec<Finding>,
    /// Rules that were evaluated (passed unless a finding carries their ID).
    pub evaluated: BTreeSet<&'static str>,
    /// Rules that could not be evaluated, and why.
    pub skipped: BTreeMap<&'static str, String>,
}

impl Collector {
    /// Records that `id` was evaluated.
    pub fn evaluated(&mut self, id: &'static str) {
        self.skipped.remove(id);
        self.evaluated.insert(id);
    }

    /// Records a finding (and that its rule was evaluated).
    pub fn push(&mut self, f: Finding) {
        self.evaluated(f.id);
        self.findings.push(f);
    }

    /// Records that `id` could not be evaluated, unless it already was.
    pub fn skip(&mut self, id: &'static str, why: impl Into<String>) {
        if !self.evaluated.contains(id) {
            self.skipped.insert(id, why.into());
        }
    }

    /// Marks every rule of `rules` not yet evaluated as skipped for `why`.
    pub fn skip_all(&mut self, rules: &[RuleInfo], why: &str) {
        for r in rules {
            self.skip(r.id, why);
        }
    }
}

/// Runs every area in catalogue order (CERT only with `--marketplace`).
pub fn run_all(ctx: &Context) -> Collector {
    let mut out = Collector::default();
    vhd::evaluate(ctx, &mut out);
    boot::evaluate(ctx, &mut out);
    kernel::evaluate(ctx, &mut out);
    system::evaluate(ctx, &mut out);
    network::evaluate(ctx, &mut out);
    agent::evaluate(ctx, &mut out);
    generalization::evaluate(ctx, &mut out);
    gallery::evaluate(ctx, &mut out);
    if ctx.policy.marketplace {
        cert::evaluate(ctx, &mut out);
    }
    let why = match &ctx.unexamined {
        Some(w) => format!("the guest was not examined: {w}"),
        None => "not applicable to this image".to_string(),
    };
    for r in crate::catalogue::all() {
        if r.marketplace_only && !ctx.policy.marketplace {
            continue;
        }
        if !out.evaluated.contains(r.id) && !out.skipped.contains_key(r.id) {
            out.skipped.insert(r.id, why.clone());
        }
    }
    out
}
