#!/usr/bin/env python3
"""Reference side of `cargo bench -p sdss-io --bench decode_resize`: the original project's preprocessing.

usage: decode_resize_reference.py IMAGE_DIR REPEATS OUT_NPY

Times `np.asarray(Image.open(p).resize((80, 80))) / 255` over every .jpg of IMAGE_DIR (sorted), in
one Python process, REPEATS times; saves the uint8 output of the last run to OUT_NPY (for the
accuracy comparison) and prints one line: `best_s=<seconds> images=<n> peak_rss_kb=<kB>`.
"""
import resource
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main():
    folder, repeats, out = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    files = sorted(folder.glob("*.jpg"))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        stack = np.empty((len(files), 80, 80, 3), dtype=np.float64)
        for i, p in enumerate(files):
            with Image.open(p) as im:
                stack[i] = np.asarray(im.resize((80, 80))) / 255
        best = min(best, time.perf_counter() - t0)
    np.save(out, np.round(stack * 255).astype(np.uint8))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"best_s={best:.6f} images={len(files)} peak_rss_kb={peak}")


if __name__ == "__main__":
    main()
