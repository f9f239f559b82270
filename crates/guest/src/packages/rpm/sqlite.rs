//! rpm's `rpmdb.sqlite`, read with our own reader of the few parts of the SQLite file format
//! it needs (<https://www.sqlite.org/fileformat2.html>), not by linking SQLite (README "rpm
//! databases" gives the measurement behind that choice):
//!
//! - the 100-byte file header (magic, page size, reserved bytes per page, text encoding);
//! - table b-trees: interior pages (0x05: child page numbers) and leaf pages (0x0d: cells of
//!   rowid + record), first the schema table rooted at page 1 to find the root page of table
//!   `Packages`, then that table;
//! - overflow page chains of payloads bigger than a page;
//! - the record format (varint header of serial types, then the values), to take the `blob`
//!   column of `Packages(hnum INTEGER PRIMARY KEY, blob BLOB)`.
//!
//! Every page number is checked against the file, every page is visited at most once per walk
//! (cycles and shared subtrees end the walk with an error), cell offsets stay inside their
//! page, and a payload is assembled only up to [`super::MAX_BLOB_BYTES`]. A write-ahead log
//! beside the file ([`super::sqlite_wal`]) is read through when given: its committed pages
//! replace the file's.

use super::sqlite_wal::{self, Wal, WalError};
use super::MAX_BLOB_BYTES;
use std::borrow::Cow;

/// The first 16 bytes of every SQLite 3 database.
pub const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Why an SQLite file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqliteError {
    /// The file does not start with the SQLite 3 magic (or is shorter than its header).
    #[error("not an SQLite 3 database")]
    NotSqlite,
    /// A header field has a value SQLite never writes.
    #[error("file header: {0}")]
    Header(String),
    /// The database's text encoding is UTF-16 (rpm creates UTF-8 databases).
    #[error("text encoding {0} is not UTF-8")]
    Encoding(u32),
    /// No table named `Packages` in the schema.
    #[error("no table Packages in the schema")]
    NoPackagesTable,
    /// A page number beyond the file (or 0).
    #[error("page {page} referenced from page {from}: the file has {pages} pages")]
    PageOutOfRange {
        /// The page number read.
        page: u64,
        /// The page it was read from.
        from: u32,
        /// Pages in the file.
        pages: u32,
    },
    /// A page reached twice in one walk: a cycle or a page shared by two parents.
    #[error("page {0} reached twice (cyclic or shared page links)")]
    PageLoop(u32),
    /// A page's content does not fit its structure.
    #[error("page {page}: {what}")]
    Corrupt {
        /// The page.
        page: u32,
        /// What is wrong.
        what: String,
    },
    /// A record's payload is bigger than [`super::MAX_BLOB_BYTES`].
    #[error("page {page}: a record of {size} bytes (at most {MAX_BLOB_BYTES} read)")]
    PayloadTooLarge {
        /// The leaf page.
        page: u32,
        /// The payload size claimed.
        size: u64,
    },
}

/// Page types of table b-trees.
const INTERIOR_TABLE: u8 = 0x05;
const LEAF_TABLE: u8 = 0x0d;

/// The geometry of one database file.
struct Db<'a> {
    bytes: &'a [u8],
    page_size: usize,
    usable: usize,
    /// Pages of the database: the file's, or the size the log's last commit gives.
    pages: u32,
    /// Pages of the file itself.
    file_pages: u32,
    /// Committed pages of the write-ahead log, read instead of the file's.
    wal: Wal<'a>,
}

fn corrupt(page: u32, what: impl Into<String>) -> SqliteError {
    SqliteError::Corrupt {
        page,
        what: what.into(),
    }
}

/// A varint at `at` in `b`: (value, bytes used).
fn varint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(at + i)?;
        if i == 8 {
            return Some(((v << 8) | u64::from(byte), 9));
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> Db<'a> {
    fn open(bytes: &'a [u8]) -> Result<Self, SqliteError> {
        if bytes.len() < 100 || &bytes[..16] != MAGIC {
            return Err(SqliteError::NotSqlite);
        }
        let page_size = match be16(bytes, 16) {
            1 => 65536,
            n if (512..=32768).contains(&n) && n.is_power_of_two() => n,
            n => return Err(SqliteError::Header(format!("page size {n}"))),
        };
        let reserved = usize::from(bytes[20]);
        let usable = page_size - reserved;
        if usable < 480 {
            return Err(SqliteError::Header(format!(
                "{reserved} reserved bytes in {page_size}-byte pages"
            )));
        }
        let encoding = be32(bytes, 56);
        if encoding > 1 {
            return Err(SqliteError::Encoding(encoding));
        }
        let pages = u32::try_from(bytes.len() / page_size).unwrap_or(u32::MAX);
        if pages == 0 {
            return Err(SqliteError::Header("shorter than one page".into()));
        }
        Ok(Db {
            bytes,
            page_size,
            usable,
            pages,
            file_pages: pages,
            wal: Wal::default(),
        })
    }

    /// Page `n` (1-based), checked; `from` names the referring page for the error.
    fn page(&self, n: u64, from: u32) -> Result<&'a [u8], SqliteError> {
        if n == 0 || n > u64::from(self.pages) {
            return Err(SqliteError::PageOutOfRange {
                page: n,
                from,
                pages: self.pages,
            });
        }
        if let Some(p) = self.wal.pages.get(&(n as u32)) {
            return Ok(&p[..self.usable]);
        }
        if n > u64::from(self.file_pages) {
            return Err(SqliteError::PageOutOfRange {
                page: n,
                from,
                pages: self.file_pages,
            });
        }
        let start = (n as usize - 1) * self.page_size;
        Ok(&self.bytes[start..start + self.usable])
    }

    /// Walks the table b-tree rooted at `root`, calling `f(page, rowid, payload)` for each row
    /// in rowid order; `f` returns false to stop.
    fn walk_table(
        &self,
        root: u32,
        f: &mut dyn FnMut(u32, Cow<'a, [u8]>) -> Result<bool, SqliteError>,
    ) -> Result<(), SqliteError> {
        let mut visited = vec![false; self.pages as usize + 1];
        // A stack of pages still to read, rightmost first so rows come out in order.
        let mut stack = vec![(root, 0u32)];
        while let Some((n, from)) = stack.pop() {
            let page = self.page(u64::from(n), from)?;
            if std::mem::replace(&mut visited[n as usize], true) {
                return Err(SqliteError::PageLoop(n));
            }
            let h = if n == 1 { 100 } else { 0 };
            if page.len() < h + 12 {
                return Err(corrupt(n, "page too small for its header"));
            }
            let kind = page[h];
            let cells = be16(page, h + 3);
            let header_len = match kind {
                INTERIOR_TABLE => 12,
                LEAF_TABLE => 8,
                k => return Err(corrupt(n, format!("page type {k:#04x} in a table b-tree"))),
            };
            let ptrs = h + header_len;
            if ptrs + 2 * cells > page.len() {
                return Err(corrupt(n, format!("{cells} cells do not fit the page")));
            }
            let cell_at = |i: usize| -> Result<usize, SqliteError> {
                let at = be16(page, ptrs + 2 * i);
                if at < ptrs + 2 * cells || at >= page.len() {
                    return Err(corrupt(n, format!("cell {i} at offset {at}")));
                }
                Ok(at)
            };
            if kind == INTERIOR_TABLE {
                stack.push((be32(page, h + 8), n));
                for i in (0..cells).rev() {
                    let at = cell_at(i)?;
                    if at + 4 > page.len() {
                        return Err(corrupt(n, format!("cell {i} at offset {at}")));
                    }
                    stack.push((be32(page, at), n));
                }
                continue;
            }
            for i in 0..cells {
                let at = cell_at(i)?;
                let (size, a) =
                    varint(page, at).ok_or_else(|| corrupt(n, format!("cell {i}: size")))?;
                let (_rowid, b) =
                    varint(page, at + a).ok_or_else(|| corrupt(n, format!("cell {i}: rowid")))?;
                let payload = self.payload(n, page, at + a + b, size, &mut visited)?;
                if !f(n, payload)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The payload of `size` bytes whose local part starts at `at` in leaf page `n`, followed
    /// through its overflow pages.
    fn payload(
        &self,
        n: u32,
        page: &'a [u8],
        at: usize,
        size: u64,
        visited: &mut [bool],
    ) -> Result<Cow<'a, [u8]>, SqliteError> {
        if size > MAX_BLOB_BYTES as u64 {
            return Err(SqliteError::PayloadTooLarge { page: n, size });
        }
        let size = size as usize;
        let u = self.usable;
        let x = u - 35;
        let local = if size <= x {
            size
        } else {
            let m = (u - 12) * 32 / 255 - 23;
            let k = m + (size - m) % (u - 4);
            if k <= x {
                k
            } else {
                m
            }
        };
        if at + local > page.len() {
            return Err(corrupt(n, format!("payload of {local} bytes at {at}")));
        }
        if local == size {
            return Ok(Cow::Borrowed(&page[at..at + size]));
        }
        if at + local + 4 > page.len() {
            return Err(corrupt(n, "overflow page number beyond the page"));
        }
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&page[at..at + local]);
        let mut next = be32(page, at + local);
        let mut from = n;
        while out.len() < size {
            let ov = self.page(u64::from(next), from)?;
            if std::mem::replace(&mut visited[next as usize], true) {
                return Err(SqliteError::PageLoop(next));
            }
            let take = (size - out.len()).min(u - 4);
            out.extend_from_slice(&ov[4..4 + take]);
            from = next;
            next = be32(ov, 0);
        }
        Ok(Cow::Owned(out))
    }
}

/// The values of a record, as byte slices (integers big-endian as stored, NULL empty), each
/// with its serial type.
fn record(payload: &[u8], page: u32) -> Result<Vec<(u64, &[u8])>, SqliteError> {
    let bad = |what: &str| corrupt(page, format!("record: {what}"));
    let (hlen, mut at) = varint(payload, 0).ok_or_else(|| bad("header size"))?;
    let hlen = usize::try_from(hlen)
        .ok()
        .filter(|&h| h <= payload.len())
        .ok_or_else(|| bad("header beyond the payload"))?;
    let mut body = hlen;
    let mut out = Vec::new();
    while at < hlen {
        let (t, used) = varint(payload, at).ok_or_else(|| bad("serial type"))?;
        at += used;
        let len = match t {
            0 | 8 | 9 => 0,
            1..=4 => t as usize,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return Err(bad("reserved serial type")),
            t => usize::try_from((t - 12) / 2).map_err(|_| bad("value length"))?,
        };
        if len > payload.len() - body {
            return Err(bad("value beyond the payload"));
        }
        out.push((t, &payload[body..body + len]));
        body += len;
    }
    Ok(out)
}

/// An integer value of a record.
fn int_value(t: u64, v: &[u8]) -> Option<i64> {
    match t {
        8 => Some(0),
        9 => Some(1),
        1..=6 => {
            let mut x: i64 = if v[0] & 0x80 != 0 { -1 } else { 0 };
            for &b in v {
                x = (x << 8) | i64::from(b);
            }
            Some(x)
        }
        _ => None,
    }
}

/// The root page of table `Packages`, from the schema table at page 1.
fn packages_root(db: &Db<'_>) -> Result<u32, SqliteError> {
    let mut root = None;
    db.walk_table(1, &mut |page, payload| {
        let cols = record(&payload, page)?;
        // sqlite_schema(type, name, tbl_name, rootpage, sql)
        if cols.len() >= 4 && cols[0].1 == b"table" && cols[1].1 == b"Packages" {
            let r = int_value(cols[3].0, cols[3].1)
                .and_then(|r| u32::try_from(r).ok())
                .ok_or_else(|| corrupt(page, "Packages: root page not an integer"))?;
            root = Some(r);
            return Ok(false);
        }
        Ok(true)
    })?;
    root.ok_or(SqliteError::NoPackagesTable)
}

/// Calls `f` with the `blob` of each row of table `Packages`, in `hnum` order; `f` returns
/// false to stop.
pub fn for_each_blob(bytes: &[u8], f: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), SqliteError> {
    for_each_blob_wal(bytes, None, f).map(|_| ())
}

/// What became of a write-ahead log given to [`for_each_blob_wal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalUse {
    /// Its committed transactions were read: `commits` commit frames, `pages` distinct pages;
    /// `uncommitted` frames of an unfinished transaction were left out.
    Applied {
        /// Commit frames.
        commits: usize,
        /// Distinct pages taken from the log.
        pages: usize,
        /// Frames after the last commit.
        uncommitted: usize,
    },
    /// The log is not valid for this database (SQLite ignores it too).
    Ignored(WalError),
}

/// [`for_each_blob`] reading the database through its write-ahead log `wal`, as SQLite does.
pub fn for_each_blob_wal(
    bytes: &[u8],
    wal: Option<&[u8]>,
    f: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<Option<WalUse>, SqliteError> {
    let mut db = Db::open(bytes)?;
    let used = wal.map(|w| match sqlite_wal::parse(w, db.page_size) {
        Ok(w) => {
            let used = WalUse::Applied {
                commits: w.commits,
                pages: w.pages.len(),
                uncommitted: w.uncommitted,
            };
            if w.commits > 0 {
                // Every page of the database is in the file or in the log: a larger size (a
                // hostile log) would only name pages that are nowhere.
                let present = u64::from(db.file_pages) + w.pages.len() as u64;
                db.pages = u32::try_from(u64::from(w.db_pages).min(present)).unwrap_or(u32::MAX);
                db.wal = w;
            }
            used
        }
        Err(e) => WalUse::Ignored(e),
    });
    let root = packages_root(&db)?;
    db.walk_table(root, &mut |page, payload| {
        let cols = record(&payload, page)?;
        // Packages(hnum INTEGER PRIMARY KEY, blob BLOB): hnum is the rowid (stored as NULL).
        match cols.get(1) {
            Some(&(t, v)) if t >= 12 && t % 2 == 0 => Ok(f(v)),
            _ => Err(corrupt(page, "Packages row without a blob")),
        }
    })?;
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(varint(&[0x05], 0), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00], 0), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9], 0), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81], 0), None);
    }

    #[test]
    fn not_sqlite_and_bad_headers() {
        assert_eq!(
            for_each_blob(b"", &mut |_| true),
            Err(SqliteError::NotSqlite)
        );
        let mut h = vec![0u8; 4096];
        h[..16].copy_from_slice(MAGIC);
        h[16..18].copy_from_slice(&1000u16.to_be_bytes());
        assert!(matches!(
            for_each_blob(&h, &mut |_| true),
            Err(SqliteError::Header(_))
        ));
    }
}
