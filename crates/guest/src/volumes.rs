//! Every volume of a disk that may hold a filesystem: the partitions (or the whole disk when it
//! has no partition table) and the logical volumes of LVM2 physical volumes among them; each
//! probed for its filesystem type, label and UUID.

use serde::Serialize;
use std::sync::Arc;
use vhdprep_disk::{ReadAt, SharedDisk, Slice};
use vhdprep_finding::{Finding, Severity};
use vhdprep_fs::probe::{probe, Probe};
use vhdprep_fs::{lvm, FileSystem, FsError, FsResult, Volume};
use vhdprep_partition::{read_partitions, Partition, PartitionError, PartitionTable, TableKind};

/// Where a volume comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VolumeSource {
    /// The disk itself (no partition table).
    WholeDisk,
    /// A partition, by its number.
    Partition {
        /// Partition number (1-based, as Linux numbers them).
        number: u32,
    },
    /// An LVM2 logical volume.
    LogicalVolume {
        /// Volume group.
        vg: String,
        /// Logical volume.
        lv: String,
    },
}

impl std::fmt::Display for VolumeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VolumeSource::WholeDisk => write!(f, "whole disk"),
            VolumeSource::Partition { number } => write!(f, "partition {number}"),
            VolumeSource::LogicalVolume { vg, lv } => write!(f, "LV {vg}/{lv}"),
        }
    }
}

/// One volume and what it holds.
#[derive(Clone, Serialize)]
pub struct GuestVolume {
    /// Where it comes from.
    pub source: VolumeSource,
    /// Byte offset on the disk (partitions and the whole disk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    /// Size in bytes.
    pub size: u64,
    /// The partition entry, for partitions.
    #[serde(skip)]
    pub partition: Option<Partition>,
    /// What the probe found on it.
    pub filesystem: Option<Probe>,
    /// The bytes.
    #[serde(skip)]
    pub volume: Volume,
}

/// Partitions, volumes and what went wrong finding them.
pub struct Discovery {
    /// The partition table (kind `None` when the disk has none).
    pub table: Option<PartitionTable>,
    /// Every volume found.
    pub volumes: Vec<GuestVolume>,
    /// Problems seen (partition-table and LVM findings).
    pub findings: Vec<Finding>,
}

/// Finds the volumes of a virtual disk.
pub fn discover(disk: SharedDisk) -> Result<Discovery, PartitionError> {
    let table = read_partitions(disk.as_ref())?;
    let mut findings = table.findings.clone();
    let mut volumes = Vec::new();
    if table.kind == TableKind::None {
        let vol: Volume = disk.clone();
        volumes.push(probed(
            VolumeSource::WholeDisk,
            Some(0),
            vol,
            None,
            &mut findings,
        ));
    }
    for p in &table.partitions {
        let vol: Volume = Arc::new(Slice::new(disk.clone(), p.start_bytes, p.size_bytes));
        volumes.push(probed(
            VolumeSource::Partition { number: p.number },
            Some(p.start_bytes),
            vol,
            Some(p.clone()),
            &mut findings,
        ));
    }
    add_logical_volumes(&mut volumes, &mut findings);
    Ok(Discovery {
        table: Some(table),
        volumes,
        findings,
    })
}

fn probed(
    source: VolumeSource,
    start: Option<u64>,
    volume: Volume,
    partition: Option<Partition>,
    findings: &mut Vec<Finding>,
) -> GuestVolume {
    let filesystem = match probe(volume.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            findings.push(Finding::new(
                "BOOT-001",
                Severity::Warning,
                format!("{source}: cannot read its first blocks to probe the filesystem: {e}"),
            ));
            None
        }
    };
    GuestVolume {
        size: volume.len(),
        source,
        start,
        partition,
        filesystem,
        volume,
    }
}

fn add_logical_volumes(volumes: &mut Vec<GuestVolume>, findings: &mut Vec<Finding>) {
    let mut pvs = Vec::new();
    for v in volumes.iter() {
        if v.filesystem.as_ref().map(|p| p.fs_type) != Some("LVM2_member") {
            continue;
        }
        match lvm::read_pv(v.volume.clone()) {
            Ok(Some(pv)) => pvs.push(pv),
            Ok(None) => {}
            Err(e) => findings.push(Finding::new(
                "BOOT-012",
                Severity::Warning,
                format!("{}: LVM2 physical volume cannot be read: {e}", v.source),
            )),
        }
    }
    if pvs.is_empty() {
        return;
    }
    match lvm::assemble(pvs) {
        Ok(lvs) => {
            for lv in lvs {
                let source = VolumeSource::LogicalVolume {
                    vg: lv.vg_name.clone(),
                    lv: lv.lv_name.clone(),
                };
                volumes.push(probed(source, None, lv.volume.clone(), None, findings));
            }
        }
        Err(e) => findings.push(Finding::new(
            "BOOT-012",
            Severity::Warning,
            format!("LVM2 volume groups cannot be assembled: {e}"),
        )),
    }
}

/// Opens the filesystem on a volume. `subvol` selects a btrfs subvolume (as fstab's
/// `subvol=`); `None` opens btrfs's default subvolume.
pub fn open_filesystem(v: &GuestVolume, subvol: Option<&str>) -> FsResult<Arc<dyn FileSystem>> {
    let Some(p) = &v.filesystem else {
        return Err(FsError::Unsupported {
            fs: "unknown",
            what: format!("{}: no filesystem found", v.source),
        });
    };
    let vol = v.volume.clone();
    let reader: Arc<dyn FileSystem> = match p.fs_type {
        "ext2" | "ext3" | "ext4" => Arc::new(vhdprep_fs::ext4::open(vol)?),
        "vfat" => Arc::new(vhdprep_fs::fat::open(vol)?),
        "xfs" => Arc::new(vhdprep_fs::xfs::open(vol)?),
        "btrfs" => match subvol {
            Some(s) => Arc::new(vhdprep_fs::btrfs::open_subvolume(vol, s.as_bytes())?),
            None => Arc::new(vhdprep_fs::btrfs::open(vol)?),
        },
        other => {
            return Err(FsError::Unsupported {
                fs: other,
                what: "vhdprep does not read this filesystem".into(),
            })
        }
    };
    Ok(Arc::new(vhdprep_fs::cache::CachedFs::new(reader)))
}
