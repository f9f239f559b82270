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
    /// Print JSON (keys: format, virtual_size, file_size, footer, findings ...).
    #[arg(long)]
    json: bool,
}

pub fn run(args: InfoArgs) -> Result<i32, CliError> {
    let image = DiskImage::open(&args.image)?;
    let report = image.report();
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
    println!("file:          {}", r.file);
    println!("format:        {}", r.format.name());
    println!("file size:     {}", human_bytes(r.file_size));
    if let Some(why) = &r.unreadable {
        println!("virtual disk:  not readable: {why}");
    } else {
        let source = match r.size_source {
            Some(vhdprep::disk::vhd::SizeSource::Geometry) => {
                " (from CHS geometry, as qemu reads this creator)"
            }
            Some(vhdprep::disk::vhd::SizeSource::CurrentSize) => " (footer current size)",
            None => "",
        };
        println!("virtual size:  {}{source}", human_bytes(r.virtual_size));
    }
    if let Some(f) = &r.footer {
        println!("footer:        at offset {} ({:?})", f.offset, f.place);
        println!("  cookie          {}", f.cookie);
        println!("  features        0x{:08x}", f.features);
        println!("  version         {}", f.version);
        println!("  data offset     0x{:016x}", f.data_offset);
        println!("  timestamp       {} ({})", f.timestamp, f.timestamp_utc);
        println!(
            "  creator         '{}' {} on '{}'",
            f.creator_app, f.creator_version, f.creator_host_os
        );
        println!("  original size   {}", f.original_size);
        println!("  current size    {}", f.current_size);
        println!(
            "  geometry        {}/{}/{} ({} bytes)",
            f.geometry.cylinders, f.geometry.heads, f.geometry.sectors_per_track, f.geometry_size
        );
        println!("  disk type       {}", f.disk_type);
        println!(
            "  checksum        {} ({})",
            f.checksum,
            if f.checksum_valid { "valid" } else { "INVALID" }
        );
        println!("  unique id       {}", f.unique_id);
        println!(
            "  saved state     {}",
            if f.saved_state { "set" } else { "clear" }
        );
    }
    if let Some(d) = &r.dynamic_header {
        println!("dynamic header:");
        println!(
            "  block table     {} entries at offset {}",
            d.max_table_entries, d.table_offset
        );
        println!("  block size      {}", human_bytes(u64::from(d.block_size)));
        println!(
            "  checksum        {}",
            if d.checksum_valid { "valid" } else { "INVALID" }
        );
        if !d.parent_name.is_empty() {
            println!("  parent          {}", d.parent_name);
        }
    }
    if r.findings.is_empty() {
        println!("findings:      none: the container is what Azure accepts");
    } else {
        println!("findings:");
        let mut sorted = r.findings.clone();
        sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(b.id)));
        for f in &sorted {
            println!("  {:<7} {}  {}", f.severity.as_str(), f.id, f.message);
            if let Some(e) = &f.evidence {
                println!("          evidence: {e}");
            }
            if let Some(fix) = &f.remediation {
                println!("          fix:      {fix}");
            }
        }
    }
}
