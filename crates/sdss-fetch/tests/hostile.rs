//! Hostile input: the fuzz targets' committed seeds (real files) and regression inputs (what the
//! fuzzers found), run on stable through the same entry points as `fuzz/fuzz_targets/{catalog,
//! fetch_body}.rs`; and the bound on one catalogue row.

use std::path::{Path, PathBuf};

use sdss_fetch::{check_jpeg, parse_catalog, CatalogError};

fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn catalogue_seeds_parse_and_regressions_do_not_panic() {
    let seeds = files("seeds", "catalog");
    assert!(seeds.len() >= 2, "the catalogue seed corpus is committed");
    for path in &seeds {
        let text = std::fs::read_to_string(path).unwrap();
        let galaxies =
            parse_catalog(&text, path).unwrap_or_else(|e| panic!("seed {}: {e}", path.display()));
        assert!(!galaxies.is_empty(), "{}", path.display());
    }
    for path in files("regressions", "catalog") {
        let data = std::fs::read(&path).unwrap();
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = parse_catalog(text, &path);
        }
    }
}

#[test]
fn body_seeds_and_regressions_do_not_panic() {
    // As in the fuzz target, the first byte picks the content type the server claimed.
    let types = [
        Some("image/jpeg"),
        None,
        Some("text/html; charset=utf-8"),
        Some("application/octet-stream"),
    ];
    let seeds = files("seeds", "fetch_body");
    assert!(seeds.len() >= 3, "the body seed corpus is committed");
    let mut accepted = 0;
    for path in seeds.iter().chain(&files("regressions", "fetch_body")) {
        let data = std::fs::read(path).unwrap();
        let Some((&pick, body)) = data.split_first() else {
            continue;
        };
        if check_jpeg(body, types[usize::from(pick) % types.len()], 424, 424).is_ok() {
            accepted += 1;
        }
    }
    assert!(
        accepted >= 1,
        "the real cutouts among the seeds are accepted"
    );
}

#[test]
fn a_catalogue_line_of_megabytes_is_refused_naming_the_file_the_line_and_the_limit() {
    let mut text = String::from("objid,ra,dec,petroR50_r\n1,10.0,0.5,2.0\n");
    text.push_str(&"9".repeat(3 << 20));
    text.push_str(",1,1,1\n");
    let err = parse_catalog(&text, Path::new("big.csv")).unwrap_err();
    assert!(matches!(err, CatalogError::Read { .. }), "{err:?}");
    let message = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(message.contains("big.csv"), "{message}");
    assert!(
        message.contains(":3:") && message.contains("1048576 bytes"),
        "{message}"
    );
}
