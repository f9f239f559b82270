//! The partition-type catalogue: GPT type GUIDs and MBR type bytes, with names and a coarse
//! classification ([`PartitionKind`]) that the later layers (filesystem probing, boot checks)
//! act on.
//!
//! Names are spelled as `sfdisk --label gpt -T` / `sfdisk --label dos -T` (util-linux 2.38)
//! spell them, so that reports can be compared with `sfdisk` output; the one type `sfdisk`
//! 2.38 does not list (Linux LUKS) uses the `sgdisk -L` name. An integration test checks the
//! whole catalogue against `sfdisk`.

use crate::guid::Guid;
use serde::Serialize;
use std::fmt;

/// What a partition is for, as far as its type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionKind {
    /// EFI System Partition (GPT ESP, MBR 0xEF).
    Esp,
    /// BIOS boot partition (GRUB's `core.img` on a GPT disk).
    BiosBoot,
    /// Extended boot loader partition (XBOOTLDR, `/boot` of the Boot Loader Specification).
    XbootLdr,
    /// A Linux root filesystem (Discoverable Partitions Specification root type).
    LinuxRoot,
    /// A Linux `/usr` filesystem (DPS `/usr` type).
    LinuxUsr,
    /// DPS `/home`.
    LinuxHome,
    /// DPS `/var`.
    LinuxVar,
    /// DPS `/srv`.
    LinuxSrv,
    /// DPS `/var/tmp`.
    LinuxTmp,
    /// Generic Linux data: GPT "Linux filesystem", MBR 0x83.
    LinuxData,
    /// Linux reserved.
    LinuxReserved,
    /// Swap.
    Swap,
    /// LVM physical volume.
    Lvm,
    /// Linux software RAID member.
    Raid,
    /// LUKS-encrypted volume.
    Luks,
    /// MBR extended partition container (0x05, 0x0F, 0x85).
    Extended,
    /// MBR 0xEE: the protective entry of a GPT disk.
    GptProtective,
    /// Microsoft basic data, FAT, NTFS, exFAT.
    MicrosoftData,
    /// Microsoft reserved (MSR).
    MicrosoftReserved,
    /// Windows recovery environment.
    WindowsRecovery,
    /// FreeBSD, OpenBSD, NetBSD partitions and slices.
    Bsd,
    /// Apple HFS+/APFS.
    Apple,
    /// MBR type 0x00.
    Empty,
    /// Anything not in the catalogue, or in it without a special role.
    Other,
}

/// CPU architecture that a DPS root or `/usr` type is specific to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// x86-64 (amd64).
    X86_64,
    /// AArch64 (arm64).
    Aarch64,
    /// 32-bit x86.
    X86,
    /// 32-bit ARM.
    Arm,
}

/// One known GPT partition type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GptType {
    /// The type GUID.
    pub guid: Guid,
    /// Its name, as `sfdisk` spells it.
    pub name: &'static str,
    /// What it is for.
    pub kind: PartitionKind,
    /// For architecture-specific DPS types, the architecture.
    pub arch: Option<Architecture>,
}

/// One known MBR partition type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbrType {
    /// The type byte.
    pub byte: u8,
    /// Its name, as `sfdisk` spells it.
    pub name: &'static str,
    /// What it is for.
    pub kind: PartitionKind,
}

macro_rules! gpt_types {
    ($( $konst:ident = $guid:literal, $name:literal, $kind:ident, $arch:expr; )*) => {
        /// Named constants for the catalogued GPT type GUIDs.
        pub mod gpt {
            use crate::guid::Guid;
            $(
                #[doc = $name]
                pub const $konst: Guid = Guid::from_literal($guid);
            )*
        }

        /// Every catalogued GPT type.
        pub const GPT_TYPES: &[GptType] = &[
            $( GptType { guid: gpt::$konst, name: $name, kind: PartitionKind::$kind, arch: $arch }, )*
        ];
    };
}

use Architecture::{Aarch64, Arm, X86, X86_64};

gpt_types! {
    EFI_SYSTEM = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System", Esp, None;
    BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649", "BIOS boot", BiosBoot, None;
    MBR_SCHEME = "024DEE41-33E7-11D3-9D69-0008C781F39F", "MBR partition scheme", Other, None;
    LINUX_FILESYSTEM = "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem", LinuxData, None;
    LINUX_XBOOTLDR = "BC13C2FF-59E6-4262-A352-B275FD6F7172", "Linux extended boot", XbootLdr, None;
    LINUX_ROOT_X86_64 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "Linux root (x86-64)", LinuxRoot, Some(X86_64);
    LINUX_ROOT_AARCH64 = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE", "Linux root (ARM-64)", LinuxRoot, Some(Aarch64);
    LINUX_ROOT_X86 = "44479540-F297-41B2-9AF7-D131D5F0458A", "Linux root (x86)", LinuxRoot, Some(X86);
    LINUX_ROOT_ARM = "69DAD710-2CE4-4E3C-B16C-21A1D49ABED3", "Linux root (ARM)", LinuxRoot, Some(Arm);
    LINUX_USR_X86_64 = "8484680C-9521-48C6-9C11-B0720656F69E", "Linux /usr (x86-64)", LinuxUsr, Some(X86_64);
    LINUX_USR_AARCH64 = "B0E01050-EE5F-4390-949A-9101B17104E9", "Linux /usr (ARM-64)", LinuxUsr, Some(Aarch64);
    LINUX_USR_X86 = "75250D76-8CC6-458E-BD66-BD47CC81A812", "Linux /usr (x86)", LinuxUsr, Some(X86);
    LINUX_USR_ARM = "7D0359A3-02B3-4F0A-865C-654403E70625", "Linux /usr (ARM)", LinuxUsr, Some(Arm);
    LINUX_HOME = "933AC7E1-2EB4-4F13-B844-0E14E2AEF915", "Linux home", LinuxHome, None;
    LINUX_VAR = "4D21B016-B534-45C2-A9FB-5C16E091FD2D", "Linux variable data", LinuxVar, None;
    LINUX_SRV = "3B8F8425-20E0-4F3B-907F-1A25A76F98E8", "Linux server data", LinuxSrv, None;
    LINUX_TMP = "7EC6F557-3BC5-4ACA-B293-16EF5DF639D1", "Linux temporary data", LinuxTmp, None;
    LINUX_SWAP = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap", Swap, None;
    LINUX_LVM = "E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM", Lvm, None;
    LINUX_RAID = "A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID", Raid, None;
    LINUX_LUKS = "CA7D7CCB-63ED-4C53-861C-1742536059CC", "Linux LUKS", Luks, None;
    LINUX_RESERVED = "8DA63339-0007-60C0-C436-083AC8230908", "Linux reserved", LinuxReserved, None;
    FREEBSD_BOOT = "83BD6B9D-7F41-11DC-BE0B-001560B84F0F", "FreeBSD boot", Bsd, None;
    FREEBSD_DATA = "516E7CB4-6ECF-11D6-8FF8-00022D09712B", "FreeBSD data", Bsd, None;
    FREEBSD_SWAP = "516E7CB5-6ECF-11D6-8FF8-00022D09712B", "FreeBSD swap", Bsd, None;
    FREEBSD_UFS = "516E7CB6-6ECF-11D6-8FF8-00022D09712B", "FreeBSD UFS", Bsd, None;
    FREEBSD_ZFS = "516E7CBA-6ECF-11D6-8FF8-00022D09712B", "FreeBSD ZFS", Bsd, None;
    OPENBSD_DATA = "824CC7A0-36A8-11E3-890A-952519AD3F61", "OpenBSD data", Bsd, None;
    MICROSOFT_BASIC_DATA = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data", MicrosoftData, None;
    MICROSOFT_RESERVED = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "Microsoft reserved", MicrosoftReserved, None;
    WINDOWS_RECOVERY = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "Windows recovery environment", WindowsRecovery, None;
    APPLE_HFS = "48465300-0000-11AA-AA11-00306543ECAC", "Apple HFS/HFS+", Apple, None;
    APPLE_APFS = "7C3457EF-0000-11AA-AA11-00306543ECAC", "Apple APFS", Apple, None;
}

/// Every catalogued MBR type byte.
pub const MBR_TYPES: &[MbrType] = &[
    mbr(0x00, "Empty", PartitionKind::Empty),
    mbr(0x01, "FAT12", PartitionKind::MicrosoftData),
    mbr(0x04, "FAT16 <32M", PartitionKind::MicrosoftData),
    mbr(0x05, "Extended", PartitionKind::Extended),
    mbr(0x06, "FAT16", PartitionKind::MicrosoftData),
    mbr(0x07, "HPFS/NTFS/exFAT", PartitionKind::MicrosoftData),
    mbr(0x0b, "W95 FAT32", PartitionKind::MicrosoftData),
    mbr(0x0c, "W95 FAT32 (LBA)", PartitionKind::MicrosoftData),
    mbr(0x0e, "W95 FAT16 (LBA)", PartitionKind::MicrosoftData),
    mbr(0x0f, "W95 Ext'd (LBA)", PartitionKind::Extended),
    mbr(0x27, "Hidden NTFS WinRE", PartitionKind::WindowsRecovery),
    mbr(0x82, "Linux swap / Solaris", PartitionKind::Swap),
    mbr(0x83, "Linux", PartitionKind::LinuxData),
    mbr(0x85, "Linux extended", PartitionKind::Extended),
    mbr(0x8e, "Linux LVM", PartitionKind::Lvm),
    mbr(0xa5, "FreeBSD", PartitionKind::Bsd),
    mbr(0xa6, "OpenBSD", PartitionKind::Bsd),
    mbr(0xa9, "NetBSD", PartitionKind::Bsd),
    mbr(0xaf, "HFS / HFS+", PartitionKind::Apple),
    mbr(0xda, "Non-FS data", PartitionKind::Other),
    mbr(0xea, "Linux extended boot", PartitionKind::XbootLdr),
    mbr(0xee, "GPT", PartitionKind::GptProtective),
    mbr(0xef, "EFI (FAT-12/16/32)", PartitionKind::Esp),
    mbr(0xfd, "Linux raid autodetect", PartitionKind::Raid),
];

const fn mbr(byte: u8, name: &'static str, kind: PartitionKind) -> MbrType {
    MbrType { byte, name, kind }
}

/// The catalogue entry for a GPT type GUID.
pub fn gpt_type(guid: &Guid) -> Option<&'static GptType> {
    GPT_TYPES.iter().find(|t| t.guid == *guid)
}

/// The catalogue entry for an MBR type byte.
pub fn mbr_type(byte: u8) -> Option<&'static MbrType> {
    MBR_TYPES.iter().find(|t| t.byte == byte)
}

/// True for the MBR types that hold an EBR chain (0x05, 0x0F, 0x85), as Linux treats them.
pub fn is_mbr_extended(byte: u8) -> bool {
    matches!(byte, 0x05 | 0x0f | 0x85)
}

/// A partition's type: a GPT type GUID or an MBR type byte.
///
/// Text form (and serde): the GUID in uppercase for GPT, `0x` and two lowercase hex digits for
/// MBR (`0x83`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionType {
    /// A GPT partition type GUID.
    Gpt(Guid),
    /// An MBR partition type byte.
    Mbr(u8),
}

impl PartitionType {
    /// The catalogue name, or `"unknown"`.
    pub fn name(&self) -> &'static str {
        match self {
            PartitionType::Gpt(g) => gpt_type(g).map_or("unknown", |t| t.name),
            PartitionType::Mbr(b) => mbr_type(*b).map_or("unknown", |t| t.name),
        }
    }

    /// The classification; [`PartitionKind::Other`] for types not in the catalogue.
    pub fn kind(&self) -> PartitionKind {
        match self {
            PartitionType::Gpt(g) => gpt_type(g).map_or(PartitionKind::Other, |t| t.kind),
            PartitionType::Mbr(b) => mbr_type(*b).map_or(PartitionKind::Other, |t| t.kind),
        }
    }

    /// The architecture of an architecture-specific DPS type (root, `/usr`).
    pub fn architecture(&self) -> Option<Architecture> {
        match self {
            PartitionType::Gpt(g) => gpt_type(g).and_then(|t| t.arch),
            PartitionType::Mbr(_) => None,
        }
    }
}

impl fmt::Display for PartitionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionType::Gpt(g) => write!(f, "{g}"),
            PartitionType::Mbr(b) => write!(f, "{b:#04x}"),
        }
    }
}

impl fmt::Debug for PartitionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionType::Gpt(g) => write!(f, "Gpt({g})"),
            PartitionType::Mbr(b) => write!(f, "Mbr({b:#04x})"),
        }
    }
}

impl Serialize for PartitionType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalogue_has_no_duplicates() {
        let guids: HashSet<_> = GPT_TYPES.iter().map(|t| t.guid).collect();
        assert_eq!(guids.len(), GPT_TYPES.len());
        let bytes: HashSet<_> = MBR_TYPES.iter().map(|t| t.byte).collect();
        assert_eq!(bytes.len(), MBR_TYPES.len());
    }

    #[test]
    fn well_known_types_classify() {
        let esp = PartitionType::Gpt(gpt::EFI_SYSTEM);
        assert_eq!(esp.kind(), PartitionKind::Esp);
        assert_eq!(esp.name(), "EFI System");
        assert_eq!(esp.to_string(), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        let root = PartitionType::Gpt(gpt::LINUX_ROOT_AARCH64);
        assert_eq!(root.kind(), PartitionKind::LinuxRoot);
        assert_eq!(root.architecture(), Some(Architecture::Aarch64));
        assert_eq!(
            PartitionType::Gpt(gpt::BIOS_BOOT).kind(),
            PartitionKind::BiosBoot
        );
        assert_eq!(PartitionType::Mbr(0x83).kind(), PartitionKind::LinuxData);
        assert_eq!(PartitionType::Mbr(0x82).kind(), PartitionKind::Swap);
        assert_eq!(PartitionType::Mbr(0x8e).kind(), PartitionKind::Lvm);
        assert_eq!(PartitionType::Mbr(0xfd).kind(), PartitionKind::Raid);
        assert_eq!(PartitionType::Mbr(0xef).kind(), PartitionKind::Esp);
        for b in [0x05, 0x0f, 0x85] {
            assert_eq!(PartitionType::Mbr(b).kind(), PartitionKind::Extended);
            assert!(is_mbr_extended(b));
        }
        assert!(!is_mbr_extended(0x83));
        assert_eq!(PartitionType::Mbr(0x0c).to_string(), "0x0c");
        assert_eq!(PartitionType::Mbr(0x42).kind(), PartitionKind::Other);
        assert_eq!(PartitionType::Mbr(0x42).name(), "unknown");
        let unknown = PartitionType::Gpt(Guid::from_disk_bytes([7; 16]));
        assert_eq!(unknown.kind(), PartitionKind::Other);
        assert_eq!(unknown.architecture(), None);
    }

    #[test]
    fn every_kind_the_brief_needs_is_reachable() {
        let kinds: HashSet<_> = GPT_TYPES
            .iter()
            .map(|t| t.kind)
            .chain(MBR_TYPES.iter().map(|t| t.kind))
            .collect();
        for k in [
            PartitionKind::Esp,
            PartitionKind::BiosBoot,
            PartitionKind::LinuxData,
            PartitionKind::LinuxRoot,
            PartitionKind::Swap,
            PartitionKind::Lvm,
            PartitionKind::Raid,
            PartitionKind::Extended,
            PartitionKind::Luks,
            PartitionKind::XbootLdr,
        ] {
            assert!(kinds.contains(&k), "{k:?}");
        }
    }
}
