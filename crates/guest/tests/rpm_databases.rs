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

// Hostile bytes: the real databases, damaged where a reader could loop, over-allocate or read
// out of bounds. Each must give a typed error (or fewer packages), never a panic or a hang.

use vhdprep_guest::packages::rpm::{bdb::BdbError, ndb::NdbError, sqlite::SqliteError, RpmError};

fn db_bytes(backend: RpmBackend) -> Vec<u8> {
    std::fs::read(database(backend).join(backend.file_name())).unwrap()
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Truncations and byte flips at deterministic places: no panic, whatever the result.
fn survives_damage(backend: RpmBackend) {
    let good = db_bytes(backend);
    for i in 1..40 {
        let _ = read_bytes(backend, &good[..good.len() * i / 40]);
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..150 {
        let mut bad = good.clone();
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x % bad.len() as u64) as usize;
            bad[at] = (x >> 32) as u8;
        }
        let _ = read_bytes(backend, &bad);
    }
}

#[test]
fn damaged_databases_never_panic() {
    for b in [RpmBackend::Sqlite, RpmBackend::BerkeleyDb, RpmBackend::Ndb] {
        survives_damage(b);
    }
}

fn sqlite_err(bytes: &[u8]) -> SqliteError {
    match read_bytes(RpmBackend::Sqlite, bytes) {
        Err(RpmError::Sqlite(e)) => e,
        other => panic!("expected an sqlite error, got {other:?}"),
    }
}

#[test]
fn sqlite_hostile_pages() {
    let good = db_bytes(RpmBackend::Sqlite);
    let page = match u16::from_be_bytes([good[16], good[17]]) {
        1 => 65536,
        n => usize::from(n),
    };
    // The Packages table's root, as SQLite itself reports it.
    let root: usize = run(
        Command::new("python3").args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\
             \"SELECT rootpage FROM sqlite_master WHERE name='Packages'\").fetchone()[0])",
            database(RpmBackend::Sqlite)
                .join("rpmdb.sqlite")
                .to_str()
                .unwrap(),
        ]),
        "python3",
    )
    .trim()
    .parse()
    .unwrap();
    let at = (root - 1) * page;
    assert_eq!(good[at], 0x05, "Packages' root is an interior page");
    // Its right-most child pointing back at itself: a cycle.
    let mut bad = good.clone();
    bad[at + 8..at + 12].copy_from_slice(&(root as u32).to_be_bytes());
    assert_eq!(sqlite_err(&bad), SqliteError::PageLoop(root as u32));
    // A child beyond the file.
    let mut bad = good.clone();
    bad[at + 8..at + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        sqlite_err(&bad),
        SqliteError::PageOutOfRange {
            page: 0xffff_ffff,
            ..
        }
    ));
    // A cell count that cannot fit the page.
    let mut bad = good.clone();
    bad[at + 3..at + 5].copy_from_slice(&0xffffu16.to_be_bytes());
    assert!(matches!(sqlite_err(&bad), SqliteError::Corrupt { .. }));
    // An overflow chain of the big header (consecutive pages p -> p+1 -> p+2) made to loop.
    let pages = good.len() / page;
    let p = (2..pages - 2)
        .find(|&p| {
            be32(&good, (p - 1) * page) as usize == p + 1 && be32(&good, p * page) as usize == p + 2
        })
        .expect("an overflow chain");
    let mut bad = good.clone();
    bad[p * page..p * page + 4].copy_from_slice(&(p as u32).to_be_bytes());
    assert_eq!(sqlite_err(&bad), SqliteError::PageLoop(p as u32));
    // The chain cut short by the end of the file.
    assert!(matches!(
        sqlite_err(&good[..(p + 1) * page]),
        SqliteError::PageOutOfRange { .. } | SqliteError::Corrupt { .. }
    ));
    // A bad page size, a UTF-16 database, not SQLite at all.
    let mut bad = good.clone();
    bad[16..18].copy_from_slice(&3000u16.to_be_bytes());
    assert!(matches!(sqlite_err(&bad), SqliteError::Header(_)));
    let mut bad = good.clone();
    bad[56..60].copy_from_slice(&2u32.to_be_bytes());
    assert_eq!(sqlite_err(&bad), SqliteError::Encoding(2));
    assert_eq!(sqlite_err(&good[1..]), SqliteError::NotSqlite);
}

fn bdb_err(bytes: &[u8]) -> BdbError {
    match read_bytes(RpmBackend::BerkeleyDb, bytes) {
        Err(RpmError::Bdb(e)) => e,
        other => panic!("expected a Berkeley DB error, got {other:?}"),
    }
}

#[test]
fn berkeley_db_hostile_pages() {
    let good = db_bytes(RpmBackend::BerkeleyDb);
    let page = le32(&good, 20) as usize;
    let pages = good.len() / page;
    let g = &good;
    let of_type = |t: u8| (1..pages).filter(move |&p| g[p * page + 25] == t);
    // An overflow page whose next page is itself.
    let ov = of_type(7)
        .find(|&p| le32(&good, p * page + 16) != 0)
        .expect("an overflow chain of several pages");
    let mut bad = good.clone();
    bad[ov * page + 16..ov * page + 20].copy_from_slice(&(ov as u32).to_le_bytes());
    assert_eq!(bdb_err(&bad), BdbError::PageLoop(ov as u32));
    // An overflow page claiming more bytes than a page holds.
    let mut bad = good.clone();
    bad[ov * page + 22..ov * page + 24].copy_from_slice(&0xffffu16.to_le_bytes());
    assert!(matches!(bdb_err(&bad), BdbError::Corrupt { .. }));
    // On the hash page: an item offset beyond the page, an odd entry count, an off-page item
    // announcing 4 GiB.
    let h = of_type(13).next().expect("a hash page") * page;
    let mut bad = good.clone();
    bad[h + 26..h + 28].copy_from_slice(&0xfff0u16.to_le_bytes());
    assert!(matches!(bdb_err(&bad), BdbError::Corrupt { .. }));
    let mut bad = good.clone();
    bad[h + 20] |= 1;
    let entries = usize::from(u16::from_le_bytes([good[h + 20], good[h + 21]]));
    assert!(entries % 2 == 0 && matches!(bdb_err(&bad), BdbError::Corrupt { .. }));
    let off = (0..entries)
        .map(|i| {
            h + usize::from(u16::from_le_bytes([
                good[h + 26 + 2 * i],
                good[h + 27 + 2 * i],
            ]))
        })
        .find(|&o| good[o] == 3)
        .expect("an off-page item");
    let mut bad = good.clone();
    bad[off + 8..off + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(bdb_err(&bad), BdbError::Corrupt { .. }));
    // Its chain starting beyond the file.
    let mut bad = good.clone();
    bad[off + 4..off + 8].copy_from_slice(&(pages as u32 + 7).to_le_bytes());
    assert!(matches!(bdb_err(&bad), BdbError::PageOutOfRange { .. }));
    // Encrypted, a bad page size, not a hash database.
    let mut bad = good.clone();
    bad[24] = 1;
    assert!(matches!(bdb_err(&bad), BdbError::Meta(_)));
    let mut bad = good.clone();
    bad[20..24].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(bdb_err(&bad), BdbError::Meta(_)));
    assert_eq!(bdb_err(&good[..100]), BdbError::NotHash);
}

fn ndb_err(bytes: &[u8]) -> NdbError {
    match read_bytes(RpmBackend::Ndb, bytes) {
        Err(RpmError::Ndb(e)) => e,
        other => panic!("expected an ndb error, got {other:?}"),
    }
}

#[test]
fn ndb_hostile_slots_and_blobs() {
    let good = db_bytes(RpmBackend::Ndb);
    // The first used slot (32 bytes in) and the second.
    assert_eq!(&good[32..36], b"Slot");
    let used: Vec<usize> = (2..256)
        .map(|s| s * 16)
        .filter(|&at| le32(&good, at + 8) != 0)
        .collect();
    assert_eq!(used.len(), 5);
    let (a, b) = (used[0], used[1]);
    // A block count near 2^32; a blob beyond the file; two slots on the same blob.
    let mut bad = good.clone();
    bad[a + 12..a + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(ndb_err(&bad), NdbError::Slot { .. }));
    let mut bad = good.clone();
    bad[a + 8..a + 12].copy_from_slice(&((good.len() / 16) as u32).to_le_bytes());
    assert!(matches!(ndb_err(&bad), NdbError::Slot { .. }));
    let mut bad = good.clone();
    bad.copy_within(a + 8..a + 16, b + 8);
    assert!(matches!(ndb_err(&bad), NdbError::Slot { .. }));
    // A slot page count beyond the file, a slot without its magic.
    let mut bad = good.clone();
    bad[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(ndb_err(&bad), NdbError::SlotPages { .. }));
    let mut bad = good.clone();
    bad[48] = b'X';
    assert!(matches!(ndb_err(&bad), NdbError::Slot { slot: 3, .. }));
    // One blob's byte changed: its adler32 no longer matches, it alone is skipped.
    let mut bad = good.clone();
    let blob = le32(&good, a + 8) as usize * 16;
    bad[blob + 40] ^= 0xff;
    let db = read_bytes(RpmBackend::Ndb, &bad).unwrap();
    assert_eq!((db.packages.len(), db.skipped), (4, 1));
    assert_eq!(
        ndb_err(b"RpmQ and more bytes than a header"),
        NdbError::NotNdb
    );
}

/// The committed fuzz seeds (fuzz/make-seeds/rpm.sh) are real databases this reader reads in
/// full: the fuzzer starts from valid structures, not from bytes rejected at the magic.
#[test]
fn fuzz_seeds_are_whole_databases() {
    let seeds = repo().join("fuzz/seeds");
    for (dir, backend) in [
        ("rpm_sqlite", RpmBackend::Sqlite),
        ("rpm_bdb", RpmBackend::BerkeleyDb),
        ("rpm_ndb", RpmBackend::Ndb),
    ] {
        for f in std::fs::read_dir(seeds.join(dir)).unwrap() {
            let f = f.unwrap().path();
            let db = read_bytes(backend, &std::fs::read(&f).unwrap()).unwrap();
            let mut names: Vec<&str> = db.packages.iter().map(|p| p.name.as_str()).collect();
            names.sort();
            assert_eq!(
                names,
                ["empty", "hello", "hello-data", "zeroepoch"],
                "{f:?}"
            );
            assert_eq!(db.skipped, 0);
        }
    }
    let s = std::fs::read(seeds.join("rpm_sqlite_wal/db-and-wal")).unwrap();
    let n = u32::from_le_bytes(s[..4].try_into().unwrap()) as usize;
    let db = vhdprep_guest::packages::rpm::read_sqlite(&s[4..4 + n], Some(&s[4 + n..])).unwrap();
    assert_eq!((db.packages.len(), db.skipped), (4, 0));
    assert!(db.notes[0].contains("2 committed"), "{:?}", db.notes);
    for f in std::fs::read_dir(seeds.join("rpm_header")).unwrap() {
        let blob = std::fs::read(f.unwrap().path()).unwrap();
        assert!(vhdprep_guest::packages::rpm::header::parse(&blob).is_ok());
    }
}

/// The rows SQLite itself (Python's sqlite3) sees in `db` with `wal` beside it, as package
/// names (each blob parsed by our header parser), in hnum order.
fn sqlite_sees(dir: &Path, db: &[u8], wal: Option<&[u8]>) -> Vec<String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("rpmdb.sqlite"), db).unwrap();
    if let Some(w) = wal {
        std::fs::write(dir.join("rpmdb.sqlite-wal"), w).unwrap();
    }
    let out = run(
        Command::new("python3").args([
            "-c",
            "import sqlite3,sys\n\
             c = sqlite3.connect(sys.argv[1])\n\
             for (b,) in c.execute('SELECT blob FROM Packages ORDER BY hnum'): print(bytes(b).hex())",
            dir.join("rpmdb.sqlite").to_str().unwrap(),
        ]),
        "python3",
    );
    out.lines()
        .map(|l| {
            let blob: Vec<u8> = (0..l.len() / 2)
                .map(|i| u8::from_str_radix(&l[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            vhdprep_guest::packages::rpm::header::parse(&blob)
                .unwrap()
                .name
        })
        .collect()
}

#[test]
fn sqlite_write_ahead_log_is_read_as_sqlite_reads_it() {
    use vhdprep_guest::packages::rpm::read_sqlite;
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    std::fs::create_dir(&live).unwrap();
    std::fs::copy(
        database(RpmBackend::Sqlite).join("rpmdb.sqlite"),
        live.join("rpmdb.sqlite"),
    )
    .unwrap();
    // rpm keeps rpmdb.sqlite in WAL mode. Two transactions (remove hello; add a second copy of
    // zeroepoch's header), and the files copied while the connection is still open: the image
    // of a system where rpm had not checkpointed yet.
    let snap = tmp.path().join("snap");
    run(
        Command::new("python3").args([
            "-c",
            "import sqlite3,shutil,sys,os\n\
             live, snap = sys.argv[1], sys.argv[2]\n\
             c = sqlite3.connect(os.path.join(live, 'rpmdb.sqlite'), isolation_level=None)\n\
             assert c.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'\n\
             c.execute('PRAGMA wal_autocheckpoint=0')\n\
             c.execute(\"DELETE FROM Packages WHERE hnum = (SELECT hnum FROM Name WHERE key='hello')\")\n\
             b = c.execute(\"SELECT blob FROM Packages WHERE hnum = (SELECT hnum FROM Name WHERE key='zeroepoch')\").fetchone()[0]\n\
             c.execute('INSERT INTO Packages(blob) VALUES (?)', (b,))\n\
             os.mkdir(snap)\n\
             for f in ('rpmdb.sqlite', 'rpmdb.sqlite-wal'): shutil.copy(os.path.join(live, f), snap)\n",
            live.to_str().unwrap(),
            snap.to_str().unwrap(),
        ]),
        "python3",
    );
    let db = std::fs::read(snap.join("rpmdb.sqlite")).unwrap();
    let wal = std::fs::read(snap.join("rpmdb.sqlite-wal")).unwrap();
    assert!(!wal.is_empty());
    let names = |d: &RpmDatabase| {
        d.packages
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    // Without the log: the old content. Through it: what SQLite sees.
    let old = read_sqlite(&db, None).unwrap();
    assert!(names(&old).contains(&"hello".to_string()));
    assert_eq!(names(&old), sqlite_sees(&tmp.path().join("a"), &db, None));
    let new = read_sqlite(&db, Some(&wal)).unwrap();
    let seen = sqlite_sees(&tmp.path().join("b"), &db, Some(&wal));
    assert_eq!(names(&new), seen);
    assert!(!seen.contains(&"hello".to_string()));
    assert_eq!(seen.iter().filter(|n| *n == "zeroepoch").count(), 2);
    assert!(
        new.notes[0].contains("2 committed transaction(s)"),
        "{:?}",
        new.notes
    );
    // The log cut inside its last frame: that transaction is gone for both readers.
    let cut = &wal[..wal.len() - 100];
    let partial = read_sqlite(&db, Some(cut)).unwrap();
    assert_eq!(
        names(&partial),
        sqlite_sees(&tmp.path().join("c"), &db, Some(cut))
    );
    assert_ne!(names(&partial), names(&new));
    // A log whose salts do not match is ignored, as SQLite ignores it.
    let mut foreign = wal.clone();
    foreign[16] ^= 1;
    let ignored = read_sqlite(&db, Some(&foreign)).unwrap();
    assert_eq!(
        names(&ignored),
        sqlite_sees(&tmp.path().join("d"), &db, Some(&foreign))
    );
    assert!(ignored.notes[0].contains("ignored"), "{:?}", ignored.notes);
}

/// A Berkeley DB written big-endian (as on s390x or POWER BE; libdb's `set_lorder(4321)`) holds
/// the same packages: every page field is read in the database's byte order.
#[test]
fn berkeley_db_big_endian() {
    let tmp = tempfile::tempdir().unwrap();
    let be = tmp.path().join("Packages");
    run(
        Command::new("/usr/bin/python3").args([
            "-c",
            "import sqlite3,struct,sys\n\
             from bsddb3 import db\n\
             d = db.DB(); d.set_lorder(4321)\n\
             d.open(sys.argv[2], dbtype=db.DB_HASH, flags=db.DB_CREATE)\n\
             d.put(struct.pack('>I', 0), struct.pack('>I', 9))\n\
             for h, b in sqlite3.connect(sys.argv[1]).execute('SELECT hnum, blob FROM Packages'):\n\
             \x20   d.put(struct.pack('>I', h), bytes(b))\n\
             d.close()\n",
            database(RpmBackend::Sqlite)
                .join("rpmdb.sqlite")
                .to_str()
                .unwrap(),
            be.to_str().unwrap(),
        ]),
        "python3-bsddb3",
    );
    let bytes = std::fs::read(&be).unwrap();
    assert_eq!(&bytes[12..16], &[0, 6, 0x15, 0x61], "written big-endian");
    let mut got: Vec<_> = read_bytes(RpmBackend::BerkeleyDb, &bytes)
        .unwrap()
        .packages
        .iter()
        .map(key)
        .collect();
    let mut want: Vec<_> = ours(RpmBackend::Sqlite)
        .1
        .packages
        .iter()
        .map(key)
        .collect();
    got.sort();
    want.sort();
    assert!(got == want, "big-endian Berkeley DB differs");
}
