//! `cargo xtask <task>`: developer tasks for the sdss-clustering workspace.

mod download;
mod fetch_weights;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("help") | Some("--help") | Some("-h") => {
            println!("usage: cargo xtask <task> [args]\n\ntasks:\n  help    this text\n  fetch-weights <PATH|URL> [--out FILE.safetensors] [--sha256 HEX]   convert Keras weights");
            ExitCode::SUCCESS
        }
        Some("fetch-weights") => fetch_weights::run(&args[1..]),
        Some(other) => {
            eprintln!("xtask: unknown task `{other}` (try `cargo xtask help`)");
            ExitCode::from(2)
        }
    }
}
