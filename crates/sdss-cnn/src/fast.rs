//! The inference engine's fast 5×5 convolution, for the training engine in `sdss-train` (which runs the
//! forward pass and the input gradient of sdss_CNN's 5×5 layer through it). Not a stable API.

use gemm::Parallelism;

use crate::config::Hwc;
use crate::weights::ConvWeights;
use crate::winograd::{self, WinogradKernel, WinogradScratch};

/// A 5×5, stride-1, 'valid' convolution through Winograd F(4×4, 5×5) (~1e-6 relative error).
#[derive(Clone, Debug)]
pub struct Winograd5x5 {
    kernel: WinogradKernel,
    bias: Vec<f32>,
    filters: usize,
}

/// Per-thread buffers of [`Winograd5x5::forward`].
#[derive(Default)]
pub struct Winograd5x5Scratch {
    wino: WinogradScratch,
    out: Vec<f32>,
}

/// Accumulates the kernel gradient of a 5×5 'valid' layer for one image through Winograd F(5×5, 4×4):
/// `dkernel (5, 5, c, filters) HWIO += Σ_{y,x} input[y+ky][x+kx][c] · grad[y][x][f]`, where `grad` is
/// `(h−4, w−4, filters)`. Single-threaded; ~1e-6 relative error.
pub fn weight_grad_5x5(
    input: &[f32],
    in_shape: Hwc,
    grad: &[f32],
    filters: usize,
    dkernel: &mut [f32],
    s: &mut Winograd5x5Scratch,
) {
    winograd::weight_grad5x5(input, in_shape, grad, filters, dkernel, &mut s.wino);
}

impl Winograd5x5 {
    /// The transformed kernel of an HWIO `(5, 5, in_channels, filters)` kernel with `bias` (length
    /// `filters`); `None` if the shapes do not fit.
    pub fn new(kernel: &[f32], in_channels: usize, filters: usize, bias: &[f32]) -> Option<Self> {
        if kernel.len() != 25 * in_channels * filters || bias.len() != filters {
            return None;
        }
        let w = ConvWeights {
            kernel_size: [5, 5],
            in_channels,
            filters,
            kernel: kernel.to_vec(),
            bias: bias.to_vec(),
        };
        Some(Winograd5x5 {
            kernel: WinogradKernel::new(&w)?,
            bias: w.bias,
            filters,
        })
    }

    /// `out (h−4, w−4, filters) = input (h, w, c) ⋆ kernel + bias`, single-threaded, no activation.
    pub fn forward(
        &self,
        input: &[f32],
        in_shape: Hwc,
        out: &mut [f32],
        s: &mut Winograd5x5Scratch,
    ) {
        let (h, w, _) = in_shape;
        let (oh, ow, f) = (h - 4, w - 4, self.filters);
        let conv_shape = (oh, ow, f);
        let pitch = winograd::conv5x5(
            input,
            in_shape,
            conv_shape,
            &self.kernel,
            &self.bias,
            &mut s.out,
            &mut s.wino,
            Parallelism::None,
        );
        for y in 0..oh {
            out[y * ow * f..(y + 1) * ow * f]
                .copy_from_slice(&s.out[y * pitch * f..(y * pitch + ow) * f]);
        }
    }
}
