//! Why a qcow2 image cannot be read: one typed error per problem, each saying what is wrong and
//! where in the file (the path is added by the layer that opened the file).

use std::io;

/// A problem with a qcow2 image's header, tables or data.
#[derive(Debug, thiserror::Error)]
pub enum Qcow2Error {
    /// Reading the file failed; the kind is kept.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with `QFI\xfb`.
    #[error("no qcow2 magic at offset 0 (found {0:02x?}, expected 51 46 49 fb)")]
    BadMagic([u8; 4]),
    /// The file ends inside the header.
    #[error("the {file_len}-byte file ends inside the {need}-byte qcow2 header")]
    Truncated {
        /// Length of the file.
        file_len: u64,
        /// Bytes the header needs.
        need: u64,
    },
    /// Version other than 2 or 3.
    #[error("qcow2 version {0} at offset 4 is not supported (only 2 and 3 are)")]
    BadVersion(u32),
    /// Cluster size outside 512 bytes .. 2 MiB.
    #[error("cluster_bits {0} at offset 20 is outside 9..=21 (512-byte to 2 MiB clusters)")]
    BadClusterBits(u32),
    /// A version 3 header length that is too short, unaligned or past the first cluster.
    #[error(
        "header length {0} at offset 100 is not a multiple of 8 between 104 and the cluster size"
    )]
    BadHeaderLength(u32),
    /// Refcount order above 6.
    #[error("refcount order {0} at offset 96 is above 6 (64-bit refcounts)")]
    BadRefcountOrder(u32),
    /// The virtual size is larger than vhdprep reads.
    #[error("virtual size {0} at offset 24 is larger than the {max} bytes vhdprep reads", max = super::header::MAX_VIRTUAL_SIZE)]
    TooLarge(u64),
    /// The backing file name is too long or lies outside the first cluster.
    #[error("backing file name ({len} bytes at offset {offset}) is longer than 1023 bytes or lies outside the first cluster")]
    BadBackingName {
        /// Where the name starts.
        offset: u64,
        /// Its length.
        len: u32,
    },
    /// A header extension runs past the header area.
    #[error("header extension {kind:#010x} at offset {offset} ({len} bytes) runs past the header area ending at {end}")]
    BadExtension {
        /// Extension type.
        kind: u32,
        /// Where the extension starts.
        offset: u64,
        /// Its data length.
        len: u32,
        /// End of the header area.
        end: u64,
    },
    /// The snapshot table is damaged.
    #[error("snapshot table entry {index} at offset {offset}: {problem}")]
    BadSnapshot {
        /// Entry number.
        index: u32,
        /// Where the entry starts.
        offset: u64,
        /// What is wrong.
        problem: &'static str,
    },
    /// An encrypted image (AES or LUKS).
    #[error("the image is encrypted ({method}, crypt_method {code} at offset 32); vhdprep does not read encrypted images")]
    Encrypted {
        /// "AES" or "LUKS" or "unknown method".
        method: &'static str,
        /// The raw value.
        code: u32,
    },
    /// Guest data lives in an external data file.
    #[error("the image keeps its data in an external data file ({name}); vhdprep does not read external data files")]
    ExternalDataFile {
        /// The file named by the header extension, or a note that none is named.
        name: String,
    },
    /// Incompatible feature bits this reader does not know.
    #[error("unknown incompatible feature bits {0:#x} at offset 72")]
    UnknownFeatures(u64),
    /// A compression type other than zlib and zstd.
    #[error("unknown compression type {0} at offset 104")]
    BadCompressionType(u8),
    /// Extended L2 entries with clusters smaller than 16 KiB.
    #[error("extended L2 entries need clusters of at least 16 KiB, not {0} bytes")]
    SmallExtendedL2(u64),
    /// The header names a backing file that the caller did not supply.
    #[error("the image's backing file \"{0}\" was not given and is not next to the image")]
    MissingBacking(String),
    /// The L1 table is too small for the virtual size.
    #[error("L1 table has {entries} entries (offset 36) but the virtual size needs {needed}")]
    L1TooSmall {
        /// Entries in the header.
        entries: u32,
        /// Entries the virtual size needs.
        needed: u64,
    },
    /// The L1 table is larger than vhdprep reads.
    #[error("L1 table of {0} entries is larger than the {max} vhdprep reads", max = super::header::MAX_L1_ENTRIES)]
    L1TooLarge(u64),
    /// A table or cluster offset not aligned to a cluster.
    #[error("{what} offset {offset} is not aligned to the {cluster_size}-byte cluster")]
    Unaligned {
        /// What the offset points at.
        what: &'static str,
        /// The offset.
        offset: u64,
        /// Cluster size.
        cluster_size: u64,
    },
    /// A table or cluster lies past the end of the file.
    #[error("{what} ({len} bytes at offset {offset}) lies outside the {file_len}-byte file")]
    OutsideFile {
        /// What lies there.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// Its length.
        len: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// A table points into the header cluster.
    #[error("{what} at offset {offset} points into the header cluster")]
    PointsAtHeader {
        /// What the pointer is.
        what: &'static str,
        /// Where it points.
        offset: u64,
    },
    /// An extended L2 entry whose bitmap contradicts itself or its cluster.
    #[error("L2 entry for guest offset {guest} has an invalid subcluster bitmap {bitmap:#018x}")]
    BadSubclusters {
        /// Guest offset of the cluster.
        guest: u64,
        /// The bitmap.
        bitmap: u64,
    },
    /// A compressed cluster that does not decompress to exactly one cluster.
    #[error("compressed cluster at offset {offset} ({len} bytes, {codec}) does not decompress to one {cluster_size}-byte cluster: {problem}")]
    BadCompressed {
        /// Where the compressed data starts.
        offset: u64,
        /// Compressed length.
        len: u64,
        /// "deflate" or "zstd".
        codec: &'static str,
        /// Cluster size.
        cluster_size: u64,
        /// What the decoder said.
        problem: String,
    },
}

impl Qcow2Error {
    /// The I/O error kind this maps to when seen through [`crate::ReadAt`].
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Qcow2Error::Io(e) => e.kind(),
            _ => io::ErrorKind::InvalidData,
        }
    }
}

impl From<Qcow2Error> for io::Error {
    fn from(e: Qcow2Error) -> io::Error {
        match e {
            Qcow2Error::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
