//! `vhdprep gallery IMG [--name N] [--version X.Y.Z] [declared values] [--format ...]`: the
//! Compute Gallery image definition the disk calls for, with its evidence, as text, JSON, az
//! CLI commands or an ARM template.

use super::check::{GenerationArg, OsStateArg, SecurityTypeArg};
use super::CliError;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use vhdprep::check::gallery::{check_definition_name, check_version_name, GalleryReport};
use vhdprep::check::Severity;
use vhdprep::check::{Context, Policy};
use vhdprep::disk::DiskImage;

#[derive(Clone, Copy, ValueEnum)]
pub enum GalleryFormat {
    /// Every field with its evidence, the findings, the az commands and the ARM template.
    Text,
    /// The whole report as JSON.
    Json,
    /// Only the az CLI commands.
    Az,
    /// Only the ARM template.
    Arm,
}

#[derive(Args)]
pub struct GalleryArgs {
    /// The OS disk image.
    pub image: PathBuf,
    /// Image definition name (1-80 letters, digits, '_', '-', '.'; GAL-009).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub name: Option<String>,
    /// Image version to create (Major.Minor.Patch; GAL-010): adds `az sig image-version create`.
    #[arg(long, value_name = "X.Y.Z", allow_hyphen_values = true)]
    pub version: Option<String>,
    /// The generation to declare (default: V2 when the disk boots it, else V1).
    #[arg(long, value_enum)]
    pub generation: Option<GenerationArg>,
    /// The osState to declare (default: derived from the disk).
    #[arg(long = "os-state", value_enum)]
    pub os_state: Option<OsStateArg>,
    /// The SecurityType to declare (default: TrustedLaunchSupported when ready, else Standard).
    #[arg(long = "security-type", value_enum)]
    pub security_type: Option<SecurityTypeArg>,
    /// Declare NVMe among the disk controllers.
    #[arg(long)]
    pub nvme: bool,
    /// Declare accelerated networking.
    #[arg(long = "accelerated-networking")]
    pub accelerated_networking: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: GalleryFormat,
    #[command(flatten)]
    pub parents: super::ParentArgs,
}

fn policy(a: &GalleryArgs) -> Policy {
    Policy {
        generation: a.generation.map(Into::into),
        os_state: a.os_state.map(Into::into),
        security_type: a.security_type.map(Into::into),
        nvme: a.nvme,
        accelerated_networking: a.accelerated_networking,
        ..Policy::default()
    }
}

pub fn run(args: GalleryArgs) -> Result<i32, CliError> {
    if let Some(n) = &args.name {
        check_definition_name(n)
            .map_err(|e| CliError::trouble(format!("--name: {e} (GAL-009)")))?;
    }
    if let Some(v) = &args.version {
        check_version_name(v)
            .map_err(|e| CliError::trouble(format!("--version: {e} (GAL-010)")))?;
    }
    let policy = policy(&args);
    let image: DiskImage = args.parents.open_reading(&args.image)?;
    let ctx = Context::gather(&image, &[], &policy).map_err(CliError::trouble)?;
    if let Some(why) = &ctx.unexamined {
        return Err(CliError::trouble(format!(
            "{}: cannot derive the image definition: {why}",
            args.image.display()
        )));
    }
    let report = GalleryReport::build(&ctx, args.name.as_deref(), args.version.as_deref());
    let text = match args.format {
        GalleryFormat::Text => report.to_text(),
        GalleryFormat::Json => report.to_json() + "\n",
        GalleryFormat::Az => report.az.join("\n\n") + "\n",
        GalleryFormat::Arm => report.arm_json() + "\n",
    };
    if matches!(args.format, GalleryFormat::Az | GalleryFormat::Arm) {
        // These formats carry no findings: say on stderr why the definition is doubtful.
        for f in report
            .findings
            .iter()
            .filter(|f| f.severity > Severity::Info)
        {
            eprintln!("vhdprep: {} {}: {}", f.id, f.severity, f.message);
        }
    }
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error of the command.
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    Ok(report.exit_status())
}
