//! `cargo bench -p sdss-pca`: this crate against scikit-learn's default-solver PCA, side by side
//! in one run, each side in its own process so that peak memory (VmHWM / ru_maxrss) is its own.
//!
//! Cases (from the issue): 6437 x 37632 f32 -> 100 (synthetic low-rank + noise, generated once
//! here and saved as .npy for both sides), 6437 x 19200 -> 250 (the real SDSS images, pixels /
//! 255, from ../shared), 6437 x 128 -> 20 (synthetic). Set `SDSS_PCA_BENCH_CASES` to a
//! comma-separated subset of `cnn,pixels,small` to run fewer.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use sdss_pca::Pca;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> String {
    if let Ok(p) = std::env::var("SDSS_BENCH_PYTHON") {
        return p;
    }
    let venv = workspace().join(".venv/bin/python");
    if venv.exists() {
        return venv.display().to_string();
    }
    "python3".into()
}

/// Reads a little-endian C-order f32 .npy straight into its final buffer (no second copy), so
/// the measured peak memory is the data plus what PCA allocates.
fn read_f32_npy(path: &Path) -> Array2<f32> {
    let mut f = std::fs::File::open(path).unwrap();
    let mut pre = [0u8; 10];
    f.read_exact(&mut pre).unwrap();
    assert_eq!(&pre[..6], b"\x93NUMPY");
    let len = if pre[6] == 1 {
        u16::from_le_bytes([pre[8], pre[9]]) as usize
    } else {
        let mut more = [0u8; 2];
        f.read_exact(&mut more).unwrap();
        u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as usize
    };
    let mut header = vec![0u8; len];
    f.read_exact(&mut header).unwrap();
    let header = String::from_utf8(header).unwrap();
    assert!(
        header.contains("'<f4'") && header.contains("False"),
        "{header}"
    );
    let shape = &header[header.find("'shape': (").unwrap() + 10..];
    let shape = &shape[..shape.find(')').unwrap()];
    let dims: Vec<usize> = shape
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut data = vec![0f32; dims[0] * dims[1]];
    // SAFETY: f32 has no invalid bit patterns; the byte view covers exactly `data`.
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(data.as_mut_ptr() as *mut u8, data.len() * 4) };
    f.read_exact(bytes).unwrap();
    Array2::from_shape_vec((dims[0], dims[1]), data).unwrap()
}

fn peak_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Child process: fit + transform `repeats` times, print a JSON line like the Python side.
fn child(path: &Path, k: usize, repeats: usize) {
    let x = read_f32_npy(path);
    let (mut best_fit, mut best_transform) = (f64::INFINITY, f64::INFINITY);
    let mut last = None;
    for _ in 0..repeats {
        let t0 = Instant::now();
        let model = Pca::new(k).fit(x.view()).unwrap();
        let t1 = Instant::now();
        let y = model.transform(x.view()).unwrap();
        let t2 = Instant::now();
        drop(y);
        best_fit = best_fit.min((t1 - t0).as_secs_f64());
        best_transform = best_transform.min((t2 - t1).as_secs_f64());
        last = Some(model);
    }
    let model = last.unwrap();
    println!(
        "{{\"fit_s\": {best_fit}, \"transform_s\": {best_transform}, \"solver\": \"{}\", \"ratio\": {}, \"peak_bytes\": {}}}",
        model.svd_solver(),
        model.total_explained_variance_ratio(),
        peak_bytes()
    );
}

/// Low-rank signal (decaying spectrum) plus noise plus an offset, seeded; rows in parallel.
fn synthetic(n: usize, p: usize, rank: usize, seed: u64) -> Array2<f32> {
    let gauss = |rng: &mut ChaCha8Rng| -> f32 {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..rank * p)
        .map(|i| gauss(&mut rng) * (1.0 / (1.0 + (i / p) as f32).powf(0.8)))
        .collect();
    let rows: Vec<Vec<f32>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9));
            let u: Vec<f32> = (0..rank).map(|_| gauss(&mut rng)).collect();
            let mut row = vec![0.5f32; p];
            for (r, &ur) in u.iter().enumerate() {
                let vr = &v[r * p..(r + 1) * p];
                for (x, &vv) in row.iter_mut().zip(vr) {
                    *x += ur * vv;
                }
            }
            for x in row.iter_mut() {
                *x = (*x + 0.3 * gauss(&mut rng)).max(0.0);
            }
            row
        })
        .collect();
    Array2::from_shape_vec((n, p), rows.concat()).unwrap()
}

fn images() -> Option<Array2<f32>> {
    let dir = workspace().join("../shared/data/sdss-6437/images");
    if !dir.is_dir() {
        return None;
    }
    let rows: Vec<Vec<f32>> = (0..6437)
        .into_par_iter()
        .map(|i| {
            let img = image::open(dir.join(format!("{i:04}.png")))
                .unwrap()
                .to_rgb8();
            img.as_raw().iter().map(|&v| v as f32 / 255.0).collect()
        })
        .collect();
    Some(Array2::from_shape_vec((6437, 19200), rows.concat()).unwrap())
}

fn run(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{cmd:?}: {e}: {text}"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 5 && args[1] == "--child" {
        child(
            Path::new(&args[2]),
            args[3].parse().unwrap(),
            args[4].parse().unwrap(),
        );
        return;
    }
    let data_dir = workspace().join("target/sdss-pca-bench");
    std::fs::create_dir_all(&data_dir).unwrap();
    let wanted =
        std::env::var("SDSS_PCA_BENCH_CASES").unwrap_or_else(|_| "cnn,pixels,small".into());
    let python = python();
    let reference = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/pca_reference.py");
    println!("PCA fit + transform, best of N runs; Rust (faer) vs scikit-learn default solver");
    println!(
        "{:<28} {:>4} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "case",
        "k",
        "rust s",
        "sklearn s",
        "ratio",
        "rust EVR",
        "skl EVR",
        "|dEVR|",
        "rust GiB",
        "skl GiB"
    );
    // Best of 1 for the wide cases (seconds each); best of 300 for the small one, whose
    // milliseconds are at the mercy of anything else running on the machine.
    let cases: [(&str, usize, usize); 3] =
        [("cnn", 100, 1), ("pixels", 250, 1), ("small", 20, 300)];
    for (name, k, repeats) in cases {
        if !wanted.split(',').any(|w| w.trim() == name) {
            continue;
        }
        let (file, label) = match name {
            "cnn" => ("synthetic_6437x37632.npy", "6437x37632 f32 (synthetic)"),
            "pixels" => ("sdss_pixels_6437x19200.npy", "6437x19200 f32 (SDSS images)"),
            _ => ("synthetic_6437x128.npy", "6437x128 f32 (synthetic)"),
        };
        let path = data_dir.join(file);
        if !path.exists() {
            let x = match name {
                "cnn" => synthetic(6437, 37632, 300, 1),
                "pixels" => match images() {
                    Some(x) => x,
                    None => {
                        println!("{label}: skipped, ../shared not found");
                        continue;
                    }
                },
                _ => synthetic(6437, 128, 40, 2),
            };
            sdss_io::npy::write_npy(&path, &x.view()).unwrap();
        }
        let ours = run(Command::new(std::env::current_exe().unwrap())
            .arg("--child")
            .arg(&path)
            .arg(k.to_string())
            .arg(repeats.to_string()));
        let theirs = run(Command::new(&python)
            .arg(&reference)
            .arg(&path)
            .arg(k.to_string())
            .arg(repeats.to_string()));
        let t = |v: &serde_json::Value| {
            v["fit_s"].as_f64().unwrap() + v["transform_s"].as_f64().unwrap()
        };
        let gib = |v: &serde_json::Value| v["peak_bytes"].as_f64().unwrap() / (1u64 << 30) as f64;
        let (ro, rt) = (
            ours["ratio"].as_f64().unwrap(),
            theirs["ratio"].as_f64().unwrap(),
        );
        println!(
            "{:<28} {:>4} {:>9.4} {:>9.4} {:>6.2}x {:>9.5} {:>9.5} {:>9.1e} {:>10.2} {:>10.2}",
            label,
            k,
            t(&ours),
            t(&theirs),
            t(&theirs) / t(&ours),
            ro,
            rt,
            (ro - rt).abs(),
            gib(&ours),
            gib(&theirs)
        );
        println!(
            "    solvers: rust {} (fit {:.4}s + transform {:.4}s), sklearn {} (fit {:.4}s + transform {:.4}s)",
            ours["solver"].as_str().unwrap_or("?"),
            ours["fit_s"].as_f64().unwrap(),
            ours["transform_s"].as_f64().unwrap(),
            theirs["solver"].as_str().unwrap_or("?"),
            theirs["fit_s"].as_f64().unwrap(),
            theirs["transform_s"].as_f64().unwrap()
        );
    }
}
