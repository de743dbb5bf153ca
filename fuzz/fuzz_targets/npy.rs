//! `.npy` files: header and data (sdss_io::npy).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = sdss_io::npy::read_npy_bytes(data, std::path::Path::new("fuzz.npy")) {
        // What every reader of a matrix does next.
        let _ = array.into_f64();
    }
});
