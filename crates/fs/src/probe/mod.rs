//! probe: to be written.
