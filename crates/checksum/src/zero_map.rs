//! The zero map: which 512-byte pages hold a non-zero byte, as merged ranges.
//!
//! Azure page blobs are written in 512-byte pages and a page never written reads as zeros, so
//! an uploader sends only the non-zero pages. Each buffer is scanned into a bitmap (one bit per
//! page, set when the page holds a non-zero byte); the bitmap becomes runs; the runs feed the
//! caller's [`Observer`] and the merged [`ZeroMap`].

use crate::Observer;
use std::ops::Range;

/// Granularity of the map: one page blob page.
pub const PAGE: u64 = 512;

/// The most one Put Page request carries. Non-zero pieces reported as the pass goes, and the
/// per-range MD5s, never cross a multiple of it.
pub const PUT_PAGE_MAX: u64 = 4 << 20;

/// Bitmap words needed for `len` bytes.
pub fn words_for(len: usize) -> usize {
    len.div_ceil(PAGE as usize).div_ceil(64)
}

/// True when every byte of `page` is zero. ORs 64 bytes at a time in u64 words (the compiler
/// vectorises the fold) and stops at the first 64 bytes that are not all zero, so a page of
/// data usually costs one load.
#[inline]
pub fn page_is_zero(page: &[u8]) -> bool {
    let mut blocks = page.chunks_exact(64);
    let all = blocks.all(|block| {
        block.chunks_exact(8).fold(0u64, |a, w| {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            a | u64::from_ne_bytes(b)
        }) == 0
    });
    all && blocks.remainder().iter().all(|&b| b == 0)
}

/// Scans `buf` page by page: bit `i % 64` of `bits[i / 64]` is set when page `i` holds a
/// non-zero byte. The last page may be short. `bits` must hold [`words_for`]`(buf.len())`
/// words; they are overwritten.
pub fn scan(buf: &[u8], bits: &mut [u64]) {
    bits.fill(0);
    for (i, page) in buf.chunks(PAGE as usize).enumerate() {
        if !page_is_zero(page) {
            if let Some(w) = bits.get_mut(i / 64) {
                *w |= 1 << (i % 64);
            }
        }
    }
}

/// The runs of a scanned buffer of `len` bytes that starts at absolute offset `base`:
/// alternating maximal runs of zero and non-zero pages, in order, covering the buffer, with
/// non-zero runs also cut at every multiple of [`PUT_PAGE_MAX`].
pub fn runs(bits: &[u64], len: usize, base: u64) -> Vec<(Range<u64>, bool)> {
    let pages = len.div_ceil(PAGE as usize);
    let mut out: Vec<(Range<u64>, bool)> = Vec::new();
    let mut i = 0;
    while i < pages {
        let set = bits.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1);
        // Extend the run over whole words where possible.
        let mut j = i + 1;
        while j < pages {
            let w = bits.get(j / 64).copied().unwrap_or(0);
            if j % 64 == 0 && j + 64 <= pages && w == if set { u64::MAX } else { 0 } {
                j += 64;
                continue;
            }
            if (w >> (j % 64) & 1 == 1) != set {
                break;
            }
            j += 1;
        }
        let start = base + (i as u64) * PAGE;
        let end = base + ((j as u64) * PAGE).min(len as u64);
        if set {
            let mut at = start;
            while at < end {
                let cut = (at / PUT_PAGE_MAX + 1) * PUT_PAGE_MAX;
                let e = cut.min(end);
                out.push((at..e, false));
                at = e;
            }
        } else {
            out.push((start..end, true));
        }
        i = j;
    }
    out
}

/// The merged non-zero ranges of a disk and the bytes they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroMap {
    ranges: Vec<Range<u64>>,
    keep: bool,
    last_end: Option<u64>,
    range_count: u64,
    piece_count: u64,
    nonzero_bytes: u64,
}

impl Default for ZeroMap {
    fn default() -> Self {
        ZeroMap::new()
    }
}

impl ZeroMap {
    /// An empty map that keeps its ranges.
    pub fn new() -> Self {
        ZeroMap {
            ranges: Vec::new(),
            keep: true,
            last_end: None,
            range_count: 0,
            piece_count: 0,
            nonzero_bytes: 0,
        }
    }

    /// An empty map that only counts: [`ZeroMap::ranges`] stays empty, so its memory does
    /// not grow with the number of ranges.
    pub fn counting() -> Self {
        ZeroMap {
            keep: false,
            ..ZeroMap::new()
        }
    }

    /// Adds a non-zero range that starts at or after the end of the last one; touching ranges
    /// merge.
    pub fn push_nonzero(&mut self, r: Range<u64>) {
        if r.is_empty() {
            return;
        }
        self.nonzero_bytes += r.end - r.start;
        self.piece_count += 1;
        let touches = self.last_end == Some(r.start);
        self.last_end = Some(r.end);
        if !touches {
            self.range_count += 1;
        }
        if self.keep {
            match self.ranges.last_mut() {
                Some(last) if touches => last.end = r.end,
                _ => self.ranges.push(r),
            }
        }
    }

    /// The non-zero ranges, in order, merged, at 512-byte page granularity (the last may end
    /// mid-page at the end of the input). Empty for a [counting](ZeroMap::counting) map.
    pub fn ranges(&self) -> &[Range<u64>] {
        &self.ranges
    }

    /// True when the map lists its ranges ([`ZeroMap::new`]), false when it only counts.
    pub fn is_kept(&self) -> bool {
        self.keep
    }

    /// How many merged non-zero ranges there are (kept or not).
    pub fn range_count(&self) -> u64 {
        self.range_count
    }

    /// How many pieces the ranges make once cut at every multiple of 4 MiB (the Put Page
    /// requests of an upload, and the entries of a per-range MD5 list).
    pub fn piece_count(&self) -> u64 {
        self.piece_count
    }

    /// Bytes in the non-zero ranges: what an uploader sends.
    pub fn nonzero_bytes(&self) -> u64 {
        self.nonzero_bytes
    }
}

/// Takes the runs of the pass in order, reports them to the observer (zero runs merged across
/// buffers and holes, non-zero runs as pieces within one 4 MiB window) and builds the map.
pub(crate) struct RunSink<'o> {
    pending_zero: Option<Range<u64>>,
    map: ZeroMap,
    observer: &'o mut dyn Observer,
}

impl<'o> RunSink<'o> {
    pub(crate) fn new(observer: &'o mut dyn Observer, keep_ranges: bool) -> Self {
        RunSink {
            pending_zero: None,
            map: if keep_ranges {
                ZeroMap::new()
            } else {
                ZeroMap::counting()
            },
            observer,
        }
    }

    pub(crate) fn observer(&mut self) -> &mut dyn Observer {
        self.observer
    }

    pub(crate) fn push(&mut self, r: Range<u64>, is_zero: bool) {
        if r.is_empty() {
            return;
        }
        if is_zero {
            match &mut self.pending_zero {
                Some(p) if p.end == r.start => p.end = r.end,
                _ => {
                    self.flush();
                    self.pending_zero = Some(r);
                }
            }
        } else {
            self.flush();
            self.map.push_nonzero(r.clone());
            self.observer.range(r, false);
        }
    }

    fn flush(&mut self) {
        if let Some(z) = self.pending_zero.take() {
            self.observer.range(z, true);
        }
    }

    pub(crate) fn finish(mut self) -> ZeroMap {
        self.flush();
        self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(buf: &[u8]) -> Vec<u64> {
        let mut bits = vec![0u64; words_for(buf.len())];
        scan(buf, &mut bits);
        bits
    }

    #[test]
    fn page_is_zero_sees_every_byte() {
        for len in [0usize, 1, 7, 8, 9, 511, 512] {
            let mut v = vec![0u8; len];
            assert!(page_is_zero(&v));
            for i in 0..len {
                v[i] = 0x80;
                assert!(!page_is_zero(&v), "len {len} byte {i}");
                v[i] = 0;
            }
        }
    }

    #[test]
    fn runs_alternate_and_cover_the_buffer() {
        let mut v = vec![0u8; 200 * 512 + 100];
        v[0] = 1;
        v[512 * 3 + 511] = 1;
        v[512 * 4] = 1;
        for p in 70..190 {
            v[p * 512 + 7] = 2;
        }
        v[200 * 512 + 99] = 3;
        let r = runs(&scanned(&v), v.len(), 1 << 20);
        let b = 1u64 << 20;
        assert_eq!(
            r,
            vec![
                (b..b + 512, false),
                (b + 512..b + 3 * 512, true),
                (b + 3 * 512..b + 5 * 512, false),
                (b + 5 * 512..b + 70 * 512, true),
                (b + 70 * 512..b + 190 * 512, false),
                (b + 190 * 512..b + 200 * 512, true),
                (b + 200 * 512..b + 200 * 512 + 100, false),
            ]
        );
    }

    #[test]
    fn nonzero_runs_are_cut_at_4_mib() {
        let v = vec![1u8; 9 << 20];
        let base = 3 << 20;
        let r = runs(&scanned(&v), v.len(), base);
        assert_eq!(
            r,
            vec![
                (base..4 << 20, false),
                (4 << 20..8 << 20, false),
                (8 << 20..12 << 20, false),
            ]
        );
        let z = vec![0u8; 9 << 20];
        assert_eq!(runs(&scanned(&z), z.len(), 0), vec![(0..9 << 20, true)]);
        assert!(runs(&[], 0, 0).is_empty());
    }

    #[test]
    fn map_merges_touching_ranges() {
        let mut m = ZeroMap::new();
        m.push_nonzero(0..512);
        m.push_nonzero(512..1024);
        m.push_nonzero(2048..2049);
        m.push_nonzero(5..5);
        assert_eq!(m.ranges(), &[0..1024, 2048..2049]);
        assert_eq!(m.nonzero_bytes(), 1025);
        assert_eq!((m.range_count(), m.piece_count()), (2, 3));
        let mut c = ZeroMap::counting();
        for r in [0..512, 512..1024, 2048..2049] {
            c.push_nonzero(r);
        }
        assert!(c.ranges().is_empty());
        assert_eq!(
            (c.range_count(), c.piece_count(), c.nonzero_bytes()),
            (2, 3, 1025)
        );
    }
}
