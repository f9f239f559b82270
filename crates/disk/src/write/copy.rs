//! The streaming copy under `convert`: read the source disk where it may hold data, write
//! only the chunks that are not all zeros, leave holes elsewhere.
//!
//! Reading and writing overlap: a reader thread fills buffers from a small fixed pool and a
//! writer (the calling thread) drains them, so memory stays at `POOL * CHUNK` whatever the
//! disk size. The two stages follow the rules of [`crate::pipeline`]: the writer owns both
//! channel ends the reader can wait on (the queue of full buffers and the return of empty
//! ones), so a writer that stops, on a full disk or any other error, wakes a reader waiting
//! for a buffer; and the first failure of either side stops the other and is the one reported.

use super::fault;
use crate::pipeline::Failure;
use crate::read_at::ReadAt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

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
    /// The reader thread panicked (a bug in a disk reader): reported, never a hang.
    Panicked {
        /// The panic's message.
        what: String,
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

/// True when every byte of `buf` is zero. Looks at the first 64 bytes of each 4 KiB page
/// before the rest, so a page of data usually costs one cache line (ORing whole pages made
/// the zero scan of a chunk of data read all of it once more before `pwrite` copied it: 17%
/// of the writer thread's time in a qcow2 -> VHD conversion); the rest of a page is ORed 512
/// bytes at a time in u64 words (the compiler vectorises the fold), stopping at the first
/// block that is not all zero.
pub fn is_zero(buf: &[u8]) -> bool {
    fn block_is_zero(block: &[u8]) -> bool {
        let mut words = block.chunks_exact(8);
        let acc = (&mut words).fold(0u64, |a, w| {
            a | u64::from_ne_bytes(w.try_into().expect("8 bytes"))
        });
        acc == 0 && words.remainder().iter().all(|&b| b == 0)
    }
    buf.chunks(4096).all(|page| {
        let (head, rest) = page.split_at(page.len().min(64));
        block_is_zero(head) && rest.chunks(512).all(block_is_zero)
    })
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

/// A buffer of the copy: its disk offset and the bytes read there.
type Chunk = (u64, Vec<u8>);

/// Copies `src` into `dst` at the same offsets, `[0, src.len())`. `dst` must already be at
/// least that long (holes); zero chunks are skipped. `progress(done, total)` is called after
/// each chunk. A failure says which side failed and where; whichever side fails first, the
/// other stops and the copy returns (it never waits on a stage that has ended).
pub fn copy_sparse(
    src: &dyn ReadAt,
    dst: &File,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CopyStats, CopyError> {
    let total = src.len();
    let failure = Failure::new();
    let (full_tx, full_rx) = mpsc::sync_channel::<Chunk>(POOL);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..POOL {
        // The receiver is alive: it is right here.
        let _ = empty_tx.send(vec![0u8; CHUNK]);
    }
    let mut stats = CopyStats::default();
    std::thread::scope(|scope| {
        let failure = &failure;
        scope.spawn(move || {
            failure.stage(
                || read_stage(src, failure, empty_rx, full_tx),
                |what| CopyError::Panicked { what },
            )
        });
        // The writer owns `full_rx` and `empty_tx`: when it returns, they are dropped and a
        // reader blocked on either wakes up and ends.
        if let Err(e) = write_stage(dst, failure, full_rx, empty_tx, &mut stats, total, progress) {
            failure.fail(e);
        }
    });
    failure.into_result()?;
    progress(total, total);
    Ok(stats)
}

/// The reader: walks the source's data ranges in `CHUNK`-aligned pieces, each read into a
/// free buffer from `empty` and handed to the writer through `full`. Returns when the data
/// ends, when the writer has gone (a closed channel) or when the copy has failed.
fn read_stage(
    src: &dyn ReadAt,
    failure: &Failure<CopyError>,
    empty: Receiver<Vec<u8>>,
    full: SyncSender<Chunk>,
) -> Result<(), CopyError> {
    let mut offset = 0u64;
    while let Some(range) = src.next_data(offset).map_err(CopyError::read(offset))? {
        let mut at = range.start;
        while at < range.end {
            if failure.stopped() {
                return Ok(());
            }
            let Ok(mut buf) = empty.recv() else {
                return Ok(()); // the writer stopped
            };
            // Keep chunks aligned to CHUNK so holes line up with whole chunks.
            let next_boundary = (at / CHUNK as u64 + 1) * CHUNK as u64;
            let end = next_boundary.min(range.end);
            buf.resize((end - at) as usize, 0);
            src.read_exact_at(&mut buf, at)
                .map_err(CopyError::read(at))?;
            if full.send((at, buf)).is_err() {
                return Ok(()); // the writer stopped
            }
            at = end;
        }
        offset = range.end;
    }
    Ok(())
}

/// The writer: writes the non-zero runs of every chunk at its offset and gives the buffer
/// back. Ends when the reader is done (its channel closed) or the copy has failed.
fn write_stage(
    dst: &File,
    failure: &Failure<CopyError>,
    full: Receiver<Chunk>,
    empty: Sender<Vec<u8>>,
    stats: &mut CopyStats,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), CopyError> {
    for (at, buf) in full {
        if failure.stopped() {
            break;
        }
        stats.bytes_read += buf.len() as u64;
        for run in nonzero_runs(&buf, SPARSE_GRANULE) {
            let offset = at + run.start as u64;
            dst.write_all_at(&buf[run.clone()], offset)
                .map_err(|source| CopyError::Write { offset, source })?;
            stats.bytes_written += run.len() as u64;
        }
        fault::step("data chunk");
        progress(at + buf.len() as u64, total);
        // The reader may have ended already; the buffer is then simply freed.
        let _ = empty.send(buf);
    }
    Ok(())
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
    fn is_zero_sees_every_block_of_every_page() {
        // Several pages, the last one short: a byte in the first 64 bytes of a page, in any
        // of its 512-byte blocks, or in the odd tail of the last one.
        let len = 3 * 4096 + 700;
        let mut v = vec![0u8; len];
        assert!(is_zero(&v));
        let edges = [
            0,
            63,
            64,
            65,
            575,
            576,
            4095,
            4096,
            4159,
            4160,
            8191,
            len - 1,
        ];
        for i in (0..len).step_by(61).chain(edges) {
            v[i] = 0x80;
            assert!(!is_zero(&v), "byte {i}");
            v[i] = 0;
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

    /// Runs `f` on a thread and waits at most 60 s for it: a pipeline that hangs fails the
    /// test instead of hanging the suite.
    fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the copy did not end: a stage waits on one that has stopped")
    }

    /// A source of `len` non-zero bytes whose reads fail with EIO from `bad` on, counting the
    /// reads that reached it.
    struct FailingSource {
        len: u64,
        bad: u64,
        reads: std::sync::atomic::AtomicU64,
    }

    impl ReadAt for FailingSource {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if offset + buf.len() as u64 > self.bad {
                return Err(io::Error::from_raw_os_error(5));
            }
            let n = buf.len().min((self.len - offset) as usize);
            buf[..n].fill(0x5a);
            Ok(n)
        }
        fn len(&self) -> u64 {
            self.len
        }
    }

    /// Larger than every buffer of the pool together, so that a reader that outlives a
    /// failed writer has to wait for a buffer.
    const BIG: u64 = (3 * POOL * CHUNK) as u64;

    #[test]
    fn a_failing_writer_stops_the_reader_and_is_reported() {
        // /dev/full: every write fails with ENOSPC, as on a full disk.
        let got = within_a_minute(|| {
            let src = FailingSource {
                len: BIG,
                bad: u64::MAX,
                reads: Default::default(),
            };
            let dst = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            let r = copy_sparse(&src, &dst, &mut |_, _| {});
            (r, src.reads.into_inner())
        });
        match got {
            (Err(CopyError::Write { offset: 0, source }), reads) => {
                assert_eq!(source.raw_os_error(), Some(28), "{source}");
                // The reader stopped: at most the pool's buffers (and the one in hand) read.
                assert!(
                    reads <= (POOL + 1) as u64,
                    "{reads} reads after the writer failed"
                );
            }
            (other, _) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failing_reader_past_the_pool_stops_the_writer_and_is_reported() {
        let bad = (2 * POOL * CHUNK + 1000) as u64;
        let got = within_a_minute(move || {
            let src = FailingSource {
                len: BIG,
                bad,
                reads: Default::default(),
            };
            let dst = tempfile::tempfile().unwrap();
            dst.set_len(BIG).unwrap();
            copy_sparse(&src, &dst, &mut |_, _| {})
        });
        match got {
            Err(CopyError::Read { offset, source }) => {
                assert_eq!(offset, bad / CHUNK as u64 * CHUNK as u64);
                assert_eq!(source.raw_os_error(), Some(5));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_reader_that_panics_past_the_pool_is_an_error_not_a_hang() {
        struct Panicking;
        impl ReadAt for Panicking {
            fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
                assert!(offset < (2 * POOL * CHUNK) as u64, "a bug in a reader");
                buf.fill(1);
                Ok(buf.len())
            }
            fn len(&self) -> u64 {
                BIG
            }
        }
        let got = within_a_minute(|| {
            let dst = tempfile::tempfile().unwrap();
            dst.set_len(BIG).unwrap();
            copy_sparse(&Panicking, &dst, &mut |_, _| {})
        });
        match got {
            Err(CopyError::Panicked { what }) => assert!(what.contains("a bug in a reader")),
            other => panic!("{other:?}"),
        }
    }
}
