//! Version comparison as each package family defines it.
//!
//! - [`dpkg_cmp`]: dpkg's `verrevcmp` over `[epoch:]upstream[-revision]` (lib/dpkg/version.c):
//!   epochs as integers, then upstream and revision alternating non-digit runs (letters sort
//!   before other characters, `~` before everything, even the end) and digit runs (as numbers).
//! - [`rpm_cmp`]: rpm's `rpm.vercmp` over `[epoch:]version[-release]` (rpmio/rpmver.c and
//!   rpmvercmp.c): epoch, version and release each by [`rpmvercmp`], where alphanumeric
//!   segments are compared (numbers numerically, numbers newer than letters), `~` sorts before
//!   everything and `^` after the end but before anything else.
//!
//! Both run in time linear in the inputs, allocate nothing and accept any text (a version
//! dpkg would refuse still gets a total order, the one the algorithm gives it).

use serde::Serialize;
use std::cmp::Ordering;

/// Which family's comparison applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Debian's (dpkg, apt).
    Dpkg,
    /// rpm's (Red Hat, SUSE, Azure Linux).
    Rpm,
}

impl Scheme {
    /// Compares two versions written the family's way.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Scheme::Dpkg => dpkg_cmp(a, b),
            Scheme::Rpm => rpm_cmp(a, b),
        }
    }
}

/// A dpkg version split into its parts (`1:9.2p1-2+deb12u7` → 1, `9.2p1`, `2+deb12u7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpkgVersion<'a> {
    /// The epoch (0 when absent; saturates rather than overflowing).
    pub epoch: u64,
    /// The upstream version.
    pub upstream: &'a str,
    /// The Debian revision (empty when absent).
    pub revision: &'a str,
}

impl<'a> DpkgVersion<'a> {
    /// Splits `v` as dpkg's `parseversion` does (surrounding blanks ignored; the epoch runs to
    /// the first `:`, the revision from the last `-`).
    pub fn parse(v: &'a str) -> DpkgVersion<'a> {
        let v = v.trim();
        let (epoch, rest) = match v.split_once(':') {
            Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (
                e.bytes().fold(0u64, |n, d| {
                    n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                }),
                rest,
            ),
            _ => (0, v),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        DpkgVersion {
            epoch,
            upstream,
            revision,
        }
    }
}

/// dpkg's character weight in a non-digit run: end and digits 0, `~` lowest, letters by
/// code, everything else after the letters.
fn dpkg_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: one upstream version or revision against another.
pub fn dpkg_verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (dpkg_order(a.get(i).copied()), dpkg_order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// dpkg's comparison of two whole versions (`dpkg --compare-versions`).
pub fn dpkg_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (DpkgVersion::parse(a), DpkgVersion::parse(b));
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| dpkg_verrevcmp(a.upstream, b.upstream))
        .then_with(|| dpkg_verrevcmp(a.revision, b.revision))
}

/// rpm's `rpmvercmp`: one version (or release, or epoch) string against another.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca.is_none() && cb.is_none() {
            return Ordering::Equal;
        }
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else {
            // One ran out: whichever has characters left wins.
            return if i >= a.len() {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        };
        let isnum = ca.is_ascii_digit();
        let class = |c: &u8| {
            if isnum {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let ea = i + a[i..].iter().take_while(|c| class(c)).count();
        let eb = j + b[j..].iter().take_while(|c| class(c)).count();
        if eb == j {
            // Segments of different types: numbers are newer than letters.
            return if isnum {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (mut sa, mut sb) = (&a[i..ea], &b[j..eb]);
        if isnum {
            while sa.first() == Some(&b'0') {
                sa = &sa[1..];
            }
            while sb.first() == Some(&b'0') {
                sb = &sb[1..];
            }
            match sa.len().cmp(&sb.len()) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match sa.cmp(sb) {
            Ordering::Equal => {}
            o => return o,
        }
        i = ea;
        j = eb;
    }
}

/// An rpm `[epoch:]version[-release]` split as rpm's `parseEVR` does (the epoch is the leading
/// digits before a `:`, the release follows the last `-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evr<'a> {
    /// The epoch's digits (`None` when absent; compared as `0`).
    pub epoch: Option<&'a str>,
    /// The version.
    pub version: &'a str,
    /// The release (`None` when absent; compared as empty).
    pub release: Option<&'a str>,
}

impl<'a> Evr<'a> {
    /// Splits `evr`.
    pub fn parse(evr: &'a str) -> Evr<'a> {
        let digits = evr.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = if evr.as_bytes().get(digits) == Some(&b':') {
            let e = &evr[..digits];
            (Some(if e.is_empty() { "0" } else { e }), &evr[digits + 1..])
        } else {
            (None, evr)
        };
        match rest.rsplit_once('-') {
            Some((v, r)) => Evr {
                epoch,
                version: v,
                release: Some(r),
            },
            None => Evr {
                epoch,
                version: rest,
                release: None,
            },
        }
    }
}

/// rpm's comparison of two `[epoch:]version[-release]` texts (`rpm.vercmp` in rpm's Lua,
/// `rpmdev-vercmp`).
pub fn rpm_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (Evr::parse(a), Evr::parse(b));
    rpmvercmp(a.epoch.unwrap_or("0"), b.epoch.unwrap_or("0"))
        .then_with(|| rpmvercmp(a.version, b.version))
        .then_with(|| rpmvercmp(a.release.unwrap_or(""), b.release.unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn dpkg_examples_from_debian_policy() {
        let order = [
            "~~", "~~a", "~", "0~rc1", "0", "0.1", "1.0~rc1", "1.0", "1.0a", "1.0+b1", "1.0.1",
            "1:0.1",
        ];
        for w in order.windows(2) {
            assert_eq!(dpkg_cmp(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
            assert_eq!(dpkg_cmp(w[1], w[0]), Greater, "{} > {}", w[1], w[0]);
        }
        assert_eq!(dpkg_cmp("1.01", "1.1"), Equal);
        assert_eq!(dpkg_cmp("0:1.0-1", "1.0-1"), Equal);
        assert_eq!(dpkg_cmp("1.0-1", "1.0-1~bpo1"), Greater);
        assert_eq!(dpkg_cmp("1:9.2p1-2+deb12u7", "1:9.2p1-2+deb12u10"), Less);
        assert_eq!(
            DpkgVersion::parse("1:2.3-4-5"),
            DpkgVersion {
                epoch: 1,
                upstream: "2.3-4",
                revision: "5"
            }
        );
    }

    #[test]
    fn rpm_examples_from_rpms_test_suite() {
        // rpm's tests/rpmvercmp.at.
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0.1", "2.0.1a", Less),
            ("5.5p1", "5.5p10", Less),
            ("10xyz", "10.1xyz", Less),
            ("xyz10", "xyz10.1", Less),
            ("1.0aa", "1.0a", Greater),
            ("10.0001", "10.1", Equal),
            ("10.0001", "10.0039", Less),
            ("4.999.9", "5.0", Less),
            ("20101121", "20101122", Less),
            ("2_0", "2_0", Equal),
            ("2.0", "2_0", Equal),
            ("a", "1", Less),
            ("a+", "a_", Equal),
            ("+", "_", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc1~git123", Greater),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0^git2", Less),
            ("1.0^git1", "1.01", Less),
            ("1.0^20160101", "1.0.1", Less),
            ("1.0~rc1^git1", "1.0~rc1", Greater),
            ("1.0^git1~pre", "1.0^git1", Less),
        ] {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
            assert_eq!(rpmvercmp(b, a), want.reverse(), "{b} vs {a}");
        }
        assert_eq!(rpm_cmp("1:1.0-1", "2.0-1"), Greater);
        assert_eq!(rpm_cmp("0:1.0", "1.0"), Equal);
        assert_eq!(rpm_cmp("1.0-1", "1.0"), Greater);
        assert_eq!(rpm_cmp("2.34-60.el9", "2.34-100.el9"), Less);
        assert_eq!(Scheme::Rpm.compare("1.0^", "1.0"), Greater);
        assert_eq!(Scheme::Dpkg.compare("1.0^", "1.0"), Greater);
    }

    #[test]
    fn absurd_input_is_ordered_without_overflow() {
        let long = "9".repeat(10_000);
        assert_eq!(dpkg_cmp(&format!("{long}:1"), "1:1"), Greater);
        assert_eq!(rpm_cmp(&long, &format!("{long}0")), Less);
        assert_eq!(dpkg_cmp(":::", "-"), dpkg_cmp(":::", "-"));
        assert_eq!(rpm_cmp("", ""), Equal);
        assert_eq!(rpm_cmp("\u{e9}", "e"), rpm_cmp("\u{e9}", "e"));
    }
}
