//! The fast forward pass: channels-last (NHWC) f32 tensors, convolutions as GEMMs on the `gemm` crate
//! (the matrix-multiply library candle itself uses on the CPU), fused bias / ReLU / max-pooling epilogues,
//! and images spread over rayon's threads.
//!
//! Why not candle's `conv2d`: it runs this network at about a quarter of its own matmul speed (im2col into a
//! fresh tensor per call, NCHW copies). Here a convolution with a wide enough kernel row is an *implicit*
//! GEMM: in NHWC, the `kw` pixels × `c` channels under one kernel row are contiguous in memory, and
//! consecutive output pixels shift that window by `c` floats. So for each kernel row `ky` the "im2col matrix"
//! is just the input itself viewed with row stride `c` and `kw·c` columns, and the layer is `kh` GEMMs that
//! accumulate into one output, with no patch copy at all. Output rows are computed for the full input width
//! (the last `kw-1` columns of each row are wrap-around garbage, dropped by the epilogue), which keeps every
//! GEMM a plain strided matrix.

use gemm::Parallelism;

use crate::config::{CnnConfig, Hwc};
use crate::weights::{CnnWeights, ConvWeights, DenseWeights};
use crate::winograd::{self, WinogradKernel, WinogradScratch};

/// Kernel rows narrower than this (in floats) use an explicit im2col instead: the first layer's 6×3 window
/// would make six GEMMs with K = 18, which wastes the microkernel.
const IMPLICIT_MIN_K: usize = 128;

/// Output rows per block of the implicit GEMM, so that the accumulating block (rows × filters) stays in L2
/// while the `kh` kernel-row GEMMs add into it.
const ROW_BLOCK: usize = 480;

/// `dst (m×n) = [dst +] lhs (m×k) · rhs (k×n)`, all row-major with the given row strides and unit column
/// stride.
///
/// # Panics
/// If a slice is too short for the strides and sizes (an internal invariant: callers size every buffer from
/// the validated configuration).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() >= (m - 1) * dst_rs + n, "gemm dst too short");
    if k > 0 {
        assert!(lhs.len() >= (m - 1) * lhs_rs + k, "gemm lhs too short");
        assert!(rhs.len() >= (k - 1) * rhs_rs + n, "gemm rhs too short");
    }
    // SAFETY: the asserts above bound every element the GEMM reads or writes; `dst` does not alias the
    // inputs because it is a distinct `&mut` borrow.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            rhs_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

/// Reusable per-thread buffers, so that images do not allocate (and page-fault) megabytes each.
#[derive(Default)]
pub(crate) struct Scratch {
    act: [Vec<f32>; 2],
    gemm_out: Vec<f32>,
    col: Vec<f32>,
    wino: WinogradScratch,
}

fn resize(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// One convolution block on one image: `input` is (h, w, c) channels-last, the result (after ReLU and
/// pooling) goes to `out`.
#[allow(clippy::too_many_arguments)]
fn conv_block(
    input: &[f32],
    in_shape: Hwc,
    conv_shape: Hwc,
    pool: Option<usize>,
    w: &ConvWeights,
    wino: Option<&WinogradKernel>,
    out: &mut [f32],
    scratch: &mut Scratch,
    par: Parallelism,
) {
    let Scratch {
        gemm_out,
        col,
        wino: wino_scratch,
        ..
    } = scratch;
    let (h, wd, c) = in_shape;
    let (oh, ow, f) = conv_shape;
    let [kh, kw] = w.kernel_size;
    let row_k = kw * c;
    // `pitch`: distance in pixels between output rows of the GEMM result.
    let pitch;
    if let Some(k) = wino {
        pitch = winograd::conv5x5(
            input,
            in_shape,
            conv_shape,
            k,
            &w.bias,
            gemm_out,
            wino_scratch,
            par,
        );
    } else if row_k >= IMPLICIT_MIN_K {
        pitch = wd;
        // Rows past `m` would read beyond the input; they are wrap-around columns the epilogue drops anyway.
        let m = oh * wd - (kw - 1);
        resize(gemm_out, oh * wd * f);
        let dst = &mut gemm_out[..oh * wd * f];
        let mut r0 = 0;
        while r0 < m {
            let rows = ROW_BLOCK.min(m - r0);
            let block = &mut dst[r0 * f..(r0 + rows) * f];
            for row in block.chunks_exact_mut(f) {
                row.copy_from_slice(&w.bias);
            }
            for ky in 0..kh {
                let start = (r0 + ky * wd) * c;
                sgemm(
                    rows,
                    f,
                    row_k,
                    block,
                    f,
                    true,
                    &input[start..],
                    c,
                    &w.kernel[ky * row_k * f..(ky + 1) * row_k * f],
                    f,
                    par,
                );
            }
            r0 += rows;
        }
    } else {
        pitch = ow;
        let k = kh * row_k;
        let m = oh * ow;
        resize(col, m * k);
        let col = &mut col[..m * k];
        // Patch rows in (ky, kx, c) order, matching the HWIO kernel's row order.
        for oy in 0..oh {
            for ox in 0..ow {
                let dst = &mut col[(oy * ow + ox) * k..(oy * ow + ox + 1) * k];
                for ky in 0..kh {
                    let src = ((oy + ky) * wd + ox) * c;
                    dst[ky * row_k..(ky + 1) * row_k].copy_from_slice(&input[src..src + row_k]);
                }
            }
        }
        resize(gemm_out, m * f);
        let dst = &mut gemm_out[..m * f];
        for row in dst.chunks_exact_mut(f) {
            row.copy_from_slice(&w.bias);
        }
        sgemm(m, f, k, dst, f, true, col, k, &w.kernel, f, par);
    }
    debug_assert!(h >= oh);
    epilogue(&gemm_out[..], pitch, conv_shape, pool, out);
}

/// ReLU and optional max-pooling, dropping the wrap-around columns of an implicit GEMM.
/// `src` holds rows of `pitch` pixels × `f` channels of which the first `ow` are valid.
fn epilogue(src: &[f32], pitch: usize, conv_shape: Hwc, pool: Option<usize>, out: &mut [f32]) {
    let (oh, ow, f) = conv_shape;
    match pool {
        None => {
            for y in 0..oh {
                let s = &src[y * pitch * f..(y * pitch + ow) * f];
                let d = &mut out[y * ow * f..(y + 1) * ow * f];
                for (d, s) in d.iter_mut().zip(s) {
                    *d = s.max(0.0);
                }
            }
        }
        Some(p) => {
            let (ph, pw) = (oh / p, ow / p);
            for py in 0..ph {
                for px in 0..pw {
                    let d = &mut out[(py * pw + px) * f..(py * pw + px + 1) * f];
                    // ReLU commutes with max, so start from 0 and take the max of the window.
                    d.fill(0.0);
                    for dy in 0..p {
                        for dx in 0..p {
                            let at = ((py * p + dy) * pitch + px * p + dx) * f;
                            for (d, s) in d.iter_mut().zip(&src[at..at + f]) {
                                *d = d.max(*s);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Runs the convolution stack on one image (h, w, c), writing the flattened channels-last result to `flat`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_stack(
    cfg: &CnnConfig,
    shapes: &[(Hwc, Hwc, Hwc)],
    weights: &CnnWeights,
    wino: &[Option<WinogradKernel>],
    image: &[f32],
    flat: &mut [f32],
    scratch: &mut Scratch,
    par: Parallelism,
    mut timings: Option<&mut [f64]>,
) {
    // The activations move out of the scratch for the duration, so that the rest of it can be lent to
    // each layer.
    let mut act = std::mem::take(&mut scratch.act);
    let n = shapes.len();
    if n == 0 {
        flat.copy_from_slice(image);
        return;
    }
    for (i, ((layer, w), &(in_shape, conv_shape, out_shape))) in cfg
        .conv_layers
        .iter()
        .zip(&weights.conv)
        .zip(shapes)
        .enumerate()
    {
        let t0 = timings.as_ref().map(|_| std::time::Instant::now());
        let out_len = out_shape.0 * out_shape.1 * out_shape.2;
        let [a0, a1] = &mut act;
        let k = wino.get(i).and_then(Option::as_ref);
        let (input, out): (&[f32], &mut Vec<f32>) = match i % 2 {
            0 => (if i == 0 { image } else { &a1[..] }, a0),
            _ => (&a0[..], a1),
        };
        if i + 1 == n {
            conv_block(
                input,
                in_shape,
                conv_shape,
                layer.max_pool,
                w,
                k,
                flat,
                scratch,
                par,
            );
        } else {
            resize(out, out_len);
            conv_block(
                input,
                in_shape,
                conv_shape,
                layer.max_pool,
                w,
                k,
                &mut out[..out_len],
                scratch,
                par,
            );
        }
        if let (Some(t), Some(t0)) = (timings.as_deref_mut(), t0) {
            t[i] += t0.elapsed().as_secs_f64();
        }
    }
    scratch.act = act;
}

/// `y (n×out) = x (n×in) · kernel + bias`, then ReLU when asked.
pub(crate) fn dense(
    x: &[f32],
    n: usize,
    w: &DenseWeights,
    relu: bool,
    par: Parallelism,
) -> Vec<f32> {
    let (n_in, n_out) = (w.inputs, w.outputs);
    let mut y = vec![0.0f32; n * n_out];
    for row in y.chunks_exact_mut(n_out) {
        row.copy_from_slice(&w.bias);
    }
    sgemm(
        n, n_out, n_in, &mut y, n_out, true, x, n_in, &w.kernel, n_out, par,
    );
    if relu {
        y.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    y
}
