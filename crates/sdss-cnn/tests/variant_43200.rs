//! Parity with Keras for the sdss_CNN variant whose Flatten is 43,200 wide: the fourth convolution is 2×2
//! instead of 3×3 (15·15·192 = 43,200; 5,994,145 parameters at full size), which is very probably the
//! network the sdss_CNN author trained. The committed fixture (made by fixtures/cnn/make_fixture_43200.py)
//! is a reduced-width copy (filters 8, 8, 8, 8, 192; Dense 4, 4, 1) that keeps the 80×80×3 input, every
//! kernel size and pool and the 192-filter last convolution, so the Flatten is 43,200 wide in Keras's
//! channels-last order. It is converted, run directly and after a round trip through the converted
//! safetensors + manifest, and compared with Keras at every tap: max |rust − keras| / max |keras| ≤ 1e-4.

use std::collections::HashMap;
use std::path::PathBuf;

use ndarray::{Array2, Array4};
use safetensors::SafeTensors;
use sdss_cnn::keras;
use sdss_cnn::{CnnModel, Tap};

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cnn")
}

struct Reference {
    images: Array4<f32>,
    taps: HashMap<Tap, Array2<f32>>,
}

fn reference() -> Reference {
    let bytes = std::fs::read(fixtures().join("variant43200_taps.safetensors")).unwrap();
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
    assert_eq!(s, [2, 80, 80, 3]);
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

fn rel_err(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale.max(f32::MIN_POSITIVE)
}

fn check_taps(model: &CnnModel, r: &Reference, what: &str) -> sdss_cnn::TapOutputs {
    let out = model.all_taps(r.images.view()).unwrap();
    for tap in Tap::ALL {
        let e = rel_err(out.get(tap), &r.taps[&tap]);
        eprintln!("{what}: tap {tap}: relative error {e:.3e}");
        assert!(e <= TOLERANCE, "{what}: tap {tap}: relative error {e:e}");
    }
    out
}

#[test]
fn variant_43200_matches_keras() {
    let r = reference();
    assert_eq!(r.taps[&Tap::Flatten].shape(), [2, 43200]);
    let src = fixtures().join("variant43200_tfkeras2.h5");
    let m = keras::read_keras_model(&src).unwrap();
    assert_eq!(m.format, keras::KerasFormat::Keras2Hdf5);

    // The architecture read from the file: 2×2 fourth convolution, Flatten 43,200.
    assert_eq!(m.config.flatten_len().unwrap(), 43200);
    let kernels: Vec<[usize; 2]> = m.config.conv_layers.iter().map(|c| c.kernel_size).collect();
    assert_eq!(kernels, [[6, 6], [5, 5], [2, 2], [2, 2], [2, 2]]);
    let filters: Vec<usize> = m.config.conv_layers.iter().map(|c| c.filters).collect();
    assert_eq!(filters, [8, 8, 8, 8, 192]);

    let direct = CnnModel::new(m.config.clone(), m.weights.clone()).unwrap();
    let out_direct = check_taps(&direct, &r, "converted in memory");

    // Through the converter's files: safetensors + manifest JSON carrying the architecture.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("variant43200.safetensors");
    let manifest = keras::write_converted(&m, &src.display().to_string(), &out).unwrap();
    assert_eq!(manifest.config.flatten_len().unwrap(), 43200);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keras::manifest_path(&out)).unwrap()).unwrap();
    assert_eq!(
        json["config"]["conv_layers"][3]["kernel_size"],
        serde_json::json!([2, 2]),
        "manifest: {json}"
    );
    assert_eq!(json["config"]["conv_layers"][4]["filters"], 192);

    let loaded = CnnModel::load(&out).unwrap();
    assert_eq!(loaded.config().flatten_len().unwrap(), 43200);
    assert_eq!(loaded.config().conv_layers[3].kernel_size, [2, 2]);
    let out_loaded = check_taps(&loaded, &r, "loaded from converted safetensors");
    for tap in Tap::ALL {
        assert_eq!(
            out_loaded.get(tap),
            out_direct.get(tap),
            "tap {tap}: loaded model differs from the in-memory one"
        );
    }
}
