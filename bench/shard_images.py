#!/usr/bin/env python3
"""Generates an ImageNet-like image folder for the issue-19 benchmarks (bench/shard_stream.py).

    /usr/bin/python3 bench/shard_images.py --out /tmp/b19/images --images 32000 --classes 10

Writes OUT/<class>/<n>.jpg for n in [--start, --images): JPEGs (quality 90) of random sides
between 250 and 500 px, each a bicubic upscale of a small random colour grid (smooth shapes and
gradients) plus per-pixel and per-channel noise, so that they compress like photos (26-131 KB each, 67 KB on average over
44,000) rather than like flat synthetic images. Seeded: the same arguments give the same files. Runs
--procs processes (default 2). Prints one JSON line: images, bytes, seconds.
"""
import argparse
import io
import json
import os
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image


def make_jpeg(seed):
    """The JPEG bytes of image number `seed`."""
    rng = np.random.default_rng(seed)
    w, h = (int(v) for v in rng.integers(250, 501, 2))
    grid = rng.integers(0, 256, (int(rng.integers(6, 20)), int(rng.integers(6, 20)), 3),
                        dtype=np.uint8)
    a = np.asarray(Image.fromarray(grid).resize((w, h), Image.BICUBIC), dtype=np.int16)
    a = a + rng.normal(0, rng.uniform(8, 18), (h, w, 1)).astype(np.int16)
    a = a + rng.normal(0, 6, a.shape).astype(np.int16)
    out = io.BytesIO()
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def write_one(job):
    out, classes, i = job
    path = os.path.join(out, f"c{i % classes:03d}", f"{i:07d}.jpg")
    data = make_jpeg(i)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--images", type=int, required=True)
    ap.add_argument("--start", type=int, default=0, help="first image number (to extend a folder)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--procs", type=int, default=2)
    args = ap.parse_args()
    for c in range(args.classes):
        os.makedirs(os.path.join(args.out, f"c{c:03d}"), exist_ok=True)
    start = time.time()
    jobs = [(args.out, args.classes, i) for i in range(args.start, args.images)]
    with Pool(args.procs) as pool:
        sizes = pool.map(write_one, jobs, chunksize=64)
    print(json.dumps({"images": len(sizes), "bytes": sum(sizes),
                      "seconds": round(time.time() - start, 1)}))


if __name__ == "__main__":
    main()
