//! Bochs: the header text `Bochs Virtual HD Image` (a NUL-terminated 32-byte field) at offset 0
//! and the type `Redolog` at 32 (qemu `block/bochs.c` `bochs_probe`, which also wants the
//! subtype `Growing` and version 1 or 2; undoable and volatile redologs and unknown versions
//! are taken here too).

use super::{Found, Sample};
use crate::format::Format;
use std::io;

/// `HEADER_MAGIC` with its terminating NUL.
const MAGIC: &[u8] = b"Bochs Virtual HD Image\0";
/// `REDOLOG_TYPE` with its NUL, at offset 32.
const REDOLOG: &[u8] = b"Redolog\0";

/// The magic at 0 and the redolog type at 32.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    if !(s.has(0, MAGIC) && s.has(32, REDOLOG)) {
        return Ok(None);
    }
    let subtype = s.head.get(48..64).unwrap_or(&[]);
    let subtype = String::from_utf8_lossy(subtype.split(|&c| c == 0).next().unwrap_or(&[]));
    let what = format!("'Bochs Virtual HD Image' redolog ('{subtype}') at offset 0");
    Ok(Some(Found::new(Format::Bochs, what, 0, 64)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn header(magic: &[u8], kind: &[u8], sub: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..magic.len()].copy_from_slice(magic);
        h[32..32 + kind.len()].copy_from_slice(kind);
        h[48..48 + sub.len()].copy_from_slice(sub);
        disk_with(&h)
    }

    #[test]
    fn magic_and_redolog() {
        let f = run(probe, &header(MAGIC, REDOLOG, b"Growing")).unwrap();
        assert!(f.evidence.what.contains("Growing"));
        assert!(run(probe, &header(MAGIC, REDOLOG, b"Undoable")).is_some());
        assert!(run(probe, &header(MAGIC, b"Flat\0", b"")).is_none());
        assert!(run(
            probe,
            &header(b"Bochs Virtual HD Imagex", REDOLOG, b"Growing")
        )
        .is_none());
    }
}
