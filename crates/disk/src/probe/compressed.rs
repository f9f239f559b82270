//! Compressed streams: a disk image compressed with gzip, xz, zstd or bzip2 (how distributions
//! publish cloud images, `disk.raw.xz`) is no disk until it is decompressed.

use super::{Found, Sample};
use crate::format::Format;
use std::io;

/// A match of `magic` at offset 0, named `label`.
fn at_zero(s: &Sample, format: Format, magic: &[u8], label: &str) -> Option<Found> {
    s.has(0, magic).then(|| {
        Found::new(
            format,
            format!("{label} magic at offset 0"),
            0,
            magic.len() as u64,
        )
    })
}

/// gzip, deflate method: `1f 8b 08`.
pub fn probe_gzip(s: &Sample) -> io::Result<Option<Found>> {
    Ok(at_zero(s, Format::Gzip, b"\x1f\x8b\x08", "gzip"))
}

/// xz: `fd 37 7a 58 5a 00`.
pub fn probe_xz(s: &Sample) -> io::Result<Option<Found>> {
    Ok(at_zero(s, Format::Xz, b"\xfd7zXZ\0", "xz"))
}

/// Zstandard frame: `28 b5 2f fd`.
pub fn probe_zstd(s: &Sample) -> io::Result<Option<Found>> {
    Ok(at_zero(s, Format::Zstd, b"\x28\xb5\x2f\xfd", "zstd"))
}

/// bzip2: `BZh` and a block size digit, then the first block's magic (`31 41 59 26 53 59`) or
/// the end-of-stream magic of an empty stream (`17 72 45 38 50 90`).
pub fn probe_bzip2(s: &Sample) -> io::Result<Option<Found>> {
    let ok = s.has(0, b"BZh")
        && s.head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d))
        && (s.has(4, b"\x31\x41\x59\x26\x53\x59") || s.has(4, b"\x17\x72\x45\x38\x50\x90"));
    Ok(ok.then(|| Found::new(Format::Bzip2, "bzip2 magic at offset 0", 0, 10)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn magics() {
        assert!(run(probe_gzip, &disk_with(b"\x1f\x8b\x08\0")).is_some());
        assert!(run(probe_gzip, &disk_with(b"\x1f\x8b\x07\0")).is_none());
        assert!(run(probe_xz, &disk_with(b"\xfd7zXZ\0\0\x04")).is_some());
        assert!(run(probe_zstd, &disk_with(b"\x28\xb5\x2f\xfd\x24")).is_some());
        assert!(run(probe_bzip2, &disk_with(b"BZh91AY&SY")).is_some());
        assert!(run(probe_bzip2, &disk_with(b"BZh9\x17\x72\x45\x38\x50\x90")).is_some());
        assert!(run(probe_bzip2, &disk_with(b"BZh01AY&SY")).is_none());
        assert!(run(probe_bzip2, &disk_with(b"BZh9 hello")).is_none());
    }
}
