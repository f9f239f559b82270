//! The rpm database readers against databases written by real rpm: the packages of
//! fixtures/rpm/build-test-rpms.sh (built by `rpmbuild`) installed by fixtures/rpm/make-rpmdb.sh
//! with `rpm -i --justdb` (sqlite: Debian's rpm 4.18; Berkeley DB: rpm's own header blobs
//! written by libdb5.3, read back by `rpm --define '_db_backend bdb_ro'`; ndb: rpm 4.18 built
//! with --enable-ndb by fixtures/rpm/build-rpm-ndb.sh). Every package's name, epoch, version,
//! release, arch, install time and file list is compared with what `rpm -qa`, `rpm -ql` and
//! `rpm -qf` print for the same database.
//!
//! A missing tool fails naming its Debian package; nothing is skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use vhdprep_guest::packages::rpm::{read_bytes, RpmBackend, RpmDatabase, RpmPackage};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a command, failing with the Debian package to install when it is missing, or with its
/// stderr when it fails.
fn run(cmd: &mut Command, package: &str) -> String {
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!(
            "{:?} cannot run ({e}): install the Debian package `{package}`",
            cmd.get_program()
        ),
    };
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The test packages and their databases, built once per test process.
struct Built {
    _dir: tempfile::TempDir,
    rpms: PathBuf,
    dbs: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let rpms = dir.path().join("rpms");
        run(
            Command::new(repo().join("fixtures/rpm/build-test-rpms.sh")).arg(&rpms),
            "rpm",
        );
        Built {
            rpms,
            dbs: dir.path().join("db"),
            _dir: dir,
        }
    })
}

/// The database of `backend` made from the test packages (made once).
fn database(backend: RpmBackend) -> PathBuf {
    static MADE: OnceLock<std::sync::Mutex<BTreeMap<&'static str, PathBuf>>> = OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    let mut made = made.lock().unwrap_or_else(|e| e.into_inner());
    made.entry(backend.name())
        .or_insert_with(|| {
            let b = built();
            let out = b.dbs.join(backend.name());
            let mut cmd = Command::new(repo().join("fixtures/rpm/make-rpmdb.sh"));
            cmd.arg(backend.name()).arg(&out);
            for e in std::fs::read_dir(&b.rpms).unwrap() {
                cmd.arg(e.unwrap().path());
            }
            run(&mut cmd, "rpm (and python3-bsddb3 for bdb)");
            out
        })
        .clone()
}

/// `rpm` with the arguments that read `dir` with `backend`.
fn rpm(backend: RpmBackend, dir: &Path) -> Command {
    let mut cmd = match backend {
        RpmBackend::Ndb => {
            let bin = run(
                &mut Command::new(repo().join("fixtures/rpm/build-rpm-ndb.sh")),
                "rpm build dependencies (see fixtures/rpm/build-rpm-ndb.sh)",
            );
            Command::new(bin.trim())
        }
        _ => Command::new("rpm"),
    };
    cmd.arg("--dbpath").arg(dir);
    cmd.arg("--define").arg(match backend {
        RpmBackend::Sqlite => "_db_backend sqlite",
        RpmBackend::BerkeleyDb => "_db_backend bdb_ro",
        RpmBackend::Ndb => "_db_backend ndb",
    });
    cmd
}

fn ours(backend: RpmBackend) -> (PathBuf, RpmDatabase) {
    let dir = database(backend);
    let bytes = std::fs::read(dir.join(backend.file_name())).unwrap();
    let db = read_bytes(backend, &bytes).unwrap();
    (dir, db)
}

/// Compares every package with `rpm -qa --qf`, `rpm -ql` and `rpm -qf`.
fn compare_with_rpm(backend: RpmBackend) {
    let (dir, db) = ours(backend);
    assert_eq!(db.backend, backend);
    assert_eq!(db.skipped, 0);
    let qa = run(
        rpm(backend, &dir).args([
            "-qa",
            "--qf",
            "%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|%{INSTALLTIME}\\n",
        ]),
        "rpm",
    );
    let mut theirs: Vec<&str> = qa.lines().collect();
    let line = |p: &RpmPackage| {
        format!(
            "{}|{}|{}|{}|{}|{}",
            p.name,
            p.epoch.map_or("(none)".into(), |e| e.to_string()),
            p.version,
            p.release,
            p.arch.as_deref().unwrap_or("(none)"),
            p.install_time.map_or("(none)".into(), |t| t.to_string()),
        )
    };
    let mut mine: Vec<String> = db.packages.iter().map(line).collect();
    theirs.sort();
    mine.sort();
    assert_eq!(mine, theirs);
    // The packages the test builds, as rpmbuild wrote them.
    let names: Vec<&str> = db.packages.iter().map(|p| p.name.as_str()).collect();
    for n in ["hello", "hello-data", "zeroepoch", "empty", "many"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    for p in &db.packages {
        let ql = run(rpm(backend, &dir).args(["-ql", &p.name]), "rpm");
        let theirs: Vec<&str> = if ql.trim() == "(contains no files)" {
            vec![]
        } else {
            ql.lines().collect()
        };
        let mut mine = p.files.clone();
        mine.sort();
        assert_eq!(mine, theirs, "files of {}", p.name);
    }
    let many = db.packages.iter().find(|p| p.name == "many").unwrap();
    assert_eq!(many.files.len(), 3000 + 30 + 1);
    // Which package owns a file: ours (a search of the file lists) and rpm -qf.
    for file in [
        "/etc/hello.conf",
        "/usr/share/hello-data/sub/c",
        "/usr/lib/zeroepoch/z.so",
        "/usr/share/many/dir-29/file-with-a-longer-name-99",
    ] {
        let theirs = run(
            rpm(backend, &dir).args(["-qf", "--qf", "%{NAME}\\n", file]),
            "rpm",
        );
        let mine: Vec<&str> = db
            .packages
            .iter()
            .filter(|p| p.files.iter().any(|f| f == file))
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(mine, theirs.lines().collect::<Vec<_>>(), "owner of {file}");
    }
}

#[test]
fn sqlite_matches_rpm() {
    compare_with_rpm(RpmBackend::Sqlite);
}

#[test]
fn berkeley_db_matches_rpm_bdb_ro() {
    compare_with_rpm(RpmBackend::BerkeleyDb);
}

#[test]
fn ndb_matches_rpm_built_with_ndb() {
    compare_with_rpm(RpmBackend::Ndb);
}

/// A package without its install time (each database is installed at its own second).
fn key(
    p: &RpmPackage,
) -> (
    String,
    Option<u32>,
    String,
    String,
    Option<String>,
    Vec<String>,
) {
    let mut files = p.files.clone();
    files.sort();
    (
        p.name.clone(),
        p.epoch,
        p.version.clone(),
        p.release.clone(),
        p.arch.clone(),
        files,
    )
}

#[test]
fn the_three_databases_hold_the_same_packages() {
    let sorted = |b| {
        let mut v: Vec<_> = ours(b).1.packages.iter().map(key).collect();
        v.sort();
        v
    };
    let s = sorted(RpmBackend::Sqlite);
    for other in [RpmBackend::BerkeleyDb, RpmBackend::Ndb] {
        let o = sorted(other);
        assert!(s == o, "{other:?} differs from sqlite");
    }
    let find = |n: &str| s.iter().find(|p| p.0 == n).unwrap().clone();
    let hello = find("hello");
    assert_eq!(
        (
            hello.1,
            hello.2.as_str(),
            hello.3.as_str(),
            hello.4.as_deref()
        ),
        (Some(1), "2.0~rc1", "3", Some("x86_64"))
    );
    assert_eq!(find("zeroepoch").1, Some(0));
    let d = find("hello-data");
    assert_eq!((d.1, d.4.as_deref()), (None, Some("noarch")));
    assert_eq!(find("many").2, "1.0^git20240101");
}
