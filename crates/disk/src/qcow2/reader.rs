//! The virtual disk of a qcow2 image: reads walk L1 → L2 → data, joining neighbouring
//! clusters that are stored next to each other into one `pread`, decompressing compressed
//! clusters whole, and deferring unallocated ones to the backing disk.

use super::compressed::{CompressedRef, Decompressor};
use super::error::Qcow2Error;
use super::header::{CompressionType, Qcow2Header, MAX_L1_ENTRIES};
use super::l2::{decode_table, extended, standard, L2Cache, L2Table, Unit, OFFSET_MASK};
use crate::image::SharedDisk;
use crate::read_at::ReadAt;
use std::io;
use std::ops::Range;
use std::sync::Mutex;

/// Longest run of compressed or stored clusters one `next_data` answer joins (64 MiB: 16
/// `convert` chunks), so that one call walks at most 2^17 L2 entries even with 512-byte
/// clusters.
const MAX_NEXT_DATA_SPAN: u64 = 64 << 20;

/// Most threads that decompress the whole compressed clusters of one read (as many as the
/// machine has cores, up to this).
const INFLATE_THREADS: usize = 4;

/// What a run of guest bytes reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The file, from this host offset on.
    Data(u64),
    /// Zeros.
    Zero,
    /// The backing disk at the same guest offset (zeros past its end).
    Backing,
    /// A compressed cluster (L2 entry); the run lies inside that one cluster.
    Compressed(u64),
}

/// The last decompressed cluster, and the decoders.
#[derive(Debug)]
struct CompressedCache {
    /// L2 entry of the cluster held in `cluster`, if any.
    entry: Option<u64>,
    cluster: Vec<u8>,
    input: Vec<u8>,
    decoder: Decompressor,
}

/// A qcow2 image read as its virtual disk.
pub struct Qcow2Disk {
    file: SharedDisk,
    header: Qcow2Header,
    parent: Option<SharedDisk>,
    file_len: u64,
    cluster_bits: u32,
    cluster_size: u64,
    /// log2 of the L2 entries per table.
    l2_bits: u32,
    extended: bool,
    l1: Vec<u64>,
    cache: L2Cache,
    compressed: Mutex<CompressedCache>,
    /// The last range of the file its `next_data` answered: data clusters stored one after
    /// another in the file fall in it, so asking the file (SEEK_DATA/SEEK_HOLE, about 1.3 ms a
    /// call on tmpfs) happens once per host data range, not once per run of clusters.
    host_data: Mutex<Option<Range<u64>>>,
}

impl std::fmt::Debug for Qcow2Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qcow2Disk")
            .field("size", &self.header.size)
            .field("cluster_size", &self.cluster_size)
            .field("has_parent", &self.parent.is_some())
            .finish()
    }
}

fn outside(what: &'static str, offset: u64, len: u64, file_len: u64) -> Qcow2Error {
    Qcow2Error::OutsideFile {
        what,
        offset,
        len,
        file_len,
    }
}

impl Qcow2Disk {
    /// Opens the virtual disk described by `header` (from [`super::read_header`] on the same
    /// `file`). `parent` is the backing disk, required when the header names one. Refuses
    /// encrypted images, external data files and unknown incompatible features; reads the
    /// active L1 table and checks every entry.
    pub fn open(
        file: SharedDisk,
        header: Qcow2Header,
        parent: Option<SharedDisk>,
    ) -> Result<Qcow2Disk, Qcow2Error> {
        if let Some(method) = header.encryption() {
            return Err(Qcow2Error::Encrypted {
                method,
                code: header.crypt_method,
            });
        }
        if header.has_external_data_file() {
            return Err(Qcow2Error::ExternalDataFile {
                name: header
                    .data_file
                    .as_ref()
                    .map(|n| format!("\"{n}\""))
                    .unwrap_or_else(|| "not named in the header".into()),
            });
        }
        let unknown = header.unknown_incompatible();
        if unknown != 0 {
            return Err(Qcow2Error::UnknownFeatures(unknown));
        }
        if let CompressionType::Unknown(n) = header.compression_type() {
            return Err(Qcow2Error::BadCompressionType(n));
        }
        let cluster_bits = header.cluster_bits;
        let cluster_size = header.cluster_size();
        let extended = header.has_extended_l2();
        if extended && cluster_bits < 14 {
            return Err(Qcow2Error::SmallExtendedL2(cluster_size));
        }
        if parent.is_none() {
            if let Some(name) = &header.backing_file {
                return Err(Qcow2Error::MissingBacking(name.clone()));
            }
        }
        let file_len = file.len();
        let l2_bits = cluster_bits - if extended { 4 } else { 3 };
        let needed = header.size.div_ceil(header.l2_coverage());
        if u64::from(header.l1_size) < needed {
            return Err(Qcow2Error::L1TooSmall {
                entries: header.l1_size,
                needed,
            });
        }
        if needed > MAX_L1_ENTRIES {
            return Err(Qcow2Error::L1TooLarge(needed));
        }
        let mut l1 = Vec::new();
        if needed > 0 {
            let at = header.l1_table_offset;
            if at % cluster_size != 0 {
                return Err(Qcow2Error::Unaligned {
                    what: "L1 table",
                    offset: at,
                    cluster_size,
                });
            }
            if at == 0 {
                return Err(Qcow2Error::PointsAtHeader {
                    what: "L1 table",
                    offset: 0,
                });
            }
            let len = needed * 8;
            if at.checked_add(len).is_none_or(|end| end > file_len) {
                return Err(outside("L1 table", at, len, file_len));
            }
            // At most MAX_L1_ENTRIES * 8 = 32 MiB, and inside the file; read 1 MiB at a
            // time so that the raw bytes never need a second table-sized buffer.
            l1.reserve_exact(needed as usize);
            let mut raw = vec![0u8; len.min(1 << 20) as usize];
            let mut done = 0u64;
            while done < len {
                let n = (len - done).min(raw.len() as u64) as usize;
                file.read_exact_at(&mut raw[..n], at + done)?;
                l1.extend(decode_table(&raw[..n]).iter());
                done += n as u64;
            }
            for &e in &l1 {
                let t = e & OFFSET_MASK;
                if t == 0 {
                    continue;
                }
                if t % cluster_size != 0 {
                    return Err(Qcow2Error::Unaligned {
                        what: "L2 table",
                        offset: t,
                        cluster_size,
                    });
                }
                if t.checked_add(cluster_size).is_none_or(|end| end > file_len) {
                    return Err(outside("L2 table", t, cluster_size, file_len));
                }
            }
        }
        let decoder = Decompressor::new(header.compression_type());
        Ok(Qcow2Disk {
            file,
            parent,
            file_len,
            cluster_bits,
            cluster_size,
            l2_bits,
            extended,
            l1,
            cache: L2Cache::new(cluster_size),
            compressed: Mutex::new(CompressedCache {
                entry: None,
                cluster: Vec::new(),
                input: Vec::new(),
                decoder,
            }),
            host_data: Mutex::new(None),
            header,
        })
    }

    /// The header the disk was opened with.
    pub fn header(&self) -> &Qcow2Header {
        &self.header
    }

    /// The backing disk, if any.
    pub fn parent(&self) -> Option<&SharedDisk> {
        self.parent.as_ref()
    }

    /// The L2 table covering guest offset `guest`, or `None` when its L1 entry is empty.
    fn table(&self, guest: u64) -> Result<Option<L2Table>, Qcow2Error> {
        let idx = (guest >> (self.cluster_bits + self.l2_bits)) as usize;
        let Some(&e) = self.l1.get(idx) else {
            return Ok(None);
        };
        let at = e & OFFSET_MASK;
        if at == 0 {
            return Ok(None);
        }
        let cs = self.cluster_size;
        // A table in a hole of the file is all zeros: every cluster unallocated. Asking the
        // file first keeps a hostile sparse image (millions of tables, none written) from
        // costing a read of each. (Through the remembered host range: on tmpfs each
        // `SEEK_HOLE` walks the file's pages up to the hole, about 1.7 ms for 0.5 GiB.)
        if !self.cache.contains(at) && self.host_next_data(at)?.is_none_or(|r| r.start >= at + cs) {
            return Ok(None);
        }
        self.cache
            .get(at, || {
                // One cluster (at most 2 MiB); checked to lie inside the file at open.
                let mut raw = vec![0u8; cs as usize];
                self.file.read_exact_at(&mut raw, at)?;
                Ok(decode_table(&raw))
            })
            .map(Some)
    }

    fn unallocated(&self) -> Kind {
        if self.parent.is_some() {
            Kind::Backing
        } else {
            Kind::Zero
        }
    }

    /// The longest run from `guest` (at most `max` bytes, within one L2 table) that reads
    /// from one kind of place.
    fn extent(&self, guest: u64, max: u64) -> Result<(Kind, u64), Qcow2Error> {
        let cs = self.cluster_size;
        let span = cs << self.l2_bits;
        let table_end = (guest / span + 1) * span;
        let limit = max.min(table_end - guest);
        let Some(table) = self.table(guest)? else {
            return Ok((self.unallocated(), limit));
        };
        let unit_size = if self.extended { cs / 32 } else { cs };
        let mut kind: Option<Kind> = None;
        let mut len = 0u64;
        while len < limit {
            let at = guest + len;
            let index = ((at >> self.cluster_bits) & ((1 << self.l2_bits) - 1)) as usize;
            let in_unit = at % unit_size;
            let unit = if self.extended {
                let (Some(&e), Some(&bitmap)) = (table.get(2 * index), table.get(2 * index + 1))
                else {
                    break;
                };
                let sc = ((at % cs) / unit_size) as u32;
                extended(e, bitmap, sc).ok_or(Qcow2Error::BadSubclusters {
                    guest: at - at % cs,
                    bitmap,
                })?
            } else {
                let Some(&e) = table.get(index) else { break };
                standard(e)
            };
            let (here, step) = match unit {
                Unit::Data(cluster) => {
                    if cluster % cs != 0 {
                        return Err(Qcow2Error::Unaligned {
                            what: "data cluster",
                            offset: cluster,
                            cluster_size: cs,
                        });
                    }
                    (Kind::Data(cluster + at % cs), unit_size - in_unit)
                }
                Unit::Zero => (Kind::Zero, unit_size - in_unit),
                Unit::Unallocated => (self.unallocated(), unit_size - in_unit),
                Unit::Compressed(e) => (Kind::Compressed(e), cs - at % cs),
            };
            let step = step.min(limit - len);
            match kind {
                None => kind = Some(here),
                Some(Kind::Data(h)) if here == Kind::Data(h + len) => {}
                Some(k) if k == here && !matches!(k, Kind::Data(_) | Kind::Compressed(_)) => {}
                Some(_) => break,
            }
            len += step;
            if matches!(here, Kind::Compressed(_)) {
                break;
            }
        }
        Ok((kind.unwrap_or(Kind::Zero), len.max(1).min(limit)))
    }

    /// Decompresses the cluster of L2 entry `entry` into `out` (one whole cluster), reading
    /// its compressed bytes into `input`.
    fn inflate(
        &self,
        entry: u64,
        out: &mut [u8],
        decoder: &mut Decompressor,
        input: &mut Vec<u8>,
    ) -> Result<(), Qcow2Error> {
        let r = CompressedRef::from_entry(entry, self.cluster_bits);
        if r.offset >= self.file_len {
            return Err(outside(
                "compressed cluster",
                r.offset,
                r.len,
                self.file_len,
            ));
        }
        // The sector count may run past the end of the file for the last cluster; qemu reads
        // zeros there, and the decoder stops at the end of its stream before them.
        let len = r.len.min(self.file_len - r.offset) as usize;
        input.resize(len, 0);
        self.file.read_exact_at(input, r.offset)?;
        decoder.decompress(input, out, r.offset)
    }

    /// Decompresses whole clusters `(L2 entry, place in the caller's buffer)` on up to
    /// [`INFLATE_THREADS`] threads, each with its own decoder (inflating is what limits
    /// reading a compressed image; the clusters are independent). One cluster, or one core:
    /// on this thread, with the shared decoder.
    fn inflate_all(&self, jobs: Vec<(u64, &mut [u8])>) -> Result<(), Qcow2Error> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(INFLATE_THREADS)
            .min(jobs.len());
        if threads <= 1 {
            for (entry, out) in jobs {
                self.read_compressed(entry, 0, out)?;
            }
            return Ok(());
        }
        let mut groups: Vec<Vec<(u64, &mut [u8])>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, job) in jobs.into_iter().enumerate() {
            if let Some(group) = groups.get_mut(i % threads) {
                group.push(job);
            }
        }
        let kind = self.header.compression_type();
        std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .into_iter()
                .map(|group| {
                    scope.spawn(move || {
                        let mut decoder = Decompressor::new(kind);
                        let mut input = Vec::new();
                        for (entry, out) in group {
                            self.inflate(entry, out, &mut decoder, &mut input)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            let mut result = Ok(());
            for h in handles {
                let r = h.join().unwrap_or_else(|_| {
                    Err(Qcow2Error::Io(io::Error::other(
                        "a cluster-inflating thread panicked",
                    )))
                });
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
    }

    /// Fills `buf` from the compressed cluster `entry`, starting `in_cluster` bytes into it.
    fn read_compressed(
        &self,
        entry: u64,
        in_cluster: u64,
        buf: &mut [u8],
    ) -> Result<(), Qcow2Error> {
        let cs = self.cluster_size as usize;
        let mut c = self.compressed.lock().unwrap_or_else(|p| p.into_inner());
        let c = &mut *c;
        if c.entry != Some(entry) {
            c.entry = None;
            if in_cluster == 0 && buf.len() == cs {
                // A whole cluster: straight into the caller's buffer, no copy.
                return self.inflate(entry, buf, &mut c.decoder, &mut c.input);
            }
            let mut cluster = std::mem::take(&mut c.cluster);
            cluster.resize(cs, 0);
            let done = self.inflate(entry, &mut cluster, &mut c.decoder, &mut c.input);
            c.cluster = cluster;
            done?;
            c.entry = Some(entry);
        }
        let start = in_cluster as usize;
        buf.copy_from_slice(&c.cluster[start..start + buf.len()]);
        Ok(())
    }

    fn read_backing(&self, buf: &mut [u8], guest: u64) -> io::Result<()> {
        let Some(p) = &self.parent else {
            buf.fill(0);
            return Ok(());
        };
        let plen = p.len();
        let inside = if guest >= plen {
            0
        } else {
            buf.len()
                .min(usize::try_from(plen - guest).unwrap_or(usize::MAX))
        };
        p.read_exact_at(&mut buf[..inside], guest)?;
        buf[inside..].fill(0);
        Ok(())
    }

    /// Reads the pending run of stored data `(host, buf start, len)`, if any, into its place
    /// in `buf`.
    fn flush_data(
        &self,
        pending: &mut Option<(u64, usize, usize)>,
        buf: &mut [u8],
    ) -> io::Result<()> {
        match pending.take() {
            Some((host, start, len)) => {
                self.read_run(Kind::Data(host), &mut buf[start..start + len], 0)
            }
            None => Ok(()),
        }
    }

    fn read_run(&self, kind: Kind, buf: &mut [u8], guest: u64) -> io::Result<()> {
        match kind {
            Kind::Data(host) => {
                let len = buf.len() as u64;
                if host.checked_add(len).is_none_or(|end| end > self.file_len) {
                    return Err(outside("data cluster", host, len, self.file_len).into());
                }
                self.file.read_exact_at(buf, host)
            }
            Kind::Zero => {
                buf.fill(0);
                Ok(())
            }
            Kind::Backing => self.read_backing(buf, guest),
            Kind::Compressed(e) => Ok(self.read_compressed(e, guest % self.cluster_size, buf)?),
        }
    }
}

impl Qcow2Disk {
    /// The file's `next_data(host)`, answered from the last range the file gave when `host`
    /// lies in it (the file is only read, so a range it called data stays so).
    fn host_next_data(&self, host: u64) -> io::Result<Option<Range<u64>>> {
        let mut last = self
            .host_data
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = last.as_ref().filter(|r| r.start <= host && host < r.end) {
            return Ok(Some(host..r.end));
        }
        let answer = self.file.next_data(host)?;
        *last = answer.clone();
        Ok(answer)
    }
}

impl Qcow2Disk {
    /// Where a `next_data` answer that starts at `start` and has reached `end` can stop: the
    /// stored clusters that follow (in the next L2 tables too; `extent` stops at each) and
    /// that the file holds as data are joined, up to [`MAX_NEXT_DATA_SPAN`] in all. Without
    /// this an answer ends at each L2 table (every 2 MiB of guest with 4 KiB clusters) and
    /// `convert` reads its 4 MiB buffers in two halves.
    fn join_stored(&self, mut end: u64, start: u64, size: u64) -> io::Result<u64> {
        while end < size && end - start < MAX_NEXT_DATA_SPAN {
            let (Kind::Data(host), len) = self.extent(end, size - end)? else {
                break;
            };
            match self.host_next_data(host)? {
                Some(r) if r.start <= host && r.end > host => {
                    let stored = (r.end - host).min(len);
                    end += stored;
                    if stored < len {
                        break; // a hole of the file follows
                    }
                }
                _ => break,
            }
        }
        Ok(end)
    }
}

impl ReadAt for Qcow2Disk {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let size = self.header.size;
        let n = crate::read_at::bytes_within(buf.len(), offset, size);
        if n == 0 {
            return Ok(0);
        }
        // A run of data stored contiguously in the file is read with one `pread` even where
        // it crosses from one L2 table into the next (`extent` stops at each table: every
        // 2 MiB of guest with 4 KiB clusters).
        // (host, buf start, len) of the run being gathered.
        let mut pending: Option<(u64, usize, usize)> = None;
        // Whole compressed clusters (L2 entry, buf start): decompressed at the end, together.
        let mut compressed: Vec<(u64, usize)> = Vec::new();
        let cs = self.cluster_size;
        let mut done = 0usize;
        while done < n {
            let guest = offset + done as u64;
            let (kind, len) = self.extent(guest, (n - done) as u64)?;
            let len = len as usize;
            match (kind, pending) {
                (Kind::Compressed(e), _) if guest % cs == 0 && len as u64 == cs => {
                    self.flush_data(&mut pending, buf)?;
                    compressed.push((e, done));
                }
                (Kind::Data(h), Some((ph, start, plen)))
                    if ph.checked_add(plen as u64) == Some(h) =>
                {
                    pending = Some((ph, start, plen + len));
                }
                (Kind::Data(h), _) => {
                    self.flush_data(&mut pending, buf)?;
                    pending = Some((h, done, len));
                }
                _ => {
                    self.flush_data(&mut pending, buf)?;
                    self.read_run(kind, &mut buf[done..done + len], guest)?;
                }
            }
            done += len;
        }
        self.flush_data(&mut pending, buf)?;
        if !compressed.is_empty() {
            // Cut `buf` into the clusters' places (in order, disjoint).
            let mut jobs = Vec::with_capacity(compressed.len());
            let mut rest = &mut buf[..n];
            let mut at = 0usize;
            for (entry, start) in compressed {
                let (_, tail) = std::mem::take(&mut rest).split_at_mut(start - at);
                let (place, tail) = tail.split_at_mut(cs as usize);
                jobs.push((entry, place));
                rest = tail;
                at = start + cs as usize;
            }
            self.inflate_all(jobs)?;
        }
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.header.size
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        let size = self.header.size;
        let mut at = offset;
        // The parent has no data before this offset (asked once per call, not per extent).
        let mut parent_clear_until = offset;
        while at < size {
            let (kind, len) = self.extent(at, size - at)?;
            let end = at + len;
            match kind {
                Kind::Zero => {}
                Kind::Compressed(_) => {
                    // Join the following compressed or stored clusters into one answer.
                    let mut e = end;
                    while e < size && e - at < MAX_NEXT_DATA_SPAN {
                        match self.extent(e, size - e)? {
                            (Kind::Compressed(_), l) => e += l,
                            _ => break,
                        }
                    }
                    return Ok(Some(at..e));
                }
                Kind::Data(host) => {
                    // Preallocated clusters may be holes in the file: ask it.
                    match self.host_next_data(host)? {
                        Some(r) if r.start < host + len && r.end > host => {
                            let s = at + (r.start.max(host) - host);
                            let e = at + (r.end.min(host + len) - host);
                            if e < end {
                                return Ok(Some(s..e)); // a hole of the file follows
                            }
                            return Ok(Some(s..self.join_stored(e, s, size)?));
                        }
                        _ => {}
                    }
                }
                Kind::Backing if end > parent_clear_until => {
                    if let Some(p) = &self.parent {
                        match p.next_data(at.max(parent_clear_until))? {
                            Some(r) if r.start < end && r.end > at => {
                                return Ok(Some(r.start.max(at)..r.end.min(end)));
                            }
                            Some(r) => parent_clear_until = r.start,
                            None => parent_clear_until = u64::MAX,
                        }
                    }
                }
                Kind::Backing => {}
            }
            at = end;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qcow2::header::{read_header, tests::v3, INCOMPAT_DATA_FILE, INCOMPAT_EXTL2};
    use crate::qcow2::l2::{COMPRESSED, ZERO};
    use std::io::Write;
    use std::sync::Arc;

    const CS: usize = 4096;

    /// A 1 MiB disk of 4 KiB clusters: header, L1 at cluster 1, L2 at 2, data at 3,
    /// compressed data at 4. Guest cluster 0 = data (0xAA), 1 = zero flag over data, 2 =
    /// compressed (0x5B), 3 = unallocated, 5 = data again (0xCC, cluster 5).
    fn image() -> Vec<u8> {
        let mut b = v3(12);
        b[40..48].copy_from_slice(&(CS as u64).to_be_bytes());
        b.resize(6 * CS, 0);
        let l1 = (2 * CS as u64) | 1 << 63;
        b[CS..CS + 8].copy_from_slice(&l1.to_be_bytes());
        b[3 * CS..4 * CS].fill(0xAA);
        b[5 * CS..6 * CS].fill(0xCC);
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&[0x5B; CS]).unwrap();
        let z = z.finish().unwrap();
        b[4 * CS..4 * CS + z.len()].copy_from_slice(&z);
        let sectors = (z.len() as u64).div_ceil(512) - 1;
        let entries = [
            (3 * CS as u64) | (1 << 63),
            (3 * CS as u64) | ZERO,
            COMPRESSED | (sectors << (62 - 4)) | (4 * CS as u64),
            0,
            0,
            5 * CS as u64,
        ];
        set_l2(&mut b, &entries);
        b
    }

    fn set_l2(b: &mut [u8], entries: &[u64]) {
        for (i, e) in entries.iter().enumerate() {
            b[2 * CS + 8 * i..2 * CS + 8 * i + 8].copy_from_slice(&e.to_be_bytes());
        }
    }

    fn open(b: Vec<u8>, parent: Option<SharedDisk>) -> Result<Qcow2Disk, Qcow2Error> {
        let h = read_header(&b)?;
        Qcow2Disk::open(Arc::new(b), h, parent)
    }

    #[test]
    fn reads_every_kind_of_cluster() {
        let d = open(image(), None).unwrap();
        assert_eq!(d.len(), 1 << 20);
        let mut all = vec![1u8; 1 << 20];
        d.read_exact_at(&mut all, 0).unwrap();
        assert!(all[..CS].iter().all(|&x| x == 0xAA));
        assert!(all[CS..2 * CS].iter().all(|&x| x == 0));
        assert!(all[2 * CS..3 * CS].iter().all(|&x| x == 0x5B));
        assert!(all[3 * CS..5 * CS].iter().all(|&x| x == 0));
        assert!(all[5 * CS..6 * CS].iter().all(|&x| x == 0xCC));
        assert!(all[6 * CS..].iter().all(|&x| x == 0));
        // Part of a compressed cluster (from the cached cluster), across into the next.
        let mut b = [0u8; 200];
        d.read_exact_at(&mut b, 3 * CS as u64 - 100).unwrap();
        assert!(b[..100].iter().all(|&x| x == 0x5B) && b[100..].iter().all(|&x| x == 0));
        assert_eq!(d.next_data(0).unwrap(), Some(0..CS as u64));
        assert_eq!(
            d.next_data(CS as u64).unwrap(),
            Some(2 * CS as u64..3 * CS as u64)
        );
        assert_eq!(
            d.next_data(3 * CS as u64).unwrap(),
            Some(5 * CS as u64..6 * CS as u64)
        );
        assert_eq!(d.next_data(6 * CS as u64).unwrap(), None);
    }

    #[test]
    fn a_compressed_cluster_between_stored_neighbours() {
        // Guest clusters 0 and 2 are stored one after the other in the file (3 and 4), with
        // a compressed cluster between them in the guest: the stored ones are two reads into
        // their own places, whatever the file holds at 4 (here the compressed bytes), and
        // the compressed one is decompressed into its place; also a read of many compressed
        // clusters at once (decompressed on several threads).
        let mut b = image();
        let compressed = u64::from_be_bytes(b[2 * CS + 16..2 * CS + 24].try_into().unwrap());
        let mut entries = vec![3 * CS as u64, compressed, 4 * CS as u64];
        entries.extend([compressed; 40]);
        set_l2(&mut b, &entries);
        let file_at_4 = b[4 * CS..5 * CS].to_vec();
        let d = open(b, None).unwrap();
        let mut buf = vec![1u8; 43 * CS];
        d.read_exact_at(&mut buf, 0).unwrap();
        assert!(buf[..CS].iter().all(|&x| x == 0xAA));
        assert!(buf[CS..2 * CS].iter().all(|&x| x == 0x5B));
        assert_eq!(buf[2 * CS..3 * CS], file_at_4[..]);
        assert!(buf[3 * CS..].iter().all(|&x| x == 0x5B));
    }

    #[test]
    fn unallocated_reads_the_parent_zero_clusters_do_not() {
        let parent: SharedDisk = Arc::new(vec![0x11u8; 5 * CS]);
        let d = open(image(), Some(parent)).unwrap();
        let mut all = vec![1u8; 8 * CS];
        d.read_exact_at(&mut all, 0).unwrap();
        assert!(
            all[CS..2 * CS].iter().all(|&x| x == 0),
            "zero flag hides the parent"
        );
        assert!(
            all[3 * CS..5 * CS].iter().all(|&x| x == 0x11),
            "from the parent"
        );
        assert!(
            all[6 * CS..].iter().all(|&x| x == 0),
            "past the parent's end"
        );
        assert_eq!(
            d.next_data(3 * CS as u64).unwrap(),
            Some(3 * CS as u64..5 * CS as u64)
        );
    }

    #[test]
    fn refuses_bad_tables() {
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = image();
            f(&mut b);
            open(b, None).unwrap_err()
        };
        let e = with(&|b| b[40..48].fill(0));
        assert!(matches!(e, Qcow2Error::PointsAtHeader { .. }), "{e}");
        let e = with(&|b| b[40..48].copy_from_slice(&4100u64.to_be_bytes()));
        assert!(matches!(e, Qcow2Error::Unaligned { .. }), "{e}");
        let e = with(&|b| b[40..48].copy_from_slice(&(u64::MAX - 4095).to_be_bytes()));
        assert!(matches!(e, Qcow2Error::OutsideFile { .. }), "{e}");
        let e = with(&|b| b[CS..CS + 8].copy_from_slice(&(64 * CS as u64).to_be_bytes()));
        assert!(
            e.to_string().contains(
                "L2 table (4096 bytes at offset 262144) lies outside the 24576-byte file"
            ),
            "{e}"
        );
        let e = with(&|b| b[24..32].copy_from_slice(&(1u64 << 40).to_be_bytes()));
        assert!(
            matches!(e, Qcow2Error::L1TooSmall { entries: 1, .. }),
            "{e}"
        );
        let e = with(&|b| {
            b[20..24].copy_from_slice(&9u32.to_be_bytes());
            b[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
            b[24..32].copy_from_slice(&(1u64 << 40).to_be_bytes());
        });
        assert!(matches!(e, Qcow2Error::L1TooLarge(_)), "{e}");
        let e = with(&|b| b[32..36].copy_from_slice(&2u32.to_be_bytes()));
        assert!(e.to_string().contains("encrypted (LUKS"), "{e}");
        let e = with(&|b| b[72..80].copy_from_slice(&INCOMPAT_DATA_FILE.to_be_bytes()));
        assert!(
            e.to_string().contains("external data file (not named"),
            "{e}"
        );
        let e = with(&|b| b[72..80].copy_from_slice(&(1u64 << 40).to_be_bytes()));
        assert!(matches!(e, Qcow2Error::UnknownFeatures(_)), "{e}");
        let e = with(&|b| b[72..80].copy_from_slice(&INCOMPAT_EXTL2.to_be_bytes()));
        assert!(matches!(e, Qcow2Error::SmallExtendedL2(4096)), "{e}");
        let e = with(&|b| {
            b[8..16].copy_from_slice(&200u64.to_be_bytes());
            b[16..20].copy_from_slice(&4u32.to_be_bytes());
            b[200..204].copy_from_slice(b"base");
        });
        assert!(e.to_string().contains("backing file \"base\""), "{e}");
    }

    #[test]
    fn bad_entries_fail_the_read_not_the_process() {
        let read = |entries: &[u64]| {
            let mut b = image();
            set_l2(&mut b, entries);
            let d = open(b, None).unwrap();
            let mut buf = vec![0u8; 4 * CS];
            d.read_exact_at(&mut buf, 0).map(|()| buf)
        };
        // Data past the end of the file.
        let e = read(&[100 * CS as u64]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            e.to_string()
                .contains("data cluster (4096 bytes at offset 409600) lies outside"),
            "{e}"
        );
        // Unaligned data cluster.
        let e = read(&[3 * CS as u64 + 512]).unwrap_err();
        assert!(e.to_string().contains("not aligned"), "{e}");
        // A compressed cluster pointing at the header, and one past the end.
        let e = read(&[COMPRESSED | 8]).unwrap_err();
        assert!(
            e.to_string().contains("compressed cluster at offset 8"),
            "{e}"
        );
        let e = read(&[COMPRESSED | 1 << 40]).unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
        // A data cluster pointing at the L2 table itself reads the table, and ends.
        let buf = read(&[2 * CS as u64]).unwrap();
        assert_eq!(buf[..8], (2 * CS as u64).to_be_bytes());
        // Host offset 0 with the "copied" bit is unallocated (external data files only).
        let buf = read(&[1 << 63]).unwrap();
        assert!(buf[..CS].iter().all(|&x| x == 0));
    }

    #[test]
    fn tables_in_holes_of_the_file_are_not_read() {
        use std::os::unix::fs::FileExt;
        // L1 entry 0 points at an L2 table 1 GiB into a sparse file: a hole, all zeros.
        let mut b = image();
        let far = 1u64 << 30;
        b[CS..CS + 8].copy_from_slice(&far.to_be_bytes());
        let f = tempfile::tempfile().unwrap();
        f.write_all_at(&b, 0).unwrap();
        f.set_len(far + CS as u64).unwrap();
        let file: SharedDisk = Arc::new(crate::FileReader::new(f).unwrap());
        let h = read_header(&*file).unwrap();
        let d = Qcow2Disk::open(file, h, None).unwrap();
        assert_eq!(d.next_data(0).unwrap(), None);
        let mut buf = vec![1u8; 2 * CS];
        d.read_exact_at(&mut buf, 0).unwrap();
        assert!(buf.iter().all(|&x| x == 0));
    }

    #[test]
    fn extended_entries_and_bad_bitmaps() {
        // 16 KiB clusters with extended entries: 512-byte subclusters.
        let cs = 16384usize;
        let mut b = v3(14);
        b[72..80].copy_from_slice(&INCOMPAT_EXTL2.to_be_bytes());
        b[40..48].copy_from_slice(&(cs as u64).to_be_bytes());
        b.resize(4 * cs, 0);
        b[cs..cs + 8].copy_from_slice(&(2 * cs as u64).to_be_bytes());
        b[3 * cs..4 * cs].fill(0xEE);
        // Cluster 0: subclusters 0-1 allocated, 2 zero, rest unallocated.
        let entry = 3 * cs as u64;
        let bitmap = 0b11u64 | 0b100 << 32;
        b[2 * cs..2 * cs + 8].copy_from_slice(&entry.to_be_bytes());
        b[2 * cs + 8..2 * cs + 16].copy_from_slice(&bitmap.to_be_bytes());
        let parent: SharedDisk = Arc::new(vec![0x22u8; cs]);
        let h = read_header(&b).unwrap();
        let d = Qcow2Disk::open(Arc::new(b.clone()), h, Some(parent)).unwrap();
        let mut buf = vec![0u8; cs];
        d.read_exact_at(&mut buf, 0).unwrap();
        assert!(buf[..1024].iter().all(|&x| x == 0xEE));
        assert!(buf[1024..1536].iter().all(|&x| x == 0));
        assert!(buf[1536..].iter().all(|&x| x == 0x22));
        // Allocated and zero at once.
        let bad = 0b1u64 | 0b1 << 32;
        b[2 * cs + 8..2 * cs + 16].copy_from_slice(&bad.to_be_bytes());
        let h = read_header(&b).unwrap();
        let d = Qcow2Disk::open(Arc::new(b), h, None).unwrap();
        let e = d.read_exact_at(&mut buf, 0).unwrap_err();
        assert!(e.to_string().contains("invalid subcluster bitmap"), "{e}");
    }
}
