//! Agent facts on the real fixture images (fixtures/build-images.sh: Debian bookworm with
//! Debian's `waagent` 2.7.3 (dpkg name `waagent`; Ubuntu's is `walinuxagent`) and `cloud-init` 22.4.2), compared with independent programs:
//!
//! - waagent.conf: the agent's own `ConfigurationProvider` and getters, lifted from the
//!   image's `azurelinuxagent/common/conf.py` and run by `python3`;
//! - versions: `dpkg-query --admindir` on the image's `/var/lib/dpkg/status`;
//! - unit enablement: the manifest's symlinks and the rootfs tarball listing (`tar`).
//!
//! A missing fixture or tool fails the test with what to install or run; nothing is skipped.

mod fixture_images;
use fixture_images::{fixture, fixture_dir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use vhdprep_disk::DiskImage;
use vhdprep_guest::facts::agents::{
    agent_facts, AgentFacts, ConflictKind, Provisioner, VersionSource,
};
use vhdprep_guest::GuestTree;

/// Layouts whose guests differ in how the tree is assembled (plain ext4, LVM, /var apart).
const LAYOUTS: [&str; 3] = ["gen2-gpt-ext4", "rhel-lvm", "separate-var"];

/// Runs a tool, failing with the Debian package that provides it when it is missing.
fn tool(cmd: &mut Command, package: &str) -> String {
    let name = format!("{:?}", cmd.get_program());
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{name} not runnable ({e}): install the Debian package `{package}`")
    });
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn open(name: &str) -> (GuestTree, Value) {
    let (img, man) = fixture(name);
    let image = DiskImage::open(&img).expect("open image");
    let (_, _, guest) = vhdprep_guest::inspect(&image).expect("inspect");
    (guest.expect("guest assembled").tree, man)
}

fn facts(name: &str) -> (GuestTree, Value, AgentFacts) {
    let (tree, man) = open(name);
    let packages = vhdprep_guest::packages::Packages::gather(&tree, vhdprep_guest::Family::Debian);
    let f = agent_facts(&tree, &["ro".into(), "console=ttyS0".into()], &packages);
    (tree, man, f)
}

const PY_CONF: &str = r#"
import ast, json, sys
src = open(sys.argv[1]).read()
mod = ast.parse(src)
cls = [n for n in mod.body if isinstance(n, ast.ClassDef) and n.name == "ConfigurationProvider"]
assert cls, "no ConfigurationProvider in conf.py"
ns = {"AgentConfigError": Exception}
exec(compile(ast.Module(body=cls, type_ignores=[]), "conf.py", "exec"), ns)
conf = ns["ConfigurationProvider"]()
ns["__conf__"] = conf
names = ["get_provisioning_agent", "get_regenerate_ssh_host_key", "get_delete_root_password",
         "get_resourcedisk_format", "get_resourcedisk_enable_swap", "get_resourcedisk_swap_size_mb",
         "get_resourcedisk_filesystem", "get_resourcedisk_mountpoint", "get_autoupdate_enabled",
         "get_extensions_enabled", "get_ssh_client_alive_interval", "get_ssh_host_keypair_mode"]
fns = [n for n in mod.body if isinstance(n, ast.FunctionDef) and n.name in names]
exec(compile(ast.Module(body=fns, type_ignores=[]), "conf.py", "exec"), ns)
conf.load(open(sys.argv[2]).read())
print(json.dumps({"values": conf.values, "getters": {n: ns[n]() for n in names if n in ns}}))
"#;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn waagent_conf_matches_the_agents_own_parser() {
    let tmp = tempfile::tempdir().unwrap();
    for name in LAYOUTS {
        let (tree, man, f) = facts(name);
        let conf_bytes = tree.read_file(b"/etc/waagent.conf", 1 << 20).unwrap();
        assert_eq!(
            Some(conf_bytes.len() as u64),
            man["files"]["/etc/waagent.conf"]["size"].as_u64(),
            "{name}: manifest size"
        );
        let pkg = &f.waagent.python_packages[0];
        let conf_py = tree
            .read_file(format!("{pkg}/common/conf.py").as_bytes(), 1 << 20)
            .expect("conf.py in the image");
        let py = write(tmp.path(), "conf.py", &conf_py);
        let wc = write(tmp.path(), "waagent.conf", &conf_bytes);
        let out = tool(
            Command::new("python3")
                .arg("-c")
                .arg(PY_CONF)
                .arg(&py)
                .arg(&wc),
            "python3",
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        // Every key and value the agent keeps.
        let ours: BTreeMap<String, Value> = f
            .waagent
            .config
            .as_ref()
            .expect("waagent.conf parsed")
            .entries
            .iter()
            .map(|(k, e)| {
                (
                    k.clone(),
                    e.value.clone().map_or(Value::Null, Value::String),
                )
            })
            .collect();
        let theirs: BTreeMap<String, Value> = v["values"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(ours, theirs, "{name}: waagent.conf key/values");
        assert!(ours.len() > 20, "{name}: a real waagent.conf");
        // The effective settings against the agent's getters (code defaults included).
        let g = &v["getters"];
        let s = &f.waagent.settings;
        assert_eq!(
            g["get_provisioning_agent"],
            s.provisioning_agent.value.as_str()
        );
        assert_eq!(
            g["get_regenerate_ssh_host_key"],
            s.regenerate_ssh_host_key_pair.value
        );
        assert_eq!(g["get_delete_root_password"], s.delete_root_password.value);
        assert_eq!(g["get_resourcedisk_format"], s.resource_disk_format.value);
        assert_eq!(
            g["get_resourcedisk_enable_swap"],
            s.resource_disk_enable_swap.value
        );
        assert_eq!(
            g["get_resourcedisk_swap_size_mb"],
            s.resource_disk_swap_size_mb.value
        );
        assert_eq!(
            g["get_resourcedisk_filesystem"],
            s.resource_disk_filesystem.value.as_str()
        );
        assert_eq!(
            g["get_resourcedisk_mountpoint"],
            s.resource_disk_mount_point.value.as_str()
        );
        assert_eq!(g["get_autoupdate_enabled"], s.auto_update_enabled.value);
        assert_eq!(g["get_extensions_enabled"], s.extensions_enabled.value);
        assert_eq!(
            g["get_ssh_host_keypair_mode"],
            s.ssh_host_key_pair_type.value.as_str()
        );
        let alive = &g["get_ssh_client_alive_interval"];
        let alive = alive
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| alive.to_string());
        assert_eq!(alive, s.ssh_client_alive_interval.value);
        // Evidence points at the right line.
        let ev = s
            .provisioning_agent
            .evidence
            .as_ref()
            .expect("set in the file");
        let text = String::from_utf8_lossy(&conf_bytes);
        let line = text.lines().nth(ev.line.unwrap() - 1).unwrap();
        assert!(line.starts_with("Provisioning.Agent="), "{name}: {line}");
    }
}

#[test]
fn versions_match_dpkg_query() {
    for name in LAYOUTS {
        let (tree, _, f) = facts(name);
        let status = tree
            .read_file(b"/var/lib/dpkg/status", 64 << 20)
            .expect("dpkg status in the image");
        let admin = tempfile::tempdir().unwrap();
        write(admin.path(), "status", &status);
        std::fs::create_dir(admin.path().join("updates")).unwrap();
        std::fs::create_dir(admin.path().join("info")).unwrap();
        let out = tool(
            Command::new("dpkg-query")
                .arg(format!("--admindir={}", admin.path().display()))
                .args(["-W", "-f=${Package} ${Version}\\n", "waagent", "cloud-init"]),
            "dpkg",
        );
        let dpkg: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once(' ')).collect();
        assert_eq!(dpkg.len(), 2, "{name}: {out}");
        for (pkg, facts_versions) in [
            ("waagent", &f.waagent.versions),
            ("cloud-init", &f.cloud_init.versions),
        ] {
            let ours = facts_versions
                .iter()
                .find(|v| v.source == VersionSource::Dpkg)
                .unwrap_or_else(|| panic!("{name}: no dpkg version for {pkg}"));
            assert_eq!(ours.version, dpkg[pkg], "{name}: {pkg}");
            // The upstream part agrees with version.py and the egg-info.
            let upstream = dpkg[pkg].split('-').next().unwrap();
            for v in facts_versions
                .iter()
                .filter(|v| v.source != VersionSource::Dpkg)
            {
                assert_eq!(v.version, upstream, "{name}: {pkg} {:?}", v.evidence);
            }
            assert!(
                facts_versions.len() >= 3,
                "{name}: {pkg} {facts_versions:?}"
            );
        }
    }
}

/// `etc/systemd/system/*.wants/*` symlinks in the rootfs tarball the images were filled from.
fn tarball_wants_links() -> Vec<String> {
    let dir = fixture_dir();
    let tarball = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rootfs-bookworm-") && n.ends_with(".tar.zst"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no rootfs-bookworm-*.tar.zst in {}: run `fixtures/build-images.sh`",
                dir.display()
            )
        });
    tool(
        Command::new("tar").arg("--zstd").arg("-tvf").arg(&tarball),
        "tar and zstd",
    )
    .lines()
    .filter(|l| l.starts_with('l'))
    .filter_map(|l| l.split(" ./").nth(1))
    .filter_map(|l| l.split(" -> ").next())
    .filter(|p| p.starts_with("etc/systemd/system/") && p.contains(".wants/"))
    .map(|p| format!("/{p}"))
    .collect()
}

#[test]
fn unit_enablement_matches_manifest_and_tarball() {
    let links = tarball_wants_links();
    for name in LAYOUTS {
        let (_, man, f) = facts(name);
        // The manifest's own record of the waagent link.
        let wl = "/etc/systemd/system/multi-user.target.wants/walinuxagent.service";
        assert_eq!(man["files"][wl]["kind"], "symlink", "{name}");
        let w = &f.waagent.service.systemd;
        assert_eq!(w.name, "walinuxagent.service");
        assert_eq!(w.enabled_links, vec![wl.to_string()], "{name}");
        assert!(w.is_enabled() && f.waagent.enabled);
        assert_eq!(w.wanted_by, vec!["multi-user.target"]);
        assert_eq!(f.waagent.binaries, vec!["/usr/sbin/waagent"]);
        // Every cloud-init unit: our links are exactly the tarball's.
        for u in &f.cloud_init.units {
            let expect: Vec<&String> = links
                .iter()
                .filter(|l| l.rsplit('/').next() == Some(u.name.as_str()))
                .collect();
            let ours: Vec<&String> = u.enabled_links.iter().collect();
            assert_eq!(ours, expect, "{name}: {}", u.name);
        }
        let local = &f.cloud_init.units[0];
        assert_eq!(local.name, "cloud-init-local.service");
        assert!(local.is_enabled() && f.cloud_init.enabled_per_waagent);
        // bookworm's 22.4.2 has the old unit names only.
        assert!(f
            .cloud_init
            .units
            .iter()
            .any(|u| u.name == "cloud-init.service" && u.found()));
        assert!(!f
            .cloud_init
            .units
            .iter()
            .any(|u| u.name == "cloud-init-main.service" && u.found()));
        assert!(f.cloud_init.generator.is_some() && f.cloud_init.runs_at_boot);
    }
}

#[test]
fn provisioning_path_on_the_debian_images() {
    for name in LAYOUTS {
        let (_, _, f) = facts(name);
        let ci = &f.cloud_init.config;
        let dl = ci.datasource_list.as_ref().expect("datasource_list");
        assert_eq!(dl.value, vec!["Azure"], "{name}");
        assert_eq!(
            dl.evidence.path,
            "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg"
        );
        assert_eq!(
            ci.ds_identify_datasource_list.as_ref().unwrap().list,
            Some(vec!["Azure".to_string()])
        );
        assert_eq!(
            ci.azure_apply_network_config.as_ref().map(|s| s.value),
            Some(true)
        );
        assert!(ci.files.iter().all(|f| f.error.is_none()), "{:?}", ci.files);
        assert!(ci.installer_leftovers.is_empty() && ci.ds_identify_cfg.is_none());
        // Debian's waagent.conf: Provisioning.Agent=cloud-init with ResourceDisk.Format=y.
        assert_eq!(f.provisioning.waagent_mode.as_deref(), Some("cloud-init"));
        assert_eq!(f.provisioning.provisioner, Provisioner::CloudInit);
        let kinds: Vec<_> = f.provisioning.conflicts.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            vec![ConflictKind::WaagentOwnsResourceDiskUnderCloudInit],
            "{name}"
        );
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["provisioning"]["provisioner"], "cloud-init");
    }
}
