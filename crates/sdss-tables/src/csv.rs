//! CSV: read with a header row, column types inferred; written with the exact text of each value.

use std::io::Write;
use std::path::Path;

use crate::{cell, infer_column, ColumnMeta, Table, TableError};

/// Reads a CSV with a header row (RFC 4180 quoting, rows at most
/// [`sdss_io::stack::MAX_CSV_ROW_BYTES`]). Each column becomes 64-bit integers, floats, booleans or
/// text, whichever every present value fits; empty cells and pandas' NA spellings are missing.
pub fn read_csv(path: &Path) -> Result<Table, TableError> {
    let text = std::fs::read_to_string(path).map_err(|e| TableError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    parse_csv(&text, path)
}

/// [`read_csv`] on text already in memory; `path` only names the source in errors.
pub fn parse_csv(text: &str, path: &Path) -> Result<Table, TableError> {
    let rows = sdss_io::stack::read_csv_str(text, path)
        .map_err(|e| TableError::format(path, e.to_string()))?;
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(TableError::format(
            path,
            "empty file: expected a header row",
        ));
    };
    let names: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); names.len()];
    for (line, fields) in rows {
        if fields.len() != names.len() {
            return Err(TableError::format(
                path,
                format!(
                    "line {line}: {} fields where the header has {}",
                    fields.len(),
                    names.len()
                ),
            ));
        }
        for (k, f) in fields.iter().enumerate() {
            cells[k].push(cell(f));
        }
    }
    let mut table = Table::new();
    for (name, values) in names.into_iter().zip(cells) {
        table
            .push(ColumnMeta::named(&name), infer_column(values))
            .map_err(|e| TableError::format(path, format!("header: {e}")))?;
    }
    Ok(table)
}

/// Writes `table` as CSV, atomically: a header row of names, then each value's exact text (empty
/// where missing).
pub fn write_csv(path: &Path, table: &Table) -> Result<(), TableError> {
    sdss_io::atomic::write_atomic(path, |w| write_rows(w, table))?;
    Ok(())
}

/// The comma-separated body shared by CSV and ECSV: a row of names, then each value's exact text
/// (empty where missing, so an empty string reads back as missing, as pandas reads it).
pub(crate) fn write_rows(w: &mut dyn Write, table: &Table) -> std::io::Result<()> {
    use sdss_io::stack::csv_field;
    let columns: Vec<_> = table.columns().collect();
    let names: Vec<String> = columns
        .iter()
        .map(|(m, _)| csv_field(&m.name).into_owned())
        .collect();
    writeln!(w, "{}", names.join(","))?;
    for row in 0..table.nrows() {
        let fields: Vec<String> = columns
            .iter()
            .map(|(_, c)| {
                c.text(row)
                    .map(|t| csv_field(&t).into_owned())
                    .unwrap_or_default()
            })
            .collect();
        writeln!(w, "{}", fields.join(","))?;
    }
    Ok(())
}
