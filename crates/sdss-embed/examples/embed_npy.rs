//! Maps an `(N, D)` float32 `.npy` to 2-D with this crate's UMAP and writes the map as `.npy`, timing
//! the fit: the Rust side of `compare/compare_tsne.py`, which measures UMAP against scikit-learn's
//! t-SNE on the same inputs.
//!
//! `cargo run --release -p sdss-embed --example embed_npy -- IN.npy OUT.npy`

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: embed_npy IN.npy OUT.npy".into());
    };
    let x = sdss_io::npy::read_matrix_f32(input)?;
    let t = Instant::now();
    let map = sdss_embed::Umap::new().random_state(0).fit(x.view())?;
    let secs = t.elapsed().as_secs_f64();
    sdss_io::npy::write_npy(output, &map.view())?;
    println!("{{\"seconds\": {secs:.3}}}");
    Ok(())
}
