//! `vhdprep gallery` as a user runs it, on the real fixture images: JSON, text, az and ARM
//! output, exit statuses for contradicting declarations, bad names and versions, and
//! unreadable images.
//!
//! The az flags checked here are those of the `az sig image-definition create` and
//! `az sig image-version create` references (learn.microsoft.com/cli/azure/sig); the ARM
//! property names those of the `Microsoft.Compute/galleries/images` template reference.

mod common;

use common::{fixture_raw, run, vhdprep};
use serde_json::Value;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The value following `flag` in a rendered az command.
fn flag<'a>(cmd: &'a str, flag: &str) -> &'a str {
    let rest = cmd
        .split(&format!("{flag} "))
        .nth(1)
        .unwrap_or_else(|| panic!("{flag} missing from {cmd}"));
    if let Some(q) = rest.strip_prefix('"') {
        q.split('"').next().unwrap()
    } else {
        rest.split_whitespace().next().unwrap()
    }
}

#[test]
fn json_report_on_a_gen2_image() {
    let img = fixture_raw("gen2-gpt-ext4");
    let o = run(&[
        "gallery",
        &img,
        "--name",
        "debian-12-gen2",
        "--version",
        "1.2.3",
        "--security-type",
        "trusted-launch-supported",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let d = &j["definition"];
    assert_eq!(d["name"], "debian-12-gen2");
    assert_eq!(d["os_type"]["value"], "Linux");
    assert_eq!(d["os_state"]["value"], "Generalized");
    assert_eq!(d["hyper_v_generation"]["value"], "V2");
    assert_eq!(d["architecture"]["value"], "x64");
    assert!(!d["os_state"]["evidence"].as_array().unwrap().is_empty());
    let features: Vec<(&str, &str)> = d["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        features,
        [
            ("SecurityType", "TrustedLaunchSupported"),
            ("IsAcceleratedNetworkSupported", "True"),
            ("DiskControllerTypes", "SCSI"),
        ]
    );
    assert_eq!(d["omitted"][0]["name"], "IsHibernateSupported");
    assert_eq!(j["contradicts_disk"], false);
    assert!(
        j["skipped"].get("GAL-009").is_none(),
        "the name was checked"
    );
    // az: the definition and, with --version, the image version.
    let az: Vec<&str> = j["az"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(az.len(), 2);
    let def = az[0];
    assert!(def.starts_with("az sig image-definition create "));
    for (f, v) in [
        ("--resource-group", "RG"),
        ("--gallery-name", "GALLERY"),
        ("--gallery-image-definition", "debian-12-gen2"),
        ("--publisher", "PUBLISHER"),
        ("--offer", "OFFER"),
        ("--sku", "SKU"),
        ("--os-type", "Linux"),
        ("--os-state", "Generalized"),
        ("--hyper-v-generation", "V2"),
        ("--architecture", "x64"),
        (
            "--features",
            "SecurityType=TrustedLaunchSupported IsAcceleratedNetworkSupported=True DiskControllerTypes=SCSI",
        ),
    ] {
        assert_eq!(flag(def, f), v, "{f} in {def}");
    }
    let ver = az[1];
    assert!(ver.starts_with("az sig image-version create "));
    assert_eq!(flag(ver, "--gallery-image-version"), "1.2.3");
    assert_eq!(flag(ver, "--gallery-image-definition"), "debian-12-gen2");
    assert_eq!(flag(ver, "--os-vhd-uri"), "VHD_BLOB_URI");
    assert_eq!(flag(ver, "--os-vhd-storage-account"), "STORAGE_ACCOUNT_ID");
    // ARM: one galleries/images resource with the same values.
    let arm = &j["arm"];
    assert!(arm["$schema"]
        .as_str()
        .unwrap()
        .contains("deploymentTemplate.json"));
    let res = &arm["resources"][0];
    assert_eq!(res["type"], "Microsoft.Compute/galleries/images");
    assert_eq!(res["apiVersion"], "2023-07-03");
    assert_eq!(
        arm["parameters"]["imageDefinitionName"]["defaultValue"],
        "debian-12-gen2"
    );
    let p = &res["properties"];
    assert_eq!(p["osType"], "Linux");
    assert_eq!(p["osState"], "Generalized");
    assert_eq!(p["hyperVGeneration"], "V2");
    assert_eq!(p["architecture"], "x64");
    assert_eq!(p["features"][0]["name"], "SecurityType");
    assert_eq!(p["features"][0]["value"], "TrustedLaunchSupported");
    assert_eq!(p["identifier"]["publisher"], "[parameters('publisher')]");
}

#[test]
fn text_report_on_a_hybrid_image_lists_both_generations() {
    let o = run(&["gallery", &fixture_raw("hybrid-gpt"), "--name", "hybrid"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = stdout(&o);
    for needle in [
        "hyperVGeneration                V2 (possible: V1, V2)",
        "V2 recommended",
        "BIOS boot partition 14",
        "SecurityType                    TrustedLaunchSupported",
        "signed by a Microsoft UEFI CA",
        "IsHibernateSupported",
        "az sig image-definition create",
        "--gallery-image-definition hybrid",
        "\"type\": \"Microsoft.Compute/galleries/images\"",
    ] {
        assert!(t.contains(needle), "{needle:?} missing:\n{t}");
    }
    assert!(
        !t.contains("az sig image-version create"),
        "no --version given"
    );
}

#[test]
fn arm_output_of_a_gen1_image_is_a_template() {
    let o = run(&["gallery", &fixture_raw("gen1-mbr-ext4"), "--format", "arm"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let arm: Value = serde_json::from_str(&stdout(&o)).expect("ARM JSON");
    let p = &arm["resources"][0]["properties"];
    assert_eq!(p["hyperVGeneration"], "V1");
    assert_eq!(p["features"][0]["value"], "Standard");
    assert_eq!(p["features"][2]["value"], "SCSI");
    assert_eq!(
        arm["parameters"]["imageDefinitionName"]["defaultValue"],
        "IMAGE_DEFINITION"
    );
    // Nothing declared: the findings (GAL-005 advice) go to stderr, the exit status stays 0.
    assert!(stderr(&o).contains("GAL-005"), "{}", stderr(&o));
}

#[test]
fn declared_values_contradicting_the_disk_exit_1() {
    let o = run(&[
        "gallery",
        &fixture_raw("gen1-mbr-ext4"),
        "--generation",
        "v2",
        "--os-state",
        "specialized",
        "--format",
        "az",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let az = stdout(&o);
    assert_eq!(flag(&az, "--hyper-v-generation"), "V2");
    assert_eq!(flag(&az, "--os-state"), "Specialized");
    let e = stderr(&o);
    assert!(
        e.contains("GAL-003 error") && e.contains("GAL-002 error"),
        "{e}"
    );
}

#[test]
fn bad_names_versions_and_images_exit_2() {
    let img = fixture_raw("gen2-gpt-ext4");
    for (args, needle) in [
        (vec!["--name", "-debian"], "GAL-009"),
        (vec!["--name=debian-"], "start and end"),
        (vec!["--name", "has space"], "GAL-009"),
        (vec!["--name", &"x".repeat(81)], "81 characters"),
        (vec!["--version", "1.0"], "GAL-010"),
        (vec!["--version", "1.0.0-rc1"], "GAL-010"),
        (vec!["--version", "-1.0.0"], "GAL-010"),
        (vec!["--version", "1.4294967296.0"], "32-bit"),
    ] {
        let o = vhdprep()
            .arg("gallery")
            .arg(&img)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = stderr(&o);
        assert!(e.contains(needle), "{args:?}: {e}");
        assert_eq!(e.lines().count(), 1, "one line: {e}");
        assert!(o.stdout.is_empty());
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.vhd");
    let o = run(&["gallery", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.vhd"), "{}", stderr(&o));
    // Readable, but nothing to derive a definition from.
    let blank = dir.path().join("blank.raw");
    std::fs::File::create(&blank)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let o = run(&["gallery", blank.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot derive the image definition"),
        "{}",
        stderr(&o)
    );
}
