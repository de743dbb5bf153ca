//! How far the scalable forms agree with the exact ones: affinity propagation (damping 0.8) and
//! Ward (cut to 32) on every sample against the same methods on k-means micro-clusters, and
//! affinity propagation on sparse k-nearest-neighbour graphs (`KNN=10,30,100`), scored by the
//! adjusted Rand index, with times and cluster counts.
//!
//! ```sh
//! cargo run --release -p sdss-cluster --example scalable_agreement -- \
//!     ../shared/data/sdss-cnn-features/CNN-128_PCA-20_features.npy 1000,2000,5000
//! # 50,000 galaxies: each real one copied with Gaussian jitter of 0.05 of each feature's spread
//! cargo run --release -p sdss-cluster --example scalable_agreement -- FEATURES.npy 5000,10000 50000
//! # HDBSCAN's time alone at that size
//! HDBSCAN_ONLY=1 cargo run --release -p sdss-cluster --example scalable_agreement -- FEATURES.npy 0 50000
//! ```

use std::time::Instant;

use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sdss_cluster::{adjusted_rand_score, AffinityPropagation, Agglomerative, Clustering, Scale};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or("usage: scalable_agreement FEATURES.npy M1,M2,.. [N]")?;
    let micro: Vec<usize> = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("1000,2000,5000")
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // `blobs:N:K`: N points around K known centres in 20-d, so agreement with the truth can be
    // scored too; Ward is then cut at K.
    let (x, truth, ward_k) = if let Some(spec) = path.strip_prefix("blobs:") {
        let (n, k) = spec.split_once(':').ok_or("blobs:N:K")?;
        let (x, truth) = blobs(n.parse()?, k.parse()?, 20, 5);
        let k = k.parse()?;
        (x, Some(truth), k)
    } else {
        let base = sdss_io::npy::read_matrix_f64(path)?;
        let x = match args.get(2) {
            Some(n) => jittered(&base, n.parse()?, 0.05, 7),
            None => base,
        };
        (x, None, 32)
    };
    println!("n = {}, d = {}", x.nrows(), x.ncols());
    if std::env::var_os("HDBSCAN_ONLY").is_some() {
        // HDBSCAN's cost against n (its time grows as n², its memory as n).
        let t = Instant::now();
        let r = sdss_cluster::Hdbscan {
            max_samples: usize::MAX,
            ..Default::default()
        }
        .fit(x.view())?;
        println!(
            "HDBSCAN min_cluster_size 5: {} clusters, {} noise in {:.2} s",
            r.n_clusters,
            r.n_noise(),
            t.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let timed = |what: &str, f: &dyn Fn() -> sdss_cluster::Result<Clustering>| {
        let t = Instant::now();
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        match (&r, &truth) {
            (Ok(c), Some(truth)) => println!(
                "{what}: {} clusters in {secs:.2} s, ARI vs the known groups {:.3}",
                c.n_clusters,
                adjusted_rand_score(c.labels.view(), truth.view()).unwrap_or(f64::NAN)
            ),
            (Ok(c), None) => println!("{what}: {} clusters in {secs:.2} s", c.n_clusters),
            (Err(e), _) => println!("{what}: {e}"),
        }
        r.ok().map(|c| (c, secs))
    };
    let ap = |scale| AffinityPropagation {
        damping: 0.8,
        micro_clusters: scale,
        ..AffinityPropagation::new()
    };
    let ward = |scale| Agglomerative {
        micro_clusters: scale,
        ..Agglomerative::new(ward_k)
    };
    let exact_ap = timed("affinity propagation, exact", &|| {
        ap(Scale::Exact).fit(x.view())
    });
    let exact_ward = timed("Ward 32, exact", &|| ward(Scale::Exact).fit(x.view()));
    // How stable the exact partitions are themselves: the same exact methods on the data moved
    // by 1% of each feature's spread. Agreement of a scalable form can not be judged above it.
    // `NO_NUDGE=1` skips this (and an empty micro-cluster list skips the micro forms).
    let skip = std::env::var_os("NO_NUDGE").is_some();
    let nudged = nudged(&x, 0.01, 11);
    let nudged_ap = timed("affinity propagation, exact, nudged 1%", &|| {
        if skip {
            Err(sdss_cluster::ClusterError::EmptyInput { rows: 0, cols: 0 })
        } else {
            ap(Scale::Exact).fit(nudged.view())
        }
    });
    let nudged_ward = timed("Ward 32, exact, nudged 1%", &|| {
        if skip {
            Err(sdss_cluster::ClusterError::EmptyInput { rows: 0, cols: 0 })
        } else {
            ward(Scale::Exact).fit(nudged.view())
        }
    });
    let ari = |r: &Option<(Clustering, f64)>, e: &Option<(Clustering, f64)>| match (r, e) {
        (Some((r, _)), Some((e, _))) => adjusted_rand_score(r.labels.view(), e.labels.view())
            .map_or("–".to_string(), |v| format!("{v:.3}")),
        _ => "–".into(),
    };
    println!(
        "exact vs exact on the data nudged by 1%: AP ARI {}, Ward ARI {}",
        ari(&nudged_ap, &exact_ap),
        ari(&nudged_ward, &exact_ward)
    );
    println!(
        "| micro-clusters | AP clusters | AP ARI vs exact | AP s | Ward ARI vs exact | Ward s |"
    );
    println!("|---|---|---|---|---|---|");
    for &m in &micro {
        let a = timed(&format!("affinity propagation, {m} micro"), &|| {
            ap(Scale::MicroClusters(m)).fit(x.view())
        });
        let w = timed(&format!("Ward 32, {m} micro"), &|| {
            ward(Scale::MicroClusters(m)).fit(x.view())
        });
        let secs = |r: &Option<(Clustering, f64)>| {
            r.as_ref().map_or("–".into(), |r| format!("{:.2}", r.1))
        };
        println!(
            "| {m} | {} | {} | {} | {} | {} |",
            a.as_ref().map_or(0, |r| r.0.n_clusters),
            ari(&a, &exact_ap),
            secs(&a),
            ari(&w, &exact_ward),
            secs(&w)
        );
    }
    // The other scalable form of affinity propagation: messages along each sample's k nearest
    // neighbours only (`KNN=10,30`; the graph's build time is printed on its own).
    let ks: Vec<usize> = std::env::var("KNN")
        .unwrap_or_else(|_| "10,30,100".into())
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    if let Some(&max_k) = ks.iter().max() {
        use sdss_neighbors::{ExactIndex, Metric, NeighborIndex};
        let x32 = x.mapv(|v| v as f32);
        let t = Instant::now();
        let graph = ExactIndex::new(x32.view(), Metric::Euclidean)?.knn_graph(max_k)?;
        println!(
            "exact {max_k}-NN graph in {:.2} s",
            t.elapsed().as_secs_f64()
        );
        println!("| k-NN graph | AP clusters | AP ARI vs exact | AP s |");
        println!("|---|---|---|---|");
        for &k in &ks {
            let lists: Vec<Vec<usize>> = (0..x.nrows())
                .map(|i| graph.neighbors(i).take(k).map(|nb| nb.index).collect())
                .collect();
            let a = timed(&format!("affinity propagation, {k}-NN graph"), &|| {
                ap(Scale::Exact).fit_knn(x.view(), &lists)
            });
            println!(
                "| {k} | {} | {} | {} |",
                a.as_ref().map_or(0, |r| r.0.n_clusters),
                ari(&a, &exact_ap),
                a.as_ref().map_or("–".into(), |r| format!("{:.2}", r.1))
            );
        }
    }
    Ok(())
}

/// `n` points in `d` dimensions around `k` seeded centres (spread 1, centres drawn with spread
/// `separation`), with the centre of each as its known group.
fn blobs(n: usize, k: usize, d: usize, separation: u64) -> (Array2<f64>, ndarray::Array1<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let centres = Array2::from_shape_fn((k, d), |_| separation as f64 * normal(&mut rng));
    let truth: ndarray::Array1<i64> = (0..n).map(|i| (i % k) as i64).collect();
    let x = Array2::from_shape_fn((n, d), |(i, j)| centres[[i % k, j]] + normal(&mut rng));
    (x, truth)
}

/// `x` plus seeded Gaussian noise of `scale` times each column's standard deviation.
fn nudged(x: &Array2<f64>, scale: f64, seed: u64) -> Array2<f64> {
    let std = x.std_axis(Axis(0), 0.0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = x.clone();
    for mut row in out.outer_iter_mut() {
        for (o, &s) in row.iter_mut().zip(&std) {
            *o += scale * s * normal(&mut rng);
        }
    }
    out
}

/// A standard normal by Box–Muller.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` rows, each a seeded random row of `base` plus Gaussian noise of `scale` times each
/// column's standard deviation: a larger set with the real set's structure.
fn jittered(base: &Array2<f64>, n: usize, scale: f64, seed: u64) -> Array2<f64> {
    let std = base.std_axis(Axis(0), 0.0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Array2::zeros((n, base.ncols()));
    for mut row in out.outer_iter_mut() {
        let src = base.row(rng.random_range(0..base.nrows()));
        for ((o, &v), &s) in row.iter_mut().zip(src).zip(&std) {
            *o = v + scale * s * normal(&mut rng);
        }
    }
    out
}
