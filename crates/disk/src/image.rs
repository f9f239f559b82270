//! Opening a disk image: the file, its container format, and its virtual disk.

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
    path: PathBuf,
    file: SharedDisk,
    detection: Detection,
    dynamic_header: Option<DynamicHeader>,
    virtual_size: u64,
    disk: std::result::Result<SharedDisk, Arc<DiskError>>,
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
    pub fn open(path: impl AsRef<Path>) -> Result<DiskImage> {
        let path = path.as_ref();
        let file = open_file(path)?;
        DiskImage::from_reader(path, Arc::new(file))
    }

    /// Like [`DiskImage::open`], for an image that is already open (or in memory): `path`
    /// only names it in messages. The fuzz targets open in-memory images through this.
    pub fn from_reader(path: impl AsRef<Path>, file: SharedDisk) -> Result<DiskImage> {
        let path = path.as_ref();
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
        };
        image.open_disk();
        Ok(image)
    }

    fn open_disk(&mut self) {
        let path = self.path.clone();
        let size = self.file.len();
        let format = self.detection.format;
        // Format::is_read decides; a differencing VHD is opened far enough to name its parent.
        let refused = !format.is_read() && format != Format::VhdDifferencing
            || self.detection.encryption.is_some();
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
            Format::VhdDynamic | Format::VhdDifferencing => self.open_sparse(),
            // Not reached while is_read names only the formats above; a format made readable
            // there without a reader here is still refused, never taken for raw.
            other => Err(refusal(&path, other, self.detection.encryption)),
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
        if self.detection.format == Format::VhdDifferencing {
            let mut parent = format!("'{}'", header.parent_name);
            for l in &header.parent_locators {
                if let Some(text) = self.read_locator(l) {
                    parent.push_str(&format!(" ({}: {})", l.platform_code, text));
                }
            }
            return Err(DiskError::Differencing { path, parent });
        }
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

    /// The text of a parent locator (UTF-16LE for Windows codes, UTF-8 for Mac), bounded.
    fn read_locator(&self, l: &crate::vhd::ParentLocator) -> Option<String> {
        let len = l.data_length.min(4096) as usize;
        if len == 0 {
            return None;
        }
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, l.data_offset).ok()?;
        let text = if l.platform_code.starts_with("W2") {
            let units: Vec<u16> = buf
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            String::from_utf16_lossy(&units)
        } else {
            String::from_utf8_lossy(&buf)
                .trim_end_matches('\0')
                .to_string()
        };
        Some(text)
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

    /// The virtual disk, or why it cannot be read (unsupported format, differencing disk,
    /// truncated file, damaged header).
    pub fn disk(&self) -> std::result::Result<SharedDisk, Arc<DiskError>> {
        self.disk.clone()
    }
}
