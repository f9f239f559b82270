//! rpm's installed-package databases, read from the guest tree without rpm or SQLite:
//! the header blob format and each database that stores those blobs.
//!
//! - [`header`]: the header blob rpm stores per installed package (name, epoch, version,
//!   release, arch, install time, file list).
//! - [`sqlite`]: `rpmdb.sqlite` (RHEL 9, Fedora, Azure Linux, Oracle Linux 9), the SQLite file
//!   format's table b-tree, read by our own bounded reader; [`sqlite_wal`]: its write-ahead log.
//! - [`bdb`]: Berkeley DB hash `Packages` (RHEL, CentOS and Oracle Linux 7 and 8).
//! - [`ndb`]: rpm's own `Packages.db` (SUSE).
//!
//! [`read`] finds the database rpm itself would use in a guest and reads every package from it.
//! Every length, count, offset and page number read from disk is checked; the database file is
//! read only up to [`MAX_DB_BYTES`], at most [`MAX_PACKAGES`] headers are parsed, and page
//! walks keep a visited set so cyclic links end.

pub mod bdb;
pub mod header;
pub mod ndb;
pub mod sqlite;
pub mod sqlite_wal;

use crate::tree::{GuestPathError, GuestTree};
pub use header::{HeaderError, RpmPackage};

/// Largest database file read (bytes); a bigger one is refused with [`RpmError::TooLarge`].
/// Far above the tens of MiB of a server's database; bounds the memory a hostile one takes.
pub const MAX_DB_BYTES: u64 = 512 << 20;
/// Most package headers read from one database.
pub const MAX_PACKAGES: usize = 100_000;
/// Most bytes of one header blob once assembled from pages (rpm's own limit is 256 MiB of
/// data; real headers are below 2 MiB, kernel-modules and texlive the largest).
pub const MAX_BLOB_BYTES: usize = 64 << 20;
/// Most header bytes parsed over the whole database (twice [`MAX_DB_BYTES`]): a database rpm
/// wrote hands on each byte once; a hostile SQLite file whose cells share their bytes could
/// otherwise have the same bytes parsed 100 000 times.
pub const MAX_TOTAL_BLOB_BYTES: u64 = 2 * MAX_DB_BYTES;
/// Most bytes of file paths kept over the whole database (the file lists of a hostile header
/// can name a long directory many times).
pub const MAX_TOTAL_PATH_BYTES: usize = 256 << 20;

/// Which of rpm's database formats a database is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum RpmBackend {
    /// `rpmdb.sqlite`: SQLite, table `Packages(hnum, blob)`.
    Sqlite,
    /// `Packages`: Berkeley DB hash, key = package number, value = header blob.
    BerkeleyDb,
    /// `Packages.db`: rpm's ndb package file.
    Ndb,
}

impl RpmBackend {
    /// The backend's name as rpm's `%_db_backend` spells it.
    pub fn name(self) -> &'static str {
        match self {
            RpmBackend::Sqlite => "sqlite",
            RpmBackend::BerkeleyDb => "bdb",
            RpmBackend::Ndb => "ndb",
        }
    }

    /// The file name of the database in rpm's directory.
    pub fn file_name(self) -> &'static str {
        match self {
            RpmBackend::Sqlite => "rpmdb.sqlite",
            RpmBackend::BerkeleyDb => "Packages",
            RpmBackend::Ndb => "Packages.db",
        }
    }
}

/// The packages read from one rpm database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmDatabase {
    /// The database's format.
    pub backend: RpmBackend,
    /// The guest path read (for `read_bytes`: `"(bytes)"`).
    pub path: String,
    /// Every package whose header parsed, in the database's order.
    pub packages: Vec<RpmPackage>,
    /// Headers that failed to parse (counted, not fatal).
    pub skipped: usize,
    /// Things a reader of the report should know, e.g. that a non-empty SQLite write-ahead log
    /// beside the database was read through (or ignored, and why).
    pub notes: Vec<String>,
}

/// Why an rpm database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RpmError {
    /// The guest file could not be read.
    #[error("rpm database {path}: {source}")]
    Guest {
        /// The guest path.
        path: String,
        /// What the guest tree said.
        #[source]
        source: GuestPathError,
    },
    /// The database file is bigger than [`MAX_DB_BYTES`].
    #[error("rpm database {path}: {size} bytes, more than the {max} read")]
    TooLarge {
        /// The guest path.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// More than [`MAX_PACKAGES`] headers.
    #[error("rpm database: more than {max} package headers")]
    TooManyPackages {
        /// The limit.
        max: usize,
    },
    /// The header blobs together exceed [`MAX_TOTAL_BLOB_BYTES`].
    #[error("rpm database: header blobs exceed {max} bytes")]
    TooMuchData {
        /// The limit.
        max: u64,
    },
    /// The file lists together exceed [`MAX_TOTAL_PATH_BYTES`].
    #[error("rpm database: file lists exceed {max} bytes of paths")]
    TooManyPaths {
        /// The limit.
        max: usize,
    },
    /// The SQLite file is damaged or not rpm's.
    #[error("rpm sqlite database: {0}")]
    Sqlite(#[from] sqlite::SqliteError),
    /// The Berkeley DB file is damaged or not rpm's.
    #[error("rpm Berkeley DB database: {0}")]
    Bdb(#[from] bdb::BdbError),
    /// The ndb file is damaged or not rpm's.
    #[error("rpm ndb database: {0}")]
    Ndb(#[from] ndb::NdbError),
}

/// Where rpm's databases live, in the order looked at: the newer place first (`/var/lib/rpm`
/// is often a link to it, and then both name the same file).
pub const DB_DIRS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];

/// The database rpm would use in `tree`: in each of [`DB_DIRS`], `rpmdb.sqlite`, then
/// `Packages.db`, then `Packages` (the order of rpm's backend detection); the first that
/// exists as a regular file is read. `Ok(None)` when the guest has none.
pub fn read(tree: &GuestTree) -> Result<Option<RpmDatabase>, RpmError> {
    let Some((backend, path)) = locate(tree) else {
        return Ok(None);
    };
    let guest = |source| RpmError::Guest {
        path: path.clone(),
        source,
    };
    let meta = tree.metadata(path.as_bytes()).map_err(guest)?;
    if meta.size > MAX_DB_BYTES {
        return Err(RpmError::TooLarge {
            path,
            size: meta.size,
            max: MAX_DB_BYTES,
        });
    }
    let bytes = tree
        .read_file(path.as_bytes(), MAX_DB_BYTES)
        .map_err(guest)?;
    let mut db = if backend == RpmBackend::Sqlite {
        let wal_path = format!("{path}-wal");
        let wal = match tree.metadata(wal_path.as_bytes()) {
            Ok(m) if m.size > MAX_DB_BYTES => {
                return Err(RpmError::TooLarge {
                    path: wal_path,
                    size: m.size,
                    max: MAX_DB_BYTES,
                })
            }
            Ok(m) if m.size > 0 => Some(
                tree.read_file(wal_path.as_bytes(), MAX_DB_BYTES)
                    .map_err(|source| RpmError::Guest {
                        path: wal_path.clone(),
                        source,
                    })?,
            ),
            _ => None,
        };
        let mut db = read_sqlite(&bytes, wal.as_deref())?;
        for n in &mut db.notes {
            *n = format!("{wal_path}: {n}");
        }
        db
    } else {
        read_bytes(backend, &bytes)?
    };
    db.path = path;
    Ok(Some(db))
}

/// The backend and guest path of the database [`read`] would read, if any.
pub fn locate(tree: &GuestTree) -> Option<(RpmBackend, String)> {
    for dir in DB_DIRS {
        for backend in [RpmBackend::Sqlite, RpmBackend::Ndb, RpmBackend::BerkeleyDb] {
            let path = format!("{dir}/{}", backend.file_name());
            if let Ok(m) = tree.metadata(path.as_bytes()) {
                if m.kind == vhdprep_fs::FileKind::File {
                    return Some((backend, path));
                }
            }
        }
    }
    None
}

/// Reads every package of a database held in memory (tests, fuzzing, [`read`]).
pub fn read_bytes(backend: RpmBackend, bytes: &[u8]) -> Result<RpmDatabase, RpmError> {
    let mut acc = Collector::default();
    let mut each = |blob: &[u8]| acc.add(blob);
    match backend {
        RpmBackend::Sqlite => sqlite::for_each_blob(bytes, &mut each)?,
        RpmBackend::BerkeleyDb => bdb::for_each_blob(bytes, &mut each)?,
        RpmBackend::Ndb => ndb::for_each_blob(bytes, &mut each)?,
    }
    acc.finish(backend, Vec::new())
}

/// Reads an `rpmdb.sqlite` through its write-ahead log when there is one, as SQLite would;
/// `notes` says what was taken from the log (or why it was ignored).
pub fn read_sqlite(bytes: &[u8], wal: Option<&[u8]>) -> Result<RpmDatabase, RpmError> {
    let mut acc = Collector::default();
    let used = sqlite::for_each_blob_wal(bytes, wal, &mut |blob: &[u8]| acc.add(blob))?;
    let notes = match used {
        None => vec![],
        Some(sqlite::WalUse::Applied {
            commits,
            pages,
            uncommitted,
        }) => {
            let mut n = format!(
                "write-ahead log not yet checkpointed: {commits} committed transaction(s), \
                 {pages} page(s), read through it as SQLite would"
            );
            if uncommitted > 0 {
                n += &format!("; {uncommitted} frame(s) of an unfinished transaction left out");
            }
            vec![n]
        }
        Some(sqlite::WalUse::Ignored(e)) => vec![format!("write-ahead log ignored: {e}")],
    };
    acc.finish(RpmBackend::Sqlite, notes)
}

/// What the backends' blob walks feed: parses each header, counts and caps.
#[derive(Default)]
struct Collector {
    packages: Vec<RpmPackage>,
    skipped: usize,
    path_bytes: usize,
    blob_bytes: u64,
    error: Option<RpmError>,
}

impl Collector {
    fn finish(self, backend: RpmBackend, notes: Vec<String>) -> Result<RpmDatabase, RpmError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(RpmDatabase {
            backend,
            path: "(bytes)".into(),
            packages: self.packages,
            skipped: self.skipped,
            notes,
        })
    }

    /// Takes one header blob; returns false to stop the walk (a limit was hit).
    fn add(&mut self, blob: &[u8]) -> bool {
        if self.error.is_some() {
            return false;
        }
        if self.packages.len() + self.skipped >= MAX_PACKAGES {
            self.error = Some(RpmError::TooManyPackages { max: MAX_PACKAGES });
            return false;
        }
        self.blob_bytes += blob.len() as u64;
        if self.blob_bytes > MAX_TOTAL_BLOB_BYTES {
            self.error = Some(RpmError::TooMuchData {
                max: MAX_TOTAL_BLOB_BYTES,
            });
            return false;
        }
        match header::parse(blob) {
            Ok(p) => {
                self.path_bytes += p.files.iter().map(String::len).sum::<usize>();
                if self.path_bytes > MAX_TOTAL_PATH_BYTES {
                    self.error = Some(RpmError::TooManyPaths {
                        max: MAX_TOTAL_PATH_BYTES,
                    });
                    return false;
                }
                self.packages.push(p);
            }
            Err(_) => self.skipped += 1,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::memory::MemoryFs;
    use std::sync::Arc;

    /// A database rpm wrote (fuzz/make-seeds/rpm.sh: four packages).
    fn seed(backend: RpmBackend) -> Vec<u8> {
        let dir = match backend {
            RpmBackend::Sqlite => "rpm_sqlite",
            RpmBackend::BerkeleyDb => "rpm_bdb",
            RpmBackend::Ndb => "rpm_ndb",
        };
        let path = format!(
            "{}/../../fuzz/seeds/{dir}/{}",
            env!("CARGO_MANIFEST_DIR"),
            backend.file_name()
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn tree(fs: MemoryFs) -> GuestTree {
        GuestTree::new(Arc::new(fs), "test")
    }

    fn base() -> MemoryFs {
        MemoryFs::default()
            .dir("/")
            .dir("/usr")
            .dir("/usr/lib")
            .dir("/var")
            .dir("/var/lib")
    }

    #[test]
    fn no_database_is_none() {
        assert!(read(&tree(base().dir("/var/lib/rpm"))).unwrap().is_none());
        assert!(read(&tree(base())).unwrap().is_none());
    }

    #[test]
    fn suse_ndb_under_sysimage_with_the_var_link() {
        let t = tree(
            base()
                .dir("/usr/lib/sysimage")
                .dir("/usr/lib/sysimage/rpm")
                .file_bytes("/usr/lib/sysimage/rpm/Packages.db", &seed(RpmBackend::Ndb))
                .link("/var/lib/rpm", "../../usr/lib/sysimage/rpm"),
        );
        let db = read(&t).unwrap().unwrap();
        assert_eq!(db.backend, RpmBackend::Ndb);
        assert_eq!(db.path, "/usr/lib/sysimage/rpm/Packages.db");
        assert_eq!(db.packages.len(), 4);
        assert!(db.notes.is_empty());
    }

    #[test]
    fn rhel8_berkeley_db_under_var() {
        let t = tree(
            base()
                .dir("/var/lib/rpm")
                .file_bytes("/var/lib/rpm/Packages", &seed(RpmBackend::BerkeleyDb))
                .file("/var/lib/rpm/Name", "index, not read"),
        );
        let db = read(&t).unwrap().unwrap();
        assert_eq!(
            (db.backend, db.path.as_str(), db.packages.len()),
            (RpmBackend::BerkeleyDb, "/var/lib/rpm/Packages", 4)
        );
    }

    #[test]
    fn sqlite_is_preferred_and_a_pending_wal_is_noted() {
        // A leftover Packages beside rpmdb.sqlite (an image converted with rpmdb --rebuilddb):
        // rpm reads the sqlite one.
        let t = tree(
            base()
                .dir("/var/lib/rpm")
                .file_bytes("/var/lib/rpm/Packages", &seed(RpmBackend::BerkeleyDb))
                .file_bytes("/var/lib/rpm/rpmdb.sqlite", &seed(RpmBackend::Sqlite))
                .file("/var/lib/rpm/rpmdb.sqlite-wal", "not empty")
                .file("/var/lib/rpm/rpmdb.sqlite-shm", ""),
        );
        let db = read(&t).unwrap().unwrap();
        assert_eq!(
            (db.backend, db.path.as_str()),
            (RpmBackend::Sqlite, "/var/lib/rpm/rpmdb.sqlite")
        );
        assert_eq!(db.notes.len(), 1, "{:?}", db.notes);
        assert!(db.notes[0].contains("rpmdb.sqlite-wal"));
        // An empty WAL (rpm checkpointed and closed) is no news.
        let t = tree(
            base()
                .dir("/var/lib/rpm")
                .file_bytes("/var/lib/rpm/rpmdb.sqlite", &seed(RpmBackend::Sqlite))
                .file("/var/lib/rpm/rpmdb.sqlite-wal", ""),
        );
        assert!(read(&t).unwrap().unwrap().notes.is_empty());
    }

    #[test]
    fn a_damaged_database_is_an_error() {
        let mut bytes = seed(RpmBackend::Sqlite);
        bytes.truncate(200);
        let t = tree(
            base()
                .dir("/var/lib/rpm")
                .file_bytes("/var/lib/rpm/rpmdb.sqlite", &bytes),
        );
        let e = read(&t).unwrap_err();
        assert!(matches!(e, RpmError::Sqlite(_)), "{e}");
    }
}
