//! The fused pass: one read of the input, every requested value at once.
//!
//! ```text
//!  extents (SEEK_DATA/SEEK_HOLE, block table)
//!     │ data: 4 MiB chunk ──► pool buffer ──► rayon: pread 256 KiB pieces, CRC32 + zero scan
//!     │                                       of each piece while it is in cache
//!     │                            ├──► MD5 thread     (in order)
//!     │                            ├──► SHA-256 thread (in order)
//!     │                            ├──► BLAKE3 thread  (in order, rayon inside)
//!     │                            └──► range MD5 task (rayon; results put back in order)
//!     └ hole: CRC32 appended by arithmetic, zero run in the map, a length to each thread
//! ```
//!
//! The producer (the calling thread) blocks when all pool buffers are in use or a hashing
//! thread's queue is full, so memory stays bounded ([`MEMORY_BOUND`]) whatever the input size.
//!
//! The stages follow the rules of [`vhdprep_disk::pipeline`]: the producer owns the senders
//! of the hashing threads' queues, so when it stops (a read error, an observer that cannot go
//! on, the end of the input) the threads drain what is queued, without hashing it if the pass
//! failed, and end; a hashing thread that panics is recorded as the pass's failure and stops
//! the producer at its next chunk; buffers go back to the pool when the last holder drops
//! them, so the producer never waits for one that nobody will return. The first failure is
//! the one reported.
//!
//! Reading is `pread` through [`ReadAt`], not `mmap`. Measured here (`benches/checksum.rs`,
//! CRC32 + zero scan on two threads over 4 GiB in the page cache): `pread` into page-aligned
//! buffers 13.7 GB/s, `mmap` 16.9 GB/s. The 23 % exists only for a pass without MD5 or
//! SHA-256 on a warm cache (a hash-bound pass runs at 0.67 GB/s, a cold one at the disk's
//! 2 GB/s), and a file truncated under a mapping kills the process with SIGBUS unless a
//! process-wide signal handler remaps the pages, which a library must not install. With
//! `pread`, a shrinking file is an error naming the file and offset; dynamic VHDs need
//! `pread` anyway.

use crate::error::ChecksumError;
use crate::extents::{Extent, Extents};
use crate::pool::Pool;
use crate::range_md5::{self, RangeMd5};
use crate::sequential::{self, Msg, SeqHash, SeqValue};
use crate::zero_map::{self, RunSink, PAGE, PUT_PAGE_MAX};
use crate::{crc, Digests, Observer, Options};
use rayon::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;
use vhdprep_disk::pipeline::Failure;
use vhdprep_disk::ReadAt;

/// Bytes per read buffer; a multiple of [`PUT_PAGE_MAX`], so that every non-zero piece lies
/// in one buffer.
pub const CHUNK: usize = PUT_PAGE_MAX as usize;
/// Buffers in the pool.
pub const POOL_BUFFERS: usize = 8;
/// Bytes one rayon task reads and scans: small enough to be scanned while still in cache.
pub const PIECE: usize = 256 << 10;
/// Holes are sent to the hashing threads in steps of this many bytes, so progress moves.
const HOLE_STEP: u64 = 64 << 20;
/// The shared buffer of zeros that holes are hashed from.
const ZEROS: usize = 1 << 20;
/// Messages queued per hashing thread (each holds a pool buffer or a hole length).
const QUEUE: usize = POOL_BUFFERS + 2;
/// The most memory a pass allocates for data, whatever the input size: pool buffers (with
/// their alignment slack), the zero buffer and the per-chunk bitmap. The zero map and the
/// range MD5 list come on top when kept ([`Options::keep_ranges`]): 16 and 32 bytes per range.
pub const MEMORY_BOUND: usize =
    POOL_BUFFERS * (CHUNK + crate::pool::ALIGN) + ZEROS + CHUNK / PAGE as usize / 8;

const _: () = assert!(CHUNK % PIECE == 0 && PIECE % (PAGE as usize * 64) == 0);
const _: () = assert!(MEMORY_BOUND < 128 << 20);

/// One sequential hash: its queue and its counter.
struct Lane {
    tx: SyncSender<Msg>,
    done: Arc<AtomicU64>,
}

/// Runs the pass over `reader`; `name` is the file named in errors.
pub fn run(
    reader: &dyn ReadAt,
    name: &Path,
    opts: &Options,
    observer: &mut dyn Observer,
) -> Result<Digests, ChecksumError> {
    let total = reader.len();
    // A pool of our own rather than rayon's global one: a caller that is itself running on
    // the global pool (and blocks in this pass) cannot starve the tasks the pass waits for.
    let workers = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("vhdprep-checksum-{i}"))
        .build()
        .map_err(|e| ChecksumError::Thread {
            path: name.to_owned(),
            source: std::io::Error::other(e),
        })?;
    let workers = &workers;
    let zeros = vec![0u8; ZEROS];
    let failure = Failure::new();
    let mut seq: Vec<SeqHash> = Vec::new();
    if opts.md5 {
        seq.push(SeqHash::Md5(Box::default()));
    }
    if opts.sha256 {
        seq.push(SeqHash::Sha256(Default::default()));
    }
    if opts.blake3 {
        seq.push(SeqHash::Blake3(Box::default()));
    }
    let (produced, values) = std::thread::scope(|scope| {
        let (finished_tx, finished_rx) = mpsc::channel::<()>();
        let mut lanes = Vec::new();
        let mut handles = Vec::new();
        for hash in seq {
            let (tx, rx) = mpsc::sync_channel(QUEUE);
            let done = Arc::new(AtomicU64::new(0));
            let (d, f, z, fin) = (done.clone(), &failure, &zeros[..], finished_tx.clone());
            let spawned = std::thread::Builder::new()
                .name("vhdprep-hash".into())
                .spawn_scoped(scope, move || {
                    let v = f.stage(
                        || Ok(sequential::run(hash, rx, &d, f, z, workers)),
                        |what| ChecksumError::Internal {
                            path: name.to_owned(),
                            what: format!("a hashing thread panicked: {what}"),
                        },
                    );
                    let _ = fin.send(());
                    v
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(source) => {
                    // The threads already started end when `lanes` is dropped below.
                    failure.fail(ChecksumError::Thread {
                        path: name.to_owned(),
                        source,
                    });
                    break;
                }
            }
            lanes.push(Lane { tx, done });
        }
        drop(finished_tx);
        let counters: Vec<Arc<AtomicU64>> = lanes.iter().map(|l| l.done.clone()).collect();
        let produced = if failure.stopped() {
            None
        } else {
            // `produce` owns the lanes: they close when it returns, however it returns.
            match produce(reader, name, opts, observer, lanes, workers, &failure) {
                Ok(d) => Some(d),
                Err(e) => {
                    failure.fail(e);
                    None
                }
            }
        };
        // The lanes are closed; report progress until every hashing thread is done.
        let mut running = handles.len();
        while running > 0 {
            match finished_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => running -= 1,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if !failure.stopped() {
                let done = counters.iter().map(|c| c.load(Ordering::Relaxed)).min();
                observer.progress(done.unwrap_or(total), total);
            }
        }
        // Each thread's panic was caught by its stage: a join cannot fail.
        let values: Vec<Option<SeqValue>> =
            handles.into_iter().filter_map(|h| h.join().ok()).collect();
        (produced, values)
    });
    failure.into_result()?;
    let mut digests = produced.ok_or_else(|| ChecksumError::Internal {
        path: name.to_owned(),
        what: "the pass ended without values and without an error".into(),
    })?;
    for v in values.into_iter().flatten() {
        match v {
            SeqValue::Md5(d) => digests.md5 = Some(d),
            SeqValue::Sha256(d) => digests.sha256 = Some(d),
            SeqValue::Blake3(d) => digests.blake3 = Some(d),
        }
    }
    observer.progress(total, total);
    Ok(digests)
}

/// The producer: walks the extents, reads and scans the data, feeds every lane.
fn produce(
    reader: &dyn ReadAt,
    name: &Path,
    opts: &Options,
    observer: &mut dyn Observer,
    lanes: Vec<Lane>,
    workers: &rayon::ThreadPool,
    failure: &Failure<ChecksumError>,
) -> Result<Digests, ChecksumError> {
    let total = reader.len();
    let scan = opts.zero_map || opts.range_md5;
    let mut crc = opts.crc32.then(crc32fast::Hasher::new);
    let mut sink = RunSink::new(observer, opts.keep_ranges);
    let mut pool = Pool::new(POOL_BUFFERS, CHUNK);
    let mut bits = vec![0u64; zero_map::words_for(CHUNK)];
    let (md5_tx, md5_rx) = mpsc::channel::<(u64, Vec<RangeMd5>)>();
    let mut md5_in_order = range_md5::InOrder::new(md5_rx, opts.keep_ranges);
    let mut md5_jobs = 0u64;
    let mut bytes_read = 0u64;
    let lost = || ChecksumError::Internal {
        path: name.to_owned(),
        what: "a hashing thread stopped early".into(),
    };
    // Before each piece of work: another stage failed (its error is the one reported), or the
    // observer cannot go on.
    let go_on = |observer: &mut dyn Observer| -> Result<(), ChecksumError> {
        if failure.stopped() {
            return Err(lost());
        }
        match observer.failure() {
            Some(what) => Err(ChecksumError::Observer {
                path: name.to_owned(),
                what,
            }),
            None => Ok(()),
        }
    };
    let progress = |pos: u64| {
        lanes
            .iter()
            .map(|l| l.done.load(Ordering::Relaxed))
            .min()
            .unwrap_or(pos)
            .min(pos)
    };
    let mut extents = Extents::new(reader);
    loop {
        let extent = extents
            .next_extent()
            .map_err(|source| ChecksumError::Holes {
                path: name.to_owned(),
                source,
            })?;
        let Some(extent) = extent else { break };
        match extent {
            Extent::Hole(h) => {
                let len = h.end - h.start;
                if let Some(c) = &mut crc {
                    crc::append_zeros(c, len);
                }
                if scan {
                    sink.push(h.clone(), true);
                }
                let mut left = if lanes.is_empty() { 0 } else { len };
                while left > 0 {
                    go_on(sink.observer())?;
                    let step = left.min(HOLE_STEP);
                    for lane in &lanes {
                        lane.tx.send(Msg::Zeros(step)).map_err(|_| lost())?;
                    }
                    left -= step;
                    let pos = h.end - left;
                    sink.observer().progress(progress(pos), total);
                }
                sink.observer().progress(progress(h.end), total);
            }
            Extent::Data(d) => {
                let mut at = d.start;
                while at < d.end {
                    go_on(sink.observer())?;
                    let end = ((at / CHUNK as u64 + 1) * CHUNK as u64).min(d.end);
                    let n = (end - at) as usize;
                    let mut buf = pool.get(n);
                    let words = zero_map::words_for(n);
                    let pieces = workers.install(|| {
                        fill(
                            reader,
                            name,
                            &mut buf,
                            at,
                            opts.crc32,
                            scan,
                            &mut bits[..words],
                        )
                    })?;
                    bytes_read += n as u64;
                    if let Some(c) = &mut crc {
                        for p in &pieces {
                            c.combine(p);
                        }
                    }
                    let mut nonzero = Vec::new();
                    if scan {
                        for (r, is_zero) in zero_map::runs(&bits[..words], n, at) {
                            if !is_zero && opts.range_md5 {
                                nonzero.push(r.clone());
                            }
                            sink.push(r, is_zero);
                        }
                    }
                    let buf = Arc::new(buf);
                    for lane in &lanes {
                        lane.tx.send(Msg::Data(buf.clone())).map_err(|_| lost())?;
                    }
                    if opts.range_md5 && !nonzero.is_empty() {
                        range_md5::spawn(workers, md5_jobs, buf, at, nonzero, md5_tx.clone());
                        md5_jobs += 1;
                    }
                    md5_in_order.poll(sink.observer());
                    at = end;
                    sink.observer().progress(progress(at), total);
                }
            }
        }
    }
    go_on(sink.observer())?;
    drop(lanes);
    drop(md5_tx);
    // Every task holds a sender: this returns when the last task is done.
    let (pieces, md5_bytes) = md5_in_order.finish(sink.observer());
    let zero_map = sink.finish();
    let range_md5 = if opts.range_md5 {
        if md5_bytes != zero_map.nonzero_bytes() {
            return Err(ChecksumError::Internal {
                path: name.to_owned(),
                what: "per-range MD5s do not cover the non-zero bytes".into(),
            });
        }
        pieces
    } else {
        None
    };
    Ok(Digests {
        size: total,
        md5: None,
        sha256: None,
        crc32: crc.map(|c| c.finalize()),
        blake3: None,
        zero_map: scan.then_some(zero_map),
        range_md5,
        bytes_read,
    })
}

/// Reads `buf.len()` bytes at `at` into `buf` in [`PIECE`]-sized rayon tasks; each task also
/// scans its piece into `bits` and computes its CRC32, while the piece is still in cache (a
/// piece of zeros gets its CRC32 by arithmetic, without hashing it).
/// Returns the CRC32 of each piece, in order (empty when `crc` is off).
fn fill(
    reader: &dyn ReadAt,
    name: &Path,
    buf: &mut [u8],
    at: u64,
    crc: bool,
    scan: bool,
    bits: &mut [u64],
) -> Result<Vec<crc32fast::Hasher>, ChecksumError> {
    const WORDS: usize = PIECE / PAGE as usize / 64;
    if buf.len().div_ceil(PIECE) != bits.len().div_ceil(WORDS) {
        return Err(ChecksumError::Internal {
            path: name.to_owned(),
            what: format!("bitmap of {} words for {} bytes", bits.len(), buf.len()),
        });
    }
    let results: Vec<Option<crc32fast::Hasher>> = buf
        .par_chunks_mut(PIECE)
        .zip(bits.par_chunks_mut(WORDS))
        .enumerate()
        .map(|(i, (piece, bits))| {
            let offset = at + (i * PIECE) as u64;
            reader
                .read_exact_at(piece, offset)
                .map_err(|source| ChecksumError::Read {
                    path: name.to_owned(),
                    offset,
                    source,
                })?;
            // The scan also serves the CRC: a piece of zeros gets its CRC by arithmetic.
            let zero = if scan || crc {
                zero_map::scan(piece, bits);
                bits.iter().all(|&w| w == 0)
            } else {
                false
            };
            Ok(crc.then(|| {
                if zero {
                    crate::crc::zeros(piece.len() as u64)
                } else {
                    let mut h = crc32fast::Hasher::new();
                    h.update(piece);
                    h
                }
            }))
        })
        .collect::<Result<_, ChecksumError>>()?;
    Ok(results.into_iter().flatten().collect())
}
