//! Tables astronomers open: catalogues read from CSV, ECSV or FITS binary tables, and results
//! written as FITS binary tables, VOTables, ECSV and CSV for TOPCAT and astropy.
//!
//! A [`Table`] is a list of named, typed columns of equal length, each with optional unit, UCD and
//! description ([`ColumnMeta`]). Integer columns are 64-bit and stay exact in every format (SDSS
//! `objid` values exceed the 2⁵³ a double holds); a missing value is `None` (NaN in float columns).
//!
//! ```
//! use sdss_tables::{Column, ColumnMeta, Table};
//!
//! let mut t = Table::new();
//! t.push(ColumnMeta::named("objid"), Column::Int64(vec![Some(1237648720693755918), None]))?;
//! t.push(ColumnMeta::ra(), Column::Float64(vec![150.1, f64::NAN]))?;
//! let dir = std::env::temp_dir().join(format!("sdss-tables-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! sdss_tables::write_fits(&dir.join("t.fits"), &t)?;
//! sdss_tables::write_votable(&dir.join("t.vot"), &t)?;
//! let back = sdss_tables::read_table(&dir.join("t.fits"))?;
//! assert_eq!(back.column("objid").unwrap().text(0).as_deref(), Some("1237648720693755918"));
//! assert!(back.column("objid").unwrap().is_missing(1));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), sdss_tables::TableError>(())
//! ```
//!
//! # Formats and dependencies
//!
//! * **FITS binary tables** are written by hand (`K`, `D`, `E`, `L` and `A` columns, `TNULLn` for
//!   missing integers, `TUNITn`, `TCOMMn`, and `TUCDn`, which TOPCAT reads) and pass HEASARC's
//!   `fitsverify` (text is ASCII there: other characters are written as `?`). Reading takes the
//!   HDU structure and header cards from the pure-Rust `fitsio-pure` crate (no cfitsio to build)
//!   and decodes the rows here, every size checked against the file first: scaled integers
//!   (`TSCALn`/`TZEROn`, e.g. unsigned 64-bit ids), `TNULLn`, logical nulls; the first binary
//!   table, or one chosen by number or `EXTNAME` ([`read_fits_table`], [`Hdu`]).
//! * **VOTable 1.4** (TABLEDATA) is written by a small writer: the CDS `votable` crate reads and
//!   writes the whole standard through serde and quick-xml, a large tree for a format we only write.
//! * **ECSV 1.0** (astropy's enhanced CSV) is written and read here; **CSV** is read with
//!   `sdss_io::stack::read_csv` (RFC 4180, bounded rows) and its column types inferred.

mod csv;
mod ecsv;
mod fits;
mod votable;

use std::path::{Path, PathBuf};

pub use csv::{parse_csv, read_csv, write_csv};
pub use ecsv::{parse_ecsv, read_ecsv, write_ecsv};
pub use fits::{
    parse_fits, parse_fits_table, read_fits, read_fits_hdu, read_fits_table, to_fits_bytes,
    write_fits, Hdu,
};
pub use votable::write_votable;

/// Why a table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid table of its format.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the line, HDU or column.
        reason: String,
    },
    /// A column that does not fit the table (wrong length, a name already taken, an empty name).
    #[error("column `{name}`: {reason}")]
    Column {
        /// The column's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The file name's extension is not a table format this crate reads.
    #[error("{}: unknown table format (expected .csv, .ecsv, .fits, .fit or .fts)", .0.display())]
    UnknownFormat(PathBuf),
}

impl TableError {
    fn format(path: &Path, reason: impl Into<String>) -> Self {
        TableError::Format {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<sdss_io::IoError> for TableError {
    fn from(e: sdss_io::IoError) -> Self {
        match e {
            sdss_io::IoError::Io { path, source } => TableError::Io { path, source },
            other => TableError::Format {
                path: PathBuf::new(),
                reason: other.to_string(),
            },
        }
    }
}

/// A column's values; missing values are `None`, or NaN in float columns.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// 64-bit integers.
    Int64(Vec<Option<i64>>),
    /// Double-precision floats.
    Float64(Vec<f64>),
    /// Single-precision floats.
    Float32(Vec<f32>),
    /// Text.
    Text(Vec<Option<String>>),
    /// Booleans.
    Bool(Vec<Option<bool>>),
}

impl Column {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Column::Int64(v) => v.len(),
            Column::Float64(v) => v.len(),
            Column::Float32(v) => v.len(),
            Column::Text(v) => v.len(),
            Column::Bool(v) => v.len(),
        }
    }

    /// Whether the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the value of `row` is missing (out-of-range rows count as missing).
    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            Column::Int64(v) => v.get(row).is_none_or(|x| x.is_none()),
            Column::Float64(v) => v.get(row).is_none_or(|x| x.is_nan()),
            Column::Float32(v) => v.get(row).is_none_or(|x| x.is_nan()),
            Column::Text(v) => v.get(row).is_none_or(|x| x.is_none()),
            Column::Bool(v) => v.get(row).is_none_or(|x| x.is_none()),
        }
    }

    /// The value of `row` as a number (booleans as 0/1; text that parses as a number), if any.
    /// Integers beyond 2⁵³ lose precision here: use [`Column::text`] for ids.
    pub fn as_f64(&self, row: usize) -> Option<f64> {
        let v = match self {
            Column::Int64(v) => v.get(row).copied().flatten().map(|x| x as f64),
            Column::Float64(v) => v.get(row).copied(),
            Column::Float32(v) => v.get(row).map(|&x| f64::from(x)),
            Column::Text(v) => v.get(row)?.as_deref()?.trim().parse().ok(),
            Column::Bool(v) => v
                .get(row)
                .copied()
                .flatten()
                .map(|b| f64::from(u8::from(b))),
        }?;
        (!v.is_nan()).then_some(v)
    }

    /// The value of `row` as exact text (integers in decimal, never through a float), if any.
    pub fn text(&self, row: usize) -> Option<String> {
        if self.is_missing(row) {
            return None;
        }
        match self {
            Column::Int64(v) => v[row].map(|x| x.to_string()),
            Column::Float64(v) => Some(format_f64(v[row])),
            Column::Float32(v) => Some(format_f32(v[row])),
            Column::Text(v) => v[row].clone(),
            Column::Bool(v) => v[row].map(|b| if b { "True" } else { "False" }.to_owned()),
        }
    }

    /// The datatype name used in ECSV headers.
    fn ecsv_type(&self) -> &'static str {
        match self {
            Column::Int64(_) => "int64",
            Column::Float64(_) => "float64",
            Column::Float32(_) => "float32",
            Column::Text(_) => "string",
            Column::Bool(_) => "bool",
        }
    }
}

/// Shortest text that reads back as the same f64 (Rust's `Display`), `nan`/`inf` spelled as numpy.
pub(crate) fn format_f64(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:?}")
    }
}

pub(crate) fn format_f32(v: f32) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:?}")
    }
}

/// A column's name and its description for readers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ColumnMeta {
    /// Column name.
    pub name: String,
    /// Unit, in the IAU/VOUnit spelling (`deg`, `arcsec`, `mag`).
    pub unit: Option<String>,
    /// IVOA Unified Content Descriptor, e.g. `pos.eq.ra;meta.main`.
    pub ucd: Option<String>,
    /// One-line description.
    pub description: Option<String>,
}

impl ColumnMeta {
    /// A column with only a name.
    pub fn named(name: &str) -> Self {
        ColumnMeta {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    /// `ra` in degrees with the UCD TOPCAT recognises as the main right ascension.
    pub fn ra() -> Self {
        ColumnMeta {
            name: "ra".into(),
            unit: Some("deg".into()),
            ucd: Some("pos.eq.ra;meta.main".into()),
            description: Some("right ascension (ICRS)".into()),
        }
    }

    /// `dec` in degrees with the UCD TOPCAT recognises as the main declination.
    pub fn dec() -> Self {
        ColumnMeta {
            name: "dec".into(),
            unit: Some("deg".into()),
            ucd: Some("pos.eq.dec;meta.main".into()),
            description: Some("declination (ICRS)".into()),
        }
    }
}

/// Named columns of equal length.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    columns: Vec<(ColumnMeta, Column)>,
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a column; it must be as long as the others and its name new and non-empty.
    pub fn push(&mut self, meta: ColumnMeta, column: Column) -> Result<(), TableError> {
        let err = |reason: String| TableError::Column {
            name: meta.name.clone(),
            reason,
        };
        if meta.name.is_empty() {
            return Err(err("a column needs a name".into()));
        }
        if self.column(&meta.name).is_some() {
            return Err(err("the table already has a column of that name".into()));
        }
        if let Some((_, first)) = self.columns.first() {
            if first.len() != column.len() {
                return Err(err(format!(
                    "{} values where the table has {} rows",
                    column.len(),
                    first.len()
                )));
            }
        }
        self.columns.push((meta, column));
        Ok(())
    }

    /// Number of rows (0 for a table without columns).
    pub fn nrows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.columns.len()
    }

    /// The columns in order.
    pub fn columns(&self) -> impl Iterator<Item = (&ColumnMeta, &Column)> {
        self.columns.iter().map(|(m, c)| (m, c))
    }

    /// The column named `name` (exact match).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|(m, _)| m.name == name)
            .map(|(_, c)| c)
    }

    /// The description of column `name`.
    pub fn meta(&self, name: &str) -> Option<&ColumnMeta> {
        self.columns
            .iter()
            .find(|(m, _)| m.name == name)
            .map(|(m, _)| m)
    }

    /// Column names in order.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(m, _)| m.name.as_str())
    }
}

/// Reads a table, choosing the format by the file name's extension (any case): `.csv`
/// ([`read_csv`]), `.ecsv` ([`read_ecsv`]), or `.fits`/`.fit`/`.fts` (the first binary-table HDU;
/// [`read_fits_table`] reads another by number or `EXTNAME`).
pub fn read_table(path: &Path) -> Result<Table, TableError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".csv") {
        read_csv(path)
    } else if name.ends_with(".ecsv") {
        read_ecsv(path)
    } else if [".fits", ".fit", ".fts"].iter().any(|e| name.ends_with(e)) {
        read_fits(path)
    } else {
        Err(TableError::UnknownFormat(path.to_owned()))
    }
}

/// Missing-value spellings: pandas' default `na_values` (`read_csv`), plus surrounding blanks.
pub(crate) const MISSING: [&str; 19] = [
    "", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "-NaN", "NULL", "null", "None", "<NA>", "#N/A",
    "#NA", "#N/A N/A", "-1.#IND", "1.#IND", "-1.#QNAN", "1.#QNAN",
];

/// Builds a column from text cells, inferring its type: 64-bit integers when every present value is
/// one, else floats when every present value is a number, else booleans (`True`/`False`), else text.
///
/// Integers are only taken as such when each is written the way it prints (`42`, `-7`): a column
/// holding `0515` or `+3` stays text, so that [`Column::text`] gives back exactly what the file
/// holds (ids with leading zeros are common; pandas would lose the zeros).
pub(crate) fn infer_column(cells: Vec<Option<String>>) -> Column {
    let present = || cells.iter().flatten().map(|s| s.trim());
    let as_int = |s: &str| s.parse::<i64>().ok().filter(|v| v.to_string() == s);
    if present().next().is_some() && present().all(|s| s.parse::<i64>().is_ok()) {
        if !present().all(|s| as_int(s).is_some()) {
            return Column::Text(cells);
        }
        return Column::Int64(
            cells
                .iter()
                .map(|c| c.as_deref().and_then(|s| as_int(s.trim())))
                .collect(),
        );
    }
    if present().all(|s| s.parse::<f64>().is_ok()) && present().next().is_some() {
        return Column::Float64(
            cells
                .iter()
                .map(|c| {
                    c.as_deref()
                        .and_then(|s| s.trim().parse().ok())
                        .unwrap_or(f64::NAN)
                })
                .collect(),
        );
    }
    let as_bool = |s: &str| match s {
        "True" | "true" | "TRUE" => Some(true),
        "False" | "false" | "FALSE" => Some(false),
        _ => None,
    };
    if present().all(|s| as_bool(s).is_some()) && present().next().is_some() {
        return Column::Bool(
            cells
                .iter()
                .map(|c| c.as_deref().and_then(|s| as_bool(s.trim())))
                .collect(),
        );
    }
    Column::Text(cells)
}

/// `None` for the missing-value spellings, the trimmed text otherwise.
pub(crate) fn cell(text: &str) -> Option<String> {
    let t = text.trim();
    (!MISSING.contains(&t)).then(|| t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_checks_length_and_names() {
        let mut t = Table::new();
        t.push(ColumnMeta::named("a"), Column::Float64(vec![1.0, 2.0]))
            .unwrap();
        assert!(t
            .push(ColumnMeta::named("a"), Column::Float64(vec![1.0, 2.0]))
            .is_err());
        assert!(t
            .push(ColumnMeta::named("b"), Column::Float64(vec![1.0]))
            .is_err());
        assert!(t
            .push(ColumnMeta::named(""), Column::Float64(vec![1.0, 2.0]))
            .is_err());
        assert_eq!((t.nrows(), t.ncols()), (2, 1));
    }

    #[test]
    fn inference_keeps_64_bit_ids_exact() {
        let c = infer_column(vec![
            Some("1237648720693755918".into()),
            None,
            Some(" 7 ".into()),
        ]);
        assert_eq!(
            c,
            Column::Int64(vec![Some(1237648720693755918), None, Some(7)])
        );
        assert_eq!(c.text(0).unwrap(), "1237648720693755918");
        let c = infer_column(vec![Some("1".into()), Some("2.5".into())]);
        assert_eq!(c, Column::Float64(vec![1.0, 2.5]));
        let c = infer_column(vec![Some("True".into()), None]);
        assert_eq!(c, Column::Bool(vec![Some(true), None]));
        // Leading zeros and plus signs keep the column text, exactly as written.
        let c = infer_column(vec![Some("0515".into()), Some("12".into())]);
        assert_eq!(c.text(0).unwrap(), "0515");
        assert!(matches!(c, Column::Text(_)));
        let c = infer_column(
            ["-1.#IND", "1.#QNAN", "3"]
                .iter()
                .map(|s| cell(s))
                .collect(),
        );
        assert_eq!(c, Column::Int64(vec![None, None, Some(3)]));
        let c = infer_column(vec![Some("8485-1901".into())]);
        assert_eq!(c.text(0).unwrap(), "8485-1901");
        assert_eq!(cell(" NaN "), None);
    }
}
