//! The Discoverable Partitions Specification (UAPI.2): partitions that `systemd-gpt-auto-
//! generator` mounts by their GPT type when `/etc/fstab` does not name the mount point, so an
//! image built that way (mkosi, systemd-repart) has no fstab entry for them.
//!
//! Mount points by type: `/usr`, `/home`, `/srv`, `/var`, `/var/tmp`; XBOOTLDR at `/boot`;
//! the ESP at `/boot` when there is no XBOOTLDR and the root's `/boot` is empty (or absent),
//! else at `/efi`. A partition with the GPT attribute bit 63 (`no-auto`) is skipped, as is a
//! mount point fstab already uses or a volume already mounted. Only the first partition of
//! each type is used. The root itself is found by content ([`crate::assemble`]); among several
//! candidate roots one with a root partition type is preferred there.

use crate::tree::GuestTree;
use crate::volumes::{open_filesystem, GuestVolume, VolumeSource};
use serde::Serialize;
use vhdprep_partition::PartitionKind;

/// GPT attribute bit 63: "do not mount automatically".
pub const NO_AUTO: u64 = 1 << 63;

/// A partition mounted by its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveredMount {
    /// The volume.
    pub volume: VolumeSource,
    /// Where it is mounted in the guest tree.
    pub mountpoint: String,
    /// Why it could not be mounted, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The mount point the specification gives a partition kind (the ESP is decided apart).
fn mountpoint_of(kind: PartitionKind) -> Option<&'static str> {
    Some(match kind {
        PartitionKind::LinuxUsr => "/usr",
        PartitionKind::LinuxHome => "/home",
        PartitionKind::LinuxSrv => "/srv",
        PartitionKind::LinuxVar => "/var",
        PartitionKind::LinuxTmp => "/var/tmp",
        PartitionKind::XbootLdr => "/boot",
        _ => return None,
    })
}

fn dir_is_empty(tree: &GuestTree, p: &str) -> bool {
    tree.read_dir(p.as_bytes()).map_or(true, |v| {
        v.iter().all(|e| e.name == b"." || e.name == b"..")
    })
}

/// Mounts in `tree` the discoverable partitions among `volumes` that nothing mounts yet.
/// `used` are the mount points fstab already handles, `mounted` the volumes already in the
/// tree (the root among them).
pub fn mount_discoverable(
    tree: &mut GuestTree,
    volumes: &[GuestVolume],
    used: &[String],
    mounted: &[VolumeSource],
) -> Vec<DiscoveredMount> {
    let mut out: Vec<DiscoveredMount> = Vec::new();
    let mut plan: Vec<(usize, &'static str)> = Vec::new();
    let candidate = |v: &GuestVolume| {
        let p = v.partition.as_ref()?;
        (p.attributes & NO_AUTO == 0 && v.filesystem.is_some() && !mounted.contains(&v.source))
            .then_some(p.kind)
    };
    let has_xbootldr = volumes.iter().any(|v| {
        v.partition
            .as_ref()
            .is_some_and(|p| p.kind == PartitionKind::XbootLdr)
    });
    for (i, v) in volumes.iter().enumerate() {
        let Some(kind) = candidate(v) else { continue };
        let at = match kind {
            PartitionKind::Esp => {
                if has_xbootldr || !dir_is_empty(tree, "/boot") || used.iter().any(|u| u == "/boot")
                {
                    "/efi"
                } else {
                    "/boot"
                }
            }
            k => match mountpoint_of(k) {
                Some(m) => m,
                None => continue,
            },
        };
        if used.iter().any(|u| u == at) || plan.iter().any(|(_, m)| *m == at) {
            continue;
        }
        // An ESP fstab mounts elsewhere (`/boot/efi`) is not mounted again.
        if kind == PartitionKind::Esp && used.iter().any(|u| u == "/boot/efi" || u == "/efi") {
            continue;
        }
        plan.push((i, at));
    }
    // Parents before children (`/var` before `/var/tmp`).
    plan.sort_by_key(|(_, m)| m.matches('/').count());
    for (i, at) in plan {
        let v = &volumes[i];
        let mut m = DiscoveredMount {
            volume: v.source.clone(),
            mountpoint: at.to_string(),
            problem: None,
        };
        match open_filesystem(v, None) {
            Ok(fs) => tree.mount(at.as_bytes(), fs, v.source.to_string()),
            Err(e) => m.problem = Some(e.to_string()),
        }
        out.push(m);
    }
    out
}

/// Whether a volume has a DPS root partition type (any architecture).
pub fn is_root_type(v: &GuestVolume) -> bool {
    v.partition
        .as_ref()
        .is_some_and(|p| p.kind == PartitionKind::LinuxRoot)
}
