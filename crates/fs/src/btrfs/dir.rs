//! Directory entries: DIR_ITEM (keyed by name hash, for lookups) and DIR_INDEX (keyed by
//! sequence number, for listings in creation order).

use super::tree::{Reader, TreeRoot};
use super::{corrupt, le_u16, Key};
use crate::api::{FileKind, FsResult, MAX_DIR_ENTRIES};
use std::ops::ControlFlow;

/// Key type of a directory item (hashed name).
pub const DIR_ITEM_KEY: u8 = 84;
/// Key type of a directory index entry.
pub const DIR_INDEX_KEY: u8 = 96;
/// Fixed part of a directory entry.
const DIR_ENTRY_FIXED: usize = 30;
/// Longest name btrfs allows.
const MAX_NAME: usize = 255;

/// One directory entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDirEntry {
    /// What the entry points to: (inode, INODE_ITEM, 0) or (subvolume, ROOT_ITEM, ..).
    pub location: Key,
    /// The btrfs file type (1 file, 2 dir, 7 symlink, ...).
    pub ty: u8,
    /// The name.
    pub name: Vec<u8>,
}

impl RawDirEntry {
    /// The kind as the entry records it.
    pub fn kind(&self) -> FileKind {
        match self.ty {
            1 => FileKind::File,
            2 => FileKind::Dir,
            3 => FileKind::CharDevice,
            4 => FileKind::BlockDevice,
            5 => FileKind::Fifo,
            6 => FileKind::Socket,
            7 => FileKind::Symlink,
            _ => FileKind::Unknown,
        }
    }
}

/// The btrfs name hash: crc32c seeded with `~1`, without the final inversion.
pub fn name_hash(name: &[u8]) -> u32 {
    // The kernel's crc32c(seed, ..) neither pre- nor post-inverts; the crate does both.
    !crc32c::crc32c_append(!0xFFFF_FFFEu32, name)
}

/// Parses the (one or more) entries packed in a DIR_ITEM or DIR_INDEX item.
pub fn parse_entries(mut d: &[u8]) -> FsResult<Vec<RawDirEntry>> {
    let mut out = Vec::new();
    while !d.is_empty() {
        if d.len() < DIR_ENTRY_FIXED {
            return Err(corrupt("directory entry shorter than its header"));
        }
        let location = Key::parse(d)?;
        let data_len = le_u16(d, 25)? as usize;
        let name_len = le_u16(d, 27)? as usize;
        let ty = d[29];
        if name_len == 0 || name_len > MAX_NAME {
            return Err(corrupt(format!("directory entry name of {name_len} bytes")));
        }
        let end = DIR_ENTRY_FIXED + name_len + data_len;
        if end > d.len() {
            return Err(corrupt("directory entry name outside its item"));
        }
        out.push(RawDirEntry {
            location,
            ty,
            name: d[DIR_ENTRY_FIXED..DIR_ENTRY_FIXED + name_len].to_vec(),
        });
        d = &d[end..];
    }
    Ok(out)
}

/// Looks `name` up in directory `dir` of `tree`.
pub fn lookup(r: &Reader, tree: TreeRoot, dir: u64, name: &[u8]) -> FsResult<Option<RawDirEntry>> {
    let key = Key::new(dir, DIR_ITEM_KEY, u64::from(name_hash(name)));
    let Some(d) = r.find(tree, key)? else {
        return Ok(None);
    };
    Ok(parse_entries(&d)?.into_iter().find(|e| e.name == name))
}

/// Every entry of directory `dir`, in index order.
pub fn list(r: &Reader, tree: TreeRoot, dir: u64) -> FsResult<Vec<RawDirEntry>> {
    let mut out = Vec::new();
    let min = Key::new(dir, DIR_INDEX_KEY, 0);
    let max = Key::new(dir, DIR_INDEX_KEY, u64::MAX);
    r.walk(tree, min, max, &mut |_, d| {
        for e in parse_entries(d)? {
            if out.len() >= MAX_DIR_ENTRIES {
                return Err(corrupt(format!(
                    "directory inode {dir} has more than {MAX_DIR_ENTRIES} entries"
                )));
            }
            out.push(e);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_hash_matches_mkfs() {
        // From `btrfs inspect-internal dump-tree` of a fresh mkfs.btrfs 6.2 image.
        assert_eq!(name_hash(b"default"), 2378154706);
        assert_eq!(name_hash(b"l"), 1936487199);
        assert_eq!(name_hash(b"d"), 4189400016);
    }

    #[test]
    fn entries_are_bounds_checked() {
        let mut d = vec![0u8; DIR_ENTRY_FIXED];
        d[27] = 5; // name_len 5 but no name bytes
        assert!(parse_entries(&d).is_err());
        assert!(parse_entries(&d[..10]).is_err());
    }
}
