//! PCA: the galaxies' features → their coordinates on the leading principal components.
//!
//! Features in memory (an `.npy` stack) are fitted as scikit-learn would (`auto` picks the
//! solver). Mapped features (a folder's, written a batch at a time) are fitted block by block with
//! the randomized solver and projected block by block, so the run never holds them whole,
//! whenever `auto` would pick the randomized solver anyway (the pixels, the 37632-wide Flatten
//! tap), when they are larger than a quarter of the available memory, or with `--pca-streamed`.
//! Otherwise (few features, or a variance fraction) the exact solver reads them through the map.

use anyhow::{bail, Result};
use ndarray::Array2;

use crate::config::{PcaSize, RunConfig};
use crate::input::Galaxies;
use crate::progress::Progress;

/// Fraction of the available memory above which mapped features are never read whole.
const STREAM_ABOVE_FRACTION_OF_MEMORY: u64 = 4;

/// The stage's result.
pub struct Reduced {
    /// The fitted PCA.
    pub model: sdss_pca::FittedPca<f32>,
    /// Every galaxy's coordinates, `(N, n_components)`.
    pub reduced: Array2<f32>,
    /// Explained variance ratio of each component, on every galaxy.
    pub ratios: Vec<f64>,
    /// Whether the fit and the projection read the features block by block.
    pub streamed: bool,
}

/// Fits the PCA `cfg` asks for on `galaxies` and projects every galaxy.
pub fn fit(cfg: &RunConfig, galaxies: &Galaxies, progress: &Progress) -> Result<Reduced> {
    let features = galaxies.features();
    let (n, d) = features.dim();
    let pca_size = match cfg.pca {
        PcaSize::Count(k) if k > n.min(d) => {
            tracing::warn!(
                "--pca {k} is more than min(galaxies, features) = {}; using {}",
                n.min(d),
                n.min(d)
            );
            PcaSize::Count(n.min(d))
        }
        other => other,
    };
    let spinner = progress.spinner(&format!("PCA ({pca_size})"));
    let mut pca = sdss_pca::Pca::new(pca_size.to_n_components()).random_state(cfg.seed);
    let sampled = cfg.pca_fit_sample.filter(|&m| m < n);
    if let Some(m) = sampled {
        tracing::info!("PCA fitted on a seeded sample of {m} of the {n} galaxies (--pca-fit-sample); every galaxy is projected");
        pca = pca.fit_sample(m);
    }
    let pca_error = |e: sdss_pca::PcaError| anyhow::anyhow!("PCA: {e}");
    let streamed_source = match galaxies.mapped() {
        Some(mapped) => {
            let limit = sdss_cluster::memory::available_bytes()
                .map(|b| b / STREAM_ABOVE_FRACTION_OF_MEMORY);
            let large = limit.is_some_and(|l| mapped.data_bytes() as u64 > l);
            // Where scikit-learn's `auto` picks the randomized solver anyway, reading the map
            // block by block gives the same model to rounding and keeps the features out of
            // memory whatever their size.
            let randomized = sdss_pca::SvdSolver::Auto.resolve(n, d, pca_size.to_n_components())
                == sdss_pca::SvdSolver::Randomized;
            (cfg.pca_streamed || large || randomized).then_some((mapped, large))
        }
        None => {
            if cfg.pca_streamed {
                tracing::warn!(
                    "--pca-streamed: the features of an .npy stack are in memory already; fitted in memory"
                );
            }
            None
        }
    };
    let (model, reduced, streamed) = match streamed_source {
        Some((mapped, large)) => {
            if let PcaSize::Fraction(f) = pca_size {
                bail!(
                    "--pca {f}: a variance fraction needs an exact solver, which holds the features ({} MB) in memory; give a number of components",
                    mapped.data_bytes() >> 20
                );
            }
            tracing::info!(
                "PCA read block by block from {} ({} MB{}), randomized solver",
                mapped.path().display(),
                mapped.data_bytes() >> 20,
                if large {
                    ", more than a quarter of the available memory"
                } else {
                    ""
                }
            );
            let model = match sampled {
                // The sample's rows are read from the map; only they are touched.
                Some(_) => pca.fit(features).map_err(pca_error)?,
                None => pca.fit_blocks(mapped).map_err(pca_error)?,
            };
            let reduced = model.transform_blocks(mapped).map_err(pca_error)?;
            (model, reduced, true)
        }
        None => {
            let (model, reduced) = pca.fit_transform(features).map_err(pca_error)?;
            (model, reduced, false)
        }
    };
    spinner.finish_and_clear();
    // After a fit on a sample, the ratios reported are those the components reach on every
    // galaxy, not on the sample.
    let ratios: Vec<f64> = match (sampled, streamed_source) {
        (Some(_), Some((mapped, _))) => model
            .explained_variance_ratio_of_blocks(mapped, reduced.view())
            .map_err(pca_error)?
            .to_vec(),
        (Some(_), None) => model
            .explained_variance_ratio_of(features, reduced.view())
            .map_err(pca_error)?
            .to_vec(),
        (None, _) => model
            .explained_variance_ratio()
            .iter()
            .map(|&v| f64::from(v))
            .collect(),
    };
    tracing::info!(
        "PCA: {} components explain {:.2}% of the variance ({} solver{})",
        ratios.len(),
        ratios.iter().sum::<f64>() * 100.0,
        model.svd_solver(),
        if streamed { ", block by block" } else { "" }
    );
    Ok(Reduced {
        model,
        reduced,
        ratios,
        streamed,
    })
}

/// The PCA in words, for the report: components, variance kept, solver, and whether it read the
/// features block by block.
pub fn describe(
    components: usize,
    total: f64,
    solver: sdss_pca::SvdSolver,
    streamed: bool,
) -> String {
    format!(
        "{components} components, {:.2}% of the variance ({solver} solver{})",
        total * 100.0,
        if streamed {
            ", fitted block by block over the memory-mapped features"
        } else {
            ""
        }
    )
}
