//! JPEG and PNG cutouts: decode, then crop and resize to 80 × 80 as the pipeline does (sdss_io).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdss_io::preprocess::{crop_and_resize, decode_rgb8_from_bytes, CentreCrop, Preprocess};

fuzz_target!(|data: &[u8]| {
    let Ok((image, _)) = decode_rgb8_from_bytes(data) else {
        return;
    };
    let mut resizer = fast_image_resize::Resizer::new();
    let _ = crop_and_resize(&image, &Preprocess::default(), &mut resizer);
    let cropped = Preprocess {
        centre_crop: Some(CentreCrop::square(7)),
        ..Preprocess::default()
    };
    let _ = crop_and_resize(&image, &cropped, &mut resizer);
});
