//! The VDI block map: one little-endian 32-bit entry per block of the virtual disk.
//!
//! An entry is the index of a data-block slot (the block's bytes are at
//! `data_offset + entry × (block_size + block_extra) + block_extra`), or [`BLOCK_FREE`]
//! (never written: zeros, or the parent's data in a differencing image) or [`BLOCK_ZERO`]
//! (discarded: zeros).

use super::{VdiError, VdiHeader};
use crate::read_at::ReadAt;
use std::ops::Range;

/// Entry of a block never written (`VDI_IMAGE_BLOCK_FREE`).
pub const BLOCK_FREE: u32 = 0xFFFF_FFFF;
/// Entry of a block that reads as zeros (`VDI_IMAGE_BLOCK_ZERO`).
pub const BLOCK_ZERO: u32 = 0xFFFF_FFFE;
/// Map bytes read per call while loading it, so the raw bytes never need a second map-sized
/// buffer.
const MAP_CHUNK: usize = 1 << 20;

/// The loaded block map, each entry checked against the file.
#[derive(Debug, Clone)]
pub struct BlockMap {
    entries: Vec<u32>,
}

impl BlockMap {
    /// Reads the entries the disk size needs (at most [`super::MAX_BLOCKS`], checked by
    /// [`VdiHeader::validate`]) and checks that each allocated one names a slot of the image
    /// whose data lies inside the `file`.
    pub fn read(file: &dyn ReadAt, header: &VdiHeader) -> Result<BlockMap, VdiError> {
        let needed = header.blocks_needed();
        if needed > super::MAX_BLOCKS {
            return Err(VdiError::TooManyBlocks(header.blocks_in_image));
        }
        let count = needed as usize;
        let map_at = u64::from(header.block_map_offset);
        let mut entries = Vec::with_capacity(count);
        let mut raw = vec![0u8; MAP_CHUNK.min(count * 4)];
        let mut at = map_at;
        while entries.len() < count {
            let n = ((count - entries.len()) * 4).min(raw.len());
            file.read_exact_at(&mut raw[..n], at)
                .map_err(|e| VdiError::io("cannot read the block map", e))?;
            entries.extend(
                raw[..n]
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            at += n as u64;
        }
        let file_len = file.len();
        let stride = header.block_stride();
        for (index, &entry) in entries.iter().enumerate() {
            if entry == BLOCK_FREE || entry == BLOCK_ZERO {
                continue;
            }
            if entry >= header.blocks_in_image {
                return Err(VdiError::EntryOutOfRange {
                    index: index as u64,
                    at: map_at + index as u64 * 4,
                    entry,
                    blocks: header.blocks_in_image,
                });
            }
            // entry < 2^25 and stride <= 512 MiB: no overflow.
            let offset = u64::from(header.data_offset)
                + u64::from(entry) * stride
                + u64::from(header.block_extra);
            if offset + u64::from(header.block_size) > file_len {
                return Err(VdiError::BlockOutsideFile {
                    index: index as u64,
                    offset,
                    file_len,
                });
            }
        }
        Ok(BlockMap { entries })
    }

    /// The entry of block `index`, or `None` past the end of the map.
    pub fn entry(&self, index: u64) -> Option<u32> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i).copied())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map has no entries (a zero-byte disk).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries that name a data block.
    pub fn allocated(&self) -> usize {
        self.entries.iter().filter(|&&e| is_allocated(e)).count()
    }

    /// Entries marked [`BLOCK_ZERO`].
    pub fn zero(&self) -> usize {
        self.entries.iter().filter(|&&e| e == BLOCK_ZERO).count()
    }

    /// The first run of allocated blocks at or after block `first`, as block indices.
    pub fn next_allocated(&self, first: u64) -> Option<Range<u64>> {
        let first = usize::try_from(first).ok()?;
        let rest = self.entries.get(first..)?;
        let start = first + rest.iter().position(|&e| is_allocated(e))?;
        let end = self.entries[start..]
            .iter()
            .position(|&e| !is_allocated(e))
            .map_or(self.entries.len(), |n| start + n);
        Some(start as u64..end as u64)
    }
}

/// True for an entry that names a data block.
pub fn is_allocated(entry: u32) -> bool {
    entry != BLOCK_FREE && entry != BLOCK_ZERO
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vdi::header::tests::sample;

    /// The sample header (4 blocks of 1 MiB, map at 512, data at 1024) with `map`, and
    /// `slots` data blocks after it.
    fn file(map: [u32; 4], slots: u64) -> (Vec<u8>, VdiHeader) {
        let mut b = sample();
        b.resize(1024 + (slots << 20) as usize, 0);
        for (i, e) in map.iter().enumerate() {
            b[512 + 4 * i..516 + 4 * i].copy_from_slice(&e.to_le_bytes());
        }
        let h = VdiHeader::parse(&b).unwrap();
        (b, h)
    }

    #[test]
    fn reads_and_classifies_entries() {
        let (b, h) = file([BLOCK_FREE, 1, BLOCK_ZERO, 0], 2);
        let m = BlockMap::read(&b, &h).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m.allocated(), 2);
        assert_eq!(m.zero(), 1);
        assert_eq!(m.entry(1), Some(1));
        assert_eq!(m.entry(4), None);
        assert_eq!(m.next_allocated(0), Some(1..2));
        assert_eq!(m.next_allocated(2), Some(3..4));
        assert_eq!(m.next_allocated(4), None);
        assert_eq!(m.next_allocated(u64::MAX), None);
    }

    #[test]
    fn refuses_entries_outside_the_image_or_file() {
        let (b, h) = file([4, BLOCK_FREE, BLOCK_FREE, BLOCK_FREE], 2);
        assert!(matches!(
            BlockMap::read(&b, &h),
            Err(VdiError::EntryOutOfRange {
                index: 0,
                at: 512,
                entry: 4,
                blocks: 4
            })
        ));
        let (b, h) = file([BLOCK_FREE, BLOCK_FREE, BLOCK_FREE, 2], 2);
        let e = BlockMap::read(&b, &h).unwrap_err();
        assert!(
            matches!(e, VdiError::BlockOutsideFile { index: 3, .. }),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "VDI block 3 at offset 2098176 lies past the end of the 2098176-byte file (truncated image?)"
        );
        // A map cut short by the end of the file is a read error, not zeros.
        let (b, h) = file([0, 0, 0, 0], 0);
        let short = b[..514].to_vec();
        let e = BlockMap::read(&short, &h).unwrap_err();
        assert!(
            matches!(e, VdiError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof)
        );
    }
}
