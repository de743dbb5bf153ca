//! Parity with astropy, in both directions, on committed fixtures made by
//! `tests/fixtures/make_fixtures.py` (development only; never run by `cargo test`):
//!
//! * catalogues astropy wrote (`astropy_catalogue.fits`, `.ecsv`) read here with every value exact;
//! * the tables our writers produce for [`sample`] are byte-identical to the committed `ours.*`, and
//!   `astropy_view.json` records what astropy read from those files: names, dtypes, units, UCDs,
//!   row count and values. So astropy's reading still applies to the current writers.
//!
//! After changing a writer on purpose: `SDSS_TABLES_UPDATE=1 cargo test -p sdss-tables --test
//! astropy`, then rerun the script and review the JSON diff.

use std::path::{Path, PathBuf};

use sdss_tables::{Column, ColumnMeta, Hdu, Table};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The table behind `ours.*`: 64-bit ids near 2^62 (one missing), positions with units and UCDs,
/// a float32 column, text with quotes, commas and non-ASCII, booleans and NaNs.
fn sample() -> Table {
    let mut t = Table::new();
    t.push(
        ColumnMeta {
            ucd: Some("meta.id;meta.main".into()),
            description: Some("SDSS objid".into()),
            ..ColumnMeta::named("objid")
        },
        Column::Int64(vec![
            Some(1237648720693755918),
            Some(4611686018427387905),
            None,
            Some(-7),
        ]),
    )
    .unwrap();
    t.push(
        ColumnMeta::ra(),
        Column::Float64(vec![0.000123, 359.9999, f64::NAN, 180.0]),
    )
    .unwrap();
    t.push(
        ColumnMeta::dec(),
        Column::Float64(vec![-89.99, 89.99, 0.0, f64::NAN]),
    )
    .unwrap();
    t.push(
        ColumnMeta {
            unit: Some("mag".into()),
            ..ColumnMeta::named("r_mag")
        },
        Column::Float32(vec![17.25, f32::NAN, 15.5, 21.0]),
    )
    .unwrap();
    t.push(
        ColumnMeta::named("label_kmeans"),
        Column::Int64(vec![Some(0), Some(3), Some(-1), Some(2)]),
    )
    .unwrap();
    t.push(
        ColumnMeta::named("note"),
        Column::Text(vec![
            Some("it's \"odd\", ok".into()),
            None,
            Some("Südstern".into()),
            Some("x".into()),
        ]),
    )
    .unwrap();
    t.push(
        ColumnMeta::named("spiral"),
        Column::Bool(vec![Some(true), Some(false), None, Some(true)]),
    )
    .unwrap();
    t
}

#[test]
fn our_writers_still_produce_the_files_astropy_read() {
    let dir = tempfile::tempdir().unwrap();
    let t = sample();
    let update = std::env::var_os("SDSS_TABLES_UPDATE").is_some();
    for name in ["ours.fits", "ours.vot", "ours.ecsv"] {
        let path = dir.path().join(name);
        match name {
            "ours.fits" => sdss_tables::write_fits(&path, &t).unwrap(),
            "ours.vot" => sdss_tables::write_votable(&path, &t).unwrap(),
            _ => sdss_tables::write_ecsv(&path, &t).unwrap(),
        }
        let bytes = std::fs::read(&path).unwrap();
        if update {
            std::fs::write(fixtures().join(name), &bytes).unwrap();
        }
        assert!(
            bytes == std::fs::read(fixtures().join(name)).unwrap(),
            "{name} differs from the committed fixture astropy was checked on"
        );
    }
}

#[test]
fn astropy_read_what_we_meant() {
    let text = std::fs::read_to_string(fixtures().join("astropy_view.json")).unwrap();
    let view: serde_json::Value = serde_json::from_str(&text).unwrap();
    for file in ["ours.fits", "ours.vot", "ours.ecsv"] {
        let v = &view[file];
        assert_eq!(v["nrows"], 4, "{file}");
        let names: Vec<&str> = v["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "objid",
                "ra",
                "dec",
                "r_mag",
                "label_kmeans",
                "note",
                "spiral"
            ],
            "{file}"
        );
        // Exact 64-bit ids (as text, so JSON cannot round them), the missing one masked.
        assert_eq!(
            v["objid"],
            serde_json::json!(["1237648720693755918", "4611686018427387905", null, "-7"]),
            "{file}"
        );
        let dtype = v["dtype"]["objid"].as_str().unwrap();
        assert!(
            dtype.contains("int64") || dtype.ends_with("i8"),
            "{file}: {dtype}"
        );
        assert_eq!(v["unit"]["ra"], "deg", "{file}");
        assert_eq!(
            v["label_kmeans"],
            serde_json::json!([0, 3, -1, 2]),
            "{file}"
        );
        assert_eq!(
            v["ra"][2],
            serde_json::Value::Null,
            "{file}: a missing ra is masked or NaN"
        );
        assert_eq!(v["note"][0], "it's \"odd\", ok", "{file}");
    }
    // TOPCAT and astropy find the sky position through the UCDs.
    assert_eq!(view["ours.vot"]["ucd"]["ra"], "pos.eq.ra;meta.main");
    assert_eq!(view["ours.ecsv"]["ucd"]["dec"], "pos.eq.dec;meta.main");
    assert_eq!(view["ours.vot"]["note"][2], "Südstern");
    assert_eq!(view["ours.ecsv"]["note"][2], "Südstern");
    // FITS text is ASCII (fitsverify rejects anything else): the writer puts `?` for the rest.
    assert_eq!(view["ours.fits"]["note"][2], "S?dstern");
    // astropy reads FITS logical nulls as False, with a warning (the FITS standard's null is 0).
    assert_eq!(view["ours.ecsv"]["spiral"][2], serde_json::Value::Null);
    for file in ["ours.vot", "ours.ecsv"] {
        assert_eq!(view[file]["warnings"], serde_json::json!([]), "{file}");
    }
}

#[test]
fn catalogues_astropy_wrote_read_exactly() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("astropy_catalogue.json")).unwrap(),
    )
    .unwrap();
    for file in ["astropy_catalogue.fits", "astropy_catalogue.ecsv"] {
        let t = sdss_tables::read_table(&fixtures().join(file)).unwrap();
        assert_eq!(
            t.nrows(),
            expected["nrows"].as_u64().unwrap() as usize,
            "{file}"
        );
        for (name, want) in expected["columns"].as_object().unwrap() {
            let col = t
                .column(name)
                .unwrap_or_else(|| panic!("{file}: no column {name}"));
            for (row, w) in want.as_array().unwrap().iter().enumerate() {
                match w {
                    serde_json::Value::Null => assert!(
                        col.is_missing(row),
                        "{file}: {name}[{row}] = {:?}",
                        col.text(row)
                    ),
                    serde_json::Value::String(s) => assert_eq!(
                        col.text(row).as_deref(),
                        Some(s.as_str()),
                        "{file}: {name}[{row}]"
                    ),
                    serde_json::Value::Bool(b) => assert_eq!(
                        col.as_f64(row),
                        Some(f64::from(u8::from(*b))),
                        "{file}: {name}[{row}]"
                    ),
                    n => assert_eq!(col.as_f64(row), n.as_f64(), "{file}: {name}[{row}]"),
                }
            }
        }
        assert_eq!(t.meta("ra").unwrap().unit.as_deref(), Some("deg"), "{file}");
        if file.ends_with(".ecsv") {
            let ra = t.meta("ra").unwrap();
            assert_eq!(ra.ucd.as_deref(), Some("pos.eq.ra;meta.main"));
            assert_eq!(
                ra.description.as_deref(),
                Some("Right ascension: J2000, 'ICRS'")
            );
        }
        assert!(
            matches!(t.column("objid"), Some(Column::Int64(_))),
            "{file}"
        );
    }
    // An unsigned 64-bit column (FITS: TZERO = 2^63; ECSV: uint64) with a value beyond i64::MAX
    // stays exact, as text.
    for file in ["astropy_catalogue.fits", "astropy_catalogue.ecsv"] {
        let t = sdss_tables::read_table(&fixtures().join(file)).unwrap();
        let uid = t.column("uid").unwrap();
        assert!(matches!(uid, Column::Text(_)), "{file}");
    }
    // The second table, chosen by number or EXTNAME; the catalogue is HDU 1, `CATALOGUE`.
    let path = fixtures().join("astropy_catalogue.fits");
    for hdu in [Hdu::Index(2), Hdu::from("flags")] {
        let t = sdss_tables::read_fits_table(&path, hdu).unwrap();
        assert_eq!(t.column_names().collect::<Vec<_>>(), ["objid", "flagged"]);
        assert_eq!(
            t.column("objid").unwrap().text(0).as_deref(),
            Some("1237648720693755918")
        );
        assert_eq!(
            t.column("flagged"),
            Some(&Column::Bool(vec![Some(true), Some(false)]))
        );
    }
    let by_name = sdss_tables::read_fits_table(&path, "CATALOGUE").unwrap();
    // (Debug text: NaN != NaN.)
    assert_eq!(
        format!("{by_name:?}"),
        format!("{:?}", sdss_tables::read_table(&path).unwrap())
    );
}

#[test]
fn fitsverify_accepts_the_committed_fits() {
    for name in ["ours.fits", "astropy_catalogue.fits"] {
        let path = fixtures().join(name);
        match std::process::Command::new("fitsverify")
            .arg("-q")
            .arg(&path)
            .output()
        {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success() && text.contains("verification OK"),
                    "fitsverify {name}: {text}"
                );
            }
            Err(_) => eprintln!(
                "\n*** NOTE: fitsverify is not installed (apt-get install fitsverify); {name} \
                 was NOT checked ***\n"
            ),
        }
    }
}
