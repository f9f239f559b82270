//! Linux swap (`SWAPSPACE2`, the old `SWAP-SPACE`) and hibernation images (`swsuspend`): the
//! signature in the last 10 bytes of the first page, for every page size Linux uses.

use super::{bytes, label_bytes, read_window, uuid16, Probe};
use std::io;
use vhdprep_disk::ReadAt;

const PAGE_SIZES: [u64; 4] = [4096, 8192, 16384, 65536];
const SUSPEND: [&[u8]; 5] = [
    b"S1SUSPEND",
    b"S2SUSPEND",
    b"ULSUSPEND",
    b"\xed\xc3\x02\xe9\x98\x56\xe5\x0c",
    b"LINHIB0001",
];

pub(super) fn probe(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    for page in PAGE_SIZES {
        let Some(sig) = read_window(vol, page - 10, 10)? else {
            return Ok(None);
        };
        if &sig[..] == b"SWAP-SPACE" {
            let mut p = Probe::new("swap");
            p.block_size = Some(page as u32);
            return Ok(Some(p));
        }
        if &sig[..] == b"SWAPSPACE2" {
            let Some(hdr) = read_window(vol, 1024, 48)? else {
                return Ok(None);
            };
            let raw_version = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let big = match raw_version {
                1 => false,
                0x0100_0000 => true,
                _ => continue,
            };
            let last_page = if big {
                u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]])
            } else {
                u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]])
            };
            if last_page == 0 {
                continue;
            }
            let mut p = Probe::new("swap");
            p.uuid = uuid16(bytes(&hdr, 12, 16));
            p.label = label_bytes(bytes(&hdr, 28, 16));
            p.block_size = Some(page as u32);
            p.size = (u64::from(last_page) + 1).checked_mul(page);
            return Ok(Some(p));
        }
        if SUSPEND.iter().any(|m| bytes(&sig, 0, <[u8]>::len(m)) == *m) {
            let mut p = Probe::new("swsuspend");
            p.block_size = Some(page as u32);
            return Ok(Some(p));
        }
    }
    Ok(None)
}
