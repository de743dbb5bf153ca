//! Feature matrices too large to hold: written to a `.npy` file a batch at a time
//! ([`NpyMatrixWriter`]) and read back through a memory map ([`MappedMatrix`]), block by block.
//!
//! The file is an ordinary little-endian `float32` `.npy` that numpy opens with
//! `np.load(path, mmap_mode="r")`. While a matrix is written its rows are not known (bad images may
//! be skipped), so the header is written for the most rows it may get, padded, and rewritten with
//! the rows it got when the writer finishes; the data never move.
//!
//! ```
//! use ndarray::array;
//! use sdss_io::mapped::{MappedMatrix, NpyMatrixWriter};
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("features.npy");
//! // Up to 10 rows of 2 features; 3 arrive, in two batches.
//! let mut writer = NpyMatrixWriter::create(&path, 2, 10)?;
//! writer.append(array![[1.0f32, 2.0], [3.0, 4.0]].view())?;
//! writer.append(array![[5.0f32, 6.0]].view())?;
//! writer.finish()?;
//!
//! let matrix = MappedMatrix::open(&path)?;
//! assert_eq!(matrix.view(), array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]);
//! let mut sums = Vec::new();
//! matrix.for_each_block(2, |start, block| {
//!     sums.push((start, block.sum()));
//!     Ok::<(), sdss_io::IoError>(())
//! })?;
//! assert_eq!(sums, vec![(0, 10.0), (2, 11.0)]);
//! # Ok::<(), sdss_io::IoError>(())
//! ```

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ndarray::{ArrayView2, Axis};

use crate::error::{IoError, Result};
use crate::npy::{npy_header_at_least, parse_header};

/// Writes an `(N, D)` `float32` `.npy` file a batch of rows at a time, without holding it.
///
/// The file appears at its path only when [`finish`](Self::finish) succeeds (it is written under a
/// hidden temporary name beside it and renamed); a writer dropped unfinished removes its temporary
/// file, and one killed leaves only a `.tmp-` file, which never looks like a result.
pub struct NpyMatrixWriter {
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
    cols: usize,
    rows: usize,
    max_rows: usize,
    header_len: usize,
    buffer: Vec<u8>,
}

impl NpyMatrixWriter {
    /// Starts `path` for rows of `cols` values, at most `max_rows` of them.
    pub fn create(path: impl AsRef<Path>, cols: usize, max_rows: usize) -> Result<Self> {
        let path = path.as_ref().to_owned();
        // The temporary name `atomic` uses, which leftover sweeps recognise.
        let tmp = crate::atomic::temp_path_for(&path);
        let file = File::create(&tmp).map_err(|e| IoError::io(&tmp, e))?;
        let header = npy_header_at_least("<f4", &[max_rows, cols], 0);
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header).map_err(|e| IoError::io(&tmp, e))?;
        Ok(Self {
            out: Some(out),
            tmp,
            path,
            cols,
            rows: 0,
            max_rows,
            header_len: header.len(),
            buffer: Vec::new(),
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends `rows` (any memory layout) after the rows already written.
    pub fn append(&mut self, rows: ArrayView2<'_, f32>) -> Result<()> {
        if rows.ncols() != self.cols {
            return Err(IoError::NpyShape {
                path: self.path.clone(),
                found: rows.shape().to_vec(),
                expected: format!("(rows, {})", self.cols),
            });
        }
        if self.rows + rows.nrows() > self.max_rows {
            return Err(IoError::NpyFormat {
                path: self.path.clone(),
                reason: format!(
                    "{} rows would be written, but the file was started for at most {}",
                    self.rows + rows.nrows(),
                    self.max_rows
                ),
            });
        }
        let Some(out) = self.out.as_mut() else {
            return Err(IoError::NpyFormat {
                path: self.path.clone(),
                reason: "written after an earlier write failed".into(),
            });
        };
        self.buffer.clear();
        self.buffer.reserve(rows.len() * 4);
        for &v in rows.iter() {
            self.buffer.extend_from_slice(&v.to_le_bytes());
        }
        if let Err(e) = out.write_all(&self.buffer) {
            self.out = None;
            return Err(IoError::io(&self.tmp, e));
        }
        self.rows += rows.nrows();
        Ok(())
    }

    /// Writes the header for the rows written, flushes to disk and moves the file into place.
    pub fn finish(mut self) -> Result<PathBuf> {
        let tmp = self.tmp.clone();
        let io = |e| IoError::io(&tmp, e);
        let Some(out) = self.out.take() else {
            return Err(IoError::NpyFormat {
                path: self.path.clone(),
                reason: "finished after a write failed".into(),
            });
        };
        let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
        let header = npy_header_at_least("<f4", &[self.rows, self.cols], self.header_len);
        // Fewer rows never need a longer header (their shape has no more digits).
        if header.len() != self.header_len {
            return Err(IoError::NpyFormat {
                path: self.path.clone(),
                reason: "the final header does not fit the space kept for it".into(),
            });
        }
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&header).map_err(io)?;
        let len = (self.header_len + self.rows * self.cols * 4) as u64;
        file.set_len(len).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| IoError::io(&self.path, e))?;
        Ok(self.path.clone())
    }
}

impl Drop for NpyMatrixWriter {
    fn drop(&mut self) {
        // Unfinished: the partial file is nobody's result.
        if self.out.is_some() || self.tmp.exists() {
            self.out = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A little-endian `float32` `(N, D)` C-order `.npy` file, memory-mapped read-only.
///
/// [`view`](Self::view) is the whole matrix without copying it; the operating system reads the
/// pages touched. [`for_each_block`](Self::for_each_block) walks it a block of rows at a time and
/// hands each block's pages back after it, so a pass over a file larger than memory keeps the
/// process's resident memory at about one block.
pub struct MappedMatrix {
    map: memmap2::Mmap,
    path: PathBuf,
    rows: usize,
    cols: usize,
    data_start: usize,
}

impl std::fmt::Debug for MappedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedMatrix")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish()
    }
}

impl MappedMatrix {
    /// Maps `path`. Refused with a typed error naming the file: another dtype or byte order
    /// (read those with [`crate::npy::read_matrix_f32`]), Fortran order, not two dimensions, or
    /// fewer data bytes than the header's shape needs.
    ///
    /// The map is read-only and private to this process's view of the file: the file must not be
    /// changed while it is mapped (this crate's writers never change a finished file; they replace
    /// it by renaming, which leaves the mapped one intact).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let file = File::open(&path).map_err(|e| IoError::io(&path, e))?;
        // SAFETY: the map is read-only; the crate's writers replace files by rename rather than
        // writing into them, so the mapped bytes do not change under the view (the documented
        // condition above for anything else that writes the file).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| IoError::io(&path, e))?;
        let header = parse_header(&path, &map)?;
        let bad = |reason: String| IoError::NpyFormat {
            path: path.clone(),
            reason,
        };
        let kind = header.descr.trim_start_matches(['<', '=', '|']);
        if kind != "f4" || header.descr.starts_with('>') || cfg!(target_endian = "big") {
            return Err(IoError::NpyDtype {
                path: path.clone(),
                found: header.descr.clone(),
                expected: "<f4 (little-endian float32) to memory-map".into(),
            });
        }
        if header.fortran {
            return Err(bad(
                "Fortran order cannot be read a block of rows at a time".into(),
            ));
        }
        let [rows, cols] = header.shape[..] else {
            return Err(IoError::NpyShape {
                path: path.clone(),
                found: header.shape.clone(),
                expected: "(N, D)".into(),
            });
        };
        let needed = rows
            .checked_mul(cols)
            .and_then(|c| c.checked_mul(4))
            .and_then(|b| b.checked_add(header.data_start))
            .ok_or_else(|| bad(format!("shape ({rows}, {cols}) overflows")))?;
        if map.len() < needed {
            return Err(bad(format!(
                "truncated: shape ({rows}, {cols}) needs {needed} bytes, file has {}",
                map.len()
            )));
        }
        if header.data_start % 4 != 0 {
            return Err(bad(format!(
                "data start at byte {}, not on a 4-byte boundary",
                header.data_start
            )));
        }
        Ok(Self {
            map,
            path,
            rows,
            cols,
            data_start: header.data_start,
        })
    }

    /// The file mapped.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of rows (galaxies).
    pub fn nrows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    pub fn ncols(&self) -> usize {
        self.cols
    }

    /// Bytes of data (rows × columns × 4).
    pub fn data_bytes(&self) -> usize {
        self.rows * self.cols * 4
    }

    /// The whole matrix, read from the file as it is touched.
    pub fn view(&self) -> ArrayView2<'_, f32> {
        let bytes = &self.map[self.data_start..self.data_start + self.data_bytes()];
        // Invariant: `open` checked the length, the 4-byte alignment of the data (the map itself
        // starts on a page boundary) and that rows × cols does not overflow, so neither the cast
        // nor the shape can fail.
        let values: &[f32] = bytemuck::try_cast_slice(bytes)
            .expect("open() checked the data's length and alignment");
        ArrayView2::from_shape((self.rows, self.cols), values)
            .expect("open() checked that the data hold rows x cols values")
    }

    /// Calls `f(first_row, block)` on consecutive blocks of `rows_per_block` rows (the last may be
    /// shorter), handing each block's pages back to the system after `f` returns; stops at `f`'s
    /// first error.
    pub fn for_each_block<E>(
        &self,
        rows_per_block: usize,
        mut f: impl FnMut(usize, ArrayView2<'_, f32>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let step = rows_per_block.max(1);
        let view = self.view();
        for (b, block) in view.axis_chunks_iter(Axis(0), step).enumerate() {
            let start = b * step;
            f(start, block)?;
            self.release_rows(start, start + block.nrows());
        }
        Ok(())
    }

    /// Rows per block for blocks of about `bytes` bytes (at least one row).
    pub fn rows_per_block(&self, bytes: usize) -> usize {
        (bytes / (self.cols.max(1) * 4)).max(1)
    }

    /// Tells the system the pages of rows `start..end` are not needed soon: they leave this
    /// process's resident memory (the page cache may keep them) and are read again if touched.
    pub fn release_rows(&self, start: usize, end: usize) {
        let page = 4096;
        let from = self.data_start + start * self.cols * 4;
        let to = self.data_start + end.min(self.rows) * self.cols * 4;
        // Whole pages inside the range only: a page shared with the next block stays.
        let first = from.div_ceil(page) * page;
        let last = to / page * page;
        #[cfg(unix)]
        if last > first {
            // SAFETY: the map is a read-only shared mapping of the file, so dropped pages are
            // read back from the file unchanged when touched again (the unsoundness of
            // MADV_DONTNEED is for private, written mappings, whose changes it discards). Advice
            // only: a refusal changes nothing but memory use.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    first,
                    last - first,
                )
            };
        }
    }
}
