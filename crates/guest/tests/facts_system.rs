//! `facts::system` on the real fixture images (fixtures/build-images.sh: Debian bookworm with
//! waagent, cloud-init and openssh-server, generalized by the builder) and on synthetic trees,
//! compared with the image manifests and with independent tools run on the extracted files:
//! `sha256sum`, `python3` (passwd/shadow/machine-id/ifupdown parsing, PyYAML for netplan) and
//! OpenSSH's own `sshd -T`.
//!
//! A missing fixture or tool fails with what to install or run; nothing is skipped.

mod fixture_images;
use fixture_images::fixture;
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use vhdprep_disk::DiskImage;
use vhdprep_fs::{DirEntry, FileKind, FileSystem, FsError, FsResult, Metadata};
use vhdprep_guest::facts::system::network::parse_netplan;
use vhdprep_guest::facts::system::{system_facts, SystemFacts};
use vhdprep_guest::packages::Packages;
use vhdprep_guest::Family;
use vhdprep_guest::{inspect, GuestTree};

const LAYOUTS: [&str; 7] = [
    "gen2-gpt-ext4",
    "gen1-mbr-ext4",
    "hybrid-gpt",
    "gen2-gpt-xfs",
    "gen2-gpt-btrfs",
    "rhel-lvm",
    "separate-var",
];

/// Runs a tool, failing with the Debian package to install when it is missing.
fn tool(cmd: &mut Command, package: &str) -> std::process::Output {
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!(
            "{:?} cannot run ({e}): install the Debian package `{package}` (apt-get install {package})",
            cmd.get_program()
        ),
    }
}

fn python(script: &str, arg: &Path) -> Json {
    let out = tool(
        Command::new("python3").arg("-c").arg(script).arg(arg),
        "python3-yaml",
    );
    assert!(
        out.status.success(),
        "python3 failed (PyYAML missing? apt-get install python3-yaml): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sha256(path: &Path) -> String {
    let out = tool(Command::new("sha256sum").arg(path), "coreutils");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// `sshd -T` on a configuration file: keyword → first value.
fn sshd_t(config: &Path, scratch: &Path) -> Vec<(String, String)> {
    let key = scratch.join("hostkey");
    if !key.exists() {
        let o = tool(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key),
            "openssh-client",
        );
        assert!(o.status.success());
    }
    // sshd refuses to start, even for -T, without its privilege separation directory, which
    // openssh-server's tmpfiles.d creates at boot.
    if !Path::new("/run/sshd").is_dir() {
        std::fs::create_dir_all("/run/sshd")
            .expect("sshd -T needs /run/sshd: `mkdir -p /run/sshd` (openssh-server tmpfiles)");
    }
    let out = tool(
        Command::new("sshd")
            .arg("-T")
            .arg("-f")
            .arg(config)
            .arg("-h")
            .arg(&key),
        "openssh-server",
    );
    assert!(
        out.status.success(),
        "sshd -T -f {}: {}",
        config.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sshd_value(t: &[(String, String)], key: &str) -> String {
    let v = t
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("sshd -T printed no {key}"));
    // sshd -T prints the legacy spelling.
    if v == "without-password" {
        "prohibit-password".into()
    } else {
        v
    }
}

fn assert_sshd_agrees(facts: &SystemFacts, t: &[(String, String)], what: &str) {
    assert_eq!(
        facts
            .ssh
            .client_alive_interval_seconds
            .map(|s| s.to_string()),
        Some(sshd_value(t, "clientaliveinterval")),
        "{what}: ClientAliveInterval"
    );
    assert_eq!(
        facts.ssh.password_authentication.value,
        sshd_value(t, "passwordauthentication"),
        "{what}: PasswordAuthentication"
    );
    assert_eq!(
        facts.ssh.permit_root_login.value,
        sshd_value(t, "permitrootlogin"),
        "{what}: PermitRootLogin"
    );
}

/// Independent parsing of the extracted files, by python3.
const PY_FILES: &str = r#"
import json, os, re, sys
d = sys.argv[1]
def rd(n):
    p = os.path.join(d, n)
    return open(p, encoding='utf-8', errors='replace').read() if os.path.exists(p) else None
users = []
for line in (rd('passwd') or '').splitlines():
    f = line.split(':')
    if len(f) < 7 or not f[0] or f[0][0] in '#+':
        continue
    try:
        uid = int(f[2])
    except ValueError:
        continue
    if 1000 <= uid < 60000:
        users.append([f[0], uid, f[5], f[6]])
root = None
for line in (rd('shadow') or '').splitlines():
    f = line.split(':')
    if len(f) >= 2 and f[0] == 'root':
        pw = f[1]
        root = ('empty' if pw == '' else 'locked' if pw[0] in '!*'
                else 'usable' if re.match(r'^\$[A-Za-z0-9]+\$.+', pw) else 'invalid')
        break
mid = rd('machine-id')
if mid is None:
    mstate = None
else:
    t = mid.strip()
    mstate = ('empty' if t == '' else 'uninitialized' if t == 'uninitialized'
              else 'id' if re.fullmatch(r'[0-9a-fA-F]{32}', t) else 'invalid')
ifaces = []
for name in sorted(os.listdir(d)):
    if name.startswith('interfaces'):
        for line in open(os.path.join(d, name)).read().splitlines():
            w = line.split()
            if len(w) >= 4 and w[0] == 'iface':
                ifaces.append(w[1:4])
print(json.dumps({'users': users, 'root': root, 'machine_id': mstate, 'ifaces': ifaces}))
"#;

fn extract(tree: &GuestTree, guest: &str, host: &Path) -> bool {
    match tree.read_file(guest.as_bytes(), 4 << 20) {
        Ok(b) => {
            std::fs::write(host, b).unwrap();
            true
        }
        Err(_) => false,
    }
}

#[test]
fn fixture_images_agree_with_manifests_and_tools() {
    let scratch = tempfile::tempdir().unwrap();
    for name in LAYOUTS {
        let (img, man) = fixture(name);
        let image = DiskImage::open(&img).unwrap();
        let (_, _, guest) = inspect(&image).unwrap();
        let guest = guest.unwrap_or_else(|| panic!("{name}: no guest root"));
        let facts = system_facts(
            &guest.tree,
            &guest.fstab,
            &Packages::gather(&guest.tree, Family::Debian),
        );
        let json = serde_json::to_value(&facts).unwrap();
        assert!(json["generalization"]["leftovers"].is_array());
        let files = &man["files"];
        let dir = scratch.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();

        // GEN-007: host keys, from the manifest's listing of /etc/ssh.
        let want_keys: BTreeSet<String> = files["/etc/ssh"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e.as_str())
            .filter(|e| e.starts_with("ssh_host_") && e.contains("key"))
            .map(|e| format!("/etc/ssh/{e}"))
            .collect();
        let got_keys: BTreeSet<String> = facts
            .generalization
            .ssh_host_keys
            .iter()
            .map(|k| k.path.clone())
            .collect();
        assert_eq!(got_keys, want_keys, "{name}: host keys");

        // GEN-001/002/016/017: /var/lib/waagent leftovers = the manifest's entries.
        let want_lib: BTreeSet<String> = files["/var/lib/waagent"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e.as_str())
            .map(|e| format!("/var/lib/waagent/{e}"))
            .collect();
        let got_lib: BTreeSet<String> = facts
            .generalization
            .leftovers
            .iter()
            .filter(|l| l.fact.path.starts_with("/var/lib/waagent/"))
            .map(|l| l.fact.path.clone())
            .collect();
        assert_eq!(got_lib, want_lib, "{name}: /var/lib/waagent");
        // The builder generalized the image: nothing left over at all.
        assert!(
            facts.generalization.leftovers.is_empty(),
            "{name}: {:?}",
            facts.generalization.leftovers
        );

        // GEN-011: hostname, with the file's bytes checked against the manifest.
        let host = dir.join("hostname");
        assert!(extract(&guest.tree, "/etc/hostname", &host));
        assert_eq!(
            sha256(&host),
            files["/etc/hostname"]["sha256"].as_str().unwrap()
        );
        let text = std::fs::read_to_string(&host).unwrap();
        assert_eq!(facts.generalization.hostnames[0].value, text.trim());
        assert_eq!(
            facts.generalization.hostnames[0].source.path,
            "/etc/hostname"
        );

        // GEN-013: machine-id bytes = manifest, classification = python's.
        let mid = dir.join("machine-id");
        assert!(extract(&guest.tree, "/etc/machine-id", &mid));
        assert_eq!(
            sha256(&mid),
            files["/etc/machine-id"]["sha256"].as_str().unwrap()
        );

        // Users, shadow, ifupdown stanzas: python3 on the extracted files.
        assert!(extract(&guest.tree, "/etc/passwd", &dir.join("passwd")));
        assert!(extract(&guest.tree, "/etc/shadow", &dir.join("shadow")));
        extract(
            &guest.tree,
            "/etc/network/interfaces",
            &dir.join("interfaces"),
        );
        for (n, _) in guest
            .tree
            .read_dir(b"/etc/network/interfaces.d")
            .map(|v| {
                v.into_iter()
                    .map(|e| (String::from_utf8_lossy(&e.name).into_owned(), e.kind))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
        {
            extract(
                &guest.tree,
                &format!("/etc/network/interfaces.d/{n}"),
                &dir.join(format!("interfaces.d-{n}")),
            );
        }
        let py = python(PY_FILES, &dir);
        let users: Vec<Json> = facts
            .users
            .login_users
            .iter()
            .map(|u| serde_json::json!([u.name, u.uid, u.home, u.shell]))
            .collect();
        assert_eq!(Json::Array(users), py["users"], "{name}: login users");
        let root_state = facts
            .users
            .root_password
            .as_ref()
            .map(|r| serde_json::to_value(&r.password).unwrap()["state"].clone());
        let root_state = match root_state.as_ref().and_then(|s| s.as_str()) {
            Some("usable") => "usable",
            Some("locked") => "locked",
            Some("empty") => "empty",
            Some("invalid") => "invalid",
            other => panic!("{name}: root {other:?}"),
        };
        assert_eq!(root_state, py["root"], "{name}: root password field");
        let mstate = serde_json::to_value(&facts.generalization.machine_id.as_ref().unwrap().value)
            .unwrap()["state"]
            .clone();
        assert_eq!(mstate, py["machine_id"], "{name}: machine-id");
        let stanzas: Vec<Json> = facts
            .network
            .interfaces
            .iter()
            .map(|i| serde_json::json!([i.interface, i.family, i.method]))
            .collect();
        assert_eq!(
            Json::Array(stanzas),
            py["ifaces"],
            "{name}: ifupdown stanzas"
        );

        // SSH: enabled as the manifest's wants link says; effective values = sshd -T's.
        assert!(facts.ssh.sshd_binary.is_some(), "{name}: sshd binary");
        if files["/etc/systemd/system/multi-user.target.wants/ssh.service"]["kind"] == "symlink" {
            assert!(
                facts
                    .ssh
                    .units
                    .iter()
                    .any(|u| u.unit == "ssh.service" && u.enabled()),
                "{name}: ssh.service enabled"
            );
        }
        let cfg = dir.join("sshd_config");
        assert!(extract(&guest.tree, "/etc/ssh/sshd_config", &cfg));
        assert_eq!(
            sha256(&cfg),
            files["/etc/ssh/sshd_config"]["sha256"].as_str().unwrap()
        );
        let dropins = dir.join("sshd_config.d");
        std::fs::create_dir_all(&dropins).unwrap();
        for e in guest
            .tree
            .read_dir(b"/etc/ssh/sshd_config.d")
            .unwrap_or_default()
        {
            let n = String::from_utf8_lossy(&e.name).into_owned();
            extract(
                &guest.tree,
                &format!("/etc/ssh/sshd_config.d/{n}"),
                &dropins.join(&n),
            );
        }
        let text = std::fs::read_to_string(&cfg).unwrap();
        let host_cfg = dir.join("sshd_config.host");
        std::fs::write(
            &host_cfg,
            text.replace("/etc/ssh/sshd_config.d", dropins.to_str().unwrap()),
        )
        .unwrap();
        assert_sshd_agrees(&facts, &sshd_t(&host_cfg, scratch.path()), name);

        // SYS-003: the manifest's fstab has no swap; neither do we.
        let want_swap = man["fstab"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["vfstype"] == "swap")
            .count();
        assert_eq!(facts.swap.fstab.len(), want_swap, "{name}: fstab swap");
        assert!(facts.swap.files.is_empty() && facts.swap.units.is_empty());

        // resolv.conf: the builder leaves an empty regular file.
        assert!(
            matches!(
                facts.generalization.resolv_conf,
                Some(vhdprep_guest::facts::system::generalization::ResolvConf::File { ref nameservers, .. })
                    if nameservers.is_empty()
            ),
            "{name}: {:?}",
            facts.generalization.resolv_conf
        );
        // hyperv-daemons is installed by the builder.
        assert!(
            facts
                .services
                .hyperv_daemons
                .iter()
                .any(|d| d.path.ends_with("hv_kvp_daemon")),
            "{name}: hv_kvp_daemon"
        );
    }
}

/// A host directory seen as a guest filesystem (for synthetic trees the tools can also read).
struct HostDir(PathBuf);

impl HostDir {
    fn host(&self, path: &[u8]) -> PathBuf {
        let rel = String::from_utf8_lossy(path)
            .trim_start_matches('/')
            .to_string();
        self.0.join(rel)
    }
}

fn kind_of(t: std::fs::FileType) -> FileKind {
    if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_dir() {
        FileKind::Dir
    } else if t.is_file() {
        FileKind::File
    } else {
        FileKind::Unknown
    }
}

impl FileSystem for HostDir {
    fn fs_type(&self) -> &'static str {
        "hostdir"
    }
    fn metadata(&self, path: &[u8]) -> FsResult<Metadata> {
        let m = std::fs::symlink_metadata(self.host(path)).map_err(|_| FsError::NotFound {
            path: String::from_utf8_lossy(path).into(),
        })?;
        Ok(Metadata {
            kind: kind_of(m.file_type()),
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: m.len(),
            mtime: None,
            inode: None,
        })
    }
    fn read_dir(&self, path: &[u8]) -> FsResult<Vec<DirEntry>> {
        let rd = std::fs::read_dir(self.host(path)).map_err(|_| FsError::NotFound {
            path: String::from_utf8_lossy(path).into(),
        })?;
        Ok(rd
            .filter_map(Result::ok)
            .map(|e| DirEntry {
                name: e.file_name().into_encoded_bytes(),
                kind: e.file_type().map_or(FileKind::Unknown, kind_of),
            })
            .collect())
    }
    fn read_link(&self, path: &[u8]) -> FsResult<Vec<u8>> {
        std::fs::read_link(self.host(path))
            .map(|p| p.into_os_string().into_encoded_bytes())
            .map_err(|_| FsError::NotASymlink {
                path: String::from_utf8_lossy(path).into(),
            })
    }
    fn read_file(&self, path: &[u8], limit: u64) -> FsResult<Vec<u8>> {
        let m = self.metadata(path)?;
        if m.size > limit {
            return Err(FsError::TooLarge {
                path: String::from_utf8_lossy(path).into(),
                size: m.size,
                limit,
            });
        }
        std::fs::read(self.host(path)).map_err(|_| FsError::IsADirectory {
            path: String::from_utf8_lossy(path).into(),
        })
    }
}

fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let h = root.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(h.parent().unwrap()).unwrap();
        std::fs::write(h, c).unwrap();
    }
}

#[test]
fn sshd_t_agrees_on_synthetic_configs() {
    let scratch = tempfile::tempdir().unwrap();
    let variants: [(&str, &[(&str, &str)]); 7] = [
        (
            "time format",
            &[("/etc/ssh/sshd_config", "ClientAliveInterval 1h3m5s\n")],
        ),
        (
            "drop-in order, first value wins",
            &[
                ("/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\nClientAliveInterval 120\nPasswordAuthentication yes\n"),
                ("/etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication no\n"),
                ("/etc/ssh/sshd_config.d/10-azure.conf", "ClientAliveInterval 180\n"),
                ("/etc/ssh/sshd_config.d/99-late.conf", "ClientAliveInterval 999\nPermitRootLogin no\n"),
                ("/etc/ssh/sshd_config.d/ignored.txt", "ClientAliveInterval 1\n"),
            ],
        ),
        (
            "Match scoped to its file, Match all resumes",
            &[
                ("/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\nMatch User bob\nClientAliveInterval 5\nMatch all\nPasswordAuthentication no\n"),
                ("/etc/ssh/sshd_config.d/1.conf", "Match User x\nClientAliveInterval 7\n"),
                ("/etc/ssh/sshd_config.d/2.conf", "PermitRootLogin yes\n"),
            ],
        ),
        (
            "keyword case and = syntax",
            &[("/etc/ssh/sshd_config", "clientaliveinterval=45\n  PASSWORDAUTHENTICATION = no\npermitrootlogin\tforced-commands-only\n")],
        ),
        ("defaults", &[("/etc/ssh/sshd_config", "# nothing\n")]),
        (
            "nested includes",
            &[
                ("/etc/ssh/sshd_config", "Include /etc/ssh/a.conf\nClientAliveInterval 1\n"),
                ("/etc/ssh/a.conf", "Include /etc/ssh/b.conf\nPasswordAuthentication no\n"),
                ("/etc/ssh/b.conf", "ClientAliveInterval 30\n"),
            ],
        ),
        (
            "quoted values and comments",
            &[("/etc/ssh/sshd_config", "# ClientAliveInterval 9\nClientAliveInterval \"60\"\nPermitRootLogin prohibit-password # trailing\n")],
        ),
    ];
    for (i, (what, files)) in variants.iter().enumerate() {
        let guest_root = scratch.path().join(format!("guest{i}"));
        write_tree(&guest_root, files);
        let tree = GuestTree::new(Arc::new(HostDir(guest_root.clone())), "host");
        let facts = system_facts(&tree, &[], &Packages::gather(&tree, Family::Unknown));
        // The same files for sshd, with the guest's /etc/ssh mapped into the scratch tree.
        let host_root = scratch.path().join(format!("host{i}"));
        let prefix = format!("{}/etc/ssh", host_root.display());
        let mapped: Vec<(String, String)> = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.replace("/etc/ssh", &prefix)))
            .collect();
        let mapped_ref: Vec<(&str, &str)> = mapped
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        write_tree(&host_root, &mapped_ref);
        let t = sshd_t(&host_root.join("etc/ssh/sshd_config"), scratch.path());
        assert_sshd_agrees(&facts, &t, what);
    }
}

const PY_NETPLAN: &str = r#"
import json, os, sys, yaml
d = sys.argv[1]
out = {}
for name in sorted(os.listdir(d)):
    try:
        doc = yaml.safe_load(open(os.path.join(d, name)))
    except Exception:
        out[name] = 'error'
        continue
    ifs = []
    net = doc.get('network') if isinstance(doc, dict) else None
    if isinstance(net, dict):
        for kind, sec in net.items():
            if kind not in ('ethernets', 'bonds', 'bridges', 'vlans', 'wifis', 'vrfs', 'tunnels') or not isinstance(sec, dict):
                continue
            for iid, body in sec.items():
                body = body if isinstance(body, dict) else {}
                m = body.get('match') if isinstance(body.get('match'), dict) else {}
                d4 = body.get('dhcp4')
                addrs = body.get('addresses')
                ifs.append([kind, str(iid), d4 if isinstance(d4, bool) else None,
                            m.get('macaddress'), body.get('set-name'),
                            len(addrs) if isinstance(addrs, list) else 0])
    out[name] = ifs
print(json.dumps(out))
"#;

#[test]
fn netplan_agrees_with_pyyaml() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("etc/netplan");
    let files: [(&str, &str); 5] = [
        ("50-cloud-init.yaml", "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      match:\n        macaddress: 00:0d:3a:aa:bb:cc\n      set-name: eth0\n"),
        ("60-static.yaml", "network:\n  ethernets:\n    eth1:\n      dhcp4: no\n      addresses:\n        - 10.0.0.5/24\n        - 10.0.0.6/24\n  bonds:\n    bond0: {dhcp4: yes}\n"),
        ("70-flow.yaml", "network: {version: 2, renderer: networkd, ethernets: {ens3: {dhcp4: true, match: {macaddress: \"00:0d:3a:dd:ee:ff\"}}}}\n"),
        ("80-empty.yaml", "# nothing\n"),
        ("90-broken.yaml", "network:\n  ethernets: [\n"),
    ];
    for (n, c) in files {
        write_tree(&dir, &[(n, c)]);
    }
    let py = python(PY_NETPLAN, &dir);
    let tree = GuestTree::new(Arc::new(HostDir(scratch.path().to_path_buf())), "host");
    let facts = system_facts(&tree, &[], &Packages::gather(&tree, Family::Unknown));
    assert_eq!(facts.network.netplan.len(), files.len());
    for np in &facts.network.netplan {
        let name = np.path.rsplit('/').next().unwrap();
        let want = &py[name];
        if want == "error" {
            assert!(np.error.is_some(), "{name}: both should fail");
            continue;
        }
        assert!(np.error.is_none(), "{name}: {:?}", np.error);
        let got: Vec<Json> = np
            .interfaces
            .iter()
            .map(|i| {
                serde_json::json!([
                    i.kind,
                    i.id,
                    i.dhcp4,
                    i.match_macaddress,
                    i.set_name,
                    i.addresses
                ])
            })
            .collect();
        assert_eq!(&Json::Array(got), want, "{name}");
        // Also parsed directly.
        let direct = parse_netplan(&np.path, &std::fs::read_to_string(dir.join(name)).unwrap());
        assert_eq!(&direct, np);
    }
    let leftover = facts
        .generalization
        .leftovers
        .iter()
        .find(|l| l.item == "cloud-init-netplan")
        .expect("50-cloud-init.yaml is a GEN-015 leftover");
    assert_eq!(
        leftover.detail.as_deref(),
        Some("macaddress 00:0d:3a:aa:bb:cc")
    );
}
