//! What GRUB's `blscfg` (the Red Hat/Fedora/SUSE patch set) does with Boot Loader
//! Specification entries: the GRUB environment block it expands `$variables` from, and the
//! order it lists `/boot/loader/entries/*.conf` in (newest first, which is entry 0, the
//! default when `saved_entry` names none).
//!
//! - [`parse_grubenv`]: `/boot/grub2/grubenv`, the 1024-byte block `grub-editenv` writes:
//!   the signature line `# GRUB Environment Block`, then `name=value` lines (a backslash
//!   escapes the next character, so a value may hold `\` or a newline), padded with `#`.
//!   A file without the signature is ignored by GRUB (`load_env` fails), and here too.
//! - [`expand`]: `$name` / `${name}` replaced from the environment, unset names by nothing, as
//!   blscfg expands `options $kernelopts $tuned_params` (RHEL 8).
//! - [`sort_newest_first`]: entries by their `version` key compared as rpm does
//!   ([`rpmvercmp`]), ties by file name, newest first.

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// The signature line GRUB's environment block starts with.
pub const GRUBENV_SIGNATURE: &str = "# GRUB Environment Block\n";
/// Most variables kept from one environment block.
pub const MAX_ENV_VARS: usize = 256;

/// Parses a GRUB environment block: `None` when the signature is missing (GRUB would not
/// load it), else its variables (the first assignment of a name wins, as GRUB's iteration
/// finds it first).
pub fn parse_grubenv(text: &str) -> Option<BTreeMap<String, String>> {
    let body = text.strip_prefix(GRUBENV_SIGNATURE)?;
    let mut vars = BTreeMap::new();
    let mut line = String::new();
    let mut chars = body.chars();
    let flush = |line: &mut String, vars: &mut BTreeMap<String, String>| {
        if let Some((k, v)) = line.split_once('=') {
            if !k.is_empty() && !k.starts_with('#') && vars.len() < MAX_ENV_VARS {
                vars.entry(k.to_string()).or_insert_with(|| v.to_string());
            }
        }
        line.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    line.push(n);
                }
            }
            '\n' => flush(&mut line, &mut vars),
            _ => line.push(c),
        }
    }
    flush(&mut line, &mut vars);
    Some(vars)
}

/// Replaces `$name` and `${name}` in `text` with their values in `env` (nothing when unset).
pub fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, used) = if let Some(b) = after.strip_prefix('{') {
            match b.find('}') {
                Some(e) => (&b[..e], e + 2),
                None => ("", 0),
            }
        } else {
            let e = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..e], e)
        };
        if used == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        if let Some(v) = env.get(name) {
            out.push_str(v);
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// rpm's `rpmvercmp`: alternating runs of digits (numeric, leading zeros ignored) and letters
/// (byte order), separators skipped; `~` sorts before anything, `^` after the end but before
/// anything else; a numeric run beats a letter run.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while let Some((_, r)) = a.split_first().filter(|(c, _)| sep(**c)) {
            a = r;
        }
        while let Some((_, r)) = b.split_first().filter(|(c, _)| sep(**c)) {
            b = r;
        }
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (Some(b'^'), Some(b'^')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'^'), None) => return Ordering::Greater,
            (None, Some(b'^')) => return Ordering::Less,
            (Some(b'^'), _) => return Ordering::Less,
            (_, Some(b'^')) => return Ordering::Greater,
            (None, _) | (_, None) => break,
            _ => {}
        }
        let numeric = a[0].is_ascii_digit();
        let run = |s: &[u8]| {
            s.iter()
                .position(|c| {
                    if numeric {
                        !c.is_ascii_digit()
                    } else {
                        !c.is_ascii_alphabetic()
                    }
                })
                .unwrap_or(s.len())
        };
        let (la, lb) = (run(a), run(b));
        let (sa, sb) = (&a[..la], &b[..lb]);
        if lb == 0 {
            // different kinds of run: numeric is newer
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ord = if numeric {
            let ta = trim_zeros(sa);
            let tb = trim_zeros(sb);
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            sa.cmp(sb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[la..];
        b = &b[lb..];
    }
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let i = s.iter().position(|&c| c != b'0').unwrap_or(s.len());
    &s[i..]
}

/// The `version` key of a BLS entry's text (last one wins), if any.
pub fn entry_version(text: &str) -> Option<String> {
    text.lines().rev().find_map(|l| {
        let l = l.trim();
        let (k, v) = l.split_once(char::is_whitespace)?;
        (k == "version").then(|| v.trim().to_string())
    })
}

/// Most BLS entries ordered (blscfg lists every one; real systems have a handful).
pub const MAX_BLS_ENTRIES: usize = 256;

/// Sorts `(file, version)` pairs newest first, as blscfg lists them: by version with
/// [`rpmvercmp`] (an entry without one sorts as older), then by file name. rpmvercmp is not a
/// total order on hostile strings, so this is an insertion sort, which never panics on one
/// (the standard sorts may); callers pass at most [`MAX_BLS_ENTRIES`].
pub fn sort_newest_first(entries: &mut [(String, Option<String>)]) {
    let newer = |a: &(String, Option<String>), b: &(String, Option<String>)| {
        let by_version = match (&a.1, &b.1) {
            (Some(x), Some(y)) => rpmvercmp(x, y),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        };
        by_version.then_with(|| rpmvercmp(&a.0, &b.0)) == Ordering::Greater
    };
    for i in 1..entries.len() {
        let mut j = i;
        while j > 0 && newer(&entries[j], &entries[j - 1]) {
            entries.swap(j, j - 1);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grubenv_escapes_padding_and_signature() {
        let mut block = String::from(GRUBENV_SIGNATURE);
        block.push_str("saved_entry=abc-5.14.0-362.el9.x86_64\n");
        block.push_str("kernelopts=root=/dev/mapper/rhel-root ro a\\\\b c\\\nd\n");
        block.push_str("saved_entry=second\n");
        while block.len() < 1024 {
            block.push('#');
        }
        let env = parse_grubenv(&block).unwrap();
        assert_eq!(env["saved_entry"], "abc-5.14.0-362.el9.x86_64");
        assert_eq!(env["kernelopts"], "root=/dev/mapper/rhel-root ro a\\b c\nd");
        assert_eq!(env.len(), 2);
        assert!(parse_grubenv("saved_entry=x\n").is_none());
    }

    #[test]
    fn expand_variables_as_blscfg() {
        let env: BTreeMap<String, String> = [("kernelopts", "root=/dev/sda2 ro"), ("x", "1")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(
            expand("$kernelopts $tuned_params console=ttyS0", &env),
            "root=/dev/sda2 ro  console=ttyS0"
        );
        assert_eq!(expand("a${x}b $ c${", &env), "a1b $ c${");
    }

    #[test]
    fn rpmvercmp_cases() {
        use Ordering::*;
        for (a, b, o) in [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("5.14.0-70.13.1.el9_0", "5.14.0-362.8.1.el9_3", Less),
            ("1.0010", "1.9", Greater),
            ("1.05", "1.5", Equal),
            ("1.0", "1", Greater),
            ("2.0a", "2.0", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.01", Less),
            ("a", "1", Less),
            ("2_0", "2.0", Equal),
        ] {
            assert_eq!(rpmvercmp(a, b), o, "{a} vs {b}");
            assert_eq!(rpmvercmp(b, a), o.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn odd_versions_sort_without_panicking() {
        let odd = [
            "1.0", "1_0", "1.0a", "a", "~", "^", "", "1^", "01", "1~a", "b.1", "1.b", ".",
        ];
        let mut v: Vec<(String, Option<String>)> = odd
            .iter()
            .flat_map(|a| {
                odd.iter()
                    .map(move |b| (format!("{b}{a}"), Some(format!("{a}{b}"))))
            })
            .collect();
        v.push(("none".into(), None));
        sort_newest_first(&mut v);
        assert_eq!(v.last().unwrap().1, None);
    }

    #[test]
    fn newest_first_by_version_not_by_name() {
        let mut v = vec![
            (
                "m-5.14.0-70.el9.conf".to_string(),
                Some("5.14.0-70.el9".to_string()),
            ),
            (
                "m-5.14.0-362.el9.conf".to_string(),
                Some("5.14.0-362.el9".to_string()),
            ),
            (
                "m-0-rescue.conf".to_string(),
                Some("0-rescue-abc".to_string()),
            ),
            ("z-noversion.conf".to_string(), None),
        ];
        sort_newest_first(&mut v);
        let names: Vec<&str> = v.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "m-5.14.0-362.el9.conf",
                "m-5.14.0-70.el9.conf",
                "m-0-rescue.conf",
                "z-noversion.conf"
            ]
        );
    }
}
