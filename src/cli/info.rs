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
    print_formats(r);
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

/// The per-format sections (qcow2, VHDX, VMDK, OVA, VDI) and the parent chain.
fn print_formats(r: &ContainerReport) {
    let yes = |b: bool| if b { "yes" } else { "no" };
    if let Some(q) = &r.qcow2 {
        outln!("qcow2:");
        outln!("  version         {} (compat {})", q.version, q.compat);
        outln!("  cluster size    {}", human_bytes(q.cluster_size));
        outln!("  compression     {}", q.compression);
        outln!("  extended L2     {}", yes(q.extended_l2));
        outln!("  dirty           {}", yes(q.dirty));
        outln!("  corrupt         {}", yes(q.corrupt));
        if let Some(e) = q.encryption {
            outln!("  encryption      {e}");
        }
        if let Some(b) = &q.backing_file {
            match &q.backing_format {
                Some(f) => outln!("  backing file    {b} (format {f})"),
                None => outln!("  backing file    {b}"),
            }
        }
        if let Some(d) = &q.data_file {
            outln!("  data file       {d}");
        }
        for s in &q.snapshots {
            outln!(
                "  snapshot        {} '{}' taken {} (VM state {} bytes)",
                s.id,
                s.name,
                s.date_utc,
                s.vm_state_size
            );
        }
    }
    if let Some(v) = &r.vhdx {
        outln!("vhdx:");
        outln!("  creator         {}", v.creator);
        outln!("  block size      {}", human_bytes(u64::from(v.block_size)));
        outln!(
            "  sectors         {} logical, {} physical",
            v.logical_sector_size,
            v.physical_sector_size
        );
        outln!(
            "  kind            {}",
            if v.has_parent {
                "differencing"
            } else if v.leave_blocks_allocated {
                "fixed"
            } else {
                "dynamic"
            }
        );
        outln!("  data write GUID {}", v.data_write_guid);
        if v.log.non_empty {
            outln!(
                "  log             not empty: {} entries replayed in memory",
                v.log.replayed_entries
            );
        } else {
            outln!("  log             empty");
        }
        if let Some(l) = &v.parent_locator {
            for (k, val) in l {
                outln!("  parent locator  {k}={val}");
            }
        }
    }
    let vmdk = r
        .vmdk
        .as_ref()
        .or(r.ova.as_ref().and_then(|o| o.vmdk.as_ref()));
    if let Some(o) = &r.ova {
        outln!("ova:");
        outln!("  members         {}", o.members.join(", "));
        for d in &o.disks {
            outln!(
                "  disk            {} = {} ({} bytes at offset {})",
                d.disk_id,
                d.href,
                d.size,
                d.offset
            );
        }
        if let Some(m) = &o.disk_read {
            outln!("  disk read       {m}");
        }
    }
    if let Some(v) = vmdk {
        outln!("vmdk:");
        if let Some(t) = &v.create_type {
            outln!("  create type     {t}");
        }
        if let Some(c) = &v.cid {
            outln!("  CID             {c}");
        }
        if let Some(p) = &v.parent_cid {
            outln!(
                "  parent          CID {p}, hint {}",
                v.parent_file_name_hint.as_deref().unwrap_or("(none)")
            );
        }
        for e in &v.extents {
            outln!(
                "  extent          {} {} {} {}",
                e.access,
                e.sectors,
                e.kind,
                e.file.as_deref().unwrap_or("")
            );
        }
        if let Some(s) = &v.sparse {
            outln!(
                "  sparse header   version {}, grain {} sectors, compression {}{}",
                s.version,
                s.grain_sectors,
                s.compress_algorithm,
                if s.footer {
                    ", grain directory in the footer"
                } else {
                    ""
                }
            );
        }
    }
    if let Some(v) = &r.vdi {
        outln!("vdi:");
        outln!("  image type      {} (version {})", v.image_type, v.version);
        outln!("  block size      {}", human_bytes(u64::from(v.block_size)));
        outln!(
            "  blocks          {} allocated of {}",
            v.blocks_allocated,
            v.blocks_in_image
        );
        outln!("  image UUID      {}", v.uuid_image);
        if v.image_type == "differencing" {
            outln!("  parent UUID     {}", v.uuid_link);
        }
    }
    if !r.chain.is_empty() {
        outln!("chain:");
        for (i, c) in r.chain.iter().enumerate() {
            outln!(
                "  {i}  {} ({}{})",
                c.path,
                c.format,
                c.uuid
                    .as_ref()
                    .map(|u| format!(", {u}"))
                    .unwrap_or_default()
            );
        }
    }
}
