//! Bad input gives typed errors, never a panic.

use ndarray::{array, Array2};
use sdss_pca::{NComponents, Pca, PcaError, SvdSolver};

fn data() -> Array2<f64> {
    Array2::from_shape_fn((20, 6), |(i, j)| {
        ((i * 13 + j * 7) % 17) as f64 + 0.1 * j as f64
    })
}

#[test]
fn nan_and_infinity_are_located() {
    let mut x = data();
    x[(4, 2)] = f64::NAN;
    match Pca::new(2).fit(x.view()) {
        Err(PcaError::NonFinite { row: 4, col: 2, .. }) => {}
        other => panic!("expected NonFinite at (4, 2), got {other:?}"),
    }
    let mut x = data().mapv(|v| v as f32);
    x[(0, 5)] = f32::NEG_INFINITY;
    match Pca::new(2).fit(x.view()) {
        Err(PcaError::NonFinite {
            row: 0,
            col: 5,
            value,
            ..
        }) => {
            assert_eq!(value, f64::NEG_INFINITY)
        }
        other => panic!("expected NonFinite at (0, 5), got {other:?}"),
    }
    // transform and inverse_transform check their input too.
    let model = Pca::new(2).fit(data().view()).unwrap();
    let mut y = data();
    y[(3, 1)] = f64::INFINITY;
    assert!(matches!(
        model.transform(y.view()),
        Err(PcaError::NonFinite { row: 3, col: 1, .. })
    ));
    let z = array![[1.0, f64::NAN]];
    assert!(matches!(
        model.inverse_transform(z.view()),
        Err(PcaError::NonFinite { row: 0, col: 1, .. })
    ));
}

#[test]
fn overflowing_variance_is_an_error() {
    let mut x = data();
    x[(0, 0)] = 1e300;
    x[(1, 0)] = -1e300;
    assert!(matches!(Pca::new(2).fit(x.view()), Err(PcaError::Overflow)));
}

#[test]
fn n_components_out_of_range() {
    let x = data();
    for solver in [
        SvdSolver::Auto,
        SvdSolver::Full,
        SvdSolver::CovarianceEigh,
        SvdSolver::Randomized,
    ] {
        for k in [0, 7] {
            match Pca::new(k).svd_solver(solver).fit(x.view()) {
                Err(PcaError::InvalidNComponents { n_components, max }) => {
                    assert_eq!((n_components, max), (k, 6))
                }
                other => panic!("{solver}: k={k}: expected InvalidNComponents, got {other:?}"),
            }
        }
    }
    // Wide data: the bound is n_samples.
    let wide = Array2::from_shape_fn((4, 9), |(i, j)| (i * j) as f64 + (i % 3) as f64);
    assert!(matches!(
        Pca::new(5).fit(wide.view()),
        Err(PcaError::InvalidNComponents {
            n_components: 5,
            max: 4
        })
    ));
}

#[test]
fn fraction_outside_unit_interval() {
    let x = data();
    for f in [0.0, -0.5, 1.0000001, 2.0, f64::NAN, f64::INFINITY] {
        match Pca::new(f).fit(x.view()) {
            Err(PcaError::InvalidVarianceFraction { .. }) => {}
            other => panic!("fraction {f}: expected InvalidVarianceFraction, got {other:?}"),
        }
    }
    // 1.0 is allowed and keeps every component.
    let model = Pca::new(1.0).fit(x.view()).unwrap();
    assert_eq!(model.n_components(), 6);
    // The randomized solver cannot honour a fraction (scikit-learn refuses it too).
    assert!(matches!(
        Pca::new(0.5)
            .svd_solver(SvdSolver::Randomized)
            .fit(x.view()),
        Err(PcaError::FractionNeedsExactSolver { .. })
    ));
}

#[test]
fn too_few_samples_or_no_features() {
    let one = Array2::<f64>::ones((1, 5));
    assert!(matches!(
        Pca::new(1).fit(one.view()),
        Err(PcaError::TooFewSamples { n_samples: 1 })
    ));
    let none = Array2::<f32>::zeros((0, 5));
    assert!(matches!(
        Pca::new(NComponents::All).fit(none.view()),
        Err(PcaError::TooFewSamples { n_samples: 0 })
    ));
    let empty = Array2::<f64>::zeros((5, 0));
    assert!(matches!(
        Pca::new(NComponents::All).fit(empty.view()),
        Err(PcaError::NoFeatures)
    ));
}

#[test]
fn wrong_widths_for_transform() {
    let model = Pca::new(3).fit(data().view()).unwrap();
    let narrow = Array2::<f64>::zeros((2, 5));
    assert!(matches!(
        model.transform(narrow.view()),
        Err(PcaError::ShapeMismatch {
            method: "transform",
            expected: 6,
            found: 5
        })
    ));
    assert!(matches!(
        model.inverse_transform(narrow.view()),
        Err(PcaError::ShapeMismatch {
            method: "inverse_transform",
            expected: 3,
            found: 5
        })
    ));
    // Errors print the parameter at fault.
    let message = Pca::new(9).fit(data().view()).unwrap_err().to_string();
    assert!(message.contains("n_components=9"), "{message}");
}
