//! Users and credentials: `/etc/passwd`, `/etc/shadow`, the sudoers drop-ins the provisioning
//! agents write, `authorized_keys`, shell histories (SYS-009, SYS-010, GEN-008, GEN-009,
//! GEN-014, GEN-018). Hashes and key bodies are never kept.

use super::{join, line_ref, list, numbered, read_text, stat, LineRef};
use crate::tree::GuestTree;
use serde::Serialize;
use vhdprep_fs::FileKind;

/// Lowest UID of a regular (non-system) user (login.defs `UID_MIN`).
pub const UID_MIN: u32 = 1000;
/// UIDs from here on are not regular users (`nobody`, systemd dynamic users).
pub const UID_END: u32 = 60000;
/// The first line `waagent -deprovision` writes to `/etc/shadow` (DeleteRootPassword=y).
pub const WAAGENT_ROOT_LOCK: &str = "root:*LOCK*:14600::::::";
/// History files looked for in each home (only stat'ed).
pub const HISTORY_FILES: [&str; 6] = [
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".mysql_history",
    ".lesshst",
    ".sh_history",
];
/// Sudoers drop-ins the provisioning agents write.
pub const AGENT_SUDOERS: [&str; 2] = [
    "/etc/sudoers.d/waagent",
    "/etc/sudoers.d/90-cloud-init-users",
];
/// Most users or shadow entries kept.
const MAX_USERS: usize = 10_000;

/// A regular user from `/etc/passwd` (UID_MIN ≤ uid < UID_END).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginUser {
    /// Login name.
    pub name: String,
    /// UID.
    pub uid: u32,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
    /// Whether the home directory exists in the image.
    pub home_exists: bool,
    /// Line in `/etc/passwd`.
    pub line: usize,
}

/// What the password field of a shadow entry allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PasswordField {
    /// A crypt hash a password can match (`$6$`, `$y$`, DES ...).
    Usable {
        /// `$6$`, `$y$`, `$2b$` ..., or `des`/`bsdi`.
        scheme: String,
    },
    /// Locked (`*`, `!`, `!!`, `*LOCK*`, `!*`, or `!` before a hash).
    Locked,
    /// Empty: login without a password (where PAM allows it).
    Empty,
    /// Something no password can match (`x`, garbage): effectively locked.
    Invalid,
}

impl PasswordField {
    /// Classifies a shadow password field.
    pub fn classify(field: &str) -> PasswordField {
        if field.is_empty() {
            return PasswordField::Empty;
        }
        if field.starts_with('!') || field.starts_with('*') {
            return PasswordField::Locked;
        }
        if let Some(rest) = field.strip_prefix('$') {
            if let Some((id, tail)) = rest.split_once('$') {
                if !id.is_empty()
                    && id.len() <= 8
                    && id.chars().all(|c| c.is_ascii_alphanumeric())
                    && !tail.is_empty()
                {
                    return PasswordField::Usable {
                        scheme: format!("${id}$"),
                    };
                }
            }
            return PasswordField::Invalid;
        }
        let crypt64 = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
        if field.len() == 13 && field.chars().all(crypt64) {
            return PasswordField::Usable {
                scheme: "des".into(),
            };
        }
        if field.len() == 20 && field.starts_with('_') && field[1..].chars().all(crypt64) {
            return PasswordField::Usable {
                scheme: "bsdi".into(),
            };
        }
        PasswordField::Invalid
    }
}

/// One `/etc/shadow` entry, without its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShadowEntry {
    /// Login name.
    pub name: String,
    /// What the password field allows.
    pub password: PasswordField,
    /// Line in `/etc/shadow`.
    pub line: usize,
}

/// A user named in an agent's sudoers drop-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SudoersGrant {
    /// The user (first word of the line).
    pub user: String,
    /// Whether `/etc/passwd` still has that user.
    pub user_exists: bool,
    /// The line.
    pub evidence: LineRef,
}

/// An `authorized_keys` file (keys counted, never copied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizedKeys {
    /// Guest path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Non-empty, non-comment lines (`None` when it could not be read).
    pub keys: Option<usize>,
}

/// A history file (stat'ed only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryFile {
    /// Guest path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// Users and credentials.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UsersFacts {
    /// `/etc/passwd` was read.
    pub passwd_read: bool,
    /// Regular users.
    pub login_users: Vec<LoginUser>,
    /// `/etc/shadow` was read.
    pub shadow_read: bool,
    /// Every shadow entry, classified.
    pub shadow: Vec<ShadowEntry>,
    /// root's (first) entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_password: Option<ShadowEntry>,
    /// The first shadow line is exactly [`WAAGENT_ROOT_LOCK`] (waagent deprovision signature).
    pub waagent_root_lock: bool,
    /// Users granted sudo in [`AGENT_SUDOERS`].
    pub agent_sudoers: Vec<SudoersGrant>,
    /// `authorized_keys(2)` under `/root/.ssh`, `/home/*/.ssh` and login users' homes.
    pub authorized_keys: Vec<AuthorizedKeys>,
    /// History files in those homes.
    pub histories: Vec<HistoryFile>,
}

struct PasswdLine {
    name: String,
    uid: u32,
    home: String,
    shell: String,
    line: usize,
}

fn parse_passwd(text: &str) -> Vec<PasswdLine> {
    let mut out = Vec::new();
    for (n, l) in numbered(text) {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 || f[0].is_empty() || f[0].starts_with('#') || f[0].starts_with('+') {
            continue;
        }
        let Ok(uid) = f[2].trim().parse::<u32>() else {
            continue;
        };
        out.push(PasswdLine {
            name: f[0].to_string(),
            uid,
            home: f[5].to_string(),
            shell: f[6].trim_end().to_string(),
            line: n,
        });
        if out.len() >= MAX_USERS {
            break;
        }
    }
    out
}

/// Gathers [`UsersFacts`].
pub fn gather(g: &GuestTree) -> UsersFacts {
    let mut f = UsersFacts::default();
    let passwd = read_text(g, "/etc/passwd").map(|t| parse_passwd(&t));
    f.passwd_read = passwd.is_some();
    let passwd = passwd.unwrap_or_default();
    for p in &passwd {
        if (UID_MIN..UID_END).contains(&p.uid) {
            f.login_users.push(LoginUser {
                name: p.name.clone(),
                uid: p.uid,
                home: p.home.clone(),
                shell: p.shell.clone(),
                home_exists: g
                    .metadata(p.home.as_bytes())
                    .is_ok_and(|m| m.kind == FileKind::Dir),
                line: p.line,
            });
        }
    }
    if let Some(text) = read_text(g, "/etc/shadow") {
        f.shadow_read = true;
        f.waagent_root_lock = text.lines().next().map(str::trim_end) == Some(WAAGENT_ROOT_LOCK);
        for (n, l) in numbered(&text) {
            let mut parts = l.split(':');
            let (Some(name), Some(pw)) = (parts.next(), parts.next()) else {
                continue;
            };
            if name.is_empty() || name.starts_with('#') {
                continue;
            }
            let e = ShadowEntry {
                name: name.to_string(),
                password: PasswordField::classify(pw.trim()),
                line: n,
            };
            if name == "root" && f.root_password.is_none() {
                f.root_password = Some(e.clone());
            }
            if f.shadow.len() < MAX_USERS {
                f.shadow.push(e);
            }
        }
    }
    for path in AGENT_SUDOERS {
        let Some(text) = read_text(g, path) else {
            continue;
        };
        for (n, l) in numbered(&text) {
            let t = l.trim();
            if t.is_empty() || t.starts_with('#') || t.starts_with('@') {
                continue;
            }
            let Some(user) = t.split_whitespace().next() else {
                continue;
            };
            if user.starts_with('%')
                || user.starts_with("Defaults")
                || user.contains('=')
                || user.ends_with("_Alias")
            {
                continue;
            }
            f.agent_sudoers.push(SudoersGrant {
                user: user.to_string(),
                user_exists: passwd.iter().any(|p| p.name == user),
                evidence: line_ref(path, n, l),
            });
        }
    }
    // Homes: /root, every /home/* directory, every login user's home (deduplicated).
    let mut homes: Vec<String> = vec!["/root".into()];
    for (name, kind) in list(g, "/home") {
        if matches!(kind, FileKind::Dir | FileKind::Unknown | FileKind::Symlink) {
            homes.push(join("/home", &name));
        }
    }
    for u in &f.login_users {
        if u.home.starts_with('/') && u.home != "/" {
            homes.push(u.home.trim_end_matches('/').to_string());
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    homes.retain(|h| seen.insert(g.canonical(h.as_bytes()).unwrap_or_else(|_| h.clone())));
    for h in &homes {
        for k in ["authorized_keys", "authorized_keys2"] {
            let p = format!("{h}/.ssh/{k}");
            let Some(st) = stat(g, &p) else {
                continue;
            };
            let keys = read_text(g, &p).map(|t| {
                t.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .count()
            });
            f.authorized_keys.push(AuthorizedKeys {
                path: p,
                size: st.size,
                keys,
            });
        }
        for hf in HISTORY_FILES {
            let p = join(h, hf);
            if let Ok(m) = g.metadata(p.as_bytes()) {
                f.histories.push(HistoryFile {
                    path: p,
                    size: m.size,
                });
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::super::testutil::tree;
    use super::*;

    #[test]
    fn classify_password_fields() {
        use PasswordField::*;
        let u = |s: &str| Usable { scheme: s.into() };
        for (f, want) in [
            ("$6$salt$hash", u("$6$")),
            ("$y$j9T$salt$hash", u("$y$")),
            ("$2b$10$abc", u("$2b$")),
            ("$1$a$b", u("$1$")),
            ("$5$a$b", u("$5$")),
            ("abcdefghijklm", u("des")),
            ("*", Locked),
            ("!", Locked),
            ("!!", Locked),
            ("*LOCK*", Locked),
            ("!*", Locked),
            ("!$6$salt$hash", Locked),
            ("", Empty),
            ("x", Invalid),
            ("$", Invalid),
            ("$$", Invalid),
            ("$6$", Invalid),
        ] {
            assert_eq!(PasswordField::classify(f), want, "{f:?}");
        }
    }

    #[test]
    fn leftover_user_with_keys_sudoers_and_history() {
        let big = "ls -la\n".repeat(200);
        let g = tree(
            &[
                ("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nazureuser:x:1000:1000::/home/azureuser:/bin/bash\nghost:x:1001:1001::/home/ghost:/bin/sh\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\nbroken:x:notanumber:1::/:/bin/sh\nshort:x\n"),
                ("/etc/shadow", "root:$6$salt$hash:19000:0:99999:7:::\nazureuser:!:19000::::::\n"),
                ("/etc/sudoers.d/waagent", "azureuser ALL=(ALL) ALL\nolduser ALL=(ALL) NOPASSWD: ALL\n"),
                ("/etc/sudoers.d/90-cloud-init-users", "# Created by cloud-init\n\n# User rules for azureuser\nazureuser ALL=(ALL) NOPASSWD:ALL\n"),
                ("/home/azureuser/.ssh/authorized_keys", "# comment\nssh-rsa AAAA user@x\n\nssh-ed25519 AAAA y\n"),
                ("/home/azureuser/.bash_history", &big),
                ("/root/.bash_history", "ls\n"),
                ("/root/.lesshst", ".less-history-file:\n"),
            ],
            &[],
        );
        let f = gather(&g);
        assert_eq!(f.login_users.len(), 2);
        assert_eq!(f.login_users[0].name, "azureuser");
        assert!(f.login_users[0].home_exists);
        assert!(!f.login_users[1].home_exists, "ghost has no home");
        assert!(!f.waagent_root_lock);
        assert_eq!(
            f.root_password.as_ref().unwrap().password,
            PasswordField::Usable {
                scheme: "$6$".into()
            }
        );
        assert_eq!(f.shadow[1].password, PasswordField::Locked);
        let grants: Vec<(&str, bool, usize)> = f
            .agent_sudoers
            .iter()
            .map(|s| (s.user.as_str(), s.user_exists, s.evidence.line))
            .collect();
        assert_eq!(
            grants,
            vec![
                ("azureuser", true, 1),
                ("olduser", false, 2),
                ("azureuser", true, 4)
            ]
        );
        assert_eq!(f.authorized_keys.len(), 1);
        assert_eq!(f.authorized_keys[0].keys, Some(2));
        assert_eq!(
            f.authorized_keys[0].path,
            "/home/azureuser/.ssh/authorized_keys"
        );
        let h: Vec<(&str, u64)> = f
            .histories
            .iter()
            .map(|h| (h.path.as_str(), h.size))
            .collect();
        assert!(
            h.contains(&("/home/azureuser/.bash_history", 1400)),
            "{h:?}"
        );
        assert!(h.contains(&("/root/.bash_history", 3)));
        assert!(h.contains(&("/root/.lesshst", 20)));
        let json = serde_json::to_string(&f).unwrap();
        assert!(
            !json.contains("salt") && !json.contains("AAAA"),
            "no secrets"
        );
    }

    #[test]
    fn generalized_users() {
        let g = tree(
            &[
                ("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nsshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n"),
                ("/etc/shadow", "root:*LOCK*:14600::::::\nsshd:!:20089::::::\n"),
                ("/root/.ssh/", ""),
            ],
            &[],
        );
        let f = gather(&g);
        assert!(f.waagent_root_lock && f.login_users.is_empty());
        assert_eq!(f.root_password.unwrap().password, PasswordField::Locked);
        assert!(f.authorized_keys.is_empty() && f.histories.is_empty());
        assert!(f.agent_sudoers.is_empty());
    }

    #[test]
    fn malformed_and_missing() {
        let g = tree(
            &[
                ("/etc/passwd", ":::::::\n\u{0}\u{1}:x\nroot:x:0\n\n"),
                ("/etc/shadow", "garbage-without-colon\n:::\n"),
            ],
            &[("/home", "/home")],
        );
        let f = gather(&g);
        assert!(f.passwd_read && f.login_users.is_empty() && f.root_password.is_none());
        let empty = gather(&tree(&[("/etc/", "")], &[]));
        assert!(!empty.passwd_read && !empty.shadow_read);
    }
}
