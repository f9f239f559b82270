//! Helpers shared by the benchmarks that run vhdprep and its peers as processes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the fixture images are: `$VHDPREP_FIXTURE_CACHE`, else `fixtures/cache`.
pub fn fixture_dir() -> PathBuf {
    std::env::var_os("VHDPREP_FIXTURE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cache"))
}

/// Runs `cmd`, failing the benchmark unless it exits with one of `ok`.
pub fn must_run(cmd: &mut Command, ok: &[i32]) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        ok.contains(&out.status.code().unwrap_or(-1)),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Bytes returned by the read/pread syscalls of `cmd args` and its children (shared libraries
/// included), counted with strace into `log`.
pub fn bytes_read(cmd: &str, args: &[&str], log: &Path, ok: &[i32]) -> u64 {
    must_run(
        Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-e",
                "trace=read,pread64,preadv,preadv2",
                "-e",
                "signal=none",
                "-o",
            ])
            .arg(log)
            .arg(cmd)
            .args(args),
        ok,
    );
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.rsplit_once("= ")
                .and_then(|(_, n)| n.split_whitespace().next()?.parse::<i64>().ok())
        })
        .filter(|&n| n > 0)
        .map(|n| n as u64)
        .sum()
}
