//! Converted weights: a `.safetensors` file and its JSON manifest, as `--weights` loads them.
//!
//! One input carries both: the manifest, then the separator `\n--safetensors--\n`, then the
//! safetensors bytes (an input without the separator is all safetensors).
#![no_main]

use libfuzzer_sys::fuzz_target;

const SEPARATOR: &[u8] = b"\n--safetensors--\n";

fuzz_target!(|data: &[u8]| {
    let (manifest, tensors) = match data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        Some(at) => (&data[..at], &data[at + SEPARATOR.len()..]),
        None => (&[][..], data),
    };
    if let Ok(manifest) = serde_json::from_slice::<sdss_cnn::keras::Manifest>(manifest) {
        let _ = manifest.config.validate();
    }
    let path = std::path::Path::new("fuzz.safetensors");
    if let Ok((config, weights)) = sdss_cnn::weights::read_safetensors_bytes(tensors, path) {
        // What loading does next: build the network's tensors from them.
        let _ = weights.to_tensors(&config);
    }
});
