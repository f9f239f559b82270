//! btrfs: our own read-only reader, one file per on-disk structure.
//!
//! - [`superblock`]: the primary superblock (CRC32C checked).
//! - [`chunk`]: `sys_chunk_array` + chunk tree → logical-to-physical map (SINGLE, DUP, and the
//!   mirrored RAID1 profiles when this device holds a copy; striped/parity profiles and chunks
//!   on other devices are unsupported).
//! - [`tree`]: checked tree blocks and bounded range searches.
//! - [`root`]: the root tree: subvolumes, their links, the default subvolume.
//! - [`inode`], [`dir`], [`file`]: inodes, directory entries, file extents (inline, regular,
//!   preallocated, holes; zlib, LZO and zstd compression); [`lzo`]: btrfs's framing of LZO
//!   segments.
//!
//! [`open`] opens the default subvolume, as `mount` without `subvol=` does;
//! [`open_subvolume`] and [`open_subvolume_id`] open another one, as `subvol=` and `subvolid=`
//! do. Inside a subvolume, nested subvolumes look like directories and paths walk into them;
//! a nested-subvolume entry whose link does not belong to this parent (as in a snapshot of a
//! subvolume that contains subvolumes) shows as an empty directory, inode 2, as the kernel does.

mod chunk;
mod dir;
mod file;
mod inode;
mod lzo;
mod root;
mod superblock;
mod tree;

use crate::api::{split_path, DirEntry, FileKind, FileSystem, FsError, FsResult, Metadata, Volume};
use serde::Serialize;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use tree::{Reader, TreeRoot};

const FS: &str = "btrfs";
/// Inode number of the placeholder directory shown for an unreachable nested subvolume.
const EMPTY_SUBVOL_DIR_OBJECTID: u64 = 2;
/// Longest symlink target accepted.
const MAX_SYMLINK: u64 = 64 << 10;
/// Subvolume roots remembered per open filesystem.
const ROOT_CACHE: usize = 1024;
/// Deepest nesting of subvolumes followed when building paths.
const MAX_SUBVOL_DEPTH: usize = 4096;

pub(crate) fn corrupt(what: impl Into<String>) -> FsError {
    FsError::Corrupt {
        fs: FS,
        what: what.into(),
    }
}

pub(crate) fn unsupported(what: impl Into<String>) -> FsError {
    FsError::Unsupported {
        fs: FS,
        what: what.into(),
    }
}

fn field<const N: usize>(b: &[u8], off: usize) -> FsResult<[u8; N]> {
    off.checked_add(N)
        .and_then(|end| b.get(off..end))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| {
            corrupt(format!(
                "structure too short: {N} bytes at {off} of {}",
                b.len()
            ))
        })
}

pub(crate) fn le_u16(b: &[u8], off: usize) -> FsResult<u16> {
    field::<2>(b, off).map(u16::from_le_bytes)
}

pub(crate) fn le_u32(b: &[u8], off: usize) -> FsResult<u32> {
    field::<4>(b, off).map(u32::from_le_bytes)
}

pub(crate) fn le_u64(b: &[u8], off: usize) -> FsResult<u64> {
    field::<8>(b, off).map(u64::from_le_bytes)
}

pub(crate) fn read_exact(vol: &Volume, buf: &mut [u8], offset: u64, what: &str) -> FsResult<()> {
    vol.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            corrupt(format!(
                "{what} at byte {offset} (+{}) lies past the end of the {}-byte volume",
                buf.len(),
                vol.len()
            ))
        } else {
            FsError::Io(e)
        }
    })
}

/// A btrfs key: (objectid, type, offset), ordered in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub objectid: u64,
    pub ty: u8,
    pub offset: u64,
}

impl Key {
    /// Encoded size.
    pub const SIZE: usize = 17;

    pub fn new(objectid: u64, ty: u8, offset: u64) -> Key {
        Key {
            objectid,
            ty,
            offset,
        }
    }

    pub fn parse(b: &[u8]) -> FsResult<Key> {
        Ok(Key {
            objectid: le_u64(b, 0)?,
            ty: *b.get(8).ok_or_else(|| corrupt("short key"))?,
            offset: le_u64(b, 9)?,
        })
    }
}

/// One subvolume, as `btrfs subvolume list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subvolume {
    /// Subvolume id (`subvolid=`).
    pub id: u64,
    /// Path from the top-level subvolume, without a leading `/` (`@`, `@/home`).
    pub path: Vec<u8>,
    /// Id of the subvolume it is linked in (5 for the top level).
    pub parent_id: u64,
}

/// A btrfs filesystem opened at one subvolume.
pub struct BtrfsFs {
    r: Arc<Reader>,
    subvol: u64,
    root: TreeRoot,
    roots: Mutex<HashMap<u64, Option<TreeRoot>>>,
}

impl std::fmt::Debug for BtrfsFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BtrfsFs")
            .field("subvol", &self.subvol)
            .field("root", &self.root)
            .finish()
    }
}

/// Where a path leads.
#[derive(Debug, Clone, Copy)]
enum Loc {
    /// An inode of a subvolume.
    Inode {
        subvol: u64,
        tree: TreeRoot,
        ino: u64,
    },
    /// The empty placeholder directory of an unreachable nested subvolume.
    EmptySubvol,
}

fn load(vol: Volume) -> FsResult<Arc<Reader>> {
    let sb = superblock::Superblock::read(&vol)?;
    let sys = chunk::ChunkMap::from_sys_array(&sb.sys_chunk_array, sb.devid)?;
    let boot = Reader::new(vol.clone(), sb.clone(), sys.clone());
    let mut map = sys;
    let chunk_root = TreeRoot {
        bytenr: sb.chunk_root,
        level: sb.chunk_root_level,
    };
    let min = Key::new(chunk::FIRST_CHUNK_TREE_OBJECTID, chunk::CHUNK_ITEM_KEY, 0);
    let max = Key::new(
        chunk::FIRST_CHUNK_TREE_OBJECTID,
        chunk::CHUNK_ITEM_KEY,
        u64::MAX,
    );
    boot.walk(chunk_root, min, max, &mut |k, d| {
        let (c, _) = chunk::parse_chunk(d, sb.devid)?;
        map.insert(k.offset, c)?;
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(Arc::new(Reader::new(vol, sb, map)))
}

fn at_subvol(r: Arc<Reader>, id: u64) -> FsResult<BtrfsFs> {
    let Some(root) = root::subvol_root(&r, id)? else {
        return Err(FsError::NotFound {
            path: format!("subvolid={id}"),
        });
    };
    Ok(BtrfsFs {
        r,
        subvol: id,
        root,
        roots: Mutex::new(HashMap::new()),
    })
}

/// Opens the default subvolume of the btrfs filesystem on `vol`.
pub fn open(vol: Volume) -> FsResult<BtrfsFs> {
    let r = load(vol)?;
    let id = root::default_subvol(&r)?;
    at_subvol(r, id)
}

/// Opens subvolume `id` (`subvolid=`; 5 is the top level).
pub fn open_subvolume_id(vol: Volume, id: u64) -> FsResult<BtrfsFs> {
    at_subvol(load(vol)?, id)
}

/// Opens the subvolume at `subvol`, a path from the top-level subvolume as fstab's `subvol=`
/// gives it (`@`, `/@/home`, `/` for the top level). A path that ends in a plain directory
/// rather than a subvolume is `NotFound`, as the kernel refuses to mount it.
pub fn open_subvolume(vol: Volume, subvol: &[u8]) -> FsResult<BtrfsFs> {
    let top = at_subvol(load(vol)?, root::FS_TREE_OBJECTID)?;
    if split_path(subvol).next().is_none() {
        return Ok(top);
    }
    match top.resolve(subvol)?.0 {
        Loc::Inode {
            subvol: id, ino, ..
        } if ino == root::FIRST_FREE_OBJECTID => at_subvol(top.r.clone(), id),
        _ => Err(FsError::NotFound {
            path: format!(
                "subvol={} (not a subvolume)",
                String::from_utf8_lossy(subvol)
            ),
        }),
    }
}

fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

impl BtrfsFs {
    /// The id of the subvolume this view is rooted at.
    pub fn subvolume_id(&self) -> u64 {
        self.subvol
    }

    /// The filesystem label.
    pub fn label(&self) -> &[u8] {
        &self.r.sb.label
    }

    /// The filesystem UUID (as `blkid` shows it).
    pub fn uuid(&self) -> [u8; 16] {
        self.r.sb.fsid
    }

    /// Transaction generation of the superblock.
    pub fn generation(&self) -> u64 {
        self.r.sb.generation
    }

    /// Bytes in use, from the superblock.
    pub fn bytes_used(&self) -> u64 {
        self.r.sb.bytes_used
    }

    /// Size of the filesystem in bytes, from the superblock.
    pub fn total_bytes(&self) -> u64 {
        self.r.sb.total_bytes
    }

    /// Every subvolume of the filesystem (not the top level itself), by id.
    pub fn list_subvolumes(&self) -> FsResult<Vec<Subvolume>> {
        let refs = root::all_backrefs(&self.r)?;
        let by_id: HashMap<u64, &(u64, u64, root::RootRef)> =
            refs.iter().map(|e| (e.0, e)).collect();
        let mut paths: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut out = Vec::new();
        for &(id, parent, _) in &refs {
            // Build the path by following parents up to the top level.
            let mut chain = Vec::new();
            let mut cur = id;
            while cur != root::FS_TREE_OBJECTID && !paths.contains_key(&cur) {
                if chain.len() > MAX_SUBVOL_DEPTH || chain.contains(&cur) {
                    return Err(corrupt(format!("subvolume {id}: parent chain loops")));
                }
                chain.push(cur);
                match by_id.get(&cur) {
                    Some(e) => cur = e.1,
                    None => break,
                }
            }
            if cur != root::FS_TREE_OBJECTID && !paths.contains_key(&cur) {
                // Linked below a subvolume that has no link itself (being deleted): skip.
                continue;
            }
            while let Some(sub) = chain.pop() {
                let (_, p, rref) = by_id[&sub];
                let mut path = paths.get(p).cloned().unwrap_or_default();
                let Some(ptree) = self.tree_of(*p)? else {
                    break;
                };
                let dir = inode::inode_path(&self.r, ptree, rref.dirid)?;
                for part in [&dir, &rref.name] {
                    if part.is_empty() {
                        continue;
                    }
                    if !path.is_empty() {
                        path.push(b'/');
                    }
                    path.extend_from_slice(part);
                }
                paths.insert(sub, path);
            }
            if let Some(path) = paths.get(&id) {
                out.push(Subvolume {
                    id,
                    path: path.clone(),
                    parent_id: parent,
                });
            }
        }
        out.sort_by_key(|s| s.id);
        out.dedup_by_key(|s| s.id);
        Ok(out)
    }

    fn tree_of(&self, id: u64) -> FsResult<Option<TreeRoot>> {
        if id == self.subvol {
            return Ok(Some(self.root));
        }
        if let Ok(m) = self.roots.lock() {
            if let Some(t) = m.get(&id) {
                return Ok(*t);
            }
        }
        let t = root::subvol_root(&self.r, id)?;
        if let Ok(mut m) = self.roots.lock() {
            if m.len() >= ROOT_CACHE {
                m.clear();
            }
            m.insert(id, t);
        }
        Ok(t)
    }

    /// Follows an entry that points to subvolume `child` from directory `dir` of `parent`.
    fn enter_subvol(&self, parent: u64, dir: u64, name: &[u8], child: u64) -> FsResult<Loc> {
        match root::root_ref(&self.r, parent, child)? {
            Some(rr) if rr.dirid == dir && rr.name == name => {}
            _ => return Ok(Loc::EmptySubvol),
        }
        match self.tree_of(child)? {
            Some(tree) => Ok(Loc::Inode {
                subvol: child,
                tree,
                ino: root::FIRST_FREE_OBJECTID,
            }),
            None => Ok(Loc::EmptySubvol),
        }
    }

    /// Walks `path`; returns where it leads and the kind its directory entry records.
    fn resolve(&self, path: &[u8]) -> FsResult<(Loc, FileKind)> {
        let mut cur = Loc::Inode {
            subvol: self.subvol,
            tree: self.root,
            ino: root::FIRST_FREE_OBJECTID,
        };
        let mut kind = FileKind::Dir;
        for comp in split_path(path) {
            if kind != FileKind::Dir {
                return Err(FsError::NotADirectory { path: lossy(path) });
            }
            let Loc::Inode { subvol, tree, ino } = cur else {
                return Err(FsError::NotFound { path: lossy(path) });
            };
            let Some(e) = dir::lookup(&self.r, tree, ino, comp)? else {
                return Err(FsError::NotFound { path: lossy(path) });
            };
            match e.location.ty {
                inode::INODE_ITEM_KEY => {
                    cur = Loc::Inode {
                        subvol,
                        tree,
                        ino: e.location.objectid,
                    };
                    kind = e.kind();
                }
                root::ROOT_ITEM_KEY => {
                    cur = self.enter_subvol(subvol, ino, comp, e.location.objectid)?;
                    kind = FileKind::Dir;
                }
                other => {
                    return Err(corrupt(format!(
                        "directory entry {:?} points to key type {other}",
                        lossy(comp)
                    )))
                }
            }
        }
        Ok((cur, kind))
    }

    /// The inode at `path` (None for the empty placeholder directory).
    fn inode_at(&self, path: &[u8]) -> FsResult<Option<(TreeRoot, u64, inode::InodeItem)>> {
        match self.resolve(path)?.0 {
            Loc::EmptySubvol => Ok(None),
            Loc::Inode { tree, ino, .. } => match inode::read_inode(&self.r, tree, ino)? {
                Some(i) => Ok(Some((tree, ino, i))),
                None => Err(corrupt(format!(
                    "{}: directory entry points to missing inode {ino}",
                    lossy(path)
                ))),
            },
        }
    }

    fn read_inode_data(&self, tree: TreeRoot, ino: u64, size: u64) -> FsResult<Vec<u8>> {
        let len = usize::try_from(size).map_err(|_| corrupt("file size beyond memory"))?;
        let mut out = vec![0u8; len];
        file::read_data(&self.r, tree, ino, &mut out)?;
        Ok(out)
    }
}

impl FileSystem for BtrfsFs {
    fn fs_type(&self) -> &'static str {
        FS
    }

    fn metadata(&self, path: &[u8]) -> FsResult<Metadata> {
        Ok(match self.inode_at(path)? {
            None => Metadata {
                kind: FileKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: 0,
                mtime: None,
                inode: Some(EMPTY_SUBVOL_DIR_OBJECTID),
            },
            Some((_, ino, i)) => Metadata {
                kind: i.kind(),
                mode: i.mode & 0o7777,
                uid: i.uid,
                gid: i.gid,
                size: i.size,
                mtime: Some(i.mtime),
                inode: Some(ino),
            },
        })
    }

    fn read_dir(&self, path: &[u8]) -> FsResult<Vec<DirEntry>> {
        let Some((tree, ino, i)) = self.inode_at(path)? else {
            return Ok(Vec::new());
        };
        if i.kind() != FileKind::Dir {
            return Err(FsError::NotADirectory { path: lossy(path) });
        }
        Ok(dir::list(&self.r, tree, ino)?
            .into_iter()
            .map(|e| DirEntry {
                kind: if e.location.ty == root::ROOT_ITEM_KEY {
                    FileKind::Dir
                } else {
                    e.kind()
                },
                name: e.name,
            })
            .collect())
    }

    fn read_link(&self, path: &[u8]) -> FsResult<Vec<u8>> {
        let Some((tree, ino, i)) = self.inode_at(path)? else {
            return Err(FsError::NotASymlink { path: lossy(path) });
        };
        if i.kind() != FileKind::Symlink {
            return Err(FsError::NotASymlink { path: lossy(path) });
        }
        if i.size > MAX_SYMLINK {
            return Err(corrupt(format!(
                "{}: symlink target of {} bytes",
                lossy(path),
                i.size
            )));
        }
        self.read_inode_data(tree, ino, i.size)
    }

    fn read_file(&self, path: &[u8], limit: u64) -> FsResult<Vec<u8>> {
        let Some((tree, ino, i)) = self.inode_at(path)? else {
            return Err(FsError::IsADirectory { path: lossy(path) });
        };
        match i.kind() {
            FileKind::File => {}
            FileKind::Dir => return Err(FsError::IsADirectory { path: lossy(path) }),
            k => {
                return Err(unsupported(format!(
                    "{}: reading a {k:?}, not a regular file",
                    lossy(path)
                )))
            }
        }
        if i.size > limit {
            return Err(FsError::TooLarge {
                path: lossy(path),
                size: i.size,
                limit,
            });
        }
        self.read_inode_data(tree, ino, i.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_objectid_type_offset() {
        assert!(Key::new(1, 200, 0) < Key::new(2, 0, 0));
        assert!(Key::new(1, 1, 9) < Key::new(1, 2, 0));
        assert!(Key::parse(&[0u8; 16]).is_err());
    }

    #[test]
    fn garbage_volume_is_an_error() {
        let v: Volume = Arc::new(vec![0u8; 1 << 20]);
        assert!(matches!(open(v), Err(FsError::Corrupt { .. })));
        let v: Volume = Arc::new(vec![0u8; 100]);
        assert!(open(v).is_err());
    }
}
