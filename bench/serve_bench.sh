#!/usr/bin/env bash
# Serving benchmark (BENCHMARKS.md, "Serving"): throughput and p50/p99 latency of POST /predict
# at concurrency 1, 8 and 64 (wrk, multipart upload of one 28×28 grey PNG), for
#   - ddpipe serve with a torchvision-layout ResNet-18, 1×28×28 input, 10 classes,
#   - the original Python service (../shared/peers/python_inference_server.py) with the same
#     architecture and input, as Flask (threaded) and as gunicorn -w 2 (peer weights are random:
#     the cost of a forward pass does not depend on them),
#   - ddpipe serve with ddpipe's default model (resnet-mini on Fashion-MNIST, one epoch).
# Every server runs on the same CPUs (taskset -c $CPUS) in the same run, one at a time.
#
# Usage: bench/serve_bench.sh
# Environment: DDPIPE (binary; build/apps/ddpipe/ddpipe), DURATION (seconds per point; 20),
#   CPUS (taskset CPU list; 0,1), PEER (the Python service; ../shared/peers/...),
#   FMNIST_STORE (a store holding fmnist-resnet; default: train one epoch into a temp store),
#   OUT (also write the table there).
# Needs: wrk, gunicorn, /usr/bin/python3 with flask, torch, torchvision, PIL (install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
DDPIPE=$(realpath "${DDPIPE:-build/apps/ddpipe/ddpipe}")
DURATION=${DURATION:-20}
CPUS=${CPUS:-0,1}
PEER=$(realpath "${PEER:-../shared/peers/python_inference_server.py}")
PY=/usr/bin/python3

for tool in wrk gunicorn taskset curl; do
  command -v "$tool" >/dev/null || { echo "serve_bench: $tool not found (scripts/install-deps.sh)" >&2; exit 2; }
done
[[ -x "$DDPIPE" ]] || { echo "serve_bench: $DDPIPE not built (scripts/build.sh ddpipe)" >&2; exit 2; }
[[ -f "$PEER" ]] || { echo "serve_bench: peer $PEER not found (set PEER)" >&2; exit 2; }
$PY -c 'import flask, torch, torchvision, PIL' || { echo "serve_bench: $PY lacks flask/torch/torchvision/PIL" >&2; exit 2; }

load_before=$(cut -d' ' -f1 /proc/loadavg)
work=$(mktemp -d /tmp/ddpipe-serve-bench.XXXXXX)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The request image: the first Fashion-MNIST test image when the dataset is installed.
$PY - "$work/image.png" <<'PY'
import gzip, os, random, sys
from PIL import Image
src = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
im = Image.new("L", (28, 28))
if os.path.exists(src):
    with gzip.open(src) as f:
        f.read(16)
        im.putdata(list(f.read(784)))
else:
    random.seed(0)
    im.putdata([random.randrange(256) for _ in range(784)])
im.save(sys.argv[1])
PY

log() { echo "serve_bench: $*" >&2; }

log "publishing a ResNet-18 (1x28x28, 10 classes) into $work/store"
"$DDPIPE" run --store "$work/store" --set cache_dir="$work/cache" --name resnet18-bench --arch resnet18 \
  --data-format synthetic --dataset synthetic-1x28 --set data.channels=1 --set data.height=28 \
  --set data.width=28 --set data.train_size=512 --set data.test_size=128 --set data.classes=10 \
  --epochs 1 --nproc-per-node 1 >"$work/train-resnet18.log" 2>&1
if [[ -n "${FMNIST_STORE:-}" ]]; then
  fmnist_store=$FMNIST_STORE
else
  fmnist_store="$work/fmnist"
  log "training the default model (resnet-mini, Fashion-MNIST, 1 epoch) into $fmnist_store"
  "$DDPIPE" run --store "$fmnist_store" --set cache_dir="$work/cache" --epochs 1 >"$work/train-fmnist.log" 2>&1
fi

port=18700
wait_http() {  # URL: until it answers 200, at most 120 s
  for _ in $(seq 1200); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" == 200 ]] && return 0
    kill -0 "$server_pid" 2>/dev/null || { log "server exited"; return 1; }
    sleep 0.1
  done
  return 1
}
stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
results="$work/results.tsv"
measure() {  # NAME: warm up, then concurrency 1, 8, 64 against $port
  local name=$1
  wrk -t2 -c8 -d3s --timeout 30s -s bench/serve_wrk.lua "http://127.0.0.1:$port" -- "$work/image.png" >/dev/null
  for c in 1 8 64; do
    local threads=$((c == 1 ? 1 : 2))
    local line
    line=$(wrk -t$threads -c$c -d"${DURATION}s" --timeout 30s -s bench/serve_wrk.lua \
             "http://127.0.0.1:$port" -- "$work/image.png" | grep '^RESULT ' | cut -d' ' -f2-)
    log "$name c=$c $line"
    printf '%s\t%s\t%s\n' "$name" "$c" "$line" >>"$results"
  done
}

run_ddpipe() {  # NAME STORE MODEL
  port=$((port + 1))
  taskset -c "$CPUS" "$DDPIPE" serve --store "$2" --model "$3" --port "$port" \
    --set serve.access_log=false 2>"$work/$1.log" &
  server_pid=$!
  wait_http "http://127.0.0.1:$port/v2/health/ready"
  measure "$1"
  stop_server
}

run_flask() {
  port=$((port + 1))
  taskset -c "$CPUS" $PY "$PEER" --port "$port" --in-channels 1 --size 28 --num-classes 10 \
    --torch-threads 2 >"$work/flask.log" 2>&1 &
  server_pid=$!
  wait_http "http://127.0.0.1:$port/healthz"
  measure "python-flask-threaded"
  stop_server
}

run_gunicorn() {
  port=$((port + 1))
  (cd "$(dirname "$PEER")" && PEER_IN_CHANNELS=1 PEER_SIZE=28 PEER_NUM_CLASSES=10 PEER_TORCH_THREADS=1 \
    exec taskset -c "$CPUS" gunicorn -w 2 -b "127.0.0.1:$port" --timeout 120 \
    "$(basename "$PEER" .py):create_app()") >"$work/gunicorn.log" 2>&1 &
  server_pid=$!
  wait_http "http://127.0.0.1:$port/healthz"
  measure "python-gunicorn-w2"
  stop_server
}

run_ddpipe ddpipe-resnet18 "$work/store" resnet18-bench
run_flask
run_gunicorn
run_ddpipe ddpipe-default-resnet-mini "$fmnist_store" fmnist-resnet

table=$($PY - "$results" "$CPUS" "$DURATION" "$load_before" <<'PY'
import json, os, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
data = {(n, int(c)): json.loads(j) for n, c, j in rows}
print(f"{os.cpu_count()} CPUs visible, servers pinned to CPUs {sys.argv[2]}, {sys.argv[3]} s per point, "
      f"1-minute load average before the run {sys.argv[4]}\n")
print("| server | concurrency | requests/s | p50 ms | p99 ms | errors |")
print("|---|---:|---:|---:|---:|---:|")
for (n, c), r in data.items():
    print(f"| {n} | {c} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |")
peers = [n for n, _ in data if n.startswith("python-")]
best = max(peers, key=lambda n: data[(n, 64)]["rps"])
ratio = data[("ddpipe-resnet18", 64)]["rps"] / data[(best, 64)]["rps"]
print(f"\nResNet-18 at concurrency 64: ddpipe {data[('ddpipe-resnet18', 64)]['rps']:.0f} req/s vs "
      f"{best} {data[(best, 64)]['rps']:.0f} req/s = {ratio:.1f}x.")
print(f"Default model at concurrency 8: p99 {data[('ddpipe-default-resnet-mini', 8)]['p99_ms']:.1f} ms.")
PY
)
echo "$table"
[[ -n "${OUT:-}" ]] && echo "$table" >"$OUT"
exit 0
