//! Fuzz targets: the guest's text parsers (configuration files read from the image).
//!
//! Parsers that take a string are called directly. Those only reachable through a gatherer
//! that reads a [`GuestTree`] get an in-memory guest ([`MemoryFs`]) holding the input: one
//! input carries several files, split at [`FILE_SEPARATOR`], placed at the target's guest
//! paths in order (a missing chunk is a missing file; an empty chunk an empty file).

use crate::Target;
use std::collections::BTreeSet;
use std::sync::Arc;
use vhdprep_guest::facts::agents::{cloud_init, waagent};
use vhdprep_guest::facts::kernel::{self, cmdline};
use vhdprep_guest::facts::system::{network, runtime, selinux, ssh, users};
use vhdprep_guest::packages::{dpkg, Packages};
use vhdprep_guest::tree::memory::MemoryFs;
use vhdprep_guest::{fstab, os_release, Family, GuestTree};

/// The text targets.
pub const TARGETS: &[Target] = &[
    Target {
        name: "fstab",
        about: "/etc/fstab lines and device references: fstab::parse, device_ref, split_dm_name",
        run: fstab,
    },
    Target {
        name: "os_release",
        about: "/etc/os-release shell-like assignments: os_release::parse",
        run: os_release,
    },
    Target {
        name: "waagent_conf",
        about: "/etc/waagent.conf as the agent reads it, and the settings derived from it",
        run: waagent_conf,
    },
    Target {
        name: "cloud_init",
        about: "cloud.cfg + cloud.cfg.d/*.cfg YAML (guarded loader, merge, ds-identify view)",
        run: cloud_init,
    },
    Target {
        name: "grub_cfg",
        about: "generated and ESP grub.cfg files through cmdline::gather (entries, default, redirects)",
        run: grub_cfg,
    },
    Target {
        name: "bls_entry",
        about: "Boot Loader Specification Type #1 entries (bls_entry::parse, menu order, UAPI version_cmp) and systemd-boot's loader.conf default glob",
        run: bls_entry,
    },
    Target {
        name: "bls",
        about: "/boot/loader/entries/*.conf BLS entries with grubenv kernelopts/saved_entry",
        run: bls,
    },
    Target {
        name: "kernel_cmdline",
        about: "/etc/default/grub(.d) shell assignments and expansion, /etc/kernel/cmdline, menu.lst, BSD loaders",
        run: kernel_cmdline,
    },
    Target {
        name: "kernel_modules",
        about: "modprobe.d, dracut, initramfs-tools config, modules.dep/builtin and kernel config via kernel_facts",
        run: kernel_modules,
    },
    Target {
        name: "network_config",
        about: "netplan YAML, ifupdown, NetworkManager keyfiles, systemd-networkd, ifcfg, /etc/sysconfig/network via network::gather",
        run: network_config,
    },
    Target {
        name: "system_config",
        about: "sshd_config (+ Include), passwd, shadow, sudoers, dpkg status, /etc/selinux/config via the system and agent gatherers",
        run: system_config,
    },
];

/// Separates the files of one input: ASCII RS (record separator), which real configuration
/// text does not contain and a mutator inserts easily.
pub const FILE_SEPARATOR: u8 = 0x1e;

/// Splits `data` at [`FILE_SEPARATOR`] into (path, content) pairs, one per path at most.
fn files<'a>(paths: &[&'a str], data: &'a [u8]) -> Vec<(&'a str, &'a [u8])> {
    paths
        .iter()
        .copied()
        .zip(data.split(|&b| b == FILE_SEPARATOR))
        .collect()
}

/// An in-memory guest holding `files` (their parent directories created) and `dirs`.
pub fn guest(files: &[(&str, &[u8])], dirs: &[&str]) -> GuestTree {
    let mut parents = BTreeSet::new();
    for p in files.iter().map(|f| f.0).chain(dirs.iter().copied()) {
        let mut at = 0;
        while let Some(i) = p[at + 1..].find('/') {
            at += i + 1;
            parents.insert(&p[..at]);
        }
    }
    let mut fs = MemoryFs::default().dir("/");
    for d in parents.iter().chain(dirs) {
        fs = fs.dir(d);
    }
    for (p, content) in files {
        fs = fs.file_bytes(p, content);
    }
    GuestTree::new(Arc::new(fs), "fuzz")
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// One fstab; each entry's spec classified.
pub fn fstab(data: &[u8]) {
    for e in fstab::parse(&text(data)) {
        let _ = fstab::device_ref(&e.spec);
        let _ = fstab::split_dm_name(e.spec.trim_start_matches("/dev/mapper/"));
        let _ = (e.option("subvol"), e.has_option("nofail"), e.is_swap());
    }
}

/// One os-release file.
pub fn os_release(data: &[u8]) {
    let _ = os_release::parse(&text(data));
}

/// One waagent.conf, parsed directly and through the gatherer (with a version.py).
pub fn waagent_conf(data: &[u8]) {
    let conf = waagent::WaagentConf::parse("/etc/waagent.conf", &text(data));
    let _ = waagent::WaagentSettings::of(&conf);
    let _ = conf.get_int("ResourceDisk.SwapSizeMB", 0);
    let g = guest(&[("/etc/waagent.conf", data)], &[]);
    let _ = waagent::waagent_facts(&g, &Packages::default());
}

/// cloud.cfg, then cloud.cfg.d files (lexical order: the later ones win).
pub fn cloud_init(data: &[u8]) {
    const PATHS: &[&str] = &[
        "/etc/cloud/cloud.cfg",
        "/etc/cloud/cloud.cfg.d/05_logging.cfg",
        "/etc/cloud/cloud.cfg.d/90_dpkg.cfg",
        "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg",
        "/etc/cloud/cloud.cfg.d/99-installer.cfg",
    ];
    let g = guest(&files(PATHS, data), &[]);
    let cfg = cloud_init::cloud_config(&g);
    let _ = cfg.allows_azure();
}

/// A reader of `g` for [`cmdline::gather`], as `kernel_facts` builds it.
fn gather_cmdlines(g: &GuestTree) -> cmdline::CommandLines {
    let c = kernel::command_lines(g);
    let _ = c.effective_source();
    c
}

/// The generated grub.cfg, a grub2 one and an ESP one (a redirect, usually).
pub fn grub_cfg(data: &[u8]) {
    const PATHS: &[&str] = &[
        "/boot/grub/grub.cfg",
        "/boot/efi/EFI/debian/grub.cfg",
        "/boot/grub2/grub.cfg",
    ];
    let files = files(PATHS, data);
    let g = guest(&files, &["/boot/vmlinuz-6.1.0-28-cloud-amd64"]);
    let _ = gather_cmdlines(&g);
    // The parser alone, with an `exists` that finds every other path.
    if let Some((path, content)) = files.first() {
        let flip = std::cell::Cell::new(false);
        let exists = |p: &str| {
            flip.set(!flip.get());
            flip.get().then(|| p.to_string())
        };
        let _ = cmdline::parse_grub_cfg(path, &text(content), &exists);
    }
}

/// grubenv, then BLS entries (newest first, as blscfg sorts).
pub fn bls(data: &[u8]) {
    const PATHS: &[&str] = &[
        "/boot/grub2/grubenv",
        "/boot/loader/entries/a-6.1.0-1.conf",
        "/boot/loader/entries/a-6.1.0-2.conf",
        "/boot/loader/entries/a-0-rescue.conf",
    ];
    let g = guest(&files(PATHS, data), &["/boot/vmlinuz-6.1.0-2"]);
    let _ = gather_cmdlines(&g);
}

/// Two Type #1 entries (the input split at its first NUL), their menu order and versions, and
/// the input read as `loader.conf` whose `default` glob is matched against both ids.
pub fn bls_entry(data: &[u8]) {
    use vhdprep_guest::facts::boot::{bls_entry, systemd_boot};
    let (a, b) = match data.iter().position(|&c| c == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let name = String::from_utf8_lossy(&a[..a.len().min(64)]).replace('/', "_");
    let ea = bls_entry::parse(&format!("{name}.conf"), a);
    let eb = bls_entry::parse("b+1-2.conf", b);
    assert!(
        ea.initrd.len() <= bls_entry::MAX_REPEATS && ea.options.len() <= bls_entry::MAX_REPEATS
    );
    let o = bls_entry::compare(&ea.sort_fields(), &eb.sort_fields());
    assert_eq!(
        o.reverse(),
        bls_entry::compare(&eb.sort_fields(), &ea.sort_fields())
    );
    let (va, vb) = (ea.version.as_deref(), eb.version.as_deref());
    assert_eq!(
        bls_entry::version_cmp(va, vb).reverse(),
        bls_entry::version_cmp(vb, va)
    );
    assert_eq!(bls_entry::version_cmp(va, va), std::cmp::Ordering::Equal);
    let _ = ea.cmdline();
    let conf = systemd_boot::parse_loader_conf(data);
    let _ = systemd_boot::default_index(Some(&conf), &[ea.id.as_str(), eb.id.as_str()]);
}

/// `/etc/default/grub` and a `grub.d` drop-in, `/etc/kernel/cmdline`, legacy `menu.lst`,
/// FreeBSD `loader.conf`; the effective line parsed as the kernel would.
pub fn kernel_cmdline(data: &[u8]) {
    const PATHS: &[&str] = &[
        "/etc/default/grub",
        "/etc/default/grub.d/50-cloudimg-settings.cfg",
        "/etc/kernel/cmdline",
        "/boot/grub/menu.lst",
        "/boot/loader.conf",
    ];
    let files = files(PATHS, data);
    let g = guest(&files, &[]);
    let c = gather_cmdlines(&g);
    if let Some(e) = &c.effective {
        let _ = (e.has("console"), e.value("root"));
    }
    if let Some((_, first)) = files.first() {
        let t = text(first);
        let vars = Default::default();
        for (_, _, value) in cmdline::shell_assignments(&t) {
            let v = cmdline::shell_value(&value, &vars);
            let line = cmdline::Cmdline::parse(&v);
            for r in line.value("root") {
                let _ = cmdline::root_ref_kind(r);
            }
        }
    }
}

/// Where the `kernel_modules` target puts its files.
const KERNEL_MODULES_PATHS: [&str; 10] = [
    "/etc/modprobe.d/blacklist.conf",
    "/lib/modprobe.d/aliases.conf",
    "/etc/dracut.conf",
    "/etc/dracut.conf.d/azure.conf",
    "/etc/initramfs-tools/modules",
    "/etc/initramfs-tools/initramfs.conf",
    "/etc/initramfs-tools/conf.d/driver-policy",
    "/lib/modules/6.1.0-28-cloud-amd64/modules.dep",
    "/lib/modules/6.1.0-28-cloud-amd64/modules.builtin",
    "/boot/config-6.1.0-28-cloud-amd64",
];

/// modprobe.d, dracut and initramfs-tools configuration, and one kernel's modules.dep,
/// modules.builtin and config, all through `kernel_facts`.
pub fn kernel_modules(data: &[u8]) {
    const V: &str = "6.1.0-28-cloud-amd64";
    let mut files = files(&KERNEL_MODULES_PATHS, data);
    // modules.dep names files that must exist to count.
    let ko = "/lib/modules/6.1.0-28-cloud-amd64/kernel/drivers/hv/hv_vmbus.ko";
    files.push((ko, b""));
    let g = guest(&files, &[&format!("/lib/modules/{V}/kernel")]);
    let facts = kernel::kernel_facts(&g);
    let _ = facts.blacklisted("hv_vmbus");
    for k in &facts.kernels {
        let _ = k.module("hv_netvsc");
    }
}

/// Where the `network_config` target puts its files.
const NETWORK_PATHS: [&str; 10] = [
    "/etc/netplan/50-cloud-init.yaml",
    "/etc/network/interfaces",
    "/etc/network/interfaces.d/eth0",
    "/etc/NetworkManager/system-connections/eth0.nmconnection",
    "/etc/NetworkManager/conf.d/99-azure-unmanaged-devices.conf",
    "/etc/systemd/network/10-eth0.network",
    "/etc/sysconfig/network-scripts/ifcfg-eth0",
    "/etc/rc.conf",
    "/etc/iptables/rules.v4",
    "/etc/sysconfig/network",
];

/// Every network configuration format the gatherer reads.
pub fn network_config(data: &[u8]) {
    let files = files(&NETWORK_PATHS, data);
    let _ = network::gather(&guest(&files, &[]));
    if let Some((path, content)) = files.first() {
        let _ = network::parse_netplan(path, &text(content));
    }
    if let Some((path, content)) = files.get(3) {
        let _ = network::parse_nm_keyfile(path, &text(content));
    }
    if let Some((path, content)) = files.get(5) {
        let _ = network::parse_networkd(path, &text(content));
    }
}

/// Where the `system_config` target puts its files.
const SYSTEM_PATHS: [&str; 8] = [
    "/etc/ssh/sshd_config",
    "/etc/ssh/sshd_config.d/50-cloud-init.conf",
    "/etc/passwd",
    "/etc/shadow",
    "/etc/sudoers.d/90-cloud-init-users",
    "/var/lib/dpkg/status",
    "/var/lib/dpkg/info/openssh-server.list",
    "/etc/selinux/config",
];

/// sshd_config with an Include'd drop-in, passwd, shadow, sudoers, dpkg status and
/// openssh-server's file list (read by the package interface's `owner_of`).
pub fn system_config(data: &[u8]) {
    let files = files(&SYSTEM_PATHS, data);
    let g = guest(&files, &["/home/azureuser/.ssh"]);
    let _ = ssh::gather(&g);
    let _ = users::gather(&g);
    // The package database (dpkg status), as runtime facts and the agents' versions ask it.
    let packages = Packages::gather(&g, Family::Debian);
    let _ = (
        packages.version_of("openssh-server"),
        packages.owner_of("/usr/sbin/sshd"),
    );
    let _ = runtime::gather(&g, &packages);
    let _ = waagent::waagent_facts(&g, &packages);
    let _ = selinux::gather(&g);
    if let Some((_, status)) = files.get(5) {
        let _ = dpkg::parse_status(&text(status));
    }
}

#[cfg(test)]
mod tests {
    //! The seeds reach what their target is for (a seed that misses its parser only wastes
    //! fuzzing time): each real file parses into the facts it holds.
    use super::*;
    use vhdprep_guest::facts::kernel::cmdline::SourceKind;

    use crate::seed;

    fn guest_of(paths: &[&str], data: &[u8]) -> GuestTree {
        guest(&files(paths, data), &[])
    }

    #[test]
    fn fstab_seed_has_a_root_by_uuid() {
        let e = fstab::parse(&text(&seed("fstab", "gen2-gpt-ext4")));
        let root = e.iter().find(|e| e.mountpoint == "/").expect("a / entry");
        assert!(matches!(
            fstab::device_ref(&root.spec),
            fstab::DeviceRef::Uuid(_)
        ));
    }

    #[test]
    fn cloud_init_seed_loads_every_file_and_lists_azure() {
        let data = seed("cloud_init", "debian-12");
        let cfg = cloud_init::cloud_config(&guest_of(
            &[
                "/etc/cloud/cloud.cfg",
                "/etc/cloud/cloud.cfg.d/05_logging.cfg",
                "/etc/cloud/cloud.cfg.d/90_dpkg.cfg",
                "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg",
            ],
            &data,
        ));
        assert_eq!(cfg.files.len(), 4, "{:?}", cfg.files);
        assert!(
            cfg.files.iter().all(|f| f.error.is_none()),
            "{:?}",
            cfg.files
        );
        let list = cfg.datasource_list.expect("datasource_list set");
        assert_eq!(list.value, ["Azure"]);
    }

    #[test]
    fn grub_seed_has_a_default_entry_and_an_esp_redirect() {
        let data = seed("grub_cfg", "gen2-gpt-ext4");
        let g = guest_of(
            &["/boot/grub/grub.cfg", "/boot/efi/EFI/debian/grub.cfg"],
            &data,
        );
        let c = kernel::command_lines(&g);
        let eff = c.effective_source().expect("a default entry");
        assert_eq!(eff.kind, SourceKind::GrubCfg);
        assert!(!eff.cmdline.value("root").is_empty());
        assert!(c.redirects.iter().any(|r| r.text.starts_with("configfile")));
    }

    #[test]
    fn bls_seed_picks_the_saved_entry_and_expands_kernelopts() {
        let data = seed("bls", "rhel-and-fedora");
        let g = guest_of(
            &[
                "/boot/grub2/grubenv",
                "/boot/loader/entries/a-6.1.0-1.conf",
                "/boot/loader/entries/a-6.1.0-2.conf",
            ],
            &data,
        );
        let c = kernel::command_lines(&g);
        let bls: Vec<_> = c
            .sources
            .iter()
            .filter(|s| s.kind == SourceKind::Bls)
            .collect();
        assert_eq!(bls.len(), 2);
        let eff = c.effective_source().expect("default");
        assert!(eff.file.ends_with("a-6.1.0-2.conf"), "{}", eff.file);
        let rhel = bls
            .iter()
            .find(|s| s.file.ends_with("a-6.1.0-1.conf"))
            .unwrap();
        assert_eq!(rhel.cmdline.value("root"), ["/dev/mapper/rootvg-rootlv"]);
    }

    #[test]
    fn default_grub_seed_gives_the_intent() {
        let data = seed("kernel_cmdline", "gen2-gpt-ext4");
        let g = guest_of(&["/etc/default/grub", "/etc/default/grub.d/x.cfg"], &data);
        let intent = kernel::command_lines(&g)
            .intent
            .expect("GRUB_CMDLINE_LINUX set");
        assert!(intent.has("console"), "{intent:?}");
    }

    #[test]
    fn kernel_modules_seed_fills_builder_and_module_facts() {
        let data = seed("kernel_modules", "gen2-gpt-ext4");
        let f = kernel::kernel_facts(&guest(&files(&KERNEL_MODULES_PATHS, &data), &[]));
        assert!(f.builder.adds("hv_storvsc"), "{:?}", f.builder);
        assert!(f.builder.initramfs_tools_policy.is_some());
        assert!(!f.blacklisted("floppy").is_empty());
        let k = &f.kernels[0];
        assert!(k.module("hv_vmbus").is_some_and(|m| m.config.is_some()));
    }

    #[test]
    fn network_seed_reaches_every_format() {
        let data = seed("network_config", "all-formats");
        let f = network::gather(&guest(&files(&NETWORK_PATHS, &data), &[]));
        assert_eq!(f.netplan.len(), 1);
        assert!(f.netplan[0].error.is_none(), "{:?}", f.netplan[0]);
        assert!(!f.interfaces.is_empty());
        assert_eq!(f.nm_connections.len(), 1);
        assert_eq!(f.nm_unmanaged_devices.len(), 1);
        assert_eq!(f.networkd.len(), 1);
        assert_eq!(f.ifcfg.len(), 1);
    }

    #[test]
    fn network_seed_reads_nmcli_keyfile_ifcfg_and_sysconfig_network() {
        let data = seed("network_config", "rhel9-nmcli");
        let f = network::gather(&guest(&files(&NETWORK_PATHS, &data), &[]));
        assert_eq!(f.nm_connections.len(), 1);
        let k = &f.nm_connections[0];
        assert_eq!(k.ipv4_method.as_ref().unwrap().value, "manual");
        assert_eq!(k.autoconnect.as_ref().unwrap().value, "false");
        assert_eq!(
            k.match_interface_name.as_ref().unwrap().value,
            "eth*;!eth1;"
        );
        assert_eq!(f.ifcfg[0].nm_controlled.as_ref().unwrap().value, "no");
        let sc = f.sysconfig_network.expect("/etc/sysconfig/network read");
        assert_eq!(sc.networking.unwrap().value, "yes");
    }

    #[test]
    fn system_seed_reads_selinux_config() {
        let data = seed("system_config", "rhel9-selinux");
        let se = selinux::gather(&guest(&files(&SYSTEM_PATHS, &data), &[]));
        assert_eq!(se.mode.unwrap().value, "enforcing");
        assert_eq!(se.policy_type.unwrap().value, "targeted");
    }

    #[test]
    fn system_seed_reads_sshd_users_and_dpkg() {
        let data = seed("system_config", "gen2-gpt-ext4");
        let files = files(&SYSTEM_PATHS, &data);
        let g = guest(&files, &[]);
        let ssh = ssh::gather(&g);
        assert!(ssh.config_read);
        assert_eq!(ssh.config_files.len(), 2, "{:?}", ssh.config_files);
        let u = users::gather(&g);
        assert!(u.passwd_read && u.shadow_read && u.root_password.is_some());
        let pkgs = dpkg::parse_status(&text(files[5].1));
        assert!(
            pkgs.packages.iter().any(|p| p.name == "python3"),
            "{pkgs:?}"
        );
        let packages = Packages::gather(&g, Family::Debian);
        assert_eq!(
            packages.owner_of("/usr/sbin/sshd").map(|p| p.name.as_str()),
            Some("openssh-server")
        );
        let agent = waagent::waagent_facts(&g, &packages)
            .version
            .expect("dpkg version of waagent");
        assert_eq!(agent.version, "2.7.3.0-4.1");
    }
}
