//! The VDI header: the 72-byte pre-header and the version 1.1 header after it.
//!
//! All numbers are little-endian. Offsets are from the start of the file:
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 64 | text, e.g. `<<< Oracle VM VirtualBox Disk Image >>>\n` (not checked) |
//! | 64 | 4 | signature `0xbeda107f` |
//! | 68 | 4 | version, `0x00010001` (1.1); 1.0 headers have another layout |
//! | 72 | 4 | header size: 384 (qemu-img) or 400 (VirtualBox, with the LCHS geometry) |
//! | 76 | 4 | image type: 1 dynamic ("normal"), 2 static ("fixed"), 3 undo, 4 differencing |
//! | 80 | 4 | flags |
//! | 84 | 256 | comment |
//! | 340 | 4 | offset of the block map |
//! | 344 | 4 | offset of the data |
//! | 348 | 16 | legacy geometry: cylinders, heads, sectors, sector size (must be 512) |
//! | 364 | 4 | unused |
//! | 368 | 8 | disk size in bytes |
//! | 376 | 4 | block size (1 MiB from VirtualBox and qemu-img) |
//! | 380 | 4 | extra bytes in front of each block's data (0 in practice) |
//! | 384 | 4 | blocks in the image (block-map entries) |
//! | 388 | 4 | blocks allocated |
//! | 392 | 4 × 16 | UUIDs: this image, last modification, link (parent), parent's modification |
//! | 456 | 16 | (header size ≥ 400) LCHS geometry: cylinders, heads, sectors, sector size |
//!
//! The layout follows VirtualBox's `VDICore.h` (`VDIPREHEADER`, `VDIHEADER1`,
//! `VDIHEADER1PLUS`) as qemu's `block/vdi.c` reads it.

use super::VdiError;
use crate::read_at::ReadAt;
use uuid::Uuid;

/// The signature at offset 64.
pub const VDI_SIGNATURE: u32 = 0xbeda_107f;
/// Version 1.1, the only one written since VirtualBox 1.x (major in the high 16 bits).
pub const VDI_VERSION_1_1: u32 = 0x0001_0001;
/// Size of the pre-header (text, signature, version).
pub const PRE_HEADER_SIZE: u64 = 72;
/// Smallest version-1.1 header (`VDIHEADER1`, what qemu-img writes).
pub const HEADER1_SIZE: u32 = 384;
/// `VDIHEADER1PLUS`: [`HEADER1_SIZE`] plus the 16-byte LCHS geometry (what VirtualBox writes).
pub const HEADER1_PLUS_SIZE: u32 = 400;
/// Bytes read to decode the header: pre-header plus `VDIHEADER1PLUS`.
const READ_SIZE: usize = (PRE_HEADER_SIZE as usize) + HEADER1_PLUS_SIZE as usize;

/// What kind of VDI image the header says this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VdiImageType {
    /// Type 1, "normal": blocks are allocated on first write (VirtualBox "dynamic").
    Dynamic,
    /// Type 2, "fixed": every block allocated at creation (qemu-img `-o static=on`).
    Static,
    /// Type 3, "undo": an undo image of VirtualBox 1.x.
    Undo,
    /// Type 4, "diff": a differencing image (VirtualBox snapshots), data defers to a parent.
    Differencing,
    /// Any other number.
    Other(u32),
}

impl VdiImageType {
    fn from_u32(v: u32) -> Self {
        match v {
            1 => VdiImageType::Dynamic,
            2 => VdiImageType::Static,
            3 => VdiImageType::Undo,
            4 => VdiImageType::Differencing,
            n => VdiImageType::Other(n),
        }
    }

    /// The name `info` shows.
    pub fn name(self) -> String {
        match self {
            VdiImageType::Dynamic => "dynamic".into(),
            VdiImageType::Static => "static".into(),
            VdiImageType::Undo => "undo".into(),
            VdiImageType::Differencing => "differencing".into(),
            VdiImageType::Other(n) => format!("unknown type {n}"),
        }
    }
}

/// Cylinders, heads, sectors and sector size, as the header records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VdiGeometry {
    /// Cylinders.
    pub cylinders: u32,
    /// Heads.
    pub heads: u32,
    /// Sectors per track.
    pub sectors: u32,
    /// Bytes per sector.
    pub sector_size: u32,
}

/// A decoded VDI header. Every field `info` shows; [`VdiHeader::read`] checks that the
/// numbers the reader relies on are usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdiHeader {
    /// The text of the pre-header, up to its first NUL (which program wrote it).
    pub text: String,
    /// Version (major << 16 | minor).
    pub version: u32,
    /// Header size after the pre-header.
    pub header_size: u32,
    /// Image type.
    pub image_type: VdiImageType,
    /// Image flags.
    pub flags: u32,
    /// The comment, up to its first NUL.
    pub comment: String,
    /// Offset of the block map in the file.
    pub block_map_offset: u32,
    /// Offset of the first data block in the file.
    pub data_offset: u32,
    /// Legacy geometry (its sector size is the disk's sector size).
    pub legacy_geometry: VdiGeometry,
    /// LCHS geometry, present when the header is at least [`HEADER1_PLUS_SIZE`] bytes.
    pub lchs_geometry: Option<VdiGeometry>,
    /// Virtual disk size in bytes.
    pub disk_size: u64,
    /// Block size in bytes.
    pub block_size: u32,
    /// Extra bytes stored in front of each block's data.
    pub block_extra: u32,
    /// Entries in the block map.
    pub blocks_in_image: u32,
    /// Blocks the header says are allocated.
    pub blocks_allocated: u32,
    /// This image's UUID.
    pub uuid_image: Uuid,
    /// UUID of the last modification.
    pub uuid_last_modification: Uuid,
    /// The parent's UUID (differencing images), nil otherwise.
    pub uuid_link: Uuid,
    /// The parent's modification UUID (differencing images), nil otherwise.
    pub uuid_parent_modification: Uuid,
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from(le32(b, off)) | (u64::from(le32(b, off + 4)) << 32)
}

/// VirtualBox stores `RTUUID`s in the in-memory order of a Windows GUID (first three fields
/// little-endian), which is what `VBoxManage showmediuminfo` prints.
fn uuid_at(b: &[u8], off: usize) -> Uuid {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[off..off + 16]);
    Uuid::from_bytes_le(a)
}

fn text_at(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn geometry_at(b: &[u8], off: usize) -> VdiGeometry {
    VdiGeometry {
        cylinders: le32(b, off),
        heads: le32(b, off + 4),
        sectors: le32(b, off + 8),
        sector_size: le32(b, off + 12),
    }
}

impl VdiHeader {
    /// Decodes the header bytes (at least pre-header plus [`HEADER1_SIZE`]); checks only the
    /// signature and version, which decide the layout.
    pub fn parse(b: &[u8]) -> Result<VdiHeader, VdiError> {
        let min = PRE_HEADER_SIZE as usize + HEADER1_SIZE as usize;
        if b.len() < min {
            return Err(VdiError::TooSmall {
                len: b.len() as u64,
            });
        }
        let signature = le32(b, 64);
        if signature != VDI_SIGNATURE {
            return Err(VdiError::BadSignature(signature));
        }
        let version = le32(b, 68);
        if version != VDI_VERSION_1_1 {
            return Err(VdiError::UnsupportedVersion(version));
        }
        let header_size = le32(b, 72);
        let lchs_geometry =
            (header_size >= HEADER1_PLUS_SIZE && b.len() >= READ_SIZE).then(|| geometry_at(b, 456));
        Ok(VdiHeader {
            text: text_at(&b[0..64]),
            version,
            header_size,
            image_type: VdiImageType::from_u32(le32(b, 76)),
            flags: le32(b, 80),
            comment: text_at(&b[84..340]),
            block_map_offset: le32(b, 340),
            data_offset: le32(b, 344),
            legacy_geometry: geometry_at(b, 348),
            lchs_geometry,
            disk_size: le64(b, 368),
            block_size: le32(b, 376),
            block_extra: le32(b, 380),
            blocks_in_image: le32(b, 384),
            blocks_allocated: le32(b, 388),
            uuid_image: uuid_at(b, 392),
            uuid_last_modification: uuid_at(b, 408),
            uuid_link: uuid_at(b, 424),
            uuid_parent_modification: uuid_at(b, 440),
        })
    }

    /// Reads and decodes the header at the start of `file`, and checks every number the
    /// reader relies on against the file: header size, sector size, block size, block count
    /// against the disk size, and where the block map and the data lie.
    pub fn read(file: &dyn ReadAt) -> Result<VdiHeader, VdiError> {
        let len = file.len();
        let want = (READ_SIZE as u64).min(len) as usize;
        let mut b = [0u8; READ_SIZE];
        file.read_exact_at(&mut b[..want], 0)
            .map_err(|e| VdiError::io("cannot read the header", e))?;
        let header = VdiHeader::parse(&b[..want])?;
        header.validate(len)?;
        Ok(header)
    }

    /// Bytes from the start of one block's slot to the next (`block_size + block_extra`).
    pub fn block_stride(&self) -> u64 {
        u64::from(self.block_size) + u64::from(self.block_extra)
    }

    /// Block-map entries the disk size needs.
    pub fn blocks_needed(&self) -> u64 {
        self.disk_size.div_ceil(u64::from(self.block_size.max(1)))
    }

    /// Checks the numbers against each other and against a file of `file_len` bytes.
    pub fn validate(&self, file_len: u64) -> Result<(), VdiError> {
        if self.header_size < HEADER1_SIZE {
            return Err(VdiError::BadHeaderSize(self.header_size));
        }
        match self.image_type {
            VdiImageType::Dynamic | VdiImageType::Static | VdiImageType::Differencing => {}
            other => return Err(VdiError::UnsupportedType(other)),
        }
        let sector = self.legacy_geometry.sector_size;
        if sector != 512 {
            return Err(VdiError::BadSectorSize(sector));
        }
        let bs = self.block_size;
        if !bs.is_power_of_two() || !(512..=super::MAX_BLOCK_SIZE).contains(&bs) {
            return Err(VdiError::BadBlockSize(bs));
        }
        if self.block_extra % 512 != 0 || self.block_extra > bs {
            return Err(VdiError::BadBlockExtra(self.block_extra));
        }
        let needed = self.blocks_needed();
        if u64::from(self.blocks_in_image) < needed {
            return Err(VdiError::BlockCount {
                blocks: self.blocks_in_image,
                needed,
                disk_size: self.disk_size,
            });
        }
        if u64::from(self.blocks_in_image) > super::MAX_BLOCKS {
            return Err(VdiError::TooManyBlocks(self.blocks_in_image));
        }
        let header_end = PRE_HEADER_SIZE + u64::from(self.header_size);
        let map_at = u64::from(self.block_map_offset);
        let map_len = u64::from(self.blocks_in_image) * 4;
        let map_end = map_at + map_len;
        if map_at < header_end || map_end > u64::from(self.data_offset) || map_end > file_len {
            return Err(VdiError::BadBlockMapPlace {
                offset: map_at,
                len: map_len,
                data_offset: self.data_offset,
                file_len,
            });
        }
        if u64::from(self.data_offset) > file_len {
            return Err(VdiError::DataOffsetOutsideFile {
                offset: self.data_offset,
                file_len,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 512-byte header as qemu-img writes it: 4 MiB dynamic disk, 1 MiB blocks, map at 512,
    /// data at 1024.
    pub(crate) fn sample() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..36].copy_from_slice(b"<<< QEMU VM Virtual Disk Image >>>\n\0");
        b[64..68].copy_from_slice(&VDI_SIGNATURE.to_le_bytes());
        b[68..72].copy_from_slice(&VDI_VERSION_1_1.to_le_bytes());
        b[72..76].copy_from_slice(&HEADER1_SIZE.to_le_bytes());
        b[76..80].copy_from_slice(&1u32.to_le_bytes());
        b[340..344].copy_from_slice(&512u32.to_le_bytes());
        b[344..348].copy_from_slice(&1024u32.to_le_bytes());
        b[360..364].copy_from_slice(&512u32.to_le_bytes());
        b[368..376].copy_from_slice(&(4u64 << 20).to_le_bytes());
        b[376..380].copy_from_slice(&(1u32 << 20).to_le_bytes());
        b[384..388].copy_from_slice(&4u32.to_le_bytes());
        b[392] = 0x11;
        b
    }

    fn set32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn parses_qemu_and_virtualbox_layouts() {
        let b = sample();
        let h = VdiHeader::parse(&b).unwrap();
        assert_eq!(h.text, "<<< QEMU VM Virtual Disk Image >>>\n");
        assert_eq!(h.image_type, VdiImageType::Dynamic);
        assert_eq!(h.disk_size, 4 << 20);
        assert_eq!(h.block_size, 1 << 20);
        assert_eq!(h.blocks_in_image, 4);
        assert_eq!(h.lchs_geometry, None);
        assert_eq!(
            h.uuid_image.as_bytes()[3],
            0x11,
            "first field little-endian"
        );
        h.validate(1024).unwrap();
        // VirtualBox: 400-byte header with the LCHS geometry.
        let mut v = sample();
        set32(&mut v, 72, HEADER1_PLUS_SIZE);
        set32(&mut v, 456, 8);
        set32(&mut v, 460, 16);
        set32(&mut v, 464, 63);
        set32(&mut v, 468, 512);
        let h = VdiHeader::parse(&v).unwrap();
        assert_eq!(h.lchs_geometry.map(|g| g.sectors), Some(63));
        h.validate(1024).unwrap();
    }

    #[test]
    fn refuses_bad_signature_version_and_sizes() {
        let mut b = sample();
        b[64] ^= 1;
        assert!(matches!(
            VdiHeader::parse(&b),
            Err(VdiError::BadSignature(_))
        ));
        let mut b = sample();
        set32(&mut b, 68, 0x0001_0000);
        assert!(matches!(
            VdiHeader::parse(&b),
            Err(VdiError::UnsupportedVersion(0x0001_0000))
        ));
        assert!(matches!(
            VdiHeader::parse(&sample()[..400]),
            Err(VdiError::TooSmall { len: 400 })
        ));
        let check = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = sample();
            f(&mut b);
            VdiHeader::parse(&b).unwrap().validate(1 << 30).unwrap_err()
        };
        assert!(matches!(
            check(&|b| set32(b, 72, 100)),
            VdiError::BadHeaderSize(100)
        ));
        assert!(matches!(
            check(&|b| set32(b, 76, 3)),
            VdiError::UnsupportedType(VdiImageType::Undo)
        ));
        assert!(matches!(
            check(&|b| set32(b, 76, 9)),
            VdiError::UnsupportedType(VdiImageType::Other(9))
        ));
        assert!(matches!(
            check(&|b| set32(b, 360, 4096)),
            VdiError::BadSectorSize(4096)
        ));
        assert!(matches!(
            check(&|b| set32(b, 376, 3 << 19)),
            VdiError::BadBlockSize(_)
        ));
        assert!(matches!(
            check(&|b| set32(b, 376, 0)),
            VdiError::BadBlockSize(0)
        ));
        assert!(matches!(
            check(&|b| set32(b, 380, 7)),
            VdiError::BadBlockExtra(7)
        ));
        // Disk size near 2^64: the block count cannot cover it.
        assert!(matches!(
            check(&|b| b[368..376].copy_from_slice(&u64::MAX.to_le_bytes())),
            VdiError::BlockCount { .. }
        ));
        assert!(matches!(
            check(&|b| {
                b[368..376].copy_from_slice(&(1u64 << 51).to_le_bytes());
                set32(b, 384, u32::MAX);
                set32(b, 344, u32::MAX);
            }),
            VdiError::TooManyBlocks(u32::MAX)
        ));
        // The block map over the header, past the data offset, or past the end of the file.
        assert!(matches!(
            check(&|b| set32(b, 340, 0)),
            VdiError::BadBlockMapPlace { .. }
        ));
        assert!(matches!(
            check(&|b| set32(b, 344, 516)),
            VdiError::BadBlockMapPlace { .. }
        ));
        let h = VdiHeader::parse(&sample()).unwrap();
        assert!(matches!(
            h.validate(520),
            Err(VdiError::BadBlockMapPlace { .. })
        ));
        assert!(matches!(
            h.validate(1000),
            Err(VdiError::DataOffsetOutsideFile { .. })
        ));
    }
}
