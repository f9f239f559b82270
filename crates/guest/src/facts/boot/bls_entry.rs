//! One Type #1 boot loader entry of the Boot Loader Specification (UAPI.1): a text file
//! `loader/entries/<name>.conf` on the ESP or the XBOOTLDR partition, read by systemd-boot and
//! (through `blscfg`) by GRUB.
//!
//! Format, per the specification and systemd-boot's reader: one `key value` per line, the key
//! being the first word and the value the rest of the line after the whitespace that follows
//! it; blank lines and lines starting with `#` are ignored; unknown keys are kept (GRUB's
//! `grub_users`, `grub_arg`, `grub_class` live there) but carry no meaning here. A value that is
//! quoted as a whole (`"..."`) is unquoted, as systemd-boot does. `initrd` and `options` may
//! repeat: every `initrd` is loaded in order and the `options` lines are joined by a space;
//! `devicetree-overlay` is a space-separated list and may repeat. Paths (`linux`, `initrd`,
//! `efi`, `devicetree`) are relative to the root of the partition the entry lies on.
//!
//! The file name carries the entry's id and, optionally, a boot counter `+LEFT[-DONE]` right
//! before `.conf` (`fedora-6.1+3-1.conf`): the counter is removed from the id, and an entry with
//! no tries left sorts last. [`compare`] orders entries as systemd-boot's menu does, with the
//! UAPI version comparison [`version_cmp`].
//!
//! Bounds: at most [`MAX_ENTRY_BYTES`] of text are read (the rest is ignored and noted in
//! `problems`), at most [`MAX_REPEATS`] values of each repeatable key are kept.

use serde::Serialize;
use std::cmp::Ordering;

/// Most bytes of an entry file parsed.
pub const MAX_ENTRY_BYTES: usize = 64 << 10;
/// Most values kept of one repeatable key (`initrd`, `options`, `devicetree-overlay`) and of
/// unknown keys.
pub const MAX_REPEATS: usize = 128;

/// A parsed Type #1 entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlsEntry {
    /// The file name as found (`6.1.0-13-amd64.conf`, `a+3-1.conf`).
    pub file_name: String,
    /// The entry id: the file name with the boot counter removed, lower-cased as systemd-boot
    /// matches it against `loader.conf`'s `default` pattern (`.conf` kept).
    pub id: String,
    /// `title`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `machine-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// `sort-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<String>,
    /// `linux`: the kernel image's path on the entry's partition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linux: Option<String>,
    /// `initrd` values in order (each loaded, concatenated, by the boot loader).
    pub initrd: Vec<String>,
    /// `options` lines in order.
    pub options: Vec<String>,
    /// `devicetree`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devicetree: Option<String>,
    /// `devicetree-overlay` paths.
    pub devicetree_overlay: Vec<String>,
    /// `architecture` (`x64`, `aa64`, ... as UEFI names them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// `efi`: an EFI program to run instead of a Linux kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub efi: Option<String>,
    /// Boot counter from the file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counter: Option<BootCounter>,
    /// Keys this parser does not interpret, with their values, in order (GRUB's `grub_users`,
    /// `grub_arg`, `grub_class`, ...).
    pub other: Vec<(String, String)>,
    /// What was wrong with the file (bounds hit, a key given twice).
    pub problems: Vec<String>,
}

/// The boot-counting suffix of an entry's file name (`+LEFT` or `+LEFT-DONE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BootCounter {
    /// Tries left.
    pub left: u32,
    /// Tries done.
    pub done: u32,
}

impl BlsEntry {
    /// The kernel command line: the `options` lines joined by one space.
    pub fn cmdline(&self) -> String {
        self.options.join(" ")
    }

    /// The entry has no tries left (boot counting) and sorts last.
    pub fn is_bad(&self) -> bool {
        self.counter.is_some_and(|c| c.left == 0)
    }
}

/// Splits `name` (without `.conf`/`.efi`) into the id stem and its boot counter, the way
/// systemd-boot does: the last `+`, then digits, optionally `-` and digits, then the end.
pub fn split_counter(stem: &str) -> (&str, Option<BootCounter>) {
    let Some(plus) = stem.rfind('+') else {
        return (stem, None);
    };
    let tail = &stem[plus + 1..];
    let (left, done) = match tail.split_once('-') {
        Some((l, d)) => (l, Some(d)),
        None => (tail, None),
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(left) || done.is_some_and(|d| !digits(d)) {
        return (stem, None);
    }
    let left = left.parse().unwrap_or(0);
    let done = done.map_or(0, |d| d.parse().unwrap_or(0));
    (&stem[..plus], Some(BootCounter { left, done }))
}

/// The id systemd-boot gives an entry file: the name with its boot counter removed (suffix
/// kept), lower-cased.
pub fn entry_id(file_name: &str) -> (String, Option<BootCounter>) {
    let (stem, suffix) = match file_name.rfind('.') {
        Some(dot) => file_name.split_at(dot),
        None => (file_name, ""),
    };
    let (stem, counter) = split_counter(stem);
    (format!("{stem}{suffix}").to_ascii_lowercase(), counter)
}

fn unquote(v: &str) -> &str {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Parses entry file `file_name` with contents `data` (any bytes: invalid UTF-8 is replaced).
pub fn parse(file_name: &str, data: &[u8]) -> BlsEntry {
    let (id, counter) = entry_id(file_name);
    let mut e = BlsEntry {
        file_name: file_name.to_string(),
        id,
        counter,
        ..BlsEntry::default()
    };
    let data = if data.len() > MAX_ENTRY_BYTES {
        e.problems.push(format!(
            "entry is {} bytes; only the first {MAX_ENTRY_BYTES} were read",
            data.len()
        ));
        &data[..MAX_ENTRY_BYTES]
    } else {
        data
    };
    let text = String::from_utf8_lossy(data);
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once([' ', '\t']).unwrap_or((line, ""));
        let value = unquote(value.trim()).to_string();
        let single = |slot: &mut Option<String>, problems: &mut Vec<String>| {
            if slot.is_some() {
                problems.push(format!(
                    "line {}: `{key}` given again; the last one counts",
                    n + 1
                ));
            }
            *slot = Some(value.clone());
        };
        let push = |list: &mut Vec<String>, v: String| {
            if list.len() < MAX_REPEATS {
                list.push(v);
            }
        };
        match key {
            "title" => single(&mut e.title, &mut e.problems),
            "version" => single(&mut e.version, &mut e.problems),
            "machine-id" => single(&mut e.machine_id, &mut e.problems),
            "sort-key" => single(&mut e.sort_key, &mut e.problems),
            "linux" => single(&mut e.linux, &mut e.problems),
            "devicetree" => single(&mut e.devicetree, &mut e.problems),
            "architecture" => single(&mut e.architecture, &mut e.problems),
            "efi" => single(&mut e.efi, &mut e.problems),
            "initrd" => push(&mut e.initrd, value),
            "options" => push(&mut e.options, value),
            "devicetree-overlay" => {
                for v in value.split_whitespace() {
                    push(&mut e.devicetree_overlay, v.to_string());
                }
            }
            _ => {
                if e.other.len() < MAX_REPEATS {
                    e.other.push((key.to_string(), value));
                }
            }
        }
    }
    for (key, n) in [
        ("initrd", e.initrd.len()),
        ("options", e.options.len()),
        ("devicetree-overlay", e.devicetree_overlay.len()),
    ] {
        if n >= MAX_REPEATS {
            e.problems.push(format!(
                "more than {MAX_REPEATS} `{key}` values: the rest were ignored"
            ));
        }
    }
    e
}

fn is_version_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'~' | b'-' | b'^' | b'.')
}

/// Compares two version strings per the UAPI Version Format Specification (systemd's
/// `strverscmp_improved`): `~` sorts before everything (pre-releases), `-` separates version
/// and release, `^` and `.` start patch and point segments, numeric segments compare by value
/// and are newer than alphabetic ones, other characters are ignored. `None` sorts before any
/// string.
pub fn version_cmp(a: Option<&str>, b: Option<&str>) -> Ordering {
    let (a, b) = match (a, b) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => (a.as_bytes(), b.as_bytes()),
        _ => return a.cmp(&b),
    };
    let (mut i, mut j) = (0usize, 0usize);
    let at = |s: &[u8], k: usize| s.get(k).copied().unwrap_or(0);
    let mut last = None;
    loop {
        // Every round consumes at least one byte of either string; stop if one did not.
        if last == Some((i, j)) {
            return Ordering::Equal;
        }
        last = Some((i, j));
        while i < a.len() && !is_version_char(a[i]) {
            i += 1;
        }
        while j < b.len() && !is_version_char(b[j]) {
            j += 1;
        }
        for sep in [b'~', b'-', b'^', b'.'] {
            // `~`: the string prefixed with it is older; it is checked before the end test, the
            // others after it.
            if sep == b'-' && (i >= a.len() || j >= b.len()) {
                return a[i.min(a.len())..].cmp(&b[j.min(b.len())..]);
            }
            let (ca, cb) = (at(a, i), at(b, j));
            if ca == sep || cb == sep {
                let r = (ca != sep).cmp(&(cb != sep));
                if r != Ordering::Equal {
                    return r;
                }
                i += 1;
                j += 1;
            }
        }
        let (ca, cb) = (at(a, i), at(b, j));
        if ca.is_ascii_digit() || cb.is_ascii_digit() {
            let ea = i + a[i.min(a.len())..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let eb = j + b[j.min(b.len())..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let r = (i != ea).cmp(&(j != eb));
            if r != Ordering::Equal {
                return r;
            }
            while i < ea && a[i] == b'0' {
                i += 1;
            }
            while j < eb && b[j] == b'0' {
                j += 1;
            }
            let r = (ea - i)
                .cmp(&(eb - j))
                .then_with(|| a[i..ea].cmp(&b[j..eb]));
            if r != Ordering::Equal {
                return r;
            }
            i = ea;
            j = eb;
        } else {
            let ea = i + a[i.min(a.len())..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            let eb = j + b[j.min(b.len())..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            let n = (ea - i).min(eb - j);
            let r = a[i..i + n]
                .cmp(&b[j..j + n])
                .then_with(|| (ea - i).cmp(&(eb - j)));
            if r != Ordering::Equal {
                return r;
            }
            i = ea;
            j = eb;
        }
    }
}

/// The fields systemd-boot sorts its menu by, for Type #1 entries and unified kernel images
/// alike.
#[derive(Debug, Clone, Copy)]
pub struct SortFields<'a> {
    /// Entry id (file name without boot counter, lower-cased).
    pub id: &'a str,
    /// `sort-key`.
    pub sort_key: Option<&'a str>,
    /// `machine-id`.
    pub machine_id: Option<&'a str>,
    /// `version`.
    pub version: Option<&'a str>,
    /// Boot counter.
    pub counter: Option<BootCounter>,
}

impl BlsEntry {
    /// The fields [`compare`] orders by.
    pub fn sort_fields(&self) -> SortFields<'_> {
        SortFields {
            id: &self.id,
            sort_key: self.sort_key.as_deref(),
            machine_id: self.machine_id.as_deref(),
            version: self.version.as_deref(),
            counter: self.counter,
        }
    }
}

/// Orders two entries as systemd-boot's menu does (first = shown first, the default when
/// `loader.conf` names none): entries with no tries left last; entries with a `sort-key`
/// before those without; between two with one, by sort-key, then machine-id (increasing), then
/// version (decreasing); then by id (decreasing version order); then more tries left first,
/// fewer tries done first.
pub fn compare(a: &SortFields<'_>, b: &SortFields<'_>) -> Ordering {
    let bad = |c: Option<BootCounter>| c.is_some_and(|c| c.left == 0);
    bad(a.counter)
        .cmp(&bad(b.counter))
        .then_with(|| a.sort_key.is_none().cmp(&b.sort_key.is_none()))
        .then_with(|| {
            if a.sort_key.is_some() && b.sort_key.is_some() {
                a.sort_key
                    .cmp(&b.sort_key)
                    .then_with(|| a.machine_id.cmp(&b.machine_id))
                    .then_with(|| version_cmp(a.version, b.version).reverse())
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| version_cmp(Some(a.id), Some(b.id)).reverse())
        .then_with(|| match (a.counter, b.counter) {
            (None, None) => Ordering::Equal,
            _ => {
                let left = |c: Option<BootCounter>| c.map_or(u32::MAX, |c| c.left);
                let done = |c: Option<BootCounter>| c.map_or(0, |c| c.done);
                left(b.counter)
                    .cmp(&left(a.counter))
                    .then_with(|| done(a.counter).cmp(&done(b.counter)))
            }
        })
}

#[cfg(test)]
mod tests;
