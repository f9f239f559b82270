//! What a file is, decided by its content alone.

use crate::read_at::ReadAt;
use crate::vhd::{DiskType, Footer, FOOTER_SIZE};
use serde::Serialize;
use std::io;

/// The container formats vhdprep recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Format {
    /// No container: the file is the disk.
    #[serde(rename = "raw")]
    Raw,
    /// Data followed by a 512-byte footer; what Azure takes.
    #[serde(rename = "vhd-fixed")]
    VhdFixed,
    /// Sparse VHD with a block table.
    #[serde(rename = "vhd-dynamic")]
    VhdDynamic,
    /// Sparse VHD on top of a parent disk.
    #[serde(rename = "vhd-differencing")]
    VhdDifferencing,
    /// Hyper-V's newer format (`vhdxfile` at offset 0).
    #[serde(rename = "vhdx")]
    Vhdx,
    /// QEMU copy-on-write v2/v3 (`QFI\xfb`).
    #[serde(rename = "qcow2")]
    Qcow2,
    /// VMware (`KDMV` sparse extent, `COWD`, or a text descriptor).
    #[serde(rename = "vmdk")]
    Vmdk,
}

impl Format {
    /// The name used in JSON and messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::VhdFixed => "vhd-fixed",
            Format::VhdDynamic => "vhd-dynamic",
            Format::VhdDifferencing => "vhd-differencing",
            Format::Vhdx => "vhdx",
            Format::Qcow2 => "qcow2",
            Format::Vmdk => "vmdk",
        }
    }

    /// True for the three VHD kinds.
    pub fn is_vhd(self) -> bool {
        matches!(
            self,
            Format::VhdFixed | Format::VhdDynamic | Format::VhdDifferencing
        )
    }
}

/// Where the footer that decided the format was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FooterPlace {
    /// The last 512 bytes of the file (the normal place).
    End,
    /// The copy at offset 0 of a dynamic disk; the one at the end is missing or damaged.
    StartCopy,
}

/// The result of [`detect`].
#[derive(Debug, Clone)]
pub struct Detection {
    /// The format.
    pub format: Format,
    /// The VHD footer, for the VHD formats.
    pub footer: Option<(Footer, FooterPlace)>,
    /// For dynamic disks: the copy at offset 0 differs from the footer at the end.
    pub footer_copy_differs: bool,
}

/// Decides the container format of `file` from its first and last bytes.
///
/// Order: signatures at offset 0 (VHDX, qcow2, VMDK), then a `conectix` footer in the last 512
/// bytes (fixed, dynamic or differencing by its disk type; an unknown type counts as fixed, as
/// qemu does), then a footer copy at offset 0 with a dynamic or differencing type (end footer
/// lost), else raw. The file must be at least 512 bytes long.
pub fn detect(file: &dyn ReadAt) -> io::Result<Detection> {
    let len = file.len();
    let mut head = [0u8; FOOTER_SIZE];
    let head_len = (len.min(FOOTER_SIZE as u64)) as usize;
    file.read_exact_at(&mut head[..head_len], 0)?;

    let plain = |format| Detection {
        format,
        footer: None,
        footer_copy_differs: false,
    };
    if head.starts_with(b"vhdxfile") {
        return Ok(plain(Format::Vhdx));
    }
    if head.starts_with(b"QFI\xfb") {
        return Ok(plain(Format::Qcow2));
    }
    if head.starts_with(b"KDMV")
        || head.starts_with(b"COWD")
        || head.starts_with(b"# Disk DescriptorFile")
    {
        return Ok(plain(Format::Vmdk));
    }
    if len < FOOTER_SIZE as u64 {
        return Ok(plain(Format::Raw));
    }

    let mut tail = [0u8; FOOTER_SIZE];
    file.read_exact_at(&mut tail, len - FOOTER_SIZE as u64)?;
    let end = Footer::parse(&tail);
    let start = Footer::parse(&head);
    let start_is_sparse =
        start.has_cookie() && matches!(start.disk_type, DiskType::Dynamic | DiskType::Differencing);

    if end.has_cookie() {
        let format = match end.disk_type {
            DiskType::Dynamic => Format::VhdDynamic,
            DiskType::Differencing => Format::VhdDifferencing,
            DiskType::Fixed | DiskType::Other(_) => Format::VhdFixed,
        };
        let differs = format != Format::VhdFixed && start.has_cookie() && head != tail;
        return Ok(Detection {
            format,
            footer: Some((end, FooterPlace::End)),
            footer_copy_differs: differs,
        });
    }
    if start_is_sparse {
        let format = if start.disk_type == DiskType::Dynamic {
            Format::VhdDynamic
        } else {
            Format::VhdDifferencing
        };
        return Ok(Detection {
            format,
            footer: Some((start, FooterPlace::StartCopy)),
            footer_copy_differs: false,
        });
    }
    Ok(plain(Format::Raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_footer(data_len: usize, footer: &Footer) -> Vec<u8> {
        let mut v = vec![0u8; data_len];
        v.extend_from_slice(&footer.to_bytes());
        v
    }

    #[test]
    fn raw_when_no_signature() {
        let v = vec![0x5Au8; 4096];
        assert_eq!(detect(&v).unwrap().format, Format::Raw);
        let tiny = vec![0u8; 100];
        assert_eq!(detect(&tiny).unwrap().format, Format::Raw);
    }

    #[test]
    fn signatures_at_offset_zero() {
        for (sig, fmt) in [
            (&b"vhdxfile"[..], Format::Vhdx),
            (&b"QFI\xfb\0\0\0\x03"[..], Format::Qcow2),
            (&b"KDMV"[..], Format::Vmdk),
            (&b"# Disk DescriptorFile"[..], Format::Vmdk),
        ] {
            let mut v = vec![0u8; 2048];
            v[..sig.len()].copy_from_slice(sig);
            assert_eq!(detect(&v).unwrap().format, fmt, "{sig:?}");
        }
    }

    #[test]
    fn fixed_dynamic_differencing_by_disk_type() {
        let mut f = Footer::new_fixed(1 << 20);
        assert_eq!(
            detect(&with_footer(1 << 20, &f)).unwrap().format,
            Format::VhdFixed
        );
        f.disk_type = DiskType::Dynamic;
        assert_eq!(
            detect(&with_footer(4096, &f)).unwrap().format,
            Format::VhdDynamic
        );
        f.disk_type = DiskType::Differencing;
        assert_eq!(
            detect(&with_footer(4096, &f)).unwrap().format,
            Format::VhdDifferencing
        );
        f.disk_type = DiskType::Other(9);
        assert_eq!(
            detect(&with_footer(4096, &f)).unwrap().format,
            Format::VhdFixed
        );
    }

    #[test]
    fn dynamic_with_lost_end_footer_uses_the_copy() {
        let mut f = Footer::new_fixed(1 << 20);
        f.disk_type = DiskType::Dynamic;
        let mut v = f.to_bytes().to_vec();
        v.extend_from_slice(&[0u8; 4096]);
        let d = detect(&v).unwrap();
        assert_eq!(d.format, Format::VhdDynamic);
        assert_eq!(d.footer.unwrap().1, FooterPlace::StartCopy);
    }

    #[test]
    fn a_fixed_footer_copy_at_the_start_alone_is_raw() {
        let f = Footer::new_fixed(1 << 20);
        let mut v = f.to_bytes().to_vec();
        v.extend_from_slice(&[0u8; 4096]);
        assert_eq!(detect(&v).unwrap().format, Format::Raw);
    }
}
