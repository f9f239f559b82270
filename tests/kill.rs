//! Crash tests with real kills: `fix --in-place` and `convert` are killed (SIGKILL) after
//! every durable step, and at random moments from outside; afterwards the image must read as
//! the old one or the new one, and a conversion's destination must be absent or complete.

mod common;
use common::*;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// What a file reads as now.
#[derive(Debug, PartialEq)]
enum State {
    Old,
    New,
    Neither(String),
}

/// Judges `file` against the original (`orig`, format `orig_fmt`) and the expected new content
/// (a fixed VHD whose disk equals `orig` padded to `new_size`).
fn state(file: &Path, orig: &Path, orig_fmt: &str, orig_len: u64, new_size: u64) -> State {
    let len = std::fs::metadata(file).unwrap().len();
    let (v, _) = info_json(file);
    let is_new = v["format"] == "vhd-fixed"
        && len == new_size + 512
        && v["virtual_size"].as_u64() == Some(new_size)
        && v["footer"]["checksum_valid"] == true
        && qemu_info(file, "vpc")["virtual-size"].as_u64() == Some(new_size)
        && qemu_identical(orig, orig_fmt, file, "vpc");
    if is_new {
        return State::New;
    }
    let is_old = if orig_fmt == "raw" {
        len == orig_len && read(file) == read(orig)
    } else {
        qemu_info(file, "vpc")["virtual-size"] == qemu_info(orig, "vpc")["virtual-size"]
            && qemu_identical(orig, orig_fmt, file, "vpc")
    };
    if is_old {
        State::Old
    } else {
        State::Neither(format!("len {len}, info {v}"))
    }
}

/// Runs `fix --in-place` killed after step `k`; returns whether the kill happened.
fn fix_killed_after(file: &Path, k: u32) -> bool {
    let out = vhdprep()
        .args(["fix", "--in-place", file.to_str().unwrap()])
        .env("VHDPREP_FAULT_KILL_AFTER_STEP", k.to_string())
        .output()
        .unwrap();
    match out.status.signal() {
        Some(9) => true,
        None if out.status.success() => false,
        _ => panic!(
            "fix failed: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Kills `fix` after each step in turn until it completes; checks old-or-new each time.
fn kill_at_every_step(orig: &Path, orig_fmt: &str, new_size: u64) {
    let dir = orig.parent().unwrap();
    let orig_len = std::fs::metadata(orig).unwrap().len();
    let mut saw_old = false;
    for k in 1..20 {
        let work = dir.join(format!("work-{k}"));
        sparse_copy(orig, &work);
        let killed = fix_killed_after(&work, k);
        let s = state(&work, orig, orig_fmt, orig_len, new_size);
        match (&s, killed) {
            (State::Old, true) => saw_old = true,
            (State::New, _) => {}
            (State::Old, false) => panic!("fix completed but the file is unchanged"),
            (State::Neither(why), _) => panic!("killed after step {k}: neither old nor new: {why}"),
        }
        // A re-run after the kill finishes the job.
        let again = run(&["fix", "--in-place", work.to_str().unwrap()]);
        assert!(
            again.status.success(),
            "re-run after kill at {k}: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_eq!(
            state(&work, orig, orig_fmt, orig_len, new_size),
            State::New,
            "after re-run at {k}"
        );
        std::fs::remove_file(&work).unwrap();
        if !killed {
            return;
        }
    }
    let _ = saw_old;
    panic!("fix never completed");
}

#[test]
fn fix_raw_killed_at_every_step() {
    let d = tempdir();
    let raw = p(d.path(), "orig.raw");
    sparse_raw(&raw, 21 * MIB + 3333, &[(0, 4096), (21 * MIB, 3333)]);
    kill_at_every_step(&raw, "raw", 22 * MIB);
}

#[test]
fn fix_realign_killed_at_every_step() {
    let d = tempdir();
    let raw = p(d.path(), "src.raw");
    sparse_raw(&raw, 50 * MIB + 512, &[(0, 4096), (50 * MIB, 512)]);
    let vhd = p(d.path(), "orig.vhd");
    qemu_vhd_from_raw(&raw, &vhd, "subformat=fixed");
    let size = qemu_info(&vhd, "vpc")["virtual-size"].as_u64().unwrap();
    assert_ne!(size % MIB, 0);
    kill_at_every_step(&vhd, "vpc", size.div_ceil(MIB) * MIB);
}

#[test]
fn fix_truncating_a_long_file_killed_at_every_step() {
    let d = tempdir();
    let raw = p(d.path(), "src.raw");
    sparse_raw(&raw, 20 * MIB + 1024, &[(0, 4096), (20 * MIB, 1024)]);
    // Disk of 20 MiB + 1024, then 2 MiB of zeros, then a footer.
    let mut bytes = read(&raw);
    bytes.extend(std::iter::repeat_n(0u8, 2 << 20));
    bytes.extend_from_slice(&vhdprep::disk::vhd::Footer::new_fixed(20 * MIB + 1024).to_bytes());
    let vhd = p(d.path(), "orig.vhd");
    write_file(&vhd, &bytes);
    kill_at_every_step(&vhd, "vpc", 21 * MIB);
}

#[test]
fn fix_killed_at_random_moments_from_outside() {
    let d = tempdir();
    let raw = p(d.path(), "orig.raw");
    sparse_raw(&raw, 300 * MIB + 100, &[(0, 4096), (300 * MIB, 100)]);
    let orig_len = 300 * MIB + 100;
    let mut outcomes = (0, 0);
    for i in 0..25u64 {
        let work = p(d.path(), "work.raw");
        sparse_copy(&raw, &work);
        let mut child = vhdprep()
            .args(["fix", "--in-place", work.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(200 * (i % 25)));
        let _ = child.kill();
        let _ = child.wait();
        match state(&work, &raw, "raw", orig_len, 301 * MIB) {
            State::Old => outcomes.0 += 1,
            State::New => outcomes.1 += 1,
            State::Neither(why) => panic!("kill {i}: neither old nor new: {why}"),
        }
    }
    eprintln!("random kills: {} old, {} new", outcomes.0, outcomes.1);
}

#[test]
fn convert_killed_at_every_step_leaves_no_partial_destination() {
    let d = tempdir();
    let raw = p(d.path(), "src.raw");
    // Several data chunks so there are several steps.
    sparse_raw(
        &raw,
        40 * MIB + 5,
        &[(0, 5 << 20), (17 * MIB, 1 << 20), (40 * MIB, 5)],
    );
    let dst = p(d.path(), "out.vhd");
    let mut completed = false;
    for k in 1..40 {
        let out = vhdprep()
            .args([
                "convert",
                "-q",
                raw.to_str().unwrap(),
                dst.to_str().unwrap(),
            ])
            .env("VHDPREP_FAULT_KILL_AFTER_STEP", k.to_string())
            .output()
            .unwrap();
        let killed = out.status.signal() == Some(9);
        if dst.exists() {
            // Complete: a valid fixed VHD with the source's content.
            assert!(
                qemu_identical(&raw, "raw", &dst, "vpc"),
                "partial destination after kill at {k}"
            );
            assert_eq!(std::fs::metadata(&dst).unwrap().len(), 41 * MIB + 512);
            std::fs::remove_file(&dst).unwrap();
            if !killed {
                completed = true;
                break;
            }
        } else {
            assert!(
                killed,
                "convert exited without a destination: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert!(completed, "convert never completed");
    // Each run removed the temporary file the run killed before it left.
    assert_eq!(leftovers(d.path()), Vec::<String>::new());
    // The source was never touched.
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), 40 * MIB + 5);
}
