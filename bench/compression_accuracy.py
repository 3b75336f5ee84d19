#!/usr/bin/env python3
"""The accuracy cost of gradient compression on the real Fashion-MNIST (issue 21).

Runs ddpipe's default job (`ddpipe run` with the embedded default config: ResNet-mini, 2 ranks,
9 epochs) once per dist.grad_compression mode and seed, and reports the final test accuracy of
each run and its difference to mode `none` with the same seed. PowerSGD runs with its defaults
(dist.powersgd_rank=1, dist.powersgd_start_step=1000: the second half of the job's 2,106 steps
is compressed) unless --set says otherwise. Each run takes about 3 minutes on the 2-core machine.

  /usr/bin/python3 bench/compression_accuracy.py --json compression_accuracy.json
  /usr/bin/python3 bench/compression_accuracy.py --modes none,powersgd --seeds 1 \\
      --set dist.powersgd_rank=4
"""
import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from time_to_accuracy import DDPIPE, dump_json, parse_ddpipe, watch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", default="none,bf16,fp16,powersgd")
    ap.add_argument("--seeds", default="0,1", help="comma-separated values of `seed`")
    ap.add_argument("--set", action="append", default=[], help="extra ddpipe config override")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if not os.path.exists(DDPIPE):
        sys.exit(f"compression_accuracy: build ddpipe first ({DDPIPE} missing)")
    modes, seeds = args.modes.split(","), [int(s) for s in args.seeds.split(",")]
    runs = []
    with tempfile.TemporaryDirectory(prefix="ddpipe-compression-") as work:
        for seed in seeds:
            for mode in modes:
                store = os.path.join(work, f"{mode}-{seed}")
                cmd = [DDPIPE, "run", "--store", store, "--set", "cache_dir=" + os.path.join(work, "cache"),
                       "--set", f"seed={seed}", "--set", f"dist.grad_compression={mode}"]
                for s in args.set:
                    cmd += ["--set", s]
                print(f"== {mode}, seed {seed}: {' '.join(cmd)}", file=sys.stderr, flush=True)
                points, wall = watch(cmd, {"DDPIPE_LOG_LEVEL": "info"}, parse_ddpipe)
                runs.append({"mode": mode, "seed": seed, "cmd": " ".join(cmd), "wall_s": wall,
                             "final_acc": points[-1][2], "best_acc": max(p[2] for p in points),
                             "epochs": len(points)})
    base = {r["seed"]: r["final_acc"] for r in runs if r["mode"] == "none"}
    print(f"\n{'mode':10s}{'seed':>6s}{'final acc %':>13s}{'vs none':>9s}{'best %':>8s}{'wall s':>8s}")
    for r in runs:
        r["delta"] = r["final_acc"] - base[r["seed"]] if r["seed"] in base else None
        delta = f"{r['delta']:+9.2f}" if r["delta"] is not None else f"{'-':>9s}"
        print(f"{r['mode']:10s}{r['seed']:6d}{r['final_acc']:13.2f}{delta}{r['best_acc']:8.2f}"
              f"{r['wall_s']:8.0f}")
    print()
    for mode in modes:
        deltas = [r["delta"] for r in runs if r["mode"] == mode and r["delta"] is not None]
        accs = [r["final_acc"] for r in runs if r["mode"] == mode]
        if accs:
            mean_delta = f"{statistics.mean(deltas):+.2f}" if deltas else "-"
            print(f"{mode:10s} mean final {statistics.mean(accs):.2f}%  mean vs none {mean_delta} points")
    dump_json(args.json, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
