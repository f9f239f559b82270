//! VHD-xxx: the container. The rules that need only the file (VHD-001..007, 014, 015) are
//! judged by the disk layer (`vhdprep_disk::findings`), VHD-017 (what a raw file holds) by
//! [`crate::content`], and reported here; the size limits that
//! depend on the disk's role and generation (VHD-008..013) and the sector size (VHD-016) are
//! judged here.

use super::Collector;
use crate::catalogue::{rule, RuleInfo};
use crate::context::Context;
use crate::policy::Generation;
use vhdprep_disk::MIB;
use vhdprep_finding::{Finding, Severity};

const GIB: u64 = 1 << 30;
/// OS disk capacity limit, 4,095 GiB.
pub const OS_DISK_MAX: u64 = 4095 * GIB;
/// Generation 1 OS disk limit, 2,048 GiB.
pub const GEN1_OS_DISK_MAX: u64 = 2048 * GIB;
/// Generic Linux guidance, 1,023 GiB.
pub const RECOMMENDED_OS_DISK_MAX: u64 = 1023 * GIB;
/// Data disk limit, 32,767 GiB.
pub const DATA_DISK_MAX: u64 = 32_767 * GIB;
/// Gallery image versions: data disks up to 1 TiB.
pub const GALLERY_DATA_DISK_MAX: u64 = 1024 * GIB;
/// Gallery image versions: the whole image under 2 TiB unless shallow replication.
pub const GALLERY_IMAGE_MAX: u64 = 2048 * GIB;
/// Marketplace: data disks up to 1,023 GiB.
pub const MARKETPLACE_DATA_DISK_MAX: u64 = 1023 * GIB;

/// This area's catalogue entries.
pub const RULES: &[RuleInfo] = &[
    rule("VHD-001", Severity::Error, "VHD file", "The file must be a VHD: the 'conectix' footer cookie in its last 512 bytes. VHDX, qcow2, VMDK and raw images are rejected.", "[GENERIC]; [GEN2]; [SUP-CONECTIX]; [ASH-VHD]"),
    rule("VHD-002", Severity::Error, "Fixed VHD", "The VHD disk type must be Fixed (2); dynamic and differencing VHDs are rejected.", "[GENERIC]; [ASH-VHD]; [VHDUTILS] README"),
    rule("VHD-003", Severity::Error, "Valid footer", "The footer checksum must be valid (error); the file-format version 0x00010000 and, for fixed disks, the data offset all ones (warnings).", "[VHDUTILS]; [ISSUE-CLI-6179]; [ASH-VHD]"),
    rule("VHD-004", Severity::Error, "Size a whole MiB", "The virtual (current) size must be a whole multiple of 1 MiB.", "[GENERIC]; [WIN-PREP]; [MKT-CERT]"),
    rule("VHD-005", Severity::Error, "File = size + 512", "The file length must equal the virtual size plus the 512-byte footer.", "[WIN-PREP]; [ASH-VHD]; [ADD-AZVHD]; [AZCOPY]"),
    rule("VHD-006", Severity::Warning, "Original size", "The footer's original size should equal its current size.", "[VHDUTILS]"),
    rule("VHD-007", Severity::Error, "Upload size window", "Direct upload takes 20 MiB + 512 to 32 TiB + 512 bytes (32,767 GiB of disk plus the footer).", "[DOTNET-UPLOADSIZE]; [ISSUE-ASE-3029]; [ASH-VHD]"),
    rule("VHD-008", Severity::Error, "OS disk at most 4,095 GiB", "An OS disk holds at most 4,095 GiB (MBR limits the usable part to 2 TiB).", "[EXPAND-DISKS]; [GEN2]"),
    rule("VHD-009", Severity::Error, "Gen1 OS disk at most 2 TiB", "A Generation 1 OS VHD holds at most 2,048 GiB; larger OS disks need Generation 2.", "[WIN-PREP]; [GEN2]"),
    rule("VHD-010", Severity::Warning, "OS disk at most 1,023 GiB", "Linux OS VHDs should be at most 1,023 GiB (VM sizes' OSVhdSizeMB); deploy small and expand.", "[GENERIC]; [RHEL]; [TL-FAQ]; [MKT-CERT]"),
    rule("VHD-011", Severity::Error, "Data disk at most 32,767 GiB", "A data disk holds at most 32,767 GiB.", "[WIN-PREP]"),
    rule("VHD-012", Severity::Warning, "Gallery size limits", "Gallery image versions take data disks up to 1 TiB and images under 2 TiB unless shallow replication is used.", "[IMG-VERSION]; [ACG]").deviating("The catalogue makes a data disk over 1 TB an error; vhdprep cannot know whether the disk goes to a gallery, so it warns."),
    rule("VHD-013", Severity::Warning, "Marketplace data disk size", "Marketplace data disks are at most 1,023 GiB.", "[MKT-CERT]"),
    rule("VHD-014", Severity::Info, "qemu-img size hint", "A qemu-written VHD whose size is not a whole MiB: qemu-img rounds to CHS geometry unless given -o subformat=fixed,force_size.", "[GENERIC]"),
    rule("VHD-015", Severity::Warning, "Saved state and temporary bit", "The footer's saved-state byte must be 0 and its 'temporary' feature bit clear.", "[VHDUTILS]"),
    rule("VHD-016", Severity::Warning, "512-byte sectors", "A VHD presents 512-byte logical sectors: a partition table written for 4096-byte sectors is not found by the guest. Uploads to Ultra/Premium SSD v2 must use logical sector size 512.", "[DIRECT-UPLOAD]").deviating("The catalogue states this as information; vhdprep warns only when the partition table was written for 4096-byte sectors, the case that breaks the guest."),
    rule("VHD-017", Severity::Warning, "Recognisable disk content", "A file no container probe recognises is taken for a raw disk; it must then hold a partition table or a filesystem at its start. Without either it may be garbage or a container vhdprep does not know (warning); all zeros is a blank disk (information).", "[GENERIC]; qemu block/*.c probes; libblkid").deviating("Not in the shared catalogue: vhdprep's own rule, because it decides raw only by elimination."),
    rule("VHD-018", Severity::Warning, "Source container state", "A source container vhdprep reads (qcow2, VHDX, VMDK, VDI, a parent chain) must be in a clean state: a qcow2 dirty or corrupt bit, a VHDX log the writer did not flush (replayed in memory), or a parent modified after its child was made is a warning; internal snapshots (the active state is read) are information.", "qemu-img check; [MS-VHDX] 2.3; VHD specification (parent time stamp)").deviating("Not in the shared catalogue: vhdprep's own rule, because it reads these formats itself instead of asking for a conversion first."),
];

fn size(bytes: u64) -> String {
    if bytes >= GIB && bytes % GIB == 0 {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= GIB {
        format!("{:.1} GiB ({bytes} bytes)", bytes as f64 / GIB as f64)
    } else {
        format!("{} MiB ({bytes} bytes)", bytes / MIB)
    }
}

/// Evaluates VHD-001..017 on the OS disk and the data disks.
pub fn evaluate(ctx: &Context, out: &mut Collector) {
    for id in [
        "VHD-001", "VHD-002", "VHD-003", "VHD-004", "VHD-005", "VHD-006", "VHD-007", "VHD-017",
        "VHD-018",
    ] {
        out.evaluated(id);
    }
    for f in &ctx.container.findings {
        out.push(f.clone());
    }
    if ctx.image.footer().is_some() {
        out.evaluated("VHD-014");
        out.evaluated("VHD-015");
    } else {
        out.skip("VHD-014", "the file has no VHD footer");
        out.skip("VHD-015", "the file has no VHD footer");
    }
    os_disk_size(ctx, out);
    sector_size(ctx, out);
    data_disks(ctx, out);
}

fn os_disk_size(ctx: &Context, out: &mut Collector) {
    let v = ctx.image.virtual_size();
    let file = &ctx.file;
    out.evaluated("VHD-008");
    if v > OS_DISK_MAX {
        out.push(
            Finding::new(
                "VHD-008",
                Severity::Error,
                format!("the OS disk is {}; Azure OS disks hold at most 4,095 GiB", size(v)),
            )
            .with_evidence(format!("virtual size {v} bytes"))
            .with_remediation("shrink the root filesystem and the disk below 4,095 GiB, or move data to a data disk"),
        );
    }
    let gen1_only = match ctx.policy.generation {
        Some(g) => g == Generation::V1,
        None => ctx.derived.generation == [Generation::V1],
    };
    out.evaluated("VHD-009");
    if gen1_only && v > GEN1_OS_DISK_MAX {
        out.push(
            Finding::new(
                "VHD-009",
                Severity::Error,
                format!(
                    "the OS disk is {} but Generation 1 OS disks hold at most 2,048 GiB",
                    size(v)
                ),
            )
            .with_evidence(format!("virtual size {v} bytes; generation V1"))
            .with_remediation(
                "register the image as Generation 2 (GPT + ESP), or shrink the disk to 2,048 GiB",
            ),
        );
    }
    out.evaluated("VHD-010");
    if v > RECOMMENDED_OS_DISK_MAX && v <= OS_DISK_MAX {
        out.push(
            Finding::new(
                "VHD-010",
                Severity::Warning,
                format!(
                    "the OS disk is {}; Linux OS VHDs should be at most 1,023 GiB (deploy small, then expand)",
                    size(v)
                ),
            )
            .with_evidence(format!("virtual size {v} bytes"))
            .with_remediation(format!(
                "shrink the image (e.g. resize2fs, then `qemu-img resize --shrink`), or expand after deployment; file {file}"
            )),
        );
    }
    let total = ctx
        .data_disks
        .iter()
        .fold(v, |t, d| t.saturating_add(d.image.virtual_size()));
    out.evaluated("VHD-012");
    if total > GALLERY_IMAGE_MAX {
        out.push(
            Finding::new(
                "VHD-012",
                Severity::Warning,
                format!(
                    "the image totals {}; gallery image versions above 2 TiB need shallow replication",
                    size(total)
                ),
            )
            .with_evidence("OS disk plus data disks, virtual sizes")
            .with_remediation("create the image version with `--replication-mode Shallow`, or make the disks smaller"),
        );
    }
}

fn sector_size(ctx: &Context, out: &mut Collector) {
    let Some(table) = ctx.discovery.as_ref().and_then(|d| d.table.as_ref()) else {
        out.skip("VHD-016", "no partition table was read");
        return;
    };
    out.evaluated("VHD-016");
    if table.sector_size != 512 {
        out.push(
            Finding::new(
                "VHD-016",
                Severity::Warning,
                format!(
                    "the partition table was written for {}-byte sectors, but a VHD presents 512-byte sectors: the guest will not find its partitions",
                    table.sector_size
                ),
            )
            .with_evidence(format!("GPT header found at byte {}", table.sector_size))
            .with_remediation("repartition the image with 512-byte logical sectors"),
        );
    }
}

fn data_disks(ctx: &Context, out: &mut Collector) {
    out.evaluated("VHD-011");
    if ctx.data_disks.is_empty() {
        out.skip("VHD-013", "no data disk given");
    } else if !ctx.policy.marketplace {
        out.skip("VHD-013", "Marketplace profile only (--marketplace)");
    } else {
        out.evaluated("VHD-013");
    }
    for d in &ctx.data_disks {
        for f in &d.container.findings {
            let mut f = f.clone();
            f.message = format!("data disk {}: {}", d.file, f.message);
            out.push(f);
        }
        let v = d.image.virtual_size();
        if v > DATA_DISK_MAX {
            out.push(
                Finding::new(
                    "VHD-011",
                    Severity::Error,
                    format!(
                        "data disk {} is {}; data disks hold at most 32,767 GiB",
                        d.file,
                        size(v)
                    ),
                )
                .with_evidence(format!("virtual size {v} bytes")),
            );
        }
        if v > GALLERY_DATA_DISK_MAX {
            out.push(
                Finding::new(
                    "VHD-012",
                    Severity::Warning,
                    format!(
                        "data disk {} is {}; gallery image versions take data disks up to 1 TiB",
                        d.file,
                        size(v)
                    ),
                )
                .with_evidence(format!("virtual size {v} bytes"))
                .with_remediation(
                    "attach it after deployment instead of baking it into the image version",
                ),
            );
        }
        if ctx.policy.marketplace && v > MARKETPLACE_DATA_DISK_MAX {
            out.push(
                Finding::new(
                    "VHD-013",
                    Severity::Warning,
                    format!(
                        "data disk {} is {}; Marketplace data disks are at most 1,023 GiB",
                        d.file,
                        size(v)
                    ),
                )
                .with_evidence(format!("virtual size {v} bytes")),
            );
        }
    }
}
