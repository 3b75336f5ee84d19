#!/usr/bin/env python3
"""Sorts a perf profile of ddpipe's training into categories (bench/profile.sh runs this).

  profile_summary.py calibrate-workload MARKS            # run under perf by profile.sh
  profile_summary.py calibrate PERF_DATA MARKS OUT.json  # which libtorch functions each op runs
  profile_summary.py summarize --perf-data P --log L --calibration C.json --case NAME \
      --root-pid PID --gflop-per-image G --peak-gflops X [--freq F] [--json OUT] [--jit-maps DIR]
  profile_summary.py table SUMMARY.json...               # one Markdown table of every case

Categories are decided per sample from its leaf symbol (perf report --no-children --sort
dso,symbol), in this order:
  conv/GEMM kernels   oneDNN JIT kernels (convolution, Winograd, brgemm, sgemm), reference or MKL
                      sgemm. oneDNN's JIT code has no symbol of its own: profile.sh sets
                      DNNL_JIT_PROFILE=2, so oneDNN writes /tmp/perf-PID.map and perf names the
                      kernels. JIT code perf still cannot name ([JIT] or //anon addresses with no
                      name) is counted here too, since oneDNN is the only JIT in the process
  batch norm          at::native batch_norm kernels
  elementwise/act.    ReLU, add, threshold_backward, pooling, loss, reductions, fills
  copies/reorders     memcpy/memmove, oneDNN reorders and copy kernels, at::copy_, contiguous, cat
  optimizer           ddpipe's fused SGD
  allocator           malloc/free/tcmalloc, page faults and page clearing in the kernel
  communication       Gloo, TCP/loopback in the kernel, socket syscalls
  data loading        ddpipe's loader, augmentation, decoding
  waiting/idle        futex, scheduler, poll/epoll, spinning in a thread pool
  other               the rest
Debian strips libtorch_cpu.so's internal symbols: most ATen CPU kernels show as bare addresses.
`calibrate` names them: profile.sh runs each ATen op that ddpipe's ResNets use alone under perf
(calibrate-workload, fp32 and bf16, channels-last), and every libtorch function (start address
from the library's .eh_frame_hdr) sampled while an op ran is labelled with that op's category.
Addresses that stay unlabelled count as "other (unnamed libtorch)".
"""
import argparse
import bisect
import collections
import datetime
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time

PERF = "/usr/bin/perf"
CATEGORIES = ["conv/GEMM kernels", "batch norm", "elementwise/activation", "copies/reorders",
              "optimizer", "allocator", "communication", "data loading", "waiting/idle", "other"]

# ------------------------------------------------------------------------------------------------
# Function start addresses of a stripped ELF library, from .eh_frame_hdr's binary-search table.


def _read_encoded(buf, off, enc, base):
    fmt = {0x03: "<I", 0x0b: "<i", 0x04: "<Q", 0x0c: "<q", 0x02: "<H", 0x0a: "<h"}[enc & 0x0f]
    v = struct.unpack_from(fmt, buf, off)[0]
    size = struct.calcsize(fmt)
    if enc & 0x70 == 0x10:  # pcrel
        v += base + off
    return v, off + size


def function_starts(path):
    """Sorted start addresses (ELF virtual addresses) of the functions in `path`."""
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True).stdout
    m = re.search(r"\.eh_frame_hdr\s+PROGBITS\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", out)
    if not m:
        return []
    addr, off, size = (int(x, 16) for x in m.groups())
    with open(path, "rb") as f:
        f.seek(off)
        hdr = f.read(size)
    _, ptr_enc, cnt_enc, tab_enc = hdr[0], hdr[1], hdr[2], hdr[3]
    p = 4
    _, p = _read_encoded(hdr, p, ptr_enc, addr)
    count, p = _read_encoded(hdr, p, cnt_enc, addr)
    if tab_enc != 0x3b:  # datarel | sdata4: what GNU ld writes
        return []
    starts = struct.unpack_from("<%di" % (2 * count), hdr, p)[0::2]
    return sorted(addr + s for s in starts)


class FunctionIndex:
    def __init__(self):
        self.cache = {}

    def key(self, dso_path, address):
        """'lib+0xSTART' of the function holding `address` (an address inside the file)."""
        starts = self.cache.get(dso_path)
        if starts is None:
            starts = function_starts(dso_path) if os.path.exists(dso_path) else []
            self.cache[dso_path] = starts
        i = bisect.bisect_right(starts, address) - 1
        start = starts[i] if i >= 0 else address
        return "%s+0x%x" % (os.path.basename(dso_path), start)


# ------------------------------------------------------------------------------------------------
# perf report, parsed.


def perf_report(perf_data, extra, sort="dso,sym"):
    """Rows (samples, dso, symbol) of `perf report --no-children --sort SORT`."""
    cmd = [PERF, "report", "-i", perf_data, "--no-children", "--sort", sort, "--stdio", "-g",
           "none", "-n", "--percent-limit", "0", "--full-source-path", "-v", "-t", "\t"] + extra
    out = subprocess.run(cmd, capture_output=True, text=True, errors="replace").stdout
    rows = []
    for line in out.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = [x.strip() for x in line.split("\t")]
        if len(parts) < 3:
            continue
        try:
            n = int(parts[1])
        except ValueError:
            continue
        rows.append([n] + parts[2:])
    return rows


def split_sym(sym):
    """perf's '[.] name' / '[k] name' → (kernel?, name)."""
    m = re.match(r"^(?:0x[0-9a-f]+\s+\S\s+)?\[(.)\]\s+(.*)", sym)
    if not m:
        return False, sym
    return m.group(1) == "k", m.group(2)


def unnamed_address(name):
    m = re.match(r"^0x([0-9a-f]+)$", name.split()[0]) if name else None
    return int(m.group(1), 16) if m else None


# ------------------------------------------------------------------------------------------------
# Categories.

RULES = [  # (category, regex on "dso symbol"), first match wins
    # oneDNN's transposes inside bf16 convolutions and sgemm's packing copies: copies, although
    # the convolution or GEMM primitive runs them.
    ("copies/reorders", r"^jit_trans|_trans_|copy_[ab][nt]_kern|gemm_.*copy|_copy_kern"),
    ("conv/GEMM kernels", r"conv|wino|gemm|brgemm|brg_|brdgmm|_kern\b|jit_avx512_core_amx|"
                          r"gemv|\bdot\b|sgemm|dgemm|ip_|inner_product|matmul|\bmm\b|addmm"),
    ("batch norm", r"batch_norm|batchnorm|bnorm|_bn_"),
    ("copies/reorders", r"memcpy|memmove|reorder|copy_|\bcopy\b|_copy|contiguous|transpose|"
                        r"permute|\bcat\b|_cat_|clone|cvt|convert|copy_at|copy_bt|_to_copy|"
                        r"index_put|gather|scatter"),
    ("elementwise/activation", r"relu|threshold|eltwise|add_|\badd\b|mul_|\bmul\b|div|sub|"
                               r"pool|softmax|nll_loss|cross_entropy|sum|mean|reduce|fill|"
                               r"zero_|sigmoid|tanh|exp|sqrt|binary|unary|vectorized|Vectorized|"
                               r"where|clamp|sign"),
]
OPTIMIZER = r"FusedSGD|sgd|SGD|momentum"
ALLOC = (r"malloc|free\b|\bfree|tcmalloc|TCMalloc|operator new|operator delete|mmap|munmap|"
         r"brk|page_fault|do_anonymous_page|handle_mm_fault|clear_page|alloc_pages|"
         r"get_page_from_freelist|rmqueue|folio|do_user_addr_fault|exc_page_fault|"
         r"zap_|unmap|release_pages|free_pages|free_unref|madvise|lru_|memcg|mem_cgroup|"
         r"CPUCachingAllocator|c10::alloc_cpu|c10::free_cpu|StorageImpl|posix_memalign|"
         r"memset|__memset|kmem_cache|slab|vma|pte_|pmd_|tlb_")
COMM = (r"gloo|tcp_|TCP|inet_|sock|skb|__netif|netif_|net_rx|loopback|ip_|__ip|ipv4|"
        r"sendmsg|recvmsg|sendto|recvfrom|copy_to_iter|copy_from_iter|copy_folio_from_iter|"
        r"_copy_to_user|_copy_from_user|napi|softirq|__dev_queue|dev_hard_start|"
        r"ProcessGroupGloo|c10d|allreduce|ring|ddpipe::dist")
DATA = r"ddpipe::data|augment|Augment|loader|Loader|decode|jpeg|png|crop|flip|synthetic|Shard"
WAIT = (r"futex|schedule|__schedule|finish_task_switch|pick_next|poll|epoll|select|"
        r"nanosleep|hrtimer|cpuidle|idle|pv_native_safe_halt|halt|sched_|yield|"
        r"pthread_cond|condition_variable|spin|pause|do_wait|wait_|__lll_lock|"
        r"_raw_spin_unlock_irqrestore|try_to_wake_up|wake_up|ttwu|dequeue_|enqueue_|"
        r"update_curr|update_load|psi_|switch_mm|__switch_to|gomp|GOMP|omp_|"
        r"syscall_exit|entry_SYSCALL|do_syscall|syscall_return")


def is_jit(dso):
    return ("[JIT]" in dso or dso.startswith("//anon") or dso in ("[anon]", "[unknown]")
            or re.search(r"/tmp/perf-\d+\.map", dso) is not None)


def categorise(dso, sym, label=None):
    kernel, name = split_sym(sym)
    if label:
        return label
    if is_jit(dso):
        # oneDNN's JIT code: named ones by their kind; unnamed ones counted as conv/GEMM.
        if unnamed_address(name) is not None or name in ("", "[unknown]"):
            return "conv/GEMM kernels"
        for cat, rx in RULES:
            if re.search(rx, name):
                return cat
        return "conv/GEMM kernels"
    if re.search(OPTIMIZER, name):
        return "optimizer"
    if re.search(DATA, name):
        return "data loading"
    if kernel:
        if re.search(ALLOC, name):
            return "allocator"
        if re.search(COMM, name):
            return "communication"
        if re.search(WAIT, name):
            return "waiting/idle"
        return "other"
    if "libgloo" in dso or re.search(r"gloo|c10d", name):
        return "communication"
    if re.search(WAIT, name) and not re.search(r"ddpipe::model", name):
        return "waiting/idle"
    if re.search(ALLOC, name) and "libtorch" not in dso:
        return "allocator"
    if "libdnnl" in dso or "libblas" in dso or "libopenblas" in dso or "mkl" in dso:
        for cat, rx in RULES:
            if re.search(rx, name):
                return cat
        return "conv/GEMM kernels"
    for cat, rx in RULES:
        if re.search(rx, name):
            return cat
    if re.search(ALLOC, name):
        return "allocator"
    if re.search(COMM, name):
        return "communication"
    return "other"


# ------------------------------------------------------------------------------------------------
# Calibration: which unnamed libtorch functions each ATen op runs.

OPS = {  # name: category
    "batch_norm": "batch norm",
    "relu": "elementwise/activation", "add": "elementwise/activation",
    "max_pool": "elementwise/activation", "avg_pool": "elementwise/activation",
    "cross_entropy": "elementwise/activation", "fill": "elementwise/activation",
    "copy": "copies/reorders", "cat": "copies/reorders", "flip": "copies/reorders",
    "sum": "elementwise/activation",
    # The backward of model::conv2d's 2x2 GEMM path: the weight matrix is two unfolds of the
    # weight, whose backward (at::native::unfold_backward) scatters the gradient back.
    "unfold_backward": "copies/reorders",
    # The backward of the 1x1-map path's select/slice views of the weight.
    "select_backward": "copies/reorders",
}


def calibrate_workload(marks_path):
    """Runs each op alone for ~0.25 s per dtype, channels-last, one thread; writes the windows."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    marks = []

    def timed(name, dtype, fn, seconds=0.25):
        fn()
        t0 = time.time()
        while time.time() - t0 < seconds:
            fn()
        marks.append({"op": name, "dtype": str(dtype), "t0": t0, "t1": time.time()})

    for dtype in (torch.float32, torch.bfloat16):
        for (n, c, h) in ((128, 64, 32), (128, 128, 8), (128, 512, 2)):
            x = torch.randn(n, c, h, h).to(dtype).contiguous(memory_format=torch.channels_last)
            xr = x.detach().clone().requires_grad_(True)
            w = torch.ones(c, requires_grad=True)
            b = torch.zeros(c, requires_grad=True)
            rm, rv = torch.zeros(c), torch.ones(c)

            def bn():
                y = F.batch_norm(xr, rm, rv, w, b, training=True)
                y.backward(torch.ones_like(y))
            timed("batch_norm", dtype, bn)

            def relu():
                y = torch.relu(xr)
                y.backward(torch.ones_like(y))
            timed("relu", dtype, relu)
            timed("relu", dtype, lambda: torch.relu_(x.clone()))
            timed("add", dtype, lambda: x + x)
            timed("add", dtype, lambda: x.clone().add_(x))
            timed("fill", dtype, lambda: torch.zeros_like(x))
            timed("fill", dtype, lambda: torch.ones_like(x))

            def maxpool():
                y = F.max_pool2d(xr, 3, 2, 1)
                y.backward(torch.ones_like(y))
            timed("max_pool", dtype, maxpool)

            def avgpool():
                y = F.adaptive_avg_pool2d(xr, (1, 1))
                y.backward(torch.ones_like(y))
            timed("avg_pool", dtype, avgpool)
            timed("avg_pool", dtype, lambda: x.sum(dim=(2, 3)))
            other = torch.float32 if dtype == torch.bfloat16 else torch.bfloat16
            timed("copy", dtype, lambda: x.contiguous())
            timed("copy", dtype, lambda: x.contiguous(memory_format=torch.contiguous_format))
            timed("copy", dtype, lambda: x.to(other))
            timed("copy", dtype, lambda: x.clone())
            timed("cat", dtype, lambda: torch.cat([x, x], 1))
            timed("flip", dtype, lambda: x.flip(3))
            timed("sum", dtype, lambda: x.sum(dim=(0, 2, 3)))
        m2 = torch.randn(512, 2304).to(dtype)
        timed("sum", dtype, lambda: m2.sum(0))
        timed("sum", dtype, lambda: m2.sum(1))
        for k in (256, 512):
            w = torch.randn(k, k, 3, 3, dtype=torch.float32, requires_grad=True)

            def unfold():
                taps = w.permute(2, 3, 0, 1).unfold(0, 2, 1).unfold(1, 2, 1)
                wm = taps.permute(0, 1, 2, 4, 5, 3).reshape(4 * k, -1)
                wm.backward(torch.ones_like(wm))
            timed("unfold_backward", dtype, unfold)

            def select():
                wm = w.select(3, 1).select(2, 1)
                wm.backward(torch.ones_like(wm))
                wm = w[:, :, 1:, 1:].permute(0, 2, 3, 1).reshape(k, -1)
                wm.backward(torch.ones_like(wm))
            timed("select_backward", dtype, select)
        logits = torch.randn(256, 10, dtype=torch.float32, requires_grad=True)
        labels = torch.randint(0, 10, (256,))

        def ce():
            loss = F.cross_entropy(logits, labels)
            loss.backward()
        timed("cross_entropy", dtype, ce)
    with open(marks_path, "w") as f:
        json.dump(marks, f)


def calibrate(perf_data, marks_path, out_path):
    marks = json.load(open(marks_path))
    index = FunctionIndex()
    votes = collections.defaultdict(collections.Counter)
    for m in marks:
        rows = perf_report(perf_data, ["--time", "%.6f,%.6f" % (m["t0"], m["t1"]),
                                       "--comms", "python3"])
        for n, dso, sym in (r[:3] for r in rows):
            _, name = split_sym(sym)
            addr = unnamed_address(name)
            if addr is None or not dso.startswith("/") or "libtorch" not in dso:
                continue
            votes[index.key(dso, addr)][m["op"]] += n
    labels = {}
    for k, c in votes.items():
        op = c.most_common(1)[0][0]
        labels[k] = [OPS[op], op]
    with open(out_path, "w") as f:
        json.dump({"labels": labels, "ops": sorted({m["op"] for m in marks})}, f, indent=1)
    print(f"calibration: {len(labels)} libtorch functions labelled from {len(marks)} op runs",
          file=sys.stderr)


# ------------------------------------------------------------------------------------------------
# Summary of one case.


def parse_ts(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def training_window(log_path):
    """(start, end, epoch event) of the steady-state steps, realtime seconds, from rank 0's log:
    the last progress event closes the epoch's steps; the steady part is the last (steps - 5)
    steps, timed by steady_images_per_second."""
    progress, epoch = None, None
    for line in open(log_path, errors="replace"):
        if not line.startswith("{"):
            continue
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "progress" and e.get("rank", 0) == 0:
            progress = e
        if e.get("event") == "epoch" and epoch is None:
            epoch = e
    if not progress or not epoch:
        sys.exit(f"profile_summary: no progress/epoch event in {log_path}")
    end = parse_ts(progress["ts"])
    start_all = end - progress["elapsed_s"]
    steps = progress["steps"]
    global_batch = progress["images_per_second"] * progress["elapsed_s"] / steps
    steady = epoch.get("steady_images_per_second") or 0
    if steps > 5 and steady > 0:
        start = max(start_all, end - (steps - 5) * global_batch / steady)
    else:
        start = start_all
    return start, end, epoch, steps


def process_tree(perf_data, root):
    """(pids of `root` and its descendants, tid → pid) from the recording's fork events."""
    out = subprocess.run([PERF, "script", "-i", perf_data, "--show-task-events", "-F",
                          "comm,pid,tid"], capture_output=True, text=True, errors="replace").stdout
    pids, tid_pid = {root}, {}
    for m in re.finditer(r"PERF_RECORD_FORK\((\d+):(\d+)\):\((\d+):(\d+)\)", out):
        cpid, ctid, ppid = int(m.group(1)), int(m.group(2)), int(m.group(3))
        tid_pid[ctid] = cpid
        if ppid in pids:
            pids.add(cpid)
    return pids, tid_pid


def summarize(a):
    """Summarizes one case; oneDNN's perf maps saved in --jit-maps go back to /tmp meanwhile."""
    placed = []
    if a.jit_maps and os.path.isdir(a.jit_maps):
        for f in os.listdir(a.jit_maps):
            dst = os.path.join("/tmp", f)
            if re.match(r"perf-\d+\.map$", f) and not os.path.exists(dst):
                shutil.copyfile(os.path.join(a.jit_maps, f), dst)
                placed.append(dst)
    try:
        summarize_case(a)
    finally:
        for f in placed:
            os.remove(f)


def summarize_case(a):
    start, end, epoch, steps = training_window(a.log)
    window = ["--time", "%.6f,%.6f" % (start, end)]
    seconds = end - start
    labels = {}
    if a.calibration and os.path.exists(a.calibration):
        labels = json.load(open(a.calibration))["labels"]
    # This run's processes: the launcher (root pid) and everything it started. Other ddpipe
    # processes on the machine (someone else's runs) count as other processes.
    pids, tid_pid = process_tree(a.perf_data, a.root_pid)
    # The whole machine in the window: this run, idle, everything else.
    ddpipe_samples = idle = total_machine = 0
    for r in perf_report(a.perf_data, window, sort="pid"):
        n, task = r[0], r[1]
        tid = int(task.split(":")[0]) if task.split(":")[0].isdigit() else -1
        total_machine += n
        if tid == 0:
            idle += n
        elif tid_pid.get(tid, tid) in pids:
            ddpipe_samples += n
    total_machine = total_machine or 1
    others = total_machine - ddpipe_samples - idle
    # ddpipe's processes by category.
    index = FunctionIndex()
    cats = collections.Counter()
    syms = collections.Counter()
    sym_cat = {}
    unnamed_torch = 0
    jit_unnamed = 0
    for r in perf_report(a.perf_data, window + ["--pid", ",".join(map(str, sorted(pids)))]):
        n, dso, sym = r[:3]
        kernel, name = split_sym(sym)
        addr = unnamed_address(name)
        label, key = None, None
        op = None
        if addr is not None and dso.startswith("/") and not is_jit(dso):
            key = index.key(dso, addr)
            label, op = labels.get(key) or (None, None)
            if label is None and "libtorch" in dso:
                unnamed_torch += n
        cat = categorise(dso, sym, label)
        if addr is not None and is_jit(dso):
            jit_unnamed += n
        if key:
            shown = key + (f" (runs in {op})" if op else " (unnamed)")
        elif is_jit(dso):
            shown = "[JIT] " + (name if addr is None else "(unnamed)")
        else:
            shown = dso.split("/")[-1] + " " + name
        syms[shown] += n
        sym_cat[shown] = cat
        cats[cat] += n
    total = sum(cats.values()) or 1
    cpus = ddpipe_samples / a.freq / seconds if seconds > 0 else None
    gflop = a.gflop_per_image
    ips = epoch["steady_images_per_second"]
    peak_ips = a.peak_gflops / gflop if a.peak_gflops else None
    res = {
        "case": a.case, "window_s": seconds, "steps": steps,
        "steady_images_per_second": ips, "train_gflop_per_image": gflop,
        "peak_gflops": a.peak_gflops, "peak_images_per_second": peak_ips,
        "fma_peak_share": (ips * gflop / a.peak_gflops) if a.peak_gflops else None,
        # The same, against the part of the peak that the CPU time ddpipe got could reach: on a
        # shared machine, images/s x 2 / (CPUs ddpipe was on, on average).
        "fma_peak_share_of_cpus_had": (ips * gflop / (a.peak_gflops * cpus / 2))
        if a.peak_gflops and cpus else None,
        "data_wait_fraction": epoch["data_wait_seconds"] / epoch["train_seconds"],
        "comm_exposed_fraction": epoch["comm_exposed_seconds"] / epoch["train_seconds"],
        "machine_samples": total_machine,
        "machine_share": {"ddpipe": ddpipe_samples / total_machine, "idle": idle / total_machine,
                          "other processes": others / total_machine},
        "ddpipe_cpus": cpus,
        "ddpipe_samples": total,
        "categories": {c: cats.get(c, 0) / total for c in CATEGORIES},
        "unnamed_libtorch_unlabelled_share": unnamed_torch / total,
        "unnamed_jit_share": jit_unnamed / total,
        "top": [{"symbol": s, "category": sym_cat[s], "share": n / total}
                for s, n in syms.most_common(10)],
    }
    print_case(res)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


def print_case(r):
    print(f"\n== {r['case']}: {r['steps']} steps, profiled window {r['window_s']:.1f} s "
          f"(the steps after the first 5) ==")
    peak = (f"{r['fma_peak_share']:.0%} of the FMA peak ({r['peak_gflops']:.1f} GFLOP/s allows "
            f"{r['peak_images_per_second']:.0f} img/s at {r['train_gflop_per_image']} GFLOP/img)"
            if r["peak_gflops"] else "no FMA peak measured")
    print(f"steady images/s under perf: {r['steady_images_per_second']:.1f}  ->  {peak}")
    if r.get("fma_peak_share_of_cpus_had"):
        print(f"  against the CPU time ddpipe had ({r['ddpipe_cpus']:.2f} of 2 CPUs): "
              f"{r['fma_peak_share_of_cpus_had']:.0%} of the peak")
    print(f"ddpipe's own timers: data wait {r['data_wait_fraction']:.2%}, exposed allreduce "
          f"{r['comm_exposed_fraction']:.2%} of the epoch")
    m = r["machine_share"]
    print(f"both cores in the window ({r['machine_samples']} samples): ddpipe {m['ddpipe']:.1%}, "
          f"idle {m['idle']:.1%}, other processes {m['other processes']:.1%}"
          f"  (ddpipe busy on {r['ddpipe_cpus']:.2f} CPUs on average)")
    print(f"\n{'category':26s} {'% of ddpipe samples':>20s}")
    for c, v in r["categories"].items():
        print(f"{c:26s} {v:19.1%}")
    print(f"(of which unnamed oneDNN JIT code counted as conv/GEMM: {r['unnamed_jit_share']:.1%}; "
          f"unnamed libtorch code no calibrated op ran, in 'other': "
          f"{r['unnamed_libtorch_unlabelled_share']:.1%})")
    print(f"\ntop 10 symbols ({r['ddpipe_samples']} ddpipe samples):")
    for t in r["top"]:
        print(f"  {t['share']:6.1%}  {t['category']:24s} {t['symbol'][:110]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("calibrate-workload")
    w.add_argument("marks")
    c = sub.add_parser("calibrate")
    c.add_argument("perf_data")
    c.add_argument("marks")
    c.add_argument("out")
    s = sub.add_parser("summarize")
    s.add_argument("--perf-data", required=True)
    s.add_argument("--log", required=True, help="ddpipe's stderr (JSON log lines)")
    s.add_argument("--calibration", default="")
    s.add_argument("--case", required=True)
    s.add_argument("--root-pid", type=int, required=True, help="pid of the profiled command")
    s.add_argument("--gflop-per-image", type=float, required=True)
    s.add_argument("--peak-gflops", type=float, default=0.0)
    s.add_argument("--freq", type=float, default=499.0)
    s.add_argument("--json", default="")
    s.add_argument("--jit-maps", default="", help="folder of saved /tmp/perf-PID.map files")
    t = sub.add_parser("table", help="one table of every case from the summaries' JSON files")
    t.add_argument("jsons", nargs="+")
    a = ap.parse_args()
    if a.cmd == "calibrate-workload":
        calibrate_workload(a.marks)
    elif a.cmd == "calibrate":
        calibrate(a.perf_data, a.marks, a.out)
    elif a.cmd == "summarize":
        summarize(a)
    else:
        table(a.jsons)
    return 0


def table(paths):
    rs = [json.load(open(p)) for p in paths]
    print("\n| category | " + " | ".join(r["case"] for r in rs) + " |")
    print("|---|" + "---:|" * len(rs))
    for c in CATEGORIES:
        print(f"| {c} | " + " | ".join(f"{r['categories'][c]:.1%}" for r in rs) + " |")
    rows = [("steady images/s under perf", lambda r: f"{r['steady_images_per_second']:.1f}"),
            ("images/s the FMA peak allows", lambda r: f"{r['peak_images_per_second']:.0f}"
             if r["peak_images_per_second"] else "-"),
            ("share of the FMA peak (model FLOPs)", lambda r: f"{r['fma_peak_share']:.0%}"
             if r["fma_peak_share"] else "-"),
            ("the same, for the CPU time ddpipe had", lambda r: f"{r['fma_peak_share_of_cpus_had']:.0%}"
             if r.get("fma_peak_share_of_cpus_had") else "-"),
            ("CPUs ddpipe was on (of 2)", lambda r: f"{r['ddpipe_cpus']:.2f}"),
            ("ddpipe / idle / other processes (both cores)",
             lambda r: "{ddpipe:.0%} / {idle:.0%} / {other processes:.0%}".format(
                 **r["machine_share"])),
            ("data wait / exposed allreduce (ddpipe timers)",
             lambda r: f"{r['data_wait_fraction']:.1%} / {r['comm_exposed_fraction']:.1%}")]
    for name, fn in rows:
        print(f"| {name} | " + " | ".join(fn(r) for r in rs) + " |")


if __name__ == "__main__":
    sys.exit(main())
