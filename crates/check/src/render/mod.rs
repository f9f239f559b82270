//! Writers of a [`Report`]: text for people, JSON for programs, SARIF 2.1.0 for code-scanning
//! dashboards, JUnit XML for CI test views.

pub mod json;
pub mod junit;
pub mod sarif;
pub mod text;

use crate::report::Report;

/// Output format of `vhdprep check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Grouped by area, most severe first; colour when asked.
    Text,
    /// The documented JSON report.
    Json,
    /// SARIF 2.1.0.
    Sarif,
    /// JUnit XML, one test case per rule.
    Junit,
}

/// Renders the report; `color` applies to text only.
pub fn render(report: &Report, format: OutputFormat, color: bool) -> String {
    match format {
        OutputFormat::Text => text::render(report, color),
        OutputFormat::Json => json::render(report),
        OutputFormat::Sarif => sarif::render(report),
        OutputFormat::Junit => junit::render(report),
    }
}
