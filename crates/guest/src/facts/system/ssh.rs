//! The SSH server: binary, enablement (SYS-001) and the effective `ClientAliveInterval`,
//! `PasswordAuthentication` and `PermitRootLogin` (SYS-002), read as `sshd -T` reads
//! `sshd_config` without connection parameters: keywords are case-insensitive, the first
//! value of a keyword wins, `Include` expands its globs (sorted; relative paths against
//! `/etc/ssh`) in place, and the lines after a `Match` (until `Match all` or the end of that
//! file) apply only to matching connections, so they are not part of the global values.

use super::services::{unit_state, UnitState};
use super::{glob_dir, line_ref, numbered, read_text, shell_vars, stat, var, LineRef, PathFact};
use crate::tree::GuestTree;
use serde::Serialize;

/// The main configuration file.
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";
/// OpenSSH's include depth limit.
const MAX_INCLUDE_DEPTH: usize = 16;
/// Most configuration files read in all.
const MAX_FILES: usize = 256;

/// An effective setting and where it comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The value's first word (lowercased for the yes/no keywords).
    pub value: String,
    /// The line that set it; `None` when it is OpenSSH's compiled-in default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<LineRef>,
}

/// SSH server evidence.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SshFacts {
    /// The sshd binary, where present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sshd_binary: Option<PathFact>,
    /// systemd units `ssh.service`, `sshd.service`, `ssh.socket`, `sshd.socket` that exist,
    /// are enabled or are masked.
    pub units: Vec<UnitState>,
    /// SysV start links `/etc/rc?.d/S*ssh*`.
    pub sysv_links: Vec<String>,
    /// FreeBSD `sshd_enable=` in `/etc/rc.conf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rc_conf_sshd_enable: Option<LineRef>,
    /// Configuration files read, in the order sshd reads them.
    pub config_files: Vec<String>,
    /// `/etc/ssh/sshd_config` exists and was read.
    pub config_read: bool,
    /// Effective `ClientAliveInterval` (default `0`), as written.
    pub client_alive_interval: Setting,
    /// The same in seconds (OpenSSH time format: `180`, `3m`, `1h30m`); `None` when invalid
    /// (sshd would refuse to start).
    pub client_alive_interval_seconds: Option<u64>,
    /// Effective `PasswordAuthentication` (default `yes`).
    pub password_authentication: Setting,
    /// Effective `PermitRootLogin` (default `prohibit-password`).
    pub permit_root_login: Setting,
    /// The first `Match` line (what follows it is connection-specific).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_match: Option<LineRef>,
    /// What could not be followed (missing include, depth, unreadable file).
    pub problems: Vec<String>,
}

const KEYS: [(&str, &str); 3] = [
    ("clientaliveinterval", "0"),
    ("passwordauthentication", "yes"),
    ("permitrootlogin", "prohibit-password"),
];

struct Parser<'a> {
    g: &'a GuestTree,
    found: [Option<Setting>; 3],
    files: Vec<String>,
    first_match: Option<LineRef>,
    problems: Vec<String>,
}

/// Splits a line into keyword and arguments (`Key value`, `Key=value`, `Key = value`).
fn split_keyword(line: &str) -> Option<(String, &str)> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let end = t
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(t.len());
    let key = t[..end].to_ascii_lowercase();
    let rest = t[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    Some((key, rest))
}

fn first_arg(rest: &str) -> String {
    let r = rest.trim();
    if let Some(q) = r.strip_prefix('"') {
        return q.split('"').next().unwrap_or("").to_string();
    }
    r.split_whitespace().next().unwrap_or("").to_string()
}

impl Parser<'_> {
    fn file(&mut self, path: &str, depth: usize) {
        if self.files.len() >= MAX_FILES {
            self.problems
                .push(format!("{path}: more than {MAX_FILES} configuration files"));
            return;
        }
        let Some(text) = read_text(self.g, path) else {
            if depth > 0 {
                self.problems
                    .push(format!("{path}: included but not a readable file"));
            }
            return;
        };
        self.files.push(path.to_string());
        let mut active = true;
        for (n, l) in numbered(&text) {
            let Some((key, rest)) = split_keyword(l) else {
                continue;
            };
            if key == "match" {
                if self.first_match.is_none() {
                    self.first_match = Some(line_ref(path, n, l));
                }
                active = rest.trim().eq_ignore_ascii_case("all");
                continue;
            }
            if !active {
                continue;
            }
            if key == "include" {
                if depth + 1 > MAX_INCLUDE_DEPTH {
                    self.problems
                        .push(format!("{path}:{n}: Include nested too deeply"));
                    continue;
                }
                for pat in rest.split_whitespace() {
                    let pat = pat.trim_matches('"');
                    let full = if pat.starts_with('/') {
                        pat.to_string()
                    } else {
                        format!("/etc/ssh/{pat}")
                    };
                    let (dir, name) = full.rsplit_once('/').unwrap_or(("/", &full));
                    let dir = if dir.is_empty() { "/" } else { dir };
                    if name.contains(['*', '?']) {
                        for p in glob_dir(self.g, dir, name) {
                            self.file(&p, depth + 1);
                        }
                    } else {
                        self.file(&full, depth + 1);
                    }
                }
                continue;
            }
            if let Some(i) = KEYS.iter().position(|(k, _)| *k == key) {
                if self.found[i].is_none() {
                    let mut value = first_arg(rest);
                    if i > 0 {
                        value = value.to_ascii_lowercase();
                    }
                    self.found[i] = Some(Setting {
                        value,
                        source: Some(line_ref(path, n, l)),
                    });
                }
            }
        }
    }
}

/// Converts an OpenSSH time value (`convtime`: numbers with optional `s`/`m`/`h`/`d`/`w`
/// qualifiers, summed) to seconds.
pub fn sshd_seconds(v: &str) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut num: Option<u64> = None;
    for c in v.chars() {
        if let Some(d) = c.to_digit(10) {
            num = Some(
                num.unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(d))?,
            );
            continue;
        }
        let mult = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(num.take()?.checked_mul(mult)?)?;
    }
    if let Some(n) = num {
        total = total.checked_add(n)?;
    }
    (total <= i32::MAX as u64).then_some(total)
}

/// Gathers [`SshFacts`].
pub fn gather(g: &GuestTree) -> SshFacts {
    let mut f = SshFacts {
        sshd_binary: [
            "/usr/sbin/sshd",
            "/usr/bin/sshd",
            "/sbin/sshd",
            "/usr/local/sbin/sshd",
        ]
        .iter()
        .find_map(|p| stat(g, p)),
        ..Default::default()
    };
    for u in ["ssh.service", "sshd.service", "ssh.socket", "sshd.socket"] {
        let s = unit_state(g, u);
        if s.file.is_some() || !s.wanted_by.is_empty() || s.masked {
            f.units.push(s);
        }
    }
    for r in ["0", "1", "2", "3", "4", "5", "6", "S"] {
        f.sysv_links
            .extend(glob_dir(g, &format!("/etc/rc{r}.d"), "S*ssh*"));
    }
    if let Some(text) = read_text(g, "/etc/rc.conf") {
        let vars = shell_vars(&text);
        if let Some(v) = var(&vars, "sshd_enable") {
            let line = text.lines().nth(v.line - 1).unwrap_or("");
            f.rc_conf_sshd_enable = Some(line_ref("/etc/rc.conf", v.line, line));
        }
    }
    let mut p = Parser {
        g,
        found: [None, None, None],
        files: Vec::new(),
        first_match: None,
        problems: Vec::new(),
    };
    p.file(SSHD_CONFIG, 0);
    f.config_read = p.files.first().map(String::as_str) == Some(SSHD_CONFIG);
    let mut settings = p.found.into_iter().enumerate().map(|(i, s)| {
        s.unwrap_or(Setting {
            value: KEYS[i].1.to_string(),
            source: None,
        })
    });
    f.client_alive_interval = settings.next().unwrap_or_default();
    f.client_alive_interval_seconds = sshd_seconds(&f.client_alive_interval.value);
    f.password_authentication = settings.next().unwrap_or_default();
    f.permit_root_login = settings.next().unwrap_or_default();
    f.config_files = p.files;
    f.first_match = p.first_match;
    f.problems = p.problems;
    f
}

#[cfg(test)]
mod tests {
    use super::super::testutil::tree;
    use super::*;

    #[test]
    fn include_order_first_value_wins_and_match_ignored() {
        let g = tree(
            &[
                (
                    "/etc/ssh/sshd_config",
                    "# main\nInclude /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\nclientaliveinterval 120\nMatch User bob\n  PermitRootLogin yes\n",
                ),
                ("/etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication no\n"),
                ("/etc/ssh/sshd_config.d/10-azure.conf", "ClientAliveInterval=180\n"),
                (
                    "/etc/ssh/sshd_config.d/99-late.conf",
                    "ClientAliveInterval 999\nPasswordAuthentication yes\n",
                ),
                ("/etc/ssh/sshd_config.d/README", "ClientAliveInterval 1\n"),
                ("/usr/sbin/sshd", "\x7fELF"),
                ("/lib/systemd/system/ssh.service", "[Unit]"),
            ],
            &[(
                "/etc/systemd/system/multi-user.target.wants/ssh.service",
                "/lib/systemd/system/ssh.service",
            )],
        );
        let f = gather(&g);
        assert!(f.sshd_binary.is_some() && f.config_read);
        assert_eq!(
            f.config_files,
            vec![
                "/etc/ssh/sshd_config",
                "/etc/ssh/sshd_config.d/10-azure.conf",
                "/etc/ssh/sshd_config.d/50-cloud-init.conf",
                "/etc/ssh/sshd_config.d/99-late.conf"
            ]
        );
        assert_eq!(f.client_alive_interval.value, "180");
        let src = f.client_alive_interval.source.as_ref().unwrap();
        assert_eq!(
            (src.path.as_str(), src.line),
            ("/etc/ssh/sshd_config.d/10-azure.conf", 1)
        );
        assert_eq!(f.password_authentication.value, "no");
        assert_eq!(f.permit_root_login.value, "prohibit-password");
        assert!(
            f.permit_root_login.source.is_none(),
            "only set inside Match"
        );
        assert_eq!(f.first_match.as_ref().unwrap().line, 5);
        assert!(f
            .units
            .iter()
            .any(|u| u.unit == "ssh.service" && u.enabled()));
    }

    #[test]
    fn time_values() {
        assert_eq!(sshd_seconds("180"), Some(180));
        assert_eq!(sshd_seconds("3m"), Some(180));
        assert_eq!(sshd_seconds("1h30M"), Some(5400));
        assert_eq!(sshd_seconds("1w2d"), Some(777_600));
        assert_eq!(sshd_seconds("m"), None);
        assert_eq!(sshd_seconds("-1"), None);
        assert_eq!(sshd_seconds("99999999999999999999999"), None);
        assert_eq!(sshd_seconds(""), None);
    }

    #[test]
    fn include_loops_and_missing_files_are_bounded() {
        let g = tree(
            &[(
                "/etc/ssh/sshd_config",
                "Include sshd_config\nInclude missing.conf\nPermitRootLogin No\n",
            )],
            &[],
        );
        let f = gather(&g);
        assert!(f.problems.iter().any(|p| p.contains("too deeply")));
        assert!(f.problems.iter().any(|p| p.contains("missing.conf")));
        assert_eq!(f.permit_root_login.value, "no");
        let none = gather(&tree(&[("/etc/", "")], &[]));
        assert!(!none.config_read && none.client_alive_interval.source.is_none());
        assert_eq!(none.password_authentication.value, "yes");
    }
}
