//! The UAPI version comparison of `bls_entry::version_cmp` (systemd-boot's menu order)
//! against systemd's own: `systemd-analyze compare-versions` (systemd 252), on hand-picked
//! pairs and on pairs made from a small alphabet of the characters with a meaning.

use std::cmp::Ordering;
use std::process::Command;
use vhdprep_guest::facts::boot::bls_entry::version_cmp;

fn systemd(a: &str, b: &str) -> Ordering {
    let out = Command::new("systemd-analyze")
        .args(["compare-versions", a, b])
        .output()
        .expect("run systemd-analyze (install Debian package systemd)");
    let text = String::from_utf8_lossy(&out.stdout);
    // `<a> <op> <b>`; the versions may hold blanks.
    let op = text
        .trim_end()
        .strip_prefix(a)
        .and_then(|t| t.strip_suffix(b))
        .map_or("", str::trim);
    match op {
        "<" => Ordering::Less,
        "==" => Ordering::Equal,
        ">" => Ordering::Greater,
        _ => panic!("systemd-analyze compare-versions {a:?} {b:?} said {text:?}"),
    }
}

#[test]
fn version_order_agrees_with_systemd() {
    let mut pairs: Vec<(String, String)> = [
        ("6.1.0-9-amd64", "6.1.0-13-amd64"),
        ("6.5.6-300.fc39.x86_64", "6.5.10-300.fc39.x86_64"),
        (
            "5.14.0-362.8.1.el9_3.x86_64",
            "5.14.0-362.13.1.el9_3.x86_64",
        ),
        ("12 (bookworm)", "12"),
        ("1.0~rc1", "1.0"),
        ("1.0^git1", "1.0.1"),
        ("1.0-1", "1.0.1"),
        ("a", "1"),
        ("0001", "1"),
        ("1..2", "1.2"),
        ("1+2", "1_2"),
        ("debian-6.1.0-13-amd64.efi", "debian-6.1.0-9-amd64.efi"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    // Every pair of short strings over the meaningful characters (deterministic).
    let alphabet = ["1", "2", "10", "a", "b", "~", "-", "^", ".", "_"];
    let words: Vec<String> = alphabet
        .iter()
        .flat_map(|x| alphabet.iter().map(move |y| format!("{x}{y}")))
        .collect();
    for (i, a) in words.iter().enumerate().step_by(7) {
        for b in words.iter().skip(i % 5).step_by(11) {
            pairs.push((format!("1{a}"), format!("1{b}")));
        }
    }
    assert!(pairs.len() > 100);
    for (a, b) in &pairs {
        assert_eq!(
            version_cmp(Some(a), Some(b)),
            systemd(a, b),
            "{a:?} vs {b:?}"
        );
    }
}
