//! qcow version 1: the magic `QFI\xfb` and version 1 (qemu `block/qcow.c` `qcow_probe`), with
//! its `crypt_method` (0 none, 1 AES).

use super::{Found, Sample};
use crate::format::{Encryption, Format};
use std::io;

/// `QCOW_MAGIC`.
pub const MAGIC: &[u8; 4] = b"QFI\xfb";
/// Offset of `crypt_method` in the version 1 header: magic, version, backing file offset
/// (8) and size, mtime, size (8), cluster_bits, l2_bits, padding (2).
const CRYPT_METHOD: usize = 36;

/// `QFI\xfb`, version 1.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    if !s.has(0, MAGIC) || s.be32(4) != Some(1) {
        return Ok(None);
    }
    let encryption = match s.be32(CRYPT_METHOD) {
        None | Some(0) => None,
        Some(1) => Some(Encryption::Aes),
        Some(m) => Some(Encryption::Unknown(m)),
    };
    Ok(Some(
        Found::new(Format::Qcow, "'QFI\\xfb' version 1 at offset 0", 0, 8).encrypted(encryption),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn header(version: u32, crypt: u32) -> Vec<u8> {
        let mut h = vec![0u8; 48];
        h[..4].copy_from_slice(MAGIC);
        h[4..8].copy_from_slice(&version.to_be_bytes());
        h[36..40].copy_from_slice(&crypt.to_be_bytes());
        disk_with(&h)
    }

    #[test]
    fn version_one_only_with_its_encryption() {
        let f = run(probe, &header(1, 0)).unwrap();
        assert_eq!((f.format, f.encryption), (Format::Qcow, None));
        assert_eq!(
            run(probe, &header(1, 1)).unwrap().encryption,
            Some(Encryption::Aes)
        );
        assert_eq!(
            run(probe, &header(1, 7)).unwrap().encryption,
            Some(Encryption::Unknown(7))
        );
        assert!(run(probe, &header(2, 0)).is_none());
        assert!(run(probe, &header(3, 0)).is_none());
    }
}
