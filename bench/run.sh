#!/usr/bin/env bash
# bench/run.sh [SECONDS]: the core load test. Signs 10,000 distinct Cliq
# calls, starts the host (2 workers) on bench/scripts, replays the calls with
# wrk on the same machine, and records requests/s, p50/p99 latency, errors,
# idle and peak RSS and host CPU per request into bench/results/.
#
# In the same run it measures, for context: one RSA-2048 verification
# (`openssl speed`), and the host with signature checks off (--no-verify),
# which shows what the checks cost on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
CONNS=${CONNS:-64}
N_REQUESTS=10000

for p in wrk openssl cmake; do
  if ! command -v "$p" >/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p"
  fi
done
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target cliqhost cliqhost-bench-sign >/dev/null

WORK=$(mktemp -d /tmp/cliqhost-bench-XXXXXX)
trap 'kill "${HOST_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/key.pem" 2>/dev/null
openssl pkey -in "$WORK/key.pem" -pubout -out "$WORK/key.pub"
build/cliqhost-bench-sign "$WORK/key.pem" "$N_REQUESTS" "$WORK/requests.txt"

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# run_case NAME HOST-FLAGS...: starts the host, loads it, prints a JSON object.
run_case() {
  local name=$1
  shift
  build/cliqhost serve --scripts bench/scripts --listen 127.0.0.1:0 --workers 2 "$@" \
    2>"$WORK/host-$name.log" &
  HOST_PID=$!
  local port=""
  for _ in $(seq 100); do
    port=$(grep -o 'listening on [^ ]*' "$WORK/host-$name.log" | sed 's/.*://') && [ -n "$port" ] && break
    sleep 0.05
  done
  sleep 0.5
  local idle_rss idle_anon
  idle_rss=$(kb $HOST_PID VmRSS)
  idle_anon=$(awk '/^Anonymous:/ {print $2}' "/proc/$HOST_PID/smaps_rollup")
  wrk -t1 -c"$CONNS" -d2s -s bench/replay.lua "http://127.0.0.1:$port/" -- "$WORK/requests.txt" >/dev/null
  local t0 t1
  t0=$(cpu_ticks $HOST_PID)
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s bench/replay.lua "http://127.0.0.1:$port/" \
    -- "$WORK/requests.txt" >"$WORK/wrk-$name.txt"
  t1=$(cpu_ticks $HOST_PID)
  local peak
  peak=$(kb $HOST_PID VmHWM)
  kill -TERM $HOST_PID
  wait $HOST_PID || true
  HOST_PID=
  local w="$WORK/wrk-$name.txt"
  local total rps p50 p99 non2xx sockerr
  total=$(awk '/requests in/ {print $1}' "$w")
  rps=$(awk '/Requests\/sec/ {print $2}' "$w")
  p50=$(awk '$1 == "50%" {print $2}' "$w")
  p99=$(awk '$1 == "99%" {print $2}' "$w")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$w")
  sockerr=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$w")
  printf '{"case":"%s","requests":%s,"requests_per_s":%s,"p50":"%s","p99":"%s",' \
    "$name" "$total" "$rps" "$p50" "$p99"
  printf '"non_2xx":%s,"socket_errors":%s,"host_cpu_us_per_request":%.1f,' \
    "${non2xx:-0}" "${sockerr:-0}" "$(echo "($t1 - $t0) * 1000000 / $clk / $total" | bc -l)"
  printf '"idle_rss_kb":%s,"idle_private_kb":%s,"peak_rss_kb":%s}' \
    "$idle_rss" "$idle_anon" "$peak"
}

echo "== openssl speed rsa2048 (one core)"
verify_per_s=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048/ {print $7}')
echo "   $verify_per_s verifies/s"
echo "== signed calls, ${DURATION}s, wrk -t1 -c$CONNS"
signed=$(run_case signed --key "$WORK/key.pub")
echo "   $signed"
echo "== the same calls with --no-verify (reference: the cost without RSA)"
unsigned=$(run_case unsigned --no-verify)
echo "   $unsigned"

mkdir -p bench/results
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
out="bench/results/core-$(date -u +%Y%m%d-%H%M%S).json"
cat >"$out" <<JSON
{
  "benchmark": "core: signed Cliq calls to a Lua handler",
  "date": "$date",
  "machine": {"cpu": "$cpu", "cores": $(nproc), "kernel": "$(uname -r)"},
  "host": "$(build/cliqhost --version)",
  "setup": "2 workers; wrk -t1 -c$CONNS -d${DURATION}s on the same machine; $N_REQUESTS distinct signed ~1.2 KB command bodies; handler bench/scripts/commands/bench.lua",
  "openssl_rsa2048_verifies_per_s_one_core": $verify_per_s,
  "signed": $signed,
  "no_verify_reference": $unsigned
}
JSON
cp "$out" bench/results/core-latest.json
echo "== recorded $out"
