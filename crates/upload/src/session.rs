//! One upload: decide what the blob needs (create, resume, refuse), send the image's non-zero
//! pages as the checksum pass finds them, then prove the service holds them.
//!
//! The checksum pass (MD5, zero map and per-piece MD5s, one read of the file) runs on a thread
//! of its own and hands each non-zero piece (at most 4 MiB, never crossing a 4 MiB boundary)
//! with its MD5 to the sender through a bounded channel. The sender reads the piece back
//! (just read: from the page cache) and issues up to `parallel` Put Page requests at once,
//! each carrying its Content-MD5, which the service checks. The first failure on either side
//! ends both: the pass asks [`Observer::failure`] before every buffer, and the sender stops
//! taking pieces. Memory is bounded by `parallel` pieces in flight plus the channel.

use crate::error::UploadError;
use crate::ranges;
use crate::service::{BlobState, PageBlob, ServiceError};
use crate::target::{Target, TargetKind};
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use vhdprep_checksum::{checksum_path, ChecksumError, Observer, Options, RangeMd5, Scope};

/// Metadata key that records which image a page blob is an upload of.
pub const SOURCE_KEY: &str = "vhdprepsource";
/// Largest Put Page body (the service's limit).
pub const MAX_PUT_PAGE: u64 = 4 << 20;

/// How to upload.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Put Page requests in flight at once.
    pub parallel: usize,
    /// Retries of a throttled (429/500/503) or dropped request, with exponential backoff.
    pub retries: u32,
    /// After the upload, read the whole blob back and compare it with the image.
    pub verify_download: bool,
    /// Replace a blob that holds another image or data vhdprep did not write.
    pub overwrite: bool,
    /// Continue onto a managed disk that already holds pages (a managed disk's upload blob
    /// carries no metadata, so whose pages they are cannot be checked).
    pub resume_managed_disk: bool,
    /// How long a request may go unanswered before it is abandoned and sent again (plus
    /// 1/15 of it per MiB of body).
    pub request_timeout: std::time::Duration,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            parallel: 8,
            retries: 8,
            verify_download: false,
            overwrite: false,
            resume_managed_disk: false,
            request_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// Where an upload stands, for a progress display.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProgressState {
    /// Bytes of the image the checksum pass has read (or skipped as holes).
    pub scanned: u64,
    /// The image's size.
    pub size: u64,
    /// Bytes the service has accepted in this run.
    pub sent: u64,
    /// Non-zero bytes the blob held already (a resumed upload).
    pub already_present: u64,
}

/// Receives progress (called from the thread that called [`upload`]).
pub trait Progress {
    /// The upload moved on.
    fn update(&mut self, state: &ProgressState) {
        let _ = state;
    }
}

impl Progress for () {}

/// What an upload did.
#[derive(Debug, Clone)]
pub struct UploadReport {
    /// The destination (no SAS).
    pub target: String,
    /// Bytes of the image (= of the blob).
    pub size: u64,
    /// MD5 of the whole image, now the blob's `Content-MD5`.
    pub md5: [u8; 16],
    /// Non-zero bytes of the image (whole 512-byte pages).
    pub nonzero_bytes: u64,
    /// Non-zero ranges of the image.
    pub nonzero_ranges: u64,
    /// Bytes sent in Put Page requests that the service accepted.
    pub bytes_sent: u64,
    /// Put Page requests the service accepted.
    pub requests: u64,
    /// Non-zero bytes already in the blob from an earlier, interrupted run.
    pub already_present: u64,
    /// The blob existed with pages of this image: an interrupted upload was resumed.
    pub resumed: bool,
    /// The blob was read back and compared (`--verify-download`).
    pub verified_download: bool,
}

/// Uploads the file at `path` to `target` (see the module comment).
pub fn upload(
    path: &Path,
    target: &Target,
    opts: &UploadOptions,
    progress: &mut dyn Progress,
) -> Result<UploadReport, UploadError> {
    let image = |why: String| UploadError::Image {
        path: path.to_path_buf(),
        why,
    };
    let file = File::open(path).map_err(|e| image(format!("cannot open: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| image(format!("cannot stat: {e}")))?;
    let size = meta.len();
    if size == 0 || size % 512 != 0 {
        return Err(image(format!(
            "is {size} bytes, not a whole number of 512-byte pages: a page blob cannot hold it"
        )));
    }
    let identity = source_identity(&file, &meta).map_err(|e| image(format!("cannot read: {e}")))?;
    let shown = target.display();
    let service = |source: ServiceError| UploadError::Service {
        target: shown.clone(),
        source,
    };
    let refused = |why: String| UploadError::Refused {
        target: shown.clone(),
        why,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| image(format!("cannot start the upload's runtime: {e}")))?;
    let blob = PageBlob::new(target, opts.retries, opts.request_timeout).map_err(service)?;

    // 1. What the blob holds now decides: create, resume, or refuse.
    let state = rt.block_on(blob.state()).map_err(service)?;
    let (present, resumed) = rt
        .block_on(prepare(&blob, target.kind, state, size, &identity, opts))
        .map_err(|p| match p {
            Prepare::Service(e) => service(e),
            Prepare::Refused(why) => refused(why),
        })?;

    // 2. The pass and the sender.
    let file = Arc::new(file);
    let failure: Arc<Mutex<Option<ServiceError>>> = Arc::new(Mutex::new(None));
    let scanned = Arc::new(AtomicU64::new(0));
    let already = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RangeMd5>(opts.parallel.max(1) * 2);
    let pass = {
        let path: PathBuf = path.to_path_buf();
        let failure = failure.clone();
        let scanned = scanned.clone();
        let already = already.clone();
        let present = present.clone();
        std::thread::Builder::new()
            .name("vhdprep-upload-pass".into())
            .spawn(move || {
                let mut obs = PassObserver {
                    tx,
                    present,
                    failure,
                    scanned,
                    already,
                };
                let mut o = Options::none();
                o.md5 = true;
                o.zero_map = true;
                o.range_md5 = true;
                o.keep_ranges = true;
                checksum_path(&path, Scope::Blob, &o, &mut obs)
            })
            .map_err(|e| image(format!("cannot start the checksum pass: {e}")))?
    };
    let sent = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(opts.parallel.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        let mut last_report = std::time::Instant::now();
        let report = |progress: &mut dyn Progress| {
            progress.update(&ProgressState {
                scanned: scanned.load(Ordering::Relaxed),
                size,
                sent: sent.load(Ordering::Relaxed),
                already_present: already.load(Ordering::Relaxed),
            })
        };
        let fail = |e: ServiceError| {
            let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert(e);
        };
        while let Some(piece) = rx.recv().await {
            while let Some(done) = tasks.try_join_next() {
                if let Ok(Err(e)) = done {
                    fail(e);
                }
            }
            if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                break;
            }
            let Ok(permit) = sem.clone().acquire_owned().await else {
                break;
            };
            let (blob, file, sent, requests) =
                (blob.clone(), file.clone(), sent.clone(), requests.clone());
            tasks.spawn(async move {
                let _permit = permit;
                let mut data = vec![0u8; piece.length as usize];
                file.read_exact_at(&mut data, piece.offset)
                    .map_err(|e| ServiceError {
                        op: "read of the image",
                        status: None,
                        code: None,
                        detail: e.to_string(),
                    })?;
                blob.put_pages(piece.offset, azure_core::Bytes::from(data), piece.md5)
                    .await?;
                sent.fetch_add(piece.length, Ordering::Relaxed);
                requests.fetch_add(1, Ordering::Relaxed);
                Ok::<(), ServiceError>(())
            });
            if last_report.elapsed() >= std::time::Duration::from_millis(200) {
                report(progress);
                last_report = std::time::Instant::now();
            }
        }
        // The pass ended (or the sender stopped): no more pieces; let the in-flight finish.
        rx.close();
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err(e)) = done {
                fail(e);
            }
        }
        report(progress);
    });
    let digests = pass
        .join()
        .map_err(|_| image("the checksum pass panicked".into()))?;
    if let Some(e) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(service(e));
    }
    let digests = digests.map_err(|e| match e {
        ChecksumError::Observer { .. } => image(format!("the checksum pass stopped: {e}")),
        other => image(other.to_string()),
    })?;
    let md5 = digests
        .md5
        .ok_or_else(|| image("no MD5 was computed".into()))?;
    let map = digests
        .zero_map
        .ok_or_else(|| image("no zero map was computed".into()))?;

    // 3. The whole file's MD5 as the blob's Content-MD5, then proof that the service holds
    //    every non-zero byte.
    rt.block_on(blob.set_content_md5(md5)).map_err(service)?;
    let have = rt.block_on(blob.page_ranges()).map_err(service)?;
    if let Some(missing) = ranges::first_missing(&have, map.ranges()) {
        return Err(UploadError::Incomplete {
            target: shown,
            missing,
        });
    }
    match rt.block_on(blob.state()).map_err(service)? {
        Some(s) if s.size == size => {}
        Some(s) => {
            return Err(refused(format!(
                "the blob is now {} bytes, not the image's {size}: something else resized it",
                s.size
            )))
        }
        None => return Err(refused("the blob disappeared during the upload".into())),
    }
    if opts.verify_download {
        if let Some(range) = rt
            .block_on(compare_download(&blob, &file, size, opts.parallel))
            .map_err(service)?
        {
            return Err(UploadError::Differs {
                target: shown,
                range,
            });
        }
    }
    Ok(UploadReport {
        target: shown,
        size,
        md5,
        nonzero_bytes: map.nonzero_bytes(),
        nonzero_ranges: map.range_count(),
        bytes_sent: sent.load(Ordering::Relaxed),
        requests: requests.load(Ordering::Relaxed),
        already_present: already.load(Ordering::Relaxed),
        resumed,
        verified_download: opts.verify_download,
    })
}

/// What the image is, for recognising an earlier upload of it: size, modification time and
/// the MD5 of its last 512 bytes (a VHD's footer, with its unique id and time stamp).
fn source_identity(file: &File, meta: &std::fs::Metadata) -> std::io::Result<String> {
    let mut tail = [0u8; 512];
    file.read_exact_at(&mut tail, meta.len() - 512)?;
    let digest = Md5::digest(tail);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}.{:09}-{hex}",
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

enum Prepare {
    Service(ServiceError),
    Refused(String),
}

/// Creates the blob or checks that it may be resumed; returns the ranges it holds already and
/// whether this is a resumed upload.
async fn prepare(
    blob: &PageBlob,
    kind: TargetKind,
    state: Option<BlobState>,
    size: u64,
    identity: &str,
    opts: &UploadOptions,
) -> Result<(Arc<Vec<std::ops::Range<u64>>>, bool), Prepare> {
    let create = || async {
        let md = HashMap::from([(SOURCE_KEY.to_string(), identity.to_string())]);
        blob.create(size, &md).await.map_err(Prepare::Service)?;
        Ok((Arc::new(Vec::new()), false))
    };
    let Some(state) = state else {
        return match kind {
            TargetKind::PageBlob => create().await,
            TargetKind::ManagedDisk => Err(Prepare::Refused(
                "the managed disk's upload URL names no blob: has its access grant expired? \
                 (az disk grant-access --access-level Write)"
                    .into(),
            )),
        };
    };
    if !state.page_blob {
        return Err(Prepare::Refused(
            "exists and is a block or append blob: a disk must go to a page blob (choose \
             another name, or delete it)"
                .into(),
        ));
    }
    if kind == TargetKind::ManagedDisk {
        if state.size != size {
            return Err(Prepare::Refused(format!(
                "the managed disk was created for {} bytes but the image is {size} \
                 (`vhdprep upload --print-az IMG` prints the az commands with the right size)",
                state.size
            )));
        }
        let have = blob.page_ranges().await.map_err(Prepare::Service)?;
        if !have.is_empty() && !opts.resume_managed_disk {
            return Err(Prepare::Refused(
                "the managed disk holds data already, and a managed disk's upload blob keeps \
                 no record of whose: if this is an interrupted upload of this same image, run \
                 again with --resume"
                    .into(),
            ));
        }
        let resumed = !have.is_empty();
        return Ok((Arc::new(have), resumed));
    }
    if opts.overwrite {
        return create().await;
    }
    if state.size != size {
        return Err(Prepare::Refused(format!(
            "exists with {} bytes, the image has {size}: --overwrite replaces it",
            state.size
        )));
    }
    match state.metadata.get(SOURCE_KEY) {
        Some(v) if v == identity => {
            let have = blob.page_ranges().await.map_err(Prepare::Service)?;
            Ok((Arc::new(have), true))
        }
        Some(_) => Err(Prepare::Refused(
            "holds an upload of another image (or of this one before it changed): \
             --overwrite replaces it"
                .into(),
        )),
        None => {
            let have = blob.page_ranges().await.map_err(Prepare::Service)?;
            if have.is_empty() {
                // An empty page blob of the right size (made beforehand): take it.
                create().await
            } else {
                Err(Prepare::Refused(
                    "exists and holds data vhdprep did not upload: --overwrite replaces it".into(),
                ))
            }
        }
    }
}

/// Feeds the non-zero pieces the blob lacks to the sender; stops the pass when the sender
/// failed.
struct PassObserver {
    tx: tokio::sync::mpsc::Sender<RangeMd5>,
    present: Arc<Vec<std::ops::Range<u64>>>,
    failure: Arc<Mutex<Option<ServiceError>>>,
    scanned: Arc<AtomicU64>,
    already: Arc<AtomicU64>,
}

impl Observer for PassObserver {
    fn range_md5(&mut self, piece: &RangeMd5) {
        let r = piece.offset..piece.offset + piece.length;
        if ranges::covers(&self.present, &r) {
            self.already.fetch_add(piece.length, Ordering::Relaxed);
            return;
        }
        // Fails only once the sender has stopped; `failure` then ends the pass.
        let _ = self.tx.blocking_send(*piece);
    }

    fn progress(&mut self, done: u64, _total: u64) {
        self.scanned.store(done, Ordering::Relaxed);
    }

    fn failure(&mut self) -> Option<String> {
        if self.tx.is_closed() {
            return Some("the upload stopped".into());
        }
        self.failure
            .lock()
            .ok()
            .and_then(|f| f.as_ref().map(|e| e.to_string()))
    }
}

/// Reads the blob back in 4 MiB pieces (`parallel` at once) and returns the first piece that
/// differs from the file.
async fn compare_download(
    blob: &PageBlob,
    file: &Arc<File>,
    size: u64,
    parallel: usize,
) -> Result<Option<std::ops::Range<u64>>, ServiceError> {
    use futures::StreamExt;
    let pieces = (0..size.div_ceil(MAX_PUT_PAGE))
        .map(|i| i * MAX_PUT_PAGE..((i + 1) * MAX_PUT_PAGE).min(size));
    let mut results = futures::stream::iter(pieces)
        .map(|r| {
            let (blob, file) = (blob.clone(), file.clone());
            async move {
                let theirs = blob.read(r.clone()).await?;
                let mut ours = vec![0u8; (r.end - r.start) as usize];
                file.read_exact_at(&mut ours, r.start)
                    .map_err(|e| ServiceError {
                        op: "read of the image",
                        status: None,
                        code: None,
                        detail: e.to_string(),
                    })?;
                Ok::<_, ServiceError>((r, theirs[..] == ours[..]))
            }
        })
        .buffered(parallel.max(1));
    while let Some(res) = results.next().await {
        let (r, same) = res?;
        if !same {
            return Ok(Some(r));
        }
    }
    Ok(None)
}
