//! The per-format parts of `vhdprep info --json`: one key per format (`qcow2`, `vhdx`, `vmdk`,
//! `ova`, `vdi`), each with that format's own fields, from [`ContainerHeader`].

use crate::container::{ContainerHeader, OvaInfo};
use crate::qcow2::{CompressionType, Qcow2Header};
use crate::report::rfc3339_utc;
use crate::vdi::VdiHeader;
use crate::vhdx::VhdxHeader;
use crate::vmdk::VmdkHeader;
use serde::Serialize;

/// A qcow2 header, for `info`.
#[derive(Debug, Clone, Serialize)]
pub struct Qcow2Report {
    /// 2 or 3.
    pub version: u32,
    /// qemu-img's `compat` (`0.10` for version 2, `1.1` for 3).
    pub compat: &'static str,
    /// Cluster size in bytes.
    pub cluster_size: u64,
    /// `zlib`, `zstd` or `unknown(N)`: how compressed clusters are compressed.
    pub compression: String,
    /// Extended L2 entries (subclusters).
    pub extended_l2: bool,
    /// Lazy refcounts (compatible feature bit 0).
    pub lazy_refcounts: bool,
    /// The dirty bit: refcounts may be inconsistent (the image was not closed cleanly).
    pub dirty: bool,
    /// The corrupt bit: qemu found an inconsistency and stopped writing.
    pub corrupt: bool,
    /// Encryption method, when encrypted (`aes`, `luks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<&'static str>,
    /// The backing file name as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing_file: Option<String>,
    /// The backing file format as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing_format: Option<String>,
    /// External data file name (refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_file: Option<String>,
    /// Internal snapshots (listed, never read: the active state is the disk).
    pub snapshots: Vec<SnapshotReport>,
}

/// One internal qcow2 snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotReport {
    /// Its id (`1`, `2` ...).
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was taken, RFC 3339 UTC.
    pub date_utc: String,
    /// Saved VM state size in bytes (0: disk only).
    pub vm_state_size: u64,
    /// Virtual disk size at the snapshot, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_size: Option<u64>,
}

/// A VHDX header, for `info`.
#[derive(Debug, Clone, Serialize)]
pub struct VhdxReport {
    /// The creator string of the file identifier.
    pub creator: String,
    /// Block size in bytes.
    pub block_size: u32,
    /// Logical sector size (512 or 4096).
    pub logical_sector_size: u32,
    /// Physical sector size (512 or 4096).
    pub physical_sector_size: u32,
    /// A fixed VHDX (blocks allocated at creation).
    pub leave_blocks_allocated: bool,
    /// A differencing VHDX.
    pub has_parent: bool,
    /// Virtual disk id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_disk_id: Option<String>,
    /// Data write GUID of the current header (what a child's `parent_linkage` names).
    pub data_write_guid: String,
    /// Sequence number of the current header.
    pub header_sequence: u64,
    /// The log.
    pub log: VhdxLogReport,
    /// The parent locator's entries (differencing disks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_locator: Option<Vec<(String, String)>>,
}

/// The VHDX log as found.
#[derive(Debug, Clone, Serialize)]
pub struct VhdxLogReport {
    /// Its length in bytes.
    pub length: u64,
    /// The header's log GUID is set: the writer did not flush the log.
    pub non_empty: bool,
    /// Entries replayed in memory (never written to the file).
    pub replayed_entries: usize,
}

/// A VMDK, for `info`.
#[derive(Debug, Clone, Serialize)]
pub struct VmdkReport {
    /// `createType` of the descriptor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_type: Option<String>,
    /// `CID`, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// `parentCID` of a delta disk, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_cid: Option<String>,
    /// `parentFileNameHint` of a delta disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_file_name_hint: Option<String>,
    /// The descriptor's extents.
    pub extents: Vec<VmdkExtentReport>,
    /// The sparse extent header of a sparse or stream-optimized file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse: Option<VmdkSparseReport>,
}

/// One extent line of a VMDK descriptor.
#[derive(Debug, Clone, Serialize)]
pub struct VmdkExtentReport {
    /// `RW`, `RDONLY` or `NOACCESS`.
    pub access: String,
    /// Size in sectors.
    pub sectors: u64,
    /// `FLAT`, `SPARSE`, `ZERO` ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// File name, for extents with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Offset in the file, in sectors (flat extents).
    pub offset: u64,
}

/// A VMDK sparse extent header.
#[derive(Debug, Clone, Serialize)]
pub struct VmdkSparseReport {
    /// Header version (1..3).
    pub version: u32,
    /// Capacity in sectors.
    pub capacity_sectors: u64,
    /// Grain size in sectors.
    pub grain_sectors: u64,
    /// Compression algorithm (0 none, 1 deflate).
    pub compress_algorithm: u16,
    /// The header says the grain directory is in the footer (stream-optimized).
    pub footer: bool,
    /// The unclean-shutdown flag.
    pub unclean_shutdown: bool,
}

/// An OVA, for `info`.
#[derive(Debug, Clone, Serialize)]
pub struct OvaReport {
    /// The archive's members, in order.
    pub members: Vec<String>,
    /// The OVF descriptor is the first member.
    pub ovf_first: bool,
    /// The disks the OVF lists with their members.
    pub disks: Vec<OvaDiskReport>,
    /// The member read as the virtual disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_read: Option<String>,
    /// The VMDK of that member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmdk: Option<VmdkReport>,
}

/// One OVF disk.
#[derive(Debug, Clone, Serialize)]
pub struct OvaDiskReport {
    /// `ovf:diskId`.
    pub disk_id: String,
    /// The file's name in the archive.
    pub href: String,
    /// Capacity in bytes, as the OVF says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// Offset of the member's data in the archive.
    pub offset: u64,
    /// Its size.
    pub size: u64,
}

/// A VDI header, for `info`.
#[derive(Debug, Clone, Serialize)]
pub struct VdiReport {
    /// `static`, `dynamic`, `differencing` ...
    pub image_type: String,
    /// Header version, `major.minor`.
    pub version: String,
    /// Block size in bytes.
    pub block_size: u32,
    /// Blocks in the image.
    pub blocks_in_image: u32,
    /// Blocks allocated in the file.
    pub blocks_allocated: u32,
    /// Image UUID.
    pub uuid_image: String,
    /// Last-modification UUID.
    pub uuid_last_modification: String,
    /// Link (parent image) UUID, for differencing images.
    pub uuid_link: String,
    /// Parent modification UUID recorded by a differencing image.
    pub uuid_parent_modification: String,
    /// The image's comment.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

/// The per-format sections of a report.
#[derive(Debug, Clone, Default)]
pub struct FormatReports {
    /// qcow2.
    pub qcow2: Option<Qcow2Report>,
    /// VHDX.
    pub vhdx: Option<VhdxReport>,
    /// VMDK.
    pub vmdk: Option<VmdkReport>,
    /// OVA.
    pub ova: Option<OvaReport>,
    /// VDI.
    pub vdi: Option<VdiReport>,
}

impl FormatReports {
    /// The sections for `header`.
    pub fn of(header: Option<&ContainerHeader>) -> Self {
        let mut r = FormatReports::default();
        match header {
            Some(ContainerHeader::Qcow2(h)) => r.qcow2 = Some(qcow2(h)),
            Some(ContainerHeader::Vhdx(h)) => r.vhdx = Some(vhdx(h)),
            Some(ContainerHeader::Vmdk(h)) => r.vmdk = Some(vmdk(h)),
            Some(ContainerHeader::Ova(o)) => r.ova = Some(ova(o)),
            Some(ContainerHeader::Vdi(h)) => r.vdi = Some(vdi(h)),
            Some(ContainerHeader::VhdDifferencing(_)) | None => {}
        }
        r
    }
}

fn qcow2(h: &Qcow2Header) -> Qcow2Report {
    Qcow2Report {
        version: h.version,
        compat: h.compat(),
        cluster_size: h.cluster_size(),
        compression: match h.compression_type() {
            CompressionType::Zlib => "zlib".into(),
            CompressionType::Zstd => "zstd".into(),
            CompressionType::Unknown(n) => format!("unknown({n})"),
        },
        extended_l2: h.has_extended_l2(),
        lazy_refcounts: h.has_lazy_refcounts(),
        dirty: h.is_dirty(),
        corrupt: h.is_corrupt(),
        encryption: h.encryption(),
        backing_file: h.backing_file.clone(),
        backing_format: h.backing_format.clone(),
        data_file: h.data_file.clone(),
        snapshots: h
            .snapshots
            .iter()
            .map(|s| SnapshotReport {
                id: s.id.clone(),
                name: s.name.clone(),
                date_utc: rfc3339_utc(u64::from(s.date_sec)),
                vm_state_size: s.vm_state_size,
                disk_size: s.disk_size,
            })
            .collect(),
    }
}

fn vhdx(h: &VhdxHeader) -> VhdxReport {
    let m = &h.metadata;
    VhdxReport {
        creator: h.creator.clone(),
        block_size: m.block_size,
        logical_sector_size: m.logical_sector_size,
        physical_sector_size: m.physical_sector_size,
        leave_blocks_allocated: m.leave_blocks_allocated,
        has_parent: m.has_parent,
        virtual_disk_id: m.virtual_disk_id.map(|u| u.to_string()),
        data_write_guid: h.head.data_write_guid.to_string(),
        header_sequence: h.head.sequence,
        log: VhdxLogReport {
            length: h.log.length,
            non_empty: h.log.non_empty,
            replayed_entries: h.log.entries_replayed,
        },
        parent_locator: m.parent_locator.as_ref().map(|l| l.entries.clone()),
    }
}

fn vmdk(h: &VmdkHeader) -> VmdkReport {
    let d = h.descriptor.as_ref();
    VmdkReport {
        create_type: h.create_type().map(str::to_string),
        cid: d.and_then(|d| d.cid).map(|c| format!("{c:08x}")),
        parent_cid: h.parent().map(|(c, _)| format!("{c:08x}")),
        parent_file_name_hint: h.parent().and_then(|(_, n)| n.map(str::to_string)),
        extents: d
            .map(|d| {
                d.extents
                    .iter()
                    .map(|e| VmdkExtentReport {
                        access: match e.access {
                            crate::vmdk::Access::ReadWrite => "RW",
                            crate::vmdk::Access::ReadOnly => "RDONLY",
                            crate::vmdk::Access::NoAccess => "NOACCESS",
                        }
                        .into(),
                        sectors: e.sectors,
                        kind: e.kind.name(),
                        file: e.file.clone(),
                        offset: e.offset,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        sparse: h.sparse.as_ref().map(|s| VmdkSparseReport {
            version: s.version,
            capacity_sectors: s.capacity,
            grain_sectors: s.grain_size,
            compress_algorithm: s.compress_algorithm,
            footer: h.initial_sparse.is_some(),
            unclean_shutdown: s.unclean_shutdown,
        }),
    }
}

fn ova(o: &OvaInfo) -> OvaReport {
    OvaReport {
        members: o.ova.members.iter().map(|m| m.name.clone()).collect(),
        ovf_first: o.ova.ovf_first(),
        disks: o
            .disks
            .iter()
            .map(|d| OvaDiskReport {
                disk_id: d.disk.disk_id.clone(),
                href: d.file.href.clone(),
                capacity: d.disk.capacity,
                offset: d.member.offset,
                size: d.member.size,
            })
            .collect(),
        disk_read: o
            .read
            .and_then(|i| o.disks.get(i))
            .map(|d| d.member.name.clone()),
        vmdk: o.vmdk.as_ref().map(vmdk),
    }
}

fn vdi(h: &VdiHeader) -> VdiReport {
    VdiReport {
        image_type: h.image_type.name(),
        version: format!("{}.{}", h.version >> 16, h.version & 0xffff),
        block_size: h.block_size,
        blocks_in_image: h.blocks_in_image,
        blocks_allocated: h.blocks_allocated,
        uuid_image: h.uuid_image.to_string(),
        uuid_last_modification: h.uuid_last_modification.to_string(),
        uuid_link: h.uuid_link.to_string(),
        uuid_parent_modification: h.uuid_parent_modification.to_string(),
        comment: h.comment.clone(),
    }
}
