//! GEN-xxx: generalization. What `waagent -deprovision+user` and `cloud-init clean` remove,
//! found still in the image, plus the identity a clone must not share (host keys, users,
//! root password, machine-id, hostname, histories).
//!
//! Severities are the catalogue's "if the image is declared Generalized" column. They apply
//! when the image is declared Generalized and when nothing is declared (then the report's
//! osState says whether the disk will be taken as Specialized: its hard signals are errors
//! that say "deprovision, or register it Specialized"). With `--os-state specialized` the
//! leftovers are expected and reported as information, except a stale `disable_agent`
//! (GEN-017), which still turns the agent off on the new VM.

use super::Collector;
use crate::catalogue::{rule, RuleInfo};
use crate::context::Context;
use crate::policy::OsState;
use std::collections::BTreeMap;
use vhdprep_finding::{Finding, Severity};
use vhdprep_fs::FileKind;
use vhdprep_guest::facts::system::generalization::ResolvConf;
use vhdprep_guest::facts::system::generalization::{Leftover, MachineId, MachineIdValue};
use vhdprep_guest::facts::system::users::PasswordField;
use vhdprep_guest::facts::system::SystemFacts;

/// Most paths listed in one finding.
const MAX_LISTED: usize = 8;
/// GEN-014: history files above this size.
pub const HISTORY_LIMIT: u64 = 1024;
/// Largest ovf-env.xml read for the user name.
const OVF_LIMIT: u64 = 256 * 1024;
/// What removes a provisioned VM's traces.
pub const DEPROVISION: &str =
    "sudo waagent -deprovision+user -force && sudo cloud-init clean --logs --seed --machine-id";

/// This area's catalogue entries.
pub const RULES: &[RuleInfo] = &[
    rule("GEN-001", Severity::Error, "waagent provisioned marker", "/var/lib/waagent/provisioned makes waagent skip provisioning: VMs from the image get no user, password or key. Hard evidence of a Specialized image.", "[WALA] pa/provision/default.py"),
    rule("GEN-002", Severity::Error, "waagent state of a previous VM", "/var/lib/waagent holds ovf-env.xml, certificates or CustomData (secrets and user names: error) or goal-state, history, extension and agent-update files (warning) of a VM; deprovisioning wipes the directory.", "[WALA] default.py del_dirs, del_lib_dir_files; goal_state.py"),
    rule("GEN-003", Severity::Warning, "Agent logs", "/var/log/waagent.log or a non-empty /var/log/azure show the image booted on Azure after its last deprovisioning.", "[WALA] del_files, del_dirs; [GENERIC]"),
    rule("GEN-004", Severity::Error, "cloud-init instance state", "/var/lib/cloud/instance(s), data/instance-id, status.json, result.json, sem/ show cloud-init ran and was not cleaned (warning); data/reported_ready makes the Azure datasource treat the first boot as a reused VM (error).", "[CI-CLEAN]; [CI-AZURE-DS]"),
    rule("GEN-005", Severity::Error, "cloud-init seed", "Anything under /var/lib/cloud/seed (ovf-env.xml of a past VM) is a stale seed that ds-identify and the Azure datasource use.", "[CI-CLEAN] --seed; [CI-AZURE-DS] ds_detect"),
    rule("GEN-006", Severity::Warning, "cloud-init logs", "/var/log/cloud-init.log and cloud-init-output.log (and rotated copies) show cloud-init ran since its last `clean --logs`.", "[CI-CLEAN]; [UBUNTU]; [RHEL]"),
    rule("GEN-007", Severity::Warning, "SSH host keys", "Host keys in /etc/ssh are shared by every clone unless cloud-init regenerates them per instance or waagent provisions with Provisioning.RegenerateSshHostKeyPair=y (warning when neither does, else information).", "[WALA] conf.py, README; [CI-SSH] ssh_deletekeys"),
    rule("GEN-008", Severity::Warning, "Leftover users and keys", "Regular users (UID 1000-59999) with a home, users granted sudo by the agents' sudoers files, and authorized_keys under /root or the homes are the last admin user of a VM (error for Marketplace: default credentials).", "[WALA] del_account, conf_sudoer; [CI-DISTRO] ci_sudoers_fn; [MKT-CERT]"),
    rule("GEN-009", Severity::Warning, "root password", "The root entry of /etc/shadow: waagent's `root:*LOCK*` first line is deprovisioning evidence (information), a usable hash is a credential left in the image (warning), an empty field means passwd -d (information).", "[WALA] osutil/default.py del_root_password; [DISABLE-PROV]"),
    rule("GEN-010", Severity::Warning, "DHCP leases", "Leases of a previous VM's network under /var/lib/dhcp, dhclient, dhcpcd, NetworkManager or /var/db.", "[WALA] del_dhcp_lease"),
    rule("GEN-011", Severity::Info, "Hostname", "A hostname other than localhost / localhost.localdomain is a weak sign of a specialized image (some cloud images ship a neutral name).", "[WALA] reset_hostname"),
    rule("GEN-012", Severity::Info, "resolv.conf", "/etc/resolv.conf as a regular file with nameserver lines holds a previous network's resolvers.", "[WALA] del_resolv, ubuntu.py"),
    rule("GEN-013", Severity::Warning, "machine-id", "/etc/machine-id (and a regular /var/lib/dbus/machine-id) with a 32-hex value is an identity every clone shares; empty or `uninitialized` is what a generalized image holds.", "[CI-CLEAN] --machine-id; [WALA] coreos.py, arch.py"),
    rule("GEN-014", Severity::Warning, "Shell histories", "History files above 1 KB in /root and the homes fail Marketplace certification and may hold secrets.", "[MKT-CERT]; [WALA] del_files").deviating("The catalogue names .bash_history; vhdprep also judges the other shell and REPL histories it finds (.zsh_history, .python_history, .mysql_history, .sh_history, .lesshst)."),
    rule("GEN-015", Severity::Warning, "Clone-unsafe network files", "Persistent net rules, and cloud-init network files of a previous instance (MAC-pinned netplan, nmconnection, networkd, ifupdown) break the NIC of a clone.", "[SUSE]; [CI-CLEAN] -c network"),
    rule("GEN-016", Severity::Info, "waagent runtime units", "The network-setup unit, cgroup drop-ins and log-collector slice waagent writes at run time show it ran after the last deprovisioning.", "[WALA] default.py"),
    rule("GEN-017", Severity::Warning, "disable_agent marker", "/var/lib/waagent/disable_agent, written when a VM was deployed with provisionVMAgent=false, keeps the agent off on every new VM.", "[WALA] conf.py DISABLE_AGENT_FILE, write_agent_disabled"),
    rule("GEN-018", Severity::Info, "Stale agent sudoers", "Lines of /etc/sudoers.d/waagent or 90-cloud-init-users for users that no longer exist: a partial cleanup.", "[WALA]; [CI-DISTRO]"),
];

/// How the image is judged: what the user declared, else what the disk shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stance {
    /// Declared Generalized.
    DeclaredGeneralized,
    /// Declared Specialized: provisioning leftovers are expected.
    DeclaredSpecialized,
    /// Nothing declared; the disk shows no hard specialized signal.
    LooksGeneralized,
    /// Nothing declared; the disk shows hard specialized signals (the report's osState).
    LooksSpecialized,
}

impl Stance {
    /// The stance for this check.
    pub fn of(ctx: &Context) -> Stance {
        match (ctx.policy.os_state, ctx.derived.os_state.value) {
            (Some(OsState::Generalized), _) => Stance::DeclaredGeneralized,
            (Some(OsState::Specialized), _) => Stance::DeclaredSpecialized,
            (None, Some(OsState::Specialized)) => Stance::LooksSpecialized,
            (None, _) => Stance::LooksGeneralized,
        }
    }

    /// The osState rules judge by: declared, else derived.
    pub fn os_state(self) -> OsState {
        match self {
            Stance::DeclaredSpecialized | Stance::LooksSpecialized => OsState::Specialized,
            _ => OsState::Generalized,
        }
    }

    /// True when VMs are expected to be provisioned from the image.
    pub fn generalized(self) -> bool {
        self.os_state() == OsState::Generalized
    }

    /// The severity of a signal whose catalogue severity for a Generalized image is `sev`.
    pub fn severity(self, sev: Severity) -> Severity {
        if self == Stance::DeclaredSpecialized {
            Severity::Info
        } else {
            sev
        }
    }

    /// What the finding means for this image, appended to its message.
    fn suffix(self) -> &'static str {
        match self {
            Stance::DeclaredGeneralized => " (the image is declared Generalized)",
            Stance::DeclaredSpecialized => " (expected in the declared Specialized image)",
            Stance::LooksGeneralized => "",
            Stance::LooksSpecialized => {
                "; the image shows it was provisioned: deprovision it, or register it Specialized"
            }
        }
    }

    /// The fix: `fix` when the image is to be generalized, plus the Specialized way out when
    /// nothing is declared; none when it is declared Specialized.
    fn remediation(self, fix: &str) -> Option<String> {
        match self {
            Stance::DeclaredSpecialized => None,
            Stance::LooksSpecialized => Some(format!(
                "{fix}; or, if VMs are to boot as copies of this machine, register the image Specialized (`vhdprep check --os-state specialized`, gallery osState Specialized) and set Provisioning.Agent=disabled"
            )),
            _ => Some(fix.to_string()),
        }
    }
}

/// One judged signal, before it becomes a finding.
struct Signal {
    id: &'static str,
    sev: Severity,
    message: String,
    evidence: String,
    path: String,
    line: Option<usize>,
    fix: String,
}

struct Judge<'a> {
    ctx: &'a Context<'a>,
    sys: &'a SystemFacts,
    stance: Stance,
}

impl Judge<'_> {
    fn push(&self, out: &mut Collector, s: Signal) {
        let mut f = Finding::new(
            s.id,
            self.stance.severity(s.sev),
            format!("{}{}", s.message, self.stance.suffix()),
        )
        .with_evidence(s.evidence)
        .at_guest(s.path, s.line);
        if let Some(r) = self.stance.remediation(&s.fix) {
            f = f.with_remediation(r);
        }
        out.push(f);
    }

    /// One finding for a group of leftovers of rule `id` (none when the group is empty): the
    /// message with the item count, every item as evidence, pointing at the first.
    fn push_group(
        &self,
        out: &mut Collector,
        (id, sev, message): (&'static str, Severity, &str),
        items: &[&Leftover],
        fix: &str,
    ) {
        let Some(first) = items.first() else { return };
        self.push(
            out,
            Signal {
                id,
                sev,
                message: format!("{message} ({})", count(items.len(), "item", "items")),
                evidence: listing(items, |l| describe(l)),
                path: first.fact.path.clone(),
                line: None,
                fix: fix.into(),
            },
        );
    }

    fn leftovers(&self, rule: &str) -> Vec<&Leftover> {
        self.sys
            .generalization
            .leftovers
            .iter()
            .filter(|l| l.rule == rule)
            .collect()
    }
}

fn kind_word(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "file",
        FileKind::Dir => "directory",
        FileKind::Symlink => "link",
        _ => "special file",
    }
}

fn describe(l: &Leftover) -> String {
    let mut s = format!("{} ({}", l.fact.path, kind_word(l.fact.kind));
    if let Some(t) = &l.fact.target {
        s.push_str(&format!(" to {t}"));
    } else if l.fact.kind == FileKind::File {
        s.push_str(&format!(", {} bytes", l.fact.size));
    }
    if let Some(d) = &l.detail {
        s.push_str(&format!(", {d}"));
    }
    s.push(')');
    s
}

/// The paths of `items`, at most [`MAX_LISTED`] of them.
fn listing<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    let mut parts: Vec<String> = items.iter().take(MAX_LISTED).map(show).collect();
    if items.len() > MAX_LISTED {
        parts.push(format!("and {} more", items.len() - MAX_LISTED));
    }
    parts.join("; ")
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Evaluates GEN-001..018 over the system facts.
pub fn evaluate(ctx: &Context, out: &mut Collector) {
    let Some(sys) = &ctx.system else { return };
    for r in RULES {
        out.evaluated(r.id);
    }
    let j = Judge {
        ctx,
        sys,
        stance: Stance::of(ctx),
    };
    waagent_lib(&j, out);
    grouped(&j, out);
    cloud_init_state(&j, out);
    host_keys(&j, out);
    users(&j, out);
    root_password(&j, out);
    identity(&j, out);
    machine_ids(&j, out);
    histories(&j, out);
}

/// What ovf-env.xml says about the VM it provisioned, without its secrets.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OvfEnv {
    /// `<UserName>`.
    pub user: Option<String>,
    /// `<HostName>`.
    pub host: Option<String>,
    /// A non-empty `<UserPassword>` is present.
    pub password: bool,
    /// `<PublicKey>` elements.
    pub keys: usize,
}

/// The text of the first `<[ns:]tag>` element.
fn element<'t>(text: &'t str, tag: &str) -> Option<&'t str> {
    let close = format!("{tag}>");
    let mut from = 0;
    while let Some(i) = text[from..].find(&close).map(|i| i + from) {
        from = i + close.len();
        let Some(lt) = text[..i].rfind('<') else {
            continue;
        };
        let prefix = &text[lt + 1..i];
        let plain = prefix.is_empty()
            || (prefix.ends_with(':')
                && prefix[..prefix.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric()));
        if !plain {
            continue;
        }
        let rest = &text[from..];
        return Some(rest[..rest.find('<').unwrap_or(rest.len())].trim());
    }
    None
}

/// Reads the user, host name and whether secrets are present from ovf-env.xml text.
pub fn ovf_env(text: &str) -> OvfEnv {
    let clean = |v: Option<&str>| {
        v.filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_graphic()))
            .map(str::to_string)
    };
    OvfEnv {
        user: clean(element(text, "UserName")),
        host: clean(element(text, "HostName")),
        password: element(text, "UserPassword").is_some_and(|p| !p.is_empty()),
        keys: text.matches("<PublicKey>").count() + text.matches(":PublicKey>").count() / 2,
    }
}

fn ovf_env_detail(j: &Judge, path: &str) -> String {
    let Some(tree) = j.ctx.tree() else {
        return String::new();
    };
    let Ok(bytes) = tree.read_file(path.as_bytes(), OVF_LIMIT) else {
        return String::new();
    };
    let o = ovf_env(&String::from_utf8_lossy(&bytes));
    let mut parts = Vec::new();
    if let Some(u) = &o.user {
        parts.push(format!("UserName {u}"));
    }
    if let Some(h) = &o.host {
        parts.push(format!("HostName {h}"));
    }
    if o.password {
        parts.push("a UserPassword".into());
    }
    if o.keys > 0 {
        parts.push(count(o.keys, "SSH public key", "SSH public keys"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": it names {}", parts.join(", "))
    }
}

/// GEN-001, GEN-002, GEN-017: `/var/lib/waagent`.
fn waagent_lib(j: &Judge, out: &mut Collector) {
    for l in j.leftovers("GEN-001") {
        j.push(out, Signal {
            id: "GEN-001",
            sev: Severity::Error,
            message: "waagent's provisioned marker is present: waagent skips provisioning on every VM made from this image, so no user, password or SSH key is set up".into(),
            evidence: describe(l),
            path: l.fact.path.clone(),
            line: None,
            fix: DEPROVISION.into(),
        });
    }
    let mut rest = Vec::new();
    for l in j.leftovers("GEN-002") {
        let secret = matches!(
            l.item,
            "waagent-ovf-env"
                | "waagent-certificates"
                | "waagent-transport-cert"
                | "waagent-custom-data"
        );
        if !secret {
            rest.push(l);
            continue;
        }
        let what = match l.item {
            "waagent-ovf-env" => format!(
                "the provisioning data of a previous VM is present{}",
                ovf_env_detail(j, &l.fact.path)
            ),
            "waagent-custom-data" => {
                "the CustomData of a previous VM is present (it often holds secrets)".into()
            }
            _ => "certificates and keys of a previous VM's goal state are present".into(),
        };
        j.push(
            out,
            Signal {
                id: "GEN-002",
                sev: Severity::Error,
                message: what,
                evidence: describe(l),
                path: l.fact.path.clone(),
                line: None,
                fix: format!("{DEPROVISION} (deprovisioning removes /var/lib/waagent)"),
            },
        );
    }
    if let Some(first) = rest.first() {
        j.push(out, Signal {
            id: "GEN-002",
            sev: Severity::Warning,
            message: format!(
                "waagent state of a previous VM is present ({}); deprovisioning wipes /var/lib/waagent",
                count(rest.len(), "item", "items")
            ),
            evidence: listing(&rest, |l| describe(l)),
            path: first.fact.path.clone(),
            line: None,
            fix: DEPROVISION.into(),
        });
    }
    for l in j.leftovers("GEN-017") {
        // A stale disable_agent turns the agent off on any new VM, Specialized or not.
        let f = Finding::new(
            "GEN-017",
            Severity::Warning,
            "waagent's disable_agent marker is present (a VM was deployed with provisionVMAgent=false): the agent stays off, so extensions never run on VMs made from this image",
        )
        .with_evidence(describe(l))
        .with_remediation(format!("rm -f {}", l.fact.path))
        .at_guest(l.fact.path.clone(), None);
        out.push(f);
    }
}

/// GEN-003, GEN-010, GEN-015, GEN-016: leftovers reported as one finding per rule.
fn grouped(j: &Judge, out: &mut Collector) {
    let groups: [(&str, Severity, &str, &str); 4] = [
        ("GEN-003", Severity::Warning, "waagent or extension logs of a previous VM are present: the image booted on Azure after its last deprovisioning", "rm -f /var/log/waagent.log*; rm -rf /var/log/azure/*"),
        ("GEN-010", Severity::Warning, "DHCP leases of a previous VM are present", "rm -f /var/lib/dhcp/*.leases /var/lib/dhclient/* /var/lib/dhcpcd/* /var/lib/NetworkManager/*.lease (waagent -deprovision removes the first three)"),
        ("GEN-015", Severity::Warning, "network files tied to a previous VM's NICs are present: a clone's NIC may not come up", "rm -f /etc/udev/rules.d/70-persistent-net.rules; sudo cloud-init clean -c network"),
        ("GEN-016", Severity::Info, "units and drop-ins waagent writes at run time are present: the agent ran after the last deprovisioning", "sudo waagent -deprovision -force (removes them)"),
    ];
    for (id, sev, message, fix) in groups {
        j.push_group(out, (id, sev, message), &j.leftovers(id), fix);
    }
}

/// GEN-004, GEN-005, GEN-006: cloud-init state, seed and logs.
fn cloud_init_state(j: &Judge, out: &mut Collector) {
    const CLEAN: &str = "sudo cloud-init clean --logs --seed --machine-id (offline: rm -rf /var/lib/cloud/* /var/log/cloud-init*.log*)";
    let state = j.leftovers("GEN-004");
    let (ready, rest): (Vec<&Leftover>, Vec<&Leftover>) = state
        .into_iter()
        .partition(|l| l.item == "cloud-init-reported-ready");
    for l in ready {
        j.push(out, Signal {
            id: "GEN-004",
            sev: Severity::Error,
            message: "cloud-init's reported_ready marker of a previous VM is present: the Azure datasource treats the first boot of a new VM as a reused one".into(),
            evidence: describe(l),
            path: l.fact.path.clone(),
            line: None,
            fix: CLEAN.into(),
        });
    }
    j.push_group(
        out,
        (
            "GEN-004",
            Severity::Warning,
            "cloud-init state of a previous instance is present: cloud-init ran and was not cleaned",
        ),
        &rest,
        CLEAN,
    );
    for (id, sev, message) in [
        ("GEN-005", Severity::Error, "a cloud-init seed is present: ds-identify and the datasource take it for this VM's provisioning data"),
        ("GEN-006", Severity::Warning, "cloud-init logs are present: cloud-init ran since its last `clean --logs`"),
    ] {
        j.push_group(out, (id, sev, message), &j.leftovers(id), CLEAN);
    }
}

/// GEN-007: SSH host keys, and who replaces them.
fn host_keys(j: &Judge, out: &mut Collector) {
    let keys = &j.sys.generalization.ssh_host_keys;
    let Some(first) = keys.first() else { return };
    let regen = j
        .ctx
        .agents
        .as_ref()
        .and_then(|a| a.host_key_regeneration());
    let evidence = listing(keys, |k| k.path.clone());
    match regen {
        Some(who) => out.push(
            Finding::new(
                "GEN-007",
                Severity::Info,
                format!(
                    "{} present; {who}",
                    count(keys.len(), "SSH host key file is", "SSH host key files are")
                ),
            )
            .with_evidence(evidence)
            .at_guest(first.path.clone(), None),
        ),
        None => j.push(out, Signal {
            id: "GEN-007",
            sev: Severity::Warning,
            message: format!(
                "{} present and nothing regenerates them: every VM made from this image shares the same host identity",
                count(keys.len(), "SSH host key file is", "SSH host key files are")
            ),
            evidence,
            path: first.path.clone(),
            line: None,
            fix: "rm -f /etc/ssh/ssh_host_*key* (cloud-init regenerates them per instance; with waagent provisioning set Provisioning.RegenerateSshHostKeyPair=y)".into(),
        }),
    }
}

/// The user an authorized_keys path belongs to.
fn key_owner(j: &Judge, path: &str) -> String {
    if path.starts_with("/root/") {
        return "root".into();
    }
    let users = &j.sys.users.login_users;
    if let Some(u) = users
        .iter()
        .find(|u| path.starts_with(&format!("{}/", u.home.trim_end_matches('/'))))
    {
        return u.name.clone();
    }
    path.strip_prefix("/home/")
        .and_then(|r| r.split('/').next())
        .unwrap_or(path)
        .to_string()
}

/// GEN-008 and GEN-018: users of a previous VM, their sudo grants and keys.
fn users(j: &Judge, out: &mut Collector) {
    let u = &j.sys.users;
    // name -> (where first seen, line, what)
    let mut left: BTreeMap<String, (String, Option<usize>, Vec<String>)> = BTreeMap::new();
    let mut note = |name: &str, path: &str, line: Option<usize>, what: String| {
        left.entry(name.to_string())
            .or_insert_with(|| (path.to_string(), line, Vec::new()))
            .2
            .push(what);
    };
    for l in u.login_users.iter().filter(|l| l.home_exists) {
        note(
            &l.name,
            "/etc/passwd",
            Some(l.line),
            format!("/etc/passwd:{}: uid {}, home {}", l.line, l.uid, l.home),
        );
    }
    for g in u.agent_sudoers.iter().filter(|g| g.user_exists) {
        note(
            &g.user,
            &g.evidence.path,
            Some(g.evidence.line),
            format!(
                "{}:{}: {}",
                g.evidence.path, g.evidence.line, g.evidence.text
            ),
        );
    }
    for k in u.authorized_keys.iter().filter(|k| k.keys != Some(0)) {
        let keys = k
            .keys
            .map_or("unreadable".to_string(), |n| count(n, "key", "keys"));
        note(
            &key_owner(j, &k.path),
            &k.path,
            None,
            format!("{} ({keys})", k.path),
        );
    }
    let sev = if j.ctx.policy.marketplace {
        Severity::Error
    } else {
        Severity::Warning
    };
    for (name, (path, line, what)) in left {
        let message = if name == "root" && what.iter().all(|w| w.contains("authorized_keys")) {
            "root has SSH authorized_keys: whoever holds those keys can log in to every VM made from this image".to_string()
        } else {
            format!("user {name} of a previous VM (or a default account) is still in the image: whoever knows its credentials can log in to every VM made from it")
        };
        let fix = if name == "root" {
            "rm -f /root/.ssh/authorized_keys*".to_string()
        } else {
            format!("sudo waagent -deprovision+user -force (removes the provisioned user), or: sudo userdel -r {name}; sudo rm -f /etc/sudoers.d/waagent /etc/sudoers.d/90-cloud-init-users")
        };
        j.push(
            out,
            Signal {
                id: "GEN-008",
                sev,
                message,
                evidence: what.join("; "),
                path,
                line,
                fix,
            },
        );
    }
    let stale: Vec<_> = u.agent_sudoers.iter().filter(|g| !g.user_exists).collect();
    if let Some(first) = stale.first() {
        let names: Vec<&str> = stale.iter().map(|g| g.user.as_str()).collect();
        out.push(
            Finding::new(
                "GEN-018",
                Severity::Info,
                format!("the agents' sudoers files grant sudo to users that no longer exist ({}): a partial cleanup", names.join(", ")),
            )
            .with_evidence(listing(&stale, |g| format!("{}:{}: {}", g.evidence.path, g.evidence.line, g.evidence.text)))
            .with_remediation(format!("remove those lines (or the file): sudo rm -f {}", first.evidence.path))
            .at_guest(first.evidence.path.clone(), Some(first.evidence.line)),
        );
    }
}

/// GEN-009: root's shadow entry.
fn root_password(j: &Judge, out: &mut Collector) {
    let u = &j.sys.users;
    let Some(root) = &u.root_password else { return };
    let at = |f: Finding| f.at_guest("/etc/shadow", Some(root.line));
    if u.waagent_root_lock {
        out.push(at(Finding::new(
            "GEN-009",
            Severity::Info,
            "/etc/shadow starts with waagent's root:*LOCK* line: the image was deprovisioned with Provisioning.DeleteRootPassword=y",
        )
        .with_evidence("/etc/shadow:1: root:*LOCK*:14600::::::")));
        return;
    }
    match &root.password {
        PasswordField::Usable { scheme } => {
            let sev = j.stance.severity(Severity::Warning);
            let mut f = Finding::new(
                "GEN-009",
                sev,
                format!("root has a usable password ({scheme} hash): every VM made from this image accepts it{}", j.stance.suffix()),
            )
            .with_evidence(format!("/etc/shadow:{}: root:<{scheme} hash>", root.line));
            if let Some(r) = j.stance.remediation(
                "sudo passwd -l root (or deprovision with Provisioning.DeleteRootPassword=y)",
            ) {
                f = f.with_remediation(r);
            }
            out.push(at(f));
        }
        PasswordField::Empty => out.push(at(Finding::new(
            "GEN-009",
            Severity::Info,
            "root's password field is empty (passwd -d root): no root password is set",
        )
        .with_evidence(format!("/etc/shadow:{}: root::", root.line)))),
        PasswordField::Locked | PasswordField::Invalid => {}
    }
}

/// GEN-011 and GEN-012: hostname and resolv.conf.
fn identity(j: &Judge, out: &mut Collector) {
    let g = &j.sys.generalization;
    let named: Vec<_> = g
        .hostnames
        .iter()
        .filter(|h| !matches!(h.value.as_str(), "" | "localhost" | "localhost.localdomain"))
        .collect();
    if let Some(first) = named.first() {
        out.push(
            Finding::new(
                "GEN-011",
                Severity::Info,
                format!("the hostname is {:?}, not localhost: waagent -deprovision resets it (many cloud images ship a neutral name; cloud-init and waagent set the VM's name at provisioning)", first.value),
            )
            .with_evidence(listing(&named, |h| format!("{}:{}: {}", h.source.path, h.source.line, h.source.text)))
            .at_guest(first.source.path.clone(), Some(first.source.line)),
        );
    }
    if let Some(ResolvConf::File { nameservers, .. }) = &g.resolv_conf {
        if let Some(first) = nameservers.first() {
            out.push(
                Finding::new(
                    "GEN-012",
                    Severity::Info,
                    format!("/etc/resolv.conf is a regular file with {}: a previous network's resolvers, until DHCP rewrites it", count(nameservers.len(), "nameserver line", "nameserver lines")),
                )
                .with_evidence(listing(nameservers, |n| format!("{}:{}: {}", n.path, n.line, n.text)))
                .with_remediation("sudo rm -f /etc/resolv.conf (waagent -deprovision does; Ubuntu keeps its systemd-resolved link)")
                .at_guest("/etc/resolv.conf", Some(first.line)),
            );
        }
    }
}

/// GEN-013: `/etc/machine-id` and a regular `/var/lib/dbus/machine-id`.
fn machine_ids(j: &Judge, out: &mut Collector) {
    let g = &j.sys.generalization;
    let mut one = |m: &MachineId, fix: &str| {
        match &m.value {
        MachineIdValue::Id { value } => j.push(out, Signal {
            id: "GEN-013",
            sev: Severity::Warning,
            message: format!("{} holds a machine identity: every VM made from this image shares it (DHCP client IDs, journald, dbus)", m.file.path),
            evidence: format!("{}: {value}", m.file.path),
            path: m.file.path.clone(),
            line: Some(1),
            fix: fix.into(),
        }),
        MachineIdValue::Invalid { value } => out.push(
            Finding::new(
                "GEN-013",
                Severity::Info,
                format!("{} holds neither an identity nor `uninitialized`", m.file.path),
            )
            .with_evidence(format!("{}: {value:?}", m.file.path))
            .with_remediation(fix.to_string())
            .at_guest(m.file.path.clone(), Some(1)),
        ),
        _ => {}
    }
    };
    if let Some(m) = &g.machine_id {
        one(m, "sudo cloud-init clean --machine-id (or: echo uninitialized | sudo tee /etc/machine-id)");
    }
    if let Some(m) = g
        .dbus_machine_id
        .as_ref()
        .filter(|m| m.file.kind == FileKind::File)
    {
        one(m, "sudo rm -f /var/lib/dbus/machine-id && sudo ln -s /etc/machine-id /var/lib/dbus/machine-id");
    }
}

/// GEN-014: history files above 1 KB.
fn histories(j: &Judge, out: &mut Collector) {
    let big: Vec<_> = j
        .sys
        .users
        .histories
        .iter()
        .filter(|h| h.size > HISTORY_LIMIT)
        .collect();
    let Some(first) = big.first() else { return };
    let paths: Vec<&str> = big.iter().map(|h| h.path.as_str()).collect();
    j.push(
        out,
        Signal {
            id: "GEN-014",
            sev: Severity::Warning,
            message: format!(
                "{} above 1 KB (Marketplace certification fails on them; they may hold secrets)",
                count(big.len(), "history file is", "history files are")
            ),
            evidence: listing(&big, |h| format!("{} ({} bytes)", h.path, h.size)),
            path: first.path.clone(),
            line: None,
            fix: format!(
                "rm -f {}; export HISTSIZE=0 before logging out",
                paths.join(" ")
            ),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const OVF: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure">
  <wa:ProvisioningSection>
    <wa:Version>1.0</wa:Version>
    <LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure">
      <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>
      <HostName>web01</HostName>
      <UserName>azureuser</UserName>
      <UserPassword>s3cr3t!</UserPassword>
      <SSH><PublicKeys><PublicKey><Path>/home/azureuser/.ssh/authorized_keys</Path><Value>ssh-ed25519 AAAA</Value></PublicKey></PublicKeys></SSH>
    </LinuxProvisioningConfigurationSet>
  </wa:ProvisioningSection>
</Environment>
"#;

    #[test]
    fn ovf_env_user_host_and_secrets() {
        let o = ovf_env(OVF);
        assert_eq!(o.user.as_deref(), Some("azureuser"));
        assert_eq!(o.host.as_deref(), Some("web01"));
        assert!(o.password);
        assert_eq!(o.keys, 1);
        let ns = ovf_env("<ns1:UserName>bob</ns1:UserName><ns1:UserPassword></ns1:UserPassword>");
        assert_eq!(ns.user.as_deref(), Some("bob"));
        assert!(!ns.password);
        assert_eq!(
            ovf_env("</UserName>x<UserName>"),
            OvfEnv {
                user: None,
                ..Default::default()
            }
        );
        assert_eq!(ovf_env("<a b=UserName>x</a>").user, None);
        assert_eq!(ovf_env("<UserName>two words</UserName>").user, None);
        assert_eq!(ovf_env("").user, None);
        let _ = ovf_env("UserName><<<UserName>");
    }

    #[test]
    fn stance_severities() {
        assert_eq!(
            Stance::DeclaredSpecialized.severity(Severity::Error),
            Severity::Info
        );
        for s in [
            Stance::DeclaredGeneralized,
            Stance::LooksGeneralized,
            Stance::LooksSpecialized,
        ] {
            assert_eq!(s.severity(Severity::Error), Severity::Error);
            assert!(s.remediation("x").unwrap().starts_with('x'));
        }
        assert!(Stance::LooksSpecialized
            .remediation("x")
            .unwrap()
            .contains("Specialized"));
        assert!(Stance::DeclaredSpecialized.remediation("x").is_none());
        assert!(!Stance::LooksSpecialized.generalized());
        assert!(Stance::LooksGeneralized.generalized());
    }

    #[test]
    fn listing_is_bounded() {
        let v: Vec<usize> = (0..20).collect();
        let s = listing(&v, |n| n.to_string());
        assert!(s.ends_with("and 12 more"), "{s}");
        assert_eq!(count(1, "a", "as"), "1 a");
    }
}
