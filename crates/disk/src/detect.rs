//! What a file is, decided by its content alone: every probe of [`crate::probe`] runs in
//! order until one says yes; a file none of them recognises is a raw disk.

pub use crate::format::{Encryption, Format};
use crate::probe::{self, Sample, PROBES};
use crate::read_at::ReadAt;
use crate::vhd::Footer;
use serde::Serialize;
use std::io;

pub use crate::probe::Evidence;

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
    /// How the volume is encrypted: LUKS and BitLocker always, qcow and qcow2 when their
    /// header says so.
    pub encryption: Option<Encryption>,
    /// The signature that decided the format (`None` for raw).
    pub evidence: Option<Evidence>,
    /// The names of the probes that ran, in order; the last one matched unless the file is
    /// raw, in which case every probe ran and said no.
    pub probes: Vec<&'static str>,
    /// An image format recognised by its header also ends in a VHD footer: a tool took it for
    /// a raw disk and wrapped its bytes (Azure would take the file, the VM would not boot).
    pub wrapped_in_vhd_footer: bool,
}

impl Detection {
    /// The probe that recognised the file, or `None` when it is raw.
    pub fn matched(&self) -> Option<&'static str> {
        if self.format == Format::Raw {
            None
        } else {
            self.probes.last().copied()
        }
    }
}

/// Decides the container format of `file` from its content.
///
/// The probes run in the order of [`crate::probe::PROBES`]: the image formats that start with
/// a signature (VHDX, qcow2, qcow, QED, VDI, VMDK, Parallels, Bochs, cloop), then the VHD
/// footer (at the end: fixed, dynamic or differencing by its disk type, an unknown type
/// counting as fixed as qemu does; else a dynamic or differencing copy at offset 0), then the
/// DMG trailer, the encrypted volumes (LUKS, BitLocker), compressed streams and tar. The file
/// is raw only when every probe has said no.
pub fn detect(file: &dyn ReadAt) -> io::Result<Detection> {
    let sample = Sample::read(file)?;
    let mut ran = Vec::with_capacity(PROBES.len());
    for p in PROBES {
        ran.push(p.name);
        if let Some(found) = (p.run)(&sample)? {
            // Only the probes before the VHD one can match a file that ends in a footer.
            let wrapped = !found.format.is_vhd() && probe::ends_in_vhd_footer(&sample);
            return Ok(Detection {
                format: found.format,
                footer: found.footer,
                footer_copy_differs: found.footer_copy_differs,
                encryption: found.encryption,
                evidence: Some(found.evidence),
                probes: ran,
                wrapped_in_vhd_footer: wrapped,
            });
        }
    }
    Ok(Detection {
        format: Format::Raw,
        footer: None,
        footer_copy_differs: false,
        encryption: None,
        evidence: None,
        probes: ran,
        wrapped_in_vhd_footer: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vhd::DiskType;

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

    #[test]
    fn raw_only_after_every_probe_said_no() {
        let d = detect(&vec![0x5Au8; 4096]).unwrap();
        assert_eq!(d.format, Format::Raw);
        assert_eq!(d.matched(), None);
        let all: Vec<_> = PROBES.iter().map(|p| p.name).collect();
        assert_eq!(d.probes, all);
    }

    #[test]
    fn probes_stop_at_the_first_match() {
        let mut v = vec![0u8; 4096];
        v[64..68].copy_from_slice(&0xbeda_107fu32.to_le_bytes());
        let d = detect(&v).unwrap();
        assert_eq!(d.format, Format::Vdi);
        assert_eq!(d.matched(), Some("vdi"));
        assert_eq!(d.probes, ["vhdx", "qcow2", "qcow", "qed", "vdi"]);
        assert_eq!(d.evidence.unwrap().offset, 64);
        assert!(!d.wrapped_in_vhd_footer);
    }

    #[test]
    fn an_image_format_wrapped_in_a_vhd_footer_is_that_format() {
        // What `vhdprep fix --in-place` did to a qcow2 file before the probes: the bytes,
        // then a footer.
        let mut v = b"QFI\xfb\0\0\0\x03".to_vec();
        v.resize(1 << 20, 0);
        v.extend_from_slice(&Footer::new_fixed(1 << 20).to_bytes());
        let d = detect(&v).unwrap();
        assert_eq!(d.format, Format::Qcow2);
        assert!(d.wrapped_in_vhd_footer);
        assert!(d.footer.is_none());
    }

    #[test]
    fn a_fixed_vhd_of_an_encrypted_volume_is_a_vhd() {
        // A data disk encrypted as a whole: the VHD is the container, LUKS its content.
        let mut v = b"LUKS\xba\xbe\0\x02".to_vec();
        v.resize(1 << 20, 0);
        v.extend_from_slice(&Footer::new_fixed(1 << 20).to_bytes());
        let d = detect(&v).unwrap();
        assert_eq!(d.format, Format::VhdFixed);
        assert_eq!(d.encryption, None);
        v.truncate(1 << 20);
        let d = detect(&v).unwrap();
        assert_eq!(
            (d.format, d.encryption),
            (Format::Luks, Some(Encryption::Luks2))
        );
    }
}
