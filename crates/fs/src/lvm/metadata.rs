//! The LVM2 metadata text format (the "config tree"): nested sections `name { ... }`,
//! assignments `key = value` with strings, integers and lists `[ "a", 1 ]`, and `#` comments.
//!
//! Bounded: input size, nesting depth, list length and number of values are capped, integers
//! must fit an `i64`; anything else is a [`FsError::Corrupt`].

use super::corrupt;
use crate::api::FsResult;

/// Largest metadata text accepted.
pub const MAX_TEXT: usize = 16 << 20;
/// Deepest section/list nesting accepted (real metadata nests 5 levels).
pub const MAX_DEPTH: usize = 16;
/// Most values in the whole tree.
const MAX_NODES: usize = 1 << 20;

/// A value of the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A string (escapes resolved) or a bare word / float kept as written.
    Str(String),
    /// A list.
    List(Vec<Value>),
    /// A nested section.
    Section(Section),
}

/// A section: its entries in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Section {
    /// `(name, value)` pairs, in text order.
    pub entries: Vec<(String, Value)>,
}

impl Section {
    /// The first value named `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
    /// The sub-section `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        match self.get(name) {
            Some(Value::Section(s)) => Some(s),
            _ => None,
        }
    }
    /// The integer `name`.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }
    /// The string `name`.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
    /// The list `name`.
    pub fn list(&self, name: &str) -> Option<&[Value]> {
        match self.get(name) {
            Some(Value::List(l)) => Some(l),
            _ => None,
        }
    }
    /// All sub-sections, with their names.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.entries.iter().filter_map(|(n, v)| match v {
            Value::Section(s) => Some((n.as_str(), s)),
            _ => None,
        })
    }
}

/// Parses a whole metadata text into its top-level section.
pub fn parse(text: &[u8]) -> FsResult<Section> {
    if text.len() > MAX_TEXT {
        return Err(corrupt(format!(
            "metadata text of {} bytes is too large",
            text.len()
        )));
    }
    let mut p = Parser {
        s: text,
        pos: 0,
        nodes: 0,
    };
    let top = p.section_body(0, true)?;
    Ok(top)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    nodes: usize,
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'+' | b'-')
}

impl Parser<'_> {
    fn err(&self, what: &str) -> crate::api::FsError {
        let line = self.s[..self.pos.min(self.s.len())]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            + 1;
        corrupt(format!("metadata text line {line}: {what}"))
    }

    fn skip_ws(&mut self) {
        while let Some(&c) = self.s.get(self.pos) {
            if c == b'#' {
                while self.s.get(self.pos).is_some_and(|&c| c != b'\n') {
                    self.pos += 1;
                }
            } else if c.is_ascii_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn word(&mut self) -> FsResult<String> {
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(|&c| is_word(c)) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("expected a name"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn count(&mut self) -> FsResult<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.err("too many values"));
        }
        Ok(())
    }

    /// Entries until `}` (or the end of the text at the top level).
    fn section_body(&mut self, depth: usize, top: bool) -> FsResult<Section> {
        if depth > MAX_DEPTH {
            return Err(self.err("sections nested too deeply"));
        }
        let mut sec = Section::default();
        loop {
            match self.peek() {
                None if top => return Ok(sec),
                None => return Err(self.err("missing '}'")),
                Some(b'}') if !top => {
                    self.pos += 1;
                    return Ok(sec);
                }
                Some(_) => {}
            }
            let name = self.word()?;
            self.count()?;
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    let sub = self.section_body(depth + 1, false)?;
                    sec.entries.push((name, Value::Section(sub)));
                }
                Some(b'=') => {
                    self.pos += 1;
                    let v = self.value(depth + 1)?;
                    sec.entries.push((name, v));
                }
                _ => return Err(self.err("expected '{' or '='")),
            }
        }
    }

    fn value(&mut self, depth: usize) -> FsResult<Value> {
        if depth > MAX_DEPTH {
            return Err(self.err("values nested too deeply"));
        }
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::List(items));
                        }
                        Some(b',') if !items.is_empty() => {
                            self.pos += 1;
                        }
                        None => return Err(self.err("missing ']'")),
                        _ => {
                            self.count()?;
                            items.push(self.value(depth + 1)?);
                        }
                    }
                }
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let w = self.word()?;
                if w.bytes().skip(1).all(|c| c.is_ascii_digit()) && w != "-" {
                    w.parse::<i64>()
                        .map(Value::Int)
                        .map_err(|_| self.err(&format!("integer {w} out of range")))
                } else {
                    Ok(Value::Str(w))
                }
            }
            Some(c) if is_word(c) => self.word().map(Value::Str),
            _ => Err(self.err("expected a value")),
        }
    }

    fn string(&mut self) -> FsResult<String> {
        self.pos += 1; // opening quote
        let mut out = Vec::new();
        loop {
            match self.s.get(self.pos) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    let c = *self
                        .s
                        .get(self.pos + 1)
                        .ok_or_else(|| self.err("unterminated string"))?;
                    out.push(c);
                    self.pos += 2;
                }
                Some(&c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_sections_lists_and_comments() {
        let t = br#"# comment
vg0 {
  id = "abc"   # trailing
  seqno = 12
  status = ["READ", "WRITE"]
  lv { stripes = [ "pv0", 0 ] neg = -3 }
}
contents = "Text \"q\""
"#;
        let top = parse(t).unwrap();
        let vg = top.section("vg0").unwrap();
        assert_eq!(vg.str("id"), Some("abc"));
        assert_eq!(vg.int("seqno"), Some(12));
        assert_eq!(vg.list("status").unwrap().len(), 2);
        let lv = vg.section("lv").unwrap();
        assert_eq!(lv.list("stripes").unwrap()[1], Value::Int(0));
        assert_eq!(lv.int("neg"), Some(-3));
        assert_eq!(top.str("contents"), Some("Text \"q\""));
    }

    #[test]
    fn rejects_hostile_text() {
        let deep = "a {".repeat(1000);
        assert!(parse(deep.as_bytes()).is_err());
        let deep_list = format!("a = {}", "[".repeat(100_000));
        assert!(parse(deep_list.as_bytes()).is_err());
        assert!(parse(b"a = 99999999999999999999999").is_err());
        assert!(parse(b"a = \"unterminated").is_err());
        assert!(parse(b"a { b = 1").is_err());
        assert!(parse(b"= 1").is_err());
    }
}
