//! End to end: the `sdss-clustering run` command against the Python pipeline (Pillow + NumPy +
//! scikit-learn, and TensorFlow-CPU Keras for the CNN path) on the 6437 real galaxies in
//! `../shared/data/sdss-6437/images/`, side by side in one run.
//!
//! ```sh
//! cargo build --release -p driver
//! SDSS_BENCH_PYTHON=/work/venv-tf/bin/python cargo bench -p driver --bench end_to_end
//! ```
//! Options after `--`: `--only pixels|cnn`, `--limit N` (first N images only, for a quick look),
//! `--no-reference` (Rust side only), `--keep` (keep the output folders and print where they are).
//!
//! Two workflows of the original project:
//! 1. pixels: raw pixels (19200 values) → PCA 250 → k-means 10, affinity propagation 0.8, Ward 32;
//! 2. CNN: sdss_CNN `Flatten` output (37632 values; random Glorot weights, written here as safetensors and
//!    read by both sides, so both run the same network) → PCA 100 → affinity propagation 0.8, Ward 32.
//!
//! Each side runs as its own process, timed from spawn to exit (interpreter start-up and imports included
//! on the Python side, image decoding included on both), with its peak resident memory taken by
//! `/usr/bin/time` (GNU time, `%M`). The Rust binary also writes features, galleries, plots and an HTML
//! report; the Python side only writes labels, so the table also shows our time without the report stage
//! (from the binary's `run.json`). Both sides' clusterings are compared by adjusted Rand index.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ndarray::{Array1, Ix1};
use sdss_cnn::{CnnConfig, CnnModel};
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SDSS_BENCH_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace().join(".venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// The release `sdss-clustering` binary: `cargo bench` builds it beside the bench (bins are built for
/// benches), but Cargo does not tell benches where, so look in the target folder and build it if missing.
fn binary() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_sdss-clustering") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let bin = target.join("release/sdss-clustering");
    if !bin.exists() {
        println!(
            "{} is missing: building it (cargo build --release -p driver)",
            bin.display()
        );
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let ok = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "driver",
                "--bin",
                "sdss-clustering",
            ])
            .current_dir(workspace())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok || !bin.exists() {
            eprintln!("could not build {}", bin.display());
            std::process::exit(2);
        }
    }
    bin
}

/// One child process: wall time from spawn to exit, peak RSS, stdout.
struct Measured {
    wall_s: f64,
    max_rss_mib: Option<f64>,
    stdout: String,
}

fn measure(program: &Path, args: &[OsString], scratch: &Path) -> Measured {
    let gnu_time = Path::new("/usr/bin/time");
    let rss_file = scratch.join(format!("rss-{}.txt", std::process::id()));
    let mut cmd = if gnu_time.exists() {
        let mut c = Command::new(gnu_time);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args);
    let t = Instant::now();
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cannot run {}: {e}", program.display());
            std::process::exit(2);
        }
    };
    let wall_s = t.elapsed().as_secs_f64();
    if !out.status.success() {
        eprintln!(
            "{} failed ({}):\n{}\n{}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::process::exit(1);
    }
    let max_rss_mib = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last()?.trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0);
    let _ = std::fs::remove_file(&rss_file);
    Measured {
        wall_s,
        max_rss_mib,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn labels(path: &Path) -> Array1<i64> {
    sdss_io::npy::read_npy_as::<i64>(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_dimensionality::<Ix1>()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn n_clusters(l: &Array1<i64>) -> usize {
    let mut v: Vec<i64> = l.iter().copied().filter(|&x| x >= 0).collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn mib(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |m| format!("{m:.0} MiB"))
}

/// One workflow, e.g. the pixel path.
struct Workflow {
    name: &'static str,
    /// `run` arguments after `--images DIR`.
    rust_args: Vec<String>,
    /// Reference script arguments after `--images DIR`.
    py_args: Vec<String>,
    /// (Rust label slug, Python label name, what it is).
    methods: Vec<(&'static str, &'static str, &'static str)>,
}

fn run_workflow(w: &Workflow, images: &Path, scratch: &Path, reference: bool) {
    println!("\n== {} ==", w.name);
    let bin = binary();
    let rust_out = scratch.join(format!("rust-{}", w.name));
    let mut args: Vec<OsString> = vec![
        "--quiet".into(),
        "run".into(),
        "--images".into(),
        images.into(),
    ];
    args.extend(w.rust_args.iter().map(OsString::from));
    args.push("--out".into());
    args.push(rust_out.clone().into());
    let rust = measure(&bin, &args, scratch);
    let run = read_json(&rust_out.join("run.json"));
    let pca = read_json(&rust_out.join("pca.json"));
    let secs = &run["seconds"];
    let report_s = f(&secs["report"]);

    let py = if reference {
        let py_out = scratch.join(format!("python-{}", w.name));
        std::fs::create_dir_all(&py_out).expect("create the Python output folder");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/end_to_end_reference.py");
        let mut args: Vec<OsString> = vec![script.into(), "--images".into(), images.into()];
        args.extend(w.py_args.iter().map(OsString::from));
        args.push("--out".into());
        args.push(py_out.clone().into());
        let m = measure(&python(), &args, scratch);
        let info: Value = m
            .stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("no JSON line from the reference script:\n{}", m.stdout));
        Some((m, info, py_out))
    } else {
        None
    };

    let row = |what: &str, ours: f64, theirs: Option<f64>| {
        let (t, r) = match theirs {
            Some(p) => (format!("{p:>9.2}"), format!("{:>6.2}x", p / ours)),
            None => ("      n/a".into(), "   n/a".into()),
        };
        println!("  {what:<38} {ours:>9.2} {t} {r}");
    };
    println!(
        "  {:<38} {:>9} {:>9} {:>7}",
        "seconds (wall)", "ours", "python", "speedup"
    );
    let py_wall = py.as_ref().map(|(m, _, _)| m.wall_s);
    row("end to end (process spawn to exit)", rust.wall_s, py_wall);
    row(
        "  ours without report (galleries/plots)",
        rust.wall_s - report_s,
        py_wall,
    );
    let ps = py.as_ref().map(|(_, info, _)| info["seconds"].clone());
    let pstage = |k: &str| ps.as_ref().map(|s| f(&s[k]));
    row(
        "images + features (python: +imports)",
        f(&secs["features"]),
        ps.as_ref()
            .map(|s| f(&s["imports"]) + f(&s["load_images"]) + f(&s["features"])),
    );
    row("PCA", f(&secs["pca"]), pstage("pca"));
    for (slug, pyname, what) in &w.methods {
        row(what, f(&secs["clustering"][slug]), pstage(pyname));
    }
    println!(
        "  {:<38} {:>9.2} {:>9}",
        "report (ours only)", report_s, "-"
    );
    let rss_py = py.as_ref().and_then(|(m, _, _)| m.max_rss_mib);
    println!(
        "  peak RSS: ours {}, python {}{}",
        mib(rust.max_rss_mib),
        mib(rss_py),
        match (rust.max_rss_mib, rss_py) {
            (Some(a), Some(b)) => format!(" ({:.2}x less)", b / a),
            _ => String::new(),
        }
    );
    println!(
        "  PCA: ours {} components, {:.4} of the variance ({} solver){}",
        pca["n_components"],
        f(&pca["total_explained_variance_ratio"]),
        pca["svd_solver"].as_str().unwrap_or("?"),
        py.as_ref().map_or(String::new(), |(_, i, _)| format!(
            "; python {:.4} ({} solver)",
            f(&i["pca_explained_variance"]),
            i["pca_solver"].as_str().unwrap_or("?")
        ))
    );

    if let Some((_, info, py_out)) = &py {
        let ours_ids: Vec<String> = std::fs::read_to_string(rust_out.join("ids.csv"))
            .expect("ids.csv")
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect();
        let py_ids: Vec<String> = std::fs::read_to_string(py_out.join("ids.txt"))
            .expect("ids.txt")
            .lines()
            .map(str::to_owned)
            .collect();
        if ours_ids != py_ids {
            println!("  galaxy order differs between the sides: agreement not computed");
        } else {
            for (slug, pyname, what) in &w.methods {
                let a = labels(&rust_out.join(format!("labels_{slug}.npy")));
                let b = labels(&py_out.join(format!("labels_{pyname}.npy")));
                let ari = sdss_cluster::adjusted_rand_score(a.view(), b.view()).unwrap_or(f64::NAN);
                println!(
                    "  {what}: {} clusters ours, {} python, adjusted Rand index {ari:.3}",
                    n_clusters(&a),
                    n_clusters(&b)
                );
            }
        }
        let versions: Vec<String> = ["numpy", "sklearn", "tensorflow"]
            .into_iter()
            .filter_map(|k| Some(format!("{k} {}", info.get(k)?.as_str()?)))
            .collect();
        println!(
            "  python side: {}; its own ru_maxrss {:.0} MiB",
            versions.join(", "),
            f(&info["max_rss_mib"])
        );
    }
}

/// Reads every image once so neither side pays for a cold page cache.
fn warm_cache(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if std::fs::read(e.path()).is_ok() {
                n += 1;
            }
        }
    }
    n
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let only = opt("--only");
    let limit: Option<usize> = opt("--limit").and_then(|v| v.parse().ok());
    let reference = !args.iter().any(|a| a == "--no-reference");
    let keep = args.iter().any(|a| a == "--keep");

    let shared = workspace().join("../shared/data/sdss-6437/images");
    if !shared.is_dir() {
        eprintln!(
            "{} not found: this bench needs the shared galaxies (see ../shared/README.md)",
            shared.display()
        );
        std::process::exit(2);
    }
    let scratch = tempfile::Builder::new()
        .prefix("sdss-e2e-bench-")
        .tempdir()
        .expect("create a temporary folder");
    let images = match limit {
        None => shared.canonicalize().expect("canonical image folder"),
        Some(n) => {
            // First n images by name, as symlinks, so both sides read the same subset.
            let dir = scratch.path().join("images");
            std::fs::create_dir_all(&dir).expect("create the subset folder");
            let mut names: Vec<PathBuf> = std::fs::read_dir(&shared)
                .expect("read the image folder")
                .flatten()
                .map(|e| e.path())
                .collect();
            names.sort();
            for p in names.into_iter().take(n) {
                let name = p.file_name().expect("a file in a folder has a name");
                std::os::unix::fs::symlink(
                    p.canonicalize().expect("canonical path"),
                    dir.join(name),
                )
                .expect("symlink an image");
            }
            dir
        }
    };
    let n_images = warm_cache(&images);
    let weights = scratch.path().join("sdss_cnn_random.safetensors");
    CnnModel::random(CnnConfig::default(), 7)
        .expect("random sdss_CNN weights")
        .save(&weights)
        .expect("write random sdss_CNN weights");

    println!(
        "end-to-end bench: {n_images} images from {}\n  ours: {}\n  python: {}\n  {} CPUs",
        images.display(),
        binary().display(),
        python().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let weights_s = weights.display().to_string();
    let workflows = [
        Workflow {
            name: "pixels",
            rust_args: s(&[
                "--features",
                "pixels",
                "--pca",
                "250",
                "--method",
                "kmeans:k=10",
                "--method",
                "affinity:damping=0.8",
                "--method",
                "agglomerative:k=32,linkage=ward",
            ]),
            py_args: s(&[
                "--features",
                "pixels",
                "--pca",
                "250",
                "--method",
                "kmeans:10",
                "--method",
                "affinity:0.8",
                "--method",
                "ward:32",
            ]),
            methods: vec![
                ("kmeans", "kmeans", "k-means 10 (n_init 10)"),
                ("affinity", "affinity", "affinity propagation 0.8"),
                ("agglomerative", "ward", "Ward 32"),
            ],
        },
        Workflow {
            name: "cnn",
            rust_args: s(&[
                "--weights",
                &weights_s,
                "--layer",
                "flatten",
                "--pca",
                "100",
                "--method",
                "affinity:damping=0.8",
                "--method",
                "agglomerative:k=32,linkage=ward",
            ]),
            py_args: s(&[
                "--features",
                "cnn",
                "--weights",
                &weights_s,
                "--pca",
                "100",
                "--method",
                "affinity:0.8",
                "--method",
                "ward:32",
            ]),
            methods: vec![
                ("affinity", "affinity", "affinity propagation 0.8"),
                ("agglomerative", "ward", "Ward 32"),
            ],
        },
    ];
    for w in &workflows {
        if only.as_deref().is_none_or(|o| o == w.name) {
            run_workflow(w, &images, scratch.path(), reference);
        }
    }
    if keep {
        let kept = scratch.keep();
        println!("\noutputs kept in {}", kept.display());
    }
}
