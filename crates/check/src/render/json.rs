//! The JSON report: the [`Report`] serialised as documented in docs/check-report.md.

use crate::report::Report;

/// Pretty-printed JSON with a trailing newline.
pub fn render(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("a report always serialises");
    s.push('\n');
    s
}
