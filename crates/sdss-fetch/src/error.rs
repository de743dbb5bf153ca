//! Error types: a bad catalogue, a fatal fetch error, and why one galaxy's download failed.

use std::path::PathBuf;
use std::time::Duration;

/// One bad catalogue row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// 1-based line number in the catalogue file.
    pub line: usize,
    /// Everything wrong with the row, `; `-separated.
    pub reason: String,
}

/// Why a catalogue cannot be used. Nothing is downloaded when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read or is not well-formed CSV.
    #[error("catalogue {}: {source}", path.display())]
    Read {
        /// The catalogue.
        path: PathBuf,
        /// What went wrong.
        source: sdss_io::IoError,
    },
    /// The header lacks required columns, or the file has no rows.
    #[error("catalogue {}: {reason}", path.display())]
    Header {
        /// The catalogue.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Some rows are bad; all of them are listed.
    #[error("catalogue {}: {} bad row(s):{}", path.display(), problems.len(), list_rows(problems))]
    Rows {
        /// The catalogue.
        path: PathBuf,
        /// Every bad row, in file order.
        problems: Vec<RowProblem>,
    },
}

fn list_rows(problems: &[RowProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("\n  line {}: {}", p.line, p.reason))
        .collect()
}

/// A fatal error of a fetch run (as opposed to one galaxy failing, which is a [`FailReason`] in the
/// report).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// An option is out of range.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The output folder could not be created or read.
    #[error("output folder {}: {source}", path.display())]
    OutputFolder {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest could not be written.
    #[error("manifest {}: {source}", path.display())]
    Manifest {
        /// The manifest path.
        path: PathBuf,
        /// What went wrong.
        source: sdss_io::IoError,
    },
    /// Two catalogue ids map to the same file (the catalogue was not made by [`crate::read_catalog`]).
    #[error("galaxies `{first}` and `{second}` would both be saved as {file}")]
    DuplicateFile {
        /// First id.
        first: String,
        /// Second id.
        second: String,
        /// The shared file name.
        file: String,
    },
    /// A worker thread could not be started.
    #[error("could not start a download thread: {0}")]
    Thread(std::io::Error),
}

/// Why one galaxy's image was not saved (after all attempts), or why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailReason {
    /// The server answered with an error status.
    #[error("HTTP {status}{}", retry_after.map(|d| format!(" (Retry-After {} s)", d.as_secs_f64())).unwrap_or_default())]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The server's Retry-After, if it sent one.
        retry_after: Option<Duration>,
    },
    /// No complete response within the per-request timeout.
    #[error("timed out ({0})")]
    Timeout(String),
    /// The connection failed or broke (refused, reset, closed early).
    #[error("connection error: {0}")]
    Connection(String),
    /// The body ended before the announced Content-Length.
    #[error("truncated body: {got} of {expected} bytes")]
    Truncated {
        /// Bytes received.
        got: u64,
        /// Bytes announced by Content-Length.
        expected: u64,
    },
    /// The body is empty.
    #[error("empty body")]
    Empty,
    /// The body is an HTML (or other non-JPEG) page, e.g. an error page served with status 200.
    #[error("not a JPEG ({content_type}): {snippet}")]
    NotJpeg {
        /// The Content-Type header, or `unknown`.
        content_type: String,
        /// The start of the body, as text.
        snippet: String,
    },
    /// The JPEG does not decode (corrupt or cut short).
    #[error("corrupt JPEG: {0}")]
    Corrupt(String),
    /// The JPEG decodes but has the wrong size.
    #[error("wrong image size {got_width}x{got_height}, expected {width}x{height}")]
    WrongSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// Received width.
        got_width: u32,
        /// Received height.
        got_height: u32,
    },
    /// The body exceeds the size limit.
    #[error("body larger than {0} bytes")]
    TooLarge(u64),
    /// The request could not be made at all (bad URL, TLS setup, ...).
    #[error("request error: {0}")]
    Request(String),
    /// The image could not be saved.
    #[error("could not save: {0}")]
    Save(String),
    /// The run was cancelled before this galaxy finished.
    #[error("cancelled")]
    Cancelled,
}

impl FailReason {
    /// Whether another attempt may succeed: timeouts, connection errors, truncated, empty, non-JPEG or
    /// corrupt bodies (overloaded servers send HTML error pages with status 200; a connection closed early
    /// cuts a JPEG short), 429 and 5xx. Other 4xx, wrong sizes, oversized bodies and local errors are
    /// final.
    pub fn is_retryable(&self) -> bool {
        match self {
            FailReason::Status { status, .. } => *status == 429 || (500..600).contains(status),
            FailReason::Timeout(_)
            | FailReason::Connection(_)
            | FailReason::Truncated { .. }
            | FailReason::Empty
            | FailReason::NotJpeg { .. }
            | FailReason::Corrupt(_) => true,
            FailReason::WrongSize { .. }
            | FailReason::TooLarge(_)
            | FailReason::Request(_)
            | FailReason::Save(_)
            | FailReason::Cancelled => false,
        }
    }

    /// A short machine-friendly kind: `http-404`, `timeout`, `connection`, `truncated`, `empty`,
    /// `not-jpeg`, `corrupt`, `wrong-size`, `too-large`, `request`, `save`, `cancelled`.
    pub fn kind(&self) -> String {
        match self {
            FailReason::Status { status, .. } => format!("http-{status}"),
            FailReason::Timeout(_) => "timeout".into(),
            FailReason::Connection(_) => "connection".into(),
            FailReason::Truncated { .. } => "truncated".into(),
            FailReason::Empty => "empty".into(),
            FailReason::NotJpeg { .. } => "not-jpeg".into(),
            FailReason::Corrupt(_) => "corrupt".into(),
            FailReason::WrongSize { .. } => "wrong-size".into(),
            FailReason::TooLarge(_) => "too-large".into(),
            FailReason::Request(_) => "request".into(),
            FailReason::Save(_) => "save".into(),
            FailReason::Cancelled => "cancelled".into(),
        }
    }
}
