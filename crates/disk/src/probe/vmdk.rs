//! VMware VMDK: a hosted sparse extent (`KDMV`), an ESX sparse extent (`COWD`), or a text
//! descriptor: comment and blank lines, then `version=1`, `2` or `3` (qemu `block/vmdk.c`
//! `vmdk_probe`, over the same 2048-byte window); also any file starting with the
//! `# Disk DescriptorFile` line VMware and qemu write, whatever follows it.

use super::{Found, Sample, QEMU_PROBE_LEN};
use crate::format::Format;
use std::io;

/// The first line of the descriptors VMware and qemu write.
const DESCRIPTOR_LINE: &[u8] = b"# Disk DescriptorFile";

/// `KDMV` (VMDK4_MAGIC) or `COWD` (VMDK3_MAGIC) at offset 0, or a descriptor.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    for magic in [b"KDMV", b"COWD"] {
        if s.has(0, magic) {
            let what = format!("'{}' at offset 0", String::from_utf8_lossy(magic));
            return Ok(Some(Found::new(Format::Vmdk, what, 0, 4)));
        }
    }
    if s.has(0, DESCRIPTOR_LINE) {
        return Ok(Some(Found::new(
            Format::Vmdk,
            "'# Disk DescriptorFile' at offset 0",
            0,
            DESCRIPTOR_LINE.len() as u64,
        )));
    }
    let window = &s.head[..s.head.len().min(QEMU_PROBE_LEN)];
    Ok(descriptor_version_at(window).map(|at| {
        Found::new(
            Format::Vmdk,
            format!("descriptor line 'version=' at offset {at}"),
            at as u64,
            9,
        )
    }))
}

/// Where a descriptor's `version=N` line starts, when `buf` is a descriptor as qemu reads one:
/// lines starting with `#` are skipped, lines of spaces (and a `\r`) are skipped, and the
/// first other line must be `version=1`, `2` or `3` ended by `\n` or `\r\n`.
fn descriptor_version_at(buf: &[u8]) -> Option<usize> {
    let mut p = 0;
    while p < buf.len() {
        match buf[p] {
            b'#' => {
                p += buf[p..].iter().position(|&c| c == b'\n')? + 1;
            }
            b' ' => {
                while p < buf.len() && buf[p] == b' ' {
                    p += 1;
                }
                if buf.get(p) == Some(&b'\r') {
                    p += 1;
                }
                if buf.get(p) != Some(&b'\n') {
                    return None;
                }
                p += 1;
            }
            _ => {
                let line = &buf[p..];
                let ok = [&b"1"[..], b"2", b"3"].iter().any(|v| {
                    let mut lf = b"version=".to_vec();
                    lf.extend_from_slice(v);
                    let mut crlf = lf.clone();
                    lf.push(b'\n');
                    crlf.extend_from_slice(b"\r\n");
                    line.starts_with(&lf) || line.starts_with(&crlf)
                });
                return ok.then_some(p);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn sparse_extent_magics() {
        assert!(run(probe, &disk_with(b"KDMV\x01\0\0\0")).is_some());
        assert!(run(probe, &disk_with(b"COWD\x01\0\0\0")).is_some());
        assert!(run(probe, &disk_with(b"VMDK")).is_none());
    }

    #[test]
    fn descriptors_as_qemu_reads_them() {
        let d = b"# Disk DescriptorFile\nversion=1\nCID=fffffffe\n";
        assert_eq!(descriptor_version_at(d), Some(22));
        assert!(run(probe, &disk_with(d)).is_some());
        assert!(run(probe, &disk_with(b"# Disk DescriptorFile")).is_some());
        assert_eq!(descriptor_version_at(b"version=3\r\nCID=1\r\n"), Some(0));
        assert_eq!(
            descriptor_version_at(b"#a\n#b\n   \n  \r\nversion=2\n"),
            Some(14)
        );
        // qemu refuses these: an empty line, other text first, an unknown version, no newline.
        for bad in [
            &b"\nversion=1\n"[..],
            b"# x\nCID=1\nversion=1\n",
            b"version=4\n",
            b"version=1",
            b"# only a comment\n",
            b"  x\nversion=1\n",
        ] {
            assert_eq!(
                descriptor_version_at(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_descriptor_past_the_window_is_not_seen() {
        let mut d = "#\n".repeat(QEMU_PROBE_LEN / 2).into_bytes();
        d.extend_from_slice(b"version=1\n");
        assert!(run(probe, &disk_with(&d)).is_none());
    }
}
