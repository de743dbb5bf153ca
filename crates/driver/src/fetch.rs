//! `sdss-clustering fetch`: download the SDSS cutout of every galaxy of a catalogue (sdss-fetch does the
//! work), with a progress bar, a failure list and Ctrl-C handling.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::ProgressBar;
use sdss_fetch::{CatalogError, FailReason, FetchOptions, FetchProgress, Galaxy, Outcome, Status};

use crate::progress::Progress;

/// Arguments of `fetch`.
#[derive(Debug, Clone, Args)]
pub struct FetchArgs {
    /// Catalogue CSV with columns id, ra and dec (degrees, J2000) and either petroR50 (arcsec; the pixel
    /// scale is 0.02 x petroR50, as in the original images) or scale (arcsec/pixel). Other columns are
    /// ignored.
    #[arg(long, value_name = "FILE.csv")]
    pub catalog: PathBuf,
    /// Output folder for `<id>.jpg` and manifest.csv. Valid images already there are kept (resume).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Cutout endpoint; ra, dec, scale, width and height are appended as query parameters.
    #[arg(long, value_name = "URL", default_value = sdss_fetch::DR17_GETJPEG)]
    pub base_url: String,
    /// Downloads at once (1 to 64). Please be kind to the public service.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub concurrency: usize,
    /// Further attempts after a timeout, connection error, 429, 5xx or bad body (other 4xx are final).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u32,
    /// Time limit of one request, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub timeout: f64,
    /// Delay before the first retry, seconds; it doubles for each further retry (with jitter, at most
    /// 60 s). A server's Retry-After is honoured.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub retry_delay: f64,
    /// Cutout width and height, pixels.
    #[arg(long, value_name = "PIXELS", default_value_t = sdss_fetch::DEFAULT_SIZE)]
    pub size: u32,
    /// Where to write the manifest (default: OUT/manifest.csv).
    #[arg(long, value_name = "FILE.csv")]
    pub manifest: Option<PathBuf>,
}

/// Runs `fetch`: every galaxy ends downloaded, already present, or listed as failed; the exit status is
/// failure if any failed or the run was interrupted.
pub fn fetch(args: &FetchArgs, progress: Progress) -> Result<()> {
    let options = FetchOptions {
        base_url: args.base_url.clone(),
        size: args.size,
        concurrency: args.concurrency,
        retries: args.retries,
        timeout: seconds(args.timeout, "--timeout")?,
        backoff_base: seconds(args.retry_delay, "--retry-delay")?,
        manifest: args.manifest.clone(),
        ..FetchOptions::default()
    };
    let galaxies = match sdss_fetch::read_catalog(&args.catalog) {
        Ok(g) => g,
        Err(CatalogError::Rows { path, problems }) => {
            // The whole list, one row per line, before the one-line error.
            eprintln!("{} bad row(s) in {}:", problems.len(), path.display());
            for p in &problems {
                eprintln!("  line {}: {}", p.line, p.reason);
            }
            bail!(
                "--catalog {}: {} bad row(s) (listed above); nothing was downloaded",
                path.display(),
                problems.len()
            );
        }
        Err(e) => return Err(e).context("--catalog"),
    };

    let cancel = Arc::new(AtomicBool::new(false));
    install_ctrl_c(&cancel);
    let mut bar = Bar {
        bar: progress.bar(galaxies.len() as u64, "fetch"),
        failed: 0,
    };
    // One fetch per folder: two would race on the manifest (sdss-fetch removes what killed runs left).
    let _lock = crate::output_lock::OutputLock::acquire(&args.out)?;
    let report = sdss_fetch::fetch_catalog(&galaxies, &args.out, &options, &cancel, &mut bar)
        .with_context(|| format!("--out {}", args.out.display()))?;
    bar.bar.finish_and_clear();

    let failures: Vec<&Outcome> = report.failures().collect();
    for o in &failures {
        let error = o
            .error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        eprintln!(
            "failed: {}: {error} ({} attempt{}) {}",
            o.id,
            o.attempts,
            if o.attempts == 1 { "" } else { "s" },
            o.url
        );
    }
    for o in report
        .outcomes
        .iter()
        .filter(|o| o.status == Status::Downloaded)
    {
        if let Some(why) = &o.replaced {
            tracing::info!("{}: replaced an invalid file ({why})", o.id);
        }
    }
    println!(
        "{} downloaded, {} already present, {} failed{} -> {} (manifest: {})",
        report.count(Status::Downloaded),
        report.count(Status::Present),
        failures.len(),
        if report.cancelled {
            format!(
                ", {} not fetched (interrupted)",
                report.count(Status::Cancelled)
            )
        } else {
            String::new()
        },
        args.out.display(),
        report.manifest.display()
    );
    if report.cancelled {
        bail!("interrupted; run the same command again to fetch the rest");
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} galaxies failed (listed above and in {}); run again to retry them",
            failures.len(),
            report.outcomes.len(),
            report.manifest.display()
        );
    }
    Ok(())
}

fn seconds(value: f64, flag: &str) -> Result<Duration> {
    if value.is_finite() && value >= 0.0 {
        Duration::try_from_secs_f64(value).with_context(|| format!("{flag} {value}"))
    } else {
        bail!("{flag} {value}: expected a non-negative number of seconds")
    }
}

/// First Ctrl-C: stop cleanly (nothing partial is left, the manifest is written). Second: quit now.
fn install_ctrl_c(cancel: &Arc<AtomicBool>) {
    let flag = Arc::clone(cancel);
    let result = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // Even now no partial image is left in place: images are renamed into place whole, and a
            // stray temporary file is removed by the next run.
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping (press Ctrl-C again to quit at once)");
    });
    if let Err(e) = result {
        tracing::warn!("no Ctrl-C handler ({e}); an interrupted run still leaves no partial image");
    }
}

/// Drives the progress bar (rate and ETA) from the fetcher's notifications.
struct Bar {
    bar: ProgressBar,
    failed: usize,
}

impl FetchProgress for Bar {
    fn retry(&mut self, galaxy: &Galaxy, attempt: u32, reason: &FailReason, delay: Duration) {
        tracing::debug!(
            "{}: attempt {attempt} failed ({reason}); retrying in {:.1} s",
            galaxy.id,
            delay.as_secs_f64()
        );
    }

    fn done(&mut self, outcome: &Outcome) {
        if outcome.status == Status::Failed {
            self.failed += 1;
            self.bar
                .set_message(format!("fetch ({} failed)", self.failed));
        }
        self.bar.inc(1);
    }
}
