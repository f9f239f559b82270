//! Fuzz targets: binary parsers.

use crate::Target;

/// The binary targets.
pub const TARGETS: &[Target] = &[];
