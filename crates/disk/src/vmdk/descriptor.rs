//! The text descriptor of a VMDK: embedded in a sparse extent (monolithicSparse,
//! streamOptimized) or a small file of its own (twoGbMaxExtent*, monolithicFlat, vmfs).
//!
//! ```text
//! # Disk DescriptorFile
//! version=1
//! CID=5ec37f99
//! parentCID=ffffffff
//! createType="twoGbMaxExtentSparse"
//! RW 4192256 SPARSE "disk-s001.vmdk"
//! RW 20480 FLAT "disk-flat.vmdk" 0
//! RW 2048 ZERO
//! ddb.geometry.cylinders = "20"
//! ```
//!
//! The extents, in order, make up the virtual disk. File names are relative to the folder of
//! the descriptor; the reader never opens them itself (see [`super::extent_path`]).

use super::VmdkError;

/// Largest descriptor read: 1 MiB (qemu refuses larger descriptor files; a real one is under
/// 2 KiB even with thousands of extents... of lines of 40 bytes: 1 MiB holds ~25000 extents).
pub const MAX_DESCRIPTOR_BYTES: u64 = 1 << 20;
/// Most extents accepted: 65536 (64 TiB in the 2 GB extents of twoGbMaxExtent* needs 32768).
pub const MAX_EXTENTS: usize = 1 << 16;
/// Longest extent file name accepted (Linux's PATH_MAX).
pub const MAX_NAME_BYTES: usize = 4096;
/// The text a descriptor file starts with.
pub const DESCRIPTOR_SIGNATURE: &str = "# Disk DescriptorFile";
/// `parentCID` of a disk without a parent.
pub const NO_PARENT_CID: u32 = 0xFFFF_FFFF;

/// Access of an extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `RW`
    ReadWrite,
    /// `RDONLY`
    ReadOnly,
    /// `NOACCESS`
    NoAccess,
}

/// Type of an extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtentType {
    /// Raw bytes of a file, from an offset (`FLAT`).
    Flat,
    /// A hosted sparse extent with its own `KDMV` header (`SPARSE`).
    Sparse,
    /// Reads as zeros, no file (`ZERO`).
    Zero,
    /// Raw bytes of an ESX file (`VMFS`), read like `FLAT`.
    Vmfs,
    /// ESX sparse (`VMFSSPARSE`, COWD): not read by vhdprep.
    VmfsSparse,
    /// ESX SE sparse (`SESPARSE`): not read by vhdprep.
    SeSparse,
    /// A raw device mapping (`VMFSRDM`, `VMFSRAW`): not read by vhdprep.
    VmfsRaw,
}

impl ExtentType {
    fn parse(s: &str) -> Option<ExtentType> {
        Some(match s {
            "FLAT" => ExtentType::Flat,
            "SPARSE" => ExtentType::Sparse,
            "ZERO" => ExtentType::Zero,
            "VMFS" => ExtentType::Vmfs,
            "VMFSSPARSE" => ExtentType::VmfsSparse,
            "SESPARSE" => ExtentType::SeSparse,
            "VMFSRDM" | "VMFSRAW" => ExtentType::VmfsRaw,
            _ => return None,
        })
    }

    /// The name used in descriptors.
    pub fn name(self) -> &'static str {
        match self {
            ExtentType::Flat => "FLAT",
            ExtentType::Sparse => "SPARSE",
            ExtentType::Zero => "ZERO",
            ExtentType::Vmfs => "VMFS",
            ExtentType::VmfsSparse => "VMFSSPARSE",
            ExtentType::SeSparse => "SESPARSE",
            ExtentType::VmfsRaw => "VMFSRDM",
        }
    }
}

/// One extent line of a descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentDesc {
    /// Access mode.
    pub access: Access,
    /// Size in sectors.
    pub sectors: u64,
    /// Type.
    pub kind: ExtentType,
    /// File name, relative to the descriptor's folder (`None` for `ZERO`).
    pub file: Option<String>,
    /// Offset into the file in sectors (`FLAT`; 0 otherwise).
    pub offset: u64,
}

/// A parsed descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// `version`.
    pub version: Option<u32>,
    /// `CID`: content id, changed on every write.
    pub cid: Option<u32>,
    /// `parentCID`: the parent's CID, or [`NO_PARENT_CID`].
    pub parent_cid: Option<u32>,
    /// `createType` (monolithicSparse, streamOptimized, twoGbMaxExtentSparse, ...).
    pub create_type: Option<String>,
    /// `parentFileNameHint`: where the parent of a delta disk was.
    pub parent_file_name_hint: Option<String>,
    /// The extents, in order.
    pub extents: Vec<ExtentDesc>,
    /// The `ddb.*` entries (geometry, adapter type, tools version, uuid...), in order.
    pub ddb: Vec<(String, String)>,
}

impl Descriptor {
    /// Parses descriptor text found at byte `offset` of the file. Text after a NUL is ignored
    /// (the embedded descriptor is NUL-padded); text over [`MAX_DESCRIPTOR_BYTES`] is refused.
    pub fn parse(text: &[u8], offset: u64) -> Result<Descriptor, VmdkError> {
        if text.len() as u64 > MAX_DESCRIPTOR_BYTES {
            return Err(VmdkError::DescriptorTooLarge {
                offset,
                len: text.len() as u64,
            });
        }
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        let text = String::from_utf8_lossy(&text[..end]);
        let mut d = Descriptor::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &'static str| VmdkError::BadDescriptor {
                offset,
                line: n + 1,
                why,
            };
            let first = line.split_ascii_whitespace().next().unwrap_or("");
            if matches!(first, "RW" | "RDONLY" | "NOACCESS") {
                if d.extents.len() >= MAX_EXTENTS {
                    return Err(bad("more than 65536 extents"));
                }
                d.extents.push(parse_extent(line).map_err(bad)?);
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(bad("neither an extent nor key=value"));
            };
            let key = key.trim();
            let value = unquote(value.trim());
            let hex = |v: &str| u32::from_str_radix(v, 16).map_err(|_| bad("a CID is not hex"));
            match key {
                "version" => {
                    d.version = Some(value.parse().map_err(|_| bad("bad version"))?);
                }
                "CID" => d.cid = Some(hex(value)?),
                "parentCID" => d.parent_cid = Some(hex(value)?),
                "createType" => d.create_type = Some(value.to_owned()),
                "parentFileNameHint" => d.parent_file_name_hint = Some(value.to_owned()),
                k if k.starts_with("ddb.") => {
                    d.ddb.push((k.to_owned(), value.to_owned()));
                }
                _ => {}
            }
        }
        if d.extents.is_empty() {
            return Err(VmdkError::NoExtents { offset });
        }
        Ok(d)
    }

    /// True when the descriptor says the disk has a parent (a delta disk).
    pub fn has_parent(&self) -> bool {
        matches!(self.parent_cid, Some(c) if c != NO_PARENT_CID)
    }

    /// Virtual size: the sum of the extents, in bytes.
    pub fn virtual_size(&self) -> Option<u64> {
        self.extents
            .iter()
            .try_fold(0u64, |a, e| a.checked_add(e.sectors.checked_mul(512)?))
    }

    /// A `ddb.*` value (e.g. `ddb.adapterType`).
    pub fn ddb(&self, key: &str) -> Option<&str> {
        self.ddb
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`
fn parse_extent(line: &str) -> Result<ExtentDesc, &'static str> {
    let mut rest = line;
    let mut word = || {
        let t = rest.trim_start();
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        let (w, r) = t.split_at(end);
        rest = r;
        w
    };
    let access = match word() {
        "RW" => Access::ReadWrite,
        "RDONLY" => Access::ReadOnly,
        _ => Access::NoAccess,
    };
    let sectors: u64 = word().parse().map_err(|_| "bad extent size")?;
    let kind = ExtentType::parse(word()).ok_or("unknown extent type")?;
    let tail = rest.trim_start();
    let (file, after) = if let Some(q) = tail.strip_prefix('"') {
        let close = q.find('"').ok_or("unterminated extent file name")?;
        (Some(&q[..close]), &q[close + 1..])
    } else {
        (None, tail)
    };
    let offset = match after.split_ascii_whitespace().next() {
        Some(o) => o.parse().map_err(|_| "bad extent offset")?,
        None => 0,
    };
    if let Some(f) = file {
        if f.is_empty() || f.len() > MAX_NAME_BYTES {
            return Err("extent file name empty or longer than 4096 bytes");
        }
    }
    match (kind, file) {
        (ExtentType::Zero, _) => {}
        (_, None) => return Err("extent without a file name"),
        _ => {}
    }
    Ok(ExtentDesc {
        access,
        sectors,
        kind,
        file: if kind == ExtentType::Zero {
            None
        } else {
            file.map(str::to_owned)
        },
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_TWOGB: &str = "# Disk DescriptorFile\nversion=1\nCID=5ec37f99\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n\n# Extent description\nRW 4192256 SPARSE \"x-s001.vmdk\"\nRW 20480 SPARSE \"x-s002.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"20\"\nddb.adapterType = \"ide\"\n";

    #[test]
    fn parses_qemu_descriptor() {
        let d = Descriptor::parse(QEMU_TWOGB.as_bytes(), 0).unwrap();
        assert_eq!(d.cid, Some(0x5ec37f99));
        assert!(!d.has_parent());
        assert_eq!(d.create_type.as_deref(), Some("twoGbMaxExtentSparse"));
        assert_eq!(d.extents.len(), 2);
        assert_eq!(d.extents[1].file.as_deref(), Some("x-s002.vmdk"));
        assert_eq!(d.extents[1].kind, ExtentType::Sparse);
        assert_eq!(d.virtual_size(), Some((4192256 + 20480) * 512));
        assert_eq!(d.ddb("ddb.adapterType"), Some("ide"));
    }

    #[test]
    fn flat_zero_spaces_and_parent() {
        let t = "version=1\r\nparentCID=12ab\r\nparentFileNameHint=\"base disk.vmdk\"\r\nRDONLY 100 FLAT \"my disk-flat.vmdk\" 7\r\nNOACCESS 8 ZERO\r\n\0garbage";
        let d = Descriptor::parse(t.as_bytes(), 0).unwrap();
        assert!(d.has_parent());
        assert_eq!(d.parent_file_name_hint.as_deref(), Some("base disk.vmdk"));
        assert_eq!(
            d.extents[0],
            ExtentDesc {
                access: Access::ReadOnly,
                sectors: 100,
                kind: ExtentType::Flat,
                file: Some("my disk-flat.vmdk".into()),
                offset: 7
            }
        );
        assert_eq!(d.extents[1].kind, ExtentType::Zero);
        assert_eq!(d.extents[1].file, None);
    }

    #[test]
    fn rejects_bad_lines() {
        for t in [
            "RW x SPARSE \"a\"",
            "RW 10 WEIRD \"a\"",
            "RW 10 FLAT \"a",
            "RW 10 FLAT",
            "RW 10 FLAT \"a\" z",
            "CID=zz\nRW 1 ZERO",
            "garbage line\nRW 1 ZERO",
            "RW 99999999999999999999 FLAT \"a\"",
        ] {
            assert!(
                matches!(
                    Descriptor::parse(t.as_bytes(), 0),
                    Err(VmdkError::BadDescriptor { .. })
                ),
                "{t}"
            );
        }
        assert!(matches!(
            Descriptor::parse(b"version=1\n", 0),
            Err(VmdkError::NoExtents { .. })
        ));
        let big = vec![b'#'; (MAX_DESCRIPTOR_BYTES + 1) as usize];
        assert!(matches!(
            Descriptor::parse(&big, 0),
            Err(VmdkError::DescriptorTooLarge { .. })
        ));
        // Sizes whose sum overflows are caught by virtual_size.
        let t = format!("RW {} ZERO\nRW {} ZERO\n", u64::MAX / 512, u64::MAX / 512);
        assert_eq!(
            Descriptor::parse(t.as_bytes(), 0).unwrap().virtual_size(),
            None
        );
    }
}
