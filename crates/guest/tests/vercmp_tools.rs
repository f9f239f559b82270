//! Version comparison against the families' own tools, over a generated table of pairs:
//! `dpkg --compare-versions` (one `sh` process looping over the pairs) and rpm's
//! `rpm.vercmp` in rpm's Lua (one `rpm --eval` for the whole table).
//!
//! The pairs are made by a seeded generator: random versions and, for most pairs, a small
//! edit of the first (a digit changed, a `~`/`^`/`.`/letter inserted, leading zeros, an epoch
//! or release added), so that most comparisons go deep into both strings.

use std::cmp::Ordering;
use std::io::Write;
use std::process::{Command, Stdio};
use vhdprep_guest::packages::version::{dpkg_cmp, rpm_cmp};

/// Pairs per family.
const PAIRS: usize = 600;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick(&mut self, s: &[u8]) -> u8 {
        s[self.below(s.len())]
    }
}

/// A run of `1..=max` characters of `alphabet`, sometimes a number with leading zeros or
/// longer than 64 bits.
fn segment(r: &mut Rng, alphabet: &[u8], max: usize) -> String {
    match r.below(10) {
        0 => "0".repeat(1 + r.below(3)) + &(r.below(30)).to_string(),
        1 => "184467440737095516160".into(),
        _ => (0..1 + r.below(max))
            .map(|_| r.pick(alphabet) as char)
            .collect(),
    }
}

fn digits(r: &mut Rng) -> String {
    (1 + r.below(40)).to_string()
}

/// A syntactically valid dpkg version: `[epoch:]upstream[-revision]`, upstream starting with
/// a digit.
fn dpkg_version(r: &mut Rng) -> String {
    const UP: &[u8] = b"0123456789012345678901234567890123456789abcxyzABZ.+~.~";
    let mut v = String::new();
    if r.below(4) == 0 {
        v += &format!("{}:", r.below(3));
    }
    v += &digits(r);
    for _ in 0..r.below(4) {
        v += &segment(r, UP, 4);
    }
    if r.below(3) > 0 {
        v.push('-');
        v += &segment(r, b"0123456789abcdu+.~", 5);
        if r.below(3) == 0 {
            v += &format!("+deb{}u{}", r.below(13), r.below(12));
        }
    }
    v
}

/// An rpm `[epoch:]version[-release]` (no `-` inside the version).
fn rpm_version(r: &mut Rng) -> String {
    const VER: &[u8] = b"0123456789012345678901234567890123456789abcxyzABZ._+~^.~^";
    let mut v = String::new();
    if r.below(4) == 0 {
        v += &format!("{}:", r.below(3));
    }
    v += &digits(r);
    for _ in 0..r.below(4) {
        v += &segment(r, VER, 4);
    }
    if r.below(4) > 0 {
        v.push('-');
        v += &segment(r, b"0123456789.el_9~^", 5);
        if r.below(2) == 0 {
            v += &format!(".el{}_{}", 7 + r.below(3), r.below(4));
        }
    }
    v
}

/// Whether dpkg's `parseversion` accepts `v` without a warning: digits before a `:`, an
/// upstream version starting with a digit, made of alphanumerics and `.+~-` (`:` only after
/// an epoch), a non-empty revision of alphanumerics and `.+~` after the last `-`.
fn dpkg_valid(v: &str) -> bool {
    let (epoch, rest) = v.split_once(':').unwrap_or(("0", v));
    let (up, rev) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    let ok = |s: &str, extra: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c) || extra.contains(c))
    };
    !epoch.is_empty()
        && epoch.len() < 9
        && epoch.bytes().all(|b| b.is_ascii_digit())
        && up.starts_with(|c: char| c.is_ascii_digit())
        && ok(up, if v.contains(':') { "-:" } else { "-" })
        && rev.is_none_or(|r| !r.is_empty() && ok(r, ""))
}

/// A small edit of `v` using characters of `alphabet`.
fn mutate(r: &mut Rng, v: &str, alphabet: &[u8]) -> String {
    let mut b: Vec<u8> = v.bytes().collect();
    // Keep the leading digit (dpkg needs it) by editing after it.
    let at = 1 + r.below(b.len().max(1));
    let at = at.min(b.len());
    match r.below(4) {
        0 if at < b.len() => b[at] = r.pick(alphabet),
        1 => b.insert(at, r.pick(alphabet)),
        2 if at < b.len() && b[at] != b'-' && b[at] != b':' => {
            b.remove(at);
        }
        _ => b.extend(r.pick(alphabet).to_string().bytes()),
    }
    String::from_utf8(b).expect("ASCII")
}

fn table(
    seed: u64,
    make: fn(&mut Rng) -> String,
    edits: &[u8],
    valid: fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut r = Rng(seed);
    let mut out = Vec::new();
    while out.len() < PAIRS {
        let a = make(&mut r);
        let b = match r.below(4) {
            0 => make(&mut r),
            1 => a.clone(),
            _ => mutate(&mut r, &a, edits),
        };
        if valid(&a) && valid(&b) {
            out.push((a, b));
        }
    }
    out
}

fn sign(o: Ordering) -> i32 {
    o as i32
}

fn run(cmd: &mut Command, package: &str, input: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (install the Debian package {package})"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write pairs");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    assert!(
        out.stderr.is_empty(),
        "{cmd:?} complained (a generated version is not valid for it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn check(family: &str, pairs: &[(String, String)], tool: &str, ours: fn(&str, &str) -> Ordering) {
    let theirs: Vec<i32> = tool
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse().expect("-1, 0 or 1"))
        .collect();
    assert_eq!(theirs.len(), pairs.len(), "{family}: one answer per pair");
    let mut wrong = Vec::new();
    let mut seen = [0usize; 3];
    for ((a, b), t) in pairs.iter().zip(&theirs) {
        let t = t.signum();
        seen[(t + 1) as usize] += 1;
        if sign(ours(a, b)) != t {
            wrong.push(format!(
                "{a} vs {b}: {family} says {t}, we say {:?}",
                ours(a, b)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} disagreements:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The table exercises every outcome, not only one.
    assert!(
        seen.iter().all(|n| *n >= PAIRS / 10),
        "{family}: outcomes -1/0/1 seen {seen:?}"
    );
}

#[test]
fn dpkg_compare_versions_agrees() {
    let pairs = table(0x5eed_d9c6, dpkg_version, b"0123456789az~.+", dpkg_valid);
    let input: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    let script = r#"while read -r a b; do
  if dpkg --compare-versions "$a" lt "$b"; then echo -1
  elif dpkg --compare-versions "$a" eq "$b"; then echo 0
  else echo 1; fi
done"#;
    let out = run(Command::new("sh").args(["-c", script]), "dpkg", &input);
    check("dpkg", &pairs, &out, dpkg_cmp);
}

#[test]
fn rpm_vercmp_agrees() {
    let pairs = table(0x0072_706d, rpm_version, b"0123456789az~^._", |_| true);
    let list: String = pairs
        .iter()
        .map(|(a, b)| format!("{{\"{a}\",\"{b}\"}},"))
        .collect();
    let lua = format!(
        "%{{lua: for _, p in ipairs({{{list}}}) do print(rpm.vercmp(p[1], p[2]) .. \"\\n\") end}}"
    );
    let out = run(Command::new("rpm").args(["--eval", &lua]), "rpm", "");
    check("rpm", &pairs, &out, rpm_cmp);
}
