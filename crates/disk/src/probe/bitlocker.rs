//! BitLocker: `-FVE-FS-` as the OEM name at offset 3 of the volume (Vista and Windows 7 and
//! later), or BitLocker To Go: OEM name `MSWIN4.1` with FVE metadata (`-FVE-FS-`) at the
//! offset recorded at 440 (libblkid `superblocks/bitlocker.c`; qemu has no BitLocker driver).
//! Only a whole-file volume is a container; a BitLocker partition inside a partitioned disk is
//! that disk's content.

use super::{Found, Sample};
use crate::format::{Encryption, Format};
use std::io;

/// The FVE signature, as OEM name and at the start of the metadata block.
const FVE: &[u8; 8] = b"-FVE-FS-";
/// BitLocker To Go's OEM name (also that of plain FAT volumes: the metadata decides).
const TOGO_OEM: &[u8; 8] = b"MSWIN4.1";
/// Where BitLocker To Go records the offset of its FVE metadata (little-endian u64).
const TOGO_METADATA_OFFSET: usize = 440;

/// `-FVE-FS-` at offset 3, or To Go's OEM name with FVE metadata where it points.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    if s.has(3, FVE) {
        return Ok(Some(
            Found::new(Format::Bitlocker, "OEM name '-FVE-FS-' at offset 3", 3, 8)
                .encrypted(Some(Encryption::Bitlocker)),
        ));
    }
    if !s.has(3, TOGO_OEM) {
        return Ok(None);
    }
    let Some(off) = s.at::<8>(TOGO_METADATA_OFFSET).map(u64::from_le_bytes) else {
        return Ok(None);
    };
    if off == 0 || s.read_at::<8>(off)?.as_ref() != Some(FVE) {
        return Ok(None);
    }
    Ok(Some(
        Found::new(
            Format::Bitlocker,
            format!(
                "BitLocker To Go: OEM name 'MSWIN4.1', FVE metadata '-FVE-FS-' at offset {off}"
            ),
            off,
            8,
        )
        .encrypted(Some(Encryption::Bitlocker)),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn windows_7_and_vista() {
        assert!(run(probe, &disk_with(b"\xeb\x58\x90-FVE-FS-")).is_some());
        assert!(run(probe, &disk_with(b"\xeb\x52\x90-FVE-FS-")).is_some());
        assert!(run(probe, &disk_with(b"\xeb\x58\x90-FVE-FS")).is_none());
    }

    #[test]
    fn to_go_needs_its_metadata() {
        let mut v = disk_with(b"\xeb\x58\x90MSWIN4.1");
        assert!(
            run(probe, &v).is_none(),
            "a FAT volume with Windows 9x's OEM name"
        );
        v[440..448].copy_from_slice(&0x2_0000u64.to_le_bytes());
        assert!(run(probe, &v).is_none());
        v[0x2_0000..0x2_0008].copy_from_slice(FVE);
        assert_eq!(run(probe, &v).unwrap().evidence.offset, 0x2_0000);
        // A metadata offset past the end is nothing, not an error.
        v[440..448].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(run(probe, &v).is_none());
    }
}
