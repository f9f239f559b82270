//! L1 and L2 tables: how a guest cluster maps to the file.
//!
//! The L1 table (contiguous, `l1_size` 64-bit entries) points at L2 tables of one cluster
//! each. An L2 entry is 64 bits (or 128 with extended L2 entries: the entry, then a bitmap of
//! 32 "allocated" and 32 "reads as zeros" bits, one pair per subcluster):
//!
//! - bit 62 set: a compressed cluster (see [`super::compressed`]);
//! - bit 0 set (standard entries only): the cluster reads as zeros;
//! - host offset (bits 9..56) 0: unallocated, read from the backing file or as zeros;
//! - otherwise the data is at the host offset, which must be cluster-aligned.
//!
//! Tables are cached ([`L2Cache`], a small LRU behind a mutex) so that sequential 4 MiB reads
//! load each table once.

use super::error::Qcow2Error;
use std::sync::{Arc, Mutex};

/// Bits 9..56 of an L1 or L2 entry: the host offset.
pub const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// L2 entry bit 62: compressed cluster.
pub const COMPRESSED: u64 = 1 << 62;
/// L2 entry bit 0 (standard entries): reads as zeros.
pub const ZERO: u64 = 1;
/// Memory the L2 cache may hold: 16 MiB, 256 tables of 64 KiB clusters (128 GiB of guest
/// disk) or 8 of 2 MiB clusters; at least two tables are kept whatever the cluster size.
pub const L2_CACHE_BYTES: u64 = 16 << 20;

/// What one cluster or subcluster of the guest reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Stored in the host cluster at this offset (subclusters lie at their place in it).
    Data(u64),
    /// Reads as zeros.
    Zero,
    /// Not allocated here: the backing file, or zeros.
    Unallocated,
    /// A compressed cluster; the L2 entry.
    Compressed(u64),
}

/// Classifies a standard (64-bit) L2 entry, as qemu does.
pub fn standard(entry: u64) -> Unit {
    if entry & COMPRESSED != 0 {
        Unit::Compressed(entry)
    } else if entry & ZERO != 0 {
        Unit::Zero
    } else if entry & OFFSET_MASK == 0 {
        Unit::Unallocated
    } else {
        Unit::Data(entry & OFFSET_MASK)
    }
}

/// Classifies subcluster `sc` (0..32) of an extended L2 entry with `bitmap`, as qemu does.
/// A bitmap that marks a subcluster both allocated and
/// zero, or allocated without a host cluster, is an error (`None`).
pub fn extended(entry: u64, bitmap: u64, sc: u32) -> Option<Unit> {
    if entry & COMPRESSED != 0 {
        return Some(Unit::Compressed(entry));
    }
    let alloc = bitmap & 0xffff_ffff;
    let zero = bitmap >> 32;
    let host = entry & OFFSET_MASK;
    if host == 0 {
        if alloc != 0 {
            return None;
        }
    } else if alloc & zero != 0 {
        return None;
    }
    Some(if zero >> sc & 1 != 0 {
        Unit::Zero
    } else if alloc >> sc & 1 != 0 {
        Unit::Data(host)
    } else {
        Unit::Unallocated
    })
}

/// A loaded L2 table: the raw big-endian words decoded (two per entry when extended).
pub type L2Table = Arc<[u64]>;

/// Decodes a table cluster.
pub fn decode_table(raw: &[u8]) -> L2Table {
    raw.chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from_be_bytes(a)
        })
        .collect()
}

/// A least-recently-used cache of L2 tables by host offset.
#[derive(Debug)]
pub struct L2Cache {
    slots: Mutex<Vec<(u64, L2Table)>>,
    cap: usize,
}

impl L2Cache {
    /// A cache for tables of `cluster_size` bytes within [`L2_CACHE_BYTES`].
    pub fn new(cluster_size: u64) -> L2Cache {
        let cap = (L2_CACHE_BYTES / cluster_size).max(2) as usize;
        L2Cache {
            slots: Mutex::new(Vec::with_capacity(cap)),
            cap,
        }
    }

    /// True when the table at `offset` is cached.
    pub fn contains(&self, offset: u64) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.iter().any(|(o, _)| *o == offset)
    }

    /// The table at `offset`, from the cache or from `load` (run without the lock held, so
    /// that other threads are not held up by one thread's read).
    pub fn get(
        &self,
        offset: u64,
        load: impl FnOnce() -> Result<L2Table, Qcow2Error>,
    ) -> Result<L2Table, Qcow2Error> {
        {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = slots.iter().position(|(o, _)| *o == offset) {
                let hit = slots.remove(i);
                let table = hit.1.clone();
                slots.insert(0, hit);
                return Ok(table);
            }
        }
        let table = load()?;
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if !slots.iter().any(|(o, _)| *o == offset) {
            slots.insert(0, (offset, table.clone()));
            slots.truncate(self.cap);
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_entries() {
        assert_eq!(standard(0), Unit::Unallocated);
        assert_eq!(standard(1 << 63), Unit::Unallocated);
        assert_eq!(standard(0x3_0000 | 1 << 63), Unit::Data(0x3_0000));
        assert_eq!(standard(0x3_0000 | 1), Unit::Zero);
        assert_eq!(standard(1), Unit::Zero);
        let c = COMPRESSED | 0x1234;
        assert_eq!(standard(c), Unit::Compressed(c));
        // Reserved high bits are not part of the offset.
        assert_eq!(standard(0x3f00_0000_0001_0000), Unit::Data(0x1_0000));
    }

    #[test]
    fn extended_entries() {
        let host = 0x10_0000;
        // Subclusters 0 and 1 allocated, 2 zero, 3 unallocated.
        let bitmap = 0b11 | (0b100 << 32);
        assert_eq!(extended(host, bitmap, 0), Some(Unit::Data(host)));
        assert_eq!(extended(host, bitmap, 1), Some(Unit::Data(host)));
        assert_eq!(extended(host, bitmap, 2), Some(Unit::Zero));
        assert_eq!(extended(host, bitmap, 3), Some(Unit::Unallocated));
        // Zero bits with no host cluster.
        assert_eq!(extended(0, 1 << 40, 8), Some(Unit::Zero));
        // Invalid: allocated and zero, allocated without a cluster.
        assert_eq!(extended(host, 1 | 1 << 32, 5), None);
        assert_eq!(extended(0, 1, 5), None);
        // Bit 0 of the entry is not a zero flag with extended entries.
        assert_eq!(extended(host | 1, 1, 0), Some(Unit::Data(host)));
    }

    #[test]
    fn cache_is_bounded_and_lru() {
        let c = L2Cache::new(8 << 20);
        assert_eq!(c.cap, 2);
        let mut loads = 0;
        let mut get = |o: u64| {
            c.get(o, || {
                loads += 1;
                Ok(Arc::from(vec![o]))
            })
            .unwrap()[0]
        };
        assert_eq!(get(1), 1);
        assert_eq!(get(2), 2);
        assert_eq!(get(1), 1); // hit; 2 is now the oldest
        assert_eq!(get(3), 3); // evicts 2
        assert_eq!(get(1), 1); // still cached
        assert_eq!(get(2), 2); // reloaded
        assert_eq!(loads, 4);
    }
}
