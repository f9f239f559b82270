//! VHD-xxx on real images: the Debian fixture as raw, as qemu-img's fixed and dynamic VHD,
//! and as vhdprep's fixed VHD.

mod common;

use common::*;
use std::process::Command;
use vhdprep_check::{Policy, Severity};

#[test]
fn raw_fixture_fires_vhd_001_and_fixed_vhd_is_quiet() {
    let mut v = Variant::of("gen2-gpt-ext4");
    let r = v.check(&Policy::default());
    assert_fires(&r, "VHD-001", Severity::Error);
    assert!(!r.container.ok);
    v.make_vhd();
    let r = v.check(&Policy::default());
    for id in [
        "VHD-001", "VHD-002", "VHD-003", "VHD-004", "VHD-005", "VHD-006", "VHD-007", "VHD-008",
        "VHD-009", "VHD-010", "VHD-015", "VHD-016",
    ] {
        assert_quiet(&r, id);
    }
    assert!(r.container.ok);
}

#[test]
fn qemu_dynamic_vhd_fires_vhd_002_and_is_still_inspected() {
    let v = Variant::of("gen1-mbr-ext4");
    let dynamic = v.dir.path().join("dyn.vhd");
    run(
        Command::new("qemu-img")
            .args(["convert", "-O", "vpc", "-o", "subformat=dynamic"])
            .arg(&v.path)
            .arg(&dynamic),
        "qemu-utils",
    );
    let r = check_path(&dynamic, &Policy::default());
    assert_fires(&r, "VHD-002", Severity::Error);
    // The guest behind the dynamic container is still judged.
    assert_eq!(r.generation, vec![vhdprep_check::Generation::V1]);
    assert!(r.guest_not_examined.is_none());
}
