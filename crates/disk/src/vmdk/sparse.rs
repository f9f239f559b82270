//! Reader of one hosted sparse extent: the grain directory (GD) points at grain tables (GT),
//! whose entries (GTE) give the sector of each grain of the extent.
//!
//! GTE 0: not allocated (reads from the parent of a delta disk, else zeros); GTE 1: a zeroed
//! grain (reads as zeros, never from the parent); otherwise the sector of the grain, or, when
//! grains are compressed (streamOptimized), of its marker: the grain's LBA (u64), the
//! compressed length (u32) and a zlib stream that inflates to the grain.
//!
//! The GD is read once at open (bounded by the file: it must lie inside it); grain tables are
//! read on demand into a bounded cache; a compressed grain that a read covers whole is
//! inflated straight into the caller's buffer, others into a small cache of inflated grains.

use super::sparse_header::{Marker, SparseHeader, SECTOR};
use super::VmdkError;
use crate::image::SharedDisk;
use crate::read_at::ReadAt;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// Memory for cached grain tables: 8 MiB, i.e. 4096 of qemu's and VMware's 2 KiB tables,
/// which map 128 GiB of 64 KiB grains; a 4 MiB read needs one table.
const GT_CACHE_BYTES: usize = 8 << 20;
/// Inflated grains kept for reads that cover part of a grain: 16 (1 MiB with 64 KiB grains,
/// 32 MiB with the largest accepted grains); enough for unaligned sequential reads.
const GRAIN_CACHE_ENTRIES: usize = 16;
/// Largest compressed grain accepted, over the grain size: deflate's worst case adds 5 bytes
/// per 16 KiB block plus the zlib header; a grain of twice its inflated size is damage.
const COMPRESSED_SLACK_FACTOR: u64 = 2;
/// Grain-directory entries accepted: 2^21 (8 MiB of GD in memory). The largest accepted
/// capacity (64 TiB) in qemu's 32 MiB tables needs 2^21 entries.
pub const MAX_GD_ENTRIES: u64 = 1 << 21;
/// Inflaters (about 50 KiB of state each, plus an input buffer of at most
/// `COMPRESSED_SLACK_FACTOR` grains) kept for reuse: one per reading thread on 4 cores.
const INFLATER_POOL: usize = 4;
/// Threads inflating the whole grains of one read: 4 (a 4 MiB read holds 64 grains of
/// 64 KiB; the machines vhdprep targets have 2 to 8 cores).
const INFLATE_THREADS: usize = 4;
/// Size of the grain marker before its compressed data.
const GRAIN_MARKER_LEN: u64 = 12;

/// What a grain-table entry says about one grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    /// GTE 0 (or its table absent): from the parent, or zeros.
    Unallocated,
    /// GTE 1: zeros.
    Zero,
    /// The sector of the grain (or of its marker).
    At(u64),
}

impl Grain {
    fn from_gte(gte: u32) -> Grain {
        match gte {
            0 => Grain::Unallocated,
            1 => Grain::Zero,
            s => Grain::At(u64::from(s)),
        }
    }
}

/// A small cache keyed by table sector or grain index, evicting the oldest entry (first in,
/// first out: O(1), and reads are mostly sequential).
#[derive(Debug)]
struct Cache<T> {
    map: HashMap<u64, Arc<T>>,
    order: VecDeque<u64>,
    cap: usize,
}

impl<T> Cache<T> {
    fn new(cap: usize) -> Self {
        Cache {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    fn get(&self, k: u64) -> Option<Arc<T>> {
        self.map.get(&k).cloned()
    }

    fn put(&mut self, k: u64, v: Arc<T>) {
        if self.map.insert(k, v).is_none() {
            self.order.push_back(k);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// A grain table read from the file, with what `next_data` needs to skip it at once.
#[derive(Debug)]
struct Table {
    entries: Vec<u32>,
    /// Some entry points at a grain (GTE >= 2).
    any_data: bool,
}

/// The part of a parent disk under this extent: reads beyond the parent's end are zeros (a
/// parent may be smaller than its child).
#[derive(Clone)]
pub(crate) struct ParentPart {
    pub disk: SharedDisk,
    /// Where this extent starts in the virtual disk.
    pub start: u64,
}

impl ParentPart {
    fn read(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let at = self.start.saturating_add(offset);
        let plen = self.disk.len();
        let have = usize::try_from(plen.saturating_sub(at))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.disk.read_exact_at(&mut buf[..have], at)?;
        buf[have..].fill(0);
        Ok(())
    }

    fn next_data(&self, offset: u64, end: u64) -> io::Result<Option<Range<u64>>> {
        let Some(r) = self.disk.next_data(self.start.saturating_add(offset))? else {
            return Ok(None);
        };
        let s = r.start.saturating_sub(self.start).max(offset);
        let e = r.end.saturating_sub(self.start).min(end);
        Ok((s < e).then_some(s..e))
    }
}

/// One hosted sparse extent, read as `len` bytes.
pub struct SparseExtent {
    file: SharedDisk,
    header: SparseHeader,
    len: u64,
    grain_bytes: u64,
    gd: Vec<u32>,
    gts: Mutex<Cache<Table>>,
    grains: Mutex<Cache<Vec<u8>>>,
    inflaters: Mutex<Vec<(flate2::Decompress, Vec<u8>)>>,
    parent: Option<ParentPart>,
}

impl std::fmt::Debug for SparseExtent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SparseExtent")
            .field("len", &self.len)
            .field("header", &self.header)
            .finish()
    }
}

impl SparseExtent {
    /// Opens the extent in `file` described by `header` (the footer of a stream-optimized
    /// extent whose header says GD_AT_END), reading its grain directory. `len` is the extent's
    /// size in the virtual disk, at most the header's capacity. `parent` fills unallocated
    /// grains of a delta disk.
    pub(crate) fn open(
        file: SharedDisk,
        header: SparseHeader,
        len: u64,
        parent: Option<ParentPart>,
    ) -> Result<SparseExtent, VmdkError> {
        let file_len = file.len();
        header.check_layout(file_len)?;
        let entries = header.gd_entries();
        if entries > MAX_GD_ENTRIES {
            return Err(VmdkError::TableOutsideFile {
                what: "grain directory (too many entries)",
                offset: header.gd_offset * SECTOR,
                len: entries * 4,
                file_len,
            });
        }
        // check_layout proved the directory lies in the file, so `entries` is bounded by it.
        let mut raw = vec![0u8; entries as usize * 4];
        file.read_exact_at(&mut raw, header.gd_offset * SECTOR)?;
        let gd = raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let gt_bytes = header.gtes_per_gt as usize * 4;
        Ok(SparseExtent {
            grain_bytes: header.grain_bytes(),
            len: len.min(header.capacity * SECTOR),
            gd,
            gts: Mutex::new(Cache::new(GT_CACHE_BYTES / gt_bytes)),
            grains: Mutex::new(Cache::new(GRAIN_CACHE_ENTRIES)),
            inflaters: Mutex::new(Vec::new()),
            file,
            header,
            parent,
        })
    }

    /// The header in use (the footer of a stream-optimized extent with GD_AT_END).
    pub fn header(&self) -> &SparseHeader {
        &self.header
    }

    /// The grain table `index`, from the cache or the file; `None` when the directory has no
    /// table there. Cached by the table's sector, so a directory whose entries all point at
    /// one table reads it once.
    fn table(&self, index: u64) -> Result<Option<Arc<Table>>, VmdkError> {
        let Some(&sector) = usize::try_from(index).ok().and_then(|i| self.gd.get(i)) else {
            return Ok(None);
        };
        if sector == 0 {
            return Ok(None);
        }
        let key = u64::from(sector);
        if let Some(t) = self.gts.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return Ok(Some(t));
        }
        let n = self.header.gtes_per_gt as usize;
        let offset = key * SECTOR;
        let file_len = self.file.len();
        if offset.saturating_add(n as u64 * 4) > file_len {
            return Err(VmdkError::TableOutsideFile {
                what: "grain table",
                offset,
                len: n as u64 * 4,
                file_len,
            });
        }
        let mut raw = vec![0u8; n * 4];
        self.file.read_exact_at(&mut raw, offset)?;
        let entries: Vec<u32> = raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let any_data = entries.iter().any(|&e| e > 1);
        let t = Arc::new(Table { entries, any_data });
        self.gts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, t.clone());
        Ok(Some(t))
    }

    /// Bytes of grain `g` inside the extent (the last grain may be cut by the length).
    fn grain_len(&self, g: u64) -> u64 {
        self.grain_bytes.min(self.len - g * self.grain_bytes)
    }

    /// Reads `buf` from within grain `g` (at `in_grain` bytes into it).
    fn read_grain(
        &self,
        g: u64,
        state: Grain,
        buf: &mut [u8],
        in_grain: u64,
    ) -> Result<(), VmdkError> {
        let at = g * self.grain_bytes + in_grain;
        match state {
            Grain::Zero => buf.fill(0),
            Grain::Unallocated => match &self.parent {
                Some(p) => p.read(buf, at)?,
                None => buf.fill(0),
            },
            Grain::At(sector) if !self.header.compressed() => {
                let offset = sector * SECTOR;
                let file_len = self.file.len();
                if offset.saturating_add(self.grain_len(g)) > file_len {
                    return Err(VmdkError::GrainOutsideFile {
                        grain: g,
                        offset,
                        file_len,
                    });
                }
                self.file.read_exact_at(buf, offset + in_grain)?;
            }
            Grain::At(sector) => {
                let glen = self.grain_len(g) as usize;
                if in_grain == 0 && buf.len() == glen {
                    self.inflate(g, sector, buf)?;
                } else {
                    let cached = self.grains.lock().unwrap_or_else(|p| p.into_inner()).get(g);
                    let grain = match cached {
                        Some(c) => c,
                        None => {
                            let mut v = vec![0u8; glen];
                            self.inflate(g, sector, &mut v)?;
                            let v = Arc::new(v);
                            self.grains
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .put(g, v.clone());
                            v
                        }
                    };
                    let s = in_grain as usize;
                    buf.copy_from_slice(&grain[s..s + buf.len()]);
                }
            }
        }
        Ok(())
    }

    /// Inflates compressed grain `g`, whose marker (or data) is at `sector`, into `out`
    /// (exactly the grain's bytes inside the extent).
    fn inflate(&self, g: u64, sector: u64, out: &mut [u8]) -> Result<(), VmdkError> {
        let offset = sector * SECTOR;
        let file_len = self.file.len();
        let bad = |why: String| VmdkError::BadGrain {
            grain: g,
            offset,
            why,
        };
        let cap = self.grain_bytes * COMPRESSED_SLACK_FACTOR + SECTOR;
        let avail = file_len.saturating_sub(offset);
        if avail == 0 {
            return Err(VmdkError::GrainOutsideFile {
                grain: g,
                offset,
                file_len,
            });
        }
        let (data_at, data_len) = if self.header.has_markers() {
            let mut m = [0u8; 16];
            if avail < GRAIN_MARKER_LEN {
                return Err(VmdkError::GrainOutsideFile {
                    grain: g,
                    offset,
                    file_len,
                });
            }
            self.file
                .read_exact_at(&mut m[..GRAIN_MARKER_LEN as usize], offset)?;
            let marker = Marker::parse(&m);
            if marker.val != g * self.header.grain_size {
                return Err(bad(format!(
                    "its marker says sector {}, the grain table says sector {}",
                    marker.val,
                    g * self.header.grain_size
                )));
            }
            let size = u64::from(marker.size);
            if size == 0 || size > cap {
                return Err(bad(format!("compressed size {size} is 0 or over {cap}")));
            }
            if GRAIN_MARKER_LEN + size > avail {
                return Err(VmdkError::GrainOutsideFile {
                    grain: g,
                    offset,
                    file_len,
                });
            }
            (offset + GRAIN_MARKER_LEN, size)
        } else {
            // No length recorded: the zlib stream ends itself; read what it may occupy.
            (offset, avail.min(cap))
        };
        // An inflater and input buffer from the pool (creating the inflate state per grain
        // costs about a tenth of the inflating).
        let pooled = self
            .inflaters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let (mut z, mut input) = match pooled {
            Some((mut z, input)) => {
                z.reset(true);
                (z, input)
            }
            None => (flate2::Decompress::new(true), Vec::new()),
        };
        input.clear();
        input.resize(data_len as usize, 0);
        self.file.read_exact_at(&mut input, data_at)?;
        self.inflate_with(&mut z, &input, out, bad)?;
        let mut pool = self.inflaters.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < INFLATER_POOL {
            pool.push((z, input));
        }
        Ok(())
    }

    /// Inflates the zlib stream `input` into `out` (exactly the grain's bytes).
    fn inflate_with(
        &self,
        z: &mut flate2::Decompress,
        input: &[u8],
        out: &mut [u8],
        bad: impl Fn(String) -> VmdkError,
    ) -> Result<(), VmdkError> {
        let status = z
            .decompress(input, out, flate2::FlushDecompress::Finish)
            .map_err(|e| bad(format!("cannot inflate: {e}")))?;
        let produced = z.total_out();
        if produced < out.len() as u64 {
            return Err(bad(format!(
                "inflates to {produced} bytes, the grain holds {}",
                out.len()
            )));
        }
        if status != flate2::Status::StreamEnd {
            // The stream goes on past the grain: allowed only if what follows is padding
            // of a full grain cut by the extent's end.
            let mut rest = vec![0u8; (self.grain_bytes as usize).saturating_sub(out.len())];
            let more = z
                .decompress(
                    &input[z.total_in() as usize..],
                    &mut rest,
                    flate2::FlushDecompress::Finish,
                )
                .map_err(|e| bad(format!("cannot inflate: {e}")))?;
            if more != flate2::Status::StreamEnd {
                return Err(bad(format!(
                    "inflates to more than the grain's {} bytes",
                    self.grain_bytes
                )));
            }
        }
        Ok(())
    }

    /// The grain state of grain `g`.
    #[cfg(test)]
    fn grain(&self, g: u64) -> Result<Grain, VmdkError> {
        let per = u64::from(self.header.gtes_per_gt);
        Ok(match self.table(g / per)? {
            None => Grain::Unallocated,
            Some(t) => Grain::from_gte(t.entries.get((g % per) as usize).copied().unwrap_or(0)),
        })
    }

    fn read_inner(&self, buf: &mut [u8], offset: u64) -> Result<(), VmdkError> {
        let per = u64::from(self.header.gtes_per_gt);
        let compressed = self.header.compressed();
        // Whole compressed grains the read covers: inflated at the end, in parallel.
        let mut jobs: Vec<(u64, u64, &mut [u8])> = Vec::new();
        let mut rest: &mut [u8] = buf;
        let mut at = offset;
        while !rest.is_empty() {
            let g = at / self.grain_bytes;
            let table = self.table(g / per)?;
            // All grains of this table that the read covers, with one table lookup.
            let table_end = ((g / per + 1) * per * self.grain_bytes).min(self.len);
            let gte = |g: u64| match &table {
                None => Grain::Unallocated,
                Some(t) => Grain::from_gte(t.entries.get((g % per) as usize).copied().unwrap_or(0)),
            };
            while !rest.is_empty() && at < table_end {
                let g = at / self.grain_bytes;
                let in_grain = at % self.grain_bytes;
                let mut take = ((self.grain_len(g) - in_grain) as usize).min(rest.len());
                let state = gte(g);
                match state {
                    Grain::At(first) if !compressed => {
                        // Grains stored one after another in the file (as qemu-img and
                        // VMware allocate them) are read with one pread.
                        let mut last = g;
                        while take < rest.len() && at + (take as u64) < table_end {
                            let next = last + 1;
                            if gte(next) != Grain::At(first + (next - g) * self.header.grain_size) {
                                break;
                            }
                            take += (self.grain_len(next) as usize).min(rest.len() - take);
                            last = next;
                        }
                        let in_file = first * SECTOR;
                        let run_end = (in_file + (last - g) * self.grain_bytes)
                            .saturating_add(self.grain_len(last));
                        let file_len = self.file.len();
                        if run_end > file_len {
                            return Err(VmdkError::GrainOutsideFile {
                                grain: g,
                                offset: in_file,
                                file_len,
                            });
                        }
                        let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
                        self.file.read_exact_at(head, in_file + in_grain)?;
                        rest = tail;
                    }
                    Grain::At(sector) if in_grain == 0 && take as u64 == self.grain_len(g) => {
                        let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
                        jobs.push((g, sector, head));
                        rest = tail;
                    }
                    _ => {
                        let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
                        self.read_grain(g, state, head, in_grain)?;
                        rest = tail;
                    }
                }
                at += take as u64;
            }
        }
        self.inflate_all(jobs)
    }

    /// Inflates whole grains into their parts of the caller's buffer, on up to
    /// [`INFLATE_THREADS`] threads (inflating is what limits reading a stream-optimized disk).
    fn inflate_all(&self, jobs: Vec<(u64, u64, &mut [u8])>) -> Result<(), VmdkError> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(INFLATE_THREADS)
            .min(jobs.len());
        if threads <= 1 {
            for (g, sector, out) in jobs {
                self.inflate(g, sector, out)?;
            }
            return Ok(());
        }
        let mut groups: Vec<Vec<(u64, u64, &mut [u8])>> =
            (0..threads).map(|_| Vec::new()).collect();
        for (i, job) in jobs.into_iter().enumerate() {
            if let Some(group) = groups.get_mut(i % threads) {
                group.push(job);
            }
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .into_iter()
                .map(|group| {
                    scope.spawn(move || {
                        for (g, sector, out) in group {
                            self.inflate(g, sector, out)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            let mut result = Ok(());
            for h in handles {
                let r = h.join().unwrap_or_else(|_| {
                    Err(VmdkError::Io(io::Error::other(
                        "a grain-inflating thread panicked",
                    )))
                });
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
    }

    fn next_data_inner(&self, offset: u64) -> Result<Option<Range<u64>>, VmdkError> {
        let per = u64::from(self.header.gtes_per_gt);
        let mut g = offset / self.grain_bytes;
        let grains = self.len.div_ceil(self.grain_bytes);
        while g < grains {
            let t = g / per;
            let table_last = ((t + 1) * per).min(grains);
            let Some(table) = self.table(t)? else {
                // No table: all unallocated, the parent decides.
                let start = (g * self.grain_bytes).max(offset);
                let end = (table_last * self.grain_bytes).min(self.len);
                if let Some(p) = &self.parent {
                    if let Some(r) = p.next_data(start, end)? {
                        return Ok(Some(r));
                    }
                }
                g = table_last;
                continue;
            };
            if !table.any_data && self.parent.is_none() {
                g = table_last;
                continue;
            }
            // Runs of grains of one kind: data (any sector), zeroed, unallocated.
            let kind = |g: u64| match Grain::from_gte(
                table.entries.get((g % per) as usize).copied().unwrap_or(0),
            ) {
                Grain::At(_) => Grain::At(0),
                other => other,
            };
            while g < table_last {
                let s = kind(g);
                let mut e = g + 1;
                while e < table_last && kind(e) == s {
                    e += 1;
                }
                let start = (g * self.grain_bytes).max(offset);
                let end = (e * self.grain_bytes).min(self.len);
                match s {
                    Grain::At(_) => return Ok(Some(start..end)),
                    Grain::Unallocated => {
                        if let Some(p) = &self.parent {
                            if let Some(r) = p.next_data(start, end)? {
                                return Ok(Some(r));
                            }
                        }
                    }
                    Grain::Zero => {}
                }
                g = e;
            }
        }
        Ok(None)
    }

    /// Grains allocated in the file (GTE other than 0 and 1), counting every table.
    pub fn allocated_grains(&self) -> Result<u64, VmdkError> {
        let mut n = 0;
        for t in 0..self.gd.len() as u64 {
            if let Some(table) = self.table(t)? {
                n += table.entries.iter().filter(|&&e| e > 1).count() as u64;
            }
        }
        Ok(n)
    }

    /// State of the grain holding `offset`: used by the tests.
    #[cfg(test)]
    fn state_at(&self, offset: u64) -> Result<Grain, VmdkError> {
        self.grain(offset / self.grain_bytes)
    }
}

impl ReadAt for SparseExtent {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = crate::read_at::bytes_within(buf.len(), offset, self.len);
        if n == 0 {
            return Ok(0);
        }
        self.read_inner(&mut buf[..n], offset)
            .map_err(VmdkError::into_io)?;
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        if offset >= self.len {
            return Ok(None);
        }
        self.next_data_inner(offset).map_err(VmdkError::into_io)
    }
}

#[cfg(test)]
mod tests {
    use super::super::sparse_header::tests::header_bytes;
    use super::super::sparse_header::*;
    use super::*;
    use std::io::Write;

    /// A 4-grain extent of 64 KiB grains: GD at sector 1, GT at sector 2, grain 1 at sector
    /// 8 (0xAA), grain 2 zeroed (GTE 1), grains 0 and 3 unallocated.
    fn plain() -> (Vec<u8>, SparseHeader) {
        let hb = header_bytes(4 * 128, 1, 0);
        let h = SparseHeader::parse(&hb, 0).unwrap();
        let mut f = vec![0u8; 8 * 512 + 65536];
        f[..512].copy_from_slice(&hb);
        f[512..516].copy_from_slice(&2u32.to_le_bytes());
        let gt = 1024;
        f[gt + 4..gt + 8].copy_from_slice(&8u32.to_le_bytes());
        f[gt + 8..gt + 12].copy_from_slice(&1u32.to_le_bytes());
        f[8 * 512..].fill(0xAA);
        (f, h)
    }

    fn open(f: Vec<u8>, h: SparseHeader, parent: Option<ParentPart>) -> SparseExtent {
        let len = h.capacity * 512;
        SparseExtent::open(Arc::new(f), h, len, parent).unwrap()
    }

    #[test]
    fn reads_allocated_zeroed_and_unallocated_grains() {
        let (f, h) = plain();
        let e = open(f, h, None);
        let mut all = vec![1u8; 4 * 65536];
        e.read_exact_at(&mut all, 0).unwrap();
        assert!(all[..65536].iter().all(|&b| b == 0));
        assert!(all[65536..131072].iter().all(|&b| b == 0xAA));
        assert!(all[131072..].iter().all(|&b| b == 0));
        assert_eq!(e.next_data(0).unwrap(), Some(65536..131072));
        assert_eq!(e.next_data(131072).unwrap(), None);
        assert_eq!(e.allocated_grains().unwrap(), 1);
        assert_eq!(e.state_at(131072).unwrap(), Grain::Zero);
    }

    #[test]
    fn contiguous_grains_read_as_one_run_and_others_apart() {
        // Grains 0 and 1 back to back (sectors 8, 136), grain 3 before grain 2 in the file.
        let hb = header_bytes(4 * 128, 1, 0);
        let h = SparseHeader::parse(&hb, 0).unwrap();
        let mut f = vec![0u8; 8 * 512 + 4 * 65536];
        f[..512].copy_from_slice(&hb);
        f[512..516].copy_from_slice(&2u32.to_le_bytes());
        for (i, sector) in [8u32, 136, 392, 264].iter().enumerate() {
            f[1024 + 4 * i..1028 + 4 * i].copy_from_slice(&sector.to_le_bytes());
            let at = *sector as usize * 512;
            f[at..at + 65536].fill(0x10 + i as u8);
        }
        let e = open(f.clone(), h.clone(), None);
        let mut all = vec![0u8; 4 * 65536];
        e.read_exact_at(&mut all, 100).unwrap_err(); // past the end: 100 + 256 KiB
        e.read_exact_at(&mut all[..4 * 65536 - 100], 100).unwrap();
        for (i, c) in all[..4 * 65536 - 100].chunks(1).enumerate() {
            let g = (i + 100) / 65536;
            assert_eq!(c[0], 0x10 + g as u8, "byte {}", i + 100);
        }
        // The file cut inside grain 1 (of the run 0-1): an error, not a short read.
        let cut = f[..136 * 512 + 1000].to_vec();
        let e = open(cut, h, None);
        let err = e.read_exact_at(&mut all[..2 * 65536], 0).unwrap_err();
        assert!(err.to_string().contains("outside the"), "{err}");
    }

    #[test]
    fn parent_fills_unallocated_grains_only() {
        let (f, h) = plain();
        let parent: SharedDisk = Arc::new(vec![0x55u8; 3 * 65536 + 100]);
        let e = open(
            f,
            h,
            Some(ParentPart {
                disk: parent,
                start: 0,
            }),
        );
        let mut all = vec![1u8; 4 * 65536];
        e.read_exact_at(&mut all, 0).unwrap();
        assert!(all[..65536].iter().all(|&b| b == 0x55), "from the parent");
        assert!(all[65536..131072].iter().all(|&b| b == 0xAA), "own data");
        assert!(all[131072..196608].iter().all(|&b| b == 0), "zeroed grain");
        assert!(all[196608..196708].iter().all(|&b| b == 0x55));
        assert!(
            all[196708..].iter().all(|&b| b == 0),
            "past the parent's end"
        );
        assert_eq!(e.next_data(0).unwrap(), Some(0..65536));
        assert_eq!(e.next_data(65536).unwrap(), Some(65536..131072));
        assert_eq!(
            e.next_data(131072).unwrap(),
            Some(196608..196708),
            "the parent ends there"
        );
    }

    #[test]
    fn table_and_grain_outside_the_file() {
        let (mut f, h) = plain();
        f[512..516].copy_from_slice(&0x00FF_FFFFu32.to_le_bytes());
        let e = open(f, h, None);
        let err = e.read_exact_at(&mut [0u8; 10], 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("grain table"), "{err}");
        let (mut f, h) = plain();
        f[1024 + 4..1024 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = open(f, h, None);
        let err = e.read_exact_at(&mut [0u8; 10], 65536).unwrap_err();
        assert!(err.to_string().contains("outside the"), "{err}");
    }

    #[test]
    fn table_pointing_at_the_header_reads_the_header_bytes_as_entries() {
        // GD entry -> sector 0: the "table" is the header itself; its entries (the magic as
        // a sector number etc.) point far outside the file and fail cleanly.
        let (mut f, h) = plain();
        f[512..516].copy_from_slice(&0u32.to_le_bytes());
        let e = open(f.clone(), h.clone(), None);
        assert_eq!(e.next_data(0).unwrap(), None, "GD entry 0 is 'no table'");
        f[512..516].copy_from_slice(&1u32.to_le_bytes());
        // The GD itself as a table: its entry 0 (2) points at the GT sector; reading grain 0
        // reads 64 KiB from sector 2 on: inside the file, no panic, just bytes.
        let e = open(f, h, None);
        let mut b = vec![0u8; 65536];
        e.read_exact_at(&mut b, 0).unwrap();
    }

    #[test]
    fn a_directory_pointing_at_one_table_2m_times_reads_it_once() {
        // 64 TiB in 64 KiB grains: 2^21 directory entries, all naming the table at sector 1
        // (which is the directory itself: entries of 1 read as zeroed grains).
        let hb = header_bytes(MAX_CAPACITY_SECTORS, 1, 0);
        let h = SparseHeader::parse(&hb, 0).unwrap();
        let mut f = vec![0u8; 512 + (1 << 21) * 4];
        f[..512].copy_from_slice(&hb);
        for e in f[512..].chunks_exact_mut(4) {
            e.copy_from_slice(&1u32.to_le_bytes());
        }
        let e = open(f, h, None);
        assert_eq!(e.len(), 64 << 40);
        assert_eq!(e.next_data(0).unwrap(), None);
        let mut b = [1u8; 4];
        e.read_exact_at(&mut b, (64 << 40) - 4).unwrap();
        assert_eq!(b, [0; 4]);
    }

    fn compressed(data: &[u8], lba: u64) -> (Vec<u8>, SparseHeader) {
        let hb = header_bytes(128, 1, FLAG_COMPRESSED | FLAG_MARKERS);
        let h = SparseHeader::parse(&hb, 0).unwrap();
        let mut f = vec![0u8; 8 * 512];
        f[..512].copy_from_slice(&hb);
        f[512..516].copy_from_slice(&2u32.to_le_bytes());
        f[1024..1028].copy_from_slice(&8u32.to_le_bytes());
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(data).unwrap();
        let c = z.finish().unwrap();
        f.extend_from_slice(&lba.to_le_bytes());
        f.extend_from_slice(&(c.len() as u32).to_le_bytes());
        f.extend_from_slice(&c);
        (f, h)
    }

    #[test]
    fn many_compressed_grains_inflate_in_parallel_and_errors_come_back() {
        // 8 grains, each its own byte; the read covers them all, and one odd piece.
        let hb = header_bytes(8 * 128, 1, FLAG_COMPRESSED | FLAG_MARKERS);
        let h = SparseHeader::parse(&hb, 0).unwrap();
        let mut f = vec![0u8; 8 * 512];
        f[..512].copy_from_slice(&hb);
        f[512..516].copy_from_slice(&2u32.to_le_bytes());
        let mut markers = Vec::new();
        for g in 0..8u64 {
            let at = f.len();
            markers.push(at);
            f[1024 + 4 * g as usize..1028 + 4 * g as usize]
                .copy_from_slice(&((at / 512) as u32).to_le_bytes());
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(&vec![g as u8 + 1; 65536]).unwrap();
            let c = z.finish().unwrap();
            f.extend_from_slice(&(g * 128).to_le_bytes());
            f.extend_from_slice(&(c.len() as u32).to_le_bytes());
            f.extend_from_slice(&c);
            f.resize(f.len().div_ceil(512) * 512, 0);
        }
        let e = open(f.clone(), h.clone(), None);
        let mut all = vec![0u8; 8 * 65536 - 10];
        e.read_exact_at(&mut all, 10).unwrap();
        for (i, &b) in all.iter().enumerate() {
            assert_eq!(b, ((i + 10) / 65536) as u8 + 1, "byte {}", i + 10);
        }
        // Grain 5's marker names the wrong sector: the whole read fails with that error.
        f[markers[5]] ^= 1;
        let e = open(f, h, None);
        let err = e.read_exact_at(&mut all, 0).unwrap_err();
        assert!(err.to_string().contains("compressed grain 5"), "{err}");
    }

    #[test]
    fn compressed_grains_whole_and_partial() {
        let data: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        let (f, h) = compressed(&data, 0);
        let e = open(f, h, None);
        let mut whole = vec![0u8; 65536];
        e.read_exact_at(&mut whole, 0).unwrap();
        assert_eq!(whole, data);
        let mut part = vec![0u8; 1000];
        e.read_exact_at(&mut part, 777).unwrap();
        assert_eq!(part, data[777..1777]);
    }

    #[test]
    fn compressed_grain_damage_is_an_error() {
        let data = vec![7u8; 65536];
        // Wrong LBA in the marker.
        let (f, h) = compressed(&data, 128);
        let e = open(f, h, None);
        let err = e.read_exact_at(&mut vec![0u8; 65536], 0).unwrap_err();
        assert!(err.to_string().contains("marker says sector 128"), "{err}");
        // Too short a stream.
        let (f, h) = compressed(&data[..1000], 0);
        let e = open(f, h, None);
        let err = e.read_exact_at(&mut vec![0u8; 65536], 0).unwrap_err();
        assert!(err.to_string().contains("inflates to 1000"), "{err}");
        // Too long a stream.
        let (f, h) = compressed(&vec![7u8; 70000], 0);
        let e = open(f, h, None);
        let err = e.read_exact_at(&mut vec![0u8; 65536], 0).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        // Garbage instead of zlib, and a size past the end of the file.
        let (mut f, h) = compressed(&data, 0);
        let n = f.len();
        f[n - 20..].fill(0xFF);
        f[8 * 512 + 12] ^= 0xFF;
        let e = open(f.clone(), h.clone(), None);
        assert!(e.read_exact_at(&mut vec![0u8; 65536], 0).is_err());
        f[8 * 512 + 8..8 * 512 + 12].copy_from_slice(&100_000u32.to_le_bytes());
        let e = open(f, h, None);
        let err = e.read_exact_at(&mut vec![0u8; 65536], 0).unwrap_err();
        assert!(err.to_string().contains("outside the"), "{err}");
    }
}
