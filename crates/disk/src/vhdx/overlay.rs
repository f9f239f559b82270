//! The replayed log, kept in memory: file ranges whose bytes the log replaces (with logged
//! data or zeros), laid over the untouched file. Reads through [`Overlaid`] see the file as
//! Hyper-V would after replaying the log; the file itself is never written.

use crate::read_at::ReadAt;
use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::sync::Arc;

/// One replaced range: its end and its bytes (`None`: zeros), from `data[at..]`.
#[derive(Debug, Clone)]
struct Segment {
    end: u64,
    data: Option<(Arc<[u8]>, usize)>,
}

/// File ranges replaced by the log, non-overlapping, later writes winning.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    segs: BTreeMap<u64, Segment>,
    /// The file length the log asks for (its last entry's `LastFileOffset`): a replayed file
    /// is extended with zeros to at least this length.
    min_len: u64,
    /// Bytes of logged data held.
    bytes: u64,
}

impl Overlay {
    /// No replaced ranges: the file as it is.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when the log replaced nothing.
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty() && self.min_len == 0
    }

    /// Number of replaced ranges.
    pub fn ranges(&self) -> usize {
        self.segs.len()
    }

    /// Bytes of logged data held in memory.
    pub fn data_bytes(&self) -> u64 {
        self.bytes
    }

    /// The length the replayed file has at least.
    pub fn min_len(&self) -> u64 {
        self.min_len
    }

    /// Raises the replayed file's length to at least `len`.
    pub fn extend_to(&mut self, len: u64) {
        self.min_len = self.min_len.max(len);
    }

    /// Replaces `range` with zeros.
    pub fn zero(&mut self, range: Range<u64>) {
        self.insert(range, None);
    }

    /// Replaces `[offset, offset + data.len())` with `data`.
    pub fn write(&mut self, offset: u64, data: Arc<[u8]>) {
        let n = data[..].len() as u64;
        let Some(end) = offset.checked_add(n) else {
            return;
        };
        self.bytes += n;
        self.insert(offset..end, Some((data, 0)));
    }

    fn insert(&mut self, range: Range<u64>, data: Option<(Arc<[u8]>, usize)>) {
        let (start, end) = (range.start, range.end);
        if start >= end {
            return;
        }
        let hit: Vec<u64> = self
            .segs
            .range(..end)
            .rev()
            .take_while(|(_, s)| s.end > start)
            .map(|(&k, _)| k)
            .collect();
        for k in hit {
            let Some(s) = self.segs.remove(&k) else {
                continue;
            };
            if k < start {
                self.segs.insert(
                    k,
                    Segment {
                        end: start,
                        data: s.data.clone(),
                    },
                );
            }
            if s.end > end {
                let skip = usize::try_from(end - k).unwrap_or(usize::MAX);
                let data = s.data.map(|(d, at)| (d, at.saturating_add(skip)));
                self.segs.insert(end, Segment { end: s.end, data });
            }
        }
        self.segs.insert(start, Segment { end, data });
    }

    /// The replaced range covering `pos`, if any, as (end, bytes from pos or None for zeros).
    fn at(&self, pos: u64) -> Option<(u64, Option<&[u8]>)> {
        let (&k, s) = self.segs.range(..=pos).next_back()?;
        if s.end <= pos {
            return None;
        }
        let bytes = match &s.data {
            None => None,
            Some((d, at)) => {
                let from = at.saturating_add(usize::try_from(pos - k).unwrap_or(usize::MAX));
                Some(d.get(from..).unwrap_or(&[]))
            }
        };
        Some((s.end, bytes))
    }

    /// True when the log replaced any byte of `range`.
    pub fn touches(&self, range: Range<u64>) -> bool {
        self.segs
            .range(..range.end)
            .next_back()
            .is_some_and(|(_, s)| s.end > range.start)
    }

    /// Start of the first replaced range after `pos`.
    fn next_start(&self, pos: u64) -> Option<u64> {
        self.segs.range(pos..).next().map(|(&k, _)| k)
    }
}

/// A file seen through its replayed log.
#[derive(Debug, Clone)]
pub struct Overlaid<R> {
    file: R,
    overlay: Arc<Overlay>,
    len: u64,
}

impl<R: ReadAt> Overlaid<R> {
    /// `file` with `overlay` laid over it; its length is the file's, or the log's
    /// `LastFileOffset` if larger (the gap reads as zeros, as after a real replay).
    pub fn new(file: R, overlay: Arc<Overlay>) -> Self {
        let len = file.len().max(overlay.min_len);
        Overlaid { file, overlay, len }
    }

    /// The underlying file.
    pub fn file(&self) -> &R {
        &self.file
    }

    /// The first range at or after `offset`, before `end`, that may hold data: where the
    /// file may hold data (its holes read as zeros) or the log replaced bytes. Clipped to
    /// `end`; `None` when `[offset, end)` reads as zeros.
    pub fn next_data_before(&self, offset: u64, end: u64) -> io::Result<Option<Range<u64>>> {
        if offset >= end {
            return Ok(None);
        }
        if self.overlay.touches(offset..end) {
            return Ok(Some(offset..end));
        }
        Ok(self.file.next_data(offset)?.and_then(|r| {
            let s = r.start.max(offset);
            let e = r.end.min(end);
            (s < e).then_some(s..e)
        }))
    }
}

impl<R: ReadAt> ReadAt for Overlaid<R> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf
            .len()
            .min(usize::try_from(self.len - offset).unwrap_or(usize::MAX));
        let buf = &mut buf[..n];
        if self.overlay.segs.is_empty() && offset + n as u64 <= self.file.len() {
            self.file.read_exact_at(buf, offset)?;
            return Ok(n);
        }
        let mut done = 0usize;
        while done < n {
            let pos = offset + done as u64;
            let left = n - done;
            if let Some((end, bytes)) = self.overlay.at(pos) {
                let take = usize::try_from(end - pos).unwrap_or(usize::MAX).min(left);
                let out = &mut buf[done..done + take];
                match bytes {
                    None => out.fill(0),
                    Some(b) => {
                        let have = b.len().min(take);
                        out[..have].copy_from_slice(&b[..have]);
                        out[have..].fill(0);
                    }
                }
                done += take;
                continue;
            }
            let gap_end = self
                .overlay
                .next_start(pos)
                .unwrap_or(u64::MAX)
                .min(pos + left as u64);
            let take = (gap_end - pos) as usize;
            let out = &mut buf[done..done + take];
            let flen = self.file.len();
            let in_file = if pos < flen {
                usize::try_from(flen - pos).unwrap_or(usize::MAX).min(take)
            } else {
                0
            };
            self.file.read_exact_at(&mut out[..in_file], pos)?;
            out[in_file..].fill(0);
            done += take;
        }
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_writes_win_and_split_earlier_ones() {
        let file = vec![1u8; 64];
        let mut o = Overlay::new();
        o.write(8, Arc::from(vec![2u8; 16]));
        o.zero(12..16);
        o.write(20, Arc::from(vec![3u8; 8]));
        o.extend_to(80);
        let o = Arc::new(o);
        assert!(o.touches(10..11) && o.touches(0..9) && !o.touches(0..8) && !o.touches(28..64));
        let r = Overlaid::new(&file, o);
        assert_eq!(r.len(), 80);
        assert_eq!(r.next_data_before(30, 40).unwrap(), Some(30..40));
        assert_eq!(r.next_data_before(40, 40).unwrap(), None);
        let mut b = vec![9u8; 80];
        r.read_exact_at(&mut b, 0).unwrap();
        let mut want = vec![1u8; 64];
        want[8..24].fill(2);
        want[12..16].fill(0);
        want[20..28].fill(3);
        want.extend_from_slice(&[0u8; 16]);
        assert_eq!(b, want);
        // A read starting inside a split segment.
        let mut two = [0u8; 2];
        r.read_exact_at(&mut two, 16).unwrap();
        assert_eq!(two, [2, 2]);
        assert_eq!(r.read_at(&mut two, 80).unwrap(), 0);
    }

    #[test]
    fn huge_zero_ranges_cost_nothing() {
        let file = vec![5u8; 16];
        let mut o = Overlay::new();
        o.zero(4..u64::MAX);
        o.write(u64::MAX - 1, Arc::from(vec![1u8; 4])); // overflowing: ignored
        let r = Overlaid::new(&file, Arc::new(o));
        let mut b = [9u8; 16];
        r.read_exact_at(&mut b, 0).unwrap();
        assert_eq!(&b[..4], &[5; 4]);
        assert!(b[4..].iter().all(|&x| x == 0));
    }
}
