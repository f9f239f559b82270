//! Fuzz targets: the package databases (rpm's header blob and its three database formats).

use crate::Target;
use vhdprep_guest::packages::rpm::{header, read_bytes, RpmBackend};

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

/// A whole Berkeley DB `Packages`.
pub fn rpm_bdb(data: &[u8]) {
    let _ = read_bytes(RpmBackend::BerkeleyDb, data);
}

/// A whole ndb `Packages.db`.
pub fn rpm_ndb(data: &[u8]) {
    let _ = read_bytes(RpmBackend::Ndb, data);
}
