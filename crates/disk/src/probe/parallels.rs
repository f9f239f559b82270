//! Parallels: the magic `WithoutFreeSpace` or `WithouFreSpacExt` at offset 0 (qemu
//! `block/parallels.c` `parallels_probe`, which also wants version 2; any version is taken
//! here, so that an unknown one does not make the file raw).

use super::{Found, Sample};
use crate::format::Format;
use std::io;

/// `HEADER_MAGIC` and `HEADER_MAGIC2` (the extended format).
const MAGICS: [&[u8; 16]; 2] = [b"WithoutFreeSpace", b"WithouFreSpacExt"];

/// Either magic at offset 0.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    for magic in MAGICS {
        if s.has(0, magic) {
            let version = s.le32(16).unwrap_or(0);
            let what = format!(
                "'{}' (version {version}) at offset 0",
                String::from_utf8_lossy(magic)
            );
            return Ok(Some(Found::new(Format::Parallels, what, 0, 16)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn both_magics() {
        assert!(run(probe, &disk_with(b"WithoutFreeSpace\x02\0\0\0")).is_some());
        assert!(run(probe, &disk_with(b"WithouFreSpacExt\x02\0\0\0")).is_some());
        assert!(run(probe, &disk_with(b"WithoutFreeSpac")).is_none());
        assert!(run(probe, &disk_with(b"withoutfreespace")).is_none());
    }
}
