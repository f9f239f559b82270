//! Boot facts: can this disk boot under BIOS (Azure Generation 1), under UEFI (Generation 2),
//! for which architectures, and is its UEFI chain Secure Boot ready?
//!
//! Evidence gathered, per the rule catalogue (BOOT-002, BOOT-003, BOOT-007, BOOT-008, GAL-004):
//!
//! - **BIOS**: the MBR code area ([`grub_pc::boot_code`]: present, GRUB `boot.img`, the LBA it
//!   loads `core.img` from); the stage 2: GRUB `core.img` in the post-MBR gap (MBR disks) or a
//!   BIOS boot partition (GPT disks), recognised by its first sector `diskboot.img`
//!   ([`grub_pc::core_img_at`]); and `/boot/grub{,2}/i386-pc` in the guest.
//! - **UEFI**: every EFI System Partition, read through its own filesystem (so an ESP that
//!   fstab does not mount is still seen): the removable-media fallback loaders
//!   `\EFI\BOOT\BOOTX64.EFI` / `BOOTAA64.EFI` and every `*.efi` under `\EFI\<dir>\`, each with
//!   its PE machine ([`pe`]) and Authenticode signer names ([`authenticode`], read with the
//!   bounded DER reader [`der`]), plus the `*.cfg`/`*.csv` files beside them.
//!
//! Nothing here judges severity: `check` turns these facts into findings. Reads are bounded:
//! at most [`MAX_GAP_BYTES`] of the post-MBR gap, [`MAX_LOADER_SIZE`] per loader and
//! [`MAX_LOADER_BYTES`] of loaders in all, a bounded number of ESP directories and files.

pub mod authenticode;
pub mod bls_entry;
pub mod boot_csv;
pub mod der;
pub mod esp_kernel;
pub mod grub_pc;
pub mod pe;
pub mod shim;
pub mod systemd_boot;
pub mod uki;

use crate::tree::GuestTree;
use crate::volumes::{open_filesystem, GuestVolume};
use authenticode::Signature;
use grub_pc::{BootCode, CoreImg};
use serde::Serialize;
use vhdprep_disk::ReadAt;
use vhdprep_fs::{FileKind, FileSystem};
use vhdprep_partition::{PartitionKind, PartitionTable, TableKind};

/// Largest EFI loader read (shim ≈ 1 MiB, signed GRUB ≈ 4 MiB; unified kernel images are
/// larger).
pub const MAX_LOADER_SIZE: u64 = 64 << 20;
/// Most loader bytes read over all ESPs.
pub const MAX_LOADER_BYTES: u64 = 256 << 20;
/// Most bytes of the post-MBR gap scanned for `core.img`.
pub const MAX_GAP_BYTES: u64 = 2 << 20;
/// Most bytes of a BIOS boot partition scanned for non-zero content.
pub const MAX_BIOS_BOOT_SCAN: u64 = 4 << 20;
/// Most `\EFI\<dir>` directories, and files per directory, looked at.
pub const MAX_ESP_ENTRIES: usize = 64;

/// Everything known about how the disk boots.
#[derive(Debug, Clone, Serialize)]
pub struct BootFacts {
    /// Partition table kind the facts were read under.
    pub table: TableKind,
    /// BIOS evidence.
    pub bios: BiosFacts,
    /// UEFI evidence.
    pub uefi: UefiFacts,
    /// BOOT-002: the disk carries BIOS boot code and a stage 2 it can reach.
    pub bios_bootable: bool,
    /// Why `bios_bootable` is what it is.
    pub bios_reasons: Vec<String>,
    /// BOOT-003: an ESP holds a removable-media fallback loader (`BOOTX64.EFI`/`BOOTAA64.EFI`)
    /// that is a PE image for its architecture.
    pub uefi_bootable: bool,
    /// Why `uefi_bootable` is what it is.
    pub uefi_reasons: Vec<String>,
    /// GAL-004 evidence: architectures of the fallback loaders (`x64`, `arm64`, ...), from
    /// their PE machine (or their name when unreadable), deduplicated.
    pub architectures: Vec<&'static str>,
    /// BOOT-008 evidence.
    pub secure_boot: SecureBootEvidence,
}

/// BIOS boot evidence.
#[derive(Debug, Clone, Serialize)]
pub struct BiosFacts {
    /// LBA 0's code area.
    pub boot_code: BootCode,
    /// What lies at the LBA GRUB's `boot.img` loads from (`boot_code.core_img_lba`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_img_at_boot_pointer: Option<CoreImg>,
    /// MBR disks: the gap between LBA 1 and the first partition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_mbr_gap: Option<PostMbrGap>,
    /// BIOS boot partitions (GPT).
    pub bios_boot_partitions: Vec<BiosBootPartition>,
    /// `/boot/grub/i386-pc` or `/boot/grub2/i386-pc` when the guest has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grub_i386_pc_dir: Option<String>,
}

/// The post-MBR gap of an MBR disk.
#[derive(Debug, Clone, Serialize)]
pub struct PostMbrGap {
    /// First LBA of the gap (1).
    pub start_lba: u64,
    /// First LBA after the gap (the first partition's start), or the scan limit.
    pub end_lba: u64,
    /// Some byte in the (scanned) gap is non-zero.
    pub non_zero: bool,
    /// GRUB `core.img` found in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_img: Option<CoreImg>,
}

/// A BIOS boot partition (GPT type `21686148-6449-6E6F-744E-656564454649`).
#[derive(Debug, Clone, Serialize)]
pub struct BiosBootPartition {
    /// Partition number.
    pub number: u32,
    /// First LBA.
    pub start_lba: u64,
    /// Length in sectors.
    pub sectors: u64,
    /// Some byte of its first [`MAX_BIOS_BOOT_SCAN`] bytes is non-zero.
    pub non_zero: bool,
    /// GRUB `core.img` at its start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_img: Option<CoreImg>,
}

/// UEFI boot evidence.
#[derive(Debug, Clone, Serialize)]
pub struct UefiFacts {
    /// Every ESP (by partition type), in partition order.
    pub esps: Vec<EspFacts>,
}

/// One EFI System Partition.
#[derive(Debug, Clone, Serialize)]
pub struct EspFacts {
    /// Where it is (`partition 15`).
    pub source: String,
    /// Partition number.
    pub number: u32,
    /// Filesystem type found on it (`vfat` expected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<String>,
    /// Why its files could not be (fully) read.
    pub problems: Vec<String>,
    /// Path of `\EFI\BOOT\BOOTX64.EFI` as stored, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_x64: Option<String>,
    /// Path of `\EFI\BOOT\BOOTAA64.EFI` as stored, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_aa64: Option<String>,
    /// Every `*.efi` directly under `\EFI\<dir>\`.
    pub loaders: Vec<EfiLoader>,
    /// `*.cfg` and `*.csv` files directly under `\EFI\<dir>\` (`grub.cfg`, `BOOTX64.CSV`).
    pub configs: Vec<String>,
    /// The `*.csv` files among them, read as shim's fallback reads them.
    pub boot_csvs: Vec<boot_csv::BootCsv>,
}

/// What an EFI binary is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoaderRole {
    /// `\EFI\BOOT\BOOT<arch>.EFI`, the removable-media path firmware boots without NVRAM.
    Fallback,
    /// `shim<arch>.efi`.
    Shim,
    /// `grub<arch>.efi`.
    Grub,
    /// `mm<arch>.efi` (MokManager).
    MokManager,
    /// `fb<arch>.efi` (shim's fallback, recreates NVRAM entries).
    BootEntryRestorer,
    /// Anything else.
    Other,
}

/// One EFI executable on an ESP.
#[derive(Debug, Clone, Serialize)]
pub struct EfiLoader {
    /// Path on the ESP, as stored (`/EFI/BOOT/BOOTX64.EFI`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Role by name.
    pub role: LoaderRole,
    /// PE COFF machine (0x8664 x64, 0xAA64 arm64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<u16>,
    /// `x64`, `arm64`, ... from the machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<&'static str>,
    /// PE subsystem (10 = EFI application).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subsystem: Option<u16>,
    /// Why it could not be read or parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Authenticode signatures, in certificate-table order.
    pub signatures: Vec<Signature>,
    /// Certificate-table entries that could not be read.
    pub signature_problems: Vec<String>,
    /// Some signature chains to a Microsoft UEFI CA.
    pub microsoft_uefi_ca: bool,
    /// The loader names it embeds when it is shim (read for fallback and `shim*` loaders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shim: Option<shim::ShimNames>,
}

impl EfiLoader {
    /// Carries at least one readable Authenticode signature.
    pub fn signed(&self) -> bool {
        !self.signatures.is_empty()
    }
}

/// Secure Boot readiness evidence (BOOT-008), for the first ESP with a fallback loader.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecureBootEvidence {
    /// The fallback loader looked at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_loader: Option<String>,
    /// It is signed by a Microsoft UEFI CA (as shim is).
    pub fallback_microsoft_signed: bool,
    /// The GRUB next to it (`grub<arch>.efi` in the same directory, which shim loads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grub: Option<String>,
    /// That GRUB carries an Authenticode signature (normally by the distro key shim embeds).
    pub grub_signed: bool,
    /// Signer commonNames of that GRUB (subject of the signing certificate, else its issuer).
    pub grub_signers: Vec<String>,
    /// Both of the above hold. Kernel signatures and DKMS modules are not covered here.
    pub ready: bool,
    /// The chain from the fallback loader to GRUB, followed as shim and its fallback do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<shim::UefiChain>,
    /// Why `ready` is what it is.
    pub reasons: Vec<String>,
}

/// Gathers the boot facts of a disk: `disk` is the virtual disk, `table` its partition table,
/// `volumes` its volumes (as [`discover`](crate::volumes::discover) finds them) and `guest`
/// the assembled guest tree, if a root was found. Never fails: what cannot be read is
/// recorded in the reasons and problems.
pub fn boot_facts(
    disk: &dyn ReadAt,
    table: &PartitionTable,
    volumes: &[GuestVolume],
    guest: Option<&GuestTree>,
) -> BootFacts {
    let bios = bios_facts(disk, table, guest);
    let (bios_bootable, bios_reasons) = judge_bios(table.kind, &bios);
    let mut budget = MAX_LOADER_BYTES;
    let esps: Vec<EspFacts> = volumes
        .iter()
        .filter_map(|v| {
            let p = v.partition.as_ref()?;
            (p.kind == PartitionKind::Esp).then(|| esp_of_volume(v, p.number, &mut budget))
        })
        .collect();
    let uefi = UefiFacts { esps };
    let (uefi_bootable, uefi_reasons, architectures) = judge_uefi(&uefi);
    let secure_boot = secure_boot(&uefi);
    BootFacts {
        table: table.kind,
        bios,
        uefi,
        bios_bootable,
        bios_reasons,
        uefi_bootable,
        uefi_reasons,
        architectures,
        secure_boot,
    }
}

// ------------------------------------------------------------------------------------ BIOS

fn read_bytes(disk: &dyn ReadAt, offset: u64, len: u64) -> Option<Vec<u8>> {
    let len = len.min(disk.len().checked_sub(offset)?);
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    disk.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

fn bios_facts(disk: &dyn ReadAt, table: &PartitionTable, guest: Option<&GuestTree>) -> BiosFacts {
    let ss = u64::from(table.sector_size.max(512));
    let lba0 = read_bytes(disk, 0, 512).unwrap_or_default();
    let boot_code = grub_pc::boot_code(&lba0);
    let core_at = |lba: u64| {
        let s = read_bytes(disk, lba.checked_mul(ss)?, 512)?;
        grub_pc::core_img_at(&s, lba)
    };
    let core_img_at_boot_pointer = boot_code.core_img_lba.and_then(core_at);

    let post_mbr_gap = (table.kind == TableKind::Mbr).then(|| {
        let first = table
            .partitions
            .iter()
            .chain(table.mbr.iter().flat_map(|m| m.primaries.iter()))
            .map(|p| p.start_lba)
            .filter(|&l| l >= 1)
            .min()
            .unwrap_or(u64::MAX);
        let end_lba = first.min(1 + MAX_GAP_BYTES / ss);
        let gap = read_bytes(disk, ss, (end_lba - 1) * ss).unwrap_or_default();
        let core_img = gap
            .chunks(ss as usize)
            .zip(1u64..)
            .find_map(|(s, lba)| grub_pc::core_img_at(s, lba));
        PostMbrGap {
            start_lba: 1,
            end_lba,
            non_zero: gap.iter().any(|&b| b != 0),
            core_img,
        }
    });

    let bios_boot_partitions = table
        .partitions_of_kind(PartitionKind::BiosBoot)
        .map(|p| {
            let mut non_zero = false;
            let scan = p.size_bytes.min(MAX_BIOS_BOOT_SCAN);
            let mut off = 0u64;
            while off < scan && !non_zero {
                let n = (scan - off).min(64 << 10);
                match read_bytes(disk, p.start_bytes.saturating_add(off), n) {
                    Some(b) if !b.is_empty() => non_zero = b.iter().any(|&x| x != 0),
                    _ => break,
                }
                off += n;
            }
            BiosBootPartition {
                number: p.number,
                start_lba: p.start_lba,
                sectors: p.sectors(),
                non_zero,
                core_img: core_at(p.start_lba),
            }
        })
        .collect();

    let grub_i386_pc_dir = guest.and_then(|g| {
        ["/boot/grub/i386-pc", "/boot/grub2/i386-pc"]
            .into_iter()
            .find(|p| {
                g.metadata(p.as_bytes())
                    .is_ok_and(|m| m.kind == FileKind::Dir)
            })
            .map(str::to_string)
    });

    BiosFacts {
        boot_code,
        core_img_at_boot_pointer,
        post_mbr_gap,
        bios_boot_partitions,
        grub_i386_pc_dir,
    }
}

fn judge_bios(kind: TableKind, b: &BiosFacts) -> (bool, Vec<String>) {
    let mut reasons = Vec::new();
    let mut ok = true;
    if b.boot_code.present {
        reasons.push(if b.boot_code.grub_boot_img {
            "LBA 0 carries GRUB boot.img".to_string()
        } else {
            "LBA 0 carries boot code (not GRUB boot.img)".to_string()
        });
    } else {
        ok = false;
        reasons.push("LBA 0 boot code area (bytes 0-439) is all zero".into());
    }
    if let Some(lba) = b.boot_code.core_img_lba {
        match &b.core_img_at_boot_pointer {
            Some(c) => reasons.push(format!(
                "boot.img loads core.img from LBA {lba}: found there ({} sectors)",
                c.sectors
            )),
            None => {
                ok = false;
                reasons.push(format!(
                    "boot.img loads core.img from LBA {lba}, but no GRUB core.img is there"
                ));
            }
        }
    }
    match kind {
        TableKind::Mbr => {
            let gap = b.post_mbr_gap.as_ref();
            if let Some(c) = gap.and_then(|g| g.core_img.as_ref()) {
                reasons.push(format!(
                    "post-MBR gap holds GRUB core.img at LBA {} ({} sectors)",
                    c.lba, c.sectors
                ));
            } else if let Some(d) = &b.grub_i386_pc_dir {
                reasons.push(format!(
                    "no core.img in the post-MBR gap, but the guest has {d}"
                ));
            } else {
                ok = false;
                reasons.push(
                    "no GRUB core.img in the post-MBR gap and no /boot/grub*/i386-pc in the guest"
                        .into(),
                );
            }
        }
        TableKind::Gpt => {
            if b.bios_boot_partitions.is_empty() {
                ok = false;
                reasons.push("GPT disk without a BIOS boot partition".into());
            } else if let Some(p) = b.bios_boot_partitions.iter().find(|p| p.non_zero) {
                reasons.push(match &p.core_img {
                    Some(c) => format!(
                        "BIOS boot partition {} holds GRUB core.img ({} sectors)",
                        p.number, c.sectors
                    ),
                    None => format!(
                        "BIOS boot partition {} has content (not recognised as GRUB core.img)",
                        p.number
                    ),
                });
            } else {
                ok = false;
                reasons.push("the BIOS boot partition is empty (all zero)".into());
            }
        }
        TableKind::None => {
            ok = false;
            reasons.push("no partition table".into());
        }
    }
    (ok, reasons)
}

// ------------------------------------------------------------------------------------ UEFI

fn esp_of_volume(v: &GuestVolume, number: u32, budget: &mut u64) -> EspFacts {
    let mut esp = EspFacts {
        source: v.source.to_string(),
        number,
        filesystem: v.filesystem.as_ref().map(|p| p.fs_type.to_string()),
        problems: Vec::new(),
        fallback_x64: None,
        fallback_aa64: None,
        loaders: Vec::new(),
        configs: Vec::new(),
        boot_csvs: Vec::new(),
    };
    if esp.filesystem.as_deref() != Some("vfat") {
        esp.problems.push(format!(
            "ESP holds {} instead of a FAT filesystem",
            esp.filesystem
                .as_deref()
                .unwrap_or("no recognised filesystem")
        ));
        return esp;
    }
    match open_filesystem(v, None) {
        Ok(fs) => scan_esp(fs.as_ref(), &mut esp, budget),
        Err(e) => esp
            .problems
            .push(format!("cannot open the FAT filesystem: {e}")),
    }
    esp
}

fn find_dir_ci(fs: &dyn FileSystem, dir: &str, name: &str) -> Option<String> {
    let entries = fs.read_dir(dir.as_bytes()).ok()?;
    entries
        .iter()
        .find(|e| e.kind == FileKind::Dir && e.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|e| format!("{}/{}", dir.trim_end_matches('/'), e.name_lossy()))
}

fn role_of(dir: &str, name: &str) -> LoaderRole {
    let n = name.to_ascii_lowercase();
    if dir.eq_ignore_ascii_case("boot") && n.starts_with("boot") {
        LoaderRole::Fallback
    } else if n.starts_with("shim") {
        LoaderRole::Shim
    } else if n.starts_with("grub") {
        LoaderRole::Grub
    } else if n.starts_with("mm") {
        LoaderRole::MokManager
    } else if n.starts_with("fb") {
        LoaderRole::BootEntryRestorer
    } else {
        LoaderRole::Other
    }
}

/// Reads the `\EFI` tree of an ESP's filesystem (any [`FileSystem`]; names are matched
/// case-insensitively) into `esp`, reading loaders while `budget` bytes remain.
pub fn scan_esp(fs: &dyn FileSystem, esp: &mut EspFacts, budget: &mut u64) {
    let Some(efi) = find_dir_ci(fs, "/", "EFI") else {
        esp.problems.push("no \\EFI directory".into());
        return;
    };
    let dirs = match fs.read_dir(efi.as_bytes()) {
        Ok(d) => d,
        Err(e) => {
            esp.problems.push(format!("{efi}: {e}"));
            return;
        }
    };
    let subdirs: Vec<_> = dirs.iter().filter(|e| e.kind == FileKind::Dir).collect();
    if subdirs.len() > MAX_ESP_ENTRIES {
        esp.problems.push(format!(
            "{efi}: {} directories, only the first {MAX_ESP_ENTRIES} read",
            subdirs.len()
        ));
    }
    for d in subdirs.into_iter().take(MAX_ESP_ENTRIES) {
        let dname = d.name_lossy();
        let dpath = format!("{efi}/{dname}");
        let files = match fs.read_dir(dpath.as_bytes()) {
            Ok(f) => f,
            Err(e) => {
                esp.problems.push(format!("{dpath}: {e}"));
                continue;
            }
        };
        let files: Vec<_> = files.iter().filter(|e| e.kind == FileKind::File).collect();
        if files.len() > MAX_ESP_ENTRIES {
            esp.problems.push(format!(
                "{dpath}: {} files, only the first {MAX_ESP_ENTRIES} read",
                files.len()
            ));
        }
        for f in files.into_iter().take(MAX_ESP_ENTRIES) {
            let fname = f.name_lossy();
            let lower = fname.to_ascii_lowercase();
            let path = format!("{dpath}/{fname}");
            if lower.ends_with(".cfg") || lower.ends_with(".csv") {
                if lower.ends_with(".csv") {
                    esp.boot_csvs.push(read_csv(fs, &path));
                }
                esp.configs.push(path);
                continue;
            }
            if !lower.ends_with(".efi") {
                continue;
            }
            let role = role_of(&dname, &fname);
            if role == LoaderRole::Fallback {
                match lower.as_str() {
                    "bootx64.efi" => esp.fallback_x64 = Some(path.clone()),
                    "bootaa64.efi" => esp.fallback_aa64 = Some(path.clone()),
                    _ => {}
                }
            }
            let mut l = read_loader(fs, path, role, budget);
            if matches!(role, LoaderRole::Fallback | LoaderRole::Shim) {
                l.shim = read_shim_names(fs, &l, budget);
            }
            esp.loaders.push(l);
        }
    }
}

fn read_loader(fs: &dyn FileSystem, path: String, role: LoaderRole, budget: &mut u64) -> EfiLoader {
    let mut l = EfiLoader {
        size: 0,
        role,
        machine: None,
        arch: None,
        subsystem: None,
        error: None,
        signatures: Vec::new(),
        signature_problems: Vec::new(),
        microsoft_uefi_ca: false,
        shim: None,
        path,
    };
    match fs.metadata(l.path.as_bytes()) {
        Ok(m) => l.size = m.size,
        Err(e) => {
            l.error = Some(e.to_string());
            return l;
        }
    }
    if l.size > MAX_LOADER_SIZE || l.size > *budget {
        l.error = Some(format!(
            "{} bytes: over the read limit, not examined",
            l.size
        ));
        return l;
    }
    // Only the headers and the certificate table are read.
    let mut spent = 0u64;
    let mut failure = None;
    let mut read = |offset: u64, len: u64| match fs.read_range(l.path.as_bytes(), offset, len) {
        Ok(b) => {
            spent += b.len() as u64;
            Some(b)
        }
        Err(e) => {
            failure = Some(e.to_string());
            None
        }
    };
    let bytes = pe::sparse_image(l.size, &mut read);
    *budget = budget.saturating_sub(spent);
    match bytes {
        Some(b) => examine_pe(&mut l, &b),
        None => l.error = Some(failure.unwrap_or_else(|| "cannot be read".into())),
    }
    l
}

/// A fallback CSV on the ESP, up to [`boot_csv::MAX_CSV_SIZE`] bytes.
fn read_csv(fs: &dyn FileSystem, path: &str) -> boot_csv::BootCsv {
    match fs.read_file(path.as_bytes(), boot_csv::MAX_CSV_SIZE) {
        Ok(b) => boot_csv::parse(path, &b),
        Err(e) => boot_csv::BootCsv {
            path: path.to_string(),
            entries: Vec::new(),
            problems: vec![format!("cannot be read: {e}")],
        },
    }
}

/// The names shim embeds: its data sections (the whole file when it has none or their table
/// is unreadable),
/// at most [`shim::MAX_SHIM_SCAN`] bytes of `l`, charged to `budget`.
fn read_shim_names(
    fs: &dyn FileSystem,
    l: &EfiLoader,
    budget: &mut u64,
) -> Option<shim::ShimNames> {
    if l.error.is_some() || l.size > *budget {
        return None;
    }
    let path = l.path.as_bytes();
    let head = fs.read_range(path, 0, shim::PE_HEAD).ok()?;
    *budget = budget.saturating_sub(head.len() as u64);
    let ranges = shim::data_sections(&head, l.size)
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| vec![(0, l.size)]);
    let mut bytes = Vec::new();
    let mut left = shim::MAX_SHIM_SCAN.min(*budget);
    for (at, len) in ranges {
        let len = len.min(left);
        if len == 0 {
            break;
        }
        let b = fs.read_range(path, at, len).ok()?;
        left = left.saturating_sub(b.len() as u64);
        *budget = budget.saturating_sub(b.len() as u64);
        bytes.extend_from_slice(&b);
        bytes.extend_from_slice(&[0, 0]);
    }
    shim::shim_names(&bytes)
}

/// Fills machine, subsystem and signatures of `l` from the PE image `bytes`.
fn examine_pe(l: &mut EfiLoader, bytes: &[u8]) {
    let img = match pe::parse(bytes) {
        Ok(i) => i,
        Err(e) => {
            l.error = Some(e.to_string());
            return;
        }
    };
    l.machine = Some(img.machine);
    l.arch = Some(pe::machine_name(img.machine));
    l.subsystem = Some(img.subsystem);
    l.signature_problems = img.cert_table_problems.clone();
    for c in &img.certificates {
        if c.revision != pe::WIN_CERT_REVISION_2_0
            || c.cert_type != pe::WIN_CERT_TYPE_PKCS_SIGNED_DATA
        {
            l.signature_problems.push(format!(
                "certificate entry at offset {}: revision {:#06x} type {:#06x} is not Authenticode",
                c.offset, c.revision, c.cert_type
            ));
            continue;
        }
        match authenticode::parse_signed_data(c.data) {
            Ok(s) => l.signatures.push(s),
            Err(e) => l
                .signature_problems
                .push(format!("certificate entry at offset {}: {e}", c.offset)),
        }
    }
    l.microsoft_uefi_ca = l.signatures.iter().any(|s| s.microsoft_uefi_ca);
}

/// The fallback loaders of an ESP with the architecture their name promises.
fn fallback_loaders(esp: &EspFacts) -> impl Iterator<Item = (&'static str, &EfiLoader)> {
    [("x64", &esp.fallback_x64), ("arm64", &esp.fallback_aa64)]
        .into_iter()
        .filter_map(move |(arch, p)| {
            let p = p.as_ref()?;
            Some((arch, esp.loaders.iter().find(|l| &l.path == p)?))
        })
}

fn judge_uefi(u: &UefiFacts) -> (bool, Vec<String>, Vec<&'static str>) {
    let mut reasons = Vec::new();
    let mut ok = false;
    let mut archs: Vec<&'static str> = Vec::new();
    if u.esps.is_empty() {
        reasons.push("no EFI System Partition".into());
    }
    for esp in &u.esps {
        for p in &esp.problems {
            reasons.push(format!("{}: {p}", esp.source));
        }
        let mut any = false;
        for (arch, l) in fallback_loaders(esp) {
            any = true;
            match (&l.error, l.arch) {
                (_, Some(a)) if a == arch => {
                    ok = true;
                    reasons.push(format!("{}: {} is a PE image for {a}", esp.source, l.path));
                }
                (_, Some(a)) => reasons.push(format!(
                    "{}: {} is a PE image for {a}, not {arch}",
                    esp.source, l.path
                )),
                (Some(e), None) if e.contains("read limit") => {
                    ok = true;
                    reasons.push(format!(
                        "{}: {} present (not examined: {e})",
                        esp.source, l.path
                    ));
                }
                (e, None) => reasons.push(format!(
                    "{}: {} is not a readable PE image: {}",
                    esp.source,
                    l.path,
                    e.as_deref().unwrap_or("unknown")
                )),
            }
            let a = l.arch.unwrap_or(arch);
            if !archs.contains(&a) {
                archs.push(a);
            }
        }
        if !any && esp.problems.is_empty() {
            let others: Vec<&str> = esp.loaders.iter().map(|l| l.path.as_str()).collect();
            reasons.push(if others.is_empty() {
                format!("{}: no EFI loader at all", esp.source)
            } else {
                format!(
                    "{}: no \\EFI\\BOOT\\BOOTX64.EFI or BOOTAA64.EFI (only {}): booting would rely on NVRAM entries a VHD does not carry",
                    esp.source,
                    others.join(", ")
                )
            });
        }
    }
    (ok, reasons, archs)
}

fn secure_boot(u: &UefiFacts) -> SecureBootEvidence {
    let mut ev = SecureBootEvidence::default();
    let Some((esp, arch, fb)) = u
        .esps
        .iter()
        .find_map(|e| fallback_loaders(e).next().map(|(a, l)| (e, a, l)))
    else {
        ev.reasons.push("no UEFI fallback loader".into());
        return ev;
    };
    ev.fallback_loader = Some(fb.path.clone());
    ev.fallback_microsoft_signed = fb.microsoft_uefi_ca;
    ev.reasons.push(if fb.microsoft_uefi_ca {
        format!("{} is signed by a Microsoft UEFI CA (shim)", fb.path)
    } else if fb.signed() {
        format!("{} is signed, but not by a Microsoft UEFI CA", fb.path)
    } else {
        format!("{} carries no Authenticode signature", fb.path)
    });
    let chain = shim::follow(esp, arch, fb);
    ev.reasons.extend(chain.reasons.iter().cloned());
    if let Some(g) = chain
        .second_stage
        .as_ref()
        .and_then(|p| esp.loaders.iter().find(|l| &l.path == p))
    {
        ev.grub = Some(g.path.clone());
        ev.grub_signed = g.signed();
        ev.grub_signers = g
            .signatures
            .iter()
            .filter_map(|s| {
                s.signer_subject_cn
                    .clone()
                    .or_else(|| s.signer_issuer_cn.clone())
            })
            .collect();
        ev.reasons.push(if g.signed() {
            format!("{} is signed by {}", g.path, ev.grub_signers.join(", "))
        } else {
            format!("{} carries no Authenticode signature", g.path)
        });
    }
    ev.chain = Some(chain);
    ev.ready = ev.fallback_microsoft_signed && ev.grub_signed;
    ev
}

#[cfg(test)]
mod tests;
