//! systemd-boot's own configuration: `loader/loader.conf` on the ESP (`default`, `timeout`) and
//! the choice of the default entry among the Type #1 entries and unified kernel images, the way
//! systemd-boot makes it offline (no EFI variables): the first entry in menu order whose id
//! matches the `default` glob (case-insensitive), else the first entry.
//!
//! `loader.conf` has the line format of the entries ([`super::bls_entry`]): `key value`, `#`
//! comments. A `default` starting with `@` (`@saved`, `@current`) names an EFI variable and
//! cannot be resolved offline: the first entry is taken.

use serde::Serialize;

/// Most bytes of `loader.conf` read.
pub const MAX_LOADER_CONF: usize = 64 << 10;
/// Longest `default` pattern matched.
pub const MAX_PATTERN: usize = 256;

/// What `loader/loader.conf` says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoaderConf {
    /// `default`: a glob over entry ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// `timeout`, as written (`5`, `menu-force`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Other keys, in order.
    pub other: Vec<(String, String)>,
}

/// Parses `loader.conf` (at most [`MAX_LOADER_CONF`] bytes).
pub fn parse_loader_conf(data: &[u8]) -> LoaderConf {
    let data = &data[..data.len().min(MAX_LOADER_CONF)];
    let text = String::from_utf8_lossy(data);
    let mut c = LoaderConf::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once([' ', '\t']).unwrap_or((line, ""));
        let v = v.trim();
        let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            &v[1..v.len() - 1]
        } else {
            v
        };
        match k {
            "default" => c.default = Some(v.to_string()),
            "timeout" => c.timeout = Some(v.to_string()),
            _ if c.other.len() < 64 => c.other.push((k.to_string(), v.to_string())),
            _ => {}
        }
    }
    c
}

/// One bracket expression `[...]` at the start of `p` (after `[`): whether `c` matches and the
/// length of the expression; `None` when unterminated (then `[` is literal).
fn bracket(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = matches!(p.first(), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        let lo = p[i];
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if lo <= c && c <= p[i + 2] {
                hit = true;
            }
            i += 3;
        } else {
            if lo == c {
                hit = true;
            }
            i += 1;
        }
    }
    None
}

/// Glob match as systemd-boot's `efi_fnmatch`: `*`, `?`, `[...]` (with `!`/`^` and ranges),
/// `\` escapes. Linear backtracking over the last `*` (no exponential blow-up).
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().take(MAX_PATTERN).collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match bracket(&p[pi + 1..], t[ti]) {
                Some((true, n)) => Some(n + 1),
                Some((false, _)) => None,
                None => (t[ti] == '[').then_some(1),
            },
            Some('\\') if pi + 1 < p.len() => (p[pi + 1] == t[ti]).then_some(2),
            Some(&c) => (c == t[ti]).then_some(1),
            None => None,
        };
        match step {
            Some(n) => {
                pi += n;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The index of the default entry among `ids` (already in menu order): the first whose id
/// matches `conf.default` (case-insensitive), else 0; `None` when there are no entries.
pub fn default_index(conf: Option<&LoaderConf>, ids: &[&str]) -> Option<usize> {
    if ids.is_empty() {
        return None;
    }
    let pattern = conf
        .and_then(|c| c.default.as_deref())
        .filter(|p| !p.is_empty() && !p.starts_with('@'))
        .map(str::to_ascii_lowercase);
    Some(
        pattern
            .and_then(|p| {
                ids.iter()
                    .position(|id| fnmatch(&p, &id.to_ascii_lowercase()))
            })
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_conf_keys() {
        let c = parse_loader_conf(b"# x\ntimeout 3\ndefault \"debian-*\"\nconsole-mode max\n");
        assert_eq!(c.default.as_deref(), Some("debian-*"));
        assert_eq!(c.timeout.as_deref(), Some("3"));
        assert_eq!(c.other, [("console-mode".into(), "max".into())]);
    }

    #[test]
    fn glob_matching() {
        assert!(fnmatch("debian-*", "debian-6.1.0-13-amd64.conf"));
        assert!(fnmatch("*.efi", "debian-6.1.efi"));
        assert!(!fnmatch("*.efi", "debian-6.1.conf"));
        assert!(fnmatch("a?c", "abc"));
        assert!(fnmatch("[a-c]x", "bx"));
        assert!(!fnmatch("[!a-c]x", "bx"));
        assert!(fnmatch("\\*", "*"));
        assert!(!fnmatch("\\*", "a"));
        assert!(fnmatch("[", "["));
        assert!(fnmatch("*a*b*c*", "xxaxxbxxcxx"));
        // Many stars over a long non-matching text: linear, not exponential.
        let long = "a".repeat(10_000);
        assert!(!fnmatch(
            &"*a".repeat(100).to_string().replace("*a*a", "*a*b"),
            &long
        ));
    }

    #[test]
    fn default_entry_choice() {
        let ids = ["b.conf", "arch-2.efi", "arch-1.efi"];
        let conf = parse_loader_conf(b"default arch-*\n");
        assert_eq!(default_index(Some(&conf), &ids), Some(1));
        let conf = parse_loader_conf(b"default ARCH-1.EFI\n");
        assert_eq!(default_index(Some(&conf), &ids), Some(2));
        let conf = parse_loader_conf(b"default @saved\n");
        assert_eq!(default_index(Some(&conf), &ids), Some(0));
        let conf = parse_loader_conf(b"default nothing\n");
        assert_eq!(default_index(Some(&conf), &ids), Some(0));
        assert_eq!(default_index(None, &[]), None);
    }
}
