//! The galaxy catalogue: a CSV with `id`, `ra`, `dec` and either `petroR50` or `scale`.
//!
//! Every row is checked before anything is downloaded, and every bad row is reported with its line
//! number, so a user fixes the whole file in one go rather than one error per run.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{CatalogError, RowProblem};

/// Pixel scale per arcsecond of Petrosian half-light radius: the original project's cutouts use
/// `scale = 0.02 × petroR50` arcsec/pixel, so a 424-pixel image spans 8.48 half-light radii.
pub const SCALE_PER_PETRO_R50: f64 = 0.02;

/// One galaxy of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Galaxy {
    /// Identifier; the image is saved as `<id>.jpg`.
    pub id: String,
    /// Right ascension (J2000), degrees in [0, 360).
    pub ra: f64,
    /// Declination (J2000), degrees in [−90, 90].
    pub dec: f64,
    /// Pixel scale of the cutout, arcsec per pixel (from the `scale` column, or 0.02 × `petroR50`).
    pub scale: f64,
    /// 1-based line of the catalogue this galaxy came from.
    pub line: usize,
}

impl Galaxy {
    /// The image file name for this galaxy: `<id>.jpg`.
    pub fn file_name(&self) -> String {
        format!("{}.jpg", self.id)
    }
}

/// Reads and validates a catalogue CSV (RFC 4180 quoting; header row required; column names are matched
/// case-insensitively; other columns are ignored).
///
/// Needs `id`, `ra`, `dec`, and `scale` (arcsec/pixel) or `petroR50` (arcsec; scale = 0.02 × petroR50).
/// When both are present a row's `scale` wins and `petroR50` is used where `scale` is empty. Rows with
/// missing or non-numeric values, ra outside [0, 360), dec outside [−90, 90], a non-positive radius or
/// scale, an id that cannot be a file name, or an id seen before are all reported together in one
/// [`CatalogError::Rows`].
pub fn read_catalog(path: impl AsRef<Path>) -> Result<Vec<Galaxy>, CatalogError> {
    let path = path.as_ref();
    let rows = sdss_io::stack::read_csv(path).map_err(|e| CatalogError::Read {
        path: path.to_owned(),
        source: e,
    })?;
    parse_rows(path, rows)
}

/// [`read_catalog`] on CSV text already in memory; `path` only names the source in errors.
pub fn parse_catalog(text: &str, path: &Path) -> Result<Vec<Galaxy>, CatalogError> {
    let rows = sdss_io::stack::read_csv_str(text, path).map_err(|e| CatalogError::Read {
        path: path.to_owned(),
        source: e,
    })?;
    parse_rows(path, rows)
}

/// Where each required column sits in the header.
struct Columns {
    id: usize,
    ra: usize,
    dec: usize,
    scale: Option<usize>,
    petro_r50: Option<usize>,
}

fn find_columns(path: &Path, header: &[String]) -> Result<Columns, CatalogError> {
    let find = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let missing: Vec<&str> = ["id", "ra", "dec"]
        .into_iter()
        .filter(|n| find(n).is_none())
        .collect();
    let scale = find("scale");
    let petro_r50 = find("petroR50");
    let mut reasons = Vec::new();
    if !missing.is_empty() {
        reasons.push(format!("missing column(s) {}", missing.join(", ")));
    }
    if scale.is_none() && petro_r50.is_none() {
        reasons.push("needs a `petroR50` (arcsec) or a `scale` (arcsec/pixel) column".to_owned());
    }
    match (find("id"), find("ra"), find("dec")) {
        (Some(id), Some(ra), Some(dec)) if reasons.is_empty() => Ok(Columns {
            id,
            ra,
            dec,
            scale,
            petro_r50,
        }),
        _ => Err(CatalogError::Header {
            path: path.to_owned(),
            reason: format!("header {header:?}: {}", reasons.join("; ")),
        }),
    }
}

fn parse_rows(path: &Path, rows: Vec<(usize, Vec<String>)>) -> Result<Vec<Galaxy>, CatalogError> {
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(CatalogError::Header {
            path: path.to_owned(),
            reason: "empty file: expected a header row with id, ra, dec and petroR50 or scale"
                .into(),
        });
    };
    let cols = find_columns(path, &header)?;
    let mut galaxies = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, fields) in rows {
        let mut reasons = Vec::new();
        let get = |i: usize| fields.get(i).map(|s| s.trim()).filter(|s| !s.is_empty());
        let id = get(cols.id);
        match id {
            None => reasons.push("missing id".to_owned()),
            Some(id) => {
                if let Err(why) = check_id(id) {
                    reasons.push(why);
                }
                if let Some(first) = seen.get(id) {
                    reasons.push(format!("duplicate id `{id}` (first on line {first})"));
                }
            }
        }
        let ra = number(get(cols.ra), "ra", &mut reasons);
        if let Some(ra) = ra {
            if !(0.0..360.0).contains(&ra) {
                reasons.push(format!("ra {ra} outside [0, 360)"));
            }
        }
        let dec = number(get(cols.dec), "dec", &mut reasons);
        if let Some(dec) = dec {
            if !(-90.0..=90.0).contains(&dec) {
                reasons.push(format!("dec {dec} outside [-90, 90]"));
            }
        }
        let scale = match (cols.scale.and_then(get), cols.petro_r50.and_then(get)) {
            (Some(s), _) => positive(
                number(Some(s), "scale", &mut reasons),
                "scale",
                &mut reasons,
            ),
            (None, Some(r)) => positive(
                number(Some(r), "petroR50", &mut reasons),
                "petroR50",
                &mut reasons,
            )
            .map(|r| r * SCALE_PER_PETRO_R50),
            (None, None) => {
                let names: Vec<&str> = [
                    cols.scale.map(|_| "scale"),
                    cols.petro_r50.map(|_| "petroR50"),
                ]
                .into_iter()
                .flatten()
                .collect();
                reasons.push(format!("missing {}", names.join(" or ")));
                None
            }
        };
        if let Some(id) = id {
            seen.entry(id.to_owned()).or_insert(line);
        }
        match (id, ra, dec, scale) {
            (Some(id), Some(ra), Some(dec), Some(scale)) if reasons.is_empty() => {
                galaxies.push(Galaxy {
                    id: id.to_owned(),
                    ra,
                    dec,
                    scale,
                    line,
                })
            }
            _ => problems.push(RowProblem {
                line,
                reason: reasons.join("; "),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(CatalogError::Rows {
            path: path.to_owned(),
            problems,
        });
    }
    if galaxies.is_empty() {
        return Err(CatalogError::Header {
            path: path.to_owned(),
            reason: "no galaxies: the file has a header but no rows".into(),
        });
    }
    Ok(galaxies)
}

/// Parses a finite number, recording why not.
fn number(text: Option<&str>, name: &str, reasons: &mut Vec<String>) -> Option<f64> {
    let Some(text) = text else {
        reasons.push(format!("missing {name}"));
        return None;
    };
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        _ => {
            reasons.push(format!("{name} `{text}` is not a finite number"));
            None
        }
    }
}

fn positive(v: Option<f64>, name: &str, reasons: &mut Vec<String>) -> Option<f64> {
    let v = v?;
    if v > 0.0 {
        Some(v)
    } else {
        reasons.push(format!("{name} {v} must be positive"));
        None
    }
}

/// An id becomes a file name, so it must be one: no path separators, no leading dot, no control
/// characters.
fn check_id(id: &str) -> Result<(), String> {
    if id.contains(['/', '\\']) || id.starts_with('.') || id.chars().any(char::is_control) {
        Err(format!(
            "id `{}` cannot be a file name (no `/`, `\\`, leading `.` or control characters)",
            id.escape_debug()
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Galaxy>, CatalogError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cat.csv");
        std::fs::write(&path, text).unwrap();
        read_catalog(&path)
    }

    #[test]
    fn petro_r50_gives_the_original_scale() {
        let g = parse("id,ra,dec,petroR50\nA,10.5,-3.25,12.5\n").unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].id, "A");
        assert!((g[0].scale - 0.25).abs() < 1e-12);
        assert_eq!(g[0].line, 2);
    }

    #[test]
    fn scale_wins_over_petro_r50_and_fills_gaps() {
        let g = parse("ID,RA,Dec,petroR50,scale,name\nA,1,2,10,0.7,x\nB,1,2,10,,y\n").unwrap();
        assert_eq!(g[0].scale, 0.7);
        assert!((g[1].scale - 0.2).abs() < 1e-12);
    }

    #[test]
    fn header_without_size_column_is_rejected() {
        let e = parse("id,ra,dec\nA,1,2\n").unwrap_err();
        assert!(e.to_string().contains("petroR50"), "{e}");
        let e = parse("name,ra\n").unwrap_err();
        assert!(e.to_string().contains("missing column(s) id, dec"), "{e}");
    }

    #[test]
    fn ids_must_be_file_names() {
        for bad in ["a/b", "..", ".hidden", "a\\b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        assert!(check_id("NGC 4472").is_ok());
        assert!(check_id("587722981742084144").is_ok());
    }
}
