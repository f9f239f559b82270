//! The root tree: ROOT_ITEMs (where each tree starts), ROOT_REF/ROOT_BACKREF (where a
//! subvolume is linked into its parent) and the default subvolume (the DIR_ITEM `default` in
//! the root-tree directory, object id 6).

use super::dir;
use super::tree::{Reader, TreeRoot, MAX_LEVEL};
use super::{corrupt, le_u16, le_u64, Key};
use crate::api::FsResult;
use std::ops::ControlFlow;

/// The top-level subvolume (`subvolid=5`).
pub const FS_TREE_OBJECTID: u64 = 5;
/// First id of user subvolumes (and first inode number of a subvolume).
pub const FIRST_FREE_OBJECTID: u64 = 256;
/// Last id of user subvolumes.
pub const LAST_FREE_OBJECTID: u64 = -256i64 as u64;
/// Key type of a root item.
pub const ROOT_ITEM_KEY: u8 = 132;
/// Key type of a root back reference (child → parent).
pub const ROOT_BACKREF_KEY: u8 = 144;
/// Key type of a root reference (parent → child).
pub const ROOT_REF_KEY: u8 = 156;
/// Size of a root item up to and including `level`.
const ROOT_ITEM_MIN: usize = 239;

/// Parses a ROOT_ITEM: the root block of that tree.
pub fn parse_root_item(data: &[u8]) -> FsResult<TreeRoot> {
    if data.len() < ROOT_ITEM_MIN {
        return Err(corrupt(format!("root item of {} bytes", data.len())));
    }
    let level = data[238];
    if level >= MAX_LEVEL {
        return Err(corrupt(format!("root item with level {level}")));
    }
    Ok(TreeRoot {
        bytenr: le_u64(data, 176)?,
        level,
    })
}

/// A ROOT_REF or ROOT_BACKREF: the directory inode (in the parent) and the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootRef {
    /// Directory of the parent subvolume holding the entry.
    pub dirid: u64,
    /// Entry name.
    pub name: Vec<u8>,
}

/// Parses the data of a ROOT_REF / ROOT_BACKREF.
pub fn parse_root_ref(data: &[u8]) -> FsResult<RootRef> {
    let dirid = le_u64(data, 0)?;
    let len = le_u16(data, 16)? as usize;
    let name = data
        .get(18..18 + len)
        .ok_or_else(|| corrupt("root ref name outside its item"))?;
    Ok(RootRef {
        dirid,
        name: name.to_vec(),
    })
}

/// The root tree itself.
pub fn root_tree(r: &Reader) -> TreeRoot {
    TreeRoot {
        bytenr: r.sb.root,
        level: r.sb.root_level,
    }
}

/// Where subvolume (or tree) `id` starts, if it exists.
pub fn subvol_root(r: &Reader, id: u64) -> FsResult<Option<TreeRoot>> {
    let min = Key::new(id, ROOT_ITEM_KEY, 0);
    let max = Key::new(id, ROOT_ITEM_KEY, u64::MAX);
    match r.find_last(root_tree(r), min, max)? {
        Some((_, data)) => Ok(Some(parse_root_item(&data)?)),
        None => Ok(None),
    }
}

/// The default subvolume: the target of `default` in the root-tree directory, else 5.
pub fn default_subvol(r: &Reader) -> FsResult<u64> {
    let e = dir::lookup(r, root_tree(r), r.sb.root_dir_objectid, b"default")?;
    match e {
        Some(e) if e.location.ty == ROOT_ITEM_KEY => Ok(e.location.objectid),
        Some(e) => Err(corrupt(format!(
            "default subvolume entry points to key type {}",
            e.location.ty
        ))),
        None => Ok(FS_TREE_OBJECTID),
    }
}

/// The ROOT_REF linking `child` into `parent`, if there is one.
pub fn root_ref(r: &Reader, parent: u64, child: u64) -> FsResult<Option<RootRef>> {
    match r.find(root_tree(r), Key::new(parent, ROOT_REF_KEY, child))? {
        Some(d) => Ok(Some(parse_root_ref(&d)?)),
        None => Ok(None),
    }
}

/// Every subvolume id with a ROOT_ITEM and a back reference, with its parent and link.
pub fn all_backrefs(r: &Reader) -> FsResult<Vec<(u64, u64, RootRef)>> {
    let mut out = Vec::new();
    let min = Key::new(FIRST_FREE_OBJECTID, 0, 0);
    let max = Key::new(LAST_FREE_OBJECTID, u8::MAX, u64::MAX);
    r.walk(root_tree(r), min, max, &mut |k, d| {
        if k.ty == ROOT_BACKREF_KEY {
            if out.len() >= crate::api::MAX_DIR_ENTRIES {
                return Err(corrupt("too many subvolumes"));
            }
            out.push((k.objectid, k.offset, parse_root_ref(d)?));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(out)
}
