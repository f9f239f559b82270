//! Opening a disk image: the file, its container format, and its virtual disk.

use crate::container::{self, ChainLink, ContainerHeader, Level, OpenOptions};
use crate::detect::{detect, Detection, Evidence, FooterPlace};
use crate::error::{DiskError, Result};
use crate::format::{Encryption, Format};
use crate::read_at::{FileReader, ReadAt, Slice, ZeroPadded};
use crate::refusal::refusal;
use crate::vhd::{DynamicHeader, DynamicVhd, Footer, SizeSource, DYNAMIC_HEADER_SIZE, FOOTER_SIZE};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A shared, thread-safe view of a virtual disk.
pub type SharedDisk = Arc<dyn ReadAt>;

/// An opened disk image: container facts plus (where vhdprep reads the format) the virtual
/// disk as bytes.
pub struct DiskImage {
    pub(crate) path: PathBuf,
    pub(crate) file: SharedDisk,
    pub(crate) detection: Detection,
    pub(crate) dynamic_header: Option<DynamicHeader>,
    pub(crate) virtual_size: u64,
    pub(crate) disk: std::result::Result<SharedDisk, Arc<DiskError>>,
    /// What the format module read of the container (qcow2, VHDX, VMDK, OVA, VDI,
    /// differencing VHD).
    pub(crate) header: Option<ContainerHeader>,
    /// The parent chain, this disk first, when it has a parent (as far as it was found).
    pub(crate) chain: Vec<ChainLink>,
    /// What the chain walk noticed without refusing (a parent's time stamp that differs).
    pub(crate) notes: Vec<String>,
}

impl std::fmt::Debug for DiskImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskImage")
            .field("path", &self.path)
            .field("format", &self.detection.format)
            .field("file_size", &self.file.len())
            .field("virtual_size", &self.virtual_size)
            .finish()
    }
}

/// Opens `path` read-only and returns the file with its length. Directories and other
/// non-files are refused; block devices are measured by seeking to their end.
pub fn open_file(path: &Path) -> Result<FileReader> {
    // Non-blocking, so that a FIFO given by mistake cannot hang the open; it is refused below.
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| DiskError::io(path, "cannot open", e))?;
    let meta = file
        .metadata()
        .map_err(|e| DiskError::io(path, "cannot stat", e))?;
    let ft = meta.file_type();
    use std::os::unix::fs::FileTypeExt;
    let kind = if ft.is_file() || ft.is_block_device() {
        None
    } else if ft.is_dir() {
        Some("directory")
    } else if ft.is_char_device() {
        Some("character device")
    } else if ft.is_fifo() {
        Some("pipe")
    } else if ft.is_socket() {
        Some("socket")
    } else {
        Some("special file")
    };
    if let Some(kind) = kind {
        return Err(DiskError::NotAFile {
            path: path.to_owned(),
            kind,
        });
    }
    if ft.is_block_device() {
        let mut f = &file;
        let len = f
            .seek(SeekFrom::End(0))
            .map_err(|e| DiskError::io(path, "cannot measure block device", e))?;
        return Ok(FileReader::with_len(file, len));
    }
    FileReader::new(file).map_err(|e| DiskError::io(path, "cannot stat", e))
}

impl DiskImage {
    /// Opens a disk image and decides its format. Succeeds for every recognised format, so
    /// that `info` can describe VHDX or a differencing disk; [`DiskImage::disk`] then says
    /// whether the virtual disk can be read.
    /// Parents (backing files) are looked for next to the image; see [`DiskImage::open_with`].
    pub fn open(path: impl AsRef<Path>) -> Result<DiskImage> {
        DiskImage::open_with(path, &OpenOptions::default())
    }

    /// Like [`DiskImage::open`], with the parents of a differencing disk or backing chain
    /// given (`--parent`); the rule for finding the others is in [`crate::container`].
    pub fn open_with(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<DiskImage> {
        DiskImage::open_level(path.as_ref(), &Level::top(opts))
    }

    /// Opens one disk of a chain.
    pub(crate) fn open_level(path: &Path, level: &Level) -> Result<DiskImage> {
        let file = open_file(path)?;
        DiskImage::from_reader_level(path, Arc::new(file), level)
    }

    /// Like [`DiskImage::open`], for an image that is already open (or in memory): `path`
    /// only names it in messages, and no other file is opened (a disk that needs a parent or
    /// VMDK extent files is unreadable). The fuzz targets open in-memory images through this.
    pub fn from_reader(path: impl AsRef<Path>, file: SharedDisk) -> Result<DiskImage> {
        let opts = OpenOptions::default();
        DiskImage::from_reader_level(path.as_ref(), file, &Level::in_memory(&opts))
    }

    fn from_reader_level(path: &Path, file: SharedDisk, level: &Level) -> Result<DiskImage> {
        let size = file.len();
        if size < FOOTER_SIZE as u64 {
            return Err(DiskError::TooSmall {
                path: path.to_owned(),
                size,
            });
        }
        let detection = detect(&*file).map_err(|e| DiskError::io(path, "cannot read", e))?;
        let mut image = DiskImage {
            path: path.to_owned(),
            file,
            virtual_size: 0,
            dynamic_header: None,
            disk: Err(Arc::new(DiskError::Refused {
                path: path.to_owned(),
                why: "not opened".into(),
            })),
            detection,
            header: None,
            chain: Vec::new(),
            notes: Vec::new(),
        };
        image.open_disk(level);
        Ok(image)
    }

    fn open_disk(&mut self, level: &Level) {
        let path = self.path.clone();
        let size = self.file.len();
        let format = self.detection.format;
        // Format::is_read decides; an encrypted image is refused whatever its format.
        let refused = !format.is_read() || self.detection.encryption.is_some();
        let result: Result<SharedDisk> = match format {
            _ if refused => Err(refusal(&path, format, self.detection.encryption)),
            Format::Raw => {
                // Like qemu, a raw file that ends mid-sector is a disk of whole sectors, the
                // last one padded with zeros.
                self.virtual_size = size.div_ceil(512) * 512;
                if self.virtual_size == size {
                    Ok(self.file.clone())
                } else {
                    Ok(
                        Arc::new(ZeroPadded::new(self.file.clone(), self.virtual_size))
                            as SharedDisk,
                    )
                }
            }
            Format::VhdFixed => {
                let footer = &self.detection.footer.as_ref().expect("VHD has a footer").0;
                self.virtual_size = footer.virtual_size();
                let data = size - FOOTER_SIZE as u64;
                if self.virtual_size > data {
                    Err(DiskError::Truncated {
                        path: path.clone(),
                        claimed: self.virtual_size,
                        available: data,
                    })
                } else {
                    Ok(Arc::new(Slice::new(self.file.clone(), 0, self.virtual_size)) as SharedDisk)
                }
            }
            Format::VhdDynamic => self.open_sparse(),
            // The formats of crate::container; one made readable in is_read without a reader
            // there is still refused, never taken for raw.
            _ => container::open(self, level),
        };
        self.disk = result.map_err(Arc::new);
    }

    fn open_sparse(&mut self) -> Result<SharedDisk> {
        let path = self.path.clone();
        let (footer, place) = self.detection.footer.clone().expect("VHD has a footer");
        self.virtual_size = footer.virtual_size();
        let size = self.file.len();
        let header_at = footer.data_offset;
        let mut raw = [0u8; DYNAMIC_HEADER_SIZE];
        let fits = header_at
            .checked_add(DYNAMIC_HEADER_SIZE as u64)
            .is_some_and(|end| end <= size);
        if !fits {
            return Err(DiskError::Corrupt {
                path,
                what: format!(
                    "dynamic header offset {header_at} in the footer lies outside the {size}-byte file"
                ),
            });
        }
        self.file
            .read_exact_at(&mut raw, header_at)
            .map_err(|e| DiskError::io(&path, "cannot read dynamic header", e))?;
        let header = DynamicHeader::parse(&raw);
        self.dynamic_header = Some(header.clone());
        let data_end = match place {
            FooterPlace::End => size - FOOTER_SIZE as u64,
            FooterPlace::StartCopy => size,
        };
        match DynamicVhd::open(self.file.clone(), &header, self.virtual_size, data_end) {
            Ok(Ok(d)) => Ok(Arc::new(d) as SharedDisk),
            Ok(Err(e)) => Err(DiskError::Corrupt {
                path,
                what: format!("dynamic VHD: {e}"),
            }),
            Err(e) => Err(DiskError::io(path, "cannot read block table", e)),
        }
    }

    /// The path the image was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The container format.
    pub fn format(&self) -> Format {
        self.detection.format
    }

    /// How the volume is encrypted, where the container says so (LUKS, BitLocker, encrypted
    /// qcow/qcow2).
    pub fn encryption(&self) -> Option<Encryption> {
        self.detection.encryption
    }

    /// Everything detection found: the probes that ran, the signature that matched.
    pub fn detection(&self) -> &Detection {
        &self.detection
    }

    /// The signature that decided the format (`None` for raw).
    pub fn evidence(&self) -> Option<&Evidence> {
        self.detection.evidence.as_ref()
    }

    /// Length of the file in bytes.
    pub fn file_size(&self) -> u64 {
        self.file.len()
    }

    /// Size of the virtual disk in bytes (for a VHD, per [`Footer::size_source`]; 0 for
    /// formats vhdprep does not read).
    pub fn virtual_size(&self) -> u64 {
        self.virtual_size
    }

    /// The VHD footer, for the VHD formats.
    pub fn footer(&self) -> Option<&Footer> {
        self.detection.footer.as_ref().map(|(f, _)| f)
    }

    /// Where the footer was found.
    pub fn footer_place(&self) -> Option<FooterPlace> {
        self.detection.footer.as_ref().map(|(_, p)| *p)
    }

    /// For dynamic disks: whether the footer copy at offset 0 differs from the one at the end.
    pub fn footer_copy_differs(&self) -> bool {
        self.detection.footer_copy_differs
    }

    /// Which footer field sizes the disk (VHD only).
    pub fn size_source(&self) -> Option<SizeSource> {
        self.footer().map(Footer::size_source)
    }

    /// The dynamic header, for dynamic and differencing disks whose header could be read.
    pub fn dynamic_header(&self) -> Option<&DynamicHeader> {
        self.dynamic_header.as_ref()
    }

    /// The whole file as a reader (container included).
    pub fn file(&self) -> SharedDisk {
        self.file.clone()
    }

    /// The virtual disk, or why it cannot be read (unsupported format, missing parent,
    /// truncated file, damaged header).
    pub fn disk(&self) -> std::result::Result<SharedDisk, Arc<DiskError>> {
        self.disk.clone()
    }

    /// What the format module read of the container (qcow2, VHDX, VMDK, OVA, VDI,
    /// differencing VHD), even when the disk cannot be read past it.
    pub fn container_header(&self) -> Option<&ContainerHeader> {
        self.header.as_ref()
    }

    /// The parent chain, this disk first, for a disk with a parent (as far as it was found;
    /// empty for a disk without one).
    pub fn chain(&self) -> &[ChainLink] {
        &self.chain
    }

    /// What following the chain noticed without refusing it (a parent modified after the
    /// child was made, by its time stamp or modification UUID).
    pub fn chain_notes(&self) -> &[String] {
        &self.notes
    }

    /// The error of a parent that is missing, mismatched or unreadable, or of a chain that
    /// loops: the reading commands end on it (exit 2), `info` reports it.
    pub fn parent_error(&self) -> Option<Arc<DiskError>> {
        self.disk
            .as_ref()
            .err()
            .filter(|e| matches!(***e, DiskError::Chain { .. }))
            .cloned()
    }

    /// This disk as a link of a chain listing.
    pub(crate) fn link(&self) -> ChainLink {
        ChainLink {
            path: self.path.display().to_string(),
            format: self.detection.format,
            uuid: container::identity(self),
        }
    }
}
