//! Decode + resize of 424×424 JPEG galaxies to 80×80: this crate against Pillow, side by side.
//!
//! `cargo bench -p sdss-io --bench decode_resize` generates synthetic galaxies into a temporary
//! folder, then times, each in its own process (so that peak memory is each side's own):
//! - Rust: `load_image_folder` (rayon on all cores), the same on one thread, and, for the choice of
//!   resampler, `image`'s `resize(CatmullRom)` on one thread;
//! - Python: `np.asarray(Image.open(p).resize((80, 80))) / 255` in one process (`decode_resize_reference.py`).
//!
//! Python: `SDSS_BENCH_PYTHON`, else `<workspace>/.venv/bin/python`, else `python3`.
//! Options (after `--`): `--count N` (default 400), `--repeats R` (default 5).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sdss_io::synthetic::{write_galaxy_set, SyntheticConfig};
use sdss_io::{list_images, load_image_folder, LoadOptions};

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Runs one Rust variant in this (re-executed) process and prints `best_s=… peak_rss_kb=…`.
fn worker(variant: &str, dir: &Path, repeats: usize, out: Option<&Path>) {
    let files = list_images(dir).expect("bench folder");
    let mut best = f64::INFINITY;
    let options = LoadOptions::default();
    let run = |best: &mut f64| {
        let t = Instant::now();
        match variant {
            "sdss-io" => {
                let loaded = load_image_folder(dir, &options).expect("load");
                std::hint::black_box(&loaded);
                if let Some(out) = out {
                    let u8s = loaded.stack.images().mapv(|v| (v * 255.0).round() as u8);
                    sdss_io::npy::write_npy(out, &u8s.view()).expect("write");
                }
            }
            "image-catmullrom" => {
                for f in &files {
                    let img = image::open(f).expect("decode").to_rgb8();
                    let small = image::imageops::resize(
                        &img,
                        80,
                        80,
                        image::imageops::FilterType::CatmullRom,
                    );
                    let v: Vec<f32> = small
                        .into_raw()
                        .iter()
                        .map(|&b| f32::from(b) / 255.0)
                        .collect();
                    std::hint::black_box(v);
                }
            }
            "decode-only" => {
                for f in &files {
                    std::hint::black_box(sdss_io::preprocess::decode_rgb8(f).expect("decode"));
                }
            }
            other => panic!("unknown variant {other}"),
        }
        *best = best.min(t.elapsed().as_secs_f64());
    };
    for _ in 0..repeats {
        run(&mut best);
    }
    println!(
        "best_s={best:.6} images={} peak_rss_kb={}",
        files.len(),
        peak_rss_kb()
    );
}

fn parse(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> String {
    if let Ok(p) = std::env::var("SDSS_BENCH_PYTHON") {
        return p;
    }
    let venv = workspace_root().join(".venv/bin/python");
    if venv.exists() {
        return venv.to_string_lossy().into_owned();
    }
    "python3".into()
}

fn run_child(mut cmd: Command, what: &str) -> Option<String> {
    match cmd.output() {
        Ok(o) if o.status.success() => {
            let s = String::from_utf8_lossy(&o.stdout);
            s.lines()
                .rev()
                .find(|l| l.contains("best_s="))
                .map(str::to_owned)
        }
        Ok(o) => {
            eprintln!("{what} failed: {}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("{what} could not start: {e}");
            None
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeats: usize = arg_value(&args, "--repeats")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    if let Some(variant) = arg_value(&args, "--worker") {
        let dir = PathBuf::from(arg_value(&args, "--dir").expect("--dir"));
        let out = arg_value(&args, "--out").map(PathBuf::from);
        if arg_value(&args, "--threads").as_deref() == Some("1") {
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build_global()
                .expect("pool");
        }
        worker(&variant, &dir, repeats, out.as_deref());
        return;
    }
    let count: usize = arg_value(&args, "--count")
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SyntheticConfig {
        count,
        seed: 99,
        ..SyntheticConfig::default()
    };
    let t = Instant::now();
    write_galaxy_set(dir.path(), &config).expect("generate");
    let bytes: u64 = list_images(dir.path())
        .expect("list")
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "decode+resize of {count} synthetic 424x424 JPEGs (quality {}, {:.1} kB each, made in {:.1} s) to 80x80; \
         best of {repeats} runs; {cores} cores",
        config.jpeg_quality,
        bytes as f64 / count as f64 / 1e3,
        t.elapsed().as_secs_f64()
    );

    let exe = std::env::current_exe().expect("current_exe");
    let ours_npy = dir.path().join("ours.npy");
    let pillow_npy = dir.path().join("pillow.npy");
    let rust = |variant: &str, threads: &str, out: Option<&Path>| {
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--worker",
            variant,
            "--threads",
            threads,
            "--repeats",
            &repeats.to_string(),
        ])
        .arg("--dir")
        .arg(dir.path());
        if let Some(out) = out {
            cmd.arg("--out").arg(out);
        }
        run_child(cmd, variant)
    };
    let mut rows: Vec<(String, Option<String>)> = vec![
        (
            format!("sdss-io load_image_folder, {cores} threads"),
            rust("sdss-io", "0", Some(&ours_npy)),
        ),
        (
            "sdss-io load_image_folder, 1 thread".into(),
            rust("sdss-io", "1", None),
        ),
        (
            "decode only (zune-jpeg via image), 1 thread".into(),
            rust("decode-only", "1", None),
        ),
        (
            "image resize(CatmullRom), 1 thread".into(),
            rust("image-catmullrom", "1", None),
        ),
    ];
    let py = python();
    let mut cmd = Command::new(&py);
    cmd.arg(workspace_root().join("crates/sdss-io/benches/decode_resize_reference.py"))
        .arg(dir.path())
        .arg(repeats.to_string())
        .arg(&pillow_npy);
    let pillow = run_child(cmd, "Pillow reference");
    rows.push((
        format!("Pillow {} (one process)", "Image.open().resize()"),
        pillow.clone(),
    ));

    let pillow_rate = pillow
        .as_deref()
        .map(|l| parse(l, "images") / parse(l, "best_s"))
        .unwrap_or(f64::NAN);
    println!();
    println!("| side | images/s | ms/image | peak RSS (MB) | vs Pillow |");
    println!("|---|---:|---:|---:|---:|");
    for (name, line) in &rows {
        match line {
            Some(l) => {
                let rate = parse(l, "images") / parse(l, "best_s");
                println!(
                    "| {name} | {rate:.0} | {:.3} | {:.0} | {:.2}x |",
                    1e3 / rate,
                    parse(l, "peak_rss_kb") / 1024.0,
                    rate / pillow_rate
                );
            }
            None => println!("| {name} | failed | | | |"),
        }
    }
    if pillow.is_some() {
        let ours = sdss_io::npy::read_npy_as::<u8>(&ours_npy).expect("ours");
        let theirs = sdss_io::npy::read_npy_as::<u8>(&pillow_npy).expect("pillow");
        let (mut max, mut differing) = (0u8, 0usize);
        for (a, b) in ours.iter().zip(theirs.iter()) {
            let d = a.abs_diff(*b);
            max = max.max(d);
            differing += usize::from(d > 0);
        }
        println!(
            "\naccuracy on these files: max |sdss-io - Pillow| = {max}/255, {:.2}% of values differ",
            100.0 * differing as f64 / ours.len() as f64
        );
    }
}
