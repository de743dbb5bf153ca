//! Keras `ImageDataGenerator` augmentation, reimplemented exactly.
//!
//! The original project trained with
//! `ImageDataGenerator(rotation_range=45, zoom_range=0.25, horizontal_flip=True,
//! vertical_flip=True, width_shift_range=0.05, height_shift_range=0.05)` and the default
//! `fill_mode='nearest'`, `interpolation_order=1`. This module reproduces, for channels-last
//! images:
//!
//! * [`AugmentConfig::sample`]: the parameter distributions of Keras's `get_random_transform`
//!   (the random stream itself cannot match numpy's);
//! * [`apply_transform`]: Keras's `apply_transform` given the same parameters, i.e. the affine
//!   matrix of `apply_affine_transform` + `transform_matrix_offset_center`, resampled with
//!   `scipy.ndimage.affine_transform(order=1, mode='nearest')`, then the flips. The arithmetic
//!   follows scipy's C code operation by operation, so outputs agree with Keras to float32
//!   rounding (see `tests/augment_parity.rs`).
//!
//! Keras conventions that are easy to get wrong, all reproduced on purpose:
//!
//! * `tx` is drawn from `height_shift_range` and scaled by the image *height*, but
//!   `apply_affine_transform` applies it along the *column* axis (it is the "x" coordinate of
//!   its matrix, and x is the column after its axis swap). Likewise `ty` comes from
//!   `width_shift_range` × width and moves along rows, `zx` scales columns and `zy` rows.
//!   For the square images and equal shift ranges of sdss_CNN this changes nothing.
//! * `transform_matrix_offset_center(matrix, h, w)` puts the centre of the x (column)
//!   coordinate at `h/2 - 0.5` and of y (row) at `w/2 - 0.5`, so non-square images rotate and
//!   zoom about a point off their centre.
//! * A positive shift moves the content towards lower indices (output `(r, c)` samples input
//!   `(r, c + tx)`); a positive `theta` rotates the content counter-clockwise as displayed
//!   (row 0 at the top): `theta = 90` equals `np.rot90`.
//! * Flips are applied after the affine resampling; "horizontal" reverses columns.
//! * With all affine parameters at their neutral values Keras skips scipy entirely, so the
//!   output is the input (flipped) bit for bit.

use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// An invalid augmentation setting; the message names the offending parameter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid augmentation setting: {0}")]
pub struct AugmentError(pub String);

/// The `ImageDataGenerator` settings this crate supports (no shear, channel shift or
/// brightness; those were unused by the original).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Rotations are drawn uniformly from `[-r, r)` degrees (Keras `rotation_range`).
    pub rotation_range_deg: f64,
    /// Zoom factors `[lower, upper]`, as Keras stores them (`zoom_range=z` means
    /// `[1-z, 1+z]`). `zx` and `zy` are drawn independently; a factor > 1 samples a larger
    /// region of the input, i.e. zooms out (Keras's convention).
    pub zoom_range: [f64; 2],
    /// Keras `width_shift_range`: a fraction of the width if < 1, else pixels.
    pub width_shift_range: f64,
    /// Keras `height_shift_range`: a fraction of the height if < 1, else pixels.
    pub height_shift_range: f64,
    /// Flip columns with probability 1/2.
    pub horizontal_flip: bool,
    /// Flip rows with probability 1/2.
    pub vertical_flip: bool,
}

impl AugmentConfig {
    /// The settings the original sdss_CNN training used.
    pub fn sdss_cnn() -> Self {
        AugmentConfig {
            rotation_range_deg: 45.0,
            zoom_range: [0.75, 1.25],
            width_shift_range: 0.05,
            height_shift_range: 0.05,
            horizontal_flip: true,
            vertical_flip: true,
        }
    }

    /// No augmentation: every sample is the identity.
    pub fn none() -> Self {
        AugmentConfig {
            rotation_range_deg: 0.0,
            zoom_range: [1.0, 1.0],
            width_shift_range: 0.0,
            height_shift_range: 0.0,
            horizontal_flip: false,
            vertical_flip: false,
        }
    }

    /// True when [`sample`](Self::sample) can only return the identity.
    pub fn is_identity(&self) -> bool {
        self.rotation_range_deg == 0.0
            && self.zoom_range == [1.0, 1.0]
            && self.width_shift_range == 0.0
            && self.height_shift_range == 0.0
            && !self.horizontal_flip
            && !self.vertical_flip
    }

    /// Checks that every range is finite and non-negative and that the zoom range is
    /// `0 < lower <= upper`.
    pub fn validate(&self) -> Result<(), AugmentError> {
        let non_negative = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(AugmentError(format!(
                    "{name} must be finite and >= 0, got {v}"
                )))
            }
        };
        non_negative("rotation_range_deg", self.rotation_range_deg)?;
        non_negative("width_shift_range", self.width_shift_range)?;
        non_negative("height_shift_range", self.height_shift_range)?;
        let [lo, hi] = self.zoom_range;
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
            return Err(AugmentError(format!(
                "zoom_range must be finite with 0 < lower <= upper, got [{lo}, {hi}]"
            )));
        }
        Ok(())
    }

    /// Draws one transform with the distributions of Keras's `get_random_transform` for an
    /// image of `height × width` pixels.
    ///
    /// Draw order follows Keras (theta, tx, ty, zx, zy, flips) and, as in Keras, a range of 0
    /// consumes no random numbers. A shift range ≥ 1 is in pixels (Keras's float path; its
    /// integer-valued ranges draw from a discrete set instead, which is not reproduced).
    /// Call [`validate`](Self::validate) first; invalid settings give meaningless draws.
    pub fn sample(&self, rng: &mut impl Rng, height: usize, width: usize) -> TransformParams {
        let r = self.rotation_range_deg;
        let theta_deg = if r != 0.0 { uniform(rng, -r, r) } else { 0.0 };
        let shift = |rng: &mut _, range: f64, size: usize| {
            if range == 0.0 {
                return 0.0;
            }
            let t = uniform(rng, -range, range);
            if range < 1.0 {
                t * size as f64
            } else {
                t
            }
        };
        // Keras: tx from height_shift_range × rows, ty from width_shift_range × columns.
        let tx = shift(rng, self.height_shift_range, height);
        let ty = shift(rng, self.width_shift_range, width);
        let [lo, hi] = self.zoom_range;
        let (zx, zy) = if lo == 1.0 && hi == 1.0 {
            (1.0, 1.0)
        } else {
            let zx = uniform(rng, lo, hi);
            (zx, uniform(rng, lo, hi))
        };
        // Keras draws both coins even when a flip is disabled.
        let flip_horizontal = rng.random::<f64>() < 0.5 && self.horizontal_flip;
        let flip_vertical = rng.random::<f64>() < 0.5 && self.vertical_flip;
        TransformParams {
            theta_deg,
            tx,
            ty,
            zx,
            zy,
            flip_horizontal,
            flip_vertical,
        }
    }
}

/// numpy's `uniform(low, high)`: `low + (high - low) * random()`, in `[low, high)`.
fn uniform(rng: &mut impl Rng, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.random::<f64>()
}

/// One transform, with the meaning of the Keras `transform_parameters` dict of the same
/// names (shear 0, no channel shift or brightness).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformParams {
    /// Rotation in degrees; positive turns the content counter-clockwise as displayed.
    pub theta_deg: f64,
    /// Keras `tx`, in pixels: drawn from `height_shift_range` × height, applied along the
    /// column axis (output column `c` samples input column `c + tx` before rotation).
    pub tx: f64,
    /// Keras `ty`, in pixels: drawn from `width_shift_range` × width, applied along rows.
    pub ty: f64,
    /// Keras `zx`: scales the column coordinate of the sampled point (> 1 zooms out).
    pub zx: f64,
    /// Keras `zy`: scales the row coordinate of the sampled point (> 1 zooms out).
    pub zy: f64,
    /// Reverse the columns after the affine step.
    pub flip_horizontal: bool,
    /// Reverse the rows after the affine step.
    pub flip_vertical: bool,
}

impl Default for TransformParams {
    fn default() -> Self {
        Self::identity()
    }
}

impl TransformParams {
    /// The transform that leaves an image unchanged.
    pub fn identity() -> Self {
        TransformParams {
            theta_deg: 0.0,
            tx: 0.0,
            ty: 0.0,
            zx: 1.0,
            zy: 1.0,
            flip_horizontal: false,
            flip_vertical: false,
        }
    }

    /// True when [`apply_transform`] copies the image unchanged.
    pub fn is_identity(&self) -> bool {
        !self.has_affine() && !self.flip_horizontal && !self.flip_vertical
    }

    /// Whether Keras resamples at all (it skips scipy when every affine parameter is neutral).
    fn has_affine(&self) -> bool {
        self.theta_deg != 0.0
            || self.tx != 0.0
            || self.ty != 0.0
            || self.zx != 1.0
            || self.zy != 1.0
    }

    /// The affine map that scipy receives from Keras for a `height × width` image, or `None`
    /// when Keras skips the affine step.
    ///
    /// Built exactly as `apply_affine_transform` does: rotation · shift · zoom, offset-centred
    /// by `transform_matrix_offset_center(m, height, width)`, then rows and columns swapped.
    pub fn source_map(&self, height: usize, width: usize) -> Option<SourceMap> {
        // Same conditional composition as Keras, so the float operations match.
        let mut m: Option<Mat3> = None;
        if self.theta_deg != 0.0 {
            // np.deg2rad(x) is x * (pi / 180), as is f64::to_radians.
            let t = self.theta_deg.to_radians();
            let (s, c) = (t.sin(), t.cos());
            m = Some([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]);
        }
        if self.tx != 0.0 || self.ty != 0.0 {
            let shift = [[1.0, 0.0, self.tx], [0.0, 1.0, self.ty], [0.0, 0.0, 1.0]];
            m = Some(m.map_or(shift, |m| dot(&m, &shift)));
        }
        if self.zx != 1.0 || self.zy != 1.0 {
            let zoom = [[self.zx, 0.0, 0.0], [0.0, self.zy, 0.0], [0.0, 0.0, 1.0]];
            m = Some(m.map_or(zoom, |m| dot(&m, &zoom)));
        }
        let m = m?;
        // Keras passes (h, w) as (x, y) here although x ends up being the column.
        let o_x = height as f64 / 2.0 - 0.5;
        let o_y = width as f64 / 2.0 - 0.5;
        let offset = [[1.0, 0.0, o_x], [0.0, 1.0, o_y], [0.0, 0.0, 1.0]];
        let reset = [[1.0, 0.0, -o_x], [0.0, 1.0, -o_y], [0.0, 0.0, 1.0]];
        let t = dot(&dot(&offset, &m), &reset);
        // M' = P M P with P swapping the first two coordinates (Keras's axis swap).
        Some(SourceMap {
            matrix: [[t[1][1], t[1][0]], [t[0][1], t[0][0]]],
            offset: [t[1][2], t[0][2]],
        })
    }
}

type Mat3 = [[f64; 3]; 3];

/// Naive 3×3 product, summing in index order like a textbook `np.dot`.
fn dot(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut c = [[0.0; 3]; 3];
    for (ci, ai) in c.iter_mut().zip(a) {
        for (j, cij) in ci.iter_mut().enumerate() {
            *cij = ai[0] * b[0][j] + ai[1] * b[1][j] + ai[2] * b[2][j];
        }
    }
    c
}

/// The map from an output pixel to the input point it samples, in scipy's convention:
/// `input = matrix · (row, col) + offset`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SourceMap {
    /// Row-major 2×2 matrix acting on `(row, col)`.
    pub matrix: [[f64; 2]; 2],
    /// Added after the matrix product.
    pub offset: [f64; 2],
}

impl SourceMap {
    /// The input `(row, col)` sampled for output pixel `(row, col)`, before edge clamping;
    /// evaluated in scipy's operation order so it is bit-identical to what scipy uses.
    #[inline]
    pub fn source(&self, row: usize, col: usize) -> (f64, f64) {
        let (r, c) = (row as f64, col as f64);
        let m = &self.matrix;
        (
            r * m[0][0] + c * m[0][1] + self.offset[0],
            r * m[1][0] + c * m[1][1] + self.offset[1],
        )
    }
}

/// Bilinear taps along one axis for scipy `order=1, mode='nearest'`: the coordinate is
/// clamped to `[0, len-1]`, weights are `1 - f` and `1 - (1 - f)` as in scipy's
/// `get_spline_interpolation_weights`.
#[inline]
fn taps(x: f64, len: usize) -> (usize, usize, f64, f64) {
    // u32/i32 <-> f64 conversions are single instructions; usize ones are not.
    let last = f64::from((len - 1) as u32);
    let cc = if x < 0.0 {
        0.0
    } else if x > last {
        last
    } else {
        x
    };
    // cc >= 0, so truncation is floor (and avoids a libm call on baseline x86-64).
    let i0 = cc as i32;
    let w0 = 1.0 - (cc - f64::from(i0));
    let i0 = i0 as usize;
    let w1 = 1.0 - w0;
    // At cc == len-1 the second tap has weight 0; scipy mirrors it, we clamp: same result.
    let i1 = if i0 + 1 < len { i0 + 1 } else { i0 };
    (i0, i1, w0, w1)
}

/// Applies `params` to one channels-last `height × width × channels` image, writing `out`
/// (same length), exactly as tf.keras `ImageDataGenerator.apply_transform` does with
/// `fill_mode='nearest'` and `interpolation_order=1`.
///
/// Allocation-free. Identity affine parameters copy (and flip) the input bit for bit.
///
/// An error if `image` or `out` is not `height * width * channels` long, or a side does not fit the
/// resampler's `i32` coordinates.
pub fn apply_transform(
    image: &[f32],
    height: usize,
    width: usize,
    channels: usize,
    params: &TransformParams,
    out: &mut [f32],
) -> Result<(), AugmentError> {
    let len = height * width * channels;
    if image.len() != len || out.len() != len {
        return Err(AugmentError(format!(
            "image of {} values and output of {} for a {height}x{width}x{channels} image",
            image.len(),
            out.len()
        )));
    }
    if height >= i32::MAX as usize || width >= i32::MAX as usize {
        return Err(AugmentError(format!(
            "a {height}x{width} image is too large to resample"
        )));
    }
    if len > 0 {
        transform_into(image, height, width, channels, params, out);
    }
    Ok(())
}

/// [`apply_transform`] on sizes already checked.
fn transform_into(
    image: &[f32],
    height: usize,
    width: usize,
    channels: usize,
    params: &TransformParams,
    out: &mut [f32],
) {
    let row_len = width * channels;
    // Flips come after the affine step, so affine-output pixel (i, j) lands at (di, dj).
    let dest_row = |i: usize| {
        if params.flip_vertical {
            height - 1 - i
        } else {
            i
        }
    };
    let dest_col = |j: usize| {
        if params.flip_horizontal {
            width - 1 - j
        } else {
            j
        }
    };

    let Some(map) = params.source_map(height, width) else {
        for i in 0..height {
            let src = &image[i * row_len..(i + 1) * row_len];
            let di = dest_row(i);
            let dst = &mut out[di * row_len..(di + 1) * row_len];
            if params.flip_horizontal {
                for (j, px) in src.chunks_exact(channels).enumerate() {
                    let dj = dest_col(j);
                    dst[dj * channels..(dj + 1) * channels].copy_from_slice(px);
                }
            } else {
                dst.copy_from_slice(src);
            }
        }
        return;
    };

    // Constant channel counts let the compiler unroll the per-pixel channel loop.
    let flips = (params.flip_vertical, params.flip_horizontal);
    match channels {
        1 => resample(image, height, width, 1, &map, flips, out),
        3 => resample(image, height, width, 3, &map, flips, out),
        c => resample(image, height, width, c, &map, flips, out),
    }
}

/// scipy `affine_transform(order=1, mode='nearest')` of every channel, writing affine-output
/// pixel `(i, j)` to its flipped position.
#[inline(always)]
fn resample(
    image: &[f32],
    height: usize,
    width: usize,
    channels: usize,
    map: &SourceMap,
    (flip_vertical, flip_horizontal): (bool, bool),
    out: &mut [f32],
) {
    let m = map.matrix;
    let row_len = width * channels;
    for i in 0..height {
        let fi = f64::from(i as u32);
        // scipy: ((0 + i*m0) + j*m1) + offset, per coordinate.
        let r_base = fi * m[0][0];
        let c_base = fi * m[1][0];
        let di = if flip_vertical { height - 1 - i } else { i };
        let out_row = &mut out[di * row_len..(di + 1) * row_len];
        for j in 0..width {
            let fj = f64::from(j as u32);
            let r = r_base + fj * m[0][1] + map.offset[0];
            let c = c_base + fj * m[1][1] + map.offset[1];
            let dj = if flip_horizontal { width - 1 - j } else { j };
            let dst = &mut out_row[dj * channels..(dj + 1) * channels];
            if r.is_nan() || c.is_nan() {
                // scipy treats a NaN coordinate as outside: cval, 0 for Keras.
                dst.fill(0.0);
                continue;
            }
            let (r0, r1, wr0, wr1) = taps(r, height);
            let (c0, c1, wc0, wc1) = taps(c, width);
            let row0 = &image[r0 * row_len..(r0 + 1) * row_len];
            let row1 = &image[r1 * row_len..(r1 + 1) * row_len];
            let p00 = &row0[c0 * channels..(c0 + 1) * channels];
            let p01 = &row0[c1 * channels..(c1 + 1) * channels];
            let p10 = &row1[c0 * channels..(c0 + 1) * channels];
            let p11 = &row1[c1 * channels..(c1 + 1) * channels];
            for k in 0..channels {
                // scipy's filter loop: taps in row-major order, value * row weight * col weight.
                let mut t = f64::from(p00[k]) * wr0 * wc0;
                t += f64::from(p01[k]) * wr0 * wc1;
                t += f64::from(p10[k]) * wr1 * wc0;
                t += f64::from(p11[k]) * wr1 * wc1;
                dst[k] = t as f32;
            }
        }
    }
}

/// Augments a batch of channels-last images in place, in parallel: image `k` gets its own
/// `ChaCha8Rng` seeded with `seeds[k]`, so results do not depend on the thread count.
/// Returns the parameters drawn for each image.
pub fn augment_batch(
    config: &AugmentConfig,
    images: &mut [f32],
    n: usize,
    height: usize,
    width: usize,
    channels: usize,
    seeds: &[u64],
) -> Result<Vec<TransformParams>, AugmentError> {
    use rand::SeedableRng;
    config.validate()?;
    let per = height * width * channels;
    if images.len() != n * per || seeds.len() != n {
        return Err(AugmentError(format!(
            "images/seeds: expected {n} images of {height}x{width}x{channels} and {n} seeds, got {} values and {} seeds",
            images.len(),
            seeds.len()
        )));
    }
    if n == 0 || per == 0 {
        return Ok(vec![TransformParams::identity(); n]);
    }
    if height >= i32::MAX as usize || width >= i32::MAX as usize {
        return Err(AugmentError(format!(
            "a {height}x{width} image is too large to resample"
        )));
    }
    Ok(images
        .par_chunks_mut(per)
        .zip(seeds.par_iter())
        .map_init(
            || vec![0.0f32; per],
            |scratch, (img, &seed)| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let p = config.sample(&mut rng, height, width);
                if !p.is_identity() {
                    // Sizes checked above: every chunk and the scratch hold `per` values.
                    transform_into(img, height, width, channels, &p, scratch);
                    img.copy_from_slice(scratch);
                }
                p
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn test_image(h: usize, w: usize, c: usize) -> Vec<f32> {
        (0..h * w * c)
            .map(|i| {
                let (p, k) = (i / c, i % c);
                let (r, q) = ((p / w) as f32, (p % w) as f32);
                (0.5 + 0.3 * (0.21 * r + 0.1 * k as f32).sin() * (0.17 * q).cos()).clamp(0.0, 1.0)
            })
            .collect()
    }

    #[test]
    fn identity_is_exact() {
        let img = test_image(9, 7, 3);
        let mut out = vec![f32::NAN; img.len()];
        apply_transform(&img, 9, 7, 3, &TransformParams::identity(), &mut out).unwrap();
        assert_eq!(out, img);
        assert!(AugmentConfig::none().is_identity());
        assert!(!AugmentConfig::sdss_cnn().is_identity());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(AugmentConfig::none().sample(&mut rng, 9, 7).is_identity());
    }

    #[test]
    fn flips_without_affine_are_exact() {
        let (h, w, c) = (5, 4, 2);
        let img = test_image(h, w, c);
        let mut out = vec![0.0; img.len()];
        let p = TransformParams {
            flip_horizontal: true,
            flip_vertical: true,
            ..TransformParams::identity()
        };
        apply_transform(&img, h, w, c, &p, &mut out).unwrap();
        for i in 0..h {
            for j in 0..w {
                for k in 0..c {
                    let src = img[((h - 1 - i) * w + (w - 1 - j)) * c + k];
                    assert_eq!(out[(i * w + j) * c + k], src);
                }
            }
        }
    }

    #[test]
    fn sample_stays_in_range_and_flips_half_the_time() {
        let cfg = AugmentConfig::sdss_cnn();
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let n = 20_000;
        let (mut fh, mut fv, mut zx_hi) = (0usize, 0usize, 0usize);
        for _ in 0..n {
            let p = cfg.sample(&mut rng, 80, 80);
            assert!((-45.0..45.0).contains(&p.theta_deg));
            assert!((-4.0..4.0).contains(&p.tx) && (-4.0..4.0).contains(&p.ty));
            assert!((0.75..1.25).contains(&p.zx) && (0.75..1.25).contains(&p.zy));
            fh += p.flip_horizontal as usize;
            fv += p.flip_vertical as usize;
            zx_hi += (p.zx > p.zy) as usize;
        }
        // 5 sigma of a fair coin over 20000 draws is ~354.
        for count in [fh, fv, zx_hi] {
            assert!(count.abs_diff(n / 2) < 354, "count {count} of {n}");
        }
        // Shift ranges >= 1 are pixels, not fractions.
        let cfg = AugmentConfig {
            width_shift_range: 3.0,
            ..AugmentConfig::none()
        };
        for _ in 0..1000 {
            let p = cfg.sample(&mut rng, 80, 80);
            assert!(p.tx == 0.0 && (-3.0..3.0).contains(&p.ty));
            assert!(!p.flip_horizontal && !p.flip_vertical);
        }
    }

    #[test]
    fn rotation_by_90_is_transpose_of_column_flip() {
        // theta = +90 is np.rot90: out[i][j] = in[j][n-1-i].
        let (n, c) = (16, 3);
        let img = test_image(n, n, c);
        let mut out = vec![0.0; img.len()];
        let p = TransformParams {
            theta_deg: 90.0,
            ..TransformParams::identity()
        };
        apply_transform(&img, n, n, c, &p, &mut out).unwrap();
        for i in 2..n - 2 {
            for j in 2..n - 2 {
                for k in 0..c {
                    let want = img[(j * n + (n - 1 - i)) * c + k];
                    let got = out[(i * n + j) * c + k];
                    assert!((got - want).abs() < 1e-5, "({i},{j},{k}): {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn positive_tx_moves_content_to_lower_columns() {
        let (h, w) = (6, 8);
        let mut img = vec![0.0f32; h * w];
        img[3 * w + 5] = 1.0;
        let mut out = vec![0.0; img.len()];
        let p = TransformParams {
            tx: 2.0,
            ..TransformParams::identity()
        };
        apply_transform(&img, h, w, 1, &p, &mut out).unwrap();
        assert_eq!(out[3 * w + 3], 1.0);
        assert_eq!(out.iter().sum::<f32>(), 1.0);
    }

    #[test]
    fn validate_names_the_parameter() {
        assert!(AugmentConfig::sdss_cnn().validate().is_ok());
        assert!(AugmentConfig::none().validate().is_ok());
        let cases: [(AugmentConfig, &str); 5] = [
            (
                AugmentConfig {
                    rotation_range_deg: -1.0,
                    ..AugmentConfig::none()
                },
                "rotation_range_deg",
            ),
            (
                AugmentConfig {
                    width_shift_range: f64::NAN,
                    ..AugmentConfig::none()
                },
                "width_shift_range",
            ),
            (
                AugmentConfig {
                    height_shift_range: f64::INFINITY,
                    ..AugmentConfig::none()
                },
                "height_shift_range",
            ),
            (
                AugmentConfig {
                    zoom_range: [1.2, 0.8],
                    ..AugmentConfig::none()
                },
                "zoom_range",
            ),
            (
                AugmentConfig {
                    zoom_range: [0.0, 1.0],
                    ..AugmentConfig::none()
                },
                "zoom_range",
            ),
        ];
        for (cfg, name) in cases {
            let err = cfg.validate().unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn batch_is_deterministic_per_seed() {
        let (n, h, w, c) = (4, 12, 12, 3);
        let one = test_image(h, w, c);
        let mut a: Vec<f32> = (0..n).flat_map(|_| one.clone()).collect();
        let mut b = a.clone();
        let seeds = [1u64, 2, 3, 4];
        let pa = augment_batch(&AugmentConfig::sdss_cnn(), &mut a, n, h, w, c, &seeds).unwrap();
        let pb = augment_batch(&AugmentConfig::sdss_cnn(), &mut b, n, h, w, c, &seeds).unwrap();
        assert_eq!(pa, pb);
        assert_eq!(a, b);
        // Each image equals a direct apply_transform with the same parameters.
        let mut out = vec![0.0; one.len()];
        apply_transform(&one, h, w, c, &pa[2], &mut out).unwrap();
        assert_eq!(&a[2 * one.len()..3 * one.len()], &out[..]);
        assert!(
            augment_batch(&AugmentConfig::sdss_cnn(), &mut a, n, h, w, c, &seeds[..3]).is_err()
        );
    }
}
