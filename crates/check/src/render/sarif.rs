//! The SARIF 2.1.0 log of a [`Report`], for code-scanning dashboards (GitHub code scanning,
//! Azure DevOps, VS Code's SARIF viewer). Valid against the OASIS `sarif-schema-2.1.0.json`
//! (errata 01); the tests check every log against it.
//!
//! One run; `tool.driver` is `vhdprep` with one `reportingDescriptor` per rule of
//! [`Report::rules`] (every catalogue rule, evaluated or not; CERT with `--marketplace` only),
//! in catalogue order, so a result's `ruleIndex` points into that list. Each finding is one
//! `result`; findings allowed by `--allow` are results too, with an external `suppression`.
//! Rules that were not evaluated are `toolExecutionNotifications` of the one invocation.
//!
//! # Locations
//!
//! GitHub code scanning shows a result only when its first location has a
//! `physicalLocation.artifactLocation.uri` (non-empty); it reads a relative URI as relative to
//! the repository root and turns an absolute `file://` URI into a relative one under the checkout
//! path; other schemes are rejected. So every result gets exactly one physical location:
//!
//! - [`Location::Disk`]: the image file (or the data disk the message names), with
//!   `region.byteOffset` and `region.byteLength`. An image is binary, so no line is given.
//! - [`Location::Guest`]: the guest path, relative to the uriBaseId `GUESTROOT` (the root
//!   directory of the guest filesystem inside the image), with `region.startLine` when the
//!   finding names a line. `run.originalUriBaseIds` describes `GUESTROOT` but gives it no URI:
//!   no URI scheme names a directory inside a disk image. GitHub ignores uriBaseIds, so the
//!   alert shows the guest path (`etc/waagent.conf`) as a repository-relative path; it is not
//!   expected to exist in the repository. A `logicalLocation` would not be shown at all.
//! - no location: the image file, without a region (a whole-file result).
//!
//! The image path is written as given on the command line: an absolute path becomes a `file://`
//! URI, a relative one a relative reference with uriBaseId `%SRCROOT%` (the working directory
//! vhdprep ran in). Every byte other than RFC 3986 unreserved characters and `/` is
//! percent-encoded.
//!
//! # Identity
//!
//! `partialFingerprints.primaryLocationLineHash` (the one GitHub uses to follow an alert across
//! runs) is computed here, since the upload action cannot hash lines of a disk image: FNV-1a/64
//! of the rule ID and the location (artifact, offset or line), then `:N` for the N-th result with
//! the same key. Messages are left out so that a changed size or count does not open a new alert.

use crate::catalogue::{self, Area, RuleInfo};
use crate::report::{Report, RuleStatus};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use vhdprep_finding::{Finding, Location, Severity};

/// `$schema` of the log: the URI GitHub's documentation gives for SARIF 2.1.0.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// uriBaseId of guest paths: the root directory of the guest filesystem.
pub const GUEST_ROOT: &str = "GUESTROOT";
/// uriBaseId of a relative image path: the directory `vhdprep check` ran in.
pub const WORKING_DIR: &str = "%SRCROOT%";
/// Justification of the suppression of an allowed finding.
pub const ALLOWED_JUSTIFICATION: &str = "allowed by --allow";

/// The SARIF log, pretty-printed, with a trailing newline.
pub fn render(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(&log(report)).expect("a JSON value always serialises");
    s.push('\n');
    s
}

/// The SARIF log as a JSON value.
pub fn log(report: &Report) -> Value {
    let rules = Rules::of(report);
    let files = Files::of(report);
    let mut fingerprints = BTreeMap::new();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| (f, false))
        .chain(report.allowed.iter().map(|f| (f, true)))
        .map(|(f, allowed)| result(f, allowed, &rules, &files, &mut fingerprints))
        .collect();
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": report.tool.name,
                "version": report.tool.version,
                "semanticVersion": report.tool.version,
                "rules": rules.descriptors(),
            }},
            "invocations": [invocation(report, &rules)],
            "originalUriBaseIds": {
                GUEST_ROOT: { "description": { "text": format!(
                    "The root directory of the guest filesystem inside {}; paths are as the guest sees them.",
                    report.image
                )}},
                WORKING_DIR: { "description": { "text":
                    "The working directory of vhdprep check; relative image paths are relative to it."
                }},
            },
            "artifacts": files.artifacts(report),
            "results": results,
            "properties": {
                "verdict": report.verdict,
                "failOn": report.fail_on,
                "image": report.image,
            },
        }],
    })
}

/// SARIF level of a severity.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// GitHub's `problem.severity` of a rule severity.
fn problem_severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "recommendation",
    }
}

/// A title as a PascalCase rule name: "File = size + 512" → `FileSize512`.
pub fn pascal_case(title: &str) -> String {
    let mut out = String::new();
    for word in title.split(|c: char| !c.is_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.extend(chars);
        }
    }
    out
}

/// Percent-encodes every byte but RFC 3986 unreserved characters and `/`.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The rule descriptors of the run and the index of each rule ID among them.
struct Rules {
    list: Vec<&'static RuleInfo>,
    index: BTreeMap<&'static str, usize>,
}

impl Rules {
    /// Every rule of the report, then any rule a finding names that the report does not list.
    fn of(report: &Report) -> Rules {
        let ids = report
            .rules
            .iter()
            .map(|r| r.id)
            .chain(report.findings.iter().map(|f| f.id))
            .chain(report.allowed.iter().map(|f| f.id));
        let mut rules = Rules {
            list: Vec::new(),
            index: BTreeMap::new(),
        };
        for id in ids {
            if rules.index.contains_key(id) {
                continue;
            }
            if let Some(info) = catalogue::find(id) {
                rules.index.insert(info.id, rules.list.len());
                rules.list.push(info);
            }
        }
        rules
    }

    fn get(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    fn descriptors(&self) -> Vec<Value> {
        self.list.iter().map(|r| descriptor(r)).collect()
    }
}

fn descriptor(r: &RuleInfo) -> Value {
    let area = Area::of(r.id);
    let mut help = format!("{}\n\nSources: {}", r.description, r.source);
    if let Some(d) = r.deviation {
        help.push_str(&format!("\n\nDeviation from the shared catalogue: {d}"));
    }
    let mut props = Map::new();
    props.insert("area".into(), json!(area));
    props.insert("source".into(), json!(r.source));
    props.insert("tags".into(), json!(["azure", area]));
    props.insert(
        "problem.severity".into(),
        json!(problem_severity(r.severity)),
    );
    if let Some(d) = r.deviation {
        props.insert("deviation".into(), json!(d));
    }
    if r.marketplace_only {
        props.insert("marketplaceOnly".into(), json!(true));
    }
    json!({
        "id": r.id,
        "name": pascal_case(r.title),
        "shortDescription": { "text": r.title },
        "fullDescription": { "text": r.description },
        "help": { "text": help },
        "defaultConfiguration": { "level": level(r.severity) },
        "properties": props,
    })
}

/// The files results point at: the OS disk (artifact 0) and the data disks (1..).
struct Files {
    /// The artifactLocation results use (with the artifact's index).
    uris: Vec<Value>,
    names: Vec<String>,
}

impl Files {
    fn of(report: &Report) -> Files {
        let names: Vec<String> = std::iter::once(report.image.clone())
            .chain(report.data_disks.iter().cloned())
            .collect();
        let uris = names
            .iter()
            .enumerate()
            .map(|(i, n)| file_location(n, Some(i)))
            .collect();
        Files { uris, names }
    }

    /// The file a finding is about: a data disk when the message starts with
    /// `data disk NAME` (how the VHD rules report data disks), else the OS disk.
    fn of_finding(&self, f: &Finding) -> usize {
        let mut best = 0;
        let mut best_len = 0;
        for (i, name) in self.names.iter().enumerate().skip(1) {
            let prefix = format!("data disk {name}");
            let rest = f.message.strip_prefix(&prefix);
            let delimited = rest.is_some_and(|r| r.starts_with(':') || r.starts_with(' '));
            if delimited && name.len() > best_len {
                best = i;
                best_len = name.len();
            }
        }
        best
    }

    fn artifacts(&self, report: &Report) -> Vec<Value> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut a = json!({
                    "location": file_location(name, None),
                    "roles": ["analysisTarget"],
                });
                if i == 0 {
                    a["length"] = json!(report.container.file_size);
                }
                a
            })
            .collect()
    }
}

/// The artifactLocation of a host file path.
fn file_location(path: &str, index: Option<usize>) -> Value {
    let mut loc = if path.starts_with('/') {
        json!({ "uri": format!("file://{}", encode_path(path)) })
    } else {
        json!({ "uri": encode_path(path), "uriBaseId": WORKING_DIR })
    };
    if let Some(i) = index {
        loc["index"] = json!(i);
    }
    loc
}

/// The artifactLocation of a guest path.
fn guest_location(path: &str) -> Value {
    let rel = path.trim_start_matches('/');
    let uri = if rel.is_empty() {
        ".".to_string()
    } else {
        encode_path(rel)
    };
    json!({ "uri": uri, "uriBaseId": GUEST_ROOT })
}

/// The physicalLocation of a finding.
fn physical_location(f: &Finding, files: &Files) -> Value {
    match &f.location {
        Some(Location::Guest { path, line }) => {
            let mut p = json!({ "artifactLocation": guest_location(path) });
            if let Some(line) = line.filter(|l| *l >= 1) {
                p["region"] = json!({ "startLine": line });
            }
            p
        }
        Some(Location::Disk { offset, length }) => {
            let mut region = json!({ "byteOffset": offset });
            if let Some(len) = length {
                region["byteLength"] = json!(len);
            }
            json!({
                "artifactLocation": files.uris[files.of_finding(f)],
                "region": region,
            })
        }
        None => json!({ "artifactLocation": files.uris[files.of_finding(f)] }),
    }
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust versions and platforms.
fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn fingerprint(f: &Finding, physical: &Value, seen: &mut BTreeMap<u64, usize>) -> String {
    let key = format!("{}\n{}", f.id, physical);
    let h = fnv1a(key.as_bytes());
    let n = seen.entry(h).or_insert(0);
    *n += 1;
    format!("{h:016x}:{n}")
}

fn message_text(f: &Finding) -> String {
    let mut text = f.message.clone();
    if let Some(e) = &f.evidence {
        text.push_str(&format!("\nEvidence: {e}"));
    }
    if let Some(r) = &f.remediation {
        text.push_str(&format!("\nFix: {r}"));
    }
    text
}

fn result(
    f: &Finding,
    allowed: bool,
    rules: &Rules,
    files: &Files,
    seen: &mut BTreeMap<u64, usize>,
) -> Value {
    let physical = physical_location(f, files);
    let mut props = Map::new();
    props.insert("severity".into(), json!(f.severity));
    if let Some(e) = &f.evidence {
        props.insert("evidence".into(), json!(e));
    }
    if let Some(r) = &f.remediation {
        props.insert("remediation".into(), json!(r));
    }
    let mut r = json!({
        "ruleId": f.id,
        "level": level(f.severity),
        "message": { "text": message_text(f) },
        "locations": [{ "physicalLocation": physical }],
        "partialFingerprints": { "primaryLocationLineHash": fingerprint(f, &physical, seen) },
        "properties": props,
    });
    if let Some(i) = rules.get(f.id) {
        r["ruleIndex"] = json!(i);
    }
    if allowed {
        r["suppressions"] = json!([{
            "kind": "external",
            "status": "accepted",
            "justification": ALLOWED_JUSTIFICATION,
        }]);
    }
    r
}

/// The one invocation: it ran to completion (findings are not a failure of the tool), with the
/// exit code of `vhdprep check`; rules not evaluated are notifications.
fn invocation(report: &Report, rules: &Rules) -> Value {
    let skipped: Vec<Value> = report
        .rules
        .iter()
        .filter(|r| r.status == RuleStatus::Skipped)
        .map(|r| {
            let why = r.reason.as_deref().unwrap_or("no reason given");
            let mut rule = json!({ "id": r.id });
            if let Some(i) = rules.get(r.id) {
                rule["index"] = json!(i);
            }
            json!({
                "level": "note",
                "message": { "text": format!("{} not evaluated: {why}", r.id) },
                "associatedRule": rule,
            })
        })
        .collect();
    json!({
        "executionSuccessful": true,
        "exitCode": report.exit_status(),
        "toolExecutionNotifications": skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pascal_case_of_titles() {
        assert_eq!(pascal_case("File = size + 512"), "FileSize512");
        assert_eq!(
            pascal_case("OS disk at most 4,095 GiB"),
            "OSDiskAtMost4095GiB"
        );
        assert_eq!(pascal_case("512-byte sectors"), "512ByteSectors");
        assert_eq!(pascal_case("größe über"), "GrößeÜber");
        assert_eq!(pascal_case(""), "");
    }

    #[test]
    fn paths_are_percent_encoded() {
        assert_eq!(encode_path("/tmp/a b/c.vhd"), "/tmp/a%20b/c.vhd");
        assert_eq!(encode_path("x:y#z?%"), "x%3Ay%23z%3F%25");
        assert_eq!(encode_path("é"), "%C3%A9");
        assert_eq!(
            file_location("/i.vhd", Some(0)),
            json!({"uri": "file:///i.vhd", "index": 0})
        );
        assert_eq!(
            file_location("d/i.vhd", None),
            json!({"uri": "d/i.vhd", "uriBaseId": WORKING_DIR})
        );
        assert_eq!(guest_location("/")["uri"], ".");
        assert_eq!(guest_location("//etc/x y")["uri"], "etc/x%20y");
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
