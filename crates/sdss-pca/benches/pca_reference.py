#!/usr/bin/env python3
"""Reference side of `cargo bench -p sdss-pca`: scikit-learn PCA with its default solver.

Usage: pca_reference.py DATA.npy N_COMPONENTS REPEATS
Prints one JSON line: best fit and transform times over REPEATS runs, the solver scikit-learn
chose, the explained variance ratio and the peak resident memory of this process.
"""

import json
import resource
import sys
import time

import numpy as np
from sklearn.decomposition import PCA


def main():
    path, k, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    x = np.load(path)
    best_fit = best_transform = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        pca = PCA(n_components=k, random_state=0).fit(x)
        t1 = time.perf_counter()
        y = pca.transform(x)
        t2 = time.perf_counter()
        best_fit = min(best_fit, t1 - t0)
        best_transform = min(best_transform, t2 - t1)
        del y
    print(json.dumps({
        "fit_s": best_fit,
        "transform_s": best_transform,
        "solver": pca._fit_svd_solver,
        "ratio": float(np.sum(pca.explained_variance_ratio_, dtype=np.float64)),
        "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    main()
