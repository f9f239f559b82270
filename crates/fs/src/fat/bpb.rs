//! The FAT boot sector and BIOS parameter block: parsed with checked arithmetic, judged the
//! way libblkid judges it (for probing) and, more strictly, the way `fatfs` needs it (before
//! anything is handed to that crate).

use crate::probe::{bytes, le16, le32};

/// Highest cluster counts of FAT12 and FAT16 as libblkid bounds them.
const FAT12_MAX: u64 = 0xFF4;
const FAT16_MAX: u64 = 0xFFF4;
const FAT32_MAX: u64 = 0x0FFF_FFF6;

/// FAT variant, by the Microsoft rule (cluster count), as `fatfs` decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FatKind {
    Fat12,
    Fat16,
    Fat32,
}

/// The fields of a boot sector that every reader needs, with derived geometry in `u64`.
#[derive(Debug, Clone)]
pub(crate) struct Bpb {
    pub bytes_per_sector: u64,
    pub sectors_per_cluster: u64,
    pub reserved_sectors: u64,
    pub fats: u64,
    pub root_entries: u64,
    pub total_sectors: u64,
    pub total16: u16,
    pub total32: u32,
    /// Sectors per FAT (the 16-bit field, else the FAT32 one).
    pub fat_length: u64,
    /// The 16-bit sectors-per-FAT field: zero means the FAT32 layout.
    pub fat_length16: u16,
    pub root_cluster: u32,
    pub fs_info_sector: u64,
    pub backup_boot_sector: u64,
    pub fs_version: u16,
    /// First sector of the data area.
    pub first_data_sector: u64,
    /// Clusters in the data area.
    pub cluster_count: u64,
    /// Volume serial number, when the extended boot signature says it is present.
    pub serial: Option<[u8; 4]>,
}

impl Bpb {
    /// True for the FAT32 layout (no 16-bit FAT length).
    pub fn is_fat32_layout(&self) -> bool {
        self.fat_length16 == 0
    }

    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u64 {
        self.bytes_per_sector * self.sectors_per_cluster
    }

    /// FAT variant by cluster count (the rule `fatfs` and the specification use).
    pub fn kind(&self) -> FatKind {
        if self.cluster_count < 4085 {
            FatKind::Fat12
        } else if self.cluster_count < 65525 {
            FatKind::Fat16
        } else {
            FatKind::Fat32
        }
    }

    /// Parses a boot sector (at least 512 bytes) with libblkid's validity rules
    /// (`fat_valid_superblock`): `Err` says why it is not a FAT boot sector.
    pub fn parse(bs: &[u8]) -> Result<Bpb, String> {
        if bs.len() < 512 {
            return Err("boot sector shorter than 512 bytes".into());
        }
        // libblkid's magics, in its order; the one- and two-byte ones need more proof.
        let strong = bytes(bs, 0x52, 5) == b"MSWIN"
            || bytes(bs, 0x52, 8) == b"FAT32   "
            || bytes(bs, 0x36, 5) == b"MSDOS"
            || bytes(bs, 0x36, 8) == b"FAT16   "
            || bytes(bs, 0x36, 8) == b"FAT12   "
            || bytes(bs, 0x36, 8) == b"FAT     ";
        let signature = bs[0x1FE] == 0x55 && bs[0x1FF] == 0xAA;
        if !strong {
            if !(bs[0] == 0xEB || bs[0] == 0xE9 || signature) {
                return Err("no FAT magic".into());
            }
            if !signature {
                return Err("no 0x55AA boot signature".into());
            }
            let fstype = bytes(bs, 0x36, 8);
            if fstype == b"JFS     " || fstype == b"HPFS    " {
                return Err("JFS/HPFS pseudo boot sector".into());
            }
        }
        let bytes_per_sector = le16(bs, 0x0B);
        let sectors_per_cluster = bs[0x0D];
        let reserved = le16(bs, 0x0E);
        let fats = bs[0x10];
        let root_entries = le16(bs, 0x11);
        let total16 = le16(bs, 0x13);
        let media = bs[0x15];
        let fat_length16 = le16(bs, 0x16);
        let total32 = le32(bs, 0x20);
        let fat_length32 = le32(bs, 0x24);
        if fats == 0 {
            return Err("no FAT copies".into());
        }
        if reserved == 0 {
            return Err("no reserved sectors".into());
        }
        if !(media >= 0xF8 || media == 0xF0) {
            return Err(format!("media byte {media:#x}"));
        }
        if !sectors_per_cluster.is_power_of_two() {
            return Err(format!("{sectors_per_cluster} sectors per cluster"));
        }
        if !bytes_per_sector.is_power_of_two() || !(512..=4096).contains(&bytes_per_sector) {
            return Err(format!("{bytes_per_sector} bytes per sector"));
        }
        let total_sectors = if total16 != 0 {
            u64::from(total16)
        } else {
            u64::from(total32)
        };
        let fat_length = if fat_length16 != 0 {
            u64::from(fat_length16)
        } else {
            u64::from(fat_length32)
        };
        let bps = u64::from(bytes_per_sector);
        let root_dir_sectors = (u64::from(root_entries) * 32).div_ceil(bps);
        let first_data_sector =
            u64::from(reserved) + fat_length * u64::from(fats) + root_dir_sectors;
        let Some(data_sectors) = total_sectors.checked_sub(first_data_sector) else {
            return Err("metadata larger than the filesystem".into());
        };
        let cluster_count = data_sectors / u64::from(sectors_per_cluster);
        let max = if fat_length16 == 0 && fat_length32 != 0 {
            FAT32_MAX
        } else if cluster_count > FAT12_MAX {
            FAT16_MAX
        } else {
            FAT12_MAX
        };
        if cluster_count > max {
            return Err(format!(
                "{cluster_count} clusters, more than the FAT can address"
            ));
        }
        let fat32 = fat_length16 == 0;
        let (serial_off, sig_off) = if fat32 { (0x43, 0x42) } else { (0x27, 0x26) };
        let extended = bs[sig_off] == 0x29 || fat32;
        let mut serial = [0u8; 4];
        serial.copy_from_slice(bytes(bs, serial_off, 4));
        Ok(Bpb {
            bytes_per_sector: bps,
            sectors_per_cluster: u64::from(sectors_per_cluster),
            reserved_sectors: u64::from(reserved),
            fats: u64::from(fats),
            root_entries: u64::from(root_entries),
            total_sectors,
            total16,
            total32,
            fat_length,
            fat_length16,
            root_cluster: if fat32 { le32(bs, 0x2C) } else { 0 },
            fs_info_sector: if fat32 { u64::from(le16(bs, 0x30)) } else { 0 },
            backup_boot_sector: if fat32 { u64::from(le16(bs, 0x32)) } else { 0 },
            fs_version: if fat32 { le16(bs, 0x2A) } else { 0 },
            first_data_sector,
            cluster_count,
            serial: extended.then_some(serial),
        })
    }

    /// The stricter checks that make the BPB safe to hand to `fatfs` 0.3.6 (whose own checks
    /// use unchecked `u32` arithmetic), against a volume of `vol_len` bytes. `Err` says what is
    /// wrong.
    pub fn check_for_reader(&self, vol_len: u64) -> Result<(), String> {
        let fat32 = self.is_fat32_layout();
        if (self.total16 == 0) == (self.total32 == 0) {
            return Err("exactly one of the 16- and 32-bit sector counts must be set".into());
        }
        if self.sectors_per_cluster > 128 {
            return Err(format!("{} sectors per cluster", self.sectors_per_cluster));
        }
        if self.fats > 4 {
            return Err(format!("{} FAT copies", self.fats));
        }
        if self.fat_length == 0 {
            return Err("zero sectors per FAT".into());
        }
        if fat32 != (self.kind() == FatKind::Fat32) {
            return Err(format!(
                "{} clusters do not match the {} layout",
                self.cluster_count,
                if fat32 { "FAT32" } else { "FAT12/16" }
            ));
        }
        if fat32 {
            if self.root_entries != 0 || self.total16 != 0 {
                return Err("FAT32 with a fixed root directory or 16-bit sector count".into());
            }
            if self.fs_version != 0 {
                return Err(format!("FAT32 version {:#x}", self.fs_version));
            }
            if self.fs_info_sector >= self.reserved_sectors
                || self.backup_boot_sector >= self.reserved_sectors
            {
                return Err("FSInfo or backup boot sector outside the reserved area".into());
            }
            let root = u64::from(self.root_cluster);
            if root < 2 || root >= self.cluster_count + 2 {
                return Err(format!("root cluster {root} outside the data area"));
            }
        } else if self.root_entries == 0 {
            return Err("FAT12/16 without root directory entries".into());
        }
        if self.cluster_count == 0 {
            return Err("no data clusters".into());
        }
        // The FAT must map every cluster, and its size in bits must fit the u32 arithmetic
        // `fatfs` does on it.
        let bits = match self.kind() {
            FatKind::Fat12 => 12,
            FatKind::Fat16 => 16,
            FatKind::Fat32 => 32,
        };
        let fat_bits = self.fat_length * self.bytes_per_sector * 8;
        if fat_bits > u64::from(u32::MAX) {
            return Err("FAT larger than 512 MiB".into());
        }
        if fat_bits / bits < self.cluster_count + 2 {
            return Err(format!(
                "FAT of {} sectors cannot map {} clusters",
                self.fat_length, self.cluster_count
            ));
        }
        if self.total_sectors > u64::from(u32::MAX) || self.first_data_sector >= self.total_sectors
        {
            return Err("inconsistent sector counts".into());
        }
        let fs_bytes = self.total_sectors * self.bytes_per_sector;
        if fs_bytes > vol_len {
            return Err(format!(
                "filesystem of {fs_bytes} bytes is larger than its {vol_len}-byte volume (truncated?)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_zeros_and_garbage_without_panicking() {
        assert!(Bpb::parse(&[0u8; 512]).is_err());
        assert!(Bpb::parse(&[0xFFu8; 512]).is_err());
        assert!(Bpb::parse(&[0u8; 100]).is_err());
        let mut x = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut bs = [0u8; 512];
            for b in bs.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            bs[0] = 0xEB;
            bs[0x1FE] = 0x55;
            bs[0x1FF] = 0xAA;
            if let Ok(b) = Bpb::parse(&bs) {
                let _ = b.check_for_reader(1 << 30);
            }
        }
    }
}
