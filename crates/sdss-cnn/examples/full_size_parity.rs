//! Full-size parity check against a real sdss_CNN-shaped Keras file, which is too large to commit:
//!
//! ```sh
//! cargo run --release -p sdss-cnn --example full_size_parity -- MODEL.h5 IMAGES.f32 DENSE.f32
//! ```
//!
//! `IMAGES.f32` holds raw little-endian f32 images (n, 80, 80, 3) and `DENSE.f32` Keras's raw f32 `dense`
//! outputs (n, 128) for them. Exits non-zero if the maximum relative error exceeds 1e-4.

use ndarray::{Array2, Array4};
use sdss_cnn::{keras, CnnConfig, CnnModel, Tap};

fn read_f32(path: &str) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_path, images, dense] = args.as_slice() else {
        return Err("usage: full_size_parity MODEL.h5 IMAGES.f32 DENSE.f32".into());
    };
    let m = keras::read_keras_model(model_path).map_err(|e| e.to_string())?;
    if m.config != CnnConfig::default() {
        return Err(format!("{model_path}: not the sdss_CNN architecture"));
    }
    let x = read_f32(images)?;
    let n = x.len() / (80 * 80 * 3);
    let x = Array4::from_shape_vec((n, 80, 80, 3), x).map_err(|e| e.to_string())?;
    let expected = Array2::from_shape_vec((n, 128), read_f32(dense)?).map_err(|e| e.to_string())?;
    let model = CnnModel::new(m.config, m.weights).map_err(|e| e.to_string())?;
    let got = model
        .features(x.view(), Tap::Dense)
        .map_err(|e| e.to_string())?;
    let scale = expected
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    let err = got
        .iter()
        .zip(expected.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max)
        / scale;
    println!("{n} images, dense tap: max relative error {err:e}");
    if err > 1e-4 {
        return Err(format!("relative error {err:e} exceeds 1e-4"));
    }
    Ok(())
}
