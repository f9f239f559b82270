//! SQLite's write-ahead log (`rpmdb.sqlite-wal`, <https://www.sqlite.org/fileformat2.html#walformat>):
//! rpm keeps its database in WAL mode, so an image taken while rpm ran, or after rpm was
//! killed, has transactions in the log that the database file does not hold yet. SQLite reads
//! the database through the log; so does [`super::sqlite`] when given one.
//!
//! ```text
//! header (32 bytes, big-endian): magic 0x377f0682/3, version 3007000, page size,
//!     checkpoint sequence, salt-1, salt-2, checksum-1, checksum-2
//! frames: { page number, database size in pages after commit (0 = not a commit),
//!           salt-1, salt-2, checksum-1, checksum-2 } then one page
//! ```
//!
//! A frame is valid when its salts are the header's and its checksum, which chains from the
//! header's through every earlier frame, matches; the log ends at the first invalid frame.
//! Only frames up to the last valid commit frame count (a transaction half written is ignored,
//! as SQLite ignores it); a later frame of a page replaces an earlier one.

use std::collections::HashMap;

/// Why a write-ahead log was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalError {
    /// No WAL magic, or shorter than its header.
    #[error("not an SQLite write-ahead log")]
    NotWal,
    /// The header's checksum does not match (SQLite ignores such a log too).
    #[error("write-ahead log header checksum mismatch")]
    HeaderChecksum,
    /// The log's page size is not the database's.
    #[error("write-ahead log page size {wal}, database page size {db}")]
    PageSize {
        /// In the log.
        wal: u32,
        /// In the database.
        db: usize,
    },
}

/// The committed content of a log: the newest copy of each page, and the database size.
#[derive(Debug, Default)]
pub struct Wal<'a> {
    /// Page number → the page's bytes in the log.
    pub pages: HashMap<u32, &'a [u8]>,
    /// Database size in pages after the last commit (0: no commit in the log).
    pub db_pages: u32,
    /// Commit frames applied.
    pub commits: usize,
    /// Valid frames after the last commit (an unfinished transaction), ignored.
    pub uncommitted: usize,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// SQLite's WAL checksum over `data` (a multiple of 8 bytes), continuing from `s`.
fn checksum(mut s: (u32, u32), data: &[u8], big_endian: bool) -> (u32, u32) {
    for pair in data.chunks_exact(8) {
        let word = |at: usize| {
            let w = [pair[at], pair[at + 1], pair[at + 2], pair[at + 3]];
            if big_endian {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        s.0 = s.0.wrapping_add(word(0)).wrapping_add(s.1);
        s.1 = s.1.wrapping_add(word(4)).wrapping_add(s.0);
    }
    s
}

/// Reads the committed frames of `wal` for a database of `page_size`-byte pages.
pub fn parse(wal: &[u8], page_size: usize) -> Result<Wal<'_>, WalError> {
    if wal.len() < 32 {
        return Err(WalError::NotWal);
    }
    let big_endian = match be32(wal, 0) {
        0x377f_0682 => false,
        0x377f_0683 => true,
        _ => return Err(WalError::NotWal),
    };
    let s = checksum((0, 0), &wal[..24], big_endian);
    if s != (be32(wal, 24), be32(wal, 28)) {
        return Err(WalError::HeaderChecksum);
    }
    let wal_page = be32(wal, 8);
    let wal_page_size = if wal_page == 1 {
        65536
    } else {
        wal_page as usize
    };
    if wal_page_size != page_size {
        return Err(WalError::PageSize {
            wal: wal_page,
            db: page_size,
        });
    }
    let salts = (be32(wal, 16), be32(wal, 20));
    let mut out = Wal::default();
    let mut pending: Vec<(u32, &[u8])> = Vec::new();
    let mut sum = s;
    let frame = 24 + page_size;
    let mut at = 32;
    while at + frame <= wal.len() {
        let h = &wal[at..at + 24];
        let page = &wal[at + 24..at + frame];
        if (be32(h, 8), be32(h, 12)) != salts {
            break;
        }
        sum = checksum(sum, &h[..8], big_endian);
        sum = checksum(sum, page, big_endian);
        if sum != (be32(h, 16), be32(h, 20)) {
            break;
        }
        let pgno = be32(h, 0);
        if pgno == 0 {
            break;
        }
        pending.push((pgno, page));
        let commit = be32(h, 4);
        if commit != 0 {
            out.pages.extend(pending.drain(..));
            out.db_pages = commit;
            out.commits += 1;
        }
        at += frame;
    }
    out.uncommitted = pending.len();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of `frames` (page number, commit size, fill byte) for 512-byte pages.
    fn wal(frames: &[(u32, u32, u8)]) -> Vec<u8> {
        let mut w = Vec::new();
        for v in [0x377f_0682u32, 3_007_000, 512, 0, 11, 22] {
            w.extend_from_slice(&v.to_be_bytes());
        }
        let mut s = checksum((0, 0), &w, false);
        w.extend_from_slice(&s.0.to_be_bytes());
        w.extend_from_slice(&s.1.to_be_bytes());
        for &(pgno, commit, fill) in frames {
            let mut h = Vec::new();
            for v in [pgno, commit, 11, 22] {
                h.extend_from_slice(&v.to_be_bytes());
            }
            let page = vec![fill; 512];
            s = checksum(s, &h[..8], false);
            s = checksum(s, &page, false);
            h.extend_from_slice(&s.0.to_be_bytes());
            h.extend_from_slice(&s.1.to_be_bytes());
            w.extend(h);
            w.extend(page);
        }
        w
    }

    #[test]
    fn committed_frames_only_newest_copy_wins() {
        let w = wal(&[(2, 0, 1), (3, 5, 2), (2, 6, 3), (4, 0, 4)]);
        let p = parse(&w, 512).unwrap();
        assert_eq!((p.commits, p.db_pages, p.uncommitted), (2, 6, 1));
        assert_eq!(p.pages[&2][0], 3);
        assert_eq!(p.pages[&3][0], 2);
        assert!(!p.pages.contains_key(&4));
    }

    #[test]
    fn a_bad_checksum_ends_the_log() {
        let mut w = wal(&[(2, 3, 1), (3, 4, 2)]);
        let second_page = 32 + (24 + 512) + 24;
        w[second_page + 7] ^= 1;
        let p = parse(&w, 512).unwrap();
        assert_eq!((p.commits, p.db_pages), (1, 3));
        // A torn last frame is no frame.
        let w = wal(&[(2, 3, 1), (3, 4, 2)]);
        let p = parse(&w[..w.len() - 1], 512).unwrap();
        assert_eq!(p.commits, 1);
    }

    #[test]
    fn a_log_naming_page_four_billion_allocates_nothing() {
        // The commit says the database has 2^32-1 pages; the walk must not size anything by it.
        let w = wal(&[(0xffff_fff0, u32::MAX, 0x0d)]);
        let p = parse(&w, 512).unwrap();
        assert_eq!(p.db_pages, u32::MAX);
        let mut db = vec![0u8; 1024];
        db[..16].copy_from_slice(super::super::sqlite::MAGIC);
        db[16..18].copy_from_slice(&512u16.to_be_bytes());
        db[100] = 0x0d;
        let r = super::super::sqlite::for_each_blob_wal(&db, Some(&w), &mut |_| true);
        assert_eq!(r, Err(super::super::sqlite::SqliteError::NoPackagesTable));
    }

    #[test]
    fn bad_headers() {
        let mut w = wal(&[]);
        assert_eq!(
            parse(&w, 4096).unwrap_err(),
            WalError::PageSize { wal: 512, db: 4096 }
        );
        w[27] ^= 1;
        assert_eq!(parse(&w, 512).unwrap_err(), WalError::HeaderChecksum);
        assert_eq!(parse(&w[..31], 512).unwrap_err(), WalError::NotWal);
    }
}
