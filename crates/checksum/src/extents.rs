//! Where the input may hold data and where it is a hole, from [`ReadAt::next_data`].
//!
//! The hints are normalised so the rest of the pass can rely on them: extents are whole
//! 512-byte pages (except a short last page at the end of the input), in order, without gaps
//! or overlap, covering `[0, len)`; touching data ranges are merged, so a run of non-zero
//! pages never spans two data extents. A reader whose hints go backwards or are empty is still
//! read correctly: anything doubtful is treated as data.

use crate::zero_map::PAGE;
use std::io;
use std::ops::Range;
use vhdprep_disk::ReadAt;

/// One piece of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extent {
    /// Bytes to read.
    Data(Range<u64>),
    /// Bytes known to read as zeros, not read.
    Hole(Range<u64>),
}

/// Walks a reader's data and holes in order.
pub struct Extents<'a> {
    reader: &'a dyn ReadAt,
    len: u64,
    pos: u64,
    /// A data range found while extending the previous one, not yet returned.
    ahead: Option<Range<u64>>,
}

impl<'a> Extents<'a> {
    /// Starts at offset 0.
    pub fn new(reader: &'a dyn ReadAt) -> Self {
        Extents {
            reader,
            len: reader.len(),
            pos: 0,
            ahead: None,
        }
    }

    /// The next data range at or after `self.pos`, page-aligned and clamped.
    fn next_data(&self, from: u64) -> io::Result<Option<Range<u64>>> {
        if from >= self.len {
            return Ok(None);
        }
        let Some(r) = self.reader.next_data(from)? else {
            return Ok(None);
        };
        let start = (r.start / PAGE * PAGE).max(from);
        if start >= self.len {
            return Ok(None);
        }
        let end = r.end.min(self.len);
        let end = end.div_ceil(PAGE).saturating_mul(PAGE).min(self.len);
        // An empty or backwards hint: take one page as data so the walk always advances.
        let end = if end <= start {
            start.saturating_add(PAGE).min(self.len)
        } else {
            end
        };
        Ok(Some(start..end))
    }

    /// The next extent, or `None` at the end.
    pub fn next_extent(&mut self) -> io::Result<Option<Extent>> {
        if self.pos >= self.len {
            return Ok(None);
        }
        let data = match self.ahead.take() {
            Some(d) => Some(d),
            None => self.next_data(self.pos)?,
        };
        let Some(mut data) = data else {
            let hole = self.pos..self.len;
            self.pos = self.len;
            return Ok(Some(Extent::Hole(hole)));
        };
        if data.start > self.pos {
            let hole = self.pos..data.start;
            self.pos = data.start;
            self.ahead = Some(data);
            return Ok(Some(Extent::Hole(hole)));
        }
        // Merge data ranges that touch.
        while let Some(next) = self.next_data(data.end)? {
            if next.start == data.end {
                data.end = next.end;
            } else {
                self.ahead = Some(next);
                break;
            }
        }
        self.pos = data.end;
        Ok(Some(Extent::Data(data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader with scripted hints.
    struct Hinted {
        len: u64,
        data: Vec<Range<u64>>,
    }

    impl ReadAt for Hinted {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            let n = buf.len().min(self.len.saturating_sub(offset) as usize);
            buf[..n].fill(0);
            Ok(n)
        }
        fn len(&self) -> u64 {
            self.len
        }
        fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
            Ok(self
                .data
                .iter()
                .find(|r| r.end > offset)
                .map(|r| r.start.max(offset)..r.end))
        }
    }

    fn walk(r: &dyn ReadAt) -> Vec<Extent> {
        let mut e = Extents::new(r);
        let mut out = Vec::new();
        while let Some(x) = e.next_extent().unwrap() {
            out.push(x);
        }
        out
    }

    #[test]
    fn holes_and_data_cover_the_input() {
        let r = Hinted {
            len: 10_000,
            data: vec![1000..1100, 1100..1500, 4096..8192],
        };
        use Extent::*;
        assert_eq!(
            walk(&r),
            vec![
                Hole(0..512),
                Data(512..1536),
                Hole(1536..4096),
                Data(4096..8192),
                Hole(8192..10_000),
            ]
        );
    }

    #[test]
    fn unaligned_end_and_no_hints() {
        let r: Vec<u8> = vec![1; 1000];
        assert_eq!(walk(&r), vec![Extent::Data(0..1000)]);
        let empty: Vec<u8> = Vec::new();
        assert!(walk(&empty).is_empty());
        let none = Hinted {
            len: 5000,
            data: vec![],
        };
        assert_eq!(walk(&none), vec![Extent::Hole(0..5000)]);
    }

    #[test]
    fn degenerate_hints_still_advance() {
        // Empty ranges and ranges past the end.
        let r = Hinted {
            len: 2048,
            data: vec![100..100, 600..600, 3000..4000],
        };
        let got = walk(&r);
        let mut at = 0;
        for e in &got {
            let (Extent::Data(x) | Extent::Hole(x)) = e;
            assert_eq!(x.start, at);
            assert!(x.end > x.start);
            at = x.end;
        }
        assert_eq!(at, 2048);
    }
}
