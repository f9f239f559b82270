//! VHD: a `conectix` footer in the last 512 bytes (fixed, dynamic or differencing by its disk
//! type; an unknown type counts as fixed, as qemu does), else a footer copy at offset 0 whose
//! type is dynamic or differencing (the end footer lost). qemu's `vpc_probe` looks only at
//! offset 0, so it calls fixed VHDs raw; this probe does not.

use super::{Found, Sample};
use crate::format::Format;
use crate::vhd::{DiskType, Footer, FOOTER_SIZE};
use crate::FooterPlace;
use std::io;

/// The footer at the end, else a sparse disk's copy at the start.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    let Some(tail) = s.tail else {
        return Ok(None);
    };
    let head: [u8; FOOTER_SIZE] = match s.head.get(..FOOTER_SIZE) {
        Some(h) => h.try_into().expect("512 bytes"),
        None => return Ok(None),
    };
    let end = Footer::parse(&tail);
    let start = Footer::parse(&head);
    let end_at = s.len - FOOTER_SIZE as u64;
    if end.has_cookie() {
        let format = match end.disk_type {
            DiskType::Dynamic => Format::VhdDynamic,
            DiskType::Differencing => Format::VhdDifferencing,
            DiskType::Fixed | DiskType::Other(_) => Format::VhdFixed,
        };
        let differs = format != Format::VhdFixed && start.has_cookie() && head != tail;
        let mut f = Found::new(
            format,
            format!("'conectix' footer at offset {end_at}"),
            end_at,
            8,
        );
        f.footer = Some((end, FooterPlace::End));
        f.footer_copy_differs = differs;
        return Ok(Some(f));
    }
    if start.has_cookie() && matches!(start.disk_type, DiskType::Dynamic | DiskType::Differencing) {
        let format = if start.disk_type == DiskType::Dynamic {
            Format::VhdDynamic
        } else {
            Format::VhdDifferencing
        };
        let mut f = Found::new(format, "'conectix' footer copy at offset 0", 0, 8);
        f.footer = Some((start, FooterPlace::StartCopy));
        return Ok(Some(f));
    }
    Ok(None)
}
