//! The three solvers agree with each other; the randomized one is seeded, handles both
//! orientations and rank-deficient data (orthonormal components, explained variance at most
//! the total).

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

/// Rank-deficient data: `rank` latent factors with decaying scales, mixed into the features
/// with an offset, and every fifth feature exactly zero (a dead ReLU unit of a CNN embedding).
/// With `distinct` = Some(d), feature j is an exact copy of feature j mod d (duplicated units).
fn rank_deficient(
    n: usize,
    p: usize,
    rank: usize,
    distinct: Option<usize>,
    seed: u64,
) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = move || (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
    let u = Array2::from_shape_fn((n, rank), |_| normal());
    let w = Array2::from_shape_fn((rank, p), |(r, _)| {
        normal() * 3.0 / (1.0 + r as f64).powf(1.5)
    });
    let source = |j: usize| distinct.map_or(j, |d| j % d);
    let v = Array2::from_shape_fn((rank, p), |(r, j)| {
        if source(j) % 5 == 0 {
            0.0
        } else {
            w[(r, source(j))]
        }
    });
    let mut x = u.dot(&v);
    for ((_, j), val) in x.indexed_iter_mut() {
        if source(j) % 5 != 0 {
            *val += 2.0 + 0.1 * (source(j) % 7) as f64;
        }
    }
    x
}

/// The colleague's reproducer: ReLU-like factors (rank 11 in fact), 38 all-zero features.
fn relu_like(n: usize, p: usize, rank: usize) -> Array2<f64> {
    let a = Array2::from_shape_fn((n, rank), |(i, j)| {
        (((i * 31 + j * 17) % 97) as f64 / 97.0 - 0.3).max(0.0) * 5.0
    });
    let b = Array2::from_shape_fn((rank, p), |(i, j)| {
        if j < 90 * p / 128 {
            ((i * 13 + j * 7) % 11) as f64 / 11.0
        } else {
            0.0
        }
    });
    a.dot(&b)
}

/// Total variance (ddof = 1) of the columns of `y`.
fn total_variance(y: ndarray::ArrayView2<f64>) -> f64 {
    let n = y.nrows() as f64;
    y.columns()
        .into_iter()
        .map(|c| {
            let m = c.sum() / n;
            c.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0)
        })
        .sum()
}

/// Largest deviation of `c cᵀ` from the identity.
fn orthonormality_error(c: ndarray::ArrayView2<f64>) -> f64 {
    let g = c.dot(&c.t());
    g.indexed_iter().fold(0.0f64, |m, ((i, j), v)| {
        m.max((v - if i == j { 1.0 } else { 0.0 }).abs())
    })
}

/// Fits `x` (converted to F) with the randomized solver and checks it against the exact
/// solver on the f64 data, for data whose rank is at most the Krylov basis's width (so the
/// basis spans the whole range and Rayleigh-Ritz is exact up to rounding):
/// - the components are orthonormal within `orth_tol`;
/// - the explained variance ratios sum to at most 1 + 1e-6;
/// - each explained variance matches the exact one within `ev_tol` x the total variance;
/// - the scores of `transform` and of `fit_transform` hold at most (1 + 1e-6) x the total
///   variance, and as much as the explained variances say (within `ev_tol` x k).
#[track_caller]
fn check_rank_deficient<F: sdss_pca::PcaFloat>(
    what: &str,
    x: &Array2<f64>,
    k: usize,
    seed: u64,
    orth_tol: f64,
    ev_tol: f64,
) {
    let total = total_variance(x.view());
    let exact = Pca::new(k)
        .svd_solver(SvdSolver::Full)
        .fit(x.view())
        .unwrap();
    let xf = x.mapv(F::of_f64);
    let (fast, direct) = Pca::new(k)
        .svd_solver(SvdSolver::Randomized)
        .random_state(seed)
        .fit_transform(xf.view())
        .unwrap();
    assert_eq!(fast.n_components(), k, "{what}");
    let comps = fast.components().mapv(|v| v.as_f64());
    assert!(comps.iter().all(|v| v.is_finite()), "{what}: non-finite");
    let orth = orthonormality_error(comps.view());
    assert!(
        orth <= orth_tol,
        "{what}: |V Vt - I| = {orth:e} > {orth_tol:e}"
    );
    let ratio = fast.total_explained_variance_ratio();
    assert!(
        ratio <= 1.0 + 1e-6,
        "{what}: explained variance ratio {ratio}"
    );
    for (c, (a, b)) in fast
        .explained_variance()
        .iter()
        .zip(exact.explained_variance())
        .enumerate()
    {
        let diff = (a.as_f64() - b).abs() / total;
        assert!(
            diff <= ev_tol,
            "{what}: explained variance {c}: {a} vs exact {b} ({diff:e} of the total)"
        );
    }
    let explained: f64 = fast.explained_variance().iter().map(|v| v.as_f64()).sum();
    let scores = fast.transform(xf.view()).unwrap().mapv(|v| v.as_f64());
    let direct = direct.mapv(|v| v.as_f64());
    for (name, y) in [("transform", &scores), ("fit_transform", &direct)] {
        let held = total_variance(y.view());
        assert!(
            held <= total * (1.0 + 1e-6),
            "{what}: {name} scores hold {held} > total variance {total}"
        );
        assert!(
            (held - explained).abs() <= ev_tol * k as f64 * total,
            "{what}: {name} scores hold {held}, explained variance {explained}"
        );
    }
}

/// Rank-deficient data, the case of a CNN's ReLU embedding with dead (all-zero) or duplicated
/// units: the block Krylov basis exhausts the range, its later blocks are rounding noise, and
/// (basis in sample space) so are the trailing Ritz vectors. Both orientations, rank below k
/// and between k and the basis width, all-zero and duplicated features, f32 and f64, three
/// seeds each. Measured, the tolerances being a margin above: |V Vt - I| <= 3.3e-7 in f32 with
/// the basis in feature space (n > p: the components are Q H), <= 3.2e-5 in f32 with the basis
/// in sample space (the components come from the f32 Gram matrix, orthogonal to about
/// eps σ₁² / (σᵢ σⱼ)), <= 4e-14 in f64; explained variances within 2.4e-7 (f32) and 3e-15
/// (f64) of the total. Before the fix every relu-like and duplicated-feature case failed, in
/// f32 and f64 alike: |V Vt - I| up to 4.7, explained variance ratios up to 3.6.
#[test]
fn randomized_stays_orthonormal_on_rank_deficient_data() {
    let k = 20;
    let n_iter = sdss_pca::DEFAULT_ITERATED_POWER;
    let width = (n_iter + 1) * sdss_pca::krylov_block_width(k + 10, n_iter);
    assert_eq!(width, 84);
    let mut cases: Vec<(String, Array2<f64>)> = vec![
        // The colleague's reproducer (rank 11 in fact, 38 all-zero features), then the same
        // construction with n < p.
        ("relu-like 600x128".into(), relu_like(600, 128, 40)),
        (
            "relu-like 100x640".into(),
            relu_like(600, 640, 40).slice(s![..100, ..]).to_owned(),
        ),
    ];
    // n > p (basis in feature space), n < p (in sample space), and n < width (the basis
    // fills the whole sample space); rank below k and between k and the basis width.
    for (n, p) in [(600, 128), (150, 700), (60, 300)] {
        for rank in [8, 50] {
            assert!(rank < k || (rank > k && rank <= width.min(n.min(p))));
            cases.push((
                format!("{n}x{p} rank {rank}"),
                rank_deficient(n, p, rank, None, 11),
            ));
        }
        // Features in exact duplicates, rank 8 below the block width 12.
        cases.push((
            format!("{n}x{p} rank 8, 23 distinct features"),
            rank_deficient(n, p, 8, Some(23), 12),
        ));
    }
    for (name, x) in &cases {
        let samples_side = x.nrows() <= x.ncols();
        let orth32 = if samples_side { 2e-4 } else { 2e-6 };
        for seed in 0..3 {
            let what = format!("{name} seed {seed}");
            check_rank_deficient::<f32>(&format!("{what} f32"), x, k, seed, orth32, 2e-6);
            check_rank_deficient::<f64>(&format!("{what} f64"), x, k, seed, 1e-11, 1e-12);
        }
    }
}
