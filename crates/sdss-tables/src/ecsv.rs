//! ECSV 1.0, astropy's enhanced CSV: a YAML header (in `#` comment lines) giving each column's
//! datatype, unit, description and UCD, then delimited text.

use std::io::Write;
use std::path::Path;

use crate::{cell, Column, ColumnMeta, Table, TableError};

/// Writes `table` as ECSV 1.0 (comma-delimited), atomically. Missing values are empty fields, which
/// astropy reads as masked; the UCD goes in each column's `meta`.
pub fn write_ecsv(path: &Path, table: &Table) -> Result<(), TableError> {
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
        crate::csv::write_rows(w, table)
    })?;
    Ok(())
}

/// A YAML single-quoted scalar.
fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The value of a YAML scalar: single-quoted (`''` is a quote), double-quoted (backslash escapes,
/// as PyYAML writes non-ASCII text: `\xFC`, `\u00fc`), or plain.
fn yaml_unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        s[1..s.len() - 1].replace("''", "'")
    } else if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        let mut out = String::new();
        let mut chars = s[1..s.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            let hex = |chars: &mut std::str::Chars<'_>, n: usize| {
                let h: String = chars.take(n).collect();
                u32::from_str_radix(&h, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}')
            };
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('0') => out.push('\0'),
                Some('x') => out.push(hex(&mut chars, 2)),
                Some('u') => out.push(hex(&mut chars, 4)),
                Some('U') => out.push(hex(&mut chars, 8)),
                Some(other) => out.push(other),
                None => {}
            }
        }
        out
    } else {
        s.to_owned()
    }
}

/// Scans YAML flow text: calls `at` with each character outside quotes and its bracket depth, and
/// says whether the text ends inside a quote or an open bracket. A quote only opens at the start
/// of a scalar, so a plain `it's` is no quote.
fn scan_flow(s: &str, mut at: impl FnMut(usize, char, i32) -> bool) -> bool {
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, true);
    let mut chars = s.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        match quote {
            Some('\'') if ch == '\'' => {
                if chars.peek().map(|&(_, c)| c) == Some('\'') {
                    chars.next();
                } else {
                    quote = None;
                }
                continue;
            }
            Some('"') if ch == '\\' => {
                chars.next();
                continue;
            }
            Some('"') if ch == '"' => {
                quote = None;
                continue;
            }
            Some(_) => continue,
            None => {}
        }
        match ch {
            '\'' | '"' if start => {
                quote = Some(ch);
                start = false;
                continue;
            }
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ => {}
        }
        if !at(i, ch, depth) {
            return false;
        }
        start = matches!(ch, ' ' | '\t' | '{' | '[' | ',' | ':' | '-');
    }
    quote.is_some() || depth > 0
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
    let mut cuts = Vec::new();
    scan_flow(s, |i, ch, depth| {
        if ch == ',' && depth == 0 {
            cuts.push(i);
        }
        true
    });
    let mut parts = Vec::new();
    let mut from = 0;
    for cut in cuts {
        parts.push(s[from..cut].to_owned());
        from = cut + 1;
    }
    if !s[from..].trim().is_empty() {
        parts.push(s[from..].to_owned());
    }
    parts
}

/// Splits `key: value` at the first colon outside quotes and brackets.
fn split_key(s: &str) -> Option<(&str, &str)> {
    let mut at = None;
    scan_flow(s, |i, ch, depth| {
        if ch == ':' && depth == 0 {
            at = Some(i);
            return false;
        }
        true
    });
    at.map(|i| (&s[..i], &s[i + 1..]))
}

/// The `ucd` inside a column's `meta` (a flow mapping, or an `!!omap` list of one-key mappings).
fn find_ucd(value: &str) -> Option<String> {
    find_ucd_nested(value, 0)
}

/// How deep `find_ucd` follows nested mappings: astropy writes `meta` one or two levels deep, and a
/// bound keeps a crafted header (`[[[[…`) from overflowing the stack.
const MAX_META_DEPTH: usize = 16;

fn find_ucd_nested(value: &str, depth: usize) -> Option<String> {
    if depth > MAX_META_DEPTH {
        return None;
    }
    let v = value.trim().trim_start_matches("!!omap").trim();
    // Each recursion must get shorter text: an unclosed bracket (`{abc`) split into one part
    // would be handed back unchanged, forever (found by the `tables` fuzz target).
    let (inner, bracketed) = match v
        .strip_prefix(['{', '['])
        .and_then(|v| v.strip_suffix(['}', ']']))
    {
        Some(inner) => (inner, true),
        None => (v, false),
    };
    for part in split_flow(inner) {
        let part = part.trim();
        if part.starts_with(['{', '[']) && (bracketed || part.len() < v.len()) {
            if let Some(u) = find_ucd_nested(part, depth + 1) {
                return Some(u);
            }
        } else if let Some((k, v)) = split_key(part) {
            if yaml_unquote(k) == "ucd" {
                return Some(yaml_unquote(v));
            }
        }
    }
    None
}

/// Joins YAML lines that continue the one before (PyYAML wraps long values at about 80
/// characters): a line inside an open quote or bracket, or indented deeper than the line before
/// without starting a new `key:` or `- ` item. A line break inside a value reads as a space.
fn logical_lines(lines: &[&str]) -> Vec<String> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for line in lines {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let new_item = t.starts_with("- ")
            || t == "-"
            || split_key(t)
                .is_some_and(|(k, v)| !k.trim().is_empty() && (v.is_empty() || v.starts_with(' ')));
        match out.last_mut() {
            Some((prev_indent, prev))
                if scan_flow(prev, |_, _, _| true) || (indent > *prev_indent && !new_item) =>
            {
                prev.push(' ');
                prev.push_str(t);
            }
            _ => out.push((indent, (*line).to_owned())),
        }
    }
    out.into_iter().map(|(_, l)| l).collect()
}

fn apply(entry: &mut Entry, key: &str, value: &str) {
    let value = value.trim();
    match yaml_unquote(key).as_str() {
        "name" => entry.name = yaml_unquote(value),
        "datatype" => entry.datatype = yaml_unquote(value),
        "unit" => entry.unit = Some(yaml_unquote(value)),
        "description" => entry.description = Some(yaml_unquote(value)),
        "meta" => {
            if let Some(u) = find_ucd(value) {
                entry.ucd = Some(u);
            }
        }
        "ucd" => entry.ucd = Some(yaml_unquote(value)),
        _ => {}
    }
}

/// Parses the `datatype:` list of the YAML header (block or flow entries, as astropy writes them).
fn parse_header(path: &Path, lines: &[&str]) -> Result<(Vec<Entry>, char), TableError> {
    let lines = logical_lines(lines);
    let mut entries: Vec<Entry> = Vec::new();
    let mut delimiter = ' ';
    let mut in_datatype = false;
    for line in &lines {
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
        if let Some(item) = t.strip_prefix('-').filter(|_| indent == 0) {
            entries.push(Entry::default());
            let item = item.trim();
            let Some(entry) = entries.last_mut() else {
                continue;
            };
            if let Some(flow) = item.strip_prefix('{') {
                for part in split_flow(flow.strip_suffix('}').unwrap_or(flow)) {
                    if let Some((k, v)) = split_key(&part) {
                        apply(entry, k, v);
                    }
                }
            } else if let Some((k, v)) = split_key(item) {
                apply(entry, k, v);
            }
        } else if let Some(entry) = entries.last_mut() {
            if let Some(item) = t.strip_prefix('-') {
                // An item of a block-style `meta: !!omap` list: `- {ucd: ...}`.
                if let Some(u) = find_ucd(item) {
                    entry.ucd = Some(u);
                }
            } else if let Some((k, v)) = split_key(t) {
                if indent <= 2 {
                    apply(entry, k, v);
                } else if yaml_unquote(k) == "ucd" {
                    // `meta:` written as a block mapping, its `ucd:` one level deeper.
                    entry.ucd = Some(yaml_unquote(v));
                }
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
/// Integer types become [`Column::Int64`] (a `uint64` column holding a value beyond `i64::MAX`
/// becomes exact decimal [`Column::Text`]), `float32`
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
            t if t.starts_with("int") || t.starts_with("uint") => {
                let wide: Vec<Option<i128>> = values
                    .iter()
                    .enumerate()
                    .map(|(r, v)| {
                        v.as_deref()
                            .map(|s| s.parse::<i128>().map_err(|_| bad(r, s)))
                            .transpose()
                    })
                    .collect::<Result<_, _>>()?;
                if wide.iter().flatten().all(|&v| i64::try_from(v).is_ok()) {
                    Column::Int64(wide.iter().map(|v| v.map(|v| v as i64)).collect())
                } else {
                    // A uint64 beyond i64::MAX: exact decimal text rather than a float.
                    Column::Text(wide.iter().map(|v| v.map(|v| v.to_string())).collect())
                }
            }
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
    fn wrapped_values_and_omap_meta_as_pyyaml_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.ecsv");
        // Written by astropy 8 (PyYAML wraps at 80 columns; column meta is an !!omap).
        std::fs::write(
            &path,
            "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: a b, datatype: int64, description: 'A very long description of this column that goes on and on: it has colons, commas, and\n#     # hashes too and more words here'}\n# - name: x\n#   datatype: float64\n#   description: \"S\\xFCdstern \\\"q\\\"\"\n#   meta: !!omap\n#   - {ucd: phot.mag;em.opt.R}\n#   - other: {k: 1}\n# schema: astropy-2.0\n\"a b\" x\n1 1.5\n2 2.5\n",
        )
        .unwrap();
        let t = read_ecsv(&path).unwrap();
        assert_eq!(t.column_names().collect::<Vec<_>>(), ["a b", "x"]);
        assert_eq!(
            t.meta("a b").unwrap().description.as_deref(),
            Some("A very long description of this column that goes on and on: it has colons, commas, and # hashes too and more words here")
        );
        let x = t.meta("x").unwrap();
        assert_eq!(x.ucd.as_deref(), Some("phot.mag;em.opt.R"));
        assert_eq!(x.description.as_deref(), Some("Südstern \"q\""));
        assert_eq!(
            t.column("a b"),
            Some(&Column::Int64(vec![Some(1), Some(2)]))
        );
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
