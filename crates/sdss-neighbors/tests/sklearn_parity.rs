//! Exact search equals scikit-learn's `NearestNeighbors(algorithm="brute")` on the committed fixtures
//! (fixtures/neighbors/make_fixtures.py): the same neighbours in the same order, distances within
//! 1e-5 relative, for both metrics, for queries and for the all-rows graph (itself excluded).

use std::path::{Path, PathBuf};

use ndarray::Array2;
use sdss_neighbors::{ExactIndex, IvfIndex, Metric, Neighbor, NeighborIndex};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/neighbors")
        .join(name)
}

fn f32s(name: &str) -> Array2<f32> {
    sdss_io::npy::read_matrix_f32(fixture(name)).unwrap()
}

fn f64s(name: &str) -> Array2<f64> {
    sdss_io::npy::read_matrix_f64(fixture(name)).unwrap()
}

fn ints(name: &str) -> Array2<usize> {
    f64s(name).mapv(|v| v as usize)
}

/// Same neighbours in the same order, distances within 1e-5 relative. Rows 3 and 17 of X are equal,
/// so they tie exactly; scikit-learn orders such ties arbitrarily (this crate: by row), so either of
/// them is accepted where the other is expected.
fn assert_same(
    x: &Array2<f32>,
    got: &[Vec<Neighbor>],
    ind: &Array2<usize>,
    dist: &Array2<f64>,
    what: &str,
) {
    assert_eq!(got.len(), ind.nrows(), "{what}");
    for (i, row) in got.iter().enumerate() {
        assert_eq!(row.len(), ind.ncols(), "{what}: row {i}");
        for (p, n) in row.iter().enumerate() {
            let (want_index, want) = (ind[[i, p]], dist[[i, p]]);
            assert!(
                n.index == want_index || x.row(n.index) == x.row(want_index),
                "{what}: row {i}, neighbour {p}: {} vs scikit-learn {want_index}",
                n.index
            );
            let err = (f64::from(n.distance) - want).abs();
            assert!(
                err <= 1e-5 * want.abs() || (want == 0.0 && n.distance == 0.0),
                "{what}: row {i} distance {} vs scikit-learn {want}",
                n.distance
            );
        }
    }
}

#[test]
fn exact_search_matches_scikit_learn_brute() {
    let x = f32s("X.npy");
    let q = f32s("Q.npy");
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let m = metric.as_str();
        let index = ExactIndex::new(x.view(), metric).unwrap();

        let ind = ints(&format!("{m}_query_ind.npy"));
        let dist = f64s(&format!("{m}_query_dist.npy"));
        let batch = index.kneighbors(q.view(), 7).unwrap();
        assert_same(&x, &batch, &ind, &dist, &format!("{m} kneighbors(Q)"));
        let one_by_one: Vec<Vec<Neighbor>> =
            q.outer_iter().map(|r| index.query(r, 7).unwrap()).collect();
        assert_eq!(
            one_by_one, batch,
            "{m}: single queries agree with the batch"
        );

        let ind = ints(&format!("{m}_graph_ind.npy"));
        let dist = f64s(&format!("{m}_graph_dist.npy"));
        let graph = index.knn_graph(5).unwrap();
        let rows: Vec<Vec<Neighbor>> = (0..graph.len())
            .map(|i| graph.neighbors(i).collect())
            .collect();
        assert_same(&x, &rows, &ind, &dist, &format!("{m} kneighbors()"));
        // Row 17 is a copy of row 3: each is the other's nearest neighbour, at exactly 0.
        assert_eq!(
            rows[3][0],
            Neighbor {
                index: 17,
                distance: 0.0
            }
        );
        assert_eq!(
            rows[17][0],
            Neighbor {
                index: 3,
                distance: 0.0
            }
        );
    }
}

#[test]
fn approximate_index_scanning_every_cell_matches_scikit_learn_too() {
    let x = f32s("X.npy");
    let q = f32s("Q.npy");
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let m = metric.as_str();
        let mut ivf = IvfIndex::new(x.view(), metric).unwrap();
        ivf.set_n_probe(usize::MAX);
        let got: Vec<Vec<Neighbor>> = q.outer_iter().map(|r| ivf.query(r, 7).unwrap()).collect();
        let ind = ints(&format!("{m}_query_ind.npy"));
        let dist = f64s(&format!("{m}_query_dist.npy"));
        assert_same(&x, &got, &ind, &dist, &format!("{m} IVF, every cell"));
    }
}
