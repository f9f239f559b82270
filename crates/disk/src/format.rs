//! The container formats vhdprep recognises, and for each: its name, what it is, the name
//! qemu-img gives it, and whether vhdprep reads it. This is the one place that decides which
//! formats vhdprep reads; every command that needs the virtual disk asks [`Format::is_read`]
//! (through [`DiskImage::disk`](crate::DiskImage::disk)).

use serde::{Serialize, Serializer};

/// A container format, decided by content (see [`crate::detect()`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// No container: the file is the disk. What is left when every probe has said no.
    Raw,
    /// Data followed by a 512-byte footer; what Azure takes.
    VhdFixed,
    /// Sparse VHD with a block table.
    VhdDynamic,
    /// Sparse VHD on top of a parent disk.
    VhdDifferencing,
    /// Hyper-V's newer format (`vhdxfile` at offset 0).
    Vhdx,
    /// QEMU copy-on-write, version 2 or 3 (`QFI\xfb`, version ≠ 1).
    Qcow2,
    /// QEMU copy-on-write, version 1 (`QFI\xfb`, version 1).
    Qcow,
    /// QEMU enhanced disk (`QED\0`).
    Qed,
    /// VirtualBox (signature `0xbeda107f` at offset 64).
    Vdi,
    /// VMware (`KDMV` sparse extent, `COWD`, or a text descriptor).
    Vmdk,
    /// Parallels (`WithoutFreeSpace` or `WithouFreSpacExt`).
    Parallels,
    /// Bochs growing image (`Bochs Virtual HD Image`).
    Bochs,
    /// Compressed loop image (a `#!/bin/sh` preamble that loads `cloop`).
    Cloop,
    /// Apple disk image, UDIF (`koly` trailer in the last 512 bytes).
    Dmg,
    /// A LUKS1 or LUKS2 encrypted volume (`LUKS\xba\xbe`).
    Luks,
    /// A BitLocker encrypted volume (`-FVE-FS-` at offset 3, or BitLocker To Go).
    Bitlocker,
    /// A gzip stream (`1f 8b 08`): a compressed image.
    Gzip,
    /// An xz stream (`fd 37 7a 58 5a 00`): a compressed image.
    Xz,
    /// A Zstandard frame (`28 b5 2f fd`): a compressed image.
    Zstd,
    /// A bzip2 stream (`BZh1`..`BZh9` and a block magic): a compressed image.
    Bzip2,
    /// A tar archive (`ustar` at offset 257) that is not an OVA.
    Tar,
    /// An OVA: a tar archive whose first member is an OVF descriptor and that holds a VMDK.
    Ova,
}

/// How a format's volume is encrypted, where the container says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// qcow/qcow2 legacy AES-CBC (`crypt_method` 1).
    Aes,
    /// qcow2 with a LUKS payload (`crypt_method` 2 or the LUKS header extension).
    Luks,
    /// A LUKS1 volume.
    Luks1,
    /// A LUKS2 volume.
    Luks2,
    /// BitLocker.
    Bitlocker,
    /// A `crypt_method` value qemu does not know.
    Unknown(u32),
}

impl Encryption {
    /// The name used in JSON and messages (`aes`, `luks`, `luks1`, `luks2`, `bitlocker`,
    /// `unknown(N)`).
    pub fn name(self) -> String {
        match self {
            Encryption::Aes => "aes".into(),
            Encryption::Luks => "luks".into(),
            Encryption::Luks1 => "luks1".into(),
            Encryption::Luks2 => "luks2".into(),
            Encryption::Bitlocker => "bitlocker".into(),
            Encryption::Unknown(m) => format!("unknown({m})"),
        }
    }
}

impl Serialize for Encryption {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl Format {
    /// Every format, in no particular order (for tests and listings).
    pub const ALL: [Format; 22] = [
        Format::Raw,
        Format::VhdFixed,
        Format::VhdDynamic,
        Format::VhdDifferencing,
        Format::Vhdx,
        Format::Qcow2,
        Format::Qcow,
        Format::Qed,
        Format::Vdi,
        Format::Vmdk,
        Format::Parallels,
        Format::Bochs,
        Format::Cloop,
        Format::Dmg,
        Format::Luks,
        Format::Bitlocker,
        Format::Gzip,
        Format::Xz,
        Format::Zstd,
        Format::Bzip2,
        Format::Tar,
        Format::Ova,
    ];

    /// The name used in JSON and messages. For the formats qemu knows it is qemu-img's name,
    /// except for the VHDs, which say which kind (qemu calls them all `vpc`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::VhdFixed => "vhd-fixed",
            Format::VhdDynamic => "vhd-dynamic",
            Format::VhdDifferencing => "vhd-differencing",
            Format::Vhdx => "vhdx",
            Format::Qcow2 => "qcow2",
            Format::Qcow => "qcow",
            Format::Qed => "qed",
            Format::Vdi => "vdi",
            Format::Vmdk => "vmdk",
            Format::Parallels => "parallels",
            Format::Bochs => "bochs",
            Format::Cloop => "cloop",
            Format::Dmg => "dmg",
            Format::Luks => "luks",
            Format::Bitlocker => "bitlocker",
            Format::Gzip => "gzip",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Bzip2 => "bzip2",
            Format::Tar => "tar",
            Format::Ova => "ova",
        }
    }

    /// What the format is, in words (`VirtualBox VDI image`).
    pub fn description(self) -> &'static str {
        match self {
            Format::Raw => "raw disk image",
            Format::VhdFixed => "fixed VHD",
            Format::VhdDynamic => "dynamic VHD",
            Format::VhdDifferencing => "differencing VHD",
            Format::Vhdx => "Hyper-V VHDX image",
            Format::Qcow2 => "QEMU qcow2 image",
            Format::Qcow => "QEMU qcow (version 1) image",
            Format::Qed => "QEMU QED image",
            Format::Vdi => "VirtualBox VDI image",
            Format::Vmdk => "VMware VMDK image",
            Format::Parallels => "Parallels image",
            Format::Bochs => "Bochs image",
            Format::Cloop => "compressed loop (cloop) image",
            Format::Dmg => "Apple disk image (DMG)",
            Format::Luks => "LUKS encrypted volume",
            Format::Bitlocker => "BitLocker encrypted volume",
            Format::Gzip => "gzip-compressed file",
            Format::Xz => "xz-compressed file",
            Format::Zstd => "zstd-compressed file",
            Format::Bzip2 => "bzip2-compressed file",
            Format::Tar => "tar archive",
            Format::Ova => "OVA (tar archive with an OVF descriptor and a VMDK)",
        }
    }

    /// The name of qemu-img's driver for the format (`-f NAME`), where qemu has one.
    pub fn qemu_driver(self) -> Option<&'static str> {
        match self {
            Format::Raw => Some("raw"),
            Format::VhdFixed | Format::VhdDynamic | Format::VhdDifferencing => Some("vpc"),
            Format::Vhdx => Some("vhdx"),
            Format::Qcow2 => Some("qcow2"),
            Format::Qcow => Some("qcow"),
            Format::Qed => Some("qed"),
            Format::Vdi => Some("vdi"),
            Format::Vmdk => Some("vmdk"),
            Format::Parallels => Some("parallels"),
            Format::Bochs => Some("bochs"),
            Format::Cloop => Some("cloop"),
            Format::Dmg => Some("dmg"),
            Format::Luks => Some("luks"),
            Format::Bitlocker | Format::Gzip | Format::Xz | Format::Zstd | Format::Bzip2 => None,
            Format::Tar | Format::Ova => None,
        }
    }

    /// Whether vhdprep reads the virtual disk of this format. The one place that decides it:
    /// every other format is refused by name (see [`crate::refusal`]) by each command that
    /// needs the disk. Encrypted qcow2 images are refused whatever this says (see
    /// [`crate::detect::Detection::encryption`]); a differencing disk needs its parent.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Format::Raw
                | Format::VhdFixed
                | Format::VhdDynamic
                | Format::VhdDifferencing
                | Format::Vhdx
                | Format::Qcow2
                | Format::Vmdk
                | Format::Ova
                | Format::Vdi
        )
    }

    /// True for the three VHD kinds.
    pub fn is_vhd(self) -> bool {
        matches!(
            self,
            Format::VhdFixed | Format::VhdDynamic | Format::VhdDifferencing
        )
    }

    /// True for the formats whose whole point is encryption (LUKS, BitLocker). A qcow2 image
    /// may be encrypted too: see [`crate::detect::Detection::encryption`].
    pub fn is_encrypted_volume(self) -> bool {
        matches!(self, Format::Luks | Format::Bitlocker)
    }
}

impl Serialize for Format {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_stable() {
        let mut names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Format::ALL.len());
        // The JSON names of `info --json` that existed before the new probes.
        for (f, n) in [
            (Format::Raw, "raw"),
            (Format::VhdFixed, "vhd-fixed"),
            (Format::VhdDynamic, "vhd-dynamic"),
            (Format::VhdDifferencing, "vhd-differencing"),
            (Format::Vhdx, "vhdx"),
            (Format::Qcow2, "qcow2"),
            (Format::Vmdk, "vmdk"),
        ] {
            assert_eq!(f.name(), n);
        }
    }
}
