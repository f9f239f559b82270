//! The VHD format: footer, dynamic header, readers.

pub mod dynamic;
pub mod dynamic_header;
pub mod footer;
pub mod geometry;

pub use dynamic::{DynamicError, DynamicVhd};
pub use dynamic_header::{DynamicHeader, ParentLocator, DYNAMIC_HEADER_SIZE};
pub use footer::{DiskType, Footer, SizeSource, FOOTER_SIZE};
pub use geometry::Geometry;
