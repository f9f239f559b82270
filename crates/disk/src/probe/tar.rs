//! tar: the `ustar` magic at offset 257 of the first header (POSIX `ustar\0`, GNU `ustar  \0`).
//! An OVA is a tar archive holding an OVF descriptor and the disks (usually VMDK).

use super::{Found, Sample};
use crate::format::Format;
use std::io;

/// Offset of the magic in a tar header.
const MAGIC_AT: usize = 257;

/// `ustar\0` or `ustar ` at offset 257.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    let ok = s.has(MAGIC_AT, b"ustar\0") || s.has(MAGIC_AT, b"ustar ");
    Ok(ok.then(|| Found::new(Format::Tar, "tar magic 'ustar' at offset 257", 257, 6)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn posix_and_gnu() {
        let mut v = vec![0u8; 8192];
        v[..8].copy_from_slice(b"disk.ovf");
        v[257..263].copy_from_slice(b"ustar\0");
        assert!(run(probe, &v).is_some());
        v[257..265].copy_from_slice(b"ustar  \0");
        assert!(run(probe, &v).is_some());
        v[257..263].copy_from_slice(b"ustax\0");
        assert!(run(probe, &v).is_none());
    }
}
