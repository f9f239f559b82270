//! INODE_ITEM (the stat data of an inode) and INODE_REF / INODE_EXTREF (its names in parent
//! directories).

use super::tree::{Reader, TreeRoot};
use super::{corrupt, le_u16, le_u32, le_u64, Key};
use crate::api::{FileKind, FsResult};
use std::ops::ControlFlow;

/// Key type of an inode item.
pub const INODE_ITEM_KEY: u8 = 1;
/// Key type of an inode reference.
pub const INODE_REF_KEY: u8 = 12;
/// Key type of an extended inode reference.
pub const INODE_EXTREF_KEY: u8 = 13;
/// Size of an inode item.
const INODE_ITEM_SIZE: usize = 160;
/// Most path components [`inode_path`] follows.
const MAX_PATH_DEPTH: usize = 4096;

/// The fields of an inode item this reader uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InodeItem {
    /// Size in bytes.
    pub size: u64,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Type and permission bits.
    pub mode: u32,
    /// Inode flags.
    pub flags: u64,
    /// Modification time, seconds.
    pub mtime: i64,
}

impl InodeItem {
    /// Parses the data of an INODE_ITEM.
    pub fn parse(d: &[u8]) -> FsResult<InodeItem> {
        if d.len() < INODE_ITEM_SIZE {
            return Err(corrupt(format!("inode item of {} bytes", d.len())));
        }
        Ok(InodeItem {
            size: le_u64(d, 16)?,
            nlink: le_u32(d, 40)?,
            uid: le_u32(d, 44)?,
            gid: le_u32(d, 48)?,
            mode: le_u32(d, 52)?,
            flags: le_u64(d, 64)?,
            mtime: le_u64(d, 136)? as i64,
        })
    }

    /// The kind, from the mode's type bits.
    pub fn kind(&self) -> FileKind {
        match self.mode & 0o170000 {
            0o100000 => FileKind::File,
            0o040000 => FileKind::Dir,
            0o120000 => FileKind::Symlink,
            0o020000 => FileKind::CharDevice,
            0o060000 => FileKind::BlockDevice,
            0o010000 => FileKind::Fifo,
            0o140000 => FileKind::Socket,
            _ => FileKind::Unknown,
        }
    }
}

/// Reads inode `ino` of `tree`.
pub fn read_inode(r: &Reader, tree: TreeRoot, ino: u64) -> FsResult<Option<InodeItem>> {
    match r.find(tree, Key::new(ino, INODE_ITEM_KEY, 0))? {
        Some(d) => Ok(Some(InodeItem::parse(&d)?)),
        None => Ok(None),
    }
}

/// One parent link of an inode: the parent directory and the name there.
pub fn first_parent(r: &Reader, tree: TreeRoot, ino: u64) -> FsResult<Option<(u64, Vec<u8>)>> {
    let mut out = None;
    let min = Key::new(ino, INODE_REF_KEY, 0);
    let max = Key::new(ino, INODE_EXTREF_KEY, u64::MAX);
    r.walk(tree, min, max, &mut |k, d| {
        if k.ty == INODE_REF_KEY {
            // index u64, name_len u16, name
            let len = le_u16(d, 8)? as usize;
            let name = d
                .get(10..10 + len)
                .ok_or_else(|| corrupt("inode ref name outside its item"))?;
            out = Some((k.offset, name.to_vec()));
        } else {
            // parent u64, index u64, name_len u16, name
            let parent = le_u64(d, 0)?;
            let len = le_u16(d, 16)? as usize;
            let name = d
                .get(18..18 + len)
                .ok_or_else(|| corrupt("inode extref name outside its item"))?;
            out = Some((parent, name.to_vec()));
        }
        Ok(ControlFlow::Break(()))
    })?;
    Ok(out)
}

/// Path of directory `ino` relative to its subvolume's root (`a/b`, empty for the root).
pub fn inode_path(r: &Reader, tree: TreeRoot, mut ino: u64) -> FsResult<Vec<u8>> {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    while ino != super::root::FIRST_FREE_OBJECTID {
        if parts.len() >= MAX_PATH_DEPTH {
            return Err(corrupt(format!(
                "inode {ino}: parent chain too long (loop?)"
            )));
        }
        let Some((parent, name)) = first_parent(r, tree, ino)? else {
            return Err(corrupt(format!(
                "directory inode {ino} has no parent reference"
            )));
        };
        if parent == ino {
            return Err(corrupt(format!("inode {ino} is its own parent")));
        }
        parts.push(name);
        ino = parent;
    }
    parts.reverse();
    Ok(parts.join(&b'/'))
}
