//! Differencing VHDs made by hand from the VHD specification (qemu-img cannot write them):
//! footer, dynamic header, BAT, sector bitmaps, parent locators W2ru, W2ku and MacX, parent
//! unique id and time stamp, over a parent VHD that qemu-img writes.
//!
//! Shared by crates/disk/tests/vhd_differencing.rs (checked against libvhdi there) and
//! tests/containers_cli.rs, each including it with `#[path]`.
#![allow(dead_code)]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use vhdprep_disk::vhd::{DiskType, Footer, DYNAMIC_HEADER_SIZE, FOOTER_SIZE};

pub fn footer_of(path: &Path) -> Footer {
    let f = File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    let mut raw = [0u8; FOOTER_SIZE];
    f.read_exact_at(&mut raw, len - FOOTER_SIZE as u64).unwrap();
    Footer::parse(&raw)
}

/// VHD footer/header checksum: the ones' complement of the byte sum, `skip` excluded.
pub fn checksum(b: &[u8], skip: std::ops::Range<usize>) -> u32 {
    !b.iter()
        .enumerate()
        .filter(|(i, _)| !skip.contains(i))
        .fold(0u32, |a, (_, &x)| a.wrapping_add(u32::from(x)))
}

/// How the hand-made child records its parent.
pub struct Links {
    /// Text of the W2ru locator (None: no such locator).
    pub w2ru: Option<String>,
    /// Text of the W2ku locator.
    pub w2ku: Option<String>,
    /// Text of the MacX locator.
    pub macx: Option<String>,
    /// The parent name in the header.
    pub name: String,
}

impl Links {
    /// Every locator kind naming `parent`: relative, a Windows drive path, a file URL.
    pub fn to(parent: &Path) -> Links {
        let name = parent.file_name().unwrap().to_str().unwrap().to_string();
        Links {
            w2ru: Some(format!(".\\{name}")),
            w2ku: Some(format!("C:\\vms\\{name}")),
            macx: Some(format!("file://localhost{}", parent.display())),
            name,
        }
    }
}

/// Writes a differencing VHD at `path` over `parent` (its footer gives the size, unique id
/// and time stamp) with `block_size`-byte blocks, holding the sector-aligned `writes`, per
/// the VHD specification: footer copy at 0, dynamic header at 512, BAT at 1536, locator data,
/// blocks (sector bitmap then data), footer. Applies the writes to `model` too.
#[allow(clippy::too_many_arguments)]
pub fn make_child(
    path: &Path,
    parent: &Path,
    links: &Links,
    block_size: u32,
    writes: &[(u64, Vec<u8>)],
    unique: u8,
    model: &mut [u8],
) {
    let pf = footer_of(parent);
    let size = pf.current_size;
    let bs = u64::from(block_size);
    let blocks = size.div_ceil(bs) as usize;
    let bitmap = (bs / 512).div_ceil(8).div_ceil(512) * 512;

    let mut footer = pf.clone();
    footer.disk_type = DiskType::Differencing;
    footer.data_offset = 512;
    footer.creator_app = *b"test";
    footer.unique_id = [unique; 16];
    footer.saved_state = 0;
    let footer_bytes = footer.to_bytes_with_checksum(footer.expected_checksum());

    // Locator data after the BAT, one 512-byte sector each.
    let bat_at = 1536u64;
    let mut at = bat_at + (blocks as u64 * 4).div_ceil(512) * 512;
    let mut locators: Vec<([u8; 4], Vec<u8>, u64)> = Vec::new();
    let utf16le = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    for (code, text) in [
        (b"W2ru", &links.w2ru),
        (b"W2ku", &links.w2ku),
        (b"MacX", &links.macx),
    ] {
        if let Some(t) = text {
            let data = if code == b"MacX" {
                t.as_bytes().to_vec()
            } else {
                utf16le(t)
            };
            assert!(data.len() <= 512);
            locators.push((*code, data, at));
            at += 512;
        }
    }
    let mut h = [0u8; DYNAMIC_HEADER_SIZE];
    h[0..8].copy_from_slice(b"cxsparse");
    h[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    h[16..24].copy_from_slice(&bat_at.to_be_bytes());
    h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    h[28..32].copy_from_slice(&(blocks as u32).to_be_bytes());
    h[32..36].copy_from_slice(&block_size.to_be_bytes());
    h[40..56].copy_from_slice(&pf.unique_id);
    h[56..60].copy_from_slice(&pf.timestamp.to_be_bytes());
    for (i, u) in links.name.encode_utf16().enumerate() {
        h[64 + 2 * i..66 + 2 * i].copy_from_slice(&u.to_be_bytes());
    }
    for (i, (code, data, off)) in locators.iter().enumerate() {
        let e = 576 + 24 * i;
        h[e..e + 4].copy_from_slice(code);
        h[e + 4..e + 8].copy_from_slice(&512u32.to_be_bytes());
        h[e + 8..e + 12].copy_from_slice(&(data.len() as u32).to_be_bytes());
        h[e + 16..e + 24].copy_from_slice(&off.to_be_bytes());
    }
    let sum = checksum(&h, 36..40);
    h[36..40].copy_from_slice(&sum.to_be_bytes());

    let mut file = vec![0u8; at as usize];
    file[..512].copy_from_slice(&footer_bytes);
    file[512..1536].copy_from_slice(&h);
    for (_, data, off) in &locators {
        file[*off as usize..*off as usize + data.len()].copy_from_slice(data);
    }
    let mut bat = vec![u32::MAX; blocks];
    for (offset, data) in writes {
        assert!(offset % 512 == 0 && data.len() % 512 == 0);
        model[*offset as usize..*offset as usize + data.len()].copy_from_slice(data);
        for (i, sector) in data.chunks(512).enumerate() {
            let v = offset + 512 * i as u64;
            let block = (v / bs) as usize;
            if bat[block] == u32::MAX {
                bat[block] = (file.len() / 512) as u32;
                file.resize(file.len() + (bitmap + bs) as usize, 0);
            }
            let start = bat[block] as usize * 512;
            let s = ((v % bs) / 512) as usize;
            file[start + s / 8] |= 0x80 >> (s % 8);
            let d = start + bitmap as usize + s * 512;
            file[d..d + 512].copy_from_slice(sector);
        }
    }
    for (i, e) in bat.iter().enumerate() {
        file[bat_at as usize + 4 * i..bat_at as usize + 4 * i + 4]
            .copy_from_slice(&e.to_be_bytes());
    }
    file.extend_from_slice(&footer_bytes);
    std::fs::write(path, file).unwrap();
}
