//! The `Read + Write + Seek` that `fatfs` wants, over a [`Volume`]: reads go through a small
//! block cache and a per-operation byte budget (so that a looping cluster chain inside
//! `fatfs`, which has no loop detection, ends in an error instead of a hang); writes fail.

use crate::Volume;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Size of a cached block.
const CACHE_BLOCK: u64 = 64 << 10;
/// Blocks kept (least recently used dropped): at least one for the FAT and one for the data
/// being read, so that following a cluster chain does not re-read a block per cluster.
const CACHE_BLOCKS: usize = 4;
/// What each read call costs beyond its bytes, so that many tiny reads count too.
const CALL_COST: u64 = 32;

/// The error message a read returns once the budget is spent.
pub(crate) const BUDGET_SPENT: &str = "FAT read budget exhausted (cluster chain loop?)";

/// Read budget shared between the adapter (inside `fatfs`) and the code that starts each
/// operation.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    left: AtomicU64,
    spent: std::sync::atomic::AtomicBool,
}

impl Budget {
    /// Starts an operation allowed to read `bytes`.
    pub fn reset(&self, bytes: u64) {
        self.left.store(bytes, Ordering::Relaxed);
        self.spent.store(false, Ordering::Relaxed);
    }

    /// True when the last operation ran out.
    pub fn was_spent(&self) -> bool {
        self.spent.load(Ordering::Relaxed)
    }

    fn take(&self, n: u64) -> io::Result<()> {
        let cost = n.saturating_add(CALL_COST);
        let left = self.left.load(Ordering::Relaxed);
        if left < cost {
            self.spent.store(true, Ordering::Relaxed);
            return Err(io::Error::other(BUDGET_SPENT));
        }
        self.left.store(left - cost, Ordering::Relaxed);
        Ok(())
    }
}

/// A read-only, seekable view of a volume.
pub(crate) struct VolIo {
    vol: Volume,
    pos: u64,
    budget: Arc<Budget>,
    /// Cached blocks as (start offset, bytes), most recently used first.
    cache: Vec<(u64, Vec<u8>)>,
}

impl VolIo {
    pub fn new(vol: Volume, budget: Arc<Budget>) -> Self {
        VolIo {
            vol,
            pos: 0,
            budget,
            cache: Vec::with_capacity(CACHE_BLOCKS),
        }
    }

    /// Moves the block holding `pos` to the front of the cache, reading it if needed.
    fn load(&mut self, pos: u64, len: u64) -> io::Result<()> {
        let start = pos - pos % CACHE_BLOCK;
        if let Some(i) = self.cache.iter().position(|(s, _)| *s == start) {
            let hit = self.cache.remove(i);
            self.cache.insert(0, hit);
            return Ok(());
        }
        let n = (len - start).min(CACHE_BLOCK) as usize;
        let mut block = if self.cache.len() == CACHE_BLOCKS {
            let (_, mut reuse) = self.cache.pop().expect("cache is full");
            reuse.resize(n, 0);
            reuse
        } else {
            vec![0u8; n]
        };
        self.vol.read_exact_at(&mut block, start)?;
        self.cache.insert(0, (start, block));
        Ok(())
    }
}

impl Read for VolIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.vol.len();
        if buf.is_empty() || self.pos >= len {
            return Ok(0);
        }
        self.budget.take(buf.len() as u64)?;
        if buf.len() as u64 >= CACHE_BLOCK {
            let n = self.vol.read_at(buf, self.pos)?;
            self.pos += n as u64;
            return Ok(n);
        }
        self.load(self.pos, len)?;
        let (start, block) = &self.cache[0];
        let at = (self.pos - start) as usize;
        let n = buf.len().min(block.len() - at);
        buf[..n].copy_from_slice(&block[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for VolIo {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "vhdprep opens FAT filesystems read-only",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for VolIo {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.vol.len().checked_add_signed(d),
        };
        let Some(new) = new else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start or past 2^64",
            ));
        };
        self.pos = new;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_seeks_refuses_writes_and_spends_its_budget() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let budget = Arc::new(Budget::default());
        budget.reset(1 << 20);
        let mut io = VolIo::new(Arc::new(data), budget.clone());
        io.seek(SeekFrom::Start(70_000)).unwrap();
        let mut b = [0u8; 4];
        io.read_exact(&mut b).unwrap();
        assert_eq!(b, [112, 113, 114, 115]);
        assert!(io.seek(SeekFrom::Current(-100_000)).is_err());
        assert!(io.write(b"x").is_err());
        io.seek(SeekFrom::End(-1)).unwrap();
        assert_eq!(io.read(&mut b).unwrap(), 1);
        assert_eq!(io.read(&mut b).unwrap(), 0);
        budget.reset(10);
        io.seek(SeekFrom::Start(0)).unwrap();
        assert!(io.read(&mut b).is_err());
        assert!(budget.was_spent());
    }
}
