//! OVA: a tar archive holding an OVF descriptor (XML, first by convention), often a
//! manifest and certificate, and the disks (usually stream-optimized VMDKs).
//!
//! The disks are read in place: [`Ova::disk_slice`] is a [`Slice`] of the archive that
//! [`crate::vmdk::Vmdk::read_header`] and [`crate::vmdk::VmdkDisk::open`] read like a file.
//! Nothing is extracted.

pub mod ovf;
pub mod tar;

pub use ovf::{Ovf, OvfDisk, OvfFile};
pub use tar::{read_tar, MemberKind, TarMember};

use crate::image::SharedDisk;
use crate::read_at::{ReadAt, Slice};
use std::io;

/// Why an OVA cannot be read. One line, with the offset where it applies; no path.
#[derive(Debug, thiserror::Error)]
pub enum OvaError {
    /// An I/O error, its kind kept.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A tar header that cannot be parsed.
    #[error("tar header at offset {offset}: {why}")]
    BadHeader {
        /// Header offset.
        offset: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// A tar header whose checksum does not match.
    #[error("tar header at offset {offset} has a wrong checksum (not a tar archive, or damaged)")]
    BadChecksum {
        /// Header offset.
        offset: u64,
    },
    /// A member whose data runs past the end of the file.
    #[error("tar member {name:?} claims {size} bytes at offset {offset}, past the end of the {file_len}-byte file")]
    MemberPastEnd {
        /// Member name.
        name: String,
        /// Offset of its data.
        offset: u64,
        /// Size claimed.
        size: u64,
        /// The file's length.
        file_len: u64,
    },
    /// More than [`tar::MAX_MEMBERS`] members.
    #[error("the archive has more than 4096 members; an OVA has a few")]
    TooManyMembers,
    /// No `.ovf` member.
    #[error("no OVF descriptor (*.ovf) in the archive")]
    NoOvf,
    /// An OVF over [`ovf::MAX_OVF_BYTES`].
    #[error("the OVF descriptor is {size} bytes, more than the 4 MiB vhdprep reads")]
    OvfTooLarge {
        /// Its size.
        size: u64,
    },
    /// An OVF that cannot be parsed.
    #[error("OVF descriptor: {0}")]
    BadOvf(String),
    /// A disk whose file is not in the archive.
    #[error("OVF disk {disk_id} refers to {href:?}, which is not in the archive")]
    MissingDiskFile {
        /// Disk id.
        disk_id: String,
        /// File name.
        href: String,
    },
}

/// One disk of an OVA: what the OVF says of it and where its file is in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvaDisk {
    /// The OVF `<Disk>`.
    pub disk: OvfDisk,
    /// Its `<File>`.
    pub file: OvfFile,
    /// The tar member holding it.
    pub member: TarMember,
}

/// An opened OVA: its members, its OVF descriptor and which member it is.
#[derive(Debug, Clone)]
pub struct Ova {
    /// All members, in archive order.
    pub members: Vec<TarMember>,
    /// Index in `members` of the OVF descriptor.
    pub ovf_member: usize,
    /// The parsed descriptor.
    pub ovf: Ovf,
}

impl Ova {
    /// Lists the archive and parses its OVF descriptor (the first `*.ovf` member; the OVF
    /// specification puts it first, vhdprep accepts it anywhere).
    pub fn read(file: &dyn ReadAt) -> Result<Ova, OvaError> {
        let members = read_tar(file)?;
        let ovf_member = members
            .iter()
            .position(|m| {
                m.kind == MemberKind::File && m.name.to_ascii_lowercase().ends_with(".ovf")
            })
            .ok_or(OvaError::NoOvf)?;
        let m = &members[ovf_member];
        if m.size > ovf::MAX_OVF_BYTES {
            return Err(OvaError::OvfTooLarge { size: m.size });
        }
        let mut text = vec![0u8; m.size as usize];
        file.read_exact_at(&mut text, m.offset)?;
        let ovf = Ovf::parse(&text)?;
        Ok(Ova {
            members,
            ovf_member,
            ovf,
        })
    }

    /// The OVF descriptor is the first member, as the OVF specification requires.
    pub fn ovf_first(&self) -> bool {
        self.ovf_member == 0
    }

    /// The member named `name` (a regular file).
    pub fn member(&self, name: &str) -> Option<&TarMember> {
        let name = name.strip_prefix("./").unwrap_or(name);
        self.members.iter().find(|m| {
            m.kind == MemberKind::File && m.name.strip_prefix("./").unwrap_or(&m.name) == name
        })
    }

    /// The disks the OVF lists with a file, in OVF order, each with its tar member. A disk
    /// whose file is missing from the archive is an error naming it.
    pub fn disks(&self) -> Result<Vec<OvaDisk>, OvaError> {
        let mut out = Vec::new();
        for d in &self.ovf.disks {
            let Some(fref) = &d.file_ref else { continue };
            let Some(f) = self.ovf.file(fref) else {
                return Err(OvaError::MissingDiskFile {
                    disk_id: d.disk_id.clone(),
                    href: format!("(no <File> with id {fref})"),
                });
            };
            let Some(m) = self.member(&f.href) else {
                return Err(OvaError::MissingDiskFile {
                    disk_id: d.disk_id.clone(),
                    href: f.href.clone(),
                });
            };
            out.push(OvaDisk {
                disk: d.clone(),
                file: f.clone(),
                member: m.clone(),
            });
        }
        Ok(out)
    }

    /// The bytes of `member`, in place in the archive `file`.
    pub fn disk_slice(file: SharedDisk, member: &TarMember) -> Slice<SharedDisk> {
        Slice::new(file, member.offset, member.size)
    }
}
