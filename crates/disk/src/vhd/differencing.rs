//! Differencing VHDs: a dynamic VHD whose unallocated blocks and clear bitmap bits are not
//! zeros but the parent's bytes. The block table and bitmaps are read by [`DynamicVhd`]; this
//! module adds the parent.
//!
//! [`DifferencingHeader::read`] decodes what the caller needs to find the parent (name,
//! unique id, time stamp, locators: see [`super::parent`]) before opening it;
//! [`DifferencingVhd::open`] then reads through the chain.

use super::dynamic::{DynamicError, DynamicVhd};
use super::dynamic_header::{DynamicHeader, DYNAMIC_HEADER_SIZE};
use super::footer::{DiskType, Footer, FOOTER_SIZE};
use super::parent::{parent_candidates, read_locator, Candidate, DecodedLocator};
use crate::read_at::ReadAt;
use crate::SharedDisk;
use std::io;
use std::ops::Range;

/// Why a differencing VHD cannot be read. One line, with the offset where it applies.
#[derive(Debug, thiserror::Error)]
pub enum DifferencingError {
    /// An I/O error; the kind is kept.
    #[error("{op}: {source}")]
    Io {
        /// What was being read.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Too small for a footer and a dynamic header.
    #[error("the {0}-byte file is too small for a differencing VHD (footer and dynamic header need 1536 bytes)")]
    TooSmall(u64),
    /// No footer at the end, nor its copy at offset 0.
    #[error("no VHD footer ('conectix') at offset {end_offset} nor its copy at offset 0")]
    NoFooter {
        /// Where the footer should be.
        end_offset: u64,
    },
    /// Another disk type.
    #[error("the footer's disk type is {0}, not differencing")]
    NotDifferencing(String),
    /// The dynamic header lies outside the file.
    #[error("dynamic header offset {offset} in the footer lies outside the {file_len}-byte file")]
    HeaderOutsideFile {
        /// The footer's data offset.
        offset: u64,
        /// File length.
        file_len: u64,
    },
    /// The dynamic header or block table is unusable.
    #[error("{0}")]
    Dynamic(DynamicError),
}

impl DifferencingError {
    fn io(op: &'static str, source: io::Error) -> Self {
        DifferencingError::Io { op, source }
    }
}

/// What a differencing VHD says about itself and its parent, read before the parent is
/// opened.
#[derive(Debug, Clone)]
pub struct DifferencingHeader {
    /// The footer (at the end of the file, or its copy at 0 when the end one is missing).
    pub footer: Footer,
    /// The dynamic header: block table, parent name, unique id, time stamp and locators.
    pub dynamic: DynamicHeader,
    /// The text of each parent locator.
    pub locators: Vec<DecodedLocator>,
    /// Where block data must end: the trailing footer's offset (or the file's end).
    pub data_end: u64,
}

impl DifferencingHeader {
    /// Reads the footer, the dynamic header and the locators of a differencing VHD.
    pub fn read(file: &dyn ReadAt) -> Result<DifferencingHeader, DifferencingError> {
        let len = file.len();
        if len < (FOOTER_SIZE + DYNAMIC_HEADER_SIZE) as u64 {
            return Err(DifferencingError::TooSmall(len));
        }
        let end_offset = len - FOOTER_SIZE as u64;
        let mut raw = [0u8; FOOTER_SIZE];
        file.read_exact_at(&mut raw, end_offset)
            .map_err(|e| DifferencingError::io("cannot read the footer", e))?;
        let mut footer = Footer::parse(&raw);
        let mut data_end = end_offset;
        if !footer.has_cookie() {
            file.read_exact_at(&mut raw, 0)
                .map_err(|e| DifferencingError::io("cannot read the footer copy", e))?;
            footer = Footer::parse(&raw);
            data_end = len;
            if !footer.has_cookie() {
                return Err(DifferencingError::NoFooter { end_offset });
            }
        }
        if footer.disk_type != DiskType::Differencing {
            return Err(DifferencingError::NotDifferencing(footer.disk_type.name()));
        }
        let at = footer.data_offset;
        if at
            .checked_add(DYNAMIC_HEADER_SIZE as u64)
            .is_none_or(|e| e > data_end)
        {
            return Err(DifferencingError::HeaderOutsideFile {
                offset: at,
                file_len: len,
            });
        }
        let mut raw = [0u8; DYNAMIC_HEADER_SIZE];
        file.read_exact_at(&mut raw, at)
            .map_err(|e| DifferencingError::io("cannot read the dynamic header", e))?;
        let dynamic = DynamicHeader::parse(&raw);
        if !dynamic.has_cookie() {
            return Err(DifferencingError::Dynamic(DynamicError::BadCookie));
        }
        let locators = dynamic
            .parent_locators
            .iter()
            .map(|l| read_locator(file, l))
            .collect();
        Ok(DifferencingHeader {
            footer,
            dynamic,
            locators,
            data_end,
        })
    }

    /// Size of the virtual disk in bytes.
    pub fn virtual_size(&self) -> u64 {
        self.footer.virtual_size()
    }

    /// Where the parent of this child, read from `child_path`, may be, in the order to try
    /// (see [`super::parent::parent_candidates`]). Opens nothing.
    pub fn parent_candidates(&self, child_path: &std::path::Path) -> Vec<Candidate> {
        parent_candidates(child_path, &self.dynamic, &self.locators)
    }
}

/// The virtual disk of a differencing VHD over its parent.
pub struct DifferencingVhd {
    own: DynamicVhd<SharedDisk>,
    parent: SharedDisk,
    header: DifferencingHeader,
}

impl std::fmt::Debug for DifferencingVhd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DifferencingVhd")
            .field("virtual_size", &self.own.len())
            .field("parent_len", &self.parent.len())
            .finish()
    }
}

impl DifferencingVhd {
    /// Reads the block table of the child `file` described by `header`; reads of what the
    /// child does not hold go to `parent` (already checked by the caller, e.g. with
    /// [`super::parent::resolve_parent`]). A parent shorter than the child reads as zeros
    /// past its end, as qemu treats a short backing file.
    pub fn open(
        file: SharedDisk,
        header: DifferencingHeader,
        parent: SharedDisk,
    ) -> Result<DifferencingVhd, DifferencingError> {
        let own = DynamicVhd::open(
            file,
            &header.dynamic,
            header.virtual_size(),
            header.data_end,
        )
        .map_err(|e| DifferencingError::io("cannot read the block table", e))?
        .map_err(DifferencingError::Dynamic)?;
        Ok(DifferencingVhd {
            own,
            parent,
            header,
        })
    }

    /// The header the disk was opened with.
    pub fn header(&self) -> &DifferencingHeader {
        &self.header
    }

    /// Blocks allocated in the child itself.
    pub fn allocated_blocks(&self) -> usize {
        self.own.allocated_blocks()
    }
}

/// Reads `run` at `offset` from `parent`, zeros past its end.
fn read_parent(parent: &dyn ReadAt, run: &mut [u8], offset: u64) -> io::Result<()> {
    let plen = parent.len();
    let inside = usize::try_from(plen.saturating_sub(offset))
        .unwrap_or(usize::MAX)
        .min(run.len());
    let (head, tail) = run.split_at_mut(inside);
    if !head.is_empty() {
        parent.read_exact_at(head, offset)?;
    }
    tail.fill(0);
    Ok(())
}

impl ReadAt for DifferencingVhd {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let parent = self.parent.as_ref();
        self.own
            .read_with(buf, offset, &mut |run, at| read_parent(parent, run, at))
    }

    fn len(&self) -> u64 {
        self.own.len()
    }

    /// The union of the child's allocated blocks and the parent's data, from `offset`.
    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        let len = self.own.len();
        let own = self.own.next_data(offset)?;
        let parent = self
            .parent
            .next_data(offset)?
            .and_then(|r| (r.start < len).then(|| r.start..r.end.min(len)));
        Ok(match (own, parent) {
            (None, r) | (r, None) => r,
            (Some(a), Some(b)) => {
                let (first, second) = if a.start <= b.start { (a, b) } else { (b, a) };
                // Overlapping or touching ranges merge; otherwise the first alone.
                if second.start <= first.end {
                    first.start..first.end.max(second.end)
                } else {
                    first
                }
                .into()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vhd::dynamic_header::DYNAMIC_COOKIE;
    use std::sync::Arc;

    /// A child of 4 blocks of 4 KiB (8 sectors each): block 1 allocated with sectors 0 and 2
    /// present (0xC1), block 3 fully present with zeros. Footer at the end, header at 512,
    /// BAT at 1536.
    fn child() -> Vec<u8> {
        let bs = 4096u32;
        let mut footer = Footer::new_fixed(4 * 4096);
        footer.disk_type = DiskType::Differencing;
        footer.data_offset = 512;
        let mut h = [0u8; DYNAMIC_HEADER_SIZE];
        h[0..8].copy_from_slice(DYNAMIC_COOKIE);
        h[16..24].copy_from_slice(&1536u64.to_be_bytes());
        h[28..32].copy_from_slice(&4u32.to_be_bytes());
        h[32..36].copy_from_slice(&bs.to_be_bytes());
        let mut f = footer.to_bytes().to_vec();
        f.extend_from_slice(&h);
        f.resize(2048, 0);
        let mut bat = [0xFFFF_FFFFu32; 4];
        bat[1] = 4;
        let mut blk1 = vec![0u8; 512 + 4096];
        blk1[0] = 0b1010_0000;
        blk1[512..].fill(0xC1);
        f.extend_from_slice(&blk1);
        bat[3] = (f.len() / 512) as u32;
        let mut blk3 = vec![0u8; 512 + 4096];
        blk3[0] = 0xFF;
        f.extend_from_slice(&blk3);
        for (i, e) in bat.iter().enumerate() {
            f[1536 + 4 * i..1540 + 4 * i].copy_from_slice(&e.to_be_bytes());
        }
        f.extend_from_slice(&footer.to_bytes());
        f
    }

    fn open(parent: Vec<u8>) -> DifferencingVhd {
        let file = child();
        let header = DifferencingHeader::read(&file).unwrap();
        DifferencingVhd::open(Arc::new(file), header, Arc::new(parent)).unwrap()
    }

    #[test]
    fn clear_bits_and_unallocated_blocks_read_the_parent() {
        let d = open(vec![0xAA; 4 * 4096]);
        let mut all = vec![0u8; 4 * 4096];
        d.read_exact_at(&mut all, 0).unwrap();
        assert!(
            all[..4096].iter().all(|&b| b == 0xAA),
            "block 0 from the parent"
        );
        let b1 = &all[4096..8192];
        assert!(b1[..512].iter().all(|&b| b == 0xC1));
        assert!(
            b1[512..1024].iter().all(|&b| b == 0xAA),
            "clear bit: parent"
        );
        assert!(b1[1024..1536].iter().all(|&b| b == 0xC1));
        assert!(b1[1536..].iter().all(|&b| b == 0xAA));
        assert!(all[8192..12288].iter().all(|&b| b == 0xAA));
        assert!(
            all[12288..].iter().all(|&b| b == 0),
            "the child's zeros hide the parent"
        );
    }

    #[test]
    fn a_short_parent_reads_as_zeros_past_its_end() {
        let d = open(vec![0xAA; 4696]);
        let mut all = vec![9u8; 4 * 4096];
        d.read_exact_at(&mut all, 0).unwrap();
        assert!(all[..4096].iter().all(|&b| b == 0xAA));
        // Sector 1 of block 1 defers to the parent, which ends 88 bytes into it.
        assert_eq!(all[4695], 0xAA);
        assert_eq!(all[4696], 0);
        assert!(all[8192..12288].iter().all(|&b| b == 0));
    }

    #[test]
    fn next_data_is_the_union_of_child_and_parent() {
        // A parent whose next_data says only [0, 100) holds data (a raw vec says all of it).
        struct Sparse(Vec<u8>);
        impl ReadAt for Sparse {
            fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
                self.0.read_at(buf, offset)
            }
            fn len(&self) -> u64 {
                self.0.len() as u64
            }
            fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
                Ok((offset < 100).then_some(offset..100))
            }
        }
        let file = child();
        let header = DifferencingHeader::read(&file).unwrap();
        let d = DifferencingVhd::open(Arc::new(file), header, Arc::new(Sparse(vec![1; 16384])))
            .unwrap();
        assert_eq!(d.next_data(0).unwrap(), Some(0..100));
        assert_eq!(d.next_data(100).unwrap(), Some(4096..8192));
        assert_eq!(d.next_data(8192).unwrap(), Some(12288..16384));
        assert_eq!(d.next_data(16384).unwrap(), None);
        // Touching ranges merge.
        let d = open(vec![1; 16384]);
        assert_eq!(d.next_data(0).unwrap(), Some(0..16384));
    }

    #[test]
    fn refuses_other_types_and_a_misplaced_header() {
        let mut f = child();
        let n = f.len();
        let mut footer = Footer::parse(f[n - 512..].try_into().unwrap());
        footer.disk_type = DiskType::Dynamic;
        f[n - 512..].copy_from_slice(&footer.to_bytes());
        assert_eq!(
            DifferencingHeader::read(&f).unwrap_err().to_string(),
            "the footer's disk type is dynamic, not differencing"
        );
        footer.disk_type = DiskType::Differencing;
        footer.data_offset = u64::MAX - 10;
        f[n - 512..].copy_from_slice(&footer.to_bytes());
        assert!(matches!(
            DifferencingHeader::read(&f),
            Err(DifferencingError::HeaderOutsideFile { .. })
        ));
        let f = vec![0u8; 4096];
        assert!(matches!(
            DifferencingHeader::read(&f),
            Err(DifferencingError::NoFooter { end_offset: 3584 })
        ));
        assert!(matches!(
            DifferencingHeader::read(&vec![0u8; 100]),
            Err(DifferencingError::TooSmall(100))
        ));
    }
}
