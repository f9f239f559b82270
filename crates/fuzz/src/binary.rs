//! Fuzz targets: the guest's binary parsers (initramfs archives, EFI loaders, ELF headers,
//! GRUB's BIOS boot code).

use crate::Target;
use vhdprep_guest::elf;
use vhdprep_guest::facts::boot::{authenticode, boot_csv, der, grub_pc, pe, shim, uki};
use vhdprep_guest::facts::kernel::{cpio, decompress, initramfs};

/// The binary targets.
pub const TARGETS: &[Target] = &[
    Target {
        name: "initramfs",
        about: "initramfs segments: newc cpio, gzip/zstd/xz/lz4/bzip2 streams, early-microcode concatenation",
        run: initramfs,
    },
    Target {
        name: "cpio",
        about: "the push cpio parser fed in pieces (sizes taken from the input's first byte)",
        run: cpio,
    },
    Target {
        name: "pe",
        about: "PE/COFF headers and certificate table, each Authenticode entry parsed; sparse_image",
        run: pe,
    },
    Target {
        name: "uki",
        about: "PE section tables and unified kernel image sections (uki::read, .sdmagic, .osrel, .cmdline) and the bzImage release string",
        run: uki,
    },
    Target {
        name: "authenticode",
        about: "a WIN_CERTIFICATE's PKCS#7 SignedData: authenticode::parse_signed_data and der",
        run: authenticode,
    },
    Target {
        name: "elf",
        about: "ELF identification and machine: elf::parse_header",
        run: elf,
    },
    Target {
        name: "shim_chain",
        about: "shim's fallback CSV (UCS-2LE, BOM, CR/LF) and the loader names shim embeds: boot_csv::parse, shim::shim_names",
        run: shim_chain,
    },
    Target {
        name: "grub_pc",
        about: "MBR boot code (GRUB boot.img) and diskboot.img/core.img detection: grub_pc",
        run: grub_pc,
    },
];

/// Decompressed bytes one input may produce. The real budget,
/// [`initramfs::MAX_DECOMPRESSED`] (1 GiB), takes seconds to spend and would slow the fuzzer
/// to a crawl on every bomb it finds; the limit logic is the same at 64 MiB.
const FUZZ_DECOMPRESSED: u64 = 64 << 20;

/// A whole initramfs image.
pub fn initramfs(data: &[u8]) {
    let l = initramfs::list_with_limit(data, FUZZ_DECOMPRESSED);
    assert!(l.decompressed <= FUZZ_DECOMPRESSED, "budget exceeded");
    assert_eq!(l.member_count, l.members.len());
    let _ = decompress::Compression::detect(data);
}

/// The cpio parser alone, fed in pieces of `data[0]` bytes (1..=256) to exercise every
/// state across a chunk boundary, restarting after each trailer as the initramfs walk does.
pub fn cpio(data: &[u8]) {
    let Some((&step, mut rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step) + 1;
    let mut p = cpio::CpioParser::new();
    let mut stuck = 0;
    while !rest.is_empty() {
        let piece = &rest[..step.min(rest.len())];
        match p.feed(piece) {
            Ok(n) => {
                assert!(n <= piece.len(), "consumed more than given");
                if n == 0 {
                    // After a trailer a non-zero byte is refused until the caller restarts.
                    stuck += 1;
                    assert!(stuck < 2, "no progress after restart");
                    p.restart();
                } else {
                    stuck = 0;
                }
                rest = &rest[n..];
            }
            Err(_) => return,
        }
    }
    let _ = (p.truncated(), p.after_trailer());
}

/// A PE image read for its sections as a unified kernel image, every payload range checked to
/// lie in the input; and the input as a bzImage header.
pub fn uki(data: &[u8]) {
    if let Ok(s) = uki::read_bytes(data) {
        assert!(s.sections.len() <= uki::MAX_SECTIONS);
        for r in [s.linux, s.initrd].into_iter().flatten() {
            assert!(
                r.offset + r.len <= data.len() as u64,
                "payload outside the file"
            );
        }
        let _ = (s.os_version(), s.os_sort_key());
    }
    let _ = uki::bzimage_release(data);
}

/// A PE image: headers, certificate table, each Authenticode entry; and the sparse copy the
/// boot checks make of a large loader from two ranged reads.
pub fn pe(data: &[u8]) {
    if let Ok(img) = pe::parse(data) {
        let _ = pe::machine_name(img.machine);
        for c in &img.certificates {
            let _ = authenticode::parse_signed_data(c.data);
        }
    }
    let mut read = |offset: u64, len: u64| {
        let start = usize::try_from(offset).ok()?.min(data.len());
        let end = start
            .saturating_add(usize::try_from(len).ok()?)
            .min(data.len());
        Some(data[start..end].to_vec())
    };
    if let Some(copy) = pe::sparse_image(data.len() as u64, &mut read) {
        assert_eq!(copy.len(), data.len());
        let _ = pe::parse(&copy);
    }
}

/// One PKCS#7 `ContentInfo` (the body of a `WIN_CERTIFICATE`), and a raw DER walk of it.
pub fn authenticode(data: &[u8]) {
    if let Ok(s) = authenticode::parse_signed_data(data) {
        let _ = s.microsoft_uefi_ca;
    }
    walk_der(der::Der::new(data), 0);
}

/// Reads every TLV, descending into constructed ones (at most 16 levels), and every name.
fn walk_der(mut r: der::Der<'_>, depth: usize) {
    while !r.is_empty() {
        let Ok(t) = r.read() else { return };
        let _ = der::string_value(&t);
        if t.tag == der::tag::OID {
            let _ = der::oid_to_string(t.value);
        }
        if t.tag == der::tag::SEQUENCE {
            if let Ok(n) = der::Name::parse(&t) {
                let _ = (n.common_name(), n.oneline());
            }
        }
        if t.tag & 0x20 != 0 && depth < 16 {
            walk_der(t.reader(), depth + 1);
        }
    }
}

/// The first bytes of an executable.
pub fn elf(data: &[u8]) {
    if let Some(h) = elf::parse_header(data) {
        let _ = (h.architecture.uname_name(), h.architecture.azure_name());
    }
}

/// A disk's first sectors: LBA 0's boot code, then every following sector as a candidate
/// `diskboot.img` at its LBA; the sector after LBA 0 also as the one boot.img points to.
pub fn grub_pc(data: &[u8]) {
    let lba0 = &data[..data.len().min(512)];
    let code = grub_pc::boot_code(lba0);
    let rest = data.get(512..).unwrap_or_default();
    if let Some(lba) = code.core_img_lba {
        let _ = grub_pc::core_img_at(rest, lba);
    }
    for (sector, lba) in rest.chunks(512).zip(1u64..) {
        let _ = grub_pc::core_img_at(sector, lba);
    }
}

/// A fallback CSV and a shim binary's string literals, from the same bytes.
pub fn shim_chain(data: &[u8]) {
    let csv = boot_csv::parse("/EFI/x/BOOTX64.CSV", data);
    assert!(csv.entries.len() <= boot_csv::MAX_CSV_ENTRIES);
    let _ = shim::shim_names(data);
}

#[cfg(test)]
mod tests {
    //! The seeds reach what their target is for: real archives list, real loaders carry
    //! their signatures, the BIOS seeds hold GRUB.
    use super::*;

    use crate::seed;

    #[test]
    fn every_compressed_initramfs_seed_lists_completely() {
        for (name, segments) in [
            ("newc", 1),
            ("newc.gz", 1),
            ("newc.zst", 1),
            ("newc.xz", 1),
            ("newc.lz4", 1),
            ("newc.bz2", 1),
            ("early-microcode+zstd", 2),
            ("early+gzip+xz", 3),
        ] {
            let l = initramfs::list(&seed("initramfs", name));
            assert_eq!(l.error, None, "{name}");
            assert_eq!(l.segments.len(), segments, "{name}");
            assert!(
                l.members.iter().any(|m| m.name.ends_with("hv_vmbus.ko")),
                "{name}"
            );
        }
        let cut = initramfs::list(&seed("initramfs", "debian-initrd-first-32k"));
        assert!(cut.member_count > 0 && cut.error.is_some(), "{cut:?}");
    }

    #[test]
    fn loader_seeds_carry_their_signatures() {
        for (name, microsoft) in [
            ("bootx64.efi", true),
            ("bootaa64.efi", true),
            ("grubx64.efi", false),
        ] {
            let data = seed("pe", name);
            let img = pe::parse(&data).unwrap();
            assert!(!img.certificates.is_empty(), "{name}");
            let s = authenticode::parse_signed_data(img.certificates[0].data).unwrap();
            assert_eq!(s.microsoft_uefi_ca, microsoft, "{name}");
            let raw = seed("authenticode", &format!("{name}.p7"));
            assert_eq!(authenticode::parse_signed_data(&raw).unwrap(), s, "{name}");
        }
    }

    #[test]
    fn elf_seeds_name_their_machines() {
        let arch = |n| elf::parse_header(&seed("elf", n)).unwrap().architecture;
        assert_eq!(arch("amd64-dpkg"), elf::Architecture::X64);
        assert_eq!(arch("amd64-hv_balloon.ko"), elf::Architecture::X64);
        assert_eq!(arch("arm64-dpkg"), elf::Architecture::Arm64);
    }

    #[test]
    fn bios_seeds_hold_boot_img_and_core_img() {
        let gen1 = seed("grub_pc", "gen1-mbr-ext4");
        let code = grub_pc::boot_code(&gen1);
        assert!(code.grub_boot_img);
        let core = grub_pc::core_img_at(&gen1[512..1024], 1).expect("core.img at LBA 1");
        assert!(core.contiguous && core.sectors > 1);
        let hybrid = seed("grub_pc", "hybrid-gpt-bios-boot");
        assert_eq!(grub_pc::boot_code(&hybrid).core_img_lba, Some(2048));
        assert!(grub_pc::core_img_at(&hybrid[512..], 2048).is_some_and(|c| c.contiguous));
        assert!(!grub_pc::boot_code(&seed("grub_pc", "gen2-protective-mbr")).grub_boot_img);
    }
}
