//! Replays every committed fuzz input on stable Rust: the seeds in `fuzz/seeds/<target>/` and the
//! crashes once found, kept in `fuzz/regressions/<target>/`. Also keeps the cargo-fuzz
//! directory in step with the target list, so no target exists in one place only.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_regression_runs_to_completion() {
    let targets = vhdprep_fuzz::all();
    assert!(!targets.is_empty(), "no fuzz targets registered");
    for t in targets {
        let seeds = files_in(&fuzz_dir().join("seeds").join(t.name));
        assert!(!seeds.is_empty(), "fuzz/seeds/{} has no seed", t.name);
        let regressions = files_in(&fuzz_dir().join("regressions").join(t.name));
        for input in seeds.iter().chain(&regressions) {
            let data = std::fs::read(input).unwrap();
            eprintln!("{}: {}", t.name, input.display());
            (t.run)(&data);
        }
    }
}

#[test]
fn cargo_fuzz_targets_match_the_registry() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    // Each [[bin]] block names one target and points at its own wrapper file.
    let mut bins: Vec<String> = Vec::new();
    for block in manifest.split("\n[[bin]]\n").skip(1) {
        let field = |key: &str| {
            block
                .lines()
                .filter_map(|l| l.trim().strip_prefix(key))
                .map(|v| v.trim().trim_matches('"').to_string())
                .collect::<Vec<_>>()
        };
        let (names, paths) = (field("name ="), field("path ="));
        assert_eq!(
            names.len(),
            1,
            "a [[bin]] block without exactly one name: {block}"
        );
        assert_eq!(
            paths,
            [format!("fuzz_targets/{}.rs", names[0])],
            "[[bin]] {}",
            names[0]
        );
        bins.push(names[0].clone());
    }
    bins.sort();
    let mut names: Vec<String> = vhdprep_fuzz::all()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        bins, names,
        "fuzz/Cargo.toml [[bin]]s and vhdprep_fuzz::all()"
    );
    for name in &names {
        let src = std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{name}.rs: {e}"));
        assert!(
            src.contains(&format!("by_name(\"{name}\")")) || src.contains(&format!("::{name}(")),
            "fuzz/fuzz_targets/{name}.rs does not call its body"
        );
    }
    // Names are unique.
    let mut dedup = names.clone();
    dedup.dedup();
    assert_eq!(dedup, names);
}
