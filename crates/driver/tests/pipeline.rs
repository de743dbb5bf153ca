//! The default pipeline end to end, through the real binary: outputs agree with each other and the
//! recorded configuration reproduces the labels.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

#[test]
fn default_run_outputs_are_consistent_and_reproducible() {
    let work = tempfile::tempdir().unwrap();
    let stdout = ok(work.path(), &["--quiet"]);
    let report = stdout
        .lines()
        .find_map(|l| l.strip_prefix("report: "))
        .expect("the default run says where the report is");
    let out = std::path::Path::new(report).parent().unwrap().to_owned();
    assert!(
        out.starts_with(work.path().join("out")),
        "{}",
        out.display()
    );

    let n_images = sdss_io::folder::list_images(bundled_galaxies())
        .unwrap()
        .len();
    let ids = sdss_io::read_ids_csv(out.join("ids.csv")).unwrap();
    assert_eq!(ids.len(), n_images);

    let features = sdss_io::npy::read_matrix_f32(out.join("features.npy")).unwrap();
    // The default features are the shipped pre-trained encoder's 128-wide embedding.
    assert_eq!(features.dim(), (n_images, 128));
    let pca = sdss_io::npy::read_matrix_f32(out.join("pca.npy")).unwrap();
    assert_eq!(pca.nrows(), n_images);
    let ratio =
        sdss_io::npy::read_npy_as::<f64>(out.join("pca_explained_variance_ratio.npy")).unwrap();
    assert_eq!(ratio.len(), pca.ncols());
    assert!(ratio.sum() > 0.5 && ratio.sum() <= 1.0 + 1e-9);

    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let csv = std::fs::read_to_string(out.join("labels.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header, ["id", "kmeans", "affinity", "agglomerative"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), n_images);

    for (col, method) in header.iter().enumerate().skip(1) {
        let labels = labels(&out.join(format!("labels_{method}.npy")));
        assert_eq!(labels.len(), n_images, "{method}: a label for every galaxy");
        for (row, &l) in rows.iter().zip(&labels) {
            assert_eq!(
                row[col].parse::<i64>().unwrap(),
                l,
                "{method}: labels.csv agrees with the .npy"
            );
        }
        let summary = &metrics[method]["summary"];
        let n_clusters = summary["n_clusters"].as_u64().unwrap() as usize;
        let sizes: Vec<usize> = serde_json::from_value(summary["cluster_sizes"].clone()).unwrap();
        assert_eq!(sizes.len(), n_clusters);
        assert_eq!(
            sizes.iter().sum::<usize>(),
            n_images,
            "{method}: sizes add up"
        );
        let mut counted: BTreeMap<i64, usize> = BTreeMap::new();
        for &l in &labels {
            *counted.entry(l).or_default() += 1;
        }
        assert_eq!(counted.values().copied().collect::<Vec<_>>(), sizes);

        // One gallery per cluster, and the page shows each of them.
        let galleries: Vec<_> = std::fs::read_dir(out.join("gallery").join(method))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            galleries.len(),
            n_clusters,
            "{method}: one gallery per cluster"
        );
        for k in 0..n_clusters {
            let name = format!("cluster_{k}_of_{n_clusters}.png");
            assert!(galleries.contains(&name), "{method}: missing {name}");
            assert!(image::open(out.join("gallery").join(method).join(&name)).is_ok());
        }
        // The synthetic galaxies' true classes were used to score the run.
        assert!(
            metrics[method]["adjusted_rand_index"].is_number(),
            "{method}"
        );
    }
    assert_eq!(metrics["kmeans"]["summary"]["n_clusters"], 10);
    assert_eq!(metrics["agglomerative"]["summary"]["n_clusters"], 32);
    let linkage = sdss_io::npy::read_matrix_f64(out.join("linkage_agglomerative.npy")).unwrap();
    assert_eq!(linkage.dim(), (n_images - 1, 4));
    assert_eq!(linkage[[n_images - 2, 3]] as usize, n_images);
    for plot in [
        "pca_variance.png",
        "dendrogram_agglomerative.png",
        "sizes_kmeans.png",
    ] {
        assert!(image::open(out.join(plot)).is_ok(), "{plot}");
    }
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    for src in html
        .split("src=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
    {
        assert!(out.join(src).is_file(), "index.html links to missing {src}");
    }

    // Browsing by neighbour: every galaxy's 8 nearest neighbours in neighbours.csv, one page per
    // galaxy and per cluster, and no link or image anywhere in the report that leads nowhere.
    let csv = std::fs::read_to_string(out.join("neighbours.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 8 * n_images);
    for (i, id) in ids.iter().enumerate() {
        let mine = &rows[8 * i..8 * (i + 1)];
        assert!(mine.iter().all(|r| r[0] == id && r[2] != id), "{id}");
        let d: Vec<f32> = mine.iter().map(|r| r[3].parse().unwrap()).collect();
        assert!(d.windows(2).all(|w| w[0] <= w[1]), "{id}: nearest first");
    }
    // CNN features from the shipped encoder: the report names it and links the feature-quality study.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        html.contains("small-vicreg-sdss6437"),
        "the report names the encoder"
    );
    assert!(
        html.contains("docs/feature-quality.md"),
        "the report links the study"
    );
    let pages = assert_links_resolve(&out);
    assert!(
        pages > n_images,
        "{pages} pages reached from index.html: every galaxy's page is reachable"
    );

    // The recorded configuration repeats the run exactly.
    let again = work.path().join("again");
    ok(
        work.path(),
        &[
            "--quiet",
            "run",
            "--config",
            out.join("config.toml").to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ],
    );
    for method in &header[1..] {
        let file = format!("labels_{method}.npy");
        assert_eq!(
            labels(&out.join(&file)),
            labels(&again.join(&file)),
            "{method} reproduces"
        );
    }
}

#[test]
fn existing_output_is_refused_unless_forced_and_never_mixed() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 40);
    let out = work.path().join("out");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "--quiet",
            "run",
            "--images",
            images.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--pca",
            "10",
            "--method",
            "kmeans:k=3",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    let first = args(&[]);
    ok(work.path(), &refs(&first));
    std::fs::write(out.join("precious.txt"), "keep me").unwrap();

    let err = fails(work.path(), &refs(&first));
    assert!(err.contains("--out") && err.contains("--force"), "{err}");
    assert!(
        out.join("precious.txt").exists(),
        "refusing must not touch the old results"
    );

    // A failing forced run leaves the old results in place.
    let mut bad = args(&["--force"]);
    bad.extend(["--method".into(), "kmeans:k=0".into()]);
    fails(work.path(), &refs(&bad));
    assert!(out.join("precious.txt").exists());

    let forced = args(&["--force", "--method", "agglomerative:k=4,linkage=average"]);
    ok(work.path(), &refs(&forced));
    assert!(
        !out.join("precious.txt").exists(),
        "--force replaces, never mixes"
    );
    assert!(out.join("labels_agglomerative.npy").exists());
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial") || n.contains(".old"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn scalable_forms_and_a_sampled_pca_are_recorded_in_run_json_and_the_report() {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 40);
    let out = work.path().join("out");
    ok(
        work.path(),
        &[
            "--quiet",
            "run",
            "--images",
            images.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--features",
            "pixels",
            "--pca",
            "8",
            "--pca-fit-sample",
            "25",
            "--method",
            "ward:k=4,micro_clusters=12",
            "--method",
            "affinity:damping=0.8,micro_clusters=12",
            "--method",
            "kmeans:k=4",
            "--method",
            "affinity:damping=0.8,knn=10",
        ],
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let methods = &run["methods"];
    assert_eq!(methods["agglomerative"]["micro_clusters"], 12, "{methods}");
    assert!(methods["affinity"]["micro_clusters"].as_u64().unwrap() <= 12);
    assert!(methods["kmeans"]["micro_clusters"].is_null(), "{methods}");
    // Affinity propagation on the sparse graph of each galaxy's 10 nearest neighbours.
    assert_eq!(methods["affinity-2"]["knn_graph"], 10, "{methods}");
    assert!(
        methods["affinity-2"]["micro_clusters"].is_null(),
        "{methods}"
    );
    assert!(methods["affinity"]["knn_graph"].is_null(), "{methods}");
    assert_eq!(labels(&out.join("labels_affinity-2.npy")).len(), 40);
    // The tree's leaves are the micro-clusters; the map from galaxies to them is written.
    let z = sdss_io::npy::read_matrix_f64(out.join("linkage_agglomerative.npy")).unwrap();
    assert_eq!(z.nrows(), 11);
    assert_eq!(z[[10, 3]], 40.0, "the last merge holds every galaxy");
    let micro = labels(&out.join("micro_clusters_agglomerative.npy"));
    assert_eq!(micro.len(), 40);
    assert!(micro.iter().all(|&m| (0..12).contains(&m)));
    let ward = labels(&out.join("labels_agglomerative.npy"));
    for (a, b) in micro
        .iter()
        .zip(&ward)
        .flat_map(|p| micro.iter().zip(&ward).map(move |q| (p, q)))
    {
        if a.0 == b.0 {
            assert_eq!(a.1, b.1, "galaxies of one micro-cluster share a label");
        }
    }
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("scalable form"), "the report says so");
    assert!(html.contains("10 nearest neighbours"), "and which");
    // The PCA was fitted on 25 of the 40 galaxies, its ratios measured on all 40.
    let pca: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("pca.json")).unwrap()).unwrap();
    assert_eq!(pca["fitted_on"], 25, "{pca}");
    let total = pca["total_explained_variance_ratio"].as_f64().unwrap();
    assert!(total > 0.3 && total < 1.0, "{pca}");
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(config.contains("pca_fit_sample = 25"), "{config}");
    assert!(out.join("dendrogram_agglomerative.png").exists());
}

/// Where the report's links into the repository's documents start.
const FEATURE_STUDY_URL: &str = "https://github.com/sdss-clustering/sdss-clustering/blob/main/";

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Follows every `href` and `src` from index.html through the report's own pages; panics on any
/// that does not resolve to a file. Returns the number of pages visited.
fn assert_links_resolve(out: &std::path::Path) -> usize {
    use std::collections::BTreeSet;
    let mut seen: BTreeSet<std::path::PathBuf> = BTreeSet::new();
    let mut queue = vec![out.join("index.html")];
    while let Some(page) = queue.pop() {
        let page = page.canonicalize().unwrap();
        if !seen.insert(page.clone()) {
            continue;
        }
        let html = std::fs::read_to_string(&page).unwrap();
        for attr in ["href=\"", "src=\""] {
            for link in html.split(attr).skip(1).map(|s| &s[..s.find('"').unwrap()]) {
                let file = link.split('#').next().unwrap();
                if file.is_empty() {
                    continue;
                }
                if let Some(doc) = file.strip_prefix(FEATURE_STUDY_URL) {
                    // The one link out of the report: the study in this repository's docs.
                    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
                    assert!(
                        repo.join(doc).is_file(),
                        "{link}: no such file in the repository"
                    );
                    continue;
                }
                let target = page.parent().unwrap().join(file);
                assert!(
                    target.is_file(),
                    "{} links to missing {link}",
                    page.display()
                );
                if file.ends_with(".html") {
                    queue.push(target);
                }
            }
        }
    }
    seen.len()
}

#[test]
fn a_pca_streamed_over_the_mapped_features_matches_the_in_memory_fit() {
    // The features are written a batch at a time (batches of 7 here) and mapped. Where `auto`
    // picks the randomized solver (pixels, 6 components) the PCA reads them block by block too,
    // and gives the in-memory fit's model; a variance fraction needs an exact solver, which reads
    // them through the map.
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    copy_galaxies(&images, 30);
    let run = |name: &str, pca: &str| {
        let out = work.path().join(name);
        ok(
            work.path(),
            &[
                "--quiet",
                "run",
                "--images",
                images.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--features",
                "pixels",
                "--batch-size",
                "7",
                "--pca",
                pca,
                "--method",
                "kmeans:k=3",
                "--seed",
                "5",
            ],
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("pca.json")).unwrap()).unwrap();
        (out, json)
    };
    let (streamed, streamed_pca) = run("streamed", "6");
    assert_eq!(streamed_pca["streamed"], true, "{streamed_pca}");
    assert_eq!(streamed_pca["svd_solver"], "randomized", "{streamed_pca}");
    let x = sdss_io::npy::read_matrix_f32(streamed.join("features.npy")).unwrap();
    assert_eq!(x.dim(), (30, 19200));
    let in_memory = sdss_pca::Pca::new(6).random_state(5).fit(x.view()).unwrap();
    let total = streamed_pca["total_explained_variance_ratio"]
        .as_f64()
        .unwrap();
    let gap = (total - in_memory.total_explained_variance_ratio()).abs();
    assert!(gap < 1e-6, "streamed {total} vs in memory: gap {gap}");
    let reduced = sdss_io::npy::read_matrix_f32(streamed.join("pca.npy")).unwrap();
    let direct = in_memory.transform(x.view()).unwrap();
    let worst = (&reduced - &direct)
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(worst < 1e-3, "projections differ by {worst}");
    let html = std::fs::read_to_string(streamed.join("index.html")).unwrap();
    assert!(
        html.contains("block by block"),
        "the report says how the PCA ran"
    );

    let (exact, exact_pca) = run("exact", "0.9");
    assert_eq!(exact_pca["streamed"], false, "{exact_pca}");
    assert_eq!(exact_pca["svd_solver"], "full", "{exact_pca}");
    assert_eq!(
        std::fs::read(exact.join("features.npy")).unwrap(),
        std::fs::read(streamed.join("features.npy")).unwrap()
    );
}
