//! `vhdprep upload IMG --to URL`: the checked fixed VHD to a page blob or a managed disk,
//! only its non-zero pages, resumable, verified. `--print-az` prints the managed-disk route.

use super::check::{policy_of, PolicyArgs};
use super::progress::byte_bar;
use super::CliError;
use clap::Args;
use std::path::PathBuf;
use vhdprep::check::render::{render, OutputFormat};
use vhdprep::disk::{DiskImage, Format};
use vhdprep_upload::{Progress, ProgressState, Secret, Target, UploadOptions};

/// Environment variable holding a storage account connection string (as `az` and AzCopy
/// read it), used with `--container` and `--blob`.
const CONNECTION_STRING_ENV: &str = "AZURE_STORAGE_CONNECTION_STRING";
/// Environment variable that may hold the SAS URL instead of `--to` (keeps it out of the
/// process list).
const URL_ENV: &str = "VHDPREP_UPLOAD_URL";
/// How long a SAS signed from a connection string is valid.
const SIGNED_SAS_HOURS: i64 = 48;

#[derive(Args)]
pub struct UploadArgs {
    /// The fixed VHD to upload (whole MiB, as `convert` and `fix` make it).
    pub image: PathBuf,
    /// Page-blob URL with a SAS token, or the SAS URL `az disk grant-access --access-level
    /// Write` returns (default: $VHDPREP_UPLOAD_URL). Never printed with its signature.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// With a connection string in $AZURE_STORAGE_CONNECTION_STRING: the container.
    #[arg(long, value_name = "NAME", requires = "blob")]
    pub container: Option<String>,
    /// With a connection string in $AZURE_STORAGE_CONNECTION_STRING: the blob name.
    #[arg(long, value_name = "NAME", requires = "container")]
    pub blob: Option<String>,
    /// Put Page requests in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Retries of a throttled (429/500/503) or dropped request, with exponential backoff.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..=30))]
    pub retries: u32,
    /// Seconds a request may go unanswered before it is sent again (plus 1/15 of it per MiB
    /// of body).
    #[arg(long = "request-timeout", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: u64,
    /// Upload without running `check` first (the container must still be a fixed,
    /// whole-MiB VHD).
    #[arg(long = "no-check")]
    pub no_check: bool,
    /// Replace a blob that holds another image or data vhdprep did not write.
    #[arg(long)]
    pub overwrite: bool,
    /// Continue an interrupted upload onto a managed disk that already holds pages.
    #[arg(long)]
    pub resume: bool,
    /// After the upload, read the whole blob back and compare it with the image (slow).
    #[arg(long = "verify-download")]
    pub verify_download: bool,
    /// Print the `az` commands of the managed-disk route (create with the exact upload
    /// size, grant write access, upload, revoke) and exit.
    #[arg(long = "print-az")]
    pub print_az: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// The progress bar, fed from the upload.
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn update(&mut self, s: &ProgressState) {
        self.0.set_position(s.scanned);
        self.0.set_message(format!("{} MiB sent", s.sent >> 20));
    }
}

pub fn run(args: UploadArgs) -> Result<i32, CliError> {
    let image = DiskImage::open(&args.image)?;
    let shown = args.image.display().to_string();
    gate_container(&image, &shown)?;
    if args.print_az {
        print_az(&image, &shown);
        return Ok(super::EXIT_OK);
    }
    let target = target(&args)?;
    if !args.no_check {
        let (policy, _) = policy_of(&args.policy)?;
        let report = vhdprep::check::check(&image, &[], &policy).map_err(CliError::trouble)?;
        let status = report.exit_status();
        if status != super::EXIT_OK {
            eprint!("{}", render(&report, OutputFormat::Text, false));
            eprintln!(
                "vhdprep: {shown}: not uploaded: `check` failed (fix the findings, --allow them, or --no-check)"
            );
            return Ok(status);
        }
    }
    drop(image);
    let opts = UploadOptions {
        parallel: usize::from(args.parallel),
        retries: args.retries,
        request_timeout: std::time::Duration::from_secs(args.request_timeout),
        verify_download: args.verify_download,
        overwrite: args.overwrite,
        resume_managed_disk: args.resume,
    };
    let size = std::fs::metadata(&args.image).map(|m| m.len()).unwrap_or(0);
    let mut bar = Bar(byte_bar(size, args.quiet || args.json));
    let result = vhdprep_upload::upload(&args.image, &target, &opts, &mut bar);
    bar.0.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let code = if e.is_mismatch() {
                super::EXIT_FINDINGS
            } else {
                super::EXIT_TROUBLE
            };
            return Err(CliError {
                message: e.to_string(),
                code,
            });
        }
    };
    use base64::Engine;
    let md5_b64 = base64::engine::general_purpose::STANDARD.encode(report.md5);
    let md5_hex: String = report.md5.iter().map(|b| format!("{b:02x}")).collect();
    if args.json {
        let v = serde_json::json!({
            "image": shown,
            "target": report.target,
            "size": report.size,
            "md5": md5_hex,
            "content_md5": md5_b64,
            "nonzero_bytes": report.nonzero_bytes,
            "nonzero_ranges": report.nonzero_ranges,
            "bytes_sent": report.bytes_sent,
            "put_page_requests": report.requests,
            "already_present_bytes": report.already_present,
            "resumed": report.resumed,
            "verified_page_ranges": true,
            "verified_download": report.verified_download,
        });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        outln!("uploaded {shown} to {}", report.target);
        outln!(
            "  {} bytes; {} non-zero bytes in {} ranges",
            report.size,
            report.nonzero_bytes,
            report.nonzero_ranges
        );
        outln!(
            "  sent {} bytes in {} Put Page requests{}",
            report.bytes_sent,
            report.requests,
            if report.resumed {
                format!(
                    " (resumed: {} bytes were there already)",
                    report.already_present
                )
            } else {
                String::new()
            }
        );
        outln!("  Content-MD5 {md5_b64} (MD5 {md5_hex})");
        outln!(
            "  verified: the blob's page ranges cover every non-zero byte{}",
            if report.verified_download {
                "; read back, it equals the image"
            } else {
                ""
            }
        );
    }
    Ok(super::EXIT_OK)
}

/// Refuses what Azure would not take, naming the command that makes it acceptable.
fn gate_container(image: &DiskImage, shown: &str) -> Result<(), CliError> {
    let format = image.format();
    if format != Format::VhdFixed {
        return Err(CliError::trouble(format!(
            "{shown}: is {}, and Azure takes only fixed VHDs: `vhdprep convert {shown} OUT.vhd` makes one",
            format.name()
        )));
    }
    let virtual_size = image.virtual_size();
    if virtual_size % (1 << 20) != 0 || image.file_size() != virtual_size + 512 {
        return Err(CliError::trouble(format!(
            "{shown}: its virtual size ({virtual_size} bytes) is not a whole MiB with the footer right after it: `vhdprep fix --in-place {shown}` fixes it"
        )));
    }
    Ok(())
}

/// The destination from `--to`, $VHDPREP_UPLOAD_URL, or a connection string.
fn target(args: &UploadArgs) -> Result<Target, CliError> {
    if let (Some(container), Some(blob)) = (&args.container, &args.blob) {
        if args.to.is_some() {
            return Err(CliError::trouble(
                "give either --to or --container/--blob, not both",
            ));
        }
        let conn = std::env::var(CONNECTION_STRING_ENV).map_err(|_| {
            CliError::trouble(format!(
                "--container/--blob need a connection string in ${CONNECTION_STRING_ENV}"
            ))
        })?;
        let expiry = time::OffsetDateTime::now_utc() + time::Duration::hours(SIGNED_SAS_HOURS);
        let expiry = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            expiry.year(),
            u8::from(expiry.month()),
            expiry.day(),
            expiry.hour(),
            expiry.minute(),
            expiry.second()
        );
        return Target::from_connection_string(&Secret::new(conn), container, blob, &expiry)
            .map_err(CliError::trouble);
    }
    let url = match &args.to {
        Some(u) => u.clone(),
        None => std::env::var(URL_ENV).map_err(|_| {
            CliError::trouble(format!(
                "no destination: give --to URL (or ${URL_ENV}), or --container/--blob with ${CONNECTION_STRING_ENV}"
            ))
        })?,
    };
    Target::from_sas_url(&url).map_err(CliError::trouble)
}

/// The managed-disk route with this image's exact upload size.
fn print_az(image: &DiskImage, shown: &str) {
    let size = image.file_size();
    outln!("# Upload {shown} as a managed disk (the upload size is the file's, footer included).");
    outln!("az disk create -g RESOURCE_GROUP -n DISK_NAME -l LOCATION --os-type Linux \\");
    outln!("  --upload-type Upload --upload-size-bytes {size} --sku standard_lrs");
    outln!("SAS=$(az disk grant-access -g RESOURCE_GROUP -n DISK_NAME --access-level Write \\");
    outln!("  --duration-in-seconds 86400 --query accessSAS -o tsv)");
    outln!("VHDPREP_UPLOAD_URL=\"$SAS\" vhdprep upload {shown}");
    outln!("az disk revoke-access -g RESOURCE_GROUP -n DISK_NAME");
}
