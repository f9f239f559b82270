//! The VHDX format ([MS-VHDX] v1.0): a reader of fixed, dynamic and differencing VHDX files.
//!
//! One file per on-disk structure:
//! - [`header`]: the file identifier (creator) and the two headers, current one by sequence
//!   number, CRC-32C checked;
//! - [`region`]: the region table that places the BAT and the metadata region;
//! - [`metadata`]: block size, sector sizes, virtual size, disk id, parent locator;
//! - [`log`]: the metadata log, replayed into memory ([`overlay`]) and never into the file;
//! - [`bat`]: the block allocation table (payload and sector-bitmap entries);
//! - [`reader`]: [`VhdxDisk`], the virtual disk, with an exact `next_data`.
//!
//! [`Vhdx::read_header`] parses everything `info` shows, replaying a non-empty log first, so
//! that metadata updated through the log is read as Hyper-V would; [`VhdxDisk::open`] then
//! loads the BAT (through the same replayed view) and reads the virtual disk.

pub mod bat;
mod error;
pub mod header;
pub mod log;
pub mod metadata;
pub mod overlay;
pub mod reader;
pub mod region;

pub use error::VhdxError;
pub use header::{HeaderCopy, VhdxHeader};
pub use log::LogReplay;
pub use metadata::{ParentLocator, VhdxMetadata};
pub use overlay::Overlay;
pub use reader::VhdxDisk;

use crate::read_at::ReadAt;

/// Entry point for reading a VHDX file's header (see [`Vhdx::read_header`]).
pub struct Vhdx;

impl Vhdx {
    /// Parses the file identifier, both headers, the region table, replays a non-empty log
    /// into memory and reads the metadata region: everything `info` shows, and the parent
    /// locator a caller needs to find the parent before [`VhdxDisk::open`].
    pub fn read_header(file: &dyn ReadAt) -> Result<VhdxHeader, VhdxError> {
        header::read_header(file)
    }
}

/// 1 MiB: the unit of BAT file offsets and of the log length.
pub const MIB: u64 = 1 << 20;
/// 64 KiB: the alignment of every VHDX structure.
pub const KIB64: u64 = 64 << 10;

/// CRC-32C of `data` with the 4-byte checksum field at `at` taken as zero, as [MS-VHDX]
/// computes the checksums of headers, region tables and log entries.
pub(crate) fn crc_with_zeroed(data: &[u8], at: usize) -> u32 {
    let (a, rest) = data.split_at(at.min(data.len()));
    let b = rest.get(4..).unwrap_or(&[]);
    let crc = crc32c::crc32c_append(0, a);
    let crc = crc32c::crc32c_append(crc, &[0u8; 4][..rest.len().min(4)]);
    crc32c::crc32c_append(crc, b)
}

/// Little-endian field readers over a byte slice; out-of-range reads give 0 (callers check
/// lengths first, and a 0 never passes the checks that follow).
pub(crate) mod le {
    /// u16 at `at`.
    pub fn u16(b: &[u8], at: usize) -> u16 {
        b.get(at..at + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]))
            .unwrap_or(0)
    }
    /// u32 at `at`.
    pub fn u32(b: &[u8], at: usize) -> u32 {
        b.get(at..at + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
            .unwrap_or(0)
    }
    /// u64 at `at`.
    pub fn u64(b: &[u8], at: usize) -> u64 {
        b.get(at..at + 8)
            .map(|s| {
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                u64::from_le_bytes(a)
            })
            .unwrap_or(0)
    }
    /// A Microsoft GUID (first three fields little-endian) at `at`.
    pub fn guid(b: &[u8], at: usize) -> uuid::Uuid {
        let mut a = [0u8; 16];
        if let Some(s) = b.get(at..at + 16) {
            a.copy_from_slice(s);
        }
        uuid::Uuid::from_bytes_le(a)
    }
    /// UTF-16LE text, up to the first NUL.
    pub fn utf16(b: &[u8]) -> String {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        String::from_utf16_lossy(&units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_skips_the_checksum_field() {
        let mut d = vec![7u8; 64];
        let c = crc_with_zeroed(&d, 4);
        d[4..8].fill(0);
        assert_eq!(c, crc32c::crc32c(&d));
        // The field at the very end, and a field past the end, do not panic.
        let _ = crc_with_zeroed(&d, 62);
        let _ = crc_with_zeroed(&d, 100);
    }

    #[test]
    fn le_readers_are_bounded() {
        let b = [1u8, 0, 0, 0];
        assert_eq!(le::u32(&b, 0), 1);
        assert_eq!(le::u32(&b, 1), 0);
        assert_eq!(le::u64(&b, 0), 0);
        assert_eq!(le::utf16(&[b'a', 0, b'b', 0, 0, 0, b'c', 0]), "ab");
    }
}
