//! Data fork block maps: the inline extent array and the block-map btree (bmbt).
//!
//! Both yield one list of [`Extent`]s in file order, checked: no overlaps, every block inside
//! the filesystem, a bounded number of records, a bounded tree depth and no block visited
//! twice.

pub mod extent;

use super::inode::{ForkFormat, Inode};
use super::{be16, be64, corrupt, verify_crc, XfsFs};
use crate::api::FsResult;
pub use extent::{Extent, EXTENT_SIZE};
use std::collections::HashSet;

/// Most extents one fork may map (32 bytes each in memory).
pub const MAX_EXTENTS: u64 = 1 << 20;
/// Deepest bmbt accepted (the format's own maximum is 9 with large extent counts).
pub const MAX_DEPTH: u16 = 9;
/// Most bmbt blocks read for one fork.
const MAX_BTREE_BLOCKS: usize = 1 << 17;

/// `BMAP` (v4) and `BMA3` (v5) block magics.
const BMAP_MAGIC: u32 = 0x424d_4150;
const BMA3_MAGIC: u32 = 0x424d_4133;

/// The data fork's extents, in file order, validated.
pub fn extent_map(fs: &XfsFs, inode: &Inode) -> FsResult<Vec<Extent>> {
    let ino = inode.ino;
    let mut out = Vec::new();
    match inode.format {
        ForkFormat::Extents => {
            if inode.nextents > MAX_EXTENTS {
                return Err(corrupt(format!("inode {ino}: {} extents", inode.nextents)));
            }
            let n = inode.nextents as usize;
            let need = n.saturating_mul(EXTENT_SIZE);
            if need > inode.fork.len() {
                return Err(corrupt(format!(
                    "inode {ino}: {n} extents do not fit in the data fork"
                )));
            }
            push_records(&inode.fork[..need], &mut out);
        }
        ForkFormat::Btree => {
            let fork = &inode.fork;
            let level = be16(fork, 0)?;
            let numrecs = usize::from(be16(fork, 2)?);
            if level == 0 || level > MAX_DEPTH {
                return Err(corrupt(format!("inode {ino}: bmbt root level {level}")));
            }
            let maxrecs = fork.len().saturating_sub(4) / 16;
            if numrecs == 0 || numrecs > maxrecs {
                return Err(corrupt(format!(
                    "inode {ino}: bmbt root holds {numrecs} records"
                )));
            }
            let ptr_base = 4 + maxrecs * 8;
            let mut seen = HashSet::new();
            for i in 0..numrecs {
                let ptr = be64(fork, ptr_base + i * 8)?;
                walk(fs, ino, ptr, level - 1, &mut seen, &mut out)?;
            }
        }
        ForkFormat::Local | ForkFormat::Dev => {}
    }
    check_extents(fs, ino, &out)?;
    Ok(out)
}

fn push_records(bytes: &[u8], out: &mut Vec<Extent>) {
    for rec in bytes.chunks_exact(EXTENT_SIZE) {
        let mut r = [0u8; EXTENT_SIZE];
        r.copy_from_slice(rec);
        out.push(Extent::decode(&r));
    }
}

/// Reads the bmbt block `fsbno`, expected at `level`, appending its records (leaf) or walking
/// its children (node).
fn walk(
    fs: &XfsFs,
    ino: u64,
    fsbno: u64,
    level: u16,
    seen: &mut HashSet<u64>,
    out: &mut Vec<Extent>,
) -> FsResult<()> {
    if !seen.insert(fsbno) {
        return Err(corrupt(format!(
            "inode {ino}: bmbt block {fsbno:#x} is referenced twice"
        )));
    }
    if seen.len() > MAX_BTREE_BLOCKS {
        return Err(corrupt(format!("inode {ino}: bmbt has too many blocks")));
    }
    let sb = &fs.sb;
    let byte = sb.fsb_to_byte(fsbno)?;
    let block = fs.read_bytes(byte, sb.block_size as usize)?;
    let v5 = sb.version == 5;
    let magic = super::be32(&block, 0)?;
    let hdr = if v5 {
        if magic != BMA3_MAGIC {
            return Err(corrupt(format!(
                "inode {ino}: bmbt block {fsbno:#x}: bad magic"
            )));
        }
        verify_crc(&block, 64, &format!("inode {ino}: bmbt block {fsbno:#x}"))?;
        if be64(&block, 24)? != byte / 512
            || block[40..56] != sb.meta_uuid
            || be64(&block, 56)? != ino
        {
            return Err(corrupt(format!(
                "inode {ino}: bmbt block {fsbno:#x} belongs elsewhere (blkno/uuid/owner)"
            )));
        }
        72
    } else {
        if magic != BMAP_MAGIC {
            return Err(corrupt(format!(
                "inode {ino}: bmbt block {fsbno:#x}: bad magic"
            )));
        }
        24
    };
    let blk_level = be16(&block, 4)?;
    let numrecs = usize::from(be16(&block, 6)?);
    if blk_level != level {
        return Err(corrupt(format!(
            "inode {ino}: bmbt block {fsbno:#x} at level {blk_level}, expected {level}"
        )));
    }
    let room = block.len() - hdr;
    if level == 0 {
        if numrecs == 0 || numrecs > room / EXTENT_SIZE {
            return Err(corrupt(format!(
                "inode {ino}: bmbt leaf {fsbno:#x}: {numrecs} records"
            )));
        }
        if out.len() as u64 + numrecs as u64 > MAX_EXTENTS {
            return Err(corrupt(format!(
                "inode {ino}: more than {MAX_EXTENTS} extents"
            )));
        }
        push_records(&block[hdr..hdr + numrecs * EXTENT_SIZE], out);
    } else {
        let maxrecs = room / 16;
        if numrecs == 0 || numrecs > maxrecs {
            return Err(corrupt(format!(
                "inode {ino}: bmbt node {fsbno:#x}: {numrecs} records"
            )));
        }
        let ptr_base = hdr + maxrecs * 8;
        for i in 0..numrecs {
            let ptr = be64(&block, ptr_base + i * 8)?;
            walk(fs, ino, ptr, level - 1, seen, out)?;
        }
    }
    Ok(())
}

/// Extents must be non-empty, in increasing file order without overlap, and inside the
/// filesystem.
fn check_extents(fs: &XfsFs, ino: u64, extents: &[Extent]) -> FsResult<()> {
    let mut next = 0u64;
    for e in extents {
        if e.count == 0 {
            return Err(corrupt(format!("inode {ino}: empty extent")));
        }
        if e.file_block < next {
            return Err(corrupt(format!(
                "inode {ino}: extents overlap or are out of order at file block {}",
                e.file_block
            )));
        }
        // Offsets are 54-bit, so this cannot overflow, but stay checked.
        next = e
            .file_block
            .checked_add(e.count)
            .ok_or_else(|| corrupt(format!("inode {ino}: extent offset overflows")))?;
        fs.sb.extent_to_byte(e.fs_block, e.count)?;
    }
    Ok(())
}
