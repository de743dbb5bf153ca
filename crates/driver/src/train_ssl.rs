//! `sdss-clustering train --self-supervised`: learn an embedding from unlabelled cutouts (VICReg by
//! default; sdss-train's [`SslTrainer`] does the work).
//!
//! The stages and guarantees are those of the supervised `train`: every check before anything is
//! written, only checkpoints written during training, Ctrl-C and `--resume`, and the results written
//! atomically at the end. The galaxies are split into train and val (no test part: the encoder is judged
//! by the feature-quality study, `cargo xtask feature-study`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sdss_cnn::keras::{KerasFormat, ManifestSource};
use sdss_cnn::{CnnConfig, CnnModel, CnnWeights};
use sdss_train::split::{self, Split, SplitCounts};
use sdss_train::ssl::{GalaxyAugment, SslMethod, SslOptions, SslTrainer};
use sdss_train::{EpochRecord, Network, ReduceLrOnPlateau};
use serde_json::{json, Value};

use crate::pipeline::write_json;
use crate::progress::Progress;
use crate::report::train_plots;
use crate::train::{
    architecture_name, check_all_read, check_options, check_out, load_images, prepare_output,
    training_failed, EpochBars, OutDir, SslMethodArg, TrainArgs,
};

/// The default encoder: fast enough to train on CPU.
const DEFAULT_ARCH: &str = "small";

/// The unlabelled galaxies and their split.
struct Galaxies {
    files: Vec<PathBuf>,
    ids: Vec<String>,
    splits: Vec<Split>,
    counts: SplitCounts,
}

/// The encoder to start from.
struct Encoder {
    network: Network<f32>,
    arch: String,
    init_sha256: Option<String>,
}

/// Runs `train --self-supervised`.
pub fn train_self_supervised(args: &TrainArgs, progress: Progress) -> Result<()> {
    let started = Instant::now();
    check_options(args)?;
    check_ssl_options(args)?;
    let mut out = OutDir::new(&args.out);
    check_out(&out.root, args.resume)?;
    let galaxies = list_and_split(args)?;
    let encoder = initial_encoder(args)?;
    let key = run_key(args, &encoder, &galaxies);
    let mut trainer = build_trainer(args, encoder.network, &key, &out)?;
    let (train, val) = load(args, &galaxies, trainer.network().config(), progress)?;
    prepare_output(&mut out)?;
    fit(&mut trainer, (&train, &val), &out, progress)?;
    write_outputs(args, &encoder.arch, &galaxies, &trainer, started, &out.root)
}

fn method(args: &TrainArgs) -> SslMethod {
    // An Option rather than a clap default, so that `train` can refuse --method without
    // --self-supervised.
    match args.method.unwrap_or(SslMethodArg::Vicreg) {
        SslMethodArg::Vicreg => SslMethod::Vicreg,
        SslMethodArg::Simsiam => SslMethod::SimSiam,
    }
}

/// The options that make no sense without labels, or without augmentation.
fn check_ssl_options(args: &TrainArgs) -> Result<()> {
    if args.no_augment {
        bail!("--no-augment: self-supervised training learns from augmented views of each galaxy; it cannot run without them");
    }
    if args.task.is_some() || args.drop_invalid {
        bail!("--task and --drop-invalid need a catalogue; --self-supervised uses none");
    }
    if args.batch_size() < 2 {
        bail!(
            "--batch-size {}: self-supervised training compares the galaxies of a batch, so it needs at least 2",
            args.batch_size()
        );
    }
    Ok(())
}

/// Lists `--images` and splits the galaxies into train and val by `--seed`.
fn list_and_split(args: &TrainArgs) -> Result<Galaxies> {
    let files = sdss_io::folder::list_images(&args.images)
        .with_context(|| format!("--images {}", args.images.display()))?;
    let ids: Vec<String> = files
        .iter()
        .map(|p| sdss_io::folder::galaxy_id(p))
        .collect();
    let splits = train_val_split(files.len(), args.val_fraction, args.seed)?;
    let counts = SplitCounts::of(&splits);
    if counts.train < 2 || counts.val < 2 {
        bail!(
            "--images {}: {} images give {} to train on and {} to validate on; self-supervised training needs at least 2 of each",
            args.images.display(),
            files.len(),
            counts.train,
            counts.val
        );
    }
    tracing::info!(
        "{} unlabelled galaxies (seed {}): {} train, {} val",
        files.len(),
        args.seed,
        counts.train,
        counts.val
    );
    Ok(Galaxies {
        files,
        ids,
        splits,
        counts,
    })
}

/// A seeded split with `⌈val_fraction · n⌉` galaxies for validation (scikit-learn's rounding of a
/// test size) and the rest for training.
fn train_val_split(n: usize, val_fraction: f64, seed: u64) -> Result<Vec<Split>> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    if !(val_fraction > 0.0 && val_fraction < 1.0) {
        bail!("--val-fraction {val_fraction}: must be greater than 0 and less than 1");
    }
    let n_val = (val_fraction * n as f64).ceil() as usize;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let mut splits = vec![Split::Train; n];
    for &i in &order[..n_val.min(n)] {
        splits[i] = Split::Val;
    }
    Ok(splits)
}

/// A random encoder of `--arch` (default `small`), or `--init-weights` (checked against `--arch` when
/// both are given; the output layers do not matter here).
fn initial_encoder(args: &TrainArgs) -> Result<Encoder> {
    let Some(path) = &args.init_weights else {
        let name = args.arch.as_deref().unwrap_or(DEFAULT_ARCH);
        let config = CnnConfig::named(name)?;
        let weights = CnnWeights::random(&config, args.seed)?;
        return Ok(Encoder {
            network: Network::from_weights(config, &weights)?,
            arch: name.to_owned(),
            init_sha256: None,
        });
    };
    let bytes =
        std::fs::read(path).with_context(|| format!("--init-weights {}", path.display()))?;
    let model = CnnModel::load(path)
        .map_err(|e| anyhow::anyhow!("--init-weights {}: {e}", path.display()))?;
    let config = model.config().clone();
    if let Some(name) = &args.arch {
        let wanted = CnnConfig::named(name)?;
        let found = config
            .clone()
            .with_output(wanted.output_units, wanted.output_activation);
        if !wanted.same_layers(&found) {
            bail!(
                "--init-weights {}: its architecture is not --arch {name} ({})",
                path.display(),
                wanted.layer_differences(&found).join("; ")
            );
        }
    }
    if config.input_channels != 3 {
        bail!(
            "--init-weights {}: the network takes {} channels; the images are RGB (3)",
            path.display(),
            config.input_channels
        );
    }
    Ok(Encoder {
        arch: architecture_name(&config),
        network: Network::from_weights(config, model.weights())?,
        init_sha256: Some(sdss_cnn::keras::sha256_hex(&bytes)),
    })
}

fn options(args: &TrainArgs) -> SslOptions {
    SslOptions {
        method: method(args),
        epochs: args.epochs(),
        batch_size: args.batch_size(),
        learning_rate: args.lr,
        seed: args.seed,
        ..SslOptions::default()
    }
}

/// A digest of the galaxies trained on: every id and its split.
fn galaxies_digest(g: &Galaxies) -> String {
    let mut text = String::new();
    for (id, split) in g.ids.iter().zip(&g.splits) {
        text.push_str(&format!("{id:?},{split}\n"));
    }
    sdss_cnn::keras::sha256_hex(text.as_bytes())
}

/// What a checkpoint must match to be resumed (the epochs may grow).
fn run_key(args: &TrainArgs, encoder: &Encoder, galaxies: &Galaxies) -> Value {
    let mut opts = options(args);
    opts.epochs = 0;
    json!({
        "mode": "self-supervised",
        "arch": encoder.arch,
        "config": encoder.network.config(),
        "options": opts,
        "val_fraction": args.val_fraction,
        "init_weights": encoder.init_sha256,
        "galaxies": galaxies_digest(galaxies),
        "epochs": args.epochs(),
    })
}

fn build_trainer(
    args: &TrainArgs,
    network: Network<f32>,
    key: &Value,
    out: &OutDir,
) -> Result<SslTrainer> {
    if args.resume {
        if let Some(t) = SslTrainer::resume(&out.checkpoints, key).context("--resume")? {
            tracing::info!(
                "--resume: continuing after epoch {} of {}",
                t.history().len(),
                args.epochs()
            );
            return on_device(t, args);
        }
        tracing::warn!(
            "--resume: no checkpoint in {}; starting from epoch 1",
            out.checkpoints.display()
        );
    }
    let parameters = network.config().parameter_count()?;
    tracing::info!(
        "{}: {parameters} parameters, self-supervised ({})",
        architecture_name(network.config()),
        method(args).name()
    );
    on_device(SslTrainer::new(network, options(args), key.clone())?, args)
}

/// The trainer with its encoder's passes on `--device`.
fn on_device(mut trainer: SslTrainer, args: &TrainArgs) -> Result<SslTrainer> {
    trainer.set_device(args.device)?;
    crate::train::announce_device(args.device, "the encoder's passes");
    Ok(trainer)
}

/// The train and val images, at the network's input size; fails if any cannot be read.
fn load(
    args: &TrainArgs,
    g: &Galaxies,
    config: &CnnConfig,
    progress: Progress,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (h, w, c) = (
        config.input_height,
        config.input_width,
        config.input_channels,
    );
    let preprocess = sdss_io::Preprocess {
        size: Some((w as u32, h as u32)),
        max_pixels: args.max_image_pixels,
        ..sdss_io::Preprocess::default()
    };
    let bar = progress.bar(g.files.len() as u64, "loading images");
    let mut bad = Vec::new();
    let mut part = |which: Split| {
        let paths: Vec<&Path> = split::indices_of(&g.splits, which)
            .into_iter()
            .map(|i| g.files[i].as_path())
            .collect();
        let (images, failures) = load_images(&paths, &preprocess, h * w * c, &bar);
        bad.extend(failures);
        images
    };
    let (train, val) = (part(Split::Train), part(Split::Val));
    bar.finish_and_clear();
    check_all_read(&args.images, bad, g.files.len())?;
    Ok((train, val))
}

fn fit(
    trainer: &mut SslTrainer,
    (train, val): (&[f32], &[f32]),
    out: &OutDir,
    progress: Progress,
) -> Result<()> {
    let mut observer = EpochBars::new(progress, trainer.options().epochs);
    let fitted = trainer.fit(train, val, Some(&out.checkpoints), &mut observer);
    observer.clear();
    fitted.map_err(|e| training_failed(e, trainer.history().len(), out))
}

fn write_outputs(
    args: &TrainArgs,
    arch: &str,
    g: &Galaxies,
    trainer: &SslTrainer,
    started: Instant,
    out: &Path,
) -> Result<()> {
    let history = trainer.history();
    let model = trainer.model()?;
    split::write_split_csv(out.join("split.csv"), &g.ids, &g.splits)?;
    write_json(&out.join("history.json"), &history.to_vec())?;
    train_plots::loss_curves(
        &out.join("loss.png"),
        history,
        &format!(
            "{arch}, self-supervised ({}): loss per epoch",
            method(args).name()
        ),
    )?;
    let metrics = metrics_json(args, arch, g, trainer, started);
    write_json(&out.join("metrics.json"), &metrics)?;
    let weights_path = out.join("weights.safetensors");
    let digest = galaxies_digest(g);
    sdss_cnn::keras::write_with_manifest(
        model.config(),
        model.weights(),
        ManifestSource {
            location: args.images.display().to_string(),
            format: KerasFormat::Trained,
            keras_version: None,
            sha256: digest.clone(),
        },
        Some(training_json(args, arch, g, trainer, &metrics, &digest)),
        &weights_path,
    )?;
    let last = history.last();
    println!(
        "trained {arch} self-supervised ({}) for {} epochs ({:.0} s): val loss {:.4}, embedding std {:.4} -> {} (embedding: `features --layer embedding --weights` it)",
        method(args).name(),
        history.len(),
        started.elapsed().as_secs_f64(),
        last.map_or(f64::NAN, |r| r.val_loss),
        last.and_then(|r| r.embedding_std).unwrap_or(f64::NAN),
        weights_path.display()
    );
    Ok(())
}

fn final_json(history: &[EpochRecord]) -> Value {
    json!(history.last().map(|r| json!({
        "train_loss": r.train_loss,
        "val_loss": r.val_loss,
        "embedding_std": r.embedding_std,
        "learning_rate": r.learning_rate,
    })))
}

fn metrics_json(
    args: &TrainArgs,
    arch: &str,
    g: &Galaxies,
    trainer: &SslTrainer,
    started: Instant,
) -> Value {
    let history = trainer.history();
    let training_seconds: f64 = history.iter().map(|r| r.seconds).sum();
    let views = 2 * trainer.options().batch_size * (g.counts.train / trainer.options().batch_size);
    json!({
        "task": "self-supervised",
        "method": method(args).name(),
        "arch": arch,
        "parameters": trainer.network().config().parameter_count().ok(),
        "seed": args.seed,
        "split": {"train": g.counts.train, "val": g.counts.val, "val_fraction": args.val_fraction},
        "epochs_requested": args.epochs(),
        "epochs_run": history.len(),
        "final": final_json(history),
        "embedding": "dense",
        "wall_seconds": started.elapsed().as_secs_f64(),
        "training_seconds": training_seconds,
        "views_per_second": if training_seconds > 0.0 {
            (views * history.len()) as f64 / training_seconds
        } else {
            0.0
        },
    })
}

/// This process's arguments as a shell command, under the installed binary's name.
fn command_line() -> String {
    let quote = |a: String| {
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c))
        {
            a
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    };
    std::iter::once("sdss-clustering".to_owned())
        .chain(std::env::args().skip(1).map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

fn training_json(
    args: &TrainArgs,
    arch: &str,
    g: &Galaxies,
    trainer: &SslTrainer,
    metrics: &Value,
    digest: &str,
) -> Value {
    let o = trainer.options();
    json!({
        // The exact command line, so that the manifest says how to make these weights again.
        "command": command_line(),
        "task": "self-supervised",
        "method": o.method.name(),
        "arch": arch,
        "embedding": "dense",
        "untrained_layers": ["dense_1", "dense_2"],
        "images": args.images.display().to_string(),
        "galaxies": g.ids.len(),
        "galaxies_sha256": digest,
        "init_weights": args.init_weights.as_ref().map(|p| p.display().to_string()),
        "epochs": trainer.history().len(),
        "batch_size": o.batch_size,
        "device": args.device.to_string(),
        "learning_rate": o.learning_rate,
        "final_learning_rate": trainer.history().last().map(|r| r.learning_rate),
        "schedule": ReduceLrOnPlateau::sdss_cnn(),
        "projector": o.projector,
        "vicreg": o.vicreg,
        "augment": GalaxyAugment::galaxies(),
        "seed": args.seed,
        "split": metrics["split"],
        "final": metrics["final"],
    })
}
