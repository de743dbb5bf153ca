//! The pipeline's stages, each with a small typed result: the `run` command composes them.
//!
//! load and features ([`features`]: `Galaxies`, their features mapped from `features.npy`) → PCA
//! ([`pca`]: `Reduced`) → clustering and metrics ([`cluster`]: `MethodRun`s) → galleries
//! ([`galleries`]: each method's section of the page) → neighbours ([`neighbours`]: the k-NN
//! graph, the browsing pages and the search) → unusual galaxies, map, properties and tables (their own
//! modules, called from `pipeline`) → the page's facts ([`report`]) and `index.html`.

pub mod cluster;
pub mod features;
pub mod galleries;
pub mod neighbours;
pub mod pca;
pub mod report;
