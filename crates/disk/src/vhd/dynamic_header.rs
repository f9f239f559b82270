//! The 1024-byte dynamic-disk header (`cxsparse`) of dynamic and differencing VHDs.
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 8 | cookie `cxsparse` |
//! | 8 | 8 | data offset (unused, all ones) |
//! | 16 | 8 | table offset: where the block allocation table (BAT) starts |
//! | 24 | 4 | header version 0x00010000 |
//! | 28 | 4 | max table entries |
//! | 32 | 4 | block size (2 MiB by default) |
//! | 36 | 4 | checksum (as for the footer, over 1024 bytes) |
//! | 40 | 16 | parent unique id |
//! | 56 | 4 | parent timestamp |
//! | 64 | 512 | parent unicode name (UTF-16 big-endian) |
//! | 576 | 8 × 24 | parent locators: code, data space, data length, reserved, data offset |

use serde::Serialize;

/// Size of the header in bytes.
pub const DYNAMIC_HEADER_SIZE: usize = 1024;
/// The header cookie.
pub const DYNAMIC_COOKIE: &[u8; 8] = b"cxsparse";

/// One parent locator entry of a differencing disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParentLocator {
    /// Platform code: `W2ru` (relative Windows path), `W2ku` (absolute), `Mac `, `MacX`.
    pub platform_code: String,
    /// Bytes reserved for the locator data.
    pub data_space: u32,
    /// Length of the locator data.
    pub data_length: u32,
    /// Where the locator data is in the file.
    pub data_offset: u64,
}

/// A decoded dynamic-disk header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicHeader {
    /// Bytes 0..8, `cxsparse` when valid.
    pub cookie: [u8; 8],
    /// Offset of the block allocation table.
    pub table_offset: u64,
    /// Header version.
    pub version: u32,
    /// Number of BAT entries.
    pub max_table_entries: u32,
    /// Size of one block in bytes.
    pub block_size: u32,
    /// Checksum as stored.
    pub checksum: u32,
    /// Checksum computed over the header.
    pub computed_checksum: u32,
    /// Parent's unique id (differencing disks).
    pub parent_unique_id: [u8; 16],
    /// Parent's modification time as recorded at creation (seconds since 2000-01-01 UTC;
    /// differencing disks).
    pub parent_timestamp: u32,
    /// Parent's file name from the header (differencing disks).
    pub parent_name: String,
    /// Non-empty parent locators.
    pub parent_locators: Vec<ParentLocator>,
}

fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn be64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_be_bytes(a)
}

impl DynamicHeader {
    /// Decodes the header bytes; validity is judged by the caller.
    pub fn parse(b: &[u8; DYNAMIC_HEADER_SIZE]) -> DynamicHeader {
        let mut cookie = [0u8; 8];
        cookie.copy_from_slice(&b[0..8]);
        let mut parent_unique_id = [0u8; 16];
        parent_unique_id.copy_from_slice(&b[40..56]);
        let name_units: Vec<u16> = b[64..576]
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let parent_name = String::from_utf16_lossy(&name_units);
        let parent_locators = (0..8)
            .map(|i| 576 + i * 24)
            .filter(|&o| b[o..o + 24].iter().any(|&x| x != 0))
            .map(|o| ParentLocator {
                platform_code: b[o..o + 4]
                    .iter()
                    .map(|&c| {
                        if c.is_ascii_graphic() || c == b' ' {
                            c as char
                        } else {
                            '?'
                        }
                    })
                    .collect(),
                data_space: be32(b, o + 4),
                data_length: be32(b, o + 8),
                data_offset: be64(b, o + 16),
            })
            .collect();
        let sum = b
            .iter()
            .enumerate()
            .filter(|(i, _)| !(36..40).contains(i))
            .fold(0u32, |acc, (_, &x)| acc.wrapping_add(u32::from(x)));
        DynamicHeader {
            cookie,
            table_offset: be64(b, 16),
            version: be32(b, 24),
            max_table_entries: be32(b, 28),
            block_size: be32(b, 32),
            checksum: be32(b, 36),
            computed_checksum: !sum,
            parent_unique_id,
            parent_timestamp: be32(b, 56),
            parent_name,
            parent_locators,
        }
    }

    /// True when the cookie is `cxsparse`.
    pub fn has_cookie(&self) -> bool {
        &self.cookie == DYNAMIC_COOKIE
    }

    /// True when the stored checksum matches.
    pub fn checksum_valid(&self) -> bool {
        self.checksum == self.computed_checksum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; DYNAMIC_HEADER_SIZE] {
        let mut b = [0u8; DYNAMIC_HEADER_SIZE];
        b[0..8].copy_from_slice(DYNAMIC_COOKIE);
        b[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        b[16..24].copy_from_slice(&1536u64.to_be_bytes());
        b[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        b[28..32].copy_from_slice(&512u32.to_be_bytes());
        b[32..36].copy_from_slice(&(2u32 << 20).to_be_bytes());
        b[56..60].copy_from_slice(&0x2a00_0001u32.to_be_bytes());
        for (i, u) in "base.vhd".encode_utf16().enumerate() {
            b[64 + 2 * i..66 + 2 * i].copy_from_slice(&u.to_be_bytes());
        }
        b[576..580].copy_from_slice(b"W2ru");
        b[580..584].copy_from_slice(&512u32.to_be_bytes());
        b[584..588].copy_from_slice(&20u32.to_be_bytes());
        b[592..600].copy_from_slice(&4096u64.to_be_bytes());
        let sum = b.iter().fold(0u32, |a, &x| a.wrapping_add(u32::from(x)));
        b[36..40].copy_from_slice(&(!sum).to_be_bytes());
        b
    }

    #[test]
    fn parses_every_field() {
        let h = DynamicHeader::parse(&sample());
        assert!(h.has_cookie());
        assert!(h.checksum_valid());
        assert_eq!(h.table_offset, 1536);
        assert_eq!(h.max_table_entries, 512);
        assert_eq!(h.block_size, 2 << 20);
        assert_eq!(h.parent_name, "base.vhd");
        assert_eq!(h.parent_timestamp, 0x2a00_0001);
        assert_eq!(h.parent_locators.len(), 1);
        assert_eq!(h.parent_locators[0].platform_code, "W2ru");
        assert_eq!(h.parent_locators[0].data_offset, 4096);
    }

    #[test]
    fn detects_corruption() {
        let mut b = sample();
        b[30] ^= 0x40;
        assert!(!DynamicHeader::parse(&b).checksum_valid());
        b[0] = b'X';
        assert!(!DynamicHeader::parse(&b).has_cookie());
    }
}
