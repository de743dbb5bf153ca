//! The O(n²) methods refuse an input whose working memory is more than the process may use, before
//! allocating it, naming the scalable alternative. Its own test binary, because it sets the
//! process-wide `SDSS_CLUSTERING_MEMORY_LIMIT`.

use ndarray::Array2;
use sdss_cluster::{memory::MEMORY_LIMIT_ENV, AffinityPropagation, Agglomerative, KMeans};

#[test]
fn quadratic_methods_refuse_what_does_not_fit_and_name_the_alternative() {
    // 2,000 samples: affinity propagation needs 16 MB, Ward 16 MB; the limit is 4 MiB.
    let x = Array2::from_shape_fn((2000, 3), |(i, j)| ((i * 7 + j * 13) % 101) as f32);
    // SAFETY: the only test in this binary, so no other thread reads the environment meanwhile.
    unsafe { std::env::set_var(MEMORY_LIMIT_ENV, "4M") };
    for err in [
        AffinityPropagation::new().fit(x.view()).unwrap_err(),
        Agglomerative::new(5).fit(x.view()).unwrap_err(),
    ] {
        let text = err.to_string();
        assert!(text.contains("2000 samples"), "{text}");
        assert!(text.contains("15.3 MiB"), "{text}");
        assert!(text.contains("4.0 MiB"), "{text}");
        assert!(text.contains("--method minibatch"), "{text}");
    }
    // Linear-memory methods are not affected.
    assert!(KMeans::new(3).fit(x.view()).is_ok());
    // With room, the same input runs.
    unsafe { std::env::set_var(MEMORY_LIMIT_ENV, "64M") };
    assert!(Agglomerative::new(5).fit(x.view()).is_ok());
}
