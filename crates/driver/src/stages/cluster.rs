//! Clustering: each method the run asks for, fitted on the PCA coordinates, its labels (and tree,
//! and micro-clusters) written as it finishes; then the metrics of every method.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use serde_json::json;

use crate::config::MethodSpec;
use crate::pipeline::write_json;
use crate::progress::Progress;

/// Internal metrics are O(N²) in memory traffic for silhouette; above this many galaxies it is skipped.
const SILHOUETTE_MAX_SAMPLES: usize = 20_000;

/// One fitted method and what was written for it: the stage's result.
pub struct MethodRun {
    /// File-name slug, unique in the run (`kmeans`, `kmeans-2`).
    pub slug: String,
    /// The method as asked for.
    pub spec: MethodSpec,
    /// Its result.
    pub clustering: sdss_cluster::Clustering,
    /// Seconds the fit took.
    pub seconds: f64,
}

/// Fits every method in `specs` on `reduced` and writes `labels_<slug>.npy` (and
/// `linkage_<slug>.npy`, `micro_clusters_<slug>.npy`) into `dir`.
pub fn fit_all(
    specs: Vec<MethodSpec>,
    reduced: ArrayView2<'_, f32>,
    dir: &Path,
    progress: &Progress,
) -> Result<Vec<MethodRun>> {
    let mut runs: Vec<MethodRun> = Vec::new();
    for spec in specs {
        let method = spec.build()?;
        let slug = unique_slug(spec.short, &runs);
        let spinner = progress.spinner(&format!("clustering: {}", spec.canonical_text()));
        let t = Instant::now();
        let clustering = method
            .fit(reduced)
            .map_err(|e| anyhow::anyhow!("{}: {e}", spec.canonical_text()))?;
        let seconds = t.elapsed().as_secs_f64();
        spinner.finish_and_clear();
        if clustering.converged == Some(false) {
            tracing::warn!(
                "{}: did NOT converge in {} iterations; its labels are reported but are not a converged result",
                spec.canonical_text(),
                clustering.iterations.unwrap_or(0)
            );
        }
        tracing::info!(
            "{}: {} clusters in {:.2} s",
            spec.canonical_text(),
            clustering.n_clusters,
            seconds
        );
        sdss_io::npy::write_npy(
            dir.join(format!("labels_{slug}.npy")),
            &clustering.labels.view(),
        )?;
        if let Some(linkage) = &clustering.linkage {
            linkage.write_npy(dir.join(format!("linkage_{slug}.npy")))?;
        }
        if let Some(assignment) = &clustering.micro_assignment {
            write_micro_assignment(&dir.join(format!("micro_clusters_{slug}.npy")), assignment)?;
        }
        runs.push(MethodRun {
            slug,
            spec,
            clustering,
            seconds,
        });
    }
    Ok(runs)
}

/// Internal metrics of every run (and, with `truth`, the adjusted Rand index and NMI against it),
/// written to `metrics.json`, with every label in `labels.csv`; returns the metrics by slug.
pub fn evaluate(
    runs: &[MethodRun],
    reduced: ArrayView2<'_, f32>,
    truth: Option<&Array1<i64>>,
    ids: &[String],
    dir: &Path,
) -> Result<BTreeMap<String, serde_json::Value>> {
    let mut metrics = BTreeMap::new();
    for r in runs {
        let mut m = internal_metrics(reduced, r.clustering.labels.view());
        if let Some(t) = truth {
            m.insert(
                "adjusted_rand_index".into(),
                json!(sdss_cluster::adjusted_rand_score(
                    t.view(),
                    r.clustering.labels.view()
                )?),
            );
            m.insert(
                "normalized_mutual_info".into(),
                json!(sdss_cluster::normalized_mutual_info_score(
                    t.view(),
                    r.clustering.labels.view()
                )?),
            );
        }
        m.insert(
            "summary".into(),
            serde_json::to_value(r.clustering.summary())?,
        );
        m.insert("spec".into(), json!(r.spec.canonical_text()));
        m.insert("seconds".into(), json!(r.seconds));
        metrics.insert(r.slug.clone(), serde_json::Value::Object(m));
    }
    write_json(&dir.join("metrics.json"), &metrics)?;
    write_labels_csv(&dir.join("labels.csv"), ids, runs)?;
    Ok(metrics)
}

/// Silhouette, Calinski–Harabasz and Davies–Bouldin on the non-noise galaxies, where defined.
fn internal_metrics(
    x: ArrayView2<'_, f32>,
    labels: ArrayView1<'_, i64>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    let keep: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] >= 0).collect();
    let mut distinct: Vec<i64> = keep.iter().map(|&i| labels[i]).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 2 || distinct.len() >= keep.len() {
        m.insert(
            "note".into(),
            json!(format!(
                "internal metrics need 2 <= clusters < galaxies; found {} clusters of {} non-noise galaxies",
                distinct.len(),
                keep.len()
            )),
        );
        return m;
    }
    let xs: Array2<f32> = x.select(Axis(0), &keep);
    let ls: Array1<i64> = keep.iter().map(|&i| labels[i]).collect();
    if keep.len() <= SILHOUETTE_MAX_SAMPLES {
        if let Ok(s) = sdss_cluster::silhouette_score(xs.view(), ls.view()) {
            m.insert("silhouette".into(), json!(s));
        }
    } else {
        m.insert(
            "silhouette_skipped".into(),
            json!(format!("more than {SILHOUETTE_MAX_SAMPLES} galaxies")),
        );
    }
    if let Ok(s) = sdss_cluster::calinski_harabasz_score(xs.view(), ls.view()) {
        m.insert("calinski_harabasz".into(), json!(s));
    }
    if let Ok(s) = sdss_cluster::davies_bouldin_score(xs.view(), ls.view()) {
        m.insert("davies_bouldin".into(), json!(s));
    }
    m
}

/// The micro-cluster of each galaxy as `int64`, for numpy (`linkage_<slug>.npy`'s leaves).
fn write_micro_assignment(path: &Path, assignment: &[usize]) -> Result<()> {
    let column: Array1<i64> = assignment.iter().map(|&m| m as i64).collect();
    sdss_io::npy::write_npy(path, &column.view())?;
    Ok(())
}

fn unique_slug(short: &str, runs: &[MethodRun]) -> String {
    let taken = |s: &str| runs.iter().any(|r| r.slug == s);
    if !taken(short) {
        return short.to_owned();
    }
    (2..)
        .map(|i| format!("{short}-{i}"))
        .find(|s| !taken(s))
        .unwrap_or_else(|| short.to_owned())
}

fn write_labels_csv(path: &Path, ids: &[String], runs: &[MethodRun]) -> Result<()> {
    use std::io::Write;
    sdss_io::atomic::write_atomic(path, |w| {
        write!(w, "id")?;
        for r in runs {
            write!(w, ",{}", r.slug)?;
        }
        writeln!(w)?;
        for (i, id) in ids.iter().enumerate() {
            write!(w, "{}", sdss_io::stack::csv_field(id))?;
            for r in runs {
                write!(w, ",{}", r.clustering.labels[i])?;
            }
            writeln!(w)?;
        }
        Ok(())
    })?;
    Ok(())
}
