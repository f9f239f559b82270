//! Random inputs with random (truthful) hole hints, against values computed directly over the
//! bytes: the `md-5`, `sha2`, `blake3` and `crc32fast` crates and a plain page scan.

use md5_ref::Digest;
use std::io;
use std::ops::Range;
use std::path::Path;
use vhdprep_checksum::{checksum, Options, PUT_PAGE_MAX};
use vhdprep_disk::ReadAt;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Bytes with hints: `data` lists where data may be; everything else is zero.
struct Hinted {
    bytes: Vec<u8>,
    data: Vec<Range<u64>>,
}

impl ReadAt for Hinted {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.bytes.read_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        Ok(self
            .data
            .iter()
            .find(|r| r.end > offset)
            .map(|r| r.start.max(offset)..r.end))
    }
}

fn input(rng: &mut Rng) -> Hinted {
    let len = match rng.below(4) {
        0 => rng.below(5000),
        1 => rng.below(600 << 10),
        _ => rng.below(9 << 20),
    } as usize;
    let mut bytes = vec![0u8; len];
    // Data extents (4 KiB aligned, as a filesystem reports them), holes between.
    let mut data = Vec::new();
    let mut at = 0u64;
    while (at as usize) < len {
        let gap = rng.below(3) * 4096 * rng.below(300);
        let start = at + gap;
        if start as usize >= len {
            break;
        }
        let end = (start + 4096 * (1 + rng.below(400))).min(len as u64);
        for i in start..end {
            // Mostly data, some zero pages and zero stretches inside the extent.
            if (i / 512) % 7 != 3 && (i / 100_000) % 5 != 2 {
                bytes[i as usize] = (rng.next() >> 11) as u8 | 1;
            }
        }
        data.push(start..end);
        at = end;
    }
    Hinted { bytes, data }
}

fn plain_map(b: &[u8]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, page) in b.chunks(512).enumerate() {
        if page.iter().any(|&x| x != 0) {
            let off = i as u64 * 512;
            match out.last_mut() {
                Some((o, l)) if *o + *l == off => *l += page.len() as u64,
                _ => out.push((off, page.len() as u64)),
            }
        }
    }
    out
}

#[test]
fn random_inputs_match_direct_computation() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for round in 0..24 {
        let r = input(&mut rng);
        let b = &r.bytes;
        let d = checksum(&r, Path::new("random"), &Options::all(), &mut ()).unwrap();
        let what = format!("round {round}, {} bytes", b.len());
        let md5: [u8; 16] = md5_ref::Md5::digest(b).into();
        assert_eq!(d.md5, Some(md5), "{what}");
        let sha: [u8; 32] = sha2::Sha256::digest(b).into();
        assert_eq!(d.sha256, Some(sha), "{what}");
        assert_eq!(d.crc32, Some(crc32fast::hash(b)), "{what}");
        assert_eq!(d.blake3, Some(*blake3::hash(b).as_bytes()), "{what}");
        let map = plain_map(b);
        let got: Vec<(u64, u64)> = d
            .zero_map
            .as_ref()
            .unwrap()
            .ranges()
            .iter()
            .map(|x| (x.start, x.end - x.start))
            .collect();
        assert_eq!(got, map, "{what}");
        let mut want_pieces = Vec::new();
        for (o, l) in map {
            let mut at = o;
            while at < o + l {
                let e = ((at / PUT_PAGE_MAX + 1) * PUT_PAGE_MAX).min(o + l);
                let m: [u8; 16] = md5_ref::Md5::digest(&b[at as usize..e as usize]).into();
                want_pieces.push((at, e - at, m));
                at = e;
            }
        }
        let pieces: Vec<(u64, u64, [u8; 16])> = d
            .range_md5
            .unwrap()
            .iter()
            .map(|p| (p.offset, p.length, p.md5))
            .collect();
        assert_eq!(pieces, want_pieces, "{what}");
        let data_bytes: u64 = r.data.iter().map(|x| x.end - x.start).sum();
        assert!(
            d.bytes_read <= data_bytes.div_ceil(512) * 512 + 512 * r.data.len() as u64,
            "{what}: holes not read"
        );
    }
}
