//! The CNN path through the command: features from converted (here random) weights at each tap.

mod common;

use common::*;

#[test]
fn cnn_features_run_and_match_the_library() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 12);
    let weights = work.path().join("random.safetensors");
    let model = sdss_cnn::CnnModel::random(sdss_cnn::CnnConfig::default(), 7).unwrap();
    model.save(&weights).unwrap();
    let w = weights.to_str().unwrap();
    let dir = images.to_str().unwrap();

    let out = work.path().join("run");
    ok(
        work.path(),
        &[
            "--quiet",
            "run",
            "--images",
            dir,
            "--weights",
            w,
            "--layer",
            "dense",
            "--pca",
            "4",
            "--method",
            "kmeans:k=3",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let dense = sdss_io::npy::read_matrix_f32(out.join("features.npy")).unwrap();
    assert_eq!(dense.dim(), (12, 128));
    assert_eq!(labels(&out.join("labels_kmeans.npy")).len(), 12);
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(
        config.contains("features = \"cnn\"")
            && config.contains("layer = \"dense\"")
            && config.contains("device = \"cpu\""),
        "{config}"
    );

    let flat = work.path().join("flat.npy");
    ok(
        work.path(),
        &[
            "--quiet",
            "features",
            "--images",
            dir,
            "--weights",
            w,
            "--layer",
            "flatten",
            "--batch-size",
            "5",
            "--out",
            flat.to_str().unwrap(),
        ],
    );
    let flat = sdss_io::npy::read_matrix_f32(&flat).unwrap();
    assert_eq!(flat.dim(), (12, 37632));

    // The command's features are the library's features of the same preprocessed images.
    let stack = sdss_io::load_image_folder(&images, &sdss_io::LoadOptions::default())
        .unwrap()
        .stack;
    let expected = model
        .features(stack.images().view(), sdss_cnn::Tap::Dense)
        .unwrap();
    let max_diff = expected
        .iter()
        .zip(dense.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        max_diff <= 1e-5 * expected.iter().fold(1f32, |m, v| m.max(v.abs())),
        "{max_diff}"
    );

    // An `.npy` stack of the same images, in batches that do not divide it: the same features.
    let npy = work.path().join("stack.npy");
    sdss_io::stack::write_image_stack_npy(&npy, &stack, sdss_io::stack::StackDtype::F32).unwrap();
    let from_stack = work.path().join("from_stack.npy");
    ok(
        work.path(),
        &[
            "--quiet",
            "features",
            "--npy",
            npy.to_str().unwrap(),
            "--weights",
            w,
            "--batch-size",
            "5",
            "--out",
            from_stack.to_str().unwrap(),
        ],
    );
    let from_stack = sdss_io::npy::read_matrix_f32(&from_stack).unwrap();
    assert_eq!(from_stack.dim(), dense.dim());
    let stack_diff = from_stack
        .iter()
        .zip(dense.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        stack_diff <= 1e-5 * expected.iter().fold(1f32, |m, v| m.max(v.abs())),
        "stack against folder: {stack_diff}"
    );
}

/// A GPU this build cannot drive is refused before any image is read, naming the device and the
/// feature to build with; an unknown device name is refused by the argument parser.
#[cfg(not(feature = "cuda"))]
#[test]
fn a_gpu_without_the_cuda_feature_is_a_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 3);
    let out = work.path().join("o");
    let err = fails(
        work.path(),
        &[
            "run",
            "--images",
            images.to_str().unwrap(),
            "--device",
            "cuda",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("cuda:0") && err.contains("--features cuda"),
        "{err}"
    );
    assert!(!out.exists(), "a refused run leaves no output folder");

    let err = fails(
        work.path(),
        &[
            "features",
            "--images",
            images.to_str().unwrap(),
            "--device",
            "tpu",
            "--out",
            "f.npy",
        ],
    );
    assert!(err.contains("unknown compute device `tpu`"), "{err}");
}
