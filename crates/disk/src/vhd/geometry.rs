//! CHS geometry of a VHD, computed by the algorithm of the VHD specification.
//!
//! The footer stores cylinders (2 bytes), heads (1) and sectors per track (1). The algorithm
//! saturates at 65535/16/255 (about 127 GiB); larger disks all carry that maximum geometry, and
//! readers then take the size from the footer's current-size field.

use serde::Serialize;

/// Cylinders/heads/sectors-per-track as stored in the footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Geometry {
    /// Number of cylinders (0..=65535).
    pub cylinders: u16,
    /// Number of heads (0..=255).
    pub heads: u8,
    /// Sectors per track (0..=255).
    pub sectors_per_track: u8,
}

impl Geometry {
    /// The largest geometry the specification produces: 65535/16/255.
    pub const MAX: Geometry = Geometry {
        cylinders: 65535,
        heads: 16,
        sectors_per_track: 255,
    };

    /// Geometry for a disk of `total_sectors` 512-byte sectors, per the VHD specification
    /// (appendix "CHS Calculation"). Saturates at [`Geometry::MAX`].
    pub fn for_sectors(total_sectors: u64) -> Geometry {
        let total = total_sectors.min(65535 * 16 * 255);
        let (spt, heads, cyl_times_heads): (u64, u64, u64);
        if total >= 65535 * 16 * 63 {
            spt = 255;
            heads = 16;
            cyl_times_heads = total / spt;
        } else {
            let mut s = 17;
            let mut cth = total / s;
            let mut h = cth.div_ceil(1024).max(4);
            if cth >= h * 1024 || h > 16 {
                s = 31;
                h = 16;
                cth = total / s;
            }
            if cth >= h * 1024 {
                s = 63;
                h = 16;
                cth = total / s;
            }
            spt = s;
            heads = h;
            cyl_times_heads = cth;
        }
        Geometry {
            cylinders: (cyl_times_heads / heads) as u16,
            heads: heads as u8,
            sectors_per_track: spt as u8,
        }
    }

    /// Total sectors the geometry addresses: C × H × S.
    pub fn total_sectors(self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors_per_track)
    }

    /// Decodes the 4 footer bytes at offset 56.
    pub fn from_bytes(b: [u8; 4]) -> Geometry {
        Geometry {
            cylinders: u16::from_be_bytes([b[0], b[1]]),
            heads: b[2],
            sectors_per_track: b[3],
        }
    }

    /// Encodes to the 4 footer bytes at offset 56.
    pub fn to_bytes(self) -> [u8; 4] {
        let c = self.cylinders.to_be_bytes();
        [c[0], c[1], self.heads, self.sectors_per_track]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(c: u16, h: u8, s: u8) -> Geometry {
        Geometry {
            cylinders: c,
            heads: h,
            sectors_per_track: s,
        }
    }

    #[test]
    fn matches_what_qemu_img_writes_without_force_size() {
        // `qemu-img create -f vpc -o subformat=fixed x.vhd 1G` writes 2081/16/63 for the size it
        // rounded up to (2,097,648 sectors); 1 GiB itself maps to 2080/16/63.
        assert_eq!(Geometry::for_sectors(2_097_648), g(2081, 16, 63));
        assert_eq!(Geometry::for_sectors(2_097_152), g(2080, 16, 63));
    }

    #[test]
    fn small_disks_use_17_sectors_and_at_least_4_heads() {
        // 20 MiB: 40960 sectors -> 17 spt, cth 2409, heads 4 -> cylinders 602.
        assert_eq!(Geometry::for_sectors(40_960), g(602, 4, 17));
        assert_eq!(Geometry::for_sectors(0), g(0, 4, 17));
    }

    #[test]
    fn saturates_at_the_maximum() {
        assert_eq!(Geometry::for_sectors(u64::MAX), Geometry::MAX);
        assert_eq!(Geometry::for_sectors(4 << 40 >> 9), Geometry::MAX);
        assert_eq!(Geometry::MAX.total_sectors(), 267_382_800);
    }

    #[test]
    fn above_the_31_spt_range_uses_255_sectors() {
        let geo = Geometry::for_sectors(65535 * 16 * 63);
        assert_eq!((geo.heads, geo.sectors_per_track), (16, 255));
    }

    #[test]
    fn round_trips_through_bytes() {
        let geo = g(0x1234, 16, 63);
        assert_eq!(geo.to_bytes(), [0x12, 0x34, 16, 63]);
        assert_eq!(Geometry::from_bytes(geo.to_bytes()), geo);
    }
}
