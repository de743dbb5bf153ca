//! Groups of identical or near-identical rows: repeats in a survey sample distort clusters and leak
//! across train/test splits.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use ndarray::ArrayView2;

use crate::common::{check_matrix, Metric};
use crate::error::{NeighborError, Result};
use crate::exact::ExactIndex;

/// Groups of rows of `features` that are identical (`threshold == 0`) or within Euclidean distance
/// `threshold` of each other.
///
/// With a positive threshold a group is a connected component of the "closer than or equal to
/// `threshold`" graph (single linkage), so two members of one group may be further apart than
/// `threshold` when a chain of near-duplicates joins them. `threshold == 0` compares the values
/// exactly (through a hash of the rows' bits, `-0.0` equal to `0.0`), with no rounding involved.
///
/// Each group lists its rows in ascending order; groups are ordered by their first row; rows without
/// a duplicate are left out.
pub fn duplicates(features: ArrayView2<'_, f32>, threshold: f32) -> Result<Vec<Vec<usize>>> {
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(NeighborError::InvalidParameter {
            name: "threshold",
            reason: format!("{threshold}: must be finite and >= 0"),
        });
    }
    check_matrix(features, "feature matrix")?;
    let n = features.nrows();
    let mut sets = UnionFind::new(n);
    // Exact repeats first, by hashing: cheap, and the only pass needed for threshold 0. Rows are
    // hashed to 64 bits and compared in full only against the earlier distinct rows with the same hash,
    // so no copy of the matrix is made (a pixel matrix can take gigabytes).
    let mut buckets: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut distinct: Vec<usize> = Vec::new();
    for (i, row) in features.outer_iter().enumerate() {
        let mut h = DefaultHasher::new();
        for &v in row.iter() {
            // -0.0 + 0.0 == +0.0, so both zeros hash and compare alike; NaN was rejected above.
            (v + 0.0).to_bits().hash(&mut h);
        }
        let reps = buckets.entry(h.finish()).or_default();
        match reps.iter().find(|&&j| features.row(j) == row) {
            Some(&j) => sets.union(i, j),
            None => {
                reps.push(i);
                distinct.push(i);
            }
        }
    }
    if threshold > 0.0 {
        // Only one representative of each exact group needs comparing.
        let reps = distinct;
        if reps.len() > 1 {
            let sub = features.select(ndarray::Axis(0), &reps);
            let index = ExactIndex::new(sub.view(), Metric::Euclidean)?;
            for (a, b, _) in index.pairs_within(threshold)? {
                sets.union(reps[a], reps[b]);
            }
        }
    }
    Ok(sets.groups())
}

/// Disjoint sets with path halving and union by size.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    /// `n` singletons.
    pub fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    /// The representative of `i`'s set.
    pub fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Merges the sets of `a` and `b`.
    pub fn union(&mut self, a: usize, b: usize) {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        if self.size[ra] < self.size[rb] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb] = ra;
        self.size[ra] += self.size[rb];
    }

    /// Sets with more than one member, each ascending, ordered by first member.
    pub fn groups(&mut self) -> Vec<Vec<usize>> {
        let n = self.parent.len();
        let mut by_root: HashMap<usize, Vec<usize>> = HashMap::new();
        for i in 0..n {
            let r = self.find(i);
            by_root.entry(r).or_default().push(i);
        }
        let mut groups: Vec<Vec<usize>> = by_root.into_values().filter(|g| g.len() > 1).collect();
        groups.sort_by_key(|g| g[0]);
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn exact_and_near_groups() {
        let x = array![
            [0.0f32, 1.0],
            [5.0, 5.0],
            [-0.0, 1.0],
            [5.0, 5.1],
            [9.0, 9.0],
            [5.0, 5.2],
            [0.0, 1.0]
        ];
        assert_eq!(duplicates(x.view(), 0.0).unwrap(), vec![vec![0, 2, 6]]);
        // 0.1 apart in a chain: 1-3-5 joins through 3 although 1 and 5 are 0.2 apart.
        assert_eq!(
            duplicates(x.view(), 0.11).unwrap(),
            vec![vec![0, 2, 6], vec![1, 3, 5]]
        );
        assert!(duplicates(x.view(), -1.0).is_err());
        assert!(duplicates(x.view(), f32::NAN).is_err());
    }
}
