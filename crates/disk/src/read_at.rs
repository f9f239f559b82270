//! Positional reads: the one primitive every vhdprep layer reads through.
//!
//! [`ReadAt`] is `pread`: it takes `&self`, so one open disk can be read from many threads at
//! once without a shared cursor. It also knows the length of what it reads and can say where
//! data may be ([`ReadAt::next_data`]), so that copies and hashes skip holes and unallocated
//! blocks without reading them.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// How many bytes of a `buf_len`-byte read at `offset` lie inside a disk of `len` bytes (0 at
/// or past the end): the clamp every [`ReadAt::read_at`] of a virtual disk starts with.
pub fn bytes_within(buf_len: usize, offset: u64, len: u64) -> usize {
    if offset >= len {
        return 0;
    }
    buf_len.min(usize::try_from(len - offset).unwrap_or(usize::MAX))
}

/// Something that can be read at any offset without a cursor, and has a fixed length.
pub trait ReadAt: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`. Returns how many were read; 0 only at or past
    /// the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Length in bytes.
    fn len(&self) -> u64;

    /// True when the length is zero.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from `offset`, or fails with `UnexpectedEof` if the end comes first.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("read past the end at offset {offset}"),
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The first range at or after `offset` that may hold non-zero bytes, or `None` when
    /// everything from `offset` to the end reads as zeros. The default says "all of it may be
    /// data"; files answer with `SEEK_DATA`/`SEEK_HOLE`, dynamic VHDs with their block table.
    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        let len = self.len();
        Ok((offset < len).then_some(offset..len))
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        (**self).next_data(offset)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        (**self).next_data(offset)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Box<T> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        (**self).next_data(offset)
    }
}

/// In-memory bytes, for tests and small images.
impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        if start >= <[u8]>::len(self) {
            return Ok(0);
        }
        let n = buf.len().min(<[u8]>::len(self) - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.as_slice().read_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
}

/// A regular file read with `pread`, its length taken once at open.
#[derive(Debug)]
pub struct FileReader {
    file: File,
    len: u64,
}

impl FileReader {
    /// Wraps an open file; its current length becomes the length of the reader.
    pub fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileReader { file, len })
    }

    /// Wraps an open file whose length is already known (block devices report 0 in stat).
    pub fn with_len(file: File, len: u64) -> Self {
        FileReader { file, len }
    }

    /// The underlying file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl ReadAt for FileReader {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf
            .len()
            .min(usize::try_from(self.len - offset).unwrap_or(usize::MAX));
        self.file.read_at(&mut buf[..n], offset)
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        file_next_data(&self.file, offset, self.len)
    }
}

/// `SEEK_DATA`/`SEEK_HOLE` on a file, clamped to `len`. Filesystems without hole support
/// report the whole rest as data, which is correct, only slower.
pub(crate) fn file_next_data(file: &File, offset: u64, len: u64) -> io::Result<Option<Range<u64>>> {
    use rustix::fs::{seek, SeekFrom};
    if offset >= len {
        return Ok(None);
    }
    let start = match seek(file, SeekFrom::Data(offset)) {
        Ok(s) => s,
        Err(rustix::io::Errno::NXIO) => return no_more_data(file, len).map(|()| None),
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::OPNOTSUPP) => {
            return Ok(Some(offset..len))
        }
        Err(e) => return Err(e.into()),
    };
    if start >= len {
        return Ok(None);
    }
    let end = match seek(file, SeekFrom::Hole(start)) {
        Ok(e) => e.min(len),
        Err(rustix::io::Errno::NXIO) => len,
        Err(e) => return Err(e.into()),
    };
    Ok(Some(start..end.max(start + 1)))
}

/// `SEEK_DATA` found no data after some offset: true of a trailing hole, and of a file that
/// shrank below `len` since it was opened. The second would read as zeros where data was
/// (a wrong checksum, a wrong copy), so it is an error, like a read past the new end.
fn no_more_data(file: &File, len: u64) -> io::Result<()> {
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the file shrank from {len} to {} bytes while it was being read",
                meta.len()
            ),
        ));
    }
    Ok(())
}

/// A window `[start, start + len)` of another reader, seen as if it began at 0.
///
/// Partitions, the data area of a fixed VHD and logical volumes are all slices.
#[derive(Debug, Clone)]
pub struct Slice<R> {
    inner: R,
    start: u64,
    len: u64,
}

impl<R: ReadAt> Slice<R> {
    /// The bytes `[start, start + len)` of `inner`. The window may reach past the end of
    /// `inner`; reads there return end-of-file.
    pub fn new(inner: R, start: u64, len: u64) -> Self {
        Slice { inner, start, len }
    }

    /// Where the window starts in the inner reader.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The reader the window looks into.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R: ReadAt> ReadAt for Slice<R> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf
            .len()
            .min(usize::try_from(self.len - offset).unwrap_or(usize::MAX));
        let Some(abs) = self.start.checked_add(offset) else {
            return Ok(0);
        };
        self.inner.read_at(&mut buf[..n], abs)
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        if offset >= self.len {
            return Ok(None);
        }
        let Some(abs) = self.start.checked_add(offset) else {
            return Ok(None);
        };
        Ok(self.inner.next_data(abs)?.and_then(|r| {
            let s = r.start.saturating_sub(self.start).max(offset);
            let e = r.end.saturating_sub(self.start).min(self.len);
            (s < e).then_some(s..e)
        }))
    }
}

/// Reads of a shorter reader padded with zeros up to `len` (the MiB padding of a conversion).
#[derive(Debug, Clone)]
pub struct ZeroPadded<R> {
    inner: R,
    len: u64,
}

impl<R: ReadAt> ZeroPadded<R> {
    /// `inner` followed by zeros up to `len` bytes in all (`len` is at least `inner.len()`).
    pub fn new(inner: R, len: u64) -> Self {
        let len = len.max(inner.len());
        ZeroPadded { inner, len }
    }
}

impl<R: ReadAt> ReadAt for ZeroPadded<R> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let inner_len = self.inner.len();
        if offset < inner_len {
            return self.inner.read_at(buf, offset);
        }
        let n = buf
            .len()
            .min(usize::try_from(self.len - offset).unwrap_or(usize::MAX));
        buf[..n].fill(0);
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        self.inner.next_data(offset)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn bytes_within_clamps_at_the_end_and_never_overflows() {
        assert_eq!(bytes_within(10, 0, 100), 10);
        assert_eq!(bytes_within(10, 95, 100), 5);
        assert_eq!(bytes_within(10, 100, 100), 0);
        assert_eq!(bytes_within(10, u64::MAX, 100), 0);
        assert_eq!(bytes_within(usize::MAX, 0, u64::MAX), usize::MAX);
        assert_eq!(bytes_within(0, 5, 100), 0);
    }

    use super::*;
    use std::io::Write;

    #[test]
    fn slice_reads_its_window_only() {
        let data: Vec<u8> = (0..100u8).collect();
        let s = Slice::new(&data, 10, 20);
        let mut buf = [0u8; 30];
        assert_eq!(s.read_at(&mut buf, 0).unwrap(), 20);
        assert_eq!(buf[0], 10);
        assert_eq!(buf[19], 29);
        assert_eq!(s.read_at(&mut buf, 20).unwrap(), 0);
        let mut two = [0u8; 2];
        s.read_exact_at(&mut two, 18).unwrap();
        assert_eq!(two, [28, 29]);
        assert_eq!(
            s.read_exact_at(&mut two, 19).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn slice_past_the_inner_end_reads_eof() {
        let data = vec![1u8; 10];
        let s = Slice::new(&data, 8, 100);
        let mut buf = [0u8; 8];
        assert_eq!(s.read_at(&mut buf, 0).unwrap(), 2);
        assert_eq!(s.read_at(&mut buf, 2).unwrap(), 0);
        let huge = Slice::new(&data, u64::MAX - 1, 100);
        assert_eq!(huge.read_at(&mut buf, 50).unwrap(), 0);
    }

    #[test]
    fn zero_padded_fills_the_tail() {
        let data = vec![7u8; 5];
        let p = ZeroPadded::new(&data, 8);
        let mut buf = [9u8; 8];
        p.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(buf, [7, 7, 7, 7, 7, 0, 0, 0]);
        assert_eq!(p.len(), 8);
    }

    #[test]
    fn file_next_data_skips_holes() {
        let mut f = tempfile::tempfile().unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(&[1u8; 4096], 32 << 20).unwrap();
        f.flush().unwrap();
        let r = FileReader::new(f).unwrap();
        let first = r.next_data(0).unwrap().expect("one data range");
        assert!(first.start <= 32 << 20 && first.end > 32 << 20, "{first:?}");
        // After the data, only a hole remains (or, without hole support, the rest as data).
        if let Some(rest) = r.next_data(first.end).unwrap() {
            assert_eq!(rest.end, 64 << 20);
        }
        assert_eq!(r.next_data(64 << 20).unwrap(), None);
    }

    #[test]
    fn file_next_data_sees_a_file_that_shrank() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(&[1u8; 4096], 0).unwrap();
        f.write_all_at(&[1u8; 4096], 48 << 20).unwrap();
        let r = FileReader::new(f.try_clone().unwrap()).unwrap();
        // Another process cuts the file below the data at 48 MiB: asking for data past the
        // new end is an error, not "only holes from here on".
        f.set_len(16 << 20).unwrap();
        let e = r.next_data(8 << 20).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            e.to_string().contains("shrank from 67108864 to 16777216"),
            "{e}"
        );
        // A trailing hole in a file of unchanged length is still just the end of the data.
        let r = FileReader::new(f).unwrap();
        assert_eq!(r.next_data(8 << 20).unwrap(), None);
    }

    #[test]
    fn file_reader_stops_at_its_length() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello").unwrap();
        let r = FileReader::new(f).unwrap();
        let mut buf = [0u8; 10];
        assert_eq!(r.read_at(&mut buf, 0).unwrap(), 5);
        assert_eq!(r.read_at(&mut buf, 5).unwrap(), 0);
    }
}
