//! Test images for the rules: copies of the real fixture images of `fixtures/build-images.sh`
//! (mmdebstrap Debian with Debian's waagent, cloud-init, shim, grub), changed with the real
//! filesystem tools — `debugfs -w` for ext4 partitions, mtools for the FAT ESP — so every rule
//! is judged on trees written by other programs, never by our own writers.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use vhdprep_check::{check, Finding, Policy, Report, Severity};
use vhdprep_disk::DiskImage;

/// Where the fixture images are: `$VHDPREP_FIXTURE_CACHE`, else `fixtures/cache`.
pub fn fixture_dir() -> PathBuf {
    std::env::var_os("VHDPREP_FIXTURE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cache"))
}

/// The fixture image `name` (`gen2-gpt-ext4`, ...) and its manifest; fails loudly when missing.
pub fn fixture(name: &str) -> (PathBuf, Value) {
    let dir = fixture_dir();
    let img = dir.join(format!("{name}.raw"));
    let man = dir.join(format!("{name}.json"));
    assert!(
        img.exists() && man.exists(),
        "fixture {name} missing in {}: build it with `fixtures/build-images.sh` (scripts/test.sh does)",
        dir.display()
    );
    let m = serde_json::from_slice(&std::fs::read(&man).unwrap()).expect("manifest JSON");
    (img, m)
}

/// Runs a tool, failing the test with its stderr (and the package to install) when it fails.
pub fn run(cmd: &mut Command, package: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}); install package {package}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A private copy of a fixture image, to be changed with real tools and then checked.
pub struct Variant {
    /// Keeps the copy alive.
    pub dir: tempfile::TempDir,
    /// The copy.
    pub path: PathBuf,
    /// The fixture's manifest.
    pub manifest: Value,
    scratch: usize,
}

impl Variant {
    /// A sparse copy of fixture `name` (reflinked where the filesystem can).
    pub fn of(name: &str) -> Variant {
        let (img, manifest) = fixture(name);
        let dir = tempfile::Builder::new()
            .prefix("vhdprep-variant-")
            .tempdir_in(
                std::env::var_os("VHDPREP_TEST_TMP").map_or_else(std::env::temp_dir, PathBuf::from),
            )
            .unwrap();
        let path = dir.path().join(format!("{name}.raw"));
        run(
            Command::new("cp")
                .arg("--sparse=always")
                .arg("--reflink=auto")
                .arg(&img)
                .arg(&path),
            "coreutils",
        );
        Variant {
            dir,
            path,
            manifest,
            scratch: 0,
        }
    }

    /// Byte offset of the partition mounted at `mountpoint` (from the manifest).
    pub fn partition_offset(&self, mountpoint: &str) -> u64 {
        self.manifest["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["mountpoint"] == mountpoint)
            .unwrap_or_else(|| panic!("no partition mounted at {mountpoint} in the manifest"))
            ["start"]
            .as_u64()
            .unwrap()
    }

    /// `image?offset=N` for e2fsprogs.
    fn ext4_device(&self, mountpoint: &str) -> String {
        format!(
            "{}?offset={}",
            self.path.display(),
            self.partition_offset(mountpoint)
        )
    }

    /// Runs debugfs requests (one per line) read-write on the ext4 filesystem mounted at
    /// `mountpoint`. Fails the test if debugfs reports an error for any request.
    pub fn debugfs(&self, mountpoint: &str, requests: &[String]) -> String {
        let script = self.dir.path().join("debugfs.cmds");
        std::fs::write(&script, requests.join("\n") + "\n").unwrap();
        let out = Command::new("debugfs")
            .arg("-w")
            .arg("-f")
            .arg(&script)
            .arg(self.ext4_device(mountpoint))
            .output()
            .expect("run debugfs (install e2fsprogs)");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        // debugfs exits 0 even when a request fails; its errors go to stderr after the banner.
        let problems: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
            .collect();
        assert!(
            out.status.success() && problems.is_empty(),
            "debugfs {requests:?}: {err}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn host_file(&mut self, contents: &[u8]) -> PathBuf {
        self.scratch += 1;
        let p = self.dir.path().join(format!("content-{}", self.scratch));
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Whether `path` exists in the ext4 filesystem at `mountpoint` (path relative to it).
    fn ext4_exists(&self, mountpoint: &str, path: &str) -> bool {
        let out = Command::new("debugfs")
            .arg("-R")
            .arg(format!("stat \"{path}\""))
            .arg(self.ext4_device(mountpoint))
            .output()
            .expect("run debugfs");
        out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("not found")
    }

    /// Translates a guest path to (mountpoint, path inside that filesystem) for the ext4
    /// partitions of the manifest (longest mountpoint first).
    fn locate(&self, guest_path: &str) -> (String, String) {
        let mut mounts: Vec<String> = self.manifest["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["filesystem"]["type"] == "ext4")
            .filter_map(|p| p["mountpoint"].as_str().map(str::to_string))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let rest = if m == "/" {
                Some(guest_path)
            } else {
                guest_path
                    .strip_prefix(m.as_str())
                    .filter(|r| r.is_empty() || r.starts_with('/'))
            };
            if let Some(rest) = rest {
                let inner = if rest.is_empty() { "/" } else { rest };
                return (m, inner.to_string());
            }
        }
        panic!("{guest_path} is not on an ext4 partition of this fixture")
    }

    /// Writes a file into the guest (replacing any file there), creating missing directories.
    pub fn write(&mut self, guest_path: &str, contents: impl AsRef<[u8]>) -> &mut Self {
        let (mp, inner) = self.locate(guest_path);
        let host = self.host_file(contents.as_ref());
        let mut reqs = self.mkdir_requests(&mp, parent(&inner));
        if self.ext4_exists(&mp, &inner) {
            reqs.push(format!("rm \"{inner}\""));
        }
        reqs.push(format!("write \"{}\" \"{inner}\"", host.display()));
        self.debugfs(&mp, &reqs);
        self
    }

    /// Creates a symbolic link in the guest (replacing any file there).
    pub fn symlink(&mut self, guest_path: &str, target: &str) -> &mut Self {
        let (mp, inner) = self.locate(guest_path);
        let mut reqs = self.mkdir_requests(&mp, parent(&inner));
        if self.ext4_exists(&mp, &inner) {
            reqs.push(format!("rm \"{inner}\""));
        }
        reqs.push(format!("symlink \"{inner}\" \"{target}\""));
        self.debugfs(&mp, &reqs);
        self
    }

    /// Creates a directory (and its parents) in the guest.
    pub fn mkdir(&mut self, guest_path: &str) -> &mut Self {
        let (mp, inner) = self.locate(guest_path);
        let reqs = self.mkdir_requests(&mp, &inner);
        if !reqs.is_empty() {
            self.debugfs(&mp, &reqs);
        }
        self
    }

    /// Removes a file or symlink from the guest (it must exist).
    pub fn remove(&mut self, guest_path: &str) -> &mut Self {
        let (mp, inner) = self.locate(guest_path);
        assert!(
            self.ext4_exists(&mp, &inner),
            "{guest_path} is not in the fixture"
        );
        self.debugfs(&mp, &[format!("rm \"{inner}\"")]);
        self
    }

    /// Sets the mode bits (octal, e.g. 0o100600 for a regular file) of a guest file.
    pub fn chmod(&mut self, guest_path: &str, mode: u32) -> &mut Self {
        let (mp, inner) = self.locate(guest_path);
        self.debugfs(&mp, &[format!("sif \"{inner}\" mode 0{mode:o}")]);
        self
    }

    /// The text of a guest file, as debugfs reads it.
    pub fn read(&self, guest_path: &str) -> String {
        let (mp, inner) = self.locate(guest_path);
        let out = Command::new("debugfs")
            .arg("-R")
            .arg(format!("cat \"{inner}\""))
            .arg(self.ext4_device(&mp))
            .output()
            .expect("run debugfs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Rewrites a guest text file with `edit`.
    pub fn edit(&mut self, guest_path: &str, edit: impl FnOnce(&str) -> String) -> &mut Self {
        let text = self.read(guest_path);
        let new = edit(&text);
        self.write(guest_path, new)
    }

    fn mkdir_requests(&self, mp: &str, dir: &str) -> Vec<String> {
        let mut reqs = Vec::new();
        let mut cur = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            if !self.ext4_exists(mp, &cur) {
                reqs.push(format!("mkdir \"{cur}\""));
            }
        }
        reqs
    }

    /// mtools `-i image@@offset` for the FAT ESP (mounted at `/boot/efi`).
    pub fn esp(&self) -> String {
        format!(
            "{}@@{}",
            self.path.display(),
            self.partition_offset("/boot/efi")
        )
    }

    /// Runs an mtools command (`mdel`, `mren`, `mcopy`, `mmd`, `mdeltree`) on the ESP, e.g.
    /// `v.mtools("mren", &["::/EFI/BOOT/BOOTX64.EFI", "::/EFI/BOOT/OLD.EFI"])`.
    pub fn mtools(&self, tool: &str, args: &[&str]) -> &Self {
        run(
            Command::new(tool)
                .env("MTOOLS_SKIP_CHECK", "1")
                .arg("-i")
                .arg(self.esp())
                .args(args),
            "mtools",
        );
        self
    }

    /// Makes the copy a fixed VHD in place (`vhdprep fix --in-place`, whose output is
    /// compared with qemu-img's in tests/vhd_interop.rs), so container rules stay quiet.
    pub fn make_vhd(&mut self) -> &mut Self {
        let image = DiskImage::open(&self.path).unwrap();
        let plan =
            vhdprep_disk::write::plan_fix(&image, Some(&vhdprep_partition::gpt::GptRelocator))
                .unwrap();
        drop(image);
        vhdprep_disk::write::apply_fix(&plan).unwrap();
        self
    }

    /// Runs `check` with `policy`.
    pub fn check(&self, policy: &Policy) -> Report {
        check_path(&self.path, policy)
    }
}

fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// One report per policy, from one gathering of the image's facts (gathering is the costly
/// part; judging is cheap).
pub fn reports(path: &Path, policies: &[Policy]) -> Vec<Report> {
    let image = DiskImage::open(path).unwrap();
    let mut ctx = vhdprep_check::Context::gather(&image, &[], &policies[0]).unwrap();
    policies
        .iter()
        .map(|p| {
            ctx.policy = p;
            Report::build(&ctx)
        })
        .collect()
}

/// Runs `check` on an image file.
pub fn check_path(path: &Path, policy: &Policy) -> Report {
    let image = DiskImage::open(path).unwrap();
    check(&image, &[], policy).unwrap()
}

/// The findings of rule `id` (allowed ones included).
pub fn findings<'a>(r: &'a Report, id: &str) -> Vec<&'a Finding> {
    r.findings
        .iter()
        .chain(r.allowed.iter())
        .filter(|f| f.id == id)
        .collect()
}

/// Asserts that rule `id` fired at `severity`, and returns its findings.
pub fn assert_fires<'a>(r: &'a Report, id: &str, severity: Severity) -> Vec<&'a Finding> {
    let f = findings(r, id);
    assert!(
        f.iter().any(|f| f.severity == severity),
        "{id} should fire at {severity} on {}; its findings: {f:#?}\nall findings: {:#?}",
        r.image,
        r.findings
    );
    f
}

/// Asserts that rule `id` was evaluated and has no finding at warning or error.
pub fn assert_quiet(r: &Report, id: &str) {
    let rule = r
        .rules
        .iter()
        .find(|x| x.id == id)
        .unwrap_or_else(|| panic!("{id} is not in the report's rules"));
    assert_ne!(
        rule.status,
        vhdprep_check::report::RuleStatus::Skipped,
        "{id} was not evaluated: {:?}",
        rule.reason
    );
    let loud: Vec<_> = findings(r, id)
        .into_iter()
        .filter(|f| f.severity > Severity::Info)
        .collect();
    assert!(
        loud.is_empty(),
        "{id} should be quiet on {}: {loud:#?}",
        r.image
    );
}
