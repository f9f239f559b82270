//! The header section: the file identifier at 0 (signature and creator) and the two headers at
//! 64 KiB and 128 KiB. A writer updates one header at a time, so the valid header with the
//! higher sequence number is current; the other is kept for `info`.
//!
//! [`read_header`] also drives the rest of the parse (region table, log replay, metadata), so
//! that one call yields everything `info` shows.

use super::error::VhdxError;
use super::log::{self, LogReplay};
use super::metadata::{self, VhdxMetadata};
use super::region::{self, Regions};
use super::{crc_with_zeroed, le, KIB64};
use crate::read_at::ReadAt;
use uuid::Uuid;

/// `vhdxfile`, the first 8 bytes of every VHDX.
pub const FILE_SIGNATURE: &[u8; 8] = b"vhdxfile";
/// `head`, the first 4 bytes of a header.
const HEADER_SIGNATURE: &[u8; 4] = b"head";
/// Bytes of a header covered by its checksum.
const HEADER_SIZE: usize = 4096;
/// Where the two headers are.
pub const HEADER_OFFSETS: [u64; 2] = [KIB64, 2 * KIB64];

/// One of the two headers, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderCopy {
    /// Where it is (65536 or 131072).
    pub offset: u64,
    /// Sequence number: the valid copy with the larger one is current.
    pub sequence: u64,
    /// Changes whenever the file is opened for writing.
    pub file_write_guid: Uuid,
    /// Changes whenever the virtual disk's data is changed.
    pub data_write_guid: Uuid,
    /// Identifies the valid log entries; zero when the log is empty.
    pub log_guid: Uuid,
    /// Log format version (0).
    pub log_version: u16,
    /// Header version (1).
    pub version: u16,
    /// Log length in bytes (a multiple of 1 MiB).
    pub log_length: u32,
    /// Log offset in the file (a multiple of 1 MiB).
    pub log_offset: u64,
}

impl HeaderCopy {
    /// Parses and checks the 4 KiB at `offset`: signature, CRC-32C, version 1.
    pub fn parse(b: &[u8], offset: u64) -> Result<HeaderCopy, String> {
        if b.len() < HEADER_SIZE {
            return Err("is cut short by the end of the file".into());
        }
        if &b[..4] != HEADER_SIGNATURE {
            return Err("lacks its 'head' signature".into());
        }
        let stored = le::u32(b, 4);
        let computed = crc_with_zeroed(&b[..HEADER_SIZE], 4);
        if stored != computed {
            return Err(format!(
                "has checksum {stored:#010x} but its bytes give {computed:#010x}"
            ));
        }
        let h = HeaderCopy {
            offset,
            sequence: le::u64(b, 8),
            file_write_guid: le::guid(b, 16),
            data_write_guid: le::guid(b, 32),
            log_guid: le::guid(b, 48),
            log_version: le::u16(b, 64),
            version: le::u16(b, 66),
            log_length: le::u32(b, 68),
            log_offset: le::u64(b, 72),
        };
        if h.version != 1 {
            return Err(format!("has version {}, not 1", h.version));
        }
        Ok(h)
    }

    /// True when the log holds entries that must be replayed before the file is read.
    pub fn log_non_empty(&self) -> bool {
        !self.log_guid.is_nil()
    }
}

/// Everything the header section, region table, log and metadata of a VHDX say.
#[derive(Debug, Clone)]
pub struct VhdxHeader {
    /// The file's length.
    pub file_len: u64,
    /// The creator string of the file identifier (e.g. `QEMU v10.0.2`, `Microsoft Windows
    /// 10.0.19045.0`).
    pub creator: String,
    /// Both headers, or why each is unusable.
    pub copies: [Result<HeaderCopy, String>; 2],
    /// Index in `copies` of the current header (the valid one with the higher sequence).
    pub current: usize,
    /// The current header (a copy of `copies[current]`).
    pub head: HeaderCopy,
    /// Where the BAT and the metadata region are.
    pub regions: Regions,
    /// The log and what its replay changed.
    pub log: LogReplay,
    /// Block size, sector sizes, virtual size, parent locator.
    pub metadata: VhdxMetadata,
}

impl VhdxHeader {
    /// The current header.
    pub fn current(&self) -> &HeaderCopy {
        &self.head
    }

    /// True when the disk is a differencing disk (its data depends on a parent).
    pub fn has_parent(&self) -> bool {
        self.metadata.has_parent
    }

    /// The virtual disk size in bytes.
    pub fn virtual_size(&self) -> u64 {
        self.metadata.virtual_size
    }
}

/// Picks the current header: the valid one with the higher sequence number (the first on a
/// tie).
fn choose(copies: &[Result<HeaderCopy, String>; 2]) -> Option<usize> {
    match (&copies[0], &copies[1]) {
        (Ok(a), Ok(b)) => Some(if b.sequence > a.sequence { 1 } else { 0 }),
        (Ok(_), Err(_)) => Some(0),
        (Err(_), Ok(_)) => Some(1),
        (Err(_), Err(_)) => None,
    }
}

/// Parses the whole header of a VHDX: see [`super::Vhdx::read_header`].
pub fn read_header(file: &dyn ReadAt) -> Result<VhdxHeader, VhdxError> {
    let file_len = file.len();
    let mut ident = vec![0u8; 8 + 512];
    if file_len < 3 * KIB64 {
        // Too short for the identifier and both headers: not a VHDX we can read.
        let mut sig = [0u8; 8];
        if file.read_exact_at(&mut sig, 0).is_err() || &sig != FILE_SIGNATURE {
            return Err(VhdxError::NotVhdx);
        }
        return Err(VhdxError::BadPlace {
            what: "header section",
            offset: 0,
            len: 3 * KIB64,
            why: format!("lies outside the {file_len}-byte file"),
        });
    }
    file.read_exact_at(&mut ident, 0)
        .map_err(VhdxError::io("file identifier", 0))?;
    if &ident[..8] != FILE_SIGNATURE {
        return Err(VhdxError::NotVhdx);
    }
    let creator = le::utf16(&ident[8..]);
    let mut copies: [Result<HeaderCopy, String>; 2] = [Err(String::new()), Err(String::new())];
    let mut buf = vec![0u8; HEADER_SIZE];
    for (i, &off) in HEADER_OFFSETS.iter().enumerate() {
        file.read_exact_at(&mut buf, off)
            .map_err(VhdxError::io("header", off))?;
        copies[i] = HeaderCopy::parse(&buf, off);
    }
    let chosen = choose(&copies).and_then(|i| Some((i, copies[i].as_ref().ok()?.clone())));
    let Some((current, head)) = chosen else {
        let why = |c: &Result<HeaderCopy, String>| c.as_ref().err().cloned().unwrap_or_default();
        return Err(VhdxError::NoValidHeader {
            first: why(&copies[0]),
            second: why(&copies[1]),
        });
    };
    let regions = region::read_regions(file)?;
    let log = log::replay(file, &head)?;
    let view = super::overlay::Overlaid::new(file, log.overlay.clone());
    let metadata = metadata::read_metadata(&view, regions.metadata.clone())?;
    Ok(VhdxHeader {
        file_len,
        creator,
        copies,
        current,
        head,
        regions,
        log,
        metadata,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vhdx::MIB;

    /// A valid header copy with the given sequence and log GUID, as bytes.
    pub(crate) fn header_bytes(seq: u64, log_guid: Uuid, log_offset: u64, log_len: u32) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_SIZE];
        b[..4].copy_from_slice(HEADER_SIGNATURE);
        b[8..16].copy_from_slice(&seq.to_le_bytes());
        b[48..64].copy_from_slice(&log_guid.to_bytes_le());
        b[66..68].copy_from_slice(&1u16.to_le_bytes());
        b[68..72].copy_from_slice(&log_len.to_le_bytes());
        b[72..80].copy_from_slice(&log_offset.to_le_bytes());
        let c = crc_with_zeroed(&b, 4);
        b[4..8].copy_from_slice(&c.to_le_bytes());
        b
    }

    #[test]
    fn parses_a_valid_header_and_rejects_damage() {
        let b = header_bytes(7, Uuid::nil(), MIB, MIB as u32);
        let h = HeaderCopy::parse(&b, KIB64).unwrap();
        assert_eq!(h.sequence, 7);
        assert_eq!(h.log_offset, MIB);
        assert!(!h.log_non_empty());
        let mut bad = b.clone();
        bad[100] ^= 1;
        assert!(HeaderCopy::parse(&bad, KIB64)
            .unwrap_err()
            .contains("checksum"));
        let mut sig = b.clone();
        sig[0] = b'x';
        assert!(HeaderCopy::parse(&sig, KIB64)
            .unwrap_err()
            .contains("'head'"));
        assert!(HeaderCopy::parse(&b[..100], KIB64)
            .unwrap_err()
            .contains("cut short"));
        let mut v2 = b.clone();
        v2[66] = 2;
        let c = crc_with_zeroed(&v2, 4);
        v2[4..8].copy_from_slice(&c.to_le_bytes());
        assert!(HeaderCopy::parse(&v2, KIB64)
            .unwrap_err()
            .contains("version 2"));
    }

    #[test]
    fn the_higher_sequence_is_current() {
        let a = HeaderCopy::parse(&header_bytes(3, Uuid::nil(), MIB, MIB as u32), KIB64);
        let b = HeaderCopy::parse(&header_bytes(4, Uuid::nil(), MIB, MIB as u32), 2 * KIB64);
        assert_eq!(choose(&[a.clone(), b.clone()]), Some(1));
        assert_eq!(choose(&[b.clone(), a.clone()]), Some(0));
        assert_eq!(choose(&[Err("x".into()), a.clone()]), Some(1));
        assert_eq!(choose(&[Err("x".into()), Err("y".into())]), None);
    }

    #[test]
    fn short_and_foreign_files_are_refused() {
        let small = vec![0u8; 1000];
        assert!(matches!(read_header(&small), Err(VhdxError::NotVhdx)));
        let mut sig = vec![0u8; 4096];
        sig[..8].copy_from_slice(FILE_SIGNATURE);
        let e = read_header(&sig).unwrap_err();
        assert!(e.to_string().contains("outside the 4096-byte file"), "{e}");
        let mut both_bad = vec![0u8; 4 * KIB64 as usize];
        both_bad[..8].copy_from_slice(FILE_SIGNATURE);
        let e = read_header(&both_bad).unwrap_err();
        assert!(e.to_string().starts_with("no valid VHDX header"), "{e}");
    }
}
