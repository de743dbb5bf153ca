//! Neighbours: each galaxy's nearest neighbours in the PCA space (where the clustering happened),
//! as `neighbours.csv`, the thumbnails, the pages for browsing by similarity and the search page.

use anyhow::Result;
use ndarray::ArrayView2;

use crate::config::RunConfig;
use crate::input::Galaxies;
use crate::progress::Progress;
use crate::report::browse;
use crate::stages::cluster::MethodRun;

/// Nearest neighbours per galaxy in the report's "browse by neighbour" pages and `neighbours.csv`.
const REPORT_NEIGHBOURS: usize = 8;

/// Up to this many galaxies the report's neighbours are exact; above, the approximate index is used
/// (exact all-pairs search grows as N²).
const EXACT_NEIGHBOURS_MAX: usize = 20_000;

/// The stage's result.
pub struct Neighbours {
    /// Each galaxy's nearest neighbours.
    pub graph: sdss_neighbors::KnnGraph,
    /// Whether a page per galaxy was written.
    pub galaxy_pages: bool,
}

/// Finds the neighbours and writes `neighbours.csv`, the thumbnails and the browsing pages.
pub fn write(
    cfg: &RunConfig,
    dir: &std::path::Path,
    galaxies: &Galaxies,
    reduced: ArrayView2<'_, f32>,
    n_components: usize,
    runs: &[MethodRun],
    progress: &Progress,
) -> Result<Neighbours> {
    let n = galaxies.len();
    let graph = neighbour_graph(reduced)?;
    crate::similar::write_neighbours_csv(
        &dir.join("neighbours.csv"),
        &galaxies.ids,
        (0..n).map(|i| (i, graph.neighbors(i).collect())),
    )?;
    let galaxy_pages = match cfg.galaxy_pages {
        crate::cli::GalaxyPages::Always => true,
        crate::cli::GalaxyPages::Never => false,
        crate::cli::GalaxyPages::Auto => n < browse::GALAXY_PAGES_MAX,
    };
    if !galaxy_pages {
        tracing::info!(
            "no page per galaxy ({n} galaxies; --galaxy-pages always writes them): search.html finds any galaxy by id, with its neighbours"
        );
    }
    let spinner = progress.spinner("neighbour pages");
    browse::write(
        dir,
        &browse::Browse {
            ids: &galaxies.ids,
            graph: &graph,
            space: format!(
                "Euclidean distance in the PCA space ({} components){}",
                n_components,
                if n > EXACT_NEIGHBOURS_MAX {
                    "; approximate search"
                } else {
                    ""
                }
            ),
            clusterings: runs
                .iter()
                .map(|r| browse::Clustering {
                    slug: &r.slug,
                    labels: &r.clustering.labels,
                })
                .collect(),
        },
        |i| galaxies.thumbnail(i),
        galaxy_pages,
    )?;
    spinner.finish_and_clear();
    Ok(Neighbours {
        graph,
        galaxy_pages,
    })
}

/// The report's k-nearest-neighbour graph of the reduced features: exact up to
/// [`EXACT_NEIGHBOURS_MAX`] galaxies, approximate above.
fn neighbour_graph(reduced: ArrayView2<'_, f32>) -> Result<sdss_neighbors::KnnGraph> {
    use sdss_neighbors::{ExactIndex, IvfIndex, Metric, NeighborIndex};
    let n = reduced.nrows();
    let k = REPORT_NEIGHBOURS.min(n.saturating_sub(1));
    let graph = if n <= EXACT_NEIGHBOURS_MAX {
        ExactIndex::new(reduced, Metric::Euclidean)?.knn_graph(k)?
    } else {
        IvfIndex::new(reduced, Metric::Euclidean)?.knn_graph(k)?
    };
    Ok(graph)
}
