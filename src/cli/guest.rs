//! `vhdprep inspect`, `vhdprep ls` and `vhdprep cat`: the guest inside an image, read
//! without mounting.

use super::{human_bytes, print_json, CliError, EXIT_OK};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use vhdprep::disk::DiskImage;
use vhdprep::fs::{FileKind, Metadata};
use vhdprep::guest::inspect::add_packages;
use vhdprep::guest::{
    inspect, open_filesystem, GuestPathError, GuestTree, InspectReport, VolumeSource,
};

/// Largest file `cat` prints.
const CAT_LIMIT: u64 = 1 << 30;

#[derive(Args)]
pub struct InspectArgs {
    /// The disk image (raw, VHD, VHDX, qcow2, VMDK, OVA, VDI).
    image: PathBuf,
    /// Print JSON (keys: partitions, logical_volumes, root, fstab, os, architecture, findings,
    /// packages, package_databases).
    #[arg(long)]
    json: bool,
    /// List the installed packages (name, version, arch, source database) from dpkg's status
    /// file or rpm's database.
    #[arg(long)]
    packages: bool,
    #[command(flatten)]
    parents: super::ParentArgs,
}

#[derive(Args)]
pub struct LsArgs {
    /// The disk image.
    image: PathBuf,
    /// A path in the assembled guest (default `/`).
    #[arg(default_value = "/")]
    path: String,
    /// Long listing: type and mode, owner, size, link targets.
    #[arg(short = 'l', long)]
    long: bool,
    /// Read partition N's filesystem on its own instead of the assembled guest (0: the
    /// filesystem on a disk without a partition table, a "superfloppy").
    #[arg(long, value_name = "N")]
    partition: Option<u32>,
    #[command(flatten)]
    parents: super::ParentArgs,
}

#[derive(Args)]
pub struct CatArgs {
    /// The disk image.
    image: PathBuf,
    /// A file in the assembled guest (links are followed inside the guest).
    path: String,
    /// Read partition N's filesystem on its own instead of the assembled guest (0: the
    /// filesystem on a disk without a partition table, a "superfloppy").
    #[arg(long, value_name = "N")]
    partition: Option<u32>,
    #[command(flatten)]
    parents: super::ParentArgs,
}

fn trouble_at(image: &std::path::Path, e: impl std::fmt::Display) -> CliError {
    CliError::trouble(format!("{}: {e}", image.display()))
}

/// Opens the image and returns the tree `ls`/`cat` read from.
fn tree_for(
    image_path: &std::path::Path,
    partition: Option<u32>,
    parents: &super::ParentArgs,
) -> Result<GuestTree, CliError> {
    let image: DiskImage = parents.open_reading(image_path)?;
    let (_, volumes, guest) = inspect(&image).map_err(CliError::trouble)?;
    match partition {
        Some(n) => {
            // 0 names a filesystem on the whole disk (a "superfloppy": no partition table).
            let wanted = match n {
                0 => VolumeSource::WholeDisk,
                n => VolumeSource::Partition { number: n },
            };
            let v = volumes.iter().find(|v| v.source == wanted).ok_or_else(|| {
                trouble_at(
                    image_path,
                    if n == 0 {
                        "there is no filesystem on the whole disk (--partition 0 reads a disk without a partition table)".to_string()
                    } else {
                        format!("there is no partition {n}")
                    },
                )
            })?;
            let fs = open_filesystem(v, None).map_err(|e| trouble_at(image_path, format!("partition {n}: {e}")))?;
            Ok(GuestTree::new(fs, format!("partition {n}")))
        }
        None => guest.map(|g| g.tree).ok_or_else(|| {
            trouble_at(image_path, "no Linux root filesystem found (no volume holds /etc/os-release); use --partition N to read one filesystem")
        }),
    }
}

pub fn run_inspect(args: InspectArgs) -> Result<i32, CliError> {
    let image: DiskImage = args.parents.open_reading(&args.image)?;
    let (mut report, _, guest) = inspect(&image).map_err(CliError::trouble)?;
    if args.json || args.packages {
        add_packages(&mut report, guest.as_ref());
    }
    if args.json {
        print_json(&report)?;
    } else {
        print_inspect(&report);
    }
    Ok(EXIT_OK)
}

fn fs_text(fs: &Option<vhdprep::guest::inspect::FilesystemReport>) -> String {
    match fs {
        Some(f) => format!(
            "{}{}{}",
            f.fs_type,
            f.label
                .as_ref()
                .map(|l| format!(" label={l}"))
                .unwrap_or_default(),
            f.uuid
                .as_ref()
                .map(|u| format!(" uuid={u}"))
                .unwrap_or_default()
        ),
        None => "-".into(),
    }
}

fn print_inspect(r: &InspectReport) {
    outln!(
        "{}: {} disk of {}",
        r.file,
        r.format.name(),
        human_bytes(r.virtual_size)
    );
    outln!("partition table: {:?}", r.partition_table);
    for p in &r.partitions {
        outln!(
            "  {:>3}  start {:>12}  size {:>12}  {:<22} {:<40} {}",
            p.number,
            p.start,
            p.size,
            p.type_name,
            fs_text(&p.filesystem),
            p.mountpoint.as_deref().unwrap_or("")
        );
    }
    for lv in &r.logical_volumes {
        outln!(
            "  LV {}/{}  size {}  {}  {}",
            lv.vg,
            lv.lv,
            lv.size,
            fs_text(&lv.filesystem),
            lv.mountpoint.as_deref().unwrap_or("")
        );
    }
    if r.whole_disk_filesystem.is_some() {
        outln!("  whole disk: {}", fs_text(&r.whole_disk_filesystem));
    }
    match &r.root {
        Some(root) => outln!(
            "root: {root}{}",
            r.root_subvolume
                .as_ref()
                .map(|s| format!(" (subvolume {s})"))
                .unwrap_or_default()
        ),
        None => outln!("root: none found (no volume holds /etc/os-release)"),
    }
    for m in &r.fstab {
        outln!(
            "  fstab line {:<3} {:<45} {:<14} {:<6} {}",
            m.entry.line,
            m.entry.spec,
            m.entry.mountpoint,
            m.entry.fstype,
            match (&m.volume, m.mounted, &m.problem) {
                (_, _, Some(p)) => format!("NOT MOUNTED: {p}"),
                (Some(v), true, _) => format!("-> {v}"),
                (Some(v), false, _) => format!("({v})"),
                (None, _, _) => String::new(),
            }
        );
    }
    if let Some(os) = &r.os {
        outln!(
            "os: {} (ID={} VERSION_ID={})",
            os.pretty_name.as_deref().unwrap_or("?"),
            os.id.as_deref().unwrap_or("?"),
            os.version_id.as_deref().unwrap_or("?")
        );
    }
    if let Some(a) = &r.architecture {
        outln!(
            "architecture: {} (Azure: {}) from {}",
            a.uname_name(),
            a.azure_name(),
            r.architecture_evidence.as_deref().unwrap_or("?")
        );
    }
    for f in &r.findings {
        outln!("{:<7} {}  {}", f.severity.as_str(), f.id, f.message);
    }
    print_packages(r);
}

/// The package list of `inspect --packages`: the databases, then one package a line.
fn print_packages(r: &InspectReport) {
    let (Some(dbs), Some(list)) = (&r.package_databases, &r.packages) else {
        return;
    };
    if dbs.is_empty() {
        outln!("packages: no package database (dpkg status, rpm database) was found");
        return;
    }
    for d in dbs {
        match &d.error {
            Some(e) => outln!("packages: {} {}: unreadable: {e}", d.source.name(), d.path),
            None => outln!(
                "packages: {} from {} {}{}",
                d.packages,
                d.source.name(),
                d.path,
                if d.skipped > 0 {
                    format!(" ({} entries unreadable)", d.skipped)
                } else {
                    String::new()
                }
            ),
        }
        for n in &d.notes {
            outln!("  note: {n}");
        }
    }
    let width = |f: fn(&vhdprep::guest::packages::Package) -> usize| {
        list.iter().map(f).max().unwrap_or(0).min(60)
    };
    let (wn, wv) = (width(|p| p.name.len()), width(|p| p.version.len()));
    let wa = width(|p| p.arch.as_deref().map_or(1, str::len));
    for p in list {
        outln!(
            "  {:<wn$}  {:<wv$}  {:<wa$}  {}",
            p.name,
            p.version,
            p.arch.as_deref().unwrap_or("-"),
            p.source.name()
        );
    }
}

fn path_error(image: &std::path::Path, e: GuestPathError) -> CliError {
    trouble_at(image, e)
}

fn mode_string(m: &Metadata) -> String {
    let t = match m.kind {
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::CharDevice => 'c',
        FileKind::BlockDevice => 'b',
        FileKind::Fifo => 'p',
        FileKind::Socket => 's',
        FileKind::File => '-',
        FileKind::Unknown => '?',
    };
    let mut s = String::from(t);
    for (bit, c) in [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ] {
        s.push(if m.mode & bit != 0 { c } else { '-' });
    }
    s
}

pub fn run_ls(args: LsArgs) -> Result<i32, CliError> {
    let tree = tree_for(&args.image, args.partition, &args.parents)?;
    let path = args.path.as_bytes();
    let meta = tree
        .metadata(path)
        .map_err(|e| path_error(&args.image, e))?;
    let mut out = std::io::stdout().lock();
    let entries = if meta.kind == FileKind::Dir {
        tree.read_dir(path)
            .map_err(|e| path_error(&args.image, e))?
    } else {
        let name = args
            .path
            .rsplit('/')
            .next()
            .unwrap_or("")
            .as_bytes()
            .to_vec();
        vec![vhdprep::fs::DirEntry {
            name,
            kind: meta.kind,
        }]
    };
    for e in entries {
        let name = e.name_lossy();
        if !args.long {
            let _ = writeln!(out, "{name}");
            continue;
        }
        let full = if meta.kind == FileKind::Dir {
            format!("{}/{}", args.path.trim_end_matches('/'), name)
        } else {
            args.path.clone()
        };
        match tree.symlink_metadata(full.as_bytes()) {
            Ok(m) => {
                let target = if m.kind == FileKind::Symlink {
                    tree.read_link(full.as_bytes())
                        .map(|t| format!(" -> {}", String::from_utf8_lossy(&t)))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "{} {:>6} {:>6} {:>12} {name}{target}",
                    mode_string(&m),
                    m.uid,
                    m.gid,
                    m.size
                );
            }
            Err(err) => {
                let _ = writeln!(
                    out,
                    "?????????? {:>6} {:>6} {:>12} {name} ({err})",
                    "?", "?", "?"
                );
            }
        }
    }
    Ok(EXIT_OK)
}

pub fn run_cat(args: CatArgs) -> Result<i32, CliError> {
    let tree = tree_for(&args.image, args.partition, &args.parents)?;
    let bytes = tree
        .read_file(args.path.as_bytes(), CAT_LIMIT)
        .map_err(|e| path_error(&args.image, e))?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)
        .and_then(|_| out.flush())
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| CliError::trouble(format!("cannot write to stdout: {e}")))?;
    Ok(EXIT_OK)
}
