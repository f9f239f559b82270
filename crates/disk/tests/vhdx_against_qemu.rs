//! The VHDX reader against files written by qemu-img and qemu-io, with libvhdi (vhdiinfo,
//! vhdimount) as the second reader: every subformat and option the issue names, 4096-byte
//! logical sectors, a dirty log left by a qemu-io process killed mid-write, and a
//! differencing disk built from the specification.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use vhdprep_disk::vhdx::{Vhdx, VhdxDisk, VhdxError, VhdxHeader};
use vhdprep_disk::{FileReader, ReadAt, SharedDisk};

#[path = "support/vhdx_chain.rs"]
mod vhdx_chain;

const MIB: u64 = 1 << 20;

/// Runs a peer tool; panics naming the Debian package when it is missing.
fn tool(name: &str, package: &str, args: &[&str]) -> Output {
    match Command::new(name).args(args).output() {
        Ok(o) => o,
        Err(e) => panic!(
            "required tool `{name}` could not be run ({e}); install Debian package `{package}` (scripts/test.sh does)"
        ),
    }
}

/// Runs a tool and asserts success; returns stdout.
fn ok(name: &str, package: &str, args: &[&str]) -> String {
    let out = tool(name, package, args);
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn qemu_img(args: &[&str]) -> String {
    ok("qemu-img", "qemu-utils", args)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Deterministic pseudo-random bytes.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A raw source of `len` bytes: per MiB, data, hole, written zeros, a 4 KiB island of data,
/// hole; and data in the last sector.
fn make_source(path: &Path, len: u64) -> Vec<u8> {
    let mut v = vec![0u8; len as usize];
    for mib in 0..len / MIB {
        let at = (mib * MIB) as usize;
        match mib % 5 {
            0 => v[at..at + MIB as usize].copy_from_slice(&pattern(mib, MIB as usize)),
            3 => v[at + 8192..at + 12288].copy_from_slice(&pattern(mib + 100, 4096)),
            _ => {}
        }
    }
    let n = v.len();
    v[n - 512..].copy_from_slice(&pattern(7, 512));
    // Written as a sparse file: holes where the MiB is a hole, real zeros where it is "2".
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
    use std::os::unix::fs::FileExt;
    for mib in 0..len.div_ceil(MIB) {
        let at = mib * MIB;
        let end = (at + MIB).min(len);
        if mib % 5 != 1 && mib % 5 != 4 {
            f.write_all_at(&v[at as usize..end as usize], at).unwrap();
        }
    }
    f.write_all_at(&v[n - 512..], len - 512).unwrap();
    v
}

fn open_file(path: &Path) -> SharedDisk {
    Arc::new(FileReader::new(std::fs::File::open(path).unwrap()).unwrap())
}

fn header(path: &Path) -> Result<VhdxHeader, VhdxError> {
    Vhdx::read_header(&*open_file(path))
}

fn open(path: &Path) -> VhdxDisk {
    let f = open_file(path);
    let h = Vhdx::read_header(&*f).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    VhdxDisk::open(f, h, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The whole disk, read in 4 MiB chunks as `convert` does.
fn read_all(d: &dyn ReadAt) -> Vec<u8> {
    let mut v = vec![0u8; d.len() as usize];
    for (i, chunk) in v.chunks_mut(4 << 20).enumerate() {
        d.read_exact_at(chunk, i as u64 * (4 << 20)).unwrap();
    }
    v
}

/// `virtual-size` from `qemu-img info --output=json`.
fn qemu_virtual_size(path: &Path) -> u64 {
    let j = qemu_img(&["info", "--output=json", s(path)]);
    let at = j
        .rfind("\"virtual-size\":")
        .expect("virtual-size in qemu-img info");
    j[at + 15..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// `qemu-img convert -O raw` of `path`, read back.
fn qemu_raw(path: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("qemu.raw");
    qemu_img(&["convert", "-f", "vhdx", "-O", "raw", s(path), s(&out)]);
    let v = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    v
}

/// vhdiinfo's media size and bytes per sector.
fn vhdiinfo(path: &Path) -> (u64, u64) {
    let out = ok("vhdiinfo", "libvhdi-utils", &[s(path)]);
    let field = |name: &str| -> u64 {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in vhdiinfo output:\n{out}"));
        let v = line.split(':').nth(1).unwrap();
        let digits = match v.find('(') {
            Some(p) => &v[p + 1..],
            None => v,
        };
        digits
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("Media size"), field("Bytes per sector"))
}

/// Unmounts a FUSE mount when dropped (also when the test fails).
struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("fusermount").arg("-u").arg(&self.0).status();
    }
}

/// The virtual disk as libvhdi reads it (vhdimount, FUSE).
fn vhdi_read(path: &Path, dir: &Path) -> Vec<u8> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static MOUNTS: AtomicUsize = AtomicUsize::new(0);
    let mnt = dir.join(format!("mnt-{}", MOUNTS.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&mnt).unwrap();
    ok("vhdimount", "libvhdi-utils", &[s(path), s(&mnt)]);
    let guard = Mount(mnt.clone());
    let v = std::fs::read(mnt.join("vhdi1")).unwrap();
    // The FUSE daemon may still hold the file for a moment after the read: retry briefly.
    let mut last = String::new();
    for _ in 0..50 {
        let out = tool("fusermount", "fuse3", &["-u", s(&mnt)]);
        if out.status.success() {
            std::mem::forget(guard);
            return v;
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("fusermount -u {} failed: {last}", mnt.display());
}

/// next_data never hides data: every byte outside its ranges is zero in `want`. Returns the
/// ranges.
fn check_next_data(d: &dyn ReadAt, want: &[u8]) -> Vec<std::ops::Range<u64>> {
    let mut ranges = Vec::new();
    let mut pos = 0u64;
    while let Some(r) = d.next_data(pos).unwrap() {
        assert!(
            r.start >= pos && r.end > r.start && r.end <= d.len(),
            "{r:?} after {pos}"
        );
        let gap = &want[pos as usize..r.start as usize];
        assert!(
            gap.iter().all(|&b| b == 0),
            "next_data skipped data in {pos}..{}",
            r.start
        );
        pos = r.end;
        ranges.push(r);
    }
    assert!(
        want[pos as usize..].iter().all(|&b| b == 0),
        "data after the last range"
    );
    ranges
}

struct Case {
    block: &'static str,
    sub: &'static str,
    zero: &'static str,
    log: &'static str,
    libvhdi: bool,
}

#[test]
fn qemu_img_vhdx_in_every_option_reads_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let size = 40 * MIB + 1536;
    let src = dir.path().join("src.raw");
    let want = make_source(&src, size);
    let cases = [
        Case {
            block: "1M",
            sub: "dynamic",
            zero: "on",
            log: "1M",
            libvhdi: true,
        },
        Case {
            block: "1M",
            sub: "fixed",
            zero: "off",
            log: "1M",
            libvhdi: false,
        },
        Case {
            block: "2M",
            sub: "dynamic",
            zero: "off",
            log: "4M",
            libvhdi: false,
        },
        Case {
            block: "4M",
            sub: "fixed",
            zero: "on",
            log: "2M",
            libvhdi: false,
        },
        Case {
            block: "8M",
            sub: "dynamic",
            zero: "on",
            log: "1M",
            libvhdi: false,
        },
        Case {
            block: "16M",
            sub: "fixed",
            zero: "off",
            log: "1M",
            libvhdi: false,
        },
        Case {
            block: "32M",
            sub: "dynamic",
            zero: "off",
            log: "8M",
            libvhdi: false,
        },
        Case {
            block: "32M",
            sub: "fixed",
            zero: "on",
            log: "1M",
            libvhdi: true,
        },
        Case {
            block: "64M",
            sub: "dynamic",
            zero: "on",
            log: "1M",
            libvhdi: false,
        },
        Case {
            block: "128M",
            sub: "dynamic",
            zero: "off",
            log: "1M",
            libvhdi: false,
        },
        Case {
            block: "256M",
            sub: "dynamic",
            zero: "on",
            log: "1M",
            libvhdi: true,
        },
        Case {
            block: "256M",
            sub: "fixed",
            zero: "off",
            log: "1M",
            libvhdi: false,
        },
        Case {
            block: "0",
            sub: "dynamic",
            zero: "on",
            log: "1M",
            libvhdi: false,
        },
    ];
    for c in &cases {
        let name = format!("b{}-{}-z{}-l{}.vhdx", c.block, c.sub, c.zero, c.log);
        let img = dir.path().join(&name);
        let opts = format!(
            "subformat={},block_size={},block_state_zero={},log_size={}",
            c.sub, c.block, c.zero, c.log
        );
        qemu_img(&[
            "convert",
            "-f",
            "raw",
            "-O",
            "vhdx",
            "-o",
            &opts,
            s(&src),
            s(&img),
        ]);
        let h = header(&img).unwrap();
        let qsize = qemu_virtual_size(&img);
        assert_eq!(h.metadata.virtual_size, qsize, "{name}: virtual size");
        assert!(
            h.creator.starts_with("QEMU"),
            "{name}: creator {:?}",
            h.creator
        );
        assert!(
            !h.log.non_empty,
            "{name}: a clean qemu-img file has an empty log"
        );
        assert_eq!(h.metadata.logical_sector_size, 512);
        assert_eq!(
            h.metadata.leave_blocks_allocated,
            c.sub == "fixed",
            "{name}"
        );
        if c.block != "0" {
            let mib: u64 = c.block.trim_end_matches('M').parse().unwrap();
            assert_eq!(
                u64::from(h.metadata.block_size),
                mib * MIB,
                "{name}: block size"
            );
        }
        assert_eq!(h.log.length, {
            let mib: u64 = c.log.trim_end_matches('M').parse().unwrap();
            mib * MIB
        });
        let d = VhdxDisk::open(open_file(&img), h.clone(), None).unwrap();
        let got = read_all(&d);
        let mut padded = want.clone();
        padded.resize(qsize as usize, 0);
        assert!(got == padded, "{name}: differs from the source");
        assert!(
            got == qemu_raw(&img, dir.path()),
            "{name}: differs from qemu-img convert -O raw"
        );
        let ranges = check_next_data(&d, &got);
        // A dynamic image holds only the blocks where qemu-img found data; next_data covers
        // at most those. A fixed one holds every block, but its file is sparse: next_data
        // skips the holes, so it covers no more.
        let bs = u64::from(h.metadata.block_size);
        let data_blocks = (0..qsize.div_ceil(bs))
            .filter(|&b| {
                let e = ((b + 1) * bs).min(qsize);
                got[(b * bs) as usize..e as usize].iter().any(|&x| x != 0)
            })
            .count() as u64;
        if c.sub == "dynamic" {
            assert_eq!(
                d.allocated_blocks(),
                data_blocks,
                "{name}: allocated blocks"
            );
        }
        let covered: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        assert!(
            covered <= data_blocks * bs,
            "{name}: next_data covers {covered} bytes"
        );
        if c.sub == "fixed" && c.zero == "off" {
            assert!(
                covered < qsize / 2,
                "{name}: next_data covers {covered} bytes"
            );
        }
        let (vsize, sector) = vhdiinfo(&img);
        assert_eq!((vsize, sector), (qsize, 512), "{name}: vhdiinfo");
        if c.libvhdi {
            assert!(
                vhdi_read(&img, dir.path()) == got,
                "{name}: libvhdi reads other bytes"
            );
        }
        std::fs::remove_file(&img).unwrap();
    }
}

/// An LD_PRELOAD shim that SIGKILLs its process when it is about to `pwrite` at the offset in
/// `KILL_AT_PWRITE_OFFSET`: a writer stopped at an exact step (page-cache contents survive a
/// SIGKILL, as they survive a crash of the process).
const KILL_SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/types.h>
static long long target = -2;
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  static ssize_t (*real)(int, const void *, size_t, off_t);
  if (target == -2) { const char *e = getenv("KILL_AT_PWRITE_OFFSET"); target = e ? atoll(e) : -1; }
  if (target >= 0 && (long long)off == target) kill(getpid(), SIGKILL);
  if (!real) real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
  return real(fd, buf, n, off);
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { return pwrite64(fd, buf, n, off); }
"#;

fn build_shim(dir: &Path) -> PathBuf {
    let c = dir.join("killshim.c");
    std::fs::write(&c, KILL_SHIM).unwrap();
    let so = dir.join("killshim.so");
    ok(
        "gcc",
        "gcc",
        &["-shared", "-fPIC", "-O2", "-o", s(&so), s(&c), "-ldl"],
    );
    so
}

/// Runs `qemu-io -c CMD IMG`, killed when it writes at `kill_at`; asserts it was killed.
fn qemu_io_killed(img: &Path, cmd: &str, shim: &Path, kill_at: u64) {
    let out = Command::new("qemu-io")
        .args(["-f", "vhdx", "-c", cmd, s(img)])
        .env("LD_PRELOAD", shim)
        .env("KILL_AT_PWRITE_OFFSET", kill_at.to_string())
        .output()
        .unwrap_or_else(|e| {
            panic!("qemu-io could not be run ({e}); install Debian package `qemu-utils`")
        });
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(9),
        "qemu-io was not killed: {out:?}"
    );
}

/// qemu-io writes into a new block of a dynamic VHDX: the data, then the BAT update through
/// the log (flushed), then the BAT in place. Killed just before the in-place BAT write, it
/// leaves a dirty log: qemu-img refuses to read the file until `check -r all` replays it.
/// vhdprep replays it in memory and reads what qemu-img reads after its replay, without
/// writing the file.
#[test]
fn a_dirty_log_left_by_a_killed_qemu_io_is_replayed_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let shim = build_shim(dir.path());
    let img = dir.path().join("dirty.vhdx");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "vhdx",
        "-o",
        "subformat=dynamic,block_size=1M",
        s(&img),
        "16M",
    ]);
    ok(
        "qemu-io",
        "qemu-utils",
        &["-f", "vhdx", "-c", "write -P 0x11 0 3M", s(&img)],
    );
    let clean = header(&img).unwrap();
    assert!(
        !clean.log.non_empty,
        "a finished qemu-io leaves an empty log"
    );
    let bat_at = clean.regions.bat.start;
    qemu_io_killed(&img, "write -P 0x55 8M 64k", &shim, bat_at);

    let before = std::fs::read(&img).unwrap();
    // The BAT in the file still says block 8 is not stored (qemu-img created it ZERO, state
    // 2): only the log knows it is now fully present (6).
    let entry = u64::from_le_bytes(before[(bat_at + 8 * 8) as usize..][..8].try_into().unwrap());
    assert_eq!(entry & 7, 2, "block 8 in the file's own BAT");
    let refused = tool("qemu-img", "qemu-utils", &["info", s(&img)]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("log that needs to be replayed"));

    let h = header(&img).unwrap();
    assert!(h.log.non_empty && !h.current().log_guid.is_nil());
    assert!(h.log.entries_replayed >= 1, "{:?}", h.log);
    let d = VhdxDisk::open(open_file(&img), h, None).unwrap();
    let got = read_all(&d);
    let mut want = vec![0u8; 16 << 20];
    want[..3 << 20].fill(0x11);
    want[8 << 20..(8 << 20) + 65536].fill(0x55);
    assert!(got == want, "the replayed disk holds the killed write");
    check_next_data(&d, &got);
    assert_eq!(
        std::fs::read(&img).unwrap(),
        before,
        "the source was written"
    );

    // qemu-img's own replay, on a copy, reads the same.
    let copy = dir.path().join("copy.vhdx");
    std::fs::copy(&img, &copy).unwrap();
    let _ = tool("qemu-img", "qemu-utils", &["check", "-r", "all", s(&copy)]);
    assert!(
        !header(&copy).unwrap().log.non_empty,
        "qemu-img check emptied the log"
    );
    assert!(
        qemu_raw(&copy, dir.path()) == got,
        "qemu-img reads other bytes after its replay"
    );
}

/// Killed before the log entry is written (at the log's first sector), qemu-io leaves a
/// header that names a log GUID but no valid entry: nothing to replay, and the new block's
/// data, which no BAT entry points to, is not part of the disk. qemu-img agrees.
#[test]
fn a_log_guid_without_valid_entries_replays_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shim = build_shim(dir.path());
    let img = dir.path().join("torn.vhdx");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "vhdx",
        "-o",
        "subformat=dynamic,block_size=1M",
        s(&img),
        "16M",
    ]);
    ok(
        "qemu-io",
        "qemu-utils",
        &["-f", "vhdx", "-c", "write -P 0x22 1M 1M", s(&img)],
    );
    let log_at = header(&img).unwrap().log.offset;
    qemu_io_killed(&img, "write -P 0x66 4M 4k", &shim, log_at);
    let h = header(&img).unwrap();
    assert!(h.log.non_empty, "the header names a log");
    assert_eq!(h.log.entries_replayed, 0);
    let got = read_all(&VhdxDisk::open(open_file(&img), h, None).unwrap());
    let mut want = vec![0u8; 16 << 20];
    want[1 << 20..2 << 20].fill(0x22);
    assert!(got == want);
    let copy = dir.path().join("copy.vhdx");
    std::fs::copy(&img, &copy).unwrap();
    let _ = tool("qemu-img", "qemu-utils", &["check", "-r", "all", s(&copy)]);
    assert!(qemu_raw(&copy, dir.path()) == got);
}

/// Where the metadata item `guid` of `img` is (file offset), from the metadata table.
fn metadata_item(img: &Path, guid: uuid::Uuid) -> Option<(u64, u32)> {
    let h = header(img).unwrap();
    let base = h.regions.metadata.start;
    let f = std::fs::read(img).unwrap();
    let t = &f[base as usize..][..65536];
    let count = u16::from_le_bytes([t[10], t[11]]) as usize;
    (0..count).find_map(|i| {
        let e = &t[32 + 32 * i..][..32];
        (e[..16] == guid.to_bytes_le()).then(|| {
            let off = u32::from_le_bytes(e[16..20].try_into().unwrap());
            let len = u32::from_le_bytes(e[20..24].try_into().unwrap());
            (base + u64::from(off), len)
        })
    })
}

fn patch(img: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// qemu-img always writes 512-byte logical sectors, and refuses to open any other ("Operation
/// not supported"). A VHDX with 4096-byte logical sectors is made by changing that one
/// metadata item of a qemu-img file (metadata items carry no checksum; the payload is
/// addressed in bytes, and with fewer blocks than a chunk the BAT layout is the same for both
/// sizes). vhdprep must read the source's bytes, as libvhdi does.
#[test]
fn vhdx_with_4096_byte_logical_sectors() {
    use vhdprep_disk::vhdx::metadata::LOGICAL_SECTOR_SIZE;
    let dir = tempfile::tempdir().unwrap();
    let size = 24 * MIB + 3 * 4096;
    let src = dir.path().join("src.raw");
    let want = make_source(&src, size);
    for opts in [
        "subformat=dynamic,block_size=1M",
        "subformat=dynamic,block_size=8M,block_state_zero=off",
        "subformat=fixed,block_size=2M",
    ] {
        let img = dir.path().join("lss4096.vhdx");
        qemu_img(&[
            "convert",
            "-f",
            "raw",
            "-O",
            "vhdx",
            "-o",
            opts,
            s(&src),
            s(&img),
        ]);
        let (at, len) = metadata_item(&img, LOGICAL_SECTOR_SIZE).expect("logical sector size item");
        assert_eq!(len, 4);
        patch(&img, at, &4096u32.to_le_bytes());
        let h = header(&img).unwrap();
        assert_eq!(h.metadata.logical_sector_size, 4096, "{opts}");
        assert_eq!(h.metadata.virtual_size, size, "{opts}");
        let refused = tool("qemu-img", "qemu-utils", &["info", s(&img)]);
        assert!(
            !refused.status.success(),
            "{opts}: qemu-img now reads 4096-byte sectors"
        );
        let d = VhdxDisk::open(open_file(&img), h, None).unwrap();
        let got = read_all(&d);
        assert!(got == want, "{opts}: differs from the source");
        check_next_data(&d, &got);
        assert_eq!(vhdiinfo(&img), (size, 4096), "{opts}: vhdiinfo");
        assert!(
            vhdi_read(&img, dir.path()) == got,
            "{opts}: libvhdi reads other bytes"
        );
        std::fs::remove_file(&img).unwrap();
    }
}

/// The child as libvhdi (pyvhdi, python3-libvhdi) reads it over `parent`. libvhdi 20210425
/// finds no parent locator in a VHDX (vhdiinfo shows a nil parent identifier and vhdimount
/// "unable to retrieve parent filename size"), and its `set_parent` insists that the parent's
/// data write GUID equals that nil identifier; so it is given a copy of the parent whose two
/// headers carry a nil data write GUID (checksums recomputed). Only the chain's data is
/// compared.
fn libvhdi_read_chain(child: &Path, parent: &Path, dir: &Path) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let copy = dir.join("parent-nil-guid.vhdx");
    std::fs::copy(parent, &copy).unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&copy)
        .unwrap();
    for off in [65536u64, 131072] {
        let mut h = vec![0u8; 4096];
        f.read_exact_at(&mut h, off).unwrap();
        h[32..48].fill(0);
        h[4..8].fill(0);
        let c = crc32c::crc32c(&h);
        h[4..8].copy_from_slice(&c.to_le_bytes());
        f.write_all_at(&h, off).unwrap();
    }
    let out = dir.join("libvhdi-chain.raw");
    let script = format!(
        "import pyvhdi\np = pyvhdi.file(); p.open({:?})\nc = pyvhdi.file(); c.open({:?})\nc.set_parent(p)\nopen({:?}, 'wb').write(c.read_buffer(c.get_media_size()))\n",
        s(&copy),
        s(child),
        s(&out)
    );
    // The Debian interpreter: pyvhdi is a Debian package, not on another python3's path.
    ok("/usr/bin/python3", "python3-libvhdi", &["-c", &script]);
    std::fs::read(&out).unwrap()
}

/// No tool here writes a differencing VHDX (`qemu-img create -f vhdx -b` says "Backing file
/// not supported for file format 'vhdx'"). One is built from the specification on top of a
/// qemu-img/qemu-io child: the has-parent flag and a parent locator in its metadata, a
/// sector-bitmap block, and its blocks set to each state (fully present, partially present
/// with the sector bitmap choosing child or parent per sector, zero, not present). vhdprep
/// must read what the specification says, and what libvhdi (vhdimount, which finds the
/// parent through the locator) reads.
#[test]
fn differencing_vhdx_built_from_the_specification() {
    let dir = tempfile::tempdir().unwrap();
    let vhdx_chain::VhdxChain {
        parent,
        child,
        parent_raw,
        want,
        linkage,
        ..
    } = vhdx_chain::build(dir.path());
    let blk = |b: u64| (b * MIB) as usize..((b + 1) * MIB) as usize;

    let h = header(&child).unwrap();
    assert!(h.has_parent());
    let l = h.metadata.parent_locator.clone().unwrap();
    assert_eq!(l.parent_linkage(), Some(linkage.as_str()));
    assert_eq!(l.relative_path(), Some(".\\parent.vhdx"));
    assert_eq!(l.absolute_win32_path(), Some("C:\\vhdx\\parent.vhdx"));
    assert!(l.volume_path().unwrap().starts_with("\\\\?\\Volume{"));
    let e = VhdxDisk::open(open_file(&child), h.clone(), None).unwrap_err();
    assert!(matches!(e, VhdxError::MissingParent { .. }));
    assert!(
        e.to_string().contains("relative_path=.\\parent.vhdx"),
        "{e}"
    );

    let p: SharedDisk = Arc::new(open(&parent));
    let d = VhdxDisk::open(open_file(&child), h, Some(p)).unwrap();
    let got = read_all(&d);
    assert!(
        got == want,
        "the differencing disk reads other bytes than the specification says"
    );
    // Unaligned reads across the bitmap's runs.
    let mut b = vec![0u8; 5000];
    d.read_exact_at(&mut b, 2 * MIB + 3000).unwrap();
    assert!(b[..] == want[(2 * MIB + 3000) as usize..][..5000]);
    check_next_data(&d, &got);
    // libvhdi agrees everywhere but block 5: for a ZERO block of a differencing disk it
    // returns the parent's data, where [MS-VHDX] 2.5.1.1 says "implementations MUST return
    // zeros" (vhdprep does; `want` above says so too).
    let mut theirs = libvhdi_read_chain(&child, &parent, dir.path());
    let five = &theirs[blk(5)];
    assert!(five == &parent_raw[blk(5)] || five.iter().all(|&b| b == 0));
    theirs[blk(5)].fill(0);
    assert!(theirs == got, "libvhdi reads the chain differently");
}

/// Damage to a real qemu-img file: a torn current header falls back to the other copy, a
/// truncated file and a BAT entry pointing into the header section are one-line errors with
/// the offset, and nothing panics.
#[test]
fn damaged_qemu_img_files_fail_cleanly_or_fall_back() {
    let dir = tempfile::tempdir().unwrap();
    let size = 8 * MIB;
    let src = dir.path().join("src.raw");
    let want = make_source(&src, size);
    let img = dir.path().join("d.vhdx");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vhdx",
        "-o",
        "block_size=1M",
        s(&src),
        s(&img),
    ]);
    let good = std::fs::read(&img).unwrap();
    let h = header(&img).unwrap();
    let cur = h.current;
    let other = 1 - cur;
    assert!(h.copies[other].is_ok(), "qemu-img writes both headers");

    // The current header torn (its checksum fails): the other copy is current.
    patch(&img, h.head.offset + 200, &[0xFF]);
    let torn = header(&img).unwrap();
    assert_eq!(torn.current, other);
    assert!(torn.copies[cur].as_ref().unwrap_err().contains("checksum"));
    assert!(read_all(&VhdxDisk::open(open_file(&img), torn, None).unwrap()) == want);
    // Both torn: a one-line error naming both offsets.
    patch(&img, [65536u64, 131072][other] + 200, &[0xFF]);
    let e = header(&img).unwrap_err().to_string();
    assert!(
        e.starts_with("no valid VHDX header: the one at offset 65536"),
        "{e}"
    );
    assert!(!e.contains('\n'));

    // Cut in the middle of the last data block.
    std::fs::write(&img, &good[..good.len() - 4096]).unwrap();
    let h = header(&img).unwrap();
    let e = VhdxDisk::open(open_file(&img), h, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("(truncated image?)") && e.starts_with("BAT entry "),
        "{e}"
    );

    // A BAT entry pointing at the header section.
    std::fs::write(&img, &good).unwrap();
    let h = header(&img).unwrap();
    patch(&img, h.regions.bat.start, &6u64.to_le_bytes());
    let e = VhdxDisk::open(open_file(&img), h, None)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("BAT entry 0 (at offset "), "{e}");

    // Not a VHDX at all.
    let e = header(&src).unwrap_err().to_string();
    assert_eq!(e, "not a VHDX file: no 'vhdxfile' signature at offset 0");
}

/// A disk larger than one chunk (2^23 sectors: 4 GiB with 512-byte sectors), so that the BAT
/// interleaves sector-bitmap entries with payload entries: data on both sides of each chunk
/// boundary, in 1 MiB blocks (4096 per chunk) and 256 MiB blocks (16 per chunk). Only the data
/// ranges and a few holes are read, and compared with the source and (1 MiB blocks; its raw
/// conversion of the 256 MiB-block file takes 9 s) with qemu-img's raw conversion.
#[test]
fn disks_spanning_several_bat_chunks() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let size = 9 * (1u64 << 30) + 3 * MIB;
    let src = dir.path().join("big.raw");
    let f = std::fs::File::create(&src).unwrap();
    f.set_len(size).unwrap();
    let gib = 1u64 << 30;
    let places = [
        0,
        4 * gib - MIB,
        4 * gib,
        4 * gib + 300 * MIB,
        8 * gib + 5 * MIB,
        size - MIB,
    ];
    for (i, &at) in places.iter().enumerate() {
        f.write_all_at(&pattern(i as u64 + 40, MIB as usize), at)
            .unwrap();
    }
    drop(f);
    let src_file = std::fs::File::open(&src).unwrap();
    let read_src = |at: u64, n: usize| {
        let mut b = vec![0u8; n];
        src_file.read_exact_at(&mut b, at).unwrap();
        b
    };
    for block in ["1M", "256M"] {
        let img = dir.path().join(format!("big-{block}.vhdx"));
        let opts = format!("block_size={block}");
        qemu_img(&[
            "convert",
            "-f",
            "raw",
            "-O",
            "vhdx",
            "-o",
            &opts,
            s(&src),
            s(&img),
        ]);
        let d = open(&img);
        assert_eq!(d.len(), qemu_virtual_size(&img));
        assert_eq!(vhdiinfo(&img), (d.len(), 512));
        let bs = u64::from(d.header().metadata.block_size);
        // next_data: exactly the blocks holding the places.
        let mut want_blocks: Vec<u64> = places.iter().map(|&p| p / bs).collect();
        want_blocks.dedup();
        let mut got_blocks = Vec::new();
        let mut pos = 0;
        while let Some(r) = d.next_data(pos).unwrap() {
            let mut b = r.start / bs;
            while b * bs < r.end {
                got_blocks.push(b);
                b += 1;
            }
            pos = r.end;
        }
        assert_eq!(got_blocks, want_blocks, "{block}: blocks next_data reports");
        let raw = dir.path().join("big-qemu.raw");
        let qemu = (block == "1M").then(|| {
            qemu_img(&["convert", "-f", "vhdx", "-O", "raw", s(&img), s(&raw)]);
            std::fs::File::open(&raw).unwrap()
        });
        let mut probes: Vec<u64> = places.to_vec();
        probes.extend([2 * gib, 5 * gib, 7 * gib, size - 3 * MIB]); // holes
        for &at in &probes {
            let n = MIB as usize;
            let mut ours = vec![0u8; n];
            d.read_exact_at(&mut ours, at).unwrap();
            assert!(
                ours == read_src(at, n),
                "{block}: differs from the source at {at}"
            );
            if let Some(q) = &qemu {
                let mut theirs = vec![0u8; n];
                q.read_exact_at(&mut theirs, at).unwrap();
                assert!(ours == theirs, "{block}: differs from qemu-img at {at}");
            }
        }
        let _ = std::fs::remove_file(&raw);
        std::fs::remove_file(&img).unwrap();
    }
}

/// A dirty log longer than vhdprep replays in memory (qemu-img's `log_size=128M`, dirtied by a
/// killed qemu-io) is refused with a message that says what to do; a clean file with the same
/// log reads normally (an empty log is never read).
#[test]
fn a_dirty_log_over_the_cap_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let shim = build_shim(dir.path());
    let img = dir.path().join("biglog.vhdx");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "vhdx",
        "-o",
        "block_size=1M,log_size=128M",
        s(&img),
        "16M",
    ]);
    ok(
        "qemu-io",
        "qemu-utils",
        &["-f", "vhdx", "-c", "write -P 0x44 0 4k", s(&img)],
    );
    let clean = header(&img).unwrap();
    assert_eq!(clean.log.length, 128 * MIB);
    assert_eq!(
        read_all(&VhdxDisk::open(open_file(&img), clean.clone(), None).unwrap())[..4096],
        [0x44; 4096]
    );
    qemu_io_killed(&img, "write -P 0x55 5M 4k", &shim, clean.regions.bat.start);
    let e = header(&img).unwrap_err();
    assert!(matches!(e, VhdxError::LogTooLarge { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("134217728 bytes") && msg.contains("qemu-img check -r all"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
}
