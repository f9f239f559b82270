//! Argument parsing and dispatch. Each subcommand lives in its own module and returns an exit
//! status; errors print one line naming the file and the problem.

/// `print!` to standard output that a closed pipe (`vhdprep info IMG | head`) silences instead
/// of panicking as `print!` does: the command still finishes and returns its own status.
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::write_stdout(format_args!($($t)*)) };
}

/// `println!` with the same treatment of a closed pipe as [`out!`].
macro_rules! outln {
    () => { $crate::cli::write_stdout(format_args!("\n")) };
    ($($t:tt)*) => { $crate::cli::write_stdout(format_args!("{}\n", format_args!($($t)*))) };
}

mod check;
mod checksum;
mod convert;
mod fix;
mod gallery;
mod guest;
mod info;
mod progress;
mod rules;
mod upload;

use clap::{Parser, Subcommand};
use std::fmt;

/// Set once standard output cannot be written: later output is dropped.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes to standard output for [`out!`]/[`outln!`]. A reader that went away (broken pipe) is
/// not an error of the command; any other failure (a full disk behind `>`) is one line on
/// stderr and exit status 2.
pub(crate) fn write_stdout(args: fmt::Arguments) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("vhdprep: cannot write to standard output: {e}");
            std::process::exit(EXIT_TROUBLE);
        }
    }
}

/// Exit status: success, and no error finding.
pub const EXIT_OK: i32 = 0;
/// Exit status: the image was read and has at least one finding at the failing severity.
pub const EXIT_FINDINGS: i32 = 1;
/// Exit status: the image cannot be read, the arguments are wrong, or a write failed.
pub const EXIT_TROUBLE: i32 = 2;

/// A failure that ends the command: a message and the exit status.
#[derive(Debug)]
pub struct CliError {
    /// One line, naming the file and the problem.
    pub message: String,
    /// Exit status.
    pub code: i32,
}

impl CliError {
    /// Exit status 2 with `message`.
    pub fn trouble(message: impl fmt::Display) -> Self {
        CliError {
            message: message.to_string(),
            code: EXIT_TROUBLE,
        }
    }
}

impl From<vhdprep::disk::DiskError> for CliError {
    fn from(e: vhdprep::disk::DiskError) -> Self {
        CliError::trouble(e)
    }
}

/// `--parent PATH` (repeatable), on every command that reads a disk.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ParentArgs {
    /// The parent (backing file) of a differencing disk or qcow2/VMDK/VDI/VHDX child, when it
    /// is not next to the image; repeat for each level of the chain (the first is the image's
    /// parent, the second that parent's parent ...).
    #[arg(long = "parent", value_name = "PATH")]
    pub parents: Vec<std::path::PathBuf>,
}

impl ParentArgs {
    /// The options for [`vhdprep::disk::DiskImage::open_with`].
    pub fn options(&self) -> vhdprep::disk::OpenOptions {
        vhdprep::disk::OpenOptions {
            parents: self.parents.clone(),
        }
    }

    /// Opens `path` (parents as given or found next to it) for a command that reads the
    /// virtual disk: a missing or mismatched parent ends the command (exit 2, one line).
    pub fn open_reading(
        &self,
        path: &std::path::Path,
    ) -> Result<vhdprep::disk::DiskImage, CliError> {
        let image = vhdprep::disk::DiskImage::open_with(path, &self.options())?;
        if let Some(e) = image.parent_error() {
            return Err(CliError::trouble(e));
        }
        Ok(image)
    }
}

#[derive(Parser)]
#[command(
    name = "vhdprep",
    version,
    about = "Prepare and validate Linux disk images for Azure, offline",
    long_about = "Prepare and validate Linux disk images for Azure, offline: no root, no mounts, no VM.\n\nExit status: 0 success; 1 the image has an error-level finding; 2 the image cannot be read, the arguments are wrong, or a write failed."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Describe the container: format, sizes, every VHD footer field, and VHD-xxx findings.
    Info(info::InfoArgs),
    /// Copy any readable image into a new fixed VHD whose size is a whole MiB.
    Convert(convert::ConvertArgs),
    /// Make a raw image or fixed VHD Azure-ready in place, without copying its data.
    Fix(fix::FixArgs),
    /// Partitions, filesystems, mounts, OS and architecture of the guest, without mounting.
    Inspect(guest::InspectArgs),
    /// List a directory of the guest (`/boot/efi/EFI/BOOT` works through fstab mounts).
    Ls(guest::LsArgs),
    /// Print a file of the guest (links resolve inside the guest, never on the host).
    Cat(guest::CatArgs),
    /// Every Azure prerequisite: container, boot, kernel, agents, generalization. Exit 0 pass,
    /// 1 a finding at or above --fail-on, 2 unreadable image or wrong arguments.
    Check(check::CheckArgs),
    /// List the rules `check` evaluates, with severities and sources.
    Rules(rules::RulesArgs),
    /// The Compute Gallery image definition the disk calls for (osState, hyperVGeneration,
    /// architecture, features) with evidence, as text, JSON, az commands or an ARM template.
    /// Exit 1 when a declared value contradicts the disk, 2 on a bad name/version or image.
    Gallery(gallery::GalleryArgs),
    /// MD5, SHA-256, CRC32, BLAKE3 and the map of non-zero ranges in one pass; `--verify
    /// MANIFEST` recomputes a manifest and exits 1 naming each value that differs.
    Checksum(checksum::ChecksumArgs),
    /// Send the checked fixed VHD to an Azure page blob or managed disk: only its non-zero
    /// pages, resumable, verified. Exit 1 when the blob does not match the image afterwards.
    Upload(upload::UploadArgs),
}

/// Parses the arguments, runs the command, prints any error, and returns the exit status.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_TROUBLE
            } else {
                EXIT_OK
            };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.command {
        Command::Info(a) => info::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Fix(a) => fix::run(a),
        Command::Inspect(a) => guest::run_inspect(a),
        Command::Ls(a) => guest::run_ls(a),
        Command::Cat(a) => guest::run_cat(a),
        Command::Check(a) => check::run(a),
        Command::Rules(a) => rules::run(a),
        Command::Gallery(a) => gallery::run(a),
        Command::Checksum(a) => checksum::run(a),
        Command::Upload(a) => upload::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vhdprep: {}", e.message);
            e.code
        }
    }
}

/// Writes `value` as pretty JSON to stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::trouble(format!("cannot encode JSON: {e}")))?;
    outln!("{text}");
    Ok(())
}

/// `n` bytes in a human unit, e.g. `30 GiB` or `1.5 MiB`, with the exact count.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else if v.fract() == 0.0 {
        format!("{v:.0} {} ({n} bytes)", UNITS[unit])
    } else {
        format!("{v:.2} {} ({n} bytes)", UNITS[unit])
    }
}
