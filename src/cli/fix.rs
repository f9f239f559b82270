//! `vhdprep fix --in-place IMG [--dry-run]`.

use super::{human_bytes, CliError, EXIT_OK};
use clap::Args;
use std::path::PathBuf;
use vhdprep::disk::write::{apply_fix, plan_fix};
use vhdprep::disk::DiskImage;

#[derive(Args)]
pub struct FixArgs {
    /// The image to change: a raw image or a fixed VHD.
    image: PathBuf,
    /// Change the file itself (required: `fix` has no other mode, so that it is never a
    /// surprise that it writes).
    #[arg(long)]
    in_place: bool,
    /// Say what would be done, write nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: FixArgs) -> Result<i32, CliError> {
    if !args.in_place && !args.dry_run {
        return Err(CliError::trouble(format!(
            "{}: fix changes the file itself; pass --in-place to do so, or --dry-run to see what it would do (to write a copy instead, use `vhdprep convert`)",
            args.image.display()
        )));
    }
    let image = DiskImage::open(&args.image)?;
    let plan = plan_fix(&image)?;
    drop(image);
    let name = args.image.display();
    if plan.is_noop() {
        outln!(
            "{name}: already a fixed VHD of {} with a valid footer; nothing to do",
            human_bytes(plan.new_size)
        );
        return Ok(EXIT_OK);
    }
    let verb = if args.dry_run { "would" } else { "will" };
    outln!(
        "{name}: {} {} -> fixed VHD {}",
        plan.format.name(),
        human_bytes(plan.old_size),
        human_bytes(plan.new_size)
    );
    for r in &plan.reasons {
        outln!("  - {r}");
    }
    outln!("  steps vhdprep {verb} take (the file reads as the old image until the last one):");
    for (i, s) in plan.steps.iter().enumerate() {
        outln!("    {}. {s}", i + 1);
    }
    if args.dry_run {
        outln!("  dry run: nothing was written");
        return Ok(EXIT_OK);
    }
    apply_fix(&plan)?;
    outln!(
        "  done: {name} is a fixed VHD, file length {}",
        plan.new_size + 512
    );
    Ok(EXIT_OK)
}
