//! The encoder shipped with the project: the `small` architecture trained self-supervised (VICReg) on
//! the 6,437 real SDSS galaxies of the original sdss_clustering work, with no labels. Its embedding is
//! the 128-wide `dense` tap ([`Tap::Dense`](crate::Tap::Dense)); `dense_1` and the output layer were
//! not trained.
//!
//! The weights (about 0.7 MB) are compiled into the library, so the encoder needs no download and no
//! path. The manifest beside them records the exact command, seed and data that made them; the
//! feature-quality study (`docs/feature-quality.md`) measures how well its features group galaxies.
//!
//! ```
//! let model = sdss_cnn::pretrained::model()?;
//! assert_eq!(model.config().dense_units, 128);
//! let images = ndarray::Array4::<f32>::zeros((2, 80, 80, 3));
//! let embedding = model.features(images.view(), sdss_cnn::Tap::Dense)?;
//! assert_eq!(embedding.dim(), (2, 128));
//! # Ok::<(), sdss_cnn::CnnError>(())
//! ```

use std::path::Path;

use crate::error::{CnnError, Result};
use crate::keras::{sha256_hex, Manifest};
use crate::model::CnnModel;
use crate::weights;

/// The shipped encoder's name, as reports and `run.json` give it.
pub const NAME: &str = "small-vicreg-sdss6437";

/// The weights, as `sdss-clustering train --self-supervised` wrote them.
pub const WEIGHTS: &[u8] = include_bytes!("../pretrained/small-vicreg-sdss6437.safetensors");

/// Their manifest (JSON): architecture, tensors, checksum and the `training` section.
pub const MANIFEST: &str = include_str!("../pretrained/small-vicreg-sdss6437.json");

fn pseudo_path() -> &'static Path {
    Path::new("<shipped encoder small-vicreg-sdss6437>")
}

fn bad(reason: String) -> CnnError {
    CnnError::BadWeightsFile {
        file: pseudo_path().to_path_buf(),
        format: "shipped encoder",
        reason,
    }
}

/// The manifest, checked against the weights (checksum and architecture).
pub fn manifest() -> Result<Manifest> {
    let m: Manifest = serde_json::from_str(MANIFEST).map_err(|e| bad(format!("manifest: {e}")))?;
    let sha = sha256_hex(WEIGHTS);
    if m.safetensors_sha256 != sha {
        return Err(bad(format!(
            "the weights' SHA-256 is {sha}, the manifest records {}",
            m.safetensors_sha256
        )));
    }
    Ok(m)
}

/// The shipped encoder, ready for inference; its architecture must match the manifest's.
pub fn model() -> Result<CnnModel> {
    let m = manifest()?;
    let (config, w) = weights::read_safetensors_bytes(WEIGHTS, pseudo_path())?;
    if config != m.config {
        return Err(bad(format!(
            "the weights' architecture differs from the manifest's: {}",
            config.layer_differences(&m.config).join("; ")
        )));
    }
    CnnModel::new(config, w)
}
