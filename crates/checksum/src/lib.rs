//! Fused checksums for vhdprep: every hash and the upload map in one read of the data.
//!
//! Before an upload people want the MD5 (Azure's `Content-MD5`), a SHA-256 for their
//! manifest, a CRC32, perhaps a BLAKE3, and the map of non-zero 512-byte pages (page-blob
//! uploads skip zero pages). [`checksum_path`] computes any subset of them in one pass:
//!
//! - MD5 and SHA-256 each run on a thread of their own over the buffers in order; the pass
//!   goes at the speed of the slowest of them.
//! - CRC32 (IEEE, as zlib) and the zero scan run in parallel on rayon, piece by piece while the
//!   piece is in cache; CRC32 pieces join with [`crc32fast::Hasher::combine`]. BLAKE3 hands its
//!   buffers to rayon too.
//! - Holes (`SEEK_DATA`/`SEEK_HOLE`, unallocated blocks of a dynamic VHD) are not read; they
//!   count as zeros for every hash and for the map. A CRC32 over a hole costs O(log n).
//! - A bounded pool of page-aligned buffers keeps memory under [`MEMORY_BOUND`] whatever the
//!   size of the input.
//! - With [`Options::range_md5`], the MD5 of every non-zero piece (cut at 4 MiB, the most a Put
//!   Page request carries) is computed in parallel as the pass goes.
//!
//! An uploader can follow the pass through an [`Observer`]: it sees every `(range, is_zero)`
//! in order as soon as it is known, and the progress.
//!
//! ```no_run
//! use vhdprep_checksum::{checksum_path, Options, OnRange, Scope};
//! let mut upload = Vec::new();
//! let mut obs = OnRange(|r: std::ops::Range<u64>, zero: bool| if !zero { upload.push(r) });
//! let d = checksum_path("disk.vhd".as_ref(), Scope::Blob, &Options::default(), &mut obs)?;
//! println!("{} {}", d.md5_base64().unwrap(), upload.len());
//! # Ok::<(), vhdprep_checksum::ChecksumError>(())
//! ```
#![forbid(unsafe_code)]

pub mod crc;
mod engine;
mod error;
pub mod extents;
pub mod manifest;
pub mod md5;
pub mod pool;
mod range_md5;
mod sequential;
mod stream;
pub mod zero_map;

pub use engine::{CHUNK, MEMORY_BOUND, PIECE, POOL_BUFFERS};
pub use error::ChecksumError;
pub use manifest::{Manifest, Mismatch, RangeEntry};
pub use range_md5::RangeMd5;
pub use stream::{RangeCheck, RangeSpill};
pub use zero_map::{ZeroMap, PAGE, PUT_PAGE_MAX};

use base64::Engine as _;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use vhdprep_disk::{DiskImage, OpenOptions, ReadAt};

/// Which values a pass computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// MD5 (hex and the base64 `Content-MD5` form).
    pub md5: bool,
    /// SHA-256.
    pub sha256: bool,
    /// CRC32, IEEE polynomial (zlib's `crc32`).
    pub crc32: bool,
    /// BLAKE3 (256-bit).
    pub blake3: bool,
    /// The merged non-zero ranges at 512-byte granularity and their byte count.
    pub zero_map: bool,
    /// The MD5 of every non-zero piece, cut at 4 MiB (implies the zero map).
    pub range_md5: bool,
    /// Keep the ranges and the per-range MD5s in the [`Digests`]. Off, they only reach the
    /// [`Observer`] as the pass goes (the counts and `nonzero_bytes` are still there), and
    /// memory stays bounded however many ranges the disk has: 16 bytes per kept range, 32 per
    /// kept MD5 otherwise.
    pub keep_ranges: bool,
}

impl Default for Options {
    /// SHA-256, MD5, CRC32 and the zero map: the CLI's default.
    fn default() -> Self {
        Options {
            md5: true,
            sha256: true,
            crc32: true,
            blake3: false,
            zero_map: true,
            range_md5: false,
            keep_ranges: true,
        }
    }
}

impl Options {
    /// Nothing selected (ranges kept if the map is turned on); set the fields wanted.
    pub fn none() -> Self {
        Options {
            md5: false,
            sha256: false,
            crc32: false,
            blake3: false,
            zero_map: false,
            range_md5: false,
            keep_ranges: true,
        }
    }

    /// Everything.
    pub fn all() -> Self {
        Options {
            md5: true,
            sha256: true,
            crc32: true,
            blake3: true,
            zero_map: true,
            range_md5: true,
            keep_ranges: true,
        }
    }

    /// True when no value is selected.
    pub fn is_empty(&self) -> bool {
        !(self.md5 || self.sha256 || self.crc32 || self.blake3 || self.zero_map || self.range_md5)
    }
}

/// What is hashed: the file as uploaded, or the virtual disk inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// The whole file, footer included: what a page blob holds after upload.
    #[default]
    Blob,
    /// The virtual disk only, through the disk layer (a dynamic VHD is expanded, its
    /// unallocated blocks read as zeros; the footer is left out).
    Disk,
}

/// Follows a pass. Both methods are called on the thread that started the pass.
pub trait Observer {
    /// The next piece of the input, in order, once it is known: pieces are contiguous and
    /// cover `[0, size)`. Zero pieces are maximal; non-zero pieces never cross a multiple of
    /// 4 MiB (each fits one Put Page request), so consecutive non-zero pieces may touch.
    /// Called only when the zero map is on.
    fn range(&mut self, range: Range<u64>, is_zero: bool) {
        let _ = (range, is_zero);
    }

    /// The MD5 of the next non-zero piece, in order (only with [`Options::range_md5`]). It
    /// comes shortly after [`Observer::range`] reported the piece: an uploader can send each
    /// Put Page request with its `Content-MD5` as the pass goes.
    fn range_md5(&mut self, piece: &RangeMd5) {
        let _ = piece;
    }

    /// `done` of `total` bytes have gone through every requested hash.
    fn progress(&mut self, done: u64, total: u64) {
        let _ = (done, total);
    }

    /// Why the observer cannot go on, once its own work has failed (an uploader whose
    /// connection broke, a spill file on a full disk). Asked before every buffer: `Some` ends
    /// the pass with [`ChecksumError::Observer`] instead of reading the rest of the input.
    fn failure(&mut self) -> Option<String> {
        None
    }
}

/// Observes nothing.
impl Observer for () {}

/// An [`Observer`] calling a closure with each `(range, is_zero)`.
pub struct OnRange<F>(pub F);

impl<F: FnMut(Range<u64>, bool)> Observer for OnRange<F> {
    fn range(&mut self, range: Range<u64>, is_zero: bool) {
        (self.0)(range, is_zero)
    }
}

/// An [`Observer`] calling a closure with each `(done, total)`.
pub struct OnProgress<F>(pub F);

impl<F: FnMut(u64, u64)> Observer for OnProgress<F> {
    fn progress(&mut self, done: u64, total: u64) {
        (self.0)(done, total)
    }
}

/// The values of one pass; each is `Some` when it was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Bytes hashed (the file length in blob scope, the virtual size in disk scope).
    pub size: u64,
    /// MD5.
    pub md5: Option<[u8; 16]>,
    /// SHA-256.
    pub sha256: Option<[u8; 32]>,
    /// CRC32 (IEEE).
    pub crc32: Option<u32>,
    /// BLAKE3.
    pub blake3: Option<[u8; 32]>,
    /// The non-zero ranges (only counted, not listed, without [`Options::keep_ranges`]).
    pub zero_map: Option<ZeroMap>,
    /// The MD5 of each non-zero piece, in order (`None` without [`Options::keep_ranges`]).
    pub range_md5: Option<Vec<RangeMd5>>,
    /// Bytes actually read (holes are not).
    pub bytes_read: u64,
}

impl Digests {
    /// MD5 in lowercase hex, as `md5sum` prints it.
    pub fn md5_hex(&self) -> Option<String> {
        self.md5.as_ref().map(|d| hex(d))
    }
    /// MD5 in base64, as Azure's `Content-MD5` carries it.
    pub fn md5_base64(&self) -> Option<String> {
        self.md5.as_ref().map(|d| base64(d))
    }
    /// SHA-256 in lowercase hex, as `sha256sum` prints it.
    pub fn sha256_hex(&self) -> Option<String> {
        self.sha256.as_ref().map(|d| hex(d))
    }
    /// CRC32 as 8 lowercase hex digits.
    pub fn crc32_hex(&self) -> Option<String> {
        self.crc32.map(|c| format!("{c:08x}"))
    }
    /// BLAKE3 in lowercase hex, as `b3sum` prints it.
    pub fn blake3_hex(&self) -> Option<String> {
        self.blake3.as_ref().map(|d| hex(d))
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Standard base64 (with padding) of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Computes the values `opts` asks for over `reader` in one pass; `name` is the file that
/// errors name.
pub fn checksum(
    reader: &dyn ReadAt,
    name: &Path,
    opts: &Options,
    observer: &mut dyn Observer,
) -> Result<Digests, ChecksumError> {
    engine::run(reader, name, opts, observer)
}

/// Opens `path` and computes the values `opts` asks for over the given scope. Blob scope
/// reads any file (even an empty one); disk scope needs an image whose virtual disk vhdprep
/// reads (raw, fixed or dynamic VHD).
pub fn checksum_path(
    path: &Path,
    scope: Scope,
    opts: &Options,
    observer: &mut dyn Observer,
) -> Result<Digests, ChecksumError> {
    checksum_path_with(path, scope, &OpenOptions::default(), opts, observer)
}

/// [`checksum_path`] with the parents of a differencing disk or backing chain given
/// (`--parent`; disk scope only).
pub fn checksum_path_with(
    path: &Path,
    scope: Scope,
    open: &OpenOptions,
    opts: &Options,
    observer: &mut dyn Observer,
) -> Result<Digests, ChecksumError> {
    let reader: Arc<dyn ReadAt> = match scope {
        Scope::Blob => Arc::new(vhdprep_disk::open_file(path)?),
        Scope::Disk => DiskImage::open_with(path, open)?
            .disk()
            .map_err(ChecksumError::Disk)?,
    };
    let before = FileState::of(path);
    let digests = checksum(&*reader, path, opts, observer)?;
    let after = FileState::of(path);
    match (before, after) {
        (Some(b), Some(a)) if b != a => Err(ChecksumError::Changed {
            path: path.to_owned(),
            before: b.len,
            after: a.len,
        }),
        _ => Ok(digests),
    }
}

/// Length and modification time of a file: enough to notice another process writing to it
/// during a pass (a shrink is also caught by the reads themselves; growth and rewrites are not).
#[derive(PartialEq, Eq)]
struct FileState {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileState {
    fn of(path: &Path) -> Option<FileState> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileState {
            len: m.len(),
            modified: m.modified().ok(),
        })
    }
}

/// Recomputes what `manifest` records over `path` in the given scope and returns every value
/// that differs (empty when the image matches). The ranges are compared as the pass goes, so
/// memory does not grow with the image's map.
pub fn verify_path(
    manifest: &Manifest,
    path: &Path,
    scope: Scope,
    observer: &mut dyn Observer,
) -> Result<Vec<Mismatch>, ChecksumError> {
    verify_path_with(manifest, path, scope, &OpenOptions::default(), observer)
}

/// [`verify_path`] with the parents of a differencing disk or backing chain given.
pub fn verify_path_with(
    manifest: &Manifest,
    path: &Path,
    scope: Scope,
    open: &OpenOptions,
    observer: &mut dyn Observer,
) -> Result<Vec<Mismatch>, ChecksumError> {
    let expected = manifest.ranges.as_deref().unwrap_or(&[]);
    let mut check = RangeCheck::new(expected);
    let digests = {
        let mut obs = check.observer(observer);
        checksum_path_with(path, scope, open, &manifest.options(), &mut obs)?
    };
    let mut out = manifest.compare_values(&Manifest::from_digests(&digests));
    if manifest.ranges.is_some() {
        out.extend(check.mismatch());
    }
    Ok(out)
}
