//! Affinity propagation on a sparse k-nearest-neighbour similarity graph: the other scalable form
//! (besides micro-clusters, [`crate::scalable`]) that issue 15 asks to choose between by measuring.
//!
//! Frey & Dueck's messages run only along the edges of each sample's `k` nearest neighbours (and
//! its self edge, which carries the preference): a pair that is not an edge has similarity −∞, so
//! it never sends a message. Memory and time per round are O(n k), not O(n²). A sample whose
//! neighbours hold no exemplar (rare) joins the nearest exemplar by distance.

use ndarray::{Array1, ArrayView2};
use rayon::prelude::*;

use crate::affinity::{sampled_median_similarity, AffinityPropagation};
use crate::data::{checked_f64, Element};
use crate::error::{ClusterError, Result};
use crate::result::Clustering;

impl AffinityPropagation {
    /// Fits on the graph whose row `i` lists sample `i`'s nearest neighbours (not itself), for
    /// example from `sdss_neighbors`' `KnnGraph`. Similarities are −‖xᵢ − xⱼ‖² on the edges, as in
    /// [`AffinityPropagation::fit`]; the preference is [`AffinityPropagation::preference`], or the
    /// median similarity between samples (on a seeded sample of them above 4,000), so that the
    /// objective is the dense one's restricted to the graph. `micro_clusters` is not used.
    ///
    /// Errors: invalid parameters, empty or non-finite input, a graph of another length than `x`
    /// or naming a sample out of range or itself.
    pub fn fit_knn<T: Element>(
        &self,
        x: ArrayView2<'_, T>,
        neighbours: &[Vec<usize>],
    ) -> Result<Clustering> {
        self.validate()?;
        let x = checked_f64(x)?;
        let n = x.nrows();
        if neighbours.len() != n {
            return Err(ClusterError::LengthMismatch {
                what: "neighbour lists",
                expected: n,
                found: neighbours.len(),
            });
        }
        for (i, list) in neighbours.iter().enumerate() {
            if let Some(&j) = list.iter().find(|&&j| j >= n || j == i) {
                return Err(ClusterError::InvalidParameter {
                    name: "neighbours",
                    value: format!("row {i} lists {j}"),
                    reason: format!("neighbours must be other samples, below {n}"),
                });
            }
        }
        let preference = match self.preference {
            Some(p) => p,
            None => f64::from(sampled_median_similarity(&x, u64::from(self.seed))?),
        };
        // Edges of row i: offsets[i]..offsets[i + 1], the self edge first.
        let mut offsets = Vec::with_capacity(n + 1);
        let mut target: Vec<usize> = Vec::new();
        let mut s: Vec<f64> = Vec::new();
        offsets.push(0);
        for (i, list) in neighbours.iter().enumerate() {
            target.push(i);
            s.push(preference);
            for &j in list {
                target.push(j);
                let d: f64 = x
                    .row(i)
                    .iter()
                    .zip(x.row(j))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                s.push(-d);
            }
            offsets.push(target.len());
        }
        let edges = target.len();
        // Tie-breaking noise as scikit-learn adds it (`(eps s + 100 tiny) N(0, 1)`), seeded: on
        // duplicated samples the messages otherwise oscillate between equal choices for ever.
        {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(self.seed));
            for v in s.iter_mut() {
                let u: f64 = 1.0 - rng.random::<f64>();
                let w: f64 = rng.random::<f64>();
                let normal = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * w).cos();
                *v += (f64::EPSILON * *v + 100.0 * f64::MIN_POSITIVE) * normal;
            }
        }
        let self_edge: Vec<usize> = offsets[..n].to_vec();
        let mut r = vec![0.0f64; edges];
        let mut a = vec![0.0f64; edges];
        let mut positive = vec![0.0f64; n];
        let lambda = self.damping;
        let mut last: Vec<bool> = vec![false; n];
        let mut stable = 0usize;
        let mut converged = false;
        let mut iterations = 0usize;
        for it in 0..self.max_iter {
            iterations = it + 1;
            // Responsibilities, row by row: r(i,k) = s(i,k) - max over the row's other edges of
            // a(i,k') + s(i,k'). Each row's edges are one slice of `r`, updated in place.
            let mut r_rows: Vec<&mut [f64]> = Vec::with_capacity(n);
            let mut rest: &mut [f64] = &mut r;
            for i in 0..n {
                let (row, tail) = rest.split_at_mut(offsets[i + 1] - offsets[i]);
                r_rows.push(row);
                rest = tail;
            }
            r_rows.into_par_iter().enumerate().for_each(|(i, r_row)| {
                let lo = offsets[i];
                let (a_row, s_row) = (&a[lo..lo + r_row.len()], &s[lo..lo + r_row.len()]);
                let (mut best, mut second, mut at) =
                    (f64::NEG_INFINITY, f64::NEG_INFINITY, usize::MAX);
                for (e, (&ae, &se)) in a_row.iter().zip(s_row).enumerate() {
                    let v = ae + se;
                    if v > best {
                        second = best;
                        best = v;
                        at = e;
                    } else if v > second {
                        second = v;
                    }
                }
                for (e, (re, &se)) in r_row.iter_mut().zip(s_row).enumerate() {
                    let other = if e == at { second } else { best };
                    *re = lambda * *re + (1.0 - lambda) * (se - other);
                }
            });
            // Availabilities, by column: a(k,k) = Σ max(0, r(i',k)) over the other samples that
            // have k as a neighbour; a(i,k) = min(0, r(k,k) + that sum without i's own share).
            positive.iter_mut().for_each(|p| *p = 0.0);
            for (e, &k) in target.iter().enumerate() {
                if e != self_edge[k] {
                    positive[k] += r[e].max(0.0);
                }
            }
            for (e, &k) in target.iter().enumerate() {
                let fresh = if e == self_edge[k] {
                    positive[k]
                } else {
                    (r[self_edge[k]] + positive[k] - r[e].max(0.0)).min(0.0)
                };
                a[e] = lambda * a[e] + (1.0 - lambda) * fresh;
            }
            let exemplar: Vec<bool> = (0..n)
                .map(|k| r[self_edge[k]] + a[self_edge[k]] > 0.0)
                .collect();
            if exemplar == last && exemplar.iter().any(|&e| e) {
                stable += 1;
                if stable >= self.convergence_iter {
                    converged = true;
                    break;
                }
            } else {
                stable = 0;
                last = exemplar;
            }
        }
        let mut exemplars: Vec<usize> = (0..n).filter(|&k| last[k]).collect();
        if exemplars.is_empty() {
            // No sample became an exemplar (no round changed the empty set's mind): scikit-learn
            // then labels every sample -1; one cluster of everything is the usable reading.
            tracing::warn!("affinity propagation on the k-NN graph found no exemplar");
            exemplars.push(0);
            last[0] = true;
        }
        if !converged {
            tracing::warn!(
                iterations,
                "affinity propagation on the k-NN graph did not converge; labels may be degenerate"
            );
        }
        let index_of: std::collections::HashMap<usize, usize> =
            exemplars.iter().enumerate().map(|(c, &k)| (k, c)).collect();
        let labels: Vec<i64> = (0..n)
            .into_par_iter()
            .map(|i| {
                if let Some(&c) = index_of.get(&i) {
                    return c as i64;
                }
                // The most similar exemplar among the neighbours, else the nearest of all.
                let near = (offsets[i] + 1..offsets[i + 1])
                    .filter(|&e| last[target[e]])
                    .max_by(|&e, &f| s[e].total_cmp(&s[f]));
                let k = match near {
                    Some(e) => target[e],
                    None => *exemplars
                        .iter()
                        .min_by(|&&p, &&q| {
                            let d = |k: usize| -> f64 {
                                x.row(i)
                                    .iter()
                                    .zip(x.row(k))
                                    .map(|(a, b)| (a - b) * (a - b))
                                    .sum()
                            };
                            d(p).total_cmp(&d(q))
                        })
                        .unwrap_or(&exemplars[0]),
                };
                index_of[&k] as i64
            })
            .collect();
        tracing::info!(
            n_samples = n,
            edges,
            n_clusters = exemplars.len(),
            "affinity propagation on the k-NN graph done"
        );
        Ok(Clustering {
            method: "affinity-propagation",
            n_clusters: exemplars.len(),
            labels: Array1::from(labels),
            iterations: Some(iterations),
            converged: Some(converged),
            inertia: None,
            centroids: None,
            exemplars: Some(exemplars),
            linkage: None,
            micro_clusters: None,
            micro_assignment: None,
            knn_graph: Some(neighbours.iter().map(Vec::len).max().unwrap_or(0)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Brute-force k nearest neighbours (not self).
    fn knn(x: &Array2<f64>, k: usize) -> Vec<Vec<usize>> {
        (0..x.nrows())
            .map(|i| {
                let mut d: Vec<(f64, usize)> = (0..x.nrows())
                    .filter(|&j| j != i)
                    .map(|j| {
                        let v: f64 = x
                            .row(i)
                            .iter()
                            .zip(x.row(j))
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum();
                        (v, j)
                    })
                    .collect();
                d.sort_by(|a, b| a.0.total_cmp(&b.0));
                d.iter().take(k).map(|&(_, j)| j).collect()
            })
            .collect()
    }

    #[test]
    fn the_complete_graph_gives_the_dense_result() {
        // With every other sample as a neighbour the graph is the dense similarity matrix, so
        // the exemplars and labels are dense affinity propagation's.
        let x = Array2::from_shape_fn((60, 2), |(i, j)| {
            let centre = [(0.0, 0.0), (6.0, 0.0), (0.0, 6.0)][i % 3];
            let c = if j == 0 { centre.0 } else { centre.1 };
            c + ((i * 7 + j * 3) % 11) as f64 * 0.1
        });
        let ap = AffinityPropagation {
            damping: 0.7,
            ..AffinityPropagation::new()
        };
        let dense = ap.fit(x.view()).unwrap();
        let sparse = ap.fit_knn(x.view(), &knn(&x, 59)).unwrap();
        assert_eq!(sparse.n_clusters, dense.n_clusters);
        let ari =
            crate::metrics::adjusted_rand_score(dense.labels.view(), sparse.labels.view()).unwrap();
        assert!(ari > 0.99, "ARI {ari}");
        assert_eq!(sparse.converged, Some(true));
    }

    #[test]
    fn a_graph_that_holds_each_group_gives_the_dense_result() {
        // Three far-apart groups of 30 with 29 neighbours each: every edge the dense matrix could
        // use (a pair of one group) is in the graph, the others are far too dissimilar to matter,
        // so the sparse messages find dense affinity propagation's clusters, none across groups.
        let x = Array2::from_shape_fn((90, 2), |(i, j)| {
            let centre = [(0.0, 0.0), (20.0, 0.0), (0.0, 20.0)][i / 30];
            let c = if j == 0 { centre.0 } else { centre.1 };
            c + ((i * 13 + j * 5) % 17) as f64 * 0.1
        });
        let ap = AffinityPropagation {
            damping: 0.8,
            preference: Some(-5.0),
            ..AffinityPropagation::new()
        };
        let sparse = ap.fit_knn(x.view(), &knn(&x, 29)).unwrap();
        let dense = ap.fit(x.view()).unwrap();
        assert_eq!(sparse.n_clusters, dense.n_clusters);
        let ari =
            crate::metrics::adjusted_rand_score(dense.labels.view(), sparse.labels.view()).unwrap();
        assert!(ari > 0.99, "ARI {ari}");
        for i in 0..90 {
            for j in 0..90 {
                if sparse.labels[i] == sparse.labels[j] {
                    assert_eq!(i / 30, j / 30, "a cluster spans two groups");
                }
            }
        }
        // `knn=29` finds the same graph itself.
        let by_param = AffinityPropagation {
            knn: Some(29),
            ..ap.clone()
        }
        .fit(x.view())
        .unwrap();
        assert_eq!(by_param.knn_graph, Some(29));
        let ari = crate::metrics::adjusted_rand_score(by_param.labels.view(), sparse.labels.view())
            .unwrap();
        assert!(ari > 0.99, "ARI {ari}");
        assert!(AffinityPropagation { knn: Some(0), ..ap }
            .fit(x.view())
            .is_err());
    }

    #[test]
    fn a_bad_graph_is_a_typed_error() {
        let x = Array2::<f64>::zeros((3, 2));
        let ap = AffinityPropagation::new();
        assert!(matches!(
            ap.fit_knn(x.view(), &[vec![1], vec![0]]),
            Err(ClusterError::LengthMismatch { .. })
        ));
        assert!(ap
            .fit_knn(x.view(), &[vec![1], vec![1], vec![0]])
            .unwrap_err()
            .to_string()
            .contains("row 1 lists 1"));
        assert!(ap.fit_knn(x.view(), &[vec![1], vec![7], vec![0]]).is_err());
    }
}
