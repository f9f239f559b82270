//! An initramfs image as the kernel unpacks it: a sequence of segments, each an uncompressed
//! cpio archive or a compressed stream of cpio archives, separated by optional zero padding
//! (typically an uncompressed early-microcode cpio followed by a compressed main one).

use super::cpio::{CpioParser, Member};
use super::decompress::{decompress, Compression, DecompressError, Stop};
use serde::Serialize;

/// Most decompressed bytes examined over a whole initramfs.
pub const MAX_DECOMPRESSED: u64 = 1 << 30;

/// One segment of an initramfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// Byte offset in the initramfs file.
    pub offset: u64,
    /// Its format.
    pub compression: Compression,
    /// Input bytes it used.
    pub length: u64,
    /// Members listed from it.
    pub members: usize,
}

/// The listing of an initramfs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Listing {
    /// Segments in file order.
    pub segments: Vec<Segment>,
    /// Members in archive order. Not serialised (thousands of entries).
    #[serde(skip)]
    pub members: Vec<Member>,
    /// Number of members.
    pub member_count: usize,
    /// Decompressed bytes examined.
    pub decompressed: u64,
    /// Why listing stopped early (the members seen until then are kept).
    pub error: Option<String>,
}

/// Lists `data` with the default budget ([`MAX_DECOMPRESSED`]).
pub fn list(data: &[u8]) -> Listing {
    list_with_limit(data, MAX_DECOMPRESSED)
}

/// Lists `data`, examining at most `limit` decompressed bytes.
pub fn list_with_limit(data: &[u8], limit: u64) -> Listing {
    let mut out = Listing::default();
    let mut parser = CpioParser::new();
    let mut pos = 0usize;
    let mut used = 0u64;
    loop {
        while pos < data.len() && data[pos] == 0 {
            pos += 1;
        }
        if pos >= data.len() {
            break;
        }
        let comp = Compression::detect(&data[pos..]);
        let before = parser.members.len();
        parser.restart();
        let result: Result<usize, String> = match comp {
            Compression::Unknown => Err(format!("unrecognised data at offset {pos}")),
            Compression::None => {
                let rest = data.len() - pos;
                let room = limit.saturating_sub(used).min(rest as u64) as usize;
                match parser.feed(&data[pos..pos + room]) {
                    Ok(n) => {
                        used += n as u64;
                        if !parser.truncated() {
                            Ok(n)
                        } else if room < rest {
                            Err("decompressed size limit reached".to_string())
                        } else {
                            Err(format!("cpio archive at offset {pos} is truncated"))
                        }
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            _ => {
                let mut sink = |chunk: &[u8]| -> Result<(), Stop> {
                    // Up to the limit exactly, so that a spent budget reads as spent.
                    let room = limit.saturating_sub(used).min(chunk.len() as u64) as usize;
                    used += room as u64;
                    let mut b = &chunk[..room];
                    while !b.is_empty() {
                        let n = parser.feed(b).map_err(|e| Stop::Consumer(e.to_string()))?;
                        b = &b[n..];
                        if !b.is_empty() {
                            if b[0] != b'0' {
                                return Err(Stop::Consumer(
                                    "junk within compressed archive".into(),
                                ));
                            }
                            parser.restart();
                        }
                    }
                    if room < chunk.len() {
                        return Err(Stop::Limit);
                    }
                    Ok(())
                };
                match decompress(comp, &data[pos..], &mut sink) {
                    Ok(_) if parser.truncated() => Err(format!(
                        "{comp:?} segment at offset {pos} ends inside a cpio member"
                    )),
                    Ok(n) => Ok(n),
                    Err(DecompressError::Stopped(Stop::Consumer(m))) => Err(m),
                    Err(e) => Err(format!("{comp:?} segment at offset {pos}: {e}")),
                }
            }
        };
        let members = parser.members.len() - before;
        match result {
            Ok(n) => {
                out.segments.push(Segment {
                    offset: pos as u64,
                    compression: comp,
                    length: n as u64,
                    members,
                });
                if n == 0 {
                    out.error = Some(format!("empty segment at offset {pos}"));
                    break;
                }
                pos += n;
            }
            Err(e) => {
                if comp != Compression::Unknown {
                    out.segments.push(Segment {
                        offset: pos as u64,
                        compression: comp,
                        length: (data.len() - pos) as u64,
                        members,
                    });
                }
                out.error = Some(e);
                break;
            }
        }
    }
    out.decompressed = used;
    out.member_count = parser.members.len();
    out.members = parser.members;
    out
}

#[cfg(test)]
mod tests {
    use super::super::cpio::tests::newc;
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn names(l: &Listing) -> Vec<&str> {
        l.members.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn early_cpio_then_gzip() {
        let mut img = newc(&[("kernel/x86/microcode/GenuineIntel.bin", b"ucode")]);
        img.extend_from_slice(&[0; 512]);
        img.extend(gzip(&newc(&[
            ("init", b"#!/bin/sh"),
            ("usr/lib/modules/6.1/kernel/hv_vmbus.ko", b""),
        ])));
        img.extend_from_slice(&[0; 3]);
        let l = list(&img);
        assert_eq!(l.error, None);
        assert_eq!(
            names(&l),
            [
                "kernel/x86/microcode/GenuineIntel.bin",
                "init",
                "usr/lib/modules/6.1/kernel/hv_vmbus.ko"
            ]
        );
        assert_eq!(l.segments.len(), 2);
        assert_eq!(l.segments[0].compression, Compression::None);
        assert_eq!(l.segments[1].compression, Compression::Gzip);
        assert_eq!(l.segments[1].members, 2);
    }

    #[test]
    fn two_archives_in_one_stream() {
        let mut inner = newc(&[("a", b"1")]);
        inner.extend(newc(&[("b", b"2")]));
        let l = list(&gzip(&inner));
        assert_eq!(l.error, None);
        assert_eq!(names(&l), ["a", "b"]);
    }

    #[test]
    fn negative_cases_keep_what_was_seen() {
        let l = list(b"garbage!");
        assert!(l.error.unwrap().contains("unrecognised"));
        // truncated raw archive
        let a = newc(&[("a", b"12345"), ("b", b"")]);
        let l = list(&a[..a.len() - 130]);
        assert_eq!(names(&l), ["a"]);
        assert!(l.error.is_some());
        // truncated gzip
        let g = gzip(&a);
        let l = list(&g[..g.len() - 10]);
        assert!(l.error.is_some());
        // junk after a trailer inside a compressed stream
        let mut j = a.clone();
        j.extend_from_slice(b"JUNK");
        assert!(list(&gzip(&j)).error.unwrap().contains("junk"));
        // lzma: recognised, unsupported
        let l = list(&[0x5d, 0, 0, 0x80, 0]);
        assert!(l.error.unwrap().contains("not supported"));
        // all zeros: nothing, no error
        let l = list(&[0; 64]);
        assert!(l.error.is_none() && l.members.is_empty());
    }

    #[test]
    fn mutated_images_never_panic() {
        let inner = newc(&[("a", b"12345"), ("dir/b.ko", &[9u8; 3000]), ("c", b"")]);
        let mut lz4 = super::super::decompress::LZ4_LEGACY_MAGIC
            .to_le_bytes()
            .to_vec();
        let block = lz4_flex::block::compress(&inner);
        lz4.extend_from_slice(&(block.len() as u32).to_le_bytes());
        lz4.extend_from_slice(&block);
        let mut early = newc(&[("kernel/x86/microcode/GenuineIntel.bin", b"u")]);
        early.extend(gzip(&inner));
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for base in [inner.clone(), gzip(&inner), lz4, early] {
            assert_eq!(list(&base).error, None);
            for _ in 0..300 {
                let mut m = base.clone();
                for _ in 0..1 + rnd() % 4 {
                    let i = (rnd() as usize) % m.len();
                    m[i] = rnd() as u8;
                }
                let cut = (rnd() as usize) % (m.len() + 1);
                let _ = list_with_limit(&m, 1 << 20);
                let _ = list_with_limit(&m[..cut], 1 << 20);
            }
        }
    }

    #[test]
    fn bomb_is_bounded() {
        let big = newc(&[("zeros", &vec![0u8; 32 << 20])]);
        let l = list_with_limit(&gzip(&big), 1 << 20);
        assert_eq!(l.decompressed, 1 << 20, "the budget is spent exactly");
        assert_eq!(names(&l), ["zeros"]);
        assert!(l.error.unwrap().contains("limit"));
        // raw archive over the budget
        let l = list_with_limit(&big, 1 << 20);
        assert!(l.error.unwrap().contains("limit"));
    }
}
