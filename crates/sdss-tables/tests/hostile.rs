//! Hostile input: the `tables` fuzz target's committed seeds (real tables, which must read) and its
//! regression inputs (what the fuzzer found, which must give a typed error or a table, never a
//! panic or a stack overflow), run on stable through the same entry points as
//! `fuzz/fuzz_targets/tables.rs`.

use std::path::{Path, PathBuf};

fn files(kind: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join("tables");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// The fuzz target's body: the first byte picks FITS, ECSV or CSV; whatever reads must write back.
fn tables_target(data: &[u8]) -> Result<(), String> {
    let Some((&kind, rest)) = data.split_first() else {
        return Err("empty input".into());
    };
    let path = Path::new("fuzz.table");
    let text = || std::str::from_utf8(rest).map_err(|e| e.to_string());
    let table = match kind % 3 {
        0 => sdss_tables::parse_fits(rest, path, None),
        1 => sdss_tables::parse_ecsv(text()?, path),
        _ => sdss_tables::parse_csv(text()?, path),
    }
    .map_err(|e| e.to_string())?;
    sdss_tables::to_fits_bytes(&table).map_err(|e| e.to_string())?;
    for (_, column) in table.columns() {
        for row in 0..table.nrows().min(64) {
            let _ = column.text(row);
        }
    }
    Ok(())
}

#[test]
fn tables_seeds_read_and_regressions_do_not_panic() {
    let seeds = files("seeds");
    assert!(seeds.len() >= 5, "the tables seed corpus is committed");
    for path in &seeds {
        let data = std::fs::read(path).unwrap();
        tables_target(&data).unwrap_or_else(|e| panic!("seed {}: {e}", path.display()));
    }
    let regressions = files("regressions");
    assert!(
        !regressions.is_empty(),
        "the tables regressions are committed"
    );
    for path in regressions {
        let data = std::fs::read(&path).unwrap();
        let _ = tables_target(&data);
    }
}

#[test]
fn deeply_nested_column_meta_is_read_without_overflowing_the_stack() {
    // 100,000 open brackets in a column's meta: before the depth bound this recursed once per
    // bracket (or forever on an unclosed one).
    let deep = "[".repeat(100_000);
    let ecsv = format!(
        "# %ECSV 1.0\n# ---\n# datatype:\n# - {{name: a, datatype: int64, meta: {deep}}}\n# schema: astropy-2.0\na\n1\n"
    );
    let _ = sdss_tables::parse_ecsv(&ecsv, Path::new("deep.ecsv"));
    let unclosed = "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: a, datatype: int64, meta: {ucd}\n# schema: astropy-2.0\na\n1\n";
    let _ = sdss_tables::parse_ecsv(unclosed, Path::new("unclosed.ecsv"));
}
