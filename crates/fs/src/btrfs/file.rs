//! File contents: EXTENT_DATA items (inline, regular, preallocated, holes), with zlib,
//! LZO (btrfs's own framing, [`super::lzo`]) and zstd decompression. Encrypted extents are
//! reported as unsupported.
//!
//! Bounds: the output is allocated once at the inode's size (which the caller has checked
//! against its limit); an extent is decompressed only when it contributes bytes to the output,
//! and the bytes contributed by all extents may not exceed the size (overlapping extents are
//! corruption), so a hostile extent list cannot make the work grow beyond the file.

use super::tree::{Reader, TreeRoot};
use super::{corrupt, le_u16, le_u64, unsupported, Key};
use crate::api::FsResult;
use std::io::Read;
use std::ops::ControlFlow;

/// Key type of a file extent item.
pub const EXTENT_DATA_KEY: u8 = 108;
/// Largest uncompressed size of one compressed extent this reader accepts (btrfs writes at
/// most 128 KiB).
const MAX_DECOMPRESSED: u64 = 1 << 20;
/// Largest compressed size of one extent this reader reads.
const MAX_COMPRESSED: u64 = 1 << 20;

const FILE_EXTENT_INLINE: u8 = 0;
const FILE_EXTENT_REG: u8 = 1;
const FILE_EXTENT_PREALLOC: u8 = 2;

const COMPRESS_NONE: u8 = 0;
const COMPRESS_ZLIB: u8 = 1;
const COMPRESS_LZO: u8 = 2;
const COMPRESS_ZSTD: u8 = 3;

/// Decompresses one extent to at most `ram_bytes` bytes (shorter output is zero-filled by the
/// caller, as the kernel does).
pub fn decompress(kind: u8, data: &[u8], ram_bytes: u64) -> FsResult<Vec<u8>> {
    if ram_bytes > MAX_DECOMPRESSED {
        return Err(corrupt(format!(
            "compressed extent claims {ram_bytes} uncompressed bytes"
        )));
    }
    let limit = ram_bytes as usize;
    match kind {
        COMPRESS_ZLIB => {
            match miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, limit) {
                Ok(v) => Ok(v),
                Err(e) => Err(corrupt(format!("zlib extent: {e:?}"))),
            }
        }
        COMPRESS_ZSTD => {
            let mut src = data;
            let dec = ruzstd::decoding::StreamingDecoder::new(&mut src)
                .map_err(|e| corrupt(format!("zstd extent: {e}")))?;
            let mut out = Vec::with_capacity(limit);
            dec.take(ram_bytes)
                .read_to_end(&mut out)
                .map_err(|e| corrupt(format!("zstd extent: {e}")))?;
            Ok(out)
        }
        COMPRESS_LZO => super::lzo::decompress(data, limit),
        other => Err(corrupt(format!("unknown compression type {other}"))),
    }
}

/// Fills `out` (the file's bytes, `out.len()` = inode size) from the extents of inode `ino`.
pub fn read_data(r: &Reader, tree: TreeRoot, ino: u64, out: &mut [u8]) -> FsResult<()> {
    let size = out.len() as u64;
    if size == 0 {
        return Ok(());
    }
    let mut contributed: u64 = 0;
    let min = Key::new(ino, EXTENT_DATA_KEY, 0);
    let max = Key::new(ino, EXTENT_DATA_KEY, size - 1);
    r.walk(tree, min, max, &mut |k, d| {
        if d.len() < 21 {
            return Err(corrupt(format!(
                "inode {ino}: extent item of {} bytes",
                d.len()
            )));
        }
        let file_off = k.offset;
        let ram_bytes = le_u64(d, 8)?;
        let compression = d[16];
        let encryption = d[17];
        let other = le_u16(d, 18)?;
        let ty = d[20];
        if encryption != 0 || other != 0 {
            return Err(unsupported(format!(
                "inode {ino}: encrypted or encoded extent at {file_off}"
            )));
        }
        // Bytes this extent covers in the file, clipped to the size.
        let logical_len = match ty {
            FILE_EXTENT_INLINE => {
                if compression == COMPRESS_NONE {
                    (d.len() - 21) as u64
                } else {
                    ram_bytes
                }
            }
            FILE_EXTENT_REG | FILE_EXTENT_PREALLOC => le_u64(d, 45)?,
            other => return Err(corrupt(format!("inode {ino}: extent type {other}"))),
        };
        let end = file_off.saturating_add(logical_len).min(size);
        if end <= file_off {
            return Ok(ControlFlow::Continue(()));
        }
        let n = end - file_off;
        contributed = contributed.saturating_add(n);
        if contributed > size {
            return Err(corrupt(format!("inode {ino}: overlapping file extents")));
        }
        let dst = &mut out[file_off as usize..end as usize];
        match ty {
            FILE_EXTENT_INLINE => {
                let raw = &d[21..];
                if compression == COMPRESS_NONE {
                    dst.copy_from_slice(&raw[..n as usize]);
                } else {
                    let v = decompress(compression, raw, ram_bytes)?;
                    let m = v.len().min(dst.len());
                    dst[..m].copy_from_slice(&v[..m]);
                }
            }
            _ => {
                let disk_bytenr = le_u64(d, 21)?;
                let disk_num_bytes = le_u64(d, 29)?;
                let offset = le_u64(d, 37)?;
                if ty == FILE_EXTENT_PREALLOC || disk_bytenr == 0 {
                    // Preallocated or a hole: zeros, which `out` already holds.
                } else if compression == COMPRESS_NONE {
                    let at = disk_bytenr
                        .checked_add(offset)
                        .ok_or_else(|| corrupt("extent address overflow"))?;
                    r.read_logical(dst, at)?;
                } else {
                    if disk_num_bytes > MAX_COMPRESSED {
                        return Err(corrupt(format!(
                            "inode {ino}: compressed extent of {disk_num_bytes} bytes"
                        )));
                    }
                    let mut raw = vec![0u8; disk_num_bytes as usize];
                    r.read_logical(&mut raw, disk_bytenr)?;
                    let v = decompress(compression, &raw, ram_bytes)?;
                    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(v.len());
                    let m = (v.len() - start).min(dst.len());
                    dst[..m].copy_from_slice(&v[start..start + m]);
                }
            }
        }
        Ok(ControlFlow::Continue(()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zlib_and_zstd_round_trip() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let z = miniz_oxide::deflate::compress_to_vec_zlib(&data, 6);
        assert_eq!(
            decompress(COMPRESS_ZLIB, &z, data.len() as u64).unwrap(),
            data
        );
        let s = ruzstd::encoding::compress_to_vec(
            &data[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert_eq!(
            decompress(COMPRESS_ZSTD, &s, data.len() as u64).unwrap(),
            data
        );
        // Garbage and oversize claims are errors, not panics.
        assert!(decompress(COMPRESS_ZLIB, &[1, 2, 3], 100).is_err());
        assert!(decompress(COMPRESS_ZSTD, &[1, 2, 3], 100).is_err());
        assert!(decompress(COMPRESS_ZSTD, &s, 1 << 30).is_err());
        assert!(matches!(
            decompress(COMPRESS_LZO, &[], 10),
            Err(crate::FsError::Corrupt { .. })
        ));
    }
}
