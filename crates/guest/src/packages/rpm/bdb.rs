//! rpm's Berkeley DB `Packages` (RHEL, CentOS and Oracle Linux 7 and 8): a Berkeley DB hash
//! database whose keys are package numbers (4 bytes, host order) and whose values are header
//! blobs. Read without libdb, from the on-disk layout of Berkeley DB 4.x–5.x:
//!
//! - page 0, the hash metadata page: magic `0x061561` (its byte order is the database's),
//!   version, page size, encryption, checksum flags;
//! - every page of type `P_HASH` / `P_HASH_UNSORTED` (the buckets and their overflow pages)
//!   holds an index of item offsets, key and data alternating; an item is `H_KEYDATA` (the
//!   bytes inline) or `H_OFFPAGE` (page number and length of a chain of `P_OVERFLOW` pages, for
//!   values bigger than a quarter page — nearly every rpm header);
//! - key 0 is rpm's counter of package numbers, not a package, and is skipped.
//!
//! The pages are scanned in file order (as rpm's own `bdb_ro` backend does), so no bucket
//! arithmetic has to be trusted. Each overflow page may belong to one chain only: a page
//! reached twice is an error, which ends looping chains; chains are also bounded by the value
//! length they announce, itself capped at [`super::MAX_BLOB_BYTES`].

use super::MAX_BLOB_BYTES;

/// The hash access method's magic number.
pub const HASH_MAGIC: u32 = 0x0006_1561;

/// Why a Berkeley DB file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BdbError {
    /// No hash magic in either byte order (or shorter than the metadata page).
    #[error("not a Berkeley DB hash database")]
    NotHash,
    /// The metadata page has values Berkeley DB never writes, or features not read here.
    #[error("metadata page: {0}")]
    Meta(String),
    /// A page number beyond the file.
    #[error("page {page} referenced from page {from}: the file has {pages} pages")]
    PageOutOfRange {
        /// The page number read.
        page: u32,
        /// The page it was read from.
        from: u32,
        /// Pages in the file.
        pages: u32,
    },
    /// An overflow page reached twice: a looping or shared chain.
    #[error("overflow page {0} reached twice (looping or shared chain)")]
    PageLoop(u32),
    /// A page's content does not fit its structure.
    #[error("page {page}: {what}")]
    Corrupt {
        /// The page.
        page: u32,
        /// What is wrong.
        what: String,
    },
}

const SIZEOF_PAGE: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;

fn corrupt(page: u32, what: impl Into<String>) -> BdbError {
    BdbError::Corrupt {
        page,
        what: what.into(),
    }
}

/// The database's geometry and byte order.
struct Db<'a> {
    bytes: &'a [u8],
    page_size: usize,
    pages: u32,
    big_endian: bool,
}

impl<'a> Db<'a> {
    fn open(bytes: &'a [u8]) -> Result<Self, BdbError> {
        if bytes.len() < 512 {
            return Err(BdbError::NotHash);
        }
        let m = [bytes[12], bytes[13], bytes[14], bytes[15]];
        let big_endian = if u32::from_le_bytes(m) == HASH_MAGIC {
            false
        } else if u32::from_be_bytes(m) == HASH_MAGIC {
            true
        } else {
            return Err(BdbError::NotHash);
        };
        let mut db = Db {
            bytes,
            page_size: 0,
            pages: 0,
            big_endian,
        };
        let version = db.u32(bytes, 16);
        if !(7..=10).contains(&version) {
            return Err(BdbError::Meta(format!("hash version {version}")));
        }
        let page_size = db.u32(bytes, 20);
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(BdbError::Meta(format!("page size {page_size}")));
        }
        if bytes[24] != 0 {
            return Err(BdbError::Meta("encrypted".into()));
        }
        if bytes[26] & 0x01 != 0 {
            return Err(BdbError::Meta("page checksums (not read here)".into()));
        }
        db.page_size = page_size as usize;
        db.pages = u32::try_from(bytes.len() / db.page_size).unwrap_or(u32::MAX);
        Ok(db)
    }

    fn u16(&self, b: &[u8], at: usize) -> usize {
        let v = [b[at], b[at + 1]];
        usize::from(if self.big_endian {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        })
    }

    fn u32(&self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    fn page(&self, n: u32, from: u32) -> Result<&'a [u8], BdbError> {
        if n == 0 || n >= self.pages {
            return Err(BdbError::PageOutOfRange {
                page: n,
                from,
                pages: self.pages,
            });
        }
        let start = n as usize * self.page_size;
        Ok(&self.bytes[start..start + self.page_size])
    }

    /// The value of an `H_OFFPAGE` item: `len` bytes from the chain starting at `first`.
    fn overflow(
        &self,
        from: u32,
        first: u32,
        len: u32,
        visited: &mut [bool],
    ) -> Result<Vec<u8>, BdbError> {
        let len = len as usize;
        if len > MAX_BLOB_BYTES {
            return Err(corrupt(
                from,
                format!("off-page item of {len} bytes (at most {MAX_BLOB_BYTES} read)"),
            ));
        }
        let mut out = Vec::with_capacity(len);
        let (mut n, mut prev) = (first, from);
        while out.len() < len {
            let p = self.page(n, prev)?;
            if std::mem::replace(&mut visited[n as usize], true) {
                return Err(BdbError::PageLoop(n));
            }
            if p[25] != P_OVERFLOW {
                return Err(corrupt(n, format!("type {} in an overflow chain", p[25])));
            }
            let here = self.u16(p, 22);
            if here > self.page_size - SIZEOF_PAGE || here > len - out.len() || here == 0 {
                return Err(corrupt(
                    n,
                    format!(
                        "{here} bytes on an overflow page ({} still due)",
                        len - out.len()
                    ),
                ));
            }
            out.extend_from_slice(&p[SIZEOF_PAGE..SIZEOF_PAGE + here]);
            prev = n;
            n = self.u32(p, 16);
        }
        Ok(out)
    }
}

/// Calls `f` with each header blob (every value but key 0's); `f` returns false to stop.
pub fn for_each_blob(bytes: &[u8], f: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), BdbError> {
    let db = Db::open(bytes)?;
    let mut visited = vec![false; db.pages as usize];
    for n in 1..db.pages {
        let p = db.page(n, 0)?;
        if p[25] != P_HASH && p[25] != P_HASH_UNSORTED {
            continue;
        }
        let entries = db.u16(p, 20);
        let index_end = SIZEOF_PAGE + 2 * entries;
        if entries % 2 != 0 || index_end > db.page_size {
            return Err(corrupt(n, format!("{entries} entries on a hash page")));
        }
        // Items sit at the end of the page in index order: item i ends where item i-1 begins.
        let mut items = Vec::with_capacity(entries);
        let mut end = db.page_size;
        for i in 0..entries {
            let at = db.u16(p, SIZEOF_PAGE + 2 * i);
            if at < index_end || at >= end {
                return Err(corrupt(n, format!("item {i} at offset {at}")));
            }
            items.push(&p[at..end]);
            end = at;
        }
        for pair in items.chunks_exact(2) {
            let (key, data) = (pair[0], pair[1]);
            if key[0] == H_KEYDATA && key[1..] == [0, 0, 0, 0] {
                continue; // rpm's counter
            }
            let keep_going = match data[0] {
                H_KEYDATA => f(&data[1..]),
                H_OFFPAGE if data.len() >= 12 => {
                    let first = db.u32(data, 4);
                    let len = db.u32(data, 8);
                    f(&db.overflow(n, first, len, &mut visited)?)
                }
                t => return Err(corrupt(n, format!("item of type {t} as a value"))),
            };
            if !keep_going {
                return Ok(());
            }
        }
    }
    Ok(())
}
