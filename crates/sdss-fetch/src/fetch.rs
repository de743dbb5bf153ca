//! The downloader: bounded concurrency, retries with backoff, validation, atomic saves, resume,
//! cancellation and the manifest.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::catalog::Galaxy;
use crate::error::{FailReason, FetchError};
use crate::validate::check_jpeg;

/// The DR17 SkyServer cutout service that made the original project's images.
pub const DR17_GETJPEG: &str = "https://skyserver.sdss.org/dr17/SkyServerWS/ImgCutout/getjpeg";

/// The original project's cutout size, pixels (width = height).
pub const DEFAULT_SIZE: u32 = 424;

/// The largest cutout the SkyServer service makes, pixels.
pub const MAX_SIZE: u32 = 2048;

/// The file name of the manifest written into the output folder.
pub const MANIFEST_NAME: &str = "manifest.csv";

/// The cutout URL for `galaxy`: `base_url` with `ra`, `dec`, `scale`, `width` and `height` appended as
/// query parameters (after `&` if `base_url` already has a query). Degrees and arcsec/pixel are written
/// with 6 decimals, trailing zeros removed: 0.0036″ in position, far below a pixel.
///
/// ```
/// use sdss_fetch::{cutout_url, Galaxy, DR17_GETJPEG};
/// let g = Galaxy { id: "M87".into(), ra: 187.70593, dec: 12.39112, scale: 0.5, line: 2 };
/// assert_eq!(
///     cutout_url(DR17_GETJPEG, &g, 424),
///     "https://skyserver.sdss.org/dr17/SkyServerWS/ImgCutout/getjpeg?ra=187.70593&dec=12.39112&scale=0.5&width=424&height=424"
/// );
/// ```
pub fn cutout_url(base_url: &str, galaxy: &Galaxy, size: u32) -> String {
    let sep = if base_url.contains('?') {
        if base_url.ends_with(['?', '&']) {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!(
        "{base_url}{sep}ra={}&dec={}&scale={}&width={size}&height={size}",
        decimal(galaxy.ra),
        decimal(galaxy.dec),
        decimal(galaxy.scale)
    )
}

/// `v` with 6 decimals, trailing zeros (and a trailing point) removed; never `-0`.
fn decimal(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The cutout endpoint ([`DR17_GETJPEG`] by default).
    pub base_url: String,
    /// Width and height of each cutout, pixels (1 to [`MAX_SIZE`]; default [`DEFAULT_SIZE`]).
    pub size: u32,
    /// Downloads at once (1 to 64; default 4). Be kind to the public service.
    pub concurrency: usize,
    /// Further attempts after the first for retryable failures (default 5).
    pub retries: u32,
    /// Time limit of one attempt, from connecting to the last body byte (default 60 s).
    pub timeout: Duration,
    /// Delay before the first retry; it doubles for each further retry, with jitter (default 1 s).
    pub backoff_base: Duration,
    /// Upper bound of the backoff delay (default 60 s).
    pub backoff_max: Duration,
    /// Upper bound on a server's Retry-After that is honoured (default 300 s).
    pub max_retry_after: Duration,
    /// Largest accepted body, bytes (default 32 MiB).
    pub max_body_bytes: u64,
    /// Where the manifest goes (default: `manifest.csv` in the output folder).
    pub manifest: Option<PathBuf>,
    /// The User-Agent header.
    pub user_agent: String,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            base_url: DR17_GETJPEG.to_owned(),
            size: DEFAULT_SIZE,
            concurrency: 4,
            retries: 5,
            timeout: Duration::from_secs(60),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
            max_body_bytes: 32 << 20,
            manifest: None,
            user_agent: concat!(
                "sdss-clustering/",
                env!("CARGO_PKG_VERSION"),
                " (sdss-fetch)"
            )
            .to_owned(),
        }
    }
}

impl FetchOptions {
    fn validate(&self) -> Result<(), FetchError> {
        let bad = |name, reason: &str| {
            Err(FetchError::InvalidOption {
                name,
                reason: reason.to_owned(),
            })
        };
        if self.size == 0 || self.size > MAX_SIZE {
            return bad("size", &format!("{} is outside 1..={MAX_SIZE}", self.size));
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            return bad(
                "concurrency",
                &format!("{} is outside 1..=64", self.concurrency),
            );
        }
        if self.timeout.is_zero() {
            return bad("timeout", "must be positive");
        }
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return bad(
                "base_url",
                &format!("`{}` is not an http(s) URL", self.base_url),
            );
        }
        Ok(())
    }

    /// The manifest path for output folder `out_dir`.
    pub fn manifest_path(&self, out_dir: &Path) -> PathBuf {
        self.manifest
            .clone()
            .unwrap_or_else(|| out_dir.join(MANIFEST_NAME))
    }
}

/// What happened to one galaxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Downloaded, checked and saved in this run.
    Downloaded,
    /// A valid image was already there; no request was made.
    Present,
    /// Every attempt failed, or the failure was final (see the outcome's `error`).
    Failed,
    /// The run was cancelled before this galaxy finished; a later run resumes it.
    Cancelled,
}

impl Status {
    /// The word used in the manifest: `downloaded`, `present`, `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Downloaded => "downloaded",
            Status::Present => "present",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result for one galaxy (one manifest row).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Catalogue id.
    pub id: String,
    /// Right ascension from the catalogue, degrees (written to the manifest, so `run
    /// --match-radius` finds the images' positions beside them).
    pub ra: f64,
    /// Declination from the catalogue, degrees.
    pub dec: f64,
    /// Where the image is (or would be).
    pub file: PathBuf,
    /// The URL requested (or that would be requested).
    pub url: String,
    /// What happened.
    pub status: Status,
    /// Size of the saved image, bytes (0 if none).
    pub bytes: u64,
    /// Lowercase-hex SHA-256 of the saved image.
    pub sha256: Option<String>,
    /// Requests made for this galaxy in this run.
    pub attempts: u32,
    /// Why it failed (the last attempt's reason), for `Failed` and `Cancelled`.
    pub error: Option<FailReason>,
    /// Why a file that was already there was not accepted (it has been replaced if `status` is
    /// `Downloaded`).
    pub replaced: Option<FailReason>,
}

/// Everything a fetch run did.
#[derive(Debug, Clone)]
pub struct FetchReport {
    /// One outcome per galaxy, in catalogue order.
    pub outcomes: Vec<Outcome>,
    /// Where the manifest was written.
    pub manifest: PathBuf,
    /// Whether the run was cancelled.
    pub cancelled: bool,
}

impl FetchReport {
    /// How many galaxies ended with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.outcomes.iter().filter(|o| o.status == status).count()
    }

    /// The galaxies that failed (not those cancelled).
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| o.status == Status::Failed)
    }

    /// Whether every galaxy has a valid image now.
    pub fn all_ok(&self) -> bool {
        self.outcomes
            .iter()
            .all(|o| matches!(o.status, Status::Downloaded | Status::Present))
    }
}

/// Progress notifications, called on the thread that called [`fetch_catalog`], in the order things
/// happen. Every method has an empty default.
pub trait FetchProgress {
    /// Before anything is fetched.
    fn start(&mut self, _total: usize) {}
    /// An attempt failed and will be retried after `delay`.
    fn retry(&mut self, _galaxy: &Galaxy, _attempt: u32, _reason: &FailReason, _delay: Duration) {}
    /// A galaxy is finished (downloaded, present, failed or cancelled).
    fn done(&mut self, _outcome: &Outcome) {}
}

/// A [`FetchProgress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl FetchProgress for NoProgress {}

/// Fetches a cutout for every galaxy into `out_dir` and writes the manifest.
///
/// Galaxies whose `<id>.jpg` is already a valid JPEG of the requested size are skipped without a request;
/// an invalid one is replaced. Each response is checked with [`check_jpeg`] in memory and only then saved
/// atomically (temporary file in `out_dir`, then rename), so no partial image is ever left, not even on
/// cancellation or a crash (stale temporary files of a killed run are removed at the start of the next).
///
/// Setting `cancel` (e.g. from a Ctrl-C handler) stops the run: no new request starts, downloads in flight
/// are dropped unsaved, unfinished galaxies are reported as [`Status::Cancelled`], the manifest is written
/// and the function returns promptly, without waiting for requests that are still blocked on the network
/// (their threads end on their own within `timeout`, and save nothing).
///
/// Per-galaxy failures are in the report ([`FetchReport::failures`]); `Err` is returned only for bad
/// options, an unusable output folder, or a manifest that cannot be written.
pub fn fetch_catalog(
    galaxies: &[Galaxy],
    out_dir: &Path,
    options: &FetchOptions,
    cancel: &Arc<AtomicBool>,
    progress: &mut dyn FetchProgress,
) -> Result<FetchReport, FetchError> {
    options.validate()?;
    check_galaxies(galaxies)?;
    std::fs::create_dir_all(out_dir).map_err(|e| FetchError::OutputFolder {
        path: out_dir.to_owned(),
        source: e,
    })?;
    let manifest = options.manifest_path(out_dir);
    remove_stale_temp_files(out_dir, galaxies, &manifest)?;

    let jobs: Arc<Vec<Job>> = Arc::new(
        galaxies
            .iter()
            .map(|g| Job {
                galaxy: g.clone(),
                url: cutout_url(&options.base_url, g, options.size),
                path: out_dir.join(g.file_name()),
            })
            .collect(),
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(options.timeout))
        .timeout_connect(Some(options.timeout.min(Duration::from_secs(15))))
        .user_agent(options.user_agent.as_str())
        .build()
        .into();
    let shared = Arc::new(Shared {
        agent,
        options: options.clone(),
        jobs: Arc::clone(&jobs),
        next: AtomicUsize::new(0),
        cancel: Arc::clone(cancel),
        stop: AtomicBool::new(false),
        closed: RwLock::new(false),
        pause_until: Mutex::new(None),
        attempts: (0..jobs.len()).map(|_| AtomicU32::new(0)).collect(),
    });

    progress.start(jobs.len());
    let (tx, rx) = mpsc::channel::<Message>();
    let workers = options.concurrency.min(jobs.len().max(1));
    for i in 0..workers {
        let for_worker = Arc::clone(&shared);
        let tx = tx.clone();
        std::thread::Builder::new()
            .name(format!("sdss-fetch-{i}"))
            .spawn(move || worker(&for_worker, &tx))
            .map_err(|e| {
                // Stop the workers already started before giving up.
                shared.stop.store(true, Ordering::SeqCst);
                FetchError::Thread(e)
            })?;
    }
    drop(tx);

    let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
    let mut finished = 0;
    let mut cancelled = false;
    while finished < jobs.len() {
        if cancel.load(Ordering::SeqCst) {
            cancelled = true;
            break;
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Message::Retry {
                index,
                attempt,
                reason,
                delay,
            }) => progress.retry(&jobs[index].galaxy, attempt, &reason, delay),
            Ok(Message::Done(index, outcome)) => {
                progress.done(&outcome);
                outcomes[index] = Some(outcome);
                finished += 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Every worker has exited; any galaxy without an outcome lost its worker to a panic.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if cancelled {
        // Close the gate: once this returns, no worker is saving and none will save.
        *shared.closed.write().unwrap_or_else(|e| e.into_inner()) = true;
        // Keep the outcomes that were complete before the gate closed.
        while let Ok(message) = rx.try_recv() {
            if let Message::Done(index, outcome) = message {
                progress.done(&outcome);
                outcomes[index] = Some(outcome);
            }
        }
    }
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .zip(jobs.iter())
        .enumerate()
        .map(|(i, (o, job))| {
            o.unwrap_or_else(|| {
                let (status, error) = if cancelled {
                    (Status::Cancelled, FailReason::Cancelled)
                } else {
                    (
                        Status::Failed,
                        FailReason::Request("internal error: the download thread stopped".into()),
                    )
                };
                let attempts = shared.attempts[i].load(Ordering::SeqCst);
                let outcome = job.outcome(status, attempts, Some(error));
                progress.done(&outcome);
                outcome
            })
        })
        .collect();
    write_manifest(&manifest, out_dir, &outcomes)?;
    Ok(FetchReport {
        outcomes,
        manifest,
        cancelled,
    })
}

fn check_galaxies(galaxies: &[Galaxy]) -> Result<(), FetchError> {
    let mut files: HashMap<String, &str> = HashMap::new();
    for g in galaxies {
        let name = g.file_name();
        if g.id.is_empty()
            || g.id.contains(['/', '\\'])
            || g.id.starts_with('.')
            || g.id.chars().any(char::is_control)
        {
            return Err(FetchError::InvalidOption {
                name: "galaxy id",
                reason: format!("`{}` cannot be a file name", g.id.escape_debug()),
            });
        }
        if let Some(first) = files.insert(name.clone(), &g.id) {
            return Err(FetchError::DuplicateFile {
                first: first.to_owned(),
                second: g.id.clone(),
                file: name,
            });
        }
    }
    Ok(())
}

/// Removes the `.<id>.jpg.tmp-*` (and `.manifest.csv.tmp-*`) files that a killed run left (see
/// `sdss_io::atomic`).
fn remove_stale_temp_files(
    out_dir: &Path,
    galaxies: &[Galaxy],
    manifest: &Path,
) -> Result<(), FetchError> {
    let mut names: HashSet<String> = galaxies.iter().map(Galaxy::file_name).collect();
    if manifest.parent() == Some(out_dir) {
        if let Some(name) = manifest.file_name() {
            names.insert(name.to_string_lossy().into_owned());
        }
    }
    let entries = std::fs::read_dir(out_dir).map_err(|e| FetchError::OutputFolder {
        path: out_dir.to_owned(),
        source: e,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some((target, _)) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp-")) {
            if names.contains(target) {
                // Best effort: a file that cannot be removed is only clutter, never read as an image.
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

struct Job {
    galaxy: Galaxy,
    url: String,
    path: PathBuf,
}

impl Job {
    fn outcome(&self, status: Status, attempts: u32, error: Option<FailReason>) -> Outcome {
        Outcome {
            id: self.galaxy.id.clone(),
            ra: self.galaxy.ra,
            dec: self.galaxy.dec,
            file: self.path.clone(),
            url: self.url.clone(),
            status,
            bytes: 0,
            sha256: None,
            attempts,
            error,
            replaced: None,
        }
    }
}

struct Shared {
    agent: ureq::Agent,
    options: FetchOptions,
    jobs: Arc<Vec<Job>>,
    next: AtomicUsize,
    cancel: Arc<AtomicBool>,
    /// Set when the run is abandoned for a fatal error.
    stop: AtomicBool,
    /// Set (under the write lock) when the caller stops waiting; savers hold the read lock.
    closed: RwLock<bool>,
    /// After a 429 with Retry-After every worker holds off until then, not only the one that got it.
    pause_until: Mutex<Option<Instant>>,
    /// Requests made per galaxy so far, for the manifest of a cancelled run.
    attempts: Vec<AtomicU32>,
}

impl Shared {
    /// Whether to stop: the caller cancelled, or the run was abandoned.
    fn stopped(&self) -> bool {
        self.cancel.load(Ordering::SeqCst) || self.stop.load(Ordering::SeqCst)
    }
}

enum Message {
    Retry {
        index: usize,
        attempt: u32,
        reason: FailReason,
        delay: Duration,
    },
    Done(usize, Outcome),
}

fn worker(shared: &Shared, tx: &mpsc::Sender<Message>) {
    let mut rng = Rng::new();
    loop {
        if shared.stopped() {
            return;
        }
        let index = shared.next.fetch_add(1, Ordering::SeqCst);
        let Some(job) = shared.jobs.get(index) else {
            return;
        };
        let outcome = process(shared, index, job, tx, &mut rng);
        if tx.send(Message::Done(index, outcome)).is_err() {
            return;
        }
    }
}

fn process(
    shared: &Shared,
    index: usize,
    job: &Job,
    tx: &mpsc::Sender<Message>,
    rng: &mut Rng,
) -> Outcome {
    let size = shared.options.size;
    let mut replaced = None;
    match std::fs::read(&job.path) {
        Ok(bytes) => match check_jpeg(&bytes, None, size, size) {
            Ok(()) => return saved(job, Status::Present, &bytes, 0, None),
            Err(why) => replaced = Some(why),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => replaced = Some(FailReason::Save(format!("unreadable: {e}"))),
    }
    let max_attempts = shared.options.retries.saturating_add(1);
    let mut attempt = 0;
    loop {
        if shared.stopped() {
            return cancelled(job, attempt, replaced);
        }
        wait_for_pause(shared);
        attempt += 1;
        shared.attempts[index].store(attempt, Ordering::SeqCst);
        let reason = match request(shared, job) {
            Ok(bytes) => {
                let closed = shared.closed.read().unwrap_or_else(|e| e.into_inner());
                if *closed || shared.stopped() {
                    return cancelled(job, attempt, replaced);
                }
                return match sdss_io::atomic::write_bytes_atomic(&job.path, &bytes) {
                    Ok(()) => saved(job, Status::Downloaded, &bytes, attempt, replaced),
                    Err(e) => {
                        let mut o = job.outcome(
                            Status::Failed,
                            attempt,
                            Some(FailReason::Save(e.to_string())),
                        );
                        o.replaced = replaced;
                        o
                    }
                };
            }
            Err(reason) => reason,
        };
        if reason == FailReason::Cancelled {
            return cancelled(job, attempt, replaced);
        }
        if !reason.is_retryable() || attempt >= max_attempts {
            let mut o = job.outcome(Status::Failed, attempt, Some(reason));
            o.replaced = replaced;
            return o;
        }
        let delay = backoff(&shared.options, attempt, &reason, rng);
        if let FailReason::Status {
            retry_after: Some(_),
            ..
        } = reason
        {
            let until = Instant::now() + delay;
            let mut pause = shared.pause_until.lock().unwrap_or_else(|e| e.into_inner());
            *pause = Some(pause.map_or(until, |p| p.max(until)));
        }
        let _ = tx.send(Message::Retry {
            index,
            attempt,
            reason,
            delay,
        });
        if !sleep_unless_stopped(delay, shared) {
            return cancelled(job, attempt, replaced);
        }
    }
}

fn saved(
    job: &Job,
    status: Status,
    bytes: &[u8],
    attempts: u32,
    replaced: Option<FailReason>,
) -> Outcome {
    let mut o = job.outcome(status, attempts, None);
    o.bytes = bytes.len() as u64;
    o.sha256 = Some(hex(&Sha256::digest(bytes)));
    o.replaced = replaced;
    o
}

fn cancelled(job: &Job, attempts: u32, replaced: Option<FailReason>) -> Outcome {
    let mut o = job.outcome(Status::Cancelled, attempts, Some(FailReason::Cancelled));
    o.replaced = replaced;
    o
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sleeps until a shared Retry-After pause is over.
fn wait_for_pause(shared: &Shared) {
    let until = *shared.pause_until.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(until) = until {
        let now = Instant::now();
        if until > now {
            sleep_unless_stopped(until - now, shared);
        }
    }
}

/// Sleeps `d` in short steps; false if the run was stopped meanwhile.
fn sleep_unless_stopped(d: Duration, shared: &Shared) -> bool {
    let end = Instant::now() + d;
    loop {
        if shared.stopped() {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// The delay before retry number `attempt` (1-based): exponential from `backoff_base`, capped at
/// `backoff_max`, with "equal jitter" (half fixed, half random) so parallel workers spread out; at least
/// the server's Retry-After (capped at `max_retry_after`).
fn backoff(options: &FetchOptions, attempt: u32, reason: &FailReason, rng: &mut Rng) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
    let full = options
        .backoff_base
        .saturating_mul(factor)
        .min(options.backoff_max);
    let jittered = full / 2 + full.mul_f64(rng.unit() / 2.0);
    match reason {
        FailReason::Status {
            retry_after: Some(r),
            ..
        } => jittered.max((*r).min(options.max_retry_after)),
        _ => jittered,
    }
}

/// One request: the body, checked, or why not.
fn request(shared: &Shared, job: &Job) -> Result<Vec<u8>, FailReason> {
    let size = shared.options.size;
    let response = shared.agent.get(&job.url).call().map_err(classify)?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if !(200..300).contains(&status) {
        return Err(FailReason::Status {
            status,
            retry_after: header("retry-after")
                .and_then(|v| parse_retry_after(&v, SystemTime::now())),
        });
    }
    let content_type = header("content-type");
    let expected = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let limit = shared.options.max_body_bytes;
    if expected.is_some_and(|n| n > limit) {
        return Err(FailReason::TooLarge(limit));
    }
    let mut reader = response
        .into_body()
        .into_with_config()
        .limit(limit.saturating_add(1))
        .reader();
    let mut body = Vec::with_capacity(expected.unwrap_or(64 << 10).min(limit) as usize);
    let mut buf = [0u8; 16 << 10];
    loop {
        if shared.stopped() {
            return Err(FailReason::Cancelled);
        }
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                body.extend_from_slice(&buf[..n]);
                if body.len() as u64 > limit {
                    return Err(FailReason::TooLarge(limit));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let got = body.len() as u64;
                return Err(match (classify(ureq::Error::from(e)), expected) {
                    (FailReason::Connection(_), Some(expected)) if got < expected => {
                        FailReason::Truncated { got, expected }
                    }
                    (reason, _) => reason,
                });
            }
        }
    }
    if let Some(expected) = expected {
        if (body.len() as u64) < expected {
            return Err(FailReason::Truncated {
                got: body.len() as u64,
                expected,
            });
        }
    }
    check_jpeg(&body, content_type.as_deref(), size, size)?;
    Ok(body)
}

/// Sorts a transport error into retryable (timeout, connection) and final (request) failures.
fn classify(e: ureq::Error) -> FailReason {
    use ureq::Error as E;
    match e {
        E::Timeout(t) => FailReason::Timeout(format!("{t} timeout")),
        E::Io(io) => match io.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                FailReason::Timeout(io.to_string())
            }
            _ => FailReason::Connection(io.to_string()),
        },
        E::HostNotFound | E::ConnectionFailed | E::Protocol(_) | E::BodyStalled => {
            FailReason::Connection(e.to_string())
        }
        E::BodyExceedsLimit(n) => FailReason::TooLarge(n),
        other => FailReason::Request(other.to_string()),
    }
}

/// Parses a Retry-After value: delay-seconds, or an HTTP-date (IMF-fixdate, e.g.
/// `Wed, 21 Oct 2015 07:28:00 GMT`) relative to `now`. A date in the past means no delay.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // "Wed, 21 Oct 2015 07:28:00 GMT"
    let rest = value.split_once(", ").map(|(_, r)| r)?;
    let parts: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m.eq_ignore_ascii_case(month))? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms[..] else {
        return None;
    };
    let when = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(Duration::from_secs(when.saturating_sub(now).max(0) as u64))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Writes the manifest CSV atomically: id, file, status, bytes, sha256, url, attempts, error.
fn write_manifest(path: &Path, out_dir: &Path, outcomes: &[Outcome]) -> Result<(), FetchError> {
    use sdss_io::stack::csv_field;
    use std::io::Write;
    let beside = path.parent() == Some(out_dir);
    sdss_io::atomic::write_atomic(path, |w| {
        writeln!(w, "id,file,status,bytes,sha256,url,attempts,error,ra,dec")?;
        for o in outcomes {
            let file = if beside {
                o.file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                o.file.display().to_string()
            };
            let error = match (&o.error, &o.replaced) {
                (Some(e), _) if e.to_string() == e.kind() => e.kind(),
                (Some(e), _) => format!("{}: {e}", e.kind()),
                (None, Some(r)) => format!("replaced an invalid file ({r})"),
                (None, None) => String::new(),
            };
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{}",
                csv_field(&o.id),
                csv_field(&file),
                o.status,
                o.bytes,
                o.sha256.as_deref().unwrap_or(""),
                csv_field(&o.url),
                o.attempts,
                csv_field(&error),
                o.ra,
                o.dec
            )?;
        }
        Ok(())
    })
    .map_err(|e| FetchError::Manifest {
        path: path.to_owned(),
        source: e,
    })
}

/// A small splitmix64 generator for jitter; seeded from the clock and a counter so that workers differ.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng(nanos
            ^ (COUNTER.fetch_add(1, Ordering::Relaxed) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn galaxy(ra: f64, dec: f64, scale: f64) -> Galaxy {
        Galaxy {
            id: "g".into(),
            ra,
            dec,
            scale,
            line: 2,
        }
    }

    #[test]
    fn urls_append_the_query_the_service_takes() {
        let g = galaxy(0.000_000_1, -0.000_000_1, 0.02 * 12.34);
        assert_eq!(
            cutout_url("http://h/getjpeg", &g, 64),
            "http://h/getjpeg?ra=0&dec=0&scale=0.2468&width=64&height=64"
        );
        assert_eq!(
            cutout_url("http://h/x?opt=G", &galaxy(359.5, -89.25, 1.0), 424),
            "http://h/x?opt=G&ra=359.5&dec=-89.25&scale=1&width=424&height=424"
        );
        assert_eq!(
            cutout_url("http://h/x?", &galaxy(1.0, 2.0, 3.0), 1),
            "http://h/x?ra=1&dec=2&scale=3&width=1&height=1"
        );
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480 - 30);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        // 1445412480 is Wed, 21 Oct 2015 07:28:00 GMT.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_caps_and_honours_retry_after() {
        let options = FetchOptions {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
            ..FetchOptions::default()
        };
        let mut rng = Rng::new();
        let timeout = FailReason::Timeout("x".into());
        for _ in 0..100 {
            let d1 = backoff(&options, 1, &timeout, &mut rng);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = backoff(&options, 3, &timeout, &mut rng);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d9 = backoff(&options, 9, &timeout, &mut rng);
            assert!(
                d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1000),
                "{d9:?}"
            );
        }
        let busy = |s| FailReason::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(s)),
        };
        assert_eq!(
            backoff(&options, 1, &busy(2), &mut rng),
            Duration::from_secs(2)
        );
        assert_eq!(
            backoff(&options, 1, &busy(60), &mut rng),
            Duration::from_secs(5)
        );
        assert!(backoff(&options, 40, &timeout, &mut rng) <= Duration::from_millis(1000));
    }

    #[test]
    fn jitter_spreads() {
        let mut rng = Rng::new();
        let xs: Vec<f64> = (0..1000).map(|_| rng.unit()).collect();
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((mean - 0.5).abs() < 0.05, "{mean}");
    }

    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2015, 10, 21), 16_729);
    }

    #[test]
    fn options_are_checked() {
        let ok = FetchOptions::default();
        assert!(ok.validate().is_ok());
        for bad in [
            FetchOptions {
                size: 0,
                ..ok.clone()
            },
            FetchOptions {
                size: 4096,
                ..ok.clone()
            },
            FetchOptions {
                concurrency: 0,
                ..ok.clone()
            },
            FetchOptions {
                timeout: Duration::ZERO,
                ..ok.clone()
            },
            FetchOptions {
                base_url: "ftp://x".into(),
                ..ok.clone()
            },
        ] {
            assert!(matches!(
                bad.validate(),
                Err(FetchError::InvalidOption { .. })
            ));
        }
    }
}
