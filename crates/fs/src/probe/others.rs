//! The rest: squashfs, NTFS and UFS.

use super::{be16, be32, bytes, label_bytes, label_utf16, le16, le32, le64, read_window, Probe};
use std::io;
use vhdprep_disk::ReadAt;

/// squashfs (version 4, `squashfs`; older, `squashfs3`): no label or UUID.
pub(super) fn probe_squashfs(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    let Some(sb) = read_window(vol, 0, 96)? else {
        return Ok(None);
    };
    let (major, block, used) = match &sb[..4] {
        b"hsqs" => (le16(&sb, 28), le32(&sb, 12), le64(&sb, 40)),
        b"sqsh" => (be16(&sb, 28), be32(&sb, 12), 0),
        _ => return Ok(None),
    };
    let mut p = Probe::new(if major >= 4 { "squashfs" } else { "squashfs3" });
    if major >= 4 {
        p.size = Some(used);
        p.block_size = block.is_power_of_two().then_some(block);
    }
    Ok(Some(p))
}

/// NTFS: libblkid's boot-sector checks, the label from `$Volume` (MFT record 3), the serial
/// as 16 upper-case hex digits.
pub(super) fn probe_ntfs(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    let Some(bs) = read_window(vol, 0, 512)? else {
        return Ok(None);
    };
    if bytes(&bs, 3, 8) != b"NTFS    " {
        return Ok(None);
    }
    let sector = u64::from(le16(&bs, 0x0B));
    if !(256..=4096).contains(&sector) || !sector.is_power_of_two() {
        return Ok(None);
    }
    let spc = match bs[0x0D] {
        x @ (1 | 2 | 4 | 8 | 16 | 32 | 64 | 128) => u64::from(x),
        x @ 240..=249 => 1u64 << (256 - u32::from(x)),
        _ => return Ok(None),
    };
    let cluster = sector * spc;
    if cluster > 2 << 20 {
        return Ok(None);
    }
    // Fields FAT uses must be zero.
    if le16(&bs, 0x0E) != 0
        || bs[0x10] != 0
        || le16(&bs, 0x11) != 0
        || le16(&bs, 0x13) != 0
        || le16(&bs, 0x16) != 0
        || le32(&bs, 0x20) != 0
    {
        return Ok(None);
    }
    let cpm = bs[0x40] as i8;
    let record = if (1..=64).contains(&cpm) && (cpm as u8).is_power_of_two() {
        u64::from(cpm as u8) * cluster
    } else if (-31..=-9).contains(&cpm) {
        1u64 << (-i32::from(cpm))
    } else {
        return Ok(None);
    };
    let nr_clusters = le64(&bs, 0x28) / spc;
    let mft = le64(&bs, 0x30);
    if mft > nr_clusters || le64(&bs, 0x38) > nr_clusters {
        return Ok(None);
    }
    let Some(mft_off) = mft.checked_mul(cluster) else {
        return Ok(None);
    };
    let rec_len = record as usize;
    let Some(rec0) = read_window(vol, mft_off, rec_len)? else {
        return Ok(None);
    };
    if &rec0[..4] != b"FILE" {
        return Ok(None);
    }
    let Some(rec) = read_window(vol, mft_off + 3 * record, rec_len)? else {
        return Ok(None);
    };
    if &rec[..4] != b"FILE" {
        return Ok(None);
    }
    let mut p = Probe::new("ntfs");
    let mut off = usize::from(le16(&rec, 0x14));
    let allocated = le32(&rec, 0x1C) as usize;
    while off + 24 <= rec_len && off <= allocated {
        let ty = le32(&rec, off);
        let len = le32(&rec, off + 4) as usize;
        if len == 0 || ty == 0xFFFF_FFFF {
            break;
        }
        if ty == 0x60 {
            let voff = usize::from(le16(&rec, off + 20));
            let vlen = le32(&rec, off + 16) as usize;
            if off + voff + vlen <= rec_len {
                p.label = label_utf16(bytes(&rec, off + voff, vlen), false);
            }
            break;
        }
        off = off.saturating_add(len);
    }
    p.uuid = Some(format!("{:016X}", le64(&bs, 0x48)));
    p.block_size = u32::try_from(cluster).ok();
    p.size = le64(&bs, 0x28).checked_mul(sector);
    Ok(Some(p))
}

const UFS_MAGICS: [u32; 5] = [
    0x0001_1954,
    0x0009_5014,
    0x0019_5612,
    0x0523_1994,
    0x1954_0119,
];
const UFS2_MAGIC: u32 = 0x1954_0119;

/// UFS1/UFS2: the superblock at 0, 8, 64 or 256 KiB (magic at 0x55C), either byte order.
pub(super) fn probe_ufs(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    for kib in [0u64, 8, 64, 256] {
        let Some(sb) = read_window(vol, kib * 1024, 1376)? else {
            continue;
        };
        let (le, be) = (le32(&sb, 0x55C), be32(&sb, 0x55C));
        let big = if UFS_MAGICS.contains(&le) {
            false
        } else if UFS_MAGICS.contains(&be) {
            true
        } else {
            continue;
        };
        let rd = |o: usize| if big { be32(&sb, o) } else { le32(&sb, o) };
        let mut p = Probe::new("ufs");
        if rd(0x55C) == UFS2_MAGIC {
            p.label = label_bytes(bytes(&sb, 0x2A8, 32));
        }
        let (id0, id1) = (rd(0x90), rd(0x94));
        if id0 != 0 || id1 != 0 {
            p.uuid = Some(format!("{id0:08x}{id1:08x}"));
        }
        let bsize = rd(0x30);
        p.block_size = bsize.is_power_of_two().then_some(bsize);
        return Ok(Some(p));
    }
    Ok(None)
}
