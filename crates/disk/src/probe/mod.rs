//! The container probes: one module per format, each deciding from a few bounded reads whether
//! a file is that format, the way qemu's `block/*.c` `*_probe` functions do (and, where qemu
//! relies on the file name or is too narrow, by content and more widely: a probe errs towards
//! "yes", because "no" from every probe makes the file a raw disk).
//!
//! [`PROBES`] lists them in the order [`crate::detect()`] runs them: the image formats that
//! start with a signature first (a VHD footer appended to one of them is a tool's mistake, not
//! a VHD), then the VHD footer, then the trailer and wrapper formats (DMG, LUKS, BitLocker,
//! compressed streams, tar), which a fixed VHD's disk may legitimately start with.

mod bitlocker;
mod bochs;
mod cloop;
mod compressed;
mod dmg;
mod luks;
mod parallels;
mod qcow;
mod qcow2;
mod qed;
mod tar;
mod vdi;
mod vhd;
mod vhdx;
mod vmdk;

use crate::format::{Encryption, Format};
use crate::read_at::ReadAt;
use crate::vhd::{Footer, FOOTER_SIZE};
use crate::FooterPlace;
use std::io;

/// How much of the file's start the probes see at once (the largest window any of them needs
/// without a further read: qcow2 header extensions).
pub const HEAD_LEN: usize = 64 * 1024;

/// How much qemu reads for its probes (`BLOCK_PROBE_BUF_SIZE`); the VMDK descriptor probe
/// looks no further, as qemu's does not.
pub const QEMU_PROBE_LEN: usize = 2048;

/// What the probes look at: the file, its first [`HEAD_LEN`] bytes and its last 512.
pub struct Sample<'a> {
    /// The whole file, for probes that follow an offset (LUKS2 secondary headers, BitLocker To
    /// Go metadata).
    pub file: &'a dyn ReadAt,
    /// Its length.
    pub len: u64,
    /// Its first `min(len, HEAD_LEN)` bytes.
    pub head: Vec<u8>,
    /// Its last 512 bytes, when it has that many.
    pub tail: Option<[u8; FOOTER_SIZE]>,
}

impl<'a> Sample<'a> {
    /// Reads the head and the tail of `file`.
    pub fn read(file: &'a dyn ReadAt) -> io::Result<Sample<'a>> {
        let len = file.len();
        let mut head = vec![0u8; len.min(HEAD_LEN as u64) as usize];
        file.read_exact_at(&mut head, 0)?;
        let tail = if len >= FOOTER_SIZE as u64 {
            let mut t = [0u8; FOOTER_SIZE];
            file.read_exact_at(&mut t, len - FOOTER_SIZE as u64)?;
            Some(t)
        } else {
            None
        };
        Ok(Sample {
            file,
            len,
            head,
            tail,
        })
    }

    /// `N` bytes of the head at `off`, or `None` past its end.
    pub fn at<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        self.head.get(off..off.checked_add(N)?)?.try_into().ok()
    }

    /// Whether the head holds `magic` at `off`.
    pub fn has(&self, off: usize, magic: &[u8]) -> bool {
        self.head
            .get(off..off.saturating_add(magic.len()))
            .is_some_and(|b| b == magic)
    }

    /// Big-endian u32 of the head at `off` (`None` past its end).
    pub fn be32(&self, off: usize) -> Option<u32> {
        self.at(off).map(u32::from_be_bytes)
    }

    /// Little-endian u32 of the head at `off`.
    pub fn le32(&self, off: usize) -> Option<u32> {
        self.at(off).map(u32::from_le_bytes)
    }

    /// Reads `N` bytes at any offset of the file; `None` when they lie past its end.
    pub fn read_at<const N: usize>(&self, off: u64) -> io::Result<Option<[u8; N]>> {
        match off.checked_add(N as u64) {
            Some(end) if end <= self.len => {}
            _ => return Ok(None),
        }
        let mut b = [0u8; N];
        self.file.read_exact_at(&mut b, off)?;
        Ok(Some(b))
    }
}

/// Where the bytes that decided the format are, and what they said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// What was seen, in words, with its offset (`'vhdxfile' at offset 0`).
    pub what: String,
    /// File offset of the signature.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// A probe's "yes".
#[derive(Debug, Clone)]
pub struct Found {
    /// The format.
    pub format: Format,
    /// The signature that decided it.
    pub evidence: Evidence,
    /// How the volume is encrypted, where the format says.
    pub encryption: Option<Encryption>,
    /// For VHDs: the footer used and where it was.
    pub footer: Option<(Footer, FooterPlace)>,
    /// For dynamic VHDs: the copy at offset 0 differs from the footer at the end.
    pub footer_copy_differs: bool,
}

impl Found {
    /// A match of `format` on `len` bytes at `offset`, described by `what`.
    pub fn new(format: Format, what: impl Into<String>, offset: u64, len: u64) -> Found {
        Found {
            format,
            evidence: Evidence {
                what: what.into(),
                offset,
                len,
            },
            encryption: None,
            footer: None,
            footer_copy_differs: false,
        }
    }

    /// The same, with the volume's encryption.
    pub fn encrypted(mut self, e: Option<Encryption>) -> Found {
        self.encryption = e;
        self
    }
}

/// One probe: its name (as `info` lists it) and its function.
pub struct Probe {
    /// Name, e.g. `vdi`.
    pub name: &'static str,
    /// `Ok(Some(_))` when the file is this format.
    pub run: fn(&Sample) -> io::Result<Option<Found>>,
}

/// Every probe, in the order they run (see the module documentation).
pub const PROBES: &[Probe] = &[
    Probe {
        name: "vhdx",
        run: vhdx::probe,
    },
    Probe {
        name: "qcow2",
        run: qcow2::probe,
    },
    Probe {
        name: "qcow",
        run: qcow::probe,
    },
    Probe {
        name: "qed",
        run: qed::probe,
    },
    Probe {
        name: "vdi",
        run: vdi::probe,
    },
    Probe {
        name: "vmdk",
        run: vmdk::probe,
    },
    Probe {
        name: "parallels",
        run: parallels::probe,
    },
    Probe {
        name: "bochs",
        run: bochs::probe,
    },
    Probe {
        name: "cloop",
        run: cloop::probe,
    },
    Probe {
        name: "vhd",
        run: vhd::probe,
    },
    Probe {
        name: "dmg",
        run: dmg::probe,
    },
    Probe {
        name: "luks",
        run: luks::probe,
    },
    Probe {
        name: "bitlocker",
        run: bitlocker::probe,
    },
    Probe {
        name: "gzip",
        run: compressed::probe_gzip,
    },
    Probe {
        name: "xz",
        run: compressed::probe_xz,
    },
    Probe {
        name: "zstd",
        run: compressed::probe_zstd,
    },
    Probe {
        name: "bzip2",
        run: compressed::probe_bzip2,
    },
    Probe {
        name: "tar",
        run: tar::probe,
    },
];

/// Whether the last 512 bytes hold a VHD footer cookie (for the note on image formats that a
/// tool wrapped in a footer, taking them for raw disks).
pub fn ends_in_vhd_footer(s: &Sample) -> bool {
    s.tail.is_some_and(|t| t.starts_with(b"conectix"))
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    /// Runs every probe on `bytes` and returns the names of those that say yes.
    pub fn hits(bytes: &[u8]) -> Vec<&'static str> {
        let s = Sample::read(&bytes).unwrap();
        PROBES
            .iter()
            .filter(|p| (p.run)(&s).unwrap().is_some())
            .map(|p| p.name)
            .collect()
    }

    /// Runs one probe.
    pub fn run(probe: fn(&Sample) -> io::Result<Option<Found>>, bytes: &[u8]) -> Option<Found> {
        probe(&Sample::read(&bytes).unwrap()).unwrap()
    }

    /// `len` bytes of a pseudo-random pattern (xorshift), no magic anywhere in practice.
    pub fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// A 1 MiB disk whose first bytes are `prefix` and the rest zeros.
    pub fn disk_with(prefix: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 1 << 20];
        v[..prefix.len()].copy_from_slice(prefix);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = PROBES.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PROBES.len());
    }

    #[test]
    fn nothing_fires_on_zeros_noise_or_text() {
        assert!(hits(&vec![0u8; 1 << 20]).is_empty());
        for seed in 1..20 {
            assert!(hits(&noise(seed, 70_000)).is_empty(), "seed {seed}");
        }
        let text = "Lorem ipsum dolor sit amet\n".repeat(3000);
        assert!(hits(text.as_bytes()).is_empty());
        // Short files: every probe copes with a head shorter than its window.
        for n in [0, 1, 3, 8, 63, 64, 511, 512, 513] {
            assert!(hits(&vec![0u8; n]).is_empty(), "{n} bytes");
        }
    }

    #[test]
    fn an_ext4_superblock_and_an_mbr_are_no_container() {
        // ext4 superblock magic 0xef53 at 1024 + 56, as mkfs.ext4 writes it.
        let mut v = vec![0u8; 1 << 20];
        v[1024 + 56..1024 + 58].copy_from_slice(&0xef53u16.to_le_bytes());
        assert!(hits(&v).is_empty());
        // GRUB's boot.img starts with a short jump; an MBR ends in 55aa.
        let mut v = disk_with(b"\xeb\x63\x90\x10\x8e\xd0\xbc\x00\xb0\xb8\x00\x00");
        v[510] = 0x55;
        v[511] = 0xaa;
        assert!(hits(&v).is_empty());
    }
}
