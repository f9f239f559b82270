//! [`VdiDisk`]: the virtual disk of a static, dynamic or differencing VDI image, read through
//! its block map. Runs of blocks stored one after another in the file are read with one
//! `pread`. In a differencing image, free blocks read the parent; zero blocks read zeros.

use super::block_map::{is_allocated, BlockMap, BLOCK_FREE};
use super::{VdiError, VdiHeader, VdiImageType};
use crate::read_at::ReadAt;
use crate::SharedDisk;
use std::io;
use std::ops::Range;

/// The virtual disk of a VDI image (length = the header's disk size).
pub struct VdiDisk {
    file: SharedDisk,
    header: VdiHeader,
    map: BlockMap,
    block_size: u64,
    parent: Option<SharedDisk>,
}

impl std::fmt::Debug for VdiDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VdiDisk")
            .field("disk_size", &self.header.disk_size)
            .field("blocks", &self.map.len())
            .finish()
    }
}

impl VdiDisk {
    /// Reads the block map of the image whose header [`VdiHeader::read`] returned. A
    /// differencing image needs its `parent` (checked by the caller, e.g. with
    /// [`super::parent::check_parent`]); a parent shorter than the child reads as zeros past
    /// its end. Static and dynamic images have none: `parent` must be `None`.
    pub fn open(
        file: SharedDisk,
        header: VdiHeader,
        parent: Option<SharedDisk>,
    ) -> Result<VdiDisk, VdiError> {
        header.validate(file.len())?;
        let differencing = header.image_type == VdiImageType::Differencing;
        match (&parent, differencing) {
            (Some(_), false) => return Err(VdiError::UnexpectedParent(header.image_type)),
            (None, true) => return Err(VdiError::MissingParent(header.uuid_link)),
            _ => {}
        }
        let map = BlockMap::read(file.as_ref(), &header)?;
        Ok(VdiDisk {
            block_size: u64::from(header.block_size),
            file,
            header,
            map,
            parent,
        })
    }

    /// Fills `run` at virtual `offset` for blocks not in the file: the parent's bytes (zeros
    /// past its end) for free blocks of a differencing image, zeros otherwise.
    fn fill_absent(&self, entry: u32, run: &mut [u8], offset: u64) -> io::Result<()> {
        let Some(parent) = self.parent.as_ref().filter(|_| entry == BLOCK_FREE) else {
            run.fill(0);
            return Ok(());
        };
        let inside = usize::try_from(parent.len().saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(run.len());
        let (head, tail) = run.split_at_mut(inside);
        if !head.is_empty() {
            parent.read_exact_at(head, offset)?;
        }
        tail.fill(0);
        Ok(())
    }

    /// The header.
    pub fn header(&self) -> &VdiHeader {
        &self.header
    }

    /// The block map.
    pub fn block_map(&self) -> &BlockMap {
        &self.map
    }

    /// Whether the image is static (every block allocated at creation).
    pub fn is_static(&self) -> bool {
        self.header.image_type == VdiImageType::Static
    }

    /// File offset of the data of the block whose map entry is `entry` (allocated).
    fn slot_offset(&self, entry: u32) -> u64 {
        u64::from(self.header.data_offset)
            + u64::from(entry) * self.header.block_stride()
            + u64::from(self.header.block_extra)
    }
}

impl ReadAt for VdiDisk {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let size = self.header.disk_size;
        let n = crate::read_at::bytes_within(buf.len(), offset, size);
        if n == 0 {
            return Ok(0);
        }
        let bs = self.block_size;
        let mut done = 0usize;
        while done < n {
            let at = offset + done as u64;
            let index = at / bs;
            let in_block = at % bs;
            let entry = self.map.entry(index).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "VDI block map too short")
            })?;
            let mut take = ((bs - in_block) as usize).min(n - done);
            if !is_allocated(entry) {
                // Free and zero blocks: extend over the following ones of the same kind.
                let mut next = index + 1;
                while done + take < n {
                    match self.map.entry(next) {
                        Some(e) if e == entry => {
                            take = (take + bs as usize).min(n - done);
                            next += 1;
                        }
                        _ => break,
                    }
                }
                self.fill_absent(entry, &mut buf[done..done + take], at)?;
            } else {
                // Extend over blocks stored in the following slots, when the slots are
                // contiguous in the file (no block extra between them).
                let mut next = index + 1;
                let mut slot = entry;
                while done + take < n && self.header.block_extra == 0 {
                    match self.map.entry(next) {
                        Some(e) if is_allocated(e) && Some(e) == slot.checked_add(1) => {
                            take = (take + bs as usize).min(n - done);
                            slot = e;
                            next += 1;
                        }
                        _ => break,
                    }
                }
                self.file.read_exact_at(
                    &mut buf[done..done + take],
                    self.slot_offset(entry) + in_block,
                )?;
            }
            done += take;
        }
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.header.disk_size
    }

    /// The allocated blocks, and for a differencing image also the parent's data ranges
    /// (which may include blocks the child marks zero: reported as data, never hidden).
    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        let size = self.header.disk_size;
        if offset >= size {
            return Ok(None);
        }
        let bs = self.block_size;
        let own = self.map.next_allocated(offset / bs).and_then(|blocks| {
            let start = (blocks.start * bs).max(offset);
            let end = blocks.end.saturating_mul(bs).min(size);
            (start < end).then_some(start..end)
        });
        let Some(parent) = &self.parent else {
            return Ok(own);
        };
        let theirs = parent
            .next_data(offset)?
            .and_then(|r| (r.start < size).then(|| r.start..r.end.min(size)));
        Ok(match (own, theirs) {
            (None, r) | (r, None) => r,
            (Some(a), Some(b)) => {
                let (first, second) = if a.start <= b.start { (a, b) } else { (b, a) };
                if second.start <= first.end {
                    Some(first.start..first.end.max(second.end))
                } else {
                    Some(first)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vdi::block_map::{BLOCK_FREE, BLOCK_ZERO};
    use crate::vdi::header::tests::sample;
    use std::sync::Arc;

    /// 4 MiB disk: block 0 free, block 1 in slot 1, block 2 zero, block 3 in slot 0; slot 0
    /// holds 0x33, slot 1 holds 0x11. The disk size is cut to 3.5 MiB to test the tail.
    fn disk() -> VdiDisk {
        let mut b = sample();
        b[368..376].copy_from_slice(&(7u64 << 19).to_le_bytes());
        b.resize(1024 + (2 << 20), 0);
        for (i, e) in [BLOCK_FREE, 1, BLOCK_ZERO, 0].iter().enumerate() {
            b[512 + 4 * i..516 + 4 * i].copy_from_slice(&e.to_le_bytes());
        }
        b[1024..1024 + (1 << 20)].fill(0x33);
        b[1024 + (1 << 20)..].fill(0x11);
        let h = VdiHeader::parse(&b).unwrap();
        VdiDisk::open(Arc::new(b), h, None).unwrap()
    }

    #[test]
    fn reads_free_zero_and_allocated_blocks() {
        let d = disk();
        assert_eq!(d.len(), 7 << 19);
        let mut all = vec![9u8; 7 << 19];
        d.read_exact_at(&mut all, 0).unwrap();
        let mib = 1 << 20;
        assert!(all[..mib].iter().all(|&b| b == 0));
        assert!(all[mib..2 * mib].iter().all(|&b| b == 0x11));
        assert!(all[2 * mib..3 * mib].iter().all(|&b| b == 0));
        assert!(all[3 * mib..].iter().all(|&b| b == 0x33));
        let mut two = [0u8; 2];
        d.read_exact_at(&mut two, 2 * mib as u64 - 1).unwrap();
        assert_eq!(two, [0x11, 0]);
        assert_eq!(d.read_at(&mut two, 7 << 19).unwrap(), 0);
    }

    #[test]
    fn next_data_skips_free_and_zero_blocks() {
        let d = disk();
        assert_eq!(d.next_data(0).unwrap(), Some((1 << 20)..(2 << 20)));
        assert_eq!(d.next_data(3 << 19).unwrap(), Some((3 << 19)..(2 << 20)));
        assert_eq!(d.next_data(5 << 19).unwrap(), Some((3 << 20)..(7 << 19)));
        assert_eq!(d.next_data(2 << 20).unwrap(), Some((3 << 20)..(7 << 19)));
        assert_eq!(d.next_data(7 << 19).unwrap(), None);
    }

    #[test]
    fn a_differencing_image_reads_free_blocks_from_its_parent() {
        let mut b = sample();
        b[76..80].copy_from_slice(&4u32.to_le_bytes());
        b[424] = 0x42;
        b.resize(1024 + (1 << 20), 0);
        for (i, e) in [BLOCK_FREE, 0, BLOCK_ZERO, BLOCK_FREE].iter().enumerate() {
            b[512 + 4 * i..516 + 4 * i].copy_from_slice(&e.to_le_bytes());
        }
        b[1024..].fill(0x11);
        let h = VdiHeader::parse(&b).unwrap();
        let file: SharedDisk = Arc::new(b);
        let e = VdiDisk::open(file.clone(), h.clone(), None).unwrap_err();
        assert_eq!(e.to_string(), "differencing VDI image needs its parent (UUID 00000042-0000-0000-0000-000000000000, at offset 424); give its path with --parent PATH");
        // The parent ends half-way through block 3.
        let parent: SharedDisk = Arc::new(vec![0xAAu8; 7 << 19]);
        let d = VdiDisk::open(file, h, Some(parent)).unwrap();
        let mut all = vec![9u8; 4 << 20];
        d.read_exact_at(&mut all, 0).unwrap();
        let mib = 1 << 20;
        assert!(all[..mib].iter().all(|&b| b == 0xAA), "free: parent");
        assert!(
            all[mib..2 * mib].iter().all(|&b| b == 0x11),
            "allocated: child"
        );
        assert!(all[2 * mib..3 * mib].iter().all(|&b| b == 0), "zero: zeros");
        assert!(all[3 * mib..7 << 19].iter().all(|&b| b == 0xAA));
        assert!(
            all[7 << 19..].iter().all(|&b| b == 0),
            "past the parent's end"
        );
        // The parent says all of it may be data; the zero block is reported, not hidden.
        assert_eq!(d.next_data(0).unwrap(), Some(0..(7 << 19)));
    }

    #[test]
    fn refuses_a_parent_for_a_dynamic_image() {
        let b = sample();
        let h = VdiHeader::parse(&b).unwrap();
        let mut f = b.clone();
        f.resize(1024, 0);
        f[512..528].fill(0xFF);
        let e = VdiDisk::open(
            Arc::new(f.clone()),
            h.clone(),
            Some(Arc::new(vec![0u8; 16])),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a parent disk was given for a dynamic VDI image, which has none"
        );
        assert!(VdiDisk::open(Arc::new(f), h, None).is_ok());
    }
}
