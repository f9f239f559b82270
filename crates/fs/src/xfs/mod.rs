//! A read-only XFS reader of our own (v5 with CRCs, as `mkfs.xfs` makes today, and v4 with
//! version 2 directories).
//!
//! One file per on-disk structure: [`superblock`], [`inode`], [`bmbt`] (extent records and
//! the block-map btree), [`dir`] (short-form, block, leaf and node directories), [`symlink`].
//!
//! Everything read from the disk is checked before use: the superblock and (v5) inode,
//! bmbt, directory and symlink block CRCs are verified, inode and block numbers must map inside
//! the filesystem, extent lists and btrees are bounded in size and depth and must not overlap
//! or revisit blocks. Damage is reported as [`FsError::Corrupt`].
//!
//! Not supported: realtime files (reported), attribute forks (not read), v4 filesystems with
//! version 1 directories.

pub mod bmbt;
pub mod dir;
pub mod inode;
pub mod superblock;
pub mod symlink;

use crate::api::{
    split_path, DirEntry, FileKind, FileSystem, FsError, FsResult, Metadata, Volume,
    MAX_DIR_ENTRIES,
};
use bmbt::{extent_map, Extent};
use inode::{ForkFormat, Inode};
use superblock::Superblock;

const FS: &str = "xfs";

pub(crate) fn corrupt(what: String) -> FsError {
    FsError::Corrupt { fs: FS, what }
}

pub(crate) fn unsupported(what: String) -> FsError {
    FsError::Unsupported { fs: FS, what }
}

fn field<const N: usize>(buf: &[u8], off: usize) -> FsResult<[u8; N]> {
    off.checked_add(N)
        .and_then(|end| buf.get(off..end))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| corrupt(format!("structure truncated at offset {off}")))
}

pub(crate) fn be16(buf: &[u8], off: usize) -> FsResult<u16> {
    field(buf, off).map(u16::from_be_bytes)
}

pub(crate) fn be32(buf: &[u8], off: usize) -> FsResult<u32> {
    field(buf, off).map(u32::from_be_bytes)
}

pub(crate) fn be64(buf: &[u8], off: usize) -> FsResult<u64> {
    field(buf, off).map(u64::from_be_bytes)
}

/// CRC32C of `buf` with the 4-byte checksum field at `crc_off` taken as zero.
pub(crate) fn crc_of(buf: &[u8], crc_off: usize) -> u32 {
    let crc = crc32c::crc32c(&buf[..crc_off]);
    let crc = crc32c::crc32c_append(crc, &[0u8; 4]);
    crc32c::crc32c_append(crc, &buf[crc_off + 4..])
}

/// Checks the little-endian CRC32C stored at `crc_off` of a v5 metadata block.
pub(crate) fn verify_crc(buf: &[u8], crc_off: usize, what: &str) -> FsResult<()> {
    let stored = field::<4>(buf, crc_off).map(u32::from_le_bytes)?;
    let computed = crc_of(buf, crc_off);
    if stored != computed {
        return Err(corrupt(format!(
            "{what}: CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )));
    }
    Ok(())
}

/// An open XFS filesystem.
pub struct XfsFs {
    vol: Volume,
    sb: Superblock,
}

impl std::fmt::Debug for XfsFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XfsFs")
            .field("sb", &self.sb)
            .finish_non_exhaustive()
    }
}

/// Opens the XFS filesystem on `vol`: reads and verifies the superblock and the root inode.
pub fn open(vol: Volume) -> FsResult<XfsFs> {
    let mut first = vec![0u8; 512];
    read_exact(&vol, &mut first, 0)?;
    if be32(&first, 0)? != superblock::SB_MAGIC {
        return Err(corrupt("no XFS superblock (magic XFSB) at offset 0".into()));
    }
    let sect = usize::from(be16(&first, 102)?);
    if sect > 512 && sect <= 32768 {
        first = vec![0u8; sect];
        read_exact(&vol, &mut first, 0)?;
    }
    let sb = Superblock::parse(&first)?;
    let fs_bytes = sb
        .dblocks
        .checked_mul(u64::from(sb.block_size))
        .ok_or_else(|| corrupt("filesystem size overflows".into()))?;
    if fs_bytes > vol.len() {
        return Err(corrupt(format!(
            "filesystem of {fs_bytes} bytes is larger than its {}-byte volume",
            vol.len()
        )));
    }
    let fs = XfsFs { vol, sb };
    let root = fs.read_inode(fs.sb.root_ino)?;
    if root.kind() != FileKind::Dir {
        return Err(corrupt(format!(
            "root inode {} is not a directory",
            fs.sb.root_ino
        )));
    }
    Ok(fs)
}

fn read_exact(vol: &Volume, buf: &mut [u8], offset: u64) -> FsResult<()> {
    vol.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            corrupt(format!(
                "read of {} bytes at {offset} is past the end of the volume",
                buf.len()
            ))
        } else {
            FsError::Io(e)
        }
    })
}

fn path_str(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

impl XfsFs {
    /// The validated superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Filesystem UUID.
    pub fn uuid(&self) -> [u8; 16] {
        self.sb.uuid
    }

    /// Volume label (may be empty).
    pub fn label(&self) -> &[u8] {
        &self.sb.label
    }

    pub(crate) fn read_bytes(&self, offset: u64, len: usize) -> FsResult<Vec<u8>> {
        let mut buf = vec![0u8; len];
        read_exact(&self.vol, &mut buf, offset)?;
        Ok(buf)
    }

    /// Reads and parses inode `ino`.
    pub fn read_inode(&self, ino: u64) -> FsResult<Inode> {
        let byte = self.sb.inode_to_byte(ino)?;
        let buf = self.read_bytes(byte, usize::from(self.sb.inode_size))?;
        Inode::parse(&self.sb, ino, &buf)
    }

    /// Reads `n` file blocks from `file_block` of a file mapped by `extents` (all must be
    /// mapped and written: used for directory and symlink blocks). Returns the byte offset of
    /// the first block and the bytes.
    pub(crate) fn read_mapped(
        &self,
        extents: &[Extent],
        file_block: u64,
        n: u64,
        ino: u64,
    ) -> FsResult<(u64, Vec<u8>)> {
        let bs = u64::from(self.sb.block_size);
        let total = usize::try_from(n * bs).map_err(|_| corrupt("block too large".into()))?;
        let mut out = Vec::with_capacity(total);
        let mut first = None;
        let mut fb = file_block;
        while fb < file_block + n {
            let i = extents.partition_point(|e| e.file_end() <= fb);
            let e = extents
                .get(i)
                .filter(|e| e.file_block <= fb && !e.unwritten)
                .ok_or_else(|| corrupt(format!("inode {ino}: file block {fb} is not mapped")))?;
            let run = (e.file_end() - fb).min(file_block + n - fb);
            let fsb = e.fs_block + (fb - e.file_block);
            let byte = self.sb.extent_to_byte(fsb, run)?;
            first.get_or_insert(byte);
            let start = out.len();
            out.resize(start + (run * bs) as usize, 0);
            read_exact(&self.vol, &mut out[start..], byte)?;
            fb += run;
        }
        Ok((first.unwrap_or(0), out))
    }

    /// The inode at `path` (no symlink is followed).
    pub fn lookup(&self, path: &[u8]) -> FsResult<Inode> {
        let mut cur = self.read_inode(self.sb.root_ino)?;
        for comp in split_path(path) {
            if cur.kind() != FileKind::Dir {
                return Err(FsError::NotADirectory {
                    path: path_str(path),
                });
            }
            let mut found = None;
            dir::for_each_entry(self, &cur, &mut |name, ino, _| {
                if name == comp {
                    found = Some(ino);
                    return Ok(true);
                }
                Ok(false)
            })?;
            let ino = found.ok_or_else(|| FsError::NotFound {
                path: path_str(path),
            })?;
            cur = self.read_inode(ino)?;
        }
        Ok(cur)
    }

    fn kind_of_entry(&self, ino: u64, ftype: Option<u8>) -> FsResult<FileKind> {
        Ok(match ftype {
            Some(1) => FileKind::File,
            Some(2) => FileKind::Dir,
            Some(3) => FileKind::CharDevice,
            Some(4) => FileKind::BlockDevice,
            Some(5) => FileKind::Fifo,
            Some(6) => FileKind::Socket,
            Some(7) => FileKind::Symlink,
            _ => self.read_inode(ino)?.kind(),
        })
    }
}

impl FileSystem for XfsFs {
    fn fs_type(&self) -> &'static str {
        FS
    }

    fn metadata(&self, path: &[u8]) -> FsResult<Metadata> {
        let inode = self.lookup(path)?;
        Ok(Metadata {
            kind: inode.kind(),
            mode: u32::from(inode.mode & 0o7777),
            uid: inode.uid,
            gid: inode.gid,
            size: inode.size,
            mtime: Some(inode.mtime),
            inode: Some(inode.ino),
        })
    }

    fn read_dir(&self, path: &[u8]) -> FsResult<Vec<DirEntry>> {
        let inode = self.lookup(path)?;
        if inode.kind() != FileKind::Dir {
            return Err(FsError::NotADirectory {
                path: path_str(path),
            });
        }
        let mut raw: Vec<(Vec<u8>, u64, Option<u8>)> = Vec::new();
        dir::for_each_entry(self, &inode, &mut |name, ino, ftype| {
            if raw.len() >= MAX_DIR_ENTRIES {
                return Err(corrupt(format!(
                    "directory {}: more than {MAX_DIR_ENTRIES} entries",
                    inode.ino
                )));
            }
            raw.push((name.to_vec(), ino, ftype));
            Ok(false)
        })?;
        raw.into_iter()
            .map(|(name, ino, ftype)| {
                Ok(DirEntry {
                    name,
                    kind: self.kind_of_entry(ino, ftype)?,
                })
            })
            .collect()
    }

    fn read_link(&self, path: &[u8]) -> FsResult<Vec<u8>> {
        let inode = self.lookup(path)?;
        if inode.kind() != FileKind::Symlink {
            return Err(FsError::NotASymlink {
                path: path_str(path),
            });
        }
        symlink::target(self, &inode)
    }

    fn read_file(&self, path: &[u8], limit: u64) -> FsResult<Vec<u8>> {
        let inode = self.lookup(path)?;
        match inode.kind() {
            FileKind::Dir => {
                return Err(FsError::IsADirectory {
                    path: path_str(path),
                })
            }
            FileKind::File => {}
            _ => {
                return Err(unsupported(format!(
                    "{}: read_file on a special file or symlink",
                    path_str(path)
                )))
            }
        }
        if inode.size > limit {
            return Err(FsError::TooLarge {
                path: path_str(path),
                size: inode.size,
                limit,
            });
        }
        if inode.realtime {
            return Err(unsupported(format!(
                "{}: file on the realtime device",
                path_str(path)
            )));
        }
        let size = usize::try_from(inode.size)
            .map_err(|_| corrupt(format!("inode {}: size does not fit in memory", inode.ino)))?;
        match inode.format {
            ForkFormat::Local => {
                inode.fork.get(..size).map(<[u8]>::to_vec).ok_or_else(|| {
                    corrupt(format!("inode {}: inline data past the fork", inode.ino))
                })
            }
            ForkFormat::Extents | ForkFormat::Btree => {
                let extents = extent_map(self, &inode)?;
                let mut out = vec![0u8; size];
                let bs = u64::from(self.sb.block_size);
                for e in &extents {
                    if e.unwritten {
                        continue;
                    }
                    let Some(start) = e.file_block.checked_mul(bs) else {
                        break;
                    };
                    if start >= inode.size {
                        break;
                    }
                    let len = (e.count * bs).min(inode.size - start);
                    let byte = self.sb.extent_to_byte(e.fs_block, e.count)?;
                    let (s, l) = (start as usize, len as usize);
                    read_exact(&self.vol, &mut out[s..s + l], byte)?;
                }
                Ok(out)
            }
            ForkFormat::Dev => Err(corrupt(format!(
                "inode {}: regular file with device fork",
                inode.ino
            ))),
        }
    }
}
