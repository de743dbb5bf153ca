//! `cargo xtask gen-fixtures`: writes the committed synthetic galaxy set into `fixtures/galaxies/`.
//!
//! The set is fully determined by `sdss_io::synthetic::fixture_config()` (count, seed, size, JPEG
//! quality), so rerunning this reproduces the committed files byte for byte on the same versions of
//! the `image` crate's JPEG encoder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sdss_io::synthetic::{fixture_config, fixture_dir, write_galaxy_set, PARAMS_CSV};

/// Limit on the committed set's total size.
const MAX_TOTAL_BYTES: u64 = 3_000_000;

const USAGE: &str =
    "usage: cargo xtask gen-fixtures [--out DIR] [--count N] [--seed S] [--quality Q]\n\
    defaults: the committed set (fixtures/galaxies, see sdss_io::synthetic::fixture_config)";

pub fn run(args: &[String]) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask gen-fixtures: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: &[String]) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .ok_or("xtask has no parent folder")?;
    let mut out: PathBuf = fixture_dir(&root);
    let mut config = fixture_config();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--out" => out = PathBuf::from(value()?),
            "--count" => config.count = parse(flag, value()?)?,
            "--seed" => config.seed = parse(flag, value()?)?,
            "--quality" => config.jpeg_quality = parse(flag, value()?)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let params = write_galaxy_set(&out, &config).map_err(|e| e.to_string())?;
    // Remove images left over from an earlier, larger set so that the folder matches the CSV.
    let keep: std::collections::HashSet<String> =
        params.iter().map(|p| format!("{}.jpg", p.id)).collect();
    let mut total = 0u64;
    for entry in std::fs::read_dir(&out).map_err(|e| format!("{}: {e}", out.display()))? {
        let entry = entry.map_err(|e| format!("{}: {e}", out.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.ends_with(".jpg") && name.starts_with("gal") && !keep.contains(&name) {
            std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            continue;
        }
        if keep.contains(&name) || name == PARAMS_CSV {
            total += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    let mut per_class = std::collections::BTreeMap::new();
    for p in &params {
        *per_class.entry(p.class.name()).or_insert(0) += 1;
    }
    println!(
        "wrote {} galaxies ({}x{} JPEG, quality {}) and {PARAMS_CSV} to {}: {:.2} MB; classes {per_class:?}",
        params.len(),
        config.size,
        config.size,
        config.jpeg_quality,
        out.display(),
        total as f64 / 1e6
    );
    if total > MAX_TOTAL_BYTES {
        return Err(format!(
            "the set takes {total} bytes, over the {MAX_TOTAL_BYTES}-byte budget for committed fixtures"
        ));
    }
    Ok(())
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: cannot read {value:?}"))
}
