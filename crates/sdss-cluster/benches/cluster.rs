//! `cargo bench -p sdss-cluster`: sdss-cluster against scikit-learn / SciPy on the real
//! 6437 x 20 SDSS CNN features (`../shared/data/sdss-cnn-features`), side by side in one run.
//!
//! Each case runs in its own process on both sides so peak memory is per case: the Rust side
//! re-executes this binary with `--child CASE` and reads `VmHWM` from `/proc/self/status`;
//! the Python side (`cluster_reference.py`) reports `ru_maxrss`. Times are the best of a few
//! runs (one for affinity propagation), excluding data loading and imports.
//! Python: `SDSS_BENCH_PYTHON`, else `<workspace>/.venv/bin/python`, else `python3`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ndarray::Array1;
use sdss_cluster::{silhouette_score, AffinityPropagation, Agglomerative, Hdbscan, KMeans};

const CASES: [(&str, usize); 5] = [
    ("affinity-propagation", 1),
    ("ward", 3),
    ("kmeans", 3),
    ("silhouette", 3),
    ("hdbscan", 3),
];

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn features_path() -> PathBuf {
    workspace().join("../shared/data/sdss-cnn-features/CNN-128_PCA-20_features.npy")
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SDSS_BENCH_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Runs one case `reps` times in this process; prints `seconds peak_kib detail`.
fn child(case: &str, reps: usize, path: &Path) {
    let x = sdss_io::npy::read_matrix_f32(path).expect("features");
    let labels: Array1<i64> =
        sdss_io::npy::read_npy(path.with_file_name("KMeans-10_CNN-128_PCA-20.npy"))
            .expect("labels")
            .into_f64()
            .iter()
            .map(|&v| v as i64)
            .collect();
    let mut best = f64::INFINITY;
    let mut detail = String::new();
    for _ in 0..reps {
        let t = Instant::now();
        detail = match case {
            "affinity-propagation" => {
                let mut ap = AffinityPropagation::new();
                ap.damping = 0.8;
                let r = ap.fit(x.view()).expect("ap");
                format!(
                    "{} clusters, {} iterations",
                    r.n_clusters,
                    r.iterations.unwrap_or(0)
                )
            }
            "ward" => {
                let r = Agglomerative::new(32).fit(x.view()).expect("ward");
                format!("{} clusters", r.n_clusters)
            }
            "kmeans" => {
                let r = KMeans::new(10).fit(x.view()).expect("kmeans");
                format!("inertia {:.4}", r.inertia.unwrap_or(f64::NAN))
            }
            "silhouette" => {
                let s = silhouette_score(x.view(), labels.view()).expect("silhouette");
                format!("silhouette {s:.6}")
            }
            "hdbscan" => {
                let r = Hdbscan::default().fit(x.view()).expect("hdbscan");
                format!("{} clusters, {} noise", r.n_clusters, r.n_noise())
            }
            other => panic!("unknown case {other}"),
        };
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{best} {} {detail}", vm_hwm_kib());
}

struct Side {
    seconds: f64,
    peak_kib: u64,
    detail: String,
}

fn run_rust(case: &str, reps: usize) -> Option<Side> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .args(["--child", case, &reps.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "rust {case} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last()?;
    let mut parts = line.splitn(3, ' ');
    Some(Side {
        seconds: parts.next()?.parse().ok()?,
        peak_kib: parts.next()?.parse().ok()?,
        detail: parts.next().unwrap_or("").to_string(),
    })
}

fn run_python(case: &str, reps: usize) -> Option<Side> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/cluster_reference.py");
    let out = Command::new(python())
        .arg(script)
        .args([case, &features_path().to_string_lossy(), &reps.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "python {case} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last()?;
    // Minimal JSON field extraction: the reference prints one flat object.
    let field = |name: &str| -> Option<String> {
        let key = format!("\"{name}\": ");
        let start = line.find(&key)? + key.len();
        let rest = &line[start..];
        if let Some(stripped) = rest.strip_prefix('"') {
            stripped.find('"').map(|e| stripped[..e].to_string())
        } else {
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            Some(rest[..end].trim().to_string())
        }
    };
    Some(Side {
        seconds: field("seconds")?.parse().ok()?,
        peak_kib: field("peak_kib")?.parse().ok()?,
        detail: field("detail").unwrap_or_default(),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = features_path();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        let case = &args[pos + 1];
        let reps = args.get(pos + 2).and_then(|r| r.parse().ok()).unwrap_or(1);
        child(case, reps, &path);
        return;
    }
    if !path.exists() {
        println!(
            "sdss-cluster bench: {} not found; skipping (needs ../shared)",
            path.display()
        );
        return;
    }
    let only: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    println!(
        "sdss-cluster vs scikit-learn/SciPy on 6437 x 20 real CNN features ({} threads available)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<22} {:>9} {:>9} {:>8} {:>10} {:>10} {:>7}  detail (rust | python)",
        "case", "rust s", "python s", "speedup", "rust MiB", "py MiB", "mem"
    );
    for (case, reps) in CASES {
        if !only.is_empty() && !only.iter().any(|o| o.as_str() == case) {
            continue;
        }
        let rust = run_rust(case, reps);
        let py = run_python(case, reps);
        match (rust, py) {
            (Some(r), Some(p)) => println!(
                "{:<22} {:>9.3} {:>9.3} {:>7.1}x {:>10.0} {:>10.0} {:>6.2}x  {} | {}",
                case,
                r.seconds,
                p.seconds,
                p.seconds / r.seconds,
                r.peak_kib as f64 / 1024.0,
                p.peak_kib as f64 / 1024.0,
                r.peak_kib as f64 / p.peak_kib as f64,
                r.detail,
                p.detail
            ),
            (Some(r), None) => println!(
                "{:<22} {:>9.3} {:>9} {:>8} {:>10.0} {:>10} {:>7}  {} | (python failed)",
                case,
                r.seconds,
                "-",
                "-",
                r.peak_kib as f64 / 1024.0,
                "-",
                "-",
                r.detail
            ),
            _ => println!("{case:<22} rust side failed"),
        }
    }
}
