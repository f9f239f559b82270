//! What vhdprep tells the user about a format it does not read: the one-line refusal naming the
//! file and the format, with the command that turns the file into a disk vhdprep reads. Every
//! command that needs the virtual disk (`convert`, `fix`, `inspect`, `ls`, `cat`, `checksum
//! --scope disk`) refuses through [`refusal`]; `info` and `check` report the same command as the
//! remediation of their VHD-001 finding ([`remedy`]).
//!
//! The commands are the ones that work (tested in `tests/container_probes.rs` where qemu-img can
//! run them): `qemu-img convert -f DRIVER -O raw` for every format qemu reads; for encrypted
//! qcow/qcow2 and LUKS1, `qemu-img convert --object secret,... --image-opts ...`; for LUKS2
//! (qemu reads LUKS1 only) and BitLocker, `cryptsetup open`, after which vhdprep reads the
//! opened block device itself.

use crate::error::DiskError;
use crate::format::{Encryption, Format};
use std::path::Path;

/// The name `cryptsetup open` is told to give the opened volume.
const MAPPED: &str = "vhdprep-src";

/// The error every disk-reading command returns for `format` (with `encryption`) at `path`.
pub fn refusal(path: &Path, format: Format, encryption: Option<Encryption>) -> DiskError {
    DiskError::Unsupported {
        path: path.to_owned(),
        what: what(format, encryption),
        hint: remedy(format, encryption, path).to_string(),
    }
}

/// The format in words: `VirtualBox VDI image (vdi)`, `QEMU qcow2 image (qcow2), encrypted
/// (luks)`.
pub fn what(format: Format, encryption: Option<Encryption>) -> String {
    let base = format!("{} ({}", format.description(), format.name());
    match encryption {
        Some(e) if format == Format::Luks => format!("{base}, {})", e.name()),
        Some(e) if !format.is_encrypted_volume() => format!("{base}), encrypted ({})", e.name()),
        _ => format!("{base})"),
    }
}

/// What to do with a file vhdprep does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remedy {
    /// What to do, in words (`convert it to raw first`).
    pub action: String,
    /// The command that does it, when one is known.
    pub command: Option<String>,
    /// The vhdprep command to run on the result.
    pub then: String,
}

impl Remedy {
    /// The commands as one shell line (`A && B`), for a finding's remediation.
    pub fn commands(&self) -> String {
        match &self.command {
            Some(c) => format!("{c} && {}", self.then),
            None => self.then.clone(),
        }
    }
}

impl std::fmt::Display for Remedy {
    /// `convert it to raw first: `qemu-img convert ...`, then `vhdprep convert OUT.raw OUT.vhd``.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.command {
            Some(c) => write!(f, "{}: `{c}`, then `{}`", self.action, self.then),
            None => write!(f, "{}, then `{}`", self.action, self.then),
        }
    }
}

/// What to do instead with `path` of `format` (and `encryption`), with the command.
pub fn remedy(format: Format, encryption: Option<Encryption>, path: &Path) -> Remedy {
    let input = shell_quote(&path.display().to_string());
    let to_vhd = "vhdprep convert OUT.raw OUT.vhd".to_string();
    let mapped_to_vhd = format!("vhdprep convert /dev/mapper/{MAPPED} OUT.vhd");
    let r = |action: &str, command: Option<String>, then: String| Remedy {
        action: action.to_string(),
        command,
        then,
    };
    match (format, encryption) {
        (Format::Luks, Some(Encryption::Luks1)) => r(
            "decrypt it to raw first",
            Some(qemu_decrypt("luks", "key-secret", path)),
            to_vhd,
        ),
        (Format::Luks, _) => r(
            "open it first (qemu-img reads LUKS1 only)",
            Some(format!("cryptsetup open {input} {MAPPED}")),
            mapped_to_vhd,
        ),
        (Format::Bitlocker, _) => r(
            "open it first",
            Some(format!("cryptsetup open --type bitlk {input} {MAPPED}")),
            mapped_to_vhd,
        ),
        (Format::Qcow | Format::Qcow2, Some(Encryption::Unknown(m))) => r(
            &format!("its encryption method {m} is unknown to qemu-img too: make it a raw disk with the tool that wrote it"),
            None,
            to_vhd,
        ),
        (Format::Qcow | Format::Qcow2, Some(_)) => r(
            "decrypt it to raw first",
            Some(qemu_decrypt(
                format.qemu_driver().unwrap_or("qcow2"),
                "encrypt.key-secret",
                path,
            )),
            to_vhd,
        ),
        (Format::Gzip | Format::Xz | Format::Zstd | Format::Bzip2, _) => {
            let tool = match format {
                Format::Gzip => "gzip",
                Format::Xz => "xz",
                Format::Zstd => "zstd",
                _ => "bzip2",
            };
            r(
                "decompress it first",
                Some(format!("{tool} -dc {input} > OUT.img")),
                "vhdprep info OUT.img".into(),
            )
        }
        (Format::Tar | Format::Ova, _) => r(
            "extract it first (an OVA holds its disks, usually VMDK)",
            Some(format!("tar -xvf {input}")),
            "vhdprep info DISK".into(),
        ),
        (f, _) => match f.qemu_driver() {
            Some(driver) => r(
                "convert it to raw first",
                Some(format!("qemu-img convert -f {driver} -O raw {input} OUT.raw")),
                to_vhd,
            ),
            None => r("make it a raw disk first", None, to_vhd),
        },
    }
}

/// `qemu-img convert` with a passphrase secret and `--image-opts` naming the driver and the
/// file (commas in the path doubled, as qemu's option syntax wants).
fn qemu_decrypt(driver: &str, key_option: &str, path: &Path) -> String {
    let file = path.display().to_string().replace(',', ",,");
    let opts = format!("driver={driver},file.filename={file},{key_option}=sec0");
    format!(
        "qemu-img convert --object secret,id=sec0,file=PASSPHRASE_FILE --image-opts {} -O raw OUT.raw",
        shell_quote(&opts)
    )
}

/// `s` as one shell word: unchanged when it is plain, else in single quotes.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=,@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unread_format_has_a_command() {
        for f in Format::ALL {
            let r = remedy(f, None, Path::new("/x/disk.img"));
            let c = r.command.clone().unwrap_or_default();
            assert!(c.contains("/x/disk.img"), "{f}: {r}");
            assert!(r.commands().starts_with(&c), "{f}: {r}");
            if !f.is_read() {
                let msg = refusal(Path::new("/x/disk.img"), f, None).to_string();
                assert!(msg.starts_with("/x/disk.img: "), "{msg}");
                assert!(msg.contains(&format!("({}", f.name())), "{msg}");
                assert!(!msg.contains('\n'), "{msg}");
            }
        }
    }

    #[test]
    fn commands_per_format() {
        let p = Path::new("a b/x,y.vdi");
        assert_eq!(
            remedy(Format::Vdi, None, p).to_string(),
            "convert it to raw first: `qemu-img convert -f vdi -O raw 'a b/x,y.vdi' OUT.raw`, then `vhdprep convert OUT.raw OUT.vhd`"
        );
        let r = remedy(Format::Qcow2, Some(Encryption::Luks), p).to_string();
        assert!(
            r.contains(
                "--image-opts 'driver=qcow2,file.filename=a b/x,,y.vdi,encrypt.key-secret=sec0'"
            ),
            "{r}"
        );
        let cmd = |f, e| remedy(f, e, p).commands();
        assert!(cmd(Format::Luks, Some(Encryption::Luks1)).contains("driver=luks,"));
        assert!(cmd(Format::Luks, Some(Encryption::Luks2)).starts_with("cryptsetup open"));
        assert!(cmd(Format::Bitlocker, None).contains("--type bitlk"));
        assert!(cmd(Format::Xz, None).starts_with("xz -dc"));
        assert_eq!(
            cmd(Format::Dmg, None),
            "qemu-img convert -f dmg -O raw 'a b/x,y.vdi' OUT.raw && vhdprep convert OUT.raw OUT.vhd"
        );
        assert_eq!(
            what(Format::Qcow2, Some(Encryption::Aes)),
            "QEMU qcow2 image (qcow2), encrypted (aes)"
        );
        assert_eq!(
            what(Format::Luks, Some(Encryption::Luks2)),
            "LUKS encrypted volume (luks, luks2)"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("disk.img"), "disk.img");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(x)"), "'$(x)'");
    }
}
