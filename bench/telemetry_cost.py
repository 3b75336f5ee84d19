#!/usr/bin/env python3
"""What telemetry costs the default job: steady-state images/s with it on and off, in one run.

Runs the default job (configs/default.yaml: ResNet-mini on Fashion-MNIST, 2 ranks) for one epoch
of --steps steps per rank, alternating "on" (the defaults: a progress event every 50 steps or
30 s, the step history, the run record's heartbeat every 10 s, plus /metrics served on every
rank and scraped every --scrape-interval seconds, default 5: three times as often as
Prometheus's usual 15 s) and "off"
(log.every_steps=0 log.every_s=0 metrics.port=0 runs.heartbeat_s=0), --reps times each, and
reports the median of each and the median of the reps' on/off ratios (each rep's two runs are
back to back, in alternating order). The machine is shared: only ratios mean something.

  /usr/bin/python3 bench/telemetry_cost.py                  # 11 reps of a whole epoch (~6 minutes)
  /usr/bin/python3 bench/telemetry_cost.py --reps 1 --steps 60
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DDPIPE = os.environ.get("DDPIPE_BINARY", os.path.join(ROOT, "build/apps/ddpipe/ddpipe"))
OFF = ["log.every_steps=0", "log.every_s=0", "metrics.port=0", "runs.heartbeat_s=0"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape_until(done, ports, counts, interval):
    """Scrapes every rank's /metrics every `interval` seconds until `done` is set."""
    while not done.wait(interval):
        for port in ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    r.read()
                    counts[port] = counts.get(port, 0) + 1
            except OSError:
                pass


def run_once(mode, steps, work, interval):
    sets = [f"train.max_steps_per_epoch={steps}", "train.epochs=1", "name=telemetry-bench"]
    port = free_port()
    sets += OFF if mode == "off" else [f"metrics.port={port}"]
    cmd = [DDPIPE, "run", "--store", os.path.join(work, "store"),
           "--set", "cache_dir=" + os.path.join(work, "cache")]
    for s in sets:
        cmd += ["--set", s]
    done, counts = threading.Event(), {}
    scraper = threading.Thread(target=scrape_until, args=(done, [port, port + 1], counts, interval))
    if mode == "on":
        scraper.start()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, DDPIPE_LOG_LEVEL="info"))
    done.set()
    if mode == "on":
        scraper.join()
    if p.returncode != 0:
        sys.exit(f"telemetry_cost: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    epoch = next(json.loads(l) for l in p.stderr.splitlines()
                 if l.startswith("{") and '"event":"epoch"' in l)
    events = sum(1 for l in p.stderr.splitlines() if '"msg":"progress"' in l)
    return {"mode": mode, "images_per_s": epoch["steady_images_per_second"],
            "progress_events": events, "scrapes": sum(counts.values()), "cmd": " ".join(cmd)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--steps", type=int, default=235, help="steps per rank of the one epoch (235: all of it)")
    ap.add_argument("--scrape-interval", type=float, default=5.0)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if not os.path.exists(DDPIPE):
        sys.exit(f"telemetry_cost: build ddpipe first ({DDPIPE} missing)")
    records = []
    with tempfile.TemporaryDirectory(prefix="ddpipe-telemetry-bench-") as work:
        subprocess.run([DDPIPE, "ingest", "--store", os.path.join(work, "store")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for rep in range(args.reps):
            for mode in (("on", "off") if rep % 2 == 0 else ("off", "on")):
                r = run_once(mode, args.steps, work, args.scrape_interval)
                r["rep"] = rep
                records.append(r)
                print(f"  rep {rep} {mode:3s}: {r['images_per_s']:8.1f} img/s  "
                      f"{r['progress_events']} events, {r['scrapes']} scrapes",
                      file=sys.stderr, flush=True)
    on = statistics.median(r["images_per_s"] for r in records if r["mode"] == "on")
    off = statistics.median(r["images_per_s"] for r in records if r["mode"] == "off")
    # Each rep's two runs are back to back: their ratio cancels the machine's slow drift.
    by_rep = {}
    for r in records:
        by_rep.setdefault(r["rep"], {})[r["mode"]] = r["images_per_s"]
    paired = [p["on"] / p["off"] for p in by_rep.values()]
    ratio = statistics.median(paired)
    print(f"\ntelemetry on : {on:8.1f} img/s (median of {args.reps})")
    print(f"telemetry off: {off:8.1f} img/s")
    print(f"on / off of each rep: {' '.join(f'{x:.3f}' for x in paired)}")
    print(f"median of those: {ratio:.4f}  (cost {100 * (1 - ratio):+.2f}%); ratio of the medians "
          f"{on / off:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"on": on, "off": off, "paired_ratios": paired, "ratio": ratio,
                       "runs": records, "loadavg_end": os.getloadavg()}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
