//! Hostile input: the fuzz targets' committed seeds (real files, which must read) and regression inputs
//! (what the fuzzers found, which must give a typed error or a result, never a panic), run on stable
//! through the same entry points as `fuzz/fuzz_targets/{npy,image,fits}.rs`; the configurable pixel
//! limit; and FITS headers whose every value is replaced by hostile ones (a small fuzzer on stable).

use std::path::{Path, PathBuf};

use sdss_io::preprocess::{
    crop_and_resize, decode_rgb8_from_bytes, decode_rgb8_from_bytes_limited,
};
use sdss_io::{ImageProblem, Preprocess, DEFAULT_MAX_IMAGE_PIXELS};

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

/// The `fits` fuzz target's body: read the bands, then everything the pipeline does with them.
fn fits_target(data: &[u8], max_pixels: u64) -> Result<(), String> {
    let bands =
        sdss_io::fits::read_fits_bands_from_bytes(data, max_pixels).map_err(|e| e.to_string())?;
    let features = sdss_io::preprocess::RgbF32Image {
        width: bands.width,
        height: bands.height,
        pixels: bands.feature_pixels(),
    };
    let mut resizer = fast_image_resize::Resizer::new();
    sdss_io::preprocess::crop_and_resize_f32(&features, &Preprocess::default(), &mut resizer)
        .map_err(|e| e.to_string())?;
    let rgb = bands.lupton_rgb(&sdss_io::lupton::LuptonParams::default());
    crop_and_resize(&rgb, &Preprocess::default(), &mut resizer).map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn fits_seeds_read_and_regressions_do_not_panic() {
    let seeds = files("seeds", "fits");
    assert!(seeds.len() >= 4, "the fits seed corpus is committed");
    for path in &seeds {
        let data = std::fs::read(path).unwrap();
        fits_target(&data, DEFAULT_MAX_IMAGE_PIXELS)
            .unwrap_or_else(|e| panic!("seed {}: {e}", path.display()));
    }
    for path in files("regressions", "fits") {
        let data = std::fs::read(&path).unwrap();
        let _ = fits_target(&data, DEFAULT_MAX_IMAGE_PIXELS);
    }
}

/// Values that break naive readers: negative, zero, huge, overflowing, of the wrong type.
const HOSTILE_VALUES: [&str; 10] = [
    "-1",
    "0",
    "1",
    "3",
    "2147483648",
    "4611686018427387904",
    "9223372036854775807",
    "-9223372036854775808",
    "'RICE_1'",
    "T",
];

/// The offsets of the value cards (`KEYWORD = value`) in the headers of a FITS file.
fn value_cards(data: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 80 <= data.len() {
        let card = &data[at..at + 80];
        if card.starts_with(b"END     ") {
            // Skip to the next header: the next block starting with XTENSION.
            let mut next = (at / 2880 + 1) * 2880;
            while next + 80 <= data.len() && !data[next..].starts_with(b"XTENSION") {
                next += 2880;
            }
            at = next;
            continue;
        }
        if &card[8..10] == b"= " {
            out.push(at);
        }
        at += 80;
    }
    out
}

#[test]
fn fits_headers_with_hostile_values_give_typed_errors() {
    let mut cases = 0;
    for path in files("seeds", "fits") {
        let data = std::fs::read(&path).unwrap();
        for at in value_cards(&data) {
            for value in HOSTILE_VALUES {
                let mut bad = data.clone();
                let field = format!("{value:>20}");
                let field = if value.starts_with('\'') {
                    format!("{value:<20}")
                } else {
                    field
                };
                bad[at + 10..at + 80].fill(b' ');
                bad[at + 10..at + 10 + field.len()].copy_from_slice(field.as_bytes());
                // A small pixel limit too, so that a header made to claim a large image is refused.
                let _ = fits_target(&bad, DEFAULT_MAX_IMAGE_PIXELS);
                let _ = fits_target(&bad, 100);
                cases += 1;
            }
        }
    }
    assert!(cases > 500, "{cases} cases");
}

#[test]
fn fits_data_with_flipped_bytes_and_truncations_give_typed_errors() {
    for path in files("seeds", "fits") {
        let data = std::fs::read(&path).unwrap();
        // Every truncation on a 97-byte grid.
        for len in (0..data.len()).step_by(97) {
            let _ = fits_target(&data[..len], DEFAULT_MAX_IMAGE_PIXELS);
        }
        // Bytes of the data units (descriptors, heap, compressed tiles) set to 0xFF or 0x00.
        for at in (0..data.len()).step_by(13) {
            for byte in [0xFF, 0x00, 0x7F] {
                let mut bad = data.clone();
                bad[at] = byte;
                let _ = fits_target(&bad, DEFAULT_MAX_IMAGE_PIXELS);
            }
        }
    }
}

#[test]
fn reading_a_file_in_chunks_equals_reading_its_bytes() {
    // `read_npy` streams the data from the file; `read_npy_bytes` parses it in memory. Both must
    // give the same array, or the same error, for every seed and regression, and for files larger
    // than one read (big-endian, with elements split across reads) or cut short.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.npy");
    let x = ndarray::Array2::from_shape_fn((70_001, 3), |(i, j)| (i * 3 + j) as f64 * 0.5);
    sdss_io::npy::write_npy(&big, &x.view()).unwrap();
    let mut bytes = std::fs::read(&big).unwrap();
    let header = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let descr = bytes.windows(4).position(|w| w == b"'<f8").unwrap();
    bytes[descr + 1] = b'>';
    for chunk in bytes[header..].chunks_mut(8) {
        chunk.reverse();
    }
    let big_endian = dir.path().join("big_endian.npy");
    std::fs::write(&big_endian, &bytes).unwrap();
    let truncated = dir.path().join("truncated.npy");
    std::fs::write(&truncated, &bytes[..bytes.len() - 5]).unwrap();
    let mut paths = files("seeds", "npy");
    paths.extend(files("regressions", "npy"));
    paths.extend([big.clone(), big_endian, truncated.clone()]);
    for path in &paths {
        let data = std::fs::read(path).unwrap();
        let streamed = sdss_io::npy::read_npy(path).map(|a| a.into_f64());
        let in_memory = sdss_io::npy::read_npy_bytes(&data, path).map(|a| a.into_f64());
        match (streamed, in_memory) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", path.display()),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("{}: {a:?} vs {b:?}", path.display()),
        }
    }
    assert_eq!(sdss_io::npy::read_matrix_f64(&big).unwrap(), x);
    assert!(sdss_io::npy::read_npy(&truncated)
        .unwrap_err()
        .to_string()
        .contains("truncated"));
}

#[test]
fn mapping_a_seed_or_regression_agrees_with_reading_it_or_is_a_typed_error() {
    // `MappedMatrix::open` parses the same header as `read_npy` and then trusts the file's bytes
    // as the matrix: every seed and regression either maps to what `read_matrix_f32` reads (for
    // little-endian float32 matrices), or is refused with an error naming the file; none panics.
    let mut paths = files("seeds", "npy");
    paths.extend(files("regressions", "npy"));
    let mut mapped = 0;
    for path in &paths {
        match sdss_io::mapped::MappedMatrix::open(path) {
            Ok(m) => {
                let read = sdss_io::npy::read_matrix_f32(path).unwrap();
                assert_eq!(m.view(), read.view(), "{}", path.display());
                mapped += 1;
            }
            Err(e) => {
                let name = path.file_name().unwrap().to_string_lossy();
                assert!(e.to_string().contains(name.as_ref()), "{e}");
            }
        }
    }
    assert!(mapped >= 1, "a float32 seed maps");
}
