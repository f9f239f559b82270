//! The VHD format: footer, dynamic header, readers (fixed, dynamic, differencing) and the
//! search for a differencing disk's parent.

pub mod differencing;
pub mod dynamic;
pub mod dynamic_header;
pub mod footer;
pub mod geometry;
pub mod parent;

pub use differencing::{DifferencingError, DifferencingHeader, DifferencingVhd};
pub use dynamic::{DynamicError, DynamicVhd};
pub use dynamic_header::{DynamicHeader, ParentLocator, DYNAMIC_HEADER_SIZE};
pub use footer::{DiskType, Footer, SizeSource, FOOTER_SIZE};
pub use geometry::Geometry;
