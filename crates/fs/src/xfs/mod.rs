//! xfs: to be written.
