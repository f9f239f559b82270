//! The UEFI chain from the removable-media loader to the second stage, followed as shim and
//! its fallback do (rhboot/shim `shim.c` `should_use_fallback`/`init_grub`, `fallback.c`).
//!
//! A VHD carries no NVRAM boot entries, so the firmware runs `\EFI\BOOT\BOOT<ARCH>.EFI`. When
//! that is shim:
//!
//! - if `\EFI\BOOT\` also holds shim's fallback (`fb<arch>.efi`; SUSE's build names it
//!   `fallback.efi`), shim runs it; the fallback reads, in every `\EFI\<dir>\` but `BOOT` (in
//!   directory order), `BOOT<ARCH>.CSV` or else `BOOT.CSV` ([`super::boot_csv`]), creates a boot
//!   entry per line and boots the first one: on Red Hat and SUSE
//!   `\EFI\redhat\shimx64.efi` / `\EFI\sles\shim.efi`, a shim again, which loads its second
//!   stage from its own directory (the entry's arguments may name another one);
//! - otherwise shim loads its second stage beside itself.
//!
//! shim's second stage is its build's `DEFAULT_LOADER` (upstream `\grub<arch>.efi`; SUSE builds
//! with `DEFAULT_LOADER=\grub.efi`). Both names are read from the shim binary itself
//! ([`shim_names`]: its UTF-16 string literals), so the chain follows what that build does;
//! a loader without them is not taken for shim and the upstream names are assumed.

use super::{EfiLoader, EspFacts};
use serde::Serialize;

/// Most bytes of a shim read to find its loader names (shim is about 1 MiB).
pub const MAX_SHIM_SCAN: u64 = 8 << 20;

/// The names a shim build loads, read from its UTF-16 literals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShimNames {
    /// Its second stage (`DEFAULT_LOADER` without the leading `\`): `grubx64.efi`,
    /// `grubaa64.efi`, or SUSE's `grub.efi`.
    pub second_stage: String,
    /// The fallback it runs when `\EFI\BOOT\` holds it: `fbx64.efi`, SUSE's `fallback.efi`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// Most UTF-16 strings collected from one binary (Debian's shim has about 1,500).
const MAX_STRINGS: usize = 65_536;

/// The printable-ASCII UTF-16LE strings (at least `min` characters, NUL-terminated) of
/// `bytes`, at both byte alignments, at most [`MAX_STRINGS`].
fn utf16_strings(bytes: &[u8], min: usize) -> Vec<String> {
    let mut out = Vec::new();
    for align in 0..2 {
        if out.len() >= MAX_STRINGS {
            break;
        }
        let mut cur = String::new();
        for c in bytes.get(align..).unwrap_or(&[]).chunks_exact(2) {
            if c[1] == 0 && (0x20..0x7f).contains(&c[0]) {
                cur.push(char::from(c[0]));
                continue;
            }
            if c == [0, 0] && cur.len() >= min && out.len() < MAX_STRINGS {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
        }
    }
    out
}

/// The loader names a shim build embeds, or `None` when `bytes` holds no `\grub*.efi`
/// literal (not a shim, or not one that loads GRUB).
pub fn shim_names(bytes: &[u8]) -> Option<ShimNames> {
    let strings = utf16_strings(bytes, 6);
    let efi_name = |s: &str| -> Option<String> {
        let name = s.trim_start_matches('\\');
        (s.starts_with('\\')
            && !name.contains('\\')
            && name.len() > 4
            && name.to_ascii_lowercase().ends_with(".efi"))
        .then(|| name.to_string())
    };
    let second_stage = strings
        .iter()
        .filter_map(|s| efi_name(s))
        .find(|n| n.to_ascii_lowercase().starts_with("grub"))?;
    let fallback = strings
        .iter()
        .find_map(|s| {
            let rest = s
                .get(..10)?
                .eq_ignore_ascii_case("\\EFI\\BOOT\\")
                .then(|| &s[10..])?;
            efi_name(&format!("\\{rest}"))
        })
        .or_else(|| {
            strings.iter().filter_map(|s| efi_name(s)).find(|n| {
                let l = n.to_ascii_lowercase();
                l.starts_with("fb") || l == "fallback.efi"
            })
        });
    Some(ShimNames {
        second_stage,
        fallback,
    })
}

/// Bytes of a PE image's start read for its section table.
pub const PE_HEAD: u64 = 4096;
/// Most sections looked at.
const MAX_SECTIONS: usize = 96;

/// The file ranges `(offset, length)` of the initialised-data sections (`.data*`, `.rdata`,
/// `.rodata`) of the PE image whose first bytes are `head`: where a shim build keeps its
/// string literals (in Debian's shimx64.efi 16.1, `.data`: 195 KiB of its 1 MiB). `None` when
/// `head` is no PE image or its section table lies beyond it; every range is clamped to
/// `file_size`.
pub fn data_sections(head: &[u8], file_size: u64) -> Option<Vec<(u64, u64)>> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(head.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(head.get(o..o + 4)?.try_into().ok()?));
    if head.get(..2)? != b"MZ" {
        return None;
    }
    let pe = usize::try_from(u32_at(0x3c)?).ok()?;
    if head.get(pe..pe.checked_add(4)?)? != b"PE\0\0" {
        return None;
    }
    let count = usize::from(u16_at(pe + 6)?).min(MAX_SECTIONS);
    let table = pe + 24 + usize::from(u16_at(pe + 20)?);
    let mut out = Vec::new();
    for i in 0..count {
        let e = table.checked_add(i * 40)?;
        let name = head.get(e..e + 8)?;
        let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(8)];
        let wanted = name.starts_with(b".data") || name == b".rdata" || name == b".rodata";
        if !wanted {
            continue;
        }
        let size = u64::from(u32_at(e + 16)?);
        let at = u64::from(u32_at(e + 20)?);
        if at < file_size && size > 0 {
            out.push((at, size.min(file_size - at)));
        }
    }
    Some(out)
}

/// Where the chain from a fallback loader leads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UefiChain {
    /// The loaders run, in order, from the fallback loader to the second stage (paths on
    /// the ESP as stored).
    pub loaders: Vec<String>,
    /// The second stage shim loads (normally GRUB), when it is on the ESP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_stage: Option<String>,
    /// The file the chain needs that the ESP lacks (or what is missing, in words).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    /// Each step, in words.
    pub reasons: Vec<String>,
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

fn loader<'a>(esp: &'a EspFacts, path: &str) -> Option<&'a EfiLoader> {
    esp.loaders
        .iter()
        .find(|l| l.path.eq_ignore_ascii_case(path))
}

/// `x64` → `x64`, `arm64` → `aa64` (the suffix of shim's file names).
fn suffix(arch: &str) -> &'static str {
    match arch {
        "arm64" => "aa64",
        "ia32" | "x86" => "ia32",
        _ => "x64",
    }
}

/// The entry fallback boots: the first line of the first `BOOT<ARCH>.CSV` (else `BOOT.CSV`)
/// over the `\EFI\<dir>\` directories in ESP order, `BOOT` skipped. Returns the directory,
/// the CSV path and the entry.
fn first_csv_entry<'a>(
    esp: &'a EspFacts,
    sfx: &str,
) -> Option<(&'a str, &'a str, &'a super::boot_csv::CsvEntry)> {
    let arch_csv = format!("boot{sfx}.csv");
    let mut dirs: Vec<&str> = Vec::new();
    for c in &esp.boot_csvs {
        let d = parent(&c.path);
        let name = d.rsplit('/').next().unwrap_or("");
        if !name.eq_ignore_ascii_case("boot") && !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs.into_iter().find_map(|d| {
        let in_dir = |n: &str| {
            esp.boot_csvs.iter().find(|c| {
                parent(&c.path) == d
                    && c.path
                        .rsplit('/')
                        .next()
                        .is_some_and(|f| f.eq_ignore_ascii_case(n))
            })
        };
        let csv = in_dir(&arch_csv).or_else(|| in_dir("boot.csv"))?;
        csv.entries.first().map(|e| (d, csv.path.as_str(), e))
    })
}

/// The second stage a shim at `shim` loads with load options `args`: a `*.efi` named first in
/// the options, else its build's default (`grub<arch>.efi` when unknown), in its directory.
fn second_stage_of(shim: &EfiLoader, args: &str, sfx: &str) -> String {
    let from_args = args
        .split_whitespace()
        .next()
        .map(|a| a.trim_start_matches('\\').replace('\\', "/"))
        .filter(|a| a.to_ascii_lowercase().ends_with(".efi"));
    let name = from_args.unwrap_or_else(|| {
        shim.shim
            .as_ref()
            .map_or_else(|| format!("grub{sfx}.efi"), |n| n.second_stage.clone())
    });
    format!("{}/{name}", parent(&shim.path))
}

/// Follows the chain from the fallback loader `fb` (for `arch`, `x64` or `arm64`) of `esp`.
pub fn follow(esp: &EspFacts, arch: &str, fb: &EfiLoader) -> UefiChain {
    let sfx = suffix(arch);
    let mut chain = UefiChain {
        loaders: vec![fb.path.clone()],
        ..UefiChain::default()
    };
    let dir = parent(&fb.path);
    let Some(names) = &fb.shim else {
        // Not recognisably shim: what a shim would load beside it is the best guess.
        let want = format!("{dir}/grub{sfx}.efi");
        chain.reasons.push(format!(
            "{} names no second stage (not recognised as shim): looked for {want} beside it",
            fb.path
        ));
        finish(esp, &mut chain, want);
        return chain;
    };
    let fallback_here = names
        .fallback
        .as_ref()
        .and_then(|f| loader(esp, &format!("{dir}/{f}")));
    let Some(fbx) = fallback_here else {
        let want = format!("{dir}/{}", names.second_stage);
        chain.reasons.push(format!(
            "{} is shim; with no {} beside it, it loads its second stage {want}",
            fb.path,
            names.fallback.as_deref().unwrap_or("fallback")
        ));
        finish(esp, &mut chain, want);
        return chain;
    };
    chain.loaders.push(fbx.path.clone());
    chain.reasons.push(format!(
        "{} is shim and {} is beside it: shim runs the fallback, which boots the first entry of the \\EFI\\<vendor>\\BOOT{}.CSV files",
        fb.path,
        fbx.path,
        sfx.to_ascii_uppercase()
    ));
    let Some((vdir, csv, entry)) = first_csv_entry(esp, sfx) else {
        chain.missing = Some(format!(
            "a \\EFI\\<vendor>\\BOOT{}.CSV entry",
            sfx.to_ascii_uppercase()
        ));
        chain.reasons.push(format!(
            "no \\EFI\\<vendor>\\ directory holds a BOOT{}.CSV or BOOT.CSV with an entry: the fallback creates no boot entry and resets the VM",
            sfx.to_ascii_uppercase()
        ));
        return chain;
    };
    let target = format!("{vdir}/{}", entry.file.replace('\\', "/"));
    chain
        .reasons
        .push(format!("{csv} names {} (\"{}\")", entry.file, entry.label));
    let Some(t) = loader(esp, &target) else {
        chain.reasons.push(format!("{target} is missing"));
        chain.missing = Some(target);
        return chain;
    };
    chain.loaders.push(t.path.clone());
    if t.shim.is_some() || t.role == super::LoaderRole::Shim {
        let want = second_stage_of(t, &entry.arguments, sfx);
        chain
            .reasons
            .push(format!("{} is shim: it loads {want}", t.path));
        finish(esp, &mut chain, want);
    } else {
        chain.second_stage = Some(t.path.clone());
    }
    chain
}

fn finish(esp: &EspFacts, chain: &mut UefiChain, want: String) {
    match loader(esp, &want) {
        Some(l) => {
            chain.loaders.push(l.path.clone());
            chain.second_stage = Some(l.path.clone());
        }
        None => {
            chain.reasons.push(format!("{want} is missing"));
            chain.missing = Some(want);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `s` as a NUL-terminated UTF-16LE literal.
    pub(crate) fn lit(s: &str) -> Vec<u8> {
        let mut v: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        v.extend([0, 0]);
        v
    }

    #[test]
    fn names_of_upstream_and_suse_builds() {
        let mut b = vec![0x4d, 0x5a, 1, 2, 3];
        for s in [
            "\\fbx64.efi",
            "\\EFI\\BOOT\\fbx64.efi",
            "\\mmx64.efi",
            "\\\\grubx64.efi",
        ] {
            b.extend(lit(s));
        }
        assert_eq!(
            shim_names(&b),
            Some(ShimNames {
                second_stage: "grubx64.efi".into(),
                fallback: Some("fbx64.efi".into())
            })
        );
        let mut b = vec![7];
        for s in ["\\fallback.efi", "\\MokManager.efi", "\\grub.efi"] {
            b.extend(lit(s));
        }
        assert_eq!(
            shim_names(&b),
            Some(ShimNames {
                second_stage: "grub.efi".into(),
                fallback: Some("fallback.efi".into())
            })
        );
        assert_eq!(shim_names(b"\\grubx64.efi\0 plain ASCII only"), None);
        assert_eq!(data_sections(b"MZ", 10), None);
        // 8 KiB of Debian's signed shimx64.efi 16.1 around its literals (the fuzz seed).
        let real = include_bytes!("../../../../../fuzz/seeds/shim_chain/shimx64-strings");
        assert_eq!(
            shim_names(real),
            Some(ShimNames {
                second_stage: "grubx64.efi".into(),
                fallback: Some("fbx64.efi".into())
            })
        );
        assert_eq!(shim_names(&[]), None);
    }
}
