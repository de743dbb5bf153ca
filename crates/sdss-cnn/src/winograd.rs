//! Winograd F(4×4, 5×5) convolution for 5×5, stride-1, 'valid' layers: sdss_CNN's `conv2d_1` (64 → 96
//! channels) carries 81% of the network's arithmetic, and Winograd computes each 4×4 output tile from an 8×8
//! input tile with 64 instead of 400 multiplications per channel pair (6.25× fewer), as 64 independent
//! GEMMs of (tiles × in) · (in × out). Interpolation points 0, ±1, ±2, ±1/2, ∞.
//!
//! Rounding: the input transform uses small integers only (exact in f32); all scaling is moved into the
//! kernel transform, which is done once in f64. Measured error against a direct convolution is ~1e-6
//! relative (see the tests here and the Keras parity tests, whose fixture has a 5×5 layer).

// Index loops mirror the transform formulas (several arrays indexed by the same i, j).
#![allow(clippy::needless_range_loop)]

use gemm::Parallelism;

use crate::config::Hwc;
use crate::weights::ConvWeights;

const T: usize = 8; // input tile
const M: usize = 4; // output tile
const R: usize = 5; // kernel

/// Bᵀ with each row scaled to small integers (scale factors in `BT_SCALE`).
const BT: [[f32; T]; T] = [
    [1.0, 0.0, -5.25, 0.0, 5.25, 0.0, -1.0, 0.0],
    [0.0, -4.0, -4.0, 17.0, 17.0, -4.0, -4.0, 0.0],
    [0.0, 4.0, -4.0, -17.0, 17.0, 4.0, -4.0, 0.0],
    [0.0, 2.0, 1.0, -10.0, -5.0, 8.0, 4.0, 0.0],
    [0.0, -2.0, 1.0, 10.0, -5.0, -8.0, 4.0, 0.0],
    [0.0, 64.0, 128.0, -80.0, -160.0, 16.0, 32.0, 0.0],
    [0.0, -64.0, 128.0, 80.0, -160.0, -16.0, 32.0, 0.0],
    [0.0, -1.0, 0.0, 5.25, 0.0, -5.25, 0.0, 1.0],
];
/// Row `i` of the exact Bᵀ is `BT[i] / BT_SCALE[i]`; the division is folded into G.
const BT_SCALE: [f64; T] = [1.0, 18.0, 18.0, 360.0, 360.0, 45.0, 45.0, 1.0];

const AT: [[f32; T]; M] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.25, 0.25, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 0.125, -0.125, 1.0],
];

const G: [[f64; R]; T] = [
    [1.0, 0.0, 0.0, 0.0, 0.0],
    [1.0, 1.0, 1.0, 1.0, 1.0],
    [1.0, -1.0, 1.0, -1.0, 1.0],
    [1.0, 2.0, 4.0, 8.0, 16.0],
    [1.0, -2.0, 4.0, -8.0, 16.0],
    [1.0, 0.5, 0.25, 0.125, 0.0625],
    [1.0, -0.5, 0.25, -0.125, 0.0625],
    [0.0, 0.0, 0.0, 0.0, 1.0],
];

/// Tiles transformed and multiplied together; bounds the scratch to `64·TILE_BLOCK·(in + out)` floats
/// (≈ 5 MB for 64 → 96 channels). Larger blocks mean fewer, larger GEMM calls: with 32 the per-call
/// overhead of 700 small GEMMs per image dominated.
const TILE_BLOCK: usize = 128;

/// Transformed kernel of one 5×5 layer: `u[p][c][f]` for the 64 tile positions `p`.
#[derive(Clone, Debug)]
pub(crate) struct WinogradKernel {
    u: Vec<f32>,
    c: usize,
    f: usize,
}

impl WinogradKernel {
    /// `None` unless the layer is 5×5 (the only size this transform is for).
    pub(crate) fn new(w: &ConvWeights) -> Option<Self> {
        if w.kernel_size != [R, R] {
            return None;
        }
        let (c, f) = (w.in_channels, w.filters);
        let mut u = vec![0.0f32; T * T * c * f];
        let mut g = [[0.0f64; R]; R];
        for ci in 0..c {
            for fi in 0..f {
                for (ky, row) in g.iter_mut().enumerate() {
                    for (kx, v) in row.iter_mut().enumerate() {
                        *v = w.kernel[((ky * R + kx) * c + ci) * f + fi] as f64;
                    }
                }
                // (G g Gᵀ)[i][j] / (BT_SCALE[i] · BT_SCALE[j]).
                let mut gg = [[0.0f64; R]; T];
                for i in 0..T {
                    for kx in 0..R {
                        gg[i][kx] = (0..R).map(|ky| G[i][ky] * g[ky][kx]).sum();
                    }
                }
                for i in 0..T {
                    for j in 0..T {
                        let v: f64 = (0..R).map(|kx| gg[i][kx] * G[j][kx]).sum();
                        u[((i * T + j) * c + ci) * f + fi] =
                            (v / (BT_SCALE[i] * BT_SCALE[j])) as f32;
                    }
                }
            }
        }
        Some(WinogradKernel { u, c, f })
    }
}

/// Scratch for one image.
#[derive(Default)]
pub(crate) struct WinogradScratch {
    v: Vec<f32>,
    m: Vec<f32>,
    d: Vec<f32>,
    t: Vec<f32>,
}

fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// 5×5 valid convolution of one (h, w, c) image plus bias, written (without ReLU) to `out` as rows of
/// `pitch = 4·ceil(ow/4)` pixels; returns the pitch. Columns and rows past (oh, ow) are padding.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv5x5(
    input: &[f32],
    in_shape: Hwc,
    conv_shape: Hwc,
    k: &WinogradKernel,
    bias: &[f32],
    out: &mut Vec<f32>,
    s: &mut WinogradScratch,
    par: Parallelism,
) -> usize {
    let (h, w, c) = in_shape;
    let (oh, ow, f) = conv_shape;
    debug_assert_eq!((c, f), (k.c, k.f));
    let (th, tw) = (oh.div_ceil(M), ow.div_ceil(M));
    let pitch = tw * M;
    grow(out, th * M * pitch * f);
    let ntiles = th * tw;
    grow(&mut s.v, T * T * TILE_BLOCK * c);
    grow(&mut s.m, T * T * TILE_BLOCK * f);
    grow(&mut s.d, T * T * c);
    grow(&mut s.t, T * T * c.max(f));
    let mut t0 = 0;
    while t0 < ntiles {
        let nb = TILE_BLOCK.min(ntiles - t0);
        // Input transform: V[p][tile][c] = (Bᵀ d B)[p] for each tile's 8×8×c patch.
        for tb in 0..nb {
            let (ty, tx) = ((t0 + tb) / tw, (t0 + tb) % tw);
            let d = &mut s.d[..T * T * c];
            for i in 0..T {
                for j in 0..T {
                    let (y, x) = (ty * M + i, tx * M + j);
                    let dst = &mut d[(i * T + j) * c..(i * T + j + 1) * c];
                    if y < h && x < w {
                        dst.copy_from_slice(&input[(y * w + x) * c..(y * w + x + 1) * c]);
                    } else {
                        dst.fill(0.0);
                    }
                }
            }
            // t[i][j] = Σ_k BT[i][k] d[k][j]
            let t = &mut s.t[..T * T * c];
            t.fill(0.0);
            for i in 0..T {
                for kk in 0..T {
                    let b = BT[i][kk];
                    if b == 0.0 {
                        continue;
                    }
                    for j in 0..T {
                        let src = &d[(kk * T + j) * c..(kk * T + j + 1) * c];
                        let dst = &mut t[(i * T + j) * c..(i * T + j + 1) * c];
                        for (o, v) in dst.iter_mut().zip(src) {
                            *o += b * v;
                        }
                    }
                }
            }
            // V[i][j] = Σ_l t[i][l] BT[j][l]
            for i in 0..T {
                for j in 0..T {
                    let p = i * T + j;
                    let dst = &mut s.v[(p * TILE_BLOCK + tb) * c..(p * TILE_BLOCK + tb + 1) * c];
                    dst.fill(0.0);
                    for l in 0..T {
                        let b = BT[j][l];
                        if b == 0.0 {
                            continue;
                        }
                        let src = &t[(i * T + l) * c..(i * T + l + 1) * c];
                        for (o, v) in dst.iter_mut().zip(src) {
                            *o += b * v;
                        }
                    }
                }
            }
        }
        // 64 GEMMs: M[p] (nb × f) = V[p] (nb × c) · U[p] (c × f).
        for p in 0..T * T {
            let lhs = &s.v[p * TILE_BLOCK * c..(p * TILE_BLOCK + nb) * c];
            let rhs = &k.u[p * c * f..(p + 1) * c * f];
            let dst = &mut s.m[p * TILE_BLOCK * f..(p * TILE_BLOCK + nb) * f];
            crate::engine::sgemm(nb, f, c, dst, f, false, lhs, c, rhs, f, par);
        }
        // Output transform: y = Aᵀ M A + bias, per tile.
        for tb in 0..nb {
            let (ty, tx) = ((t0 + tb) / tw, (t0 + tb) % tw);
            // q[a][j] = Σ_i AT[a][i] M[i][j]
            let q = &mut s.t[..M * T * f];
            q.fill(0.0);
            for a in 0..M {
                for i in 0..T {
                    let coef = AT[a][i];
                    if coef == 0.0 {
                        continue;
                    }
                    for j in 0..T {
                        let p = i * T + j;
                        let src = &s.m[(p * TILE_BLOCK + tb) * f..(p * TILE_BLOCK + tb + 1) * f];
                        let dst = &mut q[(a * T + j) * f..(a * T + j + 1) * f];
                        for (o, v) in dst.iter_mut().zip(src) {
                            *o += coef * v;
                        }
                    }
                }
            }
            for a in 0..M {
                for b in 0..M {
                    let (y, x) = (ty * M + a, tx * M + b);
                    let dst = &mut out[(y * pitch + x) * f..(y * pitch + x + 1) * f];
                    dst.copy_from_slice(bias);
                    for j in 0..T {
                        let coef = AT[b][j];
                        if coef == 0.0 {
                            continue;
                        }
                        let src = &q[(a * T + j) * f..(a * T + j + 1) * f];
                        for (o, v) in dst.iter_mut().zip(src) {
                            *o += coef * v;
                        }
                    }
                }
            }
        }
        t0 += nb;
    }
    pitch
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn matches_direct_convolution() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (h, w, c, f) = (13, 11, 5, 7);
        let (oh, ow) = (h - 4, w - 4);
        let input: Vec<f32> = (0..h * w * c).map(|_| rng.random_range(0.0..1.0)).collect();
        let kernel: Vec<f32> = (0..25 * c * f)
            .map(|_| rng.random_range(-0.3..0.3))
            .collect();
        let bias: Vec<f32> = (0..f).map(|_| rng.random_range(-0.1..0.1)).collect();
        let cw = ConvWeights {
            kernel_size: [5, 5],
            in_channels: c,
            filters: f,
            kernel: kernel.clone(),
            bias: bias.clone(),
        };
        let k = WinogradKernel::new(&cw).unwrap();
        let mut out = Vec::new();
        let pitch = conv5x5(
            &input,
            (h, w, c),
            (oh, ow, f),
            &k,
            &bias,
            &mut out,
            &mut WinogradScratch::default(),
            Parallelism::None,
        );
        let mut max_err = 0.0f64;
        let mut max_ref = 0.0f64;
        for y in 0..oh {
            for x in 0..ow {
                for fi in 0..f {
                    let mut acc = bias[fi] as f64;
                    for ky in 0..5 {
                        for kx in 0..5 {
                            for ci in 0..c {
                                acc += input[((y + ky) * w + x + kx) * c + ci] as f64
                                    * kernel[((ky * 5 + kx) * c + ci) * f + fi] as f64;
                            }
                        }
                    }
                    let got = out[(y * pitch + x) * f + fi] as f64;
                    max_err = max_err.max((got - acc).abs());
                    max_ref = max_ref.max(acc.abs());
                }
            }
        }
        assert!(
            max_err / max_ref < 2e-6,
            "relative error {}",
            max_err / max_ref
        );
    }
}
