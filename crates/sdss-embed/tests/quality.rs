//! Does the map keep what the features know? Seeded synthetic blobs with known truth, 20-D: the
//! UMAP map against its own start (the first two principal components), on neighbourhood
//! preservation (k = 10) and on k-means' agreement with the truth (ARI) on the 2-D coordinates.

use ndarray::{s, Array1, Array2};
use sdss_embed::{neighbourhood_preservation, Umap};

fn ari_on(map: &Array2<f32>, truth: &[usize], k: usize) -> f64 {
    let labels = sdss_cluster::KMeans::new(k).fit(map.view()).unwrap().labels;
    let truth: Array1<i64> = truth.iter().map(|&t| t as i64).collect();
    sdss_cluster::adjusted_rand_score(truth.view(), labels.view()).unwrap()
}

#[test]
fn umap_keeps_neighbourhoods_and_clusters_better_than_the_pca_start() {
    let (x, truth) = sdss_neighbors::make_blobs(3000, 20, 8, 2.5, 7);
    // PCA coordinates, as the pipeline hands them over.
    let pca = sdss_pca::Pca::new(sdss_pca::NComponents::from(10usize)).random_state(0);
    let (_, reduced) = pca.fit_transform(x.view()).unwrap();
    let map = Umap::new().random_state(0).fit(reduced.view()).unwrap();
    let start = reduced.slice(s![.., ..2]).to_owned();
    let keep_umap = neighbourhood_preservation(reduced.view(), map.view(), 10).unwrap();
    let keep_pca = neighbourhood_preservation(reduced.view(), start.view(), 10).unwrap();
    let (ari_umap, ari_pca) = (ari_on(&map, &truth, 8), ari_on(&start, &truth, 8));
    eprintln!("neighbourhood preservation: UMAP {keep_umap:.3}, PCA-2 {keep_pca:.3}; k-means ARI: UMAP {ari_umap:.3}, PCA-2 {ari_pca:.3}");
    assert!(
        keep_umap > keep_pca + 0.1,
        "UMAP {keep_umap:.3} vs PCA {keep_pca:.3}"
    );
    assert!(ari_umap > ari_pca, "UMAP {ari_umap:.3} vs PCA {ari_pca:.3}");
    assert!(ari_umap > 0.9, "{ari_umap:.3}");
}
