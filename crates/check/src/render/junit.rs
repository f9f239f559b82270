//! The JUnit XML report of a [`Report`], for CI test views (GitLab, Jenkins, Azure Pipelines,
//! GitHub test reporters). Valid against the Jenkins xUnit plugin's `junit-10.xsd`; the tests
//! check every report against it.
//!
//! One `<testsuites>` holding one `<testsuite name="vhdprep check IMAGE: AREA">` per area of the
//! catalogue that has rules in the report (areas in catalogue order), so that CI views group the
//! rules the way the text report does. Each rule of [`Report::rules`] is one
//! `<testcase classname="vhdprep.AREA" name="RULE-ID title">`:
//!
//! - a rule with a finding at warning or error that `--allow` does not allow fails:
//!   `<failure type="SEVERITY" message="...">` (the most severe finding's level and its message,
//!   or the count when there are several), with every finding of the rule as text — message,
//!   evidence, fix and location;
//! - a rule evaluated without such a finding passes; its information findings and allowed
//!   findings, if any, are its `<system-out>` (an allowed finding never fails, as in the verdict);
//! - a rule that was not evaluated is `<skipped message="REASON"/>`.
//!
//! `errors` is always 0: a rule that cannot be evaluated is skipped, not an error. Every count
//! attribute is the count of the elements below it. Text and attributes are escaped; characters
//! that XML 1.0 cannot carry at all (C0 controls but tab, newline and carriage return; U+FFFE,
//! U+FFFF) are written as a visible `\xNN` / `\uNNNN` escape instead.

use crate::catalogue::{self, Area};
use crate::report::{Report, RuleStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use vhdprep_finding::{Finding, Location, Severity};

/// How one rule came out, as a test case.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// A finding at warning or error that is not allowed.
    Failure {
        severity: Severity,
        message: String,
        text: String,
    },
    /// Evaluated; information or allowed findings as output.
    Pass { out: String },
    /// Not evaluated.
    Skipped { reason: String },
}

struct Case {
    id: &'static str,
    outcome: Outcome,
}

/// JUnit XML with a trailing newline.
pub fn render(report: &Report) -> String {
    let mut areas: BTreeMap<Area, Vec<Case>> = BTreeMap::new();
    for id in rule_ids(report) {
        let outcome = outcome(report, id);
        areas
            .entry(Area::of(id))
            .or_default()
            .push(Case { id, outcome });
    }
    let all: Vec<&Case> = areas.values().flatten().collect();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"vhdprep check\" tests=\"{}\" failures=\"{}\" errors=\"0\">",
        all.len(),
        count(&all, is_failure)
    );
    for (area, cases) in &areas {
        suite(&mut s, report, *area, cases);
    }
    s.push_str("</testsuites>\n");
    s
}

/// The rules of the report, then any rule a finding names that the report does not list.
fn rule_ids(report: &Report) -> Vec<&'static str> {
    let mut seen = BTreeSet::new();
    report
        .rules
        .iter()
        .map(|r| r.id)
        .chain(report.findings.iter().map(|f| f.id))
        .chain(report.allowed.iter().map(|f| f.id))
        .filter(|id| seen.insert(*id))
        .collect()
}

fn is_failure(c: &Case) -> bool {
    matches!(c.outcome, Outcome::Failure { .. })
}

fn is_skipped(c: &Case) -> bool {
    matches!(c.outcome, Outcome::Skipped { .. })
}

fn count(cases: &[&Case], pred: fn(&Case) -> bool) -> usize {
    cases.iter().filter(|c| pred(c)).count()
}

fn outcome(report: &Report, id: &str) -> Outcome {
    let result = report.rules.iter().find(|r| r.id == id);
    if let Some(r) = result.filter(|r| r.status == RuleStatus::Skipped) {
        return Outcome::Skipped {
            reason: r.reason.clone().unwrap_or_else(|| "not evaluated".into()),
        };
    }
    let own: Vec<&Finding> = report.findings.iter().filter(|f| f.id == id).collect();
    let allowed: Vec<&Finding> = report.allowed.iter().filter(|f| f.id == id).collect();
    let mut text = String::new();
    for f in &own {
        describe(&mut text, f, false);
    }
    for f in &allowed {
        describe(&mut text, f, true);
    }
    let failing: Vec<&&Finding> = own
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .collect();
    match failing.iter().map(|f| f.severity).max() {
        Some(severity) => {
            let worst = failing
                .iter()
                .find(|f| f.severity == severity)
                .map_or("", |f| f.message.as_str());
            let message = if failing.len() == 1 {
                worst.to_string()
            } else {
                format!("{} findings; the first: {worst}", failing.len())
            };
            Outcome::Failure {
                severity,
                message,
                text,
            }
        }
        None => Outcome::Pass { out: text },
    }
}

/// One finding as lines of text.
fn describe(s: &mut String, f: &Finding, allowed: bool) {
    let mark = if allowed { ", allowed by --allow" } else { "" };
    let _ = writeln!(s, "[{}{mark}] {}", f.severity, f.message);
    if let Some(e) = &f.evidence {
        let _ = writeln!(s, "  evidence: {e}");
    }
    if let Some(r) = &f.remediation {
        let _ = writeln!(s, "  fix: {r}");
    }
    match &f.location {
        Some(Location::Guest {
            path,
            line: Some(l),
        }) => {
            let _ = writeln!(s, "  location: {path} line {l}");
        }
        Some(Location::Guest { path, line: None }) => {
            let _ = writeln!(s, "  location: {path}");
        }
        Some(Location::Disk { offset, length }) => {
            let len = length.map(|l| format!(", {l} bytes")).unwrap_or_default();
            let _ = writeln!(s, "  location: byte {offset}{len}");
        }
        None => {}
    }
}

fn suite(s: &mut String, report: &Report, area: Area, cases: &[Case]) {
    let refs: Vec<&Case> = cases.iter().collect();
    let _ = writeln!(
        s,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">",
        attr(&format!("vhdprep check {}: {}", report.image, area.title())),
        cases.len(),
        count(&refs, is_failure),
        count(&refs, is_skipped),
    );
    s.push_str("    <properties>\n");
    for (name, value) in [
        ("vhdprep.image", report.image.as_str()),
        ("vhdprep.verdict", &report.verdict.to_string()),
        ("vhdprep.fail-on", report.fail_on.as_str()),
    ] {
        let _ = writeln!(
            s,
            "      <property name=\"{name}\" value=\"{}\"/>",
            attr(value)
        );
    }
    s.push_str("    </properties>\n");
    for c in cases {
        case(s, area, c);
    }
    s.push_str("  </testsuite>\n");
}

fn case(s: &mut String, area: Area, c: &Case) {
    let title = catalogue::find(c.id).map_or("", |r| r.title);
    let name = if title.is_empty() {
        c.id.to_string()
    } else {
        format!("{} {title}", c.id)
    };
    let area_name = area_name(area);
    let open = format!(
        "    <testcase classname=\"vhdprep.{area_name}\" name=\"{}\"",
        attr(&name)
    );
    match &c.outcome {
        Outcome::Failure {
            severity,
            message,
            text,
        } => {
            let _ = writeln!(
                s,
                "{open}>\n      <failure type=\"{severity}\" message=\"{}\">{}</failure>\n    </testcase>",
                attr(message),
                text_escape(text)
            );
        }
        Outcome::Pass { out } if out.is_empty() => {
            let _ = writeln!(s, "{open}/>");
        }
        Outcome::Pass { out } => {
            let _ = writeln!(
                s,
                "{open}>\n      <system-out>{}</system-out>\n    </testcase>",
                text_escape(out)
            );
        }
        Outcome::Skipped { reason } => {
            let _ = writeln!(
                s,
                "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                attr(reason)
            );
        }
    }
}

/// The area as in JSON and SARIF: `container`, `boot`, ...
fn area_name(area: Area) -> String {
    match serde_json::to_value(area) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Whether XML 1.0 can carry the character at all (its `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn escape(s: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\'' if in_attribute => out.push_str("&apos;"),
            // Parsers normalise a literal CR to LF, and whitespace in attributes to spaces.
            '\r' => out.push_str("&#13;"),
            '\n' if in_attribute => out.push_str("&#10;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            c if !xml_char(c) && u32::from(c) < 0x20 => {
                let _ = write!(out, "\\x{:02X}", u32::from(c));
            }
            c if !xml_char(c) => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value (for double quotes).
pub fn attr(s: &str) -> String {
    escape(s, true)
}

/// Escapes character data.
pub fn text_escape(s: &str) -> String {
    escape(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_whitespace() {
        assert_eq!(attr("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(attr("l1\nl2\tx\r"), "l1&#10;l2&#9;x&#13;");
        assert_eq!(
            text_escape("l1\nl2\t\"q\"\r]]>"),
            "l1\nl2\t\"q\"&#13;]]&gt;"
        );
    }

    #[test]
    fn characters_xml_cannot_carry_become_visible_escapes() {
        assert_eq!(text_escape("a\u{0}b\u{1b}[31m"), "a\\x00b\\x1B[31m");
        assert_eq!(attr("\u{FFFE}\u{FFFF}\u{FFFD}"), "\\uFFFE\\uFFFF\u{FFFD}");
        assert_eq!(text_escape("é😀\u{85}"), "é😀\u{85}");
    }
}
