//! The optical formats: ISO9660 (primary volume descriptor at 32 KiB, Joliet label, UUID from
//! the volume dates) and UDF (volume recognition sequence, anchor at block 256, the logical
//! volume identifier as label, the UUID libblkid derives from the volume set identifier).

use super::{be16, bytes, label_bytes, label_utf16, le16, le32, read_window, Probe};
use std::io;
use vhdprep_disk::ReadAt;

const VD_START: u64 = 32768;
const VD_SIZE: usize = 2048;
/// Most volume descriptors looked at.
const MAX_DESCRIPTORS: u64 = 64;

pub(super) fn probe_iso9660(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    let Some(pvd) = read_window(vol, VD_START, VD_SIZE)? else {
        return Ok(None);
    };
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" || pvd[6] != 1 {
        return Ok(None);
    }
    // A Joliet supplementary descriptor, if any, before the terminator.
    let mut joliet = None;
    for i in 1..MAX_DESCRIPTORS {
        let Some(vd) = read_window(vol, VD_START + i * VD_SIZE as u64, VD_SIZE)? else {
            break;
        };
        if &vd[1..6] != b"CD001" || vd[0] == 255 {
            break;
        }
        let esc = bytes(&vd, 88, 3);
        if vd[0] == 2 && (esc == b"%/@" || esc == b"%/C" || esc == b"%/E") {
            joliet = label_utf16(bytes(&vd, 40, 32), true);
            break;
        }
    }
    let ascii = label_bytes(bytes(&pvd, 40, 32));
    let mut p = Probe::new("iso9660");
    p.label = match (joliet, ascii) {
        // Joliet labels stop at 16 characters; libblkid completes them from the ASCII label.
        (Some(j), Some(a))
            if a.len() > j.len() && a.to_ascii_uppercase().starts_with(&j.to_ascii_uppercase()) =>
        {
            Some(format!("{j}{}", &a[j.len()..]))
        }
        (Some(j), _) => Some(j),
        (None, a) => a,
    };
    p.uuid = iso_date_uuid(bytes(&pvd, 830, 17)).or_else(|| iso_date_uuid(bytes(&pvd, 813, 17)));
    let block = le16(&pvd, 128);
    if block.is_power_of_two() && block >= 512 {
        p.block_size = Some(u32::from(block));
        p.size = u64::from(le32(&pvd, 80)).checked_mul(u64::from(block));
    }
    Ok(Some(p))
}

/// libblkid's ISO9660 "UUID": the date `YYYY-MM-DD-HH-MM-SS-CC`, unless it is unset.
fn iso_date_uuid(d: &[u8]) -> Option<String> {
    if d.len() != 17 {
        return None;
    }
    let digits = &d[..16];
    if digits.iter().all(|&c| c == b'0') && d[16] == 0 {
        return None;
    }
    if digits.iter().all(|&c| c == 0) {
        return None;
    }
    // Split the bytes, not a String of them: a byte over 0x7F becomes a two-byte char, and
    // slicing the String at a byte index inside it would panic.
    let field =
        |r: std::ops::Range<usize>| digits[r].iter().map(|&c| c as char).collect::<String>();
    Some(format!(
        "{}-{}-{}-{}-{}-{}-{}",
        field(0..4),
        field(4..6),
        field(6..8),
        field(8..10),
        field(10..12),
        field(12..14),
        field(14..16)
    ))
}

pub(super) fn probe_udf(vol: &dyn ReadAt) -> io::Result<Option<Probe>> {
    // Volume recognition sequence: BEA01, then NSR02/NSR03 before TEA01.
    let mut bea = false;
    let mut nsr = false;
    for i in 0..MAX_DESCRIPTORS {
        let Some(vd) = read_window(vol, VD_START + i * VD_SIZE as u64, 8)? else {
            break;
        };
        match &vd[1..6] {
            b"BEA01" => bea = true,
            b"NSR02" | b"NSR03" if bea => {
                nsr = true;
                break;
            }
            b"BOOT2" | b"CD001" | b"CDW02" => {}
            _ => break,
        }
    }
    if !nsr {
        return Ok(None);
    }
    // Anchor volume descriptor pointer at block 256, for each block size.
    for bs in [512u64, 1024, 2048, 4096] {
        let Some(anchor) = read_window(vol, 256 * bs, 512)? else {
            continue;
        };
        if le16(&anchor, 0) != 2 || le32(&anchor, 12) != 256 {
            continue;
        }
        let vds_len = u64::from(le32(&anchor, 16));
        let vds_loc = u64::from(le32(&anchor, 20));
        let count = (vds_len / bs).min(MAX_DESCRIPTORS);
        let mut pvd_label = None;
        let mut lvd_label = None;
        let mut uuid = None;
        for b in 0..count {
            let Some(d) = read_window(vol, (vds_loc + b) * bs, 512)? else {
                break;
            };
            if le32(&d, 12) as u64 != vds_loc + b {
                break;
            }
            match le16(&d, 0) {
                1 => {
                    pvd_label = dstring(bytes(&d, 24, 32)).and_then(|s| label_text(&s));
                    uuid = udf_uuid(bytes(&d, 72, 128));
                }
                6 => lvd_label = dstring(bytes(&d, 84, 128)).and_then(|s| label_text(&s)),
                8 => break,
                _ => {}
            }
        }
        let mut p = Probe::new("udf");
        p.label = lvd_label.or(pvd_label);
        p.uuid = uuid;
        p.block_size = Some(bs as u32);
        return Ok(Some(p));
    }
    Ok(None)
}

fn label_text(s: &str) -> Option<String> {
    let t = s.trim_end_matches(char::is_whitespace);
    (!t.is_empty()).then(|| t.to_string())
}

/// A UDF `dstring`: compression id 8 (Latin-1) or 16 (UTF-16BE), length in the last byte.
fn dstring(d: &[u8]) -> Option<String> {
    let (&len, body) = d.split_last()?;
    let used = (len as usize).min(body.len());
    if used == 0 {
        return None;
    }
    let (cid, chars) = (body[0], &body[1..used]);
    match cid {
        8 => Some(chars.iter().map(|&c| c as char).collect()),
        16 => label_utf16(chars, true),
        _ => None,
    }
}

/// libblkid's `gen_uuid_from_volset_id`.
fn udf_uuid(volset: &[u8]) -> Option<String> {
    let (&clen, body) = volset.split_last()?;
    let clen = (clen as usize)
        .saturating_sub(1)
        .min(body.len().saturating_sub(1));
    let (cid, c) = (*body.first()?, &body[1..1 + clen]);
    let mut buf = [0u8; 16];
    let mut len = 0;
    match cid {
        8 => {
            for &ch in c.iter().take(16) {
                buf[len] = ch;
                len += 1;
            }
        }
        16 => {
            for pair in c.chunks_exact(2) {
                if len == 16 {
                    break;
                }
                let u = be16(pair, 0);
                if u > 0xFF {
                    // libblkid hex-encodes non-Latin-1 text; keep it simple: stop here.
                    break;
                }
                buf[len] = u as u8;
                len += 1;
            }
        }
        _ => return None,
    }
    if len < 8 {
        return None;
    }
    let nonhex = buf
        .iter()
        .position(|c| !c.is_ascii_hexdigit())
        .unwrap_or(16);
    Some(if nonhex < 8 {
        buf[..8].iter().map(|b| format!("{b:02x}")).collect()
    } else if nonhex < 16 {
        let mut s: String = buf[..8]
            .iter()
            .map(|&b| (b as char).to_ascii_lowercase())
            .collect();
        s.extend(buf[8..12].iter().map(|b| format!("{b:02x}")));
        s
    } else {
        buf.iter()
            .map(|&b| (b as char).to_ascii_lowercase())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_date_with_bytes_over_0x7f_is_split_by_byte() {
        let mut d = *b"2026112521470000\0";
        d[3] = 0xFF;
        assert_eq!(
            super::iso_date_uuid(&d).unwrap(),
            "202\u{ff}-11-25-21-47-00-00"
        );
    }
}
