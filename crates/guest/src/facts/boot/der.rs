//! A small, bounded DER reader: just enough ASN.1 to walk a PKCS#7 `SignedData` and the X.509
//! certificates inside it (tags, lengths, names, OIDs, integers).
//!
//! Every length is checked against the bytes actually present; only single-byte tags and
//! definite lengths of at most 4 length bytes are accepted (DER never needs more for the
//! structures read here); nothing recurses on input-controlled depth. Malformed input yields
//! a [`DerError`], never a panic.

use std::fmt;

/// Universal tag numbers (with the constructed bit where DER requires it).
pub mod tag {
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// OBJECT IDENTIFIER.
    pub const OID: u8 = 0x06;
    /// UTF8String.
    pub const UTF8_STRING: u8 = 0x0c;
    /// PrintableString.
    pub const PRINTABLE_STRING: u8 = 0x13;
    /// TeletexString (T61String).
    pub const T61_STRING: u8 = 0x14;
    /// IA5String.
    pub const IA5_STRING: u8 = 0x16;
    /// UniversalString (UCS-4 big-endian).
    pub const UNIVERSAL_STRING: u8 = 0x1c;
    /// BMPString (UCS-2 big-endian).
    pub const BMP_STRING: u8 = 0x1e;
    /// SEQUENCE (constructed).
    pub const SEQUENCE: u8 = 0x30;
    /// SET (constructed).
    pub const SET: u8 = 0x31;
    /// `[0]` context-specific, constructed.
    pub const CONTEXT_0: u8 = 0xa0;
    /// `[1]` context-specific, constructed.
    pub const CONTEXT_1: u8 = 0xa1;
}

/// Why DER could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DerError {
    /// The input ended inside a tag, length or value.
    Truncated {
        /// Offset (within the buffer being read) where more bytes were needed.
        at: usize,
    },
    /// A high-tag-number form (tag byte `0x1f` low bits), which these structures never use.
    UnsupportedTag {
        /// Offset of the tag.
        at: usize,
    },
    /// Indefinite length (BER) or a length of more than 4 bytes.
    BadLength {
        /// Offset of the length.
        at: usize,
    },
    /// A different tag was expected.
    UnexpectedTag {
        /// Offset of the element.
        at: usize,
        /// Tag expected.
        expected: u8,
        /// Tag found.
        found: u8,
    },
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DerError::Truncated { at } => write!(f, "DER truncated at byte {at}"),
            DerError::UnsupportedTag { at } => write!(f, "DER multi-byte tag at byte {at}"),
            DerError::BadLength { at } => {
                write!(f, "DER indefinite or oversized length at byte {at}")
            }
            DerError::UnexpectedTag {
                at,
                expected,
                found,
            } => write!(
                f,
                "DER tag {found:#04x} at byte {at}, expected {expected:#04x}"
            ),
        }
    }
}

impl std::error::Error for DerError {}

/// One element: tag, the value bytes and the whole encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag byte (class, constructed bit, number).
    pub tag: u8,
    /// Offset of the element within the buffer its reader was created on.
    pub offset: usize,
    /// The value (contents octets).
    pub value: &'a [u8],
    /// Tag, length and value together.
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over this element's value (for constructed elements).
    pub fn reader(&self) -> Der<'a> {
        Der::new(self.value)
    }

    /// Fails unless the tag is `expected`.
    pub fn expect(self, expected: u8) -> Result<Self, DerError> {
        if self.tag == expected {
            Ok(self)
        } else {
            Err(DerError::UnexpectedTag {
                at: self.offset,
                expected,
                found: self.tag,
            })
        }
    }
}

/// A cursor over a sequence of DER elements.
#[derive(Debug, Clone)]
pub struct Der<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Der<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Der { data, pos: 0 }
    }

    /// True when every element has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The tag of the next element, without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Reads the next element.
    pub fn read(&mut self) -> Result<Tlv<'a>, DerError> {
        let start = self.pos;
        let tag = *self
            .data
            .get(start)
            .ok_or(DerError::Truncated { at: start })?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::UnsupportedTag { at: start });
        }
        let len_at = start + 1;
        let first = *self
            .data
            .get(len_at)
            .ok_or(DerError::Truncated { at: len_at })?;
        let (len, header) = if first & 0x80 == 0 {
            (usize::from(first), 2usize)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(DerError::BadLength { at: len_at });
            }
            let bytes = self
                .data
                .get(len_at + 1..len_at + 1 + n)
                .ok_or(DerError::Truncated { at: len_at + 1 })?;
            let len = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            let len = usize::try_from(len).map_err(|_| DerError::BadLength { at: len_at })?;
            (len, 2 + n)
        };
        let value_at = start + header;
        let end = value_at
            .checked_add(len)
            .ok_or(DerError::BadLength { at: len_at })?;
        if end > self.data.len() {
            return Err(DerError::Truncated {
                at: self.data.len(),
            });
        }
        self.pos = end;
        Ok(Tlv {
            tag,
            offset: start,
            value: &self.data[value_at..end],
            raw: &self.data[start..end],
        })
    }

    /// Reads the next element and checks its tag.
    pub fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, DerError> {
        self.read()?.expect(tag)
    }

    /// Reads the next element if it has tag `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Well-known object identifiers, DER-encoded (value bytes only).
pub mod oid {
    /// pkcs7-signedData 1.2.840.113549.1.7.2.
    pub const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
    /// countryName 2.5.4.6.
    pub const C: &[u8] = &[0x55, 0x04, 0x06];
    /// stateOrProvinceName 2.5.4.8.
    pub const ST: &[u8] = &[0x55, 0x04, 0x08];
    /// localityName 2.5.4.7.
    pub const L: &[u8] = &[0x55, 0x04, 0x07];
    /// organizationName 2.5.4.10.
    pub const O: &[u8] = &[0x55, 0x04, 0x0a];
    /// organizationalUnitName 2.5.4.11.
    pub const OU: &[u8] = &[0x55, 0x04, 0x0b];
    /// commonName 2.5.4.3.
    pub const CN: &[u8] = &[0x55, 0x04, 0x03];
    /// emailAddress 1.2.840.113549.1.9.1.
    pub const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
}

/// Dotted form of an OID's value bytes (`2.5.4.3`); arcs over 64 bits are shown as `?`.
pub fn oid_to_string(v: &[u8]) -> String {
    let mut arcs: Vec<String> = Vec::new();
    let mut acc: u64 = 0;
    let mut overflow = false;
    let mut first = true;
    for &b in v {
        if acc > (u64::MAX >> 7) {
            overflow = true;
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            let s = |x: u64| {
                if overflow {
                    "?".to_string()
                } else {
                    x.to_string()
                }
            };
            if first {
                let (a, b) = match acc {
                    0..=39 => (0, acc),
                    40..=79 => (1, acc - 40),
                    _ => (2, acc - 80),
                };
                arcs.push(a.to_string());
                arcs.push(s(b));
                first = false;
            } else {
                arcs.push(s(acc));
            }
            acc = 0;
            overflow = false;
        }
    }
    arcs.join(".")
}

/// Text of a directory string (UTF8String, PrintableString, IA5String, T61String, BMPString,
/// UniversalString); invalid bytes are replaced.
pub fn string_value(t: &Tlv<'_>) -> String {
    match t.tag {
        tag::BMP_STRING => {
            let units: Vec<u16> = t
                .value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        tag::UNIVERSAL_STRING => t
            .value
            .chunks_exact(4)
            .map(|c| {
                char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
        // T61 is close enough to Latin-1 for names.
        tag::T61_STRING => t.value.iter().map(|&b| char::from(b)).collect(),
        _ => String::from_utf8_lossy(t.value).into_owned(),
    }
}

/// An X.501 distinguished name, as attribute (short name or dotted OID, value) pairs in
/// encoding order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Name {
    /// The attributes.
    pub attributes: Vec<(String, String)>,
}

/// Most attributes read from one name (hostile names may hold thousands).
const MAX_NAME_ATTRIBUTES: usize = 64;

impl Name {
    /// Parses a `Name` SEQUENCE element.
    pub fn parse(t: &Tlv<'_>) -> Result<Name, DerError> {
        let t = t.expect(tag::SEQUENCE)?;
        let mut rdns = t.reader();
        let mut attributes = Vec::new();
        while !rdns.is_empty() {
            let set = rdns.expect(tag::SET)?;
            let mut atvs = set.reader();
            while !atvs.is_empty() {
                let atv = atvs.expect(tag::SEQUENCE)?;
                let mut r = atv.reader();
                let o = r.expect(tag::OID)?;
                let v = r.read()?;
                if attributes.len() < MAX_NAME_ATTRIBUTES {
                    attributes.push((short_name(o.value), string_value(&v)));
                }
            }
        }
        Ok(Name { attributes })
    }

    /// The first commonName, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == "CN")
            .map(|(_, v)| v.as_str())
    }

    /// OpenSSL's one-line form, `/C=US/O=Example/CN=Name` (as `sbverify --list` prints it).
    pub fn oneline(&self) -> String {
        self.attributes
            .iter()
            .map(|(k, v)| format!("/{k}={v}"))
            .collect()
    }
}

fn short_name(o: &[u8]) -> String {
    match o {
        oid::C => "C".into(),
        oid::ST => "ST".into(),
        oid::L => "L".into(),
        oid::O => "O".into(),
        oid::OU => "OU".into(),
        oid::CN => "CN".into(),
        oid::EMAIL => "emailAddress".into(),
        _ => oid_to_string(o),
    }
}

/// Lowercase hex of bytes (serial numbers).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths() {
        let mut d = Der::new(&[0x02, 0x01, 0x05, 0x04, 0x81, 0x02, 0xaa, 0xbb]);
        let a = d.read().unwrap();
        assert_eq!((a.tag, a.value), (0x02, &[5u8][..]));
        let b = d.read().unwrap();
        assert_eq!((b.tag, b.value, b.offset), (0x04, &[0xaa, 0xbb][..], 3));
        assert!(d.is_empty());
        assert!(matches!(d.read(), Err(DerError::Truncated { .. })));
    }

    #[test]
    fn rejects_malformed() {
        // empty, missing length, truncated value, truncated long length, huge length
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x01],
            &[0x30, 0x82, 0x01],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(matches!(
                Der::new(bad).read(),
                Err(DerError::Truncated { .. })
            ));
        }
        assert!(matches!(
            Der::new(&[0x30, 0x80, 0, 0]).read(),
            Err(DerError::BadLength { .. })
        ));
        assert!(matches!(
            Der::new(&[0x30, 0x85, 1, 1, 1, 1, 1]).read(),
            Err(DerError::BadLength { .. })
        ));
        assert!(matches!(
            Der::new(&[0x1f, 0x01, 0x00]).read(),
            Err(DerError::UnsupportedTag { .. })
        ));
        assert!(matches!(
            Der::new(&[0x02, 0x00]).expect(tag::SEQUENCE),
            Err(DerError::UnexpectedTag { .. })
        ));
    }

    #[test]
    fn oid_text() {
        assert_eq!(oid_to_string(oid::SIGNED_DATA), "1.2.840.113549.1.7.2");
        assert_eq!(oid_to_string(oid::CN), "2.5.4.3");
        // a never-ending arc, and an overflowing one
        assert_eq!(oid_to_string(&[0x80, 0x80]), "");
        let mut big = vec![0x2a];
        big.extend([0xff; 10]);
        big.push(0x7f);
        assert_eq!(oid_to_string(&big), "1.2.?");
    }

    fn name_der(parts: &[(&[u8], u8, &[u8])]) -> Vec<u8> {
        let mut rdns = Vec::new();
        for (o, t, v) in parts {
            let mut atv = vec![tag::OID, o.len() as u8];
            atv.extend_from_slice(o);
            atv.extend_from_slice(&[*t, v.len() as u8]);
            atv.extend_from_slice(v);
            let mut seq = vec![tag::SEQUENCE, atv.len() as u8];
            seq.extend(atv);
            rdns.extend([tag::SET, seq.len() as u8]);
            rdns.extend(seq);
        }
        let mut out = vec![tag::SEQUENCE, rdns.len() as u8];
        out.extend(rdns);
        out
    }

    #[test]
    fn names() {
        let der = name_der(&[
            (oid::C, tag::PRINTABLE_STRING, b"US"),
            (oid::O, tag::UTF8_STRING, b"Microsoft Corporation"),
            (oid::CN, tag::BMP_STRING, &[0, b'C', 0, b'A']),
            (&[0x55, 0x04, 0x05], tag::PRINTABLE_STRING, b"42"),
        ]);
        let t = Der::new(&der).read().unwrap();
        let n = Name::parse(&t).unwrap();
        assert_eq!(n.common_name(), Some("CA"));
        assert_eq!(
            n.oneline(),
            "/C=US/O=Microsoft Corporation/CN=CA/2.5.4.5=42"
        );
    }

    #[test]
    fn hostile_bytes_never_panic() {
        // Every truncation and a pseudo-random mutation sweep of a valid name.
        let der = name_der(&[
            (oid::C, tag::PRINTABLE_STRING, b"US"),
            (
                oid::CN,
                tag::UNIVERSAL_STRING,
                &[0, 0, 0, b'A', 0xff, 0xff, 0xff, 0xff],
            ),
        ]);
        for cut in 0..der.len() {
            let mut d = Der::new(&der[..cut]);
            if let Ok(t) = d.read() {
                let _ = Name::parse(&t);
            }
        }
        let mut seed = 0x1234_5678u32;
        for _ in 0..20_000 {
            let mut m = der.clone();
            for _ in 0..3 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let i = (seed >> 8) as usize % m.len();
                m[i] = (seed >> 20) as u8;
            }
            if let Ok(t) = Der::new(&m).read() {
                let _ = Name::parse(&t);
            }
        }
    }
}
