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
        if offset >= size {
            return Ok(0);
        }
        let n = buf
            .len()
            .min(usize::try_from(size - offset).unwrap_or(usize::MAX));
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
                Some(Source::File(_)) | None => {
                    let mut b = block + 1;
                    while b < self.layout.payload_blocks
                        && matches!(self.block_source(b), Some(Source::File(_)) | None)
                    {
                        b += 1;
                    }
                    return Ok(Some(pos..(b * bs).min(size)));
                }
            }
        }
        Ok(None)
    }
}
