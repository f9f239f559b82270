//! A bounded tar reader: lists the members of an archive and where their data lies, so that
//! a member can be read in place (a [`crate::Slice`] of the archive), never extracted.
//!
//! Reads POSIX ustar headers (name + prefix), pax extended headers (`path`, `size`) and GNU
//! long names (`L`) and base-256 sizes. Every member's data must lie inside the file, the
//! number of members and the length of names and pax headers are capped.

use super::OvaError;
use crate::read_at::ReadAt;

/// Size of a tar block.
pub const BLOCK: u64 = 512;
/// Most members listed: 4096 (an OVA holds an OVF, a manifest, a certificate and a few
/// disks; ovftool's largest have tens).
pub const MAX_MEMBERS: usize = 4096;
/// Longest member name (Linux's PATH_MAX).
pub const MAX_NAME_BYTES: u64 = 4096;
/// Largest pax extended header read: 64 KiB (a path, a size and timestamps need < 1 KiB).
pub const MAX_PAX_BYTES: u64 = 64 << 10;

/// What a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// A regular file (`0` or NUL).
    File,
    /// A directory (`5`).
    Directory,
    /// Anything else (links, devices...), by its type flag.
    Other(u8),
}

/// One member of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarMember {
    /// Its name (pax `path`, GNU long name, or ustar prefix/name).
    pub name: String,
    /// Offset of its (last) header block.
    pub header_offset: u64,
    /// Offset of its data.
    pub offset: u64,
    /// Size of its data.
    pub size: u64,
    /// Its type.
    pub kind: MemberKind,
}

/// Parses an octal field (NUL/space padded) or a GNU base-256 number (first byte 0x80).
fn number(field: &[u8], offset: u64, what: &'static str) -> Result<u64, OvaError> {
    let bad = || OvaError::BadHeader { offset, why: what };
    match field.first() {
        Some(&b) if b & 0x80 != 0 => {
            if b != 0x80 {
                return Err(bad()); // negative or over 2^88
            }
            field[1..].iter().try_fold(0u64, |acc, &x| {
                acc.checked_mul(256)
                    .map(|a| a + u64::from(x))
                    .ok_or_else(bad)
            })
        }
        _ => {
            let t: Vec<u8> = field
                .iter()
                .copied()
                .skip_while(|&c| c == b' ')
                .take_while(|&c| c != 0 && c != b' ')
                .collect();
            if t.is_empty() {
                return Ok(0);
            }
            t.iter().try_fold(0u64, |acc, &c| {
                if !(b'0'..=b'7').contains(&c) {
                    return Err(bad());
                }
                acc.checked_mul(8)
                    .map(|a| a + u64::from(c - b'0'))
                    .ok_or_else(bad)
            })
        }
    }
}

fn cstr(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// The header checksum: the sum of its bytes with the checksum field read as spaces
/// (unsigned, or signed as some old tars wrote it).
fn checksum_ok(h: &[u8; 512], offset: u64) -> Result<bool, OvaError> {
    let stored = number(&h[148..156], offset, "bad checksum field")?;
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    Ok(stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed))
}

/// Reads a small member's data (pax header, GNU long name) of at most `cap` bytes.
fn small_data(
    file: &dyn ReadAt,
    at: u64,
    size: u64,
    cap: u64,
    why: &'static str,
) -> Result<Vec<u8>, OvaError> {
    if size > cap {
        return Err(OvaError::BadHeader { offset: at, why });
    }
    let mut v = vec![0u8; size as usize];
    file.read_exact_at(&mut v, at)?;
    Ok(v)
}

/// `path` and `size` from pax records (`LEN key=value\n`).
fn pax_records(data: &[u8], offset: u64) -> Result<(Option<String>, Option<u64>), OvaError> {
    let bad = || OvaError::BadHeader {
        offset,
        why: "malformed pax extended header",
    };
    let (mut path, mut size) = (None, None);
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let sp = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad());
        }
        let record = &rest[sp + 1..len - 1];
        let eq = record.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        let (k, v) = (&record[..eq], &record[eq + 1..]);
        match k {
            b"path" => path = Some(String::from_utf8_lossy(v).into_owned()),
            b"size" => {
                size = Some(
                    std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(bad)?,
                )
            }
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok((path, size))
}

/// Lists the members of the tar archive `file`, checking that each one's data lies inside it.
pub fn read_tar(file: &dyn ReadAt) -> Result<Vec<TarMember>, OvaError> {
    let file_len = file.len();
    let mut members = Vec::new();
    let mut at = 0u64;
    let mut long_name: Option<String> = None;
    let mut pax_path: Option<String> = None;
    let mut pax_size: Option<u64> = None;
    // Extended headers each add a block; bound the headers read, not just the members.
    let mut headers = 0usize;
    loop {
        if at >= file_len {
            break; // no end-of-archive blocks: accepted, as GNU tar does with a warning
        }
        if at + BLOCK > file_len {
            return Err(OvaError::BadHeader {
                offset: at,
                why: "the file ends inside a tar header",
            });
        }
        headers += 1;
        if headers > 4 * MAX_MEMBERS {
            return Err(OvaError::TooManyMembers);
        }
        let mut h = [0u8; 512];
        file.read_exact_at(&mut h, at)?;
        if h.iter().all(|&b| b == 0) {
            break; // end of archive
        }
        if !checksum_ok(&h, at)? {
            return Err(OvaError::BadChecksum { offset: at });
        }
        let size = number(&h[124..136], at, "bad size field")?;
        let data = at + BLOCK;
        let end = data
            .checked_add(size)
            .filter(|&e| e <= file_len)
            .ok_or_else(|| OvaError::MemberPastEnd {
                name: String::from_utf8_lossy(cstr(&h[..100])).into_owned(),
                offset: data,
                size,
                file_len,
            })?;
        let next = end.div_ceil(BLOCK) * BLOCK;
        let flag = h[156];
        match flag {
            b'x' => {
                let d = small_data(file, data, size, MAX_PAX_BYTES, "pax header over 64 KiB")?;
                let (p, s) = pax_records(&d, at)?;
                pax_path = p.or(pax_path);
                pax_size = s.or(pax_size);
            }
            b'g' => {} // global pax header: nothing vhdprep uses
            b'L' => {
                let d = small_data(
                    file,
                    data,
                    size,
                    MAX_NAME_BYTES + 1,
                    "GNU long name over 4096 bytes",
                )?;
                long_name = Some(String::from_utf8_lossy(cstr(&d)).into_owned());
            }
            b'K' => {} // GNU long link name
            _ => {
                if members.len() >= MAX_MEMBERS {
                    return Err(OvaError::TooManyMembers);
                }
                let posix = &h[257..263] == b"ustar\0";
                let name = cstr(&h[..100]);
                let prefix = if posix { cstr(&h[345..500]) } else { &[][..] };
                let ustar_name = if prefix.is_empty() {
                    String::from_utf8_lossy(name).into_owned()
                } else {
                    format!(
                        "{}/{}",
                        String::from_utf8_lossy(prefix),
                        String::from_utf8_lossy(name)
                    )
                };
                let name = pax_path.take().or(long_name.take()).unwrap_or(ustar_name);
                long_name = None;
                let (size, next) = match pax_size.take() {
                    None => (size, next),
                    Some(s) => {
                        let e =
                            data.checked_add(s)
                                .filter(|&e| e <= file_len)
                                .ok_or_else(|| OvaError::MemberPastEnd {
                                    name: name.clone(),
                                    offset: data,
                                    size: s,
                                    file_len,
                                })?;
                        (s, e.div_ceil(BLOCK) * BLOCK)
                    }
                };
                let kind = match flag {
                    0 | b'0' | b'7' => MemberKind::File,
                    b'5' => MemberKind::Directory,
                    o => MemberKind::Other(o),
                };
                members.push(TarMember {
                    name,
                    header_offset: at,
                    offset: data,
                    size,
                    kind,
                });
                at = next;
                continue;
            }
        }
        at = next;
    }
    Ok(members)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ustar header for `name` of `size` bytes, with its checksum.
    pub(crate) fn header(name: &str, size: u64, flag: u8) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = flag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn archive(members: &[(&str, &[u8], u8)]) -> Vec<u8> {
        let mut v = Vec::new();
        for (name, data, flag) in members {
            v.extend_from_slice(&header(name, data.len(), *flag));
            v.extend_from_slice(data);
            v.resize(v.len().div_ceil(512) * 512, 0);
        }
        v.extend_from_slice(&[0u8; 1024]);
        v
    }

    #[test]
    fn lists_members_with_pax_and_gnu_names() {
        let pax = b"30 path=a/very/long/name.vmdk\n";
        let t = archive(&[
            ("x.ovf", b"<Envelope/>", b'0'),
            ("PaxHeaders/x", pax, b'x'),
            ("short", b"abc", b'0'),
            ("././@LongLink", b"gnu/long.vmdk\0", b'L'),
            ("gnu/lo", b"12345", b'0'),
            ("dir", b"", b'5'),
        ]);
        let m = read_tar(&t).unwrap();
        let names: Vec<_> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["x.ovf", "a/very/long/name.vmdk", "gnu/long.vmdk", "dir"]
        );
        assert_eq!(m[0].offset, 512);
        assert_eq!(m[0].size, 11);
        assert_eq!(m[2].size, 5);
        assert_eq!(m[3].kind, MemberKind::Directory);
        let mut b = [0u8; 5];
        t.read_exact_at(&mut b, m[2].offset).unwrap();
        assert_eq!(&b, b"12345");
    }

    #[test]
    fn a_member_claiming_more_than_the_file() {
        let mut t = archive(&[("x.vmdk", &[7u8; 2000], b'0')]);
        t.truncate(1536);
        let e = read_tar(&t).unwrap_err();
        assert!(
            matches!(e, OvaError::MemberPastEnd { size: 2000, .. }),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "tar member \"x.vmdk\" claims 2000 bytes at offset 512, past the end of the 1536-byte file"
        );
        // A pax size past the end, and a base-256 size near 2^64.
        let t = archive(&[
            ("p", b"26 size=99999999999999999\n", b'x'),
            ("x", b"", b'0'),
        ]);
        assert!(matches!(read_tar(&t), Err(OvaError::MemberPastEnd { .. })));
        let mut h = header("big", 0, b'0');
        h[124..128].copy_from_slice(&[0x80, 0, 0, 0]);
        h[128..136].fill(0xFF);
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        assert!(matches!(
            read_tar(&h.to_vec()),
            Err(OvaError::MemberPastEnd { .. })
        ));
    }

    #[test]
    fn bad_headers() {
        let mut t = archive(&[("x", b"abc", b'0')]);
        t[0] = b'y';
        assert!(matches!(
            read_tar(&t),
            Err(OvaError::BadChecksum { offset: 0 })
        ));
        assert!(matches!(
            read_tar(&vec![1u8; 100]),
            Err(OvaError::BadHeader { .. })
        ));
        let t = archive(&[("p", b"5 path\n", b'x'), ("x", b"", b'0')]);
        assert!(matches!(read_tar(&t), Err(OvaError::BadHeader { .. })));
        let t = archive(&[("p", b"999 path=x\n", b'x'), ("x", b"", b'0')]);
        assert!(matches!(read_tar(&t), Err(OvaError::BadHeader { .. })));
        let big = vec![b'a'; 5000];
        let t = archive(&[("L", &big, b'L'), ("x", b"", b'0')]);
        assert!(matches!(read_tar(&t), Err(OvaError::BadHeader { .. })));
        assert_eq!(read_tar(&Vec::new()).unwrap(), vec![]);
    }

    #[test]
    fn member_count_is_capped() {
        let one = archive(&[("x", b"", b'0')]);
        let mut t = Vec::new();
        for _ in 0..=MAX_MEMBERS {
            t.extend_from_slice(&one[..512]);
        }
        assert!(matches!(read_tar(&t), Err(OvaError::TooManyMembers)));
    }
}
