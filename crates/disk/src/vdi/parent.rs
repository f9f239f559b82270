//! The parent of a differencing VDI image (a VirtualBox snapshot).
//!
//! A differencing VDI names its parent only by UUIDs: `uuid_link` is the parent's image UUID
//! and `uuid_parent_modification` the parent's last-modification UUID when the child was
//! made. VirtualBox keeps the parent's path in its media registry (the `.vbox` file), not in
//! the image; it names snapshot images `{UUID}.vdi` in the machine's `Snapshots` folder, so a
//! parent that is itself a snapshot sits next to the child under its UUID. A base image has a
//! name the user chose: the caller must be told it (`--parent PATH`).

use super::{VdiError, VdiHeader};
use std::path::{Path, PathBuf};

/// The path VirtualBox's naming gives the parent: `{UUID}.vdi` next to the child. Opens
/// nothing.
pub fn parent_candidates(child_path: &Path, child: &VdiHeader) -> Vec<PathBuf> {
    let dir = child_path.parent().unwrap_or(Path::new("."));
    vec![dir.join(format!("{{{}}}.vdi", child.uuid_link))]
}

/// Whether the parent was modified after the child was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModificationCheck {
    /// The parent's last-modification UUID is the one the child recorded.
    Unchanged,
    /// It differs: the parent was written to after the child was made, so the chain may not
    /// read as it did. Reported, not refused: the image UUID is what identifies the parent.
    Changed,
}

/// Checks a candidate parent (at `path`, with header `parent`) against the child: its image
/// UUID must be the child's link UUID; the modification UUID is compared and reported.
pub fn check_parent(
    child: &VdiHeader,
    path: &Path,
    parent: &VdiHeader,
) -> Result<ModificationCheck, VdiError> {
    if parent.uuid_image != child.uuid_link {
        return Err(VdiError::ParentMismatch {
            path: path.to_path_buf(),
            expected: child.uuid_link,
            found: parent.uuid_image,
        });
    }
    Ok(
        if parent.uuid_last_modification == child.uuid_parent_modification {
            ModificationCheck::Unchanged
        } else {
            ModificationCheck::Changed
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vdi::header::tests::sample;

    #[test]
    fn candidates_and_checks() {
        let mut b = sample();
        b[424] = 0xAB; // link UUID
        b[440] = 0xCD; // parent modification UUID
        let child = VdiHeader::parse(&b).unwrap();
        let c = parent_candidates(Path::new("/vm/Snapshots/{x}.vdi"), &child);
        assert_eq!(
            c,
            [PathBuf::from(
                "/vm/Snapshots/{000000ab-0000-0000-0000-000000000000}.vdi"
            )]
        );
        let mut p = sample();
        p[392] = 0xAB;
        p[408] = 0xCD;
        let parent = VdiHeader::parse(&p).unwrap();
        assert_eq!(
            check_parent(&child, Path::new("p.vdi"), &parent).unwrap(),
            ModificationCheck::Unchanged
        );
        p[408] = 0xCE;
        let parent = VdiHeader::parse(&p).unwrap();
        assert_eq!(
            check_parent(&child, Path::new("p.vdi"), &parent).unwrap(),
            ModificationCheck::Changed
        );
        p[392] = 0x01;
        let parent = VdiHeader::parse(&p).unwrap();
        assert_eq!(
            check_parent(&child, Path::new("/x/p.vdi"), &parent).unwrap_err().to_string(),
            "/x/p.vdi is not the parent: its UUID is 00000001-0000-0000-0000-000000000000, the differencing VDI expects 000000ab-0000-0000-0000-000000000000"
        );
    }
}
