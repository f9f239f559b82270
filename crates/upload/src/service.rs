//! The page blob as the service holds it: the few calls an upload needs, over Microsoft's
//! Azure SDK (`azure_storage_blob`), each with a deadline, and every error reduced to a
//! status, the service's error code and a redacted message.
//!
//! The SDK retries 408/429/500/502/503/504 (honouring `Retry-After`) and dropped connections
//! with exponential backoff; a request that stalls past its deadline is abandoned and tried
//! again here (Put Page, Get Page Ranges and Set Properties are idempotent).

use crate::secret::redact;
use crate::target::Target;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, StatusCode};
use azure_storage_blob::models::{
    BlobClientDownloadOptions, BlobClientGetPropertiesResultHeaders,
    BlobClientSetPropertiesOptions, BlobType, HttpRange, PageBlobClientCreateOptions,
    PageBlobClientListPageRangesOptions, PageBlobClientUploadPagesOptions,
};
use azure_storage_blob::{BlobClient, BlobClientOptions, PageBlobClient};
use futures::TryStreamExt;
use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

/// A failed call, with what the service said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op} failed: {detail}")]
pub struct ServiceError {
    /// The call (`Put Page`, `Get Page Ranges` ...).
    pub op: &'static str,
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// The service's error code (`AuthenticationFailed`, `BlobNotFound` ...).
    pub code: Option<String>,
    /// One line saying what went wrong, secrets removed.
    pub detail: String,
}

impl ServiceError {
    fn from_sdk(op: &'static str, e: &azure_core::Error) -> Self {
        let status = e.http_status().map(u16::from);
        let code = match e.kind() {
            azure_core::error::ErrorKind::HttpResponse { error_code, .. } => error_code.clone(),
            _ => None,
        };
        let detail = match (status, &code) {
            (Some(s), Some(c)) => format!("HTTP {s} {c}{}", hint(s, c)),
            (Some(s), None) => format!("HTTP {s}"),
            _ => {
                // A transport error: its text may quote the URL.
                let text = redact(&e.to_string());
                let line = text.lines().next().unwrap_or("").to_string();
                format!("no response ({line})")
            }
        };
        ServiceError {
            op,
            status,
            code,
            detail,
        }
    }

    fn timeout(op: &'static str, after: Duration) -> Self {
        ServiceError {
            op,
            status: None,
            code: None,
            detail: format!("no answer within {} s, several times", after.as_secs()),
        }
    }
}

/// What a status and code usually mean for someone uploading with a SAS.
fn hint(status: u16, code: &str) -> &'static str {
    match (status, code) {
        (403, "AuthenticationFailed") => {
            " (the SAS is malformed, expired or not yet valid: make a new one)"
        }
        (403, "AuthorizationPermissionMismatch" | "AuthorizationFailure") => {
            " (the SAS does not allow this: it needs read, create and write permission)"
        }
        (409, "InvalidBlobType") => " (the blob exists and is not a page blob)",
        (404, "ContainerNotFound") => " (create the container first)",
        _ => "",
    }
}

/// The blob's state before an upload.
#[derive(Debug, Clone)]
pub struct BlobState {
    /// Its size in bytes.
    pub size: u64,
    /// Page, block or append blob.
    pub page_blob: bool,
    /// Its name/value metadata.
    pub metadata: HashMap<String, String>,
}

/// Attempts after a stalled request.
const STALL_ATTEMPTS: u32 = 4;

/// A page blob the upload writes (cheap to clone: the SDK clients are shared).
#[derive(Clone)]
pub struct PageBlob {
    blob: std::sync::Arc<BlobClient>,
    page: std::sync::Arc<PageBlobClient>,
    /// How long a request without a body may go unanswered; one with a body gets 1/15 of
    /// this more per MiB (30 s and 2 s per MiB by default: a 4 MiB Put Page at 0.5 MB/s).
    timeout: Duration,
}

impl PageBlob {
    /// Clients for `target`, retrying throttling and dropped connections `retries` times.
    pub fn new(target: &Target, retries: u32, timeout: Duration) -> Result<Self, ServiceError> {
        let retry = RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: azure_core::time::Duration::milliseconds(500),
            max_retries: retries,
            max_total_elapsed: azure_core::time::Duration::seconds(600),
            max_delay: azure_core::time::Duration::seconds(30),
        });
        let options = BlobClientOptions {
            client_options: ClientOptions {
                retry,
                ..Default::default()
            },
            ..Default::default()
        };
        let blob = BlobClient::new(target.request_url(), None, Some(options)).map_err(|e| {
            ServiceError {
                op: "open",
                status: None,
                code: None,
                detail: redact(&e.to_string()),
            }
        })?;
        let page = std::sync::Arc::new(blob.page_blob_client());
        Ok(PageBlob {
            blob: std::sync::Arc::new(blob),
            page,
            timeout,
        })
    }

    fn deadline(&self, bytes: u64) -> Duration {
        self.timeout + self.timeout / 15 * (bytes.div_ceil(1 << 20) as u32)
    }

    /// Runs `call` with a deadline, again after a stall (at most [`STALL_ATTEMPTS`] times).
    async fn with_deadline<T, F, Fut>(
        &self,
        op: &'static str,
        bytes: u64,
        mut call: F,
    ) -> Result<T, ServiceError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = azure_core::Result<T>>,
    {
        let limit = self.deadline(bytes);
        for _ in 0..STALL_ATTEMPTS {
            match tokio::time::timeout(limit, call()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => return Err(ServiceError::from_sdk(op, &e)),
                Err(_) => continue,
            }
        }
        Err(ServiceError::timeout(op, limit))
    }

    /// The blob's size, type and metadata; `None` when it does not exist.
    pub async fn state(&self) -> Result<Option<BlobState>, ServiceError> {
        let r = self
            .with_deadline("Get Blob Properties", 0, || self.blob.get_properties(None))
            .await;
        match r {
            Ok(p) => {
                let err = |e: azure_core::Error| ServiceError::from_sdk("Get Blob Properties", &e);
                Ok(Some(BlobState {
                    size: p.content_length().map_err(err)?.unwrap_or(0),
                    page_blob: matches!(p.blob_type().map_err(err)?, Some(BlobType::PageBlob)),
                    metadata: p.metadata().map_err(err)?,
                }))
            }
            Err(e) if e.status == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates (or replaces with an empty one) the page blob, `size` bytes, with `metadata`.
    pub async fn create(
        &self,
        size: u64,
        metadata: &HashMap<String, String>,
    ) -> Result<(), ServiceError> {
        self.with_deadline("Put Blob (page blob)", 0, || {
            let options = PageBlobClientCreateOptions {
                metadata: Some(metadata.clone()),
                ..Default::default()
            };
            self.page.create(size, Some(options))
        })
        .await
        .map(|_| ())
    }

    /// The ranges of the blob that hold pages, in order, merged.
    pub async fn page_ranges(&self) -> Result<Vec<Range<u64>>, ServiceError> {
        let mut out: Vec<Range<u64>> = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let m = marker.clone();
            let page = self
                .with_deadline("Get Page Ranges", 0, || {
                    let m = m.clone();
                    async move {
                        let options = PageBlobClientListPageRangesOptions {
                            marker: m,
                            ..Default::default()
                        };
                        let mut pager = self.page.list_page_ranges(Some(options))?;
                        pager.try_next().await
                    }
                })
                .await?;
            let Some(resp) = page else { break };
            let list = resp
                .into_model()
                .map_err(|e| ServiceError::from_sdk("Get Page Ranges", &e))?;
            for r in &list.page_ranges {
                if let (Some(s), Some(e)) = (r.start, r.end) {
                    if s >= 0 && e >= s {
                        out.push(s as u64..e as u64 + 1);
                    }
                }
            }
            marker = list.next_marker.filter(|m| !m.is_empty());
            if marker.is_none() {
                break;
            }
        }
        Ok(crate::ranges::merge(out))
    }

    /// Writes `data` at `offset` (both multiples of 512, at most 4 MiB) with its MD5.
    pub async fn put_pages(
        &self,
        offset: u64,
        data: azure_core::Bytes,
        md5: [u8; 16],
    ) -> Result<(), ServiceError> {
        let len = data.len() as u64;
        self.with_deadline("Put Page", len, || {
            let options = PageBlobClientUploadPagesOptions {
                transactional_content_md5: Some(md5.to_vec()),
                ..Default::default()
            };
            self.page.upload_pages(
                data.clone().into(),
                len,
                HttpRange::new(offset, len),
                Some(options),
            )
        })
        .await
        .map(|_| ())
    }

    /// Sets the blob's `Content-MD5` property (the MD5 of the whole file).
    pub async fn set_content_md5(&self, md5: [u8; 16]) -> Result<(), ServiceError> {
        self.with_deadline("Set Blob Properties", 0, || {
            let options = BlobClientSetPropertiesOptions {
                blob_content_md5: Some(md5.to_vec()),
                ..Default::default()
            };
            self.blob.set_properties(Some(options))
        })
        .await
        .map(|_| ())
    }

    /// Reads `range` of the blob back.
    pub async fn read(&self, range: Range<u64>) -> Result<azure_core::Bytes, ServiceError> {
        let len = range.end - range.start;
        self.with_deadline("Get Blob", len, || {
            let r = range.clone();
            async move {
                let options = BlobClientDownloadOptions {
                    range: Some(HttpRange::new(r.start, r.end - r.start)),
                    ..Default::default()
                };
                self.blob
                    .download(Some(options))
                    .await?
                    .body
                    .collect()
                    .await
            }
        })
        .await
    }
}

/// True for the status of a blob that does not exist.
pub fn is_not_found(e: &ServiceError) -> bool {
    e.status == Some(u16::from(StatusCode::NotFound))
}
