#!/usr/bin/python3
"""Upload and download one object with `ddpipe store cp` and with boto3's managed transfer
(upload_file / download_file, default TransferConfig) on the same S3 server, alternating which
goes first, several repetitions; prints MiB/s per run, medians and the ddpipe/boto3 ratio.

Server and credentials: DDPIPE_S3_TEST_* (scripts/s3-test-server.sh) or AWS_* variables.
Two figures each: the transfer (ddpipe: the `seconds` of its JSON line; boto3: the
upload_file/download_file call in this process) and the whole command (ddpipe store cp as a
process, which loads libtorch; boto3 as `python3 -c` with its imports, like `aws s3 cp`).
Every downloaded copy is checked against the source.
Usage: bench/s3_throughput.py --ddpipe build/apps/ddpipe/ddpipe [--size-mib 200] [--reps 5]
"""
import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config


def env(name, fallback):
    return os.environ.get("DDPIPE_S3_TEST_" + name) or os.environ.get(fallback) or ""


BOTO3_COMMAND = (
    "import os, boto3; from botocore.config import Config; "
    "c = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL_S3'], "
    "config=Config(s3={'addressing_style': 'path'})); ")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ddpipe", required=True)
    ap.add_argument("--size-mib", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--bucket", default="ddpipe-bench")
    ap.add_argument("--set", action="append", default=[], help="extra ddpipe --set KEY=VALUE")
    args = ap.parse_args()

    endpoint = env("ENDPOINT", "AWS_ENDPOINT_URL_S3")
    creds = {
        "AWS_ACCESS_KEY_ID": env("ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": env("SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
        "AWS_REGION": env("REGION", "AWS_REGION") or "us-east-1",
    }
    if not endpoint or not creds["AWS_ACCESS_KEY_ID"]:
        sys.exit("no S3 server: eval \"$(scripts/s3-test-server.sh start)\" first")
    child_env = dict(os.environ, AWS_ENDPOINT_URL_S3=endpoint, **creds)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=creds["AWS_REGION"],
                      aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                      config=Config(s3={"addressing_style": "path"}))
    try:
        s3.create_bucket(Bucket=args.bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass

    size = args.size_mib << 20
    tmp = tempfile.mkdtemp(prefix="ddpipe-s3-bench-")
    src = os.path.join(tmp, "src.bin")
    with open(src, "wb") as f:
        for _ in range(args.size_mib):
            f.write(os.urandom(1 << 20))
    want = sha256(src)
    extra = [a for kv in args.set for a in ("--set", kv)]

    def ddpipe_cp(a, b):
        t0 = time.monotonic()
        out = subprocess.run([args.ddpipe, "store", "cp", a, b] + extra, env=child_env, check=True,
                             stdout=subprocess.PIPE).stdout
        wall = time.monotonic() - t0
        return json.loads(out.decode().strip().splitlines()[-1])["seconds"], wall

    def timed(f):
        t0 = time.monotonic()
        f()
        return time.monotonic() - t0

    rows = {k: [] for k in ("ddpipe up", "ddpipe down", "boto3 up", "boto3 down")}
    walls = {k: [] for k in rows}
    for rep in range(args.reps):
        def run_ddpipe():
            url = f"s3://{args.bucket}/ddpipe.bin"
            for name, a, b in (("ddpipe up", src, url), ("ddpipe down", url, os.path.join(tmp, "d.bin"))):
                seconds, wall = ddpipe_cp(a, b)
                rows[name].append(seconds)
                walls[name].append(wall)
            assert sha256(os.path.join(tmp, "d.bin")) == want, "ddpipe's copy differs"
            os.remove(os.path.join(tmp, "d.bin"))

        def run_boto3():
            rows["boto3 up"].append(timed(lambda: s3.upload_file(src, args.bucket, "boto3.bin")))
            out = os.path.join(tmp, "b.bin")
            rows["boto3 down"].append(timed(lambda: s3.download_file(args.bucket, "boto3.bin", out)))
            assert sha256(out) == want, "boto3's copy differs"
            os.remove(out)
            # The same as a command (interpreter start and imports included), like `aws s3 cp`.
            for name, call in (("boto3 up", f"c.upload_file({src!r}, {args.bucket!r}, 'boto3.bin')"),
                               ("boto3 down", f"c.download_file({args.bucket!r}, 'boto3.bin', {out!r})")):
                walls[name].append(timed(lambda: subprocess.run(
                    [sys.executable, "-c", BOTO3_COMMAND + call], env=child_env, check=True)))
            os.remove(out)

        order = (run_ddpipe, run_boto3) if rep % 2 == 0 else (run_boto3, run_ddpipe)
        for run in order:
            run()
        mibs = lambda k: args.size_mib / rows[k][-1]
        print(f"rep {rep + 1}: " + "  ".join(f"{k} {mibs(k):6.1f} MiB/s" for k in rows), flush=True)

    med = {k: args.size_mib / statistics.median(v) for k, v in rows.items()}
    med_wall = {k: args.size_mib / statistics.median(v) for k, v in walls.items()}
    print(f"\n{args.size_mib} MiB object, {args.reps} repetitions, medians (MiB/s); transfer = the "
          "copy itself, command = the whole process (start, imports, libtorch load):")
    print(f"  {'':6} {'ddpipe':>8} {'boto3':>8} {'ratio':>7}   {'ddpipe':>8} {'boto3':>8} {'ratio':>7}")
    print(f"  {'':6} {'transfer':>8} {'transfer':>8} {'':>7}   {'command':>8} {'command':>8}")
    for d in ("up", "down"):
        dd, bb = "ddpipe " + d, "boto3 " + d
        print(f"  {d:6} {med[dd]:8.1f} {med[bb]:8.1f} {med[dd] / med[bb]:6.2f}x   "
              f"{med_wall[dd]:8.1f} {med_wall[bb]:8.1f} {med_wall[dd] / med_wall[bb]:6.2f}x")
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
