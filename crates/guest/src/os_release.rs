//! `/etc/os-release` (or `/usr/lib/os-release`): who the guest says it is.

use serde::Serialize;
use std::collections::BTreeMap;

/// The fields of os-release that reports use, plus all others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    /// `ID` (`debian`, `ubuntu`, `rhel` ...).
    pub id: Option<String>,
    /// `ID_LIKE`, split at blanks.
    pub id_like: Vec<String>,
    /// `VERSION_ID` (`12`, `22.04`, `9.4`).
    pub version_id: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
    /// `NAME`.
    pub name: Option<String>,
    /// Every key, as read.
    #[serde(skip)]
    pub fields: BTreeMap<String, String>,
}

/// Parses os-release text (shell-like `KEY=value` lines, values optionally quoted with
/// backslash escapes inside double quotes).
pub fn parse(text: &str) -> OsRelease {
    let mut fields = BTreeMap::new();
    for line in text.lines().take(1000) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        fields.insert(k.to_string(), unquote(v.trim()));
    }
    OsRelease {
        id: fields.get("ID").cloned(),
        id_like: fields
            .get("ID_LIKE")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        version_id: fields.get("VERSION_ID").cloned(),
        pretty_name: fields.get("PRETTY_NAME").cloned(),
        name: fields.get("NAME").cloned(),
        fields,
    }
}

fn unquote(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let inner = &v[1..v.len() - 1];
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        out
    } else if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_and_rhel() {
        let deb = parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n");
        assert_eq!(deb.id.as_deref(), Some("debian"));
        assert_eq!(deb.version_id.as_deref(), Some("12"));
        assert_eq!(
            deb.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        let rhel = parse("ID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID='9.4'\n# c\nBAD LINE\n");
        assert_eq!(rhel.id.as_deref(), Some("rhel"));
        assert_eq!(rhel.id_like, vec!["fedora"]);
        assert_eq!(rhel.version_id.as_deref(), Some("9.4"));
        assert_eq!(parse("X=\"a\\\"b\"").fields["X"], "a\"b");
    }
}
