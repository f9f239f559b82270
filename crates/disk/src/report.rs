//! A serialisable description of a disk image's container: what `vhdprep info --json` prints,
//! and what a program embedding the library gets from [`DiskImage::report`].

use crate::container::ChainLink;
use crate::detect::FooterPlace;
use crate::findings::container_findings;
use crate::format::{Encryption, Format};
use crate::image::DiskImage;
use crate::report_formats::{
    FormatReports, OvaReport, Qcow2Report, VdiReport, VhdxReport, VmdkReport,
};
use crate::vhd::{Footer, Geometry, SizeSource};
use serde::Serialize;
use vhdprep_finding::Finding;

/// The container facts of one image.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerReport {
    /// The file.
    pub file: String,
    /// The format's name ([`Format::name`]): `raw`, `vhd-fixed`, `vhd-dynamic`,
    /// `vhd-differencing`, `vhdx`, `qcow2`, `qcow`, `qed`, `vdi`, `vmdk`, `parallels`, `bochs`,
    /// `cloop`, `dmg`, `luks`, `bitlocker`, `gzip`, `xz`, `zstd`, `bzip2`, `tar` or `ova`.
    pub format: Format,
    /// How the container's volume is encrypted (`aes`, `luks`, `luks1`, `luks2`, `bitlocker`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// The container probes that ran and what they found.
    pub probes: ProbeReport,
    /// Virtual disk size in bytes (0 where vhdprep does not read the format).
    pub virtual_size: u64,
    /// File length in bytes.
    pub file_size: u64,
    /// For VHDs: which footer field gave the virtual size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_source: Option<SizeSource>,
    /// The VHD footer, every field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footer: Option<FooterReport>,
    /// The dynamic header of dynamic and differencing VHDs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_header: Option<DynamicReport>,
    /// The qcow2 header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qcow2: Option<Qcow2Report>,
    /// The VHDX header, metadata and log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vhdx: Option<VhdxReport>,
    /// The VMDK descriptor and sparse header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmdk: Option<VmdkReport>,
    /// The OVA's members, disks and the VMDK read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ova: Option<OvaReport>,
    /// The VDI header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vdi: Option<VdiReport>,
    /// The parent chain of a disk with a parent, this disk first, as far as it was found (a
    /// missing parent is named in `unreadable`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<ChainLink>,
    /// Why the virtual disk cannot be read, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// VHD-xxx findings.
    pub findings: Vec<Finding>,
}

/// Which container probes ran, in order, and which one recognised the file.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The probes that ran, in order (every one of them for a raw file).
    pub ran: Vec<&'static str>,
    /// The probe that recognised the file; `None` (JSON `null`) when every one said no and the
    /// file is taken for a raw disk.
    pub matched: Option<&'static str>,
    /// What the matching probe saw, and where (`'vhdxfile' at offset 0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// Every field of a VHD footer, decoded.
#[derive(Debug, Clone, Serialize)]
pub struct FooterReport {
    /// File offset of the footer used.
    pub offset: u64,
    /// `end` or `start_copy`.
    pub place: FooterPlace,
    /// The cookie as text.
    pub cookie: String,
    /// Feature bits.
    pub features: u32,
    /// File format version, e.g. `1.0`.
    pub version: String,
    /// Data offset (all ones for fixed disks).
    pub data_offset: u64,
    /// Seconds since 2000-01-01 UTC.
    pub timestamp: u32,
    /// The timestamp as RFC 3339 UTC.
    pub timestamp_utc: String,
    /// Creator application (`win `, `qemu`, `vhdp` ...).
    pub creator_app: String,
    /// Creator version, `major.minor`.
    pub creator_version: String,
    /// Creator host OS (`Wi2k`, `Mac `).
    pub creator_host_os: String,
    /// Original size.
    pub original_size: u64,
    /// Current size.
    pub current_size: u64,
    /// CHS geometry.
    pub geometry: Geometry,
    /// C × H × S × 512.
    pub geometry_size: u64,
    /// `fixed`, `dynamic`, `differencing` or `unknown(N)`.
    pub disk_type: String,
    /// Stored checksum, hex.
    pub checksum: String,
    /// Whether it matches the content.
    pub checksum_valid: bool,
    /// Unique id as a UUID.
    pub unique_id: String,
    /// Saved-state flag.
    pub saved_state: bool,
    /// Whether the reserved bytes are all zero.
    pub reserved_zero: bool,
}

/// The dynamic header, decoded.
#[derive(Debug, Clone, Serialize)]
pub struct DynamicReport {
    /// Where the block table is.
    pub table_offset: u64,
    /// Entries in the block table.
    pub max_table_entries: u32,
    /// Block size in bytes.
    pub block_size: u32,
    /// Whether the header checksum matches.
    pub checksum_valid: bool,
    /// Parent name (differencing disks).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub parent_name: String,
}

impl FooterReport {
    /// Decodes `f`, found at `offset`.
    pub fn new(f: &Footer, offset: u64, place: FooterPlace) -> Self {
        FooterReport {
            offset,
            place,
            cookie: String::from_utf8_lossy(&f.cookie).into_owned(),
            features: f.features,
            version: format!("{}.{}", f.version >> 16, f.version & 0xffff),
            data_offset: f.data_offset,
            timestamp: f.timestamp,
            timestamp_utc: rfc3339_utc(f.timestamp_unix()),
            creator_app: f.creator_app_text(),
            creator_version: format!("{}.{}", f.creator_version >> 16, f.creator_version & 0xffff),
            creator_host_os: f.creator_host_os_text(),
            original_size: f.original_size,
            current_size: f.current_size,
            geometry: f.geometry,
            geometry_size: f.geometry.total_sectors() * 512,
            disk_type: f.disk_type.name(),
            checksum: format!("0x{:08x}", f.checksum),
            checksum_valid: f.checksum_valid(),
            unique_id: f.unique_id_text(),
            saved_state: f.saved_state != 0,
            reserved_zero: f.reserved.iter().all(|&b| b == 0),
        }
    }
}

impl DiskImage {
    /// Everything the container says: format, sizes, footer fields, findings.
    pub fn report(&self) -> ContainerReport {
        let footer = self.footer().map(|f| {
            let place = self.footer_place().unwrap_or(FooterPlace::End);
            let offset = match place {
                FooterPlace::End => self.file_size() - 512,
                FooterPlace::StartCopy => 0,
            };
            FooterReport::new(f, offset, place)
        });
        let formats = FormatReports::of(self.container_header());
        ContainerReport {
            file: self.path().display().to_string(),
            format: self.format(),
            encryption: self.encryption(),
            probes: ProbeReport {
                ran: self.detection().probes.clone(),
                matched: self.detection().matched(),
                evidence: self.evidence().map(|e| e.what.clone()),
            },
            virtual_size: self.virtual_size(),
            file_size: self.file_size(),
            size_source: self.size_source(),
            footer,
            dynamic_header: self.dynamic_header().map(|h| DynamicReport {
                table_offset: h.table_offset,
                max_table_entries: h.max_table_entries,
                block_size: h.block_size,
                checksum_valid: h.checksum_valid(),
                parent_name: h.parent_name.clone(),
            }),
            qcow2: formats.qcow2,
            vhdx: formats.vhdx,
            vmdk: formats.vmdk,
            ova: formats.ova,
            vdi: formats.vdi,
            chain: self.chain().to_vec(),
            unreadable: self.disk().err().map(|e| e.to_string()),
            findings: container_findings(self),
        }
    }
}

/// Formats a Unix time as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub fn rfc3339_utc(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339_utc;

    #[test]
    fn formats_known_dates() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(946_684_800), "2000-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_764_085_533), "2025-11-25T15:45:33Z");
    }
}
