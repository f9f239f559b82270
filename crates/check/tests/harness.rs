//! The variant harness itself: its edits land where the real tools and our reader say.

mod common;

use common::*;
use std::process::Command;

#[test]
fn edits_are_made_by_debugfs_and_mtools_and_leave_a_clean_filesystem() {
    let mut v = Variant::of("gen2-gpt-ext4");
    v.write("/var/lib/waagent/new/dir/file.txt", "hello\n")
        .symlink("/etc/vhdprep-link", "/var/lib/waagent/new/dir/file.txt")
        .write("/etc/hostname", "replaced\n")
        .edit("/etc/hostname", |t| t.replace("replaced", "edited"));
    assert_eq!(v.read("/var/lib/waagent/new/dir/file.txt"), "hello\n");
    assert_eq!(v.read("/etc/hostname"), "edited\n");
    v.remove("/var/lib/waagent/new/dir/file.txt");
    assert_eq!(v.read("/var/lib/waagent/new/dir/file.txt"), "");
    v.mtools("mren", &["::/EFI/BOOT/BOOTX64.EFI", "::/EFI/BOOT/OLD.EFI"]);
    let listing = run(
        Command::new("mdir")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(v.esp())
            .arg("::/EFI/BOOT"),
        "mtools",
    );
    assert!(
        listing.contains("OLD") && !listing.contains("BOOTX64"),
        "{listing}"
    );
    // fsck agrees the debugfs edits left a consistent filesystem.
    let off = v.partition_offset("/");
    let size = v.manifest["partitions"][1]["size"].as_u64().unwrap();
    let part = v.dir.path().join("root.img");
    run(
        Command::new("dd")
            .arg(format!("if={}", v.path.display()))
            .arg(format!("of={}", part.display()))
            .args([
                "bs=1M",
                "conv=sparse",
                "status=none",
                "iflag=skip_bytes,count_bytes",
            ])
            .arg(format!("skip={off}"))
            .arg(format!("count={size}")),
        "coreutils",
    );
    run(Command::new("e2fsck").args(["-fn"]).arg(&part), "e2fsprogs");
}
