//! The btrfs superblock: 4 KiB at 64 KiB, little-endian, CRC32C over bytes 0x20..0x1000.
//!
//! Only the primary copy is read (as the kernel does on mount); a bad primary is an error.

use super::{corrupt, le_u16, le_u32, le_u64, read_exact, unsupported};
use crate::api::{FsResult, Volume};

/// Offset of the primary superblock.
pub const SUPER_OFFSET: u64 = 0x1_0000;
/// Size of the superblock.
pub const SUPER_SIZE: usize = 0x1000;
/// The magic at 0x40.
pub const MAGIC: &[u8; 8] = b"_BHRfS_M";

/// incompat flag: the tree-block header carries `metadata_uuid` instead of `fsid`.
const INCOMPAT_METADATA_UUID: u64 = 1 << 10;
/// incompat flag: extent tree v2 (different on-disk layout).
const INCOMPAT_EXTENT_TREE_V2: u64 = 1 << 13;
/// incompat flag: RAID stripe tree.
const INCOMPAT_RAID_STRIPE_TREE: u64 = 1 << 14;
/// The flags this reader understands (all others make `open` refuse).
const INCOMPAT_KNOWN: u64 = 0x1 // MIXED_BACKREF
    | 0x2 // DEFAULT_SUBVOL
    | 0x4 // MIXED_GROUPS
    | 0x8 // COMPRESS_LZO
    | 0x10 // COMPRESS_ZSTD
    | 0x20 // BIG_METADATA
    | 0x40 // EXTENDED_IREF
    | 0x80 // RAID56
    | 0x100 // SKINNY_METADATA
    | 0x200 // NO_HOLES
    | INCOMPAT_METADATA_UUID
    | 0x800 // RAID1C34
    | 0x1000; // ZONED

/// The fields of the superblock this reader uses.
#[derive(Debug, Clone)]
pub struct Superblock {
    /// Filesystem UUID (what `blkid` reports as UUID).
    pub fsid: [u8; 16],
    /// The UUID stamped in every tree-block header.
    pub metadata_uuid: [u8; 16],
    /// Transaction generation.
    pub generation: u64,
    /// Logical address of the root tree.
    pub root: u64,
    /// Logical address of the chunk tree.
    pub chunk_root: u64,
    /// Size of the filesystem in bytes.
    pub total_bytes: u64,
    /// Bytes in use.
    pub bytes_used: u64,
    /// Object id of the root-tree directory (6).
    pub root_dir_objectid: u64,
    /// Tree block size.
    pub nodesize: u32,
    /// Level of the root tree's root node.
    pub root_level: u8,
    /// Level of the chunk tree's root node.
    pub chunk_root_level: u8,
    /// Id of this device.
    pub devid: u64,
    /// Label (up to the first NUL).
    pub label: Vec<u8>,
    /// The bootstrap chunk array (`sys_chunk_array_size` bytes).
    pub sys_chunk_array: Vec<u8>,
}

impl Superblock {
    /// Reads and checks the primary superblock.
    pub fn read(vol: &Volume) -> FsResult<Superblock> {
        let mut buf = vec![0u8; SUPER_SIZE];
        read_exact(vol, &mut buf, SUPER_OFFSET, "superblock")?;
        Superblock::parse(&buf)
    }

    /// Parses and checks a 4 KiB superblock.
    pub fn parse(b: &[u8]) -> FsResult<Superblock> {
        if b.len() < SUPER_SIZE {
            return Err(corrupt("superblock shorter than 4096 bytes"));
        }
        if &b[0x40..0x48] != MAGIC {
            return Err(corrupt("no btrfs magic at 64 KiB + 0x40"));
        }
        let csum_type = le_u16(b, 0xc4)?;
        if csum_type != 0 {
            return Err(unsupported(format!(
                "checksum type {csum_type} (only crc32c is implemented)"
            )));
        }
        let stored = le_u32(b, 0)?;
        let computed = crc32c::crc32c(&b[0x20..SUPER_SIZE]);
        if stored != computed {
            return Err(corrupt(format!(
                "superblock checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            )));
        }
        let bytenr = le_u64(b, 0x30)?;
        if bytenr != SUPER_OFFSET {
            return Err(corrupt(format!(
                "primary superblock records bytenr {bytenr}, expected {SUPER_OFFSET}"
            )));
        }
        let incompat_flags = le_u64(b, 0xbc)?;
        let unknown = incompat_flags & !INCOMPAT_KNOWN;
        if incompat_flags & (INCOMPAT_EXTENT_TREE_V2 | INCOMPAT_RAID_STRIPE_TREE) != 0 {
            return Err(unsupported(format!(
                "incompat features {incompat_flags:#x} (extent tree v2 / raid stripe tree)"
            )));
        }
        if unknown != 0 {
            return Err(unsupported(format!(
                "unknown incompat feature flags {unknown:#x}"
            )));
        }
        let sectorsize = le_u32(b, 0x90)?;
        let nodesize = le_u32(b, 0x94)?;
        if !sectorsize.is_power_of_two() || !(512..=65536).contains(&sectorsize) {
            return Err(corrupt(format!("bad sectorsize {sectorsize}")));
        }
        if !nodesize.is_power_of_two() || !(4096..=65536).contains(&nodesize) {
            return Err(corrupt(format!("bad nodesize {nodesize}")));
        }
        let sys_size = le_u32(b, 0xa0)? as usize;
        if sys_size > 2048 {
            return Err(corrupt(format!(
                "sys_chunk_array_size {sys_size} exceeds 2048"
            )));
        }
        let mut fsid = [0u8; 16];
        fsid.copy_from_slice(&b[0x20..0x30]);
        let mut metadata_uuid = fsid;
        if incompat_flags & INCOMPAT_METADATA_UUID != 0 {
            metadata_uuid.copy_from_slice(&b[0x23b..0x24b]);
        }
        let label_raw = &b[0x12b..0x22b];
        let label_len = label_raw.iter().position(|&c| c == 0).unwrap_or(256);
        let root_level = b[0xc6];
        let chunk_root_level = b[0xc7];
        if root_level >= super::tree::MAX_LEVEL || chunk_root_level >= super::tree::MAX_LEVEL {
            return Err(corrupt(format!(
                "root level {root_level} / chunk root level {chunk_root_level} too deep"
            )));
        }
        Ok(Superblock {
            fsid,
            metadata_uuid,
            generation: le_u64(b, 0x48)?,
            root: le_u64(b, 0x50)?,
            chunk_root: le_u64(b, 0x58)?,
            total_bytes: le_u64(b, 0x70)?,
            bytes_used: le_u64(b, 0x78)?,
            root_dir_objectid: le_u64(b, 0x80)?,
            nodesize,
            root_level,
            chunk_root_level,
            devid: le_u64(b, 0xc9)?,
            label: label_raw[..label_len].to_vec(),
            sys_chunk_array: b[0x32b..0x32b + sys_size].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panic() {
        assert!(Superblock::parse(&[0u8; 10]).is_err());
        let mut b = vec![0u8; SUPER_SIZE];
        b[0x40..0x48].copy_from_slice(MAGIC);
        let e = Superblock::parse(&b).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
    }
}
