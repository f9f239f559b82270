//! LVM2 physical volumes (`LVM2_member`): the `LABELONE` label in one of the first four
//! sectors, its CRC checked, the PV UUID printed with LVM's dashes (6-4-4-4-4-4-6).

use super::{bytes, le32, le64, read_window, Probe};
use std::io;
use vhdprep_disk::ReadAt;

/// LVM's CRC-32 (reflected polynomial 0xEDB88320, seed 0xf597a6cf, no final xor).
pub(crate) fn lvm_crc(data: &[u8]) -> u32 {
    let mut crc = 0xf597_a6cf_u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

pub(super) fn probe(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    let Some(buf) = read_window(vol, 0, 4 * 512)? else {
        return Ok(None);
    };
    for sector in 0..4usize {
        let label = &buf[sector * 512..(sector + 1) * 512];
        if &label[..8] != b"LABELONE" || bytes(label, 24, 8) != b"LVM2 001" {
            continue;
        }
        if le64(label, 8) != sector as u64 || lvm_crc(&label[20..]) != le32(label, 16) {
            continue;
        }
        let pvh = le32(label, 20) as usize;
        let Some(pv) = label.get(pvh..pvh.saturating_add(40)) else {
            continue;
        };
        let id = &pv[..32];
        let mut p = Probe::new("LVM2_member");
        if id.iter().all(|c| c.is_ascii_graphic()) {
            let s = String::from_utf8_lossy(id);
            p.uuid = Some(format!(
                "{}-{}-{}-{}-{}-{}-{}",
                &s[0..6],
                &s[6..10],
                &s[10..14],
                &s[14..18],
                &s[18..22],
                &s[22..26],
                &s[26..32]
            ));
        }
        let size = le64(pv, 32);
        p.size = (size != 0).then_some(size);
        return Ok(Some(p));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvm_crc_matches_the_nibble_table_version() {
        // LVM computes it four bits at a time with a 16-entry table; same function.
        const TAB: [u32; 16] = [
            0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158,
            0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4,
            0xa00ae278, 0xbdbdf21c,
        ];
        let data: Vec<u8> = (0..=255u8).collect();
        let mut crc = 0xf597a6cfu32;
        for &b in &data {
            crc ^= u32::from(b);
            crc = (crc >> 4) ^ TAB[(crc & 0xf) as usize];
            crc = (crc >> 4) ^ TAB[(crc & 0xf) as usize];
        }
        assert_eq!(lvm_crc(&data), crc);
    }
}
