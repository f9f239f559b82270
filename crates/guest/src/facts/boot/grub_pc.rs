//! GRUB for BIOS (`i386-pc`) on disk: `boot.img` in the MBR code area and `core.img` in the
//! post-MBR gap or a BIOS boot partition.
//!
//! `boot.img` (grub-core/boot/i386/pc/boot.S) ends its code area with the messages
//! `"GRUB \0Geom\0Hard Disk\0Read\0 Error\r\n\0"`, and keeps at offset 0x5C
//! (`GRUB_BOOT_MACHINE_KERNEL_SECTOR`) the 64-bit LBA of the first `core.img` sector.
//!
//! `core.img` begins with one sector of `diskboot.img` (grub-core/boot/i386/pc/diskboot.S),
//! which holds the messages `"loading\0"`, `"Geom\0Read\0 Error\0"`, and at its end the
//! blocklist of the rest of `core.img`: 12-byte entries growing downwards from 0x1F4, each
//! `{ start: u64 LBA, len: u16 sectors, segment: u16 }`, the first with segment 0x0820
//! (`GRUB_BOOT_MACHINE_KERNEL_SEG + 0x20`), terminated by `len == 0`. `grub-install`
//! embedding `core.img` at LBA `n` writes `start = n + 1` (seen on the fixture images:
//! LBA 1 → start 2, LBA 2048 → start 2049, 54 sectors, segment 0x0820).

use serde::Serialize;

/// Offset of the 64-bit core.img LBA in boot.img.
pub const BOOT_KERNEL_SECTOR: usize = 0x5c;
/// Segment of the first blocklist entry of diskboot.img.
pub const DISKBOOT_FIRST_SEGMENT: u16 = 0x0820;
/// Offset of the first blocklist entry in diskboot.img.
const BLOCKLIST_FIRST: usize = 0x1f4;
/// Size of one blocklist entry.
const BLOCKLIST_ENTRY: usize = 12;
/// Lowest offset the blocklist may reach (keeps clear of diskboot's code and messages).
const BLOCKLIST_FLOOR: usize = 0x160;

/// The MBR code area (bytes 0..440).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootCode {
    /// Bytes 0..440 are not all zero.
    pub present: bool,
    /// The code area carries GRUB `boot.img`'s messages (`GRUB `, `Geom`, `Hard Disk`, `Read`,
    /// ` Error`) near its end.
    pub grub_boot_img: bool,
    /// For GRUB: the LBA of `core.img` that `boot.img` will load (offset 0x5C).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_img_lba: Option<u64>,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Reads the boot code area of LBA 0 (`lba0` is the first sector).
pub fn boot_code(lba0: &[u8]) -> BootCode {
    let code = &lba0[..lba0.len().min(440)];
    let present = code.iter().any(|&b| b != 0);
    // boot.img keeps its messages in the last ~70 bytes before the disk signature.
    let tail = &code[code.len().saturating_sub(0x60)..];
    let grub_boot_img = present
        && [
            &b"GRUB \0"[..],
            b"Geom\0",
            b"Hard Disk\0",
            b"Read\0",
            b" Error",
        ]
        .iter()
        .all(|m| contains(tail, m));
    let core_img_lba = if grub_boot_img {
        code.get(BOOT_KERNEL_SECTOR..BOOT_KERNEL_SECTOR + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    } else {
        None
    };
    BootCode {
        present,
        grub_boot_img,
        core_img_lba,
    }
}

/// A GRUB `core.img` found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoreImg {
    /// LBA of its first sector (diskboot.img).
    pub lba: u64,
    /// Its length in sectors: 1 + the sectors its blocklist loads.
    pub sectors: u64,
    /// The blocklist continues at `lba + 1`, as when grub-install embeds it (it points into a
    /// filesystem instead when GRUB was installed with blocklists).
    pub contiguous: bool,
}

/// Whether `sector` (512 bytes) is GRUB's `diskboot.img` read from LBA `lba`, and if so the
/// length of the `core.img` it starts.
pub fn core_img_at(sector: &[u8], lba: u64) -> Option<CoreImg> {
    if sector.len() < 512 {
        return None;
    }
    let code = &sector[..BLOCKLIST_FLOOR];
    if !contains(code, b"loading\0") || !contains(code, b"Geom\0Read\0 Error\0") {
        return None;
    }
    let entry = |at: usize| {
        let b = &sector[at..at + BLOCKLIST_ENTRY];
        let mut start = [0u8; 8];
        start.copy_from_slice(&b[0..8]);
        (
            u64::from_le_bytes(start),
            u16::from_le_bytes([b[8], b[9]]),
            u16::from_le_bytes([b[10], b[11]]),
        )
    };
    let (first_start, _, first_seg) = entry(BLOCKLIST_FIRST);
    if first_seg != DISKBOOT_FIRST_SEGMENT {
        return None;
    }
    let mut sectors = 1u64;
    let mut at = BLOCKLIST_FIRST;
    while at >= BLOCKLIST_FLOOR {
        let (_, len, _) = entry(at);
        if len == 0 {
            break;
        }
        sectors = sectors.saturating_add(u64::from(len));
        at -= BLOCKLIST_ENTRY;
    }
    Some(CoreImg {
        lba,
        sectors,
        contiguous: first_start == lba.saturating_add(1),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A boot.img-like LBA 0 pointing at `core_lba`.
    pub(crate) fn fake_boot_img(core_lba: u64) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        s[0] = 0xeb;
        s[1] = 0x63;
        s[BOOT_KERNEL_SECTOR..BOOT_KERNEL_SECTOR + 8].copy_from_slice(&core_lba.to_le_bytes());
        let msg = b"GRUB \0Geom\0Hard Disk\0Read\0 Error\r\n\0";
        s[0x180..0x180 + msg.len()].copy_from_slice(msg);
        s[510] = 0x55;
        s[511] = 0xaa;
        s
    }

    /// A diskboot.img-like sector at `lba` loading `len` more sectors.
    pub(crate) fn fake_diskboot(lba: u64, len: u16) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        s[0] = 0x52;
        s[1] = 0x56;
        let msg = b"loading\0.\0\r\n\0Geom\0Read\0 Error\0";
        s[0x11b..0x11b + msg.len()].copy_from_slice(msg);
        s[0x1f4..0x1fc].copy_from_slice(&(lba + 1).to_le_bytes());
        s[0x1fc..0x1fe].copy_from_slice(&len.to_le_bytes());
        s[0x1fe..0x200].copy_from_slice(&0x0820u16.to_le_bytes());
        s
    }

    #[test]
    fn boot_img() {
        let b = boot_code(&fake_boot_img(2048));
        assert!(b.present && b.grub_boot_img);
        assert_eq!(b.core_img_lba, Some(2048));
        let mut other = vec![0u8; 512];
        other[0] = 0xfa;
        let b = boot_code(&other);
        assert!(b.present && !b.grub_boot_img && b.core_img_lba.is_none());
        assert!(!boot_code(&[0u8; 512]).present);
        assert!(!boot_code(&[]).present);
        // the messages alone, outside the code area's end, do not count
        let mut early = vec![0u8; 512];
        early[0x10..0x10 + 34].copy_from_slice(b"GRUB \0Geom\0Hard Disk\0Read\0 Error\r\n");
        assert!(!boot_code(&early).grub_boot_img);
    }

    #[test]
    fn diskboot() {
        let c = core_img_at(&fake_diskboot(1, 54), 1).unwrap();
        assert_eq!((c.lba, c.sectors, c.contiguous), (1, 55, true));
        assert!(!core_img_at(&fake_diskboot(1, 54), 7).unwrap().contiguous);
        assert!(core_img_at(&[0u8; 512], 1).is_none());
        assert!(core_img_at(&fake_diskboot(1, 54)[..100], 1).is_none());
        let mut s = fake_diskboot(1, 54);
        s[0x1fe] = 0;
        assert!(core_img_at(&s, 1).is_none());
        // a blocklist of all-0xff entries stays bounded
        let mut s = fake_diskboot(1, 54);
        for b in &mut s[BLOCKLIST_FLOOR..0x1fe] {
            *b = 0xff;
        }
        let c = core_img_at(&s, 5).unwrap();
        assert!(c.sectors <= 1 + 0xffff * 25);
        assert!(!c.contiguous);
    }
}
