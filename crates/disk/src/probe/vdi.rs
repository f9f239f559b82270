//! VirtualBox VDI: the signature `0xbeda107f` (little-endian) at offset 64 (qemu `block/vdi.c`
//! `vdi_probe`); also, more widely than qemu, the `<<< ... VirtualBox Disk Image >>>` text of
//! the header's first 64 bytes (older qemu probed that), so that a damaged signature alone does
//! not make the file raw.

use super::{Found, Sample};
use crate::format::Format;
use std::io;

/// `VDI_SIGNATURE`.
const SIGNATURE: u32 = 0xbeda_107f;
/// Offset of the signature, after the 64 bytes of text.
const SIGNATURE_AT: usize = 64;
/// The end of the pre-header text every VirtualBox writer uses (Sun, innotek, Oracle, QEMU).
const TEXT: &[u8] = b"VirtualBox Disk Image >>>";

/// The signature at 64, or the header text.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    if s.le32(SIGNATURE_AT) == Some(SIGNATURE) {
        return Ok(Some(Found::new(
            Format::Vdi,
            "signature 0xbeda107f at offset 64",
            64,
            4,
        )));
    }
    let text = &s.head[..s.head.len().min(SIGNATURE_AT)];
    if text.starts_with(b"<<< ") && text.windows(TEXT.len()).any(|w| w == TEXT) {
        return Ok(Some(Found::new(
            Format::Vdi,
            "'<<< ... VirtualBox Disk Image >>>' at offset 0",
            0,
            64,
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn signature_or_text() {
        let mut v = disk_with(b"<<< QEMU VM VirtualBox Disk Image >>>\n");
        v[64..68].copy_from_slice(&SIGNATURE.to_le_bytes());
        assert_eq!(run(probe, &v).unwrap().evidence.offset, 64);
        v[64..68].copy_from_slice(&[0; 4]);
        assert_eq!(run(probe, &v).unwrap().evidence.offset, 0);
        let mut v = vec![0u8; 4096];
        v[64..68].copy_from_slice(&SIGNATURE.to_le_bytes());
        assert!(run(probe, &v).is_some());
        // Big-endian, or the text without its opening, is not VDI.
        v[64..68].copy_from_slice(&SIGNATURE.to_be_bytes());
        assert!(run(probe, &v).is_none());
        assert!(run(probe, &disk_with(b"QEMU VM VirtualBox Disk Image >>>\n")).is_none());
    }
}
