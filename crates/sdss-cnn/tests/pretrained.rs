//! The shipped encoder: its weights load, their manifest matches the architecture, and on fixed
//! galaxies its features equal the committed reference values
//! (`fixtures/cnn/pretrained_reference.json`, made by `examples/pretrained_reference.rs`), so that a
//! change that silently alters the network or its weights is caught.
//!
//! Tolerance: 1e-4 of the largest reference value, absolute. The reference and the library run the same
//! code, but a machine with other SIMD kernels (AVX2 instead of AVX-512) sums in another order; such
//! differences are about 1e-6 relative, while any real change to a layer moves features by far more.

use std::path::{Path, PathBuf};

use sdss_cnn::{pretrained, CnnConfig, Tap};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("fixtures/cnn/pretrained_reference.json"))
        .expect("fixtures/cnn/pretrained_reference.json");
    serde_json::from_str(&text).unwrap()
}

/// Compares the encoder's features of `dir/<id>.<ext>` with the reference section `name`.
fn check_section(name: &str, dir: &Path, ext: &str) {
    let reference = reference();
    let manifest = pretrained::manifest().unwrap();
    assert_eq!(
        reference["weights_sha256"], manifest.safetensors_sha256,
        "the reference was made with other weights: regenerate it (see its `made_by`)"
    );
    let section = &reference[name];
    let ids: Vec<String> = serde_json::from_value(section["ids"].clone()).unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(section["dense"].clone()).unwrap();
    assert_eq!(ids.len(), 16);
    let options = sdss_io::Preprocess::default();
    let images: Vec<_> = ids
        .iter()
        .map(|id| sdss_io::load_image(dir.join(format!("{id}.{ext}")), &options).unwrap())
        .collect();
    let views: Vec<_> = images.iter().map(|a| a.view()).collect();
    let batch = ndarray::stack(ndarray::Axis(0), &views).unwrap();
    let got = pretrained::model()
        .unwrap()
        .features(batch.view(), Tap::Dense)
        .unwrap();
    assert_eq!(got.dim(), (16, 128));
    let scale = want.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "a reference of zeros proves nothing");
    for (i, (row, want)) in got.rows().into_iter().zip(&want).enumerate() {
        for (j, (a, b)) in row.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * scale,
                "{name} galaxy {} feature {j}: {a} vs reference {b}",
                ids[i]
            );
        }
    }
}

#[test]
fn shipped_weights_load_and_match_their_manifest() {
    let m = pretrained::manifest().unwrap();
    assert_eq!(m.config, CnnConfig::small());
    let model = pretrained::model().unwrap();
    assert_eq!(model.config(), &m.config);
    assert_eq!(m.parameters, CnnConfig::small().parameter_count().unwrap());
    let training = m
        .training
        .as_ref()
        .expect("the manifest says how it was trained");
    assert_eq!(training["task"], "self-supervised");
    assert_eq!(training["galaxies"], 6437);
    let command = training["command"].as_str().unwrap();
    assert!(
        command.starts_with("sdss-clustering train --self-supervised"),
        "{command}"
    );
}

#[test]
fn features_of_bundled_synthetic_galaxies_equal_the_reference() {
    check_section("synthetic", &root().join("fixtures/galaxies"), "jpg");
}

#[test]
#[ignore = "needs ../shared"]
fn features_of_real_galaxies_equal_the_reference() {
    check_section(
        "real",
        &root().join("../shared/data/sdss-6437/images"),
        "png",
    );
}
