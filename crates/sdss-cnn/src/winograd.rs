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
    let (_, _, c) = in_shape;
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
            input_transform(input, in_shape, (ty, tx), tb, s);
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

/// `s.v[(p·TILE_BLOCK + tb)·c ..]` = (Bᵀ d B)[p] (integer-scaled Bᵀ) for the 8×8×c input patch of tile
/// (ty, tx), zero beyond the input's edges.
fn input_transform(
    input: &[f32],
    in_shape: Hwc,
    (ty, tx): (usize, usize),
    tb: usize,
    s: &mut WinogradScratch,
) {
    let (h, w, c) = in_shape;
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

/// Accumulates the kernel gradient of a 5×5 'valid' layer for one image: `dkernel (5, 5, c, f) HWIO +=
/// Σ_{y,x} input[y+ky][x+kx][c] · grad[y][x][f]`, with `grad (oh, ow, f)` the gradient with respect to
/// the layer's output.
///
/// Each 4×4 tile of `grad` and the 8×8 input patch under it contribute a 5×5 correlation, which is
/// Winograd F(5×5, 4×4) on the same eight points: its input transform is the forward pass's Bᵀ·d·B, the
/// "kernel" transform of the gradient tile uses Aᵀ of F(4×4, 5×5) transposed, and the output transform
/// uses its G. So the 64 products per tile become 64 GEMMs (c × tiles)·(tiles × f) summed over all tiles,
/// 6.1× fewer multiplications than the direct weight gradient.
pub(crate) fn weight_grad5x5(
    input: &[f32],
    in_shape: Hwc,
    grad: &[f32],
    f: usize,
    dkernel: &mut [f32],
    s: &mut WinogradScratch,
) {
    let (h, w, c) = in_shape;
    let (oh, ow) = (h - (R - 1), w - (R - 1));
    let (th, tw) = (oh.div_ceil(M), ow.div_ceil(M));
    let ntiles = th * tw;
    grow(&mut s.v, T * T * TILE_BLOCK * c);
    grow(&mut s.m, T * T * TILE_BLOCK * f);
    grow(&mut s.d, T * T * c.max(f));
    grow(&mut s.t, T * T * c.max(f));
    let mut acc = vec![0.0f32; T * T * c * f];
    let mut t0 = 0;
    while t0 < ntiles {
        let nb = TILE_BLOCK.min(ntiles - t0);
        for tb in 0..nb {
            let (ty, tx) = ((t0 + tb) / tw, (t0 + tb) % tw);
            input_transform(input, in_shape, (ty, tx), tb, s);
            // The gradient tile g (4×4×f), zero past the output's edges; U = (ATᵀ g AT) in s.m.
            let g = &mut s.d[..M * M * f];
            for a in 0..M {
                for b in 0..M {
                    let (y, x) = (ty * M + a, tx * M + b);
                    let dst = &mut g[(a * M + b) * f..(a * M + b + 1) * f];
                    if y < oh && x < ow {
                        dst.copy_from_slice(&grad[(y * ow + x) * f..(y * ow + x + 1) * f]);
                    } else {
                        dst.fill(0.0);
                    }
                }
            }
            // q[i][b] = Σ_a AT[a][i] g[a][b]
            let q = &mut s.t[..T * M * f];
            q.fill(0.0);
            for i in 0..T {
                for a in 0..M {
                    let coef = AT[a][i];
                    if coef == 0.0 {
                        continue;
                    }
                    for b in 0..M {
                        let src = &g[(a * M + b) * f..(a * M + b + 1) * f];
                        let dst = &mut q[(i * M + b) * f..(i * M + b + 1) * f];
                        for (o, v) in dst.iter_mut().zip(src) {
                            *o += coef * v;
                        }
                    }
                }
            }
            // U[i][j] = Σ_b q[i][b] AT[b][j]
            for i in 0..T {
                for j in 0..T {
                    let p = i * T + j;
                    let dst = &mut s.m[(p * TILE_BLOCK + tb) * f..(p * TILE_BLOCK + tb + 1) * f];
                    dst.fill(0.0);
                    for b in 0..M {
                        let coef = AT[b][j];
                        if coef == 0.0 {
                            continue;
                        }
                        let src = &q[(i * M + b) * f..(i * M + b + 1) * f];
                        for (o, v) in dst.iter_mut().zip(src) {
                            *o += coef * v;
                        }
                    }
                }
            }
        }
        // 64 GEMMs: acc[p] (c × f) += V[p]ᵀ (c × nb) · U[p] (nb × f).
        for p in 0..T * T {
            let lhs = &s.v[p * TILE_BLOCK * c..(p * TILE_BLOCK + nb) * c];
            let rhs = &s.m[p * TILE_BLOCK * f..(p * TILE_BLOCK + nb) * f];
            let dst = &mut acc[p * c * f..(p + 1) * c * f];
            // SAFETY: lhs holds nb·c values read as the (c × nb) matrix with row stride 1 and column
            // stride c; rhs nb·f values as (nb × f); dst c·f values; the buffers are distinct.
            unsafe {
                gemm::gemm(
                    c,
                    f,
                    nb,
                    dst.as_mut_ptr(),
                    1,
                    f as isize,
                    true,
                    lhs.as_ptr(),
                    c as isize,
                    1,
                    rhs.as_ptr(),
                    1,
                    f as isize,
                    1.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        }
        t0 += nb;
    }
    // Output transform, with the input transform's integer scaling undone:
    // dW[ky][kx] += Σ_{i,j} G[i][ky] · acc[i][j] / (S_i S_j) · G[j][kx].
    let mut inv_scale = [0.0f64; T * T];
    for i in 0..T {
        for j in 0..T {
            inv_scale[i * T + j] = 1.0 / (BT_SCALE[i] * BT_SCALE[j]);
        }
    }
    let mut m = [0.0f64; T * T];
    let mut row = [0.0f64; R * T];
    for ci in 0..c {
        for fi in 0..f {
            for (p, v) in m.iter_mut().enumerate() {
                *v = acc[(p * c + ci) * f + fi] as f64 * inv_scale[p];
            }
            for ky in 0..R {
                for j in 0..T {
                    row[ky * T + j] = (0..T).map(|i| G[i][ky] * m[i * T + j]).sum();
                }
            }
            for ky in 0..R {
                for kx in 0..R {
                    let v: f64 = (0..T).map(|j| row[ky * T + j] * G[j][kx]).sum();
                    dkernel[((ky * R + kx) * c + ci) * f + fi] += v as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn weight_gradient_matches_the_direct_sum() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        // 13×14 input: a 9×10 output, so tiles run past the edges on both axes.
        let (h, w, c, f) = (13, 14, 6, 5);
        let (oh, ow) = (h - 4, w - 4);
        let input: Vec<f32> = (0..h * w * c).map(|_| rng.random_range(0.0..1.0)).collect();
        let grad: Vec<f32> = (0..oh * ow * f)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let mut dk = vec![0.5f32; 25 * c * f];
        weight_grad5x5(
            &input,
            (h, w, c),
            &grad,
            f,
            &mut dk,
            &mut WinogradScratch::default(),
        );
        let (mut max_err, mut max_ref) = (0.0f64, 0.0f64);
        for ky in 0..5 {
            for kx in 0..5 {
                for ci in 0..c {
                    for fi in 0..f {
                        let mut want = 0.5f64;
                        for y in 0..oh {
                            for x in 0..ow {
                                want += input[((y + ky) * w + x + kx) * c + ci] as f64
                                    * grad[(y * ow + x) * f + fi] as f64;
                            }
                        }
                        let got = dk[((ky * 5 + kx) * c + ci) * f + fi] as f64;
                        max_err = max_err.max((got - want).abs());
                        max_ref = max_ref.max(want.abs());
                    }
                }
            }
        }
        assert!(
            max_err / max_ref < 2e-6,
            "relative error {}",
            max_err / max_ref
        );
    }

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
