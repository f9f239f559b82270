//! system facts: to be written.
