//! The "most unusual galaxies" stage of `run`: two anomaly scores per galaxy in the PCA space, a
//! gallery of the top of each, and `unusual.csv`.
//!
//! * **Isolation forest** (sdss-outliers, after scikit-learn's `IsolationForest`): how few random
//!   axis-aligned cuts isolate a galaxy. Reported as the anomaly score `−score_samples`, so higher is
//!   more unusual and an inlier scores about 0.5 or less.
//! * **k-NN distance**: the mean distance to the galaxy's nearest neighbours in the report's
//!   neighbour graph; high where the galaxy has no look-alikes.

use std::path::Path;

use anyhow::{Context, Result};
use ndarray::{Array3, ArrayView2};
use sdss_neighbors::KnnGraph;

use crate::report::gallery;

/// Galaxies shown in each "unusual" gallery.
pub const GALLERY_SIZE: usize = 28;

/// Both scores, one value per galaxy, higher meaning more unusual.
pub struct Scores {
    /// Isolation-forest anomaly score (−`score_samples` of scikit-learn's convention), in (0, 1].
    pub isolation_forest: Vec<f64>,
    /// Mean Euclidean distance to the k nearest neighbours in the PCA space.
    pub knn_distance: Vec<f64>,
    /// The k of the k-NN score.
    pub k: usize,
}

impl Scores {
    /// `(column name, description, values)` for the tables.
    pub fn columns(&self) -> Vec<(&'static str, &'static str, &[f64])> {
        vec![
            (
                "anomaly_iforest",
                "isolation-forest anomaly score in the PCA space (higher: more unusual)",
                &self.isolation_forest,
            ),
            (
                "anomaly_knn",
                "mean distance to the nearest neighbours in the PCA space (higher: more unusual)",
                &self.knn_distance,
            ),
        ]
    }
}

/// Scores every galaxy of `reduced`, reusing the report's neighbour graph for the k-NN score.
pub fn scores(reduced: ArrayView2<'_, f32>, graph: &KnnGraph, seed: u64) -> Result<Scores> {
    let forest = sdss_outliers::IsolationForest::new()
        .random_state(seed)
        .fit(reduced)
        .context("isolation forest")?;
    let isolation_forest = forest
        .score_samples(reduced)
        .context("isolation forest")?
        .iter()
        .map(|s| -s)
        .collect();
    let knn_distance = sdss_outliers::knn_distance_score_from_graph(graph)
        .context("k-NN distance score")?
        .to_vec();
    Ok(Scores {
        isolation_forest,
        knn_distance,
        k: graph.k(),
    })
}

/// Rows of the `n` highest scores, highest first (ties by row, so the order is reproducible).
pub fn top(score: &[f64], n: usize) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..score.len()).collect();
    rows.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    rows.truncate(n);
    rows
}

/// Writes one gallery per score and `unusual.csv` (every galaxy's scores and ranks); returns the
/// report's `(heading, image)` entries.
pub fn galleries(
    dir: &Path,
    scores: &Scores,
    ids: &[String],
    thumbnail: &dyn Fn(usize) -> Result<Array3<f32>>,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let kinds = [
        (
            "isolation_forest",
            "isolation forest",
            &scores.isolation_forest,
        ),
        (
            "knn",
            "distance to the nearest neighbours",
            &scores.knn_distance,
        ),
    ];
    let knn_what = format!("mean distance to the {} nearest neighbours", scores.k);
    let mut ranks = Vec::new();
    for (slug, what, score) in kinds {
        let rows = top(score, GALLERY_SIZE);
        let tiles = rows
            .iter()
            .map(|&i| Ok((thumbnail(i)?, [ids[i].clone(), format!("{:.4}", score[i])])))
            .collect::<Result<Vec<_>>>()?;
        let file = format!("unusual_{slug}.png");
        let what = if slug == "knn" {
            knn_what.as_str()
        } else {
            what
        };
        let heading = format!("The {} most unusual by {what}", rows.len());
        gallery::captioned(&dir.join(&file), &heading, &tiles, 1)?;
        out.push((heading, file));
        let mut rank = vec![0usize; score.len()];
        for (r, i) in top(score, score.len()).into_iter().enumerate() {
            rank[i] = r + 1;
        }
        ranks.push(rank);
    }
    write_csv(&dir.join("unusual.csv"), scores, ids, &ranks)?;
    Ok(out)
}

fn write_csv(path: &Path, s: &Scores, ids: &[String], ranks: &[Vec<usize>]) -> Result<()> {
    use std::io::Write;
    sdss_io::atomic::write_atomic(path, |w| {
        writeln!(w, "id,anomaly_iforest,rank_iforest,anomaly_knn,rank_knn")?;
        for (i, id) in ids.iter().enumerate() {
            writeln!(
                w,
                "{},{},{},{},{}",
                sdss_io::stack::csv_field(id),
                s.isolation_forest[i],
                ranks[0][i],
                s.knn_distance[i],
                ranks[1][i]
            )?;
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_is_highest_first_with_ties_by_row() {
        assert_eq!(top(&[0.1, 0.9, 0.5, 0.9], 3), vec![1, 3, 2]);
        assert_eq!(top(&[1.0], 5), vec![0]);
    }
}
