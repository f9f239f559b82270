//! fat: to be written.
