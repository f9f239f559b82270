//! `vhdprep upload` against Azurite (Microsoft's storage emulator, npm `azurite`), started on
//! 127.0.0.1 on a free port with its data in a temporary directory and stopped by PID; the
//! other side of every comparison is Microsoft's Python SDK (`azure-storage-blob`, through
//! tests/azure_blob.py) and `md5sum`. scripts/test.sh installs Node.js, Azurite and the
//! Python SDK; a missing one fails the test naming how to install it.

mod common;
#[path = "common/fault_proxy.rs"]
mod fault_proxy;

use common::*;
use fault_proxy::{FaultProxy, Schedule};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Azurite's well-known development account (public, documented by Microsoft).
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The azurite-blob launcher: $VHDPREP_AZURITE, else where scripts/test.sh installs it.
fn azurite_bin() -> PathBuf {
    let p = std::env::var_os("VHDPREP_AZURITE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/vhdprep-node/node_modules/.bin/azurite-blob"));
    assert!(
        p.is_file(),
        "Azurite is missing at {}: `npm install --prefix /var/cache/vhdprep-node azurite@3.35.0` (scripts/test.sh does), or set VHDPREP_AZURITE",
        p.display()
    );
    p
}

/// A running Azurite blob service, killed when dropped.
struct Azurite {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Azurite {
    fn start() -> Azurite {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("azurite.log")).unwrap();
        let child = Command::new(azurite_bin())
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(dir.path())
            .args(["--silent", "--skipApiVersionCheck", "--disableTelemetry"])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start azurite-blob (Node.js installed?)");
        let az = Azurite {
            child,
            port,
            _dir: dir,
        };
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "Azurite did not listen on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        az
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    fn conn(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={};",
            self.endpoint()
        )
    }

    /// A SAS URL for `blob` in `container` with `perms`, valid for `seconds` (negative:
    /// expired), signed by the Python side.
    fn sas(&self, container: &str, blob: &str, perms: &str, seconds: i64) -> String {
        py(&[
            "sas",
            &self.endpoint(),
            ACCOUNT,
            KEY,
            container,
            blob,
            perms,
            &seconds.to_string(),
        ])
        .trim()
        .to_string()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tests/azure_blob.py with `args`; asserts success, returns stdout.
fn py(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/azure_blob.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "azure_blob.py {:?} failed (pip install azure-storage-blob; scripts/test.sh does): {}",
        &args[..1],
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the Python SDK reads back: the bytes (written to `out`) and the blob's facts.
fn download(az: &Azurite, container: &str, blob: &str, out: &Path) -> serde_json::Value {
    let text = py(&[
        "download",
        &az.conn(),
        container,
        blob,
        out.to_str().unwrap(),
    ]);
    serde_json::from_str(&text).unwrap()
}

/// The non-zero 512-byte pages of `bytes`, merged into ranges.
fn nonzero_pages(bytes: &[u8]) -> Vec<[u64; 2]> {
    let mut out: Vec<[u64; 2]> = Vec::new();
    for (i, page) in bytes.chunks(512).enumerate() {
        if page.iter().any(|&b| b != 0) {
            let (s, e) = (i as u64 * 512, i as u64 * 512 + page.len() as u64);
            match out.last_mut() {
                Some(last) if last[1] == s => last[1] = e,
                _ => out.push([s, e]),
            }
        }
    }
    out
}

/// Page ranges as the service lists them (Azurite lists the pages of each Put Page apart),
/// adjacent ones joined.
fn page_ranges(facts: &serde_json::Value) -> Vec<[u64; 2]> {
    let list: Vec<[u64; 2]> = serde_json::from_value(facts["page_ranges"].clone()).unwrap();
    let mut out: Vec<[u64; 2]> = Vec::new();
    for r in list {
        match out.last_mut() {
            Some(last) if last[1] == r[0] => last[1] = r[1],
            _ => out.push(r),
        }
    }
    out
}

/// `md5sum` of a file, as the base64 `Content-MD5` form.
fn content_md5(path: &Path) -> String {
    let out = tool("md5sum", "coreutils", &[path.to_str().unwrap()]);
    let hex = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    // Standard base64 of 16 bytes.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// A private copy of the committed sample image (32 MiB fixed VHD of a real Debian guest).
fn sample(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample/debian-mini.vhd");
    let dst = dir.join("disk.vhd");
    std::fs::copy(&src, &dst).unwrap();
    dst
}

/// The signature part of a SAS URL.
fn sig_of(url: &str) -> String {
    url.split("sig=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string()
}

/// Asserts nothing vhdprep printed holds the signature (raw or percent-decoded).
fn assert_no_secret(out: &Output, url: &str) {
    let sig = sig_of(url);
    let decoded = sig
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains(&sig) && !text.contains(&decoded) && !text.contains(KEY),
            "the output shows a secret: {text}"
        );
    }
}

/// `vhdprep upload IMG --to URL -q EXTRA...`.
fn upload(img: &Path, url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["upload", img.to_str().unwrap(), "--to", url, "-q"];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn the_sample_image_uploads_exactly_and_a_second_run_sends_nothing() {
    let az = Azurite::start();
    let dir = tempdir();
    let img = sample(dir.path());
    py(&["container", &az.conn(), "images"]);
    let url = az.sas("images", "debian.vhd", "rcw", 3600);
    // The sample is a minimal guest that `check` fails (no agent, no kernel): not uploaded.
    let out = upload(&img, &url, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not uploaded: `check` failed"), "{err}");
    assert_no_secret(&out, &url);
    assert_eq!(
        py(&["exists", &az.conn(), "images", "debian.vhd"]).trim(),
        "False"
    );
    let out = upload(&img, &url, &["--json", "--no-check"]);
    assert_no_secret(&out, &url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let bytes = std::fs::read(&img).unwrap();
    let want_ranges = nonzero_pages(&bytes);
    let nonzero: u64 = want_ranges.iter().map(|r| r[1] - r[0]).sum();
    assert!(
        nonzero > 1 << 20 && nonzero < bytes.len() as u64 / 2,
        "{nonzero}"
    );
    let back = dir.path().join("back.vhd");
    let facts = download(&az, "images", "debian.vhd", &back);
    assert!(
        std::fs::read(&back).unwrap() == bytes,
        "the blob the Python SDK downloads differs from the image"
    );
    assert_eq!(facts["size"], bytes.len() as u64);
    assert!(
        facts["blob_type"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("pageblob"),
        "{facts}"
    );
    assert_eq!(facts["content_md5"], content_md5(&img));
    assert_eq!(rep["content_md5"], content_md5(&img));
    let got = page_ranges(&facts);
    assert_eq!(
        got, want_ranges,
        "the blob's page ranges are not exactly the non-zero pages"
    );
    assert_eq!(rep["nonzero_bytes"], nonzero);
    assert_eq!(rep["bytes_sent"], nonzero, "{rep}");
    assert_eq!(rep["resumed"], false);

    // The same command again: the blob already holds this image; nothing is sent.
    let out = upload(&img, &url, &["--json", "--verify-download", "--no-check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep["resumed"], true, "{rep}");
    assert_eq!(rep["bytes_sent"], 0, "{rep}");
    assert_eq!(rep["already_present_bytes"], nonzero, "{rep}");
    assert_eq!(rep["verified_download"], true);
}

#[test]
fn a_connection_string_signs_its_own_sas() {
    let az = Azurite::start();
    let dir = tempdir();
    let img = sample(dir.path());
    py(&["container", &az.conn(), "vhds"]);
    let out = vhdprep()
        .args([
            "upload",
            img.to_str().unwrap(),
            "--container",
            "vhds",
            "--blob",
            "os/disk.vhd",
            "-q",
            "--no-check",
        ])
        .env("AZURE_STORAGE_CONNECTION_STRING", az.conn())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains(KEY) && !text.contains("sig="), "{text}");
    assert!(
        text.contains(&format!("{}/vhds/os/disk.vhd", az.endpoint())),
        "{text}"
    );
    let back = dir.path().join("back.vhd");
    let facts = download(&az, "vhds", "os/disk.vhd", &back);
    assert!(std::fs::read(&back).unwrap() == std::fs::read(&img).unwrap());
    assert_eq!(facts["content_md5"], content_md5(&img));
}

#[test]
fn bad_destinations_and_containers_are_one_line_without_the_signature() {
    let az = Azurite::start();
    let dir = tempdir();
    let img = sample(dir.path());
    py(&["container", &az.conn(), "images"]);
    let one_line = |out: &Output, url: &str, needles: &[&str]| {
        assert_no_secret(out, url);
        let err = assert_one_line_error(out, needles);
        assert!(out.stdout.is_empty(), "{err}");
    };
    // Expired.
    let url = az.sas("images", "a.vhd", "rcw", -3600);
    one_line(
        &upload(&img, &url, &["--retries", "1", "--no-check"]),
        &url,
        &["403"],
    );
    // Read-only: the blob cannot be created.
    let url = az.sas("images", "b.vhd", "r", 3600);
    one_line(
        &upload(&img, &url, &["--retries", "1", "--no-check"]),
        &url,
        &["403", "Put Blob"],
    );
    // A block blob of that name.
    py(&["blockblob", &az.conn(), "images", "block.vhd"]);
    let url = az.sas("images", "block.vhd", "rcw", 3600);
    one_line(
        &upload(&img, &url, &["--no-check"]),
        &url,
        &["block or append blob"],
    );
    // A page blob of another size.
    py(&["pageblob", &az.conn(), "images", "small.vhd", "1048576"]);
    let url = az.sas("images", "small.vhd", "rcw", 3600);
    one_line(
        &upload(&img, &url, &["--no-check"]),
        &url,
        &["1048576 bytes", "--overwrite"],
    );
    // ... which --overwrite replaces.
    let out = upload(&img, &url, &["--overwrite", "--no-check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No service listening.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = url.replace(&az.port.to_string(), &closed.to_string());
    one_line(
        &upload(&img, &url, &["--retries", "1", "--no-check"]),
        &url,
        &["no response"],
    );
    // A URL without a SAS, and no URL at all.
    let bare = format!("{}/images/x.vhd", az.endpoint());
    assert_one_line_error(&upload(&img, &bare, &[]), &["carries no SAS token"]);
    assert_one_line_error(
        &run(&["upload", img.to_str().unwrap()]),
        &["no destination"],
    );
    // Not a fixed VHD: the command that makes one.
    let dynamic = dir.path().join("dyn.vhd");
    qemu_img(&[
        "convert",
        "-f",
        "vpc",
        "-O",
        "vpc",
        "-o",
        "subformat=dynamic",
        img.to_str().unwrap(),
        dynamic.to_str().unwrap(),
    ]);
    let url = az.sas("images", "d.vhd", "rcw", 3600);
    one_line(
        &upload(&dynamic, &url, &[]),
        &url,
        &["vhd-dynamic", "vhdprep convert"],
    );
}

/// A fixed VHD of `mib` MiB, made by `vhdprep fix --in-place` from a sparse raw file with
/// pseudo-random data in every other 3 MiB (so pieces start and end off the 4 MiB grid).
fn data_disk(dir: &Path, mib: u64) -> PathBuf {
    let img = dir.join("data.vhd");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(mib << 20).unwrap();
    use std::os::unix::fs::FileExt;
    let mut at = 0u64;
    let mut seed = 7u64;
    while at + (3 << 20) <= mib << 20 {
        let chunk = pattern(seed, 3 << 20);
        f.write_all_at(&chunk, at).unwrap();
        at += 6 << 20;
        seed += 1;
    }
    drop(f);
    let out = run(&["fix", "--in-place", img.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    img
}

/// The URL `url` with its host:port replaced by the proxy's.
fn via(url: &str, az: &Azurite, proxy: &FaultProxy) -> String {
    url.replace(&format!(":{}/", az.port), &format!(":{}/", proxy.port))
}

/// Checks the blob as the Python SDK reads it: the image's bytes, its MD5, exactly its pages.
fn assert_blob_is(az: &Azurite, container: &str, blob: &str, img: &Path, dir: &Path) {
    let back = dir.join("back.raw");
    let facts = download(az, container, blob, &back);
    let bytes = std::fs::read(img).unwrap();
    assert!(
        std::fs::read(&back).unwrap() == bytes,
        "the blob differs from the image"
    );
    assert_eq!(facts["content_md5"], content_md5(img));
    assert_eq!(page_ranges(&facts), nonzero_pages(&bytes));
    std::fs::remove_file(back).unwrap();
}

#[test]
fn dropped_connections_503s_and_stalls_end_in_the_right_blob_or_one_line() {
    let az = Azurite::start();
    let dir = tempdir();
    let img = data_disk(dir.path(), 96);
    py(&["container", &az.conn(), "images"]);
    // 10% dropped, 10% busy, 3% stalled for longer than the request timeout; retried.
    let proxy = FaultProxy::start(
        az.port,
        Schedule {
            seed: 42,
            drop_permille: 100,
            busy_permille: 100,
            stall_permille: 30,
            stall: Duration::from_secs(4),
        },
    );
    let url = az.sas("images", "faults.vhd", "rcw", 3600);
    let out = upload(
        &img,
        &via(&url, &az, &proxy),
        &[
            "--no-check",
            "--retries",
            "12",
            "--request-timeout",
            "2",
            "--parallel",
            "4",
        ],
    );
    assert_no_secret(&out, &url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        proxy
            .stats
            .faults
            .load(std::sync::atomic::Ordering::Relaxed)
            > 3
    );
    assert_eq!(
        proxy
            .stats
            .md5_mismatches
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_blob_is(&az, "images", "faults.vhd", &img, dir.path());

    // Every request dropped: the upload gives up with one line, and says nothing of success.
    let dead = FaultProxy::start(
        az.port,
        Schedule {
            seed: 3,
            drop_permille: 1000,
            ..Schedule::clean()
        },
    );
    let url = az.sas("images", "never.vhd", "rcw", 3600);
    let out = upload(
        &img,
        &via(&url, &az, &dead),
        &["--no-check", "--retries", "2"],
    );
    assert_no_secret(&out, &url);
    assert_one_line_error(&out, &["no response"]);
    assert!(out.stdout.is_empty());
}

#[test]
fn killed_at_random_moments_the_next_run_sends_only_what_is_missing() {
    let az = Azurite::start();
    let dir = tempdir();
    let img = data_disk(dir.path(), 192);
    let bytes = std::fs::read(&img).unwrap();
    let nonzero: u64 = nonzero_pages(&bytes).iter().map(|r| r[1] - r[0]).sum();
    drop(bytes);
    py(&["container", &az.conn(), "images"]);
    let parallel = 4u64;
    for (round, seed) in [11u64, 29, 53].into_iter().enumerate() {
        let blob = format!("killed-{round}.vhd");
        let url = az.sas("images", &blob, "rcw", 3600);
        let proxy = FaultProxy::start(az.port, Schedule::clean());
        let stats = proxy.stats.clone();
        let purl = via(&url, &az, &proxy);
        // Kill once the service has taken a seeded share (10-80%) of the data.
        let share = 10 + seed % 71;
        let mut child = vhdprep()
            .args([
                "upload",
                img.to_str().unwrap(),
                "--to",
                &purl,
                "-q",
                "--no-check",
            ])
            .args(["--parallel", &parallel.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while stats
            .put_page_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
            * 100
            < nonzero * share
        {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "round {round}: no progress"
            );
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        let _ = child.wait();
        // Requests the proxy had read in full before the kill still reach the service.
        std::thread::sleep(Duration::from_secs(1));
        let before = stats
            .put_page_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        // The same command again finishes the upload.
        let out = upload(
            &img,
            &purl,
            &["--no-check", "--json", "--parallel", &parallel.to_string()],
        );
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(rep["resumed"], true, "round {round}: {rep}");
        let total = stats
            .put_page_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            total <= nonzero + parallel * (4 << 20),
            "round {round}: {total} bytes sent in all for {nonzero} non-zero bytes (killed after {before})"
        );
        assert_eq!(
            rep["bytes_sent"].as_u64().unwrap(),
            total - before,
            "round {round}: the resumed run's count differs from what the proxy forwarded"
        );
        assert_blob_is(&az, "images", &blob, &img, dir.path());
    }
}
