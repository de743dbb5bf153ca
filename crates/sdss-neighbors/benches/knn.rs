//! `cargo bench -p sdss-neighbors --bench knn`: nearest-neighbour search against scikit-learn's
//! `NearestNeighbors`, side by side in one run.
//!
//! Cases: the all-pairs 10-nearest-neighbour graph of the 6437 x 20 real CNN features
//! (`../shared/data/sdss-cnn-features`, skipped when absent) and of a 200 000 x 100 synthetic set
//! (`make_blobs(200_000, 100, centers = 100, std = 1, seed = 42)`), exact (this crate's `ExactIndex`
//! vs scikit-learn `algorithm="brute"` and its default `"auto"`) and approximate (`IvfIndex`, with its
//! recall@10 against the exact graph); then the latency of one query against the 200 000 points.
//!
//! Each case runs in its own process on both sides so peak memory is per case: the Rust side
//! re-executes this binary with `--child ...` and reads `VmHWM` from `/proc/self/status`; the Python
//! side (`knn_reference.py`) reports `ru_maxrss`.
//! Python: `SDSS_BENCH_PYTHON`, else `<workspace>/.venv/bin/python`, else `python3`.
//! `KNN_BENCH_N` overrides the synthetic set's size (e.g. 50000 for a quick run).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ndarray::{Array1, Array2};
use sdss_neighbors::{make_blobs, ExactIndex, IvfIndex, Metric, NeighborIndex};

const K: usize = 10;
/// Queries timed one at a time in the latency case.
const QUERIES: usize = 1000;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
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

fn read_indices(path: &Path) -> Array2<usize> {
    sdss_io::npy::read_matrix_f64(path)
        .expect("indices")
        .mapv(|v| v as usize)
}

fn recall(truth: &Array2<usize>, got: &Array2<usize>, rows: &[usize]) -> f64 {
    let mut hits = 0usize;
    for (gi, &r) in rows.iter().enumerate() {
        let t = truth.row(r);
        hits += got
            .row(gi)
            .iter()
            .filter(|g| t.iter().any(|x| x == *g))
            .count();
    }
    hits as f64 / (rows.len() * truth.ncols()) as f64
}

/// One measurement in this process; prints `seconds peak_kib detail`.
fn child(args: &[String]) {
    let (mode, data) = (args[0].as_str(), Path::new(&args[1]));
    let x = sdss_io::npy::read_matrix_f32(data).expect("data");
    match mode {
        "exact-graph" => {
            let t = Instant::now();
            let g = ExactIndex::new(x.view(), Metric::Euclidean)
                .and_then(|i| i.knn_graph(K))
                .expect("graph");
            let s = t.elapsed().as_secs_f64();
            let ind = g.indices.mapv(|v| v as i64);
            sdss_io::npy::write_npy(&args[2], &ind.view()).expect("write");
            println!("{s} {} exact", vm_hwm_kib());
        }
        "ivf-graph" => {
            let t = Instant::now();
            let index = IvfIndex::new(x.view(), Metric::Euclidean).expect("index");
            let build = t.elapsed().as_secs_f64();
            let g = index.knn_graph(K).expect("graph");
            let s = t.elapsed().as_secs_f64();
            let truth = read_indices(Path::new(&args[2]));
            let rows: Vec<usize> = (0..x.nrows()).collect();
            let r = recall(&truth, &g.indices, &rows);
            println!(
                "{s} {} recall@10={r:.4}; build {build:.2} s; {} cells, {} scanned",
                vm_hwm_kib(),
                index.n_lists(),
                index.n_probe()
            );
        }
        "ivf-query" | "exact-query" => {
            let rows: Vec<usize> = read_indices(Path::new(&args[3])).column(0).to_vec();
            let index: Box<dyn NeighborIndex> = if mode == "ivf-query" {
                Box::new(IvfIndex::new(x.view(), Metric::Euclidean).expect("index"))
            } else {
                Box::new(ExactIndex::new(x.view(), Metric::Euclidean).expect("index"))
            };
            let mut times = Vec::with_capacity(rows.len());
            let mut got = Array2::<usize>::zeros((rows.len(), K));
            for (gi, &r) in rows.iter().enumerate() {
                let q = x.row(r);
                let t = Instant::now();
                // A query by feature vector, as for a galaxy from outside the set; the row itself
                // comes back first at distance 0 and is dropped, as scikit-learn's caller would.
                let found = index.query(q, K + 1).expect("query");
                times.push(t.elapsed().as_secs_f64());
                for (j, n) in found.iter().filter(|n| n.index != r).take(K).enumerate() {
                    got[[gi, j]] = n.index;
                }
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
            let truth = read_indices(Path::new(&args[2]));
            let r = recall(&truth, &got, &rows);
            println!(
                "{median} {} recall@10={r:.4}; p99 {:.3} ms; {} queries one at a time",
                vm_hwm_kib(),
                p99 * 1e3,
                rows.len()
            );
        }
        other => panic!("unknown child mode {other}"),
    }
}

struct Measured {
    seconds: f64,
    peak_kib: u64,
    detail: String,
}

fn rust(args: &[&str]) -> Measured {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .arg("--child")
        .args(args)
        .output()
        .expect("child runs");
    assert!(
        out.status.success(),
        "child {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("");
    let mut parts = line.splitn(3, ' ');
    Measured {
        seconds: parts
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN),
        peak_kib: parts.next().and_then(|v| v.parse().ok()).unwrap_or(0),
        detail: parts.next().unwrap_or("").to_owned(),
    }
}

fn python_side(args: &[&str]) -> Option<Measured> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/knn_reference.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "python reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_like::Json = serde_like::parse(text.lines().last()?)?;
    Some(Measured {
        seconds: v.seconds,
        peak_kib: v.peak_kib,
        detail: v.detail,
    })
}

/// Just enough JSON reading for the reference's one flat line (no serde in this crate).
mod serde_like {
    pub struct Json {
        pub seconds: f64,
        pub peak_kib: u64,
        pub detail: String,
    }

    fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
        let rest = line[at..].trim_start();
        if let Some(s) = rest.strip_prefix('"') {
            s.find('"').map(|e| &s[..e])
        } else {
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            Some(rest[..end].trim())
        }
    }

    pub fn parse(line: &str) -> Option<Json> {
        Some(Json {
            seconds: field(line, "seconds")?.parse().ok()?,
            peak_kib: field(line, "peak_kib")?.parse().ok()?,
            detail: field(line, "detail")?.to_owned(),
        })
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

fn time(seconds: f64) -> String {
    if seconds < 0.1 {
        format!("{:.3} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

fn row(case: &str, ours: &Measured, theirs: &[(&str, Option<Measured>)]) {
    println!(
        "| {case} | {} | {} MiB | {} |",
        time(ours.seconds),
        mib(ours.peak_kib),
        ours.detail
    );
    for (name, m) in theirs {
        match m {
            Some(m) => println!(
                "| &nbsp;&nbsp;scikit-learn {name} | {} | {} MiB | {}; Rust {:.1}x faster |",
                time(m.seconds),
                mib(m.peak_kib),
                m.detail,
                m.seconds / ours.seconds
            ),
            None => println!("| &nbsp;&nbsp;scikit-learn {name} | (failed) | | |"),
        }
    }
}

/// Sets small enough to also time scikit-learn's default algorithm (which runs brute force above 15
/// features anyway: timing it again on 200 000 points would only repeat the brute-force row).
fn x_small(data: &Path) -> bool {
    std::fs::metadata(data).is_ok_and(|m| m.len() < 64 << 20)
}

fn graph_cases(name: &str, data: &Path, tmp: &Path) {
    let exact_ind = tmp.join(format!("{name}_exact_ind.npy"));
    let sk_ind = tmp.join(format!("{name}_sklearn_ind.npy"));
    let d = data.to_str().expect("utf-8 path");
    let exact = rust(&["exact-graph", d, exact_ind.to_str().expect("utf-8")]);
    let k = K.to_string();
    let brute = python_side(&["graph", d, "brute", &k, sk_ind.to_str().expect("utf-8")]);
    let mut exact = exact;
    if brute.is_some() {
        // Same neighbours as scikit-learn's brute force; exact ties (duplicate galaxies) may swap.
        let (a, b) = (read_indices(&exact_ind), read_indices(&sk_ind));
        let rows: Vec<usize> = (0..a.nrows()).collect();
        exact.detail = format!(
            "{:.5} of neighbours equal scikit-learn brute's",
            recall(&b, &a, &rows)
        );
    }
    // scikit-learn's default ("auto") picks brute force above 15 features; it is run where it could
    // differ or is cheap, and the choice it made is printed.
    let auto = if x_small(data) {
        python_side(&["graph", d, "auto", &k, sk_ind.to_str().expect("utf-8")])
    } else {
        None
    };
    let mut theirs = vec![("brute", brute)];
    if auto.is_some() {
        theirs.push(("auto (default)", auto));
    }
    row(&format!("{name}: 10-NN graph, exact"), &exact, &theirs);
    let ivf = rust(&["ivf-graph", d, exact_ind.to_str().expect("utf-8")]);
    row(
        &format!("{name}: 10-NN graph, IVF (approximate)"),
        &ivf,
        &[],
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(p) = args.iter().position(|a| a == "--child") {
        child(&args[p + 1..]);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let tmp = std::env::temp_dir().join(format!("sdss-neighbors-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    println!("| case | time | peak memory | detail |");
    println!("| --- | --- | --- | --- |");

    let real = workspace().join("../shared/data/sdss-cnn-features/CNN-128_PCA-20_features.npy");
    if real.exists() {
        graph_cases("real 6437x20", &real, &tmp);
    } else {
        println!(
            "| real 6437x20 | skipped: {} not found | | |",
            real.display()
        );
    }

    let n: usize = std::env::var("KNN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let (x, _) = make_blobs(n, 100, 100, 1.0, 42);
    let data = tmp.join("blobs.npy");
    sdss_io::npy::write_npy(&data, &x.view()).expect("write blobs");
    drop(x);
    let name = format!("synthetic {n}x100");
    graph_cases(&name, &data, &tmp);

    // Query latency: the same 1000 rows (seeded) queried one at a time.
    let step = (n / QUERIES).max(1);
    let rows: Array2<i64> = Array1::from_iter((0..n).step_by(step).take(QUERIES).map(|r| r as i64))
        .insert_axis(ndarray::Axis(1));
    let rows_path = tmp.join("rows.npy");
    sdss_io::npy::write_npy(&rows_path, &rows.view()).expect("rows");
    let exact_ind = tmp.join(format!("{name}_exact_ind.npy"));
    let (d, e, r) = (
        data.to_str().expect("utf-8"),
        exact_ind.to_str().expect("utf-8"),
        rows_path.to_str().expect("utf-8"),
    );
    let ivf = rust(&["ivf-query", d, e, r]);
    row(
        &format!("{name}: one query, IVF (median latency)"),
        &ivf,
        &[],
    );
    let exact = rust(&["exact-query", d, e, r]);
    let k = K.to_string();
    let py_brute = python_side(&["query", d, "brute", &k, r]);
    row(
        &format!("{name}: one query, exact (median latency)"),
        &exact,
        &[("brute", py_brute)],
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
