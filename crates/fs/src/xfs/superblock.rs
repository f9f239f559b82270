//! The XFS superblock (sector 0 of allocation group 0) and the geometry derived from it.

use super::{be16, be32, be64, corrupt, unsupported, verify_crc};
use crate::api::FsResult;

/// `XFSB`.
pub const SB_MAGIC: u32 = 0x5846_5342;
/// Offset of the CRC in a v5 superblock.
const SB_CRC_OFF: usize = 224;

const VERSION_NUMBITS: u16 = 0x000f;
const VERSION_DIRV2BIT: u16 = 0x2000;
const VERSION_MOREBITSBIT: u16 = 0x8000;
/// `features2` bit: directory entries carry the file type (v4).
const VERSION2_FTYPE: u32 = 0x0000_0200;

/// v5 incompatible feature bits.
pub const INCOMPAT_FTYPE: u32 = 1 << 0;
const INCOMPAT_SPINODES: u32 = 1 << 1;
const INCOMPAT_META_UUID: u32 = 1 << 2;
const INCOMPAT_BIGTIME: u32 = 1 << 3;
const INCOMPAT_NEEDSREPAIR: u32 = 1 << 4;
pub const INCOMPAT_NREXT64: u32 = 1 << 5;
const INCOMPAT_EXCHRANGE: u32 = 1 << 6;
const INCOMPAT_PARENT: u32 = 1 << 7;
/// Incompatible features this reader understands (none of them changes how files are read
/// beyond what the reader handles: ftype, sparse inode chunks, bigtime, large extent counts).
const INCOMPAT_KNOWN: u32 = INCOMPAT_FTYPE
    | INCOMPAT_SPINODES
    | INCOMPAT_META_UUID
    | INCOMPAT_BIGTIME
    | INCOMPAT_NEEDSREPAIR
    | INCOMPAT_NREXT64
    | INCOMPAT_EXCHRANGE
    | INCOMPAT_PARENT;

/// The fields of the superblock the reader needs, validated.
#[derive(Debug, Clone)]
pub struct Superblock {
    /// 4 or 5.
    pub version: u8,
    /// Filesystem block size in bytes (512..=65536, power of two).
    pub block_size: u32,
    /// log2(block_size).
    pub block_log: u8,
    /// Blocks in the data device.
    pub dblocks: u64,
    /// Filesystem UUID (or metadata UUID when `meta_uuid` is set).
    pub uuid: [u8; 16],
    /// UUID stamped into v5 metadata blocks.
    pub meta_uuid: [u8; 16],
    /// Root directory inode.
    pub root_ino: u64,
    /// Blocks per allocation group.
    pub ag_blocks: u32,
    /// Number of allocation groups.
    pub ag_count: u32,
    /// Sector size.
    pub sect_size: u16,
    /// Inode size in bytes.
    pub inode_size: u16,
    /// log2(inodes per block).
    pub inopb_log: u8,
    /// log2(ag_blocks) rounded up.
    pub agblk_log: u8,
    /// log2(directory block size / block size).
    pub dirblk_log: u8,
    /// Directory entries carry a file type byte.
    pub has_ftype: bool,
    /// Large (64-bit) extent counters may be present.
    pub nrext64: bool,
    /// Volume label (up to 12 bytes).
    pub label: Vec<u8>,
}

impl Superblock {
    /// Parses and validates the superblock in `buf` (at least one sector; 512 bytes minimum).
    pub fn parse(buf: &[u8]) -> FsResult<Superblock> {
        if be32(buf, 0)? != SB_MAGIC {
            return Err(corrupt("superblock magic is not XFSB".into()));
        }
        let versionnum = be16(buf, 100)?;
        let version = (versionnum & VERSION_NUMBITS) as u8;
        let sect_size = be16(buf, 102)?;
        if !(512..=32768).contains(&sect_size) || !sect_size.is_power_of_two() {
            return Err(corrupt(format!("superblock: bad sector size {sect_size}")));
        }
        if buf.len() < usize::from(sect_size) {
            return Err(corrupt("superblock: short read".into()));
        }
        match version {
            5 => verify_crc(&buf[..usize::from(sect_size)], SB_CRC_OFF, "superblock")?,
            4 => {
                if versionnum & VERSION_DIRV2BIT == 0 {
                    return Err(unsupported(
                        "v4 filesystem with version 1 directories".into(),
                    ));
                }
            }
            1..=3 => {
                return Err(unsupported(format!("XFS superblock version {version}")));
            }
            _ => return Err(corrupt(format!("superblock: bad version {version}"))),
        }
        let block_size = be32(buf, 4)?;
        let block_log = buf[120];
        if !(512..=65536).contains(&block_size)
            || !block_size.is_power_of_two()
            || 1u32.checked_shl(u32::from(block_log)) != Some(block_size)
        {
            return Err(corrupt(format!("superblock: bad block size {block_size}")));
        }
        let dblocks = be64(buf, 8)?;
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&buf[32..48]);
        let root_ino = be64(buf, 56)?;
        let ag_blocks = be32(buf, 84)?;
        let ag_count = be32(buf, 88)?;
        let inode_size = be16(buf, 104)?;
        let inopb = be16(buf, 106)?;
        let inode_log = buf[122];
        let inopb_log = buf[123];
        let agblk_log = buf[124];
        let dirblk_log = buf[192];
        if !(256..=2048).contains(&inode_size)
            || !inode_size.is_power_of_two()
            || 1u16.checked_shl(u32::from(inode_log)) != Some(inode_size)
            || (version == 5 && inode_size < 512)
        {
            return Err(corrupt(format!("superblock: bad inode size {inode_size}")));
        }
        if u32::from(inode_size) > block_size
            || u32::from(inopb) != block_size / u32::from(inode_size)
            || 1u32.checked_shl(u32::from(inopb_log)) != Some(u32::from(inopb))
        {
            return Err(corrupt(format!("superblock: bad inodes per block {inopb}")));
        }
        if ag_blocks < 16 || ag_count == 0 || !(4..=31).contains(&agblk_log) {
            return Err(corrupt(format!(
                "superblock: bad AG geometry ({ag_count} AGs of {ag_blocks} blocks)"
            )));
        }
        // agblklog is log2 of agblocks rounded up.
        if u64::from(ag_blocks) > 1u64 << agblk_log
            || u64::from(ag_blocks) <= 1u64 << (agblk_log - 1)
        {
            return Err(corrupt(format!(
                "superblock: agblklog {agblk_log} does not match agblocks {ag_blocks}"
            )));
        }
        let max_dblocks = u64::from(ag_blocks) * u64::from(ag_count);
        if dblocks == 0 || dblocks > max_dblocks {
            return Err(corrupt(format!("superblock: bad block count {dblocks}")));
        }
        if u32::from(dirblk_log) + u32::from(block_log) > 16 {
            return Err(corrupt(format!(
                "superblock: bad directory block log {dirblk_log}"
            )));
        }
        let features2 = if versionnum & VERSION_MOREBITSBIT != 0 {
            be32(buf, 200)?
        } else {
            0
        };
        let (has_ftype, nrext64, meta_uuid) = if version == 5 {
            let incompat = be32(buf, 216)?;
            if incompat & !INCOMPAT_KNOWN != 0 {
                return Err(unsupported(format!(
                    "incompatible feature bits {:#x}",
                    incompat & !INCOMPAT_KNOWN
                )));
            }
            let mut meta = uuid;
            if incompat & INCOMPAT_META_UUID != 0 {
                meta.copy_from_slice(&buf[248..264]);
            }
            (
                incompat & INCOMPAT_FTYPE != 0,
                incompat & INCOMPAT_NREXT64 != 0,
                meta,
            )
        } else {
            (features2 & VERSION2_FTYPE != 0, false, uuid)
        };
        let label: Vec<u8> = buf[108..120]
            .iter()
            .copied()
            .take_while(|&b| b != 0)
            .collect();
        Ok(Superblock {
            version,
            block_size,
            block_log,
            dblocks,
            uuid,
            meta_uuid,
            root_ino,
            ag_blocks,
            ag_count,
            sect_size,
            inode_size,
            inopb_log,
            agblk_log,
            dirblk_log,
            has_ftype,
            nrext64,
            label,
        })
    }

    /// Directory block size in bytes.
    pub fn dir_block_size(&self) -> u32 {
        self.block_size << self.dirblk_log
    }

    /// Byte offset on the volume of filesystem block `fsbno` (AG number in the high bits), or
    /// an error if it lies outside the filesystem.
    pub fn fsb_to_byte(&self, fsbno: u64) -> FsResult<u64> {
        let agno = fsbno >> self.agblk_log;
        let agbno = fsbno & ((1u64 << self.agblk_log) - 1);
        if agno >= u64::from(self.ag_count) || agbno >= u64::from(self.ag_blocks) {
            return Err(corrupt(format!(
                "block {fsbno:#x} lies outside the allocation groups"
            )));
        }
        let daddr = agno * u64::from(self.ag_blocks) + agbno;
        if daddr >= self.dblocks {
            return Err(corrupt(format!(
                "block {fsbno:#x} lies past the end of the filesystem"
            )));
        }
        Ok(daddr << self.block_log)
    }

    /// Checks that `count` blocks starting at `fsbno` stay inside one AG and the filesystem;
    /// returns the byte offset of the first.
    pub fn extent_to_byte(&self, fsbno: u64, count: u64) -> FsResult<u64> {
        let start = self.fsb_to_byte(fsbno)?;
        let agbno = fsbno & ((1u64 << self.agblk_log) - 1);
        let end_in_ag = agbno.checked_add(count);
        let end_bytes = count
            .checked_shl(u32::from(self.block_log))
            .and_then(|b| b.checked_add(start));
        match (end_in_ag, end_bytes) {
            (Some(e), Some(eb))
                if e <= u64::from(self.ag_blocks) && eb <= self.dblocks << self.block_log =>
            {
                Ok(start)
            }
            _ => Err(corrupt(format!(
                "extent of {count} blocks at {fsbno:#x} runs past its allocation group"
            ))),
        }
    }

    /// Byte offset of inode `ino`, or an error if the number does not map inside the
    /// filesystem.
    pub fn inode_to_byte(&self, ino: u64) -> FsResult<u64> {
        let shift = u32::from(self.agblk_log) + u32::from(self.inopb_log);
        if shift >= 64 {
            return Err(corrupt("inode geometry".into()));
        }
        let agno = ino >> shift;
        let agbno = (ino >> self.inopb_log) & ((1u64 << self.agblk_log) - 1);
        let offset = ino & ((1u64 << self.inopb_log) - 1);
        if ino == 0
            || agno >= u64::from(self.ag_count)
            || agbno >= u64::from(self.ag_blocks)
            || agno * u64::from(self.ag_blocks) + agbno >= self.dblocks
        {
            return Err(corrupt(format!(
                "inode number {ino} lies outside the filesystem"
            )));
        }
        let block = agno * u64::from(self.ag_blocks) + agbno;
        Ok((block << self.block_log) + offset * u64::from(self.inode_size))
    }
}
