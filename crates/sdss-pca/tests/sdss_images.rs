//! The original project's figure on the real SDSS images: PCA of the raw pixels (80x80x3 / 255,
//! 19200 features) to 250 components explains 93.52% of the variance (scikit-learn 1.9:
//! randomized 0.93524, exact 0.93537). Needs `../shared/data/sdss-6437/images/`.

use std::path::PathBuf;

use ndarray::Array2;
use rayon::prelude::*;
use sdss_pca::{Pca, SvdSolver};

fn load_pixels() -> Array2<f32> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sdss-6437/images");
    let rows: Vec<Vec<f32>> = (0..6437)
        .into_par_iter()
        .map(|i| {
            let path = dir.join(format!("{i:04}.png"));
            let img = image::open(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .to_rgb8();
            assert_eq!(img.dimensions(), (80, 80), "{}", path.display());
            img.as_raw().iter().map(|&v| v as f32 / 255.0).collect()
        })
        .collect();
    Array2::from_shape_vec((rows.len(), 19200), rows.concat()).unwrap()
}

#[test]
#[ignore = "needs ../shared"]
fn pixels_250_components_explain_93_52_percent() {
    let x = load_pixels();
    let model = Pca::new(250).fit(x.view()).unwrap();
    assert_eq!(model.svd_solver(), SvdSolver::Randomized);
    let ratio = model.total_explained_variance_ratio();
    println!("250 components of the 6437 SDSS images explain {ratio:.6} of the variance");
    assert!(ratio >= 0.9352, "explained variance {ratio} < 0.9352");
    // Not above the exact solver's value (scikit-learn 1.9, float32: 0.93537), beyond rounding.
    assert!(
        ratio <= 0.93537 + 2e-5,
        "explained variance {ratio} above the exact 0.93537"
    );
}

#[test]
#[ignore = "needs ../shared"]
fn a_fit_on_a_sample_loses_less_variance_the_larger_the_sample() {
    // 250 components fitted on a seeded sample of the galaxies, judged on all 6437. A sample's
    // components are the best for the sample, not for everything, so they explain less of all
    // the variance than a fit on all the galaxies; measured (2026-12-03): 9.6e-3 less from 2000
    // galaxies, 5.3e-3 from 3000, 3.5e-3 from 4000. The full-data fit is what `auto` does; the
    // sample is for users who ask for it (`--pca-fit-sample`), and docs/cluster.md says so.
    let x = load_pixels();
    let full = Pca::new(250).fit(x.view()).unwrap();
    let full_ratio = full.total_explained_variance_ratio();
    let on_all: f64 = full.explained_variance_ratio_on(x.view()).unwrap().sum();
    assert!(
        (on_all - full_ratio).abs() < 1e-5,
        "the ratio on the fitted data is the fit's own: {on_all} vs {full_ratio}"
    );
    let mut last_gap = f64::INFINITY;
    for (rows, bound) in [(2000, 1.2e-2), (3000, 7e-3), (4000, 5e-3)] {
        let sampled = Pca::new(250).fit_sample(rows).fit(x.view()).unwrap();
        assert_eq!(sampled.n_samples(), rows);
        let reached: f64 = sampled.explained_variance_ratio_on(x.view()).unwrap().sum();
        let gap = full_ratio - reached;
        println!("fit on {rows} of 6437: {reached:.6} of all the variance, full fit {full_ratio:.6} (gap {gap:.2e})");
        assert!(
            gap > 0.0 && gap < last_gap && gap <= bound,
            "{rows} rows: gap {gap}"
        );
        last_gap = gap;
    }
}

#[test]
#[ignore = "needs ../shared"]
fn a_fit_streamed_from_a_mapped_file_reaches_the_exact_variance() {
    // Issue 15's criterion for a fit that does not hold the matrix: within 1e-3 of the exact
    // solver's explained variance (scikit-learn 1.9, float32: 0.93537) at 6,437 galaxies. The
    // pixels are written a batch at a time and read back through a memory map in blocks.
    let x = load_pixels();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pixels.npy");
    let mut writer = sdss_io::mapped::NpyMatrixWriter::create(&path, 19200, x.nrows()).unwrap();
    for batch in x.axis_chunks_iter(ndarray::Axis(0), 500) {
        writer.append(batch).unwrap();
    }
    writer.finish().unwrap();
    let mapped = sdss_io::mapped::MappedMatrix::open(&path).unwrap();
    let streamed = Pca::new(250).fit_blocks(&mapped).unwrap();
    let ratio = streamed.total_explained_variance_ratio();
    let in_memory = Pca::new(250).fit(x.view()).unwrap();
    let gap = in_memory.total_explained_variance_ratio() - ratio;
    println!(
        "streamed: {ratio:.6}; in memory: {:.6} (gap {gap:.1e}); exact 0.93537",
        in_memory.total_explained_variance_ratio()
    );
    assert!(
        (ratio - 0.93537).abs() < 1e-3,
        "streamed fit explains {ratio}"
    );
    assert!(
        gap.abs() < 1e-5,
        "streamed and in-memory randomized fits differ by {gap}"
    );
    let reduced = streamed.transform_blocks(&mapped).unwrap();
    let direct = streamed.transform(x.view()).unwrap();
    let worst = (&reduced - &direct)
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(worst < 1e-4, "block-by-block projection differs by {worst}");
}
