//! A folder of FITS cutouts through the whole `run`, with both feature kinds: every galaxy is
//! clustered, and the report's thumbnails are the Lupton RGB composite a person looks at, not the
//! normalised bands the features are made of.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Writes a minimal FITS file by hand: a primary (3, SIZE, SIZE) float32 cube, bands g, r, i.
fn write_cube(path: &Path, size: usize, sigma: f32, flux: [f32; 3]) {
    let mut header = String::new();
    for card in [
        "SIMPLE  =                    T".to_string(),
        "BITPIX  =                  -32".to_string(),
        "NAXIS   =                    3".to_string(),
        format!("NAXIS1  = {size:>20}"),
        format!("NAXIS2  = {size:>20}"),
        "NAXIS3  =                    3".to_string(),
        "END".to_string(),
    ] {
        header.push_str(&format!("{card:<80}"));
    }
    let mut bytes = header.into_bytes();
    bytes.resize(bytes.len().div_ceil(2880) * 2880, b' ');
    let c = (size as f32 - 1.0) / 2.0;
    for f in flux {
        for y in 0..size {
            for x in 0..size {
                let r2 = (x as f32 - c).powi(2) + (y as f32 - c).powi(2);
                // A sky of 1 with a little structure, so every band has a spread.
                let sky = 1.0 + 0.01 * ((x * 7 + y * 3) % 5) as f32;
                let v = sky + f * (-r2 / (2.0 * sigma * sigma)).exp();
                bytes.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    bytes.resize(bytes.len().div_ceil(2880) * 2880, 0);
    std::fs::write(path, bytes).unwrap();
}

/// Twelve galaxies in two kinds (compact and red, extended and blue).
fn fits_folder(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..12)
        .map(|i| {
            let path = dir.join(format!("g{i:02}.fits"));
            let (sigma, flux) = if i % 2 == 0 {
                (2.0 + 0.1 * i as f32, [20.0, 40.0, 60.0])
            } else {
                (9.0 + 0.1 * i as f32, [60.0, 40.0, 20.0])
            };
            write_cube(&path, 48, sigma, flux);
            path
        })
        .collect()
}

/// Mean absolute difference, in 8-bit units, between a written JPEG thumbnail and an image in [0, 1].
fn jpeg_difference(thumb: &Path, expected: &ndarray::Array3<f32>) -> f64 {
    let img = image::open(thumb).unwrap().to_rgb8();
    let (h, w, _) = expected.dim();
    let img = if img.dimensions() == (w as u32, h as u32) {
        img
    } else {
        image::imageops::resize(
            &img,
            w as u32,
            h as u32,
            image::imageops::FilterType::Triangle,
        )
    };
    let mut total = 0.0;
    for (x, y, p) in img.enumerate_pixels() {
        for c in 0..3 {
            let want = expected[[y as usize, x as usize, c]] as f64 * 255.0;
            total += (p[c] as f64 - want).abs();
        }
    }
    total / (w * h * 3) as f64
}

fn run_fits(features: &str) {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("cutouts");
    let files = fits_folder(&images);
    let out = work.path().join("out");
    ok(
        work.path(),
        &[
            "run",
            "--images",
            images.to_str().unwrap(),
            "--features",
            features,
            "--pca",
            "3",
            "--method",
            "kmeans:k=2",
            "--no-map",
            "--out",
            out.to_str().unwrap(),
        ],
    );

    let ids = sdss_io::read_ids_csv(out.join("ids.csv")).unwrap();
    let want: Vec<String> = (0..12).map(|i| format!("g{i:02}")).collect();
    assert_eq!(
        ids, want,
        "{features}: every FITS file is a galaxy, in name order"
    );

    // The two kinds are told apart.
    let labels = labels(&out.join("labels_kmeans.npy"));
    assert_eq!(labels.len(), 12);
    for (i, &l) in labels.iter().enumerate() {
        assert_eq!(
            l == labels[0],
            i % 2 == 0,
            "{features}: compact red and extended blue galaxies in separate clusters: {labels:?}"
        );
    }

    // Thumbnails are the Lupton composite of the file, not the feature input.
    let options = sdss_io::Preprocess::default();
    let mut checked = 0;
    for (row, file) in files.iter().enumerate() {
        let thumb = out.join(format!("thumbs/0000/{row}.jpg"));
        if !thumb.exists() {
            continue;
        }
        let lupton = sdss_io::load_display_rgb(file, &options).unwrap();
        let bands = sdss_io::load_image(file, &options).unwrap();
        let to_lupton = jpeg_difference(&thumb, &lupton);
        let to_bands = jpeg_difference(&thumb, &bands);
        assert!(
            to_lupton < 4.0,
            "{features}: {} differs from the Lupton composite by {to_lupton:.2} on average",
            thumb.display()
        );
        assert!(
            to_bands > 2.0 * to_lupton,
            "{features}: {} is closer to the normalised bands ({to_bands:.2}) than it should be",
            thumb.display()
        );
        checked += 1;
    }
    assert!(checked > 0, "{features}: the report wrote thumbnails");
}

#[test]
fn fits_folder_runs_with_pixel_features_and_lupton_thumbnails() {
    run_fits("pixels");
}

#[test]
fn fits_folder_runs_with_cnn_features_and_lupton_thumbnails() {
    run_fits("cnn");
}
