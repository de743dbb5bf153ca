//! The element types a PCA can be fitted on.

use std::fmt::{Debug, Display};

/// Floating-point element type accepted by [`crate::Pca`]: `f32` or `f64`.
///
/// Large products run in this type (so `f32` data stays `f32`, as in scikit-learn); sums, variances
/// and the small dense decompositions run in `f64`. The trait is sealed: only `f32` and `f64`
/// implement it.
pub trait PcaFloat:
    faer::traits::RealField
    + ndarray::NdFloat
    + Copy
    + Send
    + Sync
    + Debug
    + Display
    + Default
    + sdss_io::npy::NpyElement
    + private::Sealed
    + 'static
{
    /// The NumPy name of this type (`"float32"` or `"float64"`), as written in saved models.
    const DTYPE: &'static str;
    /// Machine epsilon of this type, as `f64`.
    const EPSILON_F64: f64;
    /// Converts to `f64` (exact for both types).
    fn as_f64(self) -> f64;
    /// Converts from `f64`, rounding to nearest for `f32`.
    fn of_f64(v: f64) -> Self;
}

impl PcaFloat for f32 {
    const DTYPE: &'static str = "float32";
    const EPSILON_F64: f64 = f32::EPSILON as f64;
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn of_f64(v: f64) -> Self {
        v as f32
    }
}

impl PcaFloat for f64 {
    const DTYPE: &'static str = "float64";
    const EPSILON_F64: f64 = f64::EPSILON;
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn of_f64(v: f64) -> Self {
        v
    }
}

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}
