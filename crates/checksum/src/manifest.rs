//! The JSON manifest `vhdprep checksum --json` writes and `--verify` reads back.
//!
//! Keys, each present when the value was computed: `md5` (hex), `md5_base64`, `sha256`,
//! `crc32` (8 hex digits), `blake3`, `size`, `nonzero_bytes`, `ranges` (a list of
//! `[offset, length]`, or of `[offset, length, md5_base64]` with per-range MD5s).

use crate::{ChecksumError, Digests, Options};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// The most bytes of manifest read: a map of 30 million ranges fits.
const MAX_MANIFEST: u64 = 1 << 30;

/// One entry of `ranges`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RangeEntry {
    /// `[offset, length]`: a merged non-zero range.
    Plain(u64, u64),
    /// `[offset, length, md5_base64]`: a non-zero piece (at most 4 MiB) and its MD5.
    WithMd5(u64, u64, String),
}

impl std::fmt::Display for RangeEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RangeEntry::Plain(o, l) => write!(f, "[{o}, {l}]"),
            RangeEntry::WithMd5(o, l, m) => write!(f, "[{o}, {l}, \"{m}\"]"),
        }
    }
}

/// A checksum manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// MD5, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// MD5, base64 (`Content-MD5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_base64: Option<String>,
    /// SHA-256, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// CRC32 (IEEE), 8 lowercase hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<String>,
    /// BLAKE3, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// Bytes hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Bytes in non-zero ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonzero_bytes: Option<u64>,
    /// Non-zero ranges (with their MD5s when per-range MD5 was asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<RangeEntry>>,
}

fn enc<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// One `ranges` entry as a line of the pretty JSON (indented, no comma).
pub(crate) fn entry_line(e: &RangeEntry) -> String {
    match e {
        RangeEntry::Plain(o, l) => format!("    [{o}, {l}]"),
        RangeEntry::WithMd5(o, l, m) => format!("    [{o}, {l}, {}]", enc(m)),
    }
}

/// `{ "k": v, ... }` over pre-encoded values, one key per line.
pub(crate) fn json_object(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("  \"{k}\": {v}"))
        .collect();
    format!("{{\n{}\n}}\n", body.join(",\n"))
}

/// One value that differs between a manifest and the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The manifest key.
    pub key: &'static str,
    /// What the manifest says.
    pub expected: String,
    /// What the image gives.
    pub actual: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} differs: manifest {}, image {}",
            self.key, self.expected, self.actual
        )
    }
}

impl Manifest {
    /// The manifest of a pass.
    pub fn from_digests(d: &Digests) -> Manifest {
        let ranges = match (&d.range_md5, &d.zero_map) {
            (Some(pieces), _) => Some(
                pieces
                    .iter()
                    .map(|p| RangeEntry::WithMd5(p.offset, p.length, p.md5_base64()))
                    .collect(),
            ),
            (None, Some(map)) if map.is_kept() => Some(
                map.ranges()
                    .iter()
                    .map(|r| RangeEntry::Plain(r.start, r.end - r.start))
                    .collect(),
            ),
            _ => None,
        };
        Manifest {
            md5: d.md5_hex(),
            md5_base64: d.md5_base64(),
            sha256: d.sha256_hex(),
            crc32: d.crc32_hex(),
            blake3: d.blake3_hex(),
            size: Some(d.size),
            nonzero_bytes: d.zero_map.as_ref().map(|m| m.nonzero_bytes()),
            ranges,
        }
    }

    /// Pretty JSON, keys in the documented order, one `ranges` entry per line.
    pub fn to_json(&self) -> String {
        let mut fields = self.scalar_fields();
        if let Some(r) = &self.ranges {
            let body = if r.is_empty() {
                "[]".to_string()
            } else {
                let lines: Vec<String> = r.iter().map(entry_line).collect();
                format!("[\n{}\n  ]", lines.join(",\n"))
            };
            fields.push(("ranges", body));
        }
        json_object(&fields)
    }

    /// Every key but `ranges`, encoded, in order.
    pub(crate) fn scalar_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields: Vec<(&'static str, String)> = Vec::new();
        let strings = [
            ("md5", &self.md5),
            ("md5_base64", &self.md5_base64),
            ("sha256", &self.sha256),
            ("crc32", &self.crc32),
            ("blake3", &self.blake3),
        ];
        for (k, v) in strings {
            if let Some(v) = v {
                fields.push((k, enc(v)));
            }
        }
        if let Some(v) = self.size {
            fields.push(("size", v.to_string()));
        }
        if let Some(v) = self.nonzero_bytes {
            fields.push(("nonzero_bytes", v.to_string()));
        }
        fields
    }

    /// Reads and parses a manifest file.
    pub fn load(path: &Path) -> Result<Manifest, ChecksumError> {
        let fail = |what: String| ChecksumError::Manifest {
            path: path.to_owned(),
            what,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
        let mut text = String::new();
        file.take(MAX_MANIFEST + 1)
            .read_to_string(&mut text)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if text.len() as u64 > MAX_MANIFEST {
            return Err(fail(format!(
                "larger than {MAX_MANIFEST} bytes: not a checksum manifest"
            )));
        }
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| fail(format!("not a checksum manifest: {e}")))?;
        if m.options().is_empty() && m.size.is_none() {
            return Err(fail(
                "no value to verify (expected keys: md5, md5_base64, sha256, crc32, blake3, size, nonzero_bytes, ranges)".into(),
            ));
        }
        Ok(m)
    }

    /// What must be computed to check this manifest.
    pub fn options(&self) -> Options {
        let range_md5 = self
            .ranges
            .as_ref()
            .is_some_and(|r| r.iter().any(|e| matches!(e, RangeEntry::WithMd5(..))));
        Options {
            md5: self.md5.is_some() || self.md5_base64.is_some(),
            sha256: self.sha256.is_some(),
            crc32: self.crc32.is_some(),
            blake3: self.blake3.is_some(),
            zero_map: self.nonzero_bytes.is_some() || self.ranges.is_some(),
            range_md5,
            // Verification compares the ranges as they come (see `RangeCheck`).
            keep_ranges: false,
        }
    }

    /// Every value of this manifest that differs from `actual`'s, in key order. Hex is
    /// compared without regard to case.
    pub fn compare(&self, actual: &Manifest) -> Vec<Mismatch> {
        let mut out = self.compare_values(actual);
        if let Some(e) = &self.ranges {
            let mut check = crate::stream::RangeCheck::new(e);
            for entry in actual.ranges.as_deref().unwrap_or(&[]) {
                check.entry(entry.clone());
            }
            out.extend(check.mismatch());
        }
        out
    }

    /// [`Manifest::compare`] without `ranges`.
    pub fn compare_values(&self, actual: &Manifest) -> Vec<Mismatch> {
        let mut out = Vec::new();
        let mut text = |key: &'static str, e: &Option<String>, a: &Option<String>, hex: bool| {
            if let Some(e) = e {
                let a = a.clone().unwrap_or_else(|| "(not computed)".into());
                let same = if hex {
                    e.eq_ignore_ascii_case(&a)
                } else {
                    *e == a
                };
                if !same {
                    out.push(Mismatch {
                        key,
                        expected: e.clone(),
                        actual: a,
                    });
                }
            }
        };
        text("md5", &self.md5, &actual.md5, true);
        text("md5_base64", &self.md5_base64, &actual.md5_base64, false);
        text("sha256", &self.sha256, &actual.sha256, true);
        text("crc32", &self.crc32, &actual.crc32, true);
        text("blake3", &self.blake3, &actual.blake3, true);
        let mut number = |key: &'static str, e: Option<u64>, a: Option<u64>| {
            if let Some(e) = e {
                if Some(e) != a {
                    out.push(Mismatch {
                        key,
                        expected: e.to_string(),
                        actual: a.map_or_else(|| "(not computed)".into(), |a| a.to_string()),
                    });
                }
            }
        };
        number("size", self.size, actual.size);
        number("nonzero_bytes", self.nonzero_bytes, actual.nonzero_bytes);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_with_and_without_md5() {
        let m: Manifest = serde_json::from_str(
            r#"{"size": 5, "ranges": [[0, 512], [1024, 512, "1B2M2Y8AsgTpgAmY7PhCfg=="]]}"#,
        )
        .unwrap();
        assert_eq!(
            m.ranges.unwrap(),
            vec![
                RangeEntry::Plain(0, 512),
                RangeEntry::WithMd5(1024, 512, "1B2M2Y8AsgTpgAmY7PhCfg==".into())
            ]
        );
    }

    #[test]
    fn keys_appear_in_order_and_only_when_computed() {
        let m = Manifest {
            md5: Some("aa".into()),
            crc32: Some("00000000".into()),
            size: Some(0),
            ranges: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"md5":"aa","crc32":"00000000","size":0,"ranges":[]}"#
        );
    }

    #[test]
    fn pretty_json_parses_back_with_one_range_per_line() {
        let m = Manifest {
            md5: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
            size: Some(4096),
            nonzero_bytes: Some(1024),
            ranges: Some(vec![
                RangeEntry::WithMd5(0, 512, "a\"b".into()),
                RangeEntry::WithMd5(1024, 512, "x".into()),
            ]),
            ..Default::default()
        };
        let text = m.to_json();
        assert_eq!(
            text,
            "{\n  \"md5\": \"d41d8cd98f00b204e9800998ecf8427e\",\n  \"size\": 4096,\n  \"nonzero_bytes\": 1024,\n  \"ranges\": [\n    [0, 512, \"a\\\"b\"],\n    [1024, 512, \"x\"]\n  ]\n}\n"
        );
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
        let empty = Manifest {
            size: Some(0),
            ranges: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(
            serde_json::from_str::<Manifest>(&empty.to_json()).unwrap(),
            empty
        );
    }

    #[test]
    fn compare_names_each_differing_value() {
        let e = Manifest {
            md5: Some("AB".into()),
            sha256: Some("cd".into()),
            size: Some(10),
            ranges: Some(vec![
                RangeEntry::Plain(0, 512),
                RangeEntry::Plain(1024, 512),
            ]),
            ..Default::default()
        };
        let a = Manifest {
            md5: Some("ab".into()),
            sha256: Some("ce".into()),
            size: Some(11),
            ranges: Some(vec![RangeEntry::Plain(0, 512)]),
            ..Default::default()
        };
        let d = e.compare(&a);
        let keys: Vec<_> = d.iter().map(|m| m.key).collect();
        assert_eq!(keys, ["sha256", "size", "ranges"]);
        assert_eq!(
            d[2].to_string(),
            "ranges differs: manifest 2 entries, entry 1 [1024, 512], image 1 entries, entry 1 (none)"
        );
        assert!(e.compare(&e).is_empty());
    }
}
