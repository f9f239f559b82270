//! lvm: to be written.
