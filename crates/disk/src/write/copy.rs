//! The streaming copy under `convert`: read the source disk where it may hold data, write
//! only the chunks that are not all zeros, leave holes elsewhere.
//!
//! Reading and writing overlap: a reader thread fills buffers from a small fixed pool and a
//! writer (the calling thread) drains them, so memory stays at `POOL * CHUNK` whatever the
//! disk size.

use super::fault;
use crate::read_at::ReadAt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;

/// Bytes per read and write.
pub const CHUNK: usize = 4 << 20;
/// Zero runs this long or longer become holes (qemu-img's default `-S 4k`).
pub const SPARSE_GRANULE: usize = 4096;
/// Buffers in flight between reader and writer.
const POOL: usize = 4;

/// Why a copy stopped: a read of the source or a write of the destination failed, at
/// `offset` of the disk.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the source (or asking it where its data is) failed.
    Read {
        /// Disk offset of the read.
        offset: u64,
        /// The OS error (`UnexpectedEof` when the source ended early).
        source: io::Error,
    },
    /// Writing the destination failed (a full disk, a file-size limit ...).
    Write {
        /// Disk offset of the write.
        offset: u64,
        /// The OS error.
        source: io::Error,
    },
}

impl CopyError {
    fn read(offset: u64) -> impl FnOnce(io::Error) -> CopyError {
        move |source| CopyError::Read { offset, source }
    }
}

/// What a copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Bytes read from the source (holes and unallocated blocks are not read).
    pub bytes_read: u64,
    /// Bytes written to the destination (zero chunks are not written).
    pub bytes_written: u64,
}

/// True when every byte of `buf` is zero. ORs 4 KiB at a time in u64 words (the compiler
/// vectorises the inner loop) and stops at the first non-zero page.
pub fn is_zero(buf: &[u8]) -> bool {
    let mut pages = buf.chunks_exact(4096);
    for page in &mut pages {
        let acc = page.chunks_exact(8).fold(0u64, |a, w| {
            a | u64::from_ne_bytes(w.try_into().expect("8 bytes"))
        });
        if acc != 0 {
            return false;
        }
    }
    pages.remainder().iter().all(|&b| b == 0)
}

/// The byte ranges of `buf` to write: runs of `granule`-sized pieces that are not all zero,
/// merged. Zero pieces between them are left as holes.
pub fn nonzero_runs(buf: &[u8], granule: usize) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, piece) in buf.chunks(granule).enumerate() {
        if is_zero(piece) {
            continue;
        }
        let start = i * granule;
        let end = start + piece.len();
        match runs.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => runs.push(start..end),
        }
    }
    runs
}

/// Copies `src` into `dst` at the same offsets, `[0, src.len())`. `dst` must already be at
/// least that long (holes); zero chunks are skipped. `progress(done, total)` is called after
/// each chunk. A failure says which side failed and where.
pub fn copy_sparse(
    src: &dyn ReadAt,
    dst: &File,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CopyStats, CopyError> {
    let total = src.len();
    let (full_tx, full_rx) = mpsc::sync_channel::<Result<(u64, Vec<u8>), CopyError>>(POOL);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..POOL {
        empty_tx.send(vec![0u8; CHUNK]).expect("receiver alive");
    }
    let mut stats = CopyStats::default();
    std::thread::scope(|scope| -> Result<(), CopyError> {
        scope.spawn(move || {
            let mut offset = 0u64;
            let result = (|| -> Result<(), CopyError> {
                while let Some(range) = src.next_data(offset).map_err(CopyError::read(offset))? {
                    let mut at = range.start;
                    while at < range.end {
                        let Ok(mut buf) = empty_rx.recv() else {
                            return Ok(()); // writer stopped
                        };
                        // Keep chunks aligned to CHUNK so holes line up with whole chunks.
                        let next_boundary = (at / CHUNK as u64 + 1) * CHUNK as u64;
                        let end = next_boundary.min(range.end);
                        let n = (end - at) as usize;
                        buf.resize(n, 0);
                        src.read_exact_at(&mut buf, at)
                            .map_err(CopyError::read(at))?;
                        if full_tx.send(Ok((at, buf))).is_err() {
                            return Ok(());
                        }
                        at = end;
                    }
                    offset = range.end;
                }
                Ok(())
            })();
            if let Err(e) = result {
                let _ = full_tx.send(Err(e));
            }
        });
        for item in full_rx {
            let (at, buf) = item?;
            stats.bytes_read += buf.len() as u64;
            for run in nonzero_runs(&buf, SPARSE_GRANULE) {
                let offset = at + run.start as u64;
                dst.write_all_at(&buf[run.clone()], offset)
                    .map_err(|source| CopyError::Write { offset, source })?;
                stats.bytes_written += run.len() as u64;
            }
            fault::step("data chunk");
            progress(at + buf.len() as u64, total);
            let _ = empty_tx.send(buf);
        }
        Ok(())
    })?;
    progress(total, total);
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_zero_sees_every_byte() {
        for len in [0usize, 1, 7, 8, 9, 63, 64, 65, 1000, 4096] {
            let mut v = vec![0u8; len];
            assert!(is_zero(&v), "len {len}");
            for i in 0..len {
                v[i] = 1;
                assert!(!is_zero(&v), "len {len} byte {i}");
                v[i] = 0;
            }
        }
    }

    #[test]
    fn nonzero_runs_merge_neighbours_and_skip_zero_pieces() {
        let mut v = vec![0u8; 10 * 4096 + 10];
        v[5] = 1;
        v[4096 + 7] = 1;
        v[5 * 4096] = 1;
        v[10 * 4096 + 9] = 1;
        assert_eq!(
            nonzero_runs(&v, 4096),
            vec![0..2 * 4096, 5 * 4096..6 * 4096, 10 * 4096..10 * 4096 + 10]
        );
        assert!(nonzero_runs(&[0u8; 8192], 4096).is_empty());
    }

    #[test]
    fn copies_data_and_leaves_zero_chunks_unwritten() {
        let mut src = vec![0u8; 3 * CHUNK + 100];
        src[CHUNK + 5] = 9;
        src[3 * CHUNK + 99] = 7;
        let dst = tempfile::tempfile().unwrap();
        dst.set_len(src.len() as u64).unwrap();
        let mut calls = 0;
        let stats = copy_sparse(&src, &dst, &mut |_, _| calls += 1).unwrap();
        assert_eq!(stats.bytes_read, src.len() as u64);
        // Only the 4 KiB pieces holding data are written.
        assert_eq!(stats.bytes_written, 4096 + 100);
        assert!(calls >= 4);
        let mut back = vec![0u8; src.len()];
        dst.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(back, src);
    }
}
