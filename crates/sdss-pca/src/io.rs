//! Saving and loading a fitted model: one folder holding `pca.json` (scalars and a manifest) and
//! one `.npy` file per array, readable by NumPy (`np.load`) as well as by [`FittedPca::load`].

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayD, Ix1, Ix2};
use sdss_io::npy::{read_npy, write_npy};
use serde::{Deserialize, Serialize};

use crate::{FittedPca, PcaError, PcaFloat, SvdSolver};

/// Name of the metadata file inside a saved model folder.
pub const MODEL_JSON: &str = "pca.json";
const FORMAT: &str = "sdss-pca";
const FORMAT_VERSION: u32 = 1;

const COMPONENTS: &str = "components.npy";
const EXPLAINED_VARIANCE: &str = "explained_variance.npy";
const EXPLAINED_VARIANCE_RATIO: &str = "explained_variance_ratio.npy";
const SINGULAR_VALUES: &str = "singular_values.npy";
const MEAN: &str = "mean.npy";

#[derive(Debug, Serialize, Deserialize)]
struct Metadata {
    format: String,
    format_version: u32,
    dtype: String,
    n_samples: usize,
    n_features: usize,
    n_components: usize,
    whiten: bool,
    svd_solver: SvdSolver,
    noise_variance: f64,
    total_explained_variance_ratio: f64,
}

fn storage(e: sdss_io::IoError) -> PcaError {
    PcaError::Storage(Box::new(e))
}

impl<F: PcaFloat> FittedPca<F> {
    /// Saves the model into folder `dir` (created if missing): `components.npy`, `mean.npy`,
    /// `explained_variance.npy`, `explained_variance_ratio.npy`, `singular_values.npy` (in the
    /// model's dtype) and `pca.json`. Every file is written atomically and `pca.json` last, so
    /// a folder with a `pca.json` always holds a complete model.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<(), PcaError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| PcaError::Io {
            path: dir.to_owned(),
            source,
        })?;
        write_npy(dir.join(COMPONENTS), &self.components.view()).map_err(storage)?;
        write_npy(
            dir.join(EXPLAINED_VARIANCE),
            &self.explained_variance.view(),
        )
        .map_err(storage)?;
        write_npy(
            dir.join(EXPLAINED_VARIANCE_RATIO),
            &self.explained_variance_ratio.view(),
        )
        .map_err(storage)?;
        write_npy(dir.join(SINGULAR_VALUES), &self.singular_values.view()).map_err(storage)?;
        write_npy(dir.join(MEAN), &self.mean.view()).map_err(storage)?;
        let meta = Metadata {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            dtype: F::DTYPE.to_owned(),
            n_samples: self.n_samples,
            n_features: self.n_features(),
            n_components: self.n_components(),
            whiten: self.whiten,
            svd_solver: self.svd_solver,
            noise_variance: self.noise_variance,
            total_explained_variance_ratio: self.total_explained_variance_ratio(),
        };
        let json_path = dir.join(MODEL_JSON);
        // Serialising a plain struct of numbers and strings cannot fail.
        let mut json = serde_json::to_vec_pretty(&meta).expect("metadata serialises");
        json.push(b'\n');
        sdss_io::atomic::write_bytes_atomic(&json_path, &json).map_err(storage)
    }

    /// Loads a model saved by [`FittedPca::save`] from folder `dir`. A model saved in the other
    /// precision is converted (`f32` -> `f64` exactly, `f64` -> `f32` rounded).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, PcaError> {
        let dir = dir.as_ref();
        let json_path = dir.join(MODEL_JSON);
        let text = std::fs::read_to_string(&json_path).map_err(|source| PcaError::Io {
            path: json_path.clone(),
            source,
        })?;
        let invalid = |path: &Path, reason: String| PcaError::InvalidModel {
            path: path.to_owned(),
            reason,
        };
        let meta: Metadata = serde_json::from_str(&text)
            .map_err(|e| invalid(&json_path, format!("bad JSON: {e}")))?;
        if meta.format != FORMAT || meta.format_version != FORMAT_VERSION {
            return Err(invalid(
                &json_path,
                format!(
                    "format {:?} version {} (expected {FORMAT:?} version {FORMAT_VERSION})",
                    meta.format, meta.format_version
                ),
            ));
        }
        if meta.svd_solver == SvdSolver::Auto {
            return Err(invalid(
                &json_path,
                "svd_solver must be a resolved solver, not auto".into(),
            ));
        }
        let (k, p) = (meta.n_components, meta.n_features);
        if k == 0 || p == 0 || k > p || meta.n_samples < 2 {
            return Err(invalid(
                &json_path,
                format!(
                    "inconsistent sizes: n_components={k}, n_features={p}, n_samples={}",
                    meta.n_samples
                ),
            ));
        }
        let components: Array2<F> = read_2d(&dir.join(COMPONENTS), (k, p))?;
        let explained_variance: Array1<F> = read_1d(&dir.join(EXPLAINED_VARIANCE), k)?;
        let explained_variance_ratio: Array1<F> = read_1d(&dir.join(EXPLAINED_VARIANCE_RATIO), k)?;
        let singular_values: Array1<F> = read_1d(&dir.join(SINGULAR_VALUES), k)?;
        let mean: Array1<F> = read_1d(&dir.join(MEAN), p)?;
        let all_finite = components
            .iter()
            .chain(&explained_variance)
            .chain(&explained_variance_ratio)
            .chain(&singular_values)
            .chain(&mean)
            .all(|v| v.as_f64().is_finite());
        if !all_finite || !meta.noise_variance.is_finite() {
            return Err(invalid(dir, "non-finite values in the saved arrays".into()));
        }
        Ok(FittedPca {
            components,
            explained_variance,
            explained_variance_ratio,
            singular_values,
            mean,
            n_samples: meta.n_samples,
            noise_variance: meta.noise_variance,
            whiten: meta.whiten,
            svd_solver: meta.svd_solver,
        })
    }
}

fn read_any<F: PcaFloat>(path: &Path) -> Result<ArrayD<F>, PcaError> {
    let array = read_npy(path).map_err(storage)?;
    let dtype = array.dtype();
    match dtype {
        "f4" => Ok(array.into_f32().mapv(|v| F::of_f64(v as f64))),
        "f8" => Ok(array.into_f64().mapv(F::of_f64)),
        other => Err(PcaError::InvalidModel {
            path: path.to_owned(),
            reason: format!("dtype {other}, expected float32 or float64"),
        }),
    }
}

fn shape_error(path: &Path, found: &[usize], expected: String) -> PcaError {
    PcaError::InvalidModel {
        path: PathBuf::from(path),
        reason: format!("array of shape {found:?}, expected {expected}"),
    }
}

fn read_2d<F: PcaFloat>(path: &Path, shape: (usize, usize)) -> Result<Array2<F>, PcaError> {
    let a = read_any::<F>(path)?;
    if a.shape() != [shape.0, shape.1] {
        return Err(shape_error(path, a.shape(), format!("{shape:?}")));
    }
    let found = a.shape().to_vec();
    a.into_dimensionality::<Ix2>()
        .map_err(|_| shape_error(path, &found, format!("{shape:?}")))
}

fn read_1d<F: PcaFloat>(path: &Path, len: usize) -> Result<Array1<F>, PcaError> {
    let a = read_any::<F>(path)?;
    if a.shape() != [len] {
        return Err(shape_error(path, a.shape(), format!("({len},)")));
    }
    let found = a.shape().to_vec();
    a.into_dimensionality::<Ix1>()
        .map_err(|_| shape_error(path, &found, format!("({len},)")))
}
