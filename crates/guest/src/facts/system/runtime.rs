//! What the provisioning agents need at run time (SYS-008): a Python interpreter (and the
//! one their scripts' `#!` lines name), OpenSSL, OpenSSH, and the system tools they call
//! (`sfdisk`, `parted`, `chpasswd`, `sudo`, `ip` ...), with package versions where the dpkg
//! database gives them cheaply. rpm databases (Berkeley DB, SQLite) are not read.

use super::{line_ref, numbered, stat, LineRef, PathFact};
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
/// dpkg packages whose versions are recorded.
pub const PACKAGES: [&str; 6] = [
    "openssl",
    "openssh-server",
    "python3",
    "hyperv-daemons",
    "network-manager",
    "chrony",
];
/// The dpkg database.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";
/// Largest dpkg status file read.
const DPKG_STATUS_LIMIT: u64 = 64 << 20;
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
    /// Package name.
    pub name: String,
    /// Version as the database writes it (`3.0.22-1~deb12u2`, `1:9.2p1-2`).
    pub version: String,
    /// The `Package:` line.
    pub evidence: LineRef,
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
    /// `/var/lib/dpkg/status` was read.
    pub dpkg_read: bool,
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

/// Versions of [`PACKAGES`] marked installed in the dpkg status file (one bounded pass).
fn dpkg_packages(g: &GuestTree) -> Option<Vec<PackageVersion>> {
    let m = g.metadata(DPKG_STATUS.as_bytes()).ok()?;
    if m.kind != FileKind::File || m.size > DPKG_STATUS_LIMIT {
        return None;
    }
    let bytes = g
        .read_file(DPKG_STATUS.as_bytes(), DPKG_STATUS_LIMIT)
        .ok()?;
    let text = String::from_utf8_lossy(&bytes);
    Some(parse_dpkg_status(&text))
}

/// Parses dpkg status text for [`PACKAGES`].
pub fn parse_dpkg_status(text: &str) -> Vec<PackageVersion> {
    let mut out: Vec<PackageVersion> = Vec::new();
    let (mut name, mut installed, mut version, mut start) = (None, false, None, 0);
    let mut flush =
        |name: &mut Option<&str>, installed: &mut bool, version: &mut Option<&str>, start| {
            if let (Some(n), Some(v), true) = (*name, *version, *installed) {
                if PACKAGES.contains(&n) && !out.iter().any(|p| p.name == n) {
                    out.push(PackageVersion {
                        name: n.to_string(),
                        version: v.to_string(),
                        evidence: line_ref(DPKG_STATUS, start, &format!("Package: {n}")),
                    });
                }
            }
            (*name, *installed, *version) = (None, false, None);
        };
    for (n, line) in numbered(text) {
        if line.trim().is_empty() {
            flush(&mut name, &mut installed, &mut version, start);
        } else if let Some(v) = line.strip_prefix("Package:") {
            name = Some(v.trim());
            start = n;
        } else if let Some(v) = line.strip_prefix("Status:") {
            installed = v.trim().ends_with(" installed");
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = Some(v.trim());
        }
    }
    flush(&mut name, &mut installed, &mut version, start);
    out
}

/// Gathers [`RuntimeFacts`].
pub fn gather(g: &GuestTree) -> RuntimeFacts {
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
    if let Some(p) = dpkg_packages(g) {
        f.dpkg_read = true;
        f.packages = p;
    }
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
        let f = gather(&g);
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
        assert!(f.dpkg_read);
        assert_eq!(f.package("openssl").unwrap().version, "3.0.22-1~deb12u2");
        assert_eq!(f.package("openssl").unwrap().evidence.line, 1);
        assert_eq!(
            f.package("openssh-server").unwrap().version,
            "1:9.2p1-2+deb12u7"
        );
        assert!(f.package("chrony").is_none(), "config-files only");
    }

    #[test]
    fn nothing_and_garbage() {
        let f = gather(&tree(
            &[
                ("/usr/sbin/waagent", "no shebang"),
                ("/usr/bin/cloud-init", "#!\n"),
                ("/var/lib/dpkg/status", "Package:\nVersion\n\n\n:::\n"),
            ],
            &[],
        ));
        assert!(f.interpreters.is_empty() && f.shebangs.is_empty());
        assert!(f.tools.iter().all(|t| t.path.is_none()));
        assert!(f.dpkg_read && f.packages.is_empty());
        assert_eq!(python_version("/usr/bin/python"), None);
        assert_eq!(python_version("/usr/bin/python3.x"), None);
        assert_eq!(python_version("/usr/bin/python2.7"), Some("2.7".into()));
    }
}
