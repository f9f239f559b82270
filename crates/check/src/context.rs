//! Everything the rules judge, gathered once: the container report, the partition table and
//! volumes, the assembled guest, and every guest fact. Rules read this; they never read the
//! image themselves.

use crate::policy::Policy;
use crate::verdict::{self, Derived};
use vhdprep_disk::{DiskImage, SharedDisk};
use vhdprep_guest::elf::Architecture;
use vhdprep_guest::facts::{
    agents::{agent_facts, AgentFacts},
    boot::{boot_facts, BootFacts},
    kernel::{command_lines, kernel_facts, KernelFacts},
    system::{system_facts, SystemFacts},
};
use vhdprep_guest::inspect::{architecture, os, OsReport};
use vhdprep_guest::{assemble, discover, Discovery, Guest};
use vhdprep_partition::PartitionError;

/// Why an image cannot be checked at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Reading the disk failed with an operating-system error.
    #[error("{path}: {source}")]
    Read {
        /// The image.
        path: String,
        /// What failed.
        source: PartitionError,
    },
}

/// A data disk given with `--data-disk`: only its container and size are judged.
#[derive(Debug)]
pub struct DataDisk<'a> {
    /// The opened image.
    pub image: &'a DiskImage,
    /// Its path, as given.
    pub file: String,
    /// Its container report (VHD-001..007 and VHD-017 findings included).
    pub container: vhdprep_disk::ContainerReport,
}

/// The facts of one OS disk and its data disks, and the verdicts derived from them.
pub struct Context<'a> {
    /// What the user declared and how strict to be.
    pub policy: &'a Policy,
    /// The OS disk.
    pub image: &'a DiskImage,
    /// Its path, as given.
    pub file: String,
    /// The container: format, footer, sizes, VHD-001..007/014/015/017 findings.
    pub container: vhdprep_disk::ContainerReport,
    /// The virtual disk, when the container can be read.
    pub disk: Option<SharedDisk>,
    /// Why the guest was not examined (unreadable container, no partition table usable).
    pub unexamined: Option<String>,
    /// The partition table and volumes.
    pub discovery: Option<Discovery>,
    /// The partition table could not be used at all (both GPT copies broken, ...).
    pub table_error: Option<String>,
    /// The assembled guest, when a root filesystem was found.
    pub guest: Option<Guest>,
    /// os-release of the guest.
    pub os: Option<OsReport>,
    /// Architecture from ELF headers, and the binary it came from.
    pub architecture: Option<(Architecture, String)>,
    /// BIOS and UEFI boot chain.
    pub boot: Option<BootFacts>,
    /// Kernels, initramfs images, blacklists, command lines.
    pub kernel: Option<KernelFacts>,
    /// waagent, cloud-init, provisioning path.
    pub agents: Option<AgentFacts>,
    /// Generalization leftovers, users, ssh, swap, network, services.
    pub system: Option<SystemFacts>,
    /// Data disks.
    pub data_disks: Vec<DataDisk<'a>>,
    /// Verdicts derived from all of the above.
    pub derived: Derived,
}

impl<'a> Context<'a> {
    /// Reads everything the rules need from the image. Only an I/O error while reading the
    /// partition table is fatal; unusable containers and tables become findings.
    pub fn gather(
        image: &'a DiskImage,
        data_disks: &'a [DiskImage],
        policy: &'a Policy,
    ) -> Result<Context<'a>, CheckError> {
        let file = image.path().display().to_string();
        let mut ctx = Context {
            policy,
            image,
            file: file.clone(),
            container: crate::content::container_report(image),
            disk: None,
            unexamined: None,
            discovery: None,
            table_error: None,
            guest: None,
            os: None,
            architecture: None,
            boot: None,
            kernel: None,
            agents: None,
            system: None,
            data_disks: data_disks
                .iter()
                .map(|d| DataDisk {
                    image: d,
                    file: d.path().display().to_string(),
                    container: crate::content::container_report(d),
                })
                .collect(),
            derived: Derived::default(),
        };
        match image.disk() {
            Ok(disk) => {
                ctx.disk = Some(disk.clone());
                match discover(disk.clone()) {
                    Ok(d) => ctx.discovery = Some(d),
                    Err(e @ PartitionError::Io { .. }) => {
                        return Err(CheckError::Read {
                            path: file,
                            source: e,
                        })
                    }
                    Err(e) => {
                        ctx.table_error = Some(e.to_string());
                        ctx.unexamined = Some(format!("the partition table is unusable: {e}"));
                    }
                }
            }
            Err(e) => ctx.unexamined = Some(format!("the virtual disk cannot be read: {e}")),
        }
        if let Some(d) = &ctx.discovery {
            ctx.guest = assemble(&d.volumes);
            if ctx.guest.is_none() {
                ctx.unexamined =
                    Some("no root filesystem (with /etc/os-release) was found".to_string());
            }
        }
        // The kernel facts (initramfs decompression: the costliest part) run on a second
        // thread while the boot chain, the agents and the system facts are read here.
        std::thread::scope(|scope| {
            let kernel = ctx
                .guest
                .as_ref()
                .map(|g| scope.spawn(move || kernel_facts(&g.tree)));
            if let (Some(disk), Some(d)) = (&ctx.disk, &ctx.discovery) {
                if let Some(table) = &d.table {
                    ctx.boot = Some(boot_facts(
                        disk.as_ref(),
                        table,
                        &d.volumes,
                        ctx.guest.as_ref().map(|g| &g.tree),
                    ));
                }
            }
            if let Some(g) = &ctx.guest {
                ctx.os = os(g);
                ctx.architecture = architecture(g);
                let cmdline: Vec<String> = command_lines(&g.tree)
                    .effective
                    .map(|c| c.args)
                    .unwrap_or_default();
                ctx.agents = Some(agent_facts(&g.tree, &cmdline));
                ctx.system = Some(system_facts(&g.tree, &g.fstab));
            }
            if let Some(handle) = kernel {
                ctx.kernel = Some(
                    handle
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                );
            }
        });
        ctx.derived = verdict::derive(&ctx);
        Ok(ctx)
    }

    /// The osState rules judge by: declared, else derived, else Generalized; and which of the
    /// three (`declared`, `derived`, `assumed`).
    pub fn judged_os_state(&self) -> (crate::policy::OsState, &'static str) {
        match (self.policy.os_state, self.derived.os_state.value) {
            (Some(s), _) => (s, "declared"),
            (None, Some(s)) => (s, "derived"),
            (None, None) => (crate::policy::OsState::Generalized, "assumed"),
        }
    }

    /// Why guest rules are skipped, for `Collector::skip`.
    pub fn not_examined_reason(&self) -> String {
        match &self.unexamined {
            Some(w) => format!("the guest was not examined: {w}"),
            None => "the guest was not examined".into(),
        }
    }

    /// The guest tree, when a root was found.
    pub fn tree(&self) -> Option<&vhdprep_guest::GuestTree> {
        self.guest.as_ref().map(|g| &g.tree)
    }

    /// The guest's os-release ID and ID_LIKE, lower case.
    pub fn os_ids(&self) -> Vec<String> {
        let Some(o) = &self.os else { return Vec::new() };
        o.id.iter()
            .chain(o.id_like.iter())
            .map(|s| s.to_ascii_lowercase())
            .collect()
    }

    /// The guest's distribution family (os-release `ID`, then `ID_LIKE`).
    pub fn family(&self) -> vhdprep_guest::Family {
        self.os_ids()
            .iter()
            .map(|i| vhdprep_guest::Family::of_id(i))
            .find(|f| *f != vhdprep_guest::Family::Unknown)
            .unwrap_or(vhdprep_guest::Family::Unknown)
    }

    /// Whether the guest is of this distribution family (`rhel`, `debian`, `suse`, ...).
    pub fn os_is(&self, family: &str) -> bool {
        self.os_ids().iter().any(|i| i == family)
    }
}
