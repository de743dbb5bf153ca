//! Decoding and preprocessing one galaxy image the way the original Python project did.
//!
//! The original read each cutout with Pillow, `Image.open(p).resize((80, 80))`, and divided by 255.
//! Pillow's default resize filter (since Pillow 7) is its bicubic convolution: the Keys cubic with
//! a = -0.5 (Catmull-Rom), its support widened by the scale factor when shrinking so that it
//! antialiases, applied horizontally then vertically with the intermediate rounded to 8 bits.
//! `fast_image_resize`'s `Convolution(CatmullRom)` implements that same scheme (with SIMD), so on the
//! same decoded pixels our output equals Pillow's; the JPEG decoders (zune-jpeg here, libjpeg-turbo in
//! Pillow) differ by a level or two on some pixels. See the crate README for the measured figures.

use std::path::Path;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageFormat};

use crate::error::{ImageProblem, IoError, Result};

/// Default output size of the original project: 80 × 80 pixels.
pub const DEFAULT_SIZE: (u32, u32) = (80, 80);

/// Default largest image accepted, in pixels: 8192 × 8192 (67,108,864), 370 times an SDSS 424 × 424
/// cutout.
///
/// A PNG or JPEG header can claim any size up to 2³² × 2³² pixels in a few bytes (a decompression bomb),
/// so the claimed size is checked against this before any pixel buffer is allocated. At the limit the
/// largest decoded buffer (16-bit RGBA) is 512 MiB. Pillow's own guard (`Image.MAX_IMAGE_PIXELS`) errors
/// at about 179 million pixels; ours is lower because galaxy cutouts are small and several are decoded
/// at once. Raise it with [`Preprocess::max_pixels`] (`--max-image-pixels` on the command line).
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 1 << 26;

/// A rectangle of `width` × `height` source pixels taken from the centre of each image before resizing.
///
/// The left edge is `(W - width) / 2` and the top edge `(H - height) / 2`, rounded down, as in
/// Pillow's `im.crop((left, top, left + width, top + height))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CentreCrop {
    /// Width of the crop in source pixels.
    pub width: u32,
    /// Height of the crop in source pixels.
    pub height: u32,
}

impl CentreCrop {
    /// A square crop of `side` × `side` pixels.
    pub fn square(side: u32) -> Self {
        CentreCrop {
            width: side,
            height: side,
        }
    }
}

/// How each image is turned into an `H × W × 3` array of values in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preprocess {
    /// Output `(width, height)` in pixels; `None` keeps each image's own size, in which case every
    /// image of a folder must have the same size. Default: [`DEFAULT_SIZE`].
    pub size: Option<(u32, u32)>,
    /// Optional centre crop applied before resizing. Default: none.
    pub centre_crop: Option<CentreCrop>,
    /// Largest image accepted, in pixels (width × height as the file's header claims it); larger ones
    /// are [`ImageProblem::TooManyPixels`] before anything is decoded. Default
    /// [`DEFAULT_MAX_IMAGE_PIXELS`].
    pub max_pixels: u64,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            size: Some(DEFAULT_SIZE),
            centre_crop: None,
            max_pixels: DEFAULT_MAX_IMAGE_PIXELS,
        }
    }
}

impl Preprocess {
    /// Resize every image to `width` × `height` (no crop).
    pub fn resize_to(width: u32, height: u32) -> Self {
        Preprocess {
            size: Some((width, height)),
            ..Preprocess::default()
        }
    }

    /// Checks the options themselves (zero sizes), naming the offending parameter.
    pub fn validate(&self) -> Result<()> {
        if let Some((w, h)) = self.size {
            if w == 0 || h == 0 {
                return Err(IoError::InvalidOption {
                    name: "size",
                    reason: format!("output size {w}x{h} has a zero side"),
                });
            }
        }
        if self.max_pixels == 0 {
            return Err(IoError::InvalidOption {
                name: "max_pixels",
                reason: "the largest image accepted must have at least 1 pixel".into(),
            });
        }
        if let Some(c) = self.centre_crop {
            if c.width == 0 || c.height == 0 {
                return Err(IoError::InvalidOption {
                    name: "centre_crop",
                    reason: format!("crop {}x{} has a zero side", c.width, c.height),
                });
            }
        }
        Ok(())
    }
}

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes, R G B per pixel, rows top to bottom.
    pub pixels: Vec<u8>,
}

/// What [`decode_rgb8`] had to convert to reach 8-bit RGB, for the warning it is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// The file was already 8-bit RGB.
    None,
    /// Grayscale replicated into R, G and B.
    Grayscale,
    /// Alpha channel dropped (as Pillow's `convert("RGB")` does).
    DroppedAlpha,
    /// 16 bits per sample reduced to 8 by keeping the high byte (as Pillow does when it opens a
    /// 16-bit RGB PNG); possibly also grayscale and/or with alpha.
    SixteenBit,
}

impl std::fmt::Display for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conversion::None => "none",
            Conversion::Grayscale => "grayscale converted to RGB",
            Conversion::DroppedAlpha => "alpha channel dropped",
            Conversion::SixteenBit => "16-bit samples reduced to 8-bit",
        })
    }
}

/// Reads and decodes a JPEG or PNG file into 8-bit RGB, reporting any conversion made; images above
/// [`DEFAULT_MAX_IMAGE_PIXELS`] are refused.
///
/// Truncated files are errors (Pillow refuses them too by default), even where the decoder itself
/// would pad the missing rows.
pub fn decode_rgb8(path: &Path) -> Result<(Rgb8Image, Conversion)> {
    decode_rgb8_limited(path, DEFAULT_MAX_IMAGE_PIXELS)
}

/// [`decode_rgb8`] with the largest accepted image given in pixels.
pub fn decode_rgb8_limited(path: &Path, max_pixels: u64) -> Result<(Rgb8Image, Conversion)> {
    let bytes = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
    decode_rgb8_from_bytes_limited(&bytes, max_pixels).map_err(|problem| IoError::Image {
        path: path.to_path_buf(),
        problem,
    })
}

/// Decodes JPEG or PNG bytes into 8-bit RGB (see [`decode_rgb8`]).
pub fn decode_rgb8_from_bytes(
    bytes: &[u8],
) -> std::result::Result<(Rgb8Image, Conversion), ImageProblem> {
    decode_rgb8_from_bytes_limited(bytes, DEFAULT_MAX_IMAGE_PIXELS)
}

/// Decodes JPEG or PNG bytes into 8-bit RGB, refusing images of more than `max_pixels` pixels before
/// allocating for them.
pub fn decode_rgb8_from_bytes_limited(
    bytes: &[u8],
    max_pixels: u64,
) -> std::result::Result<(Rgb8Image, Conversion), ImageProblem> {
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png)) => f,
        Ok(other) => {
            return Err(ImageProblem::UnsupportedFormat(format!("{other:?}")));
        }
        Err(_) if bytes.is_empty() => return Err(ImageProblem::Empty),
        Err(_) => return Err(ImageProblem::NotAnImage),
    };
    if format == ImageFormat::Jpeg && !jpeg_has_end_marker(bytes) {
        // zune-jpeg fills the missing part of a cut-off JPEG with grey and returns Ok; libjpeg (and so
        // Pillow) reports "premature end of data". A complete JPEG ends with the EOI marker FF D9.
        return Err(ImageProblem::Truncated);
    }
    // The header's claimed size first: reading it allocates nothing for pixels.
    let (width, height) = image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(classify_error)?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(ImageProblem::TooManyPixels {
            width,
            height,
            limit: max_pixels,
        });
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    // The decoders' own allocation cap, sized to what the checked size needs (16-bit RGBA at most,
    // plus room for a decoder's scratch rows), so a stream that lies after its header is still bounded.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    let image = reader.decode().map_err(classify_error)?;
    to_rgb8(image)
}

/// True if the EOI marker appears at the end of the data, allowing for a little trailing padding
/// (some writers append zero bytes or a newline after the marker).
fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    let tail_start = bytes.len().saturating_sub(64);
    bytes[tail_start..].windows(2).any(|w| w == [0xFF, 0xD9])
}

fn classify_error(e: image::ImageError) -> ImageProblem {
    use image::ImageError as E;
    match e {
        E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => ImageProblem::Truncated,
        E::Limits(l) => ImageProblem::TooLarge(l.to_string()),
        E::Unsupported(u) => ImageProblem::UnsupportedFormat(u.to_string()),
        other => {
            let message = other.to_string();
            // The PNG decoder reports a cut-off stream as a format error mentioning EOF.
            let lower = message.to_ascii_lowercase();
            if lower.contains("eof") || lower.contains("end of") || lower.contains("truncat") {
                ImageProblem::Truncated
            } else {
                ImageProblem::Corrupt(message)
            }
        }
    }
}

fn to_rgb8(image: DynamicImage) -> std::result::Result<(Rgb8Image, Conversion), ImageProblem> {
    let (width, height) = (image.width(), image.height());
    let n = width as usize * height as usize;
    let make = |pixels: Vec<u8>, conversion| {
        Ok((
            Rgb8Image {
                width,
                height,
                pixels,
            },
            conversion,
        ))
    };
    match image {
        DynamicImage::ImageRgb8(buf) => make(buf.into_raw(), Conversion::None),
        DynamicImage::ImageLuma8(buf) => {
            let mut out = Vec::with_capacity(n * 3);
            for &v in buf.as_raw() {
                out.extend_from_slice(&[v, v, v]);
            }
            make(out, Conversion::Grayscale)
        }
        DynamicImage::ImageLumaA8(buf) => {
            let mut out = Vec::with_capacity(n * 3);
            for la in buf.as_raw().chunks_exact(2) {
                out.extend_from_slice(&[la[0], la[0], la[0]]);
            }
            make(out, Conversion::DroppedAlpha)
        }
        DynamicImage::ImageRgba8(buf) => {
            let mut out = Vec::with_capacity(n * 3);
            for p in buf.as_raw().chunks_exact(4) {
                out.extend_from_slice(&p[..3]);
            }
            make(out, Conversion::DroppedAlpha)
        }
        DynamicImage::ImageRgb16(buf) => {
            let out = buf.as_raw().iter().map(|&v| (v >> 8) as u8).collect();
            make(out, Conversion::SixteenBit)
        }
        DynamicImage::ImageRgba16(buf) => {
            let mut out = Vec::with_capacity(n * 3);
            for p in buf.as_raw().chunks_exact(4) {
                out.extend(p[..3].iter().map(|&v| (v >> 8) as u8));
            }
            make(out, Conversion::SixteenBit)
        }
        DynamicImage::ImageLuma16(buf) => {
            let mut out = Vec::with_capacity(n * 3);
            for &v in buf.as_raw() {
                let b = (v >> 8) as u8;
                out.extend_from_slice(&[b, b, b]);
            }
            make(out, Conversion::SixteenBit)
        }
        DynamicImage::ImageLumaA16(buf) => {
            let mut out = Vec::with_capacity(n * 3);
            for la in buf.as_raw().chunks_exact(2) {
                let b = (la[0] >> 8) as u8;
                out.extend_from_slice(&[b, b, b]);
            }
            make(out, Conversion::SixteenBit)
        }
        other => Err(ImageProblem::UnsupportedFormat(format!(
            "pixel format {:?}",
            other.color()
        ))),
    }
}

/// Centre-crops (optionally) and resizes an 8-bit RGB image with Pillow's bicubic filter.
///
/// `resizer` holds scratch buffers; reuse one per thread.
pub fn crop_and_resize(
    image: &Rgb8Image,
    options: &Preprocess,
    resizer: &mut Resizer,
) -> std::result::Result<Rgb8Image, ImageProblem> {
    let cropped;
    let source = match options.centre_crop {
        None => image,
        Some(crop) => {
            if crop.width > image.width || crop.height > image.height {
                return Err(ImageProblem::SmallerThanCrop {
                    width: image.width,
                    height: image.height,
                    crop_width: crop.width,
                    crop_height: crop.height,
                });
            }
            cropped = centre_crop(image, crop);
            &cropped
        }
    };
    let (out_w, out_h) = options.size.unwrap_or((source.width, source.height));
    if (out_w, out_h) == (source.width, source.height) {
        // Pillow returns a copy when the size does not change; so do we.
        return Ok(source.clone());
    }
    let src = ImageRef::new(source.width, source.height, &source.pixels, PixelType::U8x3)
        .map_err(|e| ImageProblem::Corrupt(format!("pixel buffer: {e}")))?;
    let alg = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom));
    let resize_err =
        |e: fast_image_resize::ResizeError| ImageProblem::Corrupt(format!("resize: {e}"));
    // Pillow resamples horizontally first, rounding the intermediate to 8 bits, then vertically.
    // fast_image_resize does vertical first for 8-bit pixels when both sides change, which moves
    // results by up to ~17 levels next to sharp features; so run the two passes as two calls, each
    // changing one side only (a single-axis resize does exactly one pass).
    if out_w != source.width {
        let mut horizontal = Image::new(out_w, source.height, PixelType::U8x3);
        resizer
            .resize(&src, &mut horizontal, &alg)
            .map_err(resize_err)?;
        if out_h == source.height {
            return Ok(Rgb8Image {
                width: out_w,
                height: out_h,
                pixels: horizontal.into_vec(),
            });
        }
        let mid = ImageRef::new(out_w, source.height, horizontal.buffer(), PixelType::U8x3)
            .map_err(|e| ImageProblem::Corrupt(format!("pixel buffer: {e}")))?;
        return vertical_pass(&mid, out_w, out_h, resizer, &alg);
    }
    vertical_pass(&src, out_w, out_h, resizer, &alg)
}

/// Resizes `src` to `out_h` rows (its width already being `out_w`).
fn vertical_pass(
    src: &ImageRef<'_>,
    out_w: u32,
    out_h: u32,
    resizer: &mut Resizer,
    alg: &ResizeOptions,
) -> std::result::Result<Rgb8Image, ImageProblem> {
    let resize_err =
        |e: fast_image_resize::ResizeError| ImageProblem::Corrupt(format!("resize: {e}"));
    let mut dst = Image::new(out_w, out_h, PixelType::U8x3);
    resizer.resize(src, &mut dst, alg).map_err(resize_err)?;
    Ok(Rgb8Image {
        width: out_w,
        height: out_h,
        pixels: dst.into_vec(),
    })
}

fn centre_crop(image: &Rgb8Image, crop: CentreCrop) -> Rgb8Image {
    Rgb8Image {
        width: crop.width,
        height: crop.height,
        pixels: centre_crop_values(&image.pixels, image.width, image.height, crop),
    }
}

/// The centre crop of a row-major RGB buffer (3 values per pixel); the crop fits by the caller's
/// check.
fn centre_crop_values<T: Copy>(pixels: &[T], width: u32, height: u32, crop: CentreCrop) -> Vec<T> {
    let left = ((width - crop.width) / 2) as usize;
    let top = ((height - crop.height) / 2) as usize;
    let row = width as usize * 3;
    let crop_row = crop.width as usize * 3;
    let mut out = Vec::with_capacity(crop_row * crop.height as usize);
    for y in top..top + crop.height as usize {
        let start = y * row + left * 3;
        out.extend_from_slice(&pixels[start..start + crop_row]);
    }
    out
}

/// A floating-point RGB image, row-major, 3 values per pixel (the feature channels of a FITS
/// cutout, in [0, 1]).
#[derive(Debug, Clone, PartialEq)]
pub struct RgbF32Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` values, R G B per pixel, rows top to bottom.
    pub pixels: Vec<f32>,
}

/// [`crop_and_resize`] for floating-point images: the same centre crop, and the same Catmull-Rom
/// convolution (in `f32`, both axes in one call: without 8-bit rounding the order of the passes
/// does not matter), clamped back to [0, 1] (the filter's lobes overshoot next to sharp edges).
pub fn crop_and_resize_f32(
    image: &RgbF32Image,
    options: &Preprocess,
    resizer: &mut Resizer,
) -> std::result::Result<RgbF32Image, ImageProblem> {
    let cropped;
    let source = match options.centre_crop {
        None => image,
        Some(crop) => {
            if crop.width > image.width || crop.height > image.height {
                return Err(ImageProblem::SmallerThanCrop {
                    width: image.width,
                    height: image.height,
                    crop_width: crop.width,
                    crop_height: crop.height,
                });
            }
            cropped = RgbF32Image {
                width: crop.width,
                height: crop.height,
                pixels: centre_crop_values(&image.pixels, image.width, image.height, crop),
            };
            &cropped
        }
    };
    let (out_w, out_h) = options.size.unwrap_or((source.width, source.height));
    if (out_w, out_h) == (source.width, source.height) {
        return Ok(source.clone());
    }
    let src_pixels: Vec<fast_image_resize::pixels::F32x3> = source
        .pixels
        .chunks_exact(3)
        .map(|p| fast_image_resize::pixels::F32x3::new([p[0], p[1], p[2]]))
        .collect();
    let src = ImageRef::from_pixels(source.width, source.height, &src_pixels)
        .map_err(|e| ImageProblem::Corrupt(format!("pixel buffer: {e}")))?;
    let mut dst = Image::new(out_w, out_h, PixelType::F32x3);
    let alg = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom));
    resizer
        .resize(&src, &mut dst, &alg)
        .map_err(|e| ImageProblem::Corrupt(format!("resize: {e}")))?;
    let typed = dst
        .typed_image::<fast_image_resize::pixels::F32x3>()
        .ok_or_else(|| ImageProblem::Corrupt("resize: unexpected pixel type".into()))?;
    let pixels = typed
        .pixels()
        .iter()
        .flat_map(|p| p.0)
        .map(|v| v.clamp(0.0, 1.0))
        .collect();
    Ok(RgbF32Image {
        width: out_w,
        height: out_h,
        pixels,
    })
}

/// A decoded, preprocessed image of either kind, as the folder loader handles it.
#[derive(Debug, Clone)]
pub(crate) enum Decoded {
    /// A JPEG or PNG (values / 255).
    Rgb8(Rgb8Image),
    /// A FITS cutout's feature channels.
    F32(RgbF32Image),
}

impl Decoded {
    /// `(width, height)`.
    pub(crate) fn size(&self) -> (u32, u32) {
        match self {
            Decoded::Rgb8(i) => (i.width, i.height),
            Decoded::F32(i) => (i.width, i.height),
        }
    }

    /// Writes the `H × W × 3` values in [0, 1] into `dst`.
    pub(crate) fn write_unit(&self, dst: &mut [f32]) {
        match self {
            Decoded::Rgb8(img) => {
                for (d, &s) in dst.iter_mut().zip(&img.pixels) {
                    *d = f32::from(s) / 255.0;
                }
            }
            Decoded::F32(img) => {
                for (d, &s) in dst.iter_mut().zip(&img.pixels) {
                    *d = s;
                }
            }
        }
    }
}

/// Decodes and preprocesses one file of either kind: FITS names ([`crate::fits::is_fits_name`]) as
/// FITS feature channels, anything else as JPEG or PNG.
pub(crate) fn load_decoded(
    path: &Path,
    options: &Preprocess,
    resizer: &mut Resizer,
) -> Result<(Decoded, Conversion)> {
    if crate::fits::is_fits_name(path) {
        let bands = crate::fits::read_fits_bands(path, options.max_pixels)?;
        let image = RgbF32Image {
            width: bands.width,
            height: bands.height,
            pixels: bands.feature_pixels(),
        };
        let out =
            crop_and_resize_f32(&image, options, resizer).map_err(|problem| IoError::Image {
                path: path.to_path_buf(),
                problem,
            })?;
        return Ok((Decoded::F32(out), Conversion::None));
    }
    let (img, conversion) = load_rgb8(path, options, resizer)?;
    Ok((Decoded::Rgb8(img), conversion))
}

/// The picture of one file to show a person, as an `(H, W, 3)` array of values in [0, 1]: for a
/// FITS cutout the Lupton et al. (2004) composite of its bands ([`crate::fits::FitsBands::lupton_rgb`]
/// with astropy's `minimum = 0, stretch = 5, Q = 8`), centre-cropped and resized as a JPEG is; for a
/// JPEG or PNG the same as [`load_image`].
pub fn load_display_rgb(
    path: impl AsRef<Path>,
    options: &Preprocess,
) -> Result<ndarray::Array3<f32>> {
    let path = path.as_ref();
    options.validate()?;
    let mut resizer = Resizer::new();
    let img = if crate::fits::is_fits_name(path) {
        let bands = crate::fits::read_fits_bands(path, options.max_pixels)?;
        let rgb = bands.lupton_rgb(&crate::lupton::LuptonParams::default());
        crop_and_resize(&rgb, options, &mut resizer).map_err(|problem| IoError::Image {
            path: path.to_path_buf(),
            problem,
        })?
    } else {
        load_rgb8(path, options, &mut resizer)?.0
    };
    to_array(path, &Decoded::Rgb8(img))
}

/// An `(H, W, 3)` array of a decoded image's values in [0, 1].
fn to_array(path: &Path, img: &Decoded) -> Result<ndarray::Array3<f32>> {
    let (w, h) = img.size();
    let mut data = vec![0f32; w as usize * h as usize * 3];
    img.write_unit(&mut data);
    ndarray::Array3::from_shape_vec((h as usize, w as usize, 3), data).map_err(|e| IoError::Image {
        path: path.to_path_buf(),
        problem: ImageProblem::Corrupt(e.to_string()),
    })
}

/// Decodes and preprocesses one image file into 8-bit RGB of the output size, with the conversion made.
pub fn load_rgb8(
    path: &Path,
    options: &Preprocess,
    resizer: &mut Resizer,
) -> Result<(Rgb8Image, Conversion)> {
    let (decoded, conversion) = decode_rgb8_limited(path, options.max_pixels)?;
    let out = crop_and_resize(&decoded, options, resizer).map_err(|problem| IoError::Image {
        path: path.to_path_buf(),
        problem,
    })?;
    Ok((out, conversion))
}

/// Decodes and preprocesses one image file into an `(H, W, 3)` array of values in [0, 1]
/// (Pillow's `np.asarray(Image.open(p).resize(size)) / 255`); a FITS cutout gives its normalised
/// band channels (R, G, B = i, r, g; see [`crate::fits`]).
///
/// Logs a warning if the file needed converting (grayscale, alpha or 16-bit).
pub fn load_image(path: impl AsRef<Path>, options: &Preprocess) -> Result<ndarray::Array3<f32>> {
    let path = path.as_ref();
    options.validate()?;
    let mut resizer = Resizer::new();
    let (img, conversion) = load_decoded(path, options, &mut resizer)?;
    if conversion != Conversion::None {
        tracing::warn!(file = %path.display(), "{conversion}");
    }
    to_array(path, &img)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> Rgb8Image {
        let mut pixels = Vec::new();
        for y in 0..h {
            for x in 0..w {
                pixels.extend_from_slice(&[(x * 7 % 256) as u8, (y * 5 % 256) as u8, 128]);
            }
        }
        Rgb8Image {
            width: w,
            height: h,
            pixels,
        }
    }

    #[test]
    fn centre_crop_takes_the_middle() {
        let img = gradient(10, 8);
        let c = centre_crop(&img, CentreCrop::square(4));
        assert_eq!((c.width, c.height), (4, 4));
        // left = 3, top = 2
        assert_eq!(
            &c.pixels[..3],
            &img.pixels[(2 * 10 + 3) * 3..(2 * 10 + 3) * 3 + 3]
        );
    }

    #[test]
    fn same_size_is_a_copy_and_crop_too_large_is_an_error() {
        let img = gradient(12, 12);
        let mut r = Resizer::new();
        let same = crop_and_resize(&img, &Preprocess::resize_to(12, 12), &mut r).unwrap();
        assert_eq!(same, img);
        let opts = Preprocess {
            size: Some((4, 4)),
            centre_crop: Some(CentreCrop::square(13)),
            ..Preprocess::default()
        };
        let err = crop_and_resize(&img, &opts, &mut r).unwrap_err();
        assert!(matches!(err, ImageProblem::SmallerThanCrop { .. }), "{err}");
    }

    #[test]
    fn constant_image_stays_constant_after_resize() {
        let img = Rgb8Image {
            width: 50,
            height: 40,
            pixels: vec![77; 50 * 40 * 3],
        };
        let out = crop_and_resize(&img, &Preprocess::resize_to(9, 7), &mut Resizer::new()).unwrap();
        assert_eq!((out.width, out.height), (9, 7));
        assert!(out.pixels.iter().all(|&v| v == 77));
    }

    #[test]
    fn garbage_and_empty_bytes_are_typed_problems() {
        assert!(matches!(
            decode_rgb8_from_bytes(b"hello, not an image"),
            Err(ImageProblem::NotAnImage)
        ));
        assert!(matches!(
            decode_rgb8_from_bytes(b""),
            Err(ImageProblem::Empty)
        ));
        // A PNG signature followed by nothing useful.
        let err = decode_rgb8_from_bytes(b"\x89PNG\r\n\x1a\n\0\0").unwrap_err();
        assert!(
            matches!(err, ImageProblem::Truncated | ImageProblem::Corrupt(_)),
            "{err}"
        );
    }

    /// CRC-32 (IEEE), as PNG chunks carry it.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A valid PNG header claiming `width` × `height` RGB pixels, with one tiny IDAT.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8; 4], data: &[u8]| {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            out.extend_from_slice(&body);
            out.extend_from_slice(&crc32(&body).to_be_bytes());
        };
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(b"IHDR", &ihdr);
        // zlib stream of a few zero bytes: far too little data for the claimed size.
        chunk(
            b"IDAT",
            &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
        );
        chunk(b"IEND", &[]);
        out
    }

    #[test]
    fn a_decompression_bomb_header_is_refused_before_decoding() {
        // 100,000 × 100,000 RGB would be 30 GB of pixels; the file is 67 bytes.
        let bomb = png_claiming(100_000, 100_000);
        let err = decode_rgb8_from_bytes(&bomb).unwrap_err();
        assert_eq!(
            err,
            ImageProblem::TooManyPixels {
                width: 100_000,
                height: 100_000,
                limit: DEFAULT_MAX_IMAGE_PIXELS
            }
        );
        assert!(err.to_string().contains("--max-image-pixels"), "{err}");
        // The limit is the caller's: a 3 × 3 header passes a 9-pixel limit and fails an 8-pixel one.
        let small = png_claiming(3, 3);
        assert!(matches!(
            decode_rgb8_from_bytes_limited(&small, 8),
            Err(ImageProblem::TooManyPixels { limit: 8, .. })
        ));
        assert!(!matches!(
            decode_rgb8_from_bytes_limited(&small, 9),
            Err(ImageProblem::TooManyPixels { .. })
        ));

        // The same for a JPEG: a real 16 × 16 JPEG whose frame header is patched to 65,000 × 65,000.
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .encode(
                &[128u8; 16 * 16 * 3],
                16,
                16,
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 5..sof + 7].copy_from_slice(&65_000u16.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&65_000u16.to_be_bytes());
        assert!(matches!(
            decode_rgb8_from_bytes(&jpeg),
            Err(ImageProblem::TooManyPixels {
                width: 65_000,
                height: 65_000,
                ..
            })
        ));
    }

    #[test]
    fn a_zero_pixel_limit_is_rejected() {
        let opts = Preprocess {
            max_pixels: 0,
            ..Preprocess::default()
        };
        assert!(opts
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_pixels"));
    }

    #[test]
    fn zero_sizes_are_rejected() {
        let err = Preprocess::resize_to(0, 5).validate().unwrap_err();
        assert!(err.to_string().contains("size"), "{err}");
    }
}
