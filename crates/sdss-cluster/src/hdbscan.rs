//! HDBSCAN with scikit-learn's semantics (`sklearn.cluster.HDBSCAN`, excess-of-mass selection).
//!
//! The steps and their tie rules follow scikit-learn's `_hdbscan` so that labels agree:
//! core distances to the `min_samples`-th nearest sample (the sample itself included), a
//! minimum spanning tree of the mutual-reachability graph by Prim's algorithm on the data
//! (`mst_from_data_matrix`: first index wins ties), a single-linkage tree from the sorted
//! edges, the tree condensed by `min_cluster_size`, cluster stabilities, excess-of-mass
//! selection (the root only with `allow_single_cluster`) and the final labelling. Labels
//! number the selected clusters in scikit-learn's order; noise is `-1`.
//!
//! Distances are computed exactly as scikit-learn does (`sqrt` of the sum of squared
//! differences, feature by feature), vectorised across samples: both the nearest-neighbour
//! search and Prim's updates cost `O(n^2 d)` and run on all threads.

use ndarray::{Array1, Array2, ArrayView2};
use rayon::prelude::*;

use crate::data::{checked_f64, Element};
use crate::error::{ClusterError, Result};
use crate::result::Clustering;

/// HDBSCAN parameters (scikit-learn's defaults: `min_cluster_size` 5, `min_samples` =
/// `min_cluster_size`, `alpha` 1, no single cluster).
#[derive(Debug, Clone, PartialEq)]
pub struct Hdbscan {
    /// Smallest group that counts as a cluster (>= 2).
    pub min_cluster_size: usize,
    /// Neighbours, the sample itself included, that define the core distance (>= 1); `None`
    /// means `min_cluster_size`.
    pub min_samples: Option<usize>,
    /// Distance scaling of the mutual-reachability graph (> 0). Default 1.
    pub alpha: f64,
    /// Let excess of mass select the root, i.e. return one cluster when that is the most
    /// stable answer. Default false, as in scikit-learn.
    pub allow_single_cluster: bool,
    /// Refuse more samples than this (default [`HDBSCAN_MAX_SAMPLES`]): the time grows as n².
    pub max_samples: usize,
}

/// HDBSCAN's default sample limit. Its memory is O(n) but its time O(n² d): measured on the
/// 20-d features on 2 cores (2026-12-03, `examples/scalable_agreement.rs`), 0.30 s at 6,437 and
/// 44 s at 50,000, so about 12 minutes at 200,000 and 5 hours at 1,000,000. Above the limit it
/// refuses with the alternatives rather than run for hours; `max_samples` raises it.
pub const HDBSCAN_MAX_SAMPLES: usize = 200_000;

impl Default for Hdbscan {
    fn default() -> Self {
        Self {
            min_cluster_size: 5,
            min_samples: None,
            alpha: 1.0,
            allow_single_cluster: false,
            max_samples: HDBSCAN_MAX_SAMPLES,
        }
    }
}

fn invalid(name: &'static str, value: impl ToString, reason: &str) -> ClusterError {
    ClusterError::InvalidParameter {
        name,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

impl Hdbscan {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if self.min_cluster_size < 2 {
            return Err(invalid(
                "min_cluster_size",
                self.min_cluster_size,
                "must be >= 2",
            ));
        }
        if self.min_samples == Some(0) {
            return Err(invalid("min_samples", 0, "must be >= 1"));
        }
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            return Err(invalid("alpha", self.alpha, "must be a finite number > 0"));
        }
        Ok(())
    }

    /// Clusters the rows of `x`; samples outside every selected cluster are labelled `-1`.
    ///
    /// `min_samples` larger than the number of samples is clamped to it (scikit-learn raises
    /// instead); a single sample is labelled noise.
    pub fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering> {
        self.validate()?;
        if x.nrows() > self.max_samples {
            return Err(ClusterError::TooManySamples {
                method: "HDBSCAN",
                n_samples: x.nrows(),
                limit: self.max_samples,
                alternative: "--method minibatch:k=..., or ward:k=... / affinity (scalable over k-means micro-clusters)",
            });
        }
        let x = checked_f64(x)?;
        let n = x.nrows();
        let labels = if n < 2 {
            vec![-1; n]
        } else {
            let min_samples = self.min_samples.unwrap_or(self.min_cluster_size).min(n);
            let columns = Columns::new(&x);
            let core = core_distances(&x, &columns, min_samples);
            let mut mst = prim_mst(&x, columns, &core, self.alpha);
            // Stable, so tied edges keep Prim's order (NumPy's argsort breaks ties its own way).
            mst.sort_by(|a, b| a.2.total_cmp(&b.2));
            let tree = single_linkage(&mst, n);
            let condensed = condense_tree(&tree, n, self.min_cluster_size);
            select_and_label(&condensed, n, self.allow_single_cluster)
        };
        Ok(Clustering::from_labels("hdbscan", Array1::from(labels)))
    }
}

/// Samples per vector block of the distance kernels; a block's partial sums stay in registers.
const LANES: usize = 8;

/// The data feature-major: `t[f * stride + j]` is feature `f` of sample `j`, so one sample's
/// distances to many vectorise. The stride is `n` rounded up to whole blocks, plus one block
/// so that a block may start anywhere below `n`.
struct Columns {
    t: Vec<f64>,
    stride: usize,
    d: usize,
}

impl Columns {
    fn new(x: &Array2<f64>) -> Self {
        let (n, d) = x.dim();
        let stride = n.div_ceil(LANES) * LANES + LANES;
        let mut t = vec![0.0; stride * d];
        for ((j, f), &v) in x.indexed_iter() {
            t[f * stride + j] = v;
        }
        Self { t, stride, d }
    }

    /// Squared distances from `p` to samples `start..start + LANES`, summed in feature order
    /// (scikit-learn's order, so the same rounding).
    #[inline(always)]
    fn sq_dists(&self, p: &[f64], start: usize) -> [f64; LANES] {
        let mut acc = [0.0f64; LANES];
        for (f, &pf) in p.iter().enumerate().take(self.d) {
            let base = f * self.stride + start;
            let row = &self.t[base..base + LANES];
            for l in 0..LANES {
                let diff = row[l] - pf;
                acc[l] += diff * diff;
            }
        }
        acc
    }
}

/// Distance from each sample to its `k`-th nearest sample, itself included (the first is
/// itself at 0), like scikit-learn's `kneighbors(X, k)[0][:, -1]`.
///
/// Each pair is computed once: the rows are split into parts of about equal pair counts, each
/// part scans its rows' pairs `(i, j > i)` into its own k-smallest lists for both samples, and
/// the parts' lists are merged per sample. (Distances are symmetric to the bit: the squares
/// of `a - b` and `b - a` are equal.)
fn core_distances(x: &Array2<f64>, columns: &Columns, k: usize) -> Vec<f64> {
    let n = x.nrows();
    let parts = (rayon::current_num_threads() * 4).clamp(1, n);
    // Row `i` has `n - 1 - i` pairs: cut where the cumulative count crosses each share.
    let total = n * (n - 1) / 2;
    let mut cuts = vec![0usize];
    let mut acc = 0usize;
    for i in 0..n {
        acc += n - 1 - i;
        if acc * parts >= total * cuts.len() && cuts.len() < parts {
            cuts.push(i + 1);
        }
    }
    cuts.push(n);
    cuts.dedup();
    let lists: Vec<Smallest> = cuts
        .par_windows(2)
        .map(|w| {
            let mut lists = Smallest::new(n, k);
            let mut p = vec![0.0f64; columns.d];
            for i in w[0]..w[1] {
                p.iter_mut().zip(x.row(i)).for_each(|(a, &b)| *a = b);
                lists.offer(i, 0.0);
                for start in (i + 1..n).step_by(LANES) {
                    let acc = columns.sq_dists(&p, start);
                    for (l, &d) in acc[..LANES.min(n - start)].iter().enumerate() {
                        lists.offer(i, d);
                        lists.offer(start + l, d);
                    }
                }
            }
            lists
        })
        .collect();
    (0..n)
        .into_par_iter()
        .map(|j| {
            let mut merged: Vec<f64> = lists.iter().flat_map(|l| l.of(j)).copied().collect();
            merged.sort_unstable_by(f64::total_cmp);
            merged[k - 1].sqrt()
        })
        .collect()
}

/// The `k` smallest values offered per sample, ascending.
struct Smallest {
    values: Vec<f64>,
    len: Vec<usize>,
    k: usize,
}

impl Smallest {
    fn new(n: usize, k: usize) -> Self {
        Self {
            values: vec![f64::INFINITY; n * k],
            len: vec![0; n],
            k,
        }
    }

    #[inline]
    fn offer(&mut self, j: usize, d: f64) {
        let list = &mut self.values[j * self.k..(j + 1) * self.k];
        if d >= list[self.k - 1] {
            return;
        }
        // Insertion into the sorted list; the largest value falls off the end.
        let mut at = self.k - 1;
        while at > 0 && list[at - 1] > d {
            list[at] = list[at - 1];
            at -= 1;
        }
        list[at] = d;
        self.len[j] = (self.len[j] + 1).min(self.k);
    }

    fn of(&self, j: usize) -> &[f64] {
        &self.values[j * self.k..j * self.k + self.len[j]]
    }
}

/// The samples outside the spanning tree, compacted by swap-removal (ties are broken by
/// sample index, so the storage order does not matter). Positions from `len` to the end of
/// the last block are padding that can never be chosen (infinite core distance).
struct Outside {
    cols: Columns,
    index: Vec<usize>,
    core: Vec<f64>,
    reach: Vec<f64>,
    source: Vec<usize>,
    len: usize,
}

impl Outside {
    fn new(cols: Columns, core: &[f64]) -> Self {
        let (n, padded) = (core.len(), cols.stride);
        let mut out = Self {
            cols,
            index: (0..padded).collect(),
            core: core.to_vec(),
            reach: vec![f64::INFINITY; padded],
            source: vec![0; padded],
            len: n,
        };
        out.core.resize(padded, f64::INFINITY);
        out
    }

    fn remove(&mut self, at: usize) {
        let last = self.len - 1;
        self.index.swap(at, last);
        self.core.swap(at, last);
        self.reach.swap(at, last);
        self.source.swap(at, last);
        for f in 0..self.cols.d {
            let base = f * self.cols.stride;
            self.cols.t[base + at] = self.cols.t[base + last];
        }
        self.core[last] = f64::INFINITY;
        self.reach[last] = f64::INFINITY;
        self.len -= 1;
    }
}

/// scikit-learn's `mst_from_data_matrix`: Prim's algorithm on the mutual-reachability
/// distances `max(core_a, core_b, dist / alpha)`, computed on the fly. Each step adds the
/// outside sample with the smallest reachability (first index on ties). Returns the edges
/// `(source, new, distance)` in the order added.
///
/// A sample whose reachability has fallen to its own core distance can never improve
/// (every mutual-reachability distance is at least that), so it leaves the scanned set for a
/// heap ordered like the scan's ties.
fn prim_mst(
    x: &Array2<f64>,
    columns: Columns,
    core: &[f64],
    alpha: f64,
) -> Vec<(usize, usize, f64)> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    let n = x.nrows();
    let mut out = Outside::new(columns, core);
    // Settled samples: (reachability bits, index, source); reachabilities are >= 0, whose
    // bit patterns order like the values.
    let mut settled: BinaryHeap<Reverse<(u64, usize, usize)>> = BinaryHeap::new();
    let mut edges = Vec::with_capacity(n - 1);
    let mut current = 0usize;
    out.remove(0); // sample 0 starts the tree
    for _ in 0..n - 1 {
        let p = x.row(current).to_vec();
        let core_c = core[current];
        let blocks = out.len.div_ceil(LANES) * LANES;
        let mut best = (f64::INFINITY, usize::MAX, usize::MAX);
        {
            let (cols, index, core_out) = (&out.cols, &out.index, &out.core);
            for (((start, r), s), c) in (0..blocks)
                .step_by(LANES)
                .zip(out.reach[..blocks].chunks_exact_mut(LANES))
                .zip(out.source[..blocks].chunks_exact_mut(LANES))
                .zip(core_out[..blocks].chunks_exact(LANES))
            {
                let d2 = cols.sq_dists(&p, start);
                let mut low = f64::INFINITY;
                for l in 0..LANES {
                    let pair = d2[l].sqrt();
                    // `x / 1.0 == x` exactly, so the common case skips the division.
                    let pair = if alpha == 1.0 { pair } else { pair / alpha };
                    let mrd = core_c.max(c[l]).max(pair);
                    let better = mrd < r[l];
                    r[l] = if better { mrd } else { r[l] };
                    s[l] = if better { current } else { s[l] };
                    low = low.min(r[l]);
                }
                if low <= best.0 {
                    for (l, (&rl, &i)) in r.iter().zip(&index[start..start + LANES]).enumerate() {
                        if rl < best.0 || (rl == best.0 && i < best.1) {
                            best = (rl, i, start + l);
                        }
                    }
                }
            }
        }
        let heap_wins = settled.peek().copied().filter(|&Reverse((bits, i, _))| {
            let r = f64::from_bits(bits);
            r < best.0 || (r == best.0 && i < best.1)
        });
        let (r, new, src) = match heap_wins {
            Some(Reverse((bits, i, src))) => {
                settled.pop();
                (f64::from_bits(bits), i, src)
            }
            None => {
                let at = best.2;
                let edge = (best.0, best.1, out.source[at]);
                out.remove(at);
                edge
            }
        };
        edges.push((src, new, r));
        current = new;
        // Move the samples that reached their floor to the heap (descending positions, so
        // each swap-removal brings in an already-checked sample).
        for at in (0..out.len).rev() {
            if out.reach[at] <= out.core[at] {
                settled.push(Reverse((
                    out.reach[at].to_bits(),
                    out.index[at],
                    out.source[at],
                )));
                out.remove(at);
            }
        }
    }
    edges
}

/// One merge of a single-linkage tree in SciPy's format: the two merged nodes, the distance
/// and the size of the new node (`n + i` for the i-th merge).
#[derive(Debug, Clone, Copy)]
struct Merge {
    left: usize,
    right: usize,
    distance: f64,
    size: usize,
}

/// scikit-learn's `make_single_linkage` over edges sorted by distance.
fn single_linkage(edges: &[(usize, usize, f64)], n: usize) -> Vec<Merge> {
    let mut parent = vec![usize::MAX; 2 * n - 1];
    let mut size: Vec<usize> = (0..2 * n - 1).map(|i| usize::from(i < n)).collect();
    let find = |parent: &mut [usize], mut a: usize| {
        let start = a;
        while parent[a] != usize::MAX {
            a = parent[a];
        }
        let mut p = start;
        while p != a && parent[p] != a {
            let next = parent[p];
            parent[p] = a;
            p = next;
        }
        a
    };
    let mut out = Vec::with_capacity(n - 1);
    for (i, &(a, b, distance)) in edges.iter().enumerate() {
        let left = find(&mut parent, a);
        let right = find(&mut parent, b);
        let label = n + i;
        size[label] = size[left] + size[right];
        parent[left] = label;
        parent[right] = label;
        out.push(Merge {
            left,
            right,
            distance,
            size: size[label],
        });
    }
    out
}

/// One row of the condensed tree: a cluster (`>= n`), a child (a sample `< n` or a cluster),
/// the `lambda = 1 / distance` at which the child leaves, and the child's size.
#[derive(Debug, Clone, Copy)]
struct Condensed {
    parent: usize,
    child: usize,
    lambda: f64,
    size: usize,
}

/// Nodes of the single-linkage tree below `root`, breadth first (scikit-learn's
/// `bfs_from_hierarchy`).
fn bfs(tree: &[Merge], n: usize, root: usize, out: &mut Vec<usize>) {
    out.clear();
    out.push(root);
    let mut at = 0;
    while at < out.len() {
        let node = out[at];
        at += 1;
        if node >= n {
            let m = tree[node - n];
            out.push(m.left);
            out.push(m.right);
        }
    }
}

/// scikit-learn's `_condense_tree`: walks the tree from the root, keeps a split only when both
/// sides have at least `min_cluster_size` samples, and records the samples that fall out.
fn condense_tree(tree: &[Merge], n: usize, min_cluster_size: usize) -> Vec<Condensed> {
    let root = 2 * (n - 1);
    let mut order = Vec::new();
    bfs(tree, n, root, &mut order);
    let mut relabel = vec![0usize; root + 1];
    relabel[root] = n;
    let mut next_label = n + 1;
    let mut ignore = vec![false; root + 1];
    let mut result = Vec::new();
    let mut sub = Vec::new();
    let count = |node: usize| if node >= n { tree[node - n].size } else { 1 };
    for &node in &order {
        if ignore[node] || node < n {
            continue;
        }
        let m = tree[node - n];
        let lambda = if m.distance > 0.0 {
            1.0 / m.distance
        } else {
            f64::INFINITY
        };
        let (lc, rc) = (count(m.left), count(m.right));
        let parent = relabel[node];
        let mut fall_out = |side: usize, result: &mut Vec<Condensed>, ignore: &mut [bool]| {
            bfs(tree, n, side, &mut sub);
            for &s in &sub {
                if s < n {
                    result.push(Condensed {
                        parent,
                        child: s,
                        lambda,
                        size: 1,
                    });
                }
                ignore[s] = true;
            }
        };
        match (lc >= min_cluster_size, rc >= min_cluster_size) {
            (true, true) => {
                for (side, size) in [(m.left, lc), (m.right, rc)] {
                    relabel[side] = next_label;
                    next_label += 1;
                    result.push(Condensed {
                        parent,
                        child: relabel[side],
                        lambda,
                        size,
                    });
                }
            }
            (false, false) => {
                fall_out(m.left, &mut result, &mut ignore);
                fall_out(m.right, &mut result, &mut ignore);
            }
            (false, true) => {
                relabel[m.right] = parent;
                fall_out(m.left, &mut result, &mut ignore);
            }
            (true, false) => {
                relabel[m.left] = parent;
                fall_out(m.right, &mut result, &mut ignore);
            }
        }
    }
    result
}

/// Excess-of-mass selection and labelling (scikit-learn's `_compute_stability`,
/// `_get_clusters` and `_do_labelling` with `cluster_selection_epsilon = 0`).
fn select_and_label(condensed: &[Condensed], n: usize, allow_single_cluster: bool) -> Vec<i64> {
    let root = n; // the smallest cluster id
    let max_parent = condensed.iter().map(|c| c.parent).max().unwrap_or(root);
    let largest_child = condensed
        .iter()
        .map(|c| c.child)
        .max()
        .unwrap_or(root)
        .max(root);
    let mut births = vec![f64::NAN; largest_child + 1];
    for c in condensed {
        births[c.child] = c.lambda;
    }
    births[root] = 0.0;
    let n_clusters = max_parent - root + 1;
    let mut stability = vec![0.0f64; n_clusters];
    for c in condensed {
        stability[c.parent - root] += (c.lambda - births[c.parent]) * c.size as f64;
    }

    // The cluster tree: rows whose child is a cluster; children listed per parent in order.
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n_clusters];
    for c in condensed.iter().filter(|c| c.size > 1) {
        children[c.parent - root].push(c.child);
    }
    let mut is_cluster = vec![true; n_clusters];
    if !allow_single_cluster {
        is_cluster[0] = false;
    }
    let last = if allow_single_cluster { 0 } else { 1 };
    // Descending ids: every child is decided before its parent.
    for node in (root + last..=max_parent).rev() {
        let idx = node - root;
        let subtree: f64 = children[idx]
            .iter()
            .map(|&c| stability[c - root])
            .fold(None, |acc: Option<f64>, v| Some(acc.map_or(v, |a| a + v)))
            .unwrap_or(0.0);
        if subtree > stability[idx] {
            is_cluster[idx] = false;
            stability[idx] = subtree;
        } else {
            // Unselect every descendant.
            let mut stack: Vec<usize> = children[idx].clone();
            while let Some(c) = stack.pop() {
                is_cluster[c - root] = false;
                stack.extend_from_slice(&children[c - root]);
            }
        }
    }
    let selected: Vec<usize> = (0..n_clusters)
        .filter(|&i| is_cluster[i])
        .map(|i| i + root)
        .collect();
    let label_of = |cluster: usize| selected.binary_search(&cluster).ok().map(|l| l as i64);

    // Union every row whose child is not a selected cluster; a sample's set is then the
    // selected cluster above it, or the root (noise).
    let mut uf = TreeUnionFind::new(max_parent + 1);
    for c in condensed {
        if label_of(c.child).is_none() {
            uf.union(c.parent, c.child);
        }
    }
    let root_threshold = if selected.len() == 1 && allow_single_cluster {
        condensed
            .iter()
            .filter(|c| c.parent == root)
            .map(|c| c.lambda)
            .fold(f64::NEG_INFINITY, f64::max)
    } else {
        f64::INFINITY
    };
    let mut point_lambda = vec![0.0f64; n];
    for c in condensed.iter().filter(|c| c.child < n) {
        point_lambda[c.child] = c.lambda;
    }
    (0..n)
        .map(|i| {
            let cluster = uf.find(i);
            // Under the root means noise, unless the root itself is the one cluster and the
            // sample stays in it to the end (scikit-learn's single-cluster rule).
            let in_root =
                selected.len() == 1 && allow_single_cluster && point_lambda[i] >= root_threshold;
            if cluster != root || in_root {
                label_of(cluster).unwrap_or(-1)
            } else {
                -1
            }
        })
        .collect()
}

/// scikit-learn's `TreeUnionFind`: union by rank with path compression.
struct TreeUnionFind {
    parent: Vec<usize>,
    rank: Vec<usize>,
}

impl TreeUnionFind {
    fn new(size: usize) -> Self {
        Self {
            parent: (0..size).collect(),
            rank: vec![0; size],
        }
    }

    fn find(&mut self, x: usize) -> usize {
        let mut root = x;
        while self.parent[root] != root {
            root = self.parent[root];
        }
        let mut p = x;
        while self.parent[p] != root {
            let next = self.parent[p];
            self.parent[p] = root;
            p = next;
        }
        root
    }

    fn union(&mut self, x: usize, y: usize) {
        let (xr, yr) = (self.find(x), self.find(y));
        match self.rank[xr].cmp(&self.rank[yr]) {
            std::cmp::Ordering::Less => self.parent[xr] = yr,
            std::cmp::Ordering::Greater => self.parent[yr] = xr,
            std::cmp::Ordering::Equal => {
                self.parent[yr] = xr;
                self.rank[xr] += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    // Expected labels below are scikit-learn 1.9's `HDBSCAN(...).fit(x).labels_`.

    #[test]
    fn two_groups_and_an_outlier() {
        let x = array![
            [0.0, 0.0],
            [0.1, 0.0],
            [0.0, 0.1],
            [0.1, 0.1],
            [5.0, 5.0],
            [5.1, 5.0],
            [5.0, 5.1],
            [5.1, 5.1],
            [50.0, -50.0]
        ];
        let h = Hdbscan {
            min_cluster_size: 3,
            min_samples: Some(2),
            ..Default::default()
        };
        let r = h.fit(x.view()).unwrap();
        assert_eq!(r.labels.to_vec(), vec![0, 0, 0, 0, 1, 1, 1, 1, -1]);
        assert_eq!((r.n_clusters, r.n_noise()), (2, 1));
    }

    #[test]
    fn duplicate_points_split_at_infinite_lambda() {
        // Two stacks of identical points: distances 0 inside, lambda = inf.
        let mut x = Array2::<f64>::ones((12, 2));
        x.slice_mut(ndarray::s![6.., ..]).fill(3.0);
        let r = Hdbscan {
            min_cluster_size: 3,
            ..Default::default()
        }
        .fit(x.view())
        .unwrap();
        assert_eq!(r.labels.to_vec(), vec![0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn identical_points_are_noise_unless_single_cluster_allowed() {
        let x = Array2::<f32>::ones((10, 3));
        let r = Hdbscan::default().fit(x.view()).unwrap();
        assert_eq!((r.n_clusters, r.n_noise()), (0, 10));
        let r = Hdbscan {
            allow_single_cluster: true,
            ..Default::default()
        }
        .fit(x.view())
        .unwrap();
        assert_eq!(r.labels.to_vec(), vec![0; 10]);
    }

    #[test]
    fn one_sample_is_noise_and_bad_parameters_are_errors() {
        let one = array![[1.0, 2.0]];
        assert_eq!(
            Hdbscan::default().fit(one.view()).unwrap().labels.to_vec(),
            vec![-1]
        );
        let x = Array2::<f64>::zeros((4, 2));
        for h in [
            Hdbscan {
                min_cluster_size: 1,
                ..Default::default()
            },
            Hdbscan {
                min_samples: Some(0),
                ..Default::default()
            },
            Hdbscan {
                alpha: f64::NAN,
                ..Default::default()
            },
        ] {
            assert!(matches!(
                h.fit(x.view()),
                Err(ClusterError::InvalidParameter { .. })
            ));
        }
    }

    #[test]
    fn more_samples_than_the_limit_are_refused_with_the_alternatives() {
        let x = Array2::from_shape_fn((30, 2), |(i, j)| (i * 3 + j) as f64);
        let small = Hdbscan {
            max_samples: 29,
            ..Hdbscan::default()
        };
        let err = small.fit(x.view()).unwrap_err();
        assert!(matches!(
            err,
            ClusterError::TooManySamples {
                limit: 29,
                n_samples: 30,
                ..
            }
        ));
        assert!(err.to_string().contains("minibatch"), "{err}");
        assert!(Hdbscan {
            max_samples: 30,
            ..Hdbscan::default()
        }
        .fit(x.view())
        .is_ok());
    }
}
