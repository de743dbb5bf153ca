//! The O(n²) methods check their working memory against what the process may use before allocating
//! it: in their automatic form they switch to the scalable one (k-means micro-clusters), and asked
//! to be exact they refuse, naming the scalable alternative. Its own test binary, because it sets
//! the process-wide `SDSS_CLUSTERING_MEMORY_LIMIT`.

use ndarray::Array2;
use sdss_cluster::{
    memory::MEMORY_LIMIT_ENV, AffinityPropagation, Agglomerative, KMeans, LinkageMethod, Scale,
};

#[test]
fn quadratic_methods_refuse_what_does_not_fit_and_name_the_alternative() {
    // 2,000 samples: affinity propagation needs 16 MB, Ward 16 MB; the limit is 4 MiB.
    let x = Array2::from_shape_fn((2000, 3), |(i, j)| ((i * 7 + j * 13) % 101) as f32);
    // SAFETY: the only test in this binary, so no other thread reads the environment meanwhile.
    unsafe { std::env::set_var(MEMORY_LIMIT_ENV, "4M") };
    let exact_ap = AffinityPropagation {
        micro_clusters: Scale::Exact,
        ..AffinityPropagation::new()
    };
    let exact_ward = Agglomerative {
        micro_clusters: Scale::Exact,
        ..Agglomerative::new(5)
    };
    let average = Agglomerative {
        linkage: LinkageMethod::Average,
        ..Agglomerative::new(5)
    };
    for err in [
        exact_ap.fit(x.view()).unwrap_err(),
        exact_ward.fit(x.view()).unwrap_err(),
        average.fit(x.view()).unwrap_err(),
    ] {
        let text = err.to_string();
        assert!(text.contains("2000 samples"), "{text}");
        assert!(text.contains("15.3 MiB"), "{text}");
        assert!(text.contains("4.0 MiB"), "{text}");
        assert!(text.contains("micro_clusters="), "{text}");
    }
    // Automatic: the scalable form, with as many micro-clusters as fit.
    let ap = AffinityPropagation::new().fit(x.view()).unwrap();
    let m = ap
        .micro_clusters
        .expect("affinity propagation switched to micro-clusters");
    assert!(
        4 * m * m <= 2 << 20,
        "{m} micro-clusters fit in half of 4 MiB"
    );
    let ward = Agglomerative::new(5).fit(x.view()).unwrap();
    // At most half the samples; the data hold only 101 distinct points, so empty centres drop.
    let m = ward
        .micro_clusters
        .expect("Ward switched to micro-clusters");
    assert!((5..=1000).contains(&m), "{m}");
    assert_eq!(ward.n_clusters, 5);
    // Linear-memory methods are not affected.
    assert!(KMeans::new(3).fit(x.view()).is_ok());
    // With room, the same input runs.
    unsafe { std::env::set_var(MEMORY_LIMIT_ENV, "64M") };
    assert_eq!(exact_ward.fit(x.view()).unwrap().micro_clusters, None);
    assert_eq!(
        Agglomerative::new(5).fit(x.view()).unwrap().micro_clusters,
        None
    );
}
