#!/usr/bin/env python3
"""Training throughput: ddpipe against the PyTorch DDP peer, in the same run.

For each case, runs ddpipe and the peer (../shared/peers/pytorch_ddp_reference.py, Debian's
python3-torch, the same libtorch) back to back, alternating, --reps times, and reports the median
steady-state images/s of each, their ratio, epoch time, data wait, exposed communication and peak
RSS per rank. The peer runs in its best configuration measured here: tcmalloc preloaded, 2 ranks x
1 thread, DataLoader with 2 workers, flush-to-zero on.

  /usr/bin/python3 bench/bench.py                       # the full suite (see BENCHMARKS.md)
  /usr/bin/python3 bench/bench.py --smoke               # ~1 minute: checks the harness only
  /usr/bin/python3 bench/bench.py --cases resnet18 --reps 3 --json out.json
  /usr/bin/python3 bench/bench.py --print-cmd resnet18 --batches 12   # the command, for profile.sh

Writes a table to stdout and every run's record to --json.
"""
import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DDPIPE = os.environ.get("DDPIPE_BINARY", os.path.join(ROOT, "build/apps/ddpipe/ddpipe"))
PEER = os.path.join(os.path.dirname(ROOT), "shared/peers/pytorch_ddp_reference.py")
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"

FMA_PEAK = os.path.join(os.path.dirname(ROOT), "shared/peers/fma_peak.c")
# Model FLOPs per training image (forward + backward = 6 x multiply-accumulates, padding taps
# included: the accounting of ../shared/peers/flops_count.py, which prints these).
TRAIN_GFLOP_PER_IMAGE = {"resnet18": 0.2221, "resnet18-cifar": 3.3325}

# name: (ddpipe arch, ddpipe precision, peer model, train batches per rank)
CASES = {
    "resnet18": ("resnet18", "fp32", "resnet18", 40),
    "resnet18-cifar": ("resnet18-cifar", "fp32", "resnet18-cifar", 6),
    "resnet18-cifar-bf16": ("resnet18-cifar", "bf16", "resnet18-cifar", 6),
}


# Per command: seconds before a run counts as hung, and runs in all (--timeout, --attempts). The
# peer's ranks fork DataLoader workers after Gloo has started threads, and now and then one hangs
# for good (seen in CI on a loaded machine); the smoke test retries such a run instead of waiting.
LIMITS = {"timeout": None, "attempts": 1}


# Runs a command and reports the peak RSS of its largest process (rank, worker or parent).
WRAPPER = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]).returncode; "
           "print('MAXRSS_KB=%d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
           "file=sys.stderr); sys.exit(r)")


def run(cmd, env=None, timeout=None, attempts=1):
    """Runs `cmd` in its own process group; a run that outlives `timeout` seconds is killed (the
    whole group) and started again, at most `attempts` times in all."""
    for attempt in range(1, attempts + 1):
        t0 = time.perf_counter()
        p = subprocess.Popen(["/usr/bin/python3", "-c", WRAPPER] + cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True,
                             env=dict(os.environ, **(env or {})))
        try:
            out, err = p.communicate(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            print(f"bench: no result after {timeout} s (attempt {attempt} of {attempts}), "
                  f"killed: {' '.join(cmd)}", file=sys.stderr, flush=True)
    else:
        sys.exit(f"bench: gave up after {attempts} hung attempts: {' '.join(cmd)}")
    p.stdout, p.stderr = out, err
    if p.returncode != 0:
        sys.exit(f"bench: command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    p.maxrss_mb = int(p.stderr.strip().splitlines()[-1].split("=")[1]) / 1024.0
    return p, time.perf_counter() - t0


def ddpipe_cmd(case, batches, work):
    """The ddpipe command line of `case` with `batches` train batches per rank, its store and
    cache under `work` (bench/profile.sh runs the same command through --print-cmd)."""
    arch, precision, _, _ = CASES[case]
    return [DDPIPE, "run", "--store", os.path.join(work, "store"),
           "--set", "cache_dir=" + os.path.join(work, "cache"),
           "--set", "name=bench", "--set", "data.format=synthetic",
           "--set", "data.name=bench-synthetic", "--set", "data.channels=3",
           "--set", "data.height=32", "--set", "data.width=32",
           "--set", "data.train_size=50000", "--set", "data.test_size=200",
           "--set", "model.arch=" + arch, "--set", "train.precision=" + precision,
           "--set", "train.batch_size=128", "--set", "train.epochs=1",
           "--set", f"train.max_steps_per_epoch={batches}", "--set", "train.lr=0.1",
           "--set", "train.nesterov=false",
           "--set", "train.label_smoothing=0",
           # The peer's transforms: random flip and random crop with padding 4.
           "--set", "features.random_crop=true", "--set", "features.crop_padding=4",
           # The peer evaluates one test batch of 100 per rank: the same here, so that the
           # peak RSS compares like with like (a batch of 500 at 32x32x64 holds ~130 MB tensors).
           "--set", "train.eval_batch_size=100",
           "--set", "dist.nproc=2"]


def run_ddpipe(case, batches, work):
    cmd = ddpipe_cmd(case, batches, work)
    p, wall = run(cmd, {"DDPIPE_LOG_LEVEL": "info"}, **LIMITS)
    epoch = next(json.loads(l) for l in p.stderr.splitlines()
                 if l.startswith("{") and '"event":"epoch"' in l)
    return {"tool": "ddpipe", "case": case, "wall_s": wall,
            "images_per_s": epoch["steady_images_per_second"],
            "epoch_s": epoch["train_seconds"], "data_wait_s": epoch["data_wait_seconds"],
            "comm_exposed_s": epoch["comm_exposed_seconds"], "comm_s": epoch["comm_seconds"],
            "peak_rss_mb": p.maxrss_mb, "cmd": " ".join(cmd)}


def run_peer(case, batches, work):
    _, _, model, _ = CASES[case]
    cmd = ["/usr/bin/python3", PEER, "--dataset", "synthetic-cifar", "--model", model,
           "--world-size", "2", "--threads-per-rank", "1", "--num-workers", "2",
           "--epochs", "1", "--batch-size", "128", "--limit-train-batches", str(batches),
           "--limit-test-batches", "1", "--checkpoint", "none", "--flush-denormal",
           "--out", os.path.join(work, "peer")]
    p, wall = run(cmd, {"LD_PRELOAD": TCMALLOC}, **LIMITS)
    j = json.loads(p.stdout.strip().splitlines()[-1])
    return {"tool": "peer", "case": case, "wall_s": wall,
            "images_per_s": j["train_images_per_sec"], "epoch_s": j["train_seconds"][0],
            "data_wait_s": (j.get("steady_data_wait_fraction") or 0.0) * j["train_seconds"][0],
            "comm_exposed_s": None, "comm_s": None, "peak_rss_mb": p.maxrss_mb,
            "cmd": "LD_PRELOAD=" + TCMALLOC + " " + " ".join(cmd)}


def peak_gflops(threads):
    """This machine's fp32 FMA peak with `threads` threads (fma_peak.c), or None."""
    if not os.path.exists(FMA_PEAK):
        return None
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "fma_peak")
        if subprocess.run(["gcc", "-O2", "-mavx512f", "-mavx512vl", "-mfma", "-pthread", FMA_PEAK,
                           "-o", exe], capture_output=True).returncode != 0:
            return None
        out = subprocess.run([exe, str(threads)], capture_output=True, text=True).stdout
    best = None
    for line in out.splitlines():
        if line.startswith(f"threads {threads}:"):
            best = max(float(v.split()[0]) for v in line.split("FMA")[1:])
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batches", type=int, default=0, help="override train batches per rank")
    ap.add_argument("--smoke", action="store_true", help="1 rep, 6 batches, resnet18 only")
    ap.add_argument("--timeout", type=float, default=0,
                    help="seconds before a run counts as hung and is killed (0 = no limit)")
    ap.add_argument("--attempts", type=int, default=1, help="runs of a command before giving up")
    ap.add_argument("--json", default="")
    ap.add_argument("--print-cmd", metavar="CASE", choices=list(CASES),
                    help="print CASE's ddpipe command (one argument a line, store and cache under "
                         "--work) and the train GFLOP per image (a line '# gflop_per_image G'), "
                         "and exit")
    ap.add_argument("--work", default="/tmp/ddpipe-bench", help="work directory for --print-cmd")
    args = ap.parse_args()
    if args.print_cmd:
        case = args.print_cmd
        print("\n".join(ddpipe_cmd(case, args.batches or CASES[case][3], args.work)))
        print(f"# gflop_per_image {TRAIN_GFLOP_PER_IMAGE[CASES[case][2]]}")
        return 0
    if args.smoke:
        args.cases, args.reps, args.batches = ["resnet18"], 1, 6
        args.timeout, args.attempts = args.timeout or 120, max(args.attempts, 3)
    LIMITS.update(timeout=args.timeout or None, attempts=args.attempts)
    if not os.path.exists(PEER):
        print(f"SKIP: the peer {PEER} is not there (../shared is absent)")
        return 0
    if not os.path.exists(DDPIPE):
        sys.exit(f"bench: build ddpipe first ({DDPIPE} missing)")
    peak = None if args.smoke else peak_gflops(2)
    if peak:
        print(f"fp32 FMA peak, 2 threads: {peak:.1f} GFLOP/s", file=sys.stderr)
    records = []
    with tempfile.TemporaryDirectory(prefix="ddpipe-bench-") as work:
        for case in args.cases:
            batches = args.batches or CASES[case][3]
            for rep in range(args.reps):
                order = (run_ddpipe, run_peer) if rep % 2 == 0 else (run_peer, run_ddpipe)
                for fn in order:
                    r = fn(case, batches, work)
                    r["rep"] = rep
                    records.append(r)
                    print(f"  {case:22s} {r['tool']:7s} rep {rep}: {r['images_per_s']:8.1f} img/s",
                          file=sys.stderr, flush=True)
    print(f"\n{'case':22s} {'ddpipe img/s':>13s} {'peer img/s':>11s} {'ratio':>6s} "
          f"{'data wait':>10s} {'comm exposed':>13s} {'hidden':>7s} {'RSS/rank MB':>12s} {'peer RSS':>9s} "
          f"{'MFU ddpipe':>11s} {'MFU peer':>9s}")
    summary = []
    for case in args.cases:
        d = [r for r in records if r["case"] == case and r["tool"] == "ddpipe"]
        p = [r for r in records if r["case"] == case and r["tool"] == "peer"]
        dm = statistics.median(r["images_per_s"] for r in d)
        pm = statistics.median(r["images_per_s"] for r in p)
        wait = statistics.median(r["data_wait_s"] / r["epoch_s"] for r in d)
        comm = statistics.median(r["comm_exposed_s"] / r["epoch_s"] for r in d)
        # Share of the communication window (first bucket launched → all reduced) that the
        # backward pass hides.
        hidden = statistics.median(1 - r["comm_exposed_s"] / r["comm_s"] if r["comm_s"] else 1.0
                                   for r in d)
        rss = max(r["peak_rss_mb"] for r in d)
        prss = max((r["peak_rss_mb"] or 0) for r in p)
        # Model FLOP utilisation: model FLOPs per second over the machine's peak. Winograd
        # convolutions do fewer multiplications than the model's FLOP count, so ddpipe's can
        # exceed 100%.
        flop = TRAIN_GFLOP_PER_IMAGE[CASES[case][2]]
        mfu_d, mfu_p = (dm * flop / peak, pm * flop / peak) if peak else (None, None)
        summary.append({"case": case, "ddpipe_images_per_s": dm, "peer_images_per_s": pm,
                        "ratio": dm / pm, "data_wait_fraction": wait,
                        "comm_exposed_fraction": comm, "comm_hidden_fraction": hidden,
                        "ddpipe_peak_rss_mb": rss,
                        "peer_peak_rss_mb": prss, "train_gflop_per_image": flop,
                        "peak_gflops": peak, "ddpipe_mfu": mfu_d, "peer_mfu": mfu_p})
        mfu = f"{mfu_d:11.1%} {mfu_p:9.1%}" if peak else f"{'-':>11s} {'-':>9s}"
        print(f"{case:22s} {dm:13.1f} {pm:11.1f} {dm / pm:6.2f} {wait:10.2%} {comm:13.2%} "
              f"{hidden:7.1%} {rss:12.0f} {prss:9.0f} {mfu}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "runs": records,
                       "loadavg_end": os.getloadavg()}, f, indent=2)
    print("bench: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
