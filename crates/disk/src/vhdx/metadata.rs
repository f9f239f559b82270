//! The metadata region: a table of items identified by GUID. vhdprep reads the file
//! parameters (block size, leave-blocks-allocated, has-parent), the virtual size and disk id,
//! the logical and physical sector sizes and the parent locator of differencing disks.

use super::error::VhdxError;
use super::{le, KIB64};
use crate::read_at::ReadAt;
use std::ops::Range;
use uuid::Uuid;

/// File parameters: block size and flags.
pub const FILE_PARAMETERS: Uuid = uuid::uuid!("CAA16737-FA36-4D43-B3B6-33F0AA44E76B");
/// Virtual disk size.
pub const VIRTUAL_DISK_SIZE: Uuid = uuid::uuid!("2FA54224-CD1B-4876-B211-5DBED83BF4B8");
/// Virtual disk id (page 83 data).
pub const VIRTUAL_DISK_ID: Uuid = uuid::uuid!("BECA12AB-B2E6-4523-93EF-C309E000C746");
/// Logical sector size.
pub const LOGICAL_SECTOR_SIZE: Uuid = uuid::uuid!("8141BF1D-A96F-4709-BA47-F233A8FAAB5F");
/// Physical sector size.
pub const PHYSICAL_SECTOR_SIZE: Uuid = uuid::uuid!("CDA348C7-445D-4471-9CC9-E9885251C556");
/// Parent locator (differencing disks).
pub const PARENT_LOCATOR: Uuid = uuid::uuid!("A8D35F2B-B30B-454D-ABF7-D3D84834AB0C");
/// Locator type of a VHDX parent.
pub const VHDX_PARENT_LOCATOR_TYPE: Uuid = uuid::uuid!("B04AEFB7-D19E-4A81-B789-25B8E9445913");

/// Size of the metadata table at the start of the region.
const TABLE_SIZE: usize = 64 << 10;
/// Most entries a table holds ([MS-VHDX]: 2047).
const MAX_ENTRIES: u16 = 2047;
/// Largest parent locator read: [MS-VHDX] caps each item at 1 MiB.
pub const MAX_ITEM_LEN: u32 = 1 << 20;
/// Largest virtual size: [MS-VHDX]'s 64 TiB.
pub const MAX_VIRTUAL_SIZE: u64 = 64 << 40;
/// Block sizes [MS-VHDX] allows: powers of two from 1 MiB to 256 MiB.
pub const BLOCK_SIZES: Range<u32> = (1 << 20)..((256 << 20) + 1);

/// The parent locator of a differencing VHDX: how to find the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentLocator {
    /// Locator type ([`VHDX_PARENT_LOCATOR_TYPE`] for a VHDX parent).
    pub locator_type: Uuid,
    /// Every key/value pair, in file order.
    pub entries: Vec<(String, String)>,
}

impl ParentLocator {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// `parent_linkage`: the parent's data write GUID, which must match.
    pub fn parent_linkage(&self) -> Option<&str> {
        self.get("parent_linkage")
    }
    /// `relative_path`: the parent's path relative to the child.
    pub fn relative_path(&self) -> Option<&str> {
        self.get("relative_path")
    }
    /// `volume_path`: the parent's path with a volume GUID.
    pub fn volume_path(&self) -> Option<&str> {
        self.get("volume_path")
    }
    /// `absolute_win32_path`: the parent's absolute Windows path.
    pub fn absolute_win32_path(&self) -> Option<&str> {
        self.get("absolute_win32_path")
    }
    /// The entries as `key=value` joined by `, ` (for error messages).
    pub fn describe(&self) -> String {
        if self.entries.is_empty() {
            return "(no entries)".into();
        }
        self.entries
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the metadata region says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhdxMetadata {
    /// Payload block size in bytes (1 MiB .. 256 MiB, a power of two).
    pub block_size: u32,
    /// Blocks are pre-allocated (a "fixed" VHDX).
    pub leave_blocks_allocated: bool,
    /// The disk is a differencing disk.
    pub has_parent: bool,
    /// Virtual disk size in bytes.
    pub virtual_size: u64,
    /// Virtual disk id, if present.
    pub virtual_disk_id: Option<Uuid>,
    /// Logical sector size (512 or 4096).
    pub logical_sector_size: u32,
    /// Physical sector size (512 or 4096).
    pub physical_sector_size: u32,
    /// The parent locator (differencing disks).
    pub parent_locator: Option<ParentLocator>,
}

fn meta_err(what: &'static str, offset: u64, why: impl Into<String>) -> VhdxError {
    VhdxError::Metadata {
        what,
        offset,
        why: why.into(),
    }
}

/// Reads a fixed-size item.
fn item<const N: usize>(
    file: &dyn ReadAt,
    what: &'static str,
    at: Option<(u64, u32)>,
) -> Result<Option<[u8; N]>, VhdxError> {
    let Some((off, len)) = at else {
        return Ok(None);
    };
    if (len as usize) < N {
        return Err(meta_err(what, off, format!("is {len} bytes, needs {N}")));
    }
    let mut b = [0u8; N];
    file.read_exact_at(&mut b, off)
        .map_err(VhdxError::io("metadata item", off))?;
    Ok(Some(b))
}

/// Parses the parent locator item `b`, at file offset `off`.
pub fn parse_parent_locator(b: &[u8], off: u64) -> Result<ParentLocator, VhdxError> {
    if b.len() < 20 {
        return Err(meta_err(
            "parent locator",
            off,
            "is shorter than its 20-byte header",
        ));
    }
    let locator_type = le::guid(b, 0);
    let count = usize::from(le::u16(b, 18));
    let mut entries = Vec::with_capacity(count.min(256));
    for i in 0..count {
        let e = 20 + 12 * i;
        if e + 12 > b.len() {
            return Err(meta_err(
                "parent locator",
                off,
                format!(
                    "claims {count} entries but the {}-byte item holds fewer",
                    b.len()
                ),
            ));
        }
        let text = |o: usize, l: usize| -> Result<String, VhdxError> {
            let s = b.get(o..o.saturating_add(l)).ok_or_else(|| {
                meta_err(
                    "parent locator",
                    off,
                    format!(
                        "entry {i} has text at {o}+{l}, outside the {}-byte item",
                        b.len()
                    ),
                )
            })?;
            let units: Vec<u16> = s
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            Ok(String::from_utf16_lossy(&units))
        };
        let key = text(le::u32(b, e) as usize, usize::from(le::u16(b, e + 8)))?;
        let value = text(le::u32(b, e + 4) as usize, usize::from(le::u16(b, e + 10)))?;
        entries.push((key, value));
    }
    Ok(ParentLocator {
        locator_type,
        entries,
    })
}

/// Reads the metadata table and the items vhdprep uses from `region` (through the replayed
/// log, so items the log updated are read as updated).
pub fn read_metadata(file: &dyn ReadAt, region: Range<u64>) -> Result<VhdxMetadata, VhdxError> {
    let base = region.start;
    let region_len = region.end - region.start;
    let mut t = vec![0u8; TABLE_SIZE];
    file.read_exact_at(&mut t, base)
        .map_err(VhdxError::io("metadata table", base))?;
    if &t[..8] != b"metadata" {
        return Err(meta_err("table", base, "lacks its 'metadata' signature"));
    }
    let count = le::u16(&t, 10);
    if count > MAX_ENTRIES {
        return Err(meta_err(
            "table",
            base,
            format!("claims {count} entries, more than {MAX_ENTRIES}"),
        ));
    }
    let mut found: [Option<(u64, u32)>; 6] = [None; 6];
    let known = [
        FILE_PARAMETERS,
        VIRTUAL_DISK_SIZE,
        VIRTUAL_DISK_ID,
        LOGICAL_SECTOR_SIZE,
        PHYSICAL_SECTOR_SIZE,
        PARENT_LOCATOR,
    ];
    for i in 0..usize::from(count) {
        let e = 32 + 32 * i;
        let entry_at = base + e as u64;
        let guid = le::guid(&t, e);
        let off = le::u32(&t, e + 16);
        let len = le::u32(&t, e + 20);
        let required = le::u32(&t, e + 24) & 4 != 0;
        let Some(k) = known.iter().position(|g| *g == guid) else {
            if required {
                return Err(VhdxError::UnknownRequired {
                    what: "metadata item",
                    guid,
                    offset: entry_at,
                });
            }
            continue;
        };
        if found[k].is_some() {
            return Err(meta_err(
                "table",
                entry_at,
                format!("names item {guid} twice"),
            ));
        }
        let inside = u64::from(off) >= KIB64 && u64::from(off) + u64::from(len) <= region_len;
        if len > MAX_ITEM_LEN || !inside {
            return Err(meta_err(
                "table",
                entry_at,
                format!(
                    "places item {guid} ({len} bytes at {off}) outside the {region_len}-byte region's item area"
                ),
            ));
        }
        found[k] = Some((base + u64::from(off), len));
    }
    let missing = |what: &'static str| meta_err("table", base, format!("has no {what} item"));
    let fp =
        item::<8>(file, "file parameters", found[0])?.ok_or_else(|| missing("file parameters"))?;
    let vs = item::<8>(file, "virtual disk size", found[1])?
        .ok_or_else(|| missing("virtual disk size"))?;
    let id = item::<16>(file, "virtual disk id", found[2])?;
    let lss = item::<4>(file, "logical sector size", found[3])?
        .ok_or_else(|| missing("logical sector size"))?;
    let pss = item::<4>(file, "physical sector size", found[4])?
        .ok_or_else(|| missing("physical sector size"))?;
    let at = |k: usize| found[k].map(|(o, _)| o).unwrap_or(base);

    let block_size = le::u32(&fp, 0);
    let flags = le::u32(&fp, 4);
    if !block_size.is_power_of_two() || !BLOCK_SIZES.contains(&block_size) {
        return Err(meta_err(
            "file parameters",
            at(0),
            format!("block size {block_size} is not a power of two from 1 MiB to 256 MiB"),
        ));
    }
    let logical_sector_size = u32::from_le_bytes(lss);
    if logical_sector_size != 512 && logical_sector_size != 4096 {
        return Err(meta_err(
            "logical sector size",
            at(3),
            format!("{logical_sector_size} is neither 512 nor 4096"),
        ));
    }
    let physical_sector_size = u32::from_le_bytes(pss);
    if physical_sector_size != 512 && physical_sector_size != 4096 {
        return Err(meta_err(
            "physical sector size",
            at(4),
            format!("{physical_sector_size} is neither 512 nor 4096"),
        ));
    }
    let virtual_size = u64::from_le_bytes(vs);
    if virtual_size == 0
        || virtual_size > MAX_VIRTUAL_SIZE
        || virtual_size % u64::from(logical_sector_size) != 0
    {
        return Err(meta_err(
            "virtual disk size",
            at(1),
            format!(
                "{virtual_size} is not a whole number of {logical_sector_size}-byte sectors up to 64 TiB"
            ),
        ));
    }
    let has_parent = flags & 2 != 0;
    let parent_locator = match found[5] {
        Some((off, len)) => {
            let mut b = vec![0u8; len as usize];
            file.read_exact_at(&mut b, off)
                .map_err(VhdxError::io("parent locator", off))?;
            Some(parse_parent_locator(&b, off)?)
        }
        None if has_parent => return Err(missing("parent locator")),
        None => None,
    };
    Ok(VhdxMetadata {
        block_size,
        leave_blocks_allocated: flags & 1 != 0,
        has_parent,
        virtual_size,
        virtual_disk_id: id.map(Uuid::from_bytes_le),
        logical_sector_size,
        physical_sector_size,
        parent_locator,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vhdx::MIB;

    /// A metadata region (1 MiB) with the given items (guid, bytes, required).
    pub(crate) fn region_bytes(items: &[(Uuid, Vec<u8>, bool)]) -> Vec<u8> {
        let mut r = vec![0u8; MIB as usize];
        r[..8].copy_from_slice(b"metadata");
        r[10..12].copy_from_slice(&(items.len() as u16).to_le_bytes());
        let mut at = KIB64 as usize;
        for (i, (g, data, req)) in items.iter().enumerate() {
            let e = 32 + 32 * i;
            r[e..e + 16].copy_from_slice(&g.to_bytes_le());
            r[e + 16..e + 20].copy_from_slice(&(at as u32).to_le_bytes());
            r[e + 20..e + 24].copy_from_slice(&(data.len() as u32).to_le_bytes());
            r[e + 24..e + 28].copy_from_slice(&(if *req { 4u32 } else { 0 }).to_le_bytes());
            r[at..at + data.len()].copy_from_slice(data);
            at += data.len().div_ceil(8) * 8;
        }
        r
    }

    /// The standard items of a disk.
    pub(crate) fn items(bs: u32, flags: u32, size: u64, lss: u32) -> Vec<(Uuid, Vec<u8>, bool)> {
        let mut fp = bs.to_le_bytes().to_vec();
        fp.extend_from_slice(&flags.to_le_bytes());
        vec![
            (FILE_PARAMETERS, fp, true),
            (VIRTUAL_DISK_SIZE, size.to_le_bytes().to_vec(), true),
            (LOGICAL_SECTOR_SIZE, lss.to_le_bytes().to_vec(), true),
            (PHYSICAL_SECTOR_SIZE, 4096u32.to_le_bytes().to_vec(), true),
        ]
    }

    /// A parent locator item with the given pairs.
    pub(crate) fn locator_bytes(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut b = vec![0u8; 20 + 12 * pairs.len()];
        b[..16].copy_from_slice(&VHDX_PARENT_LOCATOR_TYPE.to_bytes_le());
        b[18..20].copy_from_slice(&(pairs.len() as u16).to_le_bytes());
        for (i, (k, v)) in pairs.iter().enumerate() {
            let e = 20 + 12 * i;
            let enc = |s: &str| {
                s.encode_utf16()
                    .flat_map(|u| u.to_le_bytes())
                    .collect::<Vec<u8>>()
            };
            let (k, v) = (enc(k), enc(v));
            let ko = b.len();
            b.extend_from_slice(&k);
            let vo = b.len();
            b.extend_from_slice(&v);
            b[e..e + 4].copy_from_slice(&(ko as u32).to_le_bytes());
            b[e + 4..e + 8].copy_from_slice(&(vo as u32).to_le_bytes());
            b[e + 8..e + 10].copy_from_slice(&(k.len() as u16).to_le_bytes());
            b[e + 10..e + 12].copy_from_slice(&(v.len() as u16).to_le_bytes());
        }
        b
    }

    fn read(items: &[(Uuid, Vec<u8>, bool)]) -> Result<VhdxMetadata, VhdxError> {
        let r = region_bytes(items);
        read_metadata(&r, 0..MIB)
    }

    #[test]
    fn reads_the_standard_items() {
        let m = read(&items(32 << 20, 1, 1 << 30, 512)).unwrap();
        assert_eq!(m.block_size, 32 << 20);
        assert!(m.leave_blocks_allocated && !m.has_parent);
        assert_eq!(m.virtual_size, 1 << 30);
        assert_eq!((m.logical_sector_size, m.physical_sector_size), (512, 4096));
        assert_eq!(m.parent_locator, None);
    }

    #[test]
    fn reads_a_parent_locator() {
        let mut it = items(2 << 20, 2, 1 << 30, 512);
        it.push((
            PARENT_LOCATOR,
            locator_bytes(&[
                ("parent_linkage", "{abc}"),
                ("relative_path", ".\\base.vhdx"),
            ]),
            true,
        ));
        let m = read(&it).unwrap();
        let p = m.parent_locator.unwrap();
        assert_eq!(p.parent_linkage(), Some("{abc}"));
        assert_eq!(p.relative_path(), Some(".\\base.vhdx"));
        assert_eq!(p.volume_path(), None);
        assert_eq!(
            p.describe(),
            "parent_linkage={abc}, relative_path=.\\base.vhdx"
        );
        // has_parent without a locator
        let e = read(&items(2 << 20, 2, 1 << 30, 512)).unwrap_err();
        assert!(e.to_string().contains("no parent locator"), "{e}");
    }

    #[test]
    fn refuses_bad_values() {
        let e = read(&items(3 << 20, 0, 1 << 30, 512)).unwrap_err();
        assert!(e.to_string().contains("block size 3145728"), "{e}");
        let e = read(&items(512 << 20, 0, 1 << 30, 512)).unwrap_err();
        assert!(e.to_string().contains("block size"), "{e}");
        let e = read(&items(1 << 20, 0, 1 << 30, 1024)).unwrap_err();
        assert!(e.to_string().contains("1024 is neither"), "{e}");
        let e = read(&items(1 << 20, 0, u64::MAX - 511, 512)).unwrap_err();
        assert!(e.to_string().contains("up to 64 TiB"), "{e}");
        let e = read(&items(1 << 20, 0, 1000, 512)).unwrap_err();
        assert!(e.to_string().contains("virtual disk size"), "{e}");
        let mut it = items(1 << 20, 0, 1 << 30, 512);
        it.push((Uuid::from_u128(7), vec![1], true));
        assert!(matches!(read(&it), Err(VhdxError::UnknownRequired { .. })));
        let mut it = items(1 << 20, 0, 1 << 30, 512);
        it.remove(1);
        assert!(read(&it)
            .unwrap_err()
            .to_string()
            .contains("no virtual disk size"));
        // An item placed past the region, and one claiming u32::MAX bytes.
        let mut r = region_bytes(&items(1 << 20, 0, 1 << 30, 512));
        r[48..52].copy_from_slice(&(MIB as u32).to_le_bytes());
        assert!(read_metadata(&r, 0..MIB)
            .unwrap_err()
            .to_string()
            .contains("outside"));
        r[48..52].copy_from_slice(&(KIB64 as u32).to_le_bytes());
        r[52..56].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_metadata(&r, 0..MIB)
            .unwrap_err()
            .to_string()
            .contains("outside"));
        let mut sig = region_bytes(&items(1 << 20, 0, 1 << 30, 512));
        sig[0] = b'x';
        assert!(read_metadata(&sig, 0..MIB)
            .unwrap_err()
            .to_string()
            .contains("signature"));
    }

    #[test]
    fn parent_locator_offsets_are_bounded() {
        let mut b = locator_bytes(&[("relative_path", "x")]);
        b[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_parent_locator(&b, 0)
            .unwrap_err()
            .to_string()
            .contains("outside"));
        let mut c = locator_bytes(&[]);
        c[18..20].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(parse_parent_locator(&c, 0)
            .unwrap_err()
            .to_string()
            .contains("65535 entries"));
    }
}
