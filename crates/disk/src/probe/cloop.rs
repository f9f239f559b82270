//! cloop: a `#!/bin/sh` preamble of the 128-byte header that runs `modprobe cloop` (qemu
//! `block/cloop.c` `cloop_probe` matches the whole V2.0 preamble; any version's is taken here).

use super::{Found, Sample};
use crate::format::Format;
use std::io;

/// The header's shell preamble occupies its first 128 bytes.
const PREAMBLE: usize = 128;

/// `#!/bin/sh\n` at offset 0 and `modprobe cloop` within the preamble.
pub fn probe(s: &Sample) -> io::Result<Option<Found>> {
    let pre = &s.head[..s.head.len().min(PREAMBLE)];
    let needle = b"modprobe cloop";
    if !pre.starts_with(b"#!/bin/sh\n") || !pre.windows(needle.len()).any(|w| w == needle) {
        return Ok(None);
    }
    let version = pre
        .get(10..22)
        .filter(|v| v.starts_with(b"#V"))
        .map(|v| String::from_utf8_lossy(&v[1..]).trim_end().to_string())
        .unwrap_or_default();
    let what = format!("cloop shell preamble {version} at offset 0");
    Ok(Some(Found::new(Format::Cloop, what, 0, PREAMBLE as u64)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    const V2: &[u8] =
        b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

    #[test]
    fn preamble_of_any_version() {
        assert!(run(probe, &disk_with(V2))
            .unwrap()
            .evidence
            .what
            .contains("V2.0"));
        let v4 = b"#!/bin/sh\n#V4.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";
        assert!(run(probe, &disk_with(v4)).is_some());
        // A shell script that does not load cloop is not one.
        assert!(run(probe, &disk_with(b"#!/bin/sh\necho hello\n")).is_none());
        assert!(run(probe, &disk_with(&V2[1..])).is_none());
    }
}
