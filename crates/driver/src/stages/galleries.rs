//! Galleries: per method, the cluster-size plot, one gallery image per cluster and the dendrogram,
//! and the method's section of `index.html`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use ndarray::{ArrayView2, Axis};

use crate::input::Galaxies;
use crate::progress::Progress;
use crate::report::{browse, dendrogram, gallery, html, plots};
use crate::stages::cluster::MethodRun;

/// Size plot, galleries and dendrogram of one method; returns its section of the page.
pub fn method_report(
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
    if let Some(k) = c.knn_graph {
        facts.push((
            "scalable form".into(),
            format!("on the sparse graph of each galaxy's {k} nearest neighbours"),
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
    shown.extend(browse::seeded_draw(&rest, tiles - near, label as u64));
    (shown, Some((near, tiles - near)))
}

/// The member closest to the members' mean in the reduced space: a typical galaxy of the branch.
pub fn representative(x: ArrayView2<'_, f32>, members: &[usize]) -> usize {
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
