//! Per-image layer kernels, forward and backward, channels-last (HWC), generic over [`Real`].
//!
//! A convolution is a GEMM. When a kernel row spans enough floats (`kw·c ≥ IMPLICIT_MIN_K`) it is an
//! *implicit* GEMM, as in sdss-cnn's inference engine: in HWC the `kw·c` values under one kernel row are
//! contiguous and consecutive output pixels shift that window by `c`, so the input itself, viewed with row
//! stride `c`, is the im2col matrix of each kernel row, and the layer is `kh` accumulating GEMMs with no
//! patch copy. Output rows are computed for the full input width (`pitch = w`); the last `kw − 1` columns
//! of each row are wrap-around values that are dropped. Narrow layers (the 3-channel first layer) copy
//! patches explicitly (im2col).
//!
//! The three passes of a layer are all GEMMs of that kind:
//! - forward: `y = x ⋆ W + b`;
//! - weight gradient: `dW[ky] += A_kyᵀ · dY`, with `A_ky` the same strided view of the input and `dY` laid
//!   out at the forward pitch with zeros in the wrap-around columns, so they contribute nothing;
//! - input gradient: the "full" convolution of `dY`, zero-padded by `kh − 1`, `kw − 1`, with the kernel
//!   rotated by 180° and its channel axes swapped, which is again a forward convolution.

use gemm::Parallelism;
use sdss_cnn::config::Hwc;
use sdss_cnn::fast::{Winograd5x5, Winograd5x5Scratch};

use crate::real::{as_f32, as_f32_mut, gemm, Mat, Real};

/// Kernel rows narrower than this (in floats) use an explicit im2col: a 6×3 window would make GEMMs with
/// K = 18, which wastes the microkernel.
const IMPLICIT_MIN_K: usize = 64;

/// Reusable buffers of one worker, so that images do not allocate.
#[derive(Default)]
pub(crate) struct ConvScratch<T> {
    pitched: Vec<T>,
    col: Vec<T>,
    padded: Vec<T>,
    wino: Winograd5x5Scratch,
}

/// `out = input ⋆ kernel (+ bias)` through the Winograd kernel `fast` when there is one and `T` is f32,
/// else through [`conv_forward`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_forward_fast<T: Real>(
    input: &[T],
    s: &ConvShape,
    kernel: &[T],
    bias: Option<&[T]>,
    fast: Option<&Winograd5x5>,
    out: &mut [T],
    scratch: &mut ConvScratch<T>,
) {
    if let (Some(k), Some(x)) = (fast, as_f32(input)) {
        if let Some(o) = as_f32_mut(out) {
            k.forward(x, s.input, o, &mut scratch.wino);
            return;
        }
    }
    conv_forward(input, s, kernel, bias, out, scratch);
}

fn resize<T: Real>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    if buf.len() < len {
        buf.resize(len, T::ZERO);
    }
    &mut buf[..len]
}

/// The shape of a convolution: input (h, w, c), kernel (kh, kw), filters f.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvShape {
    pub input: Hwc,
    pub kh: usize,
    pub kw: usize,
    pub filters: usize,
}

impl ConvShape {
    pub fn out_h(&self) -> usize {
        self.input.0 - self.kh + 1
    }
    pub fn out_w(&self) -> usize {
        self.input.1 - self.kw + 1
    }
    fn implicit(&self) -> bool {
        self.kw * self.input.2 >= IMPLICIT_MIN_K
    }
}

/// Explicit im2col: one row of `kh·kw·c` values per output pixel, in (ky, kx, c) order (the HWIO kernel's
/// row order).
fn im2col<T: Real>(input: &[T], s: &ConvShape, col: &mut [T]) {
    let (_, w, c) = s.input;
    let (oh, ow) = (s.out_h(), s.out_w());
    let row_k = s.kw * c;
    let k = s.kh * row_k;
    for oy in 0..oh {
        for ox in 0..ow {
            let dst = &mut col[(oy * ow + ox) * k..(oy * ow + ox + 1) * k];
            for ky in 0..s.kh {
                let src = ((oy + ky) * w + ox) * c;
                dst[ky * row_k..(ky + 1) * row_k].copy_from_slice(&input[src..src + row_k]);
            }
        }
    }
}

/// `out (oh, ow, f) = input ⋆ kernel (+ bias)`, no activation. `kernel` is HWIO `(kh, kw, c, f)`.
pub(crate) fn conv_forward<T: Real>(
    input: &[T],
    s: &ConvShape,
    kernel: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    scratch: &mut ConvScratch<T>,
) {
    let (_, w, c) = s.input;
    let (oh, ow, f) = (s.out_h(), s.out_w(), s.filters);
    let row_k = s.kw * c;
    let init = |rows: &mut [T]| match bias {
        Some(b) => rows.chunks_exact_mut(f).for_each(|r| r.copy_from_slice(b)),
        None => rows.fill(T::ZERO),
    };
    if s.implicit() {
        // Rows past `m` would read beyond the input; they are wrap-around columns, dropped below.
        let m = oh * w - (s.kw - 1);
        let dst = resize(&mut scratch.pitched, oh * w * f);
        init(&mut dst[..m * f]);
        for ky in 0..s.kh {
            gemm(
                m,
                f,
                row_k,
                dst,
                f,
                true,
                Mat::rows(&input[ky * w * c..], c),
                Mat::rows(&kernel[ky * row_k * f..(ky + 1) * row_k * f], f),
                Parallelism::None,
            );
        }
        for y in 0..oh {
            out[y * ow * f..(y + 1) * ow * f].copy_from_slice(&dst[y * w * f..(y * w + ow) * f]);
        }
    } else {
        let k = s.kh * row_k;
        let m = oh * ow;
        let col = resize(&mut scratch.col, m * k);
        im2col(input, s, col);
        init(&mut out[..m * f]);
        gemm(
            m,
            f,
            k,
            out,
            f,
            true,
            Mat::rows(col, k),
            Mat::rows(kernel, f),
            Parallelism::None,
        );
    }
}

/// Accumulates the kernel and bias gradients of one image: `dkernel += ∂L/∂W`, `dbias += ∂L/∂b`, from the
/// layer's input and the gradient `grad_out (oh, ow, f)` with respect to its (pre-activation) output.
pub(crate) fn conv_weight_grad<T: Real>(
    input: &[T],
    s: &ConvShape,
    grad_out: &[T],
    dkernel: &mut [T],
    dbias: &mut [T],
    scratch: &mut ConvScratch<T>,
) {
    let (_, w, c) = s.input;
    let (oh, ow, f) = (s.out_h(), s.out_w(), s.filters);
    for px in grad_out.chunks_exact(f) {
        for (d, g) in dbias.iter_mut().zip(px) {
            *d += *g;
        }
    }
    let row_k = s.kw * c;
    if s.implicit() {
        let m = oh * w - (s.kw - 1);
        let g = resize(&mut scratch.pitched, oh * w * f);
        for y in 0..oh {
            g[y * w * f..(y * w + ow) * f].copy_from_slice(&grad_out[y * ow * f..(y + 1) * ow * f]);
            g[(y * w + ow) * f..(y + 1) * w * f].fill(T::ZERO);
        }
        for ky in 0..s.kh {
            // A_kyᵀ: (kw·c) × m, element (i, j) = input[ky·w·c + j·c + i].
            gemm(
                row_k,
                f,
                m,
                &mut dkernel[ky * row_k * f..(ky + 1) * row_k * f],
                f,
                true,
                Mat {
                    data: &input[ky * w * c..],
                    rs: 1,
                    cs: c,
                },
                Mat::rows(g, f),
                Parallelism::None,
            );
        }
    } else {
        let k = s.kh * row_k;
        let m = oh * ow;
        let col = resize(&mut scratch.col, m * k);
        im2col(input, s, col);
        gemm(
            k,
            f,
            m,
            dkernel,
            f,
            true,
            Mat::transposed(col, k),
            Mat::rows(grad_out, f),
            Parallelism::None,
        );
    }
}

/// [`conv_weight_grad`], through Winograd F(5×5, 4×4) when `winograd` is set, the layer is 5×5 and `T`
/// is f32.
pub(crate) fn conv_weight_grad_fast<T: Real>(
    input: &[T],
    s: &ConvShape,
    grad_out: &[T],
    dkernel: &mut [T],
    dbias: &mut [T],
    winograd: bool,
    scratch: &mut ConvScratch<T>,
) {
    if winograd && (s.kh, s.kw) == (5, 5) {
        if let (Some(x), Some(g)) = (as_f32(input), as_f32(grad_out)) {
            if let Some(dk) = as_f32_mut(dkernel) {
                sdss_cnn::fast::weight_grad_5x5(x, s.input, g, s.filters, dk, &mut scratch.wino);
                for px in grad_out.chunks_exact(s.filters) {
                    for (d, g) in dbias.iter_mut().zip(px) {
                        *d += *g;
                    }
                }
                return;
            }
        }
    }
    conv_weight_grad(input, s, grad_out, dkernel, dbias, scratch);
}

/// The kernel for the input gradient: rotated by 180° with its channel axes swapped, HWIO `(kh, kw, f, c)`.
pub(crate) fn flipped_kernel<T: Real>(
    kernel: &[T],
    kh: usize,
    kw: usize,
    c: usize,
    f: usize,
) -> Vec<T> {
    let mut out = vec![T::ZERO; kernel.len()];
    for ky in 0..kh {
        for kx in 0..kw {
            let src = ((kh - 1 - ky) * kw + (kw - 1 - kx)) * c * f;
            let dst = (ky * kw + kx) * f * c;
            for ci in 0..c {
                for fo in 0..f {
                    out[dst + fo * c + ci] = kernel[src + ci * f + fo];
                }
            }
        }
    }
    out
}

/// `grad_in (h, w, c) = ∂L/∂input` of one image from `grad_out (oh, ow, f)`, with `flipped` from
/// [`flipped_kernel`].
pub(crate) fn conv_input_grad<T: Real>(
    grad_out: &[T],
    s: &ConvShape,
    flipped: &[T],
    fast: Option<&Winograd5x5>,
    grad_in: &mut [T],
    scratch: &mut ConvScratch<T>,
) {
    let (oh, ow, f) = (s.out_h(), s.out_w(), s.filters);
    let (ph, pw) = (oh + 2 * (s.kh - 1), ow + 2 * (s.kw - 1));
    let mut padded = std::mem::take(&mut scratch.padded);
    let p = resize(&mut padded, ph * pw * f);
    p.fill(T::ZERO);
    for y in 0..oh {
        let at = ((y + s.kh - 1) * pw + s.kw - 1) * f;
        p[at..at + ow * f].copy_from_slice(&grad_out[y * ow * f..(y + 1) * ow * f]);
    }
    let full = ConvShape {
        input: (ph, pw, f),
        kh: s.kh,
        kw: s.kw,
        filters: s.input.2,
    };
    conv_forward_fast(p, &full, flipped, None, fast, grad_in, scratch);
    scratch.padded = padded;
}

/// ReLU in place.
pub(crate) fn relu<T: Real>(x: &mut [T]) {
    x.iter_mut().for_each(|v| *v = v.max(T::ZERO));
}

/// 'valid' max-pooling of `x (oh, ow, f)` by `p`, recording in `argmax` the index into `x` of each output's
/// maximum (the first in scan order among equals).
pub(crate) fn maxpool_forward<T: Real>(
    x: &[T],
    shape: Hwc,
    p: usize,
    out: &mut [T],
    argmax: &mut [u32],
) {
    let (_, ow, f) = shape;
    let (ph, pw) = (shape.0 / p, ow / p);
    for py in 0..ph {
        for px in 0..pw {
            let o = (py * pw + px) * f;
            let (out, arg) = (&mut out[o..o + f], &mut argmax[o..o + f]);
            // Window positions in scan order, channels innermost (contiguous), so the loops vectorise.
            for dy in 0..p {
                for dx in 0..p {
                    let at = ((py * p + dy) * ow + px * p + dx) * f;
                    let src = &x[at..at + f];
                    if dy == 0 && dx == 0 {
                        out.copy_from_slice(src);
                        for (ch, a) in arg.iter_mut().enumerate() {
                            *a = (at + ch) as u32;
                        }
                        continue;
                    }
                    for (ch, ((o, a), v)) in out.iter_mut().zip(arg.iter_mut()).zip(src).enumerate()
                    {
                        if *v > *o {
                            *o = *v;
                            *a = (at + ch) as u32;
                        }
                    }
                }
            }
        }
    }
}

/// The gradient of max-pooling: each output's gradient goes to the input that was its maximum.
pub(crate) fn maxpool_backward<T: Real>(grad_out: &[T], argmax: &[u32], grad_in: &mut [T]) {
    grad_in.fill(T::ZERO);
    for (g, &i) in grad_out.iter().zip(argmax) {
        grad_in[i as usize] += *g;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct convolution, the definition.
    fn direct(input: &[f64], s: &ConvShape, kernel: &[f64]) -> Vec<f64> {
        let (_, w, c) = s.input;
        let (oh, ow, f) = (s.out_h(), s.out_w(), s.filters);
        let mut out = vec![0.0; oh * ow * f];
        for oy in 0..oh {
            for ox in 0..ow {
                for fo in 0..f {
                    let mut acc = 0.0;
                    for ky in 0..s.kh {
                        for kx in 0..s.kw {
                            for ci in 0..c {
                                acc += input[((oy + ky) * w + ox + kx) * c + ci]
                                    * kernel[((ky * s.kw + kx) * c + ci) * f + fo];
                            }
                        }
                    }
                    out[(oy * ow + ox) * f + fo] = acc;
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut z = seed;
        (0..n)
            .map(|_| {
                z = z
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((z >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            })
            .collect()
    }

    #[test]
    fn implicit_and_explicit_forward_match_the_definition() {
        // c = 3 (explicit) and c = 24 (implicit: kw·c = 72).
        for (c, kh, kw) in [(3, 3, 2), (24, 2, 3)] {
            let s = ConvShape {
                input: (7, 6, c),
                kh,
                kw,
                filters: 5,
            };
            let x = values(7 * 6 * c, 1);
            let k = values(kh * kw * c * 5, 2);
            let mut out = vec![0.0; s.out_h() * s.out_w() * 5];
            conv_forward(&x, &s, &k, None, &mut out, &mut ConvScratch::default());
            let want = direct(&x, &s, &k);
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{a} {b}");
            }
        }
    }

    #[test]
    fn maxpool_routes_gradient_to_the_maximum() {
        let x = [1.0f64, 5.0, 2.0, 3.0, 0.0, 9.0, 4.0, 4.0, 1.0];
        // (3, 3, 1) pooled by 2 -> one output from the top-left 2×2.
        let mut out = [0.0];
        let mut arg = [0u32];
        maxpool_forward(&x, (3, 3, 1), 2, &mut out, &mut arg);
        assert_eq!((out[0], arg[0]), (5.0, 1));
        let mut g = [0.0; 9];
        maxpool_backward(&[2.0], &arg, &mut g);
        assert_eq!(g[1], 2.0);
        assert_eq!(g.iter().sum::<f64>(), 2.0);
    }
}
