//! Fuzz targets: container formats and partition tables.

use crate::Target;

/// The container and partition-table targets.
pub const TARGETS: &[Target] = &[Target {
    name: "container_detect",
    about: "VHD footer (end and start copy), VHDX/qcow2/VMDK signatures: vhdprep_disk::detect",
    run: container_detect,
}];

/// The input is a whole file: detection reads its first and last 512 bytes.
pub fn container_detect(data: &[u8]) {
    if let Ok(d) = vhdprep_disk::detect(&data) {
        if let Some((footer, _)) = d.footer {
            let _ = footer.virtual_size();
            let _ = footer.checksum_valid();
            let _ = footer.creator_app_text();
            let _ = footer.size_source();
        }
    }
}
