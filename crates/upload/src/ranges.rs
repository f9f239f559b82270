//! Byte ranges: merging, coverage, and the first local range the service lacks.

use std::ops::Range;

/// `ranges` sorted and merged (touching ranges joined, empty ones dropped).
pub fn merge(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.retain(|r| r.start < r.end);
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// True when the sorted, merged `have` covers all of `r`.
pub fn covers(have: &[Range<u64>], r: &Range<u64>) -> bool {
    if r.start >= r.end {
        return true;
    }
    let i = have.partition_point(|h| h.end <= r.start);
    have.get(i)
        .is_some_and(|h| h.start <= r.start && r.end <= h.end)
}

/// The first part of a `want` range (sorted) that the sorted, merged `have` does not cover.
pub fn first_missing(have: &[Range<u64>], want: &[Range<u64>]) -> Option<Range<u64>> {
    for w in want {
        let mut at = w.start;
        let mut i = have.partition_point(|h| h.end <= at);
        while at < w.end {
            match have.get(i) {
                Some(h) if h.start <= at => {
                    at = h.end;
                    i += 1;
                }
                Some(h) => return Some(at..h.start.min(w.end)),
                None => return Some(at..w.end),
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn merge_cover_and_first_missing() {
        let have = merge(vec![1024..2048, 0..512, 512..1024, 4096..8192, 9000..9000]);
        assert_eq!(have, vec![0..2048, 4096..8192]);
        assert!(covers(&have, &(0..2048)));
        assert!(covers(&have, &(4096..4608)));
        assert!(!covers(&have, &(1536..2560)));
        assert!(!covers(&have, &(3000..3512)));
        assert!(covers(&have, &(5..5)));
        assert_eq!(first_missing(&have, &[0..1024, 4096..8192]), None);
        assert_eq!(
            first_missing(&have, &[0..1024, 1536..4608]),
            Some(2048..4096)
        );
        assert_eq!(first_missing(&have, &[8192..8704]), Some(8192..8704));
        assert_eq!(first_missing(&[], &[0..512]), Some(0..512));
    }
}
