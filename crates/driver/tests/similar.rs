//! `similar` and `duplicates` through the real binary.

mod common;

use std::path::Path;

use common::*;
use sdss_neighbors::{ExactIndex, IdIndex, Metric, NeighborIndex};

/// `features` on the first `n` bundled galaxies: pixel features and their ids beside them.
fn pixel_features(work: &Path, n: usize) -> std::path::PathBuf {
    let images = work.join("images");
    copy_galaxies(&images, n);
    let out = work.join("pixels.npy");
    ok(
        work,
        &[
            "--quiet",
            "features",
            "--pixels",
            "--images",
            images.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    out
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[test]
fn similar_lists_the_exact_neighbours_and_draws_galleries() {
    let work = tempfile::tempdir().unwrap();
    let features = pixel_features(work.path(), 30);
    let out = work.path().join("similar");
    let stdout = ok(
        work.path(),
        &[
            "--quiet",
            "similar",
            "--features",
            features.to_str().unwrap(),
            "--query",
            "gal0003",
            "--query",
            "gal0017",
            "--k",
            "5",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(stdout.contains("2 queries x 5 neighbours"), "{stdout}");
    let rows = csv_rows(&out.join("neighbours.csv"));
    assert_eq!(rows[0], ["query_id", "rank", "neighbor_id", "distance"]);
    assert_eq!(rows.len(), 1 + 2 * 5);

    // The same neighbours and distances as the library's exact search.
    let x = sdss_io::npy::read_matrix_f32(&features).unwrap();
    let ids = sdss_io::read_ids_csv(sdss_io::stack::ids_path_for(&features)).unwrap();
    let ids = IdIndex::new(ids, x.nrows()).unwrap();
    let index = ExactIndex::new(x.view(), Metric::Euclidean).unwrap();
    for (q, chunk) in ["gal0003", "gal0017"].iter().zip(rows[1..].chunks(5)) {
        let want = index.query_row(ids.row(q).unwrap(), 5).unwrap();
        for (rank, (row, nb)) in chunk.iter().zip(&want).enumerate() {
            assert_eq!(row[0], *q);
            assert_eq!(row[1], (rank + 1).to_string());
            assert_eq!(row[2], ids.id(nb.index).unwrap());
            assert_eq!(row[3].parse::<f32>().unwrap(), nb.distance);
            assert_ne!(row[2], *q, "a galaxy is not its own neighbour");
        }
    }
    // Pixel features draw their own galleries: the query and its 5 neighbours.
    for q in ["gal0003", "gal0017"] {
        let png = image::open(out.join(format!("similar_{q}.png"))).unwrap();
        assert!(png.width() >= 6 * 160, "{}", png.width());
    }
}

#[test]
fn similar_with_images_query_file_cosine_and_approximate_index() {
    let work = tempfile::tempdir().unwrap();
    let features = pixel_features(work.path(), 40);
    // Features that are not pixels (a few columns only): galleries need --images.
    let x = sdss_io::npy::read_matrix_f32(&features).unwrap();
    let small = x.slice(ndarray::s![.., ..7]).to_owned();
    let reduced = work.path().join("reduced.npy");
    sdss_io::npy::write_npy(&reduced, &small.view()).unwrap();
    let ids = sdss_io::stack::ids_path_for(&features);
    let queries = work.path().join("queries.txt");
    std::fs::write(&queries, "# galaxies to look up\ngal0001\n\ngal0002\n").unwrap();

    let out = work.path().join("no-images");
    let run = run_in(
        work.path(),
        &[
            "similar",
            "--features",
            reduced.to_str().unwrap(),
            "--ids",
            ids.to_str().unwrap(),
            "--query-file",
            queries.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("no galleries"));
    assert_eq!(csv_rows(&out.join("neighbours.csv")).len(), 1 + 2 * 12);
    assert!(!out.join("similar_gal0001.png").exists());

    let out = work.path().join("with-images");
    ok(
        work.path(),
        &[
            "--quiet",
            "similar",
            "--features",
            reduced.to_str().unwrap(),
            "--ids",
            ids.to_str().unwrap(),
            "--query-file",
            queries.to_str().unwrap(),
            "--query",
            "gal0030",
            "--metric",
            "cosine",
            "--approximate",
            "--k",
            "3",
            "--images",
            work.path().join("images").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let rows = csv_rows(&out.join("neighbours.csv"));
    assert_eq!(rows.len(), 1 + 3 * 3);
    let distances: Vec<f32> = rows[1..].iter().map(|r| r[3].parse().unwrap()).collect();
    assert!(
        distances.iter().all(|d| (0.0..=2.0).contains(d)),
        "{distances:?}"
    );
    for q in ["gal0001", "gal0002", "gal0030"] {
        assert!(
            image::open(out.join(format!("similar_{q}.png"))).is_ok(),
            "{q}"
        );
    }
}

#[test]
fn similar_rejects_unknown_ids_large_k_and_mismatched_ids() {
    let work = tempfile::tempdir().unwrap();
    let features = pixel_features(work.path(), 10);
    let f = features.to_str().unwrap();
    let out = work.path().join("o");
    let o = out.to_str().unwrap();

    let err = fails(
        work.path(),
        &["similar", "--features", f, "--query", "nope", "--out", o],
    );
    assert!(err.contains("unknown galaxy id `nope`"), "{err}");
    let err = fails(
        work.path(),
        &[
            "similar",
            "--features",
            f,
            "--query",
            "gal0001",
            "--k",
            "10",
            "--out",
            o,
        ],
    );
    assert!(
        err.contains("--k 10") && err.contains("between 1 and 9"),
        "{err}"
    );
    let err = fails(work.path(), &["similar", "--features", f, "--out", o]);
    assert!(err.contains("no query"), "{err}");

    let short_ids = work.path().join("short.csv");
    std::fs::write(&short_ids, "id\ngal0000\ngal0001\n").unwrap();
    let err = fails(
        work.path(),
        &[
            "similar",
            "--features",
            f,
            "--ids",
            short_ids.to_str().unwrap(),
            "--query",
            "gal0001",
            "--out",
            o,
        ],
    );
    assert!(err.contains("2 galaxy ids for 10 feature rows"), "{err}");
    assert!(!out.join("neighbours.csv").exists());
}

#[test]
fn duplicates_finds_repeated_images_and_near_copies() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    let files = copy_galaxies(&images, 12);
    // An exact repeat under another name, as surveys and hand-made samples contain.
    std::fs::copy(&files[4], images.join("repeat_of_4.jpg")).unwrap();
    let groups = work.path().join("groups.csv");
    let stdout = ok(
        work.path(),
        &[
            "--quiet",
            "duplicates",
            "--images",
            images.to_str().unwrap(),
            "--out",
            groups.to_str().unwrap(),
        ],
    );
    assert!(
        stdout.contains("1 duplicate group(s) covering 2 of 13 galaxies"),
        "{stdout}"
    );
    let rows = csv_rows(&groups);
    assert_eq!(rows[0], ["group", "id"]);
    assert_eq!(rows[1..], [["0", "gal0004"], ["0", "repeat_of_4"]]);

    // Features: a row nudged a little is a duplicate only within the threshold.
    let mut x = ndarray::Array2::<f32>::zeros((4, 3));
    x.row_mut(1).fill(5.0);
    x.row_mut(2).fill(5.0);
    x[[2, 0]] = 5.01;
    x.row_mut(3).fill(9.0);
    let npy = work.path().join("x.npy");
    sdss_io::npy::write_npy(&npy, &x.view()).unwrap();
    let n = npy.to_str().unwrap();
    let exact = ok(work.path(), &["--quiet", "duplicates", "--features", n]);
    assert_eq!(exact.trim(), "group,id");
    let near = ok(
        work.path(),
        &[
            "--quiet",
            "duplicates",
            "--features",
            n,
            "--threshold",
            "0.05",
        ],
    );
    assert_eq!(near.trim(), "group,id\n0,1\n0,2");
    let err = fails(
        work.path(),
        &["duplicates", "--features", n, "--threshold=-1"],
    );
    assert!(err.contains("--threshold"), "{err}");
    let err = fails(work.path(), &["duplicates"]);
    assert!(
        err.contains("--features") || err.contains("--images"),
        "{err}"
    );
}
