//! Kernel facts (rules KRN-001..009, BOOT-013, BOOT-014): the installed kernels, their
//! initramfs images and which Azure-relevant modules each can load, modprobe blacklists, what
//! the initramfs builder was told, and every kernel command line with its source.
//!
//! - [`cpio`]: newc/crc cpio push parser (names only, file data skipped).
//! - [`decompress`]: initramfs compression by magic, bounded streaming decoders.
//! - [`initramfs`]: the segment walk (early uncompressed cpio, then compressed ones).
//! - [`modules`]: wanted modules and Kconfig names, blacklists, dracut/initramfs-tools intent.
//! - [`cmdline`]: command line sources, argument parsing, `root=` kinds, boot file checks.
//!
//! Everything read from the guest is capped (files by size, the initramfs walk by decompressed
//! bytes, member count and name length, directory walks by entries and depth); nothing here
//! panics on malformed input.

pub mod bls;
pub mod cmdline;
pub mod cpio;
pub mod decompress;
pub mod initramfs;
pub mod loader_kernels;
pub mod modules;

use crate::facts::boot::esp_kernel;
use crate::GuestTree;
use cmdline::CommandLines;
use initramfs::Listing;
use modules::{Blacklisting, BuilderIntent, ModulePresence};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use vhdprep_fs::FileKind;

/// Largest initramfs file read.
pub const MAX_INITRAMFS_FILE: u64 = 512 << 20;
/// Initramfs bytes examined over all the kernels of one guest, read and decompressed each:
/// twice the single-image caps ([`MAX_INITRAMFS_FILE`], [`initramfs::MAX_DECOMPRESSED`]), far
/// above what a few real kernels need. Without it a guest of [`MAX_KERNELS`] kernels whose
/// initramfs are 1.5 MiB gzip bombs (or sparse 512 MiB files) costs 64 GiB of inflating.
pub const MAX_INITRAMFS_TOTAL: u64 = 2 * initramfs::MAX_DECOMPRESSED;
/// Largest text/config file read.
pub const MAX_TEXT_FILE: u64 = 16 << 20;
/// Most directory entries visited when walking `/lib/modules/<v>/kernel`.
pub const MAX_WALK_ENTRIES: usize = 200_000;
/// Deepest directory level walked.
pub const MAX_WALK_DEPTH: usize = 16;
/// Most kernels considered.
pub const MAX_KERNELS: usize = 64;

/// An initramfs image of a kernel.
#[derive(Debug, Clone, Serialize)]
pub struct InitramfsFacts {
    /// Guest path.
    pub path: String,
    /// File size.
    pub size: u64,
    /// Segments, member count and any error (members themselves are in `listing.members`).
    pub listing: Listing,
    /// Kernel modules (normalised names) inside it.
    pub modules: BTreeSet<String>,
}

/// One installed kernel.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledKernel {
    /// Version string (`6.1.0-28-cloud-amd64`).
    pub version: String,
    /// `/boot/vmlinuz-<v>` (or `vmlinux-<v>`, `Image-<v>`), when present.
    pub vmlinuz: Option<String>,
    /// `/boot/config-<v>`, when present.
    pub config: Option<String>,
    /// `/boot/System.map-<v>`, when present.
    pub system_map: Option<String>,
    /// Module directory (`/lib/modules/<v>` or `/usr/lib/modules/<v>`), when present.
    pub modules_dir: Option<String>,
    /// The initramfs (`initrd.img-<v>`, `initramfs-<v>.img`, `initrd-<v>`), when present.
    pub initramfs: Option<InitramfsFacts>,
    /// Why an existing initramfs could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initramfs_error: Option<String>,
    /// Modules listed in `modules.builtin` (normalised names).
    pub builtin: Vec<String>,
    /// The modules the rules care about and where each was found.
    pub modules: Vec<ModulePresence>,
}

impl InstalledKernel {
    /// The presence record of `module` (`-`/`_` insensitive), if it is one of
    /// [`modules::WANTED`].
    pub fn module(&self, module: &str) -> Option<&ModulePresence> {
        let m = modules::normalize(module);
        self.modules.iter().find(|p| p.name == m)
    }
}

/// Everything kernel-related that the rules need.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KernelFacts {
    /// Installed kernels, sorted by version string.
    pub kernels: Vec<InstalledKernel>,
    /// Blacklisted or disabled modules (modprobe.d files and the effective command line).
    pub blacklist: Vec<Blacklisting>,
    /// dracut / initramfs-tools configuration.
    pub builder: BuilderIntent,
    /// Kernel command lines (BOOT-014) with `root=` and boot file evidence (BOOT-013).
    pub cmdlines: CommandLines,
}

impl KernelFacts {
    /// The blacklistings of `module` (`-`/`_` insensitive).
    pub fn blacklisted(&self, module: &str) -> Vec<&Blacklisting> {
        let m = modules::normalize(module);
        self.blacklist.iter().filter(|b| b.module == m).collect()
    }
}

fn is_kind(guest: &GuestTree, path: &str, kind: FileKind) -> bool {
    guest
        .metadata(path.as_bytes())
        .is_ok_and(|m| m.kind == kind)
}

fn text(guest: &GuestTree, path: &str) -> Option<String> {
    if !is_kind(guest, path, FileKind::File) {
        return None;
    }
    let b = guest.read_file(path.as_bytes(), MAX_TEXT_FILE).ok()?;
    Some(String::from_utf8_lossy(&b).into_owned())
}

fn names(guest: &GuestTree, dir: &str) -> Vec<String> {
    guest
        .read_dir(dir.as_bytes())
        .map(|v| {
            v.into_iter()
                .map(|e| String::from_utf8_lossy(&e.name).into_owned())
                .filter(|n| n != "." && n != "..")
                .collect()
        })
        .unwrap_or_default()
}

/// Module files under `dir` (bounded walk): normalised name → guest path.
fn walk_modules(guest: &GuestTree, dir: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![(dir.to_string(), 0usize)];
    let mut seen = 0usize;
    while let Some((d, depth)) = todo.pop() {
        let Ok(entries) = guest.read_dir(d.as_bytes()) else {
            continue;
        };
        for e in entries {
            seen += 1;
            if seen > MAX_WALK_ENTRIES {
                return out;
            }
            let name = String::from_utf8_lossy(&e.name).into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let p = format!("{d}/{name}");
            match e.kind {
                FileKind::Dir if depth < MAX_WALK_DEPTH => todo.push((p, depth + 1)),
                FileKind::File => {
                    if let Some(m) = modules::module_of_path(&name) {
                        out.entry(m).or_insert(p);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The wanted modules that `modules.dep` (depmod's index, what modprobe loads from) lists and
/// that exist on disk: one file read and a few lookups instead of walking thousands of
/// entries. `None` when there is no readable `modules.dep`.
fn modules_from_dep(guest: &GuestTree, dir: &str) -> Option<BTreeMap<String, String>> {
    let dep = text(guest, &format!("{dir}/modules.dep"))?;
    let mut out = BTreeMap::new();
    for line in dep.lines() {
        let Some((path, _)) = line.split_once(':') else {
            continue;
        };
        let Some(name) = modules::module_of_path(path) else {
            continue;
        };
        if out.contains_key(&name) || !modules::WANTED.iter().any(|w| w.name == name) {
            continue;
        }
        let full = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{dir}/{path}")
        };
        if is_kind(guest, &full, FileKind::File) {
            out.insert(name, full);
        }
    }
    Some(out)
}

/// Kernel versions from `/boot/vmlinuz-*` (and `vmlinux-*`, `Image-*`), `/lib/modules/*` and
/// `/usr/lib/modules/*`.
fn versions(guest: &GuestTree) -> Vec<String> {
    let mut v = BTreeSet::new();
    for n in names(guest, "/boot") {
        for p in ["vmlinuz-", "vmlinux-", "Image-"] {
            if let Some(ver) = n.strip_prefix(p) {
                if !ver.is_empty() && !ver.contains("rescue") {
                    v.insert(ver.to_string());
                }
            }
        }
    }
    for d in ["/lib/modules", "/usr/lib/modules"] {
        for n in names(guest, d) {
            if is_kind(guest, &format!("{d}/{n}"), FileKind::Dir) {
                v.insert(n);
            }
        }
    }
    v.into_iter().take(MAX_KERNELS).collect()
}

/// What is left of [`MAX_INITRAMFS_TOTAL`] for the initramfs images of one guest.
#[derive(Debug, Clone, Copy)]
struct InitramfsBudget {
    read: u64,
    decompressed: u64,
}

impl InitramfsBudget {
    fn new() -> Self {
        InitramfsBudget {
            read: MAX_INITRAMFS_TOTAL,
            decompressed: MAX_INITRAMFS_TOTAL,
        }
    }

    /// Lists the initramfs at `p` within the budget, and charges what it cost.
    fn list(&mut self, guest: &GuestTree, p: String) -> Result<InitramfsFacts, String> {
        if self.read == 0 || self.decompressed == 0 {
            return Err(format!(
                "{p}: not examined: earlier initramfs images used this guest's budget of {MAX_INITRAMFS_TOTAL} bytes"
            ));
        }
        let data = guest
            .read_file(p.as_bytes(), MAX_INITRAMFS_FILE.min(self.read))
            .map_err(|e| format!("{p}: {e}"))?;
        self.read -= data.len() as u64;
        Ok(self.facts_of(p, &data))
    }

    /// The listing of an initramfs read as `data`, charged to the decompression budget.
    pub(crate) fn facts_of(&mut self, path: String, data: &[u8]) -> InitramfsFacts {
        let listing =
            initramfs::list_with_limit(data, initramfs::MAX_DECOMPRESSED.min(self.decompressed));
        self.decompressed = self.decompressed.saturating_sub(listing.decompressed);
        let modules = listing
            .members
            .iter()
            .filter_map(|m| modules::module_of_path(&m.name))
            .collect();
        InitramfsFacts {
            path,
            size: data.len() as u64,
            listing,
            modules,
        }
    }
}

/// The initramfs the boot menu starts kernel image `vmlinuz` (version `v`) with: from the
/// effective entry when it boots that image, else from any entry that does (a BLS entry's
/// `initrd`, a grub.cfg `initrd` line), as found in the guest. Of several initrds (microcode
/// first, RHEL's `$tuned_initrd` after) the one named with the version, else the last.
fn initrd_from_menu(cmdlines: &CommandLines, vmlinuz: &str, v: &str) -> Option<String> {
    let boots = |s: &&cmdline::CmdlineSource| {
        s.kernel.as_ref().and_then(|k| k.found.as_deref()) == Some(vmlinuz)
    };
    cmdlines
        .effective_source()
        .filter(boots)
        .into_iter()
        .chain(cmdlines.sources.iter().filter(boots))
        .find_map(|s| {
            let found: Vec<&String> = s.initrd.iter().filter_map(|i| i.found.as_ref()).collect();
            found
                .iter()
                .find(|p| p.rsplit('/').next().is_some_and(|n| n.contains(v)))
                .or(found.last())
                .map(|p| p.to_string())
        })
}

fn kernel(
    guest: &GuestTree,
    v: &str,
    budget: &mut InitramfsBudget,
    boot_ref: Option<&loader_kernels::BootRef>,
    cmdlines: &CommandLines,
) -> InstalledKernel {
    let boot = |names: &[String]| -> Option<String> {
        names
            .iter()
            .map(|n| format!("/boot/{n}"))
            .find(|p| is_kind(guest, p, FileKind::File))
    };
    let vmlinuz = boot(&[
        format!("vmlinuz-{v}"),
        format!("vmlinux-{v}"),
        format!("Image-{v}"),
    ]);
    // The boot loader's configuration names the kernel elsewhere (ESP, UKI).
    let vmlinuz = vmlinuz.or_else(|| boot_ref.map(|b| b.kernel.label()));
    let config = boot(&[format!("config-{v}")]);
    let system_map = boot(&[format!("System.map-{v}")]);
    let modules_dir = [format!("/lib/modules/{v}"), format!("/usr/lib/modules/{v}")]
        .into_iter()
        .find(|d| is_kind(guest, d, FileKind::Dir));
    let config = config.or_else(|| loader_kernels::modules_config(guest, modules_dir.as_ref()));
    let builtin = modules_dir
        .as_ref()
        .and_then(|d| text(guest, &format!("{d}/modules.builtin")))
        .map(|t| modules::parse_builtin(&t))
        .unwrap_or_default();
    let on_disk = modules_dir
        .as_ref()
        .map(|d| {
            modules_from_dep(guest, d)
                .unwrap_or_else(|| walk_modules(guest, &format!("{d}/kernel")))
        })
        .unwrap_or_default();
    let config_map = config
        .as_ref()
        .and_then(|c| text(guest, c))
        .map(|t| modules::parse_config(&t))
        .unwrap_or_default();
    let by_name = || {
        boot(&[
            format!("initrd.img-{v}"),
            format!("initramfs-{v}.img"),
            format!("initrd-{v}"),
            format!("initrd-{v}.img"),
        ])
    };
    // A menu entry's initrd when it is a file of the tree (a UKI's `.initrd` is a section,
    // read below through the loader's reference).
    let initrd_path = vmlinuz
        .as_deref()
        .and_then(|k| initrd_from_menu(cmdlines, k, v))
        .filter(|p| is_kind(guest, p, FileKind::File))
        .or_else(by_name);
    let mut initramfs_error = None;
    let from_loader = boot_ref.filter(|b| initrd_path.is_none() && !b.initrd.is_empty());
    let initramfs = match from_loader {
        Some(b) => budget.list_blobs(guest, &b.initrd).map_err(Some),
        None => initrd_path.map_or(Err(None), |p| budget.list(guest, p).map_err(Some)),
    }
    .map_err(|e| initramfs_error = e)
    .ok();
    let members: Vec<String> = initramfs
        .as_ref()
        .map(|i| i.listing.members.iter().map(|m| m.name.clone()).collect())
        .unwrap_or_default();
    let modules = modules::presence(&members, &builtin, &on_disk, &config_map);
    InstalledKernel {
        version: v.to_string(),
        vmlinuz,
        config,
        system_map,
        modules_dir,
        initramfs,
        initramfs_error,
        builtin,
        modules,
    }
}

fn files_in(guest: &GuestTree, dir: &str, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = names(guest, dir)
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    v.sort();
    v
}

/// Where a path written in a boot loader entry is found in the guest: as written, or under
/// `/boot` (grub paths are relative to the partition holding them, which may be `/boot`), or
/// on an ESP mounted at `/boot/efi` or `/efi`.
/// A `(hd0,gpt2)` device prefix is dropped; `$variables` are not resolved.
fn find_boot_file(guest: &GuestTree, p: &str) -> Option<String> {
    if p.is_empty() || p.contains('$') {
        return None;
    }
    let p = match p.find(')') {
        Some(i) if p.starts_with('(') => &p[i + 1..],
        _ => p,
    };
    let abs = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    };
    // Last, on an ESP: mkosi and similar keep the kernel, the initrd and grub.cfg there.
    [
        abs.clone(),
        format!("/boot{abs}"),
        format!("/boot/efi{abs}"),
        format!("/efi{abs}"),
    ]
    .into_iter()
    .find(|c| is_kind(guest, c, FileKind::File))
}

/// Gathers the kernel facts of a guest.
/// Every kernel command line the guest's boot configuration holds, effective one first (what
/// [`kernel_facts`] reports as `cmdlines`): cheap, for callers that need the command line
/// before the kernels and initramfs images are examined.
pub fn command_lines(guest: &GuestTree) -> CommandLines {
    command_lines_with(guest, &esp_kernel::gather(guest))
}

/// [`command_lines`] with the ESP/XBOOTLDR boot loader entries already gathered.
fn command_lines_with(guest: &GuestTree, loader: &esp_kernel::LoaderEntries) -> CommandLines {
    let mut c = cmdline::gather(&|p| text(guest, p), &|d| names(guest, d), &|p| {
        find_boot_file(guest, p)
    });
    esp_kernel::add_sources(loader, &mut c);
    c
}

pub fn kernel_facts(guest: &GuestTree) -> KernelFacts {
    let mut budget = InitramfsBudget::new();
    let loader = esp_kernel::gather(guest);
    let cmdlines = command_lines_with(guest, &loader);
    let refs = loader_kernels::boot_refs(guest, &loader, &cmdlines);
    let mut vs = versions(guest);
    for v in refs.keys() {
        if !vs.contains(v) && vs.len() < MAX_KERNELS {
            vs.push(v.clone());
        }
    }
    vs.sort();
    let kernels = vs
        .iter()
        .map(|v| kernel(guest, v, &mut budget, refs.get(v), &cmdlines))
        .collect();

    let mut blacklist = Vec::new();
    let mut seen = BTreeSet::new();
    for dir in ["/etc/modprobe.d", "/lib/modprobe.d", "/usr/lib/modprobe.d"] {
        for f in files_in(guest, dir, ".conf") {
            // /lib is often a link to /usr/lib: read each real file once.
            let real = guest.canonical(f.as_bytes()).unwrap_or_else(|_| f.clone());
            if !seen.insert(real) {
                continue;
            }
            if let Some(t) = text(guest, &f) {
                blacklist.extend(modules::parse_modprobe(&f, &t));
            }
        }
    }

    let mut builder = BuilderIntent::default();
    // dracut sources /etc/dracut.conf, then the *.conf of /usr/lib/dracut/dracut.conf.d and
    // /etc/dracut.conf.d sorted by name together, /etc's file winning a shared name
    // (dracut-functions.sh `dropindirs_sort`).
    let mut dracut = vec!["/etc/dracut.conf".to_string()];
    let mut dropins: BTreeMap<String, String> = BTreeMap::new();
    for dir in ["/usr/lib/dracut/dracut.conf.d", "/etc/dracut.conf.d"] {
        for f in files_in(guest, dir, ".conf") {
            let base = f.rsplit('/').next().unwrap_or("").to_string();
            dropins.insert(base, f);
        }
    }
    dracut.extend(dropins.into_values());
    for f in &dracut {
        if let Some(t) = text(guest, f) {
            modules::parse_dracut(f, &t, &mut builder);
        }
    }
    let itm = "/etc/initramfs-tools/modules";
    if let Some(t) = text(guest, itm) {
        builder.initramfs_tools_modules = modules::parse_itools_modules(itm, &t);
    }
    let mut itools = vec!["/etc/initramfs-tools/initramfs.conf".to_string()];
    itools.extend(files_in(guest, "/etc/initramfs-tools/conf.d", ""));
    for f in &itools {
        if let Some(p) = text(guest, f).and_then(|t| modules::parse_itools_policy(f, &t)) {
            builder.initramfs_tools_policy = Some(p);
        }
    }

    if let Some(src) = cmdlines.effective_source() {
        for key in ["modprobe.blacklist", "module_blacklist"] {
            for v in src.cmdline.value(key) {
                for m in v.split(',').filter(|m| !m.is_empty()) {
                    blacklist.push(Blacklisting {
                        module: modules::normalize(m),
                        kind: modules::BlacklistKind::Cmdline,
                        file: src.file.clone(),
                        line: src.line,
                        text: format!("{key}={v}"),
                    });
                }
            }
        }
    }

    KernelFacts {
        kernels,
        blacklist,
        builder,
        cmdlines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::memfs::MemFs;
    use std::sync::Arc;

    const V: &str = "6.1.0-1-cloud-amd64";

    #[test]
    fn facts_from_a_small_tree() {
        let fs = MemFs::default()
            .dir("/")
            .dir("/boot")
            .file(&format!("/boot/vmlinuz-{V}"), "k")
            .file(
                &format!("/boot/config-{V}"),
                "CONFIG_HYPERV=y\nCONFIG_UDF_FS=m\n",
            )
            .file(&format!("/boot/initrd.img-{V}"), "garbage")
            .dir("/boot/grub")
            .file(
                "/boot/grub/grub.cfg",
                &format!(
                    "menuentry 'D' {{\n linux /boot/vmlinuz-{V} root=/dev/sda1 modprobe.blacklist=udf,floppy\n initrd /boot/initrd.img-{V}\n}}\n"
                ),
            )
            .dir("/usr")
            .dir("/usr/lib")
            .dir("/usr/lib/modules")
            .dir(&format!("/usr/lib/modules/{V}"))
            .file(
                &format!("/usr/lib/modules/{V}/modules.builtin"),
                "kernel/drivers/hv/hv_vmbus.ko\n",
            )
            .dir(&format!("/usr/lib/modules/{V}/kernel"))
            .dir(&format!("/usr/lib/modules/{V}/kernel/fs"))
            .file(&format!("/usr/lib/modules/{V}/kernel/fs/udf.ko.xz"), "")
            .link("/lib", "usr/lib")
            .dir("/etc")
            .dir("/etc/modprobe.d")
            .file("/etc/modprobe.d/cis.conf", "install vfat /bin/true\n")
            .dir("/etc/initramfs-tools")
            .file("/etc/initramfs-tools/modules", "hv_vmbus\n")
            .file("/etc/initramfs-tools/initramfs.conf", "MODULES=dep\n");
        let g = GuestTree::new(Arc::new(fs), "mem");
        let f = kernel_facts(&g);
        assert_eq!(f.kernels.len(), 1);
        let k = &f.kernels[0];
        assert_eq!(
            k.modules_dir.as_deref(),
            Some(format!("/lib/modules/{V}").as_str())
        );
        assert!(k.initramfs.as_ref().unwrap().listing.error.is_some());
        assert!(k.module("hv-vmbus").unwrap().builtin);
        assert!(k
            .module("udf")
            .unwrap()
            .on_disk
            .as_ref()
            .unwrap()
            .ends_with("udf.ko.xz"));
        assert_eq!(f.blacklisted("vfat")[0].line, 1);
        assert_eq!(
            f.blacklisted("udf")[0].kind,
            modules::BlacklistKind::Cmdline
        );
        assert!(f.builder.adds("hv_vmbus"));
        assert_eq!(
            f.builder.initramfs_tools_policy.as_ref().unwrap().value,
            "dep"
        );
        let eff = f.cmdlines.effective_source().unwrap();
        assert_eq!(
            eff.root.as_ref().unwrap().kind,
            cmdline::RootRefKind::DeviceName
        );
        assert!(eff.kernel.as_ref().unwrap().found.is_some());
        assert_eq!(
            eff.initrd[0].found.as_deref(),
            Some(format!("/boot/initrd.img-{V}").as_str())
        );
        serde_json::to_string(&f).unwrap();
    }

    #[test]
    fn the_initramfs_is_the_one_the_boot_entry_names() {
        // RHEL with a separate /boot: the BLS entry's paths are relative to it, and it names
        // an initramfs that the file name convention would not find.
        let fs = MemFs::default()
            .dir("/")
            .dir("/boot")
            .file(&format!("/boot/vmlinuz-{V}"), "k")
            .file("/boot/custom-initrd.img", "not an initramfs")
            .file(&format!("/boot/initramfs-{V}.img"), "also garbage, but another")
            .dir("/boot/loader")
            .dir("/boot/loader/entries")
            .file(
                &format!("/boot/loader/entries/m-{V}.conf"),
                &format!("title T\nversion {V}\nlinux /vmlinuz-{V}\ninitrd /ucode.img /custom-initrd.img\noptions root=/dev/sda2\n"),
            )
            .file("/boot/ucode.img", "u");
        let g = GuestTree::new(Arc::new(fs), "mem");
        let f = kernel_facts(&g);
        let k = &f.kernels[0];
        // garbage content: listed with an error, but the path is the entry's
        let path = k
            .initramfs
            .as_ref()
            .map(|i| i.path.clone())
            .or(k.initramfs_error.clone())
            .unwrap();
        assert!(path.contains("/boot/custom-initrd.img"), "{path}");
    }

    #[test]
    fn dracut_drop_ins_merge_by_name_etc_winning() {
        // RHEL ships defaults in /usr/lib/dracut/dracut.conf.d; /etc overrides a same-named
        // file, and all are sourced in name order after /etc/dracut.conf.
        let fs = MemFs::default()
            .dir("/")
            .dir("/etc")
            .file("/etc/dracut.conf", "hostonly=\"no\"\n")
            .dir("/etc/dracut.conf.d")
            .file("/etc/dracut.conf.d/01-dist.conf", "compress=\"xz\"\n")
            .file(
                "/etc/dracut.conf.d/50-azure.conf",
                "add_drivers+=\" hv_vmbus hv_netvsc hv_storvsc \"\n",
            )
            .dir("/usr")
            .dir("/usr/lib")
            .dir("/usr/lib/dracut")
            .dir("/usr/lib/dracut/dracut.conf.d")
            .file(
                "/usr/lib/dracut/dracut.conf.d/01-dist.conf",
                "compress=\"zstd\"\nhostonly=\"yes\"\n",
            )
            .file(
                "/usr/lib/dracut/dracut.conf.d/02-rescue.conf",
                "hostonly=\"yes\"\n",
            )
            .file(
                "/usr/lib/dracut/dracut.conf.d/90-late.conf",
                "add_drivers=\" nvme \"\n",
            );
        let g = GuestTree::new(Arc::new(fs), "mem");
        let b = kernel_facts(&g).builder;
        // /etc/01-dist.conf replaced /usr/lib's (its hostonly=yes never read)...
        assert_eq!(b.dracut_compress.as_ref().unwrap().value, "xz");
        // ...but 02-rescue.conf from /usr/lib is sourced after /etc/dracut.conf
        let h = b.dracut_hostonly.as_ref().unwrap();
        assert_eq!(
            (h.value.as_str(), h.file.as_str()),
            ("yes", "/usr/lib/dracut/dracut.conf.d/02-rescue.conf")
        );
        // 90-late.conf comes after 50-azure.conf and replaces its add_drivers
        assert!(b.adds("nvme") && !b.adds("hv_storvsc"));
    }

    #[test]
    fn initramfs_budget_is_shared_by_all_kernels_of_a_guest() {
        let data = vec![b'a'; 600 << 10];
        let archive = cpio::tests::newc(&[("usr/lib/modules/x/hv_vmbus.ko", &data)]);
        let archive = String::from_utf8(archive).unwrap();
        let mut fs = MemFs::default().dir("/").dir("/boot");
        for k in ["1", "2", "3"] {
            fs = fs
                .file(&format!("/boot/vmlinuz-{k}"), "k")
                .file(&format!("/boot/initrd.img-{k}"), &archive);
        }
        let g = GuestTree::new(Arc::new(fs), "mem");
        let mut budget = InitramfsBudget {
            read: 4 << 20,
            decompressed: 1 << 20,
        };
        let first = kernel(&g, "1", &mut budget, None, &CommandLines::default());
        let listing = &first.initramfs.as_ref().unwrap().listing;
        assert!(listing.error.is_none() && listing.member_count == 1);
        let second = kernel(&g, "2", &mut budget, None, &CommandLines::default());
        let listing = &second.initramfs.as_ref().unwrap().listing;
        assert_eq!(
            listing.error.as_deref(),
            Some("decompressed size limit reached")
        );
        let third = kernel(&g, "3", &mut budget, None, &CommandLines::default());
        assert!(third.initramfs.is_none());
        assert!(
            third
                .initramfs_error
                .as_ref()
                .unwrap()
                .contains("not examined"),
            "{:?}",
            third.initramfs_error
        );
        assert_eq!(budget.decompressed, 0);
    }

    #[test]
    fn empty_tree() {
        let g = GuestTree::new(Arc::new(MemFs::default().dir("/")), "mem");
        let f = kernel_facts(&g);
        assert!(f.kernels.is_empty() && f.cmdlines.effective.is_none());
    }
}
