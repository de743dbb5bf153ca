//! ECSV 1.0, astropy's enhanced CSV: a YAML header (in `#` comment lines) giving each column's
//! datatype, unit, description and UCD, then delimited text.

use std::io::Write;
use std::path::Path;

use crate::{cell, Column, ColumnMeta, Table, TableError};

/// Writes `table` as ECSV 1.0 (comma-delimited), atomically. Missing values are empty fields, which
/// astropy reads as masked; the UCD goes in each column's `meta`.
pub fn write_ecsv(path: &Path, table: &Table) -> Result<(), TableError> {
    use sdss_io::stack::csv_field;
    let columns: Vec<_> = table.columns().collect();
    sdss_io::atomic::write_atomic(path, |w| {
        writeln!(w, "# %ECSV 1.0\n# ---\n# delimiter: ','\n# datatype:")?;
        for (m, c) in &columns {
            writeln!(w, "# - name: {}", yaml_quote(&m.name))?;
            if let Some(u) = &m.unit {
                writeln!(w, "#   unit: {}", yaml_quote(u))?;
            }
            writeln!(w, "#   datatype: {}", c.ecsv_type())?;
            if let Some(d) = &m.description {
                writeln!(w, "#   description: {}", yaml_quote(d))?;
            }
            if let Some(u) = &m.ucd {
                writeln!(w, "#   meta: {{ucd: {}}}", yaml_quote(u))?;
            }
        }
        writeln!(w, "# schema: astropy-2.0")?;
        let names: Vec<String> = columns
            .iter()
            .map(|(m, _)| csv_field(&m.name).into_owned())
            .collect();
        writeln!(w, "{}", names.join(","))?;
        for row in 0..table.nrows() {
            let fields: Vec<String> = columns
                .iter()
                // An empty string is written, and read back, as missing (as pandas reads it).
                .map(|(_, c)| {
                    c.text(row)
                        .map(|t| csv_field(&t).into_owned())
                        .unwrap_or_default()
                })
                .collect();
            writeln!(w, "{}", fields.join(","))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// A YAML single-quoted scalar.
fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn yaml_unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        s[1..s.len() - 1].replace("''", "'")
    } else if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1].replace("\\\"", "\"")
    } else {
        s.to_owned()
    }
}

/// One column's header entry.
#[derive(Default)]
struct Entry {
    name: String,
    datatype: String,
    unit: Option<String>,
    description: Option<String>,
    ucd: Option<String>,
}

/// Splits `a: 1, b: {c: 2}, d: 'x, y'` at top-level commas.
fn split_flow(s: &str) -> Vec<String> {
    let (mut parts, mut cur, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None);
    for ch in s.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(ch),
            (None, '{' | '[') => depth += 1,
            (None, '}' | ']') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        parts.push(cur);
    }
    parts
}

fn apply(entry: &mut Entry, key: &str, value: &str) {
    let value = value.trim();
    match key.trim() {
        "name" => entry.name = yaml_unquote(value),
        "datatype" => entry.datatype = yaml_unquote(value),
        "unit" => entry.unit = Some(yaml_unquote(value)),
        "description" => entry.description = Some(yaml_unquote(value)),
        "meta" => {
            let inner = value.trim_start_matches('{').trim_end_matches('}');
            for part in split_flow(inner) {
                if let Some((k, v)) = part.split_once(':') {
                    if k.trim() == "ucd" {
                        entry.ucd = Some(yaml_unquote(v));
                    }
                }
            }
        }
        "ucd" => entry.ucd = Some(yaml_unquote(value)),
        _ => {}
    }
}

/// Parses the `datatype:` list of the YAML header (block or flow entries, as astropy writes them).
fn parse_header(path: &Path, lines: &[&str]) -> Result<(Vec<Entry>, char), TableError> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut delimiter = ' ';
    let mut in_datatype = false;
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if indent == 0 && !t.starts_with('-') {
            in_datatype = t.starts_with("datatype:");
            if let Some(d) = t.strip_prefix("delimiter:") {
                delimiter = match yaml_unquote(d).as_str() {
                    "," => ',',
                    " " => ' ',
                    other => {
                        return Err(TableError::format(
                            path,
                            format!("ECSV delimiter `{other}` is neither ' ' nor ','"),
                        ))
                    }
                };
            }
            continue;
        }
        if !in_datatype {
            continue;
        }
        if let Some(item) = t.strip_prefix('-') {
            entries.push(Entry::default());
            let item = item.trim();
            let Some(entry) = entries.last_mut() else {
                continue;
            };
            if let Some(flow) = item.strip_prefix('{') {
                for part in split_flow(flow.strip_suffix('}').unwrap_or(flow)) {
                    if let Some((k, v)) = part.split_once(':') {
                        apply(entry, k, v);
                    }
                }
            } else if let Some((k, v)) = item.split_once(':') {
                apply(entry, k, v);
            }
        } else if let (Some(entry), Some((k, v))) = (entries.last_mut(), t.split_once(':')) {
            if indent <= 2 {
                apply(entry, k, v);
            } else if k.trim() == "ucd" {
                // `meta:` written in block style, its `ucd:` one level deeper.
                entry.ucd = Some(yaml_unquote(v));
            }
        }
    }
    Ok((entries, delimiter))
}

/// Splits a space-delimited ECSV line (runs of spaces separate, double quotes group).
fn split_spaces(line: &str) -> Vec<(String, bool)> {
    let (mut out, mut cur, mut quoted, mut in_q, mut any) =
        (Vec::new(), String::new(), false, false, false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_q && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => {
                in_q = !in_q;
                quoted = true;
                any = true;
            }
            ' ' | '\t' if !in_q => {
                if any {
                    out.push((std::mem::take(&mut cur), quoted));
                    quoted = false;
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push((cur, quoted));
    }
    out
}

/// Reads an ECSV 1.0 file: column names, datatypes, units, descriptions and UCDs from its header.
/// Integer types become [`Column::Int64`] (a `uint64` beyond `i64::MAX` is an error), `float32`
/// [`Column::Float32`], other floats [`Column::Float64`], `bool` booleans, anything else text.
/// Empty fields are missing, as astropy writes masked values.
pub fn read_ecsv(path: &Path) -> Result<Table, TableError> {
    let text = std::fs::read_to_string(path).map_err(|e| TableError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    parse_ecsv(&text, path)
}

/// [`read_ecsv`] on text already in memory; `path` only names the source in errors.
pub fn parse_ecsv(text: &str, path: &Path) -> Result<Table, TableError> {
    let mut header = Vec::new();
    let mut body_start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim_end_matches(['\n', '\r']);
        if let Some(h) = l.strip_prefix('#') {
            header.push(h.strip_prefix(' ').unwrap_or(h));
            offset += line.len();
            body_start = offset;
        } else if l.trim().is_empty() && header.is_empty() {
            offset += line.len();
            body_start = offset;
        } else {
            break;
        }
    }
    if !header.first().is_some_and(|h| h.starts_with("%ECSV")) {
        return Err(TableError::format(
            path,
            "not ECSV: the first line must be `# %ECSV 1.0`",
        ));
    }
    let yaml: Vec<&str> = header
        .iter()
        .skip(1)
        .copied()
        .filter(|l| l.trim() != "---")
        .collect();
    let (entries, delimiter) = parse_header(path, &yaml)?;
    let body = &text[body_start..];
    let rows: Vec<(usize, Vec<(String, bool)>)> = if delimiter == ',' {
        sdss_io::stack::read_csv_str(body, path)
            .map_err(|e| TableError::format(path, e.to_string()))?
            .into_iter()
            .map(|(l, f)| (l, f.into_iter().map(|s| (s, false)).collect()))
            .collect()
    } else {
        body.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, split_spaces(l)))
            .collect()
    };
    let line_of = |l: usize| l + header.len();
    let mut rows = rows.into_iter();
    let Some((_, names)) = rows.next() else {
        return Err(TableError::format(
            path,
            "no column-name row after the header",
        ));
    };
    if names.len() != entries.len()
        || names
            .iter()
            .zip(&entries)
            .any(|((n, _), e)| n.trim() != e.name)
    {
        return Err(TableError::format(
            path,
            format!(
                "the column-name row ({}) does not match the header's datatype list ({})",
                names
                    .iter()
                    .map(|n| n.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                entries
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); entries.len()];
    for (line, fields) in rows {
        if fields.len() != entries.len() {
            return Err(TableError::format(
                path,
                format!(
                    "line {}: {} fields where the header has {} columns",
                    line_of(line),
                    fields.len(),
                    entries.len()
                ),
            ));
        }
        for (k, (f, _quoted)) in fields.into_iter().enumerate() {
            // Empty text is missing, as everywhere in this crate (and as pandas reads it).
            cells[k].push(if entries[k].datatype == "string" {
                (!f.is_empty()).then_some(f)
            } else {
                cell(&f)
            });
        }
    }
    let mut table = Table::new();
    for (e, values) in entries.into_iter().zip(cells) {
        let bad = |row: usize, v: &str| {
            TableError::format(
                path,
                format!(
                    "column `{}` ({}), data row {}: `{v}` is not a {}",
                    e.name,
                    e.datatype,
                    row + 1,
                    e.datatype
                ),
            )
        };
        let column = match e.datatype.as_str() {
            t if t.starts_with("int") || t.starts_with("uint") => Column::Int64(
                values
                    .iter()
                    .enumerate()
                    .map(|(r, v)| {
                        v.as_deref()
                            .map(|s| s.parse::<i64>().map_err(|_| bad(r, s)))
                            .transpose()
                    })
                    .collect::<Result<_, _>>()?,
            ),
            "float32" => Column::Float32(
                values
                    .iter()
                    .enumerate()
                    .map(|(r, v)| {
                        v.as_deref()
                            .map_or(Ok(f32::NAN), |s| s.parse::<f32>().map_err(|_| bad(r, s)))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            t if t.starts_with("float") => Column::Float64(
                values
                    .iter()
                    .enumerate()
                    .map(|(r, v)| {
                        v.as_deref()
                            .map_or(Ok(f64::NAN), |s| s.parse::<f64>().map_err(|_| bad(r, s)))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            "bool" => Column::Bool(
                values
                    .iter()
                    .enumerate()
                    .map(|(r, v)| {
                        v.as_deref()
                            .map(|s| match s {
                                "True" | "true" | "1" => Ok(true),
                                "False" | "false" | "0" => Ok(false),
                                _ => Err(bad(r, s)),
                            })
                            .transpose()
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => Column::Text(values),
        };
        let meta = ColumnMeta {
            name: e.name.clone(),
            unit: e.unit.clone(),
            ucd: e.ucd.clone(),
            description: e.description.clone(),
        };
        table
            .push(meta, column)
            .map_err(|err| TableError::format(path, err.to_string()))?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_awkward_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.ecsv");
        let mut t = Table::new();
        t.push(ColumnMeta::ra(), Column::Float64(vec![1.5, f64::NAN, 3.0]))
            .unwrap();
        t.push(
            ColumnMeta {
                description: Some("it's: odd # \"x\"".into()),
                ..ColumnMeta::named("note")
            },
            Column::Text(vec![Some("a, b".into()), None, Some(" \"q\" ".into())]),
        )
        .unwrap();
        t.push(
            ColumnMeta::named("id"),
            Column::Int64(vec![Some(i64::MAX), None, Some(-1)]),
        )
        .unwrap();
        t.push(
            ColumnMeta::named("ok"),
            Column::Bool(vec![Some(true), None, Some(false)]),
        )
        .unwrap();
        write_ecsv(&path, &t).unwrap();
        let back = read_ecsv(&path).unwrap();
        let (a, b) = (format!("{:?}", t), format!("{:?}", back));
        assert_eq!(a, b);
    }

    #[test]
    fn space_delimited_flow_style_as_astropy_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.ecsv");
        std::fs::write(
            &path,
            "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: a, datatype: int64}\n# - {name: b, unit: deg, datatype: float64, meta: {ucd: pos.eq.ra}}\n# - {name: c, datatype: string}\n# schema: astropy-2.0\na b c\n1 2.5 \"x y\"\n\"\" nan z\n",
        )
        .unwrap();
        let t = read_ecsv(&path).unwrap();
        assert_eq!(t.column("a"), Some(&Column::Int64(vec![Some(1), None])));
        assert_eq!(t.meta("b").unwrap().ucd.as_deref(), Some("pos.eq.ra"));
        assert_eq!(t.column("c").unwrap().text(0).unwrap(), "x y");
        assert!(t.column("b").unwrap().is_missing(1));
    }

    #[test]
    fn bad_files_are_errors_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.ecsv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        assert!(read_ecsv(&path).unwrap_err().to_string().contains("%ECSV"));
        std::fs::write(
            &path,
            "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: a, datatype: int64}\na\n1\nx\n",
        )
        .unwrap();
        let e = read_ecsv(&path).unwrap_err().to_string();
        assert!(e.contains("data row 2") && e.contains("`x`"), "{e}");
    }
}
