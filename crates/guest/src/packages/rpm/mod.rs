//! rpm's installed-package databases, read from the guest tree without rpm or SQLite:
//! the header blob format and each database that stores those blobs.
