//! The `vhdprep` command line: a thin layer over the library crates.
#![forbid(unsafe_code)]

mod cli;

fn main() {
    // Panics inside ext4-view are caught and reported as a corrupt file in one line; keep the
    // panic hook from printing them first.
    vhdprep::fs::ext4::quiet_contained_panics();
    std::process::exit(cli::run());
}
