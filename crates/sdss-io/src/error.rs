//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing galaxy data. Each variant names the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The operating system refused a read or write.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `.npy` file whose header or body does not follow the NumPy format.
    #[error("{}: not a valid .npy file: {reason}", path.display())]
    NpyFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `.npy` file with a dtype this crate does not read (or not the one asked for).
    #[error("{}: unsupported dtype {found:?} (expected {expected})", path.display())]
    NpyDtype {
        /// The file.
        path: PathBuf,
        /// The dtype string in the file's header, e.g. `<c16`.
        found: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A `.npy` file whose array has the wrong number of dimensions or the wrong extent.
    #[error("{}: array of shape {found:?} where {expected} was expected", path.display())]
    NpyShape {
        /// The file.
        path: PathBuf,
        /// The shape found in the file.
        found: Vec<usize>,
        /// A description of the expected shape, e.g. `(N, D)`.
        expected: String,
    },
    /// One image file that cannot be used.
    #[error("{}: {problem}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: ImageProblem,
    },
    /// A folder holding bad image files: every one of them is listed.
    #[error("{}: {} of {total} image files cannot be used:{}", folder.display(), bad.len(), list_bad(bad))]
    BadImages {
        /// The folder.
        folder: PathBuf,
        /// Number of image files in the folder.
        total: usize,
        /// Every bad file with its problem, in file-name order.
        bad: Vec<BadImage>,
    },
    /// A folder without any image file (`.jpg`, `.jpeg`, `.png`, `.fits`, `.fit`, `.fts`, or one of
    /// the FITS names followed by `.fz`).
    #[error("{}: no image files (.jpg, .jpeg, .png, .fits, .fits.fz) in this folder", path.display())]
    EmptyFolder {
        /// The folder.
        path: PathBuf,
    },
    /// An option with a value that cannot work.
    #[error("invalid option `{name}`: {reason}")]
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// Why the value is refused.
        reason: String,
    },
    /// A CSV file (galaxy ids, synthetic galaxy parameters) that cannot be parsed.
    #[error("{}:{line}: {reason}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 for the file as a whole).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Two files that must describe the same galaxies disagree on how many there are.
    #[error("{}: {found} galaxies where {} has {expected}", path.display(), other.display())]
    LengthMismatch {
        /// The file with the unexpected count.
        path: PathBuf,
        /// Its count.
        found: usize,
        /// The file it must agree with.
        other: PathBuf,
        /// That file's count.
        expected: usize,
    },
}

/// What is wrong with one image file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageProblem {
    /// The file could not be read at all (permissions, I/O error).
    #[error("unreadable: {0}")]
    Unreadable(String),
    /// The file is empty.
    #[error("empty file")]
    Empty,
    /// The file ends before the image data does.
    #[error("truncated image (data ends early)")]
    Truncated,
    /// The file starts like an image but its data cannot be decoded.
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// The file is not a JPEG or PNG image.
    #[error("not a JPEG or PNG image")]
    NotAnImage,
    /// An image format or pixel format this crate does not read.
    #[error("unsupported image format: {0}")]
    UnsupportedFormat(String),
    /// Dimensions beyond the decoder's limits.
    #[error("image too large: {0}")]
    TooLarge(String),
    /// The header claims more pixels than the configured limit (a decompression bomb, or a survey
    /// mosaic rather than a cutout).
    #[error(
        "image claims {width}x{height} pixels, above the limit of {limit} pixels (a decompression bomb? \
         raise it with --max-image-pixels if the image is real)"
    )]
    TooManyPixels {
        /// Claimed width.
        width: u32,
        /// Claimed height.
        height: u32,
        /// The limit in pixels.
        limit: u64,
    },
    /// The image is smaller than the requested centre crop.
    #[error(
        "image of {width}x{height} is smaller than the {crop_width}x{crop_height} centre crop"
    )]
    SmallerThanCrop {
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
        /// Crop width.
        crop_width: u32,
        /// Crop height.
        crop_height: u32,
    },
    /// A FITS file whose structure or header cannot be used: `hdu` is the 0-based HDU at fault (0
    /// is the primary HDU) and `keyword` the header keyword, where one is to blame.
    #[error("FITS{}: {reason}", fits_place(*hdu, keyword.as_deref()))]
    Fits {
        /// 0-based index of the HDU at fault, if one is.
        hdu: Option<usize>,
        /// The header keyword at fault, if one is (e.g. `NAXIS3`).
        keyword: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// Images must all share one size (no resizing asked) and this one differs.
    #[error("size {}x{} differs from the {}x{} of the other images", found.0, found.1, expected.0, expected.1)]
    SizeMismatch {
        /// This image's (width, height).
        found: (u32, u32),
        /// The (width, height) of the first image.
        expected: (u32, u32),
    },
}

/// A bad image file and its problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadImage {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: ImageProblem,
}

impl std::fmt::Display for BadImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

fn fits_place(hdu: Option<usize>, keyword: Option<&str>) -> String {
    match (hdu, keyword) {
        (Some(h), Some(k)) => format!(" HDU {h}, keyword {k}"),
        (Some(h), None) => format!(" HDU {h}"),
        (None, Some(k)) => format!(" keyword {k}"),
        (None, None) => String::new(),
    }
}

fn list_bad(bad: &[BadImage]) -> String {
    bad.iter().map(|b| format!("\n  {b}")).collect()
}

impl IoError {
    /// Wraps an `std::io::Error` with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IoError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = IoError> = std::result::Result<T, E>;
