//! A VirtualBox snapshot chain: a dynamic VDI that qemu-img writes, turned into a
//! differencing image of another (type 4, link UUID = the parent's image UUID,
//! parent-modification UUID = the parent's), one free block marked zero. qemu-img refuses
//! differencing VDIs and nothing else in Debian reads them, so the expected bytes come from
//! qemu-img's reading of each layer, combined per VirtualBox's rules: allocated blocks from
//! the child, free blocks from the parent, zero blocks as zeros.
//!
//! Shared by crates/disk/tests/vdi_against_qemu.rs and tests/containers_cli.rs, each
//! including it with `#[path]`.
#![allow(dead_code)]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use vhdprep_disk::vdi::BLOCK_ZERO;

const MIB: u64 = 1 << 20;

/// The chain and what it reads as.
pub struct VdiChain {
    /// `base.vdi`, qemu-img's dynamic VDI of the source.
    pub base: PathBuf,
    /// `child.vdi`, differencing, over `base`.
    pub child: PathBuf,
    /// The child's own layer as qemu-img read it before it was made a child.
    pub layer: Vec<u8>,
    /// The chain's disk.
    pub expected: Vec<u8>,
}

fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("qemu-img could not be run ({e}); install Debian package qemu-utils")
        });
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Builds the chain in `dir` over the raw disk `src` (whose bytes are `src_bytes`, at least
/// 20 MiB and a bit): the child writes part of block 0, a few bytes of block 7, all of block 13, and
/// marks block 20 zero.
pub fn build(dir: &Path, src: &Path, src_bytes: &[u8]) -> VdiChain {
    let size = src_bytes.len() as u64;
    let base = dir.join("base.vdi");
    qemu_img(&["convert", "-f", "raw", "-O", "vdi", s(src), s(&base)]);
    let child_src = dir.join("child-layer.raw");
    let f = File::create(&child_src).unwrap();
    f.set_len(size).unwrap();
    f.write_all_at(&[0xC7; 4096], 0).unwrap();
    f.write_all_at(&[0xC8; 100], 7 * MIB + 5).unwrap();
    f.write_all_at(&vec![0xC9; MIB as usize], 13 * MIB).unwrap();
    drop(f);
    let child = dir.join("child.vdi");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vdi",
        s(&child_src),
        s(&child),
    ]);
    let layer_raw = dir.join("child-layer-read.raw");
    qemu_img(&[
        "convert",
        "-f",
        "vdi",
        "-O",
        "raw",
        s(&child),
        s(&layer_raw),
    ]);
    let layer = std::fs::read(&layer_raw).unwrap();
    std::fs::remove_file(&layer_raw).unwrap();
    std::fs::remove_file(&child_src).unwrap();

    let mut uuids = [0u8; 32];
    File::open(&base)
        .unwrap()
        .read_exact_at(&mut uuids, 392)
        .unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&child)
        .unwrap();
    f.write_all_at(&4u32.to_le_bytes(), 76).unwrap();
    f.write_all_at(&uuids[..16], 424).unwrap();
    f.write_all_at(&uuids[16..], 440).unwrap();
    let map_at = {
        let mut b = [0u8; 4];
        File::open(&child)
            .unwrap()
            .read_exact_at(&mut b, 340)
            .unwrap();
        u64::from(u32::from_le_bytes(b))
    };
    f.write_all_at(&BLOCK_ZERO.to_le_bytes(), map_at + 20 * 4)
        .unwrap();
    drop(f);

    let mut expected = src_bytes.to_vec();
    for block in [0usize, 7, 13] {
        let r = block * MIB as usize..(block + 1) * MIB as usize;
        expected[r.clone()].copy_from_slice(&layer[r]);
    }
    expected[20 * MIB as usize..].fill(0);
    VdiChain {
        base,
        child,
        layer,
        expected,
    }
}
