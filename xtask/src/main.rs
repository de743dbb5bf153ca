//! `cargo xtask <task>`: developer tasks for the sdss-clustering workspace.

mod download;
mod feature_study;
mod fetch_fixtures;
mod fetch_weights;
mod gen_fixtures;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("help") | Some("--help") | Some("-h") => {
            println!("usage: cargo xtask <task> [args]\n\ntasks:\n  help    this text\n  fetch-weights <PATH|URL> [--out FILE.safetensors] [--sha256 HEX]   convert Keras weights\n  gen-fixtures [--out DIR] [--count N] [--seed S] [--quality Q]   write the synthetic galaxy set (fixtures/galaxies)\n  fetch-fixtures [--base-url URL] [--concurrency N] [--retries N] [--timeout S]   download the real-galaxy sample (fixtures/real-galaxies/catalog.csv) into fixtures/real-galaxies/images/\n  feature-study [--quick] [--seed N] [--pca N] [--synthetic-count N] [--ssl-epochs N] [--supervised-epochs N] [--shared DIR] [--encoder FILE] [--out FILE.md]   measure feature quality into docs/feature-quality.md (run with `cargo run --release -p xtask --`)");
            ExitCode::SUCCESS
        }
        Some("fetch-weights") => fetch_weights::run(&args[1..]),
        Some("gen-fixtures") => gen_fixtures::run(&args[1..]),
        Some("fetch-fixtures") => fetch_fixtures::run(&args[1..]),
        Some("feature-study") => feature_study::run(&args[1..]),
        Some(other) => {
            eprintln!("xtask: unknown task `{other}` (try `cargo xtask help`)");
            ExitCode::from(2)
        }
    }
}
