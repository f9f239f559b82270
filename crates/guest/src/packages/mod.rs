//! Installed packages, from whichever database the guest keeps: dpkg's status file or one of
//! rpm's databases (sqlite, Berkeley DB hash, ndb).
//!
//! - [`rpm`]: the RPM header format and the three rpm database formats (read-only, bounded).
//! - [`version`]: version comparison as dpkg and rpm define it.
//!
//! The query interface that rules use ("which version of openssh is installed, which package
//! owns this file") sits over both, so no rule asks one database by name.

pub mod rpm;
pub mod version;
