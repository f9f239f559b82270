//! The query interface over in-memory guests and databases.

use super::*;
use crate::tree::memfs::MemFs;
use std::sync::Arc;

fn debian() -> GuestTree {
    let fs = MemFs::default()
        .dir("/")
        .dir("/var")
        .dir("/var/lib")
        .dir("/var/lib/dpkg")
        .dir("/var/lib/dpkg/info")
        .file(
            dpkg::STATUS,
            "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u10\n\n\
             Package: openssh-server\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:9.2p1-2+deb12u7\n\n\
             Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.36-9+deb12u10\n",
        )
        .file(
            "/var/lib/dpkg/info/libc6:amd64.list",
            "/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n",
        )
        .file("/var/lib/dpkg/info/openssh-server.list", "/.\n/usr/sbin/sshd\n");
    GuestTree::new(Arc::new(fs), "mem")
}

fn rpm_package(
    name: &str,
    epoch: Option<u32>,
    v: &str,
    r: &str,
    files: &[&str],
) -> rpm::RpmPackage {
    rpm::RpmPackage {
        name: name.into(),
        epoch,
        version: v.into(),
        release: r.into(),
        arch: Some("x86_64".into()),
        install_time: None,
        files: files.iter().map(|f| f.to_string()).collect(),
    }
}

fn rhel_db() -> rpm::RpmDatabase {
    rpm::RpmDatabase {
        backend: rpm::RpmBackend::Sqlite,
        path: "/var/lib/rpm/rpmdb.sqlite".into(),
        packages: vec![
            rpm_package("glibc", None, "2.34", "60.el9", &["/usr/lib64/libc.so.6"]),
            rpm_package("kernel-core", None, "5.14.0", "362.8.1.el9_3", &[]),
            rpm_package("kernel-core", None, "5.14.0", "427.13.1.el9_4", &[]),
            rpm_package("kernel-core", None, "5.14.0", "70.13.1.el9_0", &[]),
            rpm_package(
                "openssl-libs",
                Some(1),
                "3.0.7",
                "27.el9",
                &["/usr/lib64/libssl.so.3"],
            ),
            rpm_package(
                "openssh-server",
                None,
                "8.7p1",
                "34.el9",
                &["/usr/sbin/sshd"],
            ),
        ],
        skipped: 1,
        notes: vec![],
    }
}

#[test]
fn dpkg_versions_lines_and_owners() {
    let p = Packages::gather(&debian(), Family::Debian);
    assert_eq!(p.databases().len(), 1);
    assert_eq!(p.databases()[0].source, Source::Dpkg);
    assert_eq!(p.databases()[0].packages, 3);
    assert!(p.read_any());
    let ssh = p.get("openssh-server").unwrap();
    assert_eq!(ssh.version, "1:9.2p1-2+deb12u7");
    assert_eq!(ssh.upstream(), "9.2p1");
    assert_eq!(ssh.line, Some(6));
    assert_eq!(
        ssh.evidence(),
        "/var/lib/dpkg/status line 6: openssh-server 1:9.2p1-2+deb12u7"
    );
    assert_eq!(ssh.compare_version("1:9.2p1-2+deb12u10"), Ordering::Less);
    assert_eq!(p.named("libc6").count(), 2);
    assert_eq!(p.get("libc6").unwrap().arch.as_deref(), Some("amd64"));
    assert_eq!(p.version_of("nope"), None);
    assert_eq!(p.first_of(&["nope", "libc6"]).unwrap().name, "libc6");
    // Owners from info/*.list, with the merged-/usr alias.
    assert_eq!(p.owner_of("/usr/sbin/sshd").unwrap().name, "openssh-server");
    assert_eq!(p.owner_of("/sbin/sshd").unwrap().name, "openssh-server");
    assert_eq!(
        p.owner_of("/usr/lib/x86_64-linux-gnu/libc.so.6")
            .unwrap()
            .arch
            .as_deref(),
        Some("amd64")
    );
    assert_eq!(p.owner_of("/lib/").unwrap().name, "libc6");
    assert!(p.owner_of("/etc/passwd").is_none());
    assert!(p.owner_of("/usr").is_none());
}

#[test]
fn rpm_versions_newest_kernel_and_owners() {
    let p = Packages::from_databases(None, Some(Ok(rhel_db())), Family::RedHat);
    assert_eq!(p.version_of("glibc"), Some("2.34-60.el9"));
    assert_eq!(p.get("glibc").unwrap().upstream(), "2.34");
    assert_eq!(p.version_of("openssl-libs"), Some("1:3.0.7-27.el9"));
    assert_eq!(p.get("openssl-libs").unwrap().upstream(), "3.0.7");
    // Three kernels: the newest by rpmvercmp (427 > 362 > 70, not by text).
    assert_eq!(p.named("kernel-core").count(), 3);
    assert_eq!(p.version_of("kernel-core"), Some("5.14.0-427.13.1.el9_4"));
    assert_eq!(
        p.get("glibc").unwrap().evidence(),
        "/var/lib/rpm/rpmdb.sqlite: glibc 2.34-60.el9"
    );
    assert_eq!(
        p.owner_of("/usr/lib64/libssl.so.3").unwrap().name,
        "openssl-libs"
    );
    assert_eq!(p.owner_of("/lib64/libc.so.6").unwrap().name, "glibc");
    assert_eq!(p.databases()[0].source, Source::RpmSqlite);
    assert_eq!(p.databases()[0].skipped, 1);
}

#[test]
fn the_familys_own_database_answers_first() {
    let status = || {
        Some(Ok(dpkg::parse_status(
            "Package: openssh-server\nStatus: install ok installed\nVersion: 1:9.2p1-2\n",
        )))
    };
    let rh = Packages::from_databases(status(), Some(Ok(rhel_db())), Family::RedHat);
    assert_eq!(rh.get("openssh-server").unwrap().source, Source::RpmSqlite);
    assert_eq!(rh.named("openssh-server").count(), 2);
    // Names of either family: the family's database still answers first.
    let libc = |p: &Packages| p.first_of(&["libc6", "glibc"]).unwrap().name.clone();
    let with_libc6 = || {
        Some(Ok(dpkg::parse_status(
            "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n",
        )))
    };
    let rh = Packages::from_databases(with_libc6(), Some(Ok(rhel_db())), Family::RedHat);
    assert_eq!(libc(&rh), "glibc");
    let deb = Packages::from_databases(with_libc6(), Some(Ok(rhel_db())), Family::Debian);
    assert_eq!(libc(&deb), "libc6");
    let deb = Packages::from_databases(status(), Some(Ok(rhel_db())), Family::Debian);
    assert_eq!(deb.get("openssh-server").unwrap().source, Source::Dpkg);
    assert_eq!(deb.databases()[0].source, Source::Dpkg);
    assert_eq!(deb.all().len(), 7);
}

#[test]
fn unreadable_databases_are_listed_with_their_error() {
    let p = Packages::from_databases(
        Some(Err("too large".into())),
        Some(Err((
            rpm::RpmBackend::BerkeleyDb,
            "/var/lib/rpm/Packages".into(),
            "bad magic".into(),
        ))),
        Family::Unknown,
    );
    assert!(!p.read_any());
    assert!(p.all().is_empty());
    let d: Vec<(Source, Option<&str>)> = p
        .databases()
        .iter()
        .map(|d| (d.source, d.error.as_deref()))
        .collect();
    assert_eq!(
        d,
        vec![
            (Source::Dpkg, Some("too large")),
            (Source::RpmBdb, Some("bad magic"))
        ]
    );
    let none = Packages::gather(
        &GuestTree::new(Arc::new(MemFs::default().dir("/")), "m"),
        Family::Unknown,
    );
    assert!(none.databases().is_empty() && !none.read_any());
    assert!(none.owner_of("/bin/sh").is_none());
}

#[test]
fn usr_merge_aliases() {
    assert_eq!(usr_merge_alias("/usr/bin/x").as_deref(), Some("/bin/x"));
    assert_eq!(usr_merge_alias("/lib64/x").as_deref(), Some("/usr/lib64/x"));
    assert_eq!(usr_merge_alias("/usr/share/x"), None);
    assert_eq!(usr_merge_alias("/libexec/x"), None);
    assert_eq!(usr_merge_alias("/usr"), None);
    assert_eq!(usr_merge_alias("/bin").as_deref(), Some("/usr/bin"));
}
