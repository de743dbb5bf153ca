//! The isolation forest, after scikit-learn's `sklearn/ensemble/_iforest.py` and its
//! `ExtraTreeRegressor(max_features=1, splitter="random")` trees.

use ndarray::{Array1, ArrayView2};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::{check, OutlierError};

/// How many rows each tree is grown on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxSamples {
    /// `min(256, n)`, scikit-learn's `"auto"`.
    Auto,
    /// This many rows (at most n).
    Count(usize),
    /// This fraction of the rows, in (0, 1].
    Fraction(f64),
}

/// Where the decision threshold (`offset_`) lies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Contamination {
    /// `offset_ = −0.5`, as in the original paper (scikit-learn's `"auto"`).
    Auto,
    /// The expected fraction of outliers, in (0, 0.5]: `offset_` is that percentile of the
    /// training scores.
    Fraction(f64),
}

/// Isolation-forest settings, with scikit-learn's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationForest {
    n_estimators: usize,
    max_samples: MaxSamples,
    contamination: Contamination,
    bootstrap: bool,
    random_state: u64,
}

impl Default for IsolationForest {
    fn default() -> Self {
        Self::new()
    }
}

/// One node of a tree: a split, or a leaf with the training rows that reached it.
#[derive(Debug, Clone)]
enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
    Leaf {
        samples: usize,
    },
}

/// A fitted forest.
#[derive(Debug, Clone)]
pub struct FittedIsolationForest {
    trees: Vec<Vec<Node>>,
    max_samples: usize,
    n_features: usize,
    offset: f64,
}

/// Average path length of an unsuccessful binary-search-tree search among `n` points, c(n): the
/// normalisation of path lengths (scikit-learn's `_average_path_length`).
pub fn average_path_length(n: usize) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        n => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

impl IsolationForest {
    /// 100 trees of `min(256, n)` rows, without bootstrap, contamination `"auto"`, seed 0.
    pub fn new() -> Self {
        IsolationForest {
            n_estimators: 100,
            max_samples: MaxSamples::Auto,
            contamination: Contamination::Auto,
            bootstrap: false,
            random_state: 0,
        }
    }

    /// Number of trees.
    pub fn n_estimators(mut self, n: usize) -> Self {
        self.n_estimators = n;
        self
    }

    /// Rows per tree.
    pub fn max_samples(mut self, m: MaxSamples) -> Self {
        self.max_samples = m;
        self
    }

    /// Decision threshold.
    pub fn contamination(mut self, c: Contamination) -> Self {
        self.contamination = c;
        self
    }

    /// Draw each tree's rows with replacement.
    pub fn bootstrap(mut self, b: bool) -> Self {
        self.bootstrap = b;
        self
    }

    /// Seed of the forest.
    pub fn random_state(mut self, seed: u64) -> Self {
        self.random_state = seed;
        self
    }

    fn rows_per_tree(&self, n: usize) -> Result<usize, OutlierError> {
        let bad = |value: String, reason| OutlierError::InvalidParameter {
            name: "max_samples",
            value,
            reason,
        };
        Ok(match self.max_samples {
            MaxSamples::Auto => n.min(256),
            MaxSamples::Count(0) => return Err(bad("0".into(), "needs at least 1 row per tree")),
            // scikit-learn warns and uses n when the count exceeds the rows.
            MaxSamples::Count(c) => c.min(n),
            MaxSamples::Fraction(f) if f > 0.0 && f <= 1.0 => ((f * n as f64) as usize).max(1),
            MaxSamples::Fraction(f) => {
                return Err(bad(f.to_string(), "a fraction must be in (0, 1]"))
            }
        })
    }

    /// Grows the forest on the rows of `x`.
    pub fn fit(&self, x: ArrayView2<'_, f32>) -> Result<FittedIsolationForest, OutlierError> {
        check(x)?;
        if self.n_estimators == 0 {
            return Err(OutlierError::InvalidParameter {
                name: "n_estimators",
                value: "0".into(),
                reason: "needs at least one tree",
            });
        }
        if let Contamination::Fraction(c) = self.contamination {
            if !(c > 0.0 && c <= 0.5) {
                return Err(OutlierError::InvalidParameter {
                    name: "contamination",
                    value: c.to_string(),
                    reason: "must be in (0, 0.5]",
                });
            }
        }
        let n = x.nrows();
        let psi = self.rows_per_tree(n)?;
        // Depth limit log2(ψ), rounded up, as scikit-learn: deeper cuts only separate ordinary points.
        let max_depth = (psi.max(2) as f64).log2().ceil() as usize;
        let trees: Vec<Vec<Node>> = (0..self.n_estimators)
            .into_par_iter()
            .map(|t| {
                let mut rng = ChaCha8Rng::seed_from_u64(self.random_state);
                rng.set_stream(t as u64 + 1);
                let rows: Vec<usize> = if self.bootstrap {
                    (0..psi).map(|_| rng.random_range(0..n)).collect()
                } else {
                    sample(&mut rng, n, psi).into_vec()
                };
                grow(x, rows, max_depth, &mut rng)
            })
            .collect();
        let mut fitted = FittedIsolationForest {
            trees,
            max_samples: psi,
            n_features: x.ncols(),
            offset: -0.5,
        };
        if let Contamination::Fraction(c) = self.contamination {
            let mut s = fitted.score_samples(x)?.to_vec();
            s.sort_by(f64::total_cmp);
            fitted.offset = percentile(&s, 100.0 * c);
        }
        Ok(fitted)
    }
}

/// numpy's `percentile` (linear interpolation) of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Grows one tree on `rows` of `x`, iteratively (no recursion, so no stack limit on depth).
fn grow(
    x: ArrayView2<'_, f32>,
    rows: Vec<usize>,
    max_depth: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Node> {
    let mut nodes = vec![Node::Leaf { samples: 0 }];
    let mut stack = vec![(0usize, rows, 0usize)];
    let d = x.ncols();
    while let Some((at, rows, depth)) = stack.pop() {
        if depth >= max_depth || rows.len() < 2 {
            nodes[at] = Node::Leaf {
                samples: rows.len(),
            };
            continue;
        }
        // The features not constant among these rows; a random one of them is split, uniformly
        // between its min and max (scikit-learn skips constant features the same way).
        let ranges: Vec<(usize, f32, f32)> = (0..d)
            .filter_map(|f| {
                let (lo, hi) =
                    rows.iter()
                        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &r| {
                            let v = x[[r, f]];
                            (a.min(v), b.max(v))
                        });
                (hi > lo).then_some((f, lo, hi))
            })
            .collect();
        if ranges.is_empty() {
            nodes[at] = Node::Leaf {
                samples: rows.len(),
            };
            continue;
        }
        let (feature, lo, hi) = ranges[rng.random_range(0..ranges.len())];
        let mut threshold = rng.random_range(f64::from(lo)..f64::from(hi));
        if threshold >= f64::from(hi) {
            threshold = f64::from(lo);
        }
        let (left_rows, right_rows): (Vec<usize>, Vec<usize>) = rows
            .into_iter()
            .partition(|&r| f64::from(x[[r, feature]]) <= threshold);
        let left = nodes.len();
        nodes.push(Node::Leaf { samples: 0 });
        let right = nodes.len();
        nodes.push(Node::Leaf { samples: 0 });
        nodes[at] = Node::Split {
            feature,
            threshold,
            left,
            right,
        };
        stack.push((left, left_rows, depth + 1));
        stack.push((right, right_rows, depth + 1));
    }
    nodes
}

impl FittedIsolationForest {
    /// Path length of `row` in `tree`, with the c(n) correction for the rows left in its leaf.
    fn path_length(tree: &[Node], row: ndarray::ArrayView1<'_, f32>) -> f64 {
        let mut at = 0;
        let mut depth = 0.0;
        loop {
            match tree[at] {
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    at = if f64::from(row[feature]) <= threshold {
                        left
                    } else {
                        right
                    };
                    depth += 1.0;
                }
                Node::Leaf { samples } => return depth + average_path_length(samples),
            }
        }
    }

    /// scikit-learn's `score_samples`: `−2^(−mean path length / c(max_samples))`; lower is more
    /// abnormal.
    pub fn score_samples(&self, x: ArrayView2<'_, f32>) -> Result<Array1<f64>, OutlierError> {
        check(x)?;
        if x.ncols() != self.n_features {
            return Err(OutlierError::FeatureCount {
                expected: self.n_features,
                found: x.ncols(),
            });
        }
        let norm = average_path_length(self.max_samples);
        let scores: Vec<f64> = (0..x.nrows())
            .into_par_iter()
            .map(|i| {
                let row = x.row(i);
                let mean = self
                    .trees
                    .iter()
                    .map(|t| Self::path_length(t, row))
                    .sum::<f64>()
                    / self.trees.len() as f64;
                // With one row per tree every path is 0 and c(1) = 0: every point equally normal.
                if norm > 0.0 {
                    -(2f64.powf(-mean / norm))
                } else {
                    -1.0
                }
            })
            .collect();
        Ok(Array1::from(scores))
    }

    /// `score_samples − offset_`: negative for outliers.
    pub fn decision_function(&self, x: ArrayView2<'_, f32>) -> Result<Array1<f64>, OutlierError> {
        Ok(self.score_samples(x)? - self.offset)
    }

    /// +1 for inliers, −1 for outliers.
    pub fn predict(&self, x: ArrayView2<'_, f32>) -> Result<Array1<i64>, OutlierError> {
        Ok(self
            .decision_function(x)?
            .mapv(|d| if d < 0.0 { -1 } else { 1 }))
    }

    /// The decision threshold on `score_samples`.
    pub fn offset(&self) -> f64 {
        self.offset
    }

    /// Rows each tree was grown on (ψ).
    pub fn max_samples(&self) -> usize {
        self.max_samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn path_length_normalisation_matches_scikit_learn() {
        // sklearn.ensemble._iforest._average_path_length([1, 2, 256])
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        assert!((average_path_length(256) - 10.244_770_920_119_917).abs() < 1e-12);
    }

    #[test]
    fn identical_and_tiny_inputs_give_finite_scores() {
        for n in [1, 2, 3, 300] {
            let x = Array2::<f32>::ones((n, 4));
            let f = IsolationForest::new().fit(x.view()).unwrap();
            let s = f.score_samples(x.view()).unwrap();
            assert!(s.iter().all(|v| v.is_finite()), "{n}: {s:?}");
            assert!(s.iter().all(|&v| v == s[0]), "identical rows score alike");
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        let x = Array2::<f32>::zeros((5, 2));
        let e = IsolationForest::new()
            .n_estimators(0)
            .fit(x.view())
            .unwrap_err();
        assert!(e.to_string().starts_with("n_estimators = 0"), "{e}");
        let e = IsolationForest::new()
            .max_samples(MaxSamples::Fraction(1.5))
            .fit(x.view())
            .unwrap_err();
        assert!(e.to_string().starts_with("max_samples = 1.5"), "{e}");
        let e = IsolationForest::new()
            .contamination(Contamination::Fraction(0.7))
            .fit(x.view())
            .unwrap_err();
        assert!(e.to_string().contains("contamination"), "{e}");
        let f = IsolationForest::new().fit(x.view()).unwrap();
        assert!(f
            .score_samples(Array2::<f32>::zeros((2, 3)).view())
            .is_err());
    }
}
