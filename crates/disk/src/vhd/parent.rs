//! Finding the parent of a differencing VHD: its parent locators, the candidate paths they
//! give, the check of a candidate against the child's header, and the walk up a chain.
//!
//! A differencing disk records its parent three ways (VHD specification, "Hard Disk Footer
//! and Dynamic Disk Header"): the parent's unique id and modification time, its file name
//! (UTF-16 big-endian in the header), and up to eight *parent locators*, each a platform code
//! and a path stored elsewhere in the file:
//!
//! | code | text |
//! |------|------|
//! | `W2ru` | a Windows path relative to the child, UTF-16LE (`.\base.vhd`) |
//! | `W2ku` | an absolute Windows path, UTF-16LE (`C:\vms\base.vhd`) |
//! | `Wi2r`, `Wi2k` | the same in the local code page (deprecated, Virtual PC 2004) |
//! | `MacX` | a file URL, UTF-8 (`file://localhost/Users/x/base.vhd`) |
//! | `Mac ` | a Mac OS alias record (binary; not usable here) |
//!
//! Nothing here opens a file: [`parent_candidates`] only computes paths from what the child
//! says, and the caller opens them (through the closure given to [`resolve_parent`] and
//! [`walk_chain`]).

use super::dynamic_header::{DynamicHeader, ParentLocator};
use super::footer::{Footer, VHD_EPOCH_UNIX_SECONDS};
use crate::read_at::ReadAt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Most locator bytes read: a Windows path is at most 32767 UTF-16 units (`\\?\` paths),
/// 65534 bytes.
pub const MAX_LOCATOR_BYTES: u32 = 64 << 10;

/// Most disks in a chain, the child included. Hyper-V allows 50 checkpoints per virtual
/// machine, each adding one differencing disk over the base; 64 leaves room above that.
/// Each level keeps a file and its block table open and a read of a sector no level holds
/// visits every level, so a longer (or looping) chain is refused rather than followed.
pub const MAX_CHAIN_LENGTH: usize = 64;

/// The text of one parent locator, decoded (or why it could not be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedLocator {
    /// Platform code as stored (`W2ru`, `W2ku`, `MacX` ...).
    pub platform_code: String,
    /// The path text, or why it is unusable.
    pub text: Result<String, String>,
}

/// Reads and decodes the text of `locator` from the child `file`: UTF-16LE for the `W2..`
/// codes, UTF-8 for `MacX` (the URL is kept as stored), the local code page taken as UTF-8
/// for `Wi2.`. Bounded by [`MAX_LOCATOR_BYTES`]; data outside the file is an error.
pub fn read_locator(file: &dyn ReadAt, locator: &ParentLocator) -> DecodedLocator {
    let text = (|| {
        let code = locator.platform_code.as_str();
        if code == "Mac " {
            return Err("a Mac OS alias record, which only Mac OS can resolve".to_string());
        }
        if !matches!(code, "W2ru" | "W2ku" | "Wi2r" | "Wi2k" | "MacX") {
            return Err(format!("unknown platform code '{code}'"));
        }
        let len = locator.data_length;
        if len == 0 || len > MAX_LOCATOR_BYTES {
            return Err(format!(
                "{len}-byte path (0 or more than {MAX_LOCATOR_BYTES})"
            ));
        }
        let end = locator.data_offset.checked_add(u64::from(len));
        if end.is_none_or(|e| e > file.len()) {
            return Err(format!(
                "its {len} bytes at offset {} lie outside the {}-byte file",
                locator.data_offset,
                file.len()
            ));
        }
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, locator.data_offset)
            .map_err(|e| format!("cannot read it at offset {}: {e}", locator.data_offset))?;
        let text = if code.starts_with("W2") {
            let units: Vec<u16> = buf
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            String::from_utf16(&units).map_err(|_| "not valid UTF-16".to_string())?
        } else {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).into_owned()
        };
        if text.is_empty() {
            return Err("an empty path".to_string());
        }
        Ok(text)
    })();
    DecodedLocator {
        platform_code: locator.platform_code.clone(),
        text,
    }
}

/// Where a candidate parent path came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidateSource {
    /// A locator with this platform code.
    Locator(String),
    /// The parent's file name from the header, in the child's folder.
    NameNextToChild,
    /// The path the user gave (`--parent PATH`).
    UserGiven,
}

impl std::fmt::Display for CandidateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CandidateSource::Locator(code) => write!(f, "{code} locator"),
            CandidateSource::NameNextToChild => f.write_str("name next to the child"),
            CandidateSource::UserGiven => f.write_str("--parent"),
        }
    }
}

/// A path where the parent may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The path.
    pub path: PathBuf,
    /// Which record gave it.
    pub source: CandidateSource,
}

/// Splits a Windows path into its components (either slash).
fn windows_components(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\\', '/'])
        .filter(|c| !c.is_empty() && *c != ".")
}

/// The local path of a relative Windows locator, against the child's folder.
fn relative_path(child_dir: &Path, text: &str) -> Option<PathBuf> {
    if text.starts_with(['\\', '/']) || text.get(1..2) == Some(":") {
        return None;
    }
    let mut path = child_dir.to_path_buf();
    let mut any = false;
    for c in windows_components(text) {
        path.push(c);
        any = true;
    }
    any.then_some(path)
}

/// The local path of an absolute locator: Unix paths (some Linux tools store them in `W2ku`)
/// and `file://` URLs; Windows drive and UNC paths do not exist here (`None`).
fn absolute_path(code: &str, text: &str) -> Option<PathBuf> {
    let text = if code == "MacX" {
        let rest = text.strip_prefix("file://")?;
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        percent_decode(rest)?
    } else {
        text.to_string()
    };
    text.starts_with('/').then(|| PathBuf::from(text))
}

/// Decodes `%xx` escapes of a file URL (RFC 2396); `None` when malformed.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The paths where the parent of the child at `child_path` may be, in the order they are
/// tried: relative locators resolved against the child's folder, then absolute ones, then
/// the parent's file name next to the child. Duplicates are dropped; locators that give no
/// usable path (Windows drive paths, Mac aliases, unreadable text) give no candidate.
pub fn parent_candidates(
    child_path: &Path,
    header: &DynamicHeader,
    locators: &[DecodedLocator],
) -> Vec<Candidate> {
    let dir = child_path.parent().unwrap_or(Path::new("."));
    let mut out: Vec<Candidate> = Vec::new();
    let mut push = |path: PathBuf, source: CandidateSource| {
        if !out.iter().any(|c| c.path == path) {
            out.push(Candidate { path, source });
        }
    };
    for l in locators {
        if let (Ok(text), "W2ru" | "Wi2r") = (&l.text, l.platform_code.as_str()) {
            if let Some(p) = relative_path(dir, text) {
                push(p, CandidateSource::Locator(l.platform_code.clone()));
            }
        }
    }
    for l in locators {
        if let (Ok(text), "W2ku" | "Wi2k" | "MacX") = (&l.text, l.platform_code.as_str()) {
            if let Some(p) = absolute_path(&l.platform_code, text) {
                push(p, CandidateSource::Locator(l.platform_code.clone()));
            }
        }
    }
    if let Some(name) = windows_components(&header.parent_name).last() {
        if name != ".." {
            push(dir.join(name), CandidateSource::NameNextToChild);
        }
    }
    out
}

/// How the parent's time stamp compares with what the child recorded.
///
/// The specification says the child's header holds "the modification time stamp of the
/// parent"; writers differ in what they store (Xen's blktap `libvhd` stores the parent file's
/// mtime, not its footer time stamp), and a copy or move of the parent changes its mtime.
/// Virtual Server and Virtual PC refused a mismatch (Virtual Server's API has a
/// `vmStartupOption_FixParentTimestampMismatch` to accept one); qemu does not read parents of
/// VHDs at all (its vpc driver reads a differencing disk's own blocks only). How strictly
/// Hyper-V checks the time stamp is not documented. So a mismatch is reported, not fatal;
/// the unique id is what identifies the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampCheck {
    /// Equal to the time stamp in the parent's footer.
    MatchesFooter,
    /// Equal to the parent file's modification time.
    MatchesFileTime,
    /// Equal to neither.
    Differs {
        /// What the child recorded (seconds since 2000-01-01 UTC).
        recorded: u32,
        /// The parent footer's time stamp.
        footer: u32,
    },
}

/// Seconds since 2000-01-01 UTC of `t`, as VHD time stamps count (`None` outside u32).
pub fn vhd_time(t: SystemTime) -> Option<u32> {
    let unix = t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    u32::try_from(unix.checked_sub(VHD_EPOCH_UNIX_SECONDS)?).ok()
}

/// Why a candidate is not the parent, or why no parent was found.
#[derive(Debug, thiserror::Error)]
pub enum ParentError {
    /// The candidate's unique id is not the one the child recorded.
    #[error("{} is not the parent: its unique id is {found}, the child expects parent '{name}' with unique id {expected}", path.display())]
    Mismatch {
        /// The candidate.
        path: PathBuf,
        /// The parent name the child records.
        name: String,
        /// The unique id the child records.
        expected: uuid::Uuid,
        /// The candidate's unique id.
        found: uuid::Uuid,
    },
    /// No candidate exists, or none has the right unique id.
    #[error("parent '{name}' (unique id {expected}) not found: looked at {}; give its path with --parent PATH", looked_at(looked))]
    NotFound {
        /// The parent name the child records.
        name: String,
        /// The unique id the child records.
        expected: uuid::Uuid,
        /// What was tried, and what was wrong with each.
        looked: Vec<(Candidate, String)>,
    },
}

fn looked_at(looked: &[(Candidate, String)]) -> String {
    if looked.is_empty() {
        return "nowhere (no usable locator or name)".into();
    }
    looked
        .iter()
        .map(|(c, why)| format!("{} ({}: {why})", c.path.display(), c.source))
        .collect::<Vec<_>>()
        .join(", ")
}

/// VHD unique ids are GUIDs stored as 16 big-endian bytes (how Hyper-V's `Get-VHD` and
/// libvhdi print them).
pub fn vhd_uuid(bytes: [u8; 16]) -> uuid::Uuid {
    uuid::Uuid::from_bytes(bytes)
}

/// Checks a candidate parent at `path`, with footer `parent` and file modification time
/// `mtime`, against the child's header: the unique id must match; the time stamp is
/// compared and reported.
pub fn check_parent(
    child: &DynamicHeader,
    path: &Path,
    parent: &Footer,
    mtime: Option<SystemTime>,
) -> Result<TimestampCheck, ParentError> {
    if parent.unique_id != child.parent_unique_id {
        return Err(ParentError::Mismatch {
            path: path.to_path_buf(),
            name: child.parent_name.clone(),
            expected: vhd_uuid(child.parent_unique_id),
            found: vhd_uuid(parent.unique_id),
        });
    }
    let recorded = child.parent_timestamp;
    Ok(if recorded == parent.timestamp {
        TimestampCheck::MatchesFooter
    } else if mtime.and_then(vhd_time) == Some(recorded) {
        TimestampCheck::MatchesFileTime
    } else {
        TimestampCheck::Differs {
            recorded,
            footer: parent.timestamp,
        }
    })
}

/// Finds the parent: `user_given` alone when set, else each of [`parent_candidates`] in
/// order. `probe(path)` reads a candidate's footer and modification time, or says why it
/// cannot (no file there, no VHD footer). The first candidate whose unique id matches wins;
/// otherwise the error names the parent expected and every place looked at, with what was
/// found there.
///
/// The locators are host paths chosen by whoever made the image: `probe` must open them the
/// way [`crate::open_file`] does (read-only, non-blocking, regular files and block devices
/// only), so that a locator naming a FIFO or a terminal cannot hang the run, and it reads
/// only the last 512 bytes; nothing else of a candidate is read unless its unique id matches.
pub fn resolve_parent<P>(
    child_path: &Path,
    header: &DynamicHeader,
    locators: &[DecodedLocator],
    user_given: Option<&Path>,
    mut probe: P,
) -> Result<(PathBuf, TimestampCheck), ParentError>
where
    P: FnMut(&Path) -> Result<(Footer, Option<SystemTime>), String>,
{
    let candidates = match user_given {
        Some(p) => vec![Candidate {
            path: p.to_path_buf(),
            source: CandidateSource::UserGiven,
        }],
        None => parent_candidates(child_path, header, locators),
    };
    let mut looked = Vec::new();
    for c in candidates {
        match probe(&c.path) {
            Ok((footer, mtime)) => match check_parent(header, &c.path, &footer, mtime) {
                Ok(ts) => return Ok((c.path, ts)),
                Err(ParentError::Mismatch { found, .. }) => {
                    looked.push((c, format!("unique id {found}")))
                }
                Err(e) => return Err(e),
            },
            Err(why) => looked.push((c, why)),
        }
    }
    Err(ParentError::NotFound {
        name: header.parent_name.clone(),
        expected: vhd_uuid(header.parent_unique_id),
        looked,
    })
}

/// Why a chain could not be walked.
#[derive(Debug, thiserror::Error)]
pub enum ChainError<E: std::fmt::Display> {
    /// A disk names a disk already in the chain as its parent.
    #[error("the parent chain loops: {} is its own ancestor", path.display())]
    Loop {
        /// The disk met twice.
        path: PathBuf,
    },
    /// More than [`MAX_CHAIN_LENGTH`] disks.
    #[error("the parent chain is longer than {MAX_CHAIN_LENGTH} disks (Hyper-V allows 50 checkpoints); a loop?")]
    TooLong,
    /// Opening a disk failed.
    #[error("{0}")]
    Open(E),
}

/// Walks a chain from the child at `first` up to its base. `open(path)` opens one disk and
/// returns it with the path of its parent (`None` for a disk without one); the disks come
/// back child first. A disk met twice (same path after `canonicalize`, when that works) or a
/// chain longer than [`MAX_CHAIN_LENGTH`] ends the walk with an error.
pub fn walk_chain<L, E, F>(first: &Path, mut open: F) -> Result<Vec<L>, ChainError<E>>
where
    E: std::fmt::Display,
    F: FnMut(&Path) -> Result<(L, Option<PathBuf>), E>,
{
    let key = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut out = Vec::new();
    let mut next = Some(first.to_path_buf());
    while let Some(path) = next {
        let k = key(&path);
        if seen.contains(&k) {
            return Err(ChainError::Loop { path });
        }
        if out.len() == MAX_CHAIN_LENGTH {
            return Err(ChainError::TooLong);
        }
        seen.push(k);
        let (link, parent) = open(&path).map_err(ChainError::Open)?;
        out.push(link);
        next = parent;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vhd::dynamic_header::DYNAMIC_HEADER_SIZE;

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn header(name: &str) -> DynamicHeader {
        let mut b = [0u8; DYNAMIC_HEADER_SIZE];
        b[0..8].copy_from_slice(b"cxsparse");
        b[40..56].copy_from_slice(&[7u8; 16]);
        b[56..60].copy_from_slice(&1000u32.to_be_bytes());
        for (i, u) in name.encode_utf16().enumerate() {
            b[64 + 2 * i..66 + 2 * i].copy_from_slice(&u.to_be_bytes());
        }
        DynamicHeader::parse(&b)
    }

    fn loc(code: &str, text: Result<&str, &str>) -> DecodedLocator {
        DecodedLocator {
            platform_code: code.into(),
            text: text.map(str::to_string).map_err(str::to_string),
        }
    }

    #[test]
    fn decodes_locators_and_bounds_them() {
        let mut file = vec![0u8; 1024];
        let w = utf16le(".\\base.vhd");
        file[512..512 + w.len()].copy_from_slice(&w);
        file[800..831].copy_from_slice(b"file://localhost/srv/a%20b.vhd\0");
        let l = |code: &str, len: u32, off: u64| ParentLocator {
            platform_code: code.into(),
            data_space: 512,
            data_length: len,
            data_offset: off,
        };
        assert_eq!(
            read_locator(&file, &l("W2ru", w.len() as u32, 512)).text,
            Ok(".\\base.vhd".into())
        );
        assert_eq!(
            read_locator(&file, &l("MacX", 31, 800)).text,
            Ok("file://localhost/srv/a%20b.vhd".into())
        );
        assert!(read_locator(&file, &l("W2ku", 20, 1020))
            .text
            .unwrap_err()
            .contains("outside the 1024-byte file"));
        assert!(read_locator(&file, &l("W2ku", 20, u64::MAX - 4))
            .text
            .is_err());
        assert!(read_locator(&file, &l("W2ku", u32::MAX, 0))
            .text
            .unwrap_err()
            .contains("more than 65536"));
        assert!(read_locator(&file, &l("Mac ", 20, 0))
            .text
            .unwrap_err()
            .contains("alias"));
        assert!(read_locator(&file, &l("W2ku", 20, 0))
            .text
            .unwrap_err()
            .contains("empty"));
    }

    #[test]
    fn candidates_in_order_relative_absolute_name() {
        let h = header("C:\\vms\\base.vhd");
        let locs = [
            loc("W2ku", Ok("C:\\vms\\base.vhd")),
            loc("MacX", Ok("file://localhost/srv/a%20b.vhd")),
            loc("W2ru", Ok(".\\..\\parents\\base.vhd")),
            loc("W2ku", Ok("/abs/base.vhd")),
            loc("Mac ", Err("alias")),
        ];
        let c = parent_candidates(Path::new("/img/child.vhd"), &h, &locs);
        let got: Vec<(String, String)> = c
            .iter()
            .map(|c| (c.path.display().to_string(), c.source.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/img/../parents/base.vhd".to_string(),
                    "W2ru locator".to_string()
                ),
                ("/srv/a b.vhd".into(), "MacX locator".into()),
                ("/abs/base.vhd".into(), "W2ku locator".into()),
                ("/img/base.vhd".into(), "name next to the child".into()),
            ]
        );
        // A relative locator that is really absolute gives nothing; so does a name of "..".
        let c = parent_candidates(
            Path::new("c.vhd"),
            &header(".."),
            &[loc("W2ru", Ok("C:\\x.vhd"))],
        );
        assert!(c.is_empty(), "{c:?}");
    }

    fn footer(id: u8, ts: u32) -> Footer {
        let mut f = Footer::new_fixed(1 << 20);
        f.unique_id = [id; 16];
        f.timestamp = ts;
        f
    }

    #[test]
    fn check_and_resolve_name_what_was_expected_and_where() {
        let h = header("base.vhd");
        assert_eq!(
            check_parent(&h, Path::new("p"), &footer(7, 1000), None).unwrap(),
            TimestampCheck::MatchesFooter
        );
        let mtime =
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(VHD_EPOCH_UNIX_SECONDS + 1000);
        assert_eq!(
            check_parent(&h, Path::new("p"), &footer(7, 5), Some(mtime)).unwrap(),
            TimestampCheck::MatchesFileTime
        );
        assert_eq!(
            check_parent(&h, Path::new("p"), &footer(7, 5), None).unwrap(),
            TimestampCheck::Differs {
                recorded: 1000,
                footer: 5
            }
        );
        let e = check_parent(&h, Path::new("/x/p.vhd"), &footer(8, 1000), None).unwrap_err();
        assert_eq!(e.to_string(), "/x/p.vhd is not the parent: its unique id is 08080808-0808-0808-0808-080808080808, the child expects parent 'base.vhd' with unique id 07070707-0707-0707-0707-070707070707");

        let locs = [
            loc("W2ru", Ok(".\\base.vhd")),
            loc("W2ku", Ok("/old/base.vhd")),
        ];
        let e = resolve_parent(Path::new("/img/c.vhd"), &h, &locs, None, |p| {
            if p == Path::new("/img/base.vhd") {
                Ok((footer(9, 1000), None))
            } else {
                Err("no such file".into())
            }
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "parent 'base.vhd' (unique id 07070707-0707-0707-0707-070707070707) not found: looked at /img/base.vhd (W2ru locator: unique id 09090909-0909-0909-0909-090909090909), /old/base.vhd (W2ku locator: no such file); give its path with --parent PATH");
        let (p, _) = resolve_parent(Path::new("/img/c.vhd"), &h, &locs, None, |p| {
            if p == Path::new("/old/base.vhd") {
                Ok((footer(7, 1000), None))
            } else {
                Err("no such file".into())
            }
        })
        .unwrap();
        assert_eq!(p, Path::new("/old/base.vhd"));
        // --parent replaces the search: nothing else is probed.
        let mut probed = Vec::new();
        let r = resolve_parent(
            Path::new("/img/c.vhd"),
            &h,
            &locs,
            Some(Path::new("/moved/b.vhd")),
            |p| {
                probed.push(p.to_path_buf());
                Ok((footer(7, 1000), None))
            },
        );
        assert_eq!(r.unwrap().0, Path::new("/moved/b.vhd"));
        assert_eq!(probed, [PathBuf::from("/moved/b.vhd")]);
    }

    #[test]
    fn chain_walk_stops_at_loops_and_the_cap() {
        // a -> b -> c (base)
        let chain = walk_chain(Path::new("/n/a"), |p| {
            let next = match p.to_str().unwrap() {
                "/n/a" => Some("/n/b"),
                "/n/b" => Some("/n/c"),
                _ => None,
            };
            Ok::<_, String>((p.to_path_buf(), next.map(PathBuf::from)))
        })
        .unwrap();
        assert_eq!(chain.len(), 3);
        // a -> b -> a
        let e = walk_chain(Path::new("/n/a"), |p| {
            let next = if p == Path::new("/n/a") {
                "/n/b"
            } else {
                "/n/a"
            };
            Ok::<_, String>(((), Some(PathBuf::from(next))))
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the parent chain loops: /n/a is its own ancestor"
        );
        // A disk that names itself.
        let e = walk_chain(Path::new("/n/a"), |p| {
            Ok::<_, String>(((), Some(p.to_path_buf())))
        })
        .unwrap_err();
        assert!(matches!(e, ChainError::Loop { .. }));
        // Endless distinct parents: the cap.
        let mut opened = 0;
        let e = walk_chain(Path::new("/n/0"), |p| {
            opened += 1;
            let n: u32 = p.file_name().unwrap().to_str().unwrap().parse().unwrap();
            Ok::<_, String>(((), Some(PathBuf::from(format!("/n/{}", n + 1)))))
        })
        .unwrap_err();
        assert!(matches!(e, ChainError::TooLong));
        assert_eq!(opened, MAX_CHAIN_LENGTH);
        // An open error passes through as is.
        let e = walk_chain(Path::new("/n/a"), |_| {
            Err::<((), Option<PathBuf>), _>("boom".to_string())
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "boom");
    }
}
