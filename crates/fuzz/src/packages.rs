//! Fuzz targets: the package databases (rpm's header blob and its three database formats).

use crate::Target;
use vhdprep_guest::packages::rpm::{header, read_bytes, read_sqlite, RpmBackend};

/// The package database targets.
pub const TARGETS: &[Target] = &[
    Target {
        name: "rpm_header",
        about: "an rpm header blob: index entries, data store, name/epoch/version/release/arch and the file list",
        run: rpm_header,
    },
    Target {
        name: "rpm_sqlite",
        about: "rpmdb.sqlite: SQLite file header, table b-trees from the schema to Packages, overflow chains, records",
        run: rpm_sqlite,
    },
    Target {
        name: "rpm_sqlite_wal",
        about: "rpmdb.sqlite read through its write-ahead log (input: u32 LE database length, database, log)",
        run: rpm_sqlite_wal,
    },
    Target {
        name: "rpm_bdb",
        about: "Berkeley DB hash Packages: metadata page, hash pages' items, overflow chains",
        run: rpm_bdb,
    },
    Target {
        name: "rpm_ndb",
        about: "rpm's ndb Packages.db: header, slot pages, blobs with adler32",
        run: rpm_ndb,
    },
];

/// One header blob.
pub fn rpm_header(data: &[u8]) {
    let _ = header::parse(data);
}

/// A whole `rpmdb.sqlite`.
pub fn rpm_sqlite(data: &[u8]) {
    let _ = read_bytes(RpmBackend::Sqlite, data);
}

/// An `rpmdb.sqlite` and its `-wal`: a little-endian u32 length of the database, the database,
/// then the log.
pub fn rpm_sqlite_wal(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    let (db, wal) = rest.split_at(n.min(rest.len()));
    let _ = read_sqlite(db, Some(wal));
}

/// A whole Berkeley DB `Packages`.
pub fn rpm_bdb(data: &[u8]) {
    let _ = read_bytes(RpmBackend::BerkeleyDb, data);
}

/// A whole ndb `Packages.db`.
pub fn rpm_ndb(data: &[u8]) {
    let _ = read_bytes(RpmBackend::Ndb, data);
}
