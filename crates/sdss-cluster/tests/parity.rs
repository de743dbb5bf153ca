//! Parity with scikit-learn / SciPy on the committed fixtures in `fixtures/cluster/`
//! (made by `fixtures/cluster/make_fixtures.py`), and on the real SDSS CNN features in
//! `../shared/` (ignored unless that folder is present).

use std::path::PathBuf;

use ndarray::{Array1, Array2};
use sdss_cluster::{
    adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score,
    normalized_mutual_info_score, silhouette_samples, silhouette_score, AffinityPropagation,
    Agglomerative, Cut, Hdbscan, KMeans, LinkageMethod,
};
use serde_json::Value;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    workspace().join("fixtures/cluster").join(name)
}

fn json(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn blobs() -> Array2<f64> {
    sdss_io::npy::read_matrix_f64(fixture("blobs.npy")).unwrap()
}

fn labels(name: &str) -> Array1<i64> {
    let a = sdss_io::npy::read_npy(fixture(name)).unwrap().into_f64();
    a.iter().map(|&v| v as i64).collect()
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol,
        "{what}: {a} vs scikit-learn {b} (tolerance {tol})"
    );
}

#[test]
fn metrics_match_scikit_learn_to_1e_6() {
    let x = blobs();
    let a = labels("blobs_labels_a.npy");
    let b = labels("blobs_labels_b.npy");
    let m = json("metrics.json");
    let f = |k: &str| m[k].as_f64().unwrap();
    close(
        silhouette_score(x.view(), a.view()).unwrap(),
        f("silhouette_a"),
        1e-6,
        "silhouette a",
    );
    close(
        silhouette_score(x.view(), b.view()).unwrap(),
        f("silhouette_b"),
        1e-6,
        "silhouette b",
    );
    let s = silhouette_samples(x.view(), a.view()).unwrap();
    for (i, e) in m["silhouette_samples_a_first10"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        close(s[i], e.as_f64().unwrap(), 1e-6, "silhouette sample");
    }
    close(
        calinski_harabasz_score(x.view(), a.view()).unwrap(),
        f("calinski_harabasz_a"),
        1e-6 * f("calinski_harabasz_a"),
        "CH a",
    );
    close(
        calinski_harabasz_score(x.view(), b.view()).unwrap(),
        f("calinski_harabasz_b"),
        1e-6 * f("calinski_harabasz_b"),
        "CH b",
    );
    close(
        davies_bouldin_score(x.view(), a.view()).unwrap(),
        f("davies_bouldin_a"),
        1e-6,
        "DB a",
    );
    close(
        davies_bouldin_score(x.view(), b.view()).unwrap(),
        f("davies_bouldin_b"),
        1e-6,
        "DB b",
    );
    close(
        adjusted_rand_score(a.view(), b.view()).unwrap(),
        f("ari_ab"),
        1e-6,
        "ARI",
    );
    close(
        normalized_mutual_info_score(a.view(), b.view()).unwrap(),
        f("nmi_ab"),
        1e-6,
        "NMI",
    );
    // Also with f32 features (converted exactly to f64 internally).
    let x32 = x.mapv(|v| v as f32);
    assert!(silhouette_score(x32.view(), a.view()).is_ok());
}

#[test]
fn linkage_matrices_match_scipy() {
    let x = blobs();
    for method in ["ward", "average", "complete", "single"] {
        let expected =
            sdss_io::npy::read_matrix_f64(fixture(&format!("linkage_{method}.npy"))).unwrap();
        let agg = Agglomerative {
            linkage: LinkageMethod::from_name(method).unwrap(),
            cut: Cut::NClusters(6),
            ..Agglomerative::new(6)
        };
        let r = agg.fit(x.view()).unwrap();
        let z = r.linkage.as_ref().unwrap().matrix();
        assert_eq!(z.dim(), expected.dim());
        for (i, (row, erow)) in z.outer_iter().zip(expected.outer_iter()).enumerate() {
            // Merge heights agree to rounding; the merged ids agree except where heights tie.
            close(
                row[2],
                erow[2],
                1e-9 * erow[2].max(1.0),
                &format!("{method} height row {i}"),
            );
            assert_eq!(row[3], erow[3], "{method} size row {i}");
        }
        let scipy = labels(&format!("fcluster_{method}_k6.npy"));
        let ari = adjusted_rand_score(r.labels.view(), scipy.view()).unwrap();
        assert_eq!(ari, 1.0, "{method}: fcluster(maxclust=6) partition differs");
    }
}

#[test]
fn weighted_ward_with_unit_weights_matches_scipy() {
    // The scalable form's merge engine (nearest-neighbour chain on centroids and sizes) against
    // SciPy `linkage(x, "ward")` on the 300-point fixture: heights to 1e-9 relative, sizes exact.
    let x = blobs();
    let expected = sdss_io::npy::read_matrix_f64(fixture("linkage_ward.npy")).unwrap();
    let z = sdss_cluster::scalable::weighted_ward_linkage(x.view(), &vec![1.0; x.nrows()]).unwrap();
    let z = z.matrix();
    assert_eq!(z.dim(), expected.dim());
    for (i, (row, erow)) in z.outer_iter().zip(expected.outer_iter()).enumerate() {
        close(
            row[2],
            erow[2],
            1e-9 * erow[2].max(1.0),
            &format!("height row {i}"),
        );
        assert_eq!(row[3], erow[3], "size row {i}");
    }
}

#[test]
fn linkage_exports_to_npy_readable_as_scipy_format() {
    let x = blobs();
    let r = Agglomerative::new(6).fit(x.view()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.npy");
    let l = r.linkage.unwrap();
    l.write_npy(&path).unwrap();
    let back = sdss_io::npy::read_matrix_f64(&path).unwrap();
    assert_eq!(&back, l.matrix());
    assert_eq!(back.dim(), (299, 4));
}

#[test]
fn affinity_propagation_matches_scikit_learn_exactly_on_fixture() {
    let x = blobs().mapv(|v| v as f32);
    let ap = json("ap.json");
    for damping in ["0.5", "0.8"] {
        let mut m = AffinityPropagation::new();
        m.damping = damping.parse().unwrap();
        let r = m.fit(x.view()).unwrap();
        let e = &ap[damping];
        let labels: Vec<i64> = e["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let ex: Vec<usize> = e["exemplars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(r.converged, Some(true));
        assert_eq!(r.exemplars.as_ref().unwrap(), &ex, "damping {damping}");
        assert_eq!(r.labels.to_vec(), labels, "damping {damping}");
        assert_eq!(
            r.iterations,
            Some(e["n_iter"].as_u64().unwrap() as usize),
            "damping {damping}"
        );
    }
}

/// HDBSCAN equals scikit-learn's exactly when scikit-learn sorts its tied spanning-tree edges
/// stably (its default unstable sort orders ties by NumPy build and CPU), and stays within
/// ARI 0.99 of the stock output.
#[test]
fn hdbscan_labels_equal_scikit_learn_on_fixture() {
    let x = blobs();
    let cases = json("hdbscan.json");
    let as_labels = |v: &Value| -> Array1<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect()
    };
    for (name, case) in cases.as_object().unwrap() {
        let h = Hdbscan {
            min_cluster_size: case["min_cluster_size"].as_u64().unwrap() as usize,
            min_samples: case["min_samples"].as_u64().map(|v| v as usize),
            allow_single_cluster: case["allow_single_cluster"].as_bool().unwrap(),
            ..Hdbscan::default()
        };
        let stable = as_labels(&case["labels_stable_ties"]);
        let stock = as_labels(&case["labels"]);
        let r = h.fit(x.view()).unwrap();
        assert_eq!(r.labels, stable, "{name}");
        assert_eq!(
            r.n_clusters as i64,
            stable.iter().max().unwrap() + 1,
            "{name}"
        );
        let ari = adjusted_rand_score(stock.view(), r.labels.view()).unwrap();
        assert!(ari >= 0.99, "{name}: ARI {ari} against stock scikit-learn");
    }
}

#[test]
fn kmeans_inertia_within_0_1_percent_of_scikit_learn() {
    let x = blobs();
    let expected = json("kmeans.json")["inertia"].as_f64().unwrap();
    let r = KMeans::new(6).fit(x.view()).unwrap();
    let inertia = r.inertia.unwrap();
    assert!(
        inertia <= expected * 1.001,
        "inertia {inertia} vs scikit-learn {expected}"
    );
}

// ---- real SDSS features (../shared) ----

fn shared(name: &str) -> PathBuf {
    workspace()
        .join("../shared/data/sdss-cnn-features")
        .join(name)
}

fn real_features() -> Array2<f32> {
    sdss_io::npy::read_matrix_f32(shared("CNN-128_PCA-20_features.npy")).unwrap()
}

#[test]
#[ignore = "needs ../shared"]
fn real_affinity_propagation_reproduces_the_original_53_clusters() {
    let x = real_features();
    let original: Array1<i64> =
        sdss_io::npy::read_npy(shared("affinity_propagation-52_CNN-128_PCA-20.npy"))
            .unwrap()
            .into_f64()
            .iter()
            .map(|&v| v as i64)
            .collect();
    let mut ap = AffinityPropagation::new();
    ap.damping = 0.8;
    let r = ap.fit(x.view()).unwrap();
    assert_eq!(r.converged, Some(true));
    assert_eq!(r.n_clusters, 53);
    let ari = adjusted_rand_score(original.view(), r.labels.view()).unwrap();
    assert!(ari >= 0.999, "ARI {ari}");
}

#[test]
#[ignore = "needs ../shared"]
fn real_hdbscan_equals_scikit_learn() {
    let x = real_features();
    let r = Hdbscan::default().fit(x.view()).unwrap();
    assert_eq!(r.labels, labels("real_hdbscan5_labels_stable_ties.npy"));
    assert_eq!(r.n_clusters, 22);
    let stock = labels("real_hdbscan5_labels.npy");
    let ari = adjusted_rand_score(stock.view(), r.labels.view()).unwrap();
    assert!(ari >= 0.99, "ARI {ari} against stock scikit-learn");
}

#[test]
#[ignore = "needs ../shared"]
fn real_ward_32_equals_scipy_fcluster_maxclust() {
    let x = real_features();
    let scipy = labels("real_ward32_labels.npy");
    let r = Agglomerative::new(32).fit(x.view()).unwrap();
    assert_eq!(r.n_clusters, 32);
    assert_eq!(
        adjusted_rand_score(scipy.view(), r.labels.view()).unwrap(),
        1.0
    );
}

#[test]
#[ignore = "needs ../shared"]
fn real_kmeans_10_inertia_within_0_1_percent_of_scikit_learn() {
    let x = real_features();
    let best = json("real_reference.json")["kmeans10_best_inertia"]
        .as_f64()
        .unwrap();
    let r = KMeans::new(10).fit(x.view()).unwrap();
    let inertia = r.inertia.unwrap();
    assert!(
        inertia <= best * 1.001,
        "inertia {inertia} vs scikit-learn best {best} (issue: 60.57)"
    );
}

// ---- mini-batch k-means (fixtures/cluster/make_minibatch.py) ----

/// Our mean inertia over seeds 0..99 against scikit-learn's `MiniBatchKMeans` mean over its seeds
/// 0..99 at the same settings (k, batch 1024, one k-means++ init on 3 batches): at most 1% higher.
/// The random streams differ, so single runs are not comparable (scikit-learn's own runs on the
/// blobs range over 21%, and a five-seed mean on the real features moves by 1%); lower is better, so only the upper side is bounded.
fn minibatch_within_one_percent<T: sdss_cluster::Element>(
    x: ndarray::ArrayView2<'_, T>,
    case: &str,
) {
    let reference = &json("minibatch.json")[case];
    let k = reference["k"].as_u64().unwrap() as usize;
    let theirs = reference["minibatch_mean_inertia"].as_f64().unwrap();
    let ours: Vec<f64> = (0..100)
        .map(|seed| {
            let mut m = sdss_cluster::MiniBatchKMeans::new(k);
            m.batch_size = reference["batch_size"].as_u64().unwrap() as usize;
            m.seed = seed;
            m.fit(x).unwrap().inertia.unwrap()
        })
        .collect();
    let mean = ours.iter().sum::<f64>() / ours.len() as f64;
    println!(
        "{case}: mean inertia {mean:.6}, scikit-learn {theirs:.6}, ratio {:.4}",
        mean / theirs
    );
    assert!(
        mean <= 1.01 * theirs,
        "{case}: mean inertia {mean} ({ours:?}) is more than 1% above scikit-learn's {theirs}"
    );
}

#[test]
fn minibatch_kmeans_inertia_within_one_percent_of_scikit_learn_on_blobs() {
    let x = sdss_io::npy::read_matrix_f32(fixture("minibatch_blobs.npy")).unwrap();
    minibatch_within_one_percent(x.view(), "blobs");
}

#[test]
#[ignore = "needs ../shared"]
fn minibatch_kmeans_inertia_within_one_percent_of_scikit_learn_on_real_features() {
    minibatch_within_one_percent(real_features().view(), "real");
}
