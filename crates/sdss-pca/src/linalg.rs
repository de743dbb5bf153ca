//! Glue between ndarray (the crate's boundary type) and faer (the linear algebra), plus the
//! numerical building blocks shared by the solvers.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::{PcaError, PcaFloat};

/// Parallelism for the large products: all rayon threads.
pub(crate) fn par() -> Par {
    Par::rayon(0)
}

/// Views an ndarray matrix as a faer matrix without copying, whatever its strides.
pub(crate) fn as_faer<F: PcaFloat>(a: ArrayView2<'_, F>) -> MatRef<'_, F> {
    let (nrows, ncols) = a.dim();
    let strides = a.strides();
    // SAFETY: the view guarantees that every element (i, j) with i < nrows, j < ncols lives at
    // ptr + i * strides[0] + j * strides[1] for the lifetime of the borrow, which is exactly what
    // faer's raw-parts constructor requires; the returned MatRef borrows `a`'s lifetime.
    unsafe { MatRef::from_raw_parts(a.as_ptr(), nrows, ncols, strides[0], strides[1]) }
}

/// Views a mutable ndarray matrix as a faer matrix without copying.
pub(crate) fn as_faer_mut<F: PcaFloat>(mut a: ArrayViewMut2<'_, F>) -> MatMut<'_, F> {
    let (nrows, ncols) = a.dim();
    let (rs, cs) = (a.strides()[0], a.strides()[1]);
    let ptr = a.as_mut_ptr();
    // SAFETY: as in `as_faer`; the mutable view is unique for its lifetime, and ndarray views
    // never alias two indices onto one element when they are mutable.
    unsafe { MatMut::from_raw_parts_mut(ptr, nrows, ncols, rs, cs) }
}

/// Copies a faer matrix into a standard-layout ndarray matrix, converting the element type.
pub(crate) fn to_array<T: PcaFloat, F: PcaFloat>(m: MatRef<'_, T>) -> Array2<F> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| {
        F::of_f64(m[(i, j)].as_f64())
    })
}

/// Converts a faer matrix's element type.
pub(crate) fn convert<T: PcaFloat, F: PcaFloat>(m: MatRef<'_, T>) -> Mat<F> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| F::of_f64(m[(i, j)].as_f64()))
}

/// `dst = lhs * rhs`, in parallel.
pub(crate) fn mul_into<F: PcaFloat>(dst: MatMut<'_, F>, lhs: MatRef<'_, F>, rhs: MatRef<'_, F>) {
    matmul(dst, Accum::Replace, lhs, rhs, F::of_f64(1.0), par());
}

/// `lhs * rhs` into a new matrix, in parallel.
pub(crate) fn mul<F: PcaFloat>(lhs: MatRef<'_, F>, rhs: MatRef<'_, F>) -> Mat<F> {
    let mut out = Mat::<F>::zeros(lhs.nrows(), rhs.ncols());
    mul_into(out.as_mut(), lhs, rhs);
    out
}

/// Column means and per-column sums of squared deviations of `x`, accumulated in `f64`.
pub(crate) struct ColumnStats {
    /// Column means.
    pub mean: Vec<f64>,
    /// Sum over all columns of the unbiased (ddof = 1) variances: the total variance.
    pub total_var: f64,
}

/// One pass over `x` (rows in parallel) computing column means and the total variance.
///
/// Uses the shifted-data algorithm (shift = first row) so that a large common offset does not
/// cancel catastrophically; fails with a typed error naming the first non-finite value.
pub(crate) fn column_stats<F: PcaFloat>(x: ArrayView2<'_, F>) -> Result<ColumnStats, PcaError> {
    let mut running = RunningStats::new(x.row(0).iter().map(|v| v.as_f64()).collect());
    running.add(x);
    running
        .finish()
        .ok_or_else(|| find_non_finite(x).unwrap_or(PcaError::Overflow))
}

/// Shifted sums of a matrix seen a block of rows at a time: [`column_stats`] over blocks.
pub(crate) struct RunningStats {
    shift: Vec<f64>,
    s1: Vec<f64>,
    s2: Vec<f64>,
    n: usize,
}

impl RunningStats {
    /// Sums around `shift` (the first row: see [`column_stats`]).
    pub(crate) fn new(shift: Vec<f64>) -> Self {
        let p = shift.len();
        Self {
            shift,
            s1: vec![0.0; p],
            s2: vec![0.0; p],
            n: 0,
        }
    }

    /// Adds the rows of `x` (as many columns as the shift).
    pub(crate) fn add<F: PcaFloat>(&mut self, x: ArrayView2<'_, F>) {
        let (n, p) = x.dim();
        if n == 0 {
            return;
        }
        let shift = &self.shift;
        // Chunks of rows, each with its own f64 accumulators; a few chunks per thread balance load.
        let n_chunks = (rayon::current_num_threads() * 4).clamp(1, n);
        let chunk = n.div_ceil(n_chunks);
        let partials: Vec<(Vec<f64>, Vec<f64>)> = (0..n_chunks)
            .into_par_iter()
            .map(|c| {
                let mut s1 = vec![0.0f64; p];
                let mut s2 = vec![0.0f64; p];
                let start = c * chunk;
                let end = ((c + 1) * chunk).min(n);
                for i in start..end {
                    let row = x.row(i);
                    match row.as_slice() {
                        Some(r) => accumulate(r.iter().copied(), shift, &mut s1, &mut s2),
                        None => accumulate(row.iter().copied(), shift, &mut s1, &mut s2),
                    }
                }
                (s1, s2)
            })
            .collect();
        for (a, b) in &partials {
            for j in 0..p {
                self.s1[j] += a[j];
                self.s2[j] += b[j];
            }
        }
        self.n += n;
    }

    /// Means and total variance of the rows added; `None` when a value was not finite.
    pub(crate) fn finish(self) -> Option<ColumnStats> {
        let nf = self.n as f64;
        let mut mean = Vec::with_capacity(self.shift.len());
        let mut total_var = 0.0f64;
        for j in 0..self.shift.len() {
            mean.push(self.shift[j] + self.s1[j] / nf);
            let var = (self.s2[j] - self.s1[j] * self.s1[j] / nf) / (nf - 1.0);
            // Clip rounding below zero, but let NaN (from an overflow) through to the check below.
            total_var += if var < 0.0 { 0.0 } else { var };
        }
        if !total_var.is_finite() || mean.iter().any(|m| !m.is_finite()) {
            return None;
        }
        Some(ColumnStats { mean, total_var })
    }
}

#[inline(always)]
fn accumulate<F: PcaFloat>(
    row: impl Iterator<Item = F>,
    shift: &[f64],
    s1: &mut [f64],
    s2: &mut [f64],
) {
    for (((v, &sh), a), b) in row.zip(shift).zip(s1.iter_mut()).zip(s2.iter_mut()) {
        let d = v.as_f64() - sh;
        *a += d;
        *b += d * d;
    }
}

/// Locates the first NaN or infinite value of `x` (row-major order), as a typed error.
pub(crate) fn find_non_finite<F: PcaFloat>(x: ArrayView2<'_, F>) -> Option<PcaError> {
    x.indexed_iter()
        .find(|(_, v)| !v.as_f64().is_finite())
        .map(|((row, col), v)| PcaError::NonFinite {
            what: "X",
            row,
            col,
            value: v.as_f64(),
        })
}

/// Checks that every value of `x` is finite (used where no statistics pass is made).
pub(crate) fn check_finite<F: PcaFloat>(x: ArrayView2<'_, F>) -> Result<(), PcaError> {
    let all_finite = x
        .axis_iter(ndarray::Axis(0))
        .into_par_iter()
        .all(|row| row.iter().all(|v| v.as_f64().is_finite()));
    if all_finite {
        Ok(())
    } else {
        // Unreachable `Ok` fallback: the parallel scan saw a non-finite value, so the serial
        // scan finds one too.
        Err(find_non_finite(x).unwrap_or(PcaError::Overflow))
    }
}

/// scikit-learn's `svd_flip(u, v, u_based_decision=False)`: makes the largest-magnitude entry of
/// each component (column `k` of `v`) positive, flipping column `k` of `u` along with it.
///
/// Ties go to the first index, as `numpy.argmax` does. A zero component keeps its sign.
pub(crate) fn svd_flip<T: PcaFloat>(mut u: Option<MatMut<'_, T>>, mut v: MatMut<'_, T>) {
    for k in 0..v.ncols() {
        let mut best = 0usize;
        let mut best_abs = -1.0f64;
        for i in 0..v.nrows() {
            let a = v[(i, k)].as_f64().abs();
            if a > best_abs {
                best_abs = a;
                best = i;
            }
        }
        if v.nrows() > 0 && v[(best, k)].as_f64() < 0.0 {
            for i in 0..v.nrows() {
                v[(i, k)] = -v[(i, k)];
            }
            if let Some(u) = u.as_mut() {
                for i in 0..u.nrows() {
                    u[(i, k)] = -u[(i, k)];
                }
            }
        }
    }
}

/// A `rows x cols` matrix of independent standard normal values from a seeded ChaCha8 stream
/// (Box-Muller), so that a given seed gives the same matrix on every platform.
pub(crate) fn gaussian_matrix<F: PcaFloat>(rows: usize, cols: usize, seed: u64) -> Mat<F> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(rows * cols + 1);
    while values.len() < rows * cols {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        values.push(r * t.cos());
        values.push(r * t.sin());
    }
    Mat::from_fn(rows, cols, |i, j| F::of_f64(values[i * cols + j]))
}

/// Orthonormal basis of the columns of `m` (thin Householder QR).
pub(crate) fn orthonormalize<F: PcaFloat>(m: MatRef<'_, F>) -> Mat<F> {
    m.qr().compute_thin_Q()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn svd_flip_makes_largest_loading_positive() {
        let mut v = Mat::<f64>::from_fn(3, 2, |i, j| [[0.1, 0.5], [-0.9, -0.5], [0.2, 0.3]][i][j]);
        let mut u = Mat::<f64>::from_fn(2, 2, |i, j| (i + 2 * j) as f64 + 1.0);
        svd_flip(Some(u.as_mut()), v.as_mut());
        // Column 0: largest |v| is -0.9, flipped; column 1: tie 0.5 / -0.5, first index wins.
        assert_eq!((v[(1, 0)], v[(0, 0)]), (0.9, -0.1));
        assert_eq!((v[(0, 1)], v[(1, 1)]), (0.5, -0.5));
        assert_eq!((u[(0, 0)], u[(1, 0)]), (-1.0, -2.0));
        assert_eq!((u[(0, 1)], u[(1, 1)]), (3.0, 4.0));
    }

    #[test]
    fn column_stats_resists_large_offsets() {
        // Variance 1 around a mean of 1e8: the naive sum-of-squares formula loses everything.
        let x = array![[1e8 + 1.0], [1e8 - 1.0], [1e8 + 1.0], [1e8 - 1.0]];
        let stats = column_stats(x.view()).unwrap();
        assert_eq!(stats.mean, vec![1e8]);
        assert!(
            (stats.total_var - 4.0 / 3.0).abs() < 1e-9,
            "{}",
            stats.total_var
        );
    }

    #[test]
    fn gaussian_matrix_is_seeded_and_standard() {
        let a = gaussian_matrix::<f64>(200, 50, 9);
        let b = gaussian_matrix::<f64>(200, 50, 9);
        let c = gaussian_matrix::<f64>(200, 50, 10);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let n = (a.nrows() * a.ncols()) as f64;
        let mean: f64 = a.col_iter().flat_map(|c| c.iter().copied()).sum::<f64>() / n;
        let var: f64 = a
            .col_iter()
            .flat_map(|c| c.iter().copied())
            .map(|v| v * v)
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }

    #[test]
    fn strided_views_are_read_in_place() {
        let x = Array2::from_shape_fn((4, 6), |(i, j)| (10 * i + j) as f64);
        let t = x.t();
        let v = as_faer(t);
        assert_eq!((v.nrows(), v.ncols()), (6, 4));
        assert_eq!(v[(5, 2)], 25.0);
        let sliced = x.slice(ndarray::s![..;2, 1..;2]);
        let w = as_faer(sliced);
        assert_eq!((w.nrows(), w.ncols()), (2, 3));
        assert_eq!(w[(1, 2)], 25.0);
    }
}
