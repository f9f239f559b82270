//! OVA archives made by GNU tar (ustar, pax, and GNU format with a long name) around a
//! stream-optimized VMDK made by qemu-img: the members equal Python's `tarfile` listing
//! (names, data offsets, sizes), the disk read in place equals its raw source with qemu-img's
//! virtual size and the OVF's capacity, and a truncated archive is a clean error.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use vhdprep_disk::ova::{Ova, OvaError};
use vhdprep_disk::vmdk::{Vmdk, VmdkDisk};
use vhdprep_disk::{FileReader, ReadAt, SharedDisk};

const MIB: u64 = 1 << 20;

fn tool(name: &str, package: &str, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(name)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "required tool `{name}` could not be run ({e}); install Debian package `{package}`"
            )
        });
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A raw source: pseudo-random data at a few places, holes elsewhere.
fn make_source(path: &Path, size: u64) {
    use std::os::unix::fs::FileExt;
    let f = fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for at in [0, 3 * MIB + 777, 17 * MIB, size - 4096] {
        let b: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        f.write_all_at(&b, at).unwrap();
    }
}

fn ovf(disk_file: &str, file_size: u64, capacity: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References>
    <File ovf:href="{disk_file}" ovf:id="file1" ovf:size="{file_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm">
    <Info>A virtual machine</Info>
  </VirtualSystem>
</Envelope>
"#
    )
}

/// `name offset_data size` of each member, by Python's tarfile.
fn python_listing(ova: &Path) -> Vec<(String, u64, u64)> {
    let script = "import sys, tarfile\nfor m in tarfile.open(sys.argv[1]):\n    print(m.name, m.offset_data, m.size)\n";
    let out = tool(
        "python3",
        "python3",
        &["-c", script, ova.to_str().unwrap()],
        Path::new("/"),
    );
    out.lines()
        .map(|l| {
            let mut w = l.rsplitn(3, ' ');
            let size = w.next().unwrap().parse().unwrap();
            let off = w.next().unwrap().parse().unwrap();
            (w.next().unwrap().to_owned(), off, size)
        })
        .collect()
}

#[test]
fn ova_made_by_gnu_tar_reads_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src.raw");
    let size = 24 * MIB + 4096;
    make_source(&src, size);
    let long = format!(
        "{}-disk1.vmdk",
        "a-rather-long-virtual-machine-name".repeat(4)
    );
    for (format, disk_name) in [
        ("ustar", "x-disk1.vmdk"),
        ("pax", "x-disk1.vmdk"),
        ("pax", long.as_str()),
        ("gnu", long.as_str()),
    ] {
        let vmdk = d.join(disk_name);
        tool(
            "qemu-img",
            "qemu-utils",
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "vmdk",
                "-o",
                "subformat=streamOptimized",
                "src.raw",
                disk_name,
            ],
            d,
        );
        let vsize: serde_json::Value = serde_json::from_str(&tool(
            "qemu-img",
            "qemu-utils",
            &["info", "--output=json", disk_name],
            d,
        ))
        .unwrap();
        let vsize = vsize["virtual-size"].as_u64().unwrap();
        let vmdk_len = fs::metadata(&vmdk).unwrap().len();
        fs::write(d.join("x.ovf"), ovf(disk_name, vmdk_len, vsize)).unwrap();
        fs::write(d.join("x.mf"), "SHA256(x.ovf)= 00\n").unwrap();
        let what = format!("{format} {}", disk_name.len());
        let ova = d.join("x.ova");
        let _ = fs::remove_file(&ova);
        tool(
            "tar",
            "tar",
            &[
                &format!("--format={format}"),
                "-cf",
                "x.ova",
                "x.ovf",
                "x.mf",
                disk_name,
            ],
            d,
        );

        let file: SharedDisk = Arc::new(FileReader::new(fs::File::open(&ova).unwrap()).unwrap());
        let o = Ova::read(file.as_ref()).unwrap();
        assert!(o.ovf_first(), "{what}");
        let ours: Vec<_> = o
            .members
            .iter()
            .map(|m| (m.name.clone(), m.offset, m.size))
            .collect();
        assert_eq!(ours, python_listing(&ova), "{what}: members");
        let disks = o.disks().unwrap();
        assert_eq!(disks.len(), 1, "{what}");
        assert_eq!(disks[0].disk.capacity, Some(vsize), "{what}: OVF capacity");
        assert_eq!(disks[0].member.name, disk_name);
        assert_eq!(disks[0].member.size, vmdk_len, "{what}");

        // The VMDK in place: the same bytes as the file tar archived, and its virtual disk.
        let slice = Ova::disk_slice(file.clone(), &disks[0].member);
        let mut inplace = vec![0u8; vmdk_len as usize];
        slice.read_exact_at(&mut inplace, 0).unwrap();
        assert!(inplace == fs::read(&vmdk).unwrap(), "{what}: member bytes");
        let slice: SharedDisk = Arc::new(slice);
        let h = Vmdk::read_header(slice.as_ref()).unwrap();
        assert_eq!(h.create_type(), Some("streamOptimized"));
        let disk = VmdkDisk::open(slice, &h, vec![], None).unwrap();
        assert_eq!(disk.len(), vsize, "{what}: virtual size");
        let mut a = vec![0u8; size as usize];
        disk.read_exact_at(&mut a, 0).unwrap();
        assert!(
            a == fs::read(&src).unwrap(),
            "{what}: the disk equals its source"
        );
        fs::remove_file(&vmdk).unwrap();
    }
}

#[test]
fn a_tar_member_claiming_more_than_the_file_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_source(&d.join("src.raw"), 8 * MIB);
    tool(
        "qemu-img",
        "qemu-utils",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            "src.raw",
            "x-disk1.vmdk",
        ],
        d,
    );
    fs::write(d.join("x.ovf"), ovf("x-disk1.vmdk", 0, 8 * MIB)).unwrap();
    tool(
        "tar",
        "tar",
        &["--format=ustar", "-cf", "x.ova", "x.ovf", "x-disk1.vmdk"],
        d,
    );
    let full = fs::read(d.join("x.ova")).unwrap();
    // Cut inside the VMDK member: its header claims more than the file holds.
    let cut = full[..full.len() / 2].to_vec();
    let e = Ova::read(&cut).unwrap_err();
    assert!(matches!(e, OvaError::MemberPastEnd { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("tar member \"x-disk1.vmdk\" claims "),
        "{e}"
    );
    // A flipped byte in a header: a checksum error, not a wrong listing.
    let mut bad = full;
    bad[3] ^= 0x20; // the OVF member's name
    assert!(matches!(
        Ova::read(&bad),
        Err(OvaError::BadChecksum { offset: 0 })
    ));
}
