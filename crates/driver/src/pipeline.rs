//! `run`: images → features → PCA → clustering → report, written into one output folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ndarray::ArrayView1;
use serde::Serialize;
use serde_json::json;

use crate::cli::FeatureKind;
use crate::config::{MethodSpec, RunConfig};
use crate::input;
use crate::progress::Progress;
use crate::report::{browse, html, plots};

/// Runs the pipeline; returns the output folder.
pub fn run(mut cfg: RunConfig, progress: Progress) -> Result<PathBuf> {
    let started = Instant::now();
    // Validate everything cheap before any heavy work: methods, paths, the output folder.
    let specs: Vec<MethodSpec> = cfg
        .methods
        .iter()
        .map(|m| Ok(MethodSpec::parse(m)?.with_default_seed(cfg.seed)))
        .collect::<Result<_>>()?;
    for spec in &specs {
        spec.build()?;
    }
    cfg.methods = specs.iter().map(MethodSpec::canonical_text).collect();
    cfg.images = absolute(cfg.images.take(), "--images")?;
    cfg.npy = absolute(cfg.npy.take(), "--npy")?;
    cfg.truth = absolute(cfg.truth.take(), "--truth")?;
    cfg.catalog = absolute(cfg.catalog.take(), "--catalog")?;
    cfg.positions = absolute(cfg.positions.take(), "--positions")?;
    cfg.features_from = absolute(cfg.features_from.take(), "--features-from")?;
    if cfg.features == FeatureKind::Cnn && cfg.features_from.is_none() {
        cfg.weights = absolute(cfg.weights.take(), "--weights").with_context(|| {
            "CNN weights not found; make them with `cargo xtask fetch-weights <KERAS_FILE|URL>`"
        })?;
    }
    let out = absolute_out(&cfg.out)?;
    cfg.out = out.clone();
    // One run per output folder; held until the results are in place.
    let _lock = crate::output_lock::OutputLock::acquire(&out)?;
    let carry: &[&str] = if cfg.resume {
        &crate::stages::features::RESUMABLE
    } else {
        &[]
    };
    let staging = Staging::begin(&out, cfg.force, carry)?;
    let dir = staging.path().to_owned();

    let t = Instant::now();
    let galaxies = crate::stages::features::load(&cfg, &dir, &progress)?;
    let features_seconds = t.elapsed().as_secs_f64();
    let features = galaxies.features();
    let (n, d) = features.dim();
    if n < 2 {
        bail!("need at least two galaxies to cluster, found {n}");
    }
    tracing::info!("{n} galaxies, {d} features each");
    sdss_io::write_ids_csv(dir.join("ids.csv"), &galaxies.ids)?;
    crate::stages::features::record(&cfg, &dir, &galaxies)?;
    crate::crash_point("run:features-staged");

    // The catalogue joins on ids or positions only, so it is read before the heavy stages: a wrong
    // column name fails in a second, not after the clustering.
    let joined = match &cfg.catalog {
        Some(path) => {
            // `fetch` writes each image's ra/dec into the manifest beside the images.
            let manifest = cfg
                .images
                .as_ref()
                .map(|d| d.join(sdss_fetch::MANIFEST_NAME))
                .filter(|p| p.is_file());
            let joined = crate::catalog::join(
                &crate::catalog::CatalogRequest {
                    path,
                    id_column: &cfg.catalog_id,
                    match_radius: cfg.match_radius,
                    positions: cfg.positions.as_deref().or(manifest.as_deref()),
                },
                &galaxies.ids,
                &dir,
            )?;
            crate::properties::check(&joined, &property_request(&cfg)?)?;
            Some(joined)
        }
        None => None,
    };

    // PCA.
    let t = Instant::now();
    let crate::stages::pca::Reduced {
        model: pca,
        reduced,
        ratios,
        streamed: pca_streamed,
    } = crate::stages::pca::fit(&cfg, &galaxies, &progress)?;
    let pca_seconds = t.elapsed().as_secs_f64();
    let total: f64 = ratios.iter().sum();
    sdss_io::npy::write_npy(dir.join("pca.npy"), &reduced.view())?;
    sdss_io::npy::write_npy(
        dir.join("pca_explained_variance_ratio.npy"),
        &ArrayView1::from(&ratios),
    )?;
    write_json(
        &dir.join("pca.json"),
        &json!({
            "n_components": ratios.len(),
            "requested": cfg.pca,
            "svd_solver": pca.svd_solver().as_str(),
            // Galaxies the components were fitted on (all of them unless --pca-fit-sample).
            "fitted_on": pca.n_samples(),
            // Fitted block by block over the mapped features, which were never held whole.
            "streamed": pca_streamed,
            "explained_variance_ratio": ratios,
            "total_explained_variance_ratio": total,
            "seconds": pca_seconds,
        }),
    )?;
    plots::pca_variance(
        &dir.join("pca_variance.png"),
        &ratios,
        &format!(
            "PCA: {} components explain {:.2}% of the variance",
            ratios.len(),
            total * 100.0
        ),
    )?;

    // Clustering.
    let runs = crate::stages::cluster::fit_all(specs, reduced.view(), &dir, &progress)?;

    // Metrics.
    let t = Instant::now();
    let truth = match &cfg.truth {
        Some(path) => Some(input::read_truth(path, &galaxies.ids)?),
        None => None,
    };
    let metrics = crate::stages::cluster::evaluate(
        &runs,
        reduced.view(),
        truth.as_ref(),
        &galaxies.ids,
        &dir,
    )?;
    let metrics_seconds = t.elapsed().as_secs_f64();

    // Figures and galleries.
    let t = Instant::now();
    let mut sections = Vec::new();
    for r in &runs {
        sections.push(crate::stages::galleries::method_report(
            &dir,
            r,
            &galaxies,
            reduced.view(),
            &metrics,
            &progress,
        )?);
    }
    let report_seconds = t.elapsed().as_secs_f64();

    // Nearest neighbours in the PCA space (where the clustering happened), for browsing by similarity.
    let t = Instant::now();
    let crate::stages::neighbours::Neighbours {
        graph,
        galaxy_pages,
    } = crate::stages::neighbours::write(
        &cfg,
        &dir,
        &galaxies,
        reduced.view(),
        ratios.len(),
        &runs,
        &progress,
    )?;
    let neighbours_seconds = t.elapsed().as_secs_f64();

    // The most unusual galaxies.
    let t = Instant::now();
    let scores = crate::unusual::scores(reduced.view(), &graph, cfg.seed)?;
    let unusual =
        crate::unusual::galleries(&dir, &scores, &galaxies.ids, &|i| galaxies.thumbnail(i))?;
    let unusual_seconds = t.elapsed().as_secs_f64();

    // A map of every galaxy.
    let t = Instant::now();
    let map = if cfg.map {
        Some(crate::map::draw(
            &dir,
            galaxy_pages,
            reduced.view(),
            &galaxies.ids,
            &runs
                .iter()
                .map(|r| {
                    (
                        r.slug.as_str(),
                        r.clustering.labels.as_slice().unwrap_or(&[]),
                    )
                })
                .collect::<Vec<_>>(),
            joined.as_ref(),
            &cfg.properties,
            &scores,
            cfg.seed,
            &progress,
        )?)
    } else {
        None
    };
    let map_seconds = t.elapsed().as_secs_f64();

    // Catalogue properties per cluster.
    let t = Instant::now();
    if let Some(joined) = &joined {
        let request = property_request(&cfg)?;
        if !request.properties.is_empty() || request.scatter.is_some() {
            let labelled: Vec<crate::properties::Labelled<'_>> = runs
                .iter()
                .map(|r| crate::properties::Labelled {
                    slug: &r.slug,
                    spec: r.spec.canonical_text(),
                    labels: r.clustering.labels.as_slice().unwrap_or(&[]),
                })
                .collect();
            crate::properties::write(&dir, joined, &request, &labelled, &|labels, label| {
                let members: Vec<usize> =
                    (0..labels.len()).filter(|&i| labels[i] == label).collect();
                galaxies.thumbnail(crate::stages::galleries::representative(
                    reduced.view(),
                    &members,
                ))
            })?;
            for s in &mut sections {
                s.properties = Some(crate::properties::page(&s.slug));
            }
        }
    }
    let properties_seconds = t.elapsed().as_secs_f64();

    // Tables for TOPCAT and astropy.
    let t = Instant::now();
    crate::tables::write(
        &dir,
        &crate::tables::GalaxyColumns {
            ids: &galaxies.ids,
            positions: joined.as_ref().and_then(|j| j.positions.as_deref()),
            labels: runs
                .iter()
                .map(|r| {
                    (
                        r.slug.as_str(),
                        r.clustering.labels.as_slice().unwrap_or(&[]),
                    )
                })
                .collect(),
            scores: scores.columns(),
            map: map.as_ref().map(|m| m.view()),
            pca: reduced.view(),
            catalog: joined.as_ref().map(|j| &j.table),
        },
    )?;
    let tables_seconds = t.elapsed().as_secs_f64();
    let facts = crate::stages::report::facts(
        &cfg,
        &galaxies,
        d,
        crate::stages::pca::describe(ratios.len(), total, pca.svd_solver(), pca_streamed),
        joined.as_ref(),
    );
    let page = html::Page {
        title: format!("sdss-clustering: {n} galaxies"),
        facts,
        pca_plot: "pca_variance.png".into(),
        methods: sections,
        first_galaxy: galaxy_pages.then(|| browse::galaxy_page(0)),
        links: std::iter::once((
            "find a galaxy".to_owned(),
            crate::report::search::PAGE.to_owned(),
        ))
        .chain(map.iter().map(|_| {
            (
                "map of all galaxies".to_owned(),
                crate::map::PAGE.to_owned(),
            )
        }))
        .chain([("unusual galaxies".to_owned(), "#unusual".to_owned())])
        .chain(
            crate::tables::FILES
                .iter()
                .map(|f| (f.to_string(), f.to_string())),
        )
        .collect(),
        unusual,
    };
    sdss_io::atomic::write_bytes_atomic(dir.join("index.html"), html::render(&page).as_bytes())?;

    std::fs::write(dir.join("config.toml"), cfg.to_toml()?)
        .with_context(|| format!("cannot write {}", dir.join("config.toml").display()))?;
    write_json(
        &dir.join("run.json"),
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "galaxies": n,
            "features": d,
            "skipped": galaxies.skipped.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
            "catalog": joined.as_ref().map(|j| &j.summary),
            // Which form each method ran in: `micro_clusters` null is exact, a number the
            // scalable form on that many k-means micro-clusters.
            "methods": runs.iter().map(|r| (r.slug.clone(), json!({
                "spec": r.spec.canonical_text(),
                "n_clusters": r.clustering.n_clusters,
                "micro_clusters": r.clustering.micro_clusters,
                // Affinity propagation on the sparse k-NN graph: its k.
                "knn_graph": r.clustering.knn_graph,
            }))).collect::<BTreeMap<_, _>>(),
            "seconds": {
                "features": features_seconds,
                "pca": pca_seconds,
                "clustering": runs.iter().map(|r| (r.slug.clone(), r.seconds)).collect::<BTreeMap<_, _>>(),
                "metrics": metrics_seconds,
                "report": report_seconds,
                "neighbours": neighbours_seconds,
                "unusual": unusual_seconds,
                "map": map_seconds,
                "properties": properties_seconds,
                "tables": tables_seconds,
                "total": started.elapsed().as_secs_f64(),
            }
        }),
    )?;
    crate::crash_point("run:staged");
    staging.commit()?;
    Ok(out)
}

fn property_request(cfg: &RunConfig) -> Result<crate::properties::PropertyRequest<'_>> {
    Ok(crate::properties::PropertyRequest {
        properties: &cfg.properties,
        scatter: cfg
            .scatter
            .as_deref()
            .map(crate::config::parse_scatter)
            .transpose()?,
    })
}

/// Writes pretty JSON atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    sdss_io::atomic::write_bytes_atomic(path, format!("{text}\n").as_bytes())?;
    Ok(())
}

fn absolute(path: Option<PathBuf>, option: &str) -> Result<Option<PathBuf>> {
    path.map(|p| {
        std::fs::canonicalize(&p).with_context(|| format!("{option} {}: not found", p.display()))
    })
    .transpose()
}

fn absolute_out(out: &Path) -> Result<PathBuf> {
    if out.is_absolute() {
        return Ok(out.to_owned());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current folder")?
        .join(out))
}

/// The run writes into a fresh sibling folder that replaces the output folder only when everything
/// succeeded, so a failed run never mixes with, or destroys, an earlier one.
struct Staging {
    path: PathBuf,
    out: PathBuf,
    committed: bool,
}

impl Staging {
    /// Call holding `out`'s [`crate::output_lock::OutputLock`]: what killed runs left beside `out` is
    /// then known to be stale, and is recovered or removed first.
    ///
    /// With `carry` (file names, the last of them the marker that the others are complete), those
    /// files are first taken from the newest staging folder a killed run left that has the marker,
    /// so that `run --resume` can pick up where it stopped.
    fn begin(out: &Path, force: bool, carry: &[&str]) -> Result<Self> {
        Self::recover_interrupted_commit(out)?;
        if out.exists() {
            let non_empty = std::fs::read_dir(out)
                .with_context(|| format!("--out {}: not a readable folder", out.display()))?
                .next()
                .is_some();
            if non_empty && !force {
                // A killed run's staging folder is of no use now, unless it is to be resumed.
                if carry.is_empty() {
                    crate::output_lock::remove_leftovers(out, &[".partial-"])?;
                }
                bail!(
                    "--out {}: folder exists and is not empty; choose another folder or pass --force to replace it",
                    out.display()
                );
            }
        }
        let parent = out.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let path = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot clear {}", path.display()))?;
        }
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        if let Some(from) = Self::newest_killed_with(parent, &name, &path, carry) {
            for file in carry {
                let src = from.join(file);
                if src.exists() {
                    std::fs::rename(&src, path.join(file)).with_context(|| {
                        format!("cannot take {} into the new run", src.display())
                    })?;
                }
            }
            tracing::info!(
                "--resume: took {} from {}, left by a killed run",
                carry.join(", "),
                from.display()
            );
        }
        crate::output_lock::remove_leftovers_except(out, &[".partial-"], &path)?;
        Ok(Staging {
            path,
            out: out.to_owned(),
            committed: false,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// The newest staging folder of `name` in `parent` (not `own`, not a commit's `.old`) that
    /// holds the last of `carry`, the marker written once the others are complete.
    fn newest_killed_with(
        parent: &Path,
        name: &str,
        own: &Path,
        carry: &[&str],
    ) -> Option<PathBuf> {
        let marker = carry.last()?;
        let prefix = format!(".{name}.partial-");
        std::fs::read_dir(parent)
            .ok()?
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(&prefix) && !n.ends_with(".old") && e.path() != own
            })
            .filter_map(|e| {
                let modified = e.path().join(marker).metadata().ok()?.modified().ok()?;
                Some((modified, e.path()))
            })
            .max()
            .map(|(_, p)| p)
    }

    /// A run killed inside [`Staging::commit`], after moving the previous results aside to
    /// `.<name>.partial-<pid>.old` and before moving its own in, leaves no `out` at all: the previous
    /// results are complete, so they are put back.
    fn recover_interrupted_commit(out: &Path) -> Result<()> {
        if out.exists() {
            return Ok(());
        }
        let (Some(parent), Some(name)) = (out.parent(), out.file_name()) else {
            return Ok(());
        };
        let prefix = format!(".{}.partial-", name.to_string_lossy());
        let Ok(entries) = std::fs::read_dir(parent) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with(&prefix) && file_name.ends_with(".old") {
                std::fs::rename(entry.path(), out).with_context(|| {
                    format!(
                        "cannot restore the earlier results {} to {}",
                        entry.path().display(),
                        out.display()
                    )
                })?;
                tracing::info!(
                    "restored the earlier results of {} (a run was killed while replacing them)",
                    out.display()
                );
                return Ok(());
            }
        }
        Ok(())
    }

    fn commit(mut self) -> Result<()> {
        // `.<name>.partial-<pid>.old`: recognised by `recover_interrupted_commit` if this process dies
        // between the two renames below.
        let mut old = self.path.clone().into_os_string();
        old.push(".old");
        let old = PathBuf::from(old);
        if self.out.exists() {
            std::fs::rename(&self.out, &old)
                .with_context(|| format!("cannot move the old {} aside", self.out.display()))?;
        }
        crate::crash_point("run:commit");
        std::fs::rename(&self.path, &self.out)
            .with_context(|| format!("cannot move results into {}", self.out.display()))?;
        self.committed = true;
        if old.exists() {
            std::fs::remove_dir_all(&old)
                .with_context(|| format!("cannot remove the old results at {}", old.display()))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            // A failed run leaves nothing behind; any earlier results stay where they were.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn killed_runs_staging_folders_are_removed_and_a_commit_replaces_out() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        std::fs::create_dir_all(dir.path().join(".run.partial-111/gallery")).unwrap();
        std::fs::write(dir.path().join(".run.partial-111/features.npy"), b"x").unwrap();
        std::fs::create_dir_all(dir.path().join(".run.partial-222")).unwrap();
        std::fs::create_dir_all(dir.path().join(".other.partial-333")).unwrap();
        let staging = Staging::begin(&out, false, &[]).unwrap();
        assert_eq!(
            hidden_entries(dir.path()),
            [
                ".other.partial-333".to_owned(),
                format!(".run.partial-{}", std::process::id())
            ]
        );
        std::fs::write(staging.path().join("index.html"), b"new").unwrap();
        staging.commit().unwrap();
        assert_eq!(std::fs::read(out.join("index.html")).unwrap(), b"new");
        assert_eq!(hidden_entries(dir.path()), [".other.partial-333"]);
    }

    #[test]
    fn results_moved_aside_by_a_killed_commit_are_restored() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        // Killed between the two renames of commit: the earlier results are only under `.old`, the new
        // ones (complete, but never committed) in the staging folder.
        std::fs::create_dir_all(dir.path().join(".run.partial-42.old")).unwrap();
        std::fs::write(
            dir.path().join(".run.partial-42.old/index.html"),
            b"earlier",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join(".run.partial-42")).unwrap();
        let err = Staging::begin(&out, false, &[]).err().unwrap().to_string();
        assert!(err.contains("not empty"), "{err}");
        assert_eq!(std::fs::read(out.join("index.html")).unwrap(), b"earlier");
        assert!(hidden_entries(dir.path()).is_empty());
    }

    #[test]
    fn a_failed_run_leaves_nothing_and_keeps_earlier_results() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("index.html"), b"earlier").unwrap();
        let staging = Staging::begin(&out, true, &[]).unwrap();
        std::fs::write(staging.path().join("index.html"), b"half").unwrap();
        drop(staging);
        assert_eq!(std::fs::read(out.join("index.html")).unwrap(), b"earlier");
        assert!(hidden_entries(dir.path()).is_empty());
    }
}
