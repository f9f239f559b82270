//! `vhdprep upload`: a checked fixed VHD to an Azure page blob or a managed disk's upload URL,
//! sending only its non-zero pages, resumable, and verified at the end.
//!
//! - [`target`]: the destination (a SAS URL, a managed disk's upload URL, or a connection
//!   string signed here into a SAS), never shown with its secret.
//! - [`session`]: the upload: create or resume the blob, send the pages the checksum pass
//!   finds, set `Content-MD5`, check the service's page ranges (and optionally read it back).
//! - [`service`]: the page-blob calls over Microsoft's Azure SDK, with deadlines and retries.
//! - [`shared_key`], [`secret`], [`ranges`]: SAS signing, redaction, byte-range arithmetic.
//!
//! The rest of vhdprep is synchronous; the upload runs its own small tokio runtime inside
//! [`upload`].
#![forbid(unsafe_code)]

pub mod error;
pub mod ranges;
pub mod secret;
pub mod service;
pub mod session;
pub mod shared_key;
pub mod target;

pub use error::UploadError;
pub use secret::Secret;
pub use session::{upload, Progress, ProgressState, UploadOptions, UploadReport};
pub use target::{Target, TargetKind};
