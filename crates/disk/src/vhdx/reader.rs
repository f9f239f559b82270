//! [`VhdxDisk`]: the virtual disk of a VHDX, read through its BAT (and the replayed log), with
//! the parent's data where a differencing disk has none of its own.

use super::bat::{self, Layout};
use super::error::VhdxError;
use super::header::VhdxHeader;
use super::overlay::Overlaid;
use crate::image::SharedDisk;
use crate::read_at::ReadAt;
use std::io;
use std::ops::Range;

/// Bytes of one sector bitmap block: one bit per logical sector of a chunk.
const BITMAP_BLOCK: u64 = 1 << 20;

/// The virtual disk of a VHDX file.
pub struct VhdxDisk {
    view: Overlaid<SharedDisk>,
    header: VhdxHeader,
    layout: Layout,
    bat: Vec<u64>,
    parent: Option<SharedDisk>,
    sector: u64,
}

impl std::fmt::Debug for VhdxDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhdxDisk")
            .field("virtual_size", &self.header.metadata.virtual_size)
            .field("layout", &self.layout)
            .field("has_parent", &self.parent.is_some())
            .finish()
    }
}

/// Where a run of the virtual disk comes from.
enum Source {
    /// This file, at the given offset.
    File(u64),
    /// The parent disk, at the same virtual offset.
    Parent,
    /// Zeros.
    Zero,
}

impl VhdxDisk {
    /// Opens the virtual disk described by `header` (from [`super::Vhdx::read_header`] on the
    /// same `file`). A differencing disk needs its `parent`, whose length must equal the
    /// virtual size; without it the error names the parent locator.
    pub fn open(
        file: SharedDisk,
        header: VhdxHeader,
        parent: Option<SharedDisk>,
    ) -> Result<VhdxDisk, VhdxError> {
        let m = &header.metadata;
        let parent = if m.has_parent {
            let Some(p) = parent else {
                return Err(VhdxError::MissingParent {
                    locators: m
                        .parent_locator
                        .as_ref()
                        .map(|l| l.describe())
                        .unwrap_or_else(|| "(none)".into()),
                });
            };
            if p.len() != m.virtual_size {
                return Err(VhdxError::ParentSize {
                    parent: p.len(),
                    child: m.virtual_size,
                });
            }
            Some(p)
        } else {
            None
        };
        let view = Overlaid::new(file, header.log.overlay.clone());
        let layout = Layout::new(m);
        let bat = bat::load(&view, header.regions.bat.clone(), &layout, m.has_parent)?;
        let sector = u64::from(m.logical_sector_size);
        Ok(VhdxDisk {
            view,
            header,
            layout,
            bat,
            parent,
            sector,
        })
    }

    /// The header this disk was opened with.
    pub fn header(&self) -> &VhdxHeader {
        &self.header
    }

    /// Payload blocks stored in this file (fully or partially present).
    pub fn allocated_blocks(&self) -> u64 {
        (0..self.layout.payload_blocks)
            .filter(|&b| {
                matches!(
                    self.block_state(b),
                    bat::FULLY_PRESENT | bat::PARTIALLY_PRESENT
                )
            })
            .count() as u64
    }

    fn entry(&self, index: u64) -> u64 {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.bat.get(i))
            .copied()
            .unwrap_or(0)
    }

    fn block_state(&self, block: u64) -> u8 {
        bat::state(self.entry(self.layout.payload_index(block)))
    }

    /// Where a block's bytes come from when the whole block has one source.
    fn block_source(&self, block: u64) -> Option<Source> {
        let e = self.entry(self.layout.payload_index(block));
        match bat::state(e) {
            bat::FULLY_PRESENT => Some(Source::File(bat::file_offset(e))),
            bat::PARTIALLY_PRESENT => None,
            bat::NOT_PRESENT if self.parent.is_some() => Some(Source::Parent),
            _ => Some(Source::Zero),
        }
    }

    fn read_parent(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match &self.parent {
            Some(p) => p.read_exact_at(buf, offset),
            None => {
                buf.fill(0);
                Ok(())
            }
        }
    }

    /// Reads within one partially present block, sector by sector runs of its bitmap.
    fn read_partial(&self, buf: &mut [u8], offset: u64, block: u64) -> io::Result<()> {
        let bs = self.layout.block_size;
        let data_at = bat::file_offset(self.entry(self.layout.payload_index(block)));
        let bitmap_at = bat::file_offset(self.entry(self.layout.bitmap_index(block)));
        let in_block = offset % bs;
        // Sector numbers within the chunk this bitmap covers.
        let chunk_first = (block % self.layout.chunk_ratio) * (bs / self.sector);
        let first = chunk_first + in_block / self.sector;
        let last = chunk_first + (in_block + buf.len() as u64 - 1) / self.sector;
        let first_byte = first / 8;
        let nbytes = (last / 8 - first_byte + 1) as usize;
        if first_byte + nbytes as u64 > BITMAP_BLOCK {
            return Err(VhdxError::BadBatEntry {
                index: self.layout.bitmap_index(block),
                offset: self.header.regions.bat.start + self.layout.bitmap_index(block) * 8,
                why: "sector bitmap read past its 1 MiB block".into(),
            }
            .into());
        }
        let mut bitmap = vec![0u8; nbytes];
        self.view
            .read_exact_at(&mut bitmap, bitmap_at + first_byte)?;
        let present = |s: u64| {
            let bit = s - first_byte * 8;
            bitmap
                .get((bit / 8) as usize)
                .is_some_and(|b| b & (1 << (bit % 8)) != 0)
        };
        let mut pos = 0usize;
        while pos < buf.len() {
            let here = in_block + pos as u64;
            let s = chunk_first + here / self.sector;
            let state = present(s);
            let mut end = s + 1;
            while end <= last && present(end) == state {
                end += 1;
            }
            let run_end = (((end - chunk_first) * self.sector - in_block) as usize).min(buf.len());
            let run = &mut buf[pos..run_end];
            if state {
                self.view.read_exact_at(run, data_at + here)?;
            } else {
                self.read_parent(run, offset + pos as u64)?;
            }
            pos = run_end;
        }
        Ok(())
    }
}

impl ReadAt for VhdxDisk {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let size = self.header.metadata.virtual_size;
        let n = crate::read_at::bytes_within(buf.len(), offset, size);
        if n == 0 {
            return Ok(0);
        }
        let bs = self.layout.block_size;
        let mut done = 0usize;
        while done < n {
            let at = offset + done as u64;
            let block = at / bs;
            let take = usize::try_from(bs - at % bs)
                .unwrap_or(usize::MAX)
                .min(n - done);
            let out = &mut buf[done..done + take];
            match self.block_source(block) {
                Some(Source::File(base)) => self.view.read_exact_at(out, base + at % bs)?,
                Some(Source::Parent) => self.read_parent(out, at)?,
                Some(Source::Zero) => out.fill(0),
                None => self.read_partial(out, at, block)?,
            }
            done += take;
        }
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.header.metadata.virtual_size
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        let size = self.header.metadata.virtual_size;
        let bs = self.layout.block_size;
        let mut pos = offset;
        while pos < size {
            let block = pos / bs;
            match self.block_source(block) {
                Some(Source::Zero) => {
                    let mut b = block + 1;
                    while b < self.layout.payload_blocks
                        && matches!(self.block_source(b), Some(Source::Zero))
                    {
                        b += 1;
                    }
                    pos = b * bs;
                }
                Some(Source::Parent) => {
                    let mut b = block + 1;
                    while b < self.layout.payload_blocks
                        && matches!(self.block_source(b), Some(Source::Parent))
                    {
                        b += 1;
                    }
                    let run_end = (b * bs).min(size);
                    if let Some(p) = &self.parent {
                        if let Some(r) = p.next_data(pos)? {
                            if r.start < run_end {
                                return Ok(Some(r.start.max(pos)..r.end.min(run_end)));
                            }
                        }
                    }
                    pos = run_end;
                }
                Some(Source::File(base)) => {
                    // Only where the file may hold data: a sparse fixed VHDX skips its holes.
                    let block_start = block * bs;
                    let block_end = (block_start + bs).min(size);
                    let file_at = base + (pos - block_start);
                    let file_end = base + (block_end - block_start);
                    let Some(r) = self.view.next_data_before(file_at, file_end)? else {
                        pos = block_end;
                        continue;
                    };
                    let start = pos + (r.start - file_at);
                    let mut end = pos + (r.end - file_at);
                    // Whole blocks that follow in the file and are data too join the range.
                    let mut b = block + 1;
                    let mut next_base = base + bs;
                    while end == (b * bs).min(size) && b < self.layout.payload_blocks {
                        match self.block_source(b) {
                            Some(Source::File(nb)) if nb == next_base => {}
                            _ => break,
                        }
                        let b_end = ((b + 1) * bs).min(size);
                        let want = nb_range(next_base, b_end - b * bs);
                        match self.view.next_data_before(want.start, want.end)? {
                            Some(r) if r == want => end = b_end,
                            _ => break,
                        }
                        b += 1;
                        next_base += bs;
                    }
                    return Ok(Some(start..end));
                }
                None => {
                    let mut b = block + 1;
                    while b < self.layout.payload_blocks && self.block_source(b).is_none() {
                        b += 1;
                    }
                    return Ok(Some(pos..(b * bs).min(size)));
                }
            }
        }
        Ok(None)
    }
}

/// The file range `[base, base + len)`.
fn nb_range(base: u64, len: u64) -> Range<u64> {
    base..base + len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vhdx::header::tests::header_bytes;
    use crate::vhdx::log::build::entry;
    use crate::vhdx::metadata::tests::{items, locator_bytes, region_bytes};
    use crate::vhdx::metadata::{PARENT_LOCATOR, VIRTUAL_DISK_SIZE};
    use crate::vhdx::region::tests::table_bytes;
    use crate::vhdx::region::{BAT_GUID, METADATA_GUID};
    use crate::vhdx::{Vhdx, MIB};
    use std::sync::Arc;
    use uuid::Uuid;

    const LOG_GUID: Uuid = Uuid::from_u128(0xABCD);

    /// An in-memory VHDX: log at 1 MiB, metadata at 2 MiB, BAT at 3 MiB, 1 MiB blocks, a 4 MiB
    /// disk; `bat` entries written at 3 MiB, `log` entries at the start of the log (and the
    /// header's log GUID set when there are any).
    fn image(parent: bool, bat: &[(u64, u64)], blocks: &[(u64, u8)], log: &[Vec<u8>]) -> Vec<u8> {
        let mut f = vec![0u8; 8 * MIB as usize];
        f[..8].copy_from_slice(b"vhdxfile");
        for (i, u) in "unit".encode_utf16().enumerate() {
            f[8 + 2 * i..10 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
        let guid = if log.is_empty() {
            Uuid::nil()
        } else {
            LOG_GUID
        };
        f[65536..69632].copy_from_slice(&header_bytes(1, Uuid::nil(), MIB, MIB as u32));
        f[131072..135168].copy_from_slice(&header_bytes(2, guid, MIB, MIB as u32));
        let m = MIB as u32;
        let rt = table_bytes(&[
            (BAT_GUID, 3 * MIB, m, true),
            (METADATA_GUID, 2 * MIB, m, true),
        ]);
        f[196608..262144].copy_from_slice(&rt);
        f[262144..327680].copy_from_slice(&rt);
        let mut it = items(1 << 20, if parent { 2 } else { 0 }, 4 * MIB, 512);
        if parent {
            it.push((
                PARENT_LOCATOR,
                locator_bytes(&[("relative_path", ".\\base.vhdx")]),
                true,
            ));
        }
        f[2 * MIB as usize..3 * MIB as usize].copy_from_slice(&region_bytes(&it));
        for &(i, e) in bat {
            f[(3 * MIB + 8 * i) as usize..][..8].copy_from_slice(&e.to_le_bytes());
        }
        for &(at, fill) in blocks {
            f[at as usize..(at + MIB) as usize].fill(fill);
        }
        let mut pos = MIB as usize;
        for e in log {
            f[pos..pos + e.len()].copy_from_slice(e);
            pos += e.len();
        }
        f
    }

    fn open(f: Vec<u8>, parent: Option<SharedDisk>) -> Result<VhdxDisk, VhdxError> {
        let file: SharedDisk = Arc::new(f);
        let h = Vhdx::read_header(&*file)?;
        VhdxDisk::open(file, h, parent)
    }

    fn all(d: &VhdxDisk) -> Vec<u8> {
        let mut v = vec![0u8; d.len() as usize];
        d.read_exact_at(&mut v, 0).unwrap();
        v
    }

    const FULL: u64 = 6;

    #[test]
    fn dynamic_blocks_in_every_state() {
        let f = image(
            false,
            &[(0, (4 << 20) | FULL), (2, 2), (3, (5 << 20) | FULL)],
            &[(4 * MIB, 0xA1), (5 * MIB, 0xA3)],
            &[],
        );
        let d = open(f, None).unwrap();
        let h = d.header();
        assert_eq!(h.creator, "unit");
        assert_eq!((h.current, h.current().sequence), (1, 2));
        let v = all(&d);
        let m = MIB as usize;
        assert!(v[..m].iter().all(|&b| b == 0xA1));
        assert!(v[m..3 * m].iter().all(|&b| b == 0));
        assert!(v[3 * m..].iter().all(|&b| b == 0xA3));
        assert_eq!(d.next_data(0).unwrap(), Some(0..MIB));
        assert_eq!(d.next_data(MIB).unwrap(), Some(3 * MIB..4 * MIB));
        assert_eq!(d.next_data(4 * MIB).unwrap(), None);
        assert_eq!(d.allocated_blocks(), 2);
        // A read across the boundary of a present and an absent block.
        let mut two = [9u8; 2];
        d.read_exact_at(&mut two, MIB - 1).unwrap();
        assert_eq!(two, [0xA1, 0]);
    }

    #[test]
    fn differencing_reads_child_parent_and_sector_bitmap() {
        let bitmap_entry = (7 << 20) | FULL; // chunk 0's bitmap, BAT index 4096
        let mut f = image(
            true,
            &[
                (0, (4 << 20) | FULL),
                (2, (6 << 20) | 7),
                (3, 2),
                (4096, bitmap_entry),
            ],
            &[(4 * MIB, 0xC0), (6 * MIB, 0xC2)],
            &[],
        );
        // Sectors 0-3 and 9 of block 2 (sectors 4096.. of the chunk) are the child's.
        let bit = |s: u64| 2 * 2048 + s;
        for s in [0, 1, 2, 3, 9] {
            f[(7 * MIB + bit(s) / 8) as usize] |= 1 << (bit(s) % 8);
        }
        let e = open(f.clone(), None).unwrap_err();
        assert!(matches!(e, VhdxError::MissingParent { .. }));
        assert!(e.to_string().contains("relative_path=.\\base.vhdx"), "{e}");
        let short: SharedDisk = Arc::new(vec![0u8; 1024]);
        assert!(matches!(
            open(f.clone(), Some(short)),
            Err(VhdxError::ParentSize { .. })
        ));
        let parent: SharedDisk = Arc::new(vec![0x77u8; 4 * MIB as usize]);
        let d = open(f, Some(parent)).unwrap();
        let v = all(&d);
        let m = MIB as usize;
        assert!(v[..m].iter().all(|&b| b == 0xC0), "fully present");
        assert!(
            v[m..2 * m].iter().all(|&b| b == 0x77),
            "not present: the parent"
        );
        let b2 = &v[2 * m..3 * m];
        assert!(b2[..4 * 512].iter().all(|&b| b == 0xC2));
        assert!(b2[4 * 512..9 * 512].iter().all(|&b| b == 0x77));
        assert!(b2[9 * 512..10 * 512].iter().all(|&b| b == 0xC2));
        assert!(b2[10 * 512..].iter().all(|&b| b == 0x77));
        assert!(
            v[3 * m..].iter().all(|&b| b == 0),
            "zero block hides the parent"
        );
        // Unaligned read across runs of the bitmap.
        let mut b = [0u8; 4];
        d.read_exact_at(&mut b, 2 * MIB + 4 * 512 - 2).unwrap();
        assert_eq!(b, [0xC2, 0xC2, 0x77, 0x77]);
        // next_data: the child's block 0, then the parent's data in block 1, then block 2.
        assert_eq!(d.next_data(0).unwrap(), Some(0..MIB));
        assert_eq!(d.next_data(MIB).unwrap(), Some(MIB..2 * MIB));
        assert_eq!(d.next_data(2 * MIB).unwrap(), Some(2 * MIB..3 * MIB));
        assert_eq!(d.next_data(3 * MIB).unwrap(), None);
    }

    #[test]
    fn the_log_updates_metadata_and_bat_before_anything_is_read() {
        // In the file: a 4 MiB disk whose block 1 is not present. In the log: the virtual size
        // item set to 2 MiB and the BAT's first sector with block 1 present at 6 MiB.
        let f = image(
            false,
            &[(0, (4 << 20) | FULL)],
            &[(4 * MIB, 0xA1), (6 * MIB, 0xB1)],
            &[],
        );
        let file: SharedDisk = Arc::new(f.clone());
        let h = Vhdx::read_header(&*file).unwrap();
        assert_eq!(h.virtual_size(), 4 * MIB);
        // Where the virtual size item lies, from the table.
        let meta = 2 * MIB as usize;
        let count = u16::from_le_bytes([f[meta + 10], f[meta + 11]]) as usize;
        let at = (0..count)
            .find(|i| f[meta + 32 + 32 * i..][..16] == VIRTUAL_DISK_SIZE.to_bytes_le())
            .map(|i| u32::from_le_bytes(f[meta + 48 + 32 * i..][..4].try_into().unwrap()))
            .unwrap() as usize;
        let sector_at = (meta + at) / 4096 * 4096;
        let mut meta_sector = f[sector_at..sector_at + 4096].to_vec();
        meta_sector[meta + at - sector_at..][..8].copy_from_slice(&(2 * MIB).to_le_bytes());
        let mut bat_sector = f[3 * MIB as usize..][..4096].to_vec();
        bat_sector[8..16].copy_from_slice(&((6u64 << 20) | FULL).to_le_bytes());
        let e = entry(
            LOG_GUID,
            1,
            0,
            8 * MIB,
            &[(sector_at as u64, meta_sector), (3 * MIB, bat_sector)],
            &[],
        );
        let with_log = image(
            false,
            &[(0, (4 << 20) | FULL)],
            &[(4 * MIB, 0xA1), (6 * MIB, 0xB1)],
            &[e],
        );
        let d = open(with_log.clone(), None).unwrap();
        assert!(d.header().log.non_empty);
        assert_eq!(d.header().log.entries_replayed, 1);
        assert_eq!(d.len(), 2 * MIB, "virtual size from the replayed metadata");
        let v = all(&d);
        assert!(v[..MIB as usize].iter().all(|&b| b == 0xA1));
        assert!(
            v[MIB as usize..].iter().all(|&b| b == 0xB1),
            "block 1 from the replayed BAT"
        );
        // The same file with the log GUID cleared reads the BAT as stored.
        let mut clean = with_log.clone();
        clean[131072..135168].copy_from_slice(&header_bytes(2, Uuid::nil(), MIB, MIB as u32));
        let d = open(clean, None).unwrap();
        assert_eq!(d.len(), 4 * MIB);
        assert_eq!(d.allocated_blocks(), 1);
    }
}
