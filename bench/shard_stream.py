#!/usr/bin/env python3
"""Issue 19's figures (BENCHMARKS.md, "Datasets bigger than memory"): streaming a sharded
dataset from the local S3 server (RGW) with bounded memory, the data wait of training from it,
the loader's decode rate per core against PIL + torchvision, and ingest throughput against a
Python peer. Each part writes its raw results as JSON into --out and prints a summary.

Start the S3 server first (the memstore must hold the dataset, up to three copies of it during
`ingest`), and generate the images:

    eval "$(DDPIPE_S3_DIR=/tmp/ddpipe-s3-bench DDPIPE_S3_MEM_MB=8192 scripts/s3-test-server.sh start)"
    /usr/bin/python3 bench/shard_images.py --out /tmp/b19/images --images 32000
    /usr/bin/python3 bench/shard_stream.py decode --reps 4       # ddpipe_decode_bench vs bench/decode_peer.py
    /usr/bin/python3 bench/shard_stream.py ingest --reps 3       # ddpipe ingest vs bench/ingest_peer.py
    /usr/bin/python3 bench/shard_stream.py stream --set train.eval_batch_size=64   # ingest to RGW, one full epoch, RSS
    /usr/bin/python3 bench/shard_stream.py wait --arch resnet-mini --steps 20
    /usr/bin/python3 bench/shard_stream.py wait --arch resnet18 --batch 64 --steps 10
    DDPIPE_S3_DIR=/tmp/ddpipe-s3-bench scripts/s3-test-server.sh stop

Needs build/apps/ddpipe/ddpipe and build/bench/ddpipe_decode_bench
(`scripts/build.sh ddpipe ddpipe_decode_bench`), /usr/bin/python3 with torch, torchvision,
PIL and boto3. Every command it runs is printed (`$ …`) and recorded in the JSON.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"


def s3_env():
    """The AWS_* environment ddpipe and boto3 read, from the S3 test server's exports."""
    need = ["DDPIPE_S3_TEST_ENDPOINT", "DDPIPE_S3_TEST_ACCESS_KEY_ID",
            "DDPIPE_S3_TEST_SECRET_ACCESS_KEY"]
    if any(not os.environ.get(k) for k in need):
        sys.exit("shard_stream: start the S3 test server and eval its exports first")
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID=os.environ["DDPIPE_S3_TEST_ACCESS_KEY_ID"],
               AWS_SECRET_ACCESS_KEY=os.environ["DDPIPE_S3_TEST_SECRET_ACCESS_KEY"],
               AWS_ENDPOINT_URL_S3=os.environ["DDPIPE_S3_TEST_ENDPOINT"],
               AWS_REGION=os.environ.get("DDPIPE_S3_TEST_REGION", "us-east-1"),
               AWS_SESSION_TOKEN="")
    return env


def run(cmd, env=None, capture=True):
    """Runs a shell command; returns (wall seconds, stdout, stderr). Fails loudly."""
    print("$", cmd, flush=True)
    t0 = time.monotonic()
    p = subprocess.run(cmd, shell=True, env=env, text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    seconds = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"shard_stream: failed ({p.returncode}): {cmd}\n{(p.stderr or '')[-3000:]}")
    return seconds, p.stdout or "", p.stderr or ""


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in output")


def load_average():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def save(args, name, data):
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, name)
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
    print("wrote", path)


def delete_s3_prefix(env, url):
    bucket, _, prefix = url[len("s3://"):].partition("/")
    code = ("import boto3,os,sys\n"
            "c=boto3.client('s3',endpoint_url=os.environ['AWS_ENDPOINT_URL_S3'])\n"
            "b,p=sys.argv[1],sys.argv[2]\n"
            "for page in c.get_paginator('list_objects_v2').paginate(Bucket=b,Prefix=p):\n"
            "  ks=[{'Key':o['Key']} for o in page.get('Contents',[])]\n"
            "  ks and c.delete_objects(Bucket=b,Delete={'Objects':ks})\n")
    subprocess.run([PY, "-c", code, bucket, prefix], env=env, check=True)


# ---- decode: images per second per core, ddpipe's loader path against PIL + torchvision -----

def make_subset(images, folder, n_train, n_test):
    """folder/{train,test}/<class>/*.jpg: hard links to the first images of `images`."""
    if os.path.isdir(folder):
        return
    classes = sorted(os.listdir(images))
    files = sorted((f, c) for c in classes for f in os.listdir(os.path.join(images, c)))
    for i, (f, c) in enumerate(files[:n_train + n_test]):
        split = "train" if i < n_train else "test"
        os.makedirs(os.path.join(folder, split, c), exist_ok=True)
        os.link(os.path.join(images, c, f), os.path.join(folder, split, c, f))


def cmd_decode(args):
    folder, store = os.path.join(args.work, "decode"), os.path.join(args.work, "decode-store")
    make_subset(args.images, folder, args.n, 10)
    if not os.path.isdir(store):
        run(f"{args.ddpipe} ingest --set data.format=image-folder --set data.form=sharded "
            f"--data-path {folder} --dataset decode --store {store}")
    ours = (f"taskset -c {args.core} {args.decode_bench} --store {store} --name decode "
            f"--images {args.n} --size 224 --batch 64 --workers 1 "
            f"--cache-dir {args.work}/decode-cache")
    peer = (f"taskset -c {args.core} {PY} {ROOT}/bench/decode_peer.py "
            f"--root {folder}/train --size 224 --batch 64")
    reps = []
    for r in range(args.reps):
        order = [("ddpipe", ours), ("python", peer)]
        if r % 2:
            order.reverse()
        rep = {"load_before": load_average()}
        for side, cmd in order:
            rep[side] = last_json(run(cmd)[1])
            print(side, rep[side], flush=True)
        reps.append(rep)
    summary = {}
    for key in ("images_per_second", "images_per_cpu_second"):
        d = statistics.median(r["ddpipe"][key] for r in reps)
        p = statistics.median(r["python"][key] for r in reps)
        summary[key] = {"ddpipe": d, "python": p, "ratio": round(d / p, 2)}
    print(json.dumps(summary))
    save(args, "decode.json", {"ddpipe_cmd": ours, "python_cmd": peer, "reps": reps,
                               "median": summary, "load_after": load_average()})


# ---- ingest: images/s of a large folder, ddpipe ingest against bench/ingest_peer.py ---------

def cmd_ingest(args):
    env = s3_env()
    run(f"cat {args.images}/*/* > /dev/null")  # both sides read from the page cache
    targets = ["local"] + ([] if args.local_only else ["s3"])
    reps = []
    for r in range(args.reps):
        for target in targets:
            rep = {"target": target, "load_before": load_average()}
            sides = ["ddpipe", "python"] if r % 2 == 0 else ["python", "ddpipe"]
            for side in sides:
                store = (os.path.join(args.work, f"ingest-{side}") if target == "local"
                         else f"s3://b19-ingest/{side}-{r}")
                if side == "ddpipe":
                    cmd = (f"{args.ddpipe} ingest --set data.format=image-folder "
                           f"--set data.form=sharded --set data.shard_mb={args.shard_mb} "
                           f"--set data.test_fraction=0.02 --data-path {args.images} "
                           f"--dataset bench --store {store}")
                else:
                    cmd = (f"{PY} {ROOT}/bench/ingest_peer.py --data-path {args.images} "
                           f"--store {store} --name bench --shard-mb {args.shard_mb} --procs 2 "
                           f"--test-fraction 0.02")
                seconds, out, _ = run(cmd, env=env)
                result = last_json(out)
                images = result.get("images") or result["train"] + result["test"]
                rep[side] = {"cmd": cmd, "seconds": round(seconds, 3), "images": images,
                             "images_per_second": round(images / seconds, 1), "output": result}
                print(side, target, rep[side]["images_per_second"], "images/s", flush=True)
                if target == "local":
                    shutil.rmtree(store)
                else:
                    delete_s3_prefix(env, store)
            reps.append(rep)
    summary = {}
    for target in targets:
        rs = [r for r in reps if r["target"] == target]
        d = statistics.median(r["ddpipe"]["images_per_second"] for r in rs)
        p = statistics.median(r["python"]["images_per_second"] for r in rs)
        summary[target] = {"ddpipe": d, "python": p, "ratio": round(d / p, 2)}
    print(json.dumps(summary))
    save(args, "ingest.json", {"reps": reps, "median": summary, "load_after": load_average()})


# ---- stream / wait: train from RGW, sampling every rank's VmRSS ------------------------------

def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def vm_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def train(args, env, name, sets):
    """`ddpipe launch` of 2 ranks from the RGW dataset; samples each rank's VmRSS every 0.5 s.
    Returns the command, the samples [(t, {pid: MB})], the epoch event and the progress events."""
    cmd = (f"{args.ddpipe} launch --nproc-per-node 2 --name {name} --store {args.store} "
           f"--cache-dir {args.work}/cache-{name} --set data.form=sharded "
           f"--set data.name=stream --set train.epochs=1 --set log.every_steps=10 "
           + " ".join(f"--set {s}" for s in sets))
    print("$", cmd, flush=True)
    shutil.rmtree(f"{args.work}/cache-{name}", ignore_errors=True)
    log_path = os.path.join(args.work, f"{name}.log")
    with open(log_path, "w") as log:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, shell=True, env=env, stdout=log, stderr=subprocess.STDOUT)
        samples = []
        launch = None
        while p.poll() is None:
            launch = launch or next(iter(children(p.pid)), None)
            ranks = [c for c in children(launch)] if launch else []
            rss = {c: vm_rss_mb(c) for c in ranks}
            samples.append((round(time.monotonic() - t0, 2),
                            {str(k): round(v, 1) for k, v in rss.items() if v}))
            time.sleep(0.5)
    if p.returncode != 0:
        sys.exit(f"shard_stream: training failed ({p.returncode}); see {log_path}")
    events = [json.loads(l) for l in open(log_path) if l.startswith("{")]
    epoch = next(e for e in events if e.get("event") == "epoch")
    progress = [e for e in events if e.get("event") == "progress"]
    return {"cmd": cmd, "seconds": round(time.monotonic() - t0, 1), "rss": samples,
            "epoch": epoch, "progress": progress, "load_after": load_average()}


def rss_summary(samples):
    """Per rank: first, last, peak VmRSS (MB) while training, skipping the first 20 s of
    start-up (libtorch, the process group, the first shards)."""
    per_rank = {}
    for t, rss in samples:
        for pid, mb in rss.items():
            per_rank.setdefault(pid, []).append((t, mb))
    out = {}
    for pid, series in per_rank.items():
        steady = [mb for t, mb in series if t >= series[0][0] + 20] or [mb for _, mb in series]
        out[pid] = {"samples": len(series), "first_mb": steady[0], "last_mb": steady[-1],
                    "peak_mb": max(mb for _, mb in series), "steady_min_mb": min(steady),
                    "steady_max_mb": max(steady)}
    return out


def wait_summary(result):
    e = result["epoch"]
    share = e["data_wait_seconds"] / e["train_seconds"]
    return {"train_seconds": round(e["train_seconds"], 1),
            "data_wait_seconds": round(e["data_wait_seconds"], 3),
            "data_wait_share_of_train": round(share, 5),
            "data_wait_share_of_epoch": round(e["data_wait_seconds"] / e["epoch_seconds"], 5),
            "images_per_second": round(e["images_per_second"], 1),
            "peak_rss_mb_max_rank": round(e["peak_rss_mb_max_rank"], 1),
            "progress_data_wait_shares": [round(p["data_wait_share"], 5)
                                          for p in result["progress"]]}


def svg_plot(samples, path, title):
    """A small SVG line chart of each rank's VmRSS over time (no matplotlib here)."""
    per_rank = {}
    for t, rss in samples:
        for pid, mb in rss.items():
            per_rank.setdefault(pid, []).append((t, mb))
    tmax = max(t for t, _ in samples) or 1
    ymax = max(mb for s in per_rank.values() for _, mb in s) * 1.15
    w, h, l, b = 640, 300, 60, 40
    x = lambda t: l + (w - l - 20) * t / tmax
    y = lambda mb: h - b - (h - b - 30) * mb / ymax
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             'font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{l}" y="18">{title}</text>',
             f'<line x1="{l}" y1="{h - b}" x2="{w - 20}" y2="{h - b}" stroke="black"/>',
             f'<line x1="{l}" y1="30" x2="{l}" y2="{h - b}" stroke="black"/>',
             f'<text x="{w // 2}" y="{h - 8}" text-anchor="middle">seconds since launch</text>']
    step = 200 if ymax > 1000 else 100 if ymax > 400 else 50
    for mb in range(0, int(ymax), step):
        parts.append(f'<text x="{l - 6}" y="{y(mb) + 4:.0f}" text-anchor="end">{mb}</text>'
                     f'<line x1="{l}" y1="{y(mb):.0f}" x2="{w - 20}" y2="{y(mb):.0f}" '
                     'stroke="#ddd"/>')
    tstep = 60 if tmax > 240 else 30
    for t in range(0, int(tmax) + 1, tstep):
        parts.append(f'<text x="{x(t):.0f}" y="{h - b + 15}" text-anchor="middle">{t}</text>')
    parts.append(f'<text x="14" y="{h // 2}" transform="rotate(-90 14 {h // 2})" '
                 'text-anchor="middle">VmRSS (MB)</text>')
    for i, (pid, series) in enumerate(sorted(per_rank.items())):
        colour = ["#1f77b4", "#d62728", "#2ca02c"][i % 3]
        pts = " ".join(f"{x(t):.1f},{y(mb):.1f}" for t, mb in series)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>')
        parts.append(f'<text x="{w - 140}" y="{45 + 16 * i}" fill="{colour}">rank process {i}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")
    print("wrote", path)


def cmd_stream(args):
    env = s3_env()
    seconds, out, _ = run(f"{args.ddpipe} ingest --set data.format=image-folder "
                          f"--set data.form=sharded --set data.shard_mb={args.shard_mb} "
                          f"--set data.test_fraction=0.02 --data-path {args.images} "
                          f"--dataset stream --store {args.store}", env=env)
    ingest = last_json(out)
    index_path = os.path.join(args.work, "stream-index.json")
    run(f"{args.ddpipe} store cp {args.store}/{ingest['index']} {index_path}", env=env)
    with open(index_path) as f:
        index = json.load(f)
    dataset_bytes = sum(s["bytes"] for split in index["splits"].values()
                        for s in split["shards"])
    sets = [f"model.arch={args.arch}", f"features.image_size={args.size}",
            f"train.batch_size={args.batch}", f"data.cache_gb={args.cache_gb}",
            f"data.shuffle_buffer={args.shuffle_buffer}"] + args.set
    result = train(args, env, "stream", sets)
    rss = rss_summary(result["rss"])
    summary = {"dataset_bytes": dataset_bytes, "ingest_seconds": round(seconds, 1),
               "ingest": ingest, "rss": rss, "wait": wait_summary(result),
               "dataset_over_peak_rss": round(dataset_bytes / 2**20 /
                                              max(r["peak_mb"] for r in rss.values()), 2)}
    print(json.dumps(summary, indent=1))
    save(args, "stream.json", {"summary": summary, **result})
    svg_plot(result["rss"], os.path.join(args.out, "stream-rss.svg"),
             f"VmRSS of the 2 ranks, one epoch streamed from RGW "
             f"({dataset_bytes / 2**30:.2f} GiB of shards, cache {args.cache_gb} GiB)")


def cmd_wait(args):
    env = s3_env()
    sets = [f"model.arch={args.arch}", f"features.image_size={args.size}",
            f"train.batch_size={args.batch}", f"data.cache_gb={args.cache_gb}",
            f"data.shuffle_buffer={args.shuffle_buffer}",
            f"train.max_steps_per_epoch={args.steps}"] + args.set
    result = train(args, env, f"wait-{args.arch}", sets)
    summary = {"wait": wait_summary(result), "rss": rss_summary(result["rss"])}
    print(json.dumps(summary, indent=1))
    save(args, f"wait-{args.arch}-{args.size}-{args.steps}.json", {"summary": summary, **result})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ddpipe", default=os.path.join(ROOT, "build/apps/ddpipe/ddpipe"))
    ap.add_argument("--decode-bench", default=os.path.join(ROOT, "build/bench/ddpipe_decode_bench"))
    ap.add_argument("--images", default="/tmp/b19/images", help="the generated image folder")
    ap.add_argument("--work", default="/tmp/b19", help="scratch folder (stores, caches, logs)")
    ap.add_argument("--out", default="/tmp/b19/results", help="where the JSON results go")
    ap.add_argument("--store", default="s3://b19/stream", help="stream/wait: the RGW store")
    ap.add_argument("--shard-mb", type=int, default=64)
    sub = ap.add_subparsers(dest="part", required=True)
    d = sub.add_parser("decode", help="decode rate per core against PIL + torchvision")
    d.add_argument("--reps", type=int, default=4)
    d.add_argument("--n", type=int, default=1500, help="images per pass")
    d.add_argument("--core", type=int, default=1)
    i = sub.add_parser("ingest", help="ingest throughput against bench/ingest_peer.py")
    i.add_argument("--reps", type=int, default=3)
    i.add_argument("--local-only", action="store_true")
    for name, arch, size, batch in (("stream", "resnet-mini", 64, 32),
                                    ("wait", "resnet-mini", 224, 128)):
        p = sub.add_parser(name, help="train from RGW: " + ("one full epoch, RSS" if
                                                            name == "stream" else "data wait"))
        p.add_argument("--arch", default=arch)
        p.add_argument("--size", type=int, default=size)
        p.add_argument("--batch", type=int, default=batch)
        p.add_argument("--cache-gb", type=float, default=0.5)
        p.add_argument("--shuffle-buffer", type=int, default=2000)
        p.add_argument("--set", action="append", default=[], help="more config overrides")
        if name == "wait":
            p.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    {"decode": cmd_decode, "ingest": cmd_ingest, "stream": cmd_stream, "wait": cmd_wait}[
        args.part](args)


if __name__ == "__main__":
    main()
