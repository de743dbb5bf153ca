//! Reading and writing NumPy `.npy` files (format versions 1.0, 2.0 and 3.0).
//!
//! Supported dtypes: `f4`, `f8`, `u1`, `i4` and `i8`, either byte order on reading, C or Fortran order on
//! reading; files are always written little-endian, C order, version 1.0 (2.0 when the header needs it),
//! with the header padded to a multiple of 64 bytes exactly as `numpy.save` does.
//!
//! ```
//! use ndarray::array;
//! use sdss_io::npy::{read_npy_as, write_npy};
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("features.npy");
//! let x = array![[1.0f32, 2.0], [3.0, 4.0]];
//! write_npy(&path, &x.view())?;
//! let back = read_npy_as::<f32>(&path)?;
//! assert_eq!(back, x.into_dyn());
//! # Ok::<(), sdss_io::IoError>(())
//! ```

use std::io::Write;
use std::path::Path;

use ndarray::{Array2, ArrayD, ArrayView, Dimension, IxDyn, ShapeBuilder};

use crate::atomic::write_atomic;
use crate::error::{IoError, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// An element type that can be stored in a `.npy` file.
pub trait NpyElement: Copy + Send + Sync + 'static + sealed::Sealed {
    /// The little-endian dtype string numpy writes, e.g. `<f4`.
    const DESCR: &'static str;
    /// The dtype's kind and size without byte order, e.g. `f4`.
    const KIND: &'static str;
    /// Size of one element in bytes.
    const SIZE: usize;
    /// Decodes one element from little- or big-endian bytes.
    fn from_bytes(bytes: &[u8], little_endian: bool) -> Self;
    /// Appends the little-endian encoding of `self`.
    fn write_le(self, out: &mut Vec<u8>);
    /// Wraps an array of this type in [`NpyArray`].
    fn wrap(array: ArrayD<Self>) -> NpyArray;
    /// Takes an array of this type out of [`NpyArray`], if it holds one.
    fn unwrap_array(array: NpyArray) -> std::result::Result<ArrayD<Self>, NpyArray>;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! npy_element {
    ($t:ty, $descr:literal, $kind:literal, $variant:ident) => {
        impl sealed::Sealed for $t {}
        impl NpyElement for $t {
            const DESCR: &'static str = $descr;
            const KIND: &'static str = $kind;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_bytes(bytes: &[u8], little_endian: bool) -> Self {
                let mut raw = [0u8; std::mem::size_of::<$t>()];
                raw.copy_from_slice(bytes);
                if little_endian {
                    <$t>::from_le_bytes(raw)
                } else {
                    <$t>::from_be_bytes(raw)
                }
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn wrap(array: ArrayD<Self>) -> NpyArray {
                NpyArray::$variant(array)
            }
            fn unwrap_array(array: NpyArray) -> std::result::Result<ArrayD<Self>, NpyArray> {
                match array {
                    NpyArray::$variant(a) => Ok(a),
                    other => Err(other),
                }
            }
        }
    };
}

npy_element!(f32, "<f4", "f4", F32);
npy_element!(f64, "<f8", "f8", F64);
npy_element!(u8, "|u1", "u1", U8);
npy_element!(i32, "<i4", "i4", I32);
npy_element!(i64, "<i8", "i8", I64);

/// A `.npy` array of any supported dtype, as read from disk.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyArray {
    /// `float32`
    F32(ArrayD<f32>),
    /// `float64`
    F64(ArrayD<f64>),
    /// `uint8`
    U8(ArrayD<u8>),
    /// `int32`
    I32(ArrayD<i32>),
    /// `int64`
    I64(ArrayD<i64>),
}

impl NpyArray {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyArray::F32(a) => a.shape(),
            NpyArray::F64(a) => a.shape(),
            NpyArray::U8(a) => a.shape(),
            NpyArray::I32(a) => a.shape(),
            NpyArray::I64(a) => a.shape(),
        }
    }

    /// The dtype as numpy spells it without byte order (`f4`, `f8`, `u1`, `i4`, `i8`).
    pub fn dtype(&self) -> &'static str {
        match self {
            NpyArray::F32(_) => f32::KIND,
            NpyArray::F64(_) => f64::KIND,
            NpyArray::U8(_) => u8::KIND,
            NpyArray::I32(_) => i32::KIND,
            NpyArray::I64(_) => i64::KIND,
        }
    }

    /// Converts every element to `f64` (exact for all supported dtypes except very large `i64`).
    pub fn into_f64(self) -> ArrayD<f64> {
        match self {
            NpyArray::F32(a) => a.mapv(f64::from),
            NpyArray::F64(a) => a,
            NpyArray::U8(a) => a.mapv(f64::from),
            NpyArray::I32(a) => a.mapv(f64::from),
            NpyArray::I64(a) => a.mapv(|v| v as f64),
        }
    }

    /// Converts every element to `f32` (rounding `f64` and large integers).
    pub fn into_f32(self) -> ArrayD<f32> {
        match self {
            NpyArray::F32(a) => a,
            NpyArray::F64(a) => a.mapv(|v| v as f32),
            NpyArray::U8(a) => a.mapv(f32::from),
            NpyArray::I32(a) => a.mapv(|v| v as f32),
            NpyArray::I64(a) => a.mapv(|v| v as f32),
        }
    }
}

/// Reads a `.npy` file of any supported dtype.
///
/// The data are read from the file straight into the array, a megabyte at a time, so the peak
/// memory is the array plus a megabyte, not the file twice over. The shape the header claims is
/// checked against the file's size before anything is allocated for it.
pub fn read_npy(path: impl AsRef<Path>) -> Result<NpyArray> {
    use std::io::Read;
    let path = path.as_ref();
    let io = |e| IoError::io(path, e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    // The fixed part (magic, version, header length), then the header it announces.
    let mut head = Vec::new();
    (&mut file).take(12).read_to_end(&mut head).map_err(io)?;
    let end = header_end(path, &head)?;
    let rest = (end as u64).saturating_sub(head.len() as u64);
    (&mut file).take(rest).read_to_end(&mut head).map_err(io)?;
    let header = parse_header(path, &head)?;
    let data_len =
        usize::try_from(file_len.saturating_sub(header.data_start as u64)).unwrap_or(usize::MAX);
    // `head` may hold the first bytes of the data (a header shorter than 12 bytes cannot
    // parse, so it does not): they come first.
    let early = head.split_off(header.data_start.min(head.len()));
    let mut source = DataSource::File {
        early,
        file,
        len: data_len,
    };
    header.decode(path, &mut source)
}

/// Parses the bytes of a whole `.npy` file already in memory; `path` only names the source in errors.
///
/// The shape the header claims is checked against the bytes present before anything is allocated for
/// it, so a crafted header (say, 10¹² elements) is an error, not an allocation.
pub fn read_npy_bytes(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    parse_npy(path, bytes)
}

/// Reads a `.npy` file whose dtype must be exactly `T`; another dtype is an [`IoError::NpyDtype`].
pub fn read_npy_as<T: NpyElement>(path: impl AsRef<Path>) -> Result<ArrayD<T>> {
    let path = path.as_ref();
    let array = read_npy(path)?;
    T::unwrap_array(array).map_err(|other| IoError::NpyDtype {
        path: path.to_owned(),
        found: other.dtype().to_owned(),
        expected: T::KIND.to_owned(),
    })
}

/// Reads an (N, D) matrix of any numeric dtype as `f64`. A 1-d array of length N is read as (N, 1).
pub fn read_matrix_f64(path: impl AsRef<Path>) -> Result<Array2<f64>> {
    let path = path.as_ref();
    into_matrix(path, read_npy(path)?.into_f64())
}

/// Reads an (N, D) matrix of any numeric dtype as `f32`. A 1-d array of length N is read as (N, 1).
pub fn read_matrix_f32(path: impl AsRef<Path>) -> Result<Array2<f32>> {
    let path = path.as_ref();
    into_matrix(path, read_npy(path)?.into_f32())
}

fn into_matrix<T>(path: &Path, array: ArrayD<T>) -> Result<Array2<T>> {
    let shape = array.shape().to_vec();
    let shape2 = match shape.as_slice() {
        [n] => (*n, 1),
        [n, d] => (*n, *d),
        _ => {
            return Err(IoError::NpyShape {
                path: path.to_owned(),
                found: shape,
                expected: "(N, D) or (N,)".to_owned(),
            })
        }
    };
    array
        .into_shape_with_order(shape2)
        .map_err(|e| IoError::NpyFormat {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// Writes `array` to `path` as a little-endian, C-order `.npy` file, atomically.
pub fn write_npy<T: NpyElement, D: Dimension>(
    path: impl AsRef<Path>,
    array: &ArrayView<'_, T, D>,
) -> Result<()> {
    let header = npy_header(T::DESCR, array.shape());
    let mut body = Vec::with_capacity(array.len() * T::SIZE);
    // `iter()` walks in logical (C) order whatever the memory layout, so views and slices write correctly.
    for &v in array.iter() {
        v.write_le(&mut body);
    }
    write_atomic(path, |w| {
        w.write_all(&header)?;
        w.write_all(&body)
    })
}

/// Builds the magic string, version, header length and padded header dictionary.
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    npy_header_at_least(descr, shape, 0)
}

/// [`npy_header`] padded with spaces to at least `min_len` bytes (a multiple of 64), so that a
/// header rewritten with a smaller shape keeps the data where they are.
pub(crate) fn npy_header_at_least(descr: &str, shape: &[usize], min_len: usize) -> Vec<u8> {
    let shape_text = match shape {
        [] => "()".to_owned(),
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // numpy pads with spaces and a final newline so that data starts on a 64-byte boundary.
    let (version, prefix) = if dict.len() + 1 + 10 <= u16::MAX as usize {
        (1u8, 10usize)
    } else {
        (2u8, 12usize)
    };
    let total = (prefix + dict.len() + 1).max(min_len).div_ceil(64) * 64;
    let header_len = total - prefix;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.push(version);
    out.push(0);
    if version == 1 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// Parses the bytes of a whole `.npy` file.
fn parse_npy(path: &Path, bytes: &[u8]) -> Result<NpyArray> {
    let header = parse_header(path, bytes)?;
    let mut source = DataSource::Bytes(&bytes[header.data_start..]);
    header.decode(path, &mut source)
}

fn format_error(path: &Path, reason: &str) -> IoError {
    IoError::NpyFormat {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Where the header ends (and the data start), from the magic string, the version and the header
/// length in the first 10 or 12 bytes.
fn header_end(path: &Path, bytes: &[u8]) -> Result<usize> {
    let bad = |reason: &str| format_error(path, reason);
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("missing the \\x93NUMPY magic string"));
    }
    let (header_len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(bad(&format!("unknown format version {v}"))),
    };
    start
        .checked_add(header_len)
        .ok_or_else(|| bad("truncated header"))
}

/// A parsed header: the element type, the layout and the shape.
pub(crate) struct Header {
    pub(crate) descr: String,
    pub(crate) little_endian: bool,
    pub(crate) fortran: bool,
    pub(crate) shape: Vec<usize>,
    pub(crate) data_start: usize,
}

pub(crate) fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let bad = |reason: &str| format_error(path, reason);
    let end = header_end(path, bytes)?;
    if end > bytes.len() {
        return Err(bad("truncated header"));
    }
    // `header_end` accepted the version: 1 has a 2-byte length field, 2 and 3 a 4-byte one.
    let start = if bytes[6] == 1 { 10 } else { 12 };
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| bad("header has no 'descr'"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = match dict_value(header, "fortran_order") {
        Some("False") => false,
        Some("True") => true,
        _ => return Err(bad("header has no valid 'fortran_order'")),
    };
    let shape =
        parse_shape(dict_value(header, "shape").ok_or_else(|| bad("header has no 'shape'"))?)
            .ok_or_else(|| bad("header has an unreadable 'shape'"))?;
    let little_endian = !descr.starts_with('>');
    Ok(Header {
        descr: descr.to_owned(),
        little_endian,
        fortran,
        shape,
        data_start: end,
    })
}

/// The data after the header: in memory, or still in the file (its first bytes possibly read
/// with the header).
enum DataSource<'a> {
    Bytes(&'a [u8]),
    File {
        early: Vec<u8>,
        file: std::fs::File,
        len: usize,
    },
}

impl DataSource<'_> {
    fn len(&self) -> usize {
        match self {
            DataSource::Bytes(b) => b.len(),
            DataSource::File { len, .. } => *len,
        }
    }

    /// Decodes the first `count` elements into `out`.
    fn decode_into<T: NpyElement>(
        &mut self,
        path: &Path,
        count: usize,
        little_endian: bool,
        out: &mut Vec<T>,
    ) -> Result<()> {
        match self {
            DataSource::Bytes(b) => out.extend(
                b[..count * T::SIZE]
                    .chunks_exact(T::SIZE)
                    .map(|c| T::from_bytes(c, little_endian)),
            ),
            DataSource::File { early, file, .. } => {
                use std::io::Read;
                // A whole number of elements per read; bytes of a split element wait in `carry`.
                let mut carry = std::mem::take(early);
                let mut chunk = vec![0u8; (1 << 20) / T::SIZE * T::SIZE];
                while out.len() < count {
                    let whole = carry.len() / T::SIZE * T::SIZE;
                    let take = whole.min((count - out.len()) * T::SIZE);
                    out.extend(
                        carry[..take]
                            .chunks_exact(T::SIZE)
                            .map(|c| T::from_bytes(c, little_endian)),
                    );
                    carry.drain(..take);
                    if out.len() == count {
                        break;
                    }
                    let n = file.read(&mut chunk).map_err(|e| IoError::io(path, e))?;
                    if n == 0 {
                        return Err(format_error(path, "the file ended inside its data"));
                    }
                    carry.extend_from_slice(&chunk[..n]);
                }
            }
        }
        Ok(())
    }
}

impl Header {
    fn decode(&self, path: &Path, source: &mut DataSource<'_>) -> Result<NpyArray> {
        let kind = match self.descr.as_bytes().first() {
            Some(b'<' | b'|' | b'=' | b'>') => &self.descr[1..],
            _ => self.descr.as_str(),
        };
        match kind {
            "f4" => self.decode_as::<f32>(path, source),
            "f8" => self.decode_as::<f64>(path, source),
            "u1" => self.decode_as::<u8>(path, source),
            "i4" => self.decode_as::<i32>(path, source),
            "i8" => self.decode_as::<i64>(path, source),
            _ => Err(IoError::NpyDtype {
                path: path.to_owned(),
                found: self.descr.clone(),
                expected: "one of f4, f8, u1, i4, i8".to_owned(),
            }),
        }
    }

    fn decode_as<T: NpyElement>(
        &self,
        path: &Path,
        source: &mut DataSource<'_>,
    ) -> Result<NpyArray> {
        let count = self
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| IoError::NpyFormat {
                path: path.to_owned(),
                reason: format!("shape {:?} overflows", self.shape),
            })?;
        let needed = count.saturating_mul(T::SIZE);
        if source.len() < needed {
            return Err(IoError::NpyFormat {
                path: path.to_owned(),
                reason: format!(
                    "truncated: shape {:?} needs {needed} bytes of data, file has {}",
                    self.shape,
                    source.len()
                ),
            });
        }
        let mut values: Vec<T> = Vec::with_capacity(count);
        source.decode_into(path, count, self.little_endian, &mut values)?;
        let dim = IxDyn(&self.shape);
        let array = if self.fortran {
            ArrayD::from_shape_vec(dim.f(), values)
        } else {
            ArrayD::from_shape_vec(dim, values)
        }
        .map_err(|e| IoError::NpyFormat {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        // Callers expect standard (C-order) memory, e.g. to view it as a faer matrix without copying.
        let array = if array.is_standard_layout() {
            array
        } else {
            array.as_standard_layout().into_owned()
        };
        Ok(T::wrap(array))
    }
}

/// Finds the raw text of `key`'s value in numpy's header dictionary.
fn dict_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let quoted = [format!("'{key}'"), format!("\"{key}\"")];
    let pos = quoted
        .iter()
        .find_map(|q| header.find(q.as_str()).map(|p| p + q.len()))?;
    let rest = header[pos..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(rest[..end].trim())
}

fn parse_shape(text: &str) -> Option<Vec<usize>> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array3};

    #[test]
    fn header_matches_numpy_layout() {
        let h = npy_header("<f8", &[6437, 20]);
        assert_eq!(h.len() % 64, 0);
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (6437, 20), }"));
        assert!(text.ends_with(" \n"));
        let h1 = npy_header("<i8", &[5]);
        assert!(std::str::from_utf8(&h1[10..])
            .unwrap()
            .contains("'shape': (5,)"));
    }

    #[test]
    fn round_trip_every_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy(&p, &array![1.5f32, -2.0].view()).unwrap();
        assert_eq!(
            read_npy(&p).unwrap(),
            NpyArray::F32(array![1.5f32, -2.0].into_dyn())
        );
        write_npy(&p, &array![[1.5f64], [2.0]].view()).unwrap();
        assert_eq!(read_npy(&p).unwrap().shape(), &[2, 1]);
        let stack = Array3::<u8>::from_shape_fn((2, 3, 3), |(i, j, k)| (i * 9 + j * 3 + k) as u8);
        write_npy(&p, &stack.view()).unwrap();
        assert_eq!(read_npy_as::<u8>(&p).unwrap(), stack.into_dyn());
        write_npy(&p, &array![-1i32, 7].view()).unwrap();
        assert_eq!(read_npy_as::<i32>(&p).unwrap(), array![-1i32, 7].into_dyn());
        write_npy(&p, &array![-1i64, 1 << 40].view()).unwrap();
        assert_eq!(
            read_npy_as::<i64>(&p).unwrap(),
            array![-1i64, 1 << 40].into_dyn()
        );
    }

    #[test]
    fn transposed_view_is_written_in_logical_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.npy");
        let a = array![[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
        write_npy(&p, &a.t()).unwrap();
        let back = read_matrix_f64(&p).unwrap();
        assert_eq!(back, a.t().to_owned());
    }

    #[test]
    fn fortran_and_big_endian_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.npy");
        let dict = "{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3), }";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(dict.len() as u16 + 1).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        bytes.push(b'\n');
        // Column-major [[1,2,3],[4,5,6]] is 1,4,2,5,3,6.
        for v in [1i32, 4, 2, 5, 3, 6] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        std::fs::write(&p, bytes).unwrap();
        let a = read_npy_as::<i32>(&p).unwrap();
        assert_eq!(a, array![[1, 2, 3], [4, 5, 6]].into_dyn());
        assert!(a.is_standard_layout());
    }

    #[test]
    fn bad_files_give_typed_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.npy");
        std::fs::write(&p, b"not numpy at all").unwrap();
        assert!(matches!(read_npy(&p), Err(IoError::NpyFormat { .. })));

        write_npy(&p, &array![[1.0f32, 2.0], [3.0, 4.0]].view()).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&p, &bytes).unwrap();
        let err = read_npy(&p).unwrap_err();
        assert!(err.to_string().contains("bad.npy") && err.to_string().contains("truncated"));

        write_npy(&p, &array![1.0f32].view()).unwrap();
        assert!(matches!(
            read_npy_as::<f64>(&p),
            Err(IoError::NpyDtype { .. })
        ));

        let mut bytes = std::fs::read(&p).unwrap();
        let at = bytes.windows(3).position(|w| w == b"<f4").unwrap();
        bytes[at..at + 3].copy_from_slice(b"<c8");
        std::fs::write(&p, &bytes).unwrap();
        let err = read_npy(&p).unwrap_err();
        assert!(matches!(err, IoError::NpyDtype { .. }), "{err}");

        // A header claiming 10^12 elements on a file of a few bytes: refused, not allocated.
        let mut huge = npy_header("<f4", &[1_000_000, 1_000_000]);
        huge.extend_from_slice(&[0; 16]);
        let err = read_npy_bytes(&huge, Path::new("huge.npy")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("huge.npy") && text.contains("4000000000000 bytes"),
            "{text}"
        );

        write_npy(&p, &Array3::<f32>::zeros((1, 2, 3)).view()).unwrap();
        assert!(matches!(read_matrix_f32(&p), Err(IoError::NpyShape { .. })));
    }
}
