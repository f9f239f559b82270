//! LUKS: the magic `LUKS\xba\xbe` at offset 0 with version 1 or 2 (qemu `crypto/block-luks.c`
//! `qcrypto_block_luks_has_format` knows version 1 only, so `qemu-img info` calls a LUKS2
//! volume raw; libblkid knows both), or a LUKS2 secondary header `SKUL\xba\xbe` at one of the
//! offsets cryptsetup may put it (the primary header damaged or wiped).

use super::{Found, Sample};
use crate::format::{Encryption, Format};
use std::io;

/// The primary header's magic.
const MAGIC: &[u8; 6] = b"LUKS\xba\xbe";
/// The LUKS2 secondary header's magic.
const MAGIC2: &[u8; 6] = b"SKUL\xba\xbe";
/// Where a LUKS2 secondary header may be: the primary header's size, 16 KiB to 4 MiB (the
/// list libblkid probes).
const SECONDARY_AT: [u64; 9] = [
    0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
];

/// A primary header, else a LUKS2 secondary one.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    if s.has(0, MAGIC) {
        let version = s.at::<2>(6).map_or(0, u16::from_be_bytes);
        let enc = match version {
            1 => Encryption::Luks1,
            2 => Encryption::Luks2,
            v => Encryption::Unknown(u32::from(v)),
        };
        let what = format!("LUKS header 'LUKS\\xba\\xbe' version {version} at offset 0");
        return Ok(Some(
            Found::new(Format::Luks, what, 0, 8).encrypted(Some(enc)),
        ));
    }
    for at in SECONDARY_AT {
        let Some(h) = s.read_at::<8>(at)? else {
            break;
        };
        if h.starts_with(MAGIC2) && u16::from_be_bytes([h[6], h[7]]) == 2 {
            let what = format!("LUKS2 secondary header 'SKUL\\xba\\xbe' at offset {at}");
            return Ok(Some(
                Found::new(Format::Luks, what, at, 8).encrypted(Some(Encryption::Luks2)),
            ));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn both_versions_and_the_secondary_header() {
        let f = run(probe, &disk_with(b"LUKS\xba\xbe\0\x01")).unwrap();
        assert_eq!(f.encryption, Some(Encryption::Luks1));
        let f = run(probe, &disk_with(b"LUKS\xba\xbe\0\x02")).unwrap();
        assert_eq!(f.encryption, Some(Encryption::Luks2));
        let f = run(probe, &disk_with(b"LUKS\xba\xbe\0\x07")).unwrap();
        assert_eq!(f.encryption, Some(Encryption::Unknown(7)));
        let mut v = vec![0u8; 1 << 20];
        v[0x8000..0x8008].copy_from_slice(b"SKUL\xba\xbe\0\x02");
        let f = run(probe, &v).unwrap();
        assert_eq!(
            (f.evidence.offset, f.encryption),
            (0x8000, Some(Encryption::Luks2))
        );
        // A secondary magic elsewhere, or of another version, is nothing.
        let mut v = vec![0u8; 1 << 20];
        v[0x8200..0x8208].copy_from_slice(b"SKUL\xba\xbe\0\x02");
        v[0x4000..0x4008].copy_from_slice(b"SKUL\xba\xbe\0\x01");
        assert!(run(probe, &v).is_none());
        assert!(run(probe, &disk_with(b"LUKS\xba\xbf\0\x01")).is_none());
    }
}
