//! Facts about the guest that the Azure rules are judged on, each gathered offline from the
//! assembled [`GuestTree`](crate::GuestTree) (and, for the boot chain, the raw disk):
//!
//! - [`boot`]: BIOS boot code and stage 2, the ESP and its fallback loader, shim signatures.
//! - [`kernel`]: installed kernels, their initramfs images (cpio, compressed), modules,
//!   blacklists and command lines.
//! - [`agents`]: WALinuxAgent and cloud-init: presence, version, enablement, configuration.
//! - [`system`]: generalization evidence, users, ssh, network configuration, swap, history.
//!
//! Each module gathers evidence only; judging it against the rule catalogue is `check`'s job.

pub mod agents;
pub mod boot;
pub mod kernel;
pub mod system;
