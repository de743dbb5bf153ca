"""Dev-only: the TensorFlow side of the training benchmark (tf_keras, i.e. Keras 2 like sdss_CNN).

    python crates/sdss-train/benches/train_reference.py --arch sdss-cnn|small --images X.npy --targets y.npy \\
        [--batch-size 32] --steps N [--warmup 3] [--augment] [--threads T] [--inter-threads 1]

Builds the architecture, compiles it with Adam(1e-3) and MSE (as sdss_CNN did) and trains with `model.fit`
on batches of `--batch-size` images from X (N, 80, 80, 3) float32 and y (N,) or (N, 1):

  sdss-cnn  the original: Conv2D(64,6) Dropout(.5); Conv2D(96,5) MaxPool(2) Dropout(.25);
            Conv2D(128,2) MaxPool(2) Dropout(.25); Conv2D(192,3) Dropout(.25); Conv2D(192,2) Dropout(.25);
            Flatten; Dense(128, relu) Dropout(.25); Dense(64); Dense(1)          (5,404,321 parameters)
  small     Conv2D(8,3) MaxPool(2); Conv2D(16,3) MaxPool(2); Conv2D(32,3) MaxPool(2); Conv2D(32,3);
            Flatten; Dense(128, relu); Dense(64); Dense(1); no dropout

Without --augment the batches come from a `tf.data` pipeline over the arrays (repeat, batch, prefetch 1).
With --augment they come from `ImageDataGenerator(rotation_range=45, zoom_range=0.25, horizontal_flip=True,
vertical_flip=True, width_shift_range=0.05, height_shift_range=0.05).flow(X, y, batch_size)` as in sdss_CNN
(looped, so N may exceed one pass over X). With fit's defaults (workers=1, no multiprocessing) tf_keras wraps
the generator in `tf.data.Dataset.from_generator(...).prefetch(1).prefetch(AUTOTUNE)`: augmentation (Python +
scipy, holding the GIL) runs in a tf.data thread and overlaps training by a batch or two, as it did for the
original; a short timed run may start with a couple of batches augmented during warm-up. X is cut to a multiple
of the batch size so that every step sees exactly `--batch-size` images.

One `fit` call runs W + N steps (`steps_per_epoch`, one epoch). The first W (default 3, at least 1) are warm-up
and include tracing the train function; a callback starts the clock (time.perf_counter) at the beginning of step
W and stops it at the end of step W + N - 1, so exactly N * batch images are timed, including their input
pipeline. The result is one JSON line on stdout; TensorFlow's logs go to stderr:

  {"arch", "images_per_s", "seconds", "steps", "batch_size", "threads", "inter_threads", "tf_version",
   "augment", "parameters", "warmup", "step_seconds_median"}

Threads: `--threads` sets TF's intra-op pool (default: all cores, os.cpu_count()); `--inter-threads` the
inter-op pool (default 1; 0 = TF's own default, one per core). A Sequential CNN's graph is a chain, so inter-op
parallelism can only overlap independent ops such as a layer's two gradient products (w.r.t. weights and
inputs); with every core already in the intra-op pool more inter-op threads mostly oversubscribe them, so the
default is 1, with the intra-op pool holding all the cores. On the shared 2-core development machine, under a
load of 3-4 from other builds, inter 1, 2 and 0 were within run-to-run noise of each other; measure with
`--inter-threads` on the benchmark machine if it matters.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SDSS_CNN_PARAMETERS = 5_404_321


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=["sdss-cnn", "small"], required=True)
    p.add_argument("--images", required=True, help=".npy, (N, H, W, 3) float32")
    p.add_argument("--targets", required=True, help=".npy, (N,) or (N, 1)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, required=True, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (>= 1; the first one traces)")
    p.add_argument("--augment", action="store_true", help="feed ImageDataGenerator(...).flow as sdss_CNN did")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (default: all cores)")
    p.add_argument("--inter-threads", type=int, default=1, help="inter-op threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.steps < 1 or a.batch_size < 1:
        p.error("--steps and --batch-size must be positive")
    a.warmup = max(a.warmup, 1)
    a.threads = a.threads or os.cpu_count() or 1
    return a


def build(K, arch, input_shape):
    L = K.layers
    if arch == "sdss-cnn":
        layers = [
            L.Conv2D(64, (6, 6), activation="relu", name="conv2d"),
            L.Dropout(0.5, name="dropout"),
            L.Conv2D(96, (5, 5), activation="relu", name="conv2d_1"),
            L.MaxPooling2D((2, 2), name="max_pooling2d"),
            L.Dropout(0.25, name="dropout_1"),
            L.Conv2D(128, (2, 2), activation="relu", name="conv2d_2"),
            L.MaxPooling2D((2, 2), name="max_pooling2d_1"),
            L.Dropout(0.25, name="dropout_2"),
            L.Conv2D(192, (3, 3), activation="relu", name="conv2d_3"),
            L.Dropout(0.25, name="dropout_3"),
            L.Conv2D(192, (2, 2), activation="relu", name="conv2d_4"),
            L.Dropout(0.25, name="dropout_4"),
            L.Flatten(name="flatten"),
            L.Dense(128, activation="relu", name="dense"),
            L.Dropout(0.25, name="dropout_5"),
            L.Dense(64, name="dense_1"),
            L.Dense(1, name="dense_2"),
        ]
    else:
        layers = [
            L.Conv2D(8, (3, 3), activation="relu", name="conv2d"),
            L.MaxPooling2D((2, 2), name="max_pooling2d"),
            L.Conv2D(16, (3, 3), activation="relu", name="conv2d_1"),
            L.MaxPooling2D((2, 2), name="max_pooling2d_1"),
            L.Conv2D(32, (3, 3), activation="relu", name="conv2d_2"),
            L.MaxPooling2D((2, 2), name="max_pooling2d_2"),
            L.Conv2D(32, (3, 3), activation="relu", name="conv2d_3"),
            L.Flatten(name="flatten"),
            L.Dense(128, activation="relu", name="dense"),
            L.Dense(64, name="dense_1"),
            L.Dense(1, name="dense_2"),
        ]
    return K.Sequential([K.Input(shape=input_shape)] + layers, name="sequential")


def main():
    a = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.inter_threads)
    import tf_keras

    x = np.load(a.images).astype("float32", copy=False)
    y = np.load(a.targets).astype("float32", copy=False).reshape(len(x), -1)
    n = len(x) // a.batch_size * a.batch_size
    if n == 0:
        sys.exit(f"need at least --batch-size ({a.batch_size}) images, got {len(x)}")
    x, y = x[:n], y[:n]

    tf_keras.utils.set_random_seed(a.seed)
    model = build(tf_keras, a.arch, x.shape[1:])
    params = model.count_params()
    if a.arch == "sdss-cnn":
        assert params == SDSS_CNN_PARAMETERS, params
    print(f"{a.arch}: {params} parameters; {n} images {x.shape[1:]}; intra {a.threads}, inter {a.inter_threads}",
          file=sys.stderr)
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=1e-3), loss="mse")

    if a.augment:
        from tf_keras.preprocessing.image import ImageDataGenerator

        gen = ImageDataGenerator(
            rotation_range=45,
            zoom_range=0.25,
            horizontal_flip=True,
            vertical_flip=True,
            width_shift_range=0.05,
            height_shift_range=0.05,
        )
        flow = gen.flow(x, y, batch_size=a.batch_size, shuffle=True, seed=a.seed)

        def forever():  # a plain generator, so that fit may run more steps than one pass over X
            while True:
                yield next(flow)

        data = forever()
    else:
        data = (
            tf.data.Dataset.from_tensor_slices((x, y))
            .repeat()
            .batch(a.batch_size, drop_remainder=True)
            .prefetch(1)
        )

    first, last = a.warmup, a.warmup + a.steps - 1

    class Clock(tf_keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.start = self.stop = None
            self.begin = None
            self.steps = []

        def on_train_batch_begin(self, batch, logs=None):
            t = time.perf_counter()
            self.begin = t
            if batch == first:
                self.start = t

        def on_train_batch_end(self, batch, logs=None):
            t = time.perf_counter()
            if first <= batch <= last:
                self.steps.append(t - self.begin)
            if batch == last:
                self.stop = t

    clock = Clock()
    model.fit(data, epochs=1, steps_per_epoch=a.warmup + a.steps, verbose=0, callbacks=[clock], shuffle=False)
    seconds = clock.stop - clock.start
    print(
        json.dumps(
            {
                "arch": a.arch,
                "images_per_s": a.steps * a.batch_size / seconds,
                "seconds": seconds,
                "steps": a.steps,
                "batch_size": a.batch_size,
                "threads": a.threads,
                "inter_threads": a.inter_threads,
                "tf_version": tf.__version__,
                "augment": a.augment,
                "parameters": params,
                "warmup": a.warmup,
                "step_seconds_median": statistics.median(clock.steps),
            }
        )
    )


if __name__ == "__main__":
    main()
