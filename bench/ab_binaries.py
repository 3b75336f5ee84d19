#!/usr/bin/env python3
"""Two builds of ddpipe on the default job, in one run: what a change costs in training speed.

Trains the default job (configs/default.yaml: ResNet-mini on Fashion-MNIST, 2 ranks) for one
epoch of --steps steps per rank with binary A and binary B alternately, --reps times each (the
two runs of a rep back to back, in alternating order), and reports the median steady-state
images/s of each and the median of the reps' B/A ratios. The machine is shared: only ratios
mean something.

  git worktree add ../ddpipe-base <rev> && ../ddpipe-base/scripts/build.sh --no-tests ddpipe
  /usr/bin/python3 bench/ab_binaries.py --a ../ddpipe-base/build/apps/ddpipe/ddpipe \\
      --b build/apps/ddpipe/ddpipe --reps 11
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def run_once(binary, steps, work):
    cmd = [binary, "run", "--store", os.path.join(work, "store"),
           "--set", "cache_dir=" + os.path.join(work, "cache"),
           "--set", f"train.max_steps_per_epoch={steps}", "--set", "train.epochs=1",
           "--set", "name=ab-bench"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, DDPIPE_LOG_LEVEL="info"))
    if p.returncode != 0:
        sys.exit(f"ab_binaries: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    epoch = next(json.loads(l) for l in p.stderr.splitlines()
                 if l.startswith("{") and '"event":"epoch"' in l)
    return epoch["steady_images_per_second"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="the baseline ddpipe binary")
    ap.add_argument("--b", required=True, help="the changed ddpipe binary")
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--steps", type=int, default=235, help="steps per rank (235: the whole epoch)")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    for b in (args.a, args.b):
        if not os.access(b, os.X_OK):
            sys.exit(f"ab_binaries: {b} is not an executable")
    results = {"a": [], "b": []}
    with tempfile.TemporaryDirectory(prefix="ddpipe-ab-bench-") as work:
        subprocess.run([args.a, "ingest", "--store", os.path.join(work, "store")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for rep in range(args.reps):
            for which in (("a", "b") if rep % 2 == 0 else ("b", "a")):
                ips = run_once(getattr(args, which), args.steps, work)
                results[which].append(ips)
                print(f"  rep {rep} {which}: {ips:8.1f} img/s", file=sys.stderr, flush=True)
    paired = [b / a for a, b in zip(results["a"], results["b"])]
    a, b = statistics.median(results["a"]), statistics.median(results["b"])
    print(f"\nA {args.a}: {a:8.1f} img/s (median of {args.reps})")
    print(f"B {args.b}: {b:8.1f} img/s")
    print(f"B / A of each rep: {' '.join(f'{x:.3f}' for x in paired)}")
    print(f"median of those: {statistics.median(paired):.4f}; ratio of the medians {b / a:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"a": results["a"], "b": results["b"], "paired_ratios": paired,
                       "loadavg_end": os.getloadavg()}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
