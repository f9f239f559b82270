//! `vhdprep check OS_IMG [--data-disk IMG]... [options]`: every Azure prerequisite, offline.

use super::CliError;
use clap::{Args, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use vhdprep::check::policy::{check_rule_id, parse_severity, ConfigFile};
use vhdprep::check::render::{render, OutputFormat};
use vhdprep::check::{Generation, OsState, Policy, SecurityType};
use vhdprep::disk::DiskImage;

#[derive(Clone, Copy, ValueEnum)]
pub enum GenerationArg {
    V1,
    V2,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OsStateArg {
    Generalized,
    Specialized,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SecurityTypeArg {
    Standard,
    TrustedLaunchSupported,
}

impl From<GenerationArg> for Generation {
    fn from(g: GenerationArg) -> Self {
        match g {
            GenerationArg::V1 => Generation::V1,
            GenerationArg::V2 => Generation::V2,
        }
    }
}

impl From<OsStateArg> for OsState {
    fn from(s: OsStateArg) -> Self {
        match s {
            OsStateArg::Generalized => OsState::Generalized,
            OsStateArg::Specialized => OsState::Specialized,
        }
    }
}

impl From<SecurityTypeArg> for SecurityType {
    fn from(s: SecurityTypeArg) -> Self {
        match s {
            SecurityTypeArg::Standard => SecurityType::Standard,
            SecurityTypeArg::TrustedLaunchSupported => SecurityType::TrustedLaunchSupported,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FailOnArg {
    Error,
    Warning,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Text,
    Json,
    Sarif,
    Junit,
}

/// The flags that make the policy (shared by `check` and `upload`).
#[derive(Args)]
pub struct PolicyArgs {
    /// The generation the image will be registered as (default: judge what the disk boots).
    #[arg(long, value_enum)]
    pub generation: Option<GenerationArg>,
    /// The osState the image will be registered with (default: derived from the disk).
    #[arg(long = "os-state", value_enum)]
    pub os_state: Option<OsStateArg>,
    /// Add the Marketplace certification rules (CERT-xxx) and their stricter severities.
    #[arg(long)]
    pub marketplace: bool,
    /// The SecurityType the image definition will declare.
    #[arg(long = "security-type", value_enum)]
    pub security_type: Option<SecurityTypeArg>,
    /// The definition will list NVMe among its disk controllers.
    #[arg(long)]
    pub nvme: bool,
    /// The definition will declare accelerated networking.
    #[arg(long = "accelerated-networking")]
    pub accelerated_networking: bool,
    /// The least severity that fails the check (exit 1).
    #[arg(long = "fail-on", value_enum)]
    pub fail_on: Option<FailOnArg>,
    /// Report this rule's findings as allowed, never failing (repeatable).
    #[arg(long, value_name = "RULE-ID")]
    pub allow: Vec<String>,
    /// TOML file with the same settings (flags given here win; allow lists add up).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Args)]
pub struct CheckArgs {
    /// The OS disk image (fixed VHD; raw, dynamic/differencing VHD, VHDX, qcow2, VMDK, OVA
    /// and VDI are read too and reported).
    pub image: PathBuf,
    /// A data disk of the same image (repeatable): container and size rules.
    #[arg(long = "data-disk", value_name = "IMG")]
    pub data_disks: Vec<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Report format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: FormatArg,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub parents: super::ParentArgs,
}

/// Builds the policy: the config file first, then the flags; with the data disks the config
/// file names.
pub fn policy_of(args: &PolicyArgs) -> Result<(Policy, Vec<PathBuf>), CliError> {
    let (mut p, disks) = match &args.config {
        Some(path) => {
            let cfg = ConfigFile::load(path).map_err(CliError::trouble)?;
            (cfg.policy(), cfg.data_disks.clone())
        }
        None => (Policy::default(), Vec::new()),
    };
    if let Some(g) = args.generation {
        p.generation = Some(g.into());
    }
    if let Some(s) = args.os_state {
        p.os_state = Some(s.into());
    }
    if let Some(s) = args.security_type {
        p.security_type = Some(s.into());
    }
    p.marketplace |= args.marketplace;
    p.nvme |= args.nvme;
    p.accelerated_networking |= args.accelerated_networking;
    if let Some(f) = args.fail_on {
        p.fail_on = parse_severity(match f {
            FailOnArg::Error => "error",
            FailOnArg::Warning => "warning",
        })
        .map_err(CliError::trouble)?;
    }
    for id in &args.allow {
        check_rule_id(id).map_err(|e| CliError::trouble(format!("--allow: {e}")))?;
        p.allow.insert(id.to_ascii_uppercase());
    }
    Ok((p, disks))
}

pub fn run(args: CheckArgs) -> Result<i32, CliError> {
    let (policy, mut disk_paths) = policy_of(&args.policy)?;
    disk_paths.extend(args.data_disks.iter().cloned());
    let image = args.parents.open_reading(&args.image)?;
    let data_disks = disk_paths
        .iter()
        .map(DiskImage::open)
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(e) = data_disks.iter().find_map(DiskImage::parent_error) {
        return Err(CliError::trouble(e));
    }
    let report = vhdprep::check::check(&image, &data_disks, &policy).map_err(CliError::trouble)?;
    let format = match args.format {
        FormatArg::Text => OutputFormat::Text,
        FormatArg::Json => OutputFormat::Json,
        FormatArg::Sarif => OutputFormat::Sarif,
        FormatArg::Junit => OutputFormat::Junit,
    };
    match &args.output {
        Some(path) => {
            let text = render(&report, format, false);
            write_output(path, &text)?;
        }
        None => {
            let color = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let text = render(&report, format, color);
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error of the check.
            let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
        }
    }
    Ok(report.exit_status())
}

/// Writes the report through a temporary file in the same directory, so a reader never sees
/// half a report.
fn write_output(path: &Path, text: &str) -> Result<(), CliError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| {
        CliError::trouble(format!("{}: cannot write the report: {e}", path.display()))
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.write_all(text.as_bytes()).map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
