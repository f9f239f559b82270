//! The VHDX log: a circular buffer of entries through which writers update metadata (BAT
//! entries, metadata items) crash-safely. After a crash the log may hold entries that never
//! reached their place in the file; [MS-VHDX] 2.3.3 says a reader must replay them first.
//!
//! vhdprep never writes the file: [`replay`] finds the active sequence (the valid run of
//! entries with the highest sequence number whose head's tail points into the run), checks
//! every entry's CRC-32C, descriptors and data-sector sequence numbers, and applies the
//! entries, tail to head, to an in-memory [`Overlay`] that every later read goes through.

use super::error::VhdxError;
use super::header::HeaderCopy;
use super::overlay::Overlay;
use super::{crc_with_zeroed, le, MIB};
use crate::read_at::ReadAt;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Largest log replayed, in bytes. The whole log and the data it replays are held in memory
/// (at most twice this). Hyper-V and qemu-img make 1 MiB logs (qemu's `log_size` default);
/// 64 MiB leaves room for any writer we know of while keeping a hostile file's cost bounded.
/// A larger *empty* log is fine: it is never read.
pub const MAX_LOG_LEN: u64 = 64 << 20;
/// Log sector size: entries, descriptors and data sectors are 4 KiB units.
const SECTOR: usize = 4096;
/// Bytes checksummed while searching the log, in multiples of its length: stale and forged
/// entry headers could otherwise make the search quadratic. Real logs checksum each byte
/// about once.
const CHECKSUM_BUDGET: u64 = 16;
/// Most descriptors (across every valid entry found) a replay holds. Each costs about 100
/// bytes in memory (the parsed descriptor and its overlay range), and a zero descriptor costs
/// the writer only 32 bytes of log, so without this cap a hostile 64 MiB log of zero
/// descriptors would take ~200 MB. A full 1 MiB log (Hyper-V's and qemu's size) holds at most
/// 32,640 descriptors, so logs up to 4 MiB are never refused for this.
pub const MAX_DESCRIPTORS: usize = 1 << 17;

/// The log and what replaying it changed.
#[derive(Debug, Clone, Default)]
pub struct LogReplay {
    /// Log offset in the file.
    pub offset: u64,
    /// Log length in bytes.
    pub length: u64,
    /// The log GUID of the current header (nil: the log is empty).
    pub log_guid: Uuid,
    /// The header says the log must be replayed (non-nil log GUID).
    pub non_empty: bool,
    /// Entries replayed (0: nothing valid to replay, as for a clean log).
    pub entries_replayed: usize,
    /// Sequence numbers of the first and last entry replayed.
    pub sequence: Option<(u64, u64)>,
    /// The replayed bytes, laid over the file by every read.
    pub overlay: Arc<Overlay>,
}

/// One validated log entry.
#[derive(Debug, Clone)]
struct Entry {
    pos: usize,
    len: usize,
    tail: usize,
    seq: u64,
    flushed: u64,
    last: u64,
    ops: Vec<Op>,
}

/// One descriptor of an entry.
#[derive(Debug, Clone)]
enum Op {
    Zero { offset: u64, len: u64 },
    Data { offset: u64, sector: Arc<[u8]> },
}

fn replay_err(offset: u64, why: impl Into<String>) -> VhdxError {
    VhdxError::LogReplay {
        offset,
        why: why.into(),
    }
}

/// `len` bytes of the circular log from `pos`, wrapping at its end.
fn circular(log: &[u8], pos: usize, len: usize) -> Cow<'_, [u8]> {
    match log.get(pos..pos.saturating_add(len)) {
        Some(s) => Cow::Borrowed(s),
        None => {
            let mut v = Vec::with_capacity(len);
            let mut at = pos;
            while v.len() < len && !log.is_empty() {
                at %= log.len();
                let take = (len - v.len()).min(log.len() - at);
                v.extend_from_slice(&log[at..at + take]);
                at += take;
            }
            Cow::Owned(v)
        }
    }
}

/// What the search of the log may still spend.
struct Budget {
    /// Bytes it may still checksum.
    checksum: u64,
    /// Descriptors it may still hold ([`MAX_DESCRIPTORS`]); `None` once a valid entry found
    /// no room.
    descriptors: Option<usize>,
}

/// Parses and validates the entry at `pos` (`None`: not a valid entry, or the budget is
/// spent).
fn parse_entry(log: &[u8], pos: usize, guid: Uuid, budget: &mut Budget) -> Option<Entry> {
    let h = log.get(pos..pos + 64)?;
    if &h[..4] != b"loge" {
        return None;
    }
    let len = le::u32(h, 8) as usize;
    let tail = le::u32(h, 12) as usize;
    let seq = le::u64(h, 16);
    let count = le::u32(h, 24) as usize;
    if le::guid(h, 32) != guid
        || seq == 0
        || len == 0
        || len % SECTOR != 0
        || len > log.len()
        || tail % SECTOR != 0
        || tail >= log.len()
    {
        return None;
    }
    let desc_bytes = count.checked_mul(32)?.checked_add(64)?.div_ceil(SECTOR) * SECTOR;
    if desc_bytes > len {
        return None;
    }
    budget.checksum = budget.checksum.saturating_sub(len as u64);
    if budget.checksum == 0 {
        return None;
    }
    let e = circular(log, pos, len);
    if le::u32(&e, 4) != crc_with_zeroed(&e, 4) {
        return None;
    }
    let left = budget.descriptors?;
    if count > left {
        budget.descriptors = None;
        return None;
    }
    budget.descriptors = Some(left - count);
    let mut ops = Vec::with_capacity(count.min(len / 32));
    let mut data_at = desc_bytes;
    for k in 0..count {
        let d = e.get(64 + 32 * k..96 + 32 * k)?;
        if le::u64(d, 24) != seq {
            return None;
        }
        let offset = le::u64(d, 16);
        if offset % SECTOR as u64 != 0 {
            return None;
        }
        match &d[..4] {
            b"zero" => {
                let zlen = le::u64(d, 8);
                if zlen % SECTOR as u64 != 0 {
                    return None;
                }
                ops.push(Op::Zero { offset, len: zlen });
            }
            b"desc" => {
                let s = e.get(data_at..data_at + SECTOR)?;
                data_at += SECTOR;
                let sseq = (u64::from(le::u32(s, 4)) << 32) | u64::from(le::u32(s, 4092));
                if &s[..4] != b"data" || sseq != seq {
                    return None;
                }
                let mut sector = vec![0u8; SECTOR];
                sector[..8].copy_from_slice(&d[8..16]);
                sector[8..4092].copy_from_slice(&s[8..4092]);
                sector[4092..].copy_from_slice(&d[4..8]);
                ops.push(Op::Data {
                    offset,
                    sector: Arc::from(sector),
                });
            }
            _ => return None,
        }
    }
    Some(Entry {
        pos,
        len,
        tail,
        seq,
        flushed: le::u64(h, 48),
        last: le::u64(h, 56),
        ops,
    })
}

/// Finds the active sequence: entries from the head's tail to the head, in order.
fn active_sequence(entries: &[Entry], log_len: usize) -> Option<Vec<usize>> {
    // The entry that ends where another begins, with the sequence number just before it.
    let mut by_end: HashMap<(usize, u64), usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        by_end.insert(((e.pos + e.len) % log_len, e.seq), i);
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[b].seq.cmp(&entries[a].seq));
    let mut visited = vec![false; entries.len()];
    for head in order {
        if visited[head] {
            continue;
        }
        let tail = entries[head].tail;
        let mut chain = vec![head];
        let mut cur = head;
        loop {
            visited[cur] = true;
            if entries[cur].pos == tail {
                chain.reverse();
                return Some(chain);
            }
            let want = (entries[cur].pos, entries[cur].seq.wrapping_sub(1));
            match by_end.get(&want) {
                Some(&p) if !visited[p] => {
                    chain.push(p);
                    cur = p;
                }
                _ => break,
            }
        }
    }
    None
}

/// Replays the log of the current header `head` into an overlay (see the module comment).
pub fn replay(file: &dyn ReadAt, head: &HeaderCopy) -> Result<LogReplay, VhdxError> {
    let offset = head.log_offset;
    let length = u64::from(head.log_length);
    let mut out = LogReplay {
        offset,
        length,
        log_guid: head.log_guid,
        non_empty: head.log_non_empty(),
        ..LogReplay::default()
    };
    if !out.non_empty {
        return Ok(out);
    }
    if head.log_version != 0 {
        return Err(replay_err(
            head.offset,
            format!("log version {} is not 0", head.log_version),
        ));
    }
    if offset < MIB || offset % MIB != 0 || length == 0 || length % MIB != 0 {
        return Err(replay_err(
            head.offset,
            format!(
                "the header places the log ({length} bytes at offset {offset}) off the 1 MiB grid"
            ),
        ));
    }
    if length > MAX_LOG_LEN {
        return Err(VhdxError::LogTooLarge {
            offset,
            len: length,
            cap: MAX_LOG_LEN,
        });
    }
    let file_len = file.len();
    if offset.checked_add(length).is_none_or(|end| end > file_len) {
        return Err(VhdxError::BadPlace {
            what: "log",
            offset,
            len: length,
            why: format!("lies outside the {file_len}-byte file"),
        });
    }
    let mut log = vec![0u8; length as usize];
    file.read_exact_at(&mut log, offset)
        .map_err(VhdxError::io("log", offset))?;
    let mut budget = Budget {
        checksum: CHECKSUM_BUDGET * length,
        descriptors: Some(MAX_DESCRIPTORS),
    };
    let entries: Vec<Entry> = (0..log.len() / SECTOR)
        .filter_map(|s| parse_entry(&log, s * SECTOR, head.log_guid, &mut budget))
        .collect();
    if budget.checksum == 0 {
        return Err(replay_err(
            offset,
            "the log holds too many overlapping entry headers to search",
        ));
    }
    if budget.descriptors.is_none() {
        return Err(replay_err(
            offset,
            format!("the log holds more than {MAX_DESCRIPTORS} descriptors"),
        ));
    }
    let Some(seq) = active_sequence(&entries, log.len()) else {
        // No valid sequence: nothing was left unfinished (qemu treats the log the same way).
        return Ok(out);
    };
    let mut overlay = Overlay::new();
    let last = &entries[seq[seq.len() - 1]];
    let at = |e: &Entry| offset + e.pos as u64;
    if last.flushed > file_len {
        return Err(replay_err(
            at(last),
            format!(
                "the log says the file was flushed at {} bytes but it has only {file_len} (truncated?)",
                last.flushed
            ),
        ));
    }
    for &i in &seq {
        let e = &entries[i];
        for op in &e.ops {
            let (o, l) = match op {
                Op::Zero { offset, len } => (*offset, *len),
                Op::Data { offset, .. } => (*offset, SECTOR as u64),
            };
            if o < MIB {
                return Err(replay_err(
                    at(e),
                    format!(
                        "entry {} writes {l} bytes at offset {o}, inside the header section",
                        e.seq
                    ),
                ));
            }
            match op {
                Op::Zero { offset, len } => overlay.zero(*offset..offset.saturating_add(*len)),
                Op::Data { offset, sector } => overlay.write(*offset, sector.clone()),
            }
        }
    }
    overlay.extend_to(last.last);
    out.entries_replayed = seq.len();
    out.sequence = Some((entries[seq[0]].seq, last.seq));
    out.overlay = Arc::new(overlay);
    Ok(out)
}

/// Builds log entries in memory, as a writer would (for tests of this module and of the
/// reader).
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    /// One entry at log position `pos` (bytes), writing the given 4 KiB sectors and zero
    /// ranges.
    pub(crate) fn entry(
        guid: Uuid,
        seq: u64,
        tail: u32,
        last_file_offset: u64,
        data: &[(u64, Vec<u8>)],
        zeros: &[(u64, u64)],
    ) -> Vec<u8> {
        let count = data.len() + zeros.len();
        let desc_bytes = (64 + 32 * count).div_ceil(SECTOR) * SECTOR;
        let len = desc_bytes + SECTOR * data.len();
        let mut e = vec![0u8; len];
        e[..4].copy_from_slice(b"loge");
        e[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        e[12..16].copy_from_slice(&tail.to_le_bytes());
        e[16..24].copy_from_slice(&seq.to_le_bytes());
        e[24..28].copy_from_slice(&(count as u32).to_le_bytes());
        e[32..48].copy_from_slice(&guid.to_bytes_le());
        e[48..56].copy_from_slice(&last_file_offset.to_le_bytes());
        e[56..64].copy_from_slice(&last_file_offset.to_le_bytes());
        let mut k = 0;
        for (off, l) in zeros {
            let d = 64 + 32 * k;
            e[d..d + 4].copy_from_slice(b"zero");
            e[d + 8..d + 16].copy_from_slice(&l.to_le_bytes());
            e[d + 16..d + 24].copy_from_slice(&off.to_le_bytes());
            e[d + 24..d + 32].copy_from_slice(&seq.to_le_bytes());
            k += 1;
        }
        for (j, (off, sector)) in data.iter().enumerate() {
            let d = 64 + 32 * k;
            e[d..d + 4].copy_from_slice(b"desc");
            e[d + 4..d + 8].copy_from_slice(&sector[4092..4096]);
            e[d + 8..d + 16].copy_from_slice(&sector[..8]);
            e[d + 16..d + 24].copy_from_slice(&off.to_le_bytes());
            e[d + 24..d + 32].copy_from_slice(&seq.to_le_bytes());
            let s = desc_bytes + SECTOR * j;
            e[s..s + 4].copy_from_slice(b"data");
            e[s + 4..s + 8].copy_from_slice(&((seq >> 32) as u32).to_le_bytes());
            e[s + 8..s + 4092].copy_from_slice(&sector[8..4092]);
            e[s + 4092..s + 4096].copy_from_slice(&(seq as u32).to_le_bytes());
            k += 1;
        }
        let c = crc_with_zeroed(&e, 4);
        e[4..8].copy_from_slice(&c.to_le_bytes());
        e
    }
}

#[cfg(test)]
mod tests {
    use super::build::entry;
    use super::*;

    const GUID: Uuid = Uuid::from_u128(0x1234);

    fn sector(fill: u8) -> Vec<u8> {
        let mut s = vec![fill; SECTOR];
        s[0] = 0xA0; // leading and trailing bytes travel in the descriptor
        s[4095] = 0x0B;
        s
    }

    fn head(log_len: u32) -> HeaderCopy {
        HeaderCopy {
            offset: 65536,
            sequence: 1,
            file_write_guid: Uuid::nil(),
            data_write_guid: Uuid::nil(),
            log_guid: GUID,
            log_version: 0,
            version: 1,
            log_length: log_len,
            log_offset: MIB,
        }
    }

    /// A 4 MiB file with a 1 MiB log at 1 MiB holding `entries` at their positions.
    fn file_with(entries: &[(usize, Vec<u8>)]) -> Vec<u8> {
        let mut f = vec![0u8; 4 * MIB as usize];
        for (pos, e) in entries {
            let log = &mut f[MIB as usize..2 * MIB as usize];
            for (i, b) in e.iter().enumerate() {
                log[(pos + i) % MIB as usize] = *b;
            }
        }
        f
    }

    fn read(r: &LogReplay, file: &[u8], at: u64, n: usize) -> Vec<u8> {
        let v = super::super::overlay::Overlaid::new(file, r.overlay.clone());
        let mut b = vec![0u8; n];
        v.read_exact_at(&mut b, at).unwrap();
        b
    }

    #[test]
    fn replays_the_active_sequence_in_order() {
        let a = entry(GUID, 10, 0, 4 * MIB, &[(3 * MIB, sector(1))], &[]);
        let b_pos = a.len();
        let b = entry(
            GUID,
            11,
            0,
            4 * MIB,
            &[(3 * MIB, sector(2)), (3 * MIB + 8192, sector(3))],
            &[(3 * MIB + 4096, 4096)],
        );
        let f = file_with(&[(0, a), (b_pos, b)]);
        let r = replay(&f, &head(MIB as u32)).unwrap();
        assert_eq!(r.entries_replayed, 2);
        assert_eq!(r.sequence, Some((10, 11)));
        let got = read(&r, &f, 3 * MIB, 3 * SECTOR);
        assert_eq!(&got[..SECTOR], &sector(2)[..], "the later entry wins");
        assert!(got[SECTOR..2 * SECTOR].iter().all(|&x| x == 0));
        assert_eq!(&got[2 * SECTOR..], &sector(3)[..]);
    }

    #[test]
    fn a_sequence_wrapping_the_end_of_the_log_replays() {
        let e = entry(
            GUID,
            5,
            (MIB as u32) - 4096,
            4 * MIB,
            &[(3 * MIB, sector(7))],
            &[],
        );
        assert_eq!(e.len(), 8192);
        let pos = MIB as usize - 4096;
        let f = file_with(&[(pos, e)]);
        let r = replay(&f, &head(MIB as u32)).unwrap();
        assert_eq!(r.entries_replayed, 1);
        assert_eq!(read(&r, &f, 3 * MIB, SECTOR), sector(7));
    }

    #[test]
    fn a_torn_entry_is_not_replayed_and_an_older_head_wins() {
        let a = entry(GUID, 10, 0, 4 * MIB, &[(3 * MIB, sector(1))], &[]);
        let b_pos = a.len();
        let mut b = entry(GUID, 11, 0, 4 * MIB, &[(3 * MIB, sector(2))], &[]);
        b[5000] ^= 0xFF; // torn: its checksum fails
        let f = file_with(&[(0, a), (b_pos, b)]);
        let r = replay(&f, &head(MIB as u32)).unwrap();
        assert_eq!(r.sequence, Some((10, 10)));
        assert_eq!(read(&r, &f, 3 * MIB, SECTOR), sector(1));
    }

    #[test]
    fn entries_of_another_log_guid_or_a_tail_outside_the_run_are_ignored() {
        let other = entry(
            Uuid::from_u128(9),
            10,
            0,
            4 * MIB,
            &[(3 * MIB, sector(1))],
            &[],
        );
        let f = file_with(&[(0, other)]);
        let r = replay(&f, &head(MIB as u32)).unwrap();
        assert!(r.non_empty);
        assert_eq!(r.entries_replayed, 0);
        assert!(r.overlay.is_empty());
        let dangling = entry(GUID, 10, 8192, 4 * MIB, &[(3 * MIB, sector(1))], &[]);
        let f = file_with(&[(0, dangling)]);
        assert_eq!(replay(&f, &head(MIB as u32)).unwrap().entries_replayed, 0);
    }

    #[test]
    fn the_file_grows_to_last_file_offset_and_a_short_file_is_refused() {
        let mut e = entry(GUID, 3, 0, 6 * MIB, &[(5 * MIB, sector(4))], &[]);
        e[48..56].copy_from_slice(&(4 * MIB).to_le_bytes()); // flushed: the file's length
        let c = crc_with_zeroed(&e, 4);
        e[4..8].copy_from_slice(&c.to_le_bytes());
        let f = file_with(&[(0, e)]);
        let r = replay(&f, &head(MIB as u32)).unwrap();
        assert_eq!(r.overlay.min_len(), 6 * MIB);
        assert_eq!(read(&r, &f, 5 * MIB, SECTOR), sector(4));
        assert!(read(&r, &f, 4 * MIB, SECTOR).iter().all(|&x| x == 0));
        let mut e = entry(GUID, 3, 0, 6 * MIB, &[], &[]);
        e[48..56].copy_from_slice(&(8 * MIB).to_le_bytes()); // flushed past the end
        let c = crc_with_zeroed(&e, 4);
        e[4..8].copy_from_slice(&c.to_le_bytes());
        let f = file_with(&[(0, e)]);
        let err = replay(&f, &head(MIB as u32)).unwrap_err();
        assert!(
            err.to_string().contains("flushed at 8388608 bytes"),
            "{err}"
        );
    }

    #[test]
    fn refuses_logs_it_cannot_replay() {
        let f = file_with(&[]);
        let mut h = head(MIB as u32);
        h.log_length = 128 << 20;
        assert!(matches!(replay(&f, &h), Err(VhdxError::LogTooLarge { .. })));
        let mut h = head(MIB as u32);
        h.log_offset = 3 * MIB + 1;
        assert!(replay(&f, &h)
            .unwrap_err()
            .to_string()
            .contains("1 MiB grid"));
        let mut h = head(MIB as u32);
        h.log_offset = 4 * MIB;
        assert!(replay(&f, &h).unwrap_err().to_string().contains("outside"));
        let mut h = head(MIB as u32);
        h.log_version = 1;
        assert!(replay(&f, &h)
            .unwrap_err()
            .to_string()
            .contains("log version 1"));
        let into_header = entry(GUID, 3, 0, 4 * MIB, &[(65536, sector(1))], &[]);
        let f = file_with(&[(0, into_header)]);
        let e = replay(&f, &head(MIB as u32)).unwrap_err();
        assert!(e.to_string().contains("inside the header section"), "{e}");
    }

    #[test]
    fn forged_headers_in_every_sector_stay_bounded() {
        // Every sector claims to start a whole-log entry: the search stops at its budget.
        let mut f = file_with(&[]);
        let proto = entry(GUID, 7, 0, 4 * MIB, &[], &[]);
        for s in 0..(MIB as usize / SECTOR) {
            let at = MIB as usize + s * SECTOR;
            f[at..at + 64].copy_from_slice(&proto[..64]);
            f[at + 8..at + 12].copy_from_slice(&(MIB as u32).to_le_bytes());
        }
        let e = replay(&f, &head(MIB as u32)).unwrap_err();
        assert!(e.to_string().contains("too many overlapping"), "{e}");
    }

    #[test]
    fn a_log_of_more_descriptors_than_the_cap_is_refused_and_one_under_it_replays() {
        // 4 KiB entries of 126 zero descriptors each (what fits beside the 64-byte header),
        // one after another from the start of the log, each the next in sequence.
        const PER_ENTRY: usize = (SECTOR - 64) / 32;
        let build = |log_len: usize, entries: usize| {
            let mut f = vec![0u8; MIB as usize + log_len + 2 * MIB as usize];
            for k in 0..entries {
                let zeros: Vec<(u64, u64)> = (0..PER_ENTRY)
                    .map(|j| (2 * MIB + ((k * PER_ENTRY + j) as u64) * 8192, 4096))
                    .collect();
                let e = entry(GUID, 1 + k as u64, 0, f.len() as u64, &[], &zeros);
                assert_eq!(e.len(), SECTOR);
                let at = MIB as usize + k * SECTOR;
                f[at..at + SECTOR].copy_from_slice(&e);
            }
            f
        };
        let over = MAX_DESCRIPTORS / PER_ENTRY + 1;
        let log_len = (over * SECTOR).next_multiple_of(MIB as usize);
        let f = build(log_len, over);
        let err = replay(&&f[..], &head(log_len as u32))
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 131072 descriptors"), "{err}");
        // One entry fewer fits, replays every entry, and zeros what the last one names.
        let f = build(log_len, over - 1);
        let r = replay(&&f[..], &head(log_len as u32)).unwrap();
        assert_eq!(r.entries_replayed, over - 1);
        assert_eq!(r.overlay.ranges(), (over - 1) * PER_ENTRY);
    }
}
