//! The tables stage of `run`: `galaxies.fits`, `galaxies.vot` and `galaxies.ecsv`, one row per
//! galaxy, for TOPCAT and astropy.
//!
//! Columns, in order: `id` (64-bit integers when every id is one, as SDSS objids are; text
//! otherwise), `ra`/`dec` in degrees where known (with the UCDs TOPCAT reads as the sky position),
//! one `label_<method>` per method (−1: noise), the anomaly scores, the 2-D map coordinates, the PCA
//! coordinates, then the joined catalogue's columns (renamed `catalog_<name>` where a name is taken).

use std::path::Path;

use anyhow::Result;
use ndarray::ArrayView2;
use sdss_crossmatch::SkyPosition;
use sdss_tables::{Column, ColumnMeta, Table};

/// Everything known per galaxy at the end of a run.
pub struct GalaxyColumns<'a> {
    /// Galaxy ids in row order.
    pub ids: &'a [String],
    /// Sky positions, where known.
    pub positions: Option<&'a [Option<SkyPosition>]>,
    /// `(slug, labels)` per method.
    pub labels: Vec<(&'a str, &'a [i64])>,
    /// `(name, description, score)` per anomaly score.
    pub scores: Vec<(&'a str, &'a str, &'a [f64])>,
    /// The 2-D map, (N, 2).
    pub map: Option<ArrayView2<'a, f32>>,
    /// The PCA coordinates, (N, k).
    pub pca: ArrayView2<'a, f32>,
    /// The joined catalogue, re-indexed to the galaxies.
    pub catalog: Option<&'a Table>,
}

/// File names written, relative to the output folder.
pub const FILES: [&str; 3] = ["galaxies.fits", "galaxies.vot", "galaxies.ecsv"];

fn meta(name: &str, description: &str) -> ColumnMeta {
    ColumnMeta {
        name: name.to_owned(),
        unit: None,
        ucd: None,
        description: Some(description.to_owned()),
    }
}

/// Builds the table described in the module docs.
pub fn build(c: &GalaxyColumns<'_>) -> Result<Table> {
    let mut t = Table::new();
    let as_ints: Option<Vec<Option<i64>>> = c
        .ids
        .iter()
        .map(|id| {
            // Only canonical decimal text: `007` or `+7` would not read back as the same id.
            let v: i64 = id.parse().ok()?;
            (v.to_string() == *id).then_some(Some(v))
        })
        .collect();
    let id_meta = ColumnMeta {
        ucd: Some("meta.id;meta.main".into()),
        ..meta("id", "galaxy id (the image file name)")
    };
    match as_ints {
        Some(v) => t.push(id_meta, Column::Int64(v))?,
        None => t.push(
            id_meta,
            Column::Text(c.ids.iter().cloned().map(Some).collect()),
        )?,
    }
    if let Some(p) = c.positions {
        t.push(
            ColumnMeta::ra(),
            Column::Float64(p.iter().map(|p| p.map_or(f64::NAN, |p| p.ra())).collect()),
        )?;
        t.push(
            ColumnMeta::dec(),
            Column::Float64(p.iter().map(|p| p.map_or(f64::NAN, |p| p.dec())).collect()),
        )?;
    }
    for (slug, labels) in &c.labels {
        t.push(
            ColumnMeta {
                ucd: Some("meta.code.class".into()),
                ..meta(
                    &format!("label_{}", slug.replace('-', "_")),
                    &format!("cluster of method {slug} (-1: noise)"),
                )
            },
            Column::Int64(labels.iter().map(|&l| Some(l)).collect()),
        )?;
    }
    for (name, description, score) in &c.scores {
        t.push(
            ColumnMeta {
                ucd: Some("stat.value".into()),
                ..meta(name, description)
            },
            Column::Float64(score.to_vec()),
        )?;
    }
    if let Some(map) = c.map {
        for (k, axis) in ["map_x", "map_y"].iter().enumerate() {
            t.push(
                meta(axis, "2-D map of the features"),
                Column::Float32(map.column(k).to_vec()),
            )?;
        }
    }
    for k in 0..c.pca.ncols() {
        t.push(
            meta(
                &format!("pca_{}", k + 1),
                &format!("principal component {} of the features", k + 1),
            ),
            Column::Float32(c.pca.column(k).to_vec()),
        )?;
    }
    if let Some(catalog) = c.catalog {
        for (m, column) in catalog.columns() {
            // FITS column names are compared case-insensitively (TOPCAT, astropy), so `RA` from the
            // catalogue would clash with our `ra`.
            let taken =
                |t: &Table, name: &str| t.column_names().any(|c| c.eq_ignore_ascii_case(name));
            let mut m = m.clone();
            if taken(&t, &m.name) {
                m.name = format!("catalog_{}", m.name);
            }
            while taken(&t, &m.name) {
                m.name.push('_');
            }
            t.push(m, column.clone())?;
        }
    }
    Ok(t)
}

/// Writes the three tables into `dir`.
pub fn write(dir: &Path, c: &GalaxyColumns<'_>) -> Result<()> {
    let t = build(c)?;
    sdss_tables::write_fits(&dir.join(FILES[0]), &t)?;
    sdss_tables::write_votable(&dir.join(FILES[1]), &t)?;
    sdss_tables::write_ecsv(&dir.join(FILES[2]), &t)?;
    Ok(())
}
