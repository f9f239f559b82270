//! The block allocation table: one 64-bit entry per payload block, with a sector-bitmap
//! entry after every `chunk_ratio` payload entries (a chunk: the blocks one 1 MiB sector
//! bitmap covers). Each entry holds a 3-bit state and a file offset in MiB.

use super::error::VhdxError;
use super::metadata::VhdxMetadata;
use super::MIB;
use crate::read_at::ReadAt;

/// Most BAT entries loaded (8 bytes each: 128 MiB of memory). That covers 16 TiB in the
/// smallest (1 MiB) blocks and the format's 64 TiB limit in 4 MiB blocks or larger (Hyper-V
/// and qemu default to 32 MiB and 8 MiB); a file claiming more is refused, not loaded.
pub const MAX_BAT_ENTRIES: u64 = 1 << 24;
/// BAT bytes read per call while loading it.
const CHUNK: usize = 1 << 20;

/// Block not in this file: zeros, or the parent's data in a differencing disk.
pub const NOT_PRESENT: u8 = 0;
/// Contents undefined: read as zeros.
pub const UNDEFINED: u8 = 1;
/// Block reads as zeros.
pub const ZERO: u8 = 2;
/// Block was unmapped (TRIM): read as zeros.
pub const UNMAPPED: u8 = 3;
/// Block fully in this file.
pub const FULLY_PRESENT: u8 = 6;
/// Block partly in this file, the rest in the parent, per the sector bitmap (differencing
/// disks only).
pub const PARTIALLY_PRESENT: u8 = 7;
/// Sector bitmap block present (for sector-bitmap entries).
pub const SB_PRESENT: u8 = 6;

/// The shape of the BAT of a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Payload block size in bytes.
    pub block_size: u64,
    /// Payload blocks per sector-bitmap block: 2^23 * logical sector size / block size.
    pub chunk_ratio: u64,
    /// Payload blocks of the virtual disk.
    pub payload_blocks: u64,
    /// BAT entries, payload and sector-bitmap.
    pub entries: u64,
    /// The virtual disk size.
    pub virtual_size: u64,
}

impl Layout {
    /// The layout [MS-VHDX] 2.5 gives for `m` (sizes already validated).
    pub fn new(m: &VhdxMetadata) -> Layout {
        let block_size = u64::from(m.block_size);
        let chunk_ratio = (1u64 << 23) * u64::from(m.logical_sector_size) / block_size;
        let payload_blocks = m.virtual_size.div_ceil(block_size);
        let entries = if m.has_parent {
            payload_blocks.div_ceil(chunk_ratio) * (chunk_ratio + 1)
        } else {
            payload_blocks + payload_blocks.saturating_sub(1) / chunk_ratio
        };
        Layout {
            block_size,
            chunk_ratio,
            payload_blocks,
            entries,
            virtual_size: m.virtual_size,
        }
    }

    /// BAT index of payload block `block`.
    pub fn payload_index(&self, block: u64) -> u64 {
        block + block / self.chunk_ratio
    }

    /// BAT index of the sector bitmap covering payload block `block`.
    pub fn bitmap_index(&self, block: u64) -> u64 {
        (block / self.chunk_ratio) * (self.chunk_ratio + 1) + self.chunk_ratio
    }

    /// Bytes of the virtual disk the payload entry at BAT index `index` holds: the block
    /// size, or less for the last block of a disk whose size is not a whole number of
    /// blocks (qemu-img then ends the file where the disk ends).
    pub fn stored_len(&self, index: u64) -> u64 {
        let block = index - index / (self.chunk_ratio + 1);
        self.virtual_size
            .saturating_sub(block.saturating_mul(self.block_size))
            .min(self.block_size)
    }

    /// True when BAT index `index` is a sector-bitmap entry.
    pub fn is_bitmap_index(&self, index: u64) -> bool {
        index % (self.chunk_ratio + 1) == self.chunk_ratio
    }
}

/// State of a BAT entry.
pub fn state(entry: u64) -> u8 {
    (entry & 7) as u8
}

/// File offset of a BAT entry, in bytes.
pub fn file_offset(entry: u64) -> u64 {
    (entry >> 20) * MIB
}

/// Loads and checks the BAT from `file` (the log-replayed view): every state known, every
/// present block and bitmap inside the file and past the header section.
pub fn load(
    file: &dyn ReadAt,
    bat_region: std::ops::Range<u64>,
    layout: &Layout,
    has_parent: bool,
) -> Result<Vec<u64>, VhdxError> {
    let at = bat_region.start;
    if layout.entries > MAX_BAT_ENTRIES {
        return Err(VhdxError::BatTooLarge {
            offset: at,
            entries: layout.entries,
            cap: MAX_BAT_ENTRIES,
        });
    }
    let bytes = layout.entries * 8;
    if bytes > bat_region.end - bat_region.start {
        return Err(VhdxError::BadPlace {
            what: "BAT region",
            offset: at,
            len: bat_region.end - bat_region.start,
            why: format!(
                "is smaller than the {bytes} bytes its {} entries need",
                layout.entries
            ),
        });
    }
    let n = layout.entries as usize;
    let mut bat = Vec::with_capacity(n);
    let mut raw = vec![0u8; CHUNK.min(n * 8)];
    while bat.len() < n {
        let take = ((n - bat.len()) * 8).min(raw.len());
        let off = at + bat.len() as u64 * 8;
        file.read_exact_at(&mut raw[..take], off)
            .map_err(VhdxError::io("BAT", off))?;
        bat.extend(raw[..take].chunks_exact(8).map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from_le_bytes(a)
        }));
    }
    let len = file.len();
    for (i, &e) in bat.iter().enumerate() {
        let index = i as u64;
        let bad = |why: String| VhdxError::BadBatEntry {
            index,
            offset: at + index * 8,
            why,
        };
        let st = state(e);
        let (present, size) = if layout.is_bitmap_index(index) {
            match st {
                NOT_PRESENT => (false, 0),
                SB_PRESENT => (true, MIB),
                s => return Err(bad(format!("sector bitmap state {s} is not 0 or 6"))),
            }
        } else {
            match st {
                NOT_PRESENT | UNDEFINED | ZERO | UNMAPPED => (false, 0),
                FULLY_PRESENT | PARTIALLY_PRESENT if st == FULLY_PRESENT || has_parent => {
                    (true, layout.stored_len(index))
                }
                PARTIALLY_PRESENT => {
                    return Err(bad(
                        "partially present block in a disk without a parent".into()
                    ))
                }
                s => return Err(bad(format!("payload state {s} is reserved"))),
            }
        };
        if present {
            let off = file_offset(e);
            if off < MIB || off.checked_add(size).is_none_or(|end| end > len) {
                return Err(bad(format!(
                    "places its {size}-byte block at offset {off}, outside the {len}-byte file (truncated image?)"
                )));
            }
        }
    }
    if has_parent {
        for block in 0..layout.payload_blocks {
            let p = bat
                .get(layout.payload_index(block) as usize)
                .copied()
                .unwrap_or(0);
            let b = bat
                .get(layout.bitmap_index(block) as usize)
                .copied()
                .unwrap_or(0);
            if state(p) == PARTIALLY_PRESENT && state(b) != SB_PRESENT {
                return Err(VhdxError::BadBatEntry {
                    index: layout.payload_index(block),
                    offset: at + layout.payload_index(block) * 8,
                    why: "partially present block whose sector bitmap is not present".into(),
                });
            }
        }
    }
    Ok(bat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(bs: u32, lss: u32, size: u64, parent: bool) -> VhdxMetadata {
        VhdxMetadata {
            block_size: bs,
            leave_blocks_allocated: false,
            has_parent: parent,
            virtual_size: size,
            virtual_disk_id: None,
            logical_sector_size: lss,
            physical_sector_size: 4096,
            parent_locator: None,
        }
    }

    #[test]
    fn layout_follows_the_specification() {
        let l = Layout::new(&meta(1 << 20, 512, 10 << 30, false));
        assert_eq!(l.chunk_ratio, 4096);
        assert_eq!(l.payload_blocks, 10240);
        assert_eq!(l.entries, 10240 + 2);
        assert_eq!(l.payload_index(4096), 4097);
        assert_eq!(l.bitmap_index(4095), 4096);
        assert!(l.is_bitmap_index(4096) && !l.is_bitmap_index(4097));
        let d = Layout::new(&meta(32 << 20, 4096, 1 << 30, true));
        assert_eq!(d.chunk_ratio, 1024);
        assert_eq!(d.entries, 1025);
        let big = Layout::new(&meta(256 << 20, 512, 64 << 40, false));
        assert_eq!(big.chunk_ratio, 16);
    }

    fn bat_bytes(entries: &[u64]) -> Vec<u8> {
        let mut f = vec![0u8; 4 * MIB as usize];
        for (i, e) in entries.iter().enumerate() {
            f[(3 * MIB) as usize + 8 * i..][..8].copy_from_slice(&e.to_le_bytes());
        }
        f
    }

    #[test]
    fn load_checks_every_entry() {
        let l = Layout::new(&meta(1 << 20, 512, 2 << 20, false));
        let region = 3 * MIB..4 * MIB;
        let ok = bat_bytes(&[(2 << 20) | 6, 2]);
        assert_eq!(load(&ok, region.clone(), &l, false).unwrap().len(), 2);
        let past = bat_bytes(&[(4 << 20) | 6, 0]);
        let e = load(&past, region.clone(), &l, false).unwrap_err();
        assert!(
            e.to_string().contains("outside the 4194304-byte file"),
            "{e}"
        );
        let header = bat_bytes(&[6, 0]);
        assert!(load(&header, region.clone(), &l, false).is_err());
        let reserved = bat_bytes(&[4, 0]);
        assert!(load(&reserved, region.clone(), &l, false)
            .unwrap_err()
            .to_string()
            .contains("reserved"));
        let partial = bat_bytes(&[(2 << 20) | 7, 0]);
        assert!(load(&partial, region.clone(), &l, false)
            .unwrap_err()
            .to_string()
            .contains("without a parent"));
        let huge = (u64::MAX >> 20 << 20) | 6;
        assert!(load(&bat_bytes(&[huge, 0]), region.clone(), &l, false).is_err());
        let big = Layout::new(&meta(1 << 20, 512, 64 << 40, false));
        assert!(matches!(
            load(&ok, region.clone(), &big, false),
            Err(VhdxError::BatTooLarge { .. })
        ));
        let l2 = Layout::new(&meta(1 << 20, 512, 300 << 20, false));
        let mut small = l2;
        small.entries = 200_000;
        assert!(load(&ok, region, &small, false)
            .unwrap_err()
            .to_string()
            .contains("smaller than"));
    }

    #[test]
    fn a_partial_block_needs_its_bitmap() {
        let l = Layout::new(&meta(1 << 20, 512, 2 << 20, true));
        let mut e = vec![0u64; l.entries as usize];
        e[0] = (2 << 20) | 7;
        let f = bat_bytes(&e);
        let err = load(&f, 3 * MIB..4 * MIB, &l, true).unwrap_err();
        assert!(
            err.to_string().contains("sector bitmap is not present"),
            "{err}"
        );
        e[l.bitmap_index(0) as usize] = (1 << 20) | 6;
        let f = bat_bytes(&e);
        assert!(load(&f, 3 * MIB..4 * MIB, &l, true).is_ok());
    }
}
