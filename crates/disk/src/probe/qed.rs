//! QED: the magic `QED\0` at offset 0 (qemu `block/qed.c` `bdrv_qed_probe`).

use super::{Found, Sample};
use crate::format::Format;
use std::io;

/// `QED_MAGIC`, little-endian `'Q' | 'E' << 8 | 'D' << 16`.
const MAGIC: &[u8; 4] = b"QED\0";

/// `QED\0` at offset 0.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    Ok(s.has(0, MAGIC)
        .then(|| Found::new(Format::Qed, "'QED\\0' at offset 0", 0, 4)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn magic_with_its_nul() {
        assert!(run(probe, &disk_with(b"QED\0\0\0\x01\0")).is_some());
        assert!(run(probe, &disk_with(b"QEDX")).is_none());
        assert!(run(probe, &disk_with(b"QE")).is_none());
    }
}
