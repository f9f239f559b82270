//! `/etc/fstab`: the table that says which filesystem is mounted where.

use serde::Serialize;

/// Most lines read from one fstab; more is not a real system's fstab.
const MAX_LINES: usize = 10_000;

/// One mount line of an fstab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FstabEntry {
    /// 1-based line number in the file.
    pub line: usize,
    /// First field: `UUID=...`, `LABEL=...`, `/dev/...`, `PARTUUID=...`, `none` ...
    pub spec: String,
    /// Second field: the mount point (`/`, `/boot/efi`) or `none`/`swap`.
    pub mountpoint: String,
    /// Third field: `ext4`, `vfat`, `swap`, `auto` ...
    pub fstype: String,
    /// Fourth field, split at commas.
    pub options: Vec<String>,
}

impl FstabEntry {
    /// The value of option `key=value`, if present (`subvol`, `subvolid` ...).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find_map(|o| o.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    /// True when option `flag` is present (`nofail`, `noauto`, `bind` ...).
    pub fn has_option(&self, flag: &str) -> bool {
        self.options.iter().any(|o| o == flag)
    }

    /// True for swap entries.
    pub fn is_swap(&self) -> bool {
        self.fstype == "swap" || self.mountpoint == "swap"
    }
}

/// Decodes the octal escapes fstab uses for blanks in fields (`\040` is a space).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses fstab text. Comments, blank lines and lines with fewer than two fields are skipped
/// (as `mount` does); missing type and options default to `auto` and `defaults`.
pub fn parse(text: &str) -> Vec<FstabEntry> {
    text.lines()
        .take(MAX_LINES)
        .enumerate()
        .filter_map(|(i, raw)| {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let mut fields = line.split_whitespace();
            let spec = unescape(fields.next()?);
            let mountpoint = unescape(fields.next()?);
            let fstype = fields.next().map(unescape).unwrap_or_else(|| "auto".into());
            let options = fields
                .next()
                .unwrap_or("defaults")
                .split(',')
                .map(unescape)
                .collect();
            Some(FstabEntry {
                line: i + 1,
                spec,
                mountpoint,
                fstype,
                options,
            })
        })
        .collect()
}

/// How an fstab `spec` names its filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", content = "value", rename_all = "lowercase")]
pub enum DeviceRef {
    /// Filesystem UUID (`UUID=`, `/dev/disk/by-uuid/`).
    Uuid(String),
    /// Filesystem label (`LABEL=`, `/dev/disk/by-label/`).
    Label(String),
    /// GPT partition unique GUID or MBR `ssssssss-NN` (`PARTUUID=`, `/dev/disk/by-partuuid/`).
    PartUuid(String),
    /// GPT partition name (`PARTLABEL=`, `/dev/disk/by-partlabel/`).
    PartLabel(String),
    /// An LVM logical volume (`/dev/mapper/vg-lv`, `/dev/vg/lv`).
    Lv {
        /// Volume group.
        vg: String,
        /// Logical volume.
        lv: String,
    },
    /// A kernel device name (`/dev/sda1`, `/dev/nvme0n1p2`): depends on probe order.
    Kernel(String),
    /// Anything else (`tmpfs`, `proc`, `none`, network shares ...).
    Other(String),
}

/// Splits a device-mapper name `vg-lv` (where a `-` inside a name is doubled) into VG and LV.
pub fn split_dm_name(name: &str) -> Option<(String, String)> {
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'-' {
            if b.get(i + 1) == Some(&b'-') {
                i += 2;
                continue;
            }
            let vg = name[..i].replace("--", "-");
            let lv = name[i + 1..].replace("--", "-");
            if vg.is_empty() || lv.is_empty() {
                return None;
            }
            return Some((vg, lv));
        }
        i += 1;
    }
    None
}

/// Classifies an fstab spec.
pub fn device_ref(spec: &str) -> DeviceRef {
    let unquote = |s: &str| s.trim_matches('"').to_string();
    for (prefix, make) in [
        ("UUID=", DeviceRef::Uuid as fn(String) -> DeviceRef),
        ("LABEL=", DeviceRef::Label),
        ("PARTUUID=", DeviceRef::PartUuid),
        ("PARTLABEL=", DeviceRef::PartLabel),
        ("/dev/disk/by-uuid/", DeviceRef::Uuid),
        ("/dev/disk/by-label/", DeviceRef::Label),
        ("/dev/disk/by-partuuid/", DeviceRef::PartUuid),
        ("/dev/disk/by-partlabel/", DeviceRef::PartLabel),
    ] {
        if let Some(v) = spec.strip_prefix(prefix) {
            return make(unescape_udev(&unquote(v)));
        }
    }
    if let Some(name) = spec.strip_prefix("/dev/mapper/") {
        if let Some((vg, lv)) = split_dm_name(name) {
            return DeviceRef::Lv { vg, lv };
        }
    }
    if let Some(rest) = spec.strip_prefix("/dev/") {
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() == 2 && !parts.iter().any(|p| p.is_empty()) && parts[0] != "disk" {
            return DeviceRef::Lv {
                vg: parts[0].to_string(),
                lv: parts[1].to_string(),
            };
        }
        if parts.len() == 1 {
            return DeviceRef::Kernel(spec.to_string());
        }
    }
    DeviceRef::Other(spec.to_string())
}

/// udev escapes blanks and slashes in by-label names as `\x20`, `\x2f`.
fn unescape_udev(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find("\\x") {
        out.push_str(&rest[..pos]);
        let hex = rest.get(pos + 2..pos + 4);
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                out.push(b as char);
                rest = &rest[pos + 4..];
            }
            None => {
                out.push_str("\\x");
                rest = &rest[pos + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_debian_cloud_fstab() {
        let text = "# /etc/fstab: static file system information.\n\
            UUID=3f1c0c1e-52c4-4e3b-9d5b-0f2b4d1c7a10 / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 1\n\
            \n\
            PARTUUID=9a3c1d7e-02 /boot/efi vfat defaults 0 0\n\
            LABEL=my\\040data /srv xfs defaults,nofail\n\
            /dev/mapper/rootvg-var--lv /var xfs defaults 0 0\n\
            /swapfile none swap sw 0 0\n\
            proc\n";
        let e = parse(text);
        assert_eq!(e.len(), 5);
        assert_eq!(e[0].mountpoint, "/");
        assert_eq!(e[0].line, 2);
        assert_eq!(e[0].options[2], "errors=remount-ro");
        assert_eq!(e[2].spec, "LABEL=my data");
        assert!(e[2].has_option("nofail"));
        assert_eq!(e[2].fstype, "xfs");
        assert!(e[4].is_swap());
        assert_eq!(
            device_ref(&e[3].spec),
            DeviceRef::Lv {
                vg: "rootvg".into(),
                lv: "var-lv".into()
            }
        );
    }

    #[test]
    fn classifies_every_spec_form() {
        assert_eq!(device_ref("UUID=abcd"), DeviceRef::Uuid("abcd".into()));
        assert_eq!(
            device_ref("UUID=\"ABCD-1234\""),
            DeviceRef::Uuid("ABCD-1234".into())
        );
        assert_eq!(
            device_ref("/dev/disk/by-uuid/abcd"),
            DeviceRef::Uuid("abcd".into())
        );
        assert_eq!(
            device_ref("/dev/disk/by-label/EFI\\x20System"),
            DeviceRef::Label("EFI System".into())
        );
        assert_eq!(
            device_ref("PARTLABEL=root"),
            DeviceRef::PartLabel("root".into())
        );
        assert_eq!(
            device_ref("/dev/disk/by-partuuid/x-01"),
            DeviceRef::PartUuid("x-01".into())
        );
        assert_eq!(
            device_ref("/dev/rootvg/rootlv"),
            DeviceRef::Lv {
                vg: "rootvg".into(),
                lv: "rootlv".into()
            }
        );
        assert_eq!(
            device_ref("/dev/sda1"),
            DeviceRef::Kernel("/dev/sda1".into())
        );
        assert_eq!(device_ref("tmpfs"), DeviceRef::Other("tmpfs".into()));
        assert_eq!(
            split_dm_name("a--b-c--d"),
            Some(("a-b".into(), "c-d".into()))
        );
        assert_eq!(split_dm_name("nodash"), None);
    }

    #[test]
    fn subvol_option() {
        let e = &parse("UUID=x / btrfs defaults,subvol=@,compress=zstd 0 0")[0];
        assert_eq!(e.option("subvol"), Some("@"));
        assert_eq!(e.option("subvolid"), None);
    }
}
