//! Fuzz targets of the issue-12 readers in this module: VDI images and differencing VHDs.
//! Both take a whole image file in the sparse format of [`crate::container`].

use crate::container::{input_hash, read_disk, SparseDisk};
use crate::Target;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use vhdprep_disk::vdi::{VdiDisk, VdiHeader, VdiImageType};
use vhdprep_disk::vhd::parent::parent_candidates;
use vhdprep_disk::vhd::{DifferencingHeader, DifferencingVhd};
use vhdprep_disk::{ReadAt, SharedDisk};

/// The VDI and differencing-VHD targets.
pub const TARGETS: &[Target] = &[
    Target {
        name: "vdi",
        about: "a whole VDI file (sparse format): VdiHeader::read (pre-header, 1.1 header), the \
                block map, reads and next_data of VdiDisk (differencing ones over a synthetic \
                parent)",
        run: vdi,
    },
    Target {
        name: "vhd_differencing",
        about: "a whole differencing VHD (sparse format): footer, dynamic header, parent \
                locators and candidate paths, BAT and bitmaps read over a synthetic parent",
        run: vhd_differencing,
    },
];

/// The input is a whole VDI file in the sparse format; a differencing image gets a synthetic
/// parent, as long as the child or shorter (derived from the input).
pub fn vdi(data: &[u8]) {
    let file = SparseDisk::shared(data);
    let Ok(header) = VdiHeader::read(file.as_ref()) else {
        return;
    };
    let _ = format!("{header:?}");
    let h = input_hash(data);
    let parent: Option<SharedDisk> = (header.image_type == VdiImageType::Differencing).then(|| {
        let len = header.disk_size;
        Arc::new(StripedParent {
            len: if h % 3 == 0 { len / 2 } else { len },
        }) as SharedDisk
    });
    match VdiDisk::open(file, header, parent) {
        Ok(disk) => read_disk(&disk, h),
        Err(e) => drop(e.to_string()),
    }
}

/// A parent that reads as a byte pattern, with data every other MiB (so that the child's
/// `next_data` merges ranges from both).
struct StripedParent {
    len: u64,
}

impl ReadAt for StripedParent {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf
            .len()
            .min(usize::try_from(self.len - offset).unwrap_or(usize::MAX));
        buf[..n].fill(0xA5);
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        const MIB: u64 = 1 << 20;
        let start = if (offset / MIB) % 2 == 0 {
            offset
        } else {
            (offset / MIB + 1) * MIB
        };
        let end = (start / MIB + 1).saturating_mul(MIB).min(self.len);
        Ok((start < end).then_some(start..end))
    }
}

/// The input is a whole differencing VHD in the sparse format; its parent is synthetic, as
/// long as the child or shorter (derived from the input).
pub fn vhd_differencing(data: &[u8]) {
    let file = SparseDisk::shared(data);
    let Ok(header) = DifferencingHeader::read(file.as_ref()) else {
        return;
    };
    for c in parent_candidates(
        Path::new("/images/child.vhd"),
        &header.dynamic,
        &header.locators,
    ) {
        let _ = c.source.to_string();
    }
    let h = input_hash(data);
    let len = header.virtual_size();
    let parent_len = if h % 3 == 0 { len / 2 } else { len };
    let parent: SharedDisk = Arc::new(StripedParent { len: parent_len });
    match DifferencingVhd::open(file, header, parent) {
        Ok(disk) => read_disk(&disk, h),
        Err(e) => drop(e.to_string()),
    }
}
