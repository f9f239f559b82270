//! The architecture of a guest, from the ELF header of its init binary.

use serde::Serialize;

/// CPU architecture of the guest. Serialises as `uname -m` names (`x86_64`, `aarch64`);
/// [`Architecture::azure_name`] gives Azure's (`x64`, `Arm64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// x86-64 (`e_machine` 62): Azure `x64`.
    X64,
    /// AArch64 (`e_machine` 183): Azure `Arm64`.
    Arm64,
    /// 32-bit x86 (`e_machine` 3).
    X86,
    /// 32-bit ARM (`e_machine` 40).
    Arm,
    /// Another machine, with its `e_machine` value.
    Other(u16),
}

impl Serialize for Architecture {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.uname_name())
    }
}

impl Architecture {
    /// The name `uname -m` prints: `x86_64`, `aarch64`, `i686`, `armv7l`.
    pub fn uname_name(self) -> String {
        match self {
            Architecture::X64 => "x86_64".into(),
            Architecture::Arm64 => "aarch64".into(),
            Architecture::X86 => "i686".into(),
            Architecture::Arm => "armv7l".into(),
            Architecture::Other(m) => format!("elf-machine-{m}"),
        }
    }

    /// The name Azure uses (`x64`, `Arm64`), or a descriptive one.
    pub fn azure_name(self) -> String {
        match self {
            Architecture::X64 => "x64".into(),
            Architecture::Arm64 => "Arm64".into(),
            Architecture::X86 => "x86 (32-bit)".into(),
            Architecture::Arm => "arm (32-bit)".into(),
            Architecture::Other(m) => format!("ELF machine {m}"),
        }
    }
}

/// What the first bytes of an ELF file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ElfHeader {
    /// 64-bit (`ELFCLASS64`).
    pub is_64bit: bool,
    /// Little-endian.
    pub little_endian: bool,
    /// The machine.
    pub architecture: Architecture,
}

/// Decodes the ELF identification and `e_machine` (the first 20 bytes suffice).
pub fn parse_header(b: &[u8]) -> Option<ElfHeader> {
    if b.len() < 20 || &b[0..4] != b"\x7fELF" {
        return None;
    }
    let is_64bit = match b[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little_endian = match b[5] {
        1 => true,
        2 => false,
        _ => return None,
    };
    let m = if little_endian {
        u16::from_le_bytes([b[18], b[19]])
    } else {
        u16::from_be_bytes([b[18], b[19]])
    };
    let architecture = match m {
        62 => Architecture::X64,
        183 => Architecture::Arm64,
        3 => Architecture::X86,
        40 => Architecture::Arm,
        other => Architecture::Other(other),
    };
    Some(ElfHeader {
        is_64bit,
        little_endian,
        architecture,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_e_machine() {
        let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        h.resize(20, 0);
        h[18] = 62;
        let e = parse_header(&h).unwrap();
        assert!(e.is_64bit && e.little_endian);
        assert_eq!(e.architecture, Architecture::X64);
        h[18] = 183;
        assert_eq!(parse_header(&h).unwrap().architecture, Architecture::Arm64);
        assert_eq!(parse_header(&h[..19]), None);
        assert_eq!(parse_header(b"#!/bin/sh\n................"), None);
    }

    #[test]
    fn reads_the_test_binary_itself() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let e = parse_header(&me).unwrap();
        if cfg!(target_arch = "x86_64") {
            assert_eq!(e.architecture, Architecture::X64);
        }
    }
}
