//! The hashes that must see the bytes in order (MD5, SHA-256, BLAKE3), each on a thread of
//! its own fed through a bounded channel.
//!
//! MD5 and SHA-256 are sequential by construction (Merkle–Damgård), so each gets one thread
//! and the pass runs at the speed of the slowest of them, MD5. BLAKE3 is a tree: its thread
//! hands every buffer to the rayon pool ([`blake3::Hasher::update_rayon`]). Holes arrive as
//! a length and are hashed from one shared buffer of zeros, never read.

use crate::md5::Md5;
use crate::pool::Buf;
use crate::ChecksumError;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use vhdprep_disk::pipeline::Failure;

/// What a hashing thread receives, in input order.
#[derive(Debug, Clone)]
pub(crate) enum Msg {
    /// Bytes read from the input.
    Data(Arc<Buf>),
    /// This many zero bytes (a hole).
    Zeros(u64),
}

/// A sequential hash in progress.
pub(crate) enum SeqHash {
    Md5(Box<Md5>),
    Sha256(Sha256),
    Blake3(Box<blake3::Hasher>),
}

/// A finished sequential hash.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SeqValue {
    Md5([u8; 16]),
    Sha256([u8; 32]),
    Blake3([u8; 32]),
}

/// Buffers at least this long go to BLAKE3's rayon path; shorter ones are hashed in place.
const BLAKE3_RAYON_MIN: usize = 128 << 10;

impl SeqHash {
    fn update(&mut self, data: &[u8], workers: &rayon::ThreadPool) {
        match self {
            SeqHash::Md5(h) => h.update(data),
            SeqHash::Sha256(h) => h.update(data),
            SeqHash::Blake3(h) => {
                if data.len() >= BLAKE3_RAYON_MIN {
                    workers.install(|| h.update_rayon(data));
                } else {
                    h.update(data);
                }
            }
        }
    }

    fn finish(self) -> SeqValue {
        match self {
            SeqHash::Md5(h) => SeqValue::Md5(h.finalize()),
            SeqHash::Sha256(h) => SeqValue::Sha256(h.finalize().into()),
            SeqHash::Blake3(h) => SeqValue::Blake3(*h.finalize().as_bytes()),
        }
    }
}

/// The loop of one hashing thread: hashes every message until the channel closes, counting
/// the bytes done in `done`. Once the pass has failed it stops hashing but keeps draining, so
/// the buffers go back to the pool and the producer, if it still sends, is never left
/// waiting.
pub(crate) fn run(
    mut hash: SeqHash,
    rx: Receiver<Msg>,
    done: &AtomicU64,
    failure: &Failure<ChecksumError>,
    zeros: &[u8],
    workers: &rayon::ThreadPool,
) -> SeqValue {
    for msg in rx {
        if failure.stopped() {
            continue;
        }
        match msg {
            Msg::Data(buf) => {
                hash.update(&buf, workers);
                done.fetch_add(buf.len() as u64, Ordering::Relaxed);
            }
            Msg::Zeros(mut n) => {
                while n > 0 && !failure.stopped() {
                    let k = usize::try_from(n).unwrap_or(usize::MAX).min(zeros.len());
                    if k == 0 {
                        break;
                    }
                    hash.update(&zeros[..k], workers);
                    done.fetch_add(k as u64, Ordering::Relaxed);
                    n -= k as u64;
                }
            }
        }
    }
    hash.finish()
}
