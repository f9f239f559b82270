//! LVM2 as a volume layer: find physical volumes ([`read_pv`]), read their newest metadata,
//! and expose each linear or striped logical volume as a [`Volume`] ([`assemble`]).
//!
//! - [`label`]: the `LABELONE` label, the `LVM2 001` PV header, metadata area headers and the
//!   circular metadata text buffer;
//! - [`metadata`]: the metadata text format parser.
//!
//! Only `striped` segments (which is how LVM records linear volumes: one stripe) are mapped.
//! Logical volumes with other segment types (thin, raid, mirror, snapshot, cache, ...), or
//! that need a physical volume that was not given, are reported in
//! [`VolumeGroup::unavailable`] with the reason, never guessed.

pub mod label;
pub mod metadata;

use crate::api::{FsError, FsResult, Volume};
use label::{DiskLocn, PvHeader};
use metadata::{Section, Value};
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use vhdprep_disk::ReadAt;

const FS: &str = "lvm2";
/// Most logical volumes / segments / PVs accepted per volume group.
const MAX_ITEMS: usize = 4096;

pub(crate) fn corrupt(what: String) -> FsError {
    FsError::Corrupt { fs: FS, what }
}

fn unsupported(what: String) -> FsError {
    FsError::Unsupported { fs: FS, what }
}

/// The newest metadata found on a PV.
#[derive(Debug, Clone)]
pub struct VgMetadata {
    /// Volume group name.
    pub vg_name: String,
    /// Volume group UUID (with dashes, as LVM prints it).
    pub vg_uuid: String,
    /// Sequence number: higher is newer.
    pub seqno: i64,
    /// The VG section of the parsed text.
    pub vg: Section,
}

/// A physical volume: its label, header and (if it has a metadata area) VG metadata.
#[derive(Clone)]
pub struct PhysicalVolume {
    /// Label and header.
    pub header: PvHeader,
    /// Newest metadata from this PV's metadata areas; `None` for a PV without metadata areas
    /// or an orphan PV (in no VG).
    pub metadata: Option<VgMetadata>,
    /// The bytes of the PV.
    pub volume: Volume,
}

impl std::fmt::Debug for PhysicalVolume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhysicalVolume")
            .field("header", &self.header)
            .field(
                "metadata",
                &self.metadata.as_ref().map(|m| (&m.vg_name, m.seqno)),
            )
            .finish_non_exhaustive()
    }
}

impl PhysicalVolume {
    /// PV UUID with dashes (`xxxxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxxxx`), as `pvs` prints it.
    pub fn uuid(&self) -> String {
        dashed_uuid(&self.header.uuid)
    }
}

fn dashed_uuid(u: &str) -> String {
    let mut out = String::with_capacity(38);
    for (i, c) in u.chars().enumerate() {
        if matches!(i, 6 | 10 | 14 | 18 | 22 | 26) {
            out.push('-');
        }
        out.push(c);
    }
    out
}

fn undashed(u: &str) -> String {
    u.chars().filter(|&c| c != '-').collect()
}

/// Reads the LVM2 label and metadata of `vol`. `Ok(None)` when there is no LVM2 label.
pub fn read_pv(vol: Volume) -> FsResult<Option<PhysicalVolume>> {
    let Some(header) = label::read_header(&vol)? else {
        return Ok(None);
    };
    let mut best: Option<VgMetadata> = None;
    let mut first_err = None;
    for &mda in &header.metadata_areas {
        match read_mda(&vol, mda) {
            Ok(Some(m)) => {
                if best.as_ref().is_none_or(|b| m.seqno > b.seqno) {
                    best = Some(m);
                }
            }
            Ok(None) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if best.is_none() {
        if let Some(e) = first_err {
            return Err(e);
        }
    }
    Ok(Some(PhysicalVolume {
        header,
        metadata: best,
        volume: vol,
    }))
}

fn read_mda(vol: &Volume, mda: DiskLocn) -> FsResult<Option<VgMetadata>> {
    let Some(loc) = label::read_mda_header(vol, mda)? else {
        return Ok(None);
    };
    let text = label::read_text(vol, mda, loc, metadata::MAX_TEXT as u64)?;
    let top = metadata::parse(&text)?;
    let (name, vg) = top
        .sections()
        .next()
        .ok_or_else(|| corrupt("metadata text has no volume group section".into()))?;
    let seqno = vg
        .int("seqno")
        .ok_or_else(|| corrupt(format!("VG {name}: no seqno")))?;
    let vg_uuid = vg.str("id").unwrap_or_default().to_string();
    Ok(Some(VgMetadata {
        vg_name: name.to_string(),
        vg_uuid,
        seqno,
        vg: vg.clone(),
    }))
}

/// A logical volume mapped onto its physical volumes.
#[derive(Clone)]
pub struct LogicalVolume {
    /// Volume group name.
    pub vg_name: String,
    /// Logical volume name.
    pub lv_name: String,
    /// LV UUID (with dashes).
    pub uuid: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether LVM shows it (`VISIBLE` status flag); hidden LVs are sub-volumes.
    pub visible: bool,
    /// The LV's bytes.
    pub volume: Volume,
}

impl std::fmt::Debug for LogicalVolume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogicalVolume")
            .field("vg_name", &self.vg_name)
            .field("lv_name", &self.lv_name)
            .field("uuid", &self.uuid)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl LogicalVolume {
    /// The device-mapper name, `vg-lv`, with `-` inside either name doubled.
    pub fn dm_name(&self) -> String {
        format!(
            "{}-{}",
            self.vg_name.replace('-', "--"),
            self.lv_name.replace('-', "--")
        )
    }
}

/// A logical volume that could not be mapped, and why.
#[derive(Debug)]
pub struct UnavailableLv {
    /// Volume group name.
    pub vg_name: String,
    /// Logical volume name.
    pub lv_name: String,
    /// Why: unsupported segment type, missing PV, inconsistent metadata.
    pub error: FsError,
}

/// A volume group assembled from the PVs given.
#[derive(Debug)]
pub struct VolumeGroup {
    /// Name.
    pub name: String,
    /// UUID (with dashes).
    pub uuid: String,
    /// Metadata sequence number used.
    pub seqno: i64,
    /// Logical volumes that could be mapped.
    pub lvs: Vec<LogicalVolume>,
    /// Logical volumes that could not.
    pub unavailable: Vec<UnavailableLv>,
    /// UUIDs of PVs the metadata lists but that were not given.
    pub missing_pvs: Vec<String>,
}

/// Groups PVs by volume group (newest metadata wins) and maps every logical volume that
/// can be mapped. See [`assemble_vgs`] for the ones that cannot.
pub fn assemble(pvs: Vec<PhysicalVolume>) -> FsResult<Vec<LogicalVolume>> {
    Ok(assemble_vgs(pvs)?
        .into_iter()
        .flat_map(|vg| vg.lvs)
        .collect())
}

/// Groups PVs by volume group and maps their logical volumes, reporting those that cannot be
/// mapped. Errors only when a volume group's metadata is inconsistent as a whole.
pub fn assemble_vgs(pvs: Vec<PhysicalVolume>) -> FsResult<Vec<VolumeGroup>> {
    let mut by_uuid: HashMap<String, Volume> = HashMap::new();
    for pv in &pvs {
        by_uuid
            .entry(pv.header.uuid.clone())
            .or_insert_with(|| pv.volume.clone());
    }
    // Newest metadata per VG UUID, in order of first appearance.
    let mut order: Vec<String> = Vec::new();
    let mut newest: HashMap<String, &VgMetadata> = HashMap::new();
    for m in pvs.iter().filter_map(|p| p.metadata.as_ref()) {
        match newest.get(&m.vg_uuid) {
            None => {
                order.push(m.vg_uuid.clone());
                newest.insert(m.vg_uuid.clone(), m);
            }
            Some(old) if m.seqno > old.seqno => {
                newest.insert(m.vg_uuid.clone(), m);
            }
            Some(_) => {}
        }
    }
    let mut out = Vec::new();
    for id in order {
        let m = newest[&id];
        out.push(assemble_vg(m, &by_uuid)?);
    }
    Ok(out)
}

struct PvInfo {
    uuid: String,
    volume: Option<Volume>,
    pe_start: u64,
    pe_count: u64,
}

fn nonneg(sec: &Section, key: &str, ctx: &str) -> FsResult<u64> {
    let v = sec
        .int(key)
        .ok_or_else(|| corrupt(format!("{ctx}: missing integer {key}")))?;
    u64::try_from(v).map_err(|_| corrupt(format!("{ctx}: negative {key}")))
}

fn assemble_vg(m: &VgMetadata, by_uuid: &HashMap<String, Volume>) -> FsResult<VolumeGroup> {
    let vg = &m.vg;
    let name = &m.vg_name;
    let extent_sectors = nonneg(vg, "extent_size", name)?;
    if extent_sectors == 0 || extent_sectors > 1 << 32 {
        return Err(corrupt(format!(
            "VG {name}: extent size {extent_sectors} sectors"
        )));
    }
    let extent_bytes = extent_sectors * 512;
    let mut pvinfo: HashMap<&str, PvInfo> = HashMap::new();
    let mut missing_pvs = Vec::new();
    if let Some(pvsec) = vg.section("physical_volumes") {
        for (pvname, p) in pvsec.sections().take(MAX_ITEMS) {
            let ctx = format!("VG {name}, {pvname}");
            let uuid = p
                .str("id")
                .ok_or_else(|| corrupt(format!("{ctx}: no id")))?;
            let volume = by_uuid.get(&undashed(uuid)).cloned();
            if volume.is_none() {
                missing_pvs.push(uuid.to_string());
            }
            let pe_start = nonneg(p, "pe_start", &ctx)?
                .checked_mul(512)
                .ok_or_else(|| corrupt(format!("{ctx}: pe_start overflows")))?;
            let pe_count = nonneg(p, "pe_count", &ctx)?;
            pvinfo.insert(
                pvname,
                PvInfo {
                    uuid: uuid.to_string(),
                    volume,
                    pe_start,
                    pe_count,
                },
            );
        }
    }
    let mut lvs = Vec::new();
    let mut unavailable = Vec::new();
    if let Some(lvsec) = vg.section("logical_volumes") {
        for (lvname, l) in lvsec.sections().take(MAX_ITEMS) {
            match map_lv(name, lvname, l, &pvinfo, extent_bytes) {
                Ok(lv) => lvs.push(lv),
                Err(error) => unavailable.push(UnavailableLv {
                    vg_name: name.clone(),
                    lv_name: lvname.to_string(),
                    error,
                }),
            }
        }
    }
    Ok(VolumeGroup {
        name: name.clone(),
        uuid: m.vg_uuid.clone(),
        seqno: m.seqno,
        lvs,
        unavailable,
        missing_pvs,
    })
}

fn map_lv(
    vg_name: &str,
    lv_name: &str,
    l: &Section,
    pvs: &HashMap<&str, PvInfo>,
    extent_bytes: u64,
) -> FsResult<LogicalVolume> {
    let ctx = format!("LV {vg_name}/{lv_name}");
    let uuid = l.str("id").unwrap_or_default().to_string();
    let visible = l
        .list("status")
        .is_some_and(|s| s.iter().any(|v| *v == Value::Str("VISIBLE".into())));
    let mut segs: Vec<(u64, u64, &Section)> = Vec::new();
    for (sname, s) in l.sections() {
        if !sname.starts_with("segment") {
            continue;
        }
        if segs.len() >= MAX_ITEMS {
            return Err(corrupt(format!("{ctx}: too many segments")));
        }
        let sctx = format!("{ctx} {sname}");
        let start = nonneg(s, "start_extent", &sctx)?;
        let count = nonneg(s, "extent_count", &sctx)?;
        segs.push((start, count, s));
    }
    if segs.is_empty() {
        return Err(corrupt(format!("{ctx}: no segments")));
    }
    segs.sort_by_key(|s| s.0);
    let mut mapped = Vec::new();
    let mut next = 0u64;
    for (start, count, s) in segs {
        let sctx = format!("{ctx} segment at extent {start}");
        if start != next || count == 0 {
            return Err(corrupt(format!("{sctx}: segments leave a gap or overlap")));
        }
        let ty = s.str("type").unwrap_or("");
        if ty != "striped" {
            return Err(unsupported(format!("{sctx}: segment type {ty:?}")));
        }
        let nstripes = nonneg(s, "stripe_count", &sctx)?;
        let stripes = s
            .list("stripes")
            .ok_or_else(|| corrupt(format!("{sctx}: no stripes")))?;
        if nstripes == 0 || nstripes > 128 || stripes.len() as u64 != nstripes * 2 {
            return Err(corrupt(format!(
                "{sctx}: {nstripes} stripes, {} values",
                stripes.len()
            )));
        }
        if count % nstripes != 0 {
            return Err(corrupt(format!(
                "{sctx}: {count} extents over {nstripes} stripes"
            )));
        }
        let per_stripe = count / nstripes;
        let stripe_bytes = if nstripes == 1 {
            0
        } else {
            let ss = nonneg(s, "stripe_size", &sctx)?;
            if ss == 0 || !ss.is_power_of_two() || ss * 512 > extent_bytes {
                return Err(corrupt(format!("{sctx}: stripe size {ss}")));
            }
            ss * 512
        };
        let mut areas = Vec::new();
        for pair in stripes.chunks_exact(2) {
            let (Value::Str(pvname), Value::Int(pe)) = (&pair[0], &pair[1]) else {
                return Err(corrupt(format!("{sctx}: malformed stripes list")));
            };
            let pv = pvs
                .get(pvname.as_str())
                .ok_or_else(|| corrupt(format!("{sctx}: unknown PV {pvname}")))?;
            let vol = pv
                .volume
                .clone()
                .ok_or_else(|| corrupt(format!("{sctx}: PV {pvname} ({}) is missing", pv.uuid)))?;
            let pe = u64::try_from(*pe).map_err(|_| corrupt(format!("{sctx}: negative PE")))?;
            if pe.checked_add(per_stripe).is_none_or(|e| e > pv.pe_count) {
                return Err(corrupt(format!(
                    "{sctx}: extents {pe}+{per_stripe} past the {} extents of {pvname}",
                    pv.pe_count
                )));
            }
            let byte = pe
                .checked_mul(extent_bytes)
                .and_then(|b| b.checked_add(pv.pe_start))
                .ok_or_else(|| corrupt(format!("{sctx}: offset overflows")))?;
            let end = per_stripe
                .checked_mul(extent_bytes)
                .and_then(|l| l.checked_add(byte));
            if end.is_none_or(|e| e > vol.len()) {
                return Err(corrupt(format!(
                    "{sctx}: extents on {pvname} run past the end of the PV device"
                )));
            }
            areas.push((vol, byte));
        }
        let lv_start = start
            .checked_mul(extent_bytes)
            .ok_or_else(|| corrupt(format!("{sctx}: offset overflows")))?;
        let len = count
            .checked_mul(extent_bytes)
            .ok_or_else(|| corrupt(format!("{sctx}: size overflows")))?;
        mapped.push(Segment {
            lv_start,
            len,
            stripe_bytes,
            areas,
        });
        next = start + count;
    }
    let size = next
        .checked_mul(extent_bytes)
        .ok_or_else(|| corrupt(format!("{ctx}: size overflows")))?;
    Ok(LogicalVolume {
        vg_name: vg_name.to_string(),
        lv_name: lv_name.to_string(),
        uuid,
        size,
        visible,
        volume: Arc::new(LvReader {
            segments: mapped,
            len: size,
        }),
    })
}

struct Segment {
    lv_start: u64,
    len: u64,
    /// 0 for one stripe.
    stripe_bytes: u64,
    areas: Vec<(Volume, u64)>,
}

/// Reads an LV through its segments.
struct LvReader {
    segments: Vec<Segment>,
    len: u64,
}

impl ReadAt for LvReader {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let i = self
            .segments
            .partition_point(|s| s.lv_start + s.len <= offset);
        let Some(seg) = self.segments.get(i) else {
            return Ok(0);
        };
        let off = offset - seg.lv_start;
        let left = seg.len - off;
        let (area, pv_off, n) = if seg.areas.len() == 1 {
            (&seg.areas[0], seg.areas[0].1 + off, left)
        } else {
            let ss = seg.stripe_bytes;
            let chunk = off / ss;
            let within = off % ss;
            let n_areas = seg.areas.len() as u64;
            let area = &seg.areas[(chunk % n_areas) as usize];
            (
                area,
                area.1 + (chunk / n_areas) * ss + within,
                (ss - within).min(left),
            )
        };
        let n = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
        area.0.read_at(&mut buf[..n], pv_off)
    }

    fn len(&self) -> u64 {
        self.len
    }
}
