//! Builders for byte-level test disks (unit tests only).

use crate::gpt::entry::GptEntry;
use crate::gpt::header::{self, GptHeader};
use crate::guid::Guid;
use crate::mbr::{MbrEntry, BOOT_CODE_LEN, ENTRIES_OFFSET};

/// Copies `bytes` into `disk` at `offset`.
pub(crate) fn put(disk: &mut [u8], offset: u64, bytes: &[u8]) {
    let o = offset as usize;
    disk[o..o + bytes.len()].copy_from_slice(bytes);
}

/// A 512-byte MBR/EBR sector with `55 AA`, the given signature and up to four entries.
pub(crate) fn mbr_sector(signature: u32, boot_code: bool, entries: &[MbrEntry]) -> Vec<u8> {
    let mut s = vec![0u8; 512];
    if boot_code {
        s[..BOOT_CODE_LEN].fill(0x90);
    }
    s[440..444].copy_from_slice(&signature.to_le_bytes());
    for (i, e) in entries.iter().take(4).enumerate() {
        let off = ENTRIES_OFFSET + 16 * i;
        s[off..off + 16].copy_from_slice(&e.to_bytes());
    }
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

/// A protective MBR entry for a disk of `sectors` sectors.
pub(crate) fn protective_entry(sectors: u64) -> MbrEntry {
    MbrEntry {
        type_byte: 0xEE,
        start_lba: 1,
        sectors: u32::try_from(sectors - 1).unwrap_or(u32::MAX),
        ..Default::default()
    }
}

/// A GPT disk image in memory, with both copies consistent.
#[derive(Clone)]
pub(crate) struct GptBuilder {
    pub ss: u32,
    pub sectors: u64,
    pub entry_size: u32,
    pub num_entries: u32,
    pub disk_guid: Guid,
    pub entries: Vec<(usize, GptEntry)>,
    pub mbr: Vec<MbrEntry>,
}

impl GptBuilder {
    pub fn new(ss: u32, sectors: u64) -> Self {
        GptBuilder {
            ss,
            sectors,
            entry_size: 128,
            num_entries: 128,
            disk_guid: Guid::parse("11111111-2222-3333-4444-555555555555").unwrap(),
            entries: Vec::new(),
            mbr: vec![protective_entry(sectors)],
        }
    }

    /// Adds a partition in `slot` (0-based).
    pub fn part(mut self, slot: usize, type_guid: Guid, first: u64, last: u64, name: &str) -> Self {
        let mut unique = [0u8; 16];
        unique[..4].copy_from_slice(&(slot as u32 + 1).to_le_bytes());
        unique[15] = 0xAA;
        self.entries.push((
            slot,
            GptEntry {
                type_guid,
                unique_guid: Guid::from_disk_bytes(unique),
                first_lba: first,
                last_lba: last,
                attributes: 0,
                name: name.to_string(),
            },
        ));
        self
    }

    pub fn array(&self) -> Vec<u8> {
        let es = self.entry_size as usize;
        let mut a = vec![0u8; es * self.num_entries as usize];
        for (slot, e) in &self.entries {
            a[slot * es..(slot + 1) * es].copy_from_slice(&e.to_bytes(es));
        }
        a
    }

    pub fn array_sectors(&self) -> u64 {
        (u64::from(self.entry_size) * u64::from(self.num_entries)).div_ceil(u64::from(self.ss))
    }

    pub fn last_lba(&self) -> u64 {
        self.sectors - 1
    }

    pub fn primary_header(&self) -> GptHeader {
        let n = self.array_sectors();
        GptHeader {
            revision: header::REVISION_1_0,
            header_size: 92,
            header_crc32: 0,
            my_lba: 1,
            alternate_lba: self.last_lba(),
            first_usable_lba: 2 + n,
            last_usable_lba: self.last_lba() - 1 - n,
            disk_guid: self.disk_guid,
            partition_entry_lba: 2,
            num_entries: self.num_entries,
            entry_size: self.entry_size,
            entries_crc32: crc32fast::hash(&self.array()),
        }
    }

    pub fn backup_header(&self) -> GptHeader {
        let p = self.primary_header();
        GptHeader {
            my_lba: p.alternate_lba,
            alternate_lba: 1,
            partition_entry_lba: p.last_usable_lba + 1,
            ..p
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let ss = self.ss as usize;
        let mut disk = vec![0u8; ss * self.sectors as usize];
        put(&mut disk, 0, &mbr_sector(0xCAFE_F00D, false, &self.mbr));
        let array = self.array();
        let p = self.primary_header();
        let b = self.backup_header();
        put(&mut disk, self.ss as u64, &p.to_sector(ss));
        put(&mut disk, 2 * self.ss as u64, &array);
        put(&mut disk, b.partition_entry_lba * self.ss as u64, &array);
        put(&mut disk, b.my_lba * self.ss as u64, &b.to_sector(ss));
        disk
    }
}

/// Changes header bytes at `lba` with `edit`, then recomputes the header CRC when `fix_crc`.
pub(crate) fn patch_header(
    disk: &mut [u8],
    ss: u32,
    lba: u64,
    fix_crc: bool,
    edit: impl FnOnce(&mut [u8]),
) {
    let o = (lba * u64::from(ss)) as usize;
    let sector = &mut disk[o..o + ss as usize];
    edit(sector);
    if fix_crc {
        let size = u32::from_le_bytes(sector[12..16].try_into().unwrap());
        let size = size.clamp(92, ss);
        let crc = header::header_crc32(sector, size).unwrap();
        sector[16..20].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Sets a little-endian u32 at `off` of a byte slice.
pub(crate) fn set_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Sets a little-endian u64 at `off` of a byte slice.
pub(crate) fn set_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
