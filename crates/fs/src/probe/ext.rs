//! ext2, ext3, ext4 (and the external journal `jbd`, the test flavour `ext4dev`): the
//! superblock at 1024 bytes, told apart by feature flags exactly as libblkid does.

use super::{bytes, label_bytes, le16, le32, read_window, uuid16, Probe};
use std::io;
use vhdprep_disk::ReadAt;

const MAGIC: u16 = 0xEF53;
const COMPAT_HAS_JOURNAL: u32 = 0x0004;
const INCOMPAT_JOURNAL_DEV: u32 = 0x0008;
const INCOMPAT_64BIT: u32 = 0x0080;
const RO_COMPAT_METADATA_CSUM: u32 = 0x0400;
/// RO_COMPAT features ext2 and ext3 understand: sparse_super, large_file, btree_dir.
const RO_COMPAT_EXT23: u32 = 0x0001 | 0x0002 | 0x0004;
/// INCOMPAT features ext2 understands: filetype, meta_bg.
const INCOMPAT_EXT2: u32 = 0x0002 | 0x0010;
/// INCOMPAT features ext3 understands: filetype, recover, meta_bg.
const INCOMPAT_EXT3: u32 = 0x0002 | 0x0004 | 0x0010;
/// `s_flags`: filesystem for testing development code.
const FLAGS_TEST_FILESYS: u32 = 0x0004;

/// The libblkid type of an ext superblock with these feature words.
pub(crate) fn ext_type(compat: u32, incompat: u32, ro_compat: u32, flags: u32) -> &'static str {
    if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        return "jbd";
    }
    if flags & FLAGS_TEST_FILESYS != 0 {
        return "ext4dev";
    }
    if ro_compat & !RO_COMPAT_EXT23 != 0 || incompat & !INCOMPAT_EXT3 != 0 {
        return "ext4";
    }
    if compat & COMPAT_HAS_JOURNAL != 0 {
        return "ext3";
    }
    if ro_compat & !RO_COMPAT_EXT23 == 0 && incompat & !INCOMPAT_EXT2 == 0 {
        return "ext2";
    }
    // Without a journal, with the `recover` flag only: libblkid's ext2 and ext3 probers both
    // refuse it and ext4's finds nothing beyond ext3; it is not reported.
    ""
}

pub(super) fn probe(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    let Some(sb) = read_window(vol, 1024, 1024)? else {
        return Ok(None);
    };
    if le16(&sb, 0x38) != MAGIC {
        return Ok(None);
    }
    let compat = le32(&sb, 0x5C);
    let incompat = le32(&sb, 0x60);
    let ro_compat = le32(&sb, 0x64);
    if ro_compat & RO_COMPAT_METADATA_CSUM != 0 {
        // crc32c seeded with ~0 and not finalised, as ext4 stores it.
        let csum = !crc32c::crc32c(&sb[..0x3FC]);
        if csum != le32(&sb, 0x3FC) {
            return Ok(None);
        }
    }
    let fs_type = ext_type(compat, incompat, ro_compat, le32(&sb, 0x160));
    if fs_type.is_empty() {
        return Ok(None);
    }
    let mut p = Probe::new(fs_type);
    p.uuid = uuid16(bytes(&sb, 0x68, 16));
    p.label = label_bytes(bytes(&sb, 0x78, 16));
    let log = le32(&sb, 0x18);
    if log <= 16 {
        let bs = 1024u64 << log;
        let mut blocks = u64::from(le32(&sb, 0x04));
        if incompat & INCOMPAT_64BIT != 0 {
            blocks |= u64::from(le32(&sb, 0x150)) << 32;
        }
        p.block_size = u32::try_from(bs).ok();
        p.size = blocks.checked_mul(bs);
    }
    Ok(Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_libblkid() {
        // mke2fs defaults: ext2 = filetype + sparse_super/large_file; ext3 adds has_journal;
        // ext4 adds extents (incompat 0x40) and more.
        assert_eq!(ext_type(0, 0x2, 0x3, 0), "ext2");
        assert_eq!(ext_type(0x4, 0x2, 0x3, 0), "ext3");
        assert_eq!(ext_type(0x4, 0x2 | 0x40 | 0x80, 0x3, 0), "ext4");
        assert_eq!(ext_type(0, 0x2 | 0x40, 0x3, 0), "ext4");
        assert_eq!(
            ext_type(0x4, 0x2 | 0x40, 0x3, FLAGS_TEST_FILESYS),
            "ext4dev"
        );
        assert_eq!(ext_type(0, 0x8, 0, 0), "jbd");
    }
}
