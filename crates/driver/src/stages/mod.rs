//! The pipeline's stages, each with a small typed result: the `run` command composes them.

pub mod pca;
