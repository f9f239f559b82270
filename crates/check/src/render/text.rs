//! The text report: the verdicts up front, then the findings grouped by area (areas with the
//! most severe findings first, most severe first within an area), each with its ID, message,
//! evidence and fix. ANSI colour only when `color` is set (the CLI sets it on a terminal
//! without NO_COLOR).

use crate::catalogue::Area;
use crate::report::{Report, RuleStatus, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use vhdprep_finding::{Finding, Severity};

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn severity(&self, s: Severity) -> String {
        let label = format!("{:<7}", s.as_str().to_ascii_uppercase());
        match s {
            Severity::Error => self.wrap("1;31", &label),
            Severity::Warning => self.wrap("33", &label),
            Severity::Info => self.wrap("36", &label),
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
}

fn gib(bytes: u64) -> String {
    let g = bytes as f64 / (1u64 << 30) as f64;
    if g >= 1.0 {
        format!("{g:.2} GiB")
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// Renders the report for a person.
pub fn render(r: &Report, color: bool) -> String {
    let p = Paint { on: color };
    let mut s = String::new();
    let verdict = match r.verdict {
        Verdict::Pass => p.wrap("1;32", "PASS"),
        Verdict::Fail => p.wrap("1;31", "FAIL"),
    };
    let _ = writeln!(
        s,
        "{} {}: {} ({} errors, {} warnings, {} info; fails on {})",
        p.bold("vhdprep check"),
        r.image,
        verdict,
        r.counts.error,
        r.counts.warning,
        r.counts.info,
        r.fail_on
    );
    let c = &r.container;
    let _ = writeln!(
        s,
        "  Container       {}: {}, virtual size {} ({} bytes), file {} bytes",
        if c.ok { "OK" } else { "NOT OK" },
        c.format.name(),
        gib(c.virtual_size),
        c.virtual_size,
        c.file_size
    );
    let gens = if r.generation.is_empty() {
        "none (neither BIOS nor UEFI boot chain found)".to_string()
    } else {
        let g: Vec<String> = r.generation.iter().map(|g| g.to_string()).collect();
        g.join(", ")
    };
    let _ = writeln!(s, "  Generation      {gens}");
    for why in &r.details.generation {
        let _ = writeln!(s, "                    {why}");
    }
    match r.os_state {
        Some(state) => {
            let _ = writeln!(s, "  OS state        {state}");
            for e in &r.details.os_state.specialized_evidence {
                let _ = writeln!(s, "                    specialized: {e}");
            }
            for e in &r.details.os_state.generalized_evidence {
                let _ = writeln!(s, "                    generalized: {e}");
            }
        }
        None => {
            let _ = writeln!(s, "  OS state        unknown");
        }
    }
    let _ = writeln!(
        s,
        "  Provisioning    {} ({})",
        r.provisioning.agent, r.provisioning.reason
    );
    for c in &r.provisioning.conflicts {
        let _ = writeln!(s, "                    conflict: {c}");
    }
    let _ = writeln!(
        s,
        "  Architecture    {}{}",
        r.architecture.as_deref().unwrap_or("unknown"),
        r.details
            .architecture
            .as_ref()
            .map(|e| format!(" (from {e})"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "  Trusted Launch  {}",
        if r.trusted_launch.supported {
            "supported".to_string()
        } else {
            format!("not supported: {}", r.trusted_launch.reasons.join("; "))
        }
    );
    if let Some(os) = &r.os {
        let name = os
            .pretty_name
            .clone()
            .or_else(|| os.name.clone())
            .or_else(|| os.id.clone())
            .unwrap_or_default();
        let _ = writeln!(s, "  OS              {name}");
    }
    if let Some(why) = &r.guest_not_examined {
        let _ = writeln!(s, "  Guest           not examined: {why}");
    }

    let mut areas: BTreeMap<Area, Vec<&Finding>> = BTreeMap::new();
    for f in &r.findings {
        areas.entry(Area::of(f.id)).or_default().push(f);
    }
    let mut order: Vec<(Area, Vec<&Finding>)> = areas.into_iter().collect();
    order.sort_by_key(|(area, fs)| {
        let worst = fs.iter().map(|f| f.severity).max();
        (std::cmp::Reverse(worst), *area)
    });
    for (area, fs) in order {
        let _ = writeln!(s, "\n{}", p.bold(area.title()));
        for f in fs {
            finding(&mut s, &p, f);
        }
    }
    if !r.allowed.is_empty() {
        let _ = writeln!(s, "\n{}", p.bold("Allowed by policy (not failing)"));
        for f in &r.allowed {
            finding(&mut s, &p, f);
        }
    }
    let count = |st: RuleStatus| r.rules.iter().filter(|x| x.status == st).count();
    let _ = writeln!(
        s,
        "\nRules: {} evaluated ({} passed, {} failed, {} info), {} not evaluated",
        r.rules.len() - count(RuleStatus::Skipped),
        count(RuleStatus::Pass),
        count(RuleStatus::Fail),
        count(RuleStatus::Info),
        count(RuleStatus::Skipped)
    );
    s
}

fn finding(s: &mut String, p: &Paint, f: &Finding) {
    let _ = writeln!(s, "  {} {:<9} {}", p.severity(f.severity), f.id, f.message);
    if let Some(e) = &f.evidence {
        let _ = writeln!(s, "                    evidence: {e}");
    }
    if let Some(fix) = &f.remediation {
        let _ = writeln!(s, "                    fix:      {fix}");
    }
}
