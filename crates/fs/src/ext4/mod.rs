//! ext4: to be written.
