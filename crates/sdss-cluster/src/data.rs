//! Input checking and the pairwise-distance kernels shared by the methods and metrics.

use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::error::{ClusterError, Result};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point feature type accepted by the methods and metrics: `f32` or `f64`.
pub trait Element: sealed::Sealed + Copy + Send + Sync + 'static {
    /// Widens (or copies) the value to `f64`.
    fn to_f64(self) -> f64;
}

impl Element for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Element for f64 {
    fn to_f64(self) -> f64 {
        self
    }
}

/// Checks that `x` is non-empty and finite and returns it as an owned, C-ordered `f64` matrix.
pub(crate) fn checked_f64<T: Element>(x: ArrayView2<'_, T>) -> Result<Array2<f64>> {
    let (rows, cols) = x.dim();
    if rows == 0 || cols == 0 {
        return Err(ClusterError::EmptyInput { rows, cols });
    }
    let out = x.mapv(T::to_f64);
    if let Some(((row, col), &value)) = out.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(ClusterError::NonFinite { row, col, value });
    }
    Ok(out)
}

/// Squared Euclidean norm of each row.
pub(crate) fn row_sq_norms(x: &Array2<f64>) -> Array1<f64> {
    x.map_axis(Axis(1), |r| r.dot(&r))
}

/// Rows per block in the blocked Gram-trick kernels: large enough for an efficient matrix
/// product, small enough that a block of distances (rows x n f64) stays cache-friendly.
pub(crate) const GRAM_BLOCK_ROWS: usize = 128;

/// Squared Euclidean distances from rows `start..end` of `x` to all rows, by the Gram trick
/// (`|a|^2 + |b|^2 - 2 a.b`, one matrix product per block), clipped at zero like scikit-learn's
/// `euclidean_distances`. Where the trick cancels badly (distance tiny against the norms, e.g.
/// duplicate points) the entry is recomputed directly so that duplicates are exactly 0.
pub(crate) fn sq_dist_block(
    x: &Array2<f64>,
    norms: &Array1<f64>,
    start: usize,
    end: usize,
) -> Array2<f64> {
    let xb = x.slice(s![start..end, ..]);
    let mut d = xb.dot(&x.t());
    for (bi, mut row) in d.outer_iter_mut().enumerate() {
        let i = start + bi;
        let ni = norms[i];
        for (j, v) in row.iter_mut().enumerate() {
            let scale = ni + norms[j];
            let mut dist = (-2.0 * *v + ni) + norms[j];
            // 1e-6 relative: below this the Gram trick has lost most significant digits.
            if dist <= 1e-6 * scale {
                dist = direct_sq_dist(x, i, j);
            }
            *v = dist.max(0.0);
        }
    }
    d
}

/// Squared Euclidean distance between rows `i` and `j`, summed directly.
#[inline]
pub(crate) fn direct_sq_dist(x: &Array2<f64>, i: usize, j: usize) -> f64 {
    x.row(i)
        .iter()
        .zip(x.row(j).iter())
        .map(|(a, b)| (a - b) * (a - b))
        .sum()
}

/// Condensed Euclidean distance matrix in SciPy's `pdist` order (row-major upper triangle
/// without the diagonal), computed by the blocked Gram trick in parallel.
pub(crate) fn condensed_distances(x: &Array2<f64>) -> Vec<f64> {
    let n = x.nrows();
    let len = n * n.saturating_sub(1) / 2;
    let mut out = vec![0.0f64; len];
    let norms = row_sq_norms(x);
    // Split the condensed vector into one slice per block of rows, so blocks fill in parallel.
    let mut slices: Vec<(usize, usize, &mut [f64])> = Vec::new();
    let mut rest: &mut [f64] = &mut out;
    let mut start = 0;
    while start + 1 < n {
        let end = (start + GRAM_BLOCK_ROWS).min(n - 1);
        let block_len: usize = (start..end).map(|i| n - 1 - i).sum();
        let (head, tail) = rest.split_at_mut(block_len);
        slices.push((start, end, head));
        rest = tail;
        start = end;
    }
    slices.into_par_iter().for_each(|(start, end, slice)| {
        let d = sq_dist_block(x, &norms, start, end);
        let mut pos = 0;
        for i in start..end {
            let row = d.row(i - start);
            for j in (i + 1)..n {
                slice[pos] = row[j].sqrt();
                pos += 1;
            }
        }
    });
    out
}

/// Maps arbitrary labels to `0..k` in ascending label order (like `numpy.unique(..., return_inverse=True)`).
pub(crate) fn encode_labels(labels: &[i64]) -> (Vec<usize>, usize) {
    let mut uniq: Vec<i64> = labels.to_vec();
    uniq.sort_unstable();
    uniq.dedup();
    let codes = labels
        .iter()
        .map(|l| uniq.binary_search(l).unwrap_or(0)) // always found: `uniq` holds every label
        .collect();
    (codes, uniq.len())
}

/// Renumbers cluster ids (`-1` kept as noise) in order of first appearance, so point 0's
/// cluster is 0, the next new cluster 1, and so on; returns the number of clusters.
pub(crate) fn relabel_first_appearance(labels: &mut [i64]) -> usize {
    let mut map = std::collections::HashMap::new();
    for l in labels.iter_mut() {
        if *l < 0 {
            *l = -1;
            continue;
        }
        let next = map.len() as i64;
        *l = *map.entry(*l).or_insert(next);
    }
    map.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn rejects_empty_and_nan() {
        let e = Array2::<f64>::zeros((0, 3));
        assert!(matches!(
            checked_f64(e.view()),
            Err(ClusterError::EmptyInput { rows: 0, cols: 3 })
        ));
        let x = array![[1.0f32, 2.0], [f32::NAN, 0.0]];
        assert!(matches!(
            checked_f64(x.view()),
            Err(ClusterError::NonFinite { row: 1, col: 0, .. })
        ));
    }

    #[test]
    fn condensed_matches_direct_and_duplicates_are_zero() {
        let x = array![
            [1.0, 2.0, 3.0],
            [1.0, 2.0, 3.0],
            [-4.0, 0.5, 2.0],
            [100.0, 1e-3, 7.0]
        ];
        let c = condensed_distances(&x);
        let mut k = 0;
        for i in 0..4 {
            for j in (i + 1)..4 {
                let d = direct_sq_dist(&x, i, j).sqrt();
                assert!((c[k] - d).abs() <= 1e-12 * d.max(1.0), "{i},{j}");
                k += 1;
            }
        }
        assert_eq!(c[0], 0.0);
    }

    #[test]
    fn relabel_and_encode() {
        let mut l = vec![5, 5, -1, 2, 7, 2];
        assert_eq!(relabel_first_appearance(&mut l), 3);
        assert_eq!(l, vec![0, 0, -1, 1, 2, 1]);
        let (codes, k) = encode_labels(&[3, -1, 3, 10]);
        assert_eq!((codes, k), (vec![1, 0, 1, 2], 3));
    }
}
