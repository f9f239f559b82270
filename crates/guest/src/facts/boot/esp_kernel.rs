//! Kernels that the boot loader's own configuration names on the ESP or the XBOOTLDR
//! partition: systemd-boot's Type #1 entries (`loader/entries/*.conf`), unified kernel images
//! (Type #2, `EFI/Linux/*.efi`, and a UKI installed as the removable-media loader
//! `EFI/BOOT/BOOT<arch>.EFI`), and GRUB configurations kept on the ESP (mkosi and similar put
//! `grub.cfg`, the kernel and the initrd there and leave the root's `/boot` empty).
//!
//! The ESP and XBOOTLDR are read where the guest tree mounts them (fstab, or the Discoverable
//! Partitions Specification: [`crate::discoverable`]): each of [`BOOT_ROOTS`] that is a
//! directory is a `$BOOT` whose entries name files relative to itself.
//!
//! Type #1 entries in `/boot/loader/entries` are also what GRUB's `blscfg` reads (Red Hat):
//! they are taken as systemd-boot entries only when systemd-boot is installed on an ESP.
//!
//! Bounds: [`MAX_ENTRIES`] entries per directory, [`MAX_ENTRY_FILE`] per entry file; of a UKI
//! only its headers and text sections are read here.

use super::bls_entry::{self, BlsEntry, BootCounter, SortFields};
use super::systemd_boot::{self, LoaderConf};
use super::uki::{self, EfiKind, EfiSections, Range};
use crate::facts::kernel::cmdline::{self, BootFile, CmdlineSource, CommandLines, SourceKind};
use crate::tree::GuestTree;
use serde::Serialize;
use vhdprep_fs::FileKind;

/// Guest directories where an ESP or XBOOTLDR partition is mounted, in the order systemd
/// looks (`/efi` and `/boot` by the Discoverable Partitions Specification, `/boot/efi` by
/// Debian and Red Hat fstab files).
pub const BOOT_ROOTS: [&str; 3] = ["/efi", "/boot/efi", "/boot"];
/// Most entry files (or UKIs) read per directory.
pub const MAX_ENTRIES: usize = 64;
/// Largest entry file or `loader.conf` read.
pub const MAX_ENTRY_FILE: u64 = 64 << 10;
/// Largest GRUB configuration read.
pub const MAX_GRUB_CFG: u64 = 4 << 20;

/// A kernel, initrd or other boot file an entry names: a whole guest file or a section of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootBlob {
    /// The path as the configuration writes it (for a UKI section: `.linux`).
    pub written: String,
    /// The guest file holding it; `None` when it does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The byte range inside `file` (UKI sections); `None` for the whole file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
}

impl BootBlob {
    /// `file` or `file (.linux)`, for reports; the written path when missing.
    pub fn label(&self) -> String {
        match (&self.file, &self.range) {
            (Some(f), Some(_)) => format!("{f} ({})", self.written),
            (Some(f), None) => f.clone(),
            (None, _) => self.written.clone(),
        }
    }

    /// Reads at most `limit` bytes of the blob from `offset` within it.
    pub fn read(&self, guest: &GuestTree, offset: u64, limit: u64) -> Option<Vec<u8>> {
        let f = self.file.as_ref()?;
        match self.range {
            Some(r) => {
                if offset >= r.len {
                    return Some(Vec::new());
                }
                let len = (r.len - offset).min(limit);
                guest.read_range(f.as_bytes(), r.offset + offset, len).ok()
            }
            None => guest.read_range(f.as_bytes(), offset, limit).ok(),
        }
    }
}

/// The two kinds of boot loader entries of the Boot Loader Specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A Type #1 text entry.
    Type1,
    /// A Type #2 entry: a unified kernel image.
    Uki,
}

/// One boot menu entry of systemd-boot (or a UKI the firmware starts directly).
#[derive(Debug, Clone, Serialize)]
pub struct LoaderEntry {
    /// Type #1 or UKI.
    pub kind: EntryKind,
    /// The guest path of the entry file or UKI.
    pub file: String,
    /// The `$BOOT` directory it lies on (paths are relative to it).
    pub boot_root: String,
    /// Entry id (file name, boot counter removed, lower-cased).
    pub id: String,
    /// Title (`title`, or the UKI's os-release `PRETTY_NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Kernel release: the UKI's `.uname`, else the entry's `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The menu-order version (`version`, or the UKI's os-release version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `sort-key` (or the UKI's os-release `IMAGE_ID`/`ID`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<String>,
    /// `machine-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// Boot counter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counter: Option<BootCounter>,
    /// The kernel (`linux`, or `.linux`); `None` for an `efi` entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<BootBlob>,
    /// The initrds in load order (`initrd` lines, or `.initrd`).
    pub initrd: Vec<BootBlob>,
    /// The kernel command line (`options` joined, or `.cmdline`).
    pub cmdline: String,
    /// The 1-based line of the first `options` (1 for a UKI).
    pub cmdline_line: usize,
    /// What is wrong with the entry (unreadable UKI, bounds hit).
    pub problems: Vec<String>,
}

impl LoaderEntry {
    fn sort_fields(&self) -> SortFields<'_> {
        SortFields {
            id: &self.id,
            sort_key: self.sort_key.as_deref(),
            machine_id: self.machine_id.as_deref(),
            version: self.version.as_deref(),
            counter: self.counter,
        }
    }
}

/// Everything the ESP/XBOOTLDR boot configuration says about kernels.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoaderEntries {
    /// `$BOOT` directories found in the guest tree.
    pub boot_roots: Vec<String>,
    /// systemd-boot binaries found (`EFI/systemd/systemd-boot*.efi`, or a removable-media
    /// loader whose `.sdmagic` says systemd-boot).
    pub systemd_boot: Vec<String>,
    /// The removable-media loader `EFI/BOOT/BOOT<arch>.EFI` is systemd-boot or a UKI: the
    /// firmware starts it, so its entries are what boots.
    pub fallback_boots_entries: bool,
    /// `loader/loader.conf`, with its guest path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loader_conf: Option<(String, LoaderConf)>,
    /// The entries in systemd-boot's menu order.
    pub entries: Vec<LoaderEntry>,
    /// Index of the default entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<usize>,
    /// GRUB configurations on the ESP with menu entries (not mere `configfile` stubs), parsed,
    /// with paths resolved on the ESP.
    pub esp_grub: Vec<CmdlineSource>,
    /// Problems seen.
    pub problems: Vec<String>,
}

impl LoaderEntries {
    /// The default entry.
    pub fn default_entry(&self) -> Option<&LoaderEntry> {
        self.default.and_then(|i| self.entries.get(i))
    }
}

fn is_kind(guest: &GuestTree, p: &str, k: FileKind) -> bool {
    guest.metadata(p.as_bytes()).is_ok_and(|m| m.kind == k)
}

/// Entries of `dir` (names, `.`/`..` dropped), sorted, at most [`MAX_ENTRIES`].
fn names(guest: &GuestTree, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = guest
        .read_dir(dir.as_bytes())
        .map(|v| {
            v.into_iter()
                .map(|e| String::from_utf8_lossy(&e.name).into_owned())
                .filter(|n| n != "." && n != "..")
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.truncate(MAX_ENTRIES * 4);
    v
}

/// `name` in `dir`, compared case-insensitively (FAT).
fn find_ci(guest: &GuestTree, dir: &str, name: &str) -> Option<String> {
    names(guest, dir)
        .into_iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .map(|n| format!("{}/{n}", dir.trim_end_matches('/')))
}

/// The `EFI` directory of the `$BOOT` at `root` (any case, as FAT matches names), but not the
/// mount point of another `$BOOT` (`/boot/efi` is the ESP, not `/boot`'s `EFI`).
fn efi_dir(guest: &GuestTree, root: &str) -> Option<String> {
    find_ci(guest, root, "EFI").filter(|d| !BOOT_ROOTS.contains(&d.as_str()))
}

/// Resolves `p`, written relative to the partition mounted at `root`, in the guest.
pub fn resolve_on(guest: &GuestTree, root: &str, p: &str) -> Option<String> {
    if p.is_empty() || p.contains('$') {
        return None;
    }
    let p = match p.find(')') {
        Some(i) if p.starts_with('(') => &p[i + 1..],
        _ => p,
    };
    let rel = p.trim_start_matches('/');
    let root = root.trim_end_matches('/');
    [format!("{root}/{rel}"), format!("/{rel}")]
        .into_iter()
        .find(|c| is_kind(guest, c, FileKind::File))
}

fn read_sections(guest: &GuestTree, path: &str) -> Result<EfiSections, String> {
    let size = guest
        .metadata(path.as_bytes())
        .map_err(|e| e.to_string())?
        .size;
    uki::read(size, &mut |at, len| {
        guest.read_range(path.as_bytes(), at, len).ok()
    })
    .map_err(|e| e.to_string())
}

fn uki_entry(guest: &GuestTree, root: &str, path: &str, name: &str) -> LoaderEntry {
    let (id, counter) = bls_entry::entry_id(name);
    let mut e = LoaderEntry {
        kind: EntryKind::Uki,
        file: path.to_string(),
        boot_root: root.to_string(),
        id,
        title: None,
        release: None,
        version: None,
        sort_key: None,
        machine_id: None,
        counter,
        kernel: None,
        initrd: Vec::new(),
        cmdline: String::new(),
        cmdline_line: 1,
        problems: Vec::new(),
    };
    match read_sections(guest, path) {
        Ok(s) => {
            let blob = |written: &str, r: Range| BootBlob {
                written: written.to_string(),
                file: Some(path.to_string()),
                range: Some(r),
            };
            e.kernel = s.linux.map(|r| blob(".linux", r));
            e.initrd = s.initrd.map(|r| blob(".initrd", r)).into_iter().collect();
            e.cmdline = s.cmdline.clone().unwrap_or_default();
            e.release = s.uname.clone();
            e.version = s.os_version().map(str::to_string);
            e.sort_key = s.os_sort_key().map(str::to_string);
            e.title = s.os_release.as_ref().and_then(|o| o.pretty_name.clone());
            e.problems = s.problems;
            if s.kind != EfiKind::Uki {
                e.problems
                    .push("no .linux section: not a unified kernel image".into());
            }
        }
        Err(why) => e.problems.push(format!("{path}: {why}")),
    }
    e
}

fn type1_entry(guest: &GuestTree, root: &str, path: &str, b: BlsEntry) -> LoaderEntry {
    let blob = |w: &str| BootBlob {
        written: w.to_string(),
        file: resolve_on(guest, root, w),
        range: None,
    };
    LoaderEntry {
        kind: EntryKind::Type1,
        file: path.to_string(),
        boot_root: root.to_string(),
        id: b.id.clone(),
        title: b.title.clone(),
        release: b.version.clone(),
        version: b.version.clone(),
        sort_key: b.sort_key.clone(),
        machine_id: b.machine_id.clone(),
        counter: b.counter,
        kernel: b.linux.as_deref().map(blob),
        initrd: b.initrd.iter().map(|w| blob(w)).collect(),
        cmdline: b.cmdline(),
        cmdline_line: 1,
        problems: b.problems,
    }
}

/// The first line number of `options` in an entry text.
fn options_line(data: &[u8]) -> usize {
    String::from_utf8_lossy(data)
        .lines()
        .position(|l| l.trim_start().starts_with("options"))
        .map_or(1, |n| n + 1)
}

/// Gathers the boot loader entries of the guest's ESP/XBOOTLDR mounts.
pub fn gather(guest: &GuestTree) -> LoaderEntries {
    let mut out = LoaderEntries::default();
    let mut seen_roots = Vec::new();
    for r in BOOT_ROOTS {
        if !is_kind(guest, r, FileKind::Dir) {
            continue;
        }
        let canon = guest
            .canonical(r.as_bytes())
            .unwrap_or_else(|_| r.to_string());
        if seen_roots.contains(&canon) {
            continue;
        }
        seen_roots.push(canon);
        out.boot_roots.push(r.to_string());
    }
    // systemd-boot binaries and the removable-media loader.
    let mut fallback_uki = None;
    for r in &out.boot_roots {
        let Some(efi) = find_ci(guest, r, "EFI") else {
            continue;
        };
        if let Some(dir) = find_ci(guest, &efi, "systemd") {
            for n in names(guest, &dir) {
                let l = n.to_ascii_lowercase();
                if l.starts_with("systemd-boot") && l.ends_with(".efi") {
                    out.systemd_boot.push(format!("{dir}/{n}"));
                }
            }
        }
        if let Some(dir) = find_ci(guest, &efi, "BOOT") {
            for n in names(guest, &dir) {
                let l = n.to_ascii_lowercase();
                if !(l.starts_with("boot") && l.ends_with(".efi")) {
                    continue;
                }
                let p = format!("{dir}/{n}");
                match read_sections(guest, &p).map(|s| s.kind) {
                    Ok(EfiKind::SystemdBoot) => {
                        out.systemd_boot.push(p);
                        out.fallback_boots_entries = true;
                    }
                    Ok(EfiKind::Uki) => {
                        fallback_uki.get_or_insert((r.clone(), p, n));
                        out.fallback_boots_entries = true;
                    }
                    _ => {}
                }
            }
        }
    }
    let sd_boot = !out.systemd_boot.is_empty();
    for r in out.boot_roots.clone() {
        let loader = find_ci(guest, &r, "loader");
        if let Some(conf) = loader
            .as_ref()
            .and_then(|l| find_ci(guest, l, "loader.conf"))
        {
            if out.loader_conf.is_none() {
                if let Ok(b) = guest.read_file(conf.as_bytes(), MAX_ENTRY_FILE) {
                    out.loader_conf = Some((conf, systemd_boot::parse_loader_conf(&b)));
                }
            }
        }
        if sd_boot {
            if let Some(dir) = loader.as_ref().and_then(|l| find_ci(guest, l, "entries")) {
                let files: Vec<String> = names(guest, &dir)
                    .into_iter()
                    .filter(|n| n.to_ascii_lowercase().ends_with(".conf"))
                    .collect();
                if files.len() > MAX_ENTRIES {
                    out.problems.push(format!(
                        "{dir}: {} entries; only the first {MAX_ENTRIES} were read",
                        files.len()
                    ));
                }
                for n in files.into_iter().take(MAX_ENTRIES) {
                    let p = format!("{dir}/{n}");
                    if !is_kind(guest, &p, FileKind::File) {
                        continue;
                    }
                    let Ok(b) = guest.read_file(p.as_bytes(), MAX_ENTRY_FILE) else {
                        out.problems.push(format!("{p}: unreadable"));
                        continue;
                    };
                    let parsed = bls_entry::parse(&n, &b);
                    if parsed.linux.is_none() && parsed.efi.is_none() {
                        // systemd-boot drops such an entry from its menu.
                        out.problems
                            .push(format!("{p}: neither `linux` nor `efi`: not a boot entry"));
                        continue;
                    }
                    let mut e = type1_entry(guest, &r, &p, parsed);
                    e.cmdline_line = options_line(&b);
                    out.entries.push(e);
                }
            }
        }
        // Type #2: UKIs in EFI/Linux (systemd-boot lists them; without it they are still
        // kernels the firmware may be pointed at).
        let linux = efi_dir(guest, &r).and_then(|e| find_ci(guest, &e, "Linux"));
        if let Some(dir) = linux {
            let files: Vec<String> = names(guest, &dir)
                .into_iter()
                .filter(|n| n.to_ascii_lowercase().ends_with(".efi") && !n.starts_with('.'))
                .take(MAX_ENTRIES)
                .collect();
            for n in files {
                let p = format!("{dir}/{n}");
                if is_kind(guest, &p, FileKind::File) {
                    out.entries.push(uki_entry(guest, &r, &p, &n));
                }
            }
        }
    }
    out.entries
        .sort_by(|a, b| bls_entry::compare(&a.sort_fields(), &b.sort_fields()));
    let ids: Vec<&str> = out.entries.iter().map(|e| e.id.as_str()).collect();
    out.default = systemd_boot::default_index(out.loader_conf.as_ref().map(|c| &c.1), &ids);
    if let Some((r, p, n)) = fallback_uki {
        if out.systemd_boot.is_empty() {
            // The firmware starts this UKI itself: it is the default.
            out.entries.insert(0, uki_entry(guest, &r, &p, &n));
            out.default = Some(0);
        }
    }
    out.esp_grub = esp_grub(guest, &out.boot_roots);
    out
}

/// GRUB configurations on ESP mounts that `cmdline::gather` does not read (`/efi/...`,
/// `grub/grub.cfg` at the ESP's top), each parsed with paths resolved on its partition.
fn esp_grub(guest: &GuestTree, roots: &[String]) -> Vec<CmdlineSource> {
    let mut files = Vec::new();
    for r in roots {
        if r == "/boot" {
            // /boot/grub/grub.cfg and /boot/efi/EFI/*/grub.cfg are read by cmdline::gather.
            continue;
        }
        for d in ["grub", "grub2", "boot/grub", "boot/grub2"] {
            files.push((r.clone(), format!("{r}/{d}/grub.cfg")));
        }
        if r == "/efi" {
            if let Some(efi) = efi_dir(guest, r) {
                for d in names(guest, &efi) {
                    if let Some(f) = find_ci(guest, &format!("{efi}/{d}"), "grub.cfg") {
                        files.push((r.clone(), f));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (root, f) in files {
        if !is_kind(guest, &f, FileKind::File) {
            continue;
        }
        let Ok(b) = guest.read_file(f.as_bytes(), MAX_GRUB_CFG) else {
            continue;
        };
        let text = String::from_utf8_lossy(&b);
        let exists = |p: &str| resolve_on(guest, &root, p);
        out.extend(cmdline::parse_grub_cfg(&f, &text, &exists));
    }
    out
}

fn entry_source(e: &LoaderEntry, index: usize) -> CmdlineSource {
    let kind = match e.kind {
        EntryKind::Type1 => SourceKind::SystemdBoot,
        EntryKind::Uki => SourceKind::Uki,
    };
    let mut s = cmdline::source(kind, &e.file, e.cmdline_line, &e.cmdline);
    s.entry = e.title.clone().or_else(|| Some(e.id.clone()));
    s.entry_index = Some(index);
    let bf = |b: &BootBlob| BootFile {
        path: b.written.clone(),
        found: b.file.as_ref().map(|_| b.label()),
    };
    s.kernel = e.kernel.as_ref().map(bf);
    s.initrd = e.initrd.iter().map(bf).collect();
    s
}

/// Adds the loader entries and ESP GRUB configurations to `lines`, and makes the one the
/// firmware's boot path reaches the effective command line: the default systemd-boot entry
/// or UKI when the removable-media loader is systemd-boot or a UKI; else a grub.cfg or BLS
/// default already found stays; else the default of a GRUB configuration on the ESP; else the
/// default systemd-boot entry; else what was found before (`/etc/kernel/cmdline`, ...).
pub fn add_sources(loader: &LoaderEntries, lines: &mut CommandLines) {
    let first = lines.sources.len();
    for (i, e) in loader.entries.iter().enumerate() {
        let mut s = entry_source(e, i);
        s.default = loader.default == Some(i);
        lines.sources.push(s);
    }
    let entry_default = loader.default.map(|i| first + i);
    let grub_first = lines.sources.len();
    lines.sources.extend(loader.esp_grub.iter().cloned());
    let esp_grub_default = lines.sources[grub_first..]
        .iter()
        .position(|s| s.default)
        .map(|i| grub_first + i);
    let current = lines.effective_source().map(|s| s.kind);
    let boot_loader_cfg = matches!(current, Some(SourceKind::GrubCfg) | Some(SourceKind::Bls));
    let pick = if loader.fallback_boots_entries && entry_default.is_some() {
        entry_default
    } else if boot_loader_cfg {
        None
    } else {
        esp_grub_default.or(entry_default)
    };
    if let Some(i) = pick {
        lines.effective_source = Some(i);
        lines.effective = Some(lines.sources[i].cmdline.clone());
    }
}

#[cfg(test)]
mod tests;
