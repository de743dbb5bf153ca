//! Keras HDF5 model files (`.h5`, Keras 2 and 3) through hdf5-reader, then conversion to safetensors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Zip archives have their own target (keras_zip); this one spends its time inside HDF5.
    if data.starts_with(b"PK\x03\x04") {
        return;
    }
    let path = std::path::Path::new("fuzz.h5");
    if let Ok(model) = sdss_cnn::keras::read_keras_bytes(data.to_vec(), path) {
        let _ = sdss_cnn::weights::to_safetensors_bytes(
            &model.config,
            &model.weights,
            Default::default(),
        );
    }
});
