//! Fuzz targets: text parsers.

use crate::Target;

/// The text targets.
pub const TARGETS: &[Target] = &[];
