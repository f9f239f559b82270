//! Opening the containers whose readers live in their own modules (qcow2, VHDX, VMDK, OVA, VDI,
//! differencing VHD) as the virtual disk of a [`DiskImage`], and following the parent (backing
//! file) chains of the formats that have one.
//!
//! **Where a parent is looked for.** A parent is followed only when the user gives it or when it
//! can be found next to the image:
//! 1. `--parent PATH` ([`OpenOptions::parents`]): the first path is the image's parent, the
//!    second that parent's parent, and so on. A level with a path given is looked for there
//!    alone.
//! 2. Otherwise, in order: a *relative* name or locator in the file (qcow2 backing file name,
//!    VHD `W2ru`, VHDX `relative_path`, VMDK `parentFileNameHint`) resolved against the child's
//!    folder; an *absolute* one, only when it names an existing regular file (never a device);
//!    the parent's file name next to the child (VDI: VirtualBox's `{UUID}.vdi`).
//!
//! A candidate is the parent only if it passes the format's identity check: the VHD footer's
//! unique id equal to the child's parent unique id (the time stamp is compared and a
//! difference reported, as [`crate::vhd::parent`] explains), the VHDX data write GUID equal to
//! the child's `parent_linkage`, the VDI image UUID equal to the child's link UUID (a changed
//! modification UUID reported), the VMDK `CID` equal to the child's `parentCID`. qcow2 records
//! no identity of its backing file (neither does qemu check one). A chain is at most
//! [`MAX_CHAIN_LENGTH`] disks and a disk met twice ends it with an error.
//!
//! A parent that is not found, or found but not the right one, makes the child's virtual disk
//! unreadable with one line naming what the child expects and every place looked at.

use crate::error::{DiskError, Result};
use crate::format::Format;
use crate::image::{open_file, DiskImage, SharedDisk};
use crate::ova::{Ova, OvaDisk};
use crate::qcow2::{self, Qcow2Disk, Qcow2Header};
use crate::vdi::{VdiDisk, VdiHeader, VdiImageType};
use crate::vhd::parent::{check_parent, TimestampCheck};
use crate::vhd::{DifferencingHeader, DifferencingVhd};
use crate::vhdx::{Vhdx, VhdxDisk, VhdxHeader};
use crate::vmdk::{resolve_extent, Vmdk, VmdkDisk, VmdkHeader};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::vhd::parent::MAX_CHAIN_LENGTH;

/// How [`DiskImage::open_with`] opens an image.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Where the parents are (`--parent PATH`, repeatable): the first is the image's parent
    /// (backing file), the second that parent's parent, and so on. Levels without a path here
    /// are looked for next to the child (see the module documentation).
    pub parents: Vec<PathBuf>,
}

/// What a container read by one of the format modules says about itself, kept for `info`.
#[derive(Debug, Clone)]
pub enum ContainerHeader {
    /// A qcow2 header.
    Qcow2(Box<Qcow2Header>),
    /// A VHDX header (log replayed in memory).
    Vhdx(Box<VhdxHeader>),
    /// A VMDK: sparse header and/or descriptor.
    Vmdk(Box<VmdkHeader>),
    /// An OVA: its listing and OVF, and the VMDK read from it.
    Ova(Box<OvaInfo>),
    /// A VDI header.
    Vdi(Box<VdiHeader>),
    /// A differencing VHD: footer, dynamic header, locators.
    VhdDifferencing(Box<DifferencingHeader>),
}

/// An OVA as opened: the archive, the disk read and its VMDK header.
#[derive(Debug, Clone)]
pub struct OvaInfo {
    /// The archive listing and OVF descriptor.
    pub ova: Ova,
    /// The disks the OVF lists (with their tar members).
    pub disks: Vec<OvaDisk>,
    /// Index in `disks` of the disk read (the first one).
    pub read: Option<usize>,
    /// The VMDK header of that disk.
    pub vmdk: Option<VmdkHeader>,
}

/// One disk of a parent chain, for `info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainLink {
    /// Its path.
    pub path: String,
    /// Its format.
    pub format: Format,
    /// What identifies it (VHD unique id, VHDX data write GUID, VDI image UUID, VMDK CID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

/// Where a chain walk is: the options, how deep, and the disks already on the way.
#[derive(Debug, Clone)]
pub(crate) struct Level<'a> {
    pub opts: &'a OpenOptions,
    /// 0 for the image the user named.
    pub depth: usize,
    /// Canonical paths of the children above this disk.
    pub seen: Vec<PathBuf>,
    /// Whether other files may be opened (parents, VMDK extents): not for an image read
    /// from memory ([`DiskImage::from_reader`]), whose path only names it.
    pub files: bool,
}

impl<'a> Level<'a> {
    /// The top of a chain.
    pub fn top(opts: &'a OpenOptions) -> Self {
        Level {
            opts,
            depth: 0,
            seen: Vec::new(),
            files: true,
        }
    }

    /// An image read from memory: no other file is opened.
    pub fn in_memory(opts: &'a OpenOptions) -> Self {
        Level {
            files: false,
            ..Level::top(opts)
        }
    }
}

/// A place a parent may be, and which record of the child gave it.
#[derive(Debug, Clone)]
struct Candidate {
    path: PathBuf,
    source: String,
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> DiskError {
    DiskError::Corrupt {
        path: path.to_owned(),
        what: what.to_string(),
    }
}

/// Opens the virtual disk of `img` for the formats of this module; sets its header, virtual
/// size and chain.
pub(crate) fn open(img: &mut DiskImage, level: &Level) -> Result<SharedDisk> {
    match img.detection.format {
        Format::Qcow2 => open_qcow2(img, level),
        Format::Vhdx => open_vhdx(img, level),
        Format::Vmdk => open_vmdk(img, level),
        Format::Ova => open_ova(img),
        Format::Vdi => open_vdi(img, level),
        Format::VhdDifferencing => open_vhd_differencing(img, level),
        other => Err(crate::refusal::refusal(&img.path, other, None)),
    }
}

/// Parent candidates from a name as a file stores it (`/`- or `\`-separated): relative
/// against the child's folder, absolute only as an existing regular file, then its last
/// component next to the child.
fn name_candidates(child: &Path, name: &str, source: &str) -> Vec<Candidate> {
    let dir = child.parent().unwrap_or(Path::new(""));
    let mut out: Vec<Candidate> = Vec::new();
    let mut push = |path: PathBuf, source: String| {
        if !out.iter().any(|c| c.path == path) {
            out.push(Candidate { path, source });
        }
    };
    let windows_abs = name.starts_with('\\')
        || (name.as_bytes().get(1) == Some(&b':')
            && name.as_bytes().first().is_some_and(u8::is_ascii_alphabetic));
    let parts: Vec<&str> = name
        .split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if name.starts_with('/') {
        let p = PathBuf::from(name);
        if std::fs::metadata(&p).is_ok_and(|m| m.is_file()) {
            push(p, format!("{source}, absolute"));
        }
    } else if !windows_abs && parts.last().is_some_and(|l| *l != "..") {
        let mut p = dir.to_path_buf();
        for c in &parts {
            p.push(c);
        }
        push(p, format!("{source}, relative to the image"));
    }
    if let Some(last) = parts.last().filter(|l| **l != "..") {
        push(
            dir.join(last),
            format!("{source}, its name next to the image"),
        );
    }
    out
}

/// How an error of a level further up the chain starts (the level's own path follows).
const IN_CHAIN: &str = "in its parent chain: ";

/// Finds, checks and opens the parent of `img`, described as `expected` (`backing file
/// 'base.qcow2'`), from `candidates` (or the user's `--parent` for this level). `check` says
/// why an opened candidate is not the parent, or gives a note (a time stamp that differs).
fn follow(
    img: &mut DiskImage,
    level: &Level,
    expected: &str,
    candidates: Vec<Candidate>,
    check: impl Fn(&DiskImage) -> std::result::Result<Option<String>, String>,
) -> Result<SharedDisk> {
    let child = img.path.clone();
    if !level.files {
        return Err(DiskError::Chain {
            path: child,
            what: format!("{expected} is not looked for: the image was read from memory"),
        });
    }
    if level.depth + 1 >= MAX_CHAIN_LENGTH {
        return Err(DiskError::Chain {
            path: child,
            what: format!(
                "the parent chain is longer than {MAX_CHAIN_LENGTH} disks (Hyper-V allows 50 checkpoints); a loop?"
            ),
        });
    }
    let candidates = match level.opts.parents.get(level.depth) {
        Some(p) => vec![Candidate {
            path: p.clone(),
            source: "--parent".into(),
        }],
        None => candidates,
    };
    let key = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut seen = level.seen.clone();
    seen.push(key(&child));
    let mut looked: Vec<String> = Vec::new();
    for c in candidates {
        let at = |why: &str| format!("{} ({}: {why})", c.path.display(), c.source);
        if std::fs::symlink_metadata(&c.path).is_err() {
            looked.push(at("no such file"));
            continue;
        }
        // A path taken from the image is followed only to a regular file, never to a device
        // or a FIFO; the user's --parent may name a block device.
        let user = level.opts.parents.get(level.depth).is_some();
        if !user && !std::fs::metadata(&c.path).is_ok_and(|m| m.is_file()) {
            looked.push(at("not a regular file"));
            continue;
        }
        if seen.contains(&key(&c.path)) {
            return Err(DiskError::Chain {
                path: child,
                what: format!(
                    "the parent chain loops: {} is its own ancestor",
                    c.path.display()
                ),
            });
        }
        let next = Level {
            opts: level.opts,
            depth: level.depth + 1,
            seen: seen.clone(),
            files: true,
        };
        let parent = match DiskImage::open_level(&c.path, &next) {
            Ok(p) => p,
            Err(e) => {
                looked.push(at(&e.detail()));
                continue;
            }
        };
        match check(&parent) {
            Err(why) => {
                looked.push(at(&why));
                continue;
            }
            Ok(note) => {
                if let Some(n) = note {
                    img.notes.push(n);
                }
            }
        }
        // The chain as far as it was found, even when a level further up is missing.
        img.chain = vec![img.link()];
        if parent.chain.is_empty() {
            img.chain.push(parent.link());
        } else {
            img.chain.extend(parent.chain.iter().cloned());
        }
        img.notes.extend(parent.notes.iter().cloned());
        // One line however deep the failing level: the innermost problem, said once.
        return parent.disk().map_err(|e| DiskError::Chain {
            path: child.clone(),
            what: match &*e {
                DiskError::Chain { what, .. } if what.starts_with(IN_CHAIN) => what.clone(),
                e => format!("{IN_CHAIN}{e}"),
            },
        });
    }
    img.chain = vec![img.link()];
    let places = if looked.is_empty() {
        "nowhere (no usable name or locator)".to_string()
    } else {
        looked.join(", ")
    };
    Err(DiskError::Chain {
        path: child,
        what: format!(
            "{expected} not found: looked at {places}; give its path with --parent PATH{}",
            if level.depth == 0 {
                String::new()
            } else {
                format!(
                    " (as the --parent of level {} of the chain: one --parent per level, the image's parent first)",
                    level.depth + 1
                )
            }
        ),
    })
}

fn open_qcow2(img: &mut DiskImage, level: &Level) -> Result<SharedDisk> {
    let h =
        qcow2::read_header(&*img.file).map_err(|e| corrupt(&img.path, format!("qcow2: {e}")))?;
    img.virtual_size = h.size;
    img.header = Some(ContainerHeader::Qcow2(Box::new(h.clone())));
    let parent = match h.backing_file.clone() {
        None => None,
        Some(name) => {
            let mut c = name_candidates(&img.path, &name, "backing file name");
            if let Some(p) = qcow2::backing_path_next_to(&img.path, &name) {
                if !c.iter().any(|x| x.path == p) {
                    c.push(Candidate {
                        path: p,
                        source: "backing file name, next to the image".into(),
                    });
                }
            }
            let fmt = h.backing_format.clone();
            Some(follow(
                img,
                level,
                &format!("backing file '{name}'"),
                c,
                |p| match fmt.as_deref() {
                    // qemu opens the backing file with the recorded format; a differing
                    // format by content is not the backing file qemu would read (a "raw"
                    // one holding a container's header would be read differently: refused).
                    Some(f) if p.format().qemu_driver() != Some(f) => Err(format!(
                        "a {} image, the child records backing format '{f}'",
                        p.format()
                    )),
                    _ => Ok(None),
                },
            )?)
        }
    };
    let disk = Qcow2Disk::open(img.file.clone(), h, parent)
        .map_err(|e| corrupt(&img.path, format!("qcow2: {e}")))?;
    Ok(Arc::new(disk))
}

fn braces_guid(s: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(s.trim().trim_start_matches('{').trim_end_matches('}')).ok()
}

fn open_vhdx(img: &mut DiskImage, level: &Level) -> Result<SharedDisk> {
    let h = Vhdx::read_header(&*img.file).map_err(|e| corrupt(&img.path, format!("VHDX: {e}")))?;
    img.virtual_size = h.virtual_size();
    img.header = Some(ContainerHeader::Vhdx(Box::new(h.clone())));
    let parent = if h.has_parent() {
        let loc = h.metadata.parent_locator.clone();
        let mut c = Vec::new();
        let linkage = loc
            .as_ref()
            .and_then(|l| l.parent_linkage())
            .and_then(braces_guid);
        if let Some(l) = &loc {
            for (key, v) in [
                ("relative_path", l.relative_path()),
                ("absolute_win32_path", l.absolute_win32_path()),
            ] {
                if let Some(v) = v {
                    for x in name_candidates(&img.path, v, key) {
                        if !c.iter().any(|y: &Candidate| y.path == x.path) {
                            c.push(x);
                        }
                    }
                }
            }
        }
        let expected = match (&loc, linkage) {
            (Some(l), Some(g)) => format!(
                "parent VHDX (data write GUID {g}; locator {})",
                l.describe()
            ),
            (Some(l), None) => format!("parent VHDX (locator {})", l.describe()),
            _ => "parent VHDX (no parent locator)".into(),
        };
        Some(follow(img, level, &expected, c, |p| {
            let Some(ContainerHeader::Vhdx(ph)) = &p.header else {
                return Err(format!("a {} image, not a VHDX", p.format()));
            };
            match linkage {
                Some(g) if ph.head.data_write_guid != g => Err(format!(
                    "data write GUID {}, the child expects {g}",
                    ph.head.data_write_guid
                )),
                _ => Ok(None),
            }
        })?)
    } else {
        None
    };
    let disk = VhdxDisk::open(img.file.clone(), h, parent)
        .map_err(|e| corrupt(&img.path, format!("VHDX: {e}")))?;
    Ok(Arc::new(disk))
}

fn open_vmdk(img: &mut DiskImage, level: &Level) -> Result<SharedDisk> {
    let h = Vmdk::read_header(&*img.file).map_err(|e| vmdk_error(&img.path, e))?;
    img.virtual_size = h.virtual_size().unwrap_or(0);
    img.header = Some(ContainerHeader::Vmdk(Box::new(h.clone())));
    let mut extents: Vec<SharedDisk> = Vec::new();
    if !level.files && !h.extent_files().is_empty() {
        return Err(corrupt(
            &img.path,
            "VMDK: its extent files are not looked for: the image was read from memory",
        ));
    }
    for name in h.extent_files() {
        let path = resolve_extent(&img.path, name).map_err(|e| corrupt(&img.path, e))?;
        let f = open_file(&path)?;
        extents.push(Arc::new(f));
    }
    let parent = match h.parent() {
        None => None,
        Some((cid, hint)) => {
            let hint = hint.unwrap_or("").to_string();
            let c = name_candidates(&img.path, &hint, "parentFileNameHint");
            let child = h.clone();
            Some(follow(
                img,
                level,
                &format!("parent VMDK '{hint}' (CID {cid:08x})"),
                c,
                |p| {
                    let Some(ContainerHeader::Vmdk(ph)) = &p.header else {
                        return Err(format!("a {} image, not a VMDK", p.format()));
                    };
                    child
                        .check_parent(ph)
                        .map(|()| None)
                        .map_err(|e| e.to_string())
                },
            )?)
        }
    };
    let disk = VmdkDisk::open(img.file.clone(), &h, extents, parent)
        .map_err(|e| vmdk_error(&img.path, e))?;
    Ok(Arc::new(disk))
}

/// A VMDK error: an extent kind vhdprep does not read (COWD/VMFSSPARSE, SESPARSE, raw device
/// maps) is a refusal by name with qemu-img's command, as for the formats it does not read;
/// anything else a damaged file.
fn vmdk_error(path: &Path, e: crate::vmdk::VmdkError) -> DiskError {
    match e {
        crate::vmdk::VmdkError::UnsupportedExtent { kind, .. } => DiskError::Unsupported {
            path: path.to_owned(),
            what: format!(
                "{} with a {kind} extent",
                crate::refusal::what(Format::Vmdk, None)
            ),
            hint: crate::refusal::remedy(Format::Vmdk, None, path).to_string(),
        },
        e => corrupt(path, format!("VMDK: {e}")),
    }
}

fn open_ova(img: &mut DiskImage) -> Result<SharedDisk> {
    let path = img.path.clone();
    let bad = |e: &dyn std::fmt::Display| corrupt(&path, format!("OVA: {e}"));
    let ova = Ova::read(&*img.file).map_err(|e| bad(&e))?;
    let disks = ova.disks().map_err(|e| bad(&e))?;
    let mut info = OvaInfo {
        ova,
        disks,
        read: None,
        vmdk: None,
    };
    let Some(first) = info.disks.first().cloned() else {
        img.header = Some(ContainerHeader::Ova(Box::new(info)));
        return Err(bad(&"the OVF lists no disk with a file"));
    };
    info.read = Some(0);
    let slice: SharedDisk = Arc::new(Ova::disk_slice(img.file.clone(), &first.member));
    let vh = Vmdk::read_header(&*slice);
    if let Ok(vh) = &vh {
        info.vmdk = Some(vh.clone());
        img.virtual_size = vh.virtual_size().unwrap_or(0);
    }
    img.header = Some(ContainerHeader::Ova(Box::new(info)));
    let member = &first.member.name;
    let vh = vh.map_err(|e| bad(&format!("disk {member:?}: {e}")))?;
    if !vh.extent_files().is_empty() || vh.parent().is_some() {
        return Err(bad(&format!(
            "disk {member:?} needs other files (extents or a parent); vhdprep reads the self-contained VMDKs an OVA holds"
        )));
    }
    let disk = VmdkDisk::open(slice, &vh, Vec::new(), None)
        .map_err(|e| bad(&format!("disk {member:?}: {e}")))?;
    Ok(Arc::new(disk))
}

fn open_vdi(img: &mut DiskImage, level: &Level) -> Result<SharedDisk> {
    let h = VdiHeader::read(&*img.file).map_err(|e| corrupt(&img.path, format!("VDI: {e}")))?;
    img.virtual_size = h.disk_size;
    img.header = Some(ContainerHeader::Vdi(Box::new(h.clone())));
    let parent = if h.image_type == VdiImageType::Differencing {
        let c = crate::vdi::parent::parent_candidates(&img.path, &h)
            .into_iter()
            .map(|path| Candidate {
                path,
                source: "VirtualBox's {UUID}.vdi next to the image".into(),
            })
            .collect();
        let child = h.clone();
        Some(follow(
            img,
            level,
            &format!("parent VDI with image UUID {}", h.uuid_link),
            c,
            move |p| {
                let Some(ContainerHeader::Vdi(ph)) = &p.header else {
                    return Err(format!("a {} image, not a VDI", p.format()));
                };
                match crate::vdi::parent::check_parent(&child, p.path(), ph) {
                    Ok(crate::vdi::parent::ModificationCheck::Unchanged) => Ok(None),
                    Ok(crate::vdi::parent::ModificationCheck::Changed) => Ok(Some(format!(
                        "parent {} was modified after the child {} was made (its modification UUID is not the one the child recorded)",
                        p.path().display(),
                        child.uuid_image
                    ))),
                    Err(e) => Err(e.to_string()),
                }
            },
        )?)
    } else {
        None
    };
    let disk = VdiDisk::open(img.file.clone(), h, parent)
        .map_err(|e| corrupt(&img.path, format!("VDI: {e}")))?;
    Ok(Arc::new(disk))
}

fn open_vhd_differencing(img: &mut DiskImage, level: &Level) -> Result<SharedDisk> {
    let h = DifferencingHeader::read(&*img.file)
        .map_err(|e| corrupt(&img.path, format!("differencing VHD: {e}")))?;
    img.virtual_size = h.virtual_size();
    img.dynamic_header = Some(h.dynamic.clone());
    img.header = Some(ContainerHeader::VhdDifferencing(Box::new(h.clone())));
    let c = h
        .parent_candidates(&img.path)
        .into_iter()
        .filter(|c| {
            // Absolute locators only as existing regular files (never a device).
            let absolute = matches!(
                &c.source,
                crate::vhd::parent::CandidateSource::Locator(code)
                    if matches!(code.as_str(), "W2ku" | "Wi2k" | "MacX")
            );
            !absolute || std::fs::metadata(&c.path).is_ok_and(|m| m.is_file())
        })
        .map(|c| Candidate {
            source: c.source.to_string(),
            path: c.path,
        })
        .collect();
    let expected = format!(
        "parent '{}' (unique id {})",
        h.dynamic.parent_name,
        crate::vhd::parent::vhd_uuid(h.dynamic.parent_unique_id)
    );
    let dynamic = h.dynamic.clone();
    let parent = follow(img, level, &expected, c, |p| {
        let Some(footer) = p.footer() else {
            return Err(format!("a {} image, not a VHD", p.format()));
        };
        let mtime = std::fs::metadata(p.path()).and_then(|m| m.modified()).ok();
        match check_parent(&dynamic, p.path(), footer, mtime) {
            Ok(TimestampCheck::Differs { recorded, footer }) => Ok(Some(format!(
                "parent {} has time stamp {footer} (footer) while the child recorded {recorded}: it may have been modified after the child was made",
                p.path().display()
            ))),
            Ok(_) => Ok(None),
            Err(crate::vhd::parent::ParentError::Mismatch { found, .. }) => {
                Err(format!("unique id {found}"))
            }
            Err(e) => Err(e.to_string()),
        }
    })?;
    let disk = DifferencingVhd::open(img.file.clone(), h, parent)
        .map_err(|e| corrupt(&img.path, format!("differencing VHD: {e}")))?;
    Ok(Arc::new(disk))
}

/// What identifies a disk in a chain listing.
pub(crate) fn identity(img: &DiskImage) -> Option<String> {
    match &img.header {
        Some(ContainerHeader::Vhdx(h)) => Some(h.head.data_write_guid.to_string()),
        Some(ContainerHeader::Vdi(h)) => Some(h.uuid_image.to_string()),
        Some(ContainerHeader::Vmdk(h)) => h
            .descriptor
            .as_ref()
            .and_then(|d| d.cid)
            .map(|c| format!("CID {c:08x}")),
        _ => img.footer().map(|f| f.unique_id_text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(c: &[Candidate]) -> Vec<String> {
        c.iter().map(|c| c.path.display().to_string()).collect()
    }

    #[test]
    fn names_give_relative_then_next_to_the_child() {
        let child = Path::new("/img/vm/child.qcow2");
        assert_eq!(
            paths(&name_candidates(child, "base.qcow2", "n")),
            ["/img/vm/base.qcow2"]
        );
        assert_eq!(
            paths(&name_candidates(child, "../base/b.qcow2", "n")),
            ["/img/vm/../base/b.qcow2", "/img/vm/b.qcow2"]
        );
        // Windows separators, a VHDX relative_path.
        assert_eq!(
            paths(&name_candidates(child, ".\\sub\\p.vhdx", "n")),
            ["/img/vm/sub/p.vhdx", "/img/vm/p.vhdx"]
        );
        // A Windows drive path gives only the name next to the child.
        assert_eq!(
            paths(&name_candidates(child, "C:\\vms\\p.vhdx", "n")),
            ["/img/vm/p.vhdx"]
        );
        // An absolute name only when it is an existing regular file.
        assert_eq!(
            paths(&name_candidates(child, "/nonexistent/x/base.img", "n")),
            ["/img/vm/base.img"]
        );
        assert_eq!(
            paths(&name_candidates(child, "/dev/null", "n")),
            ["/img/vm/null"]
        );
        let f = tempfile::NamedTempFile::new().unwrap();
        let abs = f.path().display().to_string();
        let c = name_candidates(child, &abs, "n");
        assert_eq!(paths(&c)[0], abs);
        // Nothing usable.
        assert!(name_candidates(child, "", "n").is_empty());
        assert!(name_candidates(child, "..", "n").is_empty());
    }

    #[test]
    fn in_memory_images_open_no_other_file() {
        // A qcow2 header naming a backing file, read from memory.
        let mut v = vec![0u8; 1 << 16];
        v[..4].copy_from_slice(b"QFI\xfb");
        v[4..8].copy_from_slice(&3u32.to_be_bytes());
        v[8..16].copy_from_slice(&512u64.to_be_bytes()); // backing name offset
        v[16..20].copy_from_slice(&4u32.to_be_bytes());
        v[20..24].copy_from_slice(&16u32.to_be_bytes()); // 64 KiB clusters
        v[24..32].copy_from_slice(&(1u64 << 20).to_be_bytes());
        v[36..40].copy_from_slice(&1u32.to_be_bytes()); // one L1 entry
        v[40..48].copy_from_slice(&(1u64 << 16).to_be_bytes());
        v[96..100].copy_from_slice(&4u32.to_be_bytes());
        v[100..104].copy_from_slice(&104u32.to_be_bytes());
        v[512..516].copy_from_slice(b"base");
        v.resize(1 << 17, 0);
        let img = DiskImage::from_reader("/x/top.qcow2", Arc::new(v)).unwrap();
        assert_eq!(img.format(), Format::Qcow2);
        let e = img.parent_error().expect("a chain error");
        assert!(
            e.to_string()
                .contains("backing file 'base' is not looked for"),
            "{e}"
        );
    }
}
