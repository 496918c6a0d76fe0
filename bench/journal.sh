#!/usr/bin/env bash
# bench/journal.sh [SECONDS]: what the console's journal costs signed calls
# when nobody watches (issue 16, point 7). The host (2 workers, the bench's
# scripts and 10,000 signed calls, as bench/run.sh) runs with the journal
# on (journal_calls = 200, the default) and off (0), taking turns for ROUNDS
# rounds (default 3) of SECONDS each; prints each round's requests/s and
# the medians' ratio, and the host's CPU time per request (less sensitive
# to other load on the machine than requests/s).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${1:-8}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
BUILD=build/bench
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target cliqhost cliqhost-bench-sign >/dev/null
WORK=$(mktemp -d)
HOST_PID=
cleanup() {
  stop_all "$HOST_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/key.pem" 2>/dev/null
openssl pkey -in "$WORK/key.pem" -pubout -out "$WORK/key.pub"
"$BUILD/cliqhost-bench-sign" "$WORK/key.pem" 10000 "$WORK/requests.txt"

clk=$(getconf CLK_TCK)
# round CALLS: one timed run with journal_calls = CALLS; prints requests/s
# and the host's CPU us per request. Fails when the run got anything but
# 2xx answers (it would have measured refusals). The calls are stamped when
# signed, at the start: --replay-window 86400 keeps them fresh for the run,
# as in bench/run.sh.
round() {
  "$BUILD/cliqhost" serve --scripts bench/scripts --listen 127.0.0.1:0 --workers 2 \
    --replay-memory 0 --replay-window 86400 --key "$WORK/key.pub" --journal-calls "$1" \
    2>"$WORK/host-$1.log" &
  HOST_PID=$!
  local port
  port=$(wait_port "$WORK/host-$1.log")
  wrk -t1 -c"$CONNS" -d2s -s bench/replay.lua "http://127.0.0.1:$port/" -- "$WORK/requests.txt" >/dev/null
  local t0 t1
  t0=$(cpu_ticks "$HOST_PID")
  wrk -t1 -c"$CONNS" -d"${DURATION}s" -s bench/replay.lua "http://127.0.0.1:$port/" \
    -- "$WORK/requests.txt" >"$WORK/wrk.txt"
  t1=$(cpu_ticks "$HOST_PID")
  kill -TERM "$HOST_PID"
  wait "$HOST_PID" || true
  HOST_PID=
  if grep -E "Non-2xx|Socket errors" "$WORK/wrk.txt" >&2; then
    echo "journal_calls $1: not every answer was a 2xx; the round is not valid" >&2
    return 1
  fi
  awk -v t="$((t1 - t0))" -v clk="$clk" '/requests in/ {n = $1} /Requests\/sec/ {r = $2}
    END {printf "%s %.1f\n", r, t * 1000000 / clk / n}' "$WORK/wrk.txt"
}

on=() off=() on_cpu=() off_cpu=()
for i in $(seq "$ROUNDS"); do
  got=$(round 0)
  read -r r c <<<"$got"
  off+=("$r")
  off_cpu+=("$c")
  got=$(round 200)
  read -r r c <<<"$got"
  on+=("$r")
  on_cpu+=("$c")
  echo "round $i: journal off ${off[-1]} req/s (${off_cpu[-1]} us CPU/request), on ${on[-1]} req/s (${on_cpu[-1]} us)"
done
awk -v a="$(median "${on[@]}")" -v b="$(median "${off[@]}")" \
  -v c="$(median "${on_cpu[@]}")" -v d="$(median "${off_cpu[@]}")" \
  'BEGIN {printf "median: on %s, off %s req/s (on/off %.3f); CPU/request on %s, off %s us (on/off %.3f)\n", a, b, a / b, c, d, c / d}'
