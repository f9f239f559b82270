#!/usr/bin/env bash
# Seeds for the rpm database targets (crates/fuzz/src/packages.rs), written by real rpm:
# the small packages of fixtures/rpm/build-test-rpms.sh (not `many`, whose header alone is
# 430 KiB) installed by fixtures/rpm/make-rpmdb.sh into each database format:
# - rpm_sqlite: rpmdb.sqlite (Debian's rpm 4.18);
# - rpm_bdb: Packages (rpm's blobs in a libdb5.3 hash file), and the same with a 512-byte
#   page size, so that every header goes to overflow pages;
# - rpm_sqlite_wal: that database with a write-ahead log SQLite left (two transactions, files
#   copied before the checkpoint), as u32 LE database length + database + log;
# - rpm_ndb: Packages.db (rpm 4.18 built with ndb, fixtures/rpm/build-rpm-ndb.sh);
# - rpm_header: each package's header blob as the sqlite database stores it.
# Usage: fuzz/make-seeds/rpm.sh (needs rpm, rpmbuild, python3-bsddb3)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
fx="$here/../fixtures/rpm"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
seeds() { mkdir -p "$here/seeds/$1"; rm -f "$here/seeds/$1"/*; echo "$here/seeds/$1"; }
"$fx/build-test-rpms.sh" "$tmp/rpms"
rm "$tmp"/rpms/many-*.rpm
for b in sqlite bdb ndb; do "$fx/make-rpmdb.sh" $b "$tmp/$b" "$tmp"/rpms/*.rpm 2>/dev/null; done
cp "$tmp/sqlite/rpmdb.sqlite" "$(seeds rpm_sqlite)/"
d=$(seeds rpm_sqlite_wal)
mkdir "$tmp/live"
cp "$tmp/sqlite/rpmdb.sqlite" "$tmp/live/"
python3 - "$tmp/live/rpmdb.sqlite" "$d/db-and-wal" <<'PY'
import sqlite3, struct, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA wal_autocheckpoint=0")
c.execute("DELETE FROM Packages WHERE hnum = (SELECT min(hnum) FROM Packages)")
b = c.execute("SELECT blob FROM Packages ORDER BY hnum LIMIT 1").fetchone()[0]
c.execute("INSERT INTO Packages(blob) VALUES (?)", (b,))
db = open(sys.argv[1], "rb").read()
wal = open(sys.argv[1] + "-wal", "rb").read()
assert wal
open(sys.argv[2], "wb").write(struct.pack("<I", len(db)) + db + wal)
PY
d=$(seeds rpm_bdb)
cp "$tmp/bdb/Packages" "$d/Packages"
/usr/bin/python3 - "$tmp/sqlite/rpmdb.sqlite" "$d/Packages-512" <<'PY'
import sqlite3, struct, sys
from bsddb3 import db
d = db.DB()
d.set_pagesize(512)
d.open(sys.argv[2], dbtype=db.DB_HASH, flags=db.DB_CREATE)
d.put(struct.pack("=I", 0), struct.pack("=I", 9))
for hnum, blob in sqlite3.connect(sys.argv[1]).execute("SELECT hnum, blob FROM Packages"):
    d.put(struct.pack("=I", hnum), bytes(blob))
d.close()
PY
cp "$tmp/ndb/Packages.db" "$(seeds rpm_ndb)/"
d=$(seeds rpm_header)
python3 - "$tmp/sqlite/rpmdb.sqlite" "$d" <<'PY'
import sqlite3, sys
for hnum, blob in sqlite3.connect(sys.argv[1]).execute("SELECT hnum, blob FROM Packages"):
    open(f"{sys.argv[2]}/header-{hnum}", "wb").write(blob)
PY
