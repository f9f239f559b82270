//! The internal snapshot table: variable-length entries, read only to list them (vhdprep reads
//! the active state, never a snapshot).
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 8 | L1 table offset |
//! | 8 | 4 | L1 entries |
//! | 12 | 2 | id length |
//! | 14 | 2 | name length |
//! | 16 | 4 | date, seconds |
//! | 20 | 4 | date, nanoseconds |
//! | 24 | 8 | guest clock, nanoseconds |
//! | 32 | 4 | VM state size (32-bit) |
//! | 36 | 4 | extra data size |
//! | 40 | extra | extra data: 64-bit VM state size, virtual disk size |
//! | | id, name | then padding to 8 bytes |

use super::error::Qcow2Error;
use super::header::Qcow2Header;
use crate::read_at::ReadAt;

/// Most snapshots listed: `info` shows them to a person; the header's count is kept whole.
pub const MAX_SNAPSHOTS_LISTED: u32 = 256;
/// Largest extra data per entry: 1 KiB, qemu's own limit (it refuses larger entries).
pub const MAX_EXTRA_DATA: u32 = 1024;

/// One internal snapshot, as `info` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Unique id string (qemu numbers them "1", "2", ...).
    pub id: String,
    /// Name given by the user.
    pub name: String,
    /// Offset of the snapshot's L1 table.
    pub l1_table_offset: u64,
    /// Entries of the snapshot's L1 table.
    pub l1_size: u32,
    /// Seconds since the epoch when taken.
    pub date_sec: u32,
    /// Nanoseconds part of the date.
    pub date_nsec: u32,
    /// Guest clock when taken, nanoseconds.
    pub vm_clock_nsec: u64,
    /// Size of the saved VM state (0: disk-only snapshot).
    pub vm_state_size: u64,
    /// Virtual disk size at the snapshot, when recorded (version 3 always records it).
    pub disk_size: Option<u64>,
}

fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}
fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
fn be64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_be_bytes(a)
}

/// Reads the first [`MAX_SNAPSHOTS_LISTED`] entries of the snapshot table of `h`.
pub fn read_snapshots(file: &dyn ReadAt, h: &Qcow2Header) -> Result<Vec<Snapshot>, Qcow2Error> {
    let mut out = Vec::new();
    if h.nb_snapshots == 0 {
        return Ok(out);
    }
    let cs = h.cluster_size();
    if h.snapshots_offset % cs != 0 {
        return Err(Qcow2Error::Unaligned {
            what: "snapshot table",
            offset: h.snapshots_offset,
            cluster_size: cs,
        });
    }
    let mut at = h.snapshots_offset;
    for index in 0..h.nb_snapshots.min(MAX_SNAPSHOTS_LISTED) {
        let bad = |problem| Qcow2Error::BadSnapshot {
            index,
            offset: at,
            problem,
        };
        // A short file is a damaged table; other read errors keep their kind.
        let past_end = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                bad("the entry lies past the end of the file")
            } else {
                Qcow2Error::Io(e)
            }
        };
        let mut fixed = [0u8; 40];
        file.read_exact_at(&mut fixed, at).map_err(past_end)?;
        let id_len = u64::from(be16(&fixed, 12));
        let name_len = u64::from(be16(&fixed, 14));
        let extra_len = be32(&fixed, 36);
        if extra_len > MAX_EXTRA_DATA {
            return Err(bad("extra data is larger than 1024 bytes"));
        }
        // At most 40 + 1024 + 2 * 65535 bytes: bounded by the u16 lengths.
        let rest_len = u64::from(extra_len) + id_len + name_len;
        let mut rest = vec![0u8; rest_len as usize];
        // Both reads succeeded, so `at + 40 + rest_len` lies inside the file: no overflow.
        file.read_exact_at(&mut rest, at.saturating_add(40))
            .map_err(past_end)?;
        let extra = &rest[..extra_len as usize];
        let mut vm_state_size = u64::from(be32(&fixed, 32));
        let mut disk_size = None;
        if extra.len() >= 8 {
            vm_state_size = be64(extra, 0);
        }
        if extra.len() >= 16 {
            disk_size = Some(be64(extra, 8));
        }
        let id_at = extra_len as usize;
        let name_at = id_at + id_len as usize;
        out.push(Snapshot {
            id: String::from_utf8_lossy(&rest[id_at..name_at]).into_owned(),
            name: String::from_utf8_lossy(&rest[name_at..]).into_owned(),
            l1_table_offset: be64(&fixed, 0),
            l1_size: be32(&fixed, 8),
            date_sec: be32(&fixed, 16),
            date_nsec: be32(&fixed, 20),
            vm_clock_nsec: be64(&fixed, 24),
            vm_state_size,
            disk_size,
        });
        at = (at + 40 + rest_len).next_multiple_of(8);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qcow2::header::{read_header, tests::v3};

    fn entry(id: &str, name: &str, disk: u64) -> Vec<u8> {
        let mut e = vec![0u8; 40];
        e[0..8].copy_from_slice(&(1u64 << 16).to_be_bytes());
        e[8..12].copy_from_slice(&1u32.to_be_bytes());
        e[12..14].copy_from_slice(&(id.len() as u16).to_be_bytes());
        e[14..16].copy_from_slice(&(name.len() as u16).to_be_bytes());
        e[16..20].copy_from_slice(&1_700_000_000u32.to_be_bytes());
        e[36..40].copy_from_slice(&16u32.to_be_bytes());
        e.extend_from_slice(&0u64.to_be_bytes());
        e.extend_from_slice(&disk.to_be_bytes());
        e.extend_from_slice(id.as_bytes());
        e.extend_from_slice(name.as_bytes());
        e.resize(e.len().div_ceil(8) * 8, 0);
        e
    }

    fn image(count: u32, table: &[u8]) -> Vec<u8> {
        let mut b = v3(16);
        b[60..64].copy_from_slice(&count.to_be_bytes());
        b[64..72].copy_from_slice(&(1u64 << 16).to_be_bytes());
        b.extend_from_slice(table);
        b
    }

    #[test]
    fn lists_snapshots() {
        let mut t = entry("1", "before-upgrade", 1 << 20);
        t.extend(entry("2", "x", 2 << 20));
        let h = read_header(&&image(2, &t)[..]).unwrap();
        assert_eq!(h.snapshots.len(), 2);
        assert_eq!(h.snapshots[0].name, "before-upgrade");
        assert_eq!(h.snapshots[1].id, "2");
        assert_eq!(h.snapshots[1].disk_size, Some(2 << 20));
        assert_eq!(h.snapshots[0].date_sec, 1_700_000_000);
    }

    #[test]
    fn bounded_and_checked() {
        // A count of 2^32-1 with one real entry: the second is past the end of the file.
        let t = entry("1", "a", 1);
        let e = read_header(&&image(u32::MAX, &t)[..]).unwrap_err();
        assert!(matches!(e, Qcow2Error::BadSnapshot { index: 1, .. }), "{e}");
        // Extra data over the limit.
        let mut t = entry("1", "a", 1);
        t[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
        let e = read_header(&&image(1, &t)[..]).unwrap_err();
        assert!(matches!(e, Qcow2Error::BadSnapshot { index: 0, .. }), "{e}");
        // More entries than the list keeps: the list stops at the cap, the count stays.
        let mut t = Vec::new();
        for i in 0..MAX_SNAPSHOTS_LISTED + 5 {
            t.extend(entry(&i.to_string(), "s", 1));
        }
        // A table at the very end of the offset range.
        let mut b = image(1, &entry("1", "a", 1));
        b[64..72].copy_from_slice(&(u64::MAX - 65535).to_be_bytes());
        let e = read_header(&&b[..]).unwrap_err();
        assert!(matches!(e, Qcow2Error::BadSnapshot { index: 0, .. }), "{e}");
        let h = read_header(&&image(MAX_SNAPSHOTS_LISTED + 5, &t)[..]).unwrap();
        assert_eq!(h.snapshots.len(), MAX_SNAPSHOTS_LISTED as usize);
        assert_eq!(h.nb_snapshots, MAX_SNAPSHOTS_LISTED + 5);
    }
}
