//! The Lupton et al. (2004) asinh colour composite, as `astropy.visualization.make_lupton_rgb` makes it.
//!
//! Lupton, Blanton, Fekete, Hogg, O'Mullane, Szalay & Wherry (2004, PASP 116, 133) stretch the *total*
//! intensity `I = (r + g + b) / 3` with an asinh and scale every band by the same factor `f(I) / I`,
//! so that a pixel's colour does not change with its brightness, and where the brightest band would
//! pass white all three are divided by it (colour-preserving saturation). This is the scheme of the
//! SDSS colour JPEGs, and of the synthetic galaxies of [`crate::synthetic`].
//!
//! [`make_lupton_rgb`] follows astropy 8's `make_lupton_rgb(image_r, image_g, image_b, minimum,
//! stretch, Q)` step by step, in `f64`, as astropy computes it for `float64` inputs:
//!
//! 1. `x -= minimum` per band;
//! 2. `I = (r + g + b) / 3`; `f(I) = asinh(I · Q / stretch) · 0.1 / asinh(0.1 · Q)`;
//! 3. `x *= f(I) / I` (0 where `I <= 0`), then `x = max(x, 0)`;
//! 4. where `m = max(r, g, b) > 1`, `x = x / m`;
//! 5. `uint8(x · 255)` (truncated, as numpy's `astype(np.uint8)`).
//!
//! `asinh` is fdlibm's algorithm (the one glibc, and so numpy on Linux without SVML, uses), built on
//! the platform's `ln` / `ln_1p`. `tests/fits.rs` checks the result against astropy's output for a
//! fixture (`tests/fixtures/fits/`): equal, or within 1 level, on every pixel.

use crate::preprocess::Rgb8Image;

/// Parameters of the Lupton composite (astropy's `minimum`, `stretch` and `Q`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LuptonParams {
    /// Value mapped to black, per band (R, G, B). astropy's `minimum`.
    pub minimum: [f64; 3],
    /// The linear stretch: intensities up to about this are in the near-linear part. Must be > 0.
    pub stretch: f64,
    /// The asinh softening parameter. astropy replaces `|Q| < 2⁻²³` by 0.1 and caps it at 10¹⁰; so do
    /// we.
    pub q: f64,
}

impl Default for LuptonParams {
    /// `minimum = 0, stretch = 5, Q = 8`: astropy's defaults (for `minimum`, the value its docs
    /// recommend for sky-subtracted images).
    fn default() -> Self {
        LuptonParams {
            minimum: [0.0; 3],
            stretch: 5.0,
            q: 8.0,
        }
    }
}

/// fdlibm's `asinh` (`s_asinh.c`), as glibc computes it.
pub(crate) fn asinh(x: f64) -> f64 {
    const LN2: f64 = std::f64::consts::LN_2;
    if !x.is_finite() {
        return x;
    }
    let ax = x.abs();
    let w = if ax < 2f64.powi(-28) {
        return x;
    } else if ax > 2f64.powi(28) {
        ax.ln() + LN2
    } else if ax > 2.0 {
        (2.0 * ax + 1.0 / ((x * x + 1.0).sqrt() + ax)).ln()
    } else {
        let t = x * x;
        (ax + t / (1.0 + (1.0 + t).sqrt())).ln_1p()
    };
    w.copysign(x)
}

/// The 8-bit Lupton composite of three bands of `width × height` pixels each (row-major, same
/// order in all three), as `make_lupton_rgb(red, green, blue, ...)`; `None` if the bands' lengths
/// differ from `width × height`.
///
/// Non-finite inputs give black (astropy's result for them is undefined); callers replace them first.
pub fn make_lupton_rgb(
    red: &[f32],
    green: &[f32],
    blue: &[f32],
    width: u32,
    height: u32,
    params: &LuptonParams,
) -> Option<Rgb8Image> {
    let n = (width as usize).checked_mul(height as usize)?;
    if red.len() != n || green.len() != n || blue.len() != n {
        return None;
    }
    let epsilon = 1.0 / 2f64.powi(23);
    let q = if params.q.abs() < epsilon {
        0.1
    } else {
        params.q.min(1e10)
    };
    let frac = 0.1;
    let slope = frac / asinh(frac * q);
    let soften = q / params.stretch;
    let mut pixels = Vec::with_capacity(n * 3);
    for i in 0..n {
        let mut x = [
            f64::from(red[i]) - params.minimum[0],
            f64::from(green[i]) - params.minimum[1],
            f64::from(blue[i]) - params.minimum[2],
        ];
        let intensity = (x[0] + x[1] + x[2]) / 3.0;
        let stretched = asinh(intensity * soften) * slope;
        let factor = if intensity <= 0.0 {
            0.0
        } else {
            stretched / intensity
        };
        for v in &mut x {
            *v *= factor;
            // NaN (from a non-finite input) becomes 0 here, as `max` takes the non-NaN operand.
            *v = v.max(0.0);
        }
        let max = x[0].max(x[1]).max(x[2]);
        if max > 1.0 {
            for v in &mut x {
                *v = (*v * 1.0) / max;
            }
        }
        // `as` truncates toward zero and saturates, as numpy's astype(uint8) does on [0, 255].
        pixels.extend(x.iter().map(|&v| (v * 255.0) as u8));
    }
    Some(Rgb8Image {
        width,
        height,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asinh_matches_the_definition() {
        for &x in &[0.0, 0.01, 0.3, 1.0, 1.9, 2.0, 2.5, 10.0, 1e5, 3e8, 1e300] {
            // The textbook formula (it loses a few digits near 0 to cancellation).
            let exact = (x + (x * x + 1.0f64).sqrt()).ln();
            let ours = asinh(x);
            assert!(
                (ours - exact).abs() <= 1e-12 * exact.abs() || x > 1e150,
                "{x}: {ours} vs {exact}"
            );
            assert_eq!(asinh(-x), -ours);
        }
        // Tiny arguments: asinh(x) = x to double precision.
        assert_eq!(asinh(1e-300), 1e-300);
        assert_eq!(asinh(1e-9), 1e-9);
        assert!((asinh(1e300) - 691.4686750787736).abs() < 1e-9);
    }

    #[test]
    fn black_grey_and_saturated_pixels() {
        let p = LuptonParams::default();
        // Zero, negative, a faint grey and a very bright red pixel.
        let r = [0.0, -1.0, 0.5, 1e6];
        let g = [0.0, -1.0, 0.5, 1.0];
        let b = [0.0, -1.0, 0.5, 0.0];
        let img = make_lupton_rgb(&r, &g, &b, 4, 1, &p).unwrap();
        assert_eq!(&img.pixels[0..3], &[0, 0, 0]);
        assert_eq!(&img.pixels[3..6], &[0, 0, 0]);
        // Grey stays grey: asinh(0.5 * 1.6) * 0.1 / asinh(0.8) / 0.5 * 0.5 = 0.1 -> 25.5 -> 25.
        assert_eq!(&img.pixels[6..9], &[25, 25, 25]);
        // Saturated: red is the largest band and becomes 255, the others keep their ratio to it.
        assert_eq!(img.pixels[9], 255);
        assert_eq!(img.pixels[11], 0);
        assert!(make_lupton_rgb(&r, &g, &b[..3], 4, 1, &p).is_none());
    }
}
