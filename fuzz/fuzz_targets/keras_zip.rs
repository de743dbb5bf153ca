//! Keras 3 `.keras` zip archives (config.json, metadata.json, model.weights.h5), then conversion.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Only zip archives: anything else is the HDF5 target's business.
    if !data.starts_with(b"PK\x03\x04") {
        return;
    }
    let path = std::path::Path::new("fuzz.keras");
    if let Ok(model) = sdss_cnn::keras::read_keras_bytes(data.to_vec(), path) {
        let _ = sdss_cnn::weights::to_safetensors_bytes(
            &model.config,
            &model.weights,
            Default::default(),
        );
    }
});
