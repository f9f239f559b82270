//! Installed packages, from whichever database the guest keeps: dpkg's status file or one of
//! rpm's databases (sqlite, Berkeley DB hash, ndb).
//!
//! - [`dpkg`]: the status file and the `info/*.list` file lists.
//! - [`rpm`]: the RPM header format and the three rpm database formats (read-only, bounded).
//! - [`version`]: version comparison as dpkg and rpm define it.
//!
//! [`Packages`] is the query interface rules use ("which version of openssh is installed,
//! which package owns this file"): gathered once per guest over every database present, so
//! no rule asks one database by name. Versions are kept as the family writes them (dpkg's
//! `Version:` field; rpm's `%{EVR}`: `[epoch:]version-release`) and compared by the family's
//! own algorithm ([`Package::compare_version`]).

pub mod dpkg;
pub mod rpm;
pub mod version;

use crate::family::Family;
use crate::tree::GuestTree;
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::OnceLock;
use version::Scheme;

/// The database a package was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `/var/lib/dpkg/status`.
    Dpkg,
    /// rpm's `rpmdb.sqlite`.
    RpmSqlite,
    /// rpm's Berkeley DB `Packages`.
    RpmBdb,
    /// rpm's ndb `Packages.db`.
    RpmNdb,
}

impl Source {
    /// The name reports use (`dpkg`, `rpm-sqlite`, `rpm-bdb`, `rpm-ndb`).
    pub fn name(self) -> &'static str {
        match self {
            Source::Dpkg => "dpkg",
            Source::RpmSqlite => "rpm-sqlite",
            Source::RpmBdb => "rpm-bdb",
            Source::RpmNdb => "rpm-ndb",
        }
    }

    /// How this database's versions compare.
    pub fn scheme(self) -> Scheme {
        match self {
            Source::Dpkg => Scheme::Dpkg,
            _ => Scheme::Rpm,
        }
    }

    fn of(backend: rpm::RpmBackend) -> Source {
        match backend {
            rpm::RpmBackend::Sqlite => Source::RpmSqlite,
            rpm::RpmBackend::BerkeleyDb => Source::RpmBdb,
            rpm::RpmBackend::Ndb => Source::RpmNdb,
        }
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    /// Package name (`openssh-server`, `glibc`).
    pub name: String,
    /// The version as the family writes it: dpkg's `Version:` (`1:9.2p1-2+deb12u7`), rpm's
    /// `%{EVR}` (`2.34-60.el9`, `1:3.0.7-27.el9`).
    pub version: String,
    /// Architecture (`amd64`, `x86_64`, `noarch`), when the database records one.
    pub arch: Option<String>,
    /// The database.
    pub source: Source,
    /// The guest path of the database.
    #[serde(skip)]
    pub path: String,
    /// For dpkg, the 1-based line of the stanza's `Package:` field.
    #[serde(skip)]
    pub line: Option<usize>,
}

impl Package {
    /// Compares this package's version with `other` by the family's algorithm.
    pub fn compare_version(&self, other: &str) -> Ordering {
        self.source.scheme().compare(&self.version, other)
    }

    /// The upstream part of the version: dpkg's without epoch and revision (`9.2p1`), rpm's
    /// `%{VERSION}` (`2.34`).
    pub fn upstream(&self) -> &str {
        match self.source.scheme() {
            Scheme::Dpkg => version::DpkgVersion::parse(&self.version).upstream,
            Scheme::Rpm => version::Evr::parse(&self.version).version,
        }
    }

    /// Where it was read, for a report: `/var/lib/dpkg/status line 1021: openssl 3.0.17-1`,
    /// `/var/lib/rpm/rpmdb.sqlite: glibc 2.34-60.el9`.
    pub fn evidence(&self) -> String {
        match self.line {
            Some(l) => format!("{} line {l}: {} {}", self.path, self.name, self.version),
            None => format!("{}: {} {}", self.path, self.name, self.version),
        }
    }
}

/// One package database found in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Database {
    /// Its format.
    pub source: Source,
    /// Its guest path.
    pub path: String,
    /// Installed packages read from it.
    pub packages: usize,
    /// Entries that could not be read (damaged headers, stanzas without a version).
    pub skipped: usize,
    /// Why it could not be read at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a reader of the report should know (e.g. an un-checkpointed sqlite log).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Where packages' file lists come from, read when [`Packages::owner_of`] is first asked.
#[derive(Clone, Default)]
struct FileLists {
    /// The guest, for dpkg's `info/*.list`.
    tree: Option<GuestTree>,
    /// rpm's lists (from the headers), by package index.
    rpm: Vec<(usize, Vec<String>)>,
}

/// The installed packages of one guest, over every database it has.
#[derive(Clone, Default)]
pub struct Packages {
    databases: Vec<Database>,
    packages: Vec<Package>,
    /// Name → indexes into `packages`, in database priority order.
    by_name: HashMap<String, Vec<usize>>,
    lists: FileLists,
    owners: OnceLock<HashMap<String, usize>>,
}

impl std::fmt::Debug for Packages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packages")
            .field("databases", &self.databases)
            .field("packages", &self.packages.len())
            .finish()
    }
}

impl Packages {
    /// Reads every package database of the guest: dpkg's status file and the rpm database
    /// rpm would use. `family` decides which answers first when a guest has both (its own
    /// package manager's).
    pub fn gather(tree: &GuestTree, family: Family) -> Packages {
        let dpkg = match dpkg::read_status(tree) {
            Ok(None) => None,
            Ok(Some(s)) => Some(Ok(s)),
            Err(e) => Some(Err(e.to_string())),
        };
        let rpm = match rpm::read(tree) {
            Ok(None) => None,
            Ok(Some(db)) => Some(Ok(db)),
            Err(e) => {
                let (backend, path) = rpm::locate(tree)
                    .unwrap_or((rpm::RpmBackend::Sqlite, rpm::DB_DIRS[1].to_string()));
                Some(Err((backend, path, e.to_string())))
            }
        };
        let mut p = Packages::from_databases(dpkg, rpm, family);
        p.lists.tree = Some(tree.clone());
        p
    }

    /// Builds the interface from databases already read (`Err` holds why one present could
    /// not be read; for rpm with its backend and path). Used by [`Packages::gather`] and by
    /// tests that make databases in memory.
    pub fn from_databases(
        dpkg: Option<Result<dpkg::DpkgStatus, String>>,
        rpm: Option<Result<rpm::RpmDatabase, (rpm::RpmBackend, String, String)>>,
        family: Family,
    ) -> Packages {
        let mut out = Packages::default();
        if family.uses_rpm() {
            out.add_rpm(rpm);
            out.add_dpkg(dpkg);
        } else {
            out.add_dpkg(dpkg);
            out.add_rpm(rpm);
        }
        for (i, p) in out.packages.iter().enumerate() {
            out.by_name.entry(p.name.clone()).or_default().push(i);
        }
        out
    }

    fn add_dpkg(&mut self, dpkg: Option<Result<dpkg::DpkgStatus, String>>) {
        let (packages, skipped, error) = match dpkg {
            None => return,
            Some(Ok(s)) => (s.packages, s.skipped, None),
            Some(Err(e)) => (Vec::new(), 0, Some(e)),
        };
        self.databases.push(Database {
            source: Source::Dpkg,
            path: dpkg::STATUS.into(),
            packages: packages.len(),
            skipped,
            error,
            notes: Vec::new(),
        });
        self.packages.extend(packages.into_iter().map(|d| Package {
            name: d.name,
            version: d.version,
            arch: d.arch,
            source: Source::Dpkg,
            path: dpkg::STATUS.into(),
            line: Some(d.line),
        }));
    }

    fn add_rpm(
        &mut self,
        rpm: Option<Result<rpm::RpmDatabase, (rpm::RpmBackend, String, String)>>,
    ) {
        let db = match rpm {
            None => return,
            Some(Ok(db)) => db,
            Some(Err((backend, path, e))) => {
                self.databases.push(Database {
                    source: Source::of(backend),
                    path,
                    packages: 0,
                    skipped: 0,
                    error: Some(e),
                    notes: Vec::new(),
                });
                return;
            }
        };
        let source = Source::of(db.backend);
        self.databases.push(Database {
            source,
            path: db.path.clone(),
            packages: db.packages.len(),
            skipped: db.skipped,
            error: None,
            notes: db.notes,
        });
        for r in db.packages {
            // rpm's %{EVR}: the epoch when the header has one (even 0), version-release.
            let version = match r.epoch {
                Some(e) => format!("{e}:{}-{}", r.version, r.release),
                None => format!("{}-{}", r.version, r.release),
            };
            self.lists.rpm.push((self.packages.len(), r.files));
            self.packages.push(Package {
                name: r.name,
                version,
                arch: r.arch,
                source,
                path: db.path.clone(),
                line: None,
            });
        }
    }

    /// The databases found (read or not), the one answering first first.
    pub fn databases(&self) -> &[Database] {
        &self.databases
    }

    /// Whether some database was read.
    pub fn read_any(&self) -> bool {
        self.databases.iter().any(|d| d.error.is_none())
    }

    /// Every installed package, database by database, in each database's order.
    pub fn all(&self) -> &[Package] {
        &self.packages
    }

    /// Every installed package called `name` (rpm keeps several kernels; dpkg one per
    /// architecture).
    pub fn named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Package> + 'a {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .map(|i| &self.packages[*i])
    }

    /// The installed package `name`: from the first database that has it, the newest when it
    /// holds several.
    pub fn get(&self, name: &str) -> Option<&Package> {
        self.first_of(&[name])
    }

    /// The newest package `name` in the database `source`.
    fn get_in(&self, name: &str, source: Source) -> Option<&Package> {
        self.named(name)
            .filter(|p| p.source == source)
            .fold(None, |best: Option<&Package>, p| match best {
                Some(b) if p.compare_version(&b.version) != Ordering::Greater => Some(b),
                _ => Some(p),
            })
    }

    /// The version of the installed package `name`, as the family writes it.
    pub fn version_of(&self, name: &str) -> Option<&str> {
        self.get(name).map(|p| p.version.as_str())
    }

    /// The first of `names` that is installed (names differ across families: `waagent`,
    /// `walinuxagent`, `WALinuxAgent`, `python3-azure-agent`), looked up database by
    /// database, the family's own first.
    pub fn first_of(&self, names: &[&str]) -> Option<&Package> {
        self.databases
            .iter()
            .find_map(|db| names.iter().find_map(|n| self.get_in(n, db.source)))
    }

    /// The package whose file list holds `guest_path` (tried as given, then under the other
    /// name merged `/usr` gives it: `/bin/x` and `/usr/bin/x`). dpkg's lists are read on the
    /// first call.
    pub fn owner_of(&self, guest_path: &str) -> Option<&Package> {
        let owners = self.owners.get_or_init(|| self.read_owners());
        let path = guest_path.trim_end_matches('/');
        let alias = usr_merge_alias(path);
        owners
            .get(path)
            .or_else(|| alias.as_deref().and_then(|a| owners.get(a)))
            .map(|i| &self.packages[*i])
    }

    fn read_owners(&self) -> HashMap<String, usize> {
        let mut owners = HashMap::new();
        let mut budget = dpkg::LISTS_TOTAL_LIMIT;
        let mut rpm_lists = self.lists.rpm.iter().peekable();
        for (i, p) in self.packages.iter().enumerate() {
            let files: Vec<String> = match p.source {
                Source::Dpkg => match &self.lists.tree {
                    Some(tree) if budget > 0 => {
                        let d = dpkg::DpkgPackage {
                            name: p.name.clone(),
                            version: p.version.clone(),
                            arch: p.arch.clone(),
                            line: p.line.unwrap_or(0),
                        };
                        dpkg::file_list(tree, &d, &mut budget)
                    }
                    _ => Vec::new(),
                },
                _ => match rpm_lists.peek() {
                    Some((at, files)) if *at == i => {
                        rpm_lists.next();
                        files.clone()
                    }
                    _ => Vec::new(),
                },
            };
            for f in files {
                if owners.len() >= dpkg::MAX_OWNED_PATHS {
                    return owners;
                }
                owners.entry(f).or_insert(i);
            }
        }
        owners
    }
}

/// `/usr/bin/x` ↔ `/bin/x` (and sbin, lib, lib32, lib64, libx32): the two names merged
/// `/usr` gives one file, of which a package database records one.
fn usr_merge_alias(path: &str) -> Option<String> {
    const MERGED: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];
    let top = |p: &str| {
        let rest = p.strip_prefix('/')?;
        let dir = rest.split('/').next()?;
        MERGED.contains(&dir).then_some(())
    };
    match path.strip_prefix("/usr") {
        Some(rest) if top(rest).is_some() => Some(rest.to_string()),
        _ if top(path).is_some() => Some(format!("/usr{path}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
