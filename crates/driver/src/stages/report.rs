//! The report's summary: the facts at the top of `index.html` (what was run on what).

use crate::catalog::Joined;
use crate::cli::FeatureKind;
use crate::config::RunConfig;
use crate::input::{self, Galaxies};

/// The run's facts as `(name, value)` rows: galaxies, input, features, PCA (`pca`, in words),
/// the network, the catalogue join and skipped images, where they apply.
pub fn facts(
    cfg: &RunConfig,
    galaxies: &Galaxies,
    d: usize,
    pca: String,
    joined: Option<&Joined>,
) -> Vec<(String, String)> {
    let n = galaxies.len();
    let mut facts = vec![
        ("galaxies".to_owned(), n.to_string()),
        (
            "input".to_owned(),
            cfg.images
                .as_ref()
                .or(cfg.npy.as_ref())
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        (
            "features".to_owned(),
            match (&cfg.features_from, cfg.features) {
                (Some(from), _) => format!("read from {} ({d} values)", from.display()),
                (None, FeatureKind::Pixels) => format!("raw pixels ({d} values)"),
                (None, FeatureKind::Cnn) => format!("CNN layer {:?} ({d} values)", cfg.layer),
            },
        ),
        ("PCA".to_owned(), pca),
    ];
    if cfg.features == FeatureKind::Cnn && cfg.features_from.is_none() {
        let (network, ours) = input::describe_weights(cfg.weights.as_deref());
        facts.push(("network".to_owned(), network));
        if ours {
            facts.push((
                "feature quality".to_owned(),
                input::FEATURE_STUDY_URL.to_owned(),
            ));
        }
    }
    if let Some(j) = joined {
        facts.push((
            "catalogue".to_owned(),
            format!(
                "{}: {} of {n} galaxies joined on {}; {} galaxies unmatched, {} ambiguous; {} of {} catalogue rows unmatched (catalog_*.csv)",
                j.summary.catalog.display(),
                j.summary.matched,
                j.summary.on,
                j.summary.unmatched_galaxies,
                j.summary.ambiguous,
                j.summary.unmatched_catalog_rows,
                j.summary.catalog_rows
            ),
        ));
    }
    if !galaxies.skipped.is_empty() {
        facts.push((
            "skipped images".to_owned(),
            galaxies
                .skipped
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    facts
}
