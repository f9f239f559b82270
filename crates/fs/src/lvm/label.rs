//! The LVM2 physical volume label (`LABELONE`, one of the first four 512-byte sectors), the
//! `LVM2 001` PV header that follows it, and the metadata area header (`mda_header`) with its
//! raw locations.

use super::corrupt;
use crate::api::{FsError, FsResult, Volume};

/// Label magic.
pub const LABEL_ID: &[u8; 8] = b"LABELONE";
/// PV header type.
pub const LVM2_TYPE: &[u8; 8] = b"LVM2 001";
/// Magic of a metadata area header.
pub const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// Size of a metadata area header; the circular text buffer starts after it.
pub const MDA_HEADER_SIZE: u64 = 512;
/// The seed LVM uses for its CRCs.
pub const INITIAL_CRC: u32 = 0xf597_a6cf;
/// Most data/metadata area descriptors read from a PV header.
const MAX_AREAS: usize = 8;
/// `raw_locn.flags`: this metadata area is ignored.
const RAW_LOCN_IGNORED: u32 = 1;

/// LVM's CRC-32 (reflected polynomial 0xEDB88320, no final inversion, custom seed).
pub fn calc_crc(initial: u32, buf: &[u8]) -> u32 {
    let mut crc = initial;
    for &b in buf {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    crc
}

pub(crate) fn le32(buf: &[u8], off: usize) -> FsResult<u32> {
    buf.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| corrupt(format!("structure truncated at offset {off}")))
}

pub(crate) fn le64(buf: &[u8], off: usize) -> FsResult<u64> {
    buf.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| corrupt(format!("structure truncated at offset {off}")))
}

/// A byte range of the PV (`disk_locn`): offset and size in bytes (size 0 = to the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLocn {
    /// Offset in bytes from the start of the PV.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The PV label and header.
#[derive(Debug, Clone)]
pub struct PvHeader {
    /// Sector (0..4) holding the label.
    pub label_sector: u64,
    /// PV UUID, 32 characters without dashes.
    pub uuid: String,
    /// Device size recorded at `pvcreate` time, bytes.
    pub device_size: u64,
    /// Data areas (normally one, starting at `pe_start`).
    pub data_areas: Vec<DiskLocn>,
    /// Metadata areas (zero, one or two).
    pub metadata_areas: Vec<DiskLocn>,
}

/// Looks for the label in the first four sectors. `Ok(None)`: no label.
pub fn read_header(vol: &Volume) -> FsResult<Option<PvHeader>> {
    let mut buf = [0u8; 2048];
    let n = vol.len().min(2048) as usize;
    vol.read_exact_at(&mut buf[..n], 0)?;
    for sector in 0..4u64 {
        let s = &buf[(sector as usize) * 512..(sector as usize + 1) * 512];
        if &s[..8] != LABEL_ID {
            continue;
        }
        if le64(s, 8)? != sector {
            continue;
        }
        let crc = le32(s, 16)?;
        if calc_crc(INITIAL_CRC, &s[20..]) != crc {
            return Err(corrupt(format!(
                "PV label in sector {sector}: CRC mismatch"
            )));
        }
        let offset = le32(s, 20)? as usize;
        if &s[24..32] != LVM2_TYPE {
            return Err(FsError::Unsupported {
                fs: "lvm2",
                what: format!("label type {:?}", String::from_utf8_lossy(&s[24..32])),
            });
        }
        if !(32..512 - 40).contains(&offset) {
            return Err(corrupt(format!("PV header offset {offset}")));
        }
        return parse_pv_header(sector, &s[offset..]).map(Some);
    }
    Ok(None)
}

fn parse_pv_header(sector: u64, h: &[u8]) -> FsResult<PvHeader> {
    let uuid_raw = &h[..32];
    if !uuid_raw.iter().all(|b| b.is_ascii_alphanumeric()) {
        return Err(corrupt("PV UUID is not alphanumeric".into()));
    }
    let uuid = String::from_utf8_lossy(uuid_raw).into_owned();
    let device_size = le64(h, 32)?;
    let mut pos = 40;
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        loop {
            let offset = le64(h, pos)?;
            let size = le64(h, pos + 8)?;
            pos += 16;
            if offset == 0 {
                break;
            }
            if list.len() >= MAX_AREAS {
                return Err(corrupt("PV header lists too many areas".into()));
            }
            list.push(DiskLocn { offset, size });
        }
    }
    let [data_areas, metadata_areas] = lists;
    Ok(PvHeader {
        label_sector: sector,
        uuid,
        device_size,
        data_areas,
        metadata_areas,
    })
}

/// The current metadata text location in one metadata area.
#[derive(Debug, Clone, Copy)]
pub struct RawLocn {
    /// Offset of the text from the start of the metadata area.
    pub offset: u64,
    /// Length of the text (without the terminating NUL).
    pub size: u64,
    /// LVM CRC of the text.
    pub checksum: u32,
}

/// Reads the metadata area header at `mda` and returns the committed text location, or
/// `None` for an empty or ignored area.
pub fn read_mda_header(vol: &Volume, mda: DiskLocn) -> FsResult<Option<RawLocn>> {
    let mut h = [0u8; MDA_HEADER_SIZE as usize];
    vol.read_exact_at(&mut h, mda.offset)?;
    if &h[4..20] != MDA_MAGIC {
        return Err(corrupt(format!(
            "metadata area at {}: bad magic",
            mda.offset
        )));
    }
    if calc_crc(INITIAL_CRC, &h[4..]) != le32(&h, 0)? {
        return Err(corrupt(format!(
            "metadata area at {}: header CRC mismatch",
            mda.offset
        )));
    }
    if le32(&h, 20)? != 1 {
        return Err(FsError::Unsupported {
            fs: "lvm2",
            what: format!("metadata area version {}", le32(&h, 20)?),
        });
    }
    if le64(&h, 24)? != mda.offset {
        return Err(corrupt(format!(
            "metadata area at {}: records another start",
            mda.offset
        )));
    }
    let offset = le64(&h, 40)?;
    let size = le64(&h, 48)?;
    let checksum = le32(&h, 56)?;
    let flags = le32(&h, 60)?;
    if offset == 0 || size == 0 || flags & RAW_LOCN_IGNORED != 0 {
        return Ok(None);
    }
    Ok(Some(RawLocn {
        offset,
        size,
        checksum,
    }))
}

/// Reads the metadata text of `loc` from the circular buffer of the area `mda` (the text may
/// wrap from the end of the area back to just after its header), checking its CRC.
pub fn read_text(vol: &Volume, mda: DiskLocn, loc: RawLocn, max: u64) -> FsResult<Vec<u8>> {
    let area = mda.size;
    if area <= MDA_HEADER_SIZE || loc.offset < MDA_HEADER_SIZE || loc.offset >= area {
        return Err(corrupt(format!(
            "metadata area at {}: bad text offset",
            mda.offset
        )));
    }
    let ring = area - MDA_HEADER_SIZE;
    if loc.size > max || loc.size > ring {
        return Err(corrupt(format!(
            "metadata area at {}: text of {} bytes is too large",
            mda.offset, loc.size
        )));
    }
    let first = loc.size.min(area - loc.offset);
    let mut text = vec![0u8; loc.size as usize];
    let (a, b) = text.split_at_mut(first as usize);
    vol.read_exact_at(a, mda.offset + loc.offset)?;
    if !b.is_empty() {
        vol.read_exact_at(b, mda.offset + MDA_HEADER_SIZE)?;
    }
    if calc_crc(INITIAL_CRC, &text) != loc.checksum {
        return Err(corrupt(format!(
            "metadata area at {}: text CRC mismatch",
            mda.offset
        )));
    }
    if let Some(nul) = text.iter().position(|&c| c == 0) {
        text.truncate(nul);
    }
    Ok(text)
}
