//! Typed errors of the neighbour search.

use thiserror::Error;

/// Everything that can go wrong when building or querying an index.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum NeighborError {
    /// A matrix (or a list) with nothing in it.
    #[error("{what} is empty")]
    Empty {
        /// What was empty, e.g. "feature matrix".
        what: &'static str,
    },
    /// A NaN or infinity in the input.
    #[error("{what}: non-finite value {value} at row {row}, column {col}")]
    NonFinite {
        /// Which input, e.g. "feature matrix" or "query".
        what: &'static str,
        /// Row of the bad value.
        row: usize,
        /// Column of the bad value.
        col: usize,
        /// The value itself.
        value: f32,
    },
    /// More neighbours asked for than there are candidates.
    #[error("k = {k} neighbours asked for, but only {available} {what}")]
    TooManyNeighbors {
        /// The requested k.
        k: usize,
        /// How many candidates exist.
        available: usize,
        /// What the candidates are, e.g. "galaxies in the index".
        what: &'static str,
    },
    /// `k = 0`.
    #[error("k must be at least 1")]
    ZeroNeighbors,
    /// A query whose length differs from the index's feature count.
    #[error("query has {found} features, the index has {expected}")]
    DimensionMismatch {
        /// Features of the index.
        expected: usize,
        /// Features of the query.
        found: usize,
    },
    /// Ids and feature rows do not pair up.
    #[error("{ids} galaxy ids for {rows} feature rows")]
    LengthMismatch {
        /// Number of ids.
        ids: usize,
        /// Number of feature rows.
        rows: usize,
    },
    /// An id that is not in the set.
    #[error("unknown galaxy id `{0}`")]
    UnknownId(String),
    /// The same id twice in the id list.
    #[error("galaxy id `{id}` appears twice (rows {first} and {second})")]
    DuplicateId {
        /// The id.
        id: String,
        /// Its first row.
        first: usize,
        /// Its second row.
        second: usize,
    },
    /// A row index past the end.
    #[error("row {row} is out of range for an index of {len} rows")]
    RowOutOfRange {
        /// The row asked for.
        row: usize,
        /// Rows in the index.
        len: usize,
    },
    /// A parameter outside its valid range.
    #[error("invalid {name}: {reason}")]
    InvalidParameter {
        /// The parameter, e.g. "threshold".
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, NeighborError>;
