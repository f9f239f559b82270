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

    /// Rewrites a guest text file with `edit`. An edit that changes nothing fails the test:
    /// the text it looks for is not in this fixture (a version or path the archive no longer
    /// has, say), and the variant would silently be the unchanged fixture.
    pub fn edit(&mut self, guest_path: &str, edit: impl FnOnce(&str) -> String) -> &mut Self {
        let text = self.read(guest_path);
        let new = edit(&text);
        assert!(
            new != text,
            "the edit of {guest_path} in a copy of {} changed nothing: what it replaces is not in this fixture",
            self.manifest["name"]
        );
        self.write(guest_path, new)
    }

    /// The kernel release the fixture was built with (`6.1.0-57-cloud-amd64`), as the fixture
    /// build recorded it: its grub.cfg, /boot and /usr/lib/modules use this name.
    pub fn kernel(&self) -> String {
        recorded(&self.manifest, &["kernel_release"])
    }

    /// The version of an installed package as the guest's package database writes it, as the
    /// fixture build recorded it (`openssl` → `3.0.22-1~deb12u2`).
    pub fn package_version(&self, package: &str) -> String {
        recorded(&self.manifest, &["installed", package])
    }

    /// An agent's own version as it reports it (`waagent` → `2.7.3.0`, `cloud-init` →
    /// `22.4.2`), as the fixture build read it from the agent's version.py.
    pub fn agent_version(&self, agent: &str) -> String {
        recorded(&self.manifest, &["agents", agent])
    }

    /// Sets the version of `package` in the guest's dpkg status, whatever it is now.
    pub fn set_package_version(&mut self, package: &str, version: &str) -> &mut Self {
        self.edit("/var/lib/dpkg/status", |t| {
            set_dpkg_version(t, package, version)
        })
    }

    /// Makes an agent report `version` (`waagent`'s AGENT_VERSION, cloud-init's __VERSION__),
    /// whatever it reports now.
    pub fn set_agent_version(&mut self, agent: &str, version: &str) -> &mut Self {
        let (path, key) = match agent {
            "waagent" => (WAAGENT_VERSION_PY, "AGENT_VERSION"),
            "cloud-init" => (CLOUD_INIT_VERSION_PY, "__VERSION__"),
            other => panic!("no version file known for agent {other}"),
        };
        self.edit(path, |t| set_py_assignment(t, key, version))
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

/// Where waagent keeps its own version (`AGENT_VERSION = '2.7.3.0'`).
pub const WAAGENT_VERSION_PY: &str =
    "/usr/lib/python3/dist-packages/azurelinuxagent/common/version.py";
/// Where cloud-init keeps its own version (`__VERSION__ = "22.4.2"`).
pub const CLOUD_INIT_VERSION_PY: &str = "/usr/lib/python3/dist-packages/cloudinit/version.py";

/// A string the fixture build recorded in the manifest at `keys`; fails naming the keys when
/// it is absent (a cache built before the manifest recorded it: rebuild the fixtures).
pub fn recorded(manifest: &Value, keys: &[&str]) -> String {
    let mut v = manifest;
    for k in keys {
        v = &v[*k];
    }
    v.as_str()
        .unwrap_or_else(|| {
            panic!(
                "manifest of {} has no {}: rebuild the fixtures (fixtures/build-images.sh)",
                manifest["name"],
                keys.join(".")
            )
        })
        .to_string()
}

/// `status` (a dpkg status file) with the `Version:` of `package`'s stanza set to `version`.
/// Fails when the package has no stanza with a version.
pub fn set_dpkg_version(status: &str, package: &str, version: &str) -> String {
    // dpkg writes `Package:` first in each stanza; stanzas are separated by blank lines.
    let mut in_package = false;
    let mut found = false;
    let mut out = String::with_capacity(status.len());
    for line in status.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if bare.is_empty() {
            in_package = false;
        } else if let Some(name) = bare.strip_prefix("Package: ") {
            in_package = name == package;
        }
        if in_package && bare.starts_with("Version: ") {
            found = true;
            out.push_str(&format!("Version: {version}"));
            out.push_str(&line[bare.len()..]);
        } else {
            out.push_str(line);
        }
    }
    assert!(found, "dpkg status has no version for package {package}");
    out
}

/// Python source `text` with the string assigned to `name` at the start of a line set to
/// `value` (`AGENT_VERSION = '2.7.3.0'` → `AGENT_VERSION = '2.2.40'`), quotes kept.
pub fn set_py_assignment(text: &str, name: &str, value: &str) -> String {
    let mut found = false;
    let mut out: String = text
        .lines()
        .map(|l| {
            let rest = l.strip_prefix(name).map(str::trim_start);
            match rest.and_then(|r| r.strip_prefix('=')).map(str::trim_start) {
                Some(q) if !found && (q.starts_with('\'') || q.starts_with('"')) => {
                    found = true;
                    let quote = &q[..1];
                    format!("{name} = {quote}{value}{quote}")
                }
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    assert!(found, "no `{name} = '...'` line in the Python source");
    out
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
