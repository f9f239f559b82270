//! Fuzz targets: container formats and partition tables.
//!
//! # The sparse input format
//!
//! Real disks and volumes are large and mostly zeros: a GPT keeps its backup in the last
//! sectors of the disk, XFS will not make a filesystem under 300 MiB. Targets that read a
//! whole disk or volume therefore take a *sparse* input, materialised by [`SparseDisk`]:
//!
//! ```text
//! input = size:u64le chunk*
//! chunk = offset:u64le len:u32le bytes[len]
//! ```
//!
//! The disk is `size` bytes long (at most [`MAX_SPARSE_SIZE`]) and reads as zeros except where a
//! chunk puts its bytes; a later chunk overwrites an earlier one, bytes past `size` are dropped,
//! and the last chunk may be cut short by the end of the input. An input shorter than 8 bytes is
//! an empty disk. `fuzz/make-seeds/sparse.py` turns a real image into this format, keeping only
//! its non-zero 4 KiB blocks.

use crate::Target;
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use vhdprep_disk::{DiskImage, ReadAt, SharedDisk};

/// The container and partition-table targets.
pub const TARGETS: &[Target] = &[
    Target {
        name: "container_detect",
        about: "every container probe (VHD footer at either end, VHDX, qcow2 with its header \
                extensions, qcow, QED, VDI, VMDK descriptors, Parallels, Bochs, cloop, DMG \
                trailer, LUKS1/2 and secondary headers, BitLocker, compressed streams, tar) and \
                the refusal built from the result: vhdprep_disk::detect",
        run: container_detect,
    },
    Target {
        name: "vhd_dynamic",
        about: "a whole image file (sparse format): DiskImage::from_reader, dynamic header, BAT, \
                block bitmaps, reads and next_data of the virtual disk, container findings",
        run: vhd_dynamic,
    },
    Target {
        name: "qcow2",
        about: "a whole qcow2 file (sparse format): vhdprep_disk::qcow2 header, extensions, \
                snapshot table, L1/L2 tables (standard and extended), compressed clusters, \
                reads and next_data of the virtual disk, over a backing disk when one is named",
        run: qcow2,
    },
    Target {
        name: "vhdx",
        about: "a whole VHDX file (sparse format): Vhdx::read_header (both headers, region table, \
                log replay, metadata, parent locator), VhdxDisk::open (BAT), reads and next_data, \
                with an all-zero parent for differencing disks",
        run: vhdx,
    },
    Target {
        name: "vmdk",
        about: "a whole VMDK file (sparse format): Vmdk::read_header (sparse header, footer, \
                embedded or separate descriptor), VmdkDisk::open (grain directory, extents \
                given as the input again, a zero parent for a delta), reads and next_data \
                (grain tables, compressed grains)",
        run: vmdk,
    },
    Target {
        name: "ova",
        about: "a whole OVA file: the tar listing (ustar, pax, GNU), the OVF descriptor, \
                and each disk member read in place as a VMDK",
        run: ova,
    },
    Target {
        name: "partition_table",
        about: "a whole disk (sparse format): read_partitions (MBR, EBR chain, protective and \
                hybrid MBR, both GPT copies, 512 and 4096-byte sectors) and its findings",
        run: partition_table,
    },
];

/// Largest disk a sparse input may declare: 64 TiB, the largest virtual disk vhdprep opens
/// from a dynamic VHD, and far more than any seed needs; bigger values are clamped to it.
pub const MAX_SPARSE_SIZE: u64 = vhdprep_disk::vhd::dynamic::MAX_DYNAMIC_SIZE;

/// Size of the pages [`SparseDisk`] stores chunks in.
const PAGE: u64 = 512;

/// Most pages one sparse input materialises (8 MiB): chunks past it are dropped, so that an
/// input of many one-byte chunks cannot ask for 512 bytes of memory per 13 bytes of input.
const MAX_PAGES: usize = 16 * 1024;

/// A disk that reads as zeros except for the pages a sparse input fills (see the module doc).
#[derive(Debug, Default)]
pub struct SparseDisk {
    len: u64,
    pages: BTreeMap<u64, [u8; PAGE as usize]>,
}

impl SparseDisk {
    /// Materialises a sparse input.
    pub fn parse(data: &[u8]) -> SparseDisk {
        let mut disk = SparseDisk::default();
        let Some((size, mut rest)) = take_u64(data) else {
            return disk;
        };
        disk.len = size.min(MAX_SPARSE_SIZE);
        while let Some((offset, after)) = take_u64(rest) {
            let Some((len, after)) = take_u32(after) else {
                break;
            };
            let n = (len as usize).min(after.len());
            disk.put(offset, &after[..n]);
            rest = &after[n..];
        }
        disk
    }

    /// Writes `bytes` at `offset`, dropping what lies past the end or past [`MAX_PAGES`].
    fn put(&mut self, offset: u64, bytes: &[u8]) {
        let end = offset.saturating_add(bytes.len() as u64).min(self.len);
        let mut at = offset;
        while at < end {
            let page = at / PAGE;
            if !self.pages.contains_key(&page) && self.pages.len() >= MAX_PAGES {
                return;
            }
            let in_page = (at % PAGE) as usize;
            let n = (PAGE as usize - in_page).min((end - at) as usize);
            let src = (at - offset) as usize;
            let p = self.pages.entry(page).or_insert([0; PAGE as usize]);
            p[in_page..in_page + n].copy_from_slice(&bytes[src..src + n]);
            at += n as u64;
        }
    }

    /// The disk as a shared reader.
    pub fn shared(data: &[u8]) -> SharedDisk {
        Arc::new(SparseDisk::parse(data))
    }
}

impl ReadAt for SparseDisk {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf
            .len()
            .min(usize::try_from(self.len - offset).unwrap_or(usize::MAX));
        let buf = &mut buf[..n];
        buf.fill(0);
        let end = offset + n as u64;
        for (&page, bytes) in self.pages.range(offset / PAGE..end.div_ceil(PAGE)) {
            let p_start = page * PAGE;
            let from = p_start.max(offset);
            let to = (p_start + PAGE).min(end);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&bytes[(from - p_start) as usize..(to - p_start) as usize]);
        }
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.len
    }
}

fn take_u64(b: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = b.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*head), rest))
}

fn take_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = b.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), rest))
}

/// A number derived from the input, to pick offsets and options that vary with it.
pub(crate) fn input_hash(data: &[u8]) -> u64 {
    // FNV-1a: stable across runs and platforms, so a saved input replays the same way.
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The input is a whole file: detection reads its first 64 KiB, its last 512 bytes, and where
/// a probe's header points (LUKS2 secondary headers, BitLocker To Go metadata).
pub fn container_detect(data: &[u8]) {
    if let Ok(d) = vhdprep_disk::detect(&data) {
        let _ = d.matched();
        let path = std::path::Path::new("fuzz.img");
        let _ = vhdprep_disk::refusal::refusal(path, d.format, d.encryption).to_string();
        let _ = vhdprep_disk::refusal::remedy(d.format, d.encryption, path).commands();
        if let Some((footer, _)) = d.footer {
            let _ = footer.virtual_size();
            let _ = footer.checksum_valid();
            let _ = footer.creator_app_text();
            let _ = footer.size_source();
        }
    }
}

/// Most bytes one read of the virtual disk asks for: crosses block boundaries for the small
/// block sizes a fuzzer writes, without making each run slow.
const VHD_READ: usize = 64 * 1024;
/// Most data ranges `next_data` is asked for.
const VHD_DATA_RANGES: usize = 64;

/// The input is a whole image file in the sparse format (typically a dynamic VHD): opened as
/// `DiskImage::open` opens a file, then its virtual disk is read at offsets derived from the
/// input and walked with `next_data`.
pub fn vhd_dynamic(data: &[u8]) {
    let Ok(image) = DiskImage::from_reader("fuzz.vhd", SparseDisk::shared(data)) else {
        return;
    };
    let _ = image.report();
    let _ = vhdprep_disk::findings::container_findings(&image);
    let Ok(disk) = image.disk() else {
        return;
    };
    read_disk(disk.as_ref(), input_hash(data));
}

/// The input is a whole qcow2 file in the sparse format: its header read and shown, its
/// virtual disk opened (over a small backing disk when the header names one, so that the
/// backing paths run too) and read like [`vhd_dynamic`]'s.
pub fn qcow2(data: &[u8]) {
    use vhdprep_disk::qcow2::{read_header, Qcow2Disk};
    let file = SparseDisk::shared(data);
    let header = match read_header(&*file) {
        Ok(h) => h,
        Err(e) => return drop(e.to_string()),
    };
    let _ = format!("{header:?}");
    let h = input_hash(data);
    let parent = header.backing_file.as_ref().map(|_| {
        // A backing disk of a derived length, with bytes that are not zeros.
        let len = (h % (8 << 20)) as usize;
        Arc::new(vec![0x5au8; len]) as SharedDisk
    });
    match Qcow2Disk::open(file, header, parent) {
        Ok(disk) => read_disk(&disk, h),
        Err(e) => drop(e.to_string()),
    }
}

/// The input is a whole VHDX file in the sparse format: its header is parsed (replaying the
/// log), then its virtual disk opened (a differencing disk over an all-zero parent of its size)
/// and read like [`vhd_dynamic`]'s.
pub fn vhdx(data: &[u8]) {
    use vhdprep_disk::vhdx::{Vhdx, VhdxDisk};
    let file = SparseDisk::shared(data);
    let Ok(header) = Vhdx::read_header(&*file) else {
        return;
    };
    let _ = format!("{header:?}");
    let parent: Option<SharedDisk> = header.has_parent().then(|| {
        Arc::new(SparseDisk {
            len: header.virtual_size(),
            pages: BTreeMap::new(),
        }) as SharedDisk
    });
    let Ok(disk) = VhdxDisk::open(file, header, parent) else {
        return;
    };
    let _ = disk.allocated_blocks();
    read_disk(&disk, input_hash(data));
}

/// Opens `file` as a VMDK as the DiskImage layer will: the extents it names are the file
/// itself (a descriptor pointing at flat or sparse data), a delta gets a 1 MiB zero parent.
fn open_vmdk(file: SharedDisk) -> Option<vhdprep_disk::vmdk::VmdkDisk> {
    use vhdprep_disk::vmdk::{Vmdk, VmdkDisk};
    let header = Vmdk::read_header(file.as_ref()).ok()?;
    let _ = header.virtual_size();
    let _ = header.create_type();
    let _ = format!("{header:?}");
    // At most 64 extents handed over: each is the same reader.
    let n = header.extent_files().len().min(64);
    let extents = vec![file.clone(); n];
    let parent: Option<SharedDisk> = header
        .parent()
        .map(|_| Arc::new(vec![0u8; 1 << 20]) as SharedDisk);
    match VmdkDisk::open(file, &header, extents, parent) {
        Ok(d) => Some(d),
        Err(e) => {
            let _ = e.to_string();
            None
        }
    }
}

/// The input is a whole VMDK in the sparse format (a monolithicSparse or streamOptimized
/// file, or a descriptor file).
pub fn vmdk(data: &[u8]) {
    if let Some(disk) = open_vmdk(SparseDisk::shared(data)) {
        read_disk(&disk, input_hash(data));
    }
}

/// The input is a whole OVA (a tar archive, not in the sparse format: tar headers are dense).
pub fn ova(data: &[u8]) {
    use vhdprep_disk::ova::Ova;
    let file: SharedDisk = Arc::new(data.to_vec());
    let Ok(o) = Ova::read(file.as_ref()) else {
        return;
    };
    let _ = o.ovf_first();
    let Ok(disks) = o.disks() else {
        return;
    };
    for d in disks.iter().take(4) {
        let slice: SharedDisk = Arc::new(Ova::disk_slice(file.clone(), &d.member));
        if let Some(disk) = open_vmdk(slice) {
            read_disk(&disk, input_hash(data));
        }
    }
}

/// Reads `disk` at its start, its end, a derived offset, and along its data ranges.
pub(crate) fn read_disk(disk: &dyn ReadAt, h: u64) {
    let len = disk.len();
    let mut buf = vec![0u8; VHD_READ];
    let derived = if len == 0 { 0 } else { h % len };
    let odd = (h >> 32) as usize % VHD_READ + 1;
    for (at, n) in [
        (0, VHD_READ),
        (derived, odd),
        (len.saturating_sub(odd as u64), odd),
        (len.saturating_sub(1), 2),
        (len, 1),
    ] {
        let _ = disk.read_at(&mut buf[..n], at);
        let _ = disk.read_exact_at(&mut buf[..n], at);
    }
    let mut at = 0;
    for _ in 0..VHD_DATA_RANGES {
        let Ok(Some(r)) = disk.next_data(at) else {
            break;
        };
        if r.end <= at {
            break; // no progress: the loop a caller would be stuck in
        }
        let n = (r.end - r.start).min(4096) as usize;
        let _ = disk.read_exact_at(&mut buf[..n], r.start);
        at = r.end;
    }
}

/// The input is a whole disk in the sparse format. Its partition table is read with the
/// detected sector size and, for some inputs, with 4096-byte sectors forced; every partition
/// and finding is then looked at the way `inspect` prints them.
pub fn partition_table(data: &[u8]) {
    use vhdprep_partition::{read_partitions, read_partitions_with, ReadOptions};
    let disk = SparseDisk::parse(data);
    let mut tables = vec![read_partitions(&disk)];
    let h = input_hash(data);
    if h % 4 == 0 {
        let forced = [512, 4096, 1024, 3000][(h >> 8) as usize % 4];
        let options = ReadOptions {
            sector_size: Some(forced),
        };
        tables.push(read_partitions_with(&disk, options));
    }
    for table in tables {
        match table {
            Ok(t) => look_at_table(&disk, &t),
            Err(e) => drop(e.to_string()),
        }
    }
    // What convert and fix ask of the table when they pad the disk (and one MiB more, as they
    // do when the new backup GPT would overlap the old disk).
    use vhdprep_disk::write::TablePlanner;
    let size = vhdprep_disk::round_up_to_mib(disk.len());
    for grown in [size, size + vhdprep_disk::MIB] {
        match vhdprep_partition::gpt::GptRelocator.plan(&disk, grown) {
            Ok(u) => drop(format!("{u:?}")),
            Err(e) => drop(e.to_string()),
        }
    }
}

/// Everything a caller takes from a table: ids, partitions and their slices, the findings
/// (through `Debug`, which formats every field).
fn look_at_table(disk: &SparseDisk, t: &vhdprep_partition::PartitionTable) {
    let _ = t.disk_id();
    let _ = format!("{t:?}");
    for p in &t.partitions {
        let _ = p.byte_range();
        let _ = p.sectors();
        let slice = p.slice(disk);
        let mut sector = [0u8; 512];
        let _ = slice.read_at(&mut sector, 0);
        let _ = slice.read_at(&mut sector, slice.len().saturating_sub(512));
        let _ = t.partition(p.number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::seed;

    #[test]
    fn sparse_disk_reads_chunks_and_zeros_elsewhere() {
        let mut input = 10_000u64.to_le_bytes().to_vec();
        for (offset, bytes) in [(510u64, &b"abcd"[..]), (9_998, b"xyz"), (511, b"B")] {
            input.extend_from_slice(&offset.to_le_bytes());
            input.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            input.extend_from_slice(bytes);
        }
        let disk = SparseDisk::parse(&input);
        assert_eq!(disk.len(), 10_000);
        let mut buf = [9u8; 6];
        disk.read_exact_at(&mut buf, 509).unwrap();
        assert_eq!(
            &buf, b"\0aBcd\0",
            "a later chunk overwrites, across a page boundary"
        );
        let mut tail = [9u8; 4];
        assert_eq!(
            disk.read_at(&mut tail, 9_997).unwrap(),
            3,
            "short read at the end"
        );
        assert_eq!(&tail[..3], b"\0xy", "bytes past the size are dropped");
        assert_eq!(SparseDisk::parse(&[1, 2, 3]).len(), 0);
        assert_eq!(
            SparseDisk::parse(&u64::MAX.to_le_bytes()).len(),
            MAX_SPARSE_SIZE
        );
    }

    #[test]
    fn partition_seeds_hold_the_tables_the_tools_wrote() {
        use vhdprep_partition::{read_partitions, TableKind};
        let gpt =
            read_partitions(&SparseDisk::parse(&seed("partition_table", "sgdisk-gpt"))).unwrap();
        assert_eq!(gpt.kind, TableKind::Gpt);
        assert_eq!(gpt.partitions.len(), 3);
        let gpt = gpt.gpt.unwrap();
        assert_eq!((gpt.primary_defect, gpt.backup_defect), (None, None));
        let k4 = read_partitions(&SparseDisk::parse(&seed(
            "partition_table",
            "crafted-gpt-4k",
        )))
        .unwrap();
        assert_eq!((k4.sector_size, k4.partitions.len()), (4096, 2));
        assert_eq!(k4.gpt.unwrap().backup_defect, None);
        let mbr = SparseDisk::parse(&seed("partition_table", "sfdisk-mbr-logicals"));
        let mbr = read_partitions(&mbr).unwrap();
        assert_eq!(mbr.kind, TableKind::Mbr);
        let numbers: Vec<u32> = mbr.partitions.iter().map(|p| p.number).collect();
        assert_eq!(numbers, [1, 2, 5, 6, 7]);
    }

    #[test]
    fn qcow2_seeds_reach_the_reader() {
        use vhdprep_disk::qcow2::{read_header, Qcow2Disk};
        let open = |name: &str| {
            let file = SparseDisk::shared(&seed("qcow2", name));
            let h = read_header(&*file).unwrap();
            (file, h)
        };
        for name in ["qemu-zlib.qcow2", "qemu-zstd.qcow2"] {
            let (file, h) = open(name);
            let disk = Qcow2Disk::open(file, h, None).unwrap();
            let mut b = [0u8; 12];
            disk.read_exact_at(&mut b, 0).unwrap();
            assert_eq!(&b, b"1\n2\n3\n4\n5\n6\n", "{name}");
        }
        let (_, h) = open("qemu-child.qcow2");
        assert_eq!(h.backing_file.as_deref(), Some("v2.qcow2"));
        let (_, h) = open("qemu-snap.qcow2");
        assert_eq!(h.snapshots[0].name, "before");
        let (file, h) = open("qemu-extl2.qcow2");
        assert!(h.has_extended_l2());
        let disk = Qcow2Disk::open(file, h, None).unwrap();
        let mut b = [0u8; 2];
        disk.read_exact_at(&mut b, 70000 + 2999).unwrap();
        assert_eq!(b, [0xcd, 0]);
    }

    #[test]
    fn vhdx_seeds_open_with_their_data() {
        use vhdprep_disk::vhdx::{Vhdx, VhdxDisk};
        let open = |name: &str, parent: Option<SharedDisk>| {
            let file = SparseDisk::shared(&seed("vhdx", name));
            let h = Vhdx::read_header(&*file).unwrap();
            (h.clone(), VhdxDisk::open(file, h, parent).unwrap())
        };
        let mut b = [0u8; 2];
        let (h, d) = open("qemu-written.vhdx", None);
        assert!(h.creator.starts_with("QEMU") && !h.log.non_empty);
        d.read_exact_at(&mut b, 4095).unwrap();
        assert_eq!(b, [0xab, 0]);
        d.read_exact_at(&mut b[..1], (8191 << 10) + 1023).unwrap();
        assert_eq!(b[0], 0x11);
        let (_, d) = open("qemu-fixed.vhdx", None);
        d.read_exact_at(&mut b, (1 << 20) + 4095).unwrap();
        assert_eq!(b, [0x22, 0]);
        // The dirty log holds the BAT update of the killed write: replayed, the data is there.
        let (h, d) = open("qemu-dirty-log.vhdx", None);
        assert!(
            h.log.non_empty && h.log.entries_replayed >= 1,
            "{:?}",
            h.log
        );
        d.read_exact_at(&mut b, (5 << 20) + 4095).unwrap();
        assert_eq!(b, [0x55, 0]);
        let (h, d) = open("lss4096.vhdx", None);
        assert_eq!(h.metadata.logical_sector_size, 4096);
        d.read_exact_at(&mut b, 4095).unwrap();
        assert_eq!(b, [0xab, 0]);
        // Block 0 partly present: sectors 0-3 and 16-23 from the child, the rest from the
        // (all-zero) parent.
        let (h, _) = open("qemu-written.vhdx", None);
        let parent: SharedDisk = Arc::new(SparseDisk {
            len: h.virtual_size(),
            pages: BTreeMap::new(),
        });
        let (h, d) = open("differencing.vhdx", Some(parent));
        let l = h.metadata.parent_locator.unwrap();
        assert_eq!(l.relative_path(), Some(".\\parent.vhdx"));
        let mut sectors = vec![0u8; 24 * 512];
        d.read_exact_at(&mut sectors, 0).unwrap();
        assert!(sectors[..4 * 512].iter().all(|&x| x == 0xab));
        assert!(sectors[4 * 512..16 * 512].iter().all(|&x| x == 0));
        // Sectors 16-23 lie past the 4 KiB qemu-io wrote: zeros in the child too.
        assert!(sectors[16 * 512..].iter().all(|&x| x == 0));
    }

    #[test]
    fn vmdk_and_ova_seeds_open_with_their_data() {
        // The zeroed seed had the grain at 64 KiB zeroed by `qemu-io write -z`.
        for (name, want) in [
            ("qemu-monolithicSparse.vmdk", b"vhdprep vmdk seed"),
            ("qemu-streamOptimized.vmdk", b"vhdprep vmdk seed"),
            ("qemu-zeroed.vmdk", &[0u8; 17]),
        ] {
            let disk = open_vmdk(SparseDisk::shared(&seed("vmdk", name))).unwrap();
            let mut b = [1u8; 17];
            disk.read_exact_at(&mut b, 70000).unwrap();
            assert_eq!(&b, want, "{name}");
            assert!(disk.next_data(0).unwrap().is_some(), "{name}");
        }
        let delta = vhdprep_disk::vmdk::Vmdk::read_header(
            SparseDisk::shared(&seed("vmdk", "qemu-delta.vmdk")).as_ref(),
        )
        .unwrap();
        assert!(delta.parent().is_some());
        for format in ["ustar", "pax", "gnu"] {
            let file: SharedDisk = Arc::new(seed("ova", &format!("tar-{format}.ova")));
            let o = vhdprep_disk::ova::Ova::read(file.as_ref()).unwrap();
            let d = &o.disks().unwrap()[0];
            assert_eq!(d.disk.capacity, Some(1 << 20));
            let slice = Arc::new(vhdprep_disk::ova::Ova::disk_slice(file.clone(), &d.member));
            let disk = open_vmdk(slice).unwrap();
            let mut b = [0u8; 16];
            disk.read_exact_at(&mut b, 4096).unwrap();
            assert_eq!(&b, b"vhdprep ova seed", "{format}");
        }
    }

    #[test]
    fn vhd_seeds_open_as_dynamic_disks_with_their_data() {
        let image = DiskImage::from_reader(
            "written.vhd",
            SparseDisk::shared(&seed("vhd_dynamic", "qemu-written.vhd")),
        )
        .unwrap();
        assert_eq!(image.format(), vhdprep_disk::Format::VhdDynamic);
        let disk = image.disk().unwrap();
        let mut b = [0u8; 2];
        disk.read_exact_at(&mut b, 4095).unwrap();
        assert_eq!(b, [0xab, 0]);
        disk.read_exact_at(&mut b[..1], (8191 << 10) + 1023)
            .unwrap();
        assert_eq!(b[0], 0x11);
    }
}
