#!/usr/bin/env bash
# The dashboard in a real browser (ctest ui_browser): Debian's Chromium driven by playwright-core
# (tests/ui/browser/run.mjs) against the real binary on loopback, with a store holding models
# really trained on Fashion-MNIST and a job training while the pages are checked:
#   1. `ddpipe ui --store S` (no token);
#   2. `ddpipe serve` with a bearer token, the pages under /ui/ beside the model's API (requests
#      and promotions without the token are refused).
# Screenshots of every page go to $DDPIPE_UI_SCREENSHOTS (default: a temporary folder).
#   tests/ui/browser_test.sh build/apps/ddpipe/ddpipe
set -euo pipefail
ddpipe=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
browser_dir=$here/browser
fail() { echo "ui_browser: $*" >&2; exit 1; }
[[ -x /usr/bin/chromium ]] || fail "/usr/bin/chromium is missing (scripts/install-deps.sh --tests installs it)"
command -v node >/dev/null || fail "node is missing (scripts/install-deps.sh --tests installs it)"
[[ -d $browser_dir/node_modules/playwright-core ]] ||
  fail "playwright-core is missing in $browser_dir (scripts/install-deps.sh --tests runs npm ci there)"
fmnist=/usr/share/datasets/fashion-mnist
[[ -d $fmnist ]] || fail "$fmnist is missing (Debian's dataset-fashion-mnist)"

work=$(mktemp -d /tmp/ddpipe-ui-test-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
store=$work/store
shots=${DDPIPE_UI_SCREENSHOTS:-$work/screenshots}
mkdir -p "$shots"
job=(--store "$store" --set "cache_dir=$work/cache" --set name=fmnist-ui --set dist.nproc=2
     --set train.threads=1 --set loader.workers=1)

# Two versions of a really trained model, with different configs (compare shows the difference).
"$ddpipe" run "${job[@]}" --epochs 2 --set train.max_steps_per_epoch=40 >"$work/run1.log" 2>&1 ||
  fail "first training run failed: $(tail -5 "$work/run1.log")"
"$ddpipe" run "${job[@]}" --epochs 3 --set train.max_steps_per_epoch=40 --set train.lr=0.1 \
  >"$work/run2.log" 2>&1 || fail "second training run failed: $(tail -5 "$work/run2.log")"

# A Fashion-MNIST test image, and the class `ddpipe predict` gives it.
/usr/bin/python3 - "$fmnist/t10k-images-idx3-ubyte.gz" "$work/item.png" <<'EOF'
import gzip, sys
from PIL import Image
data = gzip.open(sys.argv[1]).read()
Image.frombytes("L", (28, 28), data[16:16 + 784]).save(sys.argv[2])
EOF
expected=$("$ddpipe" predict --store "$store" --model fmnist-ui "$work/item.png" 2>/dev/null |
  /usr/bin/python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())["prediction"])')

# A job that trains while the pages are looked at: its progress must advance on the runs page.
"$ddpipe" run "${job[@]}" --run-id live-job --epochs 50 --set train.max_steps_per_epoch=100 \
  --set runs.heartbeat_s=0.5 >"$work/live.log" 2>&1 &
pids+=($!)

# The URL of a server whose stdout/stderr go to $1, from its "dashboard:" or "listening" line.
wait_for_url() {
  for _ in $(seq 1 600); do
    local url
    url=$(grep -oE 'dashboard: http://[^ ]+/ui/' "$1" | head -1 | sed 's/dashboard: //; s#/ui/$##')
    [[ -n $url ]] && { echo "$url"; return 0; }
    url=$(grep -oE '"msg":"listening".*' "$1" | grep -oE '"port":[0-9]+' | head -1 | cut -d: -f2)
    [[ -n $url ]] && { echo "http://127.0.0.1:$url"; return 0; }
    sleep 0.1
  done
  fail "no server URL in $1: $(tail -5 "$1")"
}

# run_browser URL SCREENSHOTS
run_browser() {
  (cd "$browser_dir" && DDPIPE_UI_URL="$1" DDPIPE_UI_STORE="$store" DDPIPE_UI_MODEL=fmnist-ui \
    DDPIPE_UI_IMAGE="$work/item.png" DDPIPE_UI_EXPECT_CLASS="$expected" \
    DDPIPE_UI_SCREENSHOTS="$2" node run.mjs) || fail "the browser checks failed (above)"
}

# 1. `ddpipe ui`, no token.
"$ddpipe" ui --store "$store" --port 0 --set name=fmnist-ui >"$work/ui.log" 2>&1 &
pids+=($!)
run_browser "$(wait_for_url "$work/ui.log")" "$shots/ui"

# 2. `ddpipe serve` with a token: the same pages beside the model's API.
export DDPIPE_UI_TOKEN=ui-test-token-0123456789
DDPIPE_UI_TEST_TOKEN=$DDPIPE_UI_TOKEN "$ddpipe" serve --store "$store" --model fmnist-ui --port 0 \
  --set serve.auth_token_env=DDPIPE_UI_TEST_TOKEN >"$work/serve.log" 2>&1 &
pids+=($!)
run_browser "$(wait_for_url "$work/serve.log")" "$shots/serve"
echo "ui_browser: both servers passed; screenshots in $shots"
