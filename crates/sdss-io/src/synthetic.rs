//! Seeded synthetic SDSS-like colour cutouts with known parameters.
//!
//! Each galaxy is a Sérsic bulge plus an exponential disk (with spiral arms for spirals and a dust lane
//! for edge-on disks), seen with an ellipticity and a position angle, rendered in the SDSS g, r and i
//! bands with colours typical of its class (red early types, blue late types; bulges redder than
//! disks), blurred by a Gaussian PSF, given sky and source noise, optionally joined by a foreground
//! star, and turned into an 8-bit RGB image (i → R, r → G, g → B) with the asinh stretch of Lupton et
//! al. (2004) that SDSS colour images use.
//!
//! Everything is drawn from a ChaCha8 generator seeded by `(seed, index)`, so galaxy `i` of a set is
//! the same whatever the set's size, and generation is parallel yet deterministic.
//! Every galaxy's parameters go to a CSV ([`write_params_csv`]) so that clustering quality can be
//! measured against known truth.

use std::f64::consts::PI;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::atomic::write_atomic;
use crate::error::{IoError, Result};
use crate::preprocess::Rgb8Image;
use crate::stack::{csv_field, read_csv};

/// Morphological class of a synthetic galaxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GalaxyClass {
    /// Early type: bulge-dominated (B/T ≥ 0.85), de Vaucouleurs-like Sérsic index, red.
    Elliptical,
    /// S0: bulge plus a smooth red disk, no arms.
    Lenticular,
    /// Late type seen at low to moderate inclination: disk-dominated, blue, with spiral arms.
    Spiral,
    /// Late-type disk seen nearly edge-on (ellipticity ≥ 0.7), blue, with a dust lane.
    EdgeOn,
}

impl GalaxyClass {
    /// All classes, in the order of their integer labels.
    pub const ALL: [GalaxyClass; 4] = [
        GalaxyClass::Elliptical,
        GalaxyClass::Lenticular,
        GalaxyClass::Spiral,
        GalaxyClass::EdgeOn,
    ];

    /// The name written to the CSV.
    pub fn name(self) -> &'static str {
        match self {
            GalaxyClass::Elliptical => "elliptical",
            GalaxyClass::Lenticular => "lenticular",
            GalaxyClass::Spiral => "spiral",
            GalaxyClass::EdgeOn => "edge_on",
        }
    }

    /// Integer label 0..4 (position in [`GalaxyClass::ALL`]), for comparing with cluster labels.
    pub fn label(self) -> usize {
        self as usize
    }

    /// Parses a CSV name.
    pub fn from_name(name: &str) -> Option<Self> {
        GalaxyClass::ALL.into_iter().find(|c| c.name() == name)
    }

    /// True for early types (elliptical, lenticular).
    pub fn is_early_type(self) -> bool {
        matches!(self, GalaxyClass::Elliptical | GalaxyClass::Lenticular)
    }
}

impl std::fmt::Display for GalaxyClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A foreground star: a point source blurred by the PSF.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Star {
    /// Column of its centre, pixels from the left edge.
    pub x: f64,
    /// Row of its centre, pixels from the top edge.
    pub y: f64,
    /// Total flux in the r band, in units of the sky noise σ per pixel.
    pub flux: f64,
    /// g − r colour (magnitudes).
    pub g_r: f64,
}

/// The true parameters of one synthetic galaxy (one row of the parameters CSV).
#[derive(Debug, Clone, PartialEq)]
pub struct GalaxyParams {
    /// Galaxy id, also the image's file stem (`gal0000`, …).
    pub id: String,
    /// Morphological class.
    pub class: GalaxyClass,
    /// Ellipticity `1 − b/a` of both components.
    pub ellipticity: f64,
    /// Position angle of the major axis in degrees, from image up (north) towards image left (east),
    /// in [0, 180).
    pub position_angle_deg: f64,
    /// Half-light radius of the disk in pixels (of the bulge for a disk-less galaxy): the galaxy's size.
    pub size_px: f64,
    /// Bulge-to-total flux ratio in the r band.
    pub bulge_fraction: f64,
    /// Sérsic index of the bulge.
    pub sersic_index: f64,
    /// Half-light radius of the bulge in pixels.
    pub bulge_radius_px: f64,
    /// Total r-band flux of the galaxy in units of the sky noise σ per pixel.
    pub flux: f64,
    /// g − r colour of the bulge (magnitudes).
    pub bulge_g_r: f64,
    /// g − r colour of the disk (magnitudes).
    pub disk_g_r: f64,
    /// Number of spiral arms (0: none).
    pub arms: u32,
    /// Fractional amplitude of the spiral arm modulation of the disk.
    pub arm_strength: f64,
    /// Pitch angle of the spiral arms in degrees.
    pub arm_pitch_deg: f64,
    /// Centre column in pixels.
    pub center_x: f64,
    /// Centre row in pixels.
    pub center_y: f64,
    /// Full width at half maximum of the Gaussian PSF in pixels.
    pub psf_fwhm_px: f64,
    /// The optional foreground star.
    pub star: Option<Star>,
    /// Seed of the per-galaxy random stream (which also drives the noise).
    pub seed: u64,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// Number of galaxies.
    pub count: usize,
    /// Master seed.
    pub seed: u64,
    /// Side of the square cutouts in pixels (SDSS / Galaxy Zoo cutouts: 424).
    pub size: u32,
    /// Probability that a foreground star sits in the cutout.
    pub star_probability: f64,
    /// Relative frequency of each class, in the order of [`GalaxyClass::ALL`].
    pub class_weights: [f64; 4],
    /// JPEG quality (1–100) used by [`write_galaxy_set`].
    pub jpeg_quality: u8,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            count: 100,
            seed: 2020,
            size: 424,
            star_probability: 0.25,
            class_weights: [1.0; 4],
            jpeg_quality: 75,
        }
    }
}

impl SyntheticConfig {
    fn validate(&self) -> Result<()> {
        let bad = |name, reason: &str| {
            Err(IoError::InvalidOption {
                name,
                reason: reason.to_owned(),
            })
        };
        if self.size < 32 {
            return bad("size", "cutouts must be at least 32 pixels wide");
        }
        if !(0.0..=1.0).contains(&self.star_probability) {
            return bad("star_probability", "must lie in [0, 1]");
        }
        if self
            .class_weights
            .iter()
            .any(|w| !w.is_finite() || *w < 0.0)
            || self.class_weights.iter().sum::<f64>() <= 0.0
        {
            return bad("class_weights", "must be non-negative with a positive sum");
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return bad("jpeg_quality", "must lie in 1..=100");
        }
        Ok(())
    }
}

/// Sky noise σ per pixel per band: the unit of all fluxes.
const SKY_SIGMA: f64 = 1.0;
/// Asinh softening: intensities below about this many σ are mapped linearly, above it logarithmically.
const ASINH_SOFTENING: f64 = 20.0;
/// Intensity (in σ) that maps to full scale; with the softening it puts the sky noise at about two
/// 8-bit levels, as in SDSS colour cutouts.
const ASINH_MAXIMUM: f64 = 5000.0;
/// Colour saturation boost about each pixel's grey level, as SDSS colour images are rather saturated.
const SATURATION: f64 = 1.8;
/// Band weights (g, r, i) that make a g − r = 0.6, r − i = 0.3 source look grey, so that late types
/// come out blue and early types orange as in SDSS colour images.
const BAND_WEIGHTS: [f64; 3] = [1.738, 1.0, 0.759];

/// A ChaCha8 stream for galaxy `index` of a set with master `seed`.
fn galaxy_seed(seed: u64, index: usize) -> u64 {
    // SplitMix64 of (seed, index): well-mixed, distinct seeds for neighbouring indices.
    let mut z = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Standard normal deviate (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}

/// Draws the parameters of galaxy `index` of the set described by `config`.
pub fn sample_params(config: &SyntheticConfig, index: usize) -> GalaxyParams {
    let seed = galaxy_seed(config.seed, index);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let total: f64 = config.class_weights.iter().sum();
    let mut pick = rng.random::<f64>() * total;
    let mut class = GalaxyClass::EdgeOn;
    for (c, w) in GalaxyClass::ALL.into_iter().zip(config.class_weights) {
        if pick < w {
            class = c;
            break;
        }
        pick -= w;
    }
    let side = f64::from(config.size);
    let scale = side / 424.0;
    let r = &mut rng;
    let (ellipticity, bulge_fraction, sersic_index, size_px, bulge_ratio, bulge_g_r, disk_g_r) =
        match class {
            GalaxyClass::Elliptical => (
                uniform(r, 0.0, 0.4),
                uniform(r, 0.85, 1.0),
                uniform(r, 3.0, 5.0),
                uniform(r, 20.0, 50.0),
                1.0,
                uniform(r, 0.72, 0.82),
                uniform(r, 0.70, 0.78),
            ),
            GalaxyClass::Lenticular => (
                uniform(r, 0.1, 0.6),
                uniform(r, 0.35, 0.7),
                uniform(r, 2.0, 4.0),
                uniform(r, 25.0, 55.0),
                uniform(r, 0.25, 0.45),
                uniform(r, 0.72, 0.82),
                uniform(r, 0.62, 0.74),
            ),
            GalaxyClass::Spiral => (
                uniform(r, 0.0, 0.55),
                uniform(r, 0.0, 0.3),
                uniform(r, 1.0, 2.5),
                uniform(r, 25.0, 60.0),
                uniform(r, 0.15, 0.3),
                uniform(r, 0.65, 0.8),
                uniform(r, 0.25, 0.45),
            ),
            GalaxyClass::EdgeOn => (
                uniform(r, 0.7, 0.82),
                uniform(r, 0.05, 0.3),
                uniform(r, 1.0, 2.5),
                uniform(r, 30.0, 65.0),
                uniform(r, 0.15, 0.3),
                uniform(r, 0.68, 0.8),
                uniform(r, 0.3, 0.5),
            ),
        };
    let (arms, arm_strength, arm_pitch_deg) = if class == GalaxyClass::Spiral {
        let arms = if r.random::<f64>() < 0.7 { 2 } else { 3 };
        (arms, uniform(r, 0.35, 0.75), uniform(r, 12.0, 28.0))
    } else {
        (0, 0.0, 0.0)
    };
    let size_px = size_px * scale;
    // Total flux such that the disk-equivalent central surface brightness is 600-1600 σ: bright,
    // well-resolved galaxies like the MaNGA targets of the original dataset.
    let flux = uniform(r, 600.0, 1600.0) * 2.0 * PI * (size_px / 1.678).powi(2);
    let position_angle_deg = uniform(r, 0.0, 180.0);
    let center_x = side / 2.0 + normal(r) * 2.0 * scale;
    let center_y = side / 2.0 + normal(r) * 2.0 * scale;
    let psf_fwhm_px = uniform(r, 2.5, 4.5) * scale;
    let star = if r.random::<f64>() < config.star_probability {
        // Keep stars away from the galaxy's core and the edge.
        let (mut x, mut y);
        loop {
            x = uniform(r, 0.08, 0.92) * side;
            y = uniform(r, 0.08, 0.92) * side;
            if ((x - center_x).powi(2) + (y - center_y).powi(2)).sqrt() > 2.5 * size_px {
                break;
            }
        }
        Some(Star {
            x,
            y,
            flux: uniform(r, 0.002, 0.05) * flux,
            g_r: uniform(r, 0.3, 1.2),
        })
    } else {
        None
    };
    GalaxyParams {
        id: format!("gal{index:04}"),
        class,
        ellipticity,
        position_angle_deg,
        size_px,
        bulge_fraction,
        sersic_index,
        bulge_radius_px: if class == GalaxyClass::Elliptical {
            size_px
        } else {
            size_px * bulge_ratio
        },
        flux,
        bulge_g_r,
        disk_g_r,
        arms,
        arm_strength,
        arm_pitch_deg,
        center_x,
        center_y,
        psf_fwhm_px,
        star,
        seed,
    }
}

/// Sérsic b_n (Ciotti & Bertin 1999 expansion), so that r_e encloses half the light.
fn sersic_b(n: f64) -> f64 {
    2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)
}

/// Flux ratios (g, r, i) relative to r for a g − r colour; r − i follows as about half of g − r.
fn band_ratios(g_r: f64) -> [f64; 3] {
    let r_i = 0.5 * g_r;
    [10f64.powf(-0.4 * g_r), 1.0, 10f64.powf(0.4 * r_i)]
}

/// Renders a galaxy's noise-free band images, PSF blur and noise into an 8-bit RGB cutout.
///
/// `size` is the cutout side in pixels; noise comes from a stream seeded by `params.seed`.
pub fn render(params: &GalaxyParams, size: u32) -> Rgb8Image {
    let side = size as usize;
    let n = side * side;
    // Per-component r-band surface brightness maps, then split into bands by colour.
    let mut bulge = vec![0f64; n];
    let mut disk = vec![0f64; n];
    let q = (1.0 - params.ellipticity).max(0.05);
    // Position angle from up towards left: the major axis points along (−sin θ, −cos θ) in (x, y).
    let theta = params.position_angle_deg.to_radians();
    let (major_x, major_y) = (-theta.sin(), -theta.cos());
    let bn = sersic_b(params.sersic_index);
    let inv_n = 1.0 / params.sersic_index;
    let disk_re = params.size_px;
    let disk_h = disk_re / 1.678; // exponential scale length from the half-light radius
    let pitch = params.arm_pitch_deg.to_radians().tan().max(1e-3);
    let dust = params.class == GalaxyClass::EdgeOn;
    // 3×3 sub-pixel sampling near the centre, where the Sérsic cusp varies within a pixel.
    const SUB: [f64; 3] = [-1.0 / 3.0, 0.0, 1.0 / 3.0];
    for y in 0..side {
        for x in 0..side {
            let dx0 = x as f64 + 0.5 - params.center_x;
            let dy0 = y as f64 + 0.5 - params.center_y;
            let near = dx0 * dx0 + dy0 * dy0 < (3.0 * params.bulge_radius_px.min(8.0)).powi(2);
            let offsets: &[f64] = if near { &SUB } else { &[0.0] };
            let (mut b_sum, mut d_sum) = (0.0, 0.0);
            for &oy in offsets {
                for &ox in offsets {
                    let dx = dx0 + ox;
                    let dy = dy0 + oy;
                    let a = dx * major_x + dy * major_y; // along the major axis
                    let b = -dx * major_y + dy * major_x; // along the minor axis
                    let r_ell = (a * a + (b / q) * (b / q)).sqrt();
                    b_sum += (-bn * ((r_ell / params.bulge_radius_px).powf(inv_n) - 1.0)).exp();
                    let mut d = (-r_ell / disk_h).exp();
                    if params.arms > 0 {
                        // Logarithmic spiral: phase m(φ − ln(r)/tan(pitch)), in the disk plane.
                        let phi = (b / q).atan2(a);
                        let rr = r_ell.max(0.5);
                        let phase = f64::from(params.arms) * (phi - (rr / disk_h).ln() / pitch);
                        // Arms fade in the bulge region.
                        let w = 1.0 - (-(rr / (1.5 * params.bulge_radius_px)).powi(2)).exp();
                        d *= 1.0 + params.arm_strength * w * phase.cos();
                    }
                    if dust {
                        let lane = 0.6 * (-(b / (0.12 * disk_re * q.max(0.15))).powi(2)).exp();
                        d *= 1.0 - lane * (1.0 - (-(a / disk_re).powi(2)).exp()).max(0.3);
                    }
                    d_sum += d;
                }
            }
            let k = (offsets.len() * offsets.len()) as f64;
            bulge[y * side + x] = b_sum / k;
            disk[y * side + x] = d_sum / k;
        }
    }
    let bulge_total: f64 = bulge.iter().sum();
    let disk_total: f64 = disk.iter().sum();
    let b_scale = if bulge_total > 0.0 {
        params.flux * params.bulge_fraction / bulge_total
    } else {
        0.0
    };
    let d_scale = if disk_total > 0.0 {
        params.flux * (1.0 - params.bulge_fraction) / disk_total
    } else {
        0.0
    };
    let bulge_colour = band_ratios(params.bulge_g_r);
    let disk_colour = band_ratios(params.disk_g_r);
    let mut bands: [Vec<f64>; 3] = std::array::from_fn(|c| {
        bulge
            .iter()
            .zip(&disk)
            .map(|(&b, &d)| b * b_scale * bulge_colour[c] + d * d_scale * disk_colour[c])
            .collect()
    });
    let sigma = params.psf_fwhm_px / (2.0 * (2.0 * 2f64.ln()).sqrt());
    if let Some(star) = params.star {
        let colour = band_ratios(star.g_r);
        for (c, band) in bands.iter_mut().enumerate() {
            // Deposit the star on the nearest pixel; the PSF blur spreads it.
            let (sx, sy) = (star.x.floor() as usize, star.y.floor() as usize);
            if sx < side && sy < side {
                band[sy * side + sx] += star.flux * colour[c];
            }
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed ^ 0x05EE_D0FA_015E);
    for (band, weight) in bands.iter_mut().zip(BAND_WEIGHTS) {
        gaussian_blur(band, side, sigma);
        // Noise is added in display units (after the band weights) so that the sky stays grey.
        for v in band.iter_mut() {
            // Sky noise plus the source's own photon noise (gain of 4 electrons per unit).
            *v *= weight;
            let var = SKY_SIGMA * SKY_SIGMA + v.max(0.0) / 4.0;
            *v += var.sqrt() * normal(&mut rng);
        }
    }
    asinh_rgb(&bands, side)
}

/// Separable Gaussian blur with edge clamping.
fn gaussian_blur(img: &mut [f64], side: usize, sigma: f64) {
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f64> = (-radius..=radius)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let norm: f64 = kernel.iter().sum();
    let kernel: Vec<f64> = kernel.iter().map(|k| k / norm).collect();
    let last = side as isize - 1;
    let mut tmp = vec![0f64; img.len()];
    for y in 0..side {
        let row = &img[y * side..(y + 1) * side];
        for x in 0..side {
            let mut s = 0.0;
            for (k, w) in kernel.iter().enumerate() {
                let xx = (x as isize + k as isize - radius).clamp(0, last) as usize;
                s += w * row[xx];
            }
            tmp[y * side + x] = s;
        }
    }
    for y in 0..side {
        for x in 0..side {
            let mut s = 0.0;
            for (k, w) in kernel.iter().enumerate() {
                let yy = (y as isize + k as isize - radius).clamp(0, last) as usize;
                s += w * tmp[yy * side + x];
            }
            img[y * side + x] = s;
        }
    }
}

/// Lupton et al. (2004) asinh stretch of weighted (g, r, i) into 8-bit (R, G, B) = (i, r, g), colour-preserving.
fn asinh_rgb(bands: &[Vec<f64>; 3], side: usize) -> Rgb8Image {
    let mut pixels = Vec::with_capacity(side * side * 3);
    for ((&g, &r), &i) in bands[0].iter().zip(&bands[1]).zip(&bands[2]) {
        let total = (g + r + i) / 3.0;
        // Scale all bands by the same f(I) = asinh(I/β) / (asinh(max/β) I), preserving colour.
        let norm = (ASINH_MAXIMUM / ASINH_SOFTENING).asinh();
        let f = if total > 1e-9 {
            (total / ASINH_SOFTENING).asinh() / (norm * total)
        } else {
            1.0 / (norm * ASINH_SOFTENING)
        };
        let grey = total * f;
        let mut rgb = [i * f, r * f, g * f].map(|v| grey + SATURATION * (v - grey));
        let max = rgb.iter().cloned().fold(0.0, f64::max);
        if max > 1.0 {
            // Saturated: scale all three down together so the hue survives.
            for v in rgb.iter_mut() {
                *v /= max;
            }
        }
        for v in rgb {
            pixels.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    Rgb8Image {
        width: side as u32,
        height: side as u32,
        pixels,
    }
}

/// Draws and renders every galaxy of the set, in parallel.
pub fn generate(config: &SyntheticConfig) -> Result<Vec<(GalaxyParams, Rgb8Image)>> {
    config.validate()?;
    Ok((0..config.count)
        .into_par_iter()
        .map(|i| {
            let params = sample_params(config, i);
            let image = render(&params, config.size);
            (params, image)
        })
        .collect())
}

/// Encodes an 8-bit RGB image as JPEG of the given quality.
pub fn encode_jpeg(image: &Rgb8Image, quality: u8) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode(
            &image.pixels,
            image.width,
            image.height,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(std::io::Error::other)?;
    Ok(out)
}

/// Name of the parameters CSV written by [`write_galaxy_set`].
pub const PARAMS_CSV: &str = "galaxies.csv";

/// Generates the set and writes `<id>.jpg` for each galaxy plus [`PARAMS_CSV`] into `dir` (created if
/// missing), every file atomically. Returns the parameters.
pub fn write_galaxy_set(
    dir: impl AsRef<Path>,
    config: &SyntheticConfig,
) -> Result<Vec<GalaxyParams>> {
    let dir = dir.as_ref();
    config.validate()?;
    std::fs::create_dir_all(dir).map_err(|e| IoError::io(dir, e))?;
    let params: Vec<GalaxyParams> = (0..config.count)
        .into_par_iter()
        .map(|i| -> Result<GalaxyParams> {
            let params = sample_params(config, i);
            let image = render(&params, config.size);
            let path = dir.join(format!("{}.jpg", params.id));
            let jpeg =
                encode_jpeg(&image, config.jpeg_quality).map_err(|e| IoError::io(&path, e))?;
            crate::atomic::write_bytes_atomic(&path, &jpeg)?;
            Ok(params)
        })
        .collect::<Result<_>>()?;
    write_params_csv(dir.join(PARAMS_CSV), &params)?;
    Ok(params)
}

/// Columns of the parameters CSV, in order.
pub const PARAMS_COLUMNS: [&str; 23] = [
    "id",
    "class",
    "label",
    "ellipticity",
    "position_angle_deg",
    "size_px",
    "bulge_fraction",
    "sersic_index",
    "bulge_radius_px",
    "flux",
    "bulge_g_r",
    "disk_g_r",
    "arms",
    "arm_strength",
    "arm_pitch_deg",
    "center_x",
    "center_y",
    "psf_fwhm_px",
    "star",
    "star_x",
    "star_y",
    "star_flux",
    "seed",
];

/// Writes galaxy parameters as CSV (columns [`PARAMS_COLUMNS`]), atomically. Floats are written with
/// enough digits to read back exactly.
pub fn write_params_csv(path: impl AsRef<Path>, params: &[GalaxyParams]) -> Result<()> {
    write_atomic(path, |w| {
        writeln!(w, "{}", PARAMS_COLUMNS.join(","))?;
        for p in params {
            let (star, sx, sy, sf) = match p.star {
                Some(s) => (1, s.x, s.y, s.flux),
                None => (0, 0.0, 0.0, 0.0),
            };
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&p.id),
                p.class,
                p.class.label(),
                p.ellipticity,
                p.position_angle_deg,
                p.size_px,
                p.bulge_fraction,
                p.sersic_index,
                p.bulge_radius_px,
                p.flux,
                p.bulge_g_r,
                p.disk_g_r,
                p.arms,
                p.arm_strength,
                p.arm_pitch_deg,
                p.center_x,
                p.center_y,
                p.psf_fwhm_px,
                star,
                sx,
                sy,
                sf,
                p.seed
            )?;
        }
        Ok(())
    })
}

/// Reads a parameters CSV written by [`write_params_csv`] (columns may come in any order; the
/// star's colour is not stored and reads back as 0).
pub fn read_params_csv(path: impl AsRef<Path>) -> Result<Vec<GalaxyParams>> {
    let path = path.as_ref();
    let rows = read_csv(path)?;
    let mut rows = rows.into_iter();
    let csv_err = |line, reason: String| IoError::Csv {
        path: path.to_owned(),
        line,
        reason,
    };
    let (_, header) = rows
        .next()
        .ok_or_else(|| csv_err(0, "empty file".to_owned()))?;
    let mut cols = [0usize; PARAMS_COLUMNS.len()];
    for (slot, name) in cols.iter_mut().zip(PARAMS_COLUMNS) {
        *slot = header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| csv_err(1, format!("missing column `{name}`")))?;
    }
    rows.map(|(line, f)| {
        let get = |k: usize| -> Result<&str> {
            f.get(cols[k])
                .map(String::as_str)
                .ok_or_else(|| csv_err(line, format!("missing field `{}`", PARAMS_COLUMNS[k])))
        };
        let num = |k: usize| -> Result<f64> {
            let s = get(k)?;
            s.parse().map_err(|_| {
                csv_err(
                    line,
                    format!("`{}`: {s:?} is not a number", PARAMS_COLUMNS[k]),
                )
            })
        };
        let int = |k: usize| -> Result<u64> {
            let s = get(k)?;
            s.parse().map_err(|_| {
                csv_err(
                    line,
                    format!("`{}`: {s:?} is not an integer", PARAMS_COLUMNS[k]),
                )
            })
        };
        let class_name = get(1)?;
        let class = GalaxyClass::from_name(class_name)
            .ok_or_else(|| csv_err(line, format!("unknown class {class_name:?}")))?;
        let star = match int(18)? {
            0 => None,
            _ => Some(Star {
                x: num(19)?,
                y: num(20)?,
                flux: num(21)?,
                g_r: 0.0,
            }),
        };
        Ok(GalaxyParams {
            id: get(0)?.to_owned(),
            class,
            ellipticity: num(3)?,
            position_angle_deg: num(4)?,
            size_px: num(5)?,
            bulge_fraction: num(6)?,
            sersic_index: num(7)?,
            bulge_radius_px: num(8)?,
            flux: num(9)?,
            bulge_g_r: num(10)?,
            disk_g_r: num(11)?,
            arms: u32::try_from(int(12)?).map_err(|e| csv_err(line, format!("`arms`: {e}")))?,
            arm_strength: num(13)?,
            arm_pitch_deg: num(14)?,
            center_x: num(15)?,
            center_y: num(16)?,
            psf_fwhm_px: num(17)?,
            star,
            seed: int(22)?,
        })
    })
    .collect()
}

/// The folder of the committed synthetic set, relative to the workspace root.
pub const FIXTURE_DIR: &str = "fixtures/galaxies";

/// The configuration of the committed set in [`FIXTURE_DIR`] (`cargo xtask gen-fixtures`).
pub fn fixture_config() -> SyntheticConfig {
    // 200 images at quality 70 take about 1.9 MB.
    SyntheticConfig {
        count: 200,
        seed: 2020,
        jpeg_quality: 70,
        ..SyntheticConfig::default()
    }
}

/// Path of the committed synthetic set given the workspace root.
pub fn fixture_dir(workspace_root: impl AsRef<Path>) -> PathBuf {
    workspace_root.as_ref().join(FIXTURE_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SyntheticConfig {
        SyntheticConfig {
            count: 8,
            seed: 11,
            size: 96,
            star_probability: 0.5,
            ..SyntheticConfig::default()
        }
    }

    #[test]
    fn generation_is_deterministic_and_independent_of_count() {
        let a = generate(&small()).unwrap();
        let b = generate(&SyntheticConfig {
            count: 3,
            ..small()
        })
        .unwrap();
        for k in 0..3 {
            assert_eq!(a[k].0, b[k].0);
            assert_eq!(a[k].1, b[k].1);
        }
        let c = generate(&SyntheticConfig {
            seed: 12,
            ..small()
        })
        .unwrap();
        assert_ne!(a[0].1, c[0].1);
    }

    #[test]
    fn classes_have_their_colours_and_shapes() {
        let config = SyntheticConfig {
            count: 200,
            ..SyntheticConfig::default()
        };
        let params: Vec<_> = (0..config.count)
            .map(|i| sample_params(&config, i))
            .collect();
        for c in GalaxyClass::ALL {
            assert!(params.iter().any(|p| p.class == c), "class {c} never drawn");
        }
        for p in &params {
            assert!((0.0..180.0).contains(&p.position_angle_deg));
            match p.class {
                GalaxyClass::Elliptical => assert!(p.bulge_fraction >= 0.85 && p.disk_g_r > 0.65),
                GalaxyClass::Spiral => assert!(p.arms > 0 && p.disk_g_r < 0.5),
                GalaxyClass::EdgeOn => assert!(p.ellipticity >= 0.7),
                GalaxyClass::Lenticular => assert_eq!(p.arms, 0),
            }
        }
    }

    #[test]
    fn early_types_render_redder_than_late_types() {
        let config = SyntheticConfig {
            count: 1,
            size: 128,
            star_probability: 0.0,
            ..SyntheticConfig::default()
        };
        let mut p = sample_params(&config, 0);
        let mut red_minus_blue = |class, bulge_fraction, disk_g_r| {
            p.class = class;
            p.bulge_fraction = bulge_fraction;
            p.bulge_g_r = 0.78;
            p.disk_g_r = disk_g_r;
            p.arms = 0;
            let img = render(&p, 128);
            // The central 32×32 pixels, where the galaxy dominates the sky.
            let (mut r, mut b) = (0f64, 0f64);
            for y in 48..80 {
                for x in 48..80 {
                    r += f64::from(img.pixels[(y * 128 + x) * 3]);
                    b += f64::from(img.pixels[(y * 128 + x) * 3 + 2]);
                }
            }
            r - b
        };
        let early = red_minus_blue(GalaxyClass::Elliptical, 0.95, 0.75);
        let late = red_minus_blue(GalaxyClass::Spiral, 0.1, 0.3);
        assert!(early > 0.0 && late < 0.0, "early {early}, late {late}");
    }

    #[test]
    fn galaxy_is_centred_and_brighter_than_the_corners() {
        let config = SyntheticConfig {
            star_probability: 0.0,
            ..small()
        };
        let (_, img) = &generate(&config).unwrap()[0];
        let side = img.width as usize;
        let lum = |x: usize, y: usize| -> u32 {
            img.pixels[(y * side + x) * 3..(y * side + x) * 3 + 3]
                .iter()
                .map(|&v| u32::from(v))
                .sum()
        };
        assert!(lum(side / 2, side / 2) > 3 * lum(2, 2).max(10));
    }

    #[test]
    fn params_csv_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let config = small();
        let params: Vec<_> = (0..config.count)
            .map(|i| sample_params(&config, i))
            .collect();
        let path = dir.path().join("p.csv");
        write_params_csv(&path, &params).unwrap();
        let back = read_params_csv(&path).unwrap();
        assert_eq!(back.len(), params.len());
        for (a, b) in params.iter().zip(&back) {
            let strip = |p: &GalaxyParams| GalaxyParams {
                star: p.star.map(|s| Star { g_r: 0.0, ..s }),
                ..p.clone()
            };
            assert_eq!(strip(a), *b);
        }
        assert_eq!(crate::stack::read_ids_csv(&path).unwrap()[0], "gal0000");
    }

    #[test]
    fn invalid_config_is_refused() {
        let err = generate(&SyntheticConfig {
            star_probability: 2.0,
            ..small()
        })
        .unwrap_err();
        assert!(err.to_string().contains("star_probability"), "{err}");
    }
}
