//! tar: the `ustar` magic at offset 257 of the first header (POSIX `ustar\0`, GNU `ustar  \0`).
//! An OVA is a tar archive holding an OVF descriptor and the disks (usually VMDK): a tar whose
//! first member is a `*.ovf` and that holds a `*.vmdk` disk the OVF names is an [`Format::Ova`].

use super::{Found, Sample};
use crate::format::Format;
use std::io;

/// Offset of the magic in a tar header.
const MAGIC_AT: usize = 257;

/// `ustar\0` or `ustar ` at offset 257.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    let ok = s.has(MAGIC_AT, b"ustar\0") || s.has(MAGIC_AT, b"ustar ");
    if !ok {
        return Ok(None);
    }
    // The listing is bounded (crate::ova::tar's member cap, a 4 MiB OVF); a damaged archive
    // is a tar, which stays refused.
    let ova = crate::ova::Ova::read(s.file).ok().filter(|o| {
        o.ovf_first()
            && o.disks().is_ok_and(|d| {
                d.iter()
                    .any(|d| d.member.name.to_ascii_lowercase().ends_with(".vmdk"))
            })
    });
    Ok(Some(match ova {
        Some(_) => Found::new(
            Format::Ova,
            "tar magic 'ustar' at offset 257, an OVF descriptor first and a VMDK disk",
            257,
            6,
        ),
        None => Found::new(Format::Tar, "tar magic 'ustar' at offset 257", 257, 6),
    }))
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
