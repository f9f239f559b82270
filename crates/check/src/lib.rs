//! `vhdprep check`: the Azure rule catalogue judged over an image.
//!
//! Data flows one way: [`context::Context::gather`] reads the container, the partition table,
//! the guest tree and every guest fact once; [`verdict`] derives the up-front verdicts
//! (generation, osState, provisioning path, architecture, Trusted Launch); each module of
//! [`rules`] judges one area of the catalogue and records which rules it evaluated; the
//! [`report::Report`] collects it all and [`render`] writes it as text, JSON, SARIF or JUnit.
//! [`gallery`] turns the same verdicts into a Compute Gallery image definition.
//!
//! Rule IDs are those of the shared catalogue (`VHD-004`, `BOOT-003`, `AGENT-005`, ...);
//! [`catalogue::all`] lists every rule with its title, default severity and source.
#![forbid(unsafe_code)]

pub mod catalogue;
pub mod content;
pub mod context;
pub mod gallery;
pub mod policy;
pub mod render;
pub mod report;
pub mod rules;
pub mod verdict;

pub use context::{CheckError, Context};
pub use policy::{Generation, OsState, Policy, SecurityType};
pub use report::{Report, Verdict};
pub use vhdprep_finding::{Finding, Location, Severity};

use vhdprep_disk::DiskImage;

/// Checks an OS disk (and its data disks) against every rule the policy enables.
///
/// Errors only when the image cannot be read at all; everything else, including a VHDX or a
/// disk without a partition table, is a finding in the report.
pub fn check(
    image: &DiskImage,
    data_disks: &[DiskImage],
    policy: &Policy,
) -> Result<Report, CheckError> {
    let ctx = Context::gather(image, data_disks, policy)?;
    Ok(Report::build(&ctx))
}
