//! The container rules (VHD-xxx of the shared Azure rule catalogue) that need nothing but the
//! file: format, footer fields, sizes. Size limits that depend on the disk's role (OS or data
//! disk, generation: VHD-008 to VHD-013) belong to `check`, which knows the role.

use crate::detect::{FooterPlace, Format};
use crate::image::DiskImage;
use crate::refusal;
use crate::vhd::{footer, DiskType, Footer, SizeSource, FOOTER_SIZE};
use crate::MIB;
use vhdprep_finding::{Finding, Severity};

/// Smallest upload Azure accepts: 20 MiB of disk plus the footer.
pub const MIN_UPLOAD_SIZE: u64 = 20 * MIB + FOOTER_SIZE as u64;
/// Largest upload Azure accepts: 32,767 GiB of disk (its largest managed disk) plus the footer,
/// 35,183,298,347,520 bytes (the "32 TiB + 512" of Azure's messages).
pub const MAX_UPLOAD_SIZE: u64 = 32_767 * (1 << 30) + FOOTER_SIZE as u64;

/// Everything the container alone says about Azure readiness.
pub fn container_findings(image: &DiskImage) -> Vec<Finding> {
    let file = image.path().display().to_string();
    let mut out = Vec::new();
    let format = image.format();
    match format {
        Format::Raw => out.push(
            Finding::new(
                "VHD-001",
                Severity::Error,
                "not a VHD: there is no 'conectix' footer in the last 512 bytes (a raw disk image)",
            )
            .with_evidence(format!("bytes {}..{}", image.file_size().saturating_sub(512), image.file_size()))
            .at_disk(image.file_size().saturating_sub(512), Some(512))
            .with_remediation(format!(
                "vhdprep fix --in-place {file}   # appends a footer, no copy; or: vhdprep convert {file} OUT.vhd"
            )),
        ),
        Format::VhdDynamic | Format::VhdDifferencing => out.push(
            Finding::new(
                "VHD-002",
                Severity::Error,
                format!("{} VHD: Azure accepts only fixed VHDs", if format == Format::VhdDynamic { "dynamic" } else { "differencing" }),
            )
            .with_evidence("footer offset 60 (disk type)")
            .with_remediation(format!("vhdprep convert {file} OUT.vhd")),
        ),
        Format::VhdFixed => {}
        other => out.push(not_a_vhd(image, other)),
    }
    source_state(image, &mut out);
    let Some(footer) = image.footer() else {
        return out;
    };
    let footer_at = match image.footer_place() {
        Some(FooterPlace::StartCopy) => 0,
        _ => image.file_size() - FOOTER_SIZE as u64,
    };
    footer_findings(footer, footer_at, image, &file, &mut out);
    out
}

/// VHD-001 for a container that is not a VHD (VHDX, qcow2, VDI, LUKS, a compressed stream
/// ...): what it is, the signature that said so, and the command that makes a VHD of it.
fn not_a_vhd(image: &DiskImage, format: Format) -> Finding {
    let mut message = format!(
        "{}: Azure accepts only fixed VHD",
        refusal::what(format, image.encryption())
    );
    if image.detection().wrapped_in_vhd_footer {
        message.push_str(
            "; the file also ends in a VHD footer: a tool took it for a raw disk and appended one, \
             so Azure would accept the upload but the VM could not boot",
        );
    }
    // A format vhdprep reads converts in one step; the others need their own tool first.
    let remediation = if format.is_read() && image.encryption().is_none() {
        format!(
            "vhdprep convert {} OUT.vhd",
            refusal::shell_quote(&image.path().display().to_string())
        )
    } else {
        refusal::remedy(format, image.encryption(), image.path()).commands()
    };
    let mut f = Finding::new("VHD-001", Severity::Error, message).with_remediation(remediation);
    if let Some(e) = image.evidence() {
        f = f
            .with_evidence(e.what.clone())
            .at_disk(e.offset, Some(e.len));
    }
    f
}

/// VHD-018: the state of a source container that is not an error of the upload but changes
/// what is read or says the writer did not finish: a qcow2 dirty or corrupt bit, internal
/// snapshots (the active state is read, never a snapshot), a VHDX log replayed in memory, a
/// parent modified after its child was made.
fn source_state(image: &DiskImage, out: &mut Vec<Finding>) {
    use crate::container::ContainerHeader;
    let file = refusal::shell_quote(&image.path().display().to_string());
    match image.container_header() {
        Some(ContainerHeader::Qcow2(h)) => {
            if h.is_corrupt() {
                out.push(
                    Finding::new(
                        "VHD-018",
                        Severity::Warning,
                        "qcow2 corrupt bit is set: qemu found an inconsistency in this image and stopped writing to it; what is read may not be what the guest wrote",
                    )
                    .with_evidence("offset 72 (incompatible features), bit 1")
                    .at_disk(72, Some(8))
                    .with_remediation(format!("qemu-img check {file}   # on a copy: qemu-img check -r all")),
                );
            }
            if h.is_dirty() {
                out.push(
                    Finding::new(
                        "VHD-018",
                        Severity::Warning,
                        "qcow2 dirty bit is set: the image was not closed cleanly (its refcounts may be stale; the data vhdprep reads is the L1/L2 mapping as left)",
                    )
                    .with_evidence("offset 72 (incompatible features), bit 0")
                    .at_disk(72, Some(8))
                    .with_remediation(format!("qemu-img check {file}   # on a copy: qemu-img check -r all")),
                );
            }
            if !h.snapshots.is_empty() {
                let names: Vec<String> = h
                    .snapshots
                    .iter()
                    .take(8)
                    .map(|s| format!("'{}'", s.name))
                    .collect();
                out.push(
                    Finding::new(
                        "VHD-018",
                        Severity::Info,
                        format!(
                            "{} internal snapshot(s) ({}{}): vhdprep reads the active state, not a snapshot",
                            h.snapshots.len(),
                            names.join(", "),
                            if h.snapshots.len() > 8 { ", ..." } else { "" }
                        ),
                    )
                    .with_evidence(format!("snapshot table at offset {}", h.snapshots_offset)),
                );
            }
        }
        Some(ContainerHeader::Vhdx(h)) if h.log.non_empty => out.push(
            Finding::new(
                "VHD-018",
                Severity::Warning,
                format!(
                    "VHDX log is not empty: the writer stopped before flushing it (a crash or a killed process); {} log entr{} replayed in memory, the file left unchanged",
                    h.log.entries_replayed,
                    if h.log.entries_replayed == 1 { "y" } else { "ies" }
                ),
            )
            .with_evidence(format!("log GUID {} in the current header; log at offset {}", h.head.log_guid, h.log.offset)),
        ),
        _ => {}
    }
    for n in image.chain_notes() {
        out.push(Finding::new("VHD-018", Severity::Warning, n.clone()));
    }
}

fn footer_findings(f: &Footer, at: u64, image: &DiskImage, file: &str, out: &mut Vec<Finding>) {
    let fix = format!("vhdprep fix --in-place {file}");
    if let DiskType::Other(t) = f.disk_type {
        out.push(
            Finding::new(
                "VHD-002",
                Severity::Error,
                format!("unknown disk type {t} in the footer; Azure needs 2 (fixed)"),
            )
            .with_evidence(format!("offset {} (footer+60): {t}", at + 60))
            .at_disk(at + 60, Some(4))
            .with_remediation(fix.clone()),
        );
    }
    if !f.checksum_valid() {
        out.push(
            Finding::new(
                "VHD-003",
                Severity::Error,
                "footer checksum is wrong: Azure reports such files as not being VHDs",
            )
            .with_evidence(format!(
                "offset {} (footer+64): stored 0x{:08x}, computed 0x{:08x}",
                at + 64,
                f.checksum,
                f.expected_checksum()
            ))
            .at_disk(at + 64, Some(4))
            .with_remediation(fix.clone()),
        );
    }
    if f.version != footer::VERSION_1_0 {
        out.push(
            Finding::new(
                "VHD-003",
                Severity::Warning,
                format!("file format version is 0x{:08x}, not 0x00010000", f.version),
            )
            .with_evidence(format!("offset {} (footer+12)", at + 12))
            .at_disk(at + 12, Some(4))
            .with_remediation(fix.clone()),
        );
    }
    if f.disk_type == DiskType::Fixed && f.data_offset != footer::NO_DATA_OFFSET {
        out.push(
            Finding::new(
                "VHD-003",
                Severity::Warning,
                format!(
                    "data offset is 0x{:x}; a fixed disk has all ones",
                    f.data_offset
                ),
            )
            .with_evidence(format!("offset {} (footer+16)", at + 16))
            .at_disk(at + 16, Some(8))
            .with_remediation(fix.clone()),
        );
    }
    if f.features & footer::FEATURE_RESERVED == 0 {
        out.push(
            Finding::new(
                "VHD-003",
                Severity::Warning,
                format!(
                    "features field 0x{:08x} lacks the always-set reserved bit 0x2",
                    f.features
                ),
            )
            .with_evidence(format!("offset {} (footer+8)", at + 8))
            .at_disk(at + 8, Some(4))
            .with_remediation(fix.clone()),
        );
    }
    let size = f.current_size;
    if size % MIB != 0 {
        out.push(
            Finding::new(
                "VHD-004",
                Severity::Error,
                format!(
                    "virtual size {size} bytes is not a whole number of MiB ({:.3} MiB); Azure rejects it",
                    size as f64 / MIB as f64
                ),
            )
            .with_evidence(format!("offset {} (footer+48, current size): {size}", at + 48))
            .at_disk(at + 48, Some(8))
            .with_remediation(if image.format() == Format::VhdFixed { fix.clone() } else { format!("vhdprep convert {file} OUT.vhd") }),
        );
        if &f.creator_app == b"qemu" || &f.creator_app == b"qem2" {
            out.push(
                Finding::new(
                    "VHD-014",
                    Severity::Info,
                    "written by qemu-img: without `-o subformat=fixed,force_size=on` (and in qemu-img 2.2.1 to 2.5, LP 1490611) it rounds the size to CHS geometry, not to a MiB",
                )
                .with_evidence(format!("offset {} (footer+28, creator application): '{}'", at + 28, f.creator_app_text()))
            .at_disk(at + 28, Some(4)),
            );
        }
    }
    if image.format() == Format::VhdFixed {
        let expected = size.checked_add(FOOTER_SIZE as u64);
        if expected != Some(image.file_size()) {
            out.push(
                Finding::new(
                    "VHD-005",
                    Severity::Error,
                    format!(
                        "file length {} bytes is not the virtual size plus the footer ({size} + 512){}",
                        image.file_size(),
                        if image.file_size() < size.saturating_add(512) { ": the file is truncated" } else { "" }
                    ),
                )
                .with_evidence(format!("file length {} vs footer+48 current size {size}", image.file_size()))
                .with_remediation(fix.clone()),
            );
        }
        if f.size_source() == SizeSource::Geometry && f.virtual_size() != size {
            out.push(
                Finding::new(
                    "VHD-014",
                    Severity::Info,
                    format!(
                        "creator '{}' sizes the disk by CHS geometry: readers like qemu see {} bytes while Azure uses the current size {size}",
                        f.creator_app_text(),
                        f.virtual_size()
                    ),
                )
                .with_evidence(format!(
                    "footer+56 geometry {}/{}/{}",
                    f.geometry.cylinders, f.geometry.heads, f.geometry.sectors_per_track
                ))
                .with_remediation(fix.clone()),
            );
        }
    }
    if f.original_size != size {
        out.push(
            Finding::new(
                "VHD-006",
                Severity::Warning,
                format!(
                    "original size {} differs from current size {size}; the current size is used",
                    f.original_size
                ),
            )
            .with_evidence(format!("offset {} (footer+40)", at + 40))
            .at_disk(at + 40, Some(8))
            .with_remediation(fix.clone()),
        );
    }
    if image.format() == Format::VhdFixed {
        let upload = image.file_size();
        if !(MIN_UPLOAD_SIZE..=MAX_UPLOAD_SIZE).contains(&upload) {
            out.push(
                Finding::new(
                    "VHD-007",
                    Severity::Error,
                    format!(
                        "upload size {upload} bytes is outside Azure's window of {MIN_UPLOAD_SIZE} (20 MiB + 512) to {MAX_UPLOAD_SIZE} (32,767 GiB + 512) bytes"
                    ),
                )
                .with_evidence("file length"),
            );
        }
    }
    if f.saved_state != 0 {
        out.push(
            Finding::new(
                "VHD-015",
                Severity::Warning,
                "saved-state flag is set: the disk belongs to a saved VM state",
            )
            .with_evidence(format!("offset {} (footer+84): {}", at + 84, f.saved_state))
            .at_disk(at + 84, Some(1))
            .with_remediation(fix.clone()),
        );
    }
    if f.features & footer::FEATURE_TEMPORARY != 0 {
        out.push(
            Finding::new(
                "VHD-015",
                Severity::Warning,
                "footer marks the disk temporary (features bit 0x1)",
            )
            .with_evidence(format!(
                "offset {} (footer+8): 0x{:08x}",
                at + 8,
                f.features
            ))
            .at_disk(at + 8, Some(4))
            .with_remediation(fix),
        );
    }
    if image.footer_place() == Some(FooterPlace::StartCopy) {
        out.push(
            Finding::new("VHD-003", Severity::Error, "the footer at the end of the file is missing or damaged; only the copy at offset 0 was found")
                .with_evidence("last 512 bytes lack 'conectix'"),
        );
    } else if image.footer_copy_differs() {
        out.push(
            Finding::new(
                "VHD-003",
                Severity::Warning,
                "the footer copy at offset 0 differs from the footer at the end",
            )
            .with_evidence("bytes 0..512 vs the last 512 bytes"),
        );
    }
    if let Err(e) = image.disk() {
        if image.format() == Format::VhdDynamic {
            out.push(Finding::new(
                "VHD-003",
                Severity::Error,
                format!("the disk cannot be read: {e}"),
            ));
        }
    }
}
