//! The default configuration is sdss_CNN itself.

use ndarray::Array4;
use sdss_cnn::{CnnConfig, CnnModel, Tap};

#[test]
fn default_config_has_5_404_321_parameters() {
    assert_eq!(CnnConfig::default().parameter_count().unwrap(), 5_404_321);
}

#[test]
fn default_network_runs_and_taps_have_the_right_widths() {
    let model = CnnModel::random(CnnConfig::default(), 42).unwrap();
    let images = Array4::from_shape_fn((2, 80, 80, 3), |(n, y, x, c)| {
        ((n * 7 + y * 3 + x * 5 + c) % 17) as f32 / 16.0
    });
    let out = model.all_taps(images.view()).unwrap();
    assert_eq!(out.get(Tap::Flatten).dim(), (2, 37632));
    assert_eq!(out.get(Tap::Dense).dim(), (2, 128));
    assert_eq!(out.get(Tap::Dense1).dim(), (2, 64));
    assert_eq!(out.get(Tap::Output).dim(), (2, 1));
    // The fast engine (Winograd for the 5×5 layer, implicit GEMM elsewhere) against candle's own layers at
    // full size.
    let candle = model.all_taps_candle(images.view()).unwrap();
    for tap in Tap::ALL {
        let (a, b) = (out.get(tap), candle.get(tap));
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-4 * scale, "tap {tap}: {diff} vs scale {scale}");
    }
    // ReLU features: non-negative and not all zero.
    assert!(out.get(Tap::Dense).iter().all(|&v| v >= 0.0));
    assert!(out.get(Tap::Dense).iter().any(|&v| v > 0.0));
}
