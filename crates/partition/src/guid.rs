//! GUIDs as GPT stores them: 16 bytes, "mixed-endian".
//!
//! The first three groups are little-endian on disk (`u32`, `u16`, `u16`), the last two are
//! stored byte by byte. So the ESP type `C12A7328-F81F-11D2-BA4B-00A0C93EC93B` is on disk
//! `28 73 2A C1 1F F8 D2 11 BA 4B 00 A0 C9 3E C9 3B`.
//!
//! Text form: [`Display`](std::fmt::Display) (and serde) give **uppercase**, as `sgdisk` and
//! `sfdisk` print; [`Guid::to_lowercase_string`] (or `{:x}`) gives lowercase, as `blkid`, udev's
//! `/dev/disk/by-partuuid/` and most `fstab`/`root=PARTUUID=` lines use. [`Guid::parse`] accepts
//! either case.

use serde::{Serialize, Serializer};
use std::fmt;

/// A GUID kept in its on-disk (mixed-endian) byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid([u8; 16]);

impl Guid {
    /// The all-zero GUID: an unused GPT entry has this partition type.
    pub const NIL: Guid = Guid([0; 16]);

    /// From the 16 bytes as they are stored in a GPT header or entry.
    pub const fn from_disk_bytes(bytes: [u8; 16]) -> Guid {
        Guid(bytes)
    }

    /// The 16 bytes as they are stored on disk.
    pub const fn to_disk_bytes(self) -> [u8; 16] {
        self.0
    }

    /// True for the all-zero GUID.
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// Parses the text form `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`, either case. `None` when the
    /// text is anything else.
    pub fn parse(text: &str) -> Option<Guid> {
        parse_text(text.as_bytes())
    }

    /// A catalogue constant from its text form. Evaluated at compile time: only for `const`
    /// items (a malformed literal then fails the build). Do not call it on runtime input; use
    /// [`Guid::parse`].
    pub(crate) const fn from_literal(text: &str) -> Guid {
        match parse_text(text.as_bytes()) {
            Some(g) => g,
            None => panic!("malformed GUID literal"),
        }
    }

    /// Uppercase text form, as `sgdisk`/`sfdisk` print it (same as `to_string()`).
    pub fn to_uppercase_string(&self) -> String {
        format!("{self}")
    }

    /// Lowercase text form, as `blkid` and `/dev/disk/by-partuuid/` show it.
    pub fn to_lowercase_string(&self) -> String {
        format!("{self:x}")
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, upper: bool) -> fmt::Result {
        let b = &self.0;
        // Text order: bytes 3 2 1 0 - 5 4 - 7 6 - 8 9 - 10..16.
        const ORDER: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
        for (i, &idx) in ORDER.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            if upper {
                write!(f, "{:02X}", b[idx])?;
            } else {
                write!(f, "{:02x}", b[idx])?;
            }
        }
        Ok(())
    }
}

const fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Text (36 bytes, hyphens at 8, 13, 18, 23) to on-disk bytes. `const` so that the type
/// catalogue is built at compile time.
const fn parse_text(t: &[u8]) -> Option<Guid> {
    if t.len() != 36 {
        return None;
    }
    // The 16 values in text order.
    let mut text_bytes = [0u8; 16];
    let mut pos = 0;
    let mut n = 0;
    while pos < 36 {
        if pos == 8 || pos == 13 || pos == 18 || pos == 23 {
            if t[pos] != b'-' {
                return None;
            }
            pos += 1;
            continue;
        }
        let (Some(hi), Some(lo)) = (hex_value(t[pos]), hex_value(t[pos + 1])) else {
            return None;
        };
        text_bytes[n] = hi << 4 | lo;
        n += 1;
        pos += 2;
    }
    let x = text_bytes;
    Some(Guid([
        x[3], x[2], x[1], x[0], x[5], x[4], x[7], x[6], x[8], x[9], x[10], x[11], x[12], x[13],
        x[14], x[15],
    ]))
}

impl fmt::Display for Guid {
    /// Uppercase, like `sgdisk` and `sfdisk`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, true)
    }
}

impl fmt::LowerHex for Guid {
    /// Lowercase, like `blkid`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

impl fmt::UpperHex for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, true)
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl Serialize for Guid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESP_DISK: [u8; 16] = [
        0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9,
        0x3B,
    ];

    #[test]
    fn mixed_endian_round_trip() {
        let g = Guid::from_disk_bytes(ESP_DISK);
        assert_eq!(g.to_string(), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        assert_eq!(
            g.to_lowercase_string(),
            "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
        );
        assert_eq!(format!("{g:x}"), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        assert_eq!(Guid::parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"), Some(g));
        assert_eq!(Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"), Some(g));
        assert_eq!(g.to_disk_bytes(), ESP_DISK);
        assert_eq!(
            Guid::from_literal("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
            g
        );
    }

    #[test]
    fn parse_rejects_malformed_text() {
        for bad in [
            "",
            "C12A7328F81F11D2BA4B00A0C93EC93B",
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93",
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93BB",
            "C12A7328-F81F-11D2-BA4B_00A0C93EC93B",
            "G12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            "C12A7328-F81F-11D2-BA4B-00A0C93EC9é",
        ] {
            assert_eq!(Guid::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn nil_and_serde() {
        assert!(Guid::NIL.is_nil());
        assert!(!Guid::from_disk_bytes(ESP_DISK).is_nil());
        assert_eq!(
            serde_json::to_string(&Guid::from_disk_bytes(ESP_DISK)).unwrap(),
            "\"C12A7328-F81F-11D2-BA4B-00A0C93EC93B\""
        );
        assert_eq!(
            format!("{:?}", Guid::NIL),
            "Guid(00000000-0000-0000-0000-000000000000)"
        );
    }
}
