//! The three solvers agree with each other; the randomized one is seeded, handles both
//! orientations and rank-deficient data.

use ndarray::{s, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sdss_pca::{NComponents, Pca, SvdSolver};

/// Low-rank signal with decaying scales, plus noise and an offset.
fn low_rank(n: usize, p: usize, rank: usize, noise: f64, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = move || {
        // Sum of 12 uniforms: close enough to Gaussian for test data.
        (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0
    };
    let u = Array2::from_shape_fn((n, rank), |_| normal());
    let v = Array2::from_shape_fn((rank, p), |_| normal());
    let scales = Array2::from_shape_fn((rank, 1), |(r, _)| 3.0 / (1.0 + r as f64));
    let mut x = u.dot(&(&v * &scales)) / (p as f64).sqrt();
    x.mapv_inplace(|val| val + noise * normal() + 2.0);
    x
}

fn max_diff(a: ndarray::ArrayView2<f64>, b: ndarray::ArrayView2<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn randomized_agrees_with_full_in_both_orientations() {
    for (n, p) in [(120, 700), (700, 150)] {
        let x = low_rank(n, p, 15, 0.05, 1);
        let exact = Pca::new(10)
            .svd_solver(SvdSolver::Full)
            .fit(x.view())
            .unwrap();
        let fast = Pca::new(10)
            .svd_solver(SvdSolver::Randomized)
            .fit(x.view())
            .unwrap();
        assert_eq!(fast.svd_solver(), SvdSolver::Randomized);
        let diff =
            (fast.total_explained_variance_ratio() - exact.total_explained_variance_ratio()).abs();
        assert!(
            diff < 1e-6,
            "{n}x{p}: explained variance differs by {diff:e}"
        );
        for (a, b) in fast
            .explained_variance_ratio()
            .iter()
            .zip(exact.explained_variance_ratio())
        {
            assert!((a - b).abs() < 1e-6, "{n}x{p}: {a} vs {b}");
        }
        // Well-separated leading components match, signs included.
        let d = max_diff(
            fast.components().slice(s![..5, ..]),
            exact.components().slice(s![..5, ..]),
        );
        assert!(d < 1e-4, "{n}x{p}: components differ by {d:e}");
        // fit_transform returns U S, as scikit-learn's does; for a truncated randomized SVD
        // that equals transform's X V only up to the approximation's residual.
        let (_, direct) = Pca::new(10)
            .svd_solver(SvdSolver::Randomized)
            .fit_transform(x.view())
            .unwrap();
        let projected = fast.transform(x.view()).unwrap();
        let scale = projected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let d = max_diff(direct.view(), projected.view());
        assert!(
            d < 1e-3 * scale,
            "{n}x{p}: fit_transform vs transform differ by {d:e} (scale {scale})"
        );
    }
}

#[test]
fn covariance_eigh_agrees_with_full() {
    let x = low_rank(500, 30, 8, 0.1, 2);
    let a = Pca::new(NComponents::All)
        .svd_solver(SvdSolver::Full)
        .fit(x.view())
        .unwrap();
    let b = Pca::new(NComponents::All).fit(x.view()).unwrap();
    assert_eq!(b.svd_solver(), SvdSolver::CovarianceEigh);
    for (u, v) in a.explained_variance().iter().zip(b.explained_variance()) {
        assert!(
            (u - v).abs() < 1e-10 * a.explained_variance()[0],
            "{u} vs {v}"
        );
    }
    let d = max_diff(
        a.components().slice(s![..8, ..]),
        b.components().slice(s![..8, ..]),
    );
    assert!(d < 1e-8, "components differ by {d:e}");
    assert!((a.noise_variance() - b.noise_variance()).abs() < 1e-10);
}

#[test]
fn randomized_is_deterministic_per_seed() {
    let x = low_rank(90, 600, 30, 0.3, 3).mapv(|v| v as f32);
    let fit = |seed| Pca::new(8).random_state(seed).fit(x.view()).unwrap();
    let (a, b, c) = (fit(0), fit(0), fit(1));
    assert_eq!(a, b);
    assert_ne!(a.components(), c.components());
    let diff = (a.total_explained_variance_ratio() - c.total_explained_variance_ratio()).abs();
    assert!(diff < 1e-4, "seeds disagree by {diff:e}");
}

#[test]
fn randomized_handles_rank_deficient_data() {
    // Exactly rank 3 after centring, 6 components asked: the extra ones carry ~zero variance.
    let x = low_rank(80, 520, 3, 0.0, 4);
    let model = Pca::new(6)
        .svd_solver(SvdSolver::Randomized)
        .iterated_power(4)
        .fit(x.view())
        .unwrap();
    assert!(model.components().iter().all(|v| v.is_finite()));
    let top3: f64 = model.explained_variance_ratio().slice(s![..3]).sum();
    assert!((top3 - 1.0).abs() < 1e-9, "top 3 explain {top3}");
    assert!(model.explained_variance_ratio()[5].abs() < 1e-9);
    // The components stay orthonormal.
    let gram = model.components().dot(&model.components().t());
    for i in 0..6 {
        for j in 0..6 {
            let expected = if i == j { 1.0 } else { 0.0 };
            assert!(
                (gram[(i, j)] - expected).abs() < 1e-6,
                "gram[{i},{j}] = {}",
                gram[(i, j)]
            );
        }
    }
}

#[test]
fn float32_and_float64_agree() {
    let x = low_rank(300, 40, 10, 0.05, 5);
    let x32 = x.mapv(|v| v as f32);
    for solver in [
        SvdSolver::Full,
        SvdSolver::CovarianceEigh,
        SvdSolver::Randomized,
    ] {
        let a = Pca::new(5).svd_solver(solver).fit(x.view()).unwrap();
        let b = Pca::new(5).svd_solver(solver).fit(x32.view()).unwrap();
        for (u, v) in a
            .explained_variance_ratio()
            .iter()
            .zip(b.explained_variance_ratio())
        {
            assert!((u - *v as f64).abs() < 1e-5, "{solver}: {u} vs {v}");
        }
    }
}

#[test]
fn inverse_transform_reconstructs_with_all_components() {
    let x = low_rank(50, 12, 12, 0.1, 6);
    for whiten in [false, true] {
        let model = Pca::new(NComponents::All)
            .whiten(whiten)
            .fit(x.view())
            .unwrap();
        let back = model
            .inverse_transform(model.transform(x.view()).unwrap().view())
            .unwrap();
        let d = max_diff(back.view(), x.view());
        assert!(d < 1e-10, "whiten={whiten}: reconstruction error {d:e}");
    }
}

#[test]
fn whitened_projection_has_unit_variance() {
    let x = low_rank(400, 25, 6, 0.2, 7);
    let model = Pca::new(4).whiten(true).fit(x.view()).unwrap();
    let y = model.transform(x.view()).unwrap();
    for c in 0..4 {
        let col = y.column(c);
        let var = col.mapv(|v| v * v).sum() / (col.len() - 1) as f64;
        assert!((var - 1.0).abs() < 1e-9, "component {c}: variance {var}");
    }
}

#[test]
fn auto_follows_scikit_learn() {
    use NComponents::{All, Count, VarianceFraction};
    let cases = [
        // (n_samples, n_features, n_components, expected)
        (6437, 128, Count(20), SvdSolver::CovarianceEigh),
        (10_000, 1000, Count(5), SvdSolver::CovarianceEigh),
        (9_999, 1000, Count(5), SvdSolver::Randomized),
        (10_010, 1001, Count(5), SvdSolver::Randomized),
        (200, 30, Count(5), SvdSolver::Full),
        (500, 400, Count(5), SvdSolver::Full),
        (6437, 19200, Count(250), SvdSolver::Randomized),
        (6437, 37632, Count(100), SvdSolver::Randomized),
        (600, 600, Count(479), SvdSolver::Randomized),
        (600, 600, Count(480), SvdSolver::Full),
        (6437, 19200, VarianceFraction(0.95), SvdSolver::Full),
        (6437, 19200, All, SvdSolver::Full),
    ];
    for (n, p, k, expected) in cases {
        assert_eq!(SvdSolver::Auto.resolve(n, p, k), expected, "{n}x{p} {k:?}");
    }
    assert_eq!(
        SvdSolver::Full.resolve(6437, 128, Count(20)),
        SvdSolver::Full
    );
}

#[test]
fn covariance_eigh_with_a_count_and_a_large_offset() {
    // A count computes only the leading eigenpairs (total variance from the trace); a large
    // offset and rows sorted by their first feature test the pilot-mean centring.
    // 48 features: a multiple of 16, so f32 data take the AVX2 scatter kernel where there is one.
    let mut x = low_rank(800, 48, 10, 0.1, 3);
    x.mapv_inplace(|v| v + 1e4);
    let mut rows: Vec<_> = x.rows().into_iter().map(|r| r.to_vec()).collect();
    rows.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let x = Array2::from_shape_vec((800, 48), rows.concat()).unwrap();
    let exact = Pca::new(6)
        .svd_solver(SvdSolver::Full)
        .fit(x.view())
        .unwrap();
    let cov = Pca::new(6).fit(x.view()).unwrap();
    assert_eq!(cov.svd_solver(), SvdSolver::CovarianceEigh);
    let top = exact.explained_variance()[0];
    for (u, v) in exact
        .explained_variance()
        .iter()
        .zip(cov.explained_variance())
    {
        assert!((u - v).abs() < 1e-9 * top, "{u} vs {v}");
    }
    for (u, v) in exact
        .explained_variance_ratio()
        .iter()
        .zip(cov.explained_variance_ratio())
    {
        assert!((u - v).abs() < 1e-10, "{u} vs {v}");
    }
    for (u, v) in exact.mean().iter().zip(cov.mean()) {
        assert!((u - v).abs() < 1e-9, "mean {u} vs {v}");
    }
    let d = max_diff(exact.components(), cov.components());
    assert!(d < 1e-7, "components differ by {d:e}");
    let noise = (exact.noise_variance() - cov.noise_variance()).abs();
    assert!(
        noise < 1e-9 * exact.noise_variance(),
        "noise variance {noise:e}"
    );
    // The same in f32 (products in f32, as scikit-learn's), against the f64 exact solver.
    let x32 = x.mapv(|v| v as f32);
    let cov32 = Pca::new(6).fit(x32.view()).unwrap();
    for (u, v) in exact
        .explained_variance_ratio()
        .iter()
        .zip(cov32.explained_variance_ratio())
    {
        assert!((u - *v as f64).abs() < 1e-5, "f32: {u} vs {v}");
    }
    let t64 = exact.transform(x.view()).unwrap();
    let t32 = cov32.transform(x32.view()).unwrap().mapv(|v| v as f64);
    let scale = t64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let d = max_diff(t64.view(), t32.view());
    assert!(
        d < 1e-3 * scale,
        "f32 transform differs by {d:e} (scale {scale})"
    );
}
