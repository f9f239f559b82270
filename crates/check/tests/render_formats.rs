//! The SARIF and JUnit renderers on reports of real fixture images, validated against the
//! published schemas committed in tests/schemas/ (README there): SARIF with python3-jsonschema
//! (formats checked, so URIs must be well formed), JUnit with `xmllint --schema`. The JUnit
//! documents are then read back by Python's XML parser to check that every string survives the
//! escaping. Locations, allowed findings and hostile strings are added to a report of a real
//! check, so that the tests do not depend on which rules of other areas fire.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use vhdprep_check::catalogue;
use vhdprep_check::render::{junit, render, sarif, OutputFormat};
use vhdprep_check::report::RuleStatus;
use vhdprep_check::{Finding, Policy, Report, Severity};

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemas")
}

/// The check of the raw gen2-gpt-ext4 fixture, copied to a file name that needs
/// percent-encoding; made once for every test of this file.
fn base_report() -> Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    REPORT
        .get_or_init(|| {
            let v = Variant::of("gen2-gpt-ext4");
            let odd = v.dir.path().join("disk image é#1 [x].raw");
            std::fs::rename(&v.path, &odd).unwrap();
            check_path(&odd, &Policy::default())
        })
        .clone()
}

const HOSTILE: &str =
    "quote \" apos ' <tag attr=\"x\"> & amp; ]]> line\nnext\ttab\rcr \u{0}\u{1b}[31m \u{FFFE} é 😀 \u{85}";

/// What a hostile string reads as after JUnit: characters XML cannot carry become escapes.
fn hostile_after_xml() -> String {
    HOSTILE
        .replace('\u{0}', "\\x00")
        .replace('\u{1b}', "\\x1B")
        .replace('\u{FFFE}', "\\uFFFE")
}

/// The base report plus findings that point at a guest line, a guest file, a byte range, an
/// information finding, and an allowed warning.
fn report_with_locations() -> Report {
    let mut r = base_report();
    assert_fires(&r, "VHD-001", Severity::Error);
    r.findings.push(
        Finding::new("VHD-003", Severity::Error, "footer checksum mismatch")
            .with_evidence("offset 64: 0x1234")
            .with_remediation("vhdprep fix --in-place disk.vhd")
            .at_disk(1024, Some(512)),
    );
    r.findings.push(
        Finding::new("VHD-014", Severity::Info, "written by qemu-img")
            .at_guest("/etc/waagent.conf", Some(12)),
    );
    r.findings
        .push(Finding::new("VHD-016", Severity::Warning, "no line").at_guest("/etc/fstab", None));
    r.allowed.push(
        Finding::new("VHD-010", Severity::Warning, "allowed size warning")
            .with_remediation("shrink it")
            .at_disk(0, None),
    );
    set_status(&mut r, "VHD-003", RuleStatus::Fail, Some(Severity::Error));
    set_status(&mut r, "VHD-014", RuleStatus::Info, Some(Severity::Info));
    set_status(&mut r, "VHD-016", RuleStatus::Fail, Some(Severity::Warning));
    set_status(&mut r, "VHD-010", RuleStatus::Fail, Some(Severity::Warning));
    r
}

fn set_status(r: &mut Report, id: &str, status: RuleStatus, severity: Option<Severity>) {
    let rule = r.rules.iter_mut().find(|x| x.id == id).unwrap();
    rule.status = status;
    rule.severity = severity;
    rule.reason = None;
}

/// The base report with one hostile finding at a hostile guest path.
fn hostile_report() -> Report {
    let mut r = base_report();
    r.findings.insert(
        0,
        Finding::new("VHD-003", Severity::Error, HOSTILE)
            .with_evidence(HOSTILE)
            .with_remediation(HOSTILE)
            .at_guest("/etc/we ird/ü<>&\"#?%.conf", Some(7)),
    );
    set_status(&mut r, "VHD-003", RuleStatus::Fail, Some(Severity::Error));
    let skipped = r
        .rules
        .iter_mut()
        .find(|x| x.status == RuleStatus::Skipped)
        .expect("the raw fixture has a skipped rule (VHD-014 without footer)");
    skipped.reason = Some(HOSTILE.to_string());
    r
}

// ---- validators ------------------------------------------------------------------------------

const JSONSCHEMA: &str = r#"
import json, sys
try:
    import jsonschema, rfc3986_validator
except ImportError as e:
    print(f"missing python3 module ({e}): pip install jsonschema rfc3986-validator (scripts/test.sh does)")
    sys.exit(3)
schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
v = cls(schema, format_checker=jsonschema.FormatChecker())
errors = list(v.iter_errors(doc))
for e in errors:
    print("/".join(map(str, e.absolute_path)) + ": " + e.message)
sys.exit(1 if errors else 0)
"#;

/// Validates a SARIF log against the OASIS schema; Err with the validator's messages.
fn validate_sarif(text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("log.sarif");
    std::fs::write(&doc, text).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(JSONSCHEMA)
        .arg(schemas().join("sarif-schema-2.1.0.json"))
        .arg(&doc)
        .output()
        .expect("run python3 (install python3; scripts/test.sh does)");
    let msg =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(msg),
        _ => panic!("the SARIF validator could not run: {msg}"),
    }
}

/// Validates a JUnit document with `xmllint --schema junit-10.xsd`.
fn validate_junit(text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("junit.xml");
    std::fs::write(&doc, text).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schemas().join("junit-10.xsd"))
        .arg(&doc)
        .output()
        .unwrap_or_else(|e| panic!("cannot run xmllint ({e}); install package libxml2-utils"));
    let msg = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok(()),
        // 1: not well-formed; 3, 4: not valid against the schema.
        Some(1 | 3 | 4) => Err(msg),
        _ => panic!("xmllint could not run: {msg}"),
    }
}

const XML_TO_JSON: &str = r#"
import json, sys
import xml.etree.ElementTree as ET
def el(e):
    return {"tag": e.tag, "attrs": dict(e.attrib), "text": e.text or "", "children": [el(c) for c in e]}
print(json.dumps(el(ET.parse(sys.argv[1]).getroot())))
"#;

/// The JUnit document as Python's XML parser reads it: {tag, attrs, text, children}.
fn parse_xml(text: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("junit.xml");
    std::fs::write(&doc, text).unwrap();
    let out = run(
        Command::new("python3").arg("-c").arg(XML_TO_JSON).arg(&doc),
        "python3",
    );
    serde_json::from_str(&out).unwrap()
}

fn children<'a>(e: &'a Value, tag: &str) -> Vec<&'a Value> {
    e["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["tag"] == tag)
        .collect()
}

fn attr_count(e: &Value, name: &str) -> usize {
    e["attrs"][name].as_str().unwrap().parse().unwrap()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

// ---- SARIF -----------------------------------------------------------------------------------

fn sarif_of(r: &Report) -> Value {
    let text = render(r, OutputFormat::Sarif, false);
    assert!(text.ends_with('\n'));
    if let Err(e) = validate_sarif(&text) {
        panic!("SARIF does not validate against sarif-schema-2.1.0.json:\n{e}\n{text}");
    }
    serde_json::from_str(&text).unwrap()
}

#[test]
fn sarif_of_a_real_check_validates_and_lists_every_rule_and_finding() {
    let r = report_with_locations();
    let log = sarif_of(&r);
    assert_eq!(log["$schema"], sarif::SCHEMA_URI);
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(log["runs"].as_array().unwrap().len(), 1);
    let run = &log["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "vhdprep");
    assert_eq!(driver["version"], r.tool.version);

    let rules = driver["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|d| d["id"].as_str().unwrap()).collect();
    let expected: Vec<&str> = r.rules.iter().map(|x| x.id).collect();
    assert_eq!(ids, expected);
    for d in rules {
        let info = catalogue::find(d["id"].as_str().unwrap()).unwrap();
        assert_eq!(d["name"], sarif::pascal_case(info.title));
        assert!(!d["name"].as_str().unwrap().contains(' '));
        assert_eq!(d["shortDescription"]["text"], info.title);
        assert_eq!(d["fullDescription"]["text"], info.description);
        let help = d["help"]["text"].as_str().unwrap();
        assert!(help.starts_with(info.description) && help.contains(info.source));
        if let Some(dev) = info.deviation {
            assert!(help.contains(dev), "{help}");
        }
        assert_eq!(
            d["defaultConfiguration"]["level"],
            sarif::level(info.severity)
        );
        assert_eq!(d["properties"]["source"], info.source);
        assert_eq!(d["properties"]["area"], json!(catalogue::Area::of(info.id)));
    }
    let vhd12 = rules.iter().find(|d| d["id"] == "VHD-012").unwrap();
    assert!(vhd12["properties"]["deviation"].is_string());

    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), r.findings.len() + r.allowed.len());
    for (res, (f, allowed)) in results.iter().zip(
        r.findings
            .iter()
            .map(|f| (f, false))
            .chain(r.allowed.iter().map(|f| (f, true))),
    ) {
        assert_eq!(res["ruleId"], f.id);
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], f.id, "ruleIndex points at its rule");
        assert_eq!(res["level"], sarif::level(f.severity));
        assert!(res["message"]["text"]
            .as_str()
            .unwrap()
            .starts_with(&f.message));
        assert_eq!(
            res["properties"]["remediation"].as_str(),
            f.remediation.as_deref()
        );
        assert_eq!(res["suppressions"].is_array(), allowed, "{}", f.id);
        assert_eq!(res["locations"].as_array().unwrap().len(), 1);
        let uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        assert!(!uri.is_empty());
        let fp = res["partialFingerprints"]["primaryLocationLineHash"]
            .as_str()
            .unwrap();
        assert!(fp.len() > 17 && fp.contains(':'), "{fp}");
    }
    let fps: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|x| {
            x["partialFingerprints"]["primaryLocationLineHash"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(fps.len(), results.len(), "fingerprints are unique");

    // The raw fixture's VHD-001 points at the last 512 bytes, where a footer should be.
    let by_rule = |id: &str| results.iter().find(|x| x["ruleId"] == id).unwrap();
    let image_loc = &by_rule("VHD-001")["locations"][0]["physicalLocation"];
    let uri = image_loc["artifactLocation"]["uri"].as_str().unwrap();
    assert!(uri.starts_with("file:///"), "{uri}");
    assert!(
        uri.ends_with("/disk%20image%20%C3%A9%231%20%5Bx%5D.raw"),
        "{uri}"
    );
    assert_eq!(percent_decode(&uri["file://".len()..]), r.image);
    assert_eq!(image_loc["artifactLocation"]["index"], 0);
    assert_eq!(
        image_loc["region"]["byteOffset"],
        r.container.file_size - 512
    );
    assert_eq!(image_loc["region"]["byteLength"], 512);
    assert_eq!(run["artifacts"][0]["location"]["uri"], uri);
    assert_eq!(run["artifacts"][0]["length"], r.container.file_size);

    let disk = &by_rule("VHD-003")["locations"][0]["physicalLocation"];
    assert_eq!(disk["artifactLocation"]["uri"], uri);
    assert_eq!(
        disk["region"],
        json!({"byteOffset": 1024, "byteLength": 512})
    );
    let text = by_rule("VHD-003")["message"]["text"].as_str().unwrap();
    assert!(text.contains("Evidence: offset 64: 0x1234") && text.contains("Fix: vhdprep fix"));

    let guest = &by_rule("VHD-014")["locations"][0]["physicalLocation"];
    assert_eq!(
        guest["artifactLocation"],
        json!({"uri": "etc/waagent.conf", "uriBaseId": sarif::GUEST_ROOT})
    );
    assert_eq!(guest["region"], json!({"startLine": 12}));
    assert_eq!(by_rule("VHD-014")["level"], "note");
    let no_line = &by_rule("VHD-016")["locations"][0]["physicalLocation"];
    assert_eq!(no_line["artifactLocation"]["uri"], "etc/fstab");
    assert!(no_line.get("region").is_none());
    assert!(run["originalUriBaseIds"][sarif::GUEST_ROOT]["description"]["text"].is_string());

    let allowed = by_rule("VHD-010");
    assert_eq!(
        allowed["suppressions"],
        json!([{"kind": "external", "status": "accepted", "justification": "allowed by --allow"}])
    );
    assert_eq!(
        allowed["locations"][0]["physicalLocation"]["region"]["byteOffset"],
        0
    );

    let inv = &run["invocations"][0];
    assert_eq!(inv["executionSuccessful"], true);
    assert_eq!(inv["exitCode"], r.exit_status());
    assert_eq!(r.exit_status(), 1, "the raw fixture fails (VHD-001)");
    let notes = inv["toolExecutionNotifications"].as_array().unwrap();
    let skipped: Vec<_> = r
        .rules
        .iter()
        .filter(|x| x.status == RuleStatus::Skipped)
        .collect();
    assert_eq!(notes.len(), skipped.len());
    for (n, s) in notes.iter().zip(&skipped) {
        assert_eq!(n["associatedRule"]["id"], s.id);
        let idx = n["associatedRule"]["index"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], s.id);
        assert!(n["message"]["text"]
            .as_str()
            .unwrap()
            .ends_with(s.reason.as_deref().unwrap()));
    }
    assert_eq!(run["properties"]["verdict"], "fail");
}

#[test]
fn sarif_fingerprints_are_stable_and_ignore_the_message() {
    let a = sarif::log(&report_with_locations());
    let mut changed = report_with_locations();
    for f in &mut changed.findings {
        f.message.push_str(" (changed)");
    }
    let b = sarif::log(&changed);
    let fp = |log: &Value| -> Vec<Value> {
        log["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["partialFingerprints"].clone())
            .collect()
    };
    assert_eq!(fp(&a), fp(&b));
    assert_eq!(sarif::render(&changed), sarif::render(&changed));
}

#[test]
fn sarif_relative_image_paths_and_data_disks() {
    let mut r = report_with_locations();
    r.image = "images/a b.vhd".into();
    r.data_disks = vec!["/srv/data 1.vhd".into()];
    r.findings.push(
        Finding::new(
            "VHD-002",
            Severity::Error,
            "data disk /srv/data 1.vhd: dynamic VHD: Azure accepts only fixed VHDs",
        )
        .at_disk(60, Some(4)),
    );
    let log = sarif_of(&r);
    let run = &log["runs"][0];
    let results = run["results"].as_array().unwrap();
    let vhd1 = &results.iter().find(|x| x["ruleId"] == "VHD-001").unwrap()["locations"][0];
    assert_eq!(
        vhd1["physicalLocation"]["artifactLocation"],
        json!({"uri": "images/a%20b.vhd", "uriBaseId": sarif::WORKING_DIR, "index": 0})
    );
    let data = &results.iter().find(|x| x["ruleId"] == "VHD-002").unwrap()["locations"][0];
    assert_eq!(
        data["physicalLocation"]["artifactLocation"],
        json!({"uri": "file:///srv/data%201.vhd", "index": 1})
    );
    assert_eq!(run["artifacts"].as_array().unwrap().len(), 2);
    assert_eq!(
        run["artifacts"][1]["location"]["uri"],
        "file:///srv/data%201.vhd"
    );
}

#[test]
fn sarif_carries_hostile_strings_exactly() {
    let r = hostile_report();
    let log = sarif_of(&r);
    let run = &log["runs"][0];
    let res = &run["results"][0];
    assert_eq!(res["ruleId"], "VHD-003");
    assert_eq!(
        res["message"]["text"],
        format!("{HOSTILE}\nEvidence: {HOSTILE}\nFix: {HOSTILE}")
    );
    assert_eq!(res["properties"]["evidence"], HOSTILE);
    assert_eq!(res["properties"]["remediation"], HOSTILE);
    let loc = &res["locations"][0]["physicalLocation"];
    let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
    assert!(
        uri.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)),
        "{uri}"
    );
    assert_eq!(
        format!("/{}", percent_decode(uri)),
        "/etc/we ird/ü<>&\"#?%.conf"
    );
    assert_eq!(loc["region"]["startLine"], 7);
    let notes = run["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap();
    assert!(notes
        .iter()
        .any(|n| n["message"]["text"].as_str().unwrap().ends_with(HOSTILE)));
}

// ---- JUnit -----------------------------------------------------------------------------------

fn junit_of(r: &Report) -> Value {
    let text = render(r, OutputFormat::Junit, false);
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    if let Err(e) = validate_junit(&text) {
        panic!("JUnit does not validate against junit-10.xsd:\n{e}\n{text}");
    }
    parse_xml(&text)
}

/// (suite, testcase) for rule `id`.
fn testcase<'a>(doc: &'a Value, id: &str) -> (&'a Value, &'a Value) {
    for s in children(doc, "testsuite") {
        for c in children(s, "testcase") {
            if c["attrs"]["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{id} "))
            {
                return (s, c);
            }
        }
    }
    panic!("no testcase for {id}");
}

#[test]
fn junit_of_a_real_check_validates_with_one_case_per_rule_and_consistent_counts() {
    let r = report_with_locations();
    let doc = junit_of(&r);
    assert_eq!(doc["tag"], "testsuites");
    let suites = children(&doc, "testsuite");
    let mut total = (0, 0, 0);
    let mut names = Vec::new();
    for s in &suites {
        let cases = children(s, "testcase");
        let fails = cases
            .iter()
            .filter(|c| !children(c, "failure").is_empty())
            .count();
        let skips = cases
            .iter()
            .filter(|c| !children(c, "skipped").is_empty())
            .count();
        assert_eq!(attr_count(s, "tests"), cases.len());
        assert_eq!(attr_count(s, "failures"), fails);
        assert_eq!(attr_count(s, "skipped"), skips);
        assert_eq!(attr_count(s, "errors"), 0);
        assert!(s["attrs"]["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("vhdprep check {}: ", r.image)));
        let props = children(s, "properties");
        let verdict = children(props[0], "property")
            .into_iter()
            .find(|p| p["attrs"]["name"] == "vhdprep.verdict")
            .unwrap();
        assert_eq!(verdict["attrs"]["value"], "fail");
        total = (total.0 + cases.len(), total.1 + fails, total.2 + skips);
        for c in cases {
            let name = c["attrs"]["name"].as_str().unwrap();
            let id = name.split(' ').next().unwrap();
            let area = json!(catalogue::Area::of(id));
            assert_eq!(
                c["attrs"]["classname"],
                format!("vhdprep.{}", area.as_str().unwrap())
            );
            assert_eq!(name, format!("{id} {}", catalogue::find(id).unwrap().title));
            names.push(id.to_string());
        }
    }
    assert_eq!(attr_count(&doc, "tests"), total.0);
    assert_eq!(attr_count(&doc, "failures"), total.1);
    let expected: Vec<String> = r.rules.iter().map(|x| x.id.to_string()).collect();
    assert_eq!(
        names, expected,
        "one test case per rule, in catalogue order"
    );
    let skipped = r
        .rules
        .iter()
        .filter(|x| x.status == RuleStatus::Skipped)
        .count();
    assert_eq!(total.2, skipped);

    let (suite, vhd1) = testcase(&doc, "VHD-001");
    assert_eq!(
        suite["attrs"]["name"],
        format!("vhdprep check {}: Container (VHD)", r.image)
    );
    let failure = children(vhd1, "failure")[0];
    assert_eq!(failure["attrs"]["type"], "error");
    let f = &r.findings.iter().find(|f| f.id == "VHD-001").unwrap();
    assert_eq!(failure["attrs"]["message"], f.message.as_str());
    let text = failure["text"].as_str().unwrap();
    assert!(text.contains(&f.message) && text.contains(f.remediation.as_deref().unwrap()));

    let (_, vhd3) = testcase(&doc, "VHD-003");
    let text = children(vhd3, "failure")[0]["text"].as_str().unwrap();
    assert!(text.contains("location: byte 1024, 512 bytes"), "{text}");
    let (_, vhd16) = testcase(&doc, "VHD-016");
    assert_eq!(children(vhd16, "failure")[0]["attrs"]["type"], "warning");

    // Information only: passes, with the finding as output.
    let (_, vhd14) = testcase(&doc, "VHD-014");
    assert!(children(vhd14, "failure").is_empty());
    let out = children(vhd14, "system-out")[0]["text"].as_str().unwrap();
    assert!(
        out.contains("[info] written by qemu-img") && out.contains("/etc/waagent.conf line 12")
    );
    // Allowed only: passes too; the verdict never fails on it.
    let (_, vhd10) = testcase(&doc, "VHD-010");
    assert!(children(vhd10, "failure").is_empty());
    let out = children(vhd10, "system-out")[0]["text"].as_str().unwrap();
    assert!(out.contains("allowed by --allow"), "{out}");

    for rule in r.rules.iter().filter(|x| x.status == RuleStatus::Skipped) {
        let (_, c) = testcase(&doc, rule.id);
        assert_eq!(
            children(c, "skipped")[0]["attrs"]["message"],
            rule.reason.as_deref().unwrap()
        );
    }
    for rule in r.rules.iter().filter(|x| x.status == RuleStatus::Pass) {
        let (_, c) = testcase(&doc, rule.id);
        assert!(c["children"].as_array().unwrap().is_empty(), "{}", rule.id);
    }
}

#[test]
fn junit_carries_hostile_strings_in_text_and_attributes() {
    let r = hostile_report();
    let text = junit::render(&r);
    assert!(!text.contains('\u{0}') && !text.contains('\u{1b}') && !text.contains('\u{FFFE}'));
    let doc = junit_of(&r);
    let (_, c) = testcase(&doc, "VHD-003");
    let failure = children(c, "failure")[0];
    let clean = hostile_after_xml();
    assert_eq!(failure["attrs"]["message"], clean.as_str());
    let body = failure["text"].as_str().unwrap();
    assert!(body.starts_with(&format!(
        "[error] {clean}\n  evidence: {clean}\n  fix: {clean}\n"
    )));
    assert!(
        body.contains("location: /etc/we ird/ü<>&\"#?%.conf line 7"),
        "{body}"
    );
    let skipped = r
        .rules
        .iter()
        .find(|x| x.status == RuleStatus::Skipped)
        .unwrap();
    let (_, s) = testcase(&doc, skipped.id);
    assert_eq!(
        children(s, "skipped")[0]["attrs"]["message"],
        clean.as_str()
    );
}

#[test]
fn junit_of_an_empty_report_is_valid() {
    let mut r = base_report();
    r.rules.clear();
    r.findings.clear();
    r.allowed.clear();
    let doc = junit_of(&r);
    assert_eq!(attr_count(&doc, "tests"), 0);
    assert!(children(&doc, "testsuite").is_empty());
}

// ---- the validators can fail -----------------------------------------------------------------

#[test]
fn the_validators_reject_broken_documents() {
    let good = sarif::log(&report_with_locations());
    let mut bad = good.clone();
    bad["runs"][0]["results"][0]["level"] = json!("fatal");
    let e = validate_sarif(&bad.to_string()).unwrap_err();
    assert!(e.contains("fatal"), "{e}");
    let mut bad = good.clone();
    bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] =
        json!("a b");
    let e = validate_sarif(&bad.to_string()).unwrap_err();
    assert!(e.contains("uri-reference"), "URI formats are checked: {e}");
    let mut bad = good.clone();
    bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"] = json!({});
    assert!(validate_sarif(&bad.to_string()).is_err());

    let xml = junit::render(&report_with_locations());
    let no_tests = xml.replacen(" tests=\"", " nottests=\"", 2);
    assert!(validate_junit(&no_tests).is_err());
    let unknown = xml.replacen("<skipped ", "<ignored ", 1);
    assert!(validate_junit(&unknown).is_err());
    let broken = xml.clone() + "<";
    assert!(validate_junit(&broken).is_err());
}

// ---- docs ------------------------------------------------------------------------------------

fn keys(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                out.insert(k.clone());
                keys(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
        _ => {}
    }
}

#[test]
fn every_json_report_key_is_documented() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/check-report.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/check-report.md");
    let mut r = report_with_locations();
    // Fill the optional parts a raw fixture leaves empty, so that their keys are checked too.
    r.rules[0].reason = Some("x".into());
    let json: Value = serde_json::from_str(&render(&r, OutputFormat::Json, false)).unwrap();
    let mut all = std::collections::BTreeSet::new();
    keys(&json, &mut all);
    for k in [
        "evidence",
        "remediation",
        "location",
        "kind",
        "offset",
        "length",
        "path",
        "line",
    ] {
        assert!(all.contains(k), "the report used here lacks {k}");
    }
    for k in &all {
        assert!(
            doc.contains(&format!("`{k}`")),
            "docs/check-report.md does not document the key `{k}`"
        );
    }
    assert!(doc.contains(&format!(
        "`schema_version` is {}",
        vhdprep_check::report::SCHEMA_VERSION
    )));
}
