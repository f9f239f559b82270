//! `inspect`: disk → partitions → filesystems → the guest's OS and architecture, as one report.

use crate::assemble::{assemble, FstabMount, Guest};
use crate::elf::{parse_header, Architecture};
use crate::family::Family;
use crate::os_release;
use crate::packages::{Database, Package, Packages};
use crate::volumes::{discover, GuestVolume, VolumeSource};
use serde::Serialize;
use vhdprep_disk::{DiskImage, Format};
use vhdprep_finding::Finding;
use vhdprep_fs::probe::Probe;
use vhdprep_partition::{PartitionError, PartitionKind, PartitionType, TableKind};

/// Binaries whose ELF header tells the guest's architecture, most telling first.
pub const ARCH_PROBES: [&str; 6] = [
    "/sbin/init",
    "/usr/lib/systemd/systemd",
    "/lib/systemd/systemd",
    "/bin/sh",
    "/usr/bin/bash",
    "/bin/busybox",
];
/// Largest binary read for its header (the file API reads whole files).
const ELF_LIMIT: u64 = 64 << 20;

/// Why an image cannot be inspected at all.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The container cannot be read.
    #[error("{0}")]
    Disk(#[from] std::sync::Arc<vhdprep_disk::DiskError>),
    /// The partition table cannot be read.
    #[error("{path}: {source}")]
    Partition {
        /// The image.
        path: String,
        /// Why.
        #[source]
        source: PartitionError,
    },
}

/// What a filesystem is.
#[derive(Debug, Clone, Serialize)]
pub struct FilesystemReport {
    /// blkid's TYPE (`ext4`, `xfs`, `btrfs`, `vfat`, `swap`, `LVM2_member` ...).
    #[serde(rename = "type")]
    pub fs_type: String,
    /// UUID as blkid prints it.
    pub uuid: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// Size the superblock gives, in bytes.
    pub size: Option<u64>,
}

impl From<&Probe> for FilesystemReport {
    fn from(p: &Probe) -> Self {
        FilesystemReport {
            fs_type: p.fs_type.to_string(),
            uuid: p.uuid.clone(),
            label: p.label.clone(),
            size: p.size,
        }
    }
}

/// One partition.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionReport {
    /// Linux partition number.
    pub number: u32,
    /// First byte on the disk.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// GPT type GUID (uppercase) or MBR type byte (`0x83`).
    #[serde(rename = "type")]
    pub partition_type: PartitionType,
    /// Catalogue name of the type.
    pub type_name: &'static str,
    /// Classification (esp, bios_boot, linux_root, swap, lvm ...).
    pub kind: PartitionKind,
    /// PARTUUID as blkid prints it.
    pub partuuid: String,
    /// GPT partition name.
    pub name: Option<String>,
    /// Bootable flag.
    pub bootable: bool,
    /// The filesystem on it.
    pub filesystem: Option<FilesystemReport>,
    /// Where the guest mounts it.
    pub mountpoint: Option<String>,
}

/// One LVM logical volume.
#[derive(Debug, Clone, Serialize)]
pub struct LogicalVolumeReport {
    /// Volume group.
    pub vg: String,
    /// Logical volume.
    pub lv: String,
    /// Size in bytes.
    pub size: u64,
    /// The filesystem on it.
    pub filesystem: Option<FilesystemReport>,
    /// Where the guest mounts it.
    pub mountpoint: Option<String>,
}

/// The guest's identity.
#[derive(Debug, Clone, Serialize)]
pub struct OsReport {
    /// `ID`.
    pub id: Option<String>,
    /// `VERSION_ID`.
    pub version_id: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
    /// `NAME`.
    pub name: Option<String>,
    /// `ID_LIKE`.
    pub id_like: Vec<String>,
}

impl OsReport {
    /// The family `ID`, then `ID_LIKE`, names.
    pub fn family(&self) -> Family {
        self.id
            .iter()
            .chain(self.id_like.iter())
            .map(|id| Family::of_id(id))
            .find(|f| *f != Family::Unknown)
            .unwrap_or(Family::Unknown)
    }
}

/// Everything `inspect` reports.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// The image.
    pub file: String,
    /// Container format.
    pub format: Format,
    /// Virtual disk size.
    pub virtual_size: u64,
    /// `gpt`, `mbr` or `none`.
    pub partition_table: TableKind,
    /// The partitions.
    pub partitions: Vec<PartitionReport>,
    /// LVM logical volumes.
    pub logical_volumes: Vec<LogicalVolumeReport>,
    /// A filesystem on the whole disk (no partition table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole_disk_filesystem: Option<FilesystemReport>,
    /// Where `/` is.
    pub root: Option<String>,
    /// The btrfs subvolume of `/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_subvolume: Option<String>,
    /// The guest's fstab and what each entry resolved to.
    pub fstab: Vec<FstabMount>,
    /// os-release.
    pub os: Option<OsReport>,
    /// Architecture from the ELF header of the init binary.
    pub architecture: Option<Architecture>,
    /// Which binary told the architecture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture_evidence: Option<String>,
    /// Problems seen on the way.
    pub findings: Vec<Finding>,
    /// Installed packages (`--packages`, `--json`), sorted by name: name, version as the
    /// family writes it, arch, source database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<Vec<Package>>,
    /// The package databases found: source, path, packages read, entries skipped, error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_databases: Option<Vec<Database>>,
}

/// Fills `report`'s `packages` and `package_databases` from the guest's databases (a no-op
/// without a guest: both stay absent).
pub fn add_packages(report: &mut InspectReport, guest: Option<&Guest>) {
    let Some(g) = guest else { return };
    let family = report.os.as_ref().map_or(Family::Unknown, OsReport::family);
    let p = Packages::gather(&g.tree, family);
    let mut list = p.all().to_vec();
    list.sort_by(|a, b| {
        (&a.name, &a.arch, &a.version, a.source.name()).cmp(&(
            &b.name,
            &b.arch,
            &b.version,
            b.source.name(),
        ))
    });
    report.packages = Some(list);
    report.package_databases = Some(p.databases().to_vec());
}

/// The guest's architecture and the binary that told it.
pub fn architecture(guest: &Guest) -> Option<(Architecture, String)> {
    ARCH_PROBES.iter().find_map(|p| {
        let bytes = guest.tree.read_file(p.as_bytes(), ELF_LIMIT).ok()?;
        let h = parse_header(&bytes)?;
        let real = guest
            .tree
            .canonical(p.as_bytes())
            .unwrap_or_else(|_| p.to_string());
        Some((h.architecture, real))
    })
}

/// The guest's os-release.
pub fn os(guest: &Guest) -> Option<OsReport> {
    let bytes = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| guest.tree.read_file(p.as_bytes(), 1 << 20).ok())?;
    let o = os_release::parse(&String::from_utf8_lossy(&bytes));
    Some(OsReport {
        id: o.id,
        version_id: o.version_id,
        pretty_name: o.pretty_name,
        name: o.name,
        id_like: o.id_like,
    })
}

fn mountpoint_of(guest: Option<&Guest>, source: &VolumeSource) -> Option<String> {
    let g = guest?;
    if &g.root == source {
        return Some("/".into());
    }
    g.fstab
        .iter()
        .find(|m| m.mounted && m.volume.as_ref() == Some(source))
        .map(|m| m.entry.mountpoint.clone())
        .or_else(|| {
            g.discovered
                .iter()
                .find(|d| d.problem.is_none() && &d.volume == source)
                .map(|d| d.mountpoint.clone())
        })
}

/// Inspects an opened image. Returns the report with the volumes and the assembled guest, so
/// that callers (`ls`, `cat`, `check`) can go on reading.
pub fn inspect(
    image: &DiskImage,
) -> Result<(InspectReport, Vec<GuestVolume>, Option<Guest>), InspectError> {
    let disk = image.disk()?;
    let found = discover(disk).map_err(|e| InspectError::Partition {
        path: image.path().display().to_string(),
        source: e,
    })?;
    let guest = assemble(&found.volumes);
    let mut findings = found.findings.clone();
    let table_kind = found.table.as_ref().map_or(TableKind::None, |t| t.kind);
    let mut partitions = Vec::new();
    let mut lvs = Vec::new();
    let mut whole = None;
    for v in &found.volumes {
        let fs = v.filesystem.as_ref().map(FilesystemReport::from);
        let mountpoint = mountpoint_of(guest.as_ref(), &v.source);
        match (&v.source, &v.partition) {
            (VolumeSource::Partition { .. }, Some(p)) => partitions.push(PartitionReport {
                number: p.number,
                start: p.start_bytes,
                size: p.size_bytes,
                partition_type: p.partition_type,
                type_name: p.type_name,
                kind: p.kind,
                partuuid: p.partuuid.clone(),
                name: p.name.clone(),
                bootable: p.bootable,
                filesystem: fs,
                mountpoint,
            }),
            (VolumeSource::LogicalVolume { vg, lv }, _) => lvs.push(LogicalVolumeReport {
                vg: vg.clone(),
                lv: lv.clone(),
                size: v.size,
                filesystem: fs,
                mountpoint,
            }),
            _ => whole = fs,
        }
    }
    let (os, arch) = match &guest {
        Some(g) => {
            findings.extend(g.findings.iter().cloned());
            (os(g), architecture(g))
        }
        None => (None, None),
    };
    let report = InspectReport {
        file: image.path().display().to_string(),
        format: image.format(),
        virtual_size: image.virtual_size(),
        partition_table: table_kind,
        partitions,
        logical_volumes: lvs,
        whole_disk_filesystem: whole,
        root: guest.as_ref().map(|g| g.root.to_string()),
        root_subvolume: guest.as_ref().and_then(|g| g.root_subvol.clone()),
        fstab: guest.as_ref().map(|g| g.fstab.clone()).unwrap_or_default(),
        os,
        architecture: arch.as_ref().map(|a| a.0),
        architecture_evidence: arch.map(|a| a.1),
        findings,
        packages: None,
        package_databases: None,
    };
    Ok((report, found.volumes, guest))
}
