//! The inverted-file index on a large feature matrix: build time, the memory the index holds
//! against the data's, the 10-nearest-neighbour graph of every row, one-query latency and recall@10
//! against exact search on a sample. One line of `key=value` per measure, for
//! `crates/driver/benches/scale.sh`.
//!
//! ```text
//! cargo run -p sdss-neighbors --example ivf_scale -- FEATURES.npy
//! ```

use std::time::Instant;

use sdss_neighbors::{ExactIndex, IvfIndex, Metric, NeighborIndex};

const K: usize = 10;
const QUERIES: usize = 1000;
const RECALL_SAMPLE: usize = 200;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: ivf_scale FEATURES.npy")?;
    let x = sdss_io::npy::read_matrix_f32(&path)?;
    let (n, d) = x.dim();
    let data_bytes = n * d * 4;

    let t = Instant::now();
    let index = IvfIndex::new(x.view(), Metric::Euclidean)?;
    let build = t.elapsed().as_secs_f64();
    println!(
        "build_s={build:.2} cells={} probed={} index_bytes={} data_bytes={data_bytes} ratio={:.3}",
        index.n_lists(),
        index.n_probe(),
        index.memory_bytes(),
        index.memory_bytes() as f64 / data_bytes as f64
    );

    // One query at a time, rows spread over the set (each excludes itself).
    let step = (n / QUERIES).max(1);
    let mut latencies = Vec::with_capacity(QUERIES);
    for q in (0..n).step_by(step).take(QUERIES) {
        let t = Instant::now();
        let found = index.query_row(q, K)?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(found);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "query_ms_median={:.3} query_ms_p99={:.3}",
        at(0.5),
        at(0.99)
    );

    // Recall@10 of the index against exact search, on a sample of rows.
    let exact = ExactIndex::new(x.view(), Metric::Euclidean)?;
    let sample_step = (n / RECALL_SAMPLE).max(1);
    let (mut hit, mut total) = (0usize, 0usize);
    for q in (0..n).step_by(sample_step).take(RECALL_SAMPLE) {
        let truth: Vec<usize> = exact.query_row(q, K)?.iter().map(|nb| nb.index).collect();
        let got = index.query_row(q, K)?;
        hit += got.iter().filter(|nb| truth.contains(&nb.index)).count();
        total += truth.len();
    }
    println!("recall_at_10={:.3}", hit as f64 / total as f64);

    let t = Instant::now();
    let graph = index.knn_graph(K)?;
    println!(
        "graph_s={:.2} graph_rows={}",
        t.elapsed().as_secs_f64(),
        graph.len()
    );
    Ok(())
}
