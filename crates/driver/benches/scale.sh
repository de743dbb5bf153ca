#!/bin/sh
# Scale: time and peak memory of each stage against N, on synthetic features with known groups
# (N x 128, 10 Gaussian blobs, scikit-learn make_blobs seed 0), each stage in its own process
# under /usr/bin/time (elapsed seconds, peak RSS). Our side: the `pca` and `cluster` subcommands of
# the release binary (PCA 20, k-means 10, affinity propagation 0.8 and Ward 32 in their automatic
# form: exact up to 20,000 galaxies, on k-means micro-clusters above). Python side, same inputs, same
# run: scikit-learn PCA(20) and KMeans(10) (it has no scalable affinity propagation or Ward).
# ARI against the known groups for every clustering. Then the 10-nearest-neighbour graph of the PCA
# output with the inverted-file index (crates/sdss-neighbors/examples/ivf_scale.rs): build time, the
# index's memory against the data's, one-query latency, recall@10 against exact search on 200 rows.
#
#   cargo build --release -p driver && cargo build --release -p sdss-neighbors --example ivf_scale
#   SDSS_BENCH_PYTHON=/work/venv/bin/python crates/driver/benches/scale.sh 10000 100000 1000000
set -eu
py=${SDSS_BENCH_PYTHON:-python3}
bin=${SDSS_CLUSTERING:-target/release/sdss-clustering}
ivf=${SDSS_IVF_SCALE:-$(dirname "$bin")/examples/ivf_scale}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/stage.sh"
ari() {
    "$py" -c "import numpy as np, sys; from sklearn.metrics import adjusted_rand_score as a; l = np.load(sys.argv[2]); print(f'  {len(np.unique(l[l >= 0]))} clusters, ARI vs known groups {a(np.load(sys.argv[1]), l):.3f}')" "$work/truth.npy" "$1"
}
for n in "$@"; do
    echo "== N = $n"
    "$py" -c "
import numpy as np, sys
from sklearn.datasets import make_blobs
x, y = make_blobs(int(sys.argv[1]), 128, centers=10, cluster_std=4.0, random_state=0)
np.save(sys.argv[2] + '/x.npy', x.astype(np.float32)); np.save(sys.argv[2] + '/truth.npy', y.astype(np.int64))
" "$n" "$work"
    stage "ours   PCA 20" "$bin" --quiet pca --input "$work/x.npy" --components 20 --out "$work/z.npy"
    stage "ours   k-means 10" "$bin" --quiet cluster --input "$work/z.npy" --method kmeans --k 10 --out "$work/km.npy"
    ari "$work/km.npy"
    stage "ours   affinity propagation 0.8" "$bin" --quiet cluster --input "$work/z.npy" --method affinity --damping 0.8 --out "$work/ap.npy" --summary "$work/ap.json"
    ari "$work/ap.npy"
    stage "ours   Ward 32" "$bin" --quiet cluster --input "$work/z.npy" --method agglomerative --k 32 --out "$work/ward.npy"
    ari "$work/ward.npy"
    if /usr/bin/time -f "%e %M" -o "$work/time" "$ivf" "$work/z.npy" >"$work/ivf.txt" 2>"$work/err"; then
        set -- $(cat "$work/time")
        printf 'ours   10-NN graph (inverted file) %s s %d MiB\n' "$1" $(($2 / 1024))
        sed 's/^/  /' "$work/ivf.txt"
    else
        echo "ours   10-NN graph FAILED: $(tail -n 3 "$work/err")"
    fi
    stage "python PCA 20" "$py" -c "
import numpy as np, sys
from sklearn.decomposition import PCA
np.save(sys.argv[2], PCA(20, random_state=0).fit_transform(np.load(sys.argv[1])))" "$work/x.npy" "$work/zp.npy"
    stage "python k-means 10" "$py" -c "
import numpy as np, sys
from sklearn.cluster import KMeans
np.save(sys.argv[2], KMeans(10, n_init=10, random_state=0).fit_predict(np.load(sys.argv[1])).astype(np.int64))" "$work/zp.npy" "$work/kmp.npy"
    ari "$work/kmp.npy"
done
