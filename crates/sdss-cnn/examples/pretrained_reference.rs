//! Writes `fixtures/cnn/pretrained_reference.json`: the shipped encoder's 128-wide embeddings of the
//! first 16 bundled synthetic galaxies (`fixtures/galaxies/`) and, when `../shared` is beside the
//! project, of 16 real SDSS galaxies from `../shared/data/sdss-6437/images/`. The test
//! `tests/pretrained.rs` compares the library's features against them, so that a change that
//! silently alters the network (or its weights) is caught. Run it again only when the shipped weights
//! are replaced on purpose:
//!
//! ```sh
//! cargo run --release -p sdss-cnn --example pretrained_reference
//! ```
use std::path::{Path, PathBuf};

/// The real galaxies referenced: spread over the set's index range.
pub const REAL_IDS: [&str; 16] = [
    "0000", "0401", "0802", "1203", "1604", "2005", "2406", "2807", "3208", "3609", "4010", "4411",
    "4812", "5213", "5614", "6436",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Embeddings of `files` by the shipped encoder, as `(id, values)`.
fn embed(files: &[PathBuf]) -> Vec<(String, Vec<f32>)> {
    let model = sdss_cnn::pretrained::model().expect("the shipped encoder loads");
    let options = sdss_io::Preprocess::default();
    let images: Vec<ndarray::Array3<f32>> = files
        .iter()
        .map(|p| sdss_io::load_image(p, &options).expect("a readable fixture image"))
        .collect();
    let views: Vec<_> = images.iter().map(|a| a.view()).collect();
    let batch = ndarray::stack(ndarray::Axis(0), &views).unwrap();
    let dense = model
        .features(batch.view(), sdss_cnn::Tap::Dense)
        .expect("features");
    files
        .iter()
        .zip(dense.rows())
        .map(|(p, row)| {
            let id = p.file_stem().unwrap().to_string_lossy().into_owned();
            (id, row.to_vec())
        })
        .collect()
}

fn section(rows: &[(String, Vec<f32>)]) -> serde_json::Value {
    serde_json::json!({
        "ids": rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        "dense": rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
    })
}

fn main() {
    let synthetic: Vec<PathBuf> = {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/galaxies"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
            .collect();
        files.sort();
        files.truncate(16);
        files
    };
    let real_dir = root().join("../shared/data/sdss-6437/images");
    let manifest = sdss_cnn::pretrained::manifest().unwrap();
    let mut out = serde_json::json!({
        "encoder": sdss_cnn::pretrained::NAME,
        "weights_sha256": manifest.safetensors_sha256,
        "made_by": "cargo run --release -p sdss-cnn --example pretrained_reference",
        "synthetic": section(&embed(&synthetic)),
    });
    if real_dir.is_dir() {
        let files: Vec<PathBuf> = REAL_IDS
            .iter()
            .map(|id| real_dir.join(format!("{id}.png")))
            .collect();
        out["real"] = section(&embed(&files));
    } else {
        eprintln!(
            "note: {} not found; no real galaxies referenced",
            real_dir.display()
        );
    }
    let path = root().join("fixtures/cnn/pretrained_reference.json");
    let text = serde_json::to_string(&out).unwrap();
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    println!("wrote {}", path.display());
}
