//! Checkpoints: the whole training state after an epoch, in one safetensors file written atomically.
//!
//! Tensors `param.<name>`, `adam_m.<name>` and `adam_v.<name>` (names as in the weights file); the rest
//! (architecture, loss, options, Adam's step count, learning rate, schedule state, history, run key) as
//! JSON in the metadata. A file is written to a temporary name and renamed, so a crash or `kill -9` leaves
//! either the previous checkpoints or a complete new one, never a half-written file under a checkpoint
//! name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use sdss_cnn::CnnConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, TrainError};
use crate::network::{Loss, Tensors};
use crate::optim::ReduceLrOnPlateau;
use crate::trainer::{EpochRecord, TrainOptions};

const META_KEY: &str = "sdss_train_checkpoint";
const PREFIX: &str = "checkpoint-epoch-";
const SUFFIX: &str = ".safetensors";

/// Everything needed to continue training exactly where an epoch ended.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The file it was read from (empty for one not yet written).
    pub path: PathBuf,
    /// The architecture.
    pub config: CnnConfig,
    /// The loss.
    pub loss: Loss,
    /// The options of the run.
    pub options: TrainOptions,
    /// Adam's step count.
    pub iterations: u64,
    /// The learning rate of the next epoch.
    pub learning_rate: f64,
    /// The schedule's state.
    pub schedule: ReduceLrOnPlateau,
    /// Epochs done.
    pub history: Vec<EpochRecord>,
    /// What identifies the run.
    pub run_key: Value,
    /// The network's parameters.
    pub params: Tensors<f32>,
    /// Adam's first moments.
    pub adam_m: Tensors<f32>,
    /// Adam's second moments.
    pub adam_v: Tensors<f32>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    version: u32,
    config: CnnConfig,
    loss: Loss,
    options: TrainOptions,
    iterations: u64,
    learning_rate: f64,
    schedule: ReduceLrOnPlateau,
    history: Vec<EpochRecord>,
    run_key: Value,
}

fn file_err(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::File {
        path: path.to_path_buf(),
        source: e,
    }
}

/// The checkpoint files in `dir` as (epoch, path), oldest first.
fn list(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(file_err(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| file_err(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(epoch) = name
            .strip_prefix(PREFIX)
            .and_then(|s| s.strip_suffix(SUFFIX))
            .and_then(|s| s.parse::<usize>().ok())
        {
            out.push((epoch, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Writes `c` as the checkpoint of its last epoch in `dir` (created if needed) and deletes all but the
/// newest `kept` checkpoints there, and any temporary file a killed run left. Returns the file's path.
pub fn save(dir: &Path, c: &Checkpoint, kept: usize) -> Result<PathBuf> {
    let epoch = c.history.len();
    let specs = c.config.tensor_specs()?;
    let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (prefix, t) in [
        ("param", &c.params),
        ("adam_m", &c.adam_m),
        ("adam_v", &c.adam_v),
    ] {
        for (spec, data) in specs.iter().zip(&t.data) {
            let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            blobs.push((
                format!("{prefix}.{}", spec.key()),
                spec.shape.clone(),
                bytes,
            ));
        }
    }
    let meta = Meta {
        version: 1,
        config: c.config.clone(),
        loss: c.loss,
        options: c.options.clone(),
        iterations: c.iterations,
        learning_rate: c.learning_rate,
        schedule: c.schedule.clone(),
        history: c.history.clone(),
        run_key: c.run_key.clone(),
    };
    let json = serde_json::to_string(&meta).map_err(|e| TrainError::Invalid(e.to_string()))?;
    save_raw(dir, epoch, &blobs, META_KEY, json, kept)
}

/// Writes named f32 tensors `(name, shape, little-endian bytes)` and a JSON metadata string under
/// `meta_key` as the checkpoint of `epoch` in `dir` (created if needed), atomically, then keeps only
/// the newest `kept` checkpoints and removes temporary files a killed run left. Returns the path.
pub(crate) fn save_raw(
    dir: &Path,
    epoch: usize,
    blobs: &[(String, Vec<usize>, Vec<u8>)],
    meta_key: &str,
    json: String,
    kept: usize,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let path = dir.join(format!("{PREFIX}{epoch:04}{SUFFIX}"));
    let mut views = Vec::with_capacity(blobs.len());
    for (name, shape, bytes) in blobs {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|e| TrainError::Invalid(format!("checkpoint tensor `{name}`: {e}")))?;
        views.push((name.clone(), view));
    }
    let bytes = safetensors::serialize(views, Some(HashMap::from([(meta_key.to_string(), json)])))
        .map_err(|e| TrainError::Invalid(format!("checkpoint: {e}")))?;
    let bytes = sdss_cnn::weights::canonical_safetensors(bytes)?;
    sdss_cnn::weights::write_atomic(&path, &bytes)?;
    let all = list(dir)?;
    for (_, old) in all.iter().take(all.len().saturating_sub(kept)) {
        std::fs::remove_file(old).map_err(|e| file_err(old, e))?;
    }
    // A run killed while writing leaves its temporary file (`.tmpXXXX`) behind; only this run writes here.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(path)
}

/// A checkpoint file's bytes, its metadata JSON under a key, and typed access to its tensors.
pub(crate) struct RawCheckpoint {
    path: PathBuf,
    bytes: Vec<u8>,
    /// The metadata JSON.
    pub json: String,
}

impl RawCheckpoint {
    /// Reads `path`, whose metadata must hold `meta_key`.
    pub fn read(path: &Path, meta_key: &str, what: &str) -> Result<Self> {
        let bad = |reason: String| TrainError::BadCheckpoint {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(meta_key))
            .ok_or_else(|| bad(format!("not a {what} checkpoint")))?
            .clone();
        Ok(RawCheckpoint {
            path: path.to_path_buf(),
            bytes,
            json,
        })
    }

    /// An error about this file.
    pub fn bad(&self, reason: String) -> TrainError {
        TrainError::BadCheckpoint {
            path: self.path.clone(),
            reason,
        }
    }

    /// The f32 tensor `name`, which must have `shape`.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| self.bad(e.to_string()))?;
        let view = st
            .tensor(name)
            .map_err(|_| self.bad(format!("tensor `{name}` is missing")))?;
        if view.dtype() != Dtype::F32 || view.shape() != shape {
            return Err(self.bad(format!(
                "tensor `{name}` is {:?} {:?}, expected F32 {shape:?}",
                view.dtype(),
                view.shape(),
            )));
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

/// The newest checkpoint file in `dir`, or `None` when there is none.
pub fn latest_path(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list(dir)?.pop().map(|(_, p)| p))
}

/// Reads one checkpoint file.
pub fn read(path: &Path) -> Result<Checkpoint> {
    let raw = RawCheckpoint::read(path, META_KEY, "training")?;
    let meta: Meta =
        serde_json::from_str(&raw.json).map_err(|e| raw.bad(format!("metadata: {e}")))?;
    if meta.version != 1 {
        return Err(raw.bad(format!("checkpoint version {} is not 1", meta.version)));
    }
    let specs = meta.config.tensor_specs()?;
    let take = |prefix: &str| -> Result<Tensors<f32>> {
        let data = specs
            .iter()
            .map(|spec| raw.tensor(&format!("{prefix}.{}", spec.key()), &spec.shape))
            .collect::<Result<_>>()?;
        Ok(Tensors { data })
    };
    Ok(Checkpoint {
        path: path.to_path_buf(),
        params: take("param")?,
        adam_m: take("adam_m")?,
        adam_v: take("adam_v")?,
        config: meta.config,
        loss: meta.loss,
        options: meta.options,
        iterations: meta.iterations,
        learning_rate: meta.learning_rate,
        schedule: meta.schedule,
        history: meta.history,
        run_key: meta.run_key,
    })
}

/// The newest checkpoint in `dir`, or `None` if there is none.
pub fn latest(dir: &Path) -> Result<Option<Checkpoint>> {
    match list(dir)?.pop() {
        Some((_, path)) => read(&path).map(Some),
        None => Ok(None),
    }
}
