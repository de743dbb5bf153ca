"""The Python side of images_scale.sh: the pixel path the way a scikit-learn user runs it on more
images than fit in memory. Pillow reads each 80x80 PNG (/ 255, float32, C order as ours);
IncrementalPCA(50) is fitted batch by batch in one pass over the files and applied in a second;
MiniBatchKMeans(10) clusters the 50-d coordinates. Writes labels.npy and summary.json to OUT.

    python images_scale_reference.py IMAGES_DIR OUT
"""
import json
import os
import sys
import time

import numpy as np
from PIL import Image
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import IncrementalPCA

# IncrementalPCA costs (50 + batch)^2 x 19200 per batch, so smaller batches are faster overall.
BATCH = 256


def batches(files):
    for start in range(0, len(files), BATCH):
        yield np.stack([
            np.asarray(Image.open(f).convert("RGB").resize((80, 80)), dtype=np.float32).reshape(-1) / 255.0
            for f in files[start:start + BATCH]
        ])


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    files = sorted(os.path.join(src, f) for f in os.listdir(src) if f.endswith(".png"))
    seconds = {}
    t = time.time()
    pca = IncrementalPCA(n_components=50)
    for x in batches(files):
        pca.partial_fit(x)
    seconds["pca_fit"] = time.time() - t
    t = time.time()
    reduced = np.concatenate([pca.transform(x) for x in batches(files)]).astype(np.float32)
    seconds["pca_transform"] = time.time() - t
    t = time.time()
    labels = MiniBatchKMeans(n_clusters=10, random_state=0, n_init=3).fit_predict(reduced)
    seconds["kmeans"] = time.time() - t
    np.save(os.path.join(out, "labels.npy"), labels.astype(np.int64))
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({
            "explained_variance_ratio": float(pca.explained_variance_ratio_.sum()),
            "seconds": seconds,
        }, f)


if __name__ == "__main__":
    main()
