//! What a volume holds, by magic, the way `blkid -p` (libblkid's low-level superblock probing)
//! names it: type, label, UUID, and the size and block size the superblock records.
//!
//! One file per family. Every prober reads a few bounded windows of the volume, checks the
//! magic and the sanity of the fields it relies on (and checksums where libblkid checks them),
//! and never panics: a short or hostile volume yields `None`, an I/O error of the volume an
//! `Err`.

mod btrfs;
mod ext;
mod fat;
mod iso;
mod luks;
mod lvm;
mod others;
mod swap;
mod xfs;

use serde::Serialize;
use std::io;
use vhdprep_disk::ReadAt;

/// What a volume holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// libblkid's `TYPE`: `ext2`, `ext3`, `ext4`, `xfs`, `btrfs`, `vfat`, `swap`,
    /// `LVM2_member`, `ufs`, `ntfs`, `iso9660`, `udf`, `crypto_LUKS`, `squashfs` (and the rarer
    /// `ext4dev`, `jbd`, `squashfs3`, `swsuspend`).
    pub fs_type: &'static str,
    /// libblkid's `LABEL`, trailing white space removed; `None` when empty.
    pub label: Option<String>,
    /// libblkid's `UUID`, formatted as `blkid -p -o export` prints it for this type.
    pub uuid: Option<String>,
    /// Size of the filesystem in bytes, where the superblock records it.
    pub size: Option<u64>,
    /// Block (or cluster, or page) size in bytes, where the superblock records it.
    pub block_size: Option<u32>,
}

impl Probe {
    fn new(fs_type: &'static str) -> Self {
        Probe {
            fs_type,
            label: None,
            uuid: None,
            size: None,
            block_size: None,
        }
    }
}

type Prober = fn(&dyn ReadAt) -> io::Result<Option<Probe>>;

/// Probers in the order they are tried: strong magics first, FAT (whose magic is weak) and the
/// CD formats (which sit at 32 KiB, where others keep data) last.
const PROBERS: &[Prober] = &[
    luks::probe,
    lvm::probe,
    swap::probe,
    ext::probe,
    xfs::probe,
    btrfs::probe,
    others::probe_squashfs,
    others::probe_ntfs,
    fat::probe,
    iso::probe_udf,
    iso::probe_iso9660,
    others::probe_ufs,
];

/// Identifies what `vol` holds: `Ok(None)` when nothing known is recognised.
pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    for prober in PROBERS {
        if let Some(p) = prober(vol)? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// Most bytes a prober reads in one window.
const MAX_WINDOW: usize = 1 << 20;

/// Reads `len` bytes at `offset`, or `None` when the volume is too short (or the window too
/// large, which only a bug could ask for).
pub(crate) fn read_window(
    vol: &dyn ReadAt,
    offset: u64,
    len: usize,
) -> io::Result<Option<Vec<u8>>> {
    if len > MAX_WINDOW {
        return Ok(None);
    }
    match offset.checked_add(len as u64) {
        Some(end) if end <= vol.len() => {}
        _ => return Ok(None),
    }
    let mut buf = vec![0u8; len];
    match vol.read_exact_at(&mut buf, offset) {
        Ok(()) => Ok(Some(buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// `N` bytes at `off`, or `None` outside the buffer.
fn arr<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off.checked_add(N)?)?.try_into().ok()
}

/// Field readers that return 0 outside the buffer instead of panicking.
pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    arr(b, off).map_or(0, u16::from_le_bytes)
}
pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    arr(b, off).map_or(0, u32::from_le_bytes)
}
pub(crate) fn le64(b: &[u8], off: usize) -> u64 {
    arr(b, off).map_or(0, u64::from_le_bytes)
}
pub(crate) fn be16(b: &[u8], off: usize) -> u16 {
    arr(b, off).map_or(0, u16::from_be_bytes)
}
pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    arr(b, off).map_or(0, u32::from_be_bytes)
}
pub(crate) fn be64(b: &[u8], off: usize) -> u64 {
    arr(b, off).map_or(0, u64::from_be_bytes)
}
/// `len` bytes at `off`, or an empty slice outside the buffer.
pub(crate) fn bytes(b: &[u8], off: usize, len: usize) -> &[u8] {
    b.get(off..off.saturating_add(len)).unwrap_or(&[])
}

/// A 16-byte UUID as libblkid prints it: lowercase `8-4-4-4-12`; `None` when all zero (libblkid
/// does not report empty UUIDs).
pub(crate) fn uuid16(b: &[u8]) -> Option<String> {
    if b.len() != 16 || b.iter().all(|&x| x == 0) {
        return None;
    }
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    ))
}

/// A label as `blkid_probe_set_label` stores it: up to the first NUL, trailing white space
/// removed; `None` when nothing is left.
pub(crate) fn label_bytes(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(&b[..end]);
    let t = s.trim_end_matches(|c: char| c.is_ascii_whitespace());
    (!t.is_empty()).then(|| t.to_string())
}

/// A label from UTF-16 code units (big- or little-endian), up to the first NUL, trailing white
/// space removed.
pub(crate) fn label_utf16(b: &[u8], big_endian: bool) -> Option<String> {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| {
            if big_endian {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        })
        .take_while(|&u| u != 0)
        .collect();
    let s = String::from_utf16_lossy(&units);
    let t = s.trim_end_matches(char::is_whitespace);
    (!t.is_empty()).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_tiny_volumes_are_nothing() {
        assert_eq!(probe(&Vec::<u8>::new()).unwrap(), None);
        assert_eq!(probe(&vec![0u8; 3]).unwrap(), None);
        assert_eq!(probe(&vec![0u8; 1 << 20]).unwrap(), None);
    }

    #[test]
    fn field_readers_never_panic() {
        let b = [1u8, 2, 3];
        assert_eq!(le32(&b, 0), 0);
        assert_eq!(le16(&b, 1), 0x0302);
        assert_eq!(be64(&b, usize::MAX - 2), 0);
        assert!(bytes(&b, usize::MAX, 4).is_empty());
    }

    #[test]
    fn uuid_and_label_formats() {
        let u: Vec<u8> = (0..16).collect();
        assert_eq!(uuid16(&u).unwrap(), "00010203-0405-0607-0809-0a0b0c0d0e0f");
        assert_eq!(uuid16(&[0; 16]), None);
        assert_eq!(label_bytes(b"ESP    \0junk").as_deref(), Some("ESP"));
        assert_eq!(label_bytes(b"   "), None);
    }
}
