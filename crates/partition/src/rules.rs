//! The rule IDs this crate reports its findings under, in one place.
//!
//! All partition-table findings belong to `BOOT-001` of the Azure rule catalogue ("the disk must
//! carry a valid partition table ... with valid CRCs, primary + backup at the last LBA of the
//! virtual disk"). The constants below name the *kind* of problem so that they can be split into
//! finer IDs later without touching the readers.
//!
//! Severities, following [`vhdprep_finding::Severity`] ("error: Azure rejects the image or VMs
//! made from it fail to boot"):
//!
//! - error: no usable table, a partition the Linux kernel will not create (ends past the disk,
//!   inverted), overlapping partitions, a broken EBR chain, a damaged *primary* GPT (the kernel
//!   does not fall back to the backup unless booted with `gpt`), GPT entries other than 128
//!   bytes (the kernel and libblkid reject them; only libfdisk reads them);
//! - warning: a damaged or misplaced *backup* GPT, primary/backup disagreement, partitions
//!   outside the usable range, oddities the kernel tolerates;
//! - info: facts (hybrid MBR, sector 0 is a filesystem boot sector).

use vhdprep_finding::{Finding, Severity};

/// A table that cannot be read at all, or is missing.
pub const TABLE_UNREADABLE: &str = "BOOT-001";
/// One copy of the GPT (header or array) is damaged, misplaced or disagrees with the other.
pub const GPT_COPY_DAMAGED: &str = "BOOT-001";
/// A partition entry is out of range, inverted or overlaps another.
pub const PARTITION_LAYOUT: &str = "BOOT-001";
/// MBR structure problems: EBR chain, protective/hybrid MBR, boot indicators.
pub const MBR_STRUCTURE: &str = "BOOT-001";

/// Every distinct rule ID this crate can emit.
pub const ALL: &[&str] = &["BOOT-001"];

pub(crate) fn finding(
    id: &'static str,
    severity: Severity,
    message: impl Into<String>,
    evidence: impl Into<String>,
) -> Finding {
    Finding::new(id, severity, message).with_evidence(evidence)
}
