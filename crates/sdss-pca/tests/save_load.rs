//! Saving and loading a fitted model: round trip, NumPy-readable files, typed errors.

use ndarray::Array2;
use sdss_pca::{FittedPca, Pca, PcaError, SvdSolver, MODEL_JSON};

fn data() -> Array2<f32> {
    Array2::from_shape_fn((40, 12), |(i, j)| {
        (((i * 31 + j * 17) % 23) as f32) * 0.1 + (i % 5) as f32 * (j as f32) * 0.05
    })
}

#[test]
fn round_trip_preserves_the_model_and_its_projection() {
    let dir = tempfile::tempdir().unwrap();
    let x = data();
    let model = Pca::new(4).whiten(true).fit(x.view()).unwrap();
    let folder = dir.path().join("model");
    model.save(&folder).unwrap();
    for name in [
        MODEL_JSON,
        "components.npy",
        "mean.npy",
        "explained_variance.npy",
        "explained_variance_ratio.npy",
        "singular_values.npy",
    ] {
        assert!(folder.join(name).is_file(), "{name} missing");
    }
    // No temporary files left behind.
    let entries = std::fs::read_dir(&folder).unwrap().count();
    assert_eq!(entries, 6);

    let back = FittedPca::<f32>::load(&folder).unwrap();
    assert_eq!(back, model);
    assert_eq!(back.svd_solver(), model.svd_solver());
    assert!(back.whiten());
    let new = x.slice(ndarray::s![..7, ..]).mapv(|v| v * 0.9 + 0.01);
    assert_eq!(
        back.transform(new.view()).unwrap(),
        model.transform(new.view()).unwrap()
    );

    // The components file is a plain float32 (4, 12) array.
    let comps = sdss_io::npy::read_npy(folder.join("components.npy")).unwrap();
    assert_eq!(comps.shape(), &[4, 12]);
    assert_eq!(comps.dtype(), "f4");

    // Loading in the other precision converts.
    let wide = FittedPca::<f64>::load(&folder).unwrap();
    assert_eq!(wide.components()[(1, 3)], model.components()[(1, 3)] as f64);
}

#[test]
fn randomized_model_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let x = Array2::from_shape_fn((30, 600), |(i, j)| ((i * 7 + j * 3) % 29) as f64 / 29.0);
    let model = Pca::new(5).fit(x.view()).unwrap();
    assert_eq!(model.svd_solver(), SvdSolver::Randomized);
    model.save(dir.path()).unwrap();
    let back = FittedPca::<f64>::load(dir.path()).unwrap();
    assert_eq!(back, model);
}

#[test]
fn missing_or_corrupt_models_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        FittedPca::<f32>::load(dir.path()),
        Err(PcaError::Io { .. })
    ));
    let model = Pca::new(3).fit(data().view()).unwrap();
    model.save(dir.path()).unwrap();

    // A components file of the wrong shape.
    sdss_io::npy::write_npy(
        dir.path().join("components.npy"),
        &Array2::<f32>::zeros((2, 12)).view(),
    )
    .unwrap();
    match FittedPca::<f32>::load(dir.path()) {
        Err(PcaError::InvalidModel { path, reason }) => {
            assert!(path.ends_with("components.npy"), "{path:?}");
            assert!(reason.contains("[2, 12]"), "{reason}");
        }
        other => panic!("expected InvalidModel, got {other:?}"),
    }

    // Bad JSON.
    std::fs::write(dir.path().join(MODEL_JSON), "{ not json").unwrap();
    assert!(matches!(
        FittedPca::<f32>::load(dir.path()),
        Err(PcaError::InvalidModel { .. })
    ));

    // A missing array file.
    model.save(dir.path()).unwrap();
    std::fs::remove_file(dir.path().join("mean.npy")).unwrap();
    let err = FittedPca::<f32>::load(dir.path()).unwrap_err();
    assert!(matches!(err, PcaError::Storage(_)), "{err:?}");
    assert!(err.to_string().contains("mean.npy"), "{err}");
}
