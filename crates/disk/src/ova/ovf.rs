//! The OVF descriptor of an OVA: which files are the disks, and their capacity.
//!
//! ```xml
//! <Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" ...>
//!   <References><File ovf:id="file1" ovf:href="vm-disk1.vmdk" ovf:size="68608"/></References>
//!   <DiskSection>
//!     <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="64"
//!           ovf:capacityAllocationUnits="byte * 2^20"
//!           ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
//!   </DiskSection>
//! ```
//!
//! Parsed with roxmltree (no DTDs, a node limit); attributes are matched by local name, so
//! OVF 1.x and 2.x namespaces both work.

use super::OvaError;

/// Largest OVF descriptor read: 4 MiB (ovftool's are a few KiB; VMware allows 1 MiB... of
/// XML per descriptor in practice).
pub const MAX_OVF_BYTES: u64 = 4 << 20;
/// Most XML nodes parsed: 200 000 (a 4 MiB descriptor of minimal elements).
const MAX_NODES: u32 = 200_000;

/// A `<File>` of `<References>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvfFile {
    /// `ovf:id`.
    pub id: String,
    /// `ovf:href`: the member name in the OVA.
    pub href: String,
    /// `ovf:size` in bytes.
    pub size: Option<u64>,
}

/// A `<Disk>` of `<DiskSection>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvfDisk {
    /// `ovf:diskId`.
    pub disk_id: String,
    /// `ovf:fileRef`: the id of its `<File>` (none for a blank disk).
    pub file_ref: Option<String>,
    /// `ovf:capacity` times `ovf:capacityAllocationUnits`, in bytes.
    pub capacity: Option<u64>,
    /// `ovf:format` (the VMDK subformat URL).
    pub format: Option<String>,
    /// `ovf:populatedSize` in bytes.
    pub populated_size: Option<u64>,
}

/// What vhdprep reads of an OVF descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ovf {
    /// The referenced files.
    pub files: Vec<OvfFile>,
    /// The disks.
    pub disks: Vec<OvfDisk>,
}

impl Ovf {
    /// Parses the descriptor text.
    pub fn parse(text: &[u8]) -> Result<Ovf, OvaError> {
        if text.len() as u64 > MAX_OVF_BYTES {
            return Err(OvaError::OvfTooLarge {
                size: text.len() as u64,
            });
        }
        let text = std::str::from_utf8(text).map_err(|e| OvaError::BadOvf(e.to_string()))?;
        let opts = roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_NODES,
            ..Default::default()
        };
        let doc = roxmltree::Document::parse_with_options(text, opts)
            .map_err(|e| OvaError::BadOvf(e.to_string()))?;
        let attr = |n: &roxmltree::Node, name: &str| {
            n.attributes()
                .find(|a| a.name() == name)
                .map(|a| a.value().to_owned())
        };
        let mut ovf = Ovf::default();
        for n in doc.descendants().filter(|n| n.is_element()) {
            let parent = n.parent_element().map(|p| p.tag_name().name());
            match (n.tag_name().name(), parent) {
                ("File", Some("References")) => {
                    let (Some(id), Some(href)) = (attr(&n, "id"), attr(&n, "href")) else {
                        return Err(OvaError::BadOvf("a <File> without id or href".into()));
                    };
                    let size = attr(&n, "size")
                        .map(|s| {
                            s.trim().parse::<u64>().map_err(|_| {
                                OvaError::BadOvf(format!("<File> {id}: size {s:?} is not a number"))
                            })
                        })
                        .transpose()?;
                    ovf.files.push(OvfFile { id, href, size });
                }
                ("Disk", Some("DiskSection")) => {
                    let disk_id = attr(&n, "diskId").unwrap_or_default();
                    let capacity = match attr(&n, "capacity") {
                        None => None,
                        Some(c) => Some(capacity_bytes(
                            &c,
                            attr(&n, "capacityAllocationUnits").as_deref(),
                        )
                        .ok_or_else(|| {
                            OvaError::BadOvf(format!(
                                "disk {disk_id}: capacity {c:?} in units {:?} is not a size vhdprep reads",
                                attr(&n, "capacityAllocationUnits").unwrap_or_default()
                            ))
                        })?),
                    };
                    let populated_size =
                        attr(&n, "populatedSize").and_then(|s| s.trim().parse().ok());
                    ovf.disks.push(OvfDisk {
                        disk_id,
                        file_ref: attr(&n, "fileRef"),
                        capacity,
                        format: attr(&n, "format"),
                        populated_size,
                    });
                }
                _ => {}
            }
        }
        Ok(ovf)
    }

    /// The `<File>` with id `id`.
    pub fn file(&self, id: &str) -> Option<&OvfFile> {
        self.files.iter().find(|f| f.id == id)
    }
}

/// `capacity` × `units` in bytes: units `byte`, `byte * 2^N`, `byte * 10^N`, `byte * N`, or
/// the old `KiloBytes`/`MegaBytes`/`GigaBytes` (powers of 1024). None on overflow or junk.
pub fn capacity_bytes(capacity: &str, units: Option<&str>) -> Option<u64> {
    let c: u64 = capacity.trim().parse().ok()?;
    let unit = match units.map(str::trim) {
        None | Some("byte") | Some("") => 1,
        Some("KiloBytes") => 1 << 10,
        Some("MegaBytes") => 1 << 20,
        Some("GigaBytes") => 1 << 30,
        Some(u) => {
            let rest = u
                .strip_prefix("byte")?
                .trim_start()
                .strip_prefix('*')?
                .trim();
            match rest.split_once('^') {
                Some((b, e)) => {
                    let b: u64 = b.trim().parse().ok()?;
                    let e: u32 = e.trim().parse().ok()?;
                    b.checked_pow(e)?
                }
                None => rest.parse().ok()?,
            }
        }
    };
    c.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMWARE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="build-1" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:href="vm-disk1.vmdk" ovf:id="file1" ovf:size="68608"/>
    <File ovf:href="vm-disk2.vmdk" ovf:id="file2" ovf:size="1024"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="16" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized" ovf:populatedSize="0"/>
    <Disk ovf:capacity="1073741824" ovf:diskId="vmdisk2" ovf:fileRef="file2"/>
  </DiskSection>
</Envelope>"#;

    #[test]
    fn parses_a_vmware_descriptor() {
        let o = Ovf::parse(VMWARE.as_bytes()).unwrap();
        assert_eq!(o.files.len(), 2);
        assert_eq!(o.file("file1").unwrap().href, "vm-disk1.vmdk");
        assert_eq!(o.file("file1").unwrap().size, Some(68608));
        assert_eq!(o.disks[0].capacity, Some(16 << 30));
        assert_eq!(o.disks[1].capacity, Some(1 << 30));
        assert!(o.disks[0]
            .format
            .as_deref()
            .unwrap()
            .ends_with("#streamOptimized"));
    }

    #[test]
    fn units() {
        assert_eq!(capacity_bytes("3", Some("byte * 2^20")), Some(3 << 20));
        assert_eq!(capacity_bytes("3", Some("byte*10^3")), Some(3000));
        assert_eq!(capacity_bytes("3", Some("byte * 512")), Some(1536));
        assert_eq!(capacity_bytes("2", Some("GigaBytes")), Some(2 << 30));
        assert_eq!(capacity_bytes("2", Some("byte * 2^64")), None);
        assert_eq!(capacity_bytes("99999999999", Some("byte * 2^40")), None);
        assert_eq!(capacity_bytes("x", None), None);
        assert_eq!(capacity_bytes("1", Some("furlongs")), None);
    }

    #[test]
    fn hostile_xml() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Envelope>&b;</Envelope>"#;
        assert!(matches!(
            Ovf::parse(laughs.as_bytes()),
            Err(OvaError::BadOvf(_))
        ));
        assert!(matches!(
            Ovf::parse(b"<Envelope><References>"),
            Err(OvaError::BadOvf(_))
        ));
        assert!(matches!(Ovf::parse(b"\xff\xfe"), Err(OvaError::BadOvf(_))));
        let many = format!("<E>{}</E>", "<a/>".repeat(250_000));
        assert!(matches!(
            Ovf::parse(many.as_bytes()),
            Err(OvaError::BadOvf(_))
        ));
        let bad = r#"<Envelope><References><File href="x"/></References></Envelope>"#;
        assert!(matches!(
            Ovf::parse(bad.as_bytes()),
            Err(OvaError::BadOvf(_))
        ));
    }
}
