//! PLACEHOLDER area: rules not written yet.

use super::Collector;
use crate::catalogue::RuleInfo;
use crate::context::Context;

/// This area's catalogue entries.
pub const RULES: &[RuleInfo] = &[];

/// Evaluates this area's rules.
pub fn evaluate(_ctx: &Context, _out: &mut Collector) {}
