//! The region table (two copies, at 192 KiB and 256 KiB): where the BAT and the metadata
//! region are. Unknown regions marked required make the file unreadable, as [MS-VHDX] says.

use super::error::VhdxError;
use super::{crc_with_zeroed, le, KIB64, MIB};
use crate::read_at::ReadAt;
use std::ops::Range;
use uuid::Uuid;

/// Region GUID of the block allocation table.
pub const BAT_GUID: Uuid = uuid::uuid!("2DC27766-F623-4200-9D64-115E9BFD4A08");
/// Region GUID of the metadata region.
pub const METADATA_GUID: Uuid = uuid::uuid!("8B7CA206-4790-4B9A-B8FE-575F050F886E");
/// Where the two copies are.
pub const REGION_TABLE_OFFSETS: [u64; 2] = [3 * KIB64, 4 * KIB64];
/// Size of one copy (the checksum covers all of it).
const TABLE_SIZE: usize = 64 << 10;
/// Entries a copy can hold ([MS-VHDX]: at most 2047).
const MAX_ENTRIES: u32 = 2047;

/// The regions a reader needs, as file byte ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    /// The block allocation table.
    pub bat: Range<u64>,
    /// The metadata region.
    pub metadata: Range<u64>,
    /// Which copy was used (196608 or 262144).
    pub table_offset: u64,
}

/// Parses one copy of the region table; `file_len` bounds the regions.
pub fn parse(b: &[u8], table_offset: u64, file_len: u64) -> Result<Regions, String> {
    if b.len() < TABLE_SIZE {
        return Err("is cut short by the end of the file".into());
    }
    if &b[..4] != b"regi" {
        return Err("lacks its 'regi' signature".into());
    }
    let stored = le::u32(b, 4);
    let computed = crc_with_zeroed(&b[..TABLE_SIZE], 4);
    if stored != computed {
        return Err(format!(
            "has checksum {stored:#010x} but its bytes give {computed:#010x}"
        ));
    }
    let count = le::u32(b, 8);
    if count > MAX_ENTRIES {
        return Err(format!("claims {count} entries, more than {MAX_ENTRIES}"));
    }
    let (mut bat, mut meta) = (None, None);
    for i in 0..count as usize {
        let e = 16 + 32 * i;
        let guid = le::guid(b, e);
        let offset = le::u64(b, e + 16);
        let len = u64::from(le::u32(b, e + 24));
        let required = le::u32(b, e + 28) & 1 != 0;
        let entry_at = table_offset + e as u64;
        let slot = if guid == BAT_GUID {
            &mut bat
        } else if guid == METADATA_GUID {
            &mut meta
        } else if required {
            return Err(format!(
                "names region {guid} (entry at offset {entry_at}) as required, which vhdprep does not know"
            ));
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(format!("names region {guid} twice"));
        }
        if offset < MIB || offset % MIB != 0 || len == 0 || len % MIB != 0 {
            return Err(format!(
                "places region {guid} at offset {offset} with length {len}, not whole MiB after the first"
            ));
        }
        match offset.checked_add(len) {
            Some(end) if end <= file_len => *slot = Some(offset..end),
            _ => {
                return Err(format!(
                    "places region {guid} ({len} bytes at offset {offset}) outside the {file_len}-byte file"
                ))
            }
        }
    }
    match (bat, meta) {
        (Some(bat), Some(metadata)) => Ok(Regions {
            bat,
            metadata,
            table_offset,
        }),
        (None, _) => Err("has no BAT region".into()),
        (_, None) => Err("has no metadata region".into()),
    }
}

/// Reads both copies and returns the first valid one.
pub fn read_regions(file: &dyn ReadAt) -> Result<Regions, VhdxError> {
    let mut buf = vec![0u8; TABLE_SIZE];
    let mut why = Vec::new();
    for off in REGION_TABLE_OFFSETS {
        match file.read_exact_at(&mut buf, off) {
            Ok(()) => match parse(&buf, off, file.len()) {
                Ok(r) => return Ok(r),
                Err(e) => why.push(e),
            },
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                why.push("is cut short by the end of the file".into())
            }
            Err(e) => return Err(VhdxError::io("region table", off)(e)),
        }
    }
    let second = why.pop().unwrap_or_default();
    let first = why.pop().unwrap_or_default();
    Err(VhdxError::NoValidRegionTable { first, second })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A region table copy with the given (guid, offset, len, required) entries.
    pub(crate) fn table_bytes(entries: &[(Uuid, u64, u32, bool)]) -> Vec<u8> {
        let mut b = vec![0u8; TABLE_SIZE];
        b[..4].copy_from_slice(b"regi");
        b[8..12].copy_from_slice(&(entries.len() as u32).to_le_bytes());
        for (i, (g, off, len, req)) in entries.iter().enumerate() {
            let e = 16 + 32 * i;
            b[e..e + 16].copy_from_slice(&g.to_bytes_le());
            b[e + 16..e + 24].copy_from_slice(&off.to_le_bytes());
            b[e + 24..e + 28].copy_from_slice(&len.to_le_bytes());
            b[e + 28..e + 32].copy_from_slice(&u32::from(*req).to_le_bytes());
        }
        let c = crc_with_zeroed(&b, 4);
        b[4..8].copy_from_slice(&c.to_le_bytes());
        b
    }

    #[test]
    fn finds_bat_and_metadata_and_refuses_bad_tables() {
        let m = MIB as u32;
        let ok = table_bytes(&[
            (BAT_GUID, 3 * MIB, m, true),
            (METADATA_GUID, 2 * MIB, m, true),
        ]);
        let r = parse(&ok, 3 * KIB64, 8 * MIB).unwrap();
        assert_eq!(r.bat, 3 * MIB..4 * MIB);
        assert_eq!(r.metadata, 2 * MIB..3 * MIB);
        let outside = parse(&ok, 3 * KIB64, 3 * MIB).unwrap_err();
        assert!(
            outside.contains("outside the 3145728-byte file"),
            "{outside}"
        );
        let unknown = Uuid::from_u128(42);
        let req = table_bytes(&[(unknown, 5 * MIB, m, true)]);
        assert!(parse(&req, 3 * KIB64, 8 * MIB)
            .unwrap_err()
            .contains("required"));
        let opt = table_bytes(&[
            (unknown, 5 * MIB, m, false),
            (BAT_GUID, 3 * MIB, m, true),
            (METADATA_GUID, 2 * MIB, m, true),
        ]);
        assert!(parse(&opt, 3 * KIB64, 8 * MIB).is_ok());
        let in_header = table_bytes(&[(BAT_GUID, 0, m, true), (METADATA_GUID, 2 * MIB, m, true)]);
        assert!(parse(&in_header, 3 * KIB64, 8 * MIB)
            .unwrap_err()
            .contains("not whole MiB"));
        let huge = table_bytes(&[(BAT_GUID, u64::MAX - MIB + 1, m, true)]);
        assert!(parse(&huge, 3 * KIB64, 8 * MIB)
            .unwrap_err()
            .contains("outside"));
        let mut count = ok.clone();
        count[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let c = crc_with_zeroed(&count, 4);
        count[4..8].copy_from_slice(&c.to_le_bytes());
        assert!(parse(&count, 3 * KIB64, 8 * MIB)
            .unwrap_err()
            .contains("4294967295 entries"));
        let mut crc = ok.clone();
        crc[9000] = 1;
        assert!(parse(&crc, 3 * KIB64, 8 * MIB)
            .unwrap_err()
            .contains("checksum"));
    }
}
