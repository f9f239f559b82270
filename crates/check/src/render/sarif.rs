//! PLACEHOLDER: SARIF 2.1.0 writer not written yet.

use crate::report::Report;

/// SARIF 2.1.0 log.
pub fn render(_report: &Report) -> String {
    String::new()
}
