#!/usr/bin/env bash
# bench/reload.sh [EDITS]: live reload, from a file's save to the first reply
# that shows the new version (issue 5). Starts the host (2 workers) on a copy
# of bench/scripts plus commands/probe.lua, and saves probe.lua EDITS times
# (default 100; write a temp file, rename it over the old one) while
# bench/reload-probe.py calls /probe until the reply shows the new version.
# Two cases, one after the other, on the same host:
#
#   idle     nothing else runs
#   loaded   wrk replays signed calls to commands/bench.lua at full speed
#            (-t1 -c8) the whole time: both cores busy, the reloader thread
#            competes with the workers for CPU
#
# Records median, p90 and worst per case, the load's requests/s and errors,
# and the probe's failed calls (must be none) into
# bench/results/reload-<UTC>.json and reload-latest.json.
# Target: median under 50 ms, worst under 100 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
EDITS=${1:-100}
BUILD=build/bench
for dep in wrk:wrk openssl:openssl cmake:cmake python3:python3; do
  if ! command -v "${dep%%:*}" >/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${dep#*:}"
  fi
done
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target cliqhost cliqhost-bench-sign >/dev/null

WORK=$(mktemp -d /tmp/cliqhost-bench-reload-XXXXXX)
HOST_PID=
WRK_PID=
cleanup() {
  [ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null || true
  [ -n "$HOST_PID" ] && kill "$HOST_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/key.pem" 2>/dev/null
openssl pkey -in "$WORK/key.pem" -pubout -out "$WORK/key.pub"
"$BUILD/cliqhost-bench-sign" "$WORK/key.pem" 2000 "$WORK/requests.txt"
cp -r bench/scripts "$WORK/scripts"

"$BUILD/cliqhost" serve --listen 127.0.0.1:0 --workers 2 --scripts "$WORK/scripts" \
  --key "$WORK/key.pub" --data-dir "$WORK/data" --log-level warn --replay-memory 0 \
  2>"$WORK/host.log" &
HOST_PID=$!
port=
for _ in $(seq 100); do
  port=$(grep -o 'listening on [^ ]*' "$WORK/host.log" | grep -o '[0-9]*$' || true)
  [ -n "$port" ] && break
  sleep 0.1
done
# The host logs "listening" at info; at warn, find the port from the socket.
if [ -z "$port" ]; then
  for _ in $(seq 100); do
    port=$(ss -ltnp 2>/dev/null | awk -v p="pid=$HOST_PID," '$0 ~ p {sub(/.*:/, "", $4); print $4; exit}')
    [ -n "$port" ] && break
    sleep 0.1
  done
fi
[ -n "$port" ] || { echo "host did not start"; cat "$WORK/host.log"; exit 1; }

echo "== idle: $EDITS edits"
python3 bench/reload-probe.py "$port" "$WORK/scripts" "$WORK/key.pem" "$EDITS" "$WORK/idle.json"

echo "== loaded: $EDITS edits while wrk replays signed calls"
wrk -t1 -c8 -d600s --latency -s bench/replay.lua "http://127.0.0.1:$port/" -- "$WORK/requests.txt" \
  >"$WORK/wrk.txt" 2>&1 &
WRK_PID=$!
sleep 1
t0=$(date +%s.%N)
python3 bench/reload-probe.py "$port" "$WORK/scripts" "$WORK/key.pem" "$EDITS" "$WORK/loaded.json"
t1=$(date +%s.%N)
kill -INT "$WRK_PID"
wait "$WRK_PID" || true
WRK_PID=
reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
secs=$(awk '/requests in/ {sub(/s,/, "", $4); print $4}' "$WORK/wrk.txt")
errors=$(awk '/Non-2xx|Socket errors/ {print}' "$WORK/wrk.txt" | tr '\n' ' ')
rate=$(awk -v r="$reqs" -v s="$secs" 'BEGIN {printf "%.0f", r / s}')

stamp=$(date -u +%Y%m%d-%H%M%S)
mkdir -p bench/results
out="bench/results/reload-$stamp.json"
python3 - "$WORK/idle.json" "$WORK/loaded.json" "$rate" "$errors" "$out" <<'PY'
import json, platform, sys, os
idle, loaded = (json.load(open(p)) for p in sys.argv[1:3])
res = {
    "benchmark": "reload: save of a script to the first reply showing it",
    "machine": f"{os.cpu_count()} cores, {platform.machine()}",
    "target": {"median_ms": 50, "worst_ms": 100},
    "idle": idle,
    "loaded": dict(loaded, load_requests_per_s=int(sys.argv[3]), load_errors=sys.argv[4].strip()),
}
json.dump(res, open(sys.argv[5], "w"), indent=1)
for case in ("idle", "loaded"):
    r = res[case]
    print(f"{case:7s} median {r['median_ms']:6.2f} ms  p90 {r['p90_ms']:6.2f} ms  "
          f"worst {r['worst_ms']:6.2f} ms  failed calls {r['failed_calls']}")
print(f"load: {sys.argv[3]} requests/s {sys.argv[4].strip()}")
PY
cp "$out" bench/results/reload-latest.json
echo "recorded $out"
grep -E "error|ERROR" "$WORK/host.log" | head -5 || true
