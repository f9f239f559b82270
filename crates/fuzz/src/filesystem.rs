//! Fuzz targets: filesystem parsers.

use crate::Target;

/// The filesystem targets.
pub const TARGETS: &[Target] = &[];
