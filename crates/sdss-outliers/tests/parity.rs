//! Parity with scikit-learn's `IsolationForest(random_state=0)` on committed fixtures made by
//! `tests/fixtures/make_fixtures.py`. The random streams differ (ChaCha here, numpy there), so the
//! scores agree in rank, not digit for digit: Spearman correlation at least 0.9 (measured: see the
//! assertion messages), and the same 10 most unusual rows on the planted-outlier set.

use std::path::Path;

use ndarray::{Array1, Array2, Ix1, Ix2};
use sdss_outliers::IsolationForest;

fn fixture<D: ndarray::Dimension, T: sdss_io::npy::NpyElement>(name: &str) -> ndarray::Array<T, D> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    sdss_io::npy::read_npy_as::<T>(&path)
        .unwrap()
        .into_dimensionality::<D>()
        .unwrap()
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            r[k] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

fn scores(x: &Array2<f32>, seed: u64) -> Array1<f64> {
    IsolationForest::new()
        .random_state(seed)
        .fit(x.view())
        .unwrap()
        .score_samples(x.view())
        .unwrap()
}

#[test]
fn ranks_agree_with_scikit_learn() {
    // The bound per fixture: 0.9 where scikit-learn agrees with itself across seeds (0.96 on the
    // heavy-tailed crowd); on the 4-blob mixture scikit-learn's own seeds agree only at 0.81-0.89,
    // so the bound there is that floor (see make_fixtures.py).
    for (data, reference, bound) in [
        ("heavy_x.npy", "heavy_scores.npy", 0.9),
        ("duplicates_x.npy", "duplicates_scores.npy", 0.9),
        ("mixture_x.npy", "mixture_scores.npy", 0.81),
    ] {
        let x: Array2<f32> = fixture::<Ix2, f32>(data);
        let want: Array1<f64> = fixture::<Ix1, f64>(reference);
        let got = scores(&x, 0);
        let rho = spearman(got.as_slice().unwrap(), want.as_slice().unwrap());
        assert!(rho >= bound, "{data}: Spearman {rho:.4} < {bound}");
        eprintln!("{data}: Spearman {rho:.4} against scikit-learn");
        // Same scale as scikit-learn: scores in [-1, 0], ordinary points near -0.5.
        assert!(got.iter().all(|&s| (-1.0..=0.0).contains(&s)));
        let mean_gap = (got.mean().unwrap() - want.mean().unwrap()).abs();
        assert!(mean_gap < 0.02, "{data}: mean score differs by {mean_gap}");
    }
}

#[test]
fn planted_outliers_are_the_top_ten() {
    let x: Array2<f32> = fixture::<Ix2, f32>("planted_x.npy");
    let want: Array1<i64> = fixture::<Ix1, i64>("planted_top10.npy");
    let s = scores(&x, 0);
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
    let mut top: Vec<i64> = order[..10].iter().map(|&i| i as i64).collect();
    top.sort_unstable();
    assert_eq!(top, want.to_vec());
}

#[test]
fn same_seed_same_scores_on_any_thread_count() {
    let x: Array2<f32> = fixture::<Ix2, f32>("mixture_x.npy");
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| scores(&x, 3));
    let four = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap()
        .install(|| scores(&x, 3));
    assert_eq!(one, four);
    assert_ne!(
        one,
        scores(&x, 4),
        "a different seed grows a different forest"
    );
}
