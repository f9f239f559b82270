//! The `vhdprep` command line: a thin layer over the library crates.
#![forbid(unsafe_code)]

mod cli;

fn main() {
    std::process::exit(cli::run());
}
