//! Swap on the OS disk (SYS-003): fstab swap entries, swap files, systemd swap units.

use super::services::SYSTEMD_ETC;
use super::{list, read_text, stat, PathFact};
use crate::assemble::FstabMount;
use crate::tree::GuestTree;
use crate::volumes::VolumeSource;
use serde::Serialize;
use vhdprep_fs::FileKind;

/// Swap files looked for even when fstab does not name them.
pub const SWAP_FILES: [&str; 2] = ["/swap.img", "/swapfile"];

/// A swap line of `/etc/fstab`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FstabSwap {
    /// Line in `/etc/fstab`.
    pub line: usize,
    /// First field (`UUID=...`, `/dev/sda2`, `/swapfile`).
    pub spec: String,
    /// The volume of this image it resolves to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeSource>,
    /// Carries `noauto`.
    pub noauto: bool,
    /// Carries `nofail`.
    pub nofail: bool,
    /// When the spec is a file path in the guest: that file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathFact>,
}

/// A systemd `.swap` unit in `/etc/systemd/system`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwapUnit {
    /// The unit file (or link).
    pub path: String,
    /// `What=` of the unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    /// `*.wants/<unit>` links enabling it.
    pub wanted_by: Vec<String>,
}

/// Swap evidence.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SwapFacts {
    /// fstab swap entries.
    pub fstab: Vec<FstabSwap>,
    /// Swap files present ([`SWAP_FILES`]).
    pub files: Vec<PathFact>,
    /// `.swap` units defined or enabled in `/etc/systemd/system`.
    pub units: Vec<SwapUnit>,
}

/// Gathers [`SwapFacts`].
pub fn gather(g: &GuestTree, fstab: &[FstabMount]) -> SwapFacts {
    let mut f = SwapFacts::default();
    for m in fstab.iter().filter(|m| m.entry.is_swap()) {
        let e = &m.entry;
        let file = (e.spec.starts_with('/') && !e.spec.starts_with("/dev/"))
            .then(|| stat(g, &e.spec))
            .flatten();
        f.fstab.push(FstabSwap {
            line: e.line,
            spec: e.spec.clone(),
            volume: m.volume.clone(),
            noauto: e.has_option("noauto"),
            nofail: e.has_option("nofail"),
            file,
        });
    }
    for p in SWAP_FILES {
        f.files.extend(stat(g, p));
    }
    let etc = list(g, SYSTEMD_ETC);
    let wants: Vec<String> = etc
        .iter()
        .filter(|(n, k)| n.ends_with(".wants") && matches!(k, FileKind::Dir | FileKind::Unknown))
        .map(|(n, _)| format!("{SYSTEMD_ETC}/{n}"))
        .collect();
    let mut names: Vec<String> = etc
        .iter()
        .filter(|(n, _)| n.ends_with(".swap"))
        .map(|(n, _)| n.clone())
        .collect();
    for w in &wants {
        for (n, _) in list(g, w) {
            if n.ends_with(".swap") && !names.contains(&n) {
                names.push(n);
            }
        }
    }
    for n in names {
        let path = format!("{SYSTEMD_ETC}/{n}");
        let what = read_text(g, &path).and_then(|t| {
            t.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("What")
                    .and_then(|r| r.trim_start().strip_prefix('='))
                    .map(|v| v.trim().to_string())
            })
        });
        let wanted_by = wants
            .iter()
            .map(|w| format!("{w}/{n}"))
            .filter(|p| g.symlink_metadata(p.as_bytes()).is_ok())
            .collect();
        f.units.push(SwapUnit {
            path,
            what,
            wanted_by,
        });
    }
    f
}

#[cfg(test)]
mod tests {
    use super::super::testutil::tree;
    use super::*;

    #[test]
    fn swap_entries_files_units() {
        let g = tree(
            &[
                ("/swapfile", "xx"),
                (
                    "/etc/systemd/system/dev-sdb2.swap",
                    "[Swap]\nWhat=/dev/sdb2\n",
                ),
            ],
            &[(
                "/etc/systemd/system/swap.target.wants/dev-sdb2.swap",
                "/etc/systemd/system/dev-sdb2.swap",
            )],
        );
        let text = "UUID=abc none swap sw 0 0\n/swapfile none swap sw,nofail 0 0\nUUID=r / ext4 defaults 0 1\n";
        let fstab: Vec<FstabMount> = crate::fstab::parse(text)
            .into_iter()
            .map(|entry| FstabMount {
                volume: (entry.spec == "UUID=abc").then_some(VolumeSource::Partition { number: 3 }),
                entry,
                mounted: false,
                problem: None,
            })
            .collect();
        let f = gather(&g, &fstab);
        assert_eq!(f.fstab.len(), 2);
        assert_eq!(
            f.fstab[0].volume,
            Some(VolumeSource::Partition { number: 3 })
        );
        assert_eq!(f.fstab[1].line, 2);
        assert!(f.fstab[1].nofail && f.fstab[1].file.is_some());
        assert_eq!(f.files.len(), 1);
        assert_eq!(f.units.len(), 1);
        assert_eq!(f.units[0].what.as_deref(), Some("/dev/sdb2"));
        assert_eq!(f.units[0].wanted_by.len(), 1);
        let none = gather(&tree(&[("/etc/", "")], &[]), &[]);
        assert!(none.fstab.is_empty() && none.files.is_empty() && none.units.is_empty());
    }
}
