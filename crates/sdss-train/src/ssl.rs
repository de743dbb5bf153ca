//! Self-supervised training: the network learns an embedding from unlabelled galaxies by making two
//! augmented views of each galaxy agree, without collapsing to a constant.
//!
//! Two objectives, both without negative pairs and both usable at CPU-sized batches:
//!
//! - **VICReg** (Bardes, Ponce & LeCun 2022), the default: the projections of the two views are pulled
//!   together (invariance), every projection dimension is kept at a standard deviation of at least 1
//!   over the batch (variance) and the dimensions are decorrelated (covariance). The variance term
//!   prevents collapse explicitly, so it needs no batch normalisation, which these networks do not have.
//! - **SimSiam** (Chen & He 2021): a predictor maps one view's projection to the other's, through a
//!   stop-gradient. It avoids collapse only through its training dynamics, which the paper shows rely
//!   on batch normalisation in the heads; here it is kept for comparison (see the crate docs for what
//!   was measured).
//!
//! The encoder is any architecture of sdss-cnn up to its `dense` layer (the embedding tap); the
//! projection head (and predictor) are separate perceptrons ([`crate::head`]) dropped at the end. The
//! network's own `dense_1` and output layers are not trained.
//!
//! Training follows [`crate::trainer`]: seeded streams for the shuffle, each view's augmentation and the
//! dropout masks, Adam, `ReduceLROnPlateau` on a validation loss (the objective on fixed views of the
//! validation galaxies, the same every epoch), atomic per-epoch checkpoints and exact resume.
//!
//! ```
//! use sdss_cnn::{CnnConfig, CnnWeights};
//! use sdss_train::ssl::{SslOptions, SslTrainer};
//! use sdss_train::{Network, Quiet};
//!
//! let cfg = CnnConfig::small();
//! let net = Network::from_weights(cfg.clone(), &CnnWeights::random(&cfg, 0)?)?;
//! let per = 80 * 80 * 3;
//! let images: Vec<f32> = (0..40 * per).map(|i| (i % 97) as f32 / 96.0).collect();
//! let (val, train) = images.split_at(8 * per);
//! let options = SslOptions { epochs: 1, batch_size: 16, ..SslOptions::default() }; // VICReg
//! let mut trainer = SslTrainer::new(net, options, serde_json::json!({}))?;
//! trainer.fit(train, val, None, &mut Quiet)?;
//! assert_eq!(trainer.embed(val)?.len(), 8 * 128);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use sdss_cnn::ComputeDevice;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::augment::{self, AugmentConfig};
use crate::checkpoint::{self, RawCheckpoint};
use crate::device::{Depth, DeviceStep};
use crate::error::{Result, TrainError};
use crate::head::{self, MlpShape};
use crate::network::{sub_seed as mix, Network, StepRandomness, Tensors};
use crate::optim::{Adam, ReduceLrOnPlateau};
use crate::ssl_loss;
use crate::trainer::{self, BatchProgress, EpochRecord, Observer, AUGMENT, DROPOUT, SHUFFLE};

pub use crate::ssl_loss::{normalized_embedding_std, VicregTerms};

/// The self-supervised objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SslMethod {
    /// VICReg: invariance + variance + covariance terms.
    Vicreg,
    /// SimSiam: negative cosine similarity through a predictor, with a stop-gradient.
    SimSiam,
}

impl SslMethod {
    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            SslMethod::Vicreg => "vicreg",
            SslMethod::SimSiam => "simsiam",
        }
    }
}

/// Weights of VICReg's three terms (the paper's λ, μ, ν).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VicregWeights {
    /// λ: mean squared distance between the two views' projections.
    pub invariance: f64,
    /// μ: hinge on each dimension's standard deviation.
    pub variance: f64,
    /// ν: off-diagonal covariance.
    pub covariance: f64,
}

impl Default for VicregWeights {
    /// The paper's λ = μ = 25, ν = 1.
    fn default() -> Self {
        VicregWeights {
            invariance: 25.0,
            variance: 25.0,
            covariance: 1.0,
        }
    }
}

/// Augmentations suited to galaxy images, applied in this order: the affine step (rotation by any
/// angle, small zoom and shifts, flips; Keras `ImageDataGenerator` semantics with `fill_mode='nearest'`),
/// a Gaussian PSF blur, a brightness factor, then Gaussian pixel noise, the result clipped to [0, 1].
///
/// Nothing crops: the zoom and shifts are small enough that the central galaxy stays in the frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GalaxyAugment {
    /// Rotation, zoom, shifts and flips.
    pub affine: AugmentConfig,
    /// Gaussian pixel noise: σ (in units of the [0, 1] pixel scale) drawn uniformly from this range per
    /// view.
    pub noise_sigma: [f64; 2],
    /// PSF blur: Gaussian σ in pixels drawn uniformly from this range per view (below 0.1 px, none).
    pub blur_sigma_px: [f64; 2],
    /// Brightness: a factor drawn uniformly from this range per view.
    pub brightness: [f64; 2],
}

impl Default for GalaxyAugment {
    fn default() -> Self {
        Self::galaxies()
    }
}

impl GalaxyAugment {
    /// The defaults: any rotation, zoom 0.9–1.1, shifts up to 5% (4 px at 80 px), both flips, blur σ up
    /// to 1 px (the images' PSF is about 1.5–2 px FWHM), brightness ×0.8–1.2 and noise σ up to 0.02
    /// (sky noise of the 8-bit cutouts is about 0.01).
    pub fn galaxies() -> Self {
        GalaxyAugment {
            affine: AugmentConfig {
                rotation_range_deg: 180.0,
                zoom_range: [0.9, 1.1],
                width_shift_range: 0.05,
                height_shift_range: 0.05,
                horizontal_flip: true,
                vertical_flip: true,
            },
            noise_sigma: [0.0, 0.02],
            blur_sigma_px: [0.0, 1.0],
            brightness: [0.8, 1.2],
        }
    }

    /// Checks every range: finite, `lower <= upper`, non-negative (brightness positive).
    pub fn validate(&self) -> Result<()> {
        self.affine
            .validate()
            .map_err(|e| TrainError::Invalid(e.to_string()))?;
        for (name, [lo, hi], min) in [
            ("noise_sigma", self.noise_sigma, 0.0),
            ("blur_sigma_px", self.blur_sigma_px, 0.0),
            ("brightness", self.brightness, f64::MIN_POSITIVE),
        ] {
            if !(lo.is_finite() && hi.is_finite() && lo >= min && lo <= hi) {
                return Err(TrainError::Invalid(format!(
                    "augmentation range {name} = [{lo}, {hi}] must be finite, ordered and at least {min}"
                )));
            }
        }
        Ok(())
    }

    /// One random view of `src` (`h × w × c`, channels last) into `dst`.
    pub fn apply(
        &self,
        rng: &mut impl Rng,
        src: &[f32],
        (h, w, c): (usize, usize, usize),
        dst: &mut [f32],
    ) -> Result<()> {
        let params = self.affine.sample(rng, h, w);
        augment::apply_transform(src, h, w, c, &params, dst)
            .map_err(|e| TrainError::Invalid(e.to_string()))?;
        let draw =
            |rng: &mut dyn rand::RngCore, [lo, hi]: [f64; 2]| lo + (hi - lo) * rng.random::<f64>();
        let blur = draw(rng, self.blur_sigma_px);
        let brightness = draw(rng, self.brightness) as f32;
        let noise = draw(rng, self.noise_sigma);
        if blur >= 0.1 {
            gaussian_blur(dst, (h, w, c), blur);
        }
        let normal = rand_distr_normal(noise);
        for v in dst.iter_mut() {
            let n = if noise > 0.0 { normal(rng) } else { 0.0 };
            *v = (*v * brightness + n).clamp(0.0, 1.0);
        }
        Ok(())
    }
}

/// A Gaussian of standard deviation `sigma` drawn by Box–Muller (rand 0.9 has no normal distribution
/// without rand_distr).
fn rand_distr_normal(sigma: f64) -> impl Fn(&mut dyn rand::RngCore) -> f32 {
    move |rng: &mut dyn rand::RngCore| {
        let u1 = 1.0 - rng.random::<f64>();
        let u2 = rng.random::<f64>();
        (sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

/// Separable Gaussian blur in place, truncated at 3σ, with edge pixels repeated (as `fill_mode='nearest'`).
fn gaussian_blur(img: &mut [f32], (h, w, c): (usize, usize, usize), sigma: f64) {
    let r = (3.0 * sigma).ceil() as isize;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    let mut tmp = vec![0.0f32; img.len()];
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                let mut acc = 0.0;
                for (j, kv) in k.iter().enumerate() {
                    let xx = clamp(x as isize + j as isize - r, w);
                    acc += kv * img[(y * w + xx) * c + ch];
                }
                tmp[(y * w + x) * c + ch] = acc;
            }
        }
    }
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                let mut acc = 0.0;
                for (j, kv) in k.iter().enumerate() {
                    let yy = clamp(y as isize + j as isize - r, h);
                    acc += kv * tmp[(yy * w + x) * c + ch];
                }
                img[(y * w + x) * c + ch] = acc;
            }
        }
    }
}

/// How to train self-supervised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SslOptions {
    /// The objective.
    pub method: SslMethod,
    /// Passes over the images.
    pub epochs: usize,
    /// Galaxies per step (each gives two views).
    pub batch_size: usize,
    /// Adam's initial learning rate.
    pub learning_rate: f64,
    /// Seed of everything random: the heads' initialisation, shuffles, views and dropout masks.
    pub seed: u64,
    /// The views' augmentation.
    pub augment: GalaxyAugment,
    /// Widths of the projection head's layers after the embedding.
    pub projector: Vec<usize>,
    /// Widths of SimSiam's predictor (its last width must equal the projector's); unused by VICReg.
    pub predictor: Vec<usize>,
    /// VICReg's term weights.
    pub vicreg: VicregWeights,
    /// Learning-rate schedule on the validation loss.
    pub schedule: ReduceLrOnPlateau,
    /// Checkpoints kept.
    pub checkpoints_kept: usize,
}

impl Default for SslOptions {
    /// VICReg with a 512-512 projector, batches of 128 galaxies, Adam at 1e-3, 100 epochs, galaxy
    /// augmentations, and `ReduceLROnPlateau` (factor 0.2, patience 5, min_lr 1e-5).
    fn default() -> Self {
        SslOptions {
            method: SslMethod::Vicreg,
            epochs: 100,
            batch_size: 128,
            learning_rate: 1e-3,
            seed: 0,
            augment: GalaxyAugment::galaxies(),
            projector: vec![512, 512],
            predictor: vec![128, 512],
            vicreg: VicregWeights::default(),
            schedule: ReduceLrOnPlateau::sdss_cnn(),
            checkpoints_kept: 2,
        }
    }
}

impl SslOptions {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Invalid(m));
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if self.batch_size < 2 {
            return bad(format!(
                "--batch-size must be at least 2 for self-supervised training (it compares the \
                 galaxies of a batch), got {}",
                self.batch_size
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "--lr must be a positive number, not {}",
                self.learning_rate
            ));
        }
        if self.checkpoints_kept == 0 {
            return bad("at least one checkpoint must be kept".into());
        }
        let w = &self.vicreg;
        if ![w.invariance, w.variance, w.covariance]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0)
        {
            return bad(format!("VICReg weights must be finite and >= 0: {w:?}"));
        }
        if self.method == SslMethod::SimSiam && self.predictor.last() != self.projector.last() {
            return bad(format!(
                "SimSiam's predictor must end at the projector's width ({:?} vs {:?})",
                self.predictor, self.projector
            ));
        }
        self.augment.validate()
    }

    fn shapes(&self, embedding: usize) -> Result<(MlpShape, Option<MlpShape>)> {
        let projector = MlpShape {
            input: embedding,
            layers: self.projector.clone(),
        };
        projector.validate("projection head")?;
        let predictor = match self.method {
            SslMethod::Vicreg => None,
            SslMethod::SimSiam => {
                let p = MlpShape {
                    input: projector.output(),
                    layers: self.predictor.clone(),
                };
                p.validate("predictor")?;
                Some(p)
            }
        };
        Ok((projector, predictor))
    }
}

/// A checkpoint's metadata.
#[derive(Serialize, Deserialize)]
struct Meta {
    version: u32,
    config: sdss_cnn::CnnConfig,
    options: SslOptions,
    iterations: u64,
    head_iterations: u64,
    learning_rate: f64,
    schedule: ReduceLrOnPlateau,
    history: Vec<EpochRecord>,
    run_key: Value,
}

const META_KEY: &str = "sdss_train_ssl_checkpoint";
// Stream tags of the heads' initialisation and the validation views.
const HEADS: u64 = 0x4845_4144;
const VAL_VIEWS: u64 = 0x5641_4C56;

/// A self-supervised trainer: the encoder, its heads, both optimisers, the schedule and the history.
pub struct SslTrainer {
    network: Network<f32>,
    projector: MlpShape,
    predictor: Option<MlpShape>,
    /// Projector tensors, then predictor tensors.
    heads: Tensors<f32>,
    adam: Adam<f32>,
    head_adam: Adam<f32>,
    options: SslOptions,
    schedule: ReduceLrOnPlateau,
    learning_rate: f64,
    history: Vec<EpochRecord>,
    run_key: Value,
    /// Where each step's encoder passes run; `None` is this crate's CPU engine.
    device: Option<DeviceStep>,
}

/// One batch's objective and the gradient with respect to the encoder's embeddings.
struct StepOutcome {
    loss: f64,
    grad_embedding: Vec<f32>,
    head_grads: Vec<Vec<f32>>,
}

impl SslTrainer {
    /// A trainer for `encoder` with fresh heads (initialised from `options.seed`) and optimisers.
    /// `run_key` identifies the run (as for [`trainer::Trainer::new`]).
    pub fn new(encoder: Network<f32>, options: SslOptions, run_key: Value) -> Result<Self> {
        options.validate()?;
        let (projector, predictor) = options.shapes(encoder.config().dense_units)?;
        let mut heads = projector.init::<f32>(mix(options.seed ^ HEADS, 0));
        if let Some(p) = &predictor {
            heads
                .data
                .extend(p.init::<f32>(mix(options.seed ^ HEADS, 1)).data);
        }
        Ok(SslTrainer {
            adam: Adam::new(&encoder.params),
            head_adam: Adam::new(&heads),
            network: encoder,
            projector,
            predictor,
            heads,
            learning_rate: options.learning_rate,
            schedule: options.schedule.clone(),
            options,
            history: Vec::new(),
            run_key,
            device: None,
        })
    }

    /// The trainer saved in the newest checkpoint of `dir`, or `None` when `dir` holds none; a
    /// checkpoint made under another `run_key` is an error naming what differs. A top-level `epochs`
    /// in `run_key` sets the new total.
    pub fn resume(dir: &Path, run_key: &Value) -> Result<Option<Self>> {
        let Some(path) = checkpoint::latest_path(dir)? else {
            return Ok(None);
        };
        let raw = RawCheckpoint::read(&path, META_KEY, "self-supervised training")?;
        let meta: Meta =
            serde_json::from_str(&raw.json).map_err(|e| raw.bad(format!("metadata: {e}")))?;
        if meta.version != 1 {
            return Err(raw.bad(format!("checkpoint version {} is not 1", meta.version)));
        }
        trainer::check_run_key(&path, &meta.run_key, run_key)?;
        let mut options = meta.options;
        if let Some(e) = run_key.get("epochs").and_then(Value::as_u64) {
            options.epochs = e as usize;
        }
        let specs = meta.config.tensor_specs()?;
        let take = |prefix: &str| -> Result<Tensors<f32>> {
            let data = specs
                .iter()
                .map(|s| raw.tensor(&format!("{prefix}.{}", s.key()), &s.shape))
                .collect::<Result<_>>()?;
            Ok(Tensors { data })
        };
        let mut trainer = SslTrainer::new(
            Network::new(meta.config.clone(), take("param")?)?,
            options,
            run_key.clone(),
        )?;
        trainer.adam.iterations = meta.iterations;
        trainer.adam.m = take("adam_m")?;
        trainer.adam.v = take("adam_v")?;
        let head_take = |prefix: &str, like: &Tensors<f32>| -> Result<Tensors<f32>> {
            let data = like
                .data
                .iter()
                .enumerate()
                .map(|(i, t)| raw.tensor(&format!("head.{prefix}.{i:02}"), &[t.len()]))
                .collect::<Result<_>>()?;
            Ok(Tensors { data })
        };
        let like = trainer.heads.clone();
        trainer.heads = head_take("param", &like)?;
        trainer.head_adam.iterations = meta.head_iterations;
        trainer.head_adam.m = head_take("adam_m", &like)?;
        trainer.head_adam.v = head_take("adam_v", &like)?;
        trainer.schedule = meta.schedule;
        trainer.learning_rate = meta.learning_rate;
        trainer.history = meta.history;
        tracing::info!(
            checkpoint = %path.display(),
            epoch = trainer.history.len(),
            "resuming self-supervised training"
        );
        Ok(Some(trainer))
    }

    /// Runs each step's encoder forward and backward passes on `device` (see
    /// [`trainer::Trainer::set_device`]); the views, the heads, the objective and both optimisers
    /// stay on the CPU, so the run is the CPU run to float rounding.
    pub fn set_device(&mut self, device: ComputeDevice) -> Result<()> {
        self.set_device_step(DeviceStep::for_device(device)?);
        Ok(())
    }

    /// Runs the encoder's passes through `step`, or this crate's CPU engine with `None` (see
    /// [`trainer::Trainer::set_device_step`]).
    pub fn set_device_step(&mut self, step: Option<DeviceStep>) {
        self.device = step;
    }

    /// The device the encoder's passes run on.
    pub fn device(&self) -> ComputeDevice {
        DeviceStep::device_of(&self.device)
    }

    /// Epochs done.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// The options.
    pub fn options(&self) -> &SslOptions {
        &self.options
    }

    /// The encoder being trained.
    pub fn network(&self) -> &Network<f32> {
        &self.network
    }

    /// The learning rate the next epoch will use.
    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    /// The encoder as an sdss-cnn model; its embedding is the `dense` tap ([`sdss_cnn::Tap::Dense`]).
    /// The network's `dense_1` and output layers keep their initial weights.
    pub fn model(&self) -> Result<sdss_cnn::CnnModel> {
        self.network.to_model()
    }

    /// The embeddings `(n, dense_units)` of flattened images, through the inference engine.
    pub fn embed(&self, images: &[f32]) -> Result<Vec<f32>> {
        embed_with(&self.model()?, images)
    }

    fn image_shape(&self) -> (usize, usize, usize) {
        let c = self.network.config();
        (c.input_height, c.input_width, c.input_channels)
    }

    /// Trains until `options.epochs` epochs are done, writing a checkpoint into `checkpoint_dir` after
    /// every epoch. `train` and `val` are flattened `(n, h, w, c)` images in [0, 1]; each needs at least
    /// 2 images. A final batch of fewer than half `batch_size` galaxies is left out of the epoch (a
    /// batch's variance and covariance need enough galaxies to mean something); the shuffle changes it
    /// every epoch.
    pub fn fit(
        &mut self,
        train: &[f32],
        val: &[f32],
        checkpoint_dir: Option<&Path>,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        let shape = self.image_shape();
        let per = shape.0 * shape.1 * shape.2;
        for (name, d) in [("training", train), ("validation", val)] {
            if !d.len().is_multiple_of(per) || d.len() < 2 * per {
                return Err(TrainError::Invalid(format!(
                    "the {name} images must be at least 2 whole {}x{}x{} images ({} values given)",
                    shape.0,
                    shape.1,
                    shape.2,
                    d.len()
                )));
            }
        }
        let n = train.len() / per;
        let bs = self.options.batch_size;
        let seed = self.options.seed;
        while self.history.len() < self.options.epochs {
            let epoch = self.history.len() + 1;
            let t0 = Instant::now();
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(
                seed ^ SHUFFLE,
                epoch as u64,
            )));
            let batches = batches(&order, bs);
            let total: usize = batches.iter().map(|b| b.len()).sum();
            let (mut loss_sum, mut seen) = (0.0f64, 0usize);
            for (step, idx) in batches.iter().enumerate() {
                let views = self.views(train, idx, |pos, view| {
                    mix(
                        seed ^ AUGMENT,
                        (epoch as u64) << 40 | ((step * bs + pos) as u64) << 1 | view,
                    )
                })?;
                let randomness = StepRandomness {
                    seed: mix(seed ^ DROPOUT, self.adam.iterations),
                    dropout: true,
                };
                let diverged = |loss: f64| TrainError::Diverged {
                    loss,
                    epoch,
                    step: step + 1,
                };
                let (out, grads) = match &self.device {
                    Some(device) => {
                        let pass =
                            device.forward(&self.network, &views, randomness, Depth::Embedding)?;
                        let out = self.objective(&pass.embedding()?, idx.len(), true)?;
                        if !out.loss.is_finite() {
                            return Err(diverged(out.loss));
                        }
                        let grads = pass.gradients_from_embedding(&out.grad_embedding)?;
                        (out, grads)
                    }
                    None => {
                        let cache = self.network.forward(&views, randomness)?;
                        let out = self.objective(cache.dense_after_dropout(), idx.len(), true)?;
                        if !out.loss.is_finite() {
                            return Err(diverged(out.loss));
                        }
                        let grads = self.network.backward_from_dense(
                            &views,
                            &cache,
                            &out.grad_embedding,
                        )?;
                        (out, grads)
                    }
                };
                self.adam
                    .step(&mut self.network.params, &grads, self.learning_rate);
                self.head_adam.step(
                    &mut self.heads,
                    &Tensors {
                        data: out.head_grads,
                    },
                    self.learning_rate,
                );
                loss_sum += out.loss * idx.len() as f64;
                seen += idx.len();
                observer.batch_done(&BatchProgress {
                    epoch,
                    epochs: self.options.epochs,
                    images_done: seen,
                    images_total: total,
                    loss: loss_sum / seen as f64,
                });
                if observer.should_stop() {
                    return Err(TrainError::Interrupted { epoch });
                }
            }
            let (val_loss, embedding_std) = self.evaluate(val)?;
            let record = EpochRecord {
                epoch,
                train_loss: loss_sum / seen.max(1) as f64,
                val_loss,
                learning_rate: self.learning_rate,
                seconds: t0.elapsed().as_secs_f64(),
                embedding_std: Some(embedding_std),
            };
            self.learning_rate = trainer::next_learning_rate(
                &mut self.schedule,
                epoch,
                val_loss,
                self.learning_rate,
            );
            self.history.push(record.clone());
            if let Some(dir) = checkpoint_dir {
                self.save_checkpoint(dir)?;
            }
            observer.epoch_done(&record);
        }
        Ok(())
    }

    /// Two views of each galaxy of `idx`: `(2m, h, w, c)`, all first views, then all second views.
    /// `stream(position, view)` seeds each view's augmentation.
    fn views(
        &self,
        images: &[f32],
        idx: &[usize],
        stream: impl Fn(usize, u64) -> u64 + Sync,
    ) -> Result<Vec<f32>> {
        let shape = self.image_shape();
        let per = shape.0 * shape.1 * shape.2;
        let m = idx.len();
        let mut out = vec![0.0f32; 2 * m * per];
        out.par_chunks_mut(per)
            .enumerate()
            .try_for_each(|(k, dst)| {
                let (pos, view) = (k % m, (k / m) as u64);
                let i = idx[pos];
                let mut rng = ChaCha8Rng::seed_from_u64(stream(pos, view));
                self.options
                    .augment
                    .apply(&mut rng, &images[i * per..(i + 1) * per], shape, dst)
            })?;
        Ok(out)
    }

    /// The objective of `m` galaxies from their `2m` embeddings (first views, then second views), and
    /// with `gradients` its gradients.
    fn objective(&self, embedding: &[f32], m: usize, gradients: bool) -> Result<StepOutcome> {
        let split = self.projector.tensor_count();
        let (proj_params, pred_params) = self.heads.data.split_at(split);
        let proj = head::forward(&self.projector, proj_params, embedding)?;
        let d = self.projector.output();
        let (za, zb) = proj.output.split_at(m * d);
        let (loss, grad_z, pred_grads) = match &self.predictor {
            None => {
                let (terms, ga, gb) = ssl_loss::vicreg(za, zb, m, d, &self.options.vicreg)?;
                (terms.total, [ga, gb].concat(), Vec::new())
            }
            Some(pred_shape) => {
                let pred = head::forward(pred_shape, pred_params, &proj.output)?;
                let (pa, pb) = pred.output.split_at(m * d);
                let (loss, ga, gb) = ssl_loss::simsiam(pa, pb, za, zb, m, d)?;
                if !gradients {
                    (loss, Vec::new(), Vec::new())
                } else {
                    let (g, gz) =
                        head::backward(pred_shape, pred_params, &pred, &[ga, gb].concat())?;
                    (loss, gz, g)
                }
            }
        };
        if !gradients {
            return Ok(StepOutcome {
                loss,
                grad_embedding: Vec::new(),
                head_grads: Vec::new(),
            });
        }
        let (mut head_grads, grad_embedding) =
            head::backward(&self.projector, proj_params, &proj, &grad_z)?;
        head_grads.extend(pred_grads);
        Ok(StepOutcome {
            loss,
            grad_embedding,
            head_grads,
        })
    }

    /// The objective on fixed views of the validation galaxies (the same views every epoch, no
    /// dropout), in batches as in training, and the collapse check on their un-augmented embeddings.
    pub fn evaluate(&self, val: &[f32]) -> Result<(f64, f64)> {
        let shape = self.image_shape();
        let per = shape.0 * shape.1 * shape.2;
        let n = val.len() / per;
        let order: Vec<usize> = (0..n).collect();
        let no_dropout = StepRandomness {
            seed: 0,
            dropout: false,
        };
        let (mut sum, mut count) = (0.0, 0usize);
        let bs = self.options.batch_size;
        for (b, idx) in batches(&order, bs).iter().enumerate() {
            let views = self.views(val, idx, |pos, view| {
                mix(
                    self.options.seed ^ VAL_VIEWS,
                    ((b * bs + pos) as u64) << 1 | view,
                )
            })?;
            let out = match &self.device {
                Some(device) => {
                    let pass =
                        device.forward(&self.network, &views, no_dropout, Depth::Embedding)?;
                    self.objective(&pass.embedding()?, idx.len(), false)?
                }
                None => {
                    let cache = self.network.forward(&views, no_dropout)?;
                    self.objective(cache.dense_after_dropout(), idx.len(), false)?
                }
            };
            sum += out.loss * idx.len() as f64;
            count += idx.len();
        }
        let emb = embed_with(&self.model()?, val)?;
        let std = normalized_embedding_std(&emb, self.network.config().dense_units);
        Ok((sum / count.max(1) as f64, std))
    }

    fn save_checkpoint(&self, dir: &Path) -> Result<PathBuf> {
        let specs = self.network.config().tensor_specs()?;
        let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let bytes = |t: &[f32]| t.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        for (prefix, t) in [
            ("param", &self.network.params),
            ("adam_m", &self.adam.m),
            ("adam_v", &self.adam.v),
        ] {
            for (spec, data) in specs.iter().zip(&t.data) {
                blobs.push((
                    format!("{prefix}.{}", spec.key()),
                    spec.shape.clone(),
                    bytes(data),
                ));
            }
        }
        for (prefix, t) in [
            ("param", &self.heads),
            ("adam_m", &self.head_adam.m),
            ("adam_v", &self.head_adam.v),
        ] {
            for (i, data) in t.data.iter().enumerate() {
                blobs.push((
                    format!("head.{prefix}.{i:02}"),
                    vec![data.len()],
                    bytes(data),
                ));
            }
        }
        let meta = Meta {
            version: 1,
            config: self.network.config().clone(),
            options: self.options.clone(),
            iterations: self.adam.iterations,
            head_iterations: self.head_adam.iterations,
            learning_rate: self.learning_rate,
            schedule: self.schedule.clone(),
            history: self.history.clone(),
            run_key: self.run_key.clone(),
        };
        let json = serde_json::to_string(&meta).map_err(|e| TrainError::Invalid(e.to_string()))?;
        checkpoint::save_raw(
            dir,
            self.history.len(),
            &blobs,
            META_KEY,
            json,
            self.options.checkpoints_kept,
        )
    }
}

/// The order's batches of `bs`, without a final batch of fewer than `max(2, bs/2)` galaxies unless it
/// is the only one.
fn batches(order: &[usize], bs: usize) -> Vec<&[usize]> {
    let mut out: Vec<&[usize]> = order.chunks(bs).collect();
    if out.len() > 1 {
        if let Some(last) = out.last() {
            if last.len() < 2.max(bs.div_ceil(2)) {
                out.pop();
            }
        }
    }
    out
}

/// `(n, dense_units)` embeddings of `model` (the `dense` tap) for flattened images, in batches of 64.
pub fn embed_with(model: &sdss_cnn::CnnModel, images: &[f32]) -> Result<Vec<f32>> {
    trainer::tap_with(model, images, sdss_cnn::Tap::Dense)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_drop_only_a_small_remainder() {
        let order: Vec<usize> = (0..10).collect();
        assert_eq!(
            batches(&order, 4).len(),
            3,
            "10 = 4 + 4 + 2: 2 is half of 4, kept"
        );
        assert_eq!(
            batches(&order, 3).len(),
            3,
            "10 = 3 + 3 + 3 + 1: the 1 goes"
        );
        assert_eq!(batches(&order, 16).len(), 1, "the only batch stays");
        assert_eq!(batches(&order, 8).len(), 1, "10 = 8 + 2: 2 < 4 goes");
    }

    #[test]
    fn augmentation_keeps_range_and_is_seeded() {
        let aug = GalaxyAugment::galaxies();
        let src: Vec<f32> = (0..12 * 12 * 3).map(|i| (i % 17) as f32 / 16.0).collect();
        let run = |seed| {
            let mut dst = vec![0.0; src.len()];
            aug.apply(
                &mut ChaCha8Rng::seed_from_u64(seed),
                &src,
                (12, 12, 3),
                &mut dst,
            )
            .unwrap();
            dst
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        assert!(run(3).iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn blur_preserves_a_constant_image_and_flux() {
        let mut flat = vec![0.25f32; 9 * 9];
        gaussian_blur(&mut flat, (9, 9, 1), 1.0);
        assert!(flat.iter().all(|v| (v - 0.25).abs() < 1e-6));
        let mut point = vec![0.0f32; 15 * 15];
        point[7 * 15 + 7] = 1.0;
        gaussian_blur(&mut point, (15, 15, 1), 1.0);
        let total: f32 = point.iter().sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        assert!(point[7 * 15 + 7] < 0.2 && point[7 * 15 + 8] > 0.05);
    }

    #[test]
    fn bad_options_are_errors() {
        let cfg = sdss_cnn::CnnConfig::small();
        let net = || {
            Network::from_weights(cfg.clone(), &sdss_cnn::CnnWeights::random(&cfg, 0).unwrap())
                .unwrap()
        };
        let with = |o: SslOptions| SslTrainer::new(net(), o, Value::Null).err();
        assert!(with(SslOptions {
            batch_size: 1,
            ..Default::default()
        })
        .is_some());
        assert!(with(SslOptions {
            method: SslMethod::SimSiam,
            predictor: vec![64, 100],
            ..Default::default()
        })
        .is_some());
        assert!(with(SslOptions {
            projector: vec![],
            ..Default::default()
        })
        .is_some());
        let mut aug = GalaxyAugment::galaxies();
        aug.brightness = [1.2, 0.8];
        assert!(with(SslOptions {
            augment: aug,
            ..Default::default()
        })
        .is_some());
        let mut t = SslTrainer::new(net(), SslOptions::default(), Value::Null).unwrap();
        let one = vec![0.0f32; 80 * 80 * 3];
        assert!(t.fit(&one, &one, None, &mut crate::Quiet).is_err());
    }
}
