//! The training loop of sdss_CNN's recipe: shuffled mini-batches, augmentation of the training images,
//! Adam, the validation loss after every epoch driving `ReduceLROnPlateau`, and a checkpoint per epoch.
//!
//! Every random choice comes from a stream seeded by `(seed, epoch, position)` or `(seed, step)`: the
//! shuffle of an epoch, each image's augmentation and each step's dropout masks. So a run is reproducible
//! bit for bit on the same machine (the order of every floating-point sum is fixed, see
//! [`crate::network::CHUNK`]), and a run resumed from the checkpoint of epoch `e` continues exactly as the
//! uninterrupted run did after epoch `e`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use sdss_cnn::ComputeDevice;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::augment::{self, AugmentConfig};
use crate::checkpoint::{self, Checkpoint};
use crate::device::DeviceStep;
use crate::error::{Result, TrainError};
use crate::network::{sub_seed as mix, BatchTargets, Loss, Network, StepRandomness};
use crate::optim::{Adam, ReduceLrOnPlateau};

/// How to train: the defaults are sdss_CNN's recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Passes over the training images (sdss_CNN: 35).
    pub epochs: usize,
    /// Images per step (sdss_CNN: 32).
    pub batch_size: usize,
    /// Adam's initial learning rate (sdss_CNN: 0.001).
    pub learning_rate: f64,
    /// Seed of the shuffles, augmentations and dropout masks.
    pub seed: u64,
    /// Augmentation of the training images (sdss_CNN: Keras `ImageDataGenerator`, see
    /// [`AugmentConfig::sdss_cnn`]).
    pub augment: AugmentConfig,
    /// The learning-rate schedule (sdss_CNN: factor 0.2, patience 5, min_lr 1e-5).
    pub schedule: ReduceLrOnPlateau,
    /// Checkpoints kept in the checkpoint folder (the newest ones).
    pub checkpoints_kept: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 35,
            batch_size: 32,
            learning_rate: 1e-3,
            seed: 0,
            augment: AugmentConfig::sdss_cnn(),
            schedule: ReduceLrOnPlateau::sdss_cnn(),
            checkpoints_kept: 2,
        }
    }
}

impl TrainOptions {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Invalid(m));
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
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
        self.augment
            .validate()
            .map_err(|e| TrainError::Invalid(e.to_string()))
    }
}

/// Training targets of a set of images.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainTargets {
    /// `(n, outputs)` values, row-major: a regression.
    Values(Vec<f32>),
    /// One class label per image: a classification.
    Classes(Vec<usize>),
}

/// Images and their targets.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `(n, height, width, channels)` channels-last values in [0, 1], flattened.
    pub images: Vec<f32>,
    /// The targets.
    pub targets: TrainTargets,
    image_len: usize,
}

impl Dataset {
    /// Checks that `images` holds whole images of `image_len` values and that there is one target (row)
    /// per image.
    pub fn new(images: Vec<f32>, targets: TrainTargets, image_len: usize) -> Result<Self> {
        if image_len == 0 || !images.len().is_multiple_of(image_len) {
            return Err(TrainError::Invalid(format!(
                "{} image values are not a whole number of images of {image_len}",
                images.len()
            )));
        }
        let n = images.len() / image_len;
        let ok = match &targets {
            TrainTargets::Values(v) => n > 0 && v.len().is_multiple_of(n) && !v.is_empty(),
            TrainTargets::Classes(c) => c.len() == n,
        };
        if !ok || n == 0 {
            return Err(TrainError::Invalid(format!(
                "{n} images do not match their targets"
            )));
        }
        Ok(Dataset {
            images,
            targets,
            image_len,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len() / self.image_len
    }

    /// Whether there are no images (never true for a built dataset).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn outputs(&self) -> usize {
        match &self.targets {
            TrainTargets::Values(v) => v.len() / self.len(),
            TrainTargets::Classes(_) => 1,
        }
    }
}

/// One epoch of the training history (Keras `History`: `loss`, `val_loss`, `lr`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps (with dropout, as Keras reports it).
    pub train_loss: f64,
    /// Loss on the validation images at the end of the epoch (no dropout, no augmentation).
    pub val_loss: f64,
    /// Learning rate used during the epoch.
    pub learning_rate: f64,
    /// Wall time of the epoch, validation included.
    pub seconds: f64,
    /// Self-supervised runs: the collapse check on the validation images (mean per-dimension standard
    /// deviation of the L2-normalised embeddings; 0 when collapsed, about 1/√d when spread evenly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_std: Option<f64>,
}

/// Where an epoch is, after each step.
#[derive(Clone, Copy, Debug)]
pub struct BatchProgress {
    /// 1-based epoch.
    pub epoch: usize,
    /// Epochs of the run.
    pub epochs: usize,
    /// Training images done in this epoch.
    pub images_done: usize,
    /// Training images per epoch.
    pub images_total: usize,
    /// Mean training loss of this epoch so far.
    pub loss: f64,
}

/// Receives progress, and may ask training to stop (Ctrl-C).
pub trait Observer {
    /// After each step.
    fn batch_done(&mut self, _progress: &BatchProgress) {}
    /// After each epoch, once its checkpoint is written.
    fn epoch_done(&mut self, _record: &EpochRecord) {}
    /// Checked after each step: `true` ends training with [`TrainError::Interrupted`].
    fn should_stop(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// A network, its optimiser state, its schedule and its history: everything a checkpoint holds.
pub struct Trainer {
    network: Network<f32>,
    loss: Loss,
    options: TrainOptions,
    adam: Adam<f32>,
    schedule: ReduceLrOnPlateau,
    learning_rate: f64,
    history: Vec<EpochRecord>,
    run_key: Value,
    /// Where each step's forward and backward passes run; `None` is this crate's CPU engine.
    device: Option<DeviceStep>,
}

// Stream tags, so that the shuffle, the augmentations and the dropout masks never share a stream.
pub(crate) const SHUFFLE: u64 = 0x5348_5546;
pub(crate) const AUGMENT: u64 = 0x4155_474D;
pub(crate) const DROPOUT: u64 = 0x4452_4F50;

impl Trainer {
    /// A trainer for `network` with a fresh optimiser. `run_key` is whatever identifies the run (the
    /// architecture, task, data and options other than the number of epochs): `--resume` refuses a
    /// checkpoint made under another key.
    pub fn new(
        network: Network<f32>,
        loss: Loss,
        options: TrainOptions,
        run_key: Value,
    ) -> Result<Self> {
        options.validate()?;
        let cfg = network.config();
        let softmax = cfg.output_activation == sdss_cnn::OutputActivation::Softmax;
        match loss {
            Loss::MeanSquaredError if softmax => {
                return Err(TrainError::Invalid(
                    "a regression needs a linear output layer, not softmax".into(),
                ))
            }
            Loss::SoftmaxCrossEntropy if !softmax || cfg.output_units < 2 => {
                return Err(TrainError::Invalid(
                    "a classifier needs a softmax output layer with one unit per class (at least 2)"
                        .into(),
                ))
            }
            _ => {}
        }
        let adam = Adam::new(&network.params);
        Ok(Trainer {
            learning_rate: options.learning_rate,
            schedule: options.schedule.clone(),
            network,
            loss,
            options,
            adam,
            history: Vec::new(),
            run_key,
            device: None,
        })
    }

    /// The trainer saved in the newest checkpoint of `dir`, or `None` when `dir` holds none. A checkpoint
    /// made by a run with another `run_key` is an error naming what differs.
    pub fn resume(dir: &Path, run_key: &Value) -> Result<Option<Self>> {
        let Some(c) = checkpoint::latest(dir)? else {
            return Ok(None);
        };
        check_run_key(&c.path, &c.run_key, run_key)?;
        let mut options = c.options.clone();
        // The epoch count may grow on resume: training continues to the new total.
        if let Some(e) = run_key.get("epochs").and_then(Value::as_u64) {
            options.epochs = e as usize;
        }
        let network = Network::new(c.config.clone(), c.params)?;
        let mut adam = Adam::new(&network.params);
        adam.iterations = c.iterations;
        adam.m = c.adam_m;
        adam.v = c.adam_v;
        tracing::info!(
            checkpoint = %c.path.display(),
            epoch = c.history.len(),
            "resuming training"
        );
        Ok(Some(Trainer {
            network,
            loss: c.loss,
            options,
            adam,
            schedule: c.schedule,
            learning_rate: c.learning_rate,
            history: c.history,
            run_key: run_key.clone(),
            device: None,
        }))
    }

    /// Runs each step's forward and backward passes on `device`: [`ComputeDevice::Cpu`] is this
    /// crate's engine, a GPU is [`DeviceStep`] (candle's autograd, with the same dropout masks, loss
    /// and Adam update, so the run is the CPU run to float rounding). A device this build or machine
    /// cannot use is an error naming it.
    pub fn set_device(&mut self, device: ComputeDevice) -> Result<()> {
        self.set_device_step(DeviceStep::for_device(device)?);
        Ok(())
    }

    /// Runs the steps through `step`, or through this crate's CPU engine with `None`. A
    /// `DeviceStep::new(ComputeDevice::Cpu)` is candle's CPU backend: the path a GPU takes, on a
    /// machine without one (the tests use it).
    pub fn set_device_step(&mut self, step: Option<DeviceStep>) {
        self.device = step;
    }

    /// The device the training steps run on.
    pub fn device(&self) -> ComputeDevice {
        DeviceStep::device_of(&self.device)
    }

    /// The epochs done so far.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// The network being trained.
    pub fn network(&self) -> &Network<f32> {
        &self.network
    }

    /// The options.
    pub fn options(&self) -> &TrainOptions {
        &self.options
    }

    /// The learning rate the next epoch will use.
    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    /// The trained network as an sdss-cnn model (its fast inference engine).
    pub fn model(&self) -> Result<sdss_cnn::CnnModel> {
        self.network.to_model()
    }

    /// The network's outputs for `images` (`(n, outputs)`, row-major; class probabilities for a
    /// classifier), through the inference engine.
    pub fn predict(&self, images: &[f32]) -> Result<Vec<f32>> {
        predict_with(&self.model()?, images)
    }

    /// Trains until `options.epochs` epochs are done (continuing after those in the history), writing a
    /// checkpoint into `checkpoint_dir` after every epoch. Returns [`TrainError::Interrupted`] when the
    /// observer asks to stop; the checkpoints then on disk are complete.
    pub fn fit(
        &mut self,
        train: &Dataset,
        val: &Dataset,
        checkpoint_dir: Option<&Path>,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        let cfg = self.network.config().clone();
        let (h, w, c) = (cfg.input_height, cfg.input_width, cfg.input_channels);
        let per = h * w * c;
        for (name, d) in [("training", train), ("validation", val)] {
            if d.image_len != per {
                return Err(TrainError::Invalid(format!(
                    "the {name} images have {} values each, the network takes {h}x{w}x{c}",
                    d.image_len
                )));
            }
            let want = match self.loss {
                Loss::MeanSquaredError => cfg.output_units,
                Loss::SoftmaxCrossEntropy => 1,
            };
            if d.outputs() != want
                || matches!(
                    (&d.targets, self.loss),
                    (TrainTargets::Classes(_), Loss::MeanSquaredError)
                        | (TrainTargets::Values(_), Loss::SoftmaxCrossEntropy)
                )
            {
                return Err(TrainError::Invalid(format!(
                    "the {name} targets do not fit a network with {} outputs trained with {:?}",
                    cfg.output_units, self.loss
                )));
            }
        }
        let n = train.len();
        let outputs = train.outputs();
        let bs = self.options.batch_size;
        let seed = self.options.seed;
        let mut batch = vec![0.0f32; bs * per];
        let mut batch_values = vec![0.0f32; bs * outputs];
        let mut batch_classes = vec![0usize; bs];
        while self.history.len() < self.options.epochs {
            let epoch = self.history.len() + 1;
            let t0 = Instant::now();
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(
                seed ^ SHUFFLE,
                epoch as u64,
            )));
            let (mut loss_sum, mut seen) = (0.0f64, 0usize);
            for (step, idx) in order.chunks(bs).enumerate() {
                let m = idx.len();
                let images = &mut batch[..m * per];
                let aug = &self.options.augment;
                images
                    .par_chunks_mut(per)
                    .zip(idx.par_iter().enumerate())
                    .try_for_each(|(dst, (pos, &i))| {
                        let src = &train.images[i * per..(i + 1) * per];
                        if aug.is_identity() {
                            dst.copy_from_slice(src);
                            return Ok(());
                        }
                        let stream = (epoch as u64) << 32 | (step * bs + pos) as u64;
                        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ AUGMENT, stream));
                        let params = aug.sample(&mut rng, h, w);
                        augment::apply_transform(src, h, w, c, &params, dst)
                            .map_err(|e| TrainError::Invalid(e.to_string()))
                    })?;
                let targets = match &train.targets {
                    TrainTargets::Values(v) => {
                        for (k, &i) in idx.iter().enumerate() {
                            batch_values[k * outputs..(k + 1) * outputs]
                                .copy_from_slice(&v[i * outputs..(i + 1) * outputs]);
                        }
                        BatchTargets::Values(&batch_values[..m * outputs])
                    }
                    TrainTargets::Classes(l) => {
                        for (k, &i) in idx.iter().enumerate() {
                            batch_classes[k] = l[i];
                        }
                        BatchTargets::Classes(&batch_classes[..m])
                    }
                };
                let randomness = StepRandomness {
                    seed: mix(seed ^ DROPOUT, self.adam.iterations),
                    dropout: true,
                };
                let (loss, grads) = match &self.device {
                    Some(device) => device.loss_and_gradients(
                        &self.network,
                        images,
                        self.loss,
                        targets,
                        randomness,
                    )?,
                    None => {
                        let cache = self.network.forward(images, randomness)?;
                        let (loss, grad) = self.network.loss(&cache, self.loss, targets)?;
                        (loss, self.network.backward(images, &cache, &grad)?)
                    }
                };
                if !loss.is_finite() {
                    return Err(TrainError::Diverged {
                        loss,
                        epoch,
                        step: step + 1,
                    });
                }
                self.adam
                    .step(&mut self.network.params, &grads, self.learning_rate);
                loss_sum += loss * m as f64;
                seen += m;
                observer.batch_done(&BatchProgress {
                    epoch,
                    epochs: self.options.epochs,
                    images_done: seen,
                    images_total: n,
                    loss: loss_sum / seen as f64,
                });
                if observer.should_stop() {
                    return Err(TrainError::Interrupted { epoch });
                }
            }
            let val_loss = self.evaluate(val)?;
            let record = EpochRecord {
                epoch,
                train_loss: loss_sum / seen.max(1) as f64,
                val_loss,
                learning_rate: self.learning_rate,
                seconds: t0.elapsed().as_secs_f64(),
                embedding_std: None,
            };
            self.learning_rate =
                next_learning_rate(&mut self.schedule, epoch, val_loss, self.learning_rate);
            self.history.push(record.clone());
            if let Some(dir) = checkpoint_dir {
                self.save_checkpoint(dir)?;
            }
            observer.epoch_done(&record);
        }
        Ok(())
    }

    /// The loss on `data` without dropout or augmentation, through the inference engine.
    pub fn evaluate(&self, data: &Dataset) -> Result<f64> {
        let pred = self.predict(&data.images)?;
        let outs = self.network.config().output_units;
        Ok(match &data.targets {
            TrainTargets::Values(t) => {
                pred.iter()
                    .zip(t)
                    .map(|(p, t)| (*p as f64 - *t as f64).powi(2))
                    .sum::<f64>()
                    / pred.len() as f64
            }
            TrainTargets::Classes(l) => {
                pred.chunks_exact(outs)
                    .zip(l)
                    .map(|(p, &l)| -(p[l] as f64).max(1e-30).ln())
                    .sum::<f64>()
                    / l.len() as f64
            }
        })
    }

    fn save_checkpoint(&self, dir: &Path) -> Result<PathBuf> {
        let c = Checkpoint {
            path: PathBuf::new(),
            config: self.network.config().clone(),
            loss: self.loss,
            options: self.options.clone(),
            iterations: self.adam.iterations,
            learning_rate: self.learning_rate,
            schedule: self.schedule.clone(),
            history: self.history.clone(),
            run_key: self.run_key.clone(),
            params: self.network.params.clone(),
            adam_m: self.adam.m.clone(),
            adam_v: self.adam.v.clone(),
        };
        checkpoint::save(dir, &c, self.options.checkpoints_kept)
    }
}

/// The schedule's rate after an epoch with validation loss `val_loss`, logging a change.
pub(crate) fn next_learning_rate(
    schedule: &mut ReduceLrOnPlateau,
    epoch: usize,
    val_loss: f64,
    learning_rate: f64,
) -> f64 {
    let next = schedule.on_epoch_end(val_loss, learning_rate);
    if next != learning_rate {
        tracing::info!(
            epoch,
            "ReduceLROnPlateau: learning rate {learning_rate:.3e} -> {next:.3e}"
        );
    }
    next
}

/// `(n, outputs)` predictions of `model` for flattened images, in batches of 64.
pub fn predict_with(model: &sdss_cnn::CnnModel, images: &[f32]) -> Result<Vec<f32>> {
    tap_with(model, images, sdss_cnn::Tap::Output)
}

/// `model`'s values at `tap` for flattened images, row-major, in batches of 64.
pub(crate) fn tap_with(
    model: &sdss_cnn::CnnModel,
    images: &[f32],
    tap: sdss_cnn::Tap,
) -> Result<Vec<f32>> {
    let cfg = model.config();
    let (h, w, c) = (cfg.input_height, cfg.input_width, cfg.input_channels);
    let per = h * w * c;
    let n = images.len() / per.max(1);
    let view = ndarray::ArrayView4::from_shape((n, h, w, c), &images[..n * per])
        .map_err(|e| TrainError::Invalid(format!("images: {e}")))?;
    let out = model.features_batched(view, tap, 64)?;
    Ok(out.iter().copied().collect())
}

/// Refuses a checkpoint at `path` made under another run key (the epoch count may differ).
pub(crate) fn check_run_key(path: &Path, stored: &Value, given: &Value) -> Result<()> {
    if strip_epochs(stored) != strip_epochs(given) {
        return Err(TrainError::BadCheckpoint {
            path: path.to_path_buf(),
            reason: format!(
                "made by a run with other settings ({}); start a new --out, or resume with the \
                 same options",
                differences(stored, given).join(", ")
            ),
        });
    }
    Ok(())
}

fn strip_epochs(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("epochs");
    }
    v
}

/// The top-level keys whose values differ between two run keys.
fn differences(a: &Value, b: &Value) -> Vec<String> {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return vec!["run description".into()];
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| k.as_str() != "epochs" && a.get(*k) != b.get(*k))
        .map(|k| format!("`{k}`"))
        .collect()
}
