//! dpkg's database: the status file (`/var/lib/dpkg/status`, RFC 822-like stanzas, one per
//! package) and the file lists (`/var/lib/dpkg/info/<package>[:<arch>].list`, one path a
//! line).
//!
//! Only packages whose `Status:` ends in ` installed` count (not `config-files`,
//! `half-installed`, `unpacked` ...). Reads are bounded: the status file to
//! [`STATUS_LIMIT`] bytes and [`MAX_PACKAGES`] stanzas, the file lists to [`LIST_LIMIT`]
//! bytes each and [`LISTS_TOTAL_LIMIT`] bytes and [`MAX_OWNED_PATHS`] paths in all.

use crate::tree::{GuestPathError, GuestTree};
use vhdprep_fs::FileKind;

/// The status file.
pub const STATUS: &str = "/var/lib/dpkg/status";
/// Where the file lists are.
pub const INFO_DIR: &str = "/var/lib/dpkg/info";
/// Largest status file read (Ubuntu desktops: ~4 MiB).
pub const STATUS_LIMIT: u64 = 64 << 20;
/// Most installed packages kept.
pub const MAX_PACKAGES: usize = 200_000;
/// Largest single `.list` file read.
pub const LIST_LIMIT: u64 = 16 << 20;
/// Most bytes of `.list` files read for one guest.
pub const LISTS_TOTAL_LIMIT: u64 = 256 << 20;
/// Most owned paths kept for one guest.
pub const MAX_OWNED_PATHS: usize = 4_000_000;

/// Why the status file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DpkgError {
    /// It is not a regular file.
    #[error("{STATUS} is not a regular file")]
    NotAFile,
    /// It is larger than [`STATUS_LIMIT`].
    #[error("{STATUS} holds {size} bytes, more than the {STATUS_LIMIT} read")]
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// The guest tree failed.
    #[error(transparent)]
    Read(#[from] GuestPathError),
}

/// One installed package of the status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgPackage {
    /// `Package:`.
    pub name: String,
    /// `Version:` as written (`1:9.2p1-2+deb12u7`).
    pub version: String,
    /// `Architecture:` (`amd64`, `all`), when given.
    pub arch: Option<String>,
    /// 1-based line of the `Package:` field.
    pub line: usize,
}

/// The installed packages of a status file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DpkgStatus {
    /// The packages.
    pub packages: Vec<DpkgPackage>,
    /// Installed stanzas not kept (beyond [`MAX_PACKAGES`], or without a name or version).
    pub skipped: usize,
}

/// Parses status-file text.
pub fn parse_status(text: &str) -> DpkgStatus {
    let mut out = DpkgStatus::default();
    let (mut name, mut version, mut arch, mut installed, mut start) =
        (None::<&str>, None::<&str>, None::<&str>, false, 0usize);
    let mut flush = |name: &mut Option<&str>,
                     version: &mut Option<&str>,
                     arch: &mut Option<&str>,
                     installed: &mut bool,
                     start: usize| {
        if *installed {
            match (name.take(), version.take()) {
                (Some(n), Some(v)) if !n.is_empty() && out.packages.len() < MAX_PACKAGES => {
                    out.packages.push(DpkgPackage {
                        name: n.to_string(),
                        version: v.to_string(),
                        arch: arch.filter(|a| !a.is_empty()).map(str::to_string),
                        line: start,
                    })
                }
                _ => out.skipped += 1,
            }
        }
        (*name, *version, *arch, *installed) = (None, None, None, false);
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            flush(&mut name, &mut version, &mut arch, &mut installed, start);
        } else if let Some(v) = line.strip_prefix("Package:") {
            name = Some(v.trim());
            start = i + 1;
        } else if let Some(v) = line.strip_prefix("Status:") {
            installed = v.trim().ends_with(" installed");
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = Some(v.trim());
        } else if let Some(v) = line.strip_prefix("Architecture:") {
            arch = Some(v.trim());
        }
    }
    flush(&mut name, &mut version, &mut arch, &mut installed, start);
    out
}

/// Reads and parses the guest's status file; `Ok(None)` when there is none.
pub fn read_status(tree: &GuestTree) -> Result<Option<DpkgStatus>, DpkgError> {
    let m = match tree.metadata(STATUS.as_bytes()) {
        Ok(m) => m,
        Err(GuestPathError::NotFound { .. } | GuestPathError::NotADirectory { .. }) => {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    if m.kind != FileKind::File {
        return Err(DpkgError::NotAFile);
    }
    if m.size > STATUS_LIMIT {
        return Err(DpkgError::TooLarge { size: m.size });
    }
    let bytes = tree.read_file(STATUS.as_bytes(), STATUS_LIMIT)?;
    Ok(Some(parse_status(&String::from_utf8_lossy(&bytes))))
}

/// The file list of `package`: `<name>:<arch>.list` (multi-arch "same" packages), else
/// `<name>.list`. Paths as listed (`/usr/bin/ssh`), without `/.`; empty when absent.
/// `budget` is the bytes still allowed; it is reduced by what is read.
pub fn file_list(tree: &GuestTree, package: &DpkgPackage, budget: &mut u64) -> Vec<String> {
    let names = package
        .arch
        .iter()
        .map(|a| format!("{INFO_DIR}/{}:{a}.list", package.name))
        .chain(std::iter::once(format!("{INFO_DIR}/{}.list", package.name)));
    for path in names {
        if package.name.contains('/') {
            return Vec::new();
        }
        let Ok(m) = tree.metadata(path.as_bytes()) else {
            continue;
        };
        let limit = LIST_LIMIT.min(*budget);
        if m.kind != FileKind::File || m.size > limit {
            return Vec::new();
        }
        let Ok(bytes) = tree.read_file(path.as_bytes(), limit) else {
            return Vec::new();
        };
        *budget -= bytes.len() as u64;
        return String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| l.starts_with('/') && *l != "/.")
            .map(str::to_string)
            .collect();
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::memfs::MemFs;
    use std::sync::Arc;

    #[test]
    fn installed_stanzas_with_lines_and_arch() {
        let text = "Package: a\nStatus: install ok installed\nDepends: x (>= 1)\n Architecture: fake\nVersion: 1.2-3\nArchitecture: amd64\n\n\
                    Package: b\nStatus: deinstall ok config-files\nVersion: 9\n\n\n\
                    Package: c\nStatus: hold ok installed\nVersion: 2:3.4\n\n\
                    Package: d\nStatus: install ok installed\n\n\
                    Package: c\nStatus: install ok installed\nArchitecture: i386\nVersion: 2:3.4";
        let s = parse_status(text);
        let got: Vec<(&str, &str, Option<&str>, usize)> = s
            .packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.arch.as_deref(),
                    p.line,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", "1.2-3", Some("amd64"), 1),
                ("c", "2:3.4", None, 13),
                ("c", "2:3.4", Some("i386"), 20),
            ]
        );
        assert_eq!(s.skipped, 1, "d has no version");
        assert!(parse_status("Package:\n\u{0}\nVersion").packages.is_empty());
        assert_eq!(parse_status(""), DpkgStatus::default());
    }

    #[test]
    fn status_file_and_lists_from_a_tree() {
        let fs = MemFs::default()
            .dir("/")
            .dir("/var")
            .dir("/var/lib")
            .dir("/var/lib/dpkg")
            .dir("/var/lib/dpkg/info")
            .file(
                STATUS,
                "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n\
                 Package: ssh\nStatus: install ok installed\nVersion: 1:9.2p1-2\n",
            )
            .file(
                "/var/lib/dpkg/info/libc6:amd64.list",
                "/.\n/lib\n/lib/x86_64-linux-gnu/libc.so.6\n",
            )
            .file("/var/lib/dpkg/info/ssh.list", "/.\n/usr/bin/ssh\nrelative\n");
        let tree = GuestTree::new(Arc::new(fs), "mem");
        let s = read_status(&tree).unwrap().unwrap();
        let mut budget = 1 << 20;
        assert_eq!(
            file_list(&tree, &s.packages[0], &mut budget),
            vec!["/lib", "/lib/x86_64-linux-gnu/libc.so.6"]
        );
        assert_eq!(
            file_list(&tree, &s.packages[1], &mut budget),
            vec!["/usr/bin/ssh"]
        );
        assert_eq!(budget, (1 << 20) - 40 - 25);
        let mut none = 10;
        assert!(
            file_list(&tree, &s.packages[0], &mut none).is_empty(),
            "over budget"
        );
        let empty = GuestTree::new(Arc::new(MemFs::default().dir("/")), "mem");
        assert!(read_status(&empty).unwrap().is_none());
    }

    #[test]
    fn a_status_that_is_not_a_file_is_an_error() {
        let fs = MemFs::default()
            .dir("/")
            .dir("/var")
            .dir("/var/lib")
            .dir("/var/lib/dpkg")
            .dir(STATUS);
        let tree = GuestTree::new(Arc::new(fs), "mem");
        assert!(matches!(read_status(&tree), Err(DpkgError::NotAFile)));
    }
}
