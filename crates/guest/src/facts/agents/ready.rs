//! Custom first-boot "report Ready" units (AGENT-001): images without a provisioning agent
//! can still deploy (with `provisionVMAgent=false`) when something at boot POSTs the health
//! report to the wire server (`http://168.63.129.16/machine?comp=health`), as the
//! "no provisioning agent" documentation shows with a small script and a oneshot unit.
//!
//! The search is bounded: systemd unit files in the unit search path, the programs that
//! administrator units (`/etc/systemd/system`) start, scripts in `/usr/local/{bin,sbin}`,
//! `/etc/init.d` and `/etc/rc.local`; at most [`MAX_FILE`] bytes per file and [`BUDGET`] bytes
//! in all.

use super::systemd::UNIT_DIRS;
use super::{bounded_dir, Evidence};
use crate::GuestTree;
use vhdprep_fs::FileKind;

/// The wire server address the report goes to.
pub const WIRESERVER: &str = "168.63.129.16";
/// The query of the health (Ready) report.
pub const HEALTH: &str = "comp=health";
/// Largest file looked into.
pub const MAX_FILE: u64 = 1024 * 1024;
/// Most bytes read in all.
pub const BUDGET: u64 = 16 * 1024 * 1024;
/// Script directories searched besides the unit directories.
const SCRIPT_DIRS: [&str; 3] = ["/usr/local/bin", "/usr/local/sbin", "/etc/init.d"];

struct Search<'a> {
    g: &'a GuestTree,
    spent: u64,
    seen: std::collections::BTreeSet<String>,
    found: Vec<Evidence>,
}

impl Search<'_> {
    /// Reads `path` (a regular file, links followed) within the budget, once; returns its
    /// canonical path and content.
    fn read(&mut self, path: &str) -> Option<(String, Vec<u8>)> {
        let canon = self.g.canonical(path.as_bytes()).ok()?;
        if !self.seen.insert(canon.clone()) {
            return None;
        }
        let m = self.g.metadata(path.as_bytes()).ok()?;
        if m.kind != FileKind::File || m.size > MAX_FILE || self.spent + m.size > BUDGET {
            return None;
        }
        self.spent += m.size;
        let bytes = self.g.read_file(path.as_bytes(), MAX_FILE).ok()?;
        Some((canon, bytes))
    }

    /// Looks into one file; records it when it reports Ready.
    fn look(&mut self, path: &str) -> Option<Vec<u8>> {
        let (canon, bytes) = self.read(path)?;
        if let Some(line) = reports_ready(&bytes) {
            let text = String::from_utf8_lossy(&bytes);
            let shown = text.lines().nth(line - 1).unwrap_or("").trim().to_string();
            self.found.push(Evidence::line(&canon, line, &shown));
        }
        Some(bytes)
    }
}

/// The 1-based line that names the health report, when `bytes` mentions both the wire server
/// and `comp=health`.
pub fn reports_ready(bytes: &[u8]) -> Option<usize> {
    let has = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle);
    has(WIRESERVER.as_bytes())?;
    let at = has(HEALTH.as_bytes())?;
    Some(1 + bytes[..at].iter().filter(|b| **b == b'\n').count())
}

/// The programs a unit file starts (`ExecStart=`, `ExecStartPre=`, `ExecStartPost=`): the
/// first word of each, absolute paths only, systemd's `-@:+!` prefixes removed.
pub fn exec_paths(unit: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in unit.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        if !matches!(k.trim(), "ExecStart" | "ExecStartPre" | "ExecStartPost") {
            continue;
        }
        let word = v.split_whitespace().next().unwrap_or("");
        let word = word.trim_start_matches(['-', '@', ':', '+', '!']);
        if word.starts_with('/') && !out.iter().any(|p| p == word) {
            out.push(word.to_string());
        }
    }
    out
}

/// Units and scripts that report Ready to the wire server themselves.
pub fn ready_reporters(guest: &GuestTree) -> Vec<Evidence> {
    let mut s = Search {
        g: guest,
        spent: 0,
        seen: Default::default(),
        found: Vec::new(),
    };
    for dir in UNIT_DIRS {
        for e in bounded_dir(guest, dir) {
            let name = e.name_lossy();
            if e.kind == FileKind::Dir || !name.ends_with(".service") {
                continue;
            }
            let path = format!("{dir}/{name}");
            let Some(bytes) = s.look(&path) else {
                continue;
            };
            if dir == "/etc/systemd/system" {
                for prog in exec_paths(&String::from_utf8_lossy(&bytes)) {
                    s.look(&prog);
                }
            }
        }
    }
    for dir in SCRIPT_DIRS {
        for e in bounded_dir(guest, dir) {
            if e.kind != FileKind::Dir {
                s.look(&format!("{dir}/{}", e.name_lossy()));
            }
        }
    }
    s.look("/etc/rc.local");
    s.found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::memfs::MemFs;
    use std::sync::Arc;

    const SCRIPT: &str = "#!/bin/sh\n# report ready\n\
        curl -s -X POST -H 'x-ms-agent-name: custom' -H 'x-ms-version: 2012-11-30' \\\n\
        -d @/tmp/health.xml 'http://168.63.129.16/machine?comp=health'\n";

    fn guest(m: MemFs) -> GuestTree {
        GuestTree::new(Arc::new(m), "mem")
    }

    fn dirs() -> MemFs {
        let mut m = MemFs::default();
        for d in [
            "/",
            "/etc",
            "/etc/systemd",
            "/etc/systemd/system",
            "/usr",
            "/usr/lib",
            "/usr/lib/systemd",
            "/usr/lib/systemd/system",
            "/usr/local",
            "/usr/local/bin",
            "/opt",
        ] {
            m = m.dir(d);
        }
        m.link("/lib", "usr/lib")
    }

    #[test]
    fn finds_a_unit_and_the_script_it_starts() {
        let m = dirs()
            .file(
                "/etc/systemd/system/azure-ready.service",
                "[Service]\nType=oneshot\nExecStart=-/opt/report-ready.sh --once\n",
            )
            .file("/opt/report-ready.sh", SCRIPT)
            .file("/usr/lib/systemd/system/ssh.service", "[Service]\n");
        let found = ready_reporters(&guest(m));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "/opt/report-ready.sh");
        assert_eq!(found[0].line, Some(4));
    }

    #[test]
    fn finds_scripts_and_ignores_half_matches() {
        let m = dirs()
            .file("/usr/local/bin/ready", SCRIPT)
            .file(
                "/usr/local/bin/ping",
                "curl http://168.63.129.16/?comp=versions\n",
            )
            .file(
                "/usr/lib/systemd/system/x.service",
                "ExecStart=/usr/bin/curl 'http://168.63.129.16/machine?comp=health'\n",
            );
        let found = ready_reporters(&guest(m));
        let paths: Vec<&str> = found.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/usr/lib/systemd/system/x.service", "/usr/local/bin/ready"]
        );
        assert!(ready_reporters(&guest(dirs())).is_empty());
    }

    #[test]
    fn exec_lines() {
        let u = "[Service]\nExecStartPre=+/bin/a x\nExecStart=@/bin/b b\nExecStart=\nExecStop=/bin/c\nExecStartPost=rel\n";
        assert_eq!(exec_paths(u), ["/bin/a", "/bin/b"]);
        assert_eq!(reports_ready(b"comp=health only"), None);
        assert_eq!(reports_ready(b"168.63.129.16\n\ncomp=health"), Some(3));
    }
}
