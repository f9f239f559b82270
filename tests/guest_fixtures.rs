//! `inspect`, `ls` and `cat` on real images built by real tools (fixtures/build-images.sh:
//! mmdebstrap with Debian's packages, mkfs.*, sgdisk/sfdisk, LVM), compared with what those
//! tools reported at build time (`sfdisk --json`, `blkid -p`, `lvs`) and with the source tree
//! the filesystems were filled from (sizes, SHA-256 of file bytes, symlink targets, directory
//! entries), recorded in each image's manifest.
//!
//! The images are built by the test command (`scripts/test.sh`) when missing; a missing image
//! fails these tests with the command to build it.

mod common;
use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use vhdprep::disk::DiskImage;
use vhdprep::fs::FileKind;

const LAYOUTS: [&str; 8] = [
    "gen2-gpt-ext4",
    "gen1-mbr-ext4",
    "hybrid-gpt",
    "gen2-gpt-xfs",
    "gen2-gpt-btrfs",
    "rhel-lvm",
    "separate-var",
    "arm64-gpt-ext4",
];

fn fixture_dir() -> PathBuf {
    std::env::var_os("VHDPREP_FIXTURE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/cache"))
}

fn fixture(name: &str) -> (PathBuf, Value) {
    let dir = fixture_dir();
    let img = dir.join(format!("{name}.raw"));
    let man = dir.join(format!("{name}.json"));
    assert!(
        img.exists() && man.exists(),
        "fixture {name} missing in {}: build it with `fixtures/build-images.sh` (scripts/test.sh does)",
        dir.display()
    );
    let m: Value = serde_json::from_slice(&read(&man)).expect("manifest JSON");
    (img, m)
}

fn inspect_json(img: &std::path::Path) -> Value {
    let out = run(&["inspect", "--json", img.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Partitions, filesystems and mount points equal what sfdisk and blkid reported.
fn check_layout(name: &str) {
    let (img, m) = fixture(name);
    let v = inspect_json(&img);
    let label = m["partition_table"]["label"].as_str().unwrap();
    let want_kind = if label == "dos" { "mbr" } else { label };
    assert_eq!(
        v["partition_table"].as_str().unwrap().to_lowercase(),
        want_kind,
        "{name}"
    );
    let ours = v["partitions"].as_array().unwrap();
    let theirs = m["partitions"].as_array().unwrap();
    assert_eq!(ours.len(), theirs.len(), "{name}: partition count");
    for t in theirs {
        let n = t["number"].as_u64().unwrap();
        let o = ours
            .iter()
            .find(|o| o["number"].as_u64() == Some(n))
            .unwrap_or_else(|| panic!("{name}: partition {n} missing"));
        assert_eq!(o["start"], t["start"], "{name} p{n} start");
        assert_eq!(o["size"], t["size"], "{name} p{n} size");
        let ty = o["type"].as_str().unwrap();
        let want = t["type"].as_str().unwrap();
        // sfdisk prints MBR types as bare hex ("83"); we print "0x83".
        assert_eq!(
            ty.trim_start_matches("0x").to_uppercase(),
            want.to_uppercase(),
            "{name} p{n} type"
        );
        let blkid = &t["filesystem"]["blkid"];
        if blkid.is_object() {
            let fs = &o["filesystem"];
            assert_eq!(fs["type"], blkid["TYPE"], "{name} p{n} TYPE vs blkid");
            assert_eq!(fs["uuid"], blkid["UUID"], "{name} p{n} UUID vs blkid");
            assert_eq!(
                fs["label"].as_str(),
                blkid["LABEL"].as_str(),
                "{name} p{n} LABEL vs blkid"
            );
        } else {
            assert!(
                o["filesystem"].is_null(),
                "{name} p{n}: blkid saw no filesystem, we saw {}",
                o["filesystem"]
            );
        }
        assert_eq!(o["mountpoint"], t["mountpoint"], "{name} p{n} mountpoint");
    }
    if let Some(lvm) = m.get("lvm") {
        let lvs = v["logical_volumes"].as_array().unwrap();
        for t in lvm["lvs"].as_array().unwrap() {
            let o = lvs
                .iter()
                .find(|o| o["lv"] == t["name"])
                .unwrap_or_else(|| panic!("{name}: LV {} missing", t["name"]));
            assert_eq!(o["vg"], lvm["vg"]["vg_name"]);
            assert_eq!(o["size"], t["size"], "{name} LV size vs lvs");
            assert_eq!(o["filesystem"]["uuid"], t["filesystem"]["blkid"]["UUID"]);
            assert_eq!(o["mountpoint"], t["mountpoint"]);
        }
    }
    assert_eq!(v["os"]["id"], "debian", "{name}");
    assert_eq!(v["os"]["version_id"], "12", "{name}");
    let arch = if m["boot"]["architecture"] == "Arm64" {
        "aarch64"
    } else {
        "x86_64"
    };
    assert_eq!(v["architecture"], arch, "{name}");
    // Every fstab entry of the guest is mounted where the manifest says.
    for e in m["fstab"].as_array().unwrap() {
        let f = v["fstab"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["entry"]["mountpoint"] == e["file"])
            .unwrap_or_else(|| panic!("{name}: fstab entry for {} missing", e["file"]));
        assert_eq!(f["entry"]["spec"], e["spec"]);
        if e["vfstype"] != "swap" {
            assert_eq!(f["mounted"], true, "{name}: {} not mounted: {f}", e["file"]);
        }
    }
}

/// Files, links and directories read through the assembled guest equal the source tree.
fn check_files(name: &str) {
    let (img, m) = fixture(name);
    let image = DiskImage::open(&img).unwrap();
    let (_, _, guest) = vhdprep::guest::inspect(&image).unwrap();
    let tree = guest.expect("a guest").tree;
    let files = m["files"].as_object().unwrap();
    assert!(files.len() >= 10, "{name}: manifest lists too few files");
    for (path, want) in files {
        let p = path.as_bytes();
        match want["kind"].as_str().unwrap() {
            "file" => {
                let bytes = tree
                    .read_file(p, 1 << 30)
                    .unwrap_or_else(|e| panic!("{name}: {path}: {e}"));
                assert_eq!(
                    bytes.len() as u64,
                    want["size"].as_u64().unwrap(),
                    "{name}: {path} size"
                );
                assert_eq!(
                    hex(&bytes),
                    want["sha256"].as_str().unwrap(),
                    "{name}: {path} bytes"
                );
            }
            "symlink" => {
                let t = tree
                    .read_link(p)
                    .unwrap_or_else(|e| panic!("{name}: {path}: {e}"));
                assert_eq!(
                    String::from_utf8_lossy(&t),
                    want["target"].as_str().unwrap(),
                    "{name}: {path}"
                );
                assert_eq!(tree.symlink_metadata(p).unwrap().kind, FileKind::Symlink);
            }
            "dir" => {
                let mut ours: Vec<String> = tree
                    .read_dir(p)
                    .unwrap_or_else(|e| panic!("{name}: {path}: {e}"))
                    .iter()
                    .map(|e| e.name_lossy())
                    .collect();
                let mut theirs: Vec<String> = want["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap().to_string())
                    .collect();
                ours.sort();
                theirs.sort();
                assert_eq!(ours, theirs, "{name}: {path} entries");
            }
            "missing" => assert!(
                tree.symlink_metadata(path.as_bytes()).is_err(),
                "{name}: {path} should not exist"
            ),
            other => panic!("unknown kind {other}"),
        }
    }
    // The UEFI fallback loader is reachable through the fstab mount of the ESP, whatever the
    // case on disk, and (where there is an ESP) it is Debian's signed shim: a PE file.
    if let Some(loader) = m["boot"]["esp_loader"].as_str() {
        let lower = format!("/boot/efi{}", loader.to_ascii_lowercase());
        let bytes = tree.read_file(lower.as_bytes(), 1 << 30).expect("loader");
        assert_eq!(&bytes[..2], b"MZ", "{name}: {loader} is a PE image");
    }
}

macro_rules! layout_tests {
    ($($id:ident => $name:literal),*) => {
        $(
            mod $id {
                #[test]
                fn partitions_filesystems_mounts_os_arch() {
                    super::check_layout($name);
                }
                #[test]
                fn files_links_and_directories() {
                    super::check_files($name);
                }
            }
        )*
    };
}

layout_tests! {
    gen2_gpt_ext4 => "gen2-gpt-ext4",
    gen1_mbr_ext4 => "gen1-mbr-ext4",
    hybrid_gpt => "hybrid-gpt",
    gen2_gpt_xfs => "gen2-gpt-xfs",
    gen2_gpt_btrfs => "gen2-gpt-btrfs",
    rhel_lvm => "rhel-lvm",
    separate_var => "separate-var",
    arm64_gpt_ext4 => "arm64-gpt-ext4"
}

#[test]
fn every_built_layout_is_tested() {
    for (i, name) in LAYOUTS.iter().enumerate() {
        fixture(name);
        assert!(!LAYOUTS[..i].contains(name), "{name} listed twice");
    }
    for e in std::fs::read_dir(fixture_dir()).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = n.strip_suffix(".raw") {
            assert!(
                LAYOUTS.contains(&stem),
                "fixture {stem} has no test in LAYOUTS"
            );
        }
    }
}

#[test]
fn committed_sample_image_inspects() {
    let img = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample/debian-mini.vhd");
    let man: Value = serde_json::from_slice(&read(&img.with_extension("json"))).unwrap();
    let v = inspect_json(&img);
    assert_eq!(v["format"], "vhd-fixed");
    assert_eq!(v["os"]["id"], "debian");
    for t in man["partitions"].as_array().unwrap() {
        let n = t["number"].as_u64();
        let o = v["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["number"].as_u64() == n)
            .unwrap();
        assert_eq!(o["filesystem"]["uuid"], t["filesystem"]["uuid"]);
        assert_eq!(o["start"], t["start"]);
    }
}

#[test]
fn ls_and_cat_through_the_cli() {
    let (img, m) = fixture("rhel-lvm");
    let s = img.to_str().unwrap();
    let out = run(&["ls", "-l", s, "/boot/efi/EFI/BOOT"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("BOOTX64.EFI"));
    let out = run(&["cat", s, "/etc/waagent.conf"]);
    assert!(out.status.success());
    assert_eq!(
        hex(&out.stdout),
        m["files"]["/etc/waagent.conf"]["sha256"].as_str().unwrap()
    );
    // A missing path: exit 2, one line naming the image and the path.
    let out = run(&["cat", s, "/etc/no-such-file"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rhel-lvm.raw") && err.contains("/etc/no-such-file"),
        "{err}"
    );
    // --partition reads a filesystem that no fstab mounts on its own (here the ESP, by number).
    let out = run(&["ls", "--partition", "1", s, "/EFI"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l == "BOOT"));
    let out = run(&["ls", "--partition", "9", s, "/"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn dynamic_and_fixed_vhds_of_a_layout_read_the_same_guest() {
    let (img, m) = fixture("gen2-gpt-xfs");
    let d = tempdir();
    let want = m["files"]["/etc/waagent.conf"]["sha256"].as_str().unwrap();
    for (name, opts) in [
        ("dyn.vhd", "subformat=dynamic"),
        ("fixed.vhd", "subformat=fixed,force_size=on"),
    ] {
        let vhd = p(d.path(), name);
        qemu_vhd_from_raw(&img, &vhd, opts);
        let out = run(&["cat", vhd.to_str().unwrap(), "/etc/waagent.conf"]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(hex(&out.stdout), want, "{name}");
        let v = inspect_json(&vhd);
        assert_eq!(v["partitions"][1]["mountpoint"], "/", "{name}");
        std::fs::remove_file(&vhd).unwrap();
    }
}

/// `inspect --packages --json` lists every installed package of every layout with the version
/// its manifest recorded (fixtures/lib/fixtures.py read the image's dpkg status file at build
/// time: `installed`, name → version, `name:arch` for a second architecture), and names the
/// database it read; the text listing has one line per package. The arm64 image is made by
/// `mmdebstrap --variant=extract`: its status file is empty (its manifest lists the extracted
/// packages instead), and so is our list.
#[test]
fn inspect_packages_equal_the_manifest() {
    for name in LAYOUTS {
        let (img, mut m) = fixture(name);
        if name == "arm64-gpt-ext4" {
            let extracted = m["installed"].as_object().map_or(0, |o| o.len());
            assert!(extracted > 150, "{name}: {extracted}");
            m["installed"] = serde_json::json!({});
        }
        let out = run(&["inspect", "--packages", "--json", img.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut ours = serde_json::Map::new();
        for p in v["packages"].as_array().expect("packages") {
            assert_eq!(p["source"], "dpkg", "{name}: {p}");
            let n = p["name"].as_str().unwrap();
            let key = if ours.contains_key(n) {
                format!("{n}:{}", p["arch"].as_str().unwrap())
            } else {
                n.to_string()
            };
            assert!(
                ours.insert(key, p["version"].clone()).is_none(),
                "{name}: {p}"
            );
            assert!(p["arch"].is_string(), "{name}: {p}");
        }
        let theirs = m["installed"].as_object().expect("manifest installed");
        assert!(
            theirs.len() > 150 || name == "arm64-gpt-ext4",
            "{name}: {} packages",
            theirs.len()
        );
        assert_eq!(&ours, theirs, "{name}");
        let dbs = v["package_databases"].as_array().unwrap();
        assert_eq!(dbs.len(), 1, "{name}: {dbs:?}");
        assert_eq!(dbs[0]["source"], "dpkg");
        assert_eq!(dbs[0]["path"], "/var/lib/dpkg/status");
        assert_eq!(dbs[0]["packages"].as_u64(), Some(theirs.len() as u64));
        assert_eq!(dbs[0]["skipped"].as_u64(), Some(0));
    }
    let (img, m) = fixture("gen2-gpt-ext4");
    let out = run(&["inspect", "--packages", img.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    let n = m["installed"].as_object().unwrap().len();
    assert!(
        text.contains(&format!("packages: {n} from dpkg /var/lib/dpkg/status")),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("openssh-server "))
        .expect("openssh-server listed");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "openssh-server",
            m["installed"]["openssh-server"].as_str().unwrap(),
            "amd64",
            "dpkg"
        ]
    );
    // Plain `inspect` does not read the package database.
    let plain = run(&["inspect", img.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("packages:"));
}
