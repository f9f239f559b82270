//! Assembling the guest: find the root filesystem, then attach what its `/etc/fstab` mounts,
//! the way the guest's own boot would.

use crate::fstab::{self, device_ref, DeviceRef, FstabEntry};
use crate::tree::GuestTree;
use crate::volumes::{open_filesystem, GuestVolume, VolumeSource};
use serde::Serialize;
use std::sync::Arc;
use vhdprep_finding::{Finding, Severity};
use vhdprep_fs::FileSystem;

/// Largest fstab read.
const FSTAB_LIMIT: u64 = 1 << 20;
/// Filesystem types that can hold a Linux root.
const ROOT_TYPES: [&str; 5] = ["ext2", "ext3", "ext4", "xfs", "btrfs"];
/// fstab types that are not backed by a disk volume.
const VIRTUAL_TYPES: [&str; 14] = [
    "proc",
    "sysfs",
    "tmpfs",
    "devpts",
    "devtmpfs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "fuse",
];

/// How one fstab entry was handled.
#[derive(Debug, Clone, Serialize)]
pub struct FstabMount {
    /// The fstab entry.
    pub entry: FstabEntry,
    /// The volume it resolved to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeSource>,
    /// Whether it is attached in the guest tree.
    pub mounted: bool,
    /// Why not, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The assembled guest.
pub struct Guest {
    /// The tree of mounted filesystems.
    pub tree: GuestTree,
    /// The volume holding `/`.
    pub root: VolumeSource,
    /// The btrfs subvolume of the root, when one was selected.
    pub root_subvol: Option<String>,
    /// Every fstab entry and what became of it.
    pub fstab: Vec<FstabMount>,
    /// Partitions mounted by their GPT type where fstab names no mount (Discoverable
    /// Partitions Specification).
    pub discovered: Vec<crate::discoverable::DiscoveredMount>,
    /// Problems seen while assembling.
    pub findings: Vec<Finding>,
}

/// What is needed to call a filesystem a Linux root.
fn looks_like_root(fs: &Arc<dyn FileSystem>) -> bool {
    let t = GuestTree::new(fs.clone(), "candidate");
    (t.exists(b"/etc/os-release") || t.exists(b"/usr/lib/os-release")) && t.exists(b"/etc")
}

fn subvolume_candidates(entry_subvol: Option<&str>) -> Vec<Option<String>> {
    let mut v = vec![None];
    if let Some(s) = entry_subvol {
        v.insert(0, Some(s.to_string()));
    }
    for s in ["@", "@root", "root", "@/.snapshots/1/snapshot"] {
        v.push(Some(s.to_string()));
    }
    v
}

/// Finds the root filesystem among `volumes` and mounts the fstab entries it names.
/// Returns `None` when no volume holds a Linux root.
pub fn assemble(volumes: &[GuestVolume]) -> Option<Guest> {
    let mut findings = Vec::new();
    // Every candidate root: (volume index, subvolume, fs, its fstab).
    let mut candidates = Vec::new();
    for (i, v) in volumes.iter().enumerate() {
        let Some(p) = &v.filesystem else { continue };
        if !ROOT_TYPES.contains(&p.fs_type) {
            continue;
        }
        let subvols = if p.fs_type == "btrfs" {
            subvolume_candidates(None)
        } else {
            vec![None]
        };
        for sv in subvols {
            let fs = match open_filesystem(v, sv.as_deref()) {
                Ok(fs) => fs,
                Err(e) => {
                    if sv.is_none() {
                        findings.push(Finding::new(
                            "BOOT-010",
                            Severity::Warning,
                            format!(
                                "{}: {} filesystem cannot be opened: {e}",
                                v.source, p.fs_type
                            ),
                        ));
                    }
                    continue;
                }
            };
            if looks_like_root(&fs) {
                let t = GuestTree::new(fs.clone(), "candidate");
                let entries = t
                    .read_file(b"/etc/fstab", FSTAB_LIMIT)
                    .map(|b| fstab::parse(&String::from_utf8_lossy(&b)))
                    .unwrap_or_default();
                candidates.push((i, sv, fs, entries));
                break;
            }
        }
    }
    if candidates.len() > 1 {
        findings.push(Finding::new(
            "BOOT-010",
            Severity::Warning,
            format!(
                "{} filesystems look like a Linux root ({}); the one its own fstab mounts at / is used",
                candidates.len(),
                candidates
                    .iter()
                    .map(|c| volumes[c.0].source.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    // Prefer a candidate whose fstab names itself as `/`, then one with a discoverable root
    // partition type.
    let pick = candidates
        .iter()
        .position(|(i, _, _, entries)| {
            entries
                .iter()
                .filter(|e| e.mountpoint == "/")
                .any(|e| find_volume(volumes, &device_ref(&e.spec)) == Some(*i))
        })
        .or_else(|| {
            candidates
                .iter()
                .position(|(i, ..)| crate::discoverable::is_root_type(&volumes[*i]))
        })
        .unwrap_or(0);
    if candidates.is_empty() {
        return None;
    }
    let (root_idx, root_subvol, root_fs, entries) = candidates.swap_remove(pick);
    let root_source = volumes[root_idx].source.clone();
    let mut tree = GuestTree::new(root_fs, root_source.to_string());
    let mut mounts = Vec::new();
    let mut ordered: Vec<&FstabEntry> = entries.iter().collect();
    ordered.sort_by_key(|e| e.mountpoint.split('/').filter(|c| !c.is_empty()).count());
    for e in ordered {
        mounts.push(mount_entry(&mut tree, volumes, e, root_idx, &mut findings));
    }
    mounts.sort_by_key(|m| m.entry.line);
    let used: Vec<String> = entries.iter().map(|e| e.mountpoint.clone()).collect();
    let mut in_tree: Vec<VolumeSource> = mounts
        .iter()
        .filter(|m| m.mounted)
        .filter_map(|m| m.volume.clone())
        .collect();
    in_tree.push(root_source.clone());
    let discovered = crate::discoverable::mount_discoverable(&mut tree, volumes, &used, &in_tree);
    Some(Guest {
        tree,
        root: root_source,
        root_subvol,
        fstab: mounts,
        discovered,
        findings,
    })
}

fn mount_entry(
    tree: &mut GuestTree,
    volumes: &[GuestVolume],
    e: &FstabEntry,
    root_idx: usize,
    findings: &mut Vec<Finding>,
) -> FstabMount {
    let mut m = FstabMount {
        entry: e.clone(),
        volume: None,
        mounted: false,
        problem: None,
    };
    if e.is_swap()
        || !e.mountpoint.starts_with('/')
        || VIRTUAL_TYPES.contains(&e.fstype.as_str())
        || e.has_option("bind")
    {
        if let Some(i) = find_volume(volumes, &device_ref(&e.spec)) {
            m.volume = Some(volumes[i].source.clone());
        }
        return m;
    }
    let r = device_ref(&e.spec);
    let Some(i) = find_volume(volumes, &r) else {
        let why = match r {
            DeviceRef::Kernel(_) => "a kernel device name, which depends on the disk controller and probe order; it cannot be matched offline".to_string(),
            _ => "no filesystem in the image matches it".to_string(),
        };
        let sev = if e.has_option("nofail") || e.has_option("noauto") {
            Severity::Info
        } else {
            Severity::Warning
        };
        findings.push(
            Finding::new(
                "SYS-004",
                sev,
                format!(
                    "fstab line {}: '{}' for {} resolves to nothing: {why}",
                    e.line, e.spec, e.mountpoint
                ),
            )
            .with_evidence(format!("/etc/fstab line {}", e.line)),
        );
        m.problem = Some(why);
        return m;
    };
    m.volume = Some(volumes[i].source.clone());
    if e.mountpoint == "/" {
        m.mounted = i == root_idx;
        if i != root_idx {
            m.problem = Some("names another filesystem than the one holding this fstab".into());
        }
        return m;
    }
    let subvol = e
        .option("subvol")
        .map(|s| s.trim_start_matches('/').to_string());
    match open_filesystem(&volumes[i], subvol.as_deref()) {
        Ok(fs) => {
            tree.mount(e.mountpoint.as_bytes(), fs, volumes[i].source.to_string());
            m.mounted = true;
        }
        Err(err) => {
            findings.push(Finding::new(
                "SYS-004",
                Severity::Warning,
                format!(
                    "fstab line {}: {} on {} cannot be opened: {err}",
                    e.line, volumes[i].source, e.mountpoint
                ),
            ));
            m.problem = Some(err.to_string());
        }
    }
    m
}

/// The index of the volume an fstab device reference names.
pub fn find_volume(volumes: &[GuestVolume], r: &DeviceRef) -> Option<usize> {
    let eq = |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(b));
    volumes.iter().position(|v| match r {
        DeviceRef::Uuid(u) => v.filesystem.as_ref().is_some_and(|p| eq(&p.uuid, u)),
        DeviceRef::Label(l) => v
            .filesystem
            .as_ref()
            .is_some_and(|p| p.label.as_deref() == Some(l.as_str())),
        DeviceRef::PartUuid(u) => v
            .partition
            .as_ref()
            .is_some_and(|p| p.partuuid.eq_ignore_ascii_case(u)),
        DeviceRef::PartLabel(l) => v
            .partition
            .as_ref()
            .is_some_and(|p| p.name.as_deref() == Some(l.as_str())),
        DeviceRef::Lv { vg, lv } => {
            v.source
                == VolumeSource::LogicalVolume {
                    vg: vg.clone(),
                    lv: lv.clone(),
                }
        }
        DeviceRef::Kernel(_) | DeviceRef::Other(_) => false,
    })
}
