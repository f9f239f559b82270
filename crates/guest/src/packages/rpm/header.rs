//! The RPM header as rpm stores it in its databases (`headerExport`'s blob, big-endian):
//!
//! ```text
//! il: u32            number of index entries
//! dl: u32            bytes of the data store
//! il × { tag: u32, type: u32, offset: u32, count: u32 }
//! dl bytes of data   (strings NUL-terminated, integers big-endian)
//! ```
//!
//! The first entry is usually the immutable region (tag 63) whose data is a trailer entry;
//! tags rpm adds at install time (install time, transaction id ...) follow the region. This
//! reader takes the entries it needs wherever they are, the first of a tag winning, and checks
//! each one's offset and count against the data store.

/// Most index entries in one header (rpm's `HEADER_TAGS_MAX`).
pub const MAX_ENTRIES: u32 = 0xffff;
/// Most bytes of a header's data store (rpm's `HEADER_DATA_MAX`, 256 MiB).
pub const MAX_DATA: u32 = 0x0fff_ffff;
/// Most files listed for one package (texlive's largest packages list about 100 000).
pub const MAX_FILES: usize = 1_000_000;
/// Most bytes of file paths of one package once directory and base names are joined.
pub const MAX_PATH_BYTES: usize = 64 << 20;

/// Tags read.
pub mod tag {
    /// Package name.
    pub const NAME: u32 = 1000;
    /// Version.
    pub const VERSION: u32 = 1001;
    /// Release.
    pub const RELEASE: u32 = 1002;
    /// Epoch (absent = none).
    pub const EPOCH: u32 = 1003;
    /// Install time (seconds since the epoch), added by rpm at install.
    pub const INSTALLTIME: u32 = 1008;
    /// Architecture.
    pub const ARCH: u32 = 1022;
    /// Full file names (packages from before rpm 4's compressed file lists).
    pub const OLDFILENAMES: u32 = 1027;
    /// Index into DIRNAMES of each BASENAMES entry.
    pub const DIRINDEXES: u32 = 1116;
    /// File names without their directory.
    pub const BASENAMES: u32 = 1117;
    /// Directories, each ending in `/`.
    pub const DIRNAMES: u32 = 1118;
}

/// The tags this reader looks at.
const WANTED: [u32; 10] = [
    tag::NAME,
    tag::VERSION,
    tag::RELEASE,
    tag::EPOCH,
    tag::INSTALLTIME,
    tag::ARCH,
    tag::OLDFILENAMES,
    tag::DIRINDEXES,
    tag::BASENAMES,
    tag::DIRNAMES,
];

/// Data types of index entries.
mod kind {
    pub const INT32: u32 = 4;
    pub const STRING: u32 = 6;
    pub const STRING_ARRAY: u32 = 8;
    pub const I18NSTRING: u32 = 9;
}

/// One installed package, as read from its header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RpmPackage {
    /// `NAME`.
    pub name: String,
    /// `EPOCH`, when the package has one.
    pub epoch: Option<u32>,
    /// `VERSION`.
    pub version: String,
    /// `RELEASE`.
    pub release: String,
    /// `ARCH` (absent on gpg-pubkey pseudo-packages).
    pub arch: Option<String>,
    /// `INSTALLTIME`.
    pub install_time: Option<u32>,
    /// The files the package owns, absolute paths (directories included, as rpm lists them).
    pub files: Vec<String>,
}

/// Why a header blob was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer bytes than the counts require.
    #[error("header truncated: {need} bytes needed, {have} present")]
    Truncated {
        /// Bytes the counts call for.
        need: u64,
        /// Bytes present.
        have: usize,
    },
    /// The entry count is 0 or beyond [`MAX_ENTRIES`].
    #[error("header has {0} index entries (1..={MAX_ENTRIES} allowed)")]
    BadEntryCount(u32),
    /// The data store size is beyond [`MAX_DATA`].
    #[error("header data store of {0} bytes (at most {MAX_DATA})")]
    BadDataLength(u32),
    /// An entry's data lies outside the data store or does not fit its type.
    #[error("tag {tag}: type {kind}, offset {offset}, count {count} do not fit the {dl}-byte data store")]
    BadEntry {
        /// Tag.
        tag: u32,
        /// Data type.
        kind: u32,
        /// Offset in the data store.
        offset: u32,
        /// Element count.
        count: u32,
        /// Data store size.
        dl: u32,
    },
    /// A tag that must be present is missing (name, version, release).
    #[error("tag {0} missing")]
    Missing(u32),
    /// BASENAMES, DIRNAMES and DIRINDEXES disagree.
    #[error("file list: {0}")]
    FileList(String),
    /// More than [`MAX_FILES`] files or [`MAX_PATH_BYTES`] of paths.
    #[error("file list beyond the limits ({MAX_FILES} files, {MAX_PATH_BYTES} bytes)")]
    TooManyFiles,
}

/// One index entry, checked against the data store.
#[derive(Clone, Copy)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: u32,
    count: u32,
}

/// A parsed header: the entries and the data store they point into.
struct Header<'a> {
    entries: Vec<Entry>,
    data: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> Result<Self, HeaderError> {
        if blob.len() < 8 {
            return Err(HeaderError::Truncated {
                need: 8,
                have: blob.len(),
            });
        }
        let il = be32(blob, 0);
        let dl = be32(blob, 4);
        if il == 0 || il > MAX_ENTRIES {
            return Err(HeaderError::BadEntryCount(il));
        }
        if dl > MAX_DATA {
            return Err(HeaderError::BadDataLength(dl));
        }
        let need = 8 + u64::from(il) * 16 + u64::from(dl);
        if (blob.len() as u64) < need {
            return Err(HeaderError::Truncated {
                need,
                have: blob.len(),
            });
        }
        let data_start = 8 + il as usize * 16;
        let data = &blob[data_start..data_start + dl as usize];
        // Only the first entry of each tag read is kept: one pass, and lookups over at most
        // `WANTED.len()` entries whatever `il` is.
        let mut entries: Vec<Entry> = Vec::with_capacity(WANTED.len());
        for i in 0..il as usize {
            let at = 8 + i * 16;
            let tag = be32(blob, at);
            if WANTED.contains(&tag) && !entries.iter().any(|e| e.tag == tag) {
                entries.push(Entry {
                    tag,
                    kind: be32(blob, at + 4),
                    offset: be32(blob, at + 8),
                    count: be32(blob, at + 12),
                });
            }
        }
        Ok(Header { entries, data })
    }

    fn bad(&self, e: Entry) -> HeaderError {
        HeaderError::BadEntry {
            tag: e.tag,
            kind: e.kind,
            offset: e.offset,
            count: e.count,
            dl: self.data.len() as u32,
        }
    }

    fn find(&self, tag: u32) -> Option<Entry> {
        self.entries.iter().copied().find(|e| e.tag == tag)
    }

    /// The strings of a STRING, I18NSTRING or STRING_ARRAY entry, each checked to end inside
    /// the data store.
    fn strings(&self, tag: u32) -> Result<Option<Vec<&'a [u8]>>, HeaderError> {
        let Some(e) = self.find(tag) else {
            return Ok(None);
        };
        let count = match e.kind {
            kind::STRING => 1,
            kind::STRING_ARRAY | kind::I18NSTRING => e.count,
            _ => return Err(self.bad(e)),
        };
        let start = e.offset as usize;
        // Each string takes at least its NUL: a count beyond the remaining bytes is a lie.
        if start > self.data.len() || count as usize > self.data.len() - start {
            return Err(self.bad(e));
        }
        let mut rest = &self.data[start..];
        let mut out = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let Some(nul) = rest.iter().position(|&b| b == 0) else {
                return Err(self.bad(e));
            };
            out.push(&rest[..nul]);
            rest = &rest[nul + 1..];
        }
        Ok(Some(out))
    }

    fn string(&self, tag: u32) -> Result<Option<String>, HeaderError> {
        Ok(self
            .strings(tag)?
            .and_then(|v| v.first().map(|s| String::from_utf8_lossy(s).into_owned())))
    }

    /// The values of an INT32 entry.
    fn int32s(&self, tag: u32) -> Result<Option<Vec<u32>>, HeaderError> {
        let Some(e) = self.find(tag) else {
            return Ok(None);
        };
        if e.kind != kind::INT32 {
            return Err(self.bad(e));
        }
        let start = e.offset as usize;
        let len = e.count as u64 * 4;
        if start as u64 + len > self.data.len() as u64 {
            return Err(self.bad(e));
        }
        let bytes = &self.data[start..start + len as usize];
        Ok(Some(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }

    fn int32(&self, tag: u32) -> Result<Option<u32>, HeaderError> {
        Ok(self.int32s(tag)?.and_then(|v| v.first().copied()))
    }

    fn files(&self) -> Result<Vec<String>, HeaderError> {
        let mut files = Vec::new();
        let mut bytes = 0usize;
        let mut push = |path: Vec<u8>| -> Result<(), HeaderError> {
            bytes += path.len();
            if files.len() >= MAX_FILES || bytes > MAX_PATH_BYTES {
                return Err(HeaderError::TooManyFiles);
            }
            files.push(String::from_utf8_lossy(&path).into_owned());
            Ok(())
        };
        if let Some(base) = self.strings(tag::BASENAMES)? {
            let dirs = self
                .strings(tag::DIRNAMES)?
                .ok_or_else(|| HeaderError::FileList("BASENAMES without DIRNAMES".into()))?;
            let index = self
                .int32s(tag::DIRINDEXES)?
                .ok_or_else(|| HeaderError::FileList("BASENAMES without DIRINDEXES".into()))?;
            if index.len() != base.len() {
                return Err(HeaderError::FileList(format!(
                    "{} base names but {} directory indexes",
                    base.len(),
                    index.len()
                )));
            }
            for (b, &i) in base.iter().zip(&index) {
                let d = dirs.get(i as usize).ok_or_else(|| {
                    HeaderError::FileList(format!(
                        "directory index {i} beyond the {} directories",
                        dirs.len()
                    ))
                })?;
                let mut path = Vec::with_capacity(d.len() + b.len());
                path.extend_from_slice(d);
                path.extend_from_slice(b);
                push(path)?;
            }
        } else if let Some(old) = self.strings(tag::OLDFILENAMES)? {
            for p in old {
                push(p.to_vec())?;
            }
        }
        Ok(files)
    }
}

/// Parses one header blob into the package it describes.
pub fn parse(blob: &[u8]) -> Result<RpmPackage, HeaderError> {
    let h = Header::parse(blob)?;
    Ok(RpmPackage {
        name: h
            .string(tag::NAME)?
            .ok_or(HeaderError::Missing(tag::NAME))?,
        epoch: h.int32(tag::EPOCH)?,
        version: h
            .string(tag::VERSION)?
            .ok_or(HeaderError::Missing(tag::VERSION))?,
        release: h
            .string(tag::RELEASE)?
            .ok_or(HeaderError::Missing(tag::RELEASE))?,
        arch: h.string(tag::ARCH)?,
        install_time: h.int32(tag::INSTALLTIME)?,
        files: h.files()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a blob from (tag, type, count, data) entries, data laid out in order.
    pub(crate) fn blob(entries: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, count, d) in entries {
            if *kind == kind::INT32 {
                while data.len() % 4 != 0 {
                    data.push(0);
                }
            }
            for v in [*tag, *kind, data.len() as u32, *count] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(d);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    fn s(v: &str) -> Vec<u8> {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        b
    }

    fn minimal() -> Vec<(u32, u32, u32, Vec<u8>)> {
        vec![
            (tag::NAME, kind::STRING, 1, s("bash")),
            (tag::VERSION, kind::STRING, 1, s("5.1.8")),
            (tag::RELEASE, kind::STRING, 1, s("9.el9")),
        ]
    }

    #[test]
    fn minimal_header_without_files() {
        let p = parse(&blob(&minimal())).unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str(), p.release.as_str()),
            ("bash", "5.1.8", "9.el9")
        );
        assert_eq!((p.epoch, p.arch, p.files.len()), (None, None, 0));
    }

    #[test]
    fn old_file_names() {
        let mut e = minimal();
        let mut d = s("/bin/a");
        d.extend(s("/etc/b"));
        e.push((tag::OLDFILENAMES, kind::STRING_ARRAY, 2, d));
        assert_eq!(parse(&blob(&e)).unwrap().files, ["/bin/a", "/etc/b"]);
    }

    #[test]
    fn bad_counts_and_offsets_are_errors() {
        // il beyond the limit, dl beyond the limit, counts larger than the blob.
        let mut b = blob(&minimal());
        b[0..4].copy_from_slice(&0x1_0000u32.to_be_bytes());
        assert_eq!(parse(&b), Err(HeaderError::BadEntryCount(0x1_0000)));
        let mut b = blob(&minimal());
        b[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse(&b), Err(HeaderError::BadDataLength(u32::MAX)));
        let b = blob(&minimal());
        assert!(matches!(
            parse(&b[..b.len() - 1]),
            Err(HeaderError::Truncated { .. })
        ));
        // A string array claiming 2^32-1 strings; an INT32 array running off the end; an
        // offset beyond the store; a string without its NUL.
        let mut e = minimal();
        e.push((tag::OLDFILENAMES, kind::STRING_ARRAY, u32::MAX, s("/x")));
        assert!(matches!(
            parse(&blob(&e)),
            Err(HeaderError::BadEntry { tag: 1027, .. })
        ));
        let mut e = minimal();
        e.push((tag::EPOCH, kind::INT32, 0x4000_0001, vec![0, 0, 0, 1]));
        assert!(matches!(
            parse(&blob(&e)),
            Err(HeaderError::BadEntry { tag: 1003, .. })
        ));
        let mut b = blob(&minimal());
        b[8 + 8..8 + 12].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert!(matches!(
            parse(&b),
            Err(HeaderError::BadEntry { tag: 1000, .. })
        ));
        let mut e = minimal();
        e.push((tag::ARCH, kind::STRING, 1, b"x86_64".to_vec()));
        assert!(matches!(
            parse(&blob(&e)),
            Err(HeaderError::BadEntry { tag: 1022, .. })
        ));
    }

    #[test]
    fn file_list_mismatches_are_errors() {
        let mut e = minimal();
        e.push((tag::BASENAMES, kind::STRING_ARRAY, 1, s("a")));
        e.push((tag::DIRNAMES, kind::STRING_ARRAY, 1, s("/bin/")));
        e.push((tag::DIRINDEXES, kind::INT32, 1, 7u32.to_be_bytes().to_vec()));
        assert!(matches!(parse(&blob(&e)), Err(HeaderError::FileList(_))));
        let mut e = minimal();
        e.push((tag::BASENAMES, kind::STRING_ARRAY, 1, s("a")));
        assert!(matches!(parse(&blob(&e)), Err(HeaderError::FileList(_))));
        let mut e = minimal();
        e.push((tag::NAME, kind::INT32, 1, vec![0; 4]));
        e.remove(0);
        assert!(matches!(
            parse(&blob(&e)),
            Err(HeaderError::BadEntry { .. })
        ));
    }

    #[test]
    fn path_bytes_are_capped() {
        // One 1 MiB directory named by 100 base names: 100 MiB of paths from a 1 MiB blob.
        let mut e = minimal();
        let dir = format!("/{}/", "d".repeat(1 << 20));
        let mut bases = Vec::new();
        for i in 0..100 {
            bases.extend(s(&i.to_string()));
        }
        e.push((tag::BASENAMES, kind::STRING_ARRAY, 100, bases));
        e.push((tag::DIRNAMES, kind::STRING_ARRAY, 1, s(&dir)));
        e.push((tag::DIRINDEXES, kind::INT32, 100, vec![0; 400]));
        assert_eq!(parse(&blob(&e)), Err(HeaderError::TooManyFiles));
    }
}
