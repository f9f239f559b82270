//! Chunks: the logical-to-physical map, bootstrapped from the superblock's `sys_chunk_array`
//! and completed from the chunk tree.
//!
//! Profiles whose every stripe holds a full copy (SINGLE, DUP, RAID1/1C3/1C4) are readable from
//! this one device when one of its stripes lives on it; striped or parity profiles (RAID0,
//! RAID10, RAID5, RAID6) and chunks living only on other devices are reported as unsupported
//! when something needs them.

use super::{corrupt, le_u16, le_u64, unsupported, Key};
use crate::api::FsResult;
use std::collections::BTreeMap;

/// Key type of a chunk item.
pub const CHUNK_ITEM_KEY: u8 = 228;
/// Object id of chunk items.
pub const FIRST_CHUNK_TREE_OBJECTID: u64 = 256;
/// Size of the fixed part of a chunk item.
const CHUNK_FIXED: usize = 48;
/// Size of one stripe.
const STRIPE_SIZE: usize = 32;
/// Chunks this reader keeps at most (a 1 PiB filesystem of 1 GiB chunks has a million).
pub const MAX_CHUNKS: usize = 1 << 20;

const RAID0: u64 = 1 << 3;
#[cfg(test)]
const DUP: u64 = 1 << 5;
const RAID10: u64 = 1 << 6;
const RAID5: u64 = 1 << 7;
const RAID6: u64 = 1 << 8;

/// One chunk: `length` logical bytes from the key's offset, and the physical copies on this
/// device (empty when it is unreadable here; `problem` says why).
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Logical length.
    pub length: u64,
    /// Physical offsets of the full copies on this device.
    pub copies: Vec<u64>,
    /// Why the chunk cannot be read from this device, if it cannot.
    pub problem: Option<String>,
}

/// Parses one chunk item (`data` starts at the item) and returns it with its encoded size.
pub fn parse_chunk(data: &[u8], devid: u64) -> FsResult<(Chunk, usize)> {
    let length = le_u64(data, 0)?;
    let kind = le_u64(data, 24)?;
    let num_stripes = le_u16(data, 44)? as usize;
    if num_stripes == 0 {
        return Err(corrupt("chunk item with zero stripes"));
    }
    if length == 0 {
        return Err(corrupt("chunk item of length 0"));
    }
    let size = CHUNK_FIXED + num_stripes * STRIPE_SIZE;
    if data.len() < size {
        return Err(corrupt(format!(
            "chunk item with {num_stripes} stripes needs {size} bytes, has {}",
            data.len()
        )));
    }
    let mut copies = Vec::new();
    let mut problem = None;
    if kind & (RAID0 | RAID10 | RAID5 | RAID6) != 0 {
        problem = Some(format!(
            "chunk profile {kind:#x} (RAID0/10/5/6) stripes data over several devices"
        ));
    } else {
        // SINGLE, DUP and RAID1/1C3/1C4: every stripe on this device is a full copy.
        for i in 0..num_stripes {
            let off = CHUNK_FIXED + i * STRIPE_SIZE;
            if le_u64(data, off)? == devid {
                copies.push(le_u64(data, off + 8)?);
            }
        }
        if copies.is_empty() {
            problem = Some("chunk lives on another device of a multi-device filesystem".into());
        }
    }
    Ok((
        Chunk {
            length,
            copies,
            problem,
        },
        size,
    ))
}

/// The logical-to-physical map.
#[derive(Debug, Default, Clone)]
pub struct ChunkMap {
    chunks: BTreeMap<u64, Chunk>,
}

impl ChunkMap {
    /// The map of the superblock's bootstrap array.
    pub fn from_sys_array(array: &[u8], devid: u64) -> FsResult<ChunkMap> {
        let mut map = ChunkMap::default();
        let mut pos = 0usize;
        while pos < array.len() {
            let key = Key::parse(array.get(pos..).unwrap_or_default())?;
            pos += Key::SIZE;
            if key.ty != CHUNK_ITEM_KEY {
                return Err(corrupt(format!(
                    "sys_chunk_array holds key type {} instead of a chunk item",
                    key.ty
                )));
            }
            let (chunk, size) = parse_chunk(array.get(pos..).unwrap_or_default(), devid)?;
            pos += size;
            map.insert(key.offset, chunk)?;
        }
        if map.chunks.is_empty() {
            return Err(corrupt("empty sys_chunk_array"));
        }
        Ok(map)
    }

    /// Adds a chunk starting at logical `start`.
    pub fn insert(&mut self, start: u64, chunk: Chunk) -> FsResult<()> {
        if start.checked_add(chunk.length).is_none() {
            return Err(corrupt(format!("chunk at {start} overflows")));
        }
        if self.chunks.len() >= MAX_CHUNKS {
            return Err(corrupt("more chunks than this reader accepts"));
        }
        self.chunks.insert(start, chunk);
        Ok(())
    }

    /// The physical copies of `logical` and how many bytes from there stay in the chunk.
    pub fn map(&self, logical: u64) -> FsResult<(Vec<u64>, u64)> {
        let Some((&start, chunk)) = self.chunks.range(..=logical).next_back() else {
            return Err(corrupt(format!("logical address {logical} is in no chunk")));
        };
        let delta = logical - start;
        if delta >= chunk.length {
            return Err(corrupt(format!("logical address {logical} is in no chunk")));
        }
        if let Some(p) = &chunk.problem {
            return Err(unsupported(format!("logical address {logical}: {p}")));
        }
        let mut out = Vec::with_capacity(chunk.copies.len());
        for &phys in &chunk.copies {
            out.push(
                phys.checked_add(delta)
                    .ok_or_else(|| corrupt(format!("chunk at {start} maps past 2^64")))?,
            );
        }
        Ok((out, chunk.length - delta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk_bytes(len: u64, kind: u64, stripes: &[(u64, u64)]) -> Vec<u8> {
        let mut v = vec![0u8; CHUNK_FIXED];
        v[0..8].copy_from_slice(&len.to_le_bytes());
        v[24..32].copy_from_slice(&kind.to_le_bytes());
        v[44..46].copy_from_slice(&(stripes.len() as u16).to_le_bytes());
        for (dev, off) in stripes {
            let mut s = vec![0u8; STRIPE_SIZE];
            s[0..8].copy_from_slice(&dev.to_le_bytes());
            s[8..16].copy_from_slice(&off.to_le_bytes());
            v.extend(s);
        }
        v
    }

    #[test]
    fn maps_single_and_dup_and_refuses_raid0() {
        let mut m = ChunkMap::default();
        let (c, _) = parse_chunk(&chunk_bytes(100, 2, &[(1, 1000)]), 1).unwrap();
        m.insert(0, c).unwrap();
        let (c, _) = parse_chunk(&chunk_bytes(100, 4 | DUP, &[(1, 5000), (1, 6000)]), 1).unwrap();
        m.insert(100, c).unwrap();
        let (c, _) = parse_chunk(&chunk_bytes(100, 1 | RAID0, &[(1, 0), (2, 0)]), 1).unwrap();
        m.insert(200, c).unwrap();
        assert_eq!(m.map(10).unwrap(), (vec![1010], 90));
        assert_eq!(m.map(150).unwrap(), (vec![5050, 6050], 50));
        assert!(matches!(
            m.map(250),
            Err(crate::FsError::Unsupported { .. })
        ));
        assert!(matches!(m.map(300), Err(crate::FsError::Corrupt { .. })));
        assert!(parse_chunk(&chunk_bytes(100, 2, &[(1, 0)])[..50], 1).is_err());
    }
}
