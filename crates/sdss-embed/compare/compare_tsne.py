"""UMAP (this crate) against scikit-learn's t-SNE on the same inputs, side by side in one run.

Development tool only (never run by `cargo test`). For each data set it writes the input as .npy,
maps it with `cargo run --release -p sdss-embed --example embed_npy` and with
`sklearn.manifold.TSNE(init="pca", perplexity=30, random_state=0)`, times both, and scores both maps
with the same code:

- 10-NN preservation: the mean fraction of each point's 10 nearest input neighbours that are among
  its 10 nearest map neighbours;
- trustworthiness (k = 10, scikit-learn);
- where the truth is known, the adjusted Rand index of k-means (k = true number of groups) on the map.

Usage (from the repository root, with a venv holding numpy, scipy and scikit-learn):
    python crates/sdss-embed/compare/compare_tsne.py [--real ../shared/data/sdss-cnn-features/CNN-128_PCA-20_features.npy]
Prints a Markdown table and writes compare_tsne.json beside the working files (default /tmp/embed-compare).
"""

import argparse
import json
import os
import subprocess
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.manifold import TSNE, trustworthiness
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors


def knn_preservation(x, y, k=10):
    a = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    b = NearestNeighbors(n_neighbors=k + 1).fit(y).kneighbors(y, return_distance=False)[:, 1:]
    return float(np.mean([len(set(p) & set(q)) / k for p, q in zip(a, b)]))


def score(x, y, truth):
    row = {
        "knn10": knn_preservation(x, y),
        "trustworthiness": float(trustworthiness(x, y, n_neighbors=10)),
    }
    if truth is not None:
        k = len(np.unique(truth))
        labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(y)
        row["kmeans_ari"] = float(adjusted_rand_score(truth, labels))
    return row


def ours(x, work, name):
    src = os.path.join(work, f"{name}.npy")
    dst = os.path.join(work, f"{name}_umap.npy")
    np.save(src, x.astype(np.float32))
    out = subprocess.run(
        ["cargo", "run", "--quiet", "--release", "-p", "sdss-embed", "--example", "embed_npy", "--", src, dst],
        check=True, capture_output=True, text=True,
    )
    return np.load(dst), json.loads(out.stdout)["seconds"]


def tsne(x):
    t = time.perf_counter()
    y = TSNE(n_components=2, perplexity=30.0, init="pca", random_state=0).fit_transform(x)
    return y, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--real", help="(N, D) float32 features of real galaxies")
    ap.add_argument("--work", default="/tmp/embed-compare")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    # Build the example first, so its compile time is not counted as mapping time.
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "sdss-embed", "--example", "embed_npy"], check=True)

    sets = []
    for std in (2.0, 4.0):
        x, truth = make_blobs(n_samples=6437, n_features=20, centers=10, cluster_std=std, random_state=1)
        sets.append((f"blobs 6437x20, 10 centres, std {std}", f"blobs{std:g}", x, truth))
    if args.real:
        x = np.load(args.real).astype(np.float32)
        sets.append((f"real galaxies {x.shape[0]}x{x.shape[1]} (original CNN-128 PCA-20)", "real", x, None))

    results = []
    for title, name, x, truth in sets:
        y_u, s_u = ours(x, args.work, name)
        y_t, s_t = tsne(x)
        for method, y, secs in (("UMAP (sdss-embed)", y_u, s_u), ("t-SNE (scikit-learn)", y_t, s_t)):
            row = {"data": title, "method": method, "seconds": secs, **score(x, y, truth)}
            results.append(row)
            print(json.dumps(row), flush=True)

    with open(os.path.join(args.work, "compare_tsne.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("\n| data | method | seconds | 10-NN preservation | trustworthiness | k-means ARI |")
    print("|---|---|---|---|---|---|")
    for r in results:
        ari = f"{r['kmeans_ari']:.3f}" if "kmeans_ari" in r else "–"
        print(f"| {r['data']} | {r['method']} | {r['seconds']:.1f} | {r['knn10']:.3f} | {r['trustworthiness']:.3f} | {ari} |")


if __name__ == "__main__":
    main()
