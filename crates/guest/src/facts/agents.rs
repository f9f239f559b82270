//! agents facts: to be written.
