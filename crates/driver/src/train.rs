//! `sdss-clustering train`: train the sdss_CNN network (or a smaller variant) on CPU to predict a
//! catalogue column from the images, with the original recipe by default (sdss-train does the work).
//!
//! Everything that can be checked is checked before anything is written: the options, the catalogue,
//! its join with the images, the split, the initial weights and the images themselves. Only then is
//! the output folder created; during training it receives nothing but the trainer's checkpoints
//! (`checkpoints/`, the last two kept), and the results (weights, split, history, metrics, plots) are
//! written, each atomically, once training has ended.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use rayon::prelude::*;
use sdss_cnn::keras::{KerasFormat, ManifestSource};
use sdss_cnn::{CnnConfig, CnnModel, CnnWeights, OutputActivation};
use sdss_train::augment::AugmentConfig;
use sdss_train::catalog::{self, CatalogReport, JoinReport, Joined, Targets, Task, EXAMPLES};
use sdss_train::split::{self, Split, SplitCounts};
use sdss_train::{
    BatchProgress, Dataset, EpochRecord, Loss, Network, Observer, ReduceLrOnPlateau, TrainError,
    TrainOptions, TrainTargets, Trainer,
};
use serde_json::{json, Value};

use crate::pipeline::write_json;
use crate::progress::Progress;
use crate::report::train_plots;

/// What the network learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    /// Predict the number in the target column (mean squared error loss).
    Regress,
    /// Predict the class in the target column (softmax output, cross-entropy loss).
    Classify,
}

impl From<TaskArg> for Task {
    fn from(t: TaskArg) -> Self {
        match t {
            TaskArg::Regress => Task::Regress,
            TaskArg::Classify => Task::Classify,
        }
    }
}

/// Arguments of `train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// A folder of JPEG/PNG galaxy images; each file's stem is the galaxy id. Only the galaxies that
    /// also have a catalogue row are used.
    #[arg(long, value_name = "DIR")]
    pub images: PathBuf,
    /// Catalogue CSV (with a header row) holding the galaxy ids and the target column.
    #[arg(
        long,
        value_name = "FILE.csv",
        required_unless_present = "self_supervised",
        conflicts_with = "self_supervised"
    )]
    pub catalog: Option<PathBuf>,
    /// The catalogue column to learn: numbers are regressed, other values are classes.
    #[arg(
        long,
        value_name = "COLUMN",
        required_unless_present = "self_supervised",
        conflicts_with = "self_supervised"
    )]
    pub target: Option<String>,
    /// Learn from the images alone, with no catalogue: the network is trained to give two augmented
    /// views of each galaxy (any rotation, flips, small shifts and zoom, PSF blur, brightness jitter,
    /// pixel noise) the same embedding (its `dense` layer), without collapsing. Writes an encoder for
    /// `features --layer embedding` and `run --features cnn`.
    #[arg(long)]
    pub self_supervised: bool,
    /// The self-supervised objective: vicreg (variance-invariance-covariance, the default) or simsiam.
    #[arg(long, value_enum)]
    pub method: Option<SslMethodArg>,
    /// The catalogue column holding the galaxy ids (the image file stems).
    #[arg(long, value_name = "COLUMN", default_value = "id")]
    pub id_column: String,
    /// Architecture (default: sdss-cnn, or that of --init-weights): sdss-cnn (the original, 5.4 M
    /// parameters, Flatten 37,632), sdss-cnn-43200 (its variant with a 2x2 fourth convolution,
    /// Flatten 43,200), baseline (the author's smaller network, 3.2 M) or small (a fast 171 k-parameter
    /// encoder).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(sdss_cnn::ARCHITECTURES))]
    pub arch: Option<String>,
    /// Passes over the training galaxies (with --resume: the total to reach). Default: 35, or 100 with
    /// --self-supervised.
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Images per training step. Default: 32, or 128 with --self-supervised (each giving two views).
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Adam's initial learning rate; ReduceLROnPlateau (factor 0.2, patience 5, min 1e-5) lowers it
    /// when the validation loss stalls.
    #[arg(long, value_name = "RATE", default_value_t = 0.001)]
    pub lr: f64,
    /// Seed of the split, the initial weights, the shuffles, augmentations and dropout masks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Share of the galaxies held out for validation (the learning-rate schedule watches them).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.15)]
    pub val_fraction: f64,
    /// Share of the galaxies held out for the final test (metrics.json, predicted_vs_true.png).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.15)]
    pub test_fraction: f64,
    /// Train on the images as they are, without the original's random rotations, shifts, zooms and
    /// flips.
    #[arg(long)]
    pub no_augment: bool,
    /// Start from these weights (.safetensors from `fetch-weights` or an earlier `train`) instead of
    /// random ones; with --arch they must have that architecture.
    #[arg(long, value_name = "FILE")]
    pub init_weights: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint (same options; --epochs may grow).
    #[arg(long)]
    pub resume: bool,
    /// Refuse images with more pixels than this, before decoding them (decompression-bomb guard).
    #[arg(long, value_name = "PIXELS", value_parser = crate::cli::parse_max_image_pixels,
          default_value_t = sdss_io::DEFAULT_MAX_IMAGE_PIXELS)]
    pub max_image_pixels: u64,
    /// Where each step's forward and backward passes run: `cpu` (the default) or `cuda[:N]`, an
    /// NVIDIA GPU through candle (a build with `--features cuda`). The shuffles, augmentations,
    /// dropout masks, objective and Adam update are the same, so the weights are the CPU run's to
    /// float rounding.
    #[arg(long, value_name = "DEVICE", value_parser = crate::cli::parse_device, default_value = "cpu")]
    pub device: sdss_cnn::ComputeDevice,
    /// Regress or classify (default: regress a numeric column, classify any other).
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
    /// Skip catalogue rows whose target is empty, NaN or infinite (and rows without an id) instead of
    /// failing; they are counted in metrics.json.
    #[arg(long)]
    pub drop_invalid: bool,
    /// Output folder (must not exist or be empty, unless --resume): weights.safetensors (+ .json),
    /// split.csv, history.json, metrics.json, loss.png, predicted_vs_true.png, checkpoints/.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// The self-supervised objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SslMethodArg {
    /// VICReg (Bardes et al. 2022): invariance, variance and covariance terms.
    Vicreg,
    /// SimSiam (Chen & He 2021): a predictor and a stop-gradient.
    Simsiam,
}

impl TrainArgs {
    /// The catalogue (present unless --self-supervised, which clap enforces).
    pub fn catalog_path(&self) -> &Path {
        self.catalog.as_deref().unwrap_or(Path::new(""))
    }

    /// The target column (present unless --self-supervised).
    pub fn target_name(&self) -> &str {
        self.target.as_deref().unwrap_or("")
    }

    /// `--epochs`, or the mode's default.
    pub fn epochs(&self) -> usize {
        self.epochs
            .unwrap_or(if self.self_supervised { 100 } else { 35 })
    }

    /// `--batch-size`, or the mode's default.
    pub fn batch_size(&self) -> usize {
        self.batch_size
            .unwrap_or(if self.self_supervised { 128 } else { 32 })
    }
}

/// [`train`], holding `--out`'s lock (one training run per folder) and first removing the temporary
/// files a killed run left in it.
pub fn train_locked(args: &TrainArgs, progress: Progress) -> Result<()> {
    let _lock = crate::output_lock::OutputLock::acquire(&args.out)?;
    crate::output_lock::remove_temp_files_in(&args.out)?;
    crate::output_lock::remove_temp_files_in(&args.out.join("checkpoints"))?;
    train(args, progress)
}

/// Runs `train`: every check first (the options, `--out`, the catalogue and its join with the images,
/// the split, the initial network, a resumed checkpoint, the images), then the output folder is
/// created, the network trained and evaluated on the test galaxies, and the results written.
pub fn train(args: &TrainArgs, progress: Progress) -> Result<()> {
    if args.self_supervised {
        return crate::train_ssl::train_self_supervised(args, progress);
    }
    // clap's `requires` cannot refuse this: a bool flag always counts as present.
    if let Some(m) = args.method {
        bail!(
            "--method {}: a self-supervised objective; add --self-supervised, or drop --method to train on --target",
            m.to_possible_value().map_or("?".into(), |v| v.get_name().to_owned())
        );
    }
    let started = Instant::now();
    check_options(args)?;
    let mut out = OutDir::new(&args.out);
    check_out(&out.root, args.resume)?;
    let galaxies = read_catalogue_and_join(args)?;
    let split = split_galaxies(args, &galaxies.joined)?;
    let (net, init) = choose_network(args, &galaxies.joined)?;
    let run = Run {
        args,
        galaxies,
        split,
        net,
    };
    let mut trainer = build_trainer(&run, init, &out)?;
    let data = load_datasets(&run, progress)?;
    prepare_output(&mut out)?;
    fit(&mut trainer, &data, &out, args.epochs(), progress)?;
    let trained = Trained {
        history: trainer.history().to_vec(),
        model: trainer.model()?,
    };
    let test = evaluate_test_split(&run, &trained.model, &data.test, &out.root)?;
    write_outputs(&run, &trained, test, started, &out.root)
}

/// The output folder and its `checkpoints/`.
pub(crate) struct OutDir {
    pub(crate) root: PathBuf,
    pub(crate) checkpoints: PathBuf,
    /// Whether this run created `root` (known once [`prepare_output`] has run), so that a run that
    /// fails before its first checkpoint can remove it again.
    pub(crate) created: bool,
}

impl OutDir {
    pub(crate) fn new(root: &Path) -> Self {
        OutDir {
            root: root.to_owned(),
            checkpoints: root.join("checkpoints"),
            created: false,
        }
    }
}

/// The galaxies that have both a catalogue row and an image.
struct Galaxies {
    /// Every image file in `--images`; `joined.image_indices` index it.
    files: Vec<PathBuf>,
    joined: Joined,
    catalog_report: CatalogReport,
    join_report: JoinReport,
    /// SHA-256 of the catalogue file, for the weights' manifest.
    catalog_sha256: String,
}

/// The split of the joined galaxies.
struct SplitPlan {
    /// The split of each joined galaxy.
    splits: Vec<Split>,
    counts: SplitCounts,
    /// Whether the split keeps the class proportions (a classification).
    stratified: bool,
    /// Indices into the joined galaxies of the train, val and test galaxies.
    parts: [Vec<usize>; 3],
}

/// What the network learns, and which network learns it.
struct Net {
    task: Task,
    /// The class names of a classification (the output units, in order).
    class_names: Option<Vec<String>>,
    /// Output units: one per class, or one for a regression.
    units: usize,
    config: CnnConfig,
    /// The architecture's name (see [`architecture_name`]).
    arch: String,
    parameters: usize,
}

/// Everything settled before training, for the stages that follow.
struct Run<'a> {
    args: &'a TrainArgs,
    galaxies: Galaxies,
    split: SplitPlan,
    net: Net,
}

/// The images and targets of the train, val and test galaxies.
struct Datasets {
    train: Dataset,
    val: Dataset,
    test: Dataset,
}

/// The outcome of training: the history of its epochs and the trained network.
struct Trained {
    history: Vec<EpochRecord>,
    model: CnnModel,
}

/// Reads the catalogue (logging its report), hashes it, lists the images and joins the two on the
/// galaxy id (logging what was skipped).
fn read_catalogue_and_join(args: &TrainArgs) -> Result<Galaxies> {
    let (catalog, catalog_report) = catalog::read_catalog(
        args.catalog_path(),
        &args.id_column,
        args.target_name(),
        args.task.map(Task::from),
        args.drop_invalid,
    )?;
    tracing::info!("{catalog_report}");
    let catalog_sha256 = sdss_cnn::keras::sha256_hex(
        &std::fs::read(args.catalog_path())
            .with_context(|| format!("--catalog {}", args.catalog_path().display()))?,
    );
    let files = sdss_io::folder::list_images(&args.images)
        .with_context(|| format!("--images {}", args.images.display()))?;
    let image_ids: Vec<String> = files
        .iter()
        .map(|p| sdss_io::folder::galaxy_id(p))
        .collect();
    let joined = catalog::join_images(&catalog, &image_ids)?;
    let join_report = joined.report();
    log_join(&join_report);
    Ok(Galaxies {
        files,
        joined,
        catalog_report,
        join_report,
        catalog_sha256,
    })
}

/// Splits the joined galaxies into train, val and test by `--seed`, stratified by class for a
/// classification, and logs the counts.
fn split_galaxies(args: &TrainArgs, joined: &Joined) -> Result<SplitPlan> {
    let splits = match &joined.targets {
        Targets::Classes { labels, .. } => split::split_indices_stratified(
            labels,
            args.val_fraction,
            args.test_fraction,
            args.seed,
        )?,
        Targets::Regression(_) => split::split_indices(
            joined.len(),
            args.val_fraction,
            args.test_fraction,
            args.seed,
        )?,
    };
    let counts = SplitCounts::of(&splits);
    let stratified = matches!(joined.targets, Targets::Classes { .. });
    tracing::info!(
        "split (seed {}{}): {} train, {} val, {} test",
        args.seed,
        if stratified {
            ", stratified by class"
        } else {
            ""
        },
        counts.train,
        counts.val,
        counts.test
    );
    let parts = Split::ALL.map(|s| split::indices_of(&splits, s));
    Ok(SplitPlan {
        splits,
        counts,
        stratified,
        parts,
    })
}

/// Works out what is learnt from the targets, and the network to start from (see
/// [`initial_network`]); logs the network's size.
fn choose_network(args: &TrainArgs, joined: &Joined) -> Result<(Net, Initial)> {
    let task = joined.targets.task();
    let class_names: Option<Vec<String>> = match &joined.targets {
        Targets::Classes { names, .. } => Some(names.clone()),
        Targets::Regression(_) => None,
    };
    let (units, activation) = match &class_names {
        Some(names) => (names.len(), OutputActivation::Softmax),
        None => (1, OutputActivation::Linear),
    };
    let init = initial_network(args, units, activation, class_names.as_deref())?;
    let config = init.network.config().clone();
    let arch = architecture_name(&config);
    let parameters = config.parameter_count()?;
    tracing::info!(
        "{arch}: {parameters} parameters, to {} `{}`{}",
        task,
        args.target_name(),
        match &class_names {
            Some(names) => format!(" into {} classes", names.len()),
            None => String::new(),
        }
    );
    let net = Net {
        task,
        class_names,
        units,
        config,
        arch,
        parameters,
    };
    Ok((net, init))
}

/// The trainer: with `--resume`, the one in the last checkpoint (which must have been written with the
/// same run key); otherwise, or when there is no checkpoint yet, a new one from the initial network.
fn build_trainer(run: &Run, init: Initial, out: &OutDir) -> Result<Trainer> {
    let args = run.args;
    let key = run_key(run, init.sha256.as_deref());
    let resumed = if args.resume {
        Trainer::resume(&out.checkpoints, &key).context("--resume")?
    } else {
        None
    };
    if let Some(trainer) = resumed {
        tracing::info!(
            "--resume: continuing after epoch {} of {}",
            trainer.history().len(),
            args.epochs()
        );
        return on_device(trainer, args);
    }
    if args.resume {
        tracing::warn!(
            "--resume: no checkpoint in {}; starting from epoch 1",
            out.checkpoints.display()
        );
    }
    let loss = match run.net.task {
        Task::Regress => Loss::MeanSquaredError,
        Task::Classify => Loss::SoftmaxCrossEntropy,
    };
    on_device(
        Trainer::new(init.network, loss, train_options(args), key)?,
        args,
    )
}

/// The trainer with its steps on `--device`.
fn on_device(mut trainer: Trainer, args: &TrainArgs) -> Result<Trainer> {
    trainer.set_device(args.device)?;
    announce_device(args.device, "training steps");
    Ok(trainer)
}

/// Logs where `what` runs, when it is not the CPU engine (both training modes say it alike).
pub(crate) fn announce_device(device: sdss_cnn::ComputeDevice, what: &str) {
    if device != sdss_cnn::ComputeDevice::Cpu {
        tracing::info!("--device {device}: {what} on candle's CUDA backend");
    }
}

/// The original recipe, with the options' epochs, batch size, learning rate, seed and augmentation.
fn train_options(args: &TrainArgs) -> TrainOptions {
    TrainOptions {
        epochs: args.epochs(),
        batch_size: args.batch_size(),
        learning_rate: args.lr,
        seed: args.seed,
        augment: if args.no_augment {
            AugmentConfig::none()
        } else {
            AugmentConfig::sdss_cnn()
        },
        schedule: ReduceLrOnPlateau::sdss_cnn(),
        checkpoints_kept: 2,
    }
}

/// What a checkpoint must match to be resumed: everything that shapes the run, the galaxies included
/// (by digest). The epochs are left out of the comparison, so that `--resume` may raise them.
fn run_key(run: &Run, init_sha256: Option<&str>) -> Value {
    let (args, net) = (run.args, &run.net);
    let joined = &run.galaxies.joined;
    json!({
        "arch": net.arch,
        "config": net.config,
        "task": net.task.as_str(),
        "target": args.target_name(),
        "id_column": args.id_column,
        "classes": net.class_names,
        "batch_size": args.batch_size(),
        "lr": args.lr,
        "seed": args.seed,
        "augment": !args.no_augment,
        "val_fraction": args.val_fraction,
        "test_fraction": args.test_fraction,
        "init_weights": init_sha256,
        "galaxies": data_digest(&joined.ids, &run.split.splits, &joined.targets),
        "epochs": args.epochs(),
    })
}

/// Loads the images of the joined galaxies (in parallel, at the network's input size) straight into
/// their split; fails, naming a few of them, if any image cannot be read.
fn load_datasets(run: &Run, progress: Progress) -> Result<Datasets> {
    let config = &run.net.config;
    let (h, w, c) = (
        config.input_height,
        config.input_width,
        config.input_channels,
    );
    let per = h * w * c;
    let preprocess = sdss_io::Preprocess {
        size: Some((w as u32, h as u32)),
        max_pixels: run.args.max_image_pixels,
        ..sdss_io::Preprocess::default()
    };
    let Galaxies { files, joined, .. } = &run.galaxies;
    let n = joined.len();
    let bar = progress.bar(n as u64, "loading images");
    let mut bad = Vec::new();
    let mut load = |part: &[usize]| -> Result<Dataset> {
        let paths: Vec<&Path> = part
            .iter()
            .map(|&i| files[joined.image_indices[i]].as_path())
            .collect();
        let (images, failures) = load_images(&paths, &preprocess, per, &bar);
        bad.extend(failures);
        Ok(Dataset::new(
            images,
            part_targets(&joined.targets, part),
            per,
        )?)
    };
    let [train, val, test] = &run.split.parts;
    let (train, val, test) = (load(train)?, load(val)?, load(test)?);
    bar.finish_and_clear();
    check_all_read(&run.args.images, bad, n)?;
    Ok(Datasets { train, val, test })
}

/// The targets of the joined galaxies `part`.
fn part_targets(targets: &Targets, part: &[usize]) -> TrainTargets {
    match targets {
        Targets::Regression(v) => TrainTargets::Values(part.iter().map(|&i| v[i]).collect()),
        Targets::Classes { labels, .. } => {
            TrainTargets::Classes(part.iter().map(|&i| labels[i]).collect())
        }
    }
}

/// Fails if any of the `n` images could not be read (`bad`), naming the first few.
pub(crate) fn check_all_read(images: &Path, mut bad: Vec<String>, n: usize) -> Result<()> {
    if bad.is_empty() {
        return Ok(());
    }
    bad.sort();
    let shown: Vec<&str> = bad.iter().take(EXAMPLES).map(String::as_str).collect();
    bail!(
        "--images {}: {} of the {n} images to train on cannot be read: {}{}",
        images.display(),
        bad.len(),
        shown.join("; "),
        if bad.len() > shown.len() {
            format!("; … ({} in all)", bad.len())
        } else {
            String::new()
        }
    );
}

/// Creates the output folder and its `checkpoints/`, the first thing written, once everything has
/// been checked; notes whether the folder is new.
pub(crate) fn prepare_output(out: &mut OutDir) -> Result<()> {
    out.created = !out.root.exists();
    std::fs::create_dir_all(&out.checkpoints)
        .with_context(|| format!("--out: cannot create {}", out.checkpoints.display()))?;
    Ok(())
}

/// Trains, with a progress bar per epoch; the first Ctrl-C stops after the current step. Only
/// checkpoints are written meanwhile. On failure, removes what this run created if no checkpoint was
/// written, and says what is kept and how to continue.
fn fit(
    trainer: &mut Trainer,
    data: &Datasets,
    out: &OutDir,
    epochs: usize,
    progress: Progress,
) -> Result<()> {
    let mut observer = EpochBars::new(progress, epochs);
    let fitted = trainer.fit(
        &data.train,
        &data.val,
        Some(&out.checkpoints),
        &mut observer,
    );
    observer.clear();
    let Err(e) = fitted else {
        return Ok(());
    };
    Err(training_failed(e, trainer.history().len(), out))
}

/// After a failed or interrupted training with `done` complete epochs: removes what this run created if
/// no checkpoint was written, and says what is kept and how to continue.
pub(crate) fn training_failed(e: TrainError, done: usize, out: &OutDir) -> anyhow::Error {
    tidy_after_failure(&out.root, &out.checkpoints, out.created);
    match e {
        TrainError::Interrupted { epoch } if done == 0 => anyhow!(
            "interrupted in epoch {epoch}, before any epoch was complete: nothing was kept; run the command again to start over"
        ),
        TrainError::Interrupted { epoch } => anyhow!(
            "interrupted in epoch {epoch}; {done} complete epoch(s) are checkpointed in {}: run the same command with --resume to continue",
            out.checkpoints.display()
        ),
        e => anyhow!(e).context("training"),
    }
}

/// Predicts the test galaxies, logs the metrics and draws `predicted_vs_true.png` in `out` (the first
/// result written); returns the metrics for metrics.json.
fn evaluate_test_split(run: &Run, model: &CnnModel, test: &Dataset, out: &Path) -> Result<Value> {
    let predictions = sdss_train::trainer::predict_with(model, &test.images)?;
    let plot = out.join("predicted_vs_true.png");
    match &test.targets {
        TrainTargets::Values(truth) => evaluate_regression(run, truth, &predictions, &plot),
        TrainTargets::Classes(truth) => evaluate_classification(run, truth, &predictions, &plot),
    }
}

/// [`evaluate_test_split`] for a regression: RMSE, R² and so on, and a predicted-against-true plot.
fn evaluate_regression(
    run: &Run,
    truth: &[f32],
    predictions: &[f32],
    plot: &Path,
) -> Result<Value> {
    let truth: Vec<f64> = truth.iter().map(|&v| f64::from(v)).collect();
    let pred: Vec<f64> = predictions.iter().map(|&v| f64::from(v)).collect();
    let m = sdss_train::metrics::regression_metrics(&truth, &pred)?;
    tracing::info!("test: {m}");
    let r2 =
        m.r2.map_or_else(|| "undefined".to_owned(), |v| format!("{v:.4}"));
    train_plots::predicted_vs_true(
        plot,
        &truth,
        &pred,
        run.args.target_name(),
        &format!(
            "{}, {} test galaxies: RMSE {:.4}, R² {r2}",
            run.net.arch, m.n, m.rmse
        ),
    )?;
    Ok(serde_json::to_value(&m)?)
}

/// [`evaluate_test_split`] for a classification: accuracy and so on (each galaxy gets its most
/// probable class), and a confusion matrix.
fn evaluate_classification(
    run: &Run,
    truth: &[usize],
    predictions: &[f32],
    plot: &Path,
) -> Result<Value> {
    let names = run.net.class_names.as_deref().unwrap_or_default();
    let pred: Vec<usize> = predictions
        .chunks_exact(run.net.units)
        .map(argmax)
        .collect();
    let m = sdss_train::metrics::classification_metrics(truth, &pred, names)?;
    tracing::info!("test: {m}");
    let pct = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{:.1}%", 100.0 * v));
    train_plots::confusion_matrix(
        plot,
        &m,
        &format!(
            "{}, {} test galaxies: accuracy {} (majority {})",
            run.net.arch,
            m.n,
            pct(m.accuracy),
            pct(m.majority_rate)
        ),
    )?;
    Ok(serde_json::to_value(&m)?)
}

/// Writes the results into `out`, each file atomically: split.csv, history.json, loss.png,
/// metrics.json, then the weights and their manifest; prints the closing line.
fn write_outputs(
    run: &Run,
    trained: &Trained,
    test: Value,
    started: Instant,
    out: &Path,
) -> Result<()> {
    let (args, net, history) = (run.args, &run.net, &trained.history);
    sdss_train::split::write_split_csv(
        out.join("split.csv"),
        &run.galaxies.joined.ids,
        &run.split.splits,
    )?;
    write_json(&out.join("history.json"), history)?;
    train_plots::loss_curves(
        &out.join("loss.png"),
        history,
        &format!("{} on `{}`: loss per epoch", net.arch, args.target_name()),
    )?;
    let metrics = metrics_json(run, history, test, started);
    write_json(&out.join("metrics.json"), &metrics)?;
    let weights_path = out.join("weights.safetensors");
    sdss_cnn::keras::write_with_manifest(
        trained.model.config(),
        trained.model.weights(),
        ManifestSource {
            location: args.catalog_path().display().to_string(),
            format: KerasFormat::Trained,
            keras_version: None,
            sha256: run.galaxies.catalog_sha256.clone(),
        },
        Some(training_json(run, history, &metrics)),
        &weights_path,
    )?;
    println!(
        "trained {} for {} epochs ({:.0} s): test {} -> {}",
        net.arch,
        history.len(),
        started.elapsed().as_secs_f64(),
        summary(&metrics["test"], net.task),
        weights_path.display()
    );
    Ok(())
}

/// The split's counts and fractions, as metrics.json and the manifest give them.
fn split_json(run: &Run) -> Value {
    let counts = &run.split.counts;
    json!({
        "train": counts.train,
        "val": counts.val,
        "test": counts.test,
        "stratified": run.split.stratified,
        "val_fraction": run.args.val_fraction,
        "test_fraction": run.args.test_fraction,
    })
}

/// metrics.json: what was learnt, the final losses, the test metrics, the times, and what the
/// catalogue and the join kept or skipped.
fn metrics_json(run: &Run, history: &[EpochRecord], test: Value, started: Instant) -> Value {
    let (args, net, galaxies) = (run.args, &run.net, &run.galaxies);
    let training_seconds: f64 = history.iter().map(|r| r.seconds).sum();
    json!({
        "task": net.task.as_str(),
        "target": args.target_name(),
        "arch": net.arch,
        "parameters": net.parameters,
        "seed": args.seed,
        "classes": net.class_names,
        "split": split_json(run),
        "epochs_requested": args.epochs(),
        "epochs_run": history.len(),
        "final": history.last().map(|r| json!({
            "train_loss": r.train_loss,
            "val_loss": r.val_loss,
            "learning_rate": r.learning_rate,
        })),
        "test": test,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "training_seconds": training_seconds,
        "dropped_invalid": galaxies.catalog_report.dropped_invalid,
        "catalog": galaxies.catalog_report,
        "join": galaxies.join_report,
    })
}

/// The `training` section of the weights' manifest: how the weights were made.
fn training_json(run: &Run, history: &[EpochRecord], metrics: &Value) -> Value {
    let (args, net) = (run.args, &run.net);
    json!({
        "command": "sdss-clustering train",
        "arch": net.arch,
        "task": net.task.as_str(),
        "target": args.target_name(),
        "id_column": args.id_column,
        "classes": net.class_names,
        "catalog": args.catalog_path().display().to_string(),
        "catalog_sha256": run.galaxies.catalog_sha256,
        "images": args.images.display().to_string(),
        "init_weights": args.init_weights.as_ref().map(|p| p.display().to_string()),
        "epochs": history.len(),
        "batch_size": args.batch_size(),
        "device": args.device.to_string(),
        "learning_rate": args.lr,
        "final_learning_rate": history.last().map(|r| r.learning_rate),
        "schedule": ReduceLrOnPlateau::sdss_cnn(),
        "augment": !args.no_augment,
        "seed": args.seed,
        "split": split_json(run),
        "final": metrics["final"],
        "test": metrics["test"],
    })
}

/// Checks the options that need no file: the epochs, batch size and learning rate, and that
/// `--init-weights` names a file.
pub(crate) fn check_options(args: &TrainArgs) -> Result<()> {
    if args.epochs() == 0 {
        bail!("--epochs must be at least 1");
    }
    if args.batch_size() == 0 {
        bail!("--batch-size must be at least 1");
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr {}: expected a positive learning rate", args.lr);
    }
    if let Some(path) = &args.init_weights {
        if !path.is_file() {
            bail!("--init-weights {}: no such file", path.display());
        }
    }
    Ok(())
}

/// True if `dir` is absent, empty, or holds nothing but an empty `checkpoints/` (left by a run stopped
/// before its first epoch ended).
fn holds_nothing(dir: &Path) -> Result<bool> {
    if !dir.exists() {
        return Ok(true);
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("--out {}: not a folder", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("--out {}", dir.display()))?;
        let path = entry.path();
        let empty_checkpoints = entry.file_name() == "checkpoints"
            && path.is_dir()
            && std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none());
        if !empty_checkpoints {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Checks that `--out` may be written: absent or empty, or, with --resume, holding a run's
/// `checkpoints/`.
pub(crate) fn check_out(out: &Path, resume: bool) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {}: exists and is not a folder", out.display());
    }
    if holds_nothing(out)? {
        return Ok(());
    }
    let has_checkpoints = out.join("checkpoints").is_dir();
    match (resume, has_checkpoints) {
        (false, true) => bail!(
            "--out {}: holds an earlier training run; pass --resume to continue it (with the same options), or choose another folder",
            out.display()
        ),
        (false, false) => bail!(
            "--out {}: folder exists and is not empty; choose another folder",
            out.display()
        ),
        (true, false) => bail!(
            "--out {}: --resume found no training run there (no checkpoints/); choose the folder of the run to continue",
            out.display()
        ),
        (true, true) => Ok(()),
    }
}

/// After a failed training: removes what this run created if no checkpoint was written.
pub(crate) fn tidy_after_failure(out: &Path, checkpoints: &Path, created: bool) {
    if std::fs::read_dir(checkpoints).is_ok_and(|mut d| d.next().is_none()) {
        let _ = std::fs::remove_dir(checkpoints);
        if created {
            let _ = std::fs::remove_dir(out);
        }
    }
}

fn log_join(r: &JoinReport) {
    let ids = |examples: &[String], count: usize| {
        let mut s = examples.join(", ");
        if count > examples.len() {
            s.push_str(&format!(", … ({count} in all)"));
        }
        s
    };
    if r.missing_images > 0 {
        tracing::warn!(
            "skipping {} catalogue row(s) without an image: {}",
            r.missing_images,
            ids(&r.missing_image_examples, r.missing_images)
        );
    }
    if r.unlisted_images > 0 {
        tracing::warn!(
            "skipping {} image(s) without a catalogue row: {}",
            r.unlisted_images,
            ids(&r.unlisted_image_examples, r.unlisted_images)
        );
    }
    if r.invalid_target_images > 0 {
        tracing::warn!(
            "skipping {} image(s) whose catalogue row has an unusable target: {}",
            r.invalid_target_images,
            ids(&r.invalid_target_image_examples, r.invalid_target_images)
        );
    }
    tracing::info!(
        "{} galaxies have both an image and a target ({} images, {} usable catalogue rows)",
        r.kept,
        r.images,
        r.catalog_rows
    );
}

/// The network to start from, and the SHA-256 of its weights file when it is not random.
struct Initial {
    network: Network<f32>,
    sha256: Option<String>,
}

fn initial_network(
    args: &TrainArgs,
    units: usize,
    activation: OutputActivation,
    classes: Option<&[String]>,
) -> Result<Initial> {
    let needs = match classes {
        Some(c) => format!("a classifier over the {} classes", c.len()),
        None => "a regression".to_owned(),
    };
    let Some(path) = &args.init_weights else {
        let name = args.arch.as_deref().unwrap_or("sdss-cnn");
        let config = CnnConfig::named(name)?.with_output(units, activation);
        let weights = CnnWeights::random(&config, args.seed)?;
        return Ok(Initial {
            network: Network::from_weights(config, &weights)?,
            sha256: None,
        });
    };
    let bytes =
        std::fs::read(path).with_context(|| format!("--init-weights {}", path.display()))?;
    let model = sdss_cnn::CnnModel::load(path)
        .map_err(|e| anyhow!("--init-weights {}: {e}", path.display()))?;
    let found = model.config().clone();
    let config = match &args.arch {
        Some(name) => {
            let wanted = CnnConfig::named(name)?.with_output(units, activation);
            if !wanted.same_layers(&found) {
                bail!(
                    "--init-weights {}: its architecture is not --arch {name} as {needs} needs it ({}; --arch first, the weights second)",
                    path.display(),
                    wanted.layer_differences(&found).join("; ")
                );
            }
            // The layers are the same; the recipe's dropout rates are those of --arch.
            wanted
        }
        None => {
            if found.output_units != units || found.output_activation != activation {
                bail!(
                    "--init-weights {}: its output layer has {} unit(s) with {} activation, but {needs} needs {units} with {} activation",
                    path.display(),
                    found.output_units,
                    activation_name(found.output_activation),
                    activation_name(activation)
                );
            }
            found
        }
    };
    if config.input_channels != 3 {
        bail!(
            "--init-weights {}: the network takes {} channels; the images are RGB (3)",
            path.display(),
            config.input_channels
        );
    }
    Ok(Initial {
        network: Network::from_weights(config, model.weights())?,
        sha256: Some(sdss_cnn::keras::sha256_hex(&bytes)),
    })
}

fn activation_name(a: OutputActivation) -> &'static str {
    match a {
        OutputActivation::Linear => "linear",
        OutputActivation::Softmax => "softmax",
    }
}

/// The named architecture `config` has (whatever its output layer), or `custom`.
pub(crate) fn architecture_name(config: &CnnConfig) -> String {
    sdss_cnn::ARCHITECTURES
        .iter()
        .find(|name| {
            CnnConfig::named(name).is_ok_and(|c| {
                c.with_output(config.output_units, config.output_activation)
                    .same_layers(config)
            })
        })
        .map_or_else(|| "custom".to_owned(), |n| (*n).to_owned())
}

/// A digest of exactly what is trained on: every galaxy's id, split and target.
pub(crate) fn data_digest(ids: &[String], splits: &[Split], targets: &Targets) -> String {
    let mut text = String::new();
    for (i, (id, split)) in ids.iter().zip(splits).enumerate() {
        let target = match targets {
            Targets::Regression(v) => format!("{:08x}", v[i].to_bits()),
            Targets::Classes { labels, names } => names[labels[i]].clone(),
        };
        text.push_str(&format!("{id:?},{split},{target:?}\n"));
    }
    sdss_cnn::keras::sha256_hex(text.as_bytes())
}

/// Loads `paths` into one `(n, h, w, c)` buffer in parallel; also returns the files that failed.
pub(crate) fn load_images(
    paths: &[&Path],
    preprocess: &sdss_io::Preprocess,
    per: usize,
    bar: &ProgressBar,
) -> (Vec<f32>, Vec<String>) {
    let mut images = vec![0.0f32; paths.len() * per];
    let failures: Vec<String> = images
        .par_chunks_mut(per)
        .zip(paths.par_iter())
        .filter_map(|(dst, path)| {
            let loaded = sdss_io::load_image(path, preprocess);
            bar.inc(1);
            match loaded {
                Ok(img) if img.len() == per => {
                    dst.iter_mut().zip(img.iter()).for_each(|(d, &s)| *d = s);
                    None
                }
                Ok(img) => Some(format!(
                    "{}: {:?} values after preprocessing, expected {per}",
                    path.display(),
                    img.shape()
                )),
                Err(e) => Some(crate::config::one_line(&e.to_string())),
            }
        })
        .collect();
    (images, failures)
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// A few words on the test metrics for the closing line.
fn summary(test: &Value, task: Task) -> String {
    let num = |k: &str| {
        test[k]
            .as_f64()
            .map_or_else(|| "undefined".to_owned(), |v| format!("{v:.4}"))
    };
    match task {
        Task::Regress => format!("RMSE {}, R² {}", num("rmse"), num("r2")),
        Task::Classify => format!(
            "accuracy {} (majority class {})",
            num("accuracy"),
            num("majority_rate")
        ),
    }
}

/// First Ctrl-C: stop after the current step (the checkpoints on disk are complete). Second: quit now.
pub(crate) fn install_ctrl_c(stop: &Arc<AtomicBool>) {
    let flag = Arc::clone(stop);
    let result = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // Checkpoints are renamed into place whole, so even now none is left half-written.
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after this step (press Ctrl-C again to quit at once)");
    });
    if let Err(e) = result {
        tracing::warn!("no Ctrl-C handler ({e}); checkpoints are still written whole");
    }
}

/// A progress bar per epoch (loss, images/s, ETA) and a log line per epoch; asks the trainer to stop
/// after Ctrl-C.
pub(crate) struct EpochBars {
    pub(crate) progress: Progress,
    pub(crate) bar: Option<(usize, ProgressBar)>,
    pub(crate) epochs: usize,
    pub(crate) stop: Arc<AtomicBool>,
}

impl EpochBars {
    /// Progress bars for `epochs` epochs, stopping cleanly on Ctrl-C.
    pub(crate) fn new(progress: Progress, epochs: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        install_ctrl_c(&stop);
        EpochBars {
            progress,
            bar: None,
            epochs,
            stop,
        }
    }

    pub(crate) fn clear(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Observer for EpochBars {
    fn batch_done(&mut self, p: &BatchProgress) {
        self.epochs = p.epochs;
        if self.bar.as_ref().is_none_or(|(e, _)| *e != p.epoch) {
            self.clear();
            let bar = self.progress.bar(p.images_total as u64, "");
            self.bar = Some((p.epoch, bar));
        }
        if let Some((_, bar)) = &self.bar {
            bar.set_position(p.images_done as u64);
            bar.set_message(format!("epoch {}/{} loss {:.4}", p.epoch, p.epochs, p.loss));
        }
    }

    fn epoch_done(&mut self, r: &EpochRecord) {
        self.clear();
        tracing::info!(
            "epoch {}/{}: loss {:.5}, val_loss {:.5}, lr {:.2e}{} ({:.1} s)",
            r.epoch,
            self.epochs,
            r.train_loss,
            r.val_loss,
            r.learning_rate,
            r.embedding_std
                .map_or_else(String::new, |s| format!(", embedding std {s:.4}")),
            r.seconds
        );
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}
