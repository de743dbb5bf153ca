//! `run`: images → features → PCA → clustering → report, written into one output folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use serde::Serialize;
use serde_json::json;

use crate::cli::FeatureKind;
use crate::config::{MethodSpec, RunConfig};
use crate::input::{self, FeatureRequest, Galaxies, Input};
use crate::progress::Progress;
use crate::report::{browse, dendrogram, gallery, html, plots};

/// Internal metrics are O(N²) in memory traffic for silhouette; above this many galaxies it is skipped.
const SILHOUETTE_MAX_SAMPLES: usize = 20_000;

/// Nearest neighbours per galaxy in the report's "browse by neighbour" pages and `neighbours.csv`.
const REPORT_NEIGHBOURS: usize = 8;

/// Up to this many galaxies the report's neighbours are exact; above, the approximate index is used
/// (exact all-pairs search grows as N²).
const EXACT_NEIGHBOURS_MAX: usize = 20_000;

/// One fitted method and what was written for it.
struct MethodRun {
    slug: String,
    spec: MethodSpec,
    clustering: sdss_cluster::Clustering,
    seconds: f64,
}

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
    let staging = Staging::begin(&out, cfg.force)?;
    let dir = staging.path().to_owned();

    let input = Input::from_options(cfg.images.as_deref(), cfg.npy.as_deref())?;
    if cfg.features == FeatureKind::Pixels {
        tracing::info!("features: raw pixels (the baseline)");
    } else {
        tracing::info!("features: CNN, layer {:?}", cfg.layer);
    }
    let request = FeatureRequest {
        kind: cfg.features,
        weights: cfg.weights.clone(),
        layer: cfg.layer,
        skip_bad: cfg.skip_bad,
        batch_size: cfg.batch_size,
        max_image_pixels: cfg.max_image_pixels,
        files: None,
    };
    let t = Instant::now();
    let galaxies = match &cfg.features_from {
        Some(from) => {
            tracing::info!(
                "features: read from {} (not computed; --images gives the thumbnails)",
                from.display()
            );
            input::load_precomputed(
                from,
                &input,
                cfg.max_image_pixels,
                &dir.join("features.npy"),
            )?
        }
        // Written into the run a batch at a time as they are computed.
        None => input::load(&input, &request, &dir.join("features.npy"), &progress)?,
    };
    let features_seconds = t.elapsed().as_secs_f64();
    let features = galaxies.features();
    let (n, d) = features.dim();
    if n < 2 {
        bail!("need at least two galaxies to cluster, found {n}");
    }
    tracing::info!("{n} galaxies, {d} features each");
    sdss_io::write_ids_csv(dir.join("ids.csv"), &galaxies.ids)?;
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
    let mut runs: Vec<MethodRun> = Vec::new();
    for spec in specs {
        let method = spec.build()?;
        let slug = unique_slug(spec.short, &runs);
        let spinner = progress.spinner(&format!("clustering: {}", spec.canonical_text()));
        let t = Instant::now();
        let clustering = method
            .fit(reduced.view())
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

    // Metrics.
    let t = Instant::now();
    let truth = match &cfg.truth {
        Some(path) => Some(input::read_truth(path, &galaxies.ids)?),
        None => None,
    };
    let mut metrics = BTreeMap::new();
    for r in &runs {
        let mut m = internal_metrics(reduced.view(), r.clustering.labels.view());
        if let Some(t) = &truth {
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
    write_labels_csv(&dir.join("labels.csv"), &galaxies.ids, &runs)?;
    let metrics_seconds = t.elapsed().as_secs_f64();

    // Figures and galleries.
    let t = Instant::now();
    let mut sections = Vec::new();
    for r in &runs {
        sections.push(method_report(
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
    let graph = neighbour_graph(reduced.view())?;
    crate::similar::write_neighbours_csv(
        &dir.join("neighbours.csv"),
        &galaxies.ids,
        (0..n).map(|i| (i, graph.neighbors(i).collect())),
    )?;
    let galaxy_pages = match cfg.galaxy_pages {
        crate::cli::GalaxyPages::Always => true,
        crate::cli::GalaxyPages::Never => false,
        crate::cli::GalaxyPages::Auto => n <= browse::GALAXY_PAGES_MAX,
    };
    if !galaxy_pages {
        tracing::info!(
            "no page per galaxy ({n} galaxies; --galaxy-pages always writes them): search.html finds any galaxy by id, with its neighbours"
        );
    }
    let spinner = progress.spinner("neighbour pages");
    browse::write(
        &dir,
        &browse::Browse {
            ids: &galaxies.ids,
            graph: &graph,
            space: format!(
                "Euclidean distance in the PCA space ({} components){}",
                ratios.len(),
                if n > EXACT_NEIGHBOURS_MAX {
                    "; approximate search"
                } else {
                    ""
                }
            ),
            clusterings: runs
                .iter()
                .map(|r| browse::Clustering {
                    slug: &r.slug,
                    labels: &r.clustering.labels,
                })
                .collect(),
        },
        |i| galaxies.thumbnail(i),
        galaxy_pages,
    )?;
    spinner.finish_and_clear();
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
                galaxies.thumbnail(representative(reduced.view(), &members))
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
    let mut facts = vec![
        ("galaxies".to_owned(), n.to_string()),
        (
            "input".to_owned(),
            cfg.images
                .as_ref()
                .or(cfg.npy.as_ref())
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        (
            "features".to_owned(),
            match (&cfg.features_from, cfg.features) {
                (Some(from), _) => format!("read from {} ({d} values)", from.display()),
                (None, FeatureKind::Pixels) => format!("raw pixels ({d} values)"),
                (None, FeatureKind::Cnn) => format!("CNN layer {:?} ({d} values)", cfg.layer),
            },
        ),
        (
            "PCA".to_owned(),
            format!(
                "{} components, {:.2}% of the variance ({} solver{})",
                ratios.len(),
                total * 100.0,
                pca.svd_solver(),
                if pca_streamed {
                    ", fitted block by block over the memory-mapped features"
                } else {
                    ""
                }
            ),
        ),
    ];
    if cfg.features == FeatureKind::Cnn && cfg.features_from.is_none() {
        let (network, ours) = input::describe_weights(cfg.weights.as_deref());
        facts.push(("network".to_owned(), network));
        if ours {
            facts.push((
                "feature quality".to_owned(),
                input::FEATURE_STUDY_URL.to_owned(),
            ));
        }
    }
    if let Some(j) = &joined {
        facts.push((
            "catalogue".to_owned(),
            format!(
                "{}: {} of {n} galaxies joined on {}; {} galaxies unmatched, {} ambiguous; {} of {} catalogue rows unmatched (catalog_*.csv)",
                j.summary.catalog.display(),
                j.summary.matched,
                j.summary.on,
                j.summary.unmatched_galaxies,
                j.summary.ambiguous,
                j.summary.unmatched_catalog_rows,
                j.summary.catalog_rows
            ),
        ));
    }
    if !galaxies.skipped.is_empty() {
        facts.push((
            "skipped images".to_owned(),
            galaxies
                .skipped
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
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

/// The report's k-nearest-neighbour graph of the reduced features: exact up to
/// [`EXACT_NEIGHBOURS_MAX`] galaxies, approximate above.
fn neighbour_graph(reduced: ArrayView2<'_, f32>) -> Result<sdss_neighbors::KnnGraph> {
    use sdss_neighbors::{ExactIndex, IvfIndex, Metric, NeighborIndex};
    let n = reduced.nrows();
    let k = REPORT_NEIGHBOURS.min(n.saturating_sub(1));
    let graph = if n <= EXACT_NEIGHBOURS_MAX {
        ExactIndex::new(reduced, Metric::Euclidean)?.knn_graph(k)?
    } else {
        IvfIndex::new(reduced, Metric::Euclidean)?.knn_graph(k)?
    };
    Ok(graph)
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

/// Size plot, galleries and dendrogram of one method; returns its section of the page.
fn method_report(
    dir: &Path,
    r: &MethodRun,
    galaxies: &Galaxies,
    reduced: ArrayView2<'_, f32>,
    metrics: &BTreeMap<String, serde_json::Value>,
    progress: &Progress,
) -> Result<html::MethodSection> {
    let c = &r.clustering;
    let slug = &r.slug;
    let sizes = c.cluster_sizes();
    let noise = c.n_noise();
    let sizes_plot = format!("sizes_{slug}.png");
    plots::cluster_sizes(
        &dir.join(&sizes_plot),
        &sizes,
        noise,
        &format!("{}: galaxies per cluster", r.spec.canonical_text()),
    )?;

    // Members of each cluster in row order; the exemplar (if any) first.
    let mut members: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &l) in c.labels.iter().enumerate() {
        members.entry(l).or_default().push(i);
    }
    let exemplar_of = |label: i64| -> Option<usize> {
        let ex = c.exemplars.as_ref()?;
        usize::try_from(label).ok().and_then(|l| ex.get(l).copied())
    };
    let gallery_dir = dir.join("gallery").join(slug);
    std::fs::create_dir_all(&gallery_dir)
        .with_context(|| format!("cannot create {}", gallery_dir.display()))?;
    let bar = progress.bar(members.len() as u64, &format!("{slug} galleries"));
    let mut clusters = Vec::new();
    for (&label, rows) in &members {
        let exemplar = exemplar_of(label);
        let (mut shown, sampled) = gallery_sample(reduced, rows, label);
        if let Some(e) = exemplar {
            shown.retain(|&i| i != e);
            shown.insert(0, e);
            shown.truncate(gallery::MAX_TILES);
        }
        let tiles = shown
            .iter()
            .map(|&i| galaxies.thumbnail(i))
            .collect::<Result<Vec<_>>>()?;
        let (file, title) = if label < 0 {
            (
                "noise.png".to_owned(),
                format!("Noise: {} galaxies", rows.len()),
            )
        } else {
            (
                format!("cluster_{label}_of_{}.png", c.n_clusters),
                format!(
                    "Cluster {label} of {}: {} galaxies",
                    c.n_clusters,
                    rows.len()
                ),
            )
        };
        let title = match sampled {
            Some((near, random)) => {
                format!("{title}: the {near} nearest the centre, then {random} at random")
            }
            None => title,
        };
        gallery::grid(&gallery_dir.join(&file), &title, &tiles, exemplar.is_some())?;
        clusters.push(html::ClusterEntry {
            label,
            size: rows.len(),
            image: format!("gallery/{slug}/{file}"),
            exemplar: exemplar.map(|e| galaxies.ids[e].clone()),
            browse: Some(browse::cluster_page(slug, label)),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    if c.exemplars.is_some() {
        // Affinity propagation: exemplars first, as the original showed them.
        clusters.sort_by_key(|e| (e.exemplar.is_none(), e.label));
    }

    let dendrogram = match &c.linkage {
        Some(linkage) => {
            let mut tree =
                dendrogram::truncate(linkage.matrix().view(), dendrogram::DEFAULT_LEVELS);
            if let Some(assignment) = &c.micro_assignment {
                // The scalable form's leaves are micro-clusters: show their galaxies.
                let mut galaxies_of = vec![Vec::new(); linkage.n_samples()];
                for (galaxy, &micro) in assignment.iter().enumerate() {
                    galaxies_of[micro].push(galaxy);
                }
                for leaf in &mut tree.leaves {
                    leaf.members = leaf
                        .members
                        .iter()
                        .flat_map(|&m| galaxies_of[m].iter().copied())
                        .collect();
                }
            }
            let examples = tree
                .leaves
                .iter()
                .map(|leaf| galaxies.thumbnail(representative(reduced, &leaf.members)))
                .collect::<Result<Vec<_>>>()?;
            let file = format!("dendrogram_{slug}.png");
            dendrogram::draw(
                &dir.join(&file),
                &tree,
                &examples,
                |i| {
                    let m = &tree.leaves[i].members;
                    if m.len() == 1 {
                        galaxies.ids[m[0]].clone()
                    } else {
                        format!("({})", m.len())
                    }
                },
                &format!(
                    "{}: top {} merge levels (SciPy truncate_mode='level')",
                    r.spec.canonical_text(),
                    dendrogram::DEFAULT_LEVELS
                ),
            )?;
            Some(file)
        }
        None => None,
    };

    let mut facts = vec![
        ("clusters".to_owned(), c.n_clusters.to_string()),
        ("seconds".to_owned(), format!("{:.2}", r.seconds)),
    ];
    if let Some(m) = c.micro_clusters {
        facts.push((
            "scalable form".into(),
            format!(
                "on {m} k-means micro-clusters (every galaxy takes its micro-cluster's label; \
                 micro_clusters_{slug}.npy maps galaxies to them)"
            ),
        ));
    }
    if noise > 0 {
        facts.push(("noise".into(), noise.to_string()));
    }
    if let Some(it) = c.iterations {
        facts.push(("iterations".into(), it.to_string()));
    }
    if let Some(conv) = c.converged {
        facts.push((
            "converged".into(),
            if conv {
                "yes".into()
            } else {
                "NO: result is not converged".into()
            },
        ));
    }
    if let Some(inertia) = c.inertia {
        facts.push(("inertia".into(), format!("{inertia:.6}")));
    }
    if let Some(serde_json::Value::Object(m)) = metrics.get(slug) {
        for key in [
            "silhouette",
            "calinski_harabasz",
            "davies_bouldin",
            "adjusted_rand_index",
            "normalized_mutual_info",
        ] {
            if let Some(v) = m.get(key).and_then(|v| v.as_f64()) {
                facts.push((key.replace('_', " "), format!("{v:.4}")));
            }
        }
    }
    Ok(html::MethodSection {
        slug: slug.clone(),
        spec: r.spec.canonical_text(),
        facts,
        sizes_plot,
        dendrogram,
        labels_file: format!("labels_{slug}.npy"),
        clusters,
        properties: None,
    })
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

/// The members a cluster's gallery shows: all of them when they fit, else the half of the grid
/// nearest the cluster's centre (in the reduced space, nearest first) and then a seeded random
/// draw of the rest, so that a large cluster shows both its core and its spread. Returns the rows
/// and, for a sample, how many of each kind.
fn gallery_sample(
    x: ArrayView2<'_, f32>,
    rows: &[usize],
    label: i64,
) -> (Vec<usize>, Option<(usize, usize)>) {
    let tiles = gallery::MAX_TILES;
    if rows.len() <= tiles {
        return (rows.to_vec(), None);
    }
    let members = x.select(Axis(0), rows);
    let Some(mean) = members.mean_axis(Axis(0)) else {
        return (rows[..tiles].to_vec(), None);
    };
    let mut by_distance: Vec<(f32, usize)> = members
        .outer_iter()
        .zip(rows)
        .map(|(row, &i)| {
            let d: f32 = row
                .iter()
                .zip(mean.iter())
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            (d, i)
        })
        .collect();
    by_distance.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let near = tiles / 2;
    let mut shown: Vec<usize> = by_distance[..near].iter().map(|&(_, i)| i).collect();
    let rest: Vec<usize> = by_distance[near..].iter().map(|&(_, i)| i).collect();
    use rand::seq::index::sample;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(label as u64);
    let mut random: Vec<usize> = sample(&mut rng, rest.len(), tiles - near)
        .into_iter()
        .map(|j| rest[j])
        .collect();
    random.sort_unstable();
    shown.extend(&random);
    (shown, Some((near, tiles - near)))
}

/// The micro-cluster of each galaxy as `int64`, for numpy (`linkage_<slug>.npy`'s leaves).
fn write_micro_assignment(path: &Path, assignment: &[usize]) -> Result<()> {
    let column: Array1<i64> = assignment.iter().map(|&m| m as i64).collect();
    sdss_io::npy::write_npy(path, &column.view())?;
    Ok(())
}

/// The member closest to the members' mean in the reduced space: a typical galaxy of the branch.
fn representative(x: ArrayView2<'_, f32>, members: &[usize]) -> usize {
    let rows = x.select(Axis(0), members);
    let Some(mean) = rows.mean_axis(Axis(0)) else {
        return members.first().copied().unwrap_or(0);
    };
    let mut best = (f32::INFINITY, members.first().copied().unwrap_or(0));
    for (row, &i) in rows.outer_iter().zip(members) {
        let d: f32 = row
            .iter()
            .zip(mean.iter())
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        if d < best.0 {
            best = (d, i);
        }
    }
    best.1
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
    fn begin(out: &Path, force: bool) -> Result<Self> {
        Self::recover_interrupted_commit(out)?;
        crate::output_lock::remove_leftovers(out, &[".partial-"])?;
        if out.exists() {
            let non_empty = std::fs::read_dir(out)
                .with_context(|| format!("--out {}: not a readable folder", out.display()))?
                .next()
                .is_some();
            if non_empty && !force {
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
        Ok(Staging {
            path,
            out: out.to_owned(),
            committed: false,
        })
    }

    fn path(&self) -> &Path {
        &self.path
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
        let staging = Staging::begin(&out, false).unwrap();
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
        let err = Staging::begin(&out, false).err().unwrap().to_string();
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
        let staging = Staging::begin(&out, true).unwrap();
        std::fs::write(staging.path().join("index.html"), b"half").unwrap();
        drop(staging);
        assert_eq!(std::fs::read(out.join("index.html")).unwrap(), b"earlier");
        assert!(hidden_entries(dir.path()).is_empty());
    }
}
