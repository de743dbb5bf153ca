//! Training images per second: this crate against tf_keras `model.fit` on the same architecture, batch 32,
//! the same images and targets, the recipe's augmentation and dropout on both sides, side by side in one run;
//! then the wall time of the full default recipe (35 epochs of sdss-cnn) projected from one measured epoch.
//!
//! ```sh
//! SDSS_BENCH_PYTHON=/path/to/venv-with-tf_keras/bin/python cargo bench -p sdss-train --bench training
//! ```
//! Options after `--`: `--arch small|sdss-cnn` (default both), `--steps N` (timed steps, default 40 for
//! small and 6 for sdss-cnn), `--no-reference`, `--epoch` (also time one whole epoch of sdss-cnn on the 4505
//! training galaxies of a 70/15/15 split and project the 35-epoch recipe), `--device cuda[:N]` (also time
//! the steps on a GPU, a build with `--features cuda`) and `--candle-cpu` (also time them through
//! candle's CPU backend: the path a GPU takes, on this machine).
//!
//! Images: the 6437 real galaxies of `../shared/data/sdss-6437/images/` when present (else synthetic ones),
//! with an image-derived target, the fraction of the light within 8 pixels of the centre (a concentration
//! index), since no physical catalogue comes with them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sdss_cnn::ComputeDevice;
use sdss_cnn::{CnnConfig, CnnWeights};
use sdss_train::augment::AugmentConfig;
use sdss_train::{
    BatchProgress, Dataset, DeviceStep, Loss, Network, Observer, TrainOptions, TrainTargets,
    Trainer,
};

const PER: usize = 80 * 80 * 3;

fn python() -> PathBuf {
    std::env::var_os("SDSS_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn shared_images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sdss-6437/images")
}

/// The galaxies and where they came from.
fn load_images() -> (Vec<f32>, usize, &'static str) {
    let dir = shared_images();
    if dir.is_dir() {
        let loaded =
            sdss_io::folder::load_image_folder(&dir, &sdss_io::folder::LoadOptions::default())
                .expect("load ../shared images");
        let (_, stack) = loaded.stack.into_parts();
        let n = stack.shape()[0];
        return (
            stack.iter().copied().collect(),
            n,
            "6437 real SDSS galaxies (../shared)",
        );
    }
    let cfg = sdss_io::synthetic::SyntheticConfig {
        count: 1024,
        size: 80,
        ..Default::default()
    };
    let set = sdss_io::synthetic::generate(&cfg).expect("synthetic galaxies");
    let images = set
        .iter()
        .flat_map(|(_, img)| img.pixels.iter().map(|&v| v as f32 / 255.0))
        .collect();
    (images, set.len(), "1024 synthetic galaxies")
}

/// Fraction of the image's light within 8 pixels of the centre.
fn concentration(img: &[f32]) -> f32 {
    let (mut inner, mut total) = (0.0f64, 0.0f64);
    for y in 0..80 {
        for x in 0..80 {
            let v: f64 = (0..3).map(|c| img[(y * 80 + x) * 3 + c] as f64).sum();
            total += v;
            if (y as f64 - 39.5).powi(2) + (x as f64 - 39.5).powi(2) <= 64.0 {
                inner += v;
            }
        }
    }
    (inner / total.max(1e-9)) as f32
}

struct Timer {
    steps: usize,
    warmup: usize,
    start: Option<Instant>,
    stop_after: usize,
    end: Option<Instant>,
}

impl Observer for Timer {
    fn batch_done(&mut self, _p: &BatchProgress) {
        self.steps += 1;
        if self.steps == self.warmup {
            self.start = Some(Instant::now());
        }
        if self.steps == self.stop_after {
            self.end = Some(Instant::now());
        }
    }
    fn should_stop(&self) -> bool {
        self.steps >= self.stop_after
    }
}

fn trainer(arch: &str, epochs: usize) -> Trainer {
    let cfg = CnnConfig::named(arch).unwrap();
    let w = CnnWeights::random(&cfg, 1).unwrap();
    Trainer::new(
        Network::from_weights(cfg, &w).unwrap(),
        Loss::MeanSquaredError,
        TrainOptions {
            epochs,
            augment: AugmentConfig::sdss_cnn(),
            ..TrainOptions::default()
        },
        serde_json::json!({}),
    )
    .unwrap()
}

/// Images per second over `steps` timed steps after 2 warm-up steps, through `step` (this crate's
/// engine when `None`).
fn rust_rate(
    arch: &str,
    train: &Dataset,
    val: &Dataset,
    steps: usize,
    step: Option<DeviceStep>,
) -> f64 {
    // Enough epochs that the timer, not the epoch count, ends the run.
    let mut t = trainer(arch, 1000);
    t.set_device_step(step);
    let mut timer = Timer {
        steps: 0,
        warmup: 2,
        start: None,
        stop_after: 2 + steps,
        end: None,
    };
    let _ = t.fit(train, val, None, &mut timer);
    let s = (timer.end.unwrap() - timer.start.unwrap()).as_secs_f64();
    (steps * 32) as f64 / s
}

fn reference_rate(arch: &str, x: &Path, y: &Path, steps: usize) -> Result<f64, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/train_reference.py");
    let out = Command::new(python())
        .arg(script)
        .args([
            "--arch",
            arch,
            "--batch-size",
            "32",
            "--augment",
            "--warmup",
            "3",
        ])
        .arg("--steps")
        .arg(steps.to_string())
        .arg("--images")
        .arg(x)
        .arg("--targets")
        .arg(y)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim().lines().last().unwrap_or(""))
        .map_err(|e| format!("{e}: {line}"))?;
    v["images_per_s"]
        .as_f64()
        .ok_or_else(|| format!("no images_per_s in {line}"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |f: &str| args.iter().any(|a| a == f);
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let archs: Vec<String> = match opt("--arch") {
        Some(a) => vec![a],
        None => vec!["small".into(), "sdss-cnn".into()],
    };
    let (images, n, source) = load_images();
    let targets: Vec<f32> = images.chunks_exact(PER).map(concentration).collect();
    println!("images: {source}; target: light fraction within 8 px of the centre");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "threads: {}; load average at start: {}",
        rayon::current_num_threads(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    // The benchmark set: the first 512 galaxies (both sides see exactly these).
    let m = n.min(512);
    let train = Dataset::new(
        images[..m * PER].to_vec(),
        TrainTargets::Values(targets[..m].to_vec()),
        PER,
    )
    .unwrap();
    let val = Dataset::new(
        images[..32 * PER].to_vec(),
        TrainTargets::Values(targets[..32].to_vec()),
        PER,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    let xa = ndarray::ArrayView4::from_shape((m, 80, 80, 3), &images[..m * PER]).unwrap();
    sdss_io::npy::write_npy(&x, &xa).unwrap();
    let ya = ndarray::ArrayView1::from(&targets[..m]);
    sdss_io::npy::write_npy(&y, &ya).unwrap();
    println!("| arch | steps | sdss-train images/s | tf_keras images/s | ratio |");
    println!("|---|---|---|---|---|");
    for arch in &archs {
        let steps = opt("--steps")
            .and_then(|s| s.parse().ok())
            .unwrap_or(if arch == "small" { 40 } else { 6 });
        let ours = rust_rate(arch, &train, &val, steps, None);
        let theirs = if has("--no-reference") {
            Err("skipped".to_string())
        } else {
            reference_rate(arch, &x, &y, steps)
        };
        match theirs {
            Ok(t) => println!(
                "| {arch} | {steps} | {ours:.1} | {t:.1} | {:.2}x |",
                ours / t
            ),
            Err(e) => {
                println!("| {arch} | {steps} | {ours:.1} | n/a | n/a |");
                eprintln!(
                    "reference side for {arch}: {}",
                    e.lines().last().unwrap_or("")
                );
            }
        }
        let devices = opt("--device")
            .map(|d| d.parse::<ComputeDevice>().expect("--device cpu|cuda[:N]"))
            .into_iter()
            .chain(has("--candle-cpu").then_some(ComputeDevice::Cpu));
        for device in devices {
            let step = DeviceStep::new(device).expect("device");
            let rate = rust_rate(arch, &train, &val, steps, Some(step));
            println!(
                "| {arch}, steps through candle on {device} | {steps} | {rate:.1} | | {:.2}x this crate's engine |",
                rate / ours
            );
        }
    }
    if has("--epoch") {
        // One whole epoch of the default recipe on a 70/15/15 split of all the galaxies.
        let splits = sdss_train::split::split_indices(n, 0.15, 0.15, 0).unwrap();
        let pick = |which| {
            let idx = sdss_train::split::indices_of(&splits, which);
            let mut im = Vec::with_capacity(idx.len() * PER);
            for &i in &idx {
                im.extend_from_slice(&images[i * PER..(i + 1) * PER]);
            }
            let t = idx.iter().map(|&i| targets[i]).collect();
            Dataset::new(im, TrainTargets::Values(t), PER).unwrap()
        };
        let (tr, va) = (
            pick(sdss_train::split::Split::Train),
            pick(sdss_train::split::Split::Val),
        );
        let mut t = trainer("sdss-cnn", 1);
        let t0 = Instant::now();
        t.fit(&tr, &va, None, &mut sdss_train::Quiet).unwrap();
        let epoch = t0.elapsed().as_secs_f64();
        let r = &t.history()[0];
        println!(
            "one sdss-cnn epoch on {} training + {} validation galaxies: {epoch:.0} s (train loss {:.4}, \
             val loss {:.4}); the 35-epoch recipe projects to {:.1} h",
            tr.len(),
            va.len(),
            r.train_loss,
            r.val_loss,
            35.0 * epoch / 3600.0
        );
    }
}
