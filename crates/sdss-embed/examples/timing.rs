//! Time and quality of the map against N on seeded 20-D blobs:
//! `cargo run --release -p sdss-embed --example timing [N ...]` (default 6437 100000).

use std::time::Instant;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![6437, 100_000]
    } else {
        sizes
    };
    for n in sizes {
        let (x, _) = sdss_neighbors::make_blobs(n, 20, 10, 2.0, 1);
        let t = Instant::now();
        let map = sdss_embed::Umap::new()
            .random_state(0)
            .fit(x.view())
            .expect("map");
        let secs = t.elapsed().as_secs_f64();
        let keep = if n <= 20_000 {
            format!(
                "{:.3}",
                sdss_embed::neighbourhood_preservation(x.view(), map.view(), 10).expect("knn")
            )
        } else {
            "(not measured above 20,000)".into()
        };
        println!("n = {n}: {secs:.1} s, neighbourhood preservation (k=10) {keep}");
    }
}
