//! FITS cutouts: three photometric bands (SDSS g, r, i by default) read from a `.fits` or
//! tile-compressed `.fits.fz` file.
//!
//! # Layouts
//!
//! A file holds its three bands in one of two ways:
//! - **a cube**: the first HDU with image data (the primary HDU, or the first image extension or
//!   tile-compressed image after an empty primary) has `NAXIS = 3` and `NAXIS3 = 3`, the bands along
//!   the third axis (numpy shape `(3, H, W)`);
//! - **three 2-D images**: three HDUs with 2-D image data of one size (a primary with data counts as
//!   one of them; an empty primary is skipped; tile-compressed images count as images).
//!
//! Trailing axes of length 1 are ignored (`NAXIS3 = 1` is a 2-D image). Tables other than
//! tile-compressed images are skipped. Anything else (a cube of other than 3 bands, 1 or 2 or 4
//! 2-D images, images of different sizes, 1-D or 4-D data) is an [`ImageProblem::Fits`] naming the
//! HDU and keyword at fault.
//!
//! # Band order
//!
//! Without band keywords the bands are taken as **g, r, i in file order** (bluest first: plane 1 of a
//! cube, or the first image HDU, is g) and shown as SDSS's gri composites show them: i → red,
//! r → green, g → blue. Band names are read from `FILTER` or `BAND` in each image HDU's header (three
//! HDUs), or `FILTER1`..`FILTER3` / `BAND1`..`BAND3` (a cube), or a `BANDS` / `FILTERS` string such as
//! `'g,r,i'` or `'gri'` (a cube). A name is an SDSS band `u g r i z`, case-insensitive, optionally
//! written `SDSS g`, `sdss_g` or `g'`. When all three bands are named and distinct, they are ordered
//! by wavelength instead (reddest → red); when two bands have the same name that is an error; when
//! names are missing or not SDSS bands the file order is kept (logged if some names were there).
//!
//! # Pixels
//!
//! Values are the physical ones (`BSCALE`, `BZERO` applied; `BLANK` pixels, NaN and ±inf are
//! *non-finite*). Each band's non-finite pixels are replaced by the median of its finite pixels (0
//! if it has none), so that neither the features nor the display see a hole as black or white.
//! Rows are returned top to bottom as FITS viewers show them (FITS stores the bottom row first), so
//! a FITS cutout and the SDSS JPEG of the same field have the same orientation.
//!
//! # Features: per-band asinh normalisation
//!
//! The raw-pixel and network features use the bands as three float channels (R, G, B = i, r, g)
//! in [0, 1], each band scaled on its own by [`normalise_band`]:
//!
//! ```text
//! sky = median(band)              (the sky level: most of a cutout is sky)
//! top = 99.5th percentile(band)   (a robust maximum: a few saturated or cosmic-ray pixels do not set it)
//! s   = (v - sky) / (top - sky)
//! out = clamp(asinh(10 s) / asinh(10), 0, 1)        (0 everywhere when top <= sky)
//! ```
//!
//! Why this one: an asinh stretch is what SDSS's own colour JPEGs apply (Lupton et al. 2004), so
//! the features of a FITS cutout look like those of a JPEG one (faint discs visible, cores not
//! saturated) and the shipped encoder, trained on JPEGs, sees familiar images; linear below about a
//! tenth of the robust maximum, logarithmic above. Scaling each band by its own sky and robust
//! maximum makes the features independent of each band's zero point and calibration (nanomaggies,
//! counts, any BSCALE), which differ between surveys and files; the colour information that loses
//! is kept in the band ratios' structure, and colour-faithful pictures are the display's job
//! ([`crate::lupton`]). The percentiles are order statistics (no interpolation): `median` is the
//! value of rank ⌊n / 2⌋ and the 99.5th percentile that of rank ⌊0.995 (n − 1)⌋ in the sorted band.
//! The normalised bands are then centre-cropped and resized like JPEG cutouts (Catmull-Rom
//! convolution, in `f32`, clamped back to [0, 1]).
//!
//! # Display
//!
//! Galleries and thumbnails show [`FitsBands::lupton_rgb`]: the Lupton et al. (2004) asinh composite
//! of the physical values exactly as `astropy.visualization.make_lupton_rgb(i, r, g, minimum=0,
//! stretch=5, Q=8)` makes it ([`crate::lupton`]), then resized as a JPEG would be.
//!
//! # Hostile files
//!
//! Every header is checked by this module before `fitsio-pure` sees it: `BITPIX`, `NAXIS` (0..=999),
//! every `NAXISn` (≥ 0), `PCOUNT`, `GCOUNT`, and their product against the file's size (a data unit
//! must lie inside the file); for tile-compressed images also `ZNAXISn`, `ZTILEn`, `ZCMPTYPE`, the
//! Rice parameters, every `TFORMn` of the table, every tile's heap descriptor (it must point inside
//! the heap), and, for gzip tiles, the inflated size (at most what the tile's pixels need, so a
//! deflate bomb is refused before it is inflated). The image's width × height is checked against the
//! caller's pixel limit ([`crate::DEFAULT_MAX_IMAGE_PIXELS`], `--max-image-pixels`) before any pixel
//! buffer is allocated. Failures are [`ImageProblem::Fits`] (with HDU and keyword) or
//! [`ImageProblem::TooManyPixels`], never a panic.

use std::path::Path;

use fitsio_pure::block::padded_byte_len;
use fitsio_pure::hdu::Hdu;
use fitsio_pure::header::{header_byte_len, parse_header_blocks, Card};
use fitsio_pure::value::Value;

use crate::error::{ImageProblem, IoError, Result};
use crate::lupton::{asinh, make_lupton_rgb, LuptonParams};
use crate::preprocess::Rgb8Image;

/// File extensions read as FITS (compared case-insensitively), alone or followed by `.fz`.
pub const FITS_EXTENSIONS: [&str; 3] = ["fits", "fit", "fts"];

/// The default band order of a file without band keywords: the bands in file order.
pub const DEFAULT_BAND_ORDER: [char; 3] = ['g', 'r', 'i'];

/// The softening of the feature normalisation's asinh (see the module docs).
pub const FEATURE_ASINH_SOFTENING: f64 = 10.0;

/// The percentile taken as each band's robust maximum in the feature normalisation.
pub const FEATURE_TOP_PERCENTILE: f64 = 99.5;

/// True if `path` is named like a FITS file: `.fits`, `.fit`, `.fts`, or one of them followed by
/// `.fz` (tile-compressed, as fpack names its output), any case.
pub fn is_fits_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| fits_stem(n).is_some())
}

/// The name of a FITS file without its FITS extension(s) (`"587.fits.fz"` → `"587"`), or `None` if
/// the name is not a FITS name.
pub fn fits_stem(name: &str) -> Option<&str> {
    let strip = |name: &'_ str| -> Option<usize> {
        let (stem, ext) = name.rsplit_once('.')?;
        (!stem.is_empty() && FITS_EXTENSIONS.iter().any(|x| ext.eq_ignore_ascii_case(x)))
            .then_some(stem.len())
    };
    let name = match name.rsplit_once('.') {
        Some((stem, ext)) if ext.eq_ignore_ascii_case("fz") => stem,
        _ => name,
    };
    strip(name).map(|len| &name[..len])
}

/// The three bands of a FITS cutout, in display order, with the non-finite pixels replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct FitsBands {
    /// Width in pixels (`NAXIS1`).
    pub width: u32,
    /// Height in pixels (`NAXIS2`).
    pub height: u32,
    /// The red, green and blue bands (i, r, g by default), each `width × height` physical values,
    /// rows top to bottom (FITS's last row first).
    pub planes: [Vec<f32>; 3],
    /// The bands' names as read from the file (lower-case SDSS letters), red first; `None` where the
    /// default order was used.
    pub names: Option<[char; 3]>,
    /// How many non-finite pixels (NaN, ±inf, BLANK) were replaced by their band's median.
    pub replaced: usize,
}

/// Reads the three bands of a FITS file, refusing images of more than `max_pixels` pixels
/// (width × height) before allocating for them.
pub fn read_fits_bands(path: &Path, max_pixels: u64) -> Result<FitsBands> {
    let bytes = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
    read_fits_bands_from_bytes(&bytes, max_pixels).map_err(|problem| IoError::Image {
        path: path.to_path_buf(),
        problem,
    })
}

fn fits_err(hdu: Option<usize>, keyword: Option<&str>, reason: impl Into<String>) -> ImageProblem {
    ImageProblem::Fits {
        hdu,
        keyword: keyword.map(str::to_owned),
        reason: reason.into(),
    }
}

/// One HDU as walked by this module.
struct Walked {
    index: usize,
    cards: Vec<Card>,
    header_start: usize,
    data_start: usize,
    data_len: usize,
    /// Image dimensions (fastest axis first) with trailing 1s dropped, for image HDUs with data.
    dims: Option<Vec<usize>>,
    /// `ZNAXISn` rather than `NAXISn`.
    compressed: bool,
}

/// The value of `keyword`, if present.
fn card<'a>(cards: &'a [Card], keyword: &str) -> Option<&'a Value> {
    cards
        .iter()
        .find(|c| c.keyword_str() == keyword)
        .and_then(|c| c.value.as_ref())
}

/// An integer keyword: `Ok(None)` when absent, an error when present but not an integer or outside
/// `range`.
fn int_in(
    cards: &[Card],
    hdu: usize,
    keyword: &str,
    range: std::ops::RangeInclusive<i64>,
) -> std::result::Result<Option<i64>, ImageProblem> {
    match card(cards, keyword) {
        None => Ok(None),
        Some(Value::Integer(v)) if range.contains(v) => Ok(Some(*v)),
        Some(Value::Integer(v)) => Err(fits_err(
            Some(hdu),
            Some(keyword),
            format!("value {v} is outside {}..={}", range.start(), range.end()),
        )),
        Some(other) => Err(fits_err(
            Some(hdu),
            Some(keyword),
            format!("not an integer: {other:?}"),
        )),
    }
}

fn required_int(
    cards: &[Card],
    hdu: usize,
    keyword: &str,
    range: std::ops::RangeInclusive<i64>,
) -> std::result::Result<i64, ImageProblem> {
    int_in(cards, hdu, keyword, range)?
        .ok_or_else(|| fits_err(Some(hdu), Some(keyword), "missing required keyword"))
}

fn string_value(cards: &[Card], keyword: &str) -> Option<String> {
    match card(cards, keyword) {
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// Largest axis length and number of axes accepted (the FITS standard's NAXIS limit is 999).
const MAX_AXES: i64 = 999;
const MAX_AXIS_LEN: i64 = 1 << 40;

fn bitpix_ok(cards: &[Card], hdu: usize, keyword: &str) -> std::result::Result<i64, ImageProblem> {
    let bitpix = required_int(cards, hdu, keyword, -64..=64)?;
    if [8, 16, 32, 64, -32, -64].contains(&bitpix) {
        Ok(bitpix)
    } else {
        Err(fits_err(
            Some(hdu),
            Some(keyword),
            format!("{bitpix} is not a FITS pixel type (8, 16, 32, 64, -32, -64)"),
        ))
    }
}

/// The axes `NAXIS1..NAXISn` (or `ZNAXISn`), checked, and their product.
fn axes(
    cards: &[Card],
    hdu: usize,
    prefix: &str,
) -> std::result::Result<(Vec<usize>, usize), ImageProblem> {
    let n = required_int(cards, hdu, prefix, 0..=MAX_AXES)? as usize;
    let mut dims = Vec::with_capacity(n);
    let mut product: usize = 1;
    for i in 1..=n {
        let key = format!("{prefix}{i}");
        let d = required_int(cards, hdu, &key, 0..=MAX_AXIS_LEN)? as usize;
        product = product
            .checked_mul(d)
            .ok_or_else(|| fits_err(Some(hdu), Some(&key), "the axes' product overflows"))?;
        dims.push(d);
    }
    if n == 0 {
        product = 0;
    }
    Ok((dims, product))
}

/// Drops trailing axes of length 1.
fn squeeze(mut dims: Vec<usize>) -> Vec<usize> {
    while dims.len() > 2 && dims.last() == Some(&1) {
        dims.pop();
    }
    dims
}

/// Walks every HDU of `bytes`, checking each header before anything trusts it.
fn walk(bytes: &[u8]) -> std::result::Result<Vec<Walked>, ImageProblem> {
    if bytes.is_empty() {
        return Err(ImageProblem::Empty);
    }
    if !bytes.starts_with(b"SIMPLE  =") {
        return Err(fits_err(
            None,
            None,
            "not a FITS file (it does not start with SIMPLE = T)",
        ));
    }
    let mut hdus = Vec::new();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let index = hdus.len();
        let rest = &bytes[offset..];
        if index > 0 && !rest.starts_with(b"XTENSION=") {
            // Padding or junk after the last HDU (some writers leave a partial block): not an HDU.
            break;
        }
        let header_len = header_byte_len(rest).map_err(|_| {
            fits_err(
                Some(index),
                Some("END"),
                "truncated: the header has no END card before the file ends",
            )
        })?;
        let cards = parse_header_blocks(&rest[..header_len])
            .map_err(|e| fits_err(Some(index), None, format!("bad header: {e}")))?;
        let primary = index == 0;
        if primary && !matches!(card(&cards, "SIMPLE"), Some(Value::Logical(true))) {
            return Err(fits_err(Some(0), Some("SIMPLE"), "SIMPLE is not T"));
        }
        let xtension = if primary {
            None
        } else {
            Some(string_value(&cards, "XTENSION").ok_or_else(|| {
                fits_err(Some(index), Some("XTENSION"), "missing or not a string")
            })?)
        };
        let bitpix = bitpix_ok(&cards, index, "BITPIX")?;
        let (naxes, product) = axes(&cards, index, "NAXIS")?;
        if primary
            && naxes.first() == Some(&0)
            && matches!(card(&cards, "GROUPS"), Some(Value::Logical(true)))
        {
            return Err(fits_err(
                Some(0),
                Some("GROUPS"),
                "random groups are not an image",
            ));
        }
        let (pcount, gcount) = if primary {
            (0, 1)
        } else {
            let p = int_in(&cards, index, "PCOUNT", 0..=i64::MAX)?.unwrap_or(0) as usize;
            let g = int_in(&cards, index, "GCOUNT", 0..=i64::MAX)?.unwrap_or(1) as usize;
            (p, g.max(1))
        };
        // As fitsio-pure computes it: GCOUNT × (|BITPIX| / 8 × ΠNAXISn + PCOUNT).
        let bytes_per_value = (bitpix.unsigned_abs() / 8) as usize;
        let data_len = product
            .checked_mul(bytes_per_value)
            .and_then(|d| d.checked_add(pcount))
            .and_then(|d| d.checked_mul(gcount))
            .ok_or_else(|| fits_err(Some(index), Some("NAXIS"), "data size overflows"))?;
        let data_start = offset + header_len;
        let available = bytes.len() - data_start;
        if data_len > available {
            return Err(fits_err(
                Some(index),
                Some("NAXIS"),
                format!(
                    "truncated: the header describes {data_len} bytes of data, the file has {available} \
                     after the header"
                ),
            ));
        }
        let is_compressed = xtension.as_deref() == Some("BINTABLE")
            && matches!(card(&cards, "ZIMAGE"), Some(Value::Logical(true)));
        let dims = if primary || xtension.as_deref() == Some("IMAGE") {
            (product > 0).then(|| squeeze(naxes))
        } else if is_compressed {
            check_compressed(bytes, &cards, index, data_start, &naxes, pcount)?
        } else {
            None
        };
        hdus.push(Walked {
            index,
            cards,
            header_start: offset,
            data_start,
            data_len,
            dims,
            compressed: is_compressed,
        });
        offset = data_start.saturating_add(padded_byte_len(data_len));
    }
    Ok(hdus)
}

/// Tile-compression types read (those `fitsio-pure` decodes).
const COMPRESSION_TYPES: [&str; 7] = [
    "RICE_1",
    "RICE_ONE",
    "GZIP_1",
    "GZIP_2",
    "NOCOMPRESS",
    "HCOMPRESS_1",
    "PLIO_1",
];

/// A binary-table column: its name, byte offset in the row and, for variable-length
/// arrays, (descriptor is 64-bit, element size).
struct Column {
    name: String,
    offset: usize,
    heap: Option<(bool, usize)>,
    /// `(repeat, type letter)`.
    form: (usize, u8),
}

/// Parses `TFORMn` as `fitsio-pure` does (`rT`, `rPt(max)`, `rQt(max)`), returning the repeat, the
/// type letter, the element letter of a variable-length array and the byte width.
fn parse_tform(s: &str) -> Option<(usize, u8, Option<u8>, usize)> {
    let s = s.trim();
    let s = s.split_once('(').map_or(s, |(head, _)| head);
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 12 {
        return None;
    }
    let repeat = if digits == 0 {
        1
    } else {
        s[..digits].parse::<usize>().ok()?
    };
    let rest = &s.as_bytes()[digits..];
    let size = |t: u8| -> Option<usize> {
        Some(match t {
            b'L' | b'B' | b'A' => 1,
            b'I' => 2,
            b'J' | b'E' => 4,
            b'K' | b'D' | b'C' => 8,
            b'M' => 16,
            _ => return None,
        })
    };
    match rest {
        [t @ (b'P' | b'Q'), e] => {
            if *e != b'X' {
                size(*e)?;
            }
            let width = repeat.checked_mul(if *t == b'P' { 8 } else { 16 })?;
            Some((repeat, *t, Some(*e), width))
        }
        [b'X'] => Some((repeat, b'X', None, repeat.div_ceil(8))),
        [t] => Some((repeat, *t, None, repeat.checked_mul(size(*t)?)?)),
        _ => None,
    }
}

/// Checks a tile-compressed image HDU (a `ZIMAGE = T` binary table) completely, returning its image
/// dimensions (`None` if it has no pixels).
fn check_compressed(
    bytes: &[u8],
    cards: &[Card],
    hdu: usize,
    data_start: usize,
    naxes: &[usize],
    pcount: usize,
) -> std::result::Result<Option<Vec<usize>>, ImageProblem> {
    let err = |keyword: &str, reason: String| fits_err(Some(hdu), Some(keyword), reason);
    if naxes.len() != 2 {
        return Err(err(
            "NAXIS",
            "a compressed image's table must be 2-D".into(),
        ));
    }
    let (naxis1, naxis2) = (naxes[0], naxes[1]);
    let zbitpix = bitpix_ok(cards, hdu, "ZBITPIX")?;
    let (znaxes, zproduct) = axes(cards, hdu, "ZNAXIS")?;
    let cmp = string_value(cards, "ZCMPTYPE")
        .ok_or_else(|| err("ZCMPTYPE", "missing or not a string".into()))?;
    if !COMPRESSION_TYPES.contains(&cmp.as_str()) {
        return Err(err(
            "ZCMPTYPE",
            format!("unsupported tile compression {cmp:?}"),
        ));
    }
    let mut tile_pixels: usize = 1;
    for (i, &d) in znaxes.iter().enumerate() {
        let key = format!("ZTILE{}", i + 1);
        let t = int_in(cards, hdu, &key, 1..=MAX_AXIS_LEN)?
            .map_or(if i == 0 { d } else { 1 }, |t| t as usize);
        tile_pixels = tile_pixels.saturating_mul(t.min(d));
    }
    if cmp.starts_with("RICE") {
        int_in(cards, hdu, "ZVAL1", 1..=1 << 20)?;
        int_in(cards, hdu, "ZVAL2", 1..=8)?;
    }
    let tfields = required_int(cards, hdu, "TFIELDS", 1..=MAX_AXES)? as usize;
    let mut columns = Vec::with_capacity(tfields);
    let mut offset = 0usize;
    for i in 1..=tfields {
        let key = format!("TFORM{i}");
        let form =
            string_value(cards, &key).ok_or_else(|| err(&key, "missing or not a string".into()))?;
        let (repeat, t, elem, width) = parse_tform(&form)
            .ok_or_else(|| err(&key, format!("unreadable column format {form:?}")))?;
        let heap = elem.map(|e| {
            let size = match e {
                b'B' => 1,
                b'I' => 2,
                b'J' | b'E' => 4,
                b'K' | b'D' => 8,
                _ => 0,
            };
            (t == b'Q', size)
        });
        columns.push(Column {
            name: string_value(cards, &format!("TTYPE{i}")).unwrap_or_default(),
            offset,
            heap,
            form: (repeat, t),
        });
        offset = offset
            .checked_add(width)
            .ok_or_else(|| err(&key, "row width overflows".into()))?;
    }
    if offset > naxis1 {
        return Err(err(
            "NAXIS1",
            format!("rows of {naxis1} bytes, but the columns need {offset}"),
        ));
    }
    let find = |name: &str| columns.iter().find(|c| c.name == name);
    let compressed =
        find("COMPRESSED_DATA").ok_or_else(|| err("TTYPE1", "no COMPRESSED_DATA column".into()))?;
    let mut heap_columns = Vec::new();
    for name in [
        "COMPRESSED_DATA",
        "GZIP_COMPRESSED_DATA",
        "UNCOMPRESSED_DATA",
    ] {
        if let Some(c) = find(name) {
            match c.heap {
                Some((_, size)) if size > 0 && c.form.0 >= 1 => heap_columns.push((name, c)),
                _ => {
                    return Err(err(
                        "TFORMn",
                        format!("{name} is not a variable-length array of B, I, J, K, E or D"),
                    ))
                }
            }
        }
    }
    for (name, form) in [("ZSCALE", b'D'), ("ZZERO", b'D'), ("ZBLANK", b'J')] {
        if let Some(c) = find(name) {
            if c.form != (1, form) {
                return Err(err(
                    "TFORMn",
                    format!("the {name} column must be 1{}", form as char),
                ));
            }
        }
    }
    let _ = compressed;
    // Every tile's descriptor must point inside the heap; gzip tiles must not inflate beyond the
    // pixels of a tile (8 bytes each at most).
    let gzip_codec = cmp.starts_with("GZIP");
    let inflate_limit = tile_pixels.saturating_mul(8);
    let table_len = naxis1
        .checked_mul(naxis2)
        .ok_or_else(|| err("NAXIS2", "table size overflows".into()))?;
    for row in 0..naxis2 {
        let mut compressed_count = None;
        for &(name, c) in &heap_columns {
            let (wide, elem) = c.heap.unwrap_or((false, 1));
            let at = data_start + row * naxis1 + c.offset;
            let desc = &bytes[at..at + if wide { 16 } else { 8 }];
            let (count, heap_offset) = if wide {
                let count = i64::from_be_bytes(desc[..8].try_into().unwrap_or_default());
                let off = i64::from_be_bytes(desc[8..16].try_into().unwrap_or_default());
                match (usize::try_from(count), usize::try_from(off)) {
                    (Ok(c), Ok(o)) => (c, o),
                    _ => {
                        return Err(err(
                            "TFORMn",
                            format!("tile {}: negative {name} descriptor", row + 1),
                        ))
                    }
                }
            } else {
                let count = u32::from_be_bytes(desc[..4].try_into().unwrap_or_default());
                let off = u32::from_be_bytes(desc[4..8].try_into().unwrap_or_default());
                (count as usize, off as usize)
            };
            let len = count.checked_mul(elem);
            let end = len.and_then(|l| l.checked_add(heap_offset));
            let Some((len, _)) = len.zip(end).filter(|&(_, e)| e <= pcount) else {
                return Err(err(
                    "PCOUNT",
                    format!(
                        "tile {}: the {name} descriptor points outside the {pcount}-byte heap",
                        row + 1
                    ),
                ));
            };
            let start = data_start + table_len + heap_offset;
            let tile = &bytes[start..start + len];
            let is_main = name == "COMPRESSED_DATA";
            if is_main {
                compressed_count = Some(len);
            }
            let inflated_here = (is_main && gzip_codec)
                || (name == "GZIP_COMPRESSED_DATA" && compressed_count == Some(0));
            if inflated_here && len > 0 && !inflates_within(tile, inflate_limit) {
                return Err(err(
                    "ZTILEn",
                    format!(
                        "tile {}: gzip data inflates beyond the {inflate_limit} bytes a tile can hold \
                         (a deflate bomb?)",
                        row + 1
                    ),
                ));
            }
        }
    }
    if zproduct == 0 {
        return Ok(None);
    }
    // A float image coded as integers is fine; an integer ZBITPIX is fine; nothing else to check.
    let _ = zbitpix;
    Ok(Some(squeeze(znaxes)))
}

/// True if `data`, inflated as `fitsio-pure` would (gzip members, else zlib, else raw deflate),
/// stays within `limit` bytes on every one of those readings (an invalid stream counts as within:
/// its decoder fails).
fn inflates_within(data: &[u8], limit: usize) -> bool {
    use miniz_oxide::inflate::core::inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER;
    if data.len() >= 2 && data[0] == 0x1f && data[1] == 0x8b {
        let mut rest = data;
        let mut total = 0usize;
        loop {
            let Some(header) = gzip_header_len(rest) else {
                return true;
            };
            let Some((consumed, produced)) = inflated_size(&rest[header..], 0, limit - total)
            else {
                return false;
            };
            total += produced;
            let next = header + consumed + 8;
            if next >= rest.len() {
                return true;
            }
            rest = &rest[next..];
            if rest.iter().all(|&b| b == 0) {
                return true;
            }
        }
    }
    inflated_size(data, TINFL_FLAG_PARSE_ZLIB_HEADER, limit).is_some()
        && inflated_size(data, 0, limit).is_some()
}

/// The header length of a gzip member, as `fitsio-pure` reads it.
fn gzip_header_len(data: &[u8]) -> Option<usize> {
    if data.len() < 18 || data[0] != 0x1f || data[1] != 0x8b || data[2] != 8 {
        return None;
    }
    let flg = data[3];
    let mut pos = 10usize;
    if flg & 0x04 != 0 {
        let xlen = data.get(pos..pos + 2)?;
        pos += 2 + u16::from_le_bytes([xlen[0], xlen[1]]) as usize;
    }
    for flag in [0x08, 0x10] {
        if flg & flag != 0 {
            pos += data.get(pos..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flg & 0x02 != 0 {
        pos += 2;
    }
    (pos < data.len()).then_some(pos)
}

/// Inflates `data` into a small wrapping window, counting: `Some((bytes consumed, bytes produced))`
/// if it ends (or fails) within `limit` output bytes, `None` if it produces more.
fn inflated_size(data: &[u8], flags: u32, limit: usize) -> Option<(usize, usize)> {
    use miniz_oxide::inflate::core::{decompress, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;
    const WINDOW: usize = 32 * 1024;
    let mut state = DecompressorOxide::new();
    let mut window = vec![0u8; WINDOW];
    let (mut in_pos, mut out_pos, mut produced) = (0usize, 0usize, 0usize);
    loop {
        let (status, read, written) =
            decompress(&mut state, &data[in_pos..], &mut window, out_pos, flags);
        in_pos += read;
        produced += written;
        out_pos = (out_pos + written) % WINDOW;
        if produced > limit {
            return None;
        }
        match status {
            TINFLStatus::HasMoreOutput => continue,
            _ => return Some((in_pos, produced)),
        }
    }
}

/// The SDSS band a header value names, as its rank by wavelength (u = 0 … z = 4).
fn band_rank(name: &str) -> Option<(usize, char)> {
    let lower = name.trim().to_ascii_lowercase();
    let mut s = lower.as_str();
    if let Some(rest) = s.strip_prefix("sdss") {
        s = rest.trim_start_matches([' ', '_', '-', ':']);
    }
    let s = s.trim_end_matches('\'');
    let mut chars = s.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    "ugriz".find(c).map(|rank| (rank, c))
}

/// A band-name keyword's value, with the keyword that gave it.
fn band_keyword(cards: &[Card], keys: &[String]) -> Option<(String, String)> {
    keys.iter()
        .find_map(|k| string_value(cards, k).map(|v| (k.clone(), v)))
}

/// Orders three planes (file order) into red, green, blue, from band keywords when all three name
/// distinct SDSS bands.
fn band_order(
    found: [Option<(usize, String, String)>; 3],
) -> std::result::Result<([usize; 3], Option<[char; 3]>), ImageProblem> {
    let default = ([2, 1, 0], None);
    let ranks: Vec<Option<(usize, char)>> = found
        .iter()
        .map(|f| f.as_ref().and_then(|(_, _, v)| band_rank(v)))
        .collect();
    if ranks.iter().all(Option::is_some) {
        let ranks: Vec<(usize, char)> = ranks.into_iter().flatten().collect();
        for a in 0..3 {
            for b in a + 1..3 {
                if ranks[a].0 == ranks[b].0 {
                    // Cannot fire: a rank is only Some where its band was found.
                    let (hdu, key, _) = found[b].as_ref().expect("all bands were found");
                    return Err(fits_err(
                        Some(*hdu),
                        Some(key),
                        format!(
                            "band {:?} appears twice; the three bands must differ",
                            ranks[b].1
                        ),
                    ));
                }
            }
        }
        let mut order = [0usize, 1, 2];
        // Reddest (largest rank) first.
        order.sort_by_key(|&p| std::cmp::Reverse(ranks[p].0));
        let names = order.map(|p| ranks[p].1);
        return Ok((order, Some(names)));
    }
    if found.iter().any(Option::is_some) {
        let listed: Vec<String> = found
            .iter()
            .flatten()
            .map(|(h, k, v)| format!("HDU {h} {k} = {v:?}"))
            .collect();
        tracing::warn!(
            "FITS band keywords ({}) do not name three SDSS bands; taking the bands as g, r, i in \
             file order",
            listed.join(", ")
        );
    }
    Ok(default)
}

/// Reads the bands of FITS bytes (see [`read_fits_bands`]).
pub fn read_fits_bands_from_bytes(
    bytes: &[u8],
    max_pixels: u64,
) -> std::result::Result<FitsBands, ImageProblem> {
    let hdus = walk(bytes)?;
    let images: Vec<&Walked> = hdus.iter().filter(|h| h.dims.is_some()).collect();
    let Some(first) = images.first() else {
        return Err(fits_err(None, Some("NAXIS"), "no HDU holds image data"));
    };
    let naxis = |h: &Walked| if h.compressed { "ZNAXIS" } else { "NAXIS" };
    let first_dims = first.dims.as_deref().unwrap_or_default();
    let cube = match first_dims.len() {
        3 if first_dims[2] == 3 => true,
        3 => {
            return Err(fits_err(
                Some(first.index),
                Some(&format!("{}3", naxis(first))),
                format!("a cube of {} bands; expected 3 (g, r, i)", first_dims[2]),
            ))
        }
        2 => false,
        n => {
            return Err(fits_err(
                Some(first.index),
                Some(naxis(first)),
                format!("{n}-D image data; expected three 2-D bands or one 3-D cube of 3 bands"),
            ))
        }
    };
    let (w, h) = (first_dims[0], first_dims[1]);
    let planes_hdus: Vec<&Walked> = if cube {
        vec![first]
    } else {
        for other in &images[1..] {
            let d = other.dims.as_deref().unwrap_or_default();
            if d.len() != 2 {
                return Err(fits_err(
                    Some(other.index),
                    Some(naxis(other)),
                    format!(
                        "{}-D image data after 2-D bands; expected three 2-D bands",
                        d.len()
                    ),
                ));
            }
            if (d[0], d[1]) != (w, h) {
                return Err(fits_err(
                    Some(other.index),
                    Some(&format!("{}1", naxis(other))),
                    format!(
                        "band of {}x{} pixels where the first band has {w}x{h}",
                        d[0], d[1]
                    ),
                ));
            }
        }
        if images.len() != 3 {
            return Err(fits_err(
                None,
                Some(naxis(first)),
                format!(
                    "{} 2-D image HDU{}; expected 3 bands (g, r, i)",
                    images.len(),
                    if images.len() == 1 { "" } else { "s" }
                ),
            ));
        }
        images.clone()
    };
    let (Ok(width), Ok(height)) = (u32::try_from(w), u32::try_from(h)) else {
        return Err(fits_err(
            Some(first.index),
            Some(naxis(first)),
            format!("{w}x{h} pixels is beyond any image this program reads"),
        ));
    };
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageProblem::TooManyPixels {
            width,
            height,
            limit: max_pixels,
        });
    }
    let n = w * h;

    // Band names.
    let found: [Option<(usize, String, String)>; 3] = if cube {
        let cards = &first.cards;
        let mut per = [0usize, 1, 2].map(|i| {
            band_keyword(
                cards,
                &[format!("FILTER{}", i + 1), format!("BAND{}", i + 1)],
            )
            .map(|(k, v)| (first.index, k, v))
        });
        if per.iter().all(Option::is_none) {
            if let Some((key, list)) =
                band_keyword(cards, &["BANDS".to_owned(), "FILTERS".to_owned()])
            {
                // 'g,r,i', 'g r i', 'g;r;i' or 'gri'.
                let parts: Vec<String> = if list.contains([',', ' ', ';']) {
                    list.split([',', ' ', ';'])
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                } else {
                    list.chars().map(String::from).collect()
                };
                if parts.len() == 3 {
                    per = [0, 1, 2].map(|i| Some((first.index, key.clone(), parts[i].clone())));
                } else {
                    per[0] = Some((first.index, key, list));
                }
            }
        }
        per
    } else {
        [0usize, 1, 2].map(|i| {
            band_keyword(
                &planes_hdus[i].cards,
                &["FILTER".to_owned(), "BAND".to_owned()],
            )
            .map(|(k, v)| (planes_hdus[i].index, k, v))
        })
    };
    let (order, names) = band_order(found)?;

    // Pixels, in file order.
    let mut file_planes: Vec<Vec<f32>> = Vec::with_capacity(3);
    for walked in &planes_hdus {
        let hdu = Hdu::from_cards(walked.cards.clone(), walked.header_start, walked.data_start)
            .map_err(|e| fits_err(Some(walked.index), None, format!("bad header: {e}")))?;
        if hdu.data_len != walked.data_len {
            return Err(fits_err(Some(walked.index), None, "inconsistent data size"));
        }
        let values = fitsio_pure::image::read_image_physical_f32(bytes, &hdu).map_err(|e| {
            fits_err(
                Some(walked.index),
                None,
                format!("cannot read the pixels: {e}"),
            )
        })?;
        let expected = if cube { 3 * n } else { n };
        if values.len() != expected {
            return Err(fits_err(
                Some(walked.index),
                None,
                format!(
                    "{} pixels read where {expected} were expected",
                    values.len()
                ),
            ));
        }
        if cube {
            for k in 0..3 {
                file_planes.push(values[k * n..(k + 1) * n].to_vec());
            }
        } else {
            file_planes.push(values);
        }
    }
    let mut replaced = 0;
    for plane in &mut file_planes {
        replaced += replace_non_finite(plane);
        flip_rows(plane, w);
    }
    if replaced > 0 {
        tracing::debug!("{replaced} non-finite FITS pixels replaced by their band's median");
    }
    let mut taken = file_planes.into_iter().map(Some).collect::<Vec<_>>();
    let planes = order.map(|p| taken[p].take().unwrap_or_default());
    Ok(FitsBands {
        width,
        height,
        planes,
        names,
        replaced,
    })
}

/// Replaces the non-finite values of a band by the median of its finite values (0 if none),
/// returning how many were replaced.
fn replace_non_finite(plane: &mut [f32]) -> usize {
    let bad = plane.iter().filter(|v| !v.is_finite()).count();
    if bad == 0 {
        return 0;
    }
    let mut finite: Vec<f32> = plane.iter().copied().filter(|v| v.is_finite()).collect();
    let fill = if finite.is_empty() {
        0.0
    } else {
        let middle = finite.len() / 2;
        rank(&mut finite, middle)
    };
    for v in plane.iter_mut().filter(|v| !v.is_finite()) {
        *v = fill;
    }
    bad
}

/// The value of rank `k` (0-based) of `values` (reorders them).
fn rank(values: &mut [f32], k: usize) -> f32 {
    let k = k.min(values.len() - 1);
    *values.select_nth_unstable_by(k, f32::total_cmp).1
}

/// Reverses the order of the rows of a row-major plane `width` wide.
fn flip_rows(plane: &mut [f32], width: usize) {
    if width == 0 {
        return;
    }
    let rows = plane.len() / width;
    for y in 0..rows / 2 {
        let (top, bottom) = plane.split_at_mut((rows - 1 - y) * width);
        top[y * width..(y + 1) * width].swap_with_slice(&mut bottom[..width]);
    }
}

/// The feature normalisation of one band, in place (see the module docs): sky-subtracted, divided
/// by the robust range, asinh-stretched, in [0, 1]. Non-finite values (which [`FitsBands`] never
/// holds) are replaced by the band's median first, as the reader does.
pub fn normalise_band(plane: &mut [f32]) {
    if plane.is_empty() {
        return;
    }
    replace_non_finite(plane);
    let mut sorted = plane.to_vec();
    let n = sorted.len();
    let sky = f64::from(rank(&mut sorted, n / 2));
    let top_rank = ((FEATURE_TOP_PERCENTILE / 100.0) * (n - 1) as f64).floor() as usize;
    let top = f64::from(rank(&mut sorted, top_rank));
    // Finite (non-finite pixels were replaced above), so this is the whole test; the range can still
    // overflow to +inf (f32 extremes in f64 cannot), hence the finite check.
    if top <= sky || !(top - sky).is_finite() {
        plane.fill(0.0);
        return;
    }
    let range = top - sky;
    let q = FEATURE_ASINH_SOFTENING;
    let norm = asinh(q);
    for v in plane.iter_mut() {
        let s = (f64::from(*v) - sky) / range;
        *v = (asinh(q * s) / norm).clamp(0.0, 1.0) as f32;
    }
}

impl FitsBands {
    /// The feature channels: the three bands normalised by [`normalise_band`], interleaved R G B per
    /// pixel (`width × height × 3` values in [0, 1], rows top to bottom).
    pub fn feature_pixels(&self) -> Vec<f32> {
        let mut planes = self.planes.clone();
        for p in &mut planes {
            normalise_band(p);
        }
        let n = self.width as usize * self.height as usize;
        let mut out = Vec::with_capacity(n * 3);
        for ((r, g), b) in planes[0].iter().zip(&planes[1]).zip(&planes[2]).take(n) {
            out.extend_from_slice(&[*r, *g, *b]);
        }
        out
    }

    /// The Lupton et al. (2004) composite of the bands (red, green, blue as in
    /// [`FitsBands::planes`]), as `make_lupton_rgb(red, green, blue, minimum, stretch, Q)`.
    pub fn lupton_rgb(&self, params: &LuptonParams) -> Rgb8Image {
        let [r, g, b] = &self.planes;
        // Cannot fire: the readers build each plane with exactly width x height values.
        make_lupton_rgb(r, g, b, self.width, self.height, params)
            .expect("every plane holds width x height values by construction")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_names_and_stems() {
        assert_eq!(fits_stem("587.fits"), Some("587"));
        assert_eq!(fits_stem("587.FITS.FZ"), Some("587"));
        assert_eq!(fits_stem("a.b.fit"), Some("a.b"));
        assert_eq!(fits_stem("x.fts.fz"), Some("x"));
        assert_eq!(fits_stem("x.fz"), None);
        assert_eq!(fits_stem("x.jpg"), None);
        assert_eq!(fits_stem(".fits"), None);
        assert!(is_fits_name(Path::new("/a/b/c.fits.fz")));
        assert!(!is_fits_name(Path::new("/a/b/c.png")));
    }

    #[test]
    fn band_names() {
        assert_eq!(band_rank("g"), Some((1, 'g')));
        assert_eq!(band_rank(" SDSS i "), Some((3, 'i')));
        assert_eq!(band_rank("sdss_r"), Some((2, 'r')));
        assert_eq!(band_rank("z'"), Some((4, 'z')));
        assert_eq!(band_rank("F814W"), None);
        let f = |v: &str| Some((1, "FILTER".to_owned(), v.to_owned()));
        // i, g, r in file order -> red = plane 0 (i), green = plane 2 (r), blue = plane 1 (g).
        assert_eq!(
            band_order([f("i"), f("g"), f("r")]).unwrap(),
            ([0, 2, 1], Some(['i', 'r', 'g']))
        );
        assert_eq!(band_order([None, None, None]).unwrap(), ([2, 1, 0], None));
        assert_eq!(
            band_order([f("g"), f("F814W"), f("i")]).unwrap(),
            ([2, 1, 0], None)
        );
        assert!(matches!(
            band_order([f("g"), f("r"), f("g")]),
            Err(ImageProblem::Fits { .. })
        ));
    }

    #[test]
    fn normalisation_is_asinh_of_the_robust_range() {
        // 1000 sky pixels of 5 and a ramp: sky 5, robust top the 99.5th percentile.
        let mut plane: Vec<f32> = (0..1000)
            .map(|i| if i < 600 { 5.0 } else { i as f32 })
            .collect();
        normalise_band(&mut plane);
        assert_eq!(plane[0], 0.0);
        assert!(plane.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(plane[999], 1.0);
        let mut flat = vec![3.0f32; 50];
        normalise_band(&mut flat);
        assert!(flat.iter().all(|&v| v == 0.0));
        // Invariant to scale and offset.
        let mut a: Vec<f32> = (0..400).map(|i| ((i * 37) % 101) as f32).collect();
        let mut b: Vec<f32> = a.iter().map(|v| v * 4.0 + 100.0).collect();
        normalise_band(&mut a);
        normalise_band(&mut b);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6);
        }
    }

    #[test]
    fn non_finite_pixels_become_the_median_and_rows_flip() {
        let mut p = vec![1.0, f32::NAN, 3.0, f32::INFINITY, 2.0, 9.0];
        assert_eq!(replace_non_finite(&mut p), 2);
        assert_eq!(p, vec![1.0, 3.0, 3.0, 3.0, 2.0, 9.0]);
        flip_rows(&mut p, 2);
        assert_eq!(p, vec![2.0, 9.0, 3.0, 3.0, 1.0, 3.0]);
        let mut all_bad = vec![f32::NAN; 3];
        replace_non_finite(&mut all_bad);
        assert_eq!(all_bad, vec![0.0; 3]);
    }

    #[test]
    fn tform_widths() {
        assert_eq!(parse_tform("1PB(200)"), Some((1, b'P', Some(b'B'), 8)));
        assert_eq!(parse_tform("1QJ"), Some((1, b'Q', Some(b'J'), 16)));
        assert_eq!(parse_tform("1D"), Some((1, b'D', None, 8)));
        assert_eq!(parse_tform("12X"), Some((12, b'X', None, 2)));
        assert_eq!(parse_tform("99999999999999999999J"), None);
        assert_eq!(parse_tform("1PZ"), None);
    }

    #[test]
    fn deflate_bombs_are_measured_without_inflating() {
        // 1 MiB of zeros deflates to about a kilobyte.
        let zeros = vec![0u8; 1 << 20];
        let z = miniz_oxide::deflate::compress_to_vec_zlib(&zeros, 6);
        assert!(z.len() < 4096);
        assert!(!inflates_within(&z, 1 << 19));
        assert!(inflates_within(&z, 1 << 20));
        let raw = miniz_oxide::deflate::compress_to_vec(&zeros, 6);
        assert!(!inflates_within(&raw, 1000));
    }
}
