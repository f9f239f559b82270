//! shim's fallback CSV, `\EFI\<vendor>\BOOT<ARCH>.CSV` (or `BOOT.CSV`): the boot entries
//! `fb<arch>.efi` creates when the firmware has none, read as rhboot/shim's `fallback.c`
//! (`try_boot_csv`, `populate_stanza`) reads it.
//!
//! The file is UCS-2 little-endian text (shim's build writes it with `iconv -t UCS-2LE`;
//! SUSE's `shim-install` with `iconv -t ucs2`), optionally starting with the byte order mark
//! U+FEFF. Lines end at CR or LF; each is `file,label,arguments,comment`: `file` (relative
//! to the CSV's directory) and `label` must be non-empty, `arguments` (the load options the
//! entry passes, e.g. a second stage for shim) may be empty, the comment is ignored. Text
//! stops at the first U+0000, as fallback's `StrCSpn` does. A big-endian or 8-bit file is
//! decoded as little-endian exactly as fallback does (into names that do not exist), and the
//! reader says why in [`BootCsv::problems`].

use serde::Serialize;

/// Largest CSV read; real ones are about 100 bytes.
pub const MAX_CSV_SIZE: u64 = 64 << 10;
/// Most entries kept from one CSV.
pub const MAX_CSV_ENTRIES: usize = 64;

/// One line of a fallback CSV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CsvEntry {
    /// The loader, relative to the CSV's directory (`shimx64.efi`).
    pub file: String,
    /// The boot entry's label (`Red Hat Enterprise Linux`).
    pub label: String,
    /// Load options passed to `file` (may be empty).
    pub arguments: String,
}

/// A fallback CSV as shim's fallback reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BootCsv {
    /// Path on the ESP, as stored (`/EFI/redhat/BOOTX64.CSV`).
    pub path: String,
    /// Entries in file order (fallback boots the first one it creates).
    pub entries: Vec<CsvEntry>,
    /// What fallback would stumble on (encoding, malformed lines, read errors).
    pub problems: Vec<String>,
}

/// Decodes `bytes` as fallback does: UCS-2LE, a leading U+FEFF skipped, up to the first NUL.
fn decode(bytes: &[u8], problems: &mut Vec<String>) -> String {
    if bytes.len() % 2 == 1 {
        problems.push(format!(
            "odd length ({} bytes): not UCS-2 text, the last byte is ignored",
            bytes.len()
        ));
    }
    let mut units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    if units.first() == Some(&0xfeff) {
        units.remove(0);
    } else if units.first() == Some(&0xfffe) {
        problems.push(
            "starts with a big-endian byte order mark: shim's fallback reads UCS-2 little-endian only"
                .into(),
        );
    }
    if let Some(end) = units.iter().position(|&u| u == 0) {
        units.truncate(end);
    }
    let looks_8bit = !bytes.is_empty()
        && bytes.len() >= 4
        && bytes.chunks_exact(2).all(|c| c[0] != 0 && c[1] != 0);
    if looks_8bit {
        problems.push(
            "looks like 8-bit text, not UCS-2LE: shim's fallback reads it as UCS-2 and finds no loader by those names"
                .into(),
        );
    }
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Parses the bytes of a fallback CSV found at `path`.
pub fn parse(path: &str, bytes: &[u8]) -> BootCsv {
    let mut csv = BootCsv {
        path: path.to_string(),
        ..BootCsv::default()
    };
    let text = decode(bytes, &mut csv.problems);
    for (n, line) in text.split(['\r', '\n']).enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut fields = line.splitn(4, ',');
        let file = fields.next().unwrap_or("");
        let label = fields.next().unwrap_or("");
        if file.is_empty() {
            csv.problems.push(format!(
                "line {}: no file name before the first comma: fallback skips it",
                n + 1
            ));
            continue;
        }
        if label.is_empty() {
            csv.problems.push(format!(
                "line {}: no label after the file name: fallback skips it",
                n + 1
            ));
            continue;
        }
        let arguments = fields.next().unwrap_or("");
        if csv.entries.len() == MAX_CSV_ENTRIES {
            csv.problems.push(format!(
                "more than {MAX_CSV_ENTRIES} entries: the rest not read"
            ));
            break;
        }
        csv.entries.push(CsvEntry {
            file: file.to_string(),
            label: label.to_string(),
            arguments: arguments.to_string(),
        });
    }
    if csv.entries.is_empty() && csv.problems.is_empty() {
        csv.problems
            .push("no entry: fallback creates no boot entry from it".into());
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ucs2le(s: &str, bom: bool) -> Vec<u8> {
        let mut v = Vec::new();
        if bom {
            v.extend([0xff, 0xfe]);
        }
        for u in s.encode_utf16() {
            v.extend(u.to_le_bytes());
        }
        v
    }

    #[test]
    fn red_hat_csv_with_and_without_bom() {
        let text = "shimx64.efi,Red Hat Enterprise Linux,,This is the boot entry for Red Hat Enterprise Linux\n";
        for bom in [true, false] {
            let c = parse("/EFI/redhat/BOOTX64.CSV", &ucs2le(text, bom));
            assert_eq!(c.problems, Vec::<String>::new());
            assert_eq!(
                c.entries,
                vec![CsvEntry {
                    file: "shimx64.efi".into(),
                    label: "Red Hat Enterprise Linux".into(),
                    arguments: String::new(),
                }]
            );
        }
    }

    #[test]
    fn suse_short_form_crlf_args_and_malformed_lines() {
        let c = parse(
            "/EFI/sles/boot.csv",
            &ucs2le(
                "shim.efi,sles-secureboot\r\n,nofile\r\nx.efi,\r\nshim.efi,two,\\grub.efi\0garbage",
                false,
            ),
        );
        assert_eq!(c.entries.len(), 2, "{c:?}");
        assert_eq!(c.entries[0].file, "shim.efi");
        assert_eq!(c.entries[0].label, "sles-secureboot");
        assert_eq!(c.entries[1].arguments, "\\grub.efi");
        assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
    }

    #[test]
    fn eight_bit_and_big_endian_files_are_named() {
        let c = parse("/EFI/x/BOOTX64.CSV", b"shimx64.efi,X,,\n");
        assert!(c.problems.iter().any(|p| p.contains("8-bit")), "{c:?}");
        assert!(c.entries.iter().all(|e| e.file != "shimx64.efi"));
        let mut be = vec![0xfe, 0xff];
        for u in "shimx64.efi,X".encode_utf16() {
            be.extend(u.to_be_bytes());
        }
        let c = parse("/EFI/x/BOOTX64.CSV", &be);
        assert!(c.problems.iter().any(|p| p.contains("big-endian")), "{c:?}");
        assert!(parse("/e", &[]).problems[0].contains("no entry"));
        assert!(parse("/e", &[0x41]).problems[0].contains("odd length"));
    }
}
