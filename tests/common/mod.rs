//! Helpers shared by the integration tests: run vhdprep and the peer tools, make test data.
//!
//! Peer tools (qemu-img, ...) are required: a missing tool fails the test with a message
//! naming the package, never a silent skip. `scripts/test.sh` installs them.
#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The vhdprep binary under test.
pub fn vhdprep() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vhdprep"))
}

/// Runs vhdprep with `args`, returns the output.
pub fn run(args: &[&str]) -> Output {
    vhdprep().args(args).output().expect("run vhdprep")
}

/// Runs a peer tool; panics with an install hint when it is missing.
pub fn tool(name: &str, package: &str, args: &[&str]) -> Output {
    match Command::new(name).args(args).output() {
        Ok(o) => o,
        Err(e) => panic!(
            "required tool `{name}` could not be run ({e}); install Debian package `{package}` (scripts/test.sh does)"
        ),
    }
}

/// Runs qemu-img and asserts success; returns stdout.
pub fn qemu_img(args: &[&str]) -> String {
    let out = tool("qemu-img", "qemu-utils", args);
    assert!(
        out.status.success(),
        "qemu-img {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `qemu-img info --output=json` as a JSON value.
pub fn qemu_info(path: &Path, format: &str) -> serde_json::Value {
    let text = qemu_img(&[
        "info",
        "-f",
        format,
        "--output=json",
        path.to_str().unwrap(),
    ]);
    serde_json::from_str(&text).expect("qemu-img info JSON")
}

/// `qemu-img compare -f FA -F FB A B`: true when the contents are identical (a shorter image
/// counts as zero-padded, as qemu-img does).
pub fn qemu_identical(a: &Path, fa: &str, b: &Path, fb: &str) -> bool {
    let out = tool(
        "qemu-img",
        "qemu-utils",
        &[
            "compare",
            "-f",
            fa,
            "-F",
            fb,
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
    );
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "qemu-img compare failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures reproduce.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A sparse raw image of `len` bytes with pseudo-random data in the given `(offset, len)`
/// extents; the rest is holes.
pub fn sparse_raw(path: &Path, len: u64, extents: &[(u64, usize)]) {
    let f = File::create(path).expect("create raw");
    f.set_len(len).unwrap();
    for (i, &(off, n)) in extents.iter().enumerate() {
        f.write_all_at(&pattern(i as u64 + off, n), off).unwrap();
    }
}

/// Writes `bytes` to a new file.
pub fn write_file(path: &Path, bytes: &[u8]) {
    File::create(path).unwrap().write_all(bytes).unwrap();
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vhdprep-test")
        .tempdir()
        .unwrap()
}

/// `vhdprep info --json` as a value, with the exit code.
pub fn info_json(path: &Path) -> (serde_json::Value, i32) {
    let out = run(&["info", "--json", path.to_str().unwrap()]);
    let code = out.status.code().expect("exited");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "info --json output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (v, code)
}

/// The IDs of the findings in an `info --json` value.
pub fn finding_ids(v: &serde_json::Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .expect("findings list")
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

/// Path helper: `dir/name`.
pub fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// The whole content of a file.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Copies a file keeping its holes (`cp --sparse=always`).
pub fn sparse_copy(from: &Path, to: &Path) {
    let out = tool(
        "cp",
        "coreutils",
        &[
            "--sparse=always",
            from.to_str().unwrap(),
            to.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "cp failed");
}

/// `qemu-img convert -f raw -O vpc [-o OPTS] src dst`: a VHD written by qemu-img (the
/// reference writer). `opts` empty means qemu-img's default (dynamic, CHS-rounded size).
pub fn qemu_vhd_from_raw(src: &Path, dst: &Path, opts: &str) {
    let mut args = vec!["convert", "-f", "raw", "-O", "vpc"];
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    args.extend([src.to_str().unwrap(), dst.to_str().unwrap()]);
    qemu_img(&args);
}

/// The path of fixture image `name` (`<name>.raw` in `$VHDPREP_FIXTURE_CACHE`, built by
/// fixtures/build-images.sh); a missing fixture fails the test with how to build it.
pub fn fixture_raw(name: &str) -> String {
    let dir = std::env::var_os("VHDPREP_FIXTURE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/cache"));
    let p = dir.join(format!("{name}.raw"));
    assert!(
        p.exists(),
        "fixture {} missing: build it with fixtures/build-images.sh",
        p.display()
    );
    p.display().to_string()
}

// ---- Faults: bounded runs, private mounts, loop-mounted filesystems, the FUSE injector ----

/// Runs `cmd` under a watchdog: a run that does not end within `limit` is killed and the test
/// fails saying it hung, instead of hanging the suite. Output goes through files (a pipe
/// nobody reads could itself block the child).
pub fn run_bounded(cmd: &mut Command, limit: std::time::Duration) -> Output {
    use std::time::Instant;
    let dir = tempdir();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = cmd
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not end within {limit:?} (hung); stderr: {}",
                String::from_utf8_lossy(&read(&err_path))
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Output {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

/// `vhdprep ARGS` under the watchdog of [`run_bounded`], 60 s: a few seconds of work here.
pub fn run_watched(args: &[&str]) -> Output {
    run_bounded(vhdprep().args(args), std::time::Duration::from_secs(60))
}

/// SHA-256 of a file, by `sha256sum`.
pub fn sha(path: &Path) -> String {
    let out = tool("sha256sum", "coreutils", &[path.to_str().unwrap()]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The hidden temporary files of conversions (`.NAME.*.vhdprep-tmp`) in `dir`.
pub fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("vhdprep-tmp"))
        .collect()
}

/// Names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Asserts a failed run: exit 2 and exactly one line on stderr holding every one of `needles`
/// and not naming the hidden temporary file (the user never asked for it). Returns the line.
pub fn assert_one_line_error(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("vhdprep-tmp"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "missing {n:?} in: {stderr}");
    }
    stderr
}

/// Asserts a successful run.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A dense source: `mib` MiB of pseudo-random data (no holes, so no copy can be sparse).
pub fn dense_raw(path: &Path, mib: u64) {
    let f = File::create(path).unwrap();
    for i in 0..mib {
        f.write_all_at(&pattern(i + 1, 1 << 20), i << 20).unwrap();
    }
}

/// Fills the filesystem holding `dir` with a file `fill` until not even one more block can
/// be written: appends until ENOSPC in 1 MiB, 4 KiB, then 512-byte pieces, and again after
/// closing the file (ext4 and XFS give a file's preallocated blocks back when it is closed),
/// until a round writes nothing. (As root this includes ext4's blocks reserved for root.)
pub fn fill_up(dir: &Path) {
    let path = dir.join("fill");
    for _ in 0..20 {
        let mut f = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let mut wrote = false;
        for size in [1 << 20, 4096, 512] {
            let chunk = vec![0xa5u8; size];
            loop {
                match f.write(&chunk) {
                    Ok(n) if n > 0 => wrote = true,
                    Ok(_) => break,
                    Err(e) if e.raw_os_error() == Some(28) => break,
                    Err(e) => panic!("filling {}: {e}", dir.display()),
                }
            }
        }
        match f.sync_all() {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => {}
            Err(e) => panic!("filling {}: {e}", dir.display()),
        }
        // fallocate takes what writes could not: XFS answers an ENOSPC of fallocate by
        // trimming the post-EOF preallocation of every file first (blockgc), so blocks a
        // write did not get can still be had this way, and a writer that reserves its blocks
        // (fix --in-place does) would get them.
        for size in [1u64 << 20, 4096] {
            loop {
                let end = f.metadata().unwrap().len();
                let out = tool(
                    "fallocate",
                    "util-linux",
                    &[
                        "-o",
                        &end.to_string(),
                        "-l",
                        &size.to_string(),
                        path.to_str().unwrap(),
                    ],
                );
                if !out.status.success() {
                    break;
                }
                wrote = true;
            }
        }
        if !wrote {
            return;
        }
    }
    panic!("{} does not fill up", dir.display());
}

/// Bytes free for an unprivileged user on the filesystem holding `path` (`stat -f`).
pub fn free_bytes(path: &Path) -> u64 {
    let out = tool(
        "stat",
        "coreutils",
        &["-f", "--format=%a %S", path.to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().unwrap());
    it.next().unwrap() * it.next().unwrap()
}

/// A private mount namespace held open by a `sleep` in it: filesystems mounted there are seen
/// by nothing else on the machine, and the tests reach them through `/proc/PID/root/...`.
/// Dropping it kills the holder, which unmounts everything it held (loop devices mounted with
/// `-o loop` are then detached by the kernel), also when a test panics. Needs root (CI runs as
/// root) and util-linux's `unshare` and `nsenter`: without them the test fails saying why.
pub struct Namespace {
    holder: std::process::Child,
}

impl Namespace {
    /// A new namespace.
    pub fn new() -> Namespace {
        use std::process::Stdio;
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("echo ready; exec sleep 600")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `unshare` ({e}); install Debian package util-linux")
            });
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "ready" {
            let out = holder.wait_with_output().unwrap();
            panic!(
                "cannot make a private mount namespace for the filesystem tests (they need root): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Namespace { holder }
    }

    /// The holder's process id.
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// Runs `script` with `sh` inside the namespace; panics if it fails; returns its stdout.
    pub fn sh(&self, script: &str) -> String {
        let pid = self.pid().to_string();
        let out = tool(
            "nsenter",
            "util-linux",
            &["-t", &pid, "-m", "sh", "-c", script],
        );
        assert!(
            out.status.success(),
            "in the namespace, `{script}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Mounts a tmpfs with `options` on `dir` (created here) and returns the path through
    /// which this process sees it.
    pub fn tmpfs(&self, dir: &Path, options: &str) -> PathBuf {
        std::fs::create_dir(dir).unwrap();
        self.sh(&format!(
            "mount -t tmpfs -o {options} vhdprep-test {}",
            dir.display()
        ));
        self.path(dir)
    }

    /// Makes a `fstype` filesystem (`ext4` or `xfs`, by its mkfs) of `mib` MiB in the sparse
    /// file `image`, mounts it through a loop device on `dir` (created here) and returns the
    /// path through which this process sees it.
    pub fn loop_fs(&self, fstype: &str, mib: u64, image: &Path, dir: &Path) -> PathBuf {
        File::create(image).unwrap().set_len(mib << 20).unwrap();
        let (mkfs, package) = match fstype {
            "ext4" => ("mkfs.ext4", "e2fsprogs"),
            "xfs" => ("mkfs.xfs", "xfsprogs"),
            other => panic!("no mkfs for {other}"),
        };
        let out = tool(mkfs, package, &["-q", image.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{mkfs} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::create_dir(dir).unwrap();
        self.sh(&format!(
            "mount -t {fstype} -o loop {} {}",
            image.display(),
            dir.display()
        ));
        self.path(dir)
    }

    /// `dir` as seen inside the namespace.
    pub fn path(&self, dir: &Path) -> PathBuf {
        let inside = PathBuf::from(format!("/proc/{}/root", self.pid()));
        inside.join(dir.strip_prefix("/").unwrap())
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// `tests/faultfs.py` serving `backing` on a mount point inside a [`Namespace`]: a FUSE
/// filesystem that passes everything through except the faults it was given (EIO on a read
/// or a write reaching an offset, ENOSPC on fsync). Dropping it unmounts and stops the server.
pub struct FaultFs<'a> {
    ns: &'a Namespace,
    dir: PathBuf,
    server: std::process::Child,
    log: PathBuf,
}

impl<'a> FaultFs<'a> {
    /// Mounts `backing` on `dir` (created here) with the `faults` arguments of faultfs.py
    /// (e.g. `["--read-eio", "src.raw:52428800"]`). Needs Debian's `libfuse2` and the
    /// `fusepy` Python package (scripts/test.sh installs both).
    pub fn mount(ns: &'a Namespace, backing: &Path, dir: &Path, faults: &[&str]) -> Self {
        std::fs::create_dir(dir).unwrap();
        let log = dir.with_extension("log");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/faultfs.py");
        let server = Command::new("nsenter")
            .args(["-t", &ns.pid().to_string(), "-m", "python3", script])
            .arg(backing)
            .arg(dir)
            .args(faults)
            .stdout(File::create(&log).unwrap())
            .stderr(File::options().append(true).open(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run nsenter ({e}); install util-linux"));
        let fs = FaultFs {
            ns,
            dir: dir.to_owned(),
            server,
            log,
        };
        let mountinfo = format!("/proc/{}/mountinfo", ns.pid());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !std::fs::read_to_string(&mountinfo)
            .unwrap()
            .contains(&format!(" {} ", dir.display()))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the FUSE test filesystem did not mount (install Debian package libfuse2 and pip package fusepy; scripts/test.sh does): {}",
                fs.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        fs
    }

    /// The mount point as seen by this process.
    pub fn path(&self) -> PathBuf {
        self.ns.path(&self.dir)
    }

    /// What the server logged (one `faultfs: ...` line per fault served).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&read(&self.log)).into_owned()
    }
}

impl Drop for FaultFs<'_> {
    fn drop(&mut self) {
        let pid = self.ns.pid().to_string();
        let dir = self.dir.display().to_string();
        let _ = Command::new("nsenter")
            .args(["-t", &pid, "-m", "umount", "-l", &dir])
            .output();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The scheduler state letter of process `pid` (`T` when stopped), or `None` once it is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Runs vhdprep with `args`, stopped right after its write step `k`; `meanwhile` runs while it
/// is stopped, then it continues (SIGCONT) and its output is returned. Panics if vhdprep ends
/// without reaching step `k`.
pub fn stopped_after(k: u32, args: &[&str], meanwhile: impl FnOnce()) -> Output {
    let child = vhdprep()
        .args(args)
        .env("VHDPREP_FAULT_STOP_AFTER_STEP", k.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run vhdprep");
    let pid = child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match proc_state(pid) {
            Some('T') => break,
            Some('Z') | None => {
                let out = child.wait_with_output().unwrap();
                panic!(
                    "vhdprep ended before step {k}: {:?} {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            _ => {}
        }
        assert!(
            std::time::Instant::now() < deadline,
            "vhdprep never reached step {k}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    meanwhile();
    // The shell's own `kill`: no procps needed.
    let out = tool("sh", "dash", &["-c", "kill -CONT \"$0\"", &pid.to_string()]);
    assert!(out.status.success(), "kill -CONT {pid} failed");
    child.wait_with_output().unwrap()
}

/// Runs `vhdprep check --format json` on a disk the writers produced and asserts that vhdprep
/// would not warn about what it wrote: no container finding the writers decide (VHD-001 to
/// VHD-006, VHD-014, VHD-015), and on a disk with a partition table (LBA 0 ends in `55 AA`) no
/// BOOT-001 finding but the information that an MBR is hybrid (the source's design); a disk of
/// test data without a table has exactly BOOT-001's "no partition table". The size and sector-size rules (VHD-007 to VHD-013, VHD-016) judge what
/// the source is, not how it was written. Returns the report.
pub fn assert_own_check_clean(path: &Path) -> serde_json::Value {
    let out = run(&["check", "--format", "json", path.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --format json on {} is not JSON ({e}): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut lba0 = [0u8; 512];
    File::open(path)
        .unwrap()
        .read_exact_at(&mut lba0, 0)
        .unwrap();
    let has_table = lba0[510..] == [0x55, 0xAA];
    let writers = [
        "VHD-001", "VHD-002", "VHD-003", "VHD-004", "VHD-005", "VHD-006", "VHD-014", "VHD-015",
    ];
    let bad: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| {
            let id = f["id"].as_str().unwrap_or("");
            let msg = f["message"].as_str().unwrap_or("");
            let fact = msg.starts_with("Hybrid MBR:");
            writers.contains(&id)
                || (id == "BOOT-001" && !fact && (has_table || !msg.contains("no partition table")))
        })
        .map(|f| format!("{} {}: {}", f["id"], f["severity"], f["message"]))
        .collect();
    assert!(
        bad.is_empty(),
        "vhdprep check warns about what vhdprep wrote in {}:\n{}",
        path.display(),
        bad.join("\n")
    );
    report
}

/// What `sgdisk -v` says about a disk (a raw file or a block device): the number of problems
/// it counts, the first line of each `Problem:` paragraph, and whether it found every CRC
/// right (a damaged backup header is no "problem" to sgdisk -v, which rebuilds it in memory,
/// but it says "One or more CRCs don't match" on stderr). sgdisk exits 0 either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgdiskVerdict {
    /// "Identified N problems!" (0 for "No problems found").
    pub problems: usize,
    /// First lines of the `Problem:` paragraphs.
    pub lines: Vec<String>,
    /// No "CRCs don't match" warning.
    pub crcs_match: bool,
}

impl SgdiskVerdict {
    /// No problem and every CRC right: a disk sgdisk accepts as it is.
    pub fn is_clean(&self) -> bool {
        self.problems == 0 && self.crcs_match
    }

    /// The one problem of a disk whose backup GPT is not on its last LBA.
    pub fn is_only_misplaced_backup(&self) -> bool {
        self.crcs_match
            && self.problems == 1
            && self.lines.len() == 1
            && self.lines[0].contains("secondary header's self-pointer")
    }
}

/// Runs `sgdisk -v` on `disk`.
pub fn sgdisk_verify(disk: &Path) -> SgdiskVerdict {
    let out = tool("sgdisk", "gdisk", &["-v", disk.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let problems = if text.contains("No problems found") {
        0
    } else {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("Identified ")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or_else(|| panic!("sgdisk -v said neither: {text}"))
    };
    let lines = text
        .lines()
        .filter(|l| l.starts_with("Problem:"))
        .map(str::to_string)
        .collect();
    let crcs_match = !String::from_utf8_lossy(&out.stderr).contains("CRCs don't match");
    SgdiskVerdict {
        problems,
        lines,
        crcs_match,
    }
}

/// Runs sgdisk with `args` on `disk`, asserting success.
pub fn sgdisk(disk: &Path, args: &[&str]) {
    let mut all: Vec<&str> = args.to_vec();
    all.push(disk.to_str().unwrap());
    let out = tool("sgdisk", "gdisk", &all);
    assert!(
        out.status.success(),
        "sgdisk {all:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The virtual disk of a fixed VHD of `size` bytes as a sparse raw file (the file minus its
/// footer), for tools that read raw disks (sgdisk, sfdisk, cmp).
pub fn virtual_raw(vhd: &Path, size: u64, out: &Path) {
    sparse_copy(vhd, out);
    File::options()
        .write(true)
        .open(out)
        .unwrap()
        .set_len(size)
        .unwrap();
}
