//! A reader that goes away (`vhdprep info IMG | head -1`) silences the output; it is never a
//! panic ("failed printing to stdout"), and the command keeps its own exit status. Standard
//! output here is a pipe whose read end is closed before the command starts, so every write
//! fails with EPIPE, deterministically.

mod common;
use common::{fixture_raw, vhdprep};
use std::process::Stdio;

/// Runs vhdprep with `args` and a stdout nobody reads; returns (exit status, stderr).
/// (`std::io::pipe` is newer than the crates' MSRV; only this test uses it.)
#[allow(clippy::incompatible_msrv)]
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = vhdprep()
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_command_survives_a_closed_stdout() {
    let img = fixture_raw("gen2-gpt-ext4");
    let dir = common::tempdir();
    let raw = common::p(dir.path(), "small.raw");
    common::sparse_raw(&raw, 3 << 20, &[(0, 4096)]);
    let raw = raw.to_str().unwrap();
    let cases: &[(&[&str], i32)] = &[
        (&["info", &img], 1),
        (&["info", "--json", &img], 1),
        (&["inspect", &img], 0),
        (&["inspect", "--json", &img], 0),
        (&["ls", "-l", &img, "/etc"], 0),
        (&["cat", &img, "/etc/os-release"], 0),
        (&["rules"], 0),
        (&["rules", "--format", "markdown"], 0),
        (&["check", &img], 1),
        (&["gallery", &img], 0),
        (&["checksum", "--crc32", raw], 0),
        (&["fix", "--in-place", "--dry-run", raw], 0),
    ];
    for (args, code) in cases {
        let (status, err) = with_closed_stdout(args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(status, Some(*code), "{args:?}: {err}");
    }
}
