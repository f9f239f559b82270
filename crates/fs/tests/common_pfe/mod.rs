//! Helpers for probe_fat_ext4.rs: running the real tools (failing loudly, with the Debian
//! package to install, when one is missing), blkid output, images on sparse files.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use vhdprep_disk::FileReader;
use vhdprep_fs::Volume;

/// Finds `tool` in PATH or the sbin directories, or panics naming the package.
pub fn tool(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    for dir in path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
    {
        let p = Path::new(dir).join(tool);
        if p.is_file() {
            return p;
        }
    }
    panic!("required tool `{tool}` is missing: apt-get install {package}");
}

/// Runs `tool` (from `package`) with `args`; panics with its output on failure. Returns stdout.
pub fn run(tool_name: &str, package: &str, args: &[&str]) -> Vec<u8> {
    run_env(tool_name, package, args, &[])
}

pub fn run_env(tool_name: &str, package: &str, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let exe = tool(tool_name, package);
    let out = Command::new(&exe)
        .args(args)
        .envs(env.iter().copied())
        .env("TZ", "UTC")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool_name}: {e}"));
    assert!(
        out.status.success(),
        "{tool_name} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A sparse file of `size` bytes.
pub fn sparse(path: &Path, size: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
}

/// The volume of an image file.
pub fn volume(path: &Path) -> Volume {
    Arc::new(FileReader::new(std::fs::File::open(path).unwrap()).unwrap())
}

/// `blkid -p -o export FILE` as a map, values unescaped.
pub fn blkid(path: &Path) -> HashMap<String, String> {
    let exe = tool("blkid", "util-linux (blkid)");
    let out = Command::new(exe)
        .args(["-p", "-o", "export"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let mut s = String::new();
            let mut esc = false;
            for c in v.chars() {
                if esc || c != '\\' {
                    s.push(c);
                    esc = false;
                } else {
                    esc = true;
                }
            }
            (k.to_string(), s)
        })
        .collect()
}

/// A small deterministic pseudo-random byte stream.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
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

/// A loop device attached to a file, detached on drop (for LVM, which refuses plain files).
pub struct Loop(pub String);

impl Loop {
    pub fn attach(file: &Path) -> Loop {
        let out = run(
            "losetup",
            "mount (losetup)",
            &["-f", "--show", file.to_str().unwrap()],
        );
        Loop(String::from_utf8(out).unwrap().trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new(tool("losetup", "mount (losetup)"))
            .args(["-d", &self.0])
            .status();
    }
}
