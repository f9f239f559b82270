//! PE/COFF headers of EFI executables: machine, subsystem, and the certificate table (data
//! directory 4) holding the Authenticode `WIN_CERTIFICATE` entries.
//!
//! Layout per the Microsoft PE/COFF specification: `MZ` DOS header with `e_lfanew` at 0x3C;
//! `PE\0\0`; the 20-byte COFF header (machine first, optional-header size at +16); the optional
//! header (magic 0x10B PE32 or 0x20B PE32+, subsystem at +68, `NumberOfRvaAndSizes` at +92/+108
//! followed by the 8-byte data directories). The certificate table directory holds a *file
//! offset* (not an RVA) and a size; its entries are 8-byte aligned.

use serde::Serialize;
use std::fmt;

/// IMAGE_FILE_MACHINE_AMD64.
pub const MACHINE_X64: u16 = 0x8664;
/// IMAGE_FILE_MACHINE_ARM64.
pub const MACHINE_ARM64: u16 = 0xaa64;
/// IMAGE_FILE_MACHINE_I386.
pub const MACHINE_I386: u16 = 0x014c;
/// IMAGE_FILE_MACHINE_RISCV64.
pub const MACHINE_RISCV64: u16 = 0x5064;

/// WIN_CERT_REVISION_2_0.
pub const WIN_CERT_REVISION_2_0: u16 = 0x0200;
/// WIN_CERT_TYPE_PKCS_SIGNED_DATA.
pub const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;

/// Most certificate-table entries looked at.
const MAX_CERT_ENTRIES: usize = 16;

/// Why a file is not a PE image we can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PeError {
    /// No `MZ` at offset 0.
    NotMz,
    /// `e_lfanew` points outside the file or there is no `PE\0\0` there.
    NoPeSignature,
    /// The COFF or optional header is cut short.
    Truncated,
    /// Optional header magic neither 0x10B nor 0x20B.
    BadOptionalMagic {
        /// The magic found.
        magic: u16,
    },
    /// The certificate table directory points outside the file.
    CertTableOutOfBounds {
        /// File offset claimed.
        offset: u32,
        /// Size claimed.
        size: u32,
    },
}

impl fmt::Display for PeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeError::NotMz => write!(f, "not a PE image (no MZ header)"),
            PeError::NoPeSignature => write!(f, "no PE signature at e_lfanew"),
            PeError::Truncated => write!(f, "PE headers truncated"),
            PeError::BadOptionalMagic { magic } => {
                write!(f, "unknown PE optional header magic {magic:#06x}")
            }
            PeError::CertTableOutOfBounds { offset, size } => write!(
                f,
                "certificate table ({size} bytes at file offset {offset}) lies outside the file"
            ),
        }
    }
}

/// One `WIN_CERTIFICATE` entry of the certificate table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinCertificate<'a> {
    /// File offset of the entry.
    pub offset: usize,
    /// `wRevision`.
    pub revision: u16,
    /// `wCertificateType`.
    pub cert_type: u16,
    /// `bCertificate` (for PKCS_SIGNED_DATA: a DER `ContentInfo`).
    pub data: &'a [u8],
}

/// The parts of a PE image the boot checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeImage<'a> {
    /// COFF machine.
    pub machine: u16,
    /// Optional header magic: 0x10B (PE32) or 0x20B (PE32+).
    pub magic: u16,
    /// Subsystem (10 EFI application, 11 boot service driver, 12 runtime driver).
    pub subsystem: u16,
    /// Certificate-table entries, in file order.
    pub certificates: Vec<WinCertificate<'a>>,
    /// Problems with the certificate table that did not stop the header parse.
    pub cert_table_problems: Vec<String>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Machine, optional-header magic, subsystem and the certificate-table directory entry
/// (file offset, size; `None` when empty or absent).
type Headers = (u16, u16, u16, Option<(u32, u32)>);

/// Reads the headers of a PE image from its first bytes `b`.
fn headers(b: &[u8]) -> Result<Headers, PeError> {
    if b.get(0..2) != Some(b"MZ") {
        return Err(PeError::NotMz);
    }
    let lfanew = u32_at(b, 0x3c).ok_or(PeError::Truncated)? as usize;
    if b.get(lfanew..lfanew.saturating_add(4)) != Some(b"PE\0\0") {
        return Err(PeError::NoPeSignature);
    }
    let coff = lfanew + 4;
    let machine = u16_at(b, coff).ok_or(PeError::Truncated)?;
    let opt_size = usize::from(u16_at(b, coff + 16).ok_or(PeError::Truncated)?);
    let opt = coff + 20;
    let opt_hdr = b
        .get(opt..opt.saturating_add(opt_size))
        .ok_or(PeError::Truncated)?;
    let magic = u16_at(opt_hdr, 0).ok_or(PeError::Truncated)?;
    let (count_at, dirs_at) = match magic {
        0x10b => (92, 96),
        0x20b => (108, 112),
        _ => return Err(PeError::BadOptionalMagic { magic }),
    };
    let subsystem = u16_at(opt_hdr, 68).ok_or(PeError::Truncated)?;
    let count = u32_at(opt_hdr, count_at).ok_or(PeError::Truncated)?;
    if count <= 4 {
        return Ok((machine, magic, subsystem, None));
    }
    let dir = dirs_at + 4 * 8;
    let (Some(offset), Some(size)) = (u32_at(opt_hdr, dir), u32_at(opt_hdr, dir + 4)) else {
        // Directory 4 lies beyond the optional header the file declares: no table.
        return Ok((machine, magic, subsystem, None));
    };
    let table = (offset != 0 || size != 0).then_some((offset, size));
    Ok((machine, magic, subsystem, table))
}

/// Bytes from the start of an image read to find its headers.
pub const HEADER_READ: u64 = 64 << 10;

/// A copy of a PE image of `size` bytes holding only what [`parse`] reads, the headers and
/// the certificate table, fetched with `read(offset, len)`; the rest stays zero (allocated but
/// never touched, so not resident). Judging a 14 MiB kernel's signature then reads kilobytes.
/// `None` when a read fails or the size does not fit in memory.
pub fn sparse_image(
    size: u64,
    read: &mut dyn FnMut(u64, u64) -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    let len = usize::try_from(size).ok()?;
    let head = read(0, size.min(HEADER_READ))?;
    let mut img = vec![0u8; len];
    let n = head.len().min(len);
    img[..n].copy_from_slice(&head[..n]);
    if let Ok((_, _, _, Some((offset, table)))) = headers(&head) {
        let (offset, table) = (u64::from(offset), u64::from(table));
        if offset < size {
            let got = read(offset, table.min(size - offset))?;
            let at = offset as usize;
            let n = got.len().min(len - at);
            img[at..at + n].copy_from_slice(&got[..n]);
        }
    }
    Some(img)
}

/// Parses the headers of a PE image held in `b`.
pub fn parse(b: &[u8]) -> Result<PeImage<'_>, PeError> {
    let (machine, magic, subsystem, table) = headers(b)?;
    let mut img = PeImage {
        machine,
        magic,
        subsystem,
        certificates: Vec::new(),
        cert_table_problems: Vec::new(),
    };
    let Some((offset, size)) = table else {
        return Ok(img);
    };
    let start = offset as usize;
    let table = b
        .get(start..start.saturating_add(size as usize))
        .ok_or(PeError::CertTableOutOfBounds { offset, size })?;
    let mut pos = 0usize;
    while pos + 8 <= table.len() {
        if img.certificates.len() == MAX_CERT_ENTRIES {
            img.cert_table_problems
                .push(format!("more than {MAX_CERT_ENTRIES} certificate entries"));
            break;
        }
        let len = u32_at(table, pos).unwrap_or(0) as usize;
        let revision = u16_at(table, pos + 4).unwrap_or(0);
        let cert_type = u16_at(table, pos + 6).unwrap_or(0);
        if len < 8 || len > table.len() - pos {
            img.cert_table_problems.push(format!(
                "certificate entry at file offset {} claims {len} bytes, {} remain",
                start + pos,
                table.len() - pos
            ));
            break;
        }
        img.certificates.push(WinCertificate {
            offset: start + pos,
            revision,
            cert_type,
            data: &table[pos + 8..pos + len],
        });
        // Entries are quadword aligned.
        pos = match (pos + len).checked_next_multiple_of(8) {
            Some(p) => p,
            None => break,
        };
    }
    Ok(img)
}

/// Name of a COFF machine value (`x64`, `arm64`, as the gallery's architecture field).
pub fn machine_name(m: u16) -> &'static str {
    match m {
        MACHINE_X64 => "x64",
        MACHINE_ARM64 => "arm64",
        MACHINE_I386 => "ia32",
        MACHINE_RISCV64 => "riscv64",
        0x01c4 => "arm",
        _ => "unknown",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal PE32+ image with the given machine and certificate-table entries
    /// (revision, type, payload).
    pub(crate) fn build_pe(machine: u16, certs: &[(u16, u16, Vec<u8>)]) -> Vec<u8> {
        let lfanew = 0x80usize;
        let opt_size = 112 + 16 * 8;
        let headers = lfanew + 4 + 20 + opt_size;
        let mut b = vec![0u8; headers.next_multiple_of(8)];
        b[0..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&(lfanew as u32).to_le_bytes());
        b[lfanew..lfanew + 4].copy_from_slice(b"PE\0\0");
        let coff = lfanew + 4;
        b[coff..coff + 2].copy_from_slice(&machine.to_le_bytes());
        b[coff + 16..coff + 18].copy_from_slice(&(opt_size as u16).to_le_bytes());
        let opt = coff + 20;
        b[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        b[opt + 68..opt + 70].copy_from_slice(&10u16.to_le_bytes());
        b[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
        if !certs.is_empty() {
            let table_at = b.len();
            for (rev, ty, data) in certs {
                let len = 8 + data.len();
                b.extend_from_slice(&(len as u32).to_le_bytes());
                b.extend_from_slice(&rev.to_le_bytes());
                b.extend_from_slice(&ty.to_le_bytes());
                b.extend_from_slice(data);
                b.resize(b.len().next_multiple_of(8), 0);
            }
            let size = (b.len() - table_at) as u32;
            let d = opt + 112 + 4 * 8;
            b[d..d + 4].copy_from_slice(&(table_at as u32).to_le_bytes());
            b[d + 4..d + 8].copy_from_slice(&size.to_le_bytes());
        }
        b
    }

    #[test]
    fn parses_minimal_image() {
        let b = build_pe(
            MACHINE_ARM64,
            &[(0x200, 2, vec![1, 2, 3]), (0x200, 2, vec![4; 9])],
        );
        let p = parse(&b).unwrap();
        assert_eq!(p.machine, MACHINE_ARM64);
        assert_eq!(machine_name(p.machine), "arm64");
        assert_eq!(p.subsystem, 10);
        assert_eq!(p.certificates.len(), 2);
        assert_eq!(p.certificates[0].data, &[1, 2, 3]);
        assert_eq!(p.certificates[1].data, &[4; 9]);
        assert!(p.cert_table_problems.is_empty());
    }

    #[test]
    fn negative_cases() {
        assert_eq!(parse(b""), Err(PeError::NotMz));
        assert_eq!(parse(b"ELF"), Err(PeError::NotMz));
        let good = build_pe(MACHINE_X64, &[(0x200, 2, vec![0x30, 0x00])]);
        // e_lfanew pointing past the end
        let mut b = good.clone();
        b[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&b), Err(PeError::NoPeSignature));
        // short MZ stub
        assert_eq!(parse(b"MZ\0\0"), Err(PeError::Truncated));
        // bad optional magic
        let mut b = good.clone();
        b[0x80 + 24] = 0x99;
        assert!(matches!(parse(&b), Err(PeError::BadOptionalMagic { .. })));
        // optional header size larger than the file
        let mut b = good.clone();
        b[0x80 + 20..0x80 + 22].copy_from_slice(&0xffffu16.to_le_bytes());
        assert_eq!(parse(&b), Err(PeError::Truncated));
        // certificate table beyond the end
        let mut b = good.clone();
        let d = 0x80 + 24 + 112 + 32;
        b[d..d + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        assert!(matches!(
            parse(&b),
            Err(PeError::CertTableOutOfBounds { .. })
        ));
        // an entry claiming more than the table holds, or less than its own header
        for claim in [0u32, 7, 0xffff_ffff] {
            let mut b = good.clone();
            let at = good.len() - 16;
            b[at..at + 4].copy_from_slice(&claim.to_le_bytes());
            let p = parse(&b).unwrap();
            assert!(p.certificates.is_empty());
            assert_eq!(p.cert_table_problems.len(), 1);
        }
        // no data directories at all
        let mut b = good.clone();
        b[0x80 + 24 + 108..0x80 + 24 + 112].copy_from_slice(&0u32.to_le_bytes());
        assert!(parse(&b).unwrap().certificates.is_empty());
        // every truncation of a valid image
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
    }
}
