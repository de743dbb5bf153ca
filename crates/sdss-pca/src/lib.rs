//! Principal component analysis with scikit-learn semantics, on faer.
//!
//! [`Pca`] holds the options (scikit-learn's `n_components`, `whiten`, `svd_solver`,
//! `n_oversamples`, `iterated_power`, `random_state`); [`Pca::fit`] takes an ndarray matrix
//! (n_samples x n_features, `f32` or `f64`) and returns a [`FittedPca`] with scikit-learn's
//! fitted attributes (`components`, `explained_variance`, `explained_variance_ratio`,
//! `singular_values`, `mean`, `noise_variance`), `transform`, `inverse_transform`, and
//! `save` / `load` (a folder of `.npy` files plus `pca.json`).
//!
//! Solvers ([`SvdSolver`]): `full` (thin SVD), `covariance_eigh` (eigendecomposition of the
//! covariance, for few features) and `randomized` (seeded block Krylov randomized SVD, reading
//! the data in place), chosen by `auto` exactly as scikit-learn's `PCA` chooses. A matrix too
//! large to hold is fitted block by block with [`Pca::fit_blocks`] (the randomized solver over
//! [`RowBlocks`], e.g. a memory-mapped `.npy`) and projected with
//! [`FittedPca::transform_blocks`]. Components are
//! sign-fixed as scikit-learn's `svd_flip` does, so results are deterministic and comparable.
//!
//! ```
//! use ndarray::Array2;
//! use sdss_pca::{FittedPca, NComponents, Pca, SvdSolver};
//!
//! // 300 "galaxies" with 40 correlated features.
//! let x = Array2::from_shape_fn((300, 40), |(i, j)| {
//!     let t = i as f32 / 300.0;
//!     (t * (j as f32 + 1.0)).sin() + 0.1 * ((i * 7 + j * 3) % 5) as f32
//! });
//!
//! // Keep enough components for 95% of the variance.
//! let model = Pca::new(0.95).fit(x.view())?;
//! assert!(model.total_explained_variance_ratio() > 0.95);
//! assert_eq!(model.svd_solver(), SvdSolver::Full); // scikit-learn's `auto` for this shape
//!
//! let reduced = model.transform(x.view())?;
//! assert_eq!(reduced.dim(), (300, model.n_components()));
//! let back = model.inverse_transform(reduced.view())?;
//! assert_eq!(back.dim(), (300, 40));
//!
//! // Save, load, and project new data into the same space.
//! let dir = tempfile::tempdir().unwrap();
//! model.save(dir.path())?;
//! let loaded = FittedPca::<f32>::load(dir.path())?;
//! assert_eq!(loaded.transform(x.view())?, reduced);
//!
//! // A count, whitened, with the randomized solver chosen explicitly.
//! let whitened = Pca::new(NComponents::Count(3))
//!     .whiten(true)
//!     .svd_solver(SvdSolver::Randomized)
//!     .random_state(7)
//!     .fit(x.view())?;
//! assert_eq!(whitened.components().dim(), (3, 40));
//! # Ok::<(), sdss_pca::PcaError>(())
//! ```

mod error;
mod float;
mod io;
mod linalg;
mod pca;
mod streamed;
mod symeig;
mod syrk;

pub use error::PcaError;
pub use float::PcaFloat;
pub use io::MODEL_JSON;
pub use pca::{
    krylov_block_width, FittedPca, NComponents, Pca, SvdSolver, DEFAULT_ITERATED_POWER,
    DEFAULT_N_OVERSAMPLES,
};
pub use streamed::{BlockVisitor, InBlocks, RowBlocks, MAPPED_BLOCK_BYTES};
