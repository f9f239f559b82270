//! `vhdprep checksum IMG [--md5] [--sha256] [--crc32] [--blake3] [--zero-map] [--range-md5]
//! [--scope blob|disk] [--json] [--output FILE]` and `vhdprep checksum --verify MANIFEST IMG`.

use super::progress::byte_bar;
use super::{CliError, EXIT_FINDINGS, EXIT_OK};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use std::io::Write;
use std::path::{Path, PathBuf};
use vhdprep::checksum::{
    checksum_path_with, verify_path_with, Digests, Manifest, Observer, Options, RangeSpill, Scope,
};

#[derive(Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// The whole file as uploaded, footer included.
    Blob,
    /// The virtual disk only (a dynamic VHD expanded, no footer).
    Disk,
}

#[derive(Args)]
pub struct ChecksumArgs {
    /// The image (in blob scope, any file).
    image: PathBuf,
    /// MD5 (hex, and base64 as Azure's Content-MD5).
    #[arg(long)]
    md5: bool,
    /// SHA-256.
    #[arg(long)]
    sha256: bool,
    /// CRC32 (IEEE, as zlib and Python's zlib.crc32).
    #[arg(long)]
    crc32: bool,
    /// BLAKE3.
    #[arg(long)]
    blake3: bool,
    /// The non-zero ranges at 512-byte page granularity and the bytes to upload.
    #[arg(long = "zero-map")]
    zero_map: bool,
    /// The MD5 of every non-zero range, split at 4 MiB (one Put Page request each); the
    /// `ranges` entries become [offset, length, md5_base64].
    #[arg(long = "range-md5")]
    range_md5: bool,
    /// What to hash: the file as uploaded, or the virtual disk inside it.
    #[arg(long, value_enum, default_value = "blob")]
    scope: ScopeArg,
    /// Print the manifest as JSON (keys md5, md5_base64, sha256, crc32, blake3, size,
    /// nonzero_bytes, ranges).
    #[arg(long)]
    json: bool,
    /// Write the result to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Recompute what MANIFEST (a --json output) records and compare: exit 0 when all match,
    /// 1 naming each value that differs, 2 when the image or manifest cannot be read.
    #[arg(
        long,
        value_name = "MANIFEST",
        conflicts_with_all = ["md5", "sha256", "crc32", "blake3", "zero_map", "range_md5", "json", "output"]
    )]
    verify: Option<PathBuf>,
    #[command(flatten)]
    parents: super::ParentArgs,
}

/// Drives the progress bar.
struct Bar(ProgressBar);

impl Observer for Bar {
    fn progress(&mut self, done: u64, total: u64) {
        if self.0.length() != Some(total) {
            self.0.set_length(total);
        }
        self.0.set_position(done);
    }
}

pub fn run(args: ChecksumArgs) -> Result<i32, CliError> {
    let scope = match args.scope {
        ScopeArg::Blob => Scope::Blob,
        ScopeArg::Disk => Scope::Disk,
    };
    let mut bar = Bar(byte_bar(0, args.quiet));
    if let Some(manifest) = &args.verify {
        let m = Manifest::load(manifest).map_err(CliError::trouble)?;
        let diffs = verify_path_with(&m, &args.image, scope, &args.parents.options(), &mut bar);
        bar.0.finish_and_clear();
        let diffs = diffs.map_err(CliError::trouble)?;
        let img = args.image.display();
        if diffs.is_empty() {
            outln!(
                "{img}: OK: {} match {}",
                checked_keys(&m).join(", "),
                manifest.display()
            );
            return Ok(EXIT_OK);
        }
        for d in &diffs {
            outln!("{img}: {d}");
        }
        if diffs.iter().any(|d| d.key == "size") {
            let other = match scope {
                Scope::Blob => "--scope disk",
                Scope::Disk => "--scope blob",
            };
            eprintln!(
                "vhdprep: note: the sizes differ; if the manifest was made with {other}, verify with {other}"
            );
        }
        return Ok(EXIT_FINDINGS);
    }
    let mut opts = Options {
        md5: args.md5,
        sha256: args.sha256,
        crc32: args.crc32,
        blake3: args.blake3,
        zero_map: args.zero_map || args.range_md5,
        range_md5: args.range_md5,
        // The ranges go to a spill file as they come (JSON) or are only counted (text), so
        // memory does not grow with the map.
        keep_ranges: false,
    };
    if opts.is_empty() {
        opts = Options {
            keep_ranges: false,
            ..Options::default()
        };
    }
    let fail = |e: std::io::Error| CliError::trouble(format!("cannot write the result: {e}"));
    // The bar is cleared before anything is printed (a clone: the spill holds the bar).
    let pb = bar.0.clone();
    if args.json {
        let mut spill = RangeSpill::new(opts.range_md5, &mut bar).map_err(fail)?;
        let digests = checksum_path_with(
            &args.image,
            scope,
            &args.parents.options(),
            &opts,
            &mut spill,
        );
        pb.finish_and_clear();
        let digests = digests.map_err(CliError::trouble)?;
        let manifest = Manifest::from_digests(&digests);
        let zero_map = digests.zero_map.is_some();
        emit(args.output.as_deref(), |out| {
            if zero_map {
                spill.write_json(&manifest, out)
            } else {
                out.write_all(manifest.to_json().as_bytes())
            }
        })?;
    } else {
        let digests =
            checksum_path_with(&args.image, scope, &args.parents.options(), &opts, &mut bar);
        pb.finish_and_clear();
        let digests = digests.map_err(CliError::trouble)?;
        let text = render_text(&digests, opts.range_md5);
        emit(args.output.as_deref(), |out| out.write_all(text.as_bytes()))?;
    }
    Ok(EXIT_OK)
}

/// The keys of a manifest that a verification compared.
fn checked_keys(m: &Manifest) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let has = [
        ("md5", m.md5.is_some()),
        ("md5_base64", m.md5_base64.is_some()),
        ("sha256", m.sha256.is_some()),
        ("crc32", m.crc32.is_some()),
        ("blake3", m.blake3.is_some()),
        ("size", m.size.is_some()),
        ("nonzero_bytes", m.nonzero_bytes.is_some()),
        ("ranges", m.ranges.is_some()),
    ];
    for (k, present) in has {
        if present {
            keys.push(k);
        }
    }
    keys
}

/// One `key value` line per value, keys as in the JSON; `pieces` when per-range MD5s were
/// computed.
fn render_text(d: &Digests, pieces: bool) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<14} {v}\n"));
    if let Some(v) = d.md5_hex() {
        line("md5", v);
    }
    if let Some(v) = d.md5_base64() {
        line("md5_base64", v);
    }
    if let Some(v) = d.sha256_hex() {
        line("sha256", v);
    }
    if let Some(v) = d.crc32_hex() {
        line("crc32", v);
    }
    if let Some(v) = d.blake3_hex() {
        line("blake3", v);
    }
    line("size", d.size.to_string());
    if let Some(m) = &d.zero_map {
        line("nonzero_bytes", m.nonzero_bytes().to_string());
        let what = if pieces {
            format!(
                "{} pieces of at most 4 MiB with their MD5s (--json lists them)",
                m.piece_count()
            )
        } else {
            format!("{} non-zero ranges (--json lists them)", m.range_count())
        };
        line("ranges", what);
    }
    out
}

/// Runs `write` on standard output, or on a temporary file renamed to `path` once complete.
fn emit(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let Some(path) = path else {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        // A reader that went away (`| head`) is not an error of the checksum.
        return match write(&mut out).and_then(|()| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(CliError::trouble(format!("cannot write the result: {e}")))
            }
            _ => Ok(()),
        };
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail =
        |e: std::io::Error| CliError::trouble(format!("{}: cannot write: {e}", path.display()));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    let mut out = std::io::BufWriter::new(tmp);
    write(&mut out).map_err(fail)?;
    let tmp = out.into_inner().map_err(|e| fail(e.into_error()))?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
