//! `vhdprep convert SRC DST [--force]`.

use super::progress::byte_bar;
use super::{human_bytes, CliError, EXIT_OK};
use clap::Args;
use std::path::{Path, PathBuf};
use vhdprep::disk::write::{convert, ConvertOptions, StaleTemp};
use vhdprep::disk::DiskImage;
use vhdprep::partition::gpt::GptRelocator;

#[derive(Args)]
pub struct ConvertArgs {
    /// Source image: raw, VHD (fixed, dynamic, differencing), VHDX, qcow2, VMDK, OVA or VDI.
    /// Only read.
    src: PathBuf,
    /// Destination fixed VHD. Written under a temporary name, then renamed.
    dst: PathBuf,
    /// Replace DST if it exists.
    #[arg(long)]
    force: bool,
    /// Footer creator application code (4 ASCII characters). Old qemu-img (before 9.2)
    /// sizes VHDs by geometry unless the creator is one it knows: use `win ` for those readers.
    #[arg(long, default_value = "vhdp", value_parser = parse_fourcc)]
    creator: [u8; 4],
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    parents: super::ParentArgs,
}

fn parse_fourcc(s: &str) -> Result<[u8; 4], String> {
    let b = s.as_bytes();
    if b.len() != 4 || !b.iter().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        return Err("must be exactly 4 printable ASCII characters".into());
    }
    Ok([b[0], b[1], b[2], b[3]])
}

pub fn run(args: ConvertArgs) -> Result<i32, CliError> {
    let src: DiskImage = args.parents.open_reading(&args.src)?;
    let bar = byte_bar(src.virtual_size(), args.quiet);
    let mut tick = |done: u64, _total: u64| bar.set_position(done);
    // Said even with -q: a file was deleted that the user did not name.
    let mut said_removed = |stale: &StaleTemp| {
        bar.suspend(|| eprintln!("vhdprep: {}", removed_line(&args.dst, stale)));
    };
    let report = convert(
        &src,
        &args.dst,
        ConvertOptions {
            force: args.force,
            creator_app: args.creator,
            progress: Some(&mut tick),
            on_stale_removed: Some(&mut said_removed),
            table: Some(&GptRelocator),
        },
    );
    // Cleared on failure too, so that the error is one line and not the tail of a bar.
    bar.finish_and_clear();
    let report = report?;
    // Always said, even with -q: a table left alone is never silent.
    for n in &report.table_notes {
        eprintln!("{}: note: {n}", args.dst.display());
    }
    if !args.quiet {
        eprintln!(
            "{}: {} {} -> fixed VHD {} ({}; {} of data written, the rest left as holes)",
            args.dst.display(),
            report.source_format.name(),
            human_bytes(report.source_size),
            human_bytes(report.virtual_size),
            if report.virtual_size == report.source_size {
                "already a whole MiB".to_string()
            } else {
                format!(
                    "padded by {} zero bytes",
                    report.virtual_size - report.source_size
                )
            },
            human_bytes(report.stats.bytes_written),
        );
        for c in &report.table_changes {
            eprintln!("  - {c}");
        }
    }
    Ok(EXIT_OK)
}

/// The line saying that `stale`, a temporary file of `dst` left by an interrupted run, was
/// removed, and how much space that gave back.
fn removed_line(dst: &Path, stale: &StaleTemp) -> String {
    let name = stale.path.file_name().unwrap_or(stale.path.as_os_str());
    format!(
        "removed {}'s temporary file {} left by an interrupted run: {} freed",
        dst.display(),
        Path::new(name).display(),
        human_bytes(stale.bytes_on_disk)
    )
}
