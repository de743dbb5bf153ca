//! The catalogue stage of `run`: reads `--catalog`, joins it to the galaxies by id or by sky
//! position, and writes what did not join (`catalog_*.csv`) beside the results.
//!
//! The result is the catalogue re-indexed to the galaxies' row order: one row per galaxy, missing
//! where the galaxy was not joined, so every later stage (properties per cluster, the map, the
//! tables) indexes it like the labels.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sdss_crossmatch::{CrossMatch, SkyPosition};
use sdss_tables::{Column, ColumnMeta, Table};

/// Lines of each kind of miss shown in the log; all of them go to the CSV files.
const LOGGED_MISSES: usize = 20;

/// What `--catalog` and its options ask for.
#[derive(Debug, Clone)]
pub struct CatalogRequest<'a> {
    /// The catalogue: CSV, ECSV or FITS binary table.
    pub path: &'a Path,
    /// Column holding the galaxy ids (the image file stems).
    pub id_column: &'a str,
    /// Join on sky position within this radius (arcsec) instead of on ids.
    pub match_radius: Option<f64>,
    /// Where the galaxies' own positions are (a table with id, ra, dec): needed for sky matching.
    pub positions: Option<&'a Path>,
}

/// How the join went, for the log, the report and `run.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JoinSummary {
    /// The catalogue file.
    pub catalog: PathBuf,
    /// `id` or `sky`.
    pub on: String,
    /// Catalogue rows read.
    pub catalog_rows: usize,
    /// Galaxies joined to one catalogue row.
    pub matched: usize,
    /// Galaxies without a catalogue row.
    pub unmatched_galaxies: usize,
    /// Catalogue rows joined to no galaxy.
    pub unmatched_catalog_rows: usize,
    /// Galaxies with more than one candidate row, left unjoined.
    pub ambiguous: usize,
    /// Catalogue rows joined to more than one galaxy (sky matches: two cutouts of one object).
    pub shared_catalog_rows: usize,
}

/// The catalogue joined to the galaxies.
pub struct Joined {
    /// One row per galaxy (in the galaxies' order): the catalogue's columns, missing where the
    /// galaxy was not joined.
    pub table: Table,
    /// Each galaxy's sky position, where known (from the catalogue's or the positions file's
    /// `ra`/`dec`).
    pub positions: Option<Vec<Option<SkyPosition>>>,
    /// Counts of the join.
    pub summary: JoinSummary,
}

impl Joined {
    /// Values of numeric catalogue column `name` per galaxy (NaN where missing or unjoined).
    pub fn numeric(&self, name: &str) -> Result<Vec<f64>> {
        let column = self.table.column(name).with_context(|| {
            format!(
                "--property/--scatter: the catalogue has no column `{name}`; it has: {}",
                self.table.column_names().collect::<Vec<_>>().join(", ")
            )
        })?;
        if matches!(column, Column::Text(_)) {
            bail!("--property/--scatter: catalogue column `{name}` is text, not numbers");
        }
        Ok((0..self.table.nrows())
            .map(|row| column.as_f64(row).unwrap_or(f64::NAN))
            .collect())
    }
}

/// Reads the catalogue and joins it to `ids`; writes `catalog_unmatched_galaxies.csv`,
/// `catalog_unmatched_rows.csv` and `catalog_ambiguous.csv` into `dir`.
pub fn join(request: &CatalogRequest<'_>, ids: &[String], dir: &Path) -> Result<Joined> {
    let catalog = sdss_tables::read_table(request.path)
        .with_context(|| format!("--catalog {}", request.path.display()))?;
    let n_rows = catalog.nrows();
    let catalog_ids = id_texts(&catalog, request.id_column, request.path);
    let catalog_positions = sky_positions(&catalog, request.path)?;

    let (m, on, galaxy_positions) = match request.match_radius {
        Some(radius) => {
            let catalog_positions = catalog_positions.as_ref().with_context(|| {
                format!(
                    "--match-radius: the catalogue {} has no ra and dec columns",
                    request.path.display()
                )
            })?;
            let positions_file = request.positions.context(
                "--match-radius needs the galaxies' positions: give --positions FILE (a table with \
                 id, ra and dec in degrees, such as the catalogue given to `fetch`), or keep the \
                 manifest.csv `fetch` wrote beside the images",
            )?;
            let galaxy_positions = positions_of(ids, positions_file)?;
            let m = sdss_crossmatch::match_sky(&galaxy_positions, catalog_positions, radius)
                .with_context(|| format!("--catalog {}", request.path.display()))?;
            (m, "sky", Some(galaxy_positions))
        }
        None => {
            let catalog_ids = catalog_ids?;
            let m = sdss_crossmatch::match_ids(ids, &catalog_ids).with_context(|| {
                format!(
                    "--catalog {} joined on column `{}`",
                    request.path.display(),
                    request.id_column
                )
            })?;
            // Positions for the tables come from the catalogue when it has them.
            let positions = catalog_positions
                .as_ref()
                .map(|p| m.matched.iter().map(|r| r.and_then(|r| p[r])).collect());
            (m, "id", positions)
        }
    };
    let catalog_ids = id_texts(&catalog, request.id_column, request.path).ok();
    write_misses(dir, ids, catalog_ids.as_deref(), &m)?;
    let summary = JoinSummary {
        catalog: request.path.to_owned(),
        on: on.to_owned(),
        catalog_rows: n_rows,
        matched: m.n_matched(),
        unmatched_galaxies: m.unmatched_galaxies.len(),
        unmatched_catalog_rows: m.unmatched_catalog.len(),
        ambiguous: m.ambiguous.len(),
        shared_catalog_rows: m.shared_catalog.len(),
    };
    log_misses(ids, catalog_ids.as_deref(), &m, &summary);
    let mut table = reindex(&catalog, &m.matched)?;
    if on == "sky" {
        table.push(
            ColumnMeta {
                name: unique_name(&table, "match_separation"),
                unit: Some("arcsec".into()),
                ucd: Some("pos.angDistance".into()),
                description: Some("separation from the joined catalogue row".into()),
            },
            Column::Float64(m.separation_arcsec.clone()),
        )?;
    }
    Ok(Joined {
        table,
        positions: galaxy_positions,
        summary,
    })
}

/// The id column as exact text (integers in decimal, never through a float).
fn id_texts(table: &Table, column: &str, path: &Path) -> Result<Vec<Option<String>>> {
    let col = table.column(column).with_context(|| {
        format!(
            "--catalog {}: no id column `{column}` (give --catalog-id COLUMN); columns: {}",
            path.display(),
            table.column_names().collect::<Vec<_>>().join(", ")
        )
    })?;
    if matches!(col, Column::Float64(_) | Column::Float32(_)) {
        bail!(
            "--catalog {}: id column `{column}` holds floating-point numbers; ids must be text or \
             integers (a float cannot hold a 64-bit SDSS objid exactly)",
            path.display()
        );
    }
    Ok((0..table.nrows()).map(|r| col.text(r)).collect())
}

/// A column named `name`, compared case-insensitively (catalogues spell it `RA`, `ra`, `Ra`).
fn column_ci<'t>(table: &'t Table, name: &str) -> Option<&'t Column> {
    let found = table
        .column_names()
        .find(|c| c.eq_ignore_ascii_case(name))?
        .to_owned();
    table.column(&found)
}

/// Each row's `ra`/`dec` (degrees), if the table has both columns; `None` per row where missing.
fn sky_positions(table: &Table, path: &Path) -> Result<Option<Vec<Option<SkyPosition>>>> {
    let (Some(ra), Some(dec)) = (column_ci(table, "ra"), column_ci(table, "dec")) else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(table.nrows());
    for row in 0..table.nrows() {
        out.push(match (ra.as_f64(row), dec.as_f64(row)) {
            (Some(a), Some(d)) if a.is_finite() && d.is_finite() => Some(
                SkyPosition::new(a, d)
                    .with_context(|| format!("{}: row {}", path.display(), row + 1))?,
            ),
            _ => None,
        });
    }
    Ok(Some(out))
}

/// The galaxies' positions from a table with `id`, `ra`, `dec`; `None` for galaxies it lacks.
fn positions_of(ids: &[String], path: &Path) -> Result<Vec<Option<SkyPosition>>> {
    let table =
        sdss_tables::read_table(path).with_context(|| format!("--positions {}", path.display()))?;
    let row_ids = id_texts(&table, "id", path)?;
    let positions = sky_positions(&table, path)?
        .with_context(|| format!("--positions {}: needs ra and dec columns", path.display()))?;
    let m = sdss_crossmatch::match_ids(ids, &row_ids)
        .with_context(|| format!("--positions {}", path.display()))?;
    if let Some(a) = m.ambiguous.first() {
        bail!(
            "--positions {}: galaxy `{}` appears on {} rows",
            path.display(),
            ids[a.galaxy],
            a.candidates.len()
        );
    }
    Ok(m.matched
        .iter()
        .map(|r| r.and_then(|r| positions[r]))
        .collect())
}

fn unique_name(table: &Table, base: &str) -> String {
    let mut name = base.to_owned();
    while table.column(&name).is_some() {
        name.push('_');
    }
    name
}

/// The catalogue's columns in galaxy order: row `i` is catalogue row `rows[i]`, or missing.
fn reindex(catalog: &Table, rows: &[Option<usize>]) -> Result<Table> {
    let mut out = Table::new();
    for (meta, column) in catalog.columns() {
        let taken = match column {
            Column::Int64(v) => Column::Int64(rows.iter().map(|r| r.and_then(|r| v[r])).collect()),
            Column::Float64(v) => {
                Column::Float64(rows.iter().map(|r| r.map_or(f64::NAN, |r| v[r])).collect())
            }
            Column::Float32(v) => {
                Column::Float32(rows.iter().map(|r| r.map_or(f32::NAN, |r| v[r])).collect())
            }
            Column::Text(v) => {
                Column::Text(rows.iter().map(|r| r.and_then(|r| v[r].clone())).collect())
            }
            Column::Bool(v) => Column::Bool(rows.iter().map(|r| r.and_then(|r| v[r])).collect()),
        };
        out.push(meta.clone(), taken)?;
    }
    Ok(out)
}

fn write_misses(
    dir: &Path,
    ids: &[String],
    catalog_ids: Option<&[Option<String>]>,
    m: &CrossMatch,
) -> Result<()> {
    use sdss_io::stack::csv_field;
    use std::io::Write;
    let row_id = |r: usize| catalog_ids.and_then(|c| c[r].clone()).unwrap_or_default();
    sdss_io::atomic::write_atomic(dir.join("catalog_unmatched_galaxies.csv"), |w| {
        writeln!(w, "row,id")?;
        for &g in &m.unmatched_galaxies {
            writeln!(w, "{g},{}", csv_field(&ids[g]))?;
        }
        Ok(())
    })?;
    // Catalogue rows are numbered from 1 as the file's data rows, as a user counts them.
    sdss_io::atomic::write_atomic(dir.join("catalog_unmatched_rows.csv"), |w| {
        writeln!(w, "catalog_row,catalog_id")?;
        for &r in &m.unmatched_catalog {
            writeln!(w, "{},{}", r + 1, csv_field(&row_id(r)))?;
        }
        Ok(())
    })?;
    sdss_io::atomic::write_atomic(dir.join("catalog_ambiguous.csv"), |w| {
        writeln!(w, "row,id,catalog_row,catalog_id,separation_arcsec")?;
        for a in &m.ambiguous {
            for (k, &r) in a.candidates.iter().enumerate() {
                let sep = a
                    .separations_arcsec
                    .get(k)
                    .map(|s| format!("{s:.6}"))
                    .unwrap_or_default();
                writeln!(
                    w,
                    "{},{},{},{},{sep}",
                    a.galaxy,
                    csv_field(&ids[a.galaxy]),
                    r + 1,
                    csv_field(&row_id(r))
                )?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

fn log_misses(
    ids: &[String],
    catalog_ids: Option<&[Option<String>]>,
    m: &CrossMatch,
    s: &JoinSummary,
) {
    tracing::info!(
        "catalogue: {} of {} galaxies joined on {} ({} rows read); {} galaxies unmatched, {} ambiguous; {} catalogue rows unmatched",
        s.matched,
        ids.len(),
        s.on,
        s.catalog_rows,
        s.unmatched_galaxies,
        s.ambiguous,
        s.unmatched_catalog_rows
    );
    let more = |n: usize| {
        if n > LOGGED_MISSES {
            format!(" (first {LOGGED_MISSES} of {n}; all in the CSV)")
        } else {
            String::new()
        }
    };
    if !m.unmatched_galaxies.is_empty() {
        let list: Vec<&str> = m
            .unmatched_galaxies
            .iter()
            .take(LOGGED_MISSES)
            .map(|&g| ids[g].as_str())
            .collect();
        tracing::warn!(
            "galaxies not in the catalogue{}: {}; see catalog_unmatched_galaxies.csv",
            more(m.unmatched_galaxies.len()),
            list.join(", ")
        );
    }
    if !m.ambiguous.is_empty() {
        let list: Vec<String> = m
            .ambiguous
            .iter()
            .take(LOGGED_MISSES)
            .map(|a| {
                let rows: Vec<String> = a.candidates.iter().map(|r| (r + 1).to_string()).collect();
                format!("{} (rows {})", ids[a.galaxy], rows.join("/"))
            })
            .collect();
        tracing::warn!(
            "galaxies with more than one catalogue row, left unjoined{}: {}; see catalog_ambiguous.csv",
            more(m.ambiguous.len()),
            list.join(", ")
        );
    }
    if !m.unmatched_catalog.is_empty() {
        let list: Vec<String> = m
            .unmatched_catalog
            .iter()
            .take(LOGGED_MISSES)
            .map(|&r| match catalog_ids.and_then(|c| c[r].as_deref()) {
                Some(id) => format!("{} ({id})", r + 1),
                None => (r + 1).to_string(),
            })
            .collect();
        tracing::info!(
            "catalogue rows without a galaxy{}: {}; see catalog_unmatched_rows.csv",
            more(m.unmatched_catalog.len()),
            list.join(", ")
        );
    }
}
