//! The bodies of vhdprep's fuzz targets, one plain function per parser.
//!
//! They live in an ordinary workspace crate so that two things run the same code:
//! - the cargo-fuzz targets in `fuzz/fuzz_targets/` (nightly, libFuzzer, `scripts/fuzz.sh`),
//!   each a one-line wrapper around a function here;
//! - `tests/corpora.rs` on stable Rust in the ordinary test suite, which replays every seed in
//!   `fuzz/seeds/<target>/` and every past crash in `fuzz/regressions/<target>/`.
//!
//! A target must never panic, hang or allocate without bound on any input: that is exactly
//! what the fuzzer looks for. Targets ignore `Result`s; an error is a correct answer.
#![forbid(unsafe_code)]

pub mod binary;
pub mod container;
pub mod filesystem;
pub mod packages;
pub mod text;
pub mod vdi_and_chains;

/// One fuzz target: its name (the cargo-fuzz binary and the seed folder) and its body.
#[derive(Clone, Copy)]
pub struct Target {
    /// Name of the cargo-fuzz target, of `fuzz/seeds/<name>/` and `fuzz/regressions/<name>/`.
    pub name: &'static str,
    /// What the target exercises, for `scripts/fuzz.sh --list` and the README.
    pub about: &'static str,
    /// The body: parse `data` and whatever it leads to; must return on every input.
    pub run: fn(&[u8]),
}

/// Every target, in the order `scripts/fuzz.sh` runs them.
pub fn all() -> Vec<Target> {
    [
        container::TARGETS,
        filesystem::TARGETS,
        text::TARGETS,
        binary::TARGETS,
        vdi_and_chains::TARGETS,
        packages::TARGETS,
    ]
    .concat()
}

/// The target called `name`.
pub fn by_name(name: &str) -> Option<Target> {
    all().into_iter().find(|t| t.name == name)
}

/// The committed seed `fuzz/seeds/<target>/<name>`, for the tests that check a seed reaches its
/// parser.
#[cfg(test)]
pub(crate) fn seed(target: &str, name: &str) -> Vec<u8> {
    let p = format!(
        "{}/../../fuzz/seeds/{target}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}
