//! Kernels found by following the boot loader's configuration rather than `/boot`'s file
//! names: systemd-boot entries and UKIs on the ESP/XBOOTLDR
//! ([`crate::facts::boot::esp_kernel`]), and whatever kernel and initrd files a grub.cfg or
//! BLS entry names wherever they lie (the ESP, for mkosi-built images). Each is matched to a
//! kernel release (the `bzImage` header's release string, else the UKI's `.uname` or the
//! entry's `version`, else the file name), and supplies the kernel image, the initramfs (all
//! of its initrds, concatenated as the boot loader hands them to the kernel) and the config
//! (`/usr/lib/modules/<v>/config`) that `/boot` does not hold.

use super::{is_kind, InitramfsBudget, InitramfsFacts, MAX_INITRAMFS_FILE, MAX_KERNELS};
use crate::facts::boot::esp_kernel::{BootBlob, LoaderEntries};
use crate::facts::boot::uki;
use crate::facts::kernel::cmdline::CommandLines;
use crate::GuestTree;
use std::collections::BTreeMap;
use vhdprep_fs::FileKind;

/// A kernel a boot loader names and its initrds.
#[derive(Debug, Clone)]
pub struct BootRef {
    /// The kernel image.
    pub kernel: BootBlob,
    /// The initrds, in load order.
    pub initrd: Vec<BootBlob>,
}

/// The release of a kernel from its file name: `vmlinuz-<v>`, `vmlinux-<v>`, `Image-<v>`, or a
/// kernel-install layout `<token>/<v>/linux`.
fn release_from_name(path: &str) -> Option<String> {
    let mut parts = path.rsplit('/');
    let name = parts.next()?;
    for p in ["vmlinuz-", "vmlinux-", "Image-"] {
        if let Some(v) = name.strip_prefix(p) {
            return (!v.is_empty()).then(|| v.to_string());
        }
    }
    if name == "linux" || name == "vmlinuz" {
        return parts.next().filter(|v| !v.is_empty()).map(str::to_string);
    }
    None
}

fn release(guest: &GuestTree, kernel: &BootBlob, hint: Option<&str>) -> Option<String> {
    kernel
        .read(guest, 0, uki::HEADER_READ)
        .and_then(|h| uki::bzimage_release(&h))
        .or_else(|| hint.map(str::to_string))
        .or_else(|| release_from_name(&kernel.written))
}

/// Every kernel the boot configuration names, by release; the first reference of a release
/// wins (the default entry is looked at first).
pub fn boot_refs(
    guest: &GuestTree,
    loader: &LoaderEntries,
    lines: &CommandLines,
) -> BTreeMap<String, BootRef> {
    let mut out = BTreeMap::new();
    let mut order: Vec<usize> = (0..loader.entries.len()).collect();
    if let Some(d) = loader.default {
        order.retain(|&i| i != d);
        order.insert(0, d);
    }
    for i in order {
        let e = &loader.entries[i];
        let Some(k) = e.kernel.as_ref().filter(|k| k.file.is_some()) else {
            continue;
        };
        let hint = e.release.as_deref();
        if let Some(v) = release(guest, k, hint) {
            out.entry(v).or_insert_with(|| BootRef {
                kernel: k.clone(),
                initrd: e
                    .initrd
                    .iter()
                    .filter(|b| b.file.is_some())
                    .cloned()
                    .collect(),
            });
        }
    }
    let mut sources: Vec<&_> = lines.effective_source().into_iter().collect();
    sources.extend(lines.sources.iter());
    for s in sources {
        let Some(found) = s.kernel.as_ref().and_then(|k| k.found.clone()) else {
            continue;
        };
        if !is_kind(guest, &found, FileKind::File) || out.len() >= MAX_KERNELS {
            continue;
        }
        let blob = |path: &str, found: &str| BootBlob {
            written: path.to_string(),
            file: Some(found.to_string()),
            range: None,
        };
        let kernel = blob(s.kernel.as_ref().map_or("", |k| k.path.as_str()), &found);
        let Some(v) = release(guest, &kernel, None) else {
            continue;
        };
        out.entry(v).or_insert_with(|| BootRef {
            kernel,
            initrd: s
                .initrd
                .iter()
                .filter_map(|i| {
                    let f = i.found.as_deref()?;
                    is_kind(guest, f, FileKind::File).then(|| blob(&i.path, f))
                })
                .collect(),
        });
    }
    out
}

/// `<modules dir>/config` (Fedora, Arch and mkosi images ship the kernel config there).
pub fn modules_config(guest: &GuestTree, modules_dir: Option<&String>) -> Option<String> {
    let p = format!("{}/config", modules_dir?);
    is_kind(guest, &p, FileKind::File).then_some(p)
}

impl InitramfsBudget {
    /// Lists the initrds of `refs` concatenated (what the kernel unpacks), within the budget.
    pub(super) fn list_blobs(
        &mut self,
        guest: &GuestTree,
        blobs: &[BootBlob],
    ) -> Result<InitramfsFacts, String> {
        let label = blobs
            .iter()
            .map(BootBlob::label)
            .collect::<Vec<_>>()
            .join(" + ");
        if self.read == 0 || self.decompressed == 0 {
            return Err(format!(
                "{label}: not examined: earlier initramfs images used this guest's budget of {} bytes",
                super::MAX_INITRAMFS_TOTAL
            ));
        }
        let mut data = Vec::new();
        for b in blobs {
            let room = MAX_INITRAMFS_FILE
                .saturating_sub(data.len() as u64)
                .min(self.read);
            if room == 0 {
                break;
            }
            let got = b
                .read(guest, 0, room)
                .ok_or_else(|| format!("{}: unreadable", b.label()))?;
            self.read = self.read.saturating_sub(got.len() as u64);
            data.extend_from_slice(&got);
        }
        Ok(self.facts_of(label, &data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_from_file_names() {
        assert_eq!(
            release_from_name("/vmlinuz-6.1.0-13-amd64").as_deref(),
            Some("6.1.0-13-amd64")
        );
        assert_eq!(
            release_from_name("/8a1b/6.5.6-300.fc39.x86_64/linux").as_deref(),
            Some("6.5.6-300.fc39.x86_64")
        );
        assert_eq!(release_from_name("/EFI/x/bzImage"), None);
    }
}
