#!/usr/bin/env python3
"""Time to accuracy on the real Fashion-MNIST: ddpipe's default job against the peer's recipe.

Runs, back to back on the same machine, (1) the PyTorch DDP peer's original recipe
(../shared/peers/pytorch_ddp_reference.py: torchvision ResNet-18 on Fashion-MNIST padded to
3x32x32, 2 ranks, batch 128 per rank, SGD 0.1 / cosine over --peer-epochs, in its best
configuration: tcmalloc preloaded, 1 thread per rank, 2 DataLoader workers, flush-to-zero) and
(2) ddpipe's default job (`ddpipe run` with the embedded default config: what ./quick-run.sh
runs), and reports for each the wall time from launch until the first epoch whose test
accuracy reaches each target, with startup, ingest and evaluation included.

  /usr/bin/python3 bench/time_to_accuracy.py --json tta.json
  /usr/bin/python3 bench/time_to_accuracy.py --ddpipe-only --set train.epochs=10
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DDPIPE = os.environ.get("DDPIPE_BINARY", os.path.join(ROOT, "build/apps/ddpipe/ddpipe"))
PEER = os.path.join(os.path.dirname(ROOT), "shared/peers/pytorch_ddp_reference.py")
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
PEER_EPOCH = re.compile(r"\[epoch (\d+)/\d+\].*\| test loss \S+ acc ([0-9.]+)%")


def watch(cmd, env, parse):
    """Runs cmd; returns [(seconds since launch, epoch, test accuracy %)] from its stderr."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, **env))
    points, tail = [], []
    out = []
    reader = threading.Thread(target=lambda: out.append(p.stdout.read()), daemon=True)
    reader.start()
    for line in p.stderr:
        tail = (tail + [line])[-40:]
        got = parse(line)
        if got:
            points.append((time.perf_counter() - t0, got[0], got[1]))
            print(f"  {os.path.basename(cmd[1] if cmd[0].endswith('python3') else cmd[0])}: "
                  f"epoch {got[0]} test acc {got[1]:.2f}% at {points[-1][0]:.0f} s",
                  file=sys.stderr, flush=True)
    p.wait()
    reader.join()
    if p.returncode != 0:
        sys.exit(f"time_to_accuracy: command failed ({p.returncode}): {' '.join(cmd)}\n"
                 + "".join(tail))
    return points, time.perf_counter() - t0


def parse_ddpipe(line):
    if not line.startswith("{") or '"event":"epoch"' not in line:
        return None
    j = json.loads(line)
    return j["epoch"], 100.0 * j["test_acc"]


def parse_peer(line):
    m = PEER_EPOCH.search(line)
    return (int(m.group(1)), float(m.group(2))) if m else None


def dump_json(path, runs):
    """Writes {"runs": runs, "loadavg_end": ...} to `path` (nothing if it is empty)."""
    if path:
        with open(path, "w") as f:
            json.dump({"runs": runs, "loadavg_end": os.getloadavg()}, f, indent=2)


def time_to(points, target):
    return next((t for t, _, acc in points if acc >= target), None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", type=float, nargs="+", default=[88.0, 90.0, 92.0])
    ap.add_argument("--peer-epochs", type=int, default=5, help="the peer's recipe (5 epochs)")
    ap.add_argument("--ddpipe-only", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="extra ddpipe config override")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if not args.ddpipe_only and not os.path.exists(PEER):
        print(f"SKIP: the peer {PEER} is not there (../shared is absent)")
        return 0
    runs = {}
    with tempfile.TemporaryDirectory(prefix="ddpipe-tta-") as work:
        if not args.ddpipe_only:
            cmd = ["/usr/bin/python3", PEER, "--dataset", "fashion-mnist", "--model", "resnet18",
                   "--world-size", "2", "--threads-per-rank", "1", "--num-workers", "2",
                   "--epochs", str(args.peer_epochs), "--batch-size", "128",
                   "--checkpoint", "every-epoch", "--flush-denormal",
                   "--out", os.path.join(work, "peer")]
            points, wall = watch(cmd, {"LD_PRELOAD": TCMALLOC}, parse_peer)
            runs["peer"] = {"cmd": "LD_PRELOAD=" + TCMALLOC + " " + " ".join(cmd),
                            "points": points, "wall_s": wall}
        cmd = [DDPIPE, "run", "--store", os.path.join(work, "store"),
               "--set", "cache_dir=" + os.path.join(work, "cache")]
        for s in args.set:
            cmd += ["--set", s]
        points, wall = watch(cmd, {"DDPIPE_LOG_LEVEL": "info"}, parse_ddpipe)
        runs["ddpipe"] = {"cmd": " ".join(cmd), "points": points, "wall_s": wall}

    print(f"\n{'':8s}" + "".join(f"{'to ' + format(t, 'g') + '%':>10s}" for t in args.targets)
          + f"{'best acc':>10s}{'epochs':>8s}{'wall s':>8s}")
    for name, r in runs.items():
        cells = "".join(f"{time_to(r['points'], t):10.0f}" if time_to(r['points'], t) is not None
                        else f"{'-':>10s}" for t in args.targets)
        best = max((acc for _, _, acc in r["points"]), default=0.0)
        print(f"{name:8s}{cells}{best:10.2f}{len(r['points']):8d}{r['wall_s']:8.0f}")
        r["time_to"] = {str(t): time_to(r["points"], t) for t in args.targets}
    if "peer" in runs:
        peer88 = runs["peer"]["time_to"].get("88.0")
        ours = runs["ddpipe"]["time_to"].get(str(max(args.targets)))
        if peer88 and ours:
            print(f"\nddpipe to {max(args.targets):g}%: {ours:.0f} s = {ours / peer88:.2f} of the "
                  f"peer's time to 88% ({peer88:.0f} s)")
    dump_json(args.json, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
