//! A push parser for cpio "newc" (`070701`) and "crc" (`070702`) archives, as the kernel's
//! initramfs unpacker reads them: 110-byte ASCII-hex header, NUL-terminated name padded so that
//! header + name is a multiple of 4, file data padded to 4, `TRAILER!!!` ends an archive, zero
//! bytes between archives are padding.
//!
//! Only names, modes and sizes are kept; file data is skipped as it streams past, so memory stays
//! bounded whatever the archive says.

/// Length of a newc header.
pub const HEADER_LEN: usize = 110;
/// Longest name accepted, NUL included (the kernel's `PATH_MAX`).
pub const MAX_NAME: usize = 4096;
/// Most members accepted over the whole initramfs.
pub const MAX_MEMBERS: usize = 1_000_000;

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Path as stored (leading `./` or `/` removed; the root itself is `.`).
    pub name: String,
    /// `st_mode`.
    pub mode: u32,
    /// Data length.
    pub size: u32,
}

/// Why parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpioError {
    /// A header did not start with `070701`/`070702`.
    BadMagic {
        /// Archive byte offset of the header.
        offset: u64,
    },
    /// A header field was not hexadecimal.
    BadHeader {
        /// Archive byte offset of the header.
        offset: u64,
    },
    /// Name length 0 or above [`MAX_NAME`].
    BadNameSize {
        /// Archive byte offset of the header.
        offset: u64,
        /// The stated length.
        namesize: u32,
    },
    /// More than [`MAX_MEMBERS`] members.
    TooManyMembers,
}

impl std::fmt::Display for CpioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CpioError::BadMagic { offset } => write!(f, "cpio: bad magic at offset {offset}"),
            CpioError::BadHeader { offset } => {
                write!(f, "cpio: non-hex header field at offset {offset}")
            }
            CpioError::BadNameSize { offset, namesize } => {
                write!(
                    f,
                    "cpio: name size {namesize} at offset {offset} out of range"
                )
            }
            CpioError::TooManyMembers => write!(f, "cpio: more than {MAX_MEMBERS} members"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a header (zero bytes before its first byte are padding).
    Header,
    /// Collecting `namesize` bytes of name plus padding.
    Name { namesize: usize, pad: usize },
    /// Skipping `left` bytes of data plus padding.
    Skip { left: u64 },
    /// After `TRAILER!!!`: zero padding until something else starts.
    Reset,
}

/// The parser. Feed it bytes with [`CpioParser::feed`].
#[derive(Debug)]
pub struct CpioParser {
    state: State,
    buf: Vec<u8>,
    pending: Option<(u32, u32)>,
    offset: u64,
    header_offset: u64,
    /// Members seen so far, in archive order (trailers excluded).
    pub members: Vec<Member>,
    /// Archives completed (trailers seen).
    pub archives: usize,
}

impl Default for CpioParser {
    fn default() -> Self {
        Self::new()
    }
}

fn hex(field: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(field).ok()?;
    u32::from_str_radix(s, 16).ok()
}

/// Bytes of zeros compared at once by [`leading_zeros`].
const ZERO_RUN: usize = 4096;
static ZEROS: [u8; ZERO_RUN] = [0; ZERO_RUN];

/// Number of zero bytes `data` starts with, compared [`ZERO_RUN`] at a time (memcmp): zero
/// padding between archives can be long (a gzip bomb of zeros is nothing else), and a byte
/// loop over a GiB of it takes seconds in a debug build.
fn leading_zeros(data: &[u8]) -> usize {
    let mut n = 0;
    while n + ZERO_RUN <= data.len() && data[n..n + ZERO_RUN] == ZEROS {
        n += ZERO_RUN;
    }
    while n < data.len() && data[n] == 0 {
        n += 1;
    }
    n
}

impl CpioParser {
    /// A parser expecting a header.
    pub fn new() -> Self {
        CpioParser {
            state: State::Header,
            buf: Vec::with_capacity(HEADER_LEN),
            pending: None,
            offset: 0,
            header_offset: 0,
            members: Vec::new(),
            archives: 0,
        }
    }

    /// True when a trailer has been seen and nothing after it started.
    pub fn after_trailer(&self) -> bool {
        self.state == State::Reset
    }

    /// Leaves the after-trailer state so that the next bytes are read as a new archive.
    pub fn restart(&mut self) {
        if self.state == State::Reset {
            self.state = State::Header;
            self.buf.clear();
        }
    }

    /// True when the input ended in the middle of a member.
    pub fn truncated(&self) -> bool {
        !(self.state == State::Reset || (self.state == State::Header && self.buf.is_empty()))
    }

    /// Feeds bytes. Returns how many were consumed: all of them, except when a trailer was seen
    /// and a non-zero byte follows its padding (the caller decides whether that starts a new
    /// archive, [`CpioParser::restart`], or another initramfs segment).
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, CpioError> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Reset => {
                    let z = leading_zeros(&data[i..]);
                    i += z;
                    self.offset += z as u64;
                    if i < data.len() {
                        return Ok(i);
                    }
                }
                State::Header => {
                    if self.buf.is_empty() {
                        let z = leading_zeros(&data[i..]);
                        i += z;
                        self.offset += z as u64;
                        if i == data.len() {
                            break;
                        }
                        self.header_offset = self.offset;
                    }
                    let take = (HEADER_LEN - self.buf.len()).min(data.len() - i);
                    self.buf.extend_from_slice(&data[i..i + take]);
                    i += take;
                    self.offset += take as u64;
                    if self.buf.len() == HEADER_LEN {
                        self.header()?;
                    }
                }
                State::Name { namesize, pad } => {
                    let want = namesize + pad;
                    let take = (want - self.buf.len()).min(data.len() - i);
                    self.buf.extend_from_slice(&data[i..i + take]);
                    i += take;
                    self.offset += take as u64;
                    if self.buf.len() == want {
                        self.name(namesize)?;
                    }
                }
                State::Skip { left } => {
                    let take = left.min((data.len() - i) as u64);
                    i += take as usize;
                    self.offset += take;
                    let left = left - take;
                    self.state = if left == 0 {
                        self.buf.clear();
                        State::Header
                    } else {
                        State::Skip { left }
                    };
                }
            }
        }
        Ok(i)
    }

    fn header(&mut self) -> Result<(), CpioError> {
        let h = &self.buf;
        let offset = self.header_offset;
        if &h[..6] != b"070701" && &h[..6] != b"070702" {
            return Err(CpioError::BadMagic { offset });
        }
        let field = |n: usize| hex(&h[6 + 8 * n..14 + 8 * n]);
        if (0..13).any(|n| field(n).is_none()) {
            return Err(CpioError::BadHeader { offset });
        }
        let (mode, filesize, namesize) = (
            field(1).unwrap_or(0),
            field(6).unwrap_or(0),
            field(11).unwrap_or(0),
        );
        if namesize == 0 || namesize as usize > MAX_NAME {
            return Err(CpioError::BadNameSize { offset, namesize });
        }
        let namesize = namesize as usize;
        let pad = (4 - (HEADER_LEN + namesize) % 4) % 4;
        self.pending = Some((mode, filesize));
        self.buf.clear();
        self.state = State::Name { namesize, pad };
        Ok(())
    }

    fn name(&mut self, namesize: usize) -> Result<(), CpioError> {
        let (mode, size) = self.pending.take().unwrap_or((0, 0));
        let raw = &self.buf[..namesize];
        let raw = raw.split(|&b| b == 0).next().unwrap_or(&[]);
        let full = String::from_utf8_lossy(raw).into_owned();
        let name = full.trim_start_matches("./").trim_start_matches('/');
        let name = if name.is_empty() { "." } else { name }.to_string();
        self.buf.clear();
        let left = u64::from(size) + ((4 - u64::from(size) % 4) % 4);
        if name == "TRAILER!!!" {
            self.archives += 1;
            self.state = State::Reset;
            return Ok(());
        }
        if self.members.len() >= MAX_MEMBERS {
            return Err(CpioError::TooManyMembers);
        }
        self.members.push(Member { name, mode, size });
        self.state = if left == 0 {
            State::Header
        } else {
            State::Skip { left }
        };
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A newc archive with the given (name, data) members and a trailer.
    pub fn newc(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push = |name: &str, data: &[u8], mode: u32| {
            let fields = [
                1,
                mode,
                0,
                0,
                1,
                0,
                data.len() as u32,
                0,
                0,
                0,
                0,
                name.len() as u32 + 1,
                0,
            ];
            out.extend_from_slice(b"070701");
            for f in fields {
                out.extend_from_slice(format!("{f:08x}").as_bytes());
            }
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            while out.len() % 4 != 0 {
                out.push(0);
            }
            out.extend_from_slice(data);
            while out.len() % 4 != 0 {
                out.push(0);
            }
        };
        for (n, d) in members {
            push(n, d, 0o100644);
        }
        push("TRAILER!!!", b"", 0);
        out
    }

    #[test]
    fn leading_zeros_counts_runs_across_the_compare_width() {
        for len in [0, 1, ZERO_RUN - 1, ZERO_RUN, ZERO_RUN + 1, 3 * ZERO_RUN + 7] {
            let mut v = vec![0u8; len];
            assert_eq!(leading_zeros(&v), len);
            v.push(7);
            v.extend_from_slice(&[0; 10]);
            assert_eq!(leading_zeros(&v), len, "{len} zeros then a byte");
        }
        // A long zero run after a trailer, then a new archive: consumed up to the archive.
        let mut data = newc(&[("a", b"x")]);
        let archive = data.clone();
        data.extend(std::iter::repeat_n(0u8, 5 * ZERO_RUN + 4));
        let mut p = CpioParser::new();
        let n = p.feed(&data).unwrap();
        assert_eq!(n, data.len());
        data.extend_from_slice(&archive);
        let mut p = CpioParser::new();
        assert_eq!(p.feed(&data).unwrap(), archive.len() + 5 * ZERO_RUN + 4);
    }

    #[test]
    fn lists_members_in_any_chunking() {
        let a = newc(&[
            ("usr", b""),
            ("usr/lib/x.ko", b"hello"),
            ("init", b"#!/bin/sh\n"),
        ]);
        for chunk in [1, 3, 7, 110, 4096] {
            let mut p = CpioParser::new();
            for c in a.chunks(chunk) {
                assert_eq!(p.feed(c).unwrap(), c.len());
            }
            let names: Vec<_> = p.members.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names, ["usr", "usr/lib/x.ko", "init"]);
            assert_eq!(p.members[1].size, 5);
            assert_eq!(p.archives, 1);
            assert!(!p.truncated());
        }
    }

    #[test]
    fn stops_after_trailer_at_non_zero() {
        let mut a = newc(&[("a", b"1")]);
        a.extend_from_slice(&[0; 8]);
        let at = a.len();
        a.extend_from_slice(b"\x1f\x8b rest");
        let mut p = CpioParser::new();
        assert_eq!(p.feed(&a).unwrap(), at);
        assert!(p.after_trailer());
    }

    #[test]
    fn second_archive_after_restart() {
        let mut a = newc(&[("a", b"1")]);
        a.extend(newc(&[("./b", b"22")]));
        let mut p = CpioParser::new();
        let n = p.feed(&a).unwrap();
        p.restart();
        p.feed(&a[n..]).unwrap();
        assert_eq!(p.members.len(), 2);
        assert_eq!(p.members[1].name, "b");
        assert_eq!(p.archives, 2);
    }

    #[test]
    fn rejects_bad_magic_and_fields() {
        let mut p = CpioParser::new();
        assert!(matches!(
            p.feed(&[b'x'; 200]),
            Err(CpioError::BadMagic { offset: 0 })
        ));
        let mut a = newc(&[("a", b"1")]);
        a[6] = b'g';
        assert!(matches!(
            CpioParser::new().feed(&a),
            Err(CpioError::BadHeader { .. })
        ));
        // odc (070707) is not newc
        let mut a = newc(&[("a", b"1")]);
        a[5] = b'7';
        assert!(CpioParser::new().feed(&a).is_err());
    }

    #[test]
    fn rejects_huge_and_zero_names() {
        let mut a = newc(&[("a", b"1")]);
        a[94..102].copy_from_slice(b"FFFFFFFF");
        assert!(matches!(
            CpioParser::new().feed(&a),
            Err(CpioError::BadNameSize { .. })
        ));
        a[94..102].copy_from_slice(b"00000000");
        assert!(CpioParser::new().feed(&a).is_err());
    }

    #[test]
    fn huge_file_size_is_skipped_not_allocated() {
        let mut a = newc(&[("big", b"")]);
        a[54..62].copy_from_slice(b"FFFFFFFF");
        let mut p = CpioParser::new();
        assert_eq!(p.feed(&a).unwrap(), a.len());
        assert_eq!(p.members[0].size, u32::MAX);
        assert!(p.truncated());
    }

    #[test]
    fn truncated_input_is_reported() {
        let a = newc(&[("a", b"12345")]);
        for cut in [1, 50, 111, 115, a.len() - 1] {
            let mut p = CpioParser::new();
            p.feed(&a[..cut]).unwrap();
            assert!(p.truncated(), "cut {cut}");
        }
    }
}
