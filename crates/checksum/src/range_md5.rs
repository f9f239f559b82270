//! Per-range MD5: the Content-MD5 of every Put Page request an uploader sends.
//!
//! The non-zero ranges of the zero map are cut at every multiple of 4 MiB (the most one Put
//! Page request carries), so each piece lies inside one 4 MiB window, and so inside one read
//! buffer: the pieces of a buffer are hashed by one rayon task while the pass goes on, and
//! tasks of different buffers run at the same time. The buffer is shared, not copied; it goes
//! back to the pool when the task is done.

use crate::md5::Md5;
use crate::pool::Buf;
use crate::Observer;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

/// The MD5 of one non-zero piece `[offset, offset + length)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeMd5 {
    /// Absolute offset of the piece.
    pub offset: u64,
    /// Its length (at most 4 MiB; a multiple of 512 except at the end of the input).
    pub length: u64,
    /// Its MD5.
    pub md5: [u8; 16],
}

impl RangeMd5 {
    /// The MD5 in base64, as the `Content-MD5` header of a Put Page request carries it.
    pub fn md5_base64(&self) -> String {
        crate::base64(&self.md5)
    }
}

/// Hashes `pieces` (absolute ranges inside the buffer that starts at `base`) on the pass's
/// rayon pool and sends the results, tagged `seq`, to `out`. Returns at once.
pub(crate) fn spawn(
    workers: &rayon::ThreadPool,
    seq: u64,
    buf: Arc<Buf>,
    base: u64,
    pieces: Vec<Range<u64>>,
    out: Sender<(u64, Vec<RangeMd5>)>,
) {
    if pieces.is_empty() {
        return;
    }
    workers.spawn(move || {
        let done: Vec<RangeMd5> = pieces
            .iter()
            .filter_map(|p| {
                let s = usize::try_from(p.start.checked_sub(base)?).ok()?;
                let e = usize::try_from(p.end.checked_sub(base)?).ok()?;
                let bytes = buf.get(s..e)?;
                Some(RangeMd5 {
                    offset: p.start,
                    length: p.end - p.start,
                    md5: Md5::digest(bytes),
                })
            })
            .collect();
        // The receiver is gone only when the pass failed; the result is then not wanted.
        let _ = out.send((seq, done));
    });
}

/// Puts the results of the tasks back in input order, hands each piece to the observer and
/// keeps them if asked. Holds at most the results of the tasks in flight, which the buffer
/// pool bounds.
pub(crate) struct InOrder {
    rx: Receiver<(u64, Vec<RangeMd5>)>,
    next: u64,
    waiting: BTreeMap<u64, Vec<RangeMd5>>,
    kept: Option<Vec<RangeMd5>>,
    bytes: u64,
}

impl InOrder {
    pub(crate) fn new(rx: Receiver<(u64, Vec<RangeMd5>)>, keep: bool) -> Self {
        InOrder {
            rx,
            next: 0,
            waiting: BTreeMap::new(),
            kept: keep.then(Vec::new),
            bytes: 0,
        }
    }

    /// Delivers what has arrived, without waiting.
    pub(crate) fn poll(&mut self, observer: &mut dyn Observer) {
        while let Ok((seq, v)) = self.rx.try_recv() {
            self.waiting.insert(seq, v);
        }
        self.deliver(observer);
    }

    /// Waits for every task (the senders must all be gone or going), delivers the rest, and
    /// returns the kept pieces and the bytes they cover.
    pub(crate) fn finish(mut self, observer: &mut dyn Observer) -> (Option<Vec<RangeMd5>>, u64) {
        while let Ok((seq, v)) = self.rx.recv() {
            self.waiting.insert(seq, v);
            self.deliver(observer);
        }
        (self.kept, self.bytes)
    }

    fn deliver(&mut self, observer: &mut dyn Observer) {
        while let Some(v) = self.waiting.remove(&self.next) {
            for p in v {
                observer.range_md5(&p);
                self.bytes += p.length;
                if let Some(k) = &mut self.kept {
                    k.push(p);
                }
            }
            self.next += 1;
        }
    }
}
