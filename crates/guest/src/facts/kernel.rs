//! kernel facts: to be written.
