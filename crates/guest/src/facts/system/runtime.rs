//! What the provisioning agents need at run time (SYS-008): a Python interpreter (and the
//! one their scripts' `#!` lines name), OpenSSL, OpenSSH, and the system tools they call
//! (`sfdisk`, `parted`, `chpasswd`, `sudo`, `ip` ...), with the installed versions of the
//! packages that provide them, from the guest's package database (dpkg or rpm).

use super::{line_ref, stat, LineRef, PathFact};
use crate::packages::{Packages, Source};
use crate::tree::GuestTree;
use serde::Serialize;
use vhdprep_fs::FileKind;

/// Where tools are looked for, in `PATH` order.
pub const BIN_DIRS: [&str; 6] = [
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
];
/// The tools the agents call (waagent `osutil`, cloud-init `cc_disk_setup`, `cc_set_passwords`).
pub const TOOLS: [&str; 11] = [
    "openssl",
    "ssh-keygen",
    "sfdisk",
    "fdisk",
    "mkfs",
    "parted",
    "chpasswd",
    "sudo",
    "sed",
    "grep",
    "ip",
];
/// Python interpreters, in the order they are looked for.
pub const INTERPRETERS: [&str; 7] = [
    "/usr/bin/python3",
    "/usr/bin/python",
    "/usr/libexec/platform-python",
    "/usr/bin/python2",
    "/usr/local/bin/python3",
    "/usr/local/bin/python",
    "/usr/share/oem/python/bin/python3",
];
/// Agent entry scripts whose `#!` interpreter must exist.
pub const AGENT_SCRIPTS: [&str; 6] = [
    "/usr/sbin/waagent",
    "/usr/bin/waagent",
    "/usr/local/sbin/waagent",
    "/usr/share/oem/bin/waagent",
    "/usr/bin/cloud-init",
    "/usr/local/bin/cloud-init",
];
/// The packages whose versions are recorded: the Debian name (the role the facts report it
/// under), then the names other families give it (Red Hat, SUSE, Azure Linux), the first
/// installed one counting.
pub const PACKAGES: [(&str, &[&str]); 12] = [
    (
        "openssl",
        &[
            "openssl",
            "openssl-libs",
            "openssl-3",
            "openssl-1_1",
            "libopenssl3",
            "libopenssl1_1",
        ],
    ),
    ("openssh-server", &["openssh-server", "openssh"]),
    ("python3", &["python3", "python3-base"]),
    ("hyperv-daemons", &["hyperv-daemons", "hyper-v"]),
    ("network-manager", &["network-manager", "NetworkManager"]),
    ("chrony", &["chrony"]),
    ("util-linux", &["util-linux"]),
    ("e2fsprogs", &["e2fsprogs"]),
    ("parted", &["parted"]),
    ("sudo", &["sudo"]),
    ("iproute2", &["iproute2", "iproute"]),
    ("fdisk", &["fdisk"]),
];
/// Largest script whose first line is read (agent entry scripts are a few KiB).
const SCRIPT_LIMIT: u64 = 1 << 20;

/// A tool and where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tool {
    /// Command name.
    pub name: String,
    /// The first of [`BIN_DIRS`] that has it (links followed to a regular file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A Python interpreter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interpreter {
    /// The path looked up (`/usr/bin/python3`).
    pub path: PathFact,
    /// Where its links lead (`/usr/bin/python3.11`).
    pub resolved: String,
    /// `major.minor` from the resolved name (`3.11`), when it carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The `#!` line of an agent script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shebang {
    /// The script.
    pub script: String,
    /// The interpreter it names (for `/usr/bin/env python3`: `python3`, looked up in
    /// [`BIN_DIRS`]).
    pub interpreter: String,
    /// Where the interpreter was found, if anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// The line.
    pub evidence: LineRef,
}

/// An installed package and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageVersion {
    /// The role, by its Debian name ([`PACKAGES`]: `openssl`, `openssh-server` ...).
    pub name: String,
    /// The installed package filling it (`openssl-libs` on Red Hat).
    pub package: String,
    /// Version as the database writes it (`3.0.22-1~deb12u2`, `1:9.2p1-2`, `8.7p1-34.el9`).
    pub version: String,
    /// The database.
    pub source: Source,
    /// The database's guest path.
    pub path: String,
    /// dpkg: the 1-based line of the `Package:` field.
    pub line: Option<usize>,
}

impl PackageVersion {
    /// The evidence as reports print it: `/var/lib/dpkg/status:12: Package: openssl Version:
    /// 3.0.17-1`, `/var/lib/rpm/rpmdb.sqlite: openssl-libs 1:3.0.7-27.el9`.
    pub fn evidence_text(&self) -> String {
        match self.line {
            Some(l) => format!(
                "{}:{l}: Package: {} Version: {}",
                self.path, self.package, self.version
            ),
            None => format!("{}: {} {}", self.path, self.package, self.version),
        }
    }
}

/// Run-time dependency evidence.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuntimeFacts {
    /// Every tool of [`TOOLS`], found or not.
    pub tools: Vec<Tool>,
    /// Python interpreters present.
    pub interpreters: Vec<Interpreter>,
    /// `#!` lines of the agent scripts present.
    pub shebangs: Vec<Shebang>,
    /// A package database (dpkg or rpm) was read.
    pub packages_read: bool,
    /// Installed versions of [`PACKAGES`].
    pub packages: Vec<PackageVersion>,
}

impl RuntimeFacts {
    /// The tool `name`, if it was found.
    pub fn tool(&self, name: &str) -> Option<&str> {
        self.tools
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.path.as_deref())
    }

    /// The installed version of package `name`.
    pub fn package(&self, name: &str) -> Option<&PackageVersion> {
        self.packages.iter().find(|p| p.name == name)
    }
}

fn is_file(g: &GuestTree, path: &str) -> bool {
    g.metadata(path.as_bytes())
        .is_ok_and(|m| m.kind == FileKind::File)
}

/// The first of [`BIN_DIRS`] holding `name` as a (linked-to) regular file.
fn which(g: &GuestTree, name: &str) -> Option<String> {
    if name.is_empty() || name.contains('/') {
        return None;
    }
    BIN_DIRS
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| is_file(g, p))
}

/// `3.11` from `/usr/bin/python3.11`, `2.7` from `python2.7`.
fn python_version(resolved: &str) -> Option<String> {
    let name = resolved.rsplit('/').next()?;
    let v = name.strip_prefix("python")?;
    let mut parts = v.split('.');
    let major = parts.next().filter(|p| !p.is_empty())?;
    let minor = parts.next()?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (ok(major) && ok(minor)).then(|| format!("{major}.{minor}"))
}

fn shebang(g: &GuestTree, script: &str) -> Option<Shebang> {
    let m = g.metadata(script.as_bytes()).ok()?;
    if m.kind != FileKind::File || m.size > SCRIPT_LIMIT {
        return None;
    }
    let bytes = g.read_file(script.as_bytes(), SCRIPT_LIMIT).ok()?;
    let first = bytes.split(|b| *b == b'\n').next()?;
    let line = String::from_utf8_lossy(first);
    let rest = line.strip_prefix("#!")?.trim();
    let mut words = rest.split_whitespace();
    let prog = words.next()?;
    let (interpreter, found) = if prog.rsplit('/').next() == Some("env") {
        let name = words.find(|w| !w.starts_with('-'))?.to_string();
        let found = which(g, &name);
        (name, found)
    } else {
        let found = is_file(g, prog).then(|| prog.to_string());
        (prog.to_string(), found)
    };
    Some(Shebang {
        script: script.to_string(),
        interpreter,
        found,
        evidence: line_ref(script, 1, &line),
    })
}

/// The installed versions of [`PACKAGES`].
fn package_versions(packages: &Packages) -> Vec<PackageVersion> {
    PACKAGES
        .iter()
        .filter_map(|(role, names)| {
            let p = packages.first_of(names)?;
            Some(PackageVersion {
                name: role.to_string(),
                package: p.name.clone(),
                version: p.version.clone(),
                source: p.source,
                path: p.path.clone(),
                line: p.line,
            })
        })
        .collect()
}

/// Gathers [`RuntimeFacts`] (`packages`: the guest's package database).
pub fn gather(g: &GuestTree, packages: &Packages) -> RuntimeFacts {
    let mut f = RuntimeFacts {
        tools: TOOLS
            .iter()
            .map(|t| Tool {
                name: t.to_string(),
                path: which(g, t),
            })
            .collect(),
        ..Default::default()
    };
    let mut seen = std::collections::BTreeSet::new();
    for p in INTERPRETERS {
        if !is_file(g, p) {
            continue;
        }
        let resolved = g.canonical(p.as_bytes()).unwrap_or_else(|_| p.to_string());
        if !seen.insert(resolved.clone()) {
            continue;
        }
        if let Some(path) = stat(g, p) {
            f.interpreters.push(Interpreter {
                path,
                version: python_version(&resolved),
                resolved,
            });
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in AGENT_SCRIPTS {
        // /usr/sbin/waagent and /usr/bin/waagent are one file on some merged-/usr layouts.
        let canon = g.canonical(s.as_bytes()).unwrap_or_else(|_| s.to_string());
        if seen.insert(canon) {
            f.shebangs.extend(shebang(g, s));
        }
    }
    f.packages_read = packages.read_any();
    f.packages = package_versions(packages);
    f
}

#[cfg(test)]
mod tests {
    use super::super::testutil::tree;
    use super::*;

    #[test]
    fn interpreters_shebangs_tools_packages() {
        let status = "Package: openssl\nStatus: install ok installed\nVersion: 3.0.22-1~deb12u2\n\n\
                      Package: chrony\nStatus: deinstall ok config-files\nVersion: 4.3-2\n\n\
                      Package: openssh-server\nStatus: install ok installed\nPriority: optional\nVersion: 1:9.2p1-2+deb12u7\n";
        let g = tree(
            &[
                ("/usr/bin/python3.11", "\x7fELF"),
                ("/usr/sbin/waagent", "#!/usr/bin/python3\nimport x\n"),
                ("/usr/bin/cloud-init", "#! /usr/bin/env -S python3.9 -u\n"),
                ("/usr/bin/sed", "\x7fELF"),
                ("/usr/bin/ip", "\x7fELF"),
                ("/var/lib/dpkg/status", status),
            ],
            &[
                ("/usr/bin/python3", "python3.11"),
                ("/usr/sbin/ip", "/usr/bin/ip"),
                ("/usr/bin/grep", "missing-target"),
            ],
        );
        let f = gather(&g, &Packages::gather(&g, crate::Family::Debian));
        assert_eq!(f.interpreters.len(), 1);
        assert_eq!(f.interpreters[0].resolved, "/usr/bin/python3.11");
        assert_eq!(f.interpreters[0].version.as_deref(), Some("3.11"));
        assert_eq!(f.shebangs.len(), 2);
        assert_eq!(f.shebangs[0].interpreter, "/usr/bin/python3");
        assert_eq!(f.shebangs[0].found.as_deref(), Some("/usr/bin/python3"));
        assert_eq!(f.shebangs[1].interpreter, "python3.9");
        assert!(f.shebangs[1].found.is_none());
        assert_eq!(f.tool("ip"), Some("/usr/sbin/ip"));
        assert_eq!(f.tool("sed"), Some("/usr/bin/sed"));
        assert_eq!(f.tool("grep"), None, "a dangling link is not a tool");
        assert_eq!(f.tool("sudo"), None);
        assert!(f.packages_read);
        assert_eq!(f.package("openssl").unwrap().version, "3.0.22-1~deb12u2");
        assert_eq!(f.package("openssl").unwrap().line, Some(1));
        assert_eq!(
            f.package("openssh-server").unwrap().evidence_text(),
            "/var/lib/dpkg/status:9: Package: openssh-server Version: 1:9.2p1-2+deb12u7"
        );
        assert_eq!(
            f.package("openssh-server").unwrap().version,
            "1:9.2p1-2+deb12u7"
        );
        assert!(f.package("chrony").is_none(), "config-files only");
    }

    #[test]
    fn nothing_and_garbage() {
        let g = tree(
            &[
                ("/usr/sbin/waagent", "no shebang"),
                ("/usr/bin/cloud-init", "#!\n"),
                ("/var/lib/dpkg/status", "Package:\nVersion\n\n\n:::\n"),
            ],
            &[],
        );
        let f = gather(&g, &Packages::gather(&g, crate::Family::Unknown));
        assert!(f.interpreters.is_empty() && f.shebangs.is_empty());
        assert!(f.tools.iter().all(|t| t.path.is_none()));
        assert!(f.packages_read && f.packages.is_empty());
        assert_eq!(python_version("/usr/bin/python"), None);
        assert_eq!(python_version("/usr/bin/python3.x"), None);
        assert_eq!(python_version("/usr/bin/python2.7"), Some("2.7".into()));
    }

    #[test]
    fn packages_by_their_red_hat_and_suse_names() {
        use crate::packages::rpm::{RpmBackend, RpmDatabase, RpmPackage};
        let pkg = |name: &str, epoch, version: &str, release: &str| RpmPackage {
            name: name.into(),
            epoch,
            version: version.into(),
            release: release.into(),
            arch: Some("x86_64".into()),
            install_time: None,
            files: vec![],
        };
        let db = RpmDatabase {
            backend: RpmBackend::Ndb,
            path: "/usr/lib/sysimage/rpm/Packages.db".into(),
            packages: vec![
                pkg("libopenssl3", None, "3.1.4", "150600.5.15.1"),
                pkg("openssh-server", None, "9.6p1", "150600.6.15.2"),
                pkg("python3-base", None, "3.6.15", "150300.10.72.1"),
                pkg("iproute2", None, "6.4", "150600.7.3.1"),
                pkg("NetworkManager", Some(1), "1.38.6", "150500.3.3.1"),
            ],
            skipped: 0,
            notes: vec![],
        };
        let packages = Packages::from_databases(None, Some(Ok(db)), crate::Family::Suse);
        let f = gather(&tree(&[], &[]), &packages);
        assert!(f.packages_read);
        let roles: Vec<(&str, &str, &str)> = f
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.package.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            roles,
            vec![
                ("openssl", "libopenssl3", "3.1.4-150600.5.15.1"),
                ("openssh-server", "openssh-server", "9.6p1-150600.6.15.2"),
                ("python3", "python3-base", "3.6.15-150300.10.72.1"),
                ("network-manager", "NetworkManager", "1:1.38.6-150500.3.3.1"),
                ("iproute2", "iproute2", "6.4-150600.7.3.1"),
            ]
        );
        let ssl = f.package("openssl").unwrap();
        assert_eq!((ssl.source, ssl.line), (Source::RpmNdb, None));
        assert_eq!(
            ssl.evidence_text(),
            "/usr/lib/sysimage/rpm/Packages.db: libopenssl3 3.1.4-150600.5.15.1"
        );
    }
}
