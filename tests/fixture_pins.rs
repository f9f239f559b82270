//! A guard against tests that pin what Debian's archive happened to hold on the day the
//! fixtures were built.
//!
//! The fixture images are built from the archive as it is when `fixtures/build-images.sh` runs,
//! so their kernel release, package versions and agent versions move with every Debian point
//! release. A test that writes one of them as a literal (to find it in grub.cfg, to replace it
//! in the dpkg status, to expect it in a message) passes on the machine that built the
//! fixtures and fails on the next fresh one. Tests read these values from the manifest the
//! build recorded instead (`Variant::kernel`, `package_version`, `agent_version`,
//! `set_package_version`, `set_agent_version` in crates/check/tests/common).
//!
//! This test reads every manifest of the fixture cache (and the committed sample's) and fails
//! if any test source outside comments contains one of the recorded values: the kernel
//! release, a package's full version (`3.0.22-1~deb12u2`), an agent's own version (`22.4.2`).
//! A value the test only writes, and that equals an archive value by chance, is listed in
//! [`COINCIDENCES`] with the reason; an entry that no longer matches anything fails too, so
//! the list stays short and true.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// (file relative to the workspace, value, why it is not a pin).
const COINCIDENCES: &[(&str, &str, &str)] = &[
    (
        "crates/guest/tests/facts_kernel.rs",
        "6.1.0-1",
        "a kernel release made up for a tree the test builds itself; equal to xfsprogs' version by chance",
    ),
];

/// The images of fixtures/build-images.sh (ALL_IMAGES): each must have a manifest.
const IMAGES: [&str; 8] = [
    "gen2-gpt-ext4",
    "gen1-mbr-ext4",
    "hybrid-gpt",
    "gen2-gpt-xfs",
    "gen2-gpt-btrfs",
    "rhel-lvm",
    "separate-var",
    "arm64-gpt-ext4",
];

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture_cache() -> PathBuf {
    std::env::var_os("VHDPREP_FIXTURE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("fixtures/cache"))
}

/// Every value the fixture builds recorded that moves with the archive, with where it came
/// from (`gen2-gpt-ext4: package openssl`).
fn archive_values() -> BTreeMap<String, String> {
    let mut manifests: Vec<(String, PathBuf)> = IMAGES
        .iter()
        .map(|n| (n.to_string(), fixture_cache().join(format!("{n}.json"))))
        .collect();
    manifests.push((
        "sample debian-mini".into(),
        workspace().join("fixtures/sample/debian-mini.json"),
    ));
    let mut values = BTreeMap::new();
    for (name, path) in manifests {
        let text = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "manifest {} ({e}): build the fixtures with fixtures/build-images.sh (scripts/test.sh does)",
                path.display()
            )
        });
        let m: Value = serde_json::from_slice(&text).expect("manifest JSON");
        let is_sample = name.starts_with("sample");
        // The built images must record all of it; the committed sample predates the full list.
        for key in ["installed", "agents", "kernel_release"] {
            assert!(
                is_sample || !m[key].is_null(),
                "manifest {} has no `{key}`: rebuild the fixtures (fixtures/build-images.sh)",
                path.display()
            );
        }
        let mut add = |value: &str, what: String| {
            if looks_like_a_version(value) {
                values
                    .entry(value.to_string())
                    .or_insert(format!("{name}: {what}"));
            }
        };
        for key in ["installed", "packages"] {
            if let Some(pkgs) = m[key].as_object() {
                for (p, v) in pkgs {
                    add(
                        v.as_str().unwrap_or_default(),
                        format!("version of package {p}"),
                    );
                }
            }
        }
        if let Some(agents) = m["agents"].as_object() {
            for (a, v) in agents {
                add(v.as_str().unwrap_or_default(), format!("{a}'s own version"));
            }
        }
        for k in [&m["kernel_release"], &m["boot"]["kernel"]] {
            if let Some(k) = k.as_str() {
                add(k, "kernel release".into());
            }
        }
    }
    values
}

/// Whether a recorded value is specific enough to be a pin when it appears in a test: a
/// dotted version with at least five characters (`2.7.3.0`, `6.1.192-3`), not `1.0`.
fn looks_like_a_version(v: &str) -> bool {
    v.len() >= 5 && v.contains('.') && v.chars().any(|c| c.is_ascii_digit())
}

/// The test sources that read fixture images: integration tests and benches.
fn test_sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = workspace();
    let mut files = Vec::new();
    walk(&root.join("tests"), &mut files);
    walk(&root.join("benches"), &mut files);
    for krate in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        walk(&krate.path().join("tests"), &mut files);
        walk(&krate.path().join("benches"), &mut files);
    }
    files.sort();
    assert!(files.len() > 20, "found only {} test sources", files.len());
    files
}

/// Whether `value` occurs in `line` as a whole version, not inside a longer one.
fn occurs_as_version(line: &str, value: &str) -> bool {
    let glued = |c: char| c.is_ascii_alphanumeric() || "+~:".contains(c);
    line.match_indices(value).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let mut after = line[at + value.len()..].chars();
        let next = after.next();
        let ok_before = before.is_none_or(|c| !glued(c) && c != '.');
        let ok_after = match next {
            None => true,
            // `2.7.3.0.egg-info` ends the version at the dot; `2.7.3.0.1` does not.
            Some('.') => !after.next().is_some_and(|c| c.is_ascii_digit()),
            // `6.1.0-1-cloud-amd64` is not the version `6.1.0-1`.
            Some(c) => !glued(c) && c != '-',
        };
        ok_before && ok_after
    })
}

#[test]
fn no_test_pins_what_the_archive_held() {
    let values = archive_values();
    assert!(
        values.len() > 100,
        "only {} recorded values: the manifests lack the installed packages",
        values.len()
    );
    let root = workspace();
    let mut pins = Vec::new();
    let mut used = vec![false; COINCIDENCES.len()];
    for file in test_sources() {
        let rel = file.strip_prefix(&root).unwrap().display().to_string();
        if rel == "tests/fixture_pins.rs" {
            continue; // its own examples
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for (value, what) in &values {
                if !occurs_as_version(line, value) {
                    continue;
                }
                match COINCIDENCES
                    .iter()
                    .position(|(f, v, _)| *f == rel && v == value)
                {
                    Some(i) => used[i] = true,
                    None => pins.push(format!("{rel}:{}: `{value}` ({what})", n + 1)),
                }
            }
        }
    }
    assert!(
        pins.is_empty(),
        "tests pin values of today's Debian archive; read them from the fixture's manifest \
         instead (Variant::kernel, package_version, agent_version ...):\n{}",
        pins.join("\n")
    );
    let stale: Vec<_> = COINCIDENCES
        .iter()
        .zip(used)
        .filter(|(_, u)| !u)
        .map(|((f, v, _), _)| format!("{f}: {v}"))
        .collect();
    assert!(
        stale.is_empty(),
        "COINCIDENCES entries that match nothing any more (remove them): {stale:?}"
    );
}

#[test]
fn the_matcher_finds_versions_and_only_whole_ones() {
    assert!(occurs_as_version(
        "t.replace(\"6.1.0-56-cloud-amd64\", \"4.19\")",
        "6.1.0-56-cloud-amd64"
    ));
    assert!(occurs_as_version(
        "\"/boot/vmlinuz-6.1.0-56-cloud-amd64\"",
        "6.1.0-56-cloud-amd64"
    ));
    assert!(occurs_as_version(
        "\"{py}/WALinuxAgent-2.7.3.0.egg-info\"",
        "2.7.3.0"
    ));
    assert!(occurs_as_version(
        "Version: 3.0.22-1~deb12u2\\n",
        "3.0.22-1~deb12u2"
    ));
    assert!(occurs_as_version(
        "\"1:9.2p1-2+deb12u10\"",
        "1:9.2p1-2+deb12u10"
    ));
    assert!(!occurs_as_version("\"2.7.3.0.1\"", "2.7.3.0"));
    assert!(!occurs_as_version("\"12.7.3.0\"", "2.7.3.0"));
    assert!(!occurs_as_version(
        "\"3.0.22-1~deb12u21\"",
        "3.0.22-1~deb12u2"
    ));
    assert!(!occurs_as_version("format!(\"6.1.0-{}\")", "6.1.0-1"));
    assert!(!occurs_as_version("\"6.1.0-1-cloud-amd64\"", "6.1.0-1"));
    assert!(looks_like_a_version("2.7.3.0") && !looks_like_a_version("1.0"));
}
