//! Crash tests with real kills: `fix --in-place` and `convert` are killed (SIGKILL) after
//! every durable step, and at random moments from outside; afterwards the image must read as
//! the old one or the new one, and a conversion's destination must be absent or complete.
//!
//! A GPT disk that grows has one more state: after the container commit and before the write
//! that points the primary GPT header at the moved backup, the file is the new fixed VHD whose
//! GPT still uses the old backup (intact, in the middle of the disk). Every state is judged
//! with qemu-img (size, content) and `sgdisk -v`: the old image gets the original's verdict,
//! that state exactly one problem (the backup not at the end), the new image none.

mod common;
use common::*;
use std::os::unix::fs::FileExt;
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
        assert_own_check_clean(&work);
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
            assert_own_check_clean(&dst);
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

// ---- GPT disks: the backup GPT moves to the new end ----

/// What a GPT image reads as now.
#[derive(Debug, PartialEq)]
enum GptState {
    Old,
    /// The new container with the partition table not yet pointed at the moved backup.
    Window,
    New,
}

/// A GPT disk fixed in place, and what each of its states must look like.
struct GptCase {
    /// The image before (raw or fixed VHD).
    orig: std::path::PathBuf,
    orig_fmt: &'static str,
    /// Its virtual size.
    orig_size: u64,
    /// sgdisk -v on the original's virtual disk.
    orig_verdict: SgdiskVerdict,
    /// The finished virtual disk: the original grown, then `sgdisk -e` (a raw file).
    reference: std::path::PathBuf,
    new_size: u64,
    /// The virtual disks of the window states: the reference with the original's LBA 0 and
    /// primary header (and with 4096-byte sectors, also with only the header old).
    windows: Vec<std::path::PathBuf>,
    /// Logical sector size (4096: sgdisk reads through a 4Kn loop device).
    ss: u64,
}

/// sgdisk -v on a raw virtual disk (through a loop device with 4096-byte sectors if `ss` is).
fn sgdisk_on(raw: &Path, ss: u64) -> SgdiskVerdict {
    if ss == 512 {
        return sgdisk_verify(raw);
    }
    let out = tool(
        "losetup",
        "mount",
        &["-f", "--show", "-b", "4096", raw.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "losetup (needs root and loop devices)"
    );
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let v = sgdisk_verify(Path::new(&dev));
    let _ = std::process::Command::new("losetup")
        .args(["-d", &dev])
        .status();
    v
}

impl GptCase {
    /// `raw` is a GPT disk made by sgdisk; the original is it (`vhd` false) or qemu-img's fixed
    /// VHD of it (CHS-rounded, `vhd` true).
    fn new(dir: &Path, raw: &Path, vhd: bool, ss: u64) -> GptCase {
        let (orig, orig_fmt) = if vhd {
            let v = p(dir, "orig.vhd");
            qemu_vhd_from_raw(raw, &v, "subformat=fixed");
            (v, "vpc")
        } else {
            (raw.to_path_buf(), "raw")
        };
        let orig_size = qemu_info(&orig, orig_fmt)["virtual-size"].as_u64().unwrap();
        let orig_virt = p(dir, "orig-virtual.raw");
        if vhd {
            virtual_raw(&orig, orig_size, &orig_virt);
        } else {
            sparse_copy(&orig, &orig_virt);
        }
        let orig_verdict = sgdisk_on(&orig_virt, ss);
        let new_size = orig_size.div_ceil(MIB) * MIB;
        let reference = p(dir, "reference.raw");
        sparse_copy(&orig_virt, &reference);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&reference)
            .unwrap()
            .set_len(new_size)
            .unwrap();
        if ss == 512 {
            sgdisk(&reference, &["-e"]);
        } else {
            let out = tool(
                "losetup",
                "mount",
                &["-f", "--show", "-b", "4096", reference.to_str().unwrap()],
            );
            let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
            sgdisk(Path::new(&dev), &["-e"]);
            let _ = std::process::Command::new("losetup")
                .args(["-d", &dev])
                .status();
        }
        assert!(sgdisk_on(&reference, ss).is_clean());
        let old = |at: u64| {
            let mut b = vec![0u8; 512];
            std::fs::File::open(&orig_virt)
                .unwrap()
                .read_exact_at(&mut b, at)
                .unwrap();
            b
        };
        let mut windows = Vec::new();
        let variants: &[&[u64]] = if ss == 512 {
            &[&[0, 512]]
        } else {
            &[&[0, 4096], &[4096]]
        };
        for (i, places) in variants.iter().enumerate() {
            let w = p(dir, &format!("window-{i}.raw"));
            sparse_copy(&reference, &w);
            let f = std::fs::OpenOptions::new().write(true).open(&w).unwrap();
            for &at in *places {
                f.write_all_at(&old(at), at).unwrap();
            }
            windows.push(w);
        }
        GptCase {
            orig,
            orig_fmt,
            orig_size,
            orig_verdict,
            reference,
            new_size,
            windows,
            ss,
        }
    }

    /// Judges `file`, checking the sgdisk -v verdict that goes with its state.
    fn state(&self, file: &Path) -> GptState {
        let len = std::fs::metadata(file).unwrap().len();
        let (v, _) = info_json(file);
        let size = if v["format"] == "raw" {
            len
        } else {
            assert_eq!(v["format"], "vhd-fixed", "{v}");
            assert_eq!(v["footer"]["checksum_valid"], true);
            let q = qemu_info(file, "vpc")["virtual-size"].as_u64().unwrap();
            assert_eq!(
                v["virtual_size"].as_u64(),
                Some(q),
                "vhdprep and qemu-img disagree"
            );
            q
        };
        let fmt = if v["format"] == "raw" { "raw" } else { "vpc" };
        let virt = p(file.parent().unwrap(), "state-virtual.raw");
        if fmt == "raw" {
            sparse_copy(file, &virt);
        } else {
            virtual_raw(file, size, &virt);
        }
        let verdict = sgdisk_on(&virt, self.ss);
        std::fs::remove_file(&virt).unwrap();
        let state = if size == self.orig_size
            && qemu_identical(&self.orig, self.orig_fmt, file, fmt)
        {
            assert_eq!(
                verdict, self.orig_verdict,
                "the old image, as sgdisk -v sees it"
            );
            GptState::Old
        } else if size == self.new_size
            && fmt == "vpc"
            && len == self.new_size + 512
            && qemu_identical(&self.reference, "raw", file, "vpc")
        {
            assert!(verdict.is_clean(), "the new image: {verdict:?}");
            GptState::New
        } else if size == self.new_size
            && fmt == "vpc"
            && self
                .windows
                .iter()
                .any(|w| qemu_identical(w, "raw", file, "vpc"))
        {
            assert!(
                verdict.is_only_misplaced_backup(),
                "the window state: {verdict:?}"
            );
            GptState::Window
        } else {
            panic!(
                "{}: neither the old image, the new one, nor the window between (len {len}, size {size}, {verdict:?})",
                file.display()
            )
        };
        state
    }

    /// Kills fix after each step in turn until it completes; judges every state and finishes
    /// each with a re-run. Returns the states seen.
    fn kill_at_every_step(&self) -> Vec<GptState> {
        let dir = self.orig.parent().unwrap();
        let mut seen = Vec::new();
        for k in 1..20 {
            let work = dir.join(format!("work-{k}"));
            sparse_copy(&self.orig, &work);
            let killed = fix_killed_after(&work, k);
            let s = self.state(&work);
            if !killed {
                assert_eq!(s, GptState::New, "fix completed");
            }
            seen.push(s);
            let again = run(&["fix", "--in-place", work.to_str().unwrap()]);
            assert!(
                again.status.success(),
                "re-run after kill at {k}: {}",
                String::from_utf8_lossy(&again.stderr)
            );
            assert_eq!(self.state(&work), GptState::New, "after re-run at {k}");
            assert_own_check_clean(&work);
            std::fs::remove_file(&work).unwrap();
            if !killed {
                return seen;
            }
        }
        panic!("fix never completed");
    }
}

/// A raw GPT disk of `len` bytes made by sgdisk (with 4096-byte sectors through a loop
/// device), with data in its partitions.
fn gpt_raw(path: &Path, len: u64, ss: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
    let args = ["-n1:0:+4M", "-t1:ef00", "-n2:0:0", "-t2:8300"];
    if ss == 512 {
        sgdisk(path, &args);
    } else {
        let out = tool(
            "losetup",
            "mount",
            &["-f", "--show", "-b", "4096", path.to_str().unwrap()],
        );
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        sgdisk(Path::new(&dev), &args);
        let _ = std::process::Command::new("losetup")
            .args(["-d", &dev])
            .status();
    }
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for at in [2 * MIB, 8 * MIB, len - 64 * 1024] {
        f.write_all_at(&pattern(at, 4096), at).unwrap();
    }
}

#[test]
fn fix_gpt_raw_killed_at_every_step() {
    let d = tempdir();
    let raw = p(d.path(), "gpt.raw");
    gpt_raw(&raw, 20 * MIB + 77 * 512, 512);
    let case = GptCase::new(d.path(), &raw, false, 512);
    assert!(case.orig_verdict.is_clean());
    // Holding footer, backup array, backup header: the old disk; the footer: the window;
    // LBA 0 and 1 in one write: the new disk.
    use GptState::*;
    assert_eq!(case.kill_at_every_step(), [Old, Old, Old, Window, New, New]);
}

#[test]
fn fix_gpt_qemu_fixed_vhd_killed_at_every_step() {
    // qemu-img's CHS-rounded fixed VHD: the GPT was made for the raw size, so even the
    // original has its backup short of the end (one problem for sgdisk -v).
    let d = tempdir();
    let raw = p(d.path(), "gpt.raw");
    gpt_raw(&raw, 20 * MIB + 77 * 512, 512);
    let case = GptCase::new(d.path(), &raw, true, 512);
    assert!(case.orig_verdict.is_only_misplaced_backup());
    use GptState::*;
    // Old footer copied, old footer zeroed, backup array, backup header, commit, LBA 0-1.
    assert_eq!(
        case.kill_at_every_step(),
        [Old, Old, Old, Old, Window, New, New]
    );
}

#[test]
fn fix_gpt_4096_byte_sectors_killed_at_every_step() {
    // LBA 0 and LBA 1 lie 4 KiB apart: the protective MBR is written first, then the
    // primary header; both states between the commit and the header are the window.
    let d = tempdir();
    let raw = p(d.path(), "gpt.raw");
    gpt_raw(&raw, 20 * MIB + 37 * 4096, 4096);
    let case = GptCase::new(d.path(), &raw, false, 4096);
    assert!(case.orig_verdict.is_clean());
    use GptState::*;
    assert_eq!(
        case.kill_at_every_step(),
        [Old, Old, Old, Window, Window, New, New]
    );
}

#[test]
fn fix_gpt_killed_at_random_moments_from_outside() {
    let d = tempdir();
    let raw = p(d.path(), "gpt.raw");
    gpt_raw(&raw, 20 * MIB + 77 * 512, 512);
    let case = GptCase::new(d.path(), &raw, false, 512);
    let mut outcomes = [0; 3];
    for i in 0..12u64 {
        let work = p(d.path(), "work.raw");
        sparse_copy(&raw, &work);
        let mut child = vhdprep()
            .args(["fix", "--in-place", work.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(2500 * i));
        let _ = child.kill();
        let _ = child.wait();
        outcomes[case.state(&work) as usize] += 1;
    }
    eprintln!(
        "random kills of a GPT fix: {} old, {} window, {} new",
        outcomes[0], outcomes[1], outcomes[2]
    );
}

#[test]
fn convert_gpt_killed_at_every_step_leaves_no_partial_destination() {
    let d = tempdir();
    let raw = p(d.path(), "gpt.raw");
    gpt_raw(&raw, 20 * MIB + 77 * 512, 512);
    let case = GptCase::new(d.path(), &raw, false, 512);
    let dst = p(d.path(), "out.vhd");
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
            assert_eq!(case.state(&dst), GptState::New, "after kill at {k}");
            assert_own_check_clean(&dst);
            std::fs::remove_file(&dst).unwrap();
            if !killed {
                return;
            }
        } else {
            assert!(killed, "{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    panic!("convert never completed");
}
