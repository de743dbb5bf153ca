//! The map stage of `run`: a 2-D embedding of every galaxy's PCA features (`embedding_2d.npy`)
//! drawn as an interactive page (`map.html`), coloured by any method's clusters, any catalogue
//! property or an anomaly score.

use std::path::Path;

use anyhow::{Context, Result};
use ndarray::{Array2, ArrayView2};

use crate::catalog::Joined;
use crate::progress::Progress;
use crate::report::{browse, map};
use crate::unusual::Scores;

/// The map page, relative to the output folder.
pub const PAGE: &str = "map.html";

/// Computes the embedding, writes `embedding_2d.npy` and the page; returns the (N, 2) coordinates.
/// A click opens the galaxy's page, or its entry in `search.html` when the run wrote no page per
/// galaxy (`galaxy_pages` false).
#[allow(clippy::too_many_arguments)]
pub fn draw(
    dir: &Path,
    galaxy_pages: bool,
    reduced: ArrayView2<'_, f32>,
    ids: &[String],
    labels: &[(&str, &[i64])],
    joined: Option<&Joined>,
    properties: &[String],
    scores: &Scores,
    seed: u64,
    progress: &Progress,
) -> Result<Array2<f32>> {
    let spinner = progress.spinner("2-D map");
    let xy = sdss_embed::Umap::new()
        .random_state(seed)
        .fit(reduced)
        .context("2-D map")?;
    spinner.finish_and_clear();
    sdss_io::npy::write_npy(dir.join("embedding_2d.npy"), &xy.view())?;

    let property_values: Vec<(String, Vec<f64>)> = match joined {
        Some(j) => properties
            .iter()
            .map(|p| Ok((p.clone(), j.numeric(p)?)))
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let mut colourings: Vec<map::Colouring<'_>> = labels
        .iter()
        .map(|(slug, l)| map::Colouring {
            name: format!("clusters: {slug}"),
            values: map::ColouringValues::Labels(l),
        })
        .collect();
    colourings.extend(property_values.iter().map(|(name, v)| map::Colouring {
        name: name.clone(),
        values: map::ColouringValues::Numbers(v),
    }));
    for (name, _, v) in scores.columns() {
        colourings.push(map::Colouring {
            name: name.to_owned(),
            values: map::ColouringValues::Numbers(v),
        });
    }
    map::write(
        dir,
        &map::Map {
            ids,
            xy: xy.view(),
            colourings,
            thumb: &browse::thumb_path,
            page: &|i| {
                if galaxy_pages {
                    browse::galaxy_page(i)
                } else {
                    browse::search_link(&ids[i])
                }
            },
            title: format!("sdss-clustering: map of {} galaxies", ids.len()),
        },
    )?;
    Ok(xy)
}
