//! FITS binary tables: written by hand (the format is a few fixed rules), read through fitsio-pure.

use std::path::Path;

use fitsio_pure::bintable::{self, BinaryColumnData, BinaryColumnType};
use fitsio_pure::hdu::HduInfo;
use fitsio_pure::value::Value;

use crate::{Column, ColumnMeta, Table, TableError};

const BLOCK: usize = 2880;
const CARD: usize = 80;
/// TNULLn of 64-bit integer columns: the value that marks a missing integer.
const INT_NULL: i64 = i64::MIN;

/// Header text must be printable ASCII; anything else becomes `?`.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// One 80-byte header card: `KEYWORD = value / comment`.
fn card(out: &mut Vec<u8>, key: &str, value: &str, comment: &str) {
    let mut c = format!("{key:<8}= {value}");
    if !comment.is_empty() && c.len() + 3 + comment.len() <= CARD {
        c.push_str(" / ");
        c.push_str(comment);
    }
    let mut bytes = c.into_bytes();
    bytes.truncate(CARD);
    bytes.resize(CARD, b' ');
    out.extend_from_slice(&bytes);
}

/// A fixed-format number or logical, right-justified to column 30.
fn num(v: impl std::fmt::Display) -> String {
    format!("{v:>20}")
}

/// A quoted string value: quotes doubled, at least 8 characters, at most 68 with the quotes.
fn string(s: &str) -> String {
    let mut escaped = ascii(s).replace('\'', "''");
    while escaped.len() > 66 {
        // Cut whole characters, never half an escaped quote.
        escaped.pop();
        if escaped.ends_with('\'') && !escaped.ends_with("''") {
            escaped.pop();
        }
    }
    format!("'{escaped:<8}'")
}

fn pad(out: &mut Vec<u8>, fill: u8) {
    let rem = out.len() % BLOCK;
    if rem != 0 {
        out.resize(out.len() + BLOCK - rem, fill);
    }
}

/// The FITS form of a column: TFORM code and byte width.
fn form(column: &Column) -> (String, usize) {
    match column {
        Column::Int64(_) => ("K".into(), 8),
        Column::Float64(_) => ("D".into(), 8),
        Column::Float32(_) => ("E".into(), 4),
        Column::Bool(_) => ("L".into(), 1),
        Column::Text(v) => {
            let w = v
                .iter()
                .flatten()
                .map(String::len)
                .max()
                .unwrap_or(0)
                .max(1);
            (format!("{w}A"), w)
        }
    }
}

/// Encodes `table` as a FITS file: an empty primary HDU, then one BINTABLE extension.
pub fn to_fits_bytes(table: &Table) -> Result<Vec<u8>, TableError> {
    let columns: Vec<(&ColumnMeta, &Column)> = table.columns().collect();
    let forms: Vec<(String, usize)> = columns.iter().map(|(_, c)| form(c)).collect();
    let row_bytes: usize = forms.iter().map(|f| f.1).sum();
    for (m, _) in &columns {
        if m.name.len() > 68 || !m.name.chars().all(|c| (' '..='~').contains(&c)) {
            return Err(TableError::Column {
                name: m.name.clone(),
                reason: "a FITS column name must be printable ASCII of at most 68 characters"
                    .into(),
            });
        }
    }
    let mut out = Vec::new();
    card(&mut out, "SIMPLE", &num("T"), "conforms to FITS standard");
    card(&mut out, "BITPIX", &num(8), "");
    card(&mut out, "NAXIS", &num(0), "");
    card(&mut out, "EXTEND", &num("T"), "");
    out.extend_from_slice(format!("{:<80}", "END").as_bytes());
    pad(&mut out, b' ');

    card(
        &mut out,
        "XTENSION",
        &string("BINTABLE"),
        "binary table extension",
    );
    card(&mut out, "BITPIX", &num(8), "");
    card(&mut out, "NAXIS", &num(2), "");
    card(&mut out, "NAXIS1", &num(row_bytes), "bytes per row");
    card(&mut out, "NAXIS2", &num(table.nrows()), "rows");
    card(&mut out, "PCOUNT", &num(0), "");
    card(&mut out, "GCOUNT", &num(1), "");
    card(&mut out, "TFIELDS", &num(columns.len()), "columns");
    for (i, ((m, c), (f, _))) in columns.iter().zip(&forms).enumerate() {
        let n = i + 1;
        card(&mut out, &format!("TTYPE{n}"), &string(&m.name), "");
        card(&mut out, &format!("TFORM{n}"), &string(f), "");
        if matches!(c, Column::Int64(_)) {
            card(
                &mut out,
                &format!("TNULL{n}"),
                &num(INT_NULL),
                "missing value",
            );
        }
        if let Some(u) = &m.unit {
            card(&mut out, &format!("TUNIT{n}"), &string(u), "");
        }
        if let Some(u) = &m.ucd {
            card(&mut out, &format!("TUCD{n}"), &string(u), "");
        }
        if let Some(d) = &m.description {
            card(&mut out, &format!("TCOMM{n}"), &string(d), "");
        }
    }
    out.extend_from_slice(format!("{:<80}", "END").as_bytes());
    pad(&mut out, b' ');

    out.reserve(row_bytes * table.nrows());
    for row in 0..table.nrows() {
        for ((_, c), (_, width)) in columns.iter().zip(&forms) {
            match c {
                Column::Int64(v) => {
                    out.extend_from_slice(&v[row].unwrap_or(INT_NULL).to_be_bytes())
                }
                Column::Float64(v) => out.extend_from_slice(&v[row].to_be_bytes()),
                Column::Float32(v) => out.extend_from_slice(&v[row].to_be_bytes()),
                Column::Bool(v) => out.push(match v[row] {
                    Some(true) => b'T',
                    Some(false) => b'F',
                    None => 0,
                }),
                Column::Text(v) => {
                    let s = v[row].as_deref().unwrap_or("").as_bytes();
                    out.extend_from_slice(s);
                    out.resize(out.len() + width - s.len(), b' ');
                }
            }
        }
    }
    pad(&mut out, 0);
    Ok(out)
}

/// Writes `table` as a FITS binary table (BINTABLE extension after an empty primary HDU),
/// atomically. Integers are `K` with `TNULLn = −2⁶³` for missing values, floats `D`/`E` with NaN,
/// booleans `L`, text fixed-width `A`; units, UCDs and descriptions go in `TUNITn`, `TUCDn` (read by
/// TOPCAT) and `TCOMMn`.
pub fn write_fits(path: &Path, table: &Table) -> Result<(), TableError> {
    let bytes = to_fits_bytes(table)?;
    sdss_io::atomic::write_bytes_atomic(path, &bytes)?;
    Ok(())
}

fn card_value<'a>(cards: &'a [fitsio_pure::header::Card], key: &str) -> Option<&'a Value> {
    cards
        .iter()
        .find(|c| c.keyword_str() == key)?
        .value
        .as_ref()
}

fn card_text(cards: &[fitsio_pure::header::Card], key: &str) -> Option<String> {
    match card_value(cards, key)? {
        Value::String(s) => Some(s.trim_end().to_owned()),
        _ => None,
    }
}

fn card_number(cards: &[fitsio_pure::header::Card], key: &str) -> Option<f64> {
    match card_value(cards, key)? {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Reads the first binary-table HDU of a FITS file (see [`read_fits_hdu`]).
pub fn read_fits(path: &Path) -> Result<Table, TableError> {
    read_fits_hdu(path, None)
}

/// Reads binary-table HDU `hdu` (0 = primary) of a FITS file, or the first one when `None`.
///
/// Scalar columns are read: logical, integers (with `TNULLn`; `TZEROn` offsets such as unsigned
/// 64-bit ids kept exact, an id beyond `i64::MAX` is an error), floats, and text. Integer columns
/// with a `TSCALn` other than 1 become floats. Vector, complex, bit and variable-length columns are
/// left out (they are not catalogue properties); [`Table::column_names`] lists what was read.
pub fn read_fits_hdu(path: &Path, hdu: Option<usize>) -> Result<Table, TableError> {
    let bytes = std::fs::read(path).map_err(|e| TableError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    parse_fits(&bytes, path, hdu)
}

/// [`read_fits_hdu`] on bytes already in memory; `path` only names the source in errors.
pub fn parse_fits(bytes: &[u8], path: &Path, hdu: Option<usize>) -> Result<Table, TableError> {
    let fits = fitsio_pure::hdu::parse_fits(bytes)
        .map_err(|e| TableError::format(path, format!("not a readable FITS file: {e:?}")))?;
    let index = match hdu {
        Some(i) => {
            let h = fits.get(i).ok_or_else(|| {
                TableError::format(path, format!("no HDU {i} (the file has {})", fits.len()))
            })?;
            if !matches!(h.info, HduInfo::BinaryTable { .. }) {
                return Err(TableError::format(
                    path,
                    format!("HDU {i} is not a binary table"),
                ));
            }
            i
        }
        None => fits
            .iter()
            .position(|h| matches!(h.info, HduInfo::BinaryTable { .. }))
            .ok_or_else(|| TableError::format(path, "no binary-table HDU"))?,
    };
    let h = &fits.hdus[index];
    let HduInfo::BinaryTable {
        naxis1,
        naxis2,
        tfields,
        ..
    } = h.info
    else {
        return Err(TableError::format(
            path,
            format!("HDU {index} is not a binary table"),
        ));
    };
    // Checked here so that a header claiming more rows than the file holds is an error, never an
    // allocation or an overflow.
    let end = naxis1
        .checked_mul(naxis2)
        .and_then(|n| n.checked_add(h.data_start));
    if end.is_none_or(|e| e > bytes.len()) {
        return Err(TableError::format(
            path,
            format!(
                "HDU {index}: {naxis2} rows of {naxis1} bytes do not fit in the file ({} bytes)",
                bytes.len()
            ),
        ));
    }
    let descriptors = bintable::parse_binary_table_columns(&h.cards, tfields).map_err(|e| {
        TableError::format(path, format!("HDU {index}: bad column description: {e:?}"))
    })?;
    if descriptors.iter().map(|d| d.byte_width).sum::<usize>() != naxis1 {
        return Err(TableError::format(
            path,
            format!("HDU {index}: column widths do not add up to NAXIS1 = {naxis1}"),
        ));
    }
    let mut table = Table::new();
    for (k, d) in descriptors.iter().enumerate() {
        let n = k + 1;
        let scalar = d.repeat == 1 || matches!(d.col_type, BinaryColumnType::Ascii);
        let supported = matches!(
            d.col_type,
            BinaryColumnType::Logical
                | BinaryColumnType::Byte
                | BinaryColumnType::Short
                | BinaryColumnType::Int
                | BinaryColumnType::Long
                | BinaryColumnType::Float
                | BinaryColumnType::Double
                | BinaryColumnType::Ascii
        );
        if !scalar || !supported {
            continue;
        }
        let name = d.name.clone().unwrap_or_else(|| format!("col{n}"));
        let err = |reason: String| {
            TableError::format(path, format!("HDU {index}, column {n} `{name}`: {reason}"))
        };
        let data = bintable::read_binary_column(bytes, h, k).map_err(|e| err(format!("{e:?}")))?;
        let tnull = match card_value(&h.cards, &format!("TNULL{n}")) {
            Some(Value::Integer(v)) => Some(*v),
            _ => None,
        };
        let tscal = card_number(&h.cards, &format!("TSCAL{n}")).unwrap_or(1.0);
        let tzero = card_number(&h.cards, &format!("TZERO{n}")).unwrap_or(0.0);
        let ints = |raw: Vec<i64>| -> Result<Column, TableError> {
            if tscal != 1.0 || tzero.fract() != 0.0 {
                return Ok(Column::Float64(
                    raw.iter()
                        .map(|&r| {
                            if Some(r) == tnull {
                                f64::NAN
                            } else {
                                r as f64 * tscal + tzero
                            }
                        })
                        .collect(),
                ));
            }
            let zero = tzero as i128;
            let values: Vec<Option<i128>> = raw
                .iter()
                .map(|&r| (Some(r) != tnull).then(|| i128::from(r) + zero))
                .collect();
            if values.iter().flatten().all(|&v| i64::try_from(v).is_ok()) {
                Ok(Column::Int64(
                    values.iter().map(|v| v.map(|v| v as i64)).collect(),
                ))
            } else {
                // Unsigned 64-bit ids beyond i64::MAX: exact decimal text rather than a float.
                Ok(Column::Text(
                    values.iter().map(|v| v.map(|v| v.to_string())).collect(),
                ))
            }
        };
        let column = match data {
            BinaryColumnData::Logical(v) => Column::Bool(v.into_iter().map(Some).collect()),
            BinaryColumnData::Byte(v) => ints(v.into_iter().map(i64::from).collect())?,
            BinaryColumnData::Short(v) => ints(v.into_iter().map(i64::from).collect())?,
            BinaryColumnData::Int(v) => ints(v.into_iter().map(i64::from).collect())?,
            BinaryColumnData::Long(v) => ints(v)?,
            BinaryColumnData::Float(v) if tscal == 1.0 && tzero == 0.0 => Column::Float32(v),
            BinaryColumnData::Float(v) => Column::Float64(
                v.into_iter()
                    .map(|x| f64::from(x) * tscal + tzero)
                    .collect(),
            ),
            BinaryColumnData::Double(v) => {
                Column::Float64(v.into_iter().map(|x| x * tscal + tzero).collect())
            }
            BinaryColumnData::Ascii(v) => Column::Text(
                v.into_iter()
                    .map(|s| {
                        let s = s.trim_end_matches([' ', '\0']).to_owned();
                        (!s.is_empty()).then_some(s)
                    })
                    .collect(),
            ),
            _ => continue,
        };
        let meta = ColumnMeta {
            name: name.clone(),
            unit: card_text(&h.cards, &format!("TUNIT{n}")).filter(|s| !s.is_empty()),
            ucd: card_text(&h.cards, &format!("TUCD{n}")).filter(|s| !s.is_empty()),
            description: card_text(&h.cards, &format!("TCOMM{n}")).filter(|s| !s.is_empty()),
        };
        table.push(meta, column).map_err(|e| err(e.to_string()))?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new();
        t.push(
            ColumnMeta {
                ucd: Some("meta.id;meta.main".into()),
                ..ColumnMeta::named("objid")
            },
            Column::Int64(vec![Some(1237648720693755918), None, Some(-3)]),
        )
        .unwrap();
        t.push(
            ColumnMeta::ra(),
            Column::Float64(vec![0.5, f64::NAN, 359.999]),
        )
        .unwrap();
        t.push(
            ColumnMeta::named("x"),
            Column::Float32(vec![1.5, 2.5, f32::NAN]),
        )
        .unwrap();
        t.push(
            ColumnMeta::named("name"),
            Column::Text(vec![Some("it's".into()), None, Some("b".into())]),
        )
        .unwrap();
        t.push(
            ColumnMeta::named("ok"),
            Column::Bool(vec![Some(true), Some(false), Some(true)]),
        )
        .unwrap();
        t
    }

    #[test]
    fn round_trip_keeps_ids_units_and_missing_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fits");
        let t = sample();
        write_fits(&path, &t).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() % BLOCK, 0);
        let back = read_fits(&path).unwrap();
        assert_eq!(format!("{t:?}"), format!("{back:?}"));
    }

    #[test]
    fn hostile_headers_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fits");
        let good = to_fits_bytes(&sample()).unwrap();
        // NAXIS2 claiming 10^15 rows.
        let text = String::from_utf8_lossy(&good).into_owned();
        let at = text.find("NAXIS2  =").unwrap();
        let mut bad = good.clone();
        bad[at..at + 30].copy_from_slice(
            format!("{:<8}= {:>20}", "NAXIS2", 1_000_000_000_000_000u64).as_bytes(),
        );
        std::fs::write(&path, &bad).unwrap();
        assert!(read_fits(&path).is_err());
        // Truncated data, and not FITS at all.
        std::fs::write(&path, &good[..good.len() - BLOCK]).unwrap();
        assert!(read_fits(&path).is_err());
        std::fs::write(&path, b"objid,ra\n1,2\n").unwrap();
        assert!(read_fits(&path).unwrap_err().to_string().contains("FITS"));
    }

    #[test]
    fn fitsverify_accepts_what_we_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fits");
        write_fits(&path, &sample()).unwrap();
        match std::process::Command::new("fitsverify")
            .arg("-q")
            .arg(&path)
            .output()
        {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(out.status.success() && text.contains("OK"), "{text}");
            }
            Err(_) => eprintln!(
                "NOTE: fitsverify is not installed (apt-get install fitsverify); not checked"
            ),
        }
    }
}
