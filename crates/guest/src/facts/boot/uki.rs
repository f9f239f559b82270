//! The section table of a PE/COFF EFI binary, and what it says when the binary is a unified
//! kernel image (UKI: systemd-stub with the kernel, initrd, command line and os-release
//! embedded as sections) or systemd-boot itself.
//!
//! Layout per the PE/COFF specification: `NumberOfSections` at COFF header +2, the section
//! table right after the optional header (COFF header +20 + `SizeOfOptionalHeader`), 40
//! bytes per section: name (8 bytes, NUL padded), `VirtualSize`, `VirtualAddress`,
//! `SizeOfRawData`, `PointerToRawData`. The payload of a section is the first
//! `min(VirtualSize, SizeOfRawData)` bytes at `PointerToRawData` (raw data is padded to the
//! file alignment; systemd-stub uses `VirtualSize`).
//!
//! UKI sections (UAPI.5 Unified Kernel Image specification): `.linux` (the kernel),
//! `.initrd`, `.cmdline`, `.osrel`, `.uname`, `.splash`, `.dtb`, `.pcrsig`, `.pcrpkey`,
//! `.sbat`, `.ucode`. systemd's EFI binaries carry `.sdmagic` with `#### LoaderInfo:
//! systemd-boot <version> ####` (the boot loader) or `systemd-stub` (the UKI stub).
//!
//! Bounds: at most [`MAX_SECTIONS`] entries; only the first [`HEADER_READ`] bytes are read for
//! the headers, text sections are read up to [`MAX_TEXT_SECTION`] bytes; every offset and size
//! is checked against the file size.

use crate::os_release::{self, OsRelease};
use serde::Serialize;

/// Bytes read from the start of a PE file to find the headers and the section table.
pub const HEADER_READ: u64 = 64 << 10;
/// Most section-table entries accepted (the PE/COFF loader limit is 96).
pub const MAX_SECTIONS: usize = 96;
/// Largest text section (`.cmdline`, `.osrel`, `.uname`, `.sdmagic`, `.sbat`) read.
pub const MAX_TEXT_SECTION: u64 = 64 << 10;
/// Size of one section-table entry.
const ENTRY: usize = 40;

/// Why a section table cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SectionError {
    /// The PE headers are not there (see [`super::pe::PeError`]).
    #[error("{reason}")]
    NotPe {
        /// What is wrong.
        reason: String,
    },
    /// `NumberOfSections` is above [`MAX_SECTIONS`].
    #[error("{count} sections claimed, more than the {MAX_SECTIONS} a PE image may have")]
    TooManySections {
        /// The count claimed.
        count: u16,
    },
    /// The section table runs past the bytes read or the file.
    #[error("the section table ({count} entries at file offset {offset}) runs past the headers read ({available} bytes)")]
    TableTruncated {
        /// Entries claimed.
        count: u16,
        /// Its file offset.
        offset: usize,
        /// Bytes available.
        available: usize,
    },
    /// A section's raw data lies outside the file.
    #[error("section {name} claims {size} bytes at file offset {offset}, outside the {file_size}-byte file")]
    SectionOutOfFile {
        /// Section name.
        name: String,
        /// `PointerToRawData`.
        offset: u64,
        /// Payload size.
        size: u64,
        /// File size.
        file_size: u64,
    },
    /// Reading the file failed.
    #[error("reading {len} bytes at offset {offset} failed")]
    Read {
        /// Offset.
        offset: u64,
        /// Length.
        len: u64,
    },
}

/// One section-table entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// Name (`.linux`), NUL padding removed, non-UTF-8 replaced.
    pub name: String,
    /// `VirtualSize`.
    pub virtual_size: u32,
    /// `VirtualAddress`.
    pub virtual_address: u32,
    /// `SizeOfRawData`.
    pub raw_size: u32,
    /// `PointerToRawData`.
    pub raw_offset: u32,
}

impl Section {
    /// File offset and length of the payload: `min(VirtualSize, SizeOfRawData)` bytes (all
    /// of the raw data when `VirtualSize` is 0).
    pub fn payload(&self) -> (u64, u64) {
        let len = match self.virtual_size {
            0 => self.raw_size,
            v => v.min(self.raw_size),
        };
        (u64::from(self.raw_offset), u64::from(len))
    }
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

/// The machine and the section table of the PE image whose first bytes are `head`, the file
/// being `file_size` bytes long. Every payload is checked to lie inside the file.
pub fn sections(head: &[u8], file_size: u64) -> Result<(u16, Vec<Section>), SectionError> {
    let img = super::pe::parse(head).map_err(|e| SectionError::NotPe {
        reason: e.to_string(),
    })?;
    // pe::parse checked MZ, e_lfanew and the optional header.
    let lfanew = u32_at(head, 0x3c).unwrap_or(0) as usize;
    let coff = lfanew + 4;
    let count = u16_at(head, coff + 2).unwrap_or(0);
    let opt_size = usize::from(u16_at(head, coff + 16).unwrap_or(0));
    if usize::from(count) > MAX_SECTIONS {
        return Err(SectionError::TooManySections { count });
    }
    let offset = coff + 20 + opt_size;
    let table = head
        .get(offset..offset + usize::from(count) * ENTRY)
        .ok_or(SectionError::TableTruncated {
            count,
            offset,
            available: head.len(),
        })?;
    let mut out = Vec::with_capacity(usize::from(count));
    for e in table.chunks_exact(ENTRY) {
        let raw_name = &e[..8];
        let end = raw_name.iter().position(|&b| b == 0).unwrap_or(8);
        let s = Section {
            name: String::from_utf8_lossy(&raw_name[..end]).into_owned(),
            virtual_size: u32_at(e, 8).unwrap_or(0),
            virtual_address: u32_at(e, 12).unwrap_or(0),
            raw_size: u32_at(e, 16).unwrap_or(0),
            raw_offset: u32_at(e, 20).unwrap_or(0),
        };
        let (at, len) = s.payload();
        if at.checked_add(len).is_none_or(|end| end > file_size) {
            return Err(SectionError::SectionOutOfFile {
                name: s.name,
                offset: at,
                size: len,
                file_size,
            });
        }
        out.push(s);
    }
    Ok((img.machine, out))
}

/// What a PE binary is, by its sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EfiKind {
    /// A unified kernel image: a `.linux` section.
    Uki,
    /// systemd-boot (`.sdmagic` says `systemd-boot`).
    SystemdBoot,
    /// Any other EFI binary.
    Other,
}

/// A byte range of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Range {
    /// File offset.
    pub offset: u64,
    /// Length.
    pub len: u64,
}

/// What a PE binary's sections say: its kind and, for a UKI, its parts.
#[derive(Debug, Clone, Serialize)]
pub struct EfiSections {
    /// COFF machine.
    pub machine: u16,
    /// The binary's kind.
    pub kind: EfiKind,
    /// Every section, in table order.
    pub sections: Vec<Section>,
    /// `.sdmagic` text (`#### LoaderInfo: systemd-boot 252.39-1~deb12u2 ####`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdmagic: Option<String>,
    /// `.linux`: the kernel image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linux: Option<Range>,
    /// `.initrd`: the initramfs (one or more concatenated archives).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initrd: Option<Range>,
    /// `.cmdline`, trailing NULs and whitespace removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// `.uname`: the kernel release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uname: Option<String>,
    /// `.osrel`, parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_release: Option<OsRelease>,
    /// Text sections cut at [`MAX_TEXT_SECTION`].
    pub problems: Vec<String>,
}

impl EfiSections {
    /// The section named `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The version systemd-boot shows for a UKI: os-release `IMAGE_VERSION`, `VERSION`,
    /// `VERSION_ID` or `BUILD_ID`, the first set.
    pub fn os_version(&self) -> Option<&str> {
        let o = self.os_release.as_ref()?;
        ["IMAGE_VERSION", "VERSION", "VERSION_ID", "BUILD_ID"]
            .iter()
            .find_map(|k| o.fields.get(*k).filter(|v| !v.is_empty()))
            .map(String::as_str)
    }

    /// The sort key systemd-boot infers for a UKI: os-release `IMAGE_ID`, else `ID`.
    pub fn os_sort_key(&self) -> Option<&str> {
        let o = self.os_release.as_ref()?;
        ["IMAGE_ID", "ID"]
            .iter()
            .find_map(|k| o.fields.get(*k).filter(|v| !v.is_empty()))
            .map(String::as_str)
    }
}

/// Reads the sections of the PE file of `size` bytes that `read(offset, len)` returns bytes of
/// (fewer bytes than asked means the file ended). The `.linux` and `.initrd` payloads are not
/// read, only located.
pub fn read(
    size: u64,
    read: &mut dyn FnMut(u64, u64) -> Option<Vec<u8>>,
) -> Result<EfiSections, SectionError> {
    let n = size.min(HEADER_READ);
    let head = read(0, n).ok_or(SectionError::Read { offset: 0, len: n })?;
    let (machine, sections) = self::sections(&head, size)?;
    let mut out = EfiSections {
        machine,
        kind: EfiKind::Other,
        sections,
        sdmagic: None,
        linux: None,
        initrd: None,
        cmdline: None,
        uname: None,
        os_release: None,
        problems: Vec::new(),
    };
    let mut text =
        |name: &str, problems: &mut Vec<String>| -> Result<Option<String>, SectionError> {
            let Some(s) = out.sections.iter().find(|s| s.name == name) else {
                return Ok(None);
            };
            let (at, len) = s.payload();
            if len > MAX_TEXT_SECTION {
                problems.push(format!(
                    "section {name} is {len} bytes; only the first {MAX_TEXT_SECTION} were read"
                ));
            }
            let want = len.min(MAX_TEXT_SECTION);
            let b = read(at, want).ok_or(SectionError::Read {
                offset: at,
                len: want,
            })?;
            let t = String::from_utf8_lossy(&b);
            Ok(Some(
                t.trim_end_matches(|c: char| c == '\0' || c.is_whitespace())
                    .to_string(),
            ))
        };
    let mut problems = Vec::new();
    let sdmagic = text(".sdmagic", &mut problems)?;
    let cmdline = text(".cmdline", &mut problems)?;
    let uname = text(".uname", &mut problems)?;
    let osrel = text(".osrel", &mut problems)?;
    out.problems = problems;
    out.sdmagic = sdmagic;
    out.cmdline = cmdline;
    out.uname = uname;
    out.os_release = osrel.map(|t| os_release::parse(&t));
    let range = |s: &Section| {
        let (offset, len) = s.payload();
        Range { offset, len }
    };
    out.linux = out.section(".linux").map(range);
    out.initrd = out.section(".initrd").map(range);
    out.kind = if out.linux.is_some() {
        EfiKind::Uki
    } else if out
        .sdmagic
        .as_deref()
        .is_some_and(|m| m.contains("LoaderInfo: systemd-boot"))
    {
        EfiKind::SystemdBoot
    } else {
        EfiKind::Other
    };
    Ok(out)
}

/// Reads the sections of a PE image held whole in `b`.
pub fn read_bytes(b: &[u8]) -> Result<EfiSections, SectionError> {
    read(b.len() as u64, &mut |at, len| {
        let at = usize::try_from(at).ok()?;
        let end = at.saturating_add(usize::try_from(len).ok()?).min(b.len());
        Some(b.get(at..end)?.to_vec())
    })
}

/// The release string a Linux x86 `bzImage` carries (boot protocol 2.00+: `HdrS` at 0x202,
/// `kernel_version` at 0x20E pointing 0x200 bytes before the string), its first word
/// (`6.1.0-13-amd64`). `None` for other images (arm64 `Image`, EFI zboot) or a bad pointer.
pub fn bzimage_release(head: &[u8]) -> Option<String> {
    if head.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let ptr = usize::from(u16_at(head, 0x20e)?);
    if ptr == 0 {
        return None;
    }
    let s = head.get(ptr + 0x200..)?;
    let s = &s[..s.len().min(256)];
    let end = s
        .iter()
        .position(|&c| c == 0 || c == b' ')
        .unwrap_or(s.len());
    let v = std::str::from_utf8(&s[..end]).ok()?;
    (!v.is_empty() && v.chars().all(|c| c.is_ascii_graphic())).then(|| v.to_string())
}

#[cfg(test)]
pub(crate) mod tests;
