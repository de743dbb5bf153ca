#!/bin/sh
# The pixel path at scale: N images (default 100,000: copies, as hard links, of the 6,437 real SDSS
# PNGs in ../shared under new names), `run --features pixels --pca 50 --method kmeans:k=10`, against
# Pillow + scikit-learn IncrementalPCA(50) + MiniBatchKMeans(10) over the same files, side by side
# in one run, each under /usr/bin/time (elapsed seconds, peak RSS). The pixel matrix alone is
# N x 19200 x 4 bytes (7.7 GB at 100,000); the goal is a peak of at most 2 GB.
#
#   cargo build -p driver        # the profile the tests build: numeric crates at opt-level 3
#   SDSS_BENCH_PYTHON=/work/venv/bin/python crates/driver/benches/images_scale.sh 100000
set -eu
py=${SDSS_BENCH_PYTHON:-python3}
bin=${SDSS_CLUSTERING:-target/debug/sdss-clustering}
src=${SDSS_IMAGES:-../shared/data/sdss-6437/images}
here=$(dirname "$0")
n=${1:-100000}
work=$(mktemp -d "${TMPDIR:-/tmp}/sdss-images-scale.XXXXXX")
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/stage.sh"
mkdir "$work/images"
"$py" - "$src" "$work/images" "$n" <<'PY'
import os, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = sorted(f for f in os.listdir(src) if f.endswith(".png"))
for i in range(n):
    a, b = os.path.join(src, files[i % len(files)]), os.path.join(dst, f"g{i:07d}.png")
    try:
        os.link(a, b)
    except OSError:
        import shutil; shutil.copyfile(a, b)
PY
echo "== $n images ($(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg))"
stage "ours   run (pixels, PCA 50, k-means 10, report)" "$bin" --quiet run --images "$work/images" \
    --features pixels --pca 50 --method kmeans:k=10 --out "$work/ours"
stage "python Pillow + IncrementalPCA(50) + MiniBatchKMeans(10)" "$py" "$here/images_scale_reference.py" \
    "$work/images" "$work/python"
"$py" - "$work" <<'PY'
import json, sys
import numpy as np
from sklearn.metrics import adjusted_rand_score
w = sys.argv[1]
ours = json.load(open(f"{w}/ours/pca.json"))
run = json.load(open(f"{w}/ours/run.json"))
ref = json.load(open(f"{w}/python/summary.json"))
print(f"  ours:   PCA {ours['total_explained_variance_ratio']:.4f} of the variance (streamed: {ours.get('streamed')}), "
      f"stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in run["seconds"].items() if isinstance(v, float)))
print(f"  python: PCA {ref['explained_variance_ratio']:.4f} of the variance, stages (s): " +
      ", ".join(f"{k} {v:.1f}" for k, v in ref["seconds"].items()))
a = np.load(f"{w}/ours/labels_kmeans.npy"); b = np.load(f"{w}/python/labels.npy")
print(f"  k-means agreement, ours vs python: ARI {adjusted_rand_score(a, b):.3f}")
PY
