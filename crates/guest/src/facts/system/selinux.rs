//! SELinux: `/etc/selinux/config` (`SELINUX=`, `SELINUXTYPE=`), whether the policy it names
//! is installed (`/etc/selinux/<type>/policy/policy.<N>`, what systemd loads at boot), and a
//! pending `/.autorelabel` (the first boot relabels every file, then reboots).
//!
//! The config is read as libselinux reads it (`selinux_getenforcemode`,
//! `selinux_getpolicytype`): `KEY=value` lines, `#` comments, the first assignment of a key
//! wins.

use super::{numbered, read_text, stat, unquote, PathFact, Value};
use crate::tree::GuestTree;
use serde::Serialize;

/// The SELinux configuration file.
pub const CONFIG: &str = "/etc/selinux/config";
/// The flag file that makes the first boot relabel the filesystem (`selinux-autorelabel`).
pub const AUTORELABEL: &str = "/.autorelabel";
/// Most policy files listed.
const MAX_POLICIES: usize = 64;

/// SELinux evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SelinuxFacts {
    /// `/etc/selinux/config` was read.
    pub config_read: bool,
    /// `SELINUX=` (`enforcing`, `permissive`, `disabled`; anything else as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Value>,
    /// `SELINUXTYPE=` (`targeted`, `mls`, `minimum` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_type: Option<Value>,
    /// `policy.<N>` files in `/etc/selinux/<type>/policy/` (names, sorted).
    pub policy_files: Vec<String>,
    /// `/.autorelabel`, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autorelabel: Option<PathFact>,
}

/// The first `key=value` of libselinux's config syntax.
fn first_value(text: &str, key: &str) -> Option<Value> {
    numbered(text).find_map(|(n, l)| {
        let t = l.trim();
        if t.starts_with('#') {
            return None;
        }
        let (k, v) = t.split_once('=')?;
        (k.trim() == key).then(|| Value {
            value: unquote(v.trim()),
            line: n,
        })
    })
}

/// Parses the text of `/etc/selinux/config` (mode and policy type only).
pub fn parse_config(text: &str) -> (Option<Value>, Option<Value>) {
    (
        first_value(text, "SELINUX"),
        first_value(text, "SELINUXTYPE"),
    )
}

/// Whether a policy type names a directory under `/etc/selinux` (no path tricks).
fn plain_name(t: &str) -> bool {
    !t.is_empty() && t != "." && t != ".." && !t.contains('/') && t.len() <= 255
}

/// Gathers [`SelinuxFacts`].
pub fn gather(g: &GuestTree) -> SelinuxFacts {
    let mut f = SelinuxFacts {
        autorelabel: stat(g, AUTORELABEL),
        ..Default::default()
    };
    let Some(text) = read_text(g, CONFIG) else {
        return f;
    };
    f.config_read = true;
    (f.mode, f.policy_type) = parse_config(&text);
    if let Some(t) = f.policy_type.as_ref().filter(|t| plain_name(&t.value)) {
        let dir = format!("/etc/selinux/{}/policy", t.value);
        f.policy_files = super::list(g, &dir)
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| {
                n.strip_prefix("policy.")
                    .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            })
            .take(MAX_POLICIES)
            .collect();
    }
    f
}

#[cfg(test)]
mod tests {
    use super::super::testutil::tree;
    use super::*;

    /// `/etc/selinux/config` as RHEL 9's selinux-policy installs it (see tests/data/distro).
    const RHEL9: &str = include_str!("../../../tests/data/distro/rhel9-selinux-config");

    #[test]
    fn rhel_config_policy_and_autorelabel() {
        let g = tree(
            &[
                (CONFIG, RHEL9),
                ("/etc/selinux/targeted/policy/policy.33", "x"),
                ("/etc/selinux/targeted/policy/policy.33.bak", "x"),
                (AUTORELABEL, ""),
            ],
            &[],
        );
        let f = gather(&g);
        assert!(f.config_read);
        let mode = f.mode.unwrap();
        assert_eq!((mode.value.as_str(), mode.line), ("enforcing", 22));
        assert_eq!(f.policy_type.unwrap().value, "targeted");
        assert_eq!(f.policy_files, vec!["policy.33".to_string()]);
        assert_eq!(f.autorelabel.unwrap().size, 0);
    }

    #[test]
    fn first_assignment_wins_and_odd_types_are_not_followed() {
        let (m, t) =
            parse_config("SELINUX = permissive\nSELINUX=enforcing\nSELINUXTYPE=\"../..\"\n");
        assert_eq!(m.unwrap().value, "permissive");
        assert_eq!(t.unwrap().value, "../..");
        let g = tree(
            &[
                (CONFIG, "SELINUX=enforcing\nSELINUXTYPE=../../etc\n"),
                ("/etc/policy/policy.1", "x"),
            ],
            &[],
        );
        let f = gather(&g);
        assert!(f.policy_files.is_empty() && f.autorelabel.is_none());
        // No config: nothing is claimed.
        let f = gather(&tree(&[("/etc/hostname", "x\n")], &[]));
        assert!(!f.config_read && f.mode.is_none());
    }
}
