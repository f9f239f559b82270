//! One GPT partition entry (UEFI 2.10 §5.3.3), little-endian, `entry_size` bytes of which the
//! first 128 are defined; the rest of a larger entry (256, 512 ...) is reserved.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 16 | partition type GUID (all zero: unused entry) |
//! | 16 | 16 | unique partition GUID (the Linux PARTUUID) |
//! | 32 | 8 | first LBA |
//! | 40 | 8 | last LBA (inclusive) |
//! | 48 | 8 | attributes |
//! | 56 | 72 | name: 36 UTF-16LE code units, NUL-terminated if shorter |

use crate::guid::Guid;

/// Bytes of an entry that the spec defines.
pub const ENTRY_BASE_SIZE: usize = 128;
/// Bytes of the name field.
pub const NAME_BYTES: usize = 72;

/// Attribute bits (UEFI), and the systemd Discoverable Partitions flags in the
/// type-specific range 48..=63.
pub mod attr {
    /// Bit 0: required by the platform.
    pub const REQUIRED_PARTITION: u64 = 1 << 0;
    /// Bit 1: firmware must not produce an EFI block I/O protocol for it.
    pub const NO_BLOCK_IO_PROTOCOL: u64 = 1 << 1;
    /// Bit 2: legacy BIOS bootable (what GPT-aware BIOS boot code and syslinux look at).
    pub const LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;
    /// DPS bit 59: grow the filesystem to the partition on first boot.
    pub const DPS_GROWFS: u64 = 1 << 59;
    /// DPS / Microsoft bit 60: read-only.
    pub const READ_ONLY: u64 = 1 << 60;
    /// DPS / Microsoft bit 62: hidden.
    pub const HIDDEN: u64 = 1 << 62;
    /// DPS / Microsoft bit 63: do not mount automatically.
    pub const NO_AUTO: u64 = 1 << 63;
}

/// Attribute names as `sfdisk` prints them: `RequiredPartition`, `NoBlockIOProtocol`,
/// `LegacyBIOSBootable`, and `GUID:<bit>` for the type-specific bits 48..=63. Reserved bits
/// 3..=47 show as `Reserved:<bit>` (sfdisk does not print them).
pub fn attribute_names(attributes: u64) -> Vec<String> {
    let mut names = Vec::new();
    for bit in 0..64u32 {
        if attributes & (1u64 << bit) == 0 {
            continue;
        }
        names.push(match bit {
            0 => "RequiredPartition".to_string(),
            1 => "NoBlockIOProtocol".to_string(),
            2 => "LegacyBIOSBootable".to_string(),
            48..=63 => format!("GUID:{bit}"),
            _ => format!("Reserved:{bit}"),
        });
    }
    names
}

/// A decoded partition entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GptEntry {
    /// Partition type GUID; nil for an unused entry.
    pub type_guid: Guid,
    /// Unique partition GUID.
    pub unique_guid: Guid,
    /// First LBA.
    pub first_lba: u64,
    /// Last LBA, inclusive.
    pub last_lba: u64,
    /// Attribute bits (see [`attr`]).
    pub attributes: u64,
    /// The name, decoded from UTF-16LE up to the first NUL; invalid UTF-16 (lone surrogates)
    /// becomes U+FFFD.
    pub name: String,
}

impl GptEntry {
    /// Decodes an entry from its bytes. `None` if fewer than 128 bytes are given; bytes past
    /// 128 (reserved in larger entries) are ignored.
    pub fn parse(bytes: &[u8]) -> Option<GptEntry> {
        let b: &[u8; ENTRY_BASE_SIZE] = bytes.get(..ENTRY_BASE_SIZE)?.try_into().ok()?;
        let guid = |off: usize| {
            let mut g = [0u8; 16];
            g.copy_from_slice(&b[off..off + 16]);
            Guid::from_disk_bytes(g)
        };
        let u64_at = |off: usize| {
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[off..off + 8]);
            u64::from_le_bytes(v)
        };
        Some(GptEntry {
            type_guid: guid(0),
            unique_guid: guid(16),
            first_lba: u64_at(32),
            last_lba: u64_at(40),
            attributes: u64_at(48),
            name: decode_name(&b[56..56 + NAME_BYTES]),
        })
    }

    /// True when the type GUID is not nil.
    pub fn is_used(&self) -> bool {
        !self.type_guid.is_nil()
    }

    /// Sectors covered, `None` if the entry is inverted (last < first) or spans all 2^64.
    pub fn sectors(&self) -> Option<u64> {
        self.last_lba
            .checked_sub(self.first_lba)
            .and_then(|d| d.checked_add(1))
    }

    /// Encodes the entry into `entry_size` bytes (at least 128). The name is truncated to 36
    /// UTF-16 code units. For tests and future writers.
    pub fn to_bytes(&self, entry_size: usize) -> Vec<u8> {
        let mut b = vec![0u8; entry_size.max(ENTRY_BASE_SIZE)];
        b[0..16].copy_from_slice(&self.type_guid.to_disk_bytes());
        b[16..32].copy_from_slice(&self.unique_guid.to_disk_bytes());
        b[32..40].copy_from_slice(&self.first_lba.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_lba.to_le_bytes());
        b[48..56].copy_from_slice(&self.attributes.to_le_bytes());
        for (i, unit) in self.name.encode_utf16().take(NAME_BYTES / 2).enumerate() {
            b[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
        }
        b
    }
}

/// Decodes a GPT name field: UTF-16LE code units up to the first NUL (or the whole field).
pub fn decode_name(raw: &[u8]) -> String {
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::gpt;

    fn sample() -> GptEntry {
        GptEntry {
            type_guid: gpt::LINUX_ROOT_X86_64,
            unique_guid: Guid::parse("5BB1D472-AB8C-4BCD-9F64-5EDDE02AA069").unwrap(),
            first_lba: 2048,
            last_lba: 4095,
            attributes: attr::LEGACY_BIOS_BOOTABLE | attr::READ_ONLY,
            name: "root ü".to_string(),
        }
    }

    #[test]
    fn round_trip_128_and_256() {
        for size in [128, 256] {
            let bytes = sample().to_bytes(size);
            assert_eq!(bytes.len(), size);
            assert_eq!(GptEntry::parse(&bytes).unwrap(), sample());
        }
        assert_eq!(sample().sectors(), Some(2048));
        assert!(sample().is_used());
    }

    #[test]
    fn field_offsets_match_the_spec() {
        let b = sample().to_bytes(128);
        // Type GUID mixed-endian: 4F68BCE3 -> E3 BC 68 4F.
        assert_eq!(&b[0..4], &[0xE3, 0xBC, 0x68, 0x4F]);
        assert_eq!(&b[32..40], &2048u64.to_le_bytes());
        assert_eq!(&b[40..48], &4095u64.to_le_bytes());
        assert_eq!(b[48], 4);
        assert_eq!(b[55], 0x10);
        assert_eq!(&b[56..60], &[b'r', 0, b'o', 0]);
        // 'ü' is U+00FC.
        assert_eq!(&b[66..68], &[0xFC, 0x00]);
    }

    #[test]
    fn short_input_is_none() {
        assert_eq!(GptEntry::parse(&[0u8; 127]), None);
        assert_eq!(GptEntry::parse(&[]), None);
    }

    #[test]
    fn unused_and_inverted() {
        let e = GptEntry::parse(&[0u8; 128]).unwrap();
        assert!(!e.is_used());
        let mut inv = sample();
        inv.first_lba = 10;
        inv.last_lba = 9;
        assert_eq!(inv.sectors(), None);
        inv.first_lba = 0;
        inv.last_lba = u64::MAX;
        assert_eq!(inv.sectors(), None);
    }

    #[test]
    fn names() {
        // Full 36 units, no NUL.
        let mut raw = [0u8; 72];
        for i in 0..36 {
            raw[2 * i] = b'a' + (i % 26) as u8;
        }
        assert_eq!(decode_name(&raw).chars().count(), 36);
        // A lone surrogate is replaced, not a panic.
        let raw = [0x00, 0xD8, b'x', 0, 0, 0, b'y', 0];
        assert_eq!(decode_name(&raw), "\u{FFFD}x");
        // A surrogate pair (U+1F600).
        let raw = [0x3D, 0xD8, 0x00, 0xDE];
        assert_eq!(decode_name(&raw), "\u{1F600}");
        // Names longer than 36 units are truncated when encoded.
        let long = GptEntry {
            name: "x".repeat(50),
            ..sample()
        };
        assert_eq!(
            GptEntry::parse(&long.to_bytes(128)).unwrap().name,
            "x".repeat(36)
        );
    }

    #[test]
    fn attribute_names_like_sfdisk() {
        assert_eq!(
            attribute_names(attr::LEGACY_BIOS_BOOTABLE | attr::READ_ONLY),
            ["LegacyBIOSBootable", "GUID:60"]
        );
        assert_eq!(
            attribute_names(0b111 | 1 << 10),
            [
                "RequiredPartition",
                "NoBlockIOProtocol",
                "LegacyBIOSBootable",
                "Reserved:10"
            ]
        );
        assert!(attribute_names(0).is_empty());
    }
}
