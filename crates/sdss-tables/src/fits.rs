//! FITS binary tables: written by hand (the format is a few fixed rules), read through fitsio-pure.

use std::path::Path;

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
                .map(|s| s.chars().count())
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
                    // One byte per character: FITS text is printable ASCII.
                    let s = ascii(v[row].as_deref().unwrap_or(""));
                    let s = s.as_bytes();
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
/// booleans `L` (byte 0 where missing, the standard's null), text fixed-width `A` (missing text is
/// blank); units, UCDs and descriptions go in `TUNITn`, `TUCDn` (read by TOPCAT) and `TCOMMn`.
///
/// FITS text is printable ASCII (`fitsverify` rejects anything else), so each other character of
/// a text value or header string is written as `?`; VOTable and ECSV keep them. Column names must
/// be printable ASCII of at most 68 characters (an error otherwise).
pub fn write_fits(path: &Path, table: &Table) -> Result<(), TableError> {
    let bytes = to_fits_bytes(table)?;
    sdss_io::atomic::write_bytes_atomic(path, &bytes)?;
    Ok(())
}

type Cards = [fitsio_pure::header::Card];

fn card_value<'a>(cards: &'a Cards, key: &str) -> Option<&'a Value> {
    cards
        .iter()
        .find(|c| c.keyword_str() == key)?
        .value
        .as_ref()
}

fn card_text(cards: &Cards, key: &str) -> Option<String> {
    match card_value(cards, key)? {
        Value::String(s) => Some(s.trim_end().to_owned()),
        _ => None,
    }
}

fn card_number(cards: &Cards, key: &str) -> Option<f64> {
    match card_value(cards, key)? {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Which HDU of a FITS file [`read_fits_table`] reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Hdu {
    /// The first binary-table HDU (what [`read_fits`] and [`crate::read_table`] read).
    #[default]
    FirstTable,
    /// HDU number `n`, counting the primary HDU as 0 (as astropy's `hdu=` and TOPCAT's `#n` do).
    Index(usize),
    /// The extension whose `EXTNAME` is this, compared case-insensitively (as cfitsio and astropy
    /// do).
    Name(String),
}

impl From<usize> for Hdu {
    fn from(n: usize) -> Self {
        Hdu::Index(n)
    }
}

impl From<&str> for Hdu {
    fn from(name: &str) -> Self {
        Hdu::Name(name.to_owned())
    }
}

impl std::fmt::Display for Hdu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hdu::FirstTable => write!(f, "the first binary table"),
            Hdu::Index(n) => write!(f, "HDU {n}"),
            Hdu::Name(s) => write!(f, "HDU `{s}`"),
        }
    }
}

/// Reads the first binary-table HDU of a FITS file (see [`read_fits_table`]).
pub fn read_fits(path: &Path) -> Result<Table, TableError> {
    read_fits_table(path, Hdu::FirstTable)
}

/// One column of a binary table, as its `TFORMn` describes it.
struct Field {
    kind: char,
    repeat: usize,
    /// Byte offset within a row.
    offset: usize,
}

/// `rT...` → (repeat, type code); the text after the type code (`Aw`, `PJ(100)`) is ignored.
fn parse_tform(s: &str) -> Option<(usize, char)> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let repeat = if digits == 0 {
        1
    } else {
        s[..digits].parse::<usize>().ok()?
    };
    let kind = s[digits..].chars().next()?.to_ascii_uppercase();
    Some((repeat, kind))
}

/// Bytes per row of a column, `None` for an unknown type code or an overflow.
fn field_width(repeat: usize, kind: char) -> Option<usize> {
    let size = match kind {
        'L' | 'B' | 'A' => 1,
        'I' => 2,
        'J' | 'E' => 4,
        'K' | 'D' | 'C' | 'P' => 8,
        'M' | 'Q' => 16,
        'X' => return Some(repeat.div_ceil(8)),
        _ => return None,
    };
    repeat.checked_mul(size)
}

/// Reads one binary-table HDU of a FITS file as a table: the first one ([`Hdu::FirstTable`]), or
/// one chosen by number or `EXTNAME`.
///
/// Scalar columns are read: logical `L` (byte 0 is missing), integers `B`/`I`/`J`/`K` (`TNULLn`
/// is missing; `TZEROn` offsets such as unsigned 64-bit ids are kept exact, and an unsigned id
/// beyond `i64::MAX` becomes exact decimal [`Column::Text`]), floats `E`/`D`, and text `rA`
/// (trailing blanks and NULs removed; empty text is missing). Integer columns with a `TSCALn`
/// other than 1 or a fractional `TZEROn` become floats. Vector, complex, bit and variable-length
/// columns are left out (they are not one value per galaxy); [`Table::column_names`] lists what was
/// read. Units, UCDs and descriptions come from `TUNITn`, `TUCDn` and `TCOMMn`.
///
/// The whole file is read into memory, and every size in the header is checked against the file's
/// length before anything is allocated, so a header claiming more rows than the file holds is an
/// error, never an allocation.
pub fn read_fits_table(path: &Path, hdu: impl Into<Hdu>) -> Result<Table, TableError> {
    let bytes = std::fs::read(path).map_err(|e| TableError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    parse_fits_table(&bytes, path, hdu)
}

/// Reads binary-table HDU `hdu` (0 = primary) of a FITS file, or the first one when `None` (see
/// [`read_fits_table`], which also selects by `EXTNAME`).
pub fn read_fits_hdu(path: &Path, hdu: Option<usize>) -> Result<Table, TableError> {
    read_fits_table(path, hdu.map_or(Hdu::FirstTable, Hdu::Index))
}

/// [`read_fits_hdu`] on bytes already in memory; `path` only names the source in errors.
pub fn parse_fits(bytes: &[u8], path: &Path, hdu: Option<usize>) -> Result<Table, TableError> {
    parse_fits_table(bytes, path, hdu.map_or(Hdu::FirstTable, Hdu::Index))
}

/// [`read_fits_table`] on bytes already in memory; `path` only names the source in errors.
pub fn parse_fits_table(
    bytes: &[u8],
    path: &Path,
    hdu: impl Into<Hdu>,
) -> Result<Table, TableError> {
    let hdu = hdu.into();
    let fits = fitsio_pure::hdu::parse_fits(bytes)
        .map_err(|e| TableError::format(path, format!("not a readable FITS file: {e:?}")))?;
    let is_table = |h: &fitsio_pure::hdu::Hdu| matches!(h.info, HduInfo::BinaryTable { .. });
    let index = match &hdu {
        Hdu::FirstTable => fits
            .iter()
            .position(is_table)
            .ok_or_else(|| TableError::format(path, "no binary-table HDU"))?,
        Hdu::Index(i) => {
            if *i >= fits.len() {
                return Err(TableError::format(
                    path,
                    format!(
                        "no HDU {i} (the file has {} HDUs, numbered from 0)",
                        fits.len()
                    ),
                ));
            }
            *i
        }
        Hdu::Name(name) => fits
            .iter()
            .position(|h| {
                card_text(&h.cards, "EXTNAME")
                    .is_some_and(|n| n.trim().eq_ignore_ascii_case(name.trim()))
            })
            .ok_or_else(|| TableError::format(path, format!("no HDU with EXTNAME `{name}`")))?,
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
            format!("{hdu} (HDU {index}) is not a binary table"),
        ));
    };
    // Checked here so that a header claiming more rows than the file holds is an error, never an
    // allocation or an overflow (a row may be 0 bytes wide, hence the second test).
    let end = naxis1
        .checked_mul(naxis2)
        .and_then(|n| n.checked_add(h.data_start));
    if end.is_none_or(|e| e > bytes.len()) || naxis2 > bytes.len() {
        return Err(TableError::format(
            path,
            format!(
                "HDU {index}: {naxis2} rows of {naxis1} bytes do not fit in the file ({} bytes)",
                bytes.len()
            ),
        ));
    }
    if tfields > 999 {
        return Err(TableError::format(
            path,
            format!("HDU {index}: TFIELDS = {tfields} (FITS allows at most 999 columns)"),
        ));
    }
    let mut fields = Vec::with_capacity(tfields);
    let mut offset = 0usize;
    for n in 1..=tfields {
        let tform = card_text(&h.cards, &format!("TFORM{n}")).ok_or_else(|| {
            TableError::format(path, format!("HDU {index}: column {n} has no TFORM{n}"))
        })?;
        let (repeat, kind, width) = parse_tform(&tform)
            .and_then(|(r, k)| Some((r, k, field_width(r, k)?)))
            .ok_or_else(|| {
                TableError::format(
                    path,
                    format!("HDU {index}: column {n}: TFORM{n} = `{tform}` is not a column format"),
                )
            })?;
        fields.push(Field {
            kind,
            repeat,
            offset,
        });
        offset = offset
            .checked_add(width)
            .filter(|&o| o <= naxis1)
            .ok_or_else(|| {
                TableError::format(
                    path,
                    format!("HDU {index}: the columns up to {n} are wider than NAXIS1 = {naxis1}"),
                )
            })?;
    }
    if offset != naxis1 {
        return Err(TableError::format(
            path,
            format!("HDU {index}: the columns are {offset} bytes wide, NAXIS1 = {naxis1}"),
        ));
    }
    let data = &bytes[h.data_start..h.data_start + naxis1 * naxis2];
    let mut table = Table::new();
    for (k, f) in fields.iter().enumerate() {
        let n = k + 1;
        let name = card_text(&h.cards, &format!("TTYPE{n}"))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("col{n}"));
        let err = |reason: String| {
            TableError::format(path, format!("HDU {index}, column {n} `{name}`: {reason}"))
        };
        let cells = |w: usize| {
            (0..naxis2).map(move |r| &data[r * naxis1 + f.offset..r * naxis1 + f.offset + w])
        };
        let tnull = match card_value(&h.cards, &format!("TNULL{n}")) {
            Some(Value::Integer(v)) => Some(*v),
            _ => None,
        };
        let tscal = card_number(&h.cards, &format!("TSCAL{n}")).unwrap_or(1.0);
        let tzero = card_number(&h.cards, &format!("TZERO{n}")).unwrap_or(0.0);
        let ints = |raw: Vec<i64>| -> Column {
            if tscal != 1.0 || tzero.fract() != 0.0 || tzero.abs() > 2f64.powi(64) {
                return Column::Float64(
                    raw.iter()
                        .map(|&r| {
                            if Some(r) == tnull {
                                f64::NAN
                            } else {
                                r as f64 * tscal + tzero
                            }
                        })
                        .collect(),
                );
            }
            let zero = tzero as i128;
            let values: Vec<Option<i128>> = raw
                .iter()
                .map(|&r| (Some(r) != tnull).then(|| i128::from(r) + zero))
                .collect();
            if values.iter().flatten().all(|&v| i64::try_from(v).is_ok()) {
                Column::Int64(values.iter().map(|v| v.map(|v| v as i64)).collect())
            } else {
                // Unsigned 64-bit ids beyond i64::MAX: exact decimal text rather than a float.
                Column::Text(values.iter().map(|v| v.map(|v| v.to_string())).collect())
            }
        };
        let scale = |x: f64| x * tscal + tzero;
        let column = match (f.kind, f.repeat) {
            ('A', w) => Column::Text(
                cells(w)
                    .map(|c| {
                        let c = &c[..c.iter().position(|&b| b == 0).unwrap_or(c.len())];
                        let s = String::from_utf8_lossy(c).trim_end().to_owned();
                        (!s.is_empty()).then_some(s)
                    })
                    .collect(),
            ),
            ('L', 1) => Column::Bool(
                cells(1)
                    .enumerate()
                    .map(|(r, c)| match c[0] {
                        b'T' => Ok(Some(true)),
                        b'F' => Ok(Some(false)),
                        0 => Ok(None),
                        b => Err(err(format!(
                            "row {}: byte {b:#04x} is not a FITS logical (T, F or 0)",
                            r + 1
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            ('B', 1) => ints(cells(1).map(|c| i64::from(c[0])).collect()),
            ('I', 1) => ints(
                cells(2)
                    .map(|c| i64::from(i16::from_be_bytes([c[0], c[1]])))
                    .collect(),
            ),
            ('J', 1) => ints(
                cells(4)
                    .map(|c| i64::from(i32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
            ),
            ('K', 1) => ints(
                cells(8)
                    .map(|c| i64::from_be_bytes(c.try_into().unwrap_or_default()))
                    .collect(),
            ),
            ('E', 1) => {
                let v = cells(4).map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                if tscal == 1.0 && tzero == 0.0 {
                    Column::Float32(v.collect())
                } else {
                    Column::Float64(v.map(|x| scale(f64::from(x))).collect())
                }
            }
            ('D', 1) => Column::Float64(
                cells(8)
                    .map(|c| scale(f64::from_be_bytes(c.try_into().unwrap_or_default())))
                    .collect(),
            ),
            // Vectors, complex numbers, bits and variable-length arrays: not one value per row.
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
            Column::Bool(vec![Some(true), None, Some(false)]),
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

    /// `good` with the card starting `key` replaced by `card` (both padded to 80 bytes).
    fn patch(good: &[u8], key: &str, card: &str) -> Vec<u8> {
        let text = String::from_utf8_lossy(good).into_owned();
        let at = text.find(key).unwrap();
        let mut bad = good.to_vec();
        bad[at..at + CARD].copy_from_slice(format!("{card:<80}").as_bytes());
        bad
    }

    #[test]
    fn text_is_written_as_ascii_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fits");
        let mut t = Table::new();
        t.push(
            ColumnMeta {
                unit: Some("µm".into()),
                ..ColumnMeta::named("name")
            },
            Column::Text(vec![
                Some("Südstern".into()),
                Some("tab\there".into()),
                None,
            ]),
        )
        .unwrap();
        write_fits(&path, &t).unwrap();
        let back = read_fits(&path).unwrap();
        let c = back.column("name").unwrap();
        assert_eq!(c.text(0).as_deref(), Some("S?dstern"));
        assert_eq!(c.text(1).as_deref(), Some("tab?here"));
        assert!(c.is_missing(2));
        assert_eq!(back.meta("name").unwrap().unit.as_deref(), Some("?m"));
        fitsverify(&path);
    }

    #[test]
    fn hdus_are_chosen_by_number_or_extname() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fits");
        let good = to_fits_bytes(&sample()).unwrap();
        // Room for one more card: the extension header holds fewer than 36.
        let named = patch(&good, "TFIELDS =", "EXTNAME = 'Galaxies'");
        let named = patch(&named, "END     ", "END");
        let text = String::from_utf8_lossy(&named).into_owned();
        let ext_end = text[BLOCK..].find("END     ").unwrap() + BLOCK;
        let mut named = named;
        named[ext_end..ext_end + CARD].copy_from_slice(format!("{:<80}", "TFIELDS = 5").as_bytes());
        named[ext_end + CARD..ext_end + 2 * CARD]
            .copy_from_slice(format!("{:<80}", "END").as_bytes());
        std::fs::write(&path, &named).unwrap();
        let want = format!("{:?}", sample());
        for hdu in [
            Hdu::FirstTable,
            Hdu::Index(1),
            Hdu::from("GALAXIES"),
            Hdu::from("galaxies"),
        ] {
            let t = read_fits_table(&path, hdu.clone()).unwrap_or_else(|e| panic!("{hdu}: {e}"));
            assert_eq!(format!("{t:?}"), want, "{hdu}");
        }
        let e = read_fits_table(&path, 0).unwrap_err().to_string();
        assert!(e.contains("not a binary table"), "{e}");
        let e = read_fits_table(&path, 2).unwrap_err().to_string();
        assert!(e.contains("no HDU 2"), "{e}");
        let e = read_fits_table(&path, "stars").unwrap_err().to_string();
        assert!(e.contains("EXTNAME `stars`"), "{e}");
        assert!(parse_fits(&named, &path, Some(1)).is_ok());
    }

    #[test]
    fn hostile_column_formats_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fits");
        let good = to_fits_bytes(&sample()).unwrap();
        for card in [
            "TFORM1  = '99999999999999999999999K'",
            "TFORM1  = '9223372036854775807K'",
            "TFORM1  = '2305843009213693952D'",
            "TFORM1  = 'Z'",
            "TFORM1  = ''",
            "TFORM1  = '2K'",
        ] {
            std::fs::write(&path, patch(&good, "TFORM1  =", card)).unwrap();
            let e = read_fits(&path).unwrap_err().to_string();
            assert!(e.contains("t.fits") && e.contains("HDU 1"), "{card}: {e}");
        }
        // A row of 0 bytes and 10^12 rows: no data to check against, still no allocation.
        let mut empty = Table::new();
        empty
            .push(ColumnMeta::named("a"), Column::Text(vec![]))
            .unwrap();
        let zero = to_fits_bytes(&empty).unwrap();
        let zero = patch(&zero, "TFORM1  =", "TFORM1  = '0A'");
        let zero = patch(&zero, "NAXIS1  =", "NAXIS1  =                    0");
        let zero = patch(&zero, "NAXIS2  =", "NAXIS2  =        1000000000000");
        std::fs::write(&path, &zero).unwrap();
        let e = read_fits(&path).unwrap_err().to_string();
        assert!(e.contains("do not fit"), "{e}");
        // A logical that is neither T, F nor 0 names its row and column.
        let mut bad = good.clone();
        let data = 2 * BLOCK;
        let row = 8 + 8 + 4 + 4 + 1; // objid, ra, x, name (4A), ok
        bad[data + row + row - 1] = b'X';
        std::fs::write(&path, &bad).unwrap();
        let e = read_fits(&path).unwrap_err().to_string();
        assert!(e.contains("row 2") && e.contains("`ok`"), "{e}");
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

    /// Runs HEASARC's `fitsverify` on `path` when it is installed: no errors and no warnings.
    fn fitsverify(path: &Path) {
        match std::process::Command::new("fitsverify")
            .arg("-q")
            .arg(path)
            .output()
        {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success() && text.contains("verification OK"),
                    "fitsverify {}: {text}",
                    path.display()
                );
            }
            Err(_) => eprintln!(
                "\n*** NOTE: fitsverify is not installed (apt-get install fitsverify); {} was \
                 NOT checked ***\n",
                path.display()
            ),
        }
    }

    #[test]
    fn fitsverify_accepts_what_we_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fits");
        write_fits(&path, &sample()).unwrap();
        fitsverify(&path);
        // No rows, and no columns at all.
        let mut t = Table::new();
        t.push(ColumnMeta::named("a"), Column::Int64(vec![]))
            .unwrap();
        write_fits(&path, &t).unwrap();
        fitsverify(&path);
        write_fits(&path, &Table::new()).unwrap();
        fitsverify(&path);
    }
}
