//! Preprocessing parity with Pillow: `Image.open(p).convert("RGB")`, optional centre crop, then
//! `.resize(size)` (bicubic), on the fixture images of `fixtures/io` (made by
//! `fixtures/io/make_fixtures.py`). Both sides are compared as 8-bit levels (the /255 is exact on both).

use std::path::{Path, PathBuf};

use sdss_io::npy::read_npy_as;
use sdss_io::stack::read_csv;
use sdss_io::{load_image, CentreCrop, Preprocess};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/io")
}

/// Largest |ours − Pillow| in 8-bit levels, and the fraction of values that differ at all.
fn compare(case: &[String]) -> (String, u32, f64) {
    let dir = fixtures();
    let [name, input, ow, oh, cw, ch] = case else {
        panic!("cases.csv row {case:?} has the wrong number of fields");
    };
    let num = |s: &str| s.parse::<u32>().unwrap();
    let options = Preprocess {
        size: Some((num(ow), num(oh))),
        centre_crop: (num(cw) > 0).then(|| CentreCrop {
            width: num(cw),
            height: num(ch),
        }),
        ..Preprocess::default()
    };
    let ours = load_image(dir.join("inputs").join(input), &options).unwrap();
    let pillow = read_npy_as::<u8>(dir.join("expected").join(format!("{name}.npy"))).unwrap();
    assert_eq!(ours.shape(), pillow.shape(), "{name}");
    let mut max = 0u32;
    let mut differing = 0usize;
    for (&a, &b) in ours.iter().zip(pillow.iter()) {
        let a8 = (a * 255.0).round();
        // Ours is exactly k/255 for an integer k.
        assert!((a * 255.0 - a8).abs() < 1e-3, "{name}: not an 8-bit level");
        let d = (a8 as i32 - i32::from(b)).unsigned_abs();
        max = max.max(d);
        differing += usize::from(d > 0);
    }
    (name.clone(), max, differing as f64 / ours.len() as f64)
}

fn cases() -> Vec<Vec<String>> {
    let rows = read_csv(fixtures().join("cases.csv")).unwrap();
    assert_eq!(rows[0].1[0], "case");
    rows.into_iter().skip(1).map(|(_, r)| r).collect()
}

#[test]
fn png_inputs_match_pillow_within_one_level() {
    // Lossless inputs decode to the same pixels on both sides, so this isolates the resize (and the
    // grayscale / alpha / palette / 16-bit conversions). The resize uses Pillow's filter, support and
    // pass order; only the fixed-point precision of the weights differs (fast_image_resize: 16-bit
    // weights, Pillow: 22-bit), which moves a fraction of a percent of values by one level.
    for case in cases().iter().filter(|c| c[1].ends_with(".png")) {
        let (name, max, frac) = compare(case);
        println!(
            "{name:24} max |diff| = {max}/255, {:.2}% of values differ",
            100.0 * frac
        );
        assert!(
            max <= 1,
            "{name}: resize differs from Pillow's by {max}/255"
        );
        assert!(frac < 0.02, "{name}: {:.1}% of values differ", 100.0 * frac);
    }
}

#[test]
fn jpeg_inputs_match_pillow_within_two_levels() {
    // zune-jpeg and libjpeg-turbo round the IDCT and chroma upsampling slightly differently.
    let mut worst = 0;
    for case in cases().iter().filter(|c| c[1].ends_with(".jpg")) {
        let (name, max, frac) = compare(case);
        println!(
            "{name:24} max |diff| = {max}/255, {:.2}% of values differ",
            100.0 * frac
        );
        worst = worst.max(max);
    }
    assert!(
        worst <= 2,
        "worst JPEG difference {worst}/255 exceeds 2/255"
    );
}
