//! btrfs: to be written.
