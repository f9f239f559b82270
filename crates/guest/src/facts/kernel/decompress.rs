//! Compression formats the kernel accepts for initramfs segments, detected by magic, and a
//! bounded streaming decompressor that pushes output to a sink (the cpio parser) chunk by chunk.
//!
//! Every decoder is wrapped: output is capped by the sink, decoder panics are caught, and the
//! number of input bytes a segment used is returned so that a following segment can be found.

use serde::Serialize;
use std::io::{self, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Largest xz dictionary accepted. `xz -9`, the largest preset, uses 64 MiB (initramfs
/// builders use 1 to 8 MiB); a stream may ask for up to 3 GiB, which the decoder would have
/// to allocate.
pub const MAX_XZ_DICT: usize = 64 << 20;
/// Magic of the lz4 legacy frame (`lz4 -l`), little-endian on disk.
pub const LZ4_LEGACY_MAGIC: u32 = 0x184C_2102;
/// Uncompressed size of one lz4 legacy block.
pub const LZ4_LEGACY_BLOCK: usize = 8 << 20;
/// `LZ4_compressBound(8 MiB)`: the largest compressed block the kernel accepts.
pub const LZ4_LEGACY_BOUND: usize = LZ4_LEGACY_BLOCK + LZ4_LEGACY_BLOCK / 255 + 16;

/// What an initramfs segment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// An uncompressed cpio archive (`070701`/`070702`).
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// bzip2 (`BZh`).
    Bzip2,
    /// Legacy lzma (`5d 00 00`): recognised, not decoded.
    Lzma,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// lzop (`89 4c 5a 4f`): recognised, not decoded.
    Lzo,
    /// lz4 legacy frame (`02 21 4c 18`).
    Lz4Legacy,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// Nothing the kernel would accept.
    Unknown,
}

impl Compression {
    /// The format starting at `data`.
    pub fn detect(data: &[u8]) -> Compression {
        let m = |p: &[u8]| data.starts_with(p);
        if m(b"070701") || m(b"070702") {
            Compression::None
        } else if m(&[0x1f, 0x8b]) || m(&[0x1f, 0x9e]) {
            Compression::Gzip
        } else if m(b"BZh") {
            Compression::Bzip2
        } else if m(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if m(&[0x5d, 0, 0]) {
            Compression::Lzma
        } else if m(&[0x89, b'L', b'Z', b'O']) {
            Compression::Lzo
        } else if m(&LZ4_LEGACY_MAGIC.to_le_bytes()) {
            Compression::Lz4Legacy
        } else if m(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::Unknown
        }
    }
}

/// Why the sink refused more output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The output budget is spent.
    Limit,
    /// The consumer failed (message).
    Consumer(String),
}

/// Why a segment could not be decompressed to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecompressError {
    /// The sink stopped (budget or cpio error).
    Stopped(Stop),
    /// The format is recognised but not supported.
    Unsupported(Compression),
    /// The compressed data is corrupt or truncated (decoder message).
    Corrupt(String),
}

impl std::fmt::Display for DecompressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecompressError::Stopped(Stop::Limit) => write!(f, "decompressed size limit reached"),
            DecompressError::Stopped(Stop::Consumer(m)) => write!(f, "{m}"),
            DecompressError::Unsupported(c) => write!(f, "{c:?} compression is not supported"),
            DecompressError::Corrupt(m) => write!(f, "corrupt compressed data: {m}"),
        }
    }
}

/// Output sink: takes decompressed bytes, may refuse.
pub type Sink<'a> = dyn FnMut(&[u8]) -> Result<(), Stop> + 'a;

fn pump<R: Read>(mut r: R, sink: &mut Sink<'_>) -> Result<R, DecompressError> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(r),
            Ok(n) => sink(&buf[..n]).map_err(DecompressError::Stopped)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DecompressError::Corrupt(e.to_string())),
        }
    }
}

fn lz4_legacy(input: &[u8], sink: &mut Sink<'_>) -> Result<usize, DecompressError> {
    let mut pos = 4; // magic
    let mut out = vec![0u8; LZ4_LEGACY_BLOCK];
    loop {
        let Some(hdr) = input.get(pos..pos + 4) else {
            return Ok(input.len().min(pos));
        };
        let size = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        if size == LZ4_LEGACY_MAGIC {
            pos += 4;
            continue;
        }
        if size == 0 || size as usize > LZ4_LEGACY_BOUND {
            // End of the lz4 stream: whatever follows is another segment (or padding).
            return Ok(pos);
        }
        let size = size as usize;
        let Some(block) = input.get(pos + 4..pos + 4 + size) else {
            return Err(DecompressError::Corrupt("lz4 block truncated".into()));
        };
        let n = lz4_flex::block::decompress_into(block, &mut out)
            .map_err(|e| DecompressError::Corrupt(format!("lz4: {e}")))?;
        sink(&out[..n]).map_err(DecompressError::Stopped)?;
        pos += 4 + size;
    }
}

/// Streams an xz segment to the sink with a dictionary of at most [`MAX_XZ_DICT`] bytes, so
/// memory stays bounded whatever the stream's size (a decoder that buffers whole blocks
/// would hold the entire output). Returns the input bytes the stream used.
fn xz(input: &[u8], sink: &mut Sink<'_>) -> Result<usize, DecompressError> {
    let mut d =
        xz4rust::XzDecoder::in_heap_with_alloc_dict_size(xz4rust::DICT_SIZE_MIN, MAX_XZ_DICT);
    let mut out = vec![0u8; 64 << 10];
    let mut pos = 0;
    loop {
        let r = d.decode(&input[pos..], &mut out).map_err(xz_error)?;
        pos += r.input_consumed();
        sink(&out[..r.output_produced()]).map_err(DecompressError::Stopped)?;
        if r.is_end_of_stream() {
            return Ok(pos);
        }
        if !r.made_progress() {
            return Err(DecompressError::Corrupt("xz: stream truncated".into()));
        }
    }
}

fn xz_error(e: xz4rust::XzError) -> DecompressError {
    match e {
        xz4rust::XzError::DictionaryTooLarge(n) => DecompressError::Corrupt(format!(
            "xz: a {n}-byte dictionary is over the {MAX_XZ_DICT}-byte limit"
        )),
        e => DecompressError::Corrupt(format!("xz: {e}")),
    }
}

fn decode(comp: Compression, input: &[u8], sink: &mut Sink<'_>) -> Result<usize, DecompressError> {
    match comp {
        Compression::Gzip => {
            let d = flate2::bufread::GzDecoder::new(input);
            let rest = pump(d, sink)?.into_inner();
            Ok(input.len() - rest.len())
        }
        Compression::Zstd => {
            let mut cursor = input;
            let d = ruzstd::decoding::StreamingDecoder::new(&mut cursor)
                .map_err(|e| DecompressError::Corrupt(format!("zstd: {e}")))?;
            pump(d, sink)?;
            Ok(input.len() - cursor.len())
        }
        Compression::Xz => xz(input, sink),
        Compression::Bzip2 => {
            // The decoder reads ahead: the end of the stream is not known, so nothing after a
            // bzip2 segment is examined.
            pump(bzip2_rs::DecoderReader::new(input), sink)?;
            Ok(input.len())
        }
        Compression::Lz4Legacy => lz4_legacy(input, sink),
        Compression::Lzma | Compression::Lzo | Compression::Unknown | Compression::None => {
            Err(DecompressError::Unsupported(comp))
        }
    }
}

/// Decompresses the segment of format `comp` at the start of `input`, pushing output to
/// `sink`. Returns the number of input bytes the segment used. Never panics: a panicking
/// decoder is reported as corrupt data.
pub fn decompress(
    comp: Compression,
    input: &[u8],
    sink: &mut Sink<'_>,
) -> Result<usize, DecompressError> {
    match catch_unwind(AssertUnwindSafe(|| decode(comp, input, sink))) {
        Ok(r) => r,
        Err(_) => Err(DecompressError::Corrupt(format!(
            "{comp:?} decoder panicked"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn collect(
        comp: Compression,
        input: &[u8],
        limit: usize,
    ) -> (Vec<u8>, Result<usize, DecompressError>) {
        let mut out = Vec::new();
        let r = decompress(comp, input, &mut |b: &[u8]| {
            if out.len() + b.len() > limit {
                return Err(Stop::Limit);
            }
            out.extend_from_slice(b);
            Ok(())
        });
        (out, r)
    }

    #[test]
    fn detects_magics() {
        assert_eq!(Compression::detect(b"070701..."), Compression::None);
        assert_eq!(Compression::detect(b"070702..."), Compression::None);
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::detect(b"BZh9"), Compression::Bzip2);
        assert_eq!(Compression::detect(b"\xfd7zXZ\0"), Compression::Xz);
        assert_eq!(Compression::detect(&[0x5d, 0, 0, 0x80]), Compression::Lzma);
        assert_eq!(Compression::detect(b"\x89LZO\0"), Compression::Lzo);
        assert_eq!(
            Compression::detect(&[2, 0x21, 0x4c, 0x18]),
            Compression::Lz4Legacy
        );
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"070707"), Compression::Unknown);
        assert_eq!(Compression::detect(b""), Compression::Unknown);
    }

    #[test]
    fn gzip_reports_consumed_length() {
        let mut g = gzip(b"hello world");
        let len = g.len();
        g.extend_from_slice(b"TAIL");
        let (out, r) = collect(Compression::Gzip, &g, 1 << 20);
        assert_eq!(out, b"hello world");
        assert_eq!(r.unwrap(), len);
    }

    #[test]
    fn gzip_bomb_is_stopped_by_the_sink() {
        let g = gzip(&vec![0u8; 64 << 20]);
        assert!(g.len() < 1 << 20);
        let (out, r) = collect(Compression::Gzip, &g, 1 << 20);
        assert!(out.len() <= 1 << 20);
        assert_eq!(r, Err(DecompressError::Stopped(Stop::Limit)));
    }

    /// 64 MiB of zeros, `xz -9 --check=crc32` (9.9 KB).
    const XZ_ZEROS_64M: &[u8] = include_bytes!("../../../tests/data/zeros-64m.xz");

    #[test]
    fn xz_streams_in_pieces_so_a_bomb_stops_at_the_limit() {
        // A decoder that buffers the whole block (lzma-rs did) hands the sink 64 MiB at once
        // and never lets it see the first MiB.
        let (out, r) = collect(Compression::Xz, XZ_ZEROS_64M, 1 << 20);
        assert_eq!(r, Err(DecompressError::Stopped(Stop::Limit)));
        assert_eq!(out.len(), 1 << 20);
        let mut tail = XZ_ZEROS_64M.to_vec();
        tail.extend_from_slice(b"TAIL");
        let (out, r) = collect(Compression::Xz, &tail, 64 << 20);
        assert_eq!((out.len(), r), (64 << 20, Ok(XZ_ZEROS_64M.len())));
    }

    #[test]
    fn xz_dictionary_over_the_bound_is_refused() {
        // The block header follows the 12-byte stream header: size byte, flags, then the
        // LZMA2 filter (id 0x21, 1 property byte: 28 is 64 MiB), padding, CRC32.
        let mut x = XZ_ZEROS_64M.to_vec();
        assert_eq!(x[12..17], [2, 0, 0x21, 1, 28]);
        x[16] = 38; // 2 GiB
        let mut crc = flate2::Crc::new();
        crc.update(&x[12..20]);
        x[20..24].copy_from_slice(&crc.sum().to_le_bytes());
        let (out, r) = collect(Compression::Xz, &x, 1 << 30);
        assert!(out.is_empty());
        assert!(
            matches!(&r, Err(DecompressError::Corrupt(m)) if m.contains("2147483648-byte dictionary")),
            "{r:?}"
        );
    }

    #[test]
    fn truncated_and_garbage_streams_are_errors_not_panics() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|x| x.to_le_bytes()).collect();
        let g = gzip(&data);
        let (_, r) = collect(Compression::Gzip, &g[..g.len() / 2], 1 << 30);
        assert!(matches!(r, Err(DecompressError::Corrupt(_))));
        for comp in [
            Compression::Gzip,
            Compression::Zstd,
            Compression::Xz,
            Compression::Bzip2,
            Compression::Lz4Legacy,
        ] {
            let junks: [&[u8]; 4] = [
                b"",
                b"\x00",
                &[0xff; 300],
                &[0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff],
            ];
            for junk in junks {
                let _ = collect(comp, junk, 1 << 20);
            }
        }
        let (_, r) = collect(Compression::Lzma, &[0x5d, 0, 0], 10);
        assert_eq!(r, Err(DecompressError::Unsupported(Compression::Lzma)));
        let (_, r) = collect(Compression::Lzo, b"\x89LZO", 10);
        assert_eq!(r, Err(DecompressError::Unsupported(Compression::Lzo)));
    }

    #[test]
    fn lz4_legacy_blocks_and_bounds() {
        let data: Vec<u8> = (0..50_000u32)
            .flat_map(|x| (x % 251).to_le_bytes())
            .collect();
        let block = lz4_flex::block::compress(&data);
        let mut f = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        for _ in 0..2 {
            f.extend_from_slice(&(block.len() as u32).to_le_bytes());
            f.extend_from_slice(&block);
        }
        let end = f.len();
        f.extend_from_slice(b"0707");
        let (out, r) = collect(Compression::Lz4Legacy, &f, 1 << 30);
        assert_eq!(out.len(), 2 * data.len());
        assert_eq!(r.unwrap(), end);
        // A stated block size past the input is an error.
        let mut bad = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        bad.extend_from_slice(&1000u32.to_le_bytes());
        bad.extend_from_slice(&[0; 10]);
        assert!(matches!(
            collect(Compression::Lz4Legacy, &bad, 1 << 20).1,
            Err(DecompressError::Corrupt(_))
        ));
        // A corrupt block is an error.
        let mut bad = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        bad.extend_from_slice(&8u32.to_le_bytes());
        bad.extend_from_slice(&[0xf0; 8]);
        assert!(matches!(
            collect(Compression::Lz4Legacy, &bad, 1 << 20).1,
            Err(DecompressError::Corrupt(_))
        ));
    }
}
