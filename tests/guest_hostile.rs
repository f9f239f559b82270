//! Broken and hostile guests: damaged partition tables and superblocks, symlinks that try to
//! leave the guest or loop. Images are built by mkfs.ext4/sgdisk and then damaged; every case
//! must end with a finding or a clear error, never a panic or a host file.

mod common;
use common::*;
use std::os::unix::fs::FileExt;
use std::path::Path;

const MIB: u64 = 1 << 20;

/// A GPT disk (sgdisk) with one ext4 partition at 1 MiB filled by `mkfs.ext4 -d` from `tree`.
fn ext4_gpt_image(dir: &Path, tree: &Path) -> std::path::PathBuf {
    let img = p(dir, "disk.raw");
    let part = p(dir, "part.ext4");
    let out = tool(
        "mkfs.ext4",
        "e2fsprogs",
        &[
            "-q",
            "-F",
            "-L",
            "root",
            "-d",
            tree.to_str().unwrap(),
            part.to_str().unwrap(),
            "24M",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(32 * MIB).unwrap();
    let out = tool(
        "sgdisk",
        "gdisk",
        &["-n", "1:2048:+24M", "-t", "1:8304", img.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    f.write_all_at(&read(&part), MIB).unwrap();
    img
}

/// A guest tree with hostile links; /etc/shadow in the guest holds a marker.
fn hostile_tree(dir: &Path) -> std::path::PathBuf {
    let t = p(dir, "tree");
    std::fs::create_dir_all(t.join("etc")).unwrap();
    std::fs::create_dir_all(t.join("usr/lib")).unwrap();
    std::fs::write(t.join("usr/lib/os-release"), "ID=testos\nVERSION_ID=1\n").unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", t.join("etc/os-release")).unwrap();
    std::fs::write(t.join("etc/shadow"), "GUEST-SHADOW-MARKER\n").unwrap();
    std::fs::write(t.join("etc/fstab"), "LABEL=root / ext4 defaults 0 1\n").unwrap();
    std::os::unix::fs::symlink("../../../../../../../../etc/shadow", t.join("escape-rel")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", t.join("escape-abs")).unwrap();
    std::os::unix::fs::symlink("/proc/self/root/etc/passwd", t.join("escape-proc")).unwrap();
    std::os::unix::fs::symlink("/loop2", t.join("loop1")).unwrap();
    std::os::unix::fs::symlink("/loop1", t.join("loop2")).unwrap();
    std::os::unix::fs::symlink("selfloop", t.join("selfloop")).unwrap();
    std::os::unix::fs::symlink(".", t.join("dot")).unwrap();
    t
}

#[test]
fn symlinks_never_leave_the_guest_and_loops_are_reported() {
    let d = tempdir();
    let img = ext4_gpt_image(d.path(), &hostile_tree(d.path()));
    let s = img.to_str().unwrap();
    for link in ["/escape-rel", "/escape-abs"] {
        let out = run(&["cat", s, link]);
        assert!(
            out.status.success(),
            "{link}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.stdout, b"GUEST-SHADOW-MARKER\n",
            "{link} must resolve inside the guest"
        );
    }
    // /proc does not exist in the guest; the host's /proc is never consulted.
    let out = run(&["cat", s, "/escape-proc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
    for link in ["/loop1", "/selfloop"] {
        let out = run(&["cat", s, link]);
        assert_eq!(out.status.code(), Some(2), "{link}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("too many levels of symbolic links"),
            "{link}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1);
    }
    // A link to "." 40 times over is fine as long as it ends somewhere real.
    let out = run(&["cat", s, "/dot/dot/dot/etc/shadow"]);
    assert!(out.status.success());
    let out = run(&["ls", "-l", s, "/"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("escape-abs -> /etc/shadow"));
}

#[test]
fn damaged_primary_gpt_uses_the_backup_with_a_finding() {
    let d = tempdir();
    let img = ext4_gpt_image(d.path(), &hostile_tree(d.path()));
    // Flip a byte of the primary header's disk GUID (LBA 1, offset 56): its CRC no longer matches.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 512 + 56).unwrap();
    f.write_all_at(&[b[0] ^ 0xff], 512 + 56).unwrap();
    // sfdisk, too, still finds the partition through the backup.
    let sf = tool("sfdisk", "fdisk", &["--json", img.to_str().unwrap()]);
    let sfj: serde_json::Value =
        serde_json::from_slice(&sf.stdout).expect("sfdisk reads the backup");
    let v = {
        let out = run(&["inspect", "--json", img.to_str().unwrap()]);
        assert!(out.status.success());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(
        v["partitions"].as_array().unwrap().len(),
        sfj["partitiontable"]["partitions"]
            .as_array()
            .unwrap()
            .len()
    );
    assert_eq!(
        v["partitions"][0]["start"].as_u64(),
        Some(
            sfj["partitiontable"]["partitions"][0]["start"]
                .as_u64()
                .unwrap()
                * 512
        )
    );
    assert_eq!(v["os"]["id"], "testos");
    let findings = v["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["id"] == "BOOT-001"
            && f["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("primary")),
        "{findings:?}"
    );
}

#[test]
fn both_gpt_headers_damaged_is_a_clear_error() {
    let d = tempdir();
    let img = ext4_gpt_image(d.path(), &hostile_tree(d.path()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    f.write_all_at(b"XXXXXXXX", 512).unwrap();
    f.write_all_at(b"XXXXXXXX", 32 * MIB - 512).unwrap();
    let out = run(&["inspect", img.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("disk.raw") && err.contains("neither copy is usable"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn overlapping_mbr_partitions_are_a_finding() {
    let d = tempdir();
    let img = p(d.path(), "mbr.raw");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(64 * MIB).unwrap();
    let out = vhdprep_sfdisk(
        &img,
        "label: dos\nstart=2048, size=40960, type=83\nstart=43008, size=40960, type=83\n",
    );
    assert!(out.status.success());
    // Make partition 2 start inside partition 1 (entry 2 at 446+16, start LBA at +8).
    f.write_all_at(&30000u32.to_le_bytes(), 446 + 16 + 8)
        .unwrap();
    let out = run(&["inspect", "--json", img.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let msgs: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(msgs.iter().any(|m| m.contains("overlap")), "{msgs:?}");
}

fn vhdprep_sfdisk(img: &Path, script: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("sfdisk")
        .arg("-q")
        .arg(img)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sfdisk (Debian package fdisk) is required");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn garbage_root_superblock_is_reported_not_fatal() {
    let d = tempdir();
    let img = ext4_gpt_image(d.path(), &hostile_tree(d.path()));
    // The ext4 superblock is 1024 bytes into the partition: fill it with noise.
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(&pattern(7, 1024), MIB + 1024).unwrap();
    let out = run(&["inspect", "--json", img.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["root"].is_null());
    assert!(v["partitions"][0]["filesystem"].is_null());
    let out = run(&["ls", img.to_str().unwrap(), "/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Linux root"));
}
