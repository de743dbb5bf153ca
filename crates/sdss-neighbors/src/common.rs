//! Types shared by the indexes: metrics, neighbours, k-NN graphs, id lookup and input checks.

use std::collections::HashMap;

use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::error::{NeighborError, Result};

/// How far apart two feature vectors are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Metric {
    /// `sqrt(sum((a - b)^2))`, scikit-learn's `metric="euclidean"`.
    #[default]
    Euclidean,
    /// `1 - a.b / (|a| |b|)`, in `[0, 2]`, scikit-learn's `metric="cosine"`. A zero vector is at
    /// distance 1 from everything (scikit-learn's `normalize` leaves zero rows at zero).
    Cosine,
}

impl Metric {
    /// The scikit-learn name: `"euclidean"` or `"cosine"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Euclidean => "euclidean",
            Metric::Cosine => "cosine",
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Metric {
    type Err = NeighborError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "euclidean" | "l2" => Ok(Metric::Euclidean),
            "cosine" => Ok(Metric::Cosine),
            other => Err(NeighborError::InvalidParameter {
                name: "metric",
                reason: format!("`{other}`: expected euclidean or cosine"),
            }),
        }
    }
}

/// One neighbour of a query: a row of the index and its distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// Row of the indexed feature matrix.
    pub index: usize,
    /// Distance to the query under the index's metric (computed exactly, in `f64`, then rounded).
    pub distance: f32,
}

/// The k nearest neighbours of every indexed row, itself excluded: scikit-learn's
/// `NearestNeighbors.kneighbors()` with no argument.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnGraph {
    /// `(n, k)` neighbour rows, nearest first.
    pub indices: Array2<usize>,
    /// `(n, k)` distances matching `indices`.
    pub distances: Array2<f32>,
}

impl KnnGraph {
    /// Assembles a graph from per-row neighbour lists, each exactly `k` long.
    pub(crate) fn from_lists(lists: Vec<Vec<Neighbor>>, k: usize) -> Self {
        let n = lists.len();
        let mut indices = Array2::zeros((n, k));
        let mut distances = Array2::zeros((n, k));
        for (i, list) in lists.iter().enumerate() {
            for (j, nb) in list.iter().take(k).enumerate() {
                indices[[i, j]] = nb.index;
                distances[[i, j]] = nb.distance;
            }
        }
        KnnGraph { indices, distances }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.indices.nrows()
    }

    /// True when the graph has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Neighbours per row.
    pub fn k(&self) -> usize {
        self.indices.ncols()
    }

    /// The neighbours of `row`, nearest first.
    pub fn neighbors(&self, row: usize) -> impl Iterator<Item = Neighbor> + '_ {
        let idx = self.indices.row(row);
        let dist = self.distances.row(row);
        idx.into_iter()
            .zip(dist)
            .map(|(&index, &distance)| Neighbor { index, distance })
    }
}

/// A nearest-neighbour index over the rows of a feature matrix.
pub trait NeighborIndex: Sync {
    /// Rows indexed.
    fn len(&self) -> usize;

    /// True when nothing is indexed (never, for the indexes of this crate: they refuse empty input).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Features per row.
    fn dim(&self) -> usize;

    /// The distance used.
    fn metric(&self) -> Metric;

    /// The `k` indexed rows nearest to `point`, nearest first (ties by row).
    fn query(&self, point: ArrayView1<'_, f32>, k: usize) -> Result<Vec<Neighbor>>;

    /// The `k` rows nearest to indexed row `row`, the row itself excluded (a duplicate of it is
    /// kept, at distance 0).
    fn query_row(&self, row: usize, k: usize) -> Result<Vec<Neighbor>>;

    /// The `k` nearest neighbours of every indexed row, each row itself excluded; needs `k < len()`.
    fn knn_graph(&self, k: usize) -> Result<KnnGraph>;
}

/// Galaxy ids paired with the rows of a feature matrix, for looking rows up by id.
#[derive(Debug, Clone)]
pub struct IdIndex {
    ids: Vec<String>,
    rows: HashMap<String, usize>,
}

impl IdIndex {
    /// Pairs `ids` with `n_rows` feature rows; the counts must agree and ids must be unique.
    pub fn new(ids: Vec<String>, n_rows: usize) -> Result<Self> {
        if ids.len() != n_rows {
            return Err(NeighborError::LengthMismatch {
                ids: ids.len(),
                rows: n_rows,
            });
        }
        let mut rows = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if let Some(first) = rows.insert(id.clone(), i) {
                return Err(NeighborError::DuplicateId {
                    id: id.clone(),
                    first,
                    second: i,
                });
            }
        }
        Ok(IdIndex { ids, rows })
    }

    /// The row of galaxy `id`.
    pub fn row(&self, id: &str) -> Result<usize> {
        self.rows
            .get(id)
            .copied()
            .ok_or_else(|| NeighborError::UnknownId(id.to_owned()))
    }

    /// The id of `row` (`None` past the end).
    pub fn id(&self, row: usize) -> Option<&str> {
        self.ids.get(row).map(String::as_str)
    }

    /// All ids in row order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no ids.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Rejects empty matrices and non-finite values.
pub(crate) fn check_matrix(x: ArrayView2<'_, f32>, what: &'static str) -> Result<()> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(NeighborError::Empty { what });
    }
    for (row, r) in x.outer_iter().enumerate() {
        check_row(r, what, row)?;
    }
    Ok(())
}

/// Rejects non-finite values in one row.
pub(crate) fn check_row(r: ArrayView1<'_, f32>, what: &'static str, row: usize) -> Result<()> {
    if let Some((col, &value)) = r.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(NeighborError::NonFinite {
            what,
            row,
            col,
            value,
        });
    }
    Ok(())
}

/// Validates a query vector against an index of `dim` features.
pub(crate) fn check_query(point: ArrayView1<'_, f32>, dim: usize) -> Result<()> {
    if point.len() != dim {
        return Err(NeighborError::DimensionMismatch {
            expected: dim,
            found: point.len(),
        });
    }
    check_row(point, "query", 0)
}

/// Validates `k` for a query against `n` rows (`k <= n`).
pub(crate) fn check_k(k: usize, available: usize, what: &'static str) -> Result<()> {
    if k == 0 {
        return Err(NeighborError::ZeroNeighbors);
    }
    if k > available {
        return Err(NeighborError::TooManyNeighbors { k, available, what });
    }
    Ok(())
}

/// Exact distance between two rows under `metric`, in `f64`.
#[inline]
pub(crate) fn exact_distance(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    match metric {
        Metric::Euclidean => a
            .iter()
            .zip(b)
            .map(|(&x, &y)| {
                let d = f64::from(x) - f64::from(y);
                d * d
            })
            .sum::<f64>()
            .sqrt(),
        Metric::Cosine => {
            let na = a
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                .sqrt();
            let nb = b
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                .sqrt();
            if na == 0.0 || nb == 0.0 {
                return 1.0;
            }
            // 1 - cos = |a/|a| - b/|b||^2 / 2: summing squared differences keeps full precision for
            // near-identical directions (exactly 0 for equal rows), where 1 - a.b/(|a||b|) cancels.
            let half_sq: f64 = a
                .iter()
                .zip(b)
                .map(|(&x, &y)| {
                    let t = f64::from(x) / na - f64::from(y) / nb;
                    t * t
                })
                .sum::<f64>()
                / 2.0;
            half_sq.clamp(0.0, 2.0)
        }
    }
}

/// Turns a `k + 1` result that may contain `row` into `k` neighbours without it: scikit-learn's
/// rule, which also drops the last entry when a duplicate pushed the row itself out.
pub(crate) fn drop_self(mut list: Vec<Neighbor>, row: usize, k: usize) -> Vec<Neighbor> {
    if let Some(p) = list.iter().position(|n| n.index == row) {
        list.remove(p);
    }
    list.truncate(k);
    list
}
