//! qcow2: the magic `QFI\xfb` with any version but 1 (qemu `block/qcow2.c` `qcow2_probe` takes
//! versions 2 and up; a version 0 file is no raw disk either), and its encryption: the header's
//! `crypt_method` (1 AES, 2 LUKS) or a LUKS header extension.

use super::qcow::MAGIC;
use super::{Found, Sample};
use crate::format::{Encryption, Format};
use std::io;

/// Offset of `crypt_method` in the qcow2 header.
const CRYPT_METHOD: usize = 32;
/// Offset of `cluster_bits`.
const CLUSTER_BITS: usize = 20;
/// Offset of `backing_file_offset` (u64).
const BACKING_FILE_OFFSET: usize = 8;
/// Offset of `header_length` (version 3).
const HEADER_LENGTH: usize = 100;
/// Length of the version 2 header, where its extensions start.
const V2_HEADER_LEN: usize = 72;
/// The full-disk-encryption (LUKS) header extension.
const EXT_LUKS: u32 = 0x0537_be77;

/// `QFI\xfb` with a version other than 1.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    if !s.has(0, MAGIC) {
        return Ok(None);
    }
    let version = match s.be32(4) {
        Some(1) => return Ok(None),
        Some(v) => v,
        None => 0,
    };
    let encryption = match s.be32(CRYPT_METHOD) {
        None | Some(0) => has_luks_extension(s, version).then_some(Encryption::Luks),
        Some(1) => Some(Encryption::Aes),
        Some(2) => Some(Encryption::Luks),
        Some(m) => Some(Encryption::Unknown(m)),
    };
    let what = format!("'QFI\\xfb' version {version} at offset 0");
    Ok(Some(
        Found::new(Format::Qcow2, what, 0, 8).encrypted(encryption),
    ))
}

/// Walks the header extensions (within the head and the first cluster) for the LUKS one.
fn has_luks_extension(s: &Sample, version: u32) -> bool {
    let start = if version >= 3 {
        match s.be32(HEADER_LENGTH) {
            Some(n) => n as usize,
            None => return false,
        }
    } else {
        V2_HEADER_LEN
    };
    let cluster = s
        .be32(CLUSTER_BITS)
        .filter(|b| (9..=21).contains(b))
        .map_or(s.head.len(), |b| 1usize << b);
    let mut end = cluster.min(s.head.len());
    if let Some(b) = s.at::<8>(BACKING_FILE_OFFSET).map(u64::from_be_bytes) {
        if b > start as u64 {
            end = end.min(usize::try_from(b).unwrap_or(usize::MAX));
        }
    }
    let mut off = start;
    // Each extension takes at least 8 bytes, so this ends within end / 8 steps.
    while let (Some(kind), Some(len)) = (s.be32(off), s.be32(off + 4)) {
        if off + 8 > end || kind == 0 {
            return false;
        }
        if kind == EXT_LUKS {
            return true;
        }
        let Some(next) = (len as usize)
            .checked_next_multiple_of(8)
            .and_then(|l| (off + 8).checked_add(l))
        else {
            return false;
        };
        off = next;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn header(version: u32, crypt: u32) -> Vec<u8> {
        let mut h = vec![0u8; 104];
        h[..4].copy_from_slice(MAGIC);
        h[4..8].copy_from_slice(&version.to_be_bytes());
        h[20..24].copy_from_slice(&16u32.to_be_bytes());
        h[32..36].copy_from_slice(&crypt.to_be_bytes());
        h[100..104].copy_from_slice(&104u32.to_be_bytes());
        disk_with(&h)
    }

    #[test]
    fn versions_other_than_one() {
        for v in [0, 2, 3, 4, 99] {
            let f = run(probe, &header(v, 0)).unwrap();
            assert_eq!((f.format, f.encryption), (Format::Qcow2, None), "{v}");
        }
        assert!(run(probe, &header(1, 0)).is_none());
        assert!(run(probe, &disk_with(b"QFI\xfa\0\0\0\x03")).is_none());
    }

    #[test]
    fn encryption_from_crypt_method() {
        assert_eq!(
            run(probe, &header(3, 1)).unwrap().encryption,
            Some(Encryption::Aes)
        );
        assert_eq!(
            run(probe, &header(3, 2)).unwrap().encryption,
            Some(Encryption::Luks)
        );
        assert_eq!(
            run(probe, &header(2, 9)).unwrap().encryption,
            Some(Encryption::Unknown(9))
        );
    }

    #[test]
    fn encryption_from_the_luks_extension() {
        let mut v = header(3, 0);
        // An unknown extension of 5 bytes (padded to 8), then the LUKS one, then the end.
        v[104..108].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        v[108..112].copy_from_slice(&5u32.to_be_bytes());
        v[120..124].copy_from_slice(&EXT_LUKS.to_be_bytes());
        v[124..128].copy_from_slice(&16u32.to_be_bytes());
        assert_eq!(run(probe, &v).unwrap().encryption, Some(Encryption::Luks));
        // Past the end marker it is not looked for.
        v[104..108].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(run(probe, &v).unwrap().encryption, None);
    }

    #[test]
    fn hostile_extension_lengths_end() {
        let mut v = header(3, 0);
        v[104..108].copy_from_slice(&1u32.to_be_bytes());
        v[108..112].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(run(probe, &v).unwrap().encryption, None);
        // A header length pointing past the head.
        let mut v = header(3, 0);
        v[100..104].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(run(probe, &v).unwrap().encryption, None);
    }
}
