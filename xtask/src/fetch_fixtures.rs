//! `cargo xtask fetch-fixtures`: fetches the project's small real-galaxy sample
//! (`fixtures/real-galaxies/catalog.csv`, committed) into `fixtures/real-galaxies/images/` (git-ignored)
//! with sdss-fetch, the same code as `sdss-clustering fetch`. The driver's default run prefers those
//! images when they are there.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use sdss_fetch::{FailReason, FetchOptions, FetchProgress, Galaxy, Outcome, Status};

/// The default run clusters with Ward k = 32, so it needs at least this many images.
const MIN_IMAGES: usize = 32;

const USAGE: &str = "usage: cargo xtask fetch-fixtures [--base-url URL] [--concurrency N] [--retries N] [--timeout SECONDS] [--out DIR]\n\
    fetches fixtures/real-galaxies/catalog.csv into fixtures/real-galaxies/images/ (default endpoint: the DR17 SkyServer getjpeg)";

pub fn run(args: &[String]) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask fetch-fixtures: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: &[String]) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .ok_or("xtask has no parent folder")?;
    let folder = root.join("fixtures").join("real-galaxies");
    let catalog = folder.join("catalog.csv");
    let mut out: PathBuf = folder.join("images");
    let mut options = FetchOptions::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--base-url" => options.base_url = value()?.clone(),
            "--concurrency" => options.concurrency = parse(flag, value()?)?,
            "--retries" => options.retries = parse(flag, value()?)?,
            "--timeout" => options.timeout = Duration::from_secs(parse(flag, value()?)?),
            "--out" => out = PathBuf::from(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let galaxies = sdss_fetch::read_catalog(&catalog).map_err(|e| e.to_string())?;
    eprintln!(
        "fetching {} galaxies from {} into {}",
        galaxies.len(),
        options.base_url,
        out.display()
    );
    // No Ctrl-C handler here: an interrupted run leaves no partial image either way (images are
    // renamed into place whole; stray temporary files are removed by the next run), and it resumes.
    let cancel = Arc::new(AtomicBool::new(false));
    let mut lines = Lines {
        total: galaxies.len(),
        done: 0,
    };
    let report = sdss_fetch::fetch_catalog(&galaxies, &out, &options, &cancel, &mut lines)
        .map_err(|e| e.to_string())?;
    let ok = report.count(Status::Downloaded) + report.count(Status::Present);
    eprintln!(
        "{} downloaded, {} already present, {} failed (manifest: {})",
        report.count(Status::Downloaded),
        report.count(Status::Present),
        report.failures().count(),
        report.manifest.display()
    );
    if ok < MIN_IMAGES {
        eprintln!(
            "warning: only {ok} images; the default run (Ward k = {MIN_IMAGES}) needs at least {MIN_IMAGES}"
        );
    }
    let failed = report.failures().count();
    if failed > 0 {
        return Err(format!(
            "{failed} galaxies failed (listed above); run again to retry them"
        ));
    }
    Ok(())
}

/// One line per finished galaxy (xtask draws no progress bar).
struct Lines {
    total: usize,
    done: usize,
}

impl FetchProgress for Lines {
    fn retry(&mut self, galaxy: &Galaxy, attempt: u32, reason: &FailReason, delay: Duration) {
        eprintln!(
            "  {}: attempt {attempt} failed ({reason}); retrying in {:.1} s",
            galaxy.id,
            delay.as_secs_f64()
        );
    }

    fn done(&mut self, o: &Outcome) {
        self.done += 1;
        let detail = match (&o.error, o.status) {
            (Some(e), _) => format!(": {e}"),
            (None, Status::Downloaded) => format!(" ({} bytes)", o.bytes),
            _ => String::new(),
        };
        eprintln!(
            "[{}/{}] {} {}{detail}",
            self.done, self.total, o.id, o.status
        );
    }
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} {value}: not a valid number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdss_fetch::testing::{CutoutServer, Reply, Request};

    #[test]
    fn fetches_the_committed_catalogue_from_a_local_server() {
        let failed_once = std::sync::atomic::AtomicBool::new(false);
        let server = CutoutServer::start(move |_: &Request| {
            // The very first request fails, to show that the task retries.
            if failed_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                Reply::Jpeg
            } else {
                Reply::Status(503)
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("images");
        let args: Vec<String> = [
            "--base-url",
            &server.base_url(),
            "--out",
            out.to_str().unwrap(),
            "--timeout",
            "10",
        ]
        .map(str::to_owned)
        .to_vec();
        run_inner(&args).unwrap();
        let images = sdss_io::folder::list_images(&out).unwrap();
        assert!(images.len() >= MIN_IMAGES + 20, "{}", images.len());
        assert!(out.join("NGC4486.jpg").exists() && out.join("manifest.csv").exists());
        let requests = server.requests();
        assert_eq!(requests.len(), images.len() + 1);
        for r in &requests {
            assert_eq!(r.size(), (424, 424));
            let scale: f64 = r.param("scale").unwrap().parse().unwrap();
            assert!((0.1..10.0).contains(&scale), "{scale}");
        }
        // A second run finds everything present and asks for nothing.
        run_inner(&args).unwrap();
        assert_eq!(server.requests().len(), requests.len());
    }
}
