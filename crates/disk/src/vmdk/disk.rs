//! The virtual disk of a VMDK: its extents end to end, each a sparse extent, a window of a
//! flat file, or zeros.

use super::descriptor::{ExtentType, MAX_EXTENTS};
use super::sparse::{ParentPart, SparseExtent};
use super::sparse_header::{MAX_CAPACITY_SECTORS, SECTOR};
use super::{Vmdk, VmdkError, VmdkHeader};
use crate::image::SharedDisk;
use crate::read_at::{ReadAt, Slice};
use std::io;
use std::ops::Range;

/// How one extent is read.
enum Reader {
    Sparse(Box<SparseExtent>),
    Flat(Slice<SharedDisk>),
    Zero,
}

struct Part {
    /// Where the extent starts in the virtual disk.
    start: u64,
    len: u64,
    reader: Reader,
}

/// A VMDK's virtual disk (`len` = the virtual size).
pub struct VmdkDisk {
    parts: Vec<Part>,
    len: u64,
}

impl std::fmt::Debug for VmdkDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmdkDisk")
            .field("extents", &self.parts.len())
            .field("len", &self.len)
            .finish()
    }
}

impl VmdkDisk {
    /// Opens the virtual disk.
    ///
    /// - `file`: the file [`Vmdk::read_header`] read `header` from.
    /// - `extents`: the files named by [`VmdkHeader::extent_files`], opened by the caller in
    ///   that order (none for a monolithicSparse or streamOptimized file).
    /// - `parent`: the parent's virtual disk, required when the descriptor has a `parentCID`
    ///   (a delta disk); unallocated grains read from it. Ignored for a disk without one.
    pub fn open(
        file: SharedDisk,
        header: &VmdkHeader,
        extents: Vec<SharedDisk>,
        parent: Option<SharedDisk>,
    ) -> Result<VmdkDisk, VmdkError> {
        let parent = match header.parent() {
            None => None,
            Some((parent_cid, hint)) => Some(parent.ok_or_else(|| VmdkError::MissingParent {
                hint: hint.unwrap_or("").to_owned(),
                parent_cid,
            })?),
        };
        let part_parent = |start| parent.clone().map(|disk| ParentPart { disk, start });
        if let Some(sparse) = &header.sparse {
            if !extents.is_empty() {
                return Err(VmdkError::ExtentCount {
                    expected: 0,
                    given: extents.len(),
                });
            }
            let len = sparse.capacity * SECTOR;
            let ext = SparseExtent::open(file, sparse.clone(), len, part_parent(0))?;
            return Ok(VmdkDisk {
                parts: vec![Part {
                    start: 0,
                    len,
                    reader: Reader::Sparse(Box::new(ext)),
                }],
                len,
            });
        }
        let Some(desc) = &header.descriptor else {
            return Err(VmdkError::NotVmdk);
        };
        let expected = header.extent_files().len();
        if extents.len() != expected {
            return Err(VmdkError::ExtentCount {
                expected,
                given: extents.len(),
            });
        }
        let total = desc.virtual_size().ok_or(VmdkError::VirtualSizeTooLarge)?;
        if total > MAX_CAPACITY_SECTORS * SECTOR || desc.extents.len() > MAX_EXTENTS {
            return Err(VmdkError::VirtualSizeTooLarge);
        }
        let mut files = extents.into_iter();
        let mut parts = Vec::with_capacity(desc.extents.len());
        let mut start = 0u64;
        for (index, e) in desc.extents.iter().enumerate() {
            // `total` did not overflow, so neither does any part of it.
            let len = e.sectors * SECTOR;
            let name = e.file.clone().unwrap_or_default();
            let reader = match e.kind {
                ExtentType::Zero => Reader::Zero,
                ExtentType::Flat | ExtentType::Vmfs => {
                    let f = files
                        .next()
                        .ok_or(VmdkError::ExtentCount { expected, given: 0 })?;
                    let needed = e
                        .offset
                        .checked_mul(SECTOR)
                        .and_then(|o| o.checked_add(len));
                    match needed {
                        Some(n) if n <= f.len() => {}
                        _ => {
                            return Err(VmdkError::ExtentTooShort {
                                index,
                                name,
                                needed: needed.unwrap_or(u64::MAX),
                                len: f.len(),
                            })
                        }
                    }
                    Reader::Flat(Slice::new(f, e.offset * SECTOR, len))
                }
                ExtentType::Sparse => {
                    let f = files
                        .next()
                        .ok_or(VmdkError::ExtentCount { expected, given: 0 })?;
                    let in_extent = |source: VmdkError| VmdkError::InExtent {
                        index,
                        name: name.clone(),
                        source: Box::new(source),
                    };
                    let h = Vmdk::read_header(f.as_ref()).map_err(in_extent)?;
                    let Some(sh) = h.sparse else {
                        return Err(in_extent(VmdkError::BadMagic { offset: 0 }));
                    };
                    if sh.capacity < e.sectors {
                        return Err(VmdkError::ExtentCapacity {
                            index,
                            name,
                            capacity: sh.capacity,
                            sectors: e.sectors,
                        });
                    }
                    Reader::Sparse(Box::new(
                        SparseExtent::open(f, sh, len, part_parent(start)).map_err(in_extent)?,
                    ))
                }
                other => {
                    return Err(VmdkError::UnsupportedExtent {
                        index,
                        kind: other.name(),
                    })
                }
            };
            parts.push(Part { start, len, reader });
            start += len;
        }
        Ok(VmdkDisk { parts, len: start })
    }

    /// Number of extents.
    pub fn extent_count(&self) -> usize {
        self.parts.len()
    }

    /// Index of the part holding `offset` (< len).
    fn part_at(&self, offset: u64) -> usize {
        self.parts
            .partition_point(|p| p.start + p.len <= offset)
            .min(self.parts.len().saturating_sub(1))
    }
}

impl ReadAt for VmdkDisk {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = crate::read_at::bytes_within(buf.len(), offset, self.len);
        if n == 0 {
            return Ok(0);
        }
        let mut done = 0usize;
        let mut i = self.part_at(offset);
        while done < n {
            let Some(p) = self.parts.get(i) else {
                break;
            };
            let at = offset + done as u64;
            if at >= p.start + p.len {
                i += 1;
                continue;
            }
            let in_part = at - p.start;
            let take = usize::try_from(p.len - in_part)
                .unwrap_or(usize::MAX)
                .min(n - done);
            let chunk = &mut buf[done..done + take];
            match &p.reader {
                Reader::Zero => chunk.fill(0),
                Reader::Flat(s) => s.read_exact_at(chunk, in_part)?,
                Reader::Sparse(s) => s.read_exact_at(chunk, in_part)?,
            }
            done += take;
            i += 1;
        }
        Ok(done)
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        if offset >= self.len {
            return Ok(None);
        }
        let mut i = self.part_at(offset);
        while let Some(p) = self.parts.get(i) {
            let from = offset.max(p.start) - p.start;
            let r = match &p.reader {
                Reader::Zero => None,
                Reader::Flat(s) => s.next_data(from)?,
                Reader::Sparse(s) => s.next_data(from)?,
            };
            if let Some(r) = r {
                return Ok(Some(p.start + r.start..p.start + r.end.min(p.len)));
            }
            i += 1;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Descriptor;
    use super::*;
    use std::sync::Arc;

    fn desc(text: &str) -> VmdkHeader {
        VmdkHeader {
            sparse: None,
            initial_sparse: None,
            descriptor: Some(Descriptor::parse(text.as_bytes(), 0).unwrap()),
        }
    }

    #[test]
    fn flat_and_zero_extents_end_to_end() {
        let h = desc("RW 2 FLAT \"a\" 1\nRW 1 ZERO\nRW 1 FLAT \"b\"\n");
        assert_eq!(h.extent_files(), vec!["a", "b"]);
        let a: SharedDisk = Arc::new(vec![0x11u8; 3 * 512]);
        let b: SharedDisk = Arc::new(vec![0x22u8; 512]);
        let file: SharedDisk = Arc::new(Vec::new());
        let d = VmdkDisk::open(file, &h, vec![a, b], None).unwrap();
        assert_eq!(d.len(), 4 * 512);
        let mut all = vec![9u8; 4 * 512];
        d.read_exact_at(&mut all, 0).unwrap();
        assert!(all[..1024].iter().all(|&x| x == 0x11));
        assert!(all[1024..1536].iter().all(|&x| x == 0));
        assert!(all[1536..].iter().all(|&x| x == 0x22));
        let mut two = [0u8; 2];
        d.read_exact_at(&mut two, 1535).unwrap();
        assert_eq!(two, [0, 0x22]);
        assert_eq!(d.next_data(0).unwrap(), Some(0..1024));
        assert_eq!(d.next_data(1024).unwrap(), Some(1536..2048));
    }

    #[test]
    fn wrong_extent_files_and_sizes() {
        let h = desc("RW 4 FLAT \"a\" 1\n");
        let file: SharedDisk = Arc::new(Vec::new());
        let short: SharedDisk = Arc::new(vec![0u8; 4 * 512]);
        assert!(matches!(
            VmdkDisk::open(file.clone(), &h, vec![short], None),
            Err(VmdkError::ExtentTooShort { needed: 2560, .. })
        ));
        assert!(matches!(
            VmdkDisk::open(file.clone(), &h, vec![], None),
            Err(VmdkError::ExtentCount {
                expected: 1,
                given: 0
            })
        ));
        let h = desc(&format!("RW {} FLAT \"a\" {}\n", 8, u64::MAX / 256));
        let f: SharedDisk = Arc::new(vec![0u8; 4096]);
        assert!(matches!(
            VmdkDisk::open(file.clone(), &h, vec![f.clone()], None),
            Err(VmdkError::ExtentTooShort { .. })
        ));
        let h = desc("RW 99999999999999 ZERO\n");
        assert!(matches!(
            VmdkDisk::open(file.clone(), &h, vec![], None),
            Err(VmdkError::VirtualSizeTooLarge)
        ));
        let h = desc("RW 8 VMFSSPARSE \"a\"\n");
        assert!(matches!(
            VmdkDisk::open(file.clone(), &h, vec![f.clone()], None),
            Err(VmdkError::UnsupportedExtent { .. })
        ));
        let h = desc("RW 8 SPARSE \"a\"\n");
        let e = VmdkDisk::open(file, &h, vec![f], None).unwrap_err();
        assert!(e.to_string().starts_with("extent 0 (a): not a VMDK"), "{e}");
    }

    #[test]
    fn delta_without_parent_names_the_hint() {
        let h = desc("parentCID=1234abcd\nparentFileNameHint=\"base.vmdk\"\nRW 1 ZERO\n");
        let file: SharedDisk = Arc::new(Vec::new());
        let e = VmdkDisk::open(file, &h, vec![], None).unwrap_err();
        assert!(e.to_string().contains("\"base.vmdk\""), "{e}");
        assert!(e.to_string().contains("1234abcd"), "{e}");
    }
}
