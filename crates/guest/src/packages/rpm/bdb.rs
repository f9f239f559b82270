//! Berkeley DB hash reader (in progress).

/// Why a Berkeley DB hash database could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BdbError {
    /// Not read yet.
    #[error("not supported yet")]
    Unsupported,
}

/// Calls `f` with each header blob of the database; `f` returns false to stop.
pub fn for_each_blob(_bytes: &[u8], _f: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), BdbError> {
    Err(BdbError::Unsupported)
}
