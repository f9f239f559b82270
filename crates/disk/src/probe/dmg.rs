//! Apple disk image (UDIF): the `koly` trailer in the last 512 bytes with its header size 512.
//! qemu's `dmg_probe` goes by the `.dmg` file name alone (and `dmg_open` then looks for `koly`
//! near the end); vhdprep never decides by name.

use super::{Found, Sample};
use crate::format::Format;
use crate::vhd::FOOTER_SIZE;
use std::io;

/// The trailer's magic.
const MAGIC: &[u8; 4] = b"koly";
/// The trailer's size, recorded in it at offset 8 (big-endian).
const TRAILER_SIZE: u32 = 512;

/// `koly` at the start of the last 512 bytes, header size 512.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    let Some(t) = s.tail else {
        return Ok(None);
    };
    let size = u32::from_be_bytes([t[8], t[9], t[10], t[11]]);
    if !t.starts_with(MAGIC) || size != TRAILER_SIZE {
        return Ok(None);
    }
    let at = s.len - FOOTER_SIZE as u64;
    Ok(Some(Found::new(
        Format::Dmg,
        format!("UDIF trailer 'koly' at offset {at}"),
        at,
        4,
    )))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn with_trailer(magic: &[u8], size: u32, pad_after: usize) -> Vec<u8> {
        let mut v = vec![0u8; 8192];
        let mut t = [0u8; 512];
        t[..4].copy_from_slice(magic);
        t[4..8].copy_from_slice(&4u32.to_be_bytes());
        t[8..12].copy_from_slice(&size.to_be_bytes());
        v.extend_from_slice(&t);
        v.extend(std::iter::repeat_n(0u8, pad_after));
        v
    }

    #[test]
    fn trailer_in_the_last_sector_only() {
        let f = run(probe, &with_trailer(b"koly", 512, 0)).unwrap();
        assert_eq!(f.evidence.offset, 8192);
        assert!(run(probe, &with_trailer(b"koly", 200, 0)).is_none());
        assert!(run(probe, &with_trailer(b"kolx", 512, 0)).is_none());
        // One sector of something else after it: the trailer is not the file's end.
        assert!(run(probe, &with_trailer(b"koly", 512, 512)).is_none());
        // "koly" at the start of a file is not a trailer.
        assert!(run(probe, &disk_with(b"koly\0\0\0\x04\0\0\x02\0")).is_none());
    }
}
