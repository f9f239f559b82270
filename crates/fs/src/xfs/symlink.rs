//! Symbolic link targets: inline in the inode (local format) or in "remote" blocks, which on
//! v5 filesystems start with an `XSLM` header (`xfs_dsymlink_hdr`).

use super::bmbt::extent_map;
use super::inode::{ForkFormat, Inode};
use super::{be32, be64, corrupt, verify_crc, XfsFs};
use crate::api::FsResult;

/// Longest symlink target XFS stores (`XFS_SYMLINK_MAXLEN`).
pub const MAX_TARGET: u64 = 1024;
const XSLM: u32 = 0x5853_4c4d;
const HDR: usize = 56;

/// The target of symlink `inode`.
pub fn target(fs: &XfsFs, inode: &Inode) -> FsResult<Vec<u8>> {
    let ino = inode.ino;
    if inode.size == 0 || inode.size > MAX_TARGET {
        return Err(corrupt(format!(
            "symlink {ino}: target length {}",
            inode.size
        )));
    }
    let len = inode.size as usize;
    match inode.format {
        ForkFormat::Local => inode
            .fork
            .get(..len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| corrupt(format!("symlink {ino}: inline target past the fork"))),
        ForkFormat::Extents | ForkFormat::Btree => {
            let extents = extent_map(fs, inode)?;
            let sb = &fs.sb;
            let bs = sb.block_size as usize;
            let per_block = if sb.version == 5 { bs - HDR } else { bs };
            let nblocks = len.div_ceil(per_block) as u64;
            let mut out = Vec::with_capacity(len);
            for fb in 0..nblocks {
                let (byte, block) = fs.read_mapped(&extents, fb, 1, ino)?;
                let want = (len - out.len()).min(per_block);
                if sb.version == 5 {
                    let what = format!("symlink {ino}: block {fb}");
                    if be32(&block, 0)? != XSLM {
                        return Err(corrupt(format!("{what}: bad magic")));
                    }
                    verify_crc(&block, 12, &what)?;
                    let off = be32(&block, 4)? as usize;
                    let bytes = be32(&block, 8)? as usize;
                    if off != out.len()
                        || bytes != want
                        || block[16..32] != sb.meta_uuid
                        || be64(&block, 32)? != ino
                        || be64(&block, 40)? != byte / 512
                    {
                        return Err(corrupt(format!("{what}: header does not match")));
                    }
                    out.extend_from_slice(&block[HDR..HDR + want]);
                } else {
                    out.extend_from_slice(&block[..want]);
                }
            }
            Ok(out)
        }
        ForkFormat::Dev => Err(corrupt(format!("symlink {ino}: device fork format"))),
    }
}
