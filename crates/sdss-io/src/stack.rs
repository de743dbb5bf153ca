//! Image stacks `(N, H, W, 3)` with their galaxy ids, and the ids CSV that travels beside a `.npy`.
//!
//! # The ids CSV convention
//!
//! An image stack stored as `name.npy` keeps its galaxy ids in `name.ids.csv` in the same folder
//! ([`ids_path_for`]): UTF-8, a header row whose columns include `id`, then one row per image in the
//! order of the array's first axis. Other columns are allowed and ignored (so the synthetic set's
//! `galaxies.csv` is a valid ids file too). Fields holding a comma, a quote or a line break are
//! quoted as in RFC 4180. Without such a file, [`read_image_stack_npy`] names the images by their
//! index, zero-padded to at least four digits (`0000`, `0001`, …), the names of the original
//! dataset's images.

use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{Array4, ArrayD, Ix4};

use crate::atomic::write_atomic;
use crate::error::{IoError, Result};
use crate::npy::{read_npy, write_npy, NpyArray};

/// Galaxy images and their ids: `images[i]` is an `(H, W, 3)` array of values in [0, 1] for `ids[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageStack {
    ids: Vec<String>,
    images: Array4<f32>,
}

impl ImageStack {
    /// Pairs ids with an `(N, H, W, 3)` array; the counts must agree and the last axis must be 3.
    pub fn new(ids: Vec<String>, images: Array4<f32>) -> Result<Self> {
        if ids.len() != images.shape()[0] {
            return Err(IoError::InvalidOption {
                name: "ids",
                reason: format!("{} ids for {} images", ids.len(), images.shape()[0]),
            });
        }
        if images.shape()[3] != 3 {
            return Err(IoError::InvalidOption {
                name: "images",
                reason: format!("shape {:?} is not (N, H, W, 3)", images.shape()),
            });
        }
        // Standard layout lets `pixel_matrix` reshape without copying.
        let images = if images.is_standard_layout() {
            images
        } else {
            images.as_standard_layout().into_owned()
        };
        Ok(ImageStack { ids, images })
    }

    /// Galaxy ids, one per image.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The `(N, H, W, 3)` pixel values in [0, 1].
    pub fn images(&self) -> &Array4<f32> {
        &self.images
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True if the stack holds no image.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// `(height, width)` of every image.
    pub fn image_size(&self) -> (usize, usize) {
        let s = self.images.shape();
        (s[1], s[2])
    }

    /// The pixels flattened to an `(N, H·W·3)` matrix (the "raw pixels" features), without copying.
    pub fn pixel_matrix(&self) -> ndarray::ArrayView2<'_, f32> {
        let n = self.images.shape()[0];
        let d: usize = self.images.shape()[1..].iter().product();
        // `new` stores `images` in standard layout, so this reshape cannot fail.
        self.images
            .view()
            .into_shape_with_order((n, d))
            .unwrap_or_else(|_| unreachable!("ImageStack images are standard layout"))
    }

    /// Splits into ids and images.
    pub fn into_parts(self) -> (Vec<String>, Array4<f32>) {
        (self.ids, self.images)
    }
}

/// The ids CSV that belongs to a `.npy` stack: `x.npy` → `x.ids.csv` in the same folder.
pub fn ids_path_for(npy_path: impl AsRef<Path>) -> PathBuf {
    npy_path.as_ref().with_extension("ids.csv")
}

/// Ids `0000`, `0001`, … for `n` images (at least four digits, more if `n` needs them).
pub fn index_ids(n: usize) -> Vec<String> {
    let width = n.saturating_sub(1).to_string().len().max(4);
    (0..n).map(|i| format!("{i:0width$}")).collect()
}

/// Reads an `(N, H, W, 3)` image stack from `.npy`: `uint8` is scaled by 1/255, `float32`/`float64`
/// are taken as already in [0, 1]. Ids come from the ids CSV beside it ([`ids_path_for`]) if it
/// exists, else from [`index_ids`].
pub fn read_image_stack_npy(path: impl AsRef<Path>) -> Result<ImageStack> {
    let path = path.as_ref();
    let images: ArrayD<f32> = match read_npy(path)? {
        NpyArray::U8(a) => a.mapv(|v| f32::from(v) / 255.0),
        NpyArray::F32(a) => a,
        NpyArray::F64(a) => a.mapv(|v| v as f32),
        other => {
            return Err(IoError::NpyDtype {
                path: path.to_owned(),
                found: other.dtype().to_owned(),
                expected: "u1, f4 or f8 for an image stack".to_owned(),
            })
        }
    };
    let shape = images.shape().to_vec();
    let images = match images.into_dimensionality::<Ix4>() {
        Ok(a) if a.shape()[3] == 3 => a,
        _ => {
            return Err(IoError::NpyShape {
                path: path.to_owned(),
                found: shape,
                expected: "(N, H, W, 3)".to_owned(),
            })
        }
    };
    let n = images.shape()[0];
    let ids_path = ids_path_for(path);
    let ids = if ids_path.exists() {
        let ids = read_ids_csv(&ids_path)?;
        if ids.len() != n {
            return Err(IoError::LengthMismatch {
                path: ids_path,
                found: ids.len(),
                other: path.to_owned(),
                expected: n,
            });
        }
        ids
    } else {
        tracing::info!(
            file = %path.display(),
            "no {} beside the stack: ids are row indices",
            ids_path.display()
        );
        index_ids(n)
    };
    ImageStack::new(ids, images)
}

/// How [`write_image_stack_npy`] stores pixel values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackDtype {
    /// `uint8`, `round(255 · v)` clamped to 0..=255: a quarter of the size, exact for 8-bit images.
    U8,
    /// `float32`, values as they are.
    F32,
}

/// Writes `stack` to `path` (`.npy`) and its ids to [`ids_path_for`]`(path)`, both atomically.
pub fn write_image_stack_npy(
    path: impl AsRef<Path>,
    stack: &ImageStack,
    dtype: StackDtype,
) -> Result<()> {
    let path = path.as_ref();
    match dtype {
        StackDtype::F32 => write_npy(path, &stack.images.view())?,
        StackDtype::U8 => {
            let bytes = stack
                .images
                .mapv(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8);
            write_npy(path, &bytes.view())?
        }
    }
    write_ids_csv(ids_path_for(path), &stack.ids)
}

/// Writes an ids CSV (header `id`, one id per line), atomically.
pub fn write_ids_csv(path: impl AsRef<Path>, ids: &[String]) -> Result<()> {
    write_atomic(path, |w| {
        writeln!(w, "id")?;
        for id in ids {
            writeln!(w, "{}", csv_field(id))?;
        }
        Ok(())
    })
}

/// Quotes a CSV field if it needs it (RFC 4180).
pub fn csv_field(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains([',', '"', '\n', '\r']) || value.trim() != value {
        format!("\"{}\"", value.replace('"', "\"\"")).into()
    } else {
        value.into()
    }
}

/// Reads the `id` column of a CSV with a header row (see the module docs).
pub fn read_ids_csv(path: impl AsRef<Path>) -> Result<Vec<String>> {
    let path = path.as_ref();
    let rows = read_csv(path)?;
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(IoError::Csv {
            path: path.to_owned(),
            line: 0,
            reason: "empty file: expected a header row with an `id` column".into(),
        });
    };
    let col = header
        .iter()
        .position(|h| h.trim() == "id")
        .ok_or_else(|| IoError::Csv {
            path: path.to_owned(),
            line: 1,
            reason: format!("header {header:?} has no `id` column"),
        })?;
    rows.map(|(line, fields)| {
        fields.get(col).cloned().ok_or_else(|| IoError::Csv {
            path: path.to_owned(),
            line,
            reason: format!(
                "{} fields, the `id` column is number {}",
                fields.len(),
                col + 1
            ),
        })
    })
    .collect()
}

/// Parses a whole CSV file into rows of fields, each with its 1-based starting line number.
/// Blank lines are skipped. Handles RFC 4180 quoting (including line breaks inside quotes). Rows longer
/// than [`MAX_CSV_ROW_BYTES`] are an error naming their line.
pub fn read_csv(path: impl AsRef<Path>) -> Result<Vec<(usize, Vec<String>)>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| IoError::io(path, e))?;
    read_csv_str(&text, path)
}

/// Parses CSV text already in memory, as [`read_csv`] does; `path` only names the source in errors.
pub fn read_csv_str(text: &str, path: &Path) -> Result<Vec<(usize, Vec<String>)>> {
    parse_csv(text).map_err(|(line, reason)| IoError::Csv {
        path: path.to_owned(),
        line,
        reason,
    })
}

/// Longest CSV row accepted, in bytes (1 MiB). A catalogue row is a few hundred bytes; a row of
/// megabytes is a binary file or a file without line breaks, and is refused rather than parsed into
/// millions of fields.
pub const MAX_CSV_ROW_BYTES: usize = 1 << 20;

/// CSV rows, each with its 1-based starting line number.
type Rows = Vec<(usize, Vec<String>)>;

fn parse_csv(text: &str) -> std::result::Result<Rows, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut row_line = 1;
    let mut in_quotes = false;
    let mut quoted_field = false;
    let mut row_start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if at - row_start > MAX_CSV_ROW_BYTES {
            return Err((
                row_line,
                format!("row longer than {MAX_CSV_ROW_BYTES} bytes (the limit for one CSV row)"),
            ));
        }
        if in_quotes {
            match c {
                '"' if chars.peek().map(|&(_, c)| c) == Some('"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !quoted_field => {
                in_quotes = true;
                quoted_field = true;
            }
            '"' => return Err((line, "stray quote inside an unquoted field".into())),
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted_field = false;
            }
            '\r' => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                quoted_field = false;
                if !(fields.len() == 1 && fields[0].is_empty()) {
                    rows.push((row_line, std::mem::take(&mut fields)));
                }
                fields.clear();
                line += 1;
                row_line = line;
                row_start = at + 1;
            }
            _ if quoted_field => {
                return Err((line, "text after a closing quote".into()));
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err((line, "unterminated quoted field".into()));
    }
    if !field.is_empty() || !fields.is_empty() || quoted_field {
        fields.push(field);
        rows.push((row_line, fields));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_parsing_handles_quotes_and_blank_lines() {
        let rows =
            parse_csv("id,class\r\n\"a,b\",1\n\n\"say \"\"hi\"\"\",2\nlast,\"x\ny\"").unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[1], (2, vec!["a,b".to_string(), "1".to_string()]));
        assert_eq!(rows[2].0, 4);
        assert_eq!(rows[2].1[0], "say \"hi\"");
        assert_eq!(rows[3].1[1], "x\ny");
        assert!(parse_csv("id\n\"open").is_err());
        assert!(parse_csv("id\nab\"c").is_err());
    }

    #[test]
    fn a_row_of_megabytes_is_refused_naming_its_line() {
        let long = format!("id,ra\na,1\n{}\n", ",".repeat(MAX_CSV_ROW_BYTES + 10));
        let err = read_csv_str(&long, Path::new("cat.csv")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("cat.csv:3:") && text.contains("1048576"),
            "{text}"
        );
        // The same inside an unterminated quote, which would otherwise swallow the rest of the file.
        let quoted = format!("id\n\"{}", "x".repeat(MAX_CSV_ROW_BYTES + 1));
        assert!(read_csv_str(&quoted, Path::new("q.csv"))
            .unwrap_err()
            .to_string()
            .contains("row longer"));
        // A long but legal row passes.
        let fine = format!("id\n{}\n", "y".repeat(MAX_CSV_ROW_BYTES - 1));
        assert_eq!(read_csv_str(&fine, Path::new("f.csv")).unwrap().len(), 2);
    }

    #[test]
    fn ids_round_trip_with_awkward_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.ids.csv");
        let ids: Vec<String> = ["0001", "a,b", "q\"uote", " pad", "ü"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        write_ids_csv(&p, &ids).unwrap();
        assert_eq!(read_ids_csv(&p).unwrap(), ids);
    }

    #[test]
    fn ids_csv_needs_an_id_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "name\nfoo\n").unwrap();
        let err = read_ids_csv(&p).unwrap_err();
        assert!(err.to_string().contains("x.csv:1"), "{err}");
        std::fs::write(&p, "").unwrap();
        assert!(matches!(
            read_ids_csv(&p),
            Err(IoError::Csv { line: 0, .. })
        ));
        std::fs::write(&p, "class,id\nE,7\nS\n").unwrap();
        let err = read_ids_csv(&p).unwrap_err();
        assert!(matches!(err, IoError::Csv { line: 3, .. }), "{err}");
    }

    #[test]
    fn index_ids_are_zero_padded() {
        assert_eq!(index_ids(3), ["0000", "0001", "0002"]);
        assert_eq!(index_ids(10001)[10000], "10000");
        assert_eq!(index_ids(10001)[0], "00000");
    }

    #[test]
    fn stack_npy_round_trip_u8_and_f32() {
        let dir = tempfile::tempdir().unwrap();
        let images = Array4::from_shape_fn((2, 3, 4, 3), |(n, y, x, c)| {
            ((n * 36 + y * 12 + x * 3 + c) as f32) / 255.0
        });
        let stack = ImageStack::new(vec!["g1".into(), "g2".into()], images).unwrap();
        for dtype in [StackDtype::U8, StackDtype::F32] {
            let p = dir.path().join(format!("s{dtype:?}.npy"));
            write_image_stack_npy(&p, &stack, dtype).unwrap();
            let back = read_image_stack_npy(&p).unwrap();
            assert_eq!(back.ids(), stack.ids());
            let diff = (&back.images - &stack.images).mapv(f32::abs);
            assert!(diff.iter().all(|&d| d < 1e-6), "{dtype:?}");
        }
        // Without the ids file, ids are indices.
        let p = dir.path().join("sU8.npy");
        std::fs::remove_file(ids_path_for(&p)).unwrap();
        assert_eq!(read_image_stack_npy(&p).unwrap().ids(), ["0000", "0001"]);
    }

    #[test]
    fn stack_npy_of_wrong_shape_or_dtype_or_id_count_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.npy");
        write_npy(&p, &ndarray::Array3::<u8>::zeros((2, 4, 4)).view()).unwrap();
        assert!(matches!(
            read_image_stack_npy(&p),
            Err(IoError::NpyShape { .. })
        ));
        write_npy(&p, &Array4::<i32>::zeros((2, 4, 4, 3)).view()).unwrap();
        assert!(matches!(
            read_image_stack_npy(&p),
            Err(IoError::NpyDtype { .. })
        ));
        write_npy(&p, &Array4::<u8>::zeros((2, 4, 4, 3)).view()).unwrap();
        write_ids_csv(ids_path_for(&p), &["only-one".to_string()]).unwrap();
        let err = read_image_stack_npy(&p).unwrap_err();
        assert!(
            matches!(
                err,
                IoError::LengthMismatch {
                    found: 1,
                    expected: 2,
                    ..
                }
            ),
            "{err}"
        );
    }
}
