//! The GPT header (UEFI 2.10 §5.3.2): one sector at LBA 1 (primary) and at the last LBA
//! (backup), little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | signature `EFI PART` |
//! | 8 | 4 | revision (0x00010000) |
//! | 12 | 4 | header size (92 ..= sector size) |
//! | 16 | 4 | CRC32 of the first *header size* bytes, computed with this field zeroed |
//! | 20 | 4 | reserved |
//! | 24 | 8 | my LBA |
//! | 32 | 8 | alternate LBA |
//! | 40 | 8 | first usable LBA |
//! | 48 | 8 | last usable LBA |
//! | 56 | 16 | disk GUID |
//! | 72 | 8 | partition entry array LBA |
//! | 80 | 4 | number of entries |
//! | 84 | 4 | size of an entry (128 × 2^n) |
//! | 88 | 4 | CRC32 of the entry array (number × size bytes) |
//!
//! [`GptHeader::parse`] checks what a header says about itself (signature, size, CRC, entry
//! geometry and the memory cap); [`GptHeader::check_placement`] checks it against the disk it
//! was read from.

use super::GptDefect;
use crate::guid::Guid;

/// `EFI PART`.
pub const SIGNATURE: [u8; 8] = *b"EFI PART";
/// The header size every GPT writer uses, and the smallest one accepted.
pub const MIN_HEADER_SIZE: u32 = 92;
/// Size of one partition entry in the UEFI spec's base layout.
pub const BASE_ENTRY_SIZE: u32 = 128;
/// At most this many entries are read (sgdisk and sfdisk write 128).
pub const MAX_ENTRIES: u32 = 4096;
/// At most this many bytes of entry array are read, whatever the header says.
pub const MAX_ARRAY_BYTES: u64 = 1 << 20;
/// The revision written by every current tool (1.0).
pub const REVISION_1_0: u32 = 0x0001_0000;

/// A decoded GPT header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GptHeader {
    /// Revision (0x00010000 for 1.0).
    pub revision: u32,
    /// Header size in bytes.
    pub header_size: u32,
    /// The stored header CRC32.
    pub header_crc32: u32,
    /// The LBA this header says it is at.
    pub my_lba: u64,
    /// The LBA of the other copy.
    pub alternate_lba: u64,
    /// First LBA a partition may use.
    pub first_usable_lba: u64,
    /// Last LBA a partition may use.
    pub last_usable_lba: u64,
    /// Disk GUID.
    pub disk_guid: Guid,
    /// First LBA of the partition entry array.
    pub partition_entry_lba: u64,
    /// Number of entries in the array.
    pub num_entries: u32,
    /// Size of one entry.
    pub entry_size: u32,
    /// The stored CRC32 of the array.
    pub entries_crc32: u32,
}

fn u32_at(b: &[u8; 92], off: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8; 92], off: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(v)
}

/// The UEFI header CRC: CRC32 of `header_size` bytes with the CRC field taken as zero.
/// `None` if `sector` is shorter than `header_size` or than the CRC field.
pub fn header_crc32(sector: &[u8], header_size: u32) -> Option<u32> {
    let len = usize::try_from(header_size).ok()?;
    let bytes = sector.get(..len)?;
    let before = bytes.get(..16)?;
    let after = bytes.get(20..)?;
    let mut h = crc32fast::Hasher::new();
    h.update(before);
    h.update(&[0; 4]);
    h.update(after);
    Some(h.finalize())
}

/// True if `size` is 128 × 2^n (128, 256, 512, ...).
pub fn is_valid_entry_size(size: u32) -> bool {
    size >= BASE_ENTRY_SIZE && size.is_power_of_two()
}

impl GptHeader {
    /// Decodes one header sector (`sector.len()` is the logical sector size) and checks what
    /// the header says about itself: signature, header size within 92..=sector size, header
    /// CRC32, entry size 128 × 2^n, and the entry-array caps ([`MAX_ENTRIES`],
    /// [`MAX_ARRAY_BYTES`]) so that no header can make the reader allocate much.
    pub fn parse(sector: &[u8]) -> Result<GptHeader, GptDefect> {
        let Some(fixed) = sector.get(..92) else {
            return Err(GptDefect::ShortSector {
                len: sector.len() as u64,
            });
        };
        let mut b = [0u8; 92];
        b.copy_from_slice(fixed);
        if b[..8] != SIGNATURE {
            return Err(GptDefect::BadSignature);
        }
        let sector_size = u32::try_from(sector.len()).unwrap_or(u32::MAX);
        let header_size = u32_at(&b, 12);
        if !(MIN_HEADER_SIZE..=sector_size).contains(&header_size) {
            return Err(GptDefect::HeaderSize {
                size: header_size,
                max: sector_size,
            });
        }
        let stored = u32_at(&b, 16);
        // header_size <= sector.len() was just checked, so this is Some.
        let computed = header_crc32(sector, header_size).unwrap_or(!stored);
        if computed != stored {
            return Err(GptDefect::HeaderCrc { stored, computed });
        }
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&b[56..72]);
        let h = GptHeader {
            revision: u32_at(&b, 8),
            header_size,
            header_crc32: stored,
            my_lba: u64_at(&b, 24),
            alternate_lba: u64_at(&b, 32),
            first_usable_lba: u64_at(&b, 40),
            last_usable_lba: u64_at(&b, 48),
            disk_guid: Guid::from_disk_bytes(guid),
            partition_entry_lba: u64_at(&b, 72),
            num_entries: u32_at(&b, 80),
            entry_size: u32_at(&b, 84),
            entries_crc32: u32_at(&b, 88),
        };
        if !is_valid_entry_size(h.entry_size) {
            return Err(GptDefect::EntrySize(h.entry_size));
        }
        if h.num_entries > MAX_ENTRIES || h.array_bytes() > MAX_ARRAY_BYTES {
            return Err(GptDefect::TooManyEntries {
                count: h.num_entries,
                entry_size: h.entry_size,
            });
        }
        Ok(h)
    }

    /// Bytes of the entry array (`num_entries × entry_size`, no overflow: both are `u32`).
    pub fn array_bytes(&self) -> u64 {
        u64::from(self.num_entries) * u64::from(self.entry_size)
    }

    /// Sectors the entry array covers (rounded up).
    pub fn array_sectors(&self, sector_size: u32) -> u64 {
        self.array_bytes().div_ceil(u64::from(sector_size.max(1)))
    }

    /// Checks the header against where it was read from: `my_lba` is `read_from`, the usable
    /// range is ordered and inside the disk (`last_lba` is the disk's last LBA), and the entry
    /// array lies inside the disk, outside LBA 0 and not over the header itself.
    pub fn check_placement(
        &self,
        read_from: u64,
        last_lba: u64,
        sector_size: u32,
    ) -> Result<(), GptDefect> {
        if self.my_lba != read_from {
            return Err(GptDefect::MyLba {
                found: self.my_lba,
                expected: read_from,
            });
        }
        if self.first_usable_lba > self.last_usable_lba || self.last_usable_lba > last_lba {
            return Err(GptDefect::UsableRange {
                first: self.first_usable_lba,
                last: self.last_usable_lba,
                disk_last: last_lba,
            });
        }
        let sectors = self.array_sectors(sector_size);
        let array_end = self.partition_entry_lba.checked_add(sectors);
        let fits = match array_end {
            // An empty array takes no room: nothing to place.
            _ if sectors == 0 => true,
            Some(end) => {
                self.partition_entry_lba >= 1
                    && end <= last_lba.saturating_add(1)
                    && !(self.partition_entry_lba..end).contains(&read_from)
            }
            None => false,
        };
        if !fits {
            return Err(GptDefect::ArrayPlacement {
                lba: self.partition_entry_lba,
                sectors,
            });
        }
        Ok(())
    }

    /// Encodes the header into a zero-filled sector of `sector_size` bytes, with a freshly
    /// computed header CRC32 (the stored `header_crc32` is ignored). `header_size` larger than
    /// the sector is clamped. For tests and future writers.
    pub fn to_sector(&self, sector_size: usize) -> Vec<u8> {
        let mut s = vec![0u8; sector_size.max(92)];
        s[..8].copy_from_slice(&SIGNATURE);
        s[8..12].copy_from_slice(&self.revision.to_le_bytes());
        s[12..16].copy_from_slice(&self.header_size.to_le_bytes());
        s[24..32].copy_from_slice(&self.my_lba.to_le_bytes());
        s[32..40].copy_from_slice(&self.alternate_lba.to_le_bytes());
        s[40..48].copy_from_slice(&self.first_usable_lba.to_le_bytes());
        s[48..56].copy_from_slice(&self.last_usable_lba.to_le_bytes());
        s[56..72].copy_from_slice(&self.disk_guid.to_disk_bytes());
        s[72..80].copy_from_slice(&self.partition_entry_lba.to_le_bytes());
        s[80..84].copy_from_slice(&self.num_entries.to_le_bytes());
        s[84..88].copy_from_slice(&self.entry_size.to_le_bytes());
        s[88..92].copy_from_slice(&self.entries_crc32.to_le_bytes());
        let size = u32::try_from(s.len()).unwrap_or(u32::MAX);
        let crc = header_crc32(&s, self.header_size.clamp(MIN_HEADER_SIZE, size)).unwrap_or(0);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GptHeader {
        GptHeader {
            revision: REVISION_1_0,
            header_size: 92,
            header_crc32: 0,
            my_lba: 1,
            alternate_lba: 2047,
            first_usable_lba: 34,
            last_usable_lba: 2014,
            disk_guid: Guid::from_disk_bytes([0xab; 16]),
            partition_entry_lba: 2,
            num_entries: 128,
            entry_size: 128,
            entries_crc32: 0x1234_5678,
        }
    }

    fn set_u32(s: &mut [u8], off: usize, v: u32) {
        s[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Rewrites the header CRC after a field was changed on purpose.
    fn fix_crc(s: &mut [u8]) {
        let size = u32::from_le_bytes(s[12..16].try_into().unwrap());
        let crc = header_crc32(s, size).unwrap();
        set_u32(s, 16, crc);
    }

    #[test]
    fn round_trips_through_a_sector() {
        let s = sample().to_sector(512);
        let h = GptHeader::parse(&s).unwrap();
        assert_eq!(
            GptHeader {
                header_crc32: h.header_crc32,
                ..sample()
            },
            h
        );
        assert_eq!(h.array_bytes(), 16384);
        assert_eq!(h.array_sectors(512), 32);
        assert_eq!(h.array_sectors(4096), 4);
        h.check_placement(1, 2047, 512).unwrap();
    }

    #[test]
    fn known_crc_of_a_real_header() {
        // The header CRC is computed with its own field zeroed: changing the stored CRC
        // must not change the computed one.
        let mut s = sample().to_sector(512);
        let a = header_crc32(&s, 92).unwrap();
        set_u32(&mut s, 16, 0xdead_beef);
        assert_eq!(header_crc32(&s, 92).unwrap(), a);
        assert_eq!(header_crc32(&s[..50], 92), None);
    }

    #[test]
    fn bad_signature() {
        let mut s = sample().to_sector(512);
        s[0] = b'X';
        assert_eq!(GptHeader::parse(&s), Err(GptDefect::BadSignature));
        assert_eq!(
            GptHeader::parse(&[0u8; 10]),
            Err(GptDefect::ShortSector { len: 10 })
        );
    }

    #[test]
    fn bad_crc() {
        let mut s = sample().to_sector(512);
        s[60] ^= 1; // inside the disk GUID
        assert!(matches!(
            GptHeader::parse(&s),
            Err(GptDefect::HeaderCrc { .. })
        ));
    }

    #[test]
    fn crc_covers_header_size_bytes_only() {
        // Bytes past header_size are not covered ...
        let mut s = sample().to_sector(512);
        s[200] = 0x55;
        GptHeader::parse(&s).unwrap();
        // ... unless header_size says so.
        let mut h = sample();
        h.header_size = 512;
        let mut s = h.to_sector(512);
        GptHeader::parse(&s).unwrap();
        s[511] = 1;
        assert!(matches!(
            GptHeader::parse(&s),
            Err(GptDefect::HeaderCrc { .. })
        ));
    }

    #[test]
    fn header_size_bounds() {
        for (size, ok) in [
            (91, false),
            (92, true),
            (512, true),
            (513, false),
            (0, false),
        ] {
            let mut s = sample().to_sector(512);
            set_u32(&mut s, 12, size);
            if (92..=512).contains(&size) {
                fix_crc(&mut s);
            }
            let r = GptHeader::parse(&s);
            assert_eq!(r.is_ok(), ok, "size {size}: {r:?}");
            if !ok {
                assert_eq!(r, Err(GptDefect::HeaderSize { size, max: 512 }));
            }
        }
        // On a 4096-byte sector, a 4096-byte header is fine.
        let mut h = sample();
        h.header_size = 4096;
        GptHeader::parse(&h.to_sector(4096)).unwrap();
    }

    #[test]
    fn entry_sizes() {
        for size in [96u32, 129, 0, 64, 384, 127, u32::MAX] {
            let mut h = sample();
            h.entry_size = size;
            h.num_entries = 4;
            assert_eq!(
                GptHeader::parse(&h.to_sector(512)),
                Err(GptDefect::EntrySize(size)),
                "{size}"
            );
        }
        for size in [128u32, 256, 512, 1024] {
            let mut h = sample();
            h.entry_size = size;
            h.num_entries = 4;
            assert!(GptHeader::parse(&h.to_sector(512)).is_ok(), "{size}");
        }
    }

    #[test]
    fn entry_count_is_capped() {
        for (count, size) in [
            (u32::MAX, 128),
            (1 << 31, 128),
            (MAX_ENTRIES + 1, 128),
            (4096, 512),  // 2 MiB
            (2, 1 << 31), // a huge entry size with a tiny count
        ] {
            let mut h = sample();
            h.num_entries = count;
            h.entry_size = size;
            assert_eq!(
                GptHeader::parse(&h.to_sector(512)),
                Err(GptDefect::TooManyEntries {
                    count,
                    entry_size: size
                }),
                "{count} x {size}"
            );
        }
        let mut h = sample();
        h.num_entries = MAX_ENTRIES;
        h.entry_size = 256; // exactly 1 MiB
        GptHeader::parse(&h.to_sector(512)).unwrap();
    }

    #[test]
    fn placement() {
        let h = sample();
        assert_eq!(
            h.check_placement(2047, 2047, 512),
            Err(GptDefect::MyLba {
                found: 1,
                expected: 2047
            })
        );
        // Disk smaller than the usable range.
        assert!(matches!(
            h.check_placement(1, 1000, 512),
            Err(GptDefect::UsableRange { .. })
        ));
        let mut inverted = sample();
        inverted.first_usable_lba = 3000;
        inverted.last_usable_lba = 34;
        assert!(matches!(
            inverted.check_placement(1, 4000, 512),
            Err(GptDefect::UsableRange { .. })
        ));
        // Array past the end, at LBA 0, over the header, or overflowing.
        for lba in [2040, 0, 1, u64::MAX - 3] {
            let mut a = sample();
            a.partition_entry_lba = lba;
            assert_eq!(
                a.check_placement(1, 2047, 512),
                Err(GptDefect::ArrayPlacement { lba, sectors: 32 }),
                "{lba}"
            );
        }
        // An empty array can be anywhere.
        let mut empty = sample();
        empty.num_entries = 0;
        empty.partition_entry_lba = u64::MAX;
        empty.check_placement(1, 2047, 512).unwrap();
    }
}
