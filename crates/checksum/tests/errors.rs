//! Failures end the pass with an error naming the file and the offset, never a panic or a hang.

use std::io;
use std::ops::Range;
use std::path::Path;
use vhdprep_checksum::{checksum, checksum_path, ChecksumError, Options, Scope};
use vhdprep_disk::ReadAt;

/// Reads zeros, but fails (or ends early) at `bad`.
struct Faulty {
    len: u64,
    bad: u64,
    eof: bool,
}

impl ReadAt for Faulty {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let end = offset + buf.len() as u64;
        if offset <= self.bad && self.bad < end {
            if offset == self.bad {
                return if self.eof {
                    Ok(0)
                } else {
                    Err(io::Error::other("media error"))
                };
            }
            let n = (self.bad - offset) as usize;
            buf[..n].fill(1);
            return Ok(n);
        }
        let n = buf.len().min(self.len.saturating_sub(offset) as usize);
        buf[..n].fill(1);
        Ok(n)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

#[test]
fn a_read_error_names_the_file_and_offset() {
    for opts in [Options::all(), Options::default(), Options::none()] {
        let r = Faulty {
            len: 50 << 20,
            bad: (21 << 20) + 4096,
            eof: false,
        };
        let e = checksum(&r, Path::new("disk.raw"), &opts, &mut ()).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ChecksumError::Read { .. }), "{text}");
        assert!(
            text.starts_with("disk.raw: cannot read at offset "),
            "{text}"
        );
        assert!(text.contains("media error"), "{text}");
    }
}

#[test]
fn a_file_that_shrinks_is_an_error_not_a_wrong_hash() {
    let r = Faulty {
        len: 9 << 20,
        bad: 5 << 20,
        eof: true,
    };
    let e = checksum(&r, Path::new("img"), &Options::all(), &mut ()).unwrap_err();
    assert!(e.to_string().contains("shrank"), "{e}");
}

/// Hints that lie (data claimed in odd places, ranges going backwards) change nothing.
struct Liar(Vec<u8>);

impl ReadAt for Liar {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        // Claims data only in a 3-byte window one page on, going backwards sometimes.
        Ok(Some(offset.saturating_sub(700)..offset + 515))
    }
}

#[test]
fn lying_hole_hints_do_not_change_the_values() {
    let mut v = vec![0u8; (5 << 20) + 333];
    for (i, b) in v.iter_mut().enumerate().step_by(4099) {
        *b = i as u8 | 1;
    }
    let truth = checksum(&v, Path::new("x"), &Options::all(), &mut ()).unwrap();
    let lied = checksum(&Liar(v), Path::new("x"), &Options::all(), &mut ()).unwrap();
    assert_eq!(truth.md5, lied.md5);
    assert_eq!(truth.crc32, lied.crc32);
    assert_eq!(truth.zero_map, lied.zero_map);
    assert_eq!(truth.range_md5, lied.range_md5);
}

#[test]
fn missing_files_and_unreadable_disks_are_errors() {
    let e = checksum_path(
        Path::new("/nonexistent/x.vhd"),
        Scope::Blob,
        &Options::default(),
        &mut (),
    )
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.vhd"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let e = checksum_path(dir.path(), Scope::Blob, &Options::default(), &mut ()).unwrap_err();
    assert!(e.to_string().contains("directory"), "{e}");
    // Disk scope needs a disk image: an empty file is not one, but its blob hashes fine.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert!(checksum_path(&empty, Scope::Disk, &Options::default(), &mut ()).is_err());
    let d = checksum_path(&empty, Scope::Blob, &Options::default(), &mut ()).unwrap();
    assert_eq!(d.md5_hex().unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(d.md5_base64().unwrap(), "1B2M2Y8AsgTpgAmY7PhCfg==");
    assert_eq!(d.crc32_hex().unwrap(), "00000000");
}

/// Runs `change` on the file once, at the first progress report of the pass.
struct ChangeMidway<F: FnMut()>(Option<F>);

impl<F: FnMut()> vhdprep_checksum::Observer for ChangeMidway<F> {
    fn progress(&mut self, done: u64, _total: u64) {
        if done > 0 {
            if let Some(mut change) = self.0.take() {
                change();
            }
        }
    }
}

#[test]
fn a_file_that_grows_or_is_rewritten_during_the_pass_is_an_error() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let data: Vec<u8> = (0..(24u32 << 20)).map(|i| (i % 251) as u8).collect();
    // Grown: the hashes would cover a prefix of what is now there.
    std::fs::write(&path, &data).unwrap();
    let mut grow = ChangeMidway(Some(|| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[7u8; 4096]).unwrap();
    }));
    let e = checksum_path(&path, Scope::Blob, &Options::all(), &mut grow).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ChecksumError::Changed { .. }), "{text}");
    assert!(text.contains("changed while it was being read"), "{text}");
    assert!(
        text.contains(&format!("length {} bytes at the start", data.len())),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);
    // Rewritten in place, same length: caught by the modification time.
    std::fs::write(&path, &data).unwrap();
    let old = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut rewrite = ChangeMidway(Some(|| {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"tampered", 0).unwrap();
        // Coarse timestamps could hide the write; make sure the time moves.
        f.set_modified(old + std::time::Duration::from_secs(1))
            .unwrap();
    }));
    let e = checksum_path(&path, Scope::Blob, &Options::all(), &mut rewrite).unwrap_err();
    assert!(e.to_string().contains("and modified"), "{e}");
    // Left alone, the same file hashes fine.
    std::fs::write(&path, &data).unwrap();
    checksum_path(&path, Scope::Blob, &Options::all(), &mut ()).unwrap();
}

/// Runs `f` on a thread and waits at most 60 s: a pass that hangs fails the test instead of
/// hanging the suite.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the pass did not end: a stage waits on one that has stopped")
}

/// Every buffer of the pool together.
const POOL_BYTES: u64 = (vhdprep_checksum::POOL_BUFFERS * vhdprep_checksum::CHUNK) as u64;

/// Non-zero data whose reads fail with EIO from `bad` on; counts the bytes asked for.
struct Eio {
    len: u64,
    bad: u64,
    asked: std::sync::atomic::AtomicU64,
}

impl ReadAt for Eio {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.asked
            .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::SeqCst);
        if offset + buf.len() as u64 > self.bad {
            return Err(io::Error::from_raw_os_error(5));
        }
        let n = buf.len().min(self.len.saturating_sub(offset) as usize);
        buf[..n].fill(0x33);
        Ok(n)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

#[test]
fn a_read_error_past_the_buffer_pool_ends_the_pass_with_the_first_error() {
    for opts in [Options::all(), Options::default()] {
        let bad = 2 * POOL_BYTES + 3 * 4096;
        let (e, asked) = within_a_minute(move || {
            let r = Eio {
                len: 4 * POOL_BYTES,
                bad,
                asked: Default::default(),
            };
            let e = checksum(&r, Path::new("disk.raw"), &opts, &mut ()).unwrap_err();
            (e, r.asked.into_inner())
        });
        let text = e.to_string();
        assert!(matches!(e, ChecksumError::Read { .. }), "{text}");
        // The failing 256 KiB piece, named with its offset and the system's reason.
        let piece = bad / vhdprep_checksum::PIECE as u64 * vhdprep_checksum::PIECE as u64;
        assert!(
            text.starts_with(&format!("disk.raw: cannot read at offset {piece}: ")),
            "{text}"
        );
        assert!(text.contains("Input/output error"), "{text}");
        // Reading stopped at the failing buffer.
        assert!(
            asked <= bad + vhdprep_checksum::CHUNK as u64,
            "{asked} bytes asked for"
        );
    }
}

/// An observer whose own work fails after `after` bytes.
struct Breaks {
    after: u64,
    seen: u64,
}

impl vhdprep_checksum::Observer for Breaks {
    fn range(&mut self, range: Range<u64>, _: bool) {
        self.seen = self.seen.max(range.end);
    }
    fn failure(&mut self) -> Option<String> {
        (self.seen >= self.after).then(|| "the upload connection broke".to_string())
    }
}

#[test]
fn an_observer_that_cannot_go_on_ends_the_pass() {
    let (e, asked) = within_a_minute(|| {
        let r = Eio {
            len: 4 * POOL_BYTES,
            bad: u64::MAX,
            asked: Default::default(),
        };
        let mut obs = Breaks {
            after: POOL_BYTES + 1,
            seen: 0,
        };
        let e = checksum(&r, Path::new("disk.raw"), &Options::all(), &mut obs).unwrap_err();
        (e, r.asked.into_inner())
    });
    assert!(matches!(e, ChecksumError::Observer { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "disk.raw: the pass stopped: the upload connection broke"
    );
    assert!(
        asked <= POOL_BYTES + 2 * vhdprep_checksum::CHUNK as u64,
        "{asked} bytes read after the observer failed"
    );
}
