//! The 512-byte VHD footer: every field, its checksum, and the size a reader should use.
//!
//! Layout (big-endian), from the VHD specification as implemented by Microsoft's
//! azure-vhd-utils and qemu's `block/vpc.c`:
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 8 | cookie `conectix` |
//! | 8 | 4 | features (2 = reserved bit; 1 = temporary) |
//! | 12 | 4 | file format version 0x00010000 |
//! | 16 | 8 | data offset (all ones for fixed disks) |
//! | 24 | 4 | timestamp, seconds since 2000-01-01 UTC |
//! | 28 | 4 | creator application |
//! | 32 | 4 | creator version |
//! | 36 | 4 | creator host OS |
//! | 40 | 8 | original size |
//! | 48 | 8 | current size |
//! | 56 | 4 | geometry C(2) H(1) S(1) |
//! | 60 | 4 | disk type (2 fixed, 3 dynamic, 4 differencing) |
//! | 64 | 4 | checksum: one's complement of the byte sum, this field zeroed |
//! | 68 | 16 | unique id |
//! | 84 | 1 | saved state |
//! | 85 | 427 | reserved (zero) |

use super::geometry::Geometry;
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Size of the footer in bytes.
pub const FOOTER_SIZE: usize = 512;
/// The footer cookie.
pub const COOKIE: &[u8; 8] = b"conectix";
/// The only file format version the specification defines.
pub const VERSION_1_0: u32 = 0x0001_0000;
/// Data offset of a fixed disk (no dynamic header).
pub const NO_DATA_OFFSET: u64 = u64::MAX;
/// Feature bit that the specification says is always set.
pub const FEATURE_RESERVED: u32 = 2;
/// Feature bit marking a temporary disk.
pub const FEATURE_TEMPORARY: u32 = 1;
/// Seconds from the Unix epoch to the VHD epoch, 2000-01-01T00:00:00Z.
pub const VHD_EPOCH_UNIX_SECONDS: u64 = 946_684_800;
/// Creator application code vhdprep writes.
pub const VHDPREP_CREATOR: [u8; 4] = *b"vhdp";

/// The disk type field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskType {
    /// 2: data followed by the footer.
    Fixed,
    /// 3: footer copy, dynamic header, block table, blocks, footer.
    Dynamic,
    /// 4: like dynamic, with a parent disk.
    Differencing,
    /// Any other value (0 none, 1 and 5 deprecated, or garbage).
    Other(u32),
}

impl DiskType {
    /// Decodes the field.
    pub fn from_u32(v: u32) -> DiskType {
        match v {
            2 => DiskType::Fixed,
            3 => DiskType::Dynamic,
            4 => DiskType::Differencing,
            other => DiskType::Other(other),
        }
    }

    /// Encodes the field.
    pub fn to_u32(self) -> u32 {
        match self {
            DiskType::Fixed => 2,
            DiskType::Dynamic => 3,
            DiskType::Differencing => 4,
            DiskType::Other(v) => v,
        }
    }

    /// Name used in reports: `fixed`, `dynamic`, `differencing`, `unknown(N)`.
    pub fn name(self) -> String {
        match self {
            DiskType::Fixed => "fixed".into(),
            DiskType::Dynamic => "dynamic".into(),
            DiskType::Differencing => "differencing".into(),
            DiskType::Other(v) => format!("unknown({v})"),
        }
    }
}

/// Which footer field gives the size of the virtual disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeSource {
    /// The current-size field (Hyper-V, Azure, qemu with `force_size`, vhdprep ...).
    CurrentSize,
    /// Cylinders × heads × sectors × 512, as Virtual PC (`vpc `) and old qemu (`qemu`) do.
    Geometry,
}

/// A decoded VHD footer. Every field is kept as read, valid or not; [`Footer::to_bytes`]
/// writes them back with a fresh checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    /// Bytes 0..8, `conectix` in a valid footer.
    pub cookie: [u8; 8],
    /// Feature bits.
    pub features: u32,
    /// File format version.
    pub version: u32,
    /// Offset of the dynamic header; all ones for fixed disks.
    pub data_offset: u64,
    /// Seconds since 2000-01-01 UTC.
    pub timestamp: u32,
    /// Creator application, four bytes (`win `, `qemu`, `qem2`, `vpc `, `vhdp` ...).
    pub creator_app: [u8; 4],
    /// Creator version.
    pub creator_version: u32,
    /// Creator host OS (`Wi2k`, `Mac `).
    pub creator_host_os: [u8; 4],
    /// Size when the disk was created.
    pub original_size: u64,
    /// Current size of the virtual disk in bytes.
    pub current_size: u64,
    /// CHS geometry.
    pub geometry: Geometry,
    /// Disk type.
    pub disk_type: DiskType,
    /// Checksum as stored.
    pub checksum: u32,
    /// Unique id of the disk.
    pub unique_id: [u8; 16],
    /// Saved-state flag (1 when the disk belongs to a saved VM state).
    pub saved_state: u8,
    /// Bytes 85..512 as stored (zero in a clean footer).
    pub reserved: [u8; 427],
}

fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn be64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_be_bytes(a)
}

/// One's complement of the byte sum of a footer, with its checksum field taken as zero.
pub fn checksum_of(bytes: &[u8; FOOTER_SIZE]) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |acc, (_, &b)| acc.wrapping_add(u32::from(b)));
    !sum
}

impl Footer {
    /// Decodes the 512 bytes of a footer. Never fails: validity is judged separately
    /// ([`Footer::has_cookie`], [`Footer::checksum_valid`], ...), because a damaged footer is
    /// still worth reporting field by field.
    pub fn parse(b: &[u8; FOOTER_SIZE]) -> Footer {
        let mut cookie = [0u8; 8];
        cookie.copy_from_slice(&b[0..8]);
        let mut creator_app = [0u8; 4];
        creator_app.copy_from_slice(&b[28..32]);
        let mut creator_host_os = [0u8; 4];
        creator_host_os.copy_from_slice(&b[36..40]);
        let mut unique_id = [0u8; 16];
        unique_id.copy_from_slice(&b[68..84]);
        let mut reserved = [0u8; 427];
        reserved.copy_from_slice(&b[85..512]);
        Footer {
            cookie,
            features: be32(b, 8),
            version: be32(b, 12),
            data_offset: be64(b, 16),
            timestamp: be32(b, 24),
            creator_app,
            creator_version: be32(b, 32),
            creator_host_os,
            original_size: be64(b, 40),
            current_size: be64(b, 48),
            geometry: Geometry::from_bytes([b[56], b[57], b[58], b[59]]),
            disk_type: DiskType::from_u32(be32(b, 60)),
            checksum: be32(b, 64),
            unique_id,
            saved_state: b[84],
            reserved,
        }
    }

    /// True when the first 8 bytes are `conectix`.
    pub fn has_cookie(&self) -> bool {
        &self.cookie == COOKIE
    }

    /// Encodes the footer, computing a fresh checksum (the stored `checksum` field is ignored).
    pub fn to_bytes(&self) -> [u8; FOOTER_SIZE] {
        let mut b = self.to_bytes_with_checksum(0);
        let sum = checksum_of(&b);
        b[64..68].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// Encodes the footer with the given checksum value, as-is (for tests of bad checksums).
    pub fn to_bytes_with_checksum(&self, checksum: u32) -> [u8; FOOTER_SIZE] {
        let mut b = [0u8; FOOTER_SIZE];
        b[0..8].copy_from_slice(&self.cookie);
        b[8..12].copy_from_slice(&self.features.to_be_bytes());
        b[12..16].copy_from_slice(&self.version.to_be_bytes());
        b[16..24].copy_from_slice(&self.data_offset.to_be_bytes());
        b[24..28].copy_from_slice(&self.timestamp.to_be_bytes());
        b[28..32].copy_from_slice(&self.creator_app);
        b[32..36].copy_from_slice(&self.creator_version.to_be_bytes());
        b[36..40].copy_from_slice(&self.creator_host_os);
        b[40..48].copy_from_slice(&self.original_size.to_be_bytes());
        b[48..56].copy_from_slice(&self.current_size.to_be_bytes());
        b[56..60].copy_from_slice(&self.geometry.to_bytes());
        b[60..64].copy_from_slice(&self.disk_type.to_u32().to_be_bytes());
        b[64..68].copy_from_slice(&checksum.to_be_bytes());
        b[68..84].copy_from_slice(&self.unique_id);
        b[84] = self.saved_state;
        b[85..512].copy_from_slice(&self.reserved);
        b
    }

    /// The checksum the footer should carry.
    pub fn expected_checksum(&self) -> u32 {
        checksum_of(&self.to_bytes_with_checksum(0))
    }

    /// True when the stored checksum matches the content.
    pub fn checksum_valid(&self) -> bool {
        self.checksum == self.expected_checksum()
    }

    /// Which field gives the disk size, the way qemu (9.2 and later) decides: Virtual PC
    /// (`vpc `) and old qemu (`qemu`) footers are sized by geometry, unless the geometry is the
    /// saturated maximum; every other creator by the current-size field.
    pub fn size_source(&self) -> SizeSource {
        let by_geometry = &self.creator_app == b"vpc " || &self.creator_app == b"qemu";
        if by_geometry && self.geometry != Geometry::MAX {
            SizeSource::Geometry
        } else {
            SizeSource::CurrentSize
        }
    }

    /// Size of the virtual disk in bytes, per [`Footer::size_source`].
    pub fn virtual_size(&self) -> u64 {
        match self.size_source() {
            SizeSource::CurrentSize => self.current_size,
            SizeSource::Geometry => self.geometry.total_sectors() * 512,
        }
    }

    /// The creator application as text, with NULs shown as `\0`.
    pub fn creator_app_text(&self) -> String {
        fourcc_text(&self.creator_app)
    }

    /// The creator host OS as text.
    pub fn creator_host_os_text(&self) -> String {
        fourcc_text(&self.creator_host_os)
    }

    /// The unique id formatted as a UUID (big-endian field order, as Hyper-V shows it).
    pub fn unique_id_text(&self) -> String {
        uuid::Uuid::from_bytes(self.unique_id).to_string()
    }

    /// The timestamp as a Unix time.
    pub fn timestamp_unix(&self) -> u64 {
        VHD_EPOCH_UNIX_SECONDS + u64::from(self.timestamp)
    }

    /// A footer for a new fixed disk of `size` bytes, as vhdprep writes it: creator `vhdp`,
    /// host `Wi2k`, geometry per the specification, a fresh UUID, the current time.
    pub fn new_fixed(size: u64) -> Footer {
        Footer {
            cookie: *COOKIE,
            features: FEATURE_RESERVED,
            version: VERSION_1_0,
            data_offset: NO_DATA_OFFSET,
            timestamp: vhd_timestamp_now(),
            creator_app: VHDPREP_CREATOR,
            creator_version: creator_version(),
            creator_host_os: *b"Wi2k",
            original_size: size,
            current_size: size,
            geometry: Geometry::for_sectors(size / 512),
            disk_type: DiskType::Fixed,
            checksum: 0,
            unique_id: *uuid::Uuid::new_v4().as_bytes(),
            saved_state: 0,
            reserved: [0u8; 427],
        }
    }
}

/// vhdprep's version as a footer creator version: major in the high 16 bits, minor in the low.
pub fn creator_version() -> u32 {
    let major: u32 = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0);
    let minor: u32 = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0);
    (major << 16) | (minor & 0xffff)
}

/// Seconds since 2000-01-01 UTC, now (0 if the clock is before 2000, saturating in 2136).
pub fn vhd_timestamp_now() -> u32 {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    u32::try_from(unix.saturating_sub(VHD_EPOCH_UNIX_SECONDS)).unwrap_or(u32::MAX)
}

fn fourcc_text(b: &[u8; 4]) -> String {
    b.iter()
        .map(|&c| match c {
            0 => "\\0".to_string(),
            0x20..=0x7e => (c as char).to_string(),
            _ => format!("\\x{c:02x}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The footer Azure itself wrote on an exported disk (quoted in the qemu patch
    /// "vpc: Read images exported from Azure correctly"): creator `wa\0\0`, 5 GiB.
    const AZURE_EXPORT: [u8; 96] = [
        0x63, 0x6f, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x78, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00,
        0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x2e, 0xc7, 0x9b, 0x96, 0x77, 0x61,
        0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x57, 0x69, 0x32, 0x6b, 0x00, 0x00, 0x00, 0x01, 0x40,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x40, 0x00, 0x00, 0x00, 0x28, 0xa2, 0x10, 0x3f,
        0x00, 0x00, 0x00, 0x02, 0xff, 0xff, 0xe7, 0x47, 0x8c, 0x54, 0xdf, 0x94, 0xbd, 0x35, 0x71,
        0x4c, 0x94, 0x5f, 0xe5, 0x44, 0x44, 0x53, 0x92, 0x1a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    fn azure_footer_bytes() -> [u8; FOOTER_SIZE] {
        let mut b = [0u8; FOOTER_SIZE];
        b[..96].copy_from_slice(&AZURE_EXPORT);
        b
    }

    #[test]
    fn parses_a_footer_written_by_azure() {
        let f = Footer::parse(&azure_footer_bytes());
        assert!(f.has_cookie());
        assert_eq!(f.features, 2);
        assert_eq!(f.version, VERSION_1_0);
        assert_eq!(f.data_offset, u64::MAX);
        assert_eq!(f.creator_app, *b"wa\0\0");
        assert_eq!(f.creator_app_text(), "wa\\0\\0");
        assert_eq!(f.creator_host_os_text(), "Wi2k");
        assert_eq!(f.original_size, 5 << 30);
        assert_eq!(f.current_size, 5 << 30);
        assert_eq!(f.disk_type, DiskType::Fixed);
        assert!(f.checksum_valid(), "Azure's own checksum must verify");
        assert_eq!(f.size_source(), SizeSource::CurrentSize);
        assert_eq!(f.virtual_size(), 5 << 30);
    }

    #[test]
    fn serializing_reproduces_the_original_bytes() {
        let raw = azure_footer_bytes();
        assert_eq!(Footer::parse(&raw).to_bytes(), raw);
    }

    #[test]
    fn detects_a_bad_checksum() {
        let mut raw = azure_footer_bytes();
        raw[48] ^= 1;
        let f = Footer::parse(&raw);
        assert!(!f.checksum_valid());
        // Rewriting fixes it.
        assert!(Footer::parse(&f.to_bytes()).checksum_valid());
    }

    #[test]
    fn checksum_ignores_its_own_field() {
        let raw = azure_footer_bytes();
        let mut other = raw;
        other[64..68].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(checksum_of(&raw), checksum_of(&other));
    }

    #[test]
    fn qemu_and_virtual_pc_footers_are_sized_by_geometry() {
        let mut f = Footer::new_fixed(1_073_995_776);
        f.creator_app = *b"qemu";
        f.geometry = Geometry {
            cylinders: 2081,
            heads: 16,
            sectors_per_track: 63,
        };
        f.current_size = 1_073_741_824 + 512 * 7; // a size the geometry does not match
        assert_eq!(f.size_source(), SizeSource::Geometry);
        assert_eq!(f.virtual_size(), 2081 * 16 * 63 * 512);
        f.creator_app = *b"vpc ";
        assert_eq!(f.size_source(), SizeSource::Geometry);
        // The saturated geometry means "too big for CHS": use the current size.
        f.geometry = Geometry::MAX;
        assert_eq!(f.size_source(), SizeSource::CurrentSize);
        assert_eq!(f.virtual_size(), f.current_size);
    }

    #[test]
    fn new_fixed_footer_is_valid_and_ours() {
        let f = Footer::new_fixed(30 << 30);
        let back = Footer::parse(&f.to_bytes());
        assert!(back.has_cookie());
        assert!(back.checksum_valid());
        assert_eq!(back.disk_type, DiskType::Fixed);
        assert_eq!(back.creator_app, VHDPREP_CREATOR);
        assert_eq!(back.creator_host_os, *b"Wi2k");
        assert_eq!(back.current_size, 30 << 30);
        assert_eq!(back.original_size, 30 << 30);
        assert_eq!(back.data_offset, NO_DATA_OFFSET);
        assert_eq!(back.geometry, Geometry::for_sectors((30u64 << 30) / 512));
        assert_ne!(back.unique_id, [0u8; 16]);
        assert!(back.timestamp > 26 * 365 * 86400, "timestamp is after 2026");
    }

    #[test]
    fn disk_type_codes() {
        for (v, t) in [
            (2, DiskType::Fixed),
            (3, DiskType::Dynamic),
            (4, DiskType::Differencing),
            (7, DiskType::Other(7)),
        ] {
            assert_eq!(DiskType::from_u32(v), t);
            assert_eq!(t.to_u32(), v);
        }
        assert_eq!(DiskType::Other(0).name(), "unknown(0)");
    }
}
