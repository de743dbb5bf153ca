//! Getting from the user's input (a folder of images or an `.npy` stack) to a feature matrix, keeping
//! what the report needs to show each galaxy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ndarray::{Array1, Array2, ArrayView2, ArrayView3};
use sdss_io::mapped::{MappedMatrix, NpyMatrixWriter};
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
    /// Where the CNN runs.
    pub device: sdss_cnn::ComputeDevice,
    /// Images with more pixels than this are refused before decoding.
    pub max_image_pixels: u64,
    /// Only these files of the sorted folder (one shard of a job array); all when `None`.
    pub files: Option<std::ops::Range<usize>>,
}

impl FeatureRequest {
    /// How the features are made (`pixels`, or `cnn:<layer>:<weights>`): recorded beside shard
    /// parts and a run's features, so that features of another request are never merged or resumed.
    pub fn describe(&self) -> String {
        match self.kind {
            FeatureKind::Pixels => "pixels".to_owned(),
            _ => format!(
                "cnn:{:?}:{}",
                self.layer,
                self.weights.as_ref().map_or_else(
                    || sdss_cnn::pretrained::NAME.to_owned(),
                    |w| w.display().to_string()
                )
            ),
        }
    }
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
    /// Features of a folder (or computed before), written to a file a batch at a time and
    /// memory-mapped; pictures are re-read from the files on demand (only the few shown), so
    /// neither the decoded images nor the features ever all sit in memory.
    Mapped(MappedMatrix, Vec<PathBuf>),
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
}

impl Galaxies {
    /// The (N, D) feature matrix.
    pub fn features(&self) -> ArrayView2<'_, f32> {
        match &self.store {
            Store::Pixels(stack) => stack.pixel_matrix(),
            Store::CnnWithStack(f, _) => f.view(),
            Store::Mapped(m, _) => m.view(),
        }
    }

    /// The memory-mapped feature file, when the features are one (they can then be read block
    /// by block, never held).
    pub fn mapped(&self) -> Option<&MappedMatrix> {
        match &self.store {
            Store::Mapped(m, _) => Some(m),
            _ => None,
        }
    }

    /// Number of galaxies.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The 80×80 preprocessed picture of galaxy `index` as (H, W, 3) values in [0, 1].
    pub fn thumbnail(&self, index: usize) -> Result<ndarray::Array3<f32>> {
        match &self.store {
            // An `.npy` stack holds the pictures themselves.
            Store::Pixels(stack) | Store::CnnWithStack(_, stack) => {
                let img: ArrayView3<f32> = stack.images().index_axis(ndarray::Axis(0), index);
                Ok(img.to_owned())
            }
            Store::Mapped(_, files) => {
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

/// Loads the input, computes the requested features and writes them to `features_file`.
///
/// A folder's features are written a batch at a time as they are computed and memory-mapped
/// from the file, so no more than a batch of images or features is ever held (the file appears
/// whole or not at all). An `.npy` stack is one file, read whole; its features are written
/// from memory.
pub fn load(
    input: &Input,
    request: &FeatureRequest,
    features_file: &Path,
    progress: &Progress,
) -> Result<Galaxies> {
    let path = match input {
        Input::Folder(dir) => return stream_folder(dir, request, features_file, progress),
        Input::Npy(path) => path,
    };
    let stack = sdss_io::read_image_stack_npy(path)?;
    let store = match request.kind {
        FeatureKind::Pixels => Store::Pixels(stack),
        FeatureKind::Cnn => {
            let model = load_model(request.weights.as_deref())?;
            let placed = model.on_device(request.device)?;
            let bar = progress.bar(stack.len() as u64, "CNN features");
            let tap = request.layer.tap();
            let mut features =
                ndarray::Array2::zeros((stack.len(), model.config().tap_width(tap)?));
            let axis = ndarray::Axis(0);
            for (batch, mut rows) in stack
                .images()
                .axis_chunks_iter(axis, request.batch_size)
                .zip(features.axis_chunks_iter_mut(axis, request.batch_size))
            {
                rows.assign(
                    &placed
                        .features(batch, tap)
                        .context("CNN feature extraction failed")?,
                );
                bar.inc(rows.nrows() as u64);
            }
            bar.finish();
            Store::CnnWithStack(features, stack)
        }
    };
    let ids = match &store {
        Store::Pixels(stack) | Store::CnnWithStack(_, stack) => stack.ids().to_vec(),
        Store::Mapped(..) => Vec::new(),
    };
    let galaxies = Galaxies {
        ids,
        store,
        skipped: Vec::new(),
        max_image_pixels: request.max_image_pixels,
    };
    sdss_io::npy::write_npy(features_file, &galaxies.features())?;
    Ok(galaxies)
}

/// A folder's features, written to `features_file` a batch at a time and mapped back.
fn stream_folder(
    dir: &Path,
    request: &FeatureRequest,
    features_file: &Path,
    progress: &Progress,
) -> Result<Galaxies> {
    let options = LoadOptions {
        skip_bad: request.skip_bad,
        batch_size: request.batch_size,
        preprocess: sdss_io::Preprocess {
            max_pixels: request.max_image_pixels,
            ..sdss_io::Preprocess::default()
        },
    };
    let model = match request.kind {
        FeatureKind::Cnn => Some(load_model(request.weights.as_deref())?),
        FeatureKind::Pixels => None,
    };
    let model = match &model {
        Some(m) => Some(m.on_device(request.device)?),
        None => None,
    };
    let tap = request.layer.tap();
    let batches = batches(dir, &options, request.files.clone())?;
    let by_stem: HashMap<String, PathBuf> = batches
        .files()
        .iter()
        .map(|p| (sdss_io::folder::galaxy_id(p), p.clone()))
        .collect();
    let max_rows = batches.file_count();
    let bar = progress.bar(
        max_rows as u64,
        match model {
            Some(_) => "CNN features",
            None => "loading images",
        },
    );
    let mut ids = Vec::new();
    let mut skipped = Vec::new();
    let mut writer: Option<NpyMatrixWriter> = None;
    for batch in batches {
        let batch =
            batch.map_err(|e| anyhow::anyhow!("{}", crate::config::one_line(&e.to_string())))?;
        bar.inc((batch.ids.len() + batch.skipped.len()) as u64);
        skipped.extend(batch.skipped);
        if batch.ids.is_empty() {
            continue;
        }
        let rows = match &model {
            Some(model) => model
                .features(batch.images.view(), tap)
                .context("CNN feature extraction failed")?,
            None => {
                // Raw pixels: each (H, W, 3) image flattened in C order, as the stack's matrix.
                let (b, h, w, c) = batch.images.dim();
                batch
                    .images
                    .into_shape_with_order((b, h * w * c))
                    .context("image batch is not contiguous")?
            }
        };
        if writer.is_none() {
            writer = Some(NpyMatrixWriter::create(
                features_file,
                rows.ncols(),
                max_rows,
            )?);
        }
        if let Some(w) = writer.as_mut() {
            w.append(rows.view())
                .with_context(|| format!("images {} of {}", batch.first_index, dir.display()))?;
        }
        ids.extend(batch.ids);
    }
    bar.finish();
    report_skipped(&skipped);
    let Some(writer) = writer else {
        bail!(
            "{}: no image could be read ({} skipped)",
            dir.display(),
            skipped.len()
        );
    };
    writer.finish()?;
    let features = MappedMatrix::open(features_file)?;
    let files = ids
        .iter()
        .map(|id| by_stem.get(id).cloned().context("image file vanished"))
        .collect::<Result<Vec<_>>>()?;
    Ok(Galaxies {
        ids,
        store: Store::Mapped(features, files),
        skipped,
        max_image_pixels: request.max_image_pixels,
    })
}

/// Galaxies whose features were computed before: `from` is a `features` or `merge` output
/// (`.npy` with its `.ids.csv`) or the folder of parts `features --shard` wrote (checked and
/// joined a part at a time). Either way the features are written to `features_file` and mapped
/// from it. The images folder gives each galaxy's picture, matched by id.
pub fn load_precomputed(
    from: &Path,
    input: &Input,
    max_image_pixels: u64,
    features_file: &Path,
) -> Result<Galaxies> {
    let Input::Folder(dir) = input else {
        bail!("--features-from needs --images DIR for the galaxies' pictures");
    };
    let ids = if from.is_dir() {
        crate::shard::merge_into(from, features_file)?.0
    } else {
        let ids = sdss_io::read_ids_csv(sdss_io::stack::ids_path_for(from))?;
        match MappedMatrix::open(from) {
            // float32 already: copied as it is (the copy is renamed into place whole).
            Ok(_) => {
                let tmp = features_file.with_extension("npy.copying");
                std::fs::copy(from, &tmp)
                    .and_then(|_| std::fs::rename(&tmp, features_file))
                    .with_context(|| format!("cannot copy {} into the run", from.display()))?;
            }
            // Another dtype (float64 from numpy, say): converted in memory.
            Err(sdss_io::IoError::NpyDtype { .. }) => {
                let features = sdss_io::npy::read_matrix_f32(from)?;
                sdss_io::npy::write_npy(features_file, &features.view())?;
            }
            Err(e) => return Err(e.into()),
        }
        ids
    };
    let features = MappedMatrix::open(features_file)?;
    if ids.len() != features.nrows() {
        bail!(
            "{}: {} rows, but its ids file has {} ids",
            from.display(),
            features.nrows(),
            ids.len()
        );
    }
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
        store: Store::Mapped(features, files),
        skipped: Vec::new(),
        max_image_pixels,
    })
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

/// What a run's `features.json` says of its `features.npy` (with `ids.csv` beside it), so that
/// `run --resume` takes them only for the same images and request. Written after both, so its
/// presence means they are complete.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeaturesRecord {
    /// Always [`FeaturesRecord::FORMAT`].
    pub format: String,
    /// The images folder.
    pub input: PathBuf,
    /// Image files in it when the features were made.
    pub input_files: usize,
    /// [`FeatureRequest::describe`].
    pub features: String,
    /// Rows (galaxies) and columns of `features.npy`.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Files skipped as bad, by name.
    pub skipped: Vec<String>,
}

impl FeaturesRecord {
    /// The format tag.
    pub const FORMAT: &'static str = "sdss-clustering/run-features/1";
}

/// Writes `run_dir/features.json` for features computed from the images folder `dir` (each of
/// whose files is a row of the features or a skipped image).
pub fn write_features_record(
    run_dir: &Path,
    dir: &Path,
    request: &FeatureRequest,
    galaxies: &Galaxies,
) -> Result<()> {
    let (rows, cols) = galaxies.features().dim();
    let record = FeaturesRecord {
        format: FeaturesRecord::FORMAT.to_owned(),
        input: dir.to_owned(),
        input_files: rows + galaxies.skipped.len(),
        features: request.describe(),
        rows,
        cols,
        skipped: galaxies
            .skipped
            .iter()
            .map(|b| sdss_io::folder::galaxy_id(&b.path))
            .collect(),
    };
    sdss_io::atomic::write_bytes_atomic(
        run_dir.join("features.json"),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    Ok(())
}

/// The galaxies of a killed run whose `features.npy`, `ids.csv` and `features.json` were carried
/// into `run_dir`, when they are of the images in `input` now and of `request`; `None`, saying why
/// in the log, when there is nothing to resume or it does not check out (the features are then
/// computed again). The bad images are read again, so their problems are reported as before.
pub fn resumed(
    input: &Input,
    request: &FeatureRequest,
    run_dir: &Path,
) -> Result<Option<Galaxies>> {
    let record_path = run_dir.join("features.json");
    let Input::Folder(dir) = input else {
        return Ok(None);
    };
    if !record_path.is_file() {
        tracing::info!("--resume: no killed run's features to take; computing them");
        return Ok(None);
    }
    let stale = |why: String| {
        tracing::warn!("--resume: {why}; computing the features again");
        Ok(None)
    };
    let record: FeaturesRecord = match std::fs::read_to_string(&record_path)
        .map_err(anyhow::Error::from)
        .and_then(|t| Ok(serde_json::from_str(&t)?))
    {
        Ok(r) => r,
        Err(e) => return stale(format!("{}: {e}", record_path.display())),
    };
    let files = sdss_io::folder::list_images(dir)?;
    if record.format != FeaturesRecord::FORMAT {
        return stale(format!(
            "{}: format `{}`",
            record_path.display(),
            record.format
        ));
    }
    if record.input != *dir || record.input_files != files.len() {
        return stale(format!(
            "the killed run's features are of {} ({} images), this run's images are {} ({})",
            record.input.display(),
            record.input_files,
            dir.display(),
            files.len()
        ));
    }
    if record.features != request.describe() {
        return stale(format!(
            "the killed run's features are `{}`, this run asks for `{}`",
            record.features,
            request.describe()
        ));
    }
    if !record.skipped.is_empty() && !request.skip_bad {
        return stale("the killed run skipped bad images, this run has no --skip-bad".into());
    }
    let features = match MappedMatrix::open(run_dir.join("features.npy")) {
        Ok(f) => f,
        Err(e) => return stale(e.to_string()),
    };
    let ids = sdss_io::read_ids_csv(run_dir.join("ids.csv"))?;
    if features.nrows() != record.rows
        || features.ncols() != record.cols
        || ids.len() != record.rows
        || ids.len() + record.skipped.len() != files.len()
    {
        return stale(format!(
            "features.npy is {} x {} with {} ids, its record says {} x {} with {} skipped of {} images",
            features.nrows(),
            features.ncols(),
            ids.len(),
            record.rows,
            record.cols,
            record.skipped.len(),
            files.len()
        ));
    }
    let by_stem: HashMap<String, (usize, PathBuf)> = files
        .iter()
        .enumerate()
        .map(|(i, p)| (sdss_io::folder::galaxy_id(p), (i, p.clone())))
        .collect();
    let mut rows = Vec::with_capacity(ids.len());
    for id in &ids {
        match by_stem.get(id) {
            Some((_, p)) => rows.push(p.clone()),
            None => {
                return stale(format!(
                    "galaxy `{id}` has no image in {} now",
                    dir.display()
                ))
            }
        }
    }
    let mut skipped = Vec::new();
    for name in &record.skipped {
        let Some(&(index, _)) = by_stem.get(name) else {
            return stale(format!(
                "skipped image `{name}` is gone from {}",
                dir.display()
            ));
        };
        // Read again alone, to report its problem as the killed run did.
        let options = LoadOptions {
            skip_bad: true,
            batch_size: 1,
            preprocess: sdss_io::Preprocess {
                max_pixels: request.max_image_pixels,
                ..sdss_io::Preprocess::default()
            },
        };
        for batch in batches(dir, &options, Some(index..index + 1))? {
            let batch = batch?;
            if !batch.ids.is_empty() {
                return stale(format!("image `{name}` was skipped as bad and now reads"));
            }
            skipped.extend(batch.skipped);
        }
    }
    tracing::info!(
        "--resume: the features of {} galaxies ({} columns) come from the killed run; none computed",
        ids.len(),
        features.ncols()
    );
    report_skipped(&skipped);
    Ok(Some(Galaxies {
        ids,
        store: Store::Mapped(features, rows),
        skipped,
        max_image_pixels: request.max_image_pixels,
    }))
}
