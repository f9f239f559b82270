//! Writers under faults: `convert` and `fix --in-place` with a file-size limit (RLIMIT_FSIZE,
//! set with the shell's `ulimit -f`), on a really full filesystem and on a read-only one (small
//! tmpfs mounts in a private mount namespace, see [`Namespace`]), with the destination's folder
//! removed mid-copy, and with another process changing the source or the image underneath.
//!
//! In every case the run fails with exit 2 and one line naming the file and the problem, the
//! source is not changed by vhdprep (hashes), no destination or temporary file is left, and a
//! re-run under sane conditions completes the job. Races are made deterministic with
//! `VHDPREP_FAULT_STOP_AFTER_STEP`: vhdprep stops itself after a given write step, the test
//! makes its change, then lets it continue ([`stopped_after`]).

mod common;

use common::*;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// Runs vhdprep with `args` under `ulimit -f` of `kib` KiB; with `ignore_signal` SIGXFSZ is
/// ignored so that writes fail with EFBIG instead of killing the process.
fn limited(dir: &Path, kib: u64, ignore_signal: bool, args: &[&str]) -> Output {
    let trap = if ignore_signal { "trap '' XFSZ; " } else { "" };
    Command::new("bash")
        .arg("-c")
        .arg(format!("{trap}ulimit -f {kib}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_vhdprep"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run bash")
}

#[test]
fn convert_past_the_file_size_limit_fails_cleanly() {
    let dir = tempdir();
    let src = dir.path().join("src.raw");
    sparse_raw(&src, 64 << 20, &[(0, 8 << 20), (40 << 20, 4 << 20)]);
    let before = sha(&src);
    // EFBIG: an error naming the file, exit 2, no destination, no temporary file left.
    let out = limited(
        dir.path(),
        16 << 10,
        true,
        &["convert", "src.raw", "dst.vhd"],
    );
    assert_one_line_error(
        &out,
        &[
            "dst.vhd: cannot size the converted disk",
            "past the largest file allowed here",
            "ulimit -f",
            "File too large",
        ],
    );
    assert!(!dir.path().join("dst.vhd").exists());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
    assert_eq!(sha(&src), before, "the source changed");
    // Killed by SIGXFSZ: no destination (only a temporary file a kill cannot remove).
    let out = limited(
        dir.path(),
        16 << 10,
        false,
        &["convert", "src.raw", "dst.vhd"],
    );
    assert_eq!(out.status.code(), None, "killed by SIGXFSZ");
    assert!(!dir.path().join("dst.vhd").exists());
    assert_eq!(sha(&src), before, "the source changed");
    // Without the limit the conversion completes and qemu-img reads the same disk.
    let out = run(&[
        "convert",
        src.to_str().unwrap(),
        dir.path().join("dst.vhd").to_str().unwrap(),
    ]);
    assert_ok(&out);
    assert!(qemu_identical(
        &src,
        "raw",
        &dir.path().join("dst.vhd"),
        "vpc"
    ));
}

#[test]
fn fix_in_place_past_the_file_size_limit_leaves_the_image_as_it_was() {
    let dir = tempdir();
    let img = dir.path().join("disk.raw");
    // 199.3 MiB: fixing it pads to 200 MiB and appends a footer, beyond a 199.5 MiB limit.
    sparse_raw(&img, 209_000_000, &[(0, 1 << 20), (100 << 20, 1 << 20)]);
    let before = sha(&img);
    let out = limited(
        dir.path(),
        204_000,
        true,
        &["fix", "--in-place", "disk.raw"],
    );
    assert_one_line_error(
        &out,
        &[
            "disk.raw: cannot write the footer",
            "past the largest file allowed here",
            "File too large",
        ],
    );
    assert_eq!(sha(&img), before, "a failed fix changed the image");
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 209_000_000);
    // A re-run without the limit finishes the job.
    let out = run(&["fix", "--in-place", img.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (info, code) = info_json(&img);
    assert_eq!((info["format"].as_str(), code), (Some("vhd-fixed"), 0));
    assert_own_check_clean(&img);
}

// ---- The source or the image changed by another process ----

/// The source of the change tests: 40 MiB with data in five 4 MiB chunks, so convert's steps
/// are 1 "sized output", 2..=6 one per data chunk, 7 "footer written", 8 "renamed".
fn five_chunk_source(path: &Path) {
    sparse_raw(
        path,
        40 * MIB,
        &[(0, 12 << 20), (20 * MIB, 4 << 20), (36 * MIB, 4 << 20)],
    );
}

/// Runs convert `src` -> `dst`, stopped after step `k` while `change` alters the source; the
/// conversion must fail naming the source and `what`, leaving no destination.
fn convert_with_source_changed(k: u32, change: impl FnOnce(&Path), what: &str) {
    let dir = tempdir();
    let src = p(dir.path(), "src.raw");
    let dst = p(dir.path(), "dst.vhd");
    five_chunk_source(&src);
    let args = [
        "convert",
        "-q",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ];
    let out = stopped_after(k, &args, || change(&src));
    let line = assert_one_line_error(
        &out,
        &[
            src.to_str().unwrap(),
            "changed while it was being converted",
            what,
        ],
    );
    assert!(line.contains("no destination was written"), "{line}");
    assert!(!dst.exists(), "after a change at step {k}");
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn convert_refuses_a_source_that_shrinks_during_the_copy() {
    // Before any data (cut in the middle of the data, or in the hole after 12 MiB, where the
    // reader finds no more data rather than an early end: once a silently zero-filled VHD),
    // mid-copy, after all the data.
    for (k, mib) in [(1, 10), (1, 16), (2, 10), (4, 10), (6, 10)] {
        convert_with_source_changed(
            k,
            |src| truncate(src, mib * MIB),
            &format!("its length went from 41943040 to {} bytes", mib * MIB),
        );
    }
}

#[test]
fn convert_refuses_a_source_that_grows_during_the_copy() {
    for k in [2, 6] {
        convert_with_source_changed(
            k,
            |src| {
                let f = std::fs::OpenOptions::new().write(true).open(src).unwrap();
                f.write_all_at(&pattern(9, 4096), 40 * MIB).unwrap();
            },
            "its length went from 41943040 to 41947136 bytes",
        );
    }
}

#[test]
fn convert_refuses_a_source_rewritten_in_place_during_the_copy() {
    convert_with_source_changed(
        3,
        |src| {
            // Past the coarsest timestamp tick, so the write shows in the modification time.
            std::thread::sleep(Duration::from_millis(20));
            let f = std::fs::OpenOptions::new().write(true).open(src).unwrap();
            f.write_all_at(&pattern(7, 4096), 21 * MIB).unwrap();
        },
        "it was written to (same length, 41943040 bytes)",
    );
}

#[test]
fn convert_refuses_a_dynamic_vhd_source_cut_during_the_copy() {
    // The block table, read at open, still lists blocks past the new end: their reads fail.
    let dir = tempdir();
    let raw = p(dir.path(), "data.raw");
    five_chunk_source(&raw);
    let src = p(dir.path(), "src.vhd");
    qemu_vhd_from_raw(&raw, &src, "");
    let len = std::fs::metadata(&src).unwrap().len();
    let dst = p(dir.path(), "dst.vhd");
    let args = [
        "convert",
        "-q",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ];
    let out = stopped_after(1, &args, || truncate(&src, 8 * MIB));
    assert_one_line_error(
        &out,
        &[
            "src.vhd: changed while it was being converted",
            &format!("its length went from {len} to {} bytes", 8 * MIB),
        ],
    );
    assert!(!dst.exists());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

/// Cuts `path` to `len` bytes (another process truncating the file).
fn truncate(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
}

#[test]
fn convert_racing_a_truncation_is_complete_or_refused() {
    // No stop points: a real race. Every outcome must be a complete copy of the source as it
    // was (old content, or the truncated file if the cut came before convert opened it), or
    // the one-line refusal with nothing left behind.
    let dir = tempdir();
    let orig = p(dir.path(), "orig.raw");
    dense_raw(&orig, 48);
    let cut = p(dir.path(), "cut.raw");
    std::fs::copy(&orig, &cut).unwrap();
    truncate(&cut, 16 * MIB);
    let (src, dst) = (p(dir.path(), "src.raw"), p(dir.path(), "dst.vhd"));
    let mut outcomes = [0u32; 3]; // refused, old content, cut content
                                  // The copy takes about a second here: the cuts fall before, during and after it.
    for (i, delay_ms) in [0u64, 10, 30, 100, 300, 600, 1000, 1500]
        .into_iter()
        .enumerate()
    {
        std::fs::copy(&orig, &src).unwrap();
        let child = vhdprep()
            .args([
                "convert",
                "-q",
                src.to_str().unwrap(),
                dst.to_str().unwrap(),
            ])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        truncate(&src, 16 * MIB);
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            let old = qemu_info(&dst, "vpc")["virtual-size"] == 48 * MIB;
            let want = if old { &orig } else { &cut };
            assert!(
                qemu_identical(want, "raw", &dst, "vpc"),
                "run {i}: wrong copy"
            );
            outcomes[if old { 1 } else { 2 }] += 1;
            std::fs::remove_file(&dst).unwrap();
        } else {
            assert_one_line_error(&out, &["src.raw", "16777216"]);
            assert!(!dst.exists());
            outcomes[0] += 1;
        }
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
    }
    eprintln!(
        "racing truncations: {} refused, {} old copies, {} copies of the cut file",
        outcomes[0], outcomes[1], outcomes[2]
    );
}

/// A fixed VHD of 50 MiB + 512 bytes (qemu-img's), which `fix --in-place` realigns in three
/// steps: copy the old footer to 51 MiB, zero the gap, write the new footer.
fn unaligned_fixed_vhd(dir: &Path) -> PathBuf {
    let raw = p(dir, "src.raw");
    sparse_raw(&raw, 50 * MIB + 512, &[(0, 4096), (50 * MIB, 512)]);
    let vhd = p(dir, "disk.vhd");
    qemu_vhd_from_raw(&raw, &vhd, "subformat=fixed");
    vhd
}

#[test]
fn fix_stops_when_another_process_changes_the_image_between_steps() {
    let dir = tempdir();
    let vhd = unaligned_fixed_vhd(dir.path());
    let out = stopped_after(1, &["fix", "--in-place", vhd.to_str().unwrap()], || {
        truncate(&vhd, 30 * MIB)
    });
    assert_one_line_error(
        &out,
        &[
            vhd.to_str().unwrap(),
            "another process changed it while vhdprep was fixing it",
            "its length went from",
            "to 31457280 bytes",
            "stopped before step 2 of 3",
        ],
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("done"));
    assert_eq!(
        std::fs::metadata(&vhd).unwrap().len(),
        30 * MIB,
        "vhdprep wrote on"
    );
}

#[test]
fn fix_never_reports_success_on_an_image_changed_at_the_commit() {
    let dir = tempdir();
    let img = p(dir.path(), "disk.raw");
    sparse_raw(&img, 21 * MIB + 3333, &[(0, 4096), (21 * MIB, 3333)]);
    // A raw image takes one step, the commit; the file is cut right after it.
    let out = stopped_after(1, &["fix", "--in-place", img.to_str().unwrap()], || {
        truncate(&img, 10 * MIB)
    });
    assert_one_line_error(
        &out,
        &[
            img.to_str().unwrap(),
            "another process changed it as vhdprep finished fixing it",
            "length 10485760 bytes, expected 23069184",
        ],
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("done"));
}

// ---- The destination's folder ----

#[test]
fn convert_into_a_missing_folder_fails_in_one_line() {
    let dir = tempdir();
    let src = p(dir.path(), "src.raw");
    five_chunk_source(&src);
    let before = sha(&src);
    let dst = dir.path().join("nowhere/out.vhd");
    let out = run(&[
        "convert",
        "-q",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]);
    assert_one_line_error(
        &out,
        &[
            "nowhere/out.vhd",
            "cannot create the temporary file",
            "No such file or directory",
        ],
    );
    assert_eq!(sha(&src), before);
}

#[test]
fn convert_whose_destination_folder_disappears_mid_copy_leaves_nothing() {
    let dir = tempdir();
    let src = p(dir.path(), "src.raw");
    five_chunk_source(&src);
    let before = sha(&src);
    let out_dir = p(dir.path(), "out");
    std::fs::create_dir(&out_dir).unwrap();
    let dst = out_dir.join("out.vhd");
    let args = [
        "convert",
        "-q",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ];
    // Removed with the temporary file in it, after the first data chunk.
    let out = stopped_after(2, &args, || {
        assert_eq!(leftovers(&out_dir).len(), 1);
        std::fs::remove_dir_all(&out_dir).unwrap();
    });
    assert_one_line_error(
        &out,
        &[
            "out/out.vhd",
            "cannot put the finished disk in place",
            "No such file or directory",
        ],
    );
    assert!(!out_dir.exists());
    assert_eq!(sha(&src), before, "the source changed");
}

// ---- Full and read-only filesystems ----

#[test]
fn convert_onto_a_full_disk_fails_cleanly_and_a_rerun_with_space_completes() {
    let ns = Namespace::new();
    let dir = tempdir();
    // 16 MiB of dense data (outside the tmpfs) cannot fit in 8 MiB, however sparse the copy.
    let src = p(dir.path(), "src.raw");
    dense_raw(&src, 16);
    let before = sha(&src);
    let mnt = p(dir.path(), "full");
    let full = ns.tmpfs(&mnt, "size=8m");
    let dst = full.join("out.vhd");
    let out = run(&[
        "convert",
        "-q",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]);
    assert_one_line_error(
        &out,
        &[
            "full/out.vhd",
            "cannot write the converted disk",
            "the disk holding it is full",
            "No space left on device",
        ],
    );
    assert_eq!(sha(&src), before, "the source changed");
    assert_eq!(names(&full), Vec::<String>::new(), "left behind");
    // With room, the same command completes and the copy reads as the source.
    ns.sh(&format!("mount -o remount,size=32m {}", mnt.display()));
    assert_ok(&run(&[
        "convert",
        "-q",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]));
    assert!(qemu_identical(&src, "raw", &dst, "vpc"));
    assert_eq!(std::fs::metadata(&dst).unwrap().len(), 16 * MIB + 512);
    assert_eq!(sha(&src), before);
    assert_own_check_clean(&dst);
}

#[test]
fn fix_in_place_on_a_full_disk_leaves_the_image_as_it_was() {
    let ns = Namespace::new();
    let dir = tempdir();
    let mnt = p(dir.path(), "full");
    let full = ns.tmpfs(&mnt, "size=8m");
    // A raw image (3 MiB + 100 bytes: the footer goes at 4 MiB, on a page not yet allocated)
    // and an unaligned fixed VHD (its old footer is first copied to the next MiB).
    let raw = full.join("disk.raw");
    sparse_raw(&raw, 3 * MIB + 100, &[(0, 3 << 20), (3 * MIB, 100)]);
    let vhd = full.join("disk.vhd");
    sparse_copy(&unaligned_fixed_vhd(dir.path()), &vhd);
    let keep: Vec<(PathBuf, PathBuf)> = [&raw, &vhd]
        .iter()
        .map(|f| {
            let copy = dir.path().join(f.file_name().unwrap());
            sparse_copy(f, &copy);
            (f.to_path_buf(), copy)
        })
        .collect();
    fill_up(&full);
    for (img, orig) in &keep {
        let (before, len) = (sha(img), std::fs::metadata(img).unwrap().len());
        let out = run(&["fix", "--in-place", img.to_str().unwrap()]);
        assert_one_line_error(
            &out,
            &[
                img.to_str().unwrap(),
                "the disk holding it is full",
                "No space left on device",
            ],
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("done"));
        assert_eq!(sha(img), before, "a failed fix changed {}", img.display());
        assert_eq!(std::fs::metadata(img).unwrap().len(), len);
        assert_eq!(sha(orig), before);
    }
    // With room again, the fix completes and the disk reads as before.
    std::fs::remove_file(full.join("fill")).unwrap();
    for ((img, orig), (fmt, size)) in keep.iter().zip([("raw", 4 * MIB), ("vpc", 51 * MIB)]) {
        assert_ok(&run(&["fix", "--in-place", img.to_str().unwrap()]));
        let (info, _) = info_json(img);
        assert_eq!(info["format"].as_str(), Some("vhd-fixed"));
        assert_eq!(info["virtual_size"].as_u64(), Some(size));
        assert_eq!(std::fs::metadata(img).unwrap().len(), size + 512);
        assert!(qemu_identical(orig, fmt, img, "vpc"), "{}", img.display());
        assert_own_check_clean(img);
    }
}

#[test]
fn writers_on_a_read_only_filesystem_fail_in_one_line() {
    let ns = Namespace::new();
    let dir = tempdir();
    let src = p(dir.path(), "src.raw");
    five_chunk_source(&src);
    let before = sha(&src);
    let mnt = p(dir.path(), "ro");
    let ro = ns.tmpfs(&mnt, "size=64m");
    let img = ro.join("disk.raw");
    std::fs::copy(&src, &img).unwrap();
    ns.sh(&format!("mount -o remount,ro {}", mnt.display()));
    // convert into it: refused when creating the temporary file.
    let dst = ro.join("out.vhd");
    let out = run(&[
        "convert",
        "-q",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]);
    assert_one_line_error(
        &out,
        &[
            "ro/out.vhd",
            "cannot create the temporary file",
            "Read-only file system",
        ],
    );
    assert_eq!(names(&ro), ["disk.raw"]);
    // fix an image on it: refused at open, image unchanged.
    let out = run(&["fix", "--in-place", img.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        &[
            "ro/disk.raw",
            "cannot open for writing",
            "Read-only file system",
        ],
    );
    assert_eq!(sha(&img), before);
    assert_eq!(sha(&src), before);
}
