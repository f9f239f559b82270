//! The package interface on the real fixture images (Debian bookworm), compared with dpkg's
//! own query tool run on the same database files: `dpkg-query --admindir` lists the installed
//! packages (`-W`) and names the owner of files (`-S`) from the image's status file and
//! `info/*.list` files, copied out of the image.
//!
//! A missing fixture or tool fails the test with what to install or run; nothing is skipped.

mod fixture_images;
use fixture_images::fixture;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use vhdprep_disk::DiskImage;
use vhdprep_fs::FileKind;
use vhdprep_guest::packages::{Packages, Source};
use vhdprep_guest::{Family, GuestTree};

/// A plain root, and one whose /var (with the dpkg database) is a partition of its own.
const LAYOUTS: [&str; 2] = ["gen2-gpt-ext4", "separate-var"];

fn open(name: &str) -> GuestTree {
    let (img, _) = fixture(name);
    let image = DiskImage::open(&img).expect("open image");
    let (_, _, guest) = vhdprep_guest::inspect(&image).expect("inspect");
    guest.expect("guest assembled").tree
}

fn dpkg_query(admin: &Path, args: &[&str]) -> String {
    let out = Command::new("dpkg-query")
        .arg(format!("--admindir={}", admin.display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("dpkg-query not runnable ({e}): install the Debian package `dpkg`")
        });
    assert!(
        out.status.success(),
        "dpkg-query {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// An admin directory holding the image's status file and file lists.
fn admindir(tree: &GuestTree) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = tree.read_file(b"/var/lib/dpkg/status", 64 << 20).unwrap();
    std::fs::write(dir.path().join("status"), status).unwrap();
    std::fs::create_dir(dir.path().join("updates")).unwrap();
    std::fs::create_dir(dir.path().join("info")).unwrap();
    for e in tree.read_dir(b"/var/lib/dpkg/info").unwrap() {
        let n = e.name_lossy();
        // `format` says the lists are named `<package>:<arch>.list` for multi-arch packages.
        if n.ends_with(".list") || n == "format" {
            let bytes = tree
                .read_file(format!("/var/lib/dpkg/info/{n}").as_bytes(), 16 << 20)
                .unwrap();
            std::fs::write(dir.path().join("info").join(&*n), bytes).unwrap();
        }
    }
    dir
}

#[test]
fn installed_packages_equal_dpkg_query() {
    for name in LAYOUTS {
        let tree = open(name);
        let admin = admindir(&tree);
        let theirs: BTreeSet<(String, String, String)> = dpkg_query(
            admin.path(),
            &[
                "-W",
                "-f=${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\n",
            ],
        )
        .lines()
        .filter_map(|l| l.strip_prefix("installed\t"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect();
        let p = Packages::gather(&tree, Family::Debian);
        let ours: BTreeSet<(String, String, String)> = p
            .all()
            .iter()
            .map(|p| {
                assert_eq!(p.source, Source::Dpkg);
                (
                    p.name.clone(),
                    p.version.clone(),
                    p.arch.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert!(theirs.len() > 150, "{name}: {}", theirs.len());
        assert_eq!(ours, theirs, "{name}");
        assert_eq!(ours.len(), p.all().len(), "{name}: no duplicates");
    }
}

#[test]
fn file_owners_equal_dpkg_query_search() {
    for name in LAYOUTS {
        let tree = open(name);
        let admin = admindir(&tree);
        let p = Packages::gather(&tree, Family::Debian);
        // Every 97th listed path that is a regular file (as listed), and a few that matter to rules.
        let mut paths: Vec<String> = Vec::new();
        let mut seen = 0usize;
        for e in std::fs::read_dir(admin.path().join("info")).unwrap() {
            let e = e.unwrap();
            if !e.file_name().to_string_lossy().ends_with(".list") {
                continue;
            }
            for l in std::fs::read_to_string(e.path()).unwrap().lines() {
                seen += 1;
                let file = seen % 97 == 0
                    && tree
                        .symlink_metadata(l.as_bytes())
                        .is_ok_and(|m| m.kind == FileKind::File);
                if file {
                    paths.push(l.to_string());
                }
            }
        }
        paths.extend(
            ["/usr/sbin/sshd", "/usr/sbin/waagent", "/usr/bin/cloud-init"].map(String::from),
        );
        assert!(paths.len() > 40, "{name}: {} paths", paths.len());
        let mut args = vec!["-S"];
        args.extend(paths.iter().map(String::as_str));
        let out = dpkg_query(admin.path(), &args);
        let mut checked = 0;
        for line in out.lines() {
            let (owners, path) = line.split_once(": ").expect("owner: path");
            let ours = p
                .owner_of(path)
                .unwrap_or_else(|| panic!("{name}: no owner of {path}"));
            // dpkg-query names multi-arch packages with their architecture.
            let ours_name = match &ours.arch {
                Some(a) if owners.contains(&format!("{}:{a}", ours.name)) => {
                    format!("{}:{a}", ours.name)
                }
                _ => ours.name.clone(),
            };
            assert_eq!(owners, ours_name, "{name}: {path}");
            checked += 1;
        }
        assert_eq!(checked, paths.len(), "{name}: {out}");
        assert_eq!(p.owner_of("/usr/sbin/sshd").unwrap().name, "openssh-server");
        // The merged-/usr name of a file dpkg lists under /lib.
        let libc = p
            .all()
            .iter()
            .find(|x| x.name == "libc6")
            .expect("libc6 installed");
        assert_eq!(
            p.owner_of("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            Some(libc),
            "{name}"
        );
        assert!(p.owner_of("/etc/machine-id").is_none(), "{name}");
    }
}
