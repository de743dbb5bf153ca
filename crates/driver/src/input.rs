//! Getting from the user's input (a folder of images or an `.npy` stack) to a feature matrix, keeping
//! what the report needs to show each galaxy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ndarray::{Array1, Array2, ArrayView2, ArrayView3};
use sdss_io::{BadImage, ImageStack, LoadOptions};

use crate::cli::{FeatureKind, Layer};
use crate::progress::Progress;

/// Where the images come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// A folder of JPEG/PNG files.
    Folder(PathBuf),
    /// An `(N, H, W, 3)` `.npy` stack with ids beside it.
    Npy(PathBuf),
}

impl Input {
    /// Builds the input from the two mutually exclusive options.
    pub fn from_options(images: Option<&Path>, npy: Option<&Path>) -> Result<Self> {
        match (images, npy) {
            (Some(dir), None) => Ok(Input::Folder(dir.to_owned())),
            (None, Some(file)) => Ok(Input::Npy(file.to_owned())),
            (Some(_), Some(_)) => bail!("give either --images or --npy, not both"),
            (None, None) => bail!("no input: give --images DIR or --npy FILE"),
        }
    }
}

/// How to compute features.
#[derive(Debug, Clone)]
pub struct FeatureRequest {
    /// Pixels or CNN.
    pub kind: FeatureKind,
    /// Weights file for the CNN.
    pub weights: Option<PathBuf>,
    /// CNN tap.
    pub layer: Layer,
    /// Skip bad images.
    pub skip_bad: bool,
    /// Images per batch.
    pub batch_size: usize,
    /// Images with more pixels than this are refused before decoding.
    pub max_image_pixels: u64,
    /// Only these files of the sorted folder (one shard of a job array); all when `None`.
    pub files: Option<std::ops::Range<usize>>,
}

/// The image batches of `dir`, restricted to `files` when given.
fn batches(
    dir: &Path,
    options: &LoadOptions,
    files: Option<std::ops::Range<usize>>,
) -> Result<sdss_io::ImageBatches> {
    let all = sdss_io::image_batches(dir, options)?;
    Ok(match files {
        Some(range) => all.restrict(range),
        None => all,
    })
}

/// What is held in memory for the features and the report's pictures.
enum Store {
    /// Raw pixels: the features are a view of the preprocessed stack.
    Pixels(ImageStack),
    /// CNN features, with the stack they came from.
    CnnWithStack(Array2<f32>, ImageStack),
    /// CNN features of a streamed folder; pictures are re-read from the files on demand (only the few
    /// shown), so the decoded images never all sit in memory.
    CnnWithFiles(Array2<f32>, Vec<PathBuf>),
}

/// Galaxies with their features.
pub struct Galaxies {
    /// Galaxy ids, in row order.
    pub ids: Vec<String>,
    store: Store,
    /// Images skipped with `--skip-bad`.
    pub skipped: Vec<BadImage>,
    /// The pixel limit the images were read under; thumbnails are re-read under it too.
    max_image_pixels: u64,
    /// For a stack read from a folder, each galaxy's file, so that FITS thumbnails can be drawn as
    /// the Lupton composite rather than the normalised feature bands. Empty for `.npy` input.
    stack_files: Vec<PathBuf>,
}

impl Galaxies {
    /// The (N, D) feature matrix.
    pub fn features(&self) -> ArrayView2<'_, f32> {
        match &self.store {
            Store::Pixels(stack) => stack.pixel_matrix(),
            Store::CnnWithStack(f, _) | Store::CnnWithFiles(f, _) => f.view(),
        }
    }

    /// Number of galaxies.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The 80×80 preprocessed picture of galaxy `index` as (H, W, 3) values in [0, 1].
    pub fn thumbnail(&self, index: usize) -> Result<ndarray::Array3<f32>> {
        match &self.store {
            Store::Pixels(stack) | Store::CnnWithStack(_, stack) => {
                match self.stack_files.get(index) {
                    Some(path) if sdss_io::fits::is_fits_name(path) => self.display_rgb(path),
                    _ => {
                        let img: ArrayView3<f32> =
                            stack.images().index_axis(ndarray::Axis(0), index);
                        Ok(img.to_owned())
                    }
                }
            }
            Store::CnnWithFiles(_, files) => {
                let path = files.get(index).context("galaxy index out of range")?;
                self.display_rgb(path)
            }
        }
    }

    /// Re-reads one file as the picture a person looks at (JPEG/PNG as preprocessed, FITS as a
    /// Lupton RGB composite).
    fn display_rgb(&self, path: &Path) -> Result<ndarray::Array3<f32>> {
        let options = sdss_io::Preprocess {
            max_pixels: self.max_image_pixels,
            ..sdss_io::Preprocess::default()
        };
        Ok(sdss_io::load_display_rgb(path, &options)?)
    }
}

/// Loads the input and computes the requested features.
pub fn load(input: &Input, request: &FeatureRequest, progress: &Progress) -> Result<Galaxies> {
    let options = LoadOptions {
        skip_bad: request.skip_bad,
        batch_size: request.batch_size,
        preprocess: sdss_io::Preprocess {
            max_pixels: request.max_image_pixels,
            ..sdss_io::Preprocess::default()
        },
    };
    match request.kind {
        FeatureKind::Pixels => {
            let (stack, skipped, stack_files) =
                load_stack(input, &options, request.files.clone(), progress)?;
            Ok(Galaxies {
                ids: stack.ids().to_vec(),
                store: Store::Pixels(stack),
                skipped,
                max_image_pixels: request.max_image_pixels,
                stack_files,
            })
        }
        FeatureKind::Cnn => {
            let model = load_model(request.weights.as_deref())?;
            let tap = request.layer.tap();
            match input {
                Input::Npy(_) => {
                    let (stack, skipped, stack_files) =
                        load_stack(input, &options, None, progress)?;
                    let bar = progress.bar(stack.len() as u64, "CNN features");
                    let batches = stack
                        .images()
                        .axis_chunks_iter(ndarray::Axis(0), request.batch_size)
                        .map(|b| Ok::<_, sdss_io::IoError>(b.to_owned()));
                    let features = model
                        .features_stream(batches, tap, |done| bar.set_position(done as u64))
                        .context("CNN feature extraction failed")?;
                    bar.finish();
                    Ok(Galaxies {
                        ids: stack.ids().to_vec(),
                        store: Store::CnnWithStack(features, stack),
                        skipped,
                        max_image_pixels: request.max_image_pixels,
                        stack_files,
                    })
                }
                Input::Folder(dir) => {
                    // Stream: decoded images are held one batch at a time, so any folder size fits.
                    let batches = batches(dir, &options, request.files.clone())?;
                    let by_stem: HashMap<String, PathBuf> = batches
                        .files()
                        .iter()
                        .map(|p| (sdss_io::folder::galaxy_id(p), p.clone()))
                        .collect();
                    let bar = progress.bar(batches.file_count() as u64, "CNN features");
                    let mut ids = Vec::new();
                    let mut skipped = Vec::new();
                    let stream = batches.map(|r| {
                        r.map(|b| {
                            ids.extend(b.ids);
                            skipped.extend(b.skipped);
                            b.images
                        })
                    });
                    let features = model
                        .features_stream(stream, tap, |done| bar.set_position(done as u64))
                        .map_err(|e| {
                            anyhow::anyhow!("{}", crate::config::one_line(&e.to_string()))
                        })?;
                    bar.finish();
                    report_skipped(&skipped);
                    let files = ids
                        .iter()
                        .map(|id| by_stem.get(id).cloned().context("image file vanished"))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(Galaxies {
                        ids,
                        store: Store::CnnWithFiles(features, files),
                        skipped,
                        max_image_pixels: request.max_image_pixels,
                        stack_files: Vec::new(),
                    })
                }
            }
        }
    }
}

/// Galaxies whose features were computed before: `from` is a `features` or `merge` output
/// (`.npy` with its `.ids.csv`) or the folder of parts `features --shard` wrote (checked and
/// joined in memory). The images folder gives each galaxy's picture, matched by id.
pub fn load_precomputed(from: &Path, input: &Input, max_image_pixels: u64) -> Result<Galaxies> {
    let Input::Folder(dir) = input else {
        bail!("--features-from needs --images DIR for the galaxies' pictures");
    };
    let (features, ids) = if from.is_dir() {
        let (features, ids, _) = crate::shard::merge(from)?;
        (features, ids)
    } else {
        let features = sdss_io::npy::read_matrix_f32(from)?;
        let ids = sdss_io::read_ids_csv(sdss_io::stack::ids_path_for(from))?;
        if ids.len() != features.nrows() {
            bail!(
                "{}: {} rows, but its ids file has {} ids",
                from.display(),
                features.nrows(),
                ids.len()
            );
        }
        (features, ids)
    };
    let by_stem: HashMap<String, PathBuf> = sdss_io::folder::list_images(dir)?
        .into_iter()
        .map(|p| (sdss_io::folder::galaxy_id(&p), p))
        .collect();
    let files = ids
        .iter()
        .map(|id| {
            by_stem.get(id).cloned().with_context(|| {
                format!(
                    "--features-from {}: galaxy `{id}` has no image in {}",
                    from.display(),
                    dir.display()
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Galaxies {
        ids,
        store: Store::CnnWithFiles(features, files),
        skipped: Vec::new(),
        max_image_pixels,
        stack_files: Vec::new(),
    })
}

/// Reads the whole input as one stack, with each galaxy's file when it came from a folder.
fn load_stack(
    input: &Input,
    options: &LoadOptions,
    files: Option<std::ops::Range<usize>>,
    progress: &Progress,
) -> Result<(ImageStack, Vec<BadImage>, Vec<PathBuf>)> {
    match input {
        Input::Npy(path) => Ok((sdss_io::read_image_stack_npy(path)?, Vec::new(), Vec::new())),
        Input::Folder(dir) => {
            let batches = batches(dir, options, files)?;
            let by_stem: HashMap<String, PathBuf> = batches
                .files()
                .iter()
                .map(|p| (sdss_io::folder::galaxy_id(p), p.clone()))
                .collect();
            let bar = progress.bar(batches.file_count() as u64, "loading images");
            let mut ids = Vec::new();
            let mut chunks = Vec::new();
            let mut skipped = Vec::new();
            for batch in batches {
                let batch = batch?;
                bar.inc((batch.ids.len() + batch.skipped.len()) as u64);
                ids.extend(batch.ids);
                skipped.extend(batch.skipped);
                chunks.push(batch.images);
            }
            bar.finish();
            report_skipped(&skipped);
            let views: Vec<_> = chunks.iter().map(|c| c.view()).collect();
            let images = ndarray::concatenate(ndarray::Axis(0), &views)
                .context("images of different sizes in one folder")?;
            drop(chunks);
            let files = ids
                .iter()
                .map(|id| by_stem.get(id).cloned().context("image file vanished"))
                .collect::<Result<Vec<_>>>()?;
            Ok((ImageStack::new(ids, images)?, skipped, files))
        }
    }
}

fn report_skipped(skipped: &[BadImage]) {
    if !skipped.is_empty() {
        tracing::warn!("skipped {} bad image(s):", skipped.len());
        for bad in skipped {
            tracing::warn!("  {bad}");
        }
    }
}

/// Loads converted or trained CNN weights; without a file, the shipped encoder
/// ([`sdss_cnn::pretrained`]).
pub fn load_model(weights: Option<&Path>) -> Result<sdss_cnn::CnnModel> {
    let Some(path) = weights else {
        tracing::info!(
            "no --weights: the shipped encoder {} (small, trained self-supervised on 6,437 SDSS galaxies; its feature quality: docs/feature-quality.md)",
            sdss_cnn::pretrained::NAME
        );
        return sdss_cnn::pretrained::model().map_err(|e| anyhow::anyhow!("{e}"));
    };
    if !path.exists() {
        bail!(
            "weights file {} does not exist (make it with `cargo xtask fetch-weights` or `sdss-clustering train`)",
            path.display()
        );
    }
    sdss_cnn::CnnModel::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Where the feature-quality study's table is, for reports whose features come from the shipped
/// encoder or a `train` output.
pub const FEATURE_STUDY_URL: &str = concat!(
    env!("CARGO_PKG_REPOSITORY"),
    "/blob/main/docs/feature-quality.md"
);

/// Which network the CNN features come from, in words, and whether it was trained by this project
/// (the shipped encoder or a `train` output, whose manifest has a `training` section).
pub fn describe_weights(weights: Option<&Path>) -> (String, bool) {
    let Some(path) = weights else {
        return (
            format!(
                "the shipped encoder {} (small, self-supervised VICReg on the 6,437 SDSS galaxies)",
                sdss_cnn::pretrained::NAME
            ),
            true,
        );
    };
    let manifest = std::fs::read_to_string(sdss_cnn::keras::manifest_path(path))
        .ok()
        .and_then(|t| serde_json::from_str::<sdss_cnn::keras::Manifest>(&t).ok());
    match manifest.as_ref().and_then(|m| m.training.as_ref()) {
        Some(t) => (
            format!(
                "{} (trained by `sdss-clustering train`: {} {}, {} epochs)",
                path.display(),
                t["arch"].as_str().unwrap_or("?"),
                match t["task"].as_str() {
                    Some("self-supervised") =>
                        format!("self-supervised ({})", t["method"].as_str().unwrap_or("?")),
                    Some(task) => format!("{task} `{}`", t["target"].as_str().unwrap_or("?")),
                    None => "?".to_owned(),
                },
                t["epochs"]
            ),
            true,
        ),
        None => (path.display().to_string(), false),
    }
}

/// Reads reference labels: a `.npy` of N integers, or a CSV with an `id` column and a `class` (or
/// `label`) column whose values may be names; rows are matched to `ids`.
pub fn read_truth(path: &Path, ids: &[String]) -> Result<Array1<i64>> {
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if !is_csv {
        let labels = sdss_io::npy::read_npy(path)?.into_f64();
        if labels.ndim() != 1 || labels.len() != ids.len() {
            bail!(
                "{}: truth labels have shape {:?}, expected ({},)",
                path.display(),
                labels.shape(),
                ids.len()
            );
        }
        return Ok(labels.iter().map(|&v| v as i64).collect());
    }
    let rows = sdss_io::stack::read_csv(path)?;
    let Some(((_, header), body)) = rows.split_first() else {
        bail!("{}: empty CSV", path.display());
    };
    let col = |names: &[&str]| header.iter().position(|h| names.contains(&h.trim()));
    let id_col = col(&["id"]).with_context(|| format!("{}: no `id` column", path.display()))?;
    let class_col = col(&["class", "label"])
        .with_context(|| format!("{}: no `class` or `label` column", path.display()))?;
    let mut codes: HashMap<String, i64> = HashMap::new();
    let mut by_id: HashMap<&str, i64> = HashMap::new();
    for (line, fields) in body {
        let (Some(id), Some(class)) = (fields.get(id_col), fields.get(class_col)) else {
            bail!("{}:{line}: too few fields", path.display());
        };
        let next = codes.len() as i64;
        let code = match class.trim().parse::<i64>() {
            Ok(v) => v,
            Err(_) => *codes.entry(class.trim().to_owned()).or_insert(next),
        };
        by_id.insert(id.as_str(), code);
    }
    ids.iter()
        .map(|id| {
            by_id
                .get(id.as_str())
                .copied()
                .with_context(|| format!("{}: no row for galaxy `{id}`", path.display()))
        })
        .collect()
}
