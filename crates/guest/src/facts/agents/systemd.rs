//! Service enablement read offline: systemd unit files and their `[Install]` symlinks, SysV
//! init scripts with their `rc?.d` start links, and FreeBSD `rc.conf` `<name>_enable` switches.
//!
//! This mirrors what `systemctl is-enabled` would say on the booted guest, without systemd:
//! the unit file is looked up in the unit search path (first directory wins), a link to
//! `/dev/null` (or an empty file) in `/etc` or `/run` masks it, and a unit is *enabled* when a
//! symlink named after it sits in a `*.wants/` or `*.requires/` directory under
//! `/etc/systemd/system` (what `systemctl enable` creates from `[Install] WantedBy=`).
//! Generators (which add links at boot in `/run`) are not run: callers report them separately.

use super::{bounded_dir, read_text, Evidence};
use crate::GuestTree;
use serde::Serialize;
use vhdprep_fs::FileKind;

/// The unit search path, highest priority first (systemd's system manager order, without
/// the `/run` generator and transient directories that only exist at runtime).
pub const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// Where enablement symlinks live: `/etc` (admin, `systemctl enable`) and the vendor
/// directories (static wants shipped by packages).
const ADMIN_DIR: &str = "/etc/systemd/system";
const VENDOR_DIRS: [&str; 2] = ["/lib/systemd/system", "/usr/lib/systemd/system"];

/// Largest unit file read.
const UNIT_LIMIT: u64 = 256 * 1024;
/// Largest rc.conf read.
const RC_CONF_LIMIT: u64 = 1024 * 1024;

/// What `systemctl is-enabled` would print, as far as it can be told offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enablement {
    /// A symlink for the unit exists in a `*.wants/`/`*.requires/` directory under
    /// `/etc/systemd/system`.
    Enabled,
    /// Not enabled by the admin, but pulled in by a vendor `*.wants/` link (under
    /// `/usr/lib/systemd/system`), or the unit has no `[Install]` section.
    Static,
    /// The unit exists, has an `[Install]` section, and nothing links it.
    Disabled,
    /// `/etc` or `/run` hides it behind a link to `/dev/null` (or an empty file).
    Masked,
    /// No unit file of that name in the search path.
    NotFound,
}

/// One systemd unit as found in the guest.
#[derive(Debug, Clone, Serialize)]
pub struct UnitState {
    /// Unit name, e.g. `walinuxagent.service`.
    pub name: String,
    /// Guest path of the unit file that wins (after following links), if any.
    pub path: Option<String>,
    /// The verdict.
    pub enablement: Enablement,
    /// `[Install] WantedBy=` targets.
    pub wanted_by: Vec<String>,
    /// `[Install] RequiredBy=` targets.
    pub required_by: Vec<String>,
    /// Admin enablement links found: `/etc/systemd/system/<x>.wants/<name>`.
    pub enabled_links: Vec<String>,
    /// Vendor links found: `/usr/lib/systemd/system/<x>.wants/<name>`.
    pub static_links: Vec<String>,
    /// The masking link or file, when masked.
    pub masked_by: Option<String>,
}

impl UnitState {
    /// True when `systemctl is-enabled` would print `enabled`.
    pub fn is_enabled(&self) -> bool {
        self.enablement == Enablement::Enabled
    }
    /// True when the unit would be started at boot by some link (admin or vendor).
    pub fn starts_at_boot(&self) -> bool {
        matches!(self.enablement, Enablement::Enabled)
            || (self.enablement == Enablement::Static && !self.static_links.is_empty())
    }
    /// True when a unit file exists (masked or not).
    pub fn found(&self) -> bool {
        self.enablement != Enablement::NotFound
    }
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{}", dir.trim_end_matches('/'), name)
}

/// Is `path` (not followed) a mask: a symlink to `/dev/null` or an empty regular file?
fn is_mask(guest: &GuestTree, path: &str) -> bool {
    match guest.symlink_metadata(path.as_bytes()) {
        Ok(m) if m.kind == FileKind::Symlink => guest
            .read_link(path.as_bytes())
            .map(|t| t == b"/dev/null")
            .unwrap_or(false),
        Ok(m) if m.kind == FileKind::File => m.size == 0,
        _ => false,
    }
}

/// Links named `name` inside `<dir>/*.wants/` and `<dir>/*.requires/`.
fn links_in(guest: &GuestTree, dir: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in bounded_dir(guest, dir) {
        let n = e.name_lossy();
        if !(n.ends_with(".wants") || n.ends_with(".requires")) {
            continue;
        }
        let p = format!("{}/{}/{}", dir, n, name);
        if guest.symlink_metadata(p.as_bytes()).is_ok() {
            out.push(p);
        }
    }
    out
}

/// `[Install]` keys of a unit file: (WantedBy, RequiredBy, any install key at all).
fn parse_install(text: &str) -> (Vec<String>, Vec<String>, bool) {
    let (mut wanted, mut required, mut any) = (Vec::new(), Vec::new(), false);
    let mut in_install = false;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if l.starts_with('[') {
            in_install = l == "[Install]";
            continue;
        }
        if !in_install {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        let list = match k {
            "WantedBy" => &mut wanted,
            "RequiredBy" => &mut required,
            "Alias" | "Also" | "UpheldBy" | "DefaultInstance" => {
                any = true;
                continue;
            }
            _ => continue,
        };
        any = true;
        if v.is_empty() {
            list.clear(); // an empty assignment resets the list
        } else {
            list.extend(v.split_whitespace().map(str::to_string));
        }
    }
    (wanted, required, any)
}

/// Looks a unit up in the guest and decides its enablement.
pub fn unit_state(guest: &GuestTree, name: &str) -> UnitState {
    let mut st = UnitState {
        name: name.to_string(),
        path: None,
        enablement: Enablement::NotFound,
        wanted_by: Vec::new(),
        required_by: Vec::new(),
        enabled_links: Vec::new(),
        static_links: Vec::new(),
        masked_by: None,
    };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return st;
    }
    let mut text = None;
    for dir in UNIT_DIRS {
        let p = join(dir, name);
        if guest.symlink_metadata(p.as_bytes()).is_err() {
            continue;
        }
        if (dir.starts_with("/etc/") || dir.starts_with("/run/")) && is_mask(guest, &p) {
            st.masked_by = Some(p);
            st.enablement = Enablement::Masked;
            return st;
        }
        match guest.metadata(p.as_bytes()) {
            Ok(m) if m.kind == FileKind::File => {
                st.path = Some(guest.canonical(p.as_bytes()).unwrap_or(p.clone()));
                text = read_text(guest, &p, UNIT_LIMIT);
                break;
            }
            _ => continue, // dangling link or not a file: systemd skips it too
        }
    }
    if st.path.is_none() {
        return st;
    }
    let (wanted, required, any_install) = parse_install(text.as_deref().unwrap_or(""));
    st.wanted_by = wanted;
    st.required_by = required;
    st.enabled_links = links_in(guest, ADMIN_DIR, name);
    let mut seen = std::collections::BTreeSet::new();
    for d in VENDOR_DIRS {
        // /lib is usually a link to /usr/lib: count each real link once.
        for l in links_in(guest, d, name) {
            let key = guest
                .resolve(l.as_bytes(), false)
                .map(|r| r.components)
                .ok();
            if seen.insert(key) {
                st.static_links.push(l);
            }
        }
    }
    st.enablement = if !st.enabled_links.is_empty() {
        Enablement::Enabled
    } else if !st.static_links.is_empty() || !any_install {
        Enablement::Static
    } else {
        Enablement::Disabled
    };
    st
}

/// A SysV init script and its start links.
#[derive(Debug, Clone, Serialize)]
pub struct SysvState {
    /// `/etc/init.d/<name>`, when present.
    pub script: Option<String>,
    /// `/etc/rc?.d/S??<name>` links found.
    pub start_links: Vec<String>,
}

impl SysvState {
    /// True when the script exists and some runlevel starts it.
    pub fn enabled(&self) -> bool {
        self.script.is_some() && !self.start_links.is_empty()
    }
}

/// Looks up `/etc/init.d/<name>` and its `S` links in `/etc/rc[0-6S].d`.
pub fn sysv_state(guest: &GuestTree, name: &str) -> SysvState {
    let script = format!("/etc/init.d/{name}");
    let script = (!name.is_empty() && !name.contains('/') && guest.exists(script.as_bytes()))
        .then_some(script);
    let mut start_links = Vec::new();
    if script.is_some() {
        for rl in ["0", "1", "2", "3", "4", "5", "6", "S"] {
            let dir = format!("/etc/rc{rl}.d");
            for e in bounded_dir(guest, &dir) {
                let n = e.name_lossy();
                let b = n.as_bytes();
                if b.len() == name.len() + 3
                    && b[0] == b'S'
                    && b[1].is_ascii_digit()
                    && b[2].is_ascii_digit()
                    && &b[3..] == name.as_bytes()
                {
                    start_links.push(format!("{dir}/{n}"));
                }
            }
        }
    }
    SysvState {
        script,
        start_links,
    }
}

/// A FreeBSD-style `<name>_enable` switch from `/etc/rc.conf` / `/etc/rc.conf.local`
/// (the last assignment wins; `YES`, any case, enables).
#[derive(Debug, Clone, Serialize)]
pub struct RcConfSwitch {
    /// The variable, e.g. `waagent_enable`.
    pub variable: String,
    /// Its value after unquoting.
    pub value: String,
    /// True for `YES` (any case).
    pub enabled: bool,
    /// Where it was set.
    pub evidence: Evidence,
}

/// Reads `<service>_enable=` from rc.conf files, if set anywhere.
pub fn rc_conf_switch(guest: &GuestTree, service: &str) -> Option<RcConfSwitch> {
    let var = format!("{service}_enable");
    let mut found = None;
    for file in [
        "/etc/defaults/rc.conf",
        "/etc/rc.conf",
        "/etc/rc.conf.local",
    ] {
        let Some(text) = read_text(guest, file, RC_CONF_LIMIT) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            let Some((k, v)) = l.split_once('=') else {
                continue;
            };
            if k.trim() != var {
                continue;
            }
            let v = v.split('#').next().unwrap_or("").trim();
            let v = v.trim_matches(|c| c == '"' || c == '\'').to_string();
            found = Some(RcConfSwitch {
                variable: var.clone(),
                enabled: v.eq_ignore_ascii_case("YES"),
                evidence: Evidence::line(file, i + 1, l),
                value: v,
            });
        }
    }
    found
}

/// Everything known about one service under the three init systems.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    /// The systemd unit (of the candidate names that exist, the first that starts at boot,
    /// else the first that exists, else the first name).
    pub systemd: UnitState,
    /// The SysV script.
    pub sysv: SysvState,
    /// The rc.conf switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rc_conf: Option<RcConfSwitch>,
}

impl ServiceState {
    /// Looks up a service by its candidate unit names (`x.service`), SysV script names and
    /// rc.conf name; of the unit names that exist, the first that starts at boot is reported
    /// (else the first that exists).
    pub fn lookup(
        guest: &GuestTree,
        units: &[&str],
        sysv_names: &[&str],
        rc_name: &str,
    ) -> ServiceState {
        // Of the candidate units that exist, the one that starts at boot (an image can carry
        // two names, e.g. a distribution's unit and one installed from the agent's source),
        // else the first.
        let found: Vec<UnitState> = units
            .iter()
            .map(|u| unit_state(guest, u))
            .filter(UnitState::found)
            .collect();
        let systemd = match found.iter().position(UnitState::starts_at_boot) {
            Some(i) => found[i].clone(),
            None => found
                .into_iter()
                .next()
                .unwrap_or_else(|| unit_state(guest, units.first().copied().unwrap_or(""))),
        };
        let sysv = sysv_names
            .iter()
            .map(|n| sysv_state(guest, n))
            .find(|s| s.script.is_some())
            .unwrap_or(SysvState {
                script: None,
                start_links: Vec::new(),
            });
        ServiceState {
            systemd,
            sysv,
            rc_conf: if rc_name.is_empty() {
                None
            } else {
                rc_conf_switch(guest, rc_name)
            },
        }
    }

    /// True when the service starts at boot under the init system the guest uses: the
    /// systemd unit when it exists (systemd ignores SysV scripts that have a native unit),
    /// else SysV links, else rc.conf.
    pub fn enabled(&self) -> bool {
        match self.systemd.enablement {
            Enablement::Masked => false,
            Enablement::NotFound => {
                self.sysv.enabled() || self.rc_conf.as_ref().is_some_and(|r| r.enabled)
            }
            _ => self.systemd.starts_at_boot(),
        }
    }
}
