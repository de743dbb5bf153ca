//! Clustering metrics with scikit-learn's definitions and edge cases.
//!
//! Internal (need the features): [`silhouette_score`], [`silhouette_samples`],
//! [`calinski_harabasz_score`], [`davies_bouldin_score`]. External (compare two labelings):
//! [`adjusted_rand_score`], [`normalized_mutual_info_score`]. Labels are any `i64` values;
//! like scikit-learn, `-1` is treated as an ordinary label (drop noise first if it should not count).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::data::{
    checked_f64, encode_labels, row_sq_norms, sq_dist_block, Element, GRAM_BLOCK_ROWS,
};
use crate::error::{ClusterError, Result};

fn check_lengths(what: &'static str, found: usize, expected: usize) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(ClusterError::LengthMismatch {
            what,
            found,
            expected,
        })
    }
}

/// Checked features plus label codes `0..k` and `k`; enforces scikit-learn's `1 < k < n`.
fn prepare<T: Element>(
    metric: &'static str,
    x: ArrayView2<'_, T>,
    labels: ArrayView1<'_, i64>,
) -> Result<(Array2<f64>, Vec<usize>, usize)> {
    let x = checked_f64(x)?;
    check_lengths("labels", labels.len(), x.nrows())?;
    let (codes, k) = encode_labels(&labels.to_vec());
    let n = x.nrows();
    if !(k > 1 && k < n) {
        return Err(ClusterError::InvalidLabelCount {
            metric,
            n_labels: k,
            n_samples: n,
        });
    }
    Ok((x, codes, k))
}

/// Silhouette coefficient of each sample, `(b - a) / max(a, b)` with `a` the mean distance
/// to the other members of its cluster and `b` the smallest mean distance to another
/// cluster; 0 for samples alone in their cluster (scikit-learn's `silhouette_samples`,
/// Euclidean). Distances by the blocked Gram trick, in parallel.
pub fn silhouette_samples<T: Element>(
    x: ArrayView2<'_, T>,
    labels: ArrayView1<'_, i64>,
) -> Result<Array1<f64>> {
    let (x, codes, k) = prepare("silhouette", x, labels)?;
    let n = x.nrows();
    let mut counts = vec![0usize; k];
    for &c in &codes {
        counts[c] += 1;
    }
    let norms = row_sq_norms(&x);
    let starts: Vec<usize> = (0..n).step_by(GRAM_BLOCK_ROWS).collect();
    let blocks: Vec<Vec<f64>> = starts
        .par_iter()
        .map(|&start| {
            let end = (start + GRAM_BLOCK_ROWS).min(n);
            let d = sq_dist_block(&x, &norms, start, end);
            let mut out = Vec::with_capacity(end - start);
            let mut sums = vec![0.0f64; k];
            for (bi, row) in d.outer_iter().enumerate() {
                let i = start + bi;
                sums.iter_mut().for_each(|s| *s = 0.0);
                for (j, (&d2, &c)) in row.iter().zip(&codes).enumerate() {
                    if j != i {
                        sums[c] += d2.sqrt();
                    }
                }
                let own = codes[i];
                let s = if counts[own] <= 1 {
                    0.0
                } else {
                    let a = sums[own] / (counts[own] - 1) as f64;
                    let b = (0..k)
                        .filter(|&c| c != own)
                        .map(|c| sums[c] / counts[c] as f64)
                        .fold(f64::INFINITY, f64::min);
                    let v = (b - a) / a.max(b);
                    if v.is_nan() {
                        0.0
                    } else {
                        v
                    }
                };
                out.push(s);
            }
            out
        })
        .collect();
    Ok(Array1::from(blocks.concat()))
}

/// Mean silhouette coefficient over all samples (scikit-learn's `silhouette_score`, Euclidean).
///
/// Errors unless `2 <= number of labels <= n - 1`.
pub fn silhouette_score<T: Element>(
    x: ArrayView2<'_, T>,
    labels: ArrayView1<'_, i64>,
) -> Result<f64> {
    let s = silhouette_samples(x, labels)?;
    Ok(s.sum() / s.len() as f64)
}

/// Per-cluster means and the codes' counts.
fn centroids(x: &Array2<f64>, codes: &[usize], k: usize) -> (Array2<f64>, Vec<usize>) {
    let d = x.ncols();
    let mut c = Array2::<f64>::zeros((k, d));
    let mut counts = vec![0usize; k];
    for (row, &l) in x.outer_iter().zip(codes) {
        let mut cr = c.row_mut(l);
        cr += &row;
        counts[l] += 1;
    }
    for (mut cr, &m) in c.outer_iter_mut().zip(&counts) {
        cr /= m as f64;
    }
    (c, counts)
}

/// Calinski-Harabasz index: between-cluster over within-cluster dispersion, scaled by
/// `(n - k) / (k - 1)`; 1.0 when the within-cluster dispersion is zero (scikit-learn).
pub fn calinski_harabasz_score<T: Element>(
    x: ArrayView2<'_, T>,
    labels: ArrayView1<'_, i64>,
) -> Result<f64> {
    let (x, codes, k) = prepare("calinski_harabasz", x, labels)?;
    let n = x.nrows();
    let mean = x.sum_axis(ndarray::Axis(0)) / n as f64;
    let (c, counts) = centroids(&x, &codes, k);
    let mut extra = 0.0;
    for (cr, &m) in c.outer_iter().zip(&counts) {
        extra += m as f64
            * cr.iter()
                .zip(&mean)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>();
    }
    let mut intra = 0.0;
    for (row, &l) in x.outer_iter().zip(&codes) {
        intra += row
            .iter()
            .zip(c.row(l))
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>();
    }
    Ok(if intra == 0.0 {
        1.0
    } else {
        extra * (n - k) as f64 / (intra * (k as f64 - 1.0))
    })
}

/// Davies-Bouldin index: mean over clusters of the worst `(s_i + s_j) / d(c_i, c_j)`, with
/// `s` the mean distance of members to their centroid; 0.0 when all `s` or all centroid
/// distances are ~0 (scikit-learn's rule, `numpy.allclose` to 0).
pub fn davies_bouldin_score<T: Element>(
    x: ArrayView2<'_, T>,
    labels: ArrayView1<'_, i64>,
) -> Result<f64> {
    let (x, codes, k) = prepare("davies_bouldin", x, labels)?;
    let (c, counts) = centroids(&x, &codes, k);
    let mut intra = vec![0.0f64; k];
    for (row, &l) in x.outer_iter().zip(&codes) {
        intra[l] += row
            .iter()
            .zip(c.row(l))
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
    }
    for (s, &m) in intra.iter_mut().zip(&counts) {
        *s /= m as f64;
    }
    let mut cd = Array2::<f64>::zeros((k, k));
    for i in 0..k {
        for j in 0..k {
            if i != j {
                cd[[i, j]] = c
                    .row(i)
                    .iter()
                    .zip(c.row(j))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
                    .sqrt();
            }
        }
    }
    // numpy.allclose(v, 0): |v| <= 1e-8.
    if intra.iter().all(|v| v.abs() <= 1e-8) || cd.iter().all(|v| v.abs() <= 1e-8) {
        return Ok(0.0);
    }
    let mut total = 0.0;
    for i in 0..k {
        let worst = (0..k)
            .filter(|&j| j != i)
            .map(|j| {
                let d = cd[[i, j]];
                if d == 0.0 {
                    0.0
                } else {
                    (intra[i] + intra[j]) / d
                }
            })
            .fold(f64::NEG_INFINITY, f64::max);
        total += worst;
    }
    Ok(total / k as f64)
}

/// Sparse contingency counts of two labelings: (cell counts, row sums, column sums).
fn contingency(
    a: ArrayView1<'_, i64>,
    b: ArrayView1<'_, i64>,
) -> Result<(Vec<u64>, Vec<u64>, Vec<u64>)> {
    check_lengths("labels_pred", b.len(), a.len())?;
    if a.is_empty() {
        return Err(ClusterError::EmptyInput { rows: 0, cols: 1 });
    }
    let (ca, ka) = encode_labels(&a.to_vec());
    let (cb, kb) = encode_labels(&b.to_vec());
    let mut cells = std::collections::HashMap::new();
    let mut rows = vec![0u64; ka];
    let mut cols = vec![0u64; kb];
    for (&i, &j) in ca.iter().zip(&cb) {
        *cells.entry((i, j)).or_insert(0u64) += 1;
        rows[i] += 1;
        cols[j] += 1;
    }
    let mut cells: Vec<((usize, usize), u64)> = cells.into_iter().collect();
    cells.sort_unstable();
    Ok((cells.into_iter().map(|(_, v)| v).collect(), rows, cols))
}

/// Adjusted Rand index between two labelings (scikit-learn's `adjusted_rand_score`, from the
/// pair confusion matrix; 1.0 for identical partitions, ~0 for independent ones).
pub fn adjusted_rand_score(
    labels_true: ArrayView1<'_, i64>,
    labels_pred: ArrayView1<'_, i64>,
) -> Result<f64> {
    let (cells, rows, cols) = contingency(labels_true, labels_pred)?;
    let n = labels_true.len() as i128;
    let sum_sq: i128 = cells.iter().map(|&v| (v as i128) * (v as i128)).sum();
    let rows_sq: i128 = rows.iter().map(|&v| (v as i128) * (v as i128)).sum();
    let cols_sq: i128 = cols.iter().map(|&v| (v as i128) * (v as i128)).sum();
    let tp = sum_sq - n;
    let fp = cols_sq - sum_sq; // scikit-learn's C[0, 1]
    let fneg = rows_sq - sum_sq; // C[1, 0]
    let tn = n * n - fp - fneg - sum_sq;
    if fneg == 0 && fp == 0 {
        return Ok(1.0);
    }
    let num = 2 * (tp * tn - fneg * fp);
    let den = (tp + fneg) * (fneg + tn) + (tp + fp) * (fp + tn);
    Ok(num as f64 / den as f64)
}

fn entropy(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let total = total as f64;
    -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let c = c as f64;
            (c / total) * (c.ln() - total.ln())
        })
        .sum::<f64>()
}

/// Normalised mutual information with the arithmetic-mean normaliser (scikit-learn's
/// default `normalized_mutual_info_score`): 1.0 for identical partitions (also when both
/// have a single cluster), 0.0 when the mutual information is 0.
pub fn normalized_mutual_info_score(
    labels_true: ArrayView1<'_, i64>,
    labels_pred: ArrayView1<'_, i64>,
) -> Result<f64> {
    let (cells, rows, cols) = contingency(labels_true, labels_pred)?;
    if rows.len() == 1 && cols.len() == 1 {
        return Ok(1.0);
    }
    // Mutual information term by term as scikit-learn's `mutual_info_score`.
    let (ca, _) = encode_labels(&labels_true.to_vec());
    let (cb, _) = encode_labels(&labels_pred.to_vec());
    let mut pairs: Vec<(usize, usize)> = ca.into_iter().zip(cb).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let total = labels_true.len() as f64;
    let mut mi = 0.0;
    for (&(i, j), &nij) in pairs.iter().zip(&cells) {
        let nij = nij as f64;
        let outer = (rows[i] as f64) * (cols[j] as f64);
        let log_outer = -outer.ln() + total.ln() + total.ln();
        let p = nij / total;
        let term = p * (nij.ln() - total.ln()) + p * log_outer;
        mi += if term.abs() < f64::EPSILON { 0.0 } else { term };
    }
    let mi = mi.max(0.0);
    if mi == 0.0 {
        return Ok(0.0);
    }
    let normaliser = (entropy(&rows) + entropy(&cols)) / 2.0;
    Ok(mi / normaliser)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn external_metric_edge_cases() {
        let a = array![0i64, 0, 1, 1];
        let b = array![5i64, 5, -1, -1];
        assert_eq!(adjusted_rand_score(a.view(), b.view()).unwrap(), 1.0);
        assert_eq!(
            normalized_mutual_info_score(a.view(), b.view()).unwrap(),
            1.0
        );
        let one = array![0i64, 0, 0, 0];
        assert_eq!(
            normalized_mutual_info_score(one.view(), one.view()).unwrap(),
            1.0
        );
        assert_eq!(
            normalized_mutual_info_score(a.view(), one.view()).unwrap(),
            0.0
        );
        assert!(adjusted_rand_score(a.view(), array![0i64, 1].view()).is_err());
        let e = Array1::<i64>::zeros(0);
        assert!(adjusted_rand_score(e.view(), e.view()).is_err());
    }

    #[test]
    fn internal_metrics_need_two_to_n_minus_one_labels() {
        let x = array![[0.0, 0.0], [0.0, 1.0], [4.0, 0.0]];
        for l in [array![0i64, 0, 0], array![0i64, 1, 2]] {
            assert!(matches!(
                silhouette_score(x.view(), l.view()),
                Err(ClusterError::InvalidLabelCount { .. })
            ));
            assert!(calinski_harabasz_score(x.view(), l.view()).is_err());
            assert!(davies_bouldin_score(x.view(), l.view()).is_err());
        }
        let l = array![0i64, 0, 1];
        let s = silhouette_samples(x.view(), l.view()).unwrap();
        assert_eq!(s[2], 0.0); // singleton cluster
        let a: f64 = 1.0;
        let b: f64 = 4.0;
        assert!((s[0] - (b - a) / b).abs() < 1e-12);
    }
}
