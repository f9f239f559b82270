//! `vhdprep info IMG [--json]`.

use super::{human_bytes, print_json, CliError, EXIT_FINDINGS, EXIT_OK};
use clap::Args;
use std::path::PathBuf;
use vhdprep::disk::{ContainerReport, DiskImage};
use vhdprep::finding::{worst, Severity};

#[derive(Args)]
pub struct InfoArgs {
    /// The disk image (raw, VHD, or any format vhdprep recognises).
    image: PathBuf,
    /// Print JSON (keys: format, probes, virtual_size, file_size, footer, findings ...).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    parents: super::ParentArgs,
}

pub fn run(args: InfoArgs) -> Result<i32, CliError> {
    // A missing parent is described, not fatal: `unreadable` names it.
    let image = DiskImage::open_with(&args.image, &args.parents.options())?;
    let report = vhdprep::check::content::container_report(&image);
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(if worst(&report.findings) == Some(Severity::Error) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

fn print_text(r: &ContainerReport) {
    outln!("file:          {}", r.file);
    match r.encryption {
        Some(e) => outln!(
            "format:        {} ({}, encrypted: {})",
            r.format.name(),
            r.format.description(),
            e.name()
        ),
        None => outln!(
            "format:        {} ({})",
            r.format.name(),
            r.format.description()
        ),
    }
    let ran = r.probes.ran.join(" ");
    match (r.probes.matched, &r.probes.evidence) {
        (Some(m), Some(e)) => outln!("probes:        {ran}: '{m}' matched ({e})"),
        (Some(m), None) => outln!("probes:        {ran}: '{m}' matched"),
        (None, _) => outln!("probes:        {ran}: none matched, so the file is a raw disk"),
    }
    outln!("file size:     {}", human_bytes(r.file_size));
    if let Some(why) = &r.unreadable {
        outln!("virtual disk:  not readable: {why}");
    } else {
        let source = match r.size_source {
            Some(vhdprep::disk::vhd::SizeSource::Geometry) => {
                " (from CHS geometry, as qemu reads this creator)"
            }
            Some(vhdprep::disk::vhd::SizeSource::CurrentSize) => " (footer current size)",
            None => "",
        };
        outln!("virtual size:  {}{source}", human_bytes(r.virtual_size));
    }
    if let Some(f) = &r.footer {
        outln!("footer:        at offset {} ({:?})", f.offset, f.place);
        outln!("  cookie          {}", f.cookie);
        outln!("  features        0x{:08x}", f.features);
        outln!("  version         {}", f.version);
        outln!("  data offset     0x{:016x}", f.data_offset);
        outln!("  timestamp       {} ({})", f.timestamp, f.timestamp_utc);
        outln!(
            "  creator         '{}' {} on '{}'",
            f.creator_app,
            f.creator_version,
            f.creator_host_os
        );
        outln!("  original size   {}", f.original_size);
        outln!("  current size    {}", f.current_size);
        outln!(
            "  geometry        {}/{}/{} ({} bytes)",
            f.geometry.cylinders,
            f.geometry.heads,
            f.geometry.sectors_per_track,
            f.geometry_size
        );
        outln!("  disk type       {}", f.disk_type);
        outln!(
            "  checksum        {} ({})",
            f.checksum,
            if f.checksum_valid { "valid" } else { "INVALID" }
        );
        outln!("  unique id       {}", f.unique_id);
        outln!(
            "  saved state     {}",
            if f.saved_state { "set" } else { "clear" }
        );
    }
    if let Some(d) = &r.dynamic_header {
        outln!("dynamic header:");
        outln!(
            "  block table     {} entries at offset {}",
            d.max_table_entries,
            d.table_offset
        );
        outln!("  block size      {}", human_bytes(u64::from(d.block_size)));
        outln!(
            "  checksum        {}",
            if d.checksum_valid { "valid" } else { "INVALID" }
        );
        if !d.parent_name.is_empty() {
            outln!("  parent          {}", d.parent_name);
        }
    }
    if r.findings.is_empty() {
        outln!("findings:      none: the container is what Azure accepts");
    } else {
        outln!("findings:");
        let mut sorted = r.findings.clone();
        sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(b.id)));
        for f in &sorted {
            outln!("  {:<7} {}  {}", f.severity.as_str(), f.id, f.message);
            if let Some(e) = &f.evidence {
                outln!("          evidence: {e}");
            }
            if let Some(fix) = &f.remediation {
                outln!("          fix:      {fix}");
            }
        }
    }
}
