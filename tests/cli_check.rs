//! `vhdprep check` from the command line: exit status, formats, colour, output file, config
//! file, --allow and --fail-on, unreadable and unsupported images, data disks.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample/debian-mini.vhd")
}

fn check(args: &[&str]) -> (Value, i32, String) {
    let out = vhdprep()
        .arg("check")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (v, out.status.code().unwrap(), stderr)
}

fn ids_at(v: &Value, key: &str, severity: &str) -> Vec<String> {
    let mut ids: Vec<String> = v[key]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    ids.dedup();
    ids
}

#[test]
fn json_report_has_the_documented_keys_and_exit_status() {
    let img = sample();
    let (v, code, _) = check(&[img.to_str().unwrap()]);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["image"], img.to_str().unwrap());
    assert_eq!(v["generation"], serde_json::json!(["V2"]));
    assert_eq!(v["os_state"], "Generalized");
    assert_eq!(v["provisioning"]["agent"], "cloud-init");
    assert_eq!(v["container"]["ok"], true);
    assert_eq!(v["container"]["format"], "vhd-fixed");
    let errors = ids_at(&v, "findings", "error");
    // The sample is a trimmed Debian root: no kernel, no sshd, no python.
    assert!(errors.contains(&"KRN-001".to_string()), "{errors:?}");
    assert_eq!(v["verdict"], "fail");
    assert_eq!(code, 1);
    for f in v["findings"].as_array().unwrap() {
        for key in ["id", "severity", "message", "evidence", "remediation"] {
            assert!(f.get(key).is_some(), "finding without {key}: {f}");
        }
        assert!(["error", "warning", "info"].contains(&f["severity"].as_str().unwrap()));
    }
    // Most severe first.
    let rank = |s: &Value| match s.as_str().unwrap() {
        "error" => 0,
        "warning" => 1,
        _ => 2,
    };
    let ranks: Vec<i32> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| rank(&f["severity"]))
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
    // Every catalogue rule but the Marketplace ones is accounted for.
    let rules = v["rules"].as_array().unwrap();
    let listed = vhdprep()
        .args(["rules", "--format", "json"])
        .output()
        .unwrap();
    let catalogue: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let non_cert = catalogue
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["marketplace_only"] == false)
        .count();
    assert_eq!(rules.len(), non_cert);
}

#[test]
fn allow_and_fail_on_decide_the_verdict() {
    let img = sample();
    let img = img.to_str().unwrap();
    let (v, _, _) = check(&[img]);
    let errors = ids_at(&v, "findings", "error");
    let warnings = ids_at(&v, "findings", "warning");
    let mut args = vec![img.to_string()];
    for id in &errors {
        args.extend(["--allow".to_string(), id.to_lowercase()]);
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (v, code, _) = check(&a);
    assert_eq!((v["verdict"].as_str(), code), (Some("pass"), 0), "{v:#}");
    assert_eq!(v["counts"]["error"], 0);
    assert!(!ids_at(&v, "allowed", "error").is_empty());
    // The same allowances with --fail-on warning fail again, on the warnings.
    assert!(!warnings.is_empty());
    let mut b = a.clone();
    b.extend(["--fail-on", "warning"]);
    let (v, code, _) = check(&b);
    assert_eq!((v["verdict"].as_str(), code), (Some("fail"), 1));
}

#[test]
fn config_file_sets_the_policy_and_flags_win() {
    let dir = tempdir();
    let cfg = dir.path().join("vhdprep.toml");
    std::fs::write(
        &cfg,
        "generation = \"v1\"\nfail-on = \"warning\"\nallow = [\"KRN-001\"]\n",
    )
    .unwrap();
    let img = sample();
    let (v, code, _) = check(&[img.to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    assert_eq!(v["policy"]["generation"], "V1");
    assert_eq!(v["policy"]["fail_on"], "warning");
    assert!(v["policy"]["allow"]
        .as_array()
        .unwrap()
        .contains(&"KRN-001".into()));
    // Declared Gen1 on a UEFI-only disk: BOOT-002 is an error.
    assert!(ids_at(&v, "findings", "error").contains(&"BOOT-002".to_string()));
    assert_eq!(code, 1);
    let (v, _, _) = check(&[
        img.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--generation",
        "v2",
        "--fail-on",
        "error",
    ]);
    assert_eq!(v["policy"]["generation"], "V2");
    assert_eq!(v["policy"]["fail_on"], "error");
    assert!(!ids_at(&v, "findings", "error").contains(&"BOOT-002".to_string()));
}

#[test]
fn bad_arguments_and_unreadable_images_exit_2_with_one_line() {
    let img = sample();
    let img = img.to_str().unwrap();
    let dir = tempdir();
    let bad_cfg = dir.path().join("bad.toml");
    std::fs::write(&bad_cfg, "generation = 2\n").unwrap();
    let missing = dir.path().join("missing.vhd");
    for (args, needle) in [
        (vec![img, "--allow", "NOPE-001"], "unknown rule ID"),
        (vec![img, "--config", bad_cfg.to_str().unwrap()], "bad.toml"),
        (vec![missing.to_str().unwrap()], "missing.vhd"),
        (
            vec![img, "--data-disk", missing.to_str().unwrap()],
            "missing.vhd",
        ),
        (vec![img, "--generation", "v3"], "v3"),
    ] {
        let (v, code, stderr) = check(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(v, Value::Null, "no report on stdout for {args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        if !stderr.starts_with("error:") {
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        }
    }
}

#[test]
fn vhdx_and_data_disks_are_findings_not_crashes() {
    let dir = tempdir();
    let vhdx = dir.path().join("disk.vhdx");
    qemu_img(&["create", "-q", "-f", "vhdx", vhdx.to_str().unwrap(), "64M"]);
    let (v, code, _) = check(&[vhdx.to_str().unwrap()]);
    assert_eq!(code, 1);
    // vhdprep reads VHDX (issue 12): VHD-001 for the container, and the (blank) disk inside
    // is judged: no partition table, nothing to boot.
    let errors = ids_at(&v, "findings", "error");
    assert_eq!(errors[0], "VHD-001", "{errors:?}");
    assert!(errors.contains(&"BOOT-001".to_string()), "{errors:?}");
    assert_eq!(
        v["guest_not_examined"],
        "no root filesystem (with /etc/os-release) was found"
    );
    assert_eq!(v["container"]["ok"], false);

    let raw = dir.path().join("data.raw");
    sparse_raw(&raw, 64 << 20, &[]);
    let img = sample();
    let (v, code, _) = check(&[img.to_str().unwrap(), "--data-disk", raw.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(v["data_disks"][0], raw.to_str().unwrap());
    let data_finding = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "VHD-001")
        .expect("the raw data disk is not a VHD");
    assert!(data_finding["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("data disk {}", raw.display())));
}

#[test]
fn text_is_coloured_only_on_a_terminal_without_no_color() {
    let img = sample();
    let piped = vhdprep().args(["check"]).arg(&img).output().unwrap();
    let text = String::from_utf8(piped.stdout).unwrap();
    assert!(text.starts_with("vhdprep check "), "{text}");
    assert!(!text.contains('\x1b'), "colour in piped output");
    assert!(text.contains("Generation      V2"));
    // A pseudo-terminal through util-linux `script`.
    let on_tty = |no_color: bool| {
        let mut cmd = Command::new("script");
        cmd.args(["-qec"])
            .arg(format!(
                "{} check {}",
                env!("CARGO_BIN_EXE_vhdprep"),
                img.display()
            ))
            .arg("/dev/null")
            .env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().expect("run script (install util-linux)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_tty(false);
    assert!(coloured.contains("\x1b[1;31m"), "{coloured}");
    assert!(!on_tty(true).contains('\x1b'));
}

#[test]
fn output_file_gets_the_report_and_stdout_stays_empty() {
    let dir = tempdir();
    let img = sample();
    for (format, check_text) in [
        ("json", "\"schema_version\": 1"),
        ("sarif", "\"version\": \"2.1.0\""),
        ("junit", "<testsuites"),
        ("text", "Generation"),
    ] {
        let out_path = dir.path().join(format!("report.{format}"));
        let out = vhdprep()
            .arg("check")
            .arg(&img)
            .args(["--format", format, "--output"])
            .arg(&out_path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        let written = std::fs::read_to_string(&out_path).unwrap();
        assert!(written.contains(check_text), "{format}: {written}");
        assert!(!written.contains('\x1b'));
    }
    // An unwritable destination is exit 2 with the path.
    let out = vhdprep()
        .arg("check")
        .arg(&img)
        .args(["--output", "/nonexistent-dir/report.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-dir/report.json"));
}

#[test]
fn data_disks_without_structure_get_vhd_017_and_unread_formats_are_not_raw() {
    let dir = tempdir();
    let blank = dir.path().join("blank.raw");
    sparse_raw(&blank, 64 << 20, &[]);
    let noise = dir.path().join("noise.raw");
    sparse_raw(&noise, 64 << 20, &[(0, 1 << 20)]);
    let fs = dir.path().join("fs.raw");
    sparse_raw(&fs, 64 << 20, &[]);
    assert!(tool(
        "mkfs.ext4",
        "e2fsprogs",
        &["-q", "-F", fs.to_str().unwrap()]
    )
    .status
    .success());
    let vdi = dir.path().join("data.vdi");
    qemu_img(&["create", "-q", "-f", "vdi", vdi.to_str().unwrap(), "64M"]);
    let img = sample();
    let mut args = vec![img.to_str().unwrap()];
    for d in [&blank, &noise, &fs, &vdi] {
        args.extend(["--data-disk", d.to_str().unwrap()]);
    }
    let (v, code, stderr) = check(&args);
    assert_eq!(code, 1, "{stderr}");
    let of = |disk: &Path, id: &str| -> Vec<String> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["id"] == id
                    && f["message"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("data disk {}:", disk.display()))
            })
            .map(|f| f["severity"].as_str().unwrap().to_string())
            .collect()
    };
    // A blank data disk is legitimate (information); noise may be garbage (warning); a
    // filesystem is a disk. The VDI is VHD-001 by its own name, never judged as raw.
    assert_eq!(of(&blank, "VHD-017"), ["info"]);
    assert_eq!(of(&noise, "VHD-017"), ["warning"]);
    assert!(of(&fs, "VHD-017").is_empty());
    assert!(of(&vdi, "VHD-017").is_empty());
    assert_eq!(of(&vdi, "VHD-001"), ["error"]);
    let vdi_msg = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "VHD-001" && f["message"].as_str().unwrap().contains("data.vdi"))
        .unwrap();
    assert!(vdi_msg["message"]
        .as_str()
        .unwrap()
        .contains("VirtualBox VDI image (vdi)"));
    // vhdprep reads VDI (issue 12): one conversion makes the VHD.
    assert_eq!(
        vdi_msg["remediation"].as_str().unwrap(),
        format!("vhdprep convert {} OUT.vhd", vdi.display())
    );
}
