//! The real images of `fixtures/build-images.sh`, shared by the facts tests.
#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;

/// Where the fixture images are: `$VHDPREP_FIXTURE_CACHE`, else `fixtures/cache`.
pub fn fixture_dir() -> PathBuf {
    std::env::var_os("VHDPREP_FIXTURE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cache"))
}

/// The image `name` and its manifest; fails with the command that builds it when missing.
pub fn fixture(name: &str) -> (PathBuf, Value) {
    let dir = fixture_dir();
    let img = dir.join(format!("{name}.raw"));
    let man = dir.join(format!("{name}.json"));
    assert!(
        img.exists() && man.exists(),
        "fixture {name} missing in {}: build it with `fixtures/build-images.sh` (scripts/test.sh does)",
        dir.display()
    );
    let m = serde_json::from_slice(&std::fs::read(&man).unwrap()).expect("manifest JSON");
    (img, m)
}
