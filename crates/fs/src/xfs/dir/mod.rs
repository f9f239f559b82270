//! XFS directories (version 2/3 format).
//!
//! - short-form: inline in the inode ([`shortform`]);
//! - block: one directory block holding entries, leaf array and tail ([`data`]);
//! - leaf and node: several data blocks below `XFS_DIR2_LEAF_OFFSET` (32 GiB of logical
//!   directory space), plus leaf/free-index blocks above it.
//!
//! The entries all live in the data blocks, so every non-inline directory is listed by reading
//! the data blocks of its logical data range in order; the hash-ordered leaf and node blocks
//! are lookup accelerators and are not needed (nor trusted).

pub mod data;
pub mod shortform;

use super::bmbt::{extent_map, Extent};
use super::inode::{ForkFormat, Inode};
use super::{corrupt, XfsFs};
use crate::api::FsResult;

/// Callback for each entry: name, inode number, ftype byte (if recorded). Returns `true` to
/// stop the walk.
pub type EntryFn<'a> = &'a mut dyn FnMut(&[u8], u64, Option<u8>) -> FsResult<bool>;

/// Start of the leaf space in the directory's logical address space.
const LEAF_OFFSET: u64 = 32 << 30;
/// Most bytes of directory data blocks read for one directory.
pub const MAX_DIR_DATA_BYTES: u64 = 256 << 20;

/// Calls `f` for every entry of directory `inode` (not `.`/`..`), in on-disk order.
pub fn for_each_entry(fs: &XfsFs, inode: &Inode, f: EntryFn<'_>) -> FsResult<()> {
    let ino = inode.ino;
    match inode.format {
        ForkFormat::Local => shortform::for_each(ino, &inode.fork, inode.size, fs.sb.has_ftype, f),
        ForkFormat::Extents | ForkFormat::Btree => {
            let extents = extent_map(fs, inode)?;
            for_each_block_entry(fs, ino, &extents, f)
        }
        ForkFormat::Dev => Err(corrupt(format!("directory {ino}: device fork format"))),
    }
}

fn for_each_block_entry(fs: &XfsFs, ino: u64, extents: &[Extent], f: EntryFn<'_>) -> FsResult<()> {
    let sb = &fs.sb;
    let dirblk_fsbs = 1u64 << sb.dirblk_log;
    let leaf_fsb = LEAF_OFFSET >> sb.block_log;
    let mut read_bytes = 0u64;
    let mut last_dirblk: Option<u64> = None;
    for e in extents {
        if e.file_block >= leaf_fsb {
            break;
        }
        let end = e.file_end().min(leaf_fsb);
        // Directory blocks that start inside this extent (a block spanning two extents is
        // read through the map).
        let mut db = e.file_block >> sb.dirblk_log;
        while db << sb.dirblk_log < end {
            if last_dirblk.is_some_and(|l| db <= l) {
                db += 1;
                continue;
            }
            last_dirblk = Some(db);
            read_bytes += u64::from(sb.dir_block_size());
            if read_bytes > MAX_DIR_DATA_BYTES {
                return Err(corrupt(format!(
                    "directory {ino}: more than {MAX_DIR_DATA_BYTES} bytes of entries"
                )));
            }
            let (byte, block) = fs.read_mapped(extents, db << sb.dirblk_log, dirblk_fsbs, ino)?;
            if data::for_each(sb, ino, byte, &block, f)? {
                return Ok(());
            }
            db += 1;
        }
    }
    Ok(())
}
