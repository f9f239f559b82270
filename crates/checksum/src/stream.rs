//! The `ranges` of a manifest in bounded memory: written to a spill file or compared with a
//! manifest as the pass goes, instead of being kept in a list. A disk whose every other page
//! is non-zero has 30 million ranges per 30 GiB; these keep a pass of it within the memory of
//! the buffer pool.

use crate::manifest::{entry_line, json_object, Manifest, Mismatch, RangeEntry};
use crate::{Observer, RangeMd5};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, Write};
use std::ops::Range;

/// Turns the observer's pieces into `ranges` entries, in order: merged `[offset, length]`
/// ranges, or `[offset, length, md5_base64]` pieces with per-range MD5.
#[derive(Debug)]
struct Entries {
    with_md5: bool,
    pending: Option<Range<u64>>,
}

impl Entries {
    fn range(&mut self, r: Range<u64>, is_zero: bool, emit: &mut dyn FnMut(RangeEntry)) {
        if self.with_md5 {
            return;
        }
        if is_zero {
            self.flush(emit);
            return;
        }
        match &mut self.pending {
            Some(p) if p.end == r.start => p.end = r.end,
            _ => {
                self.flush(emit);
                self.pending = Some(r);
            }
        }
    }

    fn range_md5(&mut self, p: &RangeMd5, emit: &mut dyn FnMut(RangeEntry)) {
        if self.with_md5 {
            emit(RangeEntry::WithMd5(p.offset, p.length, p.md5_base64()));
        }
    }

    fn flush(&mut self, emit: &mut dyn FnMut(RangeEntry)) {
        if let Some(p) = self.pending.take() {
            emit(RangeEntry::Plain(p.start, p.end - p.start));
        }
    }
}

/// An [`Observer`] that writes the `ranges` entries to an anonymous temporary file as the pass
/// goes, then writes the whole manifest as JSON. Passes progress on to `inner`.
pub struct RangeSpill<'a> {
    entries: Entries,
    file: BufWriter<File>,
    count: u64,
    error: Option<io::Error>,
    inner: &'a mut dyn Observer,
}

impl<'a> RangeSpill<'a> {
    /// A spill for entries with MD5s (`with_md5`, per-range MD5 on) or merged ranges.
    pub fn new(with_md5: bool, inner: &'a mut dyn Observer) -> io::Result<Self> {
        Ok(RangeSpill {
            entries: Entries {
                with_md5,
                pending: None,
            },
            file: BufWriter::new(tempfile::tempfile()?),
            count: 0,
            error: None,
            inner,
        })
    }

    fn write(&mut self, e: RangeEntry) {
        if self.error.is_some() {
            return;
        }
        let sep = if self.count == 0 { "" } else { ",\n" };
        if let Err(err) = write!(self.file, "{sep}{}", entry_line(&e)) {
            self.error = Some(err);
        }
        self.count += 1;
    }

    /// Writes `manifest` (its own `ranges` ignored) with the spilled entries as `ranges`.
    pub fn write_json(mut self, manifest: &Manifest, out: &mut dyn Write) -> io::Result<()> {
        let mut tail = Vec::new();
        self.entries.flush(&mut |e| tail.push(e));
        for e in tail {
            self.write(e);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        let mut fields = manifest.scalar_fields();
        fields.push(("ranges", "\u{0}".into()));
        let text = json_object(&fields);
        // Everything up to the placeholder, the entries, then the rest.
        let (head, rest) = text.split_once('\u{0}').unwrap_or((&text, ""));
        out.write_all(head.as_bytes())?;
        if self.count == 0 {
            out.write_all(b"[]")?;
        } else {
            out.write_all(b"[\n")?;
            let mut reader = BufReader::new(file);
            loop {
                let buf = reader.fill_buf()?;
                if buf.is_empty() {
                    break;
                }
                out.write_all(buf)?;
                let n = buf.len();
                reader.consume(n);
            }
            out.write_all(b"\n  ]")?;
        }
        out.write_all(rest.as_bytes())
    }
}

impl Observer for RangeSpill<'_> {
    fn range(&mut self, range: Range<u64>, is_zero: bool) {
        let mut got = None;
        self.entries
            .range(range.clone(), is_zero, &mut |e| got = Some(e));
        if let Some(e) = got {
            self.write(e);
        }
        self.inner.range(range, is_zero);
    }
    fn range_md5(&mut self, piece: &RangeMd5) {
        let mut got = None;
        self.entries.range_md5(piece, &mut |e| got = Some(e));
        if let Some(e) = got {
            self.write(e);
        }
        self.inner.range_md5(piece);
    }
    fn progress(&mut self, done: u64, total: u64) {
        self.inner.progress(done, total);
    }
    fn failure(&mut self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(format!(
                "cannot keep the list of ranges in a temporary file in {}: {}",
                std::env::temp_dir().display(),
                vhdprep_disk::reason(e)
            ));
        }
        self.inner.failure()
    }
}

/// Compares `ranges` entries, as they come, with a manifest's; remembers the first that
/// differs. Used as an [`Observer`] through [`RangeCheck::observer`].
#[derive(Debug)]
pub struct RangeCheck<'m> {
    expected: &'m [RangeEntry],
    seen: usize,
    first_diff: Option<(usize, RangeEntry)>,
}

impl<'m> RangeCheck<'m> {
    /// Checks against `expected`.
    pub fn new(expected: &'m [RangeEntry]) -> Self {
        RangeCheck {
            expected,
            seen: 0,
            first_diff: None,
        }
    }

    /// The next entry of the image.
    pub fn entry(&mut self, e: RangeEntry) {
        if self.first_diff.is_none() && self.expected.get(self.seen) != Some(&e) {
            self.first_diff = Some((self.seen, e));
        }
        self.seen += 1;
    }

    /// An observer feeding this check (and passing everything on to `inner`).
    pub fn observer<'a>(&'a mut self, inner: &'a mut dyn Observer) -> CheckObserver<'a, 'm> {
        let with_md5 = self
            .expected
            .iter()
            .any(|e| matches!(e, RangeEntry::WithMd5(..)));
        CheckObserver {
            entries: Entries {
                with_md5,
                pending: None,
            },
            check: self,
            inner,
        }
    }

    /// The mismatch, if the image's entries differ from the manifest's.
    pub fn mismatch(&self) -> Option<Mismatch> {
        let at = match &self.first_diff {
            Some((i, _)) => *i,
            None if self.seen == self.expected.len() => return None,
            None => self.seen.min(self.expected.len()),
        };
        let show = |v: Option<&RangeEntry>| v.map_or("(none)".to_string(), |r| r.to_string());
        let actual = self.first_diff.as_ref().map(|(_, e)| e);
        Some(Mismatch {
            key: "ranges",
            expected: format!(
                "{} entries, entry {at} {}",
                self.expected.len(),
                show(self.expected.get(at))
            ),
            actual: format!("{} entries, entry {at} {}", self.seen, show(actual)),
        })
    }
}

/// The observer of a [`RangeCheck`]; its last range is checked when it is dropped.
pub struct CheckObserver<'a, 'm> {
    entries: Entries,
    check: &'a mut RangeCheck<'m>,
    inner: &'a mut dyn Observer,
}

impl CheckObserver<'_, '_> {
    fn finish(&mut self) {
        let check = &mut *self.check;
        self.entries.flush(&mut |e| check.entry(e));
    }
}

impl Drop for CheckObserver<'_, '_> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Observer for CheckObserver<'_, '_> {
    fn range(&mut self, range: Range<u64>, is_zero: bool) {
        let check = &mut *self.check;
        self.entries
            .range(range.clone(), is_zero, &mut |e| check.entry(e));
        self.inner.range(range, is_zero);
    }
    fn range_md5(&mut self, piece: &RangeMd5) {
        let check = &mut *self.check;
        self.entries.range_md5(piece, &mut |e| check.entry(e));
        self.inner.range_md5(piece);
    }
    fn progress(&mut self, done: u64, total: u64) {
        self.inner.progress(done, total);
    }
    fn failure(&mut self) -> Option<String> {
        self.inner.failure()
    }
}
