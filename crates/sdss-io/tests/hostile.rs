//! Hostile input: the fuzz targets' committed seeds (real files, which must read) and regression inputs
//! (what the fuzzers found, which must give a typed error or a result, never a panic), run on stable
//! through the same entry points as `fuzz/fuzz_targets/{npy,image}.rs`; and the configurable pixel
//! limit.

use std::path::{Path, PathBuf};

use sdss_io::preprocess::{
    crop_and_resize, decode_rgb8_from_bytes, decode_rgb8_from_bytes_limited,
};
use sdss_io::{ImageProblem, Preprocess};

fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn npy_target(data: &[u8], path: &Path) -> Result<(), sdss_io::IoError> {
    sdss_io::npy::read_npy_bytes(data, path)?.into_f64();
    Ok(())
}

fn image_target(data: &[u8]) -> Result<(), String> {
    let (image, _) = decode_rgb8_from_bytes(data).map_err(|e| e.to_string())?;
    let mut resizer = fast_image_resize::Resizer::new();
    crop_and_resize(&image, &Preprocess::default(), &mut resizer).map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn npy_seeds_read_and_regressions_do_not_panic() {
    let seeds = files("seeds", "npy");
    assert!(seeds.len() >= 5, "the npy seed corpus is committed");
    for path in &seeds {
        let data = std::fs::read(path).unwrap();
        npy_target(&data, path).unwrap_or_else(|e| panic!("seed {}: {e}", path.display()));
    }
    for path in files("regressions", "npy") {
        let data = std::fs::read(&path).unwrap();
        let _ = npy_target(&data, &path);
    }
}

#[test]
fn image_seeds_decode_and_regressions_do_not_panic() {
    let seeds = files("seeds", "image");
    assert!(seeds.len() >= 5, "the image seed corpus is committed");
    for path in &seeds {
        let data = std::fs::read(path).unwrap();
        image_target(&data).unwrap_or_else(|e| panic!("seed {}: {e}", path.display()));
    }
    for path in files("regressions", "image") {
        let data = std::fs::read(&path).unwrap();
        let _ = image_target(&data);
    }
}

#[test]
fn the_pixel_limit_is_configurable() {
    // A real 80 x 80 PNG: refused under a 79 x 80 limit, read at exactly 80 x 80.
    let png = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/image/png_80.png"),
    )
    .unwrap();
    match decode_rgb8_from_bytes_limited(&png, 79 * 80) {
        Err(ImageProblem::TooManyPixels {
            width: 80,
            height: 80,
            limit,
        }) => assert_eq!(limit, 6320),
        other => panic!("expected TooManyPixels, got {other:?}"),
    }
    assert!(decode_rgb8_from_bytes_limited(&png, 80 * 80).is_ok());
}
