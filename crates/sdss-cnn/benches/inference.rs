//! Images per second through sdss_CNN to the `dense` tap: this crate against TensorFlow-CPU Keras
//! `model.predict(batch_size=128)`, on the same 1024 images and the same (random) weights, in one run.
//!
//! ```sh
//! SDSS_BENCH_PYTHON=/path/to/venv-with-tensorflow/bin/python cargo bench -p sdss-cnn --bench inference
//! ```
//! Options after `--`: `--images N` (default 1024), `--batch B` (128), `--no-reference`, and
//! `--device cuda[:N]` to time the network on a GPU too, beside the CPU engine in the same run (build
//! with `--features cuda`): `cargo bench -p sdss-cnn --features cuda --bench inference -- --device cuda`;
//! `--candle-cpu` times the same candle path on this CPU.
//! Also prints per-layer timings of the Rust engine on one thread, and checks that both sides computed the
//! same features (max relative error over all images).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ndarray::Array4;
use rand::{Rng, SeedableRng};
use sdss_cnn::{CandleNetwork, CnnConfig, CnnModel, Tap};

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SDSS_BENCH_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

fn vm_hwm_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Synthetic galaxies: a Gaussian blob on dark noisy sky, values in [0, 1].
fn images(n: usize) -> Array4<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2024);
    let mut a = Array4::<f32>::zeros((n, 80, 80, 3));
    for mut img in a.outer_iter_mut() {
        let (cy, cx, r) = (
            rng.random_range(30.0..50.0f32),
            rng.random_range(30.0..50.0f32),
            rng.random_range(3.0..12.0f32),
        );
        let amp = [
            rng.random_range(0.3..1.0f32),
            rng.random_range(0.3..1.0f32),
            rng.random_range(0.2..0.8f32),
        ];
        for ((y, x, c), v) in img.indexed_iter_mut() {
            let d2 = (y as f32 - cy).powi(2) + (x as f32 - cx).powi(2);
            let sky: f32 = rng.random_range(0.0..0.12);
            *v = (amp[c] * (-d2 / (2.0 * r * r)).exp() + sky).min(1.0);
        }
    }
    a
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = opt("--images", 1024);
    let batch = opt("--batch", 128);
    let reference = !args.iter().any(|a| a == "--no-reference");
    let device: Option<sdss_cnn::ComputeDevice> = args
        .iter()
        .position(|a| a == "--device")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("--device cpu|cuda[:N]"));

    let cfg = CnnConfig::default();
    let flops = cfg.flops_to_dense().expect("valid default config");
    let model = CnnModel::random(cfg, 7).expect("random model");
    let imgs = images(n);
    println!(
        "sdss-cnn inference bench: {n} images 80x80x3, batch {batch}, {} rayon threads, {:.3} GFLOP/image",
        rayon::current_num_threads(),
        flops / 1e9
    );

    // Per-layer profile on one thread (8 images), to see where the time goes.
    let prof = model
        .layer_timings(imgs.slice(ndarray::s![..8.min(n), .., .., ..]))
        .expect("profile");
    let total: f64 = prof.iter().map(|p| p.1).sum();
    println!("\nper-layer, 1 thread, {} images:", 8.min(n));
    println!(
        "{:<10} {:>10} {:>8} {:>10}",
        "layer", "ms/image", "share", "GFLOP/s"
    );
    for (name, t, f) in &prof {
        let k = 8.min(n) as f64;
        println!(
            "{name:<10} {:>10.2} {:>7.1}% {:>10.1}",
            t / k * 1e3,
            100.0 * t / total,
            f / t / 1e9
        );
    }

    // Rust side: warm-up, then the best of 2 runs.
    let _ = model.features(
        imgs.slice(ndarray::s![..batch.min(n), .., .., ..]),
        Tap::Dense,
    );
    let mut best = f64::INFINITY;
    let mut feats = None;
    for _ in 0..2 {
        let t0 = Instant::now();
        let f = model
            .features_batched(imgs.view(), Tap::Dense, batch)
            .expect("features");
        best = best.min(t0.elapsed().as_secs_f64());
        feats = Some(f);
    }
    let feats = feats.expect("ran twice");
    let rust_ips = n as f64 / best;
    let rust_hwm = vm_hwm_mib().unwrap_or(f64::NAN);

    let mut rows = vec![(
        "sdss-cnn (Rust)".to_string(),
        rust_ips,
        best,
        f64::NAN,
        rust_hwm,
    )];
    // The candle path: on a GPU with `--device`, and on this CPU with `--candle-cpu`. Weights are
    // uploaded once, then the same batches run.
    let mut candle_runs: Vec<(String, CandleNetwork)> = Vec::new();
    if let Some(device) = device {
        let dev = device.candle_device().expect("device");
        candle_runs.push((
            device.to_string(),
            CandleNetwork::new(&model, &dev).expect("upload"),
        ));
    }
    if args.iter().any(|a| a == "--candle-cpu") {
        let net = CandleNetwork::new(&model, &candle_core::Device::Cpu).expect("candle network");
        candle_runs.push(("candle's CPU backend".to_string(), net));
    }
    for (label, net) in &candle_runs {
        let run_all = || {
            let mut out = Vec::with_capacity(n);
            for b in imgs.axis_chunks_iter(ndarray::Axis(0), batch) {
                out.push(net.features(b, Tap::Dense).expect("candle features"));
            }
            out
        };
        let _ = run_all();
        let mut best_dev = f64::INFINITY;
        let mut dev_feats = Vec::new();
        for _ in 0..2 {
            let t0 = Instant::now();
            dev_feats = run_all();
            best_dev = best_dev.min(t0.elapsed().as_secs_f64());
        }
        let views: Vec<_> = dev_feats.iter().map(|f| f.view()).collect();
        let dev_feats = ndarray::concatenate(ndarray::Axis(0), &views).expect("same widths");
        let scale = feats.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = feats
            .iter()
            .zip(dev_feats.iter())
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        println!(
            "{label}: max |difference| from the CPU engine / max |feature| = {:.2e}",
            diff / scale
        );
        rows.push((
            format!("sdss-cnn candle, {label}"),
            n as f64 / best_dev,
            best_dev,
            f64::NAN,
            vm_hwm_mib().unwrap_or(f64::NAN),
        ));
    }
    let mut parity = None;
    if reference {
        let dir = tempfile::tempdir().expect("temp dir");
        let wpath = dir.path().join("model.safetensors");
        let ipath = dir.path().join("images.f32");
        let opath = dir.path().join("tf_dense.f32");
        model.save(&wpath).expect("save weights");
        let raw: Vec<u8> = imgs.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&ipath, raw).expect("write images");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/inference_reference.py");
        let out = Command::new(python())
            .arg(&script)
            .args(["--images", &ipath.display().to_string()])
            .args(["--weights", &wpath.display().to_string()])
            .args(["--n", &n.to_string(), "--batch", &batch.to_string()])
            .args(["--out", &opath.display().to_string()])
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let line = String::from_utf8_lossy(&o.stdout);
                let j: serde_json::Value = line
                    .lines()
                    .rev()
                    .find_map(|l| serde_json::from_str(l).ok())
                    .unwrap_or_default();
                let ips = j["images_per_s"].as_f64().unwrap_or(f64::NAN);
                rows.push((
                    format!(
                        "TensorFlow {} Keras predict",
                        j["tensorflow"].as_str().unwrap_or("?")
                    ),
                    ips,
                    j["wall_s"].as_f64().unwrap_or(f64::NAN),
                    j["cpu_s"].as_f64().unwrap_or(f64::NAN),
                    j["max_rss_mib"].as_f64().unwrap_or(f64::NAN),
                ));
                if let Ok(bytes) = std::fs::read(&opath) {
                    let tf: Vec<f32> = bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    let scale = tf.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    let diff = tf
                        .iter()
                        .zip(feats.iter())
                        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                    parity = Some(diff / scale);
                }
            }
            Ok(o) => eprintln!(
                "reference side failed (set SDSS_BENCH_PYTHON to a Python with tensorflow):\n{}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            Err(e) => eprintln!("could not start {}: {e}", python().display()),
        }
    }

    println!(
        "\n{:<34} {:>9} {:>10} {:>9} {:>9} {:>10} {:>9}",
        "side", "img/s", "wall s", "CPU s", "GFLOP/s", "peak MiB", "vs TF"
    );
    let tf_ips = rows
        .iter()
        .find(|r| r.0.starts_with("TensorFlow"))
        .map(|r| r.1);
    for (name, ips, wall, cpu, mem) in &rows {
        let ratio = tf_ips
            .map(|t| format!("{:.2}x", ips / t))
            .unwrap_or_else(|| "-".into());
        println!(
            "{name:<34} {ips:>9.1} {wall:>10.2} {cpu:>9.2} {:>9.1} {mem:>10.0} {ratio:>9}",
            ips * flops / 1e9
        );
    }
    println!("(Rust peak memory is the whole bench process, including the {n} input images.)");
    if let Some(e) = parity {
        println!("\ndense-tap features, Rust vs TensorFlow on all {n} images: max relative error {e:.2e}");
    }
}
