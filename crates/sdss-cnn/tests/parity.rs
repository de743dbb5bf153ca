//! Parity with Keras: the committed fixtures (made by fixtures/cnn/make_fixtures.py) hold a small variant of
//! the sdss_CNN architecture in the three Keras formats, four input images and Keras's outputs at every tap.
//! Each file is converted with the same code `cargo xtask fetch-weights` uses, loaded back from the written
//! safetensors, and run; the error at every tap must be at most 1e-4 relative, where the relative error of
//! a tap is max |rust - keras| / max |keras| over all its values.

use std::collections::HashMap;
use std::path::PathBuf;

use ndarray::{Array2, Array4};
use safetensors::SafeTensors;
use sdss_cnn::keras::{self, KerasFormat};
use sdss_cnn::{CnnConfig, CnnError, CnnModel, ConvLayerConfig, Tap};

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cnn")
}

struct Reference {
    images: Array4<f32>,
    taps: HashMap<Tap, Array2<f32>>,
}

fn reference() -> Reference {
    let bytes = std::fs::read(fixtures().join("small_taps.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let get = |name: &str| -> (Vec<usize>, Vec<f32>) {
        let t = st.tensor(name).unwrap();
        let v = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (t.shape().to_vec(), v)
    };
    let (s, v) = get("images");
    let images = Array4::from_shape_vec((s[0], s[1], s[2], s[3]), v).unwrap();
    let taps = Tap::ALL
        .into_iter()
        .map(|tap| {
            let (s, v) = get(tap.name());
            (tap, Array2::from_shape_vec((s[0], s[1]), v).unwrap())
        })
        .collect();
    Reference { images, taps }
}

/// The architecture the fixture script builds.
fn small_config() -> CnnConfig {
    let conv = |filters, k, max_pool, dropout| ConvLayerConfig {
        filters,
        kernel_size: [k, k],
        max_pool,
        dropout,
    };
    CnnConfig {
        input_height: 40,
        input_width: 44,
        input_channels: 3,
        conv_layers: vec![
            conv(16, 6, None, 0.5),
            conv(16, 5, Some(2), 0.25),
            conv(24, 2, Some(2), 0.25),
            conv(32, 3, None, 0.25),
            conv(16, 2, None, 0.25),
        ],
        dense_units: 16,
        dense_1_units: 8,
        output_units: 1,
        dense_dropout: 0.25,
        dense_1_dropout: 0.0,
        output_activation: sdss_cnn::OutputActivation::Linear,
    }
}

fn rel_err(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale.max(f32::MIN_POSITIVE)
}

fn check_all_taps(model: &CnnModel, r: &Reference, what: &str) {
    let out = model.all_taps(r.images.view()).unwrap();
    let direct = model
        .clone()
        .with_winograd(false)
        .all_taps(r.images.view())
        .unwrap();
    for tap in Tap::ALL {
        let e = rel_err(out.get(tap), &r.taps[&tap]);
        assert!(e <= TOLERANCE, "{what}: tap {tap}: relative error {e:e}");
        let e = rel_err(direct.get(tap), &r.taps[&tap]);
        assert!(
            e <= TOLERANCE,
            "{what} without Winograd: tap {tap}: relative error {e:e}"
        );
        // The single-tap entry point must agree with the all-taps one bit for bit.
        let single = model.features(r.images.view(), tap).unwrap();
        assert_eq!(&single, out.get(tap), "{what}: tap {tap}");
    }
}

fn convert_and_check(file: &str, format: KerasFormat) {
    let r = reference();
    let src = fixtures().join(file);
    let model = keras::read_keras_model(&src).unwrap();
    assert_eq!(model.format, format);
    assert_eq!(model.config, small_config());

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small.safetensors");
    let manifest = keras::write_converted(&model, &src.display().to_string(), &out).unwrap();
    let source_bytes = std::fs::read(&src).unwrap();
    assert_eq!(manifest.source.sha256, keras::sha256_hex(&source_bytes));
    assert_eq!(manifest.parameters, 24009);
    assert_eq!(manifest.tensors.len(), 16);
    assert_eq!(manifest.tensors[0].name, "conv2d.kernel");
    assert_eq!(manifest.tensors[0].shape, [6, 6, 3, 16]);
    let on_disk: keras::Manifest =
        serde_json::from_slice(&std::fs::read(keras::manifest_path(&out)).unwrap()).unwrap();
    assert_eq!(on_disk, manifest);
    assert_eq!(
        manifest.safetensors_sha256,
        keras::sha256_hex(&std::fs::read(&out).unwrap())
    );

    let loaded = CnnModel::load(&out).unwrap();
    assert_eq!(loaded.config(), &small_config());
    check_all_taps(&loaded, &r, file);
}

#[test]
fn tf_keras2_h5_matches_keras() {
    convert_and_check("small_tfkeras2.h5", KerasFormat::Keras2Hdf5);
}

#[test]
fn keras3_h5_matches_keras() {
    convert_and_check("small_keras3.h5", KerasFormat::Keras3Hdf5);
}

#[test]
fn keras3_zip_matches_keras() {
    convert_and_check("small_keras3.keras", KerasFormat::KerasZip);
}

#[test]
fn candle_reference_path_matches_keras() {
    let r = reference();
    let m = keras::read_keras_model(fixtures().join("small_tfkeras2.h5")).unwrap();
    let model = CnnModel::new(m.config, m.weights).unwrap();
    let out = model.all_taps_candle(r.images.view()).unwrap();
    for tap in Tap::ALL {
        let e = rel_err(out.get(tap), &r.taps[&tap]);
        assert!(
            e <= TOLERANCE,
            "candle path: tap {tap}: relative error {e:e}"
        );
    }
}

#[test]
fn batched_and_streamed_match_one_batch() {
    let r = reference();
    let m = keras::read_keras_model(fixtures().join("small_keras3.keras")).unwrap();
    let model = CnnModel::new(m.config, m.weights).unwrap();
    // Batch sizes 1 and 3 take the "parallel inside each GEMM" and "one image per thread" paths.
    for bs in [1, 3, 4, 10] {
        let f = model
            .features_batched(r.images.view(), Tap::Dense, bs)
            .unwrap();
        let e = rel_err(&f, &r.taps[&Tap::Dense]);
        assert!(e <= TOLERANCE, "batch size {bs}: {e:e}");
    }
    let mut seen = Vec::new();
    let batches = (0..4).map(|i| {
        Ok::<_, std::io::Error>(r.images.slice(ndarray::s![i..i + 1, .., .., ..]).to_owned())
    });
    let f = model
        .features_stream(batches, Tap::Output, |n| seen.push(n))
        .unwrap();
    assert_eq!(seen, [1, 2, 3, 4]);
    assert!(rel_err(&f, &r.taps[&Tap::Output]) <= TOLERANCE);
    assert!(matches!(
        model.features_batched(r.images.view(), Tap::Dense, 0),
        Err(CnnError::ZeroBatchSize)
    ));
}

/// The classic porting mistake: flattening channels-first (C, H, W) while Keras flattens (H, W, C). It runs
/// and gives plausible numbers, so the parity check must reject it.
#[test]
fn wrong_flatten_order_is_caught() {
    let r = reference();
    let m = keras::read_keras_model(fixtures().join("small_tfkeras2.h5")).unwrap();
    let (h, w, c) = m.config.flatten_shape().unwrap();
    let mut weights = m.weights.clone();
    let units = weights.dense.outputs;
    let k = &m.weights.dense.kernel;
    // Row for NCHW position (ch, y, x) takes the Keras row of (y, x, ch): what a wrong port computes.
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let nchw = (ch * h + y) * w + x;
                let nhwc = (y * w + x) * c + ch;
                weights.dense.kernel[nhwc * units..(nhwc + 1) * units]
                    .copy_from_slice(&k[nchw * units..(nchw + 1) * units]);
            }
        }
    }
    let wrong = CnnModel::new(m.config, weights).unwrap();
    let out = wrong.all_taps(r.images.view()).unwrap();
    assert!(rel_err(out.get(Tap::Flatten), &r.taps[&Tap::Flatten]) <= TOLERANCE);
    let e = rel_err(out.get(Tap::Dense), &r.taps[&Tap::Dense]);
    assert!(
        e > 100.0 * TOLERANCE,
        "wrong flatten order not detected: {e:e}"
    );
}

#[test]
fn bad_files_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Missing.
    let err = keras::read_keras_model(dir.path().join("nope.h5")).unwrap_err();
    assert!(matches!(err, CnnError::Io { .. }), "{err}");
    // Foreign: a safetensors file is neither HDF5 nor zip.
    let err = keras::read_keras_model(fixtures().join("small_taps.safetensors")).unwrap_err();
    assert!(matches!(err, CnnError::BadWeightsFile { .. }), "{err}");
    // Truncated HDF5 and zip.
    for name in ["small_tfkeras2.h5", "small_keras3.keras"] {
        let bytes = std::fs::read(fixtures().join(name)).unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let err = keras::read_keras_model(&p).unwrap_err();
        assert!(
            matches!(err, CnnError::BadWeightsFile { .. }),
            "{name}: {err}"
        );
    }
    // A Keras file is not a converted weights file.
    let err = CnnModel::load(fixtures().join("small_tfkeras2.h5")).unwrap_err();
    assert!(matches!(err, CnnError::BadWeightsFile { .. }), "{err}");
}

#[test]
fn wrong_image_shape_is_a_typed_error() {
    let model = CnnModel::random(small_config(), 1).unwrap();
    let images = Array4::<f32>::zeros((2, 40, 44, 1));
    let err = model.features(images.view(), Tap::Dense).unwrap_err();
    assert!(
        matches!(err, CnnError::BadImageShape { channels: 3, .. }),
        "{err}"
    );
    let images = Array4::<f32>::zeros((2, 44, 40, 3));
    assert!(model.features(images.view(), Tap::Dense).is_err());
}
