//! XFS: the primary superblock at 0 (big-endian), with libblkid's sanity checks and, on v5
//! filesystems, its CRC32C.

use super::{be16, be32, be64, bytes, label_bytes, read_window, uuid16, Probe};
use std::io;
use vhdprep_disk::ReadAt;

pub(super) fn probe(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    let Some(sb) = read_window(vol, 0, 512)? else {
        return Ok(None);
    };
    if &sb[..4] != b"XFSB" {
        return Ok(None);
    }
    let blocksize = be32(&sb, 4);
    let dblocks = be64(&sb, 8);
    let agblocks = be32(&sb, 84);
    let agcount = be32(&sb, 88);
    let sectsize = be16(&sb, 102);
    let inodesize = be16(&sb, 104);
    let inopblock = be16(&sb, 106);
    let blocklog = sb[120];
    let sectlog = sb[121];
    let inodelog = sb[122];
    let inopblog = sb[123];
    let agblklog = sb[124];
    let version = be16(&sb, 100);
    // libblkid's xfs_verify_sb, in substance.
    let sane = agcount > 0
        && (512..=65536).contains(&blocksize)
        && blocksize.is_power_of_two()
        && u32::from(blocklog) < 32
        && 1u32 << blocklog == blocksize
        && (512..=32768).contains(&sectsize)
        && sectsize.is_power_of_two()
        && u32::from(sectlog) < 16
        && 1u32 << sectlog == u32::from(sectsize)
        && (256..=2048).contains(&inodesize)
        && inodesize.is_power_of_two()
        && u32::from(inodelog) < 16
        && 1u32 << inodelog == u32::from(inodesize)
        && u32::from(blocklog) >= u32::from(inodelog)
        && u32::from(inopblog) == u32::from(blocklog) - u32::from(inodelog)
        && u32::from(inopblock) == blocksize / u32::from(inodesize)
        && agblocks > 0
        && u32::from(agblklog) < 32
        && u64::from(agblocks) <= 1u64 << agblklog
        && dblocks > 0
        && dblocks <= u64::from(agcount) * u64::from(agblocks)
        && dblocks > u64::from(agcount - 1) * u64::from(agblocks);
    if !sane {
        return Ok(None);
    }
    if version & 0x000F == 5 {
        // v5: CRC32C of the sector with the crc field (offset 224) taken as zero.
        let Some(mut sector) = read_window(vol, 0, usize::from(sectsize))? else {
            return Ok(None);
        };
        let stored = u32::from_le_bytes([sector[224], sector[225], sector[226], sector[227]]);
        sector[224..228].fill(0);
        if crc32c::crc32c(&sector) != stored {
            return Ok(None);
        }
    }
    let mut p = Probe::new("xfs");
    p.uuid = uuid16(bytes(&sb, 32, 16));
    p.label = label_bytes(bytes(&sb, 108, 12));
    p.block_size = Some(blocksize);
    p.size = dblocks.checked_mul(u64::from(blocksize));
    Ok(Some(p))
}
