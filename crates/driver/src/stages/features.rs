//! Load and features: the input (a folder of images, an `.npy` stack, or features computed before)
//! to each galaxy's features, written to the run's `features.npy` a batch at a time and mapped from
//! there (see [`crate::input::load`]).

use std::path::Path;

use anyhow::Result;

use crate::cli::FeatureKind;
use crate::config::RunConfig;
use crate::input::{self, FeatureRequest, Galaxies, Input};
use crate::progress::Progress;

/// What `run --resume` takes from a killed run's staging folder, the record last: its presence
/// says the others are complete.
pub const RESUMABLE: [&str; 3] = ["features.npy", "ids.csv", "features.json"];

/// Records how `dir/features.npy` was made (`features.json`), once it and `ids.csv` are written,
/// so that a killed run can be resumed from them. Only features computed from an images folder are
/// recorded; an `.npy` stack or `--features-from` is quick to read again.
pub fn record(cfg: &RunConfig, dir: &Path, galaxies: &Galaxies) -> Result<()> {
    match (&cfg.images, &cfg.features_from) {
        (Some(images), None) => input::write_features_record(dir, images, &request(cfg)?, galaxies),
        _ => Ok(()),
    }
}

fn request(cfg: &RunConfig) -> Result<FeatureRequest> {
    Ok(FeatureRequest {
        kind: cfg.features,
        weights: cfg.weights.clone(),
        layer: cfg.layer,
        skip_bad: cfg.skip_bad,
        batch_size: cfg.batch_size,
        device: cfg.compute_device()?,
        max_image_pixels: cfg.max_image_pixels,
        files: None,
    })
}

/// The galaxies of the run's input with their features, which are in `dir/features.npy`.
pub fn load(cfg: &RunConfig, dir: &Path, progress: &Progress) -> Result<Galaxies> {
    let input = Input::from_options(cfg.images.as_deref(), cfg.npy.as_deref())?;
    if cfg.features == FeatureKind::Pixels {
        tracing::info!("features: raw pixels (the baseline)");
        if cfg.compute_device()? != sdss_cnn::ComputeDevice::Cpu {
            tracing::warn!(
                "--device {}: pixel features use no network, so the device is not used",
                cfg.device
            );
        }
    } else {
        tracing::info!("features: CNN, layer {:?}", cfg.layer);
    }
    let request = request(cfg)?;
    if cfg.resume && cfg.features_from.is_none() {
        if let Some(galaxies) = input::resumed(&input, &request, dir)? {
            return Ok(galaxies);
        }
    }
    let galaxies = match &cfg.features_from {
        Some(from) => {
            tracing::info!(
                "features: read from {} (not computed; --images gives the thumbnails)",
                from.display()
            );
            input::load_precomputed(
                from,
                &input,
                cfg.max_image_pixels,
                &dir.join("features.npy"),
            )?
        }
        // Written into the run a batch at a time as they are computed.
        None => input::load(&input, &request, &dir.join("features.npy"), progress)?,
    };
    Ok(galaxies)
}
