//! Typed errors of the partition layer.

use crate::gpt::GptDefect;
use std::io;

/// Why no partition table could be produced.
///
/// Problems that still leave a usable table (a damaged backup GPT, a partition past the end)
/// are not errors: they come back as [`Finding`](vhdprep_finding::Finding)s in
/// [`PartitionTable::findings`](crate::PartitionTable::findings).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError {
    /// The disk could not be read.
    #[error("reading {what} at byte offset {offset}: {source}")]
    Io {
        /// What was being read.
        what: &'static str,
        /// Where.
        offset: u64,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// The MBR is protective (type 0xEE), so the disk is GPT, but neither GPT copy is usable.
    #[error(
        "the protective MBR announces a GPT, but neither copy is usable \
         (sector size {sector_size}): primary at LBA 1: {primary}; backup at LBA {backup_lba}: {backup}"
    )]
    GptUnreadable {
        /// Sector size assumed.
        sector_size: u32,
        /// What is wrong with the primary header or array.
        primary: GptDefect,
        /// Where the backup was looked for (the last LBA when the primary gave no hint).
        backup_lba: u64,
        /// What is wrong with the backup header or array.
        backup: GptDefect,
    },

    /// The caller asked for a sector size this reader does not support.
    #[error("unsupported sector size {0}: must be a power of two from 512 to 65536")]
    UnsupportedSectorSize(u32),
}

pub(crate) fn read_exact(
    disk: &dyn vhdprep_disk::ReadAt,
    buf: &mut [u8],
    offset: u64,
    what: &'static str,
) -> Result<(), PartitionError> {
    disk.read_exact_at(buf, offset)
        .map_err(|source| PartitionError::Io {
            what,
            offset,
            source,
        })
}
