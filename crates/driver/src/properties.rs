//! The properties stage of `run` (`--property`, `--scatter`): for each method, one page with the
//! distribution of each catalogue property per cluster, the numbers in a CSV beside it, and the
//! scatter of two properties coloured by cluster.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Result};
use ndarray::Array3;

use crate::catalog::Joined;
use crate::report::html::esc;
use crate::report::properties::{box_plot, per_cluster, scatter, ClusterProperty};

/// One method's labels, as the properties pages need them.
pub struct Labelled<'a> {
    /// File-name slug, e.g. `kmeans`.
    pub slug: &'a str,
    /// The spec, e.g. `kmeans:k=10,seed=0`.
    pub spec: String,
    /// One label per galaxy (−1: noise).
    pub labels: &'a [i64],
}

/// The thumbnail shown above a cluster's box: `(labels, label)` → image.
pub type ExampleImage<'a> = &'a dyn Fn(&[i64], i64) -> Result<Array3<f32>>;

/// What was asked for.
pub struct PropertyRequest<'a> {
    /// Numeric catalogue columns to summarise per cluster.
    pub properties: &'a [String],
    /// Two columns to scatter against each other.
    pub scatter: Option<(&'a str, &'a str)>,
}

/// Page of method `slug`'s properties, relative to the output folder.
pub fn page(slug: &str) -> String {
    format!("properties_{slug}.html")
}

/// Checks that every property and scatter column is a numeric catalogue column, before any drawing.
pub fn check(joined: &Joined, request: &PropertyRequest<'_>) -> Result<()> {
    for p in request.properties {
        joined.numeric(p)?;
    }
    if let Some((x, y)) = request.scatter {
        joined.numeric(x)?;
        joined.numeric(y)?;
    }
    Ok(())
}

/// Writes `properties_<slug>.html`, `.csv` and the figures for every method; `example(slug, label)`
/// gives the thumbnail shown above a cluster's box.
pub fn write(
    dir: &Path,
    joined: &Joined,
    request: &PropertyRequest<'_>,
    methods: &[Labelled<'_>],
    example: ExampleImage<'_>,
) -> Result<()> {
    if request.properties.is_empty() && request.scatter.is_none() {
        bail!("no --property or --scatter given");
    }
    let values: Vec<(String, Vec<f64>)> = request
        .properties
        .iter()
        .map(|p| Ok((p.clone(), joined.numeric(p)?)))
        .collect::<Result<_>>()?;
    for m in methods {
        let mut html = String::new();
        let _ = write!(
            html,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}: catalogue properties</title>\
             <style>body{{font-family:sans-serif;margin:1.5em;max-width:1400px}} table{{border-collapse:collapse}} \
             td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} img{{max-width:100%}}</style></head>\n\
             <body><p><a href=\"index.html\">← report</a></p><h1>{0}: catalogue properties per cluster</h1>\n\
             <p>{1} of the galaxies were joined to the catalogue <code>{2}</code> (on {3}); the others count as \
             missing. Clusters are ordered by their median; the numbers are in <a href=\"{4}\">{4}</a>.</p>\n",
            esc(&m.spec),
            joined.summary.matched,
            esc(&joined.summary.catalog.display().to_string()),
            joined.summary.on,
            csv_name(m.slug),
        );
        let mut rows: Vec<(String, ClusterProperty)> = Vec::new();
        for (name, v) in &values {
            let stats = per_cluster(m.labels, v);
            let examples = stats
                .iter()
                .map(|s| example(m.labels, s.label))
                .collect::<Result<Vec<_>>>()?;
            let file = format!("properties_{}_{}.png", m.slug, file_safe(name));
            box_plot(
                &dir.join(&file),
                name,
                &stats,
                &examples,
                &format!("{}: {name} per cluster, ordered by median", m.spec),
            )?;
            let _ = write!(
                html,
                "<h2>{0}</h2>\n<img src=\"{1}\" alt=\"{0} per cluster\">\n{2}",
                esc(name),
                esc(&file),
                stats_table(&stats)
            );
            rows.extend(stats.into_iter().map(|s| (name.clone(), s)));
        }
        if let Some((x, y)) = request.scatter {
            let file = format!(
                "properties_{}_{}_vs_{}.png",
                m.slug,
                file_safe(y),
                file_safe(x)
            );
            scatter(
                &dir.join(&file),
                (x, y),
                &joined.numeric(x)?,
                &joined.numeric(y)?,
                m.labels,
                &format!("{}: {y} against {x}, cluster medians marked", m.spec),
            )?;
            let _ = write!(
                html,
                "<h2>{1} against {0}</h2>\n<img src=\"{2}\" alt=\"{1} against {0}\">\n",
                esc(x),
                esc(y),
                esc(&file)
            );
        }
        html.push_str("</body></html>\n");
        sdss_io::atomic::write_bytes_atomic(dir.join(page(m.slug)), html.as_bytes())?;
        write_csv(&dir.join(csv_name(m.slug)), &rows)?;
    }
    Ok(())
}

fn csv_name(slug: &str) -> String {
    format!("properties_{slug}.csv")
}

fn write_csv(path: &Path, rows: &[(String, ClusterProperty)]) -> Result<()> {
    use std::io::Write;
    let num = |v: f64| {
        if v.is_finite() {
            format!("{v}")
        } else {
            String::new()
        }
    };
    sdss_io::atomic::write_atomic(path, |w| {
        writeln!(w, "property,cluster,n,missing,min,q1,median,q3,max,mean")?;
        for (name, s) in rows {
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{}",
                sdss_io::stack::csv_field(name),
                s.label,
                s.n,
                s.missing,
                num(s.min),
                num(s.q1),
                num(s.median),
                num(s.q3),
                num(s.max),
                num(s.mean)
            )?;
        }
        Ok(())
    })?;
    Ok(())
}

fn stats_table(stats: &[ClusterProperty]) -> String {
    let mut t = String::from(
        "<table><tr><th>cluster</th><th>N</th><th>missing</th><th>q1</th><th>median</th><th>q3</th></tr>\n",
    );
    let f = |v: f64| {
        if v.is_finite() {
            format!("{v:.4}")
        } else {
            "–".into()
        }
    };
    for s in stats {
        let _ = writeln!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.label,
            s.n,
            s.missing,
            f(s.q1),
            f(s.median),
            f(s.q3)
        );
    }
    t.push_str("</table>\n");
    t
}

/// A column name as a file-name part: letters, digits, `-` and `_` kept, anything else `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
