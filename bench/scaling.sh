#!/usr/bin/env bash
# Scaling study (issue 7): how much of the gradient allreduce does ddpipe hide behind backward
# once the link is slower than loopback? Two ranks, each in its own network namespace (a veth
# pair onto one bridge, as in tests/integration/netns_test.sh), each pinned to its own core
# (taskset -c, train.threads=1), train the torchvision-layout ResNet-18 on ddpipe's synthetic
# 3x32x32 data, batch 128 per rank. Both ranks' links are shaped on egress, on the namespace side
# of the veth, so each direction crosses exactly one shaper. Cases:
#   loopback        both ranks in the root namespace on 127.0.0.1 (the baseline)
#   netns           namespaces and bridge, no shaping
#   RATE            tbf rate RATE, no added delay                  (e.g. 10gbit, 1gbit, 100mbit)
#   RATE-DELAY      rate RATE and DELAY one-way latency (netem)    (e.g. 10gbit-0.1ms, 1gbit-1ms)
# A DELAY added on both ranks' egress is a one-way latency: the round trip is 2 x DELAY.
# Per case it prints step time, images/s, exposed communication (the time the optimizer step
# waits for the allreduce, measured by ddpipe), the slowdown against loopback, and the hidden
# fraction 1 - exposed / ideal, where ideal is the ring-allreduce cost of the gradients at the
# shaped rate: 2(N-1)/N * S/B + buckets * 2(N-1) * DELAY (docs/scaling.md).
#
# Usage (as root):
#   bench/scaling.sh                                     # the full study, 30 steps, 1 rep
#   bench/scaling.sh --reps 3 --json scaling.json        # what docs/scaling.md reports
#   bench/scaling.sh --cases loopback,1gbit-1ms --arch resnet-mini --steps 8   # quick check
#   bench/scaling.sh --model --from-json scaling.json    # extrapolate to 8, 32, 128 nodes
#   bench/scaling.sh --model --compute-ms 1200 --window-ms 800 --arch resnet18
# Options: --cases LIST (comma-separated; default: loopback,netns,10gbit,1gbit,10gbit-0.1ms,
#   10gbit-1ms,1gbit-0.1ms,1gbit-1ms), --arch A (resnet18|resnet18-cifar|resnet-mini), --steps N (30),
#   --reps R (1), --json FILE, --shaper auto|netem|netem+tbf (auto: netem+tbf), --cpus A,B
#   (cores of rank 0 and rank 1; 0,1), --keep (keep the work directory with every log).
# Environment: DDPIPE (binary; build/apps/ddpipe/ddpipe).
# Needs root, iproute2 (ip, tc) and taskset; prints SKIP and exits 0 without them. Delay cases
# need the kernel's sch_netem (CONFIG_NET_SCH_NETEM): without it they are reported as skipped.
# Cleans up every namespace, link and process it creates, also on failure and Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

DEFAULT_CASES=loopback,netns,10gbit,1gbit,10gbit-0.1ms,10gbit-1ms,1gbit-0.1ms,1gbit-1ms
CASES=$DEFAULT_CASES
ARCH=resnet18
STEPS=30
REPS=1
JSON=""
SHAPER=auto
CPUS=0,1
KEEP=0
MODEL=0
MODEL_ARGS=()
BATCH=128        # per rank
BUCKET_MB=4      # ddpipe's dist.bucket_mb default; the ideal comm model needs the bucket count

# ---------------------------------------------------------------------------------------------
# The Python half: parameter geometry, the link probe, the report and the cost model.
helper_src() {
  cat <<'PYEOF'
import json, math, os, socket, statistics, struct, sys, time

def param_sizes(arch, channels=3, classes=10, width=16):
    """Parameter sizes in ddpipe's registration order (src/model/model.cpp): conv1, bn1,
    layer1.., fc; a conv has no bias; a block with stride 2 or a width change has a 1x1
    downsample conv + BN."""
    if arch == "resnet18":
        widths, blocks, stem = [64, 128, 256, 512], [2, 2, 2, 2], 7
    elif arch == "resnet18-cifar":
        widths, blocks, stem = [64, 128, 256, 512], [2, 2, 2, 2], 3
    elif arch == "resnet-mini":
        widths, blocks, stem = [width, 2 * width, 4 * width], [1, 1, 1], 3
    else:
        sys.exit(f"scaling: unknown arch {arch}")
    sizes = [widths[0] * channels * stem * stem, widths[0], widths[0]]
    cin = widths[0]
    for s, (w, nb) in enumerate(zip(widths, blocks)):
        for b in range(nb):
            stride = 2 if (s > 0 and b == 0) else 1
            sizes += [w * cin * 9, w, w, w * w * 9, w, w]
            if stride != 1 or cin != w:
                sizes += [w * cin, w, w]
            cin = w
    sizes += [classes * cin, classes]
    return sizes

def geometry(arch, bucket_mb=4.0):
    """(parameters, buckets): ddpipe's DataParallel packs gradients in reverse registration
    order into buckets of bucket_mb (src/dist/data_parallel.cpp); one allreduce per bucket."""
    sizes = param_sizes(arch)
    cap = max(1, int(bucket_mb * 1024 * 1024 / 4))
    fill, buckets = cap, 0
    for n in reversed(sizes):
        if fill + n > cap and fill > 0:
            buckets += 1
            fill = 0
        fill += n
    return sum(sizes), buckets

def bits(rate):  # "10gbit" -> 1e10
    for suffix, mult in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)):
        if rate.endswith(suffix):
            return float(rate[: -len(suffix)]) * mult
    raise ValueError(rate)

def seconds(delay):  # "0.1ms" -> 1e-4
    for suffix, mult in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0)):
        if delay.endswith(suffix):
            return float(delay[: -len(suffix)]) * mult
    raise ValueError(delay)

def ring_allreduce_s(n, nbytes, bps, alpha, buckets):
    """Ring allreduce of nbytes over n ranks, one allreduce per bucket: every rank sends and
    receives 2(n-1)/n * S bytes; each of the 2(n-1) steps of every bucket pays the latency."""
    if n < 2:
        return 0.0
    return 2.0 * (n - 1) / n * nbytes * 8.0 / bps + buckets * 2.0 * (n - 1) * alpha

# ---- link probe: RTT (20 one-byte ping-pongs, median) and one-way throughput of a bulk send
def probe_server(port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", int(port)))
    srv.listen(1)
    c, _ = srv.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(1 << 20)
    while True:
        cmd = c.recv(1)
        if cmd in (b"", b"q"):
            return
        if cmd == b"p":
            c.sendall(b"p")
        elif cmd == b"d":
            hdr = b""
            while len(hdr) < 8:
                hdr += c.recv(8 - len(hdr))
            left = struct.unpack("!Q", hdr)[0]
            while left > 0:
                got = c.recv_into(buf, min(len(buf), left))
                if got == 0:
                    return
                left -= got
            c.sendall(b"k")

def probe_client(host, port, nbytes):
    deadline = time.time() + 15
    while True:
        try:
            s = socket.create_connection((host, int(port)), timeout=30)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts = []
    for _ in range(20):
        t0 = time.perf_counter()
        s.sendall(b"p")
        s.recv(1)
        rtts.append(time.perf_counter() - t0)
    rtt = statistics.median(rtts)
    nbytes = int(nbytes)
    data = bytes(nbytes)
    t0 = time.perf_counter()
    s.sendall(b"d" + struct.pack("!Q", nbytes))
    s.sendall(data)
    s.recv(1)
    dt = time.perf_counter() - t0
    s.sendall(b"q")
    s.close()
    # The reply costs half a round trip, the first byte's way out the other half.
    print(json.dumps({"rtt_ms": rtt * 1e3, "link_gbit_s": nbytes * 8 / max(dt - rtt, 1e-9) / 1e9,
                      "probe_bytes": nbytes}))

# ---- one run's record, from rank 0's epoch line and the published manifest
def record(case, rep, rate, delay, log0, store, probe, drops, steps, batch, arch, wall_s, qdisc=""):
    epoch = None
    with open(log0) as f:
        for line in f:
            if line.startswith("{") and '"event":"epoch"' in line:
                epoch = json.loads(line)
    if epoch is None:
        sys.exit(f"scaling: no epoch line in {log0}")
    params = None
    models = os.path.join(store, "models")
    for root, _, files in os.walk(models):
        if "manifest.json" in files:
            with open(os.path.join(root, "manifest.json")) as f:
                params = json.load(f).get("parameters")
    n_geo, buckets = geometry(arch, BUCKET_MB)
    r = {"case": case, "rep": int(rep), "rate": rate or None, "delay": delay or None,
         "arch": arch, "steps": int(steps), "batch_per_rank": int(batch), "world_size": 2,
         "parameters": params if params is not None else n_geo,
         "parameters_from": "manifest" if params is not None else "geometry",
         "buckets": buckets, "bucket_mb": BUCKET_MB,
         "steady_images_per_second": epoch["steady_images_per_second"],
         "images_per_second": epoch["images_per_second"],
         "train_seconds": epoch["train_seconds"],
         "comm_exposed_seconds": epoch["comm_exposed_seconds"],
         "data_wait_seconds": epoch["data_wait_seconds"],
         "peak_rss_mb_max_rank": epoch.get("peak_rss_mb_max_rank"),
         "qdisc_drops": int(drops), "wall_seconds": float(wall_s),
         "qdisc": [q.strip() for q in qdisc.split(";") if q.strip()]}
    if probe:
        r.update(json.loads(probe))
    print(json.dumps(r))

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def summarise(runs, case_order):
    out = []
    for case in case_order:
        rs = [r for r in runs if r["case"] == case]
        if not rs:
            continue
        if rs[0].get("skipped"):
            out.append({"case": case, "skipped": rs[0]["skipped"]})
            continue
        r0 = rs[0]
        n, batch, steps = r0["world_size"], r0["batch_per_rank"], r0["steps"]
        ips = med(r["steady_images_per_second"] for r in rs)
        exposed = med(r["comm_exposed_seconds"] for r in rs)
        train = med(r["train_seconds"] for r in rs)
        s = {"case": case, "reps": len(rs), "rate": r0["rate"], "delay": r0["delay"],
             "steady_images_per_second": ips,
             # steady_images_per_second counts both ranks' images; in one step every rank
             # trains `batch` images at the same time, so a step takes n * batch / ips.
             "step_ms": 1e3 * n * batch / ips,
             "train_seconds": train, "comm_exposed_seconds": exposed,
             "comm_exposed_fraction": exposed / train,
             "comm_exposed_ms_per_step": 1e3 * exposed / steps,
             "data_wait_fraction": med(r["data_wait_seconds"] / r["train_seconds"] for r in rs),
             "rtt_ms": med(r.get("rtt_ms") for r in rs),
             "link_gbit_s": med(r.get("link_gbit_s") for r in rs),
             "qdisc_drops": sum(r["qdisc_drops"] for r in rs),
             "gradient_bytes": 4 * r0["parameters"], "buckets": r0["buckets"]}
        if r0["rate"]:
            ideal = ring_allreduce_s(n, 4 * r0["parameters"], bits(r0["rate"]),
                                     seconds(r0["delay"]) if r0["delay"] else 0.0, r0["buckets"])
            s["ideal_comm_ms_per_step"] = 1e3 * ideal
            s["hidden_fraction"] = 1.0 - s["comm_exposed_ms_per_step"] / s["ideal_comm_ms_per_step"]
        out.append(s)
    # The baseline: loopback, else the unshaped namespaces; without either, no slowdown.
    base = next((s for s in out if s["case"] == "loopback" and "step_ms" in s), None) or \
        next((s for s in out if s["case"] == "netns" and "step_ms" in s), None)
    for s in out:
        if base and "step_ms" in s:
            s["baseline"] = base["case"]
            s["slowdown"] = s["step_ms"] / base["step_ms"]
            s["delta_step_ms"] = s["step_ms"] - base["step_ms"]
            if "ideal_comm_ms_per_step" in s:
                # The baseline also exposes some wait (rank skew: the allreduce ends when the
                # slower rank arrives; copies over loopback). Net of it, what the link exposes:
                net = max(0.0, s["comm_exposed_ms_per_step"] - base["comm_exposed_ms_per_step"])
                s["comm_exposed_net_ms_per_step"] = net
                s["hidden_net_fraction"] = 1.0 - net / s["ideal_comm_ms_per_step"]
                # The overlap window W for which exposed = max(0, ideal - W) (a lower bound
                # when nothing is exposed).
                s["overlap_window_ms"] = s["ideal_comm_ms_per_step"] - net
    return out

def fmt(x, spec, width):
    return f"{'-':>{width}}" if x is None else f"{x:{width}{spec}}"

def report(runs_file, case_list, json_out, meta_json):
    runs = [json.loads(l) for l in open(runs_file) if l.strip()]
    order = case_list.split(",")
    summary = summarise(runs, order)
    print(f"\n{'case':14s} {'RTT ms':>7s} {'link Gb/s':>9s} {'step ms':>8s} {'img/s':>7s} "
          f"{'exposed s':>9s} {'%epoch':>7s} {'exp ms/step':>11s} {'ideal ms':>9s} "
          f"{'hidden':>7s} {'hidden*':>7s} {'slowdown':>8s} {'drops':>6s}")
    for s in summary:
        if "skipped" in s:
            print(f"{s['case']:14s} skipped: {s['skipped']}")
            continue
        print(f"{s['case']:14s} {fmt(s['rtt_ms'], '.3f', 7)} {fmt(s['link_gbit_s'], '.2f', 9)} "
              f"{s['step_ms']:8.1f} {s['steady_images_per_second']:7.1f} "
              f"{s['comm_exposed_seconds']:9.3f} {s['comm_exposed_fraction']:7.1%} "
              f"{s['comm_exposed_ms_per_step']:11.1f} {fmt(s.get('ideal_comm_ms_per_step'), '.1f', 9)} "
              f"{fmt(s.get('hidden_fraction'), '.1%', 7)} {fmt(s.get('hidden_net_fraction'), '.1%', 7)} "
              f"{fmt(s.get('slowdown'), '.3f', 8)} "
              f"{s['qdisc_drops']:6d}")
    g = next((s for s in summary if "gradient_bytes" in s), None)
    if g:
        print(f"\nstep ms = 2 ranks x {runs[0]['batch_per_rank']} images / steady img/s; "
              f"exposed = time optimizer steps waited for the allreduce (rank 0, all "
              f"{runs[0]['steps']} steps), %epoch = exposed / train_seconds;\nideal = ring "
              f"allreduce of S = {g['gradient_bytes']:,} gradient bytes in {g['buckets']} "
              f"buckets at the shaped rate and delay; hidden = 1 - exposed/ideal;\nhidden* = "
              f"1 - (exposed - baseline's exposed)/ideal (the baseline's exposed wait is rank "
              f"skew, not link); slowdown = step ms / {g.get('baseline', 'baseline (none run)')} "
              f"step ms.")
    if json_out:
        doc = {"meta": json.loads(meta_json), "summary": summary, "runs": runs}
        with open(json_out, "w") as f:
            json.dump(doc, f, indent=2)
        print(f"wrote {json_out}")

def model(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="scaling.sh --model",
        description="per-step time = compute + max(0, comm - window), "
                    "comm = 2(N-1)/N * S/B + buckets * 2(N-1) * alpha")
    ap.add_argument("--from-json", help="a study's --json: compute and window from it")
    ap.add_argument("--compute-ms", type=float, help="compute time per step per rank")
    ap.add_argument("--window-ms", type=float,
                    help="communication the step can hide behind backward, per step")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--bytes", type=float, help="gradient bytes S (default: from --arch)")
    ap.add_argument("--buckets", type=int, help="allreduces per step (default: from --arch)")
    ap.add_argument("--bandwidth", default="1gbit,10gbit", help="link rates B")
    ap.add_argument("--latency", default="0.1ms,1ms", help="one-way latencies alpha")
    ap.add_argument("--nodes", default="2,8,32,128")
    ap.add_argument("--batch", type=int, default=128, help="images per rank per step")
    a = ap.parse_args(argv)
    params, buckets = geometry(a.arch, BUCKET_MB)
    S = a.bytes or 4.0 * params
    k = a.buckets or buckets
    C, W = a.compute_ms, a.window_ms
    src = "given"
    if a.from_json:
        doc = json.load(open(a.from_json))
        summ = {s["case"]: s for s in doc["summary"] if "step_ms" in s}
        base = summ.get("loopback") or summ.get("netns")
        if base is None:
            sys.exit("scaling --model: --from-json needs a loopback (or netns) case")
        # compute: the baseline's step (what a link that exposes nothing more would give).
        if C is None:
            C = base["step_ms"]
        # window: from the shaped case with the most communication (the slowest link), where
        # the link most surely outlasts backward: W = ideal - net exposed. If even that case
        # exposes nothing (net of the baseline), W is at least its ideal: a lower bound.
        shaped = [s for s in summ.values() if "overlap_window_ms" in s]
        if W is None and shaped:
            worst = max(shaped, key=lambda s: s["ideal_comm_ms_per_step"])
            ideal, net = worst["ideal_comm_ms_per_step"], worst["comm_exposed_net_ms_per_step"]
            if net > ideal:
                print(f"warning: {worst['case']} exposes {net:.1f} ms/step net of the baseline, more "
                      f"than its ideal {ideal:.1f} ms (noise, rank skew, or a link slower than "
                      f"shaped): window clamped to 0", file=sys.stderr)
            W = max(0.0, worst["overlap_window_ms"])
            src = f"compute = {base['case']} step, window from {worst['case']}"
            if net <= 0.05 * ideal:
                src += f"; it exposed nothing, so the window is at least {W:.1f} ms (lower bound)"
        S = a.bytes or float(next(iter(summ.values()))["gradient_bytes"])
        k = a.buckets or next(iter(summ.values()))["buckets"]
    if C is None or W is None:
        sys.exit("scaling --model: give --compute-ms and --window-ms, or --from-json FILE "
                 "with a shaped case that exposes communication")
    print(f"compute {C:.1f} ms/step, overlap window {W:.1f} ms/step [{src}]; "
          f"S = {S:,.0f} bytes in {k} buckets; {a.batch} images per rank per step")
    print(f"{'B':>7s} {'alpha':>6s} {'N':>4s} {'comm ms':>9s} {'exposed ms':>10s} "
          f"{'step ms':>9s} {'img/s total':>11s} {'efficiency':>10s}")
    for b in a.bandwidth.split(","):
        for al in a.latency.split(","):
            for n in (int(x) for x in a.nodes.split(",")):
                comm = 1e3 * ring_allreduce_s(n, S, bits(b), seconds(al), k)
                exposed = max(0.0, comm - W)
                step = C + exposed
                print(f"{b:>7s} {al:>6s} {n:4d} {comm:9.1f} {exposed:10.1f} {step:9.1f} "
                      f"{n * a.batch / step * 1e3:11.0f} {C / step:10.1%}")

BUCKET_MB = float(os.environ.get("SCALING_BUCKET_MB", "4"))
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "server":
    probe_server(*args)
elif cmd == "client":
    probe_client(*args)
elif cmd == "record":
    record(*args)
elif cmd == "report":
    report(*args)
elif cmd == "progress":  # the last run, one line
    r = json.loads(open(args[0]).read().splitlines()[-1])
    print(f"  {r['case']:14s} rep {r['rep']}: {r['steady_images_per_second']:7.1f} img/s, "
          f"exposed comm {r['comm_exposed_seconds']:.3f} s of {r['train_seconds']:.2f} s, "
          f"qdisc drops {r['qdisc_drops']}")
elif cmd == "model":
    model(args)
elif cmd == "geometry":
    print(*geometry(args[0], BUCKET_MB))
else:
    sys.exit(f"scaling helper: unknown command {cmd}")
PYEOF
}
helper() { "$PY" -c "$(helper_src)" "$@"; }

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --cases) CASES=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    --shaper) SHAPER=$2; shift 2 ;;
    --cpus) CPUS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --model) MODEL=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) if [[ $MODEL -eq 1 ]]; then MODEL_ARGS+=("$1"); shift
       else echo "scaling: unknown option $1 (--help)" >&2; exit 2; fi ;;
  esac
done
export SCALING_BUCKET_MB=$BUCKET_MB

if [[ $MODEL -eq 1 ]]; then
  [[ " ${MODEL_ARGS[*]} " == *" --arch "* ]] || MODEL_ARGS+=(--arch "$ARCH")
  helper model "${MODEL_ARGS[@]}"
  exit 0
fi

[[ $STEPS =~ ^[0-9]+$ && $STEPS -ge 6 ]] ||
  { echo "scaling: --steps must be >= 6 (ddpipe's steady state starts after 5 steps)" >&2; exit 2; }
[[ $REPS =~ ^[0-9]+$ && $REPS -ge 1 ]] || { echo "scaling: --reps must be >= 1" >&2; exit 2; }
case $SHAPER in auto|netem|netem+tbf) ;; *) echo "scaling: --shaper auto|netem|netem+tbf" >&2; exit 2 ;; esac
case $ARCH in resnet18|resnet18-cifar|resnet-mini) ;; *) echo "scaling: unknown --arch $ARCH" >&2; exit 2 ;; esac
IFS=, read -r CPU0 CPU1 <<<"$CPUS"
CPU_OF=("$CPU0" "$CPU1")

# Case name -> kind (loopback|netns), RATE ("" = unshaped), DELAY ("" = none).
parse_case() {
  local c=$1 part
  C_KIND=netns C_RATE="" C_DELAY=""
  case $c in loopback) C_KIND=loopback; return 0 ;; netns) return 0 ;; esac
  IFS=- read -ra parts <<<"$c"
  for part in "${parts[@]}"; do
    if [[ $part =~ ^[0-9]+(\.[0-9]+)?[kmg]?bit$ ]]; then C_RATE=$part
    elif [[ $part =~ ^[0-9]+(\.[0-9]+)?(us|ms)$ ]]; then C_DELAY=$part
    else echo "scaling: bad case '$c' (loopback, netns, RATE, RATE-DELAY: 10gbit-0.1ms)" >&2; return 2
    fi
  done
}
NEED_NETNS=0
IFS=, read -ra CASE_LIST <<<"$CASES"
for c in "${CASE_LIST[@]}"; do
  parse_case "$c"
  [[ $C_KIND == netns ]] && NEED_NETNS=1
done

DDPIPE=$(realpath "${DDPIPE:-build/apps/ddpipe/ddpipe}")
[[ -x $DDPIPE ]] || { echo "scaling: $DDPIPE not built (scripts/build.sh ddpipe)" >&2; exit 2; }
if ! command -v taskset >/dev/null; then echo "SKIP: needs taskset (util-linux)"; exit 0; fi
if [[ $NEED_NETNS -eq 1 ]] && { [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null || ! command -v tc >/dev/null; }; then
  echo "SKIP: needs root, ip and tc (iproute2) to create and shape the hosts' links"
  exit 0
fi
[[ $(nproc) -ge 2 ]] || echo "scaling: warning: fewer than 2 cores; the ranks share one" >&2

P="dds$$"                 # unique prefix: interface names must stay under 16 characters
# shellcheck source=../scripts/lib/netns-hosts.sh
source "$(dirname "$0")/../scripts/lib/netns-hosts.sh"
NET=10.232.$(( $$ % 200 ))
MASTER="$NET.1"
PORT=$(( 29700 + $$ % 500 * 2 ))   # a new port per run (+2 each), no TIME_WAIT reuse
WORK=$(mktemp -d /tmp/ddpipe-scaling-XXXXXX)
PIDS=()
NETNS_UP=0
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $NETNS_UP -eq 1 ]]; then netns_hosts_down "$P" 2; fi
  if [[ $KEEP -eq 1 ]]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "scaling: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

NETEM=0
NETEM_WHY=""
if [[ $NEED_NETNS -eq 1 ]]; then
  NETNS_UP=1
  netns_hosts_up "$P" "$NET" 2
  echo "hosts: $NET.1 (rank 0, master), $NET.2 (rank 1) on bridge ${P}br; shaped on ${P}p0, ${P}p1"
  if NETEM_WHY=$(ip netns exec "${P}n0" tc qdisc add dev "${P}p0" root netem delay 1ms limit 100000 2>&1); then
    NETEM=1
    ip netns exec "${P}n0" tc qdisc del dev "${P}p0" root
  else
    NETEM_WHY="tc netem: ${NETEM_WHY:-failed} (the kernel lacks sch_netem, CONFIG_NET_SCH_NETEM)"
    echo "scaling: $NETEM_WHY: cases with a delay are skipped" >&2
  fi
fi

# tbf: a bucket of 1 ms at the rate (at least 128 KiB, two 64 KiB GSO packets) and room for
# 200 ms of queue, so that TCP, not the shaper, sets the pace and nothing is dropped.
tbf_args() {  # RATE
  local burst
  burst=$(awk -v r="$1" 'BEGIN { m = r ~ /gbit$/ ? 1e9 : r ~ /mbit$/ ? 1e6 : r ~ /kbit$/ ? 1e3 : 1;
    sub(/[kmg]?bit$/, "", r); b = r * m / 8 / 1000; if (b < 131072) b = 131072; printf "%d", b }')
  echo "tbf rate $1 burst $burst latency 200ms"
}
delay_us() { awk -v d="$1" 'BEGIN { m = d ~ /ms$/ ? 1000 : 1; sub(/(us|ms)$/, "", d); printf "%d", d * m }'; }

# Shapes the egress of rank i's interface, inside its namespace (the previous qdisc goes).
shape() {  # i RATE DELAY
  local i=$1 rate=$2 delay=$3 ns="${P}n$1" dev="${P}p$1"
  ip netns exec "$ns" tc qdisc del dev "$dev" root 2>/dev/null || true
  if [[ -n $delay && ( $SHAPER == netem || -z $rate ) ]]; then
    # shellcheck disable=SC2046
    ip netns exec "$ns" tc qdisc add dev "$dev" root netem delay "$(delay_us "$delay")us" \
      ${rate:+rate "$rate"} limit 100000
  elif [[ -n $delay ]]; then   # netem+tbf (auto): netem delays, its tbf child sets the rate
    ip netns exec "$ns" tc qdisc add dev "$dev" root handle 1: netem delay "$(delay_us "$delay")us" limit 100000
    # shellcheck disable=SC2046
    ip netns exec "$ns" tc qdisc add dev "$dev" parent 1:1 handle 10: $(tbf_args "$rate")
  elif [[ -n $rate && $SHAPER == netem ]]; then
    ip netns exec "$ns" tc qdisc add dev "$dev" root netem rate "$rate" limit 100000
  elif [[ -n $rate ]]; then
    # shellcheck disable=SC2046
    ip netns exec "$ns" tc qdisc add dev "$dev" root $(tbf_args "$rate")
  fi
}
unshape() { for i in 0 1; do ip netns exec "${P}n$i" tc qdisc del dev "${P}p$i" root 2>/dev/null || true; done; }
drops() {  # packets dropped by the shapers of both ranks since they were set up
  local n=0 d
  for i in 0 1; do
    d=$(ip netns exec "${P}n$i" tc -s qdisc show dev "${P}p$i" | grep -o 'dropped [0-9]*' | awk '{s += $2} END {print s + 0}')
    n=$(( n + d ))
  done
  echo "$n"
}


# Link probe from rank 0's host to rank 1's: RTT and bulk throughput (Python sockets, on the
# ranks' cores); writes one JSON line to $WORK/probe.json, or nothing if it fails.
probe() {  # kind RATE
  local kind=$1 rate=$2 nbytes=$(( 64 << 20 )) host=127.0.0.1 srv
  local in0=() in1=()
  if [[ -n $rate ]]; then   # about 0.25 s at the shaped rate, 4..64 MiB
    nbytes=$(awk -v r="$rate" 'BEGIN { m = r ~ /gbit$/ ? 1e9 : r ~ /mbit$/ ? 1e6 : r ~ /kbit$/ ? 1e3 : 1;
      sub(/[kmg]?bit$/, "", r); b = r * m / 8 * 0.25; if (b < 4194304) b = 4194304;
      if (b > 67108864) b = 67108864; printf "%d", b }')
  fi
  if [[ $kind == netns ]]; then in0=(ip netns exec "${P}n0"); in1=(ip netns exec "${P}n1"); host=$NET.2; fi
  PORT=$(( PORT + 2 ))
  : >"$WORK/probe.json"
  "${in1[@]}" taskset -c "$CPU1" "$PY" -c "$(helper_src)" server "$PORT" &
  srv=$!
  PIDS+=("$srv")
  if ! "${in0[@]}" taskset -c "$CPU0" "$PY" -c "$(helper_src)" client "$host" "$PORT" "$nbytes" \
       >"$WORK/probe.json" 2>"$WORK/probe.err"; then
    echo "scaling: warning: link probe failed: $(tail -n 1 "$WORK/probe.err")" >&2
    : >"$WORK/probe.json"
    kill -9 "$srv" 2>/dev/null || true
  fi
  wait "$srv" 2>/dev/null || true
  PIDS=()
}

JOB=(--set cache_dir="$WORK/cache" --set name=scaling --set data.format=synthetic
     --set data.name=scaling-synthetic --set data.channels=3 --set data.height=32
     --set data.width=32 --set data.train_size=$(( STEPS * 2 * BATCH )) --set data.test_size=256
     --set data.classes=10 --set model.arch="$ARCH" --set train.precision=fp32
     --set train.batch_size="$BATCH" --set train.epochs=1 --set train.max_steps_per_epoch="$STEPS"
     --set train.nesterov=false --set train.label_smoothing=0 --set train.threads=1 --set dist.nproc=2
     --set dist.bucket_mb="$BUCKET_MB" --set dist.timeout_s=120)

# Rank r of 2: in namespace r (netns) or the root namespace (loopback), pinned to its core.
start_rank() {  # kind rank store run_id
  local kind=$1 r=$2 store=$3 run=$4 master=$MASTER pre=()
  if [[ $kind == loopback ]]; then master=127.0.0.1; else pre=(ip netns exec "${P}n$r"); fi
  "${pre[@]}" taskset -c "${CPU_OF[$r]}" env MASTER_ADDR="$master" MASTER_PORT="$PORT" \
    WORLD_SIZE=2 RANK="$r" LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 DDPIPE_LOG_LEVEL=info \
    "$DDPIPE" train --store "$store" "${JOB[@]}" --set train.run_id="$run" \
    >"$WORK/$run.rank$r.log" 2>&1 &
  PIDS+=($!)
}

# Waits for every rank; the first that fails takes the others down at once.
wait_ranks() {
  local left=("${PIDS[@]}") pid rc failed=0 keep p
  while [[ ${#left[@]} -gt 0 ]]; do
    pid="" rc=0
    wait -n -p pid "${left[@]}" || rc=$?
    [[ -n $pid ]] || break
    keep=()
    for p in "${left[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    left=("${keep[@]}")
    if [[ $rc -ne 0 && $failed -eq 0 ]]; then
      failed=$rc
      for p in "${left[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    fi
  done
  PIDS=()
  return "$failed"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "scaling: $ARCH, batch $BATCH per rank, $STEPS steps, $REPS rep(s), ranks on cores $CPU0,$CPU1;" \
     "shaper $SHAPER; load average $load_start"
awk '$1 > 0.5 { print "scaling: warning: load average " $1 " - other jobs share the cores, step times will be noisy" }' /proc/loadavg >&2
RUNS="$WORK/runs.jsonl"
: >"$RUNS"
for rep in $(seq 0 $(( REPS - 1 ))); do
  for c in "${CASE_LIST[@]}"; do
    parse_case "$c"
    if [[ -n $C_DELAY && $NETEM -eq 0 ]]; then
      [[ $rep -gt 0 ]] || printf '{"case": "%s", "rep": 0, "skipped": "no netem in this kernel"}\n' "$c" >>"$RUNS"
      echo "  $c: skipped (no netem)" >&2
      continue
    fi
    run="$c.r$rep"
    qdisc=""
    if [[ $C_KIND == netns ]]; then
      for i in 0 1; do shape "$i" "$C_RATE" "$C_DELAY"; done
      qdisc=$(ip netns exec "${P}n0" tc qdisc show dev "${P}p0" | tr '\n' ';')
    fi
    probe "$C_KIND" "$C_RATE"
    store="$WORK/$run/store"
    taskset -c "$CPU0,$CPU1" "$DDPIPE" ingest --store "$store" "${JOB[@]}" >"$WORK/$run.ingest.log" 2>&1 ||
      { cat "$WORK/$run.ingest.log" >&2; exit 1; }
    PORT=$(( PORT + 2 ))
    t0=$(date +%s.%N)
    for r in 0 1; do start_rank "$C_KIND" "$r" "$store" "$run"; done
    if ! wait_ranks; then
      echo "scaling: case $c failed; the ranks' last lines:" >&2
      tail -n 15 "$WORK/$run".rank*.log >&2
      exit 1
    fi
    wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
    d=0
    [[ $C_KIND == netns ]] && d=$(drops)
    helper record "$c" "$rep" "$C_RATE" "$C_DELAY" "$WORK/$run.rank0.log" "$store" \
      "$(cat "$WORK/probe.json")" "$d" "$STEPS" "$BATCH" "$ARCH" "$wall" "$qdisc" >>"$RUNS"
    [[ $C_KIND == netns ]] && unshape
    helper progress "$RUNS" >&2
  done
done

meta=$(printf '{"arch": "%s", "steps": %d, "reps": %d, "batch_per_rank": %d, "world_size": 2, "cpus": "%s", "shaper": "%s", "netem": %s, "bucket_mb": %s, "kernel": "%s", "tcp_wmem": "%s", "tcp_rmem": "%s", "loadavg_start": "%s", "loadavg_end": "%s", "ddpipe": "%s", "date": "%s"}' \
  "$ARCH" "$STEPS" "$REPS" "$BATCH" "$CPUS" "$SHAPER" "$([[ $NETEM -eq 1 ]] && echo true || echo false)" \
  "$BUCKET_MB" "$(uname -r)" "$(tr '\t' ' ' </proc/sys/net/ipv4/tcp_wmem)" \
  "$(tr '\t' ' ' </proc/sys/net/ipv4/tcp_rmem)" "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "$DDPIPE" "$(date -u +%FT%TZ)")
helper report "$RUNS" "$CASES" "$JSON" "$meta"
echo "scaling: ok"
