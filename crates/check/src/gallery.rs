//! PLACEHOLDER: gallery image-definition fields not written yet.
