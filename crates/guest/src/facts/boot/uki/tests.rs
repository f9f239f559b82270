//! Unit tests of the section-table reader on hand-built and hostile PE images (a real UKI
//! built with objcopy over systemd's stub is compared with `objdump -h` in
//! `crates/guest/tests/uki.rs`).

use super::*;

/// A PE32+ image with the given sections (name, payload); payloads follow the headers.
pub(crate) fn build(sections: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; 0x40];
    b[0..2].copy_from_slice(b"MZ");
    b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    b.extend_from_slice(b"PE\0\0");
    let mut coff = [0u8; 20];
    coff[0..2].copy_from_slice(&0x8664u16.to_le_bytes());
    coff[2..4].copy_from_slice(&(sections.len() as u16).to_le_bytes());
    coff[16..18].copy_from_slice(&240u16.to_le_bytes());
    b.extend_from_slice(&coff);
    let mut opt = [0u8; 240];
    opt[0..2].copy_from_slice(&0x20bu16.to_le_bytes());
    opt[68..70].copy_from_slice(&10u16.to_le_bytes());
    opt[108..112].copy_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&opt);
    let mut at = (b.len() + 40 * sections.len()).next_multiple_of(512);
    let mut data = Vec::new();
    for (name, payload) in sections {
        let mut e = [0u8; 40];
        e[..name.len()].copy_from_slice(name.as_bytes());
        e[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        e[12..16].copy_from_slice(&(at as u32).to_le_bytes());
        let raw = payload.len().next_multiple_of(512);
        e[16..20].copy_from_slice(&(raw as u32).to_le_bytes());
        e[20..24].copy_from_slice(&(at as u32).to_le_bytes());
        b.extend_from_slice(&e);
        let mut p = payload.to_vec();
        p.resize(raw, 0);
        data.push(p);
        at += raw;
    }
    b.resize(b.len().next_multiple_of(512), 0);
    for p in data {
        b.extend_from_slice(&p);
    }
    b
}

#[test]
fn reads_the_parts_of_a_uki() {
    let img = build(&[
        (
            ".osrel",
            b"ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n",
        ),
        (".cmdline", b"root=PARTUUID=1 console=ttyS0\n\0"),
        (".uname", b"6.1.0-13-amd64"),
        (".initrd", b"070701"),
        (".linux", b"MZkernel"),
    ]);
    let s = read_bytes(&img).unwrap();
    assert_eq!(s.kind, EfiKind::Uki);
    assert_eq!(s.machine, 0x8664);
    assert_eq!(s.cmdline.as_deref(), Some("root=PARTUUID=1 console=ttyS0"));
    assert_eq!(s.uname.as_deref(), Some("6.1.0-13-amd64"));
    assert_eq!(s.os_version(), Some("12"));
    assert_eq!(s.os_sort_key(), Some("debian"));
    let l = s.linux.unwrap();
    assert_eq!(
        &img[l.offset as usize..(l.offset + l.len) as usize],
        b"MZkernel"
    );
    assert_eq!(s.initrd.unwrap().len, 6);
}

#[test]
fn recognises_systemd_boot_by_its_sdmagic() {
    let img = build(&[(".sdmagic", b"#### LoaderInfo: systemd-boot 252 ####\0")]);
    assert_eq!(read_bytes(&img).unwrap().kind, EfiKind::SystemdBoot);
    let img = build(&[(".sdmagic", b"#### LoaderInfo: systemd-stub 252 ####\0")]);
    assert_eq!(read_bytes(&img).unwrap().kind, EfiKind::Other);
}

#[test]
fn hostile_section_tables_are_errors_not_panics() {
    let img = build(&[(".linux", b"abc")]);
    // NumberOfSections far too large.
    let mut bad = img.clone();
    bad[0x46..0x48].copy_from_slice(&0xffffu16.to_le_bytes());
    assert_eq!(
        read_bytes(&bad).unwrap_err(),
        SectionError::TooManySections { count: 0xffff }
    );
    // A table cut by the end of the file.
    let mut cut = img.clone();
    cut[0x46..0x48].copy_from_slice(&90u16.to_le_bytes());
    cut.truncate(0x40 + 24 + 240 + 40);
    assert!(matches!(
        read_bytes(&cut),
        Err(SectionError::TableTruncated { .. })
    ));
    // A payload pointing past the end, and one whose end overflows.
    let table = 0x40 + 24 + 240;
    let mut far = img.clone();
    far[table + 20..table + 24].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert!(matches!(
        read_bytes(&far),
        Err(SectionError::SectionOutOfFile { .. })
    ));
    // Truncated files of every length up to the headers: never a panic.
    for n in 0..img.len().min(2048) {
        let _ = read_bytes(&img[..n]);
    }
    assert!(matches!(read_bytes(b"MZ"), Err(SectionError::NotPe { .. })));
}

#[test]
fn oversized_text_sections_are_cut() {
    let big = vec![b'a'; (MAX_TEXT_SECTION + 10) as usize];
    let s = read_bytes(&build(&[(".cmdline", &big)])).unwrap();
    assert_eq!(s.cmdline.unwrap().len() as u64, MAX_TEXT_SECTION);
    assert_eq!(s.problems.len(), 1);
}

#[test]
fn bzimage_release_string() {
    let mut k = vec![0u8; 0x1000];
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x20e..0x210].copy_from_slice(&0x300u16.to_le_bytes());
    let v = b"6.1.0-13-amd64 (debian-kernel@lists.debian.org)";
    k[0x500..0x500 + v.len()].copy_from_slice(v);
    assert_eq!(bzimage_release(&k).as_deref(), Some("6.1.0-13-amd64"));
    k[0x20e..0x210].copy_from_slice(&0xff00u16.to_le_bytes());
    assert_eq!(bzimage_release(&k), None);
    assert_eq!(bzimage_release(b"HdrS"), None);
}
