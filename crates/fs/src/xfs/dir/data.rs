//! Directory data blocks (`XD2D`/`XDD3`) and the single-block format (`XD2B`/`XDB3`): the
//! header, the packed entries and unused spans, and (block format) the leaf tail.

use super::EntryFn;
use crate::api::FsResult;
use crate::xfs::superblock::Superblock;
use crate::xfs::{be16, be32, be64, corrupt, verify_crc};

const XD2B: u32 = 0x5844_3242;
const XDB3: u32 = 0x5844_4233;
const XD2D: u32 = 0x5844_3244;
const XDD3: u32 = 0x5844_4433;
/// Freetag of an unused span.
const FREE_TAG: u16 = 0xffff;

/// Parses one directory block (`block`, at byte offset `byte` of the volume) of directory
/// `ino`, calling `f` for each live entry other than `.` and `..`. Returns `Ok(true)` when `f`
/// asked to stop. Blocks that are not data blocks are an error.
pub fn for_each(
    sb: &Superblock,
    ino: u64,
    byte: u64,
    block: &[u8],
    f: EntryFn<'_>,
) -> FsResult<bool> {
    let magic = be32(block, 0)?;
    let v5 = sb.version == 5;
    let (is_block, ok) = match magic {
        XD2B => (true, !v5),
        XDB3 => (true, v5),
        XD2D => (false, !v5),
        XDD3 => (false, v5),
        _ => (false, false),
    };
    if !ok {
        return Err(corrupt(format!(
            "directory {ino}: block at byte {byte} is not a directory data block (magic {magic:#x})"
        )));
    }
    let hdr = if v5 {
        verify_crc(block, 4, &format!("directory {ino}: block at byte {byte}"))?;
        if be64(block, 8)? != byte / 512 || block[24..40] != sb.meta_uuid || be64(block, 40)? != ino
        {
            return Err(corrupt(format!(
                "directory {ino}: block at byte {byte} belongs elsewhere (blkno/uuid/owner)"
            )));
        }
        64
    } else {
        16
    };
    let mut end = block.len();
    if is_block {
        // Tail: leaf count, stale count; the leaf array precedes it.
        let count = be32(block, end - 8)? as usize;
        let leaf_bytes = count.checked_mul(8).and_then(|b| b.checked_add(8));
        match leaf_bytes {
            Some(b) if b + hdr <= end => end -= b,
            _ => {
                return Err(corrupt(format!(
                    "directory {ino}: block tail claims {count} leaf entries"
                )))
            }
        }
    }
    let mut pos = hdr;
    while pos < end {
        let bad = |what: &str| {
            corrupt(format!(
                "directory {ino}: block at byte {byte}, offset {pos}: {what}"
            ))
        };
        if pos + 8 > end {
            return Err(bad("truncated entry"));
        }
        if be16(block, pos)? == FREE_TAG {
            let len = usize::from(be16(block, pos + 2)?);
            if len < 8 || len % 8 != 0 || pos + len > end {
                return Err(bad("bad unused span length"));
            }
            pos += len;
            continue;
        }
        let child = be64(block, pos)?;
        let namelen = usize::from(*block.get(pos + 8).ok_or_else(|| bad("truncated"))?);
        if namelen == 0 {
            return Err(bad("empty name"));
        }
        let name = block
            .get(pos + 9..pos + 9 + namelen)
            .ok_or_else(|| bad("name runs past the block"))?;
        let extra = usize::from(sb.has_ftype);
        let ftype = if sb.has_ftype {
            Some(
                *block
                    .get(pos + 9 + namelen)
                    .ok_or_else(|| bad("truncated"))?,
            )
        } else {
            None
        };
        let size = (8 + 1 + namelen + extra + 2).next_multiple_of(8);
        if pos + size > end {
            return Err(bad("entry runs past the block"));
        }
        pos += size;
        if name == b"." || name == b".." {
            continue;
        }
        if f(name, child, ftype)? {
            return Ok(true);
        }
    }
    Ok(false)
}
