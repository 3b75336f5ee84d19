#!/usr/bin/env python3
"""The Python peer of `ddpipe ingest --set data.form=sharded` (issue 19, "ingest throughput"):
an image folder written as WebDataset tar shards into a store, the plain Python way.

    /usr/bin/python3 bench/ingest_peer.py --data-path DIR --store DIR_OR_s3://bucket/prefix \
        [--name NAME] [--shard-mb 64] [--procs 2] [--test-fraction 0.02] [--seed 42]

The same work as ddpipe's ingest (docs/datasets.md), in the same layout:
1. list DIR/<class>/* (classes and files sorted, hidden files skipped) with each file's size;
   a seeded --test-fraction of each class is the test split;
2. cut each split, in order, into shards of about --shard-mb MiB by the listed sizes (tar
   header and padding counted);
3. a multiprocessing.Pool of --procs processes (ddpipe's ingest workers: the cores, at most 8)
   builds each shard in memory with `tarfile` (`<split>-<position>.jpg|png` with the file's bytes
   as read, after checking its magic bytes, and `<key>.cls` with the class index; mode 0644,
   mtime 0), hashes it with SHA-256 and writes it to datasets/<name>/shards/<sha256>.tar: in a
   local folder through a temporary file and a rename, in S3 with boto3's managed upload
   (`upload_fileobj`, default TransferConfig) with the AWS_* environment (endpoint from
   AWS_ENDPOINT_URL_S3);
4. index.json (every shard's key, digest, size, sample count) under datasets/<name>/<digest>/.
Prints one JSON line: images, shards, bytes, seconds (listing to index), images_per_second.
"""
import argparse
import hashlib
import io
import json
import os
import random
import tarfile
import time
from multiprocessing import Pool

STORE = None  # the store of this process: a folder path or (boto3 client, bucket, prefix)


def open_store(url):
    if not url.startswith("s3://"):
        return url
    import boto3
    bucket, _, prefix = url[len("s3://"):].partition("/")
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"],
                          region_name=os.environ.get("AWS_REGION", "us-east-1"))
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.ClientError:
        pass  # it exists (or another process created it first)
    return client, bucket, prefix.strip("/")


def put(key, data):
    if isinstance(STORE, str):
        path = os.path.join(STORE, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    else:
        client, bucket, prefix = STORE
        client.upload_fileobj(io.BytesIO(data), bucket, f"{prefix}/{key}" if prefix else key)


def init_worker(url):
    global STORE
    STORE = open_store(url)


def member_bytes(size):
    return 512 + (size + 511) // 512 * 512


def add_member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def build_shard(job):
    """Builds, hashes and stores one shard; returns its index entry."""
    name, split, first, samples = job
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i, (path, label) in enumerate(samples):
            with open(path, "rb") as f:
                data = f.read()
            if data[:3] == b"\xff\xd8\xff":
                ext = "jpg"
            elif data[:8] == b"\x89PNG\r\n\x1a\n":
                ext = "png"
            else:
                raise ValueError(f"{path}: neither JPEG nor PNG")
            key = f"{split}-{first + i:010d}"
            add_member(tar, f"{key}.{ext}", data)
            add_member(tar, f"{key}.cls", str(label).encode())
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    key = f"datasets/{name}/shards/{sha}.tar"
    put(key, data)
    return {"key": key, "sha256": sha, "bytes": len(data), "samples": len(samples),
            "first_key": f"{split}-{first:010d}"}


def list_folder(root, test_fraction, seed):
    classes = sorted(d for d in os.listdir(root)
                     if not d.startswith(".") and os.path.isdir(os.path.join(root, d)))
    train, test = [], []
    for label, c in enumerate(classes):
        files = sorted(f for f in os.listdir(os.path.join(root, c)) if not f.startswith("."))
        entries = [(os.path.join(root, c, f), label) for f in files]
        picked = set(random.Random(seed + label).sample(range(len(entries)),
                                                         round(test_fraction * len(entries))))
        for i, e in enumerate(entries):
            (test if i in picked else train).append((e[0], label, os.stat(e[0]).st_size))
    return classes, train, test


def plan(name, split, entries, target):
    jobs, begin, size = [], 0, 0
    for i, (_path, _label, nbytes) in enumerate(entries):
        sample = member_bytes(nbytes) + member_bytes(10)
        if i > begin and size + sample > target:
            jobs.append((name, split, begin, [e[:2] for e in entries[begin:i]]))
            begin, size = i, 0
        size += sample
    if begin < len(entries):
        jobs.append((name, split, begin, [e[:2] for e in entries[begin:]]))
    return jobs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-path", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--name", default="peer")
    ap.add_argument("--shard-mb", type=int, default=64)
    ap.add_argument("--procs", type=int, default=min(os.cpu_count(), 8))
    ap.add_argument("--test-fraction", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    start = time.monotonic()
    classes, train, test = list_folder(args.data_path, args.test_fraction, args.seed)
    target = args.shard_mb << 20
    jobs = plan(args.name, "train", train, target) + plan(args.name, "test", test, target)
    with Pool(args.procs, initializer=init_worker, initargs=(args.store,)) as pool:
        shards = pool.map(build_shard, jobs, chunksize=1)
    n_train = sum(1 for j in jobs if j[1] == "train")
    index = {"format": "webdataset", "version": 1, "name": args.name, "classes": classes,
             "shard_mb": args.shard_mb,
             "splits": {"train": {"samples": len(train), "shards": shards[:n_train]},
                        "test": {"samples": len(test), "shards": shards[n_train:]}}}
    body = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(body).hexdigest()
    init_worker(args.store)
    put(f"datasets/{args.name}/{digest}/index.json", body)
    put(f"datasets/{args.name}/latest", (digest + "\n").encode())
    seconds = time.monotonic() - start
    images = len(train) + len(test)
    print(json.dumps({"images": images, "shards": len(shards),
                      "bytes": sum(s["bytes"] for s in shards), "seconds": round(seconds, 3),
                      "images_per_second": round(images / seconds, 1)}))


if __name__ == "__main__":
    main()
