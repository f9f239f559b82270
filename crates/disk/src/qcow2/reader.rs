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

/// Longest range one `next_data` answer covers, so that one call on a huge, fully allocated
/// image walks at most a bounded number of L2 tables.
const MAX_NEXT_DATA_SPAN: u64 = 1 << 30;

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
            // At most MAX_L1_ENTRIES * 8 = 32 MiB, and inside the file.
            let mut raw = vec![0u8; len as usize];
            file.read_exact_at(&mut raw, at)?;
            l1 = decode_table(&raw).to_vec();
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

    /// Fills `buf` from the compressed cluster `entry`, starting `in_cluster` bytes into it.
    fn read_compressed(
        &self,
        entry: u64,
        in_cluster: u64,
        buf: &mut [u8],
    ) -> Result<(), Qcow2Error> {
        let cs = self.cluster_size as usize;
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
        let mut c = self.compressed.lock().unwrap_or_else(|p| p.into_inner());
        let c = &mut *c;
        if c.entry != Some(entry) {
            c.entry = None;
            c.input.resize(len, 0);
            self.file.read_exact_at(&mut c.input, r.offset)?;
            if in_cluster == 0 && buf.len() == cs {
                // A whole cluster: straight into the caller's buffer, no copy.
                return c.decoder.decompress(&c.input, buf, r.offset);
            }
            c.cluster.resize(cs, 0);
            c.decoder.decompress(&c.input, &mut c.cluster, r.offset)?;
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

impl ReadAt for Qcow2Disk {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let size = self.header.size;
        if offset >= size {
            return Ok(0);
        }
        let n = buf
            .len()
            .min(usize::try_from(size - offset).unwrap_or(usize::MAX));
        let mut done = 0usize;
        while done < n {
            let guest = offset + done as u64;
            let (kind, len) = self.extent(guest, (n - done) as u64)?;
            let len = len as usize;
            self.read_run(kind, &mut buf[done..done + len], guest)?;
            done += len;
        }
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.header.size
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        let size = self.header.size;
        let mut at = offset;
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
                    match self.file.next_data(host)? {
                        Some(r) if r.start < host + len => {
                            let s = at + (r.start.max(host) - host);
                            let e = at + (r.end.min(host + len) - host);
                            return Ok(Some(s..e));
                        }
                        _ => {}
                    }
                }
                Kind::Backing => {
                    if let Some(p) = &self.parent {
                        if let Some(r) = p.next_data(at)? {
                            if r.start < end {
                                return Ok(Some(r.start.max(at)..r.end.min(end)));
                            }
                        }
                    }
                }
            }
            at = end;
        }
        Ok(None)
    }
}
