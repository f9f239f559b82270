//! Per-range MD5: the Content-MD5 of every Put Page request an uploader sends.
//!
//! The non-zero ranges of the zero map are cut at every multiple of 4 MiB (the most one Put
//! Page request carries), so each piece lies inside one 4 MiB window, and so inside one read
//! buffer: the pieces of a buffer are hashed by one rayon task while the pass goes on, and
//! tasks of different buffers run at the same time. The buffer is shared, not copied; it goes
//! back to the pool when the task is done.

use crate::md5::Md5;
use crate::pool::Buf;
use std::ops::Range;
use std::sync::mpsc::Sender;
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
/// rayon pool and sends the results to `out`. Returns at once.
pub(crate) fn spawn(
    workers: &rayon::ThreadPool,
    buf: Arc<Buf>,
    base: u64,
    pieces: Vec<Range<u64>>,
    out: Sender<Vec<RangeMd5>>,
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
        let _ = out.send(done);
    });
}
