#!/usr/bin/env python3
"""Python reference side of `cargo bench -p sdss-neighbors --bench knn` (dev-only).

Usage:
  knn_reference.py graph X.npy ALGORITHM K OUT_IND.npy   all-pairs K-NN graph (each row itself excluded)
  knn_reference.py query X.npy ALGORITHM K ROWS.npy      one-at-a-time queries of the listed rows
Prints one JSON line: {"seconds", "peak_kib", "detail"}. `seconds` is the graph's wall time (fit
included), or the median latency of one query (fit excluded). Peak memory is the whole process's
ru_maxrss, as the Rust side reports its whole process's VmHWM.
"""
import json
import resource
import sys
import time

import numpy as np
from sklearn.neighbors import NearestNeighbors


def main():
    mode, path, algorithm, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    x = np.load(path)
    if mode == "graph":
        t = time.perf_counter()
        nn = NearestNeighbors(n_neighbors=k, algorithm=algorithm).fit(x)
        _, ind = nn.kneighbors()
        seconds = time.perf_counter() - t
        np.save(sys.argv[5], ind.astype(np.int64))
        detail = f"algorithm={algorithm} (ran {nn._fit_method})"
    elif mode == "query":
        rows = np.load(sys.argv[5]).reshape(-1)
        nn = NearestNeighbors(n_neighbors=k + 1, algorithm=algorithm).fit(x)
        times = []
        for r in rows:
            q = x[int(r) : int(r) + 1]
            t = time.perf_counter()
            nn.kneighbors(q)
            times.append(time.perf_counter() - t)
        seconds = float(np.median(times))
        detail = f"algorithm={algorithm} (ran {nn._fit_method}), median of {len(rows)} queries"
    else:
        raise SystemExit(f"unknown mode {mode}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_kib": peak, "detail": detail}))


if __name__ == "__main__":
    main()
