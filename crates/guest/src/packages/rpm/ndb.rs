//! rpm's own ndb package file `Packages.db` (SUSE: `/usr/lib/sysimage/rpm/Packages.db`), as
//! rpm 4.18's `lib/backend/ndb/rpmpkg.c` writes it. All integers little-endian:
//!
//! ```text
//! header (32 bytes): 'RpmP', version 0, generation, slot page count, next package index
//! slot pages (4096 bytes each; page 0 after the header): 16-byte slots
//!     'Slot', package index, block offset, block count   (offset 0 = free slot)
//! blobs at block offset × 16, block count × 16 bytes:
//!     'BlbS', package index, generation, length, <length bytes: the header blob>,
//!     zero padding, adler32 (of everything before it), length, 'BlbE'
//! ```
//!
//! Every slot must carry its magic; a used slot must point after the slot pages and inside
//! the file, and no two blobs may overlap (so the bytes handed on never exceed the file). A
//! blob whose head or tail does not match its slot, or whose adler32 is wrong, is passed on
//! empty, so it counts as a header that failed to parse and the others are still read.

/// `'RpmP'` little-endian.
const PKGDB_MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const BLOBHEAD_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const BLOBTAIL_MAGIC: u32 = u32::from_le_bytes(*b"BlbE");
const HEADER_SIZE: usize = 32;
const PAGE_SIZE: usize = 4096;
const SLOT_SIZE: usize = 16;
const BLK_SIZE: usize = 16;
const BLOBHEAD_SIZE: usize = 16;
const BLOBTAIL_SIZE: usize = 12;

/// Why an ndb package file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NdbError {
    /// No `RpmP` magic (or shorter than its header).
    #[error("not an rpm ndb package file")]
    NotNdb,
    /// A version other than 0.
    #[error("ndb version {0} (only 0 exists)")]
    Version(u32),
    /// The slot pages announced do not fit the file.
    #[error("{pages} slot pages announced, the file has {len} bytes")]
    SlotPages {
        /// Slot pages in the header.
        pages: u32,
        /// File size.
        len: usize,
    },
    /// A slot without its magic, or pointing where no blob can be.
    #[error("slot {slot}: {what}")]
    Slot {
        /// Slot number (counting the header's two as rpm does).
        slot: usize,
        /// What is wrong.
        what: String,
    },
    /// More used slots than [`super::MAX_PACKAGES`].
    #[error("more than {0} used slots")]
    TooManySlots(usize),
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// adler32 as RFC 1950 defines it (what rpmpkg.c computes).
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// One used slot.
#[derive(Clone, Copy)]
struct Slot {
    pkgidx: u32,
    blkoff: u32,
    blkcnt: u32,
}

/// The header blob of `slot`, or `None` when the blob does not check out.
fn blob(bytes: &[u8], s: Slot) -> Option<&[u8]> {
    let start = s.blkoff as usize * BLK_SIZE;
    let len = s.blkcnt as usize * BLK_SIZE;
    let b = bytes.get(start..start + len)?;
    if len < BLOBHEAD_SIZE + BLOBTAIL_SIZE || le32(b, 0) != BLOBHEAD_MAGIC || le32(b, 4) != s.pkgidx
    {
        return None;
    }
    let bloblen = le32(b, 12) as usize;
    if (BLOBHEAD_SIZE + bloblen + BLOBTAIL_SIZE).div_ceil(BLK_SIZE) != s.blkcnt as usize {
        return None;
    }
    let tail = len - BLOBTAIL_SIZE;
    if le32(b, tail) != adler32(&b[..tail])
        || le32(b, tail + 4) as usize != bloblen
        || le32(b, tail + 8) != BLOBTAIL_MAGIC
    {
        return None;
    }
    Some(&b[BLOBHEAD_SIZE..BLOBHEAD_SIZE + bloblen])
}

/// Calls `f` with each package's header blob in package-index order (an empty slice for a
/// damaged blob); `f` returns false to stop.
pub fn for_each_blob(bytes: &[u8], f: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), NdbError> {
    if bytes.len() < HEADER_SIZE || le32(bytes, 0) != PKGDB_MAGIC {
        return Err(NdbError::NotNdb);
    }
    let version = le32(bytes, 4);
    if version != 0 {
        return Err(NdbError::Version(version));
    }
    let pages = le32(bytes, 12);
    if pages == 0 || pages as u64 * PAGE_SIZE as u64 > bytes.len() as u64 {
        return Err(NdbError::SlotPages {
            pages,
            len: bytes.len(),
        });
    }
    let fileblks = (bytes.len() / BLK_SIZE) as u64;
    let minblkoff = pages as u64 * (PAGE_SIZE / BLK_SIZE) as u64;
    let mut slots = Vec::new();
    let first = HEADER_SIZE / SLOT_SIZE;
    for slot in first..pages as usize * (PAGE_SIZE / SLOT_SIZE) {
        let at = slot * SLOT_SIZE;
        let bad = |what: String| NdbError::Slot { slot, what };
        if le32(bytes, at) != SLOT_MAGIC {
            return Err(bad("no slot magic".into()));
        }
        let s = Slot {
            pkgidx: le32(bytes, at + 4),
            blkoff: le32(bytes, at + 8),
            blkcnt: le32(bytes, at + 12),
        };
        if s.blkoff == 0 {
            continue;
        }
        if s.pkgidx == 0 || s.blkcnt == 0 || u64::from(s.blkoff) < minblkoff {
            return Err(bad(format!(
                "package {} at block {} ({} blocks)",
                s.pkgidx, s.blkoff, s.blkcnt
            )));
        }
        if u64::from(s.blkoff) + u64::from(s.blkcnt) > fileblks {
            return Err(bad(format!(
                "blocks {}+{} beyond the file's {fileblks}",
                s.blkoff, s.blkcnt
            )));
        }
        if slots.len() >= super::MAX_PACKAGES {
            return Err(NdbError::TooManySlots(super::MAX_PACKAGES));
        }
        slots.push((slot, s));
    }
    // Blobs never overlap in a file rpm wrote: checking so bounds the bytes handed on.
    slots.sort_by_key(|(_, s)| s.blkoff);
    for w in slots.windows(2) {
        let (a, b) = (w[0].1, w[1].1);
        if u64::from(a.blkoff) + u64::from(a.blkcnt) > u64::from(b.blkoff) {
            return Err(NdbError::Slot {
                slot: w[1].0,
                what: format!(
                    "blob at block {} overlaps the one at {}",
                    b.blkoff, a.blkoff
                ),
            });
        }
    }
    slots.sort_by_key(|(_, s)| s.pkgidx);
    for (_, s) in slots {
        if !f(blob(bytes, s).unwrap_or(&[])) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_of_rfc1950_examples() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        // Long runs: the modulo must be taken before u32 overflows.
        let big = vec![0xffu8; 100_000];
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &big {
            a = (a + u64::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!(adler32(&big), ((b << 16) | a) as u32);
    }
}
