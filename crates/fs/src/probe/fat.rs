//! FAT12/16/32 (`vfat`): libblkid's boot-sector checks, the label from the root directory's
//! volume-ID entry (else none), the serial as `XXXX-XXXX`.

use super::{bytes, label_bytes, le32, read_window, Probe};
use crate::fat::bpb::Bpb;
use std::io;
use vhdprep_disk::ReadAt;

pub(super) fn probe(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    let Some(bs) = read_window(vol, 0, 512)? else {
        return Ok(None);
    };
    let Ok(bpb) = Bpb::parse(&bs) else {
        return Ok(None);
    };
    let bps = bpb.bytes_per_sector;
    let fat_size = bpb.fat_length * bpb.fats;
    let vol_label = if !bpb.is_fat32_layout() {
        let root = (bpb.reserved_sectors + fat_size) * bps;
        search_label(vol, root, bpb.root_entries)?
    } else {
        // FSInfo: a valid signature, or all zeros, as libblkid allows.
        if bpb.fs_info_sector != 0 {
            let Some(fsinfo) = read_window(vol, bpb.fs_info_sector * bps, 512)? else {
                return Ok(None);
            };
            let s1 = bytes(&fsinfo, 0, 4);
            let s2 = bytes(&fsinfo, 484, 4);
            if !(s1 == b"RRaA" || s1 == b"RRdA" || s1 == [0; 4]) || !(s2 == b"rrAa" || s2 == [0; 4])
            {
                return Ok(None);
            }
        }
        // Walk the root directory's cluster chain, at most 100 clusters, as libblkid does.
        let cluster_bytes = bpb.cluster_size();
        let entries_in_fat = bpb.fat_length * bps / 4;
        let mut next = u64::from(bpb.root_cluster);
        let mut label = None;
        for _ in 0..99 {
            if next < 2 || next >= entries_in_fat {
                break;
            }
            let off =
                (bpb.reserved_sectors + fat_size + (next - 2) * bpb.sectors_per_cluster) * bps;
            label = search_label(vol, off, cluster_bytes / 32)?;
            if label.is_some() {
                break;
            }
            let Some(e) = read_window(vol, bpb.reserved_sectors * bps + next * 4, 4)? else {
                break;
            };
            next = u64::from(le32(&e, 0) & 0x0FFF_FFFF);
        }
        label
    };
    let mut p = Probe::new("vfat");
    // libblkid's LABEL is the root directory's volume-ID entry; the boot-sector label (unless
    // "NO NAME") is only its LABEL_FATBOOT.
    p.label = vol_label.and_then(|l| label_bytes(&l));
    if let Some(s) = bpb.serial {
        p.uuid = Some(format!("{:02X}{:02X}-{:02X}{:02X}", s[3], s[2], s[1], s[0]));
    }
    p.size = bpb.total_sectors.checked_mul(bps);
    p.block_size = u32::try_from(bpb.cluster_size()).ok();
    Ok(Some(p))
}

/// libblkid's `search_fat_label`: the first volume-ID entry of a directory region.
fn search_label(vol: &dyn ReadAt, offset: u64, entries: u64) -> io::Result<Option<[u8; 11]>> {
    let entries = entries.min(65536);
    let Some(dir) = read_window(vol, offset, (entries * 32) as usize)? else {
        return Ok(None);
    };
    for ent in dir.chunks_exact(32) {
        if ent[0] == 0 {
            break;
        }
        let attr = ent[11];
        let cluster_hi = u16::from_le_bytes([ent[20], ent[21]]);
        let cluster_lo = u16::from_le_bytes([ent[26], ent[27]]);
        if ent[0] == 0xE5 || cluster_hi != 0 || cluster_lo != 0 || attr & 0x3F == 0x0F {
            continue;
        }
        if attr & (0x08 | 0x10) == 0x08 {
            let mut name = [0u8; 11];
            name.copy_from_slice(&ent[..11]);
            if name[0] == 0x05 {
                name[0] = 0xE5;
            }
            return Ok(Some(name));
        }
    }
    Ok(None)
}
