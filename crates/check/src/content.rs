//! VHD-017: what a file taken for a raw disk holds at its start.
//!
//! A raw disk is what is left when every container probe has said no (see
//! `vhdprep_disk::probe`). The evidence that such a file really is a disk is a partition table
//! (MBR or GPT, as `vhdprep_partition` reads it, damaged or not) or a filesystem, swap, LVM or
//! other volume signature on the whole disk (as `vhdprep_fs::probe` reads it, the way `blkid
//! -p` does). A file with neither is reported, never passed in silence: a warning when its
//! first MiB holds data (garbage, or a container no probe knows), information when it is all
//! zeros (a blank disk: a fresh data disk is one; an OS disk without a partition table is also
//! a BOOT-001 error).
//!
//! The disk layer cannot judge this itself (it knows no partition tables), so [`container_report`]
//! adds the finding to the disk layer's container report; `vhdprep info` and `check` (OS and
//! data disks) both use it.

use std::io;
use vhdprep_disk::{ContainerReport, DiskImage, Format, ReadAt};
use vhdprep_finding::{Finding, Severity};
use vhdprep_partition::{read_partitions, PartitionError, TableKind};

/// The rule ID.
pub const RULE: &str = "VHD-017";

/// How much of a structureless disk is looked at to tell blank from garbage.
pub const BLANK_WINDOW: u64 = 1 << 20;

/// What the start of a raw disk holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawContent {
    /// A partition table (`MBR`, `GPT`, or `GPT (both copies damaged)`).
    PartitionTable(&'static str),
    /// A filesystem or volume signature on the whole disk, by its `blkid` type.
    Volume(&'static str),
    /// Neither, and the first [`BLANK_WINDOW`] bytes (or the whole disk) are zeros.
    Blank,
    /// Neither, and the first [`BLANK_WINDOW`] bytes hold data.
    Unrecognised,
}

/// Looks at the start of `disk` (the virtual disk of a raw file).
pub fn raw_content(disk: &dyn ReadAt) -> io::Result<RawContent> {
    match read_partitions(disk) {
        Ok(t) => match t.kind {
            TableKind::Mbr => return Ok(RawContent::PartitionTable("MBR")),
            TableKind::Gpt => return Ok(RawContent::PartitionTable("GPT")),
            TableKind::None => {}
        },
        Err(PartitionError::Io { source, .. }) => return Err(source),
        Err(PartitionError::GptUnreadable { .. }) => {
            return Ok(RawContent::PartitionTable("GPT (both copies damaged)"))
        }
        Err(_) => {}
    }
    if let Some(p) = vhdprep_fs::probe::probe(disk)? {
        return Ok(RawContent::Volume(p.fs_type));
    }
    Ok(if is_zero_start(disk)? {
        RawContent::Blank
    } else {
        RawContent::Unrecognised
    })
}

/// Whether the first [`BLANK_WINDOW`] bytes of `disk` are zeros (holes are not read).
fn is_zero_start(disk: &dyn ReadAt) -> io::Result<bool> {
    let end = disk.len().min(BLANK_WINDOW);
    let Some(data) = disk.next_data(0)? else {
        return Ok(true);
    };
    if data.start >= end {
        return Ok(true);
    }
    let mut buf = vec![0u8; (end - data.start) as usize];
    disk.read_exact_at(&mut buf, data.start)?;
    Ok(buf.iter().all(|&b| b == 0))
}

/// VHD-017 for `image`, when it is a raw file with no partition table and no volume signature.
/// `None` for every other format, and when the disk cannot be read (other findings say why).
pub fn content_finding(image: &DiskImage) -> Option<Finding> {
    if image.format() != Format::Raw {
        return None;
    }
    let disk = image.disk().ok()?;
    let probes = image.detection().probes.len();
    let evidence = format!(
        "no container signature ({probes} probes said no), no MBR or GPT at LBA 0-1, no filesystem or volume signature"
    );
    match raw_content(disk.as_ref()).ok()? {
        RawContent::PartitionTable(_) | RawContent::Volume(_) => None,
        RawContent::Blank => Some(
            Finding::new(
                RULE,
                Severity::Info,
                format!(
                    "a blank disk: no partition table, no filesystem, and the first {} are zeros",
                    window(disk.len())
                ),
            )
            .with_evidence(evidence)
            .at_disk(0, Some(disk.len().min(BLANK_WINDOW))),
        ),
        RawContent::Unrecognised => Some(
            Finding::new(
                RULE,
                Severity::Warning,
                "taken for a raw disk, but it holds no partition table and no filesystem: it may be garbage, or a container vhdprep does not know",
            )
            .with_evidence(format!("{evidence}; the first {} hold data", window(disk.len())))
            .at_disk(0, Some(512))
            .with_remediation(format!(
                "look at what it is (`file {0}`, `qemu-img info {0}`, `blkid -p {0}`) before uploading it",
                vhdprep_disk::refusal::shell_quote(&image.path().display().to_string())
            )),
        ),
    }
}

fn window(len: u64) -> String {
    if len >= BLANK_WINDOW {
        "1 MiB".to_string()
    } else {
        format!("{len} bytes")
    }
}

/// The container report of `image` (`DiskImage::report`) with VHD-017 added: what `vhdprep
/// info` prints and `check` judges.
pub fn container_report(image: &DiskImage) -> ContainerReport {
    let mut r = image.report();
    r.findings.extend(content_finding(image));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_garbage_table_and_filesystem() {
        assert_eq!(raw_content(&vec![0u8; 4 << 20]).unwrap(), RawContent::Blank);
        let mut v = vec![0u8; 4 << 20];
        v[2 << 20] = 1; // data past the window: still blank at the start
        assert_eq!(raw_content(&v).unwrap(), RawContent::Blank);
        let mut v = vec![0u8; 4 << 20];
        v[..26].copy_from_slice(b"Lorem ipsum dolor sit amet");
        assert_eq!(raw_content(&v).unwrap(), RawContent::Unrecognised);
        // An ext4 superblock magic alone is not enough for the probe (it checks the fields it
        // relies on), so a real superblock is tested against mkfs.ext4 in tests/; an MBR with
        // one partition is a table.
        let mut v = vec![0u8; 4 << 20];
        v[446 + 4] = 0x83;
        v[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        v[446 + 12..446 + 16].copy_from_slice(&4096u32.to_le_bytes());
        v[510] = 0x55;
        v[511] = 0xaa;
        assert_eq!(raw_content(&v).unwrap(), RawContent::PartitionTable("MBR"));
    }
}
