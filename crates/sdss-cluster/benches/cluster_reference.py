#!/usr/bin/env python3
"""Python reference side of `cargo bench -p sdss-cluster` (dev-only).

Usage: cluster_reference.py CASE FEATURES.npy REPS
Times one case on the real 6437 x 20 SDSS CNN features with scikit-learn / SciPy, best of
REPS runs, and prints one JSON line: {"case", "seconds", "peak_kib", "detail"}.
Peak memory is this whole process's ru_maxrss (interpreter and imports included), as the Rust
side reports its whole process's VmHWM.
"""
import json
import resource
import sys
import time

import numpy as np


def run(case, x, labels):
    if case == "affinity-propagation":
        from sklearn.cluster import AffinityPropagation
        m = AffinityPropagation(damping=0.8, random_state=0).fit(x)
        return f"{len(m.cluster_centers_indices_)} clusters, {m.n_iter_} iterations"
    if case == "ward":
        from scipy.cluster.hierarchy import fcluster, linkage
        z = linkage(x, "ward")
        lab = fcluster(z, 32, "maxclust")
        return f"{lab.max()} clusters"
    if case == "kmeans":
        from sklearn.cluster import KMeans
        m = KMeans(n_clusters=10, n_init=10, random_state=0).fit(x)
        return f"inertia {m.inertia_:.4f}"
    if case == "silhouette":
        from sklearn.metrics import silhouette_score
        return f"silhouette {silhouette_score(x, labels):.6f}"
    if case == "hdbscan":
        from sklearn.cluster import HDBSCAN
        m = HDBSCAN(min_cluster_size=5).fit(x)
        return f"{m.labels_.max() + 1} clusters, {(m.labels_ < 0).sum()} noise"
    raise SystemExit(f"unknown case {case}")


def main():
    case, path, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    x = np.load(path)
    labels = np.load(path.replace("CNN-128_PCA-20_features.npy", "KMeans-10_CNN-128_PCA-20.npy"))
    # Import outside the timed region, as the Rust side is compiled ahead of time.
    import scipy.cluster.hierarchy  # noqa: F401
    import sklearn.cluster  # noqa: F401
    import sklearn.metrics  # noqa: F401
    best = float("inf")
    detail = ""
    for _ in range(reps):
        t = time.perf_counter()
        detail = run(case, x, labels)
        best = min(best, time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"case": case, "seconds": best, "peak_kib": peak, "detail": detail}))


if __name__ == "__main__":
    main()
