//! Reader for dynamic VHDs: the block allocation table (BAT) maps each block of the virtual
//! disk to a place in the file, or to nothing (the block reads as zeros). Each allocated block
//! starts with a sector bitmap; sectors whose bit is clear have never been written and read as
//! zeros too.

use super::dynamic_header::DynamicHeader;
use crate::read_at::ReadAt;
use std::io;
use std::ops::Range;

/// BAT value of a block that is not allocated.
const UNALLOCATED: u32 = 0xFFFF_FFFF;
/// Largest block size accepted (Hyper-V uses 2 MiB, some tools 512 KiB to 256 MiB).
pub const MAX_BLOCK_SIZE: u32 = 256 << 20;
/// Largest virtual size accepted for a dynamic disk: 64 TiB, twice Azure's largest data disk.
pub const MAX_DYNAMIC_SIZE: u64 = 64 << 40;
/// Most block-table entries read (memory: 4 bytes each, so 128 MiB at most). That is
/// [`MAX_DYNAMIC_SIZE`] in Hyper-V's 2 MiB blocks, or the VHD format's 2040 GiB dynamic-disk
/// limit in 64 KiB blocks; a table larger than that only comes from a tiny block size paired
/// with a huge disk, and a sparse file can claim one of 16 GiB at no cost on disk.
pub const MAX_TABLE_ENTRIES: u64 = 1 << 25;
/// Block-table bytes read per call while loading it, so that the raw bytes never need a
/// second table-sized buffer.
const TABLE_CHUNK: usize = 1 << 20;

/// Why a dynamic VHD's header or block table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DynamicError {
    /// The header lacks its `cxsparse` cookie.
    BadCookie,
    /// Block size is not a power of two between 512 bytes and [`MAX_BLOCK_SIZE`].
    BadBlockSize(u32),
    /// The block table is too small for the virtual size, or the size is absurd.
    BadTableSize {
        /// Entries the header claims.
        entries: u32,
        /// Entries the virtual size needs.
        needed: u64,
    },
    /// The virtual size needs more than [`MAX_TABLE_ENTRIES`] blocks.
    TableTooLarge {
        /// Entries the virtual size needs.
        needed: u64,
        /// The block size.
        block_size: u32,
    },
    /// The block table lies outside the file.
    TableOutsideFile {
        /// Table offset.
        offset: u64,
        /// Table length in bytes.
        len: u64,
    },
    /// A block (with its bitmap) lies outside the data area of the file.
    BlockOutsideFile {
        /// Block index.
        index: u64,
        /// Where the block's bitmap starts in the file.
        offset: u64,
    },
}

impl std::fmt::Display for DynamicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DynamicError::BadCookie => write!(f, "dynamic header at the data offset lacks its 'cxsparse' cookie"),
            DynamicError::BadBlockSize(b) => write!(f, "dynamic header block size {b} is not a power of two between 512 bytes and 256 MiB"),
            DynamicError::BadTableSize { entries, needed } => write!(f, "block table has {entries} entries but the disk size needs {needed}"),
            DynamicError::TableTooLarge { needed, block_size } => write!(f, "the disk size needs a block table of {needed} entries ({block_size}-byte blocks), more than the {MAX_TABLE_ENTRIES} vhdprep reads"),
            DynamicError::TableOutsideFile { offset, len } => write!(f, "block table ({len} bytes at offset {offset}) lies outside the file"),
            DynamicError::BlockOutsideFile { index, offset } => write!(f, "block {index} at file offset {offset} lies past the end of the file (truncated image?)"),
        }
    }
}

/// Reads `entries` big-endian block-table entries at `offset`, [`TABLE_CHUNK`] bytes at a time.
fn read_table<R: ReadAt>(file: &R, offset: u64, entries: usize) -> io::Result<Vec<u32>> {
    let mut bat = Vec::with_capacity(entries);
    let mut raw = vec![0u8; TABLE_CHUNK.min(entries * 4)];
    let mut at = offset;
    while bat.len() < entries {
        let n = ((entries - bat.len()) * 4).min(raw.len());
        file.read_exact_at(&mut raw[..n], at)?;
        bat.extend(
            raw[..n]
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])),
        );
        at += n as u64;
    }
    Ok(bat)
}

/// The virtual disk of a dynamic VHD, read through its block table.
#[derive(Debug)]
pub struct DynamicVhd<R> {
    file: R,
    virtual_size: u64,
    block_size: u64,
    bitmap_size: u64,
    bat: Vec<u32>,
}

impl<R: ReadAt> DynamicVhd<R> {
    /// Opens the virtual disk of `virtual_size` bytes described by `header`, reading the block
    /// table from `file`. `data_end` is where block data must end (the offset of the trailing
    /// footer). Memory is bounded by the file: the table must lie inside it.
    pub fn open(
        file: R,
        header: &DynamicHeader,
        virtual_size: u64,
        data_end: u64,
    ) -> Result<Result<Self, DynamicError>, io::Error> {
        if !header.has_cookie() {
            return Ok(Err(DynamicError::BadCookie));
        }
        let bs = header.block_size;
        if !bs.is_power_of_two() || !(512..=MAX_BLOCK_SIZE).contains(&bs) {
            return Ok(Err(DynamicError::BadBlockSize(bs)));
        }
        let block_size = u64::from(bs);
        let needed = virtual_size.div_ceil(block_size);
        if virtual_size > MAX_DYNAMIC_SIZE || u64::from(header.max_table_entries) < needed {
            return Ok(Err(DynamicError::BadTableSize {
                entries: header.max_table_entries,
                needed,
            }));
        }
        if needed > MAX_TABLE_ENTRIES {
            return Ok(Err(DynamicError::TableTooLarge {
                needed,
                block_size: bs,
            }));
        }
        let table_len = needed * 4;
        match header.table_offset.checked_add(table_len) {
            Some(end) if end <= data_end => {}
            _ => {
                return Ok(Err(DynamicError::TableOutsideFile {
                    offset: header.table_offset,
                    len: table_len,
                }))
            }
        }
        let bat = read_table(&file, header.table_offset, needed as usize)?;
        // One bit per sector, padded to whole sectors.
        let bitmap_size = (block_size / 512).div_ceil(8).div_ceil(512) * 512;
        for (index, &entry) in bat.iter().enumerate() {
            if entry == UNALLOCATED {
                continue;
            }
            let offset = u64::from(entry) * 512;
            if offset + bitmap_size + block_size > data_end {
                return Ok(Err(DynamicError::BlockOutsideFile {
                    index: index as u64,
                    offset,
                }));
            }
        }
        Ok(Ok(DynamicVhd {
            file,
            virtual_size,
            block_size,
            bitmap_size,
            bat,
        }))
    }

    /// Size of one block in bytes.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Number of allocated blocks.
    pub fn allocated_blocks(&self) -> usize {
        self.bat.iter().filter(|&&e| e != UNALLOCATED).count()
    }

    /// Reads within one block: `buf` must not cross a block boundary. Runs of sectors this
    /// file does not hold (an unallocated block, clear bitmap bits) go to `absent` with their
    /// virtual offset: zeros for a dynamic disk, the parent's bytes for a differencing one.
    fn read_in_block(
        &self,
        buf: &mut [u8],
        offset: u64,
        absent: &mut Absent<'_>,
    ) -> io::Result<()> {
        let index = (offset / self.block_size) as usize;
        let entry = self.bat[index];
        if entry == UNALLOCATED {
            return absent(buf, offset);
        }
        let bitmap_at = u64::from(entry) * 512;
        let data_at = bitmap_at + self.bitmap_size;
        let in_block = offset % self.block_size;
        let first_sector = in_block / 512;
        let last_sector = (in_block + buf.len() as u64 - 1) / 512;
        let first_byte = first_sector / 8;
        let mut bitmap = vec![0u8; (last_sector / 8 - first_byte + 1) as usize];
        self.file
            .read_exact_at(&mut bitmap, bitmap_at + first_byte)?;
        let present = |sector: u64| {
            let bit = sector - first_byte * 8;
            bitmap[(bit / 8) as usize] & (0x80 >> (bit % 8)) != 0
        };
        // Walk runs of sectors that are all present or all absent.
        let mut pos = 0usize;
        while pos < buf.len() {
            let here = in_block + pos as u64;
            let sector = here / 512;
            let state = present(sector);
            let mut end_sector = sector + 1;
            while end_sector <= last_sector && present(end_sector) == state {
                end_sector += 1;
            }
            let run_end = ((end_sector * 512 - in_block) as usize).min(buf.len());
            let run = &mut buf[pos..run_end];
            if state {
                self.file.read_exact_at(run, data_at + here)?;
            } else {
                absent(run, offset - in_block + here)?;
            }
            pos = run_end;
        }
        Ok(())
    }

    /// Reads like [`ReadAt::read_at`], handing the runs this file does not hold to `absent`
    /// (see [`DynamicVhd::read_in_block`]).
    pub(crate) fn read_with(
        &self,
        buf: &mut [u8],
        offset: u64,
        absent: &mut Absent<'_>,
    ) -> io::Result<usize> {
        let n = crate::read_at::bytes_within(buf.len(), offset, self.virtual_size);
        if n == 0 {
            return Ok(0);
        }
        let mut done = 0usize;
        while done < n {
            let at = offset + done as u64;
            let block_left = (self.block_size - at % self.block_size) as usize;
            let take = block_left.min(n - done);
            self.read_in_block(&mut buf[done..done + take], at, absent)?;
            done += take;
        }
        Ok(n)
    }
}

/// What a read does with a run of sectors the file does not hold: `(run, virtual offset)`.
pub(crate) type Absent<'a> = dyn FnMut(&mut [u8], u64) -> io::Result<()> + 'a;

impl<R: ReadAt> ReadAt for DynamicVhd<R> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.read_with(buf, offset, &mut |run, _| {
            run.fill(0);
            Ok(())
        })
    }

    fn len(&self) -> u64 {
        self.virtual_size
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        if offset >= self.virtual_size {
            return Ok(None);
        }
        let first = (offset / self.block_size) as usize;
        let Some(start_idx) = (first..self.bat.len()).find(|&i| self.bat[i] != UNALLOCATED) else {
            return Ok(None);
        };
        let end_idx = (start_idx..self.bat.len())
            .find(|&i| self.bat[i] == UNALLOCATED)
            .unwrap_or(self.bat.len());
        let start = (start_idx as u64 * self.block_size).max(offset);
        let end = (end_idx as u64 * self.block_size).min(self.virtual_size);
        Ok((start < end).then_some(start..end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vhd::dynamic_header::{DynamicHeader, DYNAMIC_COOKIE, DYNAMIC_HEADER_SIZE};

    /// Builds a dynamic-disk body in memory: header at 0, BAT at 1024, blocks after.
    /// Block size 4 KiB (8 sectors, bitmap 512 bytes), 4 blocks, block 1 allocated with sectors
    /// 0 and 2 present, block 3 allocated fully.
    fn image() -> (Vec<u8>, DynamicHeader) {
        let bs = 4096u32;
        let mut h = [0u8; DYNAMIC_HEADER_SIZE];
        h[0..8].copy_from_slice(DYNAMIC_COOKIE);
        h[16..24].copy_from_slice(&1024u64.to_be_bytes());
        h[28..32].copy_from_slice(&4u32.to_be_bytes());
        h[32..36].copy_from_slice(&bs.to_be_bytes());
        let header = DynamicHeader::parse(&h);
        let mut file = vec![0u8; 1024 + 512];
        file[..1024].copy_from_slice(&h);
        let mut bat = [UNALLOCATED; 4];
        // block 1 at sector 3 (offset 1536)
        bat[1] = 3;
        let mut blk1 = vec![0u8; 512 + 4096];
        blk1[0] = 0b1010_0000;
        blk1[512..].fill(0xAA);
        file.extend_from_slice(&blk1);
        // block 3 right after
        bat[3] = ((1536 + blk1.len()) / 512) as u32;
        let mut blk3 = vec![0u8; 512 + 4096];
        blk3[0] = 0xFF;
        blk3[512..].fill(0xBB);
        file.extend_from_slice(&blk3);
        for (i, e) in bat.iter().enumerate() {
            file[1024 + 4 * i..1024 + 4 * i + 4].copy_from_slice(&e.to_be_bytes());
        }
        (file, header)
    }

    #[test]
    fn reads_allocated_partial_and_unallocated_blocks() {
        let (file, header) = image();
        let end = file.len() as u64;
        let d = DynamicVhd::open(&file, &header, 4 * 4096, end)
            .unwrap()
            .unwrap();
        let mut all = vec![0u8; 4 * 4096];
        d.read_exact_at(&mut all, 0).unwrap();
        assert!(all[..4096].iter().all(|&b| b == 0), "block 0 unallocated");
        let b1 = &all[4096..8192];
        assert!(b1[..512].iter().all(|&b| b == 0xAA), "sector 0 present");
        assert!(b1[512..1024].iter().all(|&b| b == 0), "sector 1 absent");
        assert!(
            b1[1024..1536].iter().all(|&b| b == 0xAA),
            "sector 2 present"
        );
        assert!(b1[1536..].iter().all(|&b| b == 0), "rest absent");
        assert!(all[8192..12288].iter().all(|&b| b == 0));
        assert!(all[12288..].iter().all(|&b| b == 0xBB));
        // An unaligned read across a sector boundary.
        let mut two = [0u8; 4];
        d.read_exact_at(&mut two, 4096 + 510).unwrap();
        assert_eq!(two, [0xAA, 0xAA, 0, 0]);
        assert_eq!(d.allocated_blocks(), 2);
    }

    #[test]
    fn next_data_walks_the_block_table() {
        let (file, header) = image();
        let end = file.len() as u64;
        let d = DynamicVhd::open(&file, &header, 4 * 4096, end)
            .unwrap()
            .unwrap();
        assert_eq!(d.next_data(0).unwrap(), Some(4096..8192));
        assert_eq!(d.next_data(8192).unwrap(), Some(12288..16384));
        assert_eq!(d.next_data(16384).unwrap(), None);
    }

    #[test]
    fn rejects_blocks_past_the_end_and_bad_sizes() {
        let (file, header) = image();
        let short = file.len() as u64 - 1;
        assert!(matches!(
            DynamicVhd::open(&file, &header, 4 * 4096, short).unwrap(),
            Err(DynamicError::BlockOutsideFile { index: 3, .. })
        ));
        let end = file.len() as u64;
        assert!(matches!(
            DynamicVhd::open(&file, &header, 5 * 4096, end).unwrap(),
            Err(DynamicError::BadTableSize {
                entries: 4,
                needed: 5
            })
        ));
        let mut bad = header.clone();
        bad.block_size = 3000;
        assert!(matches!(
            DynamicVhd::open(&file, &bad, 4096, end).unwrap(),
            Err(DynamicError::BadBlockSize(3000))
        ));
        let mut tiny = header.clone();
        tiny.block_size = 512;
        tiny.max_table_entries = u32::MAX;
        assert!(matches!(
            DynamicVhd::open(&file, &tiny, (1 << 41) - 512, end).unwrap(),
            Err(DynamicError::TableTooLarge {
                needed: 0xFFFF_FFFF,
                block_size: 512
            })
        ));
        let mut far = header.clone();
        far.table_offset = u64::MAX - 2;
        assert!(matches!(
            DynamicVhd::open(&file, &far, 4096, end).unwrap(),
            Err(DynamicError::TableOutsideFile { .. })
        ));
    }
}
