//! boot facts: to be written.
