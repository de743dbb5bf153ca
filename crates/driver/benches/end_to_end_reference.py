"""Reference side of `cargo bench -p driver --bench end_to_end`: the Python pipeline, end to end.

The same steps the `sdss-clustering run` command does, the way the original sdss_clustering project did them:
load the PNGs with Pillow into an (N, 80, 80, 3) float32 array in [0, 1]; features are either the raw pixels
(N, 19200) or the sdss_CNN `Flatten` output from Keras `model.predict(batch_size=128)` (TensorFlow CPU); then
scikit-learn PCA with the default solver, then each clustering method; every label vector is written with
`np.save` as `labels_<method>.npy` (int64) into --out. No galleries or plots are drawn (the Rust side draws
them; its report time is reported separately).

The CNN weights are read from the `.safetensors` file the Rust side wrote (parsed by hand), so both sides
run the same network with the same random weights and their clusterings can be compared.

Prints one JSON line with per-stage wall times, cluster counts and the explained variance.
"""

import argparse
import json
import os
import resource
import struct
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

T_START = time.perf_counter()


def read_safetensors(path):
    import numpy as np

    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"])
    return out, meta


def load_images(folder):
    import numpy as np
    from PIL import Image

    names = sorted(f for f in os.listdir(folder) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    x = np.empty((len(names), 80, 80, 3), dtype=np.float32)
    for i, name in enumerate(names):
        with Image.open(os.path.join(folder, name)) as im:
            im = im.convert("RGB")
            if im.size != (80, 80):
                im = im.resize((80, 80), Image.LANCZOS)
            x[i] = np.asarray(im, dtype=np.float32)
    x /= 255.0
    return [os.path.splitext(n)[0] for n in names], x


def cnn_flatten(images, weights_path):
    import keras

    tensors, meta = read_safetensors(weights_path)
    cfg = json.loads(meta["sdss_cnn_config"])
    h, w, c = cfg["input_height"], cfg["input_width"], cfg["input_channels"]
    layers = [keras.Input(shape=(h, w, c))]
    for i, conv in enumerate(cfg["conv_layers"]):
        name = "conv2d" if i == 0 else f"conv2d_{i}"
        layers.append(keras.layers.Conv2D(conv["filters"], tuple(conv["kernel_size"]), activation="relu", name=name))
        if conv["max_pool"]:
            p = conv["max_pool"]
            layers.append(keras.layers.MaxPooling2D((p, p)))
        layers.append(keras.layers.Dropout(0.25))
    layers.append(keras.layers.Flatten(name="flatten"))
    model = keras.Sequential(layers)
    for layer in model.layers:
        if layer.name + ".kernel" in tensors:
            layer.set_weights([tensors[layer.name + ".kernel"], tensors[layer.name + ".bias"]])
    return model.predict(images, batch_size=128, verbose=0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True)
    ap.add_argument("--features", choices=["pixels", "cnn"], required=True)
    ap.add_argument("--weights")
    ap.add_argument("--pca", type=int, required=True)
    ap.add_argument("--method", action="append", required=True, help="kmeans:K, affinity:DAMPING or ward:K")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import numpy as np
    import sklearn
    from sklearn.cluster import AffinityPropagation, AgglomerativeClustering, KMeans
    from sklearn.decomposition import PCA

    stages = {"imports": time.perf_counter() - T_START}
    t = time.perf_counter()
    ids, images = load_images(args.images)
    stages["load_images"] = time.perf_counter() - t

    t = time.perf_counter()
    if args.features == "pixels":
        features = images.reshape(len(images), -1)
    else:
        features = cnn_flatten(images, args.weights)
        del images
    stages["features"] = time.perf_counter() - t

    t = time.perf_counter()
    pca = PCA(n_components=args.pca)
    reduced = pca.fit_transform(features)
    stages["pca"] = time.perf_counter() - t
    del features

    clusters = {}
    for spec in args.method:
        name, value = spec.split(":")
        if name == "kmeans":
            model = KMeans(n_clusters=int(value), n_init=10)
        elif name == "affinity":
            model = AffinityPropagation(damping=float(value), random_state=0)
        elif name == "ward":
            model = AgglomerativeClustering(n_clusters=int(value), linkage="ward")
        else:
            raise SystemExit(f"unknown method {spec}")
        t = time.perf_counter()
        labels = model.fit_predict(reduced)
        stages[name] = time.perf_counter() - t
        np.save(os.path.join(args.out, f"labels_{name}.npy"), labels.astype(np.int64))
        clusters[name] = int(len(set(labels.tolist()) - {-1}))

    with open(os.path.join(args.out, "ids.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")
    stages["total_in_process"] = time.perf_counter() - T_START
    info = {
        "galaxies": len(ids),
        "seconds": stages,
        "clusters": clusters,
        "pca_solver": pca._fit_svd_solver,
        "pca_explained_variance": float(pca.explained_variance_ratio_.sum()),
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
    }
    if args.features == "cnn":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    print(json.dumps(info))


if __name__ == "__main__":
    sys.exit(main())
