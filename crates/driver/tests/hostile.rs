//! Hostile `run --config` files: the fuzz target's committed seeds (real configurations, which must
//! resolve and build every method) and its regression inputs (which must give an error or a config,
//! never a panic), through the same calls as `fuzz/fuzz_targets/config.rs`.

use std::path::{Path, PathBuf};

use driver::cli::RunArgs;
use driver::config::{MethodSpec, RunConfig};

fn files(kind: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join("config");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// What the fuzz target does with one input.
fn config_target(text: &str) -> anyhow::Result<RunConfig> {
    let config = RunConfig::resolve_with_file(
        &RunArgs::default(),
        Some((text, Path::new("fuzz/config.toml"))),
    )?;
    for method in &config.methods {
        MethodSpec::parse(method)?.build()?;
    }
    config.to_toml()?;
    Ok(config)
}

#[test]
fn config_seeds_resolve_and_regressions_do_not_panic() {
    let seeds = files("seeds");
    assert!(seeds.len() >= 2, "the config seed corpus is committed");
    for path in &seeds {
        let text = std::fs::read_to_string(path).unwrap();
        let config =
            config_target(&text).unwrap_or_else(|e| panic!("seed {}: {e:#}", path.display()));
        assert!(!config.methods.is_empty());
    }
    for path in files("regressions") {
        let data = std::fs::read(&path).unwrap();
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = config_target(text);
        }
    }
}

#[test]
fn a_config_error_names_the_file() {
    let err = config_target("pca = \"lots\"\n").unwrap_err();
    assert!(format!("{err:#}").contains("fuzz/config.toml"), "{err:#}");
}
