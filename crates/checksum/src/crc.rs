//! CRC32 (IEEE, the zlib polynomial) pieces that combine: chunks hashed in parallel are joined
//! in order with [`crc32fast::Hasher::combine`], and holes are appended without reading them.

use crc32fast::Hasher;

/// A hasher standing for `len` zero bytes, computed in O(log len) without touching memory.
///
/// With `X = x^(8 len) mod P`, the CRC of `len` zeros is `!(0xFFFF_FFFF * X)`, and
/// `combine(a, b, len)` is `a * X ^ b`; so combining `0xFFFF_FFFF` with `0xFFFF_FFFF` over
/// `len` bytes yields exactly that value.
pub fn zeros(len: u64) -> Hasher {
    if len == 0 {
        return Hasher::new();
    }
    let mut h = Hasher::new_with_initial_len(0xFFFF_FFFF, 0);
    h.combine(&Hasher::new_with_initial_len(0xFFFF_FFFF, len));
    Hasher::new_with_initial_len(h.finalize(), len)
}

/// Appends `len` zero bytes to `crc`.
pub fn append_zeros(crc: &mut Hasher, len: u64) {
    if len > 0 {
        crc.combine(&zeros(len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_equal_hashing_zeros() {
        for len in [0usize, 1, 2, 3, 7, 511, 512, 4096, 65_537, 1 << 20] {
            let want = crc32fast::hash(&vec![0u8; len]);
            assert_eq!(zeros(len as u64).finalize(), want, "len {len}");
        }
    }

    #[test]
    fn appended_zeros_equal_hashing_them() {
        let mut data = b"vhdprep".to_vec();
        let mut h = Hasher::new();
        h.update(&data);
        append_zeros(&mut h, 1000);
        h.update(b"x");
        data.extend_from_slice(&[0u8; 1000]);
        data.push(b'x');
        assert_eq!(h.finalize(), crc32fast::hash(&data));
    }

    #[test]
    fn huge_zero_runs_are_cheap() {
        let t = std::time::Instant::now();
        for i in 0..10_000u64 {
            std::hint::black_box(zeros((30 << 30) + i));
        }
        assert!(t.elapsed().as_secs() < 5);
    }
}
