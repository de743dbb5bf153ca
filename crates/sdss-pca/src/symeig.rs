//! Eigendecomposition of a small dense symmetric matrix (the covariance of few features) when
//! only the leading eigenpairs are wanted.
//!
//! LAPACK's route for a subset of eigenpairs (`dsytrd` + `dstebz` + `dstein` + `dormtr`):
//! Householder reduction to tridiagonal form, the wanted eigenvalues of the tridiagonal matrix
//! by bisection on Sturm counts (several eigenvalues advanced together so that their
//! divisions overlap), eigenvectors by inverse iteration at those eigenvalues
//! (re-orthogonalised within clusters of close eigenvalues), then back-transformed by the
//! Householder reflectors. For 128 features and 20 components this is about a third of the
//! time of faer's full eigendecomposition (1.4 ms), whose eigenvector accumulation dominates.
//! Accuracy is that of any backward-stable method: eigenvalues within a few ulps of the
//! matrix norm, eigenvectors within `eps ||A|| / gap`.

use std::ops::Range;

use rayon::prelude::*;

/// A symmetric matrix reduced to tridiagonal form `T = Qᵀ A Q`.
pub(crate) struct SymmetricEigen {
    n: usize,
    /// Householder vectors: reflector `j` (acting on rows `j + 1..n`) is column `j` of this
    /// column-major n x n buffer, rows `j + 1..n`, its leading entry stored as 1.
    reflectors: Vec<f64>,
    tau: Vec<f64>,
    /// Diagonal and sub-diagonal (`off[i] = T[i + 1, i]`, last entry 0) of `T`.
    diag: Vec<f64>,
    off: Vec<f64>,
    /// Max absolute row sum of `T` (its 1-norm), the scale of the tolerances.
    norm: f64,
}

impl SymmetricEigen {
    /// Reduces the symmetric matrix `a` (n x n, column-major; only its lower triangle is read)
    /// to tridiagonal form.
    pub(crate) fn new(n: usize, mut a: Vec<f64>) -> Self {
        assert_eq!(a.len(), n * n, "SymmetricEigen::new: buffer is not n x n");
        let (diag, off, tau) = tridiagonalize(n, &mut a);
        let norm = (0..n)
            .map(|i| diag[i].abs() + off[i].abs() + if i > 0 { off[i - 1].abs() } else { 0.0 })
            .fold(0.0f64, f64::max);
        SymmetricEigen {
            n,
            reflectors: a,
            tau,
            diag,
            off,
            norm,
        }
    }

    /// The trace (sum of all eigenvalues).
    pub(crate) fn trace(&self) -> f64 {
        self.diag.iter().sum()
    }

    /// The `k` largest eigenvalues, descending. Groups of [`LANES`] ranks are bisected in
    /// parallel.
    pub(crate) fn leading_values(&self, k: usize) -> Vec<f64> {
        let k = k.min(self.n);
        let chunks: Vec<usize> = (0..k).step_by(LANES).collect();
        let mut values: Vec<f64> = chunks
            .into_par_iter()
            .flat_map_iter(|first| {
                leading_eigenvalues(
                    &self.diag,
                    &self.off,
                    self.norm,
                    first..k.min(first + LANES),
                )
            })
            .collect();
        // Bisection brackets each rank separately; equal eigenvalues may come out in either
        // order by an ulp.
        values.sort_by(|x, y| y.total_cmp(x));
        values
    }

    /// Unit eigenvectors for `values` (from [`Self::leading_values`], descending), as the
    /// columns of an n x k column-major buffer; their signs are arbitrary.
    ///
    /// As LAPACK's `dstein`: eigenvalues closer than `1e-3 ||T||` form a cluster whose vectors
    /// are orthogonalised against each other, and equal eigenvalues are pulled apart by a few
    /// ulps so that inverse iteration finds different vectors. Clusters are independent, so
    /// they run in parallel, each back-transforming its own vectors.
    pub(crate) fn leading_vectors(&self, values: &[f64]) -> Vec<f64> {
        let n = self.n;
        let k = values.len().min(n);
        let eps = f64::EPSILON;
        let ortol = 1e-3 * self.norm;
        let mut shifts = Vec::with_capacity(k);
        let mut clusters: Vec<(usize, usize)> = Vec::new();
        for j in 0..k {
            let mut shift = values[j];
            if j == 0 || values[j - 1] - values[j] > ortol {
                clusters.push((j, j + 1));
            } else if let Some(last) = clusters.last_mut() {
                last.1 = j + 1;
            }
            if j > 0 {
                let prev: f64 = shifts[j - 1];
                let pertol = 10.0 * (eps * shift).abs();
                if prev - shift < pertol {
                    shift = prev - pertol;
                }
            }
            shifts.push(shift);
        }
        let blocks: Vec<Vec<f64>> = clusters
            .into_par_iter()
            .map(|(lo, hi)| {
                let mut z = self.cluster_vectors(&shifts[lo..hi], lo);
                self.back_transform(&mut z, hi - lo);
                z
            })
            .collect();
        blocks.concat()
    }

    /// Inverse iteration for one cluster of (perturbed) eigenvalues `shifts`, the first of
    /// rank `first`: tridiagonal eigenvectors as the columns of an n x len buffer.
    fn cluster_vectors(&self, shifts: &[f64], first: usize) -> Vec<f64> {
        let n = self.n;
        let m = shifts.len();
        let mut z = vec![0.0f64; n * m];
        let lu = &mut TridiagonalLu::new(n);
        // A zero matrix (constant data) has norm 0: any tolerance > 0 serves.
        let tiny = if self.norm > 0.0 {
            f64::EPSILON * self.norm
        } else {
            f64::EPSILON
        };
        let mut b = vec![0.0f64; n];
        for (j, &shift) in shifts.iter().enumerate() {
            lu.factor(&self.diag, &self.off, shift, tiny);
            // A pseudo-random start vector fixed by the rank (deterministic results, however
            // the clusters are scheduled): xorshift64*, uniform in [-1, 1).
            let mut seed = 0x2545_F491_4F6C_DD1Du64
                ^ ((first + j) as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for v in b.iter_mut() {
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                let r = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
                *v = r as f64 / (1u64 << 52) as f64 - 1.0;
            }
            // One solve from a random start already gives the vector to working accuracy when
            // the eigenvalue is accurate (bisection: to a few ulps of ||T||); a second makes
            // sure, each followed by re-orthogonalisation within the cluster.
            for _ in 0..2 {
                let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                if scale > 0.0 {
                    b.iter_mut().for_each(|v| *v /= scale);
                }
                lu.solve(&mut b);
                for c in 0..j {
                    let zc = &z[c * n..(c + 1) * n];
                    let d = dot(zc, &b);
                    axpy(-d, zc, &mut b);
                }
            }
            let norm = b.iter().map(|v| v * v).sum::<f64>().sqrt();
            let col = &mut z[j * n..(j + 1) * n];
            if norm > 0.0 && norm.is_finite() {
                col.iter_mut().zip(&b).for_each(|(c, v)| *c = v / norm);
            } else {
                // Cannot happen for a finite matrix (the perturbed pivots keep the solve
                // finite and nonzero); fall back to a unit vector rather than NaN.
                col[(first + j).min(n - 1)] = 1.0;
            }
        }
        z
    }

    /// `z <- Q z` for the n x k column-major `z`: the reflectors applied last to first.
    fn back_transform(&self, z: &mut [f64], k: usize) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.back_transform_avx2(z, k) };
        }
        self.back_transform_impl(z, k)
    }

    /// [`Self::back_transform`] compiled for AVX2 (same results, see [`tridiagonalize_avx2`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn back_transform_avx2(&self, z: &mut [f64], k: usize) {
        self.back_transform_impl(z, k)
    }

    #[inline(always)]
    fn back_transform_impl(&self, z: &mut [f64], k: usize) {
        let n = self.n;
        for r in (0..n.saturating_sub(1)).rev() {
            let tau = self.tau[r];
            if tau == 0.0 {
                continue;
            }
            let v = &self.reflectors[r * n + r + 1..(r + 1) * n];
            for c in 0..k {
                let col = &mut z[c * n + r + 1..(c + 1) * n];
                // v[0] is the implicit 1.
                let d = col[0] + dot(&v[1..], &col[1..]);
                let s = tau * d;
                col[0] -= s;
                axpy(-s, &v[1..], &mut col[1..]);
            }
        }
    }
}

/// Householder reduction of the symmetric `a` (n x n, column-major, lower triangle read) to
/// tridiagonal form, as LAPACK's `dsytd2` with `uplo = 'L'`: returns the diagonal, the
/// sub-diagonal (last entry 0) and the reflectors' `tau`; the reflectors' vectors overwrite
/// the columns of `a` below the sub-diagonal.
fn tridiagonalize(n: usize, a: &mut [f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { tridiagonalize_avx2(n, a) };
    }
    tridiagonalize_impl(n, a)
}

/// [`tridiagonalize`] compiled for AVX2 (4 doubles per instruction instead of SSE2's 2).
/// Without FMA contraction (Rust never fuses `a * b + c` by itself) the results are the same
/// bit for bit as the SSE2 build: only the width of the lanes changes, not the arithmetic.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn tridiagonalize_avx2(n: usize, a: &mut [f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    tridiagonalize_impl(n, a)
}

#[inline(always)]
fn tridiagonalize_impl(n: usize, a: &mut [f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut diag = vec![0.0f64; n];
    let mut off = vec![0.0f64; n];
    let mut tau = vec![0.0f64; n];
    let mut p = vec![0.0f64; n];
    for k in 0..n {
        diag[k] = a[k * n + k];
        if k + 2 > n {
            break;
        }
        let m = n - k - 1;
        // x = A[k + 1.., k]; the reflector H = I - tau v vᵀ maps it to (beta, 0, ..., 0).
        let (head, tail) = a.split_at_mut((k + 1) * n);
        let x = &mut head[k * n + k + 1..(k + 1) * n];
        let alpha = x[0];
        let xnorm = norm2(&x[1..]);
        if xnorm == 0.0 {
            // Already reduced in this column: H = I.
            off[k] = alpha;
            tau[k] = 0.0;
            continue;
        }
        let beta = -alpha.hypot(xnorm).copysign(alpha);
        let t = (beta - alpha) / beta;
        let inv = 1.0 / (alpha - beta);
        x[1..].iter_mut().for_each(|v| *v *= inv);
        x[0] = 1.0;
        off[k] = beta;
        tau[k] = t;
        let v: &[f64] = x;
        // A22 (rows and columns k + 1..) lives in `tail`: column j of A22 is
        // tail[j * n + k + 1..(j + 1) * n], of which only rows >= j are the lower triangle.
        // p = tau A22 v, reading the lower triangle only.
        let p = &mut p[..m];
        p.iter_mut().for_each(|v| *v = 0.0);
        for j in 0..m {
            let col = &tail[j * n + k + 1 + j..(j + 1) * n];
            let vj = v[j];
            // Diagonal entry, then the strictly lower part used as column (axpy) and as row
            // (dot) of the symmetric matrix.
            let d = axpy_dot(vj, &col[1..], &v[j + 1..], &mut p[j + 1..]);
            p[j] += col[0] * vj + d;
        }
        p.iter_mut().for_each(|v| *v *= t);
        // w = p - (tau / 2)(pᵀ v) v, then A22 -= v wᵀ + w vᵀ (lower triangle).
        let half = -0.5 * t * dot(p, v);
        axpy(half, v, p);
        let w: &[f64] = p;
        for j in 0..m {
            let col = &mut tail[j * n + k + 1 + j..(j + 1) * n];
            sym_rank2_update(col, &v[j..], &w[j..], w[j], v[j]);
        }
        // Keep v in column k (below the diagonal); the sub-diagonal itself is in `off`.
    }
    (diag, off, tau)
}

/// The eigenvalues of descending ranks `ranks` (0 = the largest) of the symmetric tridiagonal
/// matrix with diagonal `d` and sub-diagonal `e` (`e[i] = T[i + 1, i]`) of 1-norm `norm`, by
/// bisection on Sturm counts as LAPACK's `dstebz`.
fn leading_eigenvalues(d: &[f64], e: &[f64], norm: f64, ranks: Range<usize>) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { leading_eigenvalues_avx2(d, e, norm, ranks) };
    }
    leading_eigenvalues_impl(d, e, norm, ranks)
}

/// [`leading_eigenvalues`] compiled for AVX2 (the same results: IEEE division, subtraction and
/// comparison are exact operations whatever the lane width).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn leading_eigenvalues_avx2(
    d: &[f64],
    e: &[f64],
    norm: f64,
    ranks: Range<usize>,
) -> Vec<f64> {
    leading_eigenvalues_impl(d, e, norm, ranks)
}

/// How many eigenvalues are bisected together: independent Sturm recurrences whose divisions
/// the CPU overlaps (one recurrence alone waits on each division's latency).
const LANES: usize = 10;

#[inline(always)]
fn leading_eigenvalues_impl(d: &[f64], e: &[f64], norm: f64, ranks: Range<usize>) -> Vec<f64> {
    let n = d.len();
    let e2: Vec<f64> = e[..n.saturating_sub(1)].iter().map(|v| v * v).collect();
    // Smallest pivot allowed in the Sturm recurrence (dstebz's PIVMIN).
    let pivmin = f64::MIN_POSITIVE * e2.iter().fold(1.0f64, |m, &v| m.max(v));
    // Gershgorin interval, widened as dstebz does so that it strictly contains the spectrum.
    let (mut lo0, mut hi0) = (f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..n {
        let r = e[i].abs() + if i > 0 { e[i - 1].abs() } else { 0.0 };
        lo0 = lo0.min(d[i] - r);
        hi0 = hi0.max(d[i] + r);
    }
    let tnorm = lo0.abs().max(hi0.abs()).max(norm);
    let pad = 2.0 * tnorm * f64::EPSILON * n as f64 + 2.0 * pivmin;
    lo0 -= pad;
    hi0 += pad;
    // Enough halvings to shrink the interval to eps * tnorm (about 55).
    let width = (hi0 - lo0).max(f64::MIN_POSITIVE);
    let floor = (f64::EPSILON * tnorm).max(pivmin);
    let steps = ((width / floor).log2().ceil() as usize + 2).clamp(2, 2100);
    let mut values = Vec::with_capacity(ranks.len());
    let k = ranks.end.min(n);
    for first in (ranks.start..k).step_by(LANES) {
        // Lane l looks for the eigenvalue of descending rank first + l, which has
        // n - 1 - rank eigenvalues below it.
        let mut below = [0usize; LANES];
        for (l, b) in below.iter_mut().enumerate() {
            *b = n - 1 - (first + l).min(k - 1);
        }
        let mut lo = [lo0; LANES];
        let mut hi = [hi0; LANES];
        for _ in 0..steps {
            let mut x = [0.0f64; LANES];
            let mut q = [0.0f64; LANES];
            let mut count = [0usize; LANES];
            for l in 0..LANES {
                x[l] = 0.5 * (lo[l] + hi[l]);
                q[l] = d[0] - x[l];
            }
            for i in 0..n {
                if i > 0 {
                    for l in 0..LANES {
                        q[l] = (d[i] - x[l]) - e2[i - 1] / q[l];
                    }
                }
                for l in 0..LANES {
                    if q[l].abs() < pivmin {
                        q[l] = -pivmin;
                    }
                    count[l] += (q[l] < 0.0) as usize;
                }
            }
            // count = number of eigenvalues below x.
            for l in 0..LANES {
                if count[l] > below[l] {
                    hi[l] = x[l];
                } else {
                    lo[l] = x[l];
                }
            }
        }
        for l in 0..LANES.min(k - first) {
            values.push(0.5 * (lo[l] + hi[l]));
        }
    }
    values
}

/// LU factorisation with partial pivoting of `T - shift I` for a symmetric tridiagonal `T`
/// (LAPACK's `dgttrf`), reused across the inverse iterations of one eigenvalue.
struct TridiagonalLu {
    /// U's diagonal, first and second super-diagonals.
    u0: Vec<f64>,
    u1: Vec<f64>,
    u2: Vec<f64>,
    /// Reciprocals of `u0` (the back substitution multiplies instead of dividing: one division
    /// per row would be a chain of long latencies).
    inv0: Vec<f64>,
    /// Multipliers and whether rows i and i + 1 were swapped.
    l: Vec<f64>,
    swapped: Vec<bool>,
}

impl TridiagonalLu {
    fn new(n: usize) -> Self {
        TridiagonalLu {
            u0: vec![0.0; n],
            u1: vec![0.0; n],
            u2: vec![0.0; n],
            inv0: vec![0.0; n],
            l: vec![0.0; n],
            swapped: vec![false; n],
        }
    }

    /// Factors `T - shift I`; pivots smaller than `tiny` are replaced by `±tiny`, as inverse
    /// iteration wants (a singular factor at an exact eigenvalue would give inf / NaN).
    fn factor(&mut self, d: &[f64], e: &[f64], shift: f64, tiny: f64) {
        let n = d.len();
        for i in 0..n {
            self.u0[i] = d[i] - shift;
            self.u1[i] = if i + 1 < n { e[i] } else { 0.0 };
            self.u2[i] = 0.0;
            self.l[i] = 0.0;
            self.swapped[i] = false;
        }
        for (i, &sub) in e.iter().enumerate().take(n.saturating_sub(1)) {
            if self.u0[i].abs() >= sub.abs() {
                if self.u0[i] != 0.0 {
                    let fact = sub / self.u0[i];
                    self.l[i] = fact;
                    self.u0[i + 1] -= fact * self.u1[i];
                }
            } else {
                let fact = self.u0[i] / sub;
                self.u0[i] = sub;
                self.l[i] = fact;
                let temp = self.u1[i];
                self.u1[i] = self.u0[i + 1];
                self.u0[i + 1] = temp - fact * self.u0[i + 1];
                if i + 2 < n {
                    self.u2[i] = self.u1[i + 1];
                    self.u1[i + 1] *= -fact;
                }
                self.swapped[i] = true;
            }
        }
        for (u, inv) in self.u0.iter_mut().zip(self.inv0.iter_mut()) {
            if u.abs() < tiny {
                *u = if *u < 0.0 { -tiny } else { tiny };
            }
            *inv = 1.0 / *u;
        }
    }

    /// Solves `(T - shift I) x = b` in place.
    fn solve(&self, b: &mut [f64]) {
        let n = b.len();
        for i in 0..n.saturating_sub(1) {
            if self.swapped[i] {
                let temp = b[i];
                b[i] = b[i + 1];
                b[i + 1] = temp - self.l[i] * b[i];
            } else {
                b[i + 1] -= self.l[i] * b[i];
            }
        }
        for i in (0..n).rev() {
            let mut v = b[i];
            if i + 1 < n {
                v -= self.u1[i] * b[i + 1];
            }
            if i + 2 < n {
                v -= self.u2[i] * b[i + 2];
            }
            b[i] = v * self.inv0[i];
        }
    }
}

/// Euclidean norm, scaled so that it neither overflows nor underflows.
#[inline(always)]
fn norm2(x: &[f64]) -> f64 {
    let scale = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 || !scale.is_finite() {
        return scale;
    }
    let inv = 1.0 / scale;
    scale * x.iter().map(|v| (v * inv) * (v * inv)).sum::<f64>().sqrt()
}

/// Dot product with four independent accumulators (so that it vectorises).
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let x: [f64; 4] = [x[0], x[1], x[2], x[3]];
        let y: [f64; 4] = [y[0], y[1], y[2], y[3]];
        for t in 0..4 {
            acc[t] += x[t] * y[t];
        }
    }
    let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

/// `y += alpha x`.
#[inline(always)]
fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// `y += alpha a` and returns `a · v` in one pass over `a`.
#[inline(always)]
fn axpy_dot(alpha: f64, a: &[f64], v: &[f64], y: &mut [f64]) -> f64 {
    let n = a.len().min(v.len()).min(y.len());
    let (a, v, y) = (&a[..n], &v[..n], &mut y[..n]);
    let mut acc = [0.0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cv = v.chunks_exact(4);
    let mut cy = y.chunks_exact_mut(4);
    for ((x, w), out) in (&mut ca).zip(&mut cv).zip(&mut cy) {
        // Every load before any store: the compiler cannot tell that `out` does not alias
        // `x` or `w` once inlined, and would not vectorise otherwise.
        let x: [f64; 4] = [x[0], x[1], x[2], x[3]];
        let w: [f64; 4] = [w[0], w[1], w[2], w[3]];
        let mut o: [f64; 4] = [out[0], out[1], out[2], out[3]];
        for t in 0..4 {
            o[t] += alpha * x[t];
            acc[t] += x[t] * w[t];
        }
        out.copy_from_slice(&o);
    }
    let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for ((x, w), out) in ca
        .remainder()
        .iter()
        .zip(cv.remainder())
        .zip(cy.into_remainder())
    {
        *out += alpha * x;
        s += x * w;
    }
    s
}

/// `col -= v wj + w vj` (one column of a symmetric rank-2 update).
#[inline(always)]
fn sym_rank2_update(col: &mut [f64], v: &[f64], w: &[f64], wj: f64, vj: f64) {
    for ((c, &vi), &wi) in col.iter_mut().zip(v).zip(w) {
        *c -= vi * wj + wi * vj;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::{Mat, Side};

    fn check(n: usize, a: &Mat<f64>, k: usize) {
        let buf: Vec<f64> = (0..n * n).map(|t| a[(t % n, t / n)]).collect();
        let eig = SymmetricEigen::new(n, buf);
        let values = eig.leading_values(k);
        let reference = a.as_ref().self_adjoint_eigen(Side::Lower).unwrap();
        let ref_vals: Vec<f64> = (0..n)
            .rev()
            .map(|i| reference.S().column_vector()[i])
            .collect();
        let scale = ref_vals.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
        let trace: f64 = ref_vals.iter().sum();
        assert!((eig.trace() - trace).abs() <= 1e-12 * scale * n as f64);
        assert_eq!(values.len(), k);
        for (ours, theirs) in values.iter().zip(&ref_vals) {
            assert!((ours - theirs).abs() <= 1e-12 * scale, "{ours} vs {theirs}");
        }
        let z = eig.leading_vectors(&values);
        for j in 0..k {
            let zj = &z[j * n..(j + 1) * n];
            // Residual ||A z - lambda z|| small relative to ||A||, unit norm, orthogonal.
            let mut res = 0.0f64;
            for i in 0..n {
                let az: f64 = (0..n).map(|c| a[(i, c)] * zj[c]).sum();
                res = res.max((az - values[j] * zj[i]).abs());
            }
            assert!(res <= 1e-11 * scale, "residual {res} for vector {j}");
            for c in 0..=j {
                let d: f64 = z[c * n..(c + 1) * n]
                    .iter()
                    .zip(zj)
                    .map(|(x, y)| x * y)
                    .sum();
                let want = if c == j { 1.0 } else { 0.0 };
                assert!((d - want).abs() < 1e-10, "z{c} . z{j} = {d}");
            }
        }
    }

    #[test]
    fn matches_a_full_eigendecomposition() {
        // A random covariance-like matrix (B Bᵀ with a decaying spectrum).
        let n = 37;
        let b = Mat::<f64>::from_fn(n, n, |i, j| {
            (((i * 31 + j * 17) % 23) as f64 - 11.0) / (1.0 + j as f64)
        });
        let a = &b * b.transpose();
        check(n, &a, 10);
        check(n, &a, n);
    }

    #[test]
    fn handles_repeated_and_zero_eigenvalues() {
        // Rank 3 in 12 dimensions with a double eigenvalue: vectors of the repeated and zero
        // eigenvalues must still come out orthonormal.
        let n = 12;
        let u = Mat::<f64>::from_fn(n, 3, |i, j| ((i + 1) as f64 * (j + 1) as f64).sin());
        let q = u.as_ref().qr().compute_thin_Q();
        let s = [5.0, 5.0, 2.0];
        let a = Mat::<f64>::from_fn(n, n, |i, j| {
            (0..3).map(|c| q[(i, c)] * s[c] * q[(j, c)]).sum()
        });
        check(n, &a, 6);
        // Diagonal (already tridiagonal, every reflector the identity) and 1 x 1.
        let d = Mat::<f64>::from_fn(5, 5, |i, j| {
            if i == j {
                [3.0, 1.0, 3.0, 0.0, 2.0][i]
            } else {
                0.0
            }
        });
        check(5, &d, 5);
        check(1, &Mat::<f64>::from_fn(1, 1, |_, _| 4.0), 1);
    }
}
