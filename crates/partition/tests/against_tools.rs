//! vhdprep-partition against the reference tools: tables are made by `sgdisk`, `sfdisk` and
//! `fdisk` on small sparse files, and what we read is compared with `sfdisk --json`,
//! `fdisk -l` (4096-byte sectors, which sfdisk 2.38 cannot do on a file) and `partx` (libblkid:
//! PARTUUIDs as Linux sees them, attribute bits).
//!
//! The tools are required: a missing tool fails the test with the install command, it never
//! skips. (`apt-get install gdisk fdisk util-linux`.)

use serde_json::Value;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;
use vhdprep_disk::FileReader;
use vhdprep_finding::Severity;
use vhdprep_partition::gpt::entry::attribute_names;
use vhdprep_partition::types::{GPT_TYPES, MBR_TYPES};
use vhdprep_partition::{
    read_partitions, GptCopy, GptDefect, PartitionError, PartitionKind, PartitionTable,
    PartitionType, TableKind,
};

// ---------------------------------------------------------------------------------------------
// Tools

/// The path of a required tool; panics with the install hint when it is missing.
fn tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return p;
        }
    }
    let package = match name {
        "sgdisk" => "gdisk",
        "sfdisk" | "fdisk" => "fdisk",
        _ => "util-linux",
    };
    panic!(
        "required tool `{name}` not found in PATH or /usr/sbin, /sbin. These tests compare \
         vhdprep-partition with the reference partitioning tools and do not skip: install it \
         with `apt-get install {package}`."
    );
}

fn run(name: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(tool(name));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn run_ok(name: &str, args: &[&str], stdin: Option<&str>) -> String {
    let out = run(name, args, stdin);
    assert!(
        out.status.success(),
        "{name} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A sparse file of `mib` MiB in a fresh temporary directory.
fn image(mib: u64) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.img");
    File::create(&path).unwrap().set_len(mib << 20).unwrap();
    (dir, path)
}

fn read(path: &Path) -> Result<PartitionTable, PartitionError> {
    let r = FileReader::new(File::open(path).unwrap()).unwrap();
    read_partitions(&r)
}

fn sgdisk(path: &Path, args: &[&str]) {
    let mut all: Vec<&str> = args.to_vec();
    all.push(p(path));
    run_ok("sgdisk", &all, None);
}

fn sfdisk_json(path: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    args.push(p(path));
    let out = run_ok("sfdisk", &args, None);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["partitiontable"].clone()
}

/// The partition number at the end of an sfdisk `node` (`/tmp/x/disk.img12` -> 12).
fn node_number(node: &str) -> u32 {
    let digits: String = node
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().unwrap()
}

/// Compares a table with `sfdisk --json` field by field.
fn assert_matches_sfdisk(t: &PartitionTable, j: &Value) {
    let label = j["label"].as_str().unwrap();
    match t.kind {
        TableKind::Gpt => assert_eq!(label, "gpt"),
        TableKind::Mbr => assert_eq!(label, "dos"),
        TableKind::None => panic!("no table, sfdisk says {label}"),
    }
    assert_eq!(t.disk_id().unwrap(), j["id"].as_str().unwrap(), "disk id");
    assert_eq!(u64::from(t.sector_size), j["sectorsize"].as_u64().unwrap());
    if t.kind == TableKind::Gpt {
        let h = &t.gpt.as_ref().unwrap().header;
        assert_eq!(h.first_usable_lba, j["firstlba"].as_u64().unwrap());
        assert_eq!(h.last_usable_lba, j["lastlba"].as_u64().unwrap());
    }
    let theirs = j["partitions"].as_array().unwrap();
    assert_eq!(
        t.partitions.len(),
        theirs.len(),
        "partition count: ours {:#?}\nsfdisk {theirs:#?}",
        t.partitions
    );
    for (ours, s) in t.partitions.iter().zip(theirs) {
        let ctx = format!("partition {}: sfdisk {s}", ours.number);
        assert_eq!(
            ours.number,
            node_number(s["node"].as_str().unwrap()),
            "{ctx}"
        );
        assert_eq!(ours.start_lba, s["start"].as_u64().unwrap(), "{ctx}");
        assert_eq!(ours.sectors(), s["size"].as_u64().unwrap(), "{ctx}");
        let ty = s["type"].as_str().unwrap();
        match ours.partition_type {
            PartitionType::Gpt(g) => {
                assert_eq!(g.to_string(), ty, "{ctx}");
                assert_eq!(
                    ours.unique_guid.unwrap().to_string(),
                    s["uuid"].as_str().unwrap(),
                    "{ctx}"
                );
                assert_eq!(ours.name.as_deref(), s["name"].as_str(), "{ctx}");
                let attrs: Vec<String> = s["attrs"]
                    .as_str()
                    .map(|a| a.split_whitespace().map(String::from).collect())
                    .unwrap_or_default();
                assert_eq!(attribute_names(ours.attributes), attrs, "{ctx}");
            }
            PartitionType::Mbr(b) => {
                assert_eq!(u8::from_str_radix(ty, 16).unwrap(), b, "{ctx}");
                assert_eq!(
                    ours.bootable,
                    s["bootable"].as_bool().unwrap_or(false),
                    "{ctx}"
                );
            }
        }
    }
}

/// `partx` (libblkid) view: (number, start in 512-byte units, sectors in 512-byte units,
/// PARTUUID, flags).
fn partx(path: &Path, sector_size: u32) -> Vec<(u32, u64, u64, String, u64)> {
    let ss = sector_size.to_string();
    let out = run_ok(
        "partx",
        &[
            "-g",
            "-P",
            "-S",
            &ss,
            "-o",
            "NR,START,SECTORS,UUID,FLAGS",
            p(path),
        ],
        None,
    );
    out.lines()
        .map(|line| {
            let field = |k: &str| -> String {
                let start = line.find(&format!("{k}=\"")).unwrap() + k.len() + 2;
                let rest = &line[start..];
                rest[..rest.find('"').unwrap()].to_string()
            };
            (
                field("NR").parse().unwrap(),
                field("START").parse().unwrap(),
                field("SECTORS").parse().unwrap(),
                field("UUID"),
                u64::from_str_radix(field("FLAGS").trim_start_matches("0x"), 16).unwrap(),
            )
        })
        .collect()
}

/// Compares with `partx`: Linux's numbering, byte ranges and PARTUUIDs (lowercase).
fn assert_matches_partx(t: &PartitionTable, path: &Path) {
    let theirs = partx(path, t.sector_size);
    let ours: Vec<_> = t
        .partitions
        .iter()
        .map(|p| {
            (
                p.number,
                p.start_bytes / 512,
                p.size_bytes / 512,
                p.partuuid.clone(),
                p.attributes,
            )
        })
        .collect();
    assert_eq!(ours, theirs, "ours vs partx");
}

fn severities(t: &PartitionTable) -> Vec<Severity> {
    t.findings.iter().map(|f| f.severity).collect()
}

// ---------------------------------------------------------------------------------------------
// GPT

#[test]
fn gpt_several_partitions_with_names_matches_sfdisk_and_partx() {
    let (_d, img) = image(24);
    sgdisk(
        &img,
        &[
            "-U",
            "D2F5B3C1-8A9E-4F00-9C3B-1234567890AB",
            "-n1:2048:+1M",
            "-t1:ef02",
            "-c1:BIOS boot",
            "-n2:0:+4M",
            "-t2:ef00",
            "-c2:EFI System Partition",
            "-n3:0:+2M",
            "-t3:8200",
            "-c3:swap",
            "-n5:0:+6M",
            "-t5:8304",
            "-c5:root ü/x86-64 ✓",
            "-A5:set:2",
            "-A5:set:60",
            "-n7:0:0",
            "-t7:8300",
            "-c7:a name of exactly thirty-six chars",
        ],
    );
    let t = read(&img).unwrap();
    assert!(t.findings.is_empty(), "{:#?}", t.findings);
    assert_eq!(t.kind, TableKind::Gpt);
    assert_eq!(
        t.disk_guid.unwrap().to_string(),
        "D2F5B3C1-8A9E-4F00-9C3B-1234567890AB"
    );
    assert_matches_sfdisk(&t, &sfdisk_json(&img, &[]));
    assert_matches_partx(&t, &img);

    let kinds: Vec<_> = t.partitions.iter().map(|p| (p.number, p.kind)).collect();
    assert_eq!(
        kinds,
        [
            (1, PartitionKind::BiosBoot),
            (2, PartitionKind::Esp),
            (3, PartitionKind::Swap),
            (5, PartitionKind::LinuxRoot),
            (7, PartitionKind::LinuxData)
        ]
    );
    let root = t.partition(5).unwrap();
    assert!(root.bootable);
    assert_eq!(root.name.as_deref(), Some("root ü/x86-64 ✓"));
    let m = t.mbr.as_ref().unwrap();
    assert!(m.protective && !m.hybrid);
}

/// Rewrites an sgdisk-made 512-byte-sector GPT so that its entries are 256 bytes (the extra
/// 128 reserved bytes zero), moving the arrays and usable range and recomputing all CRCs.
/// Written from the spec, independently of the crate's own encoders.
fn rewrite_with_256_byte_entries(path: &Path) {
    let mut d = fs::read(path).unwrap();
    let ss = 512usize;
    let last = d.len() / ss - 1;
    let u32_at = |d: &[u8], o: usize| u32::from_le_bytes(d[o..o + 4].try_into().unwrap());
    let u64_at = |d: &[u8], o: usize| u64::from_le_bytes(d[o..o + 8].try_into().unwrap());
    let h = ss; // primary header offset
    assert_eq!(&d[h..h + 8], b"EFI PART");
    assert_eq!(u32_at(&d, h + 84), 128, "sgdisk writes 128-byte entries");
    let pel = u64_at(&d, h + 72) as usize;
    let count = u32_at(&d, h + 80) as usize;
    let old: Vec<u8> = d[pel * ss..pel * ss + count * 128].to_vec();
    let mut new = Vec::with_capacity(count * 256);
    for e in old.chunks(128) {
        new.extend_from_slice(e);
        new.extend_from_slice(&[0u8; 128]);
    }
    let sectors = new.len() / ss;
    // Clear the old arrays (primary after LBA 1, backup before the last LBA).
    d[2 * ss..(2 + count * 128 / ss) * ss].fill(0);
    d[(last - count * 128 / ss) * ss..last * ss].fill(0);
    let first_usable = 2 + sectors;
    let backup_pel = last - sectors;
    let last_usable = backup_pel - 1;
    d[2 * ss..2 * ss + new.len()].copy_from_slice(&new);
    d[backup_pel * ss..backup_pel * ss + new.len()].copy_from_slice(&new);
    let array_crc = crc32fast::hash(&new);
    let header = d[h..h + 92].to_vec();
    for (lba, alt, pel) in [(1usize, last, 2usize), (last, 1, backup_pel)] {
        let mut x = header.clone();
        x[16..20].fill(0);
        x[24..32].copy_from_slice(&(lba as u64).to_le_bytes());
        x[32..40].copy_from_slice(&(alt as u64).to_le_bytes());
        x[40..48].copy_from_slice(&(first_usable as u64).to_le_bytes());
        x[48..56].copy_from_slice(&(last_usable as u64).to_le_bytes());
        x[72..80].copy_from_slice(&(pel as u64).to_le_bytes());
        x[84..88].copy_from_slice(&256u32.to_le_bytes());
        x[88..92].copy_from_slice(&array_crc.to_le_bytes());
        let crc = crc32fast::hash(&x);
        x[16..20].copy_from_slice(&crc.to_le_bytes());
        d[lba * ss..lba * ss + 92].copy_from_slice(&x);
    }
    fs::write(path, d).unwrap();
}

#[test]
fn gpt_with_256_byte_entries_matches_sfdisk() {
    let (_d, img) = image(8);
    sgdisk(
        &img,
        &[
            "-n1:2048:+1M",
            "-t1:ef00",
            "-c1:esp",
            "-n2:0:+2M",
            "-t2:8304",
            "-c2:root",
            "-n4:0:+2M",
            "-t4:8e00",
        ],
    );
    rewrite_with_256_byte_entries(&img);
    let t = read(&img).unwrap();
    assert_eq!(t.gpt.as_ref().unwrap().header.entry_size, 256);
    assert_eq!(t.gpt.as_ref().unwrap().header.first_usable_lba, 66);
    assert_matches_sfdisk(&t, &sfdisk_json(&img, &[]));
    assert_eq!(
        t.partitions.iter().map(|p| p.number).collect::<Vec<_>>(),
        [1, 2, 4]
    );
    // The one finding: Linux (kernel, libblkid) does not read such a table ...
    assert_eq!(severities(&t), [Severity::Error], "{:#?}", t.findings);
    assert!(t.findings[0].message.contains("256 bytes"));
    // ... and indeed libblkid sees only the protective MBR, no partitions.
    let pttype = run_ok(
        "blkid",
        &["-p", "-o", "value", "-s", "PTTYPE", p(&img)],
        None,
    );
    assert_eq!(
        pttype.trim(),
        "PMBR",
        "libblkid should reject 256-byte GPT entries"
    );
    assert!(partx(&img, 512).is_empty());
}

/// One `fdisk -l` row: number, start, sectors, type GUID, unique GUID, name.
type FdiskRow = (u32, u64, u64, String, String, String);

/// `fdisk -b 4096 -l` columns Device, Start, End, Sectors, Type-UUID, UUID, Name.
fn fdisk_4k_list(path: &Path) -> (String, Vec<FdiskRow>) {
    let out = run_ok(
        "fdisk",
        &[
            "-b",
            "4096",
            "-l",
            "-o",
            "Device,Start,End,Sectors,Type-UUID,UUID,Name",
            p(path),
        ],
        None,
    );
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("Disk identifier: "))
        .unwrap()
        .to_string();
    let dev = p(path);
    let rows = out
        .lines()
        .filter(|l| l.starts_with(dev) && !l.starts_with(&format!("{dev}:")))
        .map(|l| {
            // Six whitespace-separated fields, then the name (which may contain spaces).
            let mut rest = l;
            let mut f = Vec::new();
            for _ in 0..6 {
                rest = rest.trim_start();
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                f.push(rest[..end].to_string());
                rest = &rest[end..];
            }
            (
                node_number(&f[0]),
                f[1].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].clone(),
                f[5].clone(),
                rest.trim().to_string(),
            )
        })
        .collect();
    (id, rows)
}

#[test]
fn gpt_on_4096_byte_sectors_matches_fdisk_and_partx() {
    // sfdisk 2.38 has no sector-size option for files and sgdisk assumes 512 for files;
    // fdisk -b 4096 writes a real 4K-sector GPT.
    let (_d, img) = image(16);
    let script = "g\nn\n1\n256\n+1M\nt\n1\nn\n2\n\n+4M\nt\n2\n23\nn\n3\n\n\n\
                  x\nn\n1\nEFI system\nn\n2\nroot x86-64\nA\n2\nr\nw\n";
    run_ok("fdisk", &["-b", "4096", p(&img)], Some(script));
    let t = read(&img).unwrap();
    assert!(t.findings.is_empty(), "{:#?}", t.findings);
    assert_eq!(t.sector_size, 4096);
    let (id, rows) = fdisk_4k_list(&img);
    assert_eq!(t.disk_id().unwrap(), id);
    let ours: Vec<_> = t
        .partitions
        .iter()
        .map(|p| {
            (
                p.number,
                p.start_lba,
                p.sectors(),
                p.partition_type.to_string(),
                p.unique_guid.unwrap().to_string(),
                p.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(ours, rows, "ours vs fdisk -b 4096 -l");
    assert_eq!(rows.len(), 3);
    assert_eq!(t.partition(1).unwrap().start_bytes, 256 * 4096);
    assert_eq!(t.partition(2).unwrap().kind, PartitionKind::LinuxRoot);
    assert!(t.partition(2).unwrap().bootable);
    assert_matches_partx(&t, &img);
}

#[test]
fn corrupted_primary_header_uses_backup_like_sfdisk() {
    let (_d, img) = image(8);
    sgdisk(
        &img,
        &[
            "-n1:2048:+1M",
            "-t1:ef00",
            "-c1:esp",
            "-n2:0:+2M",
            "-t2:8300",
            "-c2:root",
        ],
    );
    let before = sfdisk_json(&img, &[]);
    // Flip one byte of the disk GUID in the primary header (CRC-covered, CRC not fixed).
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    f.seek(SeekFrom::Start(512 + 60)).unwrap();
    let mut b = [0u8; 1];
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(512 + 60)).unwrap();
    f.write_all(&[!b[0]]).unwrap();
    drop(f);

    let t = read(&img).unwrap();
    let g = t.gpt.as_ref().unwrap();
    assert_eq!(g.used, GptCopy::Backup);
    assert!(
        matches!(g.primary_defect, Some(GptDefect::HeaderCrc { .. })),
        "{:?}",
        g.primary_defect
    );
    assert_eq!(severities(&t), [Severity::Error], "{:#?}", t.findings);
    assert_eq!(t.findings[0].id, "BOOT-001");
    // sfdisk also falls back to the backup and sees the same table as before.
    let after = run("sfdisk", &["--json", p(&img)], None);
    assert!(after.status.success());
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("backup appears OK"),
        "sfdisk should report that it uses the backup"
    );
    let j: Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(j["partitiontable"], before);
    assert_matches_sfdisk(&t, &before);
    // sgdisk reads it too and says the main header is bad.
    let verify = run("sgdisk", &["-v", p(&img)], None);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(said.contains("Main header: ERROR"), "{said}");

    // The remediation we suggest (`sgdisk -e`) restores a clean table.
    sgdisk(&img, &["-e"]);
    let fixed = read(&img).unwrap();
    assert!(fixed.findings.is_empty(), "{:#?}", fixed.findings);
    assert_eq!(fixed.gpt.as_ref().unwrap().used, GptCopy::Primary);
    assert_eq!(fixed.partitions, t.partitions);
}

#[test]
fn both_headers_corrupted_is_a_clear_error() {
    let (_d, img) = image(8);
    sgdisk(&img, &["-n1:2048:+1M", "-t1:8300"]);
    let mut d = fs::read(&img).unwrap();
    let len = d.len();
    d[512 + 60] ^= 0xff;
    d[len - 512 + 60] ^= 0xff;
    fs::write(&img, &d).unwrap();
    match read(&img) {
        Err(e @ PartitionError::GptUnreadable { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("neither copy is usable"), "{msg}");
            assert!(msg.contains("CRC32"), "{msg}");
        }
        other => panic!("expected GptUnreadable, got {other:?}"),
    }
    // sfdisk finds no GPT either: it falls back to showing the bare protective MBR.
    let j = sfdisk_json(&img, &[]);
    assert_eq!(j["label"], "dos");
    let parts = j["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0]["type"], "ee");
}

#[test]
fn grown_disk_backup_not_at_end_then_fixed_by_sgdisk_e() {
    // What happens when an image is padded to a whole MiB without moving the backup GPT.
    let (_d, img) = image(8);
    sgdisk(&img, &["-n1:2048:+1M", "-t1:ef00", "-n2:0:0", "-t2:8300"]);
    File::options()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(9 << 20)
        .unwrap();
    let t = read(&img).unwrap();
    assert_eq!(t.gpt.as_ref().unwrap().used, GptCopy::Primary);
    assert_eq!(t.gpt.as_ref().unwrap().backup_defect, None);
    let msgs: Vec<_> = t
        .findings
        .iter()
        .map(|f| (f.severity, f.message.as_str()))
        .collect();
    assert!(
        msgs.iter()
            .any(|(s, m)| *s == Severity::Warning && m.contains("resized")),
        "{msgs:?}"
    );
    let out = run("sfdisk", &["--json", p(&img)], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not on the end of the device"));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_matches_sfdisk(&t, &j["partitiontable"]);

    sgdisk(&img, &["-e"]);
    let fixed = read(&img).unwrap();
    // sgdisk -e moves the backup but leaves the protective MBR size: an info finding only.
    assert!(
        fixed.findings.iter().all(|f| f.severity == Severity::Info),
        "{:#?}",
        fixed.findings
    );
    assert_eq!(fixed.gpt.as_ref().unwrap().backup_lba, (9 << 11) - 1);
}

#[test]
fn hybrid_mbr_matches_sfdisk_both_views() {
    let (_d, img) = image(8);
    sgdisk(
        &img,
        &[
            "-n1:2048:+1M",
            "-t1:ef00",
            "-n2:0:+2M",
            "-t2:8300",
            "-n3:0:0",
            "-t3:8200",
            "-h",
            "1:2",
        ],
    );
    let t = read(&img).unwrap();
    assert_eq!(t.kind, TableKind::Gpt);
    assert_matches_sfdisk(&t, &sfdisk_json(&img, &[]));
    let m = t.mbr.as_ref().unwrap();
    assert!(m.hybrid);
    assert_eq!(severities(&t), [Severity::Info], "{:#?}", t.findings);
    // The MBR half, as `sfdisk -Y dos` reads the nested table.
    let dos = sfdisk_json(&img, &["-Y", "dos"]);
    let theirs = dos["partitions"].as_array().unwrap();
    assert_eq!(m.primaries.len(), theirs.len());
    for (ours, s) in m.primaries.iter().zip(theirs) {
        assert_eq!(ours.number, node_number(s["node"].as_str().unwrap()));
        assert_eq!(ours.start_lba, s["start"].as_u64().unwrap());
        assert_eq!(ours.sectors(), s["size"].as_u64().unwrap());
        assert_eq!(
            ours.partition_type,
            PartitionType::Mbr(u8::from_str_radix(s["type"].as_str().unwrap(), 16).unwrap())
        );
    }
    assert_eq!(m.primaries[0].kind, PartitionKind::GptProtective);
    assert_eq!(m.primaries[1].kind, PartitionKind::Esp);
}

// ---------------------------------------------------------------------------------------------
// MBR

#[test]
fn mbr_primaries_extended_and_logicals_match_sfdisk_and_partx() {
    let (_d, img) = image(8);
    let script = "label: dos\nlabel-id: 0x5f2b8c3e\n\
                  start=2048, size=2048, type=83, bootable\n\
                  start=4096, size=2048, type=c\n\
                  start=6144, size=1024, type=ef\n\
                  start=8192, size=8192, type=5\n\
                  start=9216, size=1024, type=82\n\
                  start=11264, size=1024, type=8e\n\
                  start=13312, size=2048, type=83\n";
    run_ok("sfdisk", &[p(&img)], Some(script));
    let t = read(&img).unwrap();
    assert!(t.findings.is_empty(), "{:#?}", t.findings);
    assert_eq!(t.kind, TableKind::Mbr);
    assert_matches_sfdisk(&t, &sfdisk_json(&img, &[]));
    assert_matches_partx(&t, &img);
    let got: Vec<_> = t
        .partitions
        .iter()
        .map(|p| (p.number, p.kind, p.logical, p.partuuid.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (1, PartitionKind::LinuxData, false, "5f2b8c3e-01"),
            (2, PartitionKind::MicrosoftData, false, "5f2b8c3e-02"),
            (3, PartitionKind::Esp, false, "5f2b8c3e-03"),
            (4, PartitionKind::Extended, false, "5f2b8c3e-04"),
            (5, PartitionKind::Swap, true, "5f2b8c3e-05"),
            (6, PartitionKind::Lvm, true, "5f2b8c3e-06"),
            (7, PartitionKind::LinuxData, true, "5f2b8c3e-07"),
        ]
    );
    assert!(!t.mbr.as_ref().unwrap().boot_code_present);
}

#[test]
fn mbr_with_a_gap_in_the_primaries() {
    // Primary slots 1 and 3 used, 2 empty: numbers keep the slots, like Linux.
    let (_d, img) = image(4);
    let script = "label: dos\nlabel-id: 0x01020304\n\
                  1 : start=2048, size=1024, type=83\n\
                  3 : start=4096, size=1024, type=82\n";
    run_ok("sfdisk", &[p(&img)], Some(script));
    let t = read(&img).unwrap();
    assert!(t.findings.is_empty(), "{:#?}", t.findings);
    assert_matches_sfdisk(&t, &sfdisk_json(&img, &[]));
    assert_matches_partx(&t, &img);
    assert_eq!(t.partition(3).unwrap().partuuid, "01020304-03");
}

#[test]
fn blank_disk_has_no_table_like_sfdisk() {
    let (_d, img) = image(2);
    let t = read(&img).unwrap();
    assert_eq!(t.kind, TableKind::None);
    assert!(t.partitions.is_empty());
    assert_eq!(severities(&t), [Severity::Error]);
    let out = run("sfdisk", &["--json", p(&img)], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("does not contain a recognized partition table"));
}

// ---------------------------------------------------------------------------------------------
// Catalogue

/// `sfdisk --label <l> -T`: (id, name) pairs.
fn sfdisk_types(label: &str) -> Vec<(String, String)> {
    run_ok("sfdisk", &["--label", label, "-T"], None)
        .lines()
        .filter_map(|l| {
            let (id, name) = l.trim().split_once(char::is_whitespace)?;
            (id != "Id").then(|| (id.to_string(), name.trim().to_string()))
        })
        .collect()
}

#[test]
fn type_catalogue_agrees_with_sfdisk() {
    let gpt = sfdisk_types("gpt");
    assert!(gpt.len() > 50, "could not parse sfdisk --label gpt -T");
    for t in GPT_TYPES {
        let guid = t.guid.to_string();
        match gpt.iter().find(|(id, _)| *id == guid) {
            Some((_, name)) => assert_eq!(name, t.name, "{guid}"),
            // sfdisk 2.38 does not list the LUKS type; sgdisk does (code 8309).
            None => assert_eq!(
                t.name, "Linux LUKS",
                "{guid} {} is unknown to sfdisk",
                t.name
            ),
        }
    }
    let dos = sfdisk_types("dos");
    assert!(dos.len() > 50, "could not parse sfdisk --label dos -T");
    for t in MBR_TYPES {
        let id = format!("{:x}", t.byte);
        let (_, name) = dos
            .iter()
            .find(|(i, _)| *i == id)
            .unwrap_or_else(|| panic!("type {id} not in sfdisk's list"));
        assert_eq!(name, t.name, "type {id}");
    }
}

#[test]
fn luks_type_agrees_with_sgdisk() {
    let (_d, img) = image(2);
    sgdisk(&img, &["-n1:2048:+512K", "-t1:8309"]);
    let t = read(&img).unwrap();
    assert_eq!(t.partition(1).unwrap().kind, PartitionKind::Luks);
    let info = run_ok("sgdisk", &["-i1", p(&img)], None);
    assert!(
        info.contains(&format!(
            "{} (Linux LUKS)",
            t.partition(1).unwrap().partition_type
        )),
        "{info}"
    );
}
