//! PCA of a matrix read a block of rows at a time ([`RowBlocks`]): a memory-mapped feature file
//! larger than memory, say.
//!
//! [`Pca::fit_blocks`] is the randomized solver of [`SvdSolver::Randomized`] with its products
//! taken block by block: one pass for the column means and the total variance, then one pass per
//! product with the data (two per Krylov step: 14 with the defaults), never holding more than a
//! block of the data plus the solver's `(n_samples + n_features) x basis` workspace. The
//! arithmetic is the in-memory solver's, so the two agree to rounding (the blocks only change
//! the order of the sums). [`FittedPca::transform_blocks`] projects block by block.

use faer::linalg::matmul::matmul;
use faer::prelude::ReborrowMut;
use faer::{Accum, MatMut, MatRef};
use ndarray::{s, Array2, ArrayView2, Axis};

use crate::linalg::{as_faer, check_finite, par, RunningStats};
use crate::pca::{randomized_svd, CentredProducts};
use crate::{FittedPca, NComponents, Pca, PcaError, PcaFloat, SvdSolver};

/// What [`RowBlocks::for_each_block`] calls on each block: `(first_row, block)`.
pub type BlockVisitor<'v, F> = dyn FnMut(usize, ArrayView2<'_, F>) -> Result<(), PcaError> + 'v;

/// A matrix (n_samples x n_features) that is read a block of consecutive rows at a time.
pub trait RowBlocks<F: PcaFloat> {
    /// Rows (samples).
    fn nrows(&self) -> usize;
    /// Columns (features).
    fn ncols(&self) -> usize;
    /// Calls `f(first_row, block)` on consecutive blocks covering every row once, in order;
    /// stops at the first error.
    fn for_each_block(&self, f: &mut BlockVisitor<'_, F>) -> Result<(), PcaError>;
}

/// Bytes of data per block when a [`sdss_io::mapped::MappedMatrix`] is read: large enough that
/// each block's products run at full speed, small enough to stay in memory beside anything.
pub const MAPPED_BLOCK_BYTES: usize = 64 << 20;

impl RowBlocks<f32> for sdss_io::mapped::MappedMatrix {
    fn nrows(&self) -> usize {
        sdss_io::mapped::MappedMatrix::nrows(self)
    }
    fn ncols(&self) -> usize {
        sdss_io::mapped::MappedMatrix::ncols(self)
    }
    fn for_each_block(&self, f: &mut BlockVisitor<'_, f32>) -> Result<(), PcaError> {
        let rows = self.rows_per_block(MAPPED_BLOCK_BYTES);
        sdss_io::mapped::MappedMatrix::for_each_block(self, rows, f)
    }
}

/// An in-memory matrix read in blocks of `rows` rows (to test a streamed fit against the
/// in-memory one, or to bound the working set of a projection).
#[derive(Debug, Clone, Copy)]
pub struct InBlocks<'a, F> {
    /// The matrix.
    pub x: ArrayView2<'a, F>,
    /// Rows per block (at least 1 is used).
    pub rows: usize,
}

impl<F: PcaFloat> RowBlocks<F> for InBlocks<'_, F> {
    fn nrows(&self) -> usize {
        self.x.nrows()
    }
    fn ncols(&self) -> usize {
        self.x.ncols()
    }
    fn for_each_block(&self, f: &mut BlockVisitor<'_, F>) -> Result<(), PcaError> {
        let step = self.rows.max(1);
        for (b, block) in self.x.axis_chunks_iter(Axis(0), step).enumerate() {
            f(b * step, block)?;
        }
        Ok(())
    }
}

/// The centred products of [`CentredProducts`] taken block by block.
struct Streamed<'a, F: PcaFloat, S: RowBlocks<F> + ?Sized> {
    source: &'a S,
    _f: std::marker::PhantomData<F>,
}

impl<F: PcaFloat, S: RowBlocks<F> + ?Sized> CentredProducts<F> for Streamed<'_, F, S> {
    fn dim(&self) -> (usize, usize) {
        (self.source.nrows(), self.source.ncols())
    }

    fn mul_into(
        &self,
        mut dst: MatMut<'_, F>,
        mean: &[f64],
        w: MatRef<'_, F>,
    ) -> Result<(), PcaError> {
        self.source.for_each_block(&mut |start, block| {
            let rows = dst.rb_mut().subrows_mut(start, block.nrows());
            crate::pca::centred_mul_into(rows, as_faer(block), mean, w);
            Ok(())
        })
    }

    fn tmul_into(
        &self,
        mut dst: MatMut<'_, F>,
        mean: &[f64],
        y: MatRef<'_, F>,
    ) -> Result<(), PcaError> {
        dst.fill(F::of_f64(0.0));
        self.source.for_each_block(&mut |start, block| {
            matmul(
                dst.rb_mut(),
                Accum::Add,
                as_faer(block).transpose(),
                y.subrows(start, block.nrows()),
                F::of_f64(1.0),
                par(),
            );
            Ok(())
        })?;
        // Aᵀ Y = Xᵀ Y - μ (1ᵀ Y), as in memory.
        for c in 0..y.ncols() {
            let col_sum: f64 = y.col(c).iter().map(|v| v.as_f64()).sum();
            for (j, v) in dst.rb_mut().col_mut(c).iter_mut().enumerate() {
                *v -= F::of_f64(mean[j] * col_sum);
            }
        }
        Ok(())
    }
}

impl Pca {
    /// Fits on a matrix read a block of rows at a time, never holding it: the randomized solver
    /// (the only one that needs nothing but products with the data), so the options must ask
    /// for a count of components (or all) and `auto` or `randomized`.
    ///
    /// ```
    /// use ndarray::Array2;
    /// use sdss_pca::{InBlocks, Pca};
    ///
    /// let x = Array2::from_shape_fn((500, 30), |(i, j)| ((i * (j + 1)) as f32 * 0.01).sin());
    /// let pca = Pca::new(5).random_state(3);
    /// let streamed = pca.fit_blocks(&InBlocks { x: x.view(), rows: 64 })?;
    /// let in_memory = pca.svd_solver(sdss_pca::SvdSolver::Randomized).fit(x.view())?;
    /// let gap = (streamed.total_explained_variance_ratio()
    ///     - in_memory.total_explained_variance_ratio())
    /// .abs();
    /// assert!(gap < 1e-6);
    /// let reduced = streamed.transform_blocks(&InBlocks { x: x.view(), rows: 64 })?;
    /// assert_eq!(reduced.dim(), (500, 5));
    /// # Ok::<(), sdss_pca::PcaError>(())
    /// ```
    pub fn fit_blocks<F: PcaFloat, S: RowBlocks<F> + ?Sized>(
        &self,
        source: &S,
    ) -> Result<FittedPca<F>, PcaError> {
        let (n, p) = (source.nrows(), source.ncols());
        if n < 2 {
            return Err(PcaError::TooFewSamples { n_samples: n });
        }
        if p == 0 {
            return Err(PcaError::NoFeatures);
        }
        if !matches!(self.svd_solver, SvdSolver::Auto | SvdSolver::Randomized) {
            return Err(PcaError::InvalidParameter {
                name: "svd_solver",
                reason: format!(
                    "a fit read block by block runs the randomized solver only, not `{}`",
                    self.svd_solver
                ),
            });
        }
        if let NComponents::Count(k) = self.n_components {
            if k == 0 || k > n.min(p) {
                return Err(PcaError::InvalidNComponents {
                    n_components: k,
                    max: n.min(p),
                });
            }
        }
        let k = crate::pca::randomized_rank(self.n_components, n, p)?;
        let stats = block_stats(source)?;
        let spectrum = randomized_svd(
            &Streamed {
                source,
                _f: std::marker::PhantomData,
            },
            &stats.mean,
            k,
            self.n_oversamples,
            self.iterated_power,
            self.random_state,
            stats.total_var,
        )?;
        let (model, _) =
            self.assemble(spectrum, stats.mean, (n, p), SvdSolver::Randomized, false)?;
        Ok(model)
    }
}

impl<F: PcaFloat> FittedPca<F> {
    /// [`FittedPca::transform`] of a matrix read a block of rows at a time.
    pub fn transform_blocks<S: RowBlocks<F> + ?Sized>(
        &self,
        source: &S,
    ) -> Result<Array2<F>, PcaError> {
        let mut out = Array2::<F>::zeros((source.nrows(), self.n_components()));
        source.for_each_block(&mut |start, block| {
            let projected = self.transform(block)?;
            out.slice_mut(s![start..start + block.nrows(), ..])
                .assign(&projected);
            Ok(())
        })?;
        Ok(out)
    }
}

impl<F: PcaFloat> FittedPca<F> {
    /// [`FittedPca::explained_variance_ratio_of`] for data read a block of rows at a time: the
    /// variance each component explains of all of `source`, given `projected`, this model's
    /// projection of it (after a fit on a sample, what the sample's components reach on all).
    pub fn explained_variance_ratio_of_blocks<S: RowBlocks<F> + ?Sized>(
        &self,
        source: &S,
        projected: ArrayView2<'_, F>,
    ) -> Result<ndarray::Array1<f64>, PcaError> {
        self.check_projection(
            source.nrows(),
            projected,
            "explained_variance_ratio_of_blocks",
        )?;
        let total = block_stats(source)?.total_var;
        Ok(self.ratios_of_projection(projected, total))
    }
}

/// Column means and total variance over the blocks, shifted by the first row; a non-finite
/// value is reported with its row and column.
fn block_stats<F: PcaFloat, S: RowBlocks<F> + ?Sized>(
    source: &S,
) -> Result<crate::linalg::ColumnStats, PcaError> {
    let mut running: Option<RunningStats> = None;
    let mut bad: Option<PcaError> = None;
    source.for_each_block(&mut |start, block| {
        let stats = running.get_or_insert_with(|| {
            RunningStats::new(block.row(0).iter().map(|v| v.as_f64()).collect())
        });
        stats.add(block);
        if bad.is_none() {
            bad = check_finite(block).err().map(|e| match e {
                PcaError::NonFinite {
                    what,
                    row,
                    col,
                    value,
                } => PcaError::NonFinite {
                    what,
                    row: row + start,
                    col,
                    value,
                },
                other => other,
            });
        }
        Ok(())
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    running
        .and_then(RunningStats::finish)
        .ok_or(PcaError::Overflow)
}
