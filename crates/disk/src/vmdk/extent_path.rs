//! Where an extent file named by a descriptor is: next to the descriptor, never elsewhere.
//!
//! A descriptor is image content, so its names are confined: absolute names and `..`
//! components are refused (an image must not make vhdprep read `/etc/shadow` or a file
//! outside its folder), and a missing extent is an error naming it.

use std::path::{Component, Path, PathBuf};

/// Why an extent file name cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ExtentPathError {
    /// An absolute name (`/x`, `C:\x`, `\\server\x`).
    #[error(
        "extent file {0:?} is an absolute path; vhdprep only reads extents next to the descriptor"
    )]
    Absolute(String),
    /// A name with `..`, or empty, or with a NUL.
    #[error("extent file {0:?} leaves the descriptor's folder or is not a plain relative name")]
    Escapes(String),
    /// The file is not there.
    #[error("extent file {name:?} is missing (looked for {})", path.display())]
    Missing {
        /// Name in the descriptor.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
}

/// The path of extent `name` for the descriptor at `descriptor`: `name` relative to the
/// descriptor's folder, checked to stay inside it and to exist.
pub fn resolve_extent(descriptor: &Path, name: &str) -> Result<PathBuf, ExtentPathError> {
    let windows_abs = name.starts_with('\\')
        || name.as_bytes().get(1) == Some(&b':')
            && name.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
    if Path::new(name).is_absolute() || windows_abs {
        return Err(ExtentPathError::Absolute(name.to_owned()));
    }
    let rel = Path::new(name);
    let plain = !name.is_empty()
        && !name.contains('\0')
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && !name.split('\\').any(|p| p == "..");
    if !plain {
        return Err(ExtentPathError::Escapes(name.to_owned()));
    }
    let dir = descriptor.parent().unwrap_or(Path::new(""));
    let path = dir.join(rel);
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(ExtentPathError::Missing {
            name: name.to_owned(),
            path,
        });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confined_to_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let desc = dir.path().join("x.vmdk");
        std::fs::write(dir.path().join("x-flat.vmdk"), b"").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/y.vmdk"), b"").unwrap();
        assert_eq!(
            resolve_extent(&desc, "x-flat.vmdk").unwrap(),
            dir.path().join("x-flat.vmdk")
        );
        assert!(resolve_extent(&desc, "sub/y.vmdk").is_ok());
        assert!(resolve_extent(&desc, "./x-flat.vmdk").is_ok());
        for bad in ["/etc/passwd", "C:\\disk.vmdk", "\\\\srv\\x"] {
            assert!(
                matches!(
                    resolve_extent(&desc, bad),
                    Err(ExtentPathError::Absolute(_))
                ),
                "{bad}"
            );
        }
        for bad in ["../x.vmdk", "sub/../../x", "", "a\0b", "..\\x"] {
            assert!(
                matches!(resolve_extent(&desc, bad), Err(ExtentPathError::Escapes(_))),
                "{bad}"
            );
        }
        let e = resolve_extent(&desc, "gone-s001.vmdk").unwrap_err();
        assert!(
            e.to_string().contains("\"gone-s001.vmdk\" is missing"),
            "{e}"
        );
    }
}
