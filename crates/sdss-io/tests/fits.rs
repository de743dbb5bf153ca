//! FITS cutouts against astropy: the fixtures of `tests/fixtures/fits/` (made by its
//! `make_fixtures.py`, dev only) read to astropy's values in every layout (cube, three HDUs, scaled
//! integers, RICE and GZIP tile compression), bands ordered by their keywords, the Lupton composite
//! equal to `make_lupton_rgb`'s, and broken files as typed problems, alone and in a folder with
//! `skip_bad`.

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Axis};
use sdss_io::fits::{read_fits_bands, FitsBands};
use sdss_io::lupton::LuptonParams;
use sdss_io::{
    list_images, load_display_rgb, load_image, load_image_folder, ImageProblem, IoError,
    LoadOptions, Preprocess, DEFAULT_MAX_IMAGE_PIXELS,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fits")
        .join(name)
}

fn expected(name: &str) -> ArrayD<f32> {
    sdss_io::npy::read_npy(fixture(&format!("expected_{name}.npy")))
        .unwrap()
        .into_f32()
}

fn read(name: &str) -> FitsBands {
    read_fits_bands(&fixture(name), DEFAULT_MAX_IMAGE_PIXELS).unwrap()
}

/// Checks `bands` (red, green, blue, rows top to bottom) against astropy's planes (file order,
/// FITS rows bottom first), `order[k]` being the file plane of display band k.
fn assert_planes(bands: &FitsBands, astropy: &ArrayD<f32>, order: [usize; 3], tol: f32) {
    let (h, w) = (astropy.shape()[1], astropy.shape()[2]);
    assert_eq!((bands.width as usize, bands.height as usize), (w, h));
    for (k, &p) in order.iter().enumerate() {
        let plane = astropy.index_axis(Axis(0), p);
        for y in 0..h {
            for x in 0..w {
                let ours = bands.planes[k][(h - 1 - y) * w + x];
                let theirs = plane[[y, x]];
                assert!(
                    (ours - theirs).abs() <= tol * theirs.abs().max(1.0),
                    "band {k} at ({x}, {y}): {ours} vs astropy {theirs}"
                );
            }
        }
    }
}

#[test]
fn a_cube_reads_as_astropy_reads_it_with_i_r_g_as_red_green_blue() {
    let bands = read("cube.fits");
    assert_eq!(bands.names, Some(['i', 'r', 'g']));
    assert_eq!(bands.replaced, 0);
    assert_planes(&bands, &expected("cube"), [2, 1, 0], 0.0);
}

#[test]
fn three_hdus_are_ordered_by_their_filter_keywords() {
    // File order i, g, r.
    let bands = read("hdus.fits");
    assert_eq!(bands.names, Some(['i', 'r', 'g']));
    assert_planes(&bands, &expected("hdus"), [0, 2, 1], 0.0);
    // The same pixels as the cube.
    assert_eq!(bands.planes, read("cube.fits").planes);
}

#[test]
fn scaled_integers_and_a_primary_band_without_keywords_take_the_default_order() {
    let bands = read("hdus_scaled.fits");
    assert_eq!(bands.names, None);
    assert_planes(&bands, &expected("hdus_scaled"), [2, 1, 0], 1e-6);
}

#[test]
fn tile_compressed_rice_and_gzip_read_as_astropy_reads_them() {
    let rice = read("cube_rice.fits.fz");
    assert_planes(&rice, &expected("cube_rice"), [2, 1, 0], 0.0);
    let gzip = read("hdus_gzip.fits.fz");
    assert_eq!(gzip.names, Some(['i', 'r', 'g']));
    assert_planes(&gzip, &expected("hdus_gzip"), [2, 1, 0], 1e-6);
}

#[test]
fn non_finite_pixels_are_replaced_by_the_band_median() {
    let bands = read("cube_nan.fits");
    assert_eq!(bands.replaced, 7);
    assert!(bands.planes.iter().flatten().all(|v| v.is_finite()));
    let astropy = expected("cube_nan");
    // The NaN at numpy (y = 3, x = 4) of g (blue, file plane 0) holds g's median of finite values.
    let mut finite: Vec<f32> = astropy
        .index_axis(Axis(0), 0)
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    finite.sort_by(f32::total_cmp);
    let median = finite[finite.len() / 2];
    assert_eq!(bands.planes[2][(31 - 3) * 32 + 4], median);
}

#[test]
fn the_lupton_composite_equals_astropys_make_lupton_rgb() {
    let bands = read("cube.fits");
    let ours = bands.lupton_rgb(&LuptonParams::default());
    let theirs = sdss_io::npy::read_npy_as::<u8>(fixture("lupton_cube.npy")).unwrap();
    assert_eq!(theirs.shape(), &[32, 32, 3]);
    let (mut equal, mut max_diff) = (0usize, 0i32);
    for y in 0..32 {
        for x in 0..32 {
            for c in 0..3 {
                // astropy's row y is FITS row y + 1, ours counts from the top.
                let a = i32::from(ours.pixels[((31 - y) * 32 + x) * 3 + c]);
                let b = i32::from(theirs[[y, x, c]]);
                max_diff = max_diff.max((a - b).abs());
                equal += usize::from(a == b);
            }
        }
    }
    // Measured: all 3072 values equal. The tolerance allows one level for a last-ulp difference of
    // asinh between libms (numpy may use SIMD versions) at a truncation boundary.
    assert!(max_diff <= 1, "max |ours - astropy| = {max_diff}");
    assert!(equal >= 3072 - 8, "{equal} of 3072 values equal");
    eprintln!("Lupton parity: {equal} of 3072 values equal, max difference {max_diff}");
}

#[test]
fn features_are_normalised_channels_and_display_is_the_lupton_picture() {
    let features = load_image(fixture("cube.fits"), &Preprocess::default()).unwrap();
    assert_eq!(features.shape(), &[80, 80, 3]);
    assert!(features.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(features.iter().any(|&v| v > 0.9));
    let native = load_image(
        fixture("cube.fits"),
        &Preprocess {
            size: None,
            ..Preprocess::default()
        },
    )
    .unwrap();
    assert_eq!(native.shape(), &[32, 32, 3]);

    let display = load_display_rgb(
        fixture("cube.fits"),
        &Preprocess {
            size: None,
            ..Preprocess::default()
        },
    )
    .unwrap();
    let lupton = read("cube.fits").lupton_rgb(&LuptonParams::default());
    for (d, &l) in display.iter().zip(&lupton.pixels) {
        assert_eq!(*d, f32::from(l) / 255.0);
    }
    assert_eq!(
        load_display_rgb(fixture("cube.fits"), &Preprocess::default())
            .unwrap()
            .shape(),
        &[80, 80, 3]
    );
}

fn problem(name: &str, max_pixels: u64) -> ImageProblem {
    match read_fits_bands(&fixture(name), max_pixels) {
        Err(IoError::Image { problem, path }) => {
            assert_eq!(path, fixture(name));
            problem
        }
        other => panic!("{name}: expected an image problem, got {other:?}"),
    }
}

fn fits_problem(name: &str) -> (Option<usize>, Option<String>, String) {
    match problem(name, DEFAULT_MAX_IMAGE_PIXELS) {
        ImageProblem::Fits {
            hdu,
            keyword,
            reason,
        } => (hdu, keyword, reason),
        other => panic!("{name}: expected a FITS problem, got {other}"),
    }
}

#[test]
fn broken_files_are_typed_problems_naming_hdu_and_keyword() {
    let (hdu, keyword, reason) = fits_problem("broken_truncated.fits");
    assert_eq!((hdu, keyword.as_deref()), (Some(0), Some("NAXIS")));
    assert!(reason.contains("truncated"), "{reason}");

    // 100000 x 100000 x 3 float32 claimed over one block of data: refused before any allocation.
    let (hdu, _, reason) = fits_problem("broken_naxis_lies.fits");
    assert_eq!(hdu, Some(0));
    assert!(reason.contains("truncated"), "{reason}");

    let (hdu, keyword, reason) = fits_problem("broken_two_bands.fits");
    assert_eq!((hdu, keyword.as_deref()), (Some(0), Some("NAXIS3")));
    assert!(reason.contains("2 bands"), "{reason}");

    let (_, keyword, reason) = fits_problem("broken_negative_naxis.fits");
    assert_eq!(keyword.as_deref(), Some("NAXIS1"));
    assert!(reason.contains("-32"), "{reason}");

    let (_, _, reason) = fits_problem("broken_not_fits.fits");
    assert!(reason.contains("not a FITS file"), "{reason}");

    // The pixel limit: 32 x 32 refused under 1023 pixels.
    assert_eq!(
        problem("cube.fits", 1023),
        ImageProblem::TooManyPixels {
            width: 32,
            height: 32,
            limit: 1023
        }
    );
    let shown = IoError::Image {
        path: "x.fits".into(),
        problem: ImageProblem::Fits {
            hdu: Some(2),
            keyword: Some("NAXIS3".into()),
            reason: "r".into(),
        },
    };
    assert_eq!(shown.to_string(), "x.fits: FITS HDU 2, keyword NAXIS3: r");
}

fn copy(from: &str, dir: &Path, to: &str) {
    std::fs::copy(fixture(from), dir.join(to)).unwrap();
}

#[test]
fn a_folder_of_fits_lists_them_with_their_ids_and_skip_bad_works_as_for_jpegs() {
    let dir = tempfile::tempdir().unwrap();
    copy("cube.fits", dir.path(), "a.fits");
    copy("hdus.fits", dir.path(), "b.FIT");
    copy("cube_rice.fits.fz", dir.path(), "c.fits.fz");
    copy("broken_two_bands.fits", dir.path(), "d.fits");
    copy("broken_truncated.fits", dir.path(), "e.fts");
    std::fs::write(dir.path().join("notes.fz"), b"not listed").unwrap();
    let listed = list_images(dir.path()).unwrap();
    assert_eq!(listed.len(), 5);
    assert_eq!(sdss_io::folder::galaxy_id(&listed[2]), "c");

    let err = load_image_folder(dir.path(), &LoadOptions::default()).unwrap_err();
    match &err {
        IoError::BadImages { bad, total, .. } => {
            assert_eq!(*total, 5);
            let names: Vec<_> = bad
                .iter()
                .map(|b| b.path.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names, ["d.fits", "e.fts"]);
            assert!(matches!(bad[0].problem, ImageProblem::Fits { .. }));
        }
        other => panic!("expected BadImages, got {other}"),
    }
    assert!(err.to_string().contains("NAXIS3"), "{err}");

    let options = LoadOptions {
        skip_bad: true,
        batch_size: 2,
        ..LoadOptions::default()
    };
    let loaded = load_image_folder(dir.path(), &options).unwrap();
    assert_eq!(loaded.stack.ids(), ["a", "b", "c"]);
    assert_eq!(loaded.stack.images().shape(), &[3, 80, 80, 3]);
    assert_eq!(loaded.skipped.len(), 2);
    // a and b hold the same pixels: the same features.
    let images = loaded.stack.images();
    assert_eq!(images.index_axis(Axis(0), 0), images.index_axis(Axis(0), 1));
}

#[test]
fn fits_and_jpegs_mix_in_one_folder() {
    let dir = tempfile::tempdir().unwrap();
    let config = sdss_io::synthetic::SyntheticConfig {
        count: 2,
        seed: 1,
        size: 64,
        ..Default::default()
    };
    sdss_io::synthetic::write_galaxy_set(dir.path(), &config).unwrap();
    copy("cube.fits", dir.path(), "zz.fits");
    let loaded = load_image_folder(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(loaded.stack.ids(), ["gal0000", "gal0001", "zz"]);
}
