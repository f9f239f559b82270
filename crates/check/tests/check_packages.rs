//! Rules that ask the package database, judged from an rpm database written by real rpm.
//!
//! The Debian fixture is dressed as RHEL 9: its os-release says `rhel`, dpkg's status file
//! is gone, and `/var/lib/rpm/rpmdb.sqlite` is the database Debian's rpm 4.18 writes when it
//! installs (`--justdb`, fixtures/rpm/make-rpmdb.sh) packages built here by `rpmbuild`:
//! glibc 2.34 (RHEL 9's: no `libc-2.N.so` exists), openssl-libs with an epoch, an old
//! openssh-server, an old WALinuxAgent and cloud-init. The agents' own version files are
//! removed, so their versions too can only come from rpm. The packages `inspect` lists are
//! compared with `rpm -qa --dbpath` on the same database.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use vhdprep_check::{Policy, Report, Severity};
use vhdprep_disk::DiskImage;
use vhdprep_guest::facts::agents::VersionSource;
use vhdprep_guest::packages::Source;
use vhdprep_guest::Family;

/// name, epoch, version, release, arch, a file it installs.
type Rpm = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const RPMS: [Rpm; 7] = [
    (
        "glibc",
        "",
        "2.34",
        "60.el9",
        "x86_64",
        "/usr/lib64/libc.so.6",
    ),
    (
        "openssl-libs",
        "1",
        "3.0.7",
        "27.el9",
        "x86_64",
        "/usr/lib64/libssl.so.3",
    ),
    (
        "openssh-server",
        "",
        "5.1p1",
        "1.el5",
        "x86_64",
        "/usr/sbin/sshd",
    ),
    (
        "WALinuxAgent",
        "",
        "2.2.40",
        "1.el9",
        "noarch",
        "/usr/sbin/waagent",
    ),
    (
        "cloud-init",
        "",
        "23.4",
        "7.el9_4",
        "noarch",
        "/usr/bin/cloud-init",
    ),
    (
        "sudo",
        "0",
        "1.9.5p2",
        "10.el9_3",
        "x86_64",
        "/usr/bin/sudo",
    ),
    (
        "python3",
        "",
        "3.9.18",
        "3.el9",
        "x86_64",
        "/usr/bin/python3.9",
    ),
];

const RHEL_OS_RELEASE: &str = "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.4 (Plow)\"\n";

/// Builds `rpms` with rpmbuild into `out`.
fn build_rpms(out: &Path, rpms: &[Rpm]) {
    let top = tempfile::tempdir().unwrap();
    for &(name, epoch, version, release, arch, file) in rpms {
        let dir = Path::new(file).parent().unwrap().display().to_string();
        let epoch = if epoch.is_empty() {
            String::new()
        } else {
            format!("Epoch: {epoch}\n")
        };
        let spec = format!(
            "Name: {name}\n{epoch}Version: {version}\nRelease: {release}\nSummary: test\n\
             License: MIT\nBuildArch: {arch}\n%description\nvhdprep test package\n\
             %install\nmkdir -p %{{buildroot}}{dir}\necho x >%{{buildroot}}{file}\n\
             %files\n{file}\n"
        );
        let path = top.path().join(format!("{name}.spec"));
        std::fs::write(&path, spec).unwrap();
        run(
            Command::new("rpmbuild")
                .args(["-bb", "--quiet", "--define"])
                .arg(format!("_topdir {}", top.path().display()))
                .arg("--define")
                .arg(format!("_rpmdir {}", out.display()))
                .args([
                    "--define",
                    "_build_name_fmt %%{NAME}.rpm",
                    "--define",
                    "debug_package %{nil}",
                    "--define",
                    "__os_install_post %{nil}",
                    "--define",
                    "_build_id_links none",
                ])
                .arg(&path),
            "rpm",
        );
    }
}

/// An rpm database (`sqlite`: `rpmdb.sqlite`, `bdb`: `Packages`) of `rpms`, written by
/// fixtures/rpm/make-rpmdb.sh (rpm itself; Berkeley DB from rpm's header blobs).
fn rpmdb(backend: &str, rpms: &[Rpm]) -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let built = dir.path().join("rpms");
    build_rpms(&built, rpms);
    let db = dir.path().join("db");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/rpm/make-rpmdb.sh"
    );
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg(backend).arg(&db);
    for (name, ..) in rpms {
        cmd.arg(built.join(format!("{name}.rpm")));
    }
    run(&mut cmd, "rpm and python3-bsddb3");
    let file = if backend == "bdb" {
        "Packages"
    } else {
        "rpmdb.sqlite"
    };
    let bytes = std::fs::read(db.join(file)).unwrap();
    (dir, bytes)
}

/// Removes a directory holding only files (debugfs's rmdir wants it empty).
fn remove_dir(v: &mut Variant, dir: &str, files: &[&str]) {
    for f in files {
        v.remove(&format!("{dir}/{f}"));
    }
    v.debugfs("/", &[format!("rmdir \"{dir}\"")]);
}

fn evidence<'a>(r: &'a Report, id: &str, severity: Severity) -> Vec<&'a str> {
    assert_fires(r, id, severity)
        .iter()
        .filter_map(|f| f.evidence.as_deref())
        .collect()
}

#[test]
fn rules_judge_from_an_rpm_database() {
    let (db_dir, db) = rpmdb("sqlite", &RPMS);
    let mut v = Variant::of("gen2-gpt-ext4");
    const PY: &str = "/usr/lib/python3/dist-packages";
    v.write("/etc/os-release", RHEL_OS_RELEASE)
        .remove("/var/lib/dpkg/status")
        .write("/var/lib/rpm/rpmdb.sqlite", &db)
        .remove(&format!("{PY}/azurelinuxagent/common/version.py"))
        .remove(&format!("{PY}/cloudinit/version.py"));
    // Both egg-info directories hold the same five files.
    let egg = [
        "PKG-INFO",
        "dependency_links.txt",
        "entry_points.txt",
        "requires.txt",
        "top_level.txt",
    ];
    // Named by the versions the fixture build recorded (not pinned: the archive moves on).
    let waagent = v.agent_version("waagent");
    let cloud_init = v.agent_version("cloud-init");
    remove_dir(
        &mut v,
        &format!("{PY}/WALinuxAgent-{waagent}.egg-info"),
        &egg,
    );
    remove_dir(
        &mut v,
        &format!("{PY}/cloud_init-{cloud_init}.egg-info"),
        &egg,
    );

    let image = DiskImage::open(&v.path).unwrap();
    let policy = Policy {
        marketplace: true,
        ..Policy::default()
    };
    let ctx = vhdprep_check::Context::gather(&image, &[], &policy).unwrap();
    assert_eq!(ctx.family, Family::RedHat);
    let dbs = ctx.packages.databases();
    assert_eq!(dbs.len(), 1, "{dbs:?}");
    assert_eq!(
        (dbs[0].source, dbs[0].path.as_str()),
        (Source::RpmSqlite, "/var/lib/rpm/rpmdb.sqlite")
    );
    // The agents' versions come from rpm.
    let a = ctx.agents.as_ref().unwrap();
    let w = a.waagent.version.as_ref().expect("waagent version");
    assert_eq!(
        (w.version.as_str(), w.source),
        ("2.2.40-1.el9", VersionSource::Rpm)
    );
    let c = a.cloud_init.version.as_ref().expect("cloud-init version");
    assert_eq!(
        (c.version.as_str(), c.source),
        ("23.4-7.el9_4", VersionSource::Rpm)
    );
    let r = Report::build(&ctx);
    const DB: &str = "/var/lib/rpm/rpmdb.sqlite";
    // CERT-010: RHEL 9's glibc version exists only in the rpm database.
    let f = assert_fires(&r, "CERT-010", Severity::Info);
    assert!(
        f[0].message.contains("glibc 2.34-60.el9 is not affected"),
        "{f:?}"
    );
    assert_eq!(
        f[0].evidence.as_deref(),
        Some(&*format!("{DB}: glibc 2.34-60.el9"))
    );
    // SYS-008: the old openssh-server.
    assert!(
        evidence(&r, "SYS-008", Severity::Warning)
            .contains(&&*format!("{DB}: openssh-server 5.1p1-1.el5")),
        "{:?}",
        findings(&r, "SYS-008")
    );
    // AGENT-003 and CERT-002: the old WALinuxAgent, by its rpm version.
    let f = assert_fires(&r, "AGENT-003", Severity::Error);
    assert!(
        f[0].message
            .contains("waagent 2.2.40-1.el9 is older than 2.2.41"),
        "{f:?}"
    );
    assert_eq!(
        evidence(&r, "CERT-002", Severity::Error),
        [format!("{DB}: WALinuxAgent 2.2.40-1.el9").as_str()]
    );
    // CERT-006: openssl-libs 1:3.0.7 is recent enough.
    assert_quiet(&r, "CERT-006");

    // `inspect` lists what `rpm -qa` lists, %{EVR} as rpm prints it (epoch 0 kept).
    let (_, _, guest) = vhdprep_guest::inspect(&image).unwrap();
    let (mut report, ..) = vhdprep_guest::inspect(&image).unwrap();
    vhdprep_guest::inspect::add_packages(&mut report, guest.as_ref());
    let ours: BTreeSet<String> = report
        .packages
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}\t{}\t{}\t{}",
                p.name,
                p.version,
                p.arch.as_deref().unwrap_or("(none)"),
                p.source.name()
            )
        })
        .collect();
    let theirs: BTreeSet<String> = run(
        Command::new("rpm")
            .arg("--dbpath")
            .arg(db_dir.path().join("db"))
            .args(["-qa", "--qf", "%{NAME}\\t%{EVR}\\t%{ARCH}\\trpm-sqlite\\n"]),
        "rpm",
    )
    .lines()
    .map(str::to_string)
    .collect();
    assert_eq!(ours, theirs);
    assert!(
        ours.contains("sudo\t0:1.9.5p2-10.el9_3\tx86_64\trpm-sqlite"),
        "{ours:?}"
    );
    // Owners as `rpm -qf` says.
    for (name, .., file) in RPMS {
        assert_eq!(
            ctx.packages.owner_of(file).map(|p| p.name.as_str()),
            Some(name)
        );
        let qf = run(
            Command::new("rpm")
                .arg("--dbpath")
                .arg(db_dir.path().join("db"))
                .args(["-qf", "--qf", "%{NAME}\\n", file]),
            "rpm",
        );
        assert_eq!(qf.trim(), name);
    }
}

const SLES12_OS_RELEASE: &str = "NAME=\"SLES\"\nVERSION=\"12-SP4\"\nVERSION_ID=\"12.4\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 12 SP4\"\nID=\"sles\"\nANSI_COLOR=\"0;32\"\nCPE_NAME=\"cpe:/o:suse:sles:12:sp4\"\n";

/// CERT-012 on SUSE: the kernel release `4.12.14-95.19-default` hides the last number of its
/// package's release, `kernel-default-4.12.14-95.19.1`, which is the fixed build the
/// Marketplace table lists. Judged by the package (in the Berkeley DB `Packages` SLES 12
/// keeps), the kernel passes; the same image without the database is judged by the release
/// alone and flagged.
#[test]
fn suse_kernel_judged_by_its_rpm_package() {
    const KV: &str = "4.12.14-95.19-default";
    let (_dir, db) = rpmdb(
        "bdb",
        &[(
            "kernel-default",
            "",
            "4.12.14",
            "95.19.1",
            "x86_64",
            "/boot/vmlinuz-4.12.14-95.19-default",
        )],
    );
    let mut v = Variant::of("gen2-gpt-ext4");
    let kernel = v.kernel();
    v.edit("/boot/grub/grub.cfg", |t| t.replace(&kernel, KV))
        .write(&format!("/boot/vmlinuz-{KV}"), "not a kernel")
        .mkdir(&format!("/usr/lib/modules/{KV}"))
        .write("/etc/os-release", SLES12_OS_RELEASE)
        .remove("/var/lib/dpkg/status")
        .write("/var/lib/rpm/Packages", &db);
    let policy = Policy {
        marketplace: true,
        ..Policy::default()
    };
    let image = DiskImage::open(&v.path).unwrap();
    let ctx = vhdprep_check::Context::gather(&image, &[], &policy).unwrap();
    assert_eq!(ctx.family, Family::Suse);
    assert_eq!(ctx.packages.databases()[0].source, Source::RpmBdb);
    assert_eq!(
        ctx.packages.version_of("kernel-default"),
        Some("4.12.14-95.19.1")
    );
    let r = Report::build(&ctx);
    assert!(
        r.rules
            .iter()
            .any(|x| x.id == "CERT-012" && x.status == vhdprep_check::report::RuleStatus::Pass),
        "CERT-012 evaluated and passed"
    );
    assert_quiet(&r, "CERT-012");
    drop(ctx);
    drop(image);
    v.remove("/var/lib/rpm/Packages");
    let r = check_path(&v.path, &policy);
    let f = assert_fires(&r, "CERT-012", Severity::Warning);
    assert!(
        f[0].message
            .contains("4.12.14-95.19.1 (Marketplace SACK table)"),
        "{f:?}"
    );
    assert_eq!(
        f[0].evidence.as_deref(),
        Some(&*format!("/lib/modules/{KV}"))
    );
}
