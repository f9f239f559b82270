//! Why a VHDX file cannot be read. Each message is one line with the file offset of the
//! problem and no path (the caller prefixes the file name).

use std::io;

/// Why a VHDX file's header, log, metadata or block table cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum VhdxError {
    /// An I/O error while reading a structure; keeps the OS error and its kind.
    #[error("cannot read the {what} at offset {offset}: {source}")]
    Io {
        /// Which structure.
        what: &'static str,
        /// Where in the file.
        offset: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The first 8 bytes are not `vhdxfile`.
    #[error("not a VHDX file: no 'vhdxfile' signature at offset 0")]
    NotVhdx,
    /// Neither header at 64 KiB nor at 128 KiB is valid.
    #[error(
        "no valid VHDX header: the one at offset 65536 {first}; the one at offset 131072 {second}"
    )]
    NoValidHeader {
        /// Why the first is unusable.
        first: String,
        /// Why the second is unusable.
        second: String,
    },
    /// Neither region table copy is valid.
    #[error("no valid region table: the one at offset 196608 {first}; the one at offset 262144 {second}")]
    NoValidRegionTable {
        /// Why the first is unusable.
        first: String,
        /// Why the second is unusable.
        second: String,
    },
    /// A structure lies (partly) outside the file or is misaligned.
    #[error("{what} ({len} bytes at offset {offset}) {why}")]
    BadPlace {
        /// Which structure.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// Its length.
        len: u64,
        /// What is wrong ("lies outside the N-byte file", "is not 1 MiB aligned" ...).
        why: String,
    },
    /// The metadata region or one of its items is malformed.
    #[error("metadata {what} at offset {offset}: {why}")]
    Metadata {
        /// Which item or table.
        what: &'static str,
        /// Where.
        offset: u64,
        /// What is wrong.
        why: String,
    },
    /// A region or metadata item this reader does not know is marked required.
    #[error("{what} {guid} at offset {offset} is marked required but is unknown to vhdprep")]
    UnknownRequired {
        /// "region" or "metadata item".
        what: &'static str,
        /// Its GUID.
        guid: uuid::Uuid,
        /// Where its table entry is.
        offset: u64,
    },
    /// The log is non-empty but longer than vhdprep replays in memory.
    #[error("the log ({len} bytes at offset {offset}) must be replayed but is longer than the {cap} bytes vhdprep replays in memory; open the file once read-write with Hyper-V or `qemu-img check -r all` on a copy")]
    LogTooLarge {
        /// Log offset.
        offset: u64,
        /// Log length.
        len: u64,
        /// [`crate::vhdx::log::MAX_LOG_LEN`].
        cap: u64,
    },
    /// The log must be replayed but cannot be.
    #[error("the log must be replayed but cannot be: {why} (offset {offset}); open the file once read-write with Hyper-V or `qemu-img check -r all` on a copy")]
    LogReplay {
        /// Where the problem is.
        offset: u64,
        /// What is wrong.
        why: String,
    },
    /// The BAT needs more entries than vhdprep loads.
    #[error("the block allocation table at offset {offset} needs {entries} entries, more than the {cap} vhdprep reads")]
    BatTooLarge {
        /// BAT offset.
        offset: u64,
        /// Entries needed.
        entries: u64,
        /// [`crate::vhdx::bat::MAX_BAT_ENTRIES`].
        cap: u64,
    },
    /// A BAT entry is invalid.
    #[error("BAT entry {index} (at offset {offset}): {why}")]
    BadBatEntry {
        /// Entry index.
        index: u64,
        /// File offset of the entry.
        offset: u64,
        /// What is wrong.
        why: String,
    },
    /// A differencing disk opened without its parent.
    #[error("differencing VHDX whose data depends on a parent disk that was not given; parent locator: {locators}")]
    MissingParent {
        /// The parent locator entries, `key=value` joined by `, `.
        locators: String,
    },
    /// The parent's size differs from the child's virtual size.
    #[error("the parent disk is {parent} bytes but the differencing VHDX is {child} bytes")]
    ParentSize {
        /// Parent length.
        parent: u64,
        /// Child virtual size.
        child: u64,
    },
}

impl VhdxError {
    /// An I/O error reading `what` at `offset`.
    pub(crate) fn io(what: &'static str, offset: u64) -> impl FnOnce(io::Error) -> VhdxError {
        move |source| VhdxError::Io {
            what,
            offset,
            source,
        }
    }
}

impl From<VhdxError> for io::Error {
    /// I/O errors keep their kind; damaged structures are `InvalidData`.
    fn from(e: VhdxError) -> io::Error {
        let kind = match &e {
            VhdxError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e.to_string())
    }
}
