//! System facts: the evidence the generalization (GEN-xxx), system (SYS-xxx) and network
//! (NET-xxx) rules are judged on, gathered offline from the assembled [`GuestTree`].
//!
//! Evidence only: each item names the guest path (and the 1-based line where it comes from a
//! line of a file); deciding whether it is good or bad is `check`'s job.
//!
//! - [`generalization`]: leftovers of a previous boot or provisioning (waagent and cloud-init
//!   state, logs, leases, host keys, hostname, resolv.conf, machine-id, persistent net rules).
//! - [`users`]: login users, shadow password fields, sudoers grants, authorized_keys, histories.
//! - [`ssh`]: the sshd binary, its enablement and the effective values of the settings Azure
//!   cares about, read the way OpenSSH reads them.
//! - [`swap`]: swap in fstab, swap files, systemd swap units.
//! - [`network`]: NIC configuration in every format the rules know, SR-IOV unmanaged rules,
//!   firewall lines that mention the Azure platform addresses.
//! - [`services`]: time sync, Hyper-V daemons, and the small systemd enablement helper.
//! - [`runtime`]: what the agents need at run time: Python, OpenSSL, OpenSSH, system tools.
//! - [`selinux`]: SELinux mode and policy type, whether that policy is installed, a pending
//!   `/.autorelabel`.
//!
//! Every read is bounded ([`CONFIG_LIMIT`] per configuration file; history files are only
//! stat'ed, keys only counted), directory listings are capped, and malformed files yield
//! partial evidence, never a panic.

pub mod generalization;
pub mod network;
pub mod runtime;
pub mod selinux;
pub mod services;
pub mod ssh;
pub mod swap;
pub mod users;

use crate::assemble::FstabMount;
use crate::packages::Packages;
use crate::tree::GuestTree;
use serde::Serialize;
use vhdprep_fs::FileKind;

pub use generalization::GeneralizationFacts;
pub use network::NetworkFacts;
pub use runtime::RuntimeFacts;
pub use selinux::SelinuxFacts;
pub use services::{ServicesFacts, UnitState};
pub use ssh::SshFacts;
pub use swap::SwapFacts;
pub use users::UsersFacts;

/// Largest configuration file read (bigger ones are reported as unreadable, not read).
pub const CONFIG_LIMIT: u64 = 4 << 20;
/// Most entries considered in one directory listing.
pub const MAX_LISTED: usize = 4096;
/// Most lines considered in one file.
pub const MAX_LINES: usize = 200_000;
/// Longest line text kept as evidence (characters).
const SNIPPET: usize = 200;

/// Everything this module gathers about one guest.
#[derive(Debug, Clone, Serialize)]
pub struct SystemFacts {
    /// GEN-xxx evidence.
    pub generalization: GeneralizationFacts,
    /// Users, credentials, histories (SYS-009, SYS-010, GEN-008, GEN-009, GEN-014, GEN-018).
    pub users: UsersFacts,
    /// SSH server (SYS-001, SYS-002).
    pub ssh: SshFacts,
    /// Swap on the OS disk (SYS-003).
    pub swap: SwapFacts,
    /// Network configuration (NET-001, NET-002, NET-004, NET-006, GEN-015).
    pub network: NetworkFacts,
    /// Time sync and Hyper-V daemons (SYS-006, SYS-007).
    pub services: ServicesFacts,
    /// Agent run-time dependencies (SYS-008).
    pub runtime: RuntimeFacts,
    /// SELinux mode, policy and a pending relabel (SYS-013).
    pub selinux: SelinuxFacts,
}

/// Gathers the system facts of `guest`; `fstab` is the assembled fstab (for swap entries and
/// the volumes they resolve to), `packages` the guest's package database.
pub fn system_facts(guest: &GuestTree, fstab: &[FstabMount], packages: &Packages) -> SystemFacts {
    let users = users::gather(guest);
    let network = network::gather(guest);
    SystemFacts {
        generalization: generalization::gather(guest, &network),
        ssh: ssh::gather(guest),
        swap: swap::gather(guest, fstab),
        services: services::gather(guest),
        runtime: runtime::gather(guest, packages),
        selinux: selinux::gather(guest),
        users,
        network,
    }
}

/// One object in the guest, as `lstat` sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathFact {
    /// Guest path.
    pub path: String,
    /// What it is (a symbolic link is not followed).
    pub kind: FileKind,
    /// Size in bytes (for a link: the target's length).
    pub size: u64,
    /// Link target, for symbolic links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl PathFact {
    /// True when the path masks what it names, the way systemd and udev read it: a link to
    /// `/dev/null` or an empty regular file.
    pub fn is_mask(&self) -> bool {
        match self.kind {
            FileKind::Symlink => self.target.as_deref() == Some("/dev/null"),
            FileKind::File => self.size == 0,
            _ => false,
        }
    }
}

/// A line of a file, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineRef {
    /// Guest path.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// The line, trimmed (and cut at 200 characters).
    pub text: String,
}

/// A value read from a file, with its line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Value {
    /// The value as written (one level of quotes removed).
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// `lstat` of `path`, or `None` when it does not exist or cannot be resolved.
pub(crate) fn stat(g: &GuestTree, path: &str) -> Option<PathFact> {
    let m = g.symlink_metadata(path.as_bytes()).ok()?;
    let target = if m.kind == FileKind::Symlink {
        g.read_link(path.as_bytes())
            .ok()
            .map(|t| String::from_utf8_lossy(&t).into_owned())
    } else {
        None
    };
    Some(PathFact {
        path: path.to_string(),
        kind: m.kind,
        size: m.size,
        target,
    })
}

/// The text of a regular file (links followed), at most [`CONFIG_LIMIT`] bytes, lossily
/// decoded.
pub(crate) fn read_text(g: &GuestTree, path: &str) -> Option<String> {
    let m = g.metadata(path.as_bytes()).ok()?;
    if m.kind != FileKind::File || m.size > CONFIG_LIMIT {
        return None;
    }
    g.read_file(path.as_bytes(), CONFIG_LIMIT)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Names in a directory (links to it followed), sorted, at most [`MAX_LISTED`]; empty when
/// it is not a readable directory. Names that are not UTF-8 are skipped (no rule's path has
/// them).
pub(crate) fn list(g: &GuestTree, dir: &str) -> Vec<(String, FileKind)> {
    let Ok(entries) = g.read_dir(dir.as_bytes()) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|e| String::from_utf8(e.name).ok().map(|n| (n, e.kind)))
        .filter(|(n, _)| n != "." && n != ".." && !n.is_empty() && !n.contains('/'))
        .take(MAX_LISTED)
        .collect()
}

/// `dir/name`.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Numbered lines (1-based), at most [`MAX_LINES`].
pub(crate) fn numbered(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .take(MAX_LINES)
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// A [`LineRef`] for `line` of `path`.
pub(crate) fn line_ref(path: &str, line: usize, text: &str) -> LineRef {
    LineRef {
        path: path.to_string(),
        line,
        text: text.trim().chars().take(SNIPPET).collect(),
    }
}

/// Strips one level of matching single or double quotes.
pub(crate) fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// Shell-style `KEY=value` assignments (ifcfg, sysconfig, rc.conf): key → value and line;
/// the last assignment wins, as when the file is sourced.
pub(crate) fn shell_vars(text: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for (n, l) in numbered(text) {
        let l = l.trim();
        let l = l.strip_prefix("export ").unwrap_or(l);
        if l.starts_with('#') {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let v = v.trim();
        // A trailing comment after an unquoted value.
        let v = if v.starts_with('"') || v.starts_with('\'') {
            v.rsplit_once(['"', '\'']).map_or(v, |(head, _)| head)
        } else {
            v.split(" #").next().unwrap_or(v)
        };
        let val = Value {
            value: unquote(v.trim_start_matches(['"', '\''])),
            line: n,
        };
        out.retain(|(key, _)| key != k);
        out.push((k.to_string(), val));
    }
    out
}

/// The value of `key` in [`shell_vars`] output (case-sensitive, as the shell is).
pub(crate) fn var<'a>(vars: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    vars.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Shell-glob match of `name` against `pattern` with `*` and `?` (no classes).
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Entries of `dir` whose name matches `pattern` (hidden names only when the pattern starts
/// with a dot, as glob(3)), as guest paths sorted by name.
pub(crate) fn glob_dir(g: &GuestTree, dir: &str, pattern: &str) -> Vec<String> {
    list(g, dir)
        .into_iter()
        .filter(|(n, _)| {
            (!n.starts_with('.') || pattern.starts_with('.')) && glob_match(pattern, n)
        })
        .map(|(n, _)| join(dir, &n))
        .collect()
}

#[cfg(test)]
pub(crate) mod testutil {
    use crate::tree::memfs::MemFs;
    use crate::tree::GuestTree;
    use std::sync::Arc;

    /// A MemFs tree with every parent directory created; a file path ending in `/` is a
    /// directory.
    pub fn tree(files: &[(&str, &str)], links: &[(&str, &str)]) -> GuestTree {
        let mut fs = MemFs::default().dir("/");
        let mut dirs = std::collections::BTreeSet::new();
        for p in files.iter().map(|f| f.0).chain(links.iter().map(|l| l.0)) {
            let mut acc = String::new();
            let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
            for c in &parts[..parts.len().saturating_sub(1)] {
                acc.push('/');
                acc.push_str(c);
                dirs.insert(acc.clone());
            }
        }
        for d in &dirs {
            fs = fs.dir(d);
        }
        for (p, c) in files {
            if p.ends_with('/') {
                fs = fs.dir(p.trim_end_matches('/'));
            } else {
                fs = fs.file(p, c);
            }
        }
        for (p, t) in links {
            fs = fs.link(p, t);
        }
        GuestTree::new(Arc::new(fs), "test")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_trees_yield_partial_facts() {
        let huge = "ClientAliveInterval 1\n".repeat(300_000); // > CONFIG_LIMIT
        let g = testutil::tree(
            &[
                ("/etc/ssh/sshd_config.d/x.conf", &huge),
                ("/etc/shadow", "\u{0}\u{ffff}root:$6$a$b\n"),
                ("/var/lib/cloud/seed/", ""),
                ("/etc/netplan/a.yaml", &"- ".repeat(50_000)),
            ],
            &[
                ("/etc/ssh/sshd_config", "/etc/ssh/sshd_config"),
                ("/etc/passwd", "/etc/passwd2"),
                ("/etc/passwd2", "/etc/passwd"),
                ("/var/lib/waagent", "/var/lib/waagent"),
                ("/home", "../../../../home"),
                ("/etc/machine-id", "/proc/self/root/etc/machine-id"),
                (
                    "/etc/resolv.conf",
                    "../run/systemd/resolve/stub-resolv.conf",
                ),
                ("/root", "/"),
                (
                    "/etc/systemd/system/multi-user.target.wants",
                    "/etc/systemd/system",
                ),
            ],
        );
        let f = system_facts(&g, &[], &Packages::default());
        assert!(!f.ssh.config_read && f.ssh.client_alive_interval.source.is_none());
        assert!(!f.users.passwd_read);
        assert!(
            f.users.root_password.is_none(),
            "root is not first on its line"
        );
        assert!(f
            .generalization
            .leftovers
            .iter()
            .all(|l| l.rule != "GEN-001"));
        let mid = f.generalization.machine_id.as_ref().unwrap();
        assert_eq!(mid.file.kind, FileKind::Symlink);
        assert_eq!(
            mid.value,
            generalization::MachineIdValue::Unreadable,
            "never the host's machine-id"
        );
        serde_json::to_string(&f).unwrap();
        // Oversized configuration files are not read.
        let big = testutil::tree(&[("/etc/ssh/sshd_config", &huge)], &[]);
        assert!(read_text(&big, "/etc/ssh/sshd_config").is_none());
    }

    #[test]
    fn glob_and_shell_vars() {
        assert!(glob_match("*.conf", "50-x.conf"));
        assert!(!glob_match("*.conf", "50-x.conf.bak"));
        assert!(glob_match("ifcfg-*", "ifcfg-eth0"));
        assert!(glob_match("a?c*", "abcdef"));
        assert!(!glob_match("a?c", "ac"));
        let v = shell_vars(
            "# c\nBOOTPROTO=static\nBOOTPROTO='dhcp' # x\nONBOOT=yes #c\nbad line\n=x\nX=\"a b\"\n",
        );
        assert_eq!(var(&v, "BOOTPROTO").unwrap().value, "dhcp");
        assert_eq!(var(&v, "BOOTPROTO").unwrap().line, 3);
        assert_eq!(var(&v, "ONBOOT").unwrap().value, "yes");
        assert_eq!(var(&v, "X").unwrap().value, "a b");
    }
}
