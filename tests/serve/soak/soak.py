#!/usr/bin/env python3
"""Soak test of `ddpipe serve` (issue 20): sustained load on loopback that mixes valid and
malformed requests while new model versions are published and picked up.

    soak.py DDPIPE [--seconds 45] [--clients 4] [--rss-growth-mb 64] [--json OUT]

It trains a small model with `ddpipe run` into a temporary local store, starts `ddpipe serve` on
it (serve.poll_s=1), then for --seconds:
  - --clients threads send valid requests (POST /predict multipart, KServe V1 base64, Open
    Inference V2 base64) on keep-alive connections: every answer must be 200 with a prediction;
  - one thread sends malformed ones (garbage and truncated images, broken multipart, bad JSON,
    wrong V2 shapes, hostile paths, a request cut off mid-headers): every answer must be a 4xx,
    never a 5xx, and the server must keep running;
  - one thread publishes a new version with `ddpipe run` again and again; the valid answers must
    come from at least two versions (the server swapped models under load).
Resident memory (VmRSS) of the server is sampled every second after a warm-up; its growth from
the first sample to the last must stay within --rss-growth-mb. The figures are printed as one
JSON line (and written to --json). Exit 0 when every check holds, 1 otherwise.
"""
import argparse
import base64
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

MODEL = "soak"


def png(width, height, seed):
    """A grey PNG of varying pixels, written with zlib alone."""
    rows = b"".join(b"\x00" + bytes((x * 7 + y * 13 + seed) % 256 for x in range(width))
                    for y in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) +
            chunk(b"IEND", b""))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_command(ddpipe, store, cache):
    return [ddpipe, "run", "--store", store, "--set", "cache_dir=" + cache, "--name", MODEL,
            "--dataset", "soak-data", "--set", "data.format=synthetic",
            "--set", "data.train_size=256", "--set", "data.test_size=64",
            "--set", "data.channels=1", "--set", "data.height=16", "--set", "data.width=16",
            "--set", "model.width=4", "--epochs", "1", "--set", "train.max_steps_per_epoch=2",
            "--set", "train.eval_batch_size=64", "--set", "dist.nproc=1",
            "--set", "train.threads=1", "--set", "loader.workers=0"]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


class Figures:
    def __init__(self):
        self.lock = threading.Lock()
        self.valid_ok = 0
        self.valid_failed = []  # (request, status or error), the first few
        self.valid_failures = 0
        self.malformed = {}  # status -> count
        self.malformed_5xx = []
        self.versions_seen = set()
        self.published = 0
        self.publish_failures = 0

    def add_valid(self, name, status, body):
        with self.lock:
            ok = status == 200 and "prediction" in body
            if ok:
                self.valid_ok += 1
                if "version" in body:
                    self.versions_seen.add(body["version"])
            else:
                self.valid_failures += 1
                if len(self.valid_failed) < 10:
                    self.valid_failed.append((name, status, str(body)[:200]))

    def add_malformed(self, name, status):
        with self.lock:
            self.malformed[status] = self.malformed.get(status, 0) + 1
            if status >= 500 and len(self.malformed_5xx) < 10:
                self.malformed_5xx.append((name, status))


def request(conn, method, path, body=b"", headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read()


def valid_requests(image):
    b64 = base64.b64encode(image).decode()
    boundary = "soakboundary"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                 f"filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + image + \
        f"\r\n--{boundary}--\r\n".encode()
    v2 = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                 "data": [b64]}]})
    return [
        ("predict", "POST", "/predict", multipart,
         {"Content-Type": f"multipart/form-data; boundary={boundary}"}),
        ("v1", "POST", f"/v1/models/{MODEL}:predict", json.dumps({"instances": [{"b64": b64}]}),
         {"Content-Type": "application/json"}),
        ("v2", "POST", f"/v2/models/{MODEL}/infer", v2, {"Content-Type": "application/json"}),
    ]


def answer_of(name, status, raw):
    """The answer as {"prediction", "version"} when it is a prediction, else the raw text."""
    try:
        body = json.loads(raw)
    except ValueError:
        return {"raw": raw[:200]}
    if name == "predict" and status == 200:
        return body
    if name == "v1" and status == 200:
        return body["predictions"][0]  # V1 answers carry no version
    if name == "v2" and status == 200:
        out = {o["name"]: o["data"] for o in body["outputs"]}
        return {"prediction": out["prediction"][0], "version": body["model_version"]}
    return body


def valid_client(port, image, figures, stop):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    reqs = valid_requests(image)
    i = 0
    while not stop.is_set():
        name, method, path, body, headers = reqs[i % len(reqs)]
        i += 1
        try:
            status, raw = request(conn, method, path, body, headers)
            figures.add_valid(name, status, answer_of(name, status, raw))
        except (OSError, http.client.HTTPException) as e:
            figures.add_valid(name, -1, repr(e))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()


def malformed_requests(image):
    boundary = "b"
    return [
        ("garbage png", "POST", "/predict", os.urandom(512), {"Content-Type": "image/png"}),
        ("truncated png", "POST", "/predict", image[: len(image) // 2],
         {"Content-Type": "image/png"}),
        ("empty body", "POST", "/predict", b"", {"Content-Type": "image/png"}),
        ("multipart without end", "POST", "/predict",
         b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",
         {"Content-Type": f"multipart/form-data; boundary={boundary}"}),
        ("bad json v1", "POST", f"/v1/models/{MODEL}:predict", b"{\"instances\": [",
         {"Content-Type": "application/json"}),
        ("bad base64 v1", "POST", f"/v1/models/{MODEL}:predict",
         b"{\"instances\": [{\"b64\": \"!!!\"}]}", {"Content-Type": "application/json"}),
        ("wrong v2 shape", "POST", f"/v2/models/{MODEL}/infer",
         json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3],
                                 "data": [1, 2, 3]}]}), {"Content-Type": "application/json"}),
        ("hostile model path", "GET", "/v2/models/..%2F..%2Fetc%2Fpasswd", b"", {}),
        ("unknown model", "POST", "/v1/models/nope:predict", b"{}",
         {"Content-Type": "application/json"}),
        ("bad top_k", "POST", "/predict?top_k=-3", image, {"Content-Type": "image/png"}),
    ]


def cut_off_request(port):
    """Half a request's headers, then the connection closes: nothing to answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n")


def malformed_client(port, image, figures, stop):
    reqs = malformed_requests(image)
    i = 0
    while not stop.is_set():
        if i % (len(reqs) + 1) == len(reqs):
            cut_off_request(port)
            i += 1
            continue
        name, method, path, body, headers = reqs[i % (len(reqs) + 1)]
        i += 1
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            status, _ = request(conn, method, path, body, headers)
        except (OSError, http.client.HTTPException):
            status = -1  # the server closed the connection: not an answer, not a failure
        figures.add_malformed(name, status)
        conn.close()


def publisher(command, figures, stop, log):
    while not stop.is_set():
        r = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
        with figures.lock:
            if r.returncode == 0:
                figures.published += 1
            else:
                figures.publish_failures += 1
        stop.wait(1.0)


def wait_ready(port, server, deadline_s=60):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if server.poll() is not None:
            raise RuntimeError(f"ddpipe serve exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            status, _ = request(conn, "GET", "/v2/health/ready")
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("ddpipe serve not ready within 60 s")


def soak(args, tmp):
    store, cache = os.path.join(tmp, "store"), os.path.join(tmp, "cache")
    command = train_command(args.ddpipe, store, cache)
    log = open(os.path.join(tmp, "publish.log"), "w")
    subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
    port = free_port()
    server_log = open(os.path.join(tmp, "serve.log"), "w")
    server = subprocess.Popen([args.ddpipe, "serve", "--store", store, "--model", MODEL,
                               "--port", str(port), "--set", "serve.poll_s=1",
                               "--set", "serve.access_log=false"],
                              stdout=server_log, stderr=subprocess.STDOUT)
    figures, stop = Figures(), threading.Event()
    image = png(20, 18, 5)
    try:
        wait_ready(port, server)
        threads = [threading.Thread(target=valid_client, args=(port, image, figures, stop))
                   for _ in range(args.clients)]
        threads.append(threading.Thread(target=malformed_client,
                                        args=(port, image, figures, stop)))
        threads.append(threading.Thread(target=publisher, args=(command, figures, stop, log)))
        for t in threads:
            t.start()
        time.sleep(min(5.0, args.seconds / 4))  # warm-up: allocator pools, first model swap
        samples = []
        end = time.monotonic() + args.seconds
        while time.monotonic() < end and server.poll() is None:
            samples.append(rss_mb(server.pid))
            time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        alive = server.poll() is None
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=60)
    return figures, samples, alive


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("ddpipe")
    p.add_argument("--seconds", type=float, default=45)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--rss-growth-mb", type=float, default=64)
    p.add_argument("--json")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="ddpipe-soak-") as tmp:
        figures, samples, alive = soak(args, tmp)
        out = {
            "seconds": args.seconds, "clients": args.clients,
            "valid_ok": figures.valid_ok, "valid_failed": figures.valid_failures,
            "valid_failures": figures.valid_failed,
            "malformed_by_status": {str(k): v for k, v in sorted(figures.malformed.items())},
            "malformed_5xx": figures.malformed_5xx,
            "versions_published": figures.published, "publish_failures": figures.publish_failures,
            "versions_seen": len(figures.versions_seen),
            "rss_mb_first": round(samples[0], 1) if samples else None,
            "rss_mb_last": round(samples[-1], 1) if samples else None,
            "rss_mb_peak": round(max(samples), 1) if samples else None,
            "server_alive": alive,
        }
        checks = {
            "server stayed up": alive,
            "no valid request failed": figures.valid_failures == 0 and figures.valid_ok > 0,
            "no malformed request got a 5xx": not figures.malformed_5xx,
            "every malformed request got a 4xx or a closed connection":
                all(400 <= s < 500 or s == -1 for s in figures.malformed),
            "new versions were picked up under load": len(figures.versions_seen) >= 2,
            f"RSS grew at most {args.rss_growth_mb} MB":
                bool(samples) and samples[-1] - samples[0] <= args.rss_growth_mb,
        }
        out["failed_checks"] = [k for k, ok in checks.items() if not ok]
        print(json.dumps(out))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
        if out["failed_checks"]:
            for name in ("serve.log", "publish.log"):
                with open(os.path.join(tmp, name)) as f:
                    sys.stderr.write(f"--- {name} (last 3000 bytes)\n{f.read()[-3000:]}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
