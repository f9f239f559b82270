//! `vhdprep checksum` and `vhdprep checksum --verify` as a user runs them: values against
//! md5sum, sha256sum, b3sum and Python's zlib, JSON keys, scopes on qemu-img VHDs, --output,
//! exit statuses, no progress output when not on a terminal, and memory under 128 MiB.

mod common;

use common::{run, tool};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

const MIB: u64 = 1 << 20;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn first_word(out: std::process::Output) -> String {
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn python_crc32(path: &Path) -> String {
    let out = tool(
        "python3",
        "python3",
        &[
            "-c",
            "import sys,zlib\nc=0\nf=open(sys.argv[1],'rb')\nwhile True:\n b=f.read(1<<20)\n if not b: break\n c=zlib.crc32(b,c)\nprint('%08x'%c)",
            s(path),
        ],
    );
    first_word(out)
}

/// Pseudo-random bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// 24 MiB + 1000 bytes: data, holes, zero pages inside data.
fn mixed(path: &Path) {
    let f = File::create(path).unwrap();
    f.set_len(24 * MIB + 1000).unwrap();
    f.write_all_at(&noise(3 * MIB as usize, 1), MIB + 512)
        .unwrap();
    f.write_all_at(&noise(5000, 2), 9 * MIB - 100).unwrap();
    f.write_all_at(&vec![0u8; 8192], 2 * MIB).unwrap();
    f.write_all_at(&noise(600, 3), 24 * MIB + 400).unwrap();
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn default_values_equal_the_peer_tools() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    mixed(&img);
    let out = run(&["checksum", s(&img)]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "no progress when not a terminal");
    let text = String::from_utf8(out.stdout).unwrap();
    let value = |k: &str| {
        text.lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some(k)).then(|| w.next().unwrap().to_string())
            })
            .unwrap_or_else(|| panic!("no {k} in {text}"))
    };
    let md5 = first_word(tool("md5sum", "coreutils", &[s(&img)]));
    assert_eq!(value("md5"), md5);
    assert_eq!(
        value("sha256"),
        first_word(tool("sha256sum", "coreutils", &[s(&img)]))
    );
    assert_eq!(value("crc32"), python_crc32(&img));
    assert_eq!(value("size"), (24 * MIB + 1000).to_string());
    assert!(!text.contains("blake3"));

    let v = json(&["checksum", "--json", s(&img)]);
    assert_eq!(
        keys(&v),
        [
            "crc32",
            "md5",
            "md5_base64",
            "nonzero_bytes",
            "ranges",
            "sha256",
            "size"
        ]
    );
    assert_eq!(v["md5"], md5.as_str());
    // Content-MD5 form: base64 of the same 16 bytes.
    let b64 = first_word(tool(
        "python3",
        "python3",
        &[
            "-c",
            "import base64,sys;print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())",
            &md5,
        ],
    ));
    assert_eq!(v["md5_base64"], b64.as_str());
    let ranges = v["ranges"].as_array().unwrap();
    let nz: u64 = ranges.iter().map(|r| r[1].as_u64().unwrap()).sum();
    assert_eq!(v["nonzero_bytes"].as_u64().unwrap(), nz);
    assert!(ranges.iter().all(|r| r.as_array().unwrap().len() == 2));
    // The 8 KiB of zeros written inside the data stays out of the map.
    assert!(ranges.iter().all(|r| {
        r[0].as_u64().unwrap() + r[1].as_u64().unwrap() <= 2 * MIB
            || r[0].as_u64().unwrap() >= 2 * MIB + 8192
    }));

    let b = json(&["checksum", "--json", "--blake3", s(&img)]);
    assert_eq!(keys(&b), ["blake3", "size"]);
    assert_eq!(
        b["blake3"],
        first_word(tool("b3sum", "b3sum", &[s(&img)])).as_str()
    );
    let c = json(&["checksum", "--json", "--crc32", "--zero-map", s(&img)]);
    assert_eq!(keys(&c), ["crc32", "nonzero_bytes", "ranges", "size"]);
    assert_eq!(c["ranges"], v["ranges"]);
}

#[test]
fn range_md5_entries_are_4_mib_pieces_with_their_md5() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    mixed(&img);
    let v = json(&["checksum", "--json", "--range-md5", s(&img)]);
    assert_eq!(keys(&v), ["nonzero_bytes", "ranges", "size"]);
    let ranges = v["ranges"].as_array().unwrap();
    assert!(ranges.len() >= 3);
    let script = "import base64,hashlib,json,sys\nf=open(sys.argv[1],'rb')\nfor o,l,m in json.loads(sys.argv[2]):\n f.seek(o)\n assert l<=4<<20 and o//(4<<20)==(o+l-1)//(4<<20), (o,l)\n assert base64.b64encode(hashlib.md5(f.read(l)).digest()).decode()==m, (o,l)\nprint('ok')";
    let out = tool(
        "python3",
        "python3",
        &["-c", script, s(&img), &v["ranges"].to_string()],
    );
    assert_eq!(first_word(out), "ok");
}

#[test]
fn scopes_on_dynamic_and_fixed_vhds() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("src.raw");
    mixed(&raw);
    File::options()
        .write(true)
        .open(&raw)
        .unwrap()
        .set_len(25 * MIB)
        .unwrap();
    let raw_json = json(&[
        "checksum",
        "--json",
        "--blake3",
        "--md5",
        "--crc32",
        "--zero-map",
        s(&raw),
    ]);
    for sub in ["dynamic", "fixed"] {
        let vhd = dir.path().join(format!("{sub}.vhd"));
        common::qemu_img(&[
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            &format!("subformat={sub},force_size=on"),
            s(&raw),
            s(&vhd),
        ]);
        let disk = json(&[
            "checksum",
            "--json",
            "--blake3",
            "--md5",
            "--crc32",
            "--zero-map",
            "--scope",
            "disk",
            s(&vhd),
        ]);
        assert_eq!(disk, raw_json, "{sub}: disk scope equals the raw source");
        // A disk-scope manifest verifies in disk scope, and fails in blob scope with a note.
        let manifest = dir.path().join(format!("{sub}.json"));
        std::fs::write(&manifest, serde_json::to_string(&disk).unwrap()).unwrap();
        let out = run(&[
            "checksum",
            "--verify",
            s(&manifest),
            "--scope",
            "disk",
            s(&vhd),
        ]);
        assert_eq!(out.status.code(), Some(0));
        let out = run(&["checksum", "--verify", s(&manifest), s(&vhd)]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stdout).contains("size differs"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--scope disk"));
        let blob = json(&["checksum", "--json", "--md5", s(&vhd)]);
        assert_eq!(
            blob["md5"],
            first_word(tool("md5sum", "coreutils", &[s(&vhd)])).as_str(),
            "{sub}: blob scope is the file"
        );
        assert_eq!(
            blob["size"].as_u64().unwrap(),
            std::fs::metadata(&vhd).unwrap().len()
        );
    }
}

#[test]
fn verify_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    mixed(&img);
    let manifest = dir.path().join("m.json");
    let out = run(&[
        "checksum",
        "--range-md5",
        "--md5",
        "--sha256",
        "--crc32",
        "--blake3",
        "--json",
        "--output",
        s(&manifest),
        s(&img),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "--output leaves stdout empty");
    let out = run(&["checksum", "--verify", s(&manifest), s(&img)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));

    // One byte changed inside a non-zero range: every hash and that range's MD5 differ.
    File::options()
        .write(true)
        .open(&img)
        .unwrap()
        .write_all_at(b"\x01", 2 * MIB + 4096 + 3)
        .unwrap();
    let out = run(&["checksum", "--verify", s(&manifest), s(&img)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    for key in [
        "md5 differs",
        "sha256 differs",
        "crc32 differs",
        "blake3 differs",
        "ranges differs",
        "nonzero_bytes differs",
    ] {
        assert!(text.contains(key), "{key} in {text}");
    }
    assert!(!text.contains("size differs"), "{text}");

    // A default manifest (merged ranges): a byte written into a zero area changes the map.
    let plain = dir.path().join("plain.json");
    let out = run(&["checksum", "--json", "--output", s(&plain), s(&img)]);
    assert_eq!(out.status.code(), Some(0));
    File::options()
        .write(true)
        .open(&img)
        .unwrap()
        .write_all_at(b"\x02", 20 * MIB + 5)
        .unwrap();
    let out = run(&["checksum", "--verify", s(&plain), s(&img)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ranges differs") && text.contains(&format!("[{}, 512]", 20 * MIB)),
        "{text}"
    );
    assert!(text.contains("nonzero_bytes differs"), "{text}");

    // A manifest with only a SHA-256 checks only that.
    let sha = dir.path().join("sha.json");
    let mut f = File::create(&sha).unwrap();
    let real = first_word(tool("sha256sum", "coreutils", &[s(&img)]));
    write!(f, "{{\"sha256\": \"{}\"}}", real.to_uppercase()).unwrap();
    let out = run(&["checksum", "--verify", s(&sha), s(&img)]);
    assert_eq!(out.status.code(), Some(0));

    // Unreadable image or manifest: 2, one line naming the file.
    let missing = dir.path().join("missing.raw");
    let out = run(&["checksum", "--verify", s(&manifest), s(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing.raw") && err.lines().count() == 1,
        "{err}"
    );
    let out = run(&["checksum", "--verify", s(&missing), s(&img)]);
    assert_eq!(out.status.code(), Some(2));
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "[1, 2]").unwrap();
    let out = run(&["checksum", "--verify", s(&junk), s(&img)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a checksum manifest"));
    std::fs::write(&junk, "{\"other\": 1}").unwrap();
    let out = run(&["checksum", "--verify", s(&junk), s(&img)]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreadable_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["checksum", s(dir.path())]);
    assert_eq!(out.status.code(), Some(2));
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let out = run(&["checksum", "--scope", "disk", s(&empty)]);
    assert_eq!(out.status.code(), Some(2));
    // The blob of an empty file hashes fine.
    let v = json(&["checksum", "--json", s(&empty)]);
    assert_eq!(v["md5"], "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(v["size"], 0);
    assert_eq!(v["ranges"], serde_json::json!([]));
}

#[test]
fn memory_stays_under_128_mib() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("big.raw");
    let mut f = std::io::BufWriter::new(File::create(&img).unwrap());
    let block = noise(MIB as usize, 9);
    for _ in 0..192 {
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    // Peak RSS of the child, from the kernel's accounting (KiB).
    let out = tool(
        "python3",
        "python3",
        &[
            "-c",
            "import resource,subprocess,sys\nsubprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL)\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
            env!("CARGO_BIN_EXE_vhdprep"),
            "checksum",
            "--md5",
            "--sha256",
            "--crc32",
            "--blake3",
            "--range-md5",
            s(&img),
        ],
    );
    let kib: u64 = first_word(out).parse().unwrap();
    assert!(kib < 128 * 1024, "peak RSS {kib} KiB");
}

#[test]
fn memory_does_not_grow_with_the_map() {
    // 512 MiB where every other 512-byte page is non-zero: 524288 ranges. Kept in memory with
    // their JSON they would take tens of MiB; streamed to a spill file they take none.
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("striped.raw");
    let mut block = vec![0u8; MIB as usize];
    for p in (0..block.len()).step_by(1024) {
        block[p] = 1;
    }
    let mut f = std::io::BufWriter::new(File::create(&img).unwrap());
    for _ in 0..512 {
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let out_json = dir.path().join("out.json");
    let out = tool(
        "python3",
        "python3",
        &[
            "-c",
            "import resource,subprocess,sys\nsubprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL)\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
            env!("CARGO_BIN_EXE_vhdprep"),
            "checksum",
            "--zero-map",
            "--json",
            "--output",
            s(&out_json),
            s(&img),
        ],
    );
    let kib: u64 = first_word(out).parse().unwrap();
    assert!(kib < 24 * 1024, "peak RSS {kib} KiB");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    assert_eq!(v["ranges"].as_array().unwrap().len(), 512 * 1024);
    assert_eq!(v["ranges"][7], serde_json::json!([7 * 1024, 512]));
    assert_eq!(v["nonzero_bytes"], 256 * MIB);
}
