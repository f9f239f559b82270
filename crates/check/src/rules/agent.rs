//! AGENT-xxx: the provisioning agents. Whether a VM made from the image is provisioned and
//! reports Ready (AGENT-001/002/005/014), how waagent resolves its mode (AGENT-004/007), the
//! waagent settings Azure documents and certifies (AGENT-003/006/008/009/015), and
//! cloud-init's Azure configuration (AGENT-010..013).
//!
//! Whether the image is Generalized is what the user declared (`--os-state`), else what the
//! disk shows (the report's osState): see [`super::generalization::Stance`].

use super::generalization::Stance;
use super::Collector;
use crate::catalogue::{rule, RuleInfo};
use crate::context::Context;
use crate::policy::OsState;
use vhdprep_finding::{Finding, Severity};
use vhdprep_guest::facts::agents::{
    ready_reporters, version_below, AgentFacts, ConflictKind, Evidence, Provisioner,
};
use vhdprep_guest::facts::system::NetworkFacts;
use vhdprep_guest::Family;

/// waagent's minimum for Marketplace certification (test 39).
pub const MARKETPLACE_MIN: [u64; 3] = [2, 2, 41];
/// The first waagent that reads `Provisioning.Agent`.
pub const PROVISIONING_AGENT_MIN: [u64; 3] = [2, 2, 45];
/// cloud-init from which UDF is no longer required (KRN-002).
pub const CLOUD_INIT_NO_UDF: [u64; 2] = [21, 2];
/// cloud-init from which mounts/disk_setup need not move to cloud_init_modules.
pub const CLOUD_INIT_23: [u64; 1] = [23];
/// How to install the agents, for a guest of no known family.
const INSTALL: &str = "install cloud-init (recommended) and the Linux agent: apt-get install cloud-init waagent (Ubuntu: walinuxagent) / dnf install cloud-init WALinuxAgent / zypper install cloud-init python3-azure-agent / tdnf install cloud-init WALinuxAgent";

/// How to install the agents with the family's package manager.
fn install(ctx: &Context) -> String {
    match ctx.family() {
        Family::Unknown => INSTALL.to_string(),
        Family::Debian if ctx.os_is("ubuntu") => {
            "install cloud-init (recommended) and the Linux agent: apt-get install cloud-init walinuxagent".to_string()
        }
        f => format!(
            "install cloud-init (recommended) and the Linux agent: {}",
            f.install_command(&format!("cloud-init {}", f.waagent_package()))
        ),
    }
}

/// The Linux agent's package on this guest (Ubuntu's is `walinuxagent`).
fn waagent_package(ctx: &Context) -> &'static str {
    if ctx.os_is("ubuntu") {
        "walinuxagent"
    } else {
        ctx.family().waagent_package()
    }
}
/// How to enable cloud-init.
const ENABLE_CLOUD_INIT: &str = "sudo rm -f /etc/cloud/cloud-init.disabled; sudo systemctl enable cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service";

/// This area's catalogue entries.
pub const RULES: &[RuleInfo] = &[
    rule("AGENT-001", Severity::Error, "Provisioning agent present", "A Generalized image needs cloud-init or waagent, or a custom first-boot unit that reports Ready to 168.63.129.16 (then deploy with provisionVMAgent=false); otherwise the deployment times out.", "[IMAGING]; [PROVISIONING]; [NO-AGENT]; [DISABLE-PROV]"),
    rule("AGENT-002", Severity::Error, "Agent enabled at boot", "The provisioning agent must start at boot: waagent's unit enabled, /usr/sbin/waagent executable and /etc/waagent.conf present; cloud-init not disabled and its units enabled or its generator present. waagent installed but not starting loses extensions (warning).", "[GENERIC]; [SUSE]; [WALA] init units").deviating("Besides the provisioner, vhdprep warns when waagent is installed but would not start while cloud-init provisions: VM extensions (CERT-019) need the agent."),
    rule("AGENT-003", Severity::Warning, "waagent version", "waagent must be at least 2.2.41 for Marketplace certification (error with --marketplace); before 2.2.45 Provisioning.Agent is not read (the legacy keys decide).", "[MKT-CERT]; [MKT-TEST] TestID 39; [WALA] README, v2.2.45; [GENERIC]"),
    rule("AGENT-004", Severity::Info, "Provisioning mode", "How waagent resolves Provisioning.Agent (auto, waagent, cloud-init, disabled) with cloud-init's state, and so who provisions.", "[WALA] conf.py, pa/provision/factory.py, cloudinit.py, default.py").deviating("The catalogue states the mode as information; vhdprep warns when Provisioning.Agent has a value waagent does not know, since waagent then silently disables provisioning."),
    rule("AGENT-005", Severity::Error, "Agent conflicts", "(a) Provisioning.Agent=waagent with cloud-init enabled: waagent refuses to provision; (b) cloud-init requested but absent or disabled: waagent waits 1800 s and fails; (c) waagent provisions while cloud-init also runs (warning); (d) provisioning disabled and cloud-init off on a Generalized image: nobody creates the user.", "[WALA] pa/provision/default.py, cloudinit.py, cloudinitdetect.py"),
    rule("AGENT-006", Severity::Warning, "Documented agent combination", "cloud-init images: waagent installed for extensions with Provisioning.Agent=cloud-init or auto. waagent-only images: ResourceDisk.Format=y and, with ResourceDisk.EnableSwap=y, a swap size.", "[GENERIC]; [UBUNTU]; [RHEL]; [PROVISIONING]").deviating("The ResourceDisk settings of cloud-init images are judged by SYS-005 (not repeated here); ResourceDisk.EnableSwap=n on waagent-only images is not flagged (swap is optional)."),
    rule("AGENT-007", Severity::Info, "Legacy provisioning keys", "Provisioning.Enabled and Provisioning.UseCloudInit are ignored by waagent 2.2.45 and later, and decide the mode before it.", "[WALA] README; [AGENT-DOC]; [UBUNTU]; [SUSE]; [ORACLE]"),
    rule("AGENT-008", Severity::Warning, "waagent auto-update", "AutoUpdate.Enabled (and the newer AutoUpdate.UpdateToLatestVersion) must not be n: Marketplace test 51.", "[AGENT-DOC]; [MKT-CERT]; [MKT-TEST] TestID 51; [WALA] conf.py"),
    rule("AGENT-009", Severity::Warning, "Extensions enabled", "Extensions.Enabled=n leaves extension operations to time out after 40 minutes unless VMs are deployed with allowExtensionOperations=false.", "[DISABLE-PROV]; [WALA] config/waagent.conf"),
    rule("AGENT-010", Severity::Error, "cloud-init may use Azure", "cloud-init's effective datasource_list, ds-identify's reading of it and the kernel's ci.ds= must include Azure; /etc/cloud/ds-identify.cfg should be removed (warning).", "[GENERIC]; [UBUNTU]; [RHEL]; [SUSE]; [CI] ds-identify").deviating("A leftover /etc/cloud/ds-identify.cfg is a warning: it does not always exclude Azure, only a datasource list without Azure (cloud-init's or ds-identify's reading, or ci.ds=) is an error."),
    rule("AGENT-011", Severity::Warning, "cloud-init networking", "network: {config: disabled} (e.g. subiquity's leftover) stops cloud-init from writing the NIC configuration; only fine when the image configures DHCP itself.", "[UBUNTU]"),
    rule("AGENT-012", Severity::Info, "cloud-init version", "cloud-init 21.2 and later provision without UDF when SSH keys are used; 23.x and later need no mounts/disk_setup move.", "[GENERIC]; [RHEL]"),
    rule("AGENT-013", Severity::Info, "cloud-init Azure extras", "Recommended: Hyper-V KVP telemetry (10-azure-kvp.cfg) and the output log (05_logging.cfg).", "[UBUNTU]; [RHEL]"),
    rule("AGENT-014", Severity::Warning, "Specialized image provisioning", "An image declared Specialized should not be provisioned: Provisioning.Agent=disabled and cloud-init off.", "[GENERIC]; [RHEL]"),
    rule("AGENT-015", Severity::Info, "SSH host key type", "The host key waagent waits for (cloud-init mode) or reports: Provisioning.SshHostKeyPairType, default rsa; auto means every type.", "[WALA] conf.py, cloudinit.py"),
];

/// `path:line: detail`.
fn shown(e: &Evidence) -> String {
    match e.line {
        Some(l) => format!("{}:{l}: {}", e.path, e.detail),
        None => format!("{}: {}", e.path, e.detail),
    }
}

fn at(f: Finding, e: Option<&Evidence>) -> Finding {
    match e {
        Some(e) => f.at_guest(e.path.clone(), e.line),
        None => f,
    }
}

fn conf_path(a: &AgentFacts) -> String {
    a.waagent
        .config
        .as_ref()
        .map_or("/etc/waagent.conf".into(), |c| c.path.clone())
}

fn sed(a: &AgentFacts, key: &str, value: &str) -> String {
    let k = key.replace('.', "\\.");
    format!(
        "sudo sed -i -E 's/^#? *{k} *=.*/{key}={value}/' {0}; grep -q '^{k}=' {0} || echo '{key}={value}' | sudo tee -a {0}",
        conf_path(a)
    )
}

/// Everything one evaluation needs.
struct Judge<'a> {
    ctx: &'a Context<'a>,
    a: &'a AgentFacts,
    stance: Stance,
    /// Custom Ready reporters, looked for only when no agent provisions.
    reporters: Vec<Evidence>,
}

/// Evaluates AGENT-001..015 over the agent facts.
pub fn evaluate(ctx: &Context, out: &mut Collector) {
    let Some(a) = &ctx.agents else { return };
    let nobody = a.provisioning.provisioner == Provisioner::None;
    let reporters = match (nobody, ctx.tree()) {
        (true, Some(t)) => ready_reporters(t),
        _ => Vec::new(),
    };
    let j = Judge {
        ctx,
        a,
        stance: Stance::of(ctx),
        reporters,
    };
    agent_001(&j, out);
    agent_002(&j, out);
    agent_003(&j, out);
    agent_004(&j, out);
    agent_005(&j, out);
    agent_006(&j, out);
    legacy_and_switches(&j, out);
    datasource(&j, out);
    networking(&j, out);
    cloud_init_info(&j, out);
    agent_014(&j, out);
    agent_015(&j, out);
}

/// AGENT-001: an agent (or a custom Ready reporter) in a Generalized image.
fn agent_001(j: &Judge, out: &mut Collector) {
    out.evaluated("AGENT-001");
    let (w, c) = (&j.a.waagent, &j.a.cloud_init);
    if w.installed || c.installed {
        return;
    }
    if let Some(r) = j.reporters.first() {
        out.push(
            Finding::new(
                "AGENT-001",
                Severity::Info,
                "no provisioning agent is installed, but a custom unit reports Ready to the wire server: deploy with provisionVMAgent=false (az vm create --enable-agent false); nothing creates users or installs SSH keys",
            )
            .with_evidence(shown(r))
            .at_guest(r.path.clone(), r.line),
        );
        return;
    }
    if !j.stance.generalized() {
        return;
    }
    out.push(
        Finding::new(
            "AGENT-001",
            Severity::Error,
            "neither cloud-init nor waagent is installed, and nothing reports Ready to 168.63.129.16: VMs from this Generalized image are never provisioned and their deployment times out",
        )
        .with_evidence("no /usr/bin/cloud-init, no waagent binary, python package or package-database entry; no unit or script under /etc/systemd/system, /usr/lib/systemd/system, /usr/local/bin, /usr/local/sbin, /etc/init.d, /etc/rc.local posting comp=health")
        .with_remediation(install(j.ctx)),
    );
}

/// Why waagent's unit would not start, if it would not.
fn waagent_start_problem(j: &Judge) -> Option<(String, Option<Evidence>)> {
    let w = &j.a.waagent;
    if !w.installed {
        return None;
    }
    let unit = &w.service.systemd;
    if !w.enabled {
        let why = match &unit.masked_by {
            Some(m) => format!("{} is masked ({m})", unit.name),
            None if unit.found() => format!(
                "{} is not enabled (no [Install] link under /etc/systemd/system)",
                unit.name
            ),
            None => {
                "no waagent service (systemd unit, SysV script or rc.conf switch) is enabled".into()
            }
        };
        return Some((why, unit.path.as_deref().map(Evidence::path)));
    }
    if w.config.is_none() {
        return Some((
            "/etc/waagent.conf is missing, and the unit has ConditionPathExists=/etc/waagent.conf"
                .into(),
            None,
        ));
    }
    let tree = j.ctx.tree()?;
    let not_exec: Vec<&String> = w
        .binaries
        .iter()
        .filter(|b| {
            tree.metadata(b.as_bytes())
                .is_ok_and(|m| m.mode & 0o111 == 0)
        })
        .collect();
    if !not_exec.is_empty() && not_exec.len() == w.binaries.len() {
        let b = not_exec[0];
        return Some((
            format!("{b} is not executable, and the unit has ConditionFileIsExecutable"),
            Some(Evidence::path(b)),
        ));
    }
    None
}

/// AGENT-002: the provisioner starts at boot; waagent starts for extensions.
fn agent_002(j: &Judge, out: &mut Collector) {
    let (w, c, p) = (&j.a.waagent, &j.a.cloud_init, &j.a.provisioning);
    if !w.installed && !c.installed {
        out.skip(
            "AGENT-002",
            "no provisioning agent is installed (see AGENT-001)",
        );
        return;
    }
    out.evaluated("AGENT-002");
    let problem = waagent_start_problem(j);
    let waagent_fix = format!(
        "sudo systemctl enable {} (and make sure /usr/sbin/waagent is executable and /etc/waagent.conf exists)",
        w.service.systemd.name
    );
    match p.provisioner {
        Provisioner::None => {
            if let Some(r) = j.reporters.first() {
                out.push(
                    Finding::new("AGENT-002", Severity::Info, "no installed agent starts at boot; a custom unit reports Ready instead: deploy with provisionVMAgent=false")
                        .with_evidence(shown(r))
                        .at_guest(r.path.clone(), r.line),
                );
                return;
            }
            let sev = if j.stance.generalized() {
                Severity::Error
            } else {
                Severity::Warning
            };
            let mut ev = vec![p.reason.clone()];
            ev.extend(problem.iter().map(|(w, _)| w.clone()));
            ev.extend(c.disabled_marker.iter().map(|m| format!("{m} exists")));
            let fix = if c.installed {
                format!("{ENABLE_CLOUD_INIT}; {waagent_fix}")
            } else {
                waagent_fix
            };
            out.push(at(
                Finding::new(
                    "AGENT-002",
                    sev,
                    "no provisioning agent starts at boot: VMs from this image are not provisioned and never report Ready",
                )
                .with_evidence(ev.join("; "))
                .with_remediation(fix),
                problem.as_ref().and_then(|(_, e)| e.as_ref()),
            ));
        }
        Provisioner::Waagent | Provisioner::Disabled => {
            // waagent runs per the facts; only a non-executable binary stops it.
            if let Some((why, e)) = problem {
                let sev = if j.stance.generalized() && !c.runs_at_boot {
                    Severity::Error
                } else {
                    Severity::Warning
                };
                out.push(at(
                    Finding::new("AGENT-002", sev, format!("waagent is expected to provision or report Ready but does not start: {why}"))
                        .with_evidence(why.clone())
                        .with_remediation(waagent_fix),
                    e.as_ref(),
                ));
            }
        }
        Provisioner::CloudInit => {
            if let Some((why, e)) = problem {
                out.push(at(
                    Finding::new("AGENT-002", Severity::Warning, format!("waagent is installed but does not start, so VM extensions never run: {why}"))
                        .with_evidence(why.clone())
                        .with_remediation(waagent_fix),
                    e.as_ref(),
                ));
            }
        }
    }
}

/// AGENT-003: waagent's version.
fn agent_003(j: &Judge, out: &mut Collector) {
    let w = &j.a.waagent;
    if !w.installed {
        out.skip("AGENT-003", "waagent is not installed");
        return;
    }
    let Some(v) = &w.version else {
        out.skip("AGENT-003", "waagent's version could not be read");
        return;
    };
    out.evaluated("AGENT-003");
    let below = |min: &[u64]| version_below(&v.version, min) == Some(true);
    let (sev, message) = if below(&MARKETPLACE_MIN) {
        (
            if j.ctx.policy.marketplace { Severity::Error } else { Severity::Warning },
            format!("waagent {} is older than 2.2.41, the minimum for Marketplace certification (and it does not read Provisioning.Agent)", v.version),
        )
    } else if below(&PROVISIONING_AGENT_MIN) {
        (
            Severity::Warning,
            format!("waagent {} is older than 2.2.45: it ignores Provisioning.Agent; Provisioning.Enabled and Provisioning.UseCloudInit decide", v.version),
        )
    } else {
        return;
    };
    out.push(
        Finding::new("AGENT-003", sev, message)
            .with_evidence(shown(&v.evidence))
            .with_remediation(match j.ctx.family() {
                Family::Unknown => "update the agent from the distribution (apt-get install --only-upgrade waagent / dnf update WALinuxAgent / zypper update python3-azure-agent) before capturing the image".to_string(),
                f => format!("update the agent from the distribution ({}) before capturing the image", f.upgrade_command(waagent_package(j.ctx))),
            })
            .at_guest(v.evidence.path.clone(), v.evidence.line),
    );
}

/// AGENT-004: the provisioning mode, as information (a warning for an unknown value).
fn agent_004(j: &Judge, out: &mut Collector) {
    let (w, c, p) = (&j.a.waagent, &j.a.cloud_init, &j.a.provisioning);
    if !w.installed && !c.installed {
        out.skip("AGENT-004", "no provisioning agent is installed");
        return;
    }
    out.evaluated("AGENT-004");
    let setting = &w.settings.provisioning_agent;
    let who = match p.provisioner {
        Provisioner::CloudInit => "cloud-init provisions",
        Provisioner::Waagent => "waagent provisions",
        Provisioner::Disabled => "waagent reports Ready without provisioning",
        Provisioner::None => "no agent provisions",
    };
    let known = ["auto", "waagent", "cloud-init", "disabled"];
    let unknown = p
        .waagent_mode
        .as_deref()
        .filter(|m| !p.legacy_keys_used && !known.contains(m));
    let f = match unknown {
        Some(m) => Finding::new(
            "AGENT-004",
            Severity::Warning,
            format!("Provisioning.Agent={m:?} is not a value waagent knows (auto, waagent, cloud-init, disabled): waagent treats it as disabled"),
        )
        .with_remediation(sed(j.a, "Provisioning.Agent", "cloud-init")),
        None => Finding::new("AGENT-004", Severity::Info, format!("{who}: {}", p.reason)),
    };
    let ev = setting.evidence.as_ref();
    let detail = match (ev, &p.waagent_mode) {
        (Some(e), _) => shown(e),
        (None, Some(m)) => format!("Provisioning.Agent not set: waagent's default {m}"),
        (None, None) => p.reason.clone(),
    };
    out.push(at(f.with_evidence(detail), ev));
}

/// AGENT-005: the conflicts the facts found (SYS-005 ones are the system rules').
fn agent_005(j: &Judge, out: &mut Collector) {
    let (w, c) = (&j.a.waagent, &j.a.cloud_init);
    if !w.installed && !c.installed {
        out.skip("AGENT-005", "no provisioning agent is installed");
        return;
    }
    out.evaluated("AGENT-005");
    for conflict in
        j.a.provisioning
            .conflicts
            .iter()
            .filter(|c| c.rule == "AGENT-005")
    {
        let (sev, fix) = match conflict.kind {
            ConflictKind::WaagentWithCloudInitEnabled => (
                Severity::Error,
                format!("let cloud-init provision: {}; or disable cloud-init: sudo touch /etc/cloud/cloud-init.disabled", sed(j.a, "Provisioning.Agent", "cloud-init")),
            ),
            ConflictKind::CloudInitRequestedButNotRunning => (
                Severity::Error,
                format!("{ENABLE_CLOUD_INIT}; or let waagent provision: {}", sed(j.a, "Provisioning.Agent", "waagent")),
            ),
            ConflictKind::BothMayProvision => (
                Severity::Warning,
                format!("{} (and enable cloud-init-local.service), or disable cloud-init: sudo touch /etc/cloud/cloud-init.disabled", sed(j.a, "Provisioning.Agent", "cloud-init")),
            ),
            ConflictKind::NobodyProvisions if j.stance.generalized() => (
                Severity::Error,
                format!("{ENABLE_CLOUD_INIT}; or let waagent provision: {}", sed(j.a, "Provisioning.Agent", "auto")),
            ),
            _ => continue,
        };
        let evidence: Vec<String> = conflict.evidence.iter().map(shown).collect();
        let mut message = conflict.message.clone();
        if conflict.kind == ConflictKind::NobodyProvisions {
            message = format!(
                "waagent provisioning is disabled and cloud-init does not run: nobody creates the user of a VM made from this {} image",
                if j.ctx.policy.os_state == Some(OsState::Generalized) { "declared Generalized" } else { "Generalized" }
            );
        }
        out.push(at(
            Finding::new("AGENT-005", sev, message)
                .with_evidence(if evidence.is_empty() {
                    "waagent.conf defaults".into()
                } else {
                    evidence.join("; ")
                })
                .with_remediation(fix),
            conflict.evidence.first(),
        ));
    }
}

/// AGENT-006: the documented combinations.
fn agent_006(j: &Judge, out: &mut Collector) {
    let (w, c, p) = (&j.a.waagent, &j.a.cloud_init, &j.a.provisioning);
    if !w.installed && !c.installed {
        out.skip("AGENT-006", "no provisioning agent is installed");
        return;
    }
    out.evaluated("AGENT-006");
    let s = &w.settings;
    match p.provisioner {
        Provisioner::CloudInit if !w.installed => out.push(
            Finding::new(
                "AGENT-006",
                Severity::Warning,
                "cloud-init provisions but waagent is not installed: VM extensions (and Marketplace's extension test) cannot run",
            )
            .with_evidence("no waagent binary, python package or package-database entry")
            .with_remediation(match j.ctx.family() {
                Family::Unknown => "install the Linux agent for extensions (apt-get install waagent / dnf install WALinuxAgent / zypper install python3-azure-agent) with Provisioning.Agent=cloud-init".to_string(),
                f => format!("install the Linux agent for extensions ({}) with Provisioning.Agent=cloud-init", f.install_command(waagent_package(j.ctx))),
            }),
        ),
        Provisioner::Disabled if c.runs_at_boot => out.push(at(
            Finding::new(
                "AGENT-006",
                Severity::Warning,
                "cloud-init provisions but waagent runs with provisioning disabled: it reports Ready without waiting for cloud-init (documented: Provisioning.Agent=cloud-init or auto)",
            )
            .with_evidence(s.provisioning_agent.evidence.as_ref().map_or("Provisioning.Agent".into(), shown))
            .with_remediation(sed(j.a, "Provisioning.Agent", "cloud-init")),
            s.provisioning_agent.evidence.as_ref(),
        )),
        Provisioner::Waagent if !c.runs_at_boot => {
            let fmt = &s.resource_disk_format;
            if !fmt.value {
                out.push(at(
                    Finding::new(
                        "AGENT-006",
                        Severity::Warning,
                        "waagent provisions alone but ResourceDisk.Format=n: nothing formats and mounts the resource (temporary) disk",
                    )
                    .with_evidence(fmt.evidence.as_ref().map_or("ResourceDisk.Format not set (default n)".into(), shown))
                    .with_remediation(sed(j.a, "ResourceDisk.Format", "y")),
                    fmt.evidence.as_ref(),
                ));
            }
            let swap = &s.resource_disk_swap_size_mb;
            if s.resource_disk_enable_swap.value && swap.value <= 0 {
                out.push(at(
                    Finding::new(
                        "AGENT-006",
                        Severity::Warning,
                        "ResourceDisk.EnableSwap=y without a ResourceDisk.SwapSizeMB: waagent creates no swap",
                    )
                    .with_evidence(swap.evidence.as_ref().map_or("ResourceDisk.SwapSizeMB not set (default 0)".into(), shown))
                    .with_remediation(sed(j.a, "ResourceDisk.SwapSizeMB", "2048")),
                    swap.evidence.as_ref().or(s.resource_disk_enable_swap.evidence.as_ref()),
                ));
            }
        }
        _ => {}
    }
}

/// AGENT-007 (legacy keys), AGENT-008 (auto-update), AGENT-009 (extensions).
fn legacy_and_switches(j: &Judge, out: &mut Collector) {
    let w = &j.a.waagent;
    if !w.installed {
        for id in ["AGENT-007", "AGENT-008", "AGENT-009"] {
            out.skip(id, "waagent is not installed");
        }
        return;
    }
    for id in ["AGENT-007", "AGENT-008", "AGENT-009"] {
        out.evaluated(id);
    }
    let s = &w.settings;
    let legacy = j.a.provisioning.legacy_keys_used;
    for k in [&s.legacy_provisioning_enabled, &s.legacy_use_cloud_init]
        .into_iter()
        .flatten()
    {
        let meaning = if legacy {
            "this waagent (before 2.2.45) honours it"
        } else {
            "waagent 2.2.45 and later ignore it; Provisioning.Agent decides"
        };
        out.push(at(
            Finding::new(
                "AGENT-007",
                Severity::Info,
                format!("legacy key {}={}: {meaning}", k.key, k.value),
            )
            .with_evidence(k.evidence.as_ref().map_or(k.key.clone(), shown)),
            k.evidence.as_ref(),
        ));
    }
    let (au, latest) = (&s.auto_update_enabled, &s.auto_update_to_latest_version);
    let effective = if latest.from_default { au } else { latest };
    if !effective.value {
        out.push(at(
            Finding::new(
                "AGENT-008",
                Severity::Warning,
                format!("waagent auto-update is off ({}=n): the agent stays at its packaged version (Marketplace test 51 requires it on)", effective.key),
            )
            .with_evidence(effective.evidence.as_ref().map_or(effective.key.clone(), shown))
            .with_remediation(sed(j.a, &effective.key, "y")),
            effective.evidence.as_ref(),
        ));
    }
    let ext = &s.extensions_enabled;
    if !ext.value {
        out.push(at(
            Finding::new(
                "AGENT-009",
                Severity::Warning,
                "Extensions.Enabled=n: extension operations on VMs from this image time out after 40 minutes unless they are deployed with allowExtensionOperations=false",
            )
            .with_evidence(ext.evidence.as_ref().map_or(ext.key.clone(), shown))
            .with_remediation(sed(j.a, "Extensions.Enabled", "y")),
            ext.evidence.as_ref(),
        ));
    }
}

/// cloud-init matters: it runs at boot, or waagent waits for it.
fn cloud_init_matters(j: &Judge) -> Result<(), &'static str> {
    let c = &j.a.cloud_init;
    if !c.installed {
        return Err("cloud-init is not installed");
    }
    let requested = j.a.provisioning.waagent_mode.as_deref() == Some("cloud-init");
    if c.runs_at_boot || requested {
        Ok(())
    } else {
        Err("cloud-init does not run at boot")
    }
}

/// AGENT-010: cloud-init may use the Azure datasource.
fn datasource(j: &Judge, out: &mut Collector) {
    if let Err(why) = cloud_init_matters(j) {
        out.skip("AGENT-010", why);
        return;
    }
    out.evaluated("AGENT-010");
    let c = &j.a.cloud_init;
    let cfg = &c.config;
    let has_azure = |l: &[String]| l.iter().any(|d| d == "Azure");
    if let Some(l) = cfg
        .datasource_list
        .as_ref()
        .filter(|l| !has_azure(&l.value))
    {
        out.push(
            Finding::new(
                "AGENT-010",
                Severity::Error,
                format!("cloud-init's effective datasource_list {:?} does not include Azure: cloud-init never reads the VM's provisioning data", l.value),
            )
            .with_evidence(shown(&l.evidence))
            .with_remediation(format!("remove the datasource_list line from {} (or make it `datasource_list: [ Azure ]`); keep /etc/cloud/cloud.cfg.d/91-azure_datasource.cfg with `datasource_list: [ Azure ]`", l.evidence.path))
            .at_guest(l.evidence.path.clone(), l.evidence.line),
        );
    } else if let Some(d) = cfg.ds_identify_datasource_list.as_ref() {
        if d.list.as_deref().is_some_and(|l| !has_azure(l)) {
            out.push(
                Finding::new(
                    "AGENT-010",
                    Severity::Error,
                    format!("ds-identify reads datasource_list {} (the last such line) and does not look for Azure: it disables cloud-init at boot", d.raw),
                )
                .with_evidence(shown(&d.evidence))
                .with_remediation(format!("make the last datasource_list line a one-line list with Azure (`datasource_list: [ Azure ]`), or remove it from {}", d.evidence.path))
                .at_guest(d.evidence.path.clone(), d.evidence.line),
            );
        }
    }
    if let Some(ds) = c
        .cmdline_datasource
        .as_ref()
        .filter(|d| !d.split(',').any(|x| x == "Azure"))
    {
        out.push(
            Finding::new(
                "AGENT-010",
                Severity::Error,
                format!("the kernel command line forces cloud-init's datasource to {ds}: cloud-init never reads the Azure provisioning data"),
            )
            .with_evidence(format!("kernel command line: ci.ds={ds}"))
            .with_remediation(match j.ctx.family() {
                Family::RedHat => "`grubby --update-kernel=ALL --remove-args=\"ci.ds ci.datasource\"`, and remove them from GRUB_CMDLINE_LINUX in /etc/default/grub".to_string(),
                Family::Unknown => "remove ci.ds= / ci.datasource= from GRUB_CMDLINE_LINUX in /etc/default/grub and run update-grub (grub2-mkconfig)".to_string(),
                f => format!("remove ci.ds= / ci.datasource= from GRUB_CMDLINE_LINUX in /etc/default/grub and run `{}`", f.grub_mkconfig_command()),
            }),
        );
    }
    if let Some(p) = &cfg.ds_identify_cfg {
        out.push(
            Finding::new(
                "AGENT-010",
                Severity::Warning,
                "/etc/cloud/ds-identify.cfg is present (an installer leftover): its policy can stop ds-identify from enabling cloud-init on Azure",
            )
            .with_evidence(format!("{p}: exists"))
            .with_remediation(format!("sudo rm -f {p}"))
            .at_guest(p.clone(), None),
        );
    }
}

/// The image's own DHCP configuration of a NIC (not cloud-init's), if any.
fn own_dhcp(net: &NetworkFacts) -> Option<String> {
    let yes = |v: &str| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "yes" | "ipv4" | "true" | "both"
        )
    };
    if let Some(s) = net
        .interfaces
        .iter()
        .find(|s| s.method == "dhcp" && s.interface != "lo" && !s.path.contains("cloud-init"))
    {
        return Some(format!(
            "{}:{}: iface {} inet dhcp",
            s.path, s.line, s.interface
        ));
    }
    // ifcfg: `dhcp`, and SUSE's `dhcp4`/`dhcp6` too.
    if let Some(f) = net.ifcfg.iter().find(|f| {
        f.bootproto
            .as_ref()
            .is_some_and(|b| b.value.to_ascii_lowercase().starts_with("dhcp"))
    }) {
        return Some(format!("{}: BOOTPROTO=dhcp", f.path));
    }
    // A keyfile without an [ipv4] method gets NetworkManager's default, auto.
    if let Some(n) = net.nm_connections.iter().find(|n| {
        !n.cloud_init
            && n.ipv4_method.as_ref().is_none_or(|m| m.value == "auto")
            && n.conn_type
                .as_ref()
                .is_none_or(|t| matches!(t.value.as_str(), "ethernet" | "802-3-ethernet"))
    }) {
        return Some(format!("{}: ipv4 method=auto", n.path));
    }
    if let Some(n) = net.netplan.iter().find(|n| {
        !n.path.contains("cloud-init") && n.interfaces.iter().any(|i| i.dhcp4 == Some(true))
    }) {
        return Some(format!("{}: dhcp4: true", n.path));
    }
    net.networkd.iter().find_map(|n| {
        let d = n.dhcp.as_ref().filter(|d| yes(&d.value))?;
        (!n.path.contains("cloud-init")).then(|| format!("{}:{}: DHCP={}", n.path, d.line, d.value))
    })
}

/// AGENT-011: cloud-init's networking not disabled.
fn networking(j: &Judge, out: &mut Collector) {
    if let Err(why) = cloud_init_matters(j) {
        out.skip("AGENT-011", why);
        return;
    }
    out.evaluated("AGENT-011");
    let Some(e) = &j.a.cloud_init.config.network_config_disabled else {
        return;
    };
    let own = j.ctx.system.as_ref().and_then(|s| own_dhcp(&s.network));
    let f = match &own {
        Some(dhcp) => Finding::new(
            "AGENT-011",
            Severity::Info,
            format!("cloud-init's networking is disabled; the image configures DHCP itself ({dhcp})"),
        ),
        None => Finding::new(
            "AGENT-011",
            Severity::Warning,
            "cloud-init's networking is disabled (network: {config: disabled}) and the image has no DHCP configuration of its own: VMs may boot without network",
        )
        .with_remediation(format!("sudo rm -f {} (or remove its network: section)", e.path)),
    };
    out.push(f.with_evidence(shown(e)).at_guest(e.path.clone(), e.line));
}

/// AGENT-012 (version) and AGENT-013 (recommended extras), as information.
fn cloud_init_info(j: &Judge, out: &mut Collector) {
    let c = &j.a.cloud_init;
    match (&c.version, c.installed) {
        (Some(v), true) => {
            out.evaluated("AGENT-012");
            let below = |min: &[u64]| version_below(&v.version, min) == Some(true);
            let what = if below(&CLOUD_INIT_NO_UDF) {
                "older than 21.2: provisioning needs UDF support in the kernel (KRN-002)"
                    .to_string()
            } else if below(&CLOUD_INIT_23) {
                "21.2 or later (UDF no longer required with SSH keys); before 23.x, mounts and disk_setup must run in cloud_init_modules".to_string()
            } else {
                "23.x or later: UDF is not required with SSH keys, and mounts/disk_setup need no move".to_string()
            };
            out.push(
                Finding::new(
                    "AGENT-012",
                    Severity::Info,
                    format!("cloud-init {} is {what}", v.version),
                )
                .with_evidence(shown(&v.evidence))
                .at_guest(v.evidence.path.clone(), v.evidence.line),
            );
        }
        (None, true) => out.skip("AGENT-012", "cloud-init's version could not be read"),
        _ => out.skip("AGENT-012", "cloud-init is not installed"),
    }
    if let Err(why) = cloud_init_matters(j) {
        out.skip("AGENT-013", why);
        return;
    }
    out.evaluated("AGENT-013");
    let cfg = &c.config;
    let mut missing = Vec::new();
    if cfg.telemetry_hyperv.is_none() {
        missing.push("Hyper-V KVP telemetry (/etc/cloud/cloud.cfg.d/10-azure-kvp.cfg: `reporting: {logging: {type: log}, telemetry: {type: hyperv}}`)");
    }
    if !cfg
        .files
        .iter()
        .any(|f| f.keys.iter().any(|k| k == "output"))
    {
        missing.push("the output log (/etc/cloud/cloud.cfg.d/05_logging.cfg: `output: {all: '| tee -a /var/log/cloud-init-output.log'}`)");
    }
    if !missing.is_empty() {
        out.push(
            Finding::new(
                "AGENT-013",
                Severity::Info,
                format!(
                    "recommended cloud-init settings for Azure are missing: {}",
                    missing.join("; ")
                ),
            )
            .with_evidence(format!(
                "{} configuration files read under /etc/cloud",
                cfg.files.len()
            )),
        );
    }
}

/// AGENT-014: an image declared Specialized that an agent would provision.
fn agent_014(j: &Judge, out: &mut Collector) {
    if j.ctx.policy.os_state != Some(OsState::Specialized) {
        out.skip(
            "AGENT-014",
            "the image is not declared Specialized (--os-state specialized)",
        );
        return;
    }
    out.evaluated("AGENT-014");
    let (c, p) = (&j.a.cloud_init, &j.a.provisioning);
    let marker = j.ctx.system.as_ref().is_some_and(|s| {
        s.generalization
            .leftovers
            .iter()
            .any(|l| l.rule == "GEN-001")
    });
    let mut who = Vec::new();
    if c.runs_at_boot {
        who.push("cloud-init runs at boot and treats the new VM as a new instance");
    }
    if p.provisioner == Provisioner::Waagent && !marker {
        who.push("waagent provisions (no /var/lib/waagent/provisioned marker)");
    }
    if who.is_empty() {
        return;
    }
    out.push(
        Finding::new(
            "AGENT-014",
            Severity::Warning,
            format!(
                "the image is declared Specialized but would be provisioned: {}",
                who.join("; ")
            ),
        )
        .with_evidence(p.reason.clone())
        .with_remediation(format!(
            "{}; sudo touch /etc/cloud/cloud-init.disabled; do not deprovision",
            sed(j.a, "Provisioning.Agent", "disabled")
        )),
    );
}

/// AGENT-015: the host key type waagent waits for or reports.
fn agent_015(j: &Judge, out: &mut Collector) {
    let (w, p) = (&j.a.waagent, &j.a.provisioning);
    let role = match p.provisioner {
        _ if !w.installed => None,
        Provisioner::CloudInit => Some("waits for cloud-init to create"),
        Provisioner::Waagent => Some("reports the thumbprint of"),
        _ => None,
    };
    let Some(role) = role else {
        out.skip(
            "AGENT-015",
            "waagent neither provisions nor waits for cloud-init",
        );
        return;
    };
    out.evaluated("AGENT-015");
    let t = &w.settings.ssh_host_key_pair_type;
    let (kind, note) = if t.value == "auto" {
        ("rsa", ": every key type is kept, rsa is the one used")
    } else {
        (t.value.as_str(), "")
    };
    let key = format!("/etc/ssh/ssh_host_{kind}_key.pub");
    out.push(at(
        Finding::new(
            "AGENT-015",
            Severity::Info,
            format!(
                "waagent {role} {key} (Provisioning.SshHostKeyPairType={}{note})",
                t.value
            ),
        )
        .with_evidence(t.evidence.as_ref().map_or(
            "Provisioning.SshHostKeyPairType not set (default rsa)".into(),
            shown,
        )),
        t.evidence.as_ref(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use vhdprep_guest::facts::system::network::{IfaceStanza, NetworkdFile};
    use vhdprep_guest::facts::system::Value;

    #[test]
    fn own_dhcp_ignores_loopback_and_cloud_init_files() {
        let mut net = NetworkFacts::default();
        let stanza = |path: &str, iface: &str, method: &str| IfaceStanza {
            path: path.into(),
            line: 2,
            interface: iface.into(),
            family: "inet".into(),
            method: method.into(),
        };
        net.interfaces = vec![
            stanza("/etc/network/interfaces", "lo", "loopback"),
            stanza("/etc/network/interfaces.d/50-cloud-init", "eth0", "dhcp"),
        ];
        assert_eq!(own_dhcp(&net), None);
        net.networkd.push(NetworkdFile {
            path: "/etc/systemd/network/20-eth.network".into(),
            match_name: None,
            match_mac: None,
            match_type: None,
            match_other: Vec::new(),
            dhcp: Some(Value {
                value: "ipv4".into(),
                line: 4,
            }),
            addresses: 0,
        });
        assert_eq!(
            own_dhcp(&net).as_deref(),
            Some("/etc/systemd/network/20-eth.network:4: DHCP=ipv4")
        );
        net.interfaces
            .push(stanza("/etc/network/interfaces.d/eth0", "eth0", "dhcp"));
        assert!(own_dhcp(&net).unwrap().contains("iface eth0 inet dhcp"));
    }

    #[test]
    fn shown_evidence() {
        assert_eq!(shown(&Evidence::line("/a", 3, "x=y")), "/a:3: x=y");
        assert_eq!(shown(&Evidence::path("/b")), "/b: exists");
    }

    #[test]
    fn every_rule_has_an_entry() {
        let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        for n in 1..=15 {
            assert!(
                ids.contains(&format!("AGENT-{n:03}").as_str()),
                "AGENT-{n:03}"
            );
        }
    }
}
