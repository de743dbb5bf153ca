//! Download SDSS SkyServer cutouts for a galaxy catalogue.
//!
//! The original sdss_clustering images are 424×424 JPEG cutouts from the SDSS SkyServer `ImgCutout`
//! service, centred on each galaxy's (ra, dec), with a pixel scale of 0.02 × its Petrosian half-light
//! radius (`petroR50`, arcsec), so that every image spans 8.48 half-light radii. This crate turns a
//! catalogue CSV into such a folder of images:
//!
//! - [`read_catalog`] parses and checks the catalogue (`id`, `ra`, `dec`, and `petroR50` or `scale`),
//!   reporting every bad row with its line number before anything is downloaded;
//! - [`cutout_url`] builds the request (`ra`, `dec`, `scale`, `width`, `height` appended to the endpoint,
//!   [`DR17_GETJPEG`] by default);
//! - [`fetch_catalog`] downloads with bounded concurrency and a per-request timeout, retries timeouts,
//!   connection errors, 429 and 5xx with exponential backoff and jitter (honouring Retry-After) but not
//!   other 4xx, checks each body with [`check_jpeg`] (complete JPEG of the requested size; an HTML error
//!   page, an empty or cut-short body, or a wrong size is a failure, never a saved image), saves it
//!   atomically, skips files already present and valid (resume), writes a manifest CSV (`id, file,
//!   status, bytes, sha256, url, attempts, error`), and stops cleanly when a shared flag is set (Ctrl-C),
//!   leaving no partial file.
//!
//! Progress goes through the [`FetchProgress`] trait, so the crate draws nothing itself.
//!
//! # Example
//!
//! Reading a catalogue and building the cutout URLs (runs without network):
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("galaxies.csv");
//! std::fs::write(&path, "id,ra,dec,petroR50\nM87,187.70593,12.39112,40.0\nNGC4472,187.44499,8.00041,25.0\n")?;
//! let galaxies = sdss_fetch::read_catalog(&path)?;
//! assert_eq!(galaxies.len(), 2);
//! // scale = 0.02 x petroR50 arcsec/pixel
//! assert_eq!(galaxies[0].scale, 0.8);
//! let url = sdss_fetch::cutout_url(sdss_fetch::DR17_GETJPEG, &galaxies[0], 424);
//! assert!(url.ends_with("getjpeg?ra=187.70593&dec=12.39112&scale=0.8&width=424&height=424"));
//!
//! // Bad rows are all reported, each with its line number.
//! std::fs::write(&path, "id,ra,dec,petroR50\nA,361,0,1\nB,10,abc,1\nA,10,0,-2\n")?;
//! let err = sdss_fetch::read_catalog(&path).unwrap_err().to_string();
//! assert!(err.contains("line 2: ra 361 outside [0, 360)"));
//! assert!(err.contains("line 3: dec `abc` is not a finite number"));
//! assert!(err.contains("line 4: duplicate id `A` (first on line 2); petroR50 -2 must be positive"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Fetching (needs the network, so not run here):
//!
//! ```no_run
//! use std::sync::{atomic::AtomicBool, Arc};
//! use sdss_fetch::{fetch_catalog, read_catalog, FetchOptions, NoProgress};
//!
//! let galaxies = read_catalog("galaxies.csv")?;
//! let cancel = Arc::new(AtomicBool::new(false)); // set it from a Ctrl-C handler
//! let report = fetch_catalog(
//!     &galaxies,
//!     "images".as_ref(),
//!     &FetchOptions::default(),
//!     &cancel,
//!     &mut NoProgress,
//! )?;
//! for failed in report.failures() {
//!     eprintln!("{}: {}", failed.id, failed.error.as_ref().unwrap());
//! }
//! println!("manifest: {}", report.manifest.display());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod catalog;
mod error;
mod fetch;
#[cfg(feature = "test-server")]
pub mod testing;
mod validate;

pub use catalog::{parse_catalog, read_catalog, Galaxy, SCALE_PER_PETRO_R50};
pub use error::{CatalogError, FailReason, FetchError, RowProblem};
pub use fetch::{
    cutout_url, fetch_catalog, FetchOptions, FetchProgress, FetchReport, NoProgress, Outcome,
    Status, DEFAULT_SIZE, DR17_GETJPEG, MANIFEST_NAME, MAX_SIZE,
};
pub use validate::check_jpeg;
