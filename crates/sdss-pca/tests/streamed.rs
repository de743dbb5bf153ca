//! The block-by-block fit ([`Pca::fit_blocks`]) against the in-memory randomized solver: the same
//! arithmetic in another summation order, so the same model to rounding, whatever the blocks.

use ndarray::{s, Array2};
use sdss_pca::{InBlocks, NComponents, Pca, PcaError, SvdSolver};

/// Correlated data with a decaying spectrum, `n x p`.
fn data(n: usize, p: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, p), |(i, j)| {
        let t = i as f32 / n as f32;
        (t * (j as f32 + 1.0) * 3.1).sin() / (1.0 + j as f32 * 0.3)
            + 0.05 * (((i * 31 + j * 17) % 23) as f32 - 11.0) / 11.0
            + 2.0
    })
}

fn assert_same_model(n: usize, p: usize, k: usize, rows: usize) {
    let x = data(n, p);
    let pca = Pca::new(k).random_state(11);
    let memory = pca
        .clone()
        .svd_solver(SvdSolver::Randomized)
        .fit(x.view())
        .unwrap();
    let blocks = InBlocks { x: x.view(), rows };
    let streamed = pca.fit_blocks(&blocks).unwrap();
    assert_eq!(streamed.svd_solver(), SvdSolver::Randomized);
    assert_eq!(streamed.n_samples(), n);
    for (a, b) in memory
        .explained_variance_ratio()
        .iter()
        .zip(streamed.explained_variance_ratio())
    {
        assert!(
            (a - b).abs() < 1e-5,
            "{n}x{p}, blocks of {rows}: ratio {a} vs {b}"
        );
    }
    let worst = (&memory.components() - &streamed.components())
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        worst < 2e-3,
        "{n}x{p}, blocks of {rows}: components differ by {worst}"
    );
    let worst_mean = (&memory.mean() - &streamed.mean())
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(worst_mean < 1e-6, "means differ by {worst_mean}");
    let projected = streamed.transform_blocks(&blocks).unwrap();
    assert_eq!(projected, streamed.transform(x.view()).unwrap());
}

#[test]
fn more_samples_than_features_in_uneven_blocks() {
    assert_same_model(700, 40, 6, 97);
}

#[test]
fn fewer_samples_than_features_in_blocks_of_one_row() {
    // The basis lives in the sample space here: the products go the other way round.
    assert_same_model(60, 150, 5, 1);
}

#[test]
fn one_block_is_the_in_memory_fit() {
    assert_same_model(300, 25, 4, 10_000);
}

#[test]
fn what_a_streamed_fit_cannot_do_is_a_typed_error() {
    let x = data(50, 8);
    let blocks = InBlocks {
        x: x.view(),
        rows: 7,
    };
    assert!(matches!(
        Pca::new(0.9).fit_blocks(&blocks),
        Err(PcaError::FractionNeedsExactSolver { .. })
    ));
    assert!(matches!(
        Pca::new(9).fit_blocks(&blocks),
        Err(PcaError::InvalidNComponents { max: 8, .. })
    ));
    let err = Pca::new(2)
        .svd_solver(SvdSolver::Full)
        .fit_blocks(&blocks)
        .unwrap_err();
    assert!(err.to_string().contains("randomized"), "{err}");
    let one = InBlocks {
        x: x.slice(s![..1, ..]),
        rows: 7,
    };
    assert!(matches!(
        Pca::new(NComponents::All).fit_blocks(&one),
        Err(PcaError::TooFewSamples { n_samples: 1 })
    ));
    let mut bad = x.clone();
    bad[[23, 5]] = f32::NAN;
    match Pca::new(2).fit_blocks(&InBlocks {
        x: bad.view(),
        rows: 7,
    }) {
        Err(PcaError::NonFinite { row, col, .. }) => assert_eq!((row, col), (23, 5)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_ratios_of_a_sampled_fit_on_all_rows_agree_block_by_block() {
    let x = data(400, 30);
    let model = Pca::new(4)
        .fit_sample(150)
        .random_state(2)
        .fit(x.view())
        .unwrap();
    let blocks = InBlocks {
        x: x.view(),
        rows: 33,
    };
    let projected = model.transform_blocks(&blocks).unwrap();
    let in_memory = model
        .explained_variance_ratio_of(x.view(), projected.view())
        .unwrap();
    let streamed = model
        .explained_variance_ratio_of_blocks(&blocks, projected.view())
        .unwrap();
    for (a, b) in in_memory.iter().zip(&streamed) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
    assert!(model
        .explained_variance_ratio_of_blocks(&blocks, projected.slice(s![..5, ..]))
        .is_err());
}
