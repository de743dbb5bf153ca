//! Helpers shared by the driver's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The bundled example galaxies.
pub fn bundled_galaxies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/galaxies")
}

/// Runs `sdss-clustering` with `args` in `cwd`, quietly.
pub fn run_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sdss-clustering"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the sdss-clustering binary runs")
}

/// Like [`run_in`], asserting success and returning standard output.
pub fn ok(cwd: &Path, args: &[&str]) -> String {
    let out = run_in(cwd, args);
    assert!(
        out.status.success(),
        "sdss-clustering {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`run_in`], asserting failure and returning the error line(s) on standard error.
pub fn fails(cwd: &Path, args: &[&str]) -> String {
    let out = run_in(cwd, args);
    assert!(
        !out.status.success(),
        "sdss-clustering {args:?} should fail"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Reads an int64 label vector written by the driver.
pub fn labels(path: &Path) -> Vec<i64> {
    sdss_io::npy::read_npy_as::<i64>(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .copied()
        .collect()
}

/// Copies the first `n` bundled galaxies (and nothing else) into `dir`.
pub fn copy_galaxies(dir: &Path, n: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let files = sdss_io::folder::list_images(bundled_galaxies()).unwrap();
    files
        .iter()
        .take(n)
        .map(|f| {
            let to = dir.join(f.file_name().unwrap());
            std::fs::copy(f, &to).unwrap();
            to
        })
        .collect()
}
