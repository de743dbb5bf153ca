#!/usr/bin/env python3
"""Reference side of `cargo bench -p sdss-pca`: scikit-learn PCA with its default solver.

Usage: pca_reference.py DATA.npy N_COMPONENTS REPEATS
Prints one JSON line: best fit and transform times over REPEATS runs, the solver scikit-learn
chose, the explained variance ratio and the peak resident memory of this process (VmHWM).
"""

import json
import resource
import sys
import time

import numpy as np
from sklearn.decomposition import PCA


def peak_bytes():
    """This process's own peak RSS. VmHWM is per address space and starts afresh at exec;
    ru_maxrss is not: Linux carries the parent's high-water mark across fork/exec, which would
    charge the bench driver's memory to scikit-learn."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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
        "peak_bytes": peak_bytes(),
    }))


if __name__ == "__main__":
    main()
