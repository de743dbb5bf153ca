//! Loading a folder of galaxy images, whole or in batches, decoding in parallel.
//!
//! Files are taken in a stable order (sorted by file name); each file's stem is its galaxy id. Decoding
//! and resizing run on rayon's thread pool, one batch at a time, so at most one batch of preprocessed
//! images (and one full-size decoded image per thread) is in memory at once while streaming.

use std::path::{Path, PathBuf};

use fast_image_resize::Resizer;
use ndarray::{Array4, Axis};
use rayon::prelude::*;

use crate::error::{BadImage, ImageProblem, IoError, Result};
use crate::preprocess::{load_decoded, Conversion, Decoded, Preprocess};
use crate::stack::ImageStack;

/// File extensions taken as images (compared case-insensitively). The FITS ones
/// ([`crate::fits::FITS_EXTENSIONS`]) also count when followed by `.fz` (`x.fits.fz`).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "fits", "fit", "fts"];

/// Default number of images decoded per batch.
pub const DEFAULT_BATCH_SIZE: usize = 256;

/// Options for loading a folder of images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Crop and resize applied to every image (default: resize to 80 × 80, no crop).
    pub preprocess: Preprocess,
    /// Skip unreadable or corrupt images, reporting them, instead of failing (`--skip-bad`).
    /// Default: false, in which case loading fails with an error listing every bad file.
    pub skip_bad: bool,
    /// Images decoded per batch (default [`DEFAULT_BATCH_SIZE`]); bounds memory while streaming.
    pub batch_size: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            preprocess: Preprocess::default(),
            skip_bad: false,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

impl LoadOptions {
    fn validate(&self) -> Result<()> {
        self.preprocess.validate()?;
        if self.batch_size == 0 {
            return Err(IoError::InvalidOption {
                name: "batch_size",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// Lists the image files (`.jpg`, `.jpeg`, `.png`, `.fits`, `.fit`, `.fts`, the FITS ones also with
/// `.fz` after them; any case) of `folder`, sorted by file name.
/// Hidden files (name starting with `.`) and sub-folders are ignored.
pub fn list_images(folder: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let folder = folder.as_ref();
    let entries = std::fs::read_dir(folder).map_err(|e| IoError::io(folder, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| IoError::io(folder, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !is_image_name(&path) {
            continue;
        }
        // Follows symlinks: a link to an image counts as the image.
        if path.is_dir() {
            continue;
        }
        files.push(path);
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        return Err(IoError::EmptyFolder {
            path: folder.to_path_buf(),
        });
    }
    Ok(files)
}

fn is_image_name(path: &Path) -> bool {
    crate::fits::is_fits_name(path)
        || path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The galaxy id of an image file: its file stem (`"587722.jpg"` → `"587722"`), without every FITS
/// extension (`"587722.fits.fz"` → `"587722"`).
pub fn galaxy_id(path: &Path) -> String {
    if let Some(stem) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(crate::fits::fits_stem)
    {
        return stem.to_owned();
    }
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One batch of preprocessed images, in file-name order.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// Index of this batch's first file in the folder's sorted file list.
    pub first_index: usize,
    /// Galaxy ids (file stems) of the images in `images`, in order.
    pub ids: Vec<String>,
    /// `(n, H, W, 3)` values in [0, 1].
    pub images: Array4<f32>,
    /// Files of this batch that were skipped (only with `skip_bad`), with the reason.
    pub skipped: Vec<BadImage>,
}

/// An iterator over batches of a folder's images; see [`image_batches`].
///
/// With `skip_bad` off, the first batch holding a bad file makes the iterator check every remaining
/// file, yield one [`IoError::BadImages`] listing all bad files of the folder, and then end.
pub struct ImageBatches {
    folder: PathBuf,
    files: Vec<PathBuf>,
    options: LoadOptions,
    next: usize,
    /// Size every image must have when `preprocess.size` is `None` (set by the first good image).
    native_size: Option<(u32, u32)>,
    finished: bool,
}

/// Starts streaming the images of `folder` in batches of `options.batch_size`.
///
/// Fails at once if the folder cannot be read or holds no images, or if an option is invalid.
pub fn image_batches(folder: impl AsRef<Path>, options: &LoadOptions) -> Result<ImageBatches> {
    options.validate()?;
    let folder = folder.as_ref().to_path_buf();
    let files = list_images(&folder)?;
    Ok(ImageBatches {
        folder,
        files,
        options: options.clone(),
        next: 0,
        native_size: None,
        finished: false,
    })
}

impl ImageBatches {
    /// All image files of the folder, sorted by name.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Keeps only the files `range` of the sorted list (one shard of a job array), so that the
    /// batches cover `files()[range]`. A range past the end is clipped.
    pub fn restrict(mut self, range: std::ops::Range<usize>) -> Self {
        let end = range.end.min(self.files.len());
        let start = range.start.min(end);
        self.files = self.files[start..end].to_vec();
        self.next = 0;
        self
    }

    /// Number of image files in the folder (bad ones included).
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Number of batches this iterator yields when no file is bad.
    pub fn batch_count(&self) -> usize {
        self.files.len().div_ceil(self.options.batch_size)
    }

    /// Output `(height, width)` of each image, if fixed by the options.
    pub fn output_size(&self) -> Option<(usize, usize)> {
        self.options
            .preprocess
            .size
            .map(|(w, h)| (h as usize, w as usize))
    }

    /// Decodes the files `range` in parallel, in order.
    fn decode_range(&self, range: std::ops::Range<usize>) -> Vec<Result<Decoded>> {
        let options = self.options.preprocess;
        self.files[range]
            .par_iter()
            .map_init(Resizer::new, |resizer, path| {
                let (img, conversion) = load_decoded(path, &options, resizer)?;
                if conversion != Conversion::None {
                    tracing::warn!(file = %path.display(), "{conversion}");
                }
                Ok(img)
            })
            .collect()
    }

    /// The problem with a decoded image's size, when every image must share one size.
    fn size_problem(&mut self, img: &Decoded) -> Option<ImageProblem> {
        if self.options.preprocess.size.is_some() {
            return None;
        }
        let size = img.size();
        match self.native_size {
            None => {
                self.native_size = Some(size);
                None
            }
            Some(expected) if expected != size => Some(ImageProblem::SizeMismatch {
                found: size,
                expected,
            }),
            Some(_) => None,
        }
    }

    /// Checks every file from `start` on (decode only the problem matters) and collects the bad ones.
    fn remaining_bad(&mut self, start: usize) -> Vec<BadImage> {
        let mut bad = Vec::new();
        let step = self.options.batch_size;
        let mut i = start;
        while i < self.files.len() {
            let end = (i + step).min(self.files.len());
            let results = self.decode_range(i..end);
            for (k, r) in results.into_iter().enumerate() {
                let problem = match r {
                    Ok(img) => self.size_problem(&img),
                    Err(e) => Some(problem_of(e)),
                };
                if let Some(problem) = problem {
                    bad.push(BadImage {
                        path: self.files[i + k].clone(),
                        problem,
                    });
                }
            }
            i = end;
        }
        bad
    }
}

/// Turns an error about one image into the problem to report for it.
fn problem_of(e: IoError) -> ImageProblem {
    match e {
        IoError::Image { problem, .. } => problem,
        IoError::Io { source, .. } => ImageProblem::Unreadable(source.to_string()),
        other => ImageProblem::Corrupt(other.to_string()),
    }
}

impl Iterator for ImageBatches {
    type Item = Result<ImageBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished || self.next >= self.files.len() {
            return None;
        }
        let start = self.next;
        let end = (start + self.options.batch_size).min(self.files.len());
        self.next = end;
        let results = self.decode_range(start..end);

        let mut good: Vec<(usize, Decoded)> = Vec::with_capacity(results.len());
        let mut bad = Vec::new();
        for (k, r) in results.into_iter().enumerate() {
            let problem = match r {
                Ok(img) => match self.size_problem(&img) {
                    None => {
                        good.push((start + k, img));
                        continue;
                    }
                    Some(p) => p,
                },
                Err(e) => problem_of(e),
            };
            bad.push(BadImage {
                path: self.files[start + k].clone(),
                problem,
            });
        }

        if !bad.is_empty() && !self.options.skip_bad {
            self.finished = true;
            bad.extend(self.remaining_bad(end));
            return Some(Err(IoError::BadImages {
                folder: self.folder.clone(),
                total: self.files.len(),
                bad,
            }));
        }
        for b in &bad {
            tracing::warn!(file = %b.path.display(), "skipped: {}", b.problem);
        }

        let (h, w) = match good.first() {
            Some((_, img)) => (img.size().1 as usize, img.size().0 as usize),
            None => self.output_size().unwrap_or_default(),
        };
        let mut images = Array4::<f32>::zeros((good.len(), h, w, 3));
        images
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(good.par_iter())
            .for_each(|(mut slot, (_, img))| {
                // All good images have (h, w): fixed output size, or checked by size_problem.
                let dst = slot
                    .as_slice_mut()
                    .expect("a freshly allocated standard-layout array is contiguous");
                img.write_unit(dst);
            });
        let ids = good
            .iter()
            .map(|(i, _)| galaxy_id(&self.files[*i]))
            .collect();
        Some(Ok(ImageBatch {
            first_index: start,
            ids,
            images,
            skipped: bad,
        }))
    }
}

/// The images of a folder, loaded whole, and the files skipped (only with `skip_bad`).
#[derive(Debug, Clone)]
pub struct LoadedImages {
    /// Ids and `(N, H, W, 3)` pixel values in [0, 1].
    pub stack: ImageStack,
    /// Files skipped because they could not be used, with the reason (empty unless `skip_bad`).
    pub skipped: Vec<BadImage>,
}

/// Loads every image of `folder` into one `(N, H, W, 3)` stack of values in [0, 1], with galaxy ids.
///
/// Without `skip_bad`, any bad file makes this fail with [`IoError::BadImages`] listing every bad file.
/// With `skip_bad`, bad files are left out and returned in [`LoadedImages::skipped`]; if no image at
/// all is usable that is still an error.
pub fn load_image_folder(folder: impl AsRef<Path>, options: &LoadOptions) -> Result<LoadedImages> {
    let batches = image_batches(folder, options)?;
    let folder = batches.folder.clone();
    let total = batches.files.len();
    let mut skipped = Vec::new();
    let mut ids = Vec::with_capacity(total);
    let mut stack: Option<Array4<f32>> = None;
    let mut filled = 0;
    for batch in batches {
        let batch = batch?;
        skipped.extend(batch.skipped);
        let n = batch.ids.len();
        if n == 0 {
            continue;
        }
        let (_, h, w, c) = batch.images.dim();
        // Allocate once for all files; trimmed below if some were skipped.
        let all = stack.get_or_insert_with(|| Array4::zeros((total, h, w, c)));
        all.slice_mut(ndarray::s![filled..filled + n, .., .., ..])
            .assign(&batch.images);
        filled += n;
        ids.extend(batch.ids);
    }
    let Some(mut images) = stack else {
        return Err(IoError::BadImages {
            folder,
            total,
            bad: skipped,
        });
    };
    if filled < total {
        images = images
            .slice_move(ndarray::s![..filled, .., .., ..])
            .as_standard_layout()
            .into_owned();
    }
    Ok(LoadedImages {
        stack: ImageStack::new(ids, images)?,
        skipped,
    })
}
