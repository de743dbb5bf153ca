//! `cargo xtask fetch-weights <PATH|URL> [--out FILE.safetensors] [--sha256 HEX]`: converts a Keras model
//! (TF-Keras 2 `.h5`, Keras 3 `.h5` or `.keras`) to safetensors plus a JSON manifest, downloading it first
//! (with resume and checksum) when given an http(s) URL. The conversion itself is `sdss_cnn::keras`, the
//! same code the crate's parity tests run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask fetch-weights <PATH|URL> [--out FILE.safetensors] [--sha256 HEX]

Converts a Keras model file (TF-Keras 2 .h5 as sdss_CNN saved it, Keras 3 .h5, or .keras) into
FILE.safetensors plus FILE.json (architecture, source checksum, tensor names). URLs are downloaded into
target/weights-cache/ (an interrupted download resumes); --sha256 checks the source file's checksum.
Default output: <source stem>.safetensors in the current directory.";

/// Runs the task on its arguments (after `fetch-weights`).
pub fn run(args: &[String]) -> ExitCode {
    match try_run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fetch-weights: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    // xtask lives one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn try_run(args: &[String]) -> Result<(), String> {
    let mut source = None;
    let mut out = None;
    let mut sha256 = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            "--out" | "-o" => {
                out = Some(PathBuf::from(it.next().ok_or("--out needs a file name")?))
            }
            "--sha256" => sha256 = Some(it.next().ok_or("--sha256 needs a hex digest")?.clone()),
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`\n\n{USAGE}")),
            s if source.is_none() => source = Some(s.to_string()),
            s => return Err(format!("unexpected argument `{s}`\n\n{USAGE}")),
        }
    }
    let source = source.ok_or_else(|| USAGE.to_string())?;
    if let Some(h) = &sha256 {
        if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("--sha256 `{h}` is not 64 hex digits"));
        }
    }
    let is_url = source.starts_with("http://") || source.starts_with("https://");
    let local = if is_url {
        crate::download::download(
            &source,
            &workspace_root().join("target/weights-cache"),
            sha256.as_deref(),
        )?
    } else {
        let p = PathBuf::from(&source);
        if let Some(want) = &sha256 {
            let have = crate::download::sha256_file(&p).map_err(|e| format!("{source}: {e}"))?;
            if !have.eq_ignore_ascii_case(want) {
                return Err(format!(
                    "{source}: checksum mismatch: expected {want}, file has {have}"
                ));
            }
        }
        p
    };
    let out = out.unwrap_or_else(|| {
        sdss_cnn::keras::default_output_path(&local.display().to_string(), Path::new("."))
    });
    let model = sdss_cnn::keras::read_keras_model(&local).map_err(|e| e.to_string())?;
    let manifest =
        sdss_cnn::keras::write_converted(&model, &source, &out).map_err(|e| e.to_string())?;
    println!(
        "wrote {} ({} parameters, {} tensors, from {:?} Keras {}) and {}",
        out.display(),
        manifest.parameters,
        manifest.tensors.len(),
        manifest.source.format,
        manifest.source.keras_version.as_deref().unwrap_or("?"),
        sdss_cnn::keras::manifest_path(&out).display()
    );
    Ok(())
}
