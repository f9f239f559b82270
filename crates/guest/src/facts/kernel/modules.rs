//! Kernel modules the Azure rules ask about (KRN-001..007), where each is found, modprobe
//! blacklists, and what the initramfs builder (dracut, initramfs-tools) was told to include.

use super::cmdline::{shell_assignments, shell_value};
use serde::Serialize;
use std::collections::BTreeMap;

/// A module the rules care about and the Kconfig options that provide it (first set wins).
pub struct Wanted {
    /// Module name (underscores).
    pub name: &'static str,
    /// Kconfig options.
    pub kconfig: &'static [&'static str],
}

const fn w(name: &'static str, kconfig: &'static [&'static str]) -> Wanted {
    Wanted { name, kconfig }
}

/// The modules looked for, with their Kconfig names.
pub const WANTED: &[Wanted] = &[
    w("hv_vmbus", &["CONFIG_HYPERV_VMBUS", "CONFIG_HYPERV"]),
    w("hv_storvsc", &["CONFIG_HYPERV_STORAGE"]),
    w("hv_netvsc", &["CONFIG_HYPERV_NET"]),
    w("hv_utils", &["CONFIG_HYPERV_UTILS"]),
    w("hv_balloon", &["CONFIG_HYPERV_BALLOON"]),
    w("hyperv_keyboard", &["CONFIG_HYPERV_KEYBOARD"]),
    w("hid_hyperv", &["CONFIG_HID_HYPERV_MOUSE"]),
    w("hyperv_fb", &["CONFIG_FB_HYPERV"]),
    w("hyperv_drm", &["CONFIG_DRM_HYPERV"]),
    w("pci_hyperv", &["CONFIG_PCI_HYPERV"]),
    w("nvme", &["CONFIG_BLK_DEV_NVME"]),
    w("nvme_core", &["CONFIG_NVME_CORE"]),
    w("udf", &["CONFIG_UDF_FS"]),
    w("vfat", &["CONFIG_VFAT_FS"]),
    w("mlx4_en", &["CONFIG_MLX4_EN"]),
    w("mlx4_core", &["CONFIG_MLX4_CORE"]),
    w("mlx5_core", &["CONFIG_MLX5_CORE"]),
    w("mana", &["CONFIG_MICROSOFT_MANA"]),
];

/// A module name with `-` folded to `_` (modprobe treats them as equal).
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a path ending in `.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz`.
pub fn module_of_path(path: &str) -> Option<String> {
    let base = path.rsplit('/').next()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|s| base.strip_suffix(s))?;
    (!stem.is_empty()).then(|| normalize(stem))
}

/// A `CONFIG_X=y|m` setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigSetting {
    /// Option name.
    pub option: String,
    /// `y` or `m`.
    pub value: String,
    /// 1-based line in the config file.
    pub line: usize,
}

/// Where one wanted module was found for one kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModulePresence {
    /// Module name.
    pub name: String,
    /// Initramfs member holding it.
    pub in_initramfs: Option<String>,
    /// Listed in `modules.builtin`.
    pub builtin: bool,
    /// Guest path of the module file under `/lib/modules/<v>/kernel`.
    pub on_disk: Option<String>,
    /// The Kconfig setting that provides it.
    pub config: Option<ConfigSetting>,
}

impl ModulePresence {
    /// Available to the booted kernel at all (built in, a module file, or in the initramfs).
    pub fn available(&self) -> bool {
        self.builtin || self.on_disk.is_some() || self.in_initramfs.is_some()
    }
    /// Usable before the root is mounted (built in, `=y`, or in the initramfs).
    pub fn early(&self) -> bool {
        self.builtin
            || self.in_initramfs.is_some()
            || self.config.as_ref().is_some_and(|c| c.value == "y")
    }
}

/// `CONFIG_*=y|m` settings of a kernel config file: option → (value, line).
pub fn parse_config(text: &str) -> BTreeMap<String, (String, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(n, l)| {
            let (k, v) = l.trim().split_once('=')?;
            (k.starts_with("CONFIG_") && (v == "y" || v == "m"))
                .then(|| (k.to_string(), (v.to_string(), n + 1)))
        })
        .collect()
}

/// Module names of `modules.builtin` (`kernel/fs/vfat/vfat.ko` lines).
pub fn parse_builtin(text: &str) -> Vec<String> {
    text.lines().filter_map(module_of_path).collect()
}

/// Evaluates the wanted modules for one kernel.
pub fn presence(
    initramfs_members: &[String],
    builtin: &[String],
    on_disk: &BTreeMap<String, String>,
    config: &BTreeMap<String, (String, usize)>,
) -> Vec<ModulePresence> {
    let mut in_initrd: BTreeMap<String, &String> = BTreeMap::new();
    for m in initramfs_members {
        if let Some(name) = module_of_path(m) {
            in_initrd.entry(name).or_insert(m);
        }
    }
    WANTED
        .iter()
        .map(|w| ModulePresence {
            name: w.name.to_string(),
            in_initramfs: in_initrd.get(w.name).map(|s| s.to_string()),
            builtin: builtin.iter().any(|b| b == w.name),
            on_disk: on_disk.get(w.name).cloned(),
            config: w.kconfig.iter().find_map(|k| {
                config.get(*k).map(|(v, line)| ConfigSetting {
                    option: k.to_string(),
                    value: v.clone(),
                    line: *line,
                })
            }),
        })
        .collect()
}

/// How a module is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlacklistKind {
    /// `blacklist X` (stops alias autoloading only).
    Blacklist,
    /// `install X /bin/true` or `/bin/false` (stops loading entirely).
    InstallNoop,
    /// `modprobe.blacklist=` / `module_blacklist=` on the effective command line.
    Cmdline,
}

/// One blacklisting, with evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blacklisting {
    /// Module (normalised).
    pub module: String,
    /// How.
    pub kind: BlacklistKind,
    /// Guest file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The line (or argument).
    pub text: String,
}

const NOOPS: &[&str] = &[
    "/bin/true",
    "/bin/false",
    "/usr/bin/true",
    "/usr/bin/false",
    "true",
    "false",
];

/// `blacklist`/`install X /bin/true` lines of one modprobe.d file.
pub fn parse_modprobe(file: &str, text: &str) -> Vec<Blacklisting> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        let words: Vec<&str> = t.split_whitespace().collect();
        let kind = match words.as_slice() {
            ["blacklist", _, ..] => BlacklistKind::Blacklist,
            ["install", _, cmd, ..] if NOOPS.contains(cmd) => BlacklistKind::InstallNoop,
            _ => continue,
        };
        out.push(Blacklisting {
            module: normalize(words[1]),
            kind,
            file: file.to_string(),
            line: n + 1,
            text: t.to_string(),
        });
    }
    out
}

/// A value from a configuration file, with its file and line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The value.
    pub value: String,
    /// Guest file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

/// What the initramfs builder was told.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuilderIntent {
    /// dracut `add_drivers` modules (normalised).
    pub dracut_add_drivers: Vec<Setting>,
    /// dracut `force_drivers` modules (normalised): added and loaded early.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dracut_force_drivers: Vec<Setting>,
    /// dracut `hostonly` (last assignment wins).
    pub dracut_hostonly: Option<Setting>,
    /// dracut `omit_drivers` modules (normalised); dracut keeps any also in `add_drivers`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dracut_omit_drivers: Vec<Setting>,
    /// dracut `compress` (`zstd`, `xz`, `gzip`, ...; last assignment wins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dracut_compress: Option<Setting>,
    /// dracut `hostonly_cmdline` (last assignment wins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dracut_hostonly_cmdline: Option<Setting>,
    /// `/etc/initramfs-tools/modules` entries (normalised).
    pub initramfs_tools_modules: Vec<Setting>,
    /// initramfs-tools `MODULES=` (most, dep, netboot, list); conf.d overrides.
    pub initramfs_tools_policy: Option<Setting>,
}

impl BuilderIntent {
    /// True when dracut or initramfs-tools was told to add `module`.
    pub fn adds(&self, module: &str) -> bool {
        let m = normalize(module);
        self.dracut_add_drivers
            .iter()
            .chain(&self.dracut_force_drivers)
            .chain(&self.initramfs_tools_modules)
            .any(|s| s.value == m)
    }
}

/// Reads one dracut configuration file into `intent` (files are bash sourced in order, so
/// `add_drivers="..."` without `+=` replaces what earlier files added; `force_drivers` too).
pub fn parse_dracut(file: &str, text: &str, intent: &mut BuilderIntent) {
    let vars = BTreeMap::new();
    for (line, key, value) in shell_assignments(text) {
        let name = key.trim_end_matches('+');
        let append = key.ends_with('+');
        let v = shell_value(&value, &vars);
        if !append {
            match name {
                "add_drivers" => intent.dracut_add_drivers.clear(),
                "force_drivers" => intent.dracut_force_drivers.clear(),
                "omit_drivers" => intent.dracut_omit_drivers.clear(),
                _ => {}
            }
        }
        let at = |value: String| Setting {
            value,
            file: file.to_string(),
            line,
        };
        match name {
            "add_drivers" | "force_drivers" => {
                let list = if name == "add_drivers" {
                    &mut intent.dracut_add_drivers
                } else {
                    &mut intent.dracut_force_drivers
                };
                for m in v.split_whitespace() {
                    list.push(at(normalize(m)));
                }
            }
            "hostonly" => intent.dracut_hostonly = Some(at(v)),
            "omit_drivers" => {
                for m in v.split_whitespace() {
                    intent.dracut_omit_drivers.push(at(normalize(m)));
                }
            }
            "compress" => intent.dracut_compress = Some(at(v)),
            "hostonly_cmdline" => intent.dracut_hostonly_cmdline = Some(at(v)),
            _ => {}
        }
    }
}

/// Reads `/etc/initramfs-tools/modules` (one module per line, options after it).
pub fn parse_itools_modules(file: &str, text: &str) -> Vec<Setting> {
    text.lines()
        .enumerate()
        .filter_map(|(n, l)| {
            let w = l.split_whitespace().next()?;
            (!w.starts_with('#')).then(|| Setting {
                value: normalize(w),
                file: file.to_string(),
                line: n + 1,
            })
        })
        .collect()
}

/// The last `MODULES=` of an initramfs-tools config file.
pub fn parse_itools_policy(file: &str, text: &str) -> Option<Setting> {
    shell_assignments(text)
        .into_iter()
        .rfind(|(_, k, _)| k == "MODULES")
        .map(|(line, _, v)| Setting {
            value: shell_value(&v, &BTreeMap::new()),
            file: file.to_string(),
            line,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        let m = |p: &str| module_of_path(p);
        assert_eq!(
            m("usr/lib/modules/6.1/kernel/drivers/hv/hv_vmbus.ko").as_deref(),
            Some("hv_vmbus")
        );
        assert_eq!(m("x/pci-hyperv.ko.xz").as_deref(), Some("pci_hyperv"));
        assert_eq!(m("x/nvme.ko.zst").as_deref(), Some("nvme"));
        assert_eq!(m("x/udf.ko.gz").as_deref(), Some("udf"));
        assert_eq!(m("x/udf.txt"), None);
        assert_eq!(m(".ko"), None);
    }

    #[test]
    fn presence_from_all_sources() {
        let members = vec!["usr/lib/modules/6.1/kernel/drivers/hv/hv-storvsc.ko".to_string()];
        let builtin = parse_builtin("kernel/drivers/hv/hv_vmbus.ko\nkernel/fs/vfat/vfat.ko\n");
        let mut disk = BTreeMap::new();
        disk.insert(
            "udf".to_string(),
            "/lib/modules/6.1/kernel/fs/udf.ko".to_string(),
        );
        let config = parse_config(
            "# c\nCONFIG_HYPERV=y\nCONFIG_HYPERV_STORAGE=m\n# CONFIG_UDF_FS is not set\nCONFIG_X=n\n",
        );
        let p = presence(&members, &builtin, &disk, &config);
        let get = |n: &str| p.iter().find(|m| m.name == n).unwrap();
        assert!(get("hv_vmbus").builtin && get("hv_vmbus").early());
        assert_eq!(
            get("hv_vmbus").config.as_ref().unwrap().option,
            "CONFIG_HYPERV"
        );
        assert_eq!(
            get("hv_storvsc").in_initramfs.as_deref(),
            Some(members[0].as_str())
        );
        assert_eq!(get("hv_storvsc").config.as_ref().unwrap().line, 3);
        assert!(get("udf").available() && !get("udf").early());
        assert!(get("udf").config.is_none());
        assert!(!get("mana").available());
    }

    #[test]
    fn blacklists() {
        let b = parse_modprobe(
            "/etc/modprobe.d/cis.conf",
            "# x\ninstall udf /bin/true\nblacklist floppy\n\
             install vfat /sbin/modprobe --ignore-install vfat\nblacklist\n\
             install hv-netvsc /usr/bin/false\n",
        );
        assert_eq!(b.len(), 3);
        assert_eq!(
            (b[0].module.as_str(), b[0].kind, b[0].line),
            ("udf", BlacklistKind::InstallNoop, 2)
        );
        assert_eq!(b[1].kind, BlacklistKind::Blacklist);
        assert_eq!(b[2].module, "hv_netvsc");
    }

    #[test]
    fn builder_intent() {
        let mut i = BuilderIntent::default();
        parse_dracut(
            "/etc/dracut.conf.d/azure.conf",
            "add_drivers+=\" hv_vmbus hv_netvsc hv_storvsc \"\nhostonly=\"yes\"\n",
            &mut i,
        );
        assert_eq!(i.dracut_add_drivers.len(), 3);
        assert!(i.adds("hv-netvsc"));
        assert_eq!(i.dracut_hostonly.as_ref().unwrap().value, "yes");
        // a later file sourced after it: `=` replaces, `+=` appends, force/omit/compress kept
        parse_dracut(
            "/etc/dracut.conf.d/99-local.conf",
            "add_drivers=\"nvme\"\nforce_drivers+=\" hv_storvsc \"\nomit_drivers+=\" floppy \"\ncompress=\"zstd\"\nhostonly_cmdline=no\n",
            &mut i,
        );
        assert_eq!(
            i.dracut_add_drivers
                .iter()
                .map(|s| s.value.as_str())
                .collect::<Vec<_>>(),
            ["nvme"]
        );
        assert!(i.adds("hv_storvsc") && !i.adds("hv_netvsc"));
        assert_eq!(i.dracut_omit_drivers[0].value, "floppy");
        assert_eq!(i.dracut_compress.as_ref().unwrap().value, "zstd");
        assert_eq!(i.dracut_hostonly_cmdline.as_ref().unwrap().line, 5);
        let m = parse_itools_modules("f", "# c\nhv_vmbus\nnvme  opt=1\n\n");
        assert_eq!(
            m.iter()
                .map(|s| (s.value.as_str(), s.line))
                .collect::<Vec<_>>(),
            [("hv_vmbus", 2), ("nvme", 3)]
        );
        assert_eq!(
            parse_itools_policy("f", "MODULES=most\nMODULES=dep\n")
                .unwrap()
                .value,
            "dep"
        );
        assert!(parse_itools_policy("f", "# MODULES=most\n").is_none());
    }
}
