//! Short-form directories: every entry inline in the inode's data fork
//! (`xfs_dir2_sf_hdr` + `xfs_dir2_sf_entry`).

use super::EntryFn;
use crate::api::FsResult;
use crate::xfs::{be32, be64, corrupt};

/// Calls `f` for every entry of the short-form directory `fork` (`di_size` bytes used).
pub fn for_each(ino: u64, fork: &[u8], size: u64, has_ftype: bool, f: EntryFn<'_>) -> FsResult<()> {
    let used = usize::try_from(size).unwrap_or(usize::MAX);
    if used > fork.len() || used < 6 {
        return Err(corrupt(format!(
            "inode {ino}: short-form directory of {size} bytes in a {}-byte fork",
            fork.len()
        )));
    }
    let data = &fork[..used];
    let count = usize::from(data[0]);
    let i8count = data[1];
    let ino_len = if i8count == 0 { 4 } else { 8 };
    let mut pos = 2 + ino_len;
    for i in 0..count {
        let bad = || {
            corrupt(format!(
                "inode {ino}: short-form entry {i} runs past the fork"
            ))
        };
        let namelen = usize::from(*data.get(pos).ok_or_else(bad)?);
        if namelen == 0 {
            return Err(corrupt(format!(
                "inode {ino}: short-form entry {i} has an empty name"
            )));
        }
        let name_start = pos + 3;
        let name = data.get(name_start..name_start + namelen).ok_or_else(bad)?;
        let mut p = name_start + namelen;
        let ftype = if has_ftype {
            let t = *data.get(p).ok_or_else(bad)?;
            p += 1;
            Some(t)
        } else {
            None
        };
        if p + ino_len > data.len() {
            return Err(bad());
        }
        let child = if ino_len == 4 {
            u64::from(be32(data, p)?)
        } else {
            be64(data, p)? & ((1 << 56) - 1)
        };
        pos = p + ino_len;
        if f(name, child, ftype)? {
            return Ok(());
        }
    }
    Ok(())
}
