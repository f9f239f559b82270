//! Secrets (SAS tokens, account keys) kept out of every message.
//!
//! A SAS token is kept as a [`Secret`] whose `Debug` and `Display` print a placeholder, and
//! every text that may quote a URL or a connection string (the SDK's error messages) goes
//! through [`redact`] before it reaches a user.

use std::fmt;

/// A secret string: readable only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for building a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// Query parameters and connection-string keys whose values are secret.
const SECRET_KEYS: [&str; 4] = ["sig=", "AccountKey=", "SharedAccessSignature=", "skoid="];

/// `text` with the value of every secret parameter (`sig=...`, `AccountKey=...`,
/// `SharedAccessSignature=...`) replaced by `REDACTED`, up to the next `&`, `;`, quote or
/// white space.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while !rest.is_empty() {
        let lower = rest.to_ascii_lowercase();
        let mut first: Option<(usize, usize)> = None;
        for k in SECRET_KEYS {
            if let Some(i) = lower.find(&k.to_ascii_lowercase()) {
                if first.is_none_or(|(j, _)| i < j) {
                    first = Some((i, k.len()));
                }
            }
        }
        let Some((i, klen)) = first else {
            out.push_str(rest);
            break 'outer;
        };
        out.push_str(&rest[..i + klen]);
        out.push_str("REDACTED");
        let after = &rest[i + klen..];
        let end = after
            .find(|c: char| c == '&' || c == ';' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_and_keys_are_redacted_wherever_they_appear() {
        let t = "PUT http://h/a/c/b.vhd?sv=2022-11-02&sr=b&SIG=abc%2Bdef&se=x failed";
        assert_eq!(
            redact(t),
            "PUT http://h/a/c/b.vhd?sv=2022-11-02&sr=b&SIG=REDACTED&se=x failed"
        );
        let c = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9v+/==;EndpointSuffix=x";
        assert_eq!(
            redact(c),
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=REDACTED;EndpointSuffix=x"
        );
        assert_eq!(
            redact("sig=a sig=b\"sig=c"),
            "sig=REDACTED sig=REDACTED\"sig=REDACTED"
        );
        assert_eq!(redact("nothing here"), "nothing here");
        assert_eq!(
            format!("{:?} {}", Secret::new("k"), Secret::new("k")),
            "<secret> <secret>"
        );
    }
}
