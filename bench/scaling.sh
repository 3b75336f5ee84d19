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
#   bench/scaling.sh --model --from-json scaling.json    # extrapolate to 2..128 nodes, per mode
#   bench/scaling.sh --model --compute-ms 1200 --window-ms 800 --arch resnet18
#   bench/scaling.sh --cases loopback,1gbit --compression none,bf16,fp16,powersgd   # issue 21
#   bench/scaling.sh --model --arch resnet18 --compute-ms 250   # every compression mode, on paper
# Options: --cases LIST (comma-separated; default: loopback,netns,10gbit,1gbit,10gbit-0.1ms,
#   10gbit-1ms,1gbit-0.1ms,1gbit-1ms), --arch A (resnet18|resnet18-cifar|resnet-mini), --steps N (30),
#   --reps R (1), --json FILE, --shaper auto|netem|netem+tbf (auto: netem+tbf), --cpus A,B
#   (cores of rank 0 and rank 1; 0,1), --keep (keep the work directory with every log),
#   --compression LIST (none|bf16|fp16|powersgd, comma-separated; none): every case runs once
#   per mode, named CASE+MODE unless none, with --set dist.grad_compression=MODE on both ranks
#   (powersgd also dist.powersgd_start_step=0 and dist.powersgd_rank=R), --powersgd-rank R (1).
#   slowdown is against the same mode's loopback, "vs none" against loopback with mode none;
#   ideal counts the bytes and allreduces the mode sends (docs/scaling.md).
# --model options (bench/scaling.sh --model --help): --compute-ms, --window-ms, --from-json,
#   --compression, --powersgd-rank (a list there: 1,4), --powersgd-ms, --nodes, --bandwidth, ...
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
COMPRESSION=none
POWERSGD_RANK=1
COMPRESSION_SET=0
RANK_SET=0
MODEL=0
MODEL_ARGS=()
BATCH=128        # per rank
BUCKET_MB=4      # ddpipe's dist.bucket_mb default; the ideal comm model needs the bucket count

# ---------------------------------------------------------------------------------------------
# The Python half: parameter geometry, the link probe, the report and the cost model.
helper_src() {
  cat <<'PYEOF'
import json, math, os, socket, statistics, struct, sys, time

def param_shapes(arch, channels=3, classes=10, width=16):
    """Parameter shapes in ddpipe's registration order (src/model/model.cpp): conv1, bn1,
    layer1.., fc; a conv weight is [out, in, k, k] and has no bias; BN weight and bias are
    [C]; a block with stride 2 or a width change has a 1x1 downsample conv + BN; fc is
    [classes, in] and its bias [classes]."""
    if arch == "resnet18":
        widths, blocks, stem = [64, 128, 256, 512], [2, 2, 2, 2], 7
    elif arch == "resnet18-cifar":
        widths, blocks, stem = [64, 128, 256, 512], [2, 2, 2, 2], 3
    elif arch == "resnet-mini":
        widths, blocks, stem = [width, 2 * width, 4 * width], [1, 1, 1], 3
    else:
        sys.exit(f"scaling: unknown arch {arch}")
    w0 = widths[0]
    shapes = [(w0, channels, stem, stem), (w0,), (w0,)]
    cin = w0
    for s, (w, nb) in enumerate(zip(widths, blocks)):
        for b in range(nb):
            stride = 2 if (s > 0 and b == 0) else 1
            shapes += [(w, cin, 3, 3), (w,), (w,), (w, w, 3, 3), (w,), (w,)]
            if stride != 1 or cin != w:
                shapes += [(w, cin, 1, 1), (w,), (w,)]
            cin = w
    shapes += [(classes, cin), (classes,)]
    return shapes

def numel(shape):
    return math.prod(shape)

def param_sizes(arch, channels=3, classes=10, width=16):
    """Parameter sizes in ddpipe's registration order (param_shapes)."""
    return [numel(s) for s in param_shapes(arch, channels, classes, width)]

def bucket_layout(arch, bucket_mb=4.0):
    """ddpipe's DataParallel packs gradients in reverse registration order into buckets of
    bucket_mb of fp32 (src/dist/data_parallel.cpp); one allreduce per bucket. Returns the
    buckets, each a list of parameter shapes in the order they are packed."""
    cap = max(1, int(bucket_mb * 1024 * 1024 / 4))
    fill, buckets = cap, []
    for shape in reversed(param_shapes(arch)):
        n = numel(shape)
        if fill + n > cap and fill > 0:
            buckets.append([])
            fill = 0
        buckets[-1].append(shape)
        fill += n
    return buckets

def geometry(arch, bucket_mb=4.0):
    """(parameters, buckets)."""
    buckets = bucket_layout(arch, bucket_mb)
    return sum(numel(s) for b in buckets for s in b), len(buckets)

MODES = ("none", "bf16", "fp16", "powersgd")

def traffic(arch, mode, rank=1, bucket_mb=4.0, fp32_bytes=None, buckets=None):
    """What one rank feeds the allreduces in one step under dist.grad_compression=mode:
    {"bytes", "allreduces", ...}. none: S = 4 x parameters, one allreduce per bucket; bf16 and
    fp16: S/2, same allreduces; powersgd (PyTorch's powerSGD_hook): per bucket, a tensor of
    dim >= 2 viewed as n x m (n = shape[0]) is compressed when (n + m) r' 2 < n m, with
    r' = min(n, m, r): its P (n x r') and Q (m x r') are allreduced in fp32; the others go
    uncompressed in fp32; three allreduces per bucket (uncompressed, P, Q). fp32_bytes and
    buckets override S and the bucket count (powersgd's bytes always come from the shapes).
    Also the per-step work of the codec: matmul FLOPs and the matrix bytes they read."""
    layout = bucket_layout(arch, bucket_mb)
    params = sum(numel(s) for b in layout for s in b)
    S = float(fp32_bytes) if fp32_bytes else 4.0 * params
    k = buckets or len(layout)
    t = {"mode": mode, "rank": rank if mode == "powersgd" else None, "fp32_bytes": S,
         "buckets": k, "parameters": params}
    if mode == "none":
        t.update(bytes=S, allreduces=k)
    elif mode in ("bf16", "fp16"):
        t.update(bytes=S / 2, allreduces=k)
    elif mode == "powersgd":
        pq = unc = comp_numel = flops = 0
        n_comp = n_unc = 0
        for b in layout:
            for shape in b:
                if len(shape) >= 2:
                    n = shape[0]
                    m = numel(shape) // n
                    r = min(n, m, rank)
                    if (n + m) * r * 2 < n * m:
                        pq += (n + m) * r
                        comp_numel += n * m
                        # three products per step: P = M Q, Q = M^T P, and M ~ P Q^T
                        flops += 3 * 2 * n * m * r
                        n_comp += 1
                        continue
                unc += numel(shape)
                n_unc += 1
        t.update(bytes=4.0 * (pq + unc), allreduces=3 * k, pq_floats=pq, uncompressed_floats=unc,
                 compressed_numel=comp_numel, compressed_tensors=n_comp,
                 uncompressed_tensors=n_unc, matmul_flops=flops)
    else:
        sys.exit(f"scaling: unknown compression mode {mode} (none, bf16, fp16, powersgd)")
    return t

def codec_ms(t, gemm_gflops=100.0, mem_gbs=30.0):
    """Estimated compute of the codec per step on the rank's core, beyond what mode none does
    (none divides every gradient by N as well). bf16/fp16: the casts down and back, 12 bytes
    per gradient at mem_gbs. powersgd: three products per compressed n x m matrix (M Q,
    M^T P, P Q^T), each max(2 n m r FLOPs at gemm_gflops, reading M's 4 n m bytes at mem_gbs),
    plus P Q^T writing 4 n m bytes, plus error feedback over the whole bucket (add the error,
    keep a copy, subtract the approximation: 32 bytes per gradient) at mem_gbs. Orthogonalising
    P and the P and Q copies are O((n + m) r) and left out."""
    bw = mem_gbs * 1e9
    if t["mode"] in ("bf16", "fp16"):
        return 1e3 * 12.0 * t["parameters"] / bw
    if t["mode"] == "powersgd":
        cn = t["compressed_numel"]
        product = max(t["matmul_flops"] / 3 / (gemm_gflops * 1e9), 4.0 * cn / bw)
        return 1e3 * (3 * product + 4.0 * cn / bw + 32.0 * t["parameters"] / bw)
    return 0.0

def mode_of(name):
    """"1gbit+bf16" -> ("1gbit", "bf16"); "1gbit" -> ("1gbit", "none")."""
    case, _, mode = name.partition("+")
    return case, mode or "none"

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
def record(case, rep, rate, delay, log0, store, probe, drops, steps, batch, arch, wall_s, qdisc="",
           mode="none", psgd_rank="1"):
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
    name = case if mode == "none" else f"{case}+{mode}"
    r = {"case": name, "link_case": case, "mode": mode,
         "powersgd_rank": int(psgd_rank) if mode == "powersgd" else None,
         "rep": int(rep), "rate": rate or None, "delay": delay or None,
         "arch": arch, "steps": int(steps), "batch_per_rank": int(batch), "world_size": 2,
         "parameters": params if params is not None else n_geo,
         "parameters_from": "manifest" if params is not None else "geometry",
         "buckets": buckets, "bucket_mb": BUCKET_MB,
         "steady_images_per_second": epoch["steady_images_per_second"],
         "images_per_second": epoch["images_per_second"],
         "train_seconds": epoch["train_seconds"],
         "comm_exposed_seconds": epoch["comm_exposed_seconds"],
         "comm_seconds": epoch.get("comm_seconds"),
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
        link_case, mode = mode_of(case)
        n, batch, steps = r0["world_size"], r0["batch_per_rank"], r0["steps"]
        ips = med(r["steady_images_per_second"] for r in rs)
        exposed = med(r["comm_exposed_seconds"] for r in rs)
        train = med(r["train_seconds"] for r in rs)
        # What the mode sends: none from the manifest's parameter count, the others from the
        # architecture's shapes (traffic()).
        t = traffic(r0["arch"], mode, r0.get("powersgd_rank") or 1, r0["bucket_mb"],
                    fp32_bytes=4 * r0["parameters"], buckets=r0["buckets"])
        s = {"case": case, "link_case": link_case, "mode": mode,
             "powersgd_rank": r0.get("powersgd_rank"), "reps": len(rs),
             "rate": r0["rate"], "delay": r0["delay"],
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
             "gradient_bytes": 4 * r0["parameters"], "buckets": r0["buckets"],
             "sent_bytes": t["bytes"], "allreduces": t["allreduces"]}
        if r0["rate"]:
            ideal = ring_allreduce_s(n, t["bytes"], bits(r0["rate"]),
                                     seconds(r0["delay"]) if r0["delay"] else 0.0, t["allreduces"])
            s["ideal_comm_ms_per_step"] = 1e3 * ideal
            s["hidden_fraction"] = 1.0 - s["comm_exposed_ms_per_step"] / s["ideal_comm_ms_per_step"]
        out.append(s)
    # The baseline of each mode: its loopback case, else its unshaped namespaces; without
    # either, no slowdown. vs_none: against loopback (else netns) with mode none, the issue's
    # reference for the compression targets.
    def baseline(mode):
        sfx = "" if mode == "none" else f"+{mode}"
        return next((s for s in out if s["case"] == "loopback" + sfx and "step_ms" in s), None) or \
            next((s for s in out if s["case"] == "netns" + sfx and "step_ms" in s), None)
    ref = baseline("none")
    for s in out:
        if "step_ms" not in s:
            continue
        base = baseline(s["mode"])
        if ref:
            s["baseline_none"] = ref["case"]
            s["slowdown_vs_none"] = s["step_ms"] / ref["step_ms"]
        if base:
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
    w = max([14] + [len(s["case"]) for s in summary])
    print(f"\n{'case':{w}s} {'RTT ms':>7s} {'link Gb/s':>9s} {'step ms':>8s} {'img/s':>7s} "
          f"{'exposed s':>9s} {'%epoch':>7s} {'exp ms/step':>11s} {'ideal ms':>9s} "
          f"{'hidden':>7s} {'hidden*':>7s} {'slowdown':>8s} {'vs none':>7s} {'drops':>6s}")
    for s in summary:
        if "skipped" in s:
            print(f"{s['case']:{w}s} skipped: {s['skipped']}")
            continue
        print(f"{s['case']:{w}s} {fmt(s['rtt_ms'], '.3f', 7)} {fmt(s['link_gbit_s'], '.2f', 9)} "
              f"{s['step_ms']:8.1f} {s['steady_images_per_second']:7.1f} "
              f"{s['comm_exposed_seconds']:9.3f} {s['comm_exposed_fraction']:7.1%} "
              f"{s['comm_exposed_ms_per_step']:11.1f} {fmt(s.get('ideal_comm_ms_per_step'), '.1f', 9)} "
              f"{fmt(s.get('hidden_fraction'), '.1%', 7)} {fmt(s.get('hidden_net_fraction'), '.1%', 7)} "
              f"{fmt(s.get('slowdown'), '.3f', 8)} {fmt(s.get('slowdown_vs_none'), '.3f', 7)} "
              f"{s['qdisc_drops']:6d}")
    g = next((s for s in summary if "gradient_bytes" in s), None)
    if g:
        sent = {}
        for s in summary:
            if "sent_bytes" in s:
                sent.setdefault(s["mode"], (s["sent_bytes"], s["allreduces"]))
        sent_txt = "; ".join(f"{m} {b:,.0f} bytes in {k} allreduces" for m, (b, k) in sent.items())
        print(f"\nstep ms = 2 ranks x {runs[0]['batch_per_rank']} images / steady img/s; "
              f"exposed = time optimizer steps waited for the allreduce (rank 0, all "
              f"{runs[0]['steps']} steps), %epoch = exposed / train_seconds;\nideal = ring "
              f"allreduce of what the mode sends at the shaped rate and delay ({sent_txt}; "
              f"fp32 S = {g['gradient_bytes']:,} in {g['buckets']} buckets); hidden = 1 - "
              f"exposed/ideal;\nhidden* = 1 - (exposed - baseline's exposed)/ideal (the "
              f"baseline's exposed wait is rank skew, not link); slowdown = step ms / the same "
              f"mode's {g.get('baseline', 'baseline (none run)').partition('+')[0]} step ms; "
              f"vs none = step ms / {g.get('baseline_none', 'the mode-none baseline (none run)')} "
              f"step ms.")
    if json_out:
        doc = {"meta": json.loads(meta_json), "summary": summary, "runs": runs}
        with open(json_out, "w") as f:
            json.dump(doc, f, indent=2)
        print(f"wrote {json_out}")

def model(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="scaling.sh --model",
        description="per-step time = compute + codec + max(0, comm - window), comm = 2(N-1)/N * "
                    "S/B + allreduces * 2(N-1) * alpha, with S and the allreduces of each "
                    "gradient compression mode")
    ap.add_argument("--from-json", help="a study's --json: compute, window and codec from it")
    ap.add_argument("--compute-ms", type=float, help="compute time per step per rank")
    ap.add_argument("--window-ms", type=float,
                    help="communication the step can hide behind backward, per step")
    ap.add_argument("--window-frac", type=float, default=0.59,
                    help="without --window-ms or a window from --from-json: W = this x compute "
                         "(0.59: docs/scaling.md's 1gbit ResNet-18 run, 144.4 of 244.7 ms)")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--bytes", type=float, help="fp32 gradient bytes S (default: from --arch)")
    ap.add_argument("--buckets", type=int, help="gradient buckets k (default: from --arch)")
    ap.add_argument("--compression", default="none,bf16,fp16,powersgd",
                    help="modes, one table each (none, bf16, fp16, powersgd)")
    ap.add_argument("--powersgd-rank", default="1,4", help="PowerSGD ranks r, one table each")
    ap.add_argument("--powersgd-ms", type=float,
                    help="PowerSGD codec compute per step (default: measured in --from-json, "
                         "else estimated from --gemm-gflops and --mem-gbs)")
    ap.add_argument("--cast-ms", type=float,
                    help="bf16/fp16 cast compute per step (default: as --powersgd-ms)")
    ap.add_argument("--gemm-gflops", type=float, default=100.0,
                    help="matmul rate of the codec's estimate (dnnl_sgemm, one core: "
                         "docs/performance.md; torch::mm on the reference BLAS: about 1)")
    ap.add_argument("--mem-gbs", type=float, default=30.0,
                    help="bytes read + written per second by a pass over the gradients (a "
                         "numpy copy of 44.7 MB here: 29-31 GB/s)")
    ap.add_argument("--bandwidth", default="1gbit,10gbit,25gbit", help="link rates B")
    ap.add_argument("--latency", default="0.1ms,1ms", help="one-way latencies alpha")
    ap.add_argument("--nodes", default="2,4,8,16,32,64,128")
    ap.add_argument("--batch", type=int, default=128, help="images per rank per step")
    ap.add_argument("--long", action="store_true",
                    help="one row per B, alpha and N, with comm and exposed ms")
    a = ap.parse_args(argv)
    S, k = a.bytes, a.buckets
    C, W = a.compute_ms, a.window_ms
    src = "given"
    summ = {}
    if a.from_json:
        doc = json.load(open(a.from_json))
        summ = {s["case"]: s for s in doc["summary"] if "step_ms" in s}
        none = {c: s for c, s in summ.items() if s.get("mode", "none") == "none"}
        base = none.get("loopback") or none.get("netns")
        if base is None:
            sys.exit("scaling --model: --from-json needs a loopback (or netns) case")
        # compute: the baseline's step (what a link that exposes nothing more would give).
        if C is None:
            C = base["step_ms"]
        # window: from the shaped case (mode none) with the most communication (the slowest
        # link), where the link most surely outlasts backward: W = ideal - net exposed. If even
        # that case exposes nothing (net of the baseline), W is at least its ideal: a lower bound.
        shaped = [s for s in none.values() if "overlap_window_ms" in s]
        src = f"compute = {base['case']} step"
        if W is None and shaped:
            worst = max(shaped, key=lambda s: s["ideal_comm_ms_per_step"])
            ideal, net = worst["ideal_comm_ms_per_step"], worst["comm_exposed_net_ms_per_step"]
            if net > ideal:
                print(f"warning: {worst['case']} exposes {net:.1f} ms/step net of the baseline, more "
                      f"than its ideal {ideal:.1f} ms (noise, rank skew, or a link slower than "
                      f"shaped): window clamped to 0", file=sys.stderr)
            W = max(0.0, worst["overlap_window_ms"])
            src += f", window from {worst['case']}"
            if net <= 0.05 * ideal:
                src += f"; it exposed nothing, so the window is at least {W:.1f} ms (lower bound)"
        S = S or float(base["gradient_bytes"])
        k = k or base["buckets"]
    if C is None:
        sys.exit("scaling --model: give --compute-ms, or --from-json FILE")
    if W is None:
        W = a.window_frac * C
        src += f"; window = {a.window_frac:g} x compute (--window-frac; give --window-ms to set it)"
    variants = []
    for mode in a.compression.split(","):
        if mode == "powersgd":
            variants += [(mode, int(r)) for r in a.powersgd_rank.split(",")]
        elif mode in MODES:
            variants.append((mode, None))
        else:
            sys.exit(f"scaling --model: unknown compression mode {mode} ({', '.join(MODES)})")
    rows = []
    for mode, rank in variants:
        t = traffic(a.arch, mode, rank or 1, BUCKET_MB, fp32_bytes=S, buckets=k)
        label = mode if rank is None else f"{mode} r={rank}"
        given = a.powersgd_ms if mode == "powersgd" else a.cast_ms if mode != "none" else 0.0
        measured = None
        for c in ("loopback", "netns"):
            m = summ.get(f"{c}+{mode}")
            if mode == "none" or m is None or (rank is not None and m.get("powersgd_rank") != rank):
                continue
            if summ.get(c):
                measured = (max(0.0, m["step_ms"] - summ[c]["step_ms"]),
                            f"measured: {m['case']} step - {c} step")
            break
        if given is not None:
            codec, how = given, "given" if mode != "none" else ""
        elif measured:
            codec, how = measured
        else:
            codec = codec_ms(t, a.gemm_gflops, a.mem_gbs)
            how = f"estimate at {a.gemm_gflops:g} GFLOP/s, {a.mem_gbs:g} GB/s"
        rows.append((label, t, codec, how))
    print(f"{a.arch}: compute {C:.1f} ms/step, overlap window {W:.1f} ms/step [{src}]; "
          f"{a.batch} images per rank per step")
    print(f"{'mode':13s} {'bytes/step':>12s} {'of fp32':>8s} {'allreduces':>10s} {'codec ms':>9s}")
    for label, t, codec, how in rows:
        print(f"{label:13s} {t['bytes']:12,.0f} {t['bytes'] / t['fp32_bytes']:8.2%} "
              f"{t['allreduces']:10d} {codec:9.1f}  {how}".rstrip())
    bands = a.bandwidth.split(",")
    lats = a.latency.split(",")
    nodes = [int(x) for x in a.nodes.split(",")]
    for label, t, codec, how in rows:
        def step(n, b, al):
            comm = 1e3 * ring_allreduce_s(n, t["bytes"], bits(b), seconds(al), t["allreduces"])
            exposed = max(0.0, comm - W)
            return comm, exposed, C + codec + exposed
        print(f"\n{label}: {t['bytes']:,.0f} bytes in {t['allreduces']} allreduces per step, "
              f"codec {codec:.1f} ms; step ms and efficiency (compute / step)")
        if a.long:
            print(f"{'B':>7s} {'alpha':>6s} {'N':>4s} {'comm ms':>9s} {'exposed ms':>10s} "
                  f"{'step ms':>9s} {'img/s total':>11s} {'efficiency':>10s}")
            for b in bands:
                for al in lats:
                    for n in nodes:
                        comm, exposed, s = step(n, b, al)
                        print(f"{b:>7s} {al:>6s} {n:4d} {comm:9.1f} {exposed:10.1f} {s:9.1f} "
                              f"{n * a.batch / s * 1e3:11.0f} {C / s:10.1%}")
            continue
        print(f"{'alpha':>6s} {'N':>4s}" + "".join(f"{b:>16s}" for b in bands))
        for al in lats:
            for n in nodes:
                cells = "".join(f"{s:9.1f} {C / s:6.1%}" for s in
                                (step(n, b, al)[2] for b in bands))
                print(f"{al:>6s} {n:4d}{cells}")

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
    import signal
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # bench/scaling.sh --model ... | head
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
    --compression) COMPRESSION=$2; COMPRESSION_SET=1; shift 2 ;;
    --powersgd-rank) POWERSGD_RANK=$2; RANK_SET=1; shift 2 ;;
    --model) MODEL=1; shift ;;
    -h|--help) if [[ $MODEL -eq 1 ]]; then MODEL_ARGS+=("$1"); shift; else usage; exit 0; fi ;;
    *) if [[ $MODEL -eq 1 ]]; then MODEL_ARGS+=("$1"); shift
       else echo "scaling: unknown option $1 (--help)" >&2; exit 2; fi ;;
  esac
done
export SCALING_BUCKET_MB=$BUCKET_MB

if [[ $MODEL -eq 1 ]]; then
  [[ " ${MODEL_ARGS[*]} " == *" --arch "* ]] || MODEL_ARGS+=(--arch "$ARCH")
  [[ $COMPRESSION_SET -eq 0 ]] || MODEL_ARGS+=(--compression "$COMPRESSION")
  [[ $RANK_SET -eq 0 ]] || MODEL_ARGS+=(--powersgd-rank "$POWERSGD_RANK")
  helper model "${MODEL_ARGS[@]}"
  exit 0
fi

[[ $STEPS =~ ^[0-9]+$ && $STEPS -ge 6 ]] ||
  { echo "scaling: --steps must be >= 6 (ddpipe's steady state starts after 5 steps)" >&2; exit 2; }
[[ $REPS =~ ^[0-9]+$ && $REPS -ge 1 ]] || { echo "scaling: --reps must be >= 1" >&2; exit 2; }
case $SHAPER in auto|netem|netem+tbf) ;; *) echo "scaling: --shaper auto|netem|netem+tbf" >&2; exit 2 ;; esac
case $ARCH in resnet18|resnet18-cifar|resnet-mini) ;; *) echo "scaling: unknown --arch $ARCH" >&2; exit 2 ;; esac
[[ $POWERSGD_RANK =~ ^[1-9][0-9]*$ ]] || { echo "scaling: --powersgd-rank must be one integer >= 1" >&2; exit 2; }
IFS=, read -ra MODE_LIST <<<"$COMPRESSION"
for m in "${MODE_LIST[@]}"; do
  case $m in none|bf16|fp16|powersgd) ;; *) echo "scaling: unknown --compression mode '$m' (none, bf16, fp16, powersgd)" >&2; exit 2 ;; esac
done
# The --set options of a mode, for both ranks; none adds nothing (the existing fp32 path).
mode_sets() {  # MODE
  MODE_SETS=()
  [[ $1 == none ]] && return 0
  MODE_SETS=(--set dist.grad_compression="$1")
  [[ $1 == powersgd ]] && MODE_SETS+=(--set dist.powersgd_start_step=0 --set dist.powersgd_rank="$POWERSGD_RANK")
  return 0
}
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
REPORT_CASES=""   # every case once per mode, in run order: 1gbit, 1gbit+bf16, ...
for c in "${CASE_LIST[@]}"; do
  parse_case "$c"
  [[ $C_KIND == netns ]] && NEED_NETNS=1
  for m in "${MODE_LIST[@]}"; do
    if [[ $m == none ]]; then REPORT_CASES+="${REPORT_CASES:+,}$c"; else REPORT_CASES+="${REPORT_CASES:+,}$c+$m"; fi
  done
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
    "$DDPIPE" train --store "$store" "${JOB[@]}" "${MODE_SETS[@]}" --set train.run_id="$run" \
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
     "compression $COMPRESSION$([[ ,$COMPRESSION, == *,powersgd,* ]] && echo " (rank $POWERSGD_RANK)");" \
     "shaper $SHAPER; load average $load_start"
awk '$1 > 0.5 { print "scaling: warning: load average " $1 " - other jobs share the cores, step times will be noisy" }' /proc/loadavg >&2
RUNS="$WORK/runs.jsonl"
: >"$RUNS"
for rep in $(seq 0 $(( REPS - 1 ))); do
  for c in "${CASE_LIST[@]}"; do
    parse_case "$c"
    if [[ -n $C_DELAY && $NETEM -eq 0 ]]; then
      for m in "${MODE_LIST[@]}"; do
        name=$c; [[ $m == none ]] || name="$c+$m"
        [[ $rep -gt 0 ]] || printf '{"case": "%s", "rep": 0, "skipped": "no netem in this kernel"}\n' "$name" >>"$RUNS"
      done
      echo "  $c: skipped (no netem)" >&2
      continue
    fi
    qdisc=""
    if [[ $C_KIND == netns ]]; then
      for i in 0 1; do shape "$i" "$C_RATE" "$C_DELAY"; done
      qdisc=$(ip netns exec "${P}n0" tc qdisc show dev "${P}p0" | tr '\n' ';')
    fi
    probe "$C_KIND" "$C_RATE"   # once per case: every mode runs on the same shaped link
    drops_before=0
    for m in "${MODE_LIST[@]}"; do
      mode_sets "$m"
      name=$c; [[ $m == none ]] || name="$c+$m"
      run="$c.r$rep"; [[ $m == none ]] || run="${c}_$m.r$rep"   # a run id takes no '+'
      store="$WORK/$run/store"
      taskset -c "$CPU0,$CPU1" "$DDPIPE" ingest --store "$store" "${JOB[@]}" >"$WORK/$run.ingest.log" 2>&1 ||
        { cat "$WORK/$run.ingest.log" >&2; exit 1; }
      PORT=$(( PORT + 2 ))
      t0=$(date +%s.%N)
      for r in 0 1; do start_rank "$C_KIND" "$r" "$store" "$run"; done
      if ! wait_ranks; then
        echo "scaling: case $name failed; the ranks' last lines:" >&2
        tail -n 15 "$WORK/$run".rank*.log >&2
        exit 1
      fi
      wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
      d=0
      if [[ $C_KIND == netns ]]; then   # the shapers' counters run over every mode of the case
        d=$(drops); d=$(( d - drops_before )); drops_before=$(( drops_before + d ))
      fi
      helper record "$c" "$rep" "$C_RATE" "$C_DELAY" "$WORK/$run.rank0.log" "$store" \
        "$(cat "$WORK/probe.json")" "$d" "$STEPS" "$BATCH" "$ARCH" "$wall" "$qdisc" \
        "$m" "$POWERSGD_RANK" >>"$RUNS"
      helper progress "$RUNS" >&2
    done
    [[ $C_KIND == netns ]] && unshape
  done
done

meta=$(printf '{"arch": "%s", "steps": %d, "reps": %d, "batch_per_rank": %d, "world_size": 2, "cpus": "%s", "shaper": "%s", "netem": %s, "bucket_mb": %s, "compression": "%s", "powersgd_rank": %d, "kernel": "%s", "tcp_wmem": "%s", "tcp_rmem": "%s", "loadavg_start": "%s", "loadavg_end": "%s", "ddpipe": "%s", "date": "%s"}' \
  "$ARCH" "$STEPS" "$REPS" "$BATCH" "$CPUS" "$SHAPER" "$([[ $NETEM -eq 1 ]] && echo true || echo false)" \
  "$BUCKET_MB" "$COMPRESSION" "$POWERSGD_RANK" "$(uname -r)" "$(tr '\t' ' ' </proc/sys/net/ipv4/tcp_wmem)" \
  "$(tr '\t' ' ' </proc/sys/net/ipv4/tcp_rmem)" "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "$DDPIPE" "$(date -u +%FT%TZ)")
helper report "$RUNS" "$REPORT_CASES" "$JSON" "$meta"
echo "scaling: ok"
