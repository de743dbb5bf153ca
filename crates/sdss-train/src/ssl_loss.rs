//! The self-supervised objectives and their gradients: VICReg and SimSiam.

use crate::error::{Result, TrainError};
use crate::real::Real;
use crate::ssl::VicregWeights;

/// ε inside VICReg's standard deviation, `√(Var + ε)` (the paper's 1e-4).
pub const VICREG_EPS: f64 = 1e-4;

/// VICReg's terms of one batch, for the history.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VicregTerms {
    /// Mean squared distance between the views' projections.
    pub invariance: f64,
    /// Variance hinge, summed over the two views.
    pub variance: f64,
    /// Off-diagonal covariance, summed over the two views.
    pub covariance: f64,
    /// The weighted total.
    pub total: f64,
}

fn check_views(a_len: usize, b_len: usize, n: usize, d: usize) -> Result<()> {
    if n < 2 || d == 0 || a_len != n * d || b_len != n * d {
        return Err(TrainError::Invalid(format!(
            "a self-supervised batch needs two views of at least 2 images each ({a_len} and {b_len} \
             values for {n} images of {d} dimensions)"
        )));
    }
    Ok(())
}

/// The variance and covariance terms of one view `z (n × d)` and their gradient, added into `grad`
/// with weights `mu` and `nu`.
///
/// `v(Z) = (1/d) Σⱼ max(0, 1 − √(Var zⱼ + ε))` with the unbiased variance, and
/// `c(Z) = (1/d) Σ_{j≠k} C(Z)ⱼₖ²` with `C = Z̄ᵀZ̄/(n − 1)` on the centred `Z̄`. Their gradients are
/// `∂v/∂zᵢⱼ = −[σⱼ < 1] z̄ᵢⱼ / (d σⱼ (n − 1))` and `∂c/∂Z = 4 Z̄ C_off / (d (n − 1))`; the centring
/// contributes nothing since the columns of `Z̄` (and of `Z̄ C_off`) sum to zero.
fn variance_covariance<T: Real>(
    z: &[T],
    n: usize,
    d: usize,
    mu: f64,
    nu: f64,
    grad: &mut [T],
) -> (f64, f64) {
    let mut mean = vec![0.0f64; d];
    for row in z.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v.to_f64();
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let zc: Vec<f64> = z
        .chunks_exact(d)
        .flat_map(|row| row.iter().zip(&mean).map(|(v, m)| v.to_f64() - m))
        .collect();
    let denom = (n - 1) as f64;
    // Covariance (d × d) in f64: d is a few hundred, n a few hundred.
    let mut cov = vec![0.0f64; d * d];
    for row in zc.chunks_exact(d) {
        for (j, &a) in row.iter().enumerate() {
            if a == 0.0 {
                continue;
            }
            let c = &mut cov[j * d..(j + 1) * d];
            for (ck, &b) in c.iter_mut().zip(row) {
                *ck += a * b;
            }
        }
    }
    cov.iter_mut().for_each(|c| *c /= denom);
    let std: Vec<f64> = (0..d)
        .map(|j| (cov[j * d + j] + VICREG_EPS).sqrt())
        .collect();
    let var_term = std.iter().map(|s| (1.0 - s).max(0.0)).sum::<f64>() / d as f64;
    let mut cov_term = 0.0;
    for j in 0..d {
        for k in 0..d {
            if j != k {
                cov_term += cov[j * d + k] * cov[j * d + k];
            }
        }
    }
    cov_term /= d as f64;
    // Gradient: per row i, g_ij = −μ [σⱼ<1] z̄ᵢⱼ/(d σⱼ (n−1)) + ν 4/(d(n−1)) Σ_k z̄ᵢₖ C_off,kj.
    let var_scale: Vec<f64> = std
        .iter()
        .map(|&s| {
            if s < 1.0 {
                -mu / (d as f64 * s * denom)
            } else {
                0.0
            }
        })
        .collect();
    let cov_scale = nu * 4.0 / (d as f64 * denom);
    let mut acc = vec![0.0f64; d];
    for (row, g) in zc.chunks_exact(d).zip(grad.chunks_exact_mut(d)) {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for (k, &a) in row.iter().enumerate() {
            if a == 0.0 {
                continue;
            }
            for (j, (s, &c)) in acc.iter_mut().zip(&cov[k * d..(k + 1) * d]).enumerate() {
                if j != k {
                    *s += a * c;
                }
            }
        }
        for j in 0..d {
            g[j] += T::from_f64(var_scale[j] * row[j] + cov_scale * acc[j]);
        }
    }
    (var_term, cov_term)
}

/// VICReg (Bardes, Ponce & LeCun 2022) on the projections `za`, `zb (n × d)` of two views of the same
/// `n` images: `λ s(Za, Zb) + μ [v(Za) + v(Zb)] + ν [c(Za) + c(Zb)]`, with `s` the mean over images and
/// dimensions of the squared difference. Returns the terms and the gradients with respect to `za` and
/// `zb`. Accumulated in f64.
pub fn vicreg<T: Real>(
    za: &[T],
    zb: &[T],
    n: usize,
    d: usize,
    w: &VicregWeights,
) -> Result<(VicregTerms, Vec<T>, Vec<T>)> {
    check_views(za.len(), zb.len(), n, d)?;
    let mut ga = vec![T::ZERO; n * d];
    let mut gb = vec![T::ZERO; n * d];
    let scale = 2.0 * w.invariance / (n * d) as f64;
    let mut inv = 0.0;
    for (((a, b), x), y) in za.iter().zip(zb).zip(ga.iter_mut()).zip(gb.iter_mut()) {
        let diff = a.to_f64() - b.to_f64();
        inv += diff * diff;
        *x = T::from_f64(scale * diff);
        *y = T::from_f64(-scale * diff);
    }
    inv /= (n * d) as f64;
    let (va, ca) = variance_covariance(za, n, d, w.variance, w.covariance, &mut ga);
    let (vb, cb) = variance_covariance(zb, n, d, w.variance, w.covariance, &mut gb);
    let terms = VicregTerms {
        invariance: inv,
        variance: va + vb,
        covariance: ca + cb,
        total: w.invariance * inv + w.variance * (va + vb) + w.covariance * (ca + cb),
    };
    Ok((terms, ga, gb))
}

/// SimSiam's symmetric loss (Chen & He 2021) on the predictions `pa`, `pb` and projections `za`, `zb`
/// (all `n × d`) of two views: `−½ [cos(pa, sg(zb)) + cos(pb, sg(za))]`, averaged over the images, where
/// `sg` stops the gradient. Returns the loss and its gradients with respect to `pa` and `pb` (the
/// projections get none, by the stop-gradient).
pub fn simsiam<T: Real>(
    pa: &[T],
    pb: &[T],
    za: &[T],
    zb: &[T],
    n: usize,
    d: usize,
) -> Result<(f64, Vec<T>, Vec<T>)> {
    check_views(pa.len(), pb.len(), n, d)?;
    check_views(za.len(), zb.len(), n, d)?;
    // −cos(p, z) and its gradient in p: −(ẑ − cos·p̂)/‖p‖, scaled by ½ · 1/n.
    let half_mean = 0.5 / n as f64;
    let neg_cos = |p: &[T], z: &[T], g: &mut [T]| -> f64 {
        let mut total = 0.0;
        for ((p, z), g) in p
            .chunks_exact(d)
            .zip(z.chunks_exact(d))
            .zip(g.chunks_exact_mut(d))
        {
            let pn = p
                .iter()
                .map(|v| v.to_f64().powi(2))
                .sum::<f64>()
                .sqrt()
                .max(1e-12);
            let zn = z
                .iter()
                .map(|v| v.to_f64().powi(2))
                .sum::<f64>()
                .sqrt()
                .max(1e-12);
            let cos = p
                .iter()
                .zip(z)
                .map(|(a, b)| a.to_f64() * b.to_f64())
                .sum::<f64>()
                / (pn * zn);
            total -= cos;
            for ((gv, pv), zv) in g.iter_mut().zip(p).zip(z) {
                let dp = -(zv.to_f64() / zn - cos * pv.to_f64() / pn) / pn;
                *gv = T::from_f64(half_mean * dp);
            }
        }
        total * half_mean
    };
    let mut ga = vec![T::ZERO; n * d];
    let mut gb = vec![T::ZERO; n * d];
    let loss = neg_cos(pa, zb, &mut ga) + neg_cos(pb, za, &mut gb);
    Ok((loss, ga, gb))
}

/// The collapse check of SimSiam's paper: the mean over dimensions of the standard deviation of the
/// L2-normalised embeddings `x (n × d)`. A collapsed representation (every image mapped to one point)
/// gives 0; embeddings spread evenly on the unit sphere give about `1/√d`.
pub fn normalized_embedding_std(x: &[f32], d: usize) -> f64 {
    if d == 0 || x.len() < 2 * d {
        return 0.0;
    }
    let n = x.len() / d;
    let mut mean = vec![0.0f64; d];
    let mut sq = vec![0.0f64; d];
    for row in x.chunks_exact(d) {
        let norm = row
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        for ((m, s), v) in mean.iter_mut().zip(sq.iter_mut()).zip(row) {
            let u = *v as f64 / norm;
            *m += u;
            *s += u * u;
        }
    }
    let nf = n as f64;
    mean.iter()
        .zip(&sq)
        .map(|(m, s)| {
            ((s / nf - (m / nf).powi(2)) * nf / (nf - 1.0))
                .max(0.0)
                .sqrt()
        })
        .sum::<f64>()
        / d as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    fn weights() -> VicregWeights {
        VicregWeights {
            invariance: 25.0,
            variance: 25.0,
            covariance: 1.0,
        }
    }

    #[test]
    fn vicreg_gradient_matches_finite_differences() {
        let (n, d) = (6, 4);
        let za = lcg(1, n * d);
        // Small values so that the variance hinge is active on some dimensions, inactive on others.
        let mut zb: Vec<f64> = lcg(2, n * d).iter().map(|v| v * 0.3).collect();
        zb[1] *= 8.0;
        zb[5] *= 8.0;
        let (_, ga, gb) = vicreg(&za, &zb, n, d, &weights()).unwrap();
        let h = 1e-6;
        for (which, grad) in [(0, &ga), (1, &gb)] {
            for i in 0..n * d {
                let (mut a, mut b) = (za.clone(), zb.clone());
                let v = if which == 0 { &mut a } else { &mut b };
                v[i] += h;
                let up = vicreg(&a, &b, n, d, &weights()).unwrap().0.total;
                let v = if which == 0 { &mut a } else { &mut b };
                v[i] -= 2.0 * h;
                let down = vicreg(&a, &b, n, d, &weights()).unwrap().0.total;
                let fd = (up - down) / (2.0 * h);
                assert!(
                    (fd - grad[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "view {which} entry {i}: analytic {} numeric {fd}",
                    grad[i]
                );
            }
        }
    }

    #[test]
    fn simsiam_gradient_matches_finite_differences() {
        let (n, d) = (3, 5);
        let (pa, pb, za, zb) = (lcg(3, n * d), lcg(4, n * d), lcg(5, n * d), lcg(6, n * d));
        let (_, ga, gb) = simsiam(&pa, &pb, &za, &zb, n, d).unwrap();
        let h = 1e-6;
        for i in 0..n * d {
            for (which, grad) in [(0, &ga), (1, &gb)] {
                let (mut a, mut b) = (pa.clone(), pb.clone());
                let v = if which == 0 { &mut a } else { &mut b };
                v[i] += h;
                let up = simsiam(&a, &b, &za, &zb, n, d).unwrap().0;
                let v = if which == 0 { &mut a } else { &mut b };
                v[i] -= 2.0 * h;
                let down = simsiam(&a, &b, &za, &zb, n, d).unwrap().0;
                let fd = (up - down) / (2.0 * h);
                assert!(
                    (fd - grad[i]).abs() < 1e-7,
                    "{which} {i}: {} vs {fd}",
                    grad[i]
                );
            }
        }
        // Identical directions give the minimum, −1.
        let (l, _, _) = simsiam(&za, &zb, &zb, &za, n, d).unwrap();
        assert!((l + 1.0).abs() < 1e-12, "{l}");
    }

    #[test]
    fn collapse_is_detected() {
        let collapsed = vec![0.5f32; 40];
        assert_eq!(normalized_embedding_std(&collapsed, 4), 0.0);
        let spread: Vec<f32> = lcg(7, 4000).iter().map(|&v| v as f32).collect();
        let s = normalized_embedding_std(&spread, 4);
        assert!(s > 0.3, "{s}");
        assert!(vicreg(&[1.0f64; 4], &[1.0f64; 4], 1, 4, &weights()).is_err());
    }
}
