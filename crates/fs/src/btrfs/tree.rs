//! Tree blocks (nodes and leaves) and bounded range searches over a B-tree.
//!
//! Every block read is checked: CRC32C over bytes 0x20..nodesize, its own logical address,
//! the filesystem's metadata UUID, its level (exactly one below its parent), sorted keys, and
//! item offsets/sizes inside the block. A search never descends more than [`MAX_LEVEL`] levels,
//! never visits one block twice (a loop is corruption) and gives up after [`MAX_NODES`] blocks
//! or [`MAX_ITEMS`] items.

use super::chunk::ChunkMap;
use super::superblock::Superblock;
use super::{corrupt, le_u32, le_u64, Key};
use crate::api::{FsError, FsResult, Volume};
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

/// Levels of a btrfs tree (leaves are level 0, so a root has level < 8).
pub const MAX_LEVEL: u8 = 8;
/// Blocks one search may visit.
pub const MAX_NODES: usize = 1 << 18;
/// Items one search may look at.
pub const MAX_ITEMS: usize = 1 << 23;
/// Size of the tree-block header.
pub const HEADER_SIZE: usize = 0x65;
/// Size of a key pointer in a node.
const KEY_PTR_SIZE: usize = 33;
/// Size of an item header in a leaf.
const ITEM_SIZE: usize = 25;
/// Blocks kept in the cache.
const CACHE_BLOCKS: usize = 512;

/// What a search calls on each item in range: `Break` stops the search.
pub type Visitor<'a> = dyn FnMut(Key, &[u8]) -> FsResult<ControlFlow<()>> + 'a;

/// Where a tree starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeRoot {
    /// Logical address of the root block.
    pub bytenr: u64,
    /// Its level.
    pub level: u8,
}

/// A checked tree block.
#[derive(Debug)]
pub struct Node {
    buf: Vec<u8>,
    level: u8,
    nritems: usize,
}

impl Node {
    /// Checks a raw block read from `logical`.
    pub fn parse(buf: Vec<u8>, logical: u64, sb: &Superblock) -> FsResult<Node> {
        let stored = le_u32(&buf, 0)?;
        let computed = crc32c::crc32c(buf.get(0x20..).unwrap_or_default());
        if stored != computed {
            return Err(corrupt(format!(
                "tree block at logical {logical}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            )));
        }
        if buf.get(0x20..0x30) != Some(&sb.metadata_uuid[..]) {
            return Err(corrupt(format!(
                "tree block at logical {logical}: belongs to another filesystem"
            )));
        }
        let bytenr = le_u64(&buf, 0x30)?;
        if bytenr != logical {
            return Err(corrupt(format!(
                "tree block at logical {logical} says it is at {bytenr}"
            )));
        }
        let nritems = le_u32(&buf, 0x60)? as usize;
        let level = *buf.get(0x64).ok_or_else(|| corrupt("short tree block"))?;
        if level >= MAX_LEVEL {
            return Err(corrupt(format!(
                "tree block at logical {logical}: level {level}"
            )));
        }
        let per = if level == 0 { ITEM_SIZE } else { KEY_PTR_SIZE };
        let need = nritems
            .checked_mul(per)
            .and_then(|n| n.checked_add(HEADER_SIZE))
            .ok_or_else(|| corrupt("item count overflow"))?;
        if need > buf.len() {
            return Err(corrupt(format!(
                "tree block at logical {logical}: {nritems} items do not fit"
            )));
        }
        let node = Node {
            buf,
            level,
            nritems,
        };
        let mut prev: Option<Key> = None;
        for i in 0..nritems {
            let k = node.key(i)?;
            if let Some(p) = prev {
                if k <= p {
                    return Err(corrupt(format!(
                        "tree block at logical {logical}: keys out of order at item {i}"
                    )));
                }
            }
            prev = Some(k);
            if level == 0 {
                node.item_data(i)?;
            }
        }
        Ok(node)
    }

    /// Level (0 for a leaf).
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Number of items or key pointers.
    pub fn nritems(&self) -> usize {
        self.nritems
    }

    fn entry_offset(&self, i: usize) -> usize {
        let per = if self.level == 0 {
            ITEM_SIZE
        } else {
            KEY_PTR_SIZE
        };
        HEADER_SIZE + i * per
    }

    /// Key of item / pointer `i`.
    pub fn key(&self, i: usize) -> FsResult<Key> {
        Key::parse(self.buf.get(self.entry_offset(i)..).unwrap_or_default())
    }

    /// Child block address of pointer `i` (nodes only).
    pub fn child(&self, i: usize) -> FsResult<u64> {
        le_u64(&self.buf, self.entry_offset(i) + Key::SIZE)
    }

    /// Data of item `i` (leaves only), bounds-checked.
    pub fn item_data(&self, i: usize) -> FsResult<&[u8]> {
        let at = self.entry_offset(i) + Key::SIZE;
        let off = le_u32(&self.buf, at)? as usize;
        let size = le_u32(&self.buf, at + 4)? as usize;
        let start = HEADER_SIZE + off;
        let end = start
            .checked_add(size)
            .ok_or_else(|| corrupt("item size overflow"))?;
        let items_end = HEADER_SIZE + self.nritems * ITEM_SIZE;
        if start < items_end || end > self.buf.len() {
            return Err(corrupt(format!(
                "leaf item {i}: data {off}+{size} outside the block"
            )));
        }
        Ok(&self.buf[start..end])
    }
}

/// Shared reading state: the volume, superblock, chunk map and a small block cache.
pub struct Reader {
    /// The device.
    pub vol: Volume,
    /// Its superblock.
    pub sb: Superblock,
    /// Logical-to-physical map.
    pub chunks: ChunkMap,
    cache: Mutex<HashMap<u64, Arc<Node>>>,
}

/// Search state of one operation: blocks and items seen.
#[derive(Default)]
pub struct Budget {
    visited: HashSet<u64>,
    items: usize,
}

impl Budget {
    fn node(&mut self, logical: u64) -> FsResult<()> {
        if !self.visited.insert(logical) {
            return Err(corrupt(format!(
                "tree block {logical} reached twice in one search (loop)"
            )));
        }
        if self.visited.len() > MAX_NODES {
            return Err(corrupt("search visits too many tree blocks"));
        }
        Ok(())
    }
    fn item(&mut self) -> FsResult<()> {
        self.items += 1;
        if self.items > MAX_ITEMS {
            return Err(corrupt("search visits too many items"));
        }
        Ok(())
    }
}

impl Reader {
    /// A reader over `vol` with an empty cache.
    pub fn new(vol: Volume, sb: Superblock, chunks: ChunkMap) -> Reader {
        Reader {
            vol,
            sb,
            chunks,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Reads `buf.len()` bytes at `logical` (from the first copy), across chunks if needed.
    pub fn read_logical(&self, buf: &mut [u8], logical: u64) -> FsResult<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = logical
                .checked_add(done as u64)
                .ok_or_else(|| corrupt("logical address overflow"))?;
            let (copies, left) = self.chunks.map(at)?;
            let n = (buf.len() - done).min(usize::try_from(left).unwrap_or(usize::MAX));
            let mut last = None;
            for phys in copies {
                match super::read_exact(&self.vol, &mut buf[done..done + n], phys, "data") {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
            done += n;
        }
        Ok(())
    }

    /// Reads and checks the tree block at `logical` (trying each copy until one is good).
    pub fn read_node(&self, logical: u64) -> FsResult<Arc<Node>> {
        if let Ok(cache) = self.cache.lock() {
            if let Some(n) = cache.get(&logical) {
                return Ok(n.clone());
            }
        }
        let nodesize = self.sb.nodesize as usize;
        let (copies, left) = self.chunks.map(logical)?;
        if left < nodesize as u64 {
            return Err(corrupt(format!(
                "tree block at logical {logical} crosses the end of its chunk"
            )));
        }
        let mut err: FsError = corrupt(format!("tree block at logical {logical}: no copy"));
        for phys in copies {
            let mut buf = vec![0u8; nodesize];
            if let Err(e) = super::read_exact(&self.vol, &mut buf, phys, "tree block") {
                err = e;
                continue;
            }
            match Node::parse(buf, logical, &self.sb) {
                Ok(node) => {
                    let node = Arc::new(node);
                    if let Ok(mut cache) = self.cache.lock() {
                        if cache.len() >= CACHE_BLOCKS {
                            cache.clear();
                        }
                        cache.insert(logical, node.clone());
                    }
                    return Ok(node);
                }
                Err(e) => err = e,
            }
        }
        Err(err)
    }

    /// Calls `f` on every item with `min <= key <= max`, in key order, until it breaks.
    pub fn walk(&self, root: TreeRoot, min: Key, max: Key, f: &mut Visitor<'_>) -> FsResult<()> {
        let mut budget = Budget::default();
        self.walk_node(root.bytenr, root.level, min, max, f, &mut budget)
            .map(|_| ())
    }

    fn walk_node(
        &self,
        logical: u64,
        level: u8,
        min: Key,
        max: Key,
        f: &mut Visitor<'_>,
        budget: &mut Budget,
    ) -> FsResult<ControlFlow<()>> {
        budget.node(logical)?;
        let node = self.read_node(logical)?;
        if node.level() != level {
            return Err(corrupt(format!(
                "tree block at logical {logical} has level {}, expected {level}",
                node.level()
            )));
        }
        let n = node.nritems();
        if level == 0 {
            for i in 0..n {
                budget.item()?;
                let k = node.key(i)?;
                if k < min {
                    continue;
                }
                if k > max {
                    return Ok(ControlFlow::Break(()));
                }
                if f(k, node.item_data(i)?)?.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            return Ok(ControlFlow::Continue(()));
        }
        for i in 0..n {
            budget.item()?;
            let k = node.key(i)?;
            if k > max {
                return Ok(ControlFlow::Break(()));
            }
            if i + 1 < n && node.key(i + 1)? <= min {
                continue;
            }
            let child = node.child(i)?;
            if self
                .walk_node(child, level - 1, min, max, f, budget)?
                .is_break()
            {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The data of the item with exactly this key.
    pub fn find(&self, root: TreeRoot, key: Key) -> FsResult<Option<Vec<u8>>> {
        let mut out = None;
        self.walk(root, key, key, &mut |_, d| {
            out = Some(d.to_vec());
            Ok(ControlFlow::Break(()))
        })?;
        Ok(out)
    }

    /// The item with the largest key in `[min, max]`, e.g. the newest ROOT_ITEM of a tree.
    pub fn find_last(
        &self,
        root: TreeRoot,
        min: Key,
        max: Key,
    ) -> FsResult<Option<(Key, Vec<u8>)>> {
        let mut out = None;
        self.walk(root, min, max, &mut |k, d| {
            out = Some((k, d.to_vec()));
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(out)
    }
}
