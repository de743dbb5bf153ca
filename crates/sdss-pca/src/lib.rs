//! Principal component analysis with scikit-learn semantics, on faer.
