//! LUKS1 and LUKS2 (`crypto_LUKS`): the binary header at 0 (or, for LUKS2, a secondary
//! header at one of its fixed offsets), with its UUID string and LUKS2 label.

use super::{be16, bytes, label_bytes, read_window, Probe};
use std::io;
use vhdprep_disk::ReadAt;

const MAGIC: &[u8] = b"LUKS\xba\xbe";
const MAGIC2: &[u8] = b"SKUL\xba\xbe";
/// Where LUKS2 may keep its secondary header (the JSON area sizes cryptsetup allows).
const SECONDARY: [u64; 9] = [
    0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
];

pub(super) fn probe(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    let Some(hdr) = read_window(vol, 0, 512)? else {
        return Ok(None);
    };
    if &hdr[..6] == MAGIC {
        return Ok(from_header(&hdr));
    }
    for off in SECONDARY {
        let Some(h) = read_window(vol, off, 512)? else {
            break;
        };
        if &h[..6] == MAGIC2 && be16(&h, 6) == 2 {
            return Ok(from_header(&h));
        }
    }
    Ok(None)
}

fn from_header(hdr: &[u8]) -> Option<Probe> {
    let version = be16(hdr, 6);
    if version != 1 && version != 2 {
        return None;
    }
    let mut p = Probe::new("crypto_LUKS");
    p.uuid = label_bytes(bytes(hdr, 168, 40));
    if version == 2 {
        p.label = label_bytes(bytes(hdr, 24, 48));
    }
    Some(p)
}
