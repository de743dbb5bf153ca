//! Seeded synthetic data for tests and benchmarks.

use ndarray::Array2;

use crate::ivf::SplitMix;

/// Isotropic Gaussian blobs like scikit-learn's `make_blobs`: `centers` centres drawn uniformly from
/// `[-10, 10]^d`, each row a centre (chosen at random) plus `N(0, std^2)` noise per feature. Returns
/// the rows and each row's blob. The same seed gives the same data on every machine.
pub fn make_blobs(
    n: usize,
    d: usize,
    centers: usize,
    std: f32,
    seed: u64,
) -> (Array2<f32>, Vec<usize>) {
    let mut rng = SplitMix(seed);
    let centers = centers.max(1);
    let c: Vec<f32> = (0..centers * d)
        .map(|_| (rng.uniform() * 20.0 - 10.0) as f32)
        .collect();
    let labels: Vec<usize> = (0..n).map(|_| rng.below(centers)).collect();
    let mut x = Array2::zeros((n, d));
    for (i, mut row) in x.outer_iter_mut().enumerate() {
        let centre = &c[labels[i] * d..(labels[i] + 1) * d];
        for (v, &m) in row.iter_mut().zip(centre) {
            *v = m + std * rng.normal() as f32;
        }
    }
    (x, labels)
}
