//! `vhdprep fix --in-place IMG [--dry-run]`.

use super::{human_bytes, CliError, EXIT_OK};
use clap::Args;
use std::path::PathBuf;
use vhdprep::disk::write::{apply_fix, plan_fix, FixStep};
use vhdprep::disk::DiskImage;
use vhdprep::partition::gpt::GptRelocator;

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
    let plan = plan_fix(&image, Some(&GptRelocator))?;
    drop(image);
    let name = args.image.display();
    for n in &plan.notes {
        outln!("{name}: note: {n}");
    }
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
    match plan.commit {
        Some(c) if c + 1 < plan.steps.len() => outln!(
            "  steps vhdprep {verb} take (the file reads as the old image until step {}, the commit; the steps after it point the partition table at its moved backup):",
            c + 1
        ),
        Some(_) => outln!(
            "  steps vhdprep {verb} take (the file reads as the old image until the last one, the commit):"
        ),
        None => outln!(
            "  steps vhdprep {verb} take (the container is already right; the partition table reads as before until the last one):"
        ),
    }
    for (i, s) in plan.steps.iter().enumerate() {
        let mark = if Some(i) == plan.commit {
            " [commit]"
        } else if matches!(s, FixStep::RepointTable(_)) {
            " [partition table]"
        } else {
            ""
        };
        outln!("    {}. {s}{mark}", i + 1);
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
