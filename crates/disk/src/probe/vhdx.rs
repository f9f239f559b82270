//! VHDX: the file identifier `vhdxfile` at offset 0 (qemu `block/vhdx.c` `vhdx_probe`).

use super::{Found, Sample};
use crate::format::Format;
use std::io;

/// The file type identifier of MS-VHDX 2.2.1.
const SIGNATURE: &[u8; 8] = b"vhdxfile";

/// `vhdxfile` at offset 0.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    Ok(s.has(0, SIGNATURE)
        .then(|| Found::new(Format::Vhdx, "'vhdxfile' at offset 0", 0, 8)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn signature_at_zero_only() {
        assert!(run(probe, &disk_with(b"vhdxfile")).is_some());
        assert!(run(probe, &disk_with(b"vhdxfil")).is_none());
        let mut v = vec![0u8; 4096];
        v[512..520].copy_from_slice(b"vhdxfile");
        assert!(run(probe, &v).is_none());
    }
}
