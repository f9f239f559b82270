//! The XFS on-disk inode (`xfs_dinode`): core fields, timestamps and the data fork.

use super::superblock::Superblock;
use super::{be16, be32, be64, corrupt, verify_crc};
use crate::api::{FileKind, FsResult};

/// `IN`.
const INODE_MAGIC: u16 = 0x494e;
/// Offset of the CRC in a v3 inode.
const INODE_CRC_OFF: usize = 100;
/// `di_flags`: the file's data lives on the realtime device.
const DIFLAG_REALTIME: u16 = 0x0001;
/// `di_flags2`: timestamps are 64-bit nanosecond counters.
const DIFLAG2_BIGTIME: u64 = 1 << 3;
/// `di_flags2`: extent counters are 64/32 bits wide.
const DIFLAG2_NREXT64: u64 = 1 << 4;
/// Seconds between the bigtime epoch and the Unix epoch.
const BIGTIME_EPOCH_OFFSET: i64 = 1 << 31;

/// Format of an inode fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkFormat {
    /// Device number (character/block devices, fifos, sockets).
    Dev,
    /// Data inline in the inode.
    Local,
    /// An array of extent records.
    Extents,
    /// The root of a block-map btree.
    Btree,
}

/// The parts of an inode the reader uses.
#[derive(Debug, Clone)]
pub struct Inode {
    /// Inode number.
    pub ino: u64,
    /// `di_mode`.
    pub mode: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `di_size`.
    pub size: u64,
    /// Modification time (seconds since the Unix epoch).
    pub mtime: i64,
    /// Data fork format.
    pub format: ForkFormat,
    /// Number of data fork extents (`di_nextents` or `di_big_nextents`).
    pub nextents: u64,
    /// On the realtime device (not readable here).
    pub realtime: bool,
    /// The raw data fork bytes (bounded by the inode size).
    pub fork: Vec<u8>,
}

impl Inode {
    /// Parses the inode `ino` from its `inode_size` bytes in `buf`.
    pub fn parse(sb: &Superblock, ino: u64, buf: &[u8]) -> FsResult<Inode> {
        let isize = usize::from(sb.inode_size);
        if buf.len() < isize {
            return Err(corrupt(format!("inode {ino}: short read")));
        }
        let buf = &buf[..isize];
        if be16(buf, 0)? != INODE_MAGIC {
            return Err(corrupt(format!("inode {ino}: bad magic")));
        }
        let version = buf[4];
        let core_size = match version {
            3 => {
                if sb.version != 5 {
                    return Err(corrupt(format!("inode {ino}: v3 inode on a v4 filesystem")));
                }
                verify_crc(buf, INODE_CRC_OFF, &format!("inode {ino}"))?;
                let stored_ino = be64(buf, 152)?;
                if stored_ino != ino {
                    return Err(corrupt(format!(
                        "inode {ino}: records inode number {stored_ino}"
                    )));
                }
                if buf[160..176] != sb.meta_uuid {
                    return Err(corrupt(format!("inode {ino}: foreign filesystem UUID")));
                }
                176
            }
            1 | 2 if sb.version == 4 => 100,
            _ => return Err(corrupt(format!("inode {ino}: bad version {version}"))),
        };
        let mode = be16(buf, 2)?;
        let format = match buf[5] {
            0 => ForkFormat::Dev,
            1 => ForkFormat::Local,
            2 => ForkFormat::Extents,
            3 => ForkFormat::Btree,
            f => {
                return Err(corrupt(format!(
                    "inode {ino}: unknown data fork format {f}"
                )))
            }
        };
        let uid = be32(buf, 8)?;
        let gid = be32(buf, 12)?;
        let flags = be16(buf, 90)?;
        let flags2 = if version == 3 { be64(buf, 120)? } else { 0 };
        let mtime = if flags2 & DIFLAG2_BIGTIME != 0 {
            let ns = be64(buf, 40)?;
            i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX) - BIGTIME_EPOCH_OFFSET
        } else {
            i64::from(be32(buf, 40)? as i32)
        };
        let size = be64(buf, 56)?;
        if size > i64::MAX as u64 {
            return Err(corrupt(format!("inode {ino}: negative size")));
        }
        let nextents = if flags2 & DIFLAG2_NREXT64 != 0 {
            if !sb.nrext64 {
                return Err(corrupt(format!(
                    "inode {ino}: large extent counts without nrext64"
                )));
            }
            be64(buf, 24)?
        } else {
            u64::from(be32(buf, 76)?)
        };
        let forkoff = usize::from(buf[82]) * 8;
        let fork_end = if forkoff == 0 {
            isize
        } else {
            core_size + forkoff
        };
        if fork_end > isize {
            return Err(corrupt(format!(
                "inode {ino}: attribute fork offset out of range"
            )));
        }
        let fork = buf[core_size..fork_end].to_vec();
        Ok(Inode {
            ino,
            mode,
            uid,
            gid,
            size,
            mtime,
            format,
            nextents,
            realtime: flags & DIFLAG_REALTIME != 0,
            fork,
        })
    }

    /// The kind of object, from the mode.
    pub fn kind(&self) -> FileKind {
        kind_from_mode(self.mode)
    }
}

/// The file kind encoded in the high bits of a mode.
pub fn kind_from_mode(mode: u16) -> FileKind {
    match mode & 0o170000 {
        0o100000 => FileKind::File,
        0o040000 => FileKind::Dir,
        0o120000 => FileKind::Symlink,
        0o020000 => FileKind::CharDevice,
        0o060000 => FileKind::BlockDevice,
        0o010000 => FileKind::Fifo,
        0o140000 => FileKind::Socket,
        _ => FileKind::Unknown,
    }
}
