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
    // ReLU features: non-negative and not all zero.
    assert!(out.get(Tap::Dense).iter().all(|&v| v >= 0.0));
    assert!(out.get(Tap::Dense).iter().any(|&v| v > 0.0));
}
