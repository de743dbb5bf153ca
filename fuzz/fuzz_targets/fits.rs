//! FITS cutouts (`.fits`, `.fits.fz`): walk and check every header, read the three bands (plain or
//! tile-compressed), then normalise, resize and make the Lupton composite as the pipeline does
//! (sdss_io::fits). A small pixel limit keeps hostile headers from spending the fuzzer's memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdss_io::fits::read_fits_bands_from_bytes;
use sdss_io::lupton::LuptonParams;
use sdss_io::preprocess::{crop_and_resize, crop_and_resize_f32, Preprocess, RgbF32Image};

fuzz_target!(|data: &[u8]| {
    let Ok(bands) = read_fits_bands_from_bytes(data, 1 << 20) else {
        return;
    };
    let features = RgbF32Image {
        width: bands.width,
        height: bands.height,
        pixels: bands.feature_pixels(),
    };
    let mut resizer = fast_image_resize::Resizer::new();
    let _ = crop_and_resize_f32(&features, &Preprocess::default(), &mut resizer);
    let rgb = bands.lupton_rgb(&LuptonParams::default());
    let _ = crop_and_resize(&rgb, &Preprocess::default(), &mut resizer);
});
