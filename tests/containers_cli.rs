//! The containers vhdprep reads itself (issue 12), through the CLI: images written by qemu-img
//! (qcow2, VHDX, streamOptimized VMDK, VDI, a qcow2 backing chain), an OVA made by GNU tar and a
//! differencing VHD made from the VHD specification, all from one raw source holding a GPT and
//! an ext4 made by sgdisk and mkfs.ext4. `info --json` names each format and its own fields,
//! `ls` lists the ext4 root through the container, `checksum --scope disk` equals `sha256sum`
//! of the source, `convert` gives a VHD that `qemu-img compare` finds equal to the source and
//! that vhdprep's own check accepts; a missing backing file is one line and exit 2; `check` on a
//! qcow2 of a fixture disk reports VHD-001 and judges the guest.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

const MIB: u64 = 1 << 20;
/// The source disk: small, so that each format's round trip takes a fraction of a second.
const SIZE: u64 = 48 * MIB;

/// A raw disk with a GPT (sgdisk) and one ext4 partition (mkfs.ext4 -d) holding /etc and a
/// file of pattern data; returns its path.
fn source(dir: &Path) -> PathBuf {
    let raw = p(dir, "source.raw");
    std::fs::File::create(&raw).unwrap().set_len(SIZE).unwrap();
    let o = tool(
        "sgdisk",
        "gdisk",
        &["-n1:2048:0", "-t1:8300", raw.to_str().unwrap()],
    );
    assert!(o.status.success(), "sgdisk: {o:?}");
    let tree = p(dir, "tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("etc/os-release"), "ID=debian\nVERSION_ID=12\n").unwrap();
    std::fs::write(tree.join("etc/hostname"), "containers\n").unwrap();
    std::fs::write(tree.join("data.bin"), pattern(7, 3 << 20)).unwrap();
    let fs = p(dir, "part.ext4");
    // The partition: 2048 .. end - 34 sectors; the filesystem a little smaller.
    std::fs::File::create(&fs)
        .unwrap()
        .set_len(SIZE - 2 * MIB)
        .unwrap();
    let o = tool(
        "mkfs.ext4",
        "e2fsprogs",
        &[
            "-q",
            "-F",
            "-d",
            tree.to_str().unwrap(),
            fs.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "mkfs.ext4: {o:?}");
    let o = tool(
        "dd",
        "coreutils",
        &[
            &format!("if={}", fs.display()),
            &format!("of={}", raw.display()),
            "bs=1M",
            "seek=1",
            "conv=notrunc,sparse",
            "status=none",
        ],
    );
    assert!(o.status.success(), "dd: {o:?}");
    raw
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(out: Output) -> String {
    assert_ok(&out);
    String::from_utf8(out.stdout).unwrap()
}

fn info(path: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["info", "--json", s(path)];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(
        out.status.code() == Some(1) || out.status.code() == Some(0),
        "{out:?}"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn disk_sha256(path: &Path, extra: &[&str]) -> String {
    let mut args = vec!["checksum", "--scope", "disk", "--sha256", "--json", s(path)];
    args.extend_from_slice(extra);
    let v: serde_json::Value = serde_json::from_str(&ok(run(&args))).unwrap();
    v["sha256"].as_str().unwrap().to_string()
}

/// `ls /` and `ls /etc` through the container.
fn assert_lists_the_root(path: &Path, extra: &[&str]) {
    let mut args = vec!["ls", s(path), "/etc"];
    args.extend_from_slice(extra);
    let etc = ok(run(&args));
    assert!(
        etc.lines().any(|l| l == "os-release") && etc.lines().any(|l| l == "hostname"),
        "{}: {etc}",
        path.display()
    );
    let mut args = vec!["cat", s(path), "/etc/hostname"];
    args.extend_from_slice(extra);
    assert_eq!(ok(run(&args)), "containers\n");
}

/// `convert` to a VHD equal to `reference` (in `ref_format`) for qemu-img, accepted by
/// vhdprep's own check.
fn assert_converts(path: &Path, reference: &Path, ref_format: &str, extra: &[&str]) {
    let out = PathBuf::from(format!("{}.out.vhd", path.display()));
    let mut args = vec!["convert", "-q", s(path), s(&out)];
    args.extend_from_slice(extra);
    ok(run(&args));
    assert!(
        qemu_identical(reference, ref_format, &out, "vpc"),
        "{}: the converted VHD differs from the source",
        path.display()
    );
    assert_own_check_clean(&out);
}

#[test]
fn every_qemu_img_format_reads_like_its_source() {
    let dir = tempdir();
    let raw = source(dir.path());
    let want = sha(&raw);
    for (format, opts) in [
        ("qcow2", None),
        ("vhdx", None),
        ("vmdk", Some("subformat=streamOptimized")),
        ("vdi", None),
    ] {
        let img = p(dir.path(), &format!("disk.{format}"));
        let mut args = vec!["convert", "-q", "-f", "raw", "-O", format];
        if let Some(o) = opts {
            args.extend(["-o", o]);
        }
        args.extend([s(&raw), s(&img)]);
        qemu_img(&args);
        let v = info(&img, &[]);
        assert_eq!(v["format"], format, "{v}");
        assert_eq!(v["virtual_size"], SIZE, "{format}");
        assert!(v.get("unreadable").is_none(), "{v}");
        let f = &v[format];
        match format {
            "qcow2" => {
                assert_eq!(f["version"], 3);
                assert_eq!(f["cluster_size"], 65536);
                assert_eq!(f["dirty"], false);
                assert_eq!(f["snapshots"], serde_json::json!([]));
            }
            "vhdx" => {
                assert_eq!(f["logical_sector_size"], 512);
                assert_eq!(f["block_size"].as_u64().unwrap() % MIB, 0, "{f}");
                assert_eq!(f["log"]["non_empty"], false);
            }
            "vmdk" => {
                assert_eq!(f["create_type"], "streamOptimized");
                assert_eq!(f["sparse"]["compress_algorithm"], 1);
            }
            _ => {
                assert_eq!(f["image_type"], "dynamic");
                assert_eq!(f["block_size"], MIB);
            }
        }
        let ids = finding_ids(&v);
        assert_eq!(ids, ["VHD-001"], "{format}: {v}");
        assert!(
            v["findings"][0]["remediation"]
                .as_str()
                .unwrap()
                .starts_with("vhdprep convert "),
            "{v}"
        );
        assert_lists_the_root(&img, &[]);
        assert_eq!(disk_sha256(&img, &[]), want, "{format}");
        assert_converts(&img, &raw, "raw", &[]);
    }
}

/// The OVF descriptor of an OVA holding `disk` of `capacity` bytes.
fn ovf(disk: &str, capacity: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="{disk}" ovf:id="file1"/></References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:capacity="{capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>vm</Info></VirtualSystem>
</Envelope>
"#
    )
}

#[test]
fn an_ova_made_by_tar_is_read_in_place() {
    let dir = tempdir();
    let raw = source(dir.path());
    let d = dir.path();
    qemu_img(&[
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "vmdk",
        "-o",
        "subformat=streamOptimized",
        s(&raw),
        s(&p(d, "vm-disk1.vmdk")),
    ]);
    std::fs::write(p(d, "vm.ovf"), ovf("vm-disk1.vmdk", SIZE)).unwrap();
    let o = tool(
        "tar",
        "tar",
        &[
            "-C",
            s(d),
            "--format=ustar",
            "-cf",
            s(&p(d, "vm.ova")),
            "vm.ovf",
            "vm-disk1.vmdk",
        ],
    );
    assert!(o.status.success(), "tar: {o:?}");
    let ova = p(d, "vm.ova");
    let v = info(&ova, &[]);
    assert_eq!(v["format"], "ova", "{v}");
    assert_eq!(v["ova"]["ovf_first"], true);
    assert_eq!(v["ova"]["disk_read"], "vm-disk1.vmdk");
    assert_eq!(v["ova"]["vmdk"]["create_type"], "streamOptimized");
    assert_eq!(v["virtual_size"], SIZE);
    assert_eq!(finding_ids(&v), ["VHD-001"]);
    assert_lists_the_root(&ova, &[]);
    assert_eq!(disk_sha256(&ova, &[]), sha(&raw));
    assert_converts(&ova, &raw, "raw", &[]);
    // A tar without an OVF stays a tar, refused by name.
    let o = tool(
        "tar",
        "tar",
        &["-C", s(d), "-cf", s(&p(d, "plain.tar")), "vm-disk1.vmdk"],
    );
    assert!(o.status.success());
    assert_eq!(info(&p(d, "plain.tar"), &[])["format"], "tar");
    assert_one_line_error(
        &run(&["ls", s(&p(d, "plain.tar"))]),
        &["plain.tar", "(tar)"],
    );
}

#[test]
fn a_qcow2_backing_chain_is_followed_next_to_the_image_or_given() {
    let dir = tempdir();
    let raw = source(dir.path());
    let d = dir.path();
    let base = p(d, "base.qcow2");
    let top = p(d, "top.qcow2");
    qemu_img(&[
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "qcow2",
        s(&raw),
        s(&base),
    ]);
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "base.qcow2",
        "-F",
        "qcow2",
        s(&top),
    ]);
    // Data over the base's ext4 region, past the filesystem's metadata.
    let o = tool(
        "qemu-io",
        "qemu-utils",
        &["-c", "write -P 0x5c 40M 192k", s(&top)],
    );
    assert!(o.status.success(), "qemu-io: {o:?}");
    let merged = p(d, "top.raw");
    qemu_img(&["convert", "-q", "-O", "raw", s(&top), s(&merged)]);
    let v = info(&top, &[]);
    assert_eq!(v["qcow2"]["backing_file"], "base.qcow2");
    let chain: Vec<&str> = v["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(chain, [s(&top), s(&base)]);
    assert_eq!(disk_sha256(&top, &[]), sha(&merged));
    assert_lists_the_root(&top, &[]);
    assert_converts(&top, &top, "qcow2", &[]);

    // Moved away from its base: one line naming the backing file and where it was looked
    // for, exit 2; info still describes the child and names the missing parent.
    let moved = p(d, "elsewhere");
    std::fs::create_dir(&moved).unwrap();
    let lone = moved.join("top.qcow2");
    std::fs::copy(&top, &lone).unwrap();
    for cmd in [
        vec!["ls", s(&lone)],
        vec!["convert", s(&lone), s(&p(d, "never.vhd"))],
        vec!["checksum", "--scope", "disk", s(&lone)],
        vec!["check", s(&lone)],
    ] {
        assert_one_line_error(
            &run(&cmd),
            &[
                "backing file 'base.qcow2' not found",
                "elsewhere/base.qcow2",
            ],
        );
    }
    assert!(!p(d, "never.vhd").exists());
    let v = info(&lone, &[]);
    assert!(
        v["unreadable"]
            .as_str()
            .unwrap()
            .contains("backing file 'base.qcow2' not found"),
        "{v}"
    );
    // --parent points at it.
    assert_eq!(disk_sha256(&lone, &["--parent", s(&base)]), sha(&merged));
    assert_lists_the_root(&lone, &["--parent", s(&base)]);
    // A backing name that leads to a FIFO is never opened (no hang): one line, exit 2.
    let o = tool("mkfifo", "coreutils", &[s(&p(d, "pipe"))]);
    assert!(o.status.success());
    let piped = p(d, "piped.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-u",
        "-b",
        "pipe",
        "-F",
        "raw",
        s(&piped),
        "48M",
    ]);
    assert_one_line_error(
        &run_bounded(
            vhdprep().args(["ls", s(&piped)]),
            std::time::Duration::from_secs(20),
        ),
        &["backing file 'pipe' not found", "not a regular file"],
    );
}

#[test]
fn a_vmdk_delta_reads_through_its_parent_and_checks_its_cid() {
    let dir = tempdir();
    let raw = source(dir.path());
    let d = dir.path();
    // VMDK: a delta made by qemu-img over a monolithicSparse base, written by qemu-io.
    let base = p(d, "base.vmdk");
    let delta = p(d, "delta.vmdk");
    qemu_img(&[
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "vmdk",
        s(&raw),
        s(&base),
    ]);
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "vmdk",
        "-b",
        "base.vmdk",
        "-F",
        "vmdk",
        s(&delta),
    ]);
    let o = tool(
        "qemu-io",
        "qemu-utils",
        &["-c", "write -P 0x3d 41M 128k", s(&delta)],
    );
    assert!(o.status.success(), "qemu-io: {o:?}");
    let merged = p(d, "delta.raw");
    qemu_img(&["convert", "-q", "-O", "raw", s(&delta), s(&merged)]);
    let v = info(&delta, &[]);
    assert_eq!(v["chain"].as_array().unwrap().len(), 2, "{v}");
    assert!(v["vmdk"]["parent_cid"].is_string(), "{v}");
    assert_eq!(disk_sha256(&delta, &[]), sha(&merged));
    assert_lists_the_root(&delta, &[]);
    // The base written to after the delta was made: its CID changed, so it is not the parent.
    let o = tool(
        "qemu-io",
        "qemu-utils",
        &["-c", "write -P 1 0 512", s(&base)],
    );
    assert!(o.status.success(), "qemu-io: {o:?}");
    assert_one_line_error(
        &run(&["ls", s(&delta)]),
        &["parent VMDK 'base.vmdk'", "CID"],
    );
}

#[test]
fn qcow2_state_is_reported_and_a_looping_chain_ends() {
    let dir = tempdir();
    let d = dir.path();
    let img = p(d, "state.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", s(&img), "32M"]);
    qemu_img(&["snapshot", "-c", "before-upgrade", s(&img)]);
    // The dirty bit (incompatible feature bit 0, byte 79 of the header), as a process killed
    // with lazy refcounts leaves it; qemu-img info reads it back.
    let mut bytes = read(&img);
    bytes[79] |= 1;
    write_file(&img, &bytes);
    assert_eq!(qemu_info(&img, "qcow2")["dirty-flag"], true);
    let v = info(&img, &[]);
    assert_eq!(v["qcow2"]["dirty"], true);
    assert_eq!(v["qcow2"]["snapshots"][0]["name"], "before-upgrade");
    let state: Vec<(&str, &str)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "VHD-018")
        .map(|f| {
            (
                f["severity"].as_str().unwrap(),
                f["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(state.len(), 2, "{v}");
    assert!(state
        .iter()
        .any(|(sev, m)| *sev == "warning" && m.contains("dirty bit")));
    assert!(state
        .iter()
        .any(|(sev, m)| *sev == "info" && m.contains("'before-upgrade'")));
    // A backing file that is the image itself.
    let selfish = p(d, "self.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-u",
        "-b",
        "self.qcow2",
        "-F",
        "qcow2",
        s(&selfish),
        "32M",
    ]);
    assert_one_line_error(
        &run_bounded(
            vhdprep().args(["checksum", "--scope", "disk", s(&selfish)]),
            std::time::Duration::from_secs(20),
        ),
        &["self.qcow2", "the parent chain loops"],
    );
    // check, too, ends on it (exit 2) instead of reporting an unexamined guest.
    assert_one_line_error(&run(&["check", s(&selfish)]), &["the parent chain loops"]);
    // A chain of 70 (the cap is 64 disks): one line naming the level where it stopped.
    qemu_img(&["create", "-q", "-f", "qcow2", s(&p(d, "l0.qcow2")), "1M"]);
    for i in 1..=70 {
        let (child, parent) = (format!("l{i}.qcow2"), format!("l{}.qcow2", i - 1));
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-u",
            "-b",
            &parent,
            "-F",
            "qcow2",
            s(&p(d, &child)),
            "1M",
        ]);
    }
    assert_one_line_error(
        &run(&["checksum", "--scope", "disk", s(&p(d, "l70.qcow2"))]),
        &["l70.qcow2: in its parent chain: ", "longer than 64 disks"],
    );
    assert_ok(&run(&[
        "checksum",
        "--scope",
        "disk",
        s(&p(d, "l60.qcow2")),
    ]));
}

// ---- A differencing VHD, made from the VHD specification (qemu-img cannot write one) ----

#[path = "../crates/disk/tests/support/vhd_chain.rs"]
mod vhd_chain;

#[test]
fn a_differencing_vhd_reads_through_its_parent() {
    let dir = tempdir();
    let raw = source(dir.path());
    let d = dir.path();
    let parent = p(d, "parent.vhd");
    qemu_img(&[
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "vpc",
        "-o",
        "subformat=dynamic,force_size=on",
        s(&raw),
        s(&parent),
    ]);
    let child = p(d, "child.vhd");
    let data = pattern(11, 64 << 10);
    let at = 40 * MIB + 4096;
    // What the chain holds: the source with the child's sectors over it. Only a relative
    // locator, so that a moved child finds no parent.
    let mut model = read(&raw);
    let links = vhd_chain::Links {
        w2ru: Some(".\\parent.vhd".to_string()),
        w2ku: None,
        macx: None,
        name: "parent.vhd".to_string(),
    };
    vhd_chain::make_child(
        &child,
        &parent,
        &links,
        2 << 20,
        &[(at, data)],
        0x42,
        &mut model,
    );
    let model_path = p(d, "model.raw");
    write_file(&model_path, &model);
    let v = info(&child, &[]);
    assert_eq!(v["format"], "vhd-differencing");
    assert_eq!(v["chain"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["chain"][1]["path"], s(&parent));
    assert!(finding_ids(&v).contains(&"VHD-002".to_string()), "{v}");
    assert_eq!(disk_sha256(&child, &[]), sha(&model_path));
    assert_lists_the_root(&child, &[]);
    assert_converts(&child, &model_path, "raw", &[]);
    // A parent with another unique id is not taken: one line naming the one expected.
    let other = p(d, "other");
    std::fs::create_dir(&other).unwrap();
    qemu_img(&[
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "vpc",
        "-o",
        "subformat=dynamic,force_size=on",
        s(&raw),
        s(&other.join("parent.vhd")),
    ]);
    let moved = other.join("child.vhd");
    std::fs::copy(&child, &moved).unwrap();
    assert_one_line_error(
        &run(&["ls", s(&moved)]),
        &["parent 'parent.vhd' (unique id", "not found", "unique id"],
    );
}

#[test]
fn check_reads_the_guest_of_a_qcow2_fixture() {
    let src = fixture_raw("gen2-gpt-ext4");
    let dir = tempdir();
    let img = p(dir.path(), "gen2.qcow2");
    qemu_img(&["convert", "-q", "-f", "raw", "-O", "qcow2", &src, s(&img)]);
    let out = run(&["check", "--format", "json", s(&img)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        r["guest_not_examined"].is_null(),
        "{}",
        r["guest_not_examined"]
    );
    assert!(r["os"].is_object(), "no OS found: {}", r["os"]);
    let vhd001: Vec<&serde_json::Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "VHD-001")
        .collect();
    assert_eq!(vhd001.len(), 1, "{r}");
    assert_eq!(
        vhd001[0]["remediation"].as_str().unwrap(),
        format!("vhdprep convert {} OUT.vhd", img.display())
    );
    // The guest rules ran: a boot finding or pass exists beyond the container's.
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["message"]
                .as_str()
                .unwrap_or("")
                .contains("cannot be read")),
        "{r}"
    );
}

#[test]
fn a_superfloppy_is_read_whole_as_partition_0() {
    let dir = tempdir();
    let d = dir.path();
    let tree = p(d, "tree");
    std::fs::create_dir_all(tree.join("srv")).unwrap();
    std::fs::write(tree.join("srv/hello"), "whole disk\n").unwrap();
    let bare = p(d, "bare.img");
    std::fs::File::create(&bare)
        .unwrap()
        .set_len(32 * MIB)
        .unwrap();
    let o = tool(
        "mkfs.ext4",
        "e2fsprogs",
        &["-q", "-F", "-d", s(&tree), s(&bare)],
    );
    assert!(o.status.success(), "mkfs.ext4: {o:?}");
    // Through a container too.
    let q = p(d, "bare.qcow2");
    qemu_img(&["convert", "-q", "-f", "raw", "-O", "qcow2", s(&bare), s(&q)]);
    for img in [&bare, &q] {
        let ls = ok(run(&["ls", "--partition", "0", s(img), "/srv"]));
        assert_eq!(ls, "hello\n", "{}", img.display());
        let cat = ok(run(&["cat", "--partition", "0", s(img), "/srv/hello"]));
        assert_eq!(cat, "whole disk\n");
    }
    // A partitioned disk has no whole-disk filesystem.
    let raw = source(d);
    assert_one_line_error(
        &run(&["ls", "--partition", "0", s(&raw), "/"]),
        &["no filesystem on the whole disk"],
    );
}

/// Writes the fuzz seed `seed` (the sparse input format of crates/fuzz/src/container.rs:
/// `size:u64le` then `offset:u64le len:u32le bytes` chunks) back as a file at `out`.
fn unpack_seed(seed: &Path, out: &Path) {
    use std::os::unix::fs::FileExt;
    let b = read(seed);
    let le64 = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let f = std::fs::File::create(out).unwrap();
    f.set_len(le64(0)).unwrap();
    let mut at = 8;
    while at < b.len() {
        let offset = le64(at);
        let len = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        f.write_all_at(&b[at + 12..at + 12 + len], offset).unwrap();
        at += 12 + len;
    }
}

#[test]
fn a_vhdx_with_a_dirty_log_is_replayed_and_reported() {
    // Made by qemu-io killed before its in-place BAT write (fuzz/make-seeds/vhdx.sh): the
    // block at 5 MiB is only in the log. qemu-img refuses the file read-only.
    let dir = tempdir();
    let img = p(dir.path(), "dirty.vhdx");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/vhdx/qemu-dirty-log.vhdx");
    unpack_seed(&seed, &img);
    let before = read(&img);
    let v = info(&img, &[]);
    assert_eq!(v["vhdx"]["log"]["non_empty"], true, "{v}");
    assert!(v["vhdx"]["log"]["replayed_entries"].as_u64().unwrap() >= 1);
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "VHD-018"
                && f["severity"] == "warning"
                && f["message"].as_str().unwrap().contains("log is not empty")),
        "{v}"
    );
    let out = p(dir.path(), "dirty.vhd");
    ok(run(&["convert", "-q", s(&img), s(&out)]));
    let vhd = read(&out);
    assert_eq!(vhd[(5 << 20) + 4095..(5 << 20) + 4097], [0x55, 0]);
    assert_eq!(read(&img), before, "the source was written");
    // qemu-img reads the same after replaying the log on a copy in place.
    let copy = p(dir.path(), "copy.vhdx");
    std::fs::copy(&img, &copy).unwrap();
    let o = tool(
        "qemu-img",
        "qemu-utils",
        &["check", "-q", "-r", "all", s(&copy)],
    );
    assert!(o.status.success(), "qemu-img check -r all: {o:?}");
    assert!(qemu_identical(&copy, "vhdx", &out, "vpc"));
}

#[path = "../crates/disk/tests/support/vhdx_chain.rs"]
mod vhdx_chain;

/// A differencing VHDX (built from the specification, see the support module) through the
/// commands: found next to its child by its relative locator, or given with `--parent` once
/// moved; a missing or wrong parent is one line naming what was expected.
#[test]
fn a_differencing_vhdx_reads_through_its_parent_found_or_given() {
    let dir = tempdir();
    let d = dir.path();
    let c = vhdx_chain::build(d);
    let model = p(d, "model.raw");
    write_file(&model, &c.want);
    let v = info(&c.child, &[]);
    assert_eq!(v["format"], "vhdx", "{v}");
    assert_eq!(v["chain"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["chain"][1]["path"], s(&c.parent), "{v}");
    assert_eq!(disk_sha256(&c.child, &[]), sha(&model));
    let out = p(d, "chain.vhd");
    ok(run(&["convert", "-q", s(&c.child), s(&out)]));
    assert!(
        qemu_identical(&model, "raw", &out, "vpc"),
        "the converted chain differs from what [MS-VHDX] says it holds"
    );

    // Moved away from its parent: a one-line error naming the locator; `--parent` finds it.
    let away = p(d, "away");
    std::fs::create_dir(&away).unwrap();
    let moved = away.join("child.vhdx");
    std::fs::copy(&c.child, &moved).unwrap();
    assert_one_line_error(
        &run(&["checksum", "--scope", "disk", "--sha256", s(&moved)]),
        &["parent", "relative_path=.\\parent.vhdx"],
    );
    assert_eq!(
        disk_sha256(&moved, &["--parent", s(&c.parent)]),
        sha(&model)
    );
    // Another VHDX given as the parent (its data write GUID is not the linkage): refused.
    let other = p(d, "other.vhdx");
    qemu_img(&["create", "-q", "-f", "vhdx", s(&other), "16M"]);
    assert_one_line_error(
        &run(&[
            "checksum",
            "--scope",
            "disk",
            "--sha256",
            s(&moved),
            "--parent",
            s(&other),
        ]),
        &[&c.linkage[1..c.linkage.len() - 1]],
    );
}

#[path = "../crates/disk/tests/support/vdi_chain.rs"]
mod vdi_chain;

/// A VirtualBox differencing VDI through the commands: its parent found next to it under
/// VirtualBox's `{UUID}.vdi` name, or given with `--parent`; none is one line naming the UUID.
#[test]
fn a_differencing_vdi_reads_through_its_parent_found_or_given() {
    let dir = tempdir();
    let d = dir.path();
    let mut bytes = pattern(21, (20 * MIB + 1536) as usize);
    bytes[(3 * MIB) as usize..(6 * MIB) as usize].fill(0);
    let src = p(d, "src.raw");
    write_file(&src, &bytes);
    let c = vdi_chain::build(d, &src, &bytes);
    let model = p(d, "model.raw");
    write_file(&model, &c.expected);

    // Not found under VirtualBox's name: one line naming the parent's UUID.
    let err = assert_one_line_error(
        &run(&["checksum", "--scope", "disk", "--sha256", s(&c.child)]),
        &["parent VDI with image UUID"],
    );
    let v = info(&c.base, &[]);
    let uuid = v["vdi"]["uuid_image"]
        .as_str()
        .unwrap_or_else(|| panic!("info --json names the image UUID: {v}"))
        .to_string();
    assert!(err.contains(&uuid), "{err}");
    // Given: read through it.
    assert_eq!(
        disk_sha256(&c.child, &["--parent", s(&c.base)]),
        sha(&model)
    );
    // Found next to the child under `{UUID}.vdi`, as VirtualBox keeps snapshots' parents.
    std::fs::rename(&c.base, p(d, &format!("{{{uuid}}}.vdi"))).unwrap();
    let v = info(&c.child, &[]);
    assert_eq!(v["chain"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(disk_sha256(&c.child, &[]), sha(&model));
    let out = p(d, "chain.vhd");
    ok(run(&["convert", "-q", s(&c.child), s(&out)]));
    assert!(
        qemu_identical(&model, "raw", &out, "vpc"),
        "the converted chain differs from its layers combined"
    );
}
