//! Without `keep_ranges` the ranges and per-range MD5s only stream to the observer: the same
//! values, in order, in memory that does not grow with the map; the spilled JSON is byte for
//! byte the JSON of a pass that kept everything.

use std::ops::Range;
use std::path::Path;
use vhdprep_checksum::{checksum, Manifest, Observer, Options, RangeMd5, RangeSpill};

/// Every other 512-byte page non-zero in the first 5 MiB, a 4 MiB run across a 4 MiB
/// boundary, zeros, and a short non-zero tail.
fn data() -> Vec<u8> {
    let mut v = vec![0u8; (14 << 20) + 700];
    for p in (0..(5 << 20) / 512).step_by(2) {
        v[p * 512 + 100] = 1;
    }
    v[(6 << 20)..(10 << 20)].fill(7);
    let n = v.len();
    v[n - 3] = 9;
    v
}

#[derive(Default)]
struct Collect {
    ranges: Vec<(Range<u64>, bool)>,
    md5s: Vec<RangeMd5>,
}

impl Observer for Collect {
    fn range(&mut self, range: Range<u64>, is_zero: bool) {
        self.ranges.push((range, is_zero));
    }
    fn range_md5(&mut self, piece: &RangeMd5) {
        // Each MD5 comes after its piece was reported.
        assert!(self
            .ranges
            .iter()
            .any(|(r, z)| !z && r.start == piece.offset && r.end == piece.offset + piece.length));
        self.md5s.push(*piece);
    }
}

#[test]
fn streamed_values_equal_kept_values() {
    let v = data();
    let kept = checksum(&v, Path::new("x"), &Options::all(), &mut ()).unwrap();
    let opts = Options {
        keep_ranges: false,
        ..Options::all()
    };
    let mut seen = Collect::default();
    let streamed = checksum(&v, Path::new("x"), &opts, &mut seen).unwrap();
    assert_eq!(streamed.md5, kept.md5);
    assert_eq!(streamed.crc32, kept.crc32);
    assert!(streamed.range_md5.is_none());
    let (k, s) = (
        kept.zero_map.as_ref().unwrap(),
        streamed.zero_map.as_ref().unwrap(),
    );
    assert!(s.ranges().is_empty() && !s.is_kept());
    assert_eq!(s.nonzero_bytes(), k.nonzero_bytes());
    assert_eq!(s.range_count(), k.ranges().len() as u64);
    assert_eq!(s.range_count(), 5 * 1024 + 2);
    let pieces = kept.range_md5.as_ref().unwrap();
    assert_eq!(s.piece_count(), pieces.len() as u64);
    assert_eq!(&seen.md5s, pieces, "MD5s streamed in order");
}

#[test]
fn spilled_json_equals_kept_json() {
    for v in [data(), vec![0u8; 5000], Vec::new()] {
        for range_md5 in [false, true] {
            let base = Options {
                range_md5,
                ..Options::default()
            };
            let kept = checksum(&v, Path::new("x"), &base, &mut ()).unwrap();
            let want = Manifest::from_digests(&kept).to_json();
            let opts = Options {
                keep_ranges: false,
                ..base
            };
            let mut inner = ();
            let mut spill = RangeSpill::new(range_md5, &mut inner).unwrap();
            let d = checksum(&v, Path::new("x"), &opts, &mut spill).unwrap();
            let m = Manifest::from_digests(&d);
            assert!(m.ranges.is_none());
            let mut out = Vec::new();
            spill.write_json(&m, &mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                want,
                "len {} range_md5 {range_md5}",
                v.len()
            );
        }
    }
}
