//! `run --catalog`: the join's counts, the properties pages, the unusual galaxies, the map and the
//! FITS / VOTable / ECSV tables, read back with sdss-tables' reader and checked by `fitsverify`
//! where it is installed.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::*;
use sdss_tables::Column;

/// A made-up catalogue for `ids`: every `skip`-th galaxy left out, `extra` rows for galaxies that
/// were not imaged, one id repeated (ambiguous), 64-bit objids, and two numeric properties that
/// depend on the row (so clusters differ in them).
fn write_catalogue(path: &Path, ids: &[String], skip: usize, extra: usize, repeat: usize) {
    let mut text = String::from("objid,galaxy,lambda_re,ellip,note\n");
    for (i, id) in ids.iter().enumerate() {
        if i % skip == 0 {
            continue;
        }
        let objid = 1_237_648_720_693_755_000i64 + i as i64;
        let lambda = if i % 7 == 3 {
            String::new()
        } else {
            format!("{:.4}", (i % 13) as f64 / 13.0)
        };
        let _ = writeln!(
            text,
            "{objid},{id},{lambda},{:.3},\"a, b\"",
            (i % 5) as f64 / 5.0
        );
        if i == repeat {
            let _ = writeln!(text, "{},{id},0.5,0.5,duplicate", objid + 1_000_000);
        }
    }
    for k in 0..extra {
        let _ = writeln!(
            text,
            "{},not_imaged_{k},0.1,0.2,",
            1_237_648_000_000_000_000i64 + k as i64
        );
    }
    std::fs::write(path, text).unwrap();
}

fn ids_of(images: &Path) -> Vec<String> {
    sdss_io::folder::list_images(images)
        .unwrap()
        .iter()
        .map(|p| sdss_io::folder::galaxy_id(p))
        .collect()
}

fn labels_csv(path: &Path) -> (Vec<String>, Vec<Vec<i64>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let mut cols = vec![Vec::new(); header.len() - 1];
    for line in lines {
        for (k, v) in line.split(',').skip(1).enumerate() {
            cols[k].push(v.parse().unwrap());
        }
    }
    (header[1..].to_vec(), cols)
}

fn csv_rows(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count() - 1
}

/// Runs `fitsverify` on `path` when it is installed (`.ci/run` installs it).
fn fitsverify(path: &Path) {
    match std::process::Command::new("fitsverify")
        .arg("-q")
        .arg(path)
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains("OK"),
                "fitsverify {}:\n{text}{}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => eprintln!(
            "NOTE: fitsverify not installed; {} not verified",
            path.display()
        ),
    }
}

/// Checks the three tables of a run in `out` against `labels.csv` and the join's counts.
fn check_tables(out: &Path, n: usize, matched: usize) {
    let (slugs, labels) = labels_csv(&out.join("labels.csv"));
    fitsverify(&out.join("galaxies.fits"));
    for file in ["galaxies.fits", "galaxies.ecsv"] {
        let t = sdss_tables::read_table(&out.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(t.nrows(), n, "{file}");
        for (slug, want) in slugs.iter().zip(&labels) {
            let name = format!("label_{}", slug.replace('-', "_"));
            let col = t
                .column(&name)
                .unwrap_or_else(|| panic!("{file}: no {name}"));
            let got: Vec<i64> = (0..n).map(|r| col.as_f64(r).unwrap() as i64).collect();
            assert_eq!(&got, want, "{file}: {name}");
        }
        for name in [
            "anomaly_iforest",
            "anomaly_knn",
            "map_x",
            "map_y",
            "pca_1",
            "lambda_re",
        ] {
            assert!(t.column(name).is_some(), "{file}: no {name}");
        }
        // The 64-bit objids survive exactly, and only joined galaxies have one.
        let objid = t.column("objid").unwrap();
        assert!(
            matches!(objid, Column::Int64(_)),
            "{file}: objid is {objid:?}"
        );
        let with_objid = (0..n).filter(|&r| !objid.is_missing(r)).count();
        assert_eq!(with_objid, matched, "{file}");
        let first = (0..n).find(|&r| !objid.is_missing(r)).unwrap();
        assert_eq!(
            objid.text(first).unwrap(),
            format!("{}", 1_237_648_720_693_755_000i64 + first as i64)
        );
    }
    let vot = std::fs::read_to_string(out.join("galaxies.vot")).unwrap();
    assert!(
        vot.contains("<VOTABLE") && vot.contains("name=\"objid\""),
        "{}",
        &vot[..500.min(vot.len())]
    );
    assert_eq!(vot.matches("<TR>").count(), n);
}

#[test]
fn catalogue_join_properties_map_and_tables() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 60);
    let ids = ids_of(&images);
    let catalogue = work.path().join("catalogue.csv");
    // 60 galaxies, every 6th left out (10), 4 rows for galaxies not imaged, galaxy 7 twice.
    write_catalogue(&catalogue, &ids, 6, 4, 7);
    let out = work.path().join("out");
    ok(
        work.path(),
        &[
            "--quiet",
            "run",
            "--images",
            images.to_str().unwrap(),
            "--features",
            "pixels",
            "--pca",
            "10",
            "--method",
            "kmeans:k=4",
            "--method",
            "agglomerative:k=5,linkage=ward",
            "--catalog",
            catalogue.to_str().unwrap(),
            "--catalog-id",
            "galaxy",
            "--property",
            "lambda_re",
            "--property",
            "ellip",
            "--scatter",
            "ellip,lambda_re",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    // Exact counts: 10 left out + galaxy 7 ambiguous; 4 extra rows unmatched; 2 rows for galaxy 7.
    assert_eq!(csv_rows(&out.join("catalog_unmatched_galaxies.csv")), 10);
    assert_eq!(csv_rows(&out.join("catalog_ambiguous.csv")), 2);
    assert_eq!(csv_rows(&out.join("catalog_unmatched_rows.csv")), 4);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["catalog"]["matched"], 49);
    assert_eq!(run["catalog"]["ambiguous"], 1);
    assert_eq!(run["catalog"]["unmatched_catalog_rows"], 4);

    // Properties: one page per method, the numbers in a CSV with N + missing = cluster size.
    for slug in ["kmeans", "agglomerative"] {
        assert!(out.join(format!("properties_{slug}.html")).exists());
        assert!(out
            .join(format!("properties_{slug}_lambda_re.png"))
            .exists());
        assert!(out
            .join(format!("properties_{slug}_lambda_re_vs_ellip.png"))
            .exists());
        let csv = std::fs::read_to_string(out.join(format!("properties_{slug}.csv"))).unwrap();
        let total: usize = csv
            .lines()
            .skip(1)
            .filter(|l| l.starts_with("lambda_re,"))
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                f[2].parse::<usize>().unwrap() + f[3].parse::<usize>().unwrap()
            })
            .sum();
        assert_eq!(total, 60, "{slug}");
    }
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    for link in [
        "properties_kmeans.html",
        "map.html",
        "galaxies.fits",
        "unusual_isolation_forest.png",
    ] {
        assert!(index.contains(link), "index.html lacks {link}");
    }
    assert_eq!(csv_rows(&out.join("unusual.csv")), 60);
    let xy = sdss_io::npy::read_npy_as::<f32>(out.join("embedding_2d.npy")).unwrap();
    assert_eq!(xy.shape(), &[60, 2]);
    check_tables(&out, 60, 49);
}

#[test]
fn sky_match_with_positions_file() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 30);
    let ids = ids_of(&images);
    let mut positions = String::from("id,ra,dec\n");
    let mut catalogue = String::from("RA,Dec,mass\n");
    for (i, id) in ids.iter().enumerate() {
        // Spread over the sky, including either side of ra = 0 and near the pole.
        let ra = (359.9995 + i as f64 * 12.0) % 360.0;
        let dec = if i == 5 {
            89.9999
        } else {
            -60.0 + i as f64 * 4.0
        };
        let _ = writeln!(positions, "{id},{ra},{dec}");
        if i % 10 != 0 {
            // 0.5 arcsec away in dec; galaxies 0, 10, 20 have no counterpart.
            let _ = writeln!(
                catalogue,
                "{},{},{}",
                ra,
                dec - 0.5 / 3600.0,
                10.0 + i as f64
            );
        }
    }
    catalogue.push_str("10.0,10.0,1.0\n");
    let positions_file = work.path().join("positions.csv");
    let catalogue_file = work.path().join("catalogue.csv");
    std::fs::write(&positions_file, positions).unwrap();
    std::fs::write(&catalogue_file, catalogue).unwrap();
    let out = work.path().join("out");
    ok(
        work.path(),
        &[
            "--quiet",
            "run",
            "--images",
            images.to_str().unwrap(),
            "--features",
            "pixels",
            "--pca",
            "5",
            "--method",
            "kmeans:k=3",
            "--no-map",
            "--catalog",
            catalogue_file.to_str().unwrap(),
            "--match-radius",
            "1.0",
            "--positions",
            positions_file.to_str().unwrap(),
            "--property",
            "mass",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(csv_rows(&out.join("catalog_unmatched_galaxies.csv")), 3);
    assert_eq!(csv_rows(&out.join("catalog_unmatched_rows.csv")), 1);
    let t = sdss_tables::read_table(&out.join("galaxies.ecsv")).unwrap();
    let sep = t.column("match_separation").unwrap();
    assert!((sep.as_f64(1).unwrap() - 0.5).abs() < 1e-6);
    assert!(t.column("ra").is_some() && t.column("dec").is_some());
    assert!(!out.join("map.html").exists());
}

#[test]
fn catalogue_mistakes_are_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 12);
    let ids = ids_of(&images);
    let catalogue = work.path().join("catalogue.csv");
    write_catalogue(&catalogue, &ids, 3, 0, usize::MAX);
    let base = |extra: &[&str]| -> String {
        let out = work.path().join("out");
        let mut args = vec![
            "--quiet",
            "run",
            "--images",
            images.to_str().unwrap(),
            "--features",
            "pixels",
            "--pca",
            "3",
            "--method",
            "kmeans:k=2",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        fails(work.path(), &args)
    };
    let cat = catalogue.to_str().unwrap();
    let err = base(&["--catalog", cat]);
    assert!(
        err.contains("no id column `id`") && err.contains("galaxy"),
        "{err}"
    );
    let err = base(&["--catalog", cat, "--catalog-id", "objid"]);
    assert!(err.contains("matched none of the 12 galaxies"), "{err}");
    let err = base(&[
        "--catalog",
        cat,
        "--catalog-id",
        "galaxy",
        "--property",
        "mass",
    ]);
    assert!(
        err.contains("no column `mass`") && err.contains("lambda_re"),
        "{err}"
    );
    let err = base(&[
        "--catalog",
        cat,
        "--catalog-id",
        "galaxy",
        "--property",
        "note",
    ]);
    assert!(err.contains("`note` is text"), "{err}");
    let err = base(&[
        "--catalog",
        cat,
        "--catalog-id",
        "galaxy",
        "--match-radius",
        "2",
    ]);
    assert!(err.contains("ra and dec"), "{err}");
    let err = base(&["--property", "lambda_re"]);
    assert!(err.contains("need a --catalog"), "{err}");
    let err = base(&["--catalog", cat, "--scatter", "ellip"]);
    assert!(err.contains("X,Y"), "{err}");
}

#[test]
#[ignore = "needs ../shared"]
fn real_galaxies_catalogue_tables_and_labels_agree() {
    let images =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sdss-6437/images");
    let work = tempfile::tempdir().unwrap();
    let ids = ids_of(&images);
    assert_eq!(ids.len(), 6437);
    let catalogue = work.path().join("catalogue.csv");
    // Every 9th galaxy missing (716), 25 rows for galaxies not imaged, galaxy 100 twice.
    write_catalogue(&catalogue, &ids, 9, 25, 100);
    let out = work.path().join("out");
    ok(
        work.path(),
        &[
            "--quiet",
            "run",
            "--images",
            images.to_str().unwrap(),
            "--features",
            "pixels",
            "--pca",
            "20",
            "--method",
            "kmeans:k=10",
            "--catalog",
            catalogue.to_str().unwrap(),
            "--catalog-id",
            "galaxy",
            "--property",
            "lambda_re",
            "--scatter",
            "ellip,lambda_re",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let missing = (0..6437).filter(|i| i % 9 == 0).count();
    assert_eq!(
        csv_rows(&out.join("catalog_unmatched_galaxies.csv")),
        missing
    );
    assert_eq!(csv_rows(&out.join("catalog_ambiguous.csv")), 2);
    assert_eq!(csv_rows(&out.join("catalog_unmatched_rows.csv")), 25);
    check_tables(&out, 6437, 6437 - missing - 1);
}
