//! The packed 128-bit extent record (`xfs_bmbt_rec`) of data forks and bmbt leaves.

/// One mapping of file blocks to filesystem blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First file block.
    pub file_block: u64,
    /// First filesystem block (AG number in the high bits).
    pub fs_block: u64,
    /// Number of blocks.
    pub count: u64,
    /// Preallocated but unwritten: reads as zeros.
    pub unwritten: bool,
}

/// Size of an on-disk extent record.
pub const EXTENT_SIZE: usize = 16;

impl Extent {
    /// Decodes one 16-byte record.
    pub fn decode(rec: &[u8; EXTENT_SIZE]) -> Extent {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&rec[..8]);
        b.copy_from_slice(&rec[8..]);
        let l0 = u64::from_be_bytes(a);
        let l1 = u64::from_be_bytes(b);
        Extent {
            unwritten: l0 >> 63 != 0,
            file_block: (l0 & ((1 << 63) - 1)) >> 9,
            fs_block: ((l0 & 0x1ff) << 43) | (l1 >> 21),
            count: l1 & ((1 << 21) - 1),
        }
    }

    /// One past the last file block.
    pub fn file_end(&self) -> u64 {
        self.file_block.saturating_add(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_packed_fields() {
        // startoff 5, startblock 0x123456, count 7, unwritten.
        let l0: u64 = (1 << 63) | (5 << 9); // startblock high bits are 0
        let l1: u64 = ((0x123456u64 & ((1 << 43) - 1)) << 21) | 7;
        let mut rec = [0u8; 16];
        rec[..8].copy_from_slice(&l0.to_be_bytes());
        rec[8..].copy_from_slice(&l1.to_be_bytes());
        let e = Extent::decode(&rec);
        assert_eq!(
            e,
            Extent {
                file_block: 5,
                fs_block: 0x123456,
                count: 7,
                unwritten: true
            }
        );
    }
}
