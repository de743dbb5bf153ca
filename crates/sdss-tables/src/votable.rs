//! VOTable 1.4 with TABLEDATA serialization: the XML table format of the Virtual Observatory.

use std::io::Write;
use std::path::Path;

use crate::{Column, Table, TableError};

/// Escapes text for XML content and attribute values; characters XML 1.0 forbids become U+FFFD.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Writes `table` as a VOTable 1.4 document (one RESOURCE, one TABLE, TABLEDATA), atomically.
/// Integers are `long` (exact 64-bit ids), floats `double`/`float`, text `char` with
/// `arraysize="*"`, booleans `boolean`; units and UCDs go on each FIELD. Missing values are empty
/// cells (`NaN` for floats), as the standard prescribes.
pub fn write_votable(path: &Path, table: &Table) -> Result<(), TableError> {
    let columns: Vec<_> = table.columns().collect();
    sdss_io::atomic::write_atomic(path, |w| {
        writeln!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
        writeln!(
            w,
            "<VOTABLE version=\"1.4\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xsi:schemaLocation=\"http://www.ivoa.net/xml/VOTable/v1.3 http://www.ivoa.net/xml/VOTable/v1.3\">"
        )?;
        writeln!(w, "<RESOURCE type=\"results\">")?;
        writeln!(w, "<TABLE nrows=\"{}\">", table.nrows())?;
        for (m, c) in &columns {
            let datatype = match c {
                Column::Int64(_) => "datatype=\"long\"",
                Column::Float64(_) => "datatype=\"double\"",
                Column::Float32(_) => "datatype=\"float\"",
                Column::Text(_) => "datatype=\"char\" arraysize=\"*\"",
                Column::Bool(_) => "datatype=\"boolean\"",
            };
            write!(w, "<FIELD name=\"{}\" {datatype}", xml(&m.name))?;
            if let Some(u) = &m.unit {
                write!(w, " unit=\"{}\"", xml(u))?;
            }
            if let Some(u) = &m.ucd {
                write!(w, " ucd=\"{}\"", xml(u))?;
            }
            match &m.description {
                Some(d) => writeln!(w, "><DESCRIPTION>{}</DESCRIPTION></FIELD>", xml(d))?,
                None => writeln!(w, "/>")?,
            }
        }
        writeln!(w, "<DATA><TABLEDATA>")?;
        for row in 0..table.nrows() {
            w.write_all(b"<TR>")?;
            for (_, c) in &columns {
                match c {
                    Column::Float64(_) | Column::Float32(_) if c.is_missing(row) => {
                        w.write_all(b"<TD>NaN</TD>")?
                    }
                    _ => match c.text(row) {
                        Some(t) => write!(w, "<TD>{}</TD>", xml(&t))?,
                        None => w.write_all(b"<TD/>")?,
                    },
                }
            }
            w.write_all(b"</TR>\n")?;
        }
        writeln!(w, "</TABLEDATA></DATA>\n</TABLE>\n</RESOURCE>\n</VOTABLE>")?;
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ColumnMeta;

    #[test]
    fn fields_cells_and_escaping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.vot");
        let mut t = Table::new();
        t.push(
            ColumnMeta::named("objid"),
            Column::Int64(vec![Some(1237648720693755918), None]),
        )
        .unwrap();
        t.push(ColumnMeta::dec(), Column::Float64(vec![-89.5, f64::NAN]))
            .unwrap();
        t.push(
            ColumnMeta::named("note"),
            Column::Text(vec![Some("<a & \"b\">".into()), None]),
        )
        .unwrap();
        write_votable(&path, &t).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("<FIELD name=\"objid\" datatype=\"long\"/>"),
            "{text}"
        );
        assert!(
            text.contains("unit=\"deg\" ucd=\"pos.eq.dec;meta.main\""),
            "{text}"
        );
        assert!(text.contains("<TR><TD>1237648720693755918</TD><TD>-89.5</TD><TD>&lt;a &amp; &quot;b&quot;&gt;</TD></TR>"), "{text}");
        assert!(text.contains("<TR><TD/><TD>NaN</TD><TD/></TR>"), "{text}");
    }
}
