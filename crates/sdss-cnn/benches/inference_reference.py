"""Reference side of `cargo bench -p sdss-cnn --bench inference`: TensorFlow-CPU Keras model.predict.

Builds the sdss_CNN architecture in Keras, loads the weights the Rust side wrote (safetensors, parsed by
hand), times model.predict(batch_size=128) to the 128-unit `dense` layer on the same images, and writes the
features so the Rust side can check that both computed the same thing. Prints one JSON line.
Needs tensorflow-cpu (Keras 3) in the interpreter's environment.
"""

import argparse
import json
import os
import resource
import struct
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import numpy as np
    import tensorflow as tf
    import keras

    tensors, meta = read_safetensors(args.weights)
    cfg = json.loads(meta["sdss_cnn_config"])
    h, w, c = cfg["input_height"], cfg["input_width"], cfg["input_channels"]
    images = np.fromfile(args.images, dtype="<f4").reshape(args.n, h, w, c)

    layers = [keras.Input(shape=(h, w, c))]
    for i, conv in enumerate(cfg["conv_layers"]):
        name = "conv2d" if i == 0 else f"conv2d_{i}"
        layers.append(keras.layers.Conv2D(conv["filters"], tuple(conv["kernel_size"]), activation="relu", name=name))
        if conv["max_pool"]:
            p = conv["max_pool"]
            layers.append(keras.layers.MaxPooling2D((p, p)))
        layers.append(keras.layers.Dropout(0.25))
    layers += [keras.layers.Flatten(), keras.layers.Dense(cfg["dense_units"], activation="relu", name="dense")]
    model = keras.Sequential(layers)
    for layer in model.layers:
        if layer.name in [l.split(".")[0] for l in tensors]:
            layer.set_weights([tensors[layer.name + ".kernel"], tensors[layer.name + ".bias"]])

    model.predict(images[: args.batch], batch_size=args.batch, verbose=0)  # warm-up (graph tracing)
    best = None
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        feats = model.predict(images, batch_size=args.batch, verbose=0)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if best is None or wall < best[0]:
            best = (wall, cpu)
    np.asarray(feats, dtype="<f4").tofile(args.out)
    print(
        json.dumps(
            {
                "images": args.n,
                "wall_s": best[0],
                "cpu_s": best[1],
                "images_per_s": args.n / best[0],
                "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "tensorflow": tf.__version__,
                "threads_intra": tf.config.threading.get_intra_op_parallelism_threads(),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
