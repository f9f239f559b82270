//! btrfs: the superblock at 64 KiB, its CRC32C checked when the checksum type is crc32c.

use super::{bytes, label_bytes, le16, le32, le64, read_window, uuid16, Probe};
use std::io;
use vhdprep_disk::ReadAt;

const SUPER_OFFSET: u64 = 64 << 10;

pub(super) fn probe(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    let Some(sb) = read_window(vol, SUPER_OFFSET, 4096)? else {
        return Ok(None);
    };
    if bytes(&sb, 0x40, 8) != b"_BHRfS_M" {
        return Ok(None);
    }
    // csum_type 0 is crc32c; libblkid verifies that one (others need hashes it may lack).
    if le16(&sb, 0xC4) == 0 && crc32c::crc32c(&sb[0x20..]) != le32(&sb, 0) {
        return Ok(None);
    }
    let sectorsize = le32(&sb, 0x90);
    let mut p = Probe::new("btrfs");
    p.uuid = uuid16(bytes(&sb, 0x20, 16));
    p.label = label_bytes(bytes(&sb, 0x12B, 256));
    p.size = Some(le64(&sb, 0x70));
    p.block_size =
        (sectorsize.is_power_of_two() && (512..=65536).contains(&sectorsize)).then_some(sectorsize);
    Ok(Some(p))
}
