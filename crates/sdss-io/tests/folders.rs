//! Loading folders: bad files (truncated, corrupt, not an image, empty) are all listed in one error by
//! default, or skipped and reported with `skip_bad`; batches stream in file-name order.

use std::path::Path;

use sdss_io::synthetic::{write_galaxy_set, SyntheticConfig};
use sdss_io::{
    image_batches, list_images, load_image_folder, ImageProblem, IoError, LoadOptions, Preprocess,
};

/// A folder of `n` small synthetic JPEG galaxies (`gal0000.jpg`, …).
fn galaxies(dir: &Path, n: usize) {
    let config = SyntheticConfig {
        count: n,
        seed: 3,
        size: 96,
        ..SyntheticConfig::default()
    };
    write_galaxy_set(dir, &config).unwrap();
}

fn truncate(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

#[test]
fn one_truncated_jpeg_fails_naming_it_and_skip_bad_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    galaxies(dir.path(), 7);
    let bad = dir.path().join("gal0003.jpg");
    truncate(&bad);

    let err = load_image_folder(dir.path(), &LoadOptions::default()).unwrap_err();
    match &err {
        IoError::BadImages {
            bad: list, total, ..
        } => {
            assert_eq!(*total, 7);
            assert_eq!(list.len(), 1);
            assert_eq!(list[0].path, bad);
            assert_eq!(list[0].problem, ImageProblem::Truncated);
        }
        other => panic!("expected BadImages, got {other}"),
    }
    assert!(err.to_string().contains("gal0003.jpg"), "{err}");

    let options = LoadOptions {
        skip_bad: true,
        ..LoadOptions::default()
    };
    let loaded = load_image_folder(dir.path(), &options).unwrap();
    assert_eq!(loaded.stack.images().shape(), &[6, 80, 80, 3]);
    assert_eq!(
        loaded.stack.ids(),
        ["gal0000", "gal0001", "gal0002", "gal0004", "gal0005", "gal0006"]
    );
    assert_eq!(loaded.skipped.len(), 1);
    assert_eq!(loaded.skipped[0].path, bad);
    assert!(loaded
        .stack
        .images()
        .iter()
        .all(|&v| (0.0..=1.0).contains(&v)));
}

#[test]
fn every_bad_file_is_listed_even_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    galaxies(dir.path(), 9);
    truncate(&dir.path().join("gal0001.jpg"));
    std::fs::write(dir.path().join("gal0005.jpg"), b"plain text, not a JPEG").unwrap();
    std::fs::write(dir.path().join("gal0007.png"), b"").unwrap();
    // A JPEG whose entropy-coded data is garbage but whose markers are intact.
    let mut corrupt = std::fs::read(dir.path().join("gal0008.jpg")).unwrap();
    let n = corrupt.len();
    for b in &mut corrupt[n / 2..n - 2] {
        *b = 0xFF;
    }
    std::fs::write(dir.path().join("gal0008.jpg"), corrupt).unwrap();
    // Files that are not images by name are ignored, hidden ones too.
    std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
    std::fs::write(dir.path().join(".gal0000.jpg.tmp"), b"ignored").unwrap();

    let options = LoadOptions {
        batch_size: 2,
        ..LoadOptions::default()
    };
    let err = load_image_folder(dir.path(), &options).unwrap_err();
    let IoError::BadImages { bad, total, .. } = &err else {
        panic!("expected BadImages, got {err}");
    };
    assert_eq!(*total, 10);
    let names: Vec<_> = bad
        .iter()
        .map(|b| b.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // gal0008 may decode (JPEG is resilient to garbage entropy data) or not; the rest must be listed.
    assert!(
        names.starts_with(&[
            "gal0001.jpg".to_string(),
            "gal0005.jpg".into(),
            "gal0007.png".into()
        ]),
        "{names:?}"
    );
    assert_eq!(bad[1].problem, ImageProblem::NotAnImage);
    assert_eq!(bad[2].problem, ImageProblem::Empty);
    for name in ["gal0001.jpg", "gal0005.jpg", "gal0007.png"] {
        assert!(err.to_string().contains(name), "{err}");
    }

    // Streaming with skip_bad: batches in order, skipped files reported in their batch.
    let options = LoadOptions {
        batch_size: 4,
        skip_bad: true,
        ..LoadOptions::default()
    };
    let batches = image_batches(dir.path(), &options).unwrap();
    assert_eq!(batches.file_count(), 10);
    assert_eq!(batches.batch_count(), 3);
    let mut ids = Vec::new();
    let mut skipped = Vec::new();
    for batch in batches {
        let batch = batch.unwrap();
        assert_eq!(batch.images.shape()[0], batch.ids.len());
        assert_eq!(&batch.images.shape()[1..], &[80, 80, 3]);
        ids.extend(batch.ids);
        skipped.extend(batch.skipped.into_iter().map(|b| b.path));
    }
    assert_eq!(ids.len() + skipped.len(), 10);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "not in file-name order: {ids:?}"
    );
    assert!(skipped.contains(&dir.path().join("gal0005.jpg")));
}

#[test]
fn batches_equal_the_whole_load() {
    let dir = tempfile::tempdir().unwrap();
    galaxies(dir.path(), 5);
    let whole = load_image_folder(dir.path(), &LoadOptions::default()).unwrap();
    let options = LoadOptions {
        batch_size: 2,
        ..LoadOptions::default()
    };
    let mut offset = 0;
    for batch in image_batches(dir.path(), &options).unwrap() {
        let batch = batch.unwrap();
        let n = batch.ids.len();
        assert_eq!(batch.first_index, offset);
        assert_eq!(
            batch.images,
            whole
                .stack
                .images()
                .slice(ndarray::s![offset..offset + n, .., .., ..])
        );
        offset += n;
    }
    assert_eq!(offset, 5);
}

#[test]
fn mixed_sizes_fail_when_no_resize_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    galaxies(dir.path(), 3);
    let other = tempfile::tempdir().unwrap();
    write_galaxy_set(
        other.path(),
        &SyntheticConfig {
            count: 1,
            size: 64,
            ..SyntheticConfig::default()
        },
    )
    .unwrap();
    std::fs::copy(
        other.path().join("gal0000.jpg"),
        dir.path().join("small.jpg"),
    )
    .unwrap();
    let native = LoadOptions {
        preprocess: Preprocess {
            size: None,
            ..Preprocess::default()
        },
        ..LoadOptions::default()
    };
    let err = load_image_folder(dir.path(), &native).unwrap_err();
    let IoError::BadImages { bad, .. } = &err else {
        panic!("expected BadImages, got {err}");
    };
    assert_eq!(bad.len(), 1);
    assert!(
        matches!(
            bad[0].problem,
            ImageProblem::SizeMismatch {
                found: (64, 64),
                expected: (96, 96)
            }
        ),
        "{err}"
    );
    // Resizing makes them compatible.
    let loaded = load_image_folder(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(loaded.stack.len(), 4);
}

#[test]
fn empty_or_missing_folder_and_bad_options_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.txt"), b"no images here").unwrap();
    assert!(matches!(
        list_images(dir.path()),
        Err(IoError::EmptyFolder { .. })
    ));
    let missing = dir.path().join("nope");
    let err = load_image_folder(&missing, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(err, IoError::Io { .. }) && err.to_string().contains("nope"),
        "{err}"
    );
    galaxies(dir.path(), 1);
    let zero = LoadOptions {
        batch_size: 0,
        ..LoadOptions::default()
    };
    let err = image_batches(dir.path(), &zero).err().unwrap();
    assert!(err.to_string().contains("batch_size"), "{err}");
}

#[test]
fn all_bad_with_skip_bad_is_still_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.jpg"), b"nope").unwrap();
    let options = LoadOptions {
        skip_bad: true,
        ..LoadOptions::default()
    };
    let err = load_image_folder(dir.path(), &options).unwrap_err();
    assert!(matches!(err, IoError::BadImages { .. }), "{err}");
}

/// The real 6437 SDSS galaxies load into one (6437, 80, 80, 3) array.
#[test]
#[ignore = "needs ../shared"]
fn shared_sdss_6437_pngs_load_into_one_array() {
    let images =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sdss-6437/images");
    let loaded = load_image_folder(&images, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.stack.images().shape(), &[6437, 80, 80, 3]);
    assert!(loaded.skipped.is_empty());
    assert_eq!(loaded.stack.ids()[0], "0000");
    assert_eq!(loaded.stack.ids()[6436], "6436");
    // Mostly dark sky: channel means about 27/22/15 out of 255 (shared/README.md).
    let means = loaded
        .stack
        .images()
        .mean_axis(ndarray::Axis(0))
        .unwrap()
        .mean_axis(ndarray::Axis(0))
        .unwrap()
        .mean_axis(ndarray::Axis(0))
        .unwrap()
        * 255.0;
    for (m, expected) in means.iter().zip([27.0, 22.0, 15.0]) {
        assert!((m - expected).abs() < 1.5, "channel means {means}");
    }
}
