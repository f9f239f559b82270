//! Writers and the checksum pass under faults, on real filesystems as users meet them: ext4
//! and XFS made by their mkfs on loop devices (mounted in a private mount namespace, see
//! [`Namespace`]), and a FUSE filesystem that injects what a local filesystem cannot be made
//! to do on demand: EIO on a read or a write at a chosen offset, ENOSPC at fsync
//! (`tests/faultfs.py`; this kernel has no device-mapper, so there is no `error` target to
//! use instead).
//!
//! The sources are larger than every buffer pool (the copy's 4 x 4 MiB, the checksum's
//! 8 x 4 MiB), so a stage that outlived a failed one would have to wait for a buffer: the
//! hang of issue 17, where `convert` never returned on a full disk. Every run is watched
//! ([`run_watched`]): a hang fails the test. Each case checks exit status 2 within the bound,
//! one line on stderr naming the right file and the cause, no temporary file left, the space
//! given back, the source unchanged (SHA-256), and a re-run that completes once there is room
//! (`qemu-img compare` with the source).

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// The disk offset in a `... (disk offset N): ...` error line.
fn offset_in(line: &str) -> u64 {
    let at = line.find("(disk offset ").expect("an offset") + "(disk offset ".len();
    line[at..]
        .split(')')
        .next()
        .unwrap()
        .parse()
        .expect("a number")
}

/// Asserts that `free` (bytes free after a failed run) is what it was before, give or take
/// the filesystem's own bookkeeping: the temporary file's space was given back.
fn assert_space_given_back(before: u64, after: u64) {
    assert!(
        after + MIB >= before,
        "{} KiB free before, {} KiB after: the space was not given back",
        before >> 10,
        after >> 10
    );
}

/// `convert -q SRC DST` under the watchdog.
fn convert(src: &Path, dst: &Path) -> std::process::Output {
    run_watched(&[
        "convert",
        "-q",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ])
}

/// Converts `src` onto the full or too small filesystem at `mnt` (holding only `keep`
/// besides what the run may leave), and checks the failure: exit 2, one line naming
/// `mnt`'s `out.vhd` and saying the disk is full, no file left, space given back, source
/// unchanged. Returns the error line.
fn convert_fails_for_lack_of_space(src: &Path, mnt: &Path, keep: &[&str]) -> String {
    let before = (sha(src), free_bytes(mnt));
    let dst = mnt.join("out.vhd");
    let out = convert(src, &dst);
    let line = assert_one_line_error(
        &out,
        &[
            dst.to_str().unwrap(),
            "the disk holding it is full",
            "No space left on device",
        ],
    );
    let mut want: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names(mnt), want, "left behind in {}", mnt.display());
    assert_space_given_back(before.1, free_bytes(mnt));
    assert_eq!(sha(src), before.0, "the source changed");
    line
}

/// Converts again once there is room: completes, and qemu-img reads the source's disk.
fn convert_completes(src: &Path, dst: &Path) {
    assert_ok(&convert(src, dst));
    assert!(qemu_identical(src, "raw", dst, "vpc"), "{}", dst.display());
    let _ = std::fs::remove_file(dst);
}

#[test]
fn convert_onto_a_small_ext4_fails_midway_and_completes_where_there_is_room() {
    // The case: 100 MiB of random data onto a 64 MiB ext4.
    let ns = Namespace::new();
    let dir = tempdir();
    let src = p(dir.path(), "src.raw");
    dense_raw(&src, 100);
    let image = p(dir.path(), "ext4.img");
    let mnt = ns.loop_fs("ext4", 64, &image, &p(dir.path(), "ext4"));
    let line = convert_fails_for_lack_of_space(&src, &mnt, &["lost+found"]);
    assert!(line.contains("cannot write the converted disk"), "{line}");
    // In the middle: past the copy's buffer pool, before the end.
    let at = offset_in(&line);
    assert!((16 * MIB..100 * MIB).contains(&at), "{line}");
    let roomy = ns.loop_fs(
        "ext4",
        256,
        &p(dir.path(), "big.img"),
        &p(dir.path(), "big"),
    );
    convert_completes(&src, &roomy.join("out.vhd"));
}

#[test]
fn convert_onto_a_nearly_full_xfs_fails_midway_and_completes_once_there_is_room() {
    // mkfs.xfs makes nothing under 300 MiB; a file takes most of it, as on a real disk.
    let ns = Namespace::new();
    let dir = tempdir();
    let src = p(dir.path(), "src.raw");
    dense_raw(&src, 100);
    let mnt = ns.loop_fs("xfs", 300, &p(dir.path(), "xfs.img"), &p(dir.path(), "xfs"));
    let filler = mnt.join("other-files");
    let size = (free_bytes(&mnt) - 40 * MIB).to_string();
    let out = tool(
        "fallocate",
        "util-linux",
        &["-l", &size, filler.to_str().unwrap()],
    );
    assert!(out.status.success(), "fallocate: {out:?}");
    let line = convert_fails_for_lack_of_space(&src, &mnt, &["other-files"]);
    let at = offset_in(&line);
    assert!((16 * MIB..100 * MIB).contains(&at), "{line}");
    std::fs::remove_file(&filler).unwrap();
    convert_completes(&src, &mnt.join("out.vhd"));
}

#[test]
fn convert_onto_a_full_filesystem_fails_at_the_start() {
    let ns = Namespace::new();
    let dir = tempdir();
    let src = p(dir.path(), "src.raw");
    dense_raw(&src, 40);
    for (fstype, mib) in [("ext4", 64), ("xfs", 300)] {
        let mnt = ns.loop_fs(
            fstype,
            mib,
            &p(dir.path(), &format!("{fstype}.img")),
            &p(dir.path(), fstype),
        );
        fill_up(&mnt);
        let mut keep = vec!["fill"];
        if fstype == "ext4" {
            keep.push("lost+found");
        }
        let line = convert_fails_for_lack_of_space(&src, &mnt, &keep);
        // The first data write (or already the temporary file) finds no room.
        if line.contains("cannot write the converted disk") {
            assert_eq!(offset_in(&line), 0, "{line}");
        }
        std::fs::remove_file(mnt.join("fill")).unwrap();
        convert_completes(&src, &mnt.join("out.vhd"));
    }
}

#[test]
fn fix_in_place_on_a_full_ext4_or_xfs_leaves_the_image_as_it_was() {
    let ns = Namespace::new();
    let dir = tempdir();
    for (fstype, mib) in [("ext4", 64), ("xfs", 300)] {
        let mnt = ns.loop_fs(
            fstype,
            mib,
            &p(dir.path(), &format!("{fstype}.img")),
            &p(dir.path(), fstype),
        );
        // A raw image of 20 MiB + 100 bytes of data: the fix writes its footer at 21 MiB,
        // on a block not yet allocated, and the rest of the filesystem is full. The fix
        // reserves the blocks its steps will write before the first one, so it stops there.
        let img = mnt.join("disk.raw");
        dense_raw(&img, 20);
        let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(&pattern(3, 100), 20 * MIB).unwrap();
        f.sync_all().unwrap();
        drop(f);
        let orig = p(dir.path(), &format!("{fstype}-orig.raw"));
        std::fs::copy(&img, &orig).unwrap();
        fill_up(&mnt);
        let before = (sha(&img), free_bytes(&mnt));
        let out = run_watched(&["fix", "--in-place", img.to_str().unwrap()]);
        assert_one_line_error(
            &out,
            &[
                img.to_str().unwrap(),
                "cannot reserve space for the fix",
                "the disk holding it is full",
            ],
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("done"));
        assert_eq!(sha(&img), before.0, "a failed fix changed the image");
        assert_eq!(std::fs::metadata(&img).unwrap().len(), 20 * MIB + 100);
        assert_space_given_back(before.1, free_bytes(&mnt));
        // With room, the fix completes and the disk reads as before.
        std::fs::remove_file(mnt.join("fill")).unwrap();
        assert_ok(&run_watched(&["fix", "--in-place", img.to_str().unwrap()]));
        assert_eq!(std::fs::metadata(&img).unwrap().len(), 21 * MIB + 512);
        assert!(qemu_identical(&orig, "raw", &img, "vpc"), "{fstype}");
    }
}

// ---- FUSE: EIO and ENOSPC where a local filesystem cannot produce them on demand ----

#[test]
fn a_source_read_error_past_the_buffer_pools_ends_convert_and_checksum() {
    let ns = Namespace::new();
    let dir = tempdir();
    let backing = p(dir.path(), "backing");
    std::fs::create_dir(&backing).unwrap();
    let real_src = backing.join("src.raw");
    dense_raw(&real_src, 100);
    let before = sha(&real_src);
    // Past the copy's 16 MiB and the checksum's 32 MiB of buffers.
    let bad = 50 * MIB + 12345;
    let fuse = FaultFs::mount(
        &ns,
        &backing,
        &p(dir.path(), "fuse"),
        &["--read-eio", &format!("/src.raw:{bad}")],
    );
    let src = fuse.path().join("src.raw");
    let out_dir = p(dir.path(), "out");
    std::fs::create_dir(&out_dir).unwrap();
    let dst = out_dir.join("out.vhd");
    let line = assert_one_line_error(
        &convert(&src, &dst),
        &[
            src.to_str().unwrap(),
            "cannot read",
            "the device holding it reported an I/O error",
            "Input/output error",
        ],
    );
    assert_eq!(
        offset_in(&line),
        48 * MIB,
        "the 4 MiB chunk holding it: {line}"
    );
    assert!(fuse.log().contains("read EIO"), "{}", fuse.log());
    assert_eq!(names(&out_dir), Vec::<String>::new());
    // The checksum pass: the 256 KiB piece holding the bad byte, named with the file.
    let out = run_watched(&["checksum", "-q", src.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        &[
            &format!(
                "{}: cannot read at offset {}",
                src.display(),
                bad / (256 << 10) * (256 << 10)
            ),
            "the device holding it reported an I/O error",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(sha(&real_src), before, "the source changed");
    // From a device that reads, the conversion completes.
    convert_completes(&real_src, &dst);
}

#[test]
fn a_destination_write_error_ends_convert_naming_the_destination() {
    let ns = Namespace::new();
    let dir = tempdir();
    let src = p(dir.path(), "src.raw");
    dense_raw(&src, 100);
    let before = sha(&src);
    let backing = p(dir.path(), "backing");
    std::fs::create_dir(&backing).unwrap();
    let fuse = FaultFs::mount(
        &ns,
        &backing,
        &p(dir.path(), "fuse"),
        &["--write-eio", &format!("vhdprep-tmp:{}", 40 * MIB + 7)],
    );
    let dst = fuse.path().join("out.vhd");
    let line = assert_one_line_error(
        &convert(&src, &dst),
        &[
            dst.to_str().unwrap(),
            "cannot write the converted disk",
            "the device holding it reported an I/O error",
        ],
    );
    let at = offset_in(&line);
    assert!((36 * MIB..=40 * MIB).contains(&at), "{line}");
    assert!(fuse.log().contains("write EIO"), "{}", fuse.log());
    assert_eq!(names(&backing), Vec::<String>::new(), "left behind");
    assert_eq!(sha(&src), before, "the source changed");
    convert_completes(&src, &backing.join("out.vhd"));
}

#[test]
fn enospc_at_fsync_ends_convert_and_fix_naming_the_file() {
    let ns = Namespace::new();
    let dir = tempdir();
    let src = p(dir.path(), "src.raw");
    dense_raw(&src, 40);
    let before = sha(&src);
    let backing = p(dir.path(), "backing");
    std::fs::create_dir(&backing).unwrap();
    let real_img = backing.join("disk.raw");
    sparse_raw(&real_img, 20 * MIB + 100, &[(0, 1 << 20), (20 * MIB, 100)]);
    let orig = p(dir.path(), "orig.raw");
    std::fs::copy(&real_img, &orig).unwrap();
    let fuse = FaultFs::mount(
        &ns,
        &backing,
        &p(dir.path(), "fuse"),
        &[
            "--fsync-enospc",
            "vhdprep-tmp",
            "--fsync-enospc",
            "disk.raw",
        ],
    );
    // convert: every byte written, the flush before the rename fails.
    let dst = fuse.path().join("out.vhd");
    assert_one_line_error(
        &convert(&src, &dst),
        &[
            dst.to_str().unwrap(),
            "cannot flush the converted disk",
            "the disk holding it is full",
        ],
    );
    assert!(fuse.log().contains("fsync ENOSPC"), "{}", fuse.log());
    assert_eq!(names(&backing), ["disk.raw"], "left behind");
    assert_eq!(sha(&src), before, "the source changed");
    // fix: the footer is written, its flush fails; the file reads as the old image or the
    // new one, never anything else, and the fix says it failed.
    let img = fuse.path().join("disk.raw");
    assert_one_line_error(
        &run_watched(&["fix", "--in-place", img.to_str().unwrap()]),
        &[
            img.to_str().unwrap(),
            "cannot flush",
            "the disk holding it is full",
        ],
    );
    let len = std::fs::metadata(&real_img).unwrap().len();
    assert!(
        (len == 20 * MIB + 100 && sha(&real_img) == sha(&orig))
            || (len == 21 * MIB + 512 && qemu_identical(&orig, "raw", &real_img, "vpc")),
        "neither old nor new: {len} bytes"
    );
    // Where fsync works, both complete.
    drop(fuse);
    assert_ok(&run_watched(&[
        "fix",
        "--in-place",
        real_img.to_str().unwrap(),
    ]));
    assert!(qemu_identical(&orig, "raw", &real_img, "vpc"));
    convert_completes(&src, &backing.join("out.vhd"));
}

// ---- Killed at random moments on a loop-mounted ext4, then run again ----

/// The space `path` takes on disk (its allocated blocks), by `stat`.
fn bytes_on_disk(path: &Path) -> u64 {
    let out = tool(
        "stat",
        "coreutils",
        &["--format=%b %B", path.to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().unwrap());
    it.next().unwrap() * it.next().unwrap()
}

/// Things in `mnt` named like `out.vhd`'s temporary files that are not one: a symlink to a
/// file outside them, a directory holding a file, a FIFO, and regular files whose names
/// differ from the pattern (another destination's temporary file, five random characters,
/// not hidden). Returns their names and the file the symlink points at.
fn decoys(mnt: &Path) -> (Vec<String>, std::path::PathBuf) {
    let target = mnt.join("precious");
    std::fs::write(&target, b"keep me").unwrap();
    std::os::unix::fs::symlink(&target, mnt.join(".out.vhd.Sym123.vhdprep-tmp")).unwrap();
    std::fs::create_dir(mnt.join(".out.vhd.Dir123.vhdprep-tmp")).unwrap();
    std::fs::write(mnt.join(".out.vhd.Dir123.vhdprep-tmp/inside"), b"x").unwrap();
    let fifo = mnt.join(".out.vhd.Fifo12.vhdprep-tmp");
    assert!(tool("mkfifo", "coreutils", &[fifo.to_str().unwrap()])
        .status
        .success());
    for name in [
        ".other.vhd.Ab12Cd.vhdprep-tmp",
        ".out.vhd.Ab12C.vhdprep-tmp",
        "out.vhd.Ab12Cd.vhdprep-tmp",
    ] {
        std::fs::write(mnt.join(name), pattern(9, 1 << 20)).unwrap();
    }
    (names(mnt), target)
}

/// Asserts that the decoys made by [`decoys`] are all still there, unchanged.
fn assert_decoys_untouched(mnt: &Path, target: &Path) {
    assert_eq!(std::fs::read(target).unwrap(), b"keep me");
    let link = mnt.join(".out.vhd.Sym123.vhdprep-tmp");
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), target);
    assert_eq!(
        std::fs::read(mnt.join(".out.vhd.Dir123.vhdprep-tmp/inside")).unwrap(),
        b"x"
    );
    use std::os::unix::fs::FileTypeExt;
    let fifo = mnt.join(".out.vhd.Fifo12.vhdprep-tmp");
    assert!(fifo.symlink_metadata().unwrap().file_type().is_fifo());
    for name in [
        ".other.vhd.Ab12Cd.vhdprep-tmp",
        ".out.vhd.Ab12C.vhdprep-tmp",
        "out.vhd.Ab12Cd.vhdprep-tmp",
    ] {
        assert_eq!(
            std::fs::read(mnt.join(name)).unwrap(),
            pattern(9, 1 << 20),
            "{name}"
        );
    }
}

/// The temporary files of `out.vhd` in `mnt`: [`leftovers`] without the decoys.
fn temps_of_out_vhd(mnt: &Path, decoys: &[String]) -> Vec<String> {
    leftovers(mnt)
        .into_iter()
        .filter(|n| !decoys.contains(n))
        .collect()
}

#[test]
fn a_rerun_removes_what_a_killed_convert_left_and_gives_the_space_back() {
    // 32 MiB of data onto a 64 MiB ext4: after the killed run, what is left free is less
    // than the re-run needs, so it completes only if it gives that space back first.
    let ns = Namespace::new();
    let dir = tempdir();
    let src = p(dir.path(), "src.raw");
    dense_raw(&src, 32);
    let mnt = ns.loop_fs(
        "ext4",
        64,
        &p(dir.path(), "ext4.img"),
        &p(dir.path(), "ext4"),
    );
    let dst = mnt.join("out.vhd");
    let (decoys, target) = decoys(&mnt);
    let free_before = free_bytes(&mnt);
    // Killed after step 8: the output sized, then 7 of the 8 data chunks of 4 MiB copied.
    let out = vhdprep()
        .args([
            "convert",
            "-q",
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
        ])
        .env("VHDPREP_FAULT_KILL_AFTER_STEP", "8")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    assert!(!dst.exists());
    let left = temps_of_out_vhd(&mnt, &decoys);
    assert_eq!(left.len(), 1, "{left:?}");
    let stale = mnt.join(&left[0]);
    let held = bytes_on_disk(&stale);
    let taken = free_before - free_bytes(&mnt);
    assert!(
        held >= 28 * MIB && taken >= 28 * MIB,
        "held {held}, free space taken {taken}"
    );
    let free_after_kill = free_bytes(&mnt);
    assert!(
        free_after_kill < 32 * MIB,
        "{free_after_kill} bytes free: room for the re-run even with the stale file"
    );
    // The re-run removes it, says so in one line, and completes.
    let out = convert(&src, &dst);
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = format!(
        "vhdprep: removed {}'s temporary file {} left by an interrupted run: ",
        dst.display(),
        left[0],
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&said), "{stderr}");
    // The bytes the file held when the re-run removed it: what was measured after the kill,
    // give or take what ext4 settled since (delayed allocation, trimmed preallocation).
    let freed: u64 = stderr
        .trim_end()
        .strip_suffix(" bytes) freed")
        .and_then(|t| t.rsplit_once(" MiB ("))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| panic!("no ' MiB (N bytes) freed' in: {stderr}"));
    assert!(
        freed >= 28 * MIB && freed.abs_diff(held) <= MIB,
        "freed {freed}, held {held} after the kill: {stderr}"
    );
    assert!(qemu_identical(&src, "raw", &dst, "vpc"));
    let mut want_names = decoys.clone();
    want_names.push("out.vhd".into());
    want_names.sort();
    assert_eq!(names(&mnt), want_names);
    assert_decoys_untouched(&mnt, &target);
    // The space is back: the destination is all the run added.
    let added = free_before - free_bytes(&mnt);
    let out_size = bytes_on_disk(&dst);
    eprintln!(
        "ext4 free bytes: {free_before} before, {free_after_kill} after the kill (the stale file held {held}), {} after the re-run (the destination takes {out_size})",
        free_bytes(&mnt)
    );
    assert!(
        added.abs_diff(out_size) <= MIB,
        "the destination takes {out_size} bytes, free space went down by {added}"
    );
}

#[test]
fn a_second_convert_to_the_same_destination_leaves_a_running_one_alone() {
    let ns = Namespace::new();
    let dir = tempdir();
    let src = p(dir.path(), "src.raw");
    dense_raw(&src, 24);
    let mnt = ns.loop_fs(
        "ext4",
        128,
        &p(dir.path(), "ext4.img"),
        &p(dir.path(), "ext4"),
    );
    let dst = mnt.join("out.vhd");
    let (decoys, target) = decoys(&mnt);
    let args = [
        "convert",
        "-q",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ];
    // The first is stopped (holding its lock) after 2 of its 6 data chunks.
    let first = stopped_after(3, &args, || {
        let theirs = temps_of_out_vhd(&mnt, &decoys);
        assert_eq!(theirs.len(), 1, "{theirs:?}");
        let temp = mnt.join(&theirs[0]);
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(&temp).unwrap().ino();
        let sha_before = sha(&temp);
        for force in [false, true] {
            let mut second = vec!["convert", "-q"];
            if force {
                second.push("--force");
            }
            second.extend([src.to_str().unwrap(), dst.to_str().unwrap()]);
            let out = run_watched(&second);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
            for needle in [
                dst.to_str().unwrap(),
                "another vhdprep convert to this destination is running",
                &theirs[0],
            ] {
                assert!(stderr.contains(needle), "missing {needle:?} in {stderr}");
            }
            // The first's temporary file is as it was, and the second left none of its own.
            assert_eq!(temps_of_out_vhd(&mnt, &decoys), theirs);
            assert_eq!(std::fs::metadata(&temp).unwrap().ino(), ino);
            assert_eq!(sha(&temp), sha_before);
            assert!(!dst.exists());
        }
    });
    // The first, let go, completes undisturbed.
    assert_ok(&first);
    assert!(qemu_identical(&src, "raw", &dst, "vpc"));
    assert_eq!(temps_of_out_vhd(&mnt, &decoys), Vec::<String>::new());
    assert_decoys_untouched(&mnt, &target);
    // With nothing running, a conversion to it goes ahead (here replacing it).
    let out = run_watched(&[
        "convert",
        "-q",
        "--force",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]);
    assert_ok(&out);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(qemu_identical(&src, "raw", &dst, "vpc"));
}

#[test]
fn convert_and_fix_killed_at_random_moments_on_ext4_complete_when_run_again() {
    let ns = Namespace::new();
    let dir = tempdir();
    let src = p(dir.path(), "src.raw");
    dense_raw(&src, 48);
    let before = sha(&src);
    let mnt = ns.loop_fs(
        "ext4",
        256,
        &p(dir.path(), "ext4.img"),
        &p(dir.path(), "ext4"),
    );
    let dst = mnt.join("out.vhd");
    // A seeded spread of moments over the ~0.5 s a conversion takes here.
    let mut x = 0x2545_f491u64;
    let (mut killed, mut removed) = (0, 0);
    for _ in 0..6 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_millis(x % 600);
        let mut child = vhdprep()
            .args([
                "convert",
                "-q",
                src.to_str().unwrap(),
                dst.to_str().unwrap(),
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        killed += usize::from(status.signal() == Some(9));
        // The destination is absent or complete; a kill may leave the temporary file.
        if dst.exists() {
            assert!(
                qemu_identical(&src, "raw", &dst, "vpc"),
                "partial destination"
            );
            std::fs::remove_file(&dst).unwrap();
        }
        // The re-run removes what the kill left, says so, and completes.
        let left = leftovers(&mnt);
        assert!(left.len() <= 1, "{left:?}");
        let out = convert(&src, &dst);
        assert_ok(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        for name in &left {
            assert!(
                stderr.contains(&format!("temporary file {name} left by an interrupted run")),
                "{stderr}"
            );
        }
        assert_eq!(stderr.lines().count(), left.len(), "{stderr}");
        removed += left.len();
        assert!(qemu_identical(&src, "raw", &dst, "vpc"));
        assert_eq!(leftovers(&mnt), Vec::<String>::new());
        std::fs::remove_file(&dst).unwrap();
    }
    assert_eq!(sha(&src), before, "the source changed");
    // fix --in-place of a raw image there, killed at random moments, then run again.
    let orig = p(dir.path(), "orig.raw");
    sparse_raw(&orig, 30 * MIB + 100, &[(0, 4 << 20), (30 * MIB, 100)]);
    let img = mnt.join("disk.raw");
    let mut outcomes = (0, 0);
    for i in 0..6u64 {
        sparse_copy(&orig, &img);
        let mut child = vhdprep()
            .args(["fix", "--in-place", img.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(600 * i));
        let _ = child.kill();
        let _ = child.wait();
        let len = std::fs::metadata(&img).unwrap().len();
        let old = len == 30 * MIB + 100 && sha(&img) == sha(&orig);
        let new = len == 31 * MIB + 512 && qemu_identical(&orig, "raw", &img, "vpc");
        assert!(old || new, "kill {i}: neither old nor new ({len} bytes)");
        if old {
            outcomes.0 += 1;
        } else {
            outcomes.1 += 1;
        }
        assert_ok(&run_watched(&["fix", "--in-place", img.to_str().unwrap()]));
        assert!(qemu_identical(&orig, "raw", &img, "vpc"), "after kill {i}");
    }
    eprintln!(
        "on ext4: {killed} of 6 conversions killed before they ended, {removed} temporary files removed by the re-run; fix killed: {} old, {} new",
        outcomes.0, outcomes.1
    );
}
