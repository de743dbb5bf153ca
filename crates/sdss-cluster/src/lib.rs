//! Clustering (k-means, affinity propagation, agglomerative, density-based) and clustering metrics.
