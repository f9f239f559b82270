//! Why an upload stopped. Every message is one line, names the file or the (SAS-less)
//! destination, and holds no secret.

use crate::service::ServiceError;
use crate::target::TargetError;
use std::ops::Range;
use std::path::PathBuf;

/// An upload that did not complete, or completed but does not match.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The image cannot be read.
    #[error("{path}: {why}")]
    Image {
        /// The image.
        path: PathBuf,
        /// What failed.
        why: String,
    },
    /// The destination cannot be used.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A call to the service failed (after its retries).
    #[error("{target}: {source}")]
    Service {
        /// Where to (no SAS).
        target: String,
        /// The call and the service's answer.
        source: ServiceError,
    },
    /// The blob is not one this upload may write.
    #[error("{target}: {why}")]
    Refused {
        /// Where to (no SAS).
        target: String,
        /// Why.
        why: String,
    },
    /// After the upload the service lacks data the image has.
    #[error("{target}: the blob lacks bytes {}..{} that the image holds (data not uploaded); run the same command again", .missing.start, .missing.end)]
    Incomplete {
        /// Where to (no SAS).
        target: String,
        /// The first missing range.
        missing: Range<u64>,
    },
    /// `--verify-download` read back other bytes than the image holds.
    #[error("{target}: bytes {}..{} read back differ from the image", .range.start, .range.end)]
    Differs {
        /// Where to (no SAS).
        target: String,
        /// The first differing range (at most 4 MiB).
        range: Range<u64>,
    },
}

impl UploadError {
    /// True when the upload ran but its result does not match the image (exit status 1);
    /// every other error is trouble (exit status 2).
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            UploadError::Incomplete { .. } | UploadError::Differs { .. }
        )
    }
}
